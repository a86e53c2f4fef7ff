//! The Masakari sink: notifications of type PROCESS, VM and COMPUTE_HOST
//! built from watch-procs, watch-domains and probe-host records, with the
//! payloads masakari-monitors sends, POSTed to the `instance-ha` endpoint
//! of the catalog with a Keystone token. 400 and 409 are final (a bad
//! notification, or one Masakari already has or ignores); anything else is
//! retried.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::alarm::{AlarmState, Kind};
use super::sinks::{judge, said, Failure, Sink};
use super::Alert;
use crate::openstack::client::{OsError, Session};

/// The notification masakari-monitors would send for this alert, if any:
/// `{"notification": {"type", "hostname", "generated_time", "payload"}}`.
pub fn notification(alert: &Alert) -> Option<Value> {
    let record = alert.record.as_ref()?;
    let generated_time = record
        .get("ts")
        .and_then(|t| t.as_str())
        .unwrap_or(&alert.at)
        .trim_end_matches('Z')
        .to_string();
    let firing = alert.kind == Kind::Firing && alert.state != AlarmState::Ok;
    let (kind, hostname, payload) = match alert.check.as_str() {
        // watch-domains puts masakari's own payload in its event records.
        "watch-domains" => {
            let m = record.get("details")?.get("masakari")?;
            if !firing {
                return None;
            }
            ("VM", alert.host.clone(), m.get("payload")?.clone())
        }
        // watch-procs: a process it could not keep running (processmonitor).
        // masakari-monitors sends failures only: a recovery is not a
        // notification (Masakari answers 409, the host being on maintenance
        // since the failure), so the alarm resolves without a call.
        "watch-procs" if firing && alert.state == AlarmState::Critical => (
            "PROCESS",
            alert.host.clone(),
            json!({"event": "STOPPED", "process_name": alert.name}),
        ),
        // probe-host --verdict: a host judged dead (samples, gates and all)
        // carries the notification's type, host and payload. A plain probe
        // that fails is not a dead compute host: nothing is sent for it.
        "probe-host" => {
            let m = record.get("details")?.get("masakari")?;
            if !firing || alert.state != AlarmState::Critical {
                return None;
            }
            (
                m.get("type")?.as_str()?,
                m.get("hostname")?.as_str()?.to_string(),
                m.get("payload")?.clone(),
            )
        }
        _ => return None,
    };
    Some(json!({
        "notification": {
            "type": kind,
            "hostname": hostname,
            "generated_time": generated_time,
            "payload": payload,
        }
    }))
}

/// Masakari behind Keystone, or at a fixed URL.
pub struct MasakariSink {
    /// The cloud's session; a fixed URL is its `instance-ha` override.
    pub session: Session,
}

impl MasakariSink {
    /// A sink for `session`'s cloud, at `url` instead of the catalog's
    /// `instance-ha` endpoint when one is given.
    pub fn new(mut session: Session, url: Option<String>) -> MasakariSink {
        if let Some(u) = url {
            session.overrides.retain(|(t, _)| t != SERVICE);
            session.overrides.push((SERVICE.to_string(), u));
        }
        MasakariSink { session }
    }

    fn fixed_url(&self) -> Option<&str> {
        self.session
            .overrides
            .iter()
            .find(|(t, _)| t == SERVICE)
            .map(|(_, u)| u.as_str())
    }
}

/// Masakari's service type in the catalog.
const SERVICE: &str = "instance-ha";

