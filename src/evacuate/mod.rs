//! evacuate: move every instance off a dead compute host through Nova,
//! behind interlocks that are the feature — a fresh dead verdict, Nova's
//! own view of the service, fencing read back, brakes and cooldowns, and a
//! journal that makes every run resumable and never evacuates an instance
//! twice (Nova itself accepts a second evacuation of the same instance).
//!
//! This module holds what is decided without a cloud: host names, the
//! journal and its brakes, which instances are evacuable and whether an
//! instance has arrived. [`cli`] asks Nova and acts.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::openstack::nova::{Migration, Server};

pub mod cli;

/// The `check` of evacuate's records.
pub const CHECK: &str = "evacuate";

/// The marker at the start of the reason evacuate disables a service with:
/// `--reenable` enables only a service it disabled itself.
pub const MARKER: &str = "skyprobe-evacuate";

/// Seconds since the epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds since the epoch, to the millisecond.
pub fn now_unix_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0)
        .unwrap_or(0.0)
}

/// A compute host's name as Nova spells it, checked to be a plain name:
/// evacuate matches exactly and never searches, so glob and regex
/// characters (`compute*`, `compute[0-9]`) are refused rather than passed
/// to a Nova that matches some queries by substring.
pub fn host_name(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("an empty host name".into());
    }
    if t.len() > 255 {
        return Err(format!("{:?}...: longer than 255 bytes", &t[..32]));
    }
    let ok = t
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !ok || t.starts_with(['.', '-']) {
        return Err(format!(
            "{t:?} is not a host name: evacuate takes exact names (letters, digits, '.', '-', '_'), never a pattern"
        ));
    }
    Ok(t.to_string())
}

/// Where one instance's evacuation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Chosen, nothing asked of Nova yet.
    Planned,
    /// The evacuate call is being made: on a restart, Nova's migrations
    /// say whether it was (never submit again on a guess).
    Submitting,
    /// Nova accepted it; its migration is watched.
    Submitted,
    /// On another host, in the state it had.
    Verified,
    /// Given up (after `--retries`).
    Failed,
}

impl Step {
    /// Nothing more will be done for it.
    pub fn is_final(self) -> bool {
        matches!(self, Step::Verified | Step::Failed)
    }
}

/// One instance in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Its name, for people.
    pub name: String,
    /// Its status when planned (ACTIVE, SHUTOFF, ERROR).
    pub was: String,
    /// Where it stands.
    pub step: Step,
    /// Evacuate calls made.
    pub tries: u32,
    /// The highest evacuation migration id it had before the first call:
    /// a migration above it is ours.
    pub baseline: u64,
    /// The migration of the last call, once seen.
    #[serde(default)]
    pub migration: Option<u64>,
    /// Nova's request id of each evacuate call answered (what its logs
    /// are searched by when an evacuation goes wrong).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_ids: Vec<String>,
    /// Where it went.
    #[serde(default)]
    pub moved_to: Option<String>,
    /// Locked by evacuate (so unlocked after).
    #[serde(default)]
    pub locked: bool,
    /// Why it failed, or the last thing said of it.
    #[serde(default)]
    pub why: Option<String>,
    /// Seconds from the first call to verified.
    #[serde(default)]
    pub seconds: Option<f64>,
    /// When the first call was made (unix seconds, to the millisecond).
    #[serde(default)]
    pub submitted_at: Option<f64>,
    /// Its group: higher groups are moved first, each finished before the next.
    #[serde(default)]
    pub priority: i64,
    /// The host the last call named (None: the scheduler's choice).
    #[serde(default)]
    pub target: Option<String>,
    /// Evacuated at 2.95: it arrives stopped whatever it was.
    #[serde(default)]
    pub arrives_stopped: bool,
}

