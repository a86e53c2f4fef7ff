//! The edge every binary shares: common flags, parsing with our own exit
//! codes, the deadline, `--every` rounds, rendering and the exit code.
//!
//! A binary's `main` is one call: `cli::main::<Args>()`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clap::Parser;

use crate::render::{Format, Renderer};
use crate::report::{worst, Record, Status};

/// Flags every binary has.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Common options")]
pub struct Common {
    /// Deadline for the whole run: a number of seconds or a duration (500ms, 1m).
    /// Work not finished by then is reported in the --timeout-state [default: 10 s;
    /// watch-procs with --config: 60 s].
    #[arg(short = 't', long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub timeout: Option<Duration>,

    /// State reported for work cut off by the deadline.
    #[arg(long, value_name = "STATE", default_value = "critical", value_parser = parse_status)]
    pub timeout_state: Status,

    /// Print each record's trace to stderr (-vv adds its details).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Add a label to every record (repeatable), e.g. --label az=zone-a.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum, env = "SKYPROBE_FORMAT", value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Write the output to FILE atomically (temporary file + rename) instead of stdout;
    /// rewritten whole each round, fit for node_exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Repeat the run every DURATION and keep streaming records (default: run once).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub every: Option<Duration>,

    /// With --every: stop after N rounds.
    #[arg(long, value_name = "N", requires = "every", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Name of this machine in records [default: the system host name].
    #[arg(long = "hostname", value_name = "NAME", env = "SKYPROBE_HOSTNAME")]
    pub reporting_host: Option<String>,
}

/// A state named on the command line (`ok`, `warning`, `critical`, `unknown`).
pub fn parse_status(text: &str) -> Result<Status, String> {
    Status::parse(text)
        .ok_or_else(|| format!("{text:?} is not a state (ok, warning, critical, unknown)"))
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// A regex error in one line. The regex crate's own message spans lines
/// (the pattern, a caret under the fault, then the error), and only the
/// first line would reach an operator: "regex parse error:".
pub fn regex_words(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let why = lines
                .iter()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .unwrap_or("invalid pattern");
            // The caret line sits under the pattern line, both indented.
            let at = lines.iter().zip(lines.iter().skip(1)).find_map(|(p, c)| {
                let c = c.trim_end();
                (c.trim_start().starts_with('^') && !p.trim().is_empty())
                    .then(|| c.len() - c.trim_start().len() - (p.len() - p.trim_start().len()))
            });
            match at {
                Some(at) => format!("bad regex: {why} (at character {})", at + 1),
                None => format!("bad regex: {why}"),
            }
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("bad regex: it compiles to more than {limit} bytes")
        }
        other => format!("bad regex: {}", other.to_string().replace('\n', " ")),
    }
}

/// A usage or configuration error: exit 3 with one line saying what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    /// A usage error with this message.
    pub fn new(message: impl Into<String>) -> UsageError {
        UsageError(message.into())
    }
}

/// What a check needs to know about the run it is part of.
#[derive(Debug, Clone)]
pub struct Context {
    /// When this round must be finished.
    pub deadline: Instant,
    /// The state for work the deadline cut off.
    pub timeout_state: Status,
    /// How many `-v` were given.
    pub verbose: u8,
    /// Told how far a long run has got (a person is watching a terminal).
    pub progress: Option<Progress>,
    /// Where records go the moment they exist, for checks that report
    /// events as they happen (`--follow`); absent when the output format
    /// is written whole at the end of a round.
    pub stream: Option<Stream>,
    /// What this round caches (TLS sessions, verified chains): new for
    /// every round, shared by the clones of its context, never by another
    /// round or another tool in the same process.
    pub round: RoundCache,
}

/// A round's caches, one value per type, made on first use.
#[derive(Clone, Default)]
pub struct RoundCache(
    Arc<Mutex<std::collections::HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>>>,
);

impl RoundCache {
    /// This round's value of type `T` (its default the first time).
    pub fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = lock(&self.0);
        let entry = map
            .entry(std::any::TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        match Arc::clone(entry).downcast::<T>() {
            Ok(value) => value,
            // Keyed by its own TypeId: cannot be another type.
            Err(_) => Arc::new(T::default()),
        }
    }
}

