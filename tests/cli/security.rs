//! The binaries tried as an attacker and a careless operator would: hostile
//! loopback servers, files that are not files, planted symbolic links,
//! overlapping runs, secrets a peer echoes back. Each test is named after
//! what broke.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use skyprobe::report::Status;

use crate::common::*;
use crate::notify::{events, line, notify, spool_files, Receiver, NOTIFY};

/// A loopback server that keeps every request it gets and answers 200.
fn recording_server() -> (Server, Arc<Mutex<Vec<Request>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&seen);
    let srv = http_server(Arc::new(move |req: &Request, s: &mut dyn Stream| {
        keep.lock().expect("lock").push(req.clone());
        respond(s, 200, &[], b"landed")
    }));
    (srv, seen)
}

/// A server that redirects every request to `to`.
fn redirector(to: String) -> (Server, Arc<Mutex<Vec<Request>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&seen);
    let srv = http_server(Arc::new(move |req: &Request, s: &mut dyn Stream| {
        keep.lock().expect("lock").push(req.clone());
        respond(s, 302, &[("Location", to.as_str())], b"")
    }));
    (srv, seen)
}

fn credential_headers(req: &Request) -> Vec<String> {
    req.headers
        .iter()
        .filter(|(k, _)| {
            ["authorization", "x-auth-token", "x-custom-secret", "cookie"]
                .contains(&k.to_ascii_lowercase().as_str())
        })
        .map(|(k, v)| format!("{k}: {v}"))
        .collect()
}

