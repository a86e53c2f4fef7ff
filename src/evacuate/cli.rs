//! `evacuate`: the flags, the interlocks and the moves.
//!
//! For each host, in order: its nova-compute service by exact name; Nova's
//! view (down or stale); a fresh verdict through the probe-host library
//! (`--probe`); the brakes and the cooldown in the journal; a nova-scheduler
//! that is up; the fence command and its power-off read back. Without
//! `--execute` that is the plan, and nothing changes. With it: fence, force
//! down and disable (marked), then per instance lock, evacuate, follow its
//! migration to the new host, unlock — every step written to the journal
//! before the next call, so a run killed anywhere is finished by the next.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};

use super::{
    host_name, progress, Brakes, Groups, HostJob, ImageProperties, Job, Journal, Progress,
    Selection, Step, TagSource, CHECK, MARKER,
};
use crate::cli::{Common, Context, Tool, UsageError};
use crate::openstack::client::{Answer, OsArgs, OsError, Session};
use crate::openstack::nova::{ComputeService, Nova, Server};
use crate::report::{Metric, Record, Status, TraceStep};
use crate::state::Locked;

const EXAMPLES: &str = "\
Examples:
  evacuate compute1                                   # the plan: what would move, every interlock
  evacuate compute1 --execute --state /var/lib/skyprobe/evacuate.json \\
      --probe '--hosts /etc/skyprobe/computes.toml --openstack --state /var/lib/skyprobe/verdict.json' \\
      --fence 'ipmitool -I lanplus -H {host}-ipmi -U admin -E chassis power off' \\
      --fence-status 'ipmitool -I lanplus -H {host}-ipmi -U admin -E chassis power status'
  probe-host --verdict --openstack --hypervisors --state v.json | evacuate --execute --state e.json --probe '...' --fence '...' --fence-status '...'
  evacuate compute1 --tagged HA_Enabled=True --priority-key ha_priority --reserved compute9 \
      --recovery rh_priority --stop-evacuated           # masakari's choices, planned
  evacuate --reenable compute1 --state /var/lib/skyprobe/evacuate.json   # after repair

A host is evacuated only when every interlock holds: Nova shows its nova-compute down or
stale (no report for --service-down-time); a fresh probe-host verdict (--probe, run in this
process) says dead; the journal's brakes (--max-hosts per --window, --cooldown per host) and
--max-down-percent of all computes down at once allow it; a nova-scheduler is up; and the
fence command succeeded and --fence-status reads power off back (--fence-off). Without
--execute the plan is printed and nothing changes. Host names are matched exactly, never as
patterns. Every step is written to the --state journal before the next call: a run killed at
any point is finished by the next one, and no instance is evacuated twice. The host stays
forced down and disabled until --reenable finds nothing in flight and its nova-compute
reporting again.";

/// Move every instance off a dead compute host through Nova, behind interlocks.
#[derive(Debug, Clone, Parser)]
#[command(name = "evacuate", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Args {
    /// Compute hosts to evacuate (exact nova-compute service names); none: probe-host verdict
    /// records on stdin (dead ones are taken; with none dead, nothing is done and no cloud is
    /// asked).
    #[arg(value_name = "HOST")]
    pub hosts: Vec<String>,

    /// Act: fence, force down, evacuate, verify. Without it, print the plan and change nothing.
    #[arg(long)]
    pub execute: bool,

    /// The journal and the brakes' history (locked: one run at a time). Needed with --execute.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// probe-host flags for the fresh verdict (--verdict is added; the host must come out dead),
    /// e.g. '--hosts computes.toml --openstack --state verdict.json'. Needed with --execute.
    #[arg(
        long,
        value_name = "FLAGS",
        allow_hyphen_values = true,
        help_heading = "Interlocks"
    )]
    pub probe: Option<String>,

    /// A nova-compute with no report for this long counts as down.
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = crate::units::parse_duration, help_heading = "Interlocks")]
    pub service_down_time: Duration,

    /// The command that powers the host off ({host} is replaced; no shell).
    #[arg(
        long,
        value_name = "COMMAND",
        allow_hyphen_values = true,
        help_heading = "Fencing"
    )]
    pub fence: Option<String>,

    /// The command that reads the host's power state back ({host} is replaced).
    #[arg(
        long,
        value_name = "COMMAND",
        allow_hyphen_values = true,
        help_heading = "Fencing"
    )]
    pub fence_status: Option<String>,

    /// What --fence-status must print for power off (a regex).
    #[arg(
        long,
        value_name = "REGEX",
        default_value = r"(?i)\bpower is off\b|^\s*off\s*$",
        help_heading = "Fencing"
    )]
    pub fence_off: String,

    /// How long each fence command may run.
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = crate::units::parse_duration, help_heading = "Fencing")]
    pub fence_timeout: Duration,

    /// Evacuate without fencing (its VMs may run twice and corrupt their disks).
    #[arg(long, requires = "i_understand_unfenced", help_heading = "Fencing")]
    pub no_fence: bool,

    /// Confirms --no-fence.
    #[arg(long, help_heading = "Fencing")]
    pub i_understand_unfenced: bool,

    /// At most N hosts begun per --window.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Brakes",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_hosts: u32,

    /// At most N hosts of one availability zone begun per --window (a zone
    /// lost at once is more likely the network than its hosts).
    #[arg(long, value_name = "N", help_heading = "Brakes",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_hosts_per_zone: Option<u32>,

    /// At most N hosts of one host aggregate (a rack, a power feed) begun per
    /// --window.
    #[arg(long, value_name = "N", help_heading = "Brakes",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_hosts_per_aggregate: Option<u32>,

    /// The window --max-hosts counts in.
    #[arg(long, value_name = "DURATION", default_value = "1h",
          value_parser = crate::units::parse_duration, help_heading = "Brakes")]
    pub window: Duration,

    /// A host evacuated less than this long ago is not evacuated again.
    #[arg(long, value_name = "DURATION", default_value = "30m",
          value_parser = crate::units::parse_duration, help_heading = "Brakes")]
    pub cooldown: Duration,

    /// Refuse when more than this share of all nova-compute services is down at once, % (a
    /// partition looks like many dead hosts).
    #[arg(
        long,
        value_name = "PERCENT",
        default_value_t = 34.0,
        help_heading = "Brakes"
    )]
    pub max_down_percent: f64,

    /// Only servers tagged with this key (KEY or KEY=VALUE, e.g. HA_Enabled=True
    /// or evacuable=true), looked for in --tag-sources.
    #[arg(long, value_name = "KEY[=VALUE]", help_heading = "Instances")]
    pub tagged: Option<String>,

    /// Where --tagged looks, most specific first; the first that has the key
    /// decides (a server's metadata can opt out what its image opts in).
    #[arg(
        long,
        value_name = "SOURCES",
        value_delimiter = ',',
        default_value = "metadata,flavor,image",
        help_heading = "Instances"
    )]
    pub tag_sources: Vec<TagSource>,

    /// Instances in ERROR: evacuate (Nova rebuilds them) or skip.
    #[arg(long, value_name = "WHAT", default_value = "evacuate",
          value_parser = ["evacuate", "skip"], help_heading = "Instances")]
    pub error_instances: String,

    /// Send them to this host (an exact, up nova-compute) instead of the scheduler's choice.
    #[arg(
        long,
        value_name = "HOST",
        help_heading = "Instances",
        conflicts_with = "reserved"
    )]
    pub target_host: Option<String>,

    /// A reserved host (repeatable): a nova-compute kept disabled for failures, enabled when
    /// this evacuation first sends it an instance.
    #[arg(long, value_name = "HOST", help_heading = "Instances")]
    pub reserved: Vec<String>,

    /// Where instances go: auto (the scheduler), reserved-host (only --reserved), auto-priority
    /// (the scheduler, then a reserved host for a failed one), rh-priority (a reserved host,
    /// then the scheduler) [default: reserved-host with --reserved, else auto].
    #[arg(long, value_name = "METHOD", value_enum, help_heading = "Instances")]
    pub recovery: Option<super::Recovery>,

    /// Move instances group by group by this integer metadata key, the highest first (none:
    /// group 0).
    #[arg(long, value_name = "KEY", help_heading = "Instances")]
    pub priority_key: Option<String>,

    /// Evacuate at microversion 2.95, so instances arrive stopped (checked before they are
    /// started again); a Nova without 2.95 keeps their power state, and the record says so.
    #[arg(long, help_heading = "Instances")]
    pub stop_evacuated: bool,

    /// Evacuations in flight at once.
    #[arg(long, value_name = "N", default_value_t = 4, help_heading = "Instances",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,

    /// Time between two submissions.
    #[arg(long, value_name = "DURATION", default_value = "500ms",
          value_parser = crate::units::parse_duration, help_heading = "Instances")]
    pub stagger: Duration,

    /// How long one instance may take to arrive.
    #[arg(long, value_name = "DURATION", default_value = "300s",
          value_parser = crate::units::parse_duration, help_heading = "Instances")]
    pub instance_timeout: Duration,

    /// Evacuate calls per instance before it is failed.
    #[arg(long, value_name = "N", default_value_t = 2, help_heading = "Instances",
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub retries: u32,

    /// Unset force-down and enable HOST, once nothing of it is in flight and its nova-compute
    /// reports again.
    #[arg(long, value_name = "HOST", conflicts_with_all = ["hosts", "execute"])]
    pub reenable: Option<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub os: OsArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// Where the hosts come from.
