//! Where alerts go: a generic webhook (Alertmanager's payload), Slack,
//! Microsoft Teams Workflows (an Adaptive Card), PagerDuty Events v2, a
//! command, e-mail and Masakari. Each builds its payload from the alert in
//! a plain function (tested as data) and says whether a failure is worth
//! retrying.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::alarm::{AlarmState, Kind};
use super::Alert;

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again later (network, timeout, 5xx, 429).
    Retry(String),
    /// Refused for good (a 4xx that will not change).
    Final(String),
}

impl Failure {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Failure::Retry(m) | Failure::Final(m) => m,
        }
    }
}

/// One configured destination.
pub trait Sink: Send + Sync {
    /// `webhook`, `slack`, `teams`, `pagerduty`, `command`, `email`, `masakari`.
    fn kind(&self) -> &'static str;
    /// Where it goes, safe to print (no tokens in it).
    fn describe(&self) -> String;
    /// What would be sent for this alert (secrets masked), for `--dry-run`.
    fn payload(&self, alert: &Alert) -> Value;
    /// Send it. `Ok` carries what the other side said, for the record.
    fn deliver(&self, alert: &Alert, timeout: Duration) -> Result<String, Failure>;
    /// The secrets it holds (passwords, keys, secret URLs, header values),
    /// scrubbed from anything a peer sends back before it is printed or
    /// spooled.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether this sink wants this alert at all (Masakari takes only
    /// records it can turn into a notification).
    fn wants(&self, _alert: &Alert) -> bool {
        true
    }
}

/// `scheme://host[:port]` of a URL: webhook URLs carry their secret in the
/// path (Slack, Teams), so records show only this.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}/…")
        }
        None => "…".to_string(),
    }
}

/// `[KIND] check name`: the head of every message about an alert.
pub(crate) fn title(alert: &Alert) -> String {
    let what = match alert.kind {
        Kind::Resolved => "RESOLVED".to_string(),
        Kind::Reminder => format!("STILL {}", alert.state.as_str().to_ascii_uppercase()),
        Kind::InsufficientData => "NO DATA".to_string(),
        Kind::FlappingStart => "FLAPPING".to_string(),
        Kind::FlappingStop => "STOPPED FLAPPING".to_string(),
        Kind::Firing => alert.state.as_str().to_ascii_uppercase(),
    };
    format!("[{what}] {} {}", alert.check, alert.name)
}

/// The failing check's trace as lines, for bodies meant for people.
pub fn trace_lines(alert: &Alert) -> Vec<String> {
    alert
        .record
        .as_ref()
        .and_then(|r| r.get("trace"))
        .and_then(|t| t.as_array())
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    format!(
                        "{} {} {} ms{}",
                        if s["ok"].as_bool() == Some(true) {
                            "ok  "
                        } else {
                            "FAIL"
                        },
                        s["step"].as_str().unwrap_or("?"),
                        s["ms"].as_f64().unwrap_or(0.0),
                        s["detail"]
                            .as_str()
                            .map(|d| format!(" - {d}"))
                            .unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Alertmanager's webhook payload (version 4), one alert per message, with
/// the whole skyprobe alert under `skyprobe`.
pub fn alertmanager_payload(alert: &Alert, receiver: &str) -> Value {
    let status = if alert.state == AlarmState::Ok {
        "resolved"
    } else {
        "firing"
    };
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), json!(alert.check));
    labels.insert("name".into(), json!(alert.name));
    labels.insert("target".into(), json!(alert.target));
    labels.insert("host".into(), json!(alert.host));
    labels.insert("severity".into(), json!(alert.state.as_str()));
    for (k, v) in &alert.labels {
        labels.entry(k.clone()).or_insert_with(|| json!(v));
    }
    let ends = if status == "resolved" {
        alert.at.clone()
    } else {
        "0001-01-01T00:00:00Z".to_string()
    };
    json!({
        "version": "4",
        "groupKey": alert.key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": alert.check},
        "commonLabels": labels,
        "commonAnnotations": {"summary": alert.summary},
        "externalURL": "",
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": {"summary": alert.summary, "description": trace_lines(alert).join("\n")},
            "startsAt": alert.since,
            "endsAt": ends,
            "generatorURL": "",
            "fingerprint": alert.id,
        }],
        "skyprobe": alert,
    })
}

