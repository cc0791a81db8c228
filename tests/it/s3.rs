//! kodo over S3: a real S3 server (s3s-fs, SigV4 checked) started in-process
//! on loopback by this harness, with `[kodo] endpoint` pointing at it. Its
//! buckets are folders, so the test lays out inputs and reads outputs there
//! and pyarrow checks the parquet the engine uploaded.

use crate::util::read_rows;
use pbatch::model::{DatasourceSpec, ExportSpec, JobSpec};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub(crate) const AK: &str = "AK_S3_TEST";
pub(crate) const SK: &str = "SK_S3_TEST";

/// An S3 server on `127.0.0.1:<port>` over a temporary folder; stops when dropped.
pub struct S3Server {
    pub endpoint: String,
    pub root: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
    outage: Arc<Outage>,
}

/// A simulated stop of the store: once `after_puts` object PUTs have
/// succeeded, every request has its connection dropped until `up` is set.
#[derive(Default)]
struct Outage {
    after_puts: AtomicUsize,
    puts: AtomicUsize,
    up: AtomicBool,
}

impl Outage {
    /// Whether `req` is refused; counts the PUTs let through.
    fn refuses(&self, req: &hyper::Request<hyper::body::Incoming>) -> bool {
        let limit = self.after_puts.load(Ordering::SeqCst);
        if limit == 0 || self.up.load(Ordering::SeqCst) {
            return false;
        }
        if self.puts.load(Ordering::SeqCst) >= limit {
            return true;
        }
        if req.method() == hyper::Method::PUT {
            self.puts.fetch_add(1, Ordering::SeqCst);
        }
        false
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background(); // may be dropped inside a test's runtime
        }
    }
}

impl S3Server {
    pub fn start() -> Self {
        let root = tempfile::tempdir().expect("tmp");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs");
        let mut b = s3s::service::S3ServiceBuilder::new(fs);
        b.set_auth(s3s::auth::SimpleAuth::from_single(AK, SK));
        let service = b.build();
        let outage: Arc<Outage> = Arc::default();
        let gate = Arc::clone(&outage);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                let (service, gate) = (service.clone(), Arc::clone(&gate));
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let refused = gate.refuses(&req);
                    let answer = (!refused).then(|| hyper::service::Service::call(&service, req));
                    async move {
                        match answer {
                            Some(a) => a.await,
                            // an error from the service drops the connection
                            None => Err(s3s::HttpError::new("store stopped".into())),
                        }
                    }
                });
                conns.spawn(async move {
                    let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                    let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(sock), svc).await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Self {
            endpoint: format!("http://{addr}"),
            root,
            runtime: Some(runtime),
            outage,
        }
    }

    /// Stops answering once `puts` more object PUTs have succeeded.
    pub fn stop_after_puts(&self, puts: usize) {
        self.outage.up.store(false, Ordering::SeqCst);
        self.outage.puts.store(0, Ordering::SeqCst);
        self.outage.after_puts.store(puts, Ordering::SeqCst);
    }

    /// Stops answering at once (every connection is dropped) until `restart`.
    pub fn stop(&self) {
        self.outage.up.store(false, Ordering::SeqCst);
        self.outage.after_puts.store(1, Ordering::SeqCst);
        self.outage.puts.store(1, Ordering::SeqCst);
    }

    /// Answers again.
    pub fn restart(&self) {
        self.outage.up.store(true, Ordering::SeqCst);
    }

    pub fn bucket(&self, name: &str) -> PathBuf {
        let p = self.root.path().join(name);
        std::fs::create_dir_all(&p).expect("bucket");
        p
    }

    pub fn config(&self, secret: &str) -> pbatch::Config {
        let mut c = pbatch::Config::default();
        c.set("engine.timezone", "Asia/Shanghai").expect("tz");
        c.set("kodo.endpoint", &self.endpoint).expect("endpoint");
        c.set("kodo.access_key", AK).expect("ak");
        c.set("kodo.secret_key", secret).expect("sk");
        c
    }
}

