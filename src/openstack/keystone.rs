//! Keystone v3: get a token (password or application credential), keep it
//! in a cache file only the user can read until shortly before it expires,
//! and look endpoints up in its catalog.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::config::{Cloud, Credentials, Env};
use super::Secret;
use crate::report::TraceStep;

/// One endpoint of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// public, internal or admin.
    pub interface: String,
    /// Its URL.
    pub url: String,
    /// Region name.
    #[serde(default)]
    pub region: Option<String>,
    /// Region id.
    #[serde(default)]
    pub region_id: Option<String>,
}

/// One service of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Service type: identity, compute, network, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Service name: keystone, nova, ...
    #[serde(default)]
    pub name: Option<String>,
    /// Its endpoints.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// A token and what came with it.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token itself (secret).
    pub id: Secret,
    /// When Keystone says it expires.
    pub expires_at: SystemTime,
    /// The service catalog.
    pub catalog: Vec<Service>,
    /// Read from the cache rather than fetched now.
    pub from_cache: bool,
    /// Issued to an earlier run (read from the token cache file): its
    /// catalog may predate services registered since.
    pub earlier_run: bool,
}

impl Token {
    /// The endpoint URL of a service type for an interface and region.
    pub fn endpoint(
        &self,
        service_type: &str,
        interface: &str,
        region: Option<&str>,
    ) -> Option<String> {
        self.catalog
            .iter()
            .filter(|s| s.kind == service_type)
            .flat_map(|s| s.endpoints.iter())
            .find(|e| {
                e.interface == interface
                    && region.is_none_or(|r| {
                        e.region.as_deref() == Some(r) || e.region_id.as_deref() == Some(r)
                    })
            })
            .map(|e| e.url.clone())
    }
}

/// Why there is no token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeystoneError {
    /// Keystone answered and said no.
    #[error("Keystone refused the credentials: HTTP {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Keystone's own message.
        message: String,
    },
    /// Keystone could not be reached.
    #[error("cannot reach Keystone at {url}: {why}")]
    Unreachable {
        /// Its URL.
        url: String,
        /// Why.
        why: String,
    },
    /// Keystone answered something that is not a token.
    #[error("Keystone's answer is not a token: {0}")]
    BadResponse(String),
    /// The cloud's configuration cannot be used (a CA file that cannot be read).
    #[error("{0}")]
    Config(String),
}

