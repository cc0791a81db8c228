//! Commits left unfinished by a crash or a store that failed mid-commit.
//!
//! Each batch stages in `<data dir>/.staging/<time>-<pid>-<nanos>/`. A
//! folder without a commit journal never reached its commit point: it is
//! discarded (its run is marked Failed, nothing committed). A folder with a
//! journal is finished from the staged files (see `pbatch_sink::commit`),
//! and its run becomes Successful. This happens when the engine starts and
//! before each new batch of the same job.

use crate::batch::{STAGING_DIR, committed_message};
use crate::catalog::Catalog;
use crate::engine::{Clock, Engine, process_alive};
use crate::inputs::StoreTargets;
use pbatch_model::{Error, ErrorCode, Result, RunStatus};
use pbatch_sink::{Claim, CommitReport, OpenCommit, StagingDir};
use pbatch_source::Stores;
use std::path::{Path, PathBuf};

/// A staging folder whose batch is gone: its journal if any, and the lock
/// held while it is finished or discarded.
struct LeftBehind {
    dir: PathBuf,
    journal: Option<OpenCommit>,
    _lock: Option<std::fs::File>,
}

/// The staging folders of `root` whose batch is gone: their lock can be
/// taken (a batch holds it while it lives, in this process or another);
/// folders from before locks go by their process id (and, with `mine`,
/// this process's count as gone). A batch recorded in a durable history is
/// left to an engine on that history (`recorded`), so its run is told how
/// the commit ended.
fn left_behind(root: &Path, mine: bool, recorded: bool) -> Vec<LeftBehind> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let dir = entry.path();
        let lock = match StagingDir::claim(&dir) {
            Claim::Held => continue,
            Claim::Free(f) => Some(f),
            Claim::Unlocked => {
                let name = entry.file_name().to_string_lossy().to_string();
                let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
                let ours = pid == Some(std::process::id());
                if pid.is_some_and(|p| (ours && !mine) || (!ours && process_alive(p))) {
                    continue;
                }
                None
            }
        };
        match OpenCommit::read(&dir) {
            Ok(Some(open)) if open.batch().recorded && !recorded => {
                tracing::info!(dir = %dir.display(), "an open commit of a recorded batch is left to an engine on its history");
            }
            Ok(journal) => out.push(LeftBehind {
                dir,
                journal,
                _lock: lock,
            }),
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "a commit journal cannot be read; its staging is kept")
            }
        }
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

/// Records how finishing a journal went in its run, and marks it done.
async fn settle(
    catalog: &dyn Catalog,
    clock: &dyn Clock,
    open: OpenCommit,
    result: std::result::Result<Vec<CommitReport>, pbatch_sink::Error>,
    when: &str,
    tell_run: bool,
) -> Result<()> {
    let b = open.batch();
    // a batch outside any lasting history has no run to tell; nor has a
    // batch being rerun right now (its new attempt records the outcome)
    let run = if b.recorded && tell_run {
        catalog
            .get_run(&b.job, b.run_id)?
            .filter(|r| r.start_time.map(|t| t.to_rfc3339()) == b.started)
    } else {
        None
    };
    match result {
        Ok(reports) => {
            if let Some(mut r) = run.filter(|r| r.status != RunStatus::Successful) {
                r.status = RunStatus::Successful;
                r.message = format!(
                    "{}; the commit was completed {when}",
                    committed_message(&b.summary, &reports)
                );
                r.end_time = Some(chrono::DateTime::<chrono::Utc>::from(clock.now()));
                catalog.update_run(&r)?;
            }
            tracing::info!(job = %b.job, run_id = b.run_id, when, "finished a commit left open");
            pbatch_sink::done(StagingDir::new(open.dir())).await;
            Ok(())
        }
        Err(e) => {
            let message = format!(
                "the commit is incomplete ({when} it failed again: {e}); it is finished at the next engine start or before the job's next batch"
            );
            // a run already recorded Successful is never taken back
            if let Some(mut r) = run.filter(|r| r.status != RunStatus::Successful) {
                r.status = RunStatus::Failed;
                r.message = message.clone();
                r.end_time
                    .get_or_insert_with(|| chrono::DateTime::<chrono::Utc>::from(clock.now()));
                r.owner = None;
                catalog.update_run(&r)?;
            }
            Err(Error::new(
                ErrorCode::ExportFailed,
                format!("batch {} of job {}: {message}", b.run_id, b.job),
            ))
        }
    }
}

