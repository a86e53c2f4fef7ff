//! Network primitives every binary stands on, independent of HTTP and of
//! any HTTP library: name resolution with a deadline and named failures,
//! and TCP connect with a deadline, whose outcome says which of open,
//! refused, reset, timed out or unreachable it was, each timed.
//! probe-http's ureq adapter (`http::conn`) resolves and connects through
//! it; probe-host and canary-peer will too.

pub mod cert;
pub mod icmp;
pub mod scan;
pub mod tls;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Split `HOST`, `HOST:PORT` or `[V6]:PORT` (a bare IPv6 address has no
/// port); the port, when given, is 1-65535.
pub fn host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let t = text.trim();
    if t.is_empty() || t.contains(char::is_whitespace) {
        return Err(format!("{text:?} is not HOST or HOST:PORT"));
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{text:?}: port {p:?} is not 1-65535"))
    };
    if let Some(rest) = t.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: no closing ]"))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host.to_string(), Some(port(p)?))),
            None if after.is_empty() => Ok((host.to_string(), None)),
            None => Err(format!("{text:?} is not [ADDRESS]:PORT")),
        };
    }
    if t.parse::<IpAddr>().is_ok() {
        return Ok((t.to_string(), None));
    }
    match t.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), Some(port(p)?))),
        None => Ok((t.to_string(), None)),
    }
}

/// Why a name did not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveFailure {
    /// The name does not exist (or has no address of the family asked for).
    NotFound,
    /// No answer before the deadline.
    TimedOut,
    /// Anything else the resolver said (in [`Unresolved::words`]).
    Other,
}

/// A name that did not resolve: which way, after how long, in words.
#[derive(Debug, Clone)]
pub struct Unresolved {
    /// Which way it failed.
    pub failure: ResolveFailure,
    /// How long it took to fail.
    pub took: Duration,
    /// What happened, for a person: "no such host", "lookup timed out".
    pub words: String,
}

/// Resolve `host` (a name or an address literal) for `port`, giving up at
/// `deadline`: its addresses in the resolver's order, and how long it took.
/// An address literal is not looked up. The system resolver cannot be
/// interrupted: past the deadline its thread is left to finish alone.
pub fn resolve(
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<(Vec<SocketAddr>, Duration), Unresolved> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok((vec![SocketAddr::new(ip, port)], Duration::ZERO));
    }
    let name = bare.to_string();
    resolve_with(
        move || (name.as_str(), port).to_socket_addrs().map(|a| a.collect()),
        deadline,
    )
}

/// [`resolve`]'s deadline around any lookup (the seam its tests use).
pub fn resolve_with(
    lookup: impl FnOnce() -> std::io::Result<Vec<SocketAddr>> + Send + 'static,
    deadline: Instant,
) -> Result<(Vec<SocketAddr>, Duration), Unresolved> {
    let start = Instant::now();
    let timed_out = |start: Instant| Unresolved {
        failure: ResolveFailure::TimedOut,
        took: start.elapsed(),
        words: "lookup timed out".into(),
    };
    if deadline <= start {
        return Err(timed_out(start));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("resolve".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            let _ = tx.send(lookup());
        });
    if let Err(e) = spawned {
        return Err(Unresolved {
            failure: ResolveFailure::Other,
            took: start.elapsed(),
            words: format!("cannot start a lookup: {e}"),
        });
    }
    let result = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(result) => result,
        Err(_) => return Err(timed_out(start)),
    };
    let took = start.elapsed();
    match result {
        Ok(addrs) if addrs.is_empty() => Err(Unresolved {
            failure: ResolveFailure::NotFound,
            took,
            words: "no address".into(),
        }),
        Ok(addrs) => Ok((addrs, took)),
        Err(e) => {
            let text = e.to_string();
            // getaddrinfo's "failed to lookup address information: Name or
            // service not known" says what our shorter phrase says.
            let not_found = text.contains("Name or service not known")
                || text.contains("No address associated")
                || text.contains("nodename nor servname");
            Err(Unresolved {
                failure: if not_found {
                    ResolveFailure::NotFound
                } else {
                    ResolveFailure::Other
                },
                took,
                words: if not_found {
                    "no such host".into()
                } else {
                    text
                },
            })
        }
    }
}

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
        return Err(Failed::timed_out(addr, Duration::ZERO));
    }
    match TcpStream::connect_timeout(&addr, left) {
        Ok(stream) => Ok((stream, start.elapsed())),
        Err(e) => Err(Failed::of(addr, e, start.elapsed())),
    }
}

