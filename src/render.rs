//! Writers: records in, text out. Checks never format; they return records
//! and one of these renders them (one exporter per format).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::{worst, Metric, Record, Status};

/// Output formats every binary offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON record per line (the default in a pipe).
    Jsonl,
    /// Nagios plugin output: status line, long output, performance data.
    Nagios,
    /// The Nagios status line and its perfdata only, no long output: for
    /// Sensu Go's nagios_perfdata, which reads every word after the first |
    /// of the whole output as a metric.
    NagiosLine,
    /// A table for people (the default on a terminal).
    Table,
    /// CSV with a header row.
    Csv,
    /// Prometheus text exposition (for node_exporter's textfile collector).
    Prometheus,
}

/// Nagios truncates plugin output written in a burst at 4 KiB boundaries and
/// loses the perfdata with it (PLUGIN-FACTS.md), so the whole Nagios output is
/// kept under this many bytes.
pub const NAGIOS_BUDGET: usize = 4000;

/// Renders rounds of records in one format; remembers what a stream needs
/// (the CSV header is written once).
#[derive(Debug)]
pub struct Renderer {
    format: Format,
    label: String,
    csv_header_done: bool,
}

impl Renderer {
    /// A renderer for `format`; `label` is the Nagios service label (`HTTP`).
    pub fn new(format: Format, label: &str) -> Renderer {
        Renderer {
            format,
            label: label.to_string(),
            csv_header_done: false,
        }
    }

    /// Forget stream state, for output that is rewritten whole each round.
    pub fn restart(&mut self) {
        self.csv_header_done = false;
    }

    /// Render one round straight into `out`. JSON lines are written one
    /// record at a time, so ten thousand records never sit in memory twice.
    pub fn render_to(
        &mut self,
        records: &[Record],
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        if self.format == Format::Jsonl {
            for r in records {
                serde_json::to_writer(&mut *out, r).map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
            }
            return Ok(());
        }
        out.write_all(self.render(records).as_bytes())
    }

    /// Render one round of records.
    pub fn render(&mut self, records: &[Record]) -> String {
        match self.format {
            Format::Jsonl => jsonl(records),
            Format::Nagios => nagios(&self.label, records),
            Format::NagiosLine => {
                let text = nagios(&self.label, records);
                let first = text.lines().next().unwrap_or_default();
                format!("{first}\n")
            }
            Format::Table => table(records),
            Format::Csv => {
                let text = csv(records, !self.csv_header_done);
                self.csv_header_done = true;
                text
            }
            Format::Prometheus => prometheus(records),
        }
    }
}

/// One JSON object per line.
pub fn jsonl(records: &[Record]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&r.to_json_line());
        out.push('\n');
    }
    out
}

/// A number as Nagios and Prometheus want it: plain decimal, never
/// scientific notation (Rust's `Display` for `f64` never uses an exponent).
pub fn number(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let rounded = (value * 1e6).round() / 1e6;
    let rounded = if rounded.is_finite() { rounded } else { value };
    format!("{}", rounded)
}

/// Text that Nagios puts on a status line: no `|` (it starts perfdata), no
/// newlines, no NUL (it cuts the output).
fn nagios_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '|' => '/',
            '\n' | '\r' | '\t' => ' ',
            c => c,
        })
        .filter(|c| *c != '\0')
        .collect()
}

/// One perfdata item: `label=value[UOM];[warn];[crit];[min];[max]`. The
/// label is quoted only when it has to be (a space or a quote in it), as
/// check_http writes `time=0.002s`: Sensu Go keeps the quotes of a quoted
/// label in the metric's name.
pub fn perfdata_item(label: &str, m: &Metric) -> String {
    let label: String = label
        .chars()
        .map(|c| match c {
            '=' | '\n' | '\r' | '|' => '_',
            c => c,
        })
        .collect();
    let label = if label.contains([' ', '\t', '\'']) {
        // A quote inside a quoted label is written twice (plugin guidelines).
        format!("'{}'", label.replace('\'', "''"))
    } else {
        label
    };
    // A space, ';', '=' or '|' in a unit or a threshold would end the item
    // (or the perfdata) where Nagios reads it: only what a unit (letters,
    // %) and a Nagios range (digits, sign, '.', 'e', ':', '~', '@', inf)
    // are made of is written.
    let unit: String = m
        .unit
        .chars()
        .filter(|c| c.is_ascii_alphabetic() || *c == '%')
        .collect();
    let range = |r: Option<&str>| -> String {
        r.unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '~' | '@' | '-' | '+'))
            .collect()
    };
    format!(
        "{}={}{};{};{};{};{}",
        label,
        number(m.value),
        unit,
        range(m.warn.as_deref()),
        range(m.crit.as_deref()),
        m.min.map(number).unwrap_or_default(),
        m.max.map(number).unwrap_or_default(),
    )
}

