//! Batches on a Ballista cluster (`[cluster]`). Every fixture case also runs
//! on a cluster (tests/fixtures.rs, `cluster::<case>`); these are the rest.

use crate::util::pbatch;

/// The cluster tests one at a time: each starts three processes, and a
/// cancel's 2 s are measured on a 2-core machine.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The example's spec folder with its job raised past this machine.
fn raised_example(to: &std::path::Path) {
    crate::cluster_harness::raised_spec(&crate::util::root().join("examples/cdn-logs"), to);
}

/// A scheduler nobody runs: the batch fails with E18338 naming its address,
/// and nothing is committed.
#[test]
fn an_unreachable_scheduler_fails_the_batch_with_e18338() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = dir.path().join("spec");
    raised_example(&spec);
    let data = dir.path().join("data");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let made = pbatch()
        .args(["example", "cdn-logs", "--rows", "100", "--data-dir"])
        .arg(&data)
        .output()
        .expect("example");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let out = pbatch()
        .arg("run")
        .arg(&spec)
        .arg("daily_traffic")
        .arg("--data-dir")
        .arg(&data)
        .env("PBATCH_CLUSTER_SCHEDULER", format!("df://127.0.0.1:{port}"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("E18338: "), "{stderr}");
    assert!(last.contains(&format!("df://127.0.0.1:{port}")), "{last}");
    assert!(
        !data.join("buckets/cdn-reports").exists()
            || walkdir::WalkDir::new(data.join("buckets/cdn-reports"))
                .into_iter()
                .filter_map(|e| e.ok())
                .all(|e| !e.file_type().is_file()),
        "something was committed"
    );
}

/// `[cluster] scheduler` that does not parse is refused when the engine
/// starts, naming the key and the value.
#[test]
fn a_bad_scheduler_address_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = pbatch()
        .arg("run")
        .arg(crate::util::root().join("examples/cdn-logs"))
        .arg("daily_traffic")
        .arg("--data-dir")
        .arg(dir.path())
        .env("PBATCH_CLUSTER_SCHEDULER", "df://nohost")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cluster.scheduler") && stderr.contains("df://nohost"),
        "{stderr}"
    );
}

/// An executor whose scheduler is absent refuses to start, naming it.
#[test]
fn an_executor_without_its_scheduler_refuses_to_start() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("tmp");
    let out = pbatch()
        .args(["executor", "--scheduler"])
        .arg(format!("df://127.0.0.1:{port}"))
        .args(["--listen", "127.0.0.1:0", "--work-dir"])
        .arg(dir.path())
        .output()
        .expect("executor");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("df://127.0.0.1:{port}")) && stderr.contains("cannot be reached"),
        "{stderr}"
    );
}

/// A job of `engine` on datasource `ev` sized past this machine, with a
/// json export to `out-bkt`.
fn cluster_job(engine: &pbatch::Engine, name: &str, sql: &str) {
    let body = serde_json::json!({
        "srcs": [{"name": "ev", "type": "datasource", "tableName": "ev"}],
        "computation": {"type": "sql", "code": sql},
        "container": {"type": "16U64G", "count": 4},
        "scheduler": {"type": "crontab", "spec": {"crontab": "0 0 1 * * *"}},
    });
    let spec = pbatch::model::JobSpec::from_json(body.to_string().as_bytes()).expect("job");
    engine.create_job(name, &spec).expect("create job");
    crate::util::add_export(
        engine,
        name,
        "out",
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"x/$(date)/","format":"json"}}"#,
    );
}

fn cluster_config(c: &crate::cluster_harness::Cluster) -> pbatch::Config {
    let mut config = pbatch::Config::default();
    config.set("cluster.scheduler", &c.scheduler).expect("config");
    config
}

fn batch_time() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339("2026-11-25T01:00:00+08:00").expect("time")
}

