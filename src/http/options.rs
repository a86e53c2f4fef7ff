//! probe-http's flags and what they make: a validated [`super::Spec`] per
//! probe (check_http's flags where they overlap, plus skyprobe's own). The
//! targets file parses its keys with these same flags, so this file knows
//! nothing of targets or of the run.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::Parser;

use super::{OnRedirect, Spec, TlsOptions, TlsVersion};
use crate::cli::{Common, UsageError};
use crate::http::conn::IpFamilyWanted;
use crate::http::expect::{HeaderAssertion, JsonAssertion, StatusExpectation};
use crate::threshold::Thresholds;

const EXAMPLES: &str = "\
Examples:
  probe-http https://keystone.example:5000/v3
  probe-http -H nova.example -p 8774 -u / -e 200,300 -w 0.5 -c 2 --format nagios
  probe-http http://127.0.0.1:8080/healthz --json '.status == \"UP\"' -s ok
  probe-http https://api.example/ -C 30,7 --ca-file /etc/ssl/internal-ca.pem
  probe-http https://api.example/ --connect-to api.example:192.0.2.10 -v
  probe-http https://api.example/ -f follow --bearer-file tok --keep-auth-on-redirect sso.example
  probe-http https://api.example/ -k 'X-Vendor-Key: ...' --secret-header X-Vendor-Key
  probe-http https://keystone.example:5000/v3 --format nagios-line      # Sensu Go
  probe-http http://127.0.0.1:9090/ --every 30s --format prometheus --output /tmp/http.prom
  probe-http --targets api.toml --state /var/lib/skyprobe/http.json
  probe-http --targets api.toml --only nova-api          # test one target now, with its trace
  probe-http --targets api.toml --state http.json --list --format table
  probe-http --targets api.toml --insecure --no-tls-resume   # flags apply to every target
  probe-http --os-cloud prod --os-service compute --os-microversion compute=2.53
  probe-http --os-cloud prod --os-endpoints --format table   # every endpoint in the catalog
  probe-http --os-cloud prod --os-service compute --os-endpoint-override compute=https://nova.internal:8774/v2.1

Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad flags or files).

Redirects (-f follow): credentials (Authorization, X-Auth-Token, Cookie, --secret-header)
go only to the scheme, host and port of the URL given, unless --keep-auth-on-redirect
names the host.\n\nFiles and secrets: only regular files are read as configuration (a FIFO or a device is\nrefused), within a size bound; lock, history and spool files are never written through a\nsymbolic link; URLs are shown without user:password@ and secret query values, and\nknown secrets are scrubbed from all output.";

/// HTTP(S) check with assertions on status, body, JSON, headers, latency and
/// the TLS certificate; prints one record per target and exits like a Nagios plugin.
#[derive(Debug, Clone, Parser)]
#[command(name = "probe-http", version, after_help = EXAMPLES, max_term_width = 100, args_override_self = true)]
pub struct Args {
    /// Full URL to probe (instead of -H/-p/-u/-S).
    #[arg(value_name = "URL")]
    pub url: Option<String>,

    /// Host name to probe; sent as the Host header (check_http -H).
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub host: Option<String>,

    /// IP address to connect to instead of resolving the host (check_http -I).
    #[arg(short = 'I', long = "IP-address", value_name = "IP")]
    pub ip: Option<IpAddr>,

    /// Port [default: 80, or 443 with -S].
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Path and query to request.
    #[arg(short = 'u', long = "uri", value_name = "PATH", default_value = "/")]
    pub path: String,

    /// Use TLS (https).
    #[arg(short = 'S', long = "ssl")]
    pub ssl: bool,

    /// Name for the target in records [default: the URL].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// HTTP method [default: GET, or POST with a body].
    #[arg(short = 'j', long, value_name = "METHOD")]
    pub method: Option<String>,

