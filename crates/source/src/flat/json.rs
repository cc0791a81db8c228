//! The flat JSON decoder: one JSON object per line, read into the fields
//! a query asks for; unread fields are skipped with a scan for the closing
//! quote.
//!
//! It takes only what arrow's JSON decoder (built with `coerce_primitive`)
//! reads the same way. A nested value, a quoted number for a number field,
//! a record that is not an object or spans lines, a duplicate key, an
//! unknown escape, text that is not JSON, or invalid UTF-8 anywhere in a
//! line (read field or not, as arrow refuses it) is a [`Bail`].

use super::{Bail, Col, Lines, Out, Step, valid_number};
use arrow::datatypes::SchemaRef;

/// One decoder per batch stream of one file (see the module docs).
pub(crate) struct FlatJson {
    out: Out,
    names: Vec<Box<[u8]>>,
    /// The record number that last set each column (duplicate keys bail).
    set_in: Vec<u64>,
    records: u64,
    /// A string value with escapes, unescaped.
    scratch: String,
    /// The keys of the last record, in order, with their columns.
    order: Vec<(Box<[u8]>, Option<usize>)>,
}

impl FlatJson {
    /// A decoder of `schema`'s fields, or None when one has a type it does
    /// not read (arrow's decoder does those).
    pub(crate) fn new(schema: SchemaRef, batch_size: usize) -> Option<Self> {
        let cols = schema
            .fields()
            .iter()
            .map(|f| Col::for_type(f.data_type(), batch_size))
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            names: schema.fields().iter().map(|f| f.name().as_bytes().into()).collect(),
            set_in: vec![u64::MAX; cols.len()],
            out: Out::new(schema, cols),
            records: 0,
            scratch: String::new(),
            order: Vec::new(),
        })
    }

    /// Decodes the records of one whole line (usually one).
    pub(crate) fn line(&mut self, line: &[u8]) -> Step<()> {
        // arrow refuses invalid UTF-8 anywhere in its input
        let line = simdutf8::basic::from_utf8(line).map_err(|_| Bail)?;
        let mut at = skip_ws(line.as_bytes(), 0);
        while at < line.len() {
            at = skip_ws(line.as_bytes(), self.record(line, at)?);
        }
        Ok(())
    }

    /// The column of the `nth` key of a record: records of one file mostly
    /// list their keys in one order, so the last record's order is tried
    /// first.
    fn column_of(&mut self, nth: usize, key: &[u8]) -> Option<usize> {
        if let Some((k, col)) = self.order.get(nth)
            && **k == *key
        {
            return *col;
        }
        let col = self.names.iter().position(|n| **n == *key);
        let entry = (key.into(), col);
        match self.order.get_mut(nth) {
            Some(e) => *e = entry,
            None => self.order.push(entry),
        }
        col
    }

    /// Decodes the record starting at `buf[at]` (a `{`); returns where it
    /// ends. A record `buf` cuts off bails.
    fn record(&mut self, line: &str, at: usize) -> Step<usize> {
        let buf = line.as_bytes();
        if buf[at] != b'{' {
            return Err(Bail);
        }
        let record = self.records;
        let mut p = skip_ws(buf, at + 1);
        let mut nth = 0;
        let end = match buf.get(p) {
            None => return Err(Bail),
            Some(b'}') => p + 1,
            Some(_) => loop {
                // "key"
                if *buf.get(p).ok_or(Bail)? != b'"' {
                    return Err(Bail);
                }
                let close = quote_or_escape(&buf[p + 1..]).ok_or(Bail)?;
                if buf[p + 1 + close] == b'\\' {
                    return Err(Bail);
                }
                let key = &buf[p + 1..p + 1 + close];
                p = skip_ws(buf, p + close + 2);
                if buf.get(p) != Some(&b':') {
                    return Err(Bail);
                }
                p = skip_ws(buf, p + 1);
                if p == buf.len() {
                    return Err(Bail);
                }
                let col = self.column_of(nth, key);
                nth += 1;
                let next = match col {
                    Some(i) => {
                        if self.set_in[i] == record {
                            return Err(Bail);
                        }
                        self.set_in[i] = record;
                        self.value(i, line, p)?
                    }
                    None => skip_value(buf, p)?,
                };
                p = skip_ws(buf, next);
                match buf.get(p) {
                    Some(b',') => p = skip_ws(buf, p + 1),
                    Some(b'}') => break p + 1,
                    _ => return Err(Bail),
                }
            },
        };
        for (i, col) in self.out.cols.iter_mut().enumerate() {
            if self.set_in[i] != record {
                col.null();
            }
        }
        self.records += 1;
        self.out.rows += 1;
        Ok(end)
    }

    /// Parses the value at `buf[p]` into column `i`; returns where it ends.
    fn value(&mut self, i: usize, line: &str, p: usize) -> Step<usize> {
        let buf = line.as_bytes();
        let first = buf[p];
        if first == b'"' {
            let (end, escaped) = string_end(buf, p)?;
            // (quotes are ASCII: the slice is on character boundaries)
            let raw = line.get(p + 1..end - 1).ok_or(Bail)?;
            let text: &str = if escaped {
                unescape(raw, &mut self.scratch)?;
                &self.scratch
            } else {
                raw
            };
            match &mut self.out.cols[i] {
                Col::Str(b) => b.append_value(text),
                Col::Ts(b, tz) => b.append_value(super::ts_micros(tz, text)?),
                // a quoted number or boolean: arrow parses it its own way
                _ => return Err(Bail),
            }
            return Ok(end);
        }
        if first == b'-' || first.is_ascii_digit() {
            let end = number_end(buf, p);
            let text = line.get(p..end).ok_or(Bail)?;
            match &mut self.out.cols[i] {
                Col::Str(b) => b.append_value(text),
                Col::I64(b) => b.append_value(text.parse::<i64>().map_err(|_| Bail)?),
                Col::F64(b) => {
                    valid_number(text)?;
                    b.append_value(text.parse::<f64>().map_err(|_| Bail)?)
                }
                _ => return Err(Bail),
            }
            return Ok(end);
        }
        let (end, literal) = literal(buf, p)?;
        match (&mut self.out.cols[i], literal) {
            (col, Literal::Null) => col.null(),
            (Col::Bool(b), Literal::True) => b.append_value(true),
            (Col::Bool(b), Literal::False) => b.append_value(false),
            (Col::Str(b), Literal::True) => b.append_value("true"),
            (Col::Str(b), Literal::False) => b.append_value("false"),
            _ => return Err(Bail),
        }
        Ok(end)
    }
}

