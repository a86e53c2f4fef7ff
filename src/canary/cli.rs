//! canary-peer's three commands: `serve` (the endpoint on each canary),
//! `probe` (measure every peer, one shot or `--every`) and `matrix` (the
//! zone × zone picture of records on stdin).

use std::ffi::OsString;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use super::mesh::{self, By};
use super::system::{parse_pair, Limits};
use super::{Identity, Options, Peer, CHECK};
use crate::cli::{Common, Context, Tool, UsageError};
use crate::report::{Metric, Record, Status};
use crate::threshold::Thresholds;

use super::peers::{AddressKind, CanaryRule, NovaPeers, PeerSource, MAX_PEERS};

/// Largest peers file read.
const PEERS_FILE_MAX: u64 = 16 << 20;

const EXAMPLES: &str = "\
Examples:
  CANARY_ID=c1 AVAILABILITY_ZONE=az1 PEER_ENDPOINTS=http://10.0.2.5:8080,http://10.0.3.5:8080 \\
      canary-peer serve --listen 0.0.0.0:8080
  canary-peer probe --peers http://10.0.2.5:8080,http://10.0.3.5:8080 --format nagios
  canary-peer probe --peers-file peers.toml --mesh | canary-peer matrix --as svg > mesh.svg
  canary-peer probe --peers-file peers.txt --every 30s | notify --config notifiers.toml

See canary-peer serve --help, canary-peer probe --help, canary-peer matrix --help.";

/// The `canary-peer` command as a whole, for its help, man page and completions.
#[derive(Debug, Parser)]
#[command(
    name = "canary-peer",
    version,
    about = "Canaries in every zone that measure the data plane between them: loss, latency, who is to blame",
    after_help = EXAMPLES,
    max_term_width = 100
)]
pub struct Top {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// canary-peer's commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The endpoint on each canary: /health, /health/detailed, /metrics, /connectivity,
    /// /echo, /bulk and a UDP echo port.
    Serve(ServeArgs),
    /// Measure every peer in three layers (UDP echo, TCP handshake, HTTP) with thresholds.
    Probe(ProbeArgs),
    /// The zone x zone (or peer x peer) matrix and blame of records on stdin.
    Matrix(MatrixArgs),
}

/// Where the peers come from and how they are measured (serve and probe).
#[derive(Debug, Clone, clap::Args)]
pub struct PeerFlags {
    /// Peers to measure: http://HOST:PORT, comma-separated or repeated.
    #[arg(
        long = "peers",
        value_name = "URL,...",
        env = "PEER_ENDPOINTS",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,

    /// File of peers: one URL per line, or TOML ([[peer]] with url, id, az, datacenter, udp_port).
    #[arg(long, value_name = "FILE")]
    pub peers_file: Option<PathBuf>,

    /// Peers are also the ACTIVE Nova servers with this metadata key (asked at every cycle;
    /// the value is the canary's port, its URL, or anything else for --os-peers-port).
    #[arg(long, value_name = "KEY", help_heading = "Peers from Nova")]
    pub os_peers: Option<String>,

    /// With --os-peers: the servers of every project (an admin's right), not only the
    /// token's project.
    #[arg(long, requires = "os_peers", help_heading = "Peers from Nova")]
    pub os_peers_all_projects: bool,

