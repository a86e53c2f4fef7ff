//! The kill -9 drill for the binaries that keep a `--state` file
//! (probe-http's counters, watch-procs' restart back-off; probe-host's
//! samples are drilled in verdict.rs, notify's spool in notify.rs and
//! evacuate's journal in evacuate.rs): a run killed right after its write
//! point (`SKYPROBE_DRILL_KILL_AFTER_WRITES`) has its work counted by the
//! next run, and runs killed at arbitrary moments — in the middle of a
//! write among them — leave a state the next run reads without setting
//! anything aside, and no temporary files behind. Records of what a run did
//! are printed before the state that makes them old news is saved.

use crate::common::*;
use crate::watch_procs::WATCH_PROCS;

/// `runs` runs of `bin`, killed over a spread of delays up to `spread_ms`.
fn kill_at_random_moments(bin: &str, args: &[&str], runs: u64, spread_ms: u64) -> usize {
    let delays: Vec<u64> = (0..runs).map(|i| i * spread_ms / runs.max(1)).collect();
    kill_after(bin, args, &[], &delays)
}

/// Temporary files left next to `state` (`.NAME.tmp.PID`).
fn leftovers(dir: &TempDir, name: &str) -> Vec<String> {
    std::fs::read_dir(&dir.0)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with(&format!(".{name}.tmp.")) || f.contains(".corrupt"))
        .collect()
}

fn state_file_notes(run: &Run) -> Vec<String> {
    run.records()
        .into_iter()
        .filter(|r| r.event.as_deref() == Some("state_file"))
        .map(|r| r.summary)
        .collect()
}

#[test]
fn probe_http_counters_survive_kill_9_after_the_write_and_at_any_moment() {
    let dir = TempDir::new("drill-http");
    let state = dir.0.join("ph.json").to_string_lossy().into_owned();
    // Nothing listens on the discard port of loopback: refused, CRITICAL.
    let args = ["http://127.0.0.1:9/", "--state", &state, "-t", "5"];
    let first = run_env(PROBE_HTTP, &args, &[(skyprobe::state::DRILL_ENV, "1")]);
    assert_eq!(first.code, -1, "killed after its state write");
    let second = run(PROBE_HTTP, &args);
    assert_eq!(second.code, 2, "{}", second.stdout);
    assert!(state_file_notes(&second).is_empty());
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    let t = &saved["targets"]["http://127.0.0.1:9/"];
    assert_eq!(t["fail_count"], 2, "the killed run's failure counted: {t}");
    assert_eq!(t["consecutive_failures"], 2);

    let killed = kill_at_random_moments(PROBE_HTTP, &args, 24, 60);
    assert!(killed > 0, "some runs were cut");
    let after = run(PROBE_HTTP, &args);
    assert_eq!(after.code, 2);
    assert!(
        state_file_notes(&after).is_empty(),
        "{:?}",
        state_file_notes(&after)
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    let t = &saved["targets"]["http://127.0.0.1:9/"];
    let fails = t["fail_count"].as_u64().expect("fail_count");
    assert!(
        (3..=27).contains(&fails),
        "each run counted at most once: {fails}"
    );
    assert_eq!(t["consecutive_failures"].as_u64(), Some(fails));
    assert_eq!(leftovers(&dir, "ph.json"), Vec::<String>::new());
}

#[test]
fn watch_procs_back_off_survives_kill_9_after_the_write_and_at_any_moment() {
    let dir = TempDir::new("drill-procs");
    let counter = dir.0.join("attempts");
    let config = dir.write(
        "procs.toml",
        &format!(
            "[[process]]\nname = \"dead\"\ncmdline = \"not here\"\nrestart = \"echo x >> {}; exit 1\"\nshell = true\nrestart_retries = 1\n",
            counter.display()
        ),
    );
    let state = dir.0.join("wp.json").to_string_lossy().into_owned();
    let args = [
        "--config",
        &config,
        "--state",
        &state,
        "--backoff",
        "1h",
        "-t",
        "10",
    ];
    let first = run_env(WATCH_PROCS, &args, &[(skyprobe::state::DRILL_ENV, "1")]);
    assert_eq!(first.code, -1, "killed after its state write");
    assert!(
        first.stdout.contains("\"restart_failed\""),
        "the attempt's record was out before the state that counts it: {}",
        first.stdout
    );
    let attempts = || {
        std::fs::read_to_string(&counter)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(attempts(), 1);
    let second = run(WATCH_PROCS, &args);
    assert_eq!(second.code, 2, "{}", second.stdout);
    assert!(state_file_notes(&second).is_empty());
    assert_eq!(
        attempts(),
        1,
        "the back-off written before the kill holds: not restarted again"
    );

    kill_at_random_moments(WATCH_PROCS, &args, 16, 80);
    let after = run(WATCH_PROCS, &args);
    assert_eq!(after.code, 2);
    assert!(
        state_file_notes(&after).is_empty(),
        "{:?}",
        state_file_notes(&after)
    );
    assert_eq!(attempts(), 1, "still backing off");
    assert_eq!(leftovers(&dir, "wp.json"), Vec::<String>::new());
}
