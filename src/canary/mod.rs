//! canary-peer: canaries that measure the data plane between them.
//!
//! A canary runs [`serve`]: `/health` says who it is (id, data centre,
//! availability zone), an echo port answers sequenced UDP packets, and
//! `/connectivity` hands out what it measured of its own peers. The probe
//! ([`probe_peer`]) measures one peer in three layers — UDP sequenced echo
//! (loss, reordering, jitter), TCP handshakes, HTTP requests — so network
//! round trip and application time are told apart; [`mesh`] puts many
//! sources' records into a zone × zone matrix and says who is to blame.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::report::{round_ms, Metric, Record, Status, TraceStep};
use crate::threshold::Thresholds;

pub mod cli;
pub mod mesh;
pub mod peers;
pub mod serve;
pub mod system;

/// The `check` of canary-peer's records.
pub const CHECK: &str = "canary-peer";

/// The first bytes of every UDP echo packet; a canary echoes nothing else,
/// so its port is no reflector for other traffic.
pub const UDP_MAGIC: &[u8; 4] = b"SKYC";

/// The bytes of an echo packet before its padding: magic, sequence number,
/// the prober's send time (ns since its start).
const UDP_HEADER: usize = 4 + 4 + 8;

/// The largest echo packet sent or answered.
pub const UDP_MAX: usize = 1472;

/// Who a canary is: what `/health` says and what every record is labelled with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The canary's id (`CANARY_ID`; the host name by default).
    pub id: String,
    /// Its data centre (`DATACENTER`).
    #[serde(default)]
    pub datacenter: String,
    /// Its availability zone (`AVAILABILITY_ZONE`).
    #[serde(default)]
    pub az: String,
}

/// A peer to measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Its base URL, `http://HOST:PORT` (no path).
    pub url: String,
    /// Who it is, when the peer list says; otherwise learnt from its `/health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its data centre, when the peer list says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// Its availability zone, when the peer list says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub az: Option<String>,
    /// Its UDP echo port [default: the HTTP port].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_port: Option<u16>,
}

impl Peer {
    /// A peer known only by its URL.
    pub fn at(url: &str) -> Result<Peer, String> {
        let url = normalise_url(url)?;
        Ok(Peer {
            url,
            id: None,
            datacenter: None,
            az: None,
            udp_port: None,
        })
    }

    /// Host and port of its URL.
    pub fn host_port(&self) -> Result<(String, u16), String> {
        host_port(&self.url)
    }
}

/// `HOST:PORT` or `http://HOST:PORT[/]` as `http://HOST:PORT`; anything
/// else (a path, https, userinfo, no port) is refused with the reason.
pub fn normalise_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let uri: ureq::http::Uri = with_scheme
        .parse()
        .map_err(|e| format!("{text:?} is not a peer URL ({e})"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "{text:?}: a peer is http://HOST:PORT (canaries serve plain HTTP)"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{text:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("{text:?}: a peer URL takes no user name"));
    }
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
        return Err(format!(
            "{text:?}: a peer URL has no path (give http://HOST:PORT)"
        ));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    let port = authority
        .port_u16()
        .ok_or_else(|| format!("{text:?} has no port (give http://HOST:PORT)"))?;
    Ok(format!("http://{host}:{port}"))
}

fn host_port(url: &str) -> Result<(String, u16), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let a = uri.authority().ok_or_else(|| format!("{url}: no host"))?;
    let host = a.host().trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), a.port_u16().unwrap_or(80)))
}

