//! The HTTP(S) probe: one request (and its redirects) with assertions on
//! status, body, JSON, headers, latency and the TLS certificate, traced
//! phase by phase.

pub mod auth;
pub mod cli;
pub mod conn;
pub mod expect;
pub mod options;
pub mod skypunch;
pub mod targets;

use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use ureq::unversioned::transport::{ConnectProxyConnector, Connector};

use crate::cli::{Context, UsageError};
use crate::report::{round_s, Metric, Record, Status, TraceStep};
use crate::threshold::Thresholds;
use conn::{IpFamilyWanted, Phases, Recorder};
use expect::{HeaderAssertion, JsonAssertion, StatusExpectation};

/// The `check` field of probe-http's records.
pub const CHECK: &str = "probe-http";

/// The User-Agent probe-http sends unless told otherwise.
pub const USER_AGENT: &str = concat!("skyprobe/", env!("CARGO_PKG_VERSION"), " probe-http");

/// What to do with a 3xx response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnRedirect {
    /// Report the redirect itself as OK (check_http's default).
    Ok,
    /// Report a redirect as WARNING.
    Warning,
    /// Report a redirect as CRITICAL.
    Critical,
    /// Follow it (up to --max-redirects) and check where it leads.
    Follow,
}

/// Minimum TLS version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsVersion {
    /// TLS 1.2 or newer.
    #[value(name = "1.2")]
    V1_2,
    /// TLS 1.3 only.
    #[value(name = "1.3")]
    V1_3,
}

/// TLS settings of a probe.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Skip certificate verification (expiry is still reported).
    pub insecure: bool,
    /// Trust these CAs (PEM) instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM).
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM).
    pub client_key: Option<PathBuf>,
    /// Server name to send (SNI) and verify, instead of the URL's host.
    pub sni: Option<String>,
    /// Only TLS 1.3.
    pub tls13_only: bool,
    /// Resume a TLS session made with the same origin earlier in the round.
    pub resume: bool,
}

/// One target of many (a targets file, or an endpoint of the catalog),
/// ready to probe.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its name (unique in the file).
    pub name: String,
    /// What to do.
    pub spec: Spec,
    /// `enabled = false` in the file.
    pub enabled: bool,
}

/// A fully validated probe: everything a request needs, no flag left to parse.
#[derive(Clone)]
pub struct Spec {
    /// The operator's name for the target.
    pub name: Option<String>,
    /// The URL, without credentials.
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Option<Vec<u8>>,
    /// Expected status codes; `None` means check_http's defaults.
    pub expect: Option<StatusExpectation>,
    /// Text the body must contain.
    pub string: Option<String>,
    /// Pattern the body must match (or must not, with `invert_regex`).
    pub regex: Option<regex::Regex>,
    /// Turn the regex into "must not match".
    pub invert_regex: bool,
    /// JSON body assertions.
    pub json: Vec<JsonAssertion>,
    /// Response header assertions.
    pub headers_expected: Vec<HeaderAssertion>,
    /// Text the response headers must contain (check_http -d).
    pub header_string: Option<String>,
    /// Response time thresholds, seconds.
    pub time: Thresholds,
    /// Certificate days left: warning, critical.
    pub cert_days: Option<(f64, Option<f64>)>,
    /// With `cert_days`: also judge the response (else only the certificate).
    pub continue_after_certificate: bool,
    /// Body size bounds in bytes (check_http -m min[:max]); outside is WARNING.
    pub size: Option<(u64, Option<u64>)>,
    /// What to do with a redirect.
    pub on_redirect: OnRedirect,
    /// How many redirects to follow at most.
    pub max_redirects: u32,
    /// Hosts (lower case) a redirect may take the credentials to.
    pub keep_auth_hosts: Vec<String>,
    /// More header names (lower case) that carry credentials.
    pub secret_headers: Vec<String>,
    /// TLS settings.
    pub tls: TlsOptions,
    /// Fixed addresses for host names (`-I`, `--connect-to`).
    pub overrides: Vec<(String, IpAddr)>,
    /// `-4` / `-6`.
    pub family: Option<IpFamilyWanted>,
    /// Proxy URL; `None` uses the environment, `Some("")` none at all.
    pub proxy: Option<String>,
    /// Most body bytes to read.
    pub max_body: u64,
    /// User-Agent header [default: [`USER_AGENT`]].
    pub user_agent: Option<String>,
    /// The operator's labels for this target (from a targets file); shared
    /// between the targets that have the same ones.
    pub labels: Arc<std::collections::BTreeMap<String, String>>,
    /// A deadline of its own, inside the run's.
    pub timeout: Option<Duration>,
    /// Keystone authentication, and where in the catalog the URL comes from.
    pub openstack: Option<Box<auth::OpenStack>>,
}