impl std::fmt::Debug for RoundCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoundCache")
    }
}

/// Writes records out at once, mid-round.
#[derive(Clone)]
pub struct Stream(pub Arc<dyn Fn(Vec<Record>) + Send + Sync>);

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream")
    }
}

/// A callback told `(done, total)` as a check with many parts goes on.
#[derive(Clone)]
pub struct Progress(pub Arc<dyn Fn(usize, usize) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

impl Context {
    /// A context for one round of `timeout` from now.
    pub fn new(timeout: Duration) -> Context {
        Context {
            deadline: Instant::now() + timeout,
            timeout_state: Status::Critical,
            verbose: 0,
            progress: None,
            stream: None,
            round: RoundCache::default(),
        }
    }

    /// Hand records out now if the output streams; otherwise give them
    /// back for the round's result.
    pub fn emit_now(&self, records: Vec<Record>) -> Vec<Record> {
        match &self.stream {
            Some(s) => {
                (s.0)(records);
                Vec::new()
            }
            None => records,
        }
    }

    /// Report progress, if anyone is watching.
    pub fn progress(&self, done: usize, total: usize) {
        if let Some(p) = &self.progress {
            (p.0)(done, total);
        }
    }

    /// Time left before the deadline (zero once past it).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A binary: its flags, and the check they drive.
pub trait Tool: Parser + Send + Sync + 'static {
    /// The `check` field of its records, e.g. `probe-http`.
    const CHECK: &'static str;
    /// The Nagios service label, e.g. `HTTP`.
    const LABEL: &'static str;

    /// The common flags.
    fn common(&self) -> &Common;

    /// The deadline when `-t` is not given.
    fn default_timeout(&self) -> Duration {
        Duration::from_secs(10)
    }

    /// The deadline of a round: `-t`, or the tool's default.
    fn timeout(&self) -> Duration {
        self.common()
            .timeout
            .unwrap_or_else(|| self.default_timeout())
    }

    /// What [`Tool::prepare`] makes of the flags and the files they name,
    /// and what the run keeps between rounds (state in memory, locks):
    /// a value of its own, never hidden fields of the flags.
    type Run: Send + Sync + 'static;

    /// Validate and prepare once before the first round; a bad flag or
    /// file found here ends the run with exit 3.
    /// It may also settle the flags themselves (`--only` turns `-v` on).
    fn prepare(&mut self) -> Result<Self::Run, UsageError>;

    /// What the command line gave explicitly (not by default), for a tool
    /// whose flags combine with a file's. Called once, after parsing.
    fn given(&mut self, _matches: &clap::ArgMatches) {}

    /// One round of the check.
    fn run(&self, run: &Self::Run, ctx: &Context) -> Vec<Record>;

    /// The secrets the run holds (passwords, tokens, keys, secret URLs),
    /// known after `prepare`: scrubbed from every record and trace line
    /// before it is printed, whatever put them there.
    fn secrets(&self, _run: &Self::Run) -> Vec<String> {
        Vec::new()
    }

    /// Records for a round the deadline cut off before `run` returned.
    fn timed_out(&self, run: &Self::Run, ctx: &Context) -> Vec<Record>;
}

/// The system host name, for the `host` field.
pub fn system_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Which format the user asked for, read from the raw arguments, so a usage
/// error can still be shown the way the caller (Nagios) reads output.
fn format_from_raw_args(args: &[OsString]) -> Option<Format> {
    let mut iter = args.iter().map(|a| a.to_string_lossy());
    let mut found = None;
    while let Some(arg) = iter.next() {
        let value = if arg == "--format" {
            iter.next().map(|v| v.to_string())
        } else {
            arg.strip_prefix("--format=").map(|v| v.to_string())
        };
        if let Some(v) = value {
            found = <Format as clap::ValueEnum>::from_str(&v, true).ok();
        }
    }
    found.or_else(|| {
        std::env::var("SKYPROBE_FORMAT")
            .ok()
            .and_then(|v| <Format as clap::ValueEnum>::from_str(&v, true).ok())
    })
}

/// Report a usage error: one line on stderr, and on stdout too when the
/// caller reads Nagios output (Nagios drops stderr).
fn usage_error<T: Tool>(message: &str, format: Option<Format>) -> ExitCode {
    let line = message.lines().next().unwrap_or("usage error").trim();
    let line = crate::redact::urls_in(line);
    eprintln!("{}: {}", T::CHECK, line);
    if matches!(format, Some(Format::Nagios | Format::NagiosLine)) {
        println!("{} UNKNOWN - {}", T::LABEL, line.replace('|', "/"));
    }
    ExitCode::from(Status::Unknown.exit_code())
}

/// Parse arguments with skyprobe's exit codes: help and version exit 0,
/// every usage error exits 3 (clap's own 2 would read as CRITICAL).
pub fn parse<T: Tool>(args: Vec<OsString>) -> Result<T, ExitCode> {
    let parsed = T::command()
        .try_get_matches_from(&args)
        .and_then(|m| T::from_arg_matches(&m).map(|t| (t, m)));
    match parsed {
        Ok((mut t, matches)) => {
            t.given(&matches);
            Ok(t)
        }
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    Err(ExitCode::SUCCESS)
                }
                _ => {
                    let first = clap_one_line(&e.to_string());
                    Err(usage_error::<T>(
                        &format!("{first} (see {} --help)", T::CHECK),
                        format_from_raw_args(&args),
                    ))
                }
            }
        }
    }
}

