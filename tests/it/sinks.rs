//! Service exports against real servers on loopback:
//! - HTTP: a receiver this harness starts (hyper) that records every request
//!   and can answer 503 a set number of times first;
//! - tsdb: InfluxDB 1.x (`influxd` from Debian's influxdb package, installed
//!   by `.ci/run`), read back with `/query`;
//! - logdb: osmem-server (an OpenSearch API emulator from PyPI, in the test
//!   venv), read back with `_count` and `_search`.
//!
//! A missing server fails the test with what to install; nothing is skipped.

use crate::servers::{Receiver, start_influx, start_osmem};
use pbatch::model::{DatasourceSpec, ExportSpec, RunStatus};

fn engine_with(config: pbatch::Config, rows: &str) -> (pbatch::Engine, tempfile::TempDir) {
    crate::util::engine_with_ev(
        config,
        rows,
        r#"[{"key":"id","valtype":"long"},{"key":"name","valtype":"string"},{"key":"v","valtype":"float"},
            {"key":"ts","valtype":"string"}]"#,
    )
}

/// `ev` without a declared schema: inferred at each batch.
fn engine_with_inferred(config: pbatch::Config) -> (pbatch::Engine, tempfile::TempDir) {
    let (engine, data) = crate::util::engine_in_tmp(config);
    std::fs::create_dir_all(data.path().join("buckets/in-bkt/ev")).expect("mkdir");
    std::fs::write(data.path().join("buckets/in-bkt/ev/a.json"), ROWS).expect("write");
    let ds = DatasourceSpec::from_json(
        br#"{"region":"nb","type":"kodo","spec":{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"}}"#,
    )
    .expect("ds");
    engine.create_datasource("ev", &ds).expect("create ds");
    (engine, data)
}

fn c_with_tsdb(url: &str) -> pbatch::Config {
    let mut c = config(1000);
    c.set("tsdb.url", url).expect("url");
    c
}

fn config(batch: usize) -> pbatch::Config {
    let mut c = pbatch::Config::default();
    c.set("engine.timezone", "Asia/Shanghai").expect("tz");
    c.set("engine.sink_batch_records", &batch.to_string()).expect("batch");
    c
}

fn job(engine: &pbatch::Engine, sql: &str) {
    crate::util::add_job(
        engine,
        "j",
        sql,
        r#"{"type":"crontab","spec":{"crontab":"0 0 1 * * *"}}"#,
    );
}

fn export(engine: &pbatch::Engine, name: &str, body: &str) {
    crate::util::add_export(engine, "j", name, body);
}

fn t() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339("2026-03-01T09:00:00+08:00").expect("time")
}