/// At engine start: staging of stopped processes is finished (journal) or
/// discarded (none). Runs on a thread of its own with its own runtime and
/// stores, so it works inside or outside an async context.
pub(crate) fn recover_at_start(
    data_dir: &Path,
    stores: impl FnOnce() -> Result<Stores> + Send,
    recorded: bool,
    catalog: &dyn Catalog,
    clock: &dyn Clock,
) -> Result<()> {
    let found = left_behind(&data_dir.join(STAGING_DIR), false, recorded);
    let mut open = Vec::new();
    for left in found {
        match left.journal {
            Some(j) => open.push((j, left._lock)),
            None => drop(StagingDir::new(left.dir)),
        }
    }
    if open.is_empty() {
        return Ok(());
    }
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::internal(format!("starting the recovery runtime: {e}")))?;
            let stores = stores()?;
            rt.block_on(async {
                for (j, _lock) in open {
                    let result = j.finish(&StoreTargets(&stores)).await;
                    if let Err(e) = settle(catalog, clock, j, result, "at engine start", true).await {
                        // the run says so; the engine starts anyway
                        tracing::error!(error = %e, "could not finish a commit at start");
                    }
                }
            });
            Ok(())
        })
        .join()
        .map_err(|_| Error::internal("the recovery thread panicked"))?
    })
}

impl Engine {
    /// Finishes the open commits of `job` that no other running batch
    /// owns: an earlier batch whose commit failed midway, or an earlier
    /// attempt of `run_id` itself (a rerun). Fails when one still cannot be
    /// finished (the new batch would otherwise commit over a half-committed
    /// one).
    pub(crate) async fn finish_open_commits(&self, job: &str, run_id: i64) -> Result<()> {
        for left in left_behind(&self.data_dir().join(STAGING_DIR), true, self.inner.recorded) {
            let Some(open) = left.journal else { continue };
            let b = open.batch();
            let busy = b.run_id != run_id && self.is_active(&b.job, b.run_id);
            if b.job != job || busy {
                continue;
            }
            let rerun = b.run_id == run_id;
            let result = open.finish(&StoreTargets(&self.inner.sources.stores)).await;
            settle(
                self.catalog(),
                self.inner.clock.as_ref(),
                open,
                result,
                "before the job's next batch",
                !rerun,
            )
            .await?;
        }
        Ok(())
    }
}

impl Engine {
    /// Checks what the batch of `job` at `batch_time` committed: for each
    /// file export, its `_SUCCESS` manifest exists, is of that batch, and
    /// every file it lists is in place with its size and CRC-32C. Without a
    /// batch time, the folders of a batch now are checked against whichever
    /// batch last committed there. Service exports are left out. `params`
    /// are the batch's start params (key prefixes may use them).
    pub async fn verify(
        &self,
        job: &str,
        params: &[(String, String)],
        batch_time: Option<chrono::DateTime<chrono::FixedOffset>>,
    ) -> Result<Vec<pbatch_sink::ExportCheck>> {
        let spec = self.job(job)?;
        let root = self.root_of(job, &spec)?;
        let exact = batch_time.is_some();
        let at = batch_time.unwrap_or_else(|| self.zone().local(self.now_utc()));
        let expander = self.expander(&root.1, params, at)?;
        let manual = spec.scheduler_type() == pbatch_model::SchedulerType::Manual;
        let targets = StoreTargets(&self.inner.sources.stores);
        let mut out = Vec::new();
        for (name, export) in self.exports(job)? {
            if let Some(c) = pbatch_sink::verify_export(&name, &export, &expander, manual, &targets, exact).await? {
                out.push(c);
            }
        }
        Ok(out)
    }
}
