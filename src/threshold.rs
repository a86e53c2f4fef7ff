//! Nagios threshold ranges, parsed and evaluated in exactly one place.
//!
//! The grammar of the monitoring-plugins development guidelines:
//! `10` (outside 0..10), `10:` (below 10), `~:10` (above 10), `10:20`
//! (outside 10..20), `@10:20` (inside 10..20). Ends are inclusive: a value
//! equal to an end does not alert (unless `@`, where it does).

use crate::report::Status;

/// A range that alerts when a value falls outside it (or inside, with `@`).
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    start: f64,
    end: f64,
    inside: bool,
    text: String,
}

/// Why a range could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RangeError {
    /// Empty text.
    #[error("empty range")]
    Empty,
    /// A number that does not parse.
    #[error("range {text:?}: {part:?} is not a number")]
    NotANumber {
        /// The whole range text.
        text: String,
        /// The part that failed.
        part: String,
    },
    /// Start above end, e.g. `3:2`.
    #[error("range {0:?}: start is greater than end")]
    StartAfterEnd(String),
}

impl Range {
    /// Parse Nagios range syntax.
    pub fn parse(text: &str) -> Result<Range, RangeError> {
        let original = text.trim();
        if original.is_empty() {
            return Err(RangeError::Empty);
        }
        let (inside, body) = match original.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, original),
        };
        let number = |part: &str| -> Result<f64, RangeError> {
            let value: f64 = part.parse().map_err(|_| RangeError::NotANumber {
                text: original.to_string(),
                part: part.to_string(),
            })?;
            if value.is_finite() {
                Ok(value)
            } else {
                Err(RangeError::NotANumber {
                    text: original.to_string(),
                    part: part.to_string(),
                })
            }
        };
        let (start, end) = match body.split_once(':') {
            Some((start, end)) => {
                let start = match start {
                    "~" => f64::NEG_INFINITY,
                    "" => 0.0,
                    s => number(s)?,
                };
                let end = if end.is_empty() {
                    f64::INFINITY
                } else {
                    number(end)?
                };
                (start, end)
            }
            None if body.is_empty() => return Err(RangeError::Empty),
            None => (0.0, number(body)?),
        };
        if start > end {
            return Err(RangeError::StartAfterEnd(original.to_string()));
        }
        Ok(Range {
            start,
            end,
            inside,
            text: original.to_string(),
        })
    }

    /// Whether `value` should raise an alert.
    pub fn alerts(&self, value: f64) -> bool {
        let within = value >= self.start && value <= self.end;
        if self.inside {
            within
        } else {
            !within
        }
    }

    /// The range as the operator wrote it (for perfdata).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A warning and a critical range for one value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// Warning range.
    pub warn: Option<Range>,
    /// Critical range.
    pub crit: Option<Range>,
}

impl Thresholds {
    /// Parse optional warning and critical ranges.
    pub fn parse(warn: Option<&str>, crit: Option<&str>) -> Result<Thresholds, RangeError> {
        Ok(Thresholds {
            warn: warn.map(Range::parse).transpose()?,
            crit: crit.map(Range::parse).transpose()?,
        })
    }

    /// The state of `value`: critical is checked before warning, as
    /// monitoring-plugins' `get_status` does.
    pub fn status(&self, value: f64) -> Status {
        if self.crit.as_ref().is_some_and(|r| r.alerts(value)) {
            Status::Critical
        } else if self.warn.as_ref().is_some_and(|r| r.alerts(value)) {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    /// The ranges as text, for a metric's `warn`/`crit`.
    pub fn texts(&self) -> (Option<String>, Option<String>) {
        (
            self.warn.as_ref().map(|r| r.as_str().to_string()),
            self.crit.as_ref().map(|r| r.as_str().to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The cases of the monitoring-plugins guidelines' threshold table, plus the
    // boundary values the guidelines call out (ends are inclusive).
    #[test]
    fn guideline_ranges() {
        #[rustfmt::skip]
        let cases: &[(&str, &[(f64, bool)])] = &[
            ("10",     &[(-1.0, true), (0.0, false), (5.0, false), (10.0, false), (10.1, true)]),
            ("10:",    &[(9.9, true), (10.0, false), (1e9, false)]),
            ("~:10",   &[(-1e9, false), (10.0, false), (10.1, true)]),
            ("10:20",  &[(9.0, true), (10.0, false), (15.0, false), (20.0, false), (21.0, true)]),
            ("@10:20", &[(9.0, false), (10.0, true), (15.0, true), (20.0, true), (21.0, false)]),
            ("-5:-1",  &[(-6.0, true), (-5.0, false), (-1.0, false), (0.0, true)]),
            ("0.5",    &[(0.5, false), (0.51, true)]),
            (":3",     &[(-0.1, true), (0.0, false), (3.0, false), (3.1, true)]),
            ("@0",     &[(0.0, true), (0.1, false), (-0.1, false)]),
            ("5:5",    &[(5.0, false), (4.9, true), (5.1, true)]),
            ("~:",     &[(-1e12, false), (1e12, false)]),
        ];
        for (text, values) in cases {
            let range = Range::parse(text).expect(text);
            for (value, alerts) in *values {
                assert_eq!(range.alerts(*value), *alerts, "range {text} value {value}");
            }
        }
    }

    #[test]
    fn invalid_ranges_are_errors() {
        for bad in ["", "3:2", "@20:10", "abc", "1:x", "@", "10::", "nan", "inf"] {
            assert!(Range::parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(
            Range::parse("3:2").expect_err("invalid").to_string(),
            "range \"3:2\": start is greater than end"
        );
    }

    #[test]
    fn critical_is_checked_before_warning() {
        let t = Thresholds::parse(Some("5"), Some("10")).expect("valid");
        assert_eq!(t.status(3.0), Status::Ok);
        assert_eq!(t.status(7.0), Status::Warning);
        assert_eq!(t.status(11.0), Status::Critical);
        // Overlapping: a value alerting both ways is critical.
        let t = Thresholds::parse(Some("1"), Some("1")).expect("valid");
        assert_eq!(t.status(2.0), Status::Critical);
    }
}