/// Stopping a cluster batch ends it Canceled within 2 s and cancels its job
/// on the scheduler (dropping the result stream would leave it running).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cancels_the_cluster_job() {
    let _one = ONE_CLUSTER.lock().await;
    use pbatch::model::RunStatus;
    let cluster = crate::cluster_harness::Cluster::start(2);
    let lines: String = (0..20_000).map(|i| format!("{{\"id\":{i}}}\n")).collect();
    let (engine, data) =
        crate::util::engine_with_ev(cluster_config(&cluster), &lines, r#"[{"key":"id","valtype":"long"}]"#);
    // a table function has no wire form: refused before anything runs
    cluster_job(&engine, "series", "SELECT count(*) AS n FROM generate_series(1, 10)");
    let e = engine
        .run_once("series", &[], batch_time())
        .await
        .expect_err("not sendable");
    assert_eq!(e.code().code(), "E18209", "{e}");
    assert!(e.message().contains("cannot run on a cluster"), "{e}");
    // 4 * 10^8 pairs: runs for a long while unless canceled
    cluster_job(
        &engine,
        "slow",
        "SELECT count(*) AS n FROM ev a, ev b WHERE a.id + b.id = 7",
    );
    let id = engine.start_batch("slow", &[], batch_time()).expect("start");
    // running on an executor
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while (0..2).map(|i| cluster.tasks(i)).sum::<usize>() == 0 {
        let h = engine.history("slow", &Default::default()).expect("history");
        assert!(
            matches!(h.history[0].status, RunStatus::Ready | RunStatus::Running),
            "{:?}: {}",
            h.history[0].status,
            h.history[0].message
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no task started: {}",
            cluster.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let t0 = std::time::Instant::now();
    let out = engine.stop_batch("slow", id).await.expect("stop");
    assert_eq!(
        (out.pre_status, out.post_status),
        (RunStatus::Running, RunStatus::Canceled)
    );
    let h = engine
        .wait_batch("slow", id, std::time::Duration::from_secs(10))
        .await
        .expect("history");
    assert_eq!(h.status, RunStatus::Canceled);
    // the scheduler got the cancel and canceled the job
    loop {
        let log = std::fs::read_to_string(cluster.dir.path().join("scheduler.log")).unwrap_or_default();
        if log.contains("Job cancelled") {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(2),
            "the cluster job was not canceled within 2 s: {}",
            cluster.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        !data.path().join("buckets/out-bkt").exists(),
        "a canceled batch commits nothing"
    );

    // stopped as the result stream opens, while the job is on its way to
    // the scheduler: every job the scheduler queued is canceled
    let (opened, mut on_open) = tokio::sync::watch::channel(false);
    let progress: std::sync::Arc<dyn Fn(pbatch::Progress) + Send + Sync> = std::sync::Arc::new(move |p| {
        if matches!(&p, pbatch::Progress::Stage(s) if s == "running") {
            let _ = opened.send(true);
        }
    });
    let run = engine.run_once_with("slow", &[], batch_time(), progress);
    let stop = async {
        on_open.wait_for(|o| *o).await.expect("the batch opened its result");
        let h = engine.history("slow", &Default::default()).expect("history");
        let id = h.history.iter().map(|r| r.run_id).max().expect("the batch");
        engine.stop_batch("slow", id).await.expect("stop")
    };
    let (ran, stopped) = tokio::join!(run, stop);
    assert_eq!(stopped.post_status, RunStatus::Canceled);
    let e = ran.expect_err("stopped");
    assert!(e.message().contains("stopped"), "{e}");
    let t0 = std::time::Instant::now();
    let ids = |log: &str, what: &str| -> Vec<String> {
        log.lines()
            .filter_map(|l| {
                l.split_once(what)
                    .map(|(_, rest)| rest.trim_end_matches(']').to_string())
            })
            .collect()
    };
    loop {
        let log = std::fs::read_to_string(cluster.dir.path().join("scheduler.log")).unwrap_or_default();
        let queued = ids(&log, "Job queued: [");
        let cancelled = ids(&log, "Job cancelled: [");
        if queued.iter().all(|j| cancelled.contains(j)) {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(3),
            "a job queued {queued:?} was not canceled {cancelled:?}: {}",
            cluster.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Replaces the `ev` folder's file with 8 files of 50,000 ids (0..400,000):
/// tasks on both executors.
fn eight_files_of_ids(dir: &std::path::Path) {
    std::fs::remove_file(dir.join("a.json")).expect("rm");
    for f in 0..8 {
        let lines: String = (0..50_000)
            .map(|i| format!("{{\"id\":{}}}\n", f * 50_000 + i))
            .collect();
        std::fs::write(dir.join(format!("part-{f}.json")), lines).expect("write");
    }
}

/// Starts a batch of `job`, kills executor 1 once it has run a task, and
/// returns the batch's history once it ended.
async fn run_and_kill_executor_1(
    engine: &pbatch::Engine,
    cluster: &crate::cluster_harness::Cluster,
    job: &str,
) -> pbatch::model::JobHistory {
    let id = engine.start_batch(job, &[], batch_time()).expect("start");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while cluster.tasks(1) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "executor 1 ran nothing: {}",
            cluster.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    cluster.kill_executor(1);
    engine
        .wait_batch(job, id, std::time::Duration::from_secs(120))
        .await
        .expect("history")
}

/// An executor killed in the middle of a batch: the batch ends with every
/// row (its tasks ran again elsewhere) or Failed; never Successful short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_executor_never_loses_rows() {
    let _one = ONE_CLUSTER.lock().await;
    use pbatch::model::RunStatus;
    let cluster = crate::cluster_harness::Cluster::start(2);
    let (engine, data) =
        crate::util::engine_with_ev(cluster_config(&cluster), "", r#"[{"key":"id","valtype":"long"}]"#);
    // 8 files of 50,000 rows: tasks on both executors
    let dir = data.path().join("buckets/in-bkt/ev");
    eight_files_of_ids(&dir);
    cluster_job(&engine, "sum", "SELECT count(*) AS n, sum(id) AS s FROM ev");
    let h = run_and_kill_executor_1(&engine, &cluster, "sum").await;
    eprintln!("after the kill: {:?} {}", h.status, h.message);
    match h.status {
        RunStatus::Successful => {
            assert!(
                h.message.contains("read 400000 rows"),
                "rows read counted once: {}",
                h.message
            );
            let out = walkdir::WalkDir::new(data.path().join("buckets/out-bkt"))
                .into_iter()
                .filter_map(|e| e.ok())
                .find(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .expect("an output file");
            let text = std::fs::read_to_string(out.path()).expect("read");
            let row: serde_json::Value = serde_json::from_str(text.trim()).expect("one row");
            let n: u64 = 400_000;
            assert_eq!(row["n"], serde_json::json!(n), "{text}");
            assert_eq!(row["s"], serde_json::json!(n * (n - 1) / 2), "{text}");
        }
        RunStatus::Failed => {
            assert!(
                h.message.contains("exec-1"),
                "a Failed batch names the lost executor: {}",
                h.message
            );
        }
        s => panic!("the batch ended {s:?}: {}\n{}", h.message, cluster.logs()),
    }
}

/// A job over kodo buckets on an S3 endpoint: the scheduler and executors
/// reach it through their own configuration (`PBATCH_KODO_*`), for a json
/// source (pbatch's row scan) and a parquet one (DataFusion's scan), and the
/// engine uploads the export there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reads_s3_buckets_on_the_cluster() {
    let _one = ONE_CLUSTER.lock().await;
    let s3 = crate::s3::S3Server::start();
    let cluster = crate::cluster_harness::Cluster::start_with(
        2,
        &[
            ("PBATCH_KODO_ENDPOINT", &s3.endpoint),
            ("PBATCH_KODO_ACCESS_KEY", crate::s3::AK),
            ("PBATCH_KODO_SECRET_KEY", crate::s3::SK),
        ],
    );
    let mut config = s3.config(crate::s3::SK);
    config.set("cluster.scheduler", &cluster.scheduler).expect("config");
    let (engine, _data) = crate::util::engine_in_tmp(config);
    // json rows 0..4000 in 4 files, and the same ids again as parquet
    let logs = s3.bucket("logs-bkt");
    for f in 0..4 {
        let p = logs.join(format!("ev/part-{f}.json"));
        std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
        let lines: String = (0..1000).map(|i| format!("{{\"id\":{}}}\n", f * 1000 + i)).collect();
        std::fs::write(&p, lines).expect("write");
    }
    let pq = logs.join("pq/ids.parquet");
    std::fs::create_dir_all(pq.parent().expect("dir")).expect("mkdir");
    let script = format!(
        "import pyarrow as pa, pyarrow.parquet as pq; pq.write_table(pa.table({{'id': pa.array(range(4000), pa.int64())}}), {:?})",
        pq.display().to_string()
    );
    let out = std::process::Command::new(crate::util::python())
        .args(["-c", &script])
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (name, prefix, ty) in [("ev", "ev/", "json"), ("pq", "pq/", "parquet")] {
        let ds = pbatch::model::DatasourceSpec::from_json(
            format!(
                r#"{{"region":"nb","type":"kodo","spec":{{"bucket":"logs-bkt","keyPrefixes":["{prefix}"],"fileType":"{ty}"}},
                    "schema":[{{"key":"id","valtype":"long"}}],"noVerifySchema":true}}"#
            )
            .as_bytes(),
        )
        .expect("ds");
        engine.create_datasource(name, &ds).expect("create ds");
    }
    let body = serde_json::json!({
        "srcs": [
            {"name": "ev", "type": "datasource", "tableName": "ev"},
            {"name": "pq", "type": "datasource", "tableName": "pq"}
        ],
        "computation": {"type": "sql", "code":
            "SELECT count(*) AS n, sum(ev.id) AS s FROM ev JOIN pq ON ev.id = pq.id"},
        "container": {"type": "16U64G", "count": 4},
        "scheduler": {"type": "crontab", "spec": {"crontab": "0 0 1 * * *"}},
    });
    let spec = pbatch::model::JobSpec::from_json(body.to_string().as_bytes()).expect("job");
    engine.create_job("joined", &spec).expect("create job");
    crate::util::add_export(
        &engine,
        "joined",
        "out",
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"j/$(date)/","format":"json"}}"#,
    );
    s3.bucket("out-bkt");
    let r = engine.run_once("joined", &[], batch_time()).await.expect("batch");
    assert!(r.placement.starts_with("cluster df://"), "{}", r.placement);
    assert!(
        r.placement.contains(" executor"),
        "the executors that ran it are counted: {}",
        r.placement
    );
    assert_eq!(r.rows_read, 8000, "json and parquet rows, counted by the executors");
    let file = walkdir::WalkDir::new(s3.bucket("out-bkt"))
        .into_iter()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .expect("the export on S3");
    let text = std::fs::read_to_string(file.path()).expect("read");
    let row: serde_json::Value = serde_json::from_str(text.trim()).expect("one row");
    assert_eq!(row, serde_json::json!({"n": 4000, "s": 4000 * 3999 / 2}));

    // a job of DataFusion's parquet scans only still says where it ran
    let body = serde_json::json!({
        "srcs": [{"name": "pq", "type": "datasource", "tableName": "pq"}],
        "computation": {"type": "sql", "code": "SELECT sum(id) AS s FROM pq"},
        "container": {"type": "16U64G", "count": 4},
        "scheduler": {"type": "crontab", "spec": {"crontab": "0 0 1 * * *"}},
    });
    let spec = pbatch::model::JobSpec::from_json(body.to_string().as_bytes()).expect("job");
    engine.create_job("pq_only", &spec).expect("create job");
    let r = engine.run_once("pq_only", &[], batch_time()).await.expect("batch");
    assert!(
        r.placement.contains(" partitions, tasks on "),
        "the executors that ran it are counted: {}",
        r.placement
    );
    assert_eq!(r.rows_read, 4000);
}

/// Sums the first column of every `.csv` file under `dir`: (rows, sum).
fn csv_rows_and_sum(dir: &std::path::Path) -> (u64, u64, usize) {
    let (mut rows, mut sum, mut files) = (0u64, 0u64, 0usize);
    for e in walkdir::WalkDir::new(dir).into_iter().filter_map(|e| e.ok()) {
        if !e.file_name().to_string_lossy().ends_with(".csv") {
            continue;
        }
        files += 1;
        for line in std::fs::read_to_string(e.path()).expect("read").lines() {
            let first = line.split(',').next().unwrap_or_default();
            sum += first
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{}: {line:?}", e.path().display()));
            rows += 1;
        }
    }
    (rows, sum, files)
}

/// A result bigger than `[cluster] collect_max_bytes`: an executor writes
/// the files into the staging folder, and the engine uploads them to the
/// S3 bucket (its commit). Every row arrives, in `fileCount` files, and
/// the staging folder is gone after. A batch under the limit streams its
/// result to the engine as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_writes_a_big_result_and_the_engine_commits_it() {
    let _one = ONE_CLUSTER.lock().await;
    let s3 = crate::s3::S3Server::start();
    let cluster = crate::cluster_harness::Cluster::start_with(
        2,
        &[
            ("PBATCH_KODO_ENDPOINT", &s3.endpoint),
            ("PBATCH_KODO_ACCESS_KEY", crate::s3::AK),
            ("PBATCH_KODO_SECRET_KEY", crate::s3::SK),
        ],
    );
    let mut config = s3.config(crate::s3::SK);
    config.set("cluster.scheduler", &cluster.scheduler).expect("config");
    // the input is ~900 kB: past this limit
    config.set("cluster.collect_max_bytes", "100000").expect("config");
    let (engine, data) = crate::util::engine_in_tmp(config);
    let logs = s3.bucket("logs-bkt");
    for f in 0..4u64 {
        let p = logs.join(format!("ev/part-{f}.json"));
        std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
        let lines: String = (0..25_000)
            .map(|i| format!("{{\"id\":{}}}\n", f * 25_000 + i))
            .collect();
        std::fs::write(&p, lines).expect("write");
    }
    let ds = pbatch::model::DatasourceSpec::from_json(
        br#"{"region":"nb","type":"kodo","spec":{"bucket":"logs-bkt","keyPrefixes":["ev/"],"fileType":"json"},
            "schema":[{"key":"id","valtype":"long"}],"noVerifySchema":true}"#,
    )
    .expect("ds");
    engine.create_datasource("ev", &ds).expect("create ds");
    cluster_job(&engine, "big", "SELECT id, id * 2 AS twice FROM ev");
    crate::util::add_export(
        &engine,
        "big",
        "files",
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"big/$(date)/","format":"csv","delimiter":",","fileCount":3}}"#,
    );
    s3.bucket("out-bkt");
    let r = engine.run_once("big", &[], batch_time()).await.expect("batch");
    assert!(r.placement.contains("files written by an executor"), "{}", r.placement);
    assert_eq!(r.rows_out, 100_000);
    let files = r.exports.iter().find(|e| e.export == "files").expect("the csv export");
    assert_eq!(files.keys.len(), 3, "fileCount files: {:?}", files.keys);
    let (rows, sum, n) = csv_rows_and_sum(&s3.bucket("out-bkt").join("big"));
    assert_eq!(
        (rows, sum, n),
        (100_000, 100_000 * 99_999 / 2, 3),
        "every row, once, in S3"
    );
    let staging = data.path().join(".staging");
    let left: Vec<_> = walkdir::WalkDir::new(&staging)
        .min_depth(1)
        .into_iter()
        .filter_map(|e| e.ok())
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");

    // under the limit: the result comes to the engine, which writes it
    let mut small = s3.config(crate::s3::SK);
    small.set("cluster.scheduler", &cluster.scheduler).expect("config");
    let (engine2, _data2) = crate::util::engine_in_tmp(small);
    engine2.create_datasource("ev", &ds).expect("create ds");
    cluster_job(&engine2, "small", "SELECT count(*) AS n FROM ev WHERE id < 10");
    let r = engine2.run_once("small", &[], batch_time()).await.expect("batch");
    assert!(r.placement.starts_with("cluster df://"), "{}", r.placement);
    assert!(!r.placement.contains("files written"), "{}", r.placement);
    assert_eq!(r.rows_out, 1);
}

