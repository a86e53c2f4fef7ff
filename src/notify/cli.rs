//! notify's flags, the stdin loop, and `notify history`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;

use super::alarm::Rules;
use super::config::{self, Config, SinkFile};
use super::email::{self, EmailSink, Security};
use super::input::{self, KeyPart};
use super::masakari::MasakariSink;
use super::sinks::{CommandSink, HttpSink};
use super::spool::Spool;
use super::{note, unix_now, HistoryLine, NamedSink, Notifier, NotifyState, Retry, CHECK};
use crate::cli::{Common, Context, Tool, UsageError};
use crate::openstack::Secret;
use crate::report::{Record, Status};

const EXAMPLES: &str = "\
Examples:
  probe-http --targets api.toml | notify --config /etc/skyprobe/notify.toml --state /var/lib/skyprobe/notify.json
  watch-procs --config procs.toml --every 5s | notify --slack \"$SLACK_URL\" --state /var/lib/skyprobe/n.json
  probe-http https://api.example/ | notify --email ops@example.com --smtp mail.example:587 --smtp-from skyprobe@example.com
  watch-domains --follow 1h | notify --masakari --os-cloud prod --state /var/lib/skyprobe/masakari.json
  watch-procs -C nova-compute | notify --masakari --os-cloud prod --os-interface internal --state /var/lib/skyprobe/masakari.json
  notify --config notify.toml --state n.json --retry-only     # deliver what is spooled, read nothing
  notify --config notify.toml --dry-run < records.jsonl       # what would be sent
  notify history --state /var/lib/skyprobe/notify.json probe-http/mon1/nova-api

Exit status: 0 everything delivered, 1 something spooled for a later try, 2 an alert
dropped (refused for good or given up on), 3 bad flags, files or input lines.\n\nFiles and secrets: only regular files are read as configuration (a FIFO or a device is\nrefused), within a size bound; lock, history and spool files are never written through a\nsymbolic link; URLs are shown without user:password@ and secret query values, and\nknown secrets are scrubbed from all output.";

