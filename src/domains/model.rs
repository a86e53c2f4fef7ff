//! What libvirt's numbers mean: domain states and their reasons, domain
//! events and masakari's names for them, and which of them are a problem.
//!
//! Pure data and rules, with no libvirt in sight, so every mapping is
//! tested without a hypervisor. The numbers are libvirt's public enums
//! (`virDomainState`, `virDomainEventType`, ...), stable since libvirt 1.x.

use serde::{Deserialize, Serialize};

use crate::report::Status;

/// A domain's state as `virDomainGetState` reports it, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// No state (libvirt could not say).
    Nostate,
    /// Running.
    Running,
    /// Blocked on a resource.
    Blocked,
    /// Paused by a user, a migration, an I/O error, a watchdog...
    Paused,
    /// Being shut down.
    Shutdown,
    /// Not running.
    Shutoff,
    /// Crashed.
    Crashed,
    /// Suspended by guest power management.
    Pmsuspended,
}

/// Every state, in libvirt's order (for `--help` and config errors).
pub const STATES: [State; 8] = [
    State::Nostate,
    State::Running,
    State::Blocked,
    State::Paused,
    State::Shutdown,
    State::Shutoff,
    State::Crashed,
    State::Pmsuspended,
];

impl State {
    /// From libvirt's `virDomainState` number.
    pub fn from_raw(raw: i32) -> Option<State> {
        STATES.get(usize::try_from(raw).ok()?).copied()
    }

    /// The lower-case name, as records and flags spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Nostate => "nostate",
            State::Running => "running",
            State::Blocked => "blocked",
            State::Paused => "paused",
            State::Shutdown => "shutdown",
            State::Shutoff => "shutoff",
            State::Crashed => "crashed",
            State::Pmsuspended => "pmsuspended",
        }
    }

    /// Parse a name as [`State::as_str`] spells it (any case).
    pub fn parse(text: &str) -> Option<State> {
        let lower = text.trim().to_ascii_lowercase();
        STATES.iter().copied().find(|s| s.as_str() == lower)
    }

    /// The names of this state's reasons, indexed by libvirt's number.
    fn reasons(self) -> &'static [&'static str] {
        match self {
            State::Running => &[
                "unknown",
                "booted",
                "migrated",
                "restored",
                "from_snapshot",
                "unpaused",
                "migration_canceled",
                "save_canceled",
                "wakeup",
                "crashed",
                "postcopy",
                "postcopy_failed",
            ],
            State::Paused => &[
                "unknown",
                "user",
                "migration",
                "save",
                "dump",
                "ioerror",
                "watchdog",
                "from_snapshot",
                "shutting_down",
                "snapshot",
                "crashed",
                "starting_up",
                "postcopy",
                "postcopy_failed",
                "api_error",
            ],
            State::Shutdown => &["unknown", "user"],
            State::Shutoff => &[
                "unknown",
                "shutdown",
                "destroyed",
                "crashed",
                "migrated",
                "saved",
                "failed",
                "from_snapshot",
                "daemon",
            ],
            State::Crashed => &["unknown", "panicked"],
            State::Nostate | State::Blocked | State::Pmsuspended => &["unknown"],
        }
    }

    /// The name of reason number `raw` for this state (`reason-N` for a
    /// number newer than this table).
    pub fn reason_name(self, raw: i32) -> String {
        usize::try_from(raw)
            .ok()
            .and_then(|i| self.reasons().get(i))
            .map(|s| (*s).to_string())
            .unwrap_or_else(|| format!("reason-{raw}"))
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One domain as seen at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// libvirt's UUID: Nova's instance UUID.
    pub uuid: String,
    /// libvirt's name (`instance-0000002a` under Nova).
    pub name: String,
    /// The state.
    pub state: State,
    /// Why it is in that state (`ioerror`, `crashed`, `destroyed`, ...).
    pub reason: String,
}

/// Which states are fine and which are not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `--expect`: the states every selected domain must be in; anything
    /// else is critical. Empty: judge by the table.
    pub expect: Vec<State>,
    /// `--state-status` overrides, most specific first when judged:
    /// `(state, reason or None for any reason, status)`.
    pub overrides: Vec<(State, Option<String>, Status)>,
}

/// Reasons for a pause that mean the guest is stuck, not parked on purpose.
const BAD_PAUSES: [&str; 5] = [
    "ioerror",
    "watchdog",
    "crashed",
    "api_error",
    "postcopy_failed",
];

