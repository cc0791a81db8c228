//! Automatic retries (Airflow's `retries`, Databricks' task retries).
//!
//! A batch that ends Failed with an error a second try can pass (storage
//! or network: `E18338`, `E18337`; a service export answering 5xx or not
//! answering; see [`pbatch_model::Error::is_transient`]) is run again as a
//! rerun: same runId, `rerunCount` + 1. The job's `retries` (else `[engine]
//! batch_retries` / `retry_delay`) say how often and after how long; each
//! retry waits twice as long as the one before.
//!
//! Background batches queue their retry in the job's schedule, where the
//! scheduler's tick starts it once due and the job is idle (so it survives a
//! restart). [`Engine::run_once_with`] retries inline, waiting in place.
//! A stop of the job or of the batch, or a rerun, cancels a pending retry.

use crate::catalog::RunRecord;
use crate::engine::Engine;
use crate::schedule::{PendingRetry, lock_err};
use chrono::{DateTime, Utc};
use pbatch_model::{Error, JobSpec, Result, Retries, RunStatus};
use std::time::Duration;

/// The retry a failed attempt gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NextRetry {
    /// Which retry (from 1).
    pub attempt: u32,
    /// Of how many.
    pub of: u32,
    /// The wait before it.
    pub delay: Duration,
}

impl Engine {
    /// The job's retries: its own, else the engine's.
    pub(crate) fn retries_of(&self, spec: &JobSpec) -> Retries {
        spec.retries.unwrap_or(Retries {
            count: self.inner.config.engine.batch_retries,
            delay_seconds: self.inner.config.engine.retry_delay,
        })
    }

    /// After an attempt of `r` failed with `e`: its next retry, if it gets one.
    pub(crate) fn next_retry(&self, r: &RunRecord, e: &Error) -> Option<NextRetry> {
        if !e.is_transient() {
            return None;
        }
        let policy = self.retries_of(&self.job(&r.job).ok()?);
        let attempt = r.retry + 1;
        (attempt <= policy.count).then(|| NextRetry {
            attempt,
            of: policy.count,
            delay: policy.delay(attempt),
        })
    }

    /// "retry 1 of 3" when the attempt of `r` is a retry.
    pub(crate) fn retry_label(&self, r: &RunRecord) -> Option<String> {
        if r.retry == 0 {
            return None;
        }
        let of = self.job(&r.job).map(|s| self.retries_of(&s).count).unwrap_or(r.retry);
        Some(format!("retry {} of {}", r.retry, of.max(r.retry)))
    }

    /// Queues retry `next` of batch `run_id` of `job`, due at `due`;
    /// `owner`: the process that waits to start it itself.
    pub(crate) fn queue_retry(
        &self,
        job: &str,
        run_id: i64,
        next: NextRetry,
        due: DateTime<Utc>,
        owner: Option<u32>,
    ) -> Result<()> {
        let _g = self.inner.schedule_lock.lock().map_err(|_| lock_err())?;
        let mut s = self.load_schedule(job)?;
        s.retries.retain(|r| r.run_id != run_id);
        s.retries.push(PendingRetry {
            run_id,
            attempt: next.attempt,
            due,
            owner,
        });
        self.save_schedule(job, &s)?;
        tracing::info!(job, run_id, attempt = next.attempt, of = next.of, %due, "batch failed; retry queued");
        Ok(())
    }

    /// Takes the retry of batch `run_id` off the job's schedule; `false`
    /// when it is not there (a stop or rerun canceled it).
    pub(crate) fn take_retry(&self, job: &str, run_id: i64) -> Result<bool> {
        let _g = self.inner.schedule_lock.lock().map_err(|_| lock_err())?;
        let mut s = self.load_schedule(job)?;
        let before = s.retries.len();
        s.retries.retain(|r| r.run_id != run_id);
        if s.retries.len() == before {
            return Ok(false);
        }
        self.save_schedule(job, &s)?;
        Ok(true)
    }

    /// Whether the scheduler may start `p` now: due, and not waited for by
    /// a live process of its own (`pbatch run` retries in place).
    pub(crate) fn retry_due(p: &PendingRetry, now: DateTime<Utc>) -> bool {
        p.due <= now && p.owner.is_none_or(|pid| !crate::engine::process_alive(pid))
    }

    /// Starts a due retry (the caller holds the schedule lock and has taken
    /// it off the schedule): `None` when the batch is no longer Failed (it
    /// was rerun or deleted meanwhile).
    pub(crate) fn start_retry(&self, job: &str, p: &PendingRetry) -> Result<Option<i64>> {
        match self.catalog().get_run(job, p.run_id)? {
            Some(r) if r.status == RunStatus::Failed => {
                let backfill = r.backfill;
                self.restart(r, backfill, p.attempt).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Takes the pending retries of `job` that `which` selects off its
    /// schedule and says so in their batches' messages; returns them.
    pub(crate) fn cancel_retries(
        &self,
        job: &str,
        which: impl Fn(&PendingRetry) -> bool,
        why: &str,
    ) -> Result<Vec<PendingRetry>> {
        let canceled = {
            let _g = self.inner.schedule_lock.lock().map_err(|_| lock_err())?;
            let mut s = self.load_schedule(job)?;
            let (canceled, kept): (Vec<_>, Vec<_>) = s.retries.drain(..).partition(|r| which(r));
            s.retries = kept;
            if !canceled.is_empty() {
                self.save_schedule(job, &s)?;
            }
            canceled
        };
        self.note_retries_canceled(job, &canceled, why);
        Ok(canceled)
    }

    /// Appends "the retry was canceled: <why>" to the batches' messages.
    pub(crate) fn note_retries_canceled(&self, job: &str, retries: &[PendingRetry], why: &str) {
        for p in retries {
            let noted = self.catalog().get_run(job, p.run_id).and_then(|r| match r {
                Some(mut r) if r.status == RunStatus::Failed => {
                    r.message = format!("{}; retry {} was canceled: {why}", r.message, p.attempt);
                    self.save_run(&r)
                }
                _ => Ok(()),
            });
            if let Err(e) = noted {
                tracing::warn!(job, run_id = p.run_id, error = %e, "noting a canceled retry failed");
            }
        }
    }

    /// The batches of `job` waiting for a retry.
    pub(crate) fn retrying(&self, job: &str) -> Result<Vec<i64>> {
        Ok(self.load_schedule(job)?.retries.iter().map(|r| r.run_id).collect())
    }
}
