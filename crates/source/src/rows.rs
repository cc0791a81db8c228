//! Row formats (json, csv, text): a decompressed byte stream -> Arrow
//! batches, with bad records found, named, and skipped or refused.
//!
//! The fast path hands big slices to arrow's JSON / CSV decoders, one batch
//! at a time. A batch that fails (a line that does not parse, a value of the
//! wrong type, a `required` field missing) is decoded again record by
//! record: the bad ones are named by file, line and field, then skipped and
//! counted (`omitInvalid`) or refused with `E18623`. Good data never takes
//! the slow path, and a bad record never takes a batch of good ones with it.
//!
//! JSON is newline-delimited, or one array of objects (`[{...}, {...}]`,
//! records numbered by element). A nested value (object or array) read into
//! a string field is kept as its JSON text; a number or boolean as its text.
//! CSV fields are positional; a short row reads its missing trailing fields
//! as null (old files after a field was added), a long one is invalid.

use crate::flat::{FlatCsv, FlatJson, Lines};
use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, StringBuilder};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use pbatch_model::{Error, ErrorCode, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes read from the decompressed stream at a time.
const CHUNK: usize = 1 << 20;
/// Invalid records described in the stats (the count has them all).
const MAX_SAMPLES: usize = 5;

/// A row format's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RowFormat {
    /// One JSON object per line, or one array of objects.
    Json,
    /// Delimited fields, optionally with a header line.
    Csv {
        /// Field delimiter.
        delimiter: u8,
        /// Whether each file's first record is a header.
        header: bool,
    },
    /// One `text` column per line.
    Text,
    /// Fusion CDN access-log lines (the fixed schema of [`crate::fusion_schema`]).
    CdnLog,
}

/// What to read from each file.
#[derive(Debug, Clone)]
pub struct RowSpec {
    /// Layout.
    pub format: RowFormat,
    /// The table's schema (every declared field, in file order for csv).
    pub schema: SchemaRef,
    /// The output columns, as indices into `schema`.
    pub projection: Vec<usize>,
    /// Fields a record must carry, as indices into `schema`.
    pub required: Vec<usize>,
    /// Skip invalid records (counted) instead of failing.
    pub omit_invalid: bool,
    /// Rows per output batch.
    pub batch_size: usize,
}

impl RowSpec {
    /// The output schema.
    pub fn output_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.projection
                .iter()
                .map(|i| self.schema.field(*i).clone())
                .collect::<Vec<_>>(),
        ))
    }
}

/// Invalid records met by the reads of one table, and the bytes read.
#[derive(Debug, Default)]
pub struct ReadStats {
    invalid: AtomicU64,
    samples: Mutex<Vec<String>>,
    bytes: AtomicU64,
    /// Counts of a whole table, when these are one partition's.
    parent: Option<Arc<ReadStats>>,
}

impl ReadStats {
    /// One partition's stats, which also count into its table's.
    pub(crate) fn child_of(parent: &Arc<ReadStats>) -> Self {
        Self {
            parent: Some(Arc::clone(parent)),
            ..Self::default()
        }
    }

    /// Bytes of the table's files read so far, as stored (before
    /// decompression): what a progress bar measures against the listing.
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        if let Some(p) = &self.parent {
            p.add_bytes(n);
        }
    }

    /// Invalid records skipped so far.
    pub fn invalid(&self) -> u64 {
        self.invalid.load(Ordering::Relaxed)
    }

    /// The first few of them, as `file line N: why`.
    pub fn samples(&self) -> Vec<String> {
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn note(&self, what: String) {
        tracing::warn!(record = %what, "skipping an invalid record");
        self.count(&what);
    }

    fn count(&self, what: &str) {
        self.invalid.fetch_add(1, Ordering::Relaxed);
        if let Some(p) = &self.parent {
            p.count(what);
        }
        if let Ok(mut s) = self.samples.lock()
            && s.len() < MAX_SAMPLES
        {
            s.push(what.to_string());
        }
    }
}

