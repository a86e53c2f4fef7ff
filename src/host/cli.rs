//! probe-host's flags and one round: resolve every host once, then TCP
//! ports (one mio loop) and ICMP echo (one socket per family) at the same
//! time, then one record per host in input order.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

use super::tcp::{speak, Dialog, Spoken};
use super::{parse_high_pair, parse_icmp_limit, parse_low_pair, parse_ports, HostSpec};
use crate::cli::{Common, Context, Tool, UsageError};
use crate::net::icmp::{ping_each, EchoStats, Echoes, Pacing, SocketChoice};
use crate::net::tls::Trust;
use crate::net::{ConnectFailure, ResolveFailure};
use crate::report::{Metric, Record, Status, TraceStep};
use crate::threshold::{Range, Thresholds};

mod judge;

/// Dialogs (-s/-e/-S) held at once, each a thread with a small stack.
const DIALOGS: usize = 256;

/// The `check` of probe-host's records.
pub const CHECK: &str = "probe-host";

const EXAMPLES: &str = "\
Examples:
  probe-host -H 10.0.0.5                                  # ICMP echo, check_icmp's defaults
  probe-host -H compute-1 -p 22,111,16509                 # three ports, open/refused/reset/timeout
  probe-host -H compute-1 -p 22,16509 --icmp -w 200,40% -c 500,80%
  probe-host --hosts computes.txt -p 22 -t 2 --format table
  probe-host --hosts computes.toml --per-port --format nagios
  probe-host -H mail.example -p 25 -e '220 ' -q 'QUIT\\r\\n' -E
  probe-host -H api.example -p 443 -S -D 30,7             # TLS, certificate days left
  probe-host -H 10.0.0.5 -n 20 -I 50ms --jitter 10,30 --mos 4,3.5
  probe-host -H db.example --all-addresses -m 1            # alive if any address answers
  probe-host --hosts racks.txt -p 22 --every 30s | notify --config notifiers.toml
  probe-host --verdict --openstack --hypervisors --network storage=10.2.0.0/16 \\
      --control 10.0.0.2:5000 --state /var/lib/skyprobe/verdict.json   # is a compute host dead?
  probe-host --verdict --hosts computes.toml --pacemaker --samples 3/5 --max-dead 2

Thresholds: with ICMP, -w/-c take check_icmp's RTA,PL% (ms unless a unit is given, e.g.
200,40%); with ports alone, check_tcp's response time in seconds (a Nagios range). With
both, --connect-warning/--connect-critical give the ports' limits.

ICMP needs either the unprivileged datagram socket (the process's group within
net.ipv4.ping_group_range, e.g. sysctl -w net.ipv4.ping_group_range='0 2147483647') or
a raw socket (root or CAP_NET_RAW: setcap cap_net_raw+ep probe-host). Without either
the ICMP part is UNKNOWN and says which is missing.

Verdict (--verdict): each host's signals (its networks: up, closed, silent, unknown,
none; nova, neutron, instances, cluster, peers) go through a decision table, first
matching rule wins (the shipped one: dead only when the host is silent on every network
and Nova, Neutron or Pacemaker agrees, and nothing answers for it; see
examples/verdict-table.toml). A table with a case no rule decides, or a rule that can
never match, is refused at start. Then the gates: --samples before dead; control targets
that must answer and all nova-compute services stale at once make the observer impaired
(nothing is dead); the cliff (--cliff of the hosts alive last run lost at once waits
--cliff-runs runs); the brake (--max-dead, --max-dead-percent, --max-dead-per-zone). The
record's status follows the verdict: alive OK, suspect WARNING, dead CRITICAL, unknown
UNKNOWN; details.masakari carries the COMPUTE_HOST notification of a dead host. One more
record (target \"verdict\") tells the gates' state.

Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad flags or files, no ICMP socket).";

/// Which ICMP socket to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SocketFlag {
    /// The unprivileged datagram socket, else the raw one.
    Auto,
    /// Only the datagram socket (net.ipv4.ping_group_range).
    Datagram,
    /// Only the raw socket (CAP_NET_RAW).
    Raw,
}

/// Is a host alive? TCP ports on every host at once and ICMP echo, one
/// record per host; exits like a Nagios plugin.
#[derive(Debug, Clone, Parser)]
#[command(name = "probe-host", version, after_help = EXAMPLES, max_term_width = 100, args_override_self = true)]
pub struct Args {
    /// Host name or address to probe (repeatable).
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,

    /// File of hosts: one name or address per line, or TOML ([[host]] with name,
    /// address, ports, labels, icmp).
    #[arg(long = "hosts", value_name = "FILE")]
    pub hosts_file: Option<PathBuf>,

    /// Use IPv4 addresses only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Use IPv6 addresses only.
    #[arg(short = '6')]
    pub ipv6: bool,

    /// Probe every address a name resolves to, not only the first.
    #[arg(long)]
    pub all_addresses: bool,

    /// TCP ports to connect to on every host: 22,111,16509 and ranges 8000-8010
    /// (repeatable).
    #[arg(short = 'p', long = "port", value_name = "PORTS", value_parser = parse_ports)]
    pub ports: Vec<Vec<u16>>,

    /// Send ICMP echoes too when ports are given (ICMP is the default without -p).
    #[arg(long)]
    pub icmp: bool,

    /// ICMP echoes per address.
    #[arg(short = 'n', long = "packets", value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub packets: u16,

