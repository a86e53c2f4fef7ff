//! A TLS handshake over a connected stream, without HTTP: timed, inside a
//! deadline, with the chain the server presented read whether or not it
//! verifies (its expiry is worth knowing either way). A chain that does
//! not verify ends the handshake, so nothing is ever sent over it.
//!
//! One verifier ([`Verifier`]) serves every handshake made with one
//! configuration: it remembers the chains it verified, and what it sees
//! of a handshake goes to the handshake running on the calling thread
//! ([`complete`]), so a configuration can be shared by many probes and
//! still resume sessions ([`Sessions`]). probe-http reaches it through
//! ureq's connector (`http/conn.rs`); probe-host over a bare socket
//! ([`handshake`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, RootCertStore,
    SignatureScheme,
};

use super::cert::{cert_info, chain_facts, CertInfo};

/// What to trust.
#[derive(Debug, Clone)]
pub enum Trust {
    /// These roots.
    Roots(Arc<RootCertStore>),
    /// Nothing is verified but the handshake's own signatures
    /// (`--insecure`); the chain is still read.
    Nothing,
}

/// The roots of a PEM bundle (a `--ca-file`), or an error saying why not.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not PEM: {e}"))?;
        store
            .add(cert)
            .map_err(|e| format!("not a CA certificate: {e}"))?;
    }
    if store.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(store)
}

/// The roots built in (Mozilla's, from webpki-roots).
pub fn builtin_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// Debian's CA bundle, the one `update-ca-certificates` writes.
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The roots to trust when no CA file is given: the system's bundle first
/// (it has the operator's own CAs), Mozilla's when there is none.
pub fn system_roots() -> RootCertStore {
    use rustls::pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    // Read as a stream: the bundle is a few hundred KiB, and one-shot peak
    // RSS is measured.
    if let Ok(certs) = CertificateDer::pem_file_iter(SYSTEM_BUNDLE) {
        roots.add_parsable_certificates(certs.flatten());
    }
    if roots.is_empty() {
        return builtin_roots();
    }
    roots
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
    /// A verifier for these roots, numbered.
    pub fn new(roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Result<Roots, String> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Roots {
            verifier,
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }
}

/// What the verifier saw of the handshake running on this thread.
#[derive(Debug, Default)]
struct Seen {
    chain: Vec<CertInfo>,
    error: Option<String>,
}

thread_local! {
    /// The handshake in progress on this thread. A verifier is shared by
    /// every handshake made with its configuration (rustls resumes a
    /// session only under the verifier that made it); what it sees belongs
    /// to the handshake that calls it, always on the calling thread.
    static SEEN: RefCell<Option<Seen>> = const { RefCell::new(None) };
}

/// This thread's handshake is in progress until dropped.
struct Watching;

impl Watching {
    fn start() -> Watching {
        SEEN.with(|s| *s.borrow_mut() = Some(Seen::default()));
        Watching
    }

    fn seen(&self) -> Seen {
        SEEN.with(|s| s.borrow_mut().take()).unwrap_or_default()
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        SEEN.with(|s| *s.borrow_mut() = None);
    }
}

fn see(f: impl FnOnce(&mut Seen)) {
    SEEN.with(|s| {
        if let Some(seen) = s.borrow_mut().as_mut() {
            f(seen);
        }
    });
}

/// What identifies one chain verification: the verifier (its roots), the
/// name asked for, and every certificate's bytes (compared whole, never
/// by a hash that could collide).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ChainKey {
    verifier: u64,
    name: String,
    certs: Vec<Vec<u8>>,
}

/// Chains remembered at most (a fleet of thousands of targets usually
/// presents a handful of chains); past that the memo starts over.
const VERIFIED_CHAINS: usize = 256;

/// Verifies like rustls' WebPKI verifier (or not at all when trusting
/// nothing), but first records the presented chain, and why it failed,
/// for the handshake running on the calling thread. It remembers the
/// chains it verified for as long as it lives (a round's configuration).
#[derive(Debug)]
pub struct Verifier {
    inner: Option<Roots>,
    provider: Arc<CryptoProvider>,
    /// Verified chains, with the second until which the answer holds (the
    /// earliest expiry in the chain) and the parsed chain.
    memo: Mutex<HashMap<ChainKey, (i64, Vec<CertInfo>)>>,
}

