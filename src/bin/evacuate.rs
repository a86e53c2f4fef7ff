//! evacuate: move every instance off a dead compute host through Nova. See `evacuate --help`.

fn main() -> std::process::ExitCode {
    skyprobe::cli::main::<skyprobe::evacuate::cli::Args>()
}
