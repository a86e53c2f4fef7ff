//! probe-host against real sockets: loopback listeners for the fast cases,
//! and hosts in network namespaces this test makes (veth pairs, addresses
//! of its own, a blackholed neighbour, a host that ignores ICMP, one that
//! answers slowly and drops echoes). Nothing is sent off the machine.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use skyprobe::report::{Record, Status};

use crate::common::*;

pub const PROBE_HOST: &str = env!("CARGO_BIN_EXE_probe-host");

fn port_of(r: &Record, port: u16) -> serde_json::Value {
    r.details["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["port"] == port)
        .cloned()
        .unwrap_or_else(|| panic!("no port {port} in {:?}", r.details))
}

fn free_port() -> u16 {
    // Bound and dropped: nothing listens there afterwards.
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn open_and_refused_ports_on_loopback_in_one_record() {
    let open = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open_port = open.local_addr().expect("addr").port();
    let closed = free_port();
    let ports = format!("{open_port},{closed}");
    let run = run(PROBE_HOST, &["-H", "127.0.0.1", "-p", &ports]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let r = run.record();
    assert_eq!(r.status, Status::Critical);
    assert_eq!(port_of(&r, open_port)["state"], "open");
    assert_eq!(port_of(&r, closed)["state"], "refused");
    assert!(
        r.summary.contains(&format!("{closed} refused")),
        "{}",
        r.summary
    );
    // Ports alone: no ICMP.
    assert!(r.details.get("icmp").is_none());
    assert!(r
        .metrics
        .iter()
        .any(|m| m.name == format!("time_{open_port}")));
    // -r ok: a refused port is what the operator expects.
    let run2 = run_refused_ok(&ports);
    assert_eq!(run2.code, 0, "{}", run2.stdout);
    // --per-port: a record per port after the host's.
    let per = crate::common::run(PROBE_HOST, &["-H", "127.0.0.1", "-p", &ports, "--per-port"]);
    let records = per.records();
    assert_eq!(records.len(), 3, "{}", per.stdout);
    assert_eq!(records[1].target, format!("127.0.0.1:{open_port}"));
    assert_eq!(records[1].status, Status::Ok);
    assert_eq!(records[2].status, Status::Critical);
    drop(open);
}

fn run_refused_ok(ports: &str) -> Run {
    run(PROBE_HOST, &["-H", "127.0.0.1", "-p", ports, "-r", "ok"])
}

#[test]
fn a_hosts_file_of_many_loopback_hosts_comes_back_in_input_order() {
    let open = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = open.local_addr().expect("addr").port().to_string();
    let dir = TempDir::new("probe-host-hosts");
    // 127.0.0.1 listens; the others refuse (nothing bound there).
    let hosts: Vec<String> = (1..=60)
        .map(|i| format!("127.0.{}.{}", i / 50, i % 50 + 1))
        .collect();
    let file = dir.write("hosts.txt", &format!("# loopback\n{}\n", hosts.join("\n")));
    let run = run(PROBE_HOST, &["--hosts", &file, "-p", &port, "-t", "5"]);
    let records = run.records();
    assert_eq!(records.len(), hosts.len(), "{}", run.stderr);
    for (r, h) in records.iter().zip(&hosts) {
        assert_eq!(&r.target, h);
        let want = if h == "127.0.0.1" {
            Status::Ok
        } else {
            Status::Critical
        };
        assert_eq!(r.status, want, "{h}: {}", r.summary);
    }
    // TOML: names, labels and ports of their own.
    let toml = dir.write(
        "hosts.toml",
        &format!(
            "[[host]]\nname = \"compute-1\"\naddress = \"127.0.0.1\"\nports = [{port}]\nlabels = {{ az = \"zone-a\" }}\n"
        ),
    );
    let run = crate::common::run(PROBE_HOST, &["--hosts", &toml, "--label", "dc=one"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let r = run.record();
    assert_eq!(r.name, "compute-1");
    assert_eq!(r.labels.get("az").map(String::as_str), Some("zone-a"));
    assert_eq!(r.labels.get("dc").map(String::as_str), Some("one"));
    // `icmp` per host: left out for one under --icmp, added for one under -p.
    let toggled = dir.write(
        "icmp.toml",
        "[[host]]\nname = \"quiet\"\naddress = \"127.0.0.1\"\nicmp = false\n\
         [[host]]\nname = \"pinged\"\naddress = \"127.0.0.2\"\nicmp = true\n",
    );
    let run = crate::common::run(PROBE_HOST, &["--hosts", &toggled, "-p", &port, "--icmp"]);
    let records = run.records();
    assert_eq!(records.len(), 2, "{}{}", run.stdout, run.stderr);
    assert!(records[0].details.get("icmp").is_none(), "{:?}", records[0]);
    assert!(records[1].details.get("icmp").is_some(), "{:?}", records[1]);
    let run = crate::common::run(PROBE_HOST, &["--hosts", &toggled, "-p", &port]);
    let records = run.records();
    assert!(records[0].details.get("icmp").is_none(), "{:?}", records[0]);
    assert!(records[1].details.get("icmp").is_some(), "{:?}", records[1]);
    assert!(
        records[1].summary.contains("tcp"),
        "ports and ICMP both: {}",
        records[1].summary
    );
    // A host given no ports while others have -p: nothing probed is UNKNOWN, not OK.
    let empty = dir.write(
        "empty.toml",
        "[[host]]\nname = \"bare\"\naddress = \"127.0.0.1\"\nports = []\n",
    );
    let run = crate::common::run(PROBE_HOST, &["--hosts", &empty, "-p", &port]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        run.record().summary.contains("nothing to probe"),
        "{}",
        run.stdout
    );
    drop(open);
}

#[test]
fn min_alive_hosts_judges_a_group_in_one_record_like_check_icmp_m() {
    // 127.0.0.1 and 127.0.0.2 listen on one port; 127.0.0.3 refuses it.
    let a = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = a.local_addr().expect("addr").port();
    let b = TcpListener::bind(("127.0.0.2", port)).expect("bind the same port");
    let port = port.to_string();
    let args = |need: &str| -> Vec<String> {
        [
            "-H",
            "127.0.0.1",
            "-H",
            "127.0.0.2",
            "-H",
            "127.0.0.3",
            "-p",
            &port,
            "--min-alive-hosts",
            need,
            "--group",
            "rack-7",
            "-t",
            "5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    fn words(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    // Two of three alive, two needed: OK, in one record for the group.
    let run = run(PROBE_HOST, &words(&args("2")));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let r = run.record();
    assert_eq!(r.target, "rack-7");
    assert_eq!(r.details["alive_hosts"], 2);
    assert!(
        r.summary.contains("2 of 3 hosts alive, need 2"),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("not alive: 127.0.0.3"), "{}", r.summary);
    let hosts = r.details["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 3);
    assert_eq!(hosts[2]["status"], "critical");
    assert_eq!(r.trace.iter().filter(|t| t.step == "host").count(), 3);
    assert!(
        r.metrics.iter().any(|m| m.name.starts_with("127.0.0.1_")),
        "each host's metrics under its name: {:?}",
        r.metrics
    );
    // Three needed: CRITICAL, and Nagios output carries the count.
    let mut nagios = args("3");
    nagios.extend(["--format".to_string(), "nagios".to_string()]);
    let run = crate::common::run(PROBE_HOST, &words(&nagios));
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let first = run.stdout.lines().next().unwrap_or("");
    assert!(
        first.contains("CRITICAL") && first.contains("alive_hosts=2;;3:;0;3"),
        "{}",
        run.stdout
    );
    drop((a, b));
}

#[test]
fn a_banner_is_expected_sent_to_and_quit_like_check_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Two connections: the matching run, then the mismatching one.
        for _ in 0..2 {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.write_all(b"220 smtp.test ESMTP ready\r\n");
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            let _ = tx.send(got);
        }
    });
    let port_text = port.to_string();
    let run = run(
        PROBE_HOST,
        &[
            "-H",
            "127.0.0.1",
            "-p",
            &port_text,
            "-e",
            "220 ",
            "-q",
            "QUIT\\r\\n",
            "-E",
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let r = run.record();
    assert_eq!(port_of(&r, port)["answer"], "220 smtp.test ESMTP ready");
    let quit = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("server saw the quit");
    assert_eq!(quit, b"QUIT\r\n");
    // A banner without the text: -M's state, and -j keeps the answer out.
    let run = crate::common::run(
        PROBE_HOST,
        &[
            "-H",
            "127.0.0.1",
            "-p",
            &port_text,
            "-e",
            "SSH-",
            "-M",
            "critical",
            "-j",
            "-t",
            "2",
        ],
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let r = run.record();
    assert!(r.summary.contains("lacks 'SSH-'"), "{}", r.summary);
    assert!(port_of(&r, port).get("answer").is_none());
}

#[test]
fn tls_on_a_port_reads_certificate_days() {
    let certs = ca_signed((2090, 1, 1));
    let srv = https_server(
        &certs.chain_pem,
        &certs.key_pem,
        std::sync::Arc::new(|_req: &Request, s: &mut dyn Stream| respond(s, 200, &[], b"ok")),
    );
    let dir = TempDir::new("probe-host-tls");
    let ca = dir.write("ca.pem", &certs.ca_pem);
    let port = srv.addr.port().to_string();
    let run = run(
        PROBE_HOST,
        &[
            "-H",
            "127.0.0.1",
            "-p",
            &port,
            "-S",
            "--ca-file",
            &ca,
            "-D",
            "30,7",
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let r = run.record();
    let p = port_of(&r, srv.addr.port());
    assert!(
        p["cert_days_left"].as_f64().expect("days") > 20_000.0,
        "{p}"
    );
    assert!(step(&r, "tls").expect("tls step").ok);
    // Without the CA the chain does not verify: CRITICAL, and says why.
    let run = crate::common::run(PROBE_HOST, &["-H", "127.0.0.1", "-p", &port, "-S"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.record().summary.contains("TLS"), "{}", run.stdout);
    // A leaf that expires in 3 days against -D 30,7.
    let soon = time::OffsetDateTime::now_utc() + time::Duration::days(3);
    let certs = ca_signed((soon.year(), u8::from(soon.month()), soon.day()));
    let srv = https_server(
        &certs.chain_pem,
        &certs.key_pem,
        std::sync::Arc::new(|_req: &Request, s: &mut dyn Stream| respond(s, 200, &[], b"ok")),
    );
    let port = srv.addr.port().to_string();
    let run = crate::common::run(
        PROBE_HOST,
        &[
            "-H",
            "127.0.0.1",
            "-p",
            &port,
            "-S",
            "--insecure",
            "-D",
            "30,7",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.record().summary.contains("certificate expires"),
        "{}",
        run.stdout
    );
}

#[test]
fn bad_input_is_one_line_and_exit_3() {
    let dir = TempDir::new("probe-host-bad");
    let bad_toml = dir.write("bad.toml", "[[host]]\nname = \"a\"\nports = [70000]\n");
    let bad_plain = dir.write("bad.txt", "10.0.0.1 22 extra\n");
    for (args, says) in [
        (vec!["-H", "127.0.0.1", "-p", "0"], "outside 1-65535"),
        (vec!["-H", "127.0.0.1", "-p", "70000"], "outside 1-65535"),
        (vec!["-H", "127.0.0.1", "-p", "3:2"], "runs backwards"),
        (vec!["-H", "127.0.0.1", "-p", "22,x"], "not a number"),
        (vec!["--hosts", bad_toml.as_str()], "host 1"),
        (vec!["--hosts", bad_plain.as_str()], "line 1"),
        (vec!["--hosts", "/nonexistent/hosts"], "hosts file"),
        (vec!["-p", "22"], "no host to probe"),
        (vec!["-H", "127.0.0.1", "-w", "fast"], "-w"),
        (vec!["-H", "127.0.0.1", "--mos", "3"], "WARN,CRIT"),
        (vec!["-H", "127.0.0.1", "-p", "22", "-D", "7"], "--ssl"),
        (vec!["-H", "127.0.0.1", "-p", "22", "-d", "1"], "--send"),
        (
            vec![
                "-H",
                "127.0.0.1",
                "-H",
                "127.0.0.2",
                "--min-alive-hosts",
                "3",
            ],
            "only 2 hosts",
        ),
        (
            vec!["-H", "127.0.0.1", "--min-alive-hosts", "1", "--per-port"],
            "--per-port",
        ),
        (vec!["-H", "127.0.0.1", "--group", "g"], "--min-alive-hosts"),
    ] {
        let run = run(PROBE_HOST, &args);
        assert_eq!(run.code, 3, "{args:?}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    // A name that does not exist: UNKNOWN, in one record.
    let run = run(
        PROBE_HOST,
        &[
            "-H",
            "skyprobe-test.invalid",
            "-p",
            "22",
            "--format",
            "nagios",
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(run.stdout.starts_with("HOST UNKNOWN - "), "{}", run.stdout);
    assert!(run.stdout.contains("no such host"), "{}", run.stdout);
}

#[test]
fn icmp_to_loopback_speaks_check_icmp_perfdata() {
    if !needs_root("a raw ICMP socket", true) {
        return;
    }
    let run = run(
        PROBE_HOST,
        &[
            "-H",
            "127.0.0.1",
            "-n",
            "4",
            "-I",
            "10ms",
            "--format",
            "nagios",
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let first = run.stdout.lines().next().unwrap_or("");
    assert!(first.starts_with("HOST OK - ICMP rta "), "{first}");
    for label in [
        "rta=",
        "pl=0%;40;80;0;",
        "rtmin=",
        "rtmax=",
        "jitter=",
        "mos=",
        "score=",
    ] {
        assert!(first.contains(label), "{label} in {first}");
    }
    let run = crate::common::run(
        PROBE_HOST,
        &["-H", "127.0.0.1", "-H", "::1", "-n", "3", "-I", "10ms"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for r in run.records() {
        let icmp = &r.details["icmp"][0];
        assert_eq!(icmp["received"], 3, "{}", r.target);
        assert_eq!(icmp["rtts_ms"].as_array().expect("rtts").len(), 3);
    }
}

/// The namespaces of one test: `near` runs probe-host behind a bridge;
/// `far1` (10.214.0.2) answers ICMP and listens on 2222; `far2`
/// (10.214.0.3 and .4) ignores ICMP in its kernel, and a responder there
/// answers .3's echoes after 40 ms, dropping every fourth, and none of .4's,
/// where 2222 listens; 10.214.0.9 is blackholed (a neighbour nobody is).
struct Lab {
    near: Netns,
    _far: Vec<Netns>,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const RESPONDER: &str = r#"
import socket, struct, sys, threading, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(60)
def checksum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t > 0xffff: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
seen = 0
print("ready", flush=True)
while True:
    try:
        data, addr = s.recvfrom(65535)
    except socket.timeout:
        break
    ihl = (data[0] & 15) * 4
    icmp = data[ihl:]
    dst = socket.inet_ntoa(data[16:20])
    if icmp[0] != 8 or dst != "10.214.0.3":
        continue
    seen += 1
    if seen % 4 == 0:
        continue
    reply = b"\0\0\0\0" + icmp[4:]
    reply = reply[:2] + struct.pack("!H", checksum(reply)) + reply[4:]
    threading.Timer(0.040, s.sendto, (reply, addr)).start()
"#;

fn in_ns(ns: &Netns, args: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn in namespace")
}

fn wait_ready(child: &mut Child) {
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = [0u8; 6];
    out.read_exact(&mut buf).expect("helper says ready");
    assert_eq!(&buf, b"ready\n");
}

fn listener(ns: &Netns, addr: &str) -> Child {
    let script = format!(
        "import socket\ns = socket.socket()\ns.bind(('{addr}', 2222))\ns.listen(64)\ns.settimeout(60)\nprint('ready', flush=True)\n\
         while True:\n    try:\n        c, _ = s.accept()\n        c.close()\n    except socket.timeout:\n        break\n"
    );
    let mut child = in_ns(ns, &["python3", "-c", &script]);
    wait_ready(&mut child);
    child
}

fn lab(tag: &str) -> Lab {
    let near = Netns::new(&format!("{tag}-near"));
    let far1 = Netns::new(&format!("{tag}-f1"));
    let far2 = Netns::new(&format!("{tag}-f2"));
    near.exec(&["ip", "link", "set", "lo", "up"]);
    near.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
    near.exec(&["ip", "addr", "add", "10.214.0.1/24", "dev", "br0"]);
    near.exec(&["ip", "link", "set", "br0", "up"]);
    for (i, (far, addrs)) in [
        (&far1, vec!["10.214.0.2/24"]),
        (&far2, vec!["10.214.0.3/24", "10.214.0.4/24"]),
    ]
    .into_iter()
    .enumerate()
    {
        let (here, there) = (format!("v{i}"), format!("e{i}"));
        near.exec(&[
            "ip", "link", "add", &here, "type", "veth", "peer", "name", &there,
        ]);
        near.exec(&["ip", "link", "set", &there, "netns", &far.0]);
        near.exec(&["ip", "link", "set", &here, "master", "br0"]);
        near.exec(&["ip", "link", "set", &here, "up"]);
        far.exec(&["ip", "link", "set", "lo", "up"]);
        for a in addrs {
            far.exec(&["ip", "addr", "add", a, "dev", &there]);
        }
        far.exec(&["ip", "link", "set", &there, "up"]);
    }
    far2.exec(&["sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1"]);
    near.exec(&[
        "ip",
        "neigh",
        "add",
        "10.214.0.9",
        "lladdr",
        "02:00:00:00:02:14",
        "dev",
        "br0",
        "nud",
        "permanent",
    ]);
    let mut children = vec![listener(&far1, "10.214.0.2"), listener(&far2, "10.214.0.4")];
    let mut responder = in_ns(&far2, &["python3", "-c", RESPONDER]);
    wait_ready(&mut responder);
    children.push(responder);
    Lab {
        near,
        _far: vec![far1, far2],
        children,
    }
}

fn probe_in(ns: &Netns, args: &[&str]) -> Run {
    let mut all = vec!["netns", "exec", ns.0.as_str(), PROBE_HOST];
    all.extend_from_slice(args);
    run("ip", &all)
}

#[test]
fn hosts_in_namespaces_alive_refusing_blackholed_and_silent_to_icmp() {
    if !can_netns() {
        return;
    }
    let lab = lab("ph");
    let run = probe_in(
        &lab.near,
        &[
            "-H",
            "10.214.0.2",
            "-H",
            "10.214.0.4",
            "-H",
            "10.214.0.9",
            "-p",
            "2222,2223",
            "--icmp",
            "-n",
            "3",
            "-I",
            "20ms",
            "--icmp-wait",
            "500ms",
            "-t",
            "2",
            "--icmp-socket",
            "raw",
        ],
    );
    let records = run.records();
    assert_eq!(records.len(), 3, "{}{}", run.stdout, run.stderr);
    // Alive: echoes answered, 2222 open, 2223 refused.
    let alive = &records[0];
    assert_eq!(
        alive.details["icmp"][0]["received"], 3,
        "{:?}",
        alive.details
    );
    assert_eq!(port_of(alive, 2222)["state"], "open");
    assert_eq!(port_of(alive, 2223)["state"], "refused");
    // Silent to ICMP, a port open.
    let silent = &records[1];
    assert_eq!(silent.details["icmp"][0]["received"], 0);
    assert_eq!(silent.details["icmp"][0]["loss_pct"], 100.0);
    assert_eq!(port_of(silent, 2222)["state"], "open");
    assert_eq!(silent.details["alive_addresses"], 1);
    // Blackholed: nothing answers; the connects time out inside -t.
    let gone = &records[2];
    assert_eq!(gone.status, Status::Critical);
    assert_eq!(port_of(gone, 2222)["state"], "timeout");
    assert_eq!(gone.details["icmp"][0]["received"], 0);
    assert_eq!(gone.details["alive_addresses"], 0);
    assert_eq!(run.code, 2);
}

#[test]
fn a_slow_lossy_host_is_measured_as_it_is() {
    if !can_netns() {
        return;
    }
    // This kernel has no sch_netem, so the far host's responder imposes the
    // delay (40 ms) and the loss (every fourth echo) itself.
    let lab = lab("pm");
    let run = probe_in(
        &lab.near,
        &[
            "-H",
            "10.214.0.3",
            "-n",
            "40",
            "-I",
            "10ms",
            "--icmp-wait",
            "1s",
            "-t",
            "5",
            "--icmp-socket",
            "raw",
        ],
    );
    let r = run.record();
    let icmp = &r.details["icmp"][0];
    assert_eq!(icmp["sent"], 40, "{icmp}");
    assert_eq!(icmp["received"], 30, "{icmp}");
    assert_eq!(icmp["loss_pct"], 25.0);
    let rta = r
        .metrics
        .iter()
        .find(|m| m.name == "rta")
        .expect("rta")
        .value;
    // 40 ms imposed; a loaded 2-core machine adds a few ms of scheduling.
    assert!((40.0..60.0).contains(&rta), "rta {rta}");
    // check_icmp's default -w 200,40%: 25 % lost is OK.
    assert_eq!(r.status, Status::Ok, "{}", r.summary);
    let strict = probe_in(
        &lab.near,
        &[
            "-H",
            "10.214.0.3",
            "-n",
            "8",
            "-I",
            "10ms",
            "-w",
            "20,10%",
            "-c",
            "30,50%",
            "--icmp-socket",
            "raw",
        ],
    );
    assert_eq!(strict.code, 2, "{}", strict.stdout);
}

#[test]
fn icmp_through_the_datagram_socket_and_without_any() {
    if !can_netns() {
        return;
    }
    let lab = lab("pd");
    // The unprivileged socket, once the namespace allows every group.
    lab.near.exec(&[
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ping_group_range=0 2147483647",
    ]);
    let run = probe_in(
        &lab.near,
        &[
            "-H",
            "10.214.0.2",
            "-n",
            "3",
            "-I",
            "10ms",
            "--icmp-socket",
            "datagram",
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let r = run.record();
    assert_eq!(r.details["icmp"][0]["socket"], "datagram");
    assert_eq!(r.details["icmp"][0]["received"], 3);
    // A user outside ping_group_range, without CAP_NET_RAW: UNKNOWN, and why.
    lab.near
        .exec(&["sysctl", "-q", "-w", "net.ipv4.ping_group_range=1 0"]);
    let run = crate::common::run(
        "ip",
        &[
            "netns",
            "exec",
            &lab.near.0,
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            PROBE_HOST,
            "-H",
            "10.214.0.2",
            "-n",
            "2",
        ],
    );
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let r = run.record();
    assert_eq!(r.status, Status::Unknown);
    assert!(
        r.summary.contains("ping_group_range") && r.summary.contains("CAP_NET_RAW"),
        "{}",
        r.summary
    );
}

#[test]
fn an_unreachable_host_says_so_through_either_socket() {
    if !can_netns() {
        return;
    }
    // far1 routes 10.215.0.0/24 for near and answers for .5 with ICMP host
    // unreachable and for .6 with administratively prohibited. A datagram
    // socket hears those only through its error queue (IP_RECVERR). The
    // router's kernel sends such errors in a burst of 5, then 1 a second,
    // to one source (net.ipv4.route.error_burst/error_cost): one echo per
    // host per run stays inside it.
    let lab = lab("pu");
    let router = &lab._far[0];
    router.exec(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    router.exec(&["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0"]);
    router.exec(&["ip", "route", "add", "unreachable", "10.215.0.5/32"]);
    router.exec(&["ip", "route", "add", "prohibit", "10.215.0.6/32"]);
    lab.near
        .exec(&["ip", "route", "add", "10.215.0.0/24", "via", "10.214.0.2"]);
    lab.near.exec(&[
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ping_group_range=0 2147483647",
    ]);
    for socket in ["datagram", "raw"] {
        let run = probe_in(
            &lab.near,
            &[
                "-H",
                "10.215.0.5",
                "-H",
                "10.215.0.6",
                "-n",
                "1",
                "-I",
                "10ms",
                "--icmp-wait",
                "500ms",
                "--icmp-socket",
                socket,
            ],
        );
        assert_eq!(run.code, 2, "{socket}: {}{}", run.stdout, run.stderr);
        let records = run.records();
        assert_eq!(records.len(), 2, "{socket}: {}", run.stdout);
        for (r, says) in records
            .iter()
            .zip(["host unreachable", "administratively prohibited"])
        {
            assert_eq!(r.details["icmp"][0]["socket"], socket);
            assert!(
                r.summary.contains(says),
                "{socket} {}: {}",
                r.target,
                r.summary
            );
        }
    }
}

#[test]
fn a_host_that_answers_is_spoken_to_and_reported_while_a_blackholed_one_still_connects() {
    if !can_netns() {
        return;
    }
    // far1 greets on 2224; 10.214.0.9 is blackholed, so its connect lasts
    // until the deadline. The banner is read at once, not after the last
    // connect ended, and its record goes out then, in host order.
    let lab = lab("ps");
    let far1 = &lab._far[0];
    let banner = "import socket\ns = socket.socket()\ns.bind(('10.214.0.2', 2224))\ns.listen(8)\ns.settimeout(30)\nprint('ready', flush=True)\n\
                  while True:\n    try:\n        c, _ = s.accept()\n        c.sendall(b'220 far1 ready\\r\\n')\n        c.close()\n    except socket.timeout:\n        break\n";
    let mut greeter = in_ns(far1, &["python3", "-c", banner]);
    wait_ready(&mut greeter);
    let started = std::time::Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.near.0, PROBE_HOST])
        .args([
            "-H",
            "10.214.0.2",
            "-H",
            "10.214.0.9",
            "-p",
            "2224",
            "-e",
            "220",
            "-t",
            "3",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn probe-host");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).expect("first record");
    let first_at = started.elapsed();
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("the rest");
    let status = child.wait().expect("wait");
    let ended_at = started.elapsed();
    let _ = greeter.kill();
    let _ = greeter.wait();
    let answered: Record = serde_json::from_str(first.trim()).expect("a record");
    assert_eq!(answered.target, "10.214.0.2");
    assert_eq!(answered.status, Status::Ok, "{}", answered.summary);
    assert_eq!(port_of(&answered, 2224)["answer"], "220 far1 ready");
    let gone: Record = serde_json::from_str(rest.trim()).expect("second record");
    assert_eq!(gone.target, "10.214.0.9");
    assert_eq!(port_of(&gone, 2224)["state"], "timeout");
    assert_eq!(status.code(), Some(2));
    // The first record came out when its host was done, long before the
    // blackholed connect reached the 3 s deadline.
    assert!(
        ended_at.saturating_sub(first_at) > Duration::from_secs(1),
        "first record at {first_at:?}, end at {ended_at:?}"
    );
}
