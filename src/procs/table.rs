//! The process table, read from /proc directly: no `ps` to fork, no text to
//! substring-match. Only the files a filter needs are read, and a large
//! table is read by a few threads at once (each /proc read costs the
//! kernel microseconds; BENCHMARKS.md has the figures).

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One process as the table saw it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Proc {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// Command name (`comm`, at most 15 bytes, as `ps -o comm` and `pgrep`).
    pub comm: String,
    /// State letter: R, S, D, Z, T, t, I, X.
    pub state: char,
    /// Kernel thread (PF_KTHREAD).
    pub kernel_thread: bool,
    /// Virtual size, bytes.
    pub vsize: u64,
    /// Resident set size, bytes.
    pub rss: u64,
    /// CPU time used (user + system).
    pub cpu_time: Duration,
    /// Time since the process started.
    pub elapsed: Duration,
    /// Owner (effective uid), when asked for.
    pub uid: Option<u32>,
    /// Arguments, when asked for (empty for kernel threads and zombies).
    pub cmdline: Option<Vec<String>>,
    /// Executable path, when asked for and readable.
    pub exe: Option<PathBuf>,
}

impl Proc {
    /// Percent CPU over the process's life, as `ps -o pcpu`.
    pub fn cpu_percent(&self) -> f64 {
        let elapsed = self.elapsed.as_secs_f64();
        if elapsed <= 0.0 {
            0.0
        } else {
            self.cpu_time.as_secs_f64() / elapsed * 100.0
        }
    }

    /// The command line joined with spaces (empty when not read).
    pub fn args_text(&self) -> String {
        self.cmdline
            .as_ref()
            .map(|a| a.join(" "))
            .unwrap_or_default()
    }
}

/// Which optional parts of each process to read.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Need {
    /// The owner.
    pub uid: bool,
    /// The arguments.
    pub cmdline: bool,
    /// The executable path.
    pub exe: bool,
}

/// Where processes come from: /proc, or a fixed list in tests.
pub trait ProcSource: Send + Sync {
    /// All processes now. A process that exits while being read is skipped.
    fn snapshot(&self, need: Need) -> Vec<Proc>;
}

/// The real table under `/proc`.
#[derive(Debug, Clone)]
pub struct LinuxProcs {
    root: PathBuf,
    clock_ticks: f64,
    page_size: u64,
}

impl Default for LinuxProcs {
    fn default() -> Self {
        LinuxProcs::new("/proc")
    }
}

impl LinuxProcs {
    /// A table rooted at `root` (normally `/proc`).
    pub fn new(root: impl Into<PathBuf>) -> LinuxProcs {
        use nix::unistd::{sysconf, SysconfVar};
        let ticks = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100);
        let page = sysconf(SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .unwrap_or(4096);
        LinuxProcs {
            root: root.into(),
            clock_ticks: ticks as f64,
            page_size: page as u64,
        }
    }

    fn uptime(&self) -> Duration {
        std::fs::read_to_string(self.root.join("uptime"))
            .ok()
            .and_then(|t| {
                t.split_whitespace()
                    .next()
                    .and_then(|s| s.parse::<f64>().ok())
            })
            .map(Duration::from_secs_f64)
            .unwrap_or_default()
    }

    fn read_one(&self, pid: i32, need: Need, uptime: Duration, buf: &mut Vec<u8>) -> Option<Proc> {
        let dir = self.root.join(pid.to_string());
        buf.clear();
        std::fs::File::open(dir.join("stat"))
            .ok()?
            .read_to_end(buf)
            .ok()?;
        let mut p = parse_stat(buf, self.clock_ticks, self.page_size)?;
        p.elapsed = uptime.saturating_sub(p.elapsed);
        if need.uid {
            p.uid = Some(std::fs::metadata(&dir).ok()?.uid());
        }
        if need.cmdline {
            buf.clear();
            std::fs::File::open(dir.join("cmdline"))
                .ok()?
                .read_to_end(buf)
                .ok()?;
            p.cmdline = Some(split_cmdline(buf));
        }
        if need.exe {
            p.exe = std::fs::read_link(dir.join("exe")).ok();
        }
        Some(p)
    }
}

