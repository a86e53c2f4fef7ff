//! Many targets: a targets file (TOML or CSV), a bounded worker pool that
//! stays inside the run's deadline, and Skypunch's per-target statistics
//! kept in `--state`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use clap::CommandFactory;
use serde::{Deserialize, Serialize};

use super::options::Args;
use crate::cli::{Context, UsageError};
use crate::report::{Record, Status, TraceStep};

pub use super::Target;

/// Keys a target may have besides probe-http's own long options.
const OWN_KEYS: &[&str] = &["name", "url", "labels", "timeout", "enabled", "headers"];

/// probe-http options that make no sense per target.
const RUN_ONLY: &[&str] = &[
    "format",
    "output",
    "every",
    "count",
    "hostname",
    "verbose",
    "timeout-state",
    "label",
    "timeout",
    "targets",
    "targets-csv",
    "targets-skypunch",
    "os-endpoints",
    "only",
    "state",
    "list",
    "show",
    "enable",
    "disable",
    "concurrency",
    "help",
    "version",
];

/// The long options a target may use: probe-http's own, from its clap
/// definition, so the file and the command line never drift apart.
fn option_names() -> Vec<String> {
    Args::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .filter(|l| !RUN_ONLY.contains(&l.as_str()))
        .collect()
}

/// The probe options the command line gave explicitly, as the words a
/// target's table turns into: with a targets file they apply to every
/// target ("this run, --insecure"), instead of being silently ignored.
pub fn given_words(matches: &clap::ArgMatches) -> Vec<String> {
    use clap::parser::ValueSource;
    let mut words = Vec::new();
    let mut command = Args::command();
    command.build();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_positional() || matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) if RUN_ONLY.contains(&long) => continue,
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => continue,
        };
        let takes_values = arg.get_num_args().is_some_and(|n| n.takes_values());
        if !takes_values {
            words.push(flag);
            continue;
        }
        for value in matches.get_raw(id).into_iter().flatten() {
            let value = value.to_string_lossy();
            words.push(if flag.starts_with("--") {
                format!("{flag}={value}")
            } else {
                format!("{flag}{value}")
            });
        }
    }
    words
}

/// Check the command line's probe options on their own, so a bad one is
/// reported as the command line's, not as the first target's.
pub fn check_given(given: &[String]) -> Result<(), UsageError> {
    if given.is_empty() {
        return Ok(());
    }
    let words = std::iter::once("probe-http")
        .chain(given.iter().map(String::as_str))
        .chain(std::iter::once("http://127.0.0.1/"));
    let args = Args::command()
        .try_get_matches_from(words)
        .and_then(|m| <Args as clap::FromArgMatches>::from_arg_matches(&m))
        .map_err(|e| UsageError::new(crate::cli::clap_one_line(&e.to_string())))?;
    args.to_spec().map(|_| ())
}

/// Line of the `n`th `[[target]]` (0-based) and of `key` inside it.
fn locate(text: &str, n: Option<usize>, key: &str) -> usize {
    let mut line_no = 0;
    let mut seen: Option<usize> = None;
    let mut in_defaults = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with("[[target]]") {
            seen = Some(seen.map_or(0, |s| s + 1));
            in_defaults = false;
            if n == seen {
                line_no = i + 1;
            }
            continue;
        }
        if t.starts_with("[defaults]") {
            in_defaults = true;
            seen = None;
            if n.is_none() {
                line_no = i + 1;
            }
            continue;
        }
        let here = match n {
            None => in_defaults,
            Some(_) => seen == n,
        };
        if here {
            let k = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            if k == key {
                return i + 1;
            }
        }
    }
    line_no
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        _ => None,
    }
}

/// The parts of one target table (or `[defaults]`) that are not options.
#[derive(Default, Clone)]
struct Extras {
    labels: BTreeMap<String, String>,
    timeout: Option<Duration>,
    enabled: Option<bool>,
}