/// Reads every record of file `name` from `input` (decompressed), calling
/// `emit` with each batch; `emit` returns false to stop early.
pub fn read_rows(
    name: &str,
    input: &mut dyn Read,
    spec: &RowSpec,
    stats: &ReadStats,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> Result<()> {
    let mut input = BufReader::with_capacity(CHUNK, input);
    skip_bom(&mut input).map_err(|e| io_error(name, e))?;
    match spec.format {
        RowFormat::Text => read_text(name, &mut input, spec, stats, emit),
        RowFormat::CdnLog => crate::fusion::read_cdn_log(name, &mut input, spec, stats, emit),
        RowFormat::Json if starts_array(&mut input).map_err(|e| io_error(name, e))? => {
            let mut all = Vec::new();
            input.read_to_end(&mut all).map_err(|e| io_error(name, e))?;
            let items: Vec<Value> = serde_json::from_slice(&all).map_err(|e| {
                Error::new(
                    ErrorCode::FileFormatMismatch,
                    format!("{name}: the file starts with '[' but is not a JSON array: {e}"),
                )
            })?;
            drop(all);
            let mut lines = Vec::new();
            for v in &items {
                serde_json::to_writer(&mut lines, v).map_err(|e| Error::internal(e.to_string()))?;
                lines.push(b'\n');
            }
            drop(items);
            Reader::new(name, "element", spec, stats).run(&mut &lines[..], emit)
        }
        _ => Reader::new(name, "line", spec, stats).run(&mut input, emit),
    }
}

fn io_error(name: &str, e: std::io::Error) -> Error {
    Error::new(ErrorCode::FileFormatMismatch, format!("reading {name}: {e}"))
}

fn skip_bom(r: &mut impl BufRead) -> std::io::Result<()> {
    if r.fill_buf()?.starts_with(b"\xef\xbb\xbf") {
        r.consume(3);
    }
    Ok(())
}

/// Whether the first non-blank byte is `[` (a JSON array file).
fn starts_array(r: &mut impl BufRead) -> std::io::Result<bool> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => return Ok(buf[i] == b'['),
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}

fn read_text(
    name: &str,
    input: &mut impl BufRead,
    spec: &RowSpec,
    stats: &ReadStats,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> Result<()> {
    let out = spec.output_schema();
    let mut builder = StringBuilder::with_capacity(spec.batch_size, spec.batch_size * 64);
    let mut rows = 0usize;
    let mut line = Vec::new();
    let mut number = 0u64;
    let finish = |builder: &mut StringBuilder, rows: &mut usize| -> Result<RecordBatch> {
        let col: ArrayRef = Arc::new(builder.finish());
        let cols = if out.fields().is_empty() { vec![] } else { vec![col] };
        let n = std::mem::take(rows);
        RecordBatch::try_new_with_options(
            Arc::clone(&out),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .map_err(|e| Error::internal(e.to_string()))
    };
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).map_err(|e| io_error(name, e))? == 0 {
            break;
        }
        number += 1;
        let mut end = line.len();
        if line[..end].ends_with(b"\n") {
            end -= 1;
        }
        if line[..end].ends_with(b"\r") {
            end -= 1;
        }
        match simdutf8::basic::from_utf8(&line[..end]) {
            Ok(s) => {
                builder.append_value(s);
                rows += 1;
            }
            Err(_) => invalid(name, "line", number, "the line is not valid UTF-8".into(), spec, stats)?,
        }
        if rows == spec.batch_size && !emit(finish(&mut builder, &mut rows)?) {
            return Ok(());
        }
    }
    if rows > 0 {
        emit(finish(&mut builder, &mut rows)?);
    }
    Ok(())
}

/// Counts an invalid record, or refuses it.
pub(crate) fn invalid(
    name: &str,
    unit: &str,
    number: u64,
    why: String,
    spec: &RowSpec,
    stats: &ReadStats,
) -> Result<()> {
    let what = format!("{name} {unit} {number}: {why}");
    if spec.omit_invalid {
        stats.note(what);
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::FileFormatMismatch,
            format!("{what} (set omitInvalid on the datasource to skip invalid records)"),
        ))
    }
}