// By hand: the headers may carry credentials or a token.
impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("method", &self.method)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Spec {
    /// The name records carry.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.url)
    }

    /// Whether a request header carries a credential: never sent to
    /// another origin on a redirect, never shown.
    pub fn is_secret_header(&self, name: &str) -> bool {
        CREDENTIAL_HEADERS
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
            || self
                .secret_headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
    }

    /// The secrets this probe sends (credential header values, with the
    /// Basic password and the bare token apart), for the scrubber.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.headers {
            if !self.is_secret_header(k) {
                continue;
            }
            out.push(v.clone());
            if let Some((scheme, credential)) = v.split_once(' ') {
                // "Bearer TOKEN", "Basic BASE64": the credential alone too.
                out.push(credential.trim().to_string());
                if scheme.eq_ignore_ascii_case("basic") {
                    if let Some(pair) = crate::redact::decode_base64(credential.trim()) {
                        if let Some((_, password)) = pair.split_once(':') {
                            out.push(password.to_string());
                        }
                        out.push(pair);
                    }
                }
            }
        }
        if let Some(os) = &self.openstack {
            out.push(os.session.keystone.cloud.secret().expose().to_string());
        }
        out
    }

    fn body_needed(&self) -> bool {
        self.string.is_some() || self.regex.is_some() || !self.json.is_empty()
    }
}

/// Hops of a redirect chain shown in a trace: the first and last halves.
const TRACE_HOPS: usize = 20;

/// Request headers known to carry credentials (any case). Others can be
/// named with `--secret-header`.
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-auth-token",
    "x-subject-token",
    "x-api-key",
    "api-key",
    "x-auth-key",
    "x-access-token",
    "x-vault-token",
    "private-token",
    "x-amz-security-token",
];

/// `scheme://host:port` of a URL, the port filled in, the host in lower
/// case: what decides whether credentials may go along on a redirect.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.trim_matches(['[', ']']).to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Some((scheme, host, port))
}

/// A URL without its userinfo: a `Location` may carry `user:password@`,
/// which is neither sent nor shown.
fn without_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Build the rustls client configuration for a spec. Errors are usage errors
/// (an unreadable CA file or key is the operator's to fix).
pub fn tls_config(tls: &TlsOptions, round: &TlsRound) -> Result<Arc<ClientConfig>, UsageError> {
    let key = tls.config_key();
    if let Some(config) = round
        .configs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(Arc::clone(config));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| UsageError::new(format!("TLS setup: {e}")))?;
    let cached = round
        .roots
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&tls.ca_file)
        .cloned();
    let inner = if tls.insecure {
        None
    } else if cached.is_some() {
        cached
    } else {
        let roots = match &tls.ca_file {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                let certs = read_certs(path, "--ca-file")?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(UsageError::new(format!(
                        "--ca-file {}: no usable CA certificate in it",
                        path.display()
                    )));
                }
                roots
            }
            None => crate::net::tls::system_roots(),
        };
        let roots = crate::net::tls::Roots::new(Arc::new(roots), Arc::clone(&provider))
            .map_err(|e| UsageError::new(format!("TLS setup: {e}")))?;
        round
            .roots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tls.ca_file.clone(), roots.clone());
        Some(roots)
    };
    let verifier = Arc::new(crate::net::tls::Verifier::new(inner, Arc::clone(&provider)));
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), key) => {
            let chain = read_certs(cert, "--client-cert")?;
            if chain.is_empty() {
                return Err(UsageError::new(format!(
                    "--client-cert {}: no certificate in it",
                    cert.display()
                )));
            }
            let key_path = key.as_ref().unwrap_or(cert);
            let flag = if key.is_some() {
                "--client-key"
            } else {
                "--client-cert"
            };
            let bytes = crate::files::read_bounded(key_path, crate::files::CONFIG_MAX)
                .map_err(|e| UsageError::new(format!("{flag} {}: {e}", key_path.display())))?;
            let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
                UsageError::new(format!("{flag} {}: {}", key_path.display(), pem_error(&e)))
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| UsageError::new(format!("--client-cert/--client-key: {e}")))?
        }
        (None, Some(_)) => return Err(UsageError::new("--client-key needs --client-cert")),
        (None, None) => builder.with_no_client_auth(),
    };
    let mut config = config;
    // Sessions are kept per origin and per round (TlsRound::sessions), never in
    // the shared configuration itself.
    config.resumption = rustls::client::Resumption::disabled();
    let config = Arc::new(config);
    round
        .configs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, Arc::clone(&config));
    Ok(config)
}

/// What makes two probes' TLS configurations the same.
type ConfigKey = (
    bool,
    Option<PathBuf>,
    Option<PathBuf>,
    Option<PathBuf>,
    bool,
);

impl TlsOptions {
    fn config_key(&self) -> ConfigKey {
        (
            self.insecure,
            self.ca_file.clone(),
            self.client_cert.clone(),
            self.client_key.clone(),
            self.tls13_only,
        )
    }
}

type VerifierCache = std::collections::HashMap<Option<PathBuf>, crate::net::tls::Roots>;

