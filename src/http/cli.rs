//! probe-http as a tool: what `prepare` makes of the flags (one probe, a
//! targets file, or managing one), the rounds, and the state file. The
//! flags themselves are in [`super::options`].

use std::path::Path;
use std::sync::Mutex;

use super::targets::{self, HttpState, Target};
use super::Spec;
use crate::cli::{Common, Context, Tool, UsageError};
use crate::reload::{Reloading, Stamp};
use crate::report::{Record, Status};

pub use super::options::Args;

/// What `prepare` made of probe-http's flags: what to do, and the names of
/// the targets whose records already went out this round.
#[derive(Debug)]
pub struct Run {
    mode: Mode,
    streamed: Mutex<std::collections::HashSet<String>>,
}

/// What a run of probe-http does.
#[derive(Debug, Clone)]
enum Mode {
    One(Box<Spec>),
    Many(std::sync::Arc<Reloading<Vec<Target>>>),
    List(Vec<Target>),
    Show(String),
    Toggle(String, bool),
}

impl Args {
    fn targets_path(&self) -> Option<&Path> {
        self.targets
            .as_deref()
            .or(self.targets_csv.as_deref())
            .or(self.targets_skypunch.as_deref())
    }

    /// A reloaded file must still have every target --only names.
    fn check_only(&self, all: Vec<Target>) -> Result<Vec<Target>, UsageError> {
        for name in &self.only {
            if !all.iter().any(|t| &t.name == name) {
                return Err(UsageError::new(format!(
                    "--only {name:?}: no such target in the targets file"
                )));
            }
        }
        Ok(all)
    }

    fn load_targets(&self) -> Result<Option<Vec<Target>>, UsageError> {
        targets::check_given(&self.given_words)?;
        match (&self.targets, &self.targets_csv, &self.targets_skypunch) {
            (Some(f), _, _) => targets::load_toml(f, &self.given_words).map(Some),
            (None, Some(f), _) => targets::load_csv(f, &self.given_words).map(Some),
            (None, None, Some(f)) => targets::load_skypunch(f, &self.given_words).map(Some),
            (None, None, None) => Ok(None),
        }
    }

    fn with_state<R>(
        &self,
        f: impl FnOnce(&mut HttpState) -> R,
    ) -> Result<(R, Vec<String>), String> {
        match &self.state {
            Some(path) => crate::state::update(path, f),
            None => Ok((f(&mut HttpState::default()), Vec::new())),
        }
    }

    fn state_notes(&self, notes: Vec<String>, records: &mut Vec<Record>) {
        if let Some(path) = &self.state {
            records.extend(
                notes
                    .into_iter()
                    .map(|n| crate::state::note_record(super::CHECK, path, n)),
            );
        }
    }

    fn run_many(
        &self,
        streamed: &Mutex<std::collections::HashSet<String>>,
        all: &[Target],
        ctx: &Context,
    ) -> Vec<Record> {
        streamed.lock().unwrap_or_else(|p| p.into_inner()).clear();
        // The state is read without the lock and the lock is taken only to
        // merge this run's counts at the end: overlapping runs (cron) never
        // spend their deadline waiting for each other. Records go out with
        // the counters as this run sees them.
        let mut seen: Option<HttpState> = self.state.as_deref().map(crate::state::snapshot);
        let disabled: Vec<String> = match &seen {
            Some(l) if self.only.is_empty() => l
                .targets
                .iter()
                .filter(|(_, t)| t.disabled)
                .map(|(n, _)| n.clone())
                .collect(),
            _ => Vec::new(),
        };
        let chosen: Vec<&Target> = all
            .iter()
            .filter(|t| {
                if self.only.is_empty() {
                    t.enabled && !disabled.contains(&t.name)
                } else {
                    self.only.contains(&t.name)
                }
            })
            .collect();
        let state = Mutex::new((seen.as_mut(), Vec::<(String, Record)>::new()));
        let kept = Mutex::new(Vec::new());
        targets::run_all_in_order(&chosen, ctx, self.concurrency, &|mut chunk: Vec<Record>| {
            {
                let mut guard = state.lock().unwrap_or_else(|p| p.into_inner());
                let (seen, counted) = &mut *guard;
                if let Some(s) = seen.as_mut() {
                    for r in chunk.iter_mut() {
                        let stats = s.targets.entry(r.name.clone()).or_default();
                        stats.update(r);
                        stats.annotate(r);
                        counted.push((r.name.clone(), targets::counted_part(r)));
                    }
                }
            }
            let names: Vec<String> = chunk.iter().map(|r| r.name.clone()).collect();
            let left = ctx.emit_now(chunk);
            if left.is_empty() {
                // Out already: a deadline backstop must not report them again.
                streamed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(names);
            }
            kept.lock().unwrap_or_else(|p| p.into_inner()).extend(left);
        });
        let mut records = kept.into_inner().unwrap_or_else(|p| p.into_inner());
        let (_, counted) = state.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(path) = &self.state {
            records.extend(ctx.emit_now(self.merge(path, counted, ctx)));
        }
        records
    }

