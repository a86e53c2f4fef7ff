//! `probe-host --verdict`: gather every signal (API calls, crm_mon, peer
//! records while the hosts' networks and the control targets are probed;
//! then the servers of the hosts that did not answer everywhere), decide
//! each host through the table, pass the verdicts through the samples and
//! the observer gates, and say why in each record.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use super::{Args, PortResult, ProbeSpec, Probed, Run, CHECK};
use crate::cli::{Context, UsageError};
use crate::host::signals::{self, Reading};
use crate::host::verdict::{
    apply_gates, Gates, Judged, Observer, Table, Verdict, VerdictState, DEFAULT_TABLE,
};
use crate::host::HostSpec;
use crate::net::ConnectFailure;
use crate::openstack::client::Session;
use crate::openstack::neutron::{Agent, Neutron};
use crate::openstack::nova::{ComputeService, Nova, Server};
use crate::report::{Record, Status, TraceStep};

/// More hosts than this without an answer everywhere: their servers come
/// from one listing of every server, not a listing per host.
const PER_HOST_LISTINGS: usize = 8;

/// The hypervisor's own ports when -p is not given.
pub const DEFAULT_PORTS: &[u16] = &[22, 111, 16509];

/// How another network's address is made from the management one.
#[derive(Debug, Clone, PartialEq)]
pub enum Derive {
    /// Keep the host part under this prefix.
    Prefix(IpAddr, u8),
    /// Add this to the address.
    Offset(i128),
}

/// Parse `NAME=PREFIX/LEN` or `NAME=+N`.
pub fn parse_network(text: &str) -> Result<(String, Derive), String> {
    let (name, rule) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: want NAME=PREFIX/LEN or NAME=+N"))?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("{text:?}: the network needs a name"));
    }
    let rule = rule.trim();
    if let Some((ip, len)) = rule.split_once('/') {
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("{text:?}: {ip:?} is not an address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{text:?}: /{len} is not a prefix length (0-{max})"))?;
        return Ok((name.to_string(), Derive::Prefix(ip, len)));
    }
    let n: i128 = rule
        .trim_start_matches('+')
        .parse()
        .map_err(|_| format!("{text:?}: {rule:?} is neither PREFIX/LEN nor +N"))?;
    Ok((name.to_string(), Derive::Offset(n)))
}

impl Derive {
    /// The address on that network of the host at `ip`.
    pub fn apply(&self, ip: IpAddr) -> Option<IpAddr> {
        match (self, ip) {
            (Derive::Prefix(IpAddr::V4(p), len), IpAddr::V4(a)) => {
                let mask = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
                Some(IpAddr::V4(
                    (u32::from(*p) & mask | u32::from(a) & !mask).into(),
                ))
            }
            (Derive::Prefix(IpAddr::V6(p), len), IpAddr::V6(a)) => {
                let mask = if *len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                Some(IpAddr::V6(
                    (u128::from(*p) & mask | u128::from(a) & !mask).into(),
                ))
            }
            (Derive::Offset(n), IpAddr::V4(a)) => u32::try_from(i128::from(u32::from(a)) + n)
                .ok()
                .map(|v| IpAddr::V4(v.into())),
            (Derive::Offset(n), IpAddr::V6(a)) => {
                u128::try_from(i128::try_from(u128::from(a)).ok()? + n)
                    .ok()
                    .map(|v| IpAddr::V6(v.into()))
            }
            _ => None,
        }
    }
}

/// What `prepare` makes of the verdict's flags.
pub struct VerdictRun {
    table: Table,
    networks: Vec<String>,
    derive: Vec<(String, Derive)>,
    gathered: BTreeSet<&'static str>,
    session: Option<Session>,
    crm_mon: Option<Vec<String>>,
    bmc: Option<String>,
    controls: Vec<(String, Option<u16>)>,
    gates: Gates,
    instance_ports: Vec<u16>,
    memory: Mutex<VerdictState>,
}

