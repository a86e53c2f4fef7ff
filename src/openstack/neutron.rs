//! Neutron (`network`): its agents and their heartbeats, the second
//! channel a dead-host verdict asks (`GET /v2.0/agents`).

use std::time::{Instant, SystemTime};

use serde::Deserialize;

use super::client::{query_value, OsError, Session};
use crate::report::TraceStep;

const SERVICE: &str = "network";

/// A Neutron agent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Agent {
    /// Its id.
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// neutron-openvswitch-agent, neutron-metadata-agent, ...
    pub binary: String,
    /// "Open vSwitch agent", "Metadata agent", ...
    #[serde(default)]
    pub agent_type: Option<String>,
    /// Neutron's own judgement: a heartbeat within `agent_down_time`.
    pub alive: bool,
    /// Administratively up.
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    /// Last heartbeat, `YYYY-MM-DD HH:MM:SS` in UTC with no zone.
    #[serde(default)]
    pub heartbeat_timestamp: Option<String>,
    /// Its availability zone, for the agents that have one.
    #[serde(default)]
    pub availability_zone: Option<String>,
}

fn yes() -> bool {
    true
}

impl Agent {
    /// When it last reported, read as UTC (Neutron writes no zone).
    pub fn heartbeat(&self) -> Option<SystemTime> {
        utc_naive(self.heartbeat_timestamp.as_deref()?)
    }
}

/// A `YYYY-MM-DD HH:MM:SS[.ffffff]` or `YYYY-MM-DDTHH:MM:SS[.ffffff][Z]`
/// time with no zone (or Z), as OpenStack services write them: UTC.
pub fn utc_naive(s: &str) -> Option<SystemTime> {
    let s = s.trim().trim_end_matches('Z').replace(' ', "T");
    let s = s.strip_suffix("+00:00").unwrap_or(&s);
    humantime::parse_rfc3339_weak(s).ok()
}

/// Neutron's API on a session.
pub struct Neutron<'a>(pub &'a Session);

impl Neutron<'_> {
    /// The agents, of one host when given (an exact match in Neutron).
    pub fn agents(
        &self,
        host: Option<&str>,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Agent>, OsError> {
        let path = match host {
            Some(h) => format!("/v2.0/agents?host={}", query_value(h)),
            None => "/v2.0/agents".to_string(),
        };
        self.0.get(SERVICE, None, &path, "agents", deadline, trace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn agents_parse_and_heartbeats_are_utc() {
        let agents: Vec<Agent> = serde_json::from_value(serde_json::json!([
            {"id": "3d3b4f5e-0d0b-4b0a-a1a1-0c0c0c0c0c0c", "host": "compute1", "binary": "neutron-metadata-agent",
             "agent_type": "Metadata agent", "alive": false, "admin_state_up": true, "topic": "N/A",
             "heartbeat_timestamp": "2026-11-20 10:00:05", "availability_zone": null, "configurations": {}}
        ]))
        .expect("agents");
        assert!(!agents[0].alive);
        let t = agents[0].heartbeat().expect("a time");
        assert_eq!(
            t.duration_since(UNIX_EPOCH).expect("after 1970"),
            Duration::from_secs(1_795_168_805)
        );
        assert_eq!(
            utc_naive("2026-11-20T10:00:05.123456Z"),
            Some(t + Duration::from_micros(123_456))
        );
        assert_eq!(utc_naive("yesterday"), None);
    }
}
