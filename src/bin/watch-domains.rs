//! watch-domains: libvirt domain states, changes, events and guest-agent
//! heartbeats. See `watch-domains --help`. Built with `--features libvirt`.

fn main() -> std::process::ExitCode {
    skyprobe::cli::main::<skyprobe::domains::cli::Args>()
}
