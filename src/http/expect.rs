//! What a response is expected to be: status codes, JSON fields, headers.

use serde_json::Value;

/// Status codes a response may have: `200`, `200,204`, `2xx`, `200-299`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusExpectation {
    ranges: Vec<(u16, u16)>,
    text: String,
}

impl StatusExpectation {
    /// Parse a comma-separated list of codes, `Nxx` classes and `A-B` ranges.
    pub fn parse(text: &str) -> Result<StatusExpectation, String> {
        let mut ranges = Vec::new();
        for raw in text.split(',') {
            let part = raw.trim();
            let bad = || {
                format!("--expect {text:?}: {part:?} is not a status code, class (2xx) or range (200-299)")
            };
            let code = |s: &str| -> Result<u16, String> {
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(bad)
            };
            let lower = part.to_ascii_lowercase();
            if lower.len() == 3 && lower.ends_with("xx") {
                let class = lower[..1].parse::<u16>().map_err(|_| bad())?;
                if !(1..=5).contains(&class) {
                    return Err(bad());
                }
                ranges.push((class * 100, class * 100 + 99));
            } else if let Some((a, b)) = part.split_once('-') {
                let (a, b) = (code(a)?, code(b)?);
                if a > b {
                    return Err(bad());
                }
                ranges.push((a, b));
            } else {
                let c = code(part)?;
                ranges.push((c, c));
            }
        }
        Ok(StatusExpectation {
            ranges,
            text: text.trim().to_string(),
        })
    }

    /// Whether `code` is expected.
    pub fn matches(&self, code: u16) -> bool {
        self.ranges.iter().any(|(a, b)| (*a..=*b).contains(&code))
    }

    /// As the operator wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A comparison in a JSON assertion.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(i64),
    Length,
    Type,
}

/// `--json '.status == "UP"'`, `--json '.items|length > 0'`, `--json .ready`.
#[derive(Debug, Clone)]
pub struct JsonAssertion {
    text: String,
    path: Vec<Segment>,
    op: Option<(Op, Value)>,
    regex: Option<regex::Regex>,
}