/// What one round keeps of TLS, owned by the round's context (never by the
/// process): so each round verifies every origin's certificate again by a
/// full handshake, and reads a CA file, client certificate or key replaced
/// since the last round.
#[derive(Debug, Default)]
pub struct TlsRound {
    /// Configurations by their settings: one verifier per set of settings
    /// is what lets rustls resume a session (it resumes only under the
    /// verifier that made it), and the client key is read once.
    configs: std::sync::Mutex<std::collections::HashMap<ConfigKey, Arc<ClientConfig>>>,
    /// Verifiers by CA file: reading and parsing the system's CA bundle
    /// costs milliseconds, paid once per round rather than once per target.
    roots: std::sync::Mutex<VerifierCache>,
    /// Session stores per origin.
    pub(crate) sessions: crate::net::tls::Sessions,
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no PEM item of the right kind found".to_string()
        }
        other => format!("{other:?}"),
    }
}

fn read_certs(
    path: &std::path::Path,
    flag: &str,
) -> Result<Vec<CertificateDer<'static>>, UsageError> {
    let bytes = crate::files::read_bounded(path, crate::files::CONFIG_MAX)
        .map_err(|e| UsageError::new(format!("{flag} {}: {e}", path.display())))?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| UsageError::new(format!("{flag} {}: {}", path.display(), pem_error(&e))))
}

/// Everything learned about one hop.
struct Hop {
    url: String,
    /// Whether the credentials went with this request.
    credentials: bool,
    /// Its Location leads back to a URL already requested in this chain.
    loops: bool,
    phases: Phases,
    started: Instant,
    outcome: Result<HopResponse, ureq::Error>,
}

struct HopResponse {
    status: u16,
    reason: String,
    version: String,
    headers: Vec<(String, String)>,
    location: Option<String>,
}

/// A probe's record and the facts a caller acts on, typed, so that nobody
/// reads them back out of the record.
#[derive(Debug)]
pub struct Outcome {
    /// The record.
    pub record: Record,
    /// The status code of the last response, if one came.
    pub status_code: Option<u16>,
}

/// Run one probe. Never fails: every problem is a record.
pub fn probe(spec: &Spec, ctx: &Context) -> Record {
    probe_outcome(spec, ctx).record
}

/// [`probe`], with its [`Outcome`].
pub fn probe_outcome(spec: &Spec, ctx: &Context) -> Outcome {
    let started = Instant::now();
    let own;
    let ctx = match spec.timeout {
        Some(t) if started + t < ctx.deadline => {
            own = Context {
                deadline: started + t,
                ..ctx.clone()
            };
            &own
        }
        _ => ctx,
    };
    let mut record = Record::new(CHECK, &spec.url, Status::Ok, "");
    record.name = spec.display_name().to_string();
    record.labels = (*spec.labels).clone();
    let recorder = Recorder::default();
    let needs_tls = spec.url.starts_with("https://") || spec.on_redirect == OnRedirect::Follow;
    let tls = if needs_tls {
        match tls_config(&spec.tls, &ctx.round.get::<TlsRound>()) {
            Ok(c) => Some(c),
            Err(e) => {
                record.status = Status::Unknown;
                record.summary = e.0;
                return Outcome {
                    record,
                    status_code: None,
                };
            }
        }
    } else {
        None
    };
    let agent = build_agent(spec, ctx, &recorder, tls.clone());
    let mut url = spec.url.clone();
    let mut hops: Vec<Hop> = Vec::new();
    let mut body = BodyRead::default();
    let first_origin = origin(&spec.url);
    let mut visited = std::collections::HashSet::from([url.clone()]);
    loop {
        let hop_started = Instant::now();
        // Credentials go only to the origin of the URL given (and to hosts
        // the operator named): a redirect elsewhere never receives them.
        let here = origin(&url);
        let credentials = hops.is_empty()
            || here == first_origin
            || here
                .as_ref()
                .is_some_and(|(_, host, _)| spec.keep_auth_hosts.iter().any(|h| h == host));
        let mut request = ureq::http::Request::builder()
            .method(spec.method.as_str())
            .uri(url.as_str());
        for (k, v) in &spec.headers {
            if !credentials && spec.is_secret_header(k) {
                continue;
            }
            request = request.header(k.as_str(), v.as_str());
        }
        let outcome = request
            .body(spec.body.clone().unwrap_or_default())
            .map_err(|e| ureq::Error::BadUri(e.to_string()))
            .and_then(|req| agent.run(req));
        let mut response = match outcome {
            Ok(r) => r,
            Err(e) => {
                hops.push(Hop {
                    url: url.clone(),
                    credentials,
                    loops: false,
                    phases: recorder.take(),
                    started: hop_started,
                    outcome: Err(e),
                });
                break;
            }
        };
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.to_string());
        let is_redirect = (300..400).contains(&status) && location.is_some();
        let follow = is_redirect
            && spec.on_redirect == OnRedirect::Follow
            && (hops.len() as u32) < spec.max_redirects
            && !ctx.remaining().is_zero();
        if !follow {
            body = read_body(&mut response, spec);
        }
        let hop_response = HopResponse {
            status,
            reason: response
                .status()
                .canonical_reason()
                .unwrap_or("")
                .to_string(),
            version: format!("{:?}", response.version()),
            headers: response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            location: location.clone(),
        };
        hops.push(Hop {
            url: url.clone(),
            credentials,
            loops: false,
            phases: recorder.take(),
            started: hop_started,
            outcome: Ok(hop_response),
        });
        if !follow {
            break;
        }
        match location.as_deref().and_then(|l| resolve_location(&url, l)) {
            Some(next) => {
                let next = without_userinfo(&next);
                if !visited.insert(next.clone()) {
                    if let Some(last) = hops.last_mut() {
                        last.loops = true;
                    }
                    break;
                }
                url = next;
            }
            None => break,
        }
    }
    let total = started.elapsed();
    evaluate(spec, ctx, &mut record, &hops, &body, total, tls.is_some());
    record.duration_ms = crate::report::round_ms(total);
    // A server may echo a credential back (in a header, a body, a JSON
    // field an assertion quotes): never into a record or the state.
    crate::redact::Scrubber::new(spec.secrets()).scrub_record(&mut record);
    let status_code = hops
        .last()
        .and_then(|h| h.outcome.as_ref().ok())
        .map(|r| r.status);
    Outcome {
        record,
        status_code,
    }
}

