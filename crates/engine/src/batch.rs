//! One batch: srcs -> SQL -> exports, committed only when all succeeded.

use crate::catalog::{ExportStats, MAX_KEPT_KEYS, RunRecord, RunStats};
use crate::engine::Engine;
use crate::fanout::{fan_out, open_sinks};
use crate::inputs::StoreTargets;
use crate::retry::NextRetry;
use chrono::{DateTime, FixedOffset};
use pbatch_exec::{BatchInput, BatchPlan, Sizing};
use pbatch_magic::Expander;
use pbatch_model::{Error, ErrorCode, ExportSpec, JobSpec, Result, RunStatus, SchedulerType};
use pbatch_sink::{BatchInfo, CommitContext, CommitReport, InputFile, SinkContext, StagingDir};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Folder under the data dir holding staged output.
pub(crate) const STAGING_DIR: &str = ".staging";

/// Folder under the data dir keeping the results of jobs that have
/// downstream jobs: `results/<job>/<batch time>/part-00000.parquet`.
pub(crate) const RESULTS_DIR: &str = "results";

/// What one batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// Job.
    pub job: String,
    /// The batch's id in the job's history.
    pub run_id: i64,
    /// The batch time, as wall-clock time of the engine's zone.
    pub batch_time: DateTime<FixedOffset>,
    /// Files the srcs listed.
    pub files_read: usize,
    /// Their bytes, as listed.
    pub bytes_read: u64,
    /// Rows the scans produced.
    pub rows_read: u64,
    /// Rows the SQL produced.
    pub rows_out: u64,
    /// Invalid source records skipped (`omitInvalid`).
    pub invalid_skipped: u64,
    /// The first few of them, as `file line N: why`.
    pub invalid_samples: Vec<String>,
    /// Per export.
    pub exports: Vec<CommitReport>,
    /// Wall time.
    pub seconds: f64,
    /// Where the batch ran: `local`, or `cluster df://host:port`.
    pub placement: String,
}

impl RunReport {
    /// What the run record keeps of it.
    pub fn stats(&self) -> RunStats {
        RunStats {
            files_read: self.files_read,
            bytes_read: self.bytes_read,
            rows_read: self.rows_read,
            rows_out: self.rows_out,
            invalid_skipped: self.invalid_skipped,
            invalid_samples: self.invalid_samples.clone(),
            exports: self
                .exports
                .iter()
                .map(|e| ExportStats {
                    export: e.export.clone(),
                    keys: e.keys.iter().take(MAX_KEPT_KEYS).cloned().collect(),
                    files: e.keys.len(),
                    rows: e.rows,
                    bytes: e.bytes,
                    skipped: e.skipped,
                })
                .collect(),
            placement: self.placement.clone(),
        }
    }
}

/// Progress of a running batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A new stage began.
    Stage(String),
    /// Rows the SQL has produced so far.
    Rows(u64),
    /// The srcs are listed: the files the batch reads and their bytes.
    Listed {
        /// Files.
        files: usize,
        /// Their bytes, as stored.
        bytes: u64,
    },
    /// Bytes of input read so far, as stored (sent twice a second while
    /// the SQL runs, and once as it ends). Parquet scans count the column
    /// chunks they fetch, so the end may fall short of the listed bytes.
    Read(u64),
    /// The attempt failed on something a second try can pass; the retry
    /// starts after `delay`.
    Retry {
        /// Which retry (from 1).
        attempt: u32,
        /// Of how many.
        of: u32,
        /// The wait before it.
        delay: std::time::Duration,
        /// The attempt's error.
        error: String,
    },
    /// An export was committed.
    Committed {
        /// The export.
        export: String,
        /// Files it committed.
        files: usize,
        /// Their bytes.
        bytes: u64,
    },
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

pub(crate) fn canceled_error() -> Error {
    Error::new(
        ErrorCode::BatchRerunCancelError,
        "the batch was stopped; nothing was committed",
    )
}

fn check_canceled(cancel: &tokio::sync::watch::Receiver<bool>) -> Result<()> {
    if *cancel.borrow() {
        Err(canceled_error())
    } else {
        Ok(())
    }
}

