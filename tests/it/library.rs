//! The library API (`pbatch::Engine`) without the CLI: resources created by
//! calls, a batch run, retention with an injected clock.

use pbatch::model::{DatasourceSpec, ExportSpec, JobSpec};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Debug)]
struct FixedClock(SystemTime);

impl pbatch::Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// Writes `lines` as the only input file and creates datasource `ev` over it.
fn ev_datasource(engine: &pbatch::Engine, data: &std::path::Path, lines: &str) {
    std::fs::create_dir_all(data.join("buckets/in-bkt/ev")).expect("mkdir");
    std::fs::write(data.join("buckets/in-bkt/ev/a.json"), lines).expect("write");
    let ds = DatasourceSpec::from_json(
        br#"{"region":"nb","type":"kodo","spec":{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"},
             "schema":[{"key":"id","valtype":"long","required":true}],"noVerifySchema":true}"#,
    )
    .expect("ds");
    engine.create_datasource("ev", &ds).expect("create ds");
}

fn old_file(path: &std::path::Path, age_days: u64, now: SystemTime) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let f = std::fs::File::create(path).expect("create");
    f.set_modified(now - Duration::from_secs(age_days * 86_400 + 60))
        .expect("mtime");
}

#[tokio::test]
async fn retention_deletes_old_outputs_with_an_injected_clock() {
    let data = tempfile::tempdir().expect("tmp");
    let now = SystemTime::now() + Duration::from_secs(30 * 86_400);
    let engine = pbatch::Engine::builder()
        .data_dir(data.path())
        .clock(Arc::new(FixedClock(now)))
        .build()
        .expect("engine");
    ev_datasource(&engine, data.path(), "{\"id\":1}\n{\"id\":2}\n");
    crate::util::add_daily_job(
        &engine,
        "daily",
        "SELECT COUNT(*) AS n FROM ev",
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"daily/$(date)/","format":"json","retention":7}}"#,
    );
    let out = data.path().join("buckets/out-bkt");
    old_file(&out.join("daily/2026-10-01/part-00000.json"), 20, now);
    old_file(&out.join("daily/2026-10-20/part-00000.json"), 3, now);
    old_file(&out.join("elsewhere/part-00000.json"), 90, now);

    let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T01:00:00+08:00").expect("time");
    let report = engine.run_once("daily", &[], t).await.expect("batch");
    assert_eq!(report.rows_read, 2);
    assert_eq!(report.rows_out, 1);
    assert_eq!(report.exports.len(), 1);
    assert_eq!(report.exports[0].expired, 1);
    assert!(
        !out.join("daily/2026-10-01").exists(),
        "20 days old, retention 7: deleted"
    );
    assert!(
        out.join("daily/2026-10-20/part-00000.json").exists(),
        "3 days old: kept"
    );
    assert!(
        out.join("elsewhere/part-00000.json").exists(),
        "not under this export's prefix"
    );
    let written = &report.exports[0].keys[0];
    assert!(
        out.join(written).exists(),
        "this batch's output is never expired: {written}"
    );
}

