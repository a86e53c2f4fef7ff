//! notify: records on stdin to alerts, delivered at least once. See
//! `notify --help`; `notify history [KEY]` lists the transitions.

fn main() -> std::process::ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "history") {
        args.remove(1);
        return skyprobe::notify::cli::history_main(args);
    }
    skyprobe::cli::main_with::<skyprobe::notify::cli::Args>(args)
}
