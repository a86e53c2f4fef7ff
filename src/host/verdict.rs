//! The dead-host verdict: signals (each a small set of values), a decision
//! table from the signal vector to `alive`, `suspect`, `dead` or `unknown`
//! (validated at start: every vector decided, every rule reachable), and
//! the observer's gates and the samples that stand between a table's
//! "dead" and a record that says dead.
//!
//! Nothing here probes or calls anything: `cli` gathers the evidence and
//! hands the values in.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::cli::UsageError;

/// What the verdict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It answers.
    Alive,
    /// Something is wrong, but not enough agrees to call it dead.
    Suspect,
    /// Dead, by the table, the samples and every gate.
    Dead,
    /// The observer cannot tell.
    Unknown,
}

impl Verdict {
    /// Its name in records and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Alive => "alive",
            Verdict::Suspect => "suspect",
            Verdict::Dead => "dead",
            Verdict::Unknown => "unknown",
        }
    }

    /// The record's state: dead is CRITICAL, suspect WARNING, unknown UNKNOWN.
    pub fn status(self) -> crate::report::Status {
        use crate::report::Status;
        match self {
            Verdict::Alive => Status::Ok,
            Verdict::Suspect => Status::Warning,
            Verdict::Dead => Status::Critical,
            Verdict::Unknown => Status::Unknown,
        }
    }

    fn parse(text: &str) -> Option<Verdict> {
        [
            Verdict::Alive,
            Verdict::Suspect,
            Verdict::Dead,
            Verdict::Unknown,
        ]
        .into_iter()
        .find(|v| v.as_str() == text)
    }
}

/// The values of one network of a host: `up` (an open port or an echo
/// reply), `closed` (only refusals or resets: its kernel answers), `silent`
/// (every decided probe unanswered: timeouts, unreachable, lost echoes),
/// `unknown` (nothing decided), `none` (the host has no address on it).
pub const NETWORK_VALUES: &[&str] = &["up", "closed", "silent", "unknown", "none"];

/// The signals besides the networks, with their values (their meanings
/// are in [`DEFAULT_TABLE`]'s comment). `off` is a signal this run does not
/// gather.
pub const SIGNALS: &[(&str, &[&str])] = &[
    ("networks", &["up", "partial", "silent", "unknown"]),
    ("instances", &["up", "silent", "none", "unknown", "off"]),
    ("nova", &["up", "stale", "unknown", "off"]),
    ("neutron", &["up", "stale", "none", "unknown", "off"]),
    (
        "cluster",
        &["online", "offline", "no-quorum", "unknown", "off"],
    ),
    ("peers", &["up", "silent", "unknown", "off"]),
];

/// The table that ships: dead only when the host is silent on every
/// network and a second channel (Nova, Neutron, or Pacemaker) agrees, and
/// nothing contradicts it.
pub const DEFAULT_TABLE: &str = r#"# probe-host's default decision table. The first rule whose every
# condition holds decides; a signal a rule does not name may have any value.
#
# Signals and their values (off: not gathered in this run):
#   each network by name (management, and --network / hosts-file names):
#             up (an open port or echo reply), closed (only refusals: its
#             kernel answers), silent, unknown (nothing decided), none (the
#             host has no address on it)
#   networks  up (every network answers), partial, silent, unknown
#   instances up, silent, none, unknown, off   (its servers' ports, --openstack)
#   nova      up, stale, unknown, off          (its nova-compute, --openstack)
#   neutron   up, stale, none, unknown, off    (its agents, --openstack)
#   cluster   online, offline, no-quorum, unknown, off   (--pacemaker)
#   peers     up, silent, unknown, off         (--peer-records)

[[rule]]
when = { networks = "up" }
verdict = "alive"
why = "it answers on every network"

[[rule]]
when = { instances = "up" }
verdict = "alive"
why = "its instances answer"

[[rule]]
when = { peers = "up" }
verdict = "alive"
why = "another vantage point reaches it"

[[rule]]
when = { cluster = "no-quorum" }
verdict = "unknown"
why = "the cluster has no quorum: no host is dead without it"

[[rule]]
when = { networks = "partial" }
verdict = "suspect"
why = "it answers on some networks only"

[[rule]]
when = { cluster = "online" }
verdict = "suspect"
why = "silent here, but the cluster has it online"

[[rule]]
when = { networks = "silent", nova = "stale", neutron = ["stale", "none", "off"], instances = ["silent", "none", "off"], cluster = ["offline", "off"], peers = ["silent", "off"] }
verdict = "dead"
why = "silent on every network and its nova-compute is stale"

[[rule]]
when = { networks = "silent", nova = "off", neutron = "stale", instances = ["silent", "none", "off"], cluster = ["offline", "off"], peers = ["silent", "off"] }
verdict = "dead"
why = "silent on every network and its Neutron agents are stale"

