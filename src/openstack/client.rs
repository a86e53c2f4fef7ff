//! One client for OpenStack's service APIs, written once for every binary:
//! an agent built from the cloud's configuration (`cacert`, `verify`,
//! client `cert`/`key`), the Keystone token, the catalog lookup by service
//! type, interface and region (an earlier run's catalog refreshed once
//! before a service is called missing), endpoint overrides, microversion
//! headers, and one fresh token on a 401 from a service.
//!
//! The typed APIs ([`super::nova`], [`super::neutron`],
//! [`super::masakari`], [`super::placement`]) stand on [`Session::call`].

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::config::Cloud;
use super::keystone::{Keystone, KeystoneError, Token};
use crate::report::{Status, TraceStep};

/// How much of a service's answer is read (a server list of a big host
/// is a few MiB; more is not an answer worth parsing).
pub const ANSWER_MAX: u64 = 32 << 20;

/// How much earlier than the deadline a service call gives up, so the
/// caller can still say which call it was (ureq's timer fires late).
const CALL_MARGIN: Duration = Duration::from_millis(150);

/// The TLS settings of a cloud as a ureq configuration: its `cacert` as
/// the only roots (the system's without one), `verify: false`, and the
/// client certificate and key. A file that cannot be read is an error,
/// never a silent fall-back to other roots.
pub fn tls_config(cloud: &Cloud) -> Result<ureq::tls::TlsConfig, String> {
    let roots = match &cloud.cacert {
        // The system's bundle, else the roots built in.
        None => system_roots(),
        Some(bundle) => {
            let bytes = crate::files::read_bounded(bundle, crate::files::CONFIG_MAX)
                .map_err(|e| format!("cacert {}: {e}", bundle.display()))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = pem_certs(&bytes);
            if certs.is_empty() {
                return Err(format!(
                    "cacert {}: no PEM certificate in it",
                    bundle.display()
                ));
            }
            ureq::tls::RootCerts::new_with_certs(&certs)
        }
    };
    let client_cert = match (&cloud.cert, &cloud.key) {
        (None, None) => None,
        (Some(cert), key) => {
            let pem = crate::files::read_bounded(cert, crate::files::CONFIG_MAX)
                .map_err(|e| format!("cert {}: {e}", cert.display()))?;
            let chain: Vec<ureq::tls::Certificate<'static>> = pem_certs(&pem);
            if chain.is_empty() {
                return Err(format!("cert {}: no PEM certificate in it", cert.display()));
            }
            // The key may sit in the certificate's own file.
            let key_path = key.as_ref().unwrap_or(cert);
            let key_pem = crate::files::read_bounded(key_path, crate::files::SECRET_MAX)
                .map_err(|e| format!("key {}: {e}", key_path.display()))?;
            let key = ureq::tls::PrivateKey::from_pem(&key_pem)
                .map_err(|_| format!("key {}: no PEM private key in it", key_path.display()))?;
            Some(ureq::tls::ClientCert::new_with_certs(&chain, key))
        }
        (None, Some(_)) => return Err("key given without cert".into()),
    };
    Ok(ureq::tls::TlsConfig::builder()
        .root_certs(roots)
        .disable_verification(cloud.insecure)
        .client_cert(client_cert)
        .build())
}

/// The certificates of a PEM text.
fn pem_certs(pem: &[u8]) -> Vec<ureq::tls::Certificate<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .flatten()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect()
}

/// The system's CA bundle as roots, or the roots built in without one.
fn system_roots() -> ureq::tls::RootCerts {
    let certs: Vec<ureq::tls::Certificate<'static>> = crate::files::read_bounded(
        std::path::Path::new("/etc/ssl/certs/ca-certificates.crt"),
        crate::files::CONFIG_MAX,
    )
    .map(|bytes| pem_certs(&bytes))
    .unwrap_or_default();
    if certs.is_empty() {
        ureq::tls::RootCerts::WebPki
    } else {
        ureq::tls::RootCerts::new_with_certs(&certs)
    }
}