/// One host's evacuation in the journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostJob {
    /// When it began (unix seconds).
    pub started: u64,
    /// Fencing was read back as off (or waived with --no-fence).
    pub fenced: bool,
    /// Forced down and disabled by evacuate.
    pub forced_down: bool,
    /// When every instance reached a final step.
    #[serde(default)]
    pub finished: Option<u64>,
    /// Reserved hosts this evacuation enabled (taken out of the reserve).
    #[serde(default)]
    pub reserved_enabled: Vec<String>,
    /// Its instances by id.
    pub instances: BTreeMap<String, Job>,
}

/// The state file: the journal of evacuations in progress and the history
/// the brakes count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// The cloud it belongs to (Keystone's URL and the project): a file of
    /// another cloud is refused, never mixed.
    #[serde(default)]
    pub cloud: Option<String>,
    /// Hosts being (or last) evacuated.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostJob>,
    /// Evacuations begun: (host, unix seconds), for the brakes.
    #[serde(default)]
    pub history: Vec<(String, u64)>,
}

/// The brakes on how much is evacuated.
#[derive(Debug, Clone, PartialEq)]
pub struct Brakes {
    /// At most this many hosts begun per `window`.
    pub max_hosts: usize,
    /// The window, seconds.
    pub window: u64,
    /// A host evacuated less than this long ago is left alone, seconds.
    pub cooldown: u64,
    /// At most this share of the nova-compute services down at once, %.
    pub max_down_percent: f64,
    /// At most this many hosts of one availability zone begun per `window`.
    pub max_per_zone: Option<usize>,
    /// At most this many hosts of one host aggregate begun per `window`.
    pub max_per_aggregate: Option<usize>,
}

/// Which zone and aggregates each host is in (from Nova), for the brakes
/// per zone and per aggregate.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// A host's availability zone.
    pub zone: BTreeMap<String, String>,
    /// The aggregates a host is in.
    pub aggregates: BTreeMap<String, Vec<String>>,
}

impl Journal {
    /// Why a new evacuation of `host` must not begin now, if it must not.
    /// A host whose evacuation is in the journal and unfinished is resumed,
    /// not braked.
    pub fn brake(&self, host: &str, b: &Brakes, groups: &Groups, now: u64) -> Option<String> {
        if self.hosts.get(host).is_some_and(|j| j.finished.is_none()) {
            return None;
        }
        if let Some((_, at)) = self
            .history
            .iter()
            .filter(|(h, _)| h == host)
            .max_by_key(|(_, at)| *at)
        {
            if now.saturating_sub(*at) < b.cooldown {
                return Some(format!(
                    "cooldown: {host} was evacuated {} ago (--cooldown {})",
                    humantime::format_duration(std::time::Duration::from_secs(
                        now.saturating_sub(*at)
                    )),
                    humantime::format_duration(std::time::Duration::from_secs(b.cooldown))
                ));
            }
        }
        let recent = self
            .history
            .iter()
            .filter(|(_, at)| now.saturating_sub(*at) < b.window)
            .count();
        if recent >= b.max_hosts {
            return Some(format!(
                "brake: {recent} evacuation{} begun in the last {} (--max-hosts {})",
                if recent == 1 { "" } else { "s" },
                humantime::format_duration(std::time::Duration::from_secs(b.window)),
                b.max_hosts
            ));
        }
        let window = humantime::format_duration(std::time::Duration::from_secs(b.window));
        let begun_in = |member: &dyn Fn(&str) -> bool| {
            self.history
                .iter()
                .filter(|(h, at)| now.saturating_sub(*at) < b.window && member(h))
                .count()
        };
        if let (Some(n), Some(zone)) = (b.max_per_zone, groups.zone.get(host)) {
            let begun = begun_in(&|h| groups.zone.get(h) == Some(zone));
            if begun >= n {
                return Some(format!(
                    "brake: {begun} evacuation{} in zone {zone} begun in the last {window} (--max-hosts-per-zone {n})",
                    if begun == 1 { "" } else { "s" },
                ));
            }
        }
        if let Some(n) = b.max_per_aggregate {
            for agg in groups.aggregates.get(host).into_iter().flatten() {
                let begun =
                    begun_in(&|h| groups.aggregates.get(h).is_some_and(|a| a.contains(agg)));
                if begun >= n {
                    return Some(format!(
                        "brake: {begun} evacuation{} in aggregate {agg} begun in the last {window} (--max-hosts-per-aggregate {n})",
                        if begun == 1 { "" } else { "s" },
                    ));
                }
            }
        }
        None
    }

