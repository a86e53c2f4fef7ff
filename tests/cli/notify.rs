//! notify against loopback receivers (webhook, Slack, Teams, PagerDuty,
//! Masakari), an in-process SMTP server, real commands, and `kill -9`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skyprobe::report::Record;

use crate::common::*;

pub const NOTIFY: &str = env!("CARGO_BIN_EXE_notify");

/// A loopback receiver that records every request and answers with the
/// status it is set to (0: hold the request for `stall_ms` first).
pub(crate) struct Receiver {
    pub(crate) server: Server,
    pub(crate) requests: Arc<Mutex<Vec<Request>>>,
    pub(crate) status: Arc<AtomicU16>,
    pub(crate) stall_ms: Arc<AtomicU64>,
}

impl Receiver {
    pub(crate) fn new(status: u16) -> Receiver {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(status));
        let stall_ms = Arc::new(AtomicU64::new(0));
        let (r, s, st) = (
            Arc::clone(&requests),
            Arc::clone(&status),
            Arc::clone(&stall_ms),
        );
        let server = http_server(Arc::new(move |req: &Request, stream: &mut dyn Stream| {
            r.lock().expect("lock").push(req.clone());
            let stall = st.load(Ordering::SeqCst);
            if stall > 0 {
                std::thread::sleep(Duration::from_millis(stall));
            }
            let code = s.load(Ordering::SeqCst);
            respond(stream, code, &[("Content-Type", "application/json")], b"{}");
        }));
        Receiver {
            server,
            requests,
            status,
            stall_ms,
        }
    }

    pub(crate) fn url(&self) -> String {
        self.server.url("/hook")
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .map(|r| serde_json::from_slice(&r.body).expect("JSON body"))
            .collect()
    }

    pub(crate) fn count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }

    fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "waited for {n} requests, got {}",
                self.count()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub(crate) fn line(check: &str, name: &str, status: &str) -> String {
    format!(
        r#"{{"ts":"2026-11-23T18:40:00.123Z","host":"mon1","check":"{check}","target":"https://{name}/","name":"{name}","status":"{status}","summary":"{name} is {status}","duration_ms":1.0,"metrics":[],"trace":[{{"step":"response","ok":false,"ms":40.1,"detail":"status 503"}}],"details":{{}},"labels":{{"az":"zone-a"}}}}"#
    )
}

/// Run notify with `input` on stdin.
pub(crate) fn notify(args: &[&str], input: &str) -> Run {
    notify_env(args, input, &[])
}

pub(crate) fn notify_env(args: &[&str], input: &str, env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let mut child = Command::new(NOTIFY)
        .args(args)
        .env_remove("SKYPROBE_FORMAT")
        .env_remove("SKYPROBE_SLACK_URL")
        .env_remove("SKYPROBE_TEAMS_URL")
        .env_remove("SKYPROBE_PAGERDUTY_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("notify runs");
    // Written from a thread while the output is read: a big input and a
    // big output would otherwise fill both pipes and wait on each other.
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

pub(crate) fn events<'a>(records: &'a [Record], event: &str) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|r| r.event.as_deref() == Some(event))
        .collect()
}

/// Alerts left in the spool: the journal's live ids (the last line of an
/// id wins; an alert every sink is done with is gone).
pub(crate) fn spool_files(dir: &TempDir) -> usize {
    let text = std::fs::read_to_string(dir.0.join("n.json.spool").join("journal.jsonl"))
        .unwrap_or_default();
    let mut live = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let item: serde_json::Value = serde_json::from_str(line).expect("a journal line");
        let id = item["alert"]["id"].as_str().expect("an id").to_string();
        let pending = item["deliveries"]
            .as_object()
            .expect("deliveries")
            .values()
            .any(|d| d["outcome"] == "pending");
        live.insert(id, pending);
    }
    live.values().filter(|pending| **pending).count()
}

