//! watch-domains' flags and its two ways of running: one look (states,
//! changes since the last run, guest-agent pings), or `--follow` (events as
//! they arrive, surviving a lost connection).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use regex::Regex;

use super::heartbeat::{self, Agent, Beat};
use super::libvirt::{self, Libvirt};
use super::model::{self, Policy, Seen, State};
use super::{DomainsState, CHECK};
use crate::cli::{Common, Context, Tool, UsageError};
use crate::report::{Record, Status};

const EXAMPLES: &str = "\
Examples:
  watch-domains                                    # every domain on qemu:///system
  watch-domains --state /var/lib/skyprobe/domains.json   # cron: also what changed since last run
  watch-domains --name '^instance-' --expect running --format nagios
  watch-domains --follow 1h --state /var/lib/skyprobe/domains.json >> domains.jsonl
  watch-domains --heartbeat --state /var/lib/skyprobe/domains.json   # guest-agent pings
  watch-domains --state-status paused:user=ok      # a paused guest is fine here
  watch-domains --connect test:///default          # libvirt's built-in test hypervisor

Exit status: 0 OK, 1 WARNING, 2 CRITICAL (crashed, paused on I/O error, not as expected,
libvirt unreachable), 3 UNKNOWN (bad flags or URI).\n\nFiles and secrets: only regular files are read as configuration (a FIFO or a device is\nrefused), within a size bound; lock, history and spool files are never written through a\nsymbolic link; URLs are shown without user:password@ and secret query values, and\nknown secrets are scrubbed from all output.";

/// How often the event loop wakes up to check the deadline and the connection.
const TICK: Duration = Duration::from_millis(200);
/// How long to wait between attempts to reconnect to libvirt.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// Keepalive probes missed before libvirt drops a connection.
const KEEPALIVE_COUNT: u32 = 3;
/// Guest-agent pings in flight at once.
const PING_CONCURRENCY: usize = 16;

/// Watch the virtual machines on this host through libvirt: their states,
/// what changed since the last run, their events for a while, and their
/// QEMU guest agents. Connects read-only (read-write with --heartbeat).
#[derive(Debug, Parser)]
#[command(name = "watch-domains", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Args {
    /// libvirt connection URI; opened read-only, except with --heartbeat
    /// (libvirt allows guest-agent commands only on read-write connections).
    #[arg(
        long,
        value_name = "URI",
        env = "LIBVIRT_DEFAULT_URI",
        default_value = "qemu:///system"
    )]
    pub connect: String,

    /// Only domains whose name or UUID matches REGEX (repeatable: any of them).
    #[arg(long = "name", value_name = "REGEX")]
    pub names: Vec<String>,

    /// Leave out domains whose name or UUID matches REGEX (repeatable).
    #[arg(long = "exclude", value_name = "REGEX")]
    pub excludes: Vec<String>,

    /// Selected domains must be in this state (repeatable: any of them); anything else is critical.
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    pub expect: Vec<State>,

    /// Judge a state (or a state with one reason) as STATUS, e.g. paused:user=ok, shutoff=warning.
    #[arg(long = "state-status", value_name = "STATE[:REASON]=STATUS", value_parser = Policy::parse_override)]
    pub state_status: Vec<(State, Option<String>, Status)>,

    /// Keep the last states and agent heartbeats here (locked, written atomically):
    /// changes since the last run are reported as events.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Stay connected this long and report domain events as they arrive
    /// (lifecycle, reboot, watchdog, I/O error, control error); reconnect and
    /// report what changed in the gap if the connection drops.
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration, help_heading = "Events")]
    pub follow: Option<Duration>,

    /// With --follow: keepalive interval; a daemon silent for about four of
    /// these is taken as gone.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::units::parse_duration, help_heading = "Events")]
    pub keepalive: Duration,

    /// Ping the QEMU guest agent of each running domain that has an agent channel.
    #[arg(long, help_heading = "Guest-agent heartbeat")]
    pub heartbeat: bool,

    /// Wait this long for each guest agent (libvirt counts whole seconds).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::units::parse_duration, help_heading = "Guest-agent heartbeat")]
    pub agent_timeout: Duration,

    /// With --follow: ping the agents this often (masakari's guest_monitoring_interval).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::units::parse_duration, help_heading = "Guest-agent heartbeat")]
    pub agent_every: Duration,

    /// Missed pings in a row before an agent is critical (counted across runs with --state).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Guest-agent heartbeat")]
    pub agent_failures: u32,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub common: Common,
}