    /// Forget history older than a day past the longest brake.
    pub fn prune(&mut self, b: &Brakes, now: u64) {
        let keep = b.window.max(b.cooldown) + 86_400;
        self.history
            .retain(|(_, at)| now.saturating_sub(*at) < keep);
    }
}

/// Which instances are moved: all, or those tagged.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Only servers tagged with this key (with this value when given,
    /// compared without case): masakari's `HA_Enabled=True`, InstanceHA's
    /// `evacuable=true`.
    pub tagged: Option<(String, Option<String>)>,
    /// Where the tag is looked for, most specific first: the server's
    /// metadata, its flavor's extra specs, its image's properties. The
    /// first that has the key decides.
    pub sources: Vec<TagSource>,
    /// Instances in ERROR are moved too (Nova rebuilds them ACTIVE).
    pub error_instances: bool,
}

/// Where an instance's evacuable tag may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TagSource {
    /// The server's own metadata (masakari's way).
    Metadata,
    /// Its flavor's extra specs.
    Flavor,
    /// Its image's properties (Glance).
    Image,
}

impl TagSource {
    fn words(self) -> &'static str {
        match self {
            TagSource::Metadata => "its metadata",
            TagSource::Flavor => "its flavor's extra specs",
            TagSource::Image => "its image's properties",
        }
    }
}

/// Images' properties by image id, or why they could not be read.
pub type ImageProperties =
    std::collections::BTreeMap<String, Result<std::collections::BTreeMap<String, String>, String>>;

impl Selection {
    /// Whether the tag may have to be read from an image: a tag is asked
    /// for, images are a source, and neither server nor flavor decides.
    pub fn needs_image(&self, s: &Server) -> Option<String> {
        let (key, _) = self.tagged.as_ref()?;
        if !self.sources.contains(&TagSource::Image) {
            return None;
        }
        let decided = self.sources.iter().any(|src| match src {
            TagSource::Metadata => s.metadata.contains_key(key),
            TagSource::Flavor => s
                .flavor
                .as_ref()
                .is_some_and(|f| f.extra_specs.contains_key(key)),
            TagSource::Image => false,
        });
        (!decided)
            .then(|| s.image_id().map(str::to_string))
            .flatten()
    }

    /// Whether `s` is evacuated, and if not why.
    pub fn judge(&self, s: &Server, images: &ImageProperties) -> Result<(), String> {
        if let Some((key, want)) = &self.tagged {
            let mut unreadable = None;
            let found = self.sources.iter().find_map(|src| {
                let value = match src {
                    TagSource::Metadata => s.metadata.get(key).cloned(),
                    TagSource::Flavor => s.flavor.as_ref()?.extra_specs.get(key).cloned(),
                    TagSource::Image => match images.get(s.image_id()?) {
                        Some(Ok(props)) => props.get(key).cloned(),
                        Some(Err(e)) => {
                            unreadable = Some(e.clone());
                            None
                        }
                        None => None,
                    },
                };
                value.map(|v| (*src, v))
            });
            match (found, want) {
                (None, _) => {
                    let looked: Vec<&str> = self.sources.iter().map(|s| s.words()).collect();
                    return Err(match unreadable {
                        Some(e) => format!(
                            "not tagged {key} in {}, and its image's properties cannot be read: {e}",
                            looked.join(" or ")
                        ),
                        None => format!("not tagged {key} in {}", looked.join(" or ")),
                    });
                }
                (Some((src, v)), Some(w)) if !v.eq_ignore_ascii_case(w) => {
                    return Err(format!("{key}={v} in {}, not {w}", src.words()))
                }
                _ => {}
            }
        }
        match s.status.as_str() {
            "ACTIVE" | "SHUTOFF" | "STOPPED" | "PAUSED" | "SUSPENDED" => Ok(()),
            "ERROR" if self.error_instances => Ok(()),
            "ERROR" => Err("in ERROR (--error-instances skip)".into()),
            other => Err(format!("status {other}: nothing evacuates it")),
        }
    }
}

