//! Projecting decoders of flat records: the row formats' fast path's fast
//! path.
//!
//! Most rows of access logs are flat: JSON objects of strings and numbers,
//! or csv lines without quotes. Most queries read a few of their fields.
//! These decoders walk each line once, parse the fields asked for straight
//! into Arrow builders ([`Col`]) and skip the rest: no tape, no split of
//! unread fields into strings.
//!
//! Each takes only what arrow's decoder of its format reads the same way,
//! and gives the same values for it. Anything else is a [`Bail`]: the caller
//! decodes that batch with arrow's decoder instead, which reads it or finds
//! the bad record as before.

mod csv;
mod json;

pub(crate) use csv::FlatCsv;
pub(crate) use json::FlatJson;

use arrow::array::timezone::Tz;
use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::compute::kernels::cast_utils::string_to_datetime;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use std::sync::Arc;

/// The record (or the input) is outside what this decoder reads exactly
/// as arrow's decoder does.
#[derive(Debug)]
pub(crate) struct Bail;

pub(crate) type Step<T> = std::result::Result<T, Bail>;

/// An output column's builder.
pub(crate) enum Col {
    Str(StringBuilder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Ts(TimestampMicrosecondBuilder, Tz),
}

impl Col {
    /// A builder of `dt`, or None for a type the flat decoders do not read.
    pub(crate) fn for_type(dt: &DataType, batch_size: usize) -> Option<Col> {
        Some(match dt {
            DataType::Utf8 => Col::Str(StringBuilder::with_capacity(batch_size, batch_size * 16)),
            DataType::Int64 => Col::I64(Int64Builder::with_capacity(batch_size)),
            DataType::Float64 => Col::F64(Float64Builder::with_capacity(batch_size)),
            DataType::Boolean => Col::Bool(BooleanBuilder::with_capacity(batch_size)),
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => {
                let parsed: Tz = tz.parse().ok()?;
                Col::Ts(
                    TimestampMicrosecondBuilder::with_capacity(batch_size).with_timezone(Arc::clone(tz)),
                    parsed,
                )
            }
            _ => return None,
        })
    }

    /// A csv field's text, as arrow's csv decoder reads it: empty is null,
    /// numbers only in their plain forms (others bail).
    pub(crate) fn csv_field(&mut self, s: &str) -> Step<()> {
        if s.is_empty() {
            self.null();
            return Ok(());
        }
        match self {
            Col::Str(b) => b.append_value(s),
            Col::I64(b) => {
                let digits = s.strip_prefix('-').unwrap_or(s);
                if !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(Bail);
                }
                b.append_value(s.parse::<i64>().map_err(|_| Bail)?)
            }
            Col::F64(b) => {
                valid_number(s)?;
                b.append_value(s.parse::<f64>().map_err(|_| Bail)?)
            }
            Col::Bool(b) => match s {
                "true" => b.append_value(true),
                "false" => b.append_value(false),
                _ => return Err(Bail),
            },
            Col::Ts(b, tz) => b.append_value(string_to_datetime(tz, s).map_err(|_| Bail)?.timestamp_micros()),
        }
        Ok(())
    }

    pub(crate) fn null(&mut self) {
        match self {
            Col::Str(b) => b.append_null(),
            Col::I64(b) => b.append_null(),
            Col::F64(b) => b.append_null(),
            Col::Bool(b) => b.append_null(),
            Col::Ts(b, _) => b.append_null(),
        }
    }

    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Str(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Ts(b, _) => Arc::new(b.finish()),
        }
    }
}

/// A decoder of whole lines, and what it keeps of a line cut by the end
/// of its input so far.
pub(crate) trait Lines {
    /// Decodes one whole line (its newline included).
    fn line(&mut self, line: &[u8]) -> Step<()>;
    /// What is decoded so far.
    fn out(&mut self) -> &mut Out;
    fn out_ref(&self) -> &Out;

    /// Rows decoded and not yet flushed.
    fn len(&self) -> usize {
        self.out_ref().rows
    }

