//! The spool: every alert is written here before any sink is tried, with
//! each routed sink's delivery state, and removed only when every sink
//! has accepted it or refused it for good. One file per alert, replaced
//! atomically after every attempt, so `kill -9` at any moment loses
//! nothing and a sink that accepted an alert is not sent it again.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// The spool: a directory (locked while this process uses it), or memory
/// only when there is no state to keep.
#[derive(Debug)]
pub struct Spool {
    dir: Option<PathBuf>,
    _lock: Option<nix::fcntl::Flock<fs::File>>,
    /// Alerts not yet done, oldest first.
    pub items: Vec<Item>,
}

impl Spool {
    /// A spool kept in memory: nothing survives the process.
    pub fn in_memory() -> Spool {
        Spool {
            dir: None,
            _lock: None,
            items: Vec::new(),
        }
    }

    /// Open (and create, 0700) a spool directory, lock it, and load what is
    /// in it. Files that cannot be read are set aside and reported.
    pub fn open(dir: &Path) -> Result<(Spool, Vec<String>), String> {
        let say =
            |e: std::io::Error| format!("spool {}: {}", dir.display(), crate::files::io_words(&e));
        crate::files::create_dir_no_follow(dir).map_err(say)?;
        let lock = crate::state::lock_exclusive(&dir.join(".lock"))
            .map_err(|e| format!("spool {}: {e}", dir.display()))?;
        let mut items = Vec::new();
        let mut notes = Vec::new();
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(say)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        for path in names {
            match crate::files::read_bounded(&path, crate::files::CONFIG_MAX)
                .and_then(|b| serde_json::from_slice::<Item>(&b).map_err(|e| e.to_string()))
            {
                Ok(item) => items.push(item),
                Err(e) => {
                    let aside = path.with_extension("corrupt");
                    let _ = fs::rename(&path, &aside);
                    notes.push(format!(
                        "spool file {} is unreadable ({e}); set aside as {}",
                        path.display(),
                        aside.display()
                    ));
                }
            }
        }
        items.sort_by(|a, b| a.created.total_cmp(&b.created));
        Ok((
            Spool {
                dir: Some(dir.to_path_buf()),
                _lock: Some(lock),
                items,
            },
            notes,
        ))
    }

    fn path(&self, item: &Item) -> Option<PathBuf> {
        // Ids are hex and digits: safe as file names.
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{}.json", item.alert.id)))
    }

    /// Whether an alert with this id is spooled.
    pub fn contains(&self, id: &str) -> bool {
        self.items.iter().any(|i| i.alert.id == id)
    }

    /// Write an item's file (durably) without adding it.
    pub fn persist(&self, item: &Item) -> Result<(), String> {
        let Some(path) = self.path(item) else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(item).map_err(|e| e.to_string())?;
        crate::state::write_atomic_mode(&path, &bytes, 0o600)
            .map_err(|e| format!("spool {}: {e}", path.display()))
    }

    /// Spool a new alert: on disk first, then in memory.
    pub fn add(&mut self, item: Item) -> Result<(), String> {
        self.persist(&item)?;
        self.items.push(item);
        Ok(())
    }

    /// Forget items every sink is done with, and their files.
    pub fn prune(&mut self) -> Result<(), String> {
        let mut result = Ok(());
        let dir = self.dir.clone();
        self.items.retain(|item| {
            if !item.done() {
                return true;
            }
            if let Some(d) = &dir {
                let path = d.join(format!("{}.json", item.alert.id));
                if let Err(e) = fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        result = Err(format!("spool {}: {e}", path.display()));
                    }
                }
            }
            false
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        let got: Vec<u64> = (1..=9).map(|n| backoff(n, base, cap).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(1000, base, cap), cap);
    }
}
