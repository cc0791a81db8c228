//! Backfills through the library, the REST API's body type and the CLI:
//! one batch per cron time of a range, `reprocess` in its three modes,
//! `maxActive`, a stopped backfill, depend jobs after each backfilled batch,
//! the limits, and `pbatch backfill`'s output without a terminal.

use pbatch::model::{BackfillRequest, BackfillStatus, ErrorCode, Reprocess, RunStatus};
use std::collections::BTreeMap;
use std::path::Path;

const SLOW_SQL: &str = "SELECT count(*) AS n FROM generate_series(1, 100000000000) WHERE value % 7 = 3";

fn engine(dir: &Path) -> pbatch::Engine {
    let mut config = pbatch::Config::default();
    config.set("engine.timezone", "Asia/Shanghai").expect("tz");
    config.set("engine.max_concurrent_batches", "4").expect("slots");
    pbatch::Engine::builder()
        .config(config)
        .data_dir(dir)
        .build()
        .expect("engine")
}

/// Input for hour `h` of 2026-11-20: ev/2026112000.json holds ids 0 and 100.
fn hour_file(dir: &Path, h: u32) {
    let folder = dir.join("buckets/in-bkt/ev");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::write(
        folder.join(format!("20261120{h:02}.json")),
        format!("{{\"id\":{h}}}\n{{\"id\":{}}}\n", h + 100),
    )
    .expect("write");
}

/// Datasource `ev`, job `hourly` (crontab on the hour) reading the hour's
/// file, and its depend job `down`.
fn hourly(engine: &pbatch::Engine, sql: &str) {
    let ds = pbatch::model::DatasourceSpec::from_json(
        br#"{"region":"nb","type":"kodo","spec":{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"},
             "schema":[{"key":"id","valtype":"long","required":true}],"noVerifySchema":true}"#,
    )
    .expect("ds");
    engine.create_datasource("ev", &ds).expect("create ds");
    let job = serde_json::json!({
        "srcs": [{"name": "ev", "type": "datasource", "tableName": "ev", "fileFilter": "$(year)$(mon)$(day)$(hour)"}],
        "computation": {"type": "sql", "code": sql},
        "scheduler": {"type": "crontab", "spec": {"crontab": "0 0 * * * *"}},
    });
    let spec = pbatch::model::JobSpec::from_json(job.to_string().as_bytes()).expect("job");
    engine.create_job("hourly", &spec).expect("create job");
    crate::util::add_export(
        engine,
        "hourly",
        "e",
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"hourly/$(date)-$(hour)/","format":"json"}}"#,
    );
    let down = pbatch::model::JobSpec::from_json(
        br#"{"srcs":[{"name":"hourly","type":"job","tableName":"up"}],
             "computation":{"type":"sql","code":"SELECT count(*) AS n FROM up"},"scheduler":{"type":"depend"}}"#,
    )
    .expect("down");
    engine.create_job("down", &down).expect("create down");
}

fn range(from: &str, to: &str, reprocess: Reprocess, max_active: u32) -> BackfillRequest {
    BackfillRequest {
        from: Some(from.into()),
        to: Some(to.into()),
        reprocess,
        max_active: Some(max_active),
        ..Default::default()
    }
}

async fn drive(engine: &pbatch::Engine, created: &BackfillStatus) -> BackfillStatus {
    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        engine.drive_backfill(&created.job, created.id, |_| {}),
    )
    .await
    .expect("the backfill ended within 2 minutes")
    .expect("drive")
}

/// batchTime -> (status, rerunCount) of every batch of `job`, by runId.
fn history(engine: &pbatch::Engine, job: &str) -> Vec<(i64, String, RunStatus, i64)> {
    let q = pbatch::model::HistoryQuery {
        sort_by: Some("runId".into()),
        size: Some(1000),
        ..Default::default()
    };
    let h = engine.history(job, &q).expect("history");
    h.history
        .into_iter()
        .map(|r| (r.run_id, r.batch_time, r.status, r.rerun_count))
        .collect()
}

fn counts(s: &BackfillStatus) -> [usize; 6] {
    [s.done, s.failed, s.canceled, s.skipped, s.running, s.waiting]
}