/// clap's error as one line. A first line that ends in `:` ("the following
/// required arguments were not provided:") gets the indented lines that
/// follow it, so the line still says which.
pub fn clap_one_line(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first).to_string();
    if !first.ends_with(':') {
        return first;
    }
    let listed: Vec<&str> = lines
        .take_while(|l| l.starts_with(' ') && !l.trim().is_empty())
        .map(str::trim)
        .collect();
    format!("{first} {}", listed.join(", "))
}

/// The whole life of a binary: parse, prepare, run rounds under the
/// deadline, render, exit with the worst status.
pub fn main<T: Tool>() -> ExitCode {
    main_with::<T>(std::env::args_os().collect())
}

/// [`main`] with the arguments given (the first is the program name).
pub fn main_with<T: Tool>(args: Vec<OsString>) -> ExitCode {
    let raw_format = format_from_raw_args(&args);
    std::panic::set_hook(Box::new(move |info| {
        // A panic would exit 101, which Nagios reads as CRITICAL "out of
        // bounds": say what happened and exit UNKNOWN instead.
        let msg = format!("internal error: {info}").replace('\n', " ");
        eprintln!("{}: {msg}", T::CHECK);
        if matches!(raw_format, Some(Format::Nagios | Format::NagiosLine)) {
            println!("{} UNKNOWN - {msg}", T::LABEL);
        }
        std::process::exit(i32::from(Status::Unknown.exit_code()));
    }));
    let mut tool = match parse::<T>(args) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let format_hint = tool.common().format;
    let run = match tool.prepare() {
        Ok(r) => r,
        Err(e) => return usage_error::<T>(&e.0, format_hint.or(raw_format)),
    };
    run_rounds(Arc::new((tool, run)))
}

/// Where a run's records go: rendered to stdout, or to `--output` rewritten
/// whole each round. Shared by the main loop and the watchdog.
struct Emitter {
    renderer: Renderer,
    scrubber: crate::redact::Scrubber,
    host: String,
    labels: BTreeMap<String, String>,
    output: Option<PathBuf>,
    verbose: u8,
    check: &'static str,
}

/// Why records could not be written.
enum EmitError {
    /// The reader went away (`| head`): stop quietly.
    BrokenPipe,
    /// Anything else, said in one line.
    Failed(String),
}

