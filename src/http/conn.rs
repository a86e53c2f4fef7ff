//! The seams ureq offers below the request (its `unversioned` resolver and
//! connector traits, hence the `~3.5` pin): they time every phase of a probe
//! and keep the peer's certificate chain, without forking the crate.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

/// Per-connection buffer size. ureq's default is 128 KiB each way; a probe
/// needs a fraction of that, and peak RSS is one of our benchmarks.
pub const BUFFER_SIZE: usize = 16 * 1024;

/// Output buffer: a probe's request head is a few hundred bytes; a longer
/// one gets a buffer of its size (see [`output_buffer_for`]).
pub const OUTPUT_BUFFER_SIZE: usize = 4 * 1024;

/// The longest request head (request line and headers) probe-http sends;
/// servers commonly refuse more than 8 to 64 KiB.
pub const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// The output buffer a request needs: its head, with room for the headers
/// ureq adds (Host, User-Agent, Content-Length...), at least the default.
pub fn output_buffer_for(url: &str, headers: &[(String, String)], user_agent: &str) -> usize {
    let head = url.len()
        + user_agent.len()
        + headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>();
    (head + 1024).max(OUTPUT_BUFFER_SIZE)
}

/// The outcome of one timed phase.
#[derive(Debug, Clone)]
pub struct Phase {
    /// How long it took.
    pub took: Duration,
    /// Whether it worked.
    pub ok: bool,
    /// What happened.
    pub detail: String,
}

pub use crate::net::cert::{cert_info, CertInfo};

/// What happened below the request for one hop, filled in by the resolver,
/// connector and transport as they run.
#[derive(Debug, Default)]
pub struct Phases {
    /// Name resolution(s): the target's, and a proxy's when one is used.
    pub resolve: Vec<Phase>,
    /// TCP connect.
    pub connect: Option<Phase>,
    /// The address connected to.
    pub peer: Option<SocketAddr>,
    /// TLS handshake.
    pub tls: Option<Phase>,
    /// Negotiated protocol version and cipher suite.
    pub tls_version: Option<String>,
    /// Negotiated cipher suite.
    pub tls_cipher: Option<String>,
    /// The handshake resumed a session of this round instead of a full one.
    pub tls_resumed: bool,
    /// The chain the server presented, leaf first (kept even when
    /// verification fails, so expiry can still be reported).
    pub chain: Vec<CertInfo>,
    /// Why certificate verification failed.
    pub verify_error: Option<String>,
    /// When the first byte of the request left.
    pub request_started: Option<Instant>,
    /// When the last byte of the request headers/body left.
    pub request_sent: Option<Instant>,
    /// When the first byte of the response arrived.
    pub first_byte: Option<Instant>,
}

/// Shared handle to the phases of the hop in progress.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Phases>>);

impl Recorder {
    /// Lock the phases (a poisoned lock still holds usable data).
    pub fn lock(&self) -> MutexGuard<'_, Phases> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take what was recorded and start afresh for the next hop.
    pub fn take(&self) -> Phases {
        std::mem::take(&mut *self.lock())
    }
}

fn bare_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Resolves names, timing each lookup; `--connect-to`/`-I` overrides skip DNS.
#[derive(Debug)]
pub struct ProbeResolver {
    /// Host names to connect to at a fixed address instead of resolving them.
    pub overrides: Vec<(String, IpAddr)>,
    /// Where the timing goes.
    pub recorder: Recorder,
    /// Only this address family, when `-4`/`-6` is given.
    pub family: Option<IpFamilyWanted>,
    /// The probe's deadline: a lookup that has not answered by then fails.
    pub deadline: Instant,
}

