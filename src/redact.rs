//! Keeping secrets out of everything a run prints or stores: one redaction
//! for every URL that reaches any output, and a scrubber that removes known
//! secrets (and their base64 forms) from text a peer sent back or a record
//! is about to carry.

use std::borrow::Cow;

/// What a redacted secret is replaced with.
pub const MASK: &str = "***";

/// Query parameters whose values are credentials, by name (any case).
const SECRET_PARAMS: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "auth",
    "client_secret",
    "code",
    "key",
    "pass",
    "passwd",
    "password",
    "private_token",
    "secret",
    "sig",
    "signature",
    "token",
    "x-auth-token",
];

/// A URL fit for output: userinfo (`user:password@`) becomes `***@`, and
/// the values of query parameters that carry credentials (`token`,
/// `password`, `key`, `sig`...) become `***`. Works on text that is not a
/// valid URL too (an error message must not echo a password either).
pub fn url(text: &str) -> Cow<'_, str> {
    let (scheme_end, rest_start) = match text.find("://") {
        Some(i) => (i + 3, i + 3),
        None => (0, 0),
    };
    let rest = &text[rest_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let after = &rest[authority_len..];
    let userinfo = authority.rfind('@');
    let query = after.find('?').map(|q| {
        let end = after[q..].find('#').map(|h| q + h).unwrap_or(after.len());
        (q + 1, end)
    });
    let query_has_secret = query.is_some_and(|(a, b)| {
        after[a..b]
            .split('&')
            .any(|pair| is_secret_param(pair.split('=').next().unwrap_or("")))
    });
    if userinfo.is_none() && !query_has_secret {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..scheme_end]);
    match userinfo {
        Some(at) => {
            out.push_str(MASK);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    match query {
        Some((a, b)) if query_has_secret => {
            out.push_str(&after[..a]);
            let pairs: Vec<String> = after[a..b]
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret_param(k) => format!("{k}={MASK}"),
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
            out.push_str(&after[b..]);
        }
        _ => out.push_str(after),
    }
    Cow::Owned(out)
}

fn is_secret_param(name: &str) -> bool {
    SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// Every URL-looking word of a text redacted with [`url`]: for messages
/// that quote a URL among other words (a library's error, a trace line).
pub fn urls_in(text: &str) -> Cow<'_, str> {
    if !text.contains('@') && !text.contains('?') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(|c: char| !is_word_break(c)).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(is_word_break).unwrap_or(rest.len());
        let word = &rest[..end];
        let redacted = if word.contains("://") {
            url(word)
        } else {
            Cow::Borrowed(word)
        };
        changed |= matches!(redacted, Cow::Owned(_));
        out.push_str(&redacted);
        rest = &rest[end..];
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

fn is_word_break(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | '(' | ')')
}

/// Removes known secrets from text: each secret as it is, and the parts of
/// its base64 encoding that do not depend on what surrounds it (an SMTP
/// server that quotes `AUTH PLAIN <base64>` back, a server that echoes a
/// Basic `Authorization` header).
#[derive(Clone, Default)]
pub struct Scrubber {
    matcher: Option<aho_corasick::AhoCorasick>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrubber")
    }
}

/// Secrets shorter than this are not scrubbed from free text: a one-letter
/// password would turn every such letter of every message into `***`.
const MIN_SECRET: usize = 4;

/// Base64 fragments shorter than this are not scrubbed (too likely to occur
/// by chance in other base64 text).
const MIN_FRAGMENT: usize = 8;