    /// With --os-peers: only addresses on this network.
    #[arg(
        long,
        value_name = "NAME",
        requires = "os_peers",
        help_heading = "Peers from Nova"
    )]
    pub os_peers_network: Option<String>,

    /// With --os-peers: the server's fixed or floating address.
    #[arg(long, value_name = "KIND", value_enum, default_value_t = AddressKind::Fixed,
          help_heading = "Peers from Nova")]
    pub os_peers_address: AddressKind,

    /// With --os-peers: the canary's port when the metadata value names none.
    #[arg(long, value_name = "PORT", default_value_t = 8080,
          value_parser = clap::value_parser!(u16).range(1..), help_heading = "Peers from Nova")]
    pub os_peers_port: u16,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub os: crate::openstack::client::OsArgs,

    /// At most K peers per canary: a stable choice (rendezvous hashing on this canary's
    /// id) that keeps one peer of every zone.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_peers: Option<u32>,

    /// This canary's id [default: the host name].
    #[arg(long, value_name = "ID", env = "CANARY_ID")]
    pub id: Option<String>,

    /// This canary's data centre.
    #[arg(long, value_name = "NAME", env = "DATACENTER")]
    pub datacenter: Option<String>,

    /// This canary's availability zone.
    #[arg(long, value_name = "ZONE", env = "AVAILABILITY_ZONE")]
    pub az: Option<String>,

    /// HTTP requests (and TCP handshakes) per peer.
    #[arg(short = 'n', long = "requests", value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub requests: u32,

    /// UDP echo packets per peer.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub packets: u32,

    /// Time between two UDP packets to one peer.
    #[arg(long, value_name = "DURATION", default_value = "10ms",
          value_parser = crate::units::parse_duration)]
    pub packet_interval: Duration,

    /// How long a UDP echo may take after the last packet went out; later is lost.
    #[arg(long, value_name = "DURATION", default_value = "1s",
          value_parser = crate::units::parse_duration)]
    pub packet_wait: Duration,

    /// Bytes per UDP packet (16-1472).
    #[arg(long, value_name = "BYTES", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(16..=1472))]
    pub packet_size: u16,

    /// Fetch SIZE from each peer's /bulk and report the throughput (e.g. 1MiB; 0: off).
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = crate::units::parse_size)]
    pub bulk: u64,

    /// HTTP latency p95 warning, seconds (Nagios range).
    #[arg(short = 'w', long = "latency-warning", value_name = "RANGE")]
    pub latency_warning: Option<String>,

    /// HTTP latency p95 critical, seconds (Nagios range).
    #[arg(short = 'c', long = "latency-critical", value_name = "RANGE")]
    pub latency_critical: Option<String>,

    /// UDP loss warning, % (Nagios range).
    #[arg(long, value_name = "RANGE", default_value = "5")]
    pub loss_warning: String,

    /// UDP loss critical, % (Nagios range).
    #[arg(long, value_name = "RANGE", default_value = "20")]
    pub loss_critical: String,

    /// HTTP success warning, % (Nagios range: alert below 70).
    #[arg(long, value_name = "RANGE", default_value = "70:")]
    pub success_warning: String,

    /// HTTP success critical, % (Nagios range: alert below 50).
    #[arg(long, value_name = "RANGE", default_value = "50:")]
    pub success_critical: String,

    /// Peers measured at once.
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
}

fn range_pair(w: Option<&str>, c: Option<&str>, what: &str) -> Result<Thresholds, UsageError> {
    Thresholds::parse(w, c).map_err(|e| UsageError::new(format!("{what}: {e}")))
}

impl PeerFlags {
    fn identity(&self) -> Identity {
        Identity {
            id: self
                .id
                .clone()
                .filter(|i| !i.trim().is_empty())
                .unwrap_or_else(crate::cli::system_hostname),
            datacenter: self.datacenter.clone().unwrap_or_default(),
            az: self.az.clone().unwrap_or_default(),
        }
    }

    fn options(&self) -> Result<Options, UsageError> {
        Ok(Options {
            requests: self.requests as usize,
            packets: self.packets as usize,
            packet_interval: self.packet_interval,
            packet_wait: self.packet_wait,
            packet_size: usize::from(self.packet_size),
            bulk: self.bulk,
            latency: range_pair(
                self.latency_warning.as_deref(),
                self.latency_critical.as_deref(),
                "latency",
            )?,
            loss: range_pair(Some(&self.loss_warning), Some(&self.loss_critical), "loss")?,
            success: range_pair(
                Some(&self.success_warning),
                Some(&self.success_critical),
                "success",
            )?,
            source: self.identity(),
        })
    }