#[derive(Debug)]
enum Input {
    Named(Vec<String>),
    /// The dead hosts of the verdicts piped in, and records for lines that
    /// could not be used and hosts left alone.
    Stdin(Vec<String>, Vec<Record>),
    Reenable(String),
}

/// What `prepare` made of the flags.
pub struct Prepared {
    input: Input,
    /// None when the verdicts piped in name no dead host: nothing to do,
    /// and no cloud is asked.
    session: Option<Session>,
    cloud: String,
    probe: Option<Mutex<(crate::host::cli::Args, crate::host::cli::Run)>>,
    fence: Option<(Vec<String>, Vec<String>, regex::Regex)>,
    selection: Selection,
    brakes: Brakes,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("input", &self.input)
            .finish()
    }
}

fn usage(flag: &str, e: impl std::fmt::Display) -> UsageError {
    UsageError::new(format!("{flag}: {e}"))
}

impl Tool for Args {
    type Run = Prepared;
    const CHECK: &'static str = CHECK;
    const LABEL: &'static str = "EVACUATE";

    fn common(&self) -> &Common {
        &self.common
    }

    fn default_timeout(&self) -> Duration {
        Duration::from_secs(30 * 60)
    }

    fn prepare(&mut self) -> Result<Prepared, UsageError> {
        if self.common.every.is_some() {
            return Err(UsageError::new(
                "--every: evacuate acts once; run it again instead",
            ));
        }
        let input = match &self.reenable {
            Some(h) => Input::Reenable(host_name(h).map_err(|e| usage("--reenable", e))?),
            None if !self.hosts.is_empty() => Input::Named(
                self.hosts
                    .iter()
                    .map(|h| host_name(h))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(UsageError::new)?,
            ),
            None if std::io::stdin().is_terminal() => {
                return Err(UsageError::new(
                    "no host: name one, or pipe probe-host --verdict records in",
                ))
            }
            None => {
                let (dead, said) = hosts_from_stdin();
                Input::Stdin(dead, said)
            }
        };
        if let Some(t) = &self.target_host {
            host_name(t).map_err(|e| usage("--target-host", e))?;
        }
        for r in &self.reserved {
            host_name(r).map_err(|e| usage("--reserved", e))?;
            if self.hosts.contains(r) {
                return Err(usage(
                    "--reserved",
                    format!("{r} is also a host to evacuate"),
                ));
            }
        }
        if self.recovery.is_some_and(|m| m != super::Recovery::Auto) && self.reserved.is_empty() {
            return Err(usage("--recovery", "this method needs --reserved HOST"));
        }
        if (self.execute || self.reenable.is_some()) && self.state.is_none() {
            return Err(UsageError::new(
                "--state FILE is needed to act: the journal is what makes a run resumable",
            ));
        }
        if self.execute && self.probe.is_none() {
            return Err(UsageError::new(
                "--execute needs --probe FLAGS: a fresh probe-host verdict must say dead",
            ));
        }
        if self.execute && !self.no_fence && (self.fence.is_none() || self.fence_status.is_none()) {
            return Err(UsageError::new(
                "--execute needs --fence and --fence-status (or --no-fence --i-understand-unfenced)",
            ));
        }
        if !(0.0..=100.0).contains(&self.max_down_percent) {
            return Err(usage("--max-down-percent", "a percentage, 0 to 100"));
        }
        let fence = match (&self.fence, &self.fence_status) {
            (Some(f), Some(s)) => Some((
                crate::command::split(f).map_err(|e| usage("--fence", e))?,
                crate::command::split(s).map_err(|e| usage("--fence-status", e))?,
                regex::Regex::new(&self.fence_off)
                    .map_err(|e| usage("--fence-off", crate::cli::regex_words(&e)))?,
            )),
            (None, None) => None,
            _ => return Err(UsageError::new("--fence and --fence-status go together")),
        };
        let probe = match &self.probe {
            None => None,
            Some(flags) => {
                let mut argv = vec!["probe-host".to_string(), "--verdict".to_string()];
                argv.extend(crate::command::split(flags).map_err(|e| usage("--probe", e))?);
                let mut a = crate::host::cli::Args::try_parse_from(&argv).map_err(|e| {
                    let text = e.to_string();
                    usage(
                        "--probe",
                        text.lines()
                            .next()
                            .unwrap_or("")
                            .trim_start_matches("error: "),
                    )
                })?;
                let run = a.prepare().map_err(|e| usage("--probe", e.0))?;
                Some(Mutex::new((a, run)))
            }
        };
        let tagged = self.tagged.as_ref().map(|t| match t.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
            None => (t.trim().to_string(), None),
        });
        if tagged.as_ref().is_some_and(|(k, _)| k.is_empty()) {
            return Err(usage("--tagged", "give KEY or KEY=VALUE"));
        }
        let idle = matches!(&input, Input::Stdin(dead, _) if dead.is_empty());
        let (cloud, session) = if idle {
            (String::new(), None)
        } else {
            let cloud_cfg = self.os.cloud()?;
            // Keystone's URL names the cloud, however the credentials were given.
            let cloud = cloud_cfg
                .auth_url
                .trim_end_matches('/')
                .trim_end_matches("/v3")
                .to_string();
            (cloud, Some(self.os.session()?))
        };
        Ok(Prepared {
            input,
            session,
            cloud,
            probe,
            fence,
            selection: Selection {
                tagged,
                sources: self.tag_sources.clone(),
                error_instances: self.error_instances == "evacuate",
            },
            brakes: Brakes {
                max_hosts: self.max_hosts as usize,
                window: self.window.as_secs(),
                cooldown: self.cooldown.as_secs(),
                max_down_percent: self.max_down_percent,
                max_per_zone: self.max_hosts_per_zone.map(|n| n as usize),
                max_per_aggregate: self.max_hosts_per_aggregate.map(|n| n as usize),
            },
        })
    }

    fn secrets(&self, p: &Prepared) -> Vec<String> {
        p.session
            .iter()
            .map(|s| s.keystone.cloud.secret().expose().to_string())
            .collect()
    }

    fn run(&self, p: &Prepared, ctx: &Context) -> Vec<Record> {
        let Some(session) = &p.session else {
            // Verdicts came in, none of them dead.
            let mut out = match &p.input {
                Input::Stdin(_, said) => said.clone(),
                _ => Vec::new(),
            };
            out.push(Record::new(
                CHECK,
                "evacuate",
                Status::Ok,
                "no dead host in the verdicts read: nothing to evacuate",
            ));
            return out;
        };
        let session = session.in_round(&ctx.round);
        let mut out = Vec::new();
        let mut journal = match &self.state {
            Some(path) => match Locked::<Journal>::open(path) {
                Ok(j) => Some(j),
                Err(e) => return vec![unknown("state", e)],
            },
            None => None,
        };
        if let Some(j) = &mut journal {
            if let Some(w) = j.warning.take() {
                out.push(unknown("state", w));
                return out;
            }
            match &j.value.cloud {
                Some(c) if *c != p.cloud => {
                    out.push(unknown(
                        "state",
                        format!(
                            "--state {}: the journal of another cloud ({c}); not mixed with {}",
                            self.state
                                .as_ref()
                                .map(|s| s.display().to_string())
                                .unwrap_or_default(),
                            p.cloud
                        ),
                    ));
                    return out;
                }
                _ => j.value.cloud = Some(p.cloud.clone()),
            }
        }
        let hosts: Vec<String> = match &p.input {
            Input::Reenable(h) => {
                out.push(self.reenable(h, &session, journal.as_mut(), ctx));
                return out;
            }
            Input::Named(h) => h.clone(),
            Input::Stdin(dead, said) => {
                out.extend(said.iter().cloned());
                dead.clone()
            }
        };
        let mut seen = std::collections::HashSet::new();
        for host in hosts.iter().filter(|h| seen.insert(h.as_str())) {
            let mut recs = self.one_host(host, p, &session, journal.as_mut(), ctx);
            out.append(&mut recs);
            if Instant::now() >= ctx.deadline {
                break;
            }
        }
        if let Some(j) = &journal {
            if let Err(e) = j.save() {
                out.push(unknown("state", e));
            }
        }
        out
    }

    fn timed_out(&self, _p: &Prepared, ctx: &Context) -> Vec<Record> {
        vec![Record::new(
            CHECK,
            "evacuate",
            ctx.timeout_state,
            "the deadline came first; the journal says how far it got (run again to finish)",
        )]
    }
}

