//! What probe-host says over an open port, as check_tcp does: TLS first
//! (`-S`), then send (`-s`), read until the expected text (`-e`, any or
//! `-A` all), send the quit string (`-q`), close. Runs on the connection
//! `net::scan` made, inside the run's deadline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::net::cert::{first_to_expire, CertInfo};
use crate::net::tls;

/// What to say and expect on each open port.
#[derive(Debug, Clone, Default)]
pub struct Dialog {
    /// Shake hands with TLS first, with this configuration (`-S`): made
    /// once per run, so a chain many hosts present is verified once.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Bytes to send once connected (`-s`).
    pub send: Option<Vec<u8>>,
    /// How long to wait after sending before reading (`-d`).
    pub delay: Option<Duration>,
    /// Texts the answer must contain (`-e`).
    pub expect: Vec<Vec<u8>>,
    /// Every expected text, not any one (`-A`).
    pub expect_all: bool,
    /// Bytes to send before closing (`-q`).
    pub quit: Option<Vec<u8>>,
    /// Read at most this much of the answer.
    pub max_bytes: usize,
}

impl Dialog {
    /// Anything to do past the connect.
    pub fn is_empty(&self) -> bool {
        self.tls.is_none() && self.send.is_none() && self.expect.is_empty() && self.quit.is_none()
    }
}

/// How a dialog went.
#[derive(Debug, Clone, Default)]
pub struct Spoken {
    /// TLS: version and the chain presented.
    pub tls: Option<(String, Vec<CertInfo>)>,
    /// Why TLS failed, when it did (the chain may still be in `tls`).
    pub tls_error: Option<String>,
    /// What the server sent (up to the bound).
    pub answer: Vec<u8>,
    /// Whether the expected text came (`None` without `-e`).
    pub matched: Option<bool>,
    /// The expected texts that did not come.
    pub missing: Vec<String>,
    /// An I/O error on the way, or the deadline.
    pub error: Option<String>,
    /// From connected to done.
    pub took: Duration,
}

impl Spoken {
    /// Days left on the first certificate of the chain to expire.
    pub fn cert_days(&self) -> Option<(f64, &CertInfo)> {
        let (_, chain) = self.tls.as_ref()?;
        let first = first_to_expire(chain)?;
        Some((first.days_left(std::time::SystemTime::now()), first))
    }
}

trait Channel {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl Channel for TcpStream {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes)
    }
    fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.read(buf)
    }
}

struct Tls<'a> {
    conn: rustls::ClientConnection,
    stream: &'a mut TcpStream,
}

impl Channel for Tls<'_> {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut s = rustls::Stream::new(&mut self.conn, self.stream);
        s.write_all(bytes)?;
        s.flush()
    }
    fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        rustls::Stream::new(&mut self.conn, self.stream).read(buf)
    }
}

