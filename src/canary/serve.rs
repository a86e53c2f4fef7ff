//! `canary-peer serve`: the endpoint on each canary. HTTP on hyper, driven
//! by one event-loop thread (so a thousand idle or slow connections cost
//! buffers, not threads), with the blocking work — probing peers — on a
//! bounded pool of threads; a UDP echo port on the same loop.
//!
//! - `/health`: who it is (id, data centre, zone), uptime, version, clock.
//! - `/health/detailed`: CPU, memory, disk, load judged as Nagios ranges,
//!   and the agent's own health (clock offset to its peers, CPU
//!   throttling, the last probe cycle's duration); 503 when CRITICAL.
//! - `/metrics`: Prometheus text, its own figures and its mesh series.
//! - `/connectivity`: the last cycle's records of its peers (`?fresh=1`
//!   probes now); `?target=http://HOST:PORT` a canary, `HOST:PORT` a TCP
//!   port, `HOST` ICMP echo — an indirect check for probe-host.
//! - `/echo` (the request body back), `/bulk?bytes=N` (N bytes, bounded).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::mesh::{self, Series};
use super::system::{self, Limits, Reading};
use super::{Health, Identity, Measured, Options, Peer};
use crate::report::{Record, Status};

/// How a canary serves.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP address.
    pub listen: SocketAddr,
    /// UDP echo address (None: no echo port).
    pub udp: Option<SocketAddr>,
    /// Who it is.
    pub identity: Identity,
    /// The `host` of the records it hands out.
    pub hostname: String,
    /// Where the peers it measures every `traffic_interval` come from
    /// (none: it only answers).
    pub peers: super::peers::PeerSource,
    /// Time between two probe cycles (jittered ±10 %, phase from its id).
    pub traffic_interval: Duration,
    /// Time between two readings of its machine.
    pub monitoring_interval: Duration,
    /// Deadline of one probe cycle, and of one `/connectivity` probe.
    pub cycle_timeout: Duration,
    /// How peers are measured.
    pub probe: Options,
    /// What its machine is judged by.
    pub limits: Limits,
    /// The file system whose use it reports.
    pub disk: PathBuf,
    /// Connections held at once; more are closed at once.
    pub max_connections: usize,
    /// Threads for probing (the bounded pool).
    pub workers: usize,
    /// Longest bulk answer.
    pub bulk_max: u64,
    /// Peers probed at once in a cycle.
    pub concurrency: usize,
    /// Worst pairs kept in `/metrics`.
    pub worst: usize,
    /// Whether `/connectivity?target=` may probe a given target.
    pub targets: bool,
}

/// What the last probe cycle found.
#[derive(Debug, Default)]
struct Cycle {
    records: Vec<Record>,
    took: Option<Duration>,
    clock_offset: Option<f64>,
    peers: usize,
}

struct Shared {
    config: Config,
    started: Instant,
    cycle: Mutex<Cycle>,
    series: Mutex<Series>,
    reading: Mutex<(Reading, Option<(u64, u64)>)>,
    /// Probes running for `/connectivity` (at most one at a time).
    probing: AtomicUsize,
    connections: AtomicUsize,
    /// The connections held, oldest first: whether each is in a request,
    /// and how to close it.
    held: Mutex<std::collections::BTreeMap<u64, Held>>,
}

/// One held connection.
struct Held {
    busy: Arc<std::sync::atomic::AtomicBool>,
    close: tokio::sync::oneshot::Sender<()>,
}

