//! ICMP echo to many addresses at once: one socket per address family, one
//! event loop, a global gap between any two echoes and an interval between
//! two echoes to one address (fping's `-i` and `-p`). The unprivileged
//! datagram socket is tried first (`net.ipv4.ping_group_range`), then the
//! raw one (CAP_NET_RAW); when neither opens, the failure says which
//! sysctl or capability is missing.
//!
//! Replies are matched on their payload (a random cookie of the run and
//! the echo's number) and sequence number, not on the identifier: the
//! kernel rewrites the identifier of a datagram socket's echoes.
//!
//! ICMP errors about our echoes (host unreachable, prohibited, time
//! exceeded) are read on both sockets: a raw socket hears them as packets,
//! a datagram socket only through its error queue (`IP_RECVERR`), so an
//! unreachable host says so instead of showing as plain loss.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Which kind of ICMP socket to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketChoice {
    /// The datagram socket, else the raw one.
    Auto,
    /// Only the unprivileged datagram socket.
    Datagram,
    /// Only the raw socket.
    Raw,
}

/// The kind of socket that carried the echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_DGRAM` + `IPPROTO_ICMP`: no privilege, within ping_group_range.
    Datagram,
    /// `SOCK_RAW`: needs CAP_NET_RAW.
    Raw,
}

impl SocketKind {
    /// `datagram` or `raw`, for records.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketKind::Datagram => "datagram",
            SocketKind::Raw => "raw",
        }
    }
}

/// How echoes are paced.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// Echoes per address.
    pub count: u16,
    /// Least time between any two echoes sent (fping `-i`).
    pub gap: Duration,
    /// Least time between two echoes to one address (fping `-p`).
    pub per_target: Duration,
    /// How long a reply may take; a later one counts as lost.
    pub wait: Duration,
    /// Payload bytes of each echo (at least [`MIN_PAYLOAD`]).
    pub payload: usize,
    /// Which socket to use.
    pub socket: SocketChoice,
}

/// The fewest payload bytes: the cookie and the echo's number.
pub const MIN_PAYLOAD: usize = 12;

/// What became of the echoes to one address.
#[derive(Debug, Clone, Default)]
pub struct Echoes {
    /// One slot per echo sent, in the order sent: its round-trip time, or
    /// `None` when no reply came within the wait.
    pub rtts: Vec<Option<Duration>>,
    /// Echoes the deadline left unsent.
    pub unsent: u16,
    /// Replies that came more than once.
    pub duplicates: u32,
    /// Replies that came after the wait (counted lost).
    pub late: u32,
    /// Echoes sent whose wait the deadline cut short, unanswered: neither
    /// answered nor lost (not in `rtts`).
    pub cut: u16,
    /// An ICMP error about these echoes (unreachable, time exceeded), or
    /// an error the kernel gave when sending one.
    pub error: Option<String>,
    /// The socket used.
    pub socket: Option<SocketKind>,
    /// Why no socket could be opened for this address's family: the
    /// monitor cannot ping at all (UNKNOWN, not a dead host).
    pub no_socket: Option<String>,
}

impl Echoes {
    /// Replies received.
    pub fn received(&self) -> usize {
        self.rtts.iter().filter(|r| r.is_some()).count()
    }
}

struct Side {
    socket: Socket,
    kind: SocketKind,
    v6: bool,
    /// The identifier written into echoes (the kernel replaces it on a
    /// datagram socket, so replies are only filtered by it on a raw one).
    ident: u16,
}

/// The groups allowed unprivileged ICMP sockets, as the sysctl shows them.
fn ping_group_range() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unreadable".into())
}