#[test]
fn a_failure_and_its_recovery_reach_a_webhook_once_each() {
    let rx = Receiver::new(200);
    let dir = TempDir::new("notify-basic");
    let state = dir.0.join("n.json").to_string_lossy().into_owned();
    let input = [
        line("probe-http", "nova", "ok"),
        line("probe-http", "nova", "critical"),
        line("probe-http", "nova", "critical"),
        line("probe-http", "glance", "ok"),
        line("probe-http", "nova", "ok"),
    ]
    .join("\n");
    let run = notify(&["--webhook", &rx.url(), "--state", &state], &input);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:#?}");
    assert_eq!(bodies[0]["status"], "firing");
    assert_eq!(bodies[0]["alerts"][0]["labels"]["severity"], "critical");
    assert_eq!(bodies[0]["alerts"][0]["labels"]["az"], "zone-a");
    assert_eq!(bodies[0]["groupKey"], "probe-http/mon1/nova");
    assert_eq!(bodies[1]["status"], "resolved");
    let id = rx.requests.lock().expect("lock")[0]
        .header("X-Skyprobe-Alert-Id")
        .map(str::to_string);
    assert_eq!(
        id.as_deref(),
        bodies[0]["alerts"][0]["fingerprint"].as_str()
    );
    let records = run.records();
    assert_eq!(events(&records, "delivered").len(), 2);
    assert_eq!(spool_files(&dir), 0, "delivered alerts leave the spool");

    // The same records again: no transition, nothing sent.
    let again = notify(
        &["--webhook", &rx.url(), "--state", &state],
        &line("probe-http", "nova", "ok"),
    );
    assert_eq!(again.code, 0);
    assert_eq!(rx.count(), 2);

    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    assert_eq!(saved["sinks"]["webhook"]["delivered"], 2);
    assert_eq!(saved["alarms"]["probe-http/mon1/nova"]["state"], "ok");

    let history = Command::new(NOTIFY)
        .args([
            "history",
            "--state",
            &state,
            "probe-http/mon1/nova",
            "--format",
            "jsonl",
        ])
        .output()
        .expect("history");
    assert!(history.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&history.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["kind"].as_str(), lines[0]["to"].as_str()),
        (Some("firing"), Some("critical"))
    );
    assert_eq!(
        (lines[1]["kind"].as_str(), lines[1]["to"].as_str()),
        (Some("resolved"), Some("ok"))
    );
    let table = Command::new(NOTIFY)
        .args(["history", "--state", &state, "--format", "table"])
        .output()
        .expect("history");
    let table = String::from_utf8_lossy(&table.stdout);
    let header = table.lines().nth(1).unwrap_or_default();
    for column in ["TIME", "KEY", "KIND", "FROM", "TO", "SENT", "SUMMARY"] {
        assert!(header.contains(column), "{table}");
    }
    assert_eq!(
        table
            .lines()
            .filter(|l| l.contains("probe-http/mon1/nova"))
            .count(),
        2,
        "{table}"
    );
}

#[test]
fn a_sink_that_is_down_gets_the_alert_once_it_is_back() {
    let rx = Receiver::new(500);
    let dir = TempDir::new("notify-outage");
    let state = dir.0.join("n.json").to_string_lossy().into_owned();
    let args = [
        "--webhook",
        &rx.url(),
        "--state",
        &state,
        "--retry-base",
        "1ms",
    ];
    let run = notify(&args, &line("watch-procs", "nova-compute", "critical"));
    assert_eq!(
        run.code, 1,
        "spooled for later is a warning: {}",
        run.stdout
    );
    assert!(!events(&run.records(), "retry").is_empty());
    assert!(events(&run.records(), "spooled")[0]
        .summary
        .contains("1 alert(s) spooled"));
    assert_eq!(spool_files(&dir), 1);

    // Still down: retried, still spooled.
    let mut retry_args = args.to_vec();
    retry_args.push("--retry-only");
    let run = notify(&retry_args, "");
    assert_eq!(run.code, 1);
    assert_eq!(spool_files(&dir), 1);

    // Back: delivered, once; the spool is empty.
    rx.status.store(200, Ordering::SeqCst);
    let failed_attempts = rx.count();
    let run = notify(&retry_args, "");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(events(&run.records(), "delivered").len(), 1);
    assert_eq!(spool_files(&dir), 0);
    let run = notify(&retry_args, "");
    assert_eq!(run.code, 0);
    assert_eq!(
        rx.count(),
        failed_attempts + 1,
        "one delivery, nothing after"
    );
}

#[test]
fn a_final_refusal_drops_for_that_sink_only() {
    let refusing = Receiver::new(400);
    let fine = Receiver::new(200);
    let never = Receiver::new(200);
    let dir = TempDir::new("notify-final");
    let config = dir.write(
        "notify.toml",
        &format!(
            "[[sink]]\nname = \"refuses\"\ntype = \"webhook\"\nurl = \"{}\"\n\
             [[sink]]\nname = \"takes\"\ntype = \"slack\"\nurl = \"{}\"\n\
             [[sink]]\nname = \"off\"\ntype = \"webhook\"\nurl = \"{}\"\nenabled = false\n",
            refusing.url(),
            fine.url(),
            never.url()
        ),
    );
    let state = dir.0.join("n.json").to_string_lossy().into_owned();
    let run = notify(
        &["--config", &config, "--state", &state],
        &line("probe-http", "api", "critical"),
    );
    assert_eq!(run.code, 2, "a drop is critical: {}", run.stdout);
    let records = run.records();
    let dropped = events(&records, "dropped");
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].target, "refuses");
    assert!(
        dropped[0].summary.contains("HTTP 400"),
        "{}",
        dropped[0].summary
    );
    assert_eq!(fine.count(), 1, "one failing sink never stops the others");
    assert!(fine.bodies()[0]["text"]
        .as_str()
        .is_some_and(|t| t.contains("[CRITICAL] probe-http api")));
    assert_eq!(never.count(), 0, "a disabled sink gets nothing");
    assert_eq!(spool_files(&dir), 0, "nothing left to retry");
    // The Slack URL's secret path is never printed.
    let slack = records
        .iter()
        .find(|r| r.target == "takes")
        .expect("slack record");
    assert!(!slack.summary.contains("/hook"), "{}", slack.summary);
}

