//! skyprobe: small, composable, one-shot checks for people who run clouds.
//!
//! Every binary in `src/bin/` parses its flags, calls one check in this
//! library, and hands the resulting [`report::Record`]s to [`render`]; the
//! shared edge helper [`cli::main`] maps the worst status to the exit code.
//! The library itself never prints and never exits the process.

pub mod canary;
pub mod cli;
pub mod command;
pub mod domains;
pub mod evacuate;
pub mod files;
#[doc(hidden)]
pub mod fuzz;
pub mod host;
pub mod http;
pub mod net;
pub mod notify;
pub mod openstack;
pub mod pool;
pub mod procs;
pub mod records;
pub mod redact;
pub mod reload;
pub mod render;
pub mod report;
pub mod state;
pub mod threshold;
pub mod units;
