//! The shipped examples, run in the real tools they are written for where
//! Debian has them: Icinga 2 checks its configuration and runs the command,
//! systemd-analyze verifies the units with the binaries at the paths they
//! name, the cron lines run with cron's own environment, node_exporter's
//! textfile collector reads what the checks write. Sensu Go is not in
//! Debian: its example's output is checked for the shape Sensu reads.
//! scripts/test.sh installs the tools and sets SKYPROBE_REQUIRE_TOOLS=1,
//! so there a missing tool fails instead of skipping.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin_dir() -> PathBuf {
    Path::new(PROBE_HTTP)
        .parent()
        .expect("the binaries' directory")
        .to_path_buf()
}

/// A server that answers 200, slowly on /slow, 503 on /down.
fn api() -> Server {
    http_server(Arc::new(|req: &Request, s: &mut dyn Stream| {
        match req.path.as_str() {
            "/slow" => {
                std::thread::sleep(Duration::from_millis(300));
                respond(s, 200, &[], b"slow")
            }
            "/down" => respond(s, 503, &[], b"down"),
            _ => respond(
                s,
                200,
                &[("Content-Type", "application/json")],
                b"{\"version\":{\"status\":\"stable\"}}",
            ),
        }
    }))
}

/// A child whose whole process group is killed (and reaped) on drop, also
/// when the test fails half-way.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

