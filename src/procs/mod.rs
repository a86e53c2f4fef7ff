//! Processes: keep the ones that must run running (masakari processmonitor
//! parity) and count them like check_procs, from /proc directly.

pub mod cli;
pub mod config;
pub mod count;
pub mod supervise;
pub mod table;

/// The `check` field of watch-procs' records.
pub const CHECK: &str = "watch-procs";