/// Hold the dialog on `stream` (connected to `server_name`) before `deadline`.
pub fn speak(
    mut stream: TcpStream,
    server_name: &str,
    dialog: &Dialog,
    deadline: Instant,
) -> Spoken {
    let started = Instant::now();
    let mut spoken = Spoken::default();
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        spoken.error = Some("the deadline came before the dialog".into());
        return spoken;
    }
    let _ = stream.set_read_timeout(Some(left));
    let _ = stream.set_write_timeout(Some(left));
    match &dialog.tls {
        Some(config) => match tls::handshake_with(
            &mut stream,
            server_name,
            std::sync::Arc::clone(config),
            deadline,
        ) {
            Ok(hs) => {
                spoken.tls = Some((hs.version, hs.chain));
                let mut channel = Tls {
                    conn: hs.conn,
                    stream: &mut stream,
                };
                converse(&mut channel, dialog, deadline, &mut spoken);
                channel.conn.send_close_notify();
                let _ = channel.conn.complete_io(channel.stream);
            }
            Err(failed) => {
                if !failed.chain.is_empty() {
                    spoken.tls = Some((String::new(), failed.chain.clone()));
                }
                spoken.tls_error = Some(failed.words());
            }
        },
        None => converse(&mut stream, dialog, deadline, &mut spoken),
    }
    spoken.took = started.elapsed();
    spoken
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn converse(channel: &mut dyn Channel, dialog: &Dialog, deadline: Instant, spoken: &mut Spoken) {
    if let Some(send) = &dialog.send {
        if let Err(e) = channel.send(send) {
            spoken.error = Some(format!("send failed: {}", io_words(&e)));
            return;
        }
        if let Some(delay) = dialog.delay {
            // check_tcp -d: give a slow service time to answer the text
            // before its first bytes are judged; never past the deadline.
            std::thread::sleep(delay.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
    if !dialog.expect.is_empty() {
        let satisfied = |answer: &[u8]| {
            let mut hits = dialog.expect.iter().map(|e| contains(answer, e));
            if dialog.expect_all {
                hits.all(|h| h)
            } else {
                hits.any(|h| h)
            }
        };
        let mut buf = [0u8; 4096];
        let limit = dialog.max_bytes.max(1);
        while !satisfied(&spoken.answer) && spoken.answer.len() < limit {
            if Instant::now() >= deadline {
                break;
            }
            match channel.recv(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = limit - spoken.answer.len();
                    spoken.answer.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if spoken.answer.is_empty() {
                        spoken.error = Some("no answer before the deadline".into());
                    }
                    break;
                }
                Err(e) => {
                    spoken.error = Some(format!("read failed: {}", io_words(&e)));
                    break;
                }
            }
        }
        let matched = satisfied(&spoken.answer);
        spoken.matched = Some(matched);
        if !matched {
            spoken.missing = dialog
                .expect
                .iter()
                .filter(|e| !contains(&spoken.answer, e))
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .collect();
        }
    }
    if let Some(quit) = &dialog.quit {
        let _ = channel.send(quit);
    }
}

fn io_words(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        std::io::ErrorKind::BrokenPipe => "the server closed the connection".into(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timed out".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn server(script: impl FnOnce(TcpStream) + Send + 'static) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((s, _)) = listener.accept() {
                script(s);
            }
        });
        addr
    }

    fn dialog(expect: &[&str], all: bool) -> Dialog {
        Dialog {
            expect: expect.iter().map(|e| e.as_bytes().to_vec()).collect(),
            expect_all: all,
            max_bytes: 65_536,
            ..Dialog::default()
        }
    }

    #[test]
    fn a_banner_matches_any_or_all() {
        for (expect, all, matched) in [
            (vec!["SSH-2.0"], false, true),
            (vec!["nope", "OpenSSH"], false, true),
            (vec!["nope", "OpenSSH"], true, false),
        ] {
            let addr = server(|mut s| {
                let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
            });
            let stream = TcpStream::connect(addr).expect("connect");
            let spoken = speak(
                stream,
                "127.0.0.1",
                &dialog(&expect, all),
                Instant::now() + Duration::from_secs(5),
            );
            assert_eq!(spoken.matched, Some(matched), "{expect:?} {spoken:?}");
            if !matched {
                assert_eq!(spoken.missing, vec!["nope".to_string()]);
            }
        }
    }

    #[test]
    fn send_then_expect_then_quit() {
        let (tx, rx) = std::sync::mpsc::channel();
        let addr = server(move |mut s| {
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = s.write_all(b"+PONG\r\n");
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            let _ = tx.send((buf[..n].to_vec(), rest));
        });
        let mut d = dialog(&["PONG"], false);
        d.send = Some(b"PING\r\n".to_vec());
        d.quit = Some(b"QUIT\r\n".to_vec());
        let spoken = speak(
            TcpStream::connect(addr).expect("c"),
            "127.0.0.1",
            &d,
            Instant::now() + Duration::from_secs(5),
        );
        assert_eq!(spoken.matched, Some(true));
        let (got, quit) = rx.recv_timeout(Duration::from_secs(5)).expect("server saw");
        assert_eq!(got, b"PING\r\n");
        assert_eq!(quit, b"QUIT\r\n");
    }

    #[test]
    fn a_silent_server_ends_at_the_deadline_and_says_so() {
        let addr = server(|s| {
            std::thread::sleep(Duration::from_secs(3));
            drop(s);
        });
        let spoken = speak(
            TcpStream::connect(addr).expect("c"),
            "127.0.0.1",
            &dialog(&["x"], false),
            Instant::now() + Duration::from_millis(300),
        );
        assert_eq!(spoken.matched, Some(false));
        assert_eq!(
            spoken.error.as_deref(),
            Some("no answer before the deadline")
        );
    }

    #[test]
    fn a_delay_after_sending_reads_what_came_in_the_meantime() {
        // The service answers in two parts 200 ms apart; -e is met by the
        // first. Without -d the answer is the first part; with -d 500ms it
        // is both, and a delay longer than the deadline stops at it.
        let two_parts = || {
            server(|mut s| {
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"+OK one\r\n");
                std::thread::sleep(Duration::from_millis(200));
                let _ = s.write_all(b"+OK two\r\n");
                std::thread::sleep(Duration::from_millis(500));
            })
        };
        let mut d = dialog(&["+OK"], false);
        d.send = Some(b"HELLO\r\n".to_vec());
        let soon = || Instant::now() + Duration::from_secs(5);
        let connect = |addr| TcpStream::connect(addr).expect("c");
        let spoken = speak(connect(two_parts()), "127.0.0.1", &d, soon());
        assert_eq!(spoken.answer, b"+OK one\r\n");
        d.delay = Some(Duration::from_millis(500));
        let spoken = speak(connect(two_parts()), "127.0.0.1", &d, soon());
        assert_eq!(spoken.answer, b"+OK one\r\n+OK two\r\n");
        assert!(spoken.took >= Duration::from_millis(500), "{spoken:?}");
        d.delay = Some(Duration::from_secs(30));
        let spoken = speak(
            connect(two_parts()),
            "127.0.0.1",
            &d,
            Instant::now() + Duration::from_millis(300),
        );
        assert!(
            spoken.took < Duration::from_secs(5),
            "the deadline holds: {spoken:?}"
        );
    }
}