/// `-4` or `-6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamilyWanted {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Resolver for ProbeResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let start = Instant::now();
        let host = bare_host(uri.host().unwrap_or_default()).to_string();
        // The URL's port, else its scheme's (a proxy may be socks).
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            Some(s) if s.starts_with("socks") => 1080,
            _ => 80,
        });
        if let Some((_, ip)) = self
            .overrides
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&host))
        {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(*ip, port));
            self.recorder.lock().resolve.push(Phase {
                took: start.elapsed(),
                ok: true,
                detail: format!("{host} -> {ip} (given, not resolved)"),
            });
            return Ok(addrs);
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            let wrong_family = match self.family {
                Some(IpFamilyWanted::V4) => !ip.is_ipv4(),
                Some(IpFamilyWanted::V6) => !ip.is_ipv6(),
                None => false,
            };
            if wrong_family {
                self.recorder.lock().resolve.push(Phase {
                    took: start.elapsed(),
                    ok: false,
                    detail: format!(
                        "{ip} is not an {} address (-4/-6)",
                        if ip.is_ipv4() { "IPv6" } else { "IPv4" }
                    ),
                });
                return Err(ureq::Error::HostNotFound);
            }
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            self.recorder.lock().resolve.push(Phase {
                took: start.elapsed(),
                ok: true,
                detail: format!("{ip} (an address, no lookup)"),
            });
            return Ok(addrs);
        }
        let result = crate::net::resolve(&host, port, self.deadline);
        let family = |a: &SocketAddr| match self.family {
            Some(IpFamilyWanted::V4) => a.is_ipv4(),
            Some(IpFamilyWanted::V6) => a.is_ipv6(),
            None => true,
        };
        let (phase, outcome) = match result {
            Ok((found, took)) => {
                let kept: Vec<SocketAddr> = found.into_iter().filter(family).collect();
                if kept.is_empty() {
                    (
                        Phase {
                            took,
                            ok: false,
                            detail: self.not_found(&host),
                        },
                        Err(ureq::Error::HostNotFound),
                    )
                } else {
                    let list: Vec<String> = kept.iter().map(|a| a.ip().to_string()).collect();
                    let mut addrs = self.empty();
                    for a in kept {
                        if addrs.try_push(a).is_err() {
                            break;
                        }
                    }
                    (
                        Phase {
                            took,
                            ok: true,
                            detail: format!("{host} -> {}", list.join(", ")),
                        },
                        Ok(addrs),
                    )
                }
            }
            Err(e) => {
                use crate::net::ResolveFailure;
                let (detail, err) = match e.failure {
                    ResolveFailure::NotFound => (self.not_found(&host), ureq::Error::HostNotFound),
                    ResolveFailure::TimedOut => (
                        format!("{host}: lookup timed out"),
                        ureq::Error::Timeout(ureq::Timeout::Resolve),
                    ),
                    ResolveFailure::Other => (
                        format!("{host}: {}", e.words),
                        ureq::Error::Io(std::io::Error::other(e.words.clone())),
                    ),
                };
                (
                    Phase {
                        took: e.took,
                        ok: false,
                        detail,
                    },
                    Err(err),
                )
            }
        };
        self.recorder.lock().resolve.push(phase);
        outcome
    }
}

impl ProbeResolver {
    fn not_found(&self, host: &str) -> String {
        match self.family {
            Some(IpFamilyWanted::V4) => format!("{host}: no IPv4 address"),
            Some(IpFamilyWanted::V6) => format!("{host}: no IPv6 address"),
            None => format!("{host}: no such host"),
        }
    }
}

/// TCP connect over the resolved addresses in order, timed, each failure named.
#[derive(Debug)]
pub struct TcpStep {
    /// Where the timing goes.
    pub recorder: Recorder,
    /// The probe's deadline.
    pub deadline: Instant,
}