[[rule]]
when = { networks = "silent", nova = "off", neutron = ["none", "off"], cluster = "offline", instances = ["silent", "none", "off"], peers = ["silent", "off"] }
verdict = "dead"
why = "silent on every network and offline in a quorate cluster"

[[rule]]
when = { networks = "silent" }
verdict = "suspect"
why = "silent on every network, but no second channel agrees"

[[rule]]
when = { networks = "unknown" }
verdict = "unknown"
why = "no probe of it was decided"
"#;

/// The most networks a table is checked over (every vector is tried).
pub const MAX_NETWORKS: usize = 4;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(default)]
    rule: Vec<RuleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    #[serde(default)]
    when: BTreeMap<String, OneOrMany>,
    verdict: String,
    why: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// One rule: for each dimension, the values it allows (a bit per value).
#[derive(Debug, Clone)]
pub struct Rule {
    allow: Vec<u8>,
    /// What it decides.
    pub verdict: Verdict,
    /// Why, for the record's summary.
    pub why: String,
}

/// A validated table for one run's networks and signals.
#[derive(Debug, Clone)]
pub struct Table {
    /// Dimension names: the networks, then [`SIGNALS`].
    dims: Vec<String>,
    networks: usize,
    rules: Vec<Rule>,
}

/// A host's signal values, one per dimension of the table.
pub type Vector = Vec<u8>;

fn values_of(networks: usize, d: usize) -> &'static [&'static str] {
    if d < networks {
        NETWORK_VALUES
    } else {
        SIGNALS[d - networks].1
    }
}

fn value_index(values: &[&str], v: &str) -> Option<u8> {
    values.iter().position(|x| *x == v).map(|i| i as u8)
}

/// The `networks` value for the per-network values (networks a host is
/// not on do not count).
fn networks_value(nets: &[u8]) -> u8 {
    let none = value_index(NETWORK_VALUES, "none").unwrap_or(4);
    let nets: Vec<u8> = nets.iter().copied().filter(|v| *v != none).collect();
    let nets = nets.as_slice();
    let up = value_index(NETWORK_VALUES, "up").unwrap_or(0);
    let closed = value_index(NETWORK_VALUES, "closed").unwrap_or(1);
    let silent = value_index(NETWORK_VALUES, "silent").unwrap_or(2);
    let answered = nets.iter().filter(|v| **v == up || **v == closed).count();
    if nets.is_empty() {
        3
    } else if answered == nets.len() {
        0
    } else if answered > 0 {
        1
    } else if nets.iter().all(|v| *v == silent) {
        2
    } else if nets.contains(&silent) {
        // Some silent, the rest undecided: silent as far as it was decided.
        2
    } else {
        3
    }
}

impl Table {
    /// Parse and check `text` (from `source`, for messages) for a run with
    /// these networks, and these signals gathered (the others are `off`).
    pub fn parse(
        text: &str,
        source: &str,
        networks: &[String],
        gathered: &BTreeSet<&str>,
    ) -> Result<Table, UsageError> {
        let fail = |what: String| UsageError::new(format!("decision table {source}: {what}"));
        if networks.is_empty() {
            return Err(fail("no network to judge".into()));
        }
        if networks.len() > MAX_NETWORKS {
            return Err(fail(format!(
                "{} networks; at most {MAX_NETWORKS} are judged",
                networks.len()
            )));
        }
        for n in networks {
            if SIGNALS.iter().any(|(s, _)| s == n) {
                return Err(fail(format!(
                    "network {n:?} has the name of a signal; rename it"
                )));
            }
        }
        let file: TableFile =
            toml::from_str(text).map_err(|e| fail(crate::files::toml_words(&e, text)))?;
        if file.rule.is_empty() {
            return Err(fail("no [[rule]]".into()));
        }
        let mut dims: Vec<String> = networks.to_vec();
        dims.extend(SIGNALS.iter().map(|(s, _)| s.to_string()));
        let n = networks.len();
        let mut rules = Vec::new();
        for (i, entry) in file.rule.iter().enumerate() {
            let at = format!("rule {}", i + 1);
            let verdict = Verdict::parse(&entry.verdict).ok_or_else(|| {
                fail(format!(
                    "{at}: verdict {:?} is not alive, suspect, dead or unknown",
                    entry.verdict
                ))
            })?;
            let mut allow: Vec<u8> = (0..dims.len())
                .map(|d| {
                    let count = values_of(n, d).len();
                    ((1u16 << count) - 1) as u8
                })
                .collect();
            for (key, value) in &entry.when {
                let d = dims.iter().position(|x| x == key).ok_or_else(|| {
                    fail(format!(
                        "{at}: {key:?} is neither a signal ({}) nor a network of this run ({})",
                        SIGNALS
                            .iter()
                            .map(|(s, _)| *s)
                            .collect::<Vec<_>>()
                            .join(", "),
                        networks.join(", ")
                    ))
                })?;
                let values = values_of(n, d);
                let given: Vec<&String> = match value {
                    OneOrMany::One(v) => vec![v],
                    OneOrMany::Many(v) => v.iter().collect(),
                };
                if given.is_empty() {
                    return Err(fail(format!(
                        "{at}: {key} = [] allows no value, so the rule can never match"
                    )));
                }
                let mut mask = 0u8;
                for v in given {
                    let bit = value_index(values, v).ok_or_else(|| {
                        fail(format!(
                            "{at}: {key} = {v:?} is not one of {}",
                            values.join(", ")
                        ))
                    })?;
                    mask |= 1 << bit;
                }
                allow[d] = mask;
            }
            rules.push(Rule {
                allow,
                verdict,
                why: entry
                    .why
                    .clone()
                    .unwrap_or_else(|| format!("{at} ({})", describe_when(&entry.when))),
            });
        }
        let table = Table {
            dims,
            networks: n,
            rules,
        };
        table.check(gathered).map_err(fail)?;
        Ok(table)
    }