/// The ureq agent of a cloud (see [`tls_config`]): HTTP statuses are
/// answers, not errors; timeouts are set per call from the deadline.
pub fn agent(cloud: &Cloud) -> Result<ureq::Agent, String> {
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls_config(cloud)?)
        .user_agent(format!("skyprobe/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent())
}

/// Why a call to a service has no answer worth having. Each knows what it
/// means for a check ([`OsError::status`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OsError {
    /// The monitor's own configuration is wrong (a CA file that cannot be
    /// read, a bad endpoint override): UNKNOWN.
    #[error("{0}")]
    Config(String),
    /// No token.
    #[error(transparent)]
    Keystone(#[from] KeystoneError),
    /// The catalog has no such endpoint.
    #[error("no {service} endpoint for interface {interface} in region {region} in the catalog (it has: {has})")]
    NoEndpoint {
        /// The service type asked for.
        service: String,
        /// The interface.
        interface: String,
        /// The region, or "any".
        region: String,
        /// The service types the catalog has.
        has: String,
    },
    /// The service did not answer.
    #[error("{service}: {method} {path}: {why}")]
    Unreachable {
        /// Service type.
        service: String,
        /// HTTP method.
        method: &'static str,
        /// Path asked for.
        path: String,
        /// Why (timed out, connection refused, ...).
        why: String,
    },
    /// The service answered with an error status.
    #[error("{service}: {method} {path}: HTTP {status}: {message}")]
    Http {
        /// Service type.
        service: String,
        /// HTTP method.
        method: &'static str,
        /// Path asked for.
        path: String,
        /// The status code.
        status: u16,
        /// The service's own message (its JSON error's, or the body's start).
        message: String,
    },
    /// The service answered something that is not the expected document.
    #[error("{service}: {method} {path}: unexpected answer: {why}")]
    BadAnswer {
        /// Service type.
        service: String,
        /// HTTP method.
        method: &'static str,
        /// Path asked for.
        path: String,
        /// What was wrong.
        why: String,
    },
}

impl OsError {
    /// What this means for a check: the monitor's configuration or
    /// credentials are wrong → UNKNOWN (the monitor cannot tell how the
    /// cloud is); the service is down, missing or broken → CRITICAL.
    pub fn status(&self) -> Status {
        match self {
            OsError::Config(_) => Status::Unknown,
            OsError::Keystone(k) => k.status(),
            OsError::Http { status: 401, .. } => Status::Unknown,
            OsError::NoEndpoint { .. }
            | OsError::Unreachable { .. }
            | OsError::Http { .. }
            | OsError::BadAnswer { .. } => Status::Critical,
        }
    }

    /// The HTTP status a service answered with, if it answered.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            OsError::Http { status, .. } => Some(*status),
            OsError::Keystone(KeystoneError::Refused { status, .. }) => Some(*status),
            _ => None,
        }
    }
}

/// The HTTP methods the typed APIs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
}

impl Method {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// Safe to send again when a reused connection was reset before any
    /// answer came.
    fn idempotent(self) -> bool {
        self != Method::Post
    }
}

/// A service's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as text (at most [`ANSWER_MAX`] bytes).
    pub body: String,
    /// The service's id for the request (`x-openstack-request-id`, or
    /// Nova's `x-compute-request-id`): what its logs are searched by.
    pub request_id: Option<String>,
}

impl Answer {
    /// The body as JSON (`null` when empty).
    pub fn json(&self) -> Result<Value, String> {
        if self.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.body).map_err(|e| e.to_string())
    }
}

/// A session with one cloud: the Keystone client, where to find its
/// services, and one agent whose connections the calls share.
#[derive(Clone)]
pub struct Session {
    /// Keystone (cloud, token cache, tokens in memory).
    pub keystone: Keystone,
    /// Endpoint interface: public, internal or admin.
    pub interface: String,
    /// Region for the catalog.
    pub region: Option<String>,
    /// Service type → URL used instead of the catalog's.
    pub overrides: Vec<(String, String)>,
    /// Built at the first call: a binary that only needs the token (as
    /// probe-http, which probes with its own client) never builds it.
    agent: std::sync::Arc<std::sync::OnceLock<ureq::Agent>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("cloud", &self.keystone.cloud.source)
            .field("interface", &self.interface)
            .field("region", &self.region)
            .field("overrides", &self.overrides)
            .finish()
    }
}