/// Check the verdict's flags and files.
pub fn prepare(args: &Args, hosts: &[HostSpec]) -> Result<VerdictRun, UsageError> {
    let v = &args.verdict;
    let usage = |what: &str, e: String| UsageError::new(format!("{what}: {e}"));
    let derive: Vec<(String, Derive)> = v
        .networks
        .iter()
        .map(|n| parse_network(n).map_err(|e| usage("--network", e)))
        .collect::<Result<_, _>>()?;
    let mut networks = vec![v.management_network.clone()];
    for (name, _) in &derive {
        if networks.contains(name) {
            return Err(usage("--network", format!("{name:?} is given twice")));
        }
        networks.push(name.clone());
    }
    for h in hosts {
        for name in h.networks.keys() {
            if !networks.contains(name) {
                networks.push(name.clone());
            }
        }
    }
    let mut gathered: BTreeSet<&'static str> = ["networks"].into_iter().collect();
    if v.openstack {
        for s in ["instances", "nova", "neutron"] {
            if !v.skip.iter().any(|k| k == s) {
                gathered.insert(s);
            }
        }
    }
    if v.pacemaker {
        gathered.insert("cluster");
    }
    if !v.peer_records.is_empty() {
        gathered.insert("peers");
    }
    let (text, source) = match &v.table {
        Some(path) => (
            crate::files::read_text(path, crate::files::CONFIG_MAX)
                .map_err(|e| usage(&format!("decision table {}", path.display()), e))?,
            path.display().to_string(),
        ),
        None => (DEFAULT_TABLE.to_string(), "(the default)".to_string()),
    };
    let table = Table::parse(&text, &source, &networks, &gathered)?;
    if v.hypervisors && !v.openstack {
        return Err(UsageError::new(
            "--hypervisors reads Nova: give --openstack (and the --os-* flags) too",
        ));
    }
    let session = if v.openstack {
        Some(args.os.session()?)
    } else {
        None
    };
    let crm_mon = if v.pacemaker {
        Some(crate::command::split(&v.crm_mon).map_err(|e| usage("--crm-mon", e))?)
    } else {
        None
    };
    if let Some(b) = &v.bmc_command {
        crate::command::split(b).map_err(|e| usage("--bmc-command", e))?;
    }
    let controls = v
        .control
        .iter()
        .map(|c| crate::net::host_port(c).map_err(|e| usage("--control", e)))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(n) = v.control_min {
        if n == 0 || n > controls.len() {
            return Err(usage(
                "--control-min",
                format!("{n}: want 1 to the {} --control targets", controls.len()),
            ));
        }
    }
    let mut instance_ports = Vec::new();
    for p in v.instance_port.iter().flatten() {
        if !instance_ports.contains(p) {
            instance_ports.push(*p);
        }
    }
    if v.cliff_runs == 0 {
        return Err(usage("--cliff-runs", "want 1 or more".into()));
    }
    Ok(VerdictRun {
        table,
        networks,
        derive,
        gathered,
        session,
        crm_mon,
        bmc: v.bmc_command.clone(),
        controls,
        gates: Gates {
            samples: v.samples,
            cliff: v.cliff.0,
            cliff_runs: v.cliff_runs,
            max_dead: v.max_dead,
            max_dead_percent: v.max_dead_percent.0,
            max_dead_per_zone: v.max_dead_per_zone,
            max_dead_per_aggregate: v.max_dead_per_aggregate,
        },
        instance_ports,
        memory: Mutex::new(VerdictState::default()),
    })
}

/// A host as judged: where its networks are.
struct Subject {
    spec: HostSpec,
    /// (network, address) per network of the run; None: not on it.
    nets: Vec<Option<String>>,
    why_none: Vec<Option<String>>,
    zone: Option<String>,
}

/// What phase 0 asked of the APIs and commands.
#[derive(Default)]
struct Gathered {
    services: Option<Result<Vec<ComputeService>, String>>,
    agents: Option<Result<Vec<Agent>, String>>,
    hypervisors: Option<Result<Vec<(String, String)>, String>>,
    cluster: Option<Result<signals::Cluster, String>>,
    aggregates: Option<Result<Vec<crate::openstack::nova::Aggregate>, String>>,
    trace: Vec<TraceStep>,
}

