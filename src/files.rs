//! Reading the files an operator names and writing the files a run keeps,
//! safely: only regular files are read as configuration, targets, CA,
//! key or secret files, and never more than a stated size (a FIFO would
//! block forever, `/dev/zero` would eat the machine's memory); the files
//! kept next to a state file (lock, history, spool) are opened without
//! following a symbolic link, so a link planted there cannot make a run
//! as root write through it.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The most bytes read from a configuration file (clouds.yaml, notify's
/// configuration, a process list, a CA bundle, a client key).
pub const CONFIG_MAX: u64 = 16 << 20;

/// The most bytes read from a targets file (TOML, CSV, Skypunch's SQL):
/// about 1.5 million targets of a typical size.
pub const TARGETS_MAX: u64 = 256 << 20;

/// The most bytes read from a file that holds one secret or one body.
pub const SECRET_MAX: u64 = 1 << 20;

/// The most bytes of a history file `notify history` reads.
pub const HISTORY_MAX: u64 = 1 << 30;

/// What kind of thing a path is, in words, for an error message.
fn kind_of(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn size_words(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// Read a file the operator named: it must be a regular file (a symbolic
/// link to one is fine) of at most `max` bytes. The error says why, without
/// the path (the caller puts its flag and path in front).
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    read_bounded_io(path, max).map_err(|e| io_words(&e))
}

/// [`read_bounded`] keeping the I/O error, for callers to whom a missing
/// file means something (an empty state).
pub fn read_bounded_io(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer forever, before any check could refuse it.
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::other(format!(
            "{}; only a regular file is read",
            kind_of(meta.file_type())
        )));
    }
    let too_big = || {
        std::io::Error::other(format!(
            "larger than {}; refusing to read it (is it the right file?)",
            size_words(max)
        ))
    };
    if meta.len() > max {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow while it is read: never past the bound.
    file.by_ref().take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big());
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_text(path: &Path, max: u64) -> Result<String, String> {
    let bytes = read_bounded(path, max)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        format!("not UTF-8 text (an invalid byte at offset {at})")
    })
}

/// The first line of a file that holds one secret (a password, a token),
/// without its line end (`\n` or `\r\n`) or surrounding blanks. An empty
/// first line is an error.
pub fn read_secret_line(path: &Path) -> Result<String, String> {
    let text = read_text(path, SECRET_MAX)?;
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        return Err("the file's first line is empty".to_string());
    }
    Ok(line)
}

/// An I/O error in words: the standard library's, without its "(os error N)".
pub fn io_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Open a file kept next to the state (a lock, a history) for writing,
/// created 0600 if missing, never through a symbolic link: a link there
/// is refused with an error that says so.
pub fn open_no_follow(path: &Path, append: bool) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options
        .create(true)
        .mode(0o600)
        // O_NONBLOCK: a FIFO planted under the name fails at once (no
        // reader) instead of blocking the run; regular files do not mind.
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(false);
    }
    let file = options.open(path).map_err(|e| no_follow_error(path, e))?;
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(file)
}

/// ELOOP from O_NOFOLLOW, said as what it means.
pub fn no_follow_error(path: &Path, e: std::io::Error) -> std::io::Error {
    if e.raw_os_error() == Some(nix::libc::ELOOP) {
        std::io::Error::other(format!(
            "{} is a symbolic link; refusing to write through it (remove it)",
            path.display()
        ))
    } else {
        e
    }
}

/// Create a directory kept next to the state (a spool), 0700, and make sure
/// what is there is a real directory, not a symbolic link to one.
pub fn create_dir_no_follow(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(std::io::Error::other(format!(
                "{} is a symbolic link; refusing to write through it (remove it)",
                dir.display()
            )))
        }
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(meta) => {
            return Err(std::io::Error::other(format!(
                "{} is {}, not a directory",
                dir.display(),
                kind_of(meta.file_type())
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        // Made by another run in the meantime: check it the same way.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(dir)?;
            if meta.is_dir() {
                Ok(())
            } else {
                Err(std::io::Error::other(format!(
                    "{} is not a directory",
                    dir.display()
                )))
            }
        }
        Err(e) => Err(e),
    }
}

/// A TOML error in one line: `line N: message` (N from the error's span).
pub fn toml_words(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().replace('\n', " ");
    match e.span() {
        Some(s) => format!(
            "line {}: {msg}",
            text[..s.start.min(text.len())].matches('\n').count() + 1
        ),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("skyprobe-files-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = scratch("kinds");
        let e = read_bounded(Path::new("/dev/zero"), CONFIG_MAX).expect_err("a device");
        assert!(e.contains("character device"), "{e}");
        let e = read_bounded(&dir, CONFIG_MAX).expect_err("a directory");
        assert!(e.contains("a directory"), "{e}");
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        // Returns at once (it would block forever without O_NONBLOCK).
        let e = read_bounded(&fifo, CONFIG_MAX).expect_err("a FIFO");
        assert!(e.contains("FIFO"), "{e}");
        let e = read_bounded(&dir.join("missing"), CONFIG_MAX).expect_err("missing");
        assert_eq!(e, "No such file or directory");
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn files_past_the_bound_are_refused() {
        let dir = scratch("bound");
        let f = dir.join("big");
        fs::write(&f, vec![b'x'; 2048]).expect("write");
        let e = read_bounded(&f, 1024).expect_err("too big");
        assert!(e.contains("larger than 1024 bytes"), "{e}");
        assert_eq!(read_bounded(&f, 2048).expect("fits").len(), 2048);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn secret_lines_lose_their_carriage_return() {
        let dir = scratch("secret");
        let f = dir.join("token");
        fs::write(&f, "s3cret\r\nsecond line\n").expect("write");
        assert_eq!(read_secret_line(&f).expect("read"), "s3cret");
        fs::write(&f, "\n").expect("write");
        assert!(read_secret_line(&f).is_err());
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn links_next_to_the_state_are_not_followed() {
        let dir = scratch("links");
        let victim = dir.join("victim");
        fs::write(&victim, "keep\n").expect("write");
        let link = dir.join("state.history.jsonl");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        let e = open_no_follow(&link, true).expect_err("a link");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(fs::read_to_string(&victim).expect("read"), "keep\n");
        let target_dir = dir.join("elsewhere");
        fs::create_dir(&target_dir).expect("mkdir");
        let spool = dir.join("state.spool");
        std::os::unix::fs::symlink(&target_dir, &spool).expect("symlink");
        let e = create_dir_no_follow(&spool).expect_err("a link");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        create_dir_no_follow(&dir.join("real.spool")).expect("a new directory");
        create_dir_no_follow(&dir.join("real.spool")).expect("an existing one");
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