/// Where instances go, as masakari's recovery methods: the scheduler
/// (`auto`), only the reserved hosts (`reserved_host`), the scheduler then
/// the reserved hosts on failure (`auto_priority`), or the reserved hosts
/// then the scheduler (`rh_priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Recovery {
    /// The scheduler places them.
    Auto,
    /// Only the reserved hosts.
    #[value(alias = "reserved_host")]
    ReservedHost,
    /// The scheduler, then a reserved host for one that failed.
    #[value(alias = "auto_priority")]
    AutoPriority,
    /// A reserved host, then the scheduler for one that failed.
    #[value(alias = "rh_priority")]
    RhPriority,
}

impl Recovery {
    /// The reserved hosts are used first.
    pub fn reserved_first(self) -> bool {
        matches!(self, Recovery::ReservedHost | Recovery::RhPriority)
    }

    /// Whether call number `try_n` (from 1) of an instance goes to a
    /// reserved host.
    pub fn reserved_for_try(self, try_n: u32) -> bool {
        match self {
            Recovery::Auto => false,
            Recovery::ReservedHost => true,
            Recovery::AutoPriority => try_n > 1,
            Recovery::RhPriority => try_n == 1,
        }
    }
}

/// The reserved host with the fewest instances sent to it so far (ties:
/// the first named).
pub fn least_used<'a>(reserved: &'a [String], jobs: &[&Job]) -> Option<&'a String> {
    reserved.iter().min_by_key(|h| {
        jobs.iter()
            .filter(|j| j.target.as_deref() == Some(h.as_str()))
            .count()
    })
}

/// An instance's priority from its metadata `key` (an integer; none or not
/// a number: 0).
pub fn priority_of(s: &Server, key: Option<&str>) -> i64 {
    key.and_then(|k| s.metadata.get(k))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Ids grouped by priority, the highest group first (ids in order inside).
pub fn groups(jobs: &[(String, i64)]) -> Vec<Vec<String>> {
    let mut by: BTreeMap<std::cmp::Reverse<i64>, Vec<String>> = BTreeMap::new();
    for (id, p) in jobs {
        by.entry(std::cmp::Reverse(*p))
            .or_default()
            .push(id.clone());
    }
    by.into_values().collect()
}

/// What one look at an instance says of its evacuation.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Not yet decided.
    Moving(String),
    /// Arrived: the new host.
    Arrived(String),
    /// Nova gave up on it: why.
    Failed(String),
}