impl Args {
    pub(super) fn verdict_round(&self, run: &Run, v: &VerdictRun, ctx: &Context) -> Vec<Record> {
        let started = Instant::now();
        let deadline = ctx.deadline;
        let session = v.session.as_ref().map(|s| s.in_round(&ctx.round));
        // The control plane's view (API calls, crm_mon) is asked while the
        // hosts are probed; only Nova's hypervisors, when they are the
        // inventory, come first.
        let (gathered, (subjects, specs, index, control_at, probed, mut problems)) =
            self.gather(v, session.as_ref(), deadline, |hypervisors| {
                let mut problems: Vec<String> = Vec::new();
                let mut hosts: Vec<HostSpec> = run.hosts.clone();
                match hypervisors {
                    Some(Ok(list)) => {
                        for (name, ip) in list {
                            if !hosts.iter().any(|x| x.service_name() == name) {
                                let mut spec = HostSpec::plain(ip);
                                spec.name = name.clone();
                                hosts.push(spec);
                            }
                        }
                    }
                    Some(Err(e)) => problems.push(format!("Nova's hypervisors: {e}")),
                    None => {}
                }
                let subjects = self.subjects(v, hosts);
                // Every host's networks and the control targets, in one loop.
                let phase1 = deadline.min(Instant::now() + self.verdict.probe_timeout);
                let mut specs: Vec<ProbeSpec> = Vec::new();
                let mut index: Vec<Vec<Option<usize>>> = Vec::new();
                for s in &subjects {
                    let ports = s.spec.ports.clone().unwrap_or_else(|| run.ports.clone());
                    let mut row = Vec::new();
                    for a in &s.nets {
                        row.push(a.as_ref().map(|a| {
                            specs.push(ProbeSpec {
                                address: a.clone(),
                                ports: ports.clone(),
                                icmp: true,
                            });
                            specs.len() - 1
                        }));
                    }
                    index.push(row);
                }
                let control_at = specs.len();
                for (h, p) in &v.controls {
                    specs.push(ProbeSpec {
                        address: h.clone(),
                        ports: p.iter().copied().collect(),
                        icmp: p.is_none(),
                    });
                }
                let probed = self.probe(run, ctx, &specs, phase1);
                (subjects, specs, index, control_at, probed, problems)
            });
        let mut subjects = subjects;
        for s in &mut subjects {
            if s.zone.is_none() {
                s.zone = gathered
                    .services
                    .as_ref()
                    .and_then(|l| l.as_ref().ok())
                    .and_then(|l| l.iter().find(|x| x.host == s.spec.service_name()))
                    .and_then(|x| x.zone.clone());
            }
        }
        let now = SystemTime::now();
        // Each host's networks.
        let mut readings: Vec<BTreeMap<String, Reading>> = Vec::new();
        for (si, s) in subjects.iter().enumerate() {
            let mut r = BTreeMap::new();
            for (ni, n) in v.networks.iter().enumerate() {
                let reading = match index[si][ni] {
                    Some(i) => network_reading(&probed, i, &specs[i]),
                    None => Reading {
                        value: "none",
                        evidence: json!({"error": s.why_none[ni]}),
                    },
                };
                r.insert(n.clone(), reading);
            }
            readings.push(r);
        }
        // The control targets.
        let mut observer = Observer::default();
        let mut controls = Vec::new();
        let mut answered = 0;
        for (k, (h, p)) in v.controls.iter().enumerate() {
            let i = control_at + k;
            let r = network_reading(&probed, i, &specs[i]);
            let ok = matches!(r.value, "up" | "closed");
            answered += usize::from(ok);
            controls.push(
                json!({"target": match p { Some(p) => format!("{h}:{p}"), None => h.clone() },
                                 "answered": ok, "evidence": r.evidence}),
            );
        }
        let need = self.verdict.control_min.unwrap_or(v.controls.len());
        if answered < need {
            observer.impaired.push(format!(
                "{answered} of {} control targets answered, {need} needed",
                v.controls.len()
            ));
        }
        // A budget that cannot be counted holds every dead back.
        if let Some(Err(e)) = &gathered.aggregates {
            observer.impaired.push(format!(
                "Nova's aggregates cannot be read for --max-dead-per-aggregate: {}",
                crate::redact::urls_in(e)
            ));
        }
        // Nova and Neutron per host; the stale-for-all gate.
        let sdt = self.verdict.service_down_time;
        let adt = self.verdict.agent_down_time;
        if let Some(Ok(services)) = &gathered.services {
            let stale = services
                .iter()
                .filter(|s| signals::nova_stale(s, now, sdt))
                .count();
            if services.len() >= 2 && stale == services.len() {
                observer.impaired.push(format!(
                    "all {stale} nova-compute services are stale at once: Nova or its database is the problem, not the hosts"
                ));
            }
        }
        for (si, s) in subjects.iter().enumerate() {
            let host = s.spec.service_name();
            let r = &mut readings[si];
            if v.gathered.contains("nova") {
                r.insert(
                    "nova".into(),
                    match &gathered.services {
                        Some(Ok(list)) => signals::nova(list, host, now, sdt),
                        Some(Err(e)) => unknown(e),
                        None => unknown("not asked"),
                    },
                );
            }
            if v.gathered.contains("neutron") {
                r.insert(
                    "neutron".into(),
                    match &gathered.agents {
                        Some(Ok(list)) => signals::neutron(list, host, now, adt),
                        Some(Err(e)) => unknown(e),
                        None => unknown("not asked"),
                    },
                );
            }
            if let Some(c) = &gathered.cluster {
                let node = s.spec.cluster_node.as_deref().unwrap_or(&s.spec.name);
                r.insert("cluster".into(), signals::cluster(c, node));
            }
        }
        if v.gathered.contains("peers") {
            let me = ctx_hostname(self);
            let p = signals::read_peers(
                &self.verdict.peer_records,
                &me,
                self.verdict.peer_max_age,
                now,
            );
            problems.extend(p.problems.iter().take(5).cloned());
            for (si, s) in subjects.iter().enumerate() {
                readings[si].insert("peers".into(), signals::peers(&p, &s.spec.name));
            }
        }
        // Phase 2: the servers of hosts that did not answer on every network.
        if v.gathered.contains("instances") {
            self.instances(run, v, session.as_ref(), &subjects, &mut readings, ctx);
        }
        let table = &v.table;
        let mut judged: Vec<Judged> = Vec::new();
        let mut decided: Vec<(usize, String)> = Vec::new();
        let mut vectors = Vec::new();
        for (si, s) in subjects.iter().enumerate() {
            let values: BTreeMap<String, String> = readings[si]
                .iter()
                .map(|(k, r)| (k.clone(), r.value.to_string()))
                .collect();
            let vector = table.vector(&values);
            let (rule, verdict, why) = match table.decide(&vector) {
                Some((n, r)) => (n, r.verdict, r.why.clone()),
                // The table was proved total for this run; never here.
                None => (0, Verdict::Unknown, "no rule decides it".to_string()),
            };
            decided.push((rule, why));
            let mut aggregates: Vec<String> = s
                .spec
                .labels
                .get("aggregate")
                .map(|l| {
                    l.split(',')
                        .map(|a| a.trim().to_string())
                        .filter(|a| !a.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Ok(list)) = &gathered.aggregates {
                for a in list {
                    if a.hosts.iter().any(|h| h == s.spec.service_name())
                        && !aggregates.contains(&a.name)
                    {
                        aggregates.push(a.name.clone());
                    }
                }
            }
            judged.push(Judged {
                host: s.spec.name.clone(),
                zone: s.zone.clone(),
                aggregates,
                table: verdict,
                verdict,
                gate: None,
                samples: (0, 0),
            });
            vectors.push(vector);
        }
        // Samples and gates, with the state kept between runs.
        let mut state_note: Option<String> = None;
        let report = {
            let mut apply =
                |state: &mut VerdictState| apply_gates(&mut judged, state, &v.gates, &observer);
            match &self.verdict.state {
                Some(path) => match crate::state::update::<VerdictState, _>(path, &mut apply) {
                    Ok((r, notes)) => {
                        state_note = notes.into_iter().next();
                        r
                    }
                    Err(e) => {
                        // Without its samples, no run may call a host dead.
                        state_note = Some(e.clone());
                        observer
                            .impaired
                            .push(format!("the state cannot be read: {e}"));
                        let mut fresh = VerdictState::default();
                        apply_gates(&mut judged, &mut fresh, &v.gates, &observer)
                    }
                },
                None => {
                    let mut m = v.memory.lock().unwrap_or_else(|p| p.into_inner());
                    apply(&mut m)
                }
            }
        };
        // BMC power states, for the hosts that are not alive, a few at once.
        let not_alive: Vec<usize> = (0..subjects.len())
            .filter(|i| judged[*i].verdict != Verdict::Alive)
            .collect();
        let mut bmc: BTreeMap<usize, Reading> = BTreeMap::new();
        if v.bmc.is_some() && !not_alive.is_empty() {
            let readings: Vec<Option<Reading>> = crate::pool::run_all(
                &not_alive,
                ctx,
                16,
                &|i: &usize| self.bmc_reading(v, &subjects[*i], deadline),
                &|_| Some(unknown("not asked before the deadline")),
            );
            for (i, r) in not_alive.iter().zip(readings) {
                if let Some(r) = r {
                    bmc.insert(*i, r);
                }
            }
        }
        let mut records = Vec::new();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (si, s) in subjects.iter().enumerate() {
            let j = &judged[si];
            *counts.entry(j.verdict.as_str()).or_default() += 1;
            let mut r = Record::new(CHECK, &s.spec.address, j.verdict.status(), "");
            r.name = s.spec.name.clone();
            r.labels = s.spec.labels.clone();
            let (rule, why) = &decided[si];
            let mut said = format!("{}: {why}", j.verdict.as_str());
            if let Some(g) = &j.gate {
                said = format!(
                    "{} ({} by the table: {why}): {g}",
                    j.verdict.as_str(),
                    j.table.as_str()
                );
            }
            let sig: serde_json::Map<String, Value> = readings[si]
                .iter()
                .map(|(k, rd)| (k.clone(), json!(rd.value)))
                .collect();
            let mut sig = sig;
            sig.insert(
                "networks".into(),
                json!(table.value(&vectors[si], "networks")),
            );
            // The evidence moves into the record (a copy of a thousand
            // hosts' evidence was a fifth of the run's peak memory).
            let mut evidence = serde_json::Map::new();
            for (k, rd) in std::mem::take(&mut readings[si]) {
                r.trace.push(TraceStep::new(
                    &k,
                    matches!(rd.value, "up" | "online" | "closed"),
                    std::time::Duration::ZERO,
                    Some(rd.value.to_string()),
                ));
                evidence.insert(k, rd.evidence);
            }
            r.detail("verdict", j.verdict.as_str());
            r.detail("table_verdict", j.table.as_str());
            r.detail("rule", *rule);
            r.detail("why", why.clone());
            if let Some(g) = &j.gate {
                r.detail("gate", g.clone());
            }
            r.detail("signals", Value::Object(sig));
            r.detail("evidence", Value::Object(evidence));
            r.detail(
                "samples",
                json!({"dead": j.samples.0, "of": j.samples.1, "need": v.gates.samples.need, "window": v.gates.samples.of}),
            );
            r.detail("nova_host", s.spec.service_name());
            if let Some(z) = &s.zone {
                r.detail("zone", z.clone());
            }
            if let Some(b) = bmc.remove(&si) {
                said.push_str(&format!("; BMC power {}", b.value));
                r.detail("bmc", b.evidence);
            }
            if j.verdict == Verdict::Dead {
                r.detail(
                    "masakari",
                    json!({
                        "type": "COMPUTE_HOST",
                        "hostname": s.spec.service_name(),
                        "payload": {"event": "STOPPED", "cluster_status": "OFFLINE", "host_status": "NORMAL"},
                    }),
                );
            }
            r.summary = said;
            r.duration_ms = crate::report::round_ms(started.elapsed());
            records.push(r);
        }
        // One record for the run: the gates and the counts.
        let inventory_failed = matches!(gathered.hypervisors, Some(Err(_)));
        let gate_status =
            if !report.observer_impaired.is_empty() || report.brake.is_some() || inventory_failed {
                Status::Unknown
            } else if report.cliff.is_some() || !problems.is_empty() {
                Status::Warning
            } else {
                Status::Ok
            };
        let mut words: Vec<String> = ["dead", "suspect", "unknown", "alive"]
            .iter()
            .map(|k| format!("{} {k}", counts.get(k).copied().unwrap_or(0)))
            .collect();
        words.insert(0, format!("{} hosts:", subjects.len()));
        let mut summary = words.join(" ");
        for w in &report.observer_impaired {
            summary.push_str(&format!("; observer impaired: {w}"));
        }
        if let Some((lost, of, left)) = report.cliff {
            summary.push_str(&format!(
                "; cliff: {lost} of {of} lost at once, {left} more run(s) before any dead"
            ));
        }
        if let Some(b) = &report.brake {
            summary.push_str(&format!("; brake: {b}"));
        }
        for p in &problems {
            summary.push_str(&format!("; {p}"));
        }
        let mut sum = Record::new(CHECK, "verdict", gate_status, summary);
        sum.name = "verdict".into();
        sum.event = Some("verdict_run".into());
        sum.trace = gathered.trace;
        sum.detail("summary_of_run", true);
        sum.detail("run", report.run);
        sum.detail("counts", json!(counts));
        sum.detail("controls", controls);
        sum.detail("gates", json!(report));
        sum.detail("networks", v.networks.clone());
        sum.detail("signals", v.gathered.iter().copied().collect::<Vec<&str>>());
        if let Some(n) = state_note {
            sum.detail("state_note", n);
        }
        if self.verdict.state.is_none() && v.gates.samples.need > 1 && self.common.every.is_none() {
            sum.detail(
                "note",
                "no --state: samples are not kept between runs, so no host reaches the samples a dead verdict needs",
            );
        }
        sum.duration_ms = crate::report::round_ms(started.elapsed());
        records.push(sum);
        records
    }

    /// Each host once (by name), with its address on every network.
    fn subjects(&self, v: &VerdictRun, hosts: Vec<HostSpec>) -> Vec<Subject> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut subjects = Vec::new();
        for h in hosts {
            if !seen.insert(h.name.clone()) {
                continue;
            }
            let mut nets = Vec::new();
            let mut why_none = Vec::new();
            for (i, n) in v.networks.iter().enumerate() {
                let (addr, why) = if i == 0 {
                    (Some(h.address.clone()), None)
                } else if let Some(a) = h.networks.get(n) {
                    (Some(a.clone()), None)
                } else if let Some((_, d)) = v.derive.iter().find(|(name, _)| name == n) {
                    match h.address.parse::<IpAddr>().ok().and_then(|ip| d.apply(ip)) {
                        Some(ip) => (Some(ip.to_string()), None),
                        None => (
                            None,
                            Some(format!(
                                "--network {n}: cannot make an address from {:?}",
                                h.address
                            )),
                        ),
                    }
                } else {
                    (None, Some("no address on this network".to_string()))
                };
                nets.push(addr);
                why_none.push(why);
            }
            subjects.push(Subject {
                zone: h.zone().map(String::from),
                spec: h,
                nets,
                why_none,
            });
        }
        subjects
    }

    /// Ask the APIs and crm_mon in threads of their own while `meanwhile`
    /// runs here (handed Nova's hypervisors first, when they were asked).
    fn gather<R: Send>(
        &self,
        v: &VerdictRun,
        session: Option<&Session>,
        deadline: Instant,
        meanwhile: impl FnOnce(Option<&Result<Vec<(String, String)>, String>>) -> R,
    ) -> (Gathered, R) {
        let mut out = Gathered::default();
        let mut result = None;
        std::thread::scope(|scope| {
            let nova = session.filter(|_| {
                v.gathered.contains("nova")
                    || self.verdict.hypervisors
                    || v.gathered.contains("instances")
            });
            let services = nova.filter(|_| v.gathered.contains("nova")).map(|s| {
                scope.spawn(move || {
                    let mut t = Vec::new();
                    let r = Nova(s).services("nova-compute", None, deadline, &mut t);
                    (r.map_err(|e| e.to_string()), t)
                })
            });
            let agents = session.filter(|_| v.gathered.contains("neutron")).map(|s| {
                scope.spawn(move || {
                    let mut t = Vec::new();
                    let r = Neutron(s).agents(None, deadline, &mut t);
                    (r.map_err(|e| e.to_string()), t)
                })
            });
            let hypervisors = nova.filter(|_| self.verdict.hypervisors).map(|s| {
                scope.spawn(move || {
                    let mut t = Vec::new();
                    let r = Nova(s).hypervisors(deadline, &mut t).map(|list| {
                        list.into_iter()
                            .filter_map(|h| {
                                let name = h
                                    .service
                                    .as_ref()
                                    .map(|s| s.host.clone())
                                    .unwrap_or(h.hypervisor_hostname);
                                h.host_ip.map(|ip| (name, ip))
                            })
                            .collect::<Vec<_>>()
                    });
                    (r.map_err(|e| e.to_string()), t)
                })
            });
            let aggregates = session
                .filter(|_| self.verdict.max_dead_per_aggregate.is_some())
                .map(|s| {
                    scope.spawn(move || {
                        let mut t = Vec::new();
                        let r = Nova(s).aggregates(deadline, &mut t);
                        (r.map_err(|e| e.to_string()), t)
                    })
                });
            let cluster = v.crm_mon.as_ref().map(|argv| {
                scope.spawn(move || {
                    let r = crate::command::output(argv, &[], deadline, 16 * 1024 * 1024);
                    let shown = argv.first().cloned().unwrap_or_default();
                    let r = match r {
                        Err(e) => Err(e.to_string()),
                        Ok(o) if o.code != Some(0) => Err(format!(
                            "{shown} exited {}{}",
                            o.code.map_or("on a signal".into(), |c| c.to_string()),
                            if o.stderr_tail.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", o.stderr_tail)
                            }
                        )),
                        Ok(o) => signals::parse_crm_mon(&String::from_utf8_lossy(&o.stdout))
                            .map_err(|e| format!("{shown}: {e}")),
                    };
                    let step = TraceStep::new(
                        "crm_mon",
                        r.is_ok(),
                        std::time::Duration::ZERO,
                        r.as_ref().err().cloned(),
                    );
                    (r, vec![step])
                })
            });
            // A thread's answer and its trace steps (a panic is an answer too).
            fn joined<T>(
                h: std::thread::ScopedJoinHandle<'_, (Result<T, String>, Vec<TraceStep>)>,
                trace: &mut Vec<TraceStep>,
            ) -> Result<T, String> {
                let (r, t) = h
                    .join()
                    .unwrap_or_else(|_| (Err("panicked".into()), Vec::new()));
                trace.extend(t);
                r
            }
            out.hypervisors = hypervisors.map(|h| joined(h, &mut out.trace));
            result = Some(meanwhile(out.hypervisors.as_ref()));
            out.services = services.map(|h| joined(h, &mut out.trace));
            out.agents = agents.map(|h| joined(h, &mut out.trace));
            out.aggregates = aggregates.map(|h| joined(h, &mut out.trace));
            out.cluster = cluster.map(|h| joined(h, &mut out.trace));
        });
        let result = result.expect("meanwhile ran inside the scope");
        (out, result)
    }