fn build_agent(
    spec: &Spec,
    ctx: &Context,
    recorder: &Recorder,
    tls: Option<Arc<ClientConfig>>,
) -> ureq::Agent {
    let proxy = match spec.proxy.as_deref() {
        None => ureq::Proxy::try_from_env(),
        Some("") => None,
        Some(url) => ureq::Proxy::new(url).ok(),
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_idle_connections(0)
        .proxy(proxy)
        .timeout_global(Some(ctx.remaining()))
        .user_agent(spec.user_agent.as_deref().unwrap_or(USER_AGENT))
        .input_buffer_size(conn::BUFFER_SIZE)
        .output_buffer_size(
            conn::output_buffer_for(
                &spec.url,
                &spec.headers,
                spec.user_agent.as_deref().unwrap_or(USER_AGENT),
            ) + if spec.on_redirect == OnRedirect::Follow {
                // A Location may be longer than the URL given.
                8 * 1024
            } else {
                0
            },
        )
        // Below the input buffer: a header that fills the buffer is then
        // reported as too large, not as a connection closed mid-response.
        .max_response_header_size(conn::BUFFER_SIZE - 1)
        .ip_family(match spec.family {
            Some(IpFamilyWanted::V4) => ureq::config::IpFamily::Ipv4Only,
            Some(IpFamilyWanted::V6) => ureq::config::IpFamily::Ipv6Only,
            None => ureq::config::IpFamily::Any,
        })
        .allow_non_standard_methods(true)
        .build();
    let tcp = conn::TcpStep {
        recorder: recorder.clone(),
        deadline: ctx.deadline,
    };
    let timing = conn::TimingStep {
        recorder: recorder.clone(),
    };
    let resolver = conn::ProbeResolver {
        overrides: spec.overrides.clone(),
        recorder: recorder.clone(),
        family: spec.family,
        deadline: ctx.deadline,
    };
    match tls {
        Some(config_tls) => {
            let tls_step = conn::TlsStep {
                recorder: recorder.clone(),
                round: ctx.round.get::<TlsRound>(),
                config: config_tls,
                sni: spec.tls.sni.clone(),
                resume: spec.tls.resume,
            };
            let chain = ConnectProxyConnector::default()
                .chain(tcp)
                .chain(tls_step)
                .chain(timing);
            ureq::Agent::with_parts(config, chain, resolver)
        }
        None => {
            let chain = ConnectProxyConnector::default().chain(tcp).chain(timing);
            ureq::Agent::with_parts(config, chain, resolver)
        }
    }
}

/// Resolve a Location header against the URL it came from (RFC 3986:
/// `../`, `./`, a query or a fragment alone, a scheme-relative `//host`).
fn resolve_location(base: &str, location: &str) -> Option<String> {
    let joined = url::Url::parse(base).ok()?.join(location.trim()).ok()?;
    matches!(joined.scheme(), "http" | "https").then(|| joined.to_string())
}

#[derive(Default)]
struct BodyRead {
    bytes: Vec<u8>,
    size: u64,
    truncated: bool,
    error: Option<ureq::Error>,
    took: Duration,
}

fn read_body(response: &mut ureq::http::Response<ureq::Body>, spec: &Spec) -> BodyRead {
    let start = Instant::now();
    let keep = spec.body_needed();
    let mut out = BodyRead::default();
    let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                out.size += n as u64;
                if out.size > spec.max_body {
                    out.truncated = true;
                    break;
                }
                if keep {
                    out.bytes.extend_from_slice(&chunk[..n]);
                }
            }
            Err(e) => {
                out.error = Some(ureq::Error::from(e));
                break;
            }
        }
    }
    out.took = start.elapsed();
    out
}