/// `base` with `path` (and its query) on the end, one `/` between.
pub fn join(base: &str, path: &str) -> String {
    if path.is_empty() {
        base.to_string()
    } else if path.starts_with('?') {
        // A query alone goes on the endpoint exactly as the catalog has it.
        format!("{base}{path}")
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

/// Percent-encode a value for a query string (host names, UUIDs, dates).
pub fn query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Session {
    /// A session for `keystone`'s cloud on `interface` (and `region`).
    pub fn new(
        keystone: Keystone,
        interface: String,
        region: Option<String>,
        overrides: Vec<(String, String)>,
    ) -> Result<Session, OsError> {
        let cloud = &keystone.cloud;
        // Files named in the cloud's configuration are read now, so a
        // missing CA is a configuration error before any call.
        if cloud.cacert.is_some() || cloud.cert.is_some() || cloud.key.is_some() {
            tls_config(cloud).map_err(|e| OsError::Config(format!("{}: {e}", cloud.source)))?;
        }
        Ok(Session {
            keystone,
            interface,
            region,
            overrides,
            agent: Default::default(),
        })
    }

    fn agent(&self) -> Result<&ureq::Agent, OsError> {
        if let Some(a) = self.agent.get() {
            return Ok(a);
        }
        let built = agent(&self.keystone.cloud)
            .map_err(|e| OsError::Config(format!("{}: {e}", self.keystone.cloud.source)))?;
        Ok(self.agent.get_or_init(|| built))
    }

    /// This session with the round's memory of tokens.
    pub fn in_round(&self, round: &crate::cli::RoundCache) -> Session {
        Session {
            keystone: self.keystone.in_round(round),
            ..self.clone()
        }
    }

    /// A token (see [`Keystone::token`]).
    pub fn token(&self, deadline: Instant, trace: &mut Vec<TraceStep>) -> Result<Token, OsError> {
        Ok(self.keystone.token(deadline, trace)?)
    }

    fn lookup(&self, token: &Token, service: &str) -> Result<String, OsError> {
        token
            .endpoint(service, &self.interface, self.region.as_deref())
            .ok_or_else(|| {
                let mut types: Vec<&str> = token.catalog.iter().map(|s| s.kind.as_str()).collect();
                types.sort_unstable();
                types.dedup();
                OsError::NoEndpoint {
                    service: service.to_string(),
                    interface: self.interface.clone(),
                    region: self.region.clone().unwrap_or_else(|| "any".into()),
                    has: types.join(", "),
                }
            })
    }

    /// The endpoint of a service type and a token to use with it: an
    /// override if one was given, else the catalog's. A catalog an earlier
    /// run cached may predate the service, so a fresh token (and catalog)
    /// is asked for once before it is called missing.
    pub fn endpoint(
        &self,
        service: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<(String, Token), OsError> {
        let token = self.token(deadline, trace)?;
        if let Some((_, url)) = self.overrides.iter().find(|(t, _)| t == service) {
            return Ok((url.clone(), token));
        }
        match self.lookup(&token, service) {
            Ok(url) => Ok((url, token)),
            Err(_) if token.earlier_run => {
                self.keystone.invalidate();
                trace.push(TraceStep::new(
                    "keystone",
                    true,
                    Duration::ZERO,
                    Some(format!(
                        "no {service} endpoint in the cached catalog; asking Keystone for a new token"
                    )),
                ));
                let fresh = self.token(deadline, trace)?;
                let url = self.lookup(&fresh, service)?;
                Ok((url, fresh))
            }
            Err(e) => Err(e),
        }
    }

    /// Run `call` with the service's endpoint and a token, with one fresh
    /// token on a 401 ([`Session::fresh_token_on_401`], the one place that
    /// rule is written).
    pub fn authorized<T>(
        &self,
        service: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
        call: impl FnMut(&str, &Token, &mut Vec<TraceStep>) -> (T, bool),
    ) -> Result<T, OsError> {
        let (url, token) = self.endpoint(service, deadline, trace)?;
        self.fresh_token_on_401(&url, token, deadline, trace, call)
    }

    /// Run `call` at `url` with `token`; when it says the answer was a
    /// 401, once more with a fresh token.
    pub fn fresh_token_on_401<T>(
        &self,
        url: &str,
        token: Token,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
        mut call: impl FnMut(&str, &Token, &mut Vec<TraceStep>) -> (T, bool),
    ) -> Result<T, OsError> {
        let (out, unauthorized) = call(url, &token, trace);
        if !unauthorized {
            return Ok(out);
        }
        // As keystoneauth does: whatever the token's age, a 401 gets one
        // re-authentication (a token revoked since it was issued, keys
        // rotated between Keystone nodes), never a second.
        self.keystone.invalidate();
        let which = if token.from_cache {
            "the cached"
        } else {
            "a new"
        };
        trace.push(TraceStep::new(
            "keystone",
            true,
            Duration::ZERO,
            Some(format!(
                "401 with {which} token; asking Keystone for another"
            )),
        ));
        let fresh = self.token(deadline, trace)?;
        Ok(call(url, &fresh, trace).0)
    }

    /// One call to a service: its path (with the query) under the
    /// service's endpoint, a JSON body, the microversion headers when
    /// given. Any answer is returned, whatever its status; [`Session::call`]
    /// turns error statuses into [`OsError::Http`].
    pub fn send(
        &self,
        call: &Call<'_>,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Answer, OsError> {
        self.authorized(call.service, deadline, trace, |base, token, trace| {
            let answer = self.once(call, &join(base, call.path), token, deadline, trace);
            let unauthorized = matches!(&answer, Ok(a) if a.status == 401);
            (answer, unauthorized)
        })?
    }

    fn once(
        &self,
        call: &Call<'_>,
        url: &str,
        token: &Token,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Answer, OsError> {
        let Call {
            service,
            microversion,
            method,
            path,
            body,
        } = *call;
        let mut headers = vec![
            ("X-Auth-Token".to_string(), token.id.expose().to_string()),
            ("Accept".to_string(), "application/json".to_string()),
        ];
        if let Some(v) = microversion {
            headers.extend(super::microversion_headers(service, v));
        }
        let unreachable = |why: String| OsError::Unreachable {
            service: service.to_string(),
            method: method.as_str(),
            path: crate::redact::urls_in(path).into_owned(),
            why,
        };
        let agent = self.agent()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let left = deadline
                .saturating_duration_since(started)
                .saturating_sub(CALL_MARGIN);
            if left.is_zero() {
                return Err(unreachable("no time left before the deadline".into()));
            }
            let result = Self::request(agent, method, url, &headers, body, left);
            let took = started.elapsed();
            match result {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let request_id = ["x-openstack-request-id", "x-compute-request-id"]
                        .iter()
                        .find_map(|h| response.headers().get(*h)?.to_str().ok())
                        .map(|v| {
                            v.chars()
                                .filter(|c| !c.is_control())
                                .take(80)
                                .collect::<String>()
                        });
                    let text = response
                        .body_mut()
                        .with_config()
                        .limit(ANSWER_MAX)
                        .read_to_string();
                    let text = match text {
                        Ok(t) => t,
                        Err(e) => {
                            let why = format!("HTTP {status}, then the body failed: {}", words(e));
                            trace.push(TraceStep::new(service, false, took, Some(why.clone())));
                            return Err(unreachable(why));
                        }
                    };
                    trace.push(TraceStep::new(
                        service,
                        (200..300).contains(&status),
                        started.elapsed(),
                        Some(format!(
                            "{} {} → HTTP {status}{}",
                            method.as_str(),
                            crate::redact::urls_in(path),
                            request_id
                                .as_deref()
                                .map(|id| format!(" ({id})"))
                                .unwrap_or_default()
                        )),
                    ));
                    return Ok(Answer {
                        status,
                        body: text,
                        request_id,
                    });
                }
                Err(e) => {
                    let reset = matches!(&e, ureq::Error::Io(io) if matches!(io.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::UnexpectedEof));
                    let why = words(e);
                    trace.push(TraceStep::new(
                        service,
                        false,
                        took,
                        Some(format!(
                            "{} {}: {why}",
                            method.as_str(),
                            crate::redact::urls_in(path)
                        )),
                    ));
                    // A pooled connection the server had closed (uwsgi closes
                    // without saying so): once more on a fresh one.
                    if reset && attempt == 1 && method.idempotent() {
                        continue;
                    }
                    return Err(unreachable(why));
                }
            }
        }
    }

    fn request(
        agent: &ureq::Agent,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        macro_rules! with_headers {
            ($req:expr) => {{
                let mut r = $req;
                for (k, v) in headers {
                    r = r.header(k.as_str(), v.as_str());
                }
                r.config().timeout_global(Some(timeout)).build()
            }};
        }
        match (method, body) {
            (Method::Get, _) => with_headers!(agent.get(url)).call(),
            (Method::Delete, _) => with_headers!(agent.delete(url)).call(),
            (Method::Post, b) | (Method::Put, b) => {
                let req = if method == Method::Post {
                    agent.post(url)
                } else {
                    agent.put(url)
                };
                let bytes = b.map(|v| v.to_string()).unwrap_or_default();
                with_headers!(req.header("Content-Type", "application/json")).send(bytes.as_bytes())
            }
        }
    }

    /// A call whose answer must be 2xx: an error status becomes
    /// [`OsError::Http`] with the service's own message.
    pub fn call(
        &self,
        call: &Call<'_>,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Answer, OsError> {
        let answer = self.send(call, deadline, trace)?;
        if (200..300).contains(&answer.status) {
            return Ok(answer);
        }
        Err(call.error(|path| OsError::Http {
            service: call.service.to_string(),
            method: call.method.as_str(),
            path,
            status: answer.status,
            message: error_message(&answer.body),
        }))
    }

    /// A 2xx call's JSON answer, `key` taken out of it as a `T`.
    pub fn fetch<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        key: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<T, OsError> {
        let answer = self.call(call, deadline, trace)?;
        parse(&answer, key).map_err(|why| call.bad_answer(why))
    }

    /// GET a JSON document and take `key` out of it as a `T`.
    pub fn get<T: DeserializeOwned>(
        &self,
        service: &str,
        microversion: Option<&str>,
        path: &str,
        key: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<T, OsError> {
        let call = Call::get(service, microversion, path);
        self.fetch(&call, key, deadline, trace)
    }
}

/// One request to a service.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Its service type (`compute`, `network`, ...).
    pub service: &'a str,
    /// The microversion to ask for.
    pub microversion: Option<&'a str>,
    /// The method.
    pub method: Method,
    /// Path and query under the endpoint.
    pub path: &'a str,
    /// A JSON body.
    pub body: Option<&'a Value>,
}

impl<'a> Call<'a> {
    /// A GET.
    pub fn get(service: &'a str, microversion: Option<&'a str>, path: &'a str) -> Call<'a> {
        Call {
            service,
            microversion,
            method: Method::Get,
            path,
            body: None,
        }
    }

    /// A POST or PUT with a JSON body.
    pub fn with_body(
        method: Method,
        service: &'a str,
        microversion: Option<&'a str>,
        path: &'a str,
        body: &'a Value,
    ) -> Call<'a> {
        Call {
            service,
            microversion,
            method,
            path,
            body: Some(body),
        }
    }

    /// An error about this call, given its path with no secrets in it.
    fn error(&self, f: impl FnOnce(String) -> OsError) -> OsError {
        f(crate::redact::urls_in(self.path).into_owned())
    }

    /// The answer was not the document expected.
    pub fn bad_answer(&self, why: String) -> OsError {
        self.error(|path| OsError::BadAnswer {
            service: self.service.to_string(),
            method: self.method.as_str(),
            path,
            why,
        })
    }
}

/// Take `key` out of an answer's JSON as a `T` (the whole document when
/// `key` is empty).
pub fn parse<T: DeserializeOwned>(answer: &Answer, key: &str) -> Result<T, String> {
    let mut doc = answer.json()?;
    let part = if key.is_empty() {
        doc
    } else {
        match doc.get_mut(key) {
            Some(v) => v.take(),
            None => return Err(format!("no {key:?} in the answer")),
        }
    };
    serde_json::from_value(part).map_err(|e| format!("{key}: {e}"))
}

/// The message of an OpenStack error body: Nova's `{"badRequest":
/// {"message"}}`, Keystone's `{"error": {"message"}}`, Neutron's
/// `{"NeutronError": {"message"}}`, webob's `{"title", "description"}`,
/// else the body's start.
pub fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let obj = v.as_object()?;
        if let Some(m) = obj.get("message").and_then(Value::as_str) {
            return Some(m.to_string());
        }
        if let Some(d) = obj.get("description").and_then(Value::as_str) {
            return Some(d.to_string());
        }
        obj.values()
            .find_map(|inner| inner.get("message").and_then(Value::as_str))
            .map(str::to_string)
    });
    let text = from_json.unwrap_or_else(|| body.trim().chars().take(200).collect());
    if text.is_empty() {
        "(no message)".to_string()
    } else {
        crate::redact::urls_in(&text).into_owned()
    }
}