#[test]
fn icinga2_checks_the_example_and_runs_it_with_its_perfdata() {
    // Was: the example failed `icinga2 daemon -C` (entries need `;` or a
    // line each), $check_address$ was empty without "ipv4-or-ipv6", and the
    // binary path could not be changed.
    if !have("icinga2") {
        return;
    }
    let srv = api();
    let dir = TempDir::new("icinga2");
    for sub in ["data", "log", "cache", "spool", "run/icinga2", "perf"] {
        std::fs::create_dir_all(dir.0.join(sub)).expect("mkdir");
    }
    // Icinga drops to its own user: everything it writes must be open to it.
    let _ = Command::new("chmod")
        .args(["-R", "0777"])
        .arg(&dir.0)
        .status();
    let d = dir.0.display().to_string();
    let example = root().join("examples/icinga2/probe-http.conf");
    let service = |name: &str, path: &str| {
        format!(
            "object Service \"{name}\" {{\n  host_name = \"api\"\n  check_command = \"skyprobe-http\"\n  check_interval = 1s\n  retry_interval = 1s\n  vars.skyprobe_bin_dir = \"{}\"\n  vars.http_port = {}\n  vars.http_uri = \"{path}\"\n  vars.http_warn_time = 0.2\n  vars.http_critical_time = 5\n}}\n",
            bin_dir().display(),
            srv.addr.port()
        )
    };
    let host_example = root().join("examples/icinga2/probe-host.conf");
    let procs_example = root().join("examples/icinga2/watch-procs.conf");
    // A process of the test's own to count: a copy of sleep under a name
    // of its own (its command name, as check_procs's -C matches it).
    let tag = format!("skyi{}", std::process::id());
    let counted_bin = dir.0.join(&tag);
    std::fs::copy("/bin/sleep", &counted_bin).expect("a copy of sleep");
    let _counted = Killed(
        Command::new(&counted_bin)
            .arg("120")
            .spawn()
            .expect("a process to count"),
    );
    let procs_service = |name: &str, command: &str| {
        format!(
            "object Service \"{name}\" {{\n  host_name = \"api\"\n  check_command = \"skyprobe-procs\"\n  check_interval = 1s\n  retry_interval = 1s\n  vars.skyprobe_bin_dir = \"{}\"\n  vars.procs_command = \"{command}\"\n  vars.procs_warning = \"1:1\"\n  vars.procs_critical = \"1:\"\n}}\n",
            bin_dir().display()
        )
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let host_service = |name: &str, port: u16| {
        format!(
            "object Service \"{name}\" {{\n  host_name = \"api\"\n  check_command = \"skyprobe-host\"\n  check_interval = 1s\n  retry_interval = 1s\n  vars.skyprobe_bin_dir = \"{}\"\n  vars.probe_host_ports = \"{port}\"\n}}\n",
            bin_dir().display()
        )
    };
    let config = format!(
        "const PluginDir = \"/usr/lib/nagios/plugins\"\nconst NodeName = \"skyprobe-test\"\nconst ZoneName = NodeName\ninclude <itl>\ninclude <plugins>\ninclude \"{}\"\ninclude \"{}\"\ninclude \"{}\"\nobject CheckerComponent \"checker\" {{ }}\nobject PerfdataWriter \"perfdata\" {{\n  service_perfdata_path = \"{d}/perf/service-perfdata\"\n  service_temp_path = \"{d}/perf/service.tmp\"\n  host_perfdata_path = \"{d}/perf/host-perfdata\"\n  host_temp_path = \"{d}/perf/host.tmp\"\n  rotation_interval = 1s\n  service_format_template = \"SERVICEDESC::$service.name$\\tSERVICESTATE::$service.state$\\tSERVICEPERFDATA::$service.perfdata$\\tSERVICEOUTPUT::$service.output$\"\n}}\nobject Host \"api\" {{\n  address = \"127.0.0.1\"\n  check_command = \"dummy\"\n  enable_active_checks = false\n}}\n{}{}{}",
        example.display(),
        host_example.display(),
        procs_example.display(),
        service("up", "/"),
        service("slow", "/slow"),
        service("down", "/down"),
    ) + &host_service("port-open", srv.addr.port())
        + &host_service("port-refused", closed)
        + &procs_service("procs-one", &tag)
        + &procs_service("procs-none", "no-such-program-here");
    let conf = dir.write("icinga2.conf", &config);
    let defines = [
        format!("-DDataDir={d}/data"),
        format!("-DLogDir={d}/log"),
        format!("-DCacheDir={d}/cache"),
        format!("-DSpoolDir={d}/spool"),
        format!("-DInitRunDir={d}/run"),
    ];
    let check = Command::new("icinga2")
        .args(["daemon", "-C", "-c", &conf])
        .args(&defines)
        .output()
        .expect("icinga2 runs");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "config check: {said}");
    assert!(!said.contains("critical/"), "{said}");

    // In a process group of its own: icinga2 forks its main process (and
    // its checks), and all of them must end with the test.
    let daemon = Stopped(
        Command::new("icinga2")
            .args(["daemon", "-c", &conf])
            .args(&defines)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("icinga2 starts"),
    );
    // Wait (bounded) for a rotated perfdata file with all three services.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines: Vec<String> = Vec::new();
    while Instant::now() < deadline {
        lines = std::fs::read_dir(dir.0.join("perf"))
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("service-perfdata.")
                    })
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
                    .collect()
            })
            .unwrap_or_default();
        let seen = |name: &str| {
            lines
                .iter()
                .any(|l| l.contains(&format!("SERVICEDESC::{name}\t")))
        };
        if [
            "up",
            "slow",
            "down",
            "port-open",
            "port-refused",
            "procs-one",
            "procs-none",
        ]
        .iter()
        .all(|n| seen(n))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(daemon);
    let field = |line: &str, key: &str| -> String {
        line.split('\t')
            .find_map(|f| f.strip_prefix(&format!("{key}::")))
            .unwrap_or("")
            .to_string()
    };
    for (name, state) in [("up", "OK"), ("slow", "WARNING"), ("down", "CRITICAL")] {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("SERVICEDESC::{name}\t")))
            .unwrap_or_else(|| panic!("no perfdata for {name}: {lines:?}"));
        assert_eq!(field(line, "SERVICESTATE"), state, "{line}");
        let output = field(line, "SERVICEOUTPUT");
        assert!(output.starts_with(&format!("HTTP {state} - ")), "{line}");
        assert!(!output.ends_with(' '), "no trailing space: {output:?}");
        let perf = field(line, "SERVICEPERFDATA");
        // Icinga parsed the perfdata: it writes it back normalised.
        assert!(perf.starts_with("time="), "{perf}");
        assert!(
            perf.contains(";0.2") && perf.contains(";5;0;"),
            "thresholds carried: {perf}"
        );
    }
    for (name, state) in [("port-open", "OK"), ("port-refused", "CRITICAL")] {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("SERVICEDESC::{name}\t")))
            .unwrap_or_else(|| panic!("no perfdata for {name}: {lines:?}"));
        assert_eq!(field(line, "SERVICESTATE"), state, "{line}");
        let output = field(line, "SERVICEOUTPUT");
        assert!(
            output.starts_with(&format!("HOST {state} - tcp ")),
            "{line}"
        );
        if state == "OK" {
            assert!(
                field(line, "SERVICEPERFDATA").starts_with("time="),
                "{line}"
            );
        }
    }
    // watch-procs in check_procs's form: the one process counted, and
    // none of a program that does not run.
    for (name, state, count) in [("procs-one", "OK", "1"), ("procs-none", "CRITICAL", "0")] {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("SERVICEDESC::{name}\t")))
            .unwrap_or_else(|| panic!("no perfdata for {name}: {lines:?}"));
        assert_eq!(field(line, "SERVICESTATE"), state, "{line}");
        let output = field(line, "SERVICEOUTPUT");
        assert!(
            output.starts_with(&format!("PROCS {state} - {count} process")),
            "{line}"
        );
        let perf = field(line, "SERVICEPERFDATA");
        assert!(
            perf.starts_with(&format!("procs={count};1:1;1:;0")),
            "{perf}"
        );
    }
}