impl Shared {
    /// At the cap, close the oldest connection that is not in a request (a
    /// keep-alive client between requests, or a slow one still sending its
    /// headers), so a new client is answered; false when every one is busy.
    fn evict_idle(&self) -> bool {
        let mut held = lock(&self.held);
        let oldest = held
            .iter()
            .find(|(_, h)| !h.busy.load(Ordering::SeqCst))
            .map(|(k, _)| *k);
        match oldest.and_then(|k| held.remove(&k)) {
            Some(h) => {
                let _ = h.close.send(());
                true
            }
            None => false,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Answer = Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>;

fn answer(code: StatusCode, kind: &str, body: impl Into<Bytes>) -> Answer {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = code;
    if let Ok(v) = hyper::header::HeaderValue::from_str(kind) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_answer(code: StatusCode, v: &serde_json::Value) -> Answer {
    answer(code, "application/json", v.to_string())
}

/// N zero bytes, a chunk at a time (never the whole answer in memory).
struct Zeros(u64);

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

impl Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0 == 0 {
            return Poll::Ready(None);
        }
        let n = self.0.min(ZEROS.len() as u64) as usize;
        self.0 -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.0)
    }
}

fn query<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

/// Percent-decoding for a query value (targets are host names, addresses
/// and URLs: `%3A` and `%2F` are what a client escapes).
fn unescape(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Some(Ok(b)) = v.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Shared {
    fn health(&self) -> Health {
        Health {
            status: "ok".into(),
            identity: self.config.identity.clone(),
            uptime: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            version: env!("CARGO_PKG_VERSION").into(),
            time: super::now_unix(),
            udp_port: self.config.udp.map(|a| a.port()).unwrap_or(0),
        }
    }

    fn detailed(&self) -> (Status, serde_json::Value) {
        let reading = lock(&self.reading).0.clone();
        let (status, sys) = system::judge(&reading, &self.config.limits);
        let cycle = lock(&self.cycle);
        let agent = json!({
            "clock_offset": cycle.clock_offset.map(super::round6),
            "last_cycle_seconds": cycle.took.map(|d| (d.as_secs_f64() * 1e6).round() / 1e6),
            "peers": cycle.peers,
            "connections": self.connections.load(Ordering::Relaxed),
        });
        let mut v = serde_json::to_value(self.health()).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("status".into(), json!(status));
            o.insert("system".into(), sys);
            o.insert("agent".into(), agent);
        }
        (status, v)
    }

    fn metrics(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let num = crate::render::number;
        let id = format!(
            "id=\"{}\",datacenter=\"{}\",az=\"{}\"",
            self.config.identity.id.replace('"', ""),
            self.config.identity.datacenter.replace('"', ""),
            self.config.identity.az.replace('"', "")
        );
        let _ = writeln!(out, "# TYPE canary_up gauge\ncanary_up{{{id}}} 1");
        let _ = writeln!(
            out,
            "# TYPE canary_uptime_seconds gauge\ncanary_uptime_seconds {}",
            num(self.started.elapsed().as_secs_f64().round())
        );
        let (status, _) = self.detailed();
        let _ = writeln!(
            out,
            "# HELP canary_health_status 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n# TYPE canary_health_status gauge\ncanary_health_status {}",
            status.exit_code()
        );
        let reading = lock(&self.reading).0.clone();
        for (name, v) in [
            ("canary_cpu_percent", reading.cpu),
            ("canary_memory_percent", reading.memory),
            ("canary_disk_percent", reading.disk),
            ("canary_load1", reading.load),
        ] {
            if let Some(v) = v {
                let _ = writeln!(
                    out,
                    "# TYPE {name} gauge\n{name} {}",
                    num((v * 100.0).round() / 100.0)
                );
            }
        }
        if let Some((periods, secs)) = reading.throttled {
            let _ = writeln!(
                out,
                "# TYPE canary_cpu_throttled_periods counter\ncanary_cpu_throttled_periods {periods}\n# TYPE canary_cpu_throttled_seconds counter\ncanary_cpu_throttled_seconds {}",
                num(secs)
            );
        }
        {
            let cycle = lock(&self.cycle);
            if let Some(t) = cycle.took {
                let _ = writeln!(
                    out,
                    "# TYPE canary_last_cycle_seconds gauge\ncanary_last_cycle_seconds {}",
                    num((t.as_secs_f64() * 1e6).round() / 1e6)
                );
            }
            if let Some(o) = cycle.clock_offset {
                let _ = writeln!(
                    out,
                    "# TYPE canary_clock_offset_seconds gauge\ncanary_clock_offset_seconds {}",
                    num((o * 1e6).round() / 1e6)
                );
            }
            let ok = cycle
                .records
                .iter()
                .filter(|r| r.status == Status::Ok)
                .count();
            if !cycle.records.is_empty() {
                let _ = writeln!(
                    out,
                    "# HELP canary_peer_connectivity_percent Peers answering well, last cycle.\n# TYPE canary_peer_connectivity_percent gauge\ncanary_peer_connectivity_percent {}",
                    num((ok as f64 * 10000.0 / cycle.records.len() as f64).round() / 100.0)
                );
            }
        }
        out.push_str(&lock(&self.series).exposition());
        out
    }

    /// Measure every peer now (blocking; on the pool) and keep the cycle.
    fn run_cycle(&self) -> Vec<Record> {
        let ctx = crate::cli::Context::new(self.config.cycle_timeout);
        let mut trace = Vec::new();
        // Nova's canaries are asked again every cycle (its own token memory).
        let (peers, failed) = self.config.peers.peers(None, ctx.deadline, &mut trace);
        let lookup = failed.map(|e| {
            let mut r = Record::new(
                super::CHECK,
                "peers",
                Status::Unknown,
                format!(
                    "peers from Nova: {e} (measuring the {} peers named)",
                    peers.len()
                ),
            );
            r.host.clone_from(&self.config.hostname);
            r.trace = trace;
            r
        });
        let measured =
            super::measure_all(&peers, &self.config.probe, &ctx, self.config.concurrency);
        let took = ctx
            .deadline
            .checked_sub(self.config.cycle_timeout)
            .map(|start| start.elapsed());
        self.keep(&measured, took, lookup)
    }

    fn keep(
        &self,
        measured: &[Measured],
        took: Option<Duration>,
        lookup: Option<Record>,
    ) -> Vec<Record> {
        // One peer list for the whole fleet names this canary too: the
        // peer that answers with our own id is ourselves, not a peer.
        let me = &self.config.identity.id;
        let measured: Vec<&Measured> = measured
            .iter()
            .filter(|m| m.identity.as_ref().is_none_or(|i| &i.id != me))
            .collect();
        let records: Vec<Record> = measured
            .iter()
            .map(|m| {
                let mut r = super::record(m, &self.config.probe);
                r.host.clone_from(&self.config.hostname);
                r
            })
            .collect();
        let offsets: Vec<f64> = measured.iter().filter_map(|m| m.clock_offset).collect();
        let with_latencies: Vec<(mesh::Pair, Vec<f64>)> = records
            .iter()
            .zip(&measured)
            .filter_map(|(r, m)| {
                mesh::pairs(std::slice::from_ref(r))
                    .pop()
                    .map(|p| (p, m.latencies.clone()))
            })
            .collect();
        lock(&self.series).cycle(&with_latencies, self.config.worst);
        let mut cycle = lock(&self.cycle);
        cycle.peers = records.len();
        let mut records = records;
        // The mesh reads only pair records (with src_id); this one is for people.
        records.extend(lookup);
        cycle.records = records.clone();
        cycle.took = took;
        cycle.clock_offset = super::median(&offsets);
        records
    }

    /// Probe one given target now: a canary, a TCP port, or ICMP echo.
    fn probe_target(&self, target: &str) -> Result<Record, String> {
        let deadline = Instant::now() + self.config.cycle_timeout;
        let mut r = if target.contains("://") {
            let peer = Peer::at(target)?;
            let m = super::probe_peer(&peer, &self.config.probe, deadline);
            super::record(&m, &self.config.probe)
        } else {
            let started = Instant::now();
            let mut r = target_record(target, &self.config.probe, deadline)?;
            r.duration_ms = crate::report::round_ms(started.elapsed());
            r
        };
        r.host.clone_from(&self.config.hostname);
        r.detail("observer", json!(self.config.identity));
        Ok(r)
    }
}

/// " (3 refused, 1 timeout)" for the connects that failed, "" for none.
fn failures_in_words(failed: &[String]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for f in failed {
        match counts.iter_mut().find(|(k, _)| k == f) {
            Some((_, n)) => *n += 1,
            None => counts.push((f, 1)),
        }
    }
    if counts.is_empty() {
        return String::new();
    }
    let words: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!(" ({})", words.join(", "))
}

/// A TCP port (`HOST:PORT`) or ICMP echo (`HOST`) record for `target`.
fn target_record(target: &str, opts: &Options, deadline: Instant) -> Result<Record, String> {
    let (host, port) = crate::net::host_port(target)?;
    let host = host.as_str();
    if host.is_empty() || host.len() > 253 {
        return Err(format!("{target:?} is not a host"));
    }
    let addr = match crate::net::resolve(host, port.unwrap_or(0), deadline) {
        Ok((addrs, _)) => addrs.first().copied(),
        Err(e) => {
            let mut r = Record::new(
                super::CHECK,
                target,
                Status::Critical,
                format!("{host}: {}", e.words),
            );
            r.detail("error", e.words);
            return Ok(r);
        }
    };
    let Some(addr) = addr else {
        return Err(format!("{host}: no address"));
    };
    match port {
        Some(_) => {
            let mut times = Vec::new();
            let mut failed = Vec::new();
            for _ in 0..opts.requests.max(1) {
                match crate::net::connect(addr, deadline) {
                    Ok((_, t)) => times.push(t.as_secs_f64()),
                    Err(f) => failed.push(f.failure.as_str().to_string()),
                }
            }
            let n = times.len() + failed.len();
            let success = times.len() as f64 * 100.0 / n.max(1) as f64;
            let status = if times.is_empty() {
                Status::Critical
            } else {
                opts.success.status(success)
            };
            let mut r = Record::new(
                super::CHECK,
                target,
                status,
                format!(
                    "{target}: {} of {n} connects{}",
                    times.len(),
                    failures_in_words(&failed)
                ),
            );
            if let Some(c) = super::median(&times) {
                r.metrics
                    .push(crate::report::Metric::new("connect", super::round6(c), "s").min(0.0));
            }
            r.metrics
                .push(crate::report::Metric::new("success", super::round2(success), "%").min(0.0));
            r.detail("tcp", json!({"ok": times.len(), "failed": failed}));
            Ok(r)
        }
        None => {
            let pacing = crate::net::icmp::Pacing {
                count: opts.packets.clamp(1, 100) as u16,
                gap: Duration::from_millis(1),
                per_target: opts.packet_interval,
                wait: opts.packet_wait,
                payload: 56,
                socket: crate::net::icmp::SocketChoice::Auto,
            };
            let ip: IpAddr = addr.ip();
            let echoes = crate::net::icmp::ping_all(&[ip], &pacing, deadline)
                .pop()
                .unwrap_or_default();
            if let Some(why) = echoes.no_socket {
                return Err(format!("no ICMP socket here: {why}"));
            }
            let stats = crate::net::icmp::EchoStats::of(&echoes.rtts);
            let status = if stats.received == 0 {
                Status::Critical
            } else {
                opts.loss.status(stats.loss_pct)
            };
            let mut r = Record::new(
                super::CHECK,
                target,
                status,
                format!(
                    "{target}: {}/{} echoes answered",
                    stats.received, stats.sent
                ),
            );
            r.metrics.push(
                crate::report::Metric::new("loss", super::round2(stats.loss_pct), "%").min(0.0),
            );
            if let Some(rta) = stats.rta_ms {
                r.metrics.push(
                    crate::report::Metric::new("rtt", super::round6(rta / 1000.0), "s").min(0.0),
                );
            }
            r.detail(
                "icmp",
                json!({"sent": stats.sent, "received": stats.received, "address": ip.to_string()}),
            );
            Ok(r)
        }
    }
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Answer, Infallible> {
    let path = req.uri().path().to_string();
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    Ok(match (path.as_str(), get) {
        ("/health", true) => json_answer(
            StatusCode::OK,
            &serde_json::to_value(shared.health()).unwrap_or_default(),
        ),
        ("/health/detailed", true) => {
            let (status, v) = shared.detailed();
            let code = if status == Status::Critical {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            json_answer(code, &v)
        }
        ("/metrics", true) => answer(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            shared.metrics(),
        ),
        ("/connectivity", true) => connectivity(&req, shared).await,
        ("/bulk", true) => {
            let asked = query(&req, "bytes").map(|b| b.parse::<u64>());
            match asked {
                Some(Ok(n)) if n <= shared.config.bulk_max => {
                    let mut r = Response::new(Zeros(n).boxed());
                    r.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/octet-stream"),
                    );
                    r
                }
                Some(Ok(_)) => answer(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    format!("bytes: at most {}\n", shared.config.bulk_max),
                ),
                _ => answer(StatusCode::BAD_REQUEST, "text/plain", "give ?bytes=N\n"),
            }
        }
        ("/echo", _) => {
            let body = Limited::new(req.into_body(), 1 << 20).collect().await;
            match body {
                Ok(b) => answer(StatusCode::OK, "application/octet-stream", b.to_bytes()),
                Err(_) => answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "text/plain",
                    "at most 1 MiB\n",
                ),
            }
        }
        ("/health" | "/health/detailed" | "/metrics" | "/connectivity" | "/bulk", false) => {
            answer(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n")
        }
        _ => answer(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: /health, /health/detailed, /metrics, /connectivity, /echo, /bulk\n",
        ),
    })
}

/// Releases the one `/connectivity` probe slot when dropped.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.probing.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connectivity(req: &Request<Incoming>, shared: Arc<Shared>) -> Answer {
    let target = query(req, "target").map(unescape);
    let fresh = query(req, "fresh").is_some_and(|v| v != "0");
    if target.is_none() && !fresh {
        let cycle = lock(&shared.cycle);
        if !cycle.records.is_empty() || shared.config.peers.is_empty() {
            return lines(&cycle.records);
        }
    }
    if target.is_some() && !shared.config.targets {
        return answer(
            StatusCode::FORBIDDEN,
            "text/plain",
            "this canary probes no given targets (serve --no-targets)\n",
        );
    }
    if shared.probing.fetch_add(1, Ordering::SeqCst) > 0 {
        shared.probing.fetch_sub(1, Ordering::SeqCst);
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "a probe is already running; try again\n",
        );
    }
    let slot = Slot(Arc::clone(&shared));
    let work = tokio::task::spawn_blocking(move || {
        let shared = Arc::clone(&slot.0);
        let out = match target {
            Some(t) => shared.probe_target(&t).map(|r| vec![r]),
            None => Ok(shared.run_cycle()),
        };
        drop(slot);
        out
    })
    .await;
    match work {
        Ok(Ok(records)) => lines(&records),
        Ok(Err(e)) => answer(StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n")),
        Err(_) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "the probe failed\n",
        ),
    }
}

