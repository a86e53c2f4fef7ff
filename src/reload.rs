//! Files named on the command line (a targets file, a process list) read
//! again at the start of a round when they changed: a service running with
//! `--every` follows an edited file without a restart, and a broken edit
//! keeps the last good contents and says why, every round, until it is
//! fixed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::report::{Record, Status};

/// What tells that a file changed: modification time, size and identity
/// (an editor that saves by renaming makes a new inode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    dev: u64,
    ino: u64,
}

impl Stamp {
    /// The file's stamp now; `None` when it cannot be read.
    pub fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            modified: m.modified().ok(),
            len: m.len(),
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// A value read from a file, and what is needed to tell when to read it again.
#[derive(Debug)]
pub struct Reloading<T> {
    path: PathBuf,
    inner: Mutex<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T> {
    stamp: Option<Stamp>,
    value: Arc<T>,
    /// Why the last reading failed (the value is then the one before).
    error: Option<String>,
}

impl<T> Reloading<T> {
    /// `value` as read from `path`, with the stamp taken before reading it
    /// (a change made while it was read is seen next round).
    pub fn new(path: &Path, stamp: Option<Stamp>, value: T) -> Reloading<T> {
        Reloading {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                stamp,
                value: Arc::new(value),
                error: None,
            }),
        }
    }

    /// The file this value comes from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value in use, without looking at the file.
    pub fn value(&self) -> Arc<T> {
        Arc::clone(&self.inner.lock().unwrap_or_else(|p| p.into_inner()).value)
    }

    /// The value to use this round: read again with `load` when the file
    /// changed. A failed reading keeps the last good value and is returned
    /// as an error every round until the file changes again.
    pub fn current<E: std::fmt::Display>(&self, load: impl FnOnce() -> Result<T, E>) -> Round<T> {
        let now = Stamp::of(&self.path);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut recovered = false;
        if now != inner.stamp {
            inner.stamp = now;
            match load() {
                Ok(v) => {
                    inner.value = Arc::new(v);
                    recovered = inner.error.take().is_some();
                }
                Err(e) => inner.error = Some(e.to_string()),
            }
        }
        Round {
            value: Arc::clone(&inner.value),
            error: inner.error.clone(),
            recovered,
        }
    }

    /// The record for the file this round, if there is something to say:
    /// UNKNOWN while a changed file cannot be used (naming the error and
    /// what is used instead, `what` being e.g. "targets"), then OK once it
    /// can again, so an alert raised on it (`notify`) resolves.
    pub fn record(
        &self,
        check: &str,
        round: &Round<T>,
        count: usize,
        what: &str,
    ) -> Option<Record> {
        let path = self.path.display().to_string();
        let (status, summary) = match (&round.error, round.recovered) {
            (Some(e), _) => (
                Status::Unknown,
                format!("{path} changed and cannot be used: {e}; still using the {count} {what} read before"),
            ),
            (None, true) => (Status::Ok, format!("{path} read again: {count} {what}")),
            (None, false) => return None,
        };
        let mut r = Record::new(check, &path, status, summary);
        r.name = path;
        Some(r)
    }
}

/// What a round gets from [`Reloading::current`].
#[derive(Debug)]
pub struct Round<T> {
    /// The value to use.
    pub value: Arc<T>,
    /// Why the file as it is now cannot be used.
    pub error: Option<String>,
    /// The file was unusable and is usable again as of this round.
    pub recovered: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &Path) -> Result<Vec<String>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        if text.contains("broken") {
            return Err("line 1: broken".to_string());
        }
        Ok(text.lines().map(str::to_string).collect())
    }

    #[test]
    fn reads_again_only_when_changed_and_keeps_the_last_good_value() {
        let dir = std::env::temp_dir().join(format!("skyprobe-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("list");
        std::fs::write(&path, "a\nb\n").expect("write");
        let stamp = Stamp::of(&path);
        let r = Reloading::new(&path, stamp, parse(&path).expect("parses"));

        let mut reads = 0;
        let round = r.current(|| {
            reads += 1;
            parse(&path)
        });
        assert_eq!(
            (round.value.len(), round.error, reads),
            (2, None, 0),
            "unchanged: not read"
        );

        // Saved by renaming, as editors do: a new inode.
        let tmp = dir.join("list.tmp");
        std::fs::write(&tmp, "a\nb\nc\n").expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
        let round = r.current(|| parse(&path));
        assert_eq!((round.value.len(), round.error), (3, None));

        std::fs::write(&tmp, "broken\n").expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
        let round = r.current(|| parse(&path));
        assert_eq!(
            (round.value.len(), round.error.as_deref()),
            (3, Some("line 1: broken"))
        );
        let said = r.record("t", &round, 3, "lines").expect("a record");
        assert_eq!(said.status, Status::Unknown);
        assert!(said
            .summary
            .ends_with("line 1: broken; still using the 3 lines read before"));
        // Still broken, not read again, still said.
        let round = r.current(|| -> Result<Vec<String>, String> { panic!("not read again") });
        assert_eq!(
            (round.value.len(), round.error.as_deref()),
            (3, Some("line 1: broken"))
        );

        std::fs::remove_file(&path).expect("rm");
        let round = r.current(|| parse(&path));
        assert_eq!(round.value.len(), 3);
        assert!(round.error.is_some_and(|e| e.contains("No such file")));

        std::fs::write(&path, "z\n").expect("write");
        let round = r.current(|| parse(&path));
        assert_eq!(
            (round.value.as_slice(), &round.error),
            (["z".to_string()].as_slice(), &None)
        );
        assert!(round.recovered);
        let said = r.record("t", &round, 1, "lines").expect("a record");
        assert_eq!(
            (said.status, said.summary.ends_with("read again: 1 lines")),
            (Status::Ok, true)
        );
        let round = r.current(|| parse(&path));
        assert!(!round.recovered && r.record("t", &round, 1, "lines").is_none());
        std::fs::remove_dir_all(&dir).expect("rm");
    }
}