/// How to measure a peer.
#[derive(Debug, Clone)]
pub struct Options {
    /// HTTP requests (and TCP handshakes) per peer.
    pub requests: usize,
    /// UDP echo packets per peer.
    pub packets: usize,
    /// Time between two UDP packets to one peer.
    pub packet_interval: Duration,
    /// How long a UDP reply may take after the last packet went out.
    pub packet_wait: Duration,
    /// Bytes per UDP packet.
    pub packet_size: usize,
    /// Bytes to fetch from the peer's bulk endpoint (0: no throughput test).
    pub bulk: u64,
    /// Limits on the HTTP latency p95 (seconds).
    pub latency: Thresholds,
    /// Limits on UDP loss (%).
    pub loss: Thresholds,
    /// Limits on HTTP success (%).
    pub success: Thresholds,
    /// This canary, for the records' source labels.
    pub source: Identity,
}

/// The UDP layer's figures for one peer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Udp {
    /// Packets sent.
    pub sent: usize,
    /// Distinct packets echoed back in time.
    pub received: usize,
    /// Echoes of a packet already echoed.
    pub duplicates: usize,
    /// Echoes that came after an echo of a later packet.
    pub reordered: usize,
    /// Round trip of each packet sent, in seconds (`None`: lost).
    pub rtts: Vec<Option<f64>>,
    /// Why the layer could not run, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Udp {
    /// Loss and jitter of the echoes, by the same formulas as ICMP echo's
    /// (one entry of `rtts` per packet sent).
    pub fn stats(&self) -> crate::net::icmp::EchoStats {
        let rtts: Vec<Option<Duration>> = self
            .rtts
            .iter()
            .map(|r| r.map(Duration::from_secs_f64))
            .collect();
        crate::net::icmp::EchoStats::of(&rtts)
    }
}

/// One peer measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The peer as configured.
    pub peer: Peer,
    /// Who the peer said it is (its `/health`), when it said.
    pub identity: Option<Identity>,
    /// The address measured.
    pub addr: Option<SocketAddr>,
    /// Why the peer could not be measured at all (no such host).
    pub error: Option<String>,
    /// UDP echo.
    pub udp: Udp,
    /// TCP handshake times (seconds) of those that succeeded.
    pub connects: Vec<f64>,
    /// TCP handshakes that failed, by kind (`refused`, `timeout`…).
    pub connect_failures: Vec<String>,
    /// HTTP request times (seconds) of those that answered 2xx.
    pub latencies: Vec<f64>,
    /// HTTP requests made.
    pub requests: usize,
    /// Why HTTP requests failed (first few, in words).
    pub http_errors: Vec<String>,
    /// The peer's clock minus ours (seconds), from its `/health` time.
    pub clock_offset: Option<f64>,
    /// Bulk fetch: bytes and seconds.
    pub bulk: Option<(u64, f64)>,
    /// How long the whole peer took.
    pub took: Duration,
}

/// The `q` quantile (0–1) of sorted `values`, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

pub(crate) fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The `/health` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// Always "ok" from a canary that answers.
    pub status: String,
    /// Who it is.
    #[serde(flatten)]
    pub identity: Identity,
    /// Seconds since it started.
    pub uptime: f64,
    /// skyprobe's version.
    pub version: String,
    /// Its clock (Unix seconds), for the clock offset.
    pub time: f64,
    /// Its UDP echo port (0: none).
    #[serde(default)]
    pub udp_port: u16,
}

/// An HTTP agent for peers: status codes are answers, connections kept.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .user_agent(format!(
            "skyprobe/{} canary-peer",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .new_agent()
}

/// GET `url` through `agent`, the request ending by `deadline` however
/// long the agent was made to wait.
pub fn get_by(
    agent: &ureq::Agent,
    url: &str,
    deadline: Instant,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    agent
        .get(url)
        .config()
        .timeout_global(Some(left.max(Duration::from_millis(1))))
        .build()
        .call()
}

/// When measuring must stop: a twentieth of the time left before the
/// round's deadline, so the records are made and written before it (a
/// peer that never answers must not leave the round to the watchdog).
pub fn work_deadline(ctx: &crate::cli::Context) -> Instant {
    ctx.deadline
        .checked_sub(ctx.remaining() / 20)
        .unwrap_or(ctx.deadline)
}

