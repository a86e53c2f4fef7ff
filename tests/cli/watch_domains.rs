//! watch-domains against the real libvirt library: its in-process test
//! driver with node XML files, and a real libvirtd (its test driver behind
//! a socket the test owns) that the tests drive with virsh, kill, stop and
//! restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use skyprobe::report::{Record, Status};

use crate::common::*;

pub const WATCH_DOMAINS: &str = env!("CARGO_BIN_EXE_watch-domains");

const TEST_UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/// A node XML for libvirt's test driver: `(name, uuid, runstate, agent
/// channel)`; runstate 1 running, 3 paused, 5 shutoff, 6 crashed.
fn node_xml(domains: &[(&str, &str, u8, bool)]) -> String {
    let mut xml = String::from("<node>\n");
    for (name, uuid, runstate, agent) in domains {
        let channel = if *agent {
            "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
        } else {
            ""
        };
        xml.push_str(&format!(
            "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\
             <name>{name}</name><uuid>{uuid}</uuid><memory>65536</memory>\
             <os><type>hvm</type></os><devices>{channel}</devices>\
             <test:runstate>{runstate}</test:runstate></domain>\n"
        ));
    }
    xml.push_str("</node>\n");
    xml
}

const WEB: &str = "11111111-1111-1111-1111-111111111111";
const DB: &str = "22222222-2222-2222-2222-222222222222";
const OFF: &str = "33333333-3333-3333-3333-333333333333";
const BOOM: &str = "44444444-4444-4444-4444-444444444444";

fn four_domains(dir: &TempDir) -> String {
    let path = dir.write(
        "node.xml",
        &node_xml(&[
            ("web1", WEB, 1, true),
            ("db1", DB, 3, false),
            ("off1", OFF, 5, false),
            ("boom", BOOM, 6, false),
        ]),
    );
    format!("test://{path}")
}

fn by_name<'a>(records: &'a [Record], name: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no record for {name}: {records:#?}"))
}

