//! Walks `fixtures/<case>/`: each case is a spec folder (`spec/`), input
//! files (`data/`, copied as the data dir) and a `case.toml` that says how to
//! run it (job, batch time, params, engine time zone: Asia/Shanghai unless
//! `timezone` says otherwise) and what must come out: rows read back by
//! pyarrow / DuckDB, or an error code with words its message must hold.
//! `PBATCH_BLESS=1` rewrites expected rows from what the reader printed.
//!
//! One test per case (`harness = false`, libtest-mimic): `cargo test --test
//! fixtures -- <case>` runs one, and a failure names its case. Adding a case
//! needs no Rust code.
//!
//! Each case runs a second time as `cluster::<case>` (but those about the
//! container): its jobs' containers raised to 16U64G x 4, on a Ballista
//! cluster of one `pbatch scheduler` and two `pbatch executor`s on loopback
//! (started once, for every cluster case), it must give the same rows, count
//! the same rows read and invalid records, or fail with the same code and
//! words; at the end both executors must have run tasks. There, an executor
//! writes the files (`[cluster] collect_max_bytes = 0`), into the staging
//! folder the engine commits from.

#[path = "it/cluster_harness.rs"]
mod cluster_harness;
#[path = "it/util.rs"]
#[allow(dead_code)]
mod util;

use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use util::{copy_dir, pbatch, read_rows, root};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the case shows.
    #[allow(dead_code)]
    about: String,
    job: String,
    #[serde(default = "default_batch_time")]
    batch_time: String,
    #[serde(default)]
    params: Vec<String>,
    /// Engine time zone (default Asia/Shanghai, set by `util::pbatch`).
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    error: Option<ExpectError>,
    #[serde(default)]
    output: Vec<ExpectOutput>,
}