/// Longest `/health` answer read.
const HEALTH_MAX: u64 = 64 * 1024;

/// Measure `peer` in its three layers before `deadline`.
pub fn probe_peer(peer: &Peer, opts: &Options, deadline: Instant) -> Measured {
    let start = Instant::now();
    let mut m = unmeasured(peer);
    let (host, port) = match peer.host_port() {
        Ok(hp) => hp,
        Err(e) => {
            m.error = Some(e);
            return m;
        }
    };
    let addr = match crate::net::resolve(&host, port, deadline) {
        Ok((addrs, _)) => match addrs.first() {
            Some(a) => *a,
            None => {
                m.error = Some(format!("{host}: no address"));
                return m;
            }
        },
        Err(e) => {
            m.error = Some(format!("{host}: {}", e.words));
            m.took = start.elapsed();
            return m;
        }
    };
    m.addr = Some(addr);
    // UDP first and alone: its round trips are the network's, not shared
    // with our own HTTP traffic to the same peer.
    let udp_port = peer.udp_port.unwrap_or(port);
    m.udp = udp_echo(SocketAddr::new(addr.ip(), udp_port), opts, deadline);
    for _ in 0..opts.requests {
        match crate::net::connect(addr, deadline) {
            Ok((_, took)) => m.connects.push(took.as_secs_f64()),
            Err(f) => m.connect_failures.push(f.failure.as_str().to_string()),
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let agent = agent(left.max(Duration::from_millis(1)));
    let url = format!("http://{}/health", fmt_addr(addr));
    let mut best_round_trip = f64::INFINITY;
    for _ in 0..opts.requests {
        if Instant::now() >= deadline {
            m.http_errors.push("deadline reached".into());
            break;
        }
        m.requests += 1;
        let sent = Instant::now();
        let sent_unix = now_unix();
        match get_by(&agent, &url, deadline) {
            Ok(mut resp) => {
                let code = resp.status().as_u16();
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(HEALTH_MAX)
                    .read_to_vec();
                let took = sent.elapsed().as_secs_f64();
                match body {
                    Ok(bytes) if (200..300).contains(&code) => {
                        match serde_json::from_slice::<Health>(&bytes) {
                            Ok(h) => {
                                // NTP's estimate (its clock read half-way
                                // through), from the quickest exchange: its
                                // error is at most half that round trip.
                                if took < best_round_trip {
                                    best_round_trip = took;
                                    m.clock_offset = Some(h.time - (sent_unix + took / 2.0));
                                }
                                if m.identity.is_none() {
                                    m.identity = Some(h.identity);
                                }
                                m.latencies.push(took);
                            }
                            Err(_) => push_error(
                                &mut m.http_errors,
                                format!("HTTP {code} but not a canary's /health"),
                            ),
                        }
                    }
                    Ok(_) => push_error(&mut m.http_errors, format!("HTTP {code}")),
                    Err(e) => push_error(&mut m.http_errors, format!("reading the answer: {e}")),
                }
            }
            Err(e) => push_error(&mut m.http_errors, http_words(&e)),
        }
    }
    if opts.bulk > 0 && Instant::now() < deadline {
        let url = format!("http://{}/bulk?bytes={}", fmt_addr(addr), opts.bulk);
        let sent = Instant::now();
        if let Ok(mut resp) = get_by(&agent, &url, deadline) {
            if resp.status().is_success() {
                let mut reader = resp.body_mut().with_config().limit(opts.bulk).reader();
                let got = std::io::copy(&mut reader, &mut std::io::sink()).unwrap_or(0);
                m.bulk = Some((got, sent.elapsed().as_secs_f64()));
            }
        }
    }
    m.took = start.elapsed();
    m
}

fn push_error(errors: &mut Vec<String>, e: String) {
    if errors.len() < 5 && !errors.contains(&e) {
        errors.push(e);
    }
}

fn http_words(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => match crate::net::ConnectFailure::of(io) {
            crate::net::ConnectFailure::Other => io.to_string(),
            f => f.as_str().to_string(),
        },
        ureq::Error::Timeout(_) => "timeout".into(),
        other => other.to_string(),
    }
}

/// An address as it goes into a URL (IPv6 in brackets).
pub fn fmt_addr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Sequenced UDP echo to `to`: `packets` at `packet_interval`, replies
/// matched on their sequence number and our own send time inside them.
pub fn udp_echo(to: SocketAddr, opts: &Options, deadline: Instant) -> Udp {
    let mut udp = Udp::default();
    let any: std::net::IpAddr = if to.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let bind = SocketAddr::new(any, 0);
    let socket = match UdpSocket::bind(bind).and_then(|s| s.connect(to).map(|_| s)) {
        Ok(s) => s,
        Err(e) => {
            udp.error = Some(format!("UDP socket: {e}"));
            return udp;
        }
    };
    let size = opts.packet_size.clamp(UDP_HEADER, UDP_MAX);
    let epoch = Instant::now();
    let mut rtts: Vec<Option<f64>> = Vec::with_capacity(opts.packets);
    let mut highest: Option<u32> = None;
    let mut packet = vec![0u8; size];
    packet[..4].copy_from_slice(UDP_MAGIC);
    let mut buf = [0u8; UDP_MAX + 1];
    let mut next_send = epoch;
    let mut last_sent = epoch;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let all_sent = rtts.len() >= opts.packets;
        if !all_sent && now >= next_send {
            let seq = rtts.len() as u32;
            packet[4..8].copy_from_slice(&seq.to_be_bytes());
            let sent_ns = now.duration_since(epoch).as_nanos() as u64;
            packet[8..16].copy_from_slice(&sent_ns.to_be_bytes());
            rtts.push(None);
            // A send refused (ICMP port unreachable came back) is a loss too.
            let _ = socket.send(&packet);
            last_sent = now;
            next_send = now + opts.packet_interval;
            continue;
        }
        let all_back = all_sent && rtts.iter().all(Option::is_some);
        if all_back || (all_sent && now >= last_sent + opts.packet_wait) {
            break;
        }
        let until = if all_sent {
            (last_sent + opts.packet_wait).min(deadline)
        } else {
            next_send.min(deadline)
        };
        let wait = until
            .saturating_duration_since(now)
            .max(Duration::from_micros(100));
        if socket.set_read_timeout(Some(wait)).is_err() {
            break;
        }
        let Ok(n) = socket.recv(&mut buf) else {
            continue;
        };
        let got = Instant::now();
        if n < UDP_HEADER || &buf[..4] != UDP_MAGIC {
            continue;
        }
        let seq = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let mut sent_ns = [0u8; 8];
        sent_ns.copy_from_slice(&buf[8..16]);
        let sent_ns = u64::from_be_bytes(sent_ns);
        let Some(slot) = rtts.get_mut(seq as usize) else {
            continue;
        };
        let rtt = got.duration_since(epoch).as_nanos() as f64 / 1e9 - sent_ns as f64 / 1e9;
        if !(0.0..=3600.0).contains(&rtt) {
            continue;
        }
        if slot.is_some() {
            udp.duplicates += 1;
            continue;
        }
        *slot = Some(rtt);
        udp.received += 1;
        match highest {
            Some(h) if seq < h => udp.reordered += 1,
            _ => highest = Some(seq),
        }
    }
    udp.sent = rtts.len();
    udp.rtts = rtts
        .into_iter()
        .map(|r| r.map(|s| (s * 1e6).round() / 1e6))
        .collect();
    udp
}