impl Scrubber {
    /// A scrubber for these secrets (empty and short ones are ignored).
    pub fn new<I, S>(secrets: I) -> Scrubber
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns: Vec<String> = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.len() < MIN_SECRET {
                continue;
            }
            patterns.push(secret.to_string());
            // Within a longer base64 text the secret starts at one of three
            // alignments; the whole 3-byte groups of each are fixed.
            for offset in 0..3 {
                let bytes = &secret.as_bytes()[offset.min(secret.len())..];
                let whole = bytes.len() / 3 * 3;
                let fragment = base64(&bytes[..whole]);
                if fragment.len() >= MIN_FRAGMENT {
                    patterns.push(fragment);
                }
            }
            let encoded = percent_encode(secret);
            if encoded != secret {
                patterns.push(encoded);
            }
        }
        patterns.sort();
        patterns.dedup();
        if patterns.is_empty() {
            return Scrubber::default();
        }
        let matcher = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok();
        Scrubber { matcher }
    }

    /// Whether it knows no secret at all.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `text` with every known secret replaced by `***`.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.matcher {
            Some(m) if m.is_match(text) => {
                let mut out = String::with_capacity(text.len());
                m.replace_all_with(text, &mut out, |_, _, dst| {
                    dst.push_str(MASK);
                    true
                });
                Cow::Owned(out)
            }
            _ => Cow::Borrowed(text),
        }
    }

    /// Scrub a string in place.
    pub fn scrub_string(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.scrub(text) {
            *text = clean;
        }
    }

    /// Scrub every string of a JSON value in place (keys too).
    pub fn scrub_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => self.scrub_string(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_json(v)),
            serde_json::Value::Object(map) => self.scrub_map(map),
            _ => {}
        }
    }

    fn scrub_map(&self, map: &mut serde_json::Map<String, serde_json::Value>) {
        let dirty = map.keys().any(|k| matches!(self.scrub(k), Cow::Owned(_)));
        if dirty {
            let old = std::mem::take(map);
            for (k, v) in old {
                map.insert(self.scrub(&k).into_owned(), v);
            }
        }
        map.values_mut().for_each(|v| self.scrub_json(v));
    }

    /// Scrub every text of a record, and redact the URLs in it.
    pub fn scrub_record(&self, r: &mut crate::report::Record) {
        redact_record_urls(r);
        if self.is_empty() {
            return;
        }
        for text in [&mut r.target, &mut r.name, &mut r.summary] {
            self.scrub_string(text);
        }
        for step in &mut r.trace {
            if let Some(d) = &mut step.detail {
                self.scrub_string(d);
            }
        }
        self.scrub_map(&mut r.details);
        for v in r.labels.values_mut() {
            self.scrub_string(v);
        }
    }
}

/// The URLs a record carries (target, summary, trace, string details),
/// redacted with [`url`].
pub fn redact_record_urls(r: &mut crate::report::Record) {
    fn fix(text: &mut String) {
        if let Cow::Owned(clean) = urls_in(text) {
            *text = clean;
        }
    }
    fix(&mut r.target);
    fix(&mut r.name);
    fix(&mut r.summary);
    for step in &mut r.trace {
        if let Some(d) = &mut step.detail {
            fix(d);
        }
    }
    for v in r.details.values_mut() {
        if let serde_json::Value::String(s) = v {
            fix(s);
        }
    }
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Standard base64 decoded as UTF-8 text, if it is both.
pub fn decode_base64(text: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Every byte but RFC 3986's unreserved characters, percent-encoded (as
/// a secret appears in a query string).
fn percent_encode(text: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_secret_parameters_leave_urls() {
        assert_eq!(url("https://u:pw@h:8443/x?y=1"), "https://***@h:8443/x?y=1");
        assert_eq!(
            url("http://h/p?token=abc&x=1#f"),
            "http://h/p?token=***&x=1#f"
        );
        assert_eq!(
            url("https://h/a@b"),
            "https://h/a@b",
            "an @ in the path is not userinfo"
        );
        assert_eq!(url("u:pw@h/x"), "***@h/x", "no scheme: still redacted");
        assert!(matches!(url("https://h/x"), Cow::Borrowed(_)));
        assert_eq!(
            urls_in("invalid URL \"http://u:s3cret@bad host/\": bad"),
            "invalid URL \"http://***@bad host/\": bad"
        );
    }

    #[test]
    fn secrets_and_their_base64_are_scrubbed() {
        let s = Scrubber::new(["hunter2-canary", "x"]);
        assert_eq!(s.scrub("pw hunter2-canary!"), "pw ***!");
        // AUTH PLAIN: "\0user\0password" in base64, quoted back by a server.
        for prefix in ["", "\0u\0", "\0us\0", "\0use\0"] {
            let blob = base64(format!("{prefix}hunter2-canary").as_bytes());
            let said = format!("535 5.7.8 bad credentials {blob}");
            let clean = s.scrub(&said);
            assert!(
                !clean.contains(&blob[blob.len() / 2..]),
                "{prefix:?}: {clean}"
            );
            assert!(clean.contains(MASK), "{clean}");
        }
        assert_eq!(
            s.scrub("a x b"),
            "a x b",
            "a one-letter secret is not scrubbed"
        );
        assert_eq!(s.scrub("p=hunter2-canary"), "p=***");
        assert_eq!(
            Scrubber::new(["a b/c"]).scrub("q=a%20b%2Fc"),
            "q=***",
            "percent-encoded too"
        );
        let mut v = serde_json::json!({"k": ["hunter2-canary"], "hunter2-canary": 1});
        s.scrub_json(&mut v);
        assert_eq!(v, serde_json::json!({"k": ["***"], "***": 1}));
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
