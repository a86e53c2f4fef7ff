//! notify's TOML: alarm rules, sinks and routes.
//!
//! ```toml
//! key = ["check", "name"]            # what an alarm is per
//!
//! [alarm]                            # defaults for every key
//! fire_after = 1                     # or m_of_n = [3, 5]
//! resolve_after = 1
//! repeat_every = "1h"
//! stale_after = "10m"
//! flap = true                        # or flap = [5.0, 20.0]
//!
//! [[rule]]                           # overrides for some checks
//! check = "probe-http"               # regex on check, name
//! fire_after = 3
//!
//! [[sink]]
//! name = "ops"
//! type = "webhook"                   # slack, teams, pagerduty, command, email, masakari
//! url = "https://alerts.example/hook"
//!
//! [[route]]                          # none: every alert to every sink
//! check = "^probe-http$"
//! state = ["critical"]
//! labels = { az = "zone-a" }
//! sinks = ["ops"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use super::alarm::{AlarmState, Rules};
use super::input::KeyPart;
use super::Alert;
use crate::cli::UsageError;

/// A duration in the file: "90s", "10m", or seconds as a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Dur {
    Text(String),
    Secs(f64),
}

impl Dur {
    fn get(&self, what: &str) -> Result<Duration, String> {
        match self {
            Dur::Text(t) => crate::units::parse_duration(t).map_err(|e| format!("{what}: {e}")),
            Dur::Secs(s) if s.is_finite() && *s >= 0.0 => Ok(Duration::from_secs_f64(*s)),
            Dur::Secs(s) => Err(format!("{what}: {s} is not a duration")),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Flap {
    On(bool),
    Thresholds([f64; 2]),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    fire_after: Option<u32>,
    #[serde(default)]
    m_of_n: Option<[u32; 2]>,
    #[serde(default)]
    resolve_after: Option<u32>,
    #[serde(default)]
    repeat_every: Option<Dur>,
    #[serde(default)]
    stale_after: Option<Dur>,
    #[serde(default)]
    flap: Option<Flap>,
}

impl RulesFile {
    fn apply(&self, base: &Rules, what: &str) -> Result<Rules, String> {
        let mut r = base.clone();
        if let Some(n) = self.fire_after {
            if n == 0 {
                return Err(format!("{what}: fire_after must be at least 1"));
            }
            r.fire_after = n;
            r.m_of_n = None;
        }
        if let Some([m, n]) = self.m_of_n {
            if m == 0 || n == 0 || m > n {
                return Err(format!("{what}: m_of_n = [{m}, {n}] wants 1 <= M <= N"));
            }
            r.m_of_n = Some((m, n));
        }
        if let Some(k) = self.resolve_after {
            if k == 0 {
                return Err(format!("{what}: resolve_after must be at least 1"));
            }
            r.resolve_after = k;
        }
        if let Some(d) = &self.repeat_every {
            let d = d.get(&format!("{what}: repeat_every"))?;
            r.repeat_every = (!d.is_zero()).then_some(d);
        }
        if let Some(d) = &self.stale_after {
            let d = d.get(&format!("{what}: stale_after"))?;
            r.stale_after = (!d.is_zero()).then_some(d);
        }
        match self.flap {
            None => {}
            Some(Flap::On(false)) => r.flap = None,
            Some(Flap::On(true)) => r.flap = Some((5.0, 20.0)),
            Some(Flap::Thresholds([low, high])) => {
                if !(0.0..=100.0).contains(&low) || !(0.0..=100.0).contains(&high) || low > high {
                    return Err(format!(
                        "{what}: flap = [{low}, {high}] wants 0 <= low <= high <= 100"
                    ));
                }
                r.flap = Some((low, high));
            }
        }
        Ok(r)
    }
}

/// One `[[sink]]` as written; secrets stay in the environment or a file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkFile {
    /// Its name, for routes and records.
    pub name: String,
    /// webhook, slack, teams, pagerduty, command, email, masakari.
    #[serde(rename = "type")]
    pub kind: String,
    /// false: configured but not used.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where to POST.
    #[serde(default)]
    pub url: Option<String>,
    /// Extra HTTP headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// PagerDuty: the environment variable holding the routing key.
    #[serde(default)]
    pub routing_key_env: Option<String>,
    /// PagerDuty: the routing key itself, from `--pagerduty` (never from a file).
    #[serde(skip)]
    pub routing_key: Option<String>,
    /// command: argv.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// email: recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// email: sender.
    #[serde(default)]
    pub from: Option<String>,
    /// email: HOST:PORT.
    #[serde(default)]
    pub smtp: Option<String>,
    /// email: "starttls" (default), "tls" or "none".
    #[serde(default)]
    pub security: Option<String>,
    /// email: user for AUTH.
    #[serde(default)]
    pub user: Option<String>,
    /// email: the environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// email: a file holding the password.
    #[serde(default)]
    pub password_file: Option<String>,
    /// email: CA certificates (PEM) to trust for the server's TLS.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// masakari: the cloud in clouds.yaml (default: OS_CLOUD / OS_*).
    #[serde(default)]
    pub cloud: Option<String>,
    /// Per-attempt timeout.
    #[serde(default)]
    pub(crate) timeout: Option<Dur>,
}

fn yes() -> bool {
    true
}

impl SinkFile {
    /// The per-attempt timeout, if set.
    pub fn timeout(&self) -> Result<Option<Duration>, String> {
        self.timeout
            .as_ref()
            .map(|d| d.get(&format!("sink {:?}: timeout", self.name)))
            .transpose()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    state: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    sinks: Vec<String>,
    #[serde(default, rename = "continue")]
    keep_going: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    key: Option<Vec<String>>,
    #[serde(default)]
    alarm: Option<RulesFile>,
    #[serde(default)]
    rule: Vec<RulesFile>,
    #[serde(default)]
    sink: Vec<SinkFile>,
    #[serde(default)]
    route: Vec<RouteFile>,
}

/// Rules for the records whose check and name match.
#[derive(Debug, Clone)]
pub struct RuleFor {
    check: Option<Regex>,
    name: Option<Regex>,
    /// The rules.
    pub rules: Rules,
}

/// A route: which alerts go to which sinks.
#[derive(Debug, Clone)]
pub struct Route {
    check: Option<Regex>,
    name: Option<Regex>,
    states: Vec<AlarmState>,
    labels: BTreeMap<String, String>,
    /// Sink names.
    pub sinks: Vec<String>,
    /// Also try the routes after this one (default: stop at the first match).
    pub keep_going: bool,
}

impl Route {
    /// Whether this alert takes this route. A recovery is routed by the
    /// state it recovers from, so it goes where the alert went.
    pub fn matches(&self, a: &Alert) -> bool {
        let state = if a.state == AlarmState::Ok {
            a.previous
        } else {
            a.state
        };
        self.check.as_ref().is_none_or(|r| r.is_match(&a.check))
            && self.name.as_ref().is_none_or(|r| r.is_match(&a.name))
            && (self.states.is_empty() || self.states.contains(&state))
            && self
                .labels
                .iter()
                .all(|(k, v)| a.labels.get(k).is_some_and(|x| x == v))
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// What an alarm is per (None: the default).
    pub key: Option<Vec<KeyPart>>,
    /// Rules from `[alarm]` (None: the defaults).
    pub alarm: Option<Rules>,
    /// `[[rule]]` overrides, first match wins.
    pub rules: Vec<RuleFor>,
    /// `[[sink]]`s.
    pub sinks: Vec<SinkFile>,
    /// `[[route]]`s.
    pub routes: Vec<Route>,
}

fn regex(what: &str, text: &Option<String>) -> Result<Option<Regex>, String> {
    text.as_ref()
        .map(|t| {
            Regex::new(t).map_err(|e| format!("{what} {t:?}: {}", crate::cli::regex_words(&e)))
        })
        .transpose()
}

/// Sink types notify knows.
pub const SINK_KINDS: [&str; 7] = [
    "webhook",
    "slack",
    "teams",
    "pagerduty",
    "command",
    "email",
    "masakari",
];

/// Read and check a configuration file. `base` are the rules from flags.
pub fn load(path: &Path, base: &Rules) -> Result<Config, UsageError> {
    let at = |m: String| UsageError::new(format!("{}: {m}", path.display()));
    let text = crate::files::read_text(path, crate::files::CONFIG_MAX).map_err(at)?;
    let file: File = toml::from_str(&text).map_err(|e| at(crate::files::toml_words(&e, &text)))?;
    let key = file
        .key
        .map(|parts| {
            parts
                .iter()
                .map(|p| KeyPart::parse(p))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|e| at(format!("key: {e}")))?;
    let alarm = file
        .alarm
        .as_ref()
        .map(|r| r.apply(base, "[alarm]"))
        .transpose()
        .map_err(at)?;
    let defaults = alarm.clone().unwrap_or_else(|| base.clone());
    let mut rules = Vec::new();
    for (i, r) in file.rule.iter().enumerate() {
        let what = format!("[[rule]] #{}", i + 1);
        rules.push(RuleFor {
            check: regex(&format!("{what} check"), &r.check).map_err(at)?,
            name: regex(&format!("{what} name"), &r.name).map_err(at)?,
            rules: r.apply(&defaults, &what).map_err(at)?,
        });
    }
    let mut names = std::collections::BTreeSet::new();
    for s in &file.sink {
        if s.name.trim().is_empty() {
            return Err(at("a [[sink]] without a name".into()));
        }
        if !names.insert(s.name.clone()) {
            return Err(at(format!("two sinks are named {:?}", s.name)));
        }
        if !SINK_KINDS.contains(&s.kind.as_str()) {
            return Err(at(format!(
                "sink {:?}: type {:?} is not one of {}",
                s.name,
                s.kind,
                SINK_KINDS.join(", ")
            )));
        }
        s.timeout().map_err(at)?;
    }
    let mut routes = Vec::new();
    for (i, r) in file.route.iter().enumerate() {
        let what = format!("[[route]] #{}", i + 1);
        for s in &r.sinks {
            if !names.contains(s) {
                return Err(at(format!("{what}: no sink is named {s:?}")));
            }
        }
        let states = r
            .state
            .iter()
            .map(|s| {
                AlarmState::parse(s).ok_or_else(|| {
                    at(format!(
                        "{what}: state {s:?} is not ok, warning, critical, unknown or insufficient_data"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        routes.push(Route {
            check: regex(&format!("{what} check"), &r.check).map_err(at)?,
            name: regex(&format!("{what} name"), &r.name).map_err(at)?,
            states,
            labels: r.labels.clone(),
            sinks: r.sinks.clone(),
            keep_going: r.keep_going.unwrap_or(false),
        });
    }
    Ok(Config {
        key,
        alarm,
        rules,
        sinks: file.sink,
        routes,
    })
}

impl Config {
    /// The rules for a record.
    pub fn rules_for<'a>(&'a self, base: &'a Rules, check: &str, name: &str) -> &'a Rules {
        self.rules
            .iter()
            .find(|r| {
                r.check.as_ref().is_none_or(|x| x.is_match(check))
                    && r.name.as_ref().is_none_or(|x| x.is_match(name))
            })
            .map(|r| &r.rules)
            .or(self.alarm.as_ref())
            .unwrap_or(base)
    }

    /// The names of the sinks an alert goes to; every enabled sink when
    /// there are no routes.
    pub fn route(&self, alert: &Alert, enabled: &[String]) -> Vec<String> {
        if self.routes.is_empty() {
            return enabled.to_vec();
        }
        let mut out: Vec<String> = Vec::new();
        for r in &self.routes {
            if r.matches(alert) {
                for s in &r.sinks {
                    if enabled.contains(s) && !out.contains(s) {
                        out.push(s.clone());
                    }
                }
                if !r.keep_going {
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("skyprobe-notify-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join(format!("{:x}.toml", crate::state::fnv(text)));
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn a_full_file_loads() {
        let p = write(
            r#"
key = ["check", "name", "labels.az"]
[alarm]
fire_after = 2
repeat_every = "1h"
stale_after = 600
flap = [5.0, 25.0]
[[rule]]
check = "^watch-procs$"
m_of_n = [3, 5]
[[sink]]
name = "ops"
type = "webhook"
url = "http://127.0.0.1:1/"
[[sink]]
name = "pager"
type = "pagerduty"
routing_key_env = "PD_KEY"
enabled = false
[[route]]
state = ["critical"]
sinks = ["ops", "pager"]
"#,
        );
        let c = load(&p, &Rules::default()).expect("loads");
        assert_eq!(c.key.as_ref().map(|k| k.len()), Some(3));
        let base = Rules::default();
        let r = c.rules_for(&base, "probe-http", "x");
        assert_eq!((r.fire_after, r.flap), (2, Some((5.0, 25.0))));
        assert_eq!(r.stale_after, Some(Duration::from_secs(600)));
        let procs = c.rules_for(&base, "watch-procs", "x");
        assert_eq!(procs.m_of_n, Some((3, 5)));
        assert_eq!(
            procs.repeat_every,
            Some(Duration::from_secs(3600)),
            "inherits [alarm]"
        );
    }

    #[test]
    fn the_example_configuration_loads() {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/notify/notify.toml");
        let c = load(&p, &Rules::default()).expect("examples/notify/notify.toml loads");
        assert_eq!(c.sinks.len(), 5);
        assert_eq!(c.routes.len(), 3);
        let base = Rules::default();
        assert_eq!(c.rules_for(&base, "probe-http", "x").m_of_n, Some((3, 5)));
    }

    #[test]
    fn mistakes_name_the_file_and_what() {
        for (text, want) in [
            ("[[sink]]\nname = \"a\"\ntype = \"fax\"\n", "type \"fax\""),
            ("[[sink]]\nname = \"a\"\ntype = \"slack\"\ncolour = 1\n", "line 4"),
            ("[[route]]\nsinks = [\"nope\"]\n", "no sink is named \"nope\""),
            ("[alarm]\nm_of_n = [5, 3]\n", "1 <= M <= N"),
            ("[alarm]\nrepeat_every = \"soon\"\n", "repeat_every"),
            ("key = [\"colour\"]\n", "not a key part"),
            ("[[sink]]\nname = \"a\"\ntype = \"slack\"\n[[sink]]\nname = \"a\"\ntype = \"slack\"\n", "two sinks"),
        ] {
            let p = write(text);
            let e = load(&p, &Rules::default()).expect_err(text).0;
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains(&p.display().to_string()), "{e}");
        }
    }
}