/// A Slack incoming-webhook message.
pub fn slack_payload(alert: &Alert) -> Value {
    let icon = match alert.state {
        AlarmState::Ok => ":large_green_circle:",
        AlarmState::Warning => ":large_yellow_circle:",
        AlarmState::Critical => ":red_circle:",
        AlarmState::Unknown | AlarmState::InsufficientData => ":white_circle:",
    };
    let mut text = format!("{icon} *{}*\n{}", title(alert), alert.summary);
    if !alert.host.is_empty() {
        text.push_str(&format!("\nhost: {}", alert.host));
    }
    let trace = trace_lines(alert);
    if !trace.is_empty() && alert.state != AlarmState::Ok {
        text.push_str(&format!("\n```{}```", trace.join("\n")));
    }
    json!({ "text": text })
}

/// A Teams Workflows message: one Adaptive Card (the retired Office 365
/// connectors took MessageCards; Workflows take this).
pub fn teams_payload(alert: &Alert) -> Value {
    let color = match alert.state {
        AlarmState::Ok => "Good",
        AlarmState::Warning => "Warning",
        AlarmState::Critical => "Attention",
        AlarmState::Unknown | AlarmState::InsufficientData => "Default",
    };
    let mut facts = vec![
        json!({"title": "state", "value": alert.state.as_str()}),
        json!({"title": "check", "value": alert.check}),
        json!({"title": "target", "value": alert.target}),
        json!({"title": "host", "value": alert.host}),
        json!({"title": "since", "value": alert.since}),
    ];
    for (k, v) in &alert.labels {
        facts.push(json!({"title": k, "value": v}));
    }
    let mut body = vec![
        json!({"type": "TextBlock", "text": title(alert), "weight": "Bolder", "size": "Medium", "color": color, "wrap": true}),
        json!({"type": "TextBlock", "text": alert.summary, "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    let trace = trace_lines(alert);
    if !trace.is_empty() && alert.state != AlarmState::Ok {
        body.push(json!({"type": "TextBlock", "text": trace.join("\n\n"), "fontType": "Monospace", "wrap": true, "isSubtle": true}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            }
        }]
    })
}

/// PagerDuty Events API v2: trigger, or resolve on recovery, one dedup key
/// per alarm key so the two meet.
pub fn pagerduty_payload(alert: &Alert, routing_key: &str) -> Value {
    let dedup_key = format!("skyprobe-{}", alert.key_hash);
    if alert.state == AlarmState::Ok {
        return json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key});
    }
    let severity = match alert.state {
        AlarmState::Critical => "critical",
        AlarmState::Warning | AlarmState::InsufficientData => "warning",
        AlarmState::Unknown => "error",
        AlarmState::Ok => "info",
    };
    let summary: String = format!("{}: {}", title(alert), alert.summary)
        .chars()
        .take(1024)
        .collect();
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": summary,
            "source": if alert.host.is_empty() { alert.target.clone() } else { alert.host.clone() },
            "severity": severity,
            "timestamp": alert.at,
            "component": alert.name,
            "group": alert.check,
            "class": alert.kind.as_str(),
            "custom_details": {"target": alert.target, "labels": alert.labels, "trace": trace_lines(alert)},
        }
    })
}

/// An agent for sinks: status codes are answers, not errors.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent(format!("skyprobe/{} notify", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// POST JSON; 2xx is accepted. `is_final` decides which other codes are
/// refusals for good.
pub fn post_json(
    url: &str,
    headers: &[(String, String)],
    body: &Value,
    timeout: Duration,
    is_final: impl Fn(u16) -> bool,
) -> Result<String, Failure> {
    post_json_with(&agent(timeout), url, headers, body, is_final)
}

/// [`post_json`] through a given agent (one that trusts a cloud's CA).
pub fn post_json_with(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(String, String)],
    body: &Value,
    is_final: impl Fn(u16) -> bool,
) -> Result<String, Failure> {
    let (code, said) = post_json_answer(agent, url, headers, body)?;
    judge(code, said, is_final)
}

/// A receiver's answer as accepted, final or worth a retry.
pub fn judge(code: u16, said: String, is_final: impl Fn(u16) -> bool) -> Result<String, Failure> {
    if (200..300).contains(&code) {
        Ok(said)
    } else if is_final(code) {
        Err(Failure::Final(said))
    } else {
        Err(Failure::Retry(said))
    }
}

