//! Link the binaries as position-dependent executables: a PIE spends its
//! start-up applying ~10,000 relative relocations (mostly rustls' and the
//! CA roots' static tables), measurable in a one-shot probe (BENCHMARKS.md).

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