#[test]
fn routes_pick_sinks_by_check_state_and_labels() {
    let pager = Receiver::new(202);
    let chat = Receiver::new(200);
    let dir = TempDir::new("notify-routes");
    let config = dir.write(
        "notify.toml",
        &format!(
            "[[sink]]\nname = \"pager\"\ntype = \"pagerduty\"\nurl = \"{}\"\nrouting_key_env = \"PD_TEST_KEY\"\n\
             [[sink]]\nname = \"chat\"\ntype = \"teams\"\nurl = \"{}\"\n\
             [[route]]\ncheck = \"^probe-http$\"\nstate = [\"critical\"]\nlabels = {{ az = \"zone-a\" }}\nsinks = [\"pager\"]\ncontinue = true\n\
             [[route]]\nsinks = [\"chat\"]\n",
            pager.url(),
            chat.url()
        ),
    );
    let input = [
        line("probe-http", "api", "critical"),
        line("probe-http", "web", "warning"),
        line("probe-http", "api", "ok"),
    ]
    .join("\n");
    let run = notify_env(
        &["--config", &config],
        &input,
        &[("PD_TEST_KEY", "R0UT1NGKEY")],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let pd = pager.bodies();
    assert_eq!(pd.len(), 2, "trigger and resolve: {pd:#?}");
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["routing_key"], "R0UT1NGKEY");
    assert_eq!(pd[1]["event_action"], "resolve");
    assert_eq!(pd[0]["dedup_key"], pd[1]["dedup_key"]);
    let teams = chat.bodies();
    assert_eq!(teams.len(), 3, "everything reaches chat");
    assert_eq!(
        teams[0]["attachments"][0]["content"]["type"],
        "AdaptiveCard"
    );
    assert!(
        !run.stdout.contains("R0UT1NGKEY"),
        "the routing key is a secret"
    );
}

#[test]
fn bad_lines_are_reported_and_the_stream_goes_on() {
    let rx = Receiver::new(200);
    let input = format!(
        "not json\n{{\"check\":\"c\",\"status\":\"critical\"\n{}\n{{\"check\":\"c\",\"status\":\"sideways\",\"name\":\"n\"}}\n",
        line("probe-http", "api", "critical")
    );
    let run = notify(&["--webhook", &rx.url()], &input);
    assert_eq!(run.code, 3, "bad input is unknown: {}", run.stdout);
    let records = run.records();
    let bad = events(&records, "bad_input");
    assert_eq!(bad.len(), 3, "{records:#?}");
    assert!(
        bad[0]
            .summary
            .starts_with("stdin line 1: not a JSON record"),
        "{}",
        bad[0].summary
    );
    assert!(
        bad[1].summary.starts_with("stdin line 2:"),
        "{}",
        bad[1].summary
    );
    assert!(bad[2].summary.contains("line 4") && bad[2].summary.contains("sideways"));
    assert_eq!(rx.count(), 1, "the good line still fired");
}

#[test]
fn each_line_is_handled_as_it_arrives() {
    let rx = Receiver::new(200);
    let mut child: Child = Command::new(NOTIFY)
        .args(["--webhook", &rx.url()])
        .env_remove("SKYPROBE_FORMAT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("notify");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", line("probe-http", "api", "critical")).expect("write");
    stdin.flush().expect("flush");
    rx.wait_for(1);
    writeln!(stdin, "{}", line("probe-http", "api", "ok")).expect("write");
    stdin.flush().expect("flush");
    rx.wait_for(2);
    drop(stdin);
    let status = child.wait().expect("wait");
    assert!(status.success());
    let mut lines = Vec::new();
    for l in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        lines.push(l.expect("line"));
    }
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[test]
fn kill_9_during_a_delivery_loses_nothing_and_repeats_nothing() {
    let rx = Receiver::new(200);
    rx.stall_ms.store(30_000, Ordering::SeqCst);
    let dir = TempDir::new("notify-kill");
    let state = dir.0.join("n.json").to_string_lossy().into_owned();
    let args = [
        "--webhook",
        &rx.url(),
        "--state",
        &state,
        "--retry-base",
        "1ms",
    ];
    let mut child = Command::new(NOTIFY)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("notify");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", line("probe-http", "api", "critical")).expect("write");
    drop(stdin);
    rx.wait_for(1);
    // The webhook holds the request; the alert is in the spool; kill -9.
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert_eq!(spool_files(&dir), 1, "spooled before any sink was tried");

    rx.stall_ms.store(0, Ordering::SeqCst);
    let run = notify(&[args.as_slice(), &["--retry-only"]].concat(), "");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(events(&run.records(), "delivered").len(), 1);
    assert_eq!(spool_files(&dir), 0);
    // The same critical record again: the state knew the alarm had fired.
    let run = notify(&args, &line("probe-http", "api", "critical"));
    assert_eq!(run.code, 0);
    assert_eq!(
        rx.count(),
        2,
        "the cut attempt and the delivery, nothing more"
    );
    let ids: Vec<String> = rx
        .requests
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|r| r.header("X-Skyprobe-Alert-Id").map(str::to_string))
        .collect();
    assert_eq!(
        ids[0], ids[1],
        "the retry is the same alert, with the same id"
    );
}