impl Verifier {
    /// Verify with `inner`, or only the handshake's signatures with `None`.
    pub fn new(inner: Option<Roots>, provider: Arc<CryptoProvider>) -> Verifier {
        Verifier {
            inner,
            provider,
            memo: Mutex::default(),
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let key = ChainKey {
            verifier: self.inner.as_ref().map_or(0, |r| r.id),
            name: server_name.to_str().into_owned(),
            certs: std::iter::once(end_entity)
                .chain(intermediates.iter())
                .map(|c| c.as_ref().to_vec())
                .collect(),
        };
        // A chain this verifier already verified for this name, still
        // inside every certificate's validity: the answer cannot have
        // changed. The handshake's own signature is still checked, every
        // time, in verify_tls1*_signature.
        if let Some((until, chain)) = self
            .memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if i64::try_from(now.as_secs()).unwrap_or(i64::MAX) < *until {
                let chain = chain.clone();
                see(|s| s.chain = chain);
                return Ok(ServerCertVerified::assertion());
            }
        }
        let chain = chain_facts(end_entity, intermediates);
        see(|s| s.chain = chain.clone());
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        let verified = inner
            .verifier
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .inspect_err(|e| see(|s| s.error = Some(verify_error_text(e))))?;
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
        handshake_signature(&self.provider, false, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        handshake_signature(&self.provider, true, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The handshake's own signature, checked with the provider's algorithms:
/// what every verifier here does whatever it decides about the chain.
pub fn handshake_signature(
    provider: &CryptoProvider,
    tls13: bool,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let algorithms = &provider.signature_verification_algorithms;
    if tls13 {
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    } else {
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }
}

/// Why a chain failed verification, in an operator's words.
pub fn verify_error_text(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => "certificate has expired".to_string(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "certificate is not valid yet".to_string()
            }
            C::UnknownIssuer => {
                "unknown issuer (self-signed, or CA not trusted; see --ca-file)".to_string()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "certificate is not valid for this host name".to_string()
            }
            C::Revoked => "certificate is revoked".to_string(),
            C::BadSignature => {
                "bad signature: not signed by the trusted CA of that name (see --ca-file)".to_string()
            }
            other if format!("{other:?}").contains("CaUsedAsEndEntity") => {
                "the server presents a CA certificate (CA:TRUE) as its own; it needs a leaf certificate".to_string()
            }
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

/// Origins with sessions kept at most; past that the sessions start over
/// (a fleet usually has a handful of origins).
const SESSION_ORIGINS: usize = 256;

/// Where a session may be offered again: the same configuration, server
/// name and port, and the same address connected to. Another port of the
/// host, or another backend behind the same name, makes its own full
/// handshake and shows its own certificate.
type Origin = (usize, String, u16, Option<SocketAddr>);

/// An origin's configuration: the shared one, kept alive with it, and the
/// copy with the origin's own session store.
type OriginConfig = (Arc<ClientConfig>, Arc<ClientConfig>);

/// Session stores, one per origin, for as long as their owner keeps them
/// (a round): a configuration given to [`Sessions::for_origin`] gets a
/// copy with a store of that origin's own.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<Origin, OriginConfig>>);

impl Sessions {
    /// `config` with the session store of this origin, made on first use.
    pub fn for_origin(
        &self,
        config: &Arc<ClientConfig>,
        host: &str,
        port: u16,
        peer: Option<SocketAddr>,
    ) -> Arc<ClientConfig> {
        let key = (Arc::as_ptr(config) as usize, host.to_string(), port, peer);
        let mut map: MutexGuard<'_, _> = self.0.lock().unwrap_or_else(|p| p.into_inner());
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
}

/// A client configuration that trusts `trust`, with no session resumption
/// (a [`Sessions`] store gives it one per origin).
pub fn client_config(trust: &Trust, alpn: &[&[u8]]) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = match trust {
        Trust::Nothing => None,
        Trust::Roots(roots) => Some(Roots::new(Arc::clone(roots), Arc::clone(&provider))?),
    };
    let verifier = Arc::new(Verifier::new(inner, Arc::clone(&provider)));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// A handshake that completed.
#[derive(Debug)]
pub struct Handshake {
    /// The connection, ready for application data.
    pub conn: ClientConnection,
    /// How long the handshake took.
    pub took: Duration,
    /// TLSv1_2, TLSv1_3.
    pub version: String,
    /// The cipher suite.
    pub cipher: String,
    /// The chain the server presented, leaf first. A resumed session
    /// presents none: this is then the chain the full handshake that made
    /// the session verified.
    pub chain: Vec<CertInfo>,
    /// The handshake resumed a session instead of a full one.
    pub resumed: bool,
}

/// Why a handshake did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The chain did not verify (it is in [`TlsFailed::chain`]).
    Verify(String),
    /// The deadline came first.
    Timeout,
    /// The server closed or reset the connection.
    Closed,
    /// The server sent an alert, or something that is not TLS.
    Protocol(String),
    /// The server name is not a valid DNS name or address.
    BadName,
}

/// A handshake that failed, with what was learnt before it did.
#[derive(Debug, Clone)]
pub struct TlsFailed {
    /// Why.
    pub failure: TlsFailure,
    /// The chain, when the server got as far as sending it.
    pub chain: Vec<CertInfo>,
    /// How long it took to fail.
    pub took: Duration,
}

impl TlsFailed {
    /// In a few words, for a record.
    pub fn words(&self) -> String {
        match &self.failure {
            TlsFailure::Verify(w) => w.clone(),
            TlsFailure::Timeout => "TLS handshake timed out".into(),
            TlsFailure::Closed => {
                "the server closed the connection during the TLS handshake".into()
            }
            TlsFailure::Protocol(w) => w.clone(),
            TlsFailure::BadName => "not a valid TLS server name".into(),
        }
    }
}

/// The server name to send and verify, or why it cannot be one.
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsFailure> {
    ServerName::try_from(name.to_string()).map_err(|_| TlsFailure::BadName)
}

/// Drive `conn`'s handshake over `sock` to its end. `arm` runs before
/// each exchange and sets the socket's timeouts; it answers false when
/// the deadline has passed. `started` is when the caller began (the
/// handshake's time is counted from it).
pub fn complete<S: Read + Write>(
    mut conn: ClientConnection,
    sock: &mut S,
    mut arm: impl FnMut(&mut S) -> bool,
    started: Instant,
) -> Result<Handshake, TlsFailed> {
    let watching = Watching::start();
    let failed = |failure: TlsFailure, seen: Seen| TlsFailed {
        failure: match seen.error {
            Some(why) => TlsFailure::Verify(why),
            None => failure,
        },
        chain: seen.chain,
        took: started.elapsed(),
    };
    while conn.is_handshaking() {
        if !arm(sock) {
            return Err(failed(TlsFailure::Timeout, watching.seen()));
        }
        match conn.complete_io(sock) {
            Ok((0, 0)) if conn.is_handshaking() && !conn.wants_write() => {
                return Err(failed(TlsFailure::Closed, watching.seen()));
            }
            Ok(_) => {}
            Err(e) => {
                let failure = match e.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                        TlsFailure::Timeout
                    }
                    std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe => TlsFailure::Closed,
                    _ => TlsFailure::Protocol(e.to_string()),
                };
                return Err(failed(failure, watching.seen()));
            }
        }
    }
    let seen = watching.seen();
    let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
    // A resumed handshake presents no certificate: rustls keeps the chain
    // the full handshake verified with the session.
    let chain = if resumed {
        conn.peer_certificates()
            .map(|certs| certs.iter().filter_map(|c| cert_info(c.as_ref())).collect())
            .unwrap_or_default()
    } else {
        seen.chain
    };
    let version = conn
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_default();
    Ok(Handshake {
        conn,
        took: started.elapsed(),
        version,
        cipher,
        chain,
        resumed,
    })
}

/// Shake hands as `server_name` over `stream` before `deadline`.
pub fn handshake(
    stream: &mut TcpStream,
    server_name: &str,
    trust: &Trust,
    alpn: &[&[u8]],
    deadline: Instant,
) -> Result<Handshake, TlsFailed> {
    let config = client_config(trust, alpn).map_err(|e| TlsFailed {
        failure: TlsFailure::Protocol(e),
        chain: vec![],
        took: Duration::ZERO,
    })?;
    handshake_with(stream, server_name, Arc::new(config), deadline)
}

/// Shake hands as `server_name` over `stream` before `deadline`, with a
/// configuration made once for many handshakes ([`client_config`]).
pub fn handshake_with(
    stream: &mut TcpStream,
    server_name: &str,
    config: Arc<ClientConfig>,
    deadline: Instant,
) -> Result<Handshake, TlsFailed> {
    let started = Instant::now();
    let refused = |failure: TlsFailure| TlsFailed {
        failure,
        chain: vec![],
        took: started.elapsed(),
    };
    let name = self::server_name(server_name).map_err(refused)?;
    let conn = ClientConnection::new(config, name)
        .map_err(|e| refused(TlsFailure::Protocol(e.to_string())))?;
    let arm = |s: &mut TcpStream| {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        let _ = s.set_write_timeout(Some(left.max(Duration::from_millis(1))));
        !left.is_zero()
    };
    let result = complete(conn, stream, arm, started);
    let _ = stream.set_read_timeout(None);
    let _ = stream.set_write_timeout(None);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    struct Pki {
        ca_pem: String,
        chain: Vec<CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    }

    fn pki(until: (i32, u8, u8)) -> Pki {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "net test CA");
        let ca = ca.self_signed(&ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("params");
        leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let leaf = leaf.signed_by(&key, &ca, &ca_key).expect("leaf");
        Pki {
            ca_pem: ca.pem(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }

    /// A one-connection TLS server on loopback that answers "hi".
    fn serve(p: &Pki) -> std::net::SocketAddr {
        serve_many(p, 1)
    }

    /// A TLS server on loopback for `n` connections, each answered "hi",
    /// that issues TLS 1.3 tickets (so a second handshake can resume).
    fn serve_many(p: &Pki, n: usize) -> std::net::SocketAddr {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(p.chain.clone(), p.key.clone_key())
        .expect("cert");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = Arc::new(config);
        std::thread::spawn(move || {
            for _ in 0..n {
                let Ok((mut sock, _)) = listener.accept() else {
                    return;
                };
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(mut conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                    return;
                };
                let mut tls = rustls::Stream::new(&mut conn, &mut sock);
                let _ = tls.write_all(b"hi");
                let _ = tls.flush();
                let mut buf = [0u8; 16];
                let _ = tls.read(&mut buf);
            }
        });
        addr
    }

    #[test]
    fn one_configuration_resumes_per_origin_and_keeps_the_chain() {
        let p = pki((2080, 1, 1));
        let addr = serve_many(&p, 3);
        let roots = Trust::Roots(Arc::new(
            roots_from_pem(p.ca_pem.as_bytes()).expect("roots"),
        ));
        let shared = Arc::new(client_config(&roots, &[]).expect("config"));
        let sessions = Sessions::default();
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let config = sessions.for_origin(&shared, "localhost", addr.port(), Some(addr));
            let mut s = TcpStream::connect(addr).expect("connect");
            let mut h = handshake_with(&mut s, "localhost", config, soon()).expect("handshake");
            assert_eq!(h.chain[0].subject, "CN=localhost", "resumed: {}", h.resumed);
            // Read the data (and with it the server's session ticket).
            let mut tls = rustls::Stream::new(&mut h.conn, &mut s);
            let mut buf = [0u8; 2];
            tls.read_exact(&mut buf).expect("data");
            kinds.push(h.resumed);
        }
        assert_eq!(kinds, [false, true], "the second handshake resumes");
        // Without the origin's store, a full handshake, verified again
        // (from the verifier's memo) and with the chain.
        let mut s = TcpStream::connect(addr).expect("connect");
        let h = handshake_with(&mut s, "localhost", Arc::clone(&shared), soon()).expect("full");
        assert!(!h.resumed);
        assert_eq!(h.chain.len(), 2);
    }

    #[test]
    fn a_shared_verifier_keeps_each_handshake_its_own_failure() {
        // One configuration, a good server and one whose chain is from
        // another CA: what the verifier saw of one never shows in the other.
        let good = pki((2080, 1, 1));
        let other = pki((2080, 1, 1));
        let roots = Trust::Roots(Arc::new(
            roots_from_pem(good.ca_pem.as_bytes()).expect("roots"),
        ));
        let shared = Arc::new(client_config(&roots, &[]).expect("config"));
        let mut s = TcpStream::connect(serve(&other)).expect("connect");
        let e = handshake_with(&mut s, "localhost", Arc::clone(&shared), soon())
            .expect_err("another CA");
        assert!(matches!(e.failure, TlsFailure::Verify(_)), "{e:?}");
        let mut s = TcpStream::connect(serve(&good)).expect("connect");
        let h = handshake_with(&mut s, "localhost", shared, soon()).expect("good");
        assert_eq!(h.chain[0].issuer, "CN=net test CA");
    }

    #[test]
    fn the_system_roots_are_the_bundle_when_there_is_one() {
        let roots = system_roots();
        assert!(!roots.is_empty());
        if std::path::Path::new(SYSTEM_BUNDLE).exists() {
            let pem = std::fs::read(SYSTEM_BUNDLE).expect("bundle");
            use rustls::pki_types::pem::PemObject;
            let n = CertificateDer::pem_slice_iter(&pem).flatten().count();
            assert!(
                roots.len() <= n && roots.len() + 5 >= n,
                "{} of {n}",
                roots.len()
            );
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn a_trusted_chain_completes_with_its_facts() {
        let p = pki((2080, 1, 1));
        let addr = serve(&p);
        let roots = Trust::Roots(Arc::new(
            roots_from_pem(p.ca_pem.as_bytes()).expect("roots"),
        ));
        let mut s = TcpStream::connect(addr).expect("connect");
        let mut h = handshake(&mut s, "localhost", &roots, &[], soon()).expect("handshake");
        assert_eq!(h.chain.len(), 2);
        assert_eq!(h.chain[0].subject, "CN=localhost");
        assert_eq!(h.chain[0].issuer, "CN=net test CA");
        assert!(h.chain[0].sans.contains(&"127.0.0.1".to_string()));
        assert!(h.version.starts_with("TLSv1_"), "{}", h.version);
        let mut tls = rustls::Stream::new(&mut h.conn, &mut s);
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf).expect("data after the handshake");
        assert_eq!(&buf, b"hi");
    }

    #[test]
    fn an_untrusted_chain_fails_but_is_read() {
        let p = pki((2080, 1, 1));
        let addr = serve(&p);
        let mut s = TcpStream::connect(addr).expect("connect");
        let e = handshake(
            &mut s,
            "localhost",
            &Trust::Roots(Arc::new(builtin_roots())),
            &[],
            soon(),
        )
        .expect_err("unknown CA");
        assert!(
            matches!(&e.failure, TlsFailure::Verify(w) if w.starts_with("unknown issuer")),
            "{e:?}"
        );
        assert_eq!(e.chain.len(), 2, "the chain is known although it failed");
        assert!(e.chain[0].days_left(std::time::SystemTime::now()) > 3000.0);
    }

    #[test]
    fn a_wrong_name_fails_and_insecure_still_reads_the_chain() {
        let p = pki((2080, 1, 1));
        let roots = Trust::Roots(Arc::new(
            roots_from_pem(p.ca_pem.as_bytes()).expect("roots"),
        ));
        let mut s = TcpStream::connect(serve(&p)).expect("connect");
        let e = handshake(&mut s, "other.example", &roots, &[], soon()).expect_err("name");
        assert_eq!(
            e.failure,
            TlsFailure::Verify("certificate is not valid for this host name".into())
        );
        let mut s = TcpStream::connect(serve(&p)).expect("connect");
        let h = handshake(&mut s, "other.example", &Trust::Nothing, &[], soon()).expect("insecure");
        assert_eq!(h.chain[0].subject, "CN=localhost");
    }

    #[test]
    fn silence_times_out_and_a_close_is_closed() {
        let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut s = TcpStream::connect(silent.local_addr().expect("addr")).expect("connect");
        let deadline = Instant::now() + Duration::from_millis(200);
        let e = handshake(&mut s, "localhost", &Trust::Nothing, &[], deadline).expect_err("silent");
        assert_eq!(e.failure, TlsFailure::Timeout);
        assert!(e.took < Duration::from_secs(3), "bounded by the deadline");

        let closing = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = closing.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut sock, _)) = closing.accept() {
                let mut buf = [0u8; 512];
                let _ = sock.read(&mut buf);
            }
        });
        let mut s = TcpStream::connect(addr).expect("connect");
        let e = handshake(&mut s, "localhost", &Trust::Nothing, &[], soon()).expect_err("closed");
        assert_eq!(e.failure, TlsFailure::Closed, "{e:?}");

        let plain = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = plain.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut sock, _)) = plain.accept() {
                let _ = sock.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
                let mut buf = [0u8; 512];
                let _ = sock.read(&mut buf);
            }
        });
        let mut s = TcpStream::connect(addr).expect("connect");
        let e = handshake(&mut s, "localhost", &Trust::Nothing, &[], soon()).expect_err("not TLS");
        assert!(matches!(e.failure, TlsFailure::Protocol(_)), "{e:?}");
    }
}