    /// Where the peers come from: every peer named (more than
    /// [`MAX_PEERS`] is refused), and Nova's canaries with --os-peers.
    fn source(&self, me: &Identity) -> Result<PeerSource, UsageError> {
        let mut peers: Vec<Peer> = Vec::new();
        for p in self.peers.iter().filter(|p| !p.trim().is_empty()) {
            peers.push(Peer::at(p).map_err(|e| UsageError::new(format!("--peers: {e}")))?);
        }
        if let Some(path) = &self.peers_file {
            let text = crate::files::read_text(path, PEERS_FILE_MAX)
                .map_err(|e| UsageError::new(format!("--peers-file {}: {e}", path.display())))?;
            let mut from_file = parse_peers(&text)
                .map_err(|e| UsageError::new(format!("{}: {e}", path.display())))?;
            peers.append(&mut from_file);
        }
        if peers.len() > MAX_PEERS {
            return Err(UsageError::new(format!(
                "{} peers: at most {MAX_PEERS} (use --max-peers to measure a share)",
                peers.len()
            )));
        }
        let nova = match self.os_peers.as_deref().map(str::trim) {
            None => None,
            Some("") => return Err(UsageError::new("--os-peers: give a metadata key")),
            Some(key) => Some(NovaPeers {
                session: self
                    .os
                    .session()
                    .map_err(|e| UsageError::new(format!("--os-peers: {}", e.0)))?,
                all_projects: self.os_peers_all_projects,
                rule: CanaryRule {
                    key: key.to_string(),
                    network: self.os_peers_network.clone(),
                    address: self.os_peers_address,
                    port: self.os_peers_port,
                },
            }),
        };
        let source = PeerSource {
            fixed: Vec::new(),
            nova,
            me: me.id.clone(),
            max_peers: self.max_peers.map(|k| k as usize),
        };
        // The fixed list is settled once; Nova's at every cycle, with it.
        Ok(PeerSource {
            fixed: if source.nova.is_some() {
                peers
            } else {
                source.settle(peers)
            },
            ..source
        })
    }
}

/// A peers file: TOML with `[[peer]]` tables, or one URL per line (`#` comments).
pub fn parse_peers(text: &str) -> Result<Vec<Peer>, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        peer: Vec<Peer>,
    }
    let looks_toml = text.lines().any(|l| l.trim_start().starts_with("[[peer]]"));
    if looks_toml {
        let f: File = toml::from_str(text).map_err(|e| crate::files::toml_words(&e, text))?;
        let mut out = Vec::with_capacity(f.peer.len());
        for (i, mut p) in f.peer.into_iter().enumerate() {
            p.url = super::normalise_url(&p.url).map_err(|e| format!("peer {}: {e}", i + 1))?;
            out.push(p);
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        out.push(Peer::at(line).map_err(|e| format!("line {}: {e}", i + 1))?);
        if out.len() > MAX_PEERS {
            return Err(format!("more than {MAX_PEERS} peers"));
        }
    }
    Ok(out)
}

const PROBE_EXAMPLES: &str = "\
Examples:
  canary-peer probe --peers http://10.0.2.5:8080,http://10.0.3.5:8080
  canary-peer probe --peers-file peers.toml -n 20 -w 0.05 -c 0.2 --format nagios
  canary-peer probe --peers-file peers.toml --mesh --format table   # every canary's view, and blame
  canary-peer probe --peers-file peers.txt --every 30s --dogstatsd 127.0.0.1:8125
  canary-peer probe --os-cloud prod --os-peers canary --mesh   # Nova servers with metadata canary=PORT

Each peer is measured in three layers: UDP sequenced echo to its echo port (loss,
reordering, duplicates, jitter), TCP handshakes (connect), HTTP GET /health (latency_p50,
latency_p95, latency_p99, latency_max, success); app_time is HTTP's median beyond one
network round trip. A peer's record is labelled src_id/src_dc/src_az and
dst_id/dst_dc/dst_az. One more record (target \"connectivity\") says the share of peers
that answered well, judged by --connectivity-warning/--connectivity-critical (the
OpenStack Canary's 70 % and 50 %).

--mesh also collects every peer's own last cycle (its /connectivity) and adds one record
(target \"mesh\") with the zone matrix and the blame: a peer that fails from at least
--blame-share of the sources is a bad destination, a source that fails to at least that
share of its peers is a bad source, any other failing pair a bad path.

Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad flags or peer list).";

/// Measure every peer: UDP loss and jitter, TCP handshake, HTTP latency.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "canary-peer-probe",
    bin_name = "canary-peer probe",
    version,
    after_help = PROBE_EXAMPLES,
    max_term_width = 100
)]
pub struct ProbeArgs {
    /// Peers and how to measure them.
    #[command(flatten)]
    pub peers: PeerFlags,

    /// Also collect every peer's own last cycle and judge the whole mesh (blame, matrix).
    #[arg(long)]
    pub mesh: bool,

    /// With --mesh: the share of sources (or peers) that must fail for a canary to be
    /// blamed, %.
    #[arg(long, value_name = "PERCENT", default_value_t = 50.0)]
    pub blame_share: f64,

    /// Share of peers answering well: warning, % (Nagios range).
    #[arg(long, value_name = "RANGE", default_value = "70:")]
    pub connectivity_warning: String,

    /// Share of peers answering well: critical, % (Nagios range).
    #[arg(long, value_name = "RANGE", default_value = "50:")]
    pub connectivity_critical: String,

