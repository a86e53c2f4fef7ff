//! The evidence a verdict reads besides the probes: Nova's compute
//! services, Neutron's agents, Pacemaker's membership (`crm_mon
//! --output-as=xml`), a BMC's power state from a command, and other
//! vantage points' records. Each turns into one signal value for a host,
//! with its raw evidence for the record.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::openstack::neutron::Agent;
use crate::openstack::nova::ComputeService;

/// A signal's value for one host, and what it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The value (one of the signal's values in [`super::verdict::SIGNALS`]).
    pub value: &'static str,
    /// The raw evidence.
    pub evidence: Value,
}

impl Reading {
    fn new(value: &'static str, evidence: Value) -> Reading {
        Reading { value, evidence }
    }
}

fn age(at: Option<SystemTime>, now: SystemTime) -> Option<f64> {
    at.map(|t| match now.duration_since(t) {
        Ok(d) => d.as_secs_f64(),
        // Reported "in the future": a clock ahead of ours; no age.
        Err(e) => -e.duration().as_secs_f64(),
    })
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Is `s` stale: Nova says down (not forced: then its own clock decided),
/// or its last report is older than `down_after` by ours. A forced-down
/// service is always `state: down`, so then only `updated_at` tells.
pub fn nova_stale(s: &ComputeService, now: SystemTime, down_after: Duration) -> bool {
    let age = age(s.updated(), now);
    let old = age.is_none_or(|a| a > down_after.as_secs_f64());
    old || (s.state == "down" && !s.forced_down)
}

/// The `nova` signal of a host from the nova-compute services listed.
pub fn nova(
    services: &[ComputeService],
    host: &str,
    now: SystemTime,
    down_after: Duration,
) -> Reading {
    let mine: Vec<&ComputeService> = services.iter().filter(|s| s.host == host).collect();
    let Some(s) = mine.first() else {
        return Reading::new(
            "unknown",
            json!({"error": format!("Nova has no nova-compute on host {host:?}")}),
        );
    };
    let stale = nova_stale(s, now, down_after);
    Reading::new(
        if stale { "stale" } else { "up" },
        json!({
            "id": s.id,
            "state": s.state,
            "status": s.status,
            "forced_down": s.forced_down,
            "updated_at": s.updated_at,
            "age_s": age(s.updated(), now).map(round1),
            "down_after_s": down_after.as_secs_f64(),
            "zone": s.zone,
            "disabled_reason": s.disabled_reason,
        }),
    )
}

/// The `neutron` signal of a host from every agent listed.
pub fn neutron(agents: &[Agent], host: &str, now: SystemTime, down_after: Duration) -> Reading {
    let mine: Vec<&Agent> = agents.iter().filter(|a| a.host == host).collect();
    if mine.is_empty() {
        return Reading::new("none", json!({"agents": []}));
    }
    let fresh = |a: &Agent| {
        a.alive && age(a.heartbeat(), now).is_some_and(|x| x <= down_after.as_secs_f64())
    };
    let any = mine.iter().any(|a| fresh(a));
    Reading::new(
        if any { "up" } else { "stale" },
        json!({
            "down_after_s": down_after.as_secs_f64(),
            "agents": mine.iter().map(|a| json!({
                "binary": a.binary,
                "alive": a.alive,
                "heartbeat_timestamp": a.heartbeat_timestamp,
                "age_s": age(a.heartbeat(), now).map(round1),
                "admin_state_up": a.admin_state_up,
            })).collect::<Vec<_>>(),
        }),
    )
}

/// Pacemaker's view, from `crm_mon --output-as=xml`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cluster {
    /// The partition this machine sees has quorum.
    pub quorum: bool,
    /// The designated controller, if there is one.
    pub dc: Option<String>,
    /// Each node: (online, unclean, type).
    pub nodes: BTreeMap<String, (bool, bool, String)>,
}

/// Read `crm_mon --output-as=xml`.
pub fn parse_crm_mon(xml: &str) -> Result<Cluster, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "pacemaker-result" {
        return Err(format!(
            "<{}> is not crm_mon's <pacemaker-result>",
            root.tag_name().name()
        ));
    }
    fn find<'a, 'i>(
        parent: roxmltree::Node<'a, 'i>,
        name: &str,
    ) -> Option<roxmltree::Node<'a, 'i>> {
        parent.children().find(|n| n.has_tag_name(name))
    }
    let summary = find(root, "summary").ok_or("no <summary> in crm_mon's output")?;
    let dc = find(summary, "current_dc").ok_or("no <current_dc> in crm_mon's summary")?;
    let yes = |n: roxmltree::Node<'_, '_>, a: &str| n.attribute(a) == Some("true");
    let mut cluster = Cluster {
        quorum: yes(dc, "present") && yes(dc, "with_quorum"),
        dc: dc
            .attribute("name")
            .filter(|_| yes(dc, "present"))
            .map(String::from),
        nodes: BTreeMap::new(),
    };
    let nodes = find(root, "nodes").ok_or("no <nodes> in crm_mon's output")?;
    for n in nodes.children().filter(|n| n.has_tag_name("node")) {
        let name = n.attribute("name").ok_or("a <node> without a name")?;
        cluster.nodes.insert(
            name.to_string(),
            (
                yes(n, "online"),
                yes(n, "unclean"),
                n.attribute("type").unwrap_or("member").to_string(),
            ),
        );
    }
    Ok(cluster)
}