impl KeystoneError {
    /// What this means for a check. Credentials Keystone refuses (4xx) and
    /// a configuration that cannot be used are the monitor's own problem:
    /// UNKNOWN, it cannot tell how the cloud is. A Keystone that cannot be
    /// reached, fails (5xx) or answers nonsense is down: CRITICAL.
    pub fn status(&self) -> crate::report::Status {
        use crate::report::Status;
        match self {
            KeystoneError::Refused { status, .. } if (400..500).contains(status) => Status::Unknown,
            KeystoneError::Config(_) => Status::Unknown,
            _ => Status::Critical,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Cached {
    identity: String,
    token: String,
    expires_at: String,
    catalog: Vec<Service>,
}

/// Tokens are reused until this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// Where tokens are cached: `SKYPROBE_CACHE_DIR`, `$XDG_CACHE_HOME/skyprobe`,
/// `$HOME/.cache/skyprobe`, or `/tmp/skyprobe-UID` when a plugin runs with
/// no HOME (Nagios runs plugins with only PATH set).
pub fn cache_dir(env: &dyn Env) -> PathBuf {
    if let Some(d) = env.var("SKYPROBE_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(x) = env.var("XDG_CACHE_HOME") {
        return Path::new(&x).join("skyprobe");
    }
    if let Some(h) = env.var("HOME") {
        return Path::new(&h).join(".cache/skyprobe");
    }
    std::env::temp_dir().join(format!("skyprobe-{}", nix::unistd::getuid()))
}

/// Make sure the cache directory is ours alone; refuse one that is not
/// (in /tmp another user could have made it first).
fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("token cache {}: {e}", dir.display()))?;
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("token cache {}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(format!(
            "token cache {} is not a directory owned by this user; not used",
            dir.display()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("token cache {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Tokens already held in memory, by identity: a round's (see
/// [`Keystone::in_round`]) or a long-lived client's own, never the
/// process's. Its lock also serialises fetches, so a thousand targets
/// behind one cloud ask Keystone once, not a thousand times.
#[derive(Debug, Default)]
pub struct TokenMemo(std::sync::Mutex<std::collections::HashMap<String, Token>>);

impl TokenMemo {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Token>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How much earlier than the run's deadline a token request gives up.
const KEYSTONE_MARGIN: Duration = Duration::from_millis(200);

/// A Keystone client for one cloud.
#[derive(Debug, Clone)]
pub struct Keystone {
    /// The cloud.
    pub cloud: Cloud,
    /// Token cache directory (`None`: no cache).
    pub cache_dir: Option<PathBuf>,
    /// Tokens held in memory.
    pub memo: std::sync::Arc<TokenMemo>,
}

fn tokens_url(auth_url: &str) -> String {
    let base = auth_url.trim_end_matches('/');
    if base.ends_with("/v3") {
        format!("{base}/auth/tokens")
    } else {
        format!("{base}/v3/auth/tokens")
    }
}

fn domain(name: &Option<String>, id: &Option<String>) -> Option<serde_json::Value> {
    match (id, name) {
        (Some(id), _) => Some(json!({ "id": id })),
        (None, Some(name)) => Some(json!({ "name": name })),
        (None, None) => None,
    }
}

fn auth_body(c: &Credentials) -> serde_json::Value {
    match c {
        Credentials::Password {
            username,
            user_id,
            password,
            user_domain_name,
            user_domain_id,
            project_name,
            project_id,
            project_domain_name,
            project_domain_id,
        } => {
            let mut user = json!({ "password": password.expose() });
            if let Some(id) = user_id {
                user["id"] = json!(id);
            } else if let Some(name) = username {
                user["name"] = json!(name);
                if let Some(d) = domain(user_domain_name, user_domain_id) {
                    user["domain"] = d;
                }
            }
            let mut body = json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": user } } } });
            let project = match (project_id, project_name) {
                (Some(id), _) => Some(json!({ "id": id })),
                (None, Some(name)) => {
                    let mut p = json!({ "name": name });
                    if let Some(d) = domain(project_domain_name, project_domain_id) {
                        p["domain"] = d;
                    }
                    Some(p)
                }
                (None, None) => None,
            };
            if let Some(p) = project {
                body["auth"]["scope"] = json!({ "project": p });
            }
            body
        }
        Credentials::ApplicationCredential {
            id,
            name,
            username,
            user_id,
            user_domain_name,
            user_domain_id,
            secret,
        } => {
            let mut cred = json!({ "secret": secret.expose() });
            if let Some(id) = id {
                cred["id"] = json!(id);
            } else if let Some(name) = name {
                cred["name"] = json!(name);
                let mut user = json!({});
                if let Some(uid) = user_id {
                    user["id"] = json!(uid);
                } else if let Some(u) = username {
                    user["name"] = json!(u);
                    if let Some(d) = domain(user_domain_name, user_domain_id) {
                        user["domain"] = d;
                    }
                }
                cred["user"] = user;
            }
            json!({ "auth": { "identity": { "methods": ["application_credential"], "application_credential": cred } } })
        }
    }
}

impl Keystone {
    /// A client for `cloud` with its own memory of tokens.
    pub fn new(cloud: Cloud, cache_dir: Option<PathBuf>) -> Keystone {
        Keystone {
            cloud,
            cache_dir,
            memo: Default::default(),
        }
    }

    /// This client with the round's memory of tokens, shared by every
    /// target of the round (and forgotten with it).
    pub fn in_round(&self, round: &crate::cli::RoundCache) -> Keystone {
        Keystone {
            memo: round.get::<TokenMemo>(),
            ..self.clone()
        }
    }

    fn cache_file(&self) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        Some(dir.join(format!(
            "token-{:016x}.json",
            crate::state::fnv(&self.cloud.identity())
        )))
    }

    fn read_cache(&self) -> Option<Token> {
        let path = self.cache_file()?;
        let cached: Cached = serde_json::from_slice(
            &crate::files::read_bounded(&path, crate::files::CONFIG_MAX).ok()?,
        )
        .ok()?;
        if cached.identity != self.cloud.identity() {
            return None;
        }
        let expires_at =
            humantime::parse_rfc3339_weak(cached.expires_at.trim_end_matches('Z')).ok()?;
        if SystemTime::now() + EXPIRY_MARGIN >= expires_at {
            return None;
        }
        Some(Token {
            id: Secret::new(cached.token),
            expires_at,
            catalog: cached.catalog,
            from_cache: true,
            earlier_run: true,
        })
    }

    fn write_cache(&self, token: &Token) -> Result<(), String> {
        let (Some(dir), Some(path)) = (&self.cache_dir, self.cache_file()) else {
            return Ok(());
        };
        private_dir(dir)?;
        let cached = Cached {
            identity: self.cloud.identity(),
            token: token.id.expose().to_string(),
            expires_at: humantime::format_rfc3339(token.expires_at).to_string(),
            catalog: token.catalog.clone(),
        };
        let bytes = serde_json::to_vec(&cached).map_err(|e| e.to_string())?;
        crate::state::write_atomic_mode(&path, &bytes, 0o600)
            .map_err(|e| format!("token cache {}: {e}", path.display()))
    }

    /// Forget the cached token (after a 401 from a service).
    pub fn invalidate(&self) {
        self.memo.lock().remove(&self.cloud.identity());
        if let Some(p) = self.cache_file() {
            let _ = std::fs::remove_file(p);
        }
    }

    /// A token: from the cache while it is good, else from Keystone. Each
    /// step goes into `trace` (never the token or the password).
    pub fn token(
        &self,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Token, KeystoneError> {
        let mut memo = self.memo.lock();
        let started = Instant::now();
        let key = self.cloud.identity();
        // In-process first: with --no-token-cache too, one token per cloud per run.
        let remembered = memo
            .get(&key)
            .filter(|t| SystemTime::now() + EXPIRY_MARGIN < t.expires_at)
            .cloned();
        if let Some(t) = remembered.or_else(|| self.read_cache()) {
            memo.insert(key, t.clone());
            trace.push(TraceStep::new(
                "keystone",
                true,
                started.elapsed(),
                Some(format!(
                    "cached token for {}, expires {}",
                    self.cloud.source,
                    humantime::format_rfc3339_seconds(t.expires_at)
                )),
            ));
            return Ok(t);
        }
        let url = tokens_url(&self.cloud.auth_url);
        // Stop a little before the deadline: the record can then say it was
        // Keystone that did not answer, before the run's backstop (which
        // knows only that time ran out) reports instead. ureq's own timer
        // was seen to fire 60-70 ms late.
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(KEYSTONE_MARGIN)
            .max(Duration::from_millis(1));
        let body = auth_body(&self.cloud.credentials).to_string();
        let fail = |trace: &mut Vec<TraceStep>, e: KeystoneError| {
            trace.push(TraceStep::new(
                "keystone",
                false,
                started.elapsed(),
                Some(e.to_string()),
            ));
            Err(e)
        };
        let agent = match super::client::agent(&self.cloud) {
            Ok(a) => a,
            Err(e) => {
                return fail(
                    trace,
                    KeystoneError::Config(format!("{}: {e}", self.cloud.source)),
                )
            }
        };
        let result = agent
            .post(&url)
            .header("Content-Type", "application/json")
            .config()
            .timeout_global(Some(timeout))
            .build()
            .send(body.as_bytes());
        let mut response = match result {
            Ok(r) => r,
            Err(e) => {
                let why = match e {
                    ureq::Error::Timeout(_) => "timed out".to_string(),
                    ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                        "connection refused".to_string()
                    }
                    other => crate::redact::urls_in(&other.to_string()).into_owned(),
                };
                return fail(trace, KeystoneError::Unreachable { url, why });
            }
        };
        let status = response.status().as_u16();
        let subject = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response
            .body_mut()
            .with_config()
            .limit(8 << 20)
            .read_to_string()
            .unwrap_or_default();
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.chars().take(200).collect());
            // A Keystone (or something posing as one) may quote the request
            // back: the password never leaves in its words.
            let message = crate::redact::Scrubber::new([self.cloud.secret().expose()])
                .scrub(&message)
                .into_owned();
            return fail(trace, KeystoneError::Refused { status, message });
        }
        let Some(subject) = subject else {
            return fail(
                trace,
                KeystoneError::BadResponse("no X-Subject-Token header".into()),
            );
        };
        let doc: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => return fail(trace, KeystoneError::BadResponse(e.to_string())),
        };
        let expires_at = doc["token"]["expires_at"]
            .as_str()
            .and_then(|s| humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok())
            .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3600));
        let catalog: Vec<Service> =
            serde_json::from_value(doc["token"]["catalog"].clone()).unwrap_or_default();
        let token = Token {
            id: Secret::new(subject),
            expires_at,
            catalog,
            from_cache: false,
            earlier_run: false,
        };
        memo.insert(
            key,
            Token {
                from_cache: true,
                ..token.clone()
            },
        );
        let note = match self.write_cache(&token) {
            Ok(()) => String::new(),
            Err(e) => format!("; not cached: {e}"),
        };
        trace.push(TraceStep::new(
            "keystone",
            true,
            started.elapsed(),
            Some(format!(
                "new token for {} from {}, {} services in the catalog{note}",
                self.cloud.source,
                self.cloud.auth_url,
                token.catalog.len()
            )),
        ));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_url_with_or_without_version() {
        assert_eq!(
            tokens_url("http://k:5000/v3/"),
            "http://k:5000/v3/auth/tokens"
        );
        assert_eq!(tokens_url("http://k:5000"), "http://k:5000/v3/auth/tokens");
    }

