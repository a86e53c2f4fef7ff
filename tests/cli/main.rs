//! Integration tests: the real binaries against real servers started by the
//! tests. One module per binary; shared helpers in `common`.

mod canary;
mod common;
mod docs;
mod drill;
mod evacuate;
mod examples;
mod fuzz;
mod keystone;
mod notify;
mod openstack;
#[cfg(feature = "libvirt")]
mod package;
mod probe_host;
mod probe_http;
mod schema;
mod security;
mod verdict;
#[cfg(feature = "libvirt")]
mod watch_domains;
mod watch_procs;