/// Turn one table into command-line words, checking every key.
fn table_words(
    file: &Path,
    text: &str,
    index: Option<usize>,
    table: &toml::Table,
    known: &[String],
    words: &mut Vec<String>,
    extras: &mut Extras,
) -> Result<(), UsageError> {
    let at = |key: &str| format!("{}:{}", file.display(), locate(text, index, key));
    let bad = |key: &str, why: &str| UsageError::new(format!("{}: key {key:?}: {why}", at(key)));
    for (key, value) in table {
        match key.as_str() {
            "name" | "url" => {}
            "labels" => {
                let t = value
                    .as_table()
                    .ok_or_else(|| bad(key, "want a table of strings"))?;
                for (k, v) in t {
                    let v = scalar(v).ok_or_else(|| bad(key, "label values are strings"))?;
                    extras.labels.insert(k.clone(), v);
                }
            }
            "timeout" => {
                let t = scalar(value).ok_or_else(|| bad(key, "want a duration"))?;
                extras.timeout = Some(crate::units::parse_duration(&t).map_err(|e| bad(key, &e))?);
            }
            "enabled" => {
                extras.enabled = Some(
                    value
                        .as_bool()
                        .ok_or_else(|| bad(key, "want true or false"))?,
                );
            }
            "headers" | "header" => match value {
                toml::Value::Table(t) => {
                    for (k, v) in t {
                        let v = scalar(v).ok_or_else(|| bad(key, "header values are strings"))?;
                        words.push(format!("--header={k}: {v}"));
                    }
                }
                toml::Value::Array(a) => {
                    for v in a {
                        let v = scalar(v).ok_or_else(|| bad(key, "want 'Name: value' strings"))?;
                        words.push(format!("--header={v}"));
                    }
                }
                v => {
                    let v = scalar(v).ok_or_else(|| bad(key, "want 'Name: value'"))?;
                    words.push(format!("--header={v}"));
                }
            },
            k if known.iter().any(|n| n == k) => match value {
                toml::Value::Boolean(true) => words.push(format!("--{k}")),
                toml::Value::Boolean(false) => {}
                toml::Value::Array(items) => {
                    for item in items {
                        let v = scalar(item).ok_or_else(|| bad(key, "want a list of strings"))?;
                        words.push(format!("--{k}={v}"));
                    }
                }
                v => {
                    let v = scalar(v).ok_or_else(|| bad(key, "want a value, not a table"))?;
                    words.push(format!("--{k}={v}"));
                }
            },
            _ => {
                return Err(bad(
                    key,
                    "unknown key (probe-http's long options, name, url, labels, timeout, enabled)",
                ))
            }
        }
    }
    Ok(())
}

/// Read a TOML targets file: `[defaults]` and `[[target]]` tables whose keys
/// are probe-http's long options.
///
/// The file is parsed one `[[target]]` at a time (a TOML document takes
/// some forty times its size in memory while it is parsed: a whole file of
/// 100,000 targets peaked at 410 MB); a file that cannot be cut that way
/// (a target spelt `[[ target ]]`, tables after the targets, a syntax
/// error) is parsed whole, so its meaning and its errors are the same.
pub fn load_toml(file: &Path, given: &[String]) -> Result<Vec<Target>, UsageError> {
    let text = crate::files::read_text(file, crate::files::TARGETS_MAX)
        .map_err(|e| UsageError::new(format!("--targets {}: {e}", file.display())))?;
    match load_toml_in_pieces(file, &text, given) {
        Some(result) => result,
        None => {
            let doc = parse_toml(file, &text)?;
            load_toml_doc(file, &text, doc, given)
        }
    }
}

/// The whole file as one TOML document; an error names its line.
fn parse_toml(file: &Path, text: &str) -> Result<toml::Table, UsageError> {
    text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| {
                format!(
                    ":{}",
                    text[..s.start.min(text.len())].matches('\n').count() + 1
                )
            })
            .unwrap_or_default();
        UsageError::new(format!("{}{line}: {}", file.display(), e.message()))
    })
}

/// Where each `[[target]]` header line starts, and the text before the first.
fn target_pieces(text: &str) -> (&str, Vec<&str>) {
    let mut starts = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("[[target]]") {
            let rest = rest.trim_start();
            if rest.is_empty() || rest.starts_with('#') {
                starts.push(offset);
            }
        }
        offset += line.len();
    }
    let head = &text[..starts.first().copied().unwrap_or(text.len())];
    let pieces = starts
        .iter()
        .enumerate()
        .map(|(i, &start)| &text[start..starts.get(i + 1).copied().unwrap_or(text.len())])
        .collect();
    (head, pieces)
}