    /// Least time between any two echoes sent, to any host (fping -i).
    #[arg(short = 'i', long = "interval", value_name = "DURATION", default_value = "1ms",
          value_parser = crate::units::parse_duration)]
    pub interval: Duration,

    /// Least time between two echoes to the same address (fping -p; check_icmp -i).
    #[arg(short = 'I', long = "target-interval", value_name = "DURATION", default_value = "80ms",
          value_parser = crate::units::parse_duration)]
    pub target_interval: Duration,

    /// How long an echo reply may take; a later one counts as lost.
    #[arg(long = "icmp-wait", value_name = "DURATION", default_value = "1s",
          value_parser = crate::units::parse_duration)]
    pub icmp_wait: Duration,

    /// ICMP payload bytes.
    #[arg(short = 'b', long = "size", value_name = "BYTES", default_value_t = 56,
          value_parser = clap::value_parser!(u16).range(12..=65000))]
    pub size: u16,

    /// Which ICMP socket to use.
    #[arg(
        long = "icmp-socket",
        value_enum,
        value_name = "KIND",
        default_value = "auto"
    )]
    pub icmp_socket: SocketFlag,

    /// Warning: with ICMP, RTA,PL% (e.g. 200,40%) [default: 200,40%]; with ports alone,
    /// response time in seconds (Nagios range).
    #[arg(short = 'w', long = "warning", value_name = "LIMIT")]
    pub warning: Option<String>,

    /// Critical: with ICMP, RTA,PL% (e.g. 500,80%) [default: 500,80%]; with ports alone,
    /// response time in seconds (Nagios range).
    #[arg(short = 'c', long = "critical", value_name = "LIMIT")]
    pub critical: Option<String>,

    /// Ports' response time warning in seconds, when ICMP runs too.
    #[arg(long, value_name = "RANGE")]
    pub connect_warning: Option<String>,

    /// Ports' response time critical in seconds, when ICMP runs too.
    #[arg(long, value_name = "RANGE")]
    pub connect_critical: Option<String>,

    /// ICMP jitter limits in ms, WARN,CRIT (alert above).
    #[arg(long, value_name = "WARN,CRIT")]
    pub jitter: Option<String>,

    /// ICMP mean opinion score limits, WARN,CRIT (alert below; 1-5).
    #[arg(long, value_name = "WARN,CRIT")]
    pub mos: Option<String>,

    /// ICMP score (the E-model's R, 0-100) limits, WARN,CRIT (alert below).
    #[arg(long, value_name = "WARN,CRIT")]
    pub score: Option<String>,

    /// At least N of a host's addresses must be alive (implies --all-addresses).
    #[arg(short = 'm', long = "min-alive", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub min_alive: Option<u16>,

    /// At least N of the hosts must be alive (check_icmp -m over several -H):
    /// one record for the whole group, each host in its trace and details,
    /// instead of one record per host.
    #[arg(long = "min-alive-hosts", value_name = "N", conflicts_with = "per_port",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub min_alive_hosts: Option<u32>,

    /// The group's name in its record (with --min-alive-hosts).
    #[arg(
        long = "group",
        value_name = "NAME",
        default_value = "hosts",
        requires = "min_alive_hosts"
    )]
    pub group: String,

    /// Text to send on each open port (check_tcp -s).
    #[arg(short = 's', long = "send", value_name = "TEXT")]
    pub send: Option<String>,

    /// Text the port's answer must contain (repeatable; any one, or all with -A).
    #[arg(short = 'e', long = "expect", value_name = "TEXT")]
    pub expect: Vec<String>,

    /// Every -e text must come, not any one.
    #[arg(short = 'A', long = "all")]
    pub expect_all: bool,

    /// State when the answer lacks the -e text.
    #[arg(short = 'M', long = "mismatch", value_name = "STATE", default_value = "warning",
          value_parser = crate::cli::parse_status)]
    pub mismatch: Status,

    /// Wait this long after -s before reading the answer (check_tcp -d;
    /// seconds, or 500ms). The deadline still holds.
    #[arg(short = 'd', long = "delay", value_name = "DURATION", requires = "send",
          value_parser = crate::units::parse_duration)]
    pub delay: Option<Duration>,

    /// Text to send before closing (check_tcp -q).
    #[arg(short = 'q', long = "quit", value_name = "TEXT")]
    pub quit: Option<String>,

    /// State of a refused port.
    #[arg(short = 'r', long = "refuse", value_name = "STATE", default_value = "critical",
          value_parser = crate::cli::parse_status)]
    pub refused: Status,

    /// TLS handshake on each open port (check_tcp -S).
    #[arg(short = 'S', long = "ssl")]
    pub ssl: bool,

    /// With -S: minimum days left on the certificate chain, WARN[,CRIT].
    #[arg(
        short = 'D',
        long = "certificate",
        value_name = "WARN[,CRIT]",
        requires = "ssl"
    )]
    pub certificate: Option<String>,

    /// With -S: trust only the CA certificates in this PEM file (without
    /// it, the system's bundle /etc/ssl/certs/ca-certificates.crt, or
    /// Mozilla's roots when there is none).
    #[arg(long, value_name = "FILE", requires = "ssl")]
    pub ca_file: Option<PathBuf>,

    /// With -S: do not verify the chain (it is still read for -D).
    #[arg(long, requires = "ssl")]
    pub insecure: bool,

    /// Read \n, \r, \t, \\ and \0 in -s and -q (check_tcp -E).
    #[arg(short = 'E', long = "escape")]
    pub escape: bool,

    /// Keep what the server sent out of records (check_tcp -j).
    #[arg(short = 'j', long = "jail")]
    pub jail: bool,

    /// Read at most this many bytes of each answer.
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub max_bytes: usize,

    /// A record for each port too, besides the one per host.
    #[arg(long)]
    pub per_port: bool,

    /// TCP connects in flight at most [default: all at once, within the open-file
    /// limit, whose soft value is raised to the hard one as needed].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1048576))]
    pub in_flight: Option<u32>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub verdict: VerdictArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub os: crate::openstack::client::OsArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// The dead-host verdict's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct VerdictArgs {
    /// Judge each host alive, suspect, dead or unknown from every signal given, through the
    /// decision table, the samples and the observer gates (ports default to 22,111,16509,
    /// with ICMP).
    #[arg(long, help_heading = "Verdict")]
    pub verdict: bool,

    /// The decision table (TOML [[rule]] with when, verdict, why) [default: the shipped
    /// table, in the man page and examples/verdict-table.toml].
    #[arg(
        long,
        value_name = "FILE",
        requires = "verdict",
        help_heading = "Verdict"
    )]
    pub table: Option<PathBuf>,

    /// Another network every host is on, its address made from the management one:
    /// NAME=PREFIX/LEN keeps the host part (storage=10.2.0.0/16), NAME=+N adds N
    /// (repeatable).
    #[arg(
        long = "network",
        value_name = "NAME=RULE",
        requires = "verdict",
        help_heading = "Verdict"
    )]
    pub networks: Vec<String>,

    /// The name of the network of each host's own address.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "management",
        help_heading = "Verdict"
    )]
    pub management_network: String,

    /// Hosts from Nova's hypervisors too (their host_ip on the management network).
    #[arg(long, requires = "verdict", help_heading = "Verdict")]
    pub hypervisors: bool,

    /// Ask OpenStack: Nova's nova-compute services, Neutron's agents and the host's
    /// servers (the --os-* flags say which cloud).
    #[arg(long, requires = "verdict", help_heading = "Verdict")]
    pub openstack: bool,

    /// Do not gather this signal: instances, nova or neutron (repeatable).
    #[arg(long, value_name = "SIGNAL", value_parser = ["instances", "nova", "neutron"], help_heading = "Verdict")]
    pub skip: Vec<String>,

    /// A nova-compute not reported for this long is stale (Nova's service_down_time).
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = crate::units::parse_duration, help_heading = "Verdict")]
    pub service_down_time: Duration,

    /// A Neutron agent without a heartbeat for this long is stale (Neutron's
    /// agent_down_time).
    #[arg(long, value_name = "DURATION", default_value = "75s",
          value_parser = crate::units::parse_duration, help_heading = "Verdict")]
    pub agent_down_time: Duration,

    /// Ports of the host's servers to connect to.
    #[arg(long, value_name = "PORTS", default_value = "22", value_parser = parse_ports,
          help_heading = "Verdict")]
    pub instance_port: Vec<Vec<u16>>,

    /// The servers' network whose addresses are probed [default: every address].
    #[arg(long, value_name = "NAME", help_heading = "Verdict")]
    pub instance_network: Option<String>,

    /// Servers probed per host at most (ACTIVE ones, in Nova's order).
    #[arg(long, value_name = "N", default_value_t = 10, help_heading = "Verdict")]
    pub instances_max: usize,

    /// Ask Pacemaker for node state and quorum (--crm-mon).
    #[arg(long, requires = "verdict", help_heading = "Verdict")]
    pub pacemaker: bool,

    /// The command that prints Pacemaker's state as XML.
    #[arg(
        long,
        value_name = "COMMAND",
        default_value = "crm_mon --one-shot --output-as=xml",
        help_heading = "Verdict"
    )]
    pub crm_mon: String,

    /// A command that prints a host's power state (on/off), as evidence only; {host},
    /// {bmc} and {address} are replaced, e.g. 'ipmitool -I lanplus -H {bmc} -U admin -E
    /// power status' (its output other than the state is never shown).
    #[arg(long, value_name = "COMMAND", help_heading = "Verdict")]
    pub bmc_command: Option<String>,

    /// Other vantage points' probe-host records (JSON lines), for indirect confirmation
    /// (repeatable).
    #[arg(long, value_name = "FILE", help_heading = "Verdict")]
    pub peer_records: Vec<PathBuf>,

    /// Peer records older than this are ignored.
    #[arg(long, value_name = "DURATION", default_value = "2m",
          value_parser = crate::units::parse_duration, help_heading = "Verdict")]
    pub peer_max_age: Duration,

    /// A target that must answer for the observer to be trusted: HOST (ICMP) or HOST:PORT
    /// (repeatable); when they do not, no host is judged dead.
    #[arg(long, value_name = "HOST[:PORT]", help_heading = "Verdict")]
    pub control: Vec<String>,

    /// Control targets that must answer [default: all].
    #[arg(long, value_name = "N", help_heading = "Verdict")]
    pub control_min: Option<usize>,

    /// Dead only after N dead samples in a row, or N of the last M runs (N/M); kept in
    /// --state.
    #[arg(long, value_name = "N[/M]", default_value = "3",
          value_parser = super::verdict::parse_samples, help_heading = "Verdict")]
    pub samples: super::verdict::Samples,

    /// When at least this share of the hosts alive in the last run is lost at once (two
    /// or more), no host is dead for --cliff-runs runs (off to disable).
    #[arg(long, value_name = "PERCENT", default_value = "50%",
          value_parser = super::verdict::parse_share, help_heading = "Verdict")]
    pub cliff: super::verdict::Share,

    /// Runs a cliff is waited out.
    #[arg(long, value_name = "N", default_value_t = 3, help_heading = "Verdict")]
    pub cliff_runs: u16,

    /// More dead hosts than this at once: none is dead (unknown, the brake).
    #[arg(long, value_name = "N", help_heading = "Verdict")]
    pub max_dead: Option<usize>,

    /// More than this share of the hosts dead at once: none is dead (off to disable).
    #[arg(long, value_name = "PERCENT", default_value = "50%",
          value_parser = super::verdict::parse_share, help_heading = "Verdict")]
    pub max_dead_percent: super::verdict::Share,

    /// More dead hosts than this in one zone (the host's zone or az label, or Nova's
    /// zone) at once: none of that zone is dead.
    #[arg(long, value_name = "N", help_heading = "Verdict")]
    pub max_dead_per_zone: Option<usize>,

    /// More dead hosts than this in one host aggregate (Nova's, with --openstack, or the
    /// host's aggregate label, comma-separated) at once: none of that aggregate is dead.
    #[arg(long, value_name = "N", help_heading = "Verdict")]
    pub max_dead_per_aggregate: Option<usize>,

    /// Keep samples, the last run's alive hosts and a cliff here between runs.
    #[arg(long, value_name = "FILE", help_heading = "Verdict")]
    pub state: Option<PathBuf>,

    /// How long each probe phase (the hosts' networks, then their servers) may take.
    #[arg(long, value_name = "DURATION", default_value = "3s",
          value_parser = crate::units::parse_duration, help_heading = "Verdict")]
    pub probe_timeout: Duration,
}

