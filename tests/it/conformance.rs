//! The sink conformance suite (as object_store's `integration.rs`): one set
//! of checks that every sink runs against its real backend on loopback.
//!
//! - [`round_trip`]: N rows in, staged, committed, read back exactly by the
//!   backend's own reader (pyarrow / DuckDB for files, the receiver's log,
//!   InfluxDB `/query`, OpenSearch `_search`, `psql` / `mariadb`);
//! - [`failure_before_commit`]: a batch that fails after staging (a stop
//!   taken at the commit's check) leaves nothing visible and nothing staged;
//! - [`dropped_staged`]: a `Staged` dropped uncommitted removes its files;
//! - [`dropped_sink`]: a sink dropped before `finish` (a batch that failed
//!   while writing) leaves no staging once its writer has stopped.

use crate::s3::S3Server;
use crate::servers::{Maria, Postgres, Receiver, start_influx, start_osmem};
use crate::util::read_rows;
use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use pbatch::model::{Error, ExportSpec, Result};
use pbatch_sink::{CommitContext, ServiceUrls, SinkContext, Staged, Target, Targets};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per suite run: several record batches, several service requests.
const N: i64 = 1234;
/// Rows per record batch sent to a sink.
const CHUNK: i64 = 500;

/// A sink's backend: where an export to `dest` goes and how to read it back.
#[async_trait::async_trait]
trait Backend: Send + Sync {
    /// The export spec writing to `dest` (a fresh prefix, index or table).
    fn spec(&self, dest: &str) -> String;
    /// Buckets for file exports (a service backend has none).
    fn targets(&self) -> &dyn Targets {
        no_buckets()
    }
    /// Service URLs for service exports.
    fn urls(&self) -> ServiceUrls {
        urls_with(|_| {})
    }
    /// The rows visible at `dest`, as `(id, name)` sorted by id.
    async fn read(&self, dest: &str) -> Vec<(i64, String)>;
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
    ]))
}

fn name_of(i: i64) -> String {
    // quotes, a tab and non-ASCII text on some rows
    match i % 4 {
        0 => format!("n{i}"),
        1 => format!("it's {i}"),
        2 => format!("tab\t{i}"),
        _ => format!("名{i}"),
    }
}

fn expected() -> Vec<(i64, String)> {
    (0..N).map(|i| (i, name_of(i))).collect()
}

fn batches() -> Vec<RecordBatch> {
    (0..N)
        .step_by(CHUNK as usize)
        .map(|start| {
            let ids: Vec<i64> = (start..(start + CHUNK).min(N)).collect();
            let names: Vec<String> = ids.iter().map(|i| name_of(*i)).collect();
            RecordBatch::try_new(
                schema(),
                vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names))],
            )
            .expect("batch")
        })
        .collect()
}

fn batch_time() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339("2026-03-01T09:00:00+08:00").expect("time")
}

/// Opens the export to `dest` and writes every row into it.
async fn open_and_write(
    b: &dyn Backend,
    dest: &str,
    staging: &Path,
    rows: bool,
) -> pbatch_sink::Result<Box<dyn pbatch_sink::Sink>> {
    let spec = ExportSpec::from_json(b.spec(dest).as_bytes(), None)?;
    let expander = pbatch::magic::Expander::new(batch_time());
    let urls = b.urls();
    let cx = SinkContext {
        job: "j",
        manual: false,
        expander: &expander,
        schema: schema(),
        staging,
        token: "t1",
        targets: b.targets(),
        services: &urls,
    };
    let mut sink = pbatch_sink::open("out", &spec, &cx)?;
    for batch in batches().into_iter().filter(|_| rows) {
        sink.write(batch).await?;
    }
    Ok(sink)
}

/// Opens the export to `dest`, writes every row and returns what it staged.
async fn stage(b: &dyn Backend, dest: &str, staging: &Path) -> pbatch_sink::Result<Staged> {
    open_and_write(b, dest, staging, true).await?.finish().await
}