fn default_batch_time() -> String {
    "2026-11-25T01:00:00+08:00".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectError {
    code: String,
    /// Words the message must contain.
    #[serde(default)]
    contains: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectOutput {
    /// Folder under `<data>/buckets/` holding the export's files.
    dir: String,
    /// Files expected under `dir`, as sorted relative paths.
    files: Vec<String>,
    /// Read `dir` as a Hive-partitioned dataset (partition columns come back from the paths).
    #[serde(default)]
    hive: bool,
    /// parquet | orc | csv | json | text.
    format: String,
    #[serde(default)]
    header: bool,
    #[serde(default = "default_delim")]
    delim: String,
    /// JSON-lines file of the expected rows, relative to the case.
    rows: String,
    /// Compare in order (default: as a multiset).
    #[serde(default)]
    ordered: bool,
}

fn default_delim() -> String {
    ",".into()
}

static CLUSTER: std::sync::OnceLock<cluster_harness::Cluster> = std::sync::OnceLock::new();
/// Cluster cases run (the both-executors check needs enough of them).
static CLUSTER_CASES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `pbatch run` of the case's job over `spec` and `data`.
fn run_command(case: &Case, spec: &Path, data: &Path) -> std::process::Command {
    let mut cmd = pbatch();
    cmd.arg("run")
        .arg(spec)
        .arg(&case.job)
        .arg("--data-dir")
        .arg(data)
        .arg("--batch-time")
        .arg(&case.batch_time);
    for p in &case.params {
        cmd.arg("--param").arg(p);
    }
    if let Some(z) = &case.timezone {
        cmd.env("PBATCH_ENGINE_TIMEZONE", z);
    }
    cmd
}

fn run_case(dir: &Path, cluster: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(dir.join("case.toml")).map_err(|e| format!("case.toml: {e}"))?;
    let case: Case = toml::from_str(&text).map_err(|e| format!("case.toml: {e}"))?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    if dir.join("data").is_dir() {
        copy_dir(&dir.join("data"), &data);
    }
    let mut cmd = if cluster {
        let c = CLUSTER.get_or_init(|| cluster_harness::Cluster::start(2));
        CLUSTER_CASES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let raised = scratch.path().join("spec");
        cluster_harness::raised_spec(&dir.join("spec"), &raised);
        let mut cmd = run_command(&case, &raised, &data);
        cmd.env("PBATCH_CLUSTER_SCHEDULER", &c.scheduler);
        // every batch that reads anything has its files written by an
        // executor (the streamed result is covered by tests/it/cluster.rs)
        cmd.env("PBATCH_CLUSTER_COLLECT_MAX_BYTES", "0");
        cmd
    } else {
        run_command(&case, &dir.join("spec"), &data)
    };
    let out = cmd.output().map_err(|e| format!("running pbatch: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if let Some(want) = &case.error {
        if out.status.success() {
            return Err(format!("expected {} but the run succeeded", want.code));
        }
        let line = stderr.lines().last().unwrap_or("").to_string();
        if !line.starts_with(&format!("{}: ", want.code)) {
            return Err(format!("expected {}, got: {line}", want.code));
        }
        for w in &want.contains {
            if !line.contains(w.as_str()) {
                return Err(format!("message lacks {w:?}: {line}"));
            }
        }
        return Ok(());
    }
    if !out.status.success() {
        return Err(format!("run failed: {stderr}"));
    }
    if cluster {
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !stdout.contains("(cluster df://") {
            return Err(format!("the batch did not run on the cluster: {stdout}"));
        }
        if !stdout.contains("files written by an executor") {
            return Err(format!("an executor did not write the files: {stdout}"));
        }
        // what the scans counted on the executors is what they count here
        let local = tempfile::tempdir().map_err(|e| e.to_string())?;
        if dir.join("data").is_dir() {
            copy_dir(&dir.join("data"), local.path());
        }
        let here = run_command(&case, &dir.join("spec"), local.path())
            .output()
            .map_err(|e| format!("running pbatch: {e}"))?;
        let counted = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.starts_with("read ") || l.starts_with("skipped "))
                .map(str::to_string)
                .collect()
        };
        let (there, here) = (counted(&stdout), counted(&String::from_utf8_lossy(&here.stdout)));
        if there != here {
            return Err(format!("the cluster counted {there:?}, this process {here:?}"));
        }
    }
    if case.output.is_empty() {
        return Err("case.toml names neither error nor output".into());
    }
    for o in &case.output {
        let odir = data.join("buckets").join(&o.dir);
        if !odir.is_dir() {
            return Err(format!("output dir {} was not written", o.dir));
        }
        let mut names: Vec<String> = walkdir::WalkDir::new(&odir)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| {
                e.path()
                    .strip_prefix(&odir)
                    .ok()
                    .map(|p| p.to_string_lossy().to_string())
            })
            .collect();
        names.sort();
        // `_SUCCESS` manifests are checked, not listed among the data files
        let (manifests, names): (Vec<String>, Vec<String>) = names
            .into_iter()
            .partition(|n| n.rsplit('/').next().is_some_and(|f| f.starts_with('_')));
        check_manifests(&data.join("buckets"), &o.dir, &manifests, &names)?;
        if names != o.files {
            return Err(format!("files in {}: expected {:?}, got {names:?}", o.dir, o.files));
        }
        let files: Vec<PathBuf> = if o.hive {
            vec![odir.clone()]
        } else {
            names.iter().map(|n| odir.join(n)).collect()
        };
        let format = if o.hive {
            format!("{}-hive", o.format)
        } else {
            o.format.clone()
        };
        let got = read_rows(&format, &files, o.header, &o.delim);
        let expected_path = dir.join(&o.rows);
        if std::env::var("PBATCH_BLESS").is_ok_and(|v| v == "1") {
            let text: String = got.iter().map(|v| format!("{v}\n")).collect();
            std::fs::write(&expected_path, text).map_err(|e| e.to_string())?;
            continue;
        }
        let want: Vec<serde_json::Value> = std::fs::read_to_string(&expected_path)
            .map_err(|e| format!("{}: {e}", o.rows))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", o.rows)))
            .collect::<Result<_, _>>()?;
        let (mut g, mut w): (Vec<String>, Vec<String>) = (
            got.iter().map(|v| v.to_string()).collect(),
            want.iter().map(|v| v.to_string()).collect(),
        );
        if !o.ordered {
            g.sort();
            w.sort();
        }
        if g != w {
            return Err(format!(
                "rows of {} differ\n  expected ({}):\n    {}\n  got ({}):\n    {}",
                o.dir,
                w.len(),
                w.join("\n    "),
                g.len(),
                g.join("\n    ")
            ));
        }
    }
    Ok(())
}

