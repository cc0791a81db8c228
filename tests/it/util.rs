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
