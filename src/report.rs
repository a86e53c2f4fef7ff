//! The record: one JSON object per thing checked (see DESIGN.md), and the
//! status ordering that decides a run's exit code.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// The state of one check. The derived order means "worst wins":
/// OK < UNKNOWN < WARNING < CRITICAL, as monitoring-plugins' `max_state_alt`.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything checked was as expected.
    Ok,
    /// The check could not decide (bad configuration, bad arguments).
    Unknown,
    /// Above a warning threshold, or degraded.
    Warning,
    /// Down, unreachable, or above a critical threshold.
    Critical,
}

impl Status {
    /// The Nagios plugin exit code. An explicit match, never the discriminant,
    /// because the ordering above is not the exit-code ordering.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// Upper-case name as Nagios prints it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }

    /// Lower-case name as the JSON record carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Unknown => "unknown",
        }
    }

    /// Parse `ok|warning|critical|unknown` (any case).
    pub fn parse(text: &str) -> Option<Status> {
        match text.to_ascii_lowercase().as_str() {
            "ok" => Some(Status::Ok),
            "warning" | "warn" => Some(Status::Warning),
            "critical" | "crit" => Some(Status::Critical),
            "unknown" => Some(Status::Unknown),
            _ => None,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One measured value; maps one to one onto Nagios performance data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// Perfdata label, e.g. `time`.
    pub name: String,
    /// The value, in `unit`.
    pub value: f64,
    /// Nagios unit of measure: `s`, `B`, `%`, `c` or empty.
    pub unit: String,
    /// Warning range as given (Nagios syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<String>,
    /// Critical range as given (Nagios syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<String>,
    /// Smallest possible value, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest possible value, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Metric {
    /// A metric with no thresholds or bounds.
    pub fn new(name: impl Into<String>, value: f64, unit: impl Into<String>) -> Metric {
        Metric {
            name: name.into(),
            value,
            unit: unit.into(),
            warn: None,
            crit: None,
            min: None,
            max: None,
        }
    }

    /// Set the lower bound.
    pub fn min(mut self, min: f64) -> Metric {
        self.min = Some(min);
        self
    }
}

/// One step of what a check did, in order: it says what worked and where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceStep {
    /// Short name of the step: `resolve`, `connect`, `tls`, `response`, ...
    pub step: String,
    /// Whether the step succeeded.
    pub ok: bool,
    /// How long the step took, in milliseconds.
    pub ms: f64,
    /// What happened, for a person to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl TraceStep {
    /// A step that took `took`.
    pub fn new(
        step: &str,
        ok: bool,
        took: Duration,
        detail: impl Into<Option<String>>,
    ) -> TraceStep {
        TraceStep {
            step: step.to_string(),
            ok,
            ms: round_ms(took),
            detail: detail.into(),
        }
    }
}

/// Milliseconds with three decimals, so records stay short and stable.
pub fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Seconds with six decimals.
pub fn round_s(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1_000_000.0
}

/// One thing checked: the unit every binary prints, one JSON object per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// When the check finished, RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// The machine that ran the check (system host name or `--hostname`).
    pub host: String,
    /// The binary (or check kind) that made the record, e.g. `probe-http`.
    pub check: String,
    /// What was checked: a URL, a host, a process, a domain.
    pub target: String,
    /// The operator's name for it; the target when none was given.
    pub name: String,
    /// The verdict.
    pub status: Status,
    /// One line for a person.
    pub summary: String,
    /// How long the check took.
    pub duration_ms: f64,
    /// Measurements (Nagios perfdata).
    pub metrics: Vec<Metric>,
    /// What the check did, step by step.
    pub trace: Vec<TraceStep>,
    /// Check-specific facts.
    pub details: serde_json::Map<String, serde_json::Value>,
    /// The operator's own labels, passed through untouched.
    pub labels: BTreeMap<String, String>,
    /// Set on records that report something that happened (a restart, a delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

impl Record {
    /// A new record stamped now; name defaults to the target.
    pub fn new(check: &str, target: &str, status: Status, summary: impl Into<String>) -> Record {
        Record {
            ts: timestamp(SystemTime::now()),
            host: String::new(),
            check: check.to_string(),
            target: target.to_string(),
            name: target.to_string(),
            status,
            summary: summary.into(),
            duration_ms: 0.0,
            metrics: Vec::new(),
            trace: Vec::new(),
            details: serde_json::Map::new(),
            labels: BTreeMap::new(),
            event: None,
        }
    }

    /// Put a check-specific fact into `details`.
    pub fn detail(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.details.insert(key.to_string(), value.into());
    }

    /// The record as one line of JSON (no trailing newline).
    pub fn to_json_line(&self) -> String {
        // Serialising plain data with string keys cannot fail; fall back to a
        // minimal but valid record rather than panicking if it ever does.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                "{{\"check\":{:?},\"status\":\"unknown\",\"summary\":\"cannot serialise record: {}\"}}",
                self.check, e
            )
        })
    }
}

/// The worst status of a set of records; OK for none.
pub fn worst<'a>(records: impl IntoIterator<Item = &'a Record>) -> Status {
    records
        .into_iter()
        .map(|r| r.status)
        .max()
        .unwrap_or(Status::Ok)
}

/// RFC 3339 UTC with millisecond precision, e.g. `2026-11-23T18:40:00.123Z`.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_wins_in_max_state_alt_order() {
        let mut all = [
            Status::Critical,
            Status::Ok,
            Status::Warning,
            Status::Unknown,
        ];
        all.sort();
        assert_eq!(
            all,
            [
                Status::Ok,
                Status::Unknown,
                Status::Warning,
                Status::Critical
            ]
        );
        assert_eq!(Status::Unknown.max(Status::Warning), Status::Warning);
        assert_eq!(Status::Ok.max(Status::Unknown), Status::Unknown);
    }

    #[test]
    fn exit_codes_are_nagios_codes() {
        let codes: Vec<u8> = [
            Status::Ok,
            Status::Warning,
            Status::Critical,
            Status::Unknown,
        ]
        .iter()
        .map(|s| s.exit_code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3]);
    }

    #[test]
    fn record_round_trips_and_omits_absent_event() {
        let mut r = Record::new("probe-http", "http://x/", Status::Ok, "fine");
        r.metrics.push(Metric::new("time", 0.25, "s").min(0.0));
        let line = r.to_json_line();
        assert!(!line.contains("\"event\""));
        let back: Record = serde_json::from_str(&line).expect("decodes");
        assert_eq!(back, r);
        assert!(r.ts.ends_with('Z'));
    }
}
