//! Many TCP connects at once in one event loop (mio): N hosts × M ports
//! cost about one timeout, not N × M, and no thread per connection. Each
//! connect ends open (with its handshake time), refused, reset,
//! unreachable or timed out, as [`super::connect`] names them.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::Failed;

/// Connects in flight at most by default: well under the usual 1,024
/// open files, with room for the rest of the process.
pub const IN_FLIGHT: usize = 512;

/// Connects to allow in flight for `wanted` at once: the soft open-file
/// limit is raised towards its hard limit first, so a thousand hosts with
/// a fifth blackholed do not wait for each other's timeouts (a connect
/// that never starts is a false timeout). What stays below the limit is
/// left for the rest of the process.
pub fn room_for(wanted: usize) -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    const SPARE: u64 = 128;
    let want = wanted as u64 + SPARE;
    let soft = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < want && hard > soft => {
            let raised = want.min(hard);
            match setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
                Ok(()) => raised,
                Err(_) => soft,
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    };
    (soft.saturating_sub(SPARE) as usize).clamp(1, wanted.max(1))
}

/// One connect's end: the connected stream (blocking again) and the time
/// from SYN to established, or why not.
pub type Outcome = Result<(TcpStream, Duration), Failed>;

/// Connect to every address before `deadline`, at most `in_flight` at a
/// time, in one event loop; the outcomes in the order of `addrs`. An
/// address the deadline reached before its connect was even started is a
/// timeout too (with `took` zero).
pub fn connect_all(addrs: &[SocketAddr], deadline: Instant, in_flight: usize) -> Vec<Outcome> {
    let mut out: Vec<Option<Outcome>> = (0..addrs.len()).map(|_| None).collect();
    connect_each(addrs, deadline, in_flight, |i, outcome| {
        out[i] = Some(outcome)
    });
    out.into_iter()
        .zip(addrs)
        .map(|(o, &a)| o.unwrap_or_else(|| Err(Failed::timed_out(a, Duration::ZERO))))
        .collect()
}

/// [`connect_all`], handing each address's outcome (by its index in
/// `addrs`) to `settled` as soon as it is known, so an open port can be
/// spoken to while slower ones are still connecting. Every index is
/// handed exactly once, the last of them when the deadline comes.
pub fn connect_each(
    addrs: &[SocketAddr],
    deadline: Instant,
    in_flight: usize,
    mut settled: impl FnMut(usize, Outcome),
) {
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            // No event loop (out of file descriptors): say so for each.
            for (i, &a) in addrs.iter().enumerate() {
                settled(
                    i,
                    Err(Failed::of(
                        a,
                        std::io::Error::new(e.kind(), format!("no event loop: {e}")),
                        Duration::ZERO,
                    )),
                );
            }
            return;
        }
    };
    let mut events = Events::with_capacity(1024);
    let mut pending: Vec<Option<(mio::net::TcpStream, Instant)>> =
        (0..addrs.len()).map(|_| None).collect();
    let in_flight = in_flight.max(1);
    let mut next = 0;
    let mut running = 0usize;
    loop {
        // Start connects while there is room and time.
        while next < addrs.len() && running < in_flight && Instant::now() < deadline {
            let i = next;
            next += 1;
            let started = Instant::now();
            match mio::net::TcpStream::connect(addrs[i]) {
                Ok(mut stream) => {
                    match poll
                        .registry()
                        .register(&mut stream, Token(i), Interest::WRITABLE)
                    {
                        Ok(()) => {
                            pending[i] = Some((stream, started));
                            running += 1;
                        }
                        Err(e) => settled(i, Err(Failed::of(addrs[i], e, started.elapsed()))),
                    }
                }
                // Refused or unreachable at once (a local route, no socket).
                Err(e) => settled(i, Err(Failed::of(addrs[i], e, started.elapsed()))),
            }
        }
        if running == 0 && (next >= addrs.len() || Instant::now() >= deadline) {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Err(e) = poll.poll(&mut events, Some(left)) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        for event in events.iter() {
            let i = event.token().0;
            let Some((stream, started)) = pending.get_mut(i).and_then(Option::take) else {
                continue;
            };
            match settle(poll.registry(), stream, started) {
                Settled::Done(outcome) => {
                    running -= 1;
                    settled(
                        i,
                        outcome.map_err(|e| Failed::of(addrs[i], e, started.elapsed())),
                    );
                }
                // A wake-up before the handshake ended: keep waiting.
                Settled::NotYet(stream) => pending[i] = Some((stream, started)),
            }
        }
    }
    // What the deadline cut off, started or not.
    for (i, slot) in pending.iter_mut().enumerate() {
        if let Some((_, started)) = slot.take() {
            settled(i, Err(Failed::timed_out(addrs[i], started.elapsed())));
        }
    }
    for (i, &a) in addrs.iter().enumerate().skip(next) {
        settled(
            i,
            Err(Failed {
                words: format!(
                    "not started before the deadline ({in_flight} connects in flight at most)"
                ),
                ..Failed::timed_out(a, Duration::ZERO)
            }),
        );
    }
}

