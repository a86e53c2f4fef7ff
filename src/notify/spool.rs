//! The spool: every alert is written here before any sink is tried, with
//! each routed sink's delivery state, and removed only when every sink
//! has accepted it or refused it for good.
//!
//! On disk it is a journal (`journal.jsonl` in the spool directory): each
//! change to an alert appends the whole alert as one line, the last line
//! of an id wins, and an alert every sink is done with is gone. Appends
//! reach the kernel at once, so `kill -9` at any moment loses nothing and
//! a sink that accepted an alert is not sent it again. They are made
//! durable in groups (group commit): new alerts before the alarm state
//! that knows of them is saved, delivery outcomes at least every
//! [`COMMIT_EVERY`] — an alert storm costs a few fsyncs, not two per
//! alert. A power cut can then repeat the deliveries of the last group
//! (with the same alert id, for the receiver to see), never lose an alert.
//! The journal is rewritten with only the live alerts when it has grown
//! past [`COMPACT_AT`] or holds none. Spools of one file per alert (as
//! earlier versions wrote) are read and folded in.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Alert;

/// Where one sink stands with one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not yet accepted; tried again at `next_try`.
    Pending,
    /// The sink took it.
    Accepted,
    /// Refused for good (HTTP 400, 409, gave up): never tried again.
    Dropped,
}

/// One sink's delivery of one alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Where it stands.
    pub outcome: Outcome,
    /// Attempts so far.
    pub attempts: u32,
    /// When to try next (Unix seconds).
    pub next_try: f64,
    /// What the last failed attempt said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// An alert and its deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The alert.
    pub alert: Alert,
    /// When it was spooled (Unix seconds).
    pub created: f64,
    /// By sink name.
    pub deliveries: BTreeMap<String, Delivery>,
}

impl Item {
    /// Whether every sink is done with it.
    pub fn done(&self) -> bool {
        self.deliveries
            .values()
            .all(|d| d.outcome != Outcome::Pending)
    }
}

/// Exponential back-off: `base`, doubling per failed attempt, at most `cap`.
pub fn backoff(attempts: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
    base.saturating_mul(factor).min(cap)
}

/// Delivery outcomes are made durable at least this often.
pub const COMMIT_EVERY: Duration = Duration::from_millis(100);

/// The journal is compacted when it grows past this many bytes.
pub const COMPACT_AT: u64 = 4 << 20;

/// The journal's file name in the spool directory.
pub const JOURNAL: &str = "journal.jsonl";

/// The spool: a directory (locked while this process uses it), or memory
/// only when there is no state to keep.
#[derive(Debug)]
pub struct Spool {
    dir: Option<PathBuf>,
    _lock: Option<nix::fcntl::Flock<fs::File>>,
    journal: Option<fs::File>,
    /// Bytes in the journal.
    journal_len: u64,
    /// Appended since the last fsync.
    unsynced: bool,
    /// The journal was created by this process: sync the directory once.
    new_name: bool,
    last_sync: Instant,
    /// One-file-per-alert files read at open, removed at the first compaction.
    legacy: Vec<PathBuf>,
    ids: HashSet<String>,
    /// Alerts not yet done, oldest first.
    pub items: Vec<Item>,
}

impl Spool {
    /// A spool kept in memory: nothing survives the process.
    pub fn in_memory() -> Spool {
        Spool {
            dir: None,
            _lock: None,
            journal: None,
            journal_len: 0,
            unsynced: false,
            new_name: false,
            last_sync: Instant::now(),
            legacy: Vec::new(),
            ids: HashSet::new(),
            items: Vec::new(),
        }
    }

