//! probe-http: an HTTP(S) check. See `probe-http --help` and man/probe-http.1.

fn main() -> std::process::ExitCode {
    skyprobe::cli::main::<skyprobe::http::cli::Args>()
}
