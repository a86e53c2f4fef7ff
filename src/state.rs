//! Files that must never be seen half-written: output files rewritten each
//! round (node_exporter's textfile collector) and `--state` files, which
//! are also read and written under an exclusive lock.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Write `bytes` to `path` atomically: a temporary file in the same
/// directory, fsync, rename over the target, fsync the directory. A reader
/// sees the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// [`write_atomic`] with the file's permission bits set from the start (a
/// token cache is created 0600, never readable by others even briefly).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        // A file left by a killed run of the same pid, or a link planted
        // under the name: removed (a link itself, never its target), then
        // created afresh, never opened through a link.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // The rename is durable only once the directory is synced.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    } else {
        sweep_stale_tmp(&dir, &file_name.to_string_lossy());
        drill_point();
    }
    result
}

/// Remove the temporary files of `name` that killed runs left behind
/// (`.NAME.tmp.PID` of a process that is gone), so `kill -9` in the middle
/// of writes does not pile them up next to the file.
fn sweep_stale_tmp(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp.");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid <= 0 || pid as u32 == std::process::id() {
            continue;
        }
        let gone = matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
        if gone {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The environment variable of the kill -9 drill.
pub const DRILL_ENV: &str = "SKYPROBE_DRILL_KILL_AFTER_WRITES";

/// The kill -9 drill: with `SKYPROBE_DRILL_KILL_AFTER_WRITES=N` a process
/// sends itself SIGKILL right after its N-th completed write point (atomic
/// writes of state files, journals and caches; appends to notify's spool),
/// so a drill can stop a run at each write point in turn and check that
/// the next run finishes the work with nothing lost and nothing done
/// twice. Unset (or not a number): nothing.
pub fn drill_point() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static LEFT: OnceLock<Option<AtomicU64>> = OnceLock::new();
    let left = LEFT.get_or_init(|| {
        std::env::var(DRILL_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|n| *n > 0)
            .map(AtomicU64::new)
    });
    if let Some(left) = left {
        if left.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// The most bytes of a state file read back (its own writes stay far below).
pub const STATE_MAX: u64 = 1 << 30;

/// A `--state` file held under an exclusive lock while a run uses it.
///
/// The lock is taken on `FILE.lock`, never on the state file itself: the
/// state file is replaced by rename, and a lock on a replaced inode would
/// let a second run read stale state.
#[derive(Debug)]
pub struct Locked<S> {
    path: PathBuf,
    _lock: nix::fcntl::Flock<fs::File>,
    /// The state as read (the default when the file did not exist).
    pub value: S,
    /// Set when an unreadable file was set aside: say so to the operator.
    pub warning: Option<String>,
}

impl<S: Serialize + DeserializeOwned + Default> Locked<S> {
    /// Lock and read `path`. A missing file is an empty state; a corrupt one
    /// is renamed to `FILE.corrupt-<unix time>` and reported, never silently
    /// reset.
    pub fn open(path: &Path) -> Result<Locked<S>, String> {
        let lock = lock_exclusive(&sibling(path, ".lock"))
            .map_err(|e| format!("--state {}: {e}", path.display()))?;
        Self::read_locked(path, lock)
    }

    /// [`Locked::open`], waiting for another run's lock only until `until`:
    /// `None` when it is still held then.
    pub fn open_until(path: &Path, until: std::time::Instant) -> Result<Option<Locked<S>>, String> {
        match lock_exclusive_until(&sibling(path, ".lock"), until)
            .map_err(|e| format!("--state {}: {e}", path.display()))?
        {
            Some(lock) => Self::read_locked(path, lock).map(Some),
            None => Ok(None),
        }
    }

    fn read_locked(path: &Path, lock: nix::fcntl::Flock<fs::File>) -> Result<Locked<S>, String> {
        let mut warning = None;
        let value = match crate::files::read_bounded_io(path, STATE_MAX) {
            Ok(bytes) => match serde_json::from_slice::<S>(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    let stamp = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    let aside = sibling(path, &format!(".corrupt-{stamp}"));
                    fs::rename(path, &aside).map_err(|re| {
                        format!(
                            "--state {}: unreadable ({e}) and cannot be set aside: {re}",
                            path.display()
                        )
                    })?;
                    warning = Some(format!(
                        "--state {}: unreadable ({e}); set aside as {} and started afresh",
                        path.display(),
                        aside.display()
                    ));
                    S::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => S::default(),
            Err(e) => {
                return Err(format!(
                    "--state {}: {}",
                    path.display(),
                    crate::files::io_words(&e)
                ))
            }
        };
        Ok(Locked {
            path: path.to_path_buf(),
            _lock: lock,
            value,
            warning,
        })
    }

    /// Write the state back atomically (the lock is still held).
    pub fn save(&self) -> Result<(), String> {
        let text = serde_json::to_vec_pretty(&self.value)
            .map_err(|e| format!("--state {}: cannot serialise: {e}", self.path.display()))?;
        write_atomic(&self.path, &text)
            .map_err(|e| format!("--state {}: cannot write: {e}", self.path.display()))
    }
}

/// Lock `path`, let `f` change the state, write it back. Returns what `f`
/// returned and notes for the operator: a corrupt file set aside, a write
/// that failed (the run's own records still stand).
pub fn update<S, R>(path: &Path, f: impl FnOnce(&mut S) -> R) -> Result<(R, Vec<String>), String>
where
    S: Serialize + DeserializeOwned + Default,
{
    let mut locked = Locked::<S>::open(path)?;
    let out = f(&mut locked.value);
    let mut notes: Vec<String> = locked.warning.take().into_iter().collect();
    if let Err(e) = locked.save() {
        notes.push(e);
    }
    Ok((out, notes))
}

/// A WARNING record about the state file itself (`"event":"state_file"`).
pub fn note_record(check: &str, path: &Path, note: String) -> crate::report::Record {
    let mut r = crate::report::Record::new(
        check,
        &path.display().to_string(),
        crate::report::Status::Warning,
        note,
    );
    r.event = Some("state_file".into());
    r
}

/// Take an exclusive lock on `lock_path` (created if missing), waiting for
/// whoever holds it; the lock lasts as long as the returned value.
pub fn lock_exclusive(lock_path: &Path) -> Result<nix::fcntl::Flock<fs::File>, String> {
    let file = crate::files::open_no_follow(lock_path, false).map_err(|e| {
        format!(
            "cannot open lock file {}: {}",
            lock_path.display(),
            crate::files::io_words(&e)
        )
    })?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("cannot lock {}: {e}", lock_path.display()))
}

/// The state as it is now, read without the lock (the file is only ever
/// replaced whole, so a reader sees one complete version): for a run that
/// works first and takes the lock only to merge. Missing or unreadable is
/// the default; the merge under the lock reports an unreadable file.
pub fn snapshot<S: DeserializeOwned + Default>(path: &Path) -> S {
    crate::files::read_bounded(path, STATE_MAX)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// [`lock_exclusive`], waiting only until `until` (at least one try):
/// `None` when another process still holds the lock then.
pub fn lock_exclusive_until(
    lock_path: &Path,
    until: std::time::Instant,
) -> Result<Option<nix::fcntl::Flock<fs::File>>, String> {
    let mut file = crate::files::open_no_follow(lock_path, false).map_err(|e| {
        format!(
            "cannot open lock file {}: {}",
            lock_path.display(),
            crate::files::io_words(&e)
        )
    })?;
    loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Some(lock)),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
                let now = std::time::Instant::now();
                if now >= until {
                    return Ok(None);
                }
                file = f;
                std::thread::sleep((until - now).min(std::time::Duration::from_millis(5)));
            }
            Err((_, e)) => return Err(format!("cannot lock {}: {e}", lock_path.display())),
        }
    }
}

