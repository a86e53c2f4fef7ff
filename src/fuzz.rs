//! Fuzz targets: every parser that takes outside input, as a function of
//! bytes. The coverage-guided fuzzer in `fuzz/` (cargo-afl) drives them one
//! at a time; the test suite replays each target's checked-in corpus and a
//! bounded number of mutations of it (`tests/cli/fuzz.rs`). A target never
//! panics, never hangs, and stays within [`MEMORY_BOUND`] whatever the
//! bytes: an error is a value, as it is for the binaries (see FUZZING.md).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The most memory a target may take for one input (the fuzzer's limit).
pub const MEMORY_BOUND: &str = "512 MiB";

/// Every target, by name (the name is the corpus directory's).
pub const TARGETS: &[&str] = &[
    "range",
    "units",
    "targets-toml",
    "targets-csv",
    "targets-skypunch",
    "procs-toml",
    "procs-masakari",
    "notify-record",
    "notify-config",
    "clouds-yaml",
    "hosts-file",
    "decision-table",
    "crm-mon",
    "evacuate-journal",
    "http-response",
    "render",
];

/// Run `target` on `data`. `false` for a target of no such name.
pub fn run(target: &str, data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    match target {
        "range" => range(&text),
        "units" => {
            let _ = crate::units::parse_duration(&text);
            let _ = crate::units::parse_size(&text);
            let _ = crate::host::parse_ports(&text);
            let _ = crate::host::parse_icmp_limit(&text);
        }
        "targets-toml" => {
            let _ = crate::http::targets::load_toml(file("targets.toml", data).path(), &[]);
        }
        "targets-csv" => {
            let _ = crate::http::targets::load_csv(file("targets.csv", data).path(), &[]);
        }
        "targets-skypunch" => {
            let _ = crate::http::targets::load_skypunch(file("skypunch.sql", data).path(), &[]);
        }
        "procs-toml" => {
            let defaults = crate::procs::config::Defaults::default();
            let _ = crate::procs::config::parse_toml(Path::new("fuzz.toml"), &text, &defaults);
        }
        "procs-masakari" => {
            let defaults = crate::procs::config::Defaults::default();
            let _ = crate::procs::config::parse_masakari(Path::new("fuzz.yaml"), &text, &defaults);
        }
        "notify-record" => notify_record(data),
        "notify-config" => {
            let base = crate::notify::alarm::Rules::default();
            let _ = crate::notify::config::load(file("notify.toml", data).path(), &base);
        }
        "clouds-yaml" => clouds_yaml(data),
        "hosts-file" => {
            // Both readings: plain text and TOML.
            let _ = crate::host::read_hosts(file("hosts.txt", data).path());
            let _ = crate::host::read_hosts(file("hosts.toml", data).path());
        }
        "decision-table" => {
            let _ = decision_table(&text);
        }
        "crm-mon" => {
            let _ = crate::host::signals::parse_crm_mon(&text);
        }
        "evacuate-journal" => evacuate_journal(data),
        "http-response" => http_response(data),
        "render" => render(data),
        _ => return false,
    }
    true
}

/// A scratch file of this process holding `data`, for the parsers that
/// read a path (as the binaries call them); removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn file(name: &str, data: &[u8]) -> Scratch {
    let dir = std::env::temp_dir().join("skyprobe-fuzz");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{}-{name}", std::process::id()));
    let _ = std::fs::write(&path, data);
    Scratch(path)
}

fn range(text: &str) {
    let (warn, crit) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(r) = crate::threshold::Range::parse(warn) {
        for v in [f64::NEG_INFINITY, -1.0, 0.0, 0.5, 10.0, 1e300, f64::NAN] {
            let _ = r.alerts(v);
        }
    }
    let crit = (!crit.is_empty()).then_some(crit);
    let _ = crate::threshold::Thresholds::parse(Some(warn), crit);
    let _ = crate::host::parse_low_pair(text);
    let _ = crate::host::parse_high_pair(text);
}

/// The table as a run with two networks and every signal gathered reads it.
fn decision_table(text: &str) -> Result<crate::host::verdict::Table, crate::cli::UsageError> {
    let networks = ["management".to_string(), "tenant".to_string()];
    let gathered: BTreeSet<&str> = ["nova", "neutron", "instances", "cluster", "peers"].into();
    crate::host::verdict::Table::parse(text, "fuzz", &networks, &gathered)
}

fn notify_record(data: &[u8]) {
    crate::records::read_lines(data, |line| {
        if let crate::records::Line::Text(text) = line {
            if let Ok(r) = crate::notify::input::parse(&text) {
                let _ = crate::notify::input::key(&[], &r);
            }
        }
        true
    });
}

/// clouds.yaml, and secure.yaml after a line `--- secure`.
fn clouds_yaml(data: &[u8]) {
    struct Files(PathBuf, PathBuf);
    impl crate::openstack::config::Env for Files {
        fn var(&self, name: &str) -> Option<String> {
            match name {
                "OS_CLIENT_CONFIG_FILE" => Some(self.0.to_string_lossy().into_owned()),
                "OS_CLIENT_SECURE_FILE" => Some(self.1.to_string_lossy().into_owned()),
                _ => None,
            }
        }
    }
    let marker = b"\n--- secure\n";
    let (clouds, secure) = match data.windows(marker.len()).position(|w| w == marker) {
        Some(i) => (&data[..i], &data[i + marker.len()..]),
        None => (data, &b""[..]),
    };
    let (c, s) = (file("clouds.yaml", clouds), file("secure.yaml", secure));
    let env = Files(c.path().to_path_buf(), s.path().to_path_buf());
    let _ = crate::openstack::config::from_clouds_yaml("fuzz", &env);
}