    /// Add this run's counts to the state under its lock: the state as it
    /// is now (another run may have merged since this one started), so no
    /// run's counts are lost. The lock is waited for until the deadline
    /// (another run holds it only to merge); past it, this run's counts are
    /// not saved and a record says so.
    fn merge(&self, path: &Path, counted: Vec<(String, Record)>, ctx: &Context) -> Vec<Record> {
        let until = ctx
            .deadline
            .max(std::time::Instant::now() + std::time::Duration::from_millis(20));
        let mut notes = Vec::new();
        match crate::state::Locked::<HttpState>::open_until(path, until) {
            Ok(Some(mut l)) => {
                for (name, r) in &counted {
                    l.value.targets.entry(name.clone()).or_default().update(r);
                }
                notes.extend(l.warning.take());
                if let Err(e) = l.save() {
                    notes.push(e);
                }
            }
            Ok(None) => notes.push(format!(
                "--state {}: another run held the state lock until the deadline (-t); this run's counts for {} targets were not saved",
                path.display(),
                counted.len()
            )),
            Err(e) => notes.push(e),
        }
        let mut extra = Vec::new();
        self.state_notes(notes, &mut extra);
        extra
    }

    fn list(&self, all: &[Target]) -> Vec<Record> {
        let state = match self.with_state(|s| s.clone()) {
            Ok((s, _)) => s,
            Err(e) => return vec![Record::new(super::CHECK, "", Status::Unknown, e)],
        };
        all.iter()
            .map(|t| {
                let stats = state.targets.get(&t.name).cloned().unwrap_or_default();
                let enabled = t.enabled && !stats.disabled;
                let mut r = Record::new(super::CHECK, &t.spec.url, stats.last_status.unwrap_or(Status::Unknown), "");
                r.name = t.name.clone();
                r.labels = (*t.spec.labels).clone();
                r.summary = format!(
                    "{}; {} pass / {} fail; 2xx {} 3xx {} 4xx {} 5xx {}; {} network failures; {} failing in a row{}",
                    if enabled { "enabled" } else if stats.disabled { "disabled (--disable)" } else { "disabled (file)" },
                    stats.pass_count,
                    stats.fail_count,
                    stats.count_2xx,
                    stats.count_3xx,
                    stats.count_4xx,
                    stats.count_5xx,
                    stats.network_failures,
                    stats.consecutive_failures,
                    stats.last_status.map(|_| String::new()).unwrap_or_else(|| "; never probed".into()),
                );
                r.detail("enabled", enabled);
                stats.annotate(&mut r);
                r
            })
            .collect()
    }

    fn show(&self, name: &str) -> Vec<Record> {
        let stats = match self.with_state(|s| s.targets.get(name).cloned()) {
            Ok((Some(s), _)) => s,
            Ok((None, _)) => {
                return vec![Record::new(
                    super::CHECK,
                    name,
                    Status::Unknown,
                    format!("no counters for {name:?} in --state"),
                )]
            }
            Err(e) => return vec![Record::new(super::CHECK, name, Status::Unknown, e)],
        };
        let mut r = Record::new(
            super::CHECK,
            name,
            stats.last_status.unwrap_or(Status::Unknown),
            "",
        );
        r.summary = match (&stats.last_failure_summary, &stats.last_failure_at) {
            (Some(s), Some(at)) => format!("last failure at {at}: {s}"),
            _ => "no failure recorded".to_string(),
        };
        r.trace = stats.last_failure_trace.clone();
        r.detail("disabled", stats.disabled);
        stats.annotate(&mut r);
        if let Some(at) = &stats.last_failure_at {
            r.detail("last_failure_at", at.clone());
        }
        vec![r]
    }

    fn toggle(&self, name: &str, enable: bool) -> Vec<Record> {
        let result =
            self.with_state(|s| s.targets.entry(name.to_string()).or_default().disabled = !enable);
        let mut records = Vec::new();
        match result {
            Ok(((), notes)) => {
                let mut r = Record::new(
                    super::CHECK,
                    name,
                    Status::Ok,
                    format!(
                        "{name} {}",
                        if enable {
                            "enabled"
                        } else {
                            "disabled; runs skip it until --enable"
                        }
                    ),
                );
                r.event = Some(if enable { "enabled" } else { "disabled" }.into());
                records.push(r);
                self.state_notes(notes, &mut records);
            }
            Err(e) => records.push(Record::new(super::CHECK, name, Status::Unknown, e)),
        }
        records
    }
}

impl Tool for Args {
    const CHECK: &'static str = super::CHECK;
    const LABEL: &'static str = "HTTP";
    type Run = Run;

    fn common(&self) -> &Common {
        &self.common
    }

    fn secrets(&self, run: &Run) -> Vec<String> {
        // One probe's own; each target of a file scrubs its own record.
        match &run.mode {
            Mode::One(spec) => spec.secrets(),
            _ => Vec::new(),
        }
    }