fn open(v6: bool, choice: SocketChoice) -> Result<Side, String> {
    let (domain, protocol) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let ident = (std::process::id() & 0xffff) as u16;
    let side = |socket: Socket, kind| -> Result<Side, String> {
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("cannot make the ICMP socket non-blocking: {e}"))?;
        Ok(Side {
            socket,
            kind,
            v6,
            ident,
        })
    };
    let datagram = match choice {
        SocketChoice::Raw => None,
        _ => match Socket::new(domain, Type::DGRAM, Some(protocol)) {
            Ok(s) => {
                // Without it a datagram socket is never told of ICMP errors;
                // a kernel that refused it would still ping (errors then
                // show as loss), so its refusal is not a reason to stop.
                use nix::sys::socket::{setsockopt, sockopt};
                let _ = if v6 {
                    setsockopt(&s, sockopt::Ipv6RecvErr, &true)
                } else {
                    setsockopt(&s, sockopt::Ipv4RecvErr, &true)
                };
                return side(s, SocketKind::Datagram);
            }
            Err(e) => Some(e),
        },
    };
    let raw = match choice {
        SocketChoice::Datagram => None,
        _ => match Socket::new(domain, Type::RAW, Some(protocol)) {
            Ok(s) => return side(s, SocketKind::Raw),
            Err(e) => Some(e),
        },
    };
    let gid = nix::unistd::getegid();
    let mut why = Vec::new();
    if let Some(e) = datagram {
        why.push(format!(
            "the datagram socket needs group {gid} within net.ipv4.ping_group_range (now \"{}\"): {e}",
            ping_group_range()
        ));
    }
    if let Some(e) = raw {
        why.push(format!("the raw socket needs CAP_NET_RAW: {e}"));
    }
    Err(format!(
        "no ICMP{} socket: {}",
        if v6 { "v6" } else { "" },
        why.join("; ")
    ))
}

/// The internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request(
    v6: bool,
    ident: u16,
    seq: u16,
    cookie: &[u8; 8],
    index: u32,
    payload: usize,
) -> Vec<u8> {
    let mut packet = vec![0u8; 8 + payload.max(MIN_PAYLOAD)];
    packet[0] = if v6 { 128 } else { 8 };
    packet[4..6].copy_from_slice(&ident.to_be_bytes());
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..16].copy_from_slice(cookie);
    packet[16..20].copy_from_slice(&index.to_be_bytes());
    for (i, b) in packet[20..].iter_mut().enumerate() {
        *b = (i & 0xff) as u8;
    }
    // ICMPv6's checksum covers a pseudo-header: the kernel fills it in.
    if !v6 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// What a received packet says about our echoes.
#[derive(Debug, PartialEq)]
enum Heard {
    /// A reply to echo `index`.
    Reply(u32),
    /// An ICMP error about echo `index`, in words.
    Error(u32, String),
    /// Not ours, or not about an echo.
    Other,
}

fn error_words(v6: bool, kind: u8, code: u8) -> Option<String> {
    let words = match (v6, kind, code) {
        (false, 3, 0) => "network unreachable",
        (false, 3, 1) => "host unreachable",
        (false, 3, 9 | 10 | 13) => "administratively prohibited (a firewall)",
        (false, 3, _) => "destination unreachable",
        (false, 11, _) => "time to live exceeded in transit",
        (true, 1, 0) => "no route to destination",
        (true, 1, 1) => "administratively prohibited (a firewall)",
        (true, 1, 3) => "address unreachable",
        (true, 1, _) => "destination unreachable",
        (true, 3, _) => "hop limit exceeded in transit",
        _ => return None,
    };
    Some(format!("{words} (ICMP type {kind} code {code})"))
}

/// The number of our echo `echo` (an echo header, then our cookie and
/// number), or `None` when it is not one of this run's.
fn ours(side: &Side, echo: &[u8], cookie: &[u8; 8]) -> Option<u32> {
    let seq = u16::from_be_bytes([*echo.get(6)?, *echo.get(7)?]);
    let ident = u16::from_be_bytes([*echo.get(4)?, *echo.get(5)?]);
    if echo.get(8..16)? != cookie {
        return None;
    }
    if side.kind == SocketKind::Raw && ident != side.ident {
        return None;
    }
    let index = u32::from_be_bytes(echo.get(16..20)?.try_into().ok()?);
    (index as u16 == seq).then_some(index)
}

