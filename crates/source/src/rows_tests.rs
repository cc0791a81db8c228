//! Tests of the row reader (`rows.rs`).

use super::*;
use arrow::datatypes::{Field, TimeUnit};
use arrow::util::display::array_value_to_string;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

fn spec(format: RowFormat, required: &[usize], omit: bool, batch: usize) -> RowSpec {
    RowSpec {
        format,
        schema: schema(),
        projection: vec![0, 1, 2],
        required: required.to_vec(),
        omit_invalid: omit,
        batch_size: batch,
    }
}

/// Hands out at most `n` bytes per read, as a network stream may.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// Rows as `id|name|score` strings, plus the stats; the same answer
/// whether the input comes whole or a few bytes per read.
fn read(text: &str, spec: &RowSpec) -> (Result<Vec<String>>, ReadStats) {
    let whole = read_in(text, spec, usize::MAX);
    for n in [3, 7, 64] {
        let (r, stats) = read_in(text, spec, n);
        assert_eq!(
            r.as_ref().map_err(|e| e.to_string()),
            whole.0.as_ref().map_err(|e| e.to_string()),
            "{n} bytes per read"
        );
        assert_eq!(stats.samples(), whole.1.samples(), "{n} bytes per read");
    }
    whole
}

fn read_in(text: &str, spec: &RowSpec, chunk: usize) -> (Result<Vec<String>>, ReadStats) {
    let stats = ReadStats::default();
    let mut rows = Vec::new();
    let r = read_rows("f.json", &mut Trickle(text.as_bytes(), chunk), spec, &stats, &mut |b| {
        for i in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, i).unwrap_or_default())
                .collect();
            rows.push(cells.join("|"));
        }
        true
    });
    (r.map(|_| rows), stats)
}

const JSON: &str = concat!(
    "{\"id\":1,\"name\":\"a\",\"score\":1.5}\n",
    "{\"id\":\"x\",\"name\":\"b\"}\n",
    "\n",
    "{\"id\":3,\"name\":{\"k\":[1,2]},\"score\":2}\n",
    "{\"id\":4,\n",
    "{\"name\":\"e\"}\n",
    "[1]\n",
    "{\"id\":7,\"name\":7,\"score\":\"2.5\"}",
);

#[test]
fn json_bad_records_are_named_skipped_and_counted_at_any_batch_size() {
    for batch in [1, 2, 3, 100] {
        let (rows, stats) = read(JSON, &spec(RowFormat::Json, &[0], true, batch));
        assert_eq!(
            rows.unwrap(),
            ["1|a|1.5", "3|{\"k\":[1,2]}|2.0", "7|7|2.5"],
            "batch size {batch}"
        );
        assert_eq!(stats.invalid(), 4, "batch size {batch}");
        let s = stats.samples();
        assert_eq!(s[0], "f.json line 2: field \"id\": \"x\" is not a long", "{s:?}");
        assert!(s[1].starts_with("f.json line 5: not valid JSON"), "{s:?}");
        assert_eq!(s[2], "f.json line 6: required field \"id\" is missing");
        assert_eq!(s[3], "f.json line 7: not a JSON object but an array");
    }
}

#[test]
fn pretty_printed_objects_and_crlf_csv_keep_their_line_numbers() {
    let text = "{\n  \"id\": 1\n}\n{\n  \"id\": \"x\"\n}\n\n{\"id\":3,\n \"name\":\"c\"}\n";
    for batch in [1, 2, 100] {
        let (rows, stats) = read(text, &spec(RowFormat::Json, &[], true, batch));
        assert_eq!(rows.unwrap(), ["1||", "3|c|"], "batch {batch}");
        assert_eq!(stats.samples(), ["f.json line 4: field \"id\": \"x\" is not a long"]);
    }
    let csv = RowFormat::Csv {
        delimiter: b',',
        header: false,
    };
    for batch in [1, 100] {
        let (rows, stats) = read("1,a\r\nx,b\r\n3,c\r\n", &spec(csv, &[], true, batch));
        assert_eq!(rows.unwrap(), ["1|a|", "3|c|"]);
        assert_eq!(stats.samples(), ["f.json line 2: field \"id\": \"x\" is not a long"]);
    }
}

#[test]
fn line_numbers_hold_past_buffer_compactions() {
    // ~15 MiB: the read buffer is drained and refilled many times
    let mut text = String::new();
    for i in 1..=400_000u64 {
        if i == 123_457 || i == 399_999 {
            text.push_str("{\"id\":\"bad\",\"name\":\"padding-padding\"}\n");
        } else {
            text.push_str(&format!("{{\"id\":{i},\"name\":\"padding-padding\"}}\n"));
        }
    }
    assert!(text.len() > 8 * CHUNK);
    let stats = ReadStats::default();
    let (mut rows, mut sum) = (0usize, 0i64);
    read_rows(
        "big.json",
        &mut text.as_bytes(),
        &spec(RowFormat::Json, &[], true, 8192),
        &stats,
        &mut |b| {
            rows += b.num_rows();
            let ids = b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
            sum += ids.iter().flatten().sum::<i64>();
            true
        },
    )
    .unwrap();
    assert_eq!(rows, 399_998);
    assert_eq!(sum, 400_000 * 400_001 / 2 - 123_457 - 399_999);
    assert_eq!(
        stats.samples(),
        [
            "big.json line 123457: field \"id\": \"bad\" is not a long",
            "big.json line 399999: field \"id\": \"bad\" is not a long"
        ]
    );
}

