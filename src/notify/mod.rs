//! notify: from a stream of records to alerts on state change, delivered
//! at least once.
//!
//! Records arrive on stdin ([`input`]), are grouped by key into alarms
//! ([`alarm`]: fire, resolve, remind, go quiet, flap), and every alert is
//! written to the [`spool`] before any sink ([`sinks`]) is tried; it leaves
//! the spool only when every routed sink has accepted it or refused it
//! for good. notify's own output is records: one per delivery attempt.

pub mod alarm;
pub mod cli;
pub mod config;
pub mod email;
pub mod input;
pub mod masakari;
pub mod sinks;
pub mod spool;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::report::{Record, Status};
use alarm::{Alarm, AlarmState, Kind, Rules, Transition};
use config::Config;
use input::{Incoming, KeyPart};
use sinks::{Failure, Sink};
use spool::{Delivery, Item, Outcome, Spool};

/// The `check` field of notify's records.
pub const CHECK: &str = "notify";

/// Deliveries stop this long before the deadline: time to save the state,
/// prune the spool and print the run's last records.
pub const DELIVERY_MARGIN: Duration = Duration::from_millis(100);

/// An attempt is not started with less time than this left.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

/// Unix seconds now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// RFC 3339 of Unix seconds.
pub fn ts(secs: f64) -> String {
    crate::report::timestamp(UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)))
}

/// What is sent: one alarm's transition, with the record that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique per key and transition, and the same if a crash makes
    /// notify see the transition again: `<key hash>-<seq>`.
    pub id: String,
    /// The alarm key (`check/host/name` by default).
    pub key: String,
    /// The key's hash, hex: PagerDuty's dedup key is made of it.
    pub key_hash: String,
    /// firing, resolved, reminder, insufficient_data, flapping_start/stop.
    pub kind: Kind,
    /// The state now.
    pub state: AlarmState,
    /// The state before (as last notified).
    pub previous: AlarmState,
    /// When (RFC 3339).
    pub at: String,
    /// Since when the alarm is in this state (RFC 3339).
    pub since: String,
    /// The record's check.
    pub check: String,
    /// The record's name.
    pub name: String,
    /// The record's target.
    pub target: String,
    /// The record's host.
    pub host: String,
    /// The record's summary (or what notify says for a quiet key).
    pub summary: String,
    /// The record's labels.
    pub labels: BTreeMap<String, String>,
    /// The whole record that caused it, trace included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<serde_json::Value>,
}

/// Per-sink counters kept in the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SinkCounters {
    /// Alerts accepted.
    pub delivered: u64,
    /// Attempts that will be retried.
    pub retried: u64,
    /// Alerts refused for good or given up on.
    pub dropped: u64,
}

/// What `--state` keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotifyState {
    /// Alarms by key.
    #[serde(default)]
    pub alarms: HashMap<String, Alarm>,
    /// Delivery counters by sink name.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkCounters>,
    /// Lines on stdin that were not records, over all runs.
    #[serde(default)]
    pub bad_lines: u64,
}

/// One line of the transition history (`notify history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryLine {
    /// When.
    pub ts: String,
    /// The alarm key.
    pub key: String,
    /// What kind of transition.
    pub kind: Kind,
    /// From.
    pub from: AlarmState,
    /// To.
    pub to: AlarmState,
    /// Held back by flap detection.
    pub suppressed: bool,
    /// The alert's id.
    pub id: String,
    /// The summary of the record that caused it.
    pub summary: String,
}

/// A configured sink with its name and per-attempt timeout.
pub struct NamedSink {
    /// From the configuration or the flag.
    pub name: String,
    /// The sink.
    pub sink: Box<dyn Sink>,
    /// false: configured, not used.
    pub enabled: bool,
    /// Per attempt.
    pub timeout: Duration,
}

/// How to retry.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// First wait.
    pub base: Duration,
    /// Longest wait.
    pub cap: Duration,
    /// Give up on an alert this long after it was spooled.
    pub give_up_after: Duration,
}

