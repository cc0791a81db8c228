//! A projecting decoder of plain csv lines: splits each line at its
//! delimiters and parses only the fields a query reads, straight into Arrow
//! builders.
//!
//! It reads what arrow's csv decoder reads the same way: lines without
//! quotes or stray carriage returns, values in their plain forms (see
//! [`Col::csv_field`]). A line with quotes, a blank line, a line with more
//! fields than the schema, or a value it does not parse is a [`Bail`]: the
//! caller decodes that batch with arrow's decoder, which reads it or finds
//! the bad record as before.

use super::{Bail, Col, Lines, Out, Step};
use arrow::datatypes::{Schema, SchemaRef};
use std::sync::Arc;

/// One decoder per batch stream of one csv file.
pub(crate) struct FlatCsv {
    out: Out,
    /// Each field of a line (the table's fields, in file order) -> its
    /// output column, if read.
    field_col: Vec<Option<usize>>,
    /// The last field read: the rest of a line is only counted.
    last_read: usize,
    delimiter: u8,
    /// The header line is still to be skipped.
    header: bool,
}

impl FlatCsv {
    /// A decoder of the fields `decode` (indices into `table`, sorted) of
    /// lines laid out as `table`; None when a field has a type it does not
    /// read.
    pub(crate) fn new(
        table: &SchemaRef,
        decode: &[usize],
        delimiter: u8,
        header: bool,
        batch_size: usize,
    ) -> Option<Self> {
        let mut field_col = vec![None; table.fields().len()];
        let mut fields = Vec::with_capacity(decode.len());
        let mut cols = Vec::with_capacity(decode.len());
        for (c, i) in decode.iter().enumerate() {
            let f = table.fields().get(*i)?;
            *field_col.get_mut(*i)? = Some(c);
            cols.push(Col::for_type(f.data_type(), batch_size)?);
            fields.push(Arc::clone(f));
        }
        Some(Self {
            out: Out::new(Arc::new(Schema::new(fields)), cols),
            last_read: decode.last().copied().unwrap_or(0),
            field_col,
            delimiter,
            header,
        })
    }
}

impl Lines for FlatCsv {
    fn line(&mut self, line: &[u8]) -> Step<()> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || memchr::memchr2(b'"', b'\r', line).is_some() {
            return Err(Bail);
        }
        // arrow's decoder refuses a record that is not UTF-8
        let text = simdutf8::basic::from_utf8(line).map_err(|_| Bail)?;
        if std::mem::take(&mut self.header) {
            return Ok(());
        }
        let mut field = 0;
        let mut start = 0;
        let mut ends = memchr::memchr_iter(self.delimiter, line);
        loop {
            let end = ends.next();
            match self.field_col.get(field) {
                // (delimiters are ASCII: the slice is on character boundaries)
                Some(Some(c)) => {
                    let value = text.get(start..end.unwrap_or(line.len())).ok_or(Bail)?;
                    self.out.cols[*c].csv_field(value)?;
                }
                Some(None) => {}
                None => return Err(Bail),
            }
            field += 1;
            let Some(end) = end else {
                break;
            };
            start = end + 1;
            if field > self.last_read {
                // past the last field read, only the number of fields
                // matters (more than the schema's is arrow's error): a
                // plain count, which the compiler vectorizes
                let d = self.delimiter;
                field += 1 + line[start..].iter().filter(|b| **b == d).count();
                if field > self.field_col.len() {
                    return Err(Bail);
                }
                break;
            }
        }
        // a short line: its missing trailing fields are null
        for c in self.field_col.iter().skip(field).flatten() {
            self.out.cols[*c].null();
        }
        self.out.rows += 1;
        Ok(())
    }

    fn out(&mut self) -> &mut Out {
        &mut self.out
    }

    fn out_ref(&self) -> &Out {
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::tests::{feed, schema as table};
    use arrow::array::RecordBatch;

    fn arrow_batch(input: &[u8], decode: &[usize], header: bool) -> Option<RecordBatch> {
        let mut d = arrow::csv::ReaderBuilder::new(table())
            .with_header(header)
            .with_truncated_rows(true)
            .with_batch_size(1 << 20)
            .with_projection(decode.to_vec())
            .build_decoder();
        let mut at = 0;
        while at < input.len() {
            let n = d.decode(&input[at..]).ok()?;
            if n == 0 {
                break;
            }
            at += n;
        }
        d.decode(&[]).ok()?;
        d.flush().ok()?
    }

    fn flat_batch(input: &[u8], decode: &[usize], header: bool, step: usize) -> Step<Option<RecordBatch>> {
        feed(
            &mut FlatCsv::new(&table(), decode, b',', header, 3).ok_or(Bail)?,
            input,
            step,
            3,
        )
    }

    const PLAIN: &str = "ts,s,n,f,b\n\
        2026-11-24T01:02:03Z,a,1,1.5,true\n\
        2026-11-24 01:02:03.25+08:00,b c,-7,-0.25e3,false\r\n\
        ,,,,\n\
        2026-11-24T00:00:00Z,only two\n\
        ,ünï,0,10,\n\
        2026-11-24T00:00:01Z,x,3,2,true";

    #[test]
    fn plain_lines_decode_as_arrow_decodes_them_for_any_projection_and_chunking() {
        for decode in [vec![0, 1, 2, 3, 4], vec![1, 2], vec![0, 4], vec![3]] {
            let want = arrow_batch(PLAIN.as_bytes(), &decode, true).expect("arrow reads the plain lines");
            for step in [1, 5, 64, PLAIN.len()] {
                let got = flat_batch(PLAIN.as_bytes(), &decode, true, step).unwrap_or_else(|_| panic!("bailed"));
                assert_eq!(got.as_ref(), Some(&want), "columns {decode:?}, step {step}");
            }
        }
    }

    #[test]
    fn anything_else_bails_so_arrow_decides() {
        for line in [
            "\"quoted\",a,1,1,true",
            "2026-11-24T00:00:00Z,a,1,1,true,extra",
            "2026-11-24T00:00:00Z,a,x,1,true",
            "2026-11-24T00:00:00Z,a,+1,1,true",
            "2026-11-24T00:00:00Z,a,1,1.,true",
            "2026-11-24T00:00:00Z,a,1,1,TRUE",
            "yesterday,a,1,1,true",
            "2026-11-24T00:00:00Z,a\r,1,1,true",
            "",
        ] {
            let input = format!("{line}\n");
            assert!(
                flat_batch(input.as_bytes(), &[0, 1, 2, 3, 4], false, 64).is_err(),
                "{line:?}"
            );
        }
        assert!(flat_batch(b"2026-11-24T00:00:00Z,\xff,1,1,true\n", &[2], false, 64).is_err());
        // past the last field read, the fields are still counted
        for decode in [vec![0], vec![1, 2]] {
            let long = b"2026-11-24T00:00:00Z,a,1,1,true,extra\n";
            assert!(flat_batch(long, &decode, false, 64).is_err(), "{decode:?}");
            let right = b"2026-11-24T00:00:00Z,a,1,1,true\n";
            assert!(flat_batch(right, &decode, false, 64).is_ok(), "{decode:?}");
        }
    }
}
