//! The seams ureq offers below the request (its `unversioned` resolver and
//! connector traits, hence the `~3.5` pin): they time every phase of a probe
//! and keep the peer's certificate chain, without forking the crate.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, SignatureScheme,
    StreamOwned,
};
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

/// TLS handshake with rustls, timed; keeps the chain and why verification failed.
#[derive(Debug)]
pub struct TlsStep {
    /// Where the timing goes.
    pub recorder: Recorder,
    /// The round's TLS state (its session stores).
    pub round: Arc<crate::http::TlsRound>,
    /// The client configuration (with a [`RecordingVerifier`]).
    pub config: Arc<ClientConfig>,
    /// Server name to send and verify instead of the URL's host.
    pub sni: Option<String>,
    /// Resume a session this round already made with the same origin.
    pub resume: bool,
}

thread_local! {
    /// The recorder of the handshake running on this thread. The verifier is
    /// one object shared by every probe with the same TLS settings (rustls
    /// resumes a session only under the verifier that made it); what it
    /// records belongs to the probe whose handshake calls it, always on the
    /// calling thread.
    static HANDSHAKE: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Marks this thread's handshake as the given probe's until dropped.
struct HandshakeScope;

impl HandshakeScope {
    fn enter(recorder: &Recorder) -> HandshakeScope {
        HANDSHAKE.with(|h| *h.borrow_mut() = Some(recorder.clone()));
        HandshakeScope
    }
}

impl Drop for HandshakeScope {
    fn drop(&mut self) {
        HANDSHAKE.with(|h| *h.borrow_mut() = None);
    }
}

/// Run `f` on the recorder of the handshake in progress on this thread.
fn with_handshake(f: impl FnOnce(&mut Phases)) {
    HANDSHAKE.with(|h| {
        if let Some(r) = h.borrow().as_ref() {
            f(&mut r.lock());
        }
    });
}

/// Origins with sessions kept at most; past that the sessions start over
/// (a fleet usually has a handful of origins).
const SESSION_ORIGINS: usize = 256;

/// Where a session may be offered again: the same TLS settings, server
/// name and port, and the same address connected to. Another port of the
/// host, or another backend reached with `--connect-to`, makes its own
/// full handshake and shows its own certificate.
type Origin = (usize, String, u16, Option<SocketAddr>);

/// One origin's configuration: the shared one plus a session store of its own.
type OriginConfigs = HashMap<Origin, (Arc<ClientConfig>, Arc<ClientConfig>)>;

/// A round's session stores, one per origin (see [`crate::http::TlsRound`]).
#[derive(Debug, Default)]
pub struct OriginSessions(Mutex<OriginConfigs>);

/// `config` with the session store of an origin, made on first use.
fn for_origin(
    round: &crate::http::TlsRound,
    config: &Arc<ClientConfig>,
    host: &str,
    port: u16,
    peer: Option<SocketAddr>,
) -> Arc<ClientConfig> {
    let key = (Arc::as_ptr(config) as usize, host.to_string(), port, peer);
    let mut map: MutexGuard<'_, OriginConfigs> =
        round.origins.0.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, origin)) = map.get(&key) {
        return Arc::clone(origin);
    }
    if map.len() >= SESSION_ORIGINS {
        map.clear();
    }
    let mut own = ClientConfig::clone(config);
    own.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(4)));
    let own = Arc::new(own);
    // The shared configuration is kept alive with it, so its address (in
    // the key) cannot be reused by another while the entry exists.
    map.insert(key, (Arc::clone(config), Arc::clone(&own)));
    own
}

