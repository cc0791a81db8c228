//! Every export behind one trait: record batches in, a [`Staged`] value out,
//! and one [`commit`] for all the `Staged` values of a batch.

use crate::commit::{CommitReport, plan_export, precheck_all};
use crate::error::{Error, Result};
use crate::export::{RESULT_EXPORT, ServiceUrls, Targets, file_export, result_export, service_export};
use crate::journal::{JOURNAL_FILE, Journal, apply};
use crate::service::{StagedService, send, spawn_service_writer};
use crate::{StagedExport, Target, WriterHandle, WriterState, finish_writer, spawn_file_writer};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use futures::future::BoxFuture;
use pbatch_magic::Expander;
use pbatch_model::ExportSpec;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::Instrument;

/// One export of a running batch. [`write`](Sink::write) takes the batch's
/// record batches in order; [`finish`](Sink::finish) returns what was staged.
/// Nothing a sink does is visible before [`commit`].
///
/// The trait is sealed: only [`open`] and [`open_result`] make sinks, so
/// every `Staged` value comes from a writer this crate knows how to commit.
#[async_trait]
pub trait Sink: Send + sealed::Sealed {
    /// The export's name.
    fn name(&self) -> &str;

    /// Takes one record batch. An error means the sink stopped; its cause
    /// comes out of [`finish`](Sink::finish).
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;

    /// Ends the input and returns the staged output. On error nothing of
    /// this sink is left in staging.
    async fn finish(self: Box<Self>) -> Result<Staged>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ChannelSink {}
}

/// A folder of staged output, removed when dropped. Each [`Staged`] value
/// owns one; a batch owns the folder holding them all.
#[derive(Debug)]
pub struct StagingDir {
    /// `None` once removed or handed over.
    path: Option<PathBuf>,
    /// A batch's folder holds `LOCK` locked while its batch lives: recovery
    /// takes only folders whose lock it can take (their owner is gone).
    _lock: Option<std::fs::File>,
}

/// The lock file of a batch's staging folder.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Whether a batch's staging folder still has a live owner.
#[derive(Debug)]
pub enum Claim {
    /// Its owner is gone: the lock is ours while this value lives.
    Free(std::fs::File),
    /// Another batch (in this process or another) holds it.
    Held,
    /// No lock file (a folder from before locks): decide by its process id.
    Unlocked,
}

