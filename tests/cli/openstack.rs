//! OpenStack clients against stand-ins where the real service cannot be
//! made to show the case: a Keystone whose catalog points at HTTPS
//! endpoints behind a CA given only in clouds.yaml.

use std::sync::{Arc, Mutex};

use crate::common::*;
use crate::notify::{events, line, notify_env};

/// A Keystone stand-in that issues a token whose catalog lists the
/// (type, URL) pairs in `services` as they are at the time of asking, to a
/// request carrying `password` (any password when `None`); it counts the
/// token requests.
fn keystone_with(
    services: Arc<Mutex<Vec<(String, String)>>>,
    password: Option<&'static str>,
) -> (Server, Arc<Mutex<usize>>) {
    let asked = Arc::new(Mutex::new(0));
    let count = Arc::clone(&asked);
    let srv = http_server(Arc::new(move |req: &Request, s: &mut dyn Stream| {
        if req.method != "POST" || !req.path.ends_with("/auth/tokens") {
            return respond(s, 404, &[], b"");
        }
        *count.lock().expect("lock") += 1;
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let given = body["auth"]["identity"]["password"]["user"]["password"].as_str();
        if password.is_some_and(|p| given != Some(p)) {
            let e = serde_json::json!({"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}});
            return respond(
                s,
                401,
                &[("Content-Type", "application/json")],
                e.to_string().as_bytes(),
            );
        }
        let catalog: Vec<serde_json::Value> = services
            .lock()
            .expect("lock")
            .iter()
            .map(|(kind, url)| {
                serde_json::json!({"type": kind, "name": kind, "endpoints": [
                    {"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": url}]})
            })
            .collect();
        let body = serde_json::json!({"token": {"expires_at": "2099-01-01T00:00:00.000000Z", "catalog": catalog}});
        respond(
            s,
            201,
            &[
                ("Content-Type", "application/json"),
                ("X-Subject-Token", "gAAAA-a-test-token-0123456789"),
            ],
            body.to_string().as_bytes(),
        )
    }));
    (srv, asked)
}

fn keystone(services: Vec<(String, String)>) -> (Server, Arc<Mutex<usize>>) {
    keystone_with(Arc::new(Mutex::new(services)), None)
}

/// clouds.yaml for cloud `test` at `keystone`; `extra` holds more lines of
/// the cloud (`password` among them when it matters), indented four.
fn clouds_yaml(dir: &TempDir, keystone: &Server, extra: &str) -> String {
    dir.write(
        "clouds.yaml",
        &format!(
            "clouds:\n  test:\n    auth:\n      auth_url: {}\n      username: demo\n      project_name: demo\n      user_domain_name: Default\n      project_domain_name: Default\n{extra}",
            keystone.url("/v3")
        ),
    )
}

#[test]
fn masakari_and_the_catalog_probe_trust_the_clouds_cacert() {
    // Was: only Keystone's client honoured clouds.yaml's cacert, so the
    // Masakari sink failed against an instance-ha endpoint behind an
    // internal CA (and so did probe-http's catalog probe).
    let certs = ca_signed((2080, 1, 1));
    let got = Arc::new(Mutex::new(Vec::<Request>::new()));
    let keep = Arc::clone(&got);
    let api = https_server(
        &certs.chain_pem,
        &certs.key_pem,
        Arc::new(move |req: &Request, s: &mut dyn Stream| {
            keep.lock().expect("lock").push(req.clone());
            if req.path == "/v1/notifications" {
                respond(s, 202, &[("Content-Type", "application/json")], b"{}")
            } else {
                respond(s, 200, &[], b"compute is up")
            }
        }),
    );
    let (ks, _) = keystone(vec![
        ("instance-ha".into(), api.https_url("/v1")),
        ("compute".into(), api.https_url("/v2.1")),
    ]);
    let dir = TempDir::new("cacert");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let clouds = clouds_yaml(
        &dir,
        &ks,
        &format!("      password: demo-pw\n    cacert: {ca}\n"),
    );
    let cache = dir.0.join("cache").to_string_lossy().into_owned();
    let env = [
        ("OS_CLIENT_CONFIG_FILE", clouds.as_str()),
        ("SKYPROBE_CACHE_DIR", cache.as_str()),
    ];
    masakari_delivers(&env);
    assert!(got
        .lock()
        .expect("lock")
        .iter()
        .any(|r| r.path == "/v1/notifications"));

    let run = crate::common::run_env(
        PROBE_HTTP,
        &["--os-cloud", "test", "--os-service", "compute"],
        &env,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(got
        .lock()
        .expect("lock")
        .iter()
        .any(|r| r.path.starts_with("/v2.1")));
}

/// notify's Masakari sink, for cloud `test`, delivers one process failure.
fn masakari_delivers(env: &[(&str, &str)]) {
    let run = notify_env(
        &["--masakari", "--os-cloud", "test"],
        &line("watch-procs", "nova-compute", "critical"),
        env,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        events(&run.records(), "delivered").len(),
        1,
        "{}",
        run.stdout
    );
}

/// A plain loopback service answering 200.
fn service() -> Server {
    http_server(Arc::new(|_: &Request, s: &mut dyn Stream| {
        respond(s, 200, &[], b"up")
    }))
}

#[test]
fn a_changed_password_is_not_hidden_by_a_cached_token() {
    // Was: the token cache was keyed without the credentials, so a
    // clouds.yaml with a wrong password still reported OK for up to a day.
    let api = service();
    let (ks, asked) = keystone_with(
        Arc::new(Mutex::new(vec![("compute".into(), api.url("/"))])),
        Some("right-pw"),
    );
    let dir = TempDir::new("changed-password");
    let cache = dir.0.join("cache").to_string_lossy().into_owned();
    for (password, code) in [("right-pw", 0), ("right-pw", 0), ("wrong-pw", 2)] {
        let clouds = clouds_yaml(&dir, &ks, &format!("      password: {password}\n"));
        let run = crate::common::run_env(
            PROBE_HTTP,
            &["--os-cloud", "test", "--os-service", "compute"],
            &[
                ("OS_CLIENT_CONFIG_FILE", clouds.as_str()),
                ("SKYPROBE_CACHE_DIR", cache.as_str()),
            ],
        );
        assert_eq!(run.code, code, "{password}: {}", run.stdout);
    }
    assert_eq!(
        *asked.lock().expect("lock"),
        2,
        "cached once, then asked for the new password"
    );
}

#[test]
fn a_service_registered_after_the_token_was_cached_is_found() {
    // Was: the cached catalog hid services registered after the first run
    // until the token expired: --os-service was CRITICAL "(it has: ...)"
    // and the Masakari sink spooled every notification.
    let api = service();
    let services = Arc::new(Mutex::new(vec![("compute".to_string(), api.url("/"))]));
    let (ks, asked) = keystone_with(Arc::clone(&services), None);
    let dir = TempDir::new("late-service");
    let cache = dir.0.join("cache").to_string_lossy().into_owned();
    let clouds = clouds_yaml(&dir, &ks, "      password: pw\n");
    let env = [
        ("OS_CLIENT_CONFIG_FILE", clouds.as_str()),
        ("SKYPROBE_CACHE_DIR", cache.as_str()),
    ];
    let run = crate::common::run_env(
        PROBE_HTTP,
        &["--os-cloud", "test", "--os-service", "compute"],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    // Registered now; the cached token's catalog does not have them.
    services
        .lock()
        .expect("lock")
        .push(("placement".into(), api.url("/placement")));
    let run = crate::common::run_env(
        PROBE_HTTP,
        &["--os-cloud", "test", "--os-service", "placement"],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(*asked.lock().expect("lock"), 2);
    // Masakari registered later still gets its notification.
    services
        .lock()
        .expect("lock")
        .push(("instance-ha".into(), api.url("/v1")));
    masakari_delivers(&env);
    assert_eq!(*asked.lock().expect("lock"), 3);
    // The whole-catalog sweep sweeps the catalog as it is now.
    services
        .lock()
        .expect("lock")
        .push(("dns-late".into(), api.url("/dns")));
    let run = crate::common::run_env(PROBE_HTTP, &["--os-cloud", "test", "--os-endpoints"], &env);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.records().iter().any(|r| r.name.starts_with("dns-late")),
        "{}",
        run.stdout
    );
    assert_eq!(*asked.lock().expect("lock"), 4);
    // A service that is truly missing is still said, after one fresh token.
    let run = crate::common::run_env(
        PROBE_HTTP,
        &["--os-cloud", "test", "--os-service", "dns"],
        &env,
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.record().summary.contains("no dns endpoint"),
        "{}",
        run.stdout
    );
    assert_eq!(*asked.lock().expect("lock"), 5);
}

#[test]
fn os_service_keeps_the_path_and_failures_name_the_cloud() {
    // Was: --os-service TYPE -u PATH probed the endpoint's root (so -s
    // failed with "string not found"), and a record that failed before the
    // catalog lookup was named http://catalog.invalid/.
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let keep = Arc::clone(&got);
    let api = http_server(Arc::new(move |req: &Request, s: &mut dyn Stream| {
        keep.lock().expect("lock").push(req.path.clone());
        respond(s, 200, &[], b"the servers")
    }));
    let (ks, _) = keystone_with(
        Arc::new(Mutex::new(vec![("compute".into(), api.url("/v2.1/"))])),
        Some("pw"),
    );
    let dir = TempDir::new("os-path");
    let cache = dir.0.join("cache").to_string_lossy().into_owned();
    let clouds = clouds_yaml(&dir, &ks, "      password: pw\n");
    let env = [
        ("OS_CLIENT_CONFIG_FILE", clouds.as_str()),
        ("SKYPROBE_CACHE_DIR", cache.as_str()),
    ];
    let run = crate::common::run_env(
        PROBE_HTTP,
        &[
            "--os-cloud",
            "test",
            "--os-service",
            "compute",
            "-u",
            "/servers/detail?limit=1",
            "-s",
            "servers",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        got.lock().expect("lock").as_slice(),
        ["/v2.1/servers/detail?limit=1"]
    );

    let wrong = clouds_yaml(&dir, &ks, "      password: not-it\n");
    let run = crate::common::run_env(
        PROBE_HTTP,
        &["--os-cloud", "test", "--os-service", "compute"],
        &[
            ("OS_CLIENT_CONFIG_FILE", wrong.as_str()),
            ("SKYPROBE_CACHE_DIR", cache.as_str()),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    let r = run.record();
    assert_eq!(r.target, "compute of cloud \"test\" (public)");
    assert_eq!(r.name, r.target);
    assert!(!run.stdout.contains("catalog.invalid"), "{}", run.stdout);
}

#[test]
fn masakari_answering_401_gets_one_fresh_token() {
    // The 401 is read from the answer's status code, not from the text of
    // a message: one fresh token, then the notification goes through.
    let posts = Arc::new(Mutex::new(0));
    let count = Arc::clone(&posts);
    let api = http_server(Arc::new(move |_: &Request, s: &mut dyn Stream| {
        let mut n = count.lock().expect("lock");
        *n += 1;
        if *n == 1 {
            respond(s, 401, &[], b"token revoked")
        } else {
            respond(s, 202, &[("Content-Type", "application/json")], b"{}")
        }
    }));
    let (ks, asked) = keystone_with(
        Arc::new(Mutex::new(vec![("instance-ha".into(), api.url("/v1"))])),
        None,
    );
    let dir = TempDir::new("masakari-401");
    let cache = dir.0.join("cache").to_string_lossy().into_owned();
    let clouds = clouds_yaml(&dir, &ks, "      password: pw\n");
    masakari_delivers(&[
        ("OS_CLIENT_CONFIG_FILE", clouds.as_str()),
        ("SKYPROBE_CACHE_DIR", cache.as_str()),
    ]);
    assert_eq!(*posts.lock().expect("lock"), 2);
    assert_eq!(*asked.lock().expect("lock"), 2);
}
