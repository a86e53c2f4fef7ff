//! probe-host: TCP ports and ICMP echo for many hosts at once. See `probe-host --help`.

fn main() -> std::process::ExitCode {
    skyprobe::cli::main::<skyprobe::host::cli::Args>()
}