/// [`load_toml`] one target at a time; `None` when the file must be parsed
/// whole instead.
fn load_toml_in_pieces(
    file: &Path,
    text: &str,
    given: &[String],
) -> Option<Result<Vec<Target>, UsageError>> {
    let (head, pieces) = target_pieces(text);
    let head_doc: toml::Table = head.parse().ok()?;
    if head_doc.contains_key("target") {
        return None;
    }
    let (default_words, default_extras) = match head_words(file, text, &head_doc) {
        Ok(d) => d,
        Err(e) => return Some(Err(e)),
    };
    let known = option_names();
    let mut parser = Parser::new(given);
    let mut targets = Vec::with_capacity(pieces.len());
    for (i, piece) in pieces.iter().enumerate() {
        let mut doc: toml::Table = piece.parse().ok()?;
        if doc.len() != 1 {
            return None;
        }
        let table = match doc.remove("target") {
            Some(toml::Value::Array(mut a)) if a.len() == 1 => a.pop()?,
            _ => return None,
        };
        let target = table_target(
            file,
            text,
            i,
            table,
            &known,
            &default_words,
            &default_extras,
            &mut parser,
        );
        match target {
            Ok(t) => targets.push(t),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(finish(file, targets))
}

/// The `[defaults]` table (and a check of the other top-level keys).
fn head_words(
    file: &Path,
    text: &str,
    doc: &toml::Table,
) -> Result<(Vec<String>, Extras), UsageError> {
    let known = option_names();
    let mut default_words = Vec::new();
    let mut default_extras = Extras::default();
    for (key, value) in doc {
        match key.as_str() {
            "defaults" => {
                let t = value.as_table().ok_or_else(|| {
                    UsageError::new(format!("{}: [defaults] must be a table", file.display()))
                })?;
                if t.contains_key("name") || t.contains_key("url") {
                    return Err(UsageError::new(format!(
                        "{}:{}: [defaults] cannot set name or url",
                        file.display(),
                        locate(
                            text,
                            None,
                            if t.contains_key("name") {
                                "name"
                            } else {
                                "url"
                            }
                        )
                    )));
                }
                table_words(
                    file,
                    text,
                    None,
                    t,
                    &known,
                    &mut default_words,
                    &mut default_extras,
                )?;
            }
            "target" => {}
            other => {
                return Err(UsageError::new(format!(
                    "{}: unknown top-level key {other:?} (want [defaults] and [[target]])",
                    file.display()
                )))
            }
        }
    }
    Ok((default_words, default_extras))
}

/// A whole parsed targets file.
fn load_toml_doc(
    file: &Path,
    text: &str,
    mut doc: toml::Table,
    given: &[String],
) -> Result<Vec<Target>, UsageError> {
    let (default_words, default_extras) = head_words(file, text, &doc)?;
    let known = option_names();
    let list = match doc.remove("target") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a,
        Some(_) => {
            return Err(UsageError::new(format!(
                "{}: use [[target]] for each target",
                file.display()
            )))
        }
    };
    let mut targets = Vec::with_capacity(list.len());
    let mut parser = Parser::new(given);
    // Each table is dropped once its target is built.
    for (i, item) in list.into_iter().enumerate() {
        targets.push(table_target(
            file,
            text,
            i,
            item,
            &known,
            &default_words,
            &default_extras,
            &mut parser,
        )?);
    }
    finish(file, targets)
}

/// One `[[target]]` table (the `i`th of the file) as a target.
#[allow(clippy::too_many_arguments)]
fn table_target(
    file: &Path,
    text: &str,
    i: usize,
    item: toml::Value,
    known: &[String],
    default_words: &[String],
    default_extras: &Extras,
    parser: &mut Parser,
) -> Result<Target, UsageError> {
    let table = item.as_table().ok_or_else(|| {
        UsageError::new(format!(
            "{}: target {} is not a table",
            file.display(),
            i + 1
        ))
    })?;
    // Only an error needs a line number; finding one is a scan of the file.
    let line = || locate(text, Some(i), "name");
    let name = table
        .get("name")
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            UsageError::new(format!(
                "{}:{}: a target without a name",
                file.display(),
                line()
            ))
        })?
        .to_string();
    let url = table.get("url").and_then(scalar);
    let mut words = vec!["probe-http".to_string()];
    words.extend(default_words.iter().cloned());
    let mut extras = default_extras.clone();
    table_words(file, text, Some(i), table, known, &mut words, &mut extras)?;
    build(parser, file, &line, &name, url, words, extras)
}

/// Parses targets' option words, once per distinct set: in a file of
/// thousands most targets share their options and differ only in name and
/// URL, and clap's parse is most of the cost of loading one.
struct Parser {
    command: clap::Command,
    /// The command line's probe options, after each target's own.
    given: Vec<String>,
    parsed: std::collections::HashMap<Vec<String>, Args>,
    /// The TLS configurations made to check the targets' TLS files, for
    /// this load only.
    tls: super::TlsRound,
    /// Each distinct set of labels, once.
    labels: std::collections::HashMap<
        BTreeMap<String, String>,
        std::sync::Arc<BTreeMap<String, String>>,
    >,
}