    /// Whether a line is cut off at the end of the input so far.
    fn has_partial_record(&self) -> bool {
        !self.out_ref().pending.is_empty()
    }

    /// The decoded rows as a batch (None without rows); a cut-off line
    /// left over is a bail.
    fn flush(&mut self) -> Step<Option<RecordBatch>> {
        let out = self.out();
        if !out.pending.is_empty() {
            return Err(Bail);
        }
        if out.rows == 0 {
            return Ok(None);
        }
        let n = std::mem::take(&mut out.rows);
        let cols: Vec<ArrayRef> = out.cols.iter_mut().map(Col::finish).collect();
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(n));
        RecordBatch::try_new_with_options(Arc::clone(&out.schema), cols, &options)
            .map(Some)
            .map_err(|_| Bail)
    }

    /// Decodes the lines of `buf` until `batch_size` rows are decoded;
    /// returns the bytes consumed. A line cut by the end of `buf` is
    /// consumed and kept until a later call brings its end; an empty `buf`
    /// is the end of the input.
    fn decode(&mut self, buf: &[u8], batch_size: usize) -> Step<usize> {
        let mut pos = 0;
        if buf.is_empty() {
            let line = std::mem::take(&mut self.out().pending);
            if !line.is_empty() {
                self.line(&line)?;
            }
            return Ok(0);
        }
        if !self.out().pending.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', buf) else {
                self.out().pending.extend_from_slice(buf);
                return Ok(buf.len());
            };
            let mut line = std::mem::take(&mut self.out().pending);
            line.extend_from_slice(&buf[..=nl]);
            self.line(&line)?;
            pos = nl + 1;
        }
        while self.len() < batch_size && pos < buf.len() {
            let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
                self.out().pending = buf[pos..].to_vec();
                return Ok(buf.len());
            };
            self.line(&buf[pos..=pos + nl])?;
            pos += nl + 1;
        }
        Ok(pos)
    }
}

/// A flat decoder's output so far: its columns, and the start of a line
/// cut by the end of the input.
pub(crate) struct Out {
    schema: SchemaRef,
    pub(crate) cols: Vec<Col>,
    pub(crate) rows: usize,
    pending: Vec<u8>,
}

impl Out {
    pub(crate) fn new(schema: SchemaRef, cols: Vec<Col>) -> Self {
        Self {
            schema,
            cols,
            rows: 0,
            pending: Vec::new(),
        }
    }
}

/// JSON's number grammar (Rust's float parser also takes "1." or ".5").
pub(crate) fn valid_number(s: &str) -> Step<()> {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - from
    };
    let int_from = i;
    if digits(&mut i) == 0 || (b[int_from] == b'0' && i - int_from > 1) {
        return Err(Bail);
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return Err(Bail);
        }
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        i += 1;
        if i < b.len() && matches!(b[i], b'+' | b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return Err(Bail);
        }
    }
    if i == b.len() { Ok(()) } else { Err(Bail) }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};

    /// The tests' table: a field of each type the flat decoders read.
    pub(crate) fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("f", DataType::Float64, true),
            Field::new("b", DataType::Boolean, true),
        ]))
    }

    /// The batches `d` decodes from `input` fed in pieces of `step` bytes,
    /// `batch` rows at a time, then the end, as one batch.
    pub(crate) fn feed(d: &mut impl Lines, input: &[u8], step: usize, batch: usize) -> Step<Option<RecordBatch>> {
        let mut batches = Vec::new();
        let (mut fed, mut buf) = (0, Vec::new());
        loop {
            let end = (fed + step).min(input.len());
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
            let n = d.decode(&buf, batch)?;
            buf.drain(..n);
            if d.len() >= batch && !d.has_partial_record() {
                batches.extend(d.flush()?);
                continue;
            }
            if fed == input.len() && buf.is_empty() {
                break;
            }
        }
        d.decode(&[], batch)?;
        batches.extend(d.flush()?);
        let schema = Arc::clone(&d.out().schema);
        Ok((!batches.is_empty()).then(|| arrow::compute::concat_batches(&schema, &batches).unwrap()))
    }
}