/// A ureq error in a few words, with no URL's userinfo or query secrets.
fn words(e: ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timed out".to_string(),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".to_string()
        }
        other => crate::redact::urls_in(&other.to_string()).into_owned(),
    }
}

/// The OpenStack options every binary that talks to OpenStack takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OsArgs {
    /// The cloud in clouds.yaml (./, ~/.config/openstack/, /etc/openstack/; secure.yaml merged)
    /// [default: OS_CLOUD, else the OS_* variables].
    #[arg(long, value_name = "CLOUD", help_heading = "OpenStack")]
    pub os_cloud: Option<String>,

    /// Endpoint interface: public, internal or admin [default: the cloud's, else public].
    #[arg(long, value_name = "INTERFACE", help_heading = "OpenStack")]
    pub os_interface: Option<String>,

    /// Region for the catalog [default: the cloud's, or OS_REGION_NAME].
    #[arg(long, value_name = "REGION", help_heading = "OpenStack")]
    pub os_region: Option<String>,

    /// Use this URL for a service type instead of the catalog's: TYPE=URL, e.g.
    /// compute=https://nova.internal:8774/v2.1 (repeatable).
    #[arg(long, value_name = "TYPE=URL", help_heading = "OpenStack")]
    pub os_endpoint_override: Vec<String>,

    /// Do not cache the token (by default it is kept, readable only by this user, until
    /// shortly before it expires).
    #[arg(long, help_heading = "OpenStack")]
    pub no_token_cache: bool,
}