impl Parser {
    fn new(given: &[String]) -> Parser {
        Parser {
            // Args overrides itself: a value given again replaces the
            // earlier one, so the command line's (last) wins over the
            // file's; lists add up.
            command: Args::command(),
            given: given.to_vec(),
            parsed: std::collections::HashMap::new(),
            labels: std::collections::HashMap::new(),
            tls: super::TlsRound::default(),
        }
    }
}

fn build(
    parser: &mut Parser,
    file: &Path,
    line: &dyn Fn() -> usize,
    name: &str,
    url: Option<String>,
    words: Vec<String>,
    extras: Extras,
) -> Result<Target, UsageError> {
    let wrap = |e: String| {
        UsageError::new(format!(
            "{}:{}: target {name:?}: {e}",
            file.display(),
            line()
        ))
    };
    let mut words = words;
    words.extend(parser.given.iter().cloned());
    let mut args = match parser.parsed.get(&words) {
        Some(a) => a.clone(),
        None => {
            let a = parser
                .command
                .try_get_matches_from_mut(&words)
                .and_then(|m| <Args as clap::FromArgMatches>::from_arg_matches(&m))
                .map_err(|e| {
                    let text = e.to_string();
                    let first = text
                        .lines()
                        .next()
                        .unwrap_or("invalid option")
                        .trim_start_matches("error: ")
                        .to_string();
                    wrap(first)
                })?;
            parser.parsed.insert(words, a.clone());
            a
        }
    };
    args.name = Some(name.to_string());
    args.url = url;
    let mut spec = args.to_spec_with(&parser.tls).map_err(|e| wrap(e.0))?;
    // Thousands of targets share a few sets of labels: one copy of each.
    spec.labels = match parser.labels.get(&extras.labels) {
        Some(shared) => std::sync::Arc::clone(shared),
        None => {
            let shared = std::sync::Arc::new(extras.labels);
            parser
                .labels
                .insert((*shared).clone(), std::sync::Arc::clone(&shared));
            shared
        }
    };
    spec.timeout = extras.timeout;
    Ok(Target {
        name: name.to_string(),
        spec,
        enabled: extras.enabled.unwrap_or(true),
    })
}

