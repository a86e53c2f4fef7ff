//! The alarm state machine: one per key, fed record statuses, deciding
//! when to fire, resolve, remind, and when a key went quiet.
//!
//! CloudWatch's OK / ALARM / INSUFFICIENT_DATA with datapoints-to-alarm
//! (M of the last N), Heat's watch rules, and Nagios' flap detection
//! (percent state change over the last 21 results, weighted from 0.8 for
//! the oldest change to 1.2 for the newest). Time is passed in, never read
//! here, so every rule is tested with a fake clock.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::report::Status;

/// Where an alarm stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// Fine.
    Ok,
    /// The records say warning.
    Warning,
    /// The records say critical.
    Critical,
    /// The records say unknown (the check could not decide).
    Unknown,
    /// No record for this key within `stale_after`.
    InsufficientData,
}

impl AlarmState {
    /// The state a record status stands for.
    pub fn of(status: Status) -> AlarmState {
        match status {
            Status::Ok => AlarmState::Ok,
            Status::Warning => AlarmState::Warning,
            Status::Critical => AlarmState::Critical,
            Status::Unknown => AlarmState::Unknown,
        }
    }

    /// snake_case name, as configuration and records spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "ok",
            AlarmState::Warning => "warning",
            AlarmState::Critical => "critical",
            AlarmState::Unknown => "unknown",
            AlarmState::InsufficientData => "insufficient_data",
        }
    }

    /// Parse [`AlarmState::as_str`].
    pub fn parse(text: &str) -> Option<AlarmState> {
        [
            AlarmState::Ok,
            AlarmState::Warning,
            AlarmState::Critical,
            AlarmState::Unknown,
            AlarmState::InsufficientData,
        ]
        .into_iter()
        .find(|s| s.as_str() == text.trim().to_ascii_lowercase())
    }
}

impl std::fmt::Display for AlarmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When to fire and resolve.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Fire after this many non-ok records in a row (default 1).
    pub fire_after: u32,
    /// Or: fire when M of the last N records are non-ok (CloudWatch's
    /// datapoints to alarm); overrides `fire_after`.
    pub m_of_n: Option<(u32, u32)>,
    /// Resolve after this many ok records in a row (default 1).
    pub resolve_after: u32,
    /// Remind while still failing, this often.
    pub repeat_every: Option<Duration>,
    /// A key with no record for this long goes to insufficient data.
    pub stale_after: Option<Duration>,
    /// Flap detection thresholds in percent `(low, high)`: start above
    /// high, stop below low (Nagios: 5 and 20). None: off.
    pub flap: Option<(f64, f64)>,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            fire_after: 1,
            m_of_n: None,
            resolve_after: 1,
            repeat_every: None,
            stale_after: None,
            flap: Some((5.0, 20.0)),
        }
    }
}

/// Results kept for flap detection (Nagios keeps 21).
const FLAP_WINDOW: usize = 21;

/// One key's alarm, kept in `--state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    /// The state the records put it in.
    pub state: AlarmState,
    /// The state last notified; `ok` when no alert is out.
    pub notified: AlarmState,
    /// Latest statuses, oldest first, one letter each (o w c u), at most
    /// max(N, 21).
    pub window: String,
    /// Non-ok records in a row.
    pub consecutive_bad: u32,
    /// Ok records in a row.
    pub consecutive_ok: u32,
    /// When a record last arrived (Unix seconds).
    pub last_seen: f64,
    /// When `state` last changed.
    pub since: f64,
    /// When an alert last went out for this key.
    pub last_alert: f64,
    /// Whether flap detection holds notifications back.
    pub flapping: bool,
    /// Transitions so far: with the key, names each alert uniquely and
    /// the same way after a crash.
    pub seq: u64,
}

/// What an alarm asks to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Went bad (or worse, or changed how bad).
    Firing,
    /// Back to ok after an alert.
    Resolved,
    /// Still bad, `repeat_every` later.
    Reminder,
    /// No record within `stale_after`.
    InsufficientData,
    /// Flapping: alerts held back until it settles.
    FlappingStart,
    /// Settled.
    FlappingStop,
}