    /// Also send the figures as DogStatsD gauges to this address (the Datadog agent).
    #[arg(long, value_name = "HOST:PORT")]
    pub dogstatsd: Option<String>,

    /// Common flags.
    #[command(flatten)]
    pub common: Common,
}

/// `--dogstatsd HOST[:PORT]` (8125 by default) as one address.
fn dogstatsd_address(text: &str) -> Result<SocketAddr, UsageError> {
    let bad = |e: String| UsageError::new(format!("--dogstatsd: {e}"));
    let (host, port) = crate::net::host_port(text).map_err(bad)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (addrs, _) = crate::net::resolve(&host, port.unwrap_or(8125), deadline)
        .map_err(|e| bad(format!("{host}: {}", e.words)))?;
    addrs
        .first()
        .copied()
        .ok_or_else(|| bad(format!("{host}: no address")))
}

/// What `probe` prepared.
#[derive(Debug)]
pub struct Probing {
    source: PeerSource,
    opts: Options,
    connectivity: Thresholds,
    dogstatsd: Option<SocketAddr>,
}

impl Tool for ProbeArgs {
    type Run = Probing;
    const CHECK: &'static str = CHECK;
    const LABEL: &'static str = "CANARY";

    fn common(&self) -> &Common {
        &self.common
    }

    fn prepare(&mut self) -> Result<Probing, UsageError> {
        let opts = self.peers.options()?;
        let source = self.peers.source(&opts.source)?;
        if source.is_empty() {
            return Err(UsageError::new(
                "no peers: give --peers URL,..., --peers-file FILE, PEER_ENDPOINTS or --os-peers KEY",
            ));
        }
        if !(0.0..=100.0).contains(&self.blame_share) || self.blame_share == 0.0 {
            return Err(UsageError::new(
                "--blame-share: a percentage above 0, at most 100",
            ));
        }
        let connectivity = range_pair(
            Some(&self.connectivity_warning),
            Some(&self.connectivity_critical),
            "connectivity",
        )?;
        let dogstatsd = match &self.dogstatsd {
            Some(a) => Some(dogstatsd_address(a)?),
            None => None,
        };
        Ok(Probing {
            source,
            opts,
            connectivity,
            dogstatsd,
        })
    }

    fn run(&self, p: &Probing, ctx: &Context) -> Vec<Record> {
        let concurrency = self.peers.concurrency as usize;
        let collect = self.mesh;
        let mut trace = Vec::new();
        let (peers, failed) = p.source.peers(Some(&ctx.round), ctx.deadline, &mut trace);
        let mut lookup = failed.map(|e| {
            let mut r = Record::new(
                CHECK,
                "peers",
                Status::Unknown,
                format!(
                    "peers from Nova: {e} (measuring the {} peers named)",
                    peers.len()
                ),
            );
            r.trace = std::mem::take(&mut trace);
            r
        });
        if peers.is_empty() {
            return vec![lookup.unwrap_or_else(|| {
                let mut r = Record::new(
                    CHECK,
                    "peers",
                    Status::Unknown,
                    format!("no peers: {} has none", p.source.describe()),
                );
                r.trace = trace;
                r
            })];
        }
        // Their own views come in while we measure ours.
        let (measured, theirs) = std::thread::scope(|s| {
            let theirs = collect.then(|| s.spawn(|| collect_views(&peers, ctx)));
            let measured = super::measure_all(&peers, &p.opts, ctx, concurrency);
            let theirs = theirs.map(|h| h.join().unwrap_or_default());
            (measured, theirs)
        });
        let mut records: Vec<Record> = measured.iter().map(|m| super::record(m, &p.opts)).collect();
        let mut summary = connectivity(&records, &p.connectivity, &p.opts.source);
        if p.source.nova.is_some() {
            summary.detail("peers_from", p.source.describe());
            summary.trace.append(&mut trace);
        }
        if let Some(to) = p.dogstatsd {
            send_dogstatsd(to, &records);
        }
        records.push(summary);
        records.extend(lookup.take());
        if let Some((views, missing)) = theirs {
            let mut all = records;
            all.extend(views);
            let mut judged = mesh::judge(&mut all, self.blame_share / 100.0, By::Zone);
            judged.detail("not_collected", serde_json::json!(missing));
            all.push(judged);
            return all;
        }
        records
    }