impl Emitter {
    fn emit(&mut self, records: &mut [Record]) -> Result<(), EmitError> {
        for r in records.iter_mut() {
            self.scrubber.scrub_record(r);
            r.host.clone_from(&self.host);
            for (k, v) in &self.labels {
                r.labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if self.verbose > 0 {
            print_trace(records, self.verbose);
        }
        // A problem with the monitor's own files (a read-only state
        // directory, a planted link) is said on stderr too: a cron mail or
        // a person at a terminal sees it even when stdout goes to a file
        // or to Nagios.
        for r in records.iter() {
            let own_file = matches!(
                r.event.as_deref(),
                Some("state_file" | "state" | "spool" | "history")
            );
            if own_file && r.status != Status::Ok {
                eprintln!("{}: {}", self.check, r.summary);
            }
        }
        match &self.output {
            Some(path) => {
                self.renderer.restart();
                let text = self.renderer.render(records);
                crate::state::write_atomic(path, text.as_bytes()).map_err(|e| {
                    EmitError::Failed(format!("cannot write --output {}: {e}", path.display()))
                })
            }
            None => {
                let mut out =
                    std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
                match self
                    .renderer
                    .render_to(records, &mut out)
                    .and_then(|_| out.flush())
                {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        Err(EmitError::BrokenPipe)
                    }
                    Err(e) => Err(EmitError::Failed(format!("cannot write to stdout: {e}"))),
                }
            }
        }
    }
}

/// What the watchdog knows about the round in progress.
struct Watch {
    /// The round being run, with its context, while it runs.
    running: Option<Context>,
    /// Set once the watchdog has claimed the run.
    fired: bool,
    /// Worst status of the rounds already reported.
    overall: Status,
}

type Shared = Arc<(Mutex<Watch>, Condvar)>;

/// Grace after the deadline for a check's own timeout handling to report
/// first: at most this, and at most 5 % of `-t`, so a run ends within
/// `-t` + 10 % even when the watchdog has to end it.
const GRACE: Duration = Duration::from_millis(250);

fn grace(timeout: Duration) -> Duration {
    GRACE.min(timeout / 20)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The backstop behind every check's own timeouts: one thread, started once,
/// that sleeps until a round's deadline plus grace. If the round is still
/// running then, it reports the round as timed out (the --timeout-state) and
/// ends the process, so nothing stuck where no timeout reaches can hold a
/// Nagios check or a cron job past -t.
fn start_watchdog<T: Tool>(
    prepared: Arc<(T, T::Run)>,
    shared: Shared,
    emitter: Arc<Mutex<Emitter>>,
) {
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let (tool, run) = &*prepared;
            let grace = grace(tool.timeout());
            let (mutex, cv) = &*shared;
            let mut watch = lock(mutex);
            loop {
                let Some(ctx) = watch.running.clone() else {
                    watch = cv.wait(watch).unwrap_or_else(|p| p.into_inner());
                    continue;
                };
                let fire_at = ctx.deadline + grace;
                let now = Instant::now();
                if now < fire_at {
                    watch = cv
                        .wait_timeout(watch, fire_at - now)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                    continue;
                }
                watch.fired = true;
                let overall = watch.overall;
                drop(watch);
                let mut records = tool.timed_out(run, &ctx);
                let status = overall.max(worst(&records));
                // The last records are written from another thread and
                // waited for at most the grace again: an output nobody
                // reads (a full pipe) must not hold the process past -t.
                let (said, told) = std::sync::mpsc::channel();
                let out = Arc::clone(&emitter);
                let mut here = records.clone();
                let writer = std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let _ = said.send(lock(&out).emit(&mut records));
                    });
                let emitted = match writer {
                    Ok(_) => told.recv_timeout(grace).ok(),
                    // No thread to spare: write them from here.
                    Err(_) => Some(lock(&emitter).emit(&mut here)),
                };
                let code = match emitted {
                    Some(Ok(())) | Some(Err(EmitError::BrokenPipe)) | None => status,
                    Some(Err(EmitError::Failed(msg))) => {
                        eprintln!("{}: {msg}", T::CHECK);
                        status.max(Status::Unknown)
                    }
                };
                std::process::exit(i32::from(code.exit_code()));
            }
        });
    if let Err(e) = spawned {
        // Without the backstop the checks' own timeouts still apply.
        eprintln!("{}: cannot start the deadline watchdog: {e}", T::CHECK);
    }
}