/// Read records on stdin; on a state change (after N of M, with reminders,
/// flap suppression and insufficient data) deliver alerts to SMTP, Slack,
/// Teams, webhooks, PagerDuty, Masakari or a command, spooled so nothing
/// is lost. `notify history [KEY]` lists the transitions.
#[derive(Debug, Parser)]
#[command(name = "notify", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Args {
    /// Rules, sinks and routes (TOML; see the man page and examples/notify/).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Alarm states and delivery counters (locked, written atomically). Without it
    /// nothing survives the process: use it for anything but a one-off.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Spool directory [default: STATE.spool next to --state; in memory without --state].
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,

    /// Transition history, JSON lines, append-only [default: STATE.history.jsonl].
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,

    /// What an alarm is per: check, name, target, host or labels.NAME (repeatable)
    /// [default: check, host and name: the same check on two machines is two
    /// alarms; a record without a host leaves the host out].
    #[arg(long = "key", value_name = "PART", value_parser = KeyPart::parse, help_heading = "Alarms")]
    pub key: Vec<KeyPart>,

    /// Fire after N non-ok records in a row.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Alarms")]
    pub fire_after: u32,

    /// Fire when M of the last N records are non-ok (CloudWatch's datapoints to alarm).
    #[arg(long, value_name = "M/N", value_parser = parse_m_of_n, help_heading = "Alarms")]
    pub m_of_n: Option<(u32, u32)>,

    /// Resolve after K ok records in a row.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Alarms")]
    pub resolve_after: u32,

    /// Remind while still failing, this often.
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration, help_heading = "Alarms")]
    pub repeat_every: Option<Duration>,

    /// A key with no record for this long goes to insufficient data (and alerts).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration, help_heading = "Alarms")]
    pub stale_after: Option<Duration>,

    /// Turn flap detection off (Nagios' percent state change, 21 results, 5%/20%).
    #[arg(long, help_heading = "Alarms")]
    pub no_flap_detection: bool,

    /// POST Alertmanager-style JSON to URL (repeatable).
    #[arg(
        long,
        value_name = "URL",
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub webhook: Vec<String>,

    /// Slack incoming webhook URL (a secret: prefer the environment).
    #[arg(
        long,
        value_name = "URL",
        env = "SKYPROBE_SLACK_URL",
        hide_env_values = true,
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub slack: Option<String>,

    /// Microsoft Teams Workflows webhook URL (a secret: prefer the environment).
    #[arg(
        long,
        value_name = "URL",
        env = "SKYPROBE_TEAMS_URL",
        hide_env_values = true,
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub teams: Option<String>,

    /// PagerDuty Events v2 routing key (a secret: prefer the environment).
    #[arg(
        long,
        value_name = "KEY",
        env = "SKYPROBE_PAGERDUTY_KEY",
        hide_env_values = true,
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub pagerduty: Option<String>,

    /// PagerDuty Events API URL.
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://events.pagerduty.com/v2/enqueue",
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub pagerduty_url: String,

    /// Run CMD (through /bin/sh) with the alert as JSON on its stdin (repeatable).
    #[arg(
        long,
        value_name = "CMD",
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub command: Vec<String>,

    /// Mail alerts to ADDR (repeatable; needs --smtp and --smtp-from).
    #[arg(long, value_name = "ADDR", requires_all = ["smtp", "smtp_from"], help_heading = "Sinks (one-off, instead of --config)")]
    pub email: Vec<String>,

    /// SMTP server HOST[:PORT].
    #[arg(
        long,
        value_name = "HOST:PORT",
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub smtp: Option<String>,

    /// Sender address.
    #[arg(
        long,
        value_name = "ADDR",
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub smtp_from: Option<String>,

    /// starttls, tls or none.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "starttls",
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub smtp_security: String,

    /// Trust these CA certificates (PEM) for the SMTP server's TLS instead of the public roots.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub smtp_ca_file: Option<String>,

    /// SMTP AUTH user; the password is read from SKYPROBE_SMTP_PASSWORD.
    #[arg(
        long,
        value_name = "USER",
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub smtp_user: Option<String>,

    /// Send Masakari notifications (PROCESS, VM, COMPUTE_HOST) to the cloud's instance-ha API.
    #[arg(long, help_heading = "Sinks (one-off, instead of --config)")]
    pub masakari: bool,

    /// Masakari API URL instead of the catalog's instance-ha endpoint.
    #[arg(
        long,
        value_name = "URL",
        help_heading = "Sinks (one-off, instead of --config)"
    )]
    pub masakari_url: Option<String>,

    /// The cloud for Masakari (a sink's own `cloud` in --config wins).
    #[command(flatten)]
    pub os: crate::openstack::client::OsArgs,

    /// Give each delivery attempt this long.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::units::parse_duration, help_heading = "Delivery")]
    pub sink_timeout: Duration,

    /// First wait before a retry (doubling each time).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::units::parse_duration, help_heading = "Delivery")]
    pub retry_base: Duration,

    /// Longest wait between retries.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::units::parse_duration, help_heading = "Delivery")]
    pub retry_max: Duration,

    /// Drop an alert a sink still has not taken this long after it was spooled.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = crate::units::parse_duration, help_heading = "Delivery")]
    pub give_up_after: Duration,

    /// Deliver what is in the spool and exit; read nothing from stdin.
    #[arg(long, help_heading = "Delivery")]
    pub retry_only: bool,

    /// Print what would be sent (one record per alert and sink, payload in details);
    /// send nothing, save nothing.
    #[arg(long, help_heading = "Delivery")]
    pub dry_run: bool,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub common: Common,
}

type LockedState = crate::state::Locked<NotifyState>;

/// What `prepare` made of notify's flags and configuration: the notifier
/// with its sinks, the spool, and the alarm state kept in memory when
/// there is no `--state`.
pub struct Prepared {
    notifier: Notifier,
    spool_dir: Option<PathBuf>,
    memory: Mutex<Option<NotifyState>>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prepared")
    }
}