impl Policy {
    /// The status of a domain in `state` for `reason`.
    ///
    /// Defaults: running, blocked, shutdown, pmsuspended and a plain
    /// shutoff are fine (Nova stops instances on purpose); a crash, a
    /// shutoff because the domain crashed or failed to start, and a pause
    /// caused by an I/O error, a watchdog, a crash or an API error are
    /// critical; other pauses (user, migration, snapshot) are warnings;
    /// `nostate` is unknown.
    pub fn judge(&self, state: State, reason: &str) -> Status {
        if !self.expect.is_empty() && !self.expect.contains(&state) {
            return Status::Critical;
        }
        let exact = self
            .overrides
            .iter()
            .find(|(s, r, _)| *s == state && r.as_deref() == Some(reason));
        let any = self
            .overrides
            .iter()
            .find(|(s, r, _)| *s == state && r.is_none());
        if let Some((_, _, status)) = exact.or(any) {
            return *status;
        }
        match state {
            State::Running | State::Blocked | State::Shutdown | State::Pmsuspended => Status::Ok,
            State::Shutoff if matches!(reason, "crashed" | "failed") => Status::Critical,
            State::Shutoff => Status::Ok,
            State::Crashed => Status::Critical,
            State::Paused if BAD_PAUSES.contains(&reason) => Status::Critical,
            State::Paused => Status::Warning,
            State::Nostate => Status::Unknown,
        }
    }

    /// Parse one `--state-status STATE[:REASON]=STATUS`.
    pub fn parse_override(text: &str) -> Result<(State, Option<String>, Status), String> {
        let (lhs, status) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?} is not STATE[:REASON]=STATUS"))?;
        let status = Status::parse(status.trim()).ok_or_else(|| {
            format!("{text:?}: {status:?} is not a status (ok, warning, critical, unknown)")
        })?;
        let (state, reason) = match lhs.split_once(':') {
            Some((s, r)) => (s, Some(r.trim().to_ascii_lowercase())),
            None => (lhs, None),
        };
        let state = State::parse(state).ok_or_else(|| {
            format!(
                "{text:?}: {state:?} is not a domain state ({})",
                state_names()
            )
        })?;
        if let Some(r) = &reason {
            if !state.reasons().contains(&r.as_str()) {
                return Err(format!(
                    "{text:?}: {r:?} is not a reason for {state} ({})",
                    state.reasons().join(", ")
                ));
            }
        }
        Ok((state, reason, status))
    }
}

/// The state names joined for messages.
pub fn state_names() -> String {
    STATES
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A domain event as libvirt delivers it (the numbers are libvirt's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `VIR_DOMAIN_EVENT_ID_LIFECYCLE`: `virDomainEventType` and its detail.
    Lifecycle {
        /// `virDomainEventType`.
        event: i32,
        /// The type's detail enum.
        detail: i32,
    },
    /// `VIR_DOMAIN_EVENT_ID_REBOOT`.
    Reboot,
    /// `VIR_DOMAIN_EVENT_ID_WATCHDOG`: `virDomainEventWatchdogAction`.
    Watchdog {
        /// What the watchdog did.
        action: i32,
    },
    /// `VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON`.
    IoError {
        /// `virDomainEventIOErrorAction`: none, pause, report.
        action: i32,
        /// The disk's source path.
        src_path: String,
        /// The device alias.
        dev_alias: String,
        /// Why (`enospc`, ...).
        reason: String,
    },
    /// `VIR_DOMAIN_EVENT_ID_CONTROL_ERROR`: libvirt lost control of the domain.
    ControlError,
}

const LIFECYCLE: [(&str, &[&str]); 9] = [
    ("DEFINED", &["ADDED", "UPDATED", "RENAMED", "FROM_SNAPSHOT"]),
    ("UNDEFINED", &["REMOVED", "RENAMED"]),
    (
        "STARTED",
        &[
            "BOOTED",
            "MIGRATED",
            "RESTORED",
            "FROM_SNAPSHOT",
            "WAKEUP",
            "RECREATED",
        ],
    ),
    (
        "SUSPENDED",
        &[
            "PAUSED",
            "MIGRATED",
            "IOERROR",
            "WATCHDOG",
            "RESTORED",
            "FROM_SNAPSHOT",
            "API_ERROR",
            "POSTCOPY",
            "POSTCOPY_FAILED",
        ],
    ),
    (
        "RESUMED",
        &[
            "UNPAUSED",
            "MIGRATED",
            "FROM_SNAPSHOT",
            "POSTCOPY",
            "POSTCOPY_FAILED",
        ],
    ),
    (
        "STOPPED",
        &[
            "SHUTDOWN",
            "DESTROYED",
            "CRASHED",
            "MIGRATED",
            "SAVED",
            "FAILED",
            "FROM_SNAPSHOT",
        ],
    ),
    ("SHUTDOWN", &["FINISHED", "GUEST", "HOST"]),
    ("PMSUSPENDED", &["MEMORY", "DISK"]),
    ("CRASHED", &["PANICKED", "CRASHLOADED"]),
];

const WATCHDOG_ACTIONS: [&str; 7] = [
    "NONE",
    "PAUSE",
    "RESET",
    "POWEROFF",
    "SHUTDOWN",
    "DEBUG",
    "INJECTNMI",
];

const IO_ERROR_ACTIONS: [&str; 3] = ["NONE", "PAUSE", "REPORT"];

fn name_at(table: &[&str], raw: i32) -> String {
    usize::try_from(raw)
        .ok()
        .and_then(|i| table.get(i))
        .map(|s| (*s).to_string())
        .unwrap_or_else(|| raw.to_string())
}

/// An event named the way masakari's instancemonitor names it: the
/// notification payload's `event` and `vir_domain_event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// `LIFECYCLE`, `REBOOT`, `WATCHDOG`, `IO_ERROR`, `CONTROL_ERROR`.
    pub event: &'static str,
    /// `STOPPED_FAILED`, `WATCHDOG_RESET`, `IO_ERROR_REPORT`, ... Every event
    /// gets a name, also those masakari filters out.
    pub detail: String,
    /// Whether masakari-instancemonitor sends this one to the Masakari API
    /// (its `event_filter_dic`).
    pub sent_by_masakari: bool,
    /// Whether masakari's engine acts on it: recovers the instance
    /// (`masakari/engine/instance_events.py`).
    pub acted_on: bool,
}