impl OsArgs {
    /// The cloud these options name (see [`super::config::resolve`]).
    pub fn cloud(&self) -> Result<Cloud, crate::cli::UsageError> {
        super::config::resolve(self.os_cloud.as_deref(), &super::config::ProcessEnv)
    }

    /// The interface: `--os-interface`, else the cloud's; one of
    /// `allowed`.
    pub fn interface(
        &self,
        cloud: &Cloud,
        allowed: &[&str],
    ) -> Result<String, crate::cli::UsageError> {
        let interface = self
            .os_interface
            .clone()
            .unwrap_or_else(|| cloud.interface.clone());
        if !allowed.contains(&interface.as_str()) {
            return Err(crate::cli::UsageError::new(format!(
                "--os-interface {interface:?}: want {}",
                allowed.join(", ")
            )));
        }
        Ok(interface)
    }

    /// The token cache directory, unless `--no-token-cache`.
    pub fn cache_dir(&self) -> Option<std::path::PathBuf> {
        (!self.no_token_cache).then(|| super::keystone::cache_dir(&super::config::ProcessEnv))
    }

    /// `--os-endpoint-override` as (type, URL) pairs.
    pub fn overrides(&self) -> Result<Vec<(String, String)>, crate::cli::UsageError> {
        self.os_endpoint_override
            .iter()
            .map(|o| match o.split_once('=') {
                Some((t, u))
                    if !t.is_empty()
                        && (u.starts_with("http://") || u.starts_with("https://")) =>
                {
                    Ok((t.to_string(), u.to_string()))
                }
                _ => Err(crate::cli::UsageError::new(format!(
                    "--os-endpoint-override {:?}: want TYPE=URL, e.g. compute=https://nova:8774/v2.1",
                    crate::redact::url(o)
                ))),
            })
            .collect()
    }

