//! canary-peer: `serve` on loopback and in network namespaces the tests
//! make, `probe` against real serving canaries, against peers that are
//! dead, silent or not canaries, and a mesh of four canaries where
//! nftables drops half of one canary's answers and half of another's
//! questions: blame must name exactly those two.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use skyprobe::report::{Record, Status};

const CANARY: &str = env!("CARGO_BIN_EXE_canary-peer");

/// A running `canary-peer serve`, stopped (SIGTERM) on drop.
struct Canary {
    child: Child,
    addr: SocketAddr,
    stderr: BufReader<std::process::ChildStderr>,
}

impl Canary {
    /// Start `serve` with `args` under `prefix` (e.g. `ip netns exec NS`)
    /// and wait for its "listening on" line.
    fn start(prefix: &[&str], args: &[&str], env: &[(&str, &str)]) -> Canary {
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(CANARY);
                c
            }
            None => Command::new(CANARY),
        };
        cmd.arg("serve")
            .args(args)
            .env_remove("PEER_ENDPOINTS")
            .env_remove("CANARY_ID")
            .env_remove("AVAILABILITY_ZONE")
            .env_remove("DATACENTER")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("canary-peer serve starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        stderr.read_line(&mut line).expect("read stderr");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split([',', '\n']).next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("no listening line: {line:?}")
            });
        Canary {
            child,
            addr,
            stderr,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM, then the exit code and the rest of stderr (bounded wait).
    fn stop(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let mut code = None;
        for _ in 0..100 {
            if let Ok(Some(s)) = self.child.try_wait() {
                code = s.code();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut rest = String::new();
        if code.is_some() {
            let _ = self.stderr.read_to_string(&mut rest);
        }
        (code, rest)
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET `url`: status and body.
fn get(url: &str) -> (u16, String) {
    let mut resp = agent().get(url).call().expect("HTTP answer");
    let code = resp.status().as_u16();
    (code, resp.body_mut().read_to_string().expect("body"))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn records(text: &str) -> Vec<Record> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l}: {e}")))
        .collect()
}

fn metric(r: &Record, name: &str) -> f64 {
    r.metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no metric {name} in {r:?}"))
        .value
}

#[test]
fn canary_serve_answers_every_endpoint_and_stops_on_sigterm() {
    let c = Canary::start(
        &[],
        &[
            "--listen",
            "127.0.0.1:0",
            "--id",
            "c1",
            "--az",
            "az1",
            "--datacenter",
            "dc1",
            "--bulk-max",
            "1MiB",
        ],
        &[],
    );
    let (code, body) = get(&format!("{}/health", c.url()));
    assert_eq!(code, 200, "{body}");
    let h = json(&body);
    assert_eq!(h["id"], "c1");
    assert_eq!(h["az"], "az1");
    assert_eq!(h["datacenter"], "dc1");
    assert_eq!(h["udp_port"], c.addr.port());
    assert!(
        h["uptime"].as_f64().is_some() && h["time"].as_f64().is_some(),
        "{h}"
    );
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));

    let (code, body) = get(&format!("{}/health/detailed", c.url()));
    assert_eq!(code, 200, "{body}");
    let d = json(&body);
    for part in ["cpu", "memory", "disk", "load"] {
        assert!(d["system"][part]["status"].is_string(), "{part}: {d}");
    }
    assert!(d["system"]["memory"]["value"].as_f64().is_some(), "{d}");
    assert_eq!(d["agent"]["peers"], 0);

    let (code, body) = get(&format!("{}/metrics", c.url()));
    assert_eq!(code, 200);
    assert!(
        body.contains("canary_up{id=\"c1\",datacenter=\"dc1\",az=\"az1\"} 1"),
        "{body}"
    );
    assert!(body.contains("# TYPE canary_peer_latency_seconds histogram"));

    // The echo endpoint gives the body back; bulk gives what was asked, up
    // to its bound.
    let mut resp = agent()
        .post(&format!("{}/echo", c.url()))
        .send("hello canary")
        .expect("echo");
    assert_eq!(
        resp.body_mut().read_to_string().expect("body"),
        "hello canary"
    );
    let mut resp = agent()
        .get(&format!("{}/bulk?bytes=100000", c.url()))
        .call()
        .expect("bulk");
    assert_eq!(resp.body_mut().read_to_vec().expect("body").len(), 100_000);
    let (code, body) = get(&format!("{}/bulk?bytes=2MiB", c.url()));
    assert_eq!(code, 400, "over --bulk-max: {body}");
    let (code, _) = get(&format!("{}/bulk?bytes=lots", c.url()));
    assert_eq!(code, 400);
    let (code, _) = get(&format!("{}/nowhere", c.url()));
    assert_eq!(code, 404);

    // The UDP echo port answers a canary's packet (magic "SKYC", sequence,
    // send time) with the same bytes, and anything else with nothing: it
    // is no reflector for strangers' traffic.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    udp.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    udp.send_to(&[0u8; 64], c.addr).expect("send");
    assert!(
        udp.recv_from(&mut buf).is_err(),
        "a foreign packet was echoed"
    );
    let mut packet = vec![7u8; 64];
    packet[..4].copy_from_slice(b"SKYC");
    udp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    udp.send_to(&packet, c.addr).expect("send");
    let (n, from) = udp.recv_from(&mut buf).expect("the echo");
    assert_eq!(from, c.addr);
    assert_eq!(&buf[..n], &packet[..]);

    let (code, rest) = c.stop();
    assert_eq!(code, Some(0), "SIGTERM ends serve with 0: {rest}");
    assert!(rest.contains("stopped"), "{rest}");
}

#[test]
fn canary_probe_measures_serving_peers_in_three_layers() {
    let a = Canary::start(
        &[],
        &["--listen", "127.0.0.1:0", "--id", "a", "--az", "az1"],
        &[],
    );
    let b = Canary::start(
        &[],
        &["--listen", "127.0.0.1:0"],
        &[("CANARY_ID", "b"), ("AVAILABILITY_ZONE", "az2")],
    );
    let peers = format!("{},{}", a.url(), b.url());
    let run = run(
        CANARY,
        &[
            "probe",
            "--peers",
            &peers,
            "--id",
            "me",
            "--az",
            "az0",
            "-n",
            "4",
            "--packets",
            "10",
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    crate::schema::assert_valid(&crate::schema::validator(), &run.stdout);
    let rs = run.records();
    assert_eq!(rs.len(), 3, "two peers and the connectivity record");
    for (r, (id, az)) in rs.iter().zip([("a", "az1"), ("b", "az2")]) {
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert_eq!(r.labels.get("dst_id").map(String::as_str), Some(id));
        assert_eq!(r.labels.get("dst_az").map(String::as_str), Some(az));
        assert_eq!(r.labels.get("src_az").map(String::as_str), Some("az0"));
        assert_eq!(metric(r, "loss"), 0.0);
        assert_eq!(metric(r, "success"), 100.0);
        let p50 = metric(r, "latency_p50");
        let p99 = metric(r, "latency_p99");
        assert!(p50 > 0.0 && p50 <= p99 && p99 <= metric(r, "latency_max"));
        assert!(metric(r, "rtt") > 0.0);
        let steps: Vec<&str> = r.trace.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(steps, ["udp", "connect", "http"], "{r:?}");
        assert_eq!(r.details["udp"]["sent"], 10);
        assert_eq!(r.details["udp"]["received"], 10);
        assert_eq!(r.details["http"]["ok"], 4);
        assert!(r.details["clock_offset"]
            .as_f64()
            .is_some_and(|o| o.abs() < 1.0));
    }
    assert_eq!(rs[2].name, "connectivity");
    assert_eq!(metric(&rs[2], "peers_ok"), 100.0);

    // Nagios output: one line within the budget, perfdata per peer.
    let nagios = run_env(
        CANARY,
        &["probe", "--peers", &peers, "-n", "2", "--packets", "4"],
        &[("SKYPROBE_FORMAT", "nagios")],
    );
    assert_eq!(nagios.code, 0, "{}", nagios.stderr);
    assert!(nagios.stdout.starts_with("CANARY OK"), "{}", nagios.stdout);
    assert!(
        nagios.stdout.contains("'a latency_p95'="),
        "{}",
        nagios.stdout
    );
}

#[test]
fn canary_probe_tells_dead_silent_and_foreign_peers_apart() {
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let silent = silent_server();
    let foreign = http_server(Arc::new(|_req: &Request, s: &mut dyn Stream| {
        respond(
            s,
            200,
            &[("Content-Type", "text/html")],
            b"<h1>It works</h1>",
        )
    }));
    let erroring = http_server(Arc::new(|_req: &Request, s: &mut dyn Stream| {
        respond(s, 503, &[], b"down")
    }));
    let peers = format!(
        "{dead},{},{},{}",
        silent.url(""),
        foreign.url(""),
        erroring.url("")
    );
    let started = Instant::now();
    let run = run(
        CANARY,
        &[
            "probe",
            "--peers",
            &peers,
            "-n",
            "2",
            "--packets",
            "3",
            "--packet-wait",
            "200ms",
            "-t",
            "4",
        ],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    crate::schema::assert_valid(&crate::schema::validator(), &run.stdout);
    let rs = run.records();
    assert_eq!(rs.len(), 5, "{}", run.stdout);
    for r in &rs[..4] {
        assert_eq!(r.status, Status::Critical, "{r:?}");
        assert_eq!(metric(r, "success"), 0.0, "{r:?}");
        assert_eq!(metric(r, "loss"), 100.0, "{r:?}");
    }
    let errors = |r: &Record| r.details["http"]["errors"].to_string();
    assert!(errors(&rs[0]).contains("refused"), "{}", errors(&rs[0]));
    assert!(
        errors(&rs[1]).contains("timeout") || errors(&rs[1]).contains("deadline"),
        "{}",
        errors(&rs[1])
    );
    assert!(
        errors(&rs[2]).contains("not a canary"),
        "{}",
        errors(&rs[2])
    );
    assert!(errors(&rs[3]).contains("HTTP 503"), "{}", errors(&rs[3]));
    assert_eq!(rs[4].status, Status::Critical);
    assert_eq!(metric(&rs[4], "peers_ok"), 0.0);
    // Bounded by the deadline, whatever the silent peer does.
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn canary_bad_flags_and_peer_lists_exit_3_with_one_line() {
    let dir = TempDir::new("canary-peers");
    let bad_toml = dir.write(
        "bad.toml",
        "[[peer]]\nurl = \"http://10.0.0.1:8080\"\nzone = 3\n",
    );
    let bad_line = dir.write("bad.txt", "http://10.0.0.1:8080\n\nhttps://10.0.0.2:8080\n");
    let huge: String = (0..100_001)
        .map(|i| {
            format!(
                "http://10.{}.{}.{}:8080\n",
                i >> 16 & 255,
                i >> 8 & 255,
                i & 255
            )
        })
        .collect();
    let too_many = dir.write("many.txt", &huge);
    let missing = format!("{}/missing.txt", dir.0.display());
    for (args, want) in [
        (vec!["probe"], "no peers"),
        (
            vec!["probe", "--peers", "https://10.0.0.1:8080"],
            "plain HTTP",
        ),
        (vec!["probe", "--peers", "10.0.0.1"], "no port"),
        (
            vec!["probe", "--peers", "http://u:p@10.0.0.1:80"],
            "user name",
        ),
        (vec!["probe", "--peers-file", &bad_toml], "bad.toml"),
        (vec!["probe", "--peers-file", &bad_line], "line 3"),
        (vec!["probe", "--peers-file", &missing], "missing.txt"),
        (vec!["probe", "--peers-file", &too_many], "peers"),
        (
            vec![
                "probe",
                "--peers",
                "http://127.0.0.1:1",
                "--blame-share",
                "0",
            ],
            "blame-share",
        ),
        (
            vec![
                "probe",
                "--peers",
                "http://127.0.0.1:1",
                "--dogstatsd",
                "[::1",
            ],
            "dogstatsd",
        ),
        (vec!["serve", "--listen", "127.0.0.1:port"], "listen"),
        (
            vec!["serve", "--listen", "127.0.0.1:0", "--cpu", "90"],
            "cpu",
        ),
        (
            vec![
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--traffic-interval",
                "0s",
            ],
            "interval",
        ),
        (vec!["matrix", "--by", "galaxy"], "galaxy"),
        (vec!["nonsense"], "nonsense"),
    ] {
        let r = run(CANARY, &args);
        assert_eq!(r.code, 3, "{args:?}: {}\n{}", r.stdout, r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(want),
            "{args:?} wants {want:?}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    // An address already taken: serve says so and exits 3.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let r = run(CANARY, &["serve", "--listen", &addr, "--no-udp"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("cannot listen"), "{}", r.stderr);
}

#[test]
fn canary_connectivity_probes_a_given_target_for_another_tool() {
    let c = Canary::start(&[], &["--listen", "127.0.0.1:0", "--id", "obs"], &[]);
    let open = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open_addr = open.local_addr().expect("addr");
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);
    let ask = |target: &str| -> Record {
        let (code, body) = get(&format!("{}/connectivity?target={target}", c.url()));
        assert_eq!(code, 200, "{target}: {body}");
        crate::schema::assert_valid(&crate::schema::validator(), &body);
        let mut rs = records(&body);
        assert_eq!(rs.len(), 1, "{body}");
        rs.remove(0)
    };
    let r = ask(&open_addr.to_string());
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.details["observer"]["id"], "obs");
    let r = ask(&closed_addr.to_string());
    assert_eq!(r.status, Status::Critical, "{r:?}");
    assert!(r.summary.contains("refused"), "{}", r.summary);
    let r = ask(&c.url());
    assert_eq!(r.status, Status::Ok, "itself as a canary: {r:?}");
    let (code, body) = get(&format!("{}/connectivity?target=a%20b:1", c.url()));
    assert_eq!(code, 400, "{body}");
    // Its own last cycle: no peers, no records.
    let (code, body) = get(&format!("{}/connectivity", c.url()));
    assert_eq!(code, 200);
    assert!(records(&body).is_empty(), "{body}");

    let locked = Canary::start(&[], &["--listen", "127.0.0.1:0", "--no-targets"], &[]);
    let (code, _) = get(&format!("{}/connectivity?target={open_addr}", locked.url()));
    assert_eq!(code, 403);
}

#[test]
fn canary_serve_bounds_its_connections_and_keeps_answering() {
    let c = Canary::start(
        &[],
        &["--listen", "127.0.0.1:0", "--max-connections", "64"],
        &[],
    );
    // A slowloris client: 300 connections that send half a request line
    // and then nothing.
    let mut held = Vec::new();
    for _ in 0..300 {
        if let Ok(mut s) = TcpStream::connect_timeout(&c.addr, Duration::from_secs(2)) {
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x");
            held.push(s);
        }
    }
    let rss = || -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", c.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    };
    // At the cap a new client takes the place of the oldest idle one:
    // /health answers at once, while the slow ones are all still open on
    // our side, and the count stays at the cap.
    let (code, body) = get(&format!("{}/health/detailed", c.url()));
    assert_eq!(code, 200, "{body}");
    let held_now = json(&body)["agent"]["connections"].as_u64().unwrap_or(0);
    assert!(
        held_now <= 65,
        "{held_now} connections held over a cap of 64"
    );
    let mut answered = false;
    for _ in 0..40 {
        if let Ok(mut resp) = agent().get(&format!("{}/health", c.url())).call() {
            if resp.status().as_u16() == 200
                && resp
                    .body_mut()
                    .read_to_string()
                    .is_ok_and(|b| b.contains("\"id\""))
            {
                answered = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        answered,
        "/health never answered under 300 slow connections"
    );
    let kib = rss();
    assert!(
        kib > 0 && kib < 64 * 1024,
        "RSS {kib} KiB under 300 slow connections"
    );
    drop(held);
    let (code, rest) = c.stop();
    assert_eq!(code, Some(0), "{rest}");
}

/// Four canaries in namespaces on one bridge, and a fifth namespace (the
/// hub) that runs `probe --mesh`. nftables in `d` drops half of its UDP
/// echo answers (a bad destination); in `c` half of its UDP echo
/// questions (a bad source). Blame must name d as destination and c as
/// source, nothing else.
#[test]
fn canary_mesh_blames_the_bad_destination_and_the_bad_source() {
    if !can_netns() {
        return;
    }
    assert!(
        Command::new("nft")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "running as root, but nft does not work here"
    );
    let tag = format!("cm{}", std::process::id() % 10_000);
    let hub = Netns::new(&format!("{tag}-hub"));
    hub.exec(&["ip", "link", "set", "lo", "up"]);
    hub.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
    hub.exec(&["ip", "addr", "add", "10.215.0.1/24", "dev", "br0"]);
    hub.exec(&["ip", "link", "set", "br0", "up"]);
    let names = ["a", "b", "c", "d"];
    let mut spaces = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let ns = Netns::new(&format!("{tag}-{n}"));
        let (here, there) = (format!("v{n}"), format!("e{n}"));
        hub.exec(&[
            "ip", "link", "add", &here, "type", "veth", "peer", "name", &there,
        ]);
        hub.exec(&["ip", "link", "set", &there, "netns", &ns.0]);
        hub.exec(&["ip", "link", "set", &here, "master", "br0"]);
        hub.exec(&["ip", "link", "set", &here, "up"]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("10.215.0.{}/24", 11 + i),
            "dev",
            &there,
        ]);
        ns.exec(&["ip", "link", "set", &there, "up"]);
        spaces.push(ns);
    }
    let drop_half = |ns: &Netns, rule: &str| {
        ns.exec(&["nft", "add", "table", "inet", "lossy"]);
        ns.exec(&[
            "nft",
            "add",
            "chain",
            "inet",
            "lossy",
            "out",
            "{ type filter hook output priority 0 ; }",
        ]);
        let mut args = vec!["nft", "add", "rule", "inet", "lossy", "out"];
        args.extend(rule.split_whitespace());
        ns.exec(&args);
    };
    drop_half(&spaces[3], "udp sport 8080 numgen random mod 100 < 50 drop");
    drop_half(&spaces[2], "udp dport 8080 numgen random mod 100 < 50 drop");
    let peers: Vec<String> = (0..4)
        .map(|i| format!("http://10.215.0.{}:8080", 11 + i))
        .collect();
    let peers = peers.join(",");
    let mut canaries = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let listen = format!("10.215.0.{}:8080", 11 + i);
        let az = format!("az-{n}");
        canaries.push(Canary::start(
            &["ip", "netns", "exec", &spaces[i].0],
            &[
                "--listen",
                &listen,
                "--id",
                n,
                "--az",
                &az,
                "--traffic-interval",
                "1s",
                "-n",
                "3",
                "--packets",
                "40",
                "--packet-wait",
                "300ms",
            ],
            &[("PEER_ENDPOINTS", &peers)],
        ));
    }
    // Until every canary has finished a cycle of its three peers (bounded):
    // four views of three pairs, and the hub's own four.
    let mut out = None;
    for _ in 0..30 {
        let o = Command::new("ip")
            .args([
                "netns", "exec", &hub.0, CANARY, "probe", "--mesh", "--id", "hub",
            ])
            .args([
                "--peers",
                &peers,
                "-n",
                "3",
                "--packets",
                "40",
                "--packet-wait",
                "300ms",
            ])
            .env_remove("SKYPROBE_FORMAT")
            .stdin(Stdio::null())
            .output()
            .expect("probe runs");
        let pairs = records(&String::from_utf8_lossy(&o.stdout))
            .iter()
            .find(|r| r.name == "mesh")
            .map(|m| m.details["pairs"].as_u64().unwrap_or(0));
        if pairs == Some(16) {
            out = Some(o);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = out.expect("the canaries never all finished a cycle");
    let stdout = String::from_utf8_lossy(&out.stdout);
    crate::schema::assert_valid(&crate::schema::validator(), &stdout);
    let rs = records(&stdout);
    let mesh = rs
        .iter()
        .find(|r| r.name == "mesh")
        .unwrap_or_else(|| panic!("no mesh record: {stdout}"));
    let blame = &mesh.details["blame"];
    let ids = |part: &str| -> Vec<String> {
        blame[part]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x["id"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(ids("destinations"), ["d"], "{}", mesh.summary);
    assert_eq!(ids("sources"), ["c"], "{}", mesh.summary);
    assert_eq!(blame["paths"], serde_json::json!([]), "{}", mesh.summary);
    assert_eq!(mesh.details["not_collected"], serde_json::json!([]));
    // Loss as dropped, within sampling error: 40 packets at 50 %.
    let hub_to_d = rs
        .iter()
        .find(|r| {
            r.labels.get("src_id").map(String::as_str) == Some("hub")
                && r.labels.get("dst_id").map(String::as_str) == Some("d")
        })
        .expect("hub -> d");
    let loss = metric(hub_to_d, "loss");
    assert!((20.0..=80.0).contains(&loss), "hub -> d loss {loss}");
    assert_eq!(mesh.status, Status::Critical);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    // The matrix reads the same records.
    let mut m = Command::new(CANARY)
        .args(["matrix", "--as", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("matrix");
    m.stdin
        .take()
        .expect("stdin")
        .write_all(stdout.as_bytes())
        .expect("write");
    let got = m.wait_with_output().expect("matrix output");
    let v = json(&String::from_utf8_lossy(&got.stdout));
    assert_eq!(v["blame"]["destinations"][0]["id"], "d", "{v}");
    assert!(
        v["matrix"]["cells"]["az-c"]["az-a"]["loss_mean"]
            .as_f64()
            .unwrap_or(0.0)
            > 10.0,
        "{v}"
    );
    assert_eq!(
        v["matrix"]["cells"]["az-a"]["az-b"]["loss_mean"], 0.0,
        "{v}"
    );
    drop(canaries);
}

/// Families and samples of a Prometheus exposition as Prometheus's own
/// Python client parses it: `(family, type, sample name, labels)` per sample.
fn parse_exposition(text: &str) -> Vec<(String, String, String, serde_json::Value)> {
    let script = [
        "import sys, json",
        "from prometheus_client.parser import text_string_to_metric_families as parse",
        "out = [[f.name, f.type, s.name, s.labels] for f in parse(sys.stdin.read()) for s in f.samples]",
        "print(json.dumps(out))",
    ]
    .join("\n");
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("parser output");
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parser JSON")
}

#[test]
fn canary_metrics_parse_as_prometheus_and_grow_with_zones_not_peers() {
    let mut peers = Vec::new();
    for (id, az) in [("p1", "az1"), ("p2", "az1"), ("p3", "az2"), ("p4", "az2")] {
        peers.push(Canary::start(
            &[],
            &["--listen", "127.0.0.1:0", "--id", id, "--az", az],
            &[],
        ));
    }
    let list: Vec<String> = peers.iter().map(Canary::url).collect();
    let list = list.join(",");
    let obs = Canary::start(
        &[],
        &[
            "--listen",
            "127.0.0.1:0",
            "--id",
            "obs",
            "--az",
            "az1",
            "--worst",
            "2",
            "--traffic-interval",
            "1s",
            "-n",
            "2",
            "--packets",
            "4",
        ],
        &[("PEER_ENDPOINTS", &list)],
    );
    let mut text = String::new();
    for _ in 0..40 {
        text = get(&format!("{}/metrics", obs.url())).1;
        if text.contains("canary_last_cycle_seconds ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let samples = parse_exposition(&text);
    let of = |family: &str| -> Vec<&serde_json::Value> {
        samples
            .iter()
            .filter(|(f, _, _, _)| f == family)
            .map(|(_, _, _, l)| l)
            .collect()
    };
    let hist: Vec<_> = samples
        .iter()
        .filter(|(f, t, _, _)| f == "canary_peer_latency_seconds" && t == "histogram")
        .collect();
    assert!(!hist.is_empty(), "no latency histogram: {text}");
    let pairs: std::collections::BTreeSet<(String, String)> = hist
        .iter()
        .map(|(_, _, _, l)| {
            (
                l["src_az"].as_str().unwrap_or("").to_string(),
                l["dst_az"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    // Four peers in two zones from one zone: two zone pairs, not four.
    assert_eq!(
        pairs.into_iter().collect::<Vec<_>>(),
        [
            ("az1".to_string(), "az1".to_string()),
            ("az1".to_string(), "az2".to_string())
        ],
        "{text}"
    );
    assert_eq!(of("canary_peer_loss_percent").len(), 2, "{text}");
    assert!(
        of("canary_peer_worst_latency_p95_seconds").len() <= 2,
        "{text}"
    );
    assert_eq!(of("canary_peer_connectivity_percent").len(), 1, "{text}");
    assert_eq!(of("canary_up").len(), 1);
    drop(peers);
}

#[test]
fn canary_peers_come_from_nova_servers_by_metadata_key() {
    // Without a Nova: the named peers are still measured, and the record
    // that says why Nova's could not be had makes the run UNKNOWN.
    let a = Canary::start(&[], &["--listen", "127.0.0.1:0", "--id", "a"], &[]);
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let nowhere = format!("http://{}/v3", closed.local_addr().expect("addr"));
    drop(closed);
    let r = run_env(
        CANARY,
        &[
            "probe",
            "--peers",
            &a.url(),
            "--os-peers",
            "canary",
            "-n",
            "1",
            "--packets",
            "2",
            "-t",
            "5",
        ],
        &[
            ("OS_AUTH_URL", &nowhere),
            ("OS_USERNAME", "u"),
            ("OS_PASSWORD", "canary-secret-1"),
            ("OS_PROJECT_NAME", "p"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_PROJECT_DOMAIN_NAME", "Default"),
            ("OS_CLOUD", ""),
        ],
    );
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let rs = r.records();
    let names: Vec<&str> = rs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "connectivity", "peers"], "{}", r.stdout);
    assert_eq!(rs[0].status, Status::Ok);
    assert!(
        rs[2].summary.starts_with("peers from Nova: "),
        "{}",
        rs[2].summary
    );
    assert!(
        rs[2].summary.contains("measuring the 1 peers named"),
        "{}",
        rs[2].summary
    );
    assert!(!r.stdout.contains("canary-secret-1") && !r.stderr.contains("canary-secret-1"));
    // --os-peers-* without --os-peers is a usage error.
    let r = run(
        CANARY,
        &["probe", "--peers", &a.url(), "--os-peers-all-projects"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);

    // The computes are shared: no other test stops or disables one meanwhile.
    let _one = crate::keystone::KEYSTONE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(stack) = Stack::get() else { return };
    let dir = TempDir::new("canary-nova");
    let cache = dir.0.join("cache").to_string_lossy().into_owned();
    let env = stack.env(&cache);
    let tag = format!("cp{}", std::process::id());
    let b = Canary::start(
        &[],
        &["--listen", "127.0.0.1:0", "--id", &format!("{tag}-b")],
        &[],
    );
    let key = format!("canary-{tag}");
    let mut booted = Vec::new();
    struct Cleanup<'a>(&'a Stack, &'a mut Vec<String>);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            self.0.delete(self.1);
        }
    }
    let clean = Cleanup(&stack, &mut booted);
    let marked = [
        (format!("{tag}-a"), serde_json::json!({ &key: a.url() })),
        (
            format!("{tag}-b"),
            serde_json::json!({ &key: b.url(), "datacenter": "dc-x" }),
        ),
        // Marked, but with no network: no address to reach it on.
        (format!("{tag}-c"), serde_json::json!({ &key: "8080" })),
        // Not a canary.
        (format!("{tag}-d"), serde_json::json!({ "role": "web" })),
    ];
    for (name, metadata) in &marked {
        let id = stack.boot(name, "compute3", metadata);
        clean.1.push(id);
    }
    let r = run_env(
        CANARY,
        &[
            "probe",
            "--os-peers",
            &key,
            "--id",
            "me",
            "-n",
            "2",
            "--packets",
            "4",
            "-t",
            "20",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    crate::schema::assert_valid(&crate::schema::validator(), &r.stdout);
    let rs = r.records();
    let mut ids: Vec<&str> = rs.iter().map(|r| r.name.as_str()).collect();
    ids.sort_unstable();
    // Canary a's /health says "a", which wins over the server's name.
    assert_eq!(
        ids,
        ["a", "connectivity", &format!("{tag}-b")],
        "{}",
        r.stdout
    );
    let rb = rs.iter().find(|r| r.name == format!("{tag}-b")).expect("b");
    // Its /health names no zone or data centre: Nova's are used.
    assert_eq!(
        rb.labels.get("dst_az").map(String::as_str),
        Some("nova"),
        "{rb:?}"
    );
    assert_eq!(
        rb.labels.get("dst_dc").map(String::as_str),
        Some("dc-x"),
        "{rb:?}"
    );
    let summary = rs
        .iter()
        .find(|r| r.name == "connectivity")
        .expect("summary");
    let step = summary
        .trace
        .iter()
        .find(|s| s.step == "nova-peers")
        .expect("nova-peers step");
    let said = step.detail.as_deref().unwrap_or("");
    assert!(said.starts_with("2 canaries among "), "{said}");
    assert!(
        said.contains(&format!("{tag}-c")) && said.contains("no fixed address"),
        "{said}"
    );
    assert!(!r.stdout.contains(stack.var("KEYSTONE_ADMIN_PASSWORD")));

    // serve asks Nova at every cycle; its /connectivity has both peers.
    let mut serve_env = env.clone();
    serve_env.push(("CANARY_ID", "watcher"));
    let w = Canary::start(
        &[],
        &[
            "--listen",
            "127.0.0.1:0",
            "--os-peers",
            &key,
            "--traffic-interval",
            "1s",
            "-n",
            "1",
            "--packets",
            "2",
        ],
        &serve_env,
    );
    let mut seen = Vec::new();
    for _ in 0..100 {
        let (code, text) = get(&format!("{}/connectivity", w.url()));
        assert_eq!(code, 200, "{text}");
        seen = records(&text).into_iter().map(|r| r.name).collect();
        if seen.len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    seen.sort_unstable();
    assert_eq!(seen, ["a", &format!("{tag}-b")]);
    drop(clean);
}

#[test]
fn prometheus_scrapes_the_canaries_and_the_shipped_rule_fires_when_a_peer_is_cut_off() {
    // Debian's Prometheus with the shipped scrape config and rules, the
    // intervals and the rules' `for:` shortened for a test, scraping three
    // canaries that measure each other. When one is stopped the others
    // reach fewer than 70 % of their peers: CanaryPeerConnectivityLow fires.
    if !have("prometheus") {
        return;
    }
    let mut canaries = Vec::new();
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
        })
        .collect();
    let list: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let list = list.join(",");
    for (i, p) in ports.iter().enumerate() {
        canaries.push(Canary::start(
            &[],
            &[
                "--listen",
                &format!("127.0.0.1:{p}"),
                "--id",
                &format!("c{i}"),
                "--az",
                &format!("az{i}"),
                "--traffic-interval",
                "1s",
                "-n",
                "2",
                "--packets",
                "3",
                "-t",
                "1",
            ],
            &[("PEER_ENDPOINTS", &list)],
        ));
    }
    let dir = crate::common::TempDir::new("prometheus");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/canary-peer");
    let targets: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    let config = std::fs::read_to_string(root.join("prometheus.yml"))
        .expect("the shipped scrape config")
        .replace(
            "[\"10.0.1.10:8080\", \"10.0.2.10:8080\", \"10.0.3.10:8080\"]",
            &format!("[{}]", targets.join(", ")),
        )
        .replace("scrape_interval: 30s", "scrape_interval: 1s");
    assert!(
        config.contains("127.0.0.1:"),
        "the targets were not replaced: {config}"
    );
    let config = format!("global:\n  evaluation_interval: 1s\n{config}");
    let for_re = regex::Regex::new(r"for: \d+m").expect("regex");
    let rules = std::fs::read_to_string(root.join("canary-peer-rules.yml")).expect("the rules");
    let rules = for_re.replace_all(&rules, "for: 2s").to_string();
    dir.write("prometheus.yml", &config);
    dir.write("canary-peer-rules.yml", &rules);
    let listen = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let prom_port = listen.local_addr().expect("addr").port();
    drop(listen);
    let _prom = Killed(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.0.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let api = |path: &str| -> Option<serde_json::Value> {
        let (_, body) = try_get(&format!("http://127.0.0.1:{prom_port}{path}"))?;
        serde_json::from_str(&body).ok()
    };
    let firing = |v: &serde_json::Value, name: &str| -> Vec<String> {
        v["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
            .map(|a| a["labels"]["instance"].as_str().unwrap_or("").to_string())
            .collect()
    };
    // Every canary scraped and healthy, the rules loaded, nothing firing.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let up = api("/api/v1/query?query=canary_peer_connectivity_percent%20%3E%3D%2070");
        let n = up
            .as_ref()
            .and_then(|v| v["data"]["result"].as_array().map(Vec::len))
            .unwrap_or(0);
        let rules = api("/api/v1/rules");
        let loaded = rules.as_ref().is_some_and(|r| {
            r["data"]["groups"][0]["rules"]
                .as_array()
                .is_some_and(|a| a.len() == 5)
        });
        if n == 3 && loaded {
            break;
        }
        assert!(
            Instant::now() < until,
            "the canaries were never all scraped at >= 70 %: {up:?} {rules:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let alerts = api("/api/v1/alerts").expect("alerts");
    assert!(
        firing(&alerts, "CanaryPeerConnectivityLow").is_empty(),
        "{alerts}"
    );

    // c2 is cut off: the other two fire.
    let gone = canaries.pop().expect("c2");
    drop(gone);
    let until = Instant::now() + Duration::from_secs(60);
    let fired = loop {
        let alerts = api("/api/v1/alerts").unwrap_or_default();
        let mut f = firing(&alerts, "CanaryPeerConnectivityLow");
        f.sort();
        if f.len() == 2 {
            break f;
        }
        assert!(Instant::now() < until, "the rule never fired: {alerts}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut want: Vec<String> = ports[..2]
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    want.sort();
    assert_eq!(fired, want);
}

/// Peak resident memory of a process (VmHWM), KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The load drill: 1,000 clients at once, each asking /health on one
/// keep-alive connection again and again, beside a slowloris client (300
/// connections holding half a request line), for a bounded number of
/// rounds. serve stays under its memory bound at the default
/// `--max-connections`, a new client's /health is answered during the
/// flood, and SIGTERM still ends it cleanly.
#[test]
fn canary_serve_under_1000_clients_and_a_slowloris_stays_bounded_and_answers() {
    use std::io::Read;
    let c = Canary::start(&[], &["--listen", "127.0.0.1:0"], &[]);
    let idle = peak_rss_kib(c.child.id());
    let mut slow = Vec::new();
    for _ in 0..300 {
        if let Ok(mut s) = TcpStream::connect_timeout(&c.addr, Duration::from_secs(2)) {
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x");
            slow.push(s);
        }
    }
    let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut clients: Vec<Option<TcpStream>> = (0..1000)
        .map(|_| {
            let s = TcpStream::connect_timeout(&c.addr, Duration::from_secs(2)).ok()?;
            s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
            Some(s)
        })
        .collect();
    let (mut answered, mut closed) = (0u64, 0u64);
    let mut buf = vec![0u8; 4096];
    let mut fresh_answered = 0;
    for round in 0..5 {
        for slot in clients.iter_mut() {
            if let Some(s) = slot {
                if s.write_all(request).is_err() {
                    *slot = None;
                    closed += 1;
                }
            }
        }
        for slot in clients.iter_mut() {
            if let Some(s) = slot {
                match s.read(&mut buf) {
                    Ok(n) if n > 0 && buf.starts_with(b"HTTP/1.1 200") => answered += 1,
                    Ok(_) | Err(_) => {
                        // Closed (evicted at the cap) or not answered in
                        // time: a new connection takes its place.
                        closed += 1;
                        *slot = TcpStream::connect_timeout(&c.addr, Duration::from_secs(2))
                            .ok()
                            .filter(|s| {
                                s.set_read_timeout(Some(Duration::from_millis(300))).is_ok()
                            });
                    }
                }
            }
        }
        // A fresh client in the middle of it all.
        if let Ok((200, body)) = agent()
            .get(&format!("{}/health", c.url()))
            .call()
            .map_err(|e| e.to_string())
            .and_then(|mut r| {
                let code = r.status().as_u16();
                r.body_mut()
                    .read_to_string()
                    .map(|b| (code, b))
                    .map_err(|e| e.to_string())
            })
        {
            if body.contains("\"id\"") {
                fresh_answered += 1;
            }
        }
        eprintln!(
            "round {round}: {answered} answered, {closed} closed, peak RSS {} KiB",
            peak_rss_kib(c.child.id())
        );
    }
    let peak = peak_rss_kib(c.child.id());
    eprintln!("serve under load: idle {idle} KiB, peak {peak} KiB, {answered} answered, {closed} closed or late, fresh /health {fresh_answered}/5");
    assert!(answered > 1000, "{answered} answers in 5 rounds");
    assert!(
        fresh_answered >= 4,
        "a new client's /health answered in {fresh_answered} of 5 rounds"
    );
    assert!(
        peak > 0 && peak < 24 * 1024,
        "peak RSS {peak} KiB over the bound of 24 MiB"
    );
    drop(clients);
    drop(slow);
    let (code, rest) = c.stop();
    assert_eq!(code, Some(0), "{rest}");
}
