//! watch-domains: libvirt domain states, what changed since the last run,
//! domain events for a while, and the QEMU guest-agent heartbeat — what
//! masakari's instance and introspective instance monitors report, as
//! records `notify` can turn into Masakari VM notifications.
//!
//! [`model`] and [`heartbeat`] are plain rules and build everywhere; the
//! libvirt connection ([`libvirt`], and the one unsafe module behind it)
//! and the binary's flags need the `libvirt` cargo feature.

pub mod heartbeat;
pub mod model;

#[cfg(feature = "libvirt")]
pub mod cli;
#[cfg(feature = "libvirt")]
mod ffi;
#[cfg(feature = "libvirt")]
pub mod libvirt;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::report::{Record, Status};
use heartbeat::Beat;
use model::{Change, EventKind, Policy, Seen};

/// The `check` field of watch-domains' records.
pub const CHECK: &str = "watch-domains";

/// What `--state` keeps between runs, per libvirt URI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainsState {
    /// The domains as last seen, every one (not only those selected), so a
    /// change of `--name` does not read as domains vanishing.
    #[serde(default)]
    pub seen: BTreeMap<String, Vec<Seen>>,
    /// Guest-agent heartbeats by domain UUID.
    #[serde(default)]
    pub heartbeats: BTreeMap<String, Beat>,
}

/// The record for a domain's current state.
pub fn state_record(seen: &Seen, policy: &Policy) -> Record {
    let status = policy.judge(seen.state, &seen.reason);
    let mut r = Record::new(
        CHECK,
        &seen.uuid,
        status,
        format!("{} is {} ({})", seen.name, seen.state, seen.reason),
    );
    r.name.clone_from(&seen.name);
    r.detail("uuid", seen.uuid.clone());
    r.detail("state", seen.state.as_str());
    r.detail("reason", seen.reason.clone());
    r
}

/// Put masakari's names for `kind` into `r`: `details.event` and
/// `details.vir_domain_event` always, and `details.masakari` — the exact
/// notification payload masakari-instancemonitor would send — only for the
/// events it sends.
fn name_event(r: &mut Record, uuid: &str, kind: &EventKind) {
    let named = kind.named();
    r.detail("event", named.event);
    r.detail("vir_domain_event", named.detail.clone());
    r.detail("masakari_acts", named.acted_on);
    if named.sent_by_masakari {
        r.detail(
            "masakari",
            json!({
                "type": "VM",
                "payload": {
                    "event": named.event,
                    "instance_uuid": uuid,
                    "vir_domain_event": named.detail,
                }
            }),
        );
    }
}

/// The record for one libvirt event as it arrived.
pub fn event_record(uuid: &str, name: &str, kind: &EventKind, policy: &Policy) -> Record {
    let named = kind.named();
    let mut r = Record::new(
        CHECK,
        uuid,
        kind.severity(policy),
        format!("{name}: {} {}", named.event, named.detail),
    );
    r.name = name.to_string();
    r.event = Some(named.event.to_ascii_lowercase());
    r.detail("uuid", uuid);
    if let Some((state, reason)) = kind.implied_state() {
        r.detail("state", state.as_str());
        r.detail("reason", reason);
    }
    if let EventKind::IoError {
        src_path,
        dev_alias,
        reason,
        ..
    } = kind
    {
        r.summary = format!("{} on {dev_alias} ({src_path}): {reason}", r.summary);
        r.detail("src_path", src_path.clone());
        r.detail("dev_alias", dev_alias.clone());
        r.detail("io_error_reason", reason.clone());
    }
    if named.acted_on {
        r.summary.push_str(" (masakari recovers the instance)");
    }
    name_event(&mut r, uuid, kind);
    r
}