impl Kind {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Firing => "firing",
            Kind::Resolved => "resolved",
            Kind::Reminder => "reminder",
            Kind::InsufficientData => "insufficient_data",
            Kind::FlappingStart => "flapping_start",
            Kind::FlappingStop => "flapping_stop",
        }
    }
}

/// One transition or reminder.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// What kind of alert.
    pub kind: Kind,
    /// The state before.
    pub from: AlarmState,
    /// The state now.
    pub to: AlarmState,
    /// Held back by flap detection: in the history, not sent.
    pub suppressed: bool,
    /// The alarm's `seq` for it.
    pub seq: u64,
}

fn letter(status: Status) -> char {
    match status {
        Status::Ok => 'o',
        Status::Warning => 'w',
        Status::Critical => 'c',
        Status::Unknown => 'u',
    }
}

/// Nagios' percent state change over a window of results, oldest first:
/// each change between neighbours weighs from 0.8 (oldest) to 1.2 (newest).
pub fn percent_state_change(window: &str) -> f64 {
    let letters: Vec<char> = window.chars().collect();
    if letters.len() < 2 {
        return 0.0;
    }
    let changes = letters.len() - 1;
    let mut total = 0.0;
    for i in 0..changes {
        if letters[i] != letters[i + 1] {
            let weight = if changes == 1 {
                1.0
            } else {
                0.8 + 0.4 * (i as f64) / ((changes - 1) as f64)
            };
            total += weight;
        }
    }
    total * 100.0 / changes as f64
}

impl Alarm {
    /// A key never seen before: ok, no alert out.
    pub fn new(now: f64) -> Alarm {
        Alarm {
            state: AlarmState::Ok,
            notified: AlarmState::Ok,
            window: String::new(),
            consecutive_bad: 0,
            consecutive_ok: 0,
            last_seen: now,
            since: now,
            last_alert: 0.0,
            flapping: false,
            seq: 0,
        }
    }

    fn transition(&mut self, kind: Kind, to: AlarmState, suppressed: bool, now: f64) -> Transition {
        // Firing, resolving and going quiet change what was last notified;
        // reminders and flap notices say something about the same state.
        let moves = matches!(kind, Kind::Firing | Kind::Resolved | Kind::InsufficientData);
        let from = if moves { self.notified } else { self.state };
        self.seq += 1;
        if !suppressed {
            self.last_alert = now;
            if moves {
                self.notified = to;
            }
        }
        Transition {
            kind,
            from,
            to,
            suppressed,
            seq: self.seq,
        }
    }

    /// Count one record's status at `now` (Unix seconds).
    pub fn observe(&mut self, status: Status, now: f64, rules: &Rules) -> Vec<Transition> {
        let mut out = Vec::new();
        self.last_seen = now;
        let keep = rules
            .m_of_n
            .map_or(FLAP_WINDOW, |(_, n)| (n as usize).max(FLAP_WINDOW));
        self.window.push(letter(status));
        if self.window.len() > keep {
            let cut = self.window.len() - keep;
            self.window.drain(..cut);
        }
        if status == Status::Ok {
            self.consecutive_ok = self.consecutive_ok.saturating_add(1);
            self.consecutive_bad = 0;
        } else {
            self.consecutive_bad = self.consecutive_bad.saturating_add(1);
            self.consecutive_ok = 0;
        }
        let bad_enough = match rules.m_of_n {
            Some((m, n)) => {
                let recent = self.window.chars().rev().take(n as usize);
                recent.filter(|c| *c != 'o').count() as u32 >= m.max(1)
            }
            None => self.consecutive_bad >= rules.fire_after.max(1),
        };
        let next = if status == Status::Ok {
            if self.consecutive_ok >= rules.resolve_after.max(1) {
                AlarmState::Ok
            } else {
                self.state
            }
        } else if bad_enough {
            AlarmState::of(status)
        } else if self.state == AlarmState::InsufficientData {
            // Records again but not yet bad enough to fire: back to ok.
            AlarmState::Ok
        } else {
            self.state
        };
        let changed = next != self.state;
        if changed {
            self.state = next;
            self.since = now;
        }

        // Flap detection decides whether what follows is sent.
        if let Some((low, high)) = rules.flap {
            if self.window.len() >= FLAP_WINDOW {
                let tail: String = self
                    .window
                    .chars()
                    .skip(self.window.len() - FLAP_WINDOW)
                    .collect();
                let pct = percent_state_change(&tail);
                if !self.flapping && pct >= high {
                    self.flapping = true;
                    out.push(self.transition(Kind::FlappingStart, self.state, false, now));
                } else if self.flapping && pct < low {
                    self.flapping = false;
                    out.push(self.transition(Kind::FlappingStop, self.state, false, now));
                }
            }
        }

        if self.flapping {
            // Held back, but kept in the history.
            if changed {
                let kind = if self.state == AlarmState::Ok {
                    Kind::Resolved
                } else {
                    Kind::Firing
                };
                out.push(self.transition(kind, self.state, true, now));
            }
        } else if self.state != self.notified {
            let kind = if self.state == AlarmState::Ok {
                Kind::Resolved
            } else {
                Kind::Firing
            };
            out.push(self.transition(kind, self.state, false, now));
        } else if self.state != AlarmState::Ok {
            if let Some(every) = rules.repeat_every {
                if now - self.last_alert >= every.as_secs_f64() {
                    out.push(self.transition(Kind::Reminder, self.state, false, now));
                }
            }
        }
        out
    }

