//! The process list: skyprobe's TOML, or masakari's `process_list.yaml`
//! read as it is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::UsageError;

/// How to recognise a process. Every rule given must hold.
#[derive(Debug, Clone, Default)]
pub struct MatchRules {
    /// Exact command name (comm).
    pub comm: Option<String>,
    /// Executable path (the `/proc/PID/exe` link).
    pub exe: Option<PathBuf>,
    /// Exact full command line (arguments joined by single spaces).
    pub cmdline: Option<String>,
    /// Pattern the full command line must match.
    pub cmdline_regex: Option<regex::Regex>,
    /// File holding the pid.
    pub pidfile: Option<PathBuf>,
    /// Owner of the process.
    pub user: Option<String>,
    /// masakari's `process_name`: matched as a whole program name or
    /// command-line prefix, never as a substring of unrelated text.
    pub masakari_name: Option<String>,
}

/// A command to run: an argv list, executed directly. A list in the
/// configuration is always run directly; a string only through `/bin/sh -c`
/// when the entry says `shell = true`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandLine {
    /// Program and arguments.
    pub argv: Vec<String>,
}

impl CommandLine {
    /// As the operator would type it.
    pub fn display(&self) -> String {
        self.argv.join(" ")
    }
}

/// Who runs an entry's commands.
#[derive(Debug, Clone, PartialEq)]
pub enum RunAs {
    /// Whoever runs watch-procs.
    Current,
    /// root (watch-procs must then run as root).
    Root,
    /// This user (watch-procs must then run as root to switch to it).
    User(String),
}

/// One process that must run, and how to bring it back.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Name in records.
    pub name: String,
    /// How to find it.
    pub rules: MatchRules,
    /// At least this many matching processes.
    pub min_count: usize,
    /// Commands for a process found down: pre, main, post.
    pub pre: Option<CommandLine>,
    /// The restart (or start) command.
    pub main: Option<CommandLine>,
    /// Runs after the main command.
    pub post: Option<CommandLine>,
    /// Who runs them.
    pub run_as: RunAs,
    /// Attempts before giving up for this run.
    pub retries: u32,
    /// Pause between attempts.
    pub interval: Duration,
    /// A command running longer is killed.
    pub command_timeout: Duration,
    /// Wait this long after a restart before checking it stayed up.
    pub verify_delay: Duration,
}

/// Settings that apply to every entry unless it says otherwise.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// Attempts (masakari `restart_retries`, default 3).
    pub retries: u32,
    /// Pause between attempts (masakari `restart_interval`, default 5 s).
    pub interval: Duration,
    /// Kill a command after this long.
    pub command_timeout: Duration,
    /// Re-verify delay.
    pub verify_delay: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            retries: 3,
            interval: Duration::from_secs(5),
            command_timeout: Duration::from_secs(30),
            verify_delay: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawCommand {
    Argv(Vec<String>),
    Line(String),
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    restart_retries: Option<u32>,
    restart_interval: Option<String>,
    command_timeout: Option<String>,
    verify_delay: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    name: String,
    comm: Option<String>,
    exe: Option<PathBuf>,
    cmdline: Option<String>,
    cmdline_regex: Option<String>,
    pidfile: Option<PathBuf>,
    user: Option<String>,
    min_count: Option<usize>,
    start: Option<RawCommand>,
    pre_start: Option<RawCommand>,
    post_start: Option<RawCommand>,
    restart: Option<RawCommand>,
    pre_restart: Option<RawCommand>,
    post_restart: Option<RawCommand>,
    #[serde(default)]
    shell: bool,
    run_as: Option<String>,
    restart_retries: Option<u32>,
    restart_interval: Option<String>,
    command_timeout: Option<String>,
    verify_delay: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToml {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    process: Vec<RawProcess>,
}

/// One entry of masakari's process_list.yaml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MasakariEntry {
    process_name: String,
    start_command: Option<String>,
    pre_start_command: Option<String>,
    post_start_command: Option<String>,
    restart_command: Option<String>,
    pre_restart_command: Option<String>,
    post_restart_command: Option<String>,
    #[serde(default)]
    run_as_root: bool,
}

fn duration(
    file: &Path,
    what: &str,
    text: Option<&str>,
    default: Duration,
) -> Result<Duration, UsageError> {
    match text {
        None => Ok(default),
        Some(t) => crate::units::parse_duration(t)
            .map_err(|e| UsageError::new(format!("{}: {what}: {e}", file.display()))),
    }
}