/// A unique token for one batch attempt.
fn token(batch_time: &DateTime<FixedOffset>) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos:09}",
        batch_time.format("%Y%m%d%H%M%S"),
        std::process::id()
    )
}

impl Engine {
    /// Runs one batch of `job` at `batch_time` with start `params`, then
    /// commits every export. On any error nothing is committed.
    pub async fn run_once(
        &self,
        job: &str,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
    ) -> Result<RunReport> {
        self.run_once_with(job, params, batch_time, Arc::new(|_| {})).await
    }

    /// [`run_once`](Self::run_once) reporting progress. The batch is
    /// recorded in the job's history: Running, then Successful, Failed with
    /// the error's message, or Canceled when [`stop_batch`](Self::stop_batch)
    /// stopped it.
    pub async fn run_once_with(
        &self,
        job: &str,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
        progress: ProgressFn,
    ) -> Result<RunReport> {
        let mut record = self.new_run(job, params, batch_time)?;
        let run_id = record.run_id;
        loop {
            let cancel = self.register_active(&record)?;
            let (result, retry) = self.execute_attempt(record, Arc::clone(&progress), cancel, true).await;
            let (Err(e), Some(next)) = (&result, retry) else {
                return result;
            };
            progress(Progress::Retry {
                attempt: next.attempt,
                of: next.of,
                delay: next.delay,
                error: e.to_string(),
            });
            // a stop, a rerun or the job's deletion takes the retry off the
            // schedule: the wait ends there, with the failure
            let until = tokio::time::Instant::now() + next.delay;
            loop {
                if !self.retrying(job)?.contains(&run_id) {
                    return result;
                }
                let now = tokio::time::Instant::now();
                if now >= until {
                    break;
                }
                tokio::time::sleep((until - now).min(std::time::Duration::from_millis(250))).await;
            }
            if !self.take_retry(job, run_id)? {
                return result;
            }
            let Some(mut r) = self.catalog().get_run(job, run_id)? else {
                return result;
            };
            if r.status != RunStatus::Failed {
                return result;
            }
            let backfill = r.backfill;
            self.begin_rerun(&mut r, backfill, next.attempt)?;
            record = r;
        }
    }

    /// Checks a start and records a Running batch. Refused starts (unknown
    /// job, undeclared or bad params) make no batch.
    pub(crate) fn new_run(
        &self,
        job: &str,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
    ) -> Result<RunRecord> {
        let spec = self.job(job)?;
        let root = self.root_of(job, &spec)?;
        self.expander(&root.1, params, batch_time)?;
        let mut record = RunRecord {
            job: job.to_string(),
            run_id: 0,
            batch_time: batch_time.to_utc(),
            start_time: None,
            end_time: None,
            status: RunStatus::Ready,
            message: String::new(),
            rerun_count: 0,
            params: params.to_vec(),
            owner: Some(std::process::id()),
            backfill: None,
            retry: 0,
            stats: None,
        };
        self.add_run(&mut record)?;
        Ok(record)
    }

    /// Runs one attempt of a recorded batch to its end and records the
    /// outcome. A failure that gets an automatic retry says so in the
    /// message, queues the retry in the job's schedule and comes back with
    /// it: the scheduler starts it, or with `inline` the caller, which waits.
    pub(crate) async fn execute_attempt(
        &self,
        mut record: RunRecord,
        progress: ProgressFn,
        mut cancel: tokio::sync::watch::Receiver<bool>,
        inline: bool,
    ) -> (Result<RunReport>, Option<NextRetry>) {
        match self.attempt(&mut record, progress, &mut cancel, inline).await {
            Ok(done) => done,
            Err(e) => (Err(e), None),
        }
    }