/// POST JSON and return the status code with what the receiver said
/// (`HTTP 202: ...`), whatever the code; only a request that got no answer
/// is an error (worth a retry).
pub fn post_json_answer(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(String, String)],
    body: &Value,
) -> Result<(u16, String), Failure> {
    let mut req = agent.post(url).header("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let started = Instant::now();
    let mut resp = req.send(body.to_string().as_bytes()).map_err(|e| {
        Failure::Retry(match e {
            ureq::Error::Timeout(_) => {
                format!("timed out after {:.1} s", started.elapsed().as_secs_f64())
            }
            other => crate::redact::urls_in(&other.to_string()).into_owned(),
        })
    })?;
    let code = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_string()
        .unwrap_or_default();
    Ok((code, said(code, &text)))
}

/// What a receiver said: `HTTP 202`, or `HTTP 409: ...` with the first
/// 200 characters of its answer on one line.
pub fn said(code: u16, text: &str) -> String {
    let text: String = text.trim().chars().take(200).collect();
    if text.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {}", text.replace('\n', " "))
    }
}

/// 4xx other than 408 (timeout) and 429 (rate limit) will not change.
pub fn client_error_is_final(code: u16) -> bool {
    (400..500).contains(&code) && code != 408 && code != 429
}

/// The HTTP sinks, which differ only in payload.
pub struct HttpSink {
    /// Which payload.
    pub kind: &'static str,
    /// Its name in the configuration.
    pub name: String,
    /// Where to POST.
    pub url: String,
    /// Extra headers (their values may be secrets: never printed).
    pub headers: Vec<(String, String)>,
    /// PagerDuty's routing (integration) key.
    pub routing_key: Option<crate::openstack::Secret>,
}

impl Sink for HttpSink {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn describe(&self) -> String {
        match self.kind {
            "webhook" => {
                // A generic webhook's path is not a secret, its query may be.
                crate::redact::url(self.url.split(['?', '#']).next().unwrap_or("")).into_owned()
            }
            _ => redact_url(&self.url),
        }
    }

    fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self.headers.iter().map(|(_, v)| v.clone()).collect();
        out.extend(self.routing_key.iter().map(|k| k.expose().to_string()));
        if self.kind != "webhook" {
            // Slack's and Teams' URLs are the secret; a path part of one
            // is enough to post.
            out.push(self.url.clone());
            if let Some((_, rest)) = self.url.split_once("://") {
                if let Some((_, path)) = rest.split_once('/') {
                    out.push(path.to_string());
                }
            }
        }
        if let Some((_, rest)) = self.url.split_once("://") {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                out.push(userinfo.to_string());
                if let Some((_, password)) = userinfo.split_once(':') {
                    out.push(password.to_string());
                }
            }
        }
        out
    }

    fn payload(&self, alert: &Alert) -> Value {
        match self.kind {
            "slack" => slack_payload(alert),
            "teams" => teams_payload(alert),
            "pagerduty" => pagerduty_payload(alert, "***"),
            _ => alertmanager_payload(alert, &self.name),
        }
    }

    fn deliver(&self, alert: &Alert, timeout: Duration) -> Result<String, Failure> {
        let body = match (self.kind, &self.routing_key) {
            ("pagerduty", Some(key)) => pagerduty_payload(alert, key.expose()),
            _ => self.payload(alert),
        };
        let mut headers = self.headers.clone();
        headers.push(("X-Skyprobe-Alert-Id".into(), alert.id.clone()));
        post_json(&self.url, &headers, &body, timeout, client_error_is_final)
    }
}

/// A command that gets the alert as JSON on its stdin; exit 0 is accepted.
pub struct CommandSink {
    /// argv.
    pub argv: Vec<String>,
}

impl Sink for CommandSink {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn describe(&self) -> String {
        // The program only: arguments may carry tokens. For `--command`,
        // run through sh -c, that is the script's first word.
        match self.argv.as_slice() {
            [sh, c, script, ..] if sh == "/bin/sh" && c == "-c" => {
                script.split_whitespace().next().unwrap_or("sh").to_string()
            }
            argv => argv.first().cloned().unwrap_or_default(),
        }
    }

    fn payload(&self, alert: &Alert) -> Value {
        json!(alert)
    }