/// An arrow decoder of a whole batch (the fast path) or of one record, or
/// a projecting decoder of flat records (the fast path's fast path, see
/// [`crate::flat`]).
enum Fast {
    Json(arrow::json::reader::Decoder),
    Csv(Box<arrow::csv::reader::Decoder>),
    Flat(Box<FlatJson>),
    FlatCsv(Box<FlatCsv>),
}

/// What a fast decoder could not do with a batch.
enum Failed {
    /// The flat decoder met what arrow's decoder must read (its bail).
    Flat,
    /// The batch has a bad record (arrow's decoder refused it).
    Arrow(ArrowError),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Flat => f.write_str("not flat records"),
            Failed::Arrow(e) => e.fmt(f),
        }
    }
}

impl Fast {
    fn decode(&mut self, buf: &[u8], batch_size: usize) -> std::result::Result<usize, Failed> {
        match self {
            Fast::Json(d) => d.decode(buf).map_err(Failed::Arrow),
            Fast::Csv(d) => d.decode(buf).map_err(Failed::Arrow),
            Fast::Flat(d) => d.decode(buf, batch_size).map_err(|_| Failed::Flat),
            Fast::FlatCsv(d) => d.decode(buf, batch_size).map_err(|_| Failed::Flat),
        }
    }

    fn full(&self, batch_size: usize) -> bool {
        match self {
            // len() counts a record that is only half decoded
            Fast::Json(d) => d.len() >= batch_size && !d.has_partial_record(),
            Fast::Csv(d) => d.capacity() == 0,
            Fast::Flat(d) => d.len() >= batch_size && !d.has_partial_record(),
            Fast::FlatCsv(d) => d.len() >= batch_size && !d.has_partial_record(),
        }
    }

    fn flush(&mut self) -> std::result::Result<Option<RecordBatch>, Failed> {
        match self {
            Fast::Json(d) => d.flush().map_err(Failed::Arrow),
            Fast::Csv(d) => d.flush().map_err(Failed::Arrow),
            Fast::Flat(d) => d.flush().map_err(|_| Failed::Flat),
            Fast::FlatCsv(d) => d.flush().map_err(|_| Failed::Flat),
        }
    }

    fn flat(&self) -> bool {
        matches!(self, Fast::Flat(_) | Fast::FlatCsv(_))
    }
}

/// Batches the flat decoder may give back to arrow's in one file before
/// the rest of the file is left to arrow's (its records are not flat json or
/// unquoted csv).
const FLAT_BAILS: u32 = 3;

/// The fast / slow reader of one json or csv file.
struct Reader<'a> {
    name: &'a str,
    unit: &'static str,
    spec: &'a RowSpec,
    stats: &'a ReadStats,
    /// Fields decoded: the projection and the required fields, sorted.
    decode_cols: Vec<usize>,
    decode_schema: SchemaRef,
    /// Output column -> decoded column.
    out_map: Vec<usize>,
    /// Required field -> decoded column.
    req_map: Vec<usize>,
    out_schema: SchemaRef,
    /// Bytes not yet committed: `data[start..]` is the current batch.
    data: Vec<u8>,
    start: usize,
    cursor: usize,
    eof: bool,
    /// The number of the record line at `data[0]`.
    line: u64,
    /// A csv header not yet skipped.
    header_pending: bool,
    /// Batches a flat decoder gave back to arrow's.
    flat_bails: u32,
}

impl<'a> Reader<'a> {
    fn new(name: &'a str, unit: &'static str, spec: &'a RowSpec, stats: &'a ReadStats) -> Self {
        let mut decode_cols: Vec<usize> = spec.projection.iter().chain(&spec.required).copied().collect();
        decode_cols.sort_unstable();
        decode_cols.dedup();
        let pos = |i: &usize| decode_cols.iter().position(|c| c == i).unwrap_or(0);
        let out_map = spec.projection.iter().map(pos).collect();
        let req_map = spec.required.iter().map(pos).collect();
        let decode_schema = Arc::new(Schema::new(
            decode_cols
                .iter()
                .map(|i| spec.schema.field(*i).clone())
                .collect::<Vec<_>>(),
        ));
        Self {
            name,
            unit,
            spec,
            stats,
            out_map,
            req_map,
            out_schema: spec.output_schema(),
            decode_schema,
            decode_cols,
            data: Vec::with_capacity(CHUNK),
            start: 0,
            cursor: 0,
            eof: false,
            line: 1,
            header_pending: matches!(spec.format, RowFormat::Csv { header: true, .. }),
            flat_bails: 0,
        }
    }