#[tokio::test]
async fn resource_rules_across_calls() {
    let data = tempfile::tempdir().expect("tmp");
    let engine = pbatch::Engine::builder().data_dir(data.path()).build().expect("engine");
    let job = JobSpec::from_json(
        br#"{"srcs":[{"name":"missing","type":"datasource","tableName":"t"}],"computation":{"type":"sql","code":"select 1"}}"#,
    )
    .expect("job");
    let e = engine.create_job("j", &job).expect_err("src missing");
    assert_eq!(e.code().code(), "E18612");
    assert!(e.message().contains("missing"), "{e}");
    let e = engine.job("nope").expect_err("no job");
    assert_eq!(e.to_string(), "E18606: job nope does not exist");
    let v: pbatch::model::VariableSpec =
        serde_json::from_str(r#"{"type":"time","value":"$(now)-1d","format":"yyyy-MM-dd"}"#).expect("var");
    engine.create_variable("yday", &v).expect("create var");
    assert_eq!(
        engine.create_variable("yday", &v).expect_err("dup").code().code(),
        "E18655"
    );
    assert_eq!(
        engine.create_variable("now", &v).expect_err("system").code().code(),
        "E18656"
    );
    assert_eq!(engine.list_variables(Some("user")).expect("list").len(), 1);
    assert_eq!(engine.list_variables(Some("system")).expect("list").len(), 8);
    engine.delete_variable("yday").expect("delete");
    assert_eq!(engine.variable("yday").expect_err("gone").code().code(), "E18654");
}

#[tokio::test]
async fn runs_are_recorded_and_history_answers_the_query() {
    let data = tempfile::tempdir().expect("tmp");
    let mut config = pbatch::Config::default();
    config.set("engine.timezone", "Asia/Shanghai").expect("key");
    let engine = pbatch::Engine::builder()
        .config(config)
        .data_dir(data.path())
        .durable()
        .build()
        .expect("engine");
    ev_datasource(&engine, data.path(), "{\"id\":1}\n");
    engine
        .create_job(
            "j",
            &JobSpec::from_json(
                br#"{"srcs":[{"name":"ev","type":"datasource","tableName":"ev"}],
                     "computation":{"type":"sql","code":"SELECT id FROM ev WHERE id > $(min_id)"},
                     "params":[{"name":"min_id","default":"0"}]}"#,
            )
            .expect("job"),
        )
        .expect("create job");
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T01:00:00+08:00").expect("time");
    let r1 = engine.run_once("j", &[], t).await.expect("run 1");
    assert_eq!((r1.run_id, r1.rows_out), (1, 1));
    let r2 = engine
        .run_once("j", &[("min_id".into(), "5".into())], t)
        .await
        .expect("run 2");
    assert_eq!((r2.run_id, r2.rows_out), (2, 0));
    let e = engine
        .run_once("j", &[("min_id".into(), "oops)".into())], t)
        .await
        .expect_err("bad SQL after expansion");
    assert_eq!(e.code().code(), "E18209");
    // an undeclared param is refused before any batch exists
    let e = engine
        .run_once("j", &[("nope".into(), "1".into())], t)
        .await
        .expect_err("undeclared");
    assert_eq!(e.code().code(), "E18607");

    let all = engine.history("j", &Default::default()).expect("history");
    assert_eq!(all.total, 3);
    let ids: Vec<i64> = all.history.iter().map(|h| h.run_id).collect();
    assert_eq!(ids, vec![3, 2, 1], "newest first by default");
    assert_eq!(all.history[0].status, pbatch::model::RunStatus::Failed);
    assert!(
        all.history[0].message.starts_with("E18209"),
        "{}",
        all.history[0].message
    );
    assert_eq!(all.history[2].batch_time, "2026-11-25 01:00:00");
    let q = |s: &str| -> pbatch::model::HistoryQuery { serde_json::from_str(s).expect("query") };
    let ok = engine
        .history("j", &q(r#"{"status":"Successful","sortBy":"runId"}"#))
        .expect("history");
    assert_eq!(ok.history.iter().map(|h| h.run_id).collect::<Vec<_>>(), vec![1, 2]);
    let latest = engine.history("j", &q(r#"{"runId":-1}"#)).expect("latest");
    assert_eq!((latest.total, latest.history[0].run_id), (1, 3));
    let page = engine.history("j", &q(r#"{"page":2,"size":2}"#)).expect("page");
    assert_eq!((page.total, page.history.len(), page.history[0].run_id), (3, 1, 1));
    assert_eq!(
        engine
            .history("j", &q(r#"{"sortBy":"size"}"#))
            .expect_err("bad sort")
            .code()
            .code(),
        "E18007"
    );
    assert_eq!(
        engine.history("nope", &q("{}")).expect_err("no job").code().code(),
        "E18606"
    );
}

#[tokio::test]
async fn a_partitioned_export_with_many_folders_writes_one_file_each() {
    let data = tempfile::tempdir().expect("tmp");
    let engine = pbatch::Engine::builder().data_dir(data.path()).build().expect("engine");
    let lines: String = (0..3000).map(|i| format!("{{\"id\":{i}}}\n")).collect();
    ev_datasource(&engine, data.path(), &lines);
    crate::util::add_daily_job(
        &engine,
        "p",
        "SELECT id % 300 AS bucket, id FROM ev",
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"p/$(date)/","format":"parquet","partitionBy":["bucket"]}}"#,
    );
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T01:00:00+08:00").expect("time");
    let r = engine.run_once("p", &[], t).await.expect("batch");
    let e = &r.exports[0];
    assert_eq!(e.rows, 3000);
    assert_eq!(e.keys.len(), 300, "sorted by the partition column: one file per folder");
    assert!(
        e.keys.iter().all(|k| k.ends_with("/part-00000.parquet")),
        "{:?}",
        &e.keys[..3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cancels_a_long_query_within_two_seconds_and_rerun_runs_it_again() {
    use pbatch::model::RunStatus;
    use std::time::Instant;
    let data = tempfile::tempdir().expect("tmp");
    let engine = pbatch::Engine::builder().data_dir(data.path()).build().expect("engine");
    let lines: String = (0..3000).map(|i| format!("{{\"id\":{i}}}\n")).collect();
    ev_datasource(&engine, data.path(), &lines);
    let job = |sql: &str| {
        JobSpec::from_json(
            format!(
                r#"{{"srcs":[{{"name":"ev","type":"datasource","tableName":"ev"}}],"computation":{{"type":"sql","code":"{sql}"}},
                    "scheduler":{{"type":"crontab","spec":{{"crontab":"0 0 1 * * *"}}}}}}"#
            )
            .as_bytes(),
        )
        .expect("job")
    };
    // 10^11 generated rows in small batches: runs for hours unless stopped,
    // and yields between batches, so a stop is seen at once
    engine
        .create_job(
            "slow",
            &job("SELECT count(*) AS n FROM generate_series(1, 100000000000) WHERE value % 7 = 3"),
        )
        .expect("slow");
    engine
        .create_job("fast", &job("SELECT count(*) AS n FROM ev"))
        .expect("fast");
    for j in ["slow", "fast"] {
        let e = ExportSpec::from_json(
            br#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"x/$(date)/","format":"json"}}"#,
            None,
        )
        .expect("export");
        engine.create_export(j, "out", &e).expect("create export");
    }
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T01:00:00+08:00").expect("time");

    let id = engine.start_batch("slow", &[], t).expect("start");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let h = engine.history("slow", &Default::default()).expect("history");
    assert_eq!(h.history[0].status, RunStatus::Running);
    assert_eq!(
        h.history[0].end_time, None,
        "no endTime while Running: {:?}",
        h.history[0]
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let later = engine.history("slow", &Default::default()).expect("history");
    assert!(
        later.history[0].duration >= 1,
        "duration counts up: {:?}",
        later.history[0]
    );
    let e = engine.rerun_batch("slow", id).await.expect_err("running");
    assert_eq!(e.code().code(), "E18625");
    assert!(e.message().contains("Running"), "{e}");

    let t0 = Instant::now();
    let out = engine.stop_batch("slow", id).await.expect("stop");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(2),
        "stop took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        (out.pre_status, out.post_status),
        (RunStatus::Running, RunStatus::Canceled)
    );
    let h = engine.history("slow", &Default::default()).expect("history");
    assert_eq!(h.history[0].status, RunStatus::Canceled);
    assert!(h.history[0].end_time.is_some(), "an ended run has its endTime");
    assert!(
        !data.path().join("buckets/out-bkt").exists(),
        "a canceled batch commits nothing"
    );
    let staged: Vec<_> = walkdir::WalkDir::new(data.path().join(".staging"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .collect();
    assert!(staged.is_empty(), "staging discarded: {staged:?}");
    let e = engine.stop_batch("slow", id).await.expect_err("already stopped");
    assert_eq!(e.code().code(), "E18626");
    assert!(e.message().contains("Canceled"), "{e}");

    let r = engine.run_once("fast", &[], t).await.expect("fast");
    let out = engine.rerun_batch("fast", r.run_id).await.expect("rerun");
    assert_eq!(
        (out.pre_status, out.post_status, out.rerun_count),
        (RunStatus::Successful, RunStatus::Running, 1)
    );
    let h = engine
        .wait_batch("fast", r.run_id, std::time::Duration::from_secs(30))
        .await
        .expect("wait");
    assert_eq!((h.status, h.rerun_count), (RunStatus::Successful, 1));
    let again = engine.history("fast", &Default::default()).expect("history");
    assert_eq!(again.total, 1, "a rerun is the same batch, not a new one");
    let e = engine.rerun_batch("fast", 99).await.expect_err("no such run");
    assert_eq!(e.code().code(), "E18624");

    // a job deleted and created again under its name starts with no history
    engine.delete_job("fast").expect("delete");
    engine
        .create_job("fast", &job("SELECT count(*) AS n FROM ev"))
        .expect("again");
    assert_eq!(engine.history("fast", &Default::default()).expect("history").total, 0);
    let r = engine.run_once("fast", &[], t).await.expect("fast again");
    assert_eq!(r.run_id, 1, "runIds start again");
}

/// `omitInvalid` on a datasource: invalid records are skipped, counted in the
/// report and named in the run's history message; without it the batch
/// fails naming the file, line and field, and history says so.
#[tokio::test]
async fn invalid_records_are_counted_in_the_run_message_or_fail_it() {
    let data = tempfile::tempdir().expect("tmp");
    let engine = pbatch::Engine::builder().data_dir(data.path()).build().expect("engine");
    std::fs::create_dir_all(data.path().join("buckets/in-bkt/ev")).expect("mkdir");
    let lines = "{\"id\":1,\"n\":2}\n{\"id\":\"one\"}\n{\"n\":5}\n{\"id\":3,\"n\":4}\n";
    std::fs::write(data.path().join("buckets/in-bkt/ev/a.json"), lines).expect("write");
    for (name, omit) in [("lenient", true), ("strict", false)] {
        let ds = DatasourceSpec::from_json(
            format!(
                r#"{{"region":"nb","type":"kodo","spec":{{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"}},
                    "schema":[{{"key":"id","valtype":"long","required":true}},{{"key":"n","valtype":"long","required":false}}],
                    "noVerifySchema":true,"omitInvalid":{omit}}}"#
            )
            .as_bytes(),
        )
        .expect("ds");
        engine.create_datasource(name, &ds).expect("create ds");
        let job = format!(
            r#"{{"srcs":[{{"name":"{name}","type":"datasource","tableName":"ev"}}],
                "computation":{{"type":"sql","code":"SELECT SUM(n) AS n FROM ev"}}}}"#
        );
        engine
            .create_job(
                &format!("{name}_job"),
                &JobSpec::from_json(job.as_bytes()).expect("job"),
            )
            .expect("create job");
    }
    assert!(engine.datasource("lenient").expect("ds").omit_invalid);
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T01:00:00+08:00").expect("time");
    let r = engine.run_once("lenient_job", &[], t).await.expect("lenient run");
    assert_eq!((r.rows_read, r.invalid_skipped), (2, 2));
    let h = engine.history("lenient_job", &Default::default()).expect("history");
    let msg = &h.history[0].message;
    assert!(msg.contains("skipped 2 invalid records"), "{msg}");
    assert!(
        msg.contains("key \"ev/a.json\" line 2: field \"id\": \"one\" is not a long"),
        "{msg}"
    );
    assert!(msg.contains("line 3: required field \"id\" is missing"), "{msg}");

    let e = engine.run_once("strict_job", &[], t).await.expect_err("strict run");
    assert_eq!(e.code().code(), "E18623", "{e}");
    assert!(e.message().contains("ev/a.json\" line 2"), "{e}");
    let h = engine.history("strict_job", &Default::default()).expect("history");
    assert!(h.history[0].message.starts_with("E18623"), "{}", h.history[0].message);
}

/// pbatch reads back what it writes: for every row format x compression the
/// one table accepts, a job exports 1,000 rows and a datasource over that
/// output reads them again (compression found from the file names).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_format_and_codec_it_writes_reads_back() {
    use pbatch::model::{Codec, ExportFormat, FORMAT_COMPRESSION};
    let data = tempfile::tempdir().expect("tmp");
    let engine = pbatch::Engine::builder().data_dir(data.path()).build().expect("engine");
    let mut lines = String::new();
    for i in 0..1000 {
        lines.push_str(&format!("{{\"id\":{i}}}\n"));
    }
    ev_datasource(&engine, data.path(), &lines);
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T01:00:00+08:00").expect("time");
    let mut tried = 0;
    for (format, compression, codec) in FORMAT_COMPRESSION {
        let (fmt, comp) = (format.as_str(), compression.as_str());
        if !matches!(format, ExportFormat::Json | ExportFormat::Csv | ExportFormat::Text)
            || !matches!(codec, Codec::Supported { .. })
        {
            continue;
        }
        let name = format!("w_{fmt}_{comp}");
        let sql = if *format == ExportFormat::Text {
            "SELECT CAST(id AS VARCHAR) AS line FROM ev"
        } else {
            "SELECT id FROM ev"
        };
        let job = format!(
            r#"{{"srcs":[{{"name":"ev","type":"datasource","tableName":"ev"}}],
                "computation":{{"type":"sql","code":"{sql}"}},
                "scheduler":{{"type":"crontab","spec":{{"crontab":"0 0 1 * * *"}}}}}}"#
        );
        engine
            .create_job(&name, &JobSpec::from_json(job.as_bytes()).expect("job"))
            .expect("create job");
        let export = format!(
            r#"{{"type":"kodo","spec":{{"bucket":"rt-bkt","keyPrefix":"{fmt}-{comp}/$(date)/","format":"{fmt}",
                "compression":"{comp}","delimiter":",","containsHeader":false,"fileCount":2}}}}"#
        );
        engine
            .create_export(
                &name,
                "out",
                &ExportSpec::from_json(export.as_bytes(), None).expect("export"),
            )
            .expect("create export");
        engine.run_once(&name, &[], t).await.expect("write");

        let (ftype, schema) = match format {
            ExportFormat::Text => ("text", "[]"),
            ExportFormat::Csv => ("csv", r#"[{"key":"id","valtype":"long"}]"#),
            _ => ("json", r#"[{"key":"id","valtype":"long"}]"#),
        };
        let ds = format!(
            r#"{{"region":"nb","type":"kodo","spec":{{"bucket":"rt-bkt","keyPrefixes":["{fmt}-{comp}/"],"fileType":"{ftype}",
                "delimiter":",","containsHeader":false}},"schema":{schema},"noVerifySchema":false}}"#
        );
        let back = format!("r_{fmt}_{comp}");
        engine
            .create_datasource(&back, &DatasourceSpec::from_json(ds.as_bytes()).expect("ds"))
            .expect("create ds");
        let col = if *format == ExportFormat::Text {
            "CAST(text AS BIGINT)"
        } else {
            "id"
        };
        let job = format!(
            r#"{{"srcs":[{{"name":"{back}","type":"datasource","tableName":"b"}}],
                "computation":{{"type":"sql","code":"SELECT COUNT(*) AS n, SUM({col}) AS s FROM b"}},
                "scheduler":{{"type":"crontab","spec":{{"crontab":"0 0 1 * * *"}}}}}}"#
        );
        engine
            .create_job(&back, &JobSpec::from_json(job.as_bytes()).expect("job"))
            .expect("create job");
        engine
            .create_export(
                &back,
                "out",
                &ExportSpec::from_json(
                    format!(r#"{{"type":"kodo","spec":{{"bucket":"sum-bkt","keyPrefix":"{back}/$(date)/","format":"json"}}}}"#)
                        .as_bytes(),
                    None,
                )
                .expect("export"),
            )
            .expect("create export");
        let r = engine.run_once(&back, &[], t).await.expect("read back");
        assert_eq!((r.files_read, r.rows_read), (2, 1000), "{fmt} {comp}");
        let out =
            std::fs::read_to_string(data.path().join("buckets/sum-bkt").join(&r.exports[0].keys[0])).expect("sum");
        assert_eq!(out.trim(), r#"{"n":1000,"s":499500}"#, "{fmt} {comp}");
        tried += 1;
    }
    assert_eq!(tried, 18, "3 row formats x 6 compressions");
}

