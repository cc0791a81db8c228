//! Dry runs (`pbatch plan`): what the README's example would read, compute
//! and write, with the data dir left exactly as it was; and the errors a real
//! run would hit before writing, with their codes and exit status 1.

use crate::util::{pbatch, root};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Every file under `dir`: its path, size and modification time.
fn files(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len(), m.modified().expect("mtime")));
            }
        }
    }
    out.sort();
    out
}

fn run(args: &[&str], spec: &Path, job: &str, data: &Path) -> (Option<i32>, String, String) {
    let out = pbatch()
        .arg(args[0])
        .arg(spec)
        .arg(job)
        .args(&args[1..])
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("pbatch");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn plan_of_the_example_shows_files_plan_and_keys_and_changes_nothing() {
    let data = tempfile::tempdir().expect("temp dir");
    let out = pbatch()
        .args(["example", "cdn-logs", "--rows", "2000", "--files", "3", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("pbatch example");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec = root().join("examples/cdn-logs");
    let at = ["--batch-time", "2026-11-25T01:00:00+08:00"];
    let before = files(data.path());

    let (code, out, err) = run(&[&["plan"][..], &at].concat(), &spec, "daily_traffic", data.path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(files(data.path()), before, "a dry run leaves the data dir as it was");
    for want in [
        "job daily_traffic  batch time 2026-11-25 01:00:00",
        "  date  2026-11-25\n",
        "FROM logs GROUP BY 1, 2, 3",
        "  logs (datasource cdn_logs): 3 files, ",
        "    kodo://cdn-logs/logs/2026-11-22/part-00000.json.gz\n",
        "  requests: Int64\n",
        "Aggregate: groupBy=",
        "TableScan: logs projection=[ts, domain, status, bytes]",
        "RowScanExec: Json 3 files of bucket \"cdn-logs\"",
        "  daily_parquet (kodo) -> ",
        "    daily_traffic/2026-11-25/part-00000.parquet\n    writes 1 file\n",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }

    // after a real run, the same plan says what overwrite would replace
    let (code, _, err) = run(&[&["run"][..], &at].concat(), &spec, "daily_traffic", data.path());
    assert_eq!(code, Some(0), "{err}");
    let before = files(data.path());
    let (code, out, err) = run(
        &[&["plan"][..], &at, &["--json"]].concat(),
        &spec,
        "daily_traffic",
        data.path(),
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(files(data.path()), before);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["srcs"][0]["files"], 3);
    assert_eq!(
        v["srcs"][0]["bytes"].as_u64(),
        Some(
            files(&data.path().join("buckets/cdn-logs"))
                .iter()
                .map(|f| f.1)
                .sum::<u64>()
        )
    );
    let e = &v["exports"][0];
    assert_eq!(
        e["existing"],
        serde_json::json!(["daily_traffic/2026-11-25/part-00000.parquet"])
    );
    assert_eq!(e["effect"], "writes 1 file, and would replace 1 file there now");
    assert!(e.get("error").is_none(), "{e}");
}

/// A spec folder with datasource `ev` over bucket `in-bkt`, job `j` with
/// `sql`, and one export `e`.
fn spec_folder(dir: &Path, bucket: &str, sql: &str, export: serde_json::Value) {
    let write = |rel: &str, v: serde_json::Value| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, v.to_string()).expect("write");
    };
    write(
        "datasources/ev.json",
        serde_json::json!({"region": "nb", "type": "kodo",
            "spec": {"bucket": bucket, "keyPrefixes": ["ev/"], "fileType": "json"},
            "schema": [{"key": "id", "valtype": "long"}, {"key": "kind", "valtype": "string"}], "noVerifySchema": true}),
    );
    write(
        "jobs/j.json",
        serde_json::json!({"srcs": [{"name": "ev", "type": "datasource", "tableName": "ev"}],
            "computation": {"type": "sql", "code": sql},
            "scheduler": {"type": "crontab", "spec": {"crontab": "0 0 * * * *"}}}),
    );
    write("jobs/j/exports/e.json", export);
}

/// What a real run would fail on before writing: the code, and exit 1.
#[test]
fn plan_reports_what_would_fail_with_its_code() {
    let kodo = |spec: serde_json::Value| serde_json::json!({"type": "kodo", "spec": spec});
    let ok_export = kodo(serde_json::json!({"bucket": "out-bkt", "keyPrefix": "x/", "format": "json"}));
    let cases: Vec<(&str, &str, &str, serde_json::Value, &str)> = vec![
        // name, bucket, sql, export, what stderr names
        (
            "missing bucket",
            "no-such-bkt",
            "SELECT id FROM ev",
            ok_export.clone(),
            "E18619",
        ),
        (
            "sql error",
            "in-bkt",
            "SELECT nope FROM ev",
            ok_export.clone(),
            "E18209: computation.code: No field named nope",
        ),
        (
            "undefined variable",
            "in-bkt",
            "SELECT id FROM ev",
            kodo(serde_json::json!({"bucket": "out-bkt", "keyPrefix": "x/$(nope)/", "format": "json"})),
            "nope",
        ),
        (
            "bad partitionBy column",
            "in-bkt",
            "SELECT id FROM ev",
            kodo(
                serde_json::json!({"bucket": "out-bkt", "keyPrefix": "x/", "format": "json", "partitionBy": ["kindd"]}),
            ),
            "kindd",
        ),
        (
            "errorIfExists on existing",
            "in-bkt",
            "SELECT id FROM ev",
            kodo(
                serde_json::json!({"bucket": "out-bkt", "keyPrefix": "x/$(date)/", "format": "json", "saveMode": "errorIfExists"}),
            ),
            "E18305",
        ),
    ];
    for (name, bucket, sql, export, names) in cases {
        let tmp = tempfile::tempdir().expect("tmp");
        let (spec, data) = (tmp.path().join("spec"), tmp.path().join("data"));
        spec_folder(&spec, bucket, sql, export);
        std::fs::create_dir_all(data.join("buckets/in-bkt/ev")).expect("mkdir");
        std::fs::write(data.join("buckets/in-bkt/ev/a.json"), "{\"id\":1,\"kind\":\"x\"}\n").expect("write");
        std::fs::create_dir_all(data.join("buckets/out-bkt/x/2026-11-20")).expect("mkdir");
        std::fs::write(
            data.join("buckets/out-bkt/x/2026-11-20/part-00000.json"),
            "{\"id\":0}\n",
        )
        .expect("write");
        let before = files(&data);
        let (code, out, err) = run(
            &["plan", "--batch-time", "2026-11-20T08:00:00+08:00"],
            &spec,
            "j",
            &data,
        );
        assert_eq!(code, Some(1), "{name}: exit 1\nstdout:\n{out}\nstderr:\n{err}");
        assert!(err.contains(names), "{name}: stderr names {names:?}:\n{err}");
        assert_eq!(files(&data), before, "{name}: nothing written");
        if name == "errorIfExists on existing" {
            assert!(
                out.contains("would fail: errorIfExists found x/2026-11-20/part-00000.json"),
                "{name}: {out}"
            );
        }
    }
}
