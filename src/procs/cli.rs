//! watch-procs' flags: supervision from a process list, or counting with
//! check_procs' flags.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use clap::Parser;

use super::config::{self, Defaults, Entry};
use super::count::{self, Filter, Measure};
use super::supervise::{Backoff, ProcessRunner, Supervisor, SupervisorState};
use super::table::LinuxProcs;
use crate::cli::{Common, Context, Tool, UsageError};
use crate::reload::{Reloading, Stamp};
use crate::report::Record;
use crate::threshold::Thresholds;

const EXAMPLES: &str = "\
Examples:
  watch-procs --config /etc/skyprobe/procs.toml --state /var/lib/skyprobe/procs.json
  watch-procs --config /etc/masakarimonitors/process_list.yaml --every 5s
  watch-procs --config procs.toml --dry-run            # report only, run nothing
  watch-procs -C nginx -w 1: -c 1: --format nagios     # at least one nginx
  watch-procs -s Z -w 0 -c 5                           # zombies
  watch-procs -C java -m RSS -w 2000000 -c 4000000     # per-process RSS, KiB

Exit status: 0 OK, 1 WARNING (restarted), 2 CRITICAL (down), 3 UNKNOWN (bad flags or files).\n\nFiles and secrets: only regular files are read as configuration (a FIFO or a device is\nrefused), within a size bound; lock, history and spool files are never written through a\nsymbolic link; URLs are shown without user:password@ and secret query values, and\nknown secrets are scrubbed from all output.";

/// Keep the processes that must run running (restart, re-verify, report),
/// or count processes like check_procs. Reads /proc directly.
#[derive(Debug, Parser)]
#[command(name = "watch-procs", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Args {
    /// Process list to supervise: skyprobe TOML, or masakari's process_list.yaml (.yaml/.yml).
    /// With --every, it is read again when it changes (a broken edit keeps the last good
    /// one and is reported UNKNOWN).
    #[arg(long, value_name = "FILE", help_heading = "Supervision")]
    pub config: Option<PathBuf>,

    /// Keep restart counters and back-off here between runs (locked, written atomically).
    #[arg(
        long,
        value_name = "FILE",
        requires = "config",
        help_heading = "Supervision"
    )]
    pub state: Option<PathBuf>,

    /// Report what is down and what would run; run nothing.
    #[arg(long, requires = "config", help_heading = "Supervision")]
    pub dry_run: bool,

    /// Restart attempts per run for entries that do not say (masakari restart_retries).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        help_heading = "Supervision"
    )]
    pub restart_retries: u32,

    /// Pause between attempts for entries that do not say (masakari restart_interval).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::units::parse_duration, help_heading = "Supervision")]
    pub restart_interval: Duration,

    /// Kill a pre/restart/post command that runs longer than this.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::units::parse_duration, help_heading = "Supervision")]
    pub command_timeout: Duration,

    /// After a restart, wait this long and check the process is still running.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::units::parse_duration, help_heading = "Supervision")]
    pub verify_delay: Duration,

    /// After a run whose repair failed, wait this long before trying again (doubling per failed run).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::units::parse_duration, help_heading = "Supervision")]
    pub backoff: Duration,

    /// The longest back-off.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::units::parse_duration, help_heading = "Supervision")]
    pub backoff_max: Duration,

    /// Count processes with exactly this command name (as pgrep -x).
    #[arg(
        short = 'C',
        long = "command",
        value_name = "NAME",
        conflicts_with = "config",
        help_heading = "Counting (check_procs)"
    )]
    pub command: Option<String>,

    /// Count processes whose command line contains ARGS.
    #[arg(
        short = 'a',
        long = "argument-array",
        value_name = "ARGS",
        conflicts_with = "config",
        help_heading = "Counting (check_procs)"
    )]
    pub args: Option<String>,

    /// Count processes whose command line matches REGEX.
    #[arg(
        long = "ereg-argument-array",
        value_name = "REGEX",
        conflicts_with = "config",
        help_heading = "Counting (check_procs)"
    )]
    pub args_regex: Option<String>,

    /// Count processes owned by USER (name or uid).
    #[arg(
        short = 'u',
        long = "user",
        value_name = "USER",
        conflicts_with = "config",
        help_heading = "Counting (check_procs)"
    )]
    pub user: Option<String>,

    /// Count processes in any of these states, e.g. Z (zombie), D, R, S, T.
    #[arg(
        short = 's',
        long = "state-flags",
        value_name = "FLAGS",
        conflicts_with = "config",
        help_heading = "Counting (check_procs)"
    )]
    pub states: Option<String>,

    /// Count children of this parent pid.
    #[arg(
        short = 'p',
        long = "ppid",
        value_name = "PID",
        conflicts_with = "config",
        help_heading = "Counting (check_procs)"
    )]
    pub ppid: Option<i32>,

    /// What -w/-c judge: PROCS (count), or per process VSZ/RSS (KiB), CPU (%), ELAPSED (s).
    #[arg(
        short = 'm',
        long = "metric",
        value_enum,
        default_value = "PROCS",
        value_name = "METRIC",
        conflicts_with = "config",
        help_heading = "Counting (check_procs)"
    )]
    pub metric: Measure,

    /// Warning range (Nagios syntax).
    #[arg(
        short = 'w',
        long,
        value_name = "RANGE",
        allow_hyphen_values = true,
        conflicts_with = "config",
        help_heading = "Counting (check_procs)"
    )]
    pub warning: Option<String>,

    /// Critical range (Nagios syntax).
    #[arg(
        short = 'c',
        long,
        value_name = "RANGE",
        allow_hyphen_values = true,
        conflicts_with = "config",
        help_heading = "Counting (check_procs)"
    )]
    pub critical: Option<String>,

    /// Leave kernel threads out.
    #[arg(
        short = 'k',
        long = "no-kthreads",
        conflicts_with = "config",
        help_heading = "Counting (check_procs)"
    )]
    pub no_kthreads: bool,

    /// Leave out processes with these command names (comma-separated).
    #[arg(
        short = 'X',
        long = "exclude-process",
        value_name = "NAMES",
        value_delimiter = ',',
        conflicts_with = "config",
        help_heading = "Counting (check_procs)"
    )]
    pub exclude: Vec<String>,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub common: Common,
}