impl JsonAssertion {
    /// Parse `PATH [OP VALUE]`. PATH is jq-like (`.a.b`, `.items[0]`,
    /// `."odd key"`, `|length`, `|type`); OP is one of `== != < <= > >= =~`;
    /// VALUE is a JSON literal, or a bare word taken as a string.
    pub fn parse(text: &str) -> Result<JsonAssertion, String> {
        let err = |why: &str| format!("--json {text:?}: {why}");
        let src = text.trim();
        if !src.starts_with('.') {
            return Err(err("the path must start with '.' (e.g. .status == \"UP\")"));
        }
        let chars: Vec<char> = src.chars().collect();
        let mut i = 0;
        let mut path = Vec::new();
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                break;
            }
            match c {
                '.' => {
                    i += 1;
                    if i < chars.len() && chars[i] == '"' {
                        let start = i + 1;
                        let mut end = start;
                        while end < chars.len() && chars[end] != '"' {
                            end += 1;
                        }
                        if end >= chars.len() {
                            return Err(err("unterminated quoted key"));
                        }
                        path.push(Segment::Key(chars[start..end].iter().collect()));
                        i = end + 1;
                    } else {
                        let start = i;
                        while i < chars.len()
                            && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-')
                        {
                            i += 1;
                        }
                        if i > start {
                            path.push(Segment::Key(chars[start..i].iter().collect()));
                        }
                    }
                }
                '[' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && chars[end] != ']' {
                        end += 1;
                    }
                    if end >= chars.len() {
                        return Err(err("unterminated ["));
                    }
                    let inner: String = chars[start..end].iter().collect();
                    let inner = inner.trim();
                    if let Some(key) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                        path.push(Segment::Key(key.to_string()));
                    } else {
                        let n: i64 = inner
                            .parse()
                            .map_err(|_| err(&format!("[{inner}] is not an index")))?;
                        path.push(Segment::Index(n));
                    }
                    i = end + 1;
                }
                '|' => {
                    let mut start = i + 1;
                    while start < chars.len() && chars[start].is_whitespace() {
                        start += 1;
                    }
                    let mut end = start;
                    while end < chars.len() && !chars[end].is_whitespace() && chars[end] != '|' {
                        end += 1;
                    }
                    let func: String = chars[start..end].iter().collect();
                    match func.trim() {
                        "length" => path.push(Segment::Length),
                        "type" => path.push(Segment::Type),
                        other => {
                            return Err(err(&format!("unknown function |{other} (length, type)")))
                        }
                    }
                    i = end;
                }
                _ => return Err(err(&format!("unexpected {c:?} in the path"))),
            }
            // Allow spaces around a pipe: `.items | length`.
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j < chars.len() && chars[j] == '|' {
                i = j;
            }
        }
        let rest: String = chars[i..].iter().collect();
        let rest = rest.trim();
        let (op, regex) = if rest.is_empty() {
            (None, None)
        } else {
            let ops = [
                ("==", Op::Eq),
                ("!=", Op::Ne),
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("=~", Op::Match),
                ("<", Op::Lt),
                (">", Op::Gt),
            ];
            let Some((sym, op)) = ops.iter().find(|(sym, _)| rest.starts_with(sym)) else {
                return Err(err(&format!(
                    "{rest:?} does not start with an operator (== != < <= > >= =~)"
                )));
            };
            let value_text = rest[sym.len()..].trim();
            if value_text.is_empty() {
                return Err(err(&format!("nothing to compare with after {sym}")));
            }
            let value = serde_json::from_str::<Value>(value_text)
                .unwrap_or_else(|_| Value::String(value_text.to_string()));
            let regex = if *op == Op::Match {
                let pattern = value
                    .as_str()
                    .ok_or_else(|| err("=~ needs a string pattern"))?;
                Some(regex::Regex::new(pattern).map_err(|e| err(&crate::cli::regex_words(&e)))?)
            } else {
                if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge)
                    && !(value.is_number() || value.is_string())
                {
                    return Err(err("< <= > >= compare numbers or strings"));
                }
                None
            };
            (Some((*op, value)), regex)
        };
        Ok(JsonAssertion {
            text: src.to_string(),
            path,
            op,
            regex,
        })
    }

    /// The assertion as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn select<'a>(&self, doc: &'a Value) -> Result<std::borrow::Cow<'a, Value>, String> {
        use std::borrow::Cow;
        let mut current: Cow<'a, Value> = Cow::Borrowed(doc);
        let mut shown = String::new();
        for seg in &self.path {
            let next: Option<Cow<'a, Value>> = match (seg, current) {
                (Segment::Key(k), Cow::Borrowed(v)) => {
                    shown.push('.');
                    shown.push_str(k);
                    v.get(k).map(Cow::Borrowed)
                }
                (Segment::Key(k), Cow::Owned(v)) => {
                    shown.push('.');
                    shown.push_str(k);
                    v.get(k).cloned().map(Cow::Owned)
                }
                (Segment::Index(n), cur) => {
                    shown.push_str(&format!("[{n}]"));
                    let len = cur.as_array().map(|a| a.len() as i64).unwrap_or(0);
                    let idx = if *n < 0 { len + n } else { *n };
                    match cur {
                        Cow::Borrowed(v) => v
                            .as_array()
                            .and_then(|a| a.get(idx as usize))
                            .map(Cow::Borrowed),
                        Cow::Owned(v) => v
                            .as_array()
                            .and_then(|a| a.get(idx as usize))
                            .cloned()
                            .map(Cow::Owned),
                    }
                    .filter(|_| idx >= 0)
                }
                (Segment::Length, cur) => {
                    shown.push_str("|length");
                    let n = match &*cur {
                        Value::Array(a) => Some(a.len()),
                        Value::Object(o) => Some(o.len()),
                        Value::String(s) => Some(s.chars().count()),
                        Value::Null => Some(0),
                        _ => None,
                    };
                    match n {
                        Some(n) => Some(Cow::Owned(Value::from(n))),
                        None => return Err(format!("{shown}: {} has no length", type_name(&cur))),
                    }
                }
                (Segment::Type, cur) => {
                    shown.push_str("|type");
                    Some(Cow::Owned(Value::from(type_name(&cur))))
                }
            };
            match next {
                Some(v) => current = v,
                None => {
                    return Err(format!(
                        "{} not found",
                        if shown.is_empty() { "." } else { &shown }
                    ))
                }
            }
        }
        Ok(current)
    }

    /// Check the assertion against a parsed document: `Err` says what failed.
    pub fn check(&self, doc: &Value) -> Result<String, String> {
        let value = self.select(doc)?;
        let Some((op, want)) = &self.op else {
            return match &*value {
                Value::Null | Value::Bool(false) => Err(format!("{} is {}", self.text, value)),
                v => Ok(format!("{} is {}", self.text, short(v))),
            };
        };
        let ok = match op {
            Op::Eq => json_eq(&value, want),
            Op::Ne => !json_eq(&value, want),
            Op::Match => match (&*value, &self.regex) {
                (Value::String(s), Some(re)) => re.is_match(s),
                (other, Some(re)) => re.is_match(&other.to_string()),
                _ => false,
            },
            Op::Lt | Op::Le | Op::Gt | Op::Ge => match compare(&value, want) {
                Some(ord) => match op {
                    Op::Lt => ord.is_lt(),
                    Op::Le => ord.is_le(),
                    Op::Gt => ord.is_gt(),
                    _ => ord.is_ge(),
                },
                None => false,
            },
        };
        if ok {
            Ok(format!("{} (got {})", self.text, short(&value)))
        } else {
            Err(format!("{} failed: got {}", self.text, short(&value)))
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// `--expect-header 'Name: regex'` or `--expect-header Name` (present).
#[derive(Debug, Clone)]
pub struct HeaderAssertion {
    /// Header name (case-insensitive).
    pub name: String,
    /// Pattern the value must match, if any.
    pub pattern: Option<regex::Regex>,
}

impl HeaderAssertion {
    /// Parse `NAME[: REGEX]`.
    pub fn parse(text: &str) -> Result<HeaderAssertion, String> {
        let (name, pattern) = match text.split_once(':') {
            Some((n, p)) => (n.trim(), Some(p.trim())),
            None => (text.trim(), None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "--expect-header {text:?}: want NAME or 'NAME: REGEX'"
            ));
        }
        let pattern = pattern
            .filter(|p| !p.is_empty())
            .map(|p| {
                regex::Regex::new(p).map_err(|e| {
                    format!("--expect-header {text:?}: {}", crate::cli::regex_words(&e))
                })
            })
            .transpose()?;
        Ok(HeaderAssertion {
            name: name.to_string(),
            pattern,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_expectations() {
        let e = StatusExpectation::parse("200,204").expect("valid");
        assert!(e.matches(200) && e.matches(204) && !e.matches(201));
        let e = StatusExpectation::parse("2xx").expect("valid");
        assert!(e.matches(200) && e.matches(299) && !e.matches(300));
        let e = StatusExpectation::parse("200-299, 302").expect("valid");
        assert!(e.matches(250) && e.matches(302) && !e.matches(301));
        for bad in ["", "abc", "99", "600", "299-200", "6xx", "2x"] {
            assert!(StatusExpectation::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_assertions() {
        let doc = json!({"status": "UP", "items": [1, 2, 3], "n": 5, "ok": true,
                         "odd key": {"x": null}, "version": "2.10"});
        let pass = [
            ".status == \"UP\"",
            ".status == UP",
            ".items|length > 0",
            ".items | length == 3",
            ".items[0] == 1",
            ".items[-1] == 3",
            ".n >= 5",
            ".n != 6",
            ".ok",
            ".status =~ \"^U\"",
            ".\"odd key\"|type == \"object\"",
            ".version > \"2.1\"",
        ];
        for text in pass {
            let a = JsonAssertion::parse(text).expect(text);
            assert!(a.check(&doc).is_ok(), "{text}: {:?}", a.check(&doc));
        }
        let fail = [
            (
                ".status == \"DOWN\"",
                ".status == \"DOWN\" failed: got \"UP\"",
            ),
            (".missing == 1", ".missing not found"),
            (".items[7]", ".items[7] not found"),
            (".\"odd key\".x", ".\"odd key\".x is null"),
            (".n|length", ".n|length: number has no length"),
        ];
        for (text, why) in fail {
            let a = JsonAssertion::parse(text).expect(text);
            assert_eq!(a.check(&doc), Err(why.to_string()), "{text}");
        }
    }

    #[test]
    fn json_assertion_syntax_errors() {
        for bad in [
            "status == 1",
            ".a ==",
            ".a ~ 1",
            ".a|nope",
            ".a[x]",
            ".a =~ \"(\"",
            ".a < true",
        ] {
            assert!(JsonAssertion::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn header_assertions() {
        let h = HeaderAssertion::parse("Content-Type: ^application/json").expect("valid");
        assert_eq!(h.name, "Content-Type");
        assert!(h
            .pattern
            .expect("pattern")
            .is_match("application/json; charset=utf-8"));
        assert!(HeaderAssertion::parse("X-Request-Id")
            .expect("valid")
            .pattern
            .is_none());
        assert!(HeaderAssertion::parse(": x").is_err());
    }
}