#[tokio::test]
async fn a_backfill_runs_each_cron_time_and_reprocess_decides_what_runs_again() {
    let tmp = tempfile::tempdir().expect("tmp");
    for h in 0..5 {
        hour_file(tmp.path(), h);
    }
    let engine = engine(tmp.path());
    hourly(&engine, "SELECT min(id) AS id, count(*) AS n FROM ev");

    // [00:00, 06:00): six cron times; hour 05 has no input and fails
    let first = engine
        .backfill(
            "hourly",
            &range("2026-11-20 00:00:00", "2026-11-20T06:00:00+08:00", Reprocess::None, 1),
        )
        .expect("backfill");
    assert_eq!((first.id, first.total, first.running, first.waiting), (1, 6, 1, 5));
    let s = drive(&engine, &first).await;
    assert_eq!((s.status.as_str(), counts(&s)), ("Done", [5, 1, 0, 0, 0, 0]));
    let times: Vec<String> = (0..6).map(|h| format!("2026-11-20 {h:02}:00:00")).collect();
    let h = history(&engine, "hourly");
    assert_eq!(h.iter().map(|r| r.1.clone()).collect::<Vec<_>>(), times);
    assert_eq!(h[5].2, RunStatus::Failed);
    for (h, run) in h.iter().enumerate().take(5) {
        assert_eq!(run.2, RunStatus::Successful);
        let out = tmp
            .path()
            .join(format!("buckets/out-bkt/hourly/2026-11-20-{h:02}/part-00000.json"));
        assert_eq!(
            std::fs::read_to_string(&out).expect("output"),
            format!("{{\"id\":{h},\"n\":2}}\n"),
            "each batch read its own hour"
        );
    }
    // the depend job ran after each successful batch, with its batch time
    let down: Vec<String> = history(&engine, "down").into_iter().map(|r| r.1).collect();
    assert_eq!(down, times[..5].to_vec());

    // failed: only the Failed time runs again (same runId, rerunCount 1)
    hour_file(tmp.path(), 5);
    let s = engine
        .backfill(
            "hourly",
            &range("2026-11-20 00:00:00", "2026-11-20 06:00:00", Reprocess::Failed, 1),
        )
        .expect("backfill failed");
    let s = drive(&engine, &s).await;
    assert_eq!((s.id, counts(&s)), (2, [1, 0, 0, 5, 0, 0]));
    let h = history(&engine, "hourly");
    assert_eq!(h.len(), 6);
    assert_eq!((h[5].0, h[5].2, h[5].3), (6, RunStatus::Successful, 1));
    assert_eq!(history(&engine, "down").len(), 6, "the rerun's depend batch ran");

    // none: every time has a batch, nothing runs
    let s = engine
        .backfill("hourly", &range("2026-11-20", "2026-11-20 06:00", Reprocess::None, 1))
        .expect("backfill none");
    let s = drive(&engine, &s).await;
    assert_eq!(counts(&s), [0, 0, 0, 6, 0, 0]);
    assert!(
        s.batches.iter().all(|b| b.run_id.is_some()),
        "a skipped time names its batch"
    );
    assert_eq!(history(&engine, "hourly").len(), 6);

    // all, three at a time: every time reruns; three start at once
    let s = engine
        .backfill(
            "hourly",
            &range("2026-11-20 00:00:00", "2026-11-20 06:00:00", Reprocess::All, 3),
        )
        .expect("backfill all");
    assert_eq!((s.running, s.waiting), (3, 3), "maxActive batches start at once");
    let s = drive(&engine, &s).await;
    assert_eq!(counts(&s), [6, 0, 0, 0, 0, 0]);
    let reruns: Vec<i64> = history(&engine, "hourly").iter().map(|r| r.3).collect();
    assert_eq!(reruns, vec![1, 1, 1, 1, 1, 2]);
    assert_eq!(history(&engine, "down").len(), 12);

    // listed newest first, with progress
    let list = engine.backfills("hourly").expect("list");
    assert_eq!(list.iter().map(|b| b.id).collect::<Vec<_>>(), vec![4, 3, 2, 1]);
    assert!(list.iter().all(|b| b.status == "Done" && b.batches.is_empty()));
    assert_eq!(list[3].reprocess, Reprocess::None);
}

