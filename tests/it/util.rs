//! Shared helpers: the pbatch binary, the independent reader.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `pbatch` binary cargo built for these tests, evaluating magic
/// variables in Asia/Shanghai whatever the machine's zone is.
pub fn pbatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pbatch"));
    c.env("PBATCH_ENGINE_TIMEZONE", "Asia/Shanghai");
    c
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python with pyarrow and DuckDB: `PBATCH_PYTHON`, else the venv
/// `scripts/test.sh` creates. Missing = a loud failure, never a skip.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PBATCH_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let p = PathBuf::from(home).join(".cache/pbatch-venv/bin/python");
    assert!(
        p.exists(),
        "no Python with pyarrow and DuckDB at {}: run scripts/test.sh (it creates the venv) or set PBATCH_PYTHON",
        p.display()
    );
    p
}

/// Reads output files with pyarrow / DuckDB; one canonical JSON object per row.
pub fn read_rows(format: &str, files: &[PathBuf], header: bool, delim: &str) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(python());
    cmd.arg(root().join("tests/read_output.py")).arg(format);
    if header {
        cmd.arg("--header");
    }
    cmd.arg("--delim").arg(delim);
    cmd.args(files);
    let out: Output = cmd.output().expect("running tests/read_output.py");
    assert!(
        out.status.success(),
        "read_output.py {format} {files:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("reader printed JSON"))
        .collect()
}

/// An engine with `config` over a fresh data dir (dropped with the dir).
pub fn engine_in_tmp(config: pbatch::Config) -> (pbatch::Engine, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("tmp");
    let engine = pbatch::Engine::builder()
        .config(config)
        .data_dir(data.path())
        .build()
        .expect("engine");
    (engine, data)
}

/// [`engine_in_tmp`] with datasource `ev`: `rows` (NDJSON) in
/// `in-bkt/ev/a.json`, read with the schema entries `schema` (a JSON list).
pub fn engine_with_ev(config: pbatch::Config, rows: &str, schema: &str) -> (pbatch::Engine, tempfile::TempDir) {
    let (engine, data) = engine_in_tmp(config);
    std::fs::create_dir_all(data.path().join("buckets/in-bkt/ev")).expect("mkdir");
    std::fs::write(data.path().join("buckets/in-bkt/ev/a.json"), rows).expect("write");
    let ds = pbatch::model::DatasourceSpec::from_json(
        format!(
            r#"{{"region":"nb","type":"kodo","spec":{{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"}},
                 "schema":{schema},"noVerifySchema":true}}"#
        )
        .as_bytes(),
    )
    .expect("ds");
    engine.create_datasource("ev", &ds).expect("create ds");
    (engine, data)
}

/// Creates job `name` over datasource `ev` (table `ev`) running `sql`,
/// with the scheduler `scheduler` (a JSON object).
pub fn add_job(engine: &pbatch::Engine, name: &str, sql: &str, scheduler: &str) {
    let body = serde_json::json!({
        "srcs": [{"name": "ev", "type": "datasource", "tableName": "ev"}],
        "computation": {"type": "sql", "code": sql},
        "scheduler": serde_json::from_str::<serde_json::Value>(scheduler).expect("scheduler JSON"),
    });
    let spec = pbatch::model::JobSpec::from_json(body.to_string().as_bytes()).expect("job");
    engine.create_job(name, &spec).expect("create job");
}

/// Creates export `name` of `job` from its JSON body.
pub fn add_export(engine: &pbatch::Engine, job: &str, name: &str, body: &str) {
    let spec = pbatch::model::ExportSpec::from_json(body.as_bytes(), None).expect("export spec");
    engine.create_export(job, name, &spec).expect("create export");
}

/// [`add_job`] on a daily crontab, with one export `out` (a JSON body).
pub fn add_daily_job(engine: &pbatch::Engine, job: &str, sql: &str, export: &str) {
    add_job(
        engine,
        job,
        sql,
        r#"{"type":"crontab","spec":{"crontab":"0 0 1 * * *"}}"#,
    );
    add_export(engine, job, "out", export);
}

/// Writes `text` to `path`, creating its folders.
pub fn write_file(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// `pbatch apply <spec> --data-dir <data>`, which must succeed.
pub fn apply(spec: &std::path::Path, data: &std::path::Path) {
    let out = pbatch()
        .arg("apply")
        .arg(spec)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("apply");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Copies a folder tree.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walking the tree");
        let rel = entry.path().strip_prefix(from).expect("inside the tree");
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}