fn new_engine(config: pbatch::Config) -> (pbatch::Engine, tempfile::TempDir) {
    crate::util::engine_in_tmp(config)
}

fn define(engine: &pbatch::Engine, bucket: &str, out_bucket: &str) {
    let ds = DatasourceSpec::from_json(
        format!(
            r#"{{"region":"nb","type":"kodo","spec":{{"bucket":"{bucket}","keyPrefixes":["ev/a-","ev/b-"],"fileType":"json"}},
                "schema":[{{"key":"id","valtype":"long"}},{{"key":"v","valtype":"long"}}],"noVerifySchema":true}}"#
        )
        .as_bytes(),
    )
    .expect("ds");
    engine.create_datasource("ev", &ds).expect("create ds");
    let job = JobSpec::from_json(
        br#"{"srcs":[{"name":"ev","type":"datasource","tableName":"ev","fileFilter":"$(date)"}],
             "computation":{"type":"sql","code":"SELECT id % 3 AS g, count(*) AS n, sum(v) AS s FROM ev GROUP BY id % 3"},
             "scheduler":{"type":"crontab","spec":{"crontab":"0 0 1 * * *"}}}"#,
    )
    .expect("job");
    engine.create_job("daily", &job).expect("create job");
    let e = ExportSpec::from_json(
        format!(
            r#"{{"type":"kodo","spec":{{"bucket":"{out_bucket}","keyPrefix":"daily/$(date)/","format":"parquet","fileCount":2}}}}"#
        )
        .as_bytes(),
        None,
    )
    .expect("export");
    engine.create_export("daily", "out", &e).expect("create export");
}

/// The file names in a folder, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("output folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

/// Ten one-row files for 2026-03-01 in `logs-bkt`.
fn ten_inputs(s3: &S3Server) {
    let input = s3.bucket("logs-bkt");
    for i in 0..10 {
        let p = input.join(format!("ev/a-2026-03-01/part-{i}.json"));
        std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
        std::fs::write(&p, format!("{{\"id\":{i},\"v\":1}}\n")).expect("write");
    }
}