    fn deliver(&self, alert: &Alert, timeout: Duration) -> Result<String, Failure> {
        use std::os::unix::process::CommandExt;
        let Some((program, args)) = self.argv.split_first() else {
            return Err(Failure::Final("empty command".into()));
        };
        let shown = self.describe();
        let mut child = Command::new(program)
            .args(args)
            .env("SKYPROBE_ALERT_ID", &alert.id)
            .env("SKYPROBE_ALERT_KIND", alert.kind.as_str())
            .env("SKYPROBE_ALERT_STATE", alert.state.as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| Failure::Retry(format!("cannot run {shown}: {e}")))?;
        let mut input = serde_json::to_vec(alert).unwrap_or_default();
        input.push(b'\n');
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its stdin is its own business.
            let _ = stdin.write_all(&input);
        }
        let stderr = child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut e) = stderr {
                use std::io::Read;
                let _ = e.by_ref().take(4096).read_to_string(&mut text);
            }
            text
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(Failure::Retry(e.to_string())),
            }
        };
        let Some(status) = status else {
            let pgid = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return Err(Failure::Retry(format!(
                "{shown} did not finish within {:.1} s; killed",
                timeout.as_secs_f64()
            )));
        };
        let stderr = reader.join().unwrap_or_default();
        let tail = stderr.trim().lines().last().unwrap_or("").to_string();
        if status.success() {
            Ok(format!("{shown} exited 0"))
        } else {
            Err(Failure::Retry(format!(
                "{shown} exited {}{}",
                status
                    .code()
                    .map_or("on a signal".to_string(), |c| c.to_string()),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            )))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn alert(state: AlarmState, kind: Kind) -> Alert {
        Alert {
            id: "00ab-3".into(),
            key: "probe-http/nova-api".into(),
            key_hash: "00ab".into(),
            kind,
            state,
            previous: AlarmState::Ok,
            at: "2026-11-23T18:40:00.123Z".into(),
            since: "2026-11-23T18:40:00.123Z".into(),
            check: "probe-http".into(),
            name: "nova-api".into(),
            target: "https://nova:8774/".into(),
            host: "mon1".into(),
            summary: "HTTP 503, expected 200".into(),
            labels: [("az".to_string(), "zone-a".to_string())].into(),
            record: Some(json!({"trace": [{"step": "connect", "ok": true, "ms": 0.4},
                                          {"step": "response", "ok": false, "ms": 40.1, "detail": "status 503"}]})),
        }
    }

    #[test]
    fn alertmanager_payload_has_its_fields() {
        let p = alertmanager_payload(&alert(AlarmState::Critical, Kind::Firing), "ops");
        assert_eq!(p["version"], "4");
        assert_eq!(p["status"], "firing");
        assert_eq!(p["alerts"][0]["labels"]["severity"], "critical");
        assert_eq!(p["alerts"][0]["labels"]["az"], "zone-a");
        assert_eq!(p["alerts"][0]["fingerprint"], "00ab-3");
        assert!(p["alerts"][0]["annotations"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("FAIL response")));
        let r = alertmanager_payload(&alert(AlarmState::Ok, Kind::Resolved), "ops");
        assert_eq!(r["status"], "resolved");
    }

    #[test]
    fn pagerduty_triggers_and_resolves_with_one_dedup_key() {
        let t = pagerduty_payload(&alert(AlarmState::Critical, Kind::Firing), "KEY");
        let r = pagerduty_payload(&alert(AlarmState::Ok, Kind::Resolved), "KEY");
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(t["dedup_key"], r["dedup_key"]);
        assert_eq!(t["payload"]["severity"], "critical");
        assert_eq!(t["payload"]["source"], "mon1");
        assert!(r.get("payload").is_none());
    }

    #[test]
    fn slack_and_teams_carry_the_summary_and_trace() {
        let a = alert(AlarmState::Critical, Kind::Firing);
        let s = slack_payload(&a)["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            s.contains("[CRITICAL] probe-http nova-api") && s.contains("FAIL response"),
            "{s}"
        );
        let t = teams_payload(&a);
        assert_eq!(
            t["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(t["attachments"][0]["content"]["type"], "AdaptiveCard");
        assert_eq!(
            t["attachments"][0]["content"]["body"][1]["text"],
            "HTTP 503, expected 200"
        );
    }

    #[test]
    fn secret_urls_are_not_printed() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact_url("https://user:pw@h:8443/x?y"), "https://h:8443/…");
        let s = HttpSink {
            kind: "pagerduty",
            name: "pd".into(),
            url: "https://events.pagerduty.com/v2/enqueue".into(),
            headers: vec![],
            routing_key: Some(crate::openstack::Secret::new("R0UT1NG")),
        };
        let shown = s
            .payload(&alert(AlarmState::Critical, Kind::Firing))
            .to_string();
        assert!(!shown.contains("R0UT1NG"), "{shown}");
    }
}