    /// A session with the cloud: configuration problems (no such cloud, a
    /// CA file that cannot be read) are usage errors here, before any call.
    pub fn session(&self) -> Result<Session, crate::cli::UsageError> {
        let cloud = self.cloud()?;
        let interface = self.interface(&cloud, &["public", "internal", "admin"])?;
        let region = self.os_region.clone().or_else(|| cloud.region.clone());
        let overrides = self.overrides()?;
        Session::new(
            Keystone::new(cloud, self.cache_dir()),
            interface,
            region,
            overrides,
        )
        .map_err(|e| crate::cli::UsageError::new(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_onto_endpoints() {
        assert_eq!(join("http://n/v2.1/", "/servers"), "http://n/v2.1/servers");
        assert_eq!(
            join("http://n/v2.1", "servers?x=1"),
            "http://n/v2.1/servers?x=1"
        );
        assert_eq!(join("http://n/v2.1/", "?a=b"), "http://n/v2.1/?a=b");
        assert_eq!(join("http://n/v2.1", "?a=b"), "http://n/v2.1?a=b");
        assert_eq!(join("http://n/v2.1", ""), "http://n/v2.1");
        assert_eq!(query_value("compute 1/é"), "compute%201%2F%C3%A9");
    }

    #[test]
    fn error_messages_of_each_service_shape() {
        assert_eq!(
            error_message(
                r#"{"badRequest": {"code": 400, "message": "Compute service of compute1 is still in use."}}"#
            ),
            "Compute service of compute1 is still in use."
        );
        assert_eq!(
            error_message(
                r#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#
            ),
            "The request you have made requires authentication."
        );
        assert_eq!(
            error_message(
                r#"{"NeutronError": {"type": "AgentNotFound", "message": "Agent x could not be found.", "detail": ""}}"#
            ),
            "Agent x could not be found."
        );
        assert_eq!(error_message("<html>oops</html>"), "<html>oops</html>");
        assert_eq!(error_message(""), "(no message)");
    }

    #[test]
    fn each_error_knows_its_state() {
        let cfg = OsError::Config("cacert /x: no such file".into());
        assert_eq!(cfg.status(), Status::Unknown);
        let refused = OsError::Keystone(KeystoneError::Refused {
            status: 401,
            message: "no".into(),
        });
        assert_eq!(
            refused.status(),
            Status::Unknown,
            "wrong credentials are the monitor's"
        );
        assert_eq!(refused.http_status(), Some(401));
        let down = OsError::Keystone(KeystoneError::Unreachable {
            url: "http://k".into(),
            why: "connection refused".into(),
        });
        assert_eq!(down.status(), Status::Critical);
        let broken = OsError::Keystone(KeystoneError::Refused {
            status: 503,
            message: "x".into(),
        });
        assert_eq!(
            broken.status(),
            Status::Critical,
            "a Keystone that fails is down"
        );
        let http = OsError::Http {
            service: "compute".into(),
            method: "PUT",
            path: "/os-services/x".into(),
            status: 400,
            message: "m".into(),
        };
        assert_eq!(http.status(), Status::Critical);
        assert_eq!(http.http_status(), Some(400));
        assert_eq!(http.to_string(), "compute: PUT /os-services/x: HTTP 400: m");
    }

    #[test]
    fn parse_takes_the_key_out() {
        let a = Answer {
            status: 200,
            body: r#"{"things": [1, 2]}"#.into(),
            request_id: None,
        };
        let v: Vec<u32> = parse(&a, "things").expect("parses");
        assert_eq!(v, vec![1, 2]);
        let e = parse::<Vec<u32>>(&a, "other").expect_err("missing key");
        assert!(e.contains("other"), "{e}");
    }

    #[test]
    fn endpoint_overrides_want_type_and_url() {
        let a = OsArgs {
            os_endpoint_override: vec!["compute=https://n:8774/v2.1".into()],
            ..Default::default()
        };
        assert_eq!(
            a.overrides().expect("good"),
            vec![("compute".to_string(), "https://n:8774/v2.1".to_string())]
        );
        for bad in ["compute", "=http://x", "compute=ftp://x"] {
            let a = OsArgs {
                os_endpoint_override: vec![bad.into()],
                ..Default::default()
            };
            assert!(a.overrides().is_err(), "{bad}");
        }
    }
}
