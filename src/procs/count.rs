//! Counting processes, check_procs style: filters, a metric, thresholds.

use std::fmt::Write as _;

use crate::report::{Metric, Record, Status};
use crate::threshold::Thresholds;

use super::table::{Need, Proc, ProcSource};

/// Which value the thresholds judge (check_procs -m).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum Measure {
    /// Number of matching processes.
    Procs,
    /// Virtual size of each process, KiB (as ps VSZ).
    Vsz,
    /// Resident size of each process, KiB (as ps RSS).
    Rss,
    /// CPU percent of each process over its life (as ps %CPU).
    Cpu,
    /// Seconds since each process started.
    Elapsed,
}

/// Which processes count.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Exact command name (comm), as `pgrep -x`.
    pub command: Option<String>,
    /// Text the command line must contain.
    pub args: Option<String>,
    /// Pattern the command line must match.
    pub args_regex: Option<regex::Regex>,
    /// Owner uid.
    pub uid: Option<u32>,
    /// Owner as given (for the summary).
    pub user_text: Option<String>,
    /// Any of these state letters.
    pub states: Option<String>,
    /// Parent pid.
    pub ppid: Option<i32>,
    /// Leave kernel threads out.
    pub skip_kernel_threads: bool,
    /// Command names to leave out.
    pub exclude: Vec<String>,
    /// Pids to leave out (this process).
    pub exclude_pids: Vec<i32>,
}

/// Compare a name with a comm, which the kernel cuts at 15 bytes.
pub fn comm_matches(comm: &str, name: &str) -> bool {
    if name.len() > 15 {
        let mut end = 15;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        comm == &name[..end]
    } else {
        comm == name
    }
}

impl Filter {
    /// The optional parts of the table these filters read.
    pub fn need(&self) -> Need {
        Need {
            uid: self.uid.is_some(),
            cmdline: self.args.is_some() || self.args_regex.is_some(),
            exe: false,
        }
    }

    /// Whether `p` counts.
    pub fn matches(&self, p: &Proc) -> bool {
        if self.exclude_pids.contains(&p.pid) {
            return false;
        }
        if self.skip_kernel_threads && p.kernel_thread {
            return false;
        }
        if self.exclude.iter().any(|x| comm_matches(&p.comm, x)) {
            return false;
        }
        if let Some(c) = &self.command {
            if !comm_matches(&p.comm, c) {
                return false;
            }
        }
        if let Some(uid) = self.uid {
            if p.uid != Some(uid) {
                return false;
            }
        }
        if let Some(ppid) = self.ppid {
            if p.ppid != ppid {
                return false;
            }
        }
        if let Some(states) = &self.states {
            if !states.contains(p.state) {
                return false;
            }
        }
        if self.args.is_some() || self.args_regex.is_some() {
            let text = p.args_text();
            if self
                .args
                .as_ref()
                .is_some_and(|a| !text.contains(a.as_str()))
            {
                return false;
            }
            if self.args_regex.as_ref().is_some_and(|r| !r.is_match(&text)) {
                return false;
            }
        }
        true
    }

    /// How check_procs describes the filters: "with command name 'sshd', ...".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.command {
            parts.push(format!("command name '{c}'"));
        }
        if let Some(a) = &self.args {
            parts.push(format!("args '{a}'"));
        }
        if let Some(r) = &self.args_regex {
            parts.push(format!("regex args '{}'", r.as_str()));
        }
        if let Some(u) = &self.user_text {
            parts.push(format!("user '{u}'"));
        }
        if let Some(s) = &self.states {
            parts.push(format!("status '{s}'"));
        }
        if let Some(p) = self.ppid {
            parts.push(format!("PPID = {p}"));
        }
        if !self.exclude.is_empty() {
            parts.push(format!("exclude progs '{}'", self.exclude.join(",")));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" with {}", parts.join(", "))
        }
    }
}

fn value_of(p: &Proc, m: Measure) -> f64 {
    match m {
        Measure::Procs => 1.0,
        Measure::Vsz => (p.vsize / 1024) as f64,
        Measure::Rss => (p.rss / 1024) as f64,
        Measure::Cpu => (p.cpu_percent() * 10.0).round() / 10.0,
        Measure::Elapsed => p.elapsed.as_secs() as f64,
    }
}

