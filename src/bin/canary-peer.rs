//! canary-peer: a canary that serves its peers and measures them. See `canary-peer --help`.

fn main() -> std::process::ExitCode {
    skyprobe::canary::cli::main(std::env::args_os().collect())
}