fn run_rounds<T: Tool>(prepared: Arc<(T, T::Run)>) -> ExitCode {
    let (tool, run) = &*prepared;
    let common = tool.common().clone();
    let format = common.format.unwrap_or_else(|| {
        if common.output.is_none() && std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Jsonl
        }
    });
    let emitter = Arc::new(Mutex::new(Emitter {
        renderer: Renderer::new(format, T::LABEL),
        scrubber: crate::redact::Scrubber::new(tool.secrets(run)),
        host: common
            .reporting_host
            .clone()
            .unwrap_or_else(system_hostname),
        labels: common.labels.iter().cloned().collect(),
        output: common.output.clone(),
        verbose: common.verbose,
        check: T::CHECK,
    }));
    let shared: Shared = Arc::new((
        Mutex::new(Watch {
            running: None,
            fired: false,
            overall: Status::Ok,
        }),
        Condvar::new(),
    ));
    start_watchdog(
        Arc::clone(&prepared),
        Arc::clone(&shared),
        Arc::clone(&emitter),
    );
    let (mutex, cv) = &*shared;
    // A progress line only for a person at a terminal, never in a pipe.
    let progress = (format == Format::Table && std::io::stderr().is_terminal()).then(|| {
        Progress(Arc::new(|done: usize, total: usize| {
            let mut err = std::io::stderr().lock();
            if done >= total {
                let _ = write!(err, "\r\x1b[K");
            } else {
                let _ = write!(err, "\r  {done}/{total} done...");
            }
            let _ = err.flush();
        }))
    });
    // Only JSON lines to stdout can carry records mid-round; the other
    // formats are written whole (a table, one Nagios answer, a file).
    let stream = (format == Format::Jsonl && common.output.is_none()).then(|| {
        let emitter = Arc::clone(&emitter);
        let shared = Arc::clone(&shared);
        Stream(Arc::new(move |mut records: Vec<Record>| {
            let status = worst(&records);
            {
                let mut watch = lock(&shared.0);
                watch.overall = watch.overall.max(status);
            }
            if let Err(EmitError::Failed(msg)) = lock(&emitter).emit(&mut records) {
                eprintln!("{}: {msg}", T::CHECK);
            }
        }))
    });
    let mut overall = Status::Ok;
    let started = Instant::now();
    let mut round: u64 = 0;
    loop {
        let ctx = Context {
            deadline: Instant::now() + tool.timeout(),
            timeout_state: common.timeout_state,
            verbose: common.verbose,
            progress: progress.clone(),
            stream: stream.clone(),
            round: RoundCache::default(),
        };
        lock(mutex).running = Some(ctx.clone());
        cv.notify_all();
        let mut records = tool.run(run, &ctx);
        {
            let mut watch = lock(mutex);
            if watch.fired {
                // The watchdog has reported this round and is ending the
                // process; printing ours too would make two answers.
                drop(watch);
                loop {
                    std::thread::park();
                }
            }
            watch.running = None;
            // Records streamed during the round count too.
            overall = overall.max(watch.overall);
        }
        overall = overall.max(worst(&records));
        let written = lock(&emitter).emit(&mut records);
        match written {
            Ok(()) => {}
            Err(EmitError::BrokenPipe) => break,
            Err(EmitError::Failed(msg)) => {
                let check = lock(&emitter).check;
                eprintln!("{check}: {msg}");
                overall = overall.max(Status::Unknown);
                if common.every.is_none() {
                    return ExitCode::from(Status::Unknown.exit_code());
                }
            }
        }
        lock(mutex).overall = overall;
        round += 1;
        let Some(every) = common.every else { break };
        if common.count.is_some_and(|n| round >= n) {
            break;
        }
        // Rounds start on a fixed grid so a slow round does not drift the rest.
        let next = started + every.saturating_mul(u32::try_from(round).unwrap_or(u32::MAX));
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    ExitCode::from(overall.exit_code())
}

