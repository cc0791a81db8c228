//! Batches on a Ballista cluster (`[cluster]`). Every fixture case also runs
//! on a cluster (tests/fixtures.rs, `cluster::<case>`); these are the rest.

use crate::util::pbatch;

/// The example's spec folder with its job raised past this machine.
fn raised_example(to: &std::path::Path) {
    let spec = crate::util::root().join("examples/cdn-logs");
    for e in walkdir::WalkDir::new(&spec) {
        let e = e.expect("walk");
        let rel = e.path().strip_prefix(&spec).expect("inside");
        let dest = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
    let job = to.join("jobs/daily_traffic.json");
    let text = std::fs::read_to_string(&job).expect("job");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["container"] = serde_json::json!({"type": "16U64G", "count": 4});
    std::fs::write(&job, v.to_string()).expect("write");
}

/// A scheduler nobody runs: the batch fails with E18338 naming its address,
/// and nothing is committed.
#[test]
fn an_unreachable_scheduler_fails_the_batch_with_e18338() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = dir.path().join("spec");
    raised_example(&spec);
    let data = dir.path().join("data");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let made = pbatch()
        .args(["example", "cdn-logs", "--rows", "100", "--data-dir"])
        .arg(&data)
        .output()
        .expect("example");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let out = pbatch()
        .arg("run")
        .arg(&spec)
        .arg("daily_traffic")
        .arg("--data-dir")
        .arg(&data)
        .env("PBATCH_CLUSTER_SCHEDULER", format!("df://127.0.0.1:{port}"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("E18338: "), "{stderr}");
    assert!(last.contains(&format!("df://127.0.0.1:{port}")), "{last}");
    assert!(
        !data.join("buckets/cdn-reports").exists()
            || walkdir::WalkDir::new(data.join("buckets/cdn-reports"))
                .into_iter()
                .filter_map(|e| e.ok())
                .all(|e| !e.file_type().is_file()),
        "something was committed"
    );
}

/// `[cluster] scheduler` that does not parse is refused when the engine
/// starts, naming the key and the value.
#[test]
fn a_bad_scheduler_address_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = pbatch()
        .arg("run")
        .arg(crate::util::root().join("examples/cdn-logs"))
        .arg("daily_traffic")
        .arg("--data-dir")
        .arg(dir.path())
        .env("PBATCH_CLUSTER_SCHEDULER", "df://nohost")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cluster.scheduler") && stderr.contains("df://nohost"),
        "{stderr}"
    );
}

/// An executor whose scheduler is absent refuses to start, naming it.
#[test]
fn an_executor_without_its_scheduler_refuses_to_start() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("tmp");
    let out = pbatch()
        .args(["executor", "--scheduler"])
        .arg(format!("df://127.0.0.1:{port}"))
        .args(["--listen", "127.0.0.1:0", "--work-dir"])
        .arg(dir.path())
        .output()
        .expect("executor");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("df://127.0.0.1:{port}")) && stderr.contains("cannot be reached"),
        "{stderr}"
    );
}