/// An executor killed while the cluster writes a batch's files: the batch
/// ends with every row written once (the write ran again elsewhere, into
/// a folder of its own) or Failed; never Successful short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_executor_never_loses_written_rows() {
    let _one = ONE_CLUSTER.lock().await;
    use pbatch::model::RunStatus;
    let cluster = crate::cluster_harness::Cluster::start(2);
    let mut config = cluster_config(&cluster);
    config.set("cluster.collect_max_bytes", "0").expect("config");
    let (engine, data) = crate::util::engine_with_ev(config, "", r#"[{"key":"id","valtype":"long"}]"#);
    let dir = data.path().join("buckets/in-bkt/ev");
    eight_files_of_ids(&dir);
    cluster_job(&engine, "copy", "SELECT id FROM ev");
    crate::util::add_export(
        &engine,
        "copy",
        "csv",
        r#"{"type":"kodo","spec":{"bucket":"copy-bkt","keyPrefix":"c/$(date)/","format":"csv","delimiter":",","fileCount":2}}"#,
    );
    let h = run_and_kill_executor_1(&engine, &cluster, "copy").await;
    eprintln!("after the kill: {:?} {}", h.status, h.message);
    let out = data.path().join("buckets/copy-bkt");
    match h.status {
        RunStatus::Successful => {
            // cluster_job's json export and this csv export's two files
            assert!(h.message.contains("wrote 400000 rows into 3 files"), "{}", h.message);
            let (rows, sum, files) = csv_rows_and_sum(&out);
            let n: u64 = 400_000;
            assert_eq!((rows, sum, files), (n, n * (n - 1) / 2, 2), "every row once");
        }
        RunStatus::Failed => {
            assert!(
                h.message.contains("exec-1"),
                "a Failed batch names the lost executor: {}",
                h.message
            );
            assert_eq!(csv_rows_and_sum(&out).2, 0, "a failed batch commits nothing");
        }
        s => panic!("the batch ended {s:?}: {}\n{}", h.message, cluster.logs()),
    }
}