    /// Request body (check_http -P).
    #[arg(
        short = 'P',
        long = "post",
        value_name = "BODY",
        conflicts_with = "data"
    )]
    pub post: Option<String>,

    /// Request body: text, or @FILE to read it from a file.
    #[arg(long, value_name = "BODY|@FILE")]
    pub data: Option<String>,

    /// Content-Type of the request body.
    #[arg(short = 'T', long = "content-type", value_name = "TYPE")]
    pub content_type: Option<String>,

    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'k', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// Basic authentication, user:password (check_http -a). Prefer --auth-file.
    #[arg(
        short = 'a',
        long = "authorization",
        value_name = "USER:PASS",
        env = "SKYPROBE_HTTP_AUTH",
        hide_env_values = true
    )]
    pub basic: Option<String>,

    /// Read user:password for Basic authentication from the first line of FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "basic")]
    pub auth_file: Option<PathBuf>,

    /// Bearer token file: sends 'Authorization: Bearer <first line>'.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["basic", "auth_file"])]
    pub bearer_file: Option<PathBuf>,

    /// User-Agent header.
    #[arg(short = 'A', long = "useragent", value_name = "AGENT")]
    pub user_agent: Option<String>,

    /// Expected status codes: 200, 200,204, 2xx, 200-299 [default: 5xx CRITICAL,
    /// 4xx WARNING, others OK].
    #[arg(short = 'e', long, value_name = "CODES")]
    pub expect: Option<String>,

    /// Text the body must contain.
    #[arg(short = 's', long, value_name = "TEXT")]
    pub string: Option<String>,

    /// Regular expression the body must match.
    #[arg(
        short = 'r',
        long = "regex",
        visible_alias = "ereg",
        value_name = "REGEX",
        conflicts_with = "iregex"
    )]
    pub regex: Option<String>,

    /// Case-insensitive regular expression the body must match.
    #[arg(short = 'R', long = "eregi", value_name = "REGEX")]
    pub iregex: Option<String>,

    /// The regex must NOT match.
    #[arg(long)]
    pub invert_regex: bool,

    /// JSON assertion on the body: PATH [OP VALUE], e.g. '.status == "UP"',
    /// '.items|length > 0', '.ready' (repeatable; ops == != < <= > >= =~).
    #[arg(long = "json", value_name = "ASSERTION")]
    pub json: Vec<String>,

    /// Response header that must be present: NAME, or 'NAME: REGEX' (repeatable).
    #[arg(long = "expect-header", value_name = "HEADER")]
    pub expect_header: Vec<String>,

    /// Text the response headers must contain (check_http -d).
    #[arg(short = 'd', long = "header-string", value_name = "TEXT")]
    pub header_string: Option<String>,

    /// Response time warning range, seconds (Nagios range syntax).
    #[arg(short = 'w', long, value_name = "RANGE", allow_hyphen_values = true)]
    pub warning: Option<String>,

    /// Response time critical range, seconds (Nagios range syntax).
    #[arg(short = 'c', long, value_name = "RANGE", allow_hyphen_values = true)]
    pub critical: Option<String>,

    /// Certificate days left: WARN[,CRIT]. As check_http, only the certificate is judged
    /// unless --continue-after-certificate.
    #[arg(short = 'C', long = "certificate", value_name = "DAYS[,DAYS]")]
    pub certificate: Option<String>,

    /// With -C: judge the HTTP response too.
    #[arg(long)]
    pub continue_after_certificate: bool,

    /// Page size bounds in bytes, MIN[:MAX]; outside is WARNING (check_http -m).
    #[arg(short = 'm', long = "pagesize", value_name = "MIN[:MAX]")]
    pub pagesize: Option<String>,

    /// What a redirect means: ok, warning, critical, or follow it.
    #[arg(
        short = 'f',
        long = "onredirect",
        value_enum,
        default_value = "ok",
        value_name = "ACTION"
    )]
    pub onredirect: OnRedirect,

    /// Most redirects to follow with -f follow.
    #[arg(
        long = "max-redirs",
        visible_alias = "max-redirects",
        value_name = "N",
        default_value_t = 15
    )]
    pub max_redirects: u32,

    /// With -f follow, still send the credentials (Authorization, X-Auth-Token,
    /// the Keystone token, headers named by --secret-header) on a redirect to
    /// HOST (repeatable). By default they go only to the scheme, host and port
    /// of the URL given, as curl does.
    #[arg(long = "keep-auth-on-redirect", value_name = "HOST")]
    pub keep_auth_on_redirect: Vec<String>,

    /// A -k header that carries a credential (repeatable): it is not sent on a
    /// redirect to another origin, and its value never appears in any output.
    /// Authorization, Proxy-Authorization, Cookie, X-Auth-Token and other
    /// well-known credential headers are treated so without it.
    #[arg(long = "secret-header", value_name = "NAME")]
    pub secret_headers: Vec<String>,

    /// Do not verify the server certificate (expiry is still reported).
    #[arg(long)]
    pub insecure: bool,

    /// Trust the CA certificates in FILE (PEM) instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS.
    #[arg(short = 'J', long, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of the client certificate.
    #[arg(
        short = 'K',
        long = "client-key",
        visible_alias = "private-key",
        value_name = "FILE"
    )]
    pub client_key: Option<PathBuf>,

    /// Server name to send in TLS SNI and verify [default: the host]. Given with
    /// no value (check_http's --sni) it changes nothing: SNI is always sent.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    pub sni: Option<String>,

    /// Connect to IP for HOST without resolving it: HOST:IP (repeatable).
    #[arg(long = "connect-to", value_name = "HOST:IP")]
    pub connect_to: Vec<String>,

    /// Lowest TLS version to accept.
    #[arg(long, value_enum, value_name = "VERSION", default_value = "1.2")]
    pub tls_min: TlsVersion,

    /// A full TLS handshake on every connection. By default a connection
    /// resumes the TLS session of an earlier one in the same round to the
    /// same host, port and address, whose full handshake verified the
    /// certificate; the next round starts over.
    #[arg(long)]
    pub no_tls_resume: bool,

    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,

    /// Proxy URL (http://host:port) [default: from http_proxy/https_proxy/ALL_PROXY,
    /// honouring NO_PROXY].
    #[arg(long, value_name = "URL", conflicts_with = "no_proxy")]
    pub proxy: Option<String>,

    /// Ignore proxy environment variables.
    #[arg(long)]
    pub no_proxy: bool,

    /// Most body bytes to read; a larger body is CRITICAL (e.g. 512K, 16M).
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = crate::units::parse_size)]
    pub max_body: u64,

    /// Authentication: none, basic (with -a), or keystone (a token from --os-cloud or the
    /// OS_* variables, sent as X-Auth-Token).
    #[arg(
        long,
        value_enum,
        value_name = "KIND",
        default_value = "none",
        help_heading = "OpenStack"
    )]
    pub auth: super::auth::AuthKind,

    /// The cloud, interface, region and endpoint overrides.
    #[command(flatten)]
    pub os: crate::openstack::client::OsArgs,

    /// Probe this service type's endpoint from the catalog (identity, compute, network, ...).
    #[arg(long, value_name = "TYPE", conflicts_with_all = ["url", "host", "os_endpoints"], help_heading = "OpenStack")]
    pub os_service: Option<String>,

    /// Probe every endpoint in the catalog at once: the quickest health sweep of a cloud.
    #[arg(long, conflicts_with_all = ["url", "host"], help_heading = "OpenStack")]
    pub os_endpoints: bool,

    /// Ask for an API microversion: SERVICE_TYPE=VERSION, e.g. compute=2.53 (sends
    /// OpenStack-API-Version and, for Nova, X-OpenStack-Nova-API-Version).
    #[arg(long, value_name = "TYPE=VERSION", help_heading = "OpenStack")]
    pub os_microversion: Vec<String>,

    /// Probe every target of a TOML targets file ([defaults] and [[target]] tables whose
    /// keys are these long options, plus name, url, labels, timeout, enabled). Probe
    /// options on the command line apply to every target, over the file's own. With
    /// --every, the file is read again when it changes (a broken edit keeps the last
    /// good one and is reported UNKNOWN).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["url", "host", "ip", "targets_csv"], help_heading = "Many targets")]
    pub targets: Option<PathBuf>,

    /// Probe every target of a CSV file: a header row with name, url and any long options.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["url", "host", "ip"], help_heading = "Many targets")]
    pub targets_csv: Option<PathBuf>,

    /// Probe the targets of Skypunch's SQL (data.sql, or a mysqldump of its database):
    /// the INSERT INTO targets rows.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["url", "host", "ip", "targets", "targets_csv"], help_heading = "Many targets")]
    pub targets_skypunch: Option<PathBuf>,

    /// Probe only this target of the file, even if disabled, and print its trace (repeatable).
    #[arg(long, value_name = "NAME", help_heading = "Many targets")]
    pub only: Vec<String>,

    /// Targets probed at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 64,
        help_heading = "Many targets"
    )]
    pub concurrency: usize,

    /// Keep per-target counters here (pass/fail, 2xx..5xx, network failures, consecutive
    /// failures, last failing trace); locked and written atomically.
    #[arg(long, value_name = "FILE", help_heading = "Many targets")]
    pub state: Option<PathBuf>,

    /// List the targets with their counters from --state, and exit.
    #[arg(long, requires = "state", conflicts_with_all = ["show", "disable", "enable", "only"], help_heading = "Many targets")]
    pub list: bool,

    /// Show one target's counters and last failing trace from --state, and exit.
    #[arg(long, value_name = "NAME", requires = "state", conflicts_with_all = ["disable", "enable", "only"], help_heading = "Many targets")]
    pub show: Option<String>,

    /// Stop probing NAME (kept in --state; the targets file is not edited).
    #[arg(long, value_name = "NAME", requires = "state", conflicts_with_all = ["enable", "only"], help_heading = "Many targets")]
    pub disable: Option<String>,

    /// Probe NAME again after --disable.
    #[arg(
        long,
        value_name = "NAME",
        requires = "state",
        conflicts_with = "only",
        help_heading = "Many targets"
    )]
    pub enable: Option<String>,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub common: Common,

    /// Probe options given on the command line with a targets file, as
    /// words: they apply to every target, over the file's own.
    #[arg(skip)]
    pub(super) given_words: Vec<String>,
}