/// The engine: rules, routes and sinks, applied to a state and a spool.
pub struct Notifier {
    /// Rules from flags (the configuration may override).
    pub base: Rules,
    /// The configuration file, if any.
    pub config: Config,
    /// What an alarm is per.
    pub key: Vec<KeyPart>,
    /// Every sink.
    pub sinks: Vec<NamedSink>,
    /// Retry policy.
    pub retry: Retry,
    /// Print what would be sent; send nothing, change nothing.
    pub dry_run: bool,
    /// Where transitions are appended.
    pub history: Option<PathBuf>,
    /// The sinks' secrets, scrubbed from what a peer says back.
    pub scrubber: crate::redact::Scrubber,
}

impl Notifier {
    fn enabled(&self) -> Vec<String> {
        self.sinks
            .iter()
            .filter(|s| s.enabled)
            .map(|s| s.name.clone())
            .collect()
    }

    fn sink(&self, name: &str) -> Option<&NamedSink> {
        self.sinks.iter().find(|s| s.name == name)
    }

    /// A line the reader could not use (too long, not UTF-8), counted with
    /// the bad lines.
    pub fn unusable_line(&self, state: &mut NotifyState, line_no: u64, why: &str) -> Vec<Record> {
        state.bad_lines += 1;
        vec![self.bad_line(line_no, why)]
    }

    /// A record saying a stdin line was not a record.
    pub fn bad_line(&self, line_no: u64, why: &str) -> Record {
        let mut r = Record::new(
            CHECK,
            "stdin",
            Status::Unknown,
            format!("stdin line {line_no}: {why}; skipped"),
        );
        r.name = format!("stdin:{line_no}");
        r.event = Some("bad_input".into());
        r.detail("line", line_no);
        r
    }

    /// Handle one stdin line at `now`. Returns records, and whether an
    /// alert was spooled (the state must then be saved before delivering).
    pub fn line(
        &self,
        state: &mut NotifyState,
        spool: &mut Spool,
        line_no: u64,
        line: &str,
        now: f64,
    ) -> (Vec<Record>, bool) {
        if line.trim().is_empty() {
            return (Vec::new(), false);
        }
        let r = match input::parse(line) {
            Ok(r) => r,
            Err(why) => {
                state.bad_lines += 1;
                return (vec![self.bad_line(line_no, &why)], false);
            }
        };
        let key = input::key(&self.key, &r);
        let rules = self.config.rules_for(&self.base, &r.check, &r.name);
        let alarm = match state.alarms.get_mut(&key) {
            Some(a) => a,
            None => state
                .alarms
                .entry(key.clone())
                .or_insert_with(|| Alarm::new(now)),
        };
        let transitions = alarm.observe(r.status, now, rules);
        if transitions.is_empty() {
            return (Vec::new(), false);
        }
        let since = alarm.since;
        let mut out = Vec::new();
        let mut spooled = false;
        for t in transitions {
            let alert = self.alert(&key, &t, &r, Some(line), now, since);
            let (records, s) = self.emit(state, spool, alert, &t, now);
            out.extend(records);
            spooled |= s;
        }
        (out, spooled)
    }

