//! Masakari (`instance-ha`): failover segments, their hosts, and
//! notifications, with the shapes Masakari 14 answers
//! (`../shared/OPENSTACK-TESTBED.md`). Microversion 1.0: a notification's
//! GET at 1.1 fails without taskflow persistence.

use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;

use super::client::{query_value, Answer, Call, Method, OsError, Session};
use crate::report::TraceStep;

const SERVICE: &str = "instance-ha";
const MICROVERSION: &str = "1.0";

/// A failover segment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Segment {
    /// Its UUID.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// auto, reserved_host, auto_priority, rh_priority.
    #[serde(default)]
    pub recovery_method: Option<String>,
    /// The service type it guards (COMPUTE).
    #[serde(default)]
    pub service_type: Option<String>,
    /// Whether Masakari acts on it (1.2+; absent before).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A host of a segment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Host {
    /// Its UUID.
    pub uuid: String,
    /// Its name (the compute service's host).
    pub name: String,
    /// Put on maintenance by a recovery, until an operator clears it.
    #[serde(default)]
    pub on_maintenance: bool,
    /// A reserved host, kept free for failover.
    #[serde(default)]
    pub reserved: bool,
    /// Its segment's UUID.
    #[serde(default)]
    pub failover_segment_id: Option<String>,
    /// Its type (COMPUTE, ...).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// A notification as Masakari keeps it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Notification {
    /// Its UUID.
    pub notification_uuid: String,
    /// new, running, finished, failed, ignored, error.
    pub status: String,
    /// COMPUTE_HOST, PROCESS, VM.
    #[serde(rename = "type")]
    pub kind: String,
    /// The host it is about.
    #[serde(default)]
    pub source_host_uuid: Option<String>,
    /// When the monitor generated it.
    #[serde(default)]
    pub generated_time: Option<String>,
}

/// Masakari's API on a session.
pub struct Masakari<'a>(pub &'a Session);

impl Masakari<'_> {
    /// Every segment.
    pub fn segments(
        &self,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Segment>, OsError> {
        self.0.get(
            SERVICE,
            Some(MICROVERSION),
            "/segments",
            "segments",
            deadline,
            trace,
        )
    }

    /// The hosts of a segment.
    pub fn hosts(
        &self,
        segment: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Host>, OsError> {
        let path = format!("/segments/{}/hosts", query_value(segment));
        self.0
            .get(SERVICE, Some(MICROVERSION), &path, "hosts", deadline, trace)
    }

    /// Send a notification (`{"notification": {...}}`, as
    /// [`crate::notify::masakari::notification`] builds it). Any answer is
    /// returned: 202 is taken, 400 and 409 are Masakari saying no.
    pub fn notify(
        &self,
        body: &Value,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Answer, OsError> {
        let call = Call::with_body(Method::Post, SERVICE, None, "/notifications", body);
        self.0.send(&call, deadline, trace)
    }

    /// One notification, to follow it to `finished`.
    pub fn notification(
        &self,
        uuid: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Notification, OsError> {
        let path = format!("/notifications/{}", query_value(uuid));
        self.0.get(
            SERVICE,
            Some(MICROVERSION),
            &path,
            "notification",
            deadline,
            trace,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masakari_14_shapes_parse() {
        let seg: Vec<Segment> = serde_json::from_value(serde_json::json!([
            {"uuid": "9e800031-6946-4b43-bf09-8b3d1cab792b", "name": "segment1", "recovery_method": "auto",
             "service_type": "COMPUTE", "description": null, "id": 1, "created_at": "2026-11-20T10:00:00.000000", "updated_at": null}
        ]))
        .expect("segments");
        assert_eq!(seg[0].name, "segment1");
        assert_eq!(seg[0].enabled, None);
        let hosts: Vec<Host> = serde_json::from_value(serde_json::json!([
            {"uuid": "083a8474-22c0-407f-b89b-c569134c3bfd", "name": "compute1", "on_maintenance": true, "reserved": false,
             "type": "COMPUTE", "control_attributes": "SSH", "failover_segment_id": "9e800031-6946-4b43-bf09-8b3d1cab792b", "id": 1}
        ]))
        .expect("hosts");
        assert!(hosts[0].on_maintenance);
        assert_eq!(hosts[0].kind.as_deref(), Some("COMPUTE"));
        let n: Notification = serde_json::from_value(serde_json::json!(
            {"notification_uuid": "07a331b8-df15-4582-b121-73ed3541a408", "status": "new", "type": "COMPUTE_HOST",
             "source_host_uuid": "083a8474-22c0-407f-b89b-c569134c3bfd", "generated_time": "2026-11-20T10:01:00.000000",
             "payload": {"event": "STOPPED"}, "id": 1}
        ))
        .expect("notification");
        assert_eq!(n.status, "new");
    }
}