/// [`update`] for a check whose work yields records: the records, with a
/// note for each state-file problem, or one UNKNOWN record when the state
/// cannot be had at all.
pub fn update_records<S>(
    check: &str,
    path: &Path,
    f: impl FnOnce(&mut S) -> Vec<crate::report::Record>,
) -> Vec<crate::report::Record>
where
    S: Serialize + DeserializeOwned + Default,
{
    update_records_emitting(check, path, f, |records| records)
}

/// [`update_records`], handing `f`'s records to `emit` before the state is
/// saved (a streaming run prints them there): a record of something the
/// saved state no longer shows as new — a change, an event — is out before
/// the state that hides it is, so `kill -9` between the two can repeat it
/// in the next run but never lose it. Returns what `emit` kept back and
/// notes about the state file.
pub fn update_records_emitting<S>(
    check: &str,
    path: &Path,
    f: impl FnOnce(&mut S) -> Vec<crate::report::Record>,
    emit: impl FnOnce(Vec<crate::report::Record>) -> Vec<crate::report::Record>,
) -> Vec<crate::report::Record>
where
    S: Serialize + DeserializeOwned + Default,
{
    // `emit` runs once: with `f`'s records, or with none when the state
    // could not be opened (what it closes over is printed all the same).
    let mut emit = Some(emit);
    let result = update(path, |state| {
        let records = f(state);
        match emit.take() {
            Some(e) => e(records),
            None => records,
        }
    });
    match result {
        Err(msg) => {
            let mut out = emit.take().map(|e| e(Vec::new())).unwrap_or_default();
            out.push(crate::report::Record::new(
                check,
                &path.display().to_string(),
                crate::report::Status::Unknown,
                msg,
            ));
            out
        }
        Ok((mut records, notes)) => {
            records.extend(notes.into_iter().map(|n| note_record(check, path, n)));
            records
        }
    }
}