/// What `prepare` made of watch-domains' flags, and what the run keeps:
/// the stage libvirt was last asked in (for the watchdog's record) and the
/// state in memory across `--every` rounds when there is no `--state`.
#[derive(Debug)]
pub struct Run {
    selection: Selection,
    stage: Mutex<&'static str>,
    memory: Mutex<DomainsState>,
}

/// The flags and the run together: what a round works with.
struct Watcher<'a> {
    args: &'a Args,
    run: &'a Run,
}

impl std::ops::Deref for Watcher<'_> {
    type Target = Args;
    fn deref(&self) -> &Args {
        self.args
    }
}

fn parse_state(text: &str) -> Result<State, String> {
    State::parse(text)
        .ok_or_else(|| format!("{text:?} is not a domain state ({})", model::state_names()))
}

#[derive(Debug)]
struct Selection {
    names: Vec<Regex>,
    excludes: Vec<Regex>,
}

impl Selection {
    fn matches(&self, s: &Seen) -> bool {
        let hit = |r: &Regex| r.is_match(&s.name) || r.is_match(&s.uuid);
        (self.names.is_empty() || self.names.iter().any(hit)) && !self.excludes.iter().any(hit)
    }
}

impl Watcher<'_> {
    fn policy(&self) -> Policy {
        Policy {
            expect: self.expect.clone(),
            overrides: self.state_status.clone(),
        }
    }

    fn at(&self, stage: &'static str) {
        *self.run.stage.lock().unwrap_or_else(|p| p.into_inner()) = stage;
    }

    fn selected<'a>(&self, all: &'a [Seen]) -> Vec<&'a Seen> {
        all.iter()
            .filter(|s| self.run.selection.matches(s))
            .collect()
    }

    fn libvirt_record(&self, status: Status, summary: String) -> Record {
        let mut r = Record::new(CHECK, &self.connect, status, summary);
        r.name = "libvirt".to_string();
        r
    }

    fn open(&self) -> Result<Libvirt, Box<Record>> {
        self.at("connecting");
        Libvirt::open(&self.connect, self.heartbeat).map_err(|e| {
            let (status, hint) = if e.bad_uri {
                (Status::Unknown, " (check --connect)")
            } else {
                (Status::Critical, "")
            };
            Box::new(self.libvirt_record(
                status,
                format!(
                    "cannot connect to libvirt at {}: {}{hint}",
                    self.connect, e.message
                ),
            ))
        })
    }

    fn look(&self, conn: &Libvirt) -> Result<Vec<Seen>, Box<Record>> {
        self.at("listing domains");
        conn.snapshot().map_err(|msg| {
            Box::new(self.libvirt_record(Status::Critical, format!("{}: {msg}", self.connect)))
        })
    }

    /// One record per selected domain, or one saying there is none.
    fn state_records(&self, all: &[Seen], policy: &Policy) -> Vec<Record> {
        let selected = self.selected(all);
        if selected.is_empty() {
            let filtered = !self.names.is_empty() || !self.expect.is_empty();
            let (status, summary) = if filtered {
                (
                    Status::Critical,
                    format!("no domain on {} matches the selection", self.connect),
                )
            } else {
                (Status::Ok, format!("no domains on {}", self.connect))
            };
            return vec![self.libvirt_record(status, summary)];
        }
        selected
            .into_iter()
            .map(|s| super::state_record(s, policy))
            .collect()
    }

    /// Changes of the selected domains between `before` and `now`.
    fn change_records(
        &self,
        before: &[Seen],
        now: &[Seen],
        how: &str,
        policy: &Policy,
    ) -> Vec<Record> {
        let before: Vec<Seen> = self.selected(before).into_iter().cloned().collect();
        let now: Vec<Seen> = self.selected(now).into_iter().cloned().collect();
        model::diff(&before, &now)
            .iter()
            .map(|c| super::change_record(c, policy, how))
            .collect()
    }

    /// Ping the agents of the selected running domains that have one.
    fn heartbeats(
        &self,
        conn: &Libvirt,
        all: &[Seen],
        beats: &mut std::collections::BTreeMap<String, Beat>,
    ) -> Vec<Record> {
        self.at("pinging guest agents");
        let running: Vec<&Seen> = self
            .selected(all)
            .into_iter()
            .filter(|s| s.state == State::Running)
            .collect();
        let mut pinged: Vec<(&Seen, heartbeat::Ping)> = Vec::new();
        for chunk in running.chunks(PING_CONCURRENCY) {
            let results: Vec<Option<heartbeat::Ping>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|s| {
                        scope.spawn(move || match conn.has_agent_channel(&s.uuid) {
                            Ok(false) => None,
                            Ok(true) => Some(conn.ping(&s.uuid, self.agent_timeout)),
                            Err(e) => Some(heartbeat::Ping::Failed(e)),
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Some(heartbeat::Ping::Failed("the ping thread failed".into()))
                        })
                    })
                    .collect()
            });
            pinged.extend(
                chunk
                    .iter()
                    .zip(results)
                    .filter_map(|(s, p)| p.map(|p| (*s, p))),
            );
        }
        let now = crate::report::timestamp(std::time::SystemTime::now());
        let records = pinged
            .into_iter()
            .map(|(seen, ping)| {
                let beat = beats.entry(seen.uuid.clone()).or_default();
                let verdict = heartbeat::step(beat, &ping, self.agent_failures, &now);
                super::heartbeat_record(seen, &verdict, beat)
            })
            .collect();
        // Forget the heartbeats of domains that are gone.
        beats.retain(|uuid, _| all.iter().any(|s| &s.uuid == uuid));
        records
    }

    /// Run `f` with the state for this URI: from --state under its lock, or
    /// kept in memory across --every rounds.
    fn with_state(&self, f: impl FnOnce(&mut DomainsState) -> Vec<Record>) -> Vec<Record> {
        self.with_state_emitting(f, |records| records)
    }

    /// [`Watcher::with_state`], with `f`'s records handed to `emit` before
    /// the state is saved (see [`crate::state::update_records_emitting`]).
    fn with_state_emitting(
        &self,
        f: impl FnOnce(&mut DomainsState) -> Vec<Record>,
        emit: impl FnOnce(Vec<Record>) -> Vec<Record>,
    ) -> Vec<Record> {
        match &self.state {
            None => emit(f(&mut self
                .run
                .memory
                .lock()
                .unwrap_or_else(|p| p.into_inner()))),
            Some(path) => {
                self.at("locking the state file");
                crate::state::update_records_emitting(CHECK, path, f, emit)
            }
        }
    }

    fn once(&self, ctx: &Context) -> Vec<Record> {
        let policy = self.policy();
        let conn = match self.open() {
            Ok(c) => c,
            Err(r) => return vec![*r],
        };
        let all = match self.look(&conn) {
            Ok(all) => all,
            Err(r) => return vec![*r],
        };
        let states = self.state_records(&all, &policy);
        // The changes are printed (when streaming) before the state that
        // makes them old news is saved: a kill between the two repeats
        // them next run instead of losing them.
        self.with_state_emitting(
            |state| {
                let mut out = Vec::new();
                if let Some(before) = state.seen.get(&self.connect) {
                    out = self.change_records(before, &all, "since the last run", &policy);
                }
                state.seen.insert(self.connect.clone(), all.clone());
                if self.heartbeat {
                    out.extend(self.heartbeats(&conn, &all, &mut state.heartbeats));
                }
                out
            },
            |changes| ctx.emit_now(states.into_iter().chain(changes).collect()),
        )
    }

    fn follow(&self, ctx: &Context, length: Duration) -> Vec<Record> {
        let policy = self.policy();
        let started = Instant::now();
        // Leave time to write the state and the last records before -t.
        let end = (started + length).min(
            ctx.deadline
                .checked_sub(Duration::from_millis(500))
                .unwrap_or(started),
        );
        let mut out = Vec::new();
        if let Err(msg) = libvirt::start_event_loop(TICK) {
            return vec![self.libvirt_record(Status::Unknown, msg)];
        }
        // The first look is an ordinary run: states, and changes since the
        // last run when there is a state file.
        let mut last_known: Option<Vec<Seen>> = None;
        let mut live: Option<(Libvirt, super::ffi::Subscription)> = None;
        match self.connect_and_subscribe() {
            Ok((conn, sub, all)) => {
                let states = self.state_records(&all, &policy);
                out.extend(self.with_state_emitting(
                    |state| {
                        let changes = match state.seen.get(&self.connect) {
                            Some(before) => {
                                self.change_records(before, &all, "since the last run", &policy)
                            }
                            None => Vec::new(),
                        };
                        state.seen.insert(self.connect.clone(), all.clone());
                        changes
                    },
                    |changes| ctx.emit_now(states.into_iter().chain(changes).collect()),
                ));
                last_known = Some(all);
                live = Some((conn, sub));
            }
            Err(r) => out.extend(ctx.emit_now(vec![*r])),
        }
        let mut last_attempt = Instant::now();
        let mut next_ping = Instant::now();
        let mut down_reported = live.is_none();
        while Instant::now() < end {
            if self.heartbeat && Instant::now() >= next_ping {
                next_ping += self.agent_every;
                if let (Some((conn, _)), Some(all)) = (&live, &last_known) {
                    let records =
                        self.with_state(|state| self.heartbeats(conn, all, &mut state.heartbeats));
                    out.extend(ctx.emit_now(records));
                }
            }
            self.at("waiting for events");
            if let Err(msg) = libvirt::run_event_loop_once() {
                out.extend(ctx.emit_now(vec![self.libvirt_record(Status::Unknown, msg)]));
                break;
            }
            if let Some((conn, sub)) = &live {
                let arrived = sub.drain();
                if !arrived.is_empty() {
                    let records: Vec<Record> = arrived
                        .iter()
                        .filter(|a| {
                            let s = Seen {
                                uuid: a.uuid.clone(),
                                name: a.name.clone(),
                                state: State::Nostate,
                                reason: String::new(),
                            };
                            self.run.selection.matches(&s)
                        })
                        .map(|a| super::event_record(&a.uuid, &a.name, &a.kind, &policy))
                        .collect();
                    out.extend(ctx.emit_now(records));
                    // Keep what a resync after a lost connection compares
                    // with: first from the events themselves, since the
                    // daemon may be gone before it can be asked; then from
                    // a fresh look when it answers.
                    if let Some(known) = last_known.as_mut() {
                        model::apply_events(
                            known,
                            arrived
                                .iter()
                                .map(|a| (a.uuid.as_str(), a.name.as_str(), &a.kind)),
                        );
                    }
                    if let Ok(all) = conn.snapshot() {
                        last_known = Some(all);
                    }
                }
                if !conn.is_alive() {
                    live = None;
                    down_reported = true;
                    last_attempt = Instant::now();
                    out.extend(ctx.emit_now(vec![self.disconnected()]));
                }
            } else if last_attempt.elapsed() >= RECONNECT_EVERY {
                last_attempt = Instant::now();
                match self.connect_and_subscribe() {
                    Ok((conn, sub, all)) => {
                        let mut records = vec![{
                            let mut r = self.libvirt_record(
                                Status::Ok,
                                format!("reconnected to libvirt at {}", self.connect),
                            );
                            r.event = Some("reconnected".into());
                            r
                        }];
                        if let Some(before) = &last_known {
                            records.extend(self.change_records(
                                before,
                                &all,
                                "while disconnected",
                                &policy,
                            ));
                        }
                        out.extend(ctx.emit_now(records));
                        last_known = Some(all);
                        live = Some((conn, sub));
                        down_reported = false;
                    }
                    Err(r) => {
                        if !down_reported {
                            out.extend(ctx.emit_now(vec![*r]));
                            down_reported = true;
                        }
                    }
                }
            }
        }
        if let Some(all) = last_known {
            if self.state.is_some() {
                out.extend(ctx.emit_now(self.with_state(|state| {
                    state.seen.insert(self.connect.clone(), all);
                    Vec::new()
                })));
            }
        }
        if live.is_none() {
            // Still down at the end: the run's verdict must say so.
            out.push(self.libvirt_record(
                Status::Critical,
                format!(
                    "libvirt at {} was still unreachable when --follow ended",
                    self.connect
                ),
            ));
        }
        out
    }

    fn disconnected(&self) -> Record {
        let mut r = self.libvirt_record(
            Status::Warning,
            format!(
                "lost the connection to libvirt at {}; reconnecting (changes in the gap are reported after)",
                self.connect
            ),
        );
        r.event = Some("disconnected".into());
        r
    }

    fn connect_and_subscribe(
        &self,
    ) -> Result<(Libvirt, super::ffi::Subscription, Vec<Seen>), Box<Record>> {
        let conn = self.open()?;
        conn.keepalive(self.keepalive, KEEPALIVE_COUNT);
        self.at("subscribing to events");
        let sub = conn.subscribe().map_err(|msg| {
            Box::new(self.libvirt_record(Status::Critical, format!("{}: {msg}", self.connect)))
        })?;
        // Subscribe first, then look: nothing falls between the two.
        let all = self.look(&conn)?;
        Ok((conn, sub, all))
    }
}