/// Nagios plugin output for a round of records.
pub fn nagios(label: &str, records: &[Record]) -> String {
    let status = worst(records);
    let single = records.len() == 1;
    let summary = match records {
        [] => "nothing checked".to_string(),
        [only] => nagios_text(&only.summary),
        many => {
            let mut counts: BTreeMap<Status, usize> = BTreeMap::new();
            for r in many {
                *counts.entry(r.status).or_default() += 1;
            }
            let mut text = format!("{} checked:", many.len());
            for (i, (s, n)) in counts.iter().rev().enumerate() {
                let sep = if i == 0 { " " } else { ", " };
                let _ = write!(text, "{sep}{n} {}", s.as_str());
            }
            // The worst few, so the first line alone says what is wrong.
            let mut bad: Vec<&Record> = many.iter().filter(|r| r.status != Status::Ok).collect();
            bad.sort_by_key(|r| std::cmp::Reverse(r.status));
            for r in bad.iter().take(3) {
                let _ = write!(text, "; {}: {}", r.name, r.summary);
            }
            nagios_text(&text)
        }
    };
    let mut perf = Vec::new();
    for r in records {
        for m in &r.metrics {
            let label = if single {
                m.name.clone()
            } else {
                format!("{} {}", r.name, m.name)
            };
            perf.push(perfdata_item(&label, m));
        }
    }
    let mut long = Vec::new();
    if single {
        if let Some(r) = records.first() {
            for step in &r.trace {
                long.push(nagios_text(&format!(
                    "{} {} {} ms{}",
                    step.step,
                    if step.ok { "ok" } else { "FAILED" },
                    number(step.ms),
                    step.detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                )));
            }
        }
    } else {
        let mut sorted: Vec<&Record> = records.iter().collect();
        sorted.sort_by_key(|r| std::cmp::Reverse(r.status));
        for r in sorted {
            long.push(nagios_text(&format!(
                "[{}] {}: {}",
                r.status.label(),
                r.name,
                r.summary
            )));
        }
    }
    let head = format!("{} {} - {}", label, status.label(), summary.trim_end());
    // Keep everything inside the budget: the status line first, then as much
    // perfdata as fits, then as much long output as fits.
    let mut head = truncate_chars(&head, NAGIOS_BUDGET / 2);
    let mut used = head.len();
    let mut perf_text = String::new();
    for item in perf {
        if used + perf_text.len() + item.len() + 4 > NAGIOS_BUDGET * 3 / 4 {
            break;
        }
        if !perf_text.is_empty() {
            perf_text.push(' ');
        }
        perf_text.push_str(&item);
    }
    if !perf_text.is_empty() {
        // No space before the |: Icinga 2 keeps the status text up to it as
        // it is, and a trailing space would end the first line.
        head.push('|');
        head.push_str(&perf_text);
    }
    used = head.len();
    let mut out = head;
    out.push('\n');
    let total = long.len();
    for (i, line) in long.into_iter().enumerate() {
        let line = truncate_chars(&line, 300);
        if used + line.len() + 40 > NAGIOS_BUDGET {
            let _ = writeln!(out, "... and {} more", total - i);
            break;
        }
        used += line.len() + 1;
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn truncate_chars(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut end = max_bytes.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// A table for a person at a terminal.
pub fn table(records: &[Record]) -> String {
    grid(
        &["STATUS", "NAME", "SUMMARY", "TIME"],
        records.iter().map(|r| {
            vec![
                r.status.label().to_string(),
                r.name.clone(),
                r.summary.clone(),
                format!("{} ms", number((r.duration_ms * 10.0).round() / 10.0)),
            ]
        }),
    )
}

/// A table of any rows under `header`, as [`table`] draws records: the
/// one table style of every binary (`notify history` too).
pub fn grid(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t.set_header(header.to_vec());
    for row in rows {
        t.add_row(row);
    }
    format!("{t}\n")
}

/// CSV, one row per record, with a header row when `header`.
pub fn csv(records: &[Record], header: bool) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let mut rows: Vec<Vec<String>> = Vec::new();
    if header {
        rows.push(
            [
                "ts",
                "host",
                "check",
                "name",
                "target",
                "status",
                "summary",
                "duration_ms",
                "labels",
                "event",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        );
    }
    for r in records {
        let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(vec![
            r.ts.clone(),
            r.host.clone(),
            r.check.clone(),
            r.name.clone(),
            r.target.clone(),
            r.status.as_str().to_string(),
            r.summary.clone(),
            number(r.duration_ms),
            labels.join(";"),
            r.event.clone().unwrap_or_default(),
        ]);
    }
    for row in rows {
        // Writing to a Vec cannot fail.
        let _ = w.write_record(&row);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn prom_name(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    out.trim_matches('_').to_string()
}

fn prom_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text exposition format: a status and duration gauge per
/// record and one gauge family per metric name.
pub fn prometheus(records: &[Record]) -> String {
    let mut families: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for r in records {
        let mut labels = vec![
            ("check".to_string(), r.check.clone()),
            ("name".to_string(), r.name.clone()),
            ("target".to_string(), r.target.clone()),
            ("host".to_string(), r.host.clone()),
        ];
        for (k, v) in &r.labels {
            let key = prom_name(k);
            if key.is_empty() || labels.iter().any(|(have, _)| *have == key) {
                continue;
            }
            labels.push((key, v.clone()));
        }
        let label_text = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", prom_escape(v)))
            .collect::<Vec<_>>()
            .join(",");
        let mut add = |family: String, help: String, value: f64| {
            let entry = families.entry(family.clone()).or_insert((help, Vec::new()));
            entry
                .1
                .push(format!("{family}{{{label_text}}} {}", number(value)));
        };
        add(
            "skyprobe_status".into(),
            "Check status: 0 ok, 1 warning, 2 critical, 3 unknown.".into(),
            f64::from(r.status.exit_code()),
        );
        add(
            "skyprobe_duration_seconds".into(),
            "How long the check took.".into(),
            r.duration_ms / 1000.0,
        );
        for m in &r.metrics {
            let suffix = match m.unit.as_str() {
                "s" => "_seconds",
                "B" => "_bytes",
                "%" => "_percent",
                _ => "",
            };
            let family = format!(
                "skyprobe_{}_{}{}",
                prom_name(&r.check),
                prom_name(&m.name),
                suffix
            );
            add(family, format!("{} metric {}.", r.check, m.name), m.value);
        }
    }
    let mut out = String::new();
    for (family, (help, lines)) in families {
        let _ = writeln!(out, "# HELP {family} {help}");
        let _ = writeln!(out, "# TYPE {family} gauge");
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::TraceStep;
    use std::time::Duration;

    fn sample() -> Record {
        let mut r = Record::new(
            "probe-http",
            "http://127.0.0.1:8080/",
            Status::Critical,
            "HTTP 503, expected 200 | bad",
        );
        r.ts = "2026-11-23T18:40:00.123Z".into();
        r.host = "mon1".into();
        r.name = "nova-api".into();
        r.duration_ms = 41.2;
        let mut m = Metric::new("time", 0.0412, "s").min(0.0);
        m.warn = Some("0.5".into());
        m.crit = Some("1".into());
        r.metrics.push(m);
        r.metrics.push(Metric::new("size", 12.0, "B").min(0.0));
        r.trace.push(TraceStep::new(
            "connect",
            true,
            Duration::from_micros(400),
            Some("127.0.0.1:8080".to_string()),
        ));
        r.labels.insert("az".into(), "zone-a".into());
        r
    }

    #[test]
    fn nagios_single_record() {
        insta::assert_snapshot!(nagios("HTTP", &[sample()]), @r"
        HTTP CRITICAL - HTTP 503, expected 200 / bad|time=0.0412s;0.5;1;0; size=12B;;;0;
        connect ok 0.4 ms: 127.0.0.1:8080
        ");
    }

    #[test]
    fn nagios_many_records_summarises_worst_first() {
        let mut ok = sample();
        ok.status = Status::Ok;
        ok.name = "keystone".into();
        ok.summary = "HTTP 200".into();
        ok.metrics.truncate(1);
        let mut bad = sample();
        bad.metrics.truncate(1);
        insta::assert_snapshot!(nagios("HTTP", &[ok, bad]), @r"
        HTTP CRITICAL - 2 checked: 1 critical, 1 ok; nova-api: HTTP 503, expected 200 / bad|'keystone time'=0.0412s;0.5;1;0; 'nova-api time'=0.0412s;0.5;1;0;
        [CRITICAL] nova-api: HTTP 503, expected 200 / bad
        [OK] keystone: HTTP 200
        ");
    }

    #[test]
    fn nagios_output_stays_under_budget() {
        let many: Vec<Record> = (0..500)
            .map(|i| {
                let mut r = sample();
                r.name = format!("target-{i}");
                r
            })
            .collect();
        let out = nagios("HTTP", &many);
        assert!(out.len() <= NAGIOS_BUDGET, "{} bytes", out.len());
        assert!(out.lines().next().expect("line").contains('|'));
        assert!(out.contains("more"));
    }

    #[test]
    fn numbers_never_use_exponents() {
        assert_eq!(number(0.0000001), "0");
        assert_eq!(number(0.000123), "0.000123");
        assert_eq!(number(1e20), "100000000000000000000");
        assert_eq!(number(3.0), "3");
    }

    #[test]
    fn perfdata_label_quotes() {
        let m = Metric::new("x", 1.0, "");
        assert_eq!(perfdata_item("it's=x", &m), "'it''s_x'=1;;;;");
        assert_eq!(perfdata_item("nova time", &m), "'nova time'=1;;;;");
        assert_eq!(
            perfdata_item("time", &m),
            "time=1;;;;",
            "quoted only when needed"
        );
    }

    /// Found by fuzzing: a space, ';' or '|' in a unit or a threshold
    /// broke the perfdata where Nagios splits it.
    #[test]
    fn units_and_thresholds_cannot_break_perfdata() {
        let mut m = Metric::new("x", 0.04, "s: 4|0 ;");
        m.warn = Some(" 1;2 ".into());
        m.crit = Some("@~:2 503|x".into());
        assert_eq!(perfdata_item("time", &m), "time=0.04s;12;@~:2503x;;");
    }

    #[test]
    fn prometheus_exposition() {
        insta::assert_snapshot!(prometheus(&[sample()]), @r#"
        # HELP skyprobe_duration_seconds How long the check took.
        # TYPE skyprobe_duration_seconds gauge
        skyprobe_duration_seconds{check="probe-http",name="nova-api",target="http://127.0.0.1:8080/",host="mon1",az="zone-a"} 0.0412
        # HELP skyprobe_probe_http_size_bytes probe-http metric size.
        # TYPE skyprobe_probe_http_size_bytes gauge
        skyprobe_probe_http_size_bytes{check="probe-http",name="nova-api",target="http://127.0.0.1:8080/",host="mon1",az="zone-a"} 12
        # HELP skyprobe_probe_http_time_seconds probe-http metric time.
        # TYPE skyprobe_probe_http_time_seconds gauge
        skyprobe_probe_http_time_seconds{check="probe-http",name="nova-api",target="http://127.0.0.1:8080/",host="mon1",az="zone-a"} 0.0412
        # HELP skyprobe_status Check status: 0 ok, 1 warning, 2 critical, 3 unknown.
        # TYPE skyprobe_status gauge
        skyprobe_status{check="probe-http",name="nova-api",target="http://127.0.0.1:8080/",host="mon1",az="zone-a"} 2
        "#);
    }

    #[test]
    fn csv_header_once_per_stream() {
        let mut r = Renderer::new(Format::Csv, "HTTP");
        let first = r.render(&[sample()]);
        let second = r.render(&[sample()]);
        assert!(first.starts_with("ts,host,check"));
        assert!(!second.starts_with("ts,"));
        insta::assert_snapshot!(second, @r#"2026-11-23T18:40:00.123Z,mon1,probe-http,nova-api,http://127.0.0.1:8080/,critical,"HTTP 503, expected 200 | bad",41.2,az=zone-a,"#);
    }
}