async fn commit(staged: Staged, staging: &Path, fail: bool) -> pbatch_sink::Result<Vec<pbatch_sink::CommitReport>> {
    let http = || -> pbatch::model::Result<reqwest::Client> { Ok(reqwest::Client::new()) };
    let check = move || {
        if fail {
            Err(Error::new(pbatch::model::ErrorCode::BatchRerunCancelError, "stopped"))
        } else {
            Ok(())
        }
    };
    pbatch_sink::commit(
        vec![staged],
        CommitContext {
            http: &http,
            now: std::time::SystemTime::now(),
            check: &check,
            staging,
            batch: &pbatch_sink::BatchInfo {
                job: "j".into(),
                run_id: 1,
                batch_time: batch_time().to_rfc3339(),
                inputs: Vec::new(),
                summary: String::new(),
                recorded: false,
                started: None,
            },
        },
    )
    .await
}

/// Files left under a folder.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

async fn round_trip(b: &dyn Backend, dest: &str) {
    let staging = tempfile::tempdir().expect("tmp");
    let staged = stage(b, dest, staging.path()).await.expect("stage");
    assert_eq!(staged.rows(), N as u64, "rows staged");
    assert!(b.read(dest).await.is_empty(), "{dest}: visible before the commit");
    let reports = commit(staged, staging.path(), false).await.expect("commit");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].rows, N as u64, "rows committed");
    assert_eq!(b.read(dest).await, expected(), "{dest}: rows read back");
    // the journal stays until the caller has recorded the batch
    let journal = pbatch_sink::OpenCommit::read(staging.path()).expect("journal");
    let kept = files_under(staging.path());
    match journal {
        Some(j) => assert_eq!(j.batch().run_id, 1),
        None => assert_eq!(kept, Vec::<PathBuf>::new(), "services leave no journal and no staging"),
    }
    pbatch_sink::done(pbatch_sink::StagingDir::new(staging.path())).await;
    assert_eq!(files_under(staging.path()), Vec::<PathBuf>::new(), "staging left");
}

async fn failure_before_commit(b: &dyn Backend, dest: &str) {
    let staging = tempfile::tempdir().expect("tmp");
    let staged = stage(b, dest, staging.path()).await.expect("stage");
    assert!(!files_under(staging.path()).is_empty(), "nothing was staged");
    let e = commit(staged, staging.path(), true)
        .await
        .expect_err("a failed check must fail the commit");
    assert_eq!(e.message(), "stopped");
    assert!(b.read(dest).await.is_empty(), "{dest}: visible after a failed batch");
    assert_eq!(files_under(staging.path()), Vec::<PathBuf>::new(), "staging left");
}

async fn dropped_staged(b: &dyn Backend, dest: &str) {
    let staging = tempfile::tempdir().expect("tmp");
    let staged = stage(b, dest, staging.path()).await.expect("stage");
    let dir = staged.staging_dir().to_path_buf();
    assert!(!files_under(&dir).is_empty(), "nothing was staged in {}", dir.display());
    drop(staged);
    assert!(!dir.exists(), "{} outlived its Staged", dir.display());
    assert!(b.read(dest).await.is_empty(), "{dest}: visible though never committed");
}

async fn dropped_sink(b: &dyn Backend, dest: &str, rows: bool) {
    let staging = tempfile::tempdir().expect("tmp");
    let sink = open_and_write(b, dest, staging.path(), rows).await.expect("write");
    // dropped before `finish`: its writer may still be writing, and the
    // folder goes when the writer has stopped
    drop(sink);
    let dir = staging.path().join("out");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while dir.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!dir.exists(), "an abandoned writer left {}", dir.display());
    // and nothing comes back: a writer that outlived its folder would make it again
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !dir.exists(),
        "an abandoned writer wrote {} after it was removed",
        dir.display()
    );
    assert!(b.read(dest).await.is_empty(), "{dest}: visible though never committed");
}

/// Runs the whole suite, each check on its own destination.
async fn suite(b: &dyn Backend) {
    round_trip(b, "rt").await;
    failure_before_commit(b, "fail").await;
    dropped_staged(b, "drop").await;
    dropped_sink(b, "gone", true).await;
    // no rows: a finishing writer would still create its first (empty) file
    dropped_sink(b, "gone0", false).await;
}

fn parse_rows(rows: Vec<serde_json::Value>) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().expect("id"),
                r["name"].as_str().expect("name").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Files in a folder of buckets, read back with pyarrow (parquet) or DuckDB (json).
struct Files {
    /// What `bucket` maps to: a local folder or an S3 store.
    targets: Box<dyn Targets>,
    /// Where the bucket's files are on disk (the folder, or s3s-fs's root).
    disk: PathBuf,
    format: &'static str,
}

