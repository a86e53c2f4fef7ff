//! Network primitives every binary stands on, independent of HTTP and of
//! any HTTP library: TCP connect with a deadline, whose outcome says which
//! of open, refused, reset, timed out or unreachable it was, each timed.
//! probe-http's ureq adapter (`http::conn`) connects through it; probe-host
//! and canary-peer will too.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Why a TCP connect did not give a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Nothing listens there (an RST to the SYN).
    Refused,
    /// The connection was reset while it was being made.
    Reset,
    /// No answer before the deadline (a filtered port, a host gone).
    TimedOut,
    /// No route to the host.
    HostUnreachable,
    /// No route to its network.
    NetworkUnreachable,
    /// Anything else the kernel said (kept in words by [`Failed`]).
    Other,
}

impl ConnectFailure {
    /// The kind of failure an I/O error from `connect` is.
    pub fn of(e: &std::io::Error) -> ConnectFailure {
        match e.kind() {
            ErrorKind::ConnectionRefused => ConnectFailure::Refused,
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => ConnectFailure::Reset,
            ErrorKind::TimedOut | ErrorKind::WouldBlock => ConnectFailure::TimedOut,
            ErrorKind::HostUnreachable => ConnectFailure::HostUnreachable,
            ErrorKind::NetworkUnreachable => ConnectFailure::NetworkUnreachable,
            _ => ConnectFailure::Other,
        }
    }

    /// A short name for records (`refused`, `timeout`...).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectFailure::Refused => "refused",
            ConnectFailure::Reset => "reset",
            ConnectFailure::TimedOut => "timeout",
            ConnectFailure::HostUnreachable | ConnectFailure::NetworkUnreachable => "unreachable",
            ConnectFailure::Other => "error",
        }
    }
}

/// A connect that failed: which way, after how long, in words.
#[derive(Debug)]
pub struct Failed {
    /// Where to.
    pub addr: SocketAddr,
    /// Which way it failed.
    pub failure: ConnectFailure,
    /// How long it took to fail.
    pub took: Duration,
    /// What happened, for a person: "connection refused", "timed out".
    pub words: String,
    /// The kernel's error, when there was one.
    pub error: Option<std::io::Error>,
}

/// Connect to `addr`, giving up at `deadline`; the connection and how long
/// the handshake took.
pub fn connect(addr: SocketAddr, deadline: Instant) -> Result<(TcpStream, Duration), Failed> {
    let start = Instant::now();
    let left = deadline.saturating_duration_since(start);
    if left.is_zero() {
        return Err(Failed {
            addr,
            failure: ConnectFailure::TimedOut,
            took: Duration::ZERO,
            words: "timed out".into(),
            error: None,
        });
    }
    match TcpStream::connect_timeout(&addr, left) {
        Ok(stream) => Ok((stream, start.elapsed())),
        Err(e) => {
            let failure = ConnectFailure::of(&e);
            let words = match failure {
                ConnectFailure::Refused => "connection refused".to_string(),
                ConnectFailure::Reset => "connection reset".to_string(),
                ConnectFailure::TimedOut => "timed out".to_string(),
                ConnectFailure::HostUnreachable => "host unreachable".to_string(),
                ConnectFailure::NetworkUnreachable => "network unreachable".to_string(),
                ConnectFailure::Other => e.to_string(),
            };
            Err(Failed {
                addr,
                failure,
                took: start.elapsed(),
                words,
                error: Some(e),
            })
        }
    }
}

/// A connection to the first of `addrs` that takes one, in order, inside
/// the deadline: the stream, its address, the time from the first try, and
/// the failures before it. Without one, every failure, the last last.
pub type Attempts = (TcpStream, SocketAddr, Duration, Vec<Failed>);

/// Try `addrs` in order until one connects (see [`Attempts`]).
pub fn connect_any(addrs: &[SocketAddr], deadline: Instant) -> Result<Attempts, Vec<Failed>> {
    let start = Instant::now();
    let mut failures = Vec::new();
    for &addr in addrs {
        match connect(addr, deadline) {
            Ok((stream, _)) => return Ok((stream, addr, start.elapsed(), failures)),
            Err(f) => {
                let out_of_time = f.failure == ConnectFailure::TimedOut;
                failures.push(f);
                if out_of_time && Instant::now() >= deadline {
                    break;
                }
            }
        }
    }
    Err(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn an_open_port_connects_and_is_timed() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (_stream, took) =
            connect(addr, Instant::now() + Duration::from_secs(5)).expect("connects");
        assert!(took < Duration::from_secs(5));
    }

    #[test]
    fn a_closed_port_is_refused() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let f = connect(addr, Instant::now() + Duration::from_secs(5)).expect_err("closed");
        assert_eq!(f.failure, ConnectFailure::Refused);
        assert_eq!(f.words, "connection refused");
        assert_eq!(f.failure.as_str(), "refused");
    }

    #[test]
    fn a_full_accept_queue_times_out_at_the_deadline() {
        // Nobody accepts: once the queue is full the kernel drops new SYNs,
        // as a filtered port or a vanished host does.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut held = Vec::new();
        let mut timed_out = None;
        for _ in 0..1100 {
            match connect(addr, Instant::now() + Duration::from_millis(200)) {
                Ok((s, _)) => held.push(s),
                Err(f) => {
                    timed_out = Some(f);
                    break;
                }
            }
        }
        let f = timed_out.expect("the queue fills up");
        assert_eq!(f.failure, ConnectFailure::TimedOut, "{}", f.words);
        assert_eq!(f.words, "timed out");
    }

    #[test]
    fn a_deadline_already_past_is_a_timeout_without_trying() {
        let f = connect("127.0.0.1:9".parse().expect("addr"), Instant::now()).expect_err("late");
        assert_eq!(f.failure, ConnectFailure::TimedOut);
        assert!(f.error.is_none());
    }

    #[test]
    fn kernel_errors_are_named() {
        for (kind, want) in [
            (ErrorKind::ConnectionRefused, ConnectFailure::Refused),
            (ErrorKind::ConnectionReset, ConnectFailure::Reset),
            (ErrorKind::TimedOut, ConnectFailure::TimedOut),
            (ErrorKind::HostUnreachable, ConnectFailure::HostUnreachable),
            (
                ErrorKind::NetworkUnreachable,
                ConnectFailure::NetworkUnreachable,
            ),
            (ErrorKind::PermissionDenied, ConnectFailure::Other),
        ] {
            assert_eq!(
                ConnectFailure::of(&std::io::Error::from(kind)),
                want,
                "{kind:?}"
            );
        }
        assert_eq!(ConnectFailure::HostUnreachable.as_str(), "unreachable");
    }

    #[test]
    fn the_first_address_that_answers_is_taken_after_the_failures() {
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let open = listener.local_addr().expect("addr");
        let (_s, addr, _took, failures) =
            connect_any(&[closed, open], Instant::now() + Duration::from_secs(5)).expect("one");
        assert_eq!(addr, open);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].failure, ConnectFailure::Refused);
        let all =
            connect_any(&[closed], Instant::now() + Duration::from_secs(5)).expect_err("none");
        assert_eq!(all.len(), 1);
    }
}