    /// Open (and create, 0700) a spool directory, lock it, and load what is
    /// in it. Lines or files that cannot be read are reported (and kept
    /// aside as `journal.jsonl.corrupt-<unix time>` or `ID.corrupt`).
    pub fn open(dir: &Path) -> Result<(Spool, Vec<String>), String> {
        let say =
            |e: std::io::Error| format!("spool {}: {}", dir.display(), crate::files::io_words(&e));
        crate::files::create_dir_no_follow(dir).map_err(say)?;
        let lock = crate::state::lock_exclusive(&dir.join(".lock"))
            .map_err(|e| format!("spool {}: {e}", dir.display()))?;
        let mut by_id: BTreeMap<String, Item> = BTreeMap::new();
        let mut notes = Vec::new();
        // Earlier versions: one file per alert.
        let mut legacy: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(say)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        legacy.sort();
        for path in &legacy {
            match crate::files::read_bounded(path, crate::files::CONFIG_MAX)
                .and_then(|b| serde_json::from_slice::<Item>(&b).map_err(|e| e.to_string()))
            {
                Ok(item) => {
                    by_id.insert(item.alert.id.clone(), item);
                }
                Err(e) => {
                    let aside = path.with_extension("corrupt");
                    let _ = fs::rename(path, &aside);
                    notes.push(format!(
                        "spool file {} is unreadable ({e}); set aside as {}",
                        path.display(),
                        aside.display()
                    ));
                }
            }
        }
        legacy.retain(|p| p.exists());
        let path = dir.join(JOURNAL);
        let (bad, journal_len) = match crate::files::read_bounded_io(&path, crate::state::STATE_MAX)
        {
            Ok(bytes) => (replay(&bytes, &mut by_id), bytes.len() as u64),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), 0),
            Err(e) => {
                return Err(format!(
                    "spool {}: {}",
                    path.display(),
                    crate::files::io_words(&e)
                ))
            }
        };
        let mut compact_now = false;
        if !bad.is_empty() {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let aside = crate::state::sibling(&path, &format!(".corrupt-{stamp}"));
            let _ = fs::copy(&path, &aside);
            notes.push(format!(
                "spool journal {}: {}; the rest is read, a copy kept as {}",
                path.display(),
                bad.join("; "),
                aside.display()
            ));
            compact_now = true;
        }
        let existed = path.exists();
        let mut items: Vec<Item> = by_id.into_values().filter(|i| !i.done()).collect();
        items.sort_by(|a, b| a.created.total_cmp(&b.created));
        let journal = crate::files::open_no_follow(&path, true)
            .map_err(|e| format!("spool {}: {}", path.display(), crate::files::io_words(&e)))?;
        let mut spool = Spool {
            dir: Some(dir.to_path_buf()),
            _lock: Some(lock),
            journal: Some(journal),
            journal_len,
            unsynced: false,
            new_name: !existed,
            last_sync: Instant::now(),
            legacy,
            ids: items.iter().map(|i| i.alert.id.clone()).collect(),
            items,
        };
        if compact_now {
            spool.compact()?;
        }
        Ok((spool, notes))
    }

    /// Whether an alert with this id is spooled.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Append an item's current state to the journal. It survives `kill -9`
    /// at once and a power cut after the next [`Spool::commit`].
    pub fn persist(&mut self, item: &Item) -> Result<(), String> {
        if self.journal.is_none() {
            return Ok(());
        }
        let mut line = serde_json::to_vec(item).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.append(&line)
    }

    /// [`Spool::persist`] of the item at `idx` in [`Spool::items`].
    pub fn persist_at(&mut self, idx: usize) -> Result<(), String> {
        if self.journal.is_none() {
            return Ok(());
        }
        let Some(item) = self.items.get(idx) else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(item).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.append(&line)
    }

    fn append(&mut self, line: &[u8]) -> Result<(), String> {
        let Some(journal) = self.journal.as_mut() else {
            return Ok(());
        };
        if let Err(e) = journal.write_all(line) {
            let path = self.dir.as_deref().unwrap_or(Path::new(".")).join(JOURNAL);
            return Err(format!(
                "spool {}: {}",
                path.display(),
                crate::files::io_words(&e)
            ));
        }
        self.journal_len += line.len() as u64;
        self.unsynced = true;
        crate::state::drill_point();
        Ok(())
    }

    /// Spool a new alert: into the journal first, then in memory. Durable
    /// at the next [`Spool::commit`], which must come before the alarm
    /// state that knows of the alert is saved.
    pub fn add(&mut self, item: Item) -> Result<(), String> {
        self.persist(&item)?;
        self.ids.insert(item.alert.id.clone());
        self.items.push(item);
        Ok(())
    }

    /// Make every append so far durable (one fsync for all of them).
    pub fn commit(&mut self) -> Result<(), String> {
        if !self.unsynced {
            return Ok(());
        }
        if let Some(journal) = &self.journal {
            journal.sync_data().map_err(|e| {
                format!(
                    "spool {}: {}",
                    self.dir
                        .as_deref()
                        .unwrap_or(Path::new("."))
                        .join(JOURNAL)
                        .display(),
                    crate::files::io_words(&e)
                )
            })?;
            if self.new_name {
                // A new journal's name is durable only once the directory is.
                if let Some(d) = self.dir.as_ref().and_then(|d| fs::File::open(d).ok()) {
                    let _ = d.sync_all();
                }
                self.new_name = false;
            }
        }
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// [`Spool::commit`] when the last one is [`COMMIT_EVERY`] ago.
    pub fn commit_if_due(&mut self) -> Result<(), String> {
        if self.unsynced && self.last_sync.elapsed() >= COMMIT_EVERY {
            self.commit()
        } else {
            Ok(())
        }
    }

    /// Forget items every sink is done with (their last journal line says
    /// so), commit, and compact the journal when it is due.
    pub fn prune(&mut self) -> Result<(), String> {
        let ids = &mut self.ids;
        self.items.retain(|item| {
            let keep = !item.done();
            if !keep {
                ids.remove(&item.alert.id);
            }
            keep
        });
        self.commit()?;
        if self.journal.is_some()
            && (self.journal_len > COMPACT_AT
                || (self.items.is_empty() && self.journal_len > 0)
                || !self.legacy.is_empty())
        {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrite the journal with one line per live item (atomically), then
    /// remove the one-file-per-alert files it has taken in.
    fn compact(&mut self) -> Result<(), String> {
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        let path = dir.join(JOURNAL);
        let mut bytes = Vec::new();
        for item in &self.items {
            serde_json::to_writer(&mut bytes, item).map_err(|e| e.to_string())?;
            bytes.push(b'\n');
        }
        crate::state::write_atomic_mode(&path, &bytes, 0o600)
            .map_err(|e| format!("spool {}: {e}", path.display()))?;
        self.journal =
            Some(crate::files::open_no_follow(&path, true).map_err(|e| {
                format!("spool {}: {}", path.display(), crate::files::io_words(&e))
            })?);
        self.journal_len = bytes.len() as u64;
        self.unsynced = false;
        self.last_sync = Instant::now();
        let mut failed = None;
        for old in self.legacy.drain(..) {
            if let Err(e) = fs::remove_file(&old) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    failed = Some(format!("spool {}: {e}", old.display()));
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.commit();
    }
}

/// Apply journal lines to `by_id` (the last line of an id wins). Returns
/// what could not be read, by line; an unfinished last line (a cut-off
/// write) is among them.
fn replay(bytes: &[u8], by_id: &mut BTreeMap<String, Item>) -> Vec<String> {
    let mut bad = Vec::new();
    let mut lines = bytes.split(|b| *b == b'\n').enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let last = lines.peek().is_none();
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Item>(line) {
            Ok(item) => {
                by_id.insert(item.alert.id.clone(), item);
            }
            Err(e) if last => bad.push(format!("line {} is unfinished ({e}); skipped", n + 1)),
            Err(e) => bad.push(format!("line {} is unreadable ({e}); skipped", n + 1)),
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::alarm::{AlarmState, Kind};
    use crate::notify::Alert;

    fn item(id: &str, outcome: Outcome) -> Item {
        Item {
            alert: Alert {
                id: id.into(),
                key: format!("probe-http/mon1/{id}"),
                key_hash: "00".into(),
                kind: Kind::Firing,
                state: AlarmState::Critical,
                previous: AlarmState::Ok,
                at: "2026-12-06T00:00:00Z".into(),
                since: "2026-12-06T00:00:00Z".into(),
                check: "probe-http".into(),
                name: id.into(),
                target: String::new(),
                host: "mon1".into(),
                summary: String::new(),
                labels: BTreeMap::new(),
                record: None,
            },
            created: 1.0,
            deliveries: [(
                "webhook".to_string(),
                Delivery {
                    outcome,
                    attempts: 0,
                    next_try: 0.0,
                    last_error: None,
                },
            )]
            .into(),
        }
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("skyprobe-spool-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_last_line_of_an_id_wins_and_done_alerts_are_gone() {
        let d = dir("replay");
        {
            let (mut s, notes) = Spool::open(&d).expect("open");
            assert!(notes.is_empty());
            s.add(item("a", Outcome::Pending)).expect("add");
            s.add(item("b", Outcome::Pending)).expect("add");
            s.items[0].deliveries.get_mut("webhook").expect("d").outcome = Outcome::Accepted;
            s.persist_at(0).expect("persist");
            // Dropped without prune, as a kill would leave it.
            drop(s);
        }
        let (s, notes) = Spool::open(&d).expect("reopen");
        assert!(notes.is_empty(), "{notes:?}");
        let ids: Vec<&str> = s.items.iter().map(|i| i.alert.id.as_str()).collect();
        assert_eq!(ids, ["b"]);
        assert!(s.contains("b") && !s.contains("a"));
        drop(s);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_cut_off_last_line_is_skipped_and_said_and_the_rest_read() {
        let d = dir("torn");
        {
            let (mut s, _) = Spool::open(&d).expect("open");
            s.add(item("a", Outcome::Pending)).expect("add");
            s.commit().expect("commit");
        }
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(d.join(JOURNAL))
            .expect("journal");
        f.write_all(br#"{"alert":{"id":"b","#).expect("torn write");
        drop(f);
        let (s, notes) = Spool::open(&d).expect("reopen");
        assert_eq!(s.items.len(), 1);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("line 2 is unfinished"), "{notes:?}");
        drop(s);
        // Compacted at open: the next open is clean.
        let (s, notes) = Spool::open(&d).expect("reopen");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(s.items.len(), 1);
        drop(s);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn one_file_per_alert_spools_are_folded_into_the_journal() {
        let d = dir("legacy");
        fs::create_dir_all(&d).expect("dir");
        let old = item("old", Outcome::Pending);
        fs::write(d.join("old.json"), serde_json::to_vec(&old).expect("json")).expect("write");
        let (mut s, notes) = Spool::open(&d).expect("open");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(s.items.len(), 1);
        s.prune().expect("prune");
        assert!(!d.join("old.json").exists(), "folded in and removed");
        drop(s);
        let (s, _) = Spool::open(&d).expect("reopen");
        assert_eq!(s.items.len(), 1, "still spooled, now in the journal");
        drop(s);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn an_empty_spool_compacts_to_an_empty_journal() {
        let d = dir("compact");
        let (mut s, _) = Spool::open(&d).expect("open");
        s.add(item("a", Outcome::Pending)).expect("add");
        s.items[0].deliveries.get_mut("webhook").expect("d").outcome = Outcome::Accepted;
        s.persist_at(0).expect("persist");
        s.prune().expect("prune");
        assert!(s.items.is_empty());
        assert_eq!(fs::metadata(d.join(JOURNAL)).expect("journal").len(), 0);
        drop(s);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        let got: Vec<u64> = (1..=9).map(|n| backoff(n, base, cap).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(1000, base, cap), cap);
    }
}