/// The notifications masakari's engine recovers an instance for: the two in
/// its `INSTANCE_EVENTS` table, and the introspective monitor's guest-agent
/// failure that newer releases accept.
pub const ACTED_ON: [(&str, &str); 3] = [
    ("LIFECYCLE", "STOPPED_FAILED"),
    ("IO_ERROR", "IO_ERROR_REPORT"),
    ("QEMU_GUEST_AGENT_ERROR", "STOPPED_FAILED"),
];

fn acted_on(event: &str, detail: &str) -> bool {
    ACTED_ON.iter().any(|(e, d)| *e == event && *d == detail)
}

impl EventKind {
    /// The masakari names of this event.
    pub fn named(&self) -> Named {
        let (event, detail, sent) = match self {
            EventKind::Lifecycle { event, detail } => {
                let (kind, details) = usize::try_from(*event)
                    .ok()
                    .and_then(|i| LIFECYCLE.get(i))
                    .copied()
                    .unwrap_or(("EVENT", &[]));
                let kind = if kind == "EVENT" {
                    format!("EVENT_{event}")
                } else {
                    kind.to_string()
                };
                let name = format!("{kind}_{}", name_at(details, *detail));
                // masakari-instancemonitor's event filter passes these alone.
                let sent = matches!(
                    name.as_str(),
                    "SUSPENDED_IOERROR"
                        | "SUSPENDED_WATCHDOG"
                        | "SUSPENDED_API_ERROR"
                        | "STOPPED_SHUTDOWN"
                        | "STOPPED_DESTROYED"
                        | "STOPPED_FAILED"
                        | "SHUTDOWN_FINISHED"
                );
                ("LIFECYCLE", name, sent)
            }
            EventKind::Reboot => ("REBOOT", "UNKNOWN".to_string(), true),
            EventKind::Watchdog { action } => {
                // INJECTNMI is newer than masakari's table, which drops it.
                let sent = (0..=5).contains(action);
                (
                    "WATCHDOG",
                    format!("WATCHDOG_{}", name_at(&WATCHDOG_ACTIONS, *action)),
                    sent,
                )
            }
            EventKind::IoError { action, .. } => (
                "IO_ERROR",
                format!("IO_ERROR_{}", name_at(&IO_ERROR_ACTIONS, *action)),
                (0..=2).contains(action),
            ),
            EventKind::ControlError => ("CONTROL_ERROR", "UNKNOWN".to_string(), true),
        };
        Named {
            event,
            acted_on: acted_on(event, &detail),
            detail,
            sent_by_masakari: sent,
        }
    }

