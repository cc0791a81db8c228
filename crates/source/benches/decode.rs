//! The row decoders on CDN-log records held in memory (no I/O, no inflate
//! unless asked): NDJSON and csv read with 3 of their 12 columns (a GROUP
//! BY's) and with all of them, and gzip inflate of the same NDJSON.
//!
//! `cargo bench -p pbatch-source --bench decode`. `PBATCH_BENCH_ROWS`
//! overrides the 200,000 records.

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pbatch_source::{Codec, ReadStats, RowFormat, RowSpec, read_rows};
use std::io::{Read, Write};
use std::sync::Arc;

const FIELDS: &[(&str, &str)] = &[
    ("ts", "date"),
    ("domain", "string"),
    ("client_ip", "string"),
    ("method", "string"),
    ("url_path", "string"),
    ("status", "long"),
    ("bytes", "long"),
    ("duration_ms", "long"),
    ("referer", "string"),
    ("user_agent", "string"),
    ("cache", "string"),
    ("region", "string"),
];

fn schema() -> SchemaRef {
    Arc::new(Schema::new(
        FIELDS
            .iter()
            .map(|(k, t)| {
                let dt = match *t {
                    "date" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    "long" => DataType::Int64,
                    _ => DataType::Utf8,
                };
                Field::new(*k, dt, true)
            })
            .collect::<Vec<_>>(),
    ))
}

/// `rows` records as NDJSON and as csv (no header), from a fixed seed.
fn records(rows: usize) -> (Vec<u8>, Vec<u8>) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let pick = |n: u64, xs: &[&'static str]| xs[(n % xs.len() as u64) as usize];
    let (mut json, mut csv) = (Vec::new(), Vec::new());
    for _ in 0..rows {
        let ts = format!("2026-11-24T{:02}:{:02}:{:02}Z", next() % 24, next() % 60, next() % 60);
        let ip = next();
        let ip = format!(
            "{}.{}.{}.{}",
            ip & 0xff,
            (ip >> 8) & 0xff,
            (ip >> 16) & 0xff,
            (ip >> 24) & 0xff
        );
        let domain = pick(next(), &["img.example.com", "video.example.com", "static.example.com"]);
        let method = pick(next(), &["GET", "GET", "HEAD", "POST"]);
        let path = pick(next(), &["/a/logo.png", "/v/intro.mp4", "/js/app.js"]);
        let status = pick(next(), &["200", "200", "206", "304", "404"]);
        let (bytes, ms) = (next() % 2_000_000, next() % 5_000);
        let referer = pick(
            next(),
            &["-", "https://www.example.com/", "https://m.example.com/list?page=2"],
        );
        let agent = pick(
            next(),
            &["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "curl/8.5.0"],
        );
        let cache = pick(next(), &["HIT", "MISS", "-"]);
        let region = pick(next(), &["nb", "bj", "gz"]);
        writeln!(
            json,
            r#"{{"ts":"{ts}","domain":"{domain}","client_ip":"{ip}","method":"{method}","url_path":"{path}","status":{status},"bytes":{bytes},"duration_ms":{ms},"referer":"{referer}","user_agent":"{agent}","cache":"{cache}","region":"{region}"}}"#
        )
        .ok();
        writeln!(
            csv,
            "{ts},{domain},{ip},{method},{path},{status},{bytes},{ms},{referer},{agent},{cache},{region}"
        )
        .ok();
    }
    (json, csv)
}

fn decode(input: &[u8], format: RowFormat, projection: &[usize]) -> usize {
    let spec = RowSpec {
        format,
        schema: schema(),
        projection: projection.to_vec(),
        required: vec![],
        omit_invalid: false,
        batch_size: 8192,
    };
    let stats = ReadStats::default();
    let mut rows = 0;
    read_rows("bench", &mut &input[..], &spec, &stats, &mut |b| {
        rows += b.num_rows();
        true
    })
    .expect("the bench's records decode");
    rows
}

fn bench(c: &mut Criterion) {
    let rows = std::env::var("PBATCH_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let (json, csv) = records(rows);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&json).expect("gzip in memory");
    let gz = gz.finish().expect("gzip in memory");
    let group_by = [1, 5, 6]; // domain, status, bytes
    let all: Vec<usize> = (0..FIELDS.len()).collect();
    let csv_format = RowFormat::Csv {
        delimiter: b',',
        header: false,
    };

    let mut g = c.benchmark_group("decode");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("json_3_of_12_columns", |b| {
        b.iter(|| assert_eq!(decode(&json, RowFormat::Json, &group_by), rows))
    });
    g.bench_function("json_all_columns", |b| {
        b.iter(|| assert_eq!(decode(&json, RowFormat::Json, &all), rows))
    });
    g.bench_function("gzip_inflate", |b| {
        b.iter(|| {
            let mut r = Codec::Gzip.open(Vec::new(), &gz[..]).expect("gzip reader");
            let mut sink = vec![0u8; 1 << 20];
            let mut n = 0;
            loop {
                match r.read(&mut sink).expect("inflate") {
                    0 => break,
                    k => n += k,
                }
            }
            assert_eq!(n, json.len());
        })
    });
    g.throughput(Throughput::Bytes(csv.len() as u64));
    g.bench_function("csv_3_of_12_columns", |b| {
        b.iter(|| assert_eq!(decode(&csv, csv_format, &group_by), rows))
    });
    g.bench_function("csv_all_columns", |b| {
        b.iter(|| assert_eq!(decode(&csv, csv_format, &all), rows))
    });
    // a COUNT DISTINCT per hour: the timestamp and one string
    g.bench_function("csv_ts_and_ip", |b| {
        b.iter(|| assert_eq!(decode(&csv, csv_format, &[0, 2]), rows))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
