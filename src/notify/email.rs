//! E-mail through SMTP with lettre (blocking): STARTTLS by default, TLS on
//! connect, or plain for a local relay; AUTH when a user is given. The
//! subject and body carry the summary and the failing check's trace.

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};
use serde_json::{json, Value};

use super::alarm::AlarmState;
use super::sinks::{trace_lines, Failure, Sink};
use super::Alert;
use crate::openstack::Secret;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (required).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: a relay on localhost.
    None,
}

impl Security {
    /// Parse `starttls`, `tls` or `none`.
    pub fn parse(text: &str) -> Result<Security, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "starttls" => Ok(Security::StartTls),
            "tls" | "smtps" => Ok(Security::Tls),
            "none" | "plain" => Ok(Security::None),
            other => Err(format!("{other:?} is not starttls, tls or none")),
        }
    }
}

/// An SMTP sink.
pub struct EmailSink {
    /// Recipients.
    pub to: Vec<Mailbox>,
    /// Sender.
    pub from: Mailbox,
    /// SMTP server host.
    pub host: String,
    /// SMTP server port.
    pub port: u16,
    /// STARTTLS, TLS or none.
    pub security: Security,
    /// AUTH user and password.
    pub credentials: Option<(String, Secret)>,
    /// CA certificates (PEM) to trust instead of the public roots, for a
    /// relay with an internal CA.
    pub ca_pem: Option<Vec<u8>>,
}

/// Split `HOST:PORT` (a bare host gets the port for `security`).
pub fn host_port(text: &str, security: Security) -> Result<(String, u16), String> {
    let default = match security {
        Security::Tls => 465,
        Security::StartTls => 587,
        Security::None => 25,
    };
    match text.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => p
            .parse::<u16>()
            .map(|p| (h.trim_matches(['[', ']']).to_string(), p))
            .map_err(|_| format!("{text:?}: {p:?} is not a port")),
        _ if !text.trim().is_empty() => Ok((text.trim().to_string(), default)),
        _ => Err("the SMTP server is empty".to_string()),
    }
}

/// The subject line.
pub fn subject(alert: &Alert) -> String {
    let s = format!("{}: {}", super::sinks::title(alert), alert.summary);
    // One line, and short enough for every mail client.
    s.replace(['\r', '\n'], " ").chars().take(200).collect()
}

/// The plain-text body.
pub fn body(alert: &Alert) -> String {
    let mut b = format!(
        "{}\n\nkey:     {}\nstate:   {} (was {})\nsince:   {}\ncheck:   {}\ntarget:  {}\nhost:    {}\n",
        alert.summary,
        alert.key,
        alert.state,
        alert.previous,
        alert.since,
        alert.check,
        alert.target,
        alert.host
    );
    for (k, v) in &alert.labels {
        b.push_str(&format!("label:   {k}={v}\n"));
    }
    let trace = trace_lines(alert);
    if !trace.is_empty() && alert.state != AlarmState::Ok {
        b.push_str("\nWhat the check did:\n");
        for line in trace {
            b.push_str(&format!("  {line}\n"));
        }
    }
    b.push_str(&format!(
        "\nalert {} at {}\n-- skyprobe notify\n",
        alert.id, alert.at
    ));
    b
}

impl EmailSink {
    fn message(&self, alert: &Alert) -> Result<Message, Failure> {
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(subject(alert))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            m = m.to(to.clone());
        }
        m.body(body(alert))
            .map_err(|e| Failure::Final(format!("cannot build the message: {e}")))
    }

    fn transport(&self, timeout: Duration) -> Result<SmtpTransport, Failure> {
        let tls = || {
            let fail = |e: lettre::transport::smtp::Error| {
                Failure::Final(format!("TLS for {}: {e}", self.host))
            };
            match &self.ca_pem {
                Some(pem) => TlsParameters::builder(self.host.clone())
                    .add_root_certificate(Certificate::from_pem(pem).map_err(fail)?)
                    .build_rustls()
                    .map_err(fail),
                None => TlsParameters::new(self.host.clone()).map_err(fail),
            }
        };
        let mut b = SmtpTransport::builder_dangerous(&self.host)
            .port(self.port)
            .timeout(Some(timeout));
        b = match self.security {
            Security::StartTls => b.tls(Tls::Required(tls()?)),
            Security::Tls => b.tls(Tls::Wrapper(tls()?)),
            Security::None => b.tls(Tls::None),
        };
        if let Some((user, password)) = &self.credentials {
            b = b.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(b.build())
    }
}

/// 530 (authentication required), 534 (mechanism too weak), 535 (wrong
/// credentials) and 538 (encryption required for the mechanism).
fn login_refused(e: &lettre::transport::smtp::Error) -> bool {
    e.status()
        .is_some_and(|code| matches!(u16::from(code), 530 | 534 | 535 | 538))
}

impl Sink for EmailSink {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn describe(&self) -> String {
        let to: Vec<String> = self.to.iter().map(|m| m.email.to_string()).collect();
        format!("{} via {}:{}", to.join(","), self.host, self.port)
    }

    fn secrets(&self) -> Vec<String> {
        match &self.credentials {
            // The password, and the AUTH PLAIN and LOGIN forms a server
            // might quote back (the scrubber also finds its base64).
            Some((user, password)) => vec![
                password.expose().to_string(),
                format!("\0{user}\0{}", password.expose()),
            ],
            None => Vec::new(),
        }
    }

    fn payload(&self, alert: &Alert) -> Value {
        json!({
            "from": self.from.to_string(),
            "to": self.to.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            "subject": subject(alert),
            "body": body(alert),
        })
    }

    fn deliver(&self, alert: &Alert, timeout: Duration) -> Result<String, Failure> {
        let message = self.message(alert)?;
        let transport = self.transport(timeout)?;
        match transport.send(&message) {
            Ok(response) => Ok(format!(
                "SMTP {} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )
            .trim()
            .to_string()),
            // A refused login is the sender's to fix (the user or the
            // password), not the message's: it is kept until they work.
            Err(e) if login_refused(&e) => Err(Failure::Retry(format!(
                "SMTP {}:{} refused the login: {e} (check the SMTP user and SKYPROBE_SMTP_PASSWORD)",
                self.host, self.port
            ))),
            // Other 5xx: the server will not take this message, ever.
            Err(e) if e.is_permanent() => Err(Failure::Final(format!("SMTP refused: {e}"))),
            Err(e) => Err(Failure::Retry(format!(
                "SMTP {}:{}: {e}",
                self.host, self.port
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(
            host_port("mail:2525", Security::None),
            Ok(("mail".into(), 2525))
        );
        assert_eq!(
            host_port("mail", Security::StartTls),
            Ok(("mail".into(), 587))
        );
        assert_eq!(
            host_port("[::1]:25", Security::None),
            Ok(("::1".into(), 25))
        );
        assert!(host_port("mail:x", Security::None).is_err());
        assert!(Security::parse("ssl3").is_err());
    }

    #[test]
    fn subject_is_one_line() {
        let mut a = crate::notify::sinks::tests::alert(
            AlarmState::Critical,
            crate::notify::alarm::Kind::Firing,
        );
        a.summary = "two\r\nlines".into();
        let s = subject(&a);
        assert_eq!(s, "[CRITICAL] probe-http nova-api: two  lines");
        assert!(body(&a).contains("FAIL response"));
    }
}