    /// The fast path's decoder of the next batch: a flat decoder while the
    /// file's records are flat json or unquoted csv, else arrow's.
    fn batch_decoder(&self) -> Result<Fast> {
        if self.flat_bails < FLAT_BAILS {
            let (n, schema) = (self.spec.batch_size, &self.decode_schema);
            let flat = match self.spec.format {
                RowFormat::Json => FlatJson::new(Arc::clone(schema), n).map(|d| Fast::Flat(Box::new(d))),
                RowFormat::Csv { delimiter, .. } => {
                    FlatCsv::new(&self.spec.schema, &self.decode_cols, delimiter, self.header_pending, n)
                        .map(|d| Fast::FlatCsv(Box::new(d)))
                }
                _ => None,
            };
            if let Some(d) = flat {
                return Ok(d);
            }
        }
        self.decoder(self.spec.batch_size, self.header_pending, None)
    }

    /// Gives the current batch back to arrow's decoder, from its start.
    fn unflat(&mut self) -> Result<Fast> {
        self.flat_bails += 1;
        self.cursor = self.start;
        self.decoder(self.spec.batch_size, self.header_pending, None)
    }

    fn decoder(&self, batch_size: usize, header: bool, cols: Option<&[usize]>) -> Result<Fast> {
        Ok(match self.spec.format {
            RowFormat::Csv { delimiter, .. } => Fast::Csv(Box::new(
                arrow::csv::ReaderBuilder::new(Arc::clone(&self.spec.schema))
                    .with_delimiter(delimiter)
                    .with_header(header)
                    .with_truncated_rows(true)
                    .with_batch_size(batch_size)
                    .with_projection(cols.unwrap_or(&self.decode_cols).to_vec())
                    .build_decoder(),
            )),
            _ => {
                let schema = match cols {
                    None => Arc::clone(&self.decode_schema),
                    Some(c) => Arc::new(
                        self.spec
                            .schema
                            .project(c)
                            .map_err(|e| Error::internal(e.to_string()))?,
                    ),
                };
                Fast::Json(
                    arrow::json::ReaderBuilder::new(schema)
                        .with_batch_size(batch_size)
                        .with_coerce_primitive(true)
                        .build_decoder()
                        .map_err(|e| Error::internal(e.to_string()))?,
                )
            }
        })
    }