/// Writes one instance's journal entry.
type Put<'a> = dyn Fn(&Mutex<&mut Locked<Journal>>, &Job) -> Result<(), String> + 'a;

fn unknown(target: &str, why: impl Into<String>) -> Record {
    let mut r = Record::new(CHECK, target, Status::Unknown, why);
    if target == "state" {
        // Said on stderr too: the journal is the operator's to mend.
        r.event = Some("state".into());
    }
    r
}

/// Dead hosts from probe-host verdict records on stdin, and records for
/// lines that could not be used and hosts left alone.
fn hosts_from_stdin() -> (Vec<String>, Vec<Record>) {
    let mut dead = Vec::new();
    let mut said = Vec::new();
    let mut n = 0usize;
    crate::records::read_lines(std::io::stdin().lock(), |line| {
        n += 1;
        let text = match line {
            crate::records::Line::Text(t) if t.trim().is_empty() => return true,
            crate::records::Line::Text(t) => t,
            crate::records::Line::Unusable(why) => {
                said.push(unknown("stdin", format!("stdin line {n}: {why}")));
                return true;
            }
        };
        let r: Record = match serde_json::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                said.push(unknown(
                    "stdin",
                    format!("stdin line {n}: not a record ({e})"),
                ));
                return true;
            }
        };
        let Some(verdict) = r.details.get("verdict").and_then(Value::as_str) else {
            return true;
        };
        match (verdict, host_name(&r.name)) {
            ("dead", Ok(h)) => dead.push(h),
            ("dead", Err(e)) => said.push(unknown("stdin", format!("stdin line {n}: {e}"))),
            ("alive", _) => {}
            (other, _) => said.push(Record::new(
                CHECK,
                &r.name,
                Status::Ok,
                format!("{}: verdict {other}, left alone", r.name),
            )),
        }
        true
    });
    (dead, said)
}

/// One interlock's verdict, for the plan.
struct Lock {
    name: &'static str,
    ok: bool,
    why: String,
}

fn interlocks_json(locks: &[Lock]) -> Value {
    json!(locks
        .iter()
        .map(|l| json!({"interlock": l.name, "ok": l.ok, "why": l.why}))
        .collect::<Vec<_>>())
}

impl Args {
    /// The recovery method in force.
    fn recovery(&self) -> super::Recovery {
        self.recovery.unwrap_or(if self.reserved.is_empty() {
            super::Recovery::Auto
        } else {
            super::Recovery::ReservedHost
        })
    }

    fn service_stale(&self, s: &ComputeService) -> Option<u64> {
        let age = s.updated()?.elapsed().ok()?.as_secs();
        Some(age)
    }