#[test]
fn without_omit_invalid_the_first_bad_record_fails_the_read() {
    let (rows, _) = read(JSON, &spec(RowFormat::Json, &[], false, 100));
    let e = rows.unwrap_err();
    assert_eq!(e.code(), ErrorCode::FileFormatMismatch);
    assert!(
        e.message()
            .starts_with("f.json line 2: field \"id\": \"x\" is not a long"),
        "{e}"
    );
    assert!(e.message().contains("omitInvalid"), "{e}");
}

#[test]
fn a_json_array_file_numbers_its_elements() {
    let text = " [{\"id\":1,\"name\":\"a\"}, {\"id\":\"no\"}, {\"id\":3,\"at\":\"2017-06-01T05:00:00+08:00\"}]";
    let (rows, stats) = read(text, &spec(RowFormat::Json, &[], true, 8));
    assert_eq!(rows.unwrap(), ["1|a|", "3||"]);
    assert_eq!(
        stats.samples(),
        ["f.json element 2: field \"id\": \"no\" is not a long"]
    );
    let (rows, _) = read("[{\"id\":1}", &spec(RowFormat::Json, &[], true, 8));
    assert!(rows.unwrap_err().message().contains("not a JSON array"));
}

#[test]
fn csv_quotes_short_rows_header_and_bad_fields() {
    let text = "id,name,score,at\n1,\"a, \"\"quoted\"\"\nline\",2.5\n2,b\nx,c,1\n4,d,1,2,3\n5,,9\r\n6,f,7";
    let csv = RowFormat::Csv {
        delimiter: b',',
        header: true,
    };
    for batch in [1, 2, 100] {
        let (rows, stats) = read(text, &spec(csv, &[1], true, batch));
        assert_eq!(
            rows.unwrap(),
            ["1|a, \"quoted\"\nline|2.5", "2|b|", "6|f|7.0"],
            "batch {batch}"
        );
        assert_eq!(
            stats.samples(),
            [
                "f.json line 5: field \"id\": \"x\" is not a long",
                "f.json line 6: 5 fields where the schema has 4",
                "f.json line 7: required field \"name\" is missing",
            ],
            "batch {batch}"
        );
    }
}

#[test]
fn text_lines_keep_empty_lines_and_refuse_bad_utf8() {
    let text_spec = RowSpec {
        format: RowFormat::Text,
        schema: Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)])),
        projection: vec![0],
        required: vec![],
        omit_invalid: false,
        batch_size: 2,
    };
    let (rows, _) = read("a b\r\n\nc\td\n", &text_spec);
    assert_eq!(rows.unwrap(), ["a b", "", "c\td"]);
    let stats = ReadStats::default();
    let e = read_rows("t.txt", &mut &b"ok\n\xff\xfe\n"[..], &text_spec, &stats, &mut |_| true).unwrap_err();
    assert_eq!(
        e.message(),
        "t.txt line 2: the line is not valid UTF-8 (set omitInvalid on the datasource to skip invalid records)"
    );
}

#[test]
fn an_empty_projection_still_counts_rows() {
    let mut s = spec(RowFormat::Json, &[], false, 2);
    s.projection = vec![];
    let stats = ReadStats::default();
    let mut n = 0;
    read_rows("f", &mut &b"{}\n{}\n{\"id\":1}\n"[..], &s, &stats, &mut |b| {
        n += b.num_rows();
        true
    })
    .unwrap();
    assert_eq!(n, 3);
}

#[test]
fn projected_json_reads_only_what_is_asked_and_counts_bad_records_as_before() {
    // score and id, in that order; name and at are not read
    let mut s = spec(RowFormat::Json, &[0], true, 2);
    s.projection = vec![2, 0];
    let text = concat!(
        "{\"name\":\"a\",\"score\":1.5,\"id\":1}\n",
        "{\"id\":2}\n",
        "{\"id\":3,\"at\":\"not a date\",\"name\":{\"nested\":[1]}}\n",
        "{\"id\":4,\"name\":tru}\n",
        "{\"score\":2,\"id\":5,\"extra\":\"\\u00e9\\\"\"}\n",
        "{\"score\":3}\n",
        "{\"id\":7,\"name\":\"\\ud83d\\ude00 fine\",\"score\":-0.5e1}",
    );
    for batch in [1, 2, 100] {
        s.batch_size = batch;
        let (rows, stats) = read(text, &s);
        // an unread field is not checked against its type (as before), but
        // a record that is not JSON is bad whichever field breaks it
        assert_eq!(rows.unwrap(), ["1.5|1", "|2", "|3", "2.0|5", "-5.0|7"], "batch {batch}");
        assert_eq!(
            stats.samples().iter().map(|x| &x[..20]).collect::<Vec<_>>(),
            ["f.json line 4: not v", "f.json line 6: requi"],
            "batch {batch}"
        );
    }
}

#[test]
fn projected_csv_reads_only_what_is_asked_and_counts_bad_records_as_before() {
    let mut s = spec(
        RowFormat::Csv {
            delimiter: b',',
            header: true,
        },
        &[0],
        true,
        2,
    );
    // score and id, in that order; name and at are not read
    s.projection = vec![2, 0];
    let text = "id,name,score,at\n1,a,1.5,\n2,not read,,not a date\n3,\"quoted, fine\",2\n4,b,1,x,extra\n,c,3\n6\n7,d,-5e0,2017-06-01T05:00:00Z";
    for batch in [1, 2, 100] {
        s.batch_size = batch;
        let (rows, stats) = read(text, &s);
        assert_eq!(rows.unwrap(), ["1.5|1", "|2", "2.0|3", "|6", "-5.0|7"], "batch {batch}");
        assert_eq!(
            stats.samples(),
            [
                "f.json line 5: 5 fields where the schema has 4",
                "f.json line 6: required field \"id\" is missing"
            ],
            "batch {batch}"
        );
    }
}
