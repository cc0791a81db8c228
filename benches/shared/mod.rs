//! What the scan and write benches share: the example's schema and helpers
//! that define a datasource and a job with one export.

use pbatch::model::{DatasourceSpec, ExportSpec, JobSpec};

/// The CDN-log example's fields.
pub const FIELDS: &str = r#"[{"key":"ts","valtype":"date"},{"key":"domain","valtype":"string"},
    {"key":"client_ip","valtype":"string"},{"key":"method","valtype":"string"},{"key":"url_path","valtype":"string"},
    {"key":"status","valtype":"long"},{"key":"bytes","valtype":"long"},{"key":"duration_ms","valtype":"long"},
    {"key":"referer","valtype":"string"},{"key":"user_agent","valtype":"string"},{"key":"cache","valtype":"string"},
    {"key":"region","valtype":"string"}]"#;

/// Datasource `name` over `bucket`/`prefix` of type `ftype` (csv: ',' with a header).
pub fn datasource(engine: &pbatch::Engine, name: &str, bucket: &str, prefix: &str, ftype: &str) {
    let ds = format!(
        r#"{{"region":"nb","type":"kodo","spec":{{"bucket":"{bucket}","keyPrefixes":["{prefix}"],"fileType":"{ftype}",
            "delimiter":",","containsHeader":true}},"schema":{FIELDS},"noVerifySchema":true}}"#
    );
    engine
        .create_datasource(name, &DatasourceSpec::from_json(ds.as_bytes()).expect("ds"))
        .expect("create ds");
}

/// Job `name` reading `src` as table `t`, running `sql`, with export `export` (a JSON body).
pub fn job(engine: &pbatch::Engine, name: &str, src: &str, sql: &str, export: &str) {
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

/// `PBATCH_BENCH_ROWS`, default 1,000,000.
pub fn rows() -> u64 {
    std::env::var("PBATCH_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// A bench's world: `rows` generated example rows in a temporary data dir
/// (kept alive by the `TempDir`), an engine on it with datasource `src_json`
/// over them, a runtime, and the batch time.
pub struct Setup {
    /// Holds the data dir until the bench ends.
    pub _data: tempfile::TempDir,
    pub engine: pbatch::Engine,
    pub rt: tokio::runtime::Runtime,
    pub time: chrono::DateTime<chrono::FixedOffset>,
}

pub fn setup(rows: u64) -> Setup {
    let data = tempfile::tempdir().expect("temp dir");
    pbatch::example::generate_cdn_logs(data.path(), rows, 8).expect("generating logs");
    let engine = pbatch::Engine::builder().data_dir(data.path()).build().expect("engine");
    datasource(
        &engine,
        "src_json",
        pbatch::example::BUCKET,
        pbatch::example::PREFIX,
        "json",
    );
    Setup {
        _data: data,
        engine,
        rt: tokio::runtime::Runtime::new().expect("runtime"),
        time: chrono::DateTime::parse_from_rfc3339("2026-11-25T01:00:00+08:00").expect("time"),
    }
}

impl Setup {
    /// Benches one batch of job `name` as `id`; `check` looks at each report.
    pub fn bench_batch(
        &self,
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        id: String,
        name: &str,
        check: impl Fn(&pbatch::RunReport),
    ) {
        group.bench_function(id, |b| {
            b.iter(|| {
                let r = self
                    .rt
                    .block_on(self.engine.run_once(name, &[], self.time))
                    .expect("batch");
                check(&r);
            })
        });
    }
}