/// At least this many cases: a fixtures folder that fails to be found or
/// read must not pass as an empty suite.
const MIN_CASES: usize = 15;

fn main() {
    let args = Arguments::from_args();
    let mut cases: Vec<PathBuf> = match std::fs::read_dir(root().join("fixtures")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("case.toml").is_file())
            .collect(),
        Err(e) => {
            eprintln!("fixtures/: {e}");
            std::process::exit(101);
        }
    };
    cases.sort();
    if cases.len() < MIN_CASES {
        eprintln!("expected at least {MIN_CASES} fixture cases, found {}", cases.len());
        std::process::exit(101);
    }
    let mut trials = Vec::new();
    for dir in cases {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        // every case but those about the container, which the cluster
        // variant replaces
        if !name.contains("container") {
            let d = dir.clone();
            trials.push(Trial::test(format!("cluster::{name}"), move || {
                run_case(&d, true).map_err(Failed::from)
            }));
        }
        trials.push(Trial::test(name, move || run_case(&dir, false).map_err(Failed::from)));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(c) = CLUSTER.get() {
        let tasks: Vec<usize> = (0..c.executor_logs.len()).map(|i| c.tasks(i)).collect();
        c.stop();
        let cases = CLUSTER_CASES.load(std::sync::atomic::Ordering::SeqCst);
        if cases >= 10 && tasks.contains(&0) {
            eprintln!("the cluster cases ran on one executor only: tasks per executor {tasks:?}");
            std::process::exit(101);
        }
        eprintln!("cluster cases: tasks per executor {tasks:?}");
    }
    conclusion.exit();
}

/// Every `_SUCCESS` under an output folder (and the one of the folder's
/// own export above it, if any) lists files that are there with their size
/// and CRC-32C, and at least one of the folder's data files is listed.
fn check_manifests(buckets: &Path, dir: &str, found: &[String], data: &[String]) -> Result<(), String> {
    let bucket = dir.split('/').next().unwrap_or(dir);
    let root = buckets.join(bucket);
    let mut paths: Vec<PathBuf> = found.iter().map(|m| buckets.join(dir).join(m)).collect();
    let mut up = buckets.join(dir);
    while up.starts_with(&root) {
        let m = up.join("_SUCCESS");
        if m.is_file() && !paths.contains(&m) {
            paths.push(m);
        }
        if !up.pop() {
            break;
        }
    }
    let mut listed = 0;
    for m in &paths {
        let text = std::fs::read(m).map_err(|e| format!("{}: {e}", m.display()))?;
        let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", m.display()))?;
        for f in v["exports"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["files"].as_array().into_iter().flatten())
        {
            let key = f["key"].as_str().unwrap_or_default();
            let bytes = std::fs::read(root.join(key)).map_err(|e| format!("{} lists {key}: {e}", m.display()))?;
            if f["bytes"].as_u64() != Some(bytes.len() as u64)
                || f["crc32c"].as_str() != Some(&format!("{:08x}", crc32c::crc32c(&bytes)))
            {
                return Err(format!(
                    "{} lists {key} with another size or checksum: {f}",
                    m.display()
                ));
            }
            let rel = root.join(key);
            if data.iter().any(|d| buckets.join(dir).join(d) == rel) {
                listed += 1;
            }
        }
    }
    if !data.is_empty() && listed == 0 {
        return Err(format!("no _SUCCESS lists the files of {dir} (manifests: {paths:?})"));
    }
    Ok(())
}
