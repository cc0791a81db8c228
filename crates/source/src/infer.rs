//! Schema inference: sample files and rows, map values to valtypes.
//!
//! JSON: a boolean is `boolean`, an integer `long`, another number `float`,
//! an RFC 3339 string `date`, another string `string`, an object or array
//! `string` (read back as its JSON text). CSV fields are tried as long,
//! float, boolean (`true` / `false`), date, then string; an empty field says
//! nothing. Where samples disagree, long + float widen to float and any
//! other mix to string; a field only ever null is a string. Fields keep the
//! order they are first seen in; csv fields are `column_1`... without a
//! header.

use crate::SourceFile;
use crate::error::{Error, Result};
use crate::rows::{csv_fields, csv_record_len};
use crate::scan::open_file;
use pbatch_model::{ErrorCode, SchemaEntry, ValType};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

/// How much of a source inference reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Files, from the start of the listing.
    pub files: usize,
    /// Records per file.
    pub rows: usize,
}

impl Default for Sample {
    fn default() -> Self {
        Self { files: 8, rows: 1000 }
    }
}

/// Bytes of one file a sample reads at most (a file of one huge line).
const MAX_SAMPLE_BYTES: u64 = 64 << 20;

/// Accumulates field types across records and files.
#[derive(Debug, Default)]
pub(crate) struct Inferred {
    fields: Vec<(String, Option<ValType>)>,
}

impl Inferred {
    fn see(&mut self, name: &str, t: Option<ValType>) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) => *old = widen(old.take(), t),
            None => self.fields.push((name.to_string(), t)),
        }
    }

    /// Merges into the `i`-th field (csv: fields are positional; the first
    /// file's names stay).
    fn see_at(&mut self, i: usize, name: &str, t: Option<ValType>) {
        match self.fields.get_mut(i) {
            Some((_, old)) => *old = widen(old.take(), t),
            None => self.fields.push((name.to_string(), t)),
        }
    }

    /// The fields as schema entries (never-seen types are strings).
    pub(crate) fn entries(&self) -> Vec<SchemaEntry> {
        self.fields
            .iter()
            .map(|(n, t)| SchemaEntry::new(n, t.clone().unwrap_or(ValType::String)))
            .collect()
    }
}

fn widen(a: Option<ValType>, b: Option<ValType>) -> Option<ValType> {
    match (a, b) {
        (None, t) | (t, None) => t,
        (Some(a), Some(b)) if a == b => Some(a),
        (Some(ValType::Long), Some(ValType::Float)) | (Some(ValType::Float), Some(ValType::Long)) => {
            Some(ValType::Float)
        }
        _ => Some(ValType::String),
    }
}

fn is_rfc3339(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

fn json_type(v: &Value) -> Option<ValType> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => ValType::Boolean,
        Value::Number(n) if n.is_i64() => ValType::Long,
        Value::Number(_) => ValType::Float,
        Value::String(s) if is_rfc3339(s) => ValType::Date,
        _ => ValType::String,
    })
}

fn csv_type(s: &str) -> Option<ValType> {
    if s.is_empty() {
        return None;
    }
    Some(if s.parse::<i64>().is_ok() {
        ValType::Long
    } else if s.bytes().any(|b| b.is_ascii_digit()) && s.parse::<f64>().is_ok_and(f64::is_finite) {
        ValType::Float
    } else if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        ValType::Boolean
    } else if is_rfc3339(s) {
        ValType::Date
    } else {
        ValType::String
    })
}