/// Judge an instance's evacuation off `from` from its server and its
/// evacuation migrations above `baseline`: arrived when the migration is
/// done or completed, the server is elsewhere and back in the state it
/// had (SHUTOFF stays SHUTOFF; ERROR comes back ACTIVE).
pub fn progress(
    server: &Server,
    migrations: &[Migration],
    baseline: u64,
    from: &str,
    was: &str,
) -> Progress {
    let ours = migrations
        .iter()
        .filter(|m| {
            m.id > baseline && m.migration_type.as_deref().unwrap_or("evacuation") == "evacuation"
        })
        .max_by_key(|m| m.id);
    let Some(m) = ours else {
        return Progress::Moving("no evacuation migration yet".into());
    };
    match m.status.as_str() {
        "failed" | "error" | "cancelled" => {
            return Progress::Failed(format!("migration {} {}", m.id, m.status))
        }
        "done" | "completed" => {}
        other => return Progress::Moving(format!("migration {} {other}", m.id)),
    }
    let host = server.host.clone().unwrap_or_default();
    if host.is_empty() || host == from {
        return Progress::Moving(format!(
            "migration {} {} but still on {from}",
            m.id, m.status
        ));
    }
    if server.task_state.is_some() {
        return Progress::Moving(format!(
            "on {host}, task {}",
            server.task_state.as_deref().unwrap_or("")
        ));
    }
    let want_off = matches!(was, "SHUTOFF" | "STOPPED");
    match server.status.as_str() {
        "ACTIVE" if !want_off => Progress::Arrived(host),
        "SHUTOFF" if want_off => Progress::Arrived(host),
        // A stopped one may come back running at some microversions: it
        // has arrived, in a state the record says.
        "ACTIVE" => Progress::Arrived(host),
        "ERROR" => Progress::Failed(format!("on {host} in ERROR")),
        other => Progress::Moving(format!("on {host}, {other}")),
    }
}