/// Count matching processes and judge them. `target` names what was
/// counted in the record (e.g. the filter text).
pub fn count(
    table: &dyn ProcSource,
    filter: &Filter,
    measure: Measure,
    limits: &Thresholds,
) -> Record {
    let started = std::time::Instant::now();
    let procs: Vec<Proc> = table
        .snapshot(filter.need())
        .into_iter()
        .filter(|p| filter.matches(p))
        .collect();
    let described = filter.describe();
    let target = if described.is_empty() {
        "all processes".to_string()
    } else {
        described.trim_start_matches(" with ").to_string()
    };
    let n = procs.len();
    let noun = if n == 1 { "process" } else { "processes" };
    let mut record = Record::new(super::CHECK, &target, Status::Ok, "");
    let (warn, crit) = limits.texts();
    let mut procs_metric = Metric::new("procs", n as f64, "").min(0.0);
    record.detail("count", n);
    record.detail(
        "pids",
        procs.iter().map(|p| p.pid).take(50).collect::<Vec<_>>(),
    );
    match measure {
        Measure::Procs => {
            record.status = limits.status(n as f64);
            (procs_metric.warn, procs_metric.crit) = (warn, crit);
            record.metrics.push(procs_metric);
            record.summary = format!("{n} {noun}{described}");
        }
        m => {
            let mut warned = 0;
            let mut critical = 0;
            let mut worst: Option<(&Proc, f64)> = None;
            for p in &procs {
                let v = value_of(p, m);
                match limits.status(v) {
                    Status::Critical => critical += 1,
                    Status::Warning => warned += 1,
                    _ => {}
                }
                if worst.is_none_or(|(_, w)| v > w) {
                    worst = Some((p, v));
                }
            }
            record.status = if critical > 0 {
                Status::Critical
            } else if warned > 0 {
                Status::Warning
            } else {
                Status::Ok
            };
            let label = format!("{m:?}").to_ascii_uppercase();
            record.metrics.push(procs_metric);
            record
                .metrics
                .push(Metric::new("procs_warn", warned as f64, "").min(0.0));
            record
                .metrics
                .push(Metric::new("procs_crit", critical as f64, "").min(0.0));
            let mut summary =
                format!("{label}: {warned} warn, {critical} crit out of {n} {noun}{described}");
            if let Some((p, v)) = worst {
                let _ = write!(summary, "; highest {v} (pid {} {})", p.pid, p.comm);
                record.detail("highest", v);
            }
            record.summary = summary;
        }
    }
    record.duration_ms = crate::report::round_ms(started.elapsed());
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::table::FixedProcs;
    use std::time::Duration;

    fn proc(pid: i32, comm: &str, state: char, args: &[&str]) -> Proc {
        Proc {
            pid,
            ppid: 1,
            comm: comm.into(),
            state,
            vsize: 100 * 1024 * pid as u64,
            rss: 10 * 1024,
            cpu_time: Duration::from_secs(1),
            elapsed: Duration::from_secs(10),
            uid: Some(if pid < 100 { 0 } else { 1000 }),
            cmdline: Some(args.iter().map(|s| s.to_string()).collect()),
            ..Proc::default()
        }
    }

    fn table() -> FixedProcs {
        FixedProcs(vec![
            proc(10, "nginx", 'S', &["nginx: master process /usr/sbin/nginx"]),
            proc(11, "nginx", 'S', &["nginx: worker process"]),
            proc(120, "grep", 'S', &["grep", "nginx"]),
            proc(130, "defunct", 'Z', &[]),
            Proc {
                kernel_thread: true,
                ..proc(2, "kthreadd", 'S', &[])
            },
        ])
    }

    #[test]
    fn command_name_is_exact_never_a_substring() {
        let f = Filter {
            command: Some("nginx".into()),
            ..Filter::default()
        };
        let r = count(&table(), &f, Measure::Procs, &Thresholds::default());
        assert_eq!(r.details["count"], 2, "grep nginx is not nginx");
        assert_eq!(r.summary, "2 processes with command name 'nginx'");
        assert_eq!(
            crate::render::perfdata_item("procs", &r.metrics[0]),
            "procs=2;;;0;"
        );
    }

    #[test]
    fn filters_combine() {
        let t = table();
        let n = |f: Filter| {
            count(&t, &f, Measure::Procs, &Thresholds::default()).details["count"].clone()
        };
        assert_eq!(
            n(Filter {
                states: Some("Z".into()),
                ..Filter::default()
            }),
            1
        );
        assert_eq!(
            n(Filter {
                args: Some("worker".into()),
                ..Filter::default()
            }),
            1
        );
        assert_eq!(
            n(Filter {
                uid: Some(0),
                skip_kernel_threads: true,
                ..Filter::default()
            }),
            2
        );
        assert_eq!(
            n(Filter {
                exclude: vec!["grep".into(), "nginx".into()],
                ..Filter::default()
            }),
            2
        );
        assert_eq!(
            n(Filter {
                exclude_pids: vec![10, 11],
                command: Some("nginx".into()),
                ..Filter::default()
            }),
            0
        );
    }

    #[test]
    fn thresholds_on_the_count_and_per_process() {
        let f = Filter {
            command: Some("nginx".into()),
            ..Filter::default()
        };
        let one_only = Thresholds::parse(None, Some("1:1")).expect("valid");
        assert_eq!(
            count(&table(), &f, Measure::Procs, &one_only).status,
            Status::Critical
        );
        // VSZ in KiB: pid 10 has 1000, pid 11 has 1100.
        let vsz = Thresholds::parse(Some("1050"), Some("2000")).expect("valid");
        let r = count(&table(), &f, Measure::Vsz, &vsz);
        assert_eq!(r.status, Status::Warning);
        assert!(
            r.summary
                .starts_with("VSZ: 1 warn, 0 crit out of 2 processes"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn long_names_compare_as_the_kernel_cuts_them() {
        assert!(comm_matches("nova-conductor-", "nova-conductor-worker"));
        assert!(!comm_matches("nova-conductor", "nova-conductor-worker"));
    }
}
