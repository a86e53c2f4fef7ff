//! The only unsafe code in skyprobe: the libvirt calls the `virt` crate
//! (0.5) does not wrap safely.
//!
//! - `virDomainGetState` itself, because `Domain::state()` drops the error
//!   and returns "unknown" when the call fails (a domain that vanished, a
//!   connection that dropped), which would turn an error into a state.
//! - Domain event registration (`virConnectDomainEventRegisterAny`), which
//!   virt 0.5 does not expose at all.
//!
//! Safety argument, once for the module:
//! - Every pointer handed to libvirt comes from a live `Connect` or
//!   `Domain` borrowed for the whole call, so it cannot be freed meanwhile.
//! - The callbacks' `opaque` is an `Arc<Queue>` turned into a raw pointer
//!   by `Arc::into_raw`, one strong count per registration; libvirt calls
//!   [`release`] exactly once when the registration ends (deregistered or
//!   the connection closed), which takes that count back. The queue is
//!   therefore alive whenever a callback runs.
//! - libvirt calls the callbacks from `virEventRunDefaultImpl`, on the
//!   thread that runs the event loop; the queue is a `Mutex` anyway.
//! - Every callback type is cast to the generic callback type, as libvirt's
//!   own `VIR_DOMAIN_EVENT_CALLBACK` macro does; libvirt calls it back with
//!   the argument list of the event ID it was registered for, which is the
//!   list the function was defined with.
//! - Strings from libvirt are read only when non-null and copied at once;
//!   the domain's name and UUID buffers belong to the domain, alive for the
//!   callback's duration.
//! - Callbacks never unwind: they only lock (ignoring poison) and push.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::{Arc, Mutex};

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::Error;
use virt::sys;

use super::model::EventKind;

/// `virDomainGetState`: `(state, reason)` as libvirt's numbers, or the
/// error that `Domain::state()` hides.
pub fn domain_state(dom: &Domain) -> Result<(i32, i32), Error> {
    let mut state: c_int = -1;
    let mut reason: c_int = -1;
    // SAFETY: see the module comment; `dom` is borrowed for the call and
    // the two out-pointers are to locals.
    let rc = unsafe { sys::virDomainGetState(dom.as_ptr(), &mut state, &mut reason, 0) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    Ok((state, reason))
}

/// One event as it arrived.
#[derive(Debug, Clone)]
pub struct Arrived {
    /// The domain's UUID.
    pub uuid: String,
    /// The domain's name.
    pub name: String,
    /// What happened.
    pub kind: EventKind,
}

type Queue = Mutex<Vec<Arrived>>;

/// Domain events registered on one connection; deregistered on drop.
pub struct Subscription {
    conn: Connect,
    ids: Vec<c_int>,
    queue: Arc<Queue>,
}

impl Subscription {
    /// Register for lifecycle, reboot, watchdog, I/O-error (with reason) and
    /// control-error events of every domain on `conn`.
    pub fn new(conn: &Connect) -> Result<Subscription, Error> {
        let mut sub = Subscription {
            conn: conn.clone(),
            ids: Vec::new(),
            queue: Arc::new(Mutex::new(Vec::new())),
        };
        // SAFETY (each transmute): a specific domain-event callback cast to
        // the generic type, as libvirt's VIR_DOMAIN_EVENT_CALLBACK does;
        // libvirt calls it with the arguments of its event ID.
        let callbacks: [(u32, sys::virConnectDomainEventGenericCallback); 5] = unsafe {
            [
                (
                    sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                    Some(std::mem::transmute::<
                        unsafe extern "C" fn(
                            sys::virConnectPtr,
                            sys::virDomainPtr,
                            c_int,
                            c_int,
                            *mut c_void,
                        ) -> c_int,
                        unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, *mut c_void),
                    >(on_lifecycle)),
                ),
                (sys::VIR_DOMAIN_EVENT_ID_REBOOT, Some(on_reboot)),
                (
                    sys::VIR_DOMAIN_EVENT_ID_WATCHDOG,
                    Some(std::mem::transmute::<
                        unsafe extern "C" fn(
                            sys::virConnectPtr,
                            sys::virDomainPtr,
                            c_int,
                            *mut c_void,
                        ),
                        unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, *mut c_void),
                    >(on_watchdog)),
                ),
                (
                    sys::VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON,
                    Some(std::mem::transmute::<
                        unsafe extern "C" fn(
                            sys::virConnectPtr,
                            sys::virDomainPtr,
                            *const c_char,
                            *const c_char,
                            c_int,
                            *const c_char,
                            *mut c_void,
                        ),
                        unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, *mut c_void),
                    >(on_io_error)),
                ),
                (
                    sys::VIR_DOMAIN_EVENT_ID_CONTROL_ERROR,
                    Some(on_control_error),
                ),
            ]
        };
        for (event_id, cb) in callbacks {
            let opaque = Arc::into_raw(Arc::clone(&sub.queue)) as *mut c_void;
            // SAFETY: see the module comment: the connection is alive, and
            // `release` takes back the count given to `opaque`.
            let id = unsafe {
                sys::virConnectDomainEventRegisterAny(
                    sub.conn.as_ptr(),
                    std::ptr::null_mut(),
                    event_id as c_int,
                    cb,
                    opaque,
                    Some(release),
                )
            };
            if id < 0 {
                // libvirt did not keep `opaque`: take its count back here.
                // SAFETY: the pointer came from Arc::into_raw just above and
                // libvirt never saw it as registered.
                drop(unsafe { Arc::from_raw(opaque as *const Queue) });
                return Err(Error::last_error());
            }
            sub.ids.push(id);
        }
        Ok(sub)
    }

    /// The events that arrived since the last call, oldest first.
    pub fn drain(&self) -> Vec<Arrived> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            // A dead connection refuses; libvirt frees the registration
            // with the connection then.
            // SAFETY: the connection is alive (we hold a reference).
            let _ = unsafe { sys::virConnectDomainEventDeregisterAny(self.conn.as_ptr(), id) };
        }
    }
}