    fn timed_out(&self, p: &Probing, ctx: &Context) -> Vec<Record> {
        let mut out: Vec<Record> = p
            .source
            .fixed
            .iter()
            .map(|peer| {
                Record::new(
                    CHECK,
                    &peer.url,
                    ctx.timeout_state,
                    format!("{}: the deadline came before it was measured", peer.url),
                )
            })
            .collect();
        if p.source.nova.is_some() {
            out.push(Record::new(
                CHECK,
                "peers",
                ctx.timeout_state,
                format!(
                    "the deadline came before {} were measured",
                    p.source.describe()
                ),
            ));
        }
        out
    }
}

/// The record of the share of peers answering well.
fn connectivity(records: &[Record], t: &Thresholds, me: &Identity) -> Record {
    let ok = records.iter().filter(|r| r.status == Status::Ok).count();
    let share = ok as f64 * 100.0 / records.len().max(1) as f64;
    let status = t.status(share);
    let mut r = Record::new(
        CHECK,
        "connectivity",
        status,
        format!(
            "{ok} of {} peers answer well ({}%)",
            records.len(),
            crate::render::number(super::round2(share))
        ),
    );
    let (w, c) = t.texts();
    let mut m = Metric::new("peers_ok", super::round2(share), "%").min(0.0);
    m.max = Some(100.0);
    m.warn = w;
    m.crit = c;
    r.metrics.push(m);
    let failing: Vec<&str> = records
        .iter()
        .filter(|r| r.status != Status::Ok)
        .map(|r| r.name.as_str())
        .collect();
    r.detail("failing", serde_json::json!(failing));
    r.detail("source", serde_json::json!(me));
    r
}

/// Longest `/connectivity` answer read from one peer.
const VIEW_MAX: u64 = 16 << 20;

/// Every peer's last cycle from its `/connectivity`, and the peers whose
/// view could not be had, with why.
fn collect_views(peers: &[Peer], ctx: &Context) -> (Vec<Record>, Vec<serde_json::Value>) {
    let agent = super::agent(ctx.remaining().max(Duration::from_millis(1)));
    let by = super::work_deadline(ctx);
    let got = crate::pool::run_all(
        peers,
        ctx,
        32,
        &|p: &Peer| -> Result<Vec<Record>, String> {
            let url = format!("{}/connectivity", p.url);
            let mut resp = super::get_by(&agent, &url, by).map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("HTTP {}", resp.status().as_u16()));
            }
            let text = resp
                .body_mut()
                .with_config()
                .limit(VIEW_MAX)
                .read_to_string()
                .map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let r: Record = serde_json::from_str(line)
                    .map_err(|e| format!("line {} is not a record ({e})", i + 1))?;
                if r.check == CHECK && r.labels.contains_key("src_id") {
                    out.push(r);
                }
            }
            Ok(out)
        },
        &|_| Err("the deadline came first".into()),
    );
    let mut views = Vec::new();
    let mut missing = Vec::new();
    for (p, g) in peers.iter().zip(got) {
        match g {
            Ok(mut v) => views.append(&mut v),
            Err(e) => missing.push(serde_json::json!({"peer": p.url, "why": e})),
        }
    }
    (views, missing)
}

/// DogStatsD gauges of the pair records (what the OpenStack Canary sent to Datadog).
pub fn dogstatsd_lines(records: &[Record]) -> Vec<String> {
    let tag = |v: &str| v.replace([',', '|', ':', '#', '\n'], "_");
    let mut out = Vec::new();
    for r in records {
        let tags: Vec<String> = ["src_id", "src_az", "src_dc", "dst_id", "dst_az", "dst_dc"]
            .iter()
            .filter_map(|k| r.labels.get(*k).map(|v| format!("{k}:{}", tag(v))))
            .collect();
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!("|#{}", tags.join(","))
        };
        for m in &r.metrics {
            out.push(format!(
                "canary.peer.{}:{}|g{tags}",
                m.name,
                crate::render::number(m.value)
            ));
        }
    }
    out
}

fn send_dogstatsd(to: SocketAddr, records: &[Record]) {
    let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let Ok(socket) = UdpSocket::bind(bind) else {
        return;
    };
    // Lines packed into datagrams the agent takes (8 KiB is its default buffer).
    let mut packet = String::new();
    for line in dogstatsd_lines(records) {
        if !packet.is_empty() && packet.len() + line.len() + 1 > 8000 {
            let _ = socket.send_to(packet.as_bytes(), to);
            packet.clear();
        }
        if !packet.is_empty() {
            packet.push('\n');
        }
        packet.push_str(&line);
    }
    if !packet.is_empty() {
        let _ = socket.send_to(packet.as_bytes(), to);
    }
}