    /// Appends the next chunk of input; drops committed bytes first when
    /// `drain`. Sets `eof` at the end.
    fn fill(&mut self, input: &mut dyn Read, drain: bool) -> Result<()> {
        if drain && self.start > 0 {
            self.line += memchr::memchr_iter(b'\n', &self.data[..self.start]).count() as u64;
            self.data.drain(..self.start);
            self.cursor -= self.start;
            self.start = 0;
        }
        let len = self.data.len();
        self.data.resize(len + CHUNK, 0);
        let n = loop {
            match input.read(&mut self.data[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.data.truncate(len);
                    return Err(io_error(self.name, e));
                }
            }
        };
        self.data.truncate(len + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }

    fn run(mut self, input: &mut dyn Read, emit: &mut dyn FnMut(RecordBatch) -> bool) -> Result<()> {
        let mut dec = self.batch_decoder()?;
        loop {
            let at_end = self.cursor == self.data.len();
            if at_end && !self.eof {
                self.fill(input, true)?;
                continue;
            }
            if !at_end {
                match dec.decode(&self.data[self.cursor..], self.spec.batch_size) {
                    Ok(n) => {
                        self.cursor += n;
                        if n > 0 && !dec.full(self.spec.batch_size) {
                            continue;
                        }
                    }
                    Err(Failed::Flat) => {
                        dec = self.unflat()?;
                        continue;
                    }
                    Err(Failed::Arrow(_)) => {
                        if !self.slow(input, emit)? {
                            return Ok(());
                        }
                        dec = self.batch_decoder()?;
                        continue;
                    }
                }
            }
            // a full batch, or the end of the input (which also tells the csv
            // decoder that a last record without a newline ended)
            let flushed = if at_end {
                dec.decode(&[], self.spec.batch_size).and_then(|_| dec.flush())
            } else {
                dec.flush()
            };
            match flushed.map(|b| b.map(|b| self.checked(b))) {
                Ok(None) if at_end => return Ok(()),
                Ok(None) => self.commit(),
                Ok(Some(Some(batch))) => {
                    self.commit();
                    if !emit(batch) || at_end {
                        return Ok(());
                    }
                    if !dec.flat() && self.flat_bails > 0 {
                        dec = self.batch_decoder()?;
                    }
                }
                Err(Failed::Flat) => dec = self.unflat()?,
                Ok(Some(None)) | Err(Failed::Arrow(_)) => {
                    if !self.slow(input, emit)? {
                        return Ok(());
                    }
                    dec = self.batch_decoder()?;
                }
            }
        }
    }

    fn commit(&mut self) {
        self.start = self.cursor;
        self.header_pending = false;
    }

    /// The output batch of a decoded one, or None when a required field is null.
    fn checked(&self, b: RecordBatch) -> Option<RecordBatch> {
        if self.req_map.iter().any(|i| b.column(*i).null_count() > 0) {
            return None;
        }
        self.project(&b)
    }

    fn project(&self, b: &RecordBatch) -> Option<RecordBatch> {
        let cols = self.out_map.iter().map(|i| Arc::clone(b.column(*i))).collect();
        RecordBatch::try_new_with_options(
            Arc::clone(&self.out_schema),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
        )
        .ok()
    }

    /// The length of the record at `data[pos..]`, reading more input when it
    /// is incomplete; None at the end of the input.
    fn next_record(&mut self, input: &mut dyn Read, pos: usize) -> Result<Option<usize>> {
        loop {
            let rest = &self.data[pos..];
            let found = match self.spec.format {
                RowFormat::Csv { delimiter, .. } => csv_record_len(rest, delimiter, self.eof),
                _ => json_record_len(rest, self.eof),
            };
            match found {
                Some(n) => return Ok(Some(n)),
                None if self.eof => return Ok((!rest.is_empty()).then_some(rest.len())),
                None => self.fill(input, false)?,
            }
        }
    }

    /// Decodes the current batch's records one at a time, skipping or
    /// refusing the bad ones. Returns false when `emit` said stop.
    fn slow(&mut self, input: &mut dyn Read, emit: &mut dyn FnMut(RecordBatch) -> bool) -> Result<bool> {
        let mut pos = self.start;
        let mut number = self.line + memchr::memchr_iter(b'\n', &self.data[..pos]).count() as u64;
        let mut good_json: Vec<Value> = Vec::new();
        let mut good_csv: Vec<u8> = Vec::new();
        let mut records = 0;
        while records < self.spec.batch_size {
            let Some(len) = self.next_record(input, pos)? else {
                break;
            };
            let record = self.data[pos..pos + len].to_vec();
            pos += len;
            let lead = record.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let first = number + memchr::memchr_iter(b'\n', &record[..lead]).count() as u64;
            number += memchr::memchr_iter(b'\n', &record).count() as u64;
            // what the fast path skips too: blank json, line ends left by a csv CR
            let blank = match self.spec.format {
                RowFormat::Csv { .. } => record.iter().all(|b| *b == b'\r' || *b == b'\n'),
                _ => lead == record.len(),
            };
            if blank {
                continue;
            }
            if std::mem::take(&mut self.header_pending) {
                continue;
            }
            records += 1;
            let verdict = match self.spec.format {
                RowFormat::Csv { .. } => self.check_csv(&record),
                _ => self.check_json(&record),
            };
            match verdict {
                Ok(Good::Json(v)) => good_json.push(v),
                Ok(Good::Csv) => {
                    good_csv.extend_from_slice(&record);
                    if !record.ends_with(b"\n") {
                        good_csv.push(b'\n');
                    }
                }
                Err(why) => invalid(self.name, self.unit, first, why, self.spec, self.stats)?,
            }
        }
        self.start = pos;
        self.cursor = pos;
        let batch = match self.spec.format {
            RowFormat::Csv { .. } if !good_csv.is_empty() => {
                let mut d = self.decoder(records.max(1), false, None)?;
                d.decode(&good_csv, usize::MAX)
                    .map_err(|e| Error::internal(e.to_string()))?;
                d.decode(&[], usize::MAX).map_err(|e| Error::internal(e.to_string()))?;
                d.flush().map_err(|e| Error::internal(e.to_string()))?
            }
            RowFormat::Json if !good_json.is_empty() => {
                let Fast::Json(mut d) = self.decoder(good_json.len(), false, None)? else {
                    return Err(Error::internal("json decoder expected"));
                };
                d.serialize(&good_json).map_err(|e| Error::internal(e.to_string()))?;
                d.flush().map_err(|e| Error::internal(e.to_string()))?
            }
            _ => None,
        };
        Ok(match batch.and_then(|b| self.project(&b)) {
            Some(b) if b.num_rows() > 0 => emit(b),
            _ => true,
        })
    }

    fn check_json(&self, record: &[u8]) -> std::result::Result<Good, String> {
        let mut v: Value = serde_json::from_slice(record).map_err(|e| format!("not valid JSON: {e}"))?;
        if !v.is_object() {
            return Err(format!("not a JSON object but {}", kind_of(&v)));
        }
        // nested values read into a string field keep their JSON text
        if let Value::Object(map) = &mut v {
            for f in self.decode_schema.fields() {
                if f.data_type() == &DataType::Utf8
                    && let Some(x) = map.get_mut(f.name())
                    && (x.is_object() || x.is_array())
                {
                    *x = Value::String(x.to_string());
                }
            }
        }
        let empty = serde_json::Map::new();
        let map = v.as_object().unwrap_or(&empty);
        for i in &self.req_map {
            let name = self.decode_schema.field(*i).name();
            if map.get(name).is_none_or(Value::is_null) {
                return Err(format!("required field {name:?} is missing"));
            }
        }
        let Fast::Json(mut d) = self.decoder(1, false, None).map_err(|e| e.to_string())? else {
            return Err("json decoder expected".into());
        };
        let whole = d.serialize(std::slice::from_ref(&v)).and_then(|_| d.flush());
        if whole.is_ok() {
            return Ok(Good::Json(v));
        }
        for (i, col) in self.decode_cols.iter().enumerate() {
            let f = self.decode_schema.field(i);
            let value = map.get(f.name()).cloned().unwrap_or(Value::Null);
            let one = serde_json::json!({ f.name(): value.clone() });
            let Ok(Fast::Json(mut d)) = self.decoder(1, false, Some(&[*col])) else {
                continue;
            };
            if d.serialize(&[one]).and_then(|_| d.flush()).is_err() {
                return Err(format!(
                    "field {:?}: {} is not a {}",
                    f.name(),
                    value,
                    crate::valtype_of(f.data_type()).as_str()
                ));
            }
        }
        Err(match whole {
            Err(e) => e.to_string(),
            Ok(_) => "the record does not decode".into(),
        })
    }

    fn check_csv(&self, record: &[u8]) -> std::result::Result<Good, String> {
        let decode = |cols: Option<&[usize]>| -> std::result::Result<Option<RecordBatch>, String> {
            let mut d = self.decoder(1, false, cols).map_err(|e| e.to_string())?;
            d.decode(record, usize::MAX).map_err(|e| e.to_string())?;
            d.decode(&[], usize::MAX).map_err(|e| e.to_string())?;
            d.flush().map_err(|e| e.to_string())
        };
        match decode(None) {
            Ok(Some(b)) => {
                for i in &self.req_map {
                    if b.column(*i).null_count() > 0 {
                        return Err(format!(
                            "required field {:?} is missing",
                            self.decode_schema.field(*i).name()
                        ));
                    }
                }
                Ok(Good::Csv)
            }
            Ok(None) => Ok(Good::Csv),
            Err(whole) => {
                let RowFormat::Csv { delimiter, .. } = self.spec.format else {
                    return Err(whole);
                };
                let fields = csv_fields(record, delimiter);
                if fields.len() > self.spec.schema.fields().len() {
                    return Err(format!(
                        "{} fields where the schema has {}",
                        fields.len(),
                        self.spec.schema.fields().len()
                    ));
                }
                for col in &self.decode_cols {
                    if decode(Some(&[*col])).is_err() {
                        let f = self.spec.schema.field(*col);
                        let value = fields.get(*col).map(String::as_str).unwrap_or("");
                        return Err(format!(
                            "field {:?}: {value:?} is not a {}",
                            f.name(),
                            crate::valtype_of(f.data_type()).as_str()
                        ));
                    }
                }
                Err(whole)
            }
        }
    }
}

enum Good {
    Json(Value),
    Csv,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The length of the csv record at the start of `data` (quotes may hold
/// delimiters and newlines); None when it is incomplete and more may come.
pub(crate) fn csv_record_len(data: &[u8], delimiter: u8, eof: bool) -> Option<usize> {
    use csv_core::ReadRecordResult as R;
    let mut rdr = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    // only the record's length matters: full output buffers are just reused
    let mut out = [0u8; 4096];
    let mut ends = [0usize; 64];
    let mut pos = 0;
    loop {
        let input = &data[pos..];
        let (res, nin, _, _) = rdr.read_record(input, &mut out, &mut ends);
        pos += nin;
        match res {
            R::Record => return Some(pos),
            R::OutputEndsFull | R::OutputFull => {}
            R::InputEmpty if !eof => return None,
            R::InputEmpty if input.is_empty() => return (pos > 0).then_some(pos),
            R::InputEmpty => {}
            R::End => return (pos > 0).then_some(pos),
        }
    }
}

/// The length of the JSON value at the start of `data` with its leading
/// whitespace and the rest of its line when that is blank; None when it is
/// incomplete and more may come. Text that is not JSON ends at its line's end.
fn json_record_len(data: &[u8], eof: bool) -> Option<usize> {
    let lead = data.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let to_line_end = |from: usize| match memchr::memchr(b'\n', &data[from..]) {
        Some(i) => Some(from + i + 1),
        None if eof => Some(data.len()),
        None => None,
    };
    if lead == data.len() {
        return (eof && !data.is_empty()).then_some(data.len());
    }
    let mut values = serde_json::Deserializer::from_slice(&data[lead..]).into_iter::<serde::de::IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => {
            let end = lead + values.byte_offset();
            let tail = data[end..]
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t' || **b == b'\r')
                .count();
            match data.get(end + tail) {
                Some(b'\n') => Some(end + tail + 1),
                None if !eof => None,
                _ => Some(end),
            }
        }
        Some(Err(e)) if e.is_eof() && !eof => None,
        _ => to_line_end(lead),
    }
}

/// The fields of one csv record (for messages).
pub(crate) fn csv_fields(record: &[u8], delimiter: u8) -> Vec<String> {
    use csv_core::ReadFieldResult as F;
    let mut rdr = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let mut out = vec![0u8; record.len() + 1];
    let mut fields = Vec::new();
    let mut pos = 0;
    loop {
        let (res, nin, nout) = rdr.read_field(&record[pos..], &mut out);
        pos += nin;
        match res {
            F::Field { record_end } => {
                fields.push(String::from_utf8_lossy(&out[..nout]).into_owned());
                if record_end {
                    return fields;
                }
            }
            F::End => return fields,
            F::InputEmpty if pos >= record.len() => {
                // the last field of a record without a newline
                let (res, _, nout) = rdr.read_field(&[], &mut out);
                if let F::Field { .. } = res {
                    fields.push(String::from_utf8_lossy(&out[..nout]).into_owned());
                }
                return fields;
            }
            F::InputEmpty | F::OutputFull => return fields,
        }
    }
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
