//! A TLS handshake over a connected TCP stream, without HTTP: timed,
//! inside a deadline, with the chain the server presented read whether or
//! not it verifies (its expiry is worth knowing either way). A chain that
//! does not verify ends the handshake, so nothing is ever sent over it.

use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::cert::{chain_facts, CertInfo};

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

/// A handshake that completed.
#[derive(Debug)]
pub struct Handshake {
    /// The connection, ready for application data.
    pub conn: rustls::ClientConnection,
    /// How long the handshake took.
    pub took: Duration,
    /// TLSv1_2, TLSv1_3.
    pub version: String,
    /// The cipher suite.
    pub cipher: String,
    /// The chain the server presented, leaf first.
    pub chain: Vec<CertInfo>,
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

/// What one handshake's verifier saw: the chain, and why it failed.
#[derive(Debug, Default)]
struct Seen {
    chain: Vec<CertInfo>,
    error: Option<String>,
}

/// Verifies with WebPKI (or not at all), recording the chain first. One
/// per handshake, so what it records is that handshake's alone.
#[derive(Debug)]
struct Capture {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Seen>,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.chain = chain_facts(end_entity, intermediates);
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .inspect_err(|e| seen.error = Some(verify_error_text(e)))
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

/// Shake hands as `server_name` over `stream` before `deadline`.
pub fn handshake(
    stream: &mut TcpStream,
    server_name: &str,
    trust: &Trust,
    alpn: &[&[u8]],
    deadline: Instant,
) -> Result<Handshake, TlsFailed> {
    let started = Instant::now();
    let failed = |failure: TlsFailure, chain: Vec<CertInfo>| TlsFailed {
        failure,
        chain,
        took: started.elapsed(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = match trust {
        Trust::Nothing => None,
        Trust::Roots(roots) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::clone(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| failed(TlsFailure::Protocol(e.to_string()), vec![]))?,
        ),
    };
    let capture = Arc::new(Capture {
        inner,
        provider: Arc::clone(&provider),
        seen: Mutex::default(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(TlsFailure::Protocol(e.to_string()), vec![]))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&capture) as Arc<dyn ServerCertVerifier>)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|_| failed(TlsFailure::BadName, vec![]))?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| failed(TlsFailure::Protocol(e.to_string()), vec![]))?;
    let seen_chain = |capture: &Capture| {
        std::mem::take(&mut capture.seen.lock().unwrap_or_else(|p| p.into_inner()).chain)
    };
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(failed(TlsFailure::Timeout, seen_chain(&capture)));
        }
        let _ = stream.set_read_timeout(Some(left));
        let _ = stream.set_write_timeout(Some(left));
        match conn.complete_io(stream) {
            Ok((0, 0)) if conn.is_handshaking() && !conn.wants_write() => {
                return Err(failed(TlsFailure::Closed, seen_chain(&capture)));
            }
            Ok(_) => {}
            Err(e) => {
                let error = capture
                    .seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .error
                    .take();
                let failure = match (error, e.kind()) {
                    (Some(why), _) => TlsFailure::Verify(why),
                    (None, std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        TlsFailure::Timeout
                    }
                    (
                        None,
                        std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe,
                    ) => TlsFailure::Closed,
                    (None, _) => TlsFailure::Protocol(e.to_string()),
                };
                return Err(failed(failure, seen_chain(&capture)));
            }
        }
    }
    let _ = stream.set_read_timeout(None);
    let _ = stream.set_write_timeout(None);
    let version = conn
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_default();
    let chain = seen_chain(&capture);
    Ok(Handshake {
        conn,
        took: started.elapsed(),
        version,
        cipher,
        chain,
    })
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
            if let Ok((mut sock, _)) = listener.accept() {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(mut conn) = rustls::ServerConnection::new(config) else {
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
