//! Supervision: find the processes that must run; for each that is down,
//! run pre -> restart -> post up to N times, then re-verify that it really
//! runs (masakari never re-checks); back off across runs when it will not
//! come back.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cli::Context;
use crate::report::{Record, Status, TraceStep};

use super::config::{CommandLine, Entry, MatchRules, RunAs};
use super::table::{same_file, Need, Proc, ProcSource};

/// Interpreters whose first argument is the program that really runs.
const INTERPRETERS: &[&str] = &[
    "python", "python2", "python3", "perl", "ruby", "node", "sh", "bash", "java", "php",
];

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

fn is_interpreter(argv0: &str) -> bool {
    let base = basename(argv0);
    INTERPRETERS.iter().any(|i| {
        base == *i
            || base
                .strip_prefix(i)
                .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// masakari's `process_name`, matched as a program, never as a substring:
/// a name with spaces is a command-line prefix; otherwise it is the
/// executable, argv[0] (path or base name), the comm, or the script an
/// interpreter runs. So `grep nova-compute` is never nova-compute.
pub fn masakari_matches(name: &str, p: &Proc) -> bool {
    let args = p.cmdline.as_deref().unwrap_or(&[]);
    if name.contains(char::is_whitespace) {
        let line = args.join(" ");
        return line == name || line.starts_with(&format!("{name} "));
    }
    let same_program = |a: &str| a == name || (!name.contains('/') && basename(a) == name);
    if let Some(argv0) = args.first() {
        if same_program(argv0) {
            return true;
        }
        if is_interpreter(argv0) {
            if let Some(script) = args.iter().skip(1).find(|a| !a.starts_with('-')) {
                if same_program(script) {
                    return true;
                }
            }
        }
    }
    if p.exe
        .as_ref()
        .is_some_and(|e| same_program(&e.to_string_lossy()))
    {
        return true;
    }
    !name.contains('/') && !p.kernel_thread && super::count::comm_matches(&p.comm, name)
}

/// What the rules need read from the table.
pub fn need(rules: &MatchRules) -> Need {
    Need {
        uid: rules.user.is_some(),
        cmdline: rules.cmdline.is_some()
            || rules.cmdline_regex.is_some()
            || rules.masakari_name.is_some(),
        exe: rules.exe.is_some() || rules.masakari_name.is_some(),
    }
}

/// A user name or numeric uid as a uid.
pub fn uid_of(user: &str) -> Option<u32> {
    user.parse::<u32>().ok().or_else(|| {
        nix::unistd::User::from_name(user)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    })
}

/// The processes an entry's rules select. `excluded` are this process and
/// its children, which are never the thing being watched.
pub fn find(rules: &MatchRules, procs: &[Proc], excluded: &dyn Fn(&Proc) -> bool) -> Vec<Proc> {
    let pid_from_file = rules.pidfile.as_ref().map(|f| {
        crate::files::read_text(f, crate::files::SECRET_MAX)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
    });
    let uid = rules.user.as_deref().map(uid_of);
    procs
        .iter()
        .filter(|p| !excluded(p) && p.state != 'Z' && p.state != 'X')
        .filter(|p| match &pid_from_file {
            Some(Some(pid)) => p.pid == *pid,
            Some(None) => false,
            None => true,
        })
        .filter(|p| {
            rules
                .comm
                .as_ref()
                .is_none_or(|c| super::count::comm_matches(&p.comm, c))
        })
        .filter(|p| {
            rules
                .exe
                .as_ref()
                .is_none_or(|e| p.exe.as_ref().is_some_and(|x| same_file(x, e)))
        })
        .filter(|p| rules.cmdline.as_ref().is_none_or(|c| p.args_text() == *c))
        .filter(|p| {
            rules
                .cmdline_regex
                .as_ref()
                .is_none_or(|r| r.is_match(&p.args_text()))
        })
        .filter(|p| match &uid {
            None => true,
            Some(Some(u)) => p.uid == Some(*u),
            Some(None) => false,
        })
        .filter(|p| {
            rules
                .masakari_name
                .as_ref()
                .is_none_or(|n| masakari_matches(n, p))
        })
        .cloned()
        .collect()
}

/// How one command ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// It ran past its deadline and was killed.
    pub timed_out: bool,
    /// It could not be started at all (why).
    pub spawn_error: Option<String>,
    /// The last lines it wrote to stderr.
    pub stderr_tail: String,
    /// How long it ran.
    pub took: Duration,
}

impl Outcome {
    /// The command's exit status decides, nothing else (masakari counted
    /// any stderr output as failure).
    pub fn succeeded(&self) -> bool {
        self.code == Some(0) && !self.timed_out && self.spawn_error.is_none()
    }

    fn describe(&self) -> String {
        let mut s = if let Some(e) = &self.spawn_error {
            format!("cannot start: {e}")
        } else if self.timed_out {
            format!("killed after {:.1} s (timeout)", self.took.as_secs_f64())
        } else {
            match self.code {
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".to_string(),
            }
        };
        if !self.stderr_tail.is_empty() {
            s.push_str(&format!("; stderr: {}", self.stderr_tail));
        }
        s
    }
}

/// Runs commands: the real thing, or a double in tests.
pub trait Runner: Send + Sync {
    /// Run `cmd` as `run_as`, killing it (and its process group) at `deadline`.
    fn run(&self, cmd: &CommandLine, run_as: &RunAs, deadline: Instant) -> Outcome;
}

/// Runs commands as processes of their own group, stderr into an unlinked
/// temporary file (a daemon started by the command may keep its stderr open
/// for ever; a pipe would then never reach end of file).
#[derive(Debug, Default)]
pub struct ProcessRunner;

const STDERR_TAIL: usize = 512;

fn stderr_file() -> std::io::Result<std::fs::File> {
    let dir = std::env::temp_dir();
    for n in 0..100u32 {
        let path = dir.join(format!(".skyprobe-stderr-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}

impl Runner for ProcessRunner {
    fn run(&self, cmd: &CommandLine, run_as: &RunAs, deadline: Instant) -> Outcome {
        let started = Instant::now();
        let fail = |e: String| Outcome {
            code: None,
            timed_out: false,
            spawn_error: Some(e),
            stderr_tail: String::new(),
            took: started.elapsed(),
        };
        let mut err_file = match stderr_file() {
            Ok(f) => f,
            Err(e) => return fail(format!("temporary file for stderr: {e}")),
        };
        let Some((program, args)) = cmd.argv.split_first() else {
            return fail("empty command".into());
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0);
        match err_file.try_clone() {
            Ok(f) => {
                command.stderr(Stdio::from(f));
            }
            Err(e) => return fail(format!("temporary file for stderr: {e}")),
        }
        let am_root = nix::unistd::geteuid().is_root();
        match run_as {
            RunAs::Current => {}
            RunAs::Root if am_root => {}
            RunAs::Root => {
                return fail(
                    "the entry must run as root (run_as_root) and watch-procs is not root".into(),
                )
            }
            RunAs::User(name) => {
                let user = match nix::unistd::User::from_name(name) {
                    Ok(Some(u)) => u,
                    Ok(None) => return fail(format!("no such user {name:?}")),
                    Err(e) => return fail(format!("user {name:?}: {e}")),
                };
                if user.uid != nix::unistd::geteuid() {
                    if !am_root {
                        return fail(format!(
                            "running as {name:?} needs watch-procs to run as root"
                        ));
                    }
                    // std drops the supplementary groups when root switches uid.
                    command
                        .uid(user.uid.as_raw())
                        .gid(user.gid.as_raw())
                        .env("HOME", &user.dir)
                        .env("USER", name)
                        .env("LOGNAME", name);
                }
            }
        }
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => return fail(format!("{program}: {e}")),
        };
        let pid = child.id() as i32;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let left = deadline.saturating_duration_since(Instant::now());
        let (status, timed_out) = match rx.recv_timeout(left) {
            Ok(s) => (s.ok(), false),
            Err(_) => {
                // The whole group: a shell and what it started.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                (
                    rx.recv_timeout(Duration::from_secs(2))
                        .ok()
                        .and_then(|s| s.ok()),
                    true,
                )
            }
        };
        let mut bytes = Vec::new();
        let _ = err_file.seek(SeekFrom::Start(0));
        let _ = err_file.read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        let mut tail_start = text.len().saturating_sub(STDERR_TAIL);
        while !text.is_char_boundary(tail_start) {
            tail_start += 1;
        }
        Outcome {
            code: if timed_out {
                None
            } else {
                status.and_then(|s| s.code())
            },
            timed_out,
            spawn_error: None,
            stderr_tail: text[tail_start..].replace('\n', " | "),
            took: started.elapsed(),
        }
    }
}

/// What is kept about one process between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessState {
    /// Runs in a row whose repair failed.
    pub failed_repairs: u32,
    /// No restart before this time (unix seconds) — the back-off.
    pub next_attempt: Option<f64>,
    /// Restarts that worked, ever.
    pub restarts: u64,
    /// Status of the last run.
    pub last_status: Option<Status>,
    /// When the status last changed (RFC 3339).
    pub last_change: Option<String>,
}

/// The supervisor's `--state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SupervisorState {
    /// Per process name.
    pub processes: BTreeMap<String, ProcessState>,
}

/// Back-off between repair runs for a process that will not come back.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// After the first failed run.
    pub base: Duration,
    /// At most this long.
    pub max: Duration,
}

impl Backoff {
    fn after(&self, failed_runs: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed_runs.saturating_sub(1).min(16));
        self.base.saturating_mul(factor).min(self.max)
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn pids_text(found: &[Proc]) -> String {
    let pids: Vec<String> = found.iter().take(8).map(|p| p.pid.to_string()).collect();
    let more = if found.len() > 8 { ", ..." } else { "" };
    format!("{}{more}", pids.join(", "))
}

fn uptime_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// The supervisor's inputs that are not the process list.
pub struct Supervisor<'a> {
    /// Where processes come from.
    pub table: &'a dyn ProcSource,
    /// Runs the commands.
    pub runner: &'a dyn Runner,
    /// Back-off across runs.
    pub backoff: Backoff,
    /// Only report; never run a command.
    pub dry_run: bool,
}

impl Supervisor<'_> {
    fn snapshot(&self, entries: &[Entry]) -> Vec<Proc> {
        let mut n = Need::default();
        for e in entries {
            let x = need(&e.rules);
            n.uid |= x.uid;
            n.cmdline |= x.cmdline;
            n.exe |= x.exe;
        }
        self.table.snapshot(n)
    }

    /// One run over every entry: one record each.
    pub fn run(
        &self,
        entries: &[Entry],
        state: &mut SupervisorState,
        ctx: &Context,
    ) -> Vec<Record> {
        let me = std::process::id() as i32;
        let excluded = move |p: &Proc| p.pid == me || p.ppid == me;
        let procs = self.snapshot(entries);
        let mut records = Vec::new();
        for entry in entries {
            let started = Instant::now();
            let found = find(&entry.rules, &procs, &excluded);
            let st = state.processes.entry(entry.name.clone()).or_default();
            let mut record = Record::new(super::CHECK, &entry.name, Status::Ok, "");
            record.detail("process_name", entry.name.clone());
            if found.len() >= entry.min_count {
                let up = found.iter().map(|p| p.elapsed).max().unwrap_or_default();
                record.summary = format!(
                    "{} running (pid {}), up {}",
                    entry.name,
                    pids_text(&found),
                    uptime_text(up)
                );
                record.detail("pids", found.iter().map(|p| p.pid).collect::<Vec<_>>());
                record.detail("uptime_s", up.as_secs());
                st.failed_repairs = 0;
                st.next_attempt = None;
            } else {
                self.repair(entry, &found, st, ctx, &excluded, &mut record);
            }
            if st.last_status != Some(record.status) {
                st.last_change = Some(record.ts.clone());
                st.last_status = Some(record.status);
            }
            record.detail("restarts_total", st.restarts);
            record.detail("failed_repairs", st.failed_repairs);
            record.duration_ms = crate::report::round_ms(started.elapsed());
            records.push(record);
        }
        records
    }

    fn repair(
        &self,
        entry: &Entry,
        found: &[Proc],
        st: &mut ProcessState,
        ctx: &Context,
        excluded: &dyn Fn(&Proc) -> bool,
        record: &mut Record,
    ) {
        let what = if found.is_empty() {
            "is not running".to_string()
        } else {
            format!("has {} of {} processes", found.len(), entry.min_count)
        };
        record.trace.push(TraceStep::new(
            "check",
            false,
            Duration::ZERO,
            Some(format!("{} {what}", entry.name)),
        ));
        record.status = Status::Critical;
        let Some(main) = &entry.main else {
            record.summary = format!("{} {what} (no restart command configured)", entry.name);
            return;
        };
        if self.dry_run {
            record.summary = format!(
                "{} {what} (dry run: would run {})",
                entry.name,
                main.display()
            );
            return;
        }
        let now = unix_now();
        if let Some(next) = st.next_attempt.filter(|n| *n > now) {
            record.summary = format!(
                "{} {what}; still down after {} failed repair run(s), next attempt in {:.0} s",
                entry.name,
                st.failed_repairs,
                next - now
            );
            record.detail(
                "backoff_until",
                crate::report::timestamp(UNIX_EPOCH + Duration::from_secs_f64(next)),
            );
            return;
        }
        let mut attempts = 0;
        let mut last_failure = String::new();
        let mut cut_off = false;
        while attempts < entry.retries {
            if attempts > 0 {
                if ctx.remaining() <= entry.interval {
                    cut_off = true;
                    break;
                }
                std::thread::sleep(entry.interval);
            }
            attempts += 1;
            let mut ok = true;
            for (step, cmd) in [
                ("pre", &entry.pre),
                ("restart", &entry.main),
                ("post", &entry.post),
            ] {
                let Some(cmd) = cmd else { continue };
                let deadline = (Instant::now() + entry.command_timeout).min(ctx.deadline);
                let out = self.runner.run(cmd, &entry.run_as, deadline);
                let detail = format!(
                    "attempt {attempts}: {} -> {}",
                    cmd.display(),
                    out.describe()
                );
                record.trace.push(TraceStep::new(
                    step,
                    out.succeeded(),
                    out.took,
                    Some(detail.clone()),
                ));
                if !out.succeeded() {
                    ok = false;
                    last_failure = detail;
                    break;
                }
            }
            if !ok {
                continue;
            }
            // Re-verify: the restart command said yes; is the process really there, and still?
            let wait = entry.verify_delay.min(ctx.remaining());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            let again = find(
                &entry.rules,
                &self.table.snapshot(need(&entry.rules)),
                excluded,
            );
            if again.len() >= entry.min_count {
                record.trace.push(TraceStep::new(
                    "verify",
                    true,
                    wait,
                    Some(format!("running again (pid {})", pids_text(&again))),
                ));
                record.status = Status::Warning;
                record.event = Some("restarted".into());
                record.summary = format!(
                    "{} {what}; restarted and verified running (pid {}, attempt {attempts} of {})",
                    entry.name,
                    pids_text(&again),
                    entry.retries
                );
                record.detail("pids", again.iter().map(|p| p.pid).collect::<Vec<_>>());
                record.detail("attempts", attempts);
                st.restarts += 1;
                st.failed_repairs = 0;
                st.next_attempt = None;
                return;
            }
            last_failure = format!("attempt {attempts}: the restart command succeeded but the process is not running {:.1} s later", wait.as_secs_f64());
            record.trace.push(TraceStep::new(
                "verify",
                false,
                wait,
                Some(last_failure.clone()),
            ));
        }
        st.failed_repairs += 1;
        let pause = self.backoff.after(st.failed_repairs);
        st.next_attempt = Some(unix_now() + pause.as_secs_f64());
        record.event = Some("restart_failed".into());
        record.detail("attempts", attempts);
        record.summary = format!(
            "{} {what}; still down after {attempts} restart attempt(s){}: {last_failure}",
            entry.name,
            if cut_off {
                " (the deadline cut the rest)"
            } else {
                ""
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::table::FixedProcs;
    use std::sync::Mutex;

    fn p(pid: i32, comm: &str, args: &[&str]) -> Proc {
        Proc {
            pid,
            ppid: 1,
            comm: comm.into(),
            state: 'S',
            cmdline: Some(args.iter().map(|s| s.to_string()).collect()),
            ..Proc::default()
        }
    }

    #[test]
    fn masakari_names_never_match_unrelated_text() {
        let grep = p(1, "grep", &["grep", "nova-compute"]);
        let tail = p(2, "tail", &["tail", "-f", "/var/log/nova/nova-compute.log"]);
        let python = p(
            3,
            "nova-compute",
            &[
                "/usr/bin/python3",
                "/usr/local/bin/nova-compute",
                "--config-file",
                "/etc/nova/nova.conf",
            ],
        );
        let libvirtd = p(4, "libvirtd", &["/usr/sbin/libvirtd", "--listen"]);
        assert!(!masakari_matches("nova-compute", &grep));
        assert!(!masakari_matches("nova-compute", &tail));
        assert!(masakari_matches("nova-compute", &python));
        assert!(masakari_matches("/usr/local/bin/nova-compute", &python));
        assert!(masakari_matches("/usr/sbin/libvirtd", &libvirtd));
        assert!(!masakari_matches("/usr/sbin/libvirtd", &grep));
        assert!(masakari_matches(
            "/usr/bin/python3 /usr/local/bin/nova-compute",
            &python
        ));
        assert!(!masakari_matches(
            "/usr/bin/python3 /usr/local/bin/nova",
            &python
        ));
    }

    /// Scripted outcomes, and a table that changes when a restart "works".
    struct Script {
        outcomes: Mutex<Vec<Outcome>>,
        calls: Mutex<Vec<String>>,
    }

    fn outcome(code: i32) -> Outcome {
        Outcome {
            code: Some(code),
            timed_out: false,
            spawn_error: None,
            stderr_tail: String::new(),
            took: Duration::ZERO,
        }
    }

    impl Runner for Script {
        fn run(&self, cmd: &CommandLine, _run_as: &RunAs, _deadline: Instant) -> Outcome {
            self.calls.lock().expect("lock").push(cmd.display());
            let mut o = self.outcomes.lock().expect("lock");
            if o.is_empty() {
                outcome(0)
            } else {
                o.remove(0)
            }
        }
    }

    fn entry(retries: u32) -> Entry {
        Entry {
            name: "svc".into(),
            rules: MatchRules {
                comm: Some("svc".into()),
                ..MatchRules::default()
            },
            min_count: 1,
            pre: Some(CommandLine {
                argv: vec!["pre".into()],
            }),
            main: Some(CommandLine {
                argv: vec!["restart".into()],
            }),
            post: None,
            run_as: RunAs::Current,
            retries,
            interval: Duration::ZERO,
            command_timeout: Duration::from_secs(1),
            verify_delay: Duration::ZERO,
        }
    }

    fn ctx() -> Context {
        Context::new(Duration::from_secs(10))
    }

    #[test]
    fn a_restart_that_never_brings_it_back_fails_and_backs_off() {
        let table = FixedProcs(vec![]);
        let runner = Script {
            outcomes: Mutex::new(vec![outcome(1)]),
            calls: Mutex::new(vec![]),
        };
        let sup = Supervisor {
            table: &table,
            runner: &runner,
            backoff: Backoff {
                base: Duration::from_secs(60),
                max: Duration::from_secs(600),
            },
            dry_run: false,
        };
        let mut state = SupervisorState::default();
        let r = sup.run(&[entry(2)], &mut state, &ctx());
        assert_eq!(r[0].status, Status::Critical);
        assert_eq!(r[0].event.as_deref(), Some("restart_failed"));
        // Attempt 1: pre fails (exit 1), restart skipped. Attempt 2: pre, restart ok, verify fails.
        assert_eq!(
            *runner.calls.lock().expect("lock"),
            ["pre", "pre", "restart"]
        );
        assert!(
            r[0].summary
                .contains("succeeded but the process is not running"),
            "{}",
            r[0].summary
        );
        assert_eq!(state.processes["svc"].failed_repairs, 1);
        // The next run inside the back-off runs nothing and says when it will try.
        let r = sup.run(&[entry(2)], &mut state, &ctx());
        assert_eq!(runner.calls.lock().expect("lock").len(), 3);
        assert!(r[0].summary.contains("next attempt in"), "{}", r[0].summary);
        assert!(r[0].event.is_none());
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        let b = Backoff {
            base: Duration::from_secs(30),
            max: Duration::from_secs(600),
        };
        assert_eq!(b.after(1), Duration::from_secs(30));
        assert_eq!(b.after(3), Duration::from_secs(120));
        assert_eq!(b.after(30), Duration::from_secs(600));
    }

    #[test]
    fn running_process_is_ok_and_resets_failures() {
        let table = FixedProcs(vec![p(42, "svc", &["svc"])]);
        let runner = Script {
            outcomes: Mutex::new(vec![]),
            calls: Mutex::new(vec![]),
        };
        let sup = Supervisor {
            table: &table,
            runner: &runner,
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(1),
            },
            dry_run: false,
        };
        let mut state = SupervisorState::default();
        state.processes.insert(
            "svc".into(),
            ProcessState {
                failed_repairs: 3,
                next_attempt: Some(1e12),
                ..ProcessState::default()
            },
        );
        let r = sup.run(&[entry(1)], &mut state, &ctx());
        assert_eq!(r[0].status, Status::Ok);
        assert!(runner.calls.lock().expect("lock").is_empty());
        assert_eq!(state.processes["svc"].failed_repairs, 0);
        assert_eq!(r[0].details["pids"], serde_json::json!([42]));
    }
}