/// One message of a datagram socket's error queue, against our echoes:
/// the queue hands back the echo the error is about, and says in a
/// control message what ICMP said of it (or what the kernel itself found,
/// such as a neighbour that never answered).
fn hear_queued(side: &Side, cookie: &[u8; 8], buf: &mut [u8]) -> Option<Heard> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
    let mut space = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        side.socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )
    .ok()?;
    let bytes = msg.bytes;
    let mut said = None;
    for cmsg in msg.cmsgs().ok()? {
        let err = match cmsg {
            ControlMessageOwned::Ipv4RecvErr(e, _) | ControlMessageOwned::Ipv6RecvErr(e, _) => e,
            _ => continue,
        };
        said = match err.ee_origin {
            nix::libc::SO_EE_ORIGIN_ICMP | nix::libc::SO_EE_ORIGIN_ICMP6 => {
                error_words(side.v6, err.ee_type, err.ee_code)
            }
            nix::libc::SO_EE_ORIGIN_LOCAL => Some(format!(
                "{} (said by this machine)",
                std::io::Error::from_raw_os_error(err.ee_errno as i32)
            )),
            _ => None,
        };
    }
    let Some(words) = said else {
        return Some(Heard::Other);
    };
    Some(match ours(side, &buf[..bytes], cookie) {
        Some(index) => Heard::Error(index, words),
        None => Heard::Other,
    })
}

/// Read an ICMP message (after any IP header) against our echoes.
fn hear(side: &Side, packet: &[u8], cookie: &[u8; 8]) -> Heard {
    let icmp = if !side.v6 && side.kind == SocketKind::Raw {
        // A raw IPv4 socket hands over the IP header too.
        let header = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        match packet.get(header..) {
            Some(rest) => rest,
            None => return Heard::Other,
        }
    } else {
        packet
    };
    if icmp.len() < 8 {
        return Heard::Other;
    }
    let ours = |echo: &[u8]| ours(side, echo, cookie);
    let reply = if side.v6 { 129 } else { 0 };
    if icmp[0] == reply {
        return ours(icmp).map_or(Heard::Other, Heard::Reply);
    }
    let Some(words) = error_words(side.v6, icmp[0], icmp[1]) else {
        return Heard::Other;
    };
    // The error quotes the echo it is about: its IP header, then the echo.
    let quoted = &icmp[8..];
    let inner = if side.v6 {
        quoted.get(40..)
    } else {
        let header = usize::from(quoted.first().map_or(0, |b| b & 0x0f)) * 4;
        quoted.get(header..)
    };
    let request = if side.v6 { 128 } else { 8 };
    match inner {
        Some(echo) if echo.first() == Some(&request) => match ours(echo) {
            Some(index) => Heard::Error(index, words),
            None => Heard::Other,
        },
        _ => Heard::Other,
    }
}

fn cookie() -> [u8; 8] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // No randomness: still unlikely to collide with another run's.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        bytes = (nanos ^ u64::from(std::process::id())).to_be_bytes();
    }
    bytes
}

/// Send `pacing.count` echoes to each of `addrs` before `deadline` and
/// wait for their replies; what became of them, in the order of `addrs`.
pub fn ping_all(addrs: &[IpAddr], pacing: &Pacing, deadline: Instant) -> Vec<Echoes> {
    let mut out: Vec<Echoes> = addrs.iter().map(|_| Echoes::default()).collect();
    ping_each(addrs, pacing, deadline, |t, echoes| out[t] = echoes);
    out
}

