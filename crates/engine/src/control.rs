//! Batches in the background: start, stop, rerun, wait.
//!
//! A batch's attempt runs as a task the engine owns (aborted when the engine
//! is dropped). Stop flips the batch's cancel flag: the attempt drops its
//! DataFusion stream, the writers finish, staging is discarded and the run
//! ends Canceled. The status machine is the seed's:
//! Running -> Cancelling -> Canceled; Successful | Failed | Canceled ->
//! Restarting -> Running (rerunCount + 1, same batchTime and params).

use crate::batch::ProgressFn;
use crate::catalog::RunRecord;
use crate::engine::Engine;
use chrono::{DateTime, FixedOffset};
use pbatch_model::{Error, ErrorCode, JobHistory, RerunBatchOutput, Result, RunStatus, StopBatchOutput, model_err};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a stop waits for the batch to wind down before answering
/// `Cancelling` instead of `Canceled`.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A batch changed status (see [`Engine::subscribe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    /// Job.
    pub job: String,
    /// Batch.
    pub run_id: i64,
    /// Its new status.
    pub status: RunStatus,
    /// Reruns so far.
    pub rerun_count: i64,
}

impl RunEvent {
    fn of(r: &RunRecord) -> Self {
        Self {
            job: r.job.clone(),
            run_id: r.run_id,
            status: r.status,
            rerun_count: r.rerun_count,
        }
    }
}

fn lock_err() -> Error {
    Error::internal("engine lock poisoned by an earlier panic")
}

