//! watch-procs against real processes: counting compared with pgrep, and
//! supervision that kills, restarts and re-verifies real processes.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use skyprobe::report::Status;

use crate::common::*;

pub const WATCH_PROCS: &str = env!("CARGO_BIN_EXE_watch-procs");

/// A copy of /bin/sleep under a name no other process has, so counts are
/// exact even while other tests run.
struct Sleeper {
    dir: TempDir,
    name: String,
    children: Vec<Child>,
}

impl Sleeper {
    fn new(tag: &str) -> Sleeper {
        let dir = TempDir::new(tag);
        // comm is cut at 15 bytes: keep the name short and unique.
        let name = format!("sp{}{}", &tag[..2], std::process::id() % 100_000);
        std::fs::copy("/bin/sleep", dir.0.join(&name)).expect("copy sleep");
        Sleeper {
            dir,
            name,
            children: Vec::new(),
        }
    }

    fn path(&self) -> String {
        self.dir.0.join(&self.name).to_string_lossy().into_owned()
    }

    fn spawn(&mut self, seconds: &str) {
        let child = Command::new(self.path())
            .arg(seconds)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        self.children.push(child);
    }

    fn kill_all(&self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-x", &self.name])
            .status();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.kill_all();
    }
}

fn pgrep_count(args: &[&str]) -> u64 {
    let out = Command::new("pgrep")
        .arg("-c")
        .args(args)
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn count_of(run: &Run) -> u64 {
    run.record().details["count"].as_u64().expect("count")
}

#[test]
fn counts_match_pgrep_on_the_same_filters() {
    let mut s = Sleeper::new("count");
    for _ in 0..3 {
        s.spawn("30");
    }
    s.spawn("31");
    let name = s.name.clone();
    let by_name = run(WATCH_PROCS, &["-C", &name]);
    assert_eq!(by_name.code, 0);
    assert_eq!(count_of(&by_name), 4);
    assert_eq!(count_of(&by_name), pgrep_count(&["-x", &name]));

    let args = format!("{} 31", s.path());
    let by_args = run(WATCH_PROCS, &["-a", &args]);
    assert_eq!(count_of(&by_args), 1);
    assert_eq!(count_of(&by_args), pgrep_count(&["-f", &args]));

    let regex = format!("{}.* 3[01]$", regex_escape(&name));
    let by_regex = run(WATCH_PROCS, &["--ereg-argument-array", &regex]);
    assert_eq!(count_of(&by_regex), pgrep_count(&["-f", &regex]));

    let me = std::process::id().to_string();
    let by_parent = run(WATCH_PROCS, &["-p", &me, "-C", &name]);
    assert_eq!(count_of(&by_parent), pgrep_count(&["-P", &me, "-x", &name]));

    let uid = nix_uid();
    let by_user = run(WATCH_PROCS, &["-u", &uid, "-C", &name]);
    assert_eq!(count_of(&by_user), pgrep_count(&["-u", &uid, "-x", &name]));

    // Other tests start and stop sleeps while this runs: the two views must
    // agree at least once in a few tries (bounded).
    let mut seen = Vec::new();
    let agreed = (0..10).any(|_| {
        let ours = count_of(&run(WATCH_PROCS, &["-C", "sleep", "-k"]));
        let pg = pgrep_count(&["-x", "sleep"]);
        seen.push((ours, pg));
        ours == pg
    });
    assert!(agreed, "watch-procs vs pgrep never agreed: {seen:?}");
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_alphanumeric() {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

fn nix_uid() -> String {
    let out = Command::new("id").arg("-u").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn zombies_are_counted_by_state() {
    // A child that exits and is not reaped yet is a zombie of this process.
    let mut child = Command::new("/bin/true").spawn().expect("spawn");
    let me = std::process::id().to_string();
    // Wait on the event: pgrep sees the zombie (bounded).
    let mut seen = 0;
    for _ in 0..200 {
        seen = pgrep_count(&["-r", "Z", "-P", &me]);
        if seen > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(seen > 0, "the zombie appeared");
    let run1 = run(WATCH_PROCS, &["-s", "Z", "-p", &me, "-w", "0", "-c", "100"]);
    assert_eq!(run1.code, 1, "{}", run1.stdout);
    assert_eq!(count_of(&run1), pgrep_count(&["-r", "Z", "-P", &me]));
    let _ = child.wait();
}

#[test]
fn count_thresholds_and_perfdata_like_check_procs() {
    let mut s = Sleeper::new("thresh");
    s.spawn("30");
    s.spawn("30");
    let nagios = run(
        WATCH_PROCS,
        &[
            "-C", &s.name, "-w", "1:1", "-c", "1:5", "--format", "nagios",
        ],
    );
    assert_eq!(nagios.code, 1);
    let first = nagios.stdout.lines().next().expect("line");
    assert_eq!(
        first,
        format!(
            "PROCS WARNING - 2 processes with command name '{}'|procs=2;1:1;1:5;0;",
            s.name
        )
    );
    let rss = run(
        WATCH_PROCS,
        &["-C", &s.name, "-m", "RSS", "-w", "1", "-c", "1000000"],
    );
    assert_eq!(rss.code, 1, "sleep uses more than 1 KiB: {}", rss.stdout);
    assert!(rss
        .record()
        .summary
        .starts_with("RSS: 2 warn, 0 crit out of 2 processes"));
}

#[test]
fn never_counts_itself() {
    let unique = format!("skyprobe-self-{}", std::process::id());
    let run1 = run(WATCH_PROCS, &["-a", &unique]);
    assert_eq!(count_of(&run1), 0);
}

fn write_config(dir: &TempDir, text: &str) -> String {
    dir.write("procs.toml", text)
}

#[test]
fn down_process_is_restarted_and_verified() {
    let s = Sleeper::new("restart");
    let config = write_config(
        &s.dir,
        &format!(
            "[[process]]\nname = \"sleeper\"\ncomm = \"{name}\"\nrestart = [\"setsid\", \"-f\", \"{path}\", \"300\"]\nverify_delay = \"200ms\"\n",
            name = s.name,
            path = s.path()
        ),
    );
    let first = run(WATCH_PROCS, &["--config", &config]);
    assert_eq!(first.code, 1, "{}{}", first.stdout, first.stderr);
    let r = first.record();
    assert_eq!(r.status, Status::Warning);
    assert_eq!(r.event.as_deref(), Some("restarted"));
    assert_eq!(r.details["process_name"], "sleeper");
    assert!(r.trace.iter().any(|t| t.step == "verify" && t.ok));
    assert_eq!(pgrep_count(&["-x", &s.name]), 1, "really running");
    // Killed again, it comes back again; running, it is left alone.
    let second = run(WATCH_PROCS, &["--config", &config]);
    assert_eq!(second.code, 0);
    assert!(second.record().summary.contains("running (pid"));
    s.kill_all();
    let third = run(WATCH_PROCS, &["--config", &config]);
    assert_eq!(third.code, 1);
}

#[test]
fn failing_restart_command_is_critical_with_every_attempt_traced() {
    let dir = TempDir::new("fail");
    let config = write_config(
        &dir,
        "[[process]]\nname = \"ghost\"\ncmdline = \"no such process here\"\npre_restart = [\"true\"]\nrestart = \"echo cannot start ghost >&2; exit 7\"\nshell = true\nrestart_retries = 2\nrestart_interval = \"100ms\"\n",
    );
    let run1 = run(WATCH_PROCS, &["--config", &config]);
    assert_eq!(run1.code, 2, "{}", run1.stdout);
    let r = run1.record();
    assert_eq!(r.event.as_deref(), Some("restart_failed"));
    let restarts: Vec<_> = r.trace.iter().filter(|t| t.step == "restart").collect();
    assert_eq!(restarts.len(), 2);
    for t in restarts {
        assert!(!t.ok);
        let d = t.detail.as_deref().unwrap_or("");
        assert!(
            d.contains("exit 7") && d.contains("cannot start ghost"),
            "{d}"
        );
    }
}

#[test]
fn hanging_restart_command_is_killed_at_its_deadline() {
    let dir = TempDir::new("hang");
    let config = write_config(
        &dir,
        "[[process]]\nname = \"stuck\"\ncmdline = \"never running\"\nrestart = [\"sleep\", \"30\"]\nrestart_retries = 1\ncommand_timeout = \"500ms\"\n",
    );
    let run1 = run(WATCH_PROCS, &["--config", &config]);
    assert_eq!(run1.code, 2);
    // A bound on a hang, not a speed claim.
    assert!(run1.took < Duration::from_secs(5), "took {:?}", run1.took);
    let r = run1.record();
    let t = r
        .trace
        .iter()
        .find(|t| t.step == "restart")
        .expect("restart step");
    assert!(
        t.detail.as_deref().unwrap_or("").contains("killed after"),
        "{:?}",
        t.detail
    );
}

#[test]
fn whole_run_deadline_bounds_the_retries() {
    let dir = TempDir::new("deadline");
    let config = write_config(
        &dir,
        "[[process]]\nname = \"stuck\"\ncmdline = \"never running\"\nrestart = [\"sleep\", \"30\"]\nrestart_retries = 5\nrestart_interval = \"100ms\"\n",
    );
    let run1 = run(WATCH_PROCS, &["--config", &config, "-t", "2"]);
    assert_eq!(run1.code, 2);
    assert!(
        run1.took < Duration::from_millis(3500),
        "took {:?}",
        run1.took
    );
}

#[test]
fn stderr_output_does_not_make_a_good_restart_fail() {
    let s = Sleeper::new("stderr");
    let config = write_config(
        &s.dir,
        &format!(
            "[[process]]\nname = \"noisy\"\ncomm = \"{name}\"\nrestart = \"echo 'deprecated option' >&2; setsid -f {path} 300\"\nshell = true\nverify_delay = \"200ms\"\n",
            name = s.name,
            path = s.path()
        ),
    );
    let run1 = run(WATCH_PROCS, &["--config", &config]);
    assert_eq!(run1.code, 1, "{}", run1.stdout);
    let r = run1.record();
    let t = r
        .trace
        .iter()
        .find(|t| t.step == "restart")
        .expect("restart");
    assert!(t.ok);
    assert!(t
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("deprecated option"));
}

#[test]
fn process_that_dies_right_after_restart_is_caught_by_reverify() {
    let s = Sleeper::new("dies");
    let config = write_config(
        &s.dir,
        &format!(
            "[[process]]\nname = \"flaky\"\ncomm = \"{name}\"\nrestart = [\"setsid\", \"-f\", \"{path}\", \"0.2\"]\nrestart_retries = 1\nverify_delay = \"800ms\"\n",
            name = s.name,
            path = s.path()
        ),
    );
    let run1 = run(WATCH_PROCS, &["--config", &config]);
    assert_eq!(run1.code, 2, "{}", run1.stdout);
    let r = run1.record();
    assert!(
        r.summary
            .contains("succeeded but the process is not running"),
        "{}",
        r.summary
    );
    assert!(r.trace.iter().any(|t| t.step == "verify" && !t.ok));
}

#[test]
fn masakari_process_list_is_read_as_it_is() {
    let s = Sleeper::new("masakari");
    // The format of masakari's documentation, with this test's program.
    let yaml = format!(
        "-\n    # {name}\n    process_name: {path}\n    start_command: setsid -f {path} 300\n    pre_start_command:\n    post_start_command:\n    restart_command: setsid -f {path} 300\n    pre_restart_command: true\n    post_restart_command:\n    run_as_root: False\n",
        name = s.name,
        path = s.path()
    );
    let file = s.dir.write("process_list.yaml", &yaml);
    let run1 = run(WATCH_PROCS, &["--config", &file, "--verify-delay", "200ms"]);
    assert_eq!(run1.code, 1, "{}{}", run1.stdout, run1.stderr);
    let r = run1.record();
    assert_eq!(r.name, s.path());
    assert_eq!(r.event.as_deref(), Some("restarted"));
    let again = run(WATCH_PROCS, &["--config", &file]);
    assert_eq!(again.code, 0, "{}", again.stdout);
}

#[test]
fn state_file_backs_off_a_process_that_will_not_come_back() {
    let dir = TempDir::new("backoff");
    let counter = dir.0.join("attempts");
    let config = write_config(
        &dir,
        &format!(
            "[[process]]\nname = \"dead\"\ncmdline = \"not here\"\nrestart = \"echo x >> {}; exit 1\"\nshell = true\nrestart_retries = 1\n",
            counter.display()
        ),
    );
    let state = dir.0.join("state.json");
    let state = state.to_string_lossy();
    let first = run(
        WATCH_PROCS,
        &["--config", &config, "--state", &state, "--backoff", "1h"],
    );
    assert_eq!(first.code, 2);
    assert_eq!(first.record().event.as_deref(), Some("restart_failed"));
    let second = run(
        WATCH_PROCS,
        &["--config", &config, "--state", &state, "--backoff", "1h"],
    );
    assert_eq!(second.code, 2);
    let r = second.record();
    assert!(r.summary.contains("next attempt in"), "{}", r.summary);
    assert!(r.event.is_none(), "reported, not restarted again");
    assert_eq!(
        std::fs::read_to_string(&counter)
            .expect("counter")
            .lines()
            .count(),
        1
    );
    // A corrupt state file is set aside and said so, not silently reset.
    std::fs::write(&*state, "{garbage").expect("corrupt");
    let third = run(WATCH_PROCS, &["--config", &config, "--state", &state]);
    let records = third.records();
    assert!(records
        .iter()
        .any(|r| r.event.as_deref() == Some("state_file") && r.summary.contains("set aside")));
}

#[test]
fn dry_run_runs_nothing() {
    let dir = TempDir::new("dry");
    let marker = dir.0.join("ran");
    let config = write_config(
        &dir,
        &format!(
            "[[process]]\nname = \"x\"\ncmdline = \"not here\"\nrestart = [\"touch\", \"{}\"]\n",
            marker.display()
        ),
    );
    let run1 = run(WATCH_PROCS, &["--config", &config, "--dry-run"]);
    assert_eq!(run1.code, 2);
    assert!(run1.record().summary.contains("dry run: would run touch"));
    assert!(!marker.exists());
}

#[test]
fn malformed_config_is_one_line_naming_file_and_line() {
    let dir = TempDir::new("bad");
    let toml = dir.write(
        "bad.toml",
        "[[process]]\nname = \"x\"\ncomm = \"x\"\nrestrat = [\"true\"]\n",
    );
    let r = run(WATCH_PROCS, &["--config", &toml]);
    assert_eq!(r.code, 3);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("{toml}:4: unknown field `restrat`")),
        "{}",
        r.stderr
    );
    let yaml = dir.write("bad.yaml", "-\n    process_name: [oops\n");
    let r = run(WATCH_PROCS, &["--config", &yaml]);
    assert_eq!(r.code, 3);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains(&yaml), "{}", r.stderr);
    let missing = run(WATCH_PROCS, &["--config", "/nonexistent/procs.toml"]);
    assert_eq!(missing.code, 3);
    let both = run(WATCH_PROCS, &["--config", &toml, "-C", "x"]);
    assert_eq!(both.code, 3);
    let bad_range = run(WATCH_PROCS, &["-C", "x", "-w", "3:2", "--format", "nagios"]);
    assert_eq!(bad_range.code, 3);
    assert!(bad_range.stdout.starts_with("PROCS UNKNOWN - -w/-c:"));
}

fn can_switch_user() -> bool {
    needs_root(
        "setpriv",
        Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
    )
}

#[test]
fn commands_run_as_a_named_user_and_non_root_is_refused_root() {
    if !can_switch_user() {
        return;
    }
    let dir = TempDir::new("user");
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    let out = dir.0.join("who");
    let config = write_config(
        &dir,
        &format!(
            "[[process]]\nname = \"as-nobody\"\ncmdline = \"not here\"\nrestart = \"id -u > {}\"\nshell = true\nrun_as = \"nobody\"\nrestart_retries = 1\n",
            out.display()
        ),
    );
    let r = run(WATCH_PROCS, &["--config", &config]);
    assert_eq!(r.code, 2, "the process never appears: {}", r.stdout);
    let uid = std::fs::read_to_string(&out).expect("the command ran");
    assert_ne!(uid.trim(), "0", "dropped root before exec");

    // watch-procs itself as nobody: counting works; an entry that needs root is refused clearly.
    let root_config = dir.write(
        "root.toml",
        "[[process]]\nname = \"needs-root\"\ncmdline = \"not here\"\nrestart = [\"true\"]\nrun_as = \"root\"\nrestart_retries = 1\n",
    );
    let as_nobody = |args: &[&str]| {
        let mut all = vec![
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            WATCH_PROCS,
        ];
        all.extend_from_slice(args);
        run("setpriv", &all)
    };
    let counted = as_nobody(&["-C", "sleep"]);
    assert_eq!(counted.code, 0, "{}{}", counted.stdout, counted.stderr);
    let refused = as_nobody(&["--config", &root_config]);
    assert_eq!(refused.code, 2, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.record().summary.contains("not root"),
        "{}",
        refused.record().summary
    );
}

#[test]
fn every_follows_an_edited_process_list_and_keeps_the_last_good_one() {
    let dir = TempDir::new("reload-procs");
    let entry = |name: &str| {
        format!("[[process]]\nname = \"{name}\"\ncmdline = \"no such process {name}\"\nrestart = [\"true\"]\n\n")
    };
    let config = write_config(&dir, &entry("x"));
    let mut run = Streaming::start(
        WATCH_PROCS,
        &[
            "--config",
            &config,
            "--dry-run",
            "--every",
            "2s",
            "--count",
            "3",
        ],
    );
    let names = |records: &[skyprobe::report::Record]| -> Vec<String> {
        records.iter().map(|r| r.name.clone()).collect()
    };
    assert_eq!(names(&run.records(1)), ["x"]);

    replace_file(&config, &format!("{}{}", entry("x"), entry("y")));
    assert_eq!(names(&run.records(2)), ["x", "y"], "the edit is followed");

    replace_file(&config, "[[process]]\nname = \"z\"\n");
    let third = run.records(3);
    assert_eq!(third[0].status, Status::Unknown);
    assert!(
        third[0]
            .summary
            .contains("procs.toml changed and cannot be used")
            && third[0].summary.contains("still using the 2 processes"),
        "{}",
        third[0].summary
    );
    assert_eq!(names(&third[1..]), ["x", "y"]);
}
