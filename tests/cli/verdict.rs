//! probe-host --verdict in drills: compute hosts are network namespaces this
//! test makes (each with a management and a tenant address, and a listener
//! on its "hypervisor" port 22), hung off a bridge of the test's own; a host
//! dies when its link goes down. Pacemaker's view comes from the real
//! crm_mon reading a CIB file the test writes; Nova's and Neutron's from the
//! real services scripts/openstack.sh starts (SIGSTOP on a host's
//! nova-compute and metadata agent makes them stale).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skyprobe::report::{Record, Status};

use crate::common::*;
use crate::probe_host::PROBE_HOST;

/// The fake compute hosts of one test, on 10.<net>.0.0/16: host i has
/// 10.<net>.0.(10+i) (management) and 10.<net>.1.(10+i) (tenant); a control
/// target listens on 10.<net>.0.2:5000.
pub(crate) struct Fleet {
    net: u8,
    bridge: String,
    hosts: Vec<Netns>,
    _ctl: Netns,
    children: Vec<Child>,
    pub(crate) dir: TempDir,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
        for i in 0..=self.hosts.len() {
            let _ = Command::new("ip")
                .args(["link", "del", &format!("sk{}h{i}", self.net)])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn sh(args: &[&str]) {
    let ok = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("run");
    assert!(ok.success(), "{args:?}");
}

fn listen_all(ns: &Netns, port: u16) -> Child {
    let script = format!(
        "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', {port}))\ns.listen(64)\ns.settimeout(300)\nprint('ready', flush=True)\n\
         while True:\n    try:\n        c, _ = s.accept()\n        c.close()\n    except socket.timeout:\n        break\n"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("listener");
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut buf).expect("ready");
    child
}

pub(crate) fn fleet(tag: &str, net: u8, n: usize) -> Fleet {
    let bridge = format!("sk{net}br");
    let _ = Command::new("ip")
        .args(["link", "del", &bridge])
        .stderr(Stdio::null())
        .status();
    sh(&["ip", "link", "add", &bridge, "type", "bridge"]);
    sh(&[
        "ip",
        "addr",
        "add",
        &format!("10.{net}.0.1/16"),
        "dev",
        &bridge,
    ]);
    sh(&["ip", "link", "set", &bridge, "up"]);
    let mut hosts = Vec::new();
    let mut children = Vec::new();
    let ctl = Netns::new(&format!("{tag}-ctl"));
    for i in 0..=n {
        let ns = if i == 0 {
            None
        } else {
            Some(Netns::new(&format!("{tag}-h{i}")))
        };
        let target = ns.as_ref().unwrap_or(&ctl);
        let (here, there) = (format!("sk{net}h{i}"), format!("sk{net}e{i}"));
        let _ = Command::new("ip")
            .args(["link", "del", &here])
            .stderr(Stdio::null())
            .status();
        sh(&[
            "ip", "link", "add", &here, "type", "veth", "peer", "name", &there,
        ]);
        sh(&["ip", "link", "set", &there, "netns", &target.0]);
        sh(&["ip", "link", "set", &here, "master", &bridge]);
        sh(&["ip", "link", "set", &here, "up"]);
        target.exec(&["ip", "link", "set", "lo", "up"]);
        if i == 0 {
            target.exec(&[
                "ip",
                "addr",
                "add",
                &format!("10.{net}.0.2/16"),
                "dev",
                &there,
            ]);
        } else {
            target.exec(&[
                "ip",
                "addr",
                "add",
                &format!("10.{net}.0.{}/16", 10 + i),
                "dev",
                &there,
            ]);
            target.exec(&[
                "ip",
                "addr",
                "add",
                &format!("10.{net}.1.{}/16", 10 + i),
                "dev",
                &there,
            ]);
        }
        target.exec(&["ip", "link", "set", &there, "up"]);
        if i == 0 {
            children.push(listen_all(target, 5000));
        } else {
            children.push(listen_all(target, 22));
        }
        if let Some(ns) = ns {
            hosts.push(ns);
        }
    }
    let dir = TempDir::new(tag);
    let f = Fleet {
        net,
        bridge,
        hosts,
        _ctl: ctl,
        children,
        dir,
    };
    f.write_hosts();
    f.cib(&[], true);
    f
}

impl Fleet {
    fn write_hosts(&self) {
        let mut text = String::new();
        for i in 1..=self.hosts.len() {
            text.push_str(&format!(
                "[[host]]\nname = \"compute{i}\"\naddress = \"10.{n}.0.{a}\"\nnetworks = {{ tenant = \"10.{n}.1.{a}\" }}\nlabels = {{ zone = \"{z}\" }}\n\n",
                n = self.net,
                a = 10 + i,
                z = if i % 2 == 0 { "az2" } else { "az1" },
            ));
        }
        self.dir.write("hosts.toml", &text);
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.dir.0.join(name).to_string_lossy().into_owned()
    }

    /// Host `i` (from 1) cut off: its link to the bridge goes down.
    pub(crate) fn kill(&self, i: usize) {
        sh(&["ip", "link", "set", &format!("sk{}h{i}", self.net), "down"]);
    }

    pub(crate) fn revive(&self, i: usize) {
        sh(&["ip", "link", "set", &format!("sk{}h{i}", self.net), "up"]);
    }

    /// The monitor's side cut off: every link off its bridge goes down
    /// (the bridge and its route stay, so nothing is sent elsewhere).
    fn partition(&self, down: bool) {
        for i in 0..=self.hosts.len() {
            sh(&[
                "ip",
                "link",
                "set",
                &format!("sk{}h{i}", self.net),
                if down { "down" } else { "up" },
            ]);
        }
    }

    /// A CIB with every host a node, those in `offline` not in the cluster.
    fn cib(&self, offline: &[usize], quorum: bool) {
        let mut nodes = String::from("<node id=\"100\" uname=\"ctl1\"/>");
        let mut states = String::from(
            "<node_state id=\"100\" uname=\"ctl1\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\"/>",
        );
        for i in 1..=self.hosts.len() {
            nodes.push_str(&format!("<node id=\"{i}\" uname=\"compute{i}\"/>"));
            let on = !offline.contains(&i);
            states.push_str(&format!(
                "<node_state id=\"{i}\" uname=\"compute{i}\" in_ccm=\"{on}\" crmd=\"{}\" join=\"{}\" expected=\"member\"/>",
                if on { "online" } else { "offline" },
                if on { "member" } else { "down" },
            ));
        }
        let text = format!(
            "<cib crm_feature_set=\"3.16.2\" validate-with=\"pacemaker-3.9\" epoch=\"5\" num_updates=\"0\" admin_epoch=\"0\" have-quorum=\"{}\" dc-uuid=\"100\">\
             <configuration><crm_config><cluster_property_set id=\"o\"><nvpair id=\"o1\" name=\"stonith-enabled\" value=\"false\"/></cluster_property_set></crm_config>\
             <nodes>{nodes}</nodes><resources/><constraints/></configuration><status>{states}</status></cib>",
            u8::from(quorum)
        );
        replace_file(&self.path("cib.xml"), &text);
    }

    /// One verdict run over the fleet with Pacemaker as the second channel.
    fn verdict(&self, extra: &[&str]) -> Run {
        let args = self.verdict_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_env(PROBE_HOST, &args, &[("CIB_file", &self.path("cib.xml"))])
    }

    /// The flags of [`Fleet::verdict`], `extra` last.
    fn verdict_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--verdict",
            "--hosts",
            &self.path("hosts.toml"),
            "--state",
            &self.path("state.json"),
            "--pacemaker",
            "--probe-timeout",
            "1s",
            "-n",
            "2",
            "-I",
            "20ms",
            "--icmp-wait",
            "500ms",
            "-t",
            "8",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }
}

fn host<'a>(records: &'a [Record], name: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no record for {name} in {records:?}"))
}