    #[test]
    fn password_body_scopes_to_the_project() {
        let c = Credentials::Password {
            username: Some("admin".into()),
            user_id: None,
            password: Secret::new("pw"),
            user_domain_name: Some("Default".into()),
            user_domain_id: None,
            project_name: Some("admin".into()),
            project_id: None,
            project_domain_name: Some("Default".into()),
            project_domain_id: None,
        };
        let b = auth_body(&c);
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "Default"
        );
        assert_eq!(b["auth"]["scope"]["project"]["name"], "admin");
    }

    #[test]
    fn catalog_lookup_by_type_interface_region() {
        let t = Token {
            id: Secret::new("t"),
            expires_at: SystemTime::now(),
            catalog: vec![Service {
                kind: "identity".into(),
                name: Some("keystone".into()),
                endpoints: vec![
                    Endpoint {
                        interface: "public".into(),
                        url: "http://a/".into(),
                        region: Some("R1".into()),
                        region_id: Some("R1".into()),
                    },
                    Endpoint {
                        interface: "internal".into(),
                        url: "http://b/".into(),
                        region: Some("R1".into()),
                        region_id: Some("R1".into()),
                    },
                ],
            }],
            from_cache: false,
            earlier_run: false,
        };
        assert_eq!(
            t.endpoint("identity", "internal", Some("R1")).as_deref(),
            Some("http://b/")
        );
        assert_eq!(
            t.endpoint("identity", "public", None).as_deref(),
            Some("http://a/")
        );
        assert!(t.endpoint("identity", "public", Some("R2")).is_none());
        assert!(t.endpoint("compute", "public", None).is_none());
        assert_eq!(format!("{:?}", t.id), "***");
    }
}
