//! A failed batch leaves nothing visible: no output, no staging.

use crate::util::{pbatch, root};

fn write(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A spec folder with one json datasource and a job with two exports.
fn spec(dir: &std::path::Path, second_mode: &str) {
    write(
        &dir.join("datasources/ev.json"),
        r#"{"region":"nb","type":"kodo","spec":{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"},
            "schema":[{"key":"id","valtype":"long","required":true}],"noVerifySchema":true}"#,
    );
    write(
        &dir.join("jobs/j.json"),
        r#"{"srcs":[{"name":"ev","type":"datasource","tableName":"ev"}],
            "computation":{"type":"sql","code":"SELECT id FROM ev"},
            "scheduler":{"type":"crontab","spec":{"crontab":"0 0 * * * *"}}}"#,
    );
    write(
        &dir.join("jobs/j/exports/a.json"),
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"a/$(date)/","format":"json"}}"#,
    );
    write(
        &dir.join("jobs/j/exports/b.json"),
        &format!(
            r#"{{"type":"kodo","spec":{{"bucket":"out-bkt","keyPrefix":"b/$(date)/","format":"csv","delimiter":",","saveMode":"{second_mode}"}}}}"#
        ),
    );
}

fn run(spec_dir: &std::path::Path, data: &std::path::Path) -> std::process::Output {
    pbatch()
        .arg("run")
        .arg(spec_dir)
        .arg("j")
        .arg("--data-dir")
        .arg(data)
        .args(["--batch-time", "2026-11-25T01:00:00Z"])
        .output()
        .expect("pbatch run")
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).expect("inside").display().to_string())
        .collect()
}

#[test]
fn bad_record_mid_file_fails_the_batch_and_commits_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (spec_dir, data) = (tmp.path().join("spec"), tmp.path().join("data"));
    spec(&spec_dir, "overwrite");
    let mut lines: String = (0..5000).map(|i| format!("{{\"id\":{i}}}\n")).collect();
    lines.push_str("{\"id\": not json}\n");
    write(&data.join("buckets/in-bkt/ev/part-0.json"), &lines);
    let out = run(&spec_dir, &data);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().last().unwrap_or("").starts_with("E18623: "), "{err}");
    assert!(files_under(&data.join("buckets/out-bkt")).is_empty(), "output leaked");
    assert!(files_under(&data.join(".staging")).is_empty(), "staging left behind");
}

#[test]
fn error_if_exists_on_one_export_commits_neither() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (spec_dir, data) = (tmp.path().join("spec"), tmp.path().join("data"));
    spec(&spec_dir, "errorIfExists");
    write(&data.join("buckets/in-bkt/ev/part-0.json"), "{\"id\":1}\n{\"id\":2}\n");
    write(&data.join("buckets/out-bkt/b/2026-11-25/part-00000.csv"), "9\n");
    write(&data.join("buckets/out-bkt/b/2026-11-25/notes.txt"), "not ours\n");
    let out = run(&spec_dir, &data);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("errorIfExists") && err.contains("b/2026-11-25/part-00000.csv"),
        "{err}"
    );
    let mut got = files_under(&data.join("buckets/out-bkt"));
    got.sort();
    assert_eq!(
        got,
        vec!["b/2026-11-25/notes.txt", "b/2026-11-25/part-00000.csv"],
        "export a was not committed"
    );

    // overwrite replaces what the export wrote, not the file it did not write;
    // a second run with append adds beside the first
    spec(&spec_dir, "overwrite");
    assert!(run(&spec_dir, &data).status.success());
    let mut got = files_under(&data.join("buckets/out-bkt"));
    got.sort();
    assert_eq!(
        got,
        vec![
            "a/2026-11-25/_SUCCESS",
            "a/2026-11-25/part-00000.json",
            "b/2026-11-25/_SUCCESS",
            "b/2026-11-25/notes.txt",
            "b/2026-11-25/part-00000.csv"
        ]
    );
    let csv = std::fs::read_to_string(data.join("buckets/out-bkt/b/2026-11-25/part-00000.csv")).expect("csv");
    assert_eq!(csv, "1\n2\n", "the old part file was replaced");
    spec(&spec_dir, "append");
    assert!(run(&spec_dir, &data).status.success());
    // notes.txt, the old part, the appended part, _SUCCESS
    assert_eq!(files_under(&data.join("buckets/out-bkt/b")).len(), 4);
    spec(&spec_dir, "ignore");
    let out = run(&spec_dir, &data);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ignored"));
    assert_eq!(files_under(&data.join("buckets/out-bkt/b")).len(), 4);
    let _ = root();
}

#[test]
fn two_exports_writing_the_same_keys_are_refused_before_any_commit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (spec_dir, data) = (tmp.path().join("spec"), tmp.path().join("data"));
    spec(&spec_dir, "overwrite");
    write(
        &spec_dir.join("jobs/j/exports/b.json"),
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"a/$(date)/","format":"json"}}"#,
    );
    write(&data.join("buckets/in-bkt/ev/part-0.json"), "{\"id\":1}\n");
    let out = run(&spec_dir, &data);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // progress lines, then the error
    assert!(
        err.lines()
            .last()
            .is_some_and(|l| l.starts_with("E18651: ") && l.contains("exports a and b")),
        "{err}"
    );
    assert!(
        files_under(&data.join("buckets/out-bkt")).is_empty(),
        "nothing committed"
    );
}