const SERVE_EXAMPLES: &str = "\
Examples:
  canary-peer serve --listen 0.0.0.0:8080 --id c1 --az az1 --datacenter dc1
  CANARY_ID=c1 AVAILABILITY_ZONE=az1 PEER_ENDPOINTS=http://10.0.2.5:8080 TRAFFIC_INTERVAL=30s \\
      canary-peer serve
  curl -s localhost:8080/health/detailed; curl -s 'localhost:8080/connectivity?target=10.0.0.7:22'

Endpoints: /health (id, data centre, zone, uptime, version, clock), /health/detailed (CPU,
memory, disk, load judged as Nagios ranges; 503 when CRITICAL; clock offset to peers, CPU
throttling, the last cycle's duration), /metrics (Prometheus text: per zone pair latency
histograms and loss, and only the --worst peer pairs), /connectivity (the last cycle's
records; ?fresh=1 probes now; ?target=http://HOST:PORT a canary, HOST:PORT a TCP port, HOST
ICMP echo), /echo (the request body back), /bulk?bytes=N. UDP echo on the same port number.
With peers, it measures them every --traffic-interval (jittered, so canaries do not
synchronise). It needs no privilege (ICMP targets need net.ipv4.ping_group_range); SIGTERM
ends it.

Exit status: 0 after SIGTERM/SIGINT, 3 when it cannot start (bad flags, address in use).";

/// The endpoint on each canary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "canary-peer-serve",
    bin_name = "canary-peer serve",
    version,
    after_help = SERVE_EXAMPLES,
    max_term_width = 100
)]
pub struct ServeArgs {
    /// Address to serve HTTP on.
    #[arg(
        long,
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:8080",
        env = "CANARY_LISTEN"
    )]
    pub listen: SocketAddr,

    /// UDP echo address [default: the HTTP address and port].
    #[arg(long, value_name = "ADDR:PORT")]
    pub udp: Option<SocketAddr>,

    /// No UDP echo port.
    #[arg(long, conflicts_with = "udp")]
    pub no_udp: bool,

    /// Time between two probe cycles of the peers.
    #[arg(long, value_name = "DURATION", default_value = "30s", env = "TRAFFIC_INTERVAL",
          value_parser = crate::units::parse_duration)]
    pub traffic_interval: Duration,

    /// Time between two readings of this machine (CPU, memory, disk, load).
    #[arg(long, value_name = "DURATION", default_value = "10s", env = "MONITORING_INTERVAL",
          value_parser = crate::units::parse_duration)]
    pub monitoring_interval: Duration,

    /// Deadline of one probe cycle, and of one /connectivity probe.
    #[arg(short = 't', long = "timeout", value_name = "DURATION", default_value = "10s",
          value_parser = crate::units::parse_duration)]
    pub timeout: Duration,

    /// CPU use limits, % WARN,CRIT (Nagios ranges).
    #[arg(long, value_name = "WARN,CRIT", default_value = "70,90")]
    pub cpu: String,

    /// Memory use limits, % WARN,CRIT.
    #[arg(long, value_name = "WARN,CRIT", default_value = "80,95")]
    pub memory: String,

    /// Disk use limits, % WARN,CRIT.
    #[arg(long, value_name = "WARN,CRIT", default_value = "85,95")]
    pub disk: String,

    /// One-minute load limits WARN,CRIT.
    #[arg(long, value_name = "WARN,CRIT", default_value = "5,10")]
    pub load: String,

    /// The file system whose use is reported.
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub disk_path: PathBuf,

    /// Connections held at once (the memory bound): a new one takes the place of the oldest
    /// idle one, and is closed when every one is in a request.
    #[arg(long, value_name = "N", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,

    /// Threads that probe (cycles and /connectivity).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,

    /// Largest /bulk answer.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = crate::units::parse_size)]
    pub bulk_max: u64,

    /// Peer pairs kept in /metrics beside the per-zone series.
    #[arg(long, value_name = "K", default_value_t = 10)]
    pub worst: usize,

    /// /connectivity?target= is refused (this canary probes only its peers).
    #[arg(long)]
    pub no_targets: bool,

    /// Name of this machine in records [default: the system host name].
    #[arg(long = "hostname", value_name = "NAME", env = "SKYPROBE_HOSTNAME")]
    pub reporting_host: Option<String>,

    /// Peers and how to measure them.
    #[command(flatten)]
    pub peers: PeerFlags,
}

