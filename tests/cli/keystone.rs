//! probe-http against a real Keystone started by scripts/keystone.sh
//! (scripts/test.sh starts it and sets SKYPROBE_KEYSTONE_ENV). Without it
//! these tests say they are skipped, unless SKYPROBE_REQUIRE_KEYSTONE=1
//! (CI), where its absence is a failure.

use std::collections::HashMap;
use std::sync::Mutex;

use skyprobe::report::Status;

use crate::common::*;

/// One test at a time: they count requests in Keystone's log.
pub(crate) static KEYSTONE: Mutex<()> = Mutex::new(());

pub(crate) struct Ks {
    vars: HashMap<String, String>,
}

impl Ks {
    pub(crate) fn get() -> Option<Ks> {
        let vars = env_file(
            "SKYPROBE_KEYSTONE_ENV",
            "SKYPROBE_REQUIRE_KEYSTONE",
            "Keystone",
            "scripts/keystone.sh start DIR",
        )?;
        Some(Ks { vars })
    }

    pub(crate) fn var(&self, k: &str) -> &str {
        self.vars
            .get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{k} in the keystone env"))
    }

    fn token_requests(&self) -> usize {
        std::fs::read_to_string(self.var("KEYSTONE_LOG"))
            .unwrap_or_default()
            .matches("POST /v3/auth/tokens")
            .count()
    }

    pub(crate) fn password_env<'a>(
        &'a self,
        cache: &'a str,
        password: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("OS_AUTH_URL", self.var("KEYSTONE_URL")),
            ("OS_USERNAME", "demo"),
            ("OS_PASSWORD", password),
            ("OS_PROJECT_NAME", "demo"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_PROJECT_DOMAIN_NAME", "Default"),
            ("SKYPROBE_CACHE_DIR", cache),
        ]
    }
}

fn no_secret(run: &Run, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !run.stdout.contains(s) && !run.stderr.contains(s),
            "a secret leaked: {}{}",
            run.stdout,
            run.stderr
        );
    }
}

#[test]
fn password_auth_finds_the_endpoint_and_caches_the_token() {
    let _one = KEYSTONE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(ks) = Ks::get() else { return };
    let cache = TempDir::new("ks-cache");
    let cache_dir = cache.0.join("c").to_string_lossy().into_owned();
    let env = ks.password_env(&cache_dir, ks.var("KEYSTONE_DEMO_PASSWORD"));
    let before = ks.token_requests();
    let first = run_clean(PROBE_HTTP, &["--os-service", "identity", "-vv"], &env);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let r = first.record();
    assert_eq!(r.target, ks.var("KEYSTONE_URL"));
    assert!(r.trace[0].step == "keystone" && r.trace[0].ok);
    assert_eq!(ks.token_requests(), before + 1);
    no_secret(&first, &[ks.var("KEYSTONE_DEMO_PASSWORD")]);

    // A second run within the token's life makes no request to Keystone.
    let second = run_clean(PROBE_HTTP, &["--os-service", "identity"], &env);
    assert_eq!(second.code, 0);
    assert!(second.record().trace[0]
        .detail
        .as_deref()
        .unwrap_or("")
        .starts_with("cached token"));
    assert_eq!(
        ks.token_requests(),
        before + 1,
        "the cached token was reused"
    );

    // The cache is readable by this user alone and holds no password.
    let files: Vec<_> = std::fs::read_dir(&cache_dir)
        .expect("cache dir")
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        files[0].metadata().expect("meta").permissions().mode() & 0o777,
        0o600
    );
    let cached = std::fs::read_to_string(files[0].path()).expect("read");
    assert!(!cached.contains(ks.var("KEYSTONE_DEMO_PASSWORD")));
}