impl Connector<Box<dyn Transport>> for TlsStep {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<Box<dyn Transport>>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
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
        let name = match ServerName::try_from(host.clone()) {
            Ok(n) => n,
            Err(_) => {
                fail(format!("{host:?} is not a valid TLS server name"));
                return Err(ureq::Error::Tls("invalid TLS server name"));
            }
        };
        let config = if self.resume {
            let port = details.uri.port_u16().unwrap_or(443);
            let peer = self.recorder.lock().peer;
            for_origin(&self.round, &self.config, &host, port, peer)
        } else {
            Arc::clone(&self.config)
        };
        let mut conn = match ClientConnection::new(config, name) {
            Ok(c) => c,
            Err(e) => {
                fail(e.to_string());
                return Err(ureq::Error::Tls("cannot start TLS"));
            }
        };
        let mut sock = TransportAdapter::new(transport, details.current_time.clone());
        sock.set_timeout(details.timeout);
        let scope = HandshakeScope::enter(&self.recorder);
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut sock) {
                let verify = self.recorder.lock().verify_error.clone();
                let timed_out = matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                );
                let detail = match verify {
                    Some(v) => format!("certificate verification failed: {v}"),
                    None if timed_out => "handshake timed out".to_string(),
                    None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        "server closed the connection during the handshake".to_string()
                    }
                    None => e.to_string(),
                };
                fail(detail);
                return Err(if timed_out {
                    ureq::Error::Timeout(ureq::Timeout::Connect)
                } else {
                    ureq::Error::Io(e)
                });
            }
        }
        drop(scope);
        let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
        // A resumed handshake presents no certificate: the chain is the one
        // verified by the full handshake that made the session, this round.
        let chain = if resumed {
            conn.peer_certificates().map(chain_of)
        } else {
            None
        };
        {
            let mut rec = self.recorder.lock();
            rec.tls_resumed = resumed;
            if let Some(chain) = chain {
                rec.chain = chain;
            }
            rec.tls_version = conn.protocol_version().map(|v| format!("{v:?}"));
            rec.tls_cipher = conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()));
            rec.tls = Some(Phase {
                took: start.elapsed(),
                ok: true,
                detail: format!(
                    "{} {}{}",
                    rec.tls_version.as_deref().unwrap_or("?"),
                    rec.tls_cipher.as_deref().unwrap_or("?"),
                    if resumed { ", session resumed" } else { "" }
                ),
            });
        }
        Ok(Some(Box::new(TlsTransport {
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            stream: StreamOwned { conn, sock },
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

/// A WebPKI verifier (its trusted roots) with a number no other set of
/// roots in this process ever gets: what a verified chain is remembered
/// under (an address could be reused by the next round's roots).
#[derive(Debug, Clone)]
pub struct Roots {
    verifier: Arc<WebPkiServerVerifier>,
    id: u64,
}

impl Roots {
    /// Number these roots.
    pub fn new(verifier: Arc<WebPkiServerVerifier>) -> Roots {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Roots {
            verifier,
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// Verifies like rustls' WebPKI verifier (or not at all with `--insecure`),
/// but first records the presented chain, and records why it failed, in
/// the recorder of the handshake running on the calling thread.
#[derive(Debug)]
pub struct RecordingVerifier {
    /// The real verifier; `None` with `--insecure`.
    pub inner: Option<Roots>,
    /// The crypto provider (for signature checks when `inner` is `None`).
    pub provider: Arc<CryptoProvider>,
    /// Chains this verifier verified (it lives as long as its round's
    /// configuration), with the second until which the answer holds (the
    /// earliest expiry in the chain) and the parsed chain.
    pub memo: Mutex<ChainMemo>,
}

impl RecordingVerifier {
    fn memo_id(&self) -> u64 {
        self.inner.as_ref().map_or(0, |r| r.id)
    }
}

/// The parsed chain of a resumed session (rustls keeps the certificates
/// the full handshake verified with the session).
fn chain_of(certs: &[CertificateDer<'_>]) -> Vec<CertInfo> {
    certs.iter().filter_map(|c| cert_info(c.as_ref())).collect()
}

/// What identifies one chain verification: the verifier (its roots), the
/// name asked for, and every certificate's bytes (compared whole, never
/// by a hash that could collide).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainKey {
    verifier: u64,
    name: String,
    certs: Vec<Vec<u8>>,
}

impl ChainKey {
    fn new(
        verifier: u64,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
    ) -> ChainKey {
        ChainKey {
            verifier,
            name: server_name.to_str().into_owned(),
            certs: std::iter::once(end_entity)
                .chain(intermediates.iter())
                .map(|c| c.as_ref().to_vec())
                .collect(),
        }
    }
}

/// Chains remembered at most (a fleet of thousands of targets usually
/// presents a handful of chains); past that the memo starts over.
const VERIFIED_CHAINS: usize = 256;

/// Verified chains by what identifies a verification.
pub type ChainMemo = std::collections::HashMap<ChainKey, (i64, Vec<CertInfo>)>;

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let key = ChainKey::new(self.memo_id(), end_entity, intermediates, server_name);
        // A chain this process already verified for this name with these
        // roots, and still inside every certificate's validity: the answer
        // cannot have changed. The handshake's own signature is still
        // checked, every time, in verify_tls1*_signature.
        if let Some((until, chain)) = self
            .memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if i64::try_from(now.as_secs()).unwrap_or(i64::MAX) < *until {
                let chain = chain.clone();
                with_handshake(|p| p.chain = chain);
                return Ok(ServerCertVerified::assertion());
            }
        }
        let chain: Vec<CertInfo> = crate::net::cert::chain_facts(end_entity, intermediates);
        with_handshake(|p| p.chain = chain.clone());
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        let verified = inner
            .verifier
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .inspect_err(|e| {
                with_handshake(|p| p.verify_error = Some(crate::net::tls::verify_error_text(e)));
            })?;
        // Only a chain whose every certificate was understood is remembered.
        if chain.len() == 1 + intermediates.len() {
            let until = chain.iter().map(|c| c.not_after).min().unwrap_or(0);
            let mut memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
            if memo.len() >= VERIFIED_CHAINS {
                memo.clear();
            }
            memo.insert(key, (until, chain));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crate::net::tls::handshake_signature(&self.provider, false, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crate::net::tls::handshake_signature(&self.provider, true, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
