//! The real hypervisor: a read-only libvirt connection through the `virt`
//! crate (feature `libvirt`).

use std::sync::Once;
use std::time::Duration;

use virt::connect::Connect;
use virt::error::{Error, ErrorNumber};

use super::ffi::{self, Subscription};
use super::heartbeat::{Agent, Ping};
use super::model::{Seen, State};

fn is(e: &Error, code: ErrorNumber) -> bool {
    e.code().is_known_and(|c| c == code)
}

/// libvirt's message without the `[code=.. domain=..]` tail of its Display.
pub fn message(e: &Error) -> String {
    let m = e.message().trim();
    if m.is_empty() {
        e.to_string()
    } else {
        m.replace('\n', " ")
    }
}

static QUIET: Once = Once::new();
static EVENT_LOOP: Once = Once::new();

/// Stop libvirt printing every error to stderr: errors come back as values
/// and end up in records.
fn quiet() {
    QUIET.call_once(virt::error::clear_error_callback);
}

/// Register libvirt's default event loop (before any connection that will
/// deliver events or keepalives), with a tick so that one iteration never
/// waits longer than `tick`.
pub fn start_event_loop(tick: Duration) -> Result<(), String> {
    quiet();
    let mut result = Ok(());
    EVENT_LOOP.call_once(|| {
        result = virt::event::event_register_default_impl()
            .map_err(|e| format!("cannot start libvirt's event loop: {}", message(&e)))
            .and_then(|()| {
                let ms = i32::try_from(tick.as_millis()).unwrap_or(i32::MAX).max(1);
                virt::event::event_add_timeout(ms, |_, _| {}, std::ptr::null_mut())
                    .map(|_watch| ())
                    .map_err(|e| format!("cannot add a libvirt timer: {}", message(&e)))
            });
    });
    result
}

/// Run one iteration of libvirt's event loop: deliver what arrived, or
/// return after at most one tick.
pub fn run_event_loop_once() -> Result<(), String> {
    virt::event::event_run_default_impl()
        .map_err(|e| format!("libvirt's event loop failed: {}", message(&e)))
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    /// What libvirt said.
    pub message: String,
    /// The URI itself is wrong (no such driver, bad syntax): a usage error,
    /// not an outage.
    pub bad_uri: bool,
}

/// A read-only connection to one hypervisor.
pub struct Libvirt {
    conn: Connect,
}

impl Libvirt {
    /// Open `uri` read-only (all a monitor needs, and what a non-root user
    /// may open on `qemu:///system` through polkit's read-only socket), or
    /// read-write: libvirt refuses guest-agent commands on a read-only
    /// connection ("read only access prevents virDomainQemuAgentCommand").
    pub fn open(uri: &str, read_write: bool) -> Result<Libvirt, OpenError> {
        quiet();
        let opened = if read_write {
            Connect::open(Some(uri))
        } else {
            Connect::open_read_only(Some(uri))
        };
        opened.map(|conn| Libvirt { conn }).map_err(|e| OpenError {
            // libvirt reports an unparsable URI as an internal error.
            bad_uri: is(&e, ErrorNumber::NoConnect)
                || is(&e, ErrorNumber::InvalidArg)
                || is(&e, ErrorNumber::ParseFailed)
                || e.message().contains("Unable to parse URI"),
            message: message(&e),
        })
    }

    /// Every domain with its state and reason, defined or running. A domain
    /// that disappears while being listed is left out; any other error ends
    /// the look (a half list would read as domains vanishing).
    pub fn snapshot(&self) -> Result<Vec<Seen>, String> {
        let domains = self
            .conn
            .list_all_domains(0)
            .map_err(|e| format!("cannot list domains: {}", message(&e)))?;
        let mut seen = Vec::with_capacity(domains.len());
        for dom in &domains {
            let gone = |e: &Error| is(e, ErrorNumber::NoDomain);
            let read = || -> Result<Seen, Error> {
                let uuid = dom.uuid_string()?;
                let name = dom.name()?;
                let (state, reason) = ffi::domain_state(dom)?;
                let (state, reason) = match State::from_raw(state) {
                    Some(s) => (s, s.reason_name(reason)),
                    None => (State::Nostate, format!("state-{state}")),
                };
                Ok(Seen {
                    uuid,
                    name,
                    state,
                    reason,
                })
            };
            match read() {
                Ok(s) => seen.push(s),
                Err(e) if gone(&e) => {}
                Err(e) => return Err(format!("cannot read a domain's state: {}", message(&e))),
            }
        }
        seen.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.uuid.cmp(&b.uuid)));
        Ok(seen)
    }

    /// Whether the domain declares a QEMU guest-agent channel.
    pub fn has_agent_channel(&self, uuid: &str) -> Result<bool, String> {
        let dom = self
            .conn
            .lookup_domain_by_uuid_string(uuid)
            .map_err(|e| message(&e))?;
        let xml = dom.xml_desc(0).map_err(|e| message(&e))?;
        Ok(super::heartbeat::has_agent_channel(&xml))
    }

    /// Whether the connection is still up (false once the daemon went away
    /// or keepalive gave up).
    pub fn is_alive(&self) -> bool {
        self.conn.is_alive().unwrap_or(false)
    }

    /// Ask the daemon for keepalive probes: a daemon that stops answering
    /// is noticed after about `interval * (count + 1)`. Drivers without
    /// keepalive (in-process ones) ignore it.
    pub fn keepalive(&self, interval: Duration, count: u32) {
        let secs = i32::try_from(interval.as_secs()).unwrap_or(i32::MAX).max(1);
        let _ = self.conn.set_keep_alive(secs, count);
    }

    /// Subscribe to domain events on this connection.
    pub fn subscribe(&self) -> Result<Subscription, String> {
        Subscription::new(&self.conn)
            .map_err(|e| format!("cannot subscribe to domain events: {}", message(&e)))
    }
}

impl Agent for Libvirt {
    fn ping(&self, uuid: &str, timeout: Duration) -> Ping {
        let dom = match self.conn.lookup_domain_by_uuid_string(uuid) {
            Ok(d) => d,
            Err(e) => return Ping::Failed(message(&e)),
        };
        // libvirt takes whole seconds; round up so 1500ms is not 1 s.
        let secs = i32::try_from(timeout.as_millis().div_ceil(1000))
            .unwrap_or(i32::MAX)
            .max(1);
        match dom.qemu_agent_command(r#"{"execute":"guest-ping"}"#, secs, 0) {
            Ok(_) => Ping::Answered,
            Err(e)
                if is(&e, ErrorNumber::NoSupport)
                    || is(&e, ErrorNumber::OperationUnsupported)
                    || is(&e, ErrorNumber::ArgumentUnsupported) =>
            {
                Ping::Unsupported(message(&e))
            }
            Err(e) => Ping::Failed(message(&e)),
        }
    }
}