impl Tool for Args {
    const CHECK: &'static str = CHECK;
    const LABEL: &'static str = "DOMAINS";
    type Run = Run;

    fn common(&self) -> &Common {
        &self.common
    }

    fn default_timeout(&self) -> Duration {
        Duration::from_secs(10) + self.follow.unwrap_or_default()
    }

    fn prepare(&mut self) -> Result<Run, UsageError> {
        let compile = |flag: &str, list: &[String]| -> Result<Vec<Regex>, UsageError> {
            list.iter()
                .map(|r| {
                    Regex::new(r).map_err(|e| {
                        UsageError::new(format!("{flag} {r:?}: {}", crate::cli::regex_words(&e)))
                    })
                })
                .collect()
        };
        let selection = Selection {
            names: compile("--name", &self.names)?,
            excludes: compile("--exclude", &self.excludes)?,
        };
        if self.connect.trim().is_empty() {
            return Err(UsageError::new("--connect: the URI is empty"));
        }
        // The test driver reads a node XML file: a missing one is the
        // operator's to fix, said here rather than by libxml2 on stderr.
        if let Some(path) = self.connect.strip_prefix("test://") {
            let path = path.split('?').next().unwrap_or(path);
            if path != "/default" {
                // Checked as a regular file: libvirt would block on a FIFO.
                if let Err(e) =
                    crate::files::read_bounded(std::path::Path::new(path), crate::files::CONFIG_MAX)
                {
                    return Err(UsageError::new(format!(
                        "--connect {}: {path}: {e}",
                        self.connect
                    )));
                }
            }
        }
        if let Some(f) = self.follow {
            if f.is_zero() {
                return Err(UsageError::new("--follow: the duration must be above zero"));
            }
        }
        if self.agent_every.is_zero() {
            return Err(UsageError::new(
                "--agent-every: the interval must be above zero",
            ));
        }
        Ok(Run {
            selection,
            stage: Mutex::default(),
            memory: Mutex::default(),
        })
    }

    fn run(&self, run: &Run, ctx: &Context) -> Vec<Record> {
        let w = Watcher { args: self, run };
        match self.follow {
            Some(length) => w.follow(ctx, length),
            None => w.once(ctx),
        }
    }

    fn timed_out(&self, run: &Run, ctx: &Context) -> Vec<Record> {
        let stage = *run.stage.lock().unwrap_or_else(|p| p.into_inner());
        let w = Watcher { args: self, run };
        vec![w.libvirt_record(
            ctx.timeout_state,
            format!(
                "libvirt at {} did not answer within {:.1} s (while {stage})",
                self.connect,
                self.timeout().as_secs_f64()
            ),
        )]
    }
}