/// The `cluster` signal of a node.
pub fn cluster(view: &Result<Cluster, String>, node: &str) -> Reading {
    match view {
        Err(e) => Reading::new("unknown", json!({"error": e})),
        Ok(c) if !c.quorum => Reading::new(
            "no-quorum",
            json!({"quorum": false, "dc": c.dc, "node": node}),
        ),
        Ok(c) => match c.nodes.get(node) {
            None => Reading::new(
                "unknown",
                json!({"quorum": true, "error": format!("{node:?} is not a node of the cluster")}),
            ),
            Some((online, unclean, kind)) => Reading::new(
                if *online { "online" } else { "offline" },
                json!({"quorum": true, "dc": c.dc, "node": node, "online": online, "unclean": unclean, "type": kind}),
            ),
        },
    }
}

/// A BMC's power state from a command's output (`ipmitool ... power
/// status`: "Chassis Power is on"; Redfish tools: "PowerState: On").
pub fn power_state(output: &str) -> Option<&'static str> {
    let text = output.to_ascii_lowercase();
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let words: Vec<&str> = last
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    match words.last() {
        Some(&"on") => Some("on"),
        Some(&"off") => Some("off"),
        _ => None,
    }
}

/// What other vantage points said of each host, read from their records
/// (other `probe-host` runs' JSON lines: the newest record per host from
/// each observer, no older than `max_age`).
#[derive(Debug, Clone, Default)]
pub struct Peers {
    /// Per host (a record's `name`, else its `target`): per observer
    /// (`host` of the record), (answered, age in seconds, summary).
    pub seen: BTreeMap<String, BTreeMap<String, (bool, f64, String)>>,
    /// Lines that could not be read, in words.
    pub problems: Vec<String>,
}

/// Read peer records from `paths`, skipping this machine's own.
pub fn read_peers(
    paths: &[std::path::PathBuf],
    me: &str,
    max_age: Duration,
    now: SystemTime,
) -> Peers {
    let mut peers = Peers::default();
    for path in paths {
        let text = match crate::files::read_text(path, 64 * 1024 * 1024) {
            Ok(t) => t,
            Err(e) => {
                peers
                    .problems
                    .push(format!("--peer-records {}: {e}", path.display()));
                continue;
            }
        };
        read_peer_lines(&text, path, me, max_age, now, &mut peers);
    }
    peers
}

fn read_peer_lines(
    text: &str,
    path: &Path,
    me: &str,
    max_age: Duration,
    now: SystemTime,
    peers: &mut Peers,
) {
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            peers.problems.push(format!(
                "--peer-records {} line {}: not a JSON record",
                path.display(),
                n + 1
            ));
            continue;
        };
        if v["check"] != "probe-host" {
            continue;
        }
        let observer = v["host"].as_str().unwrap_or("");
        if observer.is_empty() || observer == me {
            continue;
        }
        let Some(ts) = v["ts"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
        else {
            continue;
        };
        let age = now
            .duration_since(ts)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        if age > max_age.as_secs_f64() {
            continue;
        }
        let host = v["name"]
            .as_str()
            .filter(|s| !s.is_empty())
            .or_else(|| v["target"].as_str())
            .unwrap_or("");
        if host.is_empty() || v["details"]["summary_of_run"] == true {
            continue;
        }
        // Answered: any address alive, or a verdict of alive.
        let answered = v["details"]["alive_addresses"]
            .as_u64()
            .is_some_and(|n| n > 0)
            || v["details"]["verdict"] == "alive"
            || v["details"]["signals"]["networks"] == "up"
            || v["details"]["signals"]["networks"] == "partial";
        let summary = v["summary"].as_str().unwrap_or("").to_string();
        let entry = peers.seen.entry(host.to_string()).or_default();
        let newer = entry.get(observer).is_none_or(|(_, a, _)| age <= *a);
        if newer {
            entry.insert(observer.to_string(), (answered, age, summary));
        }
    }
}

