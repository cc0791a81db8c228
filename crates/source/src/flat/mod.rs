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
            Col::Ts(b, tz) => b.append_value(ts_micros(tz, s)?),
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

/// Microseconds since the epoch of a timestamp's text, as arrow's
/// `string_to_datetime` reads it in zone `tz`; the form of most logs,
/// `YYYY-MM-DDTHH:MM:SSZ`, without it (a tenth of its time).
pub(crate) fn ts_micros(tz: &Tz, s: &str) -> Step<i64> {
    match utc_seconds(s.as_bytes()) {
        Some(secs) => Ok(secs * 1_000_000),
        None => Ok(string_to_datetime(tz, s).map_err(|_| Bail)?.timestamp_micros()),
    }
}

/// Seconds since the epoch of exactly `YYYY-MM-DDTHH:MM:SSZ` (or a space
/// for the `T`) naming a real time; None for anything else.
fn utc_seconds(b: &[u8]) -> Option<i64> {
    let b: &[u8; 20] = b.try_into().ok()?;
    let seps = b[4] == b'-' && b[7] == b'-' && b[13] == b':' && b[16] == b':' && b[19] == b'Z';
    if !seps || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        b[from..to]
            .iter()
            .try_fold(0i64, |v, c| c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0')))
    };
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > month_days || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // days from 1970-01-01 (H. Hinnant's days_from_civil)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
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

    /// The fast form gives arrow's answer, second for second over four
    /// centuries of month ends, leap days and times of day, in any zone
    /// (`Z` is UTC); anything it does not take goes to arrow, which
    /// accepts or refuses it as before.
    #[test]
    fn utc_timestamps_read_as_arrow_reads_them() {
        let zones: Vec<Tz> = ["UTC", "Asia/Shanghai", "+05:30"]
            .iter()
            .map(|z| z.parse().unwrap())
            .collect();
        let mut checked = 0;
        for y in (1601..=2401)
            .step_by(4)
            .chain([1900, 1970, 2000, 2100, 2024, 2026, 9999, 0])
        {
            for m in 1..=12 {
                for d in [1, 15, 28, 29, 30, 31] {
                    for (hh, mm, ss) in [(0, 0, 0), (23, 59, 59), (12, 34, 56)] {
                        for sep in ['T', ' '] {
                            let s = format!("{y:04}-{m:02}-{d:02}{sep}{hh:02}:{mm:02}:{ss:02}Z");
                            for tz in &zones {
                                let want = string_to_datetime(tz, &s).ok().map(|t| t.timestamp_micros());
                                assert_eq!(ts_micros(tz, &s).ok(), want, "{s} in {tz:?}");
                                checked += usize::from(want.is_some());
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
        for s in [
            "2026-11-24T24:00:00Z",
            "2026-11-24T23:60:00Z",
            "2026-11-24T23:59:60Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-11-24t01:02:03Z",
            "2026-11-24T01:02:03z",
            "2026-11-24T01:02:03+08:00",
            "2026-11-24T01:02:03.250Z",
            "2026-11-24T01:0a:03Z",
            "+026-11-24T01:02:03Z",
        ] {
            let utc: Tz = "UTC".parse().unwrap();
            let want = string_to_datetime(&utc, s).ok().map(|t| t.timestamp_micros());
            assert_eq!(ts_micros(&utc, s).ok(), want, "{s}");
        }
    }

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