    /// Plan (and with --execute, carry out) the evacuation of one host.
    fn one_host(
        &self,
        host: &str,
        p: &Prepared,
        session: &Session,
        journal: Option<&mut Locked<Journal>>,
        ctx: &Context,
    ) -> Vec<Record> {
        let nova = Nova(session);
        let mut trace = Vec::new();
        let mut out = Vec::new();
        let services = match nova.services("nova-compute", None, ctx.deadline, &mut trace) {
            Ok(s) => s,
            Err(e) => return vec![os_failure(host, "listing nova-compute services", e, trace)],
        };
        let Some(service) = services.iter().find(|s| s.host == host).cloned() else {
            let mut names: Vec<&str> = services.iter().map(|s| s.host.as_str()).collect();
            names.sort_unstable();
            let mut r = unknown(
                host,
                format!(
                    "no nova-compute service is named {host} (exact names; Nova has {})",
                    names.join(", ")
                ),
            );
            r.trace = trace;
            return vec![r];
        };
        let mut locks = Vec::new();
        // 1. Nova's own view.
        let age = self.service_stale(&service);
        let nova_down = service.state == "down"
            || service.forced_down
            || age.is_some_and(|a| a >= self.service_down_time.as_secs());
        locks.push(Lock {
            name: "nova",
            ok: nova_down,
            why: format!(
                "nova-compute {} ({}{}{})",
                service.state,
                service.status,
                if service.forced_down {
                    ", forced down"
                } else {
                    ""
                },
                age.map(|a| format!(", last report {a} s ago"))
                    .unwrap_or_default()
            ),
        });
        // 2. A fresh verdict; or, resuming a host this journal fenced, its
        // power read back off again (our own force-down makes Nova's
        // updated_at look fresh, which a verdict would read as up).
        let fenced_here = journal
            .as_ref()
            .and_then(|j| j.value.hosts.get(host))
            .is_some_and(|h| h.finished.is_none() && h.fenced);
        if fenced_here && p.fence.is_some() {
            locks.push(match self.power_off(host, p, ctx) {
                Ok(line) => Lock {
                    name: "verdict",
                    ok: true,
                    why: format!("fenced by this journal; power still reads off ({line})"),
                },
                Err(why) => Lock {
                    name: "verdict",
                    ok: false,
                    why: format!("fenced by this journal, but now: {why}"),
                },
            });
        } else {
            locks.push(self.fresh_verdict(host, p, ctx));
        }
        // 3. Brakes.
        let now = super::now_unix();
        let resuming = journal
            .as_ref()
            .and_then(|j| j.value.hosts.get(host))
            .is_some_and(|h| h.finished.is_none());
        let mut groups = Groups::default();
        for svc in &services {
            if let Some(z) = &svc.zone {
                groups.zone.insert(svc.host.clone(), z.clone());
            }
        }
        let mut unreadable = None;
        if p.brakes.max_per_aggregate.is_some() && journal.is_some() {
            match nova.aggregates(ctx.deadline, &mut trace) {
                Ok(aggs) => {
                    for a in aggs {
                        for h in a.hosts {
                            groups.aggregates.entry(h).or_default().push(a.name.clone());
                        }
                    }
                }
                // Not knowing the racks is not knowing the brake: held.
                Err(e) => {
                    unreadable = Some(format!(
                        "brake: the host aggregates cannot be read (--max-hosts-per-aggregate): {e}"
                    ))
                }
            }
        }
        let brake = unreadable.or_else(|| {
            journal
                .as_ref()
                .and_then(|j| j.value.brake(host, &p.brakes, &groups, now))
        });
        locks.push(Lock {
            name: "brakes",
            ok: brake.is_none(),
            why: brake.unwrap_or_else(|| {
                if resuming {
                    "resuming the journal's unfinished evacuation".into()
                } else if journal.is_none() {
                    "not counted: no --state journal (--execute needs one)".into()
                } else {
                    let mut ceilings = format!("--max-hosts {}", p.brakes.max_hosts);
                    if let Some(n) = p.brakes.max_per_zone {
                        ceilings.push_str(&format!(", --max-hosts-per-zone {n}"));
                    }
                    if let Some(n) = p.brakes.max_per_aggregate {
                        ceilings.push_str(&format!(", --max-hosts-per-aggregate {n}"));
                    }
                    format!(
                        "within {ceilings} per {} and --cooldown",
                        humantime::format_duration(Duration::from_secs(p.brakes.window))
                    )
                }
            }),
        });
        let down = services
            .iter()
            .filter(|s| {
                s.state == "down"
                    || s.forced_down
                    || self
                        .service_stale(s)
                        .is_some_and(|a| a >= self.service_down_time.as_secs())
            })
            .count();
        let share = down as f64 * 100.0 / services.len().max(1) as f64;
        locks.push(Lock {
            name: "fleet",
            ok: share <= p.brakes.max_down_percent || resuming,
            why: format!(
                "{down} of {} nova-compute services down ({}%; --max-down-percent {})",
                services.len(),
                crate::render::number((share * 10.0).round() / 10.0),
                crate::render::number(p.brakes.max_down_percent)
            ),
        });
        // 4. A scheduler to place them.
        match nova.services("nova-scheduler", None, ctx.deadline, &mut trace) {
            Ok(s) => {
                let up = s
                    .iter()
                    .filter(|s| s.state == "up" && s.status == "enabled")
                    .count();
                locks.push(Lock {
                    name: "scheduler",
                    ok: up > 0
                        || self.target_host.is_some()
                        || self.recovery() == super::Recovery::ReservedHost,
                    why: format!("{up} of {} nova-scheduler up", s.len()),
                });
            }
            Err(e) => locks.push(Lock {
                name: "scheduler",
                ok: false,
                why: format!("cannot list nova-scheduler: {e}"),
            }),
        }
        if let Some(t) = &self.target_host {
            let ok = services
                .iter()
                .any(|s| &s.host == t && s.state == "up" && !s.forced_down && t != host);
            locks.push(Lock {
                name: "target",
                ok,
                why: if ok {
                    format!("{t} is up")
                } else {
                    format!("--target-host {t} is not an up nova-compute other than {host}")
                },
            });
        }
        if !self.reserved.is_empty() {
            let up: Vec<&str> = self
                .reserved
                .iter()
                .filter(|r| {
                    services
                        .iter()
                        .any(|s| &&s.host == r && s.state == "up" && !s.forced_down)
                })
                .map(String::as_str)
                .collect();
            let missing: Vec<&str> = self
                .reserved
                .iter()
                .map(String::as_str)
                .filter(|r| !up.contains(r))
                .collect();
            locks.push(Lock {
                name: "reserved",
                ok: !up.is_empty() || !self.recovery().reserved_first(),
                why: if missing.is_empty() {
                    format!(
                        "reserved hosts up: {} ({:?})",
                        up.join(", "),
                        self.recovery()
                    )
                } else {
                    format!(
                        "reserved hosts up: {}; not an up nova-compute: {} ({:?})",
                        if up.is_empty() {
                            "none".into()
                        } else {
                            up.join(", ")
                        },
                        missing.join(", "),
                        self.recovery()
                    )
                },
            });
        }
        // 5. Fencing configured.
        locks.push(Lock {
            name: "fence",
            ok: p.fence.is_some() || (self.no_fence && self.i_understand_unfenced),
            why: match (&p.fence, self.no_fence) {
                (Some(_), _) => "fence and power status commands given".into(),
                (None, true) => "NOT FENCED (--no-fence): its VMs may run twice".into(),
                (None, false) => "no --fence / --fence-status".into(),
            },
        });
        // The instances.
        let servers = match nova.servers_on_host(host, ctx.deadline, &mut trace) {
            Ok(s) => s,
            Err(e) => return vec![os_failure(host, "listing its servers", e, trace)],
        };
        let images = image_properties(&servers, p, session, ctx, &mut trace);
        let selected: Vec<&Server> = servers
            .iter()
            .filter(|s| p.selection.judge(s, &images).is_ok())
            .collect();
        locks.push(self.capacity(host, &services, &selected, session, ctx));
        // The evacuation of this host in progress, if one is (a finished
        // one is history: a new evacuation plans afresh).
        let known = journal
            .as_ref()
            .and_then(|j| j.value.hosts.get(host))
            .filter(|k| k.finished.is_none())
            .cloned();
        let mut chosen: Vec<&Server> = Vec::new();
        for s in &servers {
            let mut r = Record::new(CHECK, &s.id, Status::Ok, "");
            r.name.clone_from(&s.name);
            r.detail("host", host);
            r.detail("status", s.status.as_str());
            let followed = known.as_ref().and_then(|k| k.instances.get(&s.id));
            if let Some(j) = followed {
                r.detail("evacuable", true);
                r.detail("step", json!(j.step));
                r.summary = if j.step == Step::Failed {
                    format!(
                        "{} ({}): failed in the evacuation in progress off {host}, not tried again: {}",
                        s.name,
                        s.status,
                        j.why.as_deref().unwrap_or("no reason kept")
                    )
                } else {
                    format!(
                        "{} ({}): being evacuated off {host} (journal: {:?}, {} calls)",
                        s.name, s.status, j.step, j.tries
                    )
                };
                r.event = Some("plan".into());
                out.push(r);
                continue;
            }
            match p.selection.judge(s, &images) {
                Ok(()) => {
                    chosen.push(s);
                    r.detail("evacuable", true);
                    r.detail("target", self.target_host.as_deref().unwrap_or("scheduler"));
                    r.summary = format!("{} ({}): to be evacuated off {host}", s.name, s.status);
                }
                Err(why) => {
                    r.detail("evacuable", false);
                    r.summary = format!("{} ({}): left on {host}: {why}", s.name, s.status);
                    r.detail("why", why);
                }
            }
            r.event = Some("plan".into());
            out.push(r);
        }
        // Instances the journal follows that Nova already shows elsewhere.
        if let Some(k) = &known {
            for (id, j) in &k.instances {
                if !servers.iter().any(|s| &s.id == id) && !j.step.is_final() {
                    let mut r = Record::new(
                        CHECK,
                        id,
                        Status::Ok,
                        format!(
                            "{}: in the journal ({:?}), no longer on {host}",
                            j.name, j.step
                        ),
                    );
                    r.name.clone_from(&j.name);
                    r.event = Some("plan".into());
                    out.push(r);
                }
            }
        }
        let held = locks.iter().all(|l| l.ok);
        let refused: Vec<String> = locks
            .iter()
            .filter(|l| !l.ok)
            .map(|l| format!("{}: {}", l.name, l.why))
            .collect();
        let mut summary = Record::new(
            CHECK,
            host,
            if held {
                Status::Ok
            } else if self.execute {
                Status::Critical
            } else {
                Status::Warning
            },
            if held {
                format!(
                    "{host}: {} of {} instances to evacuate; every interlock holds{}",
                    chosen.len(),
                    servers.len(),
                    if self.execute {
                        ""
                    } else {
                        " (plan only: --execute to act)"
                    }
                )
            } else {
                format!("{host}: not evacuated: {}", refused.join("; "))
            },
        );
        summary.detail("interlocks", interlocks_json(&locks));
        summary.detail("instances", servers.len());
        summary.detail("evacuable", chosen.len());
        summary
            .metrics
            .push(Metric::new("instances", servers.len() as f64, "").min(0.0));
        summary
            .metrics
            .push(Metric::new("evacuable", chosen.len() as f64, "").min(0.0));
        summary.event = Some("plan".into());
        summary.trace = std::mem::take(&mut trace);
        if !self.execute || !held {
            out.push(summary);
            return out;
        }
        let Some(journal) = journal else {
            out.push(summary);
            return out;
        };
        out.push(summary);
        // The plan is out before anything is changed.
        let mut out = ctx.emit_now(out);
        out.extend(self.act(host, &service, &chosen, p, session, journal, ctx));
        out
    }

