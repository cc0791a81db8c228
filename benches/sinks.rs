//! Rows per second into each service sink at 100,000 rows, against the real
//! servers the tests use (started here on loopback): an HTTP receiver,
//! InfluxDB 1.x, osmem-server (OpenSearch `_bulk`), PostgreSQL, MariaDB.
//!
//! `cargo bench --bench sinks` (prints one line per sink; the servers come
//! from the same Debian / PyPI packages `.ci/run` installs).

#[path = "../tests/it/servers.rs"]
mod servers;

use pbatch::model::{DatasourceSpec, ExportSpec, JobSpec};
use std::io::Write;
use std::time::Instant;

const ROWS: usize = 100_000;

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(bench());
}

async fn bench() {
    let data = tempfile::tempdir().expect("tmp");
    let dir = data.path().join("buckets/in-bkt/ev");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("rows.json")).expect("file"));
    for i in 0..ROWS {
        writeln!(
            f,
            r#"{{"id":{i},"host":"h{}","status":{},"bytes":{},"ts":"2026-03-01T00:{:02}:{:02}Z"}}"#,
            i % 50,
            200 + (i % 5) * 100,
            i * 7 % 100_000,
            (i / 60) % 60,
            i % 60
        )
        .expect("write");
    }
    f.flush().expect("flush");
    drop(f);

    let http = servers::Receiver::start(0, 200);
    let (_influx, influx_url) = servers::start_influx().await;
    reqwest::Client::new()
        .post(format!("{influx_url}/query"))
        .form(&[("q", "CREATE DATABASE bench")])
        .send()
        .await
        .expect("create db");
    let (_os, os_url) = servers::start_osmem().await;
    let pg = servers::Postgres::start();
    let my = servers::Maria::start();

    let sinks: Vec<(&str, String, String)> = vec![
        (
            "http (text)",
            String::new(),
            format!(r#"{{"type":"http","spec":{{"host":"{}","uri":"/in"}}}}"#, http.url),
        ),
        (
            "tsdb (influxdb)",
            format!("tsdb.url={influx_url}"),
            r##"{"type":"tsdb","spec":{"destRepoName":"bench","series":"req","tags":{"host":"#host"},"fields":{"status":"#status","bytes":"#bytes","id":"#id"},"timestamp":"#ts"}}"##.to_string(),
        ),
        (
            "logdb (osmem _bulk)",
            format!("logdb.url={os_url}"),
            r##"{"type":"logdb","spec":{"destRepoName":"bench","doc":{"id":"#id","host":"#host","status":"#status","bytes":"#bytes"}}}"##.to_string(),
        ),
        (
            "report (postgresql)",
            format!("report.url={}", pg.url()),
            r##"{"type":"report","spec":{"dbName":"reports","tableName":"bench","columns":{"id":"#id","host":"#host","status":"#status","bytes":"#bytes"}}}"##.to_string(),
        ),
        (
            "report (mariadb)",
            format!("report.url={}", my.url()),
            r##"{"type":"report","spec":{"dbName":"reports","tableName":"bench","columns":{"id":"#id","host":"#host","status":"#status","bytes":"#bytes"}}}"##.to_string(),
        ),
    ];
    println!("{ROWS} rows into each sink (release build, one batch each):");
    for (label, setting, export) in sinks {
        let mut c = pbatch::Config::default();
        c.set("engine.timezone", "UTC").expect("tz");
        if let Some((k, v)) = setting.split_once('=') {
            c.set(k, v).expect("setting");
        }
        let engine = pbatch::Engine::builder()
            .config(c)
            .data_dir(data.path())
            .build()
            .expect("engine");
        let ds = DatasourceSpec::from_json(
            br#"{"region":"nb","type":"kodo","spec":{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"},
                 "schema":[{"key":"id","valtype":"long"},{"key":"host","valtype":"string"},{"key":"status","valtype":"long"},
                           {"key":"bytes","valtype":"long"},{"key":"ts","valtype":"string"}],"noVerifySchema":true}"#,
        )
        .expect("ds");
        engine.create_datasource("ev", &ds).expect("create ds");
        let job = JobSpec::from_json(
            br#"{"srcs":[{"name":"ev","type":"datasource","tableName":"ev"}],"computation":{"type":"sql","code":"SELECT * FROM ev"},
                 "scheduler":{"type":"crontab","spec":{"crontab":"0 0 1 * * *"}}}"#,
        )
        .expect("job");
        engine.create_job("j", &job).expect("create job");
        let e = ExportSpec::from_json(export.as_bytes(), None).expect("export");
        engine.create_export("j", "sink", &e).expect("create export");
        let t0 = Instant::now();
        let r = engine
            .run_once("j", &[], chrono::Utc::now().fixed_offset())
            .await
            .expect("run");
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(r.exports[0].rows, ROWS as u64, "{label}");
        println!("{label:>22}: {:>9.0} rows/s ({secs:.2} s)", ROWS as f64 / secs);
    }
}