fn command(
    file: &Path,
    entry: &str,
    key: &str,
    raw: Option<RawCommand>,
    shell: bool,
) -> Result<Option<CommandLine>, UsageError> {
    let argv = match raw {
        None => return Ok(None),
        Some(RawCommand::Argv(v)) => v,
        Some(RawCommand::Line(s)) if shell => vec!["/bin/sh".to_string(), "-c".to_string(), s],
        Some(RawCommand::Line(_)) => {
            return Err(UsageError::new(format!(
                "{}: process {entry:?}: {key}: give an argv list ([\"systemctl\", \"restart\", \"x\"]), or set shell = true to run a string through /bin/sh",
                file.display()
            )))
        }
    };
    if argv.is_empty() || argv[0].is_empty() {
        return Err(UsageError::new(format!(
            "{}: process {entry:?}: {key} is empty",
            file.display()
        )));
    }
    Ok(Some(CommandLine { argv }))
}

/// Line number (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Read a process list; the format follows the extension (`.yaml`/`.yml`
/// is masakari's format, anything else TOML).
pub fn load(path: &Path, defaults: &Defaults) -> Result<Vec<Entry>, UsageError> {
    let text = crate::files::read_text(path, crate::files::CONFIG_MAX)
        .map_err(|e| UsageError::new(format!("--config {}: {e}", path.display())))?;
    let is_yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let entries = if is_yaml {
        parse_masakari(path, &text, defaults)?
    } else {
        parse_toml(path, &text, defaults)?
    };
    if entries.is_empty() {
        return Err(UsageError::new(format!(
            "{}: no process to watch in it",
            path.display()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for e in &entries {
        if !seen.insert(e.name.clone()) {
            return Err(UsageError::new(format!(
                "{}: process {:?} is listed twice",
                path.display(),
                e.name
            )));
        }
    }
    Ok(entries)
}

/// Parse skyprobe's TOML process list.
pub fn parse_toml(path: &Path, text: &str, base: &Defaults) -> Result<Vec<Entry>, UsageError> {
    let raw: RawToml = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| format!(":{}", line_of(text, s.start)))
            .unwrap_or_default();
        UsageError::new(format!("{}{line}: {}", path.display(), e.message()))
    })?;
    let d = &raw.defaults;
    let defaults = Defaults {
        retries: d.restart_retries.unwrap_or(base.retries),
        interval: duration(
            path,
            "restart_interval",
            d.restart_interval.as_deref(),
            base.interval,
        )?,
        command_timeout: duration(
            path,
            "command_timeout",
            d.command_timeout.as_deref(),
            base.command_timeout,
        )?,
        verify_delay: duration(
            path,
            "verify_delay",
            d.verify_delay.as_deref(),
            base.verify_delay,
        )?,
    };
    raw.process
        .into_iter()
        .map(|p| {
            let name = p.name.clone();
            let cmdline_regex = p
                .cmdline_regex
                .as_deref()
                .map(|r| {
                    regex::Regex::new(r).map_err(|e| {
                        UsageError::new(format!(
                            "{}: process {name:?}: cmdline_regex: {}",
                            path.display(),
                            crate::cli::regex_words(&e)
                        ))
                    })
                })
                .transpose()?;
            let rules = MatchRules {
                comm: p.comm,
                exe: p.exe,
                cmdline: p.cmdline,
                cmdline_regex,
                pidfile: p.pidfile,
                user: p.user,
                masakari_name: None,
            };
            if rules.comm.is_none()
                && rules.exe.is_none()
                && rules.cmdline.is_none()
                && rules.cmdline_regex.is_none()
                && rules.pidfile.is_none()
            {
                return Err(UsageError::new(format!(
                    "{}: process {name:?}: say how to find it (comm, exe, cmdline, cmdline_regex or pidfile)",
                    path.display()
                )));
            }
            let (pre, main, post) = if p.restart.is_some() {
                (p.pre_restart, p.restart, p.post_restart)
            } else {
                (p.pre_start, p.start, p.post_start)
            };
            let run_as = match p.run_as.as_deref() {
                None => RunAs::Current,
                Some("root") => RunAs::Root,
                Some(u) if !u.is_empty() => RunAs::User(u.to_string()),
                Some(_) => return Err(UsageError::new(format!("{}: process {name:?}: run_as is empty", path.display()))),
            };
            Ok(Entry {
                min_count: p.min_count.unwrap_or(1).max(1),
                pre: command(path, &name, "pre_restart", pre, p.shell)?,
                main: command(path, &name, "restart", main, p.shell)?,
                post: command(path, &name, "post_restart", post, p.shell)?,
                run_as,
                retries: p.restart_retries.unwrap_or(defaults.retries).max(1),
                interval: duration(path, "restart_interval", p.restart_interval.as_deref(), defaults.interval)?,
                command_timeout: duration(path, "command_timeout", p.command_timeout.as_deref(), defaults.command_timeout)?,
                verify_delay: duration(path, "verify_delay", p.verify_delay.as_deref(), defaults.verify_delay)?,
                rules,
                name,
            })
        })
        .collect()
}

/// masakari runs its command strings split on spaces, without a shell.
fn masakari_command(raw: Option<String>) -> Option<CommandLine> {
    let argv: Vec<String> = raw?.split_whitespace().map(str::to_string).collect();
    (!argv.is_empty()).then_some(CommandLine { argv })
}

/// Parse masakari's process_list.yaml as masakari reads it.
pub fn parse_masakari(
    path: &Path,
    text: &str,
    defaults: &Defaults,
) -> Result<Vec<Entry>, UsageError> {
    let raw: Vec<MasakariEntry> = serde_saphyr::from_str(text).map_err(|e| {
        UsageError::new(format!(
            "{}: {}",
            path.display(),
            crate::openstack::config::yaml_words(&e)
        ))
    })?;
    raw.into_iter()
        .map(|m| {
            let name = m.process_name.trim().to_string();
            if name.is_empty() {
                return Err(UsageError::new(format!(
                    "{}: an entry has an empty process_name",
                    path.display()
                )));
            }
            let (pre, main, post) = if m
                .restart_command
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty())
            {
                (
                    m.pre_restart_command,
                    m.restart_command,
                    m.post_restart_command,
                )
            } else {
                (m.pre_start_command, m.start_command, m.post_start_command)
            };
            Ok(Entry {
                rules: MatchRules {
                    masakari_name: Some(name.clone()),
                    ..MatchRules::default()
                },
                name,
                min_count: 1,
                pre: masakari_command(pre),
                main: masakari_command(main),
                post: masakari_command(post),
                run_as: if m.run_as_root {
                    RunAs::Root
                } else {
                    RunAs::Current
                },
                retries: defaults.retries.max(1),
                interval: defaults.interval,
                command_timeout: defaults.command_timeout,
                verify_delay: defaults.verify_delay,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masakari_sample_reads_as_is() {
        let text = "-\n    # libvirt-bin\n    process_name: /usr/sbin/libvirtd\n    start_command: systemctl start libvirt-bin\n    pre_start_command:\n    post_start_command:\n    restart_command: systemctl restart libvirt-bin\n    pre_restart_command:\n    post_restart_command:\n    run_as_root: True\n-\n    # nova-compute\n    process_name: /usr/local/bin/nova-compute\n    start_command: systemctl start nova-compute\n    pre_start_command:\n    post_start_command:\n    restart_command: systemctl restart nova-compute\n    pre_restart_command:\n    post_restart_command:\n    run_as_root: True\n";
        let entries = parse_masakari(Path::new("process_list.yaml"), text, &Defaults::default())
            .expect("parses");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, "/usr/sbin/libvirtd");
        assert_eq!(
            entries[0].main.as_ref().expect("restart").argv,
            ["systemctl", "restart", "libvirt-bin"]
        );
        assert!(entries[0].pre.is_none());
        assert_eq!(entries[1].run_as, RunAs::Root);
        assert_eq!(entries[1].retries, 3);
    }

    #[test]
    fn toml_errors_name_file_and_line() {
        let text = "[[process]]\nname = \"x\"\ncomm = \"x\"\nrestrat = [\"true\"]\n";
        let e = parse_toml(
            Path::new("/etc/skyprobe/procs.toml"),
            text,
            &Defaults::default(),
        )
        .expect_err("typo");
        assert!(
            e.0.starts_with("/etc/skyprobe/procs.toml:4: unknown field `restrat`"),
            "{}",
            e.0
        );
        let e = parse_toml(
            Path::new("p.toml"),
            "[[process]]\nname = \"x\"\n",
            &Defaults::default(),
        )
        .expect_err("no matcher");
        assert!(e.0.contains("say how to find it"), "{}", e.0);
        let e = parse_toml(
            Path::new("p.toml"),
            "[[process]]\nname = \"x\"\ncomm = \"x\"\nrestart = \"systemctl restart x\"\n",
            &Defaults::default(),
        )
        .expect_err("string");
        assert!(e.0.contains("shell = true"), "{}", e.0);
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../examples/watch-procs/procs.toml");
        let e = parse_toml(Path::new("procs.toml"), text, &Defaults::default())
            .expect("example parses");
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].main.as_ref().expect("cmd").argv[0], "/bin/sh");
    }

    #[test]
    fn toml_defaults_and_overrides() {
        let text = "[defaults]\nrestart_retries = 2\nrestart_interval = \"100ms\"\n\n[[process]]\nname = \"a\"\ncomm = \"a\"\nrestart = [\"true\"]\n\n[[process]]\nname = \"b\"\nexe = \"/bin/b\"\nrestart = \"echo hi >&2\"\nshell = true\nrestart_retries = 5\nrun_as = \"nobody\"\n";
        let e = parse_toml(Path::new("p.toml"), text, &Defaults::default()).expect("parses");
        assert_eq!(e[0].retries, 2);
        assert_eq!(e[0].interval, Duration::from_millis(100));
        assert_eq!(e[1].retries, 5);
        assert_eq!(
            e[1].main.as_ref().expect("cmd").argv,
            ["/bin/sh", "-c", "echo hi >&2"]
        );
        assert_eq!(e[1].run_as, RunAs::User("nobody".into()));
    }
}