fn parse_m_of_n(text: &str) -> Result<(u32, u32), String> {
    let (m, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not M/N, e.g. 3/5"))?;
    let m: u32 = m
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: M is not a number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: N is not a number"))?;
    if m == 0 || m > n {
        return Err(format!("{text:?}: want 1 <= M <= N"));
    }
    Ok((m, n))
}

fn secret_from(
    env: &Option<String>,
    file: &Option<String>,
    what: &str,
) -> Result<Option<Secret>, String> {
    if let Some(var) = env {
        return std::env::var(var)
            .map(|v| Some(Secret::new(v)))
            .map_err(|_| format!("{what}: the environment variable {var} is not set"));
    }
    if let Some(path) = file {
        return crate::files::read_secret_line(std::path::Path::new(path))
            .map(|v| Some(Secret::new(v)))
            .map_err(|e| format!("{what}: {path}: {e}"));
    }
    Ok(None)
}

/// Build one sink from its configuration.
pub fn build_sink(
    s: &SinkFile,
    default_timeout: Duration,
    os: &crate::openstack::client::OsArgs,
) -> Result<NamedSink, String> {
    let what = format!("sink {:?}", s.name);
    let url = || {
        s.url
            .clone()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .ok_or_else(|| format!("{what}: needs url = \"http(s)://...\""))
    };
    let sink: Box<dyn super::sinks::Sink> = match s.kind.as_str() {
        "webhook" | "slack" | "teams" | "pagerduty" => {
            let kind = match s.kind.as_str() {
                "slack" => "slack",
                "teams" => "teams",
                "pagerduty" => "pagerduty",
                _ => "webhook",
            };
            let routing_key = if kind == "pagerduty" {
                let given = s.routing_key.clone().map(Secret::new);
                Some(match given {
                    Some(k) => k,
                    None => secret_from(&s.routing_key_env, &None, &what)?
                        .ok_or_else(|| format!("{what}: needs routing_key_env = \"VARIABLE\""))?,
                })
            } else {
                None
            };
            let url = if kind == "pagerduty" {
                s.url
                    .clone()
                    .unwrap_or_else(|| "https://events.pagerduty.com/v2/enqueue".to_string())
            } else {
                url()?
            };
            Box::new(HttpSink {
                kind,
                name: s.name.clone(),
                url,
                headers: s
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                routing_key,
            })
        }
        "command" => {
            let argv =
                s.command.clone().filter(|c| !c.is_empty()).ok_or_else(|| {
                    format!("{what}: needs command = [\"program\", \"arg\", ...]")
                })?;
            Box::new(CommandSink { argv })
        }
        "email" => {
            let security = Security::parse(s.security.as_deref().unwrap_or("starttls"))
                .map_err(|e| format!("{what}: security: {e}"))?;
            let smtp = s
                .smtp
                .as_deref()
                .ok_or_else(|| format!("{what}: needs smtp = \"HOST:PORT\""))?;
            let (host, port) =
                email::host_port(smtp, security).map_err(|e| format!("{what}: smtp: {e}"))?;
            let mailbox = |a: &str| {
                a.parse::<lettre::message::Mailbox>()
                    .map_err(|e| format!("{what}: {a:?} is not an address: {e}"))
            };
            if s.to.is_empty() {
                return Err(format!("{what}: needs to = [\"ops@example.com\"]"));
            }
            let to =
                s.to.iter()
                    .map(|a| mailbox(a))
                    .collect::<Result<Vec<_>, _>>()?;
            let from = mailbox(
                s.from
                    .as_deref()
                    .ok_or_else(|| format!("{what}: needs from = \"...\""))?,
            )?;
            let password = secret_from(&s.password_env, &s.password_file, &what)?;
            let credentials = match (&s.user, password) {
                (Some(u), Some(p)) => Some((u.clone(), p)),
                (Some(_), None) => {
                    return Err(format!(
                        "{what}: user is set but no password_env or password_file"
                    ))
                }
                (None, _) => None,
            };
            let ca_pem = s
                .ca_file
                .as_ref()
                .map(|f| {
                    crate::files::read_bounded(std::path::Path::new(f), crate::files::CONFIG_MAX)
                        .map_err(|e| format!("{what}: ca_file {f}: {e}"))
                })
                .transpose()?;
            Box::new(EmailSink {
                to,
                from,
                host,
                port,
                security,
                credentials,
                ca_pem,
            })
        }
        "masakari" => {
            let mut os = os.clone();
            if let Some(c) = &s.cloud {
                os.os_cloud = Some(c.clone());
            }
            let session = os.session().map_err(|e| format!("{what}: {}", e.0))?;
            Box::new(MasakariSink::new(session, s.url.clone()))
        }
        other => return Err(format!("{what}: unknown type {other:?}")),
    };
    Ok(NamedSink {
        name: s.name.clone(),
        sink,
        enabled: s.enabled,
        timeout: s.timeout()?.unwrap_or(default_timeout),
    })
}

impl Args {
    fn rules(&self) -> Rules {
        let mut r = Rules {
            fire_after: self.fire_after,
            m_of_n: self.m_of_n,
            resolve_after: self.resolve_after,
            repeat_every: self.repeat_every.filter(|d| !d.is_zero()),
            stale_after: self.stale_after.filter(|d| !d.is_zero()),
            ..Rules::default()
        };
        if self.no_flap_detection {
            r.flap = None;
        }
        r
    }

    /// Sinks given as flags, as if they were in a file.
    fn flag_sinks(&self) -> Vec<SinkFile> {
        let mut out = Vec::new();
        let named = |kind: &str, n: usize| super::flag_sink_name(kind, n);
        for (i, url) in self.webhook.iter().enumerate() {
            out.push(SinkFile {
                name: named("webhook", i),
                kind: "webhook".into(),
                enabled: true,
                url: Some(url.clone()),
                ..SinkFile::default()
            });
        }
        for (kind, url) in [("slack", &self.slack), ("teams", &self.teams)] {
            if let Some(u) = url {
                out.push(SinkFile {
                    name: kind.into(),
                    kind: kind.into(),
                    enabled: true,
                    url: Some(u.clone()),
                    ..SinkFile::default()
                });
            }
        }
        if self.pagerduty.is_some() {
            out.push(SinkFile {
                name: "pagerduty".into(),
                kind: "pagerduty".into(),
                enabled: true,
                url: Some(self.pagerduty_url.clone()),
                routing_key: self.pagerduty.clone(),
                ..SinkFile::default()
            });
        }
        for (i, cmd) in self.command.iter().enumerate() {
            out.push(SinkFile {
                name: named("command", i),
                kind: "command".into(),
                enabled: true,
                command: Some(vec!["/bin/sh".into(), "-c".into(), cmd.clone()]),
                ..SinkFile::default()
            });
        }
        if !self.email.is_empty() {
            out.push(SinkFile {
                name: "email".into(),
                kind: "email".into(),
                enabled: true,
                to: self.email.clone(),
                from: self.smtp_from.clone(),
                smtp: self.smtp.clone(),
                security: Some(self.smtp_security.clone()),
                user: self.smtp_user.clone(),
                password_env: self
                    .smtp_user
                    .as_ref()
                    .map(|_| "SKYPROBE_SMTP_PASSWORD".into()),
                ca_file: self.smtp_ca_file.clone(),
                ..SinkFile::default()
            });
        }
        if self.masakari {
            out.push(SinkFile {
                name: "masakari".into(),
                kind: "masakari".into(),
                enabled: true,
                url: self.masakari_url.clone(),
                cloud: self.os.os_cloud.clone(),
                ..SinkFile::default()
            });
        }
        out
    }

    fn open_state(&self) -> Result<(Option<LockedState>, Vec<Record>), Box<Record>> {
        match &self.state {
            None => Ok((None, Vec::new())),
            Some(path) => {
                let locked = crate::state::Locked::<NotifyState>::open(path)
                    .map_err(|e| Box::new(note(Status::Unknown, "state", e)))?;
                let notes = locked
                    .warning
                    .clone()
                    .map(|w| crate::state::note_record(CHECK, path, w))
                    .into_iter()
                    .collect();
                Ok((Some(locked), notes))
            }
        }
    }

    fn stream(&self, prep: &Prepared, ctx: &Context) -> Vec<Record> {
        let n = &prep.notifier;
        let mut out = Vec::new();
        // A dry run works on a copy of the state, read without the lock,
        // and writes nothing at all (not even the lock file).
        let (mut locked, notes) = if self.dry_run {
            (None, Vec::new())
        } else {
            match self.open_state() {
                Ok(x) => x,
                Err(r) => return vec![*r],
            }
        };
        out.extend(ctx.emit_now(notes));
        let mut memory = prep.memory.lock().unwrap_or_else(|p| p.into_inner());
        let mut scratch = match (&locked, self.dry_run) {
            (_, true) => Some(match &self.state {
                Some(path) => crate::state::snapshot(path),
                None => memory.take().unwrap_or_default(),
            }),
            (None, false) => Some(memory.take().unwrap_or_default()),
            (Some(_), false) => None,
        };
        let mut spool = match (&prep.spool_dir, self.dry_run) {
            (Some(dir), false) => match Spool::open(dir) {
                Ok((s, notes)) => {
                    out.extend(
                        ctx.emit_now(
                            notes
                                .into_iter()
                                .map(|m| note(Status::Warning, "spool", m))
                                .collect(),
                        ),
                    );
                    s
                }
                Err(e) => return vec![note(Status::Unknown, "spool", e)],
            },
            _ => Spool::in_memory(),
        };
        macro_rules! state {
            () => {
                match scratch.as_mut() {
                    Some(s) => s,
                    None => {
                        &mut locked
                            .as_mut()
                            .expect("a locked state when there is no scratch")
                            .value
                    }
                }
            };
        }
        // The spool's new alerts are durable before the state that knows
        // of them (one fsync for all of them: group commit); when they
        // cannot be, the state is not saved either.
        let save = |locked: &Option<crate::state::Locked<NotifyState>>,
                    scratch: &Option<NotifyState>,
                    spool: &mut Spool|
         -> Option<Record> {
            if let Err(e) = spool.commit() {
                return Some(note(Status::Critical, "spool", e));
            }
            match (locked, scratch) {
                (Some(l), None) => l.save().err().map(|e| note(Status::Critical, "state", e)),
                _ => None,
            }
        };

        // Every run first retries what is in the spool.
        Notifier::reconcile(state!(), &spool);
        let now = unix_now();
        let (records, _) = n.sweep(state!(), &mut spool, now);
        out.extend(ctx.emit_now(records));
        if let Some(r) = save(&locked, &scratch, &mut spool) {
            out.extend(ctx.emit_now(vec![r]));
        }
        out.extend(ctx.emit_now(n.deliver(state!(), &mut spool, unix_now(), ctx)));

        if !self.retry_only {
            let rx = crate::records::spawn(std::io::stdin(), 8192);
            let mut line_no: u64 = 0;
            let mut last_save = Instant::now();
            let mut last_tick = Instant::now();
            let mut dirty = false;
            let stop_at = ctx
                .deadline
                .checked_sub(Duration::from_millis(500))
                .unwrap_or(ctx.deadline);
            'read: loop {
                let now_i = Instant::now();
                if now_i >= stop_at {
                    out.extend(ctx.emit_now(vec![note(
                        Status::Warning,
                        "stdin",
                        format!("stopped reading at the -t deadline after {line_no} lines"),
                    )]));
                    break;
                }
                let wait = Duration::from_secs(1).min(stop_at - now_i);
                let first = match rx.recv_timeout(wait) {
                    Ok(Some(l)) => Some(l),
                    Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => break 'read,
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                };
                let mut spooled = false;
                let mut eof = false;
                if let Some(first) = first {
                    let now = unix_now();
                    let mut batch = vec![first];
                    while batch.len() < 4096 {
                        match rx.try_recv() {
                            Ok(Some(l)) => batch.push(l),
                            Ok(None) => {
                                eof = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let mut records = Vec::new();
                    for line in &batch {
                        line_no += 1;
                        let (r, s) = match line {
                            crate::records::Line::Text(text) => {
                                n.line(state!(), &mut spool, line_no, text, now)
                            }
                            crate::records::Line::Unusable(why) => {
                                (n.unusable_line(state!(), line_no, why), false)
                            }
                        };
                        records.extend(r);
                        spooled |= s;
                    }
                    dirty = true;
                    out.extend(ctx.emit_now(records));
                }
                if last_tick.elapsed() >= Duration::from_secs(1) {
                    last_tick = Instant::now();
                    let (records, s) = n.sweep(state!(), &mut spool, unix_now());
                    out.extend(ctx.emit_now(records));
                    spooled |= s;
                    dirty = true;
                    // Retries that came due.
                    if !spooled {
                        out.extend(ctx.emit_now(n.deliver(state!(), &mut spool, unix_now(), ctx)));
                    }
                }
                if spooled || (dirty && last_save.elapsed() >= Duration::from_secs(1)) {
                    // The state knows about an alert before any sink sees it.
                    if let Some(r) = save(&locked, &scratch, &mut spool) {
                        out.extend(ctx.emit_now(vec![r]));
                    }
                    last_save = Instant::now();
                    dirty = false;
                }
                if spooled {
                    out.extend(ctx.emit_now(n.deliver(state!(), &mut spool, unix_now(), ctx)));
                }
                if eof {
                    break;
                }
            }
        }
        let (records, _) = n.sweep(state!(), &mut spool, unix_now());
        out.extend(ctx.emit_now(records));
        if let Some(r) = save(&locked, &scratch, &mut spool) {
            out.extend(ctx.emit_now(vec![r]));
        }
        out.extend(ctx.emit_now(n.deliver(state!(), &mut spool, unix_now(), ctx)));
        if let Some(r) = save(&locked, &scratch, &mut spool) {
            out.extend(ctx.emit_now(vec![r]));
        }
        if let Some(r) = n.leftover(&spool) {
            out.extend(ctx.emit_now(vec![r]));
        }
        if locked.is_none() {
            // Without --state the alarms live as long as the process (--every).
            *memory = scratch;
        }
        if out.is_empty() && ctx.stream.is_none() {
            // Formats written at the end (nagios, table) need a line.
            out.push(note(
                Status::Ok,
                "notify",
                "no alerts: nothing to deliver".to_string(),
            ));
        }
        out
    }
}

impl Tool for Args {
    const CHECK: &'static str = CHECK;
    const LABEL: &'static str = "NOTIFY";
    type Run = Prepared;

    fn common(&self) -> &Common {
        &self.common
    }

    fn default_timeout(&self) -> Duration {
        // A pipeline runs as long as its producer; -t sets a deadline.
        Duration::from_secs(10 * 365 * 24 * 3600)
    }

    fn prepare(&mut self) -> Result<Prepared, UsageError> {
        if self.common.every.is_some() {
            return Err(UsageError::new(
                "--every does not apply to notify: it reads stdin until it ends",
            ));
        }
        let base = self.rules();
        let config: Config = match &self.config {
            Some(p) => config::load(p, &base)?,
            None => Config::default(),
        };
        let mut sink_files = config.sinks.clone();
        for s in self.flag_sinks() {
            if sink_files.iter().any(|f| f.name == s.name) {
                return Err(UsageError::new(format!(
                    "a sink named {:?} is in --config and on the command line",
                    s.name
                )));
            }
            sink_files.push(s);
        }
        if sink_files.is_empty() && !self.dry_run {
            return Err(UsageError::new(
                "no sinks: give --config FILE with [[sink]]s, or --webhook, --slack, --teams, --pagerduty, --command, --email or --masakari",
            ));
        }
        let mut sinks = Vec::new();
        for s in &sink_files {
            let where_ = self
                .config
                .as_ref()
                .filter(|_| config.sinks.iter().any(|c| c.name == s.name))
                .map(|p| format!("{}: ", p.display()))
                .unwrap_or_default();
            sinks.push(
                build_sink(s, self.sink_timeout, &self.os)
                    .map_err(|e| UsageError::new(format!("{where_}{e}")))?,
            );
        }
        let key = if !self.key.is_empty() {
            self.key.clone()
        } else {
            config.key.clone().unwrap_or_else(input::default_key)
        };
        let scrubber = crate::redact::Scrubber::new(sinks.iter().flat_map(|s| s.sink.secrets()));
        let spool_dir = self.spool.clone().or_else(|| {
            self.state
                .as_ref()
                .map(|s| crate::state::sibling(s, ".spool"))
        });
        let history = self.history.clone().or_else(|| {
            self.state
                .as_ref()
                .map(|s| crate::state::sibling(s, ".history.jsonl"))
        });
        Ok(Prepared {
            notifier: Notifier {
                base,
                config,
                key,
                sinks,
                retry: Retry {
                    base: self.retry_base.max(Duration::from_millis(1)),
                    cap: self.retry_max.max(self.retry_base),
                    give_up_after: self.give_up_after,
                },
                dry_run: self.dry_run,
                history,
                scrubber,
            },
            spool_dir,
            memory: Mutex::default(),
        })
    }

    fn run(&self, prep: &Prepared, ctx: &Context) -> Vec<Record> {
        self.stream(prep, ctx)
    }

    fn secrets(&self, prep: &Prepared) -> Vec<String> {
        prep.notifier
            .sinks
            .iter()
            .flat_map(|s| s.sink.secrets())
            .collect()
    }

    fn timed_out(&self, _prep: &Prepared, ctx: &Context) -> Vec<Record> {
        vec![note(
            ctx.timeout_state,
            "notify",
            format!(
                "notify did not finish within {:.1} s; undelivered alerts stay in the spool",
                self.timeout().as_secs_f64()
            ),
        )]
    }
}

/// `notify history [KEY]`: the transitions, oldest first.
#[derive(Debug, Parser)]
#[command(
    name = "notify-history",
    bin_name = "notify history",
    version,
    max_term_width = 100
)]
pub struct HistoryArgs {
    /// Only this alarm key (e.g. probe-http/mon1/nova-api: check/host/name).
    #[arg(value_name = "KEY")]
    pub key: Option<String>,

    /// notify's state file: the history is STATE.history.jsonl.
    #[arg(long, value_name = "FILE", required_unless_present = "history")]
    pub state: Option<PathBuf>,

    /// The history file itself.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,

    /// Only the last N transitions.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,

    /// jsonl or table [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_name = "FORMAT", value_parser = ["jsonl", "table"])]
    pub format: Option<String>,
}

/// The `notify history` subcommand (args without the word `history`).
pub fn history_main(args: Vec<OsString>) -> ExitCode {
    use std::io::{IsTerminal, Write};
    let fail = |msg: String| {
        eprintln!("notify history: {msg}");
        ExitCode::from(Status::Unknown.exit_code())
    };
    let a = match HistoryArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            return fail(crate::cli::clap_one_line(&e.to_string()));
        }
    };
    let path = match (&a.history, &a.state) {
        (Some(h), _) => h.clone(),
        (None, Some(s)) => crate::state::sibling(s, ".history.jsonl"),
        (None, None) => return fail("give --state FILE or --history FILE".into()),
    };
    let text = match crate::files::read_bounded_io(&path, crate::files::HISTORY_MAX) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return fail(format!(
                "{}: {}",
                path.display(),
                crate::files::io_words(&e)
            ))
        }
    };
    let mut lines: Vec<HistoryLine> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<HistoryLine>(l) {
            Ok(h) => {
                if a.key.as_ref().is_none_or(|k| *k == h.key) {
                    lines.push(h);
                }
            }
            // A line cut short by a crash is the only damage appending can do.
            Err(e) => eprintln!(
                "notify history: {}: line {}: skipped ({e})",
                path.display(),
                i + 1
            ),
        }
    }
    if let Some(n) = a.last {
        let cut = lines.len().saturating_sub(n);
        lines.drain(..cut);
    }
    let table = match a.format.as_deref() {
        Some("table") => true,
        Some(_) => false,
        None => std::io::stdout().is_terminal(),
    };
    let mut out = std::io::stdout().lock();
    if table {
        let rows = lines.iter().map(|h| {
            vec![
                h.ts.clone(),
                h.key.clone(),
                h.kind.as_str().to_string(),
                h.from.to_string(),
                h.to.to_string(),
                if h.suppressed {
                    "held (flapping)".to_string()
                } else {
                    "yes".to_string()
                },
                h.summary.clone(),
            ]
        });
        let header = ["TIME", "KEY", "KIND", "FROM", "TO", "SENT", "SUMMARY"];
        let _ = write!(out, "{}", crate::render::grid(&header, rows));
    } else {
        for h in &lines {
            let _ = writeln!(out, "{}", serde_json::to_string(h).unwrap_or_default());
        }
    }
    ExitCode::SUCCESS
}
