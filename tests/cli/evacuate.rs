//! evacuate against the real Nova of scripts/openstack.sh: the interlocks
//! that keep it from acting, and a dead host's instances moved, verified
//! through their migrations, never twice, and the host re-enabled after.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::verdict::{fleet, Continue};
use skyprobe::report::{Record, Status};

pub const EVACUATE: &str = env!("CARGO_BIN_EXE_evacuate");

/// evacuate with `input` on stdin.
fn run_stdin(args: &[&str], env: &[(&str, &str)], input: &str) -> Run {
    let dir = TempDir::new("evacuate-stdin");
    let path = dir.write("in.jsonl", input);
    let mut cmd = Command::new(EVACUATE);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::from(std::fs::File::open(&path).expect("input")));
    execute(cmd, env, Instant::now())
}

fn find<'a>(rs: &'a [Record], target: &str, event: &str) -> &'a Record {
    rs.iter()
        .find(|r| r.target == target && r.event.as_deref() == Some(event))
        .unwrap_or_else(|| panic!("no {event} record for {target} in {rs:#?}"))
}

/// The targets of the instance records, in output order.
fn rs_order(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
        .filter(|r| r.event.as_deref() == Some("instance"))
        .map(|r| r.target)
        .collect()
}

fn interlock<'a>(r: &'a Record, name: &str) -> &'a serde_json::Value {
    r.details["interlocks"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["interlock"] == name))
        .unwrap_or_else(|| panic!("no interlock {name} in {r:?}"))
}

/// evacuate's --probe for a fleet's hosts on the test stack: one sample,
/// its shortened down times, bounded waits.
fn probe_flags(f: &crate::verdict::Fleet, stack: &Stack, sdt: &str) -> String {
    format!(
        "--hosts {} --state {} --openstack --samples 1 --service-down-time {sdt} --agent-down-time {}s --probe-timeout 1s -n 2 -I 20ms --icmp-wait 500ms -t 10",
        f.path("hosts.toml"),
        f.path("verdict.json"),
        stack.var("OS_AGENT_DOWN_TIME"),
    )
}

#[test]
fn evacuate_refuses_patterns_and_acting_without_its_interlocks() {
    // No cloud needed to refuse these.
    for (args, says) in [
        (vec!["compute*"], "never a pattern"),
        (vec!["compute[0-9]"], "never a pattern"),
        (vec!["compute1", "--execute"], "--state FILE"),
        (
            vec!["compute1", "--execute", "--state", "/tmp/x.json"],
            "--probe",
        ),
        (
            vec![
                "compute1",
                "--execute",
                "--state",
                "/tmp/x.json",
                "--probe",
                "-H x",
            ],
            "--fence",
        ),
        (vec!["compute1", "--no-fence"], "--i-understand-unfenced"),
        (vec!["compute1", "--probe", "--no-such-flag"], "--probe"),
        (vec!["compute1", "--every", "1m"], "acts once"),
        (vec!["--reenable", "compute1"], "--state"),
    ] {
        let r = run_clean(
            EVACUATE,
            &args,
            &[
                ("OS_AUTH_URL", "http://127.0.0.1:9/v3"),
                ("OS_USERNAME", "u"),
                ("OS_PASSWORD", "p"),
                ("OS_PROJECT_NAME", "p"),
            ],
        );
        assert_eq!(r.code, 3, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{args:?}: {}", r.stderr);
    }
    // Verdicts piped in with none dead: nothing to do, and no cloud asked
    // for (none is configured here); a dead one needs the cloud.
    let alive = r#"{"ts":"2026-12-04T19:00:00Z","host":"m","check":"probe-host","target":"compute1","name":"compute1","status":"ok","summary":"alive","duration_ms":1.0,"metrics":[],"trace":[],"details":{"verdict":"alive"},"labels":{}}"#;
    let r = run_stdin(&[], &[], &format!("{alive}\n"));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("no dead host in the verdicts read: nothing to evacuate"),
        "{}",
        r.stdout
    );
    let dead = alive.replace("\"alive\"}", "\"dead\"}");
    let r = run_stdin(&[], &[], &format!("{dead}\n"));
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no cloud"), "{}", r.stderr);
}

