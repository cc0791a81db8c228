//! The README's example, end to end: generate logs, `pbatch run`, read the
//! parquet back with pyarrow and compare with DuckDB computing the same
//! report straight from the generated files.

use crate::util::{pbatch, python, read_rows, root};

#[test]
fn cdn_logs_example_matches_duckdb() {
    let data = tempfile::tempdir().expect("temp dir");
    let out = pbatch()
        .args(["example", "cdn-logs", "--rows", "20000", "--files", "4", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("pbatch example");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = pbatch()
        .arg("run")
        .arg(root().join("examples/cdn-logs"))
        .arg("daily_traffic")
        .arg("--data-dir")
        .arg(data.path())
        .args(["--batch-time", "2026-11-25T01:00:00+08:00"])
        .output()
        .expect("pbatch run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("read 20000 rows from 4 files"), "{summary}");

    let file = data
        .path()
        .join("buckets/reports/daily_traffic/2026-11-25/part-00000.parquet");
    let got = read_rows("parquet", std::slice::from_ref(&file), false, ",");

    let logs = data.path().join("buckets/cdn-logs/logs/*/*.json.gz");
    let script = format!(
        r#"
import duckdb, json, datetime
rel = duckdb.sql("""SELECT CAST(CAST(ts AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS DATE) AS day, domain, status,
  COUNT(*) AS requests, SUM(bytes) AS bytes
  FROM read_json('{}', format='newline_delimited', columns={{'ts':'VARCHAR','domain':'VARCHAR','status':'BIGINT','bytes':'BIGINT'}})
  GROUP BY ALL""")
for r in rel.fetchall():
    print(json.dumps(dict(day=r[0].isoformat(), domain=r[1], status=r[2], requests=r[3], bytes=int(r[4])), sort_keys=True))
"#,
        logs.display()
    );
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut want: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let mut got: Vec<String> = got.iter().map(|v| v.to_string()).collect();
    want.sort();
    got.sort();
    let want: Vec<String> = want
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json").to_string())
        .collect();
    assert!(
        got.len() >= 3 * 4 * 4,
        "expected days x domains x statuses rows, got {}",
        got.len()
    );
    assert_eq!(got, want);
    let total: i64 = read_rows("parquet", &[file], false, ",")
        .iter()
        .map(|r| r["requests"].as_i64().expect("requests"))
        .sum();
    assert_eq!(total, 20000);
}

/// The README's first command runs at the default batch time (now); `pbatch
/// verify` without `--batch-time` checks the folders of a batch now, whichever
/// batch committed there, and names it.
#[test]
fn verify_without_a_batch_time_checks_the_latest_commit() {
    let data = tempfile::tempdir().expect("temp dir");
    let out = pbatch()
        .args(["example", "cdn-logs", "--rows", "2000", "--files", "2", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("pbatch example");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli = |args: &[&str]| {
        pbatch()
            .args(args)
            .arg(root().join("examples/cdn-logs"))
            .arg("daily_traffic")
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .expect("pbatch")
    };
    let out = cli(&["run"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&["verify"]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        report.starts_with("ok   daily_parquet: 1 files, ") && report.contains("(run 1, batch time "),
        "{report}"
    );
}

/// Without a terminal, `pbatch run` prints its progress as lines on stderr:
/// the listing, bytes read out of it with rate (one every
/// `PBATCH_PROGRESS_SECONDS`, and at the end), and each committed export;
/// `--quiet` prints the summary alone.
#[test]
fn run_prints_progress_lines_without_a_terminal_and_nothing_when_quiet() {
    let data = tempfile::tempdir().expect("temp dir");
    let out = pbatch()
        .args(["example", "cdn-logs", "--rows", "20000", "--files", "3", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("pbatch example");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = |quiet: bool| {
        let mut c = pbatch();
        c.arg("run")
            .arg(root().join("examples/cdn-logs"))
            .arg("daily_traffic")
            .arg("--data-dir")
            .arg(data.path())
            .args(["--batch-time", "2026-11-25T01:00:00+08:00"])
            .env("PBATCH_PROGRESS_SECONDS", "0");
        if quiet {
            c.arg("--quiet");
        }
        let out = c.output().expect("pbatch run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (summary, progress) = run(false);
    let rows_out = summary
        .split("the SQL produced ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("rows out in the summary");
    let lines: Vec<&str> = progress.lines().collect();
    assert!(
        lines.first().is_some_and(
            |l| l.starts_with("daily_traffic: reading 3 files, ") && (l.ends_with("KiB") || l.ends_with("MiB"))
        ),
        "the listing first:\n{progress}"
    );
    let reads: Vec<&&str> = lines.iter().filter(|l| l.starts_with("daily_traffic: read ")).collect();
    let last = reads.last().expect("a read line");
    let total = lines[0].rsplit(", ").next().expect("total");
    assert!(
        last.starts_with(&format!("daily_traffic: read {total} of {total} (100%), "))
            && last.contains("/s")
            && last.ends_with(&format!("; {rows_out} rows out")),
        "the read's end, with rate and rows out:\n{progress}"
    );
    assert_eq!(
        lines.last().map(|l| l.split(", ").next()),
        Some(Some("daily_traffic: export daily_parquet: committed 1 file")),
        "{progress}"
    );
    let (quiet_summary, quiet_progress) = run(true);
    assert_eq!(quiet_progress, "", "--quiet prints no progress");
    assert!(
        quiet_summary.starts_with("job daily_traffic  run 1  batch time "),
        "{quiet_summary}"
    );
}
