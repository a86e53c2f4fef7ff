//! The Debian packages (scripts/deb.sh, cargo-deb), made from this test
//! run's binaries: installed with `dpkg -i` on this machine, every binary
//! run from its installed path, a man page read with `man`, the completions
//! and units where their tools look, then purged with nothing left behind.
//! Needs root; scripts/test.sh installs cargo-deb and dpkg is Debian's own.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const PACKAGES: [&str; 2] = ["skyprobe", "skyprobe-watch-domains"];

fn sh(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Purges the packages however the test ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").arg("--purge").args(PACKAGES).output();
    }
}

#[test]
fn the_debian_packages_install_run_read_and_purge() {
    let cargo_deb = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !needs_root("dpkg -i and cargo-deb", cargo_deb) {
        return;
    }
    for p in PACKAGES {
        assert!(
            !installed(p),
            "{p} is already installed on this machine: this test installs and purges it, so it will not touch an operator's copy"
        );
    }
    let dir = TempDir::new("deb");
    let out = dir.0.join("out");
    sh(Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/deb.sh"))
        .args(["--profile", "dev"])
        .arg(&out));
    let debs: Vec<_> = PACKAGES
        .iter()
        .map(|p| out.join(format!("{p}_{}-1_amd64.deb", env!("CARGO_PKG_VERSION"))))
        .collect();
    for d in &debs {
        assert!(d.exists(), "{} was not made", d.display());
    }
    // The six need libc alone; libvirt only for watch-domains.
    let depends = |deb: &Path| {
        String::from_utf8_lossy(
            &sh(Command::new("dpkg-deb")
                .args(["-f"])
                .arg(deb)
                .arg("Depends"))
            .stdout,
        )
        .to_string()
    };
    assert!(
        !depends(&debs[0]).contains("libvirt"),
        "{}",
        depends(&debs[0])
    );
    assert!(
        depends(&debs[1]).contains("libvirt0"),
        "{}",
        depends(&debs[1])
    );

    let _purge = Purge;
    sh(Command::new("dpkg").arg("-i").args(&debs));
    for bin in [
        "probe-http",
        "probe-host",
        "watch-procs",
        "watch-domains",
        "canary-peer",
        "notify",
        "evacuate",
    ] {
        let path = format!("/usr/bin/{bin}");
        let v = sh(Command::new(&path).arg("--version"));
        let text = String::from_utf8_lossy(&v.stdout);
        assert!(
            text.starts_with(&format!("{bin} {}", env!("CARGO_PKG_VERSION"))),
            "{path} --version: {text}"
        );
        for f in [
            format!("/usr/share/man/man1/{bin}.1.gz"),
            format!("/usr/share/bash-completion/completions/{bin}"),
            format!("/usr/share/zsh/vendor-completions/_{bin}"),
            format!("/usr/share/fish/vendor_completions.d/{bin}.fish"),
        ] {
            assert!(Path::new(&f).exists(), "{f} is not installed");
        }
    }
    // man finds the page by name, as an operator would ask for it.
    let page = sh(Command::new("man")
        .args(["-P", "cat", "probe-host"])
        .env("MANWIDTH", "100"));
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.contains("probe-host"), "{page}");
    assert!(page.contains("--min-alive-hosts"), "{page}");
    // The units name the installed binaries; the examples are there.
    for unit in [
        "skyprobe-http.service",
        "skyprobe-procs.service",
        "skyprobe-domains.service",
    ] {
        let text = std::fs::read_to_string(format!("/lib/systemd/system/{unit}")).expect(unit);
        assert!(text.contains("ExecStart=/usr/bin/"), "{unit}: {text}");
        assert!(!text.contains("/usr/local/bin"), "{unit}: {text}");
    }
    for f in [
        "/usr/share/doc/skyprobe/examples/icinga2/probe-host.conf",
        "/usr/share/doc/skyprobe/examples/evacuate/host-ha.sh",
        "/usr/share/doc/skyprobe/examples/notify/notify.toml",
        "/usr/share/doc/skyprobe-watch-domains/examples/watch-domains.cron",
    ] {
        assert!(Path::new(f).exists(), "{f} is not installed");
    }

    // Purged: nothing of either package stays.
    sh(Command::new("dpkg").arg("--purge").args(PACKAGES));
    for p in PACKAGES {
        assert!(!installed(p), "{p} still installed");
    }
    for f in [
        "/usr/bin/probe-http",
        "/usr/bin/watch-domains",
        "/usr/share/man/man1/probe-host.1.gz",
        "/lib/systemd/system/skyprobe-http.service",
        "/usr/share/doc/skyprobe",
        "/usr/share/doc/skyprobe-watch-domains",
    ] {
        assert!(!Path::new(f).exists(), "{f} left after the purge");
    }
}