fn verdict_of(records: &[Record], name: &str) -> String {
    host(records, name).details["verdict"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn summary(records: &[Record]) -> &Record {
    records
        .iter()
        .find(|r| r.details.get("summary_of_run").is_some())
        .expect("the run's summary record")
}

#[test]
fn one_dead_host_among_healthy_ones_is_dead_after_the_samples_with_its_evidence() {
    if !can_netns() {
        return;
    }
    let f = fleet("vd-one", 216, 4);
    let first = f.verdict(&["--samples", "2"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let all = first.records();
    assert_eq!(all.len(), 5);
    for i in 1..=4 {
        assert_eq!(verdict_of(&all, &format!("compute{i}")), "alive");
    }
    // compute2 goes: cut off and out of the cluster.
    f.kill(2);
    f.cib(&[2], true);
    let second = f.verdict(&["--samples", "2"]);
    let all = second.records();
    let r = host(&all, "compute2");
    assert_eq!(r.details["verdict"], "suspect", "{r:?}");
    assert_eq!(r.details["table_verdict"], "dead");
    assert!(
        r.details["gate"]
            .as_str()
            .unwrap_or("")
            .contains("1 of the last 2"),
        "{r:?}"
    );
    assert_eq!(r.status, Status::Warning);
    assert_eq!(second.code, 1);
    // A BMC's power state as evidence; the command line (a password in
    // it) is never shown.
    let third = f.verdict(&[
        "--samples",
        "2",
        "--bmc-command",
        "sh -c 'echo {host}: Chassis Power is off' -P bmc-secret-42",
    ]);
    assert!(!third.stdout.contains("bmc-secret-42") && !third.stderr.contains("bmc-secret-42"));
    let all = third.records();
    let r = host(&all, "compute2");
    assert_eq!(r.details["verdict"], "dead", "{r:?}");
    assert_eq!(r.details["bmc"]["power"], "off", "{r:?}");
    assert!(host(&all, "compute1").details.get("bmc").is_none());
    assert_eq!(r.status, Status::Critical);
    assert_eq!(third.code, 2);
    // The evidence: silent on both networks, offline with quorum.
    assert_eq!(r.details["signals"]["management"], "silent");
    assert_eq!(r.details["signals"]["tenant"], "silent");
    assert_eq!(r.details["signals"]["cluster"], "offline");
    assert_eq!(r.details["evidence"]["cluster"]["quorum"], true);
    assert_eq!(r.details["masakari"]["type"], "COMPUTE_HOST");
    assert_eq!(r.details["masakari"]["hostname"], "compute2");
    assert!(r.summary.starts_with("dead: "), "{}", r.summary);
    // The others stay alive; the run's record counts them.
    for i in [1, 3, 4] {
        assert_eq!(verdict_of(&all, &format!("compute{i}")), "alive");
    }
    assert_eq!(summary(&all).details["counts"]["dead"], 1);
    // It comes back: alive at once.
    f.revive(2);
    f.cib(&[], true);
    let back = f.verdict(&["--samples", "2"]);
    assert_eq!(verdict_of(&back.records(), "compute2"), "alive");
}

#[test]
fn a_rack_lost_at_once_is_suspect_for_the_cliff_runs_then_dead() {
    if !can_netns() {
        return;
    }
    let f = fleet("vd-rack", 217, 4);
    let base = f.verdict(&["--samples", "1"]);
    assert_eq!(base.code, 0, "{}{}", base.stdout, base.stderr);
    f.kill(1);
    f.kill(3);
    f.cib(&[1, 3], true);
    for run in 1..=3 {
        let r = f.verdict(&["--samples", "1"]);
        let all = r.records();
        for name in ["compute1", "compute3"] {
            let h = host(&all, name);
            assert_eq!(h.details["verdict"], "suspect", "run {run}: {h:?}");
            assert!(
                h.details["gate"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("cliff:"),
                "{h:?}"
            );
        }
        assert!(
            summary(&all).summary.contains("cliff"),
            "{}",
            summary(&all).summary
        );
    }
    let after = f.verdict(&["--samples", "1"]);
    let all = after.records();
    assert_eq!(verdict_of(&all, "compute1"), "dead");
    assert_eq!(verdict_of(&all, "compute3"), "dead");
    assert_eq!(verdict_of(&all, "compute2"), "alive");
    // A budget of one per zone holds both back (both are in az1).
    let braked = f.verdict(&["--samples", "1", "--max-dead-per-zone", "1"]);
    let all = braked.records();
    assert_eq!(verdict_of(&all, "compute1"), "unknown");
    assert!(host(&all, "compute1").details["gate"]
        .as_str()
        .unwrap_or("")
        .contains("zone az1"));
    assert_eq!(braked.code, 3);
}

#[test]
fn a_partition_on_the_monitors_side_judges_no_host_dead() {
    if !can_netns() {
        return;
    }
    let f = fleet("vd-part", 218, 3);
    let control = format!("10.{}.0.2:5000", f.net);
    let ok = f.verdict(&["--samples", "1", "--cliff", "off", "--control", &control]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert_eq!(
        summary(&ok.records()).details["controls"][0]["answered"],
        true
    );
    // Everything out of reach, and (as the monitor sees it) out of the cluster.
    f.partition(true);
    f.cib(&[1, 2, 3], true);
    let cut = f.verdict(&["--samples", "1", "--cliff", "off", "--control", &control]);
    f.partition(false);
    let all = cut.records();
    for i in 1..=3 {
        let h = host(&all, &format!("compute{i}"));
        assert_eq!(h.details["table_verdict"], "dead");
        assert_eq!(h.details["verdict"], "unknown", "{h:?}");
        assert!(h.details["gate"]
            .as_str()
            .unwrap_or("")
            .contains("observer impaired"));
        assert!(h.details.get("masakari").is_none());
    }
    let s = summary(&all);
    assert_eq!(s.status, Status::Unknown);
    assert!(
        s.summary.contains("0 of 1 control targets answered"),
        "{}",
        s.summary
    );
    assert_eq!(cut.code, 3);
}

#[test]
fn no_quorum_no_dead_and_closed_ports_with_icmp_are_alive() {
    if !can_netns() {
        return;
    }
    let f = fleet("vd-quorum", 219, 3);
    f.kill(1);
    f.cib(&[1], false);
    // Port 23 is closed everywhere; the hosts still answer ICMP.
    let r = f.verdict(&["--samples", "1", "-p", "23"]);
    let all = r.records();
    let h = host(&all, "compute1");
    assert_eq!(h.details["signals"]["cluster"], "no-quorum");
    assert_eq!(h.details["verdict"], "unknown", "{h:?}");
    let alive = host(&all, "compute2");
    assert_eq!(
        alive.details["evidence"]["management"]["ports"][0]["state"],
        "refused"
    );
    assert_eq!(alive.details["signals"]["management"], "up");
    assert_eq!(alive.details["verdict"], "alive", "{alive:?}");
}

#[test]
fn bad_tables_and_a_broken_crm_mon() {
    if !can_netns() {
        return;
    }
    let f = fleet("vd-bad", 220, 1);
    let gap = f.dir.write(
        "gap.toml",
        "[[rule]]\nwhen = { networks = \"up\" }\nverdict = \"alive\"\n",
    );
    let r = f.verdict(&["--table", &gap]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("no rule decides"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    let contra = f.dir.write(
        "contra.toml",
        "[[rule]]\nwhen = { management = \"up\", networks = \"silent\" }\nverdict = \"dead\"\n[[rule]]\nwhen = {}\nverdict = \"unknown\"\n",
    );
    let r = f.verdict(&["--table", &contra]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("rule 1 can never match"), "{}", r.stderr);
    let net = f.dir.write("net.toml", "[[rule]]\nwhen = { storage = \"up\" }\nverdict = \"alive\"\n[[rule]]\nwhen = {}\nverdict = \"unknown\"\n");
    let r = f.verdict(&["--table", &net]);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("\"storage\" is neither a signal"),
        "{}",
        r.stderr
    );
    // A crm_mon that hangs is killed inside -t; its signal is unknown.
    let started = Instant::now();
    let r = f.verdict(&["--samples", "1", "-t", "2", "--crm-mon", "sh -c 'sleep 60'"]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let all = r.records();
    let h = host(&all, "compute1");
    assert_eq!(h.details["signals"]["cluster"], "unknown");
    assert!(
        h.details["evidence"]["cluster"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("did not finish"),
        "{h:?}"
    );
    // Malformed XML: unknown, with the parser's words.
    let r = f.verdict(&[
        "--samples",
        "1",
        "--crm-mon",
        "echo '<pacemaker-result><summary>'",
    ]);
    let all = r.records();
    let h = host(&all, "compute1");
    assert_eq!(h.details["signals"]["cluster"], "unknown");
    assert!(
        h.details["evidence"]["cluster"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("not XML"),
        "{h:?}"
    );
    // Flags that belong to --verdict are refused without it.
    let r = run(PROBE_HOST, &["-H", "127.0.0.1", "--pacemaker"]);
    assert_eq!(r.code, 3);
}

/// Stopped processes are continued however the test ends.
pub(crate) struct Continue<'a>(pub(crate) &'a Stack, pub(crate) Vec<String>);

impl Drop for Continue<'_> {
    fn drop(&mut self) {
        for w in &self.1 {
            self.0.signal(w, "CONT");
        }
    }
}

#[test]
fn real_nova_and_neutron_go_stale_for_a_stopped_host_and_for_all() {
    let _one = crate::keystone::KEYSTONE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(stack) = Stack::get() else { return };
    if !can_netns() {
        return;
    }
    let f = fleet("vd-nova", 221, 3);
    let cache = f.path("cache");
    let env = stack.env(&cache);
    let hosts = f.path("hosts.toml");
    let state = f.path("nova-state.json");
    let down = stack.var("OS_SERVICE_DOWN_TIME").to_string();
    let agent_down = stack.var("OS_AGENT_DOWN_TIME").to_string();
    let sdt = format!("{down}s");
    let adt = format!("{agent_down}s");
    let verdict = |extra: &[&str]| {
        let mut args = vec![
            "--verdict",
            "--hosts",
            &hosts,
            "--state",
            &state,
            "--openstack",
            "--samples",
            "2",
            "--service-down-time",
            &sdt,
            "--agent-down-time",
            &adt,
            "--probe-timeout",
            "1s",
            "-n",
            "2",
            "-I",
            "20ms",
            "--icmp-wait",
            "500ms",
            "-t",
            "10",
        ];
        args.extend_from_slice(extra);
        run_clean(PROBE_HOST, &args, &env)
    };
    let first = verdict(&[]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let all = first.records();
    let h = host(&all, "compute2");
    assert_eq!(h.details["signals"]["nova"], "up", "{h:?}");
    assert_eq!(h.details["signals"]["neutron"], "up", "{h:?}");
    assert_eq!(h.details["evidence"]["nova"]["state"], "up");
    assert!(!first.stdout.contains(stack.var("KEYSTONE_ADMIN_PASSWORD")));
    // A server on compute2 (no network: nothing of it to probe).
    let server = stack.boot_on("compute2");

    // compute2: its nova-compute and agent stopped, its link down.
    let mut stopped = Continue(&stack, Vec::new());
    for w in ["nova-compute-compute2", "metadata-agent-compute2"] {
        stack.signal(w, "STOP");
        stopped.1.push(w.to_string());
    }
    f.kill(2);
    // Until Nova and Neutron see it (bounded), it is suspect, never dead.
    let until = Instant::now() + Duration::from_secs(90);
    let mut seen_stale = None;
    while Instant::now() < until {
        let r = verdict(&[]);
        let all = r.records();
        let h = host(&all, "compute2").clone();
        if h.details["signals"]["nova"] == "stale" && h.details["signals"]["neutron"] == "stale" {
            seen_stale = Some(h);
            break;
        }
        assert_ne!(
            h.details["verdict"], "dead",
            "dead before Nova said so: {h:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let h = seen_stale.expect("Nova and Neutron saw compute2 stale within 90 s");
    assert_eq!(
        h.details["verdict"], "suspect",
        "the first stale sample: {h:?}"
    );
    let next = verdict(&[]);
    let all = next.records();
    let h = host(&all, "compute2");
    assert_eq!(h.details["verdict"], "dead", "{h:?}");
    assert_eq!(h.details["evidence"]["nova"]["forced_down"], false);
    assert!(
        h.details["evidence"]["nova"]["age_s"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
    assert_eq!(
        h.details["evidence"]["neutron"]["agents"][0]["binary"],
        "neutron-metadata-agent"
    );
    // Nova's own list of what is on the host: the server, with no address.
    assert_eq!(h.details["signals"]["instances"], "none", "{h:?}");
    assert!(
        h.details["evidence"]["instances"]["servers"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{h:?} {server}"
    );
    assert_eq!(verdict_of(&all, "compute1"), "alive");

    // Every nova-compute stale at once: Nova is the problem; nobody is dead.
    for h in stack
        .var("OS_HOSTS")
        .split(',')
        .filter(|h| *h != "compute2")
    {
        let w = format!("nova-compute-{h}");
        stack.signal(&w, "STOP");
        stopped.1.push(w);
    }
    let until = Instant::now() + Duration::from_secs(90);
    let mut impaired = None;
    while Instant::now() < until {
        let r = verdict(&[]);
        let all = r.records();
        if summary(&all)
            .summary
            .contains("nova-compute services are stale")
        {
            impaired = Some(all);
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let all = impaired.expect("all computes stale within 90 s");
    assert_eq!(verdict_of(&all, "compute2"), "unknown");
    assert_eq!(verdict_of(&all, "compute1"), "alive", "it still answers");
    drop(stopped);
    f.revive(2);

    // The hosts from Nova's hypervisors (host_ip is this machine's).
    let r = run_clean(
        PROBE_HOST,
        &[
            "--verdict",
            "--openstack",
            "--hypervisors",
            "--max-dead-per-aggregate",
            "1",
            "--samples",
            "1",
            "--probe-timeout",
            "1s",
            "-n",
            "1",
            "-t",
            "10",
        ],
        &env,
    );
    let all = r.records();
    assert!(
        summary(&all).details["gates"]["observer_impaired"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "Nova's aggregates were read: {}",
        summary(&all).summary
    );
    let names: Vec<String> = all.iter().map(|r| r.name.clone()).collect();
    for i in 1..=3 {
        assert!(
            names.contains(&format!("compute{i}")),
            "{names:?} {}",
            r.stderr
        );
    }
}

/// A stand-in for Nova (the fake driver's servers have no address, so the
/// real Nova cannot place a server on an address a test owns), with the
/// shapes Zed's Nova answers: compute1 and compute2 stale, compute3 up;
/// compute1's server on compute3's address (it answers), compute2's on its
/// own tenant address (cut off with it). The token comes from the real
/// Keystone.
#[test]
fn a_silent_host_whose_servers_answer_is_alive_and_one_whose_servers_are_silent_is_dead() {
    let _one = crate::keystone::KEYSTONE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(ks) = crate::keystone::Ks::get() else {
        return;
    };
    if !can_netns() {
        return;
    }
    let f = fleet("vd-vms", 222, 3);
    let old = "2020-01-01T00:00:00.000000";
    let now = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let now = now.trim_end_matches('Z').to_string();
    let nova = http_server(std::sync::Arc::new(
        move |req: &Request, s: &mut dyn Stream| {
            let body = if req.path.starts_with("/v2.1/os-services") {
                let svc = |h: &str, state: &str, at: &str| {
                    serde_json::json!({"id": format!("id-{h}"), "binary": "nova-compute", "host": h, "zone": "nova",
                    "status": "enabled", "state": state, "updated_at": at, "disabled_reason": null, "forced_down": false})
                };
                serde_json::json!({"services": [svc("compute1", "down", old), svc("compute2", "down", old), svc("compute3", "up", &now)]})
            } else if req.path.starts_with("/v2.1/servers/detail") {
                let (id, addr) = if req.path.contains("host=compute1&") {
                    ("vm-1", "10.222.0.13")
                } else if req.path.contains("host=compute2&") {
                    ("vm-2", "10.222.1.12")
                } else {
                    ("", "")
                };
                let servers = if id.is_empty() {
                    serde_json::json!([])
                } else {
                    serde_json::json!([{"id": id, "name": id, "status": "ACTIVE", "OS-EXT-SRV-ATTR:host": "x",
                    "addresses": {"private": [{"addr": addr, "version": 4, "OS-EXT-IPS:type": "fixed"}]}}])
                };
                serde_json::json!({"servers": servers})
            } else {
                respond(s, 404, &[], b"{}");
                return;
            };
            respond(
                s,
                200,
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            );
        },
    ));
    let cache = f.path("cache");
    let env = ks.password_env(&cache, ks.var("KEYSTONE_DEMO_PASSWORD"));
    f.kill(1);
    f.kill(2);
    let hosts = f.path("hosts.toml");
    let compute = format!("compute={}", nova.url("/v2.1"));
    let r = run_clean(
        PROBE_HOST,
        &[
            "--verdict",
            "--hosts",
            &hosts,
            "--openstack",
            "--skip",
            "neutron",
            "--os-endpoint-override",
            &compute,
            "--samples",
            "1",
            "--cliff",
            "off",
            "--probe-timeout",
            "1s",
            "-n",
            "1",
            "--icmp-wait",
            "500ms",
            "-t",
            "10",
        ],
        &env,
    );
    let all = r.records();
    let one = host(&all, "compute1");
    assert_eq!(one.details["signals"]["management"], "silent", "{one:?}");
    assert_eq!(one.details["signals"]["instances"], "up", "{one:?}");
    assert_eq!(
        one.details["verdict"], "alive",
        "its server answers: {one:?}"
    );
    assert_eq!(
        one.details["evidence"]["instances"]["probed"][0]["server"],
        "vm-1"
    );
    let two = host(&all, "compute2");
    assert_eq!(two.details["signals"]["instances"], "silent", "{two:?}");
    assert_eq!(two.details["signals"]["nova"], "stale");
    assert_eq!(two.details["verdict"], "dead", "{two:?}");
    let three = host(&all, "compute3");
    assert_eq!(three.details["signals"]["instances"], "unknown");
    assert!(three.details["evidence"]["instances"]["not_probed"].is_string());
}

/// kill -9 at the verdict's write point: a run killed right after it saved
/// its samples still counts, so a host is dead after the same number of
/// runs; runs killed at arbitrary moments can only lose a sample (a later
/// verdict, never an earlier one), and leave a state the next run reads.
#[test]
fn kill_9_never_loses_a_saved_sample_and_never_hastens_a_dead_verdict() {
    if !can_netns() {
        return;
    }
    let f = fleet("vd-drill", 225, 3);
    assert_eq!(f.verdict(&["--samples", "3"]).code, 0);
    f.kill(2);
    f.cib(&[2], true);
    // Run 1: killed by itself right after its state write.
    let args = f.verdict_args(&["--samples", "3"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cib = f.path("cib.xml");
    let killed = run_env(
        PROBE_HOST,
        &args,
        &[("CIB_file", &cib), (skyprobe::state::DRILL_ENV, "1")],
    );
    assert_eq!(killed.code, -1, "killed after its write");
    // Runs killed before they could write: no sample, no harm.
    kill_after(PROBE_HOST, &args, &[("CIB_file", &cib)], &[0, 30, 200]);
    let second = f.verdict(&["--samples", "3"]);
    let r = host(&second.records(), "compute2").clone();
    assert_eq!(
        r.details.get("verdict").and_then(|v| v.as_str()),
        Some("suspect"),
        "{}{}",
        second.stdout,
        second.stderr
    );
    assert_eq!(
        r.details["samples"]["dead"], 2,
        "the killed run's sample counted, the cut ones did not: {:?}",
        r.details
    );
    assert!(second
        .records()
        .iter()
        .all(|r| r.event.as_deref() != Some("state_file")));
    let third = f.verdict(&["--samples", "3"]);
    assert_eq!(verdict_of(&third.records(), "compute2"), "dead");
}