impl<In: Transport> Connector<In> for TcpStep {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(t) = chained {
            return Ok(Some(t.boxed()));
        }
        let addrs: Vec<SocketAddr> = details.addrs.iter().copied().collect();
        match crate::net::connect_any(&addrs, self.deadline) {
            Ok((stream, addr, took, failed)) => {
                let _ = stream.set_nodelay(true);
                let mut rec = self.recorder.lock();
                rec.peer = Some(addr);
                let mut detail = addr.to_string();
                if !failed.is_empty() {
                    detail = format!("{detail} (after {})", failure_words(&failed));
                }
                rec.connect = Some(Phase {
                    took,
                    ok: true,
                    detail,
                });
                let buffers = LazyBuffers::new(
                    details.config.input_buffer_size(),
                    details.config.output_buffer_size(),
                );
                Ok(Some(TcpTransport { stream, buffers }.boxed()))
            }
            Err(mut failed) => {
                self.recorder.lock().connect = Some(Phase {
                    took: failed.iter().map(|f| f.took).sum(),
                    ok: false,
                    detail: if failed.is_empty() {
                        "no address to connect to".to_string()
                    } else {
                        failure_words(&failed)
                    },
                });
                Err(match failed.pop() {
                    None => ureq::Error::ConnectionFailed,
                    Some(f) if f.failure == crate::net::ConnectFailure::TimedOut => {
                        ureq::Error::Timeout(ureq::Timeout::Connect)
                    }
                    Some(f) => f
                        .error
                        .map(ureq::Error::Io)
                        .unwrap_or(ureq::Error::ConnectionFailed),
                })
            }
        }
    }
}

/// `ADDR: why` for each failed address, in order.
fn failure_words(failed: &[crate::net::Failed]) -> String {
    failed
        .iter()
        .map(|f| format!("{}: {}", f.addr, f.words))
        .collect::<Vec<_>>()
        .join("; ")
}

/// TLS handshake through `net::tls`, timed; keeps the chain and why
/// verification failed.
#[derive(Debug)]
pub struct TlsStep {
    /// Where the timing goes.
    pub recorder: Recorder,
    /// The round's TLS state (its session stores).
    pub round: Arc<crate::http::TlsRound>,
    /// The client configuration (with a `net::tls::Verifier`).
    pub config: Arc<ClientConfig>,
    /// Server name to send and verify instead of the URL's host.
    pub sni: Option<String>,
    /// Resume a session this round already made with the same origin.
    pub resume: bool,
}

impl Connector<Box<dyn Transport>> for TlsStep {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<Box<dyn Transport>>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        use crate::net::tls::{self, TlsFailure};
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(transport));
        }
        let start = Instant::now();
        let host = match &self.sni {
            Some(s) => s.clone(),
            None => bare_host(details.uri.host().unwrap_or_default()).to_string(),
        };
        let fail = |detail: String| {
            self.recorder.lock().tls = Some(Phase {
                took: start.elapsed(),
                ok: false,
                detail,
            });
        };
        let Ok(name) = tls::server_name(&host) else {
            fail(format!("{host:?} is not a valid TLS server name"));
            return Err(ureq::Error::Tls("invalid TLS server name"));
        };
        let config = if self.resume {
            let port = details.uri.port_u16().unwrap_or(443);
            let peer = self.recorder.lock().peer;
            self.round
                .sessions
                .for_origin(&self.config, &host, port, peer)
        } else {
            Arc::clone(&self.config)
        };
        let conn = match ClientConnection::new(config, name) {
            Ok(c) => c,
            Err(e) => {
                fail(e.to_string());
                return Err(ureq::Error::Tls("cannot start TLS"));
            }
        };
        let mut sock = TransportAdapter::new(transport, details.current_time.clone());
        // ureq's own timeout carries the deadline to every read and write.
        sock.set_timeout(details.timeout);
        let hs = match tls::complete(conn, &mut sock, |_| true, start) {
            Ok(hs) => hs,
            Err(failed) => {
                let detail = match &failed.failure {
                    TlsFailure::Verify(v) => format!("certificate verification failed: {v}"),
                    TlsFailure::Timeout => "handshake timed out".to_string(),
                    TlsFailure::Closed => {
                        "server closed the connection during the handshake".to_string()
                    }
                    TlsFailure::Protocol(w) => w.clone(),
                    TlsFailure::BadName => format!("{host:?} is not a valid TLS server name"),
                };
                {
                    let mut rec = self.recorder.lock();
                    rec.chain = failed.chain;
                    if let TlsFailure::Verify(v) = &failed.failure {
                        rec.verify_error = Some(v.clone());
                    }
                }
                fail(detail.clone());
                return Err(match failed.failure {
                    TlsFailure::Timeout => ureq::Error::Timeout(ureq::Timeout::Connect),
                    _ => ureq::Error::Io(std::io::Error::other(detail)),
                });
            }
        };
        {
            let mut rec = self.recorder.lock();
            rec.tls_resumed = hs.resumed;
            rec.chain = hs.chain;
            rec.tls_version = Some(hs.version).filter(|v| !v.is_empty());
            rec.tls_cipher = Some(hs.cipher).filter(|c| !c.is_empty());
            rec.tls = Some(Phase {
                took: start.elapsed(),
                ok: true,
                detail: format!(
                    "{} {}{}",
                    rec.tls_version.as_deref().unwrap_or("?"),
                    rec.tls_cipher.as_deref().unwrap_or("?"),
                    if hs.resumed { ", session resumed" } else { "" }
                ),
            });
        }
        Ok(Some(Box::new(TlsTransport {
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            stream: StreamOwned {
                conn: hs.conn,
                sock,
            },
        })))
    }
}

