//! One AFL++ harness for every target in `skyprobe::fuzz::TARGETS`, chosen
//! by `SKYPROBE_FUZZ_TARGET` (see FUZZING.md and `fuzz/run.sh`).

fn main() {
    let target = std::env::var("SKYPROBE_FUZZ_TARGET").unwrap_or_default();
    if !skyprobe::fuzz::TARGETS.contains(&target.as_str()) {
        eprintln!(
            "SKYPROBE_FUZZ_TARGET={target:?}: not a target; one of {}",
            skyprobe::fuzz::TARGETS.join(", ")
        );
        std::process::exit(3);
    }
    afl::fuzz!(|data: &[u8]| {
        skyprobe::fuzz::run(&target, data);
    });
}
