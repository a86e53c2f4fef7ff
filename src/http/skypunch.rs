//! Skypunch's targets, read from its SQL: the `INSERT INTO targets` rows of
//! `data.sql` or of a `mysqldump` of its database, so an operator moving
//! from Skypunch keeps the targets they have.
//!
//! Skypunch's `targets` table (schema 1.0) has, in order: id, name,
//! tenantid, status, status_description, previous_status, last_updated,
//! url, method, authn, authn_parms, pass_result, frequency, timeout,
//! pass_count, fail_count, count200, count300, count400, count500,
//! network_fails, repeated_fails, enabled. Rows of other tables
//! (`notifiers`, `versions`) are skipped: notify does the notifying.

use std::collections::BTreeMap;

/// A value in an INSERT.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// A quoted string, unescaped.
    Text(String),
    /// A bare token: a number, TRUE/FALSE, a function call's text.
    Bare(String),
}

impl Value {
    /// The value as text (NULL is empty).
    pub fn text(&self) -> &str {
        match self {
            Value::Null => "",
            Value::Text(s) | Value::Bare(s) => s,
        }
    }
}

/// One row of an INSERT: its table, the line it starts on, and its values
/// by column name.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The table inserted into (without quotes).
    pub table: String,
    /// 1-based line of the row's opening parenthesis.
    pub line: usize,
    /// Values by column.
    pub values: BTreeMap<String, Value>,
}