/// Samples `input` (decompressed) of json records into `acc`.
pub(crate) fn sample_json(input: &mut dyn Read, rows: usize, acc: &mut Inferred) -> std::io::Result<()> {
    let mut r = BufReader::new(input.take(MAX_SAMPLE_BYTES));
    let first = loop {
        let buf = r.fill_buf()?;
        match buf
            .iter()
            .position(|b| !b.is_ascii_whitespace() && *b != 0xef && *b != 0xbb && *b != 0xbf)
        {
            Some(i) => break Some(buf[i]),
            None if buf.is_empty() => break None,
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    };
    let see = |acc: &mut Inferred, v: &Value| {
        if let Value::Object(m) = v {
            for (k, v) in m {
                acc.see(k, json_type(v));
            }
        }
    };
    if first == Some(b'[') {
        let mut all = Vec::new();
        r.read_to_end(&mut all)?;
        // a sample of an array that does not parse says nothing
        if let Ok(items) = serde_json::from_slice::<Vec<Value>>(&all) {
            items.iter().take(rows).for_each(|v| see(acc, v));
        }
        return Ok(());
    }
    let mut line = Vec::new();
    let mut seen = 0;
    while seen < rows {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // invalid records are the reader's business, not the schema's
        if let Ok(v) = serde_json::from_slice::<Value>(text) {
            see(acc, &v);
            seen += 1;
        }
    }
    Ok(())
}

/// Samples `input` (decompressed) of csv records into `acc`.
pub(crate) fn sample_csv(
    input: &mut dyn Read,
    delimiter: u8,
    header: bool,
    rows: usize,
    acc: &mut Inferred,
) -> std::io::Result<()> {
    let mut data = Vec::new();
    let mut r = input.take(MAX_SAMPLE_BYTES);
    let mut chunk = vec![0u8; 1 << 16];
    let mut pos = 0;
    let mut names: Option<Vec<String>> = None;
    let mut seen = 0;
    let mut eof = false;
    while seen < rows {
        let len = match csv_record_len(&data[pos..], delimiter, eof) {
            Some(n) => n,
            None if eof => break,
            None => {
                let n = r.read(&mut chunk)?;
                eof = n == 0;
                data.extend_from_slice(&chunk[..n]);
                continue;
            }
        };
        let mut record = &data[pos..pos + len];
        pos += len;
        if pos == len {
            // the reader skips a byte order mark too
            record = record.strip_prefix(b"\xef\xbb\xbf").unwrap_or(record);
        }
        if record.iter().all(|b| *b == b'\r' || *b == b'\n') {
            continue;
        }
        let fields = csv_fields(record, delimiter);
        if names.is_none() && header {
            names = Some(fields);
            continue;
        }
        let names = names.get_or_insert_with(Vec::new);
        while names.len() < fields.len() {
            names.push(format!("column_{}", names.len() + 1));
        }
        for (i, (name, v)) in names.iter().zip(&fields).enumerate() {
            acc.see_at(i, name, csv_type(v));
        }
        seen += 1;
    }
    // a header names fields even when no row follows
    for (i, n) in names.unwrap_or_default().iter().enumerate() {
        acc.see_at(i, n, None);
    }
    Ok(())
}

/// Samples the row-format `files` (json or csv) of `store` in a blocking
/// thread and returns what the samples say.
pub(crate) async fn sample_files(
    store: Arc<dyn object_store::ObjectStore>,
    place: String,
    files: Vec<SourceFile>,
    format: crate::RowFormat,
    sample: Sample,
) -> Result<Inferred> {
    let rt = tokio::runtime::Handle::current();
    let task = rt.clone().spawn_blocking(move || -> Result<Inferred> {
        let mut acc = Inferred::default();
        for f in files.iter().take(sample.files.max(1)) {
            let name = format!("{place} key {:?}", f.key);
            let mut input = open_file(&rt, store.as_ref(), f, &name, None)?;
            let io = |e: std::io::Error| Error::new(ErrorCode::FileFormatMismatch, format!("sampling {name}: {e}"));
            match format {
                crate::RowFormat::Csv { delimiter, header } => {
                    sample_csv(&mut input, delimiter, header, sample.rows.max(1), &mut acc).map_err(io)?
                }
                _ => sample_json(&mut input, sample.rows.max(1), &mut acc).map_err(io)?,
            }
        }
        Ok(acc)
    });
    task.await
        .map_err(|e| Error::internal(format!("schema sampling stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Vec<(String, ValType)> {
        let mut acc = Inferred::default();
        sample_json(&mut text.as_bytes(), 100, &mut acc).unwrap();
        acc.entries().into_iter().map(|e| (e.key, e.valtype)).collect()
    }

    #[test]
    fn json_values_map_to_valtypes_and_widen() {
        let got = json(concat!(
            "{\"a\":1,\"b\":1.5,\"c\":\"x\",\"d\":true,\"e\":\"2017-06-01T05:00:00+08:00\",\"f\":{\"g\":1},\"h\":null}\n",
            "\n",
            "{\"a\":2.5,\"b\":2,\"c\":3,\"d\":false,\"e\":\"2017-06-01T05:00:00Z\",\"f\":[1]}\n",
            "not json\n",
        ));
        use ValType::*;
        let want = [
            ("a", Float),
            ("b", Float),
            ("c", String),
            ("d", Boolean),
            ("e", Date),
            ("f", String),
            ("h", String),
        ];
        assert_eq!(got, want.map(|(k, t)| (k.to_string(), t)).to_vec());
        assert_eq!(json("[{\"x\":1},{\"x\":2}]"), vec![("x".to_string(), Long)]);
    }

    #[test]
    fn csv_fields_map_to_valtypes() {
        let mut acc = Inferred::default();
        let text = "id,score,ok,at,name\n1,2.5,true,2017-06-01T05:00:00Z,\"a, b\"\n2,3,FALSE,,\"multi\nline\"\n";
        sample_csv(&mut text.as_bytes(), b',', true, 100, &mut acc).unwrap();
        let got: Vec<_> = acc.entries().into_iter().map(|e| (e.key, e.valtype)).collect();
        use ValType::*;
        let want = [
            ("id", Long),
            ("score", Float),
            ("ok", Boolean),
            ("at", Date),
            ("name", String),
        ];
        assert_eq!(got, want.map(|(k, t)| (k.to_string(), t)).to_vec());
        // a second file with other header names merges by position; a BOM is not a name
        sample_csv(&mut "\u{feff}key,points\n7,1.0\n".as_bytes(), b',', true, 100, &mut acc).unwrap();
        let got: Vec<_> = acc.entries().into_iter().map(|e| (e.key, e.valtype)).collect();
        assert_eq!(got[..2], [("id".to_string(), Long), ("score".to_string(), Float)]);
        let mut acc = Inferred::default();
        sample_csv(&mut "\u{feff}a,b\n1,2\n".as_bytes(), b',', true, 100, &mut acc).unwrap();
        assert_eq!(acc.entries()[0].key, "a");
        let mut acc = Inferred::default();
        sample_csv(&mut "1;x\n2;y;3\n".as_bytes(), b';', false, 100, &mut acc).unwrap();
        let got: Vec<_> = acc.entries().into_iter().map(|e| e.key).collect();
        assert_eq!(got, ["column_1", "column_2", "column_3"]);
    }
}
