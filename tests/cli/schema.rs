//! Real output of every binary validates against the checked-in JSON Schema.

use std::sync::Arc;

use crate::common::*;

pub fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/record.schema.json"
    ))
    .expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

pub fn assert_valid(validator: &jsonschema::Validator, stdout: &str) {
    let mut n = 0;
    for line in stdout.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{line}\n{errors:#?}");
        n += 1;
    }
    assert!(n > 0, "no output to validate");
}

#[test]
fn probe_http_output_matches_the_schema() {
    let v = validator();
    let srv = http_server(Arc::new(|_req: &Request, s: &mut dyn Stream| {
        respond(s, 200, &[], b"{\"a\":1}")
    }));
    // A passing record, a failing one, and one with every optional part.
    assert_valid(
        &v,
        &run(
            PROBE_HTTP,
            &[&srv.url("/"), "--json", ".a == 1", "--label", "k=v"],
        )
        .stdout,
    );
    assert_valid(&v, &run(PROBE_HTTP, &["http://127.0.0.1:1/"]).stdout);
    assert_valid(
        &v,
        &run(
            PROBE_HTTP,
            &[
                &srv.url("/"),
                "-e",
                "500",
                "-w",
                "1",
                "--every",
                "10ms",
                "--count",
                "2",
            ],
        )
        .stdout,
    );
}

#[test]
fn watch_procs_output_matches_the_schema() {
    let v = validator();
    let w = crate::watch_procs::WATCH_PROCS;
    assert_valid(
        &v,
        &run(w, &["-C", "sleep", "-w", "0:", "--label", "az=a"]).stdout,
    );
    assert_valid(&v, &run(w, &["-m", "RSS", "-k", "-c", "100000000"]).stdout);
    let dir = TempDir::new("schema");
    let config = dir.write(
        "p.toml",
        "[[process]]\nname = \"gone\"\ncmdline = \"not here\"\nrestart = [\"false\"]\nrestart_retries = 1\n",
    );
    assert_valid(&v, &run(w, &["--config", &config]).stdout);
}

#[cfg(feature = "libvirt")]
#[test]
fn watch_domains_output_matches_the_schema() {
    let v = validator();
    let w = crate::watch_domains::WATCH_DOMAINS;
    assert_valid(
        &v,
        &run(
            w,
            &[
                "--connect",
                "test:///default",
                "--heartbeat",
                "--label",
                "az=a",
            ],
        )
        .stdout,
    );
    assert_valid(
        &v,
        &run(
            w,
            &["--connect", "test+unix:///default?socket=/nonexistent/sock"],
        )
        .stdout,
    );
    // Events, from a state file that remembers a domain that is gone.
    let dir = TempDir::new("schema-wd");
    let state = dir.write(
        "s.json",
        r#"{"seen": {"test:///default": [{"uuid": "u-1", "name": "gone", "state": "running", "reason": "booted"},
            {"uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f", "name": "test", "state": "shutoff", "reason": "failed"}]}}"#,
    );
    let out = run(w, &["--connect", "test:///default", "--state", &state]).stdout;
    assert!(
        out.contains("\"vanished\"") && out.contains("\"changed\""),
        "{out}"
    );
    assert_valid(&v, &out);
}

#[test]
fn schema_rejects_a_record_missing_status() {
    let v = validator();
    let bad = serde_json::json!({"ts": "2026-11-23T18:40:00.123Z", "host": "h", "check": "c", "target": "t", "name": "n",
        "summary": "s", "duration_ms": 1.0, "metrics": [], "trace": [], "details": {}, "labels": {}});
    assert!(!v.is_valid(&bad));
}

#[test]
fn probe_host_output_matches_the_schema() {
    let v = validator();
    let open = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = open.local_addr().expect("addr").port().to_string();
    // Ports open and refused, per-port records, labels; ICMP as root.
    assert_valid(
        &v,
        &run(
            crate::probe_host::PROBE_HOST,
            &[
                "-H",
                "127.0.0.1",
                "-p",
                &format!("{port},1"),
                "--icmp",
                "-n",
                "2",
                "-I",
                "5ms",
                "--per-port",
                "--label",
                "k=v",
            ],
        )
        .stdout,
    );
    assert_valid(
        &v,
        &run(
            crate::probe_host::PROBE_HOST,
            &["-H", "skyprobe-test.invalid"],
        )
        .stdout,
    );
}