#[test]
fn a_sink_that_never_answers_is_cut_at_the_sink_timeout() {
    let silent = silent_server();
    let run = notify(
        &[
            "--webhook",
            &silent.url("/"),
            "--sink-timeout",
            "1s",
            "-t",
            "20",
        ],
        &line("probe-http", "api", "critical"),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let records = run.records();
    let retry = events(&records, "retry");
    assert_eq!(retry.len(), 1);
    assert!(
        retry[0].summary.contains("timed out"),
        "{}",
        retry[0].summary
    );
}

#[test]
fn a_command_gets_the_alert_on_stdin() {
    let dir = TempDir::new("notify-cmd");
    let out = dir.0.join("alert.json");
    let cmd = format!("cat > {}; echo oops >&2; exit 0", out.display());
    let run = notify(
        &["--command", &cmd],
        &line("watch-procs", "nova-compute", "critical"),
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let alert: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("json");
    assert_eq!(alert["kind"], "firing");
    assert_eq!(alert["state"], "critical");
    assert_eq!(alert["record"]["trace"][0]["detail"], "status 503");

    let failing = notify(
        &["--command", "echo no mailer >&2; exit 4"],
        &line("c", "n", "critical"),
    );
    assert_eq!(failing.code, 1);
    let r = failing.records();
    let retry = events(&r, "retry");
    assert!(
        retry[0].summary.contains("exited 4: no mailer"),
        "{}",
        retry[0].summary
    );
}

#[test]
fn dry_run_prints_payloads_and_changes_nothing() {
    let rx = Receiver::new(200);
    let dir = TempDir::new("notify-dry");
    let state = dir.0.join("n.json").to_string_lossy().into_owned();
    let run = notify(
        &["--webhook", &rx.url(), "--state", &state, "--dry-run"],
        &line("probe-http", "api", "critical"),
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let records = run.records();
    let would = events(&records, "would_send");
    assert_eq!(would.len(), 1);
    assert_eq!(would[0].details["payload"]["status"], "firing");
    assert_eq!(rx.count(), 0);
    assert!(!std::path::Path::new(&state).exists(), "no state written");
}

#[test]
fn usage_errors_are_one_line_and_exit_3() {
    let dir = TempDir::new("notify-usage");
    let bad = dir.write("bad.toml", "[[sink]]\nname = \"x\"\ntype = \"fax\"\n");
    for (args, want) in [
        (vec![], "no sinks"),
        (vec!["--config", bad.as_str()], "type \"fax\""),
        (
            vec!["--webhook", "http://127.0.0.1:1/", "--every", "1s"],
            "--every",
        ),
        (
            vec!["--webhook", "http://127.0.0.1:1/", "--m-of-n", "5/3"],
            "M <= N",
        ),
        (
            vec!["--webhook", "http://127.0.0.1:1/", "--key", "colour"],
            "not a key part",
        ),
        (vec!["--email", "ops@example.com"], "--smtp"),
    ] {
        let run = notify(&args, "");
        assert_eq!(run.code, 3, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }
}

/// A small SMTP server: takes every message (or refuses with 550), keeps them.
pub(crate) fn smtp_server(refuse: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let keep = Arc::clone(&keep);
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut w = conn.try_clone().expect("clone");
                let mut r = BufReader::new(conn);
                let _ = w.write_all(b"220 test ESMTP\r\n");
                let mut data: Option<String> = None;
                let mut l = String::new();
                while r.read_line(&mut l).unwrap_or(0) > 0 {
                    let cmd = l.trim_end().to_string();
                    l.clear();
                    if let Some(d) = data.as_mut() {
                        if cmd == "." {
                            keep.lock()
                                .expect("lock")
                                .push(data.take().unwrap_or_default());
                            let _ = w.write_all(b"250 queued\r\n");
                        } else {
                            d.push_str(&cmd);
                            d.push('\n');
                        }
                        continue;
                    }
                    let upper = cmd.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("AUTH") {
                        keep.lock().expect("lock").push(cmd.clone());
                        b"235 authenticated\r\n"
                    } else if upper.starts_with("RCPT") && refuse {
                        b"550 no such user\r\n"
                    } else if upper.starts_with("DATA") {
                        data = Some(String::new());
                        b"354 go on\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(reply);
                }
            });
        }
    });
    (port, got)
}

#[test]
fn email_carries_the_summary_and_the_trace() {
    let (port, got) = smtp_server(false);
    let smtp = format!("127.0.0.1:{port}");
    let args = [
        "--email",
        "ops@example.com",
        "--smtp",
        &smtp,
        "--smtp-from",
        "skyprobe@example.com",
        "--smtp-security",
        "none",
    ];
    let run = notify(&args, &line("probe-http", "nova", "critical"));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let mails = got.lock().expect("lock").clone();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("Subject: [CRITICAL] probe-http nova: nova is critical"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("FAIL response"), "{}", mails[0]);

    let (port, _) = smtp_server(true);
    let smtp = format!("127.0.0.1:{port}");
    let mut refused = args.to_vec();
    refused[3] = &smtp;
    let run = notify(&refused, &line("probe-http", "nova", "critical"));
    assert_eq!(run.code, 2, "a 5xx is final: {}", run.stdout);
    assert!(events(&run.records(), "dropped")[0].summary.contains("550"));
}