/// What every run would fail with is refused when the export is created or
/// updated, once the job's columns are known from declared schemas.
#[tokio::test]
async fn exports_that_cannot_fit_the_jobs_columns_are_refused_at_create_time() {
    let (engine, _d) = crate::util::engine_with_ev(
        pbatch::Config::default(),
        "{\"id\":1,\"day\":\"a\"}\n",
        r#"[{"key":"id","valtype":"long"},{"key":"day","valtype":"string"}]"#,
    );
    crate::util::add_job(
        &engine,
        "j",
        "SELECT id, day FROM ev",
        r#"{"type":"crontab","spec":{"crontab":"0 0 1 * * *"}}"#,
    );
    let kodo = |partition: &str| {
        ExportSpec::from_json(
            format!(
                r#"{{"type":"kodo","spec":{{"bucket":"out-bkt","keyPrefix":"x/$(date)/","format":"csv","delimiter":",","partitionBy":{partition}}}}}"#
            )
            .as_bytes(),
            None,
        )
        .expect("spec")
    };
    let e = engine
        .create_export("j", "p", &kodo(r#"["nope"]"#))
        .expect_err("no such column");
    assert_eq!(e.code().code(), "E18314", "{e}");
    assert!(
        e.message().contains("\"nope\"") && e.message().contains("id, day"),
        "{e}"
    );
    let e = engine
        .create_export("j", "p", &kodo(r#"["id","day"]"#))
        .expect_err("no column left");
    assert_eq!(e.code().code(), "E18651", "{e}");
    engine.create_export("j", "p", &kodo(r#"["day"]"#)).expect("fits");
    let e = engine
        .update_export("j", "p", &kodo(r#"["nope"]"#))
        .expect_err("update too");
    assert_eq!(e.code().code(), "E18314", "{e}");
    let r = engine
        .run_once(
            "j",
            &[],
            chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00+08:00").expect("t"),
        )
        .await
        .expect("the accepted export runs");
    assert_eq!(r.exports[0].keys, ["x/2026-11-25/day=a/part-00000.csv"]);
}