#[test]
fn credentials_are_not_sent_to_another_origin_on_a_redirect() {
    // Was: Basic auth, the bearer token and -k credential headers went
    // along to whatever host and port a redirect named.
    let (elsewhere, got) = recording_server();
    let dir = TempDir::new("redirect-auth");
    let bearer = dir.write("bearer", "tok-canary\n");
    let other_port = elsewhere.url("/landing");
    let other_name = format!("http://other.test:{}/landing", elsewhere.addr.port());
    for (to, extra) in [
        (other_port.clone(), vec![]),
        (
            other_name.clone(),
            vec!["--connect-to", "other.test:127.0.0.1"],
        ),
    ] {
        for auth in [
            vec!["-a", "user:pw-canary"],
            vec!["--bearer-file", bearer.as_str()],
        ] {
            got.lock().expect("lock").clear();
            let (origin, origin_got) = redirector(to.clone());
            let mut args = vec![origin.url("/start")];
            args.extend(
                [
                    "-f",
                    "follow",
                    "-k",
                    "X-Auth-Token: xat-canary",
                    "-k",
                    "X-Custom-Secret: custom-canary",
                    "--secret-header",
                    "x-custom-secret",
                    "-k",
                    "X-Plain: plain-value",
                ]
                .map(String::from),
            );
            args.extend(auth.iter().map(|s| s.to_string()));
            args.extend(extra.iter().map(|s| s.to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = crate::common::run(PROBE_HTTP, &args);
            assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
            let first = origin_got.lock().expect("lock")[0].clone();
            assert_eq!(
                credential_headers(&first).len(),
                3,
                "the origin itself gets them: {:?}",
                first.headers
            );
            let landed = got.lock().expect("lock")[0].clone();
            assert!(
                credential_headers(&landed).is_empty(),
                "sent to {to}: {:?}",
                landed.headers
            );
            assert_eq!(landed.header("x-plain"), Some("plain-value"));
            let r = run.record();
            let redirect = step(&r, "redirect").expect("a redirect step");
            assert!(
                redirect
                    .detail
                    .as_deref()
                    .is_some_and(|d| d.contains("credentials not sent")),
                "{redirect:?}"
            );
        }
    }
    // Named hosts keep them; so does a redirect within the origin.
    got.lock().expect("lock").clear();
    let (origin, _) = redirector(other_port);
    let run = crate::common::run(
        PROBE_HTTP,
        &[
            &origin.url("/start"),
            "-f",
            "follow",
            "-a",
            "user:pw",
            "--keep-auth-on-redirect",
            "127.0.0.1",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let landed = got.lock().expect("lock")[0].clone();
    assert!(
        landed.header("authorization").is_some(),
        "kept for a named host"
    );
}

#[test]
fn files_that_are_not_regular_files_are_refused_at_once() {
    // Was: --targets /dev/zero ignored -t and grew to 10.6 GB; a FIFO
    // blocked forever. Every file any binary reads is now checked.
    let dir = TempDir::new("not-a-file");
    let fifo = dir.0.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let fifo = fifo.to_string_lossy().into_owned();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (PROBE_HTTP, vec!["-t", "2", "--targets", "/dev/zero"]),
        (PROBE_HTTP, vec!["-t", "2", "--targets", &fifo]),
        (PROBE_HTTP, vec!["-t", "2", "--targets-csv", "/dev/zero"]),
        (
            PROBE_HTTP,
            vec!["-t", "2", "--targets-skypunch", "/dev/zero"],
        ),
        (
            PROBE_HTTP,
            vec!["http://127.0.0.1:9/", "--auth-file", &fifo],
        ),
        (
            PROBE_HTTP,
            vec!["http://127.0.0.1:9/", "--bearer-file", "/dev/zero"],
        ),
        (PROBE_HTTP, vec!["https://127.0.0.1:9/", "--ca-file", &fifo]),
        (
            PROBE_HTTP,
            vec!["http://127.0.0.1:9/", "--data", "@/dev/zero"],
        ),
        (
            crate::watch_procs::WATCH_PROCS,
            vec!["--config", "/dev/zero"],
        ),
        (NOTIFY, vec!["--config", &fifo, "--dry-run"]),
    ];
    for (bin, args) in cases {
        let run = crate::common::run(bin, &args);
        assert_eq!(run.code, 3, "{bin} {args:?}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "{bin} {args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("only a regular file is read"),
            "{bin} {args:?}: {}",
            run.stderr
        );
    }
    // clouds.yaml through OS_CLIENT_CONFIG_FILE, as the openstack client reads it.
    let run = crate::common::run_env(
        PROBE_HTTP,
        &["--os-cloud", "prod", "--os-service", "compute"],
        &[("OS_CLIENT_CONFIG_FILE", "/dev/zero")],
    );
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("only a regular file"), "{}", run.stderr);
}

#[test]
fn passwords_in_urls_never_reach_any_output() {
    // Was: an invalid URL with user:password@ was echoed whole on stderr
    // and in Nagios output, also from a targets file; userinfo in a
    // server's Location reached the trace and details.final_url.
    for format in ["jsonl", "nagios"] {
        let run = crate::common::run(
            PROBE_HTTP,
            &["http://user:pw-canary@bad host/", "--format", format],
        );
        assert_eq!(run.code, 3);
        assert!(!run.stdout.contains("pw-canary"), "{}", run.stdout);
        assert!(!run.stderr.contains("pw-canary"), "{}", run.stderr);
        assert!(run.stderr.contains("***@bad host"), "{}", run.stderr);
    }
    let dir = TempDir::new("url-password");
    let targets = dir.write(
        "t.toml",
        "[[target]]\nname = \"x\"\nurl = \"http://user:pw-canary@bad host/\"\n",
    );
    let run = crate::common::run(PROBE_HTTP, &["--targets", &targets]);
    assert_eq!(run.code, 3);
    assert!(!run.stderr.contains("pw-canary"), "{}", run.stderr);

    let (landing, _) = recording_server();
    let with_userinfo = format!(
        "http://user:pw-canary@{}/landing?token=tok-canary",
        landing.addr
    );
    let (origin, _) = redirector(with_userinfo);
    let run = crate::common::run(PROBE_HTTP, &[&origin.url("/"), "-f", "follow", "-vv"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for canary in ["pw-canary", "tok-canary"] {
        assert!(!run.stdout.contains(canary), "{}", run.stdout);
        assert!(!run.stderr.contains(canary), "{}", run.stderr);
    }
    let r = run.record();
    assert_eq!(
        r.details["final_url"],
        format!("http://{}/landing?token=***", landing.addr)
    );
    let (origin, _) = redirector(format!("http://user:pw-canary@{}/", landing.addr));
    let run = crate::common::run(PROBE_HTTP, &[&origin.url("/"), "-f", "critical", "-v"]);
    assert_eq!(run.code, 2);
    assert!(!run.stdout.contains("pw-canary") && !run.stderr.contains("pw-canary"));

    // notify: a webhook URL with userinfo, in summaries and -v.
    let rx = Receiver::new(200);
    let hook = rx.url().replace("http://", "http://u:pw-canary@");
    let run = notify(
        &["--webhook", &hook, "-vv"],
        &line("probe-http", "api", "critical"),
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        events(&run.records(), "delivered").len(),
        1,
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("pw-canary"), "{}", run.stdout);
    assert!(!run.stderr.contains("pw-canary"), "{}", run.stderr);
}

#[test]
fn links_planted_next_to_the_state_are_never_written_through() {
    // Was: a symlinked STATE.history.jsonl got notify's lines appended to
    // its target, STATE.lock created its target, STATE.spool took alert
    // files into the directory it pointed at.
    let dir = TempDir::new("planted-links");
    let victim = dir.write("victim", "precious\n");
    let elsewhere = dir.0.join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let rx = Receiver::new(500);
    let input = line("probe-http", "api", "critical");
    for (planted, points_to) in [
        ("n.json.history.jsonl", victim.clone()),
        (
            "n.json.lock",
            dir.0.join("created-by-lock").to_string_lossy().into_owned(),
        ),
        ("n.json.spool", elsewhere.to_string_lossy().into_owned()),
    ] {
        let state = dir.0.join("n.json");
        for made in ["n.json", "n.json.lock", "n.json.history.jsonl"] {
            let _ = std::fs::remove_file(dir.0.join(made));
        }
        let _ = std::fs::remove_dir_all(dir.0.join("n.json.spool"));
        let link = dir.0.join(planted);
        std::os::unix::fs::symlink(&points_to, &link).expect("symlink");
        let run = notify(
            &["--webhook", &rx.url(), "--state", &state.to_string_lossy()],
            &input,
        );
        assert!(
            run.stdout.contains("symbolic link") || run.stderr.contains("symbolic link"),
            "{planted}: {}{}",
            run.stdout,
            run.stderr
        );
        std::fs::remove_file(&link).expect("remove the link");
    }
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "precious\n"
    );
    assert!(!dir.0.join("created-by-lock").exists());
    assert_eq!(std::fs::read_dir(&elsewhere).expect("ls").count(), 0);

    // probe-http's lock too.
    let srv = http_server(Arc::new(|_: &Request, s: &mut dyn Stream| {
        respond(s, 200, &[], b"")
    }));
    let state = dir.0.join("h.json");
    std::os::unix::fs::symlink(dir.0.join("made-by-probe"), dir.0.join("h.json.lock"))
        .expect("symlink");
    let run = crate::common::run(
        PROBE_HTTP,
        &[&srv.url("/"), "--state", &state.to_string_lossy()],
    );
    assert!(run.stdout.contains("symbolic link"), "{}", run.stdout);
    assert!(!dir.0.join("made-by-probe").exists());
}

#[test]
fn overlapping_runs_never_make_healthy_targets_look_broken() {
    // Was: of twenty overlapping runs on one --state, sixteen waited for
    // the lock past -t, reported every target "not started before the
    // deadline" and counted that as failures.
    let srv = http_server(Arc::new(|_: &Request, s: &mut dyn Stream| {
        std::thread::sleep(Duration::from_millis(500));
        respond(s, 200, &[], b"ok")
    }));
    let dir = TempDir::new("overlap");
    let mut text = String::new();
    for i in 0..5 {
        text.push_str(&format!(
            "[[target]]\nname = \"t{i}\"\nurl = \"{}\"\n",
            srv.url("/")
        ));
    }
    let targets = dir.write("t.toml", &text);
    let state = dir.0.join("s.json").to_string_lossy().into_owned();
    let runs = 12;
    let children: Vec<_> = (0..runs)
        .map(|_| {
            std::process::Command::new(PROBE_HTTP)
                // Twelve runs of 0.5 s each one after the other would need
                // 6 s: holding the lock while probing cannot fit in -t 3.
                .args(["--targets", &targets, "--state", &state, "-t", "3"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(!stdout.contains("not started"), "{stdout}");
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    for i in 0..5 {
        let t = &saved["targets"][format!("t{i}")];
        assert_eq!(t["pass_count"], runs, "{t}");
        assert_eq!(t["fail_count"], 0, "{t}");
        assert_eq!(t["network_failures"], 0, "{t}");
    }
}

#[test]
fn long_requests_are_sent_and_too_long_ones_are_a_usage_error() {
    // Was: a 5,000-byte header or URL was never sent, and the server was
    // blamed: "bad HTTP response: output too small to write output".
    let (srv, got) = recording_server();
    let long = "v".repeat(5000);
    let header = format!("X-Long: {long}");
    let url = srv.url(&format!("/{}", "p".repeat(5000)));
    let run = crate::common::run(PROBE_HTTP, &[&url, "-k", &header]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let req = got.lock().expect("lock")[0].clone();
    assert_eq!(req.header("x-long").map(str::len), Some(5000));
    assert_eq!(req.path.len(), 5001);
    let huge = format!("X-Huge: {}", "h".repeat(70_000));
    let run = crate::common::run(PROBE_HTTP, &[&srv.url("/"), "-k", &huge]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(run.stderr.contains("at most 65536"), "{}", run.stderr);
}

#[test]
fn every_acceptance_is_recorded_when_the_deadline_ends_notify() {
    // Was: with -t 8 and a receiver taking 3 s per alert, three alerts were
    // accepted, yet no `delivered` record was printed, the sink counters
    // stayed empty and all ten spool files remained.
    let rx = Receiver::new(200);
    rx.stall_ms.store(700, std::sync::atomic::Ordering::SeqCst);
    let dir = TempDir::new("deadline-accounting");
    let state = dir.0.join("n.json").to_string_lossy().into_owned();
    let input: String = (0..10)
        .map(|i| line("probe-http", &format!("api{i}"), "critical") + "\n")
        .collect();
    let run = notify(
        &["--webhook", &rx.url(), "--state", &state, "-t", "2.5"],
        &input,
    );
    let records = run.records();
    let delivered = events(&records, "delivered").len();
    assert!(delivered >= 1, "{}", run.stdout);
    assert!(
        !run.stdout.contains("did not finish"),
        "notify ended by itself, before the watchdog: {}",
        run.stdout
    );
    let pending = events(&records, "spooled")
        .first()
        .map(|r| r.details["pending"].as_u64().unwrap_or(0) as usize)
        .unwrap_or(0);
    // Every alert read is either delivered (said, counted, unspooled) or
    // still in the spool.
    let read = records
        .iter()
        .filter_map(|r| {
            r.summary
                .strip_prefix("stopped reading at the -t deadline after ")
        })
        .filter_map(|rest| rest.split(' ').next()?.parse::<usize>().ok())
        .next()
        .unwrap_or(10);
    assert_eq!(delivered + pending, read, "{}", run.stdout);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    assert_eq!(saved["sinks"]["webhook"]["delivered"], delivered, "{saved}");
    assert_eq!(spool_files(&dir), pending);
    // The rest go out on the next run.
    rx.stall_ms.store(0, std::sync::atomic::Ordering::SeqCst);
    let again = notify(
        &["--webhook", &rx.url(), "--state", &state, "--retry-only"],
        "",
    );
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(events(&again.records(), "delivered").len(), pending);
    assert_eq!(spool_files(&dir), 0);
    let ids: std::collections::BTreeSet<String> = rx
        .requests
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|r| r.header("x-skyprobe-alert-id").map(str::to_string))
        .collect();
    assert_eq!(ids.len(), read, "every alert read reached the receiver");
}

#[test]
fn secrets_a_hostile_smtp_server_echoes_are_scrubbed() {
    // Was: an SMTP 535 reply quoting the base64 AUTH line landed in
    // notify's output and spool.
    let port = echoing_smtp_server();
    let dir = TempDir::new("smtp-echo");
    let state = dir.0.join("n.json").to_string_lossy().into_owned();
    // Apart from the state, which is searched for the password below.
    let secrets = TempDir::new("smtp-echo-secret");
    let pwfile = secrets.write("pw", "smtp-pw-canary\n");
    let config = dir.write(
        "n.toml",
        &format!(
            "[[sink]]\nname = \"mail\"\ntype = \"email\"\nto = [\"ops@example.test\"]\nfrom = \"mon@example.test\"\nsmtp = \"127.0.0.1:{port}\"\nsecurity = \"none\"\nuser = \"mon\"\npassword_file = \"{pwfile}\"\n"
        ),
    );
    let run = notify(
        &["--config", &config, "--state", &state, "-vv"],
        &line("probe-http", "api", "critical"),
    );
    assert_eq!(
        run.code, 1,
        "kept for a retry: {}{}",
        run.stdout, run.stderr
    );
    let plain = b64(b"\0mon\0smtp-pw-canary");
    let everything = format!("{}{}{}", run.stdout, run.stderr, dir_text(&dir.0));
    assert!(everything.contains("535"), "{everything}");
    assert!(!everything.contains("smtp-pw-canary"), "{everything}");
    assert!(
        !everything.contains(&plain[4..plain.len() - 4]),
        "{everything}"
    );
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Every file under `dir`, concatenated (lossy), for secret checks.
pub fn dir_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.push_str(&dir_text(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

/// An SMTP server that refuses every login with 535 and quotes the AUTH
/// line back, as a hostile or badly written one might.
fn echoing_smtp_server() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut w = conn.try_clone().expect("clone");
                let mut r = BufReader::new(conn);
                let _ = w.write_all(b"220 test ESMTP\r\n");
                let mut l = String::new();
                while r.read_line(&mut l).unwrap_or(0) > 0 {
                    let cmd = l.trim_end().to_string();
                    l.clear();
                    let upper = cmd.to_ascii_uppercase();
                    let reply = if upper.starts_with("EHLO") {
                        "250-test\r\n250 AUTH PLAIN LOGIN\r\n".to_string()
                    } else if upper.starts_with("AUTH") {
                        format!("535 5.7.8 rejected: {cmd}\r\n")
                    } else if upper.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    } else {
                        "250 ok\r\n".to_string()
                    };
                    let _ = w.write_all(reply.as_bytes());
                }
            });
        }
    });
    port
}

#[test]
fn a_keystone_that_echoes_the_password_is_scrubbed() {
    // Was: a Keystone 401 message echoing the request body printed the
    // password.
    let ks = http_server(Arc::new(|req: &Request, s: &mut dyn Stream| {
        let body = serde_json::json!({"error": {"code": 401, "message": format!(
            "The request you have made requires authentication: {}",
            String::from_utf8_lossy(&req.body)
        )}});
        respond(
            s,
            401,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }));
    let dir = TempDir::new("keystone-echo");
    let cache = dir.0.to_string_lossy().into_owned();
    let url = ks.url("/v3");
    for format in ["jsonl", "nagios"] {
        let run = crate::common::run_env(
            PROBE_HTTP,
            &[
                "http://127.0.0.1:9/",
                "--auth",
                "keystone",
                "-vv",
                "--format",
                format,
            ],
            &[
                ("OS_AUTH_URL", url.as_str()),
                ("OS_USERNAME", "demo"),
                ("OS_PASSWORD", "ks-pw-canary"),
                ("OS_PROJECT_NAME", "demo"),
                ("SKYPROBE_CACHE_DIR", cache.as_str()),
            ],
        );
        assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("401"), "{}", run.stdout);
        assert!(!run.stdout.contains("ks-pw-canary"), "{}", run.stdout);
        assert!(!run.stderr.contains("ks-pw-canary"), "{}", run.stderr);
    }
    let _ = Status::Critical;
}

/// The one string planted in every kind of secret below.
const CANARY: &str = "c4nary-S3cret-x9";

/// A hostile server: echoes every request header back as a response header
/// (`X-Echo-<name>`) and in the body, then answers `status`; /hop redirects
/// to `/` of `to` first.
fn echo_server(status: u16, to: Option<String>) -> Server {
    http_server(Arc::new(move |req: &Request, s: &mut dyn Stream| {
        if req.path == "/hop" {
            if let Some(to) = &to {
                return respond(s, 302, &[("Location", to.as_str())], b"");
            }
        }
        let echoed: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|(k, v)| (format!("X-Echo-{k}"), v.clone()))
            .collect();
        let headers: Vec<(&str, &str)> = echoed
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = serde_json::json!({
            "path": req.path,
            "headers": req.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>(),
            "body": String::from_utf8_lossy(&req.body),
        });
        respond(s, status, &headers, body.to_string().as_bytes())
    }))
}

/// A fake Keystone: refuses (401, quoting the request) or issues a token
/// whose catalog points at `service`.
fn fake_keystone(accept: bool, service: String) -> Server {
    http_server(Arc::new(move |req: &Request, s: &mut dyn Stream| {
        if !accept {
            let body = serde_json::json!({"error": {"code": 401, "title": "Unauthorized",
                "message": format!("bad credentials in {}", String::from_utf8_lossy(&req.body))}});
            return respond(
                s,
                401,
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            );
        }
        let body = serde_json::json!({"token": {
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "catalog": [{"type": "compute", "name": "nova", "endpoints": [
                {"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": service}]}]}});
        respond(
            s,
            201,
            &[
                ("Content-Type", "application/json"),
                ("X-Subject-Token", "tok-not-the-canary"),
            ],
            body.to_string().as_bytes(),
        )
    }))
}

fn assert_no_canary(what: &str, run: &Run, dirs: &[&std::path::Path]) {
    let mut everything = format!("{}\n{}", run.stdout, run.stderr);
    for d in dirs {
        everything.push_str(&dir_text(d));
    }
    let b64 = b64(format!("user:{CANARY}").as_bytes());
    for needle in [CANARY, &b64[2..b64.len() - 2]] {
        assert!(
            !everything.contains(needle),
            "{what}: {needle} leaked:\n{everything}"
        );
    }
}

#[test]
fn the_secret_canary_appears_in_no_output_state_spool_or_cache() {
    // One canary in every kind of secret, every format with -vv, success
    // and failure paths, a redirect to another origin and servers that
    // echo what they get: it must be found nowhere.
    let formats = [
        "jsonl",
        "nagios",
        "nagios-line",
        "table",
        "csv",
        "prometheus",
    ];
    let dir = TempDir::new("canary");
    let files = TempDir::new("canary-secrets");
    let auth_file = files.write("auth", &format!("user:{CANARY}\n"));
    let bearer_file = files.write("bearer", &format!("{CANARY}\r\n"));
    let ok = echo_server(200, None);
    let refused = echo_server(401, None);
    let far = echo_server(200, None);
    let hop = echo_server(200, Some(far.url("/landing")));
    let state = dir.0.join("http.json").to_string_lossy().into_owned();
    let cache = dir.0.join("cache");
    std::fs::create_dir_all(&cache).expect("mkdir");
    let cache_s = cache.to_string_lossy().into_owned();
    let header = format!("X-Auth-Token: {CANARY}");
    let echoed_check = "X-Echo-Authorization: ^never$";
    let mut runs = 0;
    for srv in [&ok, &refused, &hop] {
        let base = if std::ptr::eq(srv, &hop) {
            srv.url("/hop")
        } else {
            srv.url("/")
        };
        let with_password = base.replacen("http://", &format!("http://user:{CANARY}@"), 1);
        let cases: Vec<Vec<String>> = vec![
            vec![with_password],
            vec![base.clone(), "-a".into(), format!("user:{CANARY}")],
            vec![base.clone(), "--auth-file".into(), auth_file.clone()],
            vec![base.clone(), "--bearer-file".into(), bearer_file.clone()],
            vec![base.clone(), "-k".into(), header.clone()],
            vec![
                base.clone(),
                "-k".into(),
                format!("X-Vendor-Key: {CANARY}"),
                "--secret-header".into(),
                "X-Vendor-Key".into(),
            ],
        ];
        for case in cases {
            for format in formats {
                let mut args = case.clone();
                args.extend(
                    ["-f", "follow", "-vv", "--format", format, "--state", &state]
                        .map(String::from),
                );
                args.extend(["--expect-header".to_string(), echoed_check.to_string()]);
                args.extend(["-s".to_string(), "never-there".to_string()]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run =
                    crate::common::run_env(PROBE_HTTP, &args, &[("SKYPROBE_CACHE_DIR", &cache_s)]);
                assert!(run.code <= 3, "{args:?}: {}", run.stderr);
                assert_no_canary(&format!("probe-http {args:?}"), &run, &[&dir.0]);
                runs += 1;
            }
        }
    }
    // The Keystone password: refused (echoed back) and accepted.
    for accept in [false, true] {
        let ks = fake_keystone(accept, ok.url("/compute"));
        let url = ks.url("/v3");
        for format in formats {
            let run = crate::common::run_env(
                PROBE_HTTP,
                &[
                    "--auth",
                    "keystone",
                    "--os-service",
                    "compute",
                    "-vv",
                    "--format",
                    format,
                    "--state",
                    &state,
                    "--expect-header",
                    echoed_check,
                ],
                &[
                    ("OS_AUTH_URL", url.as_str()),
                    ("OS_USERNAME", "demo"),
                    ("OS_PASSWORD", CANARY),
                    ("OS_PROJECT_NAME", "demo"),
                    ("SKYPROBE_CACHE_DIR", cache_s.as_str()),
                ],
            );
            assert!(run.code <= 3, "{}", run.stderr);
            assert_no_canary(
                &format!("probe-http keystone accept={accept} {format}"),
                &run,
                &[&dir.0],
            );
            runs += 1;
        }
    }

    // notify: webhook userinfo, Slack and Teams URLs, the PagerDuty key,
    // the SMTP password; receivers that accept and that refuse.
    let input = line("probe-http", "api", "critical");
    let accepting = Receiver::new(200);
    let failing = Receiver::new(500);
    let (smtp_ok, _) = crate::notify::smtp_server(false);
    let smtp_echo = echoing_smtp_server();
    let nstate = dir.0.join("n.json").to_string_lossy().into_owned();
    for rx in [&accepting, &failing] {
        let hook = rx
            .url()
            .replacen("http://", &format!("http://u:{CANARY}@"), 1);
        let secret_path = rx.server.url(&format!("/services/T0/B0/{CANARY}"));
        let sinks: Vec<Vec<String>> = vec![
            vec!["--webhook".into(), hook],
            vec!["--slack".into(), secret_path.clone()],
            vec!["--teams".into(), secret_path],
            vec![
                "--pagerduty".into(),
                CANARY.into(),
                "--pagerduty-url".into(),
                rx.url(),
            ],
        ];
        for sink in sinks {
            for format in formats {
                let _ = std::fs::remove_file(&nstate);
                let mut args = sink.clone();
                args.extend(["-vv", "--format", format, "--state", &nstate].map(String::from));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run = notify(&args, &input);
                assert!(run.code <= 3, "{args:?}: {}", run.stderr);
                assert_no_canary(&format!("notify {args:?}"), &run, &[&dir.0]);
                runs += 1;
            }
        }
    }
    for port in [smtp_ok, smtp_echo] {
        for format in formats {
            let _ = std::fs::remove_file(&nstate);
            let smtp = format!("127.0.0.1:{port}");
            let run = crate::notify::notify_env(
                &[
                    "--email",
                    "ops@example.test",
                    "--smtp",
                    &smtp,
                    "--smtp-from",
                    "mon@example.test",
                    "--smtp-security",
                    "none",
                    "--smtp-user",
                    "mon",
                    "-vv",
                    "--format",
                    format,
                    "--state",
                    &nstate,
                ],
                &input,
                &[("SKYPROBE_SMTP_PASSWORD", CANARY)],
            );
            assert!(run.code <= 3, "{}", run.stderr);
            assert_no_canary(&format!("notify email {port} {format}"), &run, &[&dir.0]);
            runs += 1;
        }
    }
    // probe-host --verdict --openstack, canary-peer --os-peers and evacuate:
    // the cloud's password, against a Keystone that refuses it (quoting it
    // back) and one that takes it and points at a service answering
    // nonsense.
    let nova = echo_server(200, None);
    for accept in [true, false] {
        let ks = fake_keystone(accept, nova.url("/v2.1"));
        let ks_url = ks.url("/v3");
        let cache = dir.0.join(format!("os-cache-{accept}"));
        let cache_s = cache.to_string_lossy().into_owned();
        let vstate = dir.0.join("verdict.json").to_string_lossy().into_owned();
        let env = [
            ("OS_AUTH_URL", ks_url.as_str()),
            ("OS_USERNAME", "admin"),
            ("OS_PASSWORD", CANARY),
            ("OS_PROJECT_NAME", "admin"),
            ("SKYPROBE_CACHE_DIR", cache_s.as_str()),
        ];
        let cloud_runs: [(&str, Vec<&str>); 3] = [
            (
                crate::probe_host::PROBE_HOST,
                vec![
                    "--verdict",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    "1",
                    "--openstack",
                    "-n",
                    "1",
                    "-I",
                    "20ms",
                    "--probe-timeout",
                    "1s",
                    "--state",
                    &vstate,
                    "-t",
                    "5",
                ],
            ),
            (
                env!("CARGO_BIN_EXE_canary-peer"),
                vec!["probe", "--os-peers", "canary", "-t", "5"],
            ),
            (crate::evacuate::EVACUATE, vec!["compute1", "-t", "5"]),
        ];
        for (bin, args) in &cloud_runs {
            for format in formats {
                let mut args = args.clone();
                args.extend(["-vv", "--format", format]);
                let run = crate::common::run_env(bin, &args, &env);
                assert!(run.code <= 3, "{bin}: {}", run.stderr);
                // The refusal reached it (and was said, scrubbed).
                let said = format!("{}{}", run.stdout, run.stderr);
                assert!(
                    accept || said.contains("401") || said.contains("refused"),
                    "{bin} {format}: {said}"
                );
                assert_no_canary(
                    &format!("{bin} keystone accept={accept} {format}"),
                    &run,
                    &[&dir.0],
                );
                runs += 1;
            }
        }
    }
    // watch-procs and watch-domains hold no secret of their own: the canary
    // in every secret variable the toolkit reads must not turn up in their
    // output either.
    let quiet = [
        (
            crate::watch_procs::WATCH_PROCS,
            vec!["-C", "no-such-process-canary"],
        ),
        #[cfg(feature = "libvirt")]
        (
            crate::watch_domains::WATCH_DOMAINS,
            vec!["--connect", "test:///default"],
        ),
    ];
    for (bin, args) in quiet {
        for format in formats {
            let mut args = args.clone();
            args.extend(["-vv", "--format", format]);
            let run = crate::common::run_env(
                bin,
                &args,
                &[
                    ("SKYPROBE_HTTP_AUTH", CANARY),
                    ("OS_PASSWORD", CANARY),
                    ("SKYPROBE_SMTP_PASSWORD", CANARY),
                ],
            );
            assert_no_canary(&format!("{bin} {format}"), &run, &[]);
            runs += 1;
        }
    }
    assert!(runs > 180, "{runs} runs");
}

#[test]
fn messages_say_what_is_wrong_and_where() {
    // Was: a 1 MiB response header read as "server closed the connection
    // without a response"; regex errors were cut at "regex parse error:";
    // a second YAML document was answered with a library function's name;
    // a bad --auth-file was blamed on -a; a bearer file with a control
    // character gave "bad uri"; a read-only state directory said so only
    // on stdout; --count 0 ran a round; notify --dry-run made STATE.lock.
    let big = http_server(Arc::new(|_: &Request, s: &mut dyn Stream| {
        let value = "a".repeat(1 << 20);
        respond(s, 200, &[("X-Big", value.as_str())], b"")
    }));
    let run = crate::common::run(PROBE_HTTP, &[&big.url("/")]);
    assert_eq!(run.code, 2);
    assert!(
        run.record()
            .summary
            .contains("headers are larger than 16 KiB"),
        "{}",
        run.stdout
    );

    let dir = TempDir::new("messages");
    let one_line = |bin: &str, args: &[&str], env: &[(&str, &str)], want: &str| {
        let run = crate::common::run_env(bin, args, env);
        assert_eq!(run.code, 3, "{args:?}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(want),
            "{args:?}: want {want:?}: {}",
            run.stderr
        );
    };
    one_line(
        PROBE_HTTP,
        &["http://127.0.0.1:9/", "-r", "ab(c"],
        &[],
        "unclosed group (at character 3)",
    );
    let yaml = dir.write("clouds.yaml", "clouds:\n  a: {}\n---\nclouds:\n  b: {}\n");
    one_line(
        PROBE_HTTP,
        &["--os-cloud", "a", "--os-service", "compute"],
        &[("OS_CLIENT_CONFIG_FILE", &yaml)],
        "a second YAML document",
    );
    let procs = dir.write("procs.yaml", "- process_name: a\n---\n- process_name: b\n");
    one_line(
        crate::watch_procs::WATCH_PROCS,
        &["--config", &procs],
        &[],
        "a second YAML document",
    );
    let auth = dir.write("auth", "no-colon-here\n");
    one_line(
        PROBE_HTTP,
        &["http://127.0.0.1:9/", "--auth-file", &auth],
        &[],
        "--auth-file",
    );
    let bearer = dir.write("bearer", "tok\u{1}en\n");
    one_line(
        PROBE_HTTP,
        &["http://127.0.0.1:9/", "--bearer-file", &bearer],
        &[],
        "a header cannot carry",
    );
    let crlf = dir.write("bearer-crlf", "token\r\n");
    let (srv, got) = recording_server();
    let run = crate::common::run(PROBE_HTTP, &[&srv.url("/"), "--bearer-file", &crlf]);
    assert_eq!(
        run.code, 0,
        "a CRLF line end is not part of the token: {}",
        run.stdout
    );
    assert_eq!(
        got.lock().expect("lock")[0].header("authorization"),
        Some("Bearer token")
    );
    one_line(
        PROBE_HTTP,
        &["http://127.0.0.1:9/", "--every", "1s", "--count", "0"],
        &[],
        "--count",
    );

    if nix::unistd::Uid::effective().is_root() {
        // A directory the run's user cannot write: nobody's view of /root-owned 0555.
        let ro = TempDir::new("read-only");
        let _ = std::process::Command::new("chmod")
            .arg("0555")
            .arg(&ro.0)
            .status();
        let state = ro.0.join("s.json").to_string_lossy().into_owned();
        let cmd = format!("'{}' '{}' --state '{}'", PROBE_HTTP, srv.url("/"), state);
        let out = std::process::Command::new("su")
            .args(["-s", "/bin/sh", "nobody", "-c", &cmd])
            .output()
            .expect("su");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Permission denied"),
            "said on stderr too: {stderr}"
        );
    }

    let state = dir.0.join("n.json").to_string_lossy().into_owned();
    let run = notify(
        &[
            "--webhook",
            "http://127.0.0.1:9/",
            "--state",
            &state,
            "--dry-run",
        ],
        &line("probe-http", "api", "critical"),
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let left: Vec<String> = std::fs::read_dir(&dir.0)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("n.json"))
        .collect();
    assert!(left.is_empty(), "a dry run leaves nothing: {left:?}");
}

/// The real cloud's password on the success paths: the real Keystone takes
/// it, and probe-http over the catalog, probe-host --verdict --openstack,
/// canary-peer --os-peers, evacuate's plan and notify's Masakari sink talk
/// to the real Nova, Neutron and Masakari with the token. In every format
/// with -vv, the password is in no output, state, spool or token cache.
#[test]
fn the_real_clouds_password_is_in_no_output_state_or_cache_on_success_paths() {
    let _one = crate::keystone::KEYSTONE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(stack) = Stack::get() else { return };
    let password = stack.var("KEYSTONE_ADMIN_PASSWORD").to_string();
    assert!(password.len() >= 8, "a password worth looking for");
    let dir = TempDir::new("real-secret");
    let cache = dir.0.join("cache").to_string_lossy().into_owned();
    let env = stack.env(&cache);
    let formats = [
        "jsonl",
        "nagios",
        "nagios-line",
        "table",
        "csv",
        "prometheus",
    ];
    let hstate = dir.0.join("http.json").to_string_lossy().into_owned();
    let vstate = dir.0.join("verdict.json").to_string_lossy().into_owned();
    let nstate = dir.0.join("notify.json").to_string_lossy().into_owned();
    let runs: [(&str, Vec<&str>); 4] = [
        (
            PROBE_HTTP,
            vec!["--os-endpoints", "--state", &hstate, "-t", "20"],
        ),
        (
            crate::probe_host::PROBE_HOST,
            vec![
                "--verdict",
                "-H",
                "127.0.0.1",
                "-p",
                "1",
                "--openstack",
                "-n",
                "1",
                "-I",
                "20ms",
                "--probe-timeout",
                "1s",
                "--state",
                &vstate,
                "-t",
                "20",
            ],
        ),
        (
            env!("CARGO_BIN_EXE_canary-peer"),
            vec!["probe", "--os-peers", "canary", "-t", "20"],
        ),
        (crate::evacuate::EVACUATE, vec!["compute10", "-t", "20"]),
    ];
    let mut authenticated = 0;
    for (bin, args) in &runs {
        for format in formats {
            let mut args = args.clone();
            args.extend(["-vv", "--format", format]);
            let run = run_env(bin, &args, &env);
            assert!(run.code <= 3, "{bin}: {}", run.stderr);
            let said = format!("{}{}", run.stdout, run.stderr);
            // Not a bare "401": request ids are hex and may hold it.
            if !said.contains("Keystone refused the credentials") && !said.contains("HTTP 401") {
                authenticated += 1;
            }
            for (what, text) in [("output", &said), ("files", &dir_text(&dir.0))] {
                assert!(
                    !text.contains(&password),
                    "{bin} {format}: the password is in its {what}"
                );
            }
        }
    }
    assert_eq!(authenticated, 24, "every run got past Keystone");
    // notify's Masakari sink, on the real masakari-api: a process failure
    // of a host no segment knows is refused (Masakari's own answer), after
    // Keystone took the password.
    for format in formats {
        let input = line("watch-procs", &format!("nova-compute-{format}"), "critical");
        let run = crate::notify::notify_env(
            &["--masakari", "--state", &nstate, "-vv", "--format", format],
            &input,
            &env,
        );
        assert!(run.code <= 3, "{}", run.stderr);
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(
            !said.contains("Keystone refused the credentials") && !said.contains("HTTP 401"),
            "{said}"
        );
        for (what, text) in [("output", &said), ("files", &dir_text(&dir.0))] {
            assert!(
                !text.contains(&password),
                "notify {format}: the password is in its {what}"
            );
        }
    }
}
