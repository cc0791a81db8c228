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

/// Row scans report their listed bytes, so DataFusion builds the join's
/// hash table on the small table whichever side the SQL puts it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_builds_its_hash_table_on_the_smaller_row_table() {
    let data = tempfile::tempdir().expect("tmp");
    let engine = pbatch::Engine::builder().data_dir(data.path()).build().expect("engine");
    let logs = data.path().join("buckets/logs-bkt/l/a.json");
    let dims = data.path().join("buckets/dims-bkt/d/a.json");
    for p in [&logs, &dims] {
        std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
    }
    let rows: String = (0..2000).map(|i| format!("{{\"k\":{},\"v\":{i}}}\n", i % 3)).collect();
    std::fs::write(&logs, rows).expect("logs");
    std::fs::write(&dims, "{\"k\":0,\"name\":\"a\"}\n{\"k\":1,\"name\":\"b\"}\n").expect("dims");
    for (name, bucket, schema) in [
        (
            "logs",
            "logs-bkt",
            r#"[{"key":"k","valtype":"long"},{"key":"v","valtype":"long"}]"#,
        ),
        (
            "dims",
            "dims-bkt",
            r#"[{"key":"k","valtype":"long"},{"key":"name","valtype":"string"}]"#,
        ),
    ] {
        let prefix = &name[..1];
        let ds = pbatch::model::DatasourceSpec::from_json(
            format!(
                r#"{{"region":"nb","type":"kodo","spec":{{"bucket":"{bucket}","keyPrefixes":["{prefix}/"],"fileType":"json"}},"schema":{schema},"noVerifySchema":true}}"#
            )
            .as_bytes(),
        )
        .expect("ds");
        engine.create_datasource(name, &ds).expect("create ds");
    }
    let job = pbatch::model::JobSpec::from_json(
        br#"{"srcs":[{"name":"logs","type":"datasource","tableName":"l"},{"name":"dims","type":"datasource","tableName":"d"}],
             "computation":{"type":"sql","code":"SELECT d.name, sum(l.v) AS s FROM l JOIN d ON l.k = d.k GROUP BY d.name"}}"#,
    )
    .expect("job");
    engine.create_job("j", &job).expect("create job");
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-25T01:00:00+08:00").expect("time");
    let p = engine.dry_run("j", &[], at).await.expect("plan");
    let join = p
        .physical_plan
        .find("HashJoinExec")
        .unwrap_or_else(|| panic!("a hash join:\n{}", p.physical_plan));
    let first_scan = p.physical_plan[join..]
        .lines()
        .find(|l| l.contains("RowScanExec"))
        .expect("a scan under the join");
    assert!(
        first_scan.contains("\"dims-bkt\""),
        "the build side (first input) scans the small table:\n{}",
        p.physical_plan
    );
    // and the result is right
    let r = engine.run_once("j", &[], at).await.expect("run");
    assert_eq!(r.rows_out, 2);
}
