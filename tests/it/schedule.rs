//! Scheduling through the library: crontab, loop, manual and depend
//! triggers, catch-up after downtime, no overlap within a job, and
//! `max_concurrent_batches` across jobs. Time is an injected clock the test
//! moves; `Engine::tick` stands in for the scheduler loop's second.

use pbatch::model::{DatasourceSpec, ExportSpec, JobSpec, RunStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[derive(Debug)]
struct Clock(Mutex<SystemTime>);

impl Clock {
    fn at(text: &str) -> Arc<Self> {
        Arc::new(Self(Mutex::new(instant(text))))
    }
    fn set(&self, text: &str) {
        *self.0.lock().expect("clock") = instant(text);
    }
}

impl pbatch::Clock for Clock {
    fn now(&self) -> SystemTime {
        *self.0.lock().expect("clock")
    }
}

/// `2026-03-01 10:30:00` in Asia/Shanghai (the engine zone of these tests).
fn instant(text: &str) -> SystemTime {
    chrono::DateTime::parse_from_rfc3339(&format!("{}+08:00", text.replace(' ', "T")))
        .expect("time")
        .into()
}

const SLOW_SQL: &str = "SELECT count(*) AS n FROM generate_series(1, 100000000000) WHERE value % 7 = 3";

struct Fixture {
    engine: pbatch::Engine,
    clock: Arc<Clock>,
    data: tempfile::TempDir,
}

fn fixture(start: &str, slots: usize) -> Fixture {
    fixture_in(tempfile::tempdir().expect("tmp"), start, slots, false)
}

fn fixture_in(data: tempfile::TempDir, start: &str, slots: usize, durable: bool) -> Fixture {
    fixture_zoned(data, Clock::at(start), "Asia/Shanghai", slots, durable)
}

fn fixture_zoned(data: tempfile::TempDir, clock: Arc<Clock>, zone: &str, slots: usize, durable: bool) -> Fixture {
    let mut config = pbatch::Config::default();
    config.set("engine.timezone", zone).expect("tz");
    config
        .set("engine.max_concurrent_batches", &slots.to_string())
        .expect("slots");
    let mut b = pbatch::Engine::builder()
        .config(config)
        .data_dir(data.path())
        .clock(clock.clone());
    if durable {
        b = b.durable();
    }
    let engine = b.build().expect("engine");
    if engine.datasource("ev").is_err() {
        std::fs::create_dir_all(data.path().join("buckets/in-bkt/ev")).expect("mkdir");
        std::fs::write(data.path().join("buckets/in-bkt/ev/a.json"), "{\"id\":1}\n{\"id\":2}\n").expect("write");
        let ds = DatasourceSpec::from_json(
            br#"{"region":"nb","type":"kodo","spec":{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"},
                 "schema":[{"key":"id","valtype":"long","required":true}],"noVerifySchema":true}"#,
        )
        .expect("ds");
        engine.create_datasource("ev", &ds).expect("create ds");
    }
    Fixture { engine, clock, data }
}

impl Fixture {
    /// Job `hourly` (crontab on the hour) counting `ev`, started.
    fn hourly_started(&self) {
        self.job(
            "hourly",
            "SELECT count(*) AS n FROM ev",
            r#"{"type":"crontab","spec":{"crontab":"0 0 * * * *"}}"#,
            "",
        );
        self.engine.start_job("hourly", &[]).expect("start");
    }

    fn job(&self, name: &str, sql: &str, scheduler: &str, extra: &str) {
        let src = if scheduler.contains("depend") {
            r#"{"name":"up","type":"job","tableName":"up_t"}"#
        } else {
            r#"{"name":"ev","type":"datasource","tableName":"ev"}"#
        };
        let body = format!(
            r#"{{"srcs":[{src}],"computation":{{"type":"sql","code":"{sql}"}},"scheduler":{scheduler}{extra}}}"#
        );
        let spec = JobSpec::from_json(body.as_bytes()).expect("job spec");
        self.engine.create_job(name, &spec).expect("create job");
        // a manual job's keyPrefix is its file's name (seed)
        let key = if scheduler.contains("manual") { ".json" } else { "/" };
        let e = ExportSpec::from_json(
            format!(
                r#"{{"type":"kodo","spec":{{"bucket":"out-bkt","keyPrefix":"{name}/$(date)-$(hour)-$(min){key}","format":"json"}}}}"#
            )
            .as_bytes(),
            None,
        )
        .expect("export");
        self.engine.create_export(name, "e", &e).expect("create export");
    }

