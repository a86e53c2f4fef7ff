//! OpenStack clients against stand-ins where the real service cannot be
//! made to show the case: a Keystone whose catalog points at HTTPS
//! endpoints behind a CA given only in clouds.yaml.

use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    for (password, code) in [("right-pw", 0), ("right-pw", 0), ("wrong-pw", 3)] {
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
    assert_eq!(run.code, 3, "a refused login is UNKNOWN: {}", run.stdout);
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

/// Environment for the library's own config lookup in a test (the
/// process's environment is shared by the tests running at once).
struct MapEnv(Vec<(&'static str, String)>);

impl skyprobe::openstack::config::Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

fn session_for(
    clouds: &str,
    cache: Option<std::path::PathBuf>,
) -> skyprobe::openstack::client::Session {
    use skyprobe::openstack::{client::Session, config, keystone::Keystone};
    let env = MapEnv(vec![("OS_CLIENT_CONFIG_FILE", clouds.to_string())]);
    let cloud = config::resolve(Some("test"), &env).expect("cloud");
    Session::new(Keystone::new(cloud, cache), "public".into(), None, vec![]).expect("session")
}

#[test]
fn the_service_client_speaks_nova_neutron_masakari_and_placement_behind_the_clouds_ca() {
    use skyprobe::openstack::{
        masakari::Masakari, neutron::Neutron, nova::Nova, placement::Placement,
    };
    let certs = ca_signed((2080, 1, 1));
    let (client_cert, client_key) = certs.client.clone().expect("a client certificate");
    let got = Arc::new(Mutex::new(Vec::<Request>::new()));
    let keep = Arc::clone(&got);
    let api = https_server_with(
        &certs.chain_pem,
        &certs.key_pem,
        Arc::new(move |req: &Request, s: &mut dyn Stream| {
            keep.lock().expect("lock").push(req.clone());
            let json = |s: &mut dyn Stream, code: u16, v: serde_json::Value| {
                respond(
                    s,
                    code,
                    &[("Content-Type", "application/json")],
                    v.to_string().as_bytes(),
                )
            };
            let p = req.path.as_str();
            match (req.method.as_str(), p) {
                ("GET", "/v2.1/os-services?binary=nova-compute&host=compute1") => json(
                    s,
                    200,
                    serde_json::json!({"services": [
                    {"id": "8e8c5a7e-5d7d-4b5e-9d0e-2a3f4b5c6d7e", "binary": "nova-compute", "host": "compute1", "zone": "nova",
                     "status": "enabled", "state": "down", "updated_at": "2026-11-20T10:00:05.000000", "disabled_reason": null, "forced_down": false}]}),
                ),
                ("PUT", "/v2.1/os-services/8e8c5a7e-5d7d-4b5e-9d0e-2a3f4b5c6d7e") => json(
                    s,
                    200,
                    serde_json::json!({"service":
                    {"id": "8e8c5a7e-5d7d-4b5e-9d0e-2a3f4b5c6d7e", "binary": "nova-compute", "host": "compute1",
                     "status": "enabled", "state": "down", "forced_down": true}}),
                ),
                ("GET", "/v2.1/servers/detail?host=compute1&all_tenants=1&limit=1000") => json(
                    s,
                    200,
                    serde_json::json!({
                    "servers": [{"id": "a1", "name": "vm1", "status": "ACTIVE", "OS-EXT-SRV-ATTR:host": "compute1"}],
                    "servers_links": [{"rel": "next", "href": "https://nova/v2.1/servers/detail?marker=a1"}]}),
                ),
                (
                    "GET",
                    "/v2.1/servers/detail?host=compute1&all_tenants=1&limit=1000&marker=a1",
                ) => json(
                    s,
                    200,
                    serde_json::json!({
                    "servers": [{"id": "b2", "name": "vm2", "status": "SHUTOFF", "OS-EXT-SRV-ATTR:host": "compute1"}]}),
                ),
                ("POST", "/v2.1/servers/a1/action") => json(
                    s,
                    400,
                    serde_json::json!({"badRequest":
                    {"code": 400, "message": "Compute service of compute1 is still in use."}}),
                ),
                ("GET", "/v2.1/os-migrations?instance_uuid=a1&migration_type=evacuation") => json(
                    s,
                    200,
                    serde_json::json!({"migrations": [
                    {"id": 3, "uuid": "42341d4b", "instance_uuid": "a1", "status": "done", "migration_type": "evacuation",
                     "source_compute": "compute1", "dest_compute": "compute2"}]}),
                ),
                ("GET", "/v2.0/agents?host=compute1") => json(
                    s,
                    200,
                    serde_json::json!({"agents": [
                    {"id": "x", "host": "compute1", "binary": "neutron-metadata-agent", "alive": false,
                     "admin_state_up": true, "heartbeat_timestamp": "2026-11-20 10:00:05"}]}),
                ),
                ("GET", "/v1/segments") => json(
                    s,
                    200,
                    serde_json::json!({"segments": [
                    {"uuid": "s1", "name": "segment1", "recovery_method": "auto", "service_type": "COMPUTE"}]}),
                ),
                ("GET", "/placement/resource_providers/rp1/usages") => json(
                    s,
                    200,
                    serde_json::json!({
                    "resource_provider_generation": 3, "usages": {"VCPU": 2, "MEMORY_MB": 1024}}),
                ),
                _ => respond(s, 404, &[], b"no such thing here"),
            }
        }),
        rustls::DEFAULT_VERSIONS,
        Some(&certs.ca_pem),
    );
    let (ks, asked) = keystone(vec![
        ("compute".into(), api.https_url("/v2.1")),
        ("network".into(), api.https_url("/")),
        ("instance-ha".into(), api.https_url("/v1")),
        ("placement".into(), api.https_url("/placement")),
    ]);
    let dir = TempDir::new("client");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let cert = dir.write("client.pem", &client_cert);
    let key = dir.write("client.key", &client_key);
    let clouds = clouds_yaml(
        &dir,
        &ks,
        &format!("      password: demo-pw\n    cacert: {ca}\n    cert: {cert}\n    key: {key}\n"),
    );
    let session = session_for(&clouds, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut trace = Vec::new();

    let nova = Nova(&session);
    let services = nova
        .services("nova-compute", Some("compute1"), deadline, &mut trace)
        .expect("services");
    assert_eq!(services[0].state, "down");
    let forced = nova
        .force_down(&services[0].id, true, deadline, &mut trace)
        .expect("force-down");
    assert!(forced.forced_down);
    let servers = nova
        .servers_on_host("compute1", deadline, &mut trace)
        .expect("servers");
    assert_eq!(
        servers.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["a1", "b2"],
        "both pages"
    );
    let refused = nova
        .action(
            "a1",
            &serde_json::json!({"evacuate": {}}),
            deadline,
            &mut trace,
        )
        .expect("an answer");
    assert_eq!(refused.status, 400);
    let migrations = nova
        .migrations("a1", Some("evacuation"), deadline, &mut trace)
        .expect("migrations");
    assert_eq!(migrations[0].dest_compute.as_deref(), Some("compute2"));
    let agents = Neutron(&session)
        .agents(Some("compute1"), deadline, &mut trace)
        .expect("agents");
    assert!(!agents[0].alive && agents[0].heartbeat().is_some());
    let segments = Masakari(&session)
        .segments(deadline, &mut trace)
        .expect("segments");
    assert_eq!(segments[0].name, "segment1");
    let usages = Placement(&session)
        .usages("rp1", deadline, &mut trace)
        .expect("usages");
    assert_eq!(usages["VCPU"], 2);

    // A path the service does not have: its answer, typed.
    let missing = nova.server("nope", deadline, &mut trace).expect_err("404");
    assert_eq!(missing.http_status(), Some(404));
    assert!(
        missing.to_string().contains("no such thing here"),
        "{missing}"
    );

    assert_eq!(*asked.lock().expect("lock"), 1, "one token for every call");
    let requests = got.lock().expect("lock").clone();
    for r in &requests {
        assert_eq!(
            r.header("X-Auth-Token"),
            Some("gAAAA-a-test-token-0123456789"),
            "{}",
            r.path
        );
    }
    let header = |path: &str, name: &str| {
        requests
            .iter()
            .find(|r| r.path.starts_with(path))
            .and_then(|r| r.header(name).map(str::to_string))
    };
    assert_eq!(
        header("/v2.1/os-services", "OpenStack-API-Version").as_deref(),
        Some("compute 2.53")
    );
    assert_eq!(
        header("/v2.1/os-services", "X-OpenStack-Nova-API-Version").as_deref(),
        Some("2.53")
    );
    assert_eq!(
        header("/v2.1/os-migrations", "OpenStack-API-Version").as_deref(),
        Some("compute 2.59")
    );
    assert_eq!(
        header("/v1/segments", "OpenStack-API-Version").as_deref(),
        Some("instance-ha 1.0")
    );
    assert_eq!(
        header("/v2.0/agents", "OpenStack-API-Version"),
        None,
        "Neutron has no microversions"
    );
    let put = requests
        .iter()
        .find(|r| r.method == "PUT")
        .expect("the PUT");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&put.body).expect("json"),
        serde_json::json!({"forced_down": true})
    );
    // Every step is in the trace, with no token in it.
    let traced = serde_json::to_string(&trace).expect("json");
    assert!(
        traced.contains("GET /os-migrations?instance_uuid=a1"),
        "{traced}"
    );
    assert!(!traced.contains("gAAAA"), "{traced}");
}

#[test]
fn the_service_client_refreshes_a_token_once_on_401_and_says_unknown_for_a_refused_login() {
    use skyprobe::openstack::nova::Nova;
    use skyprobe::report::Status;
    let answered = Arc::new(Mutex::new(0));
    let count = Arc::clone(&answered);
    let api = http_server(Arc::new(move |_: &Request, s: &mut dyn Stream| {
        *count.lock().expect("lock") += 1;
        respond(s, 401, &[], b"token revoked")
    }));
    let (ks, asked) = keystone_with(
        Arc::new(Mutex::new(vec![("compute".into(), api.url("/v2.1"))])),
        Some("right"),
    );
    let dir = TempDir::new("client-401");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut trace = Vec::new();
    let clouds = clouds_yaml(&dir, &ks, "      password: right\n");
    let e = Nova(&session_for(&clouds, None))
        .hypervisors(deadline, &mut trace)
        .expect_err("401 twice");
    assert_eq!(*answered.lock().expect("lock"), 2, "one retry, not more");
    assert_eq!(*asked.lock().expect("lock"), 2, "one fresh token");
    assert_eq!(e.http_status(), Some(401));
    assert_eq!(
        e.status(),
        Status::Unknown,
        "a service refusing our token is not the service down"
    );

    let wrong = clouds_yaml(&dir, &ks, "      password: wrong\n");
    let e = Nova(&session_for(&wrong, None))
        .hypervisors(deadline, &mut trace)
        .expect_err("refused");
    assert_eq!(e.status(), Status::Unknown, "{e}");
    assert!(
        e.to_string()
            .starts_with("Keystone refused the credentials: HTTP 401"),
        "{e}"
    );

    // A Keystone that is not there is the cloud down: CRITICAL.
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let down = dir.write(
        "down.yaml",
        &format!("clouds:\n  test:\n    auth:\n      auth_url: http://{gone}/v3\n      username: demo\n      password: x\n      project_name: demo\n"),
    );
    let e = Nova(&session_for(&down, None))
        .hypervisors(deadline, &mut trace)
        .expect_err("down");
    assert_eq!(e.status(), Status::Critical, "{e}");

    // A cacert that cannot be read is the monitor's configuration: no
    // silent fall-back to the system's roots.
    use skyprobe::openstack::{client::Session, config, keystone::Keystone};
    let broken = clouds_yaml(
        &dir,
        &ks,
        "      password: right\n    cacert: /nonexistent/ca.pem\n",
    );
    let env = MapEnv(vec![("OS_CLIENT_CONFIG_FILE", broken)]);
    let cloud = config::resolve(Some("test"), &env).expect("cloud");
    let e =
        Session::new(Keystone::new(cloud, None), "public".into(), None, vec![]).expect_err("no CA");
    assert_eq!(e.status(), Status::Unknown);
    assert!(e.to_string().contains("cacert /nonexistent/ca.pem"), "{e}");
}