    async fn attempt(
        &self,
        record: &mut RunRecord,
        progress: ProgressFn,
        cancel: &mut tokio::sync::watch::Receiver<bool>,
        inline: bool,
    ) -> Result<(Result<RunReport>, Option<NextRetry>)> {
        // whatever happens below (an error, a panic), the batch leaves the active map
        struct Unregister<'a>(&'a Engine, String, i64);
        impl Drop for Unregister<'_> {
            fn drop(&mut self) {
                self.0.unregister_active(&self.1, self.2);
            }
        }
        let guard = Unregister(self, record.job.clone(), record.run_id);
        // the attempt's tracing events, for its run's log
        let capture = crate::runlog::Capture::start();
        let batch_time = self.zone().local(record.batch_time);
        // a slot among [engine] max_concurrent_batches; the batch is Ready until then
        let permit = {
            let _waiting = self.inner.metrics.waiting();
            tokio::select! {
                p = self.inner.permits.clone().acquire_owned() => p.ok(),
                _ = cancel.wait_for(|c| *c) => None,
            }
        };
        let result = match permit {
            Some(_) if !*cancel.borrow() => {
                if record.status == RunStatus::Ready {
                    record.status = RunStatus::Running;
                    record.start_time = Some(self.now_utc());
                    self.save_run(record)?;
                }
                let span = tracing::info_span!(
                    "batch",
                    job = %record.job,
                    run_id = record.run_id,
                    batch_time = %batch_time,
                    attempt = capture.attempt()
                );
                self.run_batch(record, batch_time, progress, cancel)
                    .instrument(span)
                    .await
            }
            _ => Err(canceled_error()),
        };
        drop(permit);
        drop(guard);
        // re-read: a stop may have moved the record to Cancelling meanwhile;
        // a record gone (its job deleted) or replaced (a job created again
        // under the name) is not this batch's to write
        let current = self.catalog().get_run(&record.job, record.run_id)?;
        let ours = current
            .as_ref()
            .is_some_and(|c| c.start_time == record.start_time && c.owner == record.owner);
        if let Some(current) = current.filter(|_| ours) {
            record.status = current.status;
        }
        record.end_time = Some(self.now_utc());
        outcome(record, &result, *cancel.borrow());
        if record.start_time.is_none() {
            record.start_time = record.end_time;
        }
        if let Some(label) = self.retry_label(record) {
            record.message = format!("{} ({label})", record.message);
        }
        let mut retry = match &result {
            Err(e) if ours && record.status == RunStatus::Failed => self.next_retry(record, e),
            _ => None,
        };
        let due = retry.map(|next| self.now_utc() + chrono::Duration::from_std(next.delay).unwrap_or_default());
        if let (Some(next), Some(due)) = (retry, due) {
            record.message = format!(
                "{}; retry {} of {} at {}",
                record.message,
                next.attempt,
                next.of,
                self.fmt_time(due)
            );
        }
        self.inner
            .metrics
            .ended(record, result.as_ref().ok().map(|(report, _)| report), retry.is_some());
        if ours {
            capture.note(&format!("batch ended {}: {}", record.status, record.message));
            if let Err(e) = self.keep_log(record, &capture) {
                tracing::warn!(job = %record.job, run_id = record.run_id, error = %e, "keeping the batch's log failed");
            }
            self.save_run(record)?;
            // queued once the batch is recorded Failed, so the scheduler never
            // finds a retry of a batch still Running; an inline retry is
            // queued too (a stop or rerun cancels it there), owned by this
            // process so that the scheduler leaves it to the waiting caller
            if let (Some(next), Some(due)) = (retry, due) {
                let owner = inline.then(std::process::id);
                if let Err(e) = self.queue_retry(&record.job, record.run_id, next, due, owner) {
                    tracing::warn!(job = %record.job, run_id = record.run_id, error = %e, "queueing the retry failed");
                    record.message = format!("{}; the retry could not be queued: {e}", record.message);
                    self.save_run(record)?;
                    retry = None;
                }
            }
        } else {
            tracing::warn!(job = %record.job, run_id = record.run_id, "the batch's job was deleted; its outcome is not recorded");
        }
        tracing::info!(job = %record.job, run_id = record.run_id, status = %record.status, "batch ended");
        // downstream triggers are queued as the outcome is recorded, before
        // anything is awaited, so whoever sees the outcome sees them too
        if let Err(e) = self.after_batch(record) {
            tracing::warn!(job = %record.job, error = %e, "scheduling after the batch failed");
        }
        // recorded Successful: the commit's journal may go (its staging
        // stays locked until then, so no other batch takes the journal)
        Ok(match result {
            Ok((report, staging)) => {
                pbatch_sink::done(staging).await;
                (Ok(report), None)
            }
            Err(e) => (Err(e), retry),
        })
    }

    /// One batch: resolve the srcs, plan, stream the result to every
    /// export's sink, then commit them all. On any error nothing is
    /// committed, and the batch's staging folder goes with `staging`.
    async fn run_batch(
        &self,
        record: &RunRecord,
        batch_time: DateTime<FixedOffset>,
        progress: ProgressFn,
        cancel: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(RunReport, StagingDir)> {
        let started = Instant::now();
        let job = record.job.as_str();
        let spec = self.job(job)?;
        let root = self.root_of(job, &spec)?;
        let expander = self.expander(&root.1, &record.params, batch_time)?;
        let exports = self.exports(job)?;
        // an earlier batch of the job past its commit point is finished first
        self.finish_open_commits(job, record.run_id).await?;

        progress(Progress::Stage("listing files".into()));
        let name = format!("{job} run {}", record.run_id);
        let mut plan = self.plan_batch(&name, &spec, &root.1, &expander, &exports).await?;
        check_canceled(cancel)?;
        let listed = plan.read_plan();
        tracing::info!(
            files = listed.files,
            bytes = listed.bytes,
            "listed the srcs' files; planned the SQL"
        );
        progress(Progress::Listed {
            files: listed.files,
            bytes: listed.bytes,
        });

        let token = token(&batch_time);
        let staging = StagingDir::locked(self.data_dir().join(STAGING_DIR).join(&token))?;
        let targets = StoreTargets(&self.inner.sources.stores);
        let cx = SinkContext {
            job,
            manual: spec.scheduler_type() == SchedulerType::Manual,
            expander: &expander,
            schema: plan.schema(),
            staging: staging.path(),
            token: &token,
            targets: &targets,
            services: &self.inner.services,
        };
        let results = self.data_dir().join(RESULTS_DIR);
        let keep_result = !self.list_jobs(None, Some(job))?.is_empty();
        let results = keep_result.then_some(results.as_path());
        // a big result on a cluster is written there, into the staging
        // folder (shared with the executors), and committed from it
        let remote = match plan.too_big_to_collect() {
            true => pbatch_sink::plan_remote(&exports, results, &cx)?,
            false => None,
        };
        let (rows_out, staged) = match remote {
            Some(remote) => {
                let table = pbatch_cluster::WriteTable::new(plan.schema(), remote.write().clone());
                plan.write_into(Arc::new(table)).await?;
                progress(Progress::Stage("running".into()));
                let (rows, _) = fan_out(&plan, Vec::new(), &progress, cancel).await?;
                (rows, remote.staged(rows)?)
            }
            None => {
                let mut sinks = Vec::new();
                if let Err(e) = open_sinks(&exports, results, &cx, &mut sinks) {
                    // the writers already started end before their folders go
                    for s in sinks {
                        let _ = s.finish().await;
                    }
                    return Err(e);
                }
                progress(Progress::Stage("running".into()));
                fan_out(&plan, sinks, &progress, cancel).await?
            }
        };

        let rows_read = plan.rows_read();
        tracing::info!(rows_read, rows_out, "the SQL ran");
        progress(Progress::Stage("committing".into()));
        let read = plan.read_plan();
        let batch = BatchInfo {
            job: job.to_string(),
            run_id: record.run_id,
            batch_time: expander.batch_time().to_rfc3339(),
            inputs: read
                .inputs
                .iter()
                .map(|(path, bytes)| InputFile {
                    path: path.clone(),
                    bytes: *bytes,
                })
                .collect(),
            summary: summary(rows_read, read.files, rows_out),
            recorded: self.inner.recorded,
            started: record.start_time.map(|t| t.to_rfc3339()),
        };
        let exports = self.commit(staged, &staging, &batch, cancel).await?;
        for e in &exports {
            tracing::info!(export = %e.export, files = e.keys.len(), rows = e.rows, bytes = e.bytes, "committed");
            progress(Progress::Committed {
                export: e.export.clone(),
                files: e.keys.len(),
                bytes: e.bytes,
            });
        }
        let (invalid_skipped, invalid_samples) = plan.skipped_records();
        let report = RunReport {
            job: job.to_string(),
            run_id: record.run_id,
            batch_time: expander.batch_time(),
            files_read: read.files,
            bytes_read: read.bytes,
            rows_read,
            rows_out,
            invalid_skipped,
            invalid_samples,
            exports,
            seconds: started.elapsed().as_secs_f64(),
            placement: plan.placement().to_string(),
        };
        tracing::info!(
            rows_read = report.rows_read,
            rows_out,
            seconds = report.seconds,
            "batch committed"
        );
        Ok((report, staging))
    }

    /// Commits what the batch's sinks staged; a stop is taken until the
    /// files begin to move.
    async fn commit(
        &self,
        staged: Vec<pbatch_sink::Staged>,
        staging: &StagingDir,
        batch: &BatchInfo,
        cancel: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<Vec<CommitReport>> {
        let check = {
            let cancel = cancel.clone();
            move || check_canceled(&cancel)
        };
        let http = || self.http_client();
        let cx = CommitContext {
            http: &http,
            now: self.inner.clock.now(),
            check: &check,
            staging: staging.path(),
            batch,
        };
        Ok(pbatch_sink::commit(staged, cx).await?)
    }

    /// Resolves the srcs and builds the batch's plan. With one partitioned
    /// export, the result is sorted by its partition columns (spilling if
    /// need be) so each folder's rows arrive together and its files can be
    /// finished before the next folder's open.
    pub(crate) async fn plan_batch(
        &self,
        name: &str,
        spec: &JobSpec,
        root: &JobSpec,
        expander: &Expander,
        exports: &[(String, ExportSpec)],
    ) -> Result<BatchPlan> {
        let srcs = self.resolve_srcs(spec, expander, &mut HashSet::new())?;
        let partitioned: Vec<&[String]> = exports
            .iter()
            .filter_map(|(_, e)| e.file_options().map(|o| o.partition_by()))
            .filter(|p| !p.is_empty())
            .collect();
        let input = BatchInput {
            code: &spec.computation.code,
            srcs: &srcs,
            expander,
            sizing: Sizing::for_container(root.container.as_ref()),
            sort_by: if let [cols] = partitioned.as_slice() { cols } else { &[] },
            name,
        };
        Ok(BatchPlan::build(&self.inner.sources, input).await?)
    }
}

/// The start of a Successful run's message; [`committed_message`] ends it.
fn summary(rows_read: u64, files_read: usize, rows_out: u64) -> String {
    format!("read {rows_read} rows from {files_read} files, wrote {rows_out} rows")
}

/// A Successful run's message: the batch's summary and the files written.
pub(crate) fn committed_message(summary: &str, reports: &[CommitReport]) -> String {
    let files: usize = reports.iter().map(|e| e.keys.len()).sum();
    format!("{summary} into {files} files")
}

/// Records how an attempt ended in its run record.
fn outcome(record: &mut RunRecord, result: &Result<(RunReport, StagingDir)>, canceled: bool) {
    match result {
        Ok((r, _)) => {
            record.status = RunStatus::Successful;
            record.stats = Some(r.stats());
            record.message = committed_message(&summary(r.rows_read, r.files_read, r.rows_out), &r.exports);
            if r.invalid_skipped > 0 {
                record.message += &format!(
                    "; skipped {} invalid records (omitInvalid), first: {}",
                    r.invalid_skipped,
                    r.invalid_samples.join("; ")
                );
            }
        }
        // a stop that came once the commit point was passed did not stop it
        Err(e) if canceled && !e.message().starts_with(pbatch_sink::INCOMPLETE_COMMIT) => {
            record.stats = None;
            record.status = RunStatus::Canceled;
            record.message = "stopped by request; nothing was committed".to_string();
        }
        Err(e) => {
            record.stats = None;
            record.status = RunStatus::Failed;
            record.message = e.to_string();
        }
    }
}
