//! Automatic retries: a batch that failed on the store (E18338) runs again
//! as a rerun once the S3 test server answers again; data and SQL errors are
//! not retried; a stop cancels a pending retry; `run_once` and `pbatch run`
//! retry in place and say which retry it is.

use crate::s3::{S3Server, SK};
use pbatch::model::{DatasourceSpec, ExportSpec, JobSpec, RunStatus};
use std::time::Duration;

/// Datasource `ev` over `logs-bkt` (one input file), job `daily` with
/// `retries` and `sql`, its export `out` to `out-bkt`.
fn define(engine: &pbatch::Engine, s3: &S3Server, retries: &str, sql: &str) {
    let input = s3.bucket("logs-bkt").join("ev/2026-03-01/part-0.json");
    std::fs::create_dir_all(input.parent().expect("dir")).expect("mkdir");
    std::fs::write(&input, "{\"id\":1,\"v\":10}\n{\"id\":2,\"v\":20}\n").expect("input");
    s3.bucket("out-bkt");
    let ds = DatasourceSpec::from_json(
        br#"{"region":"nb","type":"kodo","spec":{"bucket":"logs-bkt","keyPrefixes":["ev/"],"fileType":"json"},
            "schema":[{"key":"id","valtype":"long"},{"key":"v","valtype":"long"}],"noVerifySchema":true}"#,
    )
    .expect("ds");
    engine.create_datasource("ev", &ds).expect("create ds");
    let job = serde_json::json!({
        "srcs": [{"name": "ev", "type": "datasource", "tableName": "ev", "fileFilter": "$(date)"}],
        "computation": {"type": "sql", "code": sql},
        "scheduler": {"type": "crontab", "spec": {"crontab": "0 0 1 * * *"}},
        "retries": serde_json::from_str::<serde_json::Value>(retries).expect("retries"),
    });
    let spec = JobSpec::from_json(job.to_string().as_bytes()).expect("job");
    engine.create_job("daily", &spec).expect("create job");
    let e = ExportSpec::from_json(
        br#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"daily/$(date)/","format":"json"}}"#,
        None,
    )
    .expect("export");
    engine.create_export("daily", "out", &e).expect("create export");
}

fn batch_time() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339("2026-03-01T01:00:00+08:00").expect("time")
}

fn run(engine: &pbatch::Engine, id: i64) -> pbatch::model::JobHistory {
    find(engine, id).expect("the batch")
}

fn find(engine: &pbatch::Engine, id: i64) -> Option<pbatch::model::JobHistory> {
    let q = pbatch::model::HistoryQuery {
        run_id: Some(id),
        ..Default::default()
    };
    engine.history("daily", &q).expect("history").history.into_iter().next()
}

