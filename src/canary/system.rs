//! What a canary says of its own machine: CPU, memory, disk and load from
//! /proc, judged as Nagios ranges (the OpenStack Canary's defaults: CPU
//! 70/90 %, memory 80/95 %, disk 85/95 %, load 5/10), and the cgroup's CPU
//! throttling — an impaired observer's reports can then be discounted.

use std::path::Path;

use serde_json::{json, Value};

use crate::report::Status;
use crate::threshold::Thresholds;

/// CPU time counters from the first line of /proc/stat: (busy, total) jiffies.
pub fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    if fields.len() < 4 {
        return None;
    }
    let total: u64 = fields.iter().take(8).sum();
    // idle and iowait are not busy.
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// CPU use in percent between two /proc/stat readings.
pub fn cpu_percent(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let total = after.1.checked_sub(before.1)?;
    let busy = after.0.checked_sub(before.0)?;
    (total > 0).then(|| busy as f64 * 100.0 / total as f64)
}

/// Memory in use, percent of MemTotal, from /proc/meminfo (MemAvailable).
pub fn memory_percent(meminfo: &str) -> Option<f64> {
    let field = |name: &str| -> Option<f64> {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:")?;
    (total > 0.0).then(|| (total - available) * 100.0 / total)
}

/// The one-minute load average from /proc/loadavg.
pub fn load1(loadavg: &str) -> Option<f64> {
    loadavg.split_whitespace().next()?.parse().ok()
}

/// Disk in use at `path`, percent (as df counts it: of the blocks a user may have).
pub fn disk_percent(path: &Path) -> Option<f64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let frsize = s.fragment_size() as f64;
    let total = s.blocks() as f64 * frsize;
    let free = s.blocks_free() as f64 * frsize;
    let avail = s.blocks_available() as f64 * frsize;
    let used = total - free;
    let usable = used + avail;
    (usable > 0.0).then(|| used * 100.0 / usable)
}

/// Throttling of this cgroup's CPU (cgroup v2 cpu.stat): periods
/// throttled and time throttled in seconds.
pub fn throttling(cpu_stat: &str) -> Option<(u64, f64)> {
    let field = |name: &str| -> Option<u64> {
        cpu_stat
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    let periods = field("nr_throttled ")?;
    let usec = field("throttled_usec ").unwrap_or(0);
    Some((periods, usec as f64 / 1e6))
}

/// The limits a canary judges its machine by.
#[derive(Debug, Clone)]
pub struct Limits {
    /// CPU use, %.
    pub cpu: Thresholds,
    /// Memory use, %.
    pub memory: Thresholds,
    /// Disk use, %.
    pub disk: Thresholds,
    /// One-minute load.
    pub load: Thresholds,
}

/// `WARN,CRIT` as two Nagios ranges.
pub fn parse_pair(text: &str) -> Result<Thresholds, String> {
    let (w, c) = text
        .split_once(',')
        .ok_or_else(|| format!("{text:?} is not WARN,CRIT (e.g. 70,90)"))?;
    Thresholds::parse(Some(w.trim()), Some(c.trim())).map_err(|e| format!("{text:?}: {e}"))
}

/// One reading of the machine.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// CPU use since the previous reading, %.
    pub cpu: Option<f64>,
    /// Memory use, %.
    pub memory: Option<f64>,
    /// Disk use, %.
    pub disk: Option<f64>,
    /// One-minute load.
    pub load: Option<f64>,
    /// cgroup CPU throttling: periods and seconds.
    pub throttled: Option<(u64, f64)>,
}

/// Read the machine now; `cpu_before` is the previous /proc/stat counters.
pub fn read(disk: &Path, cpu_before: Option<(u64, u64)>) -> (Reading, Option<(u64, u64)>) {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let now = cpu_times(&read("/proc/stat"));
    let reading = Reading {
        cpu: match (cpu_before, now) {
            (Some(b), Some(a)) => cpu_percent(b, a),
            _ => None,
        },
        memory: memory_percent(&read("/proc/meminfo")),
        disk: disk_percent(disk),
        load: load1(&read("/proc/loadavg")),
        throttled: throttling(&read("/sys/fs/cgroup/cpu.stat")),
    };
    (reading, now)
}

/// The reading judged against `limits`: the worst state and a JSON object
/// with each figure, its state and its limits.
pub fn judge(reading: &Reading, limits: &Limits) -> (Status, Value) {
    let mut worst = Status::Ok;
    let mut out = serde_json::Map::new();
    for (name, value, t) in [
        ("cpu", reading.cpu, &limits.cpu),
        ("memory", reading.memory, &limits.memory),
        ("disk", reading.disk, &limits.disk),
        ("load", reading.load, &limits.load),
    ] {
        let (warn, crit) = t.texts();
        let entry = match value {
            Some(v) => {
                let s = t.status(v);
                worst = worst.max(s);
                json!({"value": (v * 100.0).round() / 100.0, "status": s, "warn": warn, "crit": crit})
            }
            None => json!({"value": null, "status": "unknown", "warn": warn, "crit": crit}),
        };
        out.insert(name.to_string(), entry);
    }
    if let Some((periods, secs)) = reading.throttled {
        out.insert(
            "cpu_throttled".into(),
            json!({"periods": periods, "seconds": secs}),
        );
    }
    (worst, Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read() {
        let a = cpu_times("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n").expect("cpu");
        let b = cpu_times("cpu  150 0 150 750 150 0 0 0 0 0\n").expect("cpu");
        assert_eq!(a, (200, 1000));
        assert_eq!(cpu_percent(a, b), Some(50.0));
        assert_eq!(cpu_percent(b, a), None);
        assert_eq!(cpu_times("intr 5\n"), None);
        let m = "MemTotal:       1000 kB\nMemFree:  100 kB\nMemAvailable:    250 kB\n";
        assert_eq!(memory_percent(m), Some(75.0));
        assert_eq!(memory_percent("MemTotal: 0 kB\nMemAvailable: 0 kB"), None);
        assert_eq!(load1("0.52 0.40 0.30 1/200 999\n"), Some(0.52));
        assert_eq!(load1(""), None);
        assert_eq!(
            throttling("usage_usec 5\nnr_periods 10\nnr_throttled 3\nthrottled_usec 1500000\n"),
            Some((3, 1.5))
        );
        assert!(disk_percent(Path::new("/")).is_some());
    }

    #[test]
    fn figures_are_judged_as_ranges() {
        let limits = Limits {
            cpu: parse_pair("70,90").expect("pair"),
            memory: parse_pair("80,95").expect("pair"),
            disk: parse_pair("85,95").expect("pair"),
            load: parse_pair("5,10").expect("pair"),
        };
        let r = Reading {
            cpu: Some(75.0),
            memory: Some(50.0),
            disk: None,
            load: Some(11.0),
            throttled: None,
        };
        let (s, v) = judge(&r, &limits);
        assert_eq!(s, Status::Critical);
        assert_eq!(v["cpu"]["status"], "warning");
        assert_eq!(v["load"]["status"], "critical");
        assert_eq!(v["disk"]["status"], "unknown");
        assert!(parse_pair("70").is_err());
        assert!(parse_pair("x,9").is_err());
    }
}