impl Lines for FlatJson {
    fn line(&mut self, line: &[u8]) -> Step<()> {
        FlatJson::line(self, line)
    }
    fn out(&mut self) -> &mut Out {
        &mut self.out
    }
    fn out_ref(&self) -> &Out {
        &self.out
    }
}

fn skip_ws(buf: &[u8], mut p: usize) -> usize {
    while p < buf.len() && matches!(buf[p], b' ' | b'\t' | b'\n' | b'\r') {
        p += 1;
    }
    p
}

/// The end (after the closing quote) of the string at `buf[p]`, and
/// whether it has escapes.
fn string_end(buf: &[u8], p: usize) -> Step<(usize, bool)> {
    let mut q = p + 1;
    let mut escaped = false;
    loop {
        q += quote_or_escape(buf.get(q..).ok_or(Bail)?).ok_or(Bail)?;
        if buf[q] == b'"' {
            return Ok((q + 1, escaped));
        }
        // the escaped character; \u's four digits are checked by unescape
        escaped = true;
        q += 2;
    }
}

/// The first `"` or `\\` of `s`. Most values are short: a plain loop over
/// their first bytes costs less than setting up a vector search.
fn quote_or_escape(s: &[u8]) -> Option<usize> {
    const SHORT: usize = 24;
    let head = &s[..s.len().min(SHORT)];
    if let Some(i) = head.iter().position(|b| *b == b'"' || *b == b'\\') {
        return Some(i);
    }
    if s.len() <= SHORT {
        return None;
    }
    memchr::memchr2(b'"', b'\\', &s[SHORT..]).map(|i| i + SHORT)
}

/// Where a number token at `buf[p]` ends: the characters arrow's tape
/// decoder takes as a number.
fn number_end(buf: &[u8], p: usize) -> usize {
    let mut q = p;
    while q < buf.len() && matches!(buf[q], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
        q += 1;
    }
    q
}

#[derive(Clone, Copy)]
enum Literal {
    True,
    False,
    Null,
}

fn literal(buf: &[u8], p: usize) -> Step<(usize, Literal)> {
    let (word, lit): (&[u8], _) = match buf[p] {
        b't' => (b"true", Literal::True),
        b'f' => (b"false", Literal::False),
        b'n' => (b"null", Literal::Null),
        _ => return Err(Bail),
    };
    if !buf[p..].starts_with(word) {
        return Err(Bail);
    }
    Ok((p + word.len(), lit))
}

/// Skips an unread field's value; nested values bail.
fn skip_value(buf: &[u8], p: usize) -> Step<usize> {
    match buf[p] {
        b'"' => Ok(string_end(buf, p)?.0),
        b'-' | b'0'..=b'9' => Ok(number_end(buf, p)),
        _ => Ok(literal(buf, p)?.0),
    }
}

