//! Man pages and shell completions are generated from the same clap
//! definitions as the binaries and committed; this fails when they are
//! stale. Regenerate with `SKYPROBE_UPDATE_DOCS=1 cargo test --features libvirt --test cli docs`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

fn commands() -> Vec<clap::Command> {
    vec![
        skyprobe::http::cli::Args::command(),
        skyprobe::host::cli::Args::command(),
        skyprobe::procs::cli::Args::command(),
        skyprobe::notify::cli::Args::command(),
        skyprobe::notify::cli::HistoryArgs::command(),
        skyprobe::canary::cli::Top::command(),
        skyprobe::canary::cli::ServeArgs::command(),
        skyprobe::canary::cli::ProbeArgs::command(),
        skyprobe::canary::cli::MatrixArgs::command(),
        skyprobe::evacuate::cli::Args::command(),
        #[cfg(feature = "libvirt")]
        skyprobe::domains::cli::Args::command(),
    ]
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compare `path` with `contents`; rewrite it when asked, else fail.
fn ensure_file_contents(path: &Path, contents: &[u8], stale: &mut Vec<String>) {
    if std::fs::read(path).ok().as_deref() == Some(contents) {
        return;
    }
    if std::env::var_os("SKYPROBE_UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write");
    } else {
        stale.push(
            path.strip_prefix(root())
                .unwrap_or(path)
                .display()
                .to_string(),
        );
    }
}

#[test]
fn docs_man_pages_and_completions_are_fresh() {
    let mut stale = Vec::new();
    for mut cmd in commands() {
        let name = cmd.get_name().to_string();
        cmd.build();
        let mut man = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .render(&mut man)
            .expect("man page");
        ensure_file_contents(
            &root().join("man").join(format!("{name}.1")),
            &man,
            &mut stale,
        );
        if name.ends_with("-history") || name.starts_with("canary-peer-") {
            // Reached as `notify history` or `canary-peer serve`: a man page
            // (notify-history(1)) helps, completion files under that name
            // would never be used (canary-peer's own hold its commands).
            continue;
        }
        // `notify history` is parsed apart from notify's own flags, but the
        // shell should offer it (and its flags) after `notify`.
        let mut cmd = if name == "notify" {
            let history = skyprobe::notify::cli::HistoryArgs::command().name("history");
            let mut with = cmd.subcommand(history);
            with.build();
            with
        } else {
            cmd
        };
        for (shell, file) in [
            (clap_complete::Shell::Bash, format!("{name}.bash")),
            (clap_complete::Shell::Zsh, format!("_{name}")),
            (clap_complete::Shell::Fish, format!("{name}.fish")),
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, &name, &mut out);
            ensure_file_contents(&root().join("completions").join(file), &out, &mut stale);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated docs: {stale:?}; run SKYPROBE_UPDATE_DOCS=1 cargo test --features libvirt --test cli docs"
    );
}