#[async_trait::async_trait]
impl Backend for Files {
    fn spec(&self, dest: &str) -> String {
        format!(
            r#"{{"type":"kodo","spec":{{"bucket":"bkt","keyPrefix":"{dest}/$(date)/","format":"{}","fileCount":2}}}}"#,
            self.format
        )
    }
    fn targets(&self) -> &dyn Targets {
        self.targets.as_ref()
    }
    async fn read(&self, dest: &str) -> Vec<(i64, String)> {
        let (manifests, files): (Vec<PathBuf>, Vec<PathBuf>) = files_under(&self.disk.join("bkt").join(dest))
            .into_iter()
            .partition(|p| p.file_name().is_some_and(|n| n == pbatch_sink::MANIFEST_FILE));
        assert!(
            files.is_empty() || manifests.len() == 1,
            "{dest}: committed files come with one _SUCCESS: {manifests:?}"
        );
        if files.is_empty() {
            return Vec::new();
        }
        parse_rows(read_rows(self.format, &files, false, ","))
    }
}

struct LocalBuckets(PathBuf);

impl Targets for LocalBuckets {
    fn bucket(&self, bucket: &str) -> Result<Target> {
        Ok(Target::Local(self.0.join(bucket)))
    }
    fn namenode(&self, field: &str, url: &str) -> Result<Target> {
        Err(Error::internal(format!("{field}: no NameNode here ({url})")))
    }
}

struct S3Buckets(String);