    /// (batchTime, status) of every batch of `job`, oldest first.
    fn runs(&self, job: &str) -> Vec<(String, RunStatus)> {
        let q = pbatch::model::HistoryQuery {
            sort_by: Some("runId".into()),
            size: Some(100),
            ..Default::default()
        };
        let h = self.engine.history(job, &q).expect("history");
        h.history.into_iter().map(|r| (r.batch_time, r.status)).collect()
    }

    async fn wait(&self, job: &str, run_id: i64) -> RunStatus {
        self.engine
            .wait_batch(job, run_id, Duration::from_secs(60))
            .await
            .expect("wait")
            .status
    }

    async fn tick_and_wait(&self, at: &str) -> Vec<(String, i64)> {
        self.clock.set(at);
        let started = self.engine.tick().expect("tick");
        for (job, id) in &started {
            assert_eq!(self.wait(job, *id).await, RunStatus::Successful, "{job} {id}");
        }
        started
    }
}

fn ok(t: &str) -> (String, RunStatus) {
    (t.to_string(), RunStatus::Successful)
}

#[tokio::test]
async fn crontab_fires_at_cron_times_and_collapses_missed_times_into_one_batch() {
    let f = fixture("2026-03-01 10:30:00", 4);
    f.hourly_started();
    assert!(f.tick_and_wait("2026-03-01 10:59:59").await.is_empty());
    assert_eq!(f.tick_and_wait("2026-03-01 11:00:00").await.len(), 1);
    assert!(
        f.tick_and_wait("2026-03-01 11:00:30").await.is_empty(),
        "one batch per cron time"
    );
    // 12:00, 13:00 and 14:00 missed: one batch, at the latest
    assert_eq!(f.tick_and_wait("2026-03-01 14:20:00").await.len(), 1);
    assert_eq!(
        f.runs("hourly"),
        vec![ok("2026-03-01 11:00:00"), ok("2026-03-01 14:00:00")]
    );
    // magic variables were evaluated at the batch time, not the clock
    for dir in ["2026-03-01-11-00", "2026-03-01-14-00"] {
        let file = f
            .data
            .path()
            .join(format!("buckets/out-bkt/hourly/{dir}/part-00000.json"));
        assert_eq!(std::fs::read_to_string(&file).expect("output"), "{\"n\":2}\n");
    }
    f.engine.stop_job("hourly").expect("stop");
    assert!(f.tick_and_wait("2026-03-01 16:00:00").await.is_empty(), "stopped");
    assert!(!f.engine.schedule("hourly").expect("schedule").enabled);
}

#[tokio::test]
async fn loop_runs_at_start_then_every_interval() {
    let f = fixture("2026-03-01 10:00:00", 4);
    f.job(
        "every10",
        "SELECT count(*) AS n FROM ev",
        r#"{"type":"loop","spec":{"loop":"10m"}}"#,
        "",
    );
    f.engine.start_job("every10", &[]).expect("start");
    let first = f.engine.history("every10", &Default::default()).expect("h").history;
    assert_eq!(first.len(), 1, "a loop job runs once at start");
    f.wait("every10", first[0].run_id).await;
    assert!(f.tick_and_wait("2026-03-01 10:09:00").await.is_empty());
    assert_eq!(f.tick_and_wait("2026-03-01 10:10:00").await.len(), 1);
    // 10:20, 10:30, 10:40 missed -> one batch at 10:40, next at 10:50
    assert_eq!(f.tick_and_wait("2026-03-01 10:45:00").await.len(), 1);
    assert!(f.tick_and_wait("2026-03-01 10:49:59").await.is_empty());
    assert_eq!(f.tick_and_wait("2026-03-01 10:50:00").await.len(), 1);
    assert_eq!(
        f.runs("every10"),
        vec![
            ok("2026-03-01 10:00:00"),
            ok("2026-03-01 10:10:00"),
            ok("2026-03-01 10:40:00"),
            ok("2026-03-01 10:50:00")
        ]
    );
}