/// The record for a change found by comparing two looks: between two runs
/// (`how` = "since the last run") or across a lost connection
/// ("while disconnected"). Events that libvirt would have sent for it are
/// named as such, so a crash between two cron runs reaches Masakari too.
pub fn change_record(change: &Change, policy: &Policy, how: &str) -> Record {
    let (seen, status, summary, event) = match change {
        Change::Appeared(s) => (
            s,
            policy.judge(s.state, &s.reason),
            format!("{} appeared {how}, {} ({})", s.name, s.state, s.reason),
            "appeared",
        ),
        Change::Vanished(s) => (
            s,
            Status::Ok,
            format!("{} is gone {how} (was {} ({}))", s.name, s.state, s.reason),
            "vanished",
        ),
        Change::Moved(before, now) => (
            now,
            policy.judge(now.state, &now.reason),
            format!(
                "{}: {} ({}) -> {} ({}) {how}",
                now.name, before.state, before.reason, now.state, now.reason
            ),
            "changed",
        ),
    };
    let mut r = Record::new(CHECK, &seen.uuid, status, summary);
    r.name.clone_from(&seen.name);
    r.event = Some(event.to_string());
    r.detail("uuid", seen.uuid.clone());
    r.detail("state", seen.state.as_str());
    r.detail("reason", seen.reason.clone());
    r.detail("seen", how);
    if let Change::Moved(before, now) = change {
        r.detail("from_state", before.state.as_str());
        r.detail("from_reason", before.reason.clone());
        if let Some(kind) = model::change_named(now.state, &now.reason) {
            name_event(&mut r, &now.uuid, &kind);
            if kind.named().acted_on {
                r.summary.push_str(" (masakari recovers the instance)");
            }
        }
    }
    r
}

/// The record for one guest-agent ping.
pub fn heartbeat_record(seen: &Seen, verdict: &heartbeat::Verdict, beat: &Beat) -> Record {
    let mut r = Record::new(
        CHECK,
        &seen.uuid,
        verdict.status,
        format!("{}: {}", seen.name, verdict.summary),
    );
    r.name = format!("{}/agent", seen.name);
    r.detail("uuid", seen.uuid.clone());
    r.detail("consecutive_failures", beat.consecutive_failures);
    r.detail("ever_answered", beat.ever_answered);
    if let Some(t) = &beat.last_answer {
        r.detail("last_answer", t.clone());
    }
    if let Some(event) = verdict.event {
        r.event = Some(event.to_string());
        if event == "agent_unreachable" {
            // What masakari's introspective monitor sends for it.
            r.detail("event", "QEMU_GUEST_AGENT_ERROR");
            r.detail("vir_domain_event", "STOPPED_FAILED");
            r.detail("masakari_acts", true);
            r.detail(
                "masakari",
                json!({
                    "type": "VM",
                    "payload": {
                        "event": "QEMU_GUEST_AGENT_ERROR",
                        "instance_uuid": seen.uuid,
                        "vir_domain_event": "STOPPED_FAILED",
                    }
                }),
            );
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::model::State;
    use super::*;

    fn seen(state: State, reason: &str) -> Seen {
        Seen {
            uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f".into(),
            name: "instance-0000002a".into(),
            state,
            reason: reason.into(),
        }
    }

    #[test]
    fn a_crash_between_runs_carries_masakaris_payload() {
        let change = Change::Moved(
            seen(State::Running, "booted"),
            seen(State::Shutoff, "failed"),
        );
        let r = change_record(&change, &Policy::default(), "since the last run");
        assert_eq!(r.status, Status::Critical);
        assert_eq!(r.event.as_deref(), Some("changed"));
        assert_eq!(
            r.details["masakari"],
            json!({"type": "VM", "payload": {
                "event": "LIFECYCLE",
                "instance_uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f",
                "vir_domain_event": "STOPPED_FAILED"}})
        );
        assert!(
            r.summary.contains("running (booted) -> shutoff (failed)"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn an_event_masakari_filters_out_has_no_payload() {
        let started = EventKind::Lifecycle {
            event: 2,
            detail: 0,
        };
        let r = event_record("u", "vm", &started, &Policy::default());
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.details["vir_domain_event"], "STARTED_BOOTED");
        assert!(!r.details.contains_key("masakari"));
        assert_eq!(r.event.as_deref(), Some("lifecycle"));
    }

    #[test]
    fn state_records_are_judged_by_the_policy() {
        let r = state_record(&seen(State::Paused, "ioerror"), &Policy::default());
        assert_eq!(r.status, Status::Critical);
        assert_eq!(r.name, "instance-0000002a");
        assert_eq!(r.summary, "instance-0000002a is paused (ioerror)");
    }
}