/// [`ping_all`], handing each address's echoes (by its index in `addrs`)
/// to `settled` as soon as the last of them is answered or its wait has
/// run out, so a run over many hosts can report the early ones while
/// later ones are still being paced. Every index is handed exactly once.
pub fn ping_each(
    addrs: &[IpAddr],
    pacing: &Pacing,
    deadline: Instant,
    mut settled: impl FnMut(usize, Echoes),
) {
    let count = usize::from(pacing.count.max(1));
    let mut out: Vec<Echoes> = addrs.iter().map(|_| Echoes::default()).collect();
    let mut reported = vec![false; addrs.len()];
    let needs = |v6: bool| addrs.iter().any(|a| a.is_ipv6() == v6);
    let mut sides: [Option<Side>; 2] = [None, None];
    for v6 in [false, true] {
        if !needs(v6) {
            continue;
        }
        match open(v6, pacing.socket) {
            Ok(side) => sides[usize::from(v6)] = Some(side),
            Err(why) => {
                for (echoes, addr) in out.iter_mut().zip(addrs) {
                    if addr.is_ipv6() == v6 {
                        echoes.no_socket = Some(why.clone());
                        echoes.unsent = pacing.count.max(1);
                    }
                }
            }
        }
    }
    let cookie = cookie();
    let total = addrs.len() * count;
    let mut book = Book {
        count,
        wait: pacing.wait,
        sent_at: vec![None; total],
        answered: vec![None; total],
    };
    let mut queue: BinaryHeap<Reverse<(Instant, usize, usize)>> = BinaryHeap::new();
    let start = Instant::now();
    for (t, addr) in addrs.iter().enumerate() {
        if sides[usize::from(addr.is_ipv6())].is_some() {
            out[t].socket = sides[usize::from(addr.is_ipv6())].as_ref().map(|s| s.kind);
            queue.push(Reverse((start, t, 0)));
        } else {
            // No socket for its family: nothing to wait for.
            reported[t] = true;
            settled(t, std::mem::take(&mut out[t]));
        }
    }
    // When each echo's wait runs out, by target: the moments a target
    // may become settled without a reply.
    let mut expiries: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut candidates: Vec<usize> = Vec::new();
    // The slot of the last echo sent: echoes go one gap after the slot
    // before, not after the moment the loop woke (a poll wakes up to a
    // millisecond late), catching up at most one gap after a late wake.
    let mut last_send: Option<Instant> = None;
    let next_slot = |last: Option<Instant>, now: Instant| match last {
        Some(l) if l + pacing.gap + pacing.gap >= now => l + pacing.gap,
        _ => now,
    };
    let mut reply_by = start;
    let mut waiting = 0usize;
    let mut buf = vec![0u8; 65_536];
    loop {
        // Send what is due, one gap apart.
        while let Some(&Reverse((due, t, k))) = queue.peek() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let gap_open = last_send.is_none_or(|l| now >= l + pacing.gap);
            if due > now || !gap_open {
                break;
            }
            queue.pop();
            let Some(side) = sides[usize::from(addrs[t].is_ipv6())].as_ref() else {
                continue;
            };
            let index = t * count + k;
            let packet = echo_request(
                side.v6,
                side.ident,
                index as u16,
                &cookie,
                index as u32,
                pacing.payload,
            );
            let to = SockAddr::from(SocketAddr::new(addrs[t], 0));
            match side.socket.send_to(&packet, &to) {
                Ok(_) => {
                    let now = Instant::now();
                    book.sent_at[index] = Some(now);
                    expiries.push(Reverse((now + pacing.wait, t)));
                    waiting += 1;
                    last_send = Some(next_slot(last_send, now).min(now));
                    reply_by = reply_by.max(now + pacing.wait);
                    if k + 1 < count {
                        queue.push(Reverse((now + pacing.per_target, t, k + 1)));
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(nix::libc::ENOBUFS) =>
                {
                    // The socket's buffer is full: try again a little later.
                    queue.push(Reverse((
                        now + pacing.gap.max(Duration::from_millis(1)),
                        t,
                        k,
                    )));
                    break;
                }
                Err(e) => {
                    // Sent nowhere (no route): counted as sent and lost.
                    let now = Instant::now();
                    book.sent_at[index] = Some(now);
                    expiries.push(Reverse((now + pacing.wait, t)));
                    last_send = Some(next_slot(last_send, now).min(now));
                    out[t]
                        .error
                        .get_or_insert_with(|| format!("send failed: {e}"));
                    if k + 1 < count {
                        queue.push(Reverse((now + pacing.per_target, t, k + 1)));
                    }
                }
            }
        }
        let now = Instant::now();
        if now >= deadline || (queue.is_empty() && (waiting == 0 || now >= reply_by)) {
            break;
        }
        let next_send = queue.peek().map(|Reverse((due, _, _))| {
            let gap_open = last_send.map_or(*due, |l| l + pacing.gap);
            (*due).max(gap_open)
        });
        let next_expiry = expiries.peek().map(|Reverse((at, _))| *at);
        let wake = next_send
            .unwrap_or(reply_by)
            .min(next_expiry.unwrap_or(reply_by))
            .min(deadline);
        let left = wake.saturating_duration_since(now);
        // ppoll, not epoll: its timeout is in nanoseconds (epoll_wait's is
        // in milliseconds, rounded up), so a 1 ms pacing stays 1 ms, as
        // fping's select keeps it.
        let ready: [bool; 2] = {
            use nix::poll::{ppoll, PollFd, PollFlags};
            use std::os::fd::AsFd;
            let open: Vec<usize> = (0..2).filter(|i| sides[*i].is_some()).collect();
            let mut fds: Vec<PollFd<'_>> = open
                .iter()
                .filter_map(|i| sides[*i].as_ref())
                .map(|side| PollFd::new(side.socket.as_fd(), PollFlags::POLLIN))
                .collect();
            let timeout = nix::sys::time::TimeSpec::from_duration(left);
            match ppoll(&mut fds, Some(timeout), None) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
            let mut ready = [false; 2];
            for (fd, i) in fds.iter().zip(&open) {
                ready[*i] = fd.revents().is_some_and(|r| !r.is_empty());
            }
            ready
        };
        for (i, side) in sides.iter().enumerate() {
            let Some(side) = side.as_ref().filter(|_| ready[i]) else {
                continue;
            };
            // Read until the socket is empty, then (on a datagram socket)
            // until its error queue is.
            let mut queue_empty = side.kind != SocketKind::Datagram;
            loop {
                let n = match (&side.socket).read(&mut buf) {
                    Ok(n) => Some(n),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => None,
                };
                let heard = match n {
                    Some(n) => hear(side, &buf[..n], &cookie),
                    None if queue_empty => break,
                    None => match hear_queued(side, &cookie, &mut buf) {
                        Some(heard) => heard,
                        None => {
                            queue_empty = true;
                            continue;
                        }
                    },
                };
                let heard_at = Instant::now();
                match heard {
                    Heard::Reply(index) => {
                        let index = index as usize;
                        let Some(sent) = book.sent_at.get(index).copied().flatten() else {
                            continue;
                        };
                        let t = index / count;
                        if book.answered[index].is_some() {
                            out[t].duplicates += 1;
                            continue;
                        }
                        let rtt = heard_at.saturating_duration_since(sent);
                        if rtt > pacing.wait {
                            out[t].late += 1;
                            continue;
                        }
                        book.answered[index] = Some(rtt);
                        waiting = waiting.saturating_sub(1);
                        candidates.push(t);
                    }
                    Heard::Error(index, words) => {
                        let t = index as usize / count;
                        if t < out.len() {
                            out[t].error.get_or_insert(words);
                        }
                    }
                    Heard::Other => {}
                }
            }
        }
        // Hand over the targets that can no longer change: answered in
        // full, or with every unanswered echo past its wait.
        let now = Instant::now();
        while let Some(&Reverse((at, t))) = expiries.peek() {
            if at > now {
                break;
            }
            expiries.pop();
            candidates.push(t);
        }
        for t in candidates.drain(..) {
            if !reported[t] && book.settled_at(t, now) {
                reported[t] = true;
                settled(t, book.tally(&mut out[t], t, now));
            }
        }
    }
    let ended = Instant::now();
    for t in 0..addrs.len() {
        if !reported[t] {
            settled(t, book.tally(&mut out[t], t, ended));
        }
    }
}

/// Every echo of a run: when each was sent and how long its reply took,
/// `count` slots per target.
struct Book {
    count: usize,
    wait: Duration,
    sent_at: Vec<Option<Instant>>,
    answered: Vec<Option<Duration>>,
}

impl Book {
    /// Target `t`'s echoes as they stand at `now`: each answered, lost (its
    /// wait over), cut (still waiting) or unsent.
    fn tally(&self, echoes: &mut Echoes, t: usize, now: Instant) -> Echoes {
        let mut echoes = std::mem::take(echoes);
        let mut unsent = 0u16;
        for i in t * self.count..(t + 1) * self.count {
            match (self.sent_at[i], self.answered[i]) {
                (Some(_), Some(rtt)) => echoes.rtts.push(Some(rtt)),
                // Unanswered before its wait ran out: lost.
                (Some(sent), None) if sent + self.wait <= now => echoes.rtts.push(None),
                (Some(_), None) => echoes.cut += 1,
                (None, _) => unsent += 1,
            }
        }
        echoes.unsent = unsent;
        echoes
    }

    /// Whether every echo to target `t` was sent and is answered or past
    /// its wait at `now`: nothing more can change what it says.
    fn settled_at(&self, t: usize, now: Instant) -> bool {
        (t * self.count..(t + 1) * self.count).all(|i| match (self.sent_at[i], self.answered[i]) {
            (Some(_), Some(_)) => true,
            (Some(sent), None) => sent + self.wait <= now,
            (None, _) => false,
        })
    }
}

/// Figures over one address's echoes, as check_icmp 3.0 computes them.
#[derive(Debug, Clone, PartialEq)]
pub struct EchoStats {
    /// Echoes sent.
    pub sent: usize,
    /// Replies received in time.
    pub received: usize,
    /// Lost, in percent of those sent (100 when none was sent).
    pub loss_pct: f64,
    /// Round-trip average, minimum and maximum, in milliseconds (of the
    /// replies; `None` without any).
    pub rta_ms: Option<f64>,
    /// Fastest reply, ms.
    pub rtmin_ms: Option<f64>,
    /// Slowest reply, ms.
    pub rtmax_ms: Option<f64>,
    /// Mean |RTTₙ − RTTₙ₋₁| over consecutive replies, ms (two replies or more).
    pub jitter_ms: Option<f64>,
    /// Smallest and largest of those differences, ms.
    pub jitter_min_ms: Option<f64>,
    /// Largest difference, ms.
    pub jitter_max_ms: Option<f64>,
    /// The E-model's R (0–100) from latency, jitter and loss (two replies or more).
    pub score: Option<f64>,
    /// The mean opinion score from R (1–5; two replies or more).
    pub mos: Option<f64>,
}

impl EchoStats {
    /// The figures of `rtts` (one slot per echo sent).
    pub fn of(rtts: &[Option<Duration>]) -> EchoStats {
        let ms: Vec<f64> = rtts
            .iter()
            .flatten()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        let sent = rtts.len();
        let received = ms.len();
        let loss_pct = if sent == 0 {
            100.0
        } else {
            (sent - received) as f64 * 100.0 / sent as f64
        };
        let rta = (!ms.is_empty()).then(|| ms.iter().sum::<f64>() / ms.len() as f64);
        let rtmin = ms.iter().copied().reduce(f64::min);
        let rtmax = ms.iter().copied().reduce(f64::max);
        let diffs: Vec<f64> = ms.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
        let jitter = (!diffs.is_empty()).then(|| diffs.iter().sum::<f64>() / diffs.len() as f64);
        let (score, mos) = match (rta, jitter) {
            (Some(rta), Some(jitter)) => {
                let (r, mos) = r_and_mos(rta, jitter, loss_pct);
                (Some(r), Some(mos))
            }
            _ => (None, None),
        };
        EchoStats {
            sent,
            received,
            loss_pct,
            rta_ms: rta,
            rtmin_ms: rtmin,
            rtmax_ms: rtmax,
            jitter_ms: jitter,
            jitter_min_ms: diffs.iter().copied().reduce(f64::min),
            jitter_max_ms: diffs.iter().copied().reduce(f64::max),
            score,
            mos,
        }
    }
}

/// check_icmp 3.0's R and MOS: effective latency = RTA + 2 × jitter +
/// 10 ms; R = 93.2 − EL/40 below 160 ms, else 93.2 − (EL − 120)/10; minus
/// 2.5 per percent lost; never below 0; MOS = 1 + 0.035 R +
/// 0.000007 R (R − 60)(100 − R).
pub fn r_and_mos(rta_ms: f64, jitter_ms: f64, loss_pct: f64) -> (f64, f64) {
    let effective = rta_ms + jitter_ms * 2.0 + 10.0;
    let r = if effective < 160.0 {
        93.2 - effective / 40.0
    } else {
        93.2 - (effective - 120.0) / 10.0
    };
    let r = (r - loss_pct * 2.5).max(0.0);
    let mos = 1.0 + 0.035 * r + 0.000007 * r * (r - 60.0) * (100.0 - r);
    (r, mos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[Option<f64>]) -> Vec<Option<Duration>> {
        v.iter()
            .map(|m| m.map(|m| Duration::from_secs_f64(m / 1000.0)))
            .collect()
    }

    #[test]
    fn figures_follow_check_icmp() {
        let s = EchoStats::of(&ms(&[Some(10.0), Some(14.0), None, Some(12.0), Some(12.0)]));
        assert_eq!((s.sent, s.received), (5, 4));
        assert!((s.loss_pct - 20.0).abs() < 1e-9);
        assert!((s.rta_ms.expect("rta") - 12.0).abs() < 1e-6);
        assert!((s.rtmin_ms.expect("min") - 10.0).abs() < 1e-6);
        assert!((s.rtmax_ms.expect("max") - 14.0).abs() < 1e-6);
        // |14-10|, |12-14|, |12-12| over the replies in order: 6/3.
        assert!((s.jitter_ms.expect("jitter") - 2.0).abs() < 1e-6);
        assert!((s.jitter_max_ms.expect("jmax") - 4.0).abs() < 1e-6);
        // EL = 12 + 4 + 10 = 26; R = 93.2 - 0.65 - 50 = 42.55.
        assert!((s.score.expect("score") - 42.55).abs() < 1e-6);
        let r: f64 = 42.55;
        let mos = 1.0 + 0.035 * r + 0.000007 * r * (r - 60.0) * (100.0 - r);
        assert!((s.mos.expect("mos") - mos).abs() < 1e-9);
    }

    #[test]
    fn r_past_160_ms_and_floors() {
        let (r, mos) = r_and_mos(200.0, 0.0, 0.0);
        assert!((r - (93.2 - 9.0)).abs() < 1e-9, "{r}");
        assert!(mos > 4.0 && mos < 4.5, "{mos}");
        let (r, mos) = r_and_mos(1.0, 0.0, 60.0);
        assert_eq!(r, 0.0);
        assert!((mos - 1.0).abs() < 1e-9);
    }

    #[test]
    fn one_reply_has_no_jitter_and_none_has_no_times() {
        let s = EchoStats::of(&ms(&[Some(3.0), None]));
        assert_eq!((s.jitter_ms, s.mos, s.score), (None, None, None));
        let s = EchoStats::of(&ms(&[None, None]));
        assert_eq!(s.rta_ms, None);
        assert_eq!(s.loss_pct, 100.0);
        assert_eq!(EchoStats::of(&[]).loss_pct, 100.0);
    }

    #[test]
    fn checksum_of_a_known_echo() {
        // An echo with the checksum in place sums to zero.
        let packet = echo_request(false, 0x1234, 7, &[1; 8], 7, 32);
        assert_eq!(checksum(&packet), 0);
    }

    #[test]
    fn replies_are_matched_on_cookie_number_and_sequence() {
        let side = |kind, v6| Side {
            socket: Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("udp"),
            kind,
            v6,
            ident: 0x1234,
        };
        let cookie = [9u8; 8];
        let mut reply = echo_request(false, 0x4321, 5, &cookie, 5, 16);
        reply[0] = 0;
        // A datagram socket: any identifier (the kernel chose it).
        assert_eq!(
            hear(&side(SocketKind::Datagram, false), &reply, &cookie),
            Heard::Reply(5)
        );
        // A raw socket: our identifier only, behind an IP header.
        let mut ip = vec![0x45u8];
        ip.extend([0u8; 19]);
        let mut framed = ip.clone();
        framed.extend(&reply);
        assert_eq!(
            hear(&side(SocketKind::Raw, false), &framed, &cookie),
            Heard::Other
        );
        let mut ours = echo_request(false, 0x1234, 5, &cookie, 5, 16);
        ours[0] = 0;
        let mut framed = ip.clone();
        framed.extend(&ours);
        assert_eq!(
            hear(&side(SocketKind::Raw, false), &framed, &cookie),
            Heard::Reply(5)
        );
        // Another run's cookie, a sequence that does not fit the number.
        assert_eq!(
            hear(&side(SocketKind::Datagram, false), &reply, &[0; 8]),
            Heard::Other
        );
        let mut wrong = echo_request(false, 1, 6, &cookie, 5, 16);
        wrong[0] = 0;
        assert_eq!(
            hear(&side(SocketKind::Datagram, false), &wrong, &cookie),
            Heard::Other
        );
        // Our own request looped back is not a reply.
        let request = echo_request(false, 1, 5, &cookie, 5, 16);
        assert_eq!(
            hear(&side(SocketKind::Datagram, false), &request, &cookie),
            Heard::Other
        );
        // Host unreachable quoting our echo.
        let mut error = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
        error.extend(&ip);
        error.extend(&echo_request(false, 0x1234, 5, &cookie, 5, 16));
        let mut framed = ip.clone();
        framed.extend(&error);
        match hear(&side(SocketKind::Raw, false), &framed, &cookie) {
            Heard::Error(5, words) => assert!(words.starts_with("host unreachable"), "{words}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_address_is_handed_over_once_its_echoes_are_done() {
        // 20 loopback addresses, one echo each, 20 ms apart: the first is
        // answered and handed over while the last is still to be sent.
        let pacing = Pacing {
            count: 1,
            gap: Duration::from_millis(20),
            per_target: Duration::from_millis(20),
            wait: Duration::from_secs(1),
            payload: 56,
            socket: SocketChoice::Auto,
        };
        let addrs: Vec<IpAddr> = (1..=20)
            .map(|i| format!("127.0.0.{i}").parse().expect("ip"))
            .collect();
        let mut handed: Vec<(usize, Instant, Echoes)> = Vec::new();
        ping_each(
            &addrs,
            &pacing,
            Instant::now() + Duration::from_secs(5),
            |t, e| {
                handed.push((t, Instant::now(), e));
            },
        );
        let returned = Instant::now();
        let mut order: Vec<usize> = handed.iter().map(|(t, _, _)| *t).collect();
        order.sort_unstable();
        assert_eq!(order, (0..20).collect::<Vec<_>>(), "each exactly once");
        if handed[0].2.no_socket.is_some() {
            return; // no ICMP socket here: the loopback test above says why
        }
        assert!(handed.iter().all(|(_, _, e)| e.received() == 1));
        let first = handed.iter().find(|(t, _, _)| *t == 0).map(|h| h.1);
        let first = first.expect("target 0");
        // 19 gaps of 20 ms separate the first echo from the last.
        assert!(
            returned.duration_since(first) >= Duration::from_millis(200),
            "the first address was handed over at the end, not when done"
        );
    }

    #[test]
    fn loopback_answers_through_whichever_socket_opens() {
        // Root opens the raw socket when ping_group_range leaves root out;
        // a user outside both gets the reason, which is checked too.
        let pacing = Pacing {
            count: 3,
            gap: Duration::from_millis(1),
            per_target: Duration::from_millis(10),
            wait: Duration::from_secs(1),
            payload: 56,
            socket: SocketChoice::Auto,
        };
        let addrs: Vec<IpAddr> = vec![
            "127.0.0.1".parse().expect("ip"),
            "127.0.0.2".parse().expect("ip"),
        ];
        let out = ping_all(&addrs, &pacing, Instant::now() + Duration::from_secs(5));
        if let Some(why) = &out[0].no_socket {
            assert!(
                why.contains("ping_group_range") && why.contains("CAP_NET_RAW"),
                "{why}"
            );
            assert!(
                !nix::unistd::geteuid().is_root(),
                "root must get a raw socket: {why}"
            );
            return;
        }
        for echoes in &out {
            assert_eq!(echoes.rtts.len(), 3, "{echoes:?}");
            assert_eq!(echoes.received(), 3, "{echoes:?}");
            assert_eq!(echoes.unsent, 0);
        }
    }

    #[test]
    fn the_deadline_leaves_echoes_unsent_and_says_so() {
        let pacing = Pacing {
            count: 50,
            gap: Duration::ZERO,
            per_target: Duration::from_millis(20),
            wait: Duration::from_secs(1),
            payload: 56,
            socket: SocketChoice::Auto,
        };
        let addrs: Vec<IpAddr> = vec!["127.0.0.1".parse().expect("ip")];
        let out = ping_all(&addrs, &pacing, Instant::now() + Duration::from_millis(200));
        if out[0].no_socket.is_some() {
            assert_eq!(out[0].unsent, 50);
            return;
        }
        assert!(out[0].unsent > 30, "{:?}", out[0]);
        assert_eq!(
            out[0].rtts.len() + usize::from(out[0].unsent + out[0].cut),
            50
        );
        // Loopback answers at once: nothing sent is counted lost.
        assert_eq!(out[0].received(), out[0].rtts.len(), "{:?}", out[0]);
    }
}
