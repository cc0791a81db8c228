//! An acknowledged write to the durable catalog survives `kill -9`.
//!
//! The test re-runs its own binary as a child that creates variables in a
//! loop and prints `ack N` after each create returned; the parent kills it
//! with SIGKILL mid-stream and checks every acknowledged variable is there.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "PBATCH_DURABLE_CHILD_DIR";

fn child(dir: &str) {
    let engine = pbatch::Engine::builder()
        .data_dir(dir)
        .durable()
        .build()
        .expect("engine");
    let v: pbatch::model::VariableSpec = serde_json::from_str(r#"{"type":"string","value":"x"}"#).expect("spec");
    for i in 0.. {
        engine.create_variable(&format!("v{i}"), &v).expect("create");
        println!("ack {i}");
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let data = tempfile::tempdir().expect("tmp");
    let mut c = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "durable::acknowledged_writes_survive_kill_9",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child");
    let out = c.stdout.take().expect("stdout");
    let mut last = None;
    for line in BufReader::new(out).lines() {
        let line = line.expect("line");
        if let Some(n) = line.strip_prefix("ack ") {
            last = Some(n.parse::<usize>().expect("number"));
            if last >= Some(40) {
                c.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
                break;
            }
        }
    }
    let status = c.wait().expect("wait");
    assert!(!status.success(), "the child was killed, not finished");
    let last = last.expect("the child acknowledged writes");
    let engine = pbatch::Engine::builder()
        .data_dir(data.path())
        .durable()
        .build()
        .expect("reopen");
    let names: std::collections::HashSet<String> = engine
        .variables()
        .expect("variables")
        .into_iter()
        .map(|v| v.name)
        .collect();
    for i in 0..=last {
        assert!(
            names.contains(&format!("v{i}")),
            "acknowledged v{i} lost after kill -9 ({} kept)",
            names.len()
        );
    }
}

#[test]
fn a_run_left_running_by_a_dead_process_is_failed_at_start_and_its_staging_removed() {
    let data = tempfile::tempdir().expect("tmp");
    {
        let catalog = pbatch_engine::SqliteCatalog::open(&data.path().join("catalog.sqlite")).expect("catalog");
        let mut r = pbatch_engine::RunRecord {
            job: "j".into(),
            run_id: 0,
            batch_time: chrono::Utc::now(),
            start_time: Some(chrono::Utc::now()),
            end_time: None,
            status: pbatch::model::RunStatus::Running,
            message: String::new(),
            rerun_count: 0,
            params: vec![],
            owner: Some(u32::MAX - 1), // no such process
            backfill: None,
            retry: 0,
            stats: None,
        };
        use pbatch::Catalog as _;
        catalog.insert_run(&r).expect("insert dead");
        r.owner = Some(std::process::id()); // alive: this test
        catalog.insert_run(&r).expect("insert live");
    }
    let dead = data
        .path()
        .join(".staging/20261125010000-4294967294-000000001/e/part-00000.json");
    let live = data.path().join(format!(
        ".staging/20261125010000-{}-000000002/e/part-00000.json",
        std::process::id()
    ));
    for p in [&dead, &live] {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, "{}\n").expect("write");
    }
    let engine = pbatch::Engine::builder()
        .data_dir(data.path())
        .durable()
        .build()
        .expect("engine");
    let _ = engine;
    let catalog = pbatch_engine::SqliteCatalog::open(&data.path().join("catalog.sqlite")).expect("catalog");
    use pbatch::Catalog as _;
    let runs = catalog.runs("j").expect("runs");
    assert_eq!(runs[0].status, pbatch::model::RunStatus::Failed);
    assert!(
        runs[0].message.contains("engine stopped during the run"),
        "{}",
        runs[0].message
    );
    assert_eq!(
        runs[1].status,
        pbatch::model::RunStatus::Running,
        "a live owner's run is left alone"
    );
    assert!(!dead.exists(), "a dead process's staging is removed");
    assert!(live.exists(), "a live process's staging stays");
}

/// Usage mistakes get their own plain errors, and a read-only command
/// creates nothing.
#[test]
fn usage_errors_are_plain_and_history_never_creates_a_catalog() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |args: &[&str]| {
        let out = crate::util::pbatch()
            .current_dir(tmp.path())
            .args(args)
            .output()
            .expect("pbatch");
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    };
    let e = run(&["history", "j"]);
    assert!(e.starts_with("error: no catalog at pbatch-data/catalog.sqlite"), "{e}");
    assert!(!tmp.path().join("pbatch-data").exists(), "history created a data dir");
    let e = run(&["run", "no-such-folder", "j"]);
    assert!(e.starts_with("error: spec folder no-such-folder does not exist"), "{e}");
    assert!(!e.contains("E18007"), "{e}");
    let e = run(&["serve", "--listen", "localhost"]);
    assert!(
        e.starts_with("error: listen address \"localhost\" is not ip:port"),
        "{e}"
    );
}