/// Parse `/proc/PID/stat`. The command name sits in parentheses and may
/// itself contain spaces and parentheses, so fields are counted from the
/// last `)`. `elapsed` is returned as the start time since boot.
pub fn parse_stat(raw: &[u8], clock_ticks: f64, page_size: u64) -> Option<Proc> {
    let text = std::str::from_utf8(raw).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid: i32 = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let field = |n: usize| -> Option<u64> { rest.get(n - 3)?.parse().ok() };
    const PF_KTHREAD: u64 = 0x0020_0000;
    let ticks = |n: u64| Duration::from_secs_f64(n as f64 / clock_ticks);
    Some(Proc {
        pid,
        ppid: rest.get(1)?.parse().ok()?,
        comm,
        state: rest.first()?.chars().next()?,
        kernel_thread: field(9)? & PF_KTHREAD != 0,
        cpu_time: ticks(field(14)? + field(15)?),
        elapsed: ticks(field(22)?),
        vsize: field(23)?,
        rss: field(24)?.saturating_mul(page_size),
        uid: None,
        cmdline: None,
        exe: None,
    })
}

fn split_cmdline(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

impl ProcSource for LinuxProcs {
    fn snapshot(&self, need: Need) -> Vec<Proc> {
        let pids: Vec<i32> = match std::fs::read_dir(&self.root) {
            Ok(dir) => dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .collect(),
            Err(_) => return Vec::new(),
        };
        let uptime = self.uptime();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4);
        // Below a few hundred processes a second thread costs more than it saves.
        if threads < 2 || pids.len() < 256 {
            let mut buf = Vec::with_capacity(1024);
            return pids
                .iter()
                .filter_map(|pid| self.read_one(*pid, need, uptime, &mut buf))
                .collect();
        }
        let chunk = pids.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = pids
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        let mut buf = Vec::with_capacity(1024);
                        part.iter()
                            .filter_map(|pid| self.read_one(*pid, need, uptime, &mut buf))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }
}

/// A fixed list of processes, for tests of the logic above the table.
#[derive(Debug, Clone, Default)]
pub struct FixedProcs(pub Vec<Proc>);

impl ProcSource for FixedProcs {
    fn snapshot(&self, _need: Need) -> Vec<Proc> {
        self.0.clone()
    }
}

/// Whether `path` names the same file as `exe` (symlinks resolved).
pub fn same_file(exe: &Path, path: &Path) -> bool {
    exe == path
        || std::fs::canonicalize(path)
            .map(|p| p == exe)
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parentheses_and_spaces_in_the_name() {
        let raw = b"4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1000 10485760 256 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let p = parse_stat(raw, 100.0, 4096).expect("parses");
        assert_eq!(p.pid, 4242);
        assert_eq!(p.comm, "my (odd) proc");
        assert_eq!(p.state, 'S');
        assert_eq!(p.ppid, 1);
        assert!(!p.kernel_thread);
        assert_eq!(p.cpu_time, Duration::from_secs(3));
        assert_eq!(p.elapsed, Duration::from_secs(10));
        assert_eq!(p.vsize, 10_485_760);
        assert_eq!(p.rss, 256 * 4096);
    }

    #[test]
    fn kernel_threads_are_flagged() {
        let raw = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 0 0 0 0\n";
        assert!(parse_stat(raw, 100.0, 4096).expect("parses").kernel_thread);
    }

    #[test]
    fn truncated_stat_is_skipped_not_a_panic() {
        for raw in [&b""[..], b"12 (x", b"12 (x) S", b"x (y) S 1 2"] {
            assert!(parse_stat(raw, 100.0, 4096).is_none());
        }
    }

    #[test]
    fn cmdline_splits_on_nul() {
        assert_eq!(split_cmdline(b"sleep\x00100\x00"), ["sleep", "100"]);
        assert!(split_cmdline(b"").is_empty());
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id() as i32;
        let all = LinuxProcs::default().snapshot(Need {
            uid: true,
            cmdline: true,
            exe: true,
        });
        let p = all.iter().find(|p| p.pid == me).expect("finds itself");
        assert!(p.cmdline.as_ref().is_some_and(|c| !c.is_empty()));
        assert!(p.exe.is_some());
        assert!(p.uid.is_some());
    }
}