/// The text of an escaped JSON string body into `out`.
fn unescape(raw: &str, out: &mut String) -> Step<()> {
    out.clear();
    let mut rest = raw;
    loop {
        let Some(i) = memchr::memchr(b'\\', rest.as_bytes()) else {
            out.push_str(rest);
            return Ok(());
        };
        out.push_str(&rest[..i]);
        let esc = *rest.as_bytes().get(i + 1).ok_or(Bail)?;
        // an escape is one ASCII character (others bail below)
        rest = rest.get(i + 2..).ok_or(Bail)?;
        let c = match esc {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(rest)?;
                rest = rest.get(4..).ok_or(Bail)?;
                if (0xd800..0xdc00).contains(&hi) {
                    // a surrogate pair: \uD83D\uDE00
                    let lo = rest.strip_prefix("\\u").ok_or(Bail).and_then(hex4)?;
                    if !(0xdc00..0xe000).contains(&lo) {
                        return Err(Bail);
                    }
                    rest = rest.get(6..).ok_or(Bail)?;
                    char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)).ok_or(Bail)?
                } else {
                    char::from_u32(hi).ok_or(Bail)?
                }
            }
            _ => return Err(Bail),
        };
        out.push(c);
    }
}

fn hex4(s: &str) -> Step<u32> {
    let digits = s.get(..4).ok_or(Bail)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Bail);
    }
    u32::from_str_radix(digits, 16).map_err(|_| Bail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::tests::{feed, schema};
    use arrow::array::RecordBatch;

    fn arrow_batch(input: &[u8]) -> Option<RecordBatch> {
        let mut d = arrow::json::ReaderBuilder::new(schema())
            .with_coerce_primitive(true)
            .with_batch_size(1 << 20)
            .build_decoder()
            .ok()?;
        let n = d.decode(input).ok()?;
        assert_eq!(n, input.len());
        d.flush().ok()?
    }

    fn flat_batch(input: &[u8], step: usize) -> Step<Option<RecordBatch>> {
        feed(&mut FlatJson::new(schema(), 4).ok_or(Bail)?, input, step, 4)
    }

    const SAME: &[&str] = &[
        r#"{"ts":"2026-11-24T01:02:03Z","s":"a","n":1,"f":1.5,"b":true}"#,
        r#"{"b":false,"f":-0.25e3,"n":-7,"s":"b c","ts":"2026-11-24 01:02:03.123456+08:00"}"#,
        r#"{"x":"skipped \" \\ \u00e9","y":12.5e-3,"z":null,"w":true,"s":"kept"}"#,
        r#"{}"#,
        r#"{"s":null,"n":null,"f":null,"b":null,"ts":null}"#,
        r#"{"s":12.50}"#,
        r#"{"s":true}"#,
        r#"{"s":"tab\tnew\nline \"q\" \/ \u00e9 \ud83d\ude00"}"#,
        r#"  {  "s" : "spaced" , "n" : 3 }  "#,
        r#"{"n":1}{"n":2} {"n":3}"#,
        r#"{"f":10}"#,
        r#"{"ts":"2026-11-24T01:02:03+01:00","s":"ünïcödé"}"#,
    ];

    #[test]
    fn flat_records_decode_as_arrow_decodes_them_in_any_chunking() {
        for lines in [SAME.join("\n"), SAME.join("\r\n") + "\r\n", SAME.join("\n\n") + "\n"] {
            let want = arrow_batch(lines.as_bytes()).expect("arrow reads the flat cases");
            for step in [1, 3, 7, 64, lines.len()] {
                let got = flat_batch(lines.as_bytes(), step).unwrap_or_else(|_| panic!("bailed at step {step}"));
                assert_eq!(got.as_ref(), Some(&want), "step {step}");
            }
        }
    }

    #[test]
    fn anything_else_bails_so_arrow_decides() {
        let bails: &[&[u8]] = &[
            br#"{"s":{"nested":1}}"#,
            br#"{"x":[1,2]}"#,
            br#"{"n":"12"}"#,
            br#"{"n":1.5}"#,
            br#"{"n":99999999999999999999}"#,
            br#"{"f":"1.5"}"#,
            br#"{"f":01}"#,
            br#"{"b":"true"}"#,
            br#"{"ts":1700000000}"#,
            br#"{"ts":"yesterday"}"#,
            br#"{"s\u0041":1}"#,
            br#"{"s":"a","s":"b"}"#,
            br#"{"x":tru}"#,
            br#"{"s":"bad \q escape"}"#,
            br#"{"s":"a"},"#,
            br#"[{"s":"a"}]"#,
            br#"{"s":"a""#,
            br#"{"s":"a","#,
            b"{\"x\":\"\xff\"}",
            b"{\"s\":\"a\"}\n{\"s\":",
        ];
        for input in bails {
            assert!(
                flat_batch(input, input.len()).is_err(),
                "{:?} should bail",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn a_record_split_over_lines_bails_and_blank_input_is_no_batch() {
        assert!(flat_batch(b"{\"s\":\n\"a\"}\n", 64).is_err());
        assert_eq!(flat_batch(b"\n \n\r\n", 2).ok(), Some(None));
    }
}