fn print_trace(records: &[Record], verbose: u8) {
    let mut err = std::io::stderr().lock();
    for r in records {
        let _ = writeln!(
            err,
            "{} [{}] {}: {}",
            r.check,
            r.status.label(),
            r.name,
            r.summary
        );
        for s in &r.trace {
            let _ = writeln!(
                err,
                "  {:<10} {:<6} {:>10} ms  {}",
                s.step,
                if s.ok { "ok" } else { "FAILED" },
                crate::render::number(s.ms),
                s.detail.as_deref().unwrap_or("")
            );
        }
        if verbose > 1 && !r.details.is_empty() {
            let _ = writeln!(
                err,
                "  details: {}",
                serde_json::Value::Object(r.details.clone())
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_found_in_raw_args() {
        let args: Vec<OsString> = ["x", "--format", "nagios", "--bogus"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(format_from_raw_args(&args), Some(Format::Nagios));
        let args: Vec<OsString> = ["x", "--format=csv"].iter().map(OsString::from).collect();
        assert_eq!(format_from_raw_args(&args), Some(Format::Csv));
    }

    /// A check that hangs where no timeout of its own reaches.
    #[derive(Debug, Clone, Parser)]
    #[command(name = "hang")]
    struct Hang {
        #[command(flatten)]
        common: Common,
    }

    impl Tool for Hang {
        const CHECK: &'static str = "hang";
        const LABEL: &'static str = "HANG";
        type Run = ();
        fn common(&self) -> &Common {
            &self.common
        }
        fn prepare(&mut self) -> Result<(), UsageError> {
            Ok(())
        }
        fn run(&self, _run: &(), _ctx: &Context) -> Vec<Record> {
            // Bounded, so a broken watchdog fails the test instead of hanging it.
            std::thread::sleep(Duration::from_secs(20));
            vec![Record::new(
                "hang",
                "t",
                Status::Ok,
                "should never be printed",
            )]
        }
        fn timed_out(&self, _run: &(), ctx: &Context) -> Vec<Record> {
            vec![Record::new(
                "hang",
                "t",
                ctx.timeout_state,
                "cut off by the watchdog",
            )]
        }
    }

    // Runs only as the child of `watchdog_ends_a_stuck_round`, which needs a
    // process of its own because the watchdog exits the process.
    #[test]
    fn watchdog_child() {
        if std::env::var_os("SKYPROBE_WATCHDOG_CHILD").is_none() {
            return;
        }
        let args = [
            "hang",
            "-t",
            "1",
            "--timeout-state",
            "warning",
            "--format",
            "jsonl",
        ];
        let _ = main_with::<Hang>(args.iter().map(OsString::from).collect());
    }

    #[test]
    fn watchdog_ends_a_stuck_round() {
        let exe = std::env::current_exe().expect("test binary");
        let started = Instant::now();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "cli::tests::watchdog_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SKYPROBE_WATCHDOG_CHILD", "1")
            .output()
            .expect("child runs");
        let took = started.elapsed();
        assert_eq!(
            out.status.code(),
            Some(1),
            "exit code is the --timeout-state"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let records: Vec<Record> = stdout
            .lines()
            // The harness prints "test ... " before the child's own output.
            .filter_map(|l| l.find("{\"ts\"").map(|i| &l[i..]))
            .map(|l| serde_json::from_str(l).expect("record"))
            .collect();
        assert_eq!(records.len(), 1, "{stdout}");
        assert_eq!(records[0].status, Status::Warning);
        assert_eq!(records[0].summary, "cut off by the watchdog");
        // A bound on a hang (the check would sleep 20 s), not a speed claim.
        assert!(took < Duration::from_secs(10), "took {took:?}");
    }

    #[test]
    fn the_watchdog_fires_within_five_percent_of_the_deadline() {
        // Was a fixed 250 ms: -t 1 ended at 1.27 s, past the promised 10 %.
        assert_eq!(grace(Duration::from_secs(1)), Duration::from_millis(50));
        assert_eq!(grace(Duration::from_secs(2)), Duration::from_millis(100));
        assert_eq!(grace(Duration::from_secs(60)), GRACE);
    }

    #[test]
    fn regex_errors_are_one_line_with_the_place() {
        // Built at run time: clippy rejects an invalid literal pattern.
        let bad = |p: &str| regex::Regex::new(p).expect_err("bad");
        let e = bad(&format!("ab{}c", '('));
        assert_eq!(
            regex_words(&e),
            "bad regex: unclosed group (at character 3)"
        );
        let e = bad(&format!("x{}", '['));
        assert!(!regex_words(&e).contains('\n'), "{}", regex_words(&e));
    }

    #[test]
    fn labels_parse() {
        assert_eq!(parse_label("az=zone-a"), Ok(("az".into(), "zone-a".into())));
        assert_eq!(parse_label("k=a=b"), Ok(("k".into(), "a=b".into())));
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=x").is_err());
    }
}