unsafe extern "C" fn release(opaque: *mut c_void) {
    // SAFETY: `opaque` is the pointer made by Arc::into_raw at registration;
    // libvirt calls this once per registration.
    drop(unsafe { Arc::from_raw(opaque as *const Queue) });
}

/// Copy a C string libvirt owns, if there is one.
unsafe fn text(ptr: *const c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        // SAFETY: non-null, NUL-terminated, owned by libvirt for the call.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    }
}

unsafe fn push(dom: sys::virDomainPtr, opaque: *mut c_void, kind: EventKind) {
    // VIR_UUID_STRING_BUFLEN: 36 characters and the NUL.
    let mut buf: [c_char; 37] = [0; 37];
    // SAFETY: `dom` is valid for the callback; the buffer has the size
    // libvirt documents for this call.
    let uuid = if unsafe { sys::virDomainGetUUIDString(dom, buf.as_mut_ptr()) } == 0 {
        // SAFETY: libvirt wrote a NUL-terminated string into `buf`.
        unsafe { text(buf.as_ptr()) }
    } else {
        String::new()
    };
    // SAFETY: the name belongs to `dom`, valid for the callback.
    let name = unsafe { text(sys::virDomainGetName(dom)) };
    // SAFETY: `opaque` is our queue, alive while registered (module comment).
    let queue = unsafe { &*(opaque as *const Queue) };
    queue
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Arrived { uuid, name, kind });
}

unsafe extern "C" fn on_lifecycle(
    _conn: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    event: c_int,
    detail: c_int,
    opaque: *mut c_void,
) -> c_int {
    // SAFETY: called by libvirt with a live domain and our opaque.
    unsafe { push(dom, opaque, EventKind::Lifecycle { event, detail }) };
    0
}

unsafe extern "C" fn on_reboot(
    _conn: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    opaque: *mut c_void,
) {
    // SAFETY: as on_lifecycle.
    unsafe { push(dom, opaque, EventKind::Reboot) };
}

unsafe extern "C" fn on_control_error(
    _conn: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    opaque: *mut c_void,
) {
    // SAFETY: as on_lifecycle.
    unsafe { push(dom, opaque, EventKind::ControlError) };
}

unsafe extern "C" fn on_watchdog(
    _conn: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    action: c_int,
    opaque: *mut c_void,
) {
    // SAFETY: as on_lifecycle.
    unsafe { push(dom, opaque, EventKind::Watchdog { action }) };
}

unsafe extern "C" fn on_io_error(
    _conn: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    src_path: *const c_char,
    dev_alias: *const c_char,
    action: c_int,
    reason: *const c_char,
    opaque: *mut c_void,
) {
    // SAFETY: as on_lifecycle; the strings are libvirt's for the call.
    unsafe {
        let kind = EventKind::IoError {
            action,
            src_path: text(src_path),
            dev_alias: text(dev_alias),
            reason: text(reason),
        };
        push(dom, opaque, kind);
    }
}