fn lines(records: &[Record]) -> Answer {
    let mut text = String::new();
    for r in records {
        text.push_str(&r.to_json_line());
        text.push('\n');
    }
    answer(StatusCode::OK, "application/x-ndjson", text)
}

/// When, from now, the next cycle starts: the interval ±10 %, the jitter
/// drawn from the clock and the canary's id, so canaries started together
/// drift apart instead of probing each other at the same instant.
fn next_cycle(interval: Duration, id: &str, n: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let h = crate::state::fnv(&format!("{id}/{n}/{nanos}"));
    let spread = (h % 2001) as f64 / 1000.0 - 1.0; // -1 ..= 1
    interval.mul_f64(1.0 + 0.1 * spread)
}

/// Serve until SIGTERM or SIGINT. `ready` is told the bound HTTP and UDP
/// addresses once both listen (port 0 picks a free one).
pub fn serve(
    config: Config,
    ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(config.workers.max(1))
        .thread_stack_size(256 * 1024)
        .build()
        .map_err(|e| format!("cannot start the event loop: {e}"))?;
    let out = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let http_addr = listener
            .local_addr()
            .map_err(|e| format!("listen address: {e}"))?;
        let udp = match config.udp {
            Some(mut a) => {
                if a.port() == 0 && config.listen.port() == 0 {
                    // Same port number as HTTP when both are picked for us.
                    a.set_port(http_addr.port());
                }
                Some(
                    tokio::net::UdpSocket::bind(a)
                        .await
                        .map_err(|e| format!("cannot listen on UDP {a}: {e}"))?,
                )
            }
            None => None,
        };
        let udp_addr = udp.as_ref().and_then(|u| u.local_addr().ok());
        let mut config = config;
        config.udp = udp_addr;
        let shared = Arc::new(Shared {
            config,
            started: Instant::now(),
            cycle: Mutex::new(Cycle::default()),
            series: Mutex::new(Series::default()),
            reading: Mutex::new((Reading::default(), None)),
            probing: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            held: Mutex::new(std::collections::BTreeMap::new()),
        });
        if let Some(socket) = udp {
            tokio::spawn(async move {
                let mut buf = vec![0u8; super::UDP_MAX + 1];
                loop {
                    let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                        // An error that repeats must not spin the loop.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    };
                    if let Some(reply) = super::echo_reply(&buf[..n]) {
                        let _ = socket.send_to(reply, from).await;
                    }
                }
            });
        }
        {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                loop {
                    let disk = shared.config.disk.clone();
                    let before = lock(&shared.reading).1;
                    // statvfs of a hung network file system blocks: off the loop.
                    if let Ok((reading, now)) =
                        tokio::task::spawn_blocking(move || system::read(&disk, before)).await
                    {
                        *lock(&shared.reading) = (reading, now);
                    }
                    tokio::time::sleep(shared.config.monitoring_interval).await;
                }
            });
        }
        if !shared.config.peers.is_empty() {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let id = shared.config.identity.id.clone();
                // The first cycle after a share of one interval chosen by
                // the id: a fleet started at once does not probe at once.
                let phase = (crate::state::fnv(&id) % 1000) as f64 / 1000.0;
                tokio::time::sleep(shared.config.traffic_interval.mul_f64(phase.min(0.5))).await;
                for n in 0u64.. {
                    let s = Arc::clone(&shared);
                    let _ = tokio::task::spawn_blocking(move || s.run_cycle()).await;
                    tokio::time::sleep(next_cycle(shared.config.traffic_interval, &id, n)).await;
                }
            });
        }
        ready(http_addr, udp_addr);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot wait for SIGTERM: {e}"))?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| format!("cannot wait for SIGINT: {e}"))?;
        let mut seq: u64 = 0;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of descriptors: wait a little rather than spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let held = shared.connections.fetch_add(1, Ordering::SeqCst);
                    // The closed one ends on its own task; the count goes
                    // back under the cap as it does.
                    if held >= shared.config.max_connections && !shared.evict_idle() {
                        shared.connections.fetch_sub(1, Ordering::SeqCst);
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    seq += 1;
                    let me = seq;
                    let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let (close, closed) = tokio::sync::oneshot::channel::<()>();
                    lock(&shared.held).insert(me, Held { busy: Arc::clone(&busy), close });
                    tokio::spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let service = {
                            let shared = Arc::clone(&shared);
                            hyper::service::service_fn(move |req| {
                                let shared = Arc::clone(&shared);
                                let busy = Arc::clone(&busy);
                                async move {
                                    busy.store(true, Ordering::SeqCst);
                                    let answer = handle(req, shared).await;
                                    busy.store(false, Ordering::SeqCst);
                                    answer
                                }
                            })
                        };
                        let conn = hyper::server::conn::http1::Builder::new()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(5))
                            .max_buf_size(64 * 1024)
                            .serve_connection(io, service);
                        // A connection is held no longer than a minute in all,
                        // and closed sooner when a new client needs its place.
                        tokio::select! {
                            _ = tokio::time::timeout(Duration::from_secs(60), conn) => {}
                            _ = closed => {}
                        }
                        lock(&shared.held).remove(&me);
                        shared.connections.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            }
        }
        Ok::<(), String>(())
    });
    // A probe cycle still running is not waited for past this.
    rt.shutdown_timeout(Duration::from_millis(250));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_unescaped() {
        assert_eq!(
            unescape("http%3A%2F%2F10.0.0.1%3A8080"),
            "http://10.0.0.1:8080"
        );
        assert_eq!(unescape("a%2"), "a%2");
        assert_eq!(unescape("%zz"), "%zz");
        assert_eq!(unescape("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn cycles_are_spread_around_the_interval() {
        let i = Duration::from_secs(30);
        for n in 0..50 {
            let d = next_cycle(i, "canary-a", n);
            assert!(
                d >= Duration::from_secs(27) && d <= Duration::from_secs(33),
                "{d:?}"
            );
        }
    }
}