impl Targets for S3Buckets {
    fn bucket(&self, bucket: &str) -> Result<Target> {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.0)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .with_access_key_id(crate::s3::AK)
            .with_secret_access_key(crate::s3::SK)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        Ok(Target::Store {
            store: Arc::new(store),
            label: format!("bucket {bucket:?} at {}", self.0),
            place: pbatch_sink::Place::Bucket {
                bucket: bucket.to_string(),
            },
        })
    }
    fn namenode(&self, field: &str, url: &str) -> Result<Target> {
        Err(Error::internal(format!("{field}: no NameNode here ({url})")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_local_files() {
    let root = tempfile::tempdir().expect("tmp");
    suite(&Files {
        targets: Box::new(LocalBuckets(root.path().to_path_buf())),
        disk: root.path().to_path_buf(),
        format: "parquet",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_s3_files() {
    let s3 = S3Server::start();
    s3.bucket("bkt");
    suite(&Files {
        targets: Box::new(S3Buckets(s3.endpoint.clone())),
        disk: s3.root.path().to_path_buf(),
        format: "json",
    })
    .await;
}

/// Service URLs, 100 records per request, as `set` leaves them.
fn urls_with(set: impl FnOnce(&mut ServiceUrls)) -> ServiceUrls {
    let mut u = ServiceUrls {
        batch_records: 100,
        ..ServiceUrls::default()
    };
    set(&mut u);
    u
}

/// A service backend needs no buckets.
fn no_buckets() -> &'static dyn Targets {
    static NONE: std::sync::OnceLock<LocalBuckets> = std::sync::OnceLock::new();
    NONE.get_or_init(|| LocalBuckets(PathBuf::from("/nonexistent")))
}

struct Http(Receiver);

#[async_trait::async_trait]
impl Backend for Http {
    fn spec(&self, dest: &str) -> String {
        format!(
            r#"{{"type":"http","spec":{{"host":"{}","uri":"/{dest}","format":"json"}}}}"#,
            self.0.url
        )
    }
    async fn read(&self, dest: &str) -> Vec<(i64, String)> {
        let path = format!("/{dest}");
        let rows = self
            .0
            .got()
            .into_iter()
            .filter(|g| g.path == path)
            .flat_map(|g| {
                g.body
                    .lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
                    .collect::<Vec<_>>()
            })
            .collect();
        parse_rows(rows)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_http() {
    suite(&Http(Receiver::start(0, 200))).await;
}

struct Tsdb(String);

#[async_trait::async_trait]
impl Backend for Tsdb {
    fn spec(&self, dest: &str) -> String {
        // the id as a tag: points of one batch share the batch time
        format!(
            r##"{{"type":"tsdb","spec":{{"destRepoName":"conf","series":"{dest}","tags":{{"id":"#id"}},"fields":{{"name":"#name"}}}}}}"##
        )
    }
    fn urls(&self) -> ServiceUrls {
        urls_with(|u| u.tsdb = Some(self.0.clone()))
    }
    async fn read(&self, dest: &str) -> Vec<(i64, String)> {
        let c = reqwest::Client::new();
        c.post(format!("{}/query", self.0))
            .query(&[("q", "CREATE DATABASE conf")])
            .send()
            .await
            .expect("create db");
        let v: serde_json::Value = c
            .get(format!("{}/query", self.0))
            .query(&[
                ("db", "conf"),
                ("q", &format!("SELECT \"id\", \"name\" FROM \"{dest}\"")),
            ])
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("json");
        let Some(values) = v["results"][0]["series"][0]["values"].as_array() else {
            return Vec::new();
        };
        let mut out: Vec<(i64, String)> = values
            .iter()
            .map(|r| {
                (
                    r[1].as_str().and_then(|s| s.parse().ok()).expect("id tag"),
                    r[2].as_str().expect("name").to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_tsdb() {
    let (_influx, url) = start_influx().await;
    suite(&Tsdb(url)).await;
}

struct Logdb(String);

#[async_trait::async_trait]
impl Backend for Logdb {
    fn spec(&self, dest: &str) -> String {
        format!(r##"{{"type":"logdb","spec":{{"destRepoName":"{dest}","doc":{{"id":"#id","name":"#name"}}}}}}"##)
    }
    fn urls(&self) -> ServiceUrls {
        urls_with(|u| u.logdb = Some(self.0.clone()))
    }
    async fn read(&self, dest: &str) -> Vec<(i64, String)> {
        let c = reqwest::Client::new();
        let r = c
            .post(format!("{}/{dest}/_search", self.0))
            .json(&serde_json::json!({"size": 10000, "query": {"match_all": {}}}))
            .send()
            .await
            .expect("search");
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Vec::new();
        }
        let v: serde_json::Value = r.json().await.expect("json");
        let hits = v["hits"]["hits"].as_array().cloned().unwrap_or_default();
        parse_rows(hits.into_iter().map(|h| h["_source"].clone()).collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_logdb() {
    let (_os, url) = start_osmem().await;
    suite(&Logdb(url)).await;
}

/// A report table read back with the database's own client.
struct Report {
    url: String,
    query: Box<dyn Fn(&str) -> String + Send + Sync>,
}

#[async_trait::async_trait]
impl Backend for Report {
    fn spec(&self, dest: &str) -> String {
        format!(
            r##"{{"type":"report","spec":{{"dbName":"reports","tableName":"{dest}","columns":{{"id":"#id","name":"#name"}}}}}}"##
        )
    }
    fn urls(&self) -> ServiceUrls {
        urls_with(|u| u.report = Some(self.url.clone()))
    }
    async fn read(&self, dest: &str) -> Vec<(i64, String)> {
        // `id|hex(name)`: no client escaping to undo
        let text = (self.query)(dest);
        let mut out: Vec<(i64, String)> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (id, hex) = l.split_once('|').expect("id|hex");
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                    .collect();
                (id.parse().expect("id"), String::from_utf8(bytes).expect("utf-8"))
            })
            .collect();
        out.sort();
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_report_postgresql() {
    let pg = Arc::new(Postgres::start());
    let q = Arc::clone(&pg);
    suite(&Report {
        url: pg.url(),
        query: Box::new(move |t| {
            let exists = q.psql("reports", &format!("SELECT to_regclass('public.\"{t}\"') IS NOT NULL"));
            if exists != "t" {
                return String::new();
            }
            q.psql(
                "reports",
                &format!("SELECT id || '|' || encode(convert_to(name, 'UTF8'), 'hex') FROM \"{t}\""),
            )
        }),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_report_mariadb() {
    let my = Arc::new(Maria::start());
    let q = Arc::clone(&my);
    suite(&Report {
        url: my.url(),
        query: Box::new(move |t| {
            let exists = q.sql(&format!(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'reports' AND table_name = '{t}'"
            ));
            if exists.trim() != "1" {
                return String::new();
            }
            q.sql(&format!("SELECT CONCAT(id, '|', HEX(name)) FROM reports.`{t}`"))
        }),
    })
    .await;
}