fn phase_steps(phases: &Phases, record: &mut Record) {
    for p in &phases.resolve {
        record.trace.push(TraceStep::new(
            "resolve",
            p.ok,
            p.took,
            Some(p.detail.clone()),
        ));
    }
    if let Some(p) = &phases.connect {
        record.trace.push(TraceStep::new(
            "connect",
            p.ok,
            p.took,
            Some(p.detail.clone()),
        ));
    }
    if let Some(p) = &phases.tls {
        record
            .trace
            .push(TraceStep::new("tls", p.ok, p.took, Some(p.detail.clone())));
    }
}

/// How an error that ended a hop is reported: the state, a summary, and the
/// step that failed (when the phases did not already record it).
fn describe_error(
    e: &ureq::Error,
    phases: &Phases,
    url: &str,
    ctx: &Context,
    elapsed: Duration,
) -> (Status, String, Option<(String, String)>) {
    let failed_phase = phases
        .resolve
        .iter()
        .find(|p| !p.ok)
        .map(|p| ("resolve", p.detail.clone()))
        .or_else(|| {
            phases
                .connect
                .as_ref()
                .filter(|p| !p.ok)
                .map(|p| ("connect", p.detail.clone()))
        })
        .or_else(|| {
            phases
                .tls
                .as_ref()
                .filter(|p| !p.ok)
                .map(|p| ("tls", p.detail.clone()))
        });
    let secs = format!("{:.1} s", elapsed.as_secs_f64());
    match e {
        ureq::Error::Timeout(_) => {
            let waiting_for = if phases.first_byte.is_some() {
                "reading the response"
            } else if phases.request_sent.is_some() {
                "waiting for the response"
            } else if phases.tls.is_some()
                || phases.connect.as_ref().is_some_and(|p| p.ok) && !url.starts_with("https")
            {
                "sending the request"
            } else if phases.connect.as_ref().is_some_and(|p| p.ok) {
                "the TLS handshake"
            } else if phases.resolve.iter().all(|p| p.ok) && !phases.resolve.is_empty() {
                "connecting"
            } else {
                "resolving the host name"
            };
            let step = if phases.first_byte.is_some() {
                "transfer"
            } else if phases.request_sent.is_some() {
                "response"
            } else if phases.connect.as_ref().is_some_and(|p| p.ok)
                && url.starts_with("https")
                && phases.tls.is_none()
            {
                "tls"
            } else if phases.connect.as_ref().is_some_and(|p| p.ok) {
                "request"
            } else if phases.resolve.iter().all(|p| p.ok) && !phases.resolve.is_empty() {
                "connect"
            } else {
                "resolve"
            };
            let already = failed_phase.as_ref().is_some_and(|(s, _)| *s == step);
            (
                ctx.timeout_state,
                format!("timed out after {secs} while {waiting_for}"),
                (!already).then(|| (step.to_string(), format!("timed out while {waiting_for}"))),
            )
        }
        _ => match failed_phase {
            Some((step, detail)) => {
                let summary = match step {
                    "resolve" => format!("cannot resolve host: {detail}"),
                    "connect" => format!("cannot connect: {detail}"),
                    _ => format!("TLS failed: {detail}"),
                };
                (Status::Critical, summary, None)
            }
            None => {
                let text = match e {
                    ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                        "server closed the connection without a response".to_string()
                    }
                    ureq::Error::Protocol(p) => format!("bad HTTP response: {p}"),
                    ureq::Error::BadUri(why) => {
                        format!("cannot build the request: {}", crate::redact::urls_in(why))
                    }
                    ureq::Error::LargeResponseHeader(..) => format!(
                        "bad HTTP response: its headers are larger than {} KiB, the most read",
                        conn::BUFFER_SIZE / 1024
                    ),
                    other => other.to_string(),
                };
                let step = if phases.request_sent.is_some() {
                    "response"
                } else {
                    "request"
                };
                (
                    Status::Critical,
                    text.clone(),
                    Some((step.to_string(), text)),
                )
            }
        },
    }
}

fn ms_between(a: Option<Instant>, b: Option<Instant>) -> Option<Duration> {
    Some(b?.saturating_duration_since(a?))
}