/// Whether instances needing `need` (per instance, by resource class) fit
/// on the targets' free capacity `free` (per host, by class), placing the
/// largest first on the host with the most room: the move in words, or
/// why it does not fit.
pub fn fits(
    need: &[(String, BTreeMap<String, u64>)],
    free: &BTreeMap<String, BTreeMap<String, f64>>,
) -> Result<String, String> {
    if need.is_empty() {
        return Ok("nothing to place".into());
    }
    if free.is_empty() {
        return Err("no target host has capacity in Placement".into());
    }
    let mut left = free.clone();
    let mut order: Vec<&(String, BTreeMap<String, u64>)> = need.iter().collect();
    order.sort_by_key(|(_, r)| std::cmp::Reverse(r.get("MEMORY_MB").copied().unwrap_or(0)));
    let mut total: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, r) in order {
        for (class, n) in r {
            *total.entry(class.as_str()).or_default() += n;
        }
        let room = |h: &BTreeMap<String, f64>| -> bool {
            r.iter()
                .all(|(class, n)| *n == 0 || h.get(class).is_some_and(|f| *f >= *n as f64))
        };
        let best = left.iter_mut().filter(|(_, h)| room(h)).max_by(|a, b| {
            let m = |h: &BTreeMap<String, f64>| h.get("MEMORY_MB").copied().unwrap_or(0.0);
            m(a.1).total_cmp(&m(b.1))
        });
        match best {
            Some((_, h)) => {
                for (class, n) in r {
                    if let Some(f) = h.get_mut(class) {
                        *f -= *n as f64;
                    }
                }
            }
            None => {
                let want: Vec<String> = r.iter().map(|(c, n)| format!("{c} {n}")).collect();
                return Err(format!(
                    "{name} ({}) fits on no target after the larger ones",
                    want.join(", ")
                ));
            }
        }
    }
    let want: Vec<String> = total.iter().map(|(c, n)| format!("{c} {n}")).collect();
    Ok(format!(
        "{} instances ({}) fit on {} target hosts",
        need.len(),
        want.join(", "),
        free.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capacity_is_packed_largest_first() {
        let res = |v: u64, m: u64| -> BTreeMap<String, u64> {
            [("VCPU".to_string(), v), ("MEMORY_MB".to_string(), m)]
                .into_iter()
                .collect()
        };
        let room = |v: f64, m: f64| -> BTreeMap<String, f64> {
            [("VCPU".to_string(), v), ("MEMORY_MB".to_string(), m)]
                .into_iter()
                .collect()
        };
        let free: BTreeMap<String, BTreeMap<String, f64>> = [
            ("c2".to_string(), room(4.0, 4096.0)),
            ("c3".to_string(), room(4.0, 2048.0)),
        ]
        .into_iter()
        .collect();
        let need = vec![
            ("a".to_string(), res(2, 3000)),
            ("b".to_string(), res(2, 2048)),
            ("c".to_string(), res(1, 1000)),
        ];
        let ok = fits(&need, &free).expect("fits");
        assert!(
            ok.starts_with("3 instances (MEMORY_MB 6048, VCPU 5) fit on 2"),
            "{ok}"
        );
        let too_big = vec![("a".to_string(), res(2, 5000))];
        let e = fits(&too_big, &free).expect_err("too big");
        assert!(
            e.starts_with("a (MEMORY_MB 5000, VCPU 2) fits on no target"),
            "{e}"
        );
        let many = vec![
            ("a".to_string(), res(3, 100)),
            ("b".to_string(), res(3, 100)),
            ("c".to_string(), res(3, 100)),
        ];
        assert!(fits(&many, &free).is_err());
        assert!(fits(&[], &BTreeMap::new()).is_ok());
        assert!(fits(&need, &BTreeMap::new()).is_err());
    }

    #[test]
    fn recovery_methods_choose_reserved_hosts_by_try() {
        assert!(!Recovery::Auto.reserved_for_try(1));
        assert!(Recovery::ReservedHost.reserved_for_try(2));
        assert!(!Recovery::AutoPriority.reserved_for_try(1));
        assert!(Recovery::AutoPriority.reserved_for_try(2));
        assert!(Recovery::RhPriority.reserved_for_try(1));
        assert!(!Recovery::RhPriority.reserved_for_try(2));
        let job = |t: Option<&str>| Job {
            name: "x".into(),
            was: "ACTIVE".into(),
            step: Step::Submitted,
            tries: 1,
            baseline: 0,
            migration: None,
            request_ids: vec![],
            moved_to: None,
            locked: false,
            why: None,
            seconds: None,
            submitted_at: None,
            priority: 0,
            target: t.map(str::to_string),
            arrives_stopped: false,
        };
        let r = vec!["r1".to_string(), "r2".to_string()];
        let (a, b) = (job(Some("r1")), job(None));
        assert_eq!(least_used(&r, &[&a, &b]).map(String::as_str), Some("r2"));
        assert_eq!(least_used(&r, &[]).map(String::as_str), Some("r1"));
        assert_eq!(least_used(&[], &[&a]), None);
    }

    #[test]
    fn priority_groups_run_highest_first() {
        let g = groups(&[
            ("a".into(), 0),
            ("b".into(), 10),
            ("c".into(), 0),
            ("d".into(), -1),
            ("e".into(), 10),
        ]);
        assert_eq!(g, vec![vec!["b", "e"], vec!["a", "c"], vec!["d"]]);
        let s = server(
            json!({"id": "a", "name": "a", "status": "ACTIVE", "metadata": {"prio": " 5 ", "bad": "x"}}),
        );
        assert_eq!(priority_of(&s, Some("prio")), 5);
        assert_eq!(priority_of(&s, Some("bad")), 0);
        assert_eq!(priority_of(&s, None), 0);
    }

    #[test]
    fn host_names_are_exact_words() {
        assert_eq!(host_name(" compute1 ").as_deref(), Ok("compute1"));
        assert_eq!(host_name("cmp-1.dc1_a").as_deref(), Ok("cmp-1.dc1_a"));
        for bad in [
            "compute*",
            "compute[0-9]",
            "c?",
            "^compute1$",
            "a|b",
            "-x",
            "",
            "a b",
            "a/b",
        ] {
            let e = host_name(bad).expect_err(bad);
            assert!(!e.is_empty());
        }
        assert!(host_name("compute*")
            .expect_err("pattern")
            .contains("never a pattern"));
    }

    fn brakes() -> Brakes {
        Brakes {
            max_hosts: 2,
            window: 3600,
            cooldown: 1800,
            max_down_percent: 50.0,
            max_per_zone: None,
            max_per_aggregate: None,
        }
    }

    #[test]
    fn brakes_count_the_window_and_the_cooldown() {
        let mut j = Journal::default();
        let now = 100_000;
        assert_eq!(j.brake("c1", &brakes(), &Groups::default(), now), None);
        j.history.push(("c1".into(), now - 60));
        let e = j
            .brake("c1", &brakes(), &Groups::default(), now)
            .expect("cooldown");
        assert!(e.starts_with("cooldown: c1 was evacuated 1m ago"), "{e}");
        assert_eq!(j.brake("c2", &brakes(), &Groups::default(), now), None);
        j.history.push(("c2".into(), now - 30));
        let e = j
            .brake("c3", &brakes(), &Groups::default(), now)
            .expect("brake");
        assert!(
            e.starts_with("brake: 2 evacuations begun in the last 1h"),
            "{e}"
        );
        // Resuming an unfinished one is not braked.
        j.hosts.insert("c2".into(), HostJob::default());
        assert_eq!(j.brake("c2", &brakes(), &Groups::default(), now), None);
        // Old history goes.
        j.history.push(("c0".into(), 1));
        j.prune(&brakes(), now);
        assert_eq!(j.history.len(), 2);
    }

    #[test]
    fn brakes_per_zone_and_per_aggregate() {
        let mut j = Journal::default();
        let now = 100_000;
        let b = Brakes {
            max_hosts: 10,
            cooldown: 0,
            max_per_zone: Some(1),
            max_per_aggregate: Some(2),
            ..brakes()
        };
        let mut g = Groups::default();
        for (h, z) in [("a1", "az1"), ("a2", "az1"), ("b1", "az2"), ("b2", "az2")] {
            g.zone.insert(h.into(), z.into());
        }
        g.aggregates.insert("b1".into(), vec!["rack9".into()]);
        g.aggregates.insert("b2".into(), vec!["rack9".into()]);
        g.aggregates.insert("b3".into(), vec!["rack9".into()]);
        j.history.push(("a1".into(), now - 60));
        let e = j.brake("a2", &b, &g, now).expect("zone");
        assert!(
            e.contains("in zone az1") && e.contains("--max-hosts-per-zone 1"),
            "{e}"
        );
        assert_eq!(j.brake("b1", &b, &g, now), None, "another zone");
        j.history.push(("b1".into(), now - 30));
        let per_agg = Brakes {
            max_per_zone: None,
            ..b.clone()
        };
        assert_eq!(j.brake("b2", &per_agg, &g, now), None, "1 of 2 in rack9");
        j.history.push(("b2".into(), now - 10));
        let e = j.brake("b3", &per_agg, &g, now).expect("aggregate");
        assert!(e.contains("in aggregate rack9"), "{e}");
        // Outside the window nothing counts.
        assert_eq!(j.brake("b3", &per_agg, &g, now + 7200), None);
    }

    fn server(v: serde_json::Value) -> Server {
        serde_json::from_value(v).expect("server")
    }

    #[test]
    fn selection_and_progress() {
        let all_sources = vec![TagSource::Metadata, TagSource::Flavor, TagSource::Image];
        let sel = Selection {
            tagged: Some(("HA_Enabled".into(), Some("True".into()))),
            sources: all_sources.clone(),
            error_instances: false,
        };
        let none = ImageProperties::new();
        let s = server(
            json!({"id": "a", "name": "a", "status": "ACTIVE", "metadata": {"HA_Enabled": "true"}}),
        );
        assert_eq!(sel.judge(&s, &none), Ok(()));
        let s = server(
            json!({"id": "a", "name": "a", "status": "ACTIVE", "metadata": {"HA_Enabled": "False"}}),
        );
        assert!(sel.judge(&s, &none).is_err());
        let s = server(
            json!({"id": "a", "name": "a", "status": "ERROR", "metadata": {"HA_Enabled": "True"}}),
        );
        assert!(sel.judge(&s, &none).expect_err("error").contains("ERROR"));
        let s = server(json!({"id": "a", "name": "a", "status": "BUILD"}));
        let all = Selection {
            tagged: None,
            sources: all_sources.clone(),
            error_instances: true,
        };
        assert!(all.judge(&s, &none).is_err());

        // The tag through the flavor, then the image; the server's own
        // metadata, when it has the key, decides before either.
        let evacuable = Selection {
            tagged: Some(("evacuable".into(), Some("true".into()))),
            sources: all_sources,
            error_instances: false,
        };
        let flavored = server(json!({"id": "f", "name": "f", "status": "ACTIVE",
            "flavor": {"vcpus": 1, "ram": 64, "disk": 0, "extra_specs": {"evacuable": "true"}},
            "image": {"id": "img1"}}));
        assert_eq!(evacuable.needs_image(&flavored), None);
        assert_eq!(evacuable.judge(&flavored, &none), Ok(()));
        let imaged = server(json!({"id": "i", "name": "i", "status": "ACTIVE",
            "flavor": {"vcpus": 1, "ram": 64, "disk": 0}, "image": {"id": "img1"}}));
        assert_eq!(evacuable.needs_image(&imaged).as_deref(), Some("img1"));
        let mut images = ImageProperties::new();
        images.insert(
            "img1".into(),
            Ok([("evacuable".to_string(), "True".to_string())].into()),
        );
        assert_eq!(evacuable.judge(&imaged, &images), Ok(()));
        let opted_out = server(json!({"id": "o", "name": "o", "status": "ACTIVE",
            "metadata": {"evacuable": "false"}, "image": {"id": "img1"}}));
        assert_eq!(evacuable.needs_image(&opted_out), None);
        let why = evacuable.judge(&opted_out, &images).expect_err("opted out");
        assert!(why.contains("in its metadata"), "{why}");
        images.insert("img1".into(), Err("Glance answered 503".into()));
        let why = evacuable.judge(&imaged, &images).expect_err("unreadable");
        assert!(why.contains("cannot be read: Glance answered 503"), "{why}");
        let from_volume = server(json!({"id": "v", "name": "v", "status": "ACTIVE", "image": ""}));
        assert_eq!(evacuable.needs_image(&from_volume), None);
        let only_metadata = Selection {
            sources: vec![TagSource::Metadata],
            ..evacuable.clone()
        };
        assert!(only_metadata.judge(&flavored, &none).is_err());

        let m = |id: u64, status: &str| -> Migration {
            serde_json::from_value(json!({"id": id, "instance_uuid": "a", "status": status, "migration_type": "evacuation"}))
                .expect("migration")
        };
        let on = |host: &str, status: &str| {
            server(json!({"id": "a", "name": "a", "status": status, "OS-EXT-SRV-ATTR:host": host}))
        };
        assert!(matches!(
            progress(&on("c1", "ACTIVE"), &[m(3, "done")], 3, "c1", "ACTIVE"),
            Progress::Moving(_)
        ));
        assert!(matches!(
            progress(&on("c1", "REBUILD"), &[m(4, "accepted")], 3, "c1", "ACTIVE"),
            Progress::Moving(_)
        ));
        assert_eq!(
            progress(&on("c2", "ACTIVE"), &[m(4, "done")], 3, "c1", "ACTIVE"),
            Progress::Arrived("c2".into())
        );
        assert_eq!(
            progress(
                &on("c2", "SHUTOFF"),
                &[m(4, "completed")],
                3,
                "c1",
                "SHUTOFF"
            ),
            Progress::Arrived("c2".into())
        );
        assert!(matches!(
            progress(&on("c1", "ERROR"), &[m(4, "failed")], 3, "c1", "ACTIVE"),
            Progress::Failed(_)
        ));
        // An older failure is not ours.
        assert!(matches!(
            progress(&on("c1", "ACTIVE"), &[m(2, "failed")], 3, "c1", "ACTIVE"),
            Progress::Moving(_)
        ));
    }
}