/// A record from a monitor on `host`.
fn on_host(host: &str, record: &str) -> String {
    record.replacen("\"host\":\"mon1\"", &format!("\"host\":\"{host}\""), 1)
}

#[test]
fn masakari_takes_vm_and_process_notifications_and_its_engine_acts_on_them() {
    let _one = crate::keystone::KEYSTONE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(stack) = crate::common::Stack::get() else {
        return;
    };
    // The real masakari-api and engine of scripts/openstack.sh; compute2
    // in a segment of this test's own, and an HA-enabled instance on it.
    let tag = format!("notify{}", std::process::id());
    let (code, seg) = stack.call(
        "instance-ha",
        "POST",
        "/segments",
        Some(&serde_json::json!({"segment": {"name": tag, "recovery_method": "auto", "service_type": "COMPUTE"}})),
    );
    assert_eq!(code, 201, "{seg}");
    let seg = seg["segment"]["uuid"].as_str().unwrap_or("").to_string();
    struct Undo<'a>(
        &'a crate::common::Stack,
        String,
        Option<String>,
        Vec<String>,
    );
    impl Drop for Undo<'_> {
        fn drop(&mut self) {
            let (s, seg) = (self.0, &self.1);
            if let Some(h) = &self.2 {
                let path = format!("/segments/{seg}/hosts/{h}");
                let off = serde_json::json!({"host": {"on_maintenance": false}});
                s.call("instance-ha", "PUT", &path, Some(&off));
                s.call("instance-ha", "DELETE", &path, None);
            }
            s.call("instance-ha", "DELETE", &format!("/segments/{seg}"), None);
            s.set_compute("compute2", None);
            s.delete(&self.3);
        }
    }
    let mut undo = Undo(&stack, seg.clone(), None, Vec::new());
    let (code, host) = stack.call(
        "instance-ha",
        "POST",
        &format!("/segments/{seg}/hosts"),
        Some(&serde_json::json!({"host": {"name": "compute2", "type": "COMPUTE", "control_attributes": "SSH"}})),
    );
    assert_eq!(code, 201, "{host}");
    let host = host["host"]["uuid"].as_str().unwrap_or("").to_string();
    undo.2 = Some(host.clone());
    let vm = stack.boot(
        &format!("{tag}-vm"),
        "compute2",
        &serde_json::json!({"HA_Enabled": "True"}),
    );
    undo.3.push(vm.clone());

    let cache = TempDir::new("notify-masakari");
    let cache_dir = cache.0.join("c").to_string_lossy().into_owned();
    let env = stack.env(&cache_dir);
    let domain = format!(
        r#"{{"ts":"2026-11-23T18:40:00.123Z","host":"compute2","check":"watch-domains","target":"{vm}","name":"instance-0000002a","status":"critical","summary":"x","duration_ms":0.0,"metrics":[],"trace":[],"details":{{"masakari":{{"type":"VM","payload":{{"event":"LIFECYCLE","instance_uuid":"{vm}","vir_domain_event":"STOPPED_FAILED"}}}}}},"labels":{{}},"event":"lifecycle"}}"#
    );
    let input = format!(
        "{domain}\n{}\n{}\n",
        on_host("compute2", &line("watch-procs", "nova-compute", "critical")),
        line("probe-http", "api", "critical")
    );
    let run = notify_env(&["--masakari"], &input, &env);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let records = run.records();
    assert_eq!(
        events(&records, "unrouted").len(),
        1,
        "probe-http records are not Masakari's"
    );
    assert!(!run.stdout.contains(stack.var("KEYSTONE_ADMIN_PASSWORD")));

    // Masakari keeps both as it got them, and its engine finishes both:
    // the instance recovered, the host's compute disabled and the host on
    // maintenance.
    let until = Instant::now() + Duration::from_secs(120);
    let notes = loop {
        let (code, n) = stack.call(
            "instance-ha",
            "GET",
            &format!("/notifications?source_host_uuid={host}"),
            None,
        );
        assert_eq!(code, 200, "{n}");
        let notes = n["notifications"].as_array().cloned().unwrap_or_default();
        if notes.len() == 2 && notes.iter().all(|n| n["status"] == "finished") {
            break notes;
        }
        assert!(
            notes
                .iter()
                .all(|n| !["failed", "error"].contains(&n["status"].as_str().unwrap_or(""))),
            "{notes:?}"
        );
        assert!(Instant::now() < until, "not finished: {notes:?}");
        std::thread::sleep(Duration::from_secs(1));
    };
    let of = |kind: &str| {
        notes
            .iter()
            .find(|n| n["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind}: {notes:?}"))
            .clone()
    };
    assert_eq!(
        of("VM")["payload"],
        serde_json::json!({"event": "LIFECYCLE", "instance_uuid": vm, "vir_domain_event": "STOPPED_FAILED"})
    );
    assert!(
        of("VM")["generated_time"]
            .as_str()
            .is_some_and(|t| t.starts_with("2026-11-23T18:40:00")),
        "{notes:?}"
    );
    assert_eq!(
        of("PROCESS")["payload"],
        serde_json::json!({"event": "STOPPED", "process_name": "nova-compute"})
    );
    let (_, h) = stack.call(
        "instance-ha",
        "GET",
        &format!("/segments/{seg}/hosts/{host}"),
        None,
    );
    assert_eq!(h["host"]["on_maintenance"], true, "{h}");
    let (_, svc) = stack.call(
        "compute",
        "GET",
        "/os-services?binary=nova-compute&host=compute2",
        None,
    );
    assert_eq!(svc["services"][0]["status"], "disabled", "{svc}");

    // On maintenance, Masakari answers 409: final, not retried; a host in
    // no segment is a 400, said as such.
    let again = on_host("compute2", &line("watch-procs", "nova-compute", "critical"));
    let stray = on_host("compute3", &line("watch-procs", "nova-compute", "critical"));
    let run = notify_env(&["--masakari"], &format!("{again}\n{stray}\n"), &env);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let dropped = run.records();
    let dropped = events(&dropped, "dropped");
    assert_eq!(dropped.len(), 2, "{}", run.stdout);
    assert!(dropped[0].summary.contains("HTTP 409"), "{dropped:?}");
    assert!(dropped[1].summary.contains("HTTP 400"), "{dropped:?}");

    // A recovered process resolves its alarm without a Masakari call (was:
    // a PROCESS STARTED notification, refused with 409, exit 2 each time).
    let count = || {
        let (_, n) = stack.call("instance-ha", "GET", "/notifications", None);
        n["notifications"].as_array().map_or(0, Vec::len)
    };
    let state = cache.0.join("n.json").to_string_lossy().into_owned();
    let args = ["--masakari", "--state", &state];
    let off = serde_json::json!({"host": {"on_maintenance": false}});
    stack.call(
        "instance-ha",
        "PUT",
        &format!("/segments/{seg}/hosts/{host}"),
        Some(&off),
    );
    let down = notify_env(
        &args,
        &on_host("compute2", &line("watch-procs", "nova-compute", "critical")),
        &env,
    );
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    let sent = count();
    let up = notify_env(
        &args,
        &on_host("compute2", &line("watch-procs", "nova-compute", "ok")),
        &env,
    );
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    assert_eq!(count(), sent, "nothing sent");
    assert_eq!(events(&up.records(), "unrouted").len(), 1, "{}", up.stdout);
}