fn evaluate(
    spec: &Spec,
    ctx: &Context,
    record: &mut Record,
    hops: &[Hop],
    body: &BodyRead,
    total: Duration,
    tls_used: bool,
) {
    let mut status = Status::Ok;
    let mut problems: Vec<String> = Vec::new();
    let mut fail = |status_acc: &mut Status, s: Status, msg: String| {
        *status_acc = (*status_acc).max(s);
        problems.push(msg);
    };
    // Phases, hop by hop; a long chain keeps its first and last hops.
    let skipped = hops.len().saturating_sub(TRACE_HOPS);
    for (i, hop) in hops.iter().enumerate() {
        if skipped > 0 && i >= TRACE_HOPS / 2 && i < TRACE_HOPS / 2 + skipped {
            if i == TRACE_HOPS / 2 {
                record.trace.push(TraceStep::new(
                    "redirect",
                    true,
                    Duration::ZERO,
                    Some(format!("... {skipped} more redirects not shown")),
                ));
            }
            continue;
        }
        if i > 0 {
            let dropped =
                !hop.credentials && spec.headers.iter().any(|(k, _)| spec.is_secret_header(k));
            record.trace.push(TraceStep::new(
                "redirect",
                true,
                Duration::ZERO,
                Some(format!(
                    "-> {}{}",
                    crate::redact::url(&hop.url),
                    if dropped {
                        " (another origin: credentials not sent; see --keep-auth-on-redirect)"
                    } else {
                        ""
                    }
                )),
            ));
        }
        phase_steps(&hop.phases, record);
        if let Ok(resp) = &hop.outcome {
            let ttfb = ms_between(hop.phases.request_sent, hop.phases.first_byte);
            record.trace.push(TraceStep::new(
                "response",
                true,
                ttfb.unwrap_or_default(),
                Some(
                    format!("{} {} {}", resp.version, resp.status, resp.reason)
                        .trim()
                        .to_string(),
                ),
            ));
        }
    }
    let Some(last) = hops.last() else {
        record.status = Status::Unknown;
        record.summary = "no request was made".into();
        return;
    };
    // Timing metrics of the last hop (the one that answered).
    let p = &last.phases;
    let resolve_t: Duration = p.resolve.iter().map(|x| x.took).sum();
    let connect_t = p.connect.as_ref().map(|x| x.took);
    let tls_t = p.tls.as_ref().map(|x| x.took);
    let ttfb_t = ms_between(p.request_sent, p.first_byte);
    let mut metrics = vec![];
    let mut time = Metric::new("time", round_s(total), "s").min(0.0);
    (time.warn, time.crit) = spec.time.texts();
    metrics.push(time);
    metrics.push(Metric::new("time_resolve", round_s(resolve_t), "s").min(0.0));
    if let Some(t) = connect_t {
        metrics.push(Metric::new("time_connect", round_s(t), "s").min(0.0));
    }
    if let Some(t) = tls_t {
        metrics.push(Metric::new("time_tls", round_s(t), "s").min(0.0));
    }
    if let Some(t) = ttfb_t {
        metrics.push(Metric::new("time_firstbyte", round_s(t), "s").min(0.0));
    }
    if let Some(peer) = p.peer {
        record.detail("peer", peer.to_string());
    }
    if let Some(v) = &p.tls_version {
        record.detail("tls_version", v.clone());
    }
    if let Some(v) = &p.tls_cipher {
        record.detail("tls_cipher", v.clone());
        record.detail("tls_resumed", p.tls_resumed);
    }
    if hops.len() > 1 {
        record.detail("redirects", hops.len() - 1);
        record.detail("final_url", crate::redact::url(&last.url).into_owned());
    }
    // Certificate: over the whole chain presented on any hop.
    let chain: Vec<&conn::CertInfo> = hops.iter().flat_map(|h| h.phases.chain.iter()).collect();
    let now = SystemTime::now();
    let mut cert_status = Status::Ok;
    let mut cert_msg = None;
    if let Some(first_to_expire) = crate::net::cert::first_to_expire(chain.iter().copied()) {
        let days = first_to_expire.days_left(now);
        record.detail("cert_days_left", (days * 100.0).round() / 100.0);
        record.detail("cert_subject", first_to_expire.subject.clone());
        record.detail(
            "cert_expires",
            crate::report::timestamp(
                std::time::UNIX_EPOCH
                    + Duration::from_secs(first_to_expire.not_after.max(0) as u64),
            ),
        );
        let mut m = Metric::new("cert_days", (days * 100.0).round() / 100.0, "");
        if let Some((w, c)) = spec.cert_days {
            m.warn = Some(format!("{w}:"));
            m.crit = c.map(|c| format!("{c}:"));
            let (s, what) = if days < 0.0 {
                (Status::Critical, "has expired")
            } else if c.is_some_and(|c| days < c) {
                (Status::Critical, "expires soon")
            } else if days < w {
                (Status::Warning, "expires soon")
            } else {
                (Status::Ok, "")
            };
            if s != Status::Ok {
                cert_status = s;
                cert_msg = Some(
                    format!(
                        "certificate {} {what}: {:.1} days left ({})",
                        if chain.len() > 1 && !std::ptr::eq(first_to_expire, chain[0]) {
                            "in chain"
                        } else {
                            ""
                        },
                        days,
                        first_to_expire.subject
                    )
                    .replace("certificate  ", "certificate "),
                );
            }
            record.trace.push(TraceStep::new(
                "certificate",
                s == Status::Ok,
                Duration::ZERO,
                Some(format!(
                    "{:.1} days left, {} (chain of {})",
                    days,
                    first_to_expire.subject,
                    chain.len()
                )),
            ));
        }
        metrics.push(m);
    } else if spec.cert_days.is_some() && tls_used && last.url.starts_with("https") {
        cert_status = Status::Critical;
        cert_msg = Some("no certificate was presented".into());
    }
    let response = match &last.outcome {
        Err(e) => {
            let (s, summary, step) = describe_error(e, p, &last.url, ctx, total);
            if let Some((step, detail)) = step {
                let since = p.request_sent.or(p.request_started).unwrap_or(last.started);
                record.trace.push(TraceStep::new(
                    &step,
                    false,
                    since.elapsed().min(total),
                    Some(detail),
                ));
            }
            record.metrics = metrics;
            record.status = s.max(cert_status);
            record.summary = match cert_msg {
                Some(m) => format!("{summary}; {m}"),
                None => summary,
            };
            return;
        }
        Ok(r) => r,
    };
    record.detail("status_code", response.status);
    record.detail("http_version", response.version.clone());
    // Transfer.
    if let Some(e) = &body.error {
        let timed_out = matches!(e, ureq::Error::Timeout(_));
        let s = if timed_out {
            ctx.timeout_state
        } else {
            Status::Critical
        };
        let msg = if timed_out {
            format!(
                "timed out after {:.1} s while reading the body ({} B so far)",
                total.as_secs_f64(),
                body.size
            )
        } else {
            format!("body read failed after {} B: {e}", body.size)
        };
        record.trace.push(TraceStep::new(
            "transfer",
            false,
            body.took,
            Some(msg.clone()),
        ));
        fail(&mut status, s, msg);
    } else if body.truncated {
        let msg = format!("body larger than --max-body {} B", spec.max_body);
        record.trace.push(TraceStep::new(
            "transfer",
            false,
            body.took,
            Some(msg.clone()),
        ));
        fail(&mut status, Status::Critical, msg);
    } else {
        record.trace.push(TraceStep::new(
            "transfer",
            true,
            body.took,
            Some(format!("{} B", body.size)),
        ));
    }
    metrics.push(Metric::new("time_transfer", round_s(body.took), "s").min(0.0));
    metrics.push(Metric::new("size", body.size as f64, "B").min(0.0));
    record.detail("size", body.size);
    // Status code.
    let code = response.status;
    let is_redirect = (300..400).contains(&code);
    let (code_ok, code_state, why) = match &spec.expect {
        Some(e) if e.matches(code) => (true, Status::Ok, String::new()),
        Some(e) => (
            false,
            Status::Critical,
            format!("HTTP {code}, expected {}", e.as_str()),
        ),
        None if code >= 500 => (
            false,
            Status::Critical,
            format!("HTTP {code} {}", response.reason),
        ),
        None if code >= 400 => (
            false,
            Status::Warning,
            format!("HTTP {code} {}", response.reason),
        ),
        None if is_redirect => match spec.on_redirect {
            OnRedirect::Warning => (
                false,
                Status::Warning,
                format!(
                    "HTTP {code} redirect to {}",
                    crate::redact::url(response.location.as_deref().unwrap_or("?"))
                ),
            ),
            OnRedirect::Critical => (
                false,
                Status::Critical,
                format!(
                    "HTTP {code} redirect to {}",
                    crate::redact::url(response.location.as_deref().unwrap_or("?"))
                ),
            ),
            OnRedirect::Follow if last.loops => (
                false,
                Status::Critical,
                format!(
                    "redirect loop: {} redirects to {}, already requested ({} redirects followed)",
                    crate::redact::url(&last.url),
                    crate::redact::url(response.location.as_deref().unwrap_or("?")),
                    hops.len() - 1
                ),
            ),
            OnRedirect::Follow if response.location.is_some() && ctx.remaining().is_zero() => (
                false,
                ctx.timeout_state,
                format!(
                    "the deadline (-t) ended the run after {} redirects",
                    hops.len() - 1
                ),
            ),
            OnRedirect::Follow if response.location.is_some() => (
                false,
                Status::Critical,
                format!("more than {} redirects", spec.max_redirects),
            ),
            _ => (true, Status::Ok, String::new()),
        },
        None => (true, Status::Ok, String::new()),
    };
    let only_certificate = spec.cert_days.is_some() && !spec.continue_after_certificate;
    record.trace.push(TraceStep::new(
        "status",
        code_ok,
        Duration::ZERO,
        Some(if code_ok {
            format!("{code} {}", response.reason).trim().to_string()
        } else {
            why.clone()
        }),
    ));
    if !code_ok && !only_certificate {
        fail(&mut status, code_state, why);
    }
    if !only_certificate {
        check_content(spec, record, response, body, &mut status, &mut problems);
    }
    // Size and time thresholds.
    if let Some((min, max)) = spec.size {
        if body.size < min || max.is_some_and(|m| body.size > m) {
            let msg = format!(
                "page size {} B outside {}{}",
                body.size,
                min,
                max.map(|m| format!(":{m}")).unwrap_or_default()
            );
            record.trace.push(TraceStep::new(
                "size",
                false,
                Duration::ZERO,
                Some(msg.clone()),
            ));
            if !only_certificate {
                status = status.max(Status::Warning);
                problems.push(msg);
            }
        }
    }
    let time_state = spec.time.status(total.as_secs_f64());
    if time_state != Status::Ok {
        let msg = format!("response took {:.3} s", total.as_secs_f64());
        record.trace.push(TraceStep::new(
            "time",
            false,
            Duration::ZERO,
            Some(msg.clone()),
        ));
        status = status.max(time_state);
        problems.push(msg);
    }
    if let Some(m) = cert_msg {
        status = status.max(cert_status);
        problems.insert(0, m);
    }
    record.metrics = metrics;
    record.status = status;
    let ms = total.as_secs_f64() * 1000.0;
    record.summary = if problems.is_empty() {
        let mut s = format!(
            "HTTP {code} {}, {} B in {:.0} ms",
            response.reason, body.size, ms
        )
        .replace("  ", " ");
        if let Some(d) = record
            .details
            .get("cert_days_left")
            .and_then(|v| v.as_f64())
        {
            s.push_str(&format!(", certificate {d:.0} days left"));
        }
        s
    } else if time_state != Status::Ok && problems.len() == 1 {
        problems.join("; ")
    } else {
        format!("{} ({:.0} ms)", problems.join("; "), ms)
    };
}