/// What `prepare` made of watch-procs' flags, and the restart counters
/// kept in memory across `--every` rounds when there is no `--state`.
#[derive(Debug)]
pub struct Run {
    mode: Mode,
    memory: Mutex<SupervisorState>,
}

#[derive(Debug)]
enum Mode {
    Supervise(Reloading<Vec<Entry>>),
    Count(Box<(Filter, Thresholds)>),
}

impl Args {
    fn filter(&self) -> Result<Filter, UsageError> {
        let err = |m: String| UsageError::new(m);
        let uid = match &self.user {
            None => None,
            Some(u) => Some(
                super::supervise::uid_of(u)
                    .ok_or_else(|| err(format!("-u {u:?}: no such user")))?,
            ),
        };
        let args_regex = self
            .args_regex
            .as_deref()
            .map(|r| {
                regex::Regex::new(r).map_err(|e| {
                    err(format!(
                        "--ereg-argument-array {r:?}: {}",
                        crate::cli::regex_words(&e)
                    ))
                })
            })
            .transpose()?;
        if let Some(s) = &self.states {
            if s.is_empty() || !s.chars().all(|c| "RSDZTtWXxKPIi".contains(c)) {
                return Err(err(format!(
                    "-s {s:?}: want state letters such as Z, D, R, S, T"
                )));
            }
        }
        Ok(Filter {
            command: self.command.clone(),
            args: self.args.clone(),
            args_regex,
            uid,
            user_text: self.user.clone(),
            states: self.states.clone(),
            ppid: self.ppid,
            skip_kernel_threads: self.no_kthreads,
            exclude: self
                .exclude
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            exclude_pids: vec![std::process::id() as i32],
        })
    }

    fn defaults(&self) -> Defaults {
        Defaults {
            retries: self.restart_retries.max(1),
            interval: self.restart_interval,
            command_timeout: self.command_timeout,
            verify_delay: self.verify_delay,
        }
    }

    fn supervise(
        &self,
        memory: &Mutex<SupervisorState>,
        entries: &[Entry],
        ctx: &Context,
    ) -> Vec<Record> {
        let table = LinuxProcs::default();
        let runner = ProcessRunner;
        let sup = Supervisor {
            table: &table,
            runner: &runner,
            backoff: Backoff {
                base: self.backoff,
                max: self.backoff_max.max(self.backoff),
            },
            dry_run: self.dry_run,
        };
        match &self.state {
            None => {
                let mut state = memory.lock().unwrap_or_else(|p| p.into_inner());
                sup.run(entries, &mut state, ctx)
            }
            // A restart's record is printed (when streaming) before the
            // state that counts it is saved: a kill between the two can
            // repeat the record, never lose it.
            Some(path) => crate::state::update_records_emitting(
                super::CHECK,
                path,
                |state: &mut SupervisorState| sup.run(entries, state, ctx),
                |records| ctx.emit_now(records),
            ),
        }
    }
}

impl Tool for Args {
    const CHECK: &'static str = super::CHECK;
    const LABEL: &'static str = "PROCS";
    type Run = Run;

    fn common(&self) -> &Common {
        &self.common
    }

    fn default_timeout(&self) -> Duration {
        if self.config.is_some() {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(10)
        }
    }

    fn prepare(&mut self) -> Result<Run, UsageError> {
        let mode = match &self.config {
            Some(path) => {
                let stamp = Stamp::of(path);
                let entries = config::load(path, &self.defaults())?;
                Mode::Supervise(Reloading::new(path, stamp, entries))
            }
            None => {
                let limits = Thresholds::parse(self.warning.as_deref(), self.critical.as_deref())
                    .map_err(|e| UsageError::new(format!("-w/-c: {e}")))?;
                Mode::Count(Box::new((self.filter()?, limits)))
            }
        };
        Ok(Run {
            mode,
            memory: Mutex::default(),
        })
    }

    fn run(&self, run: &Run, ctx: &Context) -> Vec<Record> {
        match &run.mode {
            Mode::Supervise(file) => {
                // With --every, an edited process list is read again.
                let round = file.current(|| config::load(file.path(), &self.defaults()));
                let said = file.record(super::CHECK, &round, round.value.len(), "processes");
                let mut records: Vec<Record> = said.into_iter().collect();
                records.extend(self.supervise(&run.memory, &round.value, ctx));
                records
            }
            Mode::Count(counting) => {
                let (filter, limits) = &**counting;
                vec![count::count(
                    &LinuxProcs::default(),
                    filter,
                    self.metric,
                    limits,
                )]
            }
        }
    }

    fn timed_out(&self, run: &Run, ctx: &Context) -> Vec<Record> {
        let names: Vec<String> = match &run.mode {
            Mode::Supervise(file) => file.value().iter().map(|e| e.name.clone()).collect(),
            _ => vec!["processes".to_string()],
        };
        names
            .into_iter()
            .map(|n| {
                Record::new(
                    super::CHECK,
                    &n,
                    ctx.timeout_state,
                    format!(
                        "timed out after {:.1} s before this process was settled",
                        self.timeout().as_secs_f64()
                    ),
                )
            })
            .collect()
    }
}