    /// Every vector this run can produce is decided by some rule, and each
    /// rule that can apply to this run decides at least one vector.
    fn check(&self, gathered: &BTreeSet<&str>) -> Result<(), String> {
        let n = self.networks;
        let off = |d: usize| value_index(values_of(n, d), "off");
        // The free dimensions: every network, and each signal gathered (the
        // aggregate `networks` follows from the networks).
        let mut radix: Vec<u8> = Vec::new();
        let mut fixed: Vec<Option<u8>> = Vec::new();
        for d in 0..self.dims.len() {
            let name = self.dims[d].as_str();
            if d >= n && name == "networks" {
                fixed.push(Some(0));
                radix.push(1);
            } else if d >= n && !gathered.contains(name) {
                fixed.push(off(d));
                radix.push(1);
            } else {
                fixed.push(None);
                let count = values_of(n, d).len();
                // A gathered signal is never `off`.
                let count = if off(d).is_some() { count - 1 } else { count };
                radix.push(count as u8);
            }
        }
        let agg = self.dims.iter().position(|d| d == "networks").unwrap_or(n);
        let mut decided = vec![false; self.rules.len()];
        let mut vector: Vector = vec![0; self.dims.len()];
        let mut digits = vec![0u8; self.dims.len()];
        let mut gap: Option<Vector> = None;
        loop {
            for d in 0..self.dims.len() {
                vector[d] = fixed[d].unwrap_or(digits[d]);
            }
            vector[agg] = networks_value(&vector[..n]);
            match self.rules.iter().position(|r| r.matches(&vector)) {
                Some(i) => decided[i] = true,
                None => {
                    if gap.is_none() {
                        gap = Some(vector.clone());
                    }
                }
            }
            // Next vector (mixed radix).
            let mut d = 0;
            loop {
                if d == digits.len() {
                    break;
                }
                digits[d] += 1;
                if digits[d] < radix[d] {
                    break;
                }
                digits[d] = 0;
                d += 1;
            }
            if d == digits.len() {
                break;
            }
        }
        if let Some(v) = gap {
            return Err(format!(
                "no rule decides {}; add a rule for it (a last rule with `when = {{}}` decides everything left)",
                self.show(&v)
            ));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if decided[i] || rule.dormant(self, gathered) {
                continue;
            }
            let alone = self.matches_anything(rule, gathered, 0);
            if !alone && self.matches_anything(rule, gathered, 1) {
                // Possible with one more network (`networks = "partial"`
                // when a run has one): for another configuration.
                continue;
            }
            return Err(if alone {
                format!(
                    "rule {} can never match: every case it covers is decided by an earlier rule",
                    i + 1
                )
            } else {
                format!(
                    "rule {} can never match: its conditions contradict each other (the `networks` value follows from the networks')",
                    i + 1
                )
            });
        }
        Ok(())
    }

    /// Whether `rule` alone matches some vector of this run, with `extra`
    /// more networks that no rule names.
    fn matches_anything(&self, rule: &Rule, gathered: &BTreeSet<&str>, extra: usize) -> bool {
        let mut any = false;
        let n = self.networks;
        let nets = NETWORK_VALUES.len() as u32;
        let combos = nets.pow((n + extra) as u32);
        for c in 0..combos {
            let mut v: Vector = vec![0; self.dims.len()];
            let mut x = c;
            for slot in v.iter_mut().take(n) {
                *slot = (x % nets) as u8;
                x /= nets;
            }
            let mut all_nets: Vec<u8> = v[..n].to_vec();
            for _ in 0..extra {
                all_nets.push((x % nets) as u8);
                x /= nets;
            }
            let agg = networks_value(&all_nets);
            let ok_nets = (0..n).all(|d| rule.allow[d] & (1 << v[d]) != 0);
            let agg_d = self.dims.iter().position(|d| d == "networks").unwrap_or(n);
            if ok_nets && rule.allow[agg_d] & (1 << agg) != 0 {
                // The other signals are independent: each must allow one of
                // the values this run can give it.
                any = (n..self.dims.len()).filter(|d| *d != agg_d).all(|d| {
                    let values = values_of(n, d);
                    let possible = self.possible(d, gathered, values);
                    rule.allow[d] & possible != 0
                });
                if any {
                    break;
                }
            }
        }
        any
    }