enum Settled {
    Done(Result<(TcpStream, Duration), std::io::Error>),
    NotYet(mio::net::TcpStream),
}

/// After a writable event: connected, failed, or not yet (a spurious wake).
fn settle(registry: &mio::Registry, mut stream: mio::net::TcpStream, started: Instant) -> Settled {
    let done = |registry: &mio::Registry, stream: &mut mio::net::TcpStream| {
        // Out of the loop's set before it becomes a plain stream.
        let _ = registry.deregister(stream);
    };
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => {
            done(registry, &mut stream);
            return Settled::Done(Err(e));
        }
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => {
            let took = started.elapsed();
            done(registry, &mut stream);
            let std_stream: TcpStream = stream.into();
            let _ = std_stream.set_nonblocking(false);
            Settled::Done(Ok((std_stream, took)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotConnected => Settled::NotYet(stream),
        Err(e) => {
            done(registry, &mut stream);
            Settled::Done(Err(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ConnectFailure;
    use std::net::TcpListener;

    fn closed_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    }

    #[test]
    fn open_and_refused_ports_come_back_in_order() {
        let listeners: Vec<TcpListener> = (0..20)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let mut addrs = Vec::new();
        for l in &listeners {
            addrs.push(l.local_addr().expect("addr"));
            addrs.push(closed_port());
        }
        for in_flight in [1, 7, IN_FLIGHT] {
            let got = connect_all(&addrs, Instant::now() + Duration::from_secs(5), in_flight);
            assert_eq!(got.len(), addrs.len());
            for (i, outcome) in got.iter().enumerate() {
                if i % 2 == 0 {
                    let (s, took) = outcome.as_ref().expect("open");
                    assert_eq!(s.peer_addr().expect("peer"), addrs[i]);
                    assert!(took < &Duration::from_secs(5));
                } else {
                    let f = outcome.as_ref().expect_err("refused");
                    assert_eq!(f.failure, ConnectFailure::Refused, "{}", f.words);
                    assert_eq!(f.addr, addrs[i]);
                }
            }
        }
    }

    #[test]
    fn a_full_accept_queue_is_a_timeout_and_the_rest_still_settle() {
        // Nobody accepts on `full`: once its queue is full the kernel drops
        // new SYNs, as a filtered port or a vanished host does.
        let full = TcpListener::bind("127.0.0.1:0").expect("bind");
        let full_addr = full.local_addr().expect("addr");
        let mut held = Vec::new();
        loop {
            match super::super::connect(full_addr, Instant::now() + Duration::from_millis(200)) {
                Ok((s, _)) => held.push(s),
                Err(_) => break,
            }
            assert!(held.len() < 5000, "the queue never filled");
        }
        let open = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addrs = [full_addr, open.local_addr().expect("addr"), closed_port()];
        let got = connect_all(
            &addrs,
            Instant::now() + Duration::from_millis(300),
            IN_FLIGHT,
        );
        let f = got[0].as_ref().expect_err("dropped SYN");
        assert_eq!(f.failure, ConnectFailure::TimedOut);
        assert!(f.took >= Duration::from_millis(250), "{:?}", f.took);
        assert!(got[1].is_ok());
        assert_eq!(
            got[2].as_ref().expect_err("refused").failure,
            ConnectFailure::Refused
        );
    }

    #[test]
    fn addresses_the_deadline_never_reached_are_timeouts() {
        let addrs = [closed_port(), closed_port()];
        let got = connect_all(&addrs, Instant::now(), 1);
        for g in &got {
            let f = g.as_ref().expect_err("late");
            assert_eq!(f.failure, ConnectFailure::TimedOut);
            assert_eq!(f.took, Duration::ZERO);
        }
        assert!(connect_all(&[], Instant::now() + Duration::from_secs(1), 4).is_empty());
    }

    #[test]
    fn a_thousand_ports_in_one_loop() {
        let open: Vec<TcpListener> = (0..50)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let mut addrs: Vec<SocketAddr> =
            open.iter().map(|l| l.local_addr().expect("addr")).collect();
        // Ports nobody listens on, on another loopback address.
        addrs.extend((40_000..40_950).map(|p| SocketAddr::from(([127, 0, 0, 2], p))));
        let got = connect_all(&addrs, Instant::now() + Duration::from_secs(10), IN_FLIGHT);
        let opened = got.iter().filter(|g| g.is_ok()).count();
        let refused = got
            .iter()
            .filter(|g| matches!(g, Err(f) if f.failure == ConnectFailure::Refused))
            .count();
        assert_eq!(opened, 50);
        assert_eq!(refused, 950);
    }
}