fn metric(name: &str, value: f64, unit: &str, t: Option<&Thresholds>) -> Metric {
    let mut m = Metric::new(name, value, unit).min(0.0);
    if let Some(t) = t {
        let (w, c) = t.texts();
        m.warn = w;
        m.crit = c;
    }
    m
}

/// The record of one measured peer.
pub fn record(m: &Measured, opts: &Options) -> Record {
    let name = m
        .identity
        .as_ref()
        .map(|i| i.id.clone())
        .or_else(|| m.peer.id.clone())
        .unwrap_or_else(|| m.peer.url.clone());
    let mut r = Record::new(CHECK, &m.peer.url, Status::Ok, "");
    r.name = name.clone();
    r.duration_ms = round_ms(m.took);
    let dst = Identity {
        id: name,
        datacenter: m
            .identity
            .as_ref()
            .map(|i| i.datacenter.clone())
            .filter(|d| !d.is_empty())
            .or_else(|| m.peer.datacenter.clone())
            .unwrap_or_default(),
        az: m
            .identity
            .as_ref()
            .map(|i| i.az.clone())
            .filter(|d| !d.is_empty())
            .or_else(|| m.peer.az.clone())
            .unwrap_or_default(),
    };
    for (k, v) in [
        ("src_id", &opts.source.id),
        ("src_dc", &opts.source.datacenter),
        ("src_az", &opts.source.az),
        ("dst_id", &dst.id),
        ("dst_dc", &dst.datacenter),
        ("dst_az", &dst.az),
    ] {
        if !v.is_empty() {
            r.labels.insert(k.to_string(), v.clone());
        }
    }
    r.detail("source", json!(opts.source));
    r.detail("peer", json!(dst));
    if let Some(e) = &m.error {
        r.status = Status::Critical;
        r.summary = format!("{}: {e}", m.peer.url);
        r.trace
            .push(TraceStep::new("resolve", false, m.took, Some(e.clone())));
        r.detail("error", e.clone());
        return r;
    }
    if let Some(a) = m.addr {
        r.detail("address", a.to_string());
    }
    let mut worst = Status::Ok;
    let mut why: Vec<String> = Vec::new();

    // UDP.
    let echoes = m.udp.stats();
    let loss = echoes.loss_pct;
    let rtt = median(&m.udp.rtts.iter().flatten().copied().collect::<Vec<_>>());
    let udp_ok = m.udp.error.is_none() && m.udp.received > 0;
    r.trace.push(TraceStep::new(
        "udp",
        udp_ok,
        Duration::from_secs_f64(rtt.unwrap_or(0.0)),
        Some(match &m.udp.error {
            Some(e) => e.clone(),
            None => format!(
                "{}/{} echoed, {} reordered, {} duplicated",
                m.udp.received, m.udp.sent, m.udp.reordered, m.udp.duplicates
            ),
        }),
    ));
    let loss_state = opts.loss.status(loss);
    if loss_state > Status::Ok {
        why.push(format!("{} UDP loss", pct(loss)));
    }
    worst = worst.max(loss_state);
    r.metrics.push(percent("loss", loss, &opts.loss));
    if let Some(rtt) = rtt {
        r.metrics.push(metric("rtt", round6(rtt), "s", None));
    }
    if let Some(j) = echoes.jitter_ms {
        r.metrics
            .push(metric("jitter", round6(j / 1000.0), "s", None));
    }
    r.metrics
        .push(metric("reordered", m.udp.reordered as f64, "", None));
    r.detail("udp", json!(m.udp));

    // TCP.
    let connect = median(&m.connects);
    r.trace.push(TraceStep::new(
        "connect",
        m.connect_failures.is_empty() && !m.connects.is_empty(),
        Duration::from_secs_f64(connect.unwrap_or(0.0)),
        Some(if m.connect_failures.is_empty() {
            format!("{} handshakes", m.connects.len())
        } else {
            format!(
                "{} of {} handshakes failed ({})",
                m.connect_failures.len(),
                m.connects.len() + m.connect_failures.len(),
                dedup(&m.connect_failures).join(", ")
            )
        }),
    ));
    if let Some(c) = connect {
        r.metrics.push(metric("connect", round6(c), "s", None));
    }
    r.detail(
        "tcp",
        json!({"ok": m.connects.len(), "failed": m.connect_failures, "times": m.connects.iter().map(|v| round6(*v)).collect::<Vec<_>>()}),
    );

    // HTTP.
    let mut sorted = m.latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let success = if m.requests == 0 {
        0.0
    } else {
        m.latencies.len() as f64 * 100.0 / m.requests as f64
    };
    r.trace.push(TraceStep::new(
        "http",
        m.http_errors.is_empty() && !m.latencies.is_empty(),
        Duration::from_secs_f64(quantile(&sorted, 0.5).unwrap_or(0.0)),
        Some(if m.http_errors.is_empty() {
            format!("{} of {} requests answered", m.latencies.len(), m.requests)
        } else {
            format!(
                "{} of {} requests answered; {}",
                m.latencies.len(),
                m.requests,
                m.http_errors.join("; ")
            )
        }),
    ));
    for (name, q) in [
        ("latency_p50", 0.5),
        ("latency_p95", 0.95),
        ("latency_p99", 0.99),
        ("latency_max", 1.0),
    ] {
        if let Some(v) = quantile(&sorted, q) {
            let t = (name == "latency_p95").then_some(&opts.latency);
            r.metrics.push(metric(name, round6(v), "s", t));
        }
    }
    if let Some(p95) = quantile(&sorted, 0.95) {
        let s = opts.latency.status(p95);
        if s > Status::Ok {
            why.push(format!("p95 {:.1} ms", p95 * 1000.0));
        }
        worst = worst.max(s);
    }
    r.metrics.push(percent("success", success, &opts.success));
    let s = opts.success.status(success);
    if s > Status::Ok {
        why.push(format!("{} of requests answered", pct(success)));
    }
    worst = worst.max(s);
    // Application time: what HTTP costs beyond one network round trip.
    if let (Some(p50), Some(net)) = (quantile(&sorted, 0.5), rtt.or(connect)) {
        r.metrics
            .push(metric("app_time", round6((p50 - net).max(0.0)), "s", None));
    }
    r.detail(
        "http",
        json!({"requests": m.requests, "ok": m.latencies.len(), "errors": m.http_errors}),
    );
    if let Some(off) = m.clock_offset {
        r.detail("clock_offset", round6(off));
    }
    if let Some((bytes, secs)) = m.bulk {
        let rate = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
        r.metrics
            .push(metric("throughput", rate.round(), "B", None));
        r.detail("bulk", json!({"bytes": bytes, "seconds": round6(secs)}));
    }
    if m.identity.is_none() && !m.latencies.is_empty() {
        worst = worst.max(Status::Warning);
    }
    r.status = worst;
    let p95 = quantile(&sorted, 0.95)
        .map(|v| format!("p95 {:.1} ms", v * 1000.0))
        .unwrap_or_else(|| "no answer".into());
    r.summary = if why.is_empty() {
        format!(
            "{}: {p95}, {} loss, {} answered",
            r.name,
            pct(loss),
            pct(success)
        )
    } else {
        format!("{}: {} ({p95})", r.name, why.join(", "))
    };
    r
}