    /// The values dimension `d` can take in this run, as bits.
    fn possible(&self, d: usize, gathered: &BTreeSet<&str>, values: &[&str]) -> u8 {
        let off = value_index(values, "off");
        if gathered.contains(self.dims[d].as_str()) {
            let all = ((1u16 << values.len()) - 1) as u8;
            off.map_or(all, |o| all & !(1 << o))
        } else {
            off.map_or(0, |o| 1 << o)
        }
    }

    /// A vector in words: `management=silent, nova=stale, ...`.
    pub fn show(&self, v: &Vector) -> String {
        (0..self.dims.len())
            .map(|d| {
                let values = values_of(self.networks, d);
                format!(
                    "{}={}",
                    self.dims[d],
                    values.get(v[d] as usize).copied().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The vector for these values (network values in the run's order,
    /// then each signal by name; a signal not given is `off`). The
    /// `networks` value is derived.
    pub fn vector(&self, values: &BTreeMap<String, String>) -> Vector {
        let n = self.networks;
        let mut v: Vector = (0..self.dims.len())
            .map(|d| {
                let vals = values_of(n, d);
                let given = values.get(&self.dims[d]).map(String::as_str);
                let fallback = if d < n { "unknown" } else { "off" };
                value_index(vals, given.unwrap_or(fallback))
                    .or_else(|| value_index(vals, "unknown"))
                    .unwrap_or(0)
            })
            .collect();
        let agg = self.dims.iter().position(|d| d == "networks").unwrap_or(n);
        v[agg] = networks_value(&v[..n]);
        v
    }

    /// The value of dimension `name` in `v`.
    pub fn value(&self, v: &Vector, name: &str) -> &'static str {
        let Some(d) = self.dims.iter().position(|x| x == name) else {
            return "?";
        };
        values_of(self.networks, d)
            .get(v[d] as usize)
            .copied()
            .unwrap_or("?")
    }

    /// The first rule that decides `v`, and its number (from 1).
    pub fn decide(&self, v: &Vector) -> Option<(usize, &Rule)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(v))
            .map(|(i, r)| (i + 1, r))
    }
}

impl Rule {
    fn matches(&self, v: &Vector) -> bool {
        self.allow
            .iter()
            .zip(v)
            .all(|(mask, value)| mask & (1 << value) != 0)
    }

    /// It names a signal this run does not gather with values other than
    /// `off`: it is for another configuration, not a mistake.
    fn dormant(&self, table: &Table, gathered: &BTreeSet<&str>) -> bool {
        (table.networks..table.dims.len()).any(|d| {
            let values = values_of(table.networks, d);
            let possible = table.possible(d, gathered, values);
            self.allow[d] & possible == 0
        })
    }
}

fn describe_when(when: &BTreeMap<String, OneOrMany>) -> String {
    if when.is_empty() {
        return "everything else".into();
    }
    when.iter()
        .map(|(k, v)| match v {
            OneOrMany::One(x) => format!("{k}={x}"),
            OneOrMany::Many(x) => format!("{k}={}", x.join("|")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--samples N` (N in a row) or `N/M` (N of the last M runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Samples {
    /// Dead samples needed.
    pub need: u16,
    /// Out of this many runs.
    pub of: u16,
}

/// Parse `--samples`.
pub fn parse_samples(text: &str) -> Result<Samples, String> {
    let number = |t: &str| -> Result<u16, String> {
        t.trim()
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| format!("{t:?} in {text:?} is not a number from 1 to 1000"))
    };
    let (need, of) = match text.split_once('/') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let n = number(text)?;
            (n, n)
        }
    };
    if need > of {
        return Err(format!(
            "{text:?}: {need} dead samples cannot come from {of} runs"
        ));
    }
    Ok(Samples { need, of })
}

/// A share of hosts in percent, or none (`off`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share(pub Option<f64>);

/// A share of hosts: `50%`, `50`, or `off`.
pub fn parse_share(text: &str) -> Result<Share, String> {
    let t = text.trim();
    if t == "off" || t == "none" {
        return Ok(Share(None));
    }
    t.trim_end_matches('%')
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 100.0)
        .map(|v| Share(Some(v)))
        .ok_or_else(|| format!("{text:?} is not a share of hosts (1-100%, or off)"))
}

/// What a run keeps between runs (`--state`, or memory with `--every`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerdictState {
    /// Runs so far.
    #[serde(default)]
    pub runs: u64,
    /// Per host: the table's "dead" in each of the last runs, newest last.
    #[serde(default)]
    pub samples: BTreeMap<String, VecDeque<bool>>,
    /// Hosts whose verdict was alive in the last run.
    #[serde(default)]
    pub alive: BTreeSet<String>,
    /// A cliff being waited out.
    #[serde(default)]
    pub cliff: Option<Cliff>,
}

/// A large share of hosts lost at once, waited out for some runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cliff {
    /// The run it was seen in.
    pub seen_run: u64,
    /// No dead before this run.
    pub until_run: u64,
    /// How many of the hosts alive before were lost.
    pub lost: usize,
    /// Out of.
    pub of: usize,
}

/// One host going into the gates.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The host's name (the key in the state).
    pub host: String,
    /// Its zone, for per-zone budgets.
    pub zone: Option<String>,
    /// Its host aggregates, for per-aggregate budgets.
    pub aggregates: Vec<String>,
    /// What the table said.
    pub table: Verdict,
    /// The final verdict.
    pub verdict: Verdict,
    /// Why the final verdict differs from the table's, if it does.
    pub gate: Option<String>,
    /// Dead samples in the window, and the window's length.
    pub samples: (usize, usize),
}

/// The gates' settings.
#[derive(Debug, Clone)]
pub struct Gates {
    /// `--samples`.
    pub samples: Samples,
    /// `--cliff` (a share, %), None when off.
    pub cliff: Option<f64>,
    /// `--cliff-runs`.
    pub cliff_runs: u16,
    /// `--max-dead`.
    pub max_dead: Option<usize>,
    /// `--max-dead-percent`.
    pub max_dead_percent: Option<f64>,
    /// `--max-dead-per-zone`.
    pub max_dead_per_zone: Option<usize>,
    /// `--max-dead-per-aggregate`.
    pub max_dead_per_aggregate: Option<usize>,
}

/// Why the observer may be the problem this run (control targets silent,
/// every Nova service stale): every verdict but alive becomes unknown.
#[derive(Debug, Clone, Default)]
pub struct Observer {
    /// The reasons, in words; empty when the observer looks sound.
    pub impaired: Vec<String>,
}

/// What the gates did this run, for the summary record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GateReport {
    /// The run's number.
    pub run: u64,
    /// Observer impaired, and why.
    pub observer_impaired: Vec<String>,
    /// A cliff in force: (lost, of, runs left).
    pub cliff: Option<(usize, usize, u64)>,
    /// The brake, if it held dead hosts back.
    pub brake: Option<String>,
}

/// Apply the samples and gates to the table's verdicts, updating `state`.
pub fn apply_gates(
    hosts: &mut [Judged],
    state: &mut VerdictState,
    gates: &Gates,
    observer: &Observer,
) -> GateReport {
    state.runs += 1;
    let run = state.runs;
    let mut report = GateReport {
        run,
        observer_impaired: observer.impaired.clone(),
        ..GateReport::default()
    };
    let impaired = !observer.impaired.is_empty();
    let window = usize::from(gates.samples.of);
    // Samples: the table's dead, counted while the observer is sound.
    for h in hosts.iter_mut() {
        let q = state.samples.entry(h.host.clone()).or_default();
        if !impaired {
            q.push_back(h.table == Verdict::Dead);
            while q.len() > window {
                q.pop_front();
            }
        }
        let dead = q.iter().filter(|d| **d).count();
        h.samples = (dead, q.len());
        h.verdict = h.table;
        if h.table == Verdict::Dead && dead < usize::from(gates.samples.need) {
            h.verdict = Verdict::Suspect;
            h.gate = Some(format!(
                "dead in {dead} of the last {} runs; {} of {window} needed",
                q.len(),
                gates.samples.need
            ));
        }
    }
    // Hosts no longer probed leave the state.
    let names: BTreeSet<&str> = hosts.iter().map(|h| h.host.as_str()).collect();
    state.samples.retain(|k, _| names.contains(k.as_str()));
    // The observer first: when it may be the problem, nothing is dead.
    if impaired {
        let why = format!("observer impaired: {}", observer.impaired.join("; "));
        for h in hosts.iter_mut() {
            if h.verdict != Verdict::Alive {
                h.verdict = Verdict::Unknown;
                h.gate = Some(why.clone());
            }
        }
    }
    // The cliff: a large share of the hosts alive last run lost at once.
    let lost = hosts
        .iter()
        .filter(|h| state.alive.contains(&h.host))
        .filter(|h| matches!(h.table, Verdict::Dead | Verdict::Suspect))
        .count();
    let before = hosts
        .iter()
        .filter(|h| state.alive.contains(&h.host))
        .count();
    if let Some(share) = gates.cliff {
        if !impaired && lost >= 2 && before > 0 && (lost as f64) * 100.0 >= share * before as f64 {
            let active = state.cliff.as_ref().is_some_and(|c| run < c.until_run);
            if !active {
                state.cliff = Some(Cliff {
                    seen_run: run,
                    until_run: run + u64::from(gates.cliff_runs),
                    lost,
                    of: before,
                });
            }
        }
    }
    if let Some(c) = state.cliff.clone() {
        if run < c.until_run {
            let left = c.until_run - run;
            report.cliff = Some((c.lost, c.of, left));
            for h in hosts.iter_mut() {
                if h.verdict == Verdict::Dead {
                    h.verdict = Verdict::Suspect;
                    h.gate = Some(format!(
                        "cliff: {} of the {} hosts alive before were lost at once (run {}); no dead for {left} more run{}",
                        c.lost,
                        c.of,
                        c.seen_run,
                        if left == 1 { "" } else { "s" }
                    ));
                }
            }
        } else {
            state.cliff = None;
        }
    }
    // The brake: too many dead at once.
    let dead: Vec<usize> = (0..hosts.len())
        .filter(|i| hosts[*i].verdict == Verdict::Dead)
        .collect();
    let total = hosts.len();
    let mut brake: Option<String> = None;
    if let Some(max) = gates.max_dead {
        if dead.len() > max {
            brake = Some(format!(
                "{} hosts dead at once, more than --max-dead {max}",
                dead.len()
            ));
        }
    }
    if let (None, Some(pct)) = (&brake, gates.max_dead_percent) {
        if total > 0 && (dead.len() as f64) * 100.0 > pct * total as f64 {
            brake = Some(format!(
                "{} of {total} hosts dead at once, more than --max-dead-percent {pct}%",
                dead.len()
            ));
        }
    }
    if let Some(why) = &brake {
        for i in &dead {
            hosts[*i].verdict = Verdict::Unknown;
            hosts[*i].gate = Some(format!("brake: {why}"));
        }
        report.brake = Some(why.clone());
    } else {
        // Budgets per group: a zone, an aggregate. Counted on the dead
        // before any budget acts, so one group's brake does not spare another.
        let mut said = Vec::new();
        let mut held: BTreeSet<usize> = BTreeSet::new();
        let budgets: [(Option<usize>, &str, &str); 2] = [
            (gates.max_dead_per_zone, "zone", "--max-dead-per-zone"),
            (
                gates.max_dead_per_aggregate,
                "aggregate",
                "--max-dead-per-aggregate",
            ),
        ];
        for (max, kind, flag) in budgets {
            let Some(max) = max else { continue };
            let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for i in &dead {
                let groups: Vec<String> = if kind == "zone" {
                    vec![hosts[*i].zone.clone().unwrap_or_else(|| "(no zone)".into())]
                } else {
                    hosts[*i].aggregates.clone()
                };
                for g in groups {
                    by.entry(g).or_default().push(*i);
                }
            }
            for (group, members) in by {
                if members.len() > max {
                    let why = format!(
                        "{} hosts dead at once in {kind} {group}, more than {flag} {max}",
                        members.len()
                    );
                    for i in members {
                        if held.insert(i) {
                            hosts[i].gate = Some(format!("brake: {why}"));
                        }
                    }
                    said.push(why);
                }
            }
        }
        for i in &held {
            hosts[*i].verdict = Verdict::Unknown;
        }
        if !said.is_empty() {
            report.brake = Some(said.join("; "));
        }
    }
    state.alive = hosts
        .iter()
        .filter(|h| h.verdict == Verdict::Alive)
        .map(|h| h.host.clone())
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> BTreeSet<&'static str> {
        SIGNALS.iter().map(|(s, _)| *s).collect()
    }

    fn nets(n: usize) -> Vec<String> {
        ["management", "tenant", "storage", "n4"][..n]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn the_shipped_example_is_the_default_table() {
        assert_eq!(
            include_str!("../../examples/verdict-table.toml"),
            DEFAULT_TABLE
        );
        let hosts = crate::host::read_hosts(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/computes.toml"
        )))
        .expect("examples/computes.toml");
        assert!(hosts.iter().all(|h| h.networks.contains_key("tenant")));
    }

    #[test]
    fn the_default_table_is_valid_for_every_configuration() {
        let optional = ["instances", "nova", "neutron", "cluster", "peers"];
        for n in 1..=3 {
            for mask in 0..(1 << optional.len()) {
                let mut gathered: BTreeSet<&str> = ["networks"].into_iter().collect();
                for (i, s) in optional.iter().enumerate() {
                    if mask & (1 << i) != 0 {
                        gathered.insert(s);
                    }
                }
                Table::parse(DEFAULT_TABLE, "(default)", &nets(n), &gathered)
                    .unwrap_or_else(|e| panic!("{n} networks, {gathered:?}: {}", e.0));
            }
        }
    }

    fn decide(t: &Table, values: &[(&str, &str)]) -> Verdict {
        let v = t.vector(
            &values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        t.decide(&v).expect("decided").1.verdict
    }

    #[test]
    fn dead_needs_two_channels_and_no_contradiction() {
        let t = Table::parse(DEFAULT_TABLE, "x", &nets(2), &all()).expect("table");
        let dead = [
            ("management", "silent"),
            ("tenant", "silent"),
            ("nova", "stale"),
            ("neutron", "stale"),
            ("instances", "none"),
            ("cluster", "off"),
            ("peers", "off"),
        ];
        assert_eq!(decide(&t, &dead), Verdict::Dead);
        let mut agents_alive = dead;
        agents_alive[3] = ("neutron", "up");
        assert_eq!(decide(&t, &agents_alive), Verdict::Suspect);
        let mut one_net = dead;
        one_net[1] = ("tenant", "closed");
        assert_eq!(decide(&t, &one_net), Verdict::Suspect);
        let mut nova_unknown = dead;
        nova_unknown[2] = ("nova", "unknown");
        assert_eq!(decide(&t, &nova_unknown), Verdict::Suspect);
        let mut no_quorum = dead;
        no_quorum[5] = ("cluster", "no-quorum");
        assert_eq!(decide(&t, &no_quorum), Verdict::Unknown);
        let mut vms = dead;
        vms[4] = ("instances", "up");
        assert_eq!(decide(&t, &vms), Verdict::Alive);
        // Ports closed but ICMP answers is "up" on that network: alive.
        let mut answers = dead;
        answers[0] = ("management", "up");
        answers[1] = ("tenant", "up");
        assert_eq!(decide(&t, &answers), Verdict::Alive);
        // Only the data plane: never dead.
        let only = Table::parse(
            DEFAULT_TABLE,
            "x",
            &nets(1),
            &["networks"].into_iter().collect(),
        )
        .expect("table");
        assert_eq!(decide(&only, &[("management", "silent")]), Verdict::Suspect);
    }

    #[test]
    fn gaps_contradictions_and_shadows_are_config_errors() {
        let g = all();
        let err = |text: &str| {
            Table::parse(text, "t.toml", &nets(2), &g)
                .expect_err("rejected")
                .0
        };
        let gap = err("[[rule]]\nwhen = { networks = \"up\" }\nverdict = \"alive\"\n");
        assert!(gap.contains("no rule decides"), "{gap}");
        let shadow = err(
            "[[rule]]\nwhen = {}\nverdict = \"unknown\"\n[[rule]]\nwhen = { nova = \"up\" }\nverdict = \"alive\"\n",
        );
        assert!(
            shadow.contains("rule 2 can never match") && shadow.contains("earlier"),
            "{shadow}"
        );
        let contradiction = err(
            "[[rule]]\nwhen = { management = \"up\", networks = \"silent\" }\nverdict = \"dead\"\n[[rule]]\nwhen = {}\nverdict = \"unknown\"\n",
        );
        assert!(contradiction.contains("contradict"), "{contradiction}");
        let unknown_net = err("[[rule]]\nwhen = { storage = \"up\" }\nverdict = \"alive\"\n");
        assert!(
            unknown_net.contains("\"storage\" is neither"),
            "{unknown_net}"
        );
        let bad_value = err("[[rule]]\nwhen = { nova = \"dead\" }\nverdict = \"alive\"\n");
        assert!(
            bad_value.contains("nova = \"dead\" is not one of"),
            "{bad_value}"
        );
        let bad_verdict = err("[[rule]]\nwhen = {}\nverdict = \"maybe\"\n");
        assert!(bad_verdict.contains("rule 1: verdict"), "{bad_verdict}");
        let empty = err("[[rule]]\nwhen = { nova = [] }\nverdict = \"alive\"\n");
        assert!(empty.contains("allows no value"), "{empty}");
        let syntax = err("[[rule]\n");
        assert!(syntax.starts_with("decision table t.toml:"), "{syntax}");
    }

    fn judged(name: &str, table: Verdict) -> Judged {
        Judged {
            host: name.into(),
            zone: None,
            aggregates: Vec::new(),
            table,
            verdict: table,
            gate: None,
            samples: (0, 0),
        }
    }

    fn gates() -> Gates {
        Gates {
            samples: Samples { need: 3, of: 3 },
            cliff: Some(50.0),
            cliff_runs: 3,
            max_dead: None,
            max_dead_percent: Some(50.0),
            max_dead_per_zone: None,
            max_dead_per_aggregate: None,
        }
    }

    fn round(state: &mut VerdictState, tables: &[Verdict], g: &Gates) -> Vec<Verdict> {
        let mut hosts: Vec<Judged> = tables
            .iter()
            .enumerate()
            .map(|(i, t)| judged(&format!("h{i}"), *t))
            .collect();
        apply_gates(&mut hosts, state, g, &Observer::default());
        hosts.iter().map(|h| h.verdict).collect()
    }

    #[test]
    fn samples_then_dead_and_a_cliff_waits() {
        use Verdict::*;
        let g = gates();
        let mut s = VerdictState::default();
        let alive = [Alive; 4];
        round(&mut s, &alive, &g);
        // One host dies: suspect for two runs, dead on the third.
        assert_eq!(round(&mut s, &[Dead, Alive, Alive, Alive], &g)[0], Suspect);
        assert_eq!(round(&mut s, &[Dead, Alive, Alive, Alive], &g)[0], Suspect);
        assert_eq!(round(&mut s, &[Dead, Alive, Alive, Alive], &g)[0], Dead);
        // A rack: half the hosts at once.
        let mut s = VerdictState::default();
        round(&mut s, &alive, &g);
        let rack = [Dead, Dead, Alive, Alive];
        for _ in 0..3 {
            assert_eq!(round(&mut s, &rack, &g)[..2], [Suspect, Suspect]);
        }
        assert_eq!(round(&mut s, &rack, &g)[..2], [Dead, Dead]);
        // More than half dead at once: the brake.
        let mut s = VerdictState::default();
        let g1 = Gates {
            samples: Samples { need: 1, of: 1 },
            cliff: None,
            ..gates()
        };
        assert_eq!(
            round(&mut s, &[Dead, Dead, Dead, Alive], &g1),
            [Unknown, Unknown, Unknown, Alive]
        );
    }

    #[test]
    fn budgets_per_zone_and_aggregate_hold_back_only_their_group() {
        let g = Gates {
            samples: Samples { need: 1, of: 1 },
            cliff: None,
            max_dead_percent: None,
            max_dead_per_zone: Some(1),
            max_dead_per_aggregate: Some(1),
            ..gates()
        };
        let mut hosts: Vec<Judged> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| judged(n, Verdict::Dead))
            .collect();
        hosts[0].zone = Some("az1".into());
        hosts[1].zone = Some("az1".into());
        hosts[2].zone = Some("az2".into());
        hosts[3].zone = Some("az3".into());
        hosts[2].aggregates = vec!["rack7".into()];
        hosts[3].aggregates = vec!["rack7".into()];
        let r = apply_gates(
            &mut hosts,
            &mut VerdictState::default(),
            &g,
            &Observer::default(),
        );
        let v: Vec<Verdict> = hosts.iter().map(|h| h.verdict).collect();
        assert_eq!(v, [Verdict::Unknown; 4]);
        assert!(r.brake.as_deref().unwrap_or("").contains("zone az1"));
        assert!(r.brake.as_deref().unwrap_or("").contains("aggregate rack7"));
        // One dead per group: nothing held.
        let mut hosts = vec![judged("a", Verdict::Dead), judged("c", Verdict::Dead)];
        hosts[0].zone = Some("az1".into());
        hosts[1].zone = Some("az2".into());
        apply_gates(
            &mut hosts,
            &mut VerdictState::default(),
            &g,
            &Observer::default(),
        );
        assert_eq!(hosts[0].verdict, Verdict::Dead);
        assert_eq!(hosts[1].verdict, Verdict::Dead);
    }

    #[test]
    fn an_impaired_observer_judges_nothing_dead_and_counts_no_sample() {
        let mut s = VerdictState::default();
        let g = Gates {
            samples: Samples { need: 1, of: 1 },
            ..gates()
        };
        let mut hosts = vec![judged("a", Verdict::Dead), judged("b", Verdict::Alive)];
        let r = apply_gates(
            &mut hosts,
            &mut s,
            &g,
            &Observer {
                impaired: vec!["control 10.0.0.1:5000 silent".into()],
            },
        );
        assert_eq!(hosts[0].verdict, Verdict::Unknown);
        assert_eq!(hosts[1].verdict, Verdict::Alive);
        assert!(hosts[0]
            .gate
            .as_deref()
            .unwrap_or("")
            .contains("observer impaired"));
        assert_eq!(r.observer_impaired.len(), 1);
        assert_eq!(s.samples["a"].len(), 0);
    }

    #[test]
    fn samples_and_shares_parse() {
        assert_eq!(parse_samples("3"), Ok(Samples { need: 3, of: 3 }));
        assert_eq!(parse_samples("2/5"), Ok(Samples { need: 2, of: 5 }));
        assert!(parse_samples("5/2").is_err());
        assert!(parse_samples("0").is_err());
        assert_eq!(parse_share("50%"), Ok(Share(Some(50.0))));
        assert_eq!(parse_share("off"), Ok(Share(None)));
        assert!(parse_share("0").is_err());
    }
}