/// Ticks the scheduler until batch `id` is `status` with `reruns` reruns.
async fn until(engine: &pbatch::Engine, id: i64, status: RunStatus, reruns: i64) -> pbatch::model::JobHistory {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        engine.tick().expect("tick");
        // a batch started by a task may not be recorded yet
        let h = find(engine, id);
        if let Some(h) = h.as_ref().filter(|h| h.status == status && h.rerun_count == reruns) {
            return h.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "batch {id} not {status} with {reruns} reruns within 60 s: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_failed_on_the_store_is_retried_once_it_answers_again() {
    let s3 = S3Server::start();
    let (engine, _data) = crate::util::engine_in_tmp(s3.config(SK));
    define(
        &engine,
        &s3,
        r#"{"count": 3, "delaySeconds": 1}"#,
        "SELECT sum(v) AS total FROM ev",
    );
    // a started depend job runs once the retry succeeds, as after a first attempt
    let down = JobSpec::from_json(
        br#"{"srcs":[{"name":"daily","type":"job","tableName":"up"}],
             "computation":{"type":"sql","code":"SELECT total * 2 AS twice FROM up"},"scheduler":{"type":"depend"}}"#,
    )
    .expect("down");
    engine.create_job("down", &down).expect("create down");
    engine.start_job("down", &[]).expect("start down");
    s3.stop();
    let id = engine.start_batch("daily", &[], batch_time()).expect("start");
    let failed = until(&engine, id, RunStatus::Failed, 0).await;
    assert!(
        failed.message.starts_with("E18338: ") && failed.message.contains("; retry 1 of 3 at "),
        "{}",
        failed.message
    );
    s3.restart();
    let done = until(&engine, id, RunStatus::Successful, 1).await;
    assert!(done.message.ends_with(" (retry 1 of 3)"), "{}", done.message);
    let out = s3.root.path().join("out-bkt/daily/2026-03-01/part-00000.json");
    assert_eq!(
        std::fs::read_to_string(&out).expect("the retry's output"),
        "{\"total\":30}\n"
    );
    // the retry stays done: no second one runs
    tokio::time::sleep(Duration::from_millis(1500)).await;
    engine.tick().expect("tick");
    assert_eq!(run(&engine, id).rerun_count, 1);
    let q = pbatch::model::HistoryQuery::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        engine.tick().expect("tick");
        let h = engine.history("down", &q).expect("down history");
        if h.history.iter().any(|r| r.status == RunStatus::Successful) {
            assert_eq!(h.total, 1, "one downstream batch: {:?}", h.history);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "down did not run: {:?}",
            h.history
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_errors_are_not_retried_and_a_stop_cancels_a_pending_retry() {
    let s3 = S3Server::start();
    let (engine, _data) = crate::util::engine_in_tmp(s3.config(SK));
    define(
        &engine,
        &s3,
        r#"{"count": 2, "delaySeconds": 60}"#,
        "SELECT CAST('x' AS INT) + v AS bad FROM ev",
    );
    // a data error: Failed, no retry
    let id = engine.start_batch("daily", &[], batch_time()).expect("start");
    let h = until(&engine, id, RunStatus::Failed, 0).await;
    assert!(!h.message.contains("retry"), "{}", h.message);

    // a store error: a retry waits 60 s; stopping the batch cancels it
    s3.stop();
    let id = engine.start_batch("daily", &[], batch_time()).expect("start");
    let h = until(&engine, id, RunStatus::Failed, 0).await;
    assert!(h.message.contains("; retry 1 of 2 at "), "{}", h.message);
    let stopped = engine.stop_batch("daily", id).await.expect("stop");
    assert_eq!(
        (stopped.pre_status, stopped.post_status),
        (RunStatus::Failed, RunStatus::Failed)
    );
    assert!(
        run(&engine, id)
            .message
            .ends_with("; retry 1 was canceled: the batch was stopped"),
        "{}",
        run(&engine, id).message
    );
    let again = engine.stop_batch("daily", id).await;
    assert_eq!(
        again.expect_err("nothing left to stop").code(),
        pbatch::model::ErrorCode::BatchCannotStop
    );

    // stopping the job cancels its pending retries too
    let id = engine.start_batch("daily", &[], batch_time()).expect("start");
    until(&engine, id, RunStatus::Failed, 0).await;
    engine.stop_job("daily").expect("stop job");
    assert!(
        run(&engine, id)
            .message
            .ends_with("; retry 1 was canceled: the job was stopped"),
        "{}",
        run(&engine, id).message
    );
    assert!(engine.schedule("daily").expect("schedule").retries.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_retries_in_place_and_history_says_which_retry() {
    let s3 = S3Server::start();
    let (engine, _data) = crate::util::engine_in_tmp(s3.config(SK));
    define(
        &engine,
        &s3,
        r#"{"count": 2, "delaySeconds": 0}"#,
        "SELECT sum(v) AS total FROM ev",
    );
    s3.stop();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    let progress: std::sync::Arc<dyn Fn(pbatch::Progress) + Send + Sync> = std::sync::Arc::new(move |p| {
        if let pbatch::Progress::Retry { attempt, of, .. } = p {
            log.lock().expect("lock").push((attempt, of));
        }
    });
    let err = engine
        .run_once_with("daily", &[], batch_time(), progress)
        .await
        .expect_err("the store stays down");
    assert_eq!(err.code(), pbatch::model::ErrorCode::StatFileFailed);
    assert_eq!(*seen.lock().expect("lock"), vec![(1, 2), (2, 2)]);
    let h = run(&engine, 1);
    assert_eq!((h.status, h.rerun_count), (RunStatus::Failed, 2));
    assert!(h.message.ends_with(" (retry 2 of 2)"), "{}", h.message);

    // a stop cancels a retry waited for in place, and the wait ends
    let (engine2, _data2) = crate::util::engine_in_tmp(s3.config(SK));
    define(
        &engine2,
        &s3,
        r#"{"count": 2, "delaySeconds": 60}"#,
        "SELECT sum(v) AS total FROM ev",
    );
    let e = engine2.clone();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(async move { e.run_once("daily", &[], batch_time()).await });
    let h = until(&engine2, 1, RunStatus::Failed, 0).await;
    assert!(h.message.contains("; retry 1 of 2 at "), "{}", h.message);
    let stopped = engine2.stop_batch("daily", 1).await.expect("stop");
    assert_eq!(stopped.post_status, RunStatus::Failed);
    let ended = tokio::time::timeout(Duration::from_secs(5), tasks.join_next())
        .await
        .expect("the wait ends with the stop")
        .expect("a task")
        .expect("task");
    assert_eq!(
        ended.expect_err("failed").code(),
        pbatch::model::ErrorCode::StatFileFailed
    );
    let h = run(&engine2, 1);
    assert_eq!(h.rerun_count, 0, "no retry ran");
    assert!(
        h.message.ends_with("; retry 1 was canceled: the batch was stopped"),
        "{}",
        h.message
    );
}

/// `pbatch run` of a job whose http export cannot be reached: retried once
/// (`[engine] batch_retries` from pbatch.toml), said on stderr, then exit 1.
#[test]
fn pbatch_run_retries_a_service_that_does_not_answer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (spec, data) = (tmp.path().join("spec"), tmp.path().join("data"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let host = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let write = |rel: &str, text: String| {
        let p = spec.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "pbatch.toml",
        "[engine]\nbatch_retries = 1\nretry_delay = 0\n".to_string(),
    );
    write(
        "datasources/ev.json",
        r#"{"region":"nb","type":"kodo","spec":{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"},
            "schema":[{"key":"id","valtype":"long"}],"noVerifySchema":true}"#
            .to_string(),
    );
    write(
        "jobs/j.json",
        r#"{"srcs":[{"name":"ev","type":"datasource","tableName":"ev"}],
            "computation":{"type":"sql","code":"SELECT id FROM ev"},"scheduler":{"type":"manual"}}"#
            .to_string(),
    );
    write(
        "jobs/j/exports/h.json",
        format!(r#"{{"type":"http","spec":{{"host":"{host}","uri":"/ingest","format":"json"}}}}"#),
    );
    std::fs::create_dir_all(data.join("buckets/in-bkt/ev")).expect("mkdir");
    std::fs::write(data.join("buckets/in-bkt/ev/a.json"), "{\"id\":1}\n").expect("input");
    let out = crate::util::pbatch()
        .arg("run")
        .arg(&spec)
        .arg("j")
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("pbatch");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("j: E18305: ") && err.contains("; retry 1 of 1 in "),
        "the retry is announced:\n{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("E18305: ") && last.contains(&host),
        "the error after the retry:\n{err}"
    );
}