impl Sink for MasakariSink {
    fn kind(&self) -> &'static str {
        "masakari"
    }

    fn describe(&self) -> String {
        match self.fixed_url() {
            Some(u) => format!("masakari at {}", crate::redact::url(u)),
            None => format!("masakari of {}", self.session.keystone.cloud.source),
        }
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.session.keystone.cloud.secret().expose().to_string()]
    }

    fn wants(&self, alert: &Alert) -> bool {
        notification(alert).is_some()
    }

    fn payload(&self, alert: &Alert) -> Value {
        notification(alert).unwrap_or(Value::Null)
    }

    fn deliver(&self, alert: &Alert, timeout: Duration) -> Result<String, Failure> {
        let Some(body) = notification(alert) else {
            return Err(Failure::Final("not a notification Masakari takes".into()));
        };
        let deadline = Instant::now() + timeout;
        let mut trace = Vec::new();
        // The session's agent holds the cloud's cacert and verify settings
        // for the instance-ha endpoint as for Keystone; a 401 gets one
        // fresh token.
        let answer = crate::openstack::masakari::Masakari(&self.session)
            .notify(&body, deadline, &mut trace)
            .map_err(|e| match e {
                OsError::Keystone(k) => Failure::Retry(format!("Keystone: {k}")),
                other => Failure::Retry(other.to_string()),
            })?;
        judge(answer.status, said(answer.status, &answer.body), |c| {
            c == 400 || c == 409
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::sinks::tests::alert;

    #[test]
    fn a_domain_event_becomes_a_vm_notification() {
        let mut a = alert(AlarmState::Critical, Kind::Firing);
        a.check = "watch-domains".into();
        a.host = "compute-3".into();
        a.record = Some(
            json!({"ts": "2026-11-23T18:40:00.123Z", "details": {"masakari": {"type": "VM", "payload": {
            "event": "LIFECYCLE", "instance_uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f", "vir_domain_event": "STOPPED_FAILED"}}}}),
        );
        let n = notification(&a).expect("a VM notification");
        assert_eq!(
            n,
            json!({"notification": {"type": "VM", "hostname": "compute-3", "generated_time": "2026-11-23T18:40:00.123",
                "payload": {"event": "LIFECYCLE", "instance_uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f", "vir_domain_event": "STOPPED_FAILED"}}})
        );
        a.kind = Kind::Resolved;
        a.state = AlarmState::Ok;
        assert_eq!(
            notification(&a),
            None,
            "recoveries are not VM notifications"
        );
    }

    #[test]
    fn a_process_that_stays_down_is_a_process_notification() {
        let mut a = alert(AlarmState::Critical, Kind::Firing);
        a.check = "watch-procs".into();
        a.name = "nova-compute".into();
        a.host = "compute-3".into();
        let n = notification(&a).expect("PROCESS");
        assert_eq!(n["notification"]["type"], "PROCESS");
        assert_eq!(
            n["notification"]["payload"],
            json!({"event": "STOPPED", "process_name": "nova-compute"})
        );
    }

    #[test]
    fn a_recovered_process_is_not_sent_to_masakari() {
        // Was: a recovery went out as a PROCESS STARTED notification, which
        // masakari-monitors never sends; Masakari answered 409 (the host is
        // on maintenance since the failure), the alert was dropped and
        // notify exited 2 on every recovery.
        let mut a = alert(AlarmState::Ok, Kind::Resolved);
        a.check = "watch-procs".into();
        a.name = "nova-compute".into();
        assert_eq!(notification(&a), None);
        a.state = AlarmState::Warning;
        a.kind = Kind::Firing;
        assert_eq!(
            notification(&a),
            None,
            "a warning (restarted) is no failure"
        );
    }

    #[test]
    fn a_dead_host_is_a_compute_host_notification_for_that_host() {
        let mut a = alert(AlarmState::Critical, Kind::Firing);
        a.check = "probe-host".into();
        a.name = "compute-7".into();
        // A failed plain probe is not a dead compute host.
        a.record =
            Some(json!({"ts": "2026-11-23T18:40:00.123Z", "details": {"alive_addresses": 0}}));
        assert_eq!(notification(&a), None);
        a.record = Some(
            json!({"ts": "2026-11-23T18:40:00.123Z", "details": {"verdict": "dead", "masakari": {
            "type": "COMPUTE_HOST", "hostname": "compute-7.cloud",
            "payload": {"event": "STOPPED", "cluster_status": "OFFLINE", "host_status": "NORMAL"}}}}),
        );
        let n = notification(&a).expect("COMPUTE_HOST");
        assert_eq!(n["notification"]["type"], "COMPUTE_HOST");
        assert_eq!(n["notification"]["hostname"], "compute-7.cloud");
        assert_eq!(
            n["notification"]["payload"],
            json!({"event": "STOPPED", "cluster_status": "OFFLINE", "host_status": "NORMAL"})
        );
        a.check = "probe-http".into();
        assert_eq!(notification(&a), None);
    }
}