fn finish(file: &Path, targets: Vec<Target>) -> Result<Vec<Target>, UsageError> {
    if targets.is_empty() {
        return Err(UsageError::new(format!(
            "{}: no target in it",
            file.display()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in &targets {
        if !seen.insert(t.name.as_str()) {
            return Err(UsageError::new(format!(
                "{}: target {:?} is listed twice",
                file.display(),
                t.name
            )));
        }
    }
    Ok(targets)
}

/// Read a CSV targets file: a header row, then one target per row. Columns
/// `name` and `url` are required; any other column is a probe-http long
/// option (or `labels` as `k=v;k=v`, `timeout`, `enabled`); an empty cell
/// leaves the option unset.
pub fn load_csv(file: &Path, given: &[String]) -> Result<Vec<Target>, UsageError> {
    let bytes = crate::files::read_bounded(file, crate::files::TARGETS_MAX)
        .map_err(|e| UsageError::new(format!("--targets-csv {}: {e}", file.display())))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| UsageError::new(format!("{}: {e}", file.display())))?
        .iter()
        .map(str::to_string)
        .collect();
    let known = option_names();
    for h in &headers {
        if !(OWN_KEYS.contains(&h.as_str()) || known.contains(h)) {
            return Err(UsageError::new(format!(
                "{}:1: unknown column {h:?}",
                file.display()
            )));
        }
    }
    if !headers.iter().any(|h| h == "name") || !headers.iter().any(|h| h == "url") {
        return Err(UsageError::new(format!(
            "{}:1: the header row needs name and url columns",
            file.display()
        )));
    }
    let mut targets = Vec::new();
    let mut parser = Parser::new(given);
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| UsageError::new(format!("{}:{line}: {e}", file.display())))?;
        let mut words = vec!["probe-http".to_string()];
        let mut extras = Extras::default();
        let mut name = String::new();
        let mut url = String::new();
        for (h, v) in headers.iter().zip(row.iter()) {
            if v.is_empty() {
                continue;
            }
            let bad = |why: String| {
                UsageError::new(format!("{}:{line}: column {h:?}: {why}", file.display()))
            };
            match h.as_str() {
                "name" => name = v.to_string(),
                "url" => url = v.to_string(),
                "labels" => {
                    for pair in v.split(';').filter(|p| !p.trim().is_empty()) {
                        let (k, val) = pair
                            .split_once('=')
                            .ok_or_else(|| bad(format!("{pair:?} is not k=v")))?;
                        extras
                            .labels
                            .insert(k.trim().to_string(), val.trim().to_string());
                    }
                }
                "timeout" => extras.timeout = Some(crate::units::parse_duration(v).map_err(bad)?),
                "enabled" => {
                    extras.enabled = Some(match v.to_ascii_lowercase().as_str() {
                        "true" | "yes" | "1" => true,
                        "false" | "no" | "0" => false,
                        _ => return Err(bad("want true or false".into())),
                    })
                }
                "headers" | "header" => {
                    for hv in v.split(';').filter(|p| !p.trim().is_empty()) {
                        words.push(format!("--header={}", hv.trim()));
                    }
                }
                opt => match v.to_ascii_lowercase().as_str() {
                    "true" => words.push(format!("--{opt}")),
                    "false" => {}
                    _ => words.push(format!("--{opt}={v}")),
                },
            }
        }
        if name.is_empty() || url.is_empty() {
            return Err(UsageError::new(format!(
                "{}:{line}: name and url are required",
                file.display()
            )));
        }
        targets.push(build(
            &mut parser,
            file,
            &|| line,
            &name,
            Some(url),
            words,
            extras,
        )?);
    }
    finish(file, targets)
}

/// Read Skypunch's targets from its SQL (`data.sql`, or a mysqldump of its
/// database): name, url, method, expected status (`pass_result`),
/// timeout, enabled, BASIC credentials as `--authorization`, OPENSTACK as
/// `--auth keystone` with the cloud from `--os-cloud`/`OS_*` (the per-row
/// Keystone user and endpoint are not carried over), and the tenant as the
/// label `tenant`. Skypunch's `frequency` is the scheduler's business (cron,
/// `--every`). Two rows with one name become `NAME #ID`.
pub fn load_skypunch(file: &Path, given: &[String]) -> Result<Vec<Target>, UsageError> {
    use super::skypunch::{self, TARGET_COLUMNS};
    let at = |m: String| UsageError::new(format!("{}: {m}", file.display()));
    let text = crate::files::read_text(file, crate::files::TARGETS_MAX)
        .map_err(|e| UsageError::new(format!("--targets-skypunch {}: {e}", file.display())))?;
    let rows: Vec<skypunch::Row> = skypunch::rows(&text, &|t| {
        t.eq_ignore_ascii_case("targets")
            .then(|| TARGET_COLUMNS.iter().map(|c| c.to_string()).collect())
    })
    .map_err(at)?
    .into_iter()
    .filter(|r| r.table.eq_ignore_ascii_case("targets"))
    .collect();
    let get = |r: &skypunch::Row, c: &str| {
        r.values
            .get(c)
            .map(|v| v.text().trim().to_string())
            .unwrap_or_default()
    };
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        *names.entry(get(r, "name")).or_default() += 1;
    }
    let mut parser = Parser::new(given);
    let mut targets = Vec::new();
    for r in &rows {
        let line = r.line;
        let bad = |why: String| UsageError::new(format!("{}:{line}: {why}", file.display()));
        let mut name = get(r, "name");
        let url = get(r, "url");
        if name.is_empty() || url.is_empty() {
            return Err(bad("a Skypunch target needs a name and a url".into()));
        }
        if names.get(&name).is_some_and(|n| *n > 1) {
            name = format!("{name} #{}", get(r, "id"));
        }
        let mut words = vec!["probe-http".to_string()];
        let mut extras = Extras::default();
        let method = get(r, "method").to_ascii_uppercase();
        if !method.is_empty() && method != "GET" {
            words.push(format!("--method={method}"));
        }
        let pass = get(r, "pass_result");
        if !pass.is_empty() && pass != "0" {
            words.push(format!("--expect={pass}"));
        }
        match get(r, "authn").to_ascii_uppercase().as_str() {
            "" | "NONE" => {}
            "BASIC" => {
                let p = skypunch::params(&get(r, "authn_parms"));
                match (p.get("user"), p.get("password")) {
                    (Some(u), Some(pw)) => words.push(format!("--authorization={u}:{pw}")),
                    _ => {
                        return Err(bad(format!(
                            "target {name:?}: BASIC needs authn_parms user=...,password=..."
                        )))
                    }
                }
            }
            "OPENSTACK" => words.push("--auth=keystone".to_string()),
            other => {
                return Err(bad(format!(
                    "target {name:?}: authn {other:?} is not NONE, BASIC or OPENSTACK"
                )))
            }
        }
        let timeout = get(r, "timeout");
        if !timeout.is_empty() && timeout != "0" {
            let secs: u64 = timeout.parse().map_err(|_| {
                bad(format!(
                    "target {name:?}: timeout {timeout:?} is not seconds"
                ))
            })?;
            extras.timeout = Some(Duration::from_secs(secs));
        }
        let enabled = get(r, "enabled").to_ascii_lowercase();
        if !enabled.is_empty() {
            extras.enabled = Some(!matches!(enabled.as_str(), "0" | "false" | "b'0'"));
        }
        let tenant = get(r, "tenantid");
        if !tenant.is_empty() && tenant != "0" {
            extras.labels.insert("tenant".to_string(), tenant);
        }
        targets.push(build(
            &mut parser,
            file,
            &|| line,
            &name,
            Some(url),
            words,
            extras,
        )?);
    }
    finish(file, targets)
}