/// FNV-1a, 64 bits: a hash that is the same in every run (unlike the
/// standard library's), for file names and ids. Not for secrets.
pub fn fnv(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `path` with `suffix` added to its file name (`state.json` + `.lock`).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_of_killed_writers_are_swept_and_a_live_ones_kept() {
        let dir = std::env::temp_dir().join(format!("skyprobe-sweep-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let mut gone = std::process::Command::new("true").spawn().expect("true");
        let gone_pid = gone.id();
        gone.wait().expect("reap");
        let stale = dir.join(format!(".s.json.tmp.{gone_pid}"));
        let live = dir.join(".s.json.tmp.1");
        let other = dir.join(format!(".t.json.tmp.{gone_pid}"));
        for f in [&stale, &live, &other] {
            fs::write(f, b"half").expect("write");
        }
        write_atomic(&dir.join("s.json"), b"{}").expect("write_atomic");
        assert!(!stale.exists(), "a killed writer's file is swept");
        assert!(live.exists(), "a running process's file is left alone");
        assert!(other.exists(), "another file's temporaries are not touched");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn locked_state_round_trips_and_sets_corrupt_files_aside() {
        let dir = std::env::temp_dir().join(format!("skyprobe-locked-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("state.json");
        {
            let mut s: Locked<std::collections::BTreeMap<String, u32>> =
                Locked::open(&path).expect("open");
            assert!(s.value.is_empty() && s.warning.is_none());
            s.value.insert("a".into(), 1);
            s.save().expect("save");
        }
        let s: Locked<std::collections::BTreeMap<String, u32>> = Locked::open(&path).expect("open");
        assert_eq!(s.value.get("a"), Some(&1));
        drop(s);
        fs::write(&path, b"{not json").expect("corrupt it");
        let s: Locked<std::collections::BTreeMap<String, u32>> = Locked::open(&path).expect("open");
        assert!(s.value.is_empty());
        let warning = s.warning.clone().expect("warned");
        assert!(warning.contains("set aside"), "{warning}");
        let aside = fs::read_dir(&dir)
            .expect("ls")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
        assert!(aside, "the corrupt file is kept");
        drop(s);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("skyprobe-state-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let target = dir.join("out.prom");
        write_atomic(&target, b"first\n").expect("write");
        write_atomic(&target, b"second\n").expect("write");
        assert_eq!(fs::read_to_string(&target).expect("read"), "second\n");
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