fn check_content(
    spec: &Spec,
    record: &mut Record,
    response: &HopResponse,
    body: &BodyRead,
    status: &mut Status,
    problems: &mut Vec<String>,
) {
    let mut step = |record: &mut Record, name: &str, result: Result<String, String>| {
        let ok = result.is_ok();
        let text = match result {
            Ok(t) | Err(t) => t,
        };
        record
            .trace
            .push(TraceStep::new(name, ok, Duration::ZERO, Some(text.clone())));
        if !ok {
            *status = (*status).max(Status::Critical);
            problems.push(text);
        }
    };
    for h in &spec.headers_expected {
        let found = response
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(&h.name))
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>();
        let result = match (&h.pattern, found.first()) {
            (_, None) => Err(format!("header {} missing", h.name)),
            (None, Some(v)) => Ok(format!("header {}: {v}", h.name)),
            (Some(p), Some(_)) => match found.iter().find(|v| p.is_match(v)) {
                Some(v) => Ok(format!("header {}: {v}", h.name)),
                None => Err(format!(
                    "header {} is {:?}, does not match {}",
                    h.name,
                    found[0],
                    p.as_str()
                )),
            },
        };
        step(record, "header", result);
    }
    if let Some(want) = &spec.header_string {
        let all = response
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n");
        // Header names arrive lower-cased (HTTP/2 style); match without case.
        let result = if all
            .to_ascii_lowercase()
            .contains(&want.to_ascii_lowercase())
        {
            Ok(format!("headers contain {want:?}"))
        } else {
            Err(format!("headers do not contain {want:?}"))
        };
        step(record, "header", result);
    }
    if !spec.body_needed() || body.error.is_some() || body.truncated {
        return;
    }
    let text = String::from_utf8_lossy(&body.bytes);
    if let Some(want) = &spec.string {
        let result = if text.contains(want.as_str()) {
            Ok(format!("body contains {want:?}"))
        } else {
            Err(format!("string {want:?} not found"))
        };
        step(record, "string", result);
    }
    if let Some(re) = &spec.regex {
        let found = re.is_match(&text);
        let result = match (found, spec.invert_regex) {
            (true, false) => Ok(format!("body matches {}", re.as_str())),
            (false, true) => Ok(format!("body does not match {}", re.as_str())),
            (false, false) => Err(format!("pattern {} not found", re.as_str())),
            (true, true) => Err(format!("pattern {} found", re.as_str())),
        };
        step(record, "regex", result);
    }
    if !spec.json.is_empty() {
        match serde_json::from_slice::<serde_json::Value>(&body.bytes) {
            Ok(doc) => {
                for a in &spec.json {
                    step(record, "json", a.check(&doc));
                }
            }
            Err(e) => step(record, "json", Err(format!("body is not JSON: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_request() {
        let base = "http://127.0.0.1:8080/a/b?x=1";
        assert_eq!(
            resolve_location(base, "/c").as_deref(),
            Some("http://127.0.0.1:8080/c")
        );
        assert_eq!(
            resolve_location(base, "c").as_deref(),
            Some("http://127.0.0.1:8080/a/c")
        );
        assert_eq!(
            resolve_location(base, "https://x/").as_deref(),
            Some("https://x/")
        );
        assert_eq!(
            resolve_location(base, "//y/z").as_deref(),
            Some("http://y/z")
        );
        assert_eq!(
            resolve_location("http://h/a/b/c", "../d?q=1").as_deref(),
            Some("http://h/a/d?q=1")
        );
        assert_eq!(
            resolve_location(base, "?page=2").as_deref(),
            Some("http://127.0.0.1:8080/a/b?page=2")
        );
        assert_eq!(
            resolve_location(base, "./c/../e").as_deref(),
            Some("http://127.0.0.1:8080/a/e")
        );
        assert_eq!(resolve_location(base, "ftp://x/"), None);
        assert_eq!(resolve_location(base, "http://[bad"), None);
    }
}