impl Engine {
    /// Every status change of every batch from now on (a lagging receiver
    /// misses the oldest events; the catalog has the truth).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RunEvent> {
        self.inner.events.subscribe()
    }

    /// Records a new status of a batch and tells subscribers.
    pub(crate) fn save_run(&self, r: &RunRecord) -> Result<()> {
        self.catalog().update_run(r)?;
        let _ = self.inner.events.send(RunEvent::of(r));
        Ok(())
    }

    /// Records a new batch (its runId is assigned) and tells subscribers.
    pub(crate) fn add_run(&self, r: &mut RunRecord) -> Result<()> {
        r.run_id = self.catalog().insert_run(r)?;
        let _ = self.inner.events.send(RunEvent::of(r));
        Ok(())
    }

    /// Registers a running attempt; returns its cancel flag. Refused while
    /// another attempt of the same batch is in flight.
    pub(crate) fn register_active(&self, r: &RunRecord) -> Result<watch::Receiver<bool>> {
        let (tx, rx) = watch::channel(false);
        let mut active = self.inner.active.lock().map_err(|_| lock_err())?;
        let key = (r.job.clone(), r.run_id);
        if active.contains_key(&key) {
            return model_err!(
                BatchCannotRerun,
                "batch {} of job {} is already in flight",
                r.run_id,
                r.job
            );
        }
        active.insert(key, tx);
        self.inner.metrics.in_flight(1);
        Ok(rx)
    }

    /// Whether batch `run_id` of `job` is running in this engine.
    pub(crate) fn is_active(&self, job: &str, run_id: i64) -> bool {
        self.inner
            .active
            .lock()
            .map(|a| a.contains_key(&(job.to_string(), run_id)))
            .unwrap_or(true)
    }

    pub(crate) fn unregister_active(&self, job: &str, run_id: i64) {
        if let Ok(mut a) = self.inner.active.lock()
            && a.remove(&(job.to_string(), run_id)).is_some()
        {
            self.inner.metrics.in_flight(-1);
        }
    }

    fn spawn_attempt(&self, record: RunRecord) -> Result<()> {
        let cancel = self.register_active(&record)?;
        self.spawn_registered(record, cancel)
    }

    /// Runs an attempt registered in the active map as the engine's task.
    fn spawn_registered(&self, record: RunRecord, cancel: watch::Receiver<bool>) -> Result<()> {
        let engine = self.clone();
        let progress: ProgressFn = Arc::new(|_| {});
        let mut tasks = self.inner.tasks.lock().map_err(|_| lock_err())?;
        // reap finished attempts (a panicked one shows here)
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "a batch task ended abnormally");
            }
        }
        tasks.spawn(async move {
            let (job, id) = (record.job.clone(), record.run_id);
            if let (Err(e), _) = engine.execute_attempt(record, progress, cancel, false).await {
                tracing::warn!(job, run_id = id, error = %e, "batch did not succeed");
            }
        });
        Ok(())
    }

    /// Starts a batch in the background (the engine's own task); returns its runId.
    /// Needs a tokio runtime.
    pub fn start_batch(
        &self,
        job: &str,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
    ) -> Result<i64> {
        let record = self.new_run(job, params, batch_time)?;
        let id = record.run_id;
        self.spawn_attempt(record)?;
        Ok(id)
    }

    /// [`start_batch`](Self::start_batch) of a batch of backfill `backfill`.
    pub(crate) fn start_batch_for(
        &self,
        job: &str,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
        backfill: i64,
    ) -> Result<i64> {
        let mut record = self.new_run(job, params, batch_time)?;
        record.backfill = Some(backfill);
        self.save_run(&record)?;
        let id = record.run_id;
        self.spawn_attempt(record)?;
        Ok(id)
    }

    fn run_record(&self, job: &str, run_id: i64) -> Result<RunRecord> {
        self.job(job)?;
        self.catalog().get_run(job, run_id)?.ok_or_else(|| {
            Error::new(
                ErrorCode::RunNotFound,
                format!("job {job} has no batch with runId {run_id}"),
            )
        })
    }

    /// Waits until a batch has ended (or `timeout` passed) and returns its history item.
    pub async fn wait_batch(&self, job: &str, run_id: i64, timeout: Duration) -> Result<JobHistory> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self.run_record(job, run_id)?;
            if r.status.is_final() || tokio::time::Instant::now() >= deadline {
                return Ok(self.history_item(&r));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The job's batches in flight in this process (running or waiting for a slot).
    pub(crate) fn active_runs(&self, job: &str) -> Result<Vec<i64>> {
        Ok(self
            .inner
            .active
            .lock()
            .map_err(|_| lock_err())?
            .keys()
            .filter(|(j, _)| j == job)
            .map(|(_, id)| *id)
            .collect())
    }

    /// Whether the job has a batch in flight in this process.
    pub(crate) fn busy(&self, job: &str) -> Result<bool> {
        Ok(!self.active_runs(job)?.is_empty())
    }

    /// Flips a batch's cancel flag (Running -> Cancelling); `false` when the
    /// batch is not in flight in this process. The active map stays locked
    /// while the status is read and written, so an attempt that is ending
    /// (it unregisters under the same lock first) cannot be overwritten.
    pub(crate) fn signal_stop(&self, job: &str, run_id: i64) -> Result<bool> {
        let active = self.inner.active.lock().map_err(|_| lock_err())?;
        let Some(flag) = active.get(&(job.to_string(), run_id)) else {
            return Ok(false);
        };
        if let Some(mut r) = self.catalog().get_run(job, run_id)?
            && r.status == RunStatus::Running
        {
            r.status = RunStatus::Cancelling;
            self.save_run(&r)?;
        }
        let _ = flag.send(true);
        Ok(true)
    }

    /// `POST /v2/batch/actions/stop`: only a Running batch can be stopped
    /// (`E18626` names the current status; the seed refuses Ready too — stop
    /// the job to drop a batch waiting for a slot). Waits up to 5 s for it to end.
    pub async fn stop_batch(&self, job: &str, run_id: i64) -> Result<StopBatchOutput> {
        let r = self.run_record(job, run_id)?;
        // a Failed batch waiting for its retry: the stop cancels the retry
        if r.status == RunStatus::Failed
            && !self
                .cancel_retries(job, |p| p.run_id == run_id, "the batch was stopped")?
                .is_empty()
        {
            return Ok(StopBatchOutput {
                pre_status: r.status,
                post_status: RunStatus::Failed,
            });
        }
        if r.status != RunStatus::Running {
            return model_err!(
                BatchCannotStop,
                "batch {run_id} of job {job} is {}; only a Running batch can be stopped",
                r.status
            );
        }
        if !self.signal_stop(job, run_id)? {
            let now = self.run_record(job, run_id)?;
            if now.status.is_final() {
                return model_err!(
                    BatchCannotStop,
                    "batch {run_id} of job {job} has just ended {}",
                    now.status
                );
            }
            return model_err!(
                BatchCannotStop,
                "batch {run_id} of job {job} is {} in another process; stop it there",
                now.status
            );
        }
        let ended = self.wait_batch(job, run_id, STOP_WAIT).await?;
        Ok(StopBatchOutput {
            pre_status: r.status,
            post_status: ended.status,
        })
    }

    /// `POST /v2/batch/actions/rerun`: a Successful, Failed or Canceled batch
    /// runs again with its batchTime and params (`E18625` while Running,
    /// `E18649` for a status in transition). Returns once it is Running.
    pub async fn rerun_batch(&self, job: &str, run_id: i64) -> Result<RerunBatchOutput> {
        let r = self.run_record(job, run_id)?;
        let pre = r.status;
        match pre {
            RunStatus::Successful | RunStatus::Failed | RunStatus::Canceled => {}
            RunStatus::Running => {
                return model_err!(
                    BatchCannotRerun,
                    "batch {run_id} of job {job} is Running; stop it before rerunning"
                );
            }
            other => {
                return model_err!(
                    BatchStatusCannotRerun,
                    "batch {run_id} of job {job} is {other}; it can be rerun once it is Successful, Failed or Canceled"
                );
            }
        }
        if let Some(other) = self.active_runs(job)?.first() {
            return model_err!(
                BatchCannotRerun,
                "job {job} has batch {other} in flight; a job's batches do not overlap, rerun once it ends"
            );
        }
        // a rerun by hand supersedes a pending automatic retry
        self.cancel_retries(job, |p| p.run_id == run_id, "the batch was rerun")?;
        // the scheduler may have started that retry meanwhile
        let r = self.run_record(job, run_id)?;
        if !r.status.is_final() || self.is_active(job, run_id) {
            return model_err!(
                BatchCannotRerun,
                "batch {run_id} of job {job} is {}; rerun it once it ends",
                r.status
            );
        }
        let count = r.rerun_count + 1;
        self.restart(r, None, 0)?;
        Ok(RerunBatchOutput {
            pre_status: pre,
            post_status: RunStatus::Running,
            rerun_count: count,
        })
    }

    /// Starts another attempt of an ended batch (same runId, rerunCount + 1):
    /// Restarting, then Running at once. `backfill`: the backfill rerunning it.
    pub(crate) fn restart(&self, mut r: RunRecord, backfill: Option<i64>, retry: u32) -> Result<i64> {
        // registered first: an attempt in flight is refused before its record changes
        let cancel = self.register_active(&r)?;
        if let Err(e) = self.begin_rerun(&mut r, backfill, retry) {
            self.unregister_active(&r.job, r.run_id);
            return Err(e);
        }
        let id = r.run_id;
        self.spawn_registered(r, cancel)?;
        Ok(id)
    }

    /// Records another attempt of an ended batch: Restarting, then Running
    /// (rerunCount + 1; `retry`: which automatic retry it is, 0 for none).
    pub(crate) fn begin_rerun(&self, r: &mut RunRecord, backfill: Option<i64>, retry: u32) -> Result<()> {
        r.status = RunStatus::Restarting;
        r.rerun_count += 1;
        r.retry = retry;
        r.message = self.retry_label(r).unwrap_or_default();
        r.end_time = None;
        r.stats = None;
        r.owner = Some(std::process::id());
        r.backfill = backfill;
        self.save_run(r)?;
        r.status = RunStatus::Running;
        r.start_time = Some(self.now_utc());
        self.save_run(r)
    }
}