impl ServeArgs {
    /// The server's configuration, or what is wrong with the flags.
    pub fn config(&self) -> Result<super::serve::Config, UsageError> {
        let probe = self.peers.options()?;
        let peers = self.peers.source(&probe.source)?;
        let limit = |text: &str, what: &str| {
            parse_pair(text).map_err(|e| UsageError::new(format!("--{what}: {e}")))
        };
        if self.traffic_interval.is_zero() || self.monitoring_interval.is_zero() {
            return Err(UsageError::new("intervals must be longer than zero"));
        }
        Ok(super::serve::Config {
            listen: self.listen,
            udp: if self.no_udp {
                None
            } else {
                Some(self.udp.unwrap_or(self.listen))
            },
            identity: probe.source.clone(),
            hostname: self
                .reporting_host
                .clone()
                .unwrap_or_else(crate::cli::system_hostname),
            peers,
            traffic_interval: self.traffic_interval,
            monitoring_interval: self.monitoring_interval,
            cycle_timeout: self.timeout,
            probe,
            limits: Limits {
                cpu: limit(&self.cpu, "cpu")?,
                memory: limit(&self.memory, "memory")?,
                disk: limit(&self.disk, "disk")?,
                load: limit(&self.load, "load")?,
            },
            disk: self.disk_path.clone(),
            max_connections: self.max_connections as usize,
            workers: self.workers as usize,
            bulk_max: self.bulk_max,
            concurrency: self.peers.concurrency as usize,
            worst: self.worst,
            targets: !self.no_targets,
        })
    }
}

fn fail(what: &str, msg: &str) -> ExitCode {
    let line = msg.lines().next().unwrap_or(msg);
    eprintln!("canary-peer {what}: {}", crate::redact::urls_in(line));
    ExitCode::from(Status::Unknown.exit_code())
}

fn parse_or_exit<T: Parser>(what: &str, args: Vec<OsString>) -> Result<T, ExitCode> {
    T::try_parse_from(args).map_err(|e| {
        if e.use_stderr() {
            fail(
                what,
                &format!(
                    "{} (see canary-peer {what} --help)",
                    crate::cli::clap_one_line(&e.to_string())
                ),
            )
        } else {
            let _ = e.print();
            ExitCode::SUCCESS
        }
    })
}

