//! The guest-agent heartbeat (masakari's introspective instance monitor):
//! `guest-ping` through the QEMU guest agent, counted across runs.
//!
//! The agent is behind [`Agent`] so the counting is tested without a real
//! guest: libvirt's test driver cannot talk to agents ("not supported"),
//! and a guest with a QEMU agent needs a real hypervisor.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::report::Status;

/// What one ping found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ping {
    /// The agent answered.
    Answered,
    /// It did not answer in time, or answered with an error.
    Failed(String),
    /// This hypervisor cannot reach guest agents at all (libvirt's test
    /// driver, a non-QEMU domain): not the guest's fault, not counted.
    Unsupported(String),
}

/// Something that can ping a domain's guest agent.
pub trait Agent {
    /// Send `guest-ping` to the domain with this UUID and wait up to `timeout`.
    fn ping(&self, uuid: &str, timeout: Duration) -> Ping;
}

/// One domain's heartbeat, kept in `--state` between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// Pings missed in a row.
    pub consecutive_failures: u32,
    /// Whether the agent has ever answered.
    pub ever_answered: bool,
    /// When it last answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_answer: Option<String>,
    /// Whether the failure has been reported as an event (once per outage).
    pub reported: bool,
}

/// The verdict on one ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The record's status.
    pub status: Status,
    /// The record's summary.
    pub summary: String,
    /// `agent_unreachable` when the threshold is crossed (masakari's
    /// `QEMU_GUEST_AGENT_ERROR` notification), `agent_recovered` when a
    /// reported agent answers again.
    pub event: Option<&'static str>,
}

/// Count one ping into `beat`. `threshold` missed pings in a row are
/// critical and reported once; a guest whose agent never answered is
/// reported the same way (masakari stays silent about those).
pub fn step(beat: &mut Beat, ping: &Ping, threshold: u32, now: &str) -> Verdict {
    let threshold = threshold.max(1);
    match ping {
        Ping::Answered => {
            let event = beat.reported.then_some("agent_recovered");
            let was = beat.consecutive_failures;
            *beat = Beat {
                consecutive_failures: 0,
                ever_answered: true,
                last_answer: Some(now.to_string()),
                reported: false,
            };
            Verdict {
                status: Status::Ok,
                summary: if was > 0 {
                    format!("guest agent answered again after {was} missed ping(s)")
                } else {
                    "guest agent answered".to_string()
                },
                event,
            }
        }
        Ping::Unsupported(why) => Verdict {
            status: Status::Unknown,
            summary: format!("cannot ping the guest agent here: {why}"),
            event: None,
        },
        Ping::Failed(why) => {
            beat.consecutive_failures = beat.consecutive_failures.saturating_add(1);
            let n = beat.consecutive_failures;
            if n < threshold {
                return Verdict {
                    status: Status::Ok,
                    summary: format!(
                        "guest agent missed {n} ping(s) in a row (critical at {threshold}): {why}"
                    ),
                    event: None,
                };
            }
            let event = (!beat.reported).then_some("agent_unreachable");
            beat.reported = true;
            let summary = if beat.ever_answered {
                format!("guest agent has not answered {n} pings in a row: {why}")
            } else {
                format!("guest agent has never answered ({n} pings): {why}")
            };
            Verdict {
                status: Status::Critical,
                summary,
                event,
            }
        }
    }
}

/// Whether a domain's XML declares a QEMU guest-agent channel (masakari's
/// introspective monitor pings only those).
pub fn has_agent_channel(xml: &str) -> bool {
    xml.contains("org.qemu.guest_agent.0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Ping {
        Ping::Failed("Guest agent is not responding".into())
    }

    #[test]
    fn three_missed_pings_report_once_then_recovery_reports_once() {
        let mut beat = Beat {
            ever_answered: true,
            ..Beat::default()
        };
        let v1 = step(&mut beat, &failed(), 3, "t1");
        let v2 = step(&mut beat, &failed(), 3, "t2");
        assert_eq!((v1.status, v2.status), (Status::Ok, Status::Ok));
        assert!(v2.summary.contains("missed 2"), "{}", v2.summary);
        let v3 = step(&mut beat, &failed(), 3, "t3");
        assert_eq!(v3.status, Status::Critical);
        assert_eq!(v3.event, Some("agent_unreachable"));
        let v4 = step(&mut beat, &failed(), 3, "t4");
        assert_eq!(
            (v4.status, v4.event),
            (Status::Critical, None),
            "reported once per outage"
        );
        let v5 = step(&mut beat, &Ping::Answered, 3, "t5");
        assert_eq!((v5.status, v5.event), (Status::Ok, Some("agent_recovered")));
        assert_eq!(beat.consecutive_failures, 0);
        assert_eq!(beat.last_answer.as_deref(), Some("t5"));
    }

    #[test]
    fn a_guest_that_never_answered_is_reported() {
        let mut beat = Beat::default();
        let v = step(&mut beat, &failed(), 1, "t1");
        assert_eq!(v.status, Status::Critical);
        assert!(v.summary.contains("never answered"), "{}", v.summary);
    }

    #[test]
    fn unsupported_is_unknown_and_not_counted() {
        let mut beat = Beat::default();
        let v = step(
            &mut beat,
            &Ping::Unsupported("not supported".into()),
            3,
            "t",
        );
        assert_eq!(v.status, Status::Unknown);
        assert_eq!(beat, Beat::default());
    }

    #[test]
    fn agent_channel_is_found_in_the_domain_xml() {
        assert!(has_agent_channel(
            "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
        ));
        assert!(!has_agent_channel("<domain type='test'/>"));
    }
}