#[test]
fn a_line_without_end_is_skipped_not_kept() {
    let rx = Receiver::new(200);
    let huge = "x".repeat(5 << 20);
    let input = format!("{huge}\n{}\n", line("probe-http", "api", "critical"));
    let run = notify(&["--webhook", &rx.url()], &input);
    let records = run.records();
    let bad = events(&records, "bad_input");
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0].summary.contains("line 1: line longer than 4 MiB"),
        "{}",
        bad[0].summary
    );
    assert_eq!(rx.count(), 1, "the next line still counts");
}

/// Debian's aiosmtpd, if it is installed (scripts/test.sh installs it and
/// sets SKYPROBE_REQUIRE_SMTP=1, so in CI its absence is a failure).
fn have_aiosmtpd() -> bool {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("SKYPROBE_REQUIRE_SMTP").is_none(),
            "SKYPROBE_REQUIRE_SMTP is set but python3-aiosmtpd is missing"
        );
        eprintln!("skipped: no python3-aiosmtpd");
    }
    ok
}

/// A directory with a CA-signed certificate, its key and the CA (paths),
/// and a free loopback port, for an SMTP server with TLS.
fn smtp_tls_setup(tag: &str) -> (TempDir, String, String, String, u16) {
    let dir = TempDir::new(tag);
    let certs = ca_signed((2090, 1, 1));
    let cert = dir.write("cert.pem", &certs.chain_pem);
    let key = dir.write("key.pem", &certs.key_pem);
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    (dir, cert, key, ca, port)
}

