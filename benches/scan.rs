//! Scans of 1,000,000 rows with a known schema, per source format: NDJSON.gz,
//! plain csv with a header, and snappy parquet (8 files each, the same rows).
//!
//! `cargo bench --bench scan`. The example generator writes the json.gz
//! files; pbatch itself rewrites them as csv and parquet (so this bench needs
//! nothing but Rust; `benches/scan_duckdb.py` compares with DuckDB on files
//! DuckDB writes). `PBATCH_BENCH_ROWS` overrides the size.

use criterion::{Criterion, criterion_group, criterion_main};
#[path = "shared/mod.rs"]
mod shared;

use shared::{datasource, job};
use std::time::Duration;

const QUERY: &str = "SELECT status, COUNT(*) AS n, SUM(bytes) AS bytes, MAX(duration_ms) AS slowest, \
    COUNT(DISTINCT domain) AS domains FROM t WHERE ts IS NOT NULL GROUP BY status ORDER BY status";

fn bench(c: &mut Criterion) {
    let rows = shared::rows();
    let s = shared::setup(rows);
    let (engine, rt, t) = (&s.engine, &s.rt, s.time);
    for (fmt, extra) in [("csv", r#","delimiter":",","containsHeader":true"#), ("parquet", "")] {
        let export = format!(
            r#"{{"type":"kodo","spec":{{"bucket":"scan-{fmt}","keyPrefix":"f/","format":"{fmt}","fileCount":8{extra}}}}}"#
        );
        job(engine, &format!("to_{fmt}"), "src_json", "SELECT * FROM t", &export);
        rt.block_on(engine.run_once(&format!("to_{fmt}"), &[], t))
            .expect("convert");
        datasource(engine, &format!("src_{fmt}"), &format!("scan-{fmt}"), "f/", fmt);
    }

    let mut group = c.benchmark_group("scan");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    for (fmt, label) in [("json", "json_gz"), ("csv", "csv"), ("parquet", "parquet")] {
        let name = format!("scan_{fmt}");
        let export =
            format!(r#"{{"type":"kodo","spec":{{"bucket":"scan-out","keyPrefix":"{fmt}/$(date)/","format":"json"}}}}"#);
        job(engine, &name, &format!("src_{fmt}"), QUERY, &export);
        s.bench_batch(&mut group, format!("{label}_{rows}_rows"), &name, |r| {
            assert_eq!(r.rows_read, rows)
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