/// Skypunch's columns of `targets`, in table order.
pub const TARGET_COLUMNS: [&str; 23] = [
    "id",
    "name",
    "tenantid",
    "status",
    "status_description",
    "previous_status",
    "last_updated",
    "url",
    "method",
    "authn",
    "authn_parms",
    "pass_result",
    "frequency",
    "timeout",
    "pass_count",
    "fail_count",
    "count200",
    "count300",
    "count400",
    "count500",
    "network_fails",
    "repeated_fails",
    "enabled",
];

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    _text: &'a str,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            _text: text,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skip blanks and comments (`#`, `-- `, `/* */`).
    fn skip(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => self.skip_line(),
                Some('-') if self.chars.get(self.pos + 1) == Some(&'-') => self.skip_line(),
                Some('/') if self.chars.get(self.pos + 1) == Some(&'*') => {
                    self.bump();
                    self.bump();
                    while let Some(c) = self.bump() {
                        if c == '*' && self.peek() == Some('/') {
                            self.bump();
                            break;
                        }
                    }
                }
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    /// A word, or a `quoted` identifier.
    fn word(&mut self) -> String {
        self.skip();
        if self.peek() == Some('`') {
            self.bump();
            let mut w = String::new();
            while let Some(c) = self.bump() {
                if c == '`' {
                    break;
                }
                w.push(c);
            }
            return w;
        }
        let mut w = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' || c == '.' {
                w.push(c);
                self.bump();
            } else {
                break;
            }
        }
        w
    }

    fn expect(&mut self, want: char) -> Result<(), String> {
        self.skip();
        match self.bump() {
            Some(c) if c == want => Ok(()),
            Some(c) => Err(format!(
                "line {}: expected {want:?}, found {c:?}",
                self.line
            )),
            None => Err(format!(
                "line {}: expected {want:?}, found the end",
                self.line
            )),
        }
    }

    /// A quoted string with MySQL's escapes ('' and backslashes).
    fn string(&mut self, quote: char) -> Result<String, String> {
        let start = self.line;
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err(format!("line {start}: a string is not closed")),
                Some('\\') => match self.bump() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('0') => s.push('\0'),
                    Some(c) => s.push(c),
                    None => return Err(format!("line {start}: a string is not closed")),
                },
                Some(c) if c == quote => {
                    if self.peek() == Some(quote) {
                        self.bump();
                        s.push(quote);
                    } else {
                        return Ok(s);
                    }
                }
                Some(c) => s.push(c),
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip();
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.bump();
                self.string(q).map(Value::Text)
            }
            Some(_) => {
                let mut w = String::new();
                let mut depth = 0;
                while let Some(c) = self.peek() {
                    if depth == 0 && (c == ',' || c == ')') {
                        break;
                    }
                    if c == '(' {
                        depth += 1;
                    } else if c == ')' {
                        depth -= 1;
                    }
                    w.push(c);
                    self.bump();
                }
                let w = w.trim().to_string();
                if w.eq_ignore_ascii_case("null") {
                    Ok(Value::Null)
                } else if w.is_empty() {
                    Err(format!("line {}: a value is missing", self.line))
                } else {
                    Ok(Value::Bare(w))
                }
            }
            None => Err(format!("line {}: the file ends inside a row", self.line)),
        }
    }

    /// Skip to the end of a statement, minding strings.
    fn skip_statement(&mut self) -> Result<(), String> {
        while let Some(c) = self.bump() {
            match c {
                ';' => return Ok(()),
                '\'' | '"' => {
                    self.string(c)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Every row of every INSERT in `text`. `columns_of` gives a table's
/// columns for INSERTs without a column list.
pub fn rows(
    text: &str,
    columns_of: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<Vec<Row>, String> {
    let mut lx = Lexer::new(text);
    let mut out = Vec::new();
    loop {
        lx.skip();
        if lx.peek().is_none() {
            return Ok(out);
        }
        let first = lx.word();
        if !first.eq_ignore_ascii_case("insert") {
            // USE, SET, CREATE, LOCK ...: not ours.
            lx.skip_statement()?;
            continue;
        }
        let mut w = lx.word();
        while w.eq_ignore_ascii_case("ignore") || w.eq_ignore_ascii_case("low_priority") {
            w = lx.word();
        }
        if !w.eq_ignore_ascii_case("into") {
            return Err(format!("line {}: INSERT without INTO", lx.line));
        }
        let table = lx.word();
        let table = table.rsplit('.').next().unwrap_or(&table).to_string();
        lx.skip();
        let mut columns: Option<Vec<String>> = None;
        if lx.peek() == Some('(') {
            lx.bump();
            let mut cols = Vec::new();
            loop {
                cols.push(lx.word().to_ascii_lowercase());
                lx.skip();
                match lx.bump() {
                    Some(',') => continue,
                    Some(')') => break,
                    _ => return Err(format!("line {}: bad column list", lx.line)),
                }
            }
            columns = Some(cols);
        }
        let kw = lx.word();
        if !(kw.eq_ignore_ascii_case("values") || kw.eq_ignore_ascii_case("value")) {
            return Err(format!(
                "line {}: INSERT INTO {table} without VALUES",
                lx.line
            ));
        }
        let columns = columns.or_else(|| columns_of(&table));
        loop {
            lx.skip();
            let line = lx.line;
            lx.expect('(')?;
            let mut values = Vec::new();
            loop {
                values.push(lx.value()?);
                lx.skip();
                match lx.bump() {
                    Some(',') => continue,
                    Some(')') => break,
                    _ => return Err(format!("line {}: bad row", lx.line)),
                }
            }
            let named = match &columns {
                Some(cols) => {
                    if cols.len() != values.len() {
                        return Err(format!(
                            "line {line}: {} values for the {} columns of {table}",
                            values.len(),
                            cols.len()
                        ));
                    }
                    cols.iter().cloned().zip(values).collect()
                }
                None => values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("#{i}"), v))
                    .collect(),
            };
            out.push(Row {
                table: table.clone(),
                line,
                values: named,
            });
            lx.skip();
            match lx.bump() {
                Some(',') => continue,
                Some(';') | None => break,
                Some(c) => {
                    return Err(format!(
                        "line {}: expected , or ; after a row, found {c:?}",
                        lx.line
                    ))
                }
            }
        }
    }
}

/// Skypunch's `authn_parms`: `user=x,password=y[,osauthendpoint=..,tenantid=..]`.
pub fn params(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(text: &str) -> Vec<Row> {
        rows(text, &|t| {
            (t == "targets").then(|| TARGET_COLUMNS.iter().map(|c| c.to_string()).collect())
        })
        .expect("parses")
        .into_iter()
        .filter(|r| r.table == "targets")
        .collect()
    }

    #[test]
    fn skypunchs_own_data_sql_rows() {
        let text = "# SkyPunch\nUSE skypunch;\n\nINSERT INTO targets\nVALUES (0,'Google home page','0','NEW',NULL,'NEW','','http://www.google.com','GET','NONE','',200,10,10,0,0,0,0,0,0,0,0,1);\n\nINSERT INTO notifiers\nVALUES(0, 'gmail','SMTP','a@b','user=X,password=Y,server=smtp');\n";
        let rows = targets(text);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.line, 5);
        assert_eq!(r.values["name"], Value::Text("Google home page".into()));
        assert_eq!(r.values["status_description"], Value::Null);
        assert_eq!(r.values["pass_result"].text(), "200");
        assert_eq!(r.values["enabled"].text(), "1");
    }

    #[test]
    fn mysqldump_rows_escapes_and_column_lists() {
        let text = "/*!40101 SET NAMES utf8 */;\n-- dump\nINSERT INTO `targets` VALUES (1,'it''s','0','PASS','ok \\'fine\\'','PASS','2013-01-01 00:00:00','http://a/','GET','NONE','',200,10,10,5,1,5,0,0,1,0,0,1),(2,'b;c','0','FAIL',NULL,'PASS','2013-01-01 00:00:00','http://b/','HEAD','NONE','',204,10,5,0,0,0,0,0,0,0,0,0);\nINSERT INTO targets (name, url, enabled) VALUES ('c', 'http://c/', 1);";
        let rows = rows(text, &|t| {
            (t == "targets").then(|| TARGET_COLUMNS.iter().map(|c| c.to_string()).collect())
        })
        .expect("parses");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].values["name"].text(), "it's");
        assert_eq!(rows[0].values["status_description"].text(), "ok 'fine'");
        assert_eq!(rows[1].values["name"].text(), "b;c");
        assert_eq!(rows[1].values["method"].text(), "HEAD");
        assert_eq!(rows[2].values["url"].text(), "http://c/");
        assert_eq!(rows[2].line, 4);
    }

    #[test]
    fn broken_sql_says_where() {
        for (text, want) in [
            ("INSERT INTO targets VALUES (0,'x", "not closed"),
            (
                "INSERT INTO targets (name, url) VALUES ('a');",
                "1 values for the 2 columns",
            ),
            ("INSERT INTO targets VALUES (0,'a'\n", "line 2"),
            ("INSERT targets VALUES (1);", "without INTO"),
        ] {
            let e = rows(text, &|_| None).expect_err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
        assert_eq!(params("user=a, password=b=c")["password"], "b=c");
    }
}