impl Failed {
    /// A connect to `addr` that the kernel failed with `e` after `took`.
    pub fn of(addr: SocketAddr, e: std::io::Error, took: Duration) -> Failed {
        let failure = ConnectFailure::of(&e);
        let words = match failure {
            ConnectFailure::Refused => "connection refused".to_string(),
            ConnectFailure::Reset => "connection reset".to_string(),
            ConnectFailure::TimedOut => "timed out".to_string(),
            ConnectFailure::HostUnreachable => "host unreachable".to_string(),
            ConnectFailure::NetworkUnreachable => "network unreachable".to_string(),
            ConnectFailure::Other => e.to_string(),
        };
        Failed {
            addr,
            failure,
            took,
            words,
            error: Some(e),
        }
    }

    /// A connect to `addr` the deadline ended after `took`.
    pub fn timed_out(addr: SocketAddr, took: Duration) -> Failed {
        Failed {
            addr,
            failure: ConnectFailure::TimedOut,
            took,
            words: "timed out".into(),
            error: None,
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
    fn host_and_port_split() {
        assert_eq!(host_port("10.0.0.1"), Ok(("10.0.0.1".into(), None)));
        assert_eq!(host_port("api:5000"), Ok(("api".into(), Some(5000))));
        assert_eq!(host_port("[::1]:22"), Ok(("::1".into(), Some(22))));
        assert_eq!(host_port("::1"), Ok(("::1".into(), None)));
        assert!(host_port("api:0").is_err());
        assert!(host_port("").is_err());
        assert!(host_port("[::1").is_err());
        assert!(host_port("[::1]x").is_err());
        assert!(host_port("a b:1").is_err());
        assert!(host_port("api:http").is_err());
    }

    #[test]
    fn addresses_are_not_looked_up_and_names_are() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let (addrs, took) = resolve("127.0.0.1", 80, deadline).expect("an address");
        assert_eq!(
            addrs,
            vec!["127.0.0.1:80".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(took, Duration::ZERO);
        let (addrs, _) = resolve("[::1]", 443, deadline).expect("an address");
        assert_eq!(addrs[0].port(), 443);
        // From /etc/hosts: no DNS server is asked.
        let (addrs, _) = resolve("localhost", 8080, deadline).expect("localhost");
        assert!(addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080));
    }

    #[test]
    fn a_lookup_that_never_answers_ends_at_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(100);
        let e = resolve_with(
            || {
                std::thread::sleep(Duration::from_secs(3));
                Ok(Vec::new())
            },
            deadline,
        )
        .expect_err("late");
        assert_eq!(e.failure, ResolveFailure::TimedOut);
        assert_eq!(e.words, "lookup timed out");
    }

    #[test]
    fn resolver_errors_are_named() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let e = resolve_with(
            || {
                Err(std::io::Error::other(
                    "failed to lookup address information: Name or service not known",
                ))
            },
            deadline,
        )
        .expect_err("not found");
        assert_eq!(
            (e.failure, e.words.as_str()),
            (ResolveFailure::NotFound, "no such host")
        );
        let e = resolve_with(|| Ok(Vec::new()), deadline).expect_err("empty");
        assert_eq!(e.failure, ResolveFailure::NotFound);
        let e = resolve_with(
            || {
                Err(std::io::Error::other(
                    "Temporary failure in name resolution",
                ))
            },
            deadline,
        )
        .expect_err("other");
        assert_eq!(e.failure, ResolveFailure::Other);
    }

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
