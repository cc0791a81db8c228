//! A batch killed anywhere in its commit is whole after one engine start:
//! every export all-old or all-new, all exports on the same version, no
//! staging left, and a history that tells what happened.
//!
//! The child is `pbatch run --record` built with `pbatch-sink/failpoints`;
//! `PBATCH_FAILPOINTS` makes it abort (SIGABRT, no destructors, like
//! kill -9) at a named point of the commit.

use crate::util::{pbatch, read_rows};
use std::path::{Path, PathBuf};

const ROWS: i64 = 60;
const BATCH_TIME: &str = "2026-11-25T01:00:00Z";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A job with three overwrite exports: parquet in 3 files, csv.gz
/// partitioned by `grp`, and json.
fn spec(dir: &Path) {
    write(
        &dir.join("datasources/ev.json"),
        r#"{"region":"nb","type":"kodo","spec":{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"},
            "schema":[{"key":"id","valtype":"long"},{"key":"v","valtype":"long"},{"key":"grp","valtype":"string"}],
            "noVerifySchema":true}"#,
    );
    write(
        &dir.join("jobs/j.json"),
        r#"{"srcs":[{"name":"ev","type":"datasource","tableName":"ev"}],
            "computation":{"type":"sql","code":"SELECT id, v, grp FROM ev"},
            "scheduler":{"type":"crontab","spec":{"crontab":"0 0 * * * *"}}}"#,
    );
    write(
        &dir.join("jobs/j/exports/p.json"),
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"p/$(date)/","format":"parquet","fileCount":3}}"#,
    );
    write(
        &dir.join("jobs/j/exports/c.json"),
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"c/$(date)/","format":"csv","delimiter":",","compression":"gzip","partitionBy":["grp"]}}"#,
    );
    write(
        &dir.join("jobs/j/exports/s.json"),
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"s/$(date)/","format":"json"}}"#,
    );
}

/// Source data of `version`: v = version * 1000 + id.
fn data(data_dir: &Path, version: i64) {
    let lines: String = (0..ROWS)
        .map(|id| {
            format!(
                "{{\"id\":{id},\"v\":{},\"grp\":\"g{}\"}}\n",
                version * 1000 + id,
                id % 3
            )
        })
        .collect();
    write(&data_dir.join("buckets/in-bkt/ev/data.json"), &lines);
}

/// `pbatch run --record` of job `j` at the test's batch time, with fault points.
fn run_cmd(spec_dir: &Path, data_dir: &Path, failpoints: &str) -> std::process::Command {
    let mut c = pbatch();
    c.arg("run")
        .arg(spec_dir)
        .arg("j")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--batch-time", BATCH_TIME, "--record"])
        .env("PBATCH_FAILPOINTS", failpoints);
    c
}

fn run(spec_dir: &Path, data_dir: &Path, failpoints: &str) -> std::process::Output {
    run_cmd(spec_dir, data_dir, failpoints).output().expect("pbatch run")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| p.file_name().is_some_and(|n| n != "_SUCCESS"))
        .collect();
    out.sort();
    out
}