    /// The `instances` signal of each host that did not answer everywhere.
    fn instances(
        &self,
        run: &Run,
        v: &VerdictRun,
        session: Option<&Session>,
        subjects: &[Subject],
        readings: &mut [BTreeMap<String, Reading>],
        ctx: &Context,
    ) {
        let Some(session) = session else { return };
        let needs: Vec<usize> = (0..subjects.len())
            .filter(|i| {
                let values: BTreeMap<String, String> = readings[*i]
                    .iter()
                    .map(|(k, r)| (k.clone(), r.value.to_string()))
                    .collect();
                v.table.value(&v.table.vector(&values), "networks") != "up"
            })
            .collect();
        for (i, r) in readings.iter_mut().enumerate() {
            if !needs.contains(&i) {
                r.insert(
                    "instances".into(),
                    Reading {
                        value: "unknown",
                        evidence: json!({"not_probed": "the host answers on every network"}),
                    },
                );
            }
        }
        if needs.is_empty() {
            return;
        }
        // A few hosts: a listing each; many: one listing of every server.
        let lists: Vec<Result<Vec<Server>, String>> = if needs.len() > PER_HOST_LISTINGS {
            let mut t = Vec::new();
            match Nova(session).servers(None, ctx.deadline, &mut t) {
                Ok(all) => needs
                    .iter()
                    .map(|i| {
                        let host = subjects[*i].spec.service_name();
                        Ok(all
                            .iter()
                            .filter(|s| s.host.as_deref() == Some(host))
                            .cloned()
                            .collect())
                    })
                    .collect(),
                Err(e) => needs.iter().map(|_| Err(e.to_string())).collect(),
            }
        } else {
            crate::pool::run_all(
                &needs,
                ctx,
                16,
                &|i: &usize| {
                    let mut t = Vec::new();
                    Nova(session)
                        .servers_on_host(subjects[*i].spec.service_name(), ctx.deadline, &mut t)
                        .map_err(|e| e.to_string())
                },
                &|_| Err("not asked before the deadline".into()),
            )
        };
        // Which addresses of which servers, per host.
        let mut specs: Vec<ProbeSpec> = Vec::new();
        let mut owners: Vec<(usize, String, String)> = Vec::new();
        for (k, list) in lists.iter().enumerate() {
            let Ok(list) = list else { continue };
            let mut taken = 0;
            for srv in list.iter().filter(|s| s.status == "ACTIVE") {
                if taken >= self.verdict.instances_max {
                    break;
                }
                let mut addrs: Vec<&str> = Vec::new();
                for (net, list) in &srv.addresses {
                    if self
                        .verdict
                        .instance_network
                        .as_ref()
                        .is_none_or(|n| n == net)
                    {
                        addrs.extend(list.iter().map(|a| a.addr.as_str()));
                    }
                }
                if addrs.is_empty() {
                    continue;
                }
                taken += 1;
                for a in addrs {
                    specs.push(ProbeSpec {
                        address: a.to_string(),
                        ports: v.instance_ports.clone(),
                        icmp: false,
                    });
                    owners.push((k, srv.id.clone(), a.to_string()));
                }
            }
        }
        let phase2 = ctx
            .deadline
            .min(Instant::now() + self.verdict.probe_timeout);
        let probed = if specs.is_empty() {
            None
        } else {
            // The servers' ports only: the probe's run without ICMP.
            Some(self.probe(run, ctx, &specs, phase2))
        };
        for (k, i) in needs.iter().enumerate() {
            let reading = match &lists[k] {
                Err(e) => unknown(e),
                Ok(list) => {
                    let mine: Vec<usize> =
                        (0..owners.len()).filter(|o| owners[*o].0 == k).collect();
                    if mine.is_empty() {
                        Reading {
                            value: "none",
                            evidence: json!({"servers": list.len(), "probed": 0}),
                        }
                    } else {
                        let probed = probed.as_ref().expect("probed when there are specs");
                        let mut any = false;
                        let mut shown = Vec::new();
                        for o in &mine {
                            let r = network_reading(probed, *o, &specs[*o]);
                            any |= matches!(r.value, "up" | "closed");
                            shown.push(json!({"server": owners[*o].1, "address": owners[*o].2, "value": r.value}));
                        }
                        Reading {
                            value: if any { "up" } else { "silent" },
                            evidence: json!({"servers": list.len(), "probed": shown}),
                        }
                    }
                }
            };
            readings[*i].insert("instances".into(), reading);
        }
    }