#[test]
fn systemd_verifies_the_units_with_the_binaries_where_they_name_them() {
    // Was: User=skyprobe was never created, nothing made the state and log
    // directories, and two units hid the binary behind /bin/sh -c.
    if !have("systemd-analyze") {
        return;
    }
    let image = TempDir::new("systemd-root");
    let units = image.0.join("etc/systemd/system");
    std::fs::create_dir_all(&units).expect("mkdir");
    std::fs::create_dir_all(image.0.join("usr/local/bin")).expect("mkdir");
    std::fs::create_dir_all(image.0.join("lib/systemd")).expect("mkdir");
    // The system's own units (sysinit.target and the rest the examples
    // depend on), as on an installed machine.
    let copied = Command::new("cp")
        .args(["-r", "/lib/systemd/system"])
        .arg(image.0.join("lib/systemd/"))
        .status()
        .expect("cp");
    assert!(copied.success());
    for bin in ["probe-http", "watch-procs", "watch-domains", "canary-peer"] {
        let from = bin_dir().join(bin);
        if from.exists() {
            std::fs::copy(&from, image.0.join("usr/local/bin").join(bin)).expect("copy");
        }
    }
    let dir = root().join("examples/systemd");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples/systemd") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("read");
        for line in text.lines() {
            if let Some(exec) = line.strip_prefix("ExecStart=") {
                let program = exec.split_whitespace().next().unwrap_or("");
                assert!(
                    program.starts_with("/usr/local/bin/"),
                    "{name}: ExecStart runs {program}, not a skyprobe binary"
                );
            }
            if line.starts_with("User=") {
                assert!(
                    text.contains("DynamicUser=yes"),
                    "{name}: {line} needs a user that nothing creates"
                );
            }
            assert!(
                !(line.starts_with("ExecStart=") && line.contains(">>")),
                "{name}: a shell redirect in ExecStart"
            );
        }
        if text.contains("/var/lib/skyprobe") {
            assert!(
                text.contains("StateDirectory="),
                "{name}: who makes /var/lib/skyprobe?"
            );
        }
        if text.contains("/var/log/skyprobe") {
            assert!(
                text.contains("LogsDirectory="),
                "{name}: who makes /var/log/skyprobe?"
            );
        }
        std::fs::copy(&path, units.join(&name)).expect("copy unit");
        names.push(name);
    }
    for name in names {
        if name == "skyprobe-domains.service"
            && !image.0.join("usr/local/bin/watch-domains").exists()
        {
            // Built only with the libvirt feature.
            continue;
        }
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", image.0.display()))
            .arg(format!("/etc/systemd/system/{name}"))
            .output()
            .expect("systemd-analyze runs");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One line of a cron.d file: when, who, what.
struct CronJob {
    user: String,
    command: String,
}

/// A cron.d file's environment assignments and jobs.
fn read_cron(path: &Path) -> (Vec<(String, String)>, Vec<CronJob>) {
    let text = std::fs::read_to_string(path).expect("cron file");
    let mut env = Vec::new();
    let mut jobs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(7, char::is_whitespace).collect();
        if !line.starts_with(|c: char| c.is_ascii_digit() || c == '*' || c == '@') {
            let (k, v) = line.split_once('=').expect("NAME=value");
            env.push((k.trim().to_string(), v.trim().to_string()));
            continue;
        }
        assert_eq!(fields.len(), 7, "{line}");
        jobs.push(CronJob {
            user: fields[5].to_string(),
            command: fields[6].to_string(),
        });
    }
    (env, jobs)
}