/// The version every row of an export carries; panics unless the export
/// holds exactly one whole version.
fn version_of(out: &Path, export: &str) -> i64 {
    let dir = out.join(format!("{export}/2026-11-25"));
    let found = files(&dir);
    let rows = match export {
        "p" => read_rows("parquet", &found, false, ","),
        "c" => read_rows("csv", &found, false, ","),
        _ => read_rows("json", &found, false, ","),
    };
    assert_eq!(rows.len() as i64, ROWS, "export {export}: {found:?}");
    let v = |r: &serde_json::Value| {
        // csv files have no header: the second column is v
        r.get("v")
            .or_else(|| r.get("column1"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_else(|| panic!("v in {r}"))
    };
    let versions: std::collections::BTreeSet<i64> = rows.iter().map(|r| v(r) / 1000).collect();
    assert_eq!(
        versions.len(),
        1,
        "export {export} mixes versions {versions:?}: {found:?}"
    );
    versions.into_iter().next().unwrap_or(0)
}

/// The history line of the job's latest batch (run 2), after one engine start.
fn latest_run(data_dir: &Path) -> String {
    let out = pbatch()
        .args(["history", "j", "--run-id", "-1", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("pbatch history");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "history: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find(|l| l.trim_start().starts_with("2 "))
        .unwrap_or_else(|| panic!("run 2 in {text}"))
        .to_string()
}

/// One crash case: run 1 commits version 1; run 2 reads version 2 and
/// aborts at `point`; one engine start follows.
fn crash_at(point: &str, rolls_forward: bool) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (spec_dir, data_dir) = (tmp.path().join("spec"), tmp.path().join("data"));
    spec(&spec_dir);
    data(&data_dir, 1);
    let first = run(&spec_dir, &data_dir, "");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    data(&data_dir, 2);
    let killed = run(&spec_dir, &data_dir, point);
    assert!(
        !killed.status.success(),
        "{point}: the run was not stopped: {}",
        String::from_utf8_lossy(&killed.stdout)
    );
    assert!(
        String::from_utf8_lossy(&killed.stderr).contains("fault injected"),
        "{point}: not stopped by the fault: {}",
        String::from_utf8_lossy(&killed.stderr)
    );

    let run2 = latest_run(&data_dir);
    assert!(
        !rolls_forward || run2.contains("the commit was completed at engine start"),
        "{point}: {run2}"
    );
    let version = check_whole(&spec_dir, &data_dir, point);
    assert_eq!(version, if rolls_forward { 2 } else { 1 }, "{point}");
}

/// After one engine start: every export holds one whole version and all
/// hold the same, no staging is left, the history of run 2 agrees, and
/// each manifest matches its files. Returns the version.
fn check_whole(spec_dir: &Path, data_dir: &Path, point: &str) -> i64 {
    // one engine start on the same data dir (history opens the engine)
    let run2 = latest_run(data_dir);
    let out = data_dir.join("buckets/out-bkt");
    let want = version_of(&out, "p");
    for export in ["c", "s"] {
        assert_eq!(
            version_of(&out, export),
            want,
            "{point}: export {export} disagrees with p"
        );
    }
    let rolls_forward = want == 2;
    let staging: Vec<_> = std::fs::read_dir(data_dir.join(".staging"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(staging.is_empty(), "{point}: staging left: {staging:?}");
    if rolls_forward {
        assert!(run2.contains("Successful"), "{point}: {run2}");
        assert!(run2.contains("wrote 60 rows into 7 files"), "{point}: {run2}");
    } else {
        assert!(run2.contains("Failed"), "{point}: {run2}");
        assert!(run2.contains("nothing was committed"), "{point}: {run2}");
    }
    // every export's files match its manifest, which names the batch that won
    let verify = pbatch()
        .arg("verify")
        .arg(spec_dir)
        .arg("j")
        .args(["--batch-time", BATCH_TIME, "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("pbatch verify");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{point}: verify: {report}");
    assert_eq!(report.matches("ok   ").count(), 3, "{point}: {report}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("p/2026-11-25/_SUCCESS")).expect("_SUCCESS")).expect("json");
    assert_eq!(manifest["runId"], want, "{point}: {manifest}");
    want
}

#[test]
fn crash_before_the_commit_point_rolls_back() {
    crash_at("commit.before_point=return", false);
}

#[test]
fn crash_right_after_the_commit_point_rolls_forward() {
    crash_at("commit.after_point=return", true);
}

#[test]
fn crash_after_the_second_file_of_an_export_rolls_forward() {
    crash_at("commit.after_file=return(2)", true);
}

#[test]
fn crash_between_two_exports_rolls_forward() {
    crash_at("commit.between_exports=return(1)", true);
}

#[test]
fn crash_before_a_manifest_rolls_forward() {
    crash_at("commit.before_manifest=return", true);
}

/// SIGKILL at moments spread over the whole batch, slowed down (400 ms
/// before the commit point, 150 ms after each file) and timed from what
/// the batch has done, so that the kills land on both sides of the commit
/// point however fast the machine: some once staging exists, some once the
/// journal does.
#[test]
fn sigkill_at_any_moment_leaves_one_whole_version() {
    let moments: [(&str, u64); 7] = [
        ("staging", 0),
        ("staging", 200),
        ("journal", 0),
        ("journal", 150),
        ("journal", 450),
        ("journal", 800),
        ("journal", 1500),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (event, delay_ms) in moments {
        let tmp = tempfile::tempdir().expect("tmp");
        let (spec_dir, data_dir) = (tmp.path().join("spec"), tmp.path().join("data"));
        spec(&spec_dir);
        data(&data_dir, 1);
        let first = run(&spec_dir, &data_dir, "");
        assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
        data(&data_dir, 2);
        let mut child = run_cmd(
            &spec_dir,
            &data_dir,
            "commit.before_point=sleep(400);commit.after_file=sleep(150)",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
        let staging = data_dir.join(".staging");
        let happened = || {
            let dirs: Vec<PathBuf> = std::fs::read_dir(&staging)
                .map(|rd| rd.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            match event {
                "staging" => !dirs.is_empty(),
                _ => dirs.iter().any(|d| d.join("COMMIT").exists()),
            }
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !happened() && std::time::Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let point = format!("SIGKILL {delay_ms} ms after the {event} appeared");
        let version = check_whole(&spec_dir, &data_dir, &point);
        if event == "journal" {
            assert_eq!(version, 2, "{point}: past the commit point the new version wins");
        }
        seen.insert(version);
    }
    assert_eq!(
        seen.len(),
        2,
        "the kills landed on both sides of the commit point: {seen:?}"
    );
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).expect("mount point");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "mounting a {size} tmpfs at {} needs root (CI runs as root): {}",
            at.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).expect("read")))
        .collect()
}

/// Staging on a file system that fills up: the batch is Failed saying the
/// disk is full and naming the folder, the history is intact, and the
/// earlier outputs are byte-identical.
#[test]
fn a_full_disk_under_staging_fails_the_batch_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (spec_dir, data_dir) = (tmp.path().join("spec"), tmp.path().join("data"));
    spec(&spec_dir);
    let _fs = Tmpfs::mount(&data_dir.join(".staging"), "256k");
    data(&data_dir, 1);
    // staging and buckets on different file systems: files are copied in
    let first = run(&spec_dir, &data_dir, "");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let before = snapshot(&data_dir.join("buckets/out-bkt"));
    assert_eq!(before.len(), 10, "7 part files and 3 manifests");

    // the second batch's result does not fit in 256 KiB
    let lines: String = (0..40_000)
        .map(|id| format!("{{\"id\":{id},\"v\":{},\"grp\":\"g{}\"}}\n", 2000 + id, id % 3))
        .collect();
    write(&data_dir.join("buckets/in-bkt/ev/data.json"), &lines);
    let failed = run(&spec_dir, &data_dir, "");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "the batch fit after all");
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.contains("the disk is full"), "{line}");
    assert!(
        line.contains(&data_dir.join(".staging").display().to_string()),
        "names the folder: {line}"
    );

    assert_eq!(
        snapshot(&data_dir.join("buckets/out-bkt")),
        before,
        "earlier outputs changed"
    );
    assert_eq!(
        std::fs::read_dir(data_dir.join(".staging")).expect("staging").count(),
        0,
        "staging left on the full disk"
    );
    let run2 = latest_run(&data_dir);
    assert!(run2.contains("Failed") && run2.contains("the disk is full"), "{run2}");
    let history = pbatch()
        .args(["history", "j", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("history");
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(text.contains("2 batches in all"), "{text}");
    assert_eq!(text.matches("Successful").count(), 1, "{text}");
}