#[test]
fn wrong_password_is_unknown_with_keystones_message_and_no_password() {
    // Was CRITICAL, as a Keystone that is down: credentials Keystone
    // refuses are the monitor's own configuration, and say nothing of
    // whether the service is up (UNKNOWN, as a plugin that cannot read its
    // own config); a Keystone that is down stays CRITICAL.
    let _one = KEYSTONE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(ks) = Ks::get() else { return };
    let cache = TempDir::new("ks-wrong");
    let cache_dir = cache.0.to_string_lossy().into_owned();
    let env = ks.password_env(&cache_dir, "not-the-Password-42");
    let run1 = run_clean(
        PROBE_HTTP,
        &["--os-service", "identity", "-v", "--format", "nagios"],
        &env,
    );
    assert_eq!(run1.code, 3, "{}{}", run1.stdout, run1.stderr);
    assert!(
        run1.stdout
            .starts_with("HTTP UNKNOWN - Keystone refused the credentials: HTTP 401"),
        "{}",
        run1.stdout
    );
    no_secret(&run1, &["not-the-Password-42"]);
}

#[test]
fn keystone_down_is_critical() {
    let _one = KEYSTONE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(ks) = Ks::get() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}/v3");
    let cache = TempDir::new("ks-down");
    let cache_dir = cache.0.to_string_lossy().into_owned();
    let mut env = ks.password_env(&cache_dir, ks.var("KEYSTONE_DEMO_PASSWORD"));
    env[0] = ("OS_AUTH_URL", url.as_str());
    let run1 = run_clean(PROBE_HTTP, &["--os-service", "identity", "-t", "3"], &env);
    assert_eq!(run1.code, 2);
    let r = run1.record();
    assert!(
        r.summary.starts_with(&format!(
            "cannot reach Keystone at {url}/auth/tokens: connection refused"
        )),
        "{}",
        r.summary
    );
}

/// Resumes stopped processes however the test ends, so a failed assertion
/// never leaves the shared Keystone frozen for the tests after it.
struct Resume(Vec<String>);

impl Drop for Resume {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", pid])
                .status();
        }
    }
}

#[test]
fn keystone_that_stops_answering_is_critical_within_the_deadline() {
    let _one = KEYSTONE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(ks) = Ks::get() else { return };
    // The real Keystone, frozen: uwsgi's master and its worker stopped, so
    // the port still accepts connections and nothing answers.
    let master = std::fs::read_to_string(ks.var("KEYSTONE_PID_FILE"))
        .expect("uwsgi pid file")
        .trim()
        .to_string();
    let children = std::process::Command::new("pgrep")
        .args(["-P", &master])
        .output()
        .expect("pgrep");
    let mut pids = vec![master];
    pids.extend(
        String::from_utf8_lossy(&children.stdout)
            .split_whitespace()
            .map(str::to_string),
    );
    let resume = Resume(pids.clone());
    for pid in &pids {
        let stopped = std::process::Command::new("kill")
            .args(["-STOP", pid])
            .status();
        assert!(stopped.is_ok_and(|s| s.success()), "kill -STOP {pid}");
    }
    let cache = TempDir::new("ks-frozen");
    let cache_dir = cache.0.join("c").to_string_lossy().into_owned();
    let env = ks.password_env(&cache_dir, ks.var("KEYSTONE_DEMO_PASSWORD"));
    let run = run_clean(PROBE_HTTP, &["--os-service", "identity", "-t", "3"], &env);
    drop(resume);
    // Keystone answers the queued request once resumed; wait for that (one
    // worker, first come first served) so it does not land in the request
    // count of the next test.
    let settled = crate::common::run(PROBE_HTTP, &[ks.var("KEYSTONE_URL"), "-t", "30"]);
    assert_eq!(settled.code, 0, "Keystone is back: {}", settled.stdout);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let r = run.record();
    // The token request gives up just before -t, so the record names
    // Keystone rather than the deadline's backstop's "timed out after".
    assert!(
        r.summary.starts_with("cannot reach Keystone at") && r.summary.ends_with("timed out"),
        "{}",
        r.summary
    );
    no_secret(&run, &[ks.var("KEYSTONE_DEMO_PASSWORD")]);
}