/// What `prepare` makes of the flags.
pub struct Run {
    hosts: Vec<HostSpec>,
    ports: Vec<u16>,
    icmp: bool,
    pacing: Pacing,
    icmp_limits: IcmpLimits,
    connect: Thresholds,
    cert_days: Option<(f64, Option<f64>)>,
    dialog: Dialog,
    min_alive: Option<usize>,
    /// `--min-alive-hosts` and `--group`.
    group: Option<(usize, String)>,
    /// Hosts of this round whose records have gone out (in host order).
    streamed: std::sync::atomic::AtomicUsize,
    verdict: Option<judge::VerdictRun>,
}

#[derive(Default)]
struct IcmpLimits {
    rta: Thresholds,
    pl: Thresholds,
    jitter: Thresholds,
    mos: Thresholds,
    score: Thresholds,
}

/// One record for a group of hosts (`--min-alive-hosts N`), as check_icmp
/// judges several -H with -m: the N-th best host's state, and CRITICAL when
/// fewer than N answered at all. Each host is a step of its trace, its
/// record in `details.hosts`, its metrics under its name.
fn group_record(name: &str, need: usize, hosts: Vec<Record>, started: Instant) -> Record {
    let alive = |r: &Record| {
        r.details
            .get("alive_addresses")
            .and_then(serde_json::Value::as_u64)
            .is_some_and(|n| n > 0)
    };
    let alive_count = hosts.iter().filter(|r| alive(r)).count();
    let mut states: Vec<Status> = hosts.iter().map(|r| r.status).collect();
    states.sort();
    let status = if alive_count < need {
        Status::Critical
    } else {
        states.get(need - 1).copied().unwrap_or(Status::Critical)
    };
    let down: Vec<&str> = hosts
        .iter()
        .filter(|r| !alive(r))
        .map(|r| r.name.as_str())
        .collect();
    let mut summary = format!("{alive_count} of {} hosts alive, need {need}", hosts.len());
    if !down.is_empty() {
        let shown: Vec<&str> = down.iter().take(10).copied().collect();
        summary.push_str(&format!("; not alive: {}", shown.join(", ")));
        if down.len() > shown.len() {
            summary.push_str(&format!(" and {} more", down.len() - shown.len()));
        }
    }
    let mut record = Record::new(CHECK, name, status, summary);
    record.name = name.to_string();
    let mut metric = crate::report::Metric::new("alive_hosts", alive_count as f64, "").min(0.0);
    metric.max = Some(hosts.len() as f64);
    metric.crit = Some(format!("{need}:"));
    record.metrics.push(metric);
    // Labels every host shares (--label) are the group's.
    if let Some(first) = hosts.first() {
        record.labels = first
            .labels
            .iter()
            .filter(|(k, v)| hosts.iter().all(|h| h.labels.get(*k) == Some(*v)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    }
    let mut details = Vec::new();
    for h in hosts {
        record.trace.push(TraceStep::new(
            "host",
            alive(&h),
            Duration::from_secs_f64(h.duration_ms.max(0.0) / 1000.0),
            Some(format!("{}: {} - {}", h.name, h.status.label(), h.summary)),
        ));
        for m in &h.metrics {
            let mut m = m.clone();
            m.name = format!("{}_{}", h.name, m.name);
            record.metrics.push(m);
        }
        details.push(json!({
            "name": h.name,
            "target": h.target,
            "status": h.status,
            "summary": h.summary,
            "details": h.details,
        }));
    }
    record.detail("alive_hosts", alive_count);
    record.detail("min_alive_hosts", need);
    record.detail("hosts", details);
    record.duration_ms = crate::report::round_ms(started.elapsed());
    record
}

fn usage(what: &str, e: impl std::fmt::Display) -> UsageError {
    UsageError::new(format!("{what}: {e}"))
}

impl Args {
    fn icmp_limits(&self) -> Result<IcmpLimits, UsageError> {
        // A part not given keeps check_icmp's default (-w 200,40% -c 500,80%).
        let limit = |given: &Option<String>, default: &str, flag: &str| {
            let default = parse_icmp_limit(default).unwrap_or_default();
            let given = given
                .as_deref()
                .map(parse_icmp_limit)
                .transpose()
                .map_err(|e| usage(flag, e))?
                .unwrap_or_default();
            Ok::<_, UsageError>(super::IcmpLimit {
                rta: given.rta.or(default.rta),
                pl: given.pl.or(default.pl),
            })
        };
        let w = limit(&self.warning, "200,40%", "-w")?;
        let c = limit(&self.critical, "500,80%", "-c")?;
        let pair = |text: &Option<String>,
                    parse: fn(&str) -> Result<(Range, Range), String>,
                    flag: &str| {
            text.as_deref()
                .map(|t| parse(t).map_err(|e| usage(flag, e)))
                .transpose()
                .map(|p| {
                    p.map(|(w, c)| Thresholds {
                        warn: Some(w),
                        crit: Some(c),
                    })
                    .unwrap_or_default()
                })
        };
        Ok(IcmpLimits {
            rta: Thresholds {
                warn: w.rta,
                crit: c.rta,
            },
            pl: Thresholds {
                warn: w.pl,
                crit: c.pl,
            },
            jitter: pair(&self.jitter, parse_high_pair, "--jitter")?,
            mos: pair(&self.mos, parse_low_pair, "--mos")?,
            score: pair(&self.score, parse_low_pair, "--score")?,
        })
    }

    fn text(&self, flag: &str, text: &Option<String>) -> Result<Option<Vec<u8>>, UsageError> {
        text.as_ref()
            .map(|t| {
                if self.escape {
                    super::unescape(t)
                        .map(String::into_bytes)
                        .map_err(|e| usage(flag, e))
                } else {
                    Ok(t.clone().into_bytes())
                }
            })
            .transpose()
    }
}

impl Tool for Args {
    const CHECK: &'static str = CHECK;
    const LABEL: &'static str = "HOST";
    type Run = Run;

    fn common(&self) -> &Common {
        &self.common
    }

    fn prepare(&mut self) -> Result<Run, UsageError> {
        let mut hosts: Vec<HostSpec> = self
            .hosts
            .iter()
            .map(|h| {
                let h = h.trim();
                if h.is_empty() || h.contains(char::is_whitespace) {
                    Err(usage("-H", format!("{h:?} is not a host name or address")))
                } else {
                    Ok(HostSpec::plain(h))
                }
            })
            .collect::<Result<_, _>>()?;
        if let Some(path) = &self.hosts_file {
            hosts.extend(super::read_hosts(path)?);
        }
        if hosts.is_empty() && !self.verdict.hypervisors {
            return Err(UsageError::new(
                "no host to probe: give -H HOST or --hosts FILE",
            ));
        }
        let mut ports = Vec::new();
        for p in self.ports.iter().flatten() {
            if !ports.contains(p) {
                ports.push(*p);
            }
        }
        if self.verdict.verdict && ports.is_empty() {
            ports = judge::DEFAULT_PORTS.to_vec();
        }
        let verdict = if self.verdict.verdict {
            Some(judge::prepare(self, &hosts)?)
        } else {
            for (flag, given) in [
                ("--hypervisors", self.verdict.hypervisors),
                ("--openstack", self.verdict.openstack),
                ("--pacemaker", self.verdict.pacemaker),
                ("--state", self.verdict.state.is_some()),
                ("--control", !self.verdict.control.is_empty()),
                ("--peer-records", !self.verdict.peer_records.is_empty()),
                ("--bmc-command", self.verdict.bmc_command.is_some()),
            ] {
                if given {
                    return Err(UsageError::new(format!("{flag} is for --verdict")));
                }
            }
            None
        };
        let any_ports = !ports.is_empty()
            || hosts
                .iter()
                .any(|h| h.ports.as_ref().is_some_and(|p| !p.is_empty()));
        let icmp = self.icmp || !any_ports || self.verdict.verdict;
        let icmp_limits = self.icmp_limits()?;
        let connect = if icmp {
            Thresholds::parse(
                self.connect_warning.as_deref(),
                self.connect_critical.as_deref(),
            )
            .map_err(|e| usage("--connect-warning/--connect-critical", e))?
        } else {
            Thresholds::parse(
                self.connect_warning.as_deref().or(self.warning.as_deref()),
                self.connect_critical
                    .as_deref()
                    .or(self.critical.as_deref()),
            )
            .map_err(|e| usage("-w/-c (response time in seconds)", e))?
        };
        let cert_days = match &self.certificate {
            None => None,
            Some(text) => {
                let mut parts = text.split(',');
                let number = |p: Option<&str>| -> Result<Option<f64>, UsageError> {
                    p.map(|p| {
                        p.trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|v| v.is_finite() && *v >= 0.0)
                            .ok_or_else(|| usage("-D", format!("{text:?} is not DAYS[,DAYS]")))
                    })
                    .transpose()
                };
                let warn = number(parts.next())?.unwrap_or(0.0);
                let crit = number(parts.next())?;
                if parts.next().is_some() {
                    return Err(usage("-D", format!("{text:?} is not DAYS[,DAYS]")));
                }
                Some((warn, crit))
            }
        };
        let tls = if self.ssl {
            let trust = if self.insecure {
                Trust::Nothing
            } else if let Some(path) = &self.ca_file {
                let pem = crate::files::read_bounded(path, 4 * 1024 * 1024)
                    .map_err(|e| usage(&format!("--ca-file {}", path.display()), e))?;
                let roots = crate::net::tls::roots_from_pem(&pem)
                    .map_err(|e| usage(&format!("--ca-file {}", path.display()), e))?;
                Trust::Roots(Arc::new(roots))
            } else {
                Trust::Roots(Arc::new(crate::net::tls::system_roots()))
            };
            let config = crate::net::tls::client_config(&trust, &[])
                .map_err(|e| usage("-S", format!("TLS setup: {e}")))?;
            Some(Arc::new(config))
        } else {
            None
        };
        let dialog = Dialog {
            tls,
            send: self.text("-s", &self.send)?,
            delay: self.delay,
            expect: self.expect.iter().map(|e| e.clone().into_bytes()).collect(),
            expect_all: self.expect_all,
            quit: self.text("-q", &self.quit)?,
            max_bytes: self.max_bytes.max(1),
        };
        let group = match self.min_alive_hosts {
            None => None,
            Some(_) if self.verdict.verdict => {
                return Err(UsageError::new(
                    "--min-alive-hosts is not for --verdict (each host gets its own verdict)",
                ))
            }
            Some(n) if n as usize > hosts.len() => {
                return Err(UsageError::new(format!(
                    "--min-alive-hosts {n}: there are only {} hosts",
                    hosts.len()
                )))
            }
            Some(n) => {
                let name = self.group.trim();
                if name.is_empty() {
                    return Err(usage("--group", "an empty name"));
                }
                Some((n as usize, name.to_string()))
            }
        };
        Ok(Run {
            hosts,
            ports,
            icmp,
            pacing: Pacing {
                count: self.packets,
                gap: self.interval,
                per_target: self.target_interval,
                wait: self.icmp_wait,
                payload: usize::from(self.size),
                socket: match self.icmp_socket {
                    SocketFlag::Auto => SocketChoice::Auto,
                    SocketFlag::Datagram => SocketChoice::Datagram,
                    SocketFlag::Raw => SocketChoice::Raw,
                },
            },
            icmp_limits,
            connect,
            cert_days,
            dialog,
            min_alive: self.min_alive.map(usize::from),
            group,
            streamed: Default::default(),
            verdict,
        })
    }

    fn run(&self, run: &Run, ctx: &Context) -> Vec<Record> {
        match &run.verdict {
            Some(v) => self.verdict_round(run, v, ctx),
            None => self.round(run, ctx),
        }
    }

    fn timed_out(&self, run: &Run, ctx: &Context) -> Vec<Record> {
        if let Some((n, name)) = &run.group {
            let mut r = Record::new(
                CHECK,
                name,
                ctx.timeout_state,
                format!(
                    "still probing {} hosts at the deadline (need {n} alive)",
                    run.hosts.len()
                ),
            );
            r.name = name.clone();
            return vec![r];
        }
        let streamed = if run.verdict.is_some() {
            0
        } else {
            run.streamed.load(Ordering::SeqCst)
        };
        run.hosts
            .iter()
            .skip(streamed)
            .map(|h| {
                let mut r = Record::new(
                    CHECK,
                    &h.address,
                    ctx.timeout_state,
                    "still probing at the deadline",
                );
                r.name = h.name.clone();
                r.labels = h.labels.clone();
                if run.verdict.is_some() {
                    // A verdict cut off by the deadline is no verdict.
                    r.status = Status::Unknown;
                    r.summary = "unknown: still judging at the deadline".into();
                    r.detail("verdict", "unknown");
                }
                r
            })
            .collect()
    }
}

/// A host's addresses, or why it has none.
type Resolved = Result<(Vec<IpAddr>, Duration), crate::net::Unresolved>;

/// What to probe: a name or address, its ports, and ICMP or not.
struct ProbeSpec {
    address: String,
    ports: Vec<u16>,
    icmp: bool,
}

/// What a probe found: each name's addresses, each spec's addresses (in
/// spec order), every port's end and every address's echoes.
struct Probed {
    resolved: BTreeMap<String, Resolved>,
    addrs: Vec<Vec<IpAddr>>,
    ports: BTreeMap<SocketAddr, PortResult>,
    echoes: BTreeMap<IpAddr, Echoes>,
}

/// What the probe's threads report as it comes.
enum Heard {
    Port(PortResult),
    Echo(IpAddr, Echoes),
}

/// One TCP connect's end, and the dialog after it.
struct PortResult {
    addr: SocketAddr,
    connect: Result<Duration, crate::net::Failed>,
    spoken: Option<Spoken>,
}

impl Args {
    fn round(&self, run: &Run, ctx: &Context) -> Vec<Record> {
        let started = Instant::now();
        let specs: Vec<ProbeSpec> = run
            .hosts
            .iter()
            .map(|h| ProbeSpec {
                address: h.address.clone(),
                ports: h.ports.clone().unwrap_or_else(|| run.ports.clone()),
                icmp: h.icmp.unwrap_or(run.icmp),
            })
            .collect();
        run.streamed.store(0, Ordering::SeqCst);
        let mut records = Vec::new();
        // Each host's record goes out as soon as it and every host before
        // it are done (JSON lines stream; other formats collect). A group
        // is one record, made at the end.
        let mut settled = |probed: &Probed, i: usize| {
            let h = &run.hosts[i];
            let host_records = self.host_record(
                run,
                ctx,
                h,
                probed.resolved.get(h.address.as_str()),
                &probed.addrs[i],
                &specs[i].ports,
                specs[i].icmp,
                &probed.echoes,
                &probed.ports,
                started,
            );
            if run.group.is_some() {
                records.extend(host_records);
            } else {
                if ctx.stream.is_some() {
                    // Counted first: a deadline's records leave out what went.
                    run.streamed.fetch_add(1, Ordering::SeqCst);
                }
                records.extend(ctx.emit_now(host_records));
            }
        };
        self.probe_with(run, ctx, &specs, ctx.deadline, &mut settled);
        match &run.group {
            Some((n, name)) => vec![group_record(name, *n, records, started)],
            None => records,
        }
    }

    /// Resolve every spec's name once, then connect to every (address,
    /// port) in one loop while ICMP runs, until `deadline`.
    fn probe(&self, run: &Run, ctx: &Context, specs: &[ProbeSpec], deadline: Instant) -> Probed {
        self.probe_with(run, ctx, specs, deadline, &mut |_, _| {})
    }

    /// [`Args::probe`], calling `settled` with spec `i` (in spec order,
    /// each once) as soon as everything of it and of every spec before it
    /// is known: the ports' ends and dialogs, and the echoes. An open port
    /// is spoken to as soon as it connects, not after every connect ended.
    fn probe_with(
        &self,
        run: &Run,
        ctx: &Context,
        specs: &[ProbeSpec],
        deadline: Instant,
        settled: &mut dyn FnMut(&Probed, usize),
    ) -> Probed {
        // Every name resolved once, however many hosts share it.
        let mut names: Vec<&str> = specs.iter().map(|h| h.address.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let looked_up: Vec<Resolved> = crate::pool::run_all(
            &names,
            ctx,
            32,
            &|name: &&str| {
                crate::net::resolve(name, 0, deadline).map(|(addrs, took)| {
                    let mut ips: Vec<IpAddr> = Vec::new();
                    for a in addrs {
                        let ip = a.ip();
                        let family_ok =
                            (!self.ipv4 || ip.is_ipv4()) && (!self.ipv6 || ip.is_ipv6());
                        if family_ok && !ips.contains(&ip) {
                            ips.push(ip);
                        }
                    }
                    (ips, took)
                })
            },
            &|_| {
                Err(crate::net::Unresolved {
                    failure: ResolveFailure::TimedOut,
                    took: Duration::ZERO,
                    words: "lookup not started before the deadline".into(),
                })
            },
        );
        let resolved: BTreeMap<String, Resolved> =
            names.iter().map(|n| n.to_string()).zip(looked_up).collect();
        let every_address = self.all_addresses || run.min_alive.is_some();
        let addresses_of = |h: &ProbeSpec| -> Vec<IpAddr> {
            match resolved.get(h.address.as_str()) {
                Some(Ok((ips, _))) if every_address => ips.clone(),
                Some(Ok((ips, _))) => ips.iter().take(1).copied().collect(),
                _ => Vec::new(),
            }
        };
        // Every (address, port) in one connect loop.
        let mut sockets: Vec<SocketAddr> = Vec::new();
        let mut icmp_addrs: Vec<IpAddr> = Vec::new();
        let addrs: Vec<Vec<IpAddr>> = specs.iter().map(addresses_of).collect();
        for (h, ips) in specs.iter().zip(&addrs) {
            for &ip in ips {
                for &p in &h.ports {
                    sockets.push(SocketAddr::new(ip, p));
                }
                if h.icmp && !icmp_addrs.contains(&ip) {
                    icmp_addrs.push(ip);
                }
            }
        }
        let server_names: BTreeMap<IpAddr, &str> = specs
            .iter()
            .zip(&addrs)
            .flat_map(|(h, ips)| ips.iter().map(move |ip| (*ip, h.address.as_str())))
            .collect();
        let in_flight = match self.in_flight {
            Some(n) => n as usize,
            None => crate::net::scan::room_for(sockets.len()),
        };
        // What each spec waits for: its (address, port)s and its echoes.
        let waits_for: Vec<(Vec<SocketAddr>, Vec<IpAddr>)> = specs
            .iter()
            .zip(&addrs)
            .map(|(h, ips)| {
                let ports = ips
                    .iter()
                    .flat_map(|ip| h.ports.iter().map(|p| SocketAddr::new(*ip, *p)))
                    .collect();
                let echoes = if h.icmp { ips.clone() } else { Vec::new() };
                (ports, echoes)
            })
            .collect();
        let mut probed = Probed {
            resolved,
            addrs,
            ports: BTreeMap::new(),
            echoes: BTreeMap::new(),
        };
        let mut next = 0;
        let mut release = |probed: &Probed, next: &mut usize| {
            while *next < specs.len() {
                let (ports, ips) = &waits_for[*next];
                let done = ports.iter().all(|a| probed.ports.contains_key(a))
                    && ips.iter().all(|ip| probed.echoes.contains_key(ip));
                if !done {
                    break;
                }
                settled(probed, *next);
                *next += 1;
            }
        };
        release(&probed, &mut next);
        let (events, heard) = std::sync::mpsc::channel::<Heard>();
        std::thread::scope(|scope| {
            let to_tcp = events.clone();
            let sockets = &sockets;
            let server_names = &server_names;
            let tcp_loop = move || {
                // Dialogs run on up to DIALOGS threads, started as open
                // ports come in and fed while the connect loop goes on.
                let (work, todo) =
                    std::sync::mpsc::channel::<(SocketAddr, std::net::TcpStream, Duration)>();
                let todo = std::sync::Mutex::new(todo);
                let mut speakers = 0usize;
                std::thread::scope(|inner| {
                    crate::net::scan::connect_each(sockets, deadline, in_flight, |i, outcome| {
                        let addr = sockets[i];
                        match outcome {
                            Ok((stream, took)) if !run.dialog.is_empty() => {
                                if speakers < DIALOGS {
                                    speakers += 1;
                                    let (todo, tell) = (&todo, to_tcp.clone());
                                    let spawned = std::thread::Builder::new()
                                        .stack_size(256 * 1024)
                                        .spawn_scoped(inner, move || loop {
                                            let next = todo
                                                .lock()
                                                .unwrap_or_else(|p| p.into_inner())
                                                .recv();
                                            let Ok((addr, stream, took)) = next else {
                                                break;
                                            };
                                            let name =
                                                server_names.get(&addr.ip()).copied().unwrap_or("");
                                            let name = if name.parse::<IpAddr>().is_ok()
                                                || name.is_empty()
                                            {
                                                addr.ip().to_string()
                                            } else {
                                                name.to_string()
                                            };
                                            let spoken =
                                                speak(stream, &name, &run.dialog, deadline);
                                            let _ = tell.send(Heard::Port(PortResult {
                                                addr,
                                                connect: Ok(took),
                                                spoken: Some(spoken),
                                            }));
                                        });
                                    if spawned.is_err() {
                                        speakers -= 1;
                                    }
                                    if speakers == 0 {
                                        // No thread at all: say so rather than hang.
                                        let _ = to_tcp.send(Heard::Port(PortResult {
                                            addr,
                                            connect: Ok(took),
                                            spoken: Some(Spoken {
                                                error: Some("no thread for the dialog".into()),
                                                ..Spoken::default()
                                            }),
                                        }));
                                        return;
                                    }
                                }
                                let _ = work.send((addr, stream, took));
                            }
                            outcome => {
                                let _ = to_tcp.send(Heard::Port(PortResult {
                                    addr,
                                    connect: outcome.map(|(_, took)| took),
                                    spoken: None,
                                }));
                            }
                        }
                    });
                    drop(work);
                });
            };
            if icmp_addrs.is_empty() && specs.len() <= 1 {
                // One host and no echoes: nothing to stream meanwhile, so
                // the connects run on this thread (a one-shot check of one
                // port starts no thread for them).
                tcp_loop();
                // Its sender goes with it, or the events below never end.
                drop(tcp_loop);
            } else {
                scope.spawn(tcp_loop);
            }
            if !icmp_addrs.is_empty() {
                let to_icmp = events.clone();
                let icmp_addrs = &icmp_addrs;
                scope.spawn(move || {
                    ping_each(icmp_addrs, &run.pacing, deadline, |t, echoes| {
                        let _ = to_icmp.send(Heard::Echo(icmp_addrs[t], echoes));
                    });
                });
            }
            drop(events);
            for event in heard {
                match event {
                    Heard::Port(p) => {
                        probed.ports.entry(p.addr).or_insert(p);
                    }
                    Heard::Echo(ip, e) => {
                        probed.echoes.insert(ip, e);
                    }
                }
                release(&probed, &mut next);
            }
        });
        // Whatever never came (a thread that could not start): released
        // as it is, so every spec is handed over once.
        while next < specs.len() {
            settled(&probed, next);
            next += 1;
        }
        probed
    }

    #[allow(clippy::too_many_arguments)]
    fn host_record(
        &self,
        run: &Run,
        ctx: &Context,
        h: &HostSpec,
        resolve: Option<&Resolved>,
        addrs: &[IpAddr],
        ports: &[u16],
        icmp: bool,
        echoes: &BTreeMap<IpAddr, Echoes>,
        ports_by: &BTreeMap<SocketAddr, PortResult>,
        started: Instant,
    ) -> Vec<Record> {
        let mut record = Record::new(CHECK, &h.address, Status::Ok, "");
        record.name = h.name.clone();
        record.labels = h.labels.clone();
        let finish = |mut r: Record| {
            r.duration_ms = crate::report::round_ms(started.elapsed());
            r
        };
        match resolve {
            Some(Ok((ips, took))) => {
                let shown: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
                record.trace.push(TraceStep::new(
                    "resolve",
                    !ips.is_empty(),
                    *took,
                    Some(shown.join(", ")),
                ));
                if ips.is_empty() {
                    record.status = Status::Unknown;
                    let family = if self.ipv4 { "IPv4" } else { "IPv6" };
                    record.summary = format!("no {family} address for {}", h.address);
                    return vec![finish(record)];
                }
            }
            Some(Err(u)) => {
                record.trace.push(TraceStep::new(
                    "resolve",
                    false,
                    u.took,
                    Some(u.words.clone()),
                ));
                record.status = match u.failure {
                    ResolveFailure::NotFound => Status::Unknown,
                    ResolveFailure::TimedOut => ctx.timeout_state,
                    ResolveFailure::Other => Status::Critical,
                };
                record.summary = format!("{}: {}", h.address, u.words);
                return vec![finish(record)];
            }
            None => {
                record.status = Status::Unknown;
                record.summary = format!("{}: not resolved", h.address);
                return vec![finish(record)];
            }
        }
        record.detail(
            "addresses",
            addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        );
        if !icmp && ports.is_empty() {
            // `ports = []` in the hosts file while -p is given: nothing
            // was probed, so nothing may be called OK.
            record.status = Status::Unknown;
            record.summary = "nothing to probe: no port and no ICMP for this host".into();
            return vec![finish(record)];
        }
        let prefix = |ip: &IpAddr| {
            if addrs.len() > 1 {
                format!("{ip}_")
            } else {
                String::new()
            }
        };
        let mut per_address: Vec<(IpAddr, Status, bool)> = Vec::new();
        let mut words: Vec<String> = Vec::new();
        let mut icmp_details = Vec::new();
        let mut port_details = Vec::new();
        let mut port_records = Vec::new();
        for ip in addrs {
            let mut status = Status::Ok;
            let mut alive = false;
            let mut parts: Vec<String> = Vec::new();
            if icmp {
                if let Some(e) = echoes.get(ip) {
                    let (s, said, is_alive, detail) =
                        self.icmp_part(run, ctx, e, &prefix(ip), &mut record);
                    status = status.max(s);
                    alive |= is_alive;
                    parts.push(said);
                    let mut detail = detail;
                    detail.insert("address".into(), json!(ip.to_string()));
                    icmp_details.push(serde_json::Value::Object(detail));
                }
            }
            let mut port_words = Vec::new();
            for &port in ports {
                let addr = SocketAddr::new(*ip, port);
                let Some(result) = ports_by.get(&addr) else {
                    continue;
                };
                let (s, said, open, detail, step) =
                    self.port_part(run, ctx, result, &prefix(ip), ports.len(), &mut record);
                status = status.max(s);
                alive |= open;
                port_words.push(said.clone());
                record.trace.extend(step.iter().cloned());
                if self.per_port {
                    let target = match ip {
                        IpAddr::V6(_) => format!("[{ip}]:{port}"),
                        IpAddr::V4(_) => format!("{ip}:{port}"),
                    };
                    let mut r = Record::new(CHECK, &target, s, format!("tcp {said}"));
                    r.name = format!("{}:{port}", h.name);
                    r.labels = h.labels.clone();
                    r.trace = step;
                    r.details = detail.clone();
                    port_records.push(r);
                }
                port_details.push(serde_json::Value::Object(detail));
            }
            if !port_words.is_empty() {
                parts.push(format!("tcp {}", port_words.join(", ")));
            }
            let said = parts.join("; ");
            words.push(if addrs.len() > 1 {
                format!("{ip} {said}")
            } else {
                said
            });
            per_address.push((*ip, status, alive));
        }
        if !icmp_details.is_empty() {
            record.detail("icmp", icmp_details);
        }
        if !port_details.is_empty() {
            record.detail("ports", port_details);
        }
        let alive_count = per_address.iter().filter(|(_, _, a)| *a).count();
        record.detail("alive_addresses", alive_count);
        record.status = match run.min_alive {
            // The N-th best address decides: N of them are at least that good.
            Some(n) => {
                let mut states: Vec<Status> = per_address.iter().map(|(_, s, _)| *s).collect();
                states.sort();
                if alive_count < n {
                    Status::Critical
                } else {
                    states.get(n - 1).copied().unwrap_or(Status::Critical)
                }
            }
            None => per_address
                .iter()
                .map(|(_, s, _)| *s)
                .max()
                .unwrap_or(Status::Ok),
        };
        let mut summary = words.join(" / ");
        if let Some(n) = run.min_alive {
            summary.push_str(&format!(
                " ({alive_count} of {} addresses alive, need {n})",
                addrs.len()
            ));
        }
        record.summary = summary;
        let mut out = vec![finish(record)];
        out.extend(port_records.into_iter().map(finish));
        out
    }

    fn icmp_part(
        &self,
        run: &Run,
        ctx: &Context,
        e: &Echoes,
        prefix: &str,
        record: &mut Record,
    ) -> (
        Status,
        String,
        bool,
        serde_json::Map<String, serde_json::Value>,
    ) {
        let mut detail = serde_json::Map::new();
        if let Some(why) = &e.no_socket {
            record.trace.push(TraceStep::new(
                "icmp",
                false,
                Duration::ZERO,
                Some(why.clone()),
            ));
            detail.insert("error".into(), json!(why));
            return (
                Status::Unknown,
                format!("ICMP unknown: {why}"),
                false,
                detail,
            );
        }
        let stats = EchoStats::of(&e.rtts);
        let l = &run.icmp_limits;
        let ms = |v: f64| (v * 1000.0).round() / 1000.0;
        detail.insert("socket".into(), json!(e.socket.map(|s| s.as_str())));
        detail.insert("sent".into(), json!(stats.sent));
        detail.insert("received".into(), json!(stats.received));
        detail.insert("loss_pct".into(), json!(ms(stats.loss_pct)));
        detail.insert(
            "rtts_ms".into(),
            json!(e
                .rtts
                .iter()
                .map(|r| r.map(|d| ms(d.as_secs_f64() * 1000.0)))
                .collect::<Vec<_>>()),
        );
        if e.unsent > 0 {
            detail.insert("unsent".into(), json!(e.unsent));
        }
        if e.duplicates > 0 {
            detail.insert("duplicates".into(), json!(e.duplicates));
        }
        if e.cut > 0 {
            detail.insert("cut_by_deadline".into(), json!(e.cut));
        }
        if e.late > 0 {
            detail.insert("late".into(), json!(e.late));
        }
        if let Some(err) = &e.error {
            detail.insert("error".into(), json!(err));
        }
        let with = |m: Metric, t: &Thresholds| {
            let (w, c) = t.texts();
            Metric {
                warn: w,
                crit: c,
                ..m
            }
        };
        let mut status = Status::Ok;
        let mut said = Vec::new();
        if stats.received == 0 {
            if stats.sent == 0 && e.error.is_none() {
                // Nothing had its full wait: the deadline, not the host.
                status = ctx.timeout_state;
                said.push(format!(
                    "ICMP undecided at the deadline ({} echoes unanswered within their wait, {} not sent)",
                    e.cut, e.unsent
                ));
            } else {
                status = Status::Critical;
                let why = e.error.clone().unwrap_or_else(|| match stats.sent {
                    1 => "no reply to 1 echo".to_string(),
                    n => format!("no reply to {n} echoes"),
                });
                said.push(format!("ICMP {why}, 100% lost"));
            }
        } else {
            let rta = stats.rta_ms.unwrap_or(0.0);
            status = status
                .max(l.rta.status(rta))
                .max(l.pl.status(stats.loss_pct));
            said.push(format!(
                "ICMP rta {:.3} ms, {}% lost",
                rta,
                crate::render::number(ms(stats.loss_pct))
            ));
            record.metrics.push(with(
                Metric::new(format!("{prefix}rta"), ms(rta), "ms").min(0.0),
                &l.rta,
            ));
            record.metrics.push(Metric::new(
                format!("{prefix}rtmin"),
                ms(stats.rtmin_ms.unwrap_or(0.0)),
                "ms",
            ));
            record.metrics.push(Metric::new(
                format!("{prefix}rtmax"),
                ms(stats.rtmax_ms.unwrap_or(0.0)),
                "ms",
            ));
            // Jitter, MOS and score: judged, and named in the summary, only
            // when the operator set limits for them.
            let figures = [
                (
                    "jitter",
                    stats.jitter_ms,
                    &l.jitter,
                    "ms",
                    None,
                    "jitter",
                    3,
                    " ms",
                ),
                ("mos", stats.mos, &l.mos, "", Some(5.0), "MOS", 1, ""),
                (
                    "score",
                    stats.score,
                    &l.score,
                    "",
                    Some(100.0),
                    "score",
                    1,
                    "",
                ),
            ];
            for (name, value, limits, unit, max, shown, places, suffix) in figures {
                let Some(v) = value else { continue };
                status = status.max(limits.status(v));
                if limits.warn.is_some() {
                    said.push(format!("{shown} {v:.places$}{suffix}"));
                }
                let mut metric =
                    with(Metric::new(format!("{prefix}{name}"), ms(v), unit), limits).min(0.0);
                metric.max = max;
                record.metrics.push(metric);
            }
        }
        record.metrics.push(with(
            Metric::new(format!("{prefix}pl"), ms(stats.loss_pct), "%").min(0.0),
            &l.pl,
        ));
        let words = said.join(", ");
        let took = Duration::from_secs_f64(stats.rta_ms.unwrap_or(0.0) / 1000.0);
        record.trace.push(TraceStep::new(
            "icmp",
            stats.received > 0,
            took,
            Some(format!(
                "{} of {} replies via the {} socket{}",
                stats.received,
                stats.sent,
                e.socket.map_or("no", |s| s.as_str()),
                if e.unsent > 0 {
                    format!(", {} not sent before the deadline", e.unsent)
                } else {
                    String::new()
                }
            )),
        ));
        (status, words, stats.received > 0, detail)
    }

    #[allow(clippy::type_complexity)]
    fn port_part(
        &self,
        run: &Run,
        ctx: &Context,
        p: &PortResult,
        prefix: &str,
        port_count: usize,
        record: &mut Record,
    ) -> (
        Status,
        String,
        bool,
        serde_json::Map<String, serde_json::Value>,
        Vec<TraceStep>,
    ) {
        let port = p.addr.port();
        let mut detail = serde_json::Map::new();
        detail.insert("address".into(), json!(p.addr.ip().to_string()));
        detail.insert("port".into(), json!(port));
        let mut steps = Vec::new();
        let step_name = format!("tcp {port}");
        let took = match &p.connect {
            Err(f) => {
                let state = match f.failure {
                    ConnectFailure::Refused => self.refused,
                    ConnectFailure::TimedOut => ctx.timeout_state,
                    _ => Status::Critical,
                };
                detail.insert("state".into(), json!(f.failure.as_str()));
                detail.insert("ms".into(), json!(crate::report::round_ms(f.took)));
                steps.push(TraceStep::new(
                    &step_name,
                    false,
                    f.took,
                    Some(f.words.clone()),
                ));
                return (
                    state,
                    format!("{port} {}", f.failure.as_str()),
                    false,
                    detail,
                    steps,
                );
            }
            Ok(took) => *took,
        };
        steps.push(TraceStep::new(&step_name, true, took, Some("open".into())));
        detail.insert("state".into(), json!("open"));
        detail.insert("ms".into(), json!(crate::report::round_ms(took)));
        let mut status = Status::Ok;
        let mut notes: Vec<String> = Vec::new();
        let mut total = took;
        if let Some(spoken) = &p.spoken {
            total += spoken.took;
            if run.dialog.tls.is_some() {
                match &spoken.tls_error {
                    Some(why) => {
                        status = Status::Critical;
                        notes.push(format!("TLS: {why}"));
                        steps.push(TraceStep::new("tls", false, spoken.took, Some(why.clone())));
                    }
                    None if spoken.tls.is_none() => {}
                    None => {
                        let version = spoken
                            .tls
                            .as_ref()
                            .map(|(v, _)| v.clone())
                            .unwrap_or_default();
                        steps.push(TraceStep::new(
                            "tls",
                            true,
                            spoken.took,
                            Some(version.clone()),
                        ));
                        detail.insert("tls_version".into(), json!(version));
                    }
                }
                if let Some((days, cert)) = spoken.cert_days() {
                    detail.insert(
                        "cert_days_left".into(),
                        json!((days * 100.0).round() / 100.0),
                    );
                    detail.insert("cert_subject".into(), json!(cert.subject));
                    if let Some((warn, crit)) = run.cert_days {
                        let s = if crit.is_some_and(|c| days < c) || days < 0.0 {
                            Status::Critical
                        } else if days < warn {
                            Status::Warning
                        } else {
                            Status::Ok
                        };
                        if s != Status::Ok {
                            notes.push(format!("certificate expires in {days:.1} days"));
                        }
                        status = status.max(s);
                    }
                }
            }
            if let Some(matched) = spoken.matched {
                if !matched {
                    status = status.max(self.mismatch);
                    let missing = spoken.missing.join("', '");
                    notes.push(match &spoken.error {
                        Some(e) => format!("{e}, expected '{missing}'"),
                        None => format!("answer lacks '{missing}'"),
                    });
                }
                steps.push(TraceStep::new(
                    "expect",
                    matched,
                    spoken.took,
                    Some(if matched {
                        "matched".into()
                    } else {
                        format!("missing '{}'", spoken.missing.join("', '"))
                    }),
                ));
            } else if let Some(e) = &spoken.error {
                status = status.max(Status::Critical);
                notes.push(e.clone());
            }
            if !self.jail && !spoken.answer.is_empty() {
                let answer = String::from_utf8_lossy(&spoken.answer);
                let first: String = answer
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect();
                detail.insert("answer".into(), json!(first));
            }
        }
        let time_status = run.connect.status(total.as_secs_f64());
        status = status.max(time_status);
        let (w, c) = run.connect.texts();
        let label = if port_count > 1 {
            format!("{prefix}time_{port}")
        } else {
            format!("{prefix}time")
        };
        record.metrics.push(Metric {
            warn: w,
            crit: c,
            ..Metric::new(label, crate::report::round_s(total), "s").min(0.0)
        });
        let mut said = format!("{port} open ({:.1} ms)", total.as_secs_f64() * 1000.0);
        if !notes.is_empty() {
            said.push_str(&format!(" {}", notes.join(", ")));
        }
        (status, said, true, detail, steps)
    }
}
