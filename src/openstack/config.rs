//! Where a cloud's credentials come from: `clouds.yaml` (current directory,
//! `~/.config/openstack/`, `/etc/openstack/`, or `OS_CLIENT_CONFIG_FILE`)
//! with `secure.yaml` merged in, chosen by `--os-cloud`/`OS_CLOUD`; else
//! the `OS_*` environment variables.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Secret;
use crate::cli::UsageError;

/// How to authenticate.
#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    /// User name (or id) and password, scoped to a project.
    Password {
        /// User name.
        username: Option<String>,
        /// User id.
        user_id: Option<String>,
        /// The password.
        password: Secret,
        /// The user's domain name.
        user_domain_name: Option<String>,
        /// The user's domain id.
        user_domain_id: Option<String>,
        /// Project name.
        project_name: Option<String>,
        /// Project id.
        project_id: Option<String>,
        /// The project's domain name.
        project_domain_name: Option<String>,
        /// The project's domain id.
        project_domain_id: Option<String>,
    },
    /// An application credential: id, or name with its user.
    ApplicationCredential {
        /// Credential id.
        id: Option<String>,
        /// Credential name (needs the user).
        name: Option<String>,
        /// User name, with `name`.
        username: Option<String>,
        /// User id, with `name`.
        user_id: Option<String>,
        /// The user's domain name.
        user_domain_name: Option<String>,
        /// The user's domain id.
        user_domain_id: Option<String>,
        /// The secret.
        secret: Secret,
    },
}

/// Everything needed to talk to one cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct Cloud {
    /// For messages: the cloud's name, or "OS_* environment".
    pub source: String,
    /// Keystone's URL (with or without /v3).
    pub auth_url: String,
    /// How to authenticate.
    pub credentials: Credentials,
    /// Region for catalog lookups.
    pub region: Option<String>,
    /// Endpoint interface: public, internal, admin.
    pub interface: String,
    /// CA bundle for Keystone and the endpoints.
    pub cacert: Option<PathBuf>,
    /// `verify: false`.
    pub insecure: bool,
    /// Client certificate (PEM) for services that ask for one: `cert`, `OS_CERT`.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM): `key`, `OS_KEY`.
    pub key: Option<PathBuf>,
}

impl Cloud {
    /// The secret of the credentials (password or application credential
    /// secret), for scrubbing what Keystone may echo back.
    pub fn secret(&self) -> &Secret {
        match &self.credentials {
            Credentials::Password { password, .. } => password,
            Credentials::ApplicationCredential { secret, .. } => secret,
        }
    }

    /// Identity of the credentials, the token cache key: who and where, and
    /// a SHA-256 digest of everything including the secret (never the
    /// secret itself), so a changed password is not hidden by a token
    /// cached under the old one.
    pub fn identity(&self) -> String {
        let who = self.who();
        let mut keyed = who.clone().into_bytes();
        keyed.push(0);
        keyed.extend_from_slice(self.secret().expose().as_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA256, &keyed);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("{who}|sha256:{hex}")
    }

    fn who(&self) -> String {
        match &self.credentials {
            Credentials::Password {
                username,
                user_id,
                user_domain_name,
                user_domain_id,
                project_name,
                project_id,
                project_domain_name,
                project_domain_id,
                ..
            } => format!(
                "password|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
                self.auth_url,
                username,
                user_id,
                user_domain_name,
                user_domain_id,
                project_name,
                project_id,
                project_domain_name,
                project_domain_id
            ),
            Credentials::ApplicationCredential {
                id,
                name,
                username,
                user_id,
                ..
            } => {
                format!(
                    "appcred|{}|{:?}|{:?}|{:?}|{:?}",
                    self.auth_url, id, name, username, user_id
                )
            }
        }
    }
}

/// The environment, as a seam (tests pass their own).
pub trait Env {
    /// A variable, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

fn search_path(env: &dyn Env, file: &str) -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from(file)];
    if let Some(home) = env.var("HOME") {
        v.push(Path::new(&home).join(".config/openstack").join(file));
    }
    v.push(Path::new("/etc/openstack").join(file));
    v
}

fn read_yaml(path: &Path) -> Result<Value, UsageError> {
    let text = crate::files::read_text(path, crate::files::CONFIG_MAX)
        .map_err(|e| UsageError::new(format!("{}: {e}", path.display())))?;
    serde_saphyr::from_str::<Value>(&text)
        .map_err(|e| UsageError::new(format!("{}: {}", path.display(), yaml_words(&e))))
}