#[tokio::test]
async fn a_stopped_backfill_starts_nothing_more_and_its_batch_ends_canceled() {
    let tmp = tempfile::tempdir().expect("tmp");
    hour_file(tmp.path(), 0);
    let engine = engine(tmp.path());
    hourly(&engine, SLOW_SQL);
    let s = engine
        .backfill(
            "hourly",
            &range("2026-11-20 00:00:00", "2026-11-20 04:00:00", Reprocess::None, 1),
        )
        .expect("backfill");
    assert_eq!((s.running, s.waiting), (1, 3));
    let stopped = engine.stop_backfill("hourly", s.id).expect("stop");
    assert_eq!(stopped.status, "Stopped");
    assert_eq!((stopped.canceled, stopped.waiting), (3, 0));
    let s = drive(&engine, &s).await;
    assert_eq!((s.status.as_str(), counts(&s)), ("Stopped", [0, 0, 4, 0, 0, 0]));
    let h = history(&engine, "hourly");
    assert_eq!(h.len(), 1, "nothing started after the stop: {h:?}");
    assert_eq!(h[0].2, RunStatus::Canceled);
    assert!(history(&engine, "down").is_empty());
    // a stopped backfill's times can be backfilled again
    let e = engine.stop_backfill("hourly", 9).expect_err("no backfill 9");
    assert_eq!(e.code(), ErrorCode::BackfillNotFound);
}

#[tokio::test]
async fn backfills_that_cannot_run_are_refused_before_anything_starts() {
    let tmp = tempfile::tempdir().expect("tmp");
    hour_file(tmp.path(), 0);
    let engine = engine(tmp.path());
    hourly(&engine, "SELECT 1 AS x");
    let refused = |req: BackfillRequest, job: &str| {
        let e = engine.backfill(job, &req).expect_err("refused");
        (e.code(), e.message().to_string())
    };
    // two years of an hourly job are over 10,000 times
    let (code, msg) = refused(range("2026-01-01", "2028-01-01", Reprocess::None, 1), "hourly");
    assert_eq!(code, ErrorCode::InvalidBackfill);
    assert!(
        msg.contains("spans more than 10000 batch times, over the limit of 10000") && msg.contains("force (--force)"),
        "{msg}"
    );
    let (_, msg) = refused(
        range("2026-11-20 06:00", "2026-11-20 06:00", Reprocess::None, 1),
        "hourly",
    );
    assert!(msg.contains("is not before to"), "{msg}");
    let (_, msg) = refused(range("2026-11-20T00:00:00Z", "yesterday", Reprocess::None, 1), "hourly");
    assert!(msg.contains("to \"yesterday\" is not a time"), "{msg}");
    let (_, msg) = refused(range("2026-11-20", "2026-11-21", Reprocess::None, 1), "down");
    assert!(msg.contains("job down is a depend job: backfill its upstream"), "{msg}");
    let (_, msg) = refused(range("2026-11-20", "2026-11-21", Reprocess::None, 0), "hourly");
    assert!(msg.contains("maxActive 0"), "{msg}");
    crate::util::add_job(&engine, "manual", "SELECT 1 AS x", r#"{"type":"manual"}"#);
    let (_, msg) = refused(range("2026-11-20", "2026-11-21", Reprocess::None, 1), "manual");
    assert!(msg.contains("give its batch times as times"), "{msg}");
    let e = engine.backfill("nope", &range("2026-11-20", "2026-11-21", Reprocess::None, 1));
    assert_eq!(e.expect_err("no job").code(), ErrorCode::BatchJobNotFound);
    assert!(engine.backfills("hourly").expect("list").is_empty());
    assert!(history(&engine, "hourly").is_empty());

    // a manual job takes explicit times, deduplicated and in order
    let s = engine
        .backfill(
            "manual",
            &BackfillRequest {
                times: Some(vec![
                    "2026-11-20 02:00:00".into(),
                    "2026-11-20T01:00:00+08:00".into(),
                    "2026-11-19T17:00:00Z".into(),
                ]),
                ..Default::default()
            },
        )
        .expect("times");
    let s = drive(&engine, &s).await;
    assert_eq!((s.total, s.done), (2, 2));
    let times: Vec<String> = history(&engine, "manual").into_iter().map(|r| r.1).collect();
    assert_eq!(times, vec!["2026-11-20 01:00:00", "2026-11-20 02:00:00"]);

    // batches that would write one folder (the date's, for hourly batches) never
    // run at once, whatever maxActive says
    crate::util::add_job(
        &engine,
        "same",
        "SELECT count(*) AS n FROM ev",
        r#"{"type":"crontab","spec":{"crontab":"0 0 * * * *"}}"#,
    );
    crate::util::add_export(
        &engine,
        "same",
        "e",
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"same/$(date)/","format":"json"}}"#,
    );
    let s = engine
        .backfill(
            "same",
            &range("2026-11-20 00:00", "2026-11-20 03:00", Reprocess::None, 3),
        )
        .expect("same folder");
    assert_eq!((s.running, s.waiting), (1, 2), "one at a time into same/2026-11-20/");
    let s = drive(&engine, &s).await;
    assert_eq!(counts(&s), [3, 0, 0, 0, 0, 0]);
}