#[test]
fn application_credential_from_clouds_yaml_with_anchors_and_secure_yaml() {
    let _one = KEYSTONE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(ks) = Ks::get() else { return };
    let dir = TempDir::new("ks-clouds");
    let clouds = dir.write(
        "clouds.yaml",
        &format!(
            "base: &base\n  region_name: RegionOne\n  interface: public\n  identity_api_version: 3\n  verify: yes\nclouds:\n  test:\n    <<: *base\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {}\n      application_credential_id: {}\n",
            ks.var("KEYSTONE_URL"),
            ks.var("KEYSTONE_APPCRED_ID")
        ),
    );
    let secure = dir.write(
        "secure.yaml",
        &format!(
            "clouds:\n  test:\n    auth:\n      application_credential_secret: {}\n",
            ks.var("KEYSTONE_APPCRED_SECRET")
        ),
    );
    let cache = dir.0.join("cache").to_string_lossy().into_owned();
    let env = [
        ("OS_CLIENT_CONFIG_FILE", clouds.as_str()),
        ("OS_CLIENT_SECURE_FILE", secure.as_str()),
        ("SKYPROBE_CACHE_DIR", cache.as_str()),
    ];
    let run1 = run_clean(
        PROBE_HTTP,
        &["--os-cloud", "test", "--os-service", "identity", "-vv"],
        &env,
    );
    assert_eq!(run1.code, 0, "{}{}", run1.stdout, run1.stderr);
    no_secret(&run1, &[ks.var("KEYSTONE_APPCRED_SECRET")]);
    let sweep = run_clean(
        PROBE_HTTP,
        &[
            "--os-cloud",
            "test",
            "--os-endpoints",
            "--os-interface",
            "all",
        ],
        &env,
    );
    assert_eq!(sweep.code, 0, "{}", sweep.stdout);
    let records = sweep.records();
    assert_eq!(
        records.len(),
        3,
        "public, internal and admin identity endpoints"
    );
    assert!(records.iter().all(|r| r.status == Status::Ok
        && r.labels.get("service_type").map(String::as_str) == Some("identity")));
}

#[test]
fn a_revoked_cached_token_is_refreshed_once_on_401() {
    let _one = KEYSTONE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(ks) = Ks::get() else { return };
    let cache = TempDir::new("ks-401");
    let cache_dir = cache.0.join("c").to_string_lossy().into_owned();
    let env = ks.password_env(&cache_dir, ks.var("KEYSTONE_DEMO_PASSWORD"));
    let url = format!("{}/auth/projects", ks.var("KEYSTONE_URL"));
    let first = run_clean(PROBE_HTTP, &["--auth", "keystone", &url, "-e", "200"], &env);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    // Spoil the cached token, as a revocation or key rotation would.
    let file = std::fs::read_dir(&cache_dir)
        .expect("cache")
        .flatten()
        .next()
        .expect("a cache file")
        .path();
    let mut cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    cached["token"] = serde_json::json!("gAAAAAB-not-a-valid-token");
    std::fs::write(&file, cached.to_string()).expect("write");
    let before = ks.token_requests();
    let again = run_clean(PROBE_HTTP, &["--auth", "keystone", &url, "-e", "200"], &env);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    let r = again.record();
    assert!(r.trace.iter().any(|s| s
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("401 with the cached token")));
    assert_eq!(ks.token_requests(), before + 1);
}

#[test]
fn many_targets_behind_one_cloud_ask_keystone_once() {
    let _one = KEYSTONE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(ks) = Ks::get() else { return };
    let dir = TempDir::new("ks-fleet");
    let url = format!("{}/auth/projects", ks.var("KEYSTONE_URL"));
    let mut text =
        String::from("[defaults]\nauth = \"keystone\"\nno-token-cache = true\nexpect = \"200\"\n");
    for i in 0..6 {
        text.push_str(&format!("[[target]]\nname = \"p{i}\"\nurl = \"{url}\"\n"));
    }
    let file = dir.write("t.toml", &text);
    let cache = dir.0.to_string_lossy().into_owned();
    let env = ks.password_env(&cache, ks.var("KEYSTONE_DEMO_PASSWORD"));
    let before = ks.token_requests();
    let run1 = run_clean(
        PROBE_HTTP,
        &["--targets", &file, "--concurrency", "6"],
        &env,
    );
    assert_eq!(run1.code, 0, "{}{}", run1.stdout, run1.stderr);
    assert_eq!(run1.records().len(), 6);
    assert_eq!(
        ks.token_requests(),
        before + 1,
        "one token for six targets, without the file cache"
    );
}