    fn given(&mut self, matches: &clap::ArgMatches) {
        // Only a targets run needs them (and one probe starts quicker without).
        if self.targets.is_some() || self.targets_csv.is_some() || self.targets_skypunch.is_some() {
            self.given_words = targets::given_words(matches);
        }
    }

    fn prepare(&mut self) -> Result<Run, UsageError> {
        let stamp = self.targets_path().and_then(Stamp::of);
        let all = self.load_targets()?;
        let needs_file =
            |flag: &str| UsageError::new(format!("{flag} needs --targets or --targets-csv"));
        let known = |all: &Vec<Target>, name: &str, flag: &str| -> Result<(), UsageError> {
            if all.iter().any(|t| t.name == name) {
                Ok(())
            } else {
                Err(UsageError::new(format!(
                    "{flag} {name:?}: no such target in the targets file"
                )))
            }
        };
        let mode = match all {
            None => {
                for (set, flag) in [
                    (!self.only.is_empty(), "--only"),
                    (self.list, "--list"),
                    (self.disable.is_some(), "--disable"),
                    (self.enable.is_some(), "--enable"),
                ] {
                    if set {
                        return Err(needs_file(flag));
                    }
                }
                match &self.show {
                    Some(name) => Mode::Show(name.clone()),
                    None => Mode::One(Box::new(self.to_spec()?)),
                }
            }
            Some(all) => {
                for name in &self.only {
                    known(&all, name, "--only")?;
                }
                if self.concurrency == 0 {
                    return Err(UsageError::new("--concurrency must be at least 1"));
                }
                if !self.only.is_empty() {
                    // "Test this target now": the whole trace, as Skypunch showed it.
                    self.common.verbose = self.common.verbose.max(1);
                }
                if self.list {
                    Mode::List(all)
                } else if let Some(name) = &self.show {
                    Mode::Show(name.clone())
                } else if let Some(name) = &self.disable {
                    known(&all, name, "--disable")?;
                    Mode::Toggle(name.clone(), false)
                } else if let Some(name) = &self.enable {
                    known(&all, name, "--enable")?;
                    Mode::Toggle(name.clone(), true)
                } else {
                    let path = self.targets_path().unwrap_or(Path::new("-"));
                    Mode::Many(std::sync::Arc::new(Reloading::new(path, stamp, all)))
                }
            }
        };
        Ok(Run {
            mode,
            streamed: Mutex::default(),
        })
    }

    fn run(&self, run: &Run, ctx: &Context) -> Vec<Record> {
        match &run.mode {
            Mode::One(spec) if spec.openstack.as_ref().is_some_and(|o| o.all_endpoints) => {
                match super::auth::sweep(spec, ctx) {
                    Ok(list) => {
                        let refs: Vec<&Target> = list.iter().collect();
                        targets::run_all(&refs, ctx, self.concurrency)
                    }
                    Err(why) => vec![*why],
                }
            }
            Mode::One(spec) => {
                let mut r = super::auth::probe(spec, ctx);
                if self.state.is_none() {
                    return vec![r];
                }
                let name = r.name.clone();
                let notes = match self.with_state(|s| {
                    let stats = s.targets.entry(name).or_default();
                    stats.update(&r);
                    stats.annotate(&mut r);
                }) {
                    Ok(((), notes)) => notes,
                    Err(e) => vec![e],
                };
                let mut records = vec![r];
                self.state_notes(notes, &mut records);
                records
            }
            Mode::Many(file) => {
                // With --every, an edited targets file is read again.
                let round = file.current(|| {
                    self.load_targets()
                        .map(Option::unwrap_or_default)
                        .map(|t| self.check_only(t))?
                });
                let said = file.record(super::CHECK, &round, round.value.len(), "targets");
                let mut records = ctx.emit_now(said.into_iter().collect());
                records.extend(self.run_many(&run.streamed, &round.value, ctx));
                records
            }
            Mode::List(all) => self.list(all),
            Mode::Show(name) => self.show(name),
            Mode::Toggle(name, enable) => self.toggle(name, *enable),
        }
    }

    fn timed_out(&self, run: &Run, ctx: &Context) -> Vec<Record> {
        let summary = format!("timed out after {:.1} s", self.timeout().as_secs_f64());
        let one = |name: &str, url: &str| {
            let mut r = Record::new(super::CHECK, url, ctx.timeout_state, summary.clone());
            r.name = name.to_string();
            r.duration_ms = crate::report::round_ms(self.timeout());
            r
        };
        match &run.mode {
            Mode::One(spec) => vec![one(spec.display_name(), &spec.url)],
            Mode::Many(file) => {
                let streamed = run.streamed.lock().unwrap_or_else(|p| p.into_inner());
                file.value()
                    .iter()
                    .filter(|t| t.enabled && (self.only.is_empty() || self.only.contains(&t.name)))
                    .filter(|t| !streamed.contains(&t.name))
                    .map(|t| one(&t.name, &t.spec.url))
                    .collect()
            }
            _ => vec![one("probe-http", "")],
        }
    }
}
