//! Records on stdin, from any binary or an operator's script: a record
//! needs only `check`, `status` and `target` or `name`. A line that is not
//! one is an error naming the line, never the end of the stream.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::report::Status;

/// The fields notify reads; the rest of the line is kept as text.
#[derive(Debug, Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    check: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    target: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    summary: Option<Cow<'a, str>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, serde_json::Value>>,
}

/// One record as notify sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming<'a> {
    /// `check`.
    pub check: Cow<'a, str>,
    /// `status`.
    pub status: Status,
    /// `target`, or the name when there is none.
    pub target: Cow<'a, str>,
    /// `name`, or the target when there is none.
    pub name: Cow<'a, str>,
    /// `host`, or empty.
    pub host: Cow<'a, str>,
    /// `summary`, or empty.
    pub summary: Cow<'a, str>,
    /// `labels` (values that are not strings are written as JSON).
    pub labels: BTreeMap<String, String>,
}

/// Parse one line. The error says what is wrong, for a person.
pub fn parse(line: &str) -> Result<Incoming<'_>, String> {
    let f: Fields<'_> = serde_json::from_str(line).map_err(|e| {
        let msg = e.to_string();
        if e.is_eof() {
            format!("truncated record ({msg})")
        } else {
            format!("not a JSON record ({msg})")
        }
    })?;
    let check = f.check.ok_or("missing \"check\"")?;
    let status_text = f.status.ok_or("missing \"status\"")?;
    let status = Status::parse(&status_text).ok_or_else(|| {
        format!("\"status\" is {status_text:?}, not ok, warning, critical or unknown")
    })?;
    let (target, name) = match (f.target, f.name) {
        (Some(t), Some(n)) => (t, n),
        (Some(t), None) => (t.clone(), t),
        (None, Some(n)) => (n.clone(), n),
        (None, None) => return Err("missing \"target\" or \"name\"".to_string()),
    };
    let labels = f
        .labels
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    Ok(Incoming {
        check,
        status,
        target,
        name,
        host: f.host.unwrap_or_default(),
        summary: f.summary.unwrap_or_default(),
        labels,
    })
}

/// A part of the key records are grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// `check`.
    Check,
    /// `name` (the target when there is none).
    Name,
    /// `target`.
    Target,
    /// `host`.
    Host,
    /// `labels.NAME`.
    Label(String),
}

impl KeyPart {
    /// Parse `check`, `name`, `target`, `host` or `labels.NAME`.
    pub fn parse(text: &str) -> Result<KeyPart, String> {
        match text.trim() {
            "check" => Ok(KeyPart::Check),
            "name" => Ok(KeyPart::Name),
            "target" => Ok(KeyPart::Target),
            "host" => Ok(KeyPart::Host),
            other => match other.strip_prefix("labels.") {
                Some(l) if !l.is_empty() => Ok(KeyPart::Label(l.to_string())),
                _ => Err(format!(
                    "{other:?} is not a key part (check, name, target, host, labels.NAME)"
                )),
            },
        }
    }
}

/// The default key: `check`, `host` and `name`, so the same check on two
/// machines (nova-compute on compute1 and on compute2) is two alarms.
pub fn default_key() -> Vec<KeyPart> {
    vec![KeyPart::Check, KeyPart::Host, KeyPart::Name]
}

/// The alarm key of a record: the parts joined with `/`. A record without
/// a host (a script's minimal record) leaves the host part out.
pub fn key(parts: &[KeyPart], r: &Incoming<'_>) -> String {
    let mut out = String::with_capacity(64);
    let mut first = true;
    for p in parts {
        if *p == KeyPart::Host && r.host.is_empty() {
            continue;
        }
        if !first {
            out.push('/');
        }
        first = false;
        match p {
            KeyPart::Check => out.push_str(&r.check),
            KeyPart::Name => out.push_str(&r.name),
            KeyPart::Target => out.push_str(&r.target),
            KeyPart::Host => out.push_str(&r.host),
            KeyPart::Label(l) => out.push_str(r.labels.get(l).map_or("", |s| s.as_str())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_record_from_a_script_is_enough() {
        let r = parse(r#"{"check":"backup","status":"critical","name":"db-dump"}"#).expect("valid");
        assert_eq!(r.status, Status::Critical);
        assert_eq!(r.target, "db-dump");
        assert_eq!(key(&default_key(), &r), "backup/db-dump");
    }

    #[test]
    fn the_same_check_on_two_hosts_is_two_alarms() {
        // Was: the default key was check + name, so nova-compute's OK from
        // compute2 resolved compute1's outage.
        let down = parse(r#"{"host":"compute1","check":"watch-procs","status":"critical","name":"nova-compute"}"#)
            .expect("valid");
        let up = parse(
            r#"{"host":"compute2","check":"watch-procs","status":"ok","name":"nova-compute"}"#,
        )
        .expect("valid");
        assert_eq!(
            key(&default_key(), &down),
            "watch-procs/compute1/nova-compute"
        );
        assert_ne!(key(&default_key(), &down), key(&default_key(), &up));
    }

    #[test]
    fn full_records_and_labels_in_the_key() {
        let line = r#"{"ts":"2026-11-23T18:40:00.123Z","host":"mon1","check":"probe-http","target":"https://nova:8774/","name":"nova-api","status":"warning","summary":"slow","duration_ms":1.0,"metrics":[],"trace":[],"details":{},"labels":{"az":"zone-a","n":3}}"#;
        let r = parse(line).expect("valid");
        let parts = vec![
            KeyPart::Check,
            KeyPart::Name,
            KeyPart::parse("labels.az").expect("ok"),
        ];
        assert_eq!(key(&parts, &r), "probe-http/nova-api/zone-a");
        assert_eq!(r.labels["n"], "3");
        assert_eq!(r.host, "mon1");
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let cases = [
            ("not json", "not a JSON record"),
            (r#"{"check":"x","status":"crit"#, "truncated"),
            (r#"{"status":"ok","name":"n"}"#, "missing \"check\""),
            (r#"{"check":"c","name":"n"}"#, "missing \"status\""),
            (
                r#"{"check":"c","status":"bad","name":"n"}"#,
                "not ok, warning",
            ),
            (
                r#"{"check":"c","status":"ok"}"#,
                "missing \"target\" or \"name\"",
            ),
            ("[1,2]", "not a JSON record"),
        ];
        for (line, want) in cases {
            let e = parse(line).expect_err(line);
            assert!(e.contains(want), "{line}: {e}");
        }
        assert!(KeyPart::parse("labels.").is_err());
        assert!(KeyPart::parse("colour").is_err());
    }
}