    fn bmc_reading(&self, v: &VerdictRun, s: &Subject, deadline: Instant) -> Option<Reading> {
        let template = v.bmc.as_ref()?;
        let text = template
            .replace("{host}", &s.spec.name)
            .replace("{bmc}", s.spec.bmc.as_deref().unwrap_or(&s.spec.name))
            .replace("{address}", &s.spec.address);
        let argv = crate::command::split(&text).ok()?;
        // A BMC is slow: a few seconds at most, within the deadline.
        let until = deadline.min(Instant::now() + std::time::Duration::from_secs(5));
        Some(match crate::command::output(&argv, &[], until, 64 * 1024) {
            // The command line may carry a password: only the program is named.
            Err(crate::command::Failed::TimedOut(p, t)) => Reading {
                value: "unknown",
                evidence: json!({"error": format!("{p} did not finish within {t:.1} s")}),
            },
            Err(e) => unknown(&e.to_string()),
            Ok(o) => match signals::power_state(&String::from_utf8_lossy(&o.stdout)) {
                Some(state) if o.code == Some(0) => Reading {
                    value: state,
                    evidence: json!({"power": state}),
                },
                _ => Reading {
                    value: "unknown",
                    evidence: json!({"error": format!("{} exited {:?} without a power state", argv[0], o.code)}),
                },
            },
        })
    }
}