impl StagingDir {
    /// Takes charge of `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            _lock: None,
        }
    }

    /// A batch's staging folder, created and locked for as long as the
    /// value lives (a process that dies lets go of it).
    pub fn locked(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        std::fs::create_dir_all(&path).map_err(|e| crate::commit::fs_err("creating", &path, e))?;
        let lock_path = path.join(LOCK_FILE);
        let file = std::fs::File::create(&lock_path).map_err(|e| crate::commit::fs_err("creating", &lock_path, e))?;
        file.try_lock()
            .map_err(|e| Error::internal(format!("locking {}: {e}", lock_path.display())))?;
        Ok(Self {
            path: Some(path),
            _lock: Some(file),
        })
    }

    /// Whether the batch folder `path` still has a live owner.
    pub fn claim(path: &Path) -> Claim {
        let Ok(file) = std::fs::OpenOptions::new().write(true).open(path.join(LOCK_FILE)) else {
            return Claim::Unlocked;
        };
        match file.try_lock() {
            Ok(()) => Claim::Free(file),
            Err(_) => Claim::Held,
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Removes the folder off the async workers (the path a batch takes
    /// when all went well; a drop removes it in place).
    pub async fn remove(mut self) {
        if let Some(path) = self.path.take() {
            let _ = tokio::task::spawn_blocking(move || remove_tree(&path)).await;
        }
    }

    /// Leaves the folder to someone else (a writer still writing into it,
    /// a commit journal).
    pub(crate) fn disarm(&mut self) {
        self.path = None;
    }
}

fn remove_tree(path: &Path) {
    let journal_here = path.join(JOURNAL_FILE).exists();
    let journal_above = path.parent().is_some_and(|p| p.join(JOURNAL_FILE).exists());
    if journal_here || journal_above {
        // past its commit point: the journal finishes it (see crate::done)
        tracing::warn!(dir = %path.display(), "staging holds an unfinished commit; kept for recovery");
        return;
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %path.display(), error = %e, "could not remove staging"),
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        // the failure path: a drop cannot await
        if let Some(path) = self.path.take() {
            remove_tree(&path);
        }
    }
}

/// What one export staged: files waiting to be moved into place, or
/// records waiting to be sent. Dropped without being committed, it removes
/// its staged files.
#[derive(Debug)]
pub struct Staged {
    pub(crate) kind: StagedKind,
    pub(crate) dir: StagingDir,
}

#[derive(Debug)]
pub(crate) enum StagedKind {
    Files(StagedExport),
    Service(StagedService),
}

impl Staged {
    /// The export's name.
    pub fn name(&self) -> &str {
        match &self.kind {
            StagedKind::Files(f) => &f.export.name,
            StagedKind::Service(s) => &s.export.name,
        }
    }

    /// Rows staged.
    pub fn rows(&self) -> u64 {
        match &self.kind {
            StagedKind::Files(f) => f.files.iter().map(|f| f.rows).sum(),
            StagedKind::Service(s) => s.records,
        }
    }

    /// Where the staged output is.
    pub fn staging_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// What a batch's sinks share.
pub struct SinkContext<'a> {
    /// The job.
    pub job: &'a str,
    /// A manual job: its `keyPrefix` names the file.
    pub manual: bool,
    /// The batch's variables.
    pub expander: &'a Expander,
    /// The result's schema.
    pub schema: SchemaRef,
    /// The batch's staging folder; each sink stages in `<staging>/<export>`.
    pub staging: &'a Path,
    /// Unique per batch attempt (append mode names files with it).
    pub token: &'a str,
    /// Buckets and NameNodes.
    pub targets: &'a dyn Targets,
    /// Service URLs.
    pub services: &'a ServiceUrls,
}

/// Opens the sink of one export: a file writer for kodo and hdfs exports, a
/// record stager for http, tsdb, logdb and report exports. What can be
/// known before the first row (a bad mapping, an unset service URL, a key
/// prefix leaving its folder) fails here.
pub fn open(name: &str, spec: &ExportSpec, cx: &SinkContext<'_>) -> Result<Box<dyn Sink>> {
    // the name becomes a folder under the batch's staging folder
    pbatch_model::names::check_name(pbatch_model::ErrorCode::InvalidExportName, "export name", name)?;
    let dir = StagingDir::new(cx.staging.join(name));
    let staging = dir.path().to_path_buf();
    if spec.file_options().is_some() {
        let export = file_export(name, spec, cx.expander, cx.manual, cx.targets)?;
        let handle = spawn_file_writer(export, cx.schema.clone(), staging, cx.token.to_string());
        Ok(ChannelSink::boxed(name, handle, dir, StagedKind::Files))
    } else {
        let export = service_export(cx.job, name, spec, cx.expander, cx.services)?;
        let handle = spawn_service_writer(export, cx.schema.clone(), staging);
        Ok(ChannelSink::boxed(name, handle, dir, StagedKind::Service))
    }
}

/// Opens the sink of a job's kept result (read by its downstream jobs):
/// parquet under `results`, see [`result_dir`](crate::result_dir). Its
/// commit is not reported.
pub fn open_result(results: &Path, cx: &SinkContext<'_>) -> Result<Box<dyn Sink>> {
    let export = result_export(results, cx.job, &cx.expander.batch_time())?;
    let dir = StagingDir::new(cx.staging.join(RESULT_EXPORT));
    let staging = dir.path().to_path_buf();
    let handle = spawn_file_writer(export, cx.schema.clone(), staging, cx.token.to_string());
    Ok(ChannelSink::boxed(RESULT_EXPORT, handle, dir, StagedKind::Files))
}

/// A sink whose writer runs on a blocking thread, fed through a channel:
/// file exports write files, service exports stage record lines.
struct ChannelSink {
    name: String,
    /// Dropped to end the writer's input.
    sender: Option<mpsc::Sender<RecordBatch>>,
    /// The writer's end; `None` once awaited.
    finish: Option<BoxFuture<'static, Result<StagedKind>>>,
    dir: StagingDir,
    state: Arc<WriterState>,
}

impl ChannelSink {
    fn boxed<T: Send + 'static>(
        name: &str,
        handle: WriterHandle<T>,
        dir: StagingDir,
        kind: fn(T) -> StagedKind,
    ) -> Box<dyn Sink> {
        let join = handle.join;
        Box::new(Self {
            name: name.to_string(),
            sender: Some(handle.sender),
            finish: Some(Box::pin(async move { finish_writer(join).await.map(kind) })),
            dir,
            state: handle.state,
        })
    }
}

impl Drop for ChannelSink {
    /// Dropped unfinished (a batch that failed before its sinks were
    /// finished): the input ends, and the folder is removed by whoever comes
    /// last, the writer or this drop, never while files are being written.
    fn drop(&mut self) {
        if self.finish.is_some() && self.state.abandon() {
            self.dir.disarm();
        }
        drop(self.sender.take());
    }
}

#[async_trait]
impl Sink for ChannelSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        match &self.sender {
            Some(s) => s.send(batch).await.map_err(|_| stopped(&self.name)),
            None => Err(stopped(&self.name)),
        }
    }

    async fn finish(mut self: Box<Self>) -> Result<Staged> {
        drop(self.sender.take());
        let Some(finish) = self.finish.take() else {
            return Err(stopped(&self.name));
        };
        let kind = finish.await?;
        let dir = std::mem::replace(
            &mut self.dir,
            StagingDir {
                path: None,
                _lock: None,
            },
        );
        Ok(Staged { kind, dir })
    }
}

