//! The web console in a real browser: `tests/console_browser.py` drives
//! Debian's chromium through chromium-driver and selenium against the real
//! `pbatch serve` with keys. It signs in, starts the example job and
//! watches its cell turn green without a reload, checks the run page
//! against the committed file (pyarrow), reruns, stops a long batch,
//! follows a depend edge of the graph, and reads the datasource and
//! variable lists; a screenshot of each page is kept in the temp dir.

use crate::server::serve_cmd;
use crate::util::{apply, pbatch, python, root, write_file};

const ROWS: usize = 2000;

fn write(p: std::path::PathBuf, text: &str) {
    write_file(&p, text);
}

#[test]
fn the_console_in_a_real_browser() {
    for (bin, pkg) in [
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromedriver", "chromium-driver"),
    ] {
        let path = std::env::var(if pkg == "chromium" {
            "PBATCH_CHROMIUM"
        } else {
            "PBATCH_CHROMEDRIVER"
        })
        .unwrap_or_else(|_| bin.to_string());
        assert!(
            std::path::Path::new(&path).exists(),
            "the console test needs {path} (apt-get install {pkg}; scripts/test.sh --install)"
        );
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let out = pbatch()
        .args([
            "example",
            "cdn-logs",
            "--rows",
            &ROWS.to_string(),
            "--files",
            "2",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("pbatch example");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // the example's datasource, export and job (made manual: start runs a
    // batch now), a depend job, a job that runs until stopped, a variable
    let spec = tmp.path().join("spec");
    let example = root().join("examples/cdn-logs");
    for f in [
        "datasources/cdn_logs.json",
        "jobs/daily_traffic/exports/daily_parquet.json",
    ] {
        write(
            spec.join(f),
            &std::fs::read_to_string(example.join(f)).expect("example spec"),
        );
    }
    let mut job: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example.join("jobs/daily_traffic.json")).expect("job"))
            .expect("json");
    job["scheduler"] = serde_json::json!({"type": "manual"});
    write(spec.join("jobs/daily_traffic.json"), &job.to_string());
    write(
        spec.join("jobs/domains.json"),
        r#"{"srcs":[{"name":"daily_traffic","type":"job","tableName":"t"}],
            "computation":{"type":"sql","code":"SELECT domain, SUM(requests) AS requests FROM t GROUP BY domain"},
            "scheduler":{"type":"depend"}}"#,
    );
    write(
        spec.join("jobs/slow.json"),
        r#"{"srcs":[{"name":"cdn_logs","type":"datasource","tableName":"logs"}],
            "computation":{"type":"sql","code":"SELECT count(*) AS n FROM generate_series(1, 100000000000) WHERE value % 7 = 3"},
            "scheduler":{"type":"manual"}}"#,
    );
    write(
        spec.join("variables/window.json"),
        r#"{"type":"time","value":"$(now)-1d","format":"yyyy-MM-dd"}"#,
    );
    apply(&spec, &data);

    let config = tmp.path().join("pbatch.toml");
    std::fs::write(&config, "[server]\nkeys = [\"AK_UI:SK_UI\"]\n").expect("config");
    let mut cmd = pbatch();
    // each commit waits 2.5 s, so a batch is seen in flight before it turns green
    cmd.env("PBATCH_FAILPOINTS", "commit.before_point=sleep(2500)");
    let (_server, url) = serve_cmd(cmd, &data, &["--config".as_ref(), config.as_os_str()]);

    let shots = tmp.path().join("screenshots");
    let mut browser = std::process::Command::new(python());
    browser
        .arg(root().join("tests/console_browser.py"))
        .args([
            "--url",
            &url,
            "--ak",
            "AK_UI",
            "--sk",
            "SK_UI",
            "--rows",
            &ROWS.to_string(),
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--shots")
        .arg(&shots);
    if let Ok(p) = std::env::var("PBATCH_README_SHOT") {
        browser.args(["--readme-shot", &p]);
    }
    let out = browser.output().expect("python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "console_browser.py:\n{text}");
    for step in [
        "ok signed in; cookie HttpOnly SameSite=Strict",
        "ok CSRF: missing/forged token",
        "green without a reload",
        "ok run page: rows in 2000",
        "ok rerun from the run page: rerunCount 1, Successful",
        "ok stopped a long batch from the job page: Canceled",
        "ok graph: followed the depend edge daily_traffic -> domains",
        "ok datasources (schema) and variables",
        "ok signed out",
    ] {
        assert!(text.contains(step), "the browser run did not get to {step:?}:\n{text}");
    }
    // a screenshot of each page
    let pngs = std::fs::read_dir(&shots)
        .expect("screenshots")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "png") && e.metadata().is_ok_and(|m| m.len() > 1000))
        .count();
    assert!(pngs >= 9, "{pngs} screenshots in {}", shots.display());
}