#[test]
fn cron_lines_run_in_crons_own_environment() {
    // Was: cron gives jobs PATH=/usr/bin:/bin, so every line failed with
    // "probe-http: not found"; the nagios user could not write the textfile
    // directory the example wrote to.
    if !have("cron") && !Path::new("/usr/sbin/cron").exists() {
        return;
    }
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: running cron jobs as their users needs root");
        return;
    }
    let srv = api();
    let dir = TempDir::new("cron");
    // The machine's directories, stood in for by directories made as the
    // packages make them (root, 0755), that the jobs' users must manage with.
    let textfile = dir.0.join("node-exporter");
    let logs = dir.0.join("log-skyprobe");
    let state = dir.0.join("lib-skyprobe");
    for d in [&textfile, &logs, &state] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let _ = Command::new("chmod").args(["0755"]).arg(&dir.0).status();
    // What the comments tell the operator to run once.
    let _ = Command::new("chown")
        .args(["nagios:nagios"])
        .arg(&logs)
        .status();
    let bins = dir.0.join("bin");
    std::fs::create_dir_all(&bins).expect("mkdir");
    for bin in ["probe-http", "probe-host", "watch-domains"] {
        let from = bin_dir().join(bin);
        if from.exists() {
            std::fs::copy(&from, bins.join(bin)).expect("copy");
        }
    }
    let _ = Command::new("chmod")
        .args(["-R", "0755"])
        .arg(&bins)
        .status();
    let mut ran = 0;
    let computes = dir.write("computes.txt", "127.0.0.1\n");
    for file in ["probe-http.cron", "probe-host.cron", "watch-domains.cron"] {
        let (env, jobs) = read_cron(&root().join("examples/cron").join(file));
        for job in jobs {
            if job.command.starts_with("watch-domains") && !bins.join("watch-domains").exists() {
                continue;
            }
            // The same line, pointed at this machine's stand-ins: the
            // loopback API, the directories above, the built binaries.
            let command = job
                .command
                .replace("https://nova.example:8774/", &srv.url("/"))
                .replace("https://keystone.example:5000/v3", &srv.url("/v3"))
                .replace(
                    "/var/lib/prometheus/node-exporter",
                    &textfile.display().to_string(),
                )
                .replace("/etc/skyprobe/computes.txt", &computes)
                .replace("/var/log/skyprobe", &logs.display().to_string())
                .replace("/var/lib/skyprobe", &state.display().to_string())
                .replace(
                    "watch-domains --heartbeat",
                    "watch-domains --connect test:///default --heartbeat",
                );
            // cron's environment: HOME, LOGNAME and SHELL from the user,
            // PATH=/usr/bin:/bin, then the file's own assignments.
            let mut cmd = Command::new("su");
            cmd.args(["-s", "/bin/sh", &job.user, "-c"]);
            let mut vars = vec![
                ("PATH".to_string(), "/usr/bin:/bin".to_string()),
                ("SHELL".to_string(), "/bin/sh".to_string()),
                ("LOGNAME".to_string(), job.user.clone()),
            ];
            for (k, v) in &env {
                let v = v.replace("/usr/local/bin", &bins.display().to_string());
                vars.retain(|(name, _)| name != k);
                vars.push((k.clone(), v));
            }
            let exports: String = vars.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
            cmd.arg(format!("exec env -i {exports}/bin/sh -c \"$0\"",))
                .arg(&command);
            let out = cmd.output().expect("su runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stderr.contains("not found") && out.status.code() != Some(127),
                "{file}: {command}: {stderr}"
            );
            assert!(
                out.status.code().is_some_and(|c| c <= 3),
                "{file}: {command}: exit {:?} {stderr}",
                out.status.code()
            );
            ran += 1;
        }
    }
    assert!(ran >= 2, "the jobs ran");
    let prom = std::fs::read_to_string(textfile.join("skyprobe-nova.prom")).expect("the textfile");
    assert!(prom.contains("skyprobe_"), "{prom}");
    let log = std::fs::read_to_string(logs.join("http.jsonl")).expect("the log");
    assert!(log.contains("\"check\":\"probe-http\""), "{log}");
    let log = std::fs::read_to_string(logs.join("hosts.jsonl")).expect("the hosts log");
    assert!(log.contains("\"check\":\"probe-host\""), "{log}");
    assert!(log.contains("\"socket\":\"raw\""), "root's ICMP: {log}");
}