fn read_secret_file(path: &Path, flag: &str) -> Result<String, UsageError> {
    crate::files::read_secret_line(path)
        .map_err(|e| UsageError::new(format!("{flag} {}: {e}", path.display())))
}

use crate::redact::base64;

impl Args {
    /// Turn flags into a validated [`Spec`]; every problem is one clear line.
    pub fn to_spec(&self) -> Result<Spec, UsageError> {
        self.to_spec_with(&super::TlsRound::default())
    }

    /// [`Args::to_spec`], building TLS configurations to check them in
    /// `tls` (one per load of a targets file: the CA bundle is read once).
    pub fn to_spec_with(&self, tls: &super::TlsRound) -> Result<Spec, UsageError> {
        let err = |m: String| UsageError::new(m);
        let mut overrides: Vec<(String, IpAddr)> = Vec::new();
        let mut basic = self.basic.clone();
        // Where the Basic credentials came from, for an error about them.
        let mut basic_from = "-a (or SKYPROBE_HTTP_AUTH)";
        let url = match (&self.url, &self.host) {
            (Some(_), Some(_)) => return Err(err("give either a URL or -H, not both".into())),
            (Some(u), None) => {
                if self.port.is_some() || self.ssl || self.path != "/" {
                    return Err(err(
                        "-p, -S and -u build a URL with -H; with a full URL put them in the URL"
                            .into(),
                    ));
                }
                // An error must not echo a password given in the URL.
                let shown = crate::redact::url(u);
                let uri: ureq::http::Uri = u
                    .parse()
                    .map_err(|e| err(format!("invalid URL {shown:?}: {e}")))?;
                match uri.scheme_str() {
                    Some("http") | Some("https") => {}
                    Some(other) => {
                        return Err(err(format!(
                            "invalid URL {shown:?}: scheme {other:?} is not http or https"
                        )))
                    }
                    None => {
                        return Err(err(format!(
                            "invalid URL {shown:?}: it needs http:// or https://"
                        )))
                    }
                }
                let authority = uri
                    .authority()
                    .ok_or_else(|| err(format!("invalid URL {shown:?}: no host")))?;
                if authority.host().is_empty() {
                    return Err(err(format!("invalid URL {shown:?}: no host")));
                }
                // Credentials in the URL become Basic auth and leave the URL,
                // so they can never show up in a record's target.
                let mut text = u.clone();
                if let Some((userinfo, _)) = authority.as_str().rsplit_once('@') {
                    if basic.is_none() {
                        basic = Some(percent_decode(userinfo));
                        basic_from = "the URL's user:password@";
                    }
                    text = text.replacen(&format!("{userinfo}@"), "", 1);
                }
                if let Some(ip) = self.ip {
                    overrides.push((authority.host().trim_matches(['[', ']']).to_string(), ip));
                }
                if uri.path().is_empty() && uri.query().is_none() {
                    text.push('/');
                }
                text
            }
            (None, host) => {
                let host = match (host, self.ip) {
                    (Some(h), ip) => {
                        if let Some(ip) = ip {
                            overrides.push((h.clone(), ip));
                        }
                        h.clone()
                    }
                    (None, Some(ip)) => ip.to_string(),
                    (None, None) if self.os_service.is_some() || self.os_endpoints => {
                        // The URL comes from the catalog at run time.
                        super::auth::CATALOG_HOST.to_string()
                    }
                    (None, None) => {
                        return Err(err(
                            "nothing to probe: give a URL, or -H HOST (see probe-http --help)"
                                .into(),
                        ))
                    }
                };
                let (host, host_port) = match host.rsplit_once(':') {
                    Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => {
                        (h.to_string(), p.parse::<u16>().ok())
                    }
                    _ => (host, None),
                };
                let host_text = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host
                };
                let scheme = if self.ssl { "https" } else { "http" };
                let path = if self.path.starts_with('/') {
                    self.path.clone()
                } else {
                    format!("/{}", self.path)
                };
                let port = self.port.or(host_port);
                let text = match port {
                    Some(p) => format!("{scheme}://{host_text}:{p}{path}"),
                    None => format!("{scheme}://{host_text}{path}"),
                };
                text.parse::<ureq::http::Uri>()
                    .map_err(|e| err(format!("invalid URL {text:?} from -H/-p/-u: {e}")))?;
                text
            }
        };
        for item in &self.connect_to {
            let (host, ip) = item
                .rsplit_once(':')
                .and_then(|(h, ip)| Some((h, ip.trim_matches(['[', ']']).parse::<IpAddr>().ok()?)))
                .or_else(|| {
                    // host:IPv6 — split at the first colon instead.
                    let (h, ip) = item.split_once(':')?;
                    Some((h, ip.trim_matches(['[', ']']).parse::<IpAddr>().ok()?))
                })
                .ok_or_else(|| err(format!("--connect-to {item:?}: want HOST:IP")))?;
            overrides.push((host.to_string(), ip));
        }
        let body = match (&self.post, &self.data) {
            (Some(p), _) => Some(p.clone().into_bytes()),
            (None, Some(d)) => match d.strip_prefix('@') {
                Some(path) => Some(
                    crate::files::read_bounded(Path::new(path), crate::files::SECRET_MAX)
                        .map_err(|e| err(format!("--data @{path}: {e}")))?,
                ),
                None => Some(d.clone().into_bytes()),
            },
            (None, None) => None,
        };
        let method = self
            .method
            .clone()
            .map(|m| m.to_ascii_uppercase())
            .unwrap_or_else(|| {
                if body.is_some() {
                    "POST".into()
                } else {
                    "GET".into()
                }
            });
        if method.is_empty()
            || !method
                .chars()
                .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_')
        {
            return Err(err(format!("-j {method:?} is not an HTTP method")));
        }
        let mut headers = Vec::new();
        for h in &self.headers {
            let (k, v) = h
                .split_once(':')
                .filter(|(k, _)| {
                    !k.trim().is_empty() && k.trim().chars().all(|c| c.is_ascii_graphic())
                })
                .ok_or_else(|| err(format!("-k {h:?}: want 'Name: value'")))?;
            let v = v.trim();
            ureq::http::HeaderValue::from_str(v).map_err(|_| {
                err(format!(
                    "-k {:?}: the value has characters a header cannot carry",
                    k.trim()
                ))
            })?;
            headers.push((k.trim().to_string(), v.to_string()));
        }
        if let Some(ct) = &self.content_type {
            headers.push(("Content-Type".into(), ct.clone()));
        } else if body.is_some()
            && method == "POST"
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            // check_http's default for -P.
            headers.push((
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
        }
        if let Some(path) = &self.auth_file {
            basic = Some(read_secret_file(path, "--auth-file")?);
            basic_from = "--auth-file";
        }
        if let Some(b) = &basic {
            if !b.contains(':') {
                return Err(err(match &self.auth_file {
                    Some(path) if basic_from == "--auth-file" => format!(
                        "--auth-file {}: its first line must be user:password",
                        path.display()
                    ),
                    _ => format!("{basic_from} wants user:password"),
                }));
            }
            headers.push((
                "Authorization".into(),
                format!("Basic {}", base64(b.as_bytes())),
            ));
        }
        for mv in &self.os_microversion {
            let (service, version) = mv
                .split_once('=')
                .filter(|(s, v)| {
                    !s.is_empty()
                        && (*v == "latest"
                            || v.split('.')
                                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
                })
                .ok_or_else(|| {
                    err(format!(
                        "--os-microversion {mv:?}: want TYPE=VERSION, e.g. compute=2.53"
                    ))
                })?;
            headers.extend(crate::openstack::microversion_headers(service, version));
        }
        if let Some(path) = &self.bearer_file {
            let token = read_secret_file(path, "--bearer-file")?;
            if ureq::http::HeaderValue::from_str(&token).is_err() {
                return Err(err(format!(
                    "--bearer-file {}: the token has characters a header cannot carry (a control character?)",
                    path.display()
                )));
            }
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        let expect = self
            .expect
            .as_deref()
            .map(StatusExpectation::parse)
            .transpose()
            .map_err(err)?;
        let regex = match (&self.regex, &self.iregex) {
            (Some(r), _) => Some(
                regex::Regex::new(r)
                    .map_err(|e| err(format!("-r {r:?}: {}", crate::cli::regex_words(&e))))?,
            ),
            (None, Some(r)) => Some(
                regex::RegexBuilder::new(r)
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| err(format!("-R {r:?}: {}", crate::cli::regex_words(&e))))?,
            ),
            (None, None) => None,
        };
        if self.invert_regex && regex.is_none() {
            return Err(err("--invert-regex needs -r or -R".into()));
        }
        let json = self
            .json
            .iter()
            .map(|j| JsonAssertion::parse(j))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let headers_expected = self
            .expect_header
            .iter()
            .map(|h| HeaderAssertion::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let time = Thresholds::parse(self.warning.as_deref(), self.critical.as_deref())
            .map_err(|e| err(format!("-w/-c: {e}")))?;
        let cert_days = self
            .certificate
            .as_deref()
            .map(|c| {
                let bad = || err(format!("-C {c:?}: want WARN_DAYS[,CRIT_DAYS], e.g. 30,7"));
                let (w, cr) = match c.split_once(',') {
                    Some((w, cr)) => (w, Some(cr)),
                    None => (c, None),
                };
                let w: f64 = w.trim().parse().map_err(|_| bad())?;
                let cr: Option<f64> = cr
                    .map(|x| x.trim().parse().map_err(|_| bad()))
                    .transpose()?;
                if !w.is_finite()
                    || w < 0.0
                    || cr.is_some_and(|x| !x.is_finite() || x < 0.0 || x > w)
                {
                    return Err(bad());
                }
                Ok((w, cr))
            })
            .transpose()?;
        let size = self
            .pagesize
            .as_deref()
            .map(|m| {
                let bad = || err(format!("-m {m:?}: want MIN[:MAX] in bytes"));
                let (min, max) = match m.split_once(':') {
                    Some((a, b)) => (a, Some(b)),
                    None => (m, None),
                };
                let min = crate::units::parse_size(min).map_err(|_| bad())?;
                let max = max
                    .map(|x| crate::units::parse_size(x).map_err(|_| bad()))
                    .transpose()?;
                if max.is_some_and(|x| x < min) {
                    return Err(bad());
                }
                Ok((min, max))
            })
            .transpose()?;
        if let Some(p) = &self.proxy {
            ureq::Proxy::new(p).map_err(|e| err(format!("--proxy {p:?}: {e}")))?;
        }
        if self.client_key.is_some() && self.client_cert.is_none() {
            return Err(err("--client-key needs --client-cert".into()));
        }
        if self.max_body == 0 {
            return Err(err("--max-body must be more than 0".into()));
        }
        let head = super::conn::output_buffer_for(
            &url,
            &headers,
            self.user_agent.as_deref().unwrap_or(super::USER_AGENT),
        ) - 1024;
        if head > super::conn::MAX_REQUEST_HEAD {
            return Err(err(format!(
                "the request's URL and headers come to about {head} bytes; at most {} are sent",
                super::conn::MAX_REQUEST_HEAD
            )));
        }
        let spec = Spec {
            name: self.name.clone(),
            url,
            method,
            headers,
            body,
            expect,
            string: self.string.clone(),
            regex,
            invert_regex: self.invert_regex,
            json,
            headers_expected,
            header_string: self.header_string.clone(),
            time,
            cert_days,
            continue_after_certificate: self.continue_after_certificate,
            size,
            on_redirect: self.onredirect,
            max_redirects: self.max_redirects,
            keep_auth_hosts: self
                .keep_auth_on_redirect
                .iter()
                .map(|h| h.trim().trim_matches(['[', ']']).to_ascii_lowercase())
                .collect(),
            secret_headers: self
                .secret_headers
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            tls: TlsOptions {
                insecure: self.insecure,
                ca_file: self.ca_file.clone(),
                client_cert: self.client_cert.clone(),
                client_key: self.client_key.clone(),
                sni: self.sni.clone().filter(|s| !s.is_empty()),
                tls13_only: self.tls_min == TlsVersion::V1_3,
                resume: !self.no_tls_resume,
            },
            overrides,
            family: if self.ipv4 {
                Some(IpFamilyWanted::V4)
            } else if self.ipv6 {
                Some(IpFamilyWanted::V6)
            } else {
                None
            },
            proxy: if self.no_proxy {
                Some(String::new())
            } else {
                self.proxy.clone()
            },
            max_body: self.max_body,
            user_agent: self.user_agent.clone(),
            labels: Default::default(),
            timeout: None,
            openstack: self.openstack()?.map(Box::new),
        };
        // Building the TLS configuration reads --ca-file and the client key:
        // a bad file is a usage error now, not a CRITICAL record later.
        if spec.url.starts_with("https://")
            || spec.tls.ca_file.is_some()
            || spec.tls.client_cert.is_some()
        {
            super::tls_config(&spec.tls, tls)?;
        }
        Ok(spec)
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

impl Args {
    fn openstack(&self) -> Result<Option<super::auth::OpenStack>, UsageError> {
        use super::auth::AuthKind;
        let wanted =
            self.auth == AuthKind::Keystone || self.os_service.is_some() || self.os_endpoints;
        if !wanted {
            if self.os.os_interface.is_some()
                || self.os.os_region.is_some()
                || !self.os.os_endpoint_override.is_empty()
            {
                return Err(UsageError::new("--os-interface/--os-region/--os-endpoint-override need --auth keystone, --os-service or --os-endpoints"));
            }
            return Ok(None);
        }
        if self.basic.is_some() || self.auth_file.is_some() || self.bearer_file.is_some() {
            return Err(UsageError::new(
                "Keystone authentication and -a/--auth-file/--bearer-file exclude each other",
            ));
        }
        let cloud = self.os.cloud()?;
        let allowed: &[&str] = if self.os_endpoints {
            &["public", "internal", "admin", "all"]
        } else {
            &["public", "internal", "admin"]
        };
        let interface = self.os.interface(&cloud, allowed)?;
        let region = self.os.os_region.clone().or_else(|| cloud.region.clone());
        let session = crate::openstack::client::Session::new(
            crate::openstack::keystone::Keystone::new(cloud, self.os.cache_dir()),
            interface,
            region,
            self.os.overrides()?,
        )
        .map_err(|e| UsageError::new(e.to_string()))?;
        Ok(Some(super::auth::OpenStack {
            session,
            service: self.os_service.clone(),
            all_endpoints: self.os_endpoints,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        let mut v = vec!["probe-http"];
        v.extend_from_slice(list);
        Args::try_parse_from(v).expect("parses")
    }

    #[test]
    fn check_http_style_flags_build_the_url() {
        let s = args(&["-H", "nova.example", "-p", "8774", "-u", "/v2.1", "-S"]).to_spec_no_tls();
        assert_eq!(s.url, "https://nova.example:8774/v2.1");
        let s = args(&["-I", "127.0.0.1", "-p", "8080"]).to_spec_no_tls();
        assert_eq!(s.url, "http://127.0.0.1:8080/");
    }

    #[test]
    fn credentials_leave_the_url() {
        let s = args(&["http://admin:s%40cret@127.0.0.1:1/x"])
            .to_spec()
            .expect("valid");
        assert_eq!(s.url, "http://127.0.0.1:1/x");
        let auth = s
            .headers
            .iter()
            .find(|(k, _)| k == "Authorization")
            .expect("auth");
        assert_eq!(auth.1, format!("Basic {}", base64(b"admin:s@cret")));
    }

    #[test]
    fn bad_input_is_one_clear_error() {
        for (list, want) in [
            (vec!["ftp://x/"], "scheme"),
            (vec!["not a url"], "invalid URL"),
            (vec!["http://x/", "-w", "3:2"], "start is greater than end"),
            (
                vec!["http://x/", "--data", "@/nonexistent/body"],
                "--data @/nonexistent/body",
            ),
            (vec!["http://x/", "-e", "abc"], "--expect"),
            (vec!["http://x/", "--json", "status"], "--json"),
            (vec![], "nothing to probe"),
            (vec!["http://x/", "-C", "7,30"], "-C"),
        ] {
            let e = args(&list).to_spec().expect_err(&format!("{list:?}"));
            assert!(e.0.contains(want), "{list:?}: {}", e.0);
            assert!(!e.0.contains('\n'));
        }
    }

    #[test]
    fn microversions_become_headers() {
        let s = args(&["http://x/", "--os-microversion", "compute=2.53"])
            .to_spec()
            .expect("valid");
        assert!(s
            .headers
            .contains(&("OpenStack-API-Version".into(), "compute 2.53".into())));
        assert!(s
            .headers
            .contains(&("X-OpenStack-Nova-API-Version".into(), "2.53".into())));
        for bad in ["compute", "compute=two", "=2.1", "compute=2."] {
            let e = args(&["http://x/", "--os-microversion", bad])
                .to_spec()
                .expect_err(bad);
            assert!(e.0.contains("--os-microversion"), "{}", e.0);
        }
    }

    #[test]
    fn percent_decoding_never_splits_characters() {
        assert_eq!(percent_decode("a%40b"), "a@b");
        assert_eq!(percent_decode("%aé"), "%aé");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    impl Args {
        fn to_spec_no_tls(&self) -> Spec {
            self.to_spec().expect("valid")
        }
    }
}