fn batch_time() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339("2026-03-01T01:00:00+08:00").expect("time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kodo_over_s3_lists_past_a_page_and_uploads_exports() {
    let s3 = S3Server::start();
    let input = s3.bucket("logs-bkt");
    // 1,200 matching keys under two prefixes (more than one 1,000-key page),
    // plus keys the fileFilter or the prefixes leave out
    let mut expected: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
    for i in 0..1200i64 {
        let side = if i % 2 == 0 { "a" } else { "b" };
        let p = input.join(format!("ev/{side}-2026-03-01/part-{i:04}.json"));
        std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
        std::fs::write(&p, format!("{{\"id\":{i},\"v\":{}}}\n", i * 10)).expect("write");
        let e = expected.entry(i % 3).or_default();
        e.0 += 1;
        e.1 += i * 10;
    }
    for k in ["ev/a-2026-03-02/x.json", "ev/c-2026-03-01/x.json"] {
        let p = input.join(k);
        std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
        std::fs::write(&p, "{\"id\":5,\"v\":1000000}\n").expect("write");
    }
    let (engine, _data) = new_engine(s3.config(SK));
    define(&engine, "logs-bkt", "out-bkt");
    s3.bucket("out-bkt");
    for _ in 0..2 {
        let r = engine.run_once("daily", &[], batch_time()).await.expect("run");
        assert_eq!(r.files_read, 1200);
        assert_eq!(r.rows_read, 1200);
    }
    let out = s3.root.path().join("out-bkt/daily/2026-03-01");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("output folder")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().to_string())
        .collect();
    assert_eq!(
        names,
        ["_SUCCESS", "part-00000.parquet", "part-00001.parquet"],
        "overwrite replaced the first run's files"
    );
    // the manifest, uploaded last, names both files with their checksums
    // and the 1200 input files with their sizes
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).expect("_SUCCESS")).expect("manifest json");
    let listed = manifest["exports"][0]["files"].as_array().expect("files");
    assert_eq!(listed.len(), 2, "{manifest}");
    for (f, path) in listed.iter().zip(&files[1..]) {
        let bytes = std::fs::read(path).expect("part");
        assert_eq!(
            f["key"],
            format!("daily/2026-03-01/{}", path.file_name().expect("name").to_string_lossy())
        );
        assert_eq!(f["bytes"], bytes.len() as u64);
        assert_eq!(f["crc32c"], format!("{:08x}", crc32c::crc32c(&bytes)));
    }
    assert_eq!(
        listed.iter().map(|f| f["rows"].as_u64().unwrap_or(0)).sum::<u64>(),
        read_rows("parquet", &files[1..], false, ",").len() as u64
    );
    assert_eq!(manifest["inputs"].as_array().map(Vec::len), Some(1200));
    assert_eq!(manifest["job"], "daily");
    let files = files[1..].to_vec();
    let mut got: Vec<(i64, (i64, i64))> = read_rows("parquet", &files, false, ",")
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_i64().unwrap_or_else(|| panic!("{k} in {r}"));
            (n("g"), (n("n"), n("s")))
        })
        .collect();
    got.sort();
    assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_errors_name_the_bucket_and_endpoint() {
    let s3 = S3Server::start();
    s3.bucket("logs-bkt");
    std::fs::create_dir_all(s3.root.path().join("logs-bkt/ev/a-2026-03-01")).expect("mkdir");
    std::fs::write(
        s3.root.path().join("logs-bkt/ev/a-2026-03-01/x.json"),
        "{\"id\":1,\"v\":2}\n",
    )
    .expect("write");

    // a bucket the endpoint does not have
    let (engine, _d1) = new_engine(s3.config(SK));
    define(&engine, "nope-bkt", "out-bkt");
    let e = engine
        .run_once("daily", &[], batch_time())
        .await
        .expect_err("missing bucket");
    assert_eq!(e.code().code(), "E18619", "{e}");
    assert!(
        e.message().contains("nope-bkt") && e.message().contains(&s3.endpoint),
        "{e}"
    );

    // a wrong secret key
    let (engine, _d2) = new_engine(s3.config("WRONG"));
    define(&engine, "logs-bkt", "out-bkt");
    let e = engine.run_once("daily", &[], batch_time()).await.expect_err("bad key");
    assert!(
        e.message().contains("kodo.secret_key") && e.message().contains(&s3.endpoint),
        "{e}"
    );

    // an endpoint nobody listens on
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut c = s3.config(SK);
    let dead = format!("http://127.0.0.1:{port}");
    c.set("kodo.endpoint", &dead).expect("endpoint");
    let (engine, _d3) = new_engine(c);
    define(&engine, "logs-bkt", "out-bkt");
    let e = engine
        .run_once("daily", &[], batch_time())
        .await
        .expect_err("unreachable");
    assert!(
        e.message().contains(&dead) && e.message().contains("kodo.endpoint"),
        "{e}"
    );

    // an endpoint without keys is refused when the engine starts
    let mut c = pbatch::Config::default();
    c.set("kodo.endpoint", &s3.endpoint).expect("endpoint");
    let e = pbatch::Engine::builder().config(c).build().expect_err("no keys");
    assert!(e.message().contains("kodo.access_key"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_modes_and_retention_act_on_the_s3_bucket() {
    let s3 = S3Server::start();
    ten_inputs(&s3);
    let out = s3.bucket("out-bkt");
    // an old output of this export (30 days), and a file the export does not own
    let old = out.join("daily/2026-01-01/part-00000.parquet");
    std::fs::create_dir_all(old.parent().expect("dir")).expect("mkdir");
    std::fs::write(&old, b"old").expect("write");
    let f = std::fs::File::options().write(true).open(&old).expect("open");
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 86_400))
        .expect("mtime");
    std::fs::write(out.join("daily/notes.txt"), b"mine").expect("write");
    let old_manifest = out.join("daily/2026-01-01/_SUCCESS");
    std::fs::write(&old_manifest, b"{}").expect("write");
    std::fs::File::options()
        .write(true)
        .open(&old_manifest)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 86_400)))
        .expect("mtime");

    let (engine, _data) = new_engine(s3.config(SK));
    define(&engine, "logs-bkt", "out-bkt");
    let set_mode = |mode: &str, extra: &str| {
        engine.delete_export("daily", "out").expect("delete");
        let e = ExportSpec::from_json(
            format!(
                r#"{{"type":"kodo","spec":{{"bucket":"out-bkt","keyPrefix":"daily/$(date)/","format":"parquet","fileCount":2,"saveMode":"{mode}"{extra}}}}}"#
            )
            .as_bytes(),
            None,
        )
        .expect("export");
        engine.create_export("daily", "out", &e).expect("create export");
    };
    let listing = || {
        let mut v: Vec<String> = std::fs::read_dir(out.join("daily/2026-03-01"))
            .map(|rd| {
                rd.map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };

    set_mode("append", r#","retention":7"#);
    engine.run_once("daily", &[], batch_time()).await.expect("append 1");
    assert!(!old.exists(), "retention deleted the 30-day-old output from the bucket");
    assert!(!old_manifest.exists(), "and the manifest of its folder");
    assert!(
        out.join("daily/notes.txt").exists(),
        "a key the export does not own stays"
    );
    engine.run_once("daily", &[], batch_time()).await.expect("append 2");
    let after_append = listing();
    assert_eq!(
        after_append.len(),
        5,
        "append adds files beside the old (and a _SUCCESS): {after_append:?}"
    );

    set_mode("errorIfExists", "");
    let e = engine.run_once("daily", &[], batch_time()).await.expect_err("exists");
    assert!(
        e.message().contains("daily/2026-03-01/part-") && e.message().contains(&s3.endpoint),
        "{e}"
    );
    assert_eq!(listing(), after_append, "nothing changed");

    set_mode("ignore", "");
    let r = engine.run_once("daily", &[], batch_time()).await.expect("ignore");
    assert!(r.exports[0].skipped);
    assert_eq!(listing(), after_append);

    set_mode("overwrite", "");
    engine.run_once("daily", &[], batch_time()).await.expect("overwrite");
    assert_eq!(listing(), ["_SUCCESS", "part-00000.parquet", "part-00001.parquet"]);
}

/// `[kodo.buckets.<bucket>]`: one bucket on its own endpoint while the rest
/// are local folders, and one bucket kept local while the rest are remote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_can_have_its_own_endpoint_or_stay_local() {
    let s3 = S3Server::start();
    let lines: String = (0..30).map(|i| format!("{{\"id\":{i},\"v\":{i}}}\n")).collect();

    // local by default, the output bucket remote
    let mut c = pbatch::Config::default();
    c.set("engine.timezone", "Asia/Shanghai").expect("tz");
    c.set("kodo.buckets.remote-out.endpoint", &s3.endpoint)
        .expect("endpoint");
    c.set("kodo.buckets.remote-out.access_key", AK).expect("ak");
    c.set("kodo.buckets.remote-out.secret_key", SK).expect("sk");
    let (engine, data) = new_engine(c);
    let input = data.path().join("buckets/local-in/ev");
    std::fs::create_dir_all(&input).expect("mkdir");
    std::fs::write(input.join("a-2026-03-01.json"), &lines).expect("write");
    s3.bucket("remote-out");
    define(&engine, "local-in", "remote-out");
    let r = engine.run_once("daily", &[], batch_time()).await.expect("batch");
    assert_eq!((r.rows_read, r.exports[0].keys.len()), (30, 2));
    for k in &r.exports[0].keys {
        assert!(s3.root.path().join("remote-out").join(k).is_file(), "{k} uploaded");
    }
    assert!(
        !data.path().join("buckets/remote-out").exists(),
        "nothing written locally"
    );

    // remote by default, the output bucket a local folder
    let mut c = s3.config(SK);
    c.set("kodo.buckets.local-out.local", "true").expect("local");
    let (engine, data) = new_engine(c);
    std::fs::create_dir_all(s3.bucket("remote-in").join("ev")).expect("mkdir");
    std::fs::write(s3.bucket("remote-in").join("ev/b-2026-03-01.json"), &lines).expect("write");
    define(&engine, "remote-in", "local-out");
    let r = engine.run_once("daily", &[], batch_time()).await.expect("batch");
    assert_eq!(r.rows_read, 30);
    for k in &r.exports[0].keys {
        assert!(data.path().join("buckets/local-out").join(k).is_file(), "{k} local");
    }
    assert!(!s3.root.path().join("local-out").exists());

    // an override with no keys anywhere is refused naming the field
    let mut c = pbatch::Config::default();
    c.set("kodo.buckets.lone-bkt.endpoint", &s3.endpoint).expect("endpoint");
    let e = pbatch::Engine::builder()
        .config(c)
        .data_dir(data.path())
        .build()
        .expect_err("no keys");
    assert!(e.message().contains("kodo.buckets.lone-bkt.access_key"), "{e}");
}

/// The store stops after the first of two uploads of a commit: the batch is
/// Failed naming the store, its journal stays, and once the store is back
/// one engine start finishes the commit: both files and the manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_stopped_mid_commit_is_finished_at_the_next_start() {
    let s3 = S3Server::start();
    ten_inputs(&s3);
    let out = s3.bucket("out-bkt").join("daily/2026-03-01");
    let data = tempfile::tempdir().expect("tmp");
    let spec = data.path().join("spec");
    for (path, body) in [
        (
            "datasources/ev.json",
            r#"{"region":"nb","type":"kodo","spec":{"bucket":"logs-bkt","keyPrefixes":["ev/a-"],"fileType":"json"},
                "schema":[{"key":"id","valtype":"long"},{"key":"v","valtype":"long"}],"noVerifySchema":true}"#,
        ),
        (
            "jobs/daily.json",
            r#"{"srcs":[{"name":"ev","type":"datasource","tableName":"ev","fileFilter":"$(date)"}],
                "computation":{"type":"sql","code":"SELECT id, v FROM ev"},
                "scheduler":{"type":"crontab","spec":{"crontab":"0 0 1 * * *"}}}"#,
        ),
        (
            "jobs/daily/exports/out.json",
            r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"daily/$(date)/","format":"parquet","fileCount":2}}"#,
        ),
    ] {
        let p = spec.join(path);
        std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
        std::fs::write(p, body).expect("write");
    }
    let engine_cmd = |args: &[&str]| {
        let mut c = crate::util::pbatch();
        c.args(args)
            .arg("--data-dir")
            .arg(data.path())
            .env("PBATCH_KODO_ENDPOINT", &s3.endpoint)
            .env("PBATCH_KODO_ACCESS_KEY", AK)
            .env("PBATCH_KODO_SECRET_KEY", SK);
        c
    };
    s3.stop_after_puts(1);
    let spec_arg = spec.to_string_lossy().to_string();
    let failed = engine_cmd(&[
        "run",
        &spec_arg,
        "daily",
        "--record",
        "--batch-time",
        "2026-03-01T01:00:00+08:00",
    ])
    .output()
    .expect("pbatch run");
    let e = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(e.contains("the commit is incomplete"), "{e}");
    assert!(e.contains(&s3.endpoint), "names the store: {e}");
    let staged: Vec<_> = std::fs::read_dir(data.path().join(".staging"))
        .expect("staging")
        .flatten()
        .collect();
    assert_eq!(staged.len(), 1, "the journal's staging is kept");
    assert!(staged[0].path().join("COMMIT").is_file());
    let partial = std::fs::read_dir(&out).expect("output").count();
    assert_eq!(partial, 1, "one file went up before the store stopped");

    s3.restart();
    // one engine start
    let out_cmd = engine_cmd(&["history", "daily", "--run-id", "-1"])
        .output()
        .expect("pbatch history");
    let history = String::from_utf8_lossy(&out_cmd.stdout);
    assert!(
        out_cmd.status.success(),
        "{history}{}",
        String::from_utf8_lossy(&out_cmd.stderr)
    );
    assert!(history.contains("Successful"), "{history}");
    assert!(
        history.contains("the commit was completed at engine start"),
        "{history}"
    );
    assert_eq!(names_in(&out), ["_SUCCESS", "part-00000.parquet", "part-00001.parquet"]);
    assert_eq!(
        std::fs::read_dir(data.path().join(".staging"))
            .expect("staging")
            .count(),
        0
    );
    let verify = engine_cmd(&[
        "verify",
        &spec_arg,
        "daily",
        "--batch-time",
        "2026-03-01T01:00:00+08:00",
    ])
    .output()
    .expect("pbatch verify");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}");
    assert!(
        report.contains("ok   out: 2 files, 10 rows match daily/2026-03-01/_SUCCESS"),
        "{report}"
    );
    // the library's check agrees
    let engine = pbatch::Engine::builder()
        .config(s3.config(SK))
        .data_dir(data.path())
        .build()
        .expect("engine");
    pbatch::spec::load_dir(&engine, &spec).expect("load");
    let checks = engine.verify("daily", &[], Some(batch_time())).await.expect("verify");
    assert_eq!(checks.len(), 1);
    assert!(checks[0].ok(), "{:?}", checks[0].problems);
    assert_eq!(checks[0].files, 2);
}