/// `canary-peer serve` (args without the word `serve`).
pub fn serve_main(args: Vec<OsString>) -> ExitCode {
    let a: ServeArgs = match parse_or_exit("serve", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let config = match a.config() {
        Ok(c) => c,
        Err(e) => return fail("serve", &e.0),
    };
    let result = super::serve::serve(config, |http, udp| {
        let udp = udp
            .map(|u| format!(", UDP echo on {u}"))
            .unwrap_or_default();
        eprintln!("canary-peer serve: listening on http://{http}{udp}");
    });
    match result {
        Ok(()) => {
            eprintln!("canary-peer serve: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail("serve", &e),
    }
}

const MATRIX_EXAMPLES: &str = "\
Examples:
  canary-peer probe --peers-file peers.toml --mesh | canary-peer matrix
  canary-peer probe --peers-file peers.toml --mesh | canary-peer matrix --as svg > mesh.svg
  cat */canary.jsonl | canary-peer matrix --by peer --as json

Reads canary-peer records (JSON lines, from any number of canaries) on stdin; rows are
sources, columns destinations; each cell has the worst p95, the mean UDP loss and how many
of its pairs fail. Blame as in canary-peer probe --mesh. Lines that are not canary-peer
pair records are skipped and counted on stderr.";

/// The zone x zone (or peer x peer) matrix of canary-peer records on stdin.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "canary-peer-matrix",
    bin_name = "canary-peer matrix",
    version,
    after_help = MATRIX_EXAMPLES,
    max_term_width = 100
)]
pub struct MatrixArgs {
    /// Rows and columns: zones or single canaries.
    #[arg(long, value_enum, default_value = "zone")]
    pub by: By,

    /// Output: a table, JSON (matrix and blame) or an SVG heat map.
    #[arg(long = "as", value_name = "FORM", value_parser = ["table", "json", "svg"], default_value = "table")]
    pub form: String,

    /// The share of sources (or peers) that must fail for a canary to be blamed, %.
    #[arg(long, value_name = "PERCENT", default_value_t = 50.0)]
    pub blame_share: f64,

    /// Title of the SVG picture.
    #[arg(long, value_name = "TEXT", default_value = "canary-peer mesh")]
    pub title: String,
}

/// `canary-peer matrix` (args without the word `matrix`).
pub fn matrix_main(args: Vec<OsString>) -> ExitCode {
    let a: MatrixArgs = match parse_or_exit("matrix", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if !(a.blame_share > 0.0 && a.blame_share <= 100.0) {
        return fail("matrix", "--blame-share: a percentage above 0, at most 100");
    }
    let mut records = Vec::new();
    let mut skipped = 0usize;
    crate::records::read_lines(std::io::stdin().lock(), |line| {
        match line {
            crate::records::Line::Text(t) if t.trim().is_empty() => {}
            crate::records::Line::Text(t) => match serde_json::from_str::<Record>(&t) {
                Ok(r) => records.push(r),
                Err(_) => skipped += 1,
            },
            crate::records::Line::Unusable(_) => skipped += 1,
        }
        true
    });
    let pairs = mesh::pairs(&records);
    if skipped > 0 || pairs.len() < records.len() {
        eprintln!(
            "canary-peer matrix: {} pair records; {} other lines skipped",
            pairs.len(),
            skipped + records.len() - pairs.len()
        );
    }
    let m = mesh::matrix(&pairs, a.by);
    let b = mesh::blame(&pairs, a.blame_share / 100.0);
    let text = match a.form.as_str() {
        "svg" => mesh::svg(&m, &a.title),
        "json" => format!("{}\n", mesh::json(&m, &b)),
        _ => {
            let words = b.words();
            let mut t = mesh::table(&m);
            if !words.is_empty() {
                t.push_str(&format!("blame: {words}\n"));
            }
            t
        }
    };
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).is_err() {
        return ExitCode::SUCCESS;
    }
    let worst = pairs
        .iter()
        .filter(|p| p.failing())
        .map(|p| p.status)
        .max()
        .unwrap_or(Status::Ok);
    ExitCode::from(worst.exit_code())
}

/// The whole binary: `serve`, `probe` or `matrix`.
pub fn main(mut args: Vec<OsString>) -> ExitCode {
    let word = args.get(1).and_then(|a| a.to_str()).map(str::to_string);
    match word.as_deref() {
        Some("serve") => {
            args.remove(1);
            serve_main(args)
        }
        Some("probe") => {
            args.remove(1);
            crate::cli::main_with::<ProbeArgs>(args)
        }
        Some("matrix") => {
            args.remove(1);
            matrix_main(args)
        }
        _ => match Top::try_parse_from(args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) if !e.use_stderr() => {
                let _ = e.print();
                ExitCode::SUCCESS
            }
            Err(e) => fail(
                "",
                &format!(
                    "{} (give serve, probe or matrix; see canary-peer --help)",
                    crate::cli::clap_one_line(&e.to_string())
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_files_are_lines_or_toml() {
        let lines = parse_peers("# canaries\nhttp://10.0.0.1:8080\n\n10.0.0.2:8080 # az2\n")
            .expect("lines");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].url, "http://10.0.0.2:8080");
        let toml = parse_peers(
            "[[peer]]\nurl = \"http://10.0.0.1:8080/\"\nid = \"c1\"\naz = \"az1\"\nudp_port = 9000\n",
        )
        .expect("toml");
        assert_eq!(toml[0].url, "http://10.0.0.1:8080");
        assert_eq!(toml[0].udp_port, Some(9000));
        let e = parse_peers("ok:1\nhttp://x\n").expect_err("no port");
        assert!(e.starts_with("line 2:"), "{e}");
        let e = parse_peers("[[peer]]\nurl = \"http://a:1\"\nzone = \"x\"\n").expect_err("field");
        assert!(e.contains("zone"), "{e}");
    }

    #[test]
    fn dogstatsd_lines_carry_the_zones_as_tags() {
        let mut r = Record::new(CHECK, "http://a:1", Status::Ok, "");
        r.labels.insert("src_az".into(), "az1".into());
        r.labels.insert("dst_id".into(), "c,2".into());
        r.metrics.push(Metric::new("loss", 2.5, "%"));
        assert_eq!(
            dogstatsd_lines(&[r]),
            vec!["canary.peer.loss:2.5|g|#src_az:az1,dst_id:c_2"]
        );
    }
}