/// The `peers` signal of a host.
pub fn peers(view: &Peers, host: &str) -> Reading {
    match view.seen.get(host) {
        None => Reading::new(
            "unknown",
            json!({"error": "no fresh record of it from another vantage point"}),
        ),
        Some(by) => {
            let any = by.values().any(|(a, _, _)| *a);
            Reading::new(
                if any { "up" } else { "silent" },
                json!(by
                    .iter()
                    .map(|(o, (a, age, s))| (
                        o.clone(),
                        json!({"answered": a, "age_s": round1(*age), "summary": s})
                    ))
                    .collect::<serde_json::Map<_, _>>()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRM: &str = r#"<pacemaker-result api-version="2.25" request="crm_mon --output-as=xml">
  <summary><stack type="corosync"/>
    <current_dc present="true" version="2.1.5" name="ctl1" id="1" with_quorum="true" mixed_version="false"/></summary>
  <nodes>
    <node name="compute1" id="2" online="true" unclean="false" type="remote"/>
    <node name="compute2" id="3" online="false" unclean="true" type="remote"/>
  </nodes>
  <status code="0" message="OK"/>
</pacemaker-result>"#;

    #[test]
    fn crm_mon_nodes_and_quorum() {
        let c = parse_crm_mon(CRM);
        assert_eq!(cluster(&c, "compute1").value, "online");
        assert_eq!(cluster(&c, "compute2").value, "offline");
        assert_eq!(cluster(&c, "compute9").value, "unknown");
        let lost = parse_crm_mon(&CRM.replace("with_quorum=\"true\"", "with_quorum=\"false\""));
        assert_eq!(cluster(&lost, "compute2").value, "no-quorum");
        for bad in [
            "",
            "<x/>",
            "<pacemaker-result><nodes/></pacemaker-result>",
            "<pacemaker-result",
        ] {
            let e = parse_crm_mon(bad).expect_err("bad XML");
            assert_eq!(cluster(&Err(e), "compute1").value, "unknown");
        }
    }

    #[test]
    fn power_states() {
        assert_eq!(power_state("Chassis Power is on\n"), Some("on"));
        assert_eq!(power_state("PowerState: Off"), Some("off"));
        assert_eq!(
            power_state("Error: Unable to establish IPMI v2 session"),
            None
        );
    }

    #[test]
    fn nova_staleness_by_state_and_age() {
        let now = SystemTime::now();
        let at = |ago: u64| {
            // A UTC time as Nova writes it (no zone).
            humantime::format_rfc3339_micros(now - Duration::from_secs(ago))
                .to_string()
                .trim_end_matches('Z')
                .to_string()
        };
        let svc = |state: &str, forced: bool, ago: u64| ComputeService {
            id: "x".into(),
            binary: "nova-compute".into(),
            host: "compute1".into(),
            zone: None,
            status: "enabled".into(),
            state: state.into(),
            updated_at: Some(at(ago)),
            disabled_reason: None,
            forced_down: forced,
        };
        let d = Duration::from_secs(60);
        assert_eq!(nova(&[svc("up", false, 5)], "compute1", now, d).value, "up");
        assert_eq!(
            nova(&[svc("up", false, 90)], "compute1", now, d).value,
            "stale"
        );
        assert_eq!(
            nova(&[svc("down", false, 5)], "compute1", now, d).value,
            "stale"
        );
        // Forced down but reporting again: back (judged by updated_at).
        assert_eq!(
            nova(&[svc("down", true, 5)], "compute1", now, d).value,
            "up"
        );
        assert_eq!(
            nova(&[svc("down", true, 90)], "compute1", now, d).value,
            "stale"
        );
        assert_eq!(
            nova(&[svc("up", false, 5)], "compute10", now, d).value,
            "unknown"
        );
    }

    #[test]
    fn peers_newest_fresh_and_not_mine() {
        let now = SystemTime::now();
        let ts =
            |ago: u64| humantime::format_rfc3339_millis(now - Duration::from_secs(ago)).to_string();
        let text = [
            json!({"ts": ts(10), "host": "mon2", "check": "probe-host", "target": "10.0.0.1", "name": "compute1", "details": {"alive_addresses": 0}}),
            json!({"ts": ts(5), "host": "mon3", "check": "probe-host", "target": "10.0.0.1", "name": "compute1", "details": {"alive_addresses": 1}}),
            json!({"ts": ts(5), "host": "mon1", "check": "probe-host", "target": "10.0.0.2", "name": "compute2", "details": {"alive_addresses": 1}}),
            json!({"ts": ts(900), "host": "mon2", "check": "probe-host", "target": "10.0.0.3", "name": "compute3", "details": {"alive_addresses": 1}}),
        ]
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
            + "\nnot json\n";
        let mut p = Peers::default();
        read_peer_lines(
            &text,
            Path::new("p.jsonl"),
            "mon1",
            Duration::from_secs(120),
            now,
            &mut p,
        );
        assert_eq!(peers(&p, "compute1").value, "up");
        assert_eq!(peers(&p, "compute2").value, "unknown");
        assert_eq!(peers(&p, "compute3").value, "unknown");
        assert_eq!(p.problems.len(), 1);
        let mut p = Peers::default();
        read_peer_lines(
            &text.replace("\"alive_addresses\":1", "\"alive_addresses\":0"),
            Path::new("p"),
            "mon1",
            Duration::from_secs(120),
            now,
            &mut p,
        );
        assert_eq!(peers(&p, "compute1").value, "silent");
    }
}
