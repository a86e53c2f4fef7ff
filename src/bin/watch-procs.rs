//! watch-procs: keep processes running, or count them. See `watch-procs --help`.

fn main() -> std::process::ExitCode {
    skyprobe::cli::main::<skyprobe::procs::cli::Args>()
}