fn ctx_hostname(args: &Args) -> String {
    args.common
        .reporting_host
        .clone()
        .unwrap_or_else(crate::cli::system_hostname)
}

fn unknown(why: &str) -> Reading {
    Reading {
        value: "unknown",
        evidence: json!({"error": crate::redact::urls_in(why)}),
    }
}

/// One probed address's value: up (an open port or an echo reply), closed
/// (only refusals or resets), silent (decided and unanswered), unknown.
fn network_reading(probed: &Probed, i: usize, spec: &ProbeSpec) -> Reading {
    let addrs = &probed.addrs[i];
    if addrs.is_empty() {
        let why = match probed.resolved.get(&spec.address) {
            Some(Err(u)) => u.words.clone(),
            _ => "no address".into(),
        };
        return Reading {
            value: "unknown",
            evidence: json!({"address": spec.address, "error": why}),
        };
    }
    let (mut up, mut closed, mut silent) = (false, false, false);
    let mut ports = Vec::new();
    let mut icmp = Value::Null;
    for ip in addrs {
        for &p in &spec.ports {
            let Some(PortResult { connect, .. }) =
                probed.ports.get(&std::net::SocketAddr::new(*ip, p))
            else {
                continue;
            };
            let state = match connect {
                Ok(_) => {
                    up = true;
                    "open"
                }
                Err(f) => {
                    match f.failure {
                        ConnectFailure::Refused | ConnectFailure::Reset => closed = true,
                        _ => silent = true,
                    }
                    f.failure.as_str()
                }
            };
            ports.push(json!({"port": p, "state": state}));
        }
        if spec.icmp {
            if let Some(e) = probed.echoes.get(ip) {
                let got = e.received();
                let lost = e.rtts.len() - got;
                up |= got > 0;
                silent |= got == 0 && lost > 0;
                icmp = json!({"sent": e.rtts.len(), "received": got, "cut": e.cut, "error": e.error.as_ref().or(e.no_socket.as_ref())});
            }
        }
    }
    let value = if up {
        "up"
    } else if closed {
        "closed"
    } else if silent {
        "silent"
    } else {
        "unknown"
    };
    Reading {
        value,
        evidence: json!({"address": spec.address, "ports": ports, "icmp": icmp}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_made_from_the_management_address() {
        let (n, d) = parse_network("storage=10.2.0.0/16").expect("rule");
        assert_eq!(n, "storage");
        assert_eq!(
            d.apply("10.0.3.7".parse().expect("ip")),
            Some("10.2.3.7".parse().expect("ip"))
        );
        let (_, d) = parse_network("tenant=+256").expect("rule");
        assert_eq!(
            d.apply("10.0.0.7".parse().expect("ip")),
            Some("10.0.1.7".parse().expect("ip"))
        );
        let (_, d) = parse_network("v6=fd00:2::/64").expect("rule");
        assert_eq!(
            d.apply("fd00:1::7".parse().expect("ip")),
            Some("fd00:2::7".parse().expect("ip"))
        );
        assert_eq!(d.apply("10.0.0.1".parse().expect("ip")), None);
        for bad in ["storage", "=+1", "s=10.0.0.0/33", "s=x/8", "s=+x"] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
    }
}