    /// The state a lifecycle event leaves the domain in, with its reason,
    /// when the event says.
    pub fn implied_state(&self) -> Option<(State, String)> {
        let EventKind::Lifecycle { event, detail } = self else {
            return None;
        };
        let (_, details) = LIFECYCLE.get(usize::try_from(*event).ok()?)?;
        let reason = name_at(details, *detail).to_ascii_lowercase();
        match event {
            2 | 4 => Some((State::Running, reason)),
            3 => Some((
                State::Paused,
                match reason.as_str() {
                    "paused" => "user".to_string(),
                    "migrated" => "migration".to_string(),
                    _ => reason,
                },
            )),
            5 => Some((State::Shutoff, reason)),
            8 => Some((State::Crashed, reason)),
            7 => Some((State::Pmsuspended, reason)),
            _ => None,
        }
    }

    /// How bad the event is by itself: what masakari recovers for and a
    /// watchdog that fired are critical; the rest of what masakari reports
    /// but does not act on is a warning, except a guest that shut itself
    /// down or was shut down or stopped on purpose; anything else is ok.
    /// The state it leaves the domain in is judged by the [`Policy`] too.
    pub fn severity(&self, policy: &Policy) -> Status {
        let named = self.named();
        let detail = named.detail.as_str();
        let critical = named.acted_on
            || (named.event == "WATCHDOG" && detail != "WATCHDOG_NONE")
            || matches!(
                detail,
                "SUSPENDED_IOERROR" | "STOPPED_CRASHED" | "STOPPED_FAILED"
            )
            || detail.starts_with("CRASHED_");
        // Shut down or stopped on purpose, or a reboot: reported, not a problem.
        let routine = matches!(
            detail,
            "STOPPED_SHUTDOWN" | "STOPPED_DESTROYED" | "SHUTDOWN_FINISHED" | "UNKNOWN"
        );
        let own = if critical {
            Status::Critical
        } else if (named.sent_by_masakari && !routine) || named.event == "CONTROL_ERROR" {
            Status::Warning
        } else {
            Status::Ok
        };
        let implied = self
            .implied_state()
            .map(|(state, reason)| policy.judge(state, &reason))
            .unwrap_or(Status::Ok);
        own.max(implied)
    }
}

/// The masakari names for a state change seen between two looks rather
/// than as an event (a cron run, or a resync after reconnecting): the
/// lifecycle event that would have brought the domain there.
pub fn change_named(state: State, reason: &str) -> Option<EventKind> {
    let (event, details) = match state {
        State::Paused => (3, LIFECYCLE[3].1),
        State::Shutoff => (5, LIFECYCLE[5].1),
        State::Crashed => (8, LIFECYCLE[8].1),
        State::Running => (2, LIFECYCLE[2].1),
        _ => return None,
    };
    let upper = match (state, reason) {
        (State::Paused, "user") => "PAUSED".to_string(),
        (State::Paused, "migration") => "MIGRATED".to_string(),
        (State::Running, "unpaused") => {
            return Some(EventKind::Lifecycle {
                event: 4,
                detail: 0,
            })
        }
        _ => reason.to_ascii_uppercase(),
    };
    let detail = details.iter().position(|d| *d == upper)?;
    Some(EventKind::Lifecycle {
        event,
        detail: i32::try_from(detail).ok()?,
    })
}

/// Bring `known` up to date with events, by the state each lifecycle event
/// leaves its domain in. Other events say nothing about the state.
pub fn apply_events<'a>(
    known: &mut Vec<Seen>,
    events: impl IntoIterator<Item = (&'a str, &'a str, &'a EventKind)>,
) {
    for (uuid, name, kind) in events {
        let Some((state, reason)) = kind.implied_state() else {
            continue;
        };
        match known.iter_mut().find(|s| s.uuid == uuid) {
            Some(s) => {
                s.state = state;
                s.reason = reason;
            }
            None => known.push(Seen {
                uuid: uuid.to_string(),
                name: name.to_string(),
                state,
                reason,
            }),
        }
    }
}

/// What changed between two looks at the same host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A domain that was not there before.
    Appeared(Seen),
    /// A domain that is gone (undefined, migrated away, deleted).
    Vanished(Seen),
    /// A domain whose state or reason changed: before, after.
    Moved(Seen, Seen),
}