fn stopped(name: &str) -> Error {
    Error::internal(format!("export {name}: the writer stopped"))
}

/// How an error after the commit point begins: part of the batch may be
/// visible, and the journal finishes it later.
pub const INCOMPLETE_COMMIT: &str =
    "the commit is incomplete; it is finished at the next engine start or before the job's next batch";

/// What a batch's commit needs besides the staged exports.
pub struct CommitContext<'a> {
    /// The HTTP client of service exports, asked for only when the batch
    /// has one (building a client loads the system's TLS roots: ~150 files).
    pub http: &'a (dyn Fn() -> pbatch_model::Result<reqwest::Client> + Send + Sync),
    /// Retention ages are measured against it.
    pub now: std::time::SystemTime,
    /// Called first, before each service send and right before the commit
    /// point; an error (a stop) ends the commit there, with nothing visible.
    pub check: &'a (dyn Fn() -> pbatch_model::Result<()> + Send + Sync),
    /// The batch's staging folder (every `Staged` value lies in it): the
    /// journal is written there.
    pub staging: &'a Path,
    /// The batch: in the journal and every `_SUCCESS` manifest.
    pub batch: &'a crate::BatchInfo,
}

/// Commits every export of a batch, all or nothing (see `journal.rs`
/// for the protocol and its recovery):
///
/// 1. every file export's target is listed (an unreachable store or an
///    `errorIfExists` that would fail stops the batch before anything is
///    visible), no two exports write the same key, and the commit plan is
///    worked out: staged files synced and checksummed, the keys `overwrite`
///    and `retention` delete;
/// 2. service exports send their records: they are idempotent, so a
///    rerun replaces what a failed batch sent (a send that fails leaves
///    every file export uncommitted);
/// 3. the journal is written: the commit point;
/// 4. file exports commit in order, remote targets (uploads, which can
///    fail) before local folders (renames), each ending with its
///    `_SUCCESS` manifest.
///
/// An error after the commit point leaves the journal: the commit is
/// finished by [`OpenCommit::finish`](crate::OpenCommit::finish). The
/// caller records the batch, then calls [`done`](crate::done).
///
/// Returns one report per export, services first; the kept result is not
/// reported.
pub async fn commit(staged: Vec<Staged>, cx: CommitContext<'_>) -> Result<Vec<CommitReport>> {
    crate::faults::setup();
    let mut files = Vec::new();
    let mut services = Vec::new();
    for s in staged {
        match s.kind {
            StagedKind::Files(f) => files.push((f, s.dir)),
            StagedKind::Service(v) => services.push((v, s.dir)),
        }
    }
    (cx.check)()?;
    files.sort_by_key(|(s, _)| matches!(s.export.target, Target::Local(_)));
    let exports: Vec<&StagedExport> = files.iter().map(|(f, _)| f).collect();
    precheck_all(&exports).await?;
    let mut entries = Vec::new();
    for (f, _) in &files {
        let reported = f.export.name != RESULT_EXPORT;
        entries.push(plan_export(f, cx.staging, cx.now, reported).await?);
    }
    let mut reports = Vec::new();
    // the HTTP client is built only for a batch that has a service export
    if !services.is_empty() {
        let http = (cx.http)()?;
        for (svc, dir) in services {
            (cx.check)()?;
            let span = tracing::info_span!("export", name = %svc.export.name);
            let r = send(svc, &http).instrument(span).await?;
            dir.remove().await;
            reports.push(CommitReport {
                export: r.export,
                keys: Vec::new(),
                rows: r.records,
                bytes: 0,
                replaced: 0,
                skipped: false,
                expired: 0,
                invalid: r.invalid,
                retries: r.retries,
            });
        }
    }
    (cx.check)()?;
    crate::faults::point("commit.before_point", 1);
    // From here the batch's staging folder decides: removed whole while it
    // holds no journal, kept once it does. No export's own folder may be
    // removed on its own, not even if this future is dropped mid-write.
    let targets: Vec<Target> = files
        .into_iter()
        .map(|(f, mut dir)| {
            dir.disarm();
            f.export.target
        })
        .collect();
    let journal = Journal::new(cx.batch.clone(), entries);
    let (j, dir) = (journal.clone(), cx.staging.to_path_buf());
    crate::commit::blocking(move || j.write(&dir)).await?;
    crate::faults::point("commit.after_point", 1);
    let committed = apply(&journal, cx.staging, &targets)
        .await
        .map_err(|e| e.context(INCOMPLETE_COMMIT))?;
    reports.extend(committed);
    Ok(reports)
}