fn percent(name: &str, value: f64, t: &Thresholds) -> Metric {
    let mut m = metric(name, round2(value), "%", Some(t));
    m.max = Some(100.0);
    m
}

fn dedup(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

fn pct(v: f64) -> String {
    format!("{}%", crate::render::number(round2(v)))
}

pub(crate) fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

pub(crate) fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Measure every peer, `concurrency` at a time, inside the round's deadline;
/// peers the deadline reached first come back measured as not started.
pub fn measure_all(
    peers: &[Peer],
    opts: &Options,
    ctx: &crate::cli::Context,
    concurrency: usize,
) -> Vec<Measured> {
    let by = work_deadline(ctx);
    crate::pool::run_all(
        peers,
        ctx,
        concurrency,
        &|p: &Peer| probe_peer(p, opts, by),
        &|p: &Peer| Measured {
            error: Some("the deadline came before this peer was measured".into()),
            ..unmeasured(p)
        },
    )
}

fn unmeasured(peer: &Peer) -> Measured {
    Measured {
        peer: peer.clone(),
        identity: None,
        addr: None,
        error: None,
        udp: Udp::default(),
        connects: Vec::new(),
        connect_failures: Vec::new(),
        latencies: Vec::new(),
        requests: 0,
        http_errors: Vec::new(),
        clock_offset: None,
        bulk: None,
        took: Duration::ZERO,
    }
}

/// Answer one echo packet: the same bytes back when it is ours, else nothing.
pub fn echo_reply(packet: &[u8]) -> Option<&[u8]> {
    (packet.len() >= UDP_HEADER && packet.len() <= UDP_MAX && &packet[..4] == UDP_MAGIC)
        .then_some(packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_are_host_and_port_only() {
        assert_eq!(
            normalise_url("10.0.0.5:8080").as_deref(),
            Ok("http://10.0.0.5:8080")
        );
        assert_eq!(
            normalise_url("http://[::1]:9/").as_deref(),
            Ok("http://[::1]:9")
        );
        for bad in [
            "https://a:1",
            "http://a",
            "http://u:p@a:1",
            "http://a:1/x",
            "a:99999",
            "",
        ] {
            assert!(normalise_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.95), Some(95.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
        assert_eq!(quantile(&[3.0], 0.5), Some(3.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn only_our_packets_are_echoed() {
        let mut p = vec![0u8; 32];
        p[..4].copy_from_slice(UDP_MAGIC);
        assert!(echo_reply(&p).is_some());
        assert!(echo_reply(&p[..8]).is_none());
        assert!(echo_reply(b"GET / HTTP/1.0\r\n\r\n").is_none());
        assert!(echo_reply(&vec![0u8; UDP_MAX + 1]).is_none());
    }

    #[test]
    fn udp_loss_reordering_and_duplicates_are_counted() {
        // A responder that drops every fourth packet, answers the second
        // twice, and holds the fifth back until after the sixth.
        let responder = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = responder.local_addr().expect("addr");
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut held: Option<(Vec<u8>, SocketAddr)> = None;
            let _ = responder.set_read_timeout(Some(Duration::from_secs(5)));
            while let Ok((n, from)) = responder.recv_from(&mut buf) {
                let seq = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                let p = buf[..n].to_vec();
                match seq {
                    s if s % 4 == 3 => continue,
                    1 => {
                        let _ = responder.send_to(&p, from);
                        let _ = responder.send_to(&p, from);
                    }
                    4 => held = Some((p, from)),
                    5 => {
                        let _ = responder.send_to(&p, from);
                        if let Some((h, f)) = held.take() {
                            let _ = responder.send_to(&h, f);
                        }
                    }
                    _ => {
                        let _ = responder.send_to(&p, from);
                    }
                }
            }
        });
        let opts = Options {
            requests: 0,
            packets: 8,
            packet_interval: Duration::from_millis(5),
            packet_wait: Duration::from_millis(300),
            packet_size: 64,
            bulk: 0,
            latency: Thresholds::default(),
            loss: Thresholds::default(),
            success: Thresholds::default(),
            source: Identity::default(),
        };
        let udp = udp_echo(to, &opts, Instant::now() + Duration::from_secs(5));
        assert_eq!(udp.sent, 8);
        assert_eq!(udp.received, 6, "{udp:?}");
        assert_eq!(udp.stats().loss_pct, 25.0);
        assert_eq!(udp.duplicates, 1);
        assert_eq!(udp.reordered, 1);
        assert!(udp.rtts[3].is_none() && udp.rtts[7].is_none());
    }
}
