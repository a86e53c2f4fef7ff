//! Files that must never be seen half-written: output files rewritten each
//! round (node_exporter's textfile collector) and, later, state files.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` atomically: a temporary file in the same
/// directory, fsync, rename over the target, fsync the directory. A reader
/// sees the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
        let mut f = fs::File::create(&tmp)?;
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
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

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