    /// Keys that went quiet for longer than their `stale_after`.
    pub fn sweep(
        &self,
        state: &mut NotifyState,
        spool: &mut Spool,
        now: f64,
    ) -> (Vec<Record>, bool) {
        let mut found: Vec<(String, Transition, Alarm)> = Vec::new();
        for (key, alarm) in state.alarms.iter_mut() {
            let (check, name) = key.split_once('/').unwrap_or((key.as_str(), ""));
            let rules = self.config.rules_for(&self.base, check, name);
            if let Some(t) = alarm.sweep(now, rules) {
                found.push((key.clone(), t, alarm.clone()));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::new();
        let mut spooled = false;
        for (key, t, alarm) in found {
            let (check, name) = key.split_once('/').unwrap_or((key.as_str(), ""));
            let quiet = Incoming {
                check: check.into(),
                status: Status::Unknown,
                target: name.into(),
                name: name.into(),
                host: "".into(),
                summary: format!("no record for {key} since {}", ts(alarm.last_seen)).into(),
                labels: BTreeMap::new(),
            };
            let alert = self.alert(&key, &t, &quiet, None, now, alarm.since);
            let (records, s) = self.emit(state, spool, alert, &t, now);
            out.extend(records);
            spooled |= s;
        }
        (out, spooled)
    }

    fn alert(
        &self,
        key: &str,
        t: &Transition,
        r: &Incoming<'_>,
        line: Option<&str>,
        now: f64,
        since: f64,
    ) -> Alert {
        let key_hash = format!("{:016x}", crate::state::fnv(key));
        Alert {
            id: format!("{key_hash}-{}", t.seq),
            key: key.to_string(),
            key_hash,
            kind: t.kind,
            state: t.to,
            previous: t.from,
            at: ts(now),
            since: ts(since),
            check: r.check.to_string(),
            name: r.name.to_string(),
            target: r.target.to_string(),
            host: r.host.to_string(),
            summary: r.summary.to_string(),
            labels: r.labels.clone(),
            record: line.and_then(|l| serde_json::from_str(l).ok()),
        }
    }

    fn append_history(&self, alert: &Alert, t: &Transition) -> Option<String> {
        let path = self.history.as_ref()?;
        let line = HistoryLine {
            ts: alert.at.clone(),
            key: alert.key.clone(),
            kind: t.kind,
            from: t.from,
            to: t.to,
            suppressed: t.suppressed,
            id: alert.id.clone(),
            summary: alert.summary.clone(),
        };
        let mut text = serde_json::to_string(&line).unwrap_or_default();
        text.push('\n');
        let written =
            crate::files::open_no_follow(path, true).and_then(|mut f| f.write_all(text.as_bytes()));
        written
            .err()
            .map(|e| format!("history {}: {}", path.display(), crate::files::io_words(&e)))
    }

    /// Record a transition and spool its alert for its sinks.
    fn emit(
        &self,
        state: &mut NotifyState,
        spool: &mut Spool,
        alert: Alert,
        t: &Transition,
        now: f64,
    ) -> (Vec<Record>, bool) {
        let mut out = Vec::new();
        if !self.dry_run {
            if let Some(problem) = self.append_history(&alert, t) {
                out.push(note(Status::Warning, "history", problem));
            }
        }
        if t.suppressed {
            return (out, false);
        }
        let targets: Vec<String> = self
            .config
            .route(&alert, &self.enabled())
            .into_iter()
            .filter(|name| self.sink(name).is_some_and(|s| s.sink.wants(&alert)))
            .collect();
        if targets.is_empty() {
            let mut r = alert_record(&alert, "(none)", Status::Ok, "no sink takes it".to_string());
            r.event = Some("unrouted".into());
            out.push(r);
            return (out, false);
        }
        if self.dry_run {
            for name in &targets {
                if let Some(s) = self.sink(name) {
                    let mut r = alert_record(
                        &alert,
                        name,
                        Status::Ok,
                        format!("would send to {}", s.sink.describe()),
                    );
                    r.event = Some("would_send".into());
                    r.detail("payload", s.sink.payload(&alert));
                    out.push(r);
                }
            }
            return (out, false);
        }
        let key = alert.key.clone();
        if spool.contains(&alert.id) {
            // Seen before a crash: the spooled copy and its deliveries stand.
            return (out, false);
        }
        let item = Item {
            deliveries: targets
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        Delivery {
                            outcome: Outcome::Pending,
                            attempts: 0,
                            next_try: now,
                            last_error: None,
                        },
                    )
                })
                .collect(),
            alert,
            created: now,
        };
        if let Err(e) = spool.add(item) {
            // Cannot spool: say so loudly; the alarm state is not saved as
            // notified, so the next record tries again.
            out.push(note(Status::Critical, "spool", e));
            if let Some(a) = state.alarms.get_mut(&key) {
                a.notified = t.from;
            }
            return (out, false);
        }
        (out, true)
    }

    /// After a crash: alerts in the spool whose transition the saved state
    /// does not know yet are made known, so the same transition is not
    /// alerted twice under a new id.
    pub fn reconcile(state: &mut NotifyState, spool: &Spool) {
        for item in &spool.items {
            let seq = item
                .alert
                .id
                .rsplit_once('-')
                .and_then(|(_, s)| s.parse::<u64>().ok())
                .unwrap_or(0);
            let a = state
                .alarms
                .entry(item.alert.key.clone())
                .or_insert_with(|| Alarm::new(item.created));
            if seq > a.seq {
                a.seq = seq;
                if matches!(
                    item.alert.kind,
                    Kind::Firing | Kind::Resolved | Kind::InsufficientData
                ) {
                    a.state = item.alert.state;
                    a.notified = item.alert.state;
                }
            }
        }
    }

    /// Try every due delivery, oldest alert first; a sink gets a key's
    /// alerts in order (a later one waits while an earlier one is pending).
    /// Each outcome is handed to `ctx` as it happens (and is on disk before
    /// the next attempt); no attempt runs past the run's deadline, and one
    /// the deadline cut short is tried again by the next run without waiting.
    pub fn deliver(
        &self,
        state: &mut NotifyState,
        spool: &mut Spool,
        now: f64,
        ctx: &crate::cli::Context,
    ) -> Vec<Record> {
        let mut out = Vec::new();
        let mut blocked: HashSet<(String, String)> = HashSet::new();
        'items: for idx in 0..spool.items.len() {
            let mut changed = false;
            let names: Vec<String> = spool.items[idx].deliveries.keys().cloned().collect();
            for name in names {
                let item = &mut spool.items[idx];
                let lane = (item.alert.key.clone(), name.clone());
                let Some(d) = item.deliveries.get_mut(&name) else {
                    continue;
                };
                if d.outcome != Outcome::Pending || blocked.contains(&lane) {
                    continue;
                }
                if d.next_try > now {
                    blocked.insert(lane);
                    continue;
                }
                let counters = state.sinks.entry(name.clone()).or_default();
                let sink = match self.sink(&name) {
                    Some(s) if s.enabled => s,
                    other => {
                        d.outcome = Outcome::Dropped;
                        let why = if other.is_some() {
                            "the sink is disabled"
                        } else {
                            "no sink of this name is configured any more"
                        };
                        d.last_error = Some(why.into());
                        counters.dropped += 1;
                        let mut r = alert_record(
                            &item.alert,
                            &name,
                            Status::Warning,
                            format!("not sent: {why}"),
                        );
                        r.event = Some("dropped".into());
                        out.push(r);
                        changed = true;
                        continue;
                    }
                };
                // Time is kept after the last attempt to save the state
                // and print what happened.
                let left = ctx.remaining().saturating_sub(DELIVERY_MARGIN);
                if left < MIN_ATTEMPT {
                    break 'items;
                }
                let timeout = sink.timeout.min(left);
                let cut_short = timeout < sink.timeout;
                d.attempts += 1;
                let started = std::time::Instant::now();
                let result = sink.sink.deliver(&item.alert, timeout);
                let result = match result {
                    Err(Failure::Retry(said)) => {
                        Err(Failure::Retry(self.scrubber.scrub(&said).into_owned()))
                    }
                    Err(Failure::Final(said)) => {
                        Err(Failure::Final(self.scrubber.scrub(&said).into_owned()))
                    }
                    Ok(said) => Ok(self.scrubber.scrub(&said).into_owned()),
                };
                // Waits count from the end of the attempt, not its start.
                let after = now + started.elapsed().as_secs_f64();
                let attempts = d.attempts;
                let (status, event, summary) = match result {
                    Ok(said) => {
                        d.outcome = Outcome::Accepted;
                        d.last_error = None;
                        counters.delivered += 1;
                        (
                            Status::Ok,
                            "delivered",
                            format!("delivered to {}: {said}", sink.sink.describe()),
                        )
                    }
                    Err(Failure::Final(said)) => {
                        d.outcome = Outcome::Dropped;
                        d.last_error = Some(said.clone());
                        counters.dropped += 1;
                        (
                            Status::Critical,
                            "dropped",
                            format!("refused by {}: {said}; not retried", sink.sink.describe()),
                        )
                    }
                    Err(Failure::Retry(said)) => {
                        d.last_error = Some(said.clone());
                        if after - item.created >= self.retry.give_up_after.as_secs_f64() {
                            d.outcome = Outcome::Dropped;
                            counters.dropped += 1;
                            (
                                Status::Critical,
                                "dropped",
                                format!(
                                    "gave up on {} after {} attempts over {}: {said}",
                                    sink.sink.describe(),
                                    attempts,
                                    humantime::format_duration(self.retry.give_up_after)
                                ),
                            )
                        } else if cut_short && ctx.remaining() <= DELIVERY_MARGIN {
                            // The deadline, not the sink, ended it: no
                            // back-off, the next run tries at once.
                            d.attempts -= 1;
                            counters.retried += 1;
                            blocked.insert(lane);
                            (
                                Status::Warning,
                                "retry",
                                format!(
                                    "{} not finished when the deadline (-t) came: {said}; spooled for the next run",
                                    sink.sink.describe(),
                                ),
                            )
                        } else {
                            let wait = spool::backoff(attempts, self.retry.base, self.retry.cap);
                            d.next_try = after + wait.as_secs_f64();
                            counters.retried += 1;
                            blocked.insert(lane);
                            (
                                Status::Warning,
                                "retry",
                                format!(
                                    "{} failed: {said}; spooled, next try in {}",
                                    sink.sink.describe(),
                                    humantime::format_duration(Duration::from_secs(wait.as_secs()))
                                ),
                            )
                        }
                    }
                };
                let mut r = alert_record(&item.alert, &name, status, summary);
                r.event = Some(event.into());
                r.detail("attempts", attempts);
                // In the journal before the next attempt: an accepted
                // delivery is never repeated after a kill; durable within
                // the spool's commit interval against a power cut.
                let mut said = vec![r];
                if let Err(e) = spool.persist_at(idx).and_then(|()| spool.commit_if_due()) {
                    said.push(note(Status::Critical, "spool", e));
                }
                out.extend(ctx.emit_now(said));
            }
            if changed {
                if let Err(e) = spool.persist_at(idx) {
                    out.push(note(Status::Critical, "spool", e));
                }
            }
        }
        if let Err(e) = spool.prune() {
            out.push(note(Status::Warning, "spool", e));
        }
        out
    }

    /// A record when alerts are left in the spool at the end of a run.
    ///
    /// (Deliveries stop [`DELIVERY_MARGIN`] before the deadline.)
    pub fn leftover(&self, spool: &Spool) -> Option<Record> {
        let pending: usize = spool.items.iter().filter(|i| !i.done()).count();
        (pending > 0).then(|| {
            let next = spool
                .items
                .iter()
                .flat_map(|i| i.deliveries.values())
                .filter(|d| d.outcome == Outcome::Pending)
                .map(|d| d.next_try)
                .fold(f64::INFINITY, f64::min);
            let mut r = note(
                Status::Warning,
                "spool",
                format!(
                    "{pending} alert(s) spooled for later delivery (next try {}); the next run of notify retries them",
                    ts(next)
                ),
            );
            r.event = Some("spooled".into());
            r.detail("pending", pending);
            r
        })
    }
}

/// A record about one alert and one sink.
pub fn alert_record(alert: &Alert, sink: &str, status: Status, said: String) -> Record {
    let mut r = Record::new(
        CHECK,
        sink,
        status,
        format!(
            "{} {} {} -> {sink}: {said}",
            alert.kind.as_str(),
            alert.state,
            alert.key
        ),
    );
    r.name = alert.key.clone();
    r.labels = alert.labels.clone();
    r.detail("alert_id", alert.id.clone());
    r.detail("kind", alert.kind.as_str());
    r.detail("state", alert.state.as_str());
    r.detail("previous", alert.previous.as_str());
    r.detail("sink", sink);
    r
}

/// A record about notify itself (its spool, history, input).
pub fn note(status: Status, what: &str, message: String) -> Record {
    let mut r = Record::new(CHECK, what, status, message);
    r.event = Some(what.to_string());
    r
}

/// The default sink names given on the command line (`--webhook` ...).
pub fn flag_sink_name(kind: &str, n: usize) -> String {
    if n == 0 {
        kind.to_string()
    } else {
        format!("{kind}-{}", n + 1)
    }
}