#[tokio::test]
async fn manual_starts_each_make_one_batch_with_their_params() {
    let f = fixture("2026-03-01 10:00:00", 4);
    f.job(
        "m",
        "SELECT '$(who)' AS who, count(*) AS n FROM ev",
        r#"{"type":"manual"}"#,
        r#","params":[{"name":"who","default":"nobody"}]"#,
    );
    f.engine
        .start_job("m", &[("who".into(), "alice".into())])
        .expect("start");
    let e = f
        .engine
        .start_job("m", &[("nope".into(), "x".into())])
        .expect_err("undeclared param");
    assert_eq!(e.code().code(), "E18607");
    assert!(e.message().contains("nope"), "{e}");
    let h = f.engine.history("m", &Default::default()).expect("h").history;
    assert_eq!(h.len(), 1, "a refused start makes no batch");
    assert_eq!(f.wait("m", h[0].run_id).await, RunStatus::Successful);
    f.clock.set("2026-03-01 10:05:00");
    f.engine.start_job("m", &[]).expect("start with defaults");
    f.wait("m", 2).await;
    let out =
        |dir: &str| std::fs::read_to_string(f.data.path().join(format!("buckets/out-bkt/m/{dir}.json"))).expect("out");
    assert_eq!(out("2026-03-01-10-00"), "{\"who\":\"alice\",\"n\":2}\n");
    assert_eq!(out("2026-03-01-10-05"), "{\"who\":\"nobody\",\"n\":2}\n");
}

