//! probe-http against loopback HTTP/HTTPS servers started here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use skyprobe::report::Status;

use crate::common::*;

fn routes() -> Handler {
    Arc::new(
        |req: &Request, s: &mut dyn Stream| match req.path.as_str() {
            "/ok" => respond(s, 200, &[("Content-Type", "text/plain")], b"hello world"),
            "/json" => respond(
                s,
                200,
                &[
                    ("Content-Type", "application/json"),
                    ("X-Service", "nova-api"),
                ],
                br#"{"status":"UP","items":[1,2,3],"version":"2.1"}"#,
            ),
            "/down" => respond(s, 503, &[], b"maintenance"),
            "/missing" => respond(s, 404, &[], b"no"),
            "/redirect" => respond(s, 302, &[("Location", "/ok")], b""),
            "/loop" => respond(s, 302, &[("Location", "/loop")], b""),
            "/echo" => {
                let text = format!(
                    "{} {} auth={}\n{}",
                    req.method,
                    req.header("content-type").unwrap_or("-"),
                    req.header("authorization").unwrap_or("-"),
                    String::from_utf8_lossy(&req.body)
                );
                respond(s, 200, &[], text.as_bytes())
            }
            "/trickle" => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
                let _ = s.flush();
                // One byte a second, bounded: it stops by itself.
                for _ in 0..100 {
                    if s.write_all(b"x").and_then(|_| s.flush()).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            "/big" => {
                let body = vec![b'a'; 10 << 20];
                respond(s, 200, &[], &body)
            }
            "/slow" => {
                std::thread::sleep(Duration::from_millis(300));
                respond(s, 200, &[], b"late")
            }
            path if path.starts_with("/chain/") => {
                // A chain of new URLs: /chain/0 -> /chain/1 -> ...
                let n: u64 = path["/chain/".len()..].parse().unwrap_or(0);
                let next = format!("/chain/{}", n + 1);
                respond(s, 302, &[("Location", next.as_str())], b"")
            }
            _ => respond(s, 404, &[], b"unknown route"),
        },
    )
}

fn server() -> Server {
    http_server(routes())
}

#[test]
fn ok_response_has_phase_trace_and_metrics() {
    let srv = server();
    let run = run(PROBE_HTTP, &[&srv.url("/ok"), "--name", "web"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.record();
    assert_eq!(r.status, Status::Ok);
    assert_eq!(r.check, "probe-http");
    assert_eq!(r.name, "web");
    assert_eq!(r.target, srv.url("/ok"));
    assert_eq!(r.details["status_code"], 200);
    assert_eq!(r.details["size"], 11);
    let steps: Vec<&str> = r.trace.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(
        steps,
        ["resolve", "connect", "response", "transfer", "status"]
    );
    assert!(r.trace.iter().all(|s| s.ok));
    let names: Vec<&str> = r.metrics.iter().map(|m| m.name.as_str()).collect();
    for want in [
        "time",
        "time_resolve",
        "time_connect",
        "time_firstbyte",
        "time_transfer",
        "size",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(
        r.summary.starts_with("HTTP 200 OK, 11 B in "),
        "{}",
        r.summary
    );
}

#[test]
fn default_states_follow_check_http() {
    let srv = server();
    let down = run(PROBE_HTTP, &[&srv.url("/down")]);
    assert_eq!(down.code, 2);
    assert_eq!(down.record().status, Status::Critical);
    assert!(
        down.record().summary.contains("HTTP 503"),
        "{}",
        down.record().summary
    );
    let missing = run(PROBE_HTTP, &[&srv.url("/missing")]);
    assert_eq!(missing.code, 1);
    assert_eq!(missing.record().status, Status::Warning);
    let redirect = run(PROBE_HTTP, &[&srv.url("/redirect")]);
    assert_eq!(redirect.code, 0, "3xx is OK without -f");
    assert_eq!(redirect.record().details["status_code"], 302);
}

#[test]
fn expect_accepts_lists_classes_and_ranges() {
    let srv = server();
    for (path, expect, code) in [
        ("/missing", "404", 0),
        ("/ok", "200,204", 0),
        ("/ok", "2xx", 0),
        ("/ok", "200-299", 0),
        ("/down", "2xx", 2),
        ("/ok", "204", 2),
    ] {
        let run = run(PROBE_HTTP, &[&srv.url(path), "-e", expect]);
        assert_eq!(run.code, code, "{path} -e {expect}: {}", run.stdout);
        if code == 2 {
            let r = run.record();
            assert!(
                r.summary.contains(&format!("expected {expect}")),
                "{}",
                r.summary
            );
            let status_step = step(&r, "status").expect("status step");
            assert!(!status_step.ok);
        }
    }
}

#[test]
fn body_assertions_name_what_failed() {
    let srv = server();
    let ok = run(
        PROBE_HTTP,
        &[
            &srv.url("/json"),
            "-s",
            "UP",
            "-r",
            "items\":\\[1",
            "--json",
            ".status == \"UP\"",
            "--json",
            ".items|length > 2",
            "--expect-header",
            "Content-Type: ^application/json",
            "-d",
            "X-Service: nova",
        ],
    );
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    let r = ok.record();
    for s in ["string", "regex", "json", "header"] {
        assert!(
            step(&r, s).is_some_and(|x| x.ok),
            "{s} step in {:?}",
            r.trace
        );
    }

    let bad_json = run(
        PROBE_HTTP,
        &[&srv.url("/json"), "--json", ".status == \"DOWN\""],
    );
    assert_eq!(bad_json.code, 2);
    let r = bad_json.record();
    assert!(
        r.summary.contains(".status == \"DOWN\" failed: got \"UP\""),
        "{}",
        r.summary
    );

    let missing = run(PROBE_HTTP, &[&srv.url("/ok"), "-s", "goodbye"]);
    assert_eq!(missing.code, 2);
    assert!(missing
        .record()
        .summary
        .contains("string \"goodbye\" not found"));

    let inverted = run(
        PROBE_HTTP,
        &[&srv.url("/ok"), "-r", "hello", "--invert-regex"],
    );
    assert_eq!(inverted.code, 2);
    let insensitive = run(PROBE_HTTP, &[&srv.url("/ok"), "-R", "HELLO"]);
    assert_eq!(insensitive.code, 0);

    let not_json = run(PROBE_HTTP, &[&srv.url("/ok"), "--json", ".a"]);
    assert_eq!(not_json.code, 2);
    assert!(not_json.record().summary.contains("body is not JSON"));

    let header = run(
        PROBE_HTTP,
        &[&srv.url("/ok"), "--expect-header", "X-Service"],
    );
    assert_eq!(header.code, 2);
    assert!(header.record().summary.contains("header X-Service missing"));
}

#[test]
fn response_time_thresholds() {
    let srv = server();
    let warn = run(PROBE_HTTP, &[&srv.url("/slow"), "-w", "0.1", "-c", "5"]);
    assert_eq!(warn.code, 1, "{}", warn.stdout);
    let r = warn.record();
    let time = r.metrics.iter().find(|m| m.name == "time").expect("time");
    assert_eq!(time.warn.as_deref(), Some("0.1"));
    assert_eq!(time.crit.as_deref(), Some("5"));
    assert!(time.value >= 0.3);
    let crit = run(PROBE_HTTP, &[&srv.url("/slow"), "-w", "0.05", "-c", "0.1"]);
    assert_eq!(crit.code, 2);
}

#[test]
fn redirects_follow_or_judge() {
    let srv = server();
    let follow = run(PROBE_HTTP, &[&srv.url("/redirect"), "-f", "follow"]);
    assert_eq!(follow.code, 0, "{}", follow.stdout);
    let r = follow.record();
    assert_eq!(r.details["status_code"], 200);
    assert_eq!(r.details["redirects"], 1);
    assert_eq!(r.details["final_url"], srv.url("/ok"));
    assert!(step(&r, "redirect").is_some());

    let crit = run(PROBE_HTTP, &[&srv.url("/redirect"), "-f", "critical"]);
    assert_eq!(crit.code, 2);
    assert!(crit.record().summary.contains("redirect to /ok"));
    let warn = run(PROBE_HTTP, &[&srv.url("/redirect"), "-f", "warning"]);
    assert_eq!(warn.code, 1);

    let chain = run(
        PROBE_HTTP,
        &[&srv.url("/chain/0"), "-f", "follow", "--max-redirs", "3"],
    );
    assert_eq!(chain.code, 2);
    let r = chain.record();
    assert!(r.summary.contains("more than 3 redirects"), "{}", r.summary);
    assert_eq!(r.details["redirects"], 3);
}

#[test]
fn a_redirect_loop_is_named_and_its_trace_is_capped() {
    // Was: --max-redirs 100000 on a loop made one 1.24 MB record whose
    // summary blamed connecting; now the loop is seen at its first repeat,
    // and a long chain of new URLs keeps 20 hops in the trace.
    let srv = server();
    let looping = run(
        PROBE_HTTP,
        &[&srv.url("/loop"), "-f", "follow", "--max-redirs", "100000"],
    );
    assert_eq!(looping.code, 2);
    let r = looping.record();
    assert!(r.summary.starts_with("redirect loop: "), "{}", r.summary);
    let chain = run(
        PROBE_HTTP,
        &[&srv.url("/chain/0"), "-f", "follow", "--max-redirs", "200"],
    );
    let r = chain.record();
    assert_eq!(r.details["redirects"], 200, "{}", r.summary);
    let redirect_steps = r.trace.iter().filter(|s| s.step == "redirect").count();
    assert!(redirect_steps <= 21, "{redirect_steps} redirect steps");
    assert!(
        r.trace.iter().any(|s| s
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("more redirects not shown"))),
        "{:?}",
        r.trace
    );
    assert!(
        chain.stdout.len() < 16 * 1024,
        "{} bytes",
        chain.stdout.len()
    );
}

#[test]
fn trickling_body_ends_at_the_deadline() {
    let srv = server();
    let run = run(PROBE_HTTP, &[&srv.url("/trickle"), "-t", "2"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    // A bound on a hang, not a speed claim: -t 2 plus a generous margin.
    assert!(
        run.took < Duration::from_millis(3500),
        "took {:?}",
        run.took
    );
    let r = run.record();
    assert!(r.summary.contains("timed out"), "{}", r.summary);
    let transfer = step(&r, "transfer").expect("transfer step");
    assert!(!transfer.ok);
    // The phases that completed keep their times.
    assert!(step(&r, "connect").is_some_and(|s| s.ok));
    assert!(step(&r, "response").is_some_and(|s| s.ok));
}

#[test]
fn timeout_state_picks_the_state_on_timeout() {
    let srv = silent_server();
    let run = run(
        PROBE_HTTP,
        &[&srv.url("/"), "-t", "1", "--timeout-state", "warning"],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.record().status, Status::Warning);
}

#[test]
fn silent_server_times_out_waiting_for_the_response() {
    let srv = silent_server();
    let run = run(PROBE_HTTP, &[&srv.url("/"), "-t", "2"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.took < Duration::from_millis(3500),
        "took {:?}",
        run.took
    );
    let r = run.record();
    assert!(
        r.summary
            .contains("timed out after 2.0 s while waiting for the response"),
        "{}",
        r.summary
    );
    let response = step(&r, "response").expect("response step");
    assert!(!response.ok);
    assert!(step(&r, "connect").is_some_and(|s| s.ok));
}

#[test]
fn blackholed_address_in_a_namespace_times_out_connecting() {
    if !can_netns() {
        return;
    }
    // A veth pair whose far end has no address, and a fixed neighbour entry
    // for the target with a MAC nobody has: SYNs leave and are silently
    // dropped, like a host that vanished. The address exists only inside the
    // namespace this test made; nothing leaves it.
    let ns = Netns::new("blackhole");
    ns.exec(&["ip", "link", "set", "lo", "up"]);
    ns.exec(&[
        "ip", "link", "add", "bh0", "type", "veth", "peer", "name", "bh1",
    ]);
    ns.exec(&["ip", "addr", "add", "10.213.0.1/24", "dev", "bh0"]);
    ns.exec(&["ip", "link", "set", "bh0", "up"]);
    ns.exec(&["ip", "link", "set", "bh1", "up"]);
    ns.exec(&[
        "ip",
        "neigh",
        "add",
        "10.213.0.2",
        "lladdr",
        "02:00:00:00:02:13",
        "dev",
        "bh0",
        "nud",
        "permanent",
    ]);
    let run = run(
        "ip",
        &[
            "netns",
            "exec",
            &ns.0,
            PROBE_HTTP,
            "http://10.213.0.2:8080/",
            "-t",
            "2",
        ],
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.took < Duration::from_millis(3500),
        "took {:?}",
        run.took
    );
    let r = run.record();
    assert!(r.summary.contains("while connecting"), "{}", r.summary);
    let connect = step(&r, "connect").expect("connect step");
    assert!(!connect.ok);
    assert!(connect
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("10.213.0.2:8080"));
}

#[test]
fn invalid_name_fails_at_resolve() {
    let run = run(PROBE_HTTP, &["http://skyprobe-test.invalid/", "-t", "2"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.took < Duration::from_millis(3500),
        "took {:?}",
        run.took
    );
    let r = run.record();
    let resolve = step(&r, "resolve").expect("resolve step");
    assert!(!resolve.ok, "{:?}", r.trace);
    assert!(step(&r, "connect").is_none());
}

#[test]
fn refused_connection_names_the_address() {
    // Bind then drop: the port is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let run = run(PROBE_HTTP, &["-H", "127.0.0.1", "-p", &port.to_string()]);
    assert_eq!(run.code, 2);
    let r = run.record();
    assert_eq!(
        r.summary,
        format!("cannot connect: 127.0.0.1:{port}: connection refused")
    );
}

#[test]
fn ten_mebibyte_body_and_the_size_limit() {
    let srv = server();
    let run1 = run(PROBE_HTTP, &[&srv.url("/big"), "-m", "1M:20M"]);
    assert_eq!(run1.code, 0, "{}", run1.stdout);
    let r = run1.record();
    assert_eq!(r.details["size"], 10 << 20);
    let limited = run(PROBE_HTTP, &[&srv.url("/big"), "--max-body", "1M"]);
    assert_eq!(limited.code, 2);
    assert!(limited.record().summary.contains("larger than --max-body"));
    let small = run(PROBE_HTTP, &[&srv.url("/ok"), "-m", "100"]);
    assert_eq!(small.code, 1, "page size below -m is WARNING");
}

#[test]
fn post_body_from_file_and_basic_auth_stay_secret() {
    let srv = server();
    let dir = TempDir::new("post");
    let body = dir.write("body.json", "{\"ping\":1}");
    let run = run(
        PROBE_HTTP,
        &[
            &srv.url("/echo"),
            "--data",
            &format!("@{body}"),
            "-T",
            "application/json",
            "-a",
            "admin:s3cret-pw",
            "-s",
            "POST application/json",
            "-vv",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains("s3cret-pw") && !run.stderr.contains("s3cret-pw"));
    // The server got the credentials (base64 of admin:s3cret-pw).
    let r = run.record();
    assert!(step(&r, "string").is_some_and(|s| s.ok));

    let in_url = run_url_with_credentials(&srv);
    assert!(!in_url.stdout.contains("hunter2") && !in_url.stderr.contains("hunter2"));
    assert!(!in_url.record().target.contains("admin"));
}

fn run_url_with_credentials(srv: &Server) -> Run {
    let url = format!("http://admin:hunter2@{}/echo", srv.addr);
    let run = run(
        PROBE_HTTP,
        &[&url, "-s", "auth=Basic YWRtaW46aHVudGVyMg==", "-v"],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    run
}

#[test]
fn tls_with_trusted_ca_reports_certificate_days() {
    let certs = ca_signed((2090, 1, 1));
    let srv = https_server(&certs.chain_pem, &certs.key_pem, routes());
    let dir = TempDir::new("ca");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let run = run(
        PROBE_HTTP,
        &[
            &srv.https_url("/ok"),
            "--ca-file",
            &ca,
            "-C",
            "30,7",
            "--continue-after-certificate",
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let r = run.record();
    assert!(step(&r, "tls").is_some_and(|s| s.ok));
    assert!(r.details["cert_days_left"].as_f64().expect("days") > 20_000.0);
    assert!(r.details["tls_version"]
        .as_str()
        .expect("version")
        .starts_with("TLSv1_"));
    assert!(r.metrics.iter().any(|m| m.name == "time_tls"));
    assert!(r
        .metrics
        .iter()
        .any(|m| m.name == "cert_days" && m.warn.as_deref() == Some("30:")));
}

#[test]
fn self_signed_certificate_fails_verification_but_reports_expiry() {
    let certs = self_signed((2020, 1, 1), (2090, 1, 1));
    let srv = https_server(&certs.chain_pem, &certs.key_pem, routes());
    let run1 = run(PROBE_HTTP, &[&srv.https_url("/ok")]);
    assert_eq!(run1.code, 2, "{}", run1.stdout);
    let r = run1.record();
    assert!(r.summary.contains("unknown issuer"), "{}", r.summary);
    assert!(!step(&r, "tls").expect("tls step").ok);
    assert!(
        r.details.contains_key("cert_days_left"),
        "expiry reported even when verification fails"
    );

    let insecure = run(PROBE_HTTP, &[&srv.https_url("/ok"), "--insecure"]);
    assert_eq!(insecure.code, 0, "{}", insecure.stdout);
}

#[test]
fn expired_certificate_is_critical_with_or_without_verification() {
    let certs = self_signed((2020, 1, 1), (2021, 1, 1));
    let srv = https_server(&certs.chain_pem, &certs.key_pem, routes());
    let dir = TempDir::new("expired");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let verified = run(PROBE_HTTP, &[&srv.https_url("/ok"), "--ca-file", &ca]);
    assert_eq!(verified.code, 2);
    assert!(
        verified.record().summary.contains("expired"),
        "{}",
        verified.record().summary
    );
    let insecure = run(
        PROBE_HTTP,
        &[&srv.https_url("/ok"), "--insecure", "-C", "30"],
    );
    assert_eq!(insecure.code, 2);
    let r = insecure.record();
    assert!(r.summary.contains("has expired"), "{}", r.summary);
    assert!(r.details["cert_days_left"].as_f64().expect("days") < 0.0);
}

#[test]
fn certificate_expiring_soon_is_a_warning() {
    let soon = time::OffsetDateTime::now_utc() + time::Duration::days(20);
    let certs = ca_signed((soon.year(), soon.month() as u8, soon.day()));
    let srv = https_server(&certs.chain_pem, &certs.key_pem, routes());
    let dir = TempDir::new("soon");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let run1 = run(
        PROBE_HTTP,
        &[&srv.https_url("/down"), "--ca-file", &ca, "-C", "30,7"],
    );
    // As check_http: with -C only the certificate is judged (the 503 is not).
    assert_eq!(run1.code, 1, "{}", run1.stdout);
    assert!(run1.record().summary.contains("expires soon"));
    let both = run(
        PROBE_HTTP,
        &[
            &srv.https_url("/down"),
            "--ca-file",
            &ca,
            "-C",
            "30,7",
            "--continue-after-certificate",
        ],
    );
    assert_eq!(both.code, 2);
}

#[test]
fn connect_to_and_sni_override_the_address() {
    let certs = ca_signed((2090, 1, 1));
    let srv = https_server(&certs.chain_pem, &certs.key_pem, routes());
    let dir = TempDir::new("sni");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let url = format!("https://localhost:{}/ok", srv.addr.port());
    let run1 = run(
        PROBE_HTTP,
        &[
            &url,
            "--ca-file",
            &ca,
            "--connect-to",
            "localhost:127.0.0.1",
        ],
    );
    assert_eq!(run1.code, 0, "{}", run1.stdout);
    let r = run1.record();
    assert!(step(&r, "resolve")
        .expect("resolve")
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("given"));
    let wrong_name = run(
        PROBE_HTTP,
        &[
            &url,
            "--ca-file",
            &ca,
            "--connect-to",
            "localhost:127.0.0.1",
            "--sni",
            "other.example",
        ],
    );
    assert_eq!(wrong_name.code, 2);
    assert!(
        wrong_name
            .record()
            .summary
            .contains("not valid for this host name"),
        "{}",
        wrong_name.record().summary
    );
}

#[test]
fn bad_input_is_one_line_and_exit_3() {
    let dir = TempDir::new("bad");
    let missing = dir.0.join("nope.json");
    let missing_arg = format!("@{}", missing.display());
    for args in [
        vec!["not a url"],
        vec!["http://127.0.0.1:1/", "-w", "3:2"],
        vec!["http://127.0.0.1:1/", "--data", missing_arg.as_str()],
        vec!["http://127.0.0.1:1/", "-P", "x", "--data", "y"],
        vec!["http://127.0.0.1:1/", "-4", "-6"],
        vec!["http://127.0.0.1:1/", "--format", "xml"],
        vec!["http://127.0.0.1:1/", "-t", "soon"],
        vec!["https://127.0.0.1:1/", "--ca-file", "/nonexistent/ca.pem"],
        vec![],
    ] {
        let run = run(PROBE_HTTP, &args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("probe-http: "), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    // Nagios drops stderr: the reason must be on stdout in that format.
    let nagios = run(
        PROBE_HTTP,
        &["http://127.0.0.1:1/", "-w", "3:2", "--format", "nagios"],
    );
    assert_eq!(nagios.code, 3);
    assert_eq!(
        nagios.stdout,
        "HTTP UNKNOWN - -w/-c: range \"3:2\": start is greater than end\n"
    );
}

#[test]
fn help_and_version_exit_zero() {
    let help = run(PROBE_HTTP, &["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Examples:"));
    let version = run(PROBE_HTTP, &["-V"]);
    assert_eq!(version.code, 0);
    assert!(version.stdout.starts_with("probe-http "));
}

#[test]
fn formats_render_the_same_record() {
    let srv = server();
    let url = srv.url("/down");
    let nagios = run(
        PROBE_HTTP,
        &[&url, "--format", "nagios", "-w", "1", "-c", "2"],
    );
    assert_eq!(nagios.code, 2);
    let first = nagios.stdout.lines().next().expect("line");
    assert!(
        first.starts_with("HTTP CRITICAL - HTTP 503 Service Unavailable"),
        "{first}"
    );
    let (text, perf) = first.split_once('|').expect("perfdata");
    assert!(!text.ends_with(' '), "no space before the |: {first}");
    let time = perf.split(' ').next().expect("item");
    assert!(
        time.starts_with("time=") && time.ends_with("s;1;2;0;"),
        "{time}"
    );
    for item in perf.split(' ') {
        let value = item.split_once('=').expect("label=value").1;
        assert!(!value.contains(['e', 'E']), "no exponents: {item}");
    }

    let prom = run_env(PROBE_HTTP, &[&url], &[("SKYPROBE_FORMAT", "prometheus")]);
    assert!(prom.stdout.contains("# TYPE skyprobe_status gauge"));
    assert!(prom.stdout.contains("skyprobe_status{check=\"probe-http\""));

    let csv = run(PROBE_HTTP, &[&url, "--format", "csv"]);
    let mut lines = csv.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("ts,host,check,name,target,status,summary,duration_ms,labels,event")
    );
    assert!(lines.next().expect("row").contains(",critical,"));

    let table = run(PROBE_HTTP, &[&url, "--format", "table"]);
    assert!(table.stdout.contains("CRITICAL") && table.stdout.contains("STATUS"));
}

#[test]
fn output_file_is_written_atomically() {
    let srv = server();
    let dir = TempDir::new("out");
    let out = dir.0.join("http.prom");
    let run = run(
        PROBE_HTTP,
        &[
            &srv.url("/ok"),
            "--format",
            "prometheus",
            "--output",
            &out.to_string_lossy(),
        ],
    );
    assert_eq!(run.code, 0);
    assert!(run.stdout.is_empty());
    let text = std::fs::read_to_string(&out).expect("written");
    assert!(text.contains("skyprobe_status{"));
    let leftovers = std::fs::read_dir(&dir.0).expect("ls").count();
    assert_eq!(leftovers, 1, "no temporary file left behind");
}

#[test]
fn every_and_count_stream_rounds_with_labels() {
    let srv = server();
    let run = run(
        PROBE_HTTP,
        &[
            &srv.url("/ok"),
            "--every",
            "100ms",
            "--count",
            "3",
            "--label",
            "az=zone-a",
            "--hostname",
            "mon1",
        ],
    );
    assert_eq!(run.code, 0);
    let records = run.records();
    assert_eq!(records.len(), 3);
    for r in records {
        assert_eq!(r.labels.get("az").map(String::as_str), Some("zone-a"));
        assert_eq!(r.host, "mon1");
    }
}

#[test]
fn client_certificate_for_mutual_tls() {
    let certs = ca_signed((2090, 1, 1));
    let srv = https_server_with(
        &certs.chain_pem,
        &certs.key_pem,
        routes(),
        rustls::DEFAULT_VERSIONS,
        Some(&certs.ca_pem),
    );
    let dir = TempDir::new("mtls");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let (cert, key) = certs.client.as_ref().expect("client cert");
    let cert = dir.write("client.pem", cert);
    let key = dir.write("client.key", key);
    let with = run(
        PROBE_HTTP,
        &[
            &srv.https_url("/ok"),
            "--ca-file",
            &ca,
            "-J",
            &cert,
            "-K",
            &key,
        ],
    );
    assert_eq!(with.code, 0, "{}", with.stdout);
    let without = run(PROBE_HTTP, &[&srv.https_url("/ok"), "--ca-file", &ca]);
    assert_eq!(without.code, 2, "{}", without.stdout);
    let bad_key = run(
        PROBE_HTTP,
        &[
            &srv.https_url("/ok"),
            "--ca-file",
            &ca,
            "-J",
            &cert,
            "-K",
            &ca,
        ],
    );
    assert_eq!(
        bad_key.code, 3,
        "a certificate is not a key: {}",
        bad_key.stderr
    );
    assert!(
        bad_key.stderr.contains("--client-key"),
        "{}",
        bad_key.stderr
    );
}

#[test]
fn tls_min_refuses_an_older_server() {
    let certs = ca_signed((2090, 1, 1));
    let srv = https_server_with(
        &certs.chain_pem,
        &certs.key_pem,
        routes(),
        &[&rustls::version::TLS12],
        None,
    );
    let dir = TempDir::new("tlsmin");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let ok = run(PROBE_HTTP, &[&srv.https_url("/ok"), "--ca-file", &ca]);
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    assert_eq!(ok.record().details["tls_version"], "TLSv1_2");
    let refused = run(
        PROBE_HTTP,
        &[&srv.https_url("/ok"), "--ca-file", &ca, "--tls-min", "1.3"],
    );
    assert_eq!(refused.code, 2);
    assert!(!step(&refused.record(), "tls").expect("tls step").ok);
}

#[test]
fn http_proxy_from_flag_and_environment() {
    // The "proxy" is a loopback server that accepts a CONNECT tunnel (ureq
    // tunnels plain HTTP too) and answers the request sent through it; the
    // target name does not resolve, so only the proxy can answer.
    let proxy = http_server(Arc::new(|req: &Request, s: &mut dyn Stream| {
        if req.method != "CONNECT" || req.path != "backend.invalid:80" {
            return respond(s, 400, &[], req.path.as_bytes());
        }
        let _ = s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let _ = s.flush();
        match read_request(s) {
            Some(inner) if inner.path == "/health" => respond(s, 200, &[], b"via proxy"),
            _ => respond(s, 404, &[], b"not through the tunnel"),
        }
    }));
    let proxy_url = format!("http://{}", proxy.addr);
    let by_flag = run(
        PROBE_HTTP,
        &[
            "http://backend.invalid/health",
            "--proxy",
            &proxy_url,
            "-s",
            "via proxy",
        ],
    );
    assert_eq!(by_flag.code, 0, "{}", by_flag.stdout);
    let by_env = run_env(
        PROBE_HTTP,
        &["http://backend.invalid/health", "-s", "via proxy"],
        &[("http_proxy", &proxy_url)],
    );
    assert_eq!(by_env.code, 0, "{}", by_env.stdout);
    let ignored = run_env(
        PROBE_HTTP,
        &["http://backend.invalid/health", "--no-proxy", "-t", "2"],
        &[("http_proxy", &proxy_url)],
    );
    assert_eq!(
        ignored.code, 2,
        "--no-proxy resolves the name itself: {}",
        ignored.stdout
    );
}

#[test]
fn address_family_flags() {
    let srv = server();
    let v4 = run(
        PROBE_HTTP,
        &[&format!("http://localhost:{}/ok", srv.addr.port()), "-4"],
    );
    assert_eq!(v4.code, 0, "{}", v4.stdout);
    assert!(v4.record().details["peer"]
        .as_str()
        .expect("peer")
        .starts_with("127."));
    let v6 = run(PROBE_HTTP, &[&srv.url("/ok"), "-6"]);
    assert_eq!(v6.code, 2);
    let r = v6.record();
    assert!(r.summary.contains("not an IPv6 address"), "{}", r.summary);
}

fn targets_file(dir: &TempDir, srv: &Server) -> String {
    dir.write(
        "targets.toml",
        &format!(
            "[defaults]\nlabels = {{ az = \"zone-a\" }}\ntimeout = \"5s\"\n\n\
             [[target]]\nname = \"json\"\nurl = \"{json}\"\njson = ['.status == \"UP\"']\n\n\
             [[target]]\nname = \"down\"\nurl = \"{down}\"\nlabels = {{ service = \"nova\" }}\n\n\
             [[target]]\nname = \"refused\"\nurl = \"http://127.0.0.1:1/\"\n\n\
             [[target]]\nname = \"off\"\nurl = \"{ok}\"\nenabled = false\n",
            json = srv.url("/json"),
            down = srv.url("/down"),
            ok = srv.url("/ok"),
        ),
    )
}

#[test]
fn targets_file_probes_every_enabled_target_in_order() {
    let srv = server();
    let dir = TempDir::new("targets");
    let file = targets_file(&dir, &srv);
    let run1 = run(PROBE_HTTP, &["--targets", &file, "--label", "team=ops"]);
    assert_eq!(run1.code, 2, "{}{}", run1.stdout, run1.stderr);
    let records = run1.records();
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["json", "down", "refused"]);
    assert_eq!(records[0].status, Status::Ok);
    assert_eq!(records[1].status, Status::Critical);
    assert_eq!(
        records[1].labels.get("service").map(String::as_str),
        Some("nova")
    );
    for r in &records {
        assert_eq!(r.labels.get("az").map(String::as_str), Some("zone-a"));
        assert_eq!(r.labels.get("team").map(String::as_str), Some("ops"));
    }
}

#[test]
fn state_keeps_skypunch_counters_and_targets_can_be_disabled() {
    let srv = server();
    let dir = TempDir::new("stats");
    let file = targets_file(&dir, &srv);
    let state = dir.0.join("http.json").to_string_lossy().into_owned();
    for _ in 0..2 {
        run(PROBE_HTTP, &["--targets", &file, "--state", &state]);
    }
    let third = run(PROBE_HTTP, &["--targets", &file, "--state", &state]);
    let records = third.records();
    let by = |n: &str| {
        records
            .iter()
            .find(|r| r.name == n)
            .expect("record")
            .clone()
    };
    let json = by("json");
    assert_eq!(json.details["pass_count"], 3);
    assert_eq!(json.details["count_2xx"], 3);
    let down = by("down");
    assert_eq!(down.details["fail_count"], 3);
    assert_eq!(down.details["count_5xx"], 3);
    assert_eq!(down.details["consecutive_failures"], 3);
    assert_eq!(by("refused").details["network_failures"], 3);

    let disabled = run(
        PROBE_HTTP,
        &["--targets", &file, "--state", &state, "--disable", "down"],
    );
    assert_eq!(disabled.code, 0);
    assert_eq!(disabled.record().event.as_deref(), Some("disabled"));
    let after = run(PROBE_HTTP, &["--targets", &file, "--state", &state]);
    assert!(after.records().iter().all(|r| r.name != "down"));

    let list = run(
        PROBE_HTTP,
        &["--targets", &file, "--state", &state, "--list"],
    );
    let listed = list.records();
    assert_eq!(listed.len(), 4);
    let down = listed.iter().find(|r| r.name == "down").expect("down");
    assert!(
        down.summary
            .starts_with("disabled (--disable); 0 pass / 3 fail"),
        "{}",
        down.summary
    );
    let off = listed.iter().find(|r| r.name == "off").expect("off");
    assert!(off.summary.contains("never probed"));

    let show = run(PROBE_HTTP, &["--state", &state, "--show", "refused"]);
    let r = show.record();
    assert!(r.summary.contains("connection refused"), "{}", r.summary);
    assert!(
        r.trace.iter().any(|s| s.step == "connect" && !s.ok),
        "the last failing trace is kept"
    );

    let enabled = run(
        PROBE_HTTP,
        &["--targets", &file, "--state", &state, "--enable", "down"],
    );
    assert_eq!(enabled.code, 0);
    let back = run(PROBE_HTTP, &["--targets", &file, "--state", &state]);
    assert!(back.records().iter().any(|r| r.name == "down"));
}

#[test]
fn concurrent_runs_never_corrupt_the_state_file() {
    let srv = server();
    let dir = TempDir::new("concurrent");
    let file = dir.write(
        "t.toml",
        &format!("[[target]]\nname = \"ok\"\nurl = \"{}\"\n", srv.url("/ok")),
    );
    let state = dir.0.join("state.json").to_string_lossy().into_owned();
    let children: Vec<_> = (0..6)
        .map(|_| {
            std::process::Command::new(PROBE_HTTP)
                .args(["--targets", &file, "--state", &state])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("wait").success());
    }
    let last = run(PROBE_HTTP, &["--targets", &file, "--state", &state]);
    assert_eq!(
        last.record().details["pass_count"],
        7,
        "every run counted once"
    );
}

#[test]
fn many_targets_stay_inside_the_deadline() {
    let silent = silent_server();
    let dir = TempDir::new("deadline-many");
    let mut text = String::new();
    for i in 0..12 {
        text.push_str(&format!(
            "[[target]]\nname = \"t{i}\"\nurl = \"{}\"\n\n",
            silent.url("/")
        ));
    }
    let file = dir.write("t.toml", &text);
    let run1 = run(
        PROBE_HTTP,
        &["--targets", &file, "-t", "2", "--concurrency", "4"],
    );
    assert_eq!(run1.code, 2);
    assert!(
        run1.took < Duration::from_millis(3500),
        "took {:?}",
        run1.took
    );
    let records = run1.records();
    assert_eq!(records.len(), 12, "one record per target, finished or not");
    assert!(records.iter().all(|r| r.status == Status::Critical));
    assert!(records
        .iter()
        .any(|r| r.summary.contains("not started before the deadline")));
}

#[test]
fn targets_file_errors_name_file_line_and_key() {
    let dir = TempDir::new("targets-bad");
    let file = dir.write(
        "t.toml",
        "[[target]]\nname = \"a\"\nurl = \"http://127.0.0.1:1/\"\nexpcet = \"200\"\n",
    );
    let r = run(PROBE_HTTP, &["--targets", &file]);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr
            .contains(&format!("{file}:4: key \"expcet\": unknown key")),
        "{}",
        r.stderr
    );
    let good = dir.write(
        "g.toml",
        "[[target]]\nname = \"a\"\nurl = \"http://127.0.0.1:1/\"\n",
    );
    let only = run(PROBE_HTTP, &["--targets", &good, "--only", "nope"]);
    assert_eq!(only.code, 3);
    assert!(
        only.stderr.contains("--only \"nope\": no such target"),
        "{}",
        only.stderr
    );
    let both = run(PROBE_HTTP, &["--targets", &good, "http://127.0.0.1:1/"]);
    assert_eq!(both.code, 3);
}

#[test]
fn csv_targets_and_only_prints_the_trace() {
    let srv = server();
    let dir = TempDir::new("csv");
    let file = dir.write(
        "t.csv",
        &format!(
            "name,url,expect,labels\nok,{},200,az=b\nmissing,{},200,\n",
            srv.url("/ok"),
            srv.url("/missing")
        ),
    );
    let all = run(PROBE_HTTP, &["--targets-csv", &file]);
    assert_eq!(all.code, 2);
    assert_eq!(all.records().len(), 2);
    let only = run(PROBE_HTTP, &["--targets-csv", &file, "--only", "missing"]);
    assert_eq!(only.records().len(), 1);
    assert!(
        only.stderr.contains("status") && only.stderr.contains("FAILED"),
        "trace on stderr: {}",
        only.stderr
    );
}

#[test]
fn skypunch_sql_targets_are_probed_as_skypunch_defined_them() {
    // (method, path, Authorization) of every request.
    type Seen = Vec<(String, String, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&seen);
    let srv = http_server(Arc::new(move |req: &Request, stream: &mut dyn Stream| {
        keep.lock().expect("lock").push((
            req.method.clone(),
            req.path.clone(),
            req.header("Authorization").map(str::to_string),
        ));
        let code = if req.path == "/created" { 201 } else { 200 };
        respond(stream, code, &[], b"ok");
    }));
    let dir = TempDir::new("skypunch");
    // As Skypunch's own data.sql writes them, plus a mysqldump-style row
    // with two targets, an escaped quote, a disabled target and a name used twice.
    let sql = format!(
        "# SkyPunch Database schema\nUSE skypunch;\n\n\
         INSERT INTO targets\nVALUES (0,'Home page','0','NEW',NULL,'NEW','','{home}','GET','NONE','',200,10,10,0,0,0,0,0,0,0,0,1);\n\n\
         INSERT INTO `targets` VALUES (7,'Peter''s API','tenant-42','PASS',NULL,'PASS','2013-05-01 10:00:00','{api}','HEAD','BASIC','user=peter,password=pa55',200,60,5,3,0,3,0,0,0,0,0,1),\
         (8,'dup','0','NEW',NULL,'NEW','','{created}','POST','NONE','',201,10,10,0,0,0,0,0,0,0,0,1),\
         (9,'dup','0','NEW',NULL,'NEW','','{home}','GET','NONE','',200,10,10,0,0,0,0,0,0,0,0,1),\
         (10,'off','0','NEW',NULL,'NEW','','{home}','GET','NONE','',200,10,10,0,0,0,0,0,0,0,0,0);\n\n\
         INSERT INTO notifiers\nVALUES(0, 'gmail','SMTP','ops@example.com','user=X,password=Y,server=smtp.example.com');\n",
        home = srv.url("/"),
        api = srv.url("/api"),
        created = srv.url("/created"),
    );
    let file = dir.write("data.sql", &sql);
    let run = run(PROBE_HTTP, &["--targets-skypunch", &file]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let records = run.records();
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["Home page", "Peter's API", "dup #8", "dup #9"],
        "the disabled one is skipped"
    );
    assert_eq!(
        records[1].labels.get("tenant").map(String::as_str),
        Some("tenant-42")
    );
    let seen = seen.lock().expect("lock").clone();
    let api = seen
        .iter()
        .find(|(_, p, _)| p == "/api")
        .expect("the API was probed");
    assert_eq!(api.0, "HEAD");
    // Basic credentials as Skypunch's authn_parms gave them: peter:pa55.
    assert_eq!(api.2.as_deref(), Some("Basic cGV0ZXI6cGE1NQ=="));
    assert!(seen.iter().any(|(m, p, _)| m == "POST" && p == "/created"));
    assert!(
        !run.stdout.contains("pa55"),
        "the password stays out of records"
    );

    let broken = dir.write("broken.sql", "INSERT INTO targets VALUES (1,'a','0','NEW',NULL,'NEW','','http://x/','GET','KERBEROS','',200,10,10,0,0,0,0,0,0,0,0,1);\n");
    let bad = crate::common::run(PROBE_HTTP, &["--targets-skypunch", &broken]);
    assert_eq!(bad.code, 3);
    assert!(
        bad.stderr
            .contains("broken.sql:1: target \"a\": authn \"KERBEROS\""),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_chain_verified_once_is_not_trusted_for_another_name() {
    // One process, one server, one chain: verified for 127.0.0.1 first,
    // then presented for a name the certificate does not carry. The memo
    // of verified chains must not let the second through.
    let certs = ca_signed((2090, 1, 1));
    let srv = https_server(&certs.chain_pem, &certs.key_pem, routes());
    let dir = TempDir::new("chain-memo");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let port = srv.addr.port();
    let file = dir.write(
        "t.toml",
        &format!(
            "[defaults]\nca-file = \"{ca}\"\nno-tls-resume = true\n\n\
             [[target]]\nname = \"first\"\nurl = \"{ok}\"\n\n\
             [[target]]\nname = \"again\"\nurl = \"{ok}\"\n\n\
             [[target]]\nname = \"other-name\"\nurl = \"https://wrong.example:{port}/ok\"\nconnect-to = [\"wrong.example:127.0.0.1\"]\n",
            ok = srv.https_url("/ok"),
        ),
    );
    let run = run(PROBE_HTTP, &["--targets", &file, "--concurrency", "1"]);
    let records = run.records();
    let status: Vec<(&str, Status)> = records
        .iter()
        .map(|r| (r.name.as_str(), r.status))
        .collect();
    assert_eq!(
        status,
        [
            ("first", Status::Ok),
            ("again", Status::Ok),
            ("other-name", Status::Critical)
        ],
        "{}",
        run.stdout
    );
    assert!(records[1].details["cert_days_left"]
        .as_f64()
        .is_some_and(|d| d > 20_000.0));
    assert!(
        records[2].summary.contains("not valid for"),
        "{}",
        records[2].summary
    );
}

#[test]
fn targets_records_go_out_before_the_run_ends() {
    // t2 is held until the test has seen t1's record: so t1's record was
    // printed while the run was still going, and in the file's order.
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hold = Arc::clone(&release);
    let srv = http_server(Arc::new(move |req: &Request, stream: &mut dyn Stream| {
        if req.path == "/held" {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while !hold.load(std::sync::atomic::Ordering::SeqCst)
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        respond(stream, 200, &[], b"ok");
    }));
    let dir = TempDir::new("streamed");
    let file = dir.write(
        "t.toml",
        &format!(
            "[[target]]\nname = \"t1\"\nurl = \"{}\"\n\n[[target]]\nname = \"t2\"\nurl = \"{}\"\n\n[[target]]\nname = \"t3\"\nurl = \"{}\"\n",
            srv.url("/fast"),
            srv.url("/held"),
            srv.url("/fast")
        ),
    );
    let mut child = std::process::Command::new(PROBE_HTTP)
        .args(["--targets", &file, "--concurrency", "3", "-t", "30"])
        .env_remove("SKYPROBE_FORMAT")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("probe-http");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        child.stdout.take().expect("stdout"),
    ));
    let first: skyprobe::report::Record =
        serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("record");
    assert_eq!(first.name, "t1");
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the run is still going"
    );
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    let rest: Vec<String> = lines
        .map(|l| {
            let r: skyprobe::report::Record =
                serde_json::from_str(&l.expect("read")).expect("record");
            r.name
        })
        .collect();
    assert_eq!(
        rest,
        ["t2", "t3"],
        "t3 finished early but waits for t2: file order"
    );
    assert!(child.wait().expect("wait").success());
}

#[test]
fn tls_sessions_are_resumed_per_origin_and_per_round() {
    // Two origins (TLS 1.3 and TLS 1.2 only) on two ports. Within a round,
    // later connections to an origin resume the session of the first, and
    // still report its certificate; another port never gets that session;
    // --no-tls-resume (or the target's key) makes every handshake full; and
    // the next round starts with a full handshake again.
    let certs = ca_signed((2090, 1, 1));
    let tls13 = https_server(&certs.chain_pem, &certs.key_pem, routes());
    let tls12 = https_server_with(
        &certs.chain_pem,
        &certs.key_pem,
        routes(),
        &[&rustls::version::TLS12],
        None,
    );
    let dir = TempDir::new("tls-resume");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let file = dir.write(
        "t.toml",
        &format!(
            "[defaults]\nca-file = \"{ca}\"\n\n\
             [[target]]\nname = \"a1\"\nurl = \"{a}\"\n\n\
             [[target]]\nname = \"a2\"\nurl = \"{a}\"\n\n\
             [[target]]\nname = \"a3-full\"\nurl = \"{a}\"\nno-tls-resume = true\n\n\
             [[target]]\nname = \"b1\"\nurl = \"{b}\"\n\n\
             [[target]]\nname = \"b2\"\nurl = \"{b}\"\n",
            a = tls13.https_url("/ok"),
            b = tls12.https_url("/ok"),
        ),
    );
    let resumed = |run: &Run| -> Vec<(String, bool, String)> {
        run.records()
            .iter()
            .map(|r| {
                assert_eq!(r.status, Status::Ok, "{}", run.stdout);
                assert!(
                    r.details["cert_days_left"]
                        .as_f64()
                        .is_some_and(|d| d > 20_000.0),
                    "{}: no certificate reported",
                    r.name
                );
                (
                    r.name.clone(),
                    r.details["tls_resumed"].as_bool().expect("tls_resumed"),
                    r.details["tls_version"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let args = ["--targets", &file, "--concurrency", "1"];
    let once = run(PROBE_HTTP, &args);
    assert_eq!(once.code, 0, "{}", once.stdout);
    let want = |v13: &str, v12: &str, a2: bool, b2: bool| {
        vec![
            ("a1".to_string(), false, v13.to_string()),
            ("a2".to_string(), a2, v13.to_string()),
            ("a3-full".to_string(), false, v13.to_string()),
            ("b1".to_string(), false, v12.to_string()),
            ("b2".to_string(), b2, v12.to_string()),
        ]
    };
    assert_eq!(resumed(&once), want("TLSv1_3", "TLSv1_2", true, true));
    let trace = step(&once.records()[1], "tls")
        .expect("tls step")
        .detail
        .clone()
        .unwrap_or_default();
    assert!(trace.ends_with(", session resumed"), "{trace}");

    let full = run(PROBE_HTTP, &[&args[..], &["--no-tls-resume"]].concat());
    assert_eq!(resumed(&full), want("TLSv1_3", "TLSv1_2", false, false));

    let rounds = run(
        PROBE_HTTP,
        &[&args[..], &["--every", "100ms", "--count", "2"]].concat(),
    );
    let both = resumed(&rounds);
    assert_eq!(both.len(), 10, "{}", rounds.stdout);
    assert_eq!(both[..5], both[5..], "the second round starts over");

    // One name on one port, two backends (--connect-to) sharing one
    // session cache, as load-balanced backends share session keys: the
    // second backend still makes its own full handshake.
    let shared = tls_server_config(
        &certs.chain_pem,
        &certs.key_pem,
        rustls::DEFAULT_VERSIONS,
        None,
    );
    let first = serve_tls("127.0.0.1:0", Arc::clone(&shared), routes()).expect("bind");
    let port = first.addr.port();
    let Some(_second) = serve_tls(&format!("127.0.0.2:{port}"), shared, routes()) else {
        return; // 127.0.0.2 with that port is taken: nothing to compare.
    };
    let file = dir.write(
        "backends.toml",
        &format!(
            "[defaults]\nca-file = \"{ca}\"\n\n\
             [[target]]\nname = \"one\"\nurl = \"https://localhost:{port}/ok\"\nconnect-to = [\"localhost:127.0.0.1\"]\n\n\
             [[target]]\nname = \"one-again\"\nurl = \"https://localhost:{port}/ok\"\nconnect-to = [\"localhost:127.0.0.1\"]\n\n\
             [[target]]\nname = \"two\"\nurl = \"https://localhost:{port}/ok\"\nconnect-to = [\"localhost:127.0.0.2\"]\n",
        ),
    );
    let backends = run(PROBE_HTTP, &["--targets", &file, "--concurrency", "1"]);
    let flags: Vec<(String, bool)> = resumed(&backends)
        .into_iter()
        .map(|(n, r, _)| (n, r))
        .collect();
    assert_eq!(
        flags,
        [
            ("one".to_string(), false),
            ("one-again".to_string(), true),
            ("two".to_string(), false)
        ]
    );
}

#[test]
fn command_line_probe_options_apply_to_every_target() {
    // With a targets file, a probe option on the command line applies to
    // every target and wins over the file's; lists (headers) add up. Before,
    // such options were silently ignored: `--insecure` did nothing.
    let certs = self_signed((2020, 1, 1), (2090, 1, 1));
    type Seen = Vec<(String, Vec<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let log = Arc::clone(&seen);
    let srv = https_server(
        &certs.chain_pem,
        &certs.key_pem,
        Arc::new(move |req: &Request, s: &mut dyn Stream| {
            let headers = req
                .headers
                .iter()
                .filter(|(k, _)| k.starts_with("x-"))
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            log.lock().expect("log").push((req.method.clone(), headers));
            respond(s, 200, &[], b"ok");
        }),
    );
    let dir = TempDir::new("given-options");
    let file = dir.write(
        "t.toml",
        &format!(
            "[defaults]\nheaders = [\"x-file: 1\"]\n\n\
             [[target]]\nname = \"plain\"\nurl = \"{u}\"\n\n\
             [[target]]\nname = \"wants-404\"\nurl = \"{u}\"\nexpect = \"404\"\nmethod = \"POST\"\n",
            u = srv.https_url("/"),
        ),
    );
    let alone = run(PROBE_HTTP, &["--targets", &file]);
    assert_eq!(alone.code, 2, "self-signed: {}", alone.stdout);

    seen.lock().expect("log").clear();
    let given = run(
        PROBE_HTTP,
        &[
            "--targets",
            &file,
            "--concurrency",
            "1",
            "--insecure",
            "--expect",
            "200",
            "--method",
            "GET",
            "--header",
            "x-cli: 2",
        ],
    );
    assert_eq!(given.code, 0, "{}", given.stdout);
    let status: Vec<Status> = given.records().iter().map(|r| r.status).collect();
    assert_eq!(status, [Status::Ok, Status::Ok]);
    let requests = seen.lock().expect("log").clone();
    let want = (
        "GET".to_string(),
        vec!["x-file: 1".to_string(), "x-cli: 2".to_string()],
    );
    assert_eq!(requests, [want.clone(), want]);

    let bad = run(PROBE_HTTP, &["--targets", &file, "--expect", "nonsense"]);
    assert_eq!(bad.code, 3);
    assert!(
        bad.stderr.starts_with("probe-http: --expect \"nonsense\""),
        "the command line's own error, not a target's: {}",
        bad.stderr
    );
}

#[test]
fn a_ca_file_replaced_between_rounds_is_read_again() {
    // --every keeps one process running for days: a CA file rotated while
    // it runs is the one the next round trusts (and no chain verified under
    // the old roots is taken on trust).
    let certs = ca_signed((2090, 1, 1));
    let stranger = ca_signed((2090, 1, 1));
    let srv = https_server(&certs.chain_pem, &certs.key_pem, routes());
    let dir = TempDir::new("ca-rotated");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let url = srv.https_url("/ok");
    let mut run = Streaming::start(
        PROBE_HTTP,
        &[&url, "--ca-file", &ca, "--every", "2s", "--count", "2"],
    );
    let first = run.records(1).remove(0);
    assert_eq!(first.status, Status::Ok, "{}", first.summary);
    replace_file(&ca, &stranger.ca_pem);
    let second = run.records(1).remove(0);
    assert_eq!(second.status, Status::Critical, "{}", second.summary);
    // Both test CAs carry the same name: the new one is found, and its
    // signature does not match.
    assert!(
        second.summary.contains("bad signature"),
        "{}",
        second.summary
    );
}

#[test]
fn every_follows_an_edited_targets_file_and_keeps_the_last_good_one() {
    let srv = server();
    let dir = TempDir::new("reload-targets");
    let target = |name: &str| {
        format!(
            "[[target]]\nname = \"{name}\"\nurl = \"{}\"\n\n",
            srv.url("/ok")
        )
    };
    let file = dir.write("t.toml", &target("a"));
    let mut run = Streaming::start(
        PROBE_HTTP,
        &["--targets", &file, "--every", "2s", "--count", "4"],
    );
    let names = |records: &[skyprobe::report::Record]| -> Vec<String> {
        records.iter().map(|r| r.name.clone()).collect()
    };
    assert_eq!(names(&run.records(1)), ["a"]);

    replace_file(&file, &format!("{}{}", target("a"), target("b")));
    assert_eq!(names(&run.records(2)), ["a", "b"], "the edit is followed");

    replace_file(
        &file,
        "[[target]]\nname = \"c\"\nurl = \"http://[bad\"\nbogus = 1\n",
    );
    let third = run.records(3);
    assert_eq!(third[0].status, Status::Unknown);
    assert!(
        third[0]
            .summary
            .contains("t.toml changed and cannot be used")
            && third[0].summary.contains("bogus")
            && third[0].summary.contains("still using the 2 targets"),
        "{}",
        third[0].summary
    );
    assert_eq!(
        names(&third[1..]),
        ["a", "b"],
        "the last good file is still probed"
    );

    // Fixed: one OK record for the file (an alert on it resolves), then
    // the targets as they are now.
    replace_file(&file, &format!("{}{}", target("a"), target("c")));
    let fourth = run.records(3);
    assert_eq!(fourth[0].status, Status::Ok, "{}", fourth[0].summary);
    assert!(fourth[0].summary.ends_with("t.toml read again: 2 targets"));
    assert_eq!(fourth[0].name, third[0].name, "the same key for notify");
    assert_eq!(names(&fourth[1..]), ["a", "c"]);
}