fn evacuate_journal(data: &[u8]) {
    let Ok(mut journal) = serde_json::from_slice::<crate::evacuate::Journal>(data) else {
        return;
    };
    let brakes = crate::evacuate::Brakes {
        max_hosts: 2,
        window: 3600,
        cooldown: 600,
        max_down_percent: 30.0,
        max_per_zone: Some(1),
        max_per_aggregate: Some(1),
    };
    let groups = crate::evacuate::Groups::default();
    for now in [0, 1_800_000_000, u64::MAX] {
        let _ = journal.brake("compute1", &brakes, &groups, now);
        journal.prune(&brakes, now);
    }
    let _ = serde_json::to_vec(&journal);
}

/// The records the renderers are given: JSON lines of records.
fn render(data: &[u8]) {
    let records: Vec<crate::report::Record> = data
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    use crate::render::{Format, Renderer};
    for format in [
        Format::Jsonl,
        Format::Nagios,
        Format::NagiosLine,
        Format::Table,
        Format::Csv,
        Format::Prometheus,
    ] {
        let out = Renderer::new(format, "FUZZ").render(&records);
        if matches!(format, Format::Nagios | Format::NagiosLine) {
            // Nagios splits the first line at its first '|': what follows
            // must be perfdata only (a '|' from a summary would put prose
            // there).
            let first = out.lines().next().unwrap_or("");
            if let Some((_, perf)) = first.split_once('|') {
                assert!(
                    !perf.contains('|'),
                    "a second '|' on the first line: {first:?}"
                );
                let mut rest = perf.trim();
                while !rest.is_empty() {
                    let item_end = if let Some(quoted) = rest.strip_prefix('\'') {
                        // 'label with spaces'=value: '' is a quote inside.
                        let mut i = 0;
                        let b = quoted.as_bytes();
                        while i < b.len() {
                            if b[i] == b'\'' && b.get(i + 1) == Some(&b'\'') {
                                i += 2;
                            } else if b[i] == b'\'' {
                                break;
                            } else {
                                i += 1;
                            }
                        }
                        assert!(i < b.len(), "an unclosed quoted label: {first:?}");
                        1 + i + quoted[i..].find(' ').unwrap_or(quoted.len() - i)
                    } else {
                        rest.find(' ').unwrap_or(rest.len())
                    };
                    let item = &rest[..item_end];
                    assert!(item.contains('='), "{item:?} is not perfdata: {first:?}");
                    rest = rest[item_end..].trim_start();
                }
            }
            assert!(
                out.len() <= crate::render::NAGIOS_BUDGET + 64,
                "Nagios output of {} bytes",
                out.len()
            );
        }
    }
}

/// A raw HTTP response, answered by a loopback server to every connection
/// probe-http makes (redirects included), read by probe-http's own probe
/// with a status, string, regex, JSON and header check.
fn http_response(data: &[u8]) {
    struct Peer {
        url: String,
        answer: &'static Mutex<Vec<u8>>,
    }
    static PEER: OnceLock<Option<Peer>> = OnceLock::new();
    static ANSWER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
    let Some(peer) = PEER.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
        let url = format!("http://{}/start", listener.local_addr().ok()?);
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
                let mut head = [0u8; 4096];
                let _ = conn.read(&mut head);
                let bytes = ANSWER.lock().map(|a| a.clone()).unwrap_or_default();
                let _ = conn.write_all(&bytes);
            }
        });
        Some(Peer {
            url,
            answer: &ANSWER,
        })
    }) else {
        return;
    };
    if let Ok(mut a) = peer.answer.lock() {
        a.clear();
        a.extend_from_slice(data);
    }
    let args = [
        "probe-http",
        &peer.url,
        "-f",
        "follow",
        "-e",
        "200-399",
        "-s",
        "ok",
        "-r",
        "v[0-9]+",
        "--json",
        ".status == \"up\"",
        "--expect-header",
        "Content-Type: json",
        "--max-body",
        "64K",
        "-t",
        "1",
    ];
    use clap::Parser;
    // Fixed flags: a harness that cannot build its probe is broken, and
    // says so (the smoke test fails) instead of fuzzing nothing.
    let spec = crate::http::options::Args::try_parse_from(args)
        .expect("the harness's flags parse")
        .to_spec()
        .expect("the harness's flags make a probe");
    let ctx = crate::cli::Context::new(Duration::from_secs(1));
    let _ = crate::http::probe(&spec, &ctx);
}

#[cfg(test)]
mod tests {
    /// The harnesses reach past the first error: their seeds are read as
    /// the binaries read them.
    #[test]
    fn the_shipped_examples_parse_as_the_harnesses_read_them() {
        let table = std::fs::read_to_string("examples/verdict-table.toml").expect("table");
        super::decision_table(&table).expect("the example table");
    }
}