const ROWS: &str = r#"{"id":1,"name":"a\tb","v":1.5,"ts":"2026-03-01T00:00:00Z"}
{"id":2,"name":"line\nbreak","v":2.0,"ts":"2026-03-01T00:00:01Z"}
{"id":3,"name":null,"v":3.25,"ts":"2026-03-01T00:00:02Z"}
{"id":4,"name":"d","v":null,"ts":"2026-03-01T00:00:03Z"}
{"id":5,"name":"e \"q\"","v":5.0,"ts":"not a time"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_export_sends_batches_in_the_push_format_and_retries_5xx() {
    let rx = Receiver::start(2, 503);
    let (engine, data) = engine_with(config(2), ROWS);
    job(&engine, "SELECT id, name FROM ev ORDER BY id");
    let host = rx.url.trim_start_matches("http://").to_string() + "/";
    export(
        &engine,
        "push",
        &format!(r#"{{"type":"http","spec":{{"host":"{host}","uri":"/in/events"}}}}"#),
    );
    export(
        &engine,
        "copy",
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"c/$(date)/","format":"json"}}"#,
    );
    let r = engine.run_once("j", &[], t()).await.expect("run");
    let push = r.exports.iter().find(|e| e.export == "push").expect("push report");
    assert_eq!(push.rows, 5);
    let got = rx.got();
    // two 503s, then three batches of 2, 2 and 1 records
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[0].body, got[2].body, "a retry resends the same batch");
    let bodies: Vec<&str> = got[2..].iter().map(|g| g.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "id=1\tname=a\\tb\nid=2\tname=line\\nbreak",
            "id=3\nid=4\tname=d",
            "id=5\tname=e \"q\""
        ]
    );
    assert!(
        got.iter()
            .all(|g| g.path == "/in/events" && g.content_type == "text/plain")
    );
    // each request names its batch and number; a retry repeats its key
    let keys: Vec<&str> = got.iter().map(|g| g.idempotency_key.as_str()).collect();
    let key = |n: u32| format!("j/2026-03-01T09:00:00+08:00/push/{n}");
    assert_eq!(keys, [key(1), key(1), key(1), key(2), key(3)]);
    // a rerun of the batch sends the same keys: a receiver that drops
    // repeats keeps exactly one copy of each record
    engine.run_once("j", &[], t()).await.expect("rerun");
    let mut by_key = std::collections::BTreeMap::new();
    for g in rx.got() {
        by_key.insert(g.idempotency_key.clone(), g.body.clone());
    }
    assert_eq!(by_key.len(), 3, "{by_key:?}");
    assert_eq!(by_key.values().map(|b| b.lines().count()).sum::<usize>(), 5);
    assert!(
        data.path()
            .join("buckets/out-bkt/c/2026-03-01/part-00000.json")
            .is_file()
    );

    // json: one object per line
    let rx2 = Receiver::start(0, 200);
    engine.delete_export("j", "push").expect("delete");
    export(
        &engine,
        "push",
        &format!(
            r#"{{"type":"http","spec":{{"host":"{}","uri":"/j","format":"json"}}}}"#,
            rx2.url
        ),
    );
    engine.run_once("j", &[], t()).await.expect("run json");
    let got = rx2.got();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].content_type, "application/json");
    assert_eq!(
        got[0].body,
        "{\"id\":1,\"name\":\"a\\tb\"}\n{\"id\":2,\"name\":\"line\\nbreak\"}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_receiver_fails_the_batch_and_no_file_is_committed() {
    let rx = Receiver::start(usize::MAX, 400);
    let (engine, data) = engine_with(config(1000), ROWS);
    job(&engine, "SELECT id FROM ev");
    export(
        &engine,
        "push",
        &format!(r#"{{"type":"http","spec":{{"host":"{}","uri":"/x"}}}}"#, rx.url),
    );
    export(
        &engine,
        "copy",
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"c/$(date)/","format":"json"}}"#,
    );
    let e = engine.run_once("j", &[], t()).await.expect_err("refused");
    assert!(
        e.message().contains("400") && e.message().contains("answer 1: status 400") && e.message().contains("/x"),
        "{e}"
    );
    assert_eq!(rx.got().len(), 1, "a 4xx is not retried");
    assert!(!data.path().join("buckets/out-bkt").exists(), "nothing committed");
    let h = engine.history("j", &Default::default()).expect("history");
    assert_eq!(h.history[0].status, RunStatus::Failed);

    // an export naming a column the job does not output
    let rx = Receiver::start(0, 200);
    let (engine, _d) = engine_with(config(1000), ROWS);
    job(&engine, "SELECT id FROM ev");
    let mut c = config(1000);
    c.set("tsdb.url", &rx.url).expect("url");
    let (engine2, _d2) = engine_with(c, ROWS);
    job(&engine2, "SELECT id FROM ev");
    // the job's columns are known from the declared schema: refused when created
    let nope = ExportSpec::from_json(
        br##"{"type":"tsdb","spec":{"destRepoName":"db1","series":"s","fields":{"f":"#nope"}}}"##,
        None,
    )
    .expect("spec");
    let e = engine2.create_export("j", "ts", &nope).expect_err("missing column");
    assert_eq!(e.code().code(), "E18314", "{e}");
    assert!(e.message().contains("#nope") && e.message().contains("id"), "{e}");
    // a datasource whose schema is inferred at each batch: known only at the run
    let (engine3, d3) = engine_with_inferred(c_with_tsdb(&rx.url));
    job(&engine3, "SELECT id FROM ev");
    engine3
        .create_export("j", "ts", &nope)
        .expect("columns unknown before a run");
    let e = engine3.run_once("j", &[], t()).await.expect_err("missing column");
    assert_eq!(e.code().code(), "E18314", "{e}");
    assert!(e.message().contains("#nope") && e.message().contains("id"), "{e}");
    drop(d3);
    assert!(rx.got().is_empty());
    // a tsdb export without [tsdb] url is refused when created
    let e = engine
        .create_export(
            "j",
            "ts",
            &ExportSpec::from_json(
                br##"{"type":"tsdb","spec":{"destRepoName":"db1","series":"s","fields":{"f":"#id"}}}"##,
                None,
            )
            .expect("spec"),
        )
        .expect_err("unconfigured");
    assert_eq!(e.code().code(), "E18339");
    assert!(e.message().contains("[tsdb] url"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsdb_export_writes_line_protocol_into_influxdb() {
    let (_influx, url) = start_influx().await;
    let c = reqwest::Client::new();
    c.post(format!("{url}/query"))
        .form(&[("q", "CREATE DATABASE metrics")])
        .send()
        .await
        .expect("create db");
    let mut cfg = config(2);
    cfg.set("tsdb.url", &url).expect("url");
    let (engine, _d) = engine_with(cfg, ROWS);
    job(&engine, "SELECT id, name, v, ts, id % 2 AS odd FROM ev");
    export(
        &engine,
        "ts",
        r##"{"type":"tsdb","spec":{"destRepoName":"metrics","series":"ev","omitInvalid":true,
             "tags":{"odd":"#odd","who":"#name"},"fields":{"v":"#v","id":"#id"},"timestamp":"#ts"}}"##,
    );
    let r = engine.run_once("j", &[], t()).await.expect("run");
    let rep = r.exports.iter().find(|e| e.export == "ts").expect("report");
    assert_eq!((rep.rows, rep.invalid), (4, 1), "row 5's time does not parse");
    let q = c
        .get(format!("{url}/query"))
        .query(&[("db", "metrics"), ("q", "SELECT id, v, who, odd FROM ev ORDER BY time")])
        .send()
        .await
        .expect("query")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    let values = &q["results"][0]["series"][0]["values"];
    assert_eq!(
        values,
        &serde_json::json!([
            ["2026-03-01T00:00:00Z", 1, 1.5, "a\tb", "1"],
            ["2026-03-01T00:00:01Z", 2, 2, "line\\nbreak", "0"],
            ["2026-03-01T00:00:02Z", 3, 3.25, null, "1"],
            ["2026-03-01T00:00:03Z", 4, null, "d", "0"]
        ]),
        "{q}"
    );
    // without omitInvalid the bad time fails the batch naming it
    engine.delete_export("j", "ts").expect("delete");
    export(
        &engine,
        "ts",
        r##"{"type":"tsdb","spec":{"destRepoName":"metrics","series":"ev","fields":{"v":"#v","id":"#id"},"timestamp":"#ts"}}"##,
    );
    let e = engine.run_once("j", &[], t()).await.expect_err("bad time");
    assert!(
        e.message().contains("row 5") && e.message().contains("not a time"),
        "{e}"
    );
    // a database that does not exist
    engine.delete_export("j", "ts").expect("delete");
    export(
        &engine,
        "ts",
        r##"{"type":"tsdb","spec":{"destRepoName":"nodb","series":"ev","fields":{"id":"#id"}}}"##,
    );
    let e = engine.run_once("j", &[], t()).await.expect_err("no db");
    assert_eq!(e.code().code(), "E18326", "{e}");
    assert!(e.message().contains("nodb"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logdb_export_bulk_indexes_documents_into_an_opensearch_api() {
    let (_os, url) = start_osmem().await;
    let mut cfg = config(2);
    cfg.set("logdb.url", &url).expect("url");
    let (engine, _d) = engine_with(cfg, ROWS);
    job(&engine, "SELECT id, name, v FROM ev");
    export(
        &engine,
        "logs",
        r##"{"type":"logdb","spec":{"destRepoName":"events","doc":{"id":"#id","detail":{"name":"#name","value":"#v"}}}}"##,
    );
    let r = engine.run_once("j", &[], t()).await.expect("run");
    assert_eq!(r.exports.iter().find(|e| e.export == "logs").expect("report").rows, 5);
    let c = reqwest::Client::new();
    let count = || async {
        let v: serde_json::Value = c
            .get(format!("{url}/events/_count"))
            .send()
            .await
            .expect("count")
            .json()
            .await
            .expect("json");
        v
    };
    let n = count().await;
    assert_eq!(n["count"], 5, "{n}");
    // a rerun of the batch overwrites its documents (same _ids)
    engine.run_once("j", &[], t()).await.expect("rerun");
    let n = count().await;
    assert_eq!(n["count"], 5, "a rerun duplicated documents: {n}");
    let found: serde_json::Value = c
        .post(format!("{url}/events/_search"))
        .json(&serde_json::json!({"query":{"term":{"id":2}}}))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    assert_eq!(
        found["hits"]["hits"][0]["_source"],
        serde_json::json!({"id":2,"detail":{"name":"line\nbreak","value":2.0}}),
        "{found}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logdb_documents_the_store_refuses_fail_the_batch_or_are_counted_with_omit_invalid() {
    let (_os, url) = start_osmem().await;
    let c = reqwest::Client::new();
    // an index whose `at` field is a date: "not a time" is refused per item
    let r = c
        .put(format!("{url}/strict"))
        .json(&serde_json::json!({"mappings":{"properties":{"at":{"type":"date"},"id":{"type":"long"}}}}))
        .send()
        .await
        .expect("create index");
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let mut cfg = config(1000);
    cfg.set("logdb.url", &url).expect("url");
    let (engine, _d) = engine_with(cfg, ROWS);
    job(&engine, "SELECT id, ts FROM ev");
    export(
        &engine,
        "logs",
        r##"{"type":"logdb","spec":{"destRepoName":"strict","doc":{"id":"#id","at":"#ts"}}}"##,
    );
    let e = engine.run_once("j", &[], t()).await.expect_err("refused document");
    assert!(
        e.message().contains("refused 1 of 5") && e.message().contains("omitInvalid"),
        "{e}"
    );
    engine.delete_export("j", "logs").expect("delete");
    export(
        &engine,
        "logs",
        r##"{"type":"logdb","spec":{"destRepoName":"strict","omitInvalid":true,"doc":{"id":"#id","at":"#ts"}}}"##,
    );
    let r = engine.run_once("j", &[], t()).await.expect("omitInvalid");
    let rep = r.exports.iter().find(|e| e.export == "logs").expect("report");
    assert_eq!((rep.rows, rep.invalid), (4, 1));
}
