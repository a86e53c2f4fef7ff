//! A command run for its output, bounded by a deadline: the whole process
//! group is killed when the deadline comes, and what it printed is capped.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a command left behind.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Its exit code (None: killed by a signal).
    pub code: Option<i32>,
    /// Its standard output, at most the bytes asked for.
    pub stdout: Vec<u8>,
    /// The last line of its standard error.
    pub stderr_tail: String,
    /// How long it ran.
    pub took: Duration,
}

/// Why there is no output.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failed {
    /// It could not start.
    #[error("cannot run {0}: {1}")]
    Spawn(String, String),
    /// It was still running at the deadline and was killed.
    #[error("{0} did not finish within {1:.1} s; killed")]
    TimedOut(String, f64),
}

/// Run `argv` (no shell) with `env` added, until `deadline`; read at most
/// `max` bytes of its standard output.
pub fn output(
    argv: &[String],
    env: &[(String, String)],
    deadline: Instant,
    max: u64,
) -> Result<Output, Failed> {
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let Some((program, args)) = argv.split_first() else {
        return Err(Failed::Spawn("(nothing)".into(), "empty command".into()));
    };
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Failed::Spawn(program.clone(), e.to_string()))?;
    let pid = child.id() as i32;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(o) = stdout {
            let mut o = o.take(max);
            let _ = o.read_to_end(&mut bytes);
            // Drain the rest so the command is not stopped by a full pipe.
            let mut rest = o.into_inner();
            let _ = std::io::copy(&mut rest, &mut std::io::sink());
        }
        bytes
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(e) = stderr {
            let _ = e.take(64 * 1024).read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text)
            .trim()
            .lines()
            .last()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect::<String>()
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(status) => {
            let code = status.ok().and_then(|s| s.code());
            Ok(Output {
                code,
                stdout: out_reader.join().unwrap_or_default(),
                stderr_tail: err_reader.join().unwrap_or_default(),
                took: started.elapsed(),
            })
        }
        Err(_) => {
            // The whole group: a shell and what it started. The readers
            // end when the pipes close.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = rx.recv_timeout(Duration::from_secs(2));
            Err(Failed::TimedOut(
                program.clone(),
                started.elapsed().as_secs_f64(),
            ))
        }
    }
}

/// Split a command line into words as a POSIX shell would (quotes and
/// backslashes), without running a shell.
pub fn split(text: &str) -> Result<Vec<String>, String> {
    let words = shlex::split(text).ok_or_else(|| format!("{text:?}: unbalanced quotes"))?;
    if words.is_empty() {
        return Err("an empty command".into());
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_read_and_a_hang_is_killed_at_the_deadline() {
        let argv = |s: &str| split(s).expect("words");
        let out = output(
            &argv("sh -c 'echo hi; echo oops >&2; exit 3'"),
            &[],
            Instant::now() + Duration::from_secs(10),
            1024,
        )
        .expect("ran");
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, b"hi\n");
        assert_eq!(out.stderr_tail, "oops");
        let started = Instant::now();
        let hung = output(
            &argv("sh -c 'sleep 30 & sleep 30'"),
            &[],
            Instant::now() + Duration::from_millis(200),
            1024,
        );
        assert!(matches!(hung, Err(Failed::TimedOut(..))), "{hung:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(
            output(
                &argv("/nonexistent/x"),
                &[],
                Instant::now() + Duration::from_secs(1),
                10
            ),
            Err(Failed::Spawn(..))
        ));
        assert!(split("a 'b").is_err());
    }
}