/// A YAML error in one line, in words an operator can act on.
pub fn yaml_words(e: &serde_saphyr::Error) -> String {
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("invalid YAML").trim();
    if first.contains("multiple YAML documents") {
        // The library names its own function; say what the file holds.
        let at = first.split(": multiple").next().unwrap_or("");
        let at = at.strip_prefix("error: ").unwrap_or(at);
        return format!("{at}: a second YAML document (after ---); the file must hold one");
    }
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// Merge `over` into `base`, deeply (secure.yaml over clouds.yaml).
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Find and read the cloud named `name` (clouds.yaml + secure.yaml).
pub fn from_clouds_yaml(name: &str, env: &dyn Env) -> Result<Cloud, UsageError> {
    let candidates = match env.var("OS_CLIENT_CONFIG_FILE") {
        Some(f) => vec![PathBuf::from(f)],
        None => search_path(env, "clouds.yaml"),
    };
    let Some(path) = candidates.iter().find(|p| p.exists()) else {
        return Err(UsageError::new(format!(
            "--os-cloud {name:?}: no clouds.yaml in {}",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let mut doc = read_yaml(path)?;
    let secure = match env.var("OS_CLIENT_SECURE_FILE") {
        Some(f) => vec![PathBuf::from(f)],
        None => search_path(env, "secure.yaml"),
    };
    if let Some(s) = secure.iter().find(|p| p.is_file()) {
        merge(&mut doc, &read_yaml(s)?);
    }
    let cloud = doc.get("clouds").and_then(|c| c.get(name)).ok_or_else(|| {
        UsageError::new(format!(
            "--os-cloud {name:?}: no such cloud in {}",
            path.display()
        ))
    })?;
    let auth = cloud.get("auth").cloned().unwrap_or(Value::Null);
    let at = |k: &str| text(&auth, k);
    let auth_type = text(cloud, "auth_type").unwrap_or_else(|| {
        if at("application_credential_secret").is_some() {
            "v3applicationcredential".into()
        } else {
            "password".into()
        }
    });
    let where_ = format!("{}: cloud {name:?}", path.display());
    let credentials = credentials(&auth_type, &at, &where_)?;
    let auth_url = at("auth_url")
        .ok_or_else(|| UsageError::new(format!("{where_}: auth.auth_url is missing")))?;
    let verify = cloud
        .get("verify")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    Ok(Cloud {
        source: format!("cloud {name:?}"),
        auth_url,
        credentials,
        region: text(cloud, "region_name"),
        interface: text(cloud, "interface").unwrap_or_else(|| "public".into()),
        cacert: text(cloud, "cacert").map(PathBuf::from),
        insecure: !verify,
        cert: text(cloud, "cert").map(PathBuf::from),
        key: text(cloud, "key").map(PathBuf::from),
    })
}

fn credentials(
    auth_type: &str,
    at: &dyn Fn(&str) -> Option<String>,
    where_: &str,
) -> Result<Credentials, UsageError> {
    match auth_type {
        "password" | "v3password" => {
            let password = at("password").ok_or_else(|| {
                UsageError::new(format!(
                    "{where_}: no password (auth.password, secure.yaml or OS_PASSWORD)"
                ))
            })?;
            if at("username").is_none() && at("user_id").is_none() {
                return Err(UsageError::new(format!("{where_}: no username or user_id")));
            }
            Ok(Credentials::Password {
                username: at("username"),
                user_id: at("user_id"),
                password: Secret::new(password),
                user_domain_name: at("user_domain_name").or_else(|| at("domain_name")),
                user_domain_id: at("user_domain_id").or_else(|| at("domain_id")),
                project_name: at("project_name").or_else(|| at("tenant_name")),
                project_id: at("project_id").or_else(|| at("tenant_id")),
                project_domain_name: at("project_domain_name").or_else(|| at("domain_name")),
                project_domain_id: at("project_domain_id").or_else(|| at("domain_id")),
            })
        }
        "v3applicationcredential" | "application_credential" => {
            let secret = at("application_credential_secret").ok_or_else(|| {
                UsageError::new(format!("{where_}: no application_credential_secret"))
            })?;
            let id = at("application_credential_id");
            let name = at("application_credential_name");
            if id.is_none() && name.is_none() {
                return Err(UsageError::new(format!(
                    "{where_}: an application credential needs its id or its name"
                )));
            }
            if id.is_none() && at("username").is_none() && at("user_id").is_none() {
                return Err(UsageError::new(format!(
                    "{where_}: an application credential by name needs username or user_id"
                )));
            }
            Ok(Credentials::ApplicationCredential {
                id,
                name,
                username: at("username"),
                user_id: at("user_id"),
                user_domain_name: at("user_domain_name"),
                user_domain_id: at("user_domain_id"),
                secret: Secret::new(secret),
            })
        }
        other => Err(UsageError::new(format!(
            "{where_}: auth_type {other:?} is not supported (password, v3applicationcredential)"
        ))),
    }
}

/// The cloud from `OS_*` variables.
pub fn from_env(env: &dyn Env) -> Result<Cloud, UsageError> {
    let auth_url = env
        .var("OS_AUTH_URL")
        .ok_or_else(|| UsageError::new("no cloud: give --os-cloud (or OS_CLOUD) or set OS_AUTH_URL and the other OS_* variables"))?;
    let at = |k: &str| env.var(&format!("OS_{}", k.to_ascii_uppercase()));
    let auth_type = env.var("OS_AUTH_TYPE").unwrap_or_else(|| {
        if at("application_credential_secret").is_some() {
            "v3applicationcredential".into()
        } else {
            "password".into()
        }
    });
    let credentials = credentials(&auth_type, &at, "OS_* environment")?;
    Ok(Cloud {
        source: "OS_* environment".into(),
        auth_url,
        credentials,
        region: env.var("OS_REGION_NAME"),
        interface: env.var("OS_INTERFACE").unwrap_or_else(|| "public".into()),
        cacert: env.var("OS_CACERT").map(PathBuf::from),
        insecure: env
            .var("OS_INSECURE")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
        cert: env.var("OS_CERT").map(PathBuf::from),
        key: env.var("OS_KEY").map(PathBuf::from),
    })
}

/// The cloud to use: `--os-cloud`, else `OS_CLOUD`, else the `OS_*` variables.
pub fn resolve(os_cloud: Option<&str>, env: &dyn Env) -> Result<Cloud, UsageError> {
    match os_cloud.map(str::to_string).or_else(|| env.var("OS_CLOUD")) {
        Some(name) => from_clouds_yaml(&name, env),
        None => from_env(env),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, String>);
    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    #[test]
    fn clouds_yaml_with_anchors_merge_keys_and_secure_yaml() {
        let dir = std::env::temp_dir().join(format!("skyprobe-clouds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let clouds = dir.join("clouds.yaml");
        std::fs::write(
            &clouds,
            "common: &common\n  region_name: RegionOne\n  interface: internal\n  verify: no\nclouds:\n  prod:\n    <<: *common\n    auth:\n      auth_url: http://127.0.0.1:5000/v3\n      username: admin\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n  app:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: http://127.0.0.1:5000\n      application_credential_id: abc\n      application_credential_secret: s3cret\n",
        )
        .expect("write");
        let secure = dir.join("secure.yaml");
        std::fs::write(
            &secure,
            "clouds:\n  prod:\n    auth:\n      password: hunter2\n",
        )
        .expect("write");
        let env = MapEnv(HashMap::from([
            ("OS_CLIENT_CONFIG_FILE", clouds.display().to_string()),
            ("OS_CLIENT_SECURE_FILE", secure.display().to_string()),
        ]));
        let c = resolve(Some("prod"), &env).expect("resolves");
        assert_eq!(c.region.as_deref(), Some("RegionOne"));
        assert_eq!(c.interface, "internal");
        assert!(c.insecure, "verify: no is a YAML 1.1 boolean");
        match &c.credentials {
            Credentials::Password {
                password, username, ..
            } => {
                assert_eq!(password.expose(), "hunter2");
                assert_eq!(username.as_deref(), Some("admin"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "Debug never shows a secret"
        );
        let a = resolve(Some("app"), &env).expect("resolves");
        assert!(matches!(
            a.credentials,
            Credentials::ApplicationCredential { .. }
        ));
        let e = resolve(Some("nope"), &env).expect_err("missing");
        assert!(e.0.contains("no such cloud"), "{}", e.0);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn os_environment() {
        let env = MapEnv(HashMap::from([
            ("OS_AUTH_URL", "http://127.0.0.1:5000/v3".to_string()),
            ("OS_USERNAME", "demo".to_string()),
            ("OS_PASSWORD", "pw".to_string()),
            ("OS_PROJECT_NAME", "demo".to_string()),
            ("OS_USER_DOMAIN_NAME", "Default".to_string()),
            ("OS_PROJECT_DOMAIN_NAME", "Default".to_string()),
            ("OS_REGION_NAME", "RegionOne".to_string()),
        ]));
        let c = resolve(None, &env).expect("resolves");
        assert_eq!(c.source, "OS_* environment");
        assert_eq!(c.region.as_deref(), Some("RegionOne"));
        let none = MapEnv(HashMap::new());
        assert!(resolve(None, &none)
            .expect_err("nothing")
            .0
            .contains("OS_AUTH_URL"));
    }
}