    /// Placement's free capacity on the targets against what the evacuable
    /// instances need.
    fn capacity(
        &self,
        host: &str,
        services: &[ComputeService],
        selected: &[&Server],
        session: &Session,
        ctx: &Context,
    ) -> Lock {
        let mut trace = Vec::new();
        let placement = crate::openstack::placement::Placement(session);
        let targets: Vec<&str> = services
            .iter()
            .filter(|s| s.host != host && s.state == "up" && !s.forced_down)
            .filter(|s| {
                if self.recovery().reserved_first() {
                    self.reserved.contains(&s.host)
                } else {
                    s.status == "enabled" || self.reserved.contains(&s.host)
                }
            })
            .filter(|s| self.target_host.as_ref().is_none_or(|t| *t == s.host))
            .map(|s| s.host.as_str())
            .collect();
        let mut need = Vec::new();
        let mut unknown_flavor = 0;
        for s in selected {
            match &s.flavor {
                Some(f) => need.push((s.name.clone(), f.resources())),
                None => unknown_flavor += 1,
            }
        }
        let mut free = std::collections::BTreeMap::new();
        for t in &targets {
            let found = placement
                .resource_providers(Some(t), ctx.deadline, &mut trace)
                .and_then(|rps| {
                    let Some(rp) = rps.into_iter().next() else {
                        return Ok(None);
                    };
                    let inv = placement.inventories(&rp.uuid, ctx.deadline, &mut trace)?;
                    let used = placement.usages(&rp.uuid, ctx.deadline, &mut trace)?;
                    Ok(Some(
                        inv.iter()
                            .map(|(c, i)| {
                                (
                                    c.clone(),
                                    i.capacity() - used.get(c).copied().unwrap_or(0) as f64,
                                )
                            })
                            .collect::<std::collections::BTreeMap<String, f64>>(),
                    ))
                });
            match found {
                Ok(Some(room)) => {
                    free.insert(t.to_string(), room);
                }
                Ok(None) => {}
                Err(e) => {
                    return Lock {
                        name: "capacity",
                        ok: false,
                        why: format!("cannot ask Placement: {e}"),
                    }
                }
            }
        }
        let unknown = if unknown_flavor > 0 {
            format!(" ({unknown_flavor} with no flavor shown, not counted)")
        } else {
            String::new()
        };
        match super::fits(&need, &free) {
            Ok(words) => Lock {
                name: "capacity",
                ok: true,
                why: format!("{words}{unknown}"),
            },
            Err(why) => Lock {
                name: "capacity",
                ok: false,
                why: format!("{why}{unknown}"),
            },
        }
    }

    /// The fresh verdict through the probe-host library.
    fn fresh_verdict(&self, host: &str, p: &Prepared, ctx: &Context) -> Lock {
        let Some(probe) = &p.probe else {
            return Lock {
                name: "verdict",
                ok: false,
                why: "not asked (give --probe FLAGS)".into(),
            };
        };
        let guard = match probe.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (args, run) = &*guard;
        let left = ctx.remaining().min(args.timeout());
        let pctx = Context::new(left);
        let records = args.run(run, &pctx);
        let mine = records
            .iter()
            .find(|r| r.name == host && r.details.contains_key("verdict"));
        match mine {
            Some(r) => {
                let v = r
                    .details
                    .get("verdict")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                Lock {
                    name: "verdict",
                    ok: v == "dead",
                    why: format!("probe-host says {v}: {}", r.summary),
                }
            }
            None => Lock {
                name: "verdict",
                ok: false,
                why: format!("probe-host has no verdict for {host} (is it in --probe's hosts?)"),
            },
        }
    }

    /// Fence, force down, evacuate and follow every chosen instance.
    #[allow(clippy::too_many_arguments)]
    fn act(
        &self,
        host: &str,
        service: &ComputeService,
        chosen: &[&Server],
        p: &Prepared,
        session: &Session,
        journal: &mut Locked<Journal>,
        ctx: &Context,
    ) -> Vec<Record> {
        let nova = Nova(session);
        let mut out = Vec::new();
        let now = super::now_unix();
        // A new evacuation (none in the journal, or the last one finished and
        // past its cooldown) is counted by the brakes once; a resumed one is not.
        let new = journal
            .value
            .hosts
            .get(host)
            .is_none_or(|j| j.finished.is_some());
        if new {
            journal.value.hosts.insert(
                host.to_string(),
                HostJob {
                    started: now,
                    ..HostJob::default()
                },
            );
            journal.value.history.push((host.to_string(), now));
            journal.value.prune(&p.brakes, now);
        }
        if let Err(e) = journal.save() {
            out.push(unknown("state", e));
            return out;
        }
        // Fence.
        let fenced = journal.value.hosts.get(host).is_some_and(|j| j.fenced);
        if !fenced {
            let mut r = self.fence(host, p, ctx);
            let ok = r.status == Status::Ok;
            r.event = Some("fence".into());
            out.extend(ctx.emit_now(vec![r]));
            if !ok {
                return out;
            }
            if let Some(j) = journal.value.hosts.get_mut(host) {
                j.fenced = true;
            }
            if let Err(e) = journal.save() {
                out.push(unknown("state", e));
                return out;
            }
        }
        // Force down and disable, marked.
        let mut trace = Vec::new();
        let reason = format!(
            "{MARKER}: fenced and evacuated at {}",
            crate::report::timestamp(std::time::SystemTime::now())
        );
        if !service.forced_down {
            if let Err(e) = nova.force_down(&service.id, true, ctx.deadline, &mut trace) {
                out.push(os_failure(host, "forcing nova-compute down", e, trace));
                return out;
            }
        }
        if service.status != "disabled" {
            if let Err(e) = nova.set_enabled(&service.id, Some(&reason), ctx.deadline, &mut trace) {
                out.push(os_failure(host, "disabling nova-compute", e, trace));
                return out;
            }
        }
        let mut r = Record::new(
            CHECK,
            host,
            Status::Ok,
            format!("{host}: forced down and disabled ({reason})"),
        );
        r.event = Some("force_down".into());
        r.trace = std::mem::take(&mut trace);
        out.extend(ctx.emit_now(vec![r]));
        if let Some(j) = journal.value.hosts.get_mut(host) {
            j.forced_down = true;
            for s in chosen {
                j.instances.entry(s.id.clone()).or_insert_with(|| Job {
                    name: s.name.clone(),
                    was: s.status.clone(),
                    step: Step::Planned,
                    tries: 0,
                    baseline: u64::MAX,
                    migration: None,
                    request_ids: Vec::new(),
                    moved_to: None,
                    locked: false,
                    why: None,
                    seconds: None,
                    submitted_at: None,
                    priority: super::priority_of(s, self.priority_key.as_deref()),
                    target: None,
                    arrives_stopped: false,
                });
            }
        }
        if let Err(e) = journal.save() {
            out.push(unknown("state", e));
            return out;
        }
        // Every instance of this evacuation: those not finished are moved
        // on; those finished (by a run that was killed, perhaps before it
        // unlocked them or said so) are unlocked if need be and reported,
        // so the summary is of the whole evacuation.
        let jobs: Vec<(String, i64)> = journal
            .value
            .hosts
            .get(host)
            .map(|j| {
                j.instances
                    .iter()
                    .map(|(id, job)| (id.clone(), job.priority))
                    .collect()
            })
            .unwrap_or_default();
        let shared = Mutex::new(&mut *journal);
        let next_submit = Mutex::new(Instant::now());
        // Each instance's record goes out as it is decided (when the output
        // streams); the statuses are kept for the summary.
        // Group by group (--priority-key), the highest first, each finished
        // before the next begins.
        let mut results: Vec<(Status, Vec<Record>)> = Vec::new();
        for group in super::groups(&jobs) {
            results.extend(crate::pool::run_all(
                &group,
                ctx,
                self.concurrency as usize,
                &|id: &String| {
                    let r = self.move_one(host, id, session, &shared, &next_submit, ctx);
                    (r.status, ctx.emit_now(vec![r]))
                },
                &|id: &String| {
                    let r = Record::new(
                        CHECK,
                        id,
                        ctx.timeout_state,
                        format!("{id}: not reached before the deadline; the journal keeps it for the next run"),
                    );
                    (r.status, vec![r])
                },
            ));
        }
        let moved = results.iter().filter(|(s, _)| *s == Status::Ok).count();
        let failed = results.len() - moved;
        let secs: Vec<f64> = journal
            .value
            .hosts
            .get(host)
            .map(|j| j.instances.values().filter_map(|i| i.seconds).collect())
            .unwrap_or_default();
        out.extend(results.into_iter().flat_map(|(_, r)| r));
        let all_final = journal
            .value
            .hosts
            .get(host)
            .is_some_and(|j| j.instances.values().all(|i| i.step.is_final()));
        if all_final {
            if let Some(j) = journal.value.hosts.get_mut(host) {
                j.finished = Some(super::now_unix());
            }
        }
        let _ = journal.save();
        let mut s = Record::new(
            CHECK,
            host,
            if failed == 0 { Status::Ok } else { Status::Critical },
            format!(
                "{host}: {moved} evacuated, {failed} failed; it stays forced down and disabled until evacuate --reenable {host}",
            ),
        );
        s.event = Some("summary".into());
        s.detail("moved", moved);
        s.detail("failed", failed);
        s.metrics
            .push(Metric::new("moved", moved as f64, "").min(0.0));
        s.metrics
            .push(Metric::new("failed", failed as f64, "").min(0.0));
        if !secs.is_empty() {
            let mean = (secs.iter().sum::<f64>() / secs.len() as f64 * 100.0).round() / 100.0;
            s.detail("seconds_per_instance", mean);
            s.metrics
                .push(Metric::new("seconds_per_instance", mean, "s").min(0.0));
        }
        out.push(s);
        out
    }