#[test]
fn pbatch_backfill_prints_progress_lines_without_a_terminal_and_history_shows_the_batches() {
    let tmp = tempfile::tempdir().expect("tmp");
    let spec = tmp.path().join("spec");
    let data = tmp.path().join("data");
    for h in 0..3 {
        hour_file(&data, h);
    }
    let write = |rel: &str, v: serde_json::Value| {
        let p = spec.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, v.to_string()).expect("write");
    };
    write(
        "datasources/ev.json",
        serde_json::json!({"region": "nb", "type": "kodo",
            "spec": {"bucket": "in-bkt", "keyPrefixes": ["ev/"], "fileType": "json"},
            "schema": [{"key": "id", "valtype": "long", "required": true}], "noVerifySchema": true}),
    );
    write(
        "jobs/hourly.json",
        serde_json::json!({"srcs": [{"name": "ev", "type": "datasource", "tableName": "ev", "fileFilter": "$(year)$(mon)$(day)$(hour)"}],
            "computation": {"type": "sql", "code": "SELECT id FROM ev"},
            "scheduler": {"type": "crontab", "spec": {"crontab": "0 0 * * * *"}}}),
    );
    write(
        "jobs/hourly/exports/e.json",
        serde_json::json!({"type": "kodo", "spec": {"bucket": "out-bkt", "keyPrefix": "h/$(hour)/", "format": "json"}}),
    );
    let run = |args: &[&str]| {
        let out = crate::util::pbatch()
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .expect("pbatch");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let spec_dir = spec.to_str().expect("utf-8");
    let args = [
        "backfill",
        spec_dir,
        "hourly",
        "--from",
        "2026-11-20 00:00:00",
        "--to",
        "2026-11-20 04:00:00",
    ];
    let (code, out, err) = run(&args);
    // hour 03 has no input
    assert_eq!(code, Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.lines()
            .next()
            .is_some_and(|l| l.starts_with("backfill 1 of job hourly: ")),
        "a first progress line: {err}"
    );
    assert!(
        err.contains("backfill 1 of job hourly: 4/4 batches: 3 done, 1 failed, 0 canceled, 0 skipped, 0 running"),
        "a last progress line: {err}"
    );
    assert!(err.contains("error: 1 of 4 batches did not succeed"), "{err}");
    assert!(
        out.starts_with("backfill 1 of job hourly: 4 batch times: 3 done, 1 failed, 0 canceled, 0 skipped"),
        "{out}"
    );
    assert!(
        out.contains("2026-11-20 03:00:00  failed  E18620"),
        "the failed batch and its error: {out}"
    );

    // --quiet: the summary alone; nothing left to run
    let (code, out, err) = run(&[&args[..], &["--quiet"]].concat());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");
    assert_eq!(
        out.trim(),
        "backfill 2 of job hourly: 4 batch times: 0 done, 0 failed, 0 canceled, 4 skipped"
    );

    // history: a table, and the API's body with --json
    let (code, out, _) = run(&["history", "hourly", "--sort-by", "runId"]);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("runId  batchTime            status      duration  reruns  rows in/out  message"),
        "{out}"
    );
    assert!(lines[1].starts_with("1      2026-11-20 00:00:00  Successful"), "{out}");
    assert!(
        lines[1].contains(" 2/2 ") && lines[1].ends_with("read 2 rows from 1 files, wrote 2 rows into 1 files"),
        "{out}"
    );
    assert!(lines[4].contains("Failed") && lines[4].contains("E18620"), "{out}");
    let (_, out, _) = run(&["history", "hourly", "--json"]);
    let body: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(body["total"], 4);
    let statuses: BTreeMap<String, String> = body["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|r| {
            (
                r["batchTime"].as_str().unwrap_or("").to_string(),
                r["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(statuses.get("2026-11-20 03:00:00").map(String::as_str), Some("Failed"));
}