#[test]
fn sensu_gets_one_status_line_with_unquoted_perfdata() {
    // Was: Sensu Go kept the quotes of 'time' in its metric names and
    // logged an "invalid nagios perfdata metric" for every word of the
    // trace lines after the perfdata, about 36 per run.
    let text =
        std::fs::read_to_string(root().join("examples/sensu/probe-http.yaml")).expect("read");
    let command = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("command: "))
        .expect("a command");
    assert!(command.contains("--format nagios-line"), "{command}");
    let srv = api();
    let run = run(
        PROBE_HTTP,
        &[
            &srv.url("/v3"),
            "--json",
            ".version.status == \"stable\"",
            "-w",
            "0.5",
            "-c",
            "2",
            "--format",
            "nagios-line",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    // Every word after the first | is label=value[UOM];... as Sensu reads it.
    let (_, perf) = run.stdout.split_once('|').expect("perfdata");
    for word in perf.split_whitespace() {
        let (label, value) = word.split_once('=').unwrap_or_else(|| panic!("{word}"));
        assert!(!label.contains('\''), "{word}");
        let number = value.split(';').next().unwrap_or("");
        let digits: String = number
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
            .collect();
        assert!(digits.parse::<f64>().is_ok(), "{word}");
    }
    assert!(
        !run.stdout.lines().next().unwrap_or("").ends_with(' '),
        "no trailing space"
    );
}

#[test]
fn node_exporter_reads_the_textfiles_the_checks_write() {
    // Debian's node_exporter with only its textfile collector, pointed at
    // the files probe-http, probe-host and watch-procs write with
    // --format prometheus --output: every check's skyprobe_status is in
    // its scrape, and the collector reports no error for any file.
    if !have("prometheus-node-exporter") {
        return;
    }
    let srv = api();
    let port = srv.addr.port();
    let dir = TempDir::new("textfile");
    let textfile = dir.0.join("textfile");
    std::fs::create_dir_all(&textfile).expect("mkdir");
    let out = |name: &str| textfile.join(name).display().to_string();
    let runs = [
        run(
            PROBE_HTTP,
            &[
                &srv.url("/"),
                "--name",
                "nova-api",
                "--label",
                "az=zone-a",
                "--format",
                "prometheus",
                "--output",
                &out("skyprobe-http.prom"),
            ],
        ),
        run(
            crate::probe_host::PROBE_HOST,
            &[
                "-H",
                "127.0.0.1",
                "-p",
                &format!("{port},1"),
                "--per-port",
                "--format",
                "prometheus",
                "--output",
                &out("skyprobe-host.prom"),
            ],
        ),
        run(
            crate::watch_procs::WATCH_PROCS,
            &[
                "-C",
                "no-such-program-here",
                "-c",
                "1:",
                "--format",
                "prometheus",
                "--output",
                &out("skyprobe-procs.prom"),
            ],
        ),
    ];
    for r in &runs {
        assert!(r.code <= 3, "{}{}", r.stdout, r.stderr);
    }
    let listen = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let ne_port = listen.local_addr().expect("addr").port();
    drop(listen);
    let _ne = Killed(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                textfile.display()
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("node_exporter starts"),
    );
    let until = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        if let Some((200, m)) = try_get(&format!("http://127.0.0.1:{ne_port}/metrics")) {
            break m;
        }
        assert!(Instant::now() < until, "node_exporter never answered");
        std::thread::sleep(Duration::from_millis(100));
    };
    for (check, name, status) in [
        ("probe-http", "nova-api", "0"),
        ("probe-host", &*format!("127.0.0.1:{port}"), "0"),
        ("probe-host", "127.0.0.1:1", "2"),
        ("watch-procs", "command name 'no-such-program-here'", "2"),
    ] {
        let line = metrics.lines().find(|l| {
            l.starts_with("skyprobe_status{")
                && l.contains(&format!("check=\"{check}\""))
                && l.contains(&format!("name=\"{name}\""))
        });
        assert!(
            line.is_some_and(|l| l.ends_with(&format!(" {status}"))),
            "skyprobe_status of {check} {name} (want {status}): {line:?}\n{metrics}"
        );
    }
    // The collector read every file without an error.
    let errors: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("node_textfile_scrape_error"))
        .collect();
    assert_eq!(errors, ["node_textfile_scrape_error 0"], "{metrics}");
    for f in [
        "skyprobe-http.prom",
        "skyprobe-host.prom",
        "skyprobe-procs.prom",
    ] {
        assert!(
            metrics.contains(&format!("file=\"{}\"", out(f))) || metrics.contains(f),
            "{f} not read: {metrics}"
        );
    }
}
