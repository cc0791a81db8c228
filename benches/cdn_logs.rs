//! The example job end to end at 1,000,000 rows: NDJSON.gz -> SQL -> parquet.
//!
//! `cargo bench --bench cdn_logs`. Data is generated once per run into a
//! temporary folder (never committed). `PBATCH_BENCH_ROWS` overrides the size.

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::Path;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let rows: u64 = std::env::var("PBATCH_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let data = tempfile::tempdir().expect("temp dir");
    pbatch::example::generate_cdn_logs(data.path(), rows, 8).expect("generating logs");
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cdn-logs");
    let engine = pbatch::spec::engine_for_dir(&spec, Some(data.path())).expect("engine");
    pbatch::spec::load_dir(&engine, &spec).expect("specs");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let batch_time = chrono::DateTime::parse_from_rfc3339("2026-11-25T01:00:00+08:00").expect("time");

    let mut group = c.benchmark_group("cdn_logs");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function(format!("daily_traffic_{rows}_rows_json_gz_to_parquet"), |b| {
        b.iter(|| {
            let r = rt
                .block_on(engine.run_once("daily_traffic", &[], batch_time))
                .expect("batch");
            assert_eq!(r.rows_read, rows);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