/// Probe `targets` with at most `concurrency` at a time, inside the run's
/// deadline. Records come back in the targets' order; a target not started
/// before the deadline gets a record that says so.
pub fn run_all(targets: &[&Target], ctx: &Context, concurrency: usize) -> Vec<Record> {
    crate::pool::run_all(targets, ctx, concurrency, &|t| probe(t, ctx), &|t| {
        not_started(t, ctx)
    })
}

/// [`run_all`], handing records to `ready` as soon as they can go out in
/// the targets' order (every earlier target done), so a run over thousands
/// of targets need not hold every record until the end. `ready` is called
/// under a lock, one call at a time, in order.
pub fn run_all_in_order(
    targets: &[&Target],
    ctx: &Context,
    concurrency: usize,
    ready: &(dyn Fn(Vec<Record>) + Sync),
) {
    crate::pool::run_in_order(
        targets,
        ctx,
        concurrency,
        &|t| probe(t, ctx),
        &|t| not_started(t, ctx),
        ready,
    )
}

fn probe(target: &Target, ctx: &Context) -> Record {
    super::auth::probe(&target.spec, ctx)
}

fn not_started(t: &Target, ctx: &Context) -> Record {
    let mut r = Record::new(
        super::CHECK,
        &t.spec.url,
        ctx.timeout_state,
        "not started before the deadline (-t); raise -t or --concurrency",
    );
    r.name = t.name.clone();
    r.labels = (*t.spec.labels).clone();
    // The run's doing, not the target's: not counted in --state.
    r.detail(NOT_STARTED, true);
    r
}

/// The detail a record gets when its target was never tried (the deadline
/// came first): such a run says nothing about the target.
pub const NOT_STARTED: &str = "not_started";

/// What of a record the counters need, kept until the run merges them
/// into the state (the trace only of a failure).
pub fn counted_part(r: &Record) -> Record {
    let mut c = Record::new(super::CHECK, "", r.status, r.summary.clone());
    c.ts.clone_from(&r.ts);
    if r.status != Status::Ok {
        c.trace = r.trace.clone();
    }
    if let Some(code) = r.details.get("status_code") {
        c.details.insert("status_code".into(), code.clone());
    }
    c
}

/// Skypunch's counters for one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetStats {
    /// Runs that were OK.
    pub pass_count: u64,
    /// Runs that were not.
    pub fail_count: u64,
    /// Responses by class.
    pub count_2xx: u64,
    /// Responses by class.
    pub count_3xx: u64,
    /// Responses by class.
    pub count_4xx: u64,
    /// Responses by class.
    pub count_5xx: u64,
    /// Runs that got no response at all.
    pub network_failures: u64,
    /// Failures in a row, up to now.
    pub consecutive_failures: u64,
    /// Status of the last run.
    pub last_status: Option<Status>,
    /// When the status last changed.
    pub last_change: Option<String>,
    /// When the last failure happened.
    pub last_failure_at: Option<String>,
    /// What the last failure said.
    pub last_failure_summary: Option<String>,
    /// The last failing trace.
    #[serde(default)]
    pub last_failure_trace: Vec<TraceStep>,
    /// Turned off with --disable (the targets file is not edited).
    #[serde(default)]
    pub disabled: bool,
}

/// probe-http's `--state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpState {
    /// Per target name.
    pub targets: BTreeMap<String, TargetStats>,
}