/// The changes from `before` to `now`, keyed by UUID, in UUID order.
pub fn diff(before: &[Seen], now: &[Seen]) -> Vec<Change> {
    use std::collections::BTreeMap;
    let old: BTreeMap<&str, &Seen> = before.iter().map(|s| (s.uuid.as_str(), s)).collect();
    let new: BTreeMap<&str, &Seen> = now.iter().map(|s| (s.uuid.as_str(), s)).collect();
    let mut changes = Vec::new();
    for (uuid, n) in &new {
        match old.get(uuid) {
            None => changes.push(Change::Appeared((*n).clone())),
            Some(o) if o.state != n.state || o.reason != n.reason => {
                changes.push(Change::Moved((*o).clone(), (*n).clone()));
            }
            Some(_) => {}
        }
    }
    for (uuid, o) in &old {
        if !new.contains_key(uuid) {
            changes.push(Change::Vanished((*o).clone()));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(uuid: &str, state: State, reason: &str) -> Seen {
        Seen {
            uuid: uuid.into(),
            name: format!("vm-{uuid}"),
            state,
            reason: reason.into(),
        }
    }

    #[test]
    fn states_and_reasons_have_libvirts_numbers() {
        assert_eq!(State::from_raw(1), Some(State::Running));
        assert_eq!(State::from_raw(6), Some(State::Crashed));
        assert_eq!(State::from_raw(8), None);
        assert_eq!(State::from_raw(-1), None);
        assert_eq!(State::Paused.reason_name(5), "ioerror");
        assert_eq!(State::Paused.reason_name(14), "api_error");
        assert_eq!(State::Shutoff.reason_name(6), "failed");
        assert_eq!(State::Shutoff.reason_name(99), "reason-99");
        assert_eq!(State::parse("Shutoff"), Some(State::Shutoff));
    }

    #[test]
    fn default_policy_is_critical_for_crashes_and_io_error_pauses() {
        let p = Policy::default();
        let cases = [
            (State::Running, "booted", Status::Ok),
            (State::Shutoff, "shutdown", Status::Ok),
            (State::Shutoff, "destroyed", Status::Ok),
            (State::Shutoff, "crashed", Status::Critical),
            (State::Shutoff, "failed", Status::Critical),
            (State::Crashed, "panicked", Status::Critical),
            (State::Paused, "ioerror", Status::Critical),
            (State::Paused, "watchdog", Status::Critical),
            (State::Paused, "user", Status::Warning),
            (State::Nostate, "unknown", Status::Unknown),
        ];
        for (state, reason, want) in cases {
            assert_eq!(p.judge(state, reason), want, "{state} ({reason})");
        }
    }

    #[test]
    fn expect_and_overrides_change_the_verdict() {
        let p = Policy {
            expect: vec![State::Running],
            overrides: vec![],
        };
        assert_eq!(p.judge(State::Shutoff, "shutdown"), Status::Critical);
        assert_eq!(p.judge(State::Running, "unpaused"), Status::Ok);
        let p = Policy {
            expect: vec![],
            overrides: vec![
                Policy::parse_override("paused=ok").expect("valid"),
                Policy::parse_override("paused:ioerror=warning").expect("valid"),
            ],
        };
        assert_eq!(p.judge(State::Paused, "user"), Status::Ok);
        assert_eq!(
            p.judge(State::Paused, "ioerror"),
            Status::Warning,
            "exact reason wins"
        );
        for bad in ["paused", "runnin=ok", "paused:sleepy=ok", "paused=meh"] {
            let e = Policy::parse_override(bad).expect_err(bad);
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn events_get_masakaris_names() {
        let cases = [
            // (event, detail) -> (event id, vir_domain_event, sent, acted on)
            (
                EventKind::Lifecycle {
                    event: 5,
                    detail: 5,
                },
                "LIFECYCLE",
                "STOPPED_FAILED",
                true,
                true,
            ),
            (
                EventKind::Lifecycle {
                    event: 5,
                    detail: 1,
                },
                "LIFECYCLE",
                "STOPPED_DESTROYED",
                true,
                false,
            ),
            (
                EventKind::Lifecycle {
                    event: 3,
                    detail: 2,
                },
                "LIFECYCLE",
                "SUSPENDED_IOERROR",
                true,
                false,
            ),
            (
                EventKind::Lifecycle {
                    event: 3,
                    detail: 0,
                },
                "LIFECYCLE",
                "SUSPENDED_PAUSED",
                false,
                false,
            ),
            (
                EventKind::Lifecycle {
                    event: 6,
                    detail: 0,
                },
                "LIFECYCLE",
                "SHUTDOWN_FINISHED",
                true,
                false,
            ),
            (
                EventKind::Lifecycle {
                    event: 2,
                    detail: 0,
                },
                "LIFECYCLE",
                "STARTED_BOOTED",
                false,
                false,
            ),
            (EventKind::Reboot, "REBOOT", "UNKNOWN", true, false),
            (
                EventKind::Watchdog { action: 2 },
                "WATCHDOG",
                "WATCHDOG_RESET",
                true,
                false,
            ),
            (
                EventKind::Watchdog { action: 6 },
                "WATCHDOG",
                "WATCHDOG_INJECTNMI",
                false,
                false,
            ),
            (
                EventKind::IoError {
                    action: 2,
                    src_path: "/d".into(),
                    dev_alias: "vda".into(),
                    reason: "enospc".into(),
                },
                "IO_ERROR",
                "IO_ERROR_REPORT",
                true,
                true,
            ),
            (
                EventKind::ControlError,
                "CONTROL_ERROR",
                "UNKNOWN",
                true,
                false,
            ),
        ];
        for (kind, event, detail, sent, acted) in cases {
            let n = kind.named();
            assert_eq!((n.event, n.detail.as_str()), (event, detail), "{kind:?}");
            assert_eq!(n.sent_by_masakari, sent, "{kind:?} sent");
            assert_eq!(n.acted_on, acted, "{kind:?} acted on");
        }
    }

    #[test]
    fn event_severity() {
        let p = Policy::default();
        let failed = EventKind::Lifecycle {
            event: 5,
            detail: 5,
        };
        assert_eq!(failed.severity(&p), Status::Critical);
        let shutdown = EventKind::Lifecycle {
            event: 5,
            detail: 0,
        };
        assert_eq!(shutdown.severity(&p), Status::Ok);
        let paused = EventKind::Lifecycle {
            event: 3,
            detail: 0,
        };
        assert_eq!(
            paused.severity(&p),
            Status::Warning,
            "a user pause is judged as paused:user"
        );
        let must_run = Policy {
            expect: vec![State::Running],
            overrides: vec![],
        };
        assert_eq!(shutdown.severity(&must_run), Status::Critical);
        assert_eq!(
            EventKind::Watchdog { action: 2 }.severity(&p),
            Status::Critical
        );
        assert_eq!(EventKind::Reboot.severity(&p), Status::Ok);
    }

    #[test]
    fn events_update_what_was_last_seen() {
        let mut known = vec![seen("a", State::Running, "booted")];
        let destroyed = EventKind::Lifecycle {
            event: 5,
            detail: 1,
        };
        let reboot = EventKind::Reboot;
        let started = EventKind::Lifecycle {
            event: 2,
            detail: 0,
        };
        apply_events(
            &mut known,
            [
                ("a", "vm-a", &destroyed),
                ("a", "vm-a", &reboot),
                ("b", "vm-b", &started),
            ],
        );
        assert_eq!(
            known,
            vec![
                seen("a", State::Shutoff, "destroyed"),
                seen("b", State::Running, "booted")
            ]
        );
    }

    #[test]
    fn changes_between_runs_name_the_event_that_would_have_come() {
        let before = [
            seen("a", State::Running, "booted"),
            seen("b", State::Running, "booted"),
            seen("c", State::Shutoff, "shutdown"),
        ];
        let now = [
            seen("a", State::Shutoff, "failed"),
            seen("b", State::Running, "booted"),
            seen("d", State::Running, "booted"),
        ];
        let changes = diff(&before, &now);
        assert_eq!(
            changes,
            vec![
                Change::Moved(before[0].clone(), now[0].clone()),
                Change::Appeared(now[2].clone()),
                Change::Vanished(before[2].clone()),
            ]
        );
        let kind = change_named(State::Shutoff, "failed").expect("a stop");
        assert_eq!(kind.named().detail, "STOPPED_FAILED");
        assert!(kind.named().acted_on);
        assert_eq!(
            change_named(State::Paused, "ioerror").map(|k| k.named().detail),
            Some("SUSPENDED_IOERROR".into())
        );
        assert_eq!(
            change_named(State::Paused, "user").map(|k| k.named().detail),
            Some("SUSPENDED_PAUSED".into())
        );
        assert_eq!(
            change_named(State::Running, "unpaused").map(|k| k.named().detail),
            Some("RESUMED_UNPAUSED".into())
        );
        assert_eq!(change_named(State::Blocked, "unknown"), None);
    }
}