/// A commit the store broke off is finished by a rerun of its batch, and by
/// the job's next batch, once the store is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_off_commit_is_finished_by_a_rerun_or_the_next_batch() {
    let s3 = S3Server::start();
    ten_inputs(&s3);
    let out = s3.bucket("out-bkt").join("daily/2026-03-01");
    let data = tempfile::tempdir().expect("tmp");
    let engine = pbatch::Engine::builder()
        .config(s3.config(SK))
        .data_dir(data.path())
        .durable()
        .build()
        .expect("engine");
    define(&engine, "logs-bkt", "out-bkt");
    let listing = || names_in(&out);
    let staged = || std::fs::read_dir(data.path().join(".staging")).map_or(0, |rd| rd.count());
    let run = |id: i64| {
        let q = pbatch::model::HistoryQuery {
            run_id: Some(id),
            ..Default::default()
        };
        engine.history("daily", &q).expect("history").history.remove(0)
    };

    // a rerun
    s3.stop_after_puts(1);
    engine
        .run_once("daily", &[], batch_time())
        .await
        .expect_err("store stopped");
    assert_eq!(run(1).status, pbatch::model::RunStatus::Failed);
    assert_eq!(staged(), 1);
    s3.restart();
    engine.rerun_batch("daily", 1).await.expect("rerun");
    let h = engine
        .wait_batch("daily", 1, std::time::Duration::from_secs(60))
        .await
        .expect("wait");
    assert_eq!(h.status, pbatch::model::RunStatus::Successful, "{h:?}");
    assert_eq!(listing(), ["_SUCCESS", "part-00000.parquet", "part-00001.parquet"]);
    // the journal goes right after the run is recorded Successful
    for _ in 0..100 {
        if staged() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(staged(), 0);

    // the next batch
    s3.stop_after_puts(1);
    engine
        .run_once("daily", &[], batch_time())
        .await
        .expect_err("store stopped");
    assert_eq!(run(2).status, pbatch::model::RunStatus::Failed);
    s3.restart();
    let next = batch_time() + chrono::Duration::hours(1);
    engine.run_once("daily", &[], next).await.expect("next batch");
    let r2 = run(2);
    assert_eq!(r2.status, pbatch::model::RunStatus::Successful, "{}", r2.message);
    assert!(
        r2.message.contains("completed before the job's next batch"),
        "{}",
        r2.message
    );
    assert_eq!(staged(), 0);
}