#[test]
fn states_from_a_node_xml_are_judged_by_the_defaults() {
    let dir = TempDir::new("wd-states");
    let uri = four_domains(&dir);
    let run = run(WATCH_DOMAINS, &["--connect", &uri]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let records = run.records();
    assert_eq!(records.len(), 4, "{records:#?}");
    let want = [
        ("web1", "running", Status::Ok),
        ("db1", "paused", Status::Warning),
        ("off1", "shutoff", Status::Ok),
        ("boom", "crashed", Status::Critical),
    ];
    for (name, state, status) in want {
        let r = by_name(&records, name);
        assert_eq!(r.status, status, "{name}: {}", r.summary);
        assert_eq!(r.details["state"], state);
        assert_eq!(r.check, "watch-domains");
        assert!(r.event.is_none());
    }
    assert_eq!(by_name(&records, "web1").target, WEB);
    assert!(
        run.stderr.is_empty(),
        "libvirt's own error printing is off: {}",
        run.stderr
    );
}

#[test]
fn expect_selection_and_overrides_change_the_verdict() {
    let dir = TempDir::new("wd-expect");
    let uri = four_domains(&dir);
    let run = run(
        WATCH_DOMAINS,
        &[
            "--connect",
            &uri,
            "--expect",
            "running",
            "--exclude",
            "^boom$",
        ],
    );
    let records = run.records();
    assert_eq!(records.len(), 3);
    assert_eq!(by_name(&records, "db1").status, Status::Critical);
    assert_eq!(by_name(&records, "off1").status, Status::Critical);
    assert_eq!(run.code, 2);

    let run = crate::common::run(
        WATCH_DOMAINS,
        &[
            "--connect",
            &uri,
            "--state-status",
            "paused=ok",
            "--name",
            "^(db1|web1)$",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.records().len(), 2);

    // A name or UUID that matches nothing is a problem, not silence.
    let run = crate::common::run(WATCH_DOMAINS, &["--connect", &uri, "--name", "^nova-"]);
    assert_eq!(run.code, 2);
    assert!(run.record().summary.contains("no domain"), "{}", run.stdout);

    let run = crate::common::run(
        WATCH_DOMAINS,
        &["--connect", &uri, "--name", BOOM, "--format", "nagios"],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.starts_with("DOMAINS CRITICAL - boom is crashed"),
        "{}",
        run.stdout
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let dir = TempDir::new("wd-flags");
    let uri = four_domains(&dir);
    for (args, want) in [
        (vec!["--expect", "sleeping"], "not a domain state"),
        (vec!["--name", "("], "--name"),
        (
            vec!["--state-status", "paused:sleepy=ok"],
            "not a reason for paused",
        ),
        (vec!["--state-status", "paused"], "STATE[:REASON]=STATUS"),
        (vec!["--agent-failures", "0"], "agent-failures"),
        (vec!["--follow", "soon"], "--follow"),
    ] {
        let mut all = vec!["--connect", uri.as_str()];
        all.extend(args.iter().copied());
        let run = run(WATCH_DOMAINS, &all);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }
}

#[test]
fn a_uri_libvirt_cannot_parse_is_a_usage_problem() {
    let run = run(WATCH_DOMAINS, &["--connect", "::not a uri"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    let r = run.record();
    assert_eq!(r.status, Status::Unknown);
    assert!(r.summary.contains("check --connect"), "{}", r.summary);

    let missing = crate::common::run(WATCH_DOMAINS, &["--connect", "test:///no/such/node.xml"]);
    assert_eq!(missing.code, 3, "{}", missing.stdout);
    assert_eq!(
        missing.stderr.trim(),
        "watch-domains: --connect test:///no/such/node.xml: /no/such/node.xml: No such file or directory",
        "one line, and nothing from libxml2"
    );
}

#[test]
fn a_crash_between_two_runs_becomes_an_event_once() {
    let dir = TempDir::new("wd-changes");
    let uri = four_domains(&dir);
    let state = dir.0.join("domains.json").to_string_lossy().into_owned();
    let first = run(WATCH_DOMAINS, &["--connect", &uri, "--state", &state]);
    assert!(
        first.records().iter().all(|r| r.event.is_none()),
        "{}",
        first.stdout
    );
    // Between the runs web1 crashed and off1 was deleted.
    dir.write(
        "node.xml",
        &node_xml(&[
            ("web1", WEB, 6, true),
            ("db1", DB, 3, false),
            ("boom", BOOM, 6, false),
        ]),
    );
    let second = run(WATCH_DOMAINS, &["--connect", &uri, "--state", &state]);
    let records = second.records();
    let changed: Vec<&Record> = records
        .iter()
        .filter(|r| r.event.as_deref() == Some("changed"))
        .collect();
    assert_eq!(changed.len(), 1, "{records:#?}");
    assert_eq!(changed[0].name, "web1");
    assert_eq!(changed[0].status, Status::Critical);
    assert_eq!(changed[0].details["from_state"], "running");
    assert_eq!(changed[0].details["state"], "crashed");
    let vanished = records
        .iter()
        .find(|r| r.event.as_deref() == Some("vanished"))
        .expect("off1 is reported gone");
    assert_eq!(vanished.target, OFF);
    let third = run(WATCH_DOMAINS, &["--connect", &uri, "--state", &state]);
    assert!(
        third.records().iter().all(|r| r.event.is_none()),
        "a change is reported once: {}",
        third.stdout
    );
}

#[test]
fn a_corrupt_state_file_is_set_aside_and_said() {
    let dir = TempDir::new("wd-corrupt");
    let uri = four_domains(&dir);
    let state = dir.write("domains.json", "{\"seen\": [");
    let run = run(WATCH_DOMAINS, &["--connect", &uri, "--state", &state]);
    let note = run
        .records()
        .into_iter()
        .find(|r| r.event.as_deref() == Some("state_file"))
        .expect("the state file problem is a record");
    assert!(note.summary.contains("set aside"), "{}", note.summary);
    let kept = std::fs::read_dir(&dir.0)
        .expect("ls")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(kept);
}

#[test]
fn heartbeat_on_the_test_driver_says_agents_are_out_of_reach() {
    let dir = TempDir::new("wd-agent");
    let uri = four_domains(&dir);
    let run = run(WATCH_DOMAINS, &["--connect", &uri, "--heartbeat"]);
    let records = run.records();
    // Only web1 runs with an agent channel.
    let agents: Vec<&Record> = records
        .iter()
        .filter(|r| r.name.ends_with("/agent"))
        .collect();
    assert_eq!(agents.len(), 1, "{records:#?}");
    assert_eq!(agents[0].name, "web1/agent");
    assert_eq!(agents[0].status, Status::Unknown);
    assert!(
        agents[0].summary.contains("not supported"),
        "{}",
        agents[0].summary
    );
}

#[test]
fn the_other_binaries_do_not_link_libvirt() {
    // A Nagios server probing HTTP needs no libvirt, even from a build
    // with the feature on: only watch-domains loads libvirt.so.
    for (bin, want) in [
        (PROBE_HTTP, false),
        (crate::watch_procs::WATCH_PROCS, false),
        (WATCH_DOMAINS, true),
    ] {
        let out = Command::new("ldd").arg(bin).output().expect("ldd");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.contains("libvirt.so"), want, "{bin}: {text}");
    }
}

// ---------------------------------------------------------------------------
// A real libvirtd. Only one can run on a machine at a time (its network
// driver holds /run/libvirt/network/driver.pid), so these tests take turns.

static DAEMON: Mutex<()> = Mutex::new(());

fn one_daemon_at_a_time() -> MutexGuard<'static, ()> {
    DAEMON.lock().unwrap_or_else(|p| p.into_inner())
}

/// libvirtd as the tests start it (system paths, the libvirt-qemu user)
/// needs root; as anyone else these tests say they are skipped.
fn can_run_libvirtd() -> bool {
    needs_root(
        "libvirtd",
        Command::new("libvirtd")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
    )
}

struct Daemon {
    dir: TempDir,
    child: Option<Child>,
}

impl Daemon {
    fn start(tag: &str) -> Daemon {
        // libvirtd refuses to start without the user its QEMU driver runs as.
        for (check, add) in [
            (
                ["group", "libvirt-qemu"],
                vec!["groupadd", "-r", "libvirt-qemu"],
            ),
            (
                ["passwd", "libvirt-qemu"],
                vec![
                    "useradd",
                    "-r",
                    "-g",
                    "libvirt-qemu",
                    "-d",
                    "/nonexistent",
                    "-s",
                    "/usr/sbin/nologin",
                    "libvirt-qemu",
                ],
            ),
        ] {
            let have = Command::new("getent").args(check).output().expect("getent");
            if !have.status.success() {
                let _ = Command::new(add[0]).args(&add[1..]).status();
            }
        }
        let dir = TempDir::new(tag);
        dir.write(
            "libvirtd.conf",
            &format!(
                "unix_sock_dir = \"{}\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n",
                dir.0.display()
            ),
        );
        let mut d = Daemon { dir, child: None };
        d.spawn();
        d
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.0.join("libvirt-sock")
    }

    fn uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.socket().display())
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let log = std::fs::File::create(self.dir.0.join("log")).expect("log");
        let child = Command::new("libvirtd")
            .arg("-f")
            .arg(self.dir.0.join("libvirtd.conf"))
            .arg("--pid-file")
            .arg(self.dir.0.join("pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("libvirtd starts (package libvirt-daemon)");
        self.child = Some(child);
        // Wait for the daemon to answer, not just for the socket file.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = self.socket().exists()
                && Command::new("virsh")
                    .args(["-c", &self.uri(), "domstate", "test"])
                    .output()
                    .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "libvirtd did not come up: {}",
                std::fs::read_to_string(self.dir.0.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    fn virsh(&self, args: &[&str]) {
        let out = Command::new("virsh")
            .arg("-c")
            .arg(self.uri())
            .args(args)
            .output()
            .expect("virsh (package libvirt-clients)");
        assert!(
            out.status.success(),
            "virsh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.kill();
    }
}

/// A watch-domains run whose records are read as they are printed.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<Record>,
    seen: Vec<Record>,
}

impl Follower {
    fn start(args: &[&str]) -> Follower {
        let mut child = Command::new(WATCH_DOMAINS)
            .args(args)
            .env_remove("SKYPROBE_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("watch-domains starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let record: Record = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("bad record {line}: {e}"));
                if tx.send(record).is_err() {
                    break;
                }
            }
        });
        Follower {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait (bounded) for a record that satisfies `want`.
    fn wait_for(&mut self, what: &str, want: impl Fn(&Record) -> bool) -> Record {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(r) = self.seen.iter().find(|r| want(r)) {
                return r.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(r) => self.seen.push(r),
                Err(_) => panic!("no record for {what}; got {:#?}", self.seen),
            }
        }
    }

    /// Wait (bounded) for the run to end; its exit code and every record.
    fn finish(mut self) -> (i32, Vec<Record>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "watch-domains --follow did not end"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(r) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(r);
        }
        (code, self.seen)
    }
}

fn is_event(r: &Record, detail: &str) -> bool {
    r.details.get("vir_domain_event").and_then(|v| v.as_str()) == Some(detail)
        && r.event.as_deref() == Some("lifecycle")
}

#[test]
fn follow_reports_events_as_they_happen_and_resyncs_after_the_daemon_restarts() {
    let _turn = one_daemon_at_a_time();
    if !can_run_libvirtd() {
        return;
    }
    let mut daemon = Daemon::start("wd-follow");
    let uri = daemon.uri();
    let state = daemon
        .dir
        .0
        .join("domains.json")
        .to_string_lossy()
        .into_owned();
    let mut follower = Follower::start(&["--connect", &uri, "--follow", "12s", "--state", &state]);
    let first = follower.wait_for("the first look", |r| {
        r.target == TEST_UUID && r.event.is_none()
    });
    assert_eq!(first.details["state"], "running");

    daemon.virsh(&["suspend", "test"]);
    daemon.virsh(&["resume", "test"]);
    daemon.virsh(&["destroy", "test"]);
    let paused = follower.wait_for("SUSPENDED_PAUSED", |r| is_event(r, "SUSPENDED_PAUSED"));
    assert_eq!(paused.status, Status::Warning);
    assert!(
        !paused.details.contains_key("masakari"),
        "masakari filters a user pause out"
    );
    follower.wait_for("RESUMED_UNPAUSED", |r| is_event(r, "RESUMED_UNPAUSED"));
    let stopped = follower.wait_for("STOPPED_DESTROYED", |r| is_event(r, "STOPPED_DESTROYED"));
    assert_eq!(
        stopped.details["masakari"]["payload"],
        serde_json::json!({"event": "LIFECYCLE", "instance_uuid": TEST_UUID, "vir_domain_event": "STOPPED_DESTROYED"})
    );
    assert_eq!(stopped.details["masakari_acts"], false);

    // The daemon dies; its test driver comes back with the domain running.
    daemon.kill();
    follower.wait_for("disconnected", |r| {
        r.event.as_deref() == Some("disconnected")
    });
    daemon.spawn();
    follower.wait_for("reconnected", |r| r.event.as_deref() == Some("reconnected"));
    let gap = follower.wait_for("the change in the gap", |r| {
        r.event.as_deref() == Some("changed") && r.target == TEST_UUID
    });
    assert_eq!(gap.details["from_state"], "shutoff");
    assert_eq!(gap.details["from_reason"], "destroyed");
    assert_eq!(gap.details["state"], "running");
    assert_eq!(gap.details["seen"], "while disconnected");

    let (code, all) = follower.finish();
    assert_eq!(
        code, 1,
        "the worst was a warning (pause, lost connection): {all:#?}"
    );
    // The state file holds the last look, for the next cron run.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state written"))
            .expect("json");
    assert_eq!(saved["seen"][&uri][0]["state"], "running");
}

#[test]
fn a_daemon_that_is_down_or_hangs_is_reported_within_the_deadline() {
    let _turn = one_daemon_at_a_time();
    if !can_run_libvirtd() {
        return;
    }
    let daemon = Daemon::start("wd-hang");
    let uri = daemon.uri();

    daemon.signal("-STOP");
    let run = run(WATCH_DOMAINS, &["--connect", &uri, "-t", "2"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let r = run.record();
    assert!(
        r.summary.contains("did not answer within 2.0 s"),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("connecting"), "{}", r.summary);
    daemon.signal("-CONT");

    // Hung after connecting: keepalive notices, and --follow still ends by -t.
    let mut follower = Follower::start(&[
        "--connect",
        &uri,
        "--follow",
        "30s",
        "--keepalive",
        "1s",
        "-t",
        "8",
    ]);
    follower.wait_for("the first look", |r| r.target == TEST_UUID);
    daemon.signal("-STOP");
    follower.wait_for("disconnected", |r| {
        r.event.as_deref() == Some("disconnected")
    });
    let (code, all) = follower.finish();
    assert_eq!(code, 2, "{all:#?}");
    assert!(
        all.iter()
            .any(|r| r.status == Status::Critical && r.name == "libvirt"),
        "the end says libvirt is unreachable: {all:#?}"
    );
    daemon.signal("-CONT");

    let gone = daemon.socket();
    drop(daemon);
    let run = crate::common::run(
        WATCH_DOMAINS,
        &[
            "--connect",
            &format!("test+unix:///default?socket={}", gone.display()),
        ],
    );
    assert_eq!(run.code, 2);
    let r = run.record();
    assert!(
        r.summary.starts_with("cannot connect to libvirt"),
        "{}",
        r.summary
    );
}

#[test]
fn follow_pings_guest_agents_on_an_interval() {
    let dir = TempDir::new("wd-follow-agent");
    let uri = four_domains(&dir);
    let run = run(
        WATCH_DOMAINS,
        &[
            "--connect",
            &uri,
            "--follow",
            "1s",
            "--heartbeat",
            "--agent-every",
            "300ms",
        ],
    );
    let records = run.records();
    let pings = records.iter().filter(|r| r.name == "web1/agent").count();
    assert!(
        (2..=5).contains(&pings),
        "one ping per 300 ms for a second: {records:#?}"
    );
    assert_eq!(run.code, 2, "boom is crashed");
}

/// kill -9 at watch-domains' write point: a run killed right after saving
/// what it saw has its view kept, so a crash seen by that run is not
/// reported again by the next; runs killed at arbitrary moments leave a
/// state the next run reads, with nothing set aside.
#[test]
fn kill_9_after_the_state_write_reports_a_change_once() {
    let dir = TempDir::new("wd-drill");
    let uri = four_domains(&dir);
    let state = dir.0.join("domains.json").to_string_lossy().into_owned();
    let args = ["--connect", uri.as_str(), "--state", state.as_str()];
    let first = run(WATCH_DOMAINS, &args);
    assert!(first.records().iter().all(|r| r.event.is_none()));
    dir.write(
        "node.xml",
        &node_xml(&[
            ("web1", WEB, 6, true),
            ("db1", DB, 3, false),
            ("boom", BOOM, 6, false),
            ("off1", OFF, 5, false),
        ]),
    );
    let killed = crate::common::run_env(WATCH_DOMAINS, &args, &[(skyprobe::state::DRILL_ENV, "1")]);
    assert_eq!(killed.code, -1, "killed after its state write");
    assert!(
        killed.stdout.contains("\"changed\""),
        "the killed run saw the crash: {}",
        killed.stdout
    );
    crate::common::kill_after(WATCH_DOMAINS, &args, &[], &[0, 5, 15, 40]);
    let next = run(WATCH_DOMAINS, &args);
    let records = next.records();
    assert!(
        records.iter().all(|r| r.event.is_none()),
        "the change was reported once, by the killed run: {records:#?}"
    );
}