#[test]
fn evacuate_refuses_the_journal_of_another_cloud() {
    let dir = TempDir::new("evacuate-cloud");
    let state = dir.write(
        "e.json",
        "{\"cloud\": \"http://keystone.other:5000\", \"hosts\": {}, \"history\": []}",
    );
    let before = std::fs::read_to_string(&state).expect("journal");
    let r = run_clean(
        EVACUATE,
        &["compute1", "--state", &state],
        &[
            ("OS_AUTH_URL", "http://127.0.0.1:9/v3"),
            ("OS_USERNAME", "u"),
            ("OS_PASSWORD", "p"),
            ("OS_PROJECT_NAME", "p"),
        ],
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("the journal of another cloud (http://keystone.other:5000)"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("another cloud"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&state).expect("journal"),
        before,
        "the journal was changed"
    );
}

#[test]
fn evacuate_moves_a_dead_hosts_instances_once_and_reenables_it() {
    let _one = crate::keystone::KEYSTONE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(stack) = Stack::get() else { return };
    if !can_netns() {
        return;
    }
    let f = fleet("ev", 223, 3);
    let cache = f.path("cache");
    let env = stack.env(&cache);
    let state = f.path("evacuate.json");
    let fence_log = f.path("fence.log");
    let sdt = format!("{}s", stack.var("OS_SERVICE_DOWN_TIME"));
    let probe = probe_flags(&f, &stack, &sdt);
    let fence = format!("sh -c 'echo off {{host}} >> {fence_log}'");
    let evacuate = |extra: &[&str]| {
        let mut args = vec![
            "--state",
            &state,
            "--probe",
            &probe,
            "--fence",
            &fence,
            "--service-down-time",
            &sdt,
            "--tagged",
            "evacuable=true",
            "--priority-key",
            "prio",
            "--reserved",
            "compute3",
            "--stagger",
            "100ms",
            "--instance-timeout",
            "120s",
            "-t",
            "200",
        ];
        args.extend_from_slice(extra);
        run_clean(EVACUATE, &args, &env)
    };
    let tag = format!("ev{}", std::process::id());
    let mut ids = Vec::new();
    for (name, md) in [
        (format!("{tag}-a"), serde_json::json!({"evacuable": "true"})),
        (
            format!("{tag}-b"),
            serde_json::json!({"evacuable": "True", "prio": "10"}),
        ),
        (format!("{tag}-c"), serde_json::json!({})),
        (format!("{tag}-e"), serde_json::json!({"evacuable": "true"})),
    ] {
        ids.push(stack.boot(&name, "compute1", &md));
    }
    // compute10's instance, tagged too: Nova matches "compute1" inside
    // "compute10" in some queries; evacuate must never touch it.
    let hosts: Vec<&str> = stack.var("OS_HOSTS").split(',').collect();
    assert!(
        hosts.contains(&"compute10"),
        "the test stack needs a compute10 beside compute1 (scripts/test.sh starts one): {hosts:?}"
    );
    let other = stack.boot(
        &format!("{tag}-x"),
        "compute10",
        &serde_json::json!({"evacuable": "true"}),
    );
    // compute3 is a reserved host: disabled until a failure needs it.
    stack.set_compute("compute3", Some("reserved for failures"));
    struct Enable<'a>(&'a Stack);
    impl Drop for Enable<'_> {
        fn drop(&mut self) {
            self.0.set_compute("compute3", None);
        }
    }
    let _enable = Enable(&stack);
    // b is stopped (it must stay stopped), e is in ERROR (Nova rebuilds it).
    stack.act_on(&ids[1], &serde_json::json!({"os-stop": null}), "SHUTOFF");
    stack.act_on(
        &ids[3],
        &serde_json::json!({"os-resetState": {"state": "error"}}),
        "ERROR",
    );
    struct Cleanup<'a>(&'a Stack, Vec<String>);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            self.0.delete(&self.1);
        }
    }
    let mut all = ids.clone();
    all.push(other.clone());
    let _clean = Cleanup(&stack, all);

    // Unknown hosts and malformed records: exit 3, nothing done.
    let r = evacuate(&["compute9", "--fence-status", "echo off"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("no nova-compute service is named compute9"),
        "{}",
        r.stdout
    );
    let r = run_stdin(
        &["--state", &state, "--service-down-time", &sdt],
        &env,
        "not json\n{\"check\":\"probe-host\",\"target\":\"compute2\",\"name\":\"compute2\",\"status\":\"OK\",\"summary\":\"\",\"details\":{\"verdict\":\"alive\"}}\n",
    );
    let rs = r.records();
    assert!(
        rs.iter().any(
            |r| r.status == Status::Unknown && r.summary.contains("stdin line 1: not a record")
        ),
        "{}",
        r.stdout
    );
    assert_eq!(r.code, 3, "{}", r.stdout);

    // compute1 alive: the plan says which interlocks fail; --execute
    // changes nothing and the fence is never run.
    let plan = evacuate(&["compute1", "--fence-status", "echo 'Chassis Power is off'"]);
    let rs = plan.records();
    let summary = find(&rs, "compute1", "plan");
    assert_eq!(interlock(summary, "nova")["ok"], false, "{summary:?}");
    assert_eq!(interlock(summary, "verdict")["ok"], false, "{summary:?}");
    assert_eq!(summary.details["evacuable"], 3, "{summary:?}");
    let cap = interlock(summary, "capacity");
    assert_eq!(cap["ok"], true, "{summary:?}");
    assert!(
        cap["why"]
            .as_str()
            .unwrap_or("")
            .starts_with("3 instances ("),
        "{cap}"
    );
    assert!(rs
        .iter()
        .any(|r| r.target == ids[2] && r.details["evacuable"] == false));
    assert!(
        !rs.iter().any(|r| r.target == other),
        "compute10's instance in compute1's plan: {}",
        plan.stdout
    );
    let r = evacuate(&[
        "compute1",
        "--execute",
        "--fence-status",
        "echo 'Chassis Power is off'",
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        !std::path::Path::new(&fence_log).exists(),
        "fenced an alive host"
    );
    assert!(!r.stdout.contains(stack.var("KEYSTONE_ADMIN_PASSWORD")));

    // compute1 dies: its nova-compute and agent stopped, its link down.
    let mut stopped = Continue(&stack, Vec::new());
    for w in ["nova-compute-compute1", "metadata-agent-compute1"] {
        stack.signal(w, "STOP");
        stopped.1.push(w.to_string());
    }
    f.kill(1);
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let plan = evacuate(&["compute1", "--fence-status", "echo 'Chassis Power is off'"]);
        let rs = plan.records();
        let s = find(&rs, "compute1", "plan");
        if interlock(s, "nova")["ok"] == true && interlock(s, "verdict")["ok"] == true {
            break;
        }
        assert!(Instant::now() < until, "compute1 never looked dead: {s:?}");
        std::thread::sleep(Duration::from_secs(2));
    }

    // The partition guard: more computes down than --max-down-percent
    // allows (here one of three against 10 %) holds everything.
    let plan = evacuate(&[
        "compute1",
        "--max-down-percent",
        "10",
        "--fence-status",
        "echo off",
    ]);
    let rs = plan.records();
    let s = find(&rs, "compute1", "plan");
    assert_eq!(interlock(s, "fleet")["ok"], false, "{s:?}");
    assert!(
        s.summary.contains(&format!(
            "fleet: 1 of {} nova-compute services down",
            hosts.len()
        )),
        "{s:?}"
    );

    // A fence that cannot read power off back: nothing forced down.
    let r = evacuate(&[
        "compute1",
        "--execute",
        "--fence-status",
        "echo 'Chassis Power is on'",
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let rs = r.records();
    assert!(find(&rs, "compute1", "fence")
        .summary
        .contains("power off not read back"));
    assert!(
        !rs.iter().any(|r| r.event.as_deref() == Some("force_down")),
        "{}",
        r.stdout
    );

    // kill -9 once the first instance is submitted (one at a time, 3 s
    // apart): the next run finishes the work from the journal.
    let mut cmd = Command::new(EVACUATE);
    cmd.args([
        "compute1",
        "--execute",
        "--state",
        &state,
        "--probe",
        &probe,
        "--fence",
        &fence,
    ])
    .args([
        "--fence-status",
        "echo 'Chassis Power is off'",
        "--service-down-time",
        &sdt,
    ])
    .args(["--priority-key", "prio", "--reserved", "compute3"])
    .args([
        "--tagged",
        "evacuable=true",
        "--concurrency",
        "1",
        "--stagger",
        "3s",
        "-t",
        "200",
    ])
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("evacuate starts");
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let journal = std::fs::read_to_string(&state).unwrap_or_default();
        if journal.contains("\"submitted\"") {
            break;
        }
        assert!(Instant::now() < until, "nothing submitted: {journal}");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "evacuate ended before submitting: {journal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();

    // Now it moves: the tagged instances onto the reserved host, the
    // untagged one left. --stop-evacuated asks for 2.95, which this Nova
    // (2.93) refuses with 406: the power states are kept and it says so.
    let r = evacuate(&[
        "compute1",
        "--execute",
        "--stop-evacuated",
        "--fence-status",
        "echo 'Chassis Power is off'",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let a = r
        .records()
        .into_iter()
        .find(|x| x.target == ids[0] && x.event.as_deref() == Some("instance"))
        .expect("a's record");
    assert!(
        a.trace
            .iter()
            .any(|t| t.step == "microversion"
                && t.detail.as_deref().unwrap_or("").contains("HTTP 406")),
        "{a:?}"
    );
    // The higher group (b, prio 10) is finished before the others begin.
    let at = |id: &str| {
        rs_order(&r.stdout)
            .iter()
            .position(|t| t == id)
            .unwrap_or_else(|| panic!("no instance record for {id}"))
    };
    assert!(
        at(&ids[1]) < at(&ids[0]) && at(&ids[1]) < at(&ids[3]),
        "{}",
        r.stdout
    );
    // Each evacuated exactly once, as Nova counts it; compute10's never.
    assert_eq!(stack.evacuations(&ids), [1, 1, 0, 1], "{}", r.stdout);
    assert_eq!(stack.evacuations(std::slice::from_ref(&other)), [0]);
    let (_, x) = stack.call("compute", "GET", &format!("/servers/{other}"), None);
    assert_eq!(x["server"]["OS-EXT-SRV-ATTR:host"], "compute10", "{x}");
    assert_eq!(x["server"]["locked"], false, "{x}");
    crate::schema::assert_valid(&crate::schema::validator(), &r.stdout);
    let rs = r.records();
    for id in [&ids[0], &ids[1], &ids[3]] {
        let rec = find(&rs, id, "instance");
        assert_eq!(rec.status, Status::Ok, "{rec:?}");
        // All to the reserved host (--reserved: reserved_host recovery).
        assert_eq!(rec.details["moved_to"], "compute3", "{rec:?}");
        assert!(rec.details["migration"].as_u64().is_some(), "{rec:?}");
        // Nova's request id of each evacuate call, for its logs.
        let rids = rec.details["request_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            !rids.is_empty()
                && rids
                    .iter()
                    .all(|r| r.as_str().is_some_and(|r| r.starts_with("req-"))),
            "{rec:?}"
        );
    }
    let journal = std::fs::read_to_string(&state).unwrap_or_default();
    let journal: serde_json::Value = serde_json::from_str(&journal).expect("journal");
    let job = &journal["hosts"]["compute1"]["instances"][&ids[0]];
    assert!(
        job["request_ids"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("req-")),
        "the journal keeps them: {job}"
    );
    assert!(!rs
        .iter()
        .any(|r| r.target == ids[2] && r.event.as_deref() == Some("instance")));
    assert!(std::fs::read_to_string(&fence_log)
        .unwrap_or_default()
        .contains("off compute1"));
    let s = find(&rs, "compute1", "summary");
    assert_eq!(s.details["failed"], 0, "{s:?}");
    // The stopped one stays stopped; the one in ERROR is rebuilt running.
    assert!(
        find(&rs, &ids[1], "instance").summary.contains(", SHUTOFF"),
        "{}",
        r.stdout
    );
    assert!(
        find(&rs, &ids[3], "instance").summary.contains(", ACTIVE"),
        "{}",
        r.stdout
    );

    // Again: the journal says it is done; the cooldown keeps it from
    // being evacuated twice.
    let r = evacuate(&[
        "compute1",
        "--execute",
        "--fence-status",
        "echo 'Chassis Power is off'",
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("cooldown: compute1 was evacuated"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("\"event\":\"instance\""), "{}", r.stdout);

    // The brake: one host per hour by default, so another is held.
    let plan = evacuate(&["compute2", "--fence-status", "echo off"]);
    let rs = plan.records();
    let s = find(&rs, "compute2", "plan");
    assert_eq!(interlock(s, "brakes")["ok"], false, "{s:?}");
    assert!(
        s.summary
            .contains("brake: 1 evacuation begun in the last 1h"),
        "{s:?}"
    );

    // Re-enabling waits for its nova-compute to report again.
    let reenable = |t: &str| {
        run_clean(
            EVACUATE,
            &[
                "--reenable",
                "compute1",
                "--state",
                &state,
                "--service-down-time",
                &sdt,
                "-t",
                t,
            ],
            &env,
        )
    };
    let r = reenable("15");
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("not reporting"), "{}", r.stdout);
    // It comes back: its nova-compute restarted (which cleans up what was
    // evacuated off it) and its agent continued.
    stack.restart_compute("compute1");
    for w in &stopped.1 {
        stack.signal(w, "CONT");
    }
    stopped.1.clear();
    f.revive(1);
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let r = reenable("30");
        if r.code == 0 {
            assert!(
                r.stdout.contains("force-down unset and enabled"),
                "{}",
                r.stdout
            );
            break;
        }
        assert!(
            Instant::now() < until,
            "never re-enabled: {}{}",
            r.stdout,
            r.stderr
        );
        std::thread::sleep(Duration::from_secs(3));
    }
}

#[test]
fn evacuate_reads_the_tag_from_the_flavor_and_the_image_with_the_servers_metadata_first() {
    let _one = crate::keystone::KEYSTONE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(stack) = Stack::get() else { return };
    let dir = TempDir::new("evacuate-tags");
    let cache = dir.0.join("cache").display().to_string();
    let env = stack.env(&cache);
    let tag = format!("et{}", std::process::id());
    let (flavor, image) = stack.tagged_flavor_and_image(&tag, "evacuable", "true");
    let (plain_image, plain_flavor) = (stack.var("OS_IMAGE_ID"), stack.var("OS_FLAVOR_ID"));
    let none = serde_json::json!({});
    let ids = vec![
        // Tagged by its flavor's extra specs.
        stack.boot_with(&format!("{tag}-f"), "compute2", &none, plain_image, &flavor),
        // Tagged by its image's properties.
        stack.boot_with(&format!("{tag}-i"), "compute2", &none, &image, plain_flavor),
        // Its own metadata opts it out of what its image opts in.
        stack.boot_with(
            &format!("{tag}-o"),
            "compute2",
            &serde_json::json!({"evacuable": "false"}),
            &image,
            plain_flavor,
        ),
        // Tagged nowhere.
        stack.boot(&format!("{tag}-n"), "compute2", &none),
    ];
    struct Cleanup<'a>(&'a Stack, Vec<String>);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            self.0.delete(&self.1);
        }
    }
    let _clean = Cleanup(&stack, ids.clone());
    // The plan only (compute2 is up, so nothing could be done anyway).
    let plan = |extra: &[&str]| {
        let mut args = vec!["compute2", "--tagged", "evacuable=true", "-t", "60"];
        args.extend_from_slice(extra);
        let run = run_clean(EVACUATE, &args, &env);
        let rs = run.records();
        ids.iter()
            .map(|id| {
                let r = find(&rs, id, "plan");
                (
                    r.details.get("evacuable") == Some(&serde_json::json!(true)),
                    r.details
                        .get("why")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let got = plan(&[]);
    let evacuable: Vec<bool> = got.iter().map(|(e, _)| *e).collect();
    assert_eq!(evacuable, [true, true, false, false], "{got:?}");
    assert!(got[2].1.contains("in its metadata"), "{got:?}");
    assert!(got[3].1.starts_with("not tagged evacuable"), "{got:?}");
    // Only the metadata, as masakari reads it: neither flavor nor image counts.
    let got = plan(&["--tag-sources", "metadata"]);
    assert!(got.iter().all(|(e, _)| !e), "{got:?}");
    let got = plan(&["--tag-sources", "flavor,image"]);
    let evacuable: Vec<bool> = got.iter().map(|(e, _)| *e).collect();
    assert_eq!(evacuable, [true, true, true, false], "{got:?}");
    // The ceilings per zone and per aggregate read Nova's zones and
    // aggregates, and hold nothing back with an empty journal.
    let state = dir.0.join("evacuate.json").display().to_string();
    let run = run_clean(
        EVACUATE,
        &[
            "compute2",
            "--state",
            &state,
            "--max-hosts-per-zone",
            "1",
            "--max-hosts-per-aggregate",
            "1",
            "-t",
            "60",
        ],
        &env,
    );
    let rs = run.records();
    let brakes = interlock(find(&rs, "compute2", "plan"), "brakes");
    assert_eq!(brakes["ok"], true, "{brakes}");
    assert!(
        brakes["why"]
            .as_str()
            .is_some_and(|w| w.contains("--max-hosts-per-zone 1, --max-hosts-per-aggregate 1")),
        "{brakes}"
    );
    // A source that is not one: exit 3, one line.
    let bad = run_clean(
        EVACUATE,
        &[
            "compute2",
            "--tagged",
            "evacuable",
            "--tag-sources",
            "volume",
        ],
        &env,
    );
    assert_eq!(bad.code, 3, "{}{}", bad.stdout, bad.stderr);
}

#[test]
fn evacuate_killed_after_each_of_its_writes_finishes_the_work_once() {
    use std::os::unix::process::ExitStatusExt;
    let _one = crate::keystone::KEYSTONE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(stack) = Stack::get() else { return };
    if !can_netns() {
        return;
    }
    let f = fleet("dr", 224, 3);
    let cache = f.path("cache");
    let env = stack.env(&cache);
    let state = f.path("evacuate.json");
    let sdt = format!("{}s", stack.var("OS_SERVICE_DOWN_TIME"));
    let probe = probe_flags(&f, &stack, &sdt);
    let fenced_by = |fence: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "compute2",
            "--state",
            &state,
            "--probe",
            &probe,
            "--fence",
            fence,
            "--fence-status",
            "echo 'Chassis Power is off'",
            "--service-down-time",
            &sdt,
            "--concurrency",
            "2",
            "--stagger",
            "0s",
            "--instance-timeout",
            "120s",
            "-t",
            "200",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let args = |extra: &[&str]| fenced_by("true", extra);
    let tag = format!("dr{}", std::process::id());
    let none = serde_json::json!({});
    let ids: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| stack.boot(&format!("{tag}-{n}"), "compute2", &none))
        .collect();
    stack.act_on(&ids[1], &serde_json::json!({"os-stop": null}), "SHUTOFF");
    // Whatever happens, compute2 is up and enabled for the tests after.
    struct Restore<'a>(&'a Stack, Vec<String>);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            self.0.delete(&self.1);
            if std::thread::panicking() {
                self.0.restart_compute("compute2");
                let _ = self.0.signal_quiet("metadata-agent-compute2", "CONT");
                let (_, s) = self.0.call(
                    "compute",
                    "GET",
                    "/os-services?binary=nova-compute&host=compute2",
                    None,
                );
                // Nova refuses (400) until the restarted compute has
                // cleaned up what was evacuated off it.
                if let Some(id) = s["services"][0]["id"].as_str() {
                    let up = serde_json::json!({"forced_down": false, "status": "enabled"});
                    let path = format!("/os-services/{id}");
                    for _ in 0..60 {
                        if self.0.call("compute", "PUT", &path, Some(&up)).0 == 200 {
                            break;
                        }
                        std::thread::sleep(Duration::from_secs(2));
                    }
                }
            }
        }
    }
    let _restore = Restore(&stack, ids.clone());

    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_clean(EVACUATE, &a, &env)
    };
    let forced_down = || {
        let (_, svc) = stack.call(
            "compute",
            "GET",
            "/os-services?binary=nova-compute&host=compute2",
            None,
        );
        svc["services"][0]["forced_down"] == true
    };

    // compute2 dies, and so, for a while, does the only nova-scheduler:
    // with no scheduler up nothing is done.
    let scheduler = Continue(&stack, vec!["nova-scheduler".to_string()]);
    stack.signal("nova-scheduler", "STOP");
    stack.signal("nova-compute-compute2", "STOP");
    stack.signal("metadata-agent-compute2", "STOP");
    f.kill(2);
    let plan_until = |what: &str, ready: &dyn Fn(&Record) -> bool| {
        let until = Instant::now() + Duration::from_secs(90);
        loop {
            let plan = run(args(&[]));
            let rs = plan.records();
            let s = find(&rs, "compute2", "plan").clone();
            if ready(&s) {
                break s;
            }
            assert!(Instant::now() < until, "{what}: {s:?}");
            std::thread::sleep(Duration::from_secs(2));
        }
    };
    plan_until("compute2 dead, no scheduler up", &|s| {
        interlock(s, "nova")["ok"] == true
            && interlock(s, "verdict")["ok"] == true
            && interlock(s, "scheduler")["ok"] == false
    });
    let r = run(args(&["--execute"]));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("nova-scheduler up"), "{}", r.stdout);
    assert!(!forced_down(), "forced down with no scheduler");
    drop(scheduler);
    plan_until("the scheduler back", &|s| {
        interlock(s, "nova")["ok"] == true
            && interlock(s, "verdict")["ok"] == true
            && interlock(s, "scheduler")["ok"] == true
    });

    // A BMC that does not answer, and a fence command that fails: the
    // host is left as it is.
    let r = run(fenced_by(
        "sleep 30",
        &["--execute", "--fence-timeout", "2s"],
    ));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let fence = r.records();
    let fence = find(&fence, "compute2", "fence");
    assert!(
        fence.summary.contains("did not finish within")
            && fence.summary.contains("nothing forced down"),
        "{fence:?}"
    );
    let r = run(fenced_by("false", &["--execute"]));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("the fence command failed (exit 1); nothing forced down"),
        "{}",
        r.stdout
    );
    assert!(!forced_down(), "forced down without a fence");

    // The drill: run k is killed (SIGKILL, by itself) right after its k-th
    // write — the verdict, the token cache, each journal step — and run
    // k + 1 takes over from what the journal says, until one finishes.
    let mut killed = 0;
    let mut seen = std::collections::BTreeSet::new();
    let reenable = || {
        run_clean(
            EVACUATE,
            &[
                "--reenable",
                "compute2",
                "--state",
                &state,
                "--service-down-time",
                &sdt,
                "-t",
                "30",
            ],
            &env,
        )
    };
    let mut back = false;
    let finished = 'walk: {
        for k in 1..=120 {
            let mut cmd = Command::new(EVACUATE);
            cmd.args(args(&["--execute"]))
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env(skyprobe::state::DRILL_ENV, k.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for (key, v) in &env {
                cmd.env(key, v);
            }
            let out = cmd.output().expect("evacuate runs");
            if out.status.signal() == Some(9) {
                killed += 1;
                let journal = std::fs::read_to_string(&state).unwrap_or_default();
                let j: serde_json::Value = serde_json::from_str(&journal).unwrap_or_default();
                let mut steps = Vec::new();
                if let Some(jobs) = j["hosts"]["compute2"]["instances"].as_object() {
                    for job in jobs.values() {
                        steps.push(job["step"].as_str().unwrap_or("").to_string());
                    }
                }
                // compute2's nova-compute comes back mid-way, with an
                // evacuation in flight: it stays forced down, and
                // --reenable refuses until everything is finished.
                if !back && steps.iter().any(|s| s == "submitted") {
                    back = true;
                    stack.restart_compute("compute2");
                    stack.signal("metadata-agent-compute2", "CONT");
                    let r = reenable();
                    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
                    assert!(
                        r.stdout.contains("compute2: not re-enabled: "),
                        "{}",
                        r.stdout
                    );
                    let (_, svc) = stack.call(
                        "compute",
                        "GET",
                        "/os-services?binary=nova-compute&host=compute2",
                        None,
                    );
                    assert_eq!(svc["services"][0]["forced_down"], true, "{svc}");
                    assert_eq!(svc["services"][0]["status"], "disabled", "{svc}");
                }
                seen.extend(steps);
                continue;
            }
            break 'walk (k, out);
        }
        panic!("every run was killed: the drill never ended");
    };
    // The run not killed either finished the work, or (the one before it
    // killed after its very last write) found it finished: the cooldown.
    let (k, out) = finished;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code() == Some(0)
            || (out.status.code() == Some(2)
                && stdout.contains("cooldown: compute2 was evacuated")),
        "run {k}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal = std::fs::read_to_string(&state).unwrap_or_default();
    let j: serde_json::Value = serde_json::from_str(&journal).expect("the journal");
    let h = &j["hosts"]["compute2"];
    assert!(h["finished"].as_u64().is_some(), "{h}");
    for id in &ids {
        assert_eq!(h["instances"][id]["step"], "verified", "{h}");
        assert_eq!(h["instances"][id]["locked"], false, "{h}");
    }
    // It was killed at the windows that matter: a call being made, one
    // made and watched, one verified and not yet unlocked.
    for step in ["planned", "submitting", "submitted", "verified"] {
        assert!(seen.contains(step), "never killed at {step}: {seen:?}");
    }
    assert!(killed > 2 * ids.len(), "{killed} kills");
    eprintln!("drill: {killed} runs killed; steps seen at the kills: {seen:?}");
    // Each evacuated exactly once as Nova counts it, each on another host,
    // in the state it had, and none left locked.
    assert_eq!(stack.evacuations(&ids), [1, 1, 1], "{stdout}");
    for (id, want) in ids.iter().zip(["ACTIVE", "SHUTOFF", "ACTIVE"]) {
        let (_, s) = stack.call("compute", "GET", &format!("/servers/{id}"), None);
        let s = &s["server"];
        assert_ne!(s["OS-EXT-SRV-ATTR:host"], "compute2", "{s}");
        assert_eq!(s["status"], want, "{s}");
        assert_eq!(s["locked"], false, "{s}");
    }

    // compute2 is back (came back mid-way above) and is re-enabled once
    // its nova-compute reports and nothing is in flight.
    assert!(back, "no kill found an evacuation in flight");
    f.revive(2);
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let r = reenable();
        if r.code == 0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "never re-enabled: {}{}",
            r.stdout,
            r.stderr
        );
        std::thread::sleep(Duration::from_secs(3));
    }
}