impl TargetStats {
    /// Count one run's record.
    pub fn update(&mut self, r: &Record) {
        if r.details.get(NOT_STARTED).is_some() {
            return;
        }
        if r.status == Status::Ok {
            self.pass_count += 1;
            self.consecutive_failures = 0;
        } else {
            self.fail_count += 1;
            self.consecutive_failures += 1;
            self.last_failure_at = Some(r.ts.clone());
            self.last_failure_summary = Some(r.summary.clone());
            self.last_failure_trace = r.trace.clone();
        }
        match r.details.get("status_code").and_then(|c| c.as_u64()) {
            Some(200..=299) => self.count_2xx += 1,
            Some(300..=399) => self.count_3xx += 1,
            Some(400..=499) => self.count_4xx += 1,
            Some(500..=599) => self.count_5xx += 1,
            Some(_) => {}
            None => self.network_failures += 1,
        }
        if self.last_status != Some(r.status) {
            self.last_status = Some(r.status);
            self.last_change = Some(r.ts.clone());
        }
    }

    /// Put the counters into a record's details.
    pub fn annotate(&self, r: &mut Record) {
        r.detail("pass_count", self.pass_count);
        r.detail("fail_count", self.fail_count);
        r.detail("count_2xx", self.count_2xx);
        r.detail("count_3xx", self.count_3xx);
        r.detail("count_4xx", self.count_4xx);
        r.detail("count_5xx", self.count_5xx);
        r.detail("network_failures", self.network_failures);
        r.detail("consecutive_failures", self.consecutive_failures);
        if let Some(c) = &self.last_change {
            r.detail("last_change", c.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("skyprobe-targets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn defaults_apply_and_targets_override() {
        let p = write(
            "a.toml",
            "[defaults]\nexpect = \"200\"\ninsecure = true\nheaders = { X-Probe = \"skyprobe\" }\nlabels = { az = \"a\" }\n\n[[target]]\nname = \"keystone\"\nurl = \"https://127.0.0.1:5000/v3\"\njson = ['.version.status == \"stable\"']\n\n[[target]]\nname = \"nova\"\nurl = \"http://127.0.0.1:8774/\"\nexpect = \"200,300\"\nlabels = { service = \"compute\" }\ntimeout = \"2s\"\nenabled = false\n",
        );
        let t = load_toml(&p, &[]).expect("loads");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].spec.expect.as_ref().expect("expect").as_str(), "200");
        assert!(t[0].spec.tls.insecure);
        assert_eq!(t[0].spec.json.len(), 1);
        assert!(t[0]
            .spec
            .headers
            .iter()
            .any(|(k, v)| k == "X-Probe" && v == "skyprobe"));
        assert_eq!(
            t[1].spec.expect.as_ref().expect("expect").as_str(),
            "200,300"
        );
        assert_eq!(t[1].spec.labels.get("az").map(String::as_str), Some("a"));
        assert_eq!(
            t[1].spec.labels.get("service").map(String::as_str),
            Some("compute")
        );
        assert_eq!(t[1].spec.timeout, Some(Duration::from_secs(2)));
        assert!(!t[1].enabled);
        assert_eq!(t[1].spec.name.as_deref(), Some("nova"));
    }

    #[test]
    fn unknown_keys_name_file_line_and_key() {
        let p = write("b.toml", "[[target]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\n\n[[target]]\nname = \"b\"\nurl = \"http://127.0.0.1/\"\nexpcet = \"200\"\n");
        let e = load_toml(&p, &[]).expect_err("typo");
        assert!(e.0.ends_with("b.toml:8: key \"expcet\": unknown key (probe-http's long options, name, url, labels, timeout, enabled)"), "{}", e.0);
        let p = write(
            "c.toml",
            "[[target]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nwarning = \"3:2\"\n",
        );
        let e = load_toml(&p, &[]).expect_err("bad range");
        assert!(
            e.0.contains("c.toml:2: target \"a\": -w/-c: range \"3:2\""),
            "{}",
            e.0
        );
        let p = write("d.toml", "[[target]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\n[[target]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\n");
        assert!(load_toml(&p, &[])
            .expect_err("dup")
            .0
            .contains("listed twice"));
        let p = write(
            "e.toml",
            "[[target]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nformat = \"csv\"\n",
        );
        assert!(load_toml(&p, &[])
            .expect_err("run-only")
            .0
            .contains("unknown key"));
    }

    #[test]
    fn the_shipped_example_parses() {
        let p = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/probe-http/targets.toml"
        ));
        // The keystone target needs a cloud; everything else must load as written.
        let text = std::fs::read_to_string(p).expect("example");
        let without_keystone: String = text
            .split("[[target]]\nname = \"nova-servers\"")
            .next()
            .expect("head")
            .to_string();
        let q = write("example.toml", &without_keystone);
        let t = load_toml(&q, &[]).expect("example parses");
        assert_eq!(t.len(), 2);
        assert!(t[0].spec.cert_days.is_some());
    }

    /// The targets of a file as `name url labels enabled`, for comparing.
    fn summary(t: &[Target]) -> Vec<String> {
        t.iter()
            .map(|t| {
                format!(
                    "{} {} {:?} {} {:?}",
                    t.name, t.spec.url, t.spec.labels, t.enabled, t.spec.timeout
                )
            })
            .collect()
    }

    #[test]
    fn a_file_read_in_pieces_means_what_it_means_whole() {
        // A file of a million targets is parsed one [[target]] at a time
        // (it took 3.7 GB whole); the result must be the same as parsing it
        // whole, and a file that cannot be cut is parsed whole.
        let text = "# comment\n[defaults]\nexpect = \"200\"\ntimeout = \"3s\"\n\n\
            [[target]] # first\nname = \"a\"\nurl = \"http://127.0.0.1:1/\"\n[target.labels]\naz = \"x\"\n\n\
            [[target]]\nname = \"b\"\nurl = \"http://127.0.0.1:2/\"\nenabled = false\nlabels = { az = \"x\" }\n";
        let (head, pieces) = target_pieces(text);
        assert!(head.contains("[defaults]"));
        assert_eq!(pieces.len(), 2);
        let file = write("pieces.toml", text);
        let in_pieces = load_toml_in_pieces(&file, text, &[])
            .expect("cut")
            .expect("valid");
        let doc: toml::Table = text.parse().expect("toml");
        let whole = load_toml_doc(&file, text, doc, &[]).expect("valid");
        assert_eq!(summary(&in_pieces), summary(&whole));
        assert!(
            std::sync::Arc::ptr_eq(&in_pieces[0].spec.labels, &in_pieces[1].spec.labels),
            "one copy of equal labels"
        );
        // Spelt so that cutting cannot see it, or with a table after the
        // targets: parsed whole, with the same meaning.
        for odd in [
            text.replace("[[target]]\nname = \"b\"", "[[ target ]]\nname = \"b\""),
            format!("{text}\n[defaults]\nexpect = \"201\"\n"),
        ] {
            let f = write("odd.toml", &odd);
            assert!(load_toml_in_pieces(&f, &odd, &[]).is_none(), "{odd}");
            let _ = load_toml(&f, &[]);
        }
        // A syntax error in a piece is reported at its line in the file.
        let broken = text.replace("url = \"http://127.0.0.1:2/\"", "url = ");
        let f = write("broken.toml", &broken);
        let e = load_toml(&f, &[]).expect_err("broken");
        assert!(e.0.contains("broken.toml:14"), "{}", e.0);
    }

    #[test]
    fn csv_targets() {
        let p = write("t.csv", "name,url,expect,labels,enabled,insecure\nweb,http://127.0.0.1:8080/,2xx,az=a;tier=web,true,false\nold,http://127.0.0.1:8081/,,,no,\n");
        let t = load_csv(&p, &[]).expect("loads");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].spec.labels.len(), 2);
        assert!(!t[1].enabled);
        let p = write("u.csv", "name,url,colour\nweb,http://x/,red\n");
        assert!(load_csv(&p, &[])
            .expect_err("unknown column")
            .0
            .contains("u.csv:1: unknown column \"colour\""));
    }

    #[test]
    fn stats_count_like_skypunch() {
        let mut s = TargetStats::default();
        let mut ok = Record::new("probe-http", "u", Status::Ok, "fine");
        ok.detail("status_code", 200);
        let mut down = Record::new("probe-http", "u", Status::Critical, "HTTP 503");
        down.detail("status_code", 503);
        let refused = Record::new("probe-http", "u", Status::Critical, "refused");
        for r in [&ok, &down, &refused, &ok] {
            s.update(r);
        }
        assert_eq!((s.pass_count, s.fail_count), (2, 2));
        assert_eq!((s.count_2xx, s.count_5xx, s.network_failures), (2, 1, 1));
        assert_eq!(s.consecutive_failures, 0);
        assert_eq!(s.last_failure_summary.as_deref(), Some("refused"));
    }
}
