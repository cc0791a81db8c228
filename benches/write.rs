//! Writes of 1,000,000 rows (the CDN-log example's 12 columns, read from
//! snappy parquet) to each export format: json, csv, text, orc and parquet,
//! each with its usual compression.
//!
//! `cargo bench --bench write`. The input is generated (json.gz by the
//! example generator, rewritten as parquet by pbatch so that the read side
//! stays small). `benches/write_duckdb.py` compares parquet-snappy and
//! csv-gzip with DuckDB's COPY. `PBATCH_BENCH_ROWS` overrides the size.

use criterion::{Criterion, criterion_group, criterion_main};
#[path = "shared/mod.rs"]
mod shared;

use shared::{datasource, job};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let rows = shared::rows();
    let s = shared::setup(rows);
    let (engine, rt, t) = (&s.engine, &s.rt, s.time);
    job(
        engine,
        "to_parquet",
        "src_json",
        "SELECT * FROM t",
        r#"{"type":"kodo","spec":{"bucket":"write-in","keyPrefix":"f/","format":"parquet","fileCount":8}}"#,
    );
    rt.block_on(engine.run_once("to_parquet", &[], t)).expect("convert");
    datasource(engine, "src", "write-in", "f/", "parquet");

    let mut group = c.benchmark_group("write");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    for (fmt, compression, extra) in [
        ("parquet", "snappy", ""),
        ("csv", "gzip", r#","delimiter":",","containsHeader":true"#),
        ("csv", "none", r#","delimiter":",","containsHeader":true"#),
        ("json", "gzip", ""),
        ("text", "none", ""),
        ("orc", "snappy", ""),
    ] {
        let name = format!("w_{fmt}_{compression}");
        let export = format!(
            r#"{{"type":"kodo","spec":{{"bucket":"write-out","keyPrefix":"{name}/","format":"{fmt}","compression":"{compression}"{extra}}}}}"#
        );
        let sql = if fmt == "text" {
            "SELECT concat_ws(' ', domain, client_ip, method, url_path, status, bytes) AS line FROM t"
        } else {
            "SELECT * FROM t"
        };
        job(engine, &name, "src", sql, &export);
        s.bench_batch(&mut group, format!("{fmt}_{compression}_{rows}_rows"), &name, |r| {
            assert_eq!(r.rows_out, rows)
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