#[tokio::test]
async fn depend_jobs_run_after_each_successful_upstream_batch_but_not_after_a_rerun() {
    let f = fixture("2026-03-01 10:00:00", 4);
    f.job(
        "up",
        "SELECT id * $(k) AS v FROM ev",
        r#"{"type":"crontab","spec":{"crontab":"0 0 * * * *"}}"#,
        r#","params":[{"name":"k","default":"1"}]"#,
    );
    f.job("down", "SELECT sum(v) AS total FROM up_t", r#"{"type":"depend"}"#, "");
    let e = f
        .engine
        .start_job("down", &[("k".into(), "2".into())])
        .expect_err("depend takes no params");
    assert_eq!(e.code().code(), "E18607");
    f.engine.start_job("down", &[]).expect("start down");
    f.engine
        .start_job("up", &[("k".into(), "10".into())])
        .expect("start up");
    let started = f.tick_and_wait("2026-03-01 11:00:00").await;
    assert_eq!(started, vec![("up".to_string(), 1)]);
    // the upstream's end queued the downstream at the same batch time
    assert_eq!(f.wait("down", 1).await, RunStatus::Successful);
    assert_eq!(f.runs("down"), vec![ok("2026-03-01 11:00:00")]);
    let total = f
        .data
        .path()
        .join("buckets/out-bkt/down/2026-03-01-11-00/part-00000.json");
    assert_eq!(
        std::fs::read_to_string(&total).expect("out"),
        "{\"total\":30}\n",
        "the upstream's start params reach the downstream"
    );
    // the downstream read the upstream's kept result: new input changes
    // neither a rerun of the downstream batch nor its total
    let kept = f.data.path().join("results/up/2026-03-01-11-00-00/part-00000.parquet");
    assert!(kept.is_file(), "kept result {}", kept.display());
    std::fs::write(f.data.path().join("buckets/in-bkt/ev/a.json"), "{\"id\":100}\n").expect("write");
    f.engine.rerun_batch("down", 1).await.expect("rerun down");
    assert_eq!(f.wait("down", 1).await, RunStatus::Successful);
    assert_eq!(std::fs::read_to_string(&total).expect("out"), "{\"total\":30}\n");
    // a rerun of the upstream replaces its kept result, but does not trigger the downstream
    f.engine.rerun_batch("up", 1).await.expect("rerun");
    assert_eq!(f.wait("up", 1).await, RunStatus::Successful);
    f.engine.tick().expect("tick");
    assert_eq!(f.runs("down").len(), 1, "a rerun does not trigger downstreams");
    f.engine.rerun_batch("down", 1).await.expect("rerun down");
    assert_eq!(f.wait("down", 1).await, RunStatus::Successful);
    assert_eq!(std::fs::read_to_string(&total).expect("out"), "{\"total\":1000}\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_waits_for_the_jobs_running_batch_and_slots_limit_batches_across_jobs() {
    let f = fixture("2026-03-01 10:30:00", 1);
    f.job(
        "slow",
        SLOW_SQL,
        r#"{"type":"crontab","spec":{"crontab":"0 0 * * * *"}}"#,
        "",
    );
    f.job("fast", "SELECT count(*) AS n FROM ev", r#"{"type":"manual"}"#, "");
    let mut events = f.engine.subscribe();
    f.engine.start_job("slow", &[]).expect("start");
    f.clock.set("2026-03-01 11:00:00");
    assert_eq!(f.engine.tick().expect("tick"), vec![("slow".to_string(), 1)]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // two more cron times pass while batch 1 runs: they wait, collapsed
    f.clock.set("2026-03-01 13:10:00");
    assert!(f.engine.tick().expect("tick").is_empty(), "no overlap within a job");
    assert_eq!(f.engine.schedule("slow").expect("s").pending.len(), 1);
    // the only slot is taken: another job's batch waits as Ready
    f.engine.start_job("fast", &[]).expect("start fast");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(f.runs("fast")[0].1, RunStatus::Ready);
    // stopping batch 1 frees the slot and lets the pending trigger start
    f.engine.stop_batch("slow", 1).await.expect("stop");
    assert_eq!(f.wait("fast", 1).await, RunStatus::Successful);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let slow = f.runs("slow");
    assert_eq!(slow.len(), 2, "{slow:?}");
    assert_eq!(slow[0].1, RunStatus::Canceled);
    assert_eq!(slow[1].0, "2026-03-01 13:00:00");
    f.engine.stop_job("slow").expect("stop job");
    assert_eq!(f.wait("slow", 2).await, RunStatus::Canceled);
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if ev.job == "fast" {
            seen.push(ev.status);
        }
    }
    assert_eq!(
        seen,
        vec![RunStatus::Ready, RunStatus::Running, RunStatus::Successful],
        "events of the fast job"
    );
}

#[tokio::test]
async fn a_started_schedule_survives_a_restart_with_one_catch_up_batch() {
    let f = fixture_in(tempfile::tempdir().expect("tmp"), "2026-03-01 10:30:00", 4, true);
    f.hourly_started();
    let Fixture { engine, data, .. } = f;
    drop(engine);
    // down from 10:30 to 15:10: one batch, at 15:00, when the engine is back
    let f = fixture_in(data, "2026-03-01 15:10:00", 4, true);
    assert_eq!(f.engine.tick().expect("tick"), vec![("hourly".to_string(), 1)]);
    assert_eq!(f.wait("hourly", 1).await, RunStatus::Successful);
    assert_eq!(f.runs("hourly"), vec![ok("2026-03-01 15:00:00")]);
    assert!(f.engine.tick().expect("tick").is_empty());
}

#[tokio::test]
async fn a_workflow_groups_its_datasources_jobs_and_exports_and_starts_them() {
    let f = fixture("2026-03-01 10:30:00", 4);
    let wf: pbatch::model::WorkflowSpec = serde_json::from_str(r#"{"name":"wf","region":"nb"}"#).expect("wf");
    let code = |e: pbatch::model::Error| e.code().code().to_string();
    let ds_in = |wf: &str| {
        DatasourceSpec::from_json(
            format!(
                r#"{{"region":"nb","type":"kodo","spec":{{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"}},
                    "schema":[{{"key":"id","valtype":"long"}}],"noVerifySchema":true,"workflow":"{wf}"}}"#
            )
            .as_bytes(),
        )
        .expect("ds")
    };
    assert_eq!(
        code(f.engine.create_datasource("wds", &ds_in("wf")).unwrap_err()),
        "E18641"
    );
    f.engine.create_workflow("wf", &wf).expect("create");
    assert_eq!(code(f.engine.create_workflow("wf", &wf).unwrap_err()), "E18640");
    assert_eq!(code(f.engine.create_workflow("ev", &wf).unwrap_err()), "E18661");
    assert_eq!(code(f.engine.start_workflow("wf").unwrap_err()), "E18644", "no job yet");
    f.engine.create_datasource("wds", &ds_in("wf")).expect("ds in wf");
    let spec = JobSpec::from_json(
        br#"{"srcs":[{"name":"wds","type":"datasource","tableName":"w"}],"computation":{"type":"sql","code":"SELECT count(*) AS n FROM w"},
             "scheduler":{"type":"crontab","spec":{"crontab":"0 0 * * * *"}}}"#,
    )
    .expect("job");
    f.engine.create_job("wjob", &spec).expect("job");
    f.job("outside", "SELECT 1 AS one", r#"{"type":"manual"}"#, "");

    let d = f.engine.workflow("wf").expect("get");
    let mut nodes: Vec<&String> = d.nodes.keys().collect();
    nodes.sort();
    assert_eq!(nodes, ["wds-datasource", "wjob-job"]);
    assert!(d.can_start && !d.is_manual_workflow && d.status == "Ready", "{d:?}");
    assert_eq!(code(f.engine.stop_workflow("wf").unwrap_err()), "E18645");
    f.engine.start_workflow("wf").expect("start");
    assert!(f.engine.schedule("wjob").expect("s").enabled);
    assert!(!f.engine.schedule("outside").expect("s").enabled);
    assert_eq!(f.tick_and_wait("2026-03-01 11:00:00").await.len(), 1);
    let st = f.engine.workflow_status("wf").expect("status");
    assert_eq!(st.status, "Started");
    let job_node = st.nodes.iter().find(|n| n.name == "wjob").expect("job node");
    assert_eq!(job_node.status, "Successful");
    assert_eq!(
        code(f.engine.start_workflow("wf").unwrap_err()),
        "E18644",
        "already started"
    );
    f.engine.stop_workflow("wf").expect("stop");
    assert!(!f.engine.schedule("wjob").expect("s").enabled);
    let e = f.engine.delete_workflow("wf").unwrap_err();
    assert!(e.message().contains("wds"), "{e}");
    assert_eq!(f.engine.list_workflows().expect("list").len(), 1);
}

/// America/Chicago over both 2026 changes (8 March: 02:00 CST -> 03:00 CDT;
/// 1 November: 02:00 CDT -> 01:00 CST), ticked every real half hour: an
/// hourly cron fires once per real hour, at each wall-clock time that
/// exists (01:00 twice in the repeated hour; 02:00 of the skipped hour is
/// 03:00), and a daily 02:30 fires once on both days.
#[tokio::test]
async fn cron_fires_once_per_real_hour_across_both_dst_changes() {
    let utc = |t: &str| -> SystemTime { chrono::DateTime::parse_from_rfc3339(t).expect("time").into() };
    let clock = Arc::new(Clock(Mutex::new(utc("2026-03-08T05:10:00Z"))));
    let f = fixture_zoned(tempfile::tempdir().expect("tmp"), clock, "America/Chicago", 4, false);
    f.hourly_started();
    f.job(
        "daily",
        "SELECT count(*) AS n FROM ev",
        r#"{"type":"crontab","spec":{"crontab":"0 30 2 * * *"}}"#,
        "",
    );
    f.engine.start_job("daily", &[]).expect("start daily");
    let tick = |from: &str, halves: i64| {
        let start = chrono::DateTime::parse_from_rfc3339(from).expect("time");
        (0..halves)
            .map(|i| (start + chrono::Duration::minutes(30 * i)).to_utc())
            .collect::<Vec<_>>()
    };
    for at in tick("2026-03-08T05:30:00Z", 12) {
        f.clock.0.lock().map(|mut c| *c = at.into()).expect("clock");
        for (job, id) in f.engine.tick().expect("tick") {
            assert_eq!(f.wait(&job, id).await, RunStatus::Successful, "{job} {id}");
        }
    }
    // 00:00 CST (06:00Z), 01:00 CST (07:00Z), 03:00 CDT (08:00Z), then 04:00 to 06:00 CDT
    assert_eq!(
        f.runs("hourly"),
        ["00", "01", "03", "04", "05", "06"].map(|h| ok(&format!("2026-03-08 {h}:00:00")))
    );
    assert_eq!(
        f.runs("daily"),
        [ok("2026-03-08 03:30:00")],
        "02:30 does not exist: the gap moves it to 03:30"
    );

    for at in tick("2026-11-01T04:30:00Z", 12) {
        f.clock.0.lock().map(|mut c| *c = at.into()).expect("clock");
        for (job, id) in f.engine.tick().expect("tick") {
            assert_eq!(f.wait(&job, id).await, RunStatus::Successful, "{job} {id}");
        }
    }
    // the first tick catches up the months in between with one batch (the
    // latest missed time, 23:00 CDT); then 00:00 CDT (05:00Z), 01:00 CDT
    // (06:00Z), 01:00 CST (07:00Z), and 02:00 to 04:00 CST
    let fall: Vec<_> = f.runs("hourly").into_iter().skip(6).collect();
    let mut want = vec![ok("2026-10-31 23:00:00")];
    want.extend(["00", "01", "01", "02", "03", "04"].map(|h| ok(&format!("2026-11-01 {h}:00:00"))));
    assert_eq!(fall, want);
    let daily: Vec<_> = f.runs("daily").into_iter().skip(1).collect();
    assert_eq!(
        daily,
        [ok("2026-10-31 02:30:00"), ok("2026-11-01 02:30:00")],
        "the catch-up batch, then 02:30, which exists once"
    );
}