    /// Power the host off and read it back.
    fn fence(&self, host: &str, p: &Prepared, ctx: &Context) -> Record {
        let Some((off, _, _)) = &p.fence else {
            return Record::new(CHECK, host, Status::Warning, format!("{host}: NOT FENCED (--no-fence --i-understand-unfenced): its VMs may still run"));
        };
        let sub = |argv: &[String]| -> Vec<String> {
            argv.iter().map(|w| w.replace("{host}", host)).collect()
        };
        let by = (Instant::now() + self.fence_timeout).min(ctx.deadline);
        match crate::command::output(&sub(off), &[], by, 64 * 1024) {
            Ok(o) if o.code == Some(0) => {}
            Ok(o) => {
                return Record::new(
                    CHECK,
                    host,
                    Status::Critical,
                    format!(
                        "{host}: the fence command failed (exit {}{}); nothing forced down",
                        o.code
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "by signal".into()),
                        if o.stderr_tail.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", o.stderr_tail)
                        }
                    ),
                )
            }
            Err(e) => {
                return Record::new(
                    CHECK,
                    host,
                    Status::Critical,
                    format!("{host}: {e}; nothing forced down"),
                )
            }
        }
        match self.power_off(host, p, ctx) {
            Ok(said) => Record::new(
                CHECK,
                host,
                Status::Ok,
                format!("{host}: fenced, power off read back ({said})"),
            ),
            Err(why) => Record::new(
                CHECK,
                host,
                Status::Critical,
                format!("{host}: {why}; nothing forced down"),
            ),
        }
    }

    /// Read the host's power state back with --fence-status: the line that
    /// says off, or why it does not.
    fn power_off(&self, host: &str, p: &Prepared, ctx: &Context) -> Result<String, String> {
        let Some((_, status, want)) = &p.fence else {
            return Err("no --fence-status to read the power state with".into());
        };
        let argv: Vec<String> = status.iter().map(|w| w.replace("{host}", host)).collect();
        let by = (Instant::now() + self.fence_timeout).min(ctx.deadline);
        match crate::command::output(&argv, &[], by, 64 * 1024) {
            Ok(o) if o.code == Some(0) => {
                let text = String::from_utf8_lossy(&o.stdout);
                match text.lines().find(|l| want.is_match(l)) {
                    Some(line) => Ok(line.trim().to_string()),
                    None => Err(format!(
                        "power off not read back ({:?} does not match --fence-off)",
                        text.trim().chars().take(120).collect::<String>()
                    )),
                }
            }
            Ok(o) => Err(format!(
                "the power status command failed (exit {})",
                o.code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "by signal".into())
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Lock, evacuate, follow and unlock one instance, the journal written
    /// before each call.
    fn move_one(
        &self,
        host: &str,
        id: &str,
        session: &Session,
        journal: &Mutex<&mut Locked<Journal>>,
        next_submit: &Mutex<Instant>,
        ctx: &Context,
    ) -> Record {
        let nova = Nova(session);
        let mut trace: Vec<TraceStep> = Vec::new();
        let get = |journal: &Mutex<&mut Locked<Journal>>| -> Option<Job> {
            let j = journal.lock().unwrap_or_else(|p| p.into_inner());
            j.value.hosts.get(host)?.instances.get(id).cloned()
        };
        let put = |journal: &Mutex<&mut Locked<Journal>>, job: &Job| -> Result<(), String> {
            let mut j = journal.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(h) = j.value.hosts.get_mut(host) {
                h.instances.insert(id.to_string(), job.clone());
            }
            j.save()
        };
        let Some(mut job) = get(journal) else {
            return unknown(id, format!("{id}: not in the journal"));
        };
        let started = Instant::now();
        let done = |job: &Job, status: Status, summary: String, trace: Vec<TraceStep>| {
            let mut r = Record::new(CHECK, id, status, summary);
            r.duration_ms = crate::report::round_ms(started.elapsed());
            r.name.clone_from(&job.name);
            r.event = Some("instance".into());
            r.detail("host", host);
            r.detail("step", json!(job.step));
            r.detail("tries", job.tries);
            if let Some(m) = job.migration {
                r.detail("migration", m);
            }
            if !job.request_ids.is_empty() {
                r.detail("request_ids", json!(job.request_ids));
            }
            if let Some(t) = &job.moved_to {
                r.detail("moved_to", t.as_str());
            }
            if let Some(s) = job.seconds {
                r.detail("seconds", s);
            }
            r.trace = trace;
            r
        };
        let until = Instant::now() + self.instance_timeout;
        // Whether this run made an evacuate call for it.
        let mut called = false;
        loop {
            if Instant::now() >= ctx.deadline {
                return done(
                    &job,
                    ctx.timeout_state,
                    format!(
                        "{}: the deadline came at {:?}; the next run goes on",
                        job.name, job.step
                    ),
                    trace,
                );
            }
            match job.step {
                Step::Planned => {
                    // The evacuations it had before ours.
                    let before =
                        match nova.migrations(id, Some("evacuation"), ctx.deadline, &mut trace) {
                            Ok(m) => m.iter().map(|m| m.id).max().unwrap_or(0),
                            Err(e) => {
                                return done(
                                    &job,
                                    e.status(),
                                    format!("{}: cannot read its migrations: {e}", job.name),
                                    trace,
                                )
                            }
                        };
                    if job.baseline == u64::MAX {
                        job.baseline = before;
                    }
                    // Lock it for the move (2.73: with a reason). The journal
                    // says so before the call, so a run killed after it
                    // still unlocks what it locked.
                    if !job.locked {
                        job.locked = true;
                        if let Err(e) = put(journal, &job) {
                            return done(
                                &job,
                                Status::Unknown,
                                format!("{}: not locked: {e}", job.name),
                                trace,
                            );
                        }
                        let body = json!({"lock": {"locked_reason": format!("{MARKER}: evacuating off {host}")}});
                        match nova.action_at(id, &body, "2.73", ctx.deadline, &mut trace) {
                            Ok(a) if (200..300).contains(&a.status) => {}
                            // Locked by someone else: theirs to unlock.
                            Ok(a) if a.status == 409 => {
                                job.locked = false;
                                let _ = put(journal, &job);
                            }
                            Ok(a) => {
                                job.locked = false;
                                let _ = put(journal, &job);
                                trace.push(TraceStep::new(
                                    "lock",
                                    false,
                                    Duration::ZERO,
                                    Some(format!(
                                        "lock answered HTTP {}: {}",
                                        a.status,
                                        crate::openstack::client::error_message(&a.body)
                                    )),
                                ))
                            }
                            // Unknown whether it took: kept as ours, so it
                            // is unlocked after (unlocking an unlocked
                            // server changes nothing).
                            Err(e) => trace.push(TraceStep::new(
                                "lock",
                                false,
                                Duration::ZERO,
                                Some(e.to_string()),
                            )),
                        }
                    }
                    // The stagger between submissions.
                    {
                        let mut next = next_submit.lock().unwrap_or_else(|p| p.into_inner());
                        let wait = next.saturating_duration_since(Instant::now());
                        std::thread::sleep(wait.min(ctx.remaining()));
                        *next = Instant::now() + self.stagger;
                    }
                    job.step = Step::Submitting;
                    job.tries += 1;
                    job.submitted_at.get_or_insert(super::now_unix_f64());
                    if let Err(e) = put(journal, &job) {
                        return done(
                            &job,
                            Status::Unknown,
                            format!("{}: not submitted: {e}", job.name),
                            trace,
                        );
                    }
                    job.target = match &self.target_host {
                        Some(t) => Some(t.clone()),
                        None if self.recovery().reserved_for_try(job.tries) => {
                            match self.reserve(host, journal, session, ctx, &mut trace) {
                                Ok(t) => Some(t),
                                Err(why) => {
                                    job.step = Step::Failed;
                                    job.why = Some(why.clone());
                                    let _ = put(journal, &job);
                                    self.unlock(
                                        id, &mut job, &nova, journal, &put, ctx, &mut trace,
                                    );
                                    return done(
                                        &job,
                                        Status::Critical,
                                        format!("{}: not evacuated: {why}", job.name),
                                        trace,
                                    );
                                }
                            }
                        }
                        None => None,
                    };
                    let _ = put(journal, &job);
                    called = true;
                    let body = match &job.target {
                        Some(t) => json!({"evacuate": {"host": t}}),
                        None => json!({"evacuate": {}}),
                    };
                    // 2.95 leaves it stopped on arrival; a Nova without 2.95
                    // answers 406 before doing anything, and the call is made
                    // again at 2.53 (the power state it had is kept).
                    let answer = if self.stop_evacuated {
                        match nova.action_at(id, &body, "2.95", ctx.deadline, &mut trace) {
                            Ok(a) if a.status == 406 => {
                                trace.push(TraceStep::new(
                                    "microversion",
                                    false,
                                    Duration::ZERO,
                                    Some("Nova has no 2.95 (HTTP 406): evacuated at 2.53, its power state kept".into()),
                                ));
                                nova.action(id, &body, ctx.deadline, &mut trace)
                            }
                            Ok(a) => {
                                job.arrives_stopped = (200..300).contains(&a.status);
                                Ok(a)
                            }
                            other => other,
                        }
                    } else {
                        nova.action(id, &body, ctx.deadline, &mut trace)
                    };
                    if let Ok(Answer {
                        request_id: Some(rid),
                        ..
                    }) = &answer
                    {
                        job.request_ids.push(rid.clone());
                    }
                    match answer {
                        Ok(a) if (200..300).contains(&a.status) => {
                            job.step = Step::Submitted;
                            let _ = put(journal, &job);
                        }
                        Ok(a) => {
                            job.why = Some(format!(
                                "evacuate answered HTTP {}: {}",
                                a.status,
                                crate::openstack::client::error_message(&a.body)
                            ));
                            job.step = if job.tries >= self.retries {
                                Step::Failed
                            } else {
                                Step::Planned
                            };
                            let _ = put(journal, &job);
                            if job.step == Step::Failed {
                                self.unlock(id, &mut job, &nova, journal, &put, ctx, &mut trace);
                                let why = job.why.clone().unwrap_or_default();
                                return done(
                                    &job,
                                    Status::Critical,
                                    format!("{}: not evacuated: {why}", job.name),
                                    trace,
                                );
                            }
                        }
                        // Unknown whether Nova took it: Submitting stays, and the
                        // migrations will say.
                        Err(e) => trace.push(TraceStep::new(
                            "evacuate",
                            false,
                            Duration::ZERO,
                            Some(e.to_string()),
                        )),
                    }
                }
                Step::Submitting => {
                    // Did the call we made reach Nova? Its migrations say
                    // (Nova makes the migration before it answers).
                    match nova.migrations(id, Some("evacuation"), ctx.deadline, &mut trace) {
                        Ok(m) if m.iter().any(|m| m.id > job.baseline) => {
                            job.step = Step::Submitted;
                            let _ = put(journal, &job);
                        }
                        Ok(_) => {
                            // Never reached Nova: submit again. A call this
                            // run made counts as a try; one a killed run
                            // meant to make had no effect and does not.
                            if !called {
                                job.tries = job.tries.saturating_sub(1);
                            }
                            job.step = if job.tries >= self.retries {
                                Step::Failed
                            } else {
                                Step::Planned
                            };
                            job.why = Some("the evacuate call never reached Nova".into());
                            let _ = put(journal, &job);
                            if job.step == Step::Failed {
                                self.unlock(id, &mut job, &nova, journal, &put, ctx, &mut trace);
                                return done(
                                    &job,
                                    Status::Critical,
                                    format!(
                                        "{}: not evacuated: no migration after {} calls",
                                        job.name, job.tries
                                    ),
                                    trace,
                                );
                            }
                        }
                        Err(e) => {
                            trace.push(TraceStep::new(
                                "migrations",
                                false,
                                Duration::ZERO,
                                Some(e.to_string()),
                            ));
                            std::thread::sleep(Duration::from_secs(1).min(ctx.remaining()));
                        }
                    }
                }
                Step::Submitted => {
                    let server = nova.server(id, ctx.deadline, &mut trace);
                    let migrations =
                        nova.migrations(id, Some("evacuation"), ctx.deadline, &mut trace);
                    let (server, migrations) = match (server, migrations) {
                        (Ok(s), Ok(m)) => (s, m),
                        (Err(e), _) | (_, Err(e)) => {
                            if Instant::now() >= until {
                                return done(
                                    &job,
                                    Status::Critical,
                                    format!(
                                        "{}: not verified within --instance-timeout: {e}",
                                        job.name
                                    ),
                                    trace,
                                );
                            }
                            std::thread::sleep(Duration::from_secs(1).min(ctx.remaining()));
                            continue;
                        }
                    };
                    job.migration = migrations
                        .iter()
                        .filter(|m| m.id > job.baseline)
                        .map(|m| m.id)
                        .max();
                    let want = if job.arrives_stopped {
                        "SHUTOFF"
                    } else {
                        job.was.as_str()
                    };
                    match progress(&server, &migrations, job.baseline, host, want) {
                        Progress::Arrived(to) => {
                            job.step = Step::Verified;
                            job.seconds = job.submitted_at.map(|t| {
                                ((super::now_unix_f64() - t).max(0.0) * 100.0).round() / 100.0
                            });
                            job.moved_to = Some(to.clone());
                            let _ = put(journal, &job);
                            self.unlock(id, &mut job, &nova, journal, &put, ctx, &mut trace);
                            return done(
                                &job,
                                Status::Ok,
                                format!(
                                    "{}: evacuated to {to}, {} (migration {})",
                                    job.name,
                                    server.status,
                                    job.migration.unwrap_or(0)
                                ),
                                trace,
                            );
                        }
                        Progress::Failed(why) => {
                            job.why = Some(why.clone());
                            // A newer migration is needed to try again.
                            job.baseline = job.migration.unwrap_or(job.baseline);
                            job.step = if job.tries >= self.retries {
                                Step::Failed
                            } else {
                                Step::Planned
                            };
                            let _ = put(journal, &job);
                            if job.step == Step::Failed {
                                self.unlock(id, &mut job, &nova, journal, &put, ctx, &mut trace);
                                return done(
                                    &job,
                                    Status::Critical,
                                    format!(
                                        "{}: evacuation failed after {} tries: {why}",
                                        job.name, job.tries
                                    ),
                                    trace,
                                );
                            }
                        }
                        Progress::Moving(what) => {
                            if Instant::now() >= until {
                                job.why =
                                    Some(format!("not arrived within --instance-timeout ({what})"));
                                let _ = put(journal, &job);
                                return done(&job, Status::Critical, format!("{}: not arrived within {}: {what}; the journal keeps following it", job.name, humantime::format_duration(self.instance_timeout)), trace);
                            }
                            std::thread::sleep(Duration::from_secs(1).min(ctx.remaining()));
                        }
                    }
                }
                Step::Verified => {
                    // A run killed between verifying and unlocking.
                    self.unlock(id, &mut job, &nova, journal, &put, ctx, &mut trace);
                    return done(
                        &job,
                        Status::Ok,
                        format!(
                            "{}: evacuated to {}",
                            job.name,
                            job.moved_to.clone().unwrap_or_default()
                        ),
                        trace,
                    );
                }
                Step::Failed => {
                    self.unlock(id, &mut job, &nova, journal, &put, ctx, &mut trace);
                    return done(
                        &job,
                        Status::Critical,
                        format!(
                            "{}: failed: {}",
                            job.name,
                            job.why.clone().unwrap_or_default()
                        ),
                        trace,
                    );
                }
            }
        }
    }

    /// A reserved host for the next instance (the least used), enabled
    /// first if this evacuation has not yet taken it out of the reserve.
    fn reserve(
        &self,
        host: &str,
        journal: &Mutex<&mut Locked<Journal>>,
        session: &Session,
        ctx: &Context,
        trace: &mut Vec<TraceStep>,
    ) -> Result<String, String> {
        let nova = Nova(session);
        let mut j = journal.lock().unwrap_or_else(|p| p.into_inner());
        let job = j
            .value
            .hosts
            .get(host)
            .ok_or("the host is not in the journal")?;
        let sent: Vec<&Job> = job.instances.values().collect();
        let chosen = super::least_used(&self.reserved, &sent)
            .ok_or("no --reserved host")?
            .clone();
        if job.reserved_enabled.contains(&chosen) {
            return Ok(chosen);
        }
        let service = nova
            .services("nova-compute", Some(&chosen), ctx.deadline, trace)
            .map_err(|e| format!("reserved host {chosen}: {e}"))?
            .into_iter()
            .find(|s| s.host == chosen)
            .ok_or_else(|| format!("reserved host {chosen}: no such nova-compute"))?;
        // The journal says so before Nova is changed.
        if let Some(h) = j.value.hosts.get_mut(host) {
            h.reserved_enabled.push(chosen.clone());
        }
        j.save()?;
        if service.status != "enabled" {
            nova.set_enabled(&service.id, None, ctx.deadline, trace)
                .map_err(|e| format!("enabling reserved host {chosen}: {e}"))?;
        }
        Ok(chosen)
    }

    #[allow(clippy::too_many_arguments)]
    fn unlock(
        &self,
        id: &str,
        job: &mut Job,
        nova: &Nova,
        journal: &Mutex<&mut Locked<Journal>>,
        put: &Put,
        ctx: &Context,
        trace: &mut Vec<TraceStep>,
    ) {
        if !job.locked {
            return;
        }
        match nova.action(id, &json!({"unlock": null}), ctx.deadline, trace) {
            Ok(a) if (200..300).contains(&a.status) => {
                job.locked = false;
                let _ = put(journal, job);
            }
            Ok(a) => trace.push(TraceStep::new(
                "unlock",
                false,
                Duration::ZERO,
                Some(format!("unlock answered HTTP {}", a.status)),
            )),
            Err(e) => trace.push(TraceStep::new(
                "unlock",
                false,
                Duration::ZERO,
                Some(e.to_string()),
            )),
        }
    }

    /// Unset force-down and enable a host evacuate disabled, once nothing of
    /// it is in flight and its nova-compute reports again.
    fn reenable(
        &self,
        host: &str,
        session: &Session,
        mut journal: Option<&mut Locked<Journal>>,
        ctx: &Context,
    ) -> Record {
        let nova = Nova(session);
        let mut trace = Vec::new();
        let service = match nova.services("nova-compute", Some(host), ctx.deadline, &mut trace) {
            Ok(s) => s.into_iter().find(|s| s.host == host),
            Err(e) => return os_failure(host, "reading its nova-compute", e, trace),
        };
        let Some(service) = service else {
            return unknown(host, format!("no nova-compute service is named {host}"));
        };
        let in_flight =
            match nova.migrations_from(host, Some("evacuation"), ctx.deadline, &mut trace) {
                Ok(m) => m
                    .into_iter()
                    .filter(|m| {
                        !matches!(
                            m.status.as_str(),
                            "completed" | "failed" | "error" | "cancelled" | "done"
                        )
                    })
                    .map(|m| format!("{} ({})", m.instance_uuid, m.status))
                    .collect::<Vec<_>>(),
                Err(e) => return os_failure(host, "reading its migrations", e, trace),
            };
        // Servers this evacuation locked and could not unlock (an unlock
        // refused, or a run killed after the move): unlocked now.
        if let Some(j) = journal.as_mut() {
            let locked: Vec<String> = j
                .value
                .hosts
                .get(host)
                .map(|h| {
                    h.instances
                        .iter()
                        .filter(|(_, job)| job.step.is_final() && job.locked)
                        .map(|(id, _)| id.clone())
                        .collect()
                })
                .unwrap_or_default();
            for id in locked {
                if let Ok(a) = nova.action(&id, &json!({"unlock": null}), ctx.deadline, &mut trace)
                {
                    if (200..300).contains(&a.status) || a.status == 404 {
                        if let Some(job) = j
                            .value
                            .hosts
                            .get_mut(host)
                            .and_then(|h| h.instances.get_mut(&id))
                        {
                            job.locked = false;
                        }
                        let _ = j.save();
                    }
                }
            }
        }
        let unfinished: Vec<String> = journal
            .as_ref()
            .and_then(|j| j.value.hosts.get(host))
            .map(|h| {
                h.instances
                    .iter()
                    .filter(|(_, j)| !j.step.is_final() || j.locked)
                    .map(|(id, j)| {
                        if j.step.is_final() {
                            format!("{} ({id}, still locked)", j.name)
                        } else {
                            format!("{} ({id})", j.name)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let refuse = |why: String, trace: Vec<TraceStep>| {
            let mut r = Record::new(
                CHECK,
                host,
                Status::Critical,
                format!("{host}: not re-enabled: {why}; it stays forced down and disabled"),
            );
            r.trace = trace;
            r.event = Some("reenable".into());
            r
        };
        if !in_flight.is_empty() {
            return refuse(
                format!("evacuations still in flight: {}", in_flight.join(", ")),
                trace,
            );
        }
        if !unfinished.is_empty() {
            return refuse(
                format!(
                    "the journal has unfinished instances: {}",
                    unfinished.join(", ")
                ),
                trace,
            );
        }
        // Its own reports, not our writes: a PUT to the service moves
        // updated_at too, so the compute is reporting when updated_at moves
        // on by itself while we watch (Nova's report_interval is 10 s).
        let first = service.updated_at.clone();
        let watched = Instant::now();
        let service = loop {
            std::thread::sleep(Duration::from_secs(2).min(ctx.remaining()));
            let now = match nova.services("nova-compute", Some(host), ctx.deadline, &mut trace) {
                Ok(s) => s.into_iter().find(|s| s.host == host),
                Err(e) => return os_failure(host, "reading its nova-compute", e, trace),
            };
            let Some(now) = now else {
                return unknown(host, format!("no nova-compute service is named {host}"));
            };
            let fresh = self
                .service_stale(&now)
                .is_some_and(|a| a < self.service_down_time.as_secs());
            if now.updated_at != first && fresh {
                break now;
            }
            if ctx.remaining() < Duration::from_secs(3) {
                let age = self.service_stale(&now);
                return refuse(
                    format!(
                        "its nova-compute is not reporting ({}; unchanged for {} s)",
                        age.map(|a| format!("last report {a} s ago"))
                            .unwrap_or_else(|| "no report".into()),
                        watched.elapsed().as_secs()
                    ),
                    trace,
                );
            }
        };
        // Nova refuses (400) until the returned compute has cleaned up its
        // evacuated instances: ask again until the deadline.
        if service.forced_down {
            loop {
                match nova.force_down(&service.id, false, ctx.deadline, &mut trace) {
                    Ok(_) => break,
                    Err(e)
                        if e.http_status() == Some(400)
                            && ctx.remaining() > Duration::from_secs(2) =>
                    {
                        std::thread::sleep(Duration::from_secs(2));
                    }
                    Err(e) => return os_failure(host, "unsetting force-down", e, trace),
                }
            }
        }
        let ours = service
            .disabled_reason
            .as_deref()
            .is_some_and(|r| r.starts_with(MARKER));
        if service.status == "disabled" && ours {
            if let Err(e) = nova.set_enabled(&service.id, None, ctx.deadline, &mut trace) {
                return os_failure(host, "enabling nova-compute", e, trace);
            }
        }
        if let Some(j) = journal {
            if let Some(h) = j.value.hosts.get_mut(host) {
                h.forced_down = false;
            }
            let _ = j.save();
        }
        let mut r = Record::new(
            CHECK,
            host,
            Status::Ok,
            if service.status == "disabled" && !ours {
                format!(
                    "{host}: force-down unset; left disabled (not disabled by evacuate: {:?})",
                    service.disabled_reason.unwrap_or_default()
                )
            } else {
                format!("{host}: force-down unset and enabled")
            },
        );
        r.event = Some("reenable".into());
        r.trace = trace;
        r
    }
}

/// The properties of the images the tag may have to be read from (one
/// Glance call per distinct image); an image that cannot be read is kept
/// with why, so its instances are left rather than guessed at.
fn image_properties(
    servers: &[Server],
    p: &Prepared,
    session: &Session,
    ctx: &Context,
    trace: &mut Vec<TraceStep>,
) -> ImageProperties {
    let glance = crate::openstack::glance::Glance(session);
    let mut images = ImageProperties::new();
    for id in servers.iter().filter_map(|s| p.selection.needs_image(s)) {
        if images.contains_key(&id) {
            continue;
        }
        let read = glance
            .properties(&id, ctx.deadline, trace)
            .map_err(|e| e.to_string());
        images.insert(id, read);
    }
    images
}

fn os_failure(host: &str, doing: &str, e: OsError, trace: Vec<TraceStep>) -> Record {
    let mut r = Record::new(CHECK, host, e.status(), format!("{host}: {doing}: {e}"));
    r.trace = trace;
    r
}
