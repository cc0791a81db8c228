//! Writes of 1,000,000 rows (the CDN-log example's 12 columns, read from
//! snappy parquet) to each export format: json, csv, text, orc and parquet,
//! each with its usual compression.
//!
//! `cargo bench --bench write`. The input is generated (json.gz by the
//! example generator, rewritten as parquet by pbatch so that the read side
//! stays small). `benches/write_duckdb.py` compares parquet-snappy and
//! csv-gzip with DuckDB's COPY. `PBATCH_BENCH_ROWS` overrides the size.

use criterion::{Criterion, criterion_group, criterion_main};
use pbatch::model::{DatasourceSpec, ExportSpec, JobSpec};
use std::time::Duration;

const FIELDS: &str = r#"[{"key":"ts","valtype":"date"},{"key":"domain","valtype":"string"},
    {"key":"client_ip","valtype":"string"},{"key":"method","valtype":"string"},{"key":"url_path","valtype":"string"},
    {"key":"status","valtype":"long"},{"key":"bytes","valtype":"long"},{"key":"duration_ms","valtype":"long"},
    {"key":"referer","valtype":"string"},{"key":"user_agent","valtype":"string"},{"key":"cache","valtype":"string"},
    {"key":"region","valtype":"string"}]"#;

fn datasource(engine: &pbatch::Engine, name: &str, bucket: &str, prefix: &str, ftype: &str) {
    let ds = format!(
        r#"{{"region":"nb","type":"kodo","spec":{{"bucket":"{bucket}","keyPrefixes":["{prefix}"],"fileType":"{ftype}"}},
            "schema":{FIELDS},"noVerifySchema":true}}"#
    );
    engine
        .create_datasource(name, &DatasourceSpec::from_json(ds.as_bytes()).expect("ds"))
        .expect("create ds");
}

fn job(engine: &pbatch::Engine, name: &str, src: &str, sql: &str, export: &str) {
    let job = format!(
        r#"{{"srcs":[{{"name":"{src}","type":"datasource","tableName":"t"}}],"computation":{{"type":"sql","code":"{sql}"}},
            "scheduler":{{"type":"crontab","spec":{{"crontab":"0 0 1 * * *"}}}}}}"#
    );
    engine
        .create_job(name, &JobSpec::from_json(job.as_bytes()).expect("job"))
        .expect("create job");
    engine
        .create_export(
            name,
            "out",
            &ExportSpec::from_json(export.as_bytes(), None).expect("export"),
        )
        .expect("create export");
}

fn bench(c: &mut Criterion) {
    let rows: u64 = std::env::var("PBATCH_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let data = tempfile::tempdir().expect("temp dir");
    pbatch::example::generate_cdn_logs(data.path(), rows, 8).expect("generating logs");
    let engine = pbatch::Engine::builder().data_dir(data.path()).build().expect("engine");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T01:00:00+08:00").expect("time");
    datasource(
        &engine,
        "src_json",
        pbatch::example::BUCKET,
        pbatch::example::PREFIX,
        "json",
    );
    job(
        &engine,
        "to_parquet",
        "src_json",
        "SELECT * FROM t",
        r#"{"type":"kodo","spec":{"bucket":"write-in","keyPrefix":"f/","format":"parquet","fileCount":8}}"#,
    );
    rt.block_on(engine.run_once("to_parquet", &[], t)).expect("convert");
    datasource(&engine, "src", "write-in", "f/", "parquet");

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
        job(&engine, &name, "src", sql, &export);
        group.bench_function(format!("{fmt}_{compression}_{rows}_rows"), |b| {
            b.iter(|| {
                let r = rt.block_on(engine.run_once(&name, &[], t)).expect("batch");
                assert_eq!(r.rows_out, rows);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