/// A plain TCP stream as a ureq transport (ureq keeps its own private).
#[derive(Debug)]
struct TcpTransport {
    stream: TcpStream,
    buffers: LazyBuffers,
}

fn io_timeout(e: std::io::Error, timeout: &NextTimeout) -> ureq::Error {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            ureq::Error::Timeout(timeout.reason)
        }
        _ => ureq::Error::Io(e),
    }
}

/// A socket timeout for the time ureq allows (a zero timeout would mean
/// "block forever" to the socket, so it becomes the smallest non-zero one).
fn socket_timeout(timeout: &NextTimeout) -> Option<Duration> {
    if timeout.after.is_not_happening() {
        None
    } else {
        Some((*timeout.after).max(Duration::from_millis(1)))
    }
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        use std::io::Write;
        self.stream.set_write_timeout(socket_timeout(&timeout))?;
        let output = &self.buffers.output()[..amount];
        self.stream
            .write_all(output)
            .map_err(|e| io_timeout(e, &timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        use std::io::Read;
        self.stream.set_read_timeout(socket_timeout(&timeout))?;
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match self.stream.read(input) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_timeout(e, &timeout)),
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // Only asked before reusing a pooled connection; probes do not pool.
        false
    }
}

/// A rustls stream as a ureq transport.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport").finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        use std::io::Write;
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        use std::io::Read;
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// Marks when the request leaves and the first response byte arrives.
#[derive(Debug)]
pub struct TimingStep {
    /// Where the timing goes.
    pub recorder: Recorder,
}

impl Connector<Box<dyn Transport>> for TimingStep {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<Box<dyn Transport>>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| {
            Box::new(TimedTransport {
                inner,
                recorder: self.recorder.clone(),
            }) as Box<dyn Transport>
        }))
    }
}

#[derive(Debug)]
struct TimedTransport {
    inner: Box<dyn Transport>,
    recorder: Recorder,
}

impl Transport for TimedTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        {
            let mut rec = self.recorder.lock();
            if rec.request_started.is_none() {
                rec.request_started = Some(Instant::now());
            }
        }
        let result = self.inner.transmit_output(amount, timeout);
        self.recorder.lock().request_sent = Some(Instant::now());
        result
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let got = self.inner.await_input(timeout)?;
        if got {
            let mut rec = self.recorder.lock();
            if rec.first_byte.is_none() && rec.request_sent.is_some() {
                rec.first_byte = Some(Instant::now());
            }
        }
        Ok(got)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}