    /// At `now`, whether the key went quiet for longer than `stale_after`.
    pub fn sweep(&mut self, now: f64, rules: &Rules) -> Option<Transition> {
        let stale = rules.stale_after?;
        if self.state == AlarmState::InsufficientData || now - self.last_seen < stale.as_secs_f64()
        {
            return None;
        }
        self.state = AlarmState::InsufficientData;
        self.since = now;
        self.consecutive_bad = 0;
        self.consecutive_ok = 0;
        Some(self.transition(
            Kind::InsufficientData,
            AlarmState::InsufficientData,
            self.flapping,
            now,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Status::{Critical as C, Ok as O, Warning as W};

    /// Feed statuses one a minute; the kinds of what was sent (not held back).
    fn feed(
        alarm: &mut Alarm,
        rules: &Rules,
        statuses: &[Status],
        t0: f64,
    ) -> Vec<(Kind, AlarmState)> {
        let mut sent = Vec::new();
        for (i, s) in statuses.iter().enumerate() {
            for t in alarm.observe(*s, t0 + 60.0 * i as f64, rules) {
                if !t.suppressed {
                    sent.push((t.kind, t.to));
                }
            }
        }
        sent
    }

    #[test]
    fn defaults_fire_on_the_first_failure_and_resolve_on_the_first_ok() {
        let rules = Rules::default();
        let mut a = Alarm::new(0.0);
        let sent = feed(&mut a, &rules, &[O, O, C, C, O, O], 0.0);
        assert_eq!(
            sent,
            vec![
                (Kind::Firing, AlarmState::Critical),
                (Kind::Resolved, AlarmState::Ok)
            ]
        );
    }

    #[test]
    fn a_key_that_fails_from_its_first_record_fires() {
        let mut a = Alarm::new(0.0);
        let sent = feed(&mut a, &Rules::default(), &[C], 0.0);
        assert_eq!(sent, vec![(Kind::Firing, AlarmState::Critical)]);
    }

    #[test]
    fn a_key_that_starts_ok_sends_nothing() {
        let mut a = Alarm::new(0.0);
        assert!(feed(&mut a, &Rules::default(), &[O, O], 0.0).is_empty());
    }

    #[test]
    fn escalation_and_deescalation_fire_again() {
        let mut a = Alarm::new(0.0);
        let sent = feed(&mut a, &Rules::default(), &[W, C, W], 0.0);
        assert_eq!(
            sent,
            vec![
                (Kind::Firing, AlarmState::Warning),
                (Kind::Firing, AlarmState::Critical),
                (Kind::Firing, AlarmState::Warning)
            ]
        );
    }

    #[test]
    fn n_in_a_row_before_firing_and_k_before_resolving() {
        let rules = Rules {
            fire_after: 3,
            resolve_after: 2,
            ..Rules::default()
        };
        let mut a = Alarm::new(0.0);
        assert!(feed(&mut a, &rules, &[C, C, O, C, C], 0.0).is_empty());
        let sent = feed(&mut a, &rules, &[C], 300.0);
        assert_eq!(sent, vec![(Kind::Firing, AlarmState::Critical)]);
        assert!(
            feed(&mut a, &rules, &[O], 400.0).is_empty(),
            "one ok is not two"
        );
        assert_eq!(
            feed(&mut a, &rules, &[O], 500.0),
            vec![(Kind::Resolved, AlarmState::Ok)]
        );
    }

    #[test]
    fn m_of_n_datapoints_to_alarm() {
        let rules = Rules {
            m_of_n: Some((3, 5)),
            ..Rules::default()
        };
        let mut a = Alarm::new(0.0);
        assert!(feed(&mut a, &rules, &[C, O, C, O], 0.0).is_empty());
        let sent = feed(&mut a, &rules, &[C], 300.0);
        assert_eq!(
            sent,
            vec![(Kind::Firing, AlarmState::Critical)],
            "3 of the last 5"
        );
    }

    #[test]
    fn reminders_while_still_failing() {
        let rules = Rules {
            repeat_every: Some(Duration::from_secs(600)),
            ..Rules::default()
        };
        let mut a = Alarm::new(0.0);
        // One record a minute for 25 minutes, all critical.
        let sent = feed(&mut a, &rules, &[C; 25], 0.0);
        let reminders = sent.iter().filter(|(k, _)| *k == Kind::Reminder).count();
        assert_eq!(sent[0].0, Kind::Firing);
        assert_eq!(reminders, 2, "at 10 and 20 minutes: {sent:?}");
    }

    #[test]
    fn quiet_keys_go_to_insufficient_data_and_back() {
        let rules = Rules {
            stale_after: Some(Duration::from_secs(300)),
            ..Rules::default()
        };
        let mut a = Alarm::new(0.0);
        feed(&mut a, &rules, &[O], 0.0);
        assert_eq!(a.sweep(299.0, &rules), None);
        let t = a.sweep(301.0, &rules).expect("stale");
        assert_eq!(
            (t.kind, t.to, t.suppressed),
            (Kind::InsufficientData, AlarmState::InsufficientData, false)
        );
        assert_eq!(a.sweep(900.0, &rules), None, "once");
        let back = feed(&mut a, &rules, &[O], 1000.0);
        assert_eq!(back, vec![(Kind::Resolved, AlarmState::Ok)]);
    }

    #[test]
    fn percent_state_change_matches_nagios_weights() {
        assert_eq!(percent_state_change("ooooooooooooooooooooo"), 0.0);
        let all = percent_state_change("ocococococococococoto");
        assert!((all - 100.0).abs() < 1e-9, "{all}");
        // One change, the newest: weight 1.2 of 20 changes = 6%.
        let newest = percent_state_change("ooooooooooooooooooooc");
        assert!((newest - 6.0).abs() < 1e-9, "{newest}");
        let oldest = percent_state_change("cooooooooooooooooooooo");
        assert!(oldest < newest);
    }

    #[test]
    fn flapping_holds_alerts_back_then_sends_the_settled_state() {
        let rules = Rules::default();
        let mut a = Alarm::new(0.0);
        let mut flappy = Vec::new();
        for i in 0..21 {
            flappy.push(if i % 2 == 0 { O } else { C });
        }
        let sent = feed(&mut a, &rules, &flappy, 0.0);
        assert!(
            sent.iter().any(|(k, _)| *k == Kind::FlappingStart),
            "{sent:?}"
        );
        assert!(a.flapping);
        let before = sent.len();
        let more = feed(&mut a, &rules, &[C, O, C, O], 2000.0);
        assert!(more.is_empty(), "held back while flapping: {more:?}");
        // The last alert sent said critical; it settles ok: flapping
        // stops, and the held-back recovery is sent.
        let settled = feed(&mut a, &rules, &[O; 21], 3000.0);
        assert!(
            settled.iter().any(|(k, _)| *k == Kind::FlappingStop),
            "{settled:?}"
        );
        assert_eq!(settled.last(), Some(&(Kind::Resolved, AlarmState::Ok)));
        assert!(before > 0);
    }
}