#[test]
fn email_over_starttls_to_a_real_smtp_server() {
    if !have_aiosmtpd() {
        return;
    }
    let (dir, cert, key, ca, port) = smtp_tls_setup("notify-smtp");
    let log = dir.0.join("smtpd.out");
    let server = Killed(
        Command::new("/usr/bin/python3")
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--tlscert", &cert, "--tlskey", &key])
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let smtp = format!("127.0.0.1:{port}");
    let args = [
        "--email",
        "ops@example.com",
        "--smtp",
        &smtp,
        "--smtp-from",
        "skyprobe@example.com",
    ];
    // STARTTLS (the default) to a server whose certificate the public
    // roots do not know: refused, kept for a retry.
    let run = notify(&args, &line("probe-http", "nova", "critical"));
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.records();
    assert!(
        events(&r, "retry")[0].summary.contains("SMTP"),
        "{}",
        run.stdout
    );

    let run = notify(
        &[args.as_slice(), &["--smtp-ca-file", &ca]].concat(),
        &line("probe-http", "nova", "critical"),
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Subject: [CRITICAL] probe-http nova: nova is critical") {
            assert!(text.contains("FAIL response"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "the mail did not arrive: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(server);
}

#[test]
fn a_key_that_goes_quiet_alerts_insufficient_data_and_recovers() {
    let rx = Receiver::new(200);
    let mut child: Child = Command::new(NOTIFY)
        .args(["--webhook", &rx.url(), "--stale-after", "1s"])
        .env_remove("SKYPROBE_FORMAT")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("notify");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", line("probe-http", "api", "ok")).expect("write");
    stdin.flush().expect("flush");
    // Nothing more arrives for the key: notify's own tick finds it stale.
    rx.wait_for(1);
    let quiet = &rx.bodies()[0];
    assert_eq!(
        quiet["alerts"][0]["labels"]["severity"],
        "insufficient_data"
    );
    assert!(quiet["commonAnnotations"]["summary"]
        .as_str()
        .is_some_and(|s| s.starts_with("no record for probe-http/mon1/api since")));
    writeln!(stdin, "{}", line("probe-http", "api", "ok")).expect("write");
    stdin.flush().expect("flush");
    rx.wait_for(2);
    assert_eq!(rx.bodies()[1]["status"], "resolved");
    drop(stdin);
    assert!(child.wait().expect("wait").success());
}

#[test]
fn smtp_auth_sends_the_password_to_the_server_and_nowhere_else() {
    let (port, got) = smtp_server(false);
    let smtp = format!("127.0.0.1:{port}");
    let run = notify_env(
        &[
            "--email",
            "ops@example.com",
            "--smtp",
            &smtp,
            "--smtp-from",
            "skyprobe@example.com",
            "--smtp-security",
            "none",
            "--smtp-user",
            "skyprobe",
        ],
        &line("probe-http", "nova", "critical"),
        &[("SKYPROBE_SMTP_PASSWORD", "s3cret-Pa55")],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let seen = got.lock().expect("lock").clone();
    let auth = seen
        .iter()
        .find(|l| l.starts_with("AUTH"))
        .expect("AUTH was sent");
    // AUTH PLAIN carries base64("\0user\0password").
    assert_eq!(
        auth, "AUTH PLAIN AHNreXByb2JlAHMzY3JldC1QYTU1",
        "user skyprobe, password s3cret-Pa55"
    );
    assert!(!run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"));
}

#[test]
fn pagerduty_from_the_command_line_or_the_environment() {
    let pd = Receiver::new(202);
    let url = pd.url();
    let flag = notify(
        &["--pagerduty", "FLAGKEY", "--pagerduty-url", &url],
        &line("probe-http", "api", "critical"),
    );
    assert_eq!(flag.code, 0, "{}{}", flag.stdout, flag.stderr);
    let env = notify_env(
        &["--pagerduty-url", &url],
        &line("probe-http", "api", "critical"),
        &[("SKYPROBE_PAGERDUTY_KEY", "ENVKEY")],
    );
    assert_eq!(env.code, 0, "{}{}", env.stdout, env.stderr);
    let keys: Vec<String> = pd
        .bodies()
        .iter()
        .map(|b| b["routing_key"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(keys, ["FLAGKEY", "ENVKEY"]);
    assert!(!flag.stdout.contains("FLAGKEY") && !env.stdout.contains("ENVKEY"));
}

#[test]
fn a_refused_smtp_login_keeps_the_alert_until_the_password_works() {
    // A real server that checks the login (aiosmtpd, STARTTLS required
    // before AUTH): a wrong password is not a lost alert, and the password
    // appears nowhere in notify's output.
    if !have_aiosmtpd() {
        return;
    }
    let (dir, cert, key, ca, port) = smtp_tls_setup("notify-smtp-auth");
    let mailbox = dir.0.join("mailbox");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtpd_auth.py");
    let mut child = Command::new("/usr/bin/python3")
        .args([
            script,
            &port.to_string(),
            &cert,
            &key,
            "skyprobe",
            "right-Pa55",
        ])
        .arg(&mailbox)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtpd_auth.py");
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut ready,
    )
    .expect("read");
    assert_eq!(ready.trim(), "ready");
    let server = Killed(child);

    let state = dir.0.join("n.json").to_string_lossy().into_owned();
    let smtp = format!("127.0.0.1:{port}");
    let args = [
        "--email",
        "ops@example.com",
        "--smtp",
        &smtp,
        "--smtp-from",
        "skyprobe@example.com",
        "--smtp-user",
        "skyprobe",
        "--smtp-ca-file",
        &ca,
        "--state",
        &state,
        "--retry-base",
        "1ms",
    ];
    let wrong = notify_env(
        &args,
        &line("probe-http", "nova", "critical"),
        &[("SKYPROBE_SMTP_PASSWORD", "wrong-Pa55")],
    );
    assert_eq!(wrong.code, 1, "kept for a retry: {}", wrong.stdout);
    let records = wrong.records();
    let retry = events(&records, "retry");
    assert!(
        retry[0].summary.contains("refused the login") && retry[0].summary.contains("535"),
        "{}",
        retry[0].summary
    );
    assert_eq!(spool_files(&dir), 1);
    assert!(!mailbox.exists(), "nothing was accepted");

    let right = notify_env(
        &[args.as_slice(), &["--retry-only"]].concat(),
        "",
        &[("SKYPROBE_SMTP_PASSWORD", "right-Pa55")],
    );
    assert_eq!(right.code, 0, "{}{}", right.stdout, right.stderr);
    assert_eq!(events(&right.records(), "delivered").len(), 1);
    assert_eq!(spool_files(&dir), 0);
    let mail = std::fs::read_to_string(&mailbox).expect("the mail arrived");
    assert!(mail.starts_with("LOGIN skyprobe\n"), "{mail}");
    assert!(mail.contains("Subject: [CRITICAL] probe-http nova: nova is critical"));
    for run in [&wrong, &right] {
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(!all.contains("Pa55"), "a password in the output: {all}");
    }
    let kept = std::fs::read_to_string(&state).expect("state");
    assert!(!kept.contains("Pa55"), "a password in the state file");
    drop(server);
}

/// An alert storm: 2,500 keys each fail, recover, fail and recover in one
/// stdin burst — 10,000 transitions for one webhook. Every one is delivered,
/// each key's in the order they happened, and the spool is empty after.
#[test]
fn an_alert_storm_of_10000_transitions_is_delivered_in_order_per_key() {
    const KEYS: usize = 2_500;
    let rx = Receiver::new(200);
    let dir = TempDir::new("notify-storm");
    let state = dir.0.join("n.json").to_string_lossy().into_owned();
    let mut input = String::new();
    for status in ["critical", "ok", "critical", "ok"] {
        for k in 0..KEYS {
            input.push_str(&line("probe-http", &format!("svc{k}"), status));
            input.push('\n');
        }
    }
    let run = notify(
        &["--webhook", &rx.url(), "--state", &state, "-t", "120"],
        &input,
    );
    eprintln!("storm of {} transitions: {:.2?}", 4 * KEYS, run.took);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rx.count(), 4 * KEYS);
    let mut seen: std::collections::HashMap<String, Vec<String>> = Default::default();
    for body in rx.bodies() {
        let key = body["groupKey"].as_str().expect("groupKey").to_string();
        let status = body["status"].as_str().expect("status").to_string();
        seen.entry(key).or_default().push(status);
    }
    assert_eq!(seen.len(), KEYS);
    for (key, got) in &seen {
        assert_eq!(
            got,
            &["firing", "resolved", "firing", "resolved"],
            "{key} in order"
        );
    }
    assert_eq!(spool_files(&dir), 0, "every alert left the spool");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    assert_eq!(saved["sinks"]["webhook"]["delivered"], 4 * KEYS);
}

/// The kill -9 drill over notify's write points: the spool journal's
/// appends (each new alert, each delivery outcome), the state file, the
/// journal's compaction. For each point in turn a run is killed right
/// after it; the next run, fed the same records as a pipeline would, ends
/// with every alert delivered exactly once and an empty spool.
#[test]
fn kill_9_at_every_write_point_loses_nothing_and_sends_nothing_twice() {
    let input: String = ["api", "db", "mq"]
        .iter()
        .map(|n| line("probe-http", n, "critical") + "\n")
        .collect();
    let mut points = 0;
    for k in 1..=40 {
        let rx = Receiver::new(200);
        let dir = TempDir::new(&format!("notify-drill-{k}"));
        let state = dir.0.join("n.json").to_string_lossy().into_owned();
        let args = ["--webhook", &rx.url(), "--state", &state, "-t", "20"];
        let first = notify_env(
            &args,
            &input,
            &[(skyprobe::state::DRILL_ENV, &k.to_string())],
        );
        let killed = first.code == -1;
        let again = notify(&args, &input);
        assert_eq!(again.code, 0, "after a kill at point {k}: {}", again.stdout);
        let mut ids: Vec<String> = rx
            .requests
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|r| r.header("X-Skyprobe-Alert-Id").map(str::to_string))
            .collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(
            (n, ids.len()),
            (3, 3),
            "kill at write point {k}: every alert once"
        );
        assert_eq!(spool_files(&dir), 0, "kill at write point {k}");
        if !killed {
            points = k - 1;
            break;
        }
    }
    eprintln!("notify drill: {points} write points");
    assert!(points >= 7, "the drill reached {points} write points");
}

/// An output nobody reads (a full pipe) does not hold notify past -t: the
/// deadline watchdog ends it even while the main thread is stuck writing.
#[test]
fn a_stdout_nobody_reads_does_not_hold_notify_past_the_deadline() {
    let rx = Receiver::new(200);
    let mut input = String::new();
    for k in 0..3_000 {
        input.push_str(&line("probe-http", &format!("svc{k}"), "critical"));
        input.push('\n');
    }
    let mut child = Command::new(NOTIFY)
        .args(["--webhook", &rx.url(), "-t", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("notify");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    // stdout is never read. Bounded wait: a hang fails the test.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.wait();
    let _ = writer.join();
    assert!(status.is_some(), "notify hung on a full stdout");
}
