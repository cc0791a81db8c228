//! Schedules: crontab, loop, manual and depend triggers.
//!
//! Starting a job ([`Engine::start_job`]) writes its [`Schedule`] to the
//! catalog, so schedules survive restarts. A trigger becomes a pending batch
//! of the job; [`Engine::tick`] turns due crontab / loop times into pending
//! batches and starts pending batches of jobs that have no batch of their own
//! in flight (a job's batches never overlap: a trigger that comes while one
//! runs waits for it). The scheduler loop ([`Engine::start_scheduler`]) ticks
//! every second; tests move an injected clock and call `tick` themselves.
//!
//! Rules (README, "Scheduling"):
//! - crontab: the batch time is the cron time. Times missed while the engine
//!   was down or while the previous batch ran collapse into one batch at the
//!   latest missed time (catch-up off, like Kubernetes' CronJob).
//! - loop `Nm` / `Nh`: a batch at start, then every interval; missed
//!   intervals collapse the same way. `0` or empty: again as soon as the
//!   previous batch ends (at most one start per second).
//! - manual: each start is one batch at the start time with the start params;
//!   starts that come while a batch runs queue up.
//! - depend: after each successful first attempt of the upstream (or its
//!   automatic retry), with the upstream's batch time and params. A rerun of the upstream does not
//!   trigger the downstream again (rerun the downstream batch for that),
//!   except a backfill's: a backfilled batch that ends Successful runs its
//!   depend jobs, started or not, and theirs in turn.

use crate::catalog::{Kind, RunRecord};
use crate::engine::{Engine, to_json};
use chrono::{DateTime, Utc};
use pbatch_model::cron::Cron;
use pbatch_model::{Error, JobSpec, Result, RunStatus, SchedulerType, model_err};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Cron times walked at most when looking for the latest missed one.
const MAX_CATCH_UP_STEPS: usize = 100_000;

/// What made a batch pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// A crontab or loop time (these collapse into one).
    Time,
    /// A start of a manual job.
    Start,
    /// A successful upstream batch.
    Upstream,
}

/// A batch waiting to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// Its batch time.
    pub batch_time: DateTime<Utc>,
    /// Its params (name, value).
    pub params: Vec<(String, String)>,
    /// Where it came from.
    pub kind: TriggerKind,
    /// The backfill whose batch triggered it (depend batches of a backfill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<i64>,
}

/// A job's schedule as the catalog keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Started (crontab, loop, depend); manual jobs are never "enabled".
    pub enabled: bool,
    /// Start params used by time triggers.
    pub params: Vec<(String, String)>,
    /// The next crontab / loop time.
    pub next: Option<DateTime<Utc>>,
    /// Batches waiting to start, oldest first.
    pub pending: Vec<Trigger>,
    /// Failed batches waiting for an automatic retry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<PendingRetry>,
}

/// A failed batch waiting for its automatic retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRetry {
    /// The batch.
    pub run_id: i64,
    /// Which retry it will be (from 1).
    pub attempt: u32,
    /// When it may start.
    pub due: DateTime<Utc>,
    /// The process that waits to start it itself (`pbatch run`,
    /// `Engine::run_once`); the scheduler starts it only once that
    /// process is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<u32>,
}

impl Schedule {
    fn push_time(&mut self, batch_time: DateTime<Utc>) {
        let params = self.params.clone();
        match self.pending.last_mut() {
            Some(t) if t.kind == TriggerKind::Time => t.batch_time = batch_time,
            _ => self.pending.push(Trigger {
                batch_time,
                params,
                kind: TriggerKind::Time,
                backfill: None,
            }),
        }
    }
}

/// Seconds from `from` to `to` (negative when `to` is earlier).
fn secs_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// A field of the job's `scheduler.spec` (empty when there is none).
fn scheduler_field(spec: &JobSpec, field: impl Fn(&pbatch_model::SchedulerSpec) -> &String) -> String {
    spec.scheduler
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .map(|s| field(s).clone())
        .unwrap_or_default()
}

pub(crate) fn loop_interval(spec: &JobSpec) -> Duration {
    let text = scheduler_field(spec, |s| &s.loop_);
    // validated at create; a bad stored value runs as a one-year loop, never as 0
    let minutes = pbatch_model::names::loop_minutes(&text).unwrap_or(pbatch_model::names::MAX_LOOP_MINUTES);
    Duration::from_secs(minutes * 60)
}

pub(crate) fn cron_of(spec: &JobSpec) -> Result<Cron> {
    let expr = scheduler_field(spec, |s| &s.crontab);
    Cron::parse(&expr)
}

pub(crate) fn lock_err() -> Error {
    Error::internal("scheduler lock poisoned by an earlier panic")
}

impl Engine {
    /// A job's schedule (default when never started).
    pub fn schedule(&self, job: &str) -> Result<Schedule> {
        self.job(job)?;
        self.load_schedule(job)
    }

    pub(crate) fn load_schedule(&self, job: &str) -> Result<Schedule> {
        match self.catalog().get(Kind::Schedule, job)? {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| Error::internal(format!("schedule of job {job} in the catalog: {e}"))),
            None => Ok(Schedule::default()),
        }
    }

    pub(crate) fn save_schedule(&self, job: &str, s: &Schedule) -> Result<()> {
        let v = to_json(s)?;
        if !self.catalog().replace(Kind::Schedule, job, &v)? {
            self.catalog().insert(Kind::Schedule, job, &v)?;
        }
        Ok(())
    }

    /// The next cron time strictly after `t`, in the engine's zone, as cron
    /// does across DST: a wall-clock time in a skipped hour fires at the
    /// instant the gap moves it to (once, even when that is also the next
    /// hour's time), and one in a repeated hour fires at both of its
    /// instants, so an hourly job fires once per real hour.
    pub(crate) fn cron_next(&self, cron: &Cron, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // near a DST change, start before t's wall-clock time: in a repeated
        // hour, wall-clock times before it can still name instants after t
        let window = chrono::Duration::hours(3);
        let zone = self.zone();
        let near_change = zone.offset_at(t - window) != zone.offset_at(t + window);
        let mut local = zone.local(t).naive_local() - if near_change { window } else { chrono::Duration::zero() };
        let mut best: Option<DateTime<Utc>> = None;
        for _ in 0..10_000 {
            let n = cron.next_after(local)?;
            if let Some(b) = best
                && (!near_change || n > zone.local(b).naive_local() + window)
            {
                break;
            }
            if let Some(at) = zone.instants(n).into_iter().find(|at| *at > t) {
                best = Some(best.map_or(at, |b| b.min(at)));
            }
            local = n;
        }
        best
    }

    /// `POST /v2/jobs/<name>/actions/start`. crontab / loop / depend: enables
    /// the schedule (params are used by every batch it makes); manual: one
    /// batch now with `params`. Undeclared params are refused (`E18607`)
    /// before anything changes. Needs a tokio runtime.
    pub fn start_job(&self, job: &str, params: &[(String, String)]) -> Result<()> {
        let spec = self.job(job)?;
        let ty = spec.scheduler_type();
        if ty == SchedulerType::Depend && !params.is_empty() {
            return model_err!(
                WrongJobArgumentCount,
                "job {job} is a depend job: it runs with its upstream's params, so a start takes none"
            );
        }
        let now = self.now_utc();
        let root = self.root_of(job, &spec)?;
        self.expander(&root.1, params, self.zone().local(now))?;
        {
            let _g = self.inner.schedule_lock.lock().map_err(|_| lock_err())?;
            let mut s = self.load_schedule(job)?;
            match ty {
                SchedulerType::Manual => s.pending.push(Trigger {
                    batch_time: now,
                    params: params.to_vec(),
                    kind: TriggerKind::Start,
                    backfill: None,
                }),
                SchedulerType::Crontab => {
                    if !s.enabled {
                        s.next = self.cron_next(&cron_of(&spec)?, now);
                    }
                    s.enabled = true;
                    s.params = params.to_vec();
                }
                SchedulerType::Loop => {
                    if !s.enabled {
                        s.next = Some(now);
                    }
                    s.enabled = true;
                    s.params = params.to_vec();
                }
                _ => s.enabled = true,
            }
            self.save_schedule(job, &s)?;
        }
        tracing::info!(job, scheduler = %ty, "job started");
        self.tick().map(|_| ())
    }

    /// `POST /v2/jobs/<name>/actions/stop`: disables the schedule, drops
    /// pending batches and stops the job's batches in flight (they end
    /// Canceled; staged output is discarded).
    pub fn stop_job(&self, job: &str) -> Result<()> {
        self.job(job)?;
        {
            let _g = self.inner.schedule_lock.lock().map_err(|_| lock_err())?;
            let mut s = self.load_schedule(job)?;
            s.enabled = false;
            s.next = None;
            s.pending.clear();
            let retries = std::mem::take(&mut s.retries);
            self.save_schedule(job, &s)?;
            self.note_retries_canceled(job, &retries, "the job was stopped");
        }
        for run_id in self.active_runs(job)? {
            self.signal_stop(job, run_id)?;
        }
        tracing::info!(job, "job stopped");
        Ok(())
    }

    /// Called when a job is replaced: its next crontab / loop time is
    /// recomputed from the new spec at the next tick.
    pub(crate) fn reset_schedule(&self, job: &str, spec: &JobSpec) -> Result<()> {
        let _g = self.inner.schedule_lock.lock().map_err(|_| lock_err())?;
        let mut s = self.load_schedule(job)?;
        if !s.enabled {
            return Ok(());
        }
        s.next = match spec.scheduler_type() {
            SchedulerType::Crontab => self.cron_next(&cron_of(spec)?, self.now_utc()),
            // a loop keeps its rhythm; the new interval applies from the next batch
            SchedulerType::Loop => s.next,
            _ => None,
        };
        self.save_schedule(job, &s)
    }

    /// Called when a job is deleted: its schedule goes too.
    pub(crate) fn drop_schedule(&self, job: &str) -> Result<()> {
        let _g = self.inner.schedule_lock.lock().map_err(|_| lock_err())?;
        self.catalog().delete(Kind::Schedule, job)?;
        Ok(())
    }

    /// Turns due crontab / loop times into pending batches and starts every
    /// pending batch whose job has none in flight; returns the started
    /// `(job, runId)`s. Needs a tokio runtime.
    pub fn tick(&self) -> Result<Vec<(String, i64)>> {
        let now = self.now_utc();
        let _g = self.inner.schedule_lock.lock().map_err(|_| lock_err())?;
        let mut started = Vec::new();
        for (job, v) in self.catalog().list(Kind::Schedule, "")? {
            let mut s: Schedule =
                serde_json::from_value(v).map_err(|e| Error::internal(format!("schedule of job {job}: {e}")))?;
            let before = s.clone();
            let spec = match self.job(&job) {
                Ok(spec) => spec,
                Err(_) => {
                    self.catalog().delete(Kind::Schedule, &job)?;
                    continue;
                }
            };
            if s.enabled
                && let Err(e) = self.due_times(&job, &spec, &mut s, now)
            {
                tracing::warn!(job, error = %e, "schedule disabled");
                s.enabled = false;
            }
            if let Some(i) = s.retries.iter().position(|r| Engine::retry_due(r, now))
                && !self.busy(&job)?
            {
                let r = s.retries.remove(i);
                self.save_schedule(&job, &s)?;
                self.inner.metrics.lag(secs_between(r.due, now));
                match self.start_retry(&job, &r) {
                    Ok(Some(id)) => started.push((job.clone(), id)),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(job, run_id = r.run_id, error = %e, "a retry could not start"),
                }
                continue;
            }
            if !s.pending.is_empty() && !self.busy(&job)? {
                let t = s.pending.remove(0);
                // saved before the start: a crash between the two loses this
                // trigger rather than running it twice
                self.save_schedule(&job, &s)?;
                if t.kind != TriggerKind::Upstream {
                    self.inner.metrics.lag(secs_between(t.batch_time, now));
                }
                let at = self.zone().local(t.batch_time);
                let start = match t.backfill {
                    Some(id) => self.start_batch_for(&job, &t.params, at, id),
                    None => self.start_batch(&job, &t.params, at),
                };
                match start {
                    Ok(id) => started.push((job.clone(), id)),
                    Err(e) => tracing::warn!(job, error = %e, "a scheduled batch could not start"),
                }
                continue;
            }
            if s != before {
                self.save_schedule(&job, &s)?;
            }
        }
        // backfills after schedules: a scheduled batch of an idle job goes first
        self.advance_backfills()?;
        Ok(started)
    }

    fn due_times(&self, job: &str, spec: &JobSpec, s: &mut Schedule, now: DateTime<Utc>) -> Result<()> {
        match spec.scheduler_type() {
            SchedulerType::Crontab => {
                let cron = cron_of(spec)?;
                let Some(next) = s.next else {
                    s.next = self.cron_next(&cron, now);
                    return Ok(());
                };
                if next > now {
                    return Ok(());
                }
                // the latest missed time: one catch-up batch, not one per miss
                let mut latest = next;
                for _ in 0..MAX_CATCH_UP_STEPS {
                    match self.cron_next(&cron, latest) {
                        Some(t) if t <= now => latest = t,
                        _ => break,
                    }
                }
                if latest != next {
                    tracing::info!(job, missed_from = %next, batch_time = %latest, "missed cron times collapse into one batch");
                }
                s.push_time(latest);
                s.next = self.cron_next(&cron, now);
            }
            SchedulerType::Loop => {
                let every = chrono::Duration::from_std(loop_interval(spec)).unwrap_or_default();
                let next = s.next.unwrap_or(now);
                if next > now {
                    return Ok(());
                }
                if every.is_zero() {
                    if s.pending.is_empty() && !self.busy(job)? {
                        s.push_time(now);
                        s.next = Some(now + chrono::Duration::seconds(1));
                    }
                    return Ok(());
                }
                let missed = (now - next).num_seconds() / every.num_seconds().max(1);
                let latest = i32::try_from(missed)
                    .ok()
                    .and_then(|m| every.checked_mul(m))
                    .and_then(|d| next.checked_add_signed(d))
                    .unwrap_or(now);
                s.push_time(latest);
                s.next = latest.checked_add_signed(every);
            }
            _ => {}
        }
        Ok(())
    }

    /// After a batch ended: started depend jobs of a successful first attempt
    /// get a pending batch, then the scheduler starts what can start.
    pub(crate) fn after_batch(&self, r: &RunRecord) -> Result<()> {
        // a backfilled batch (a rerun too) runs its depend jobs, started or not
        let backfilled = r.backfill.is_some();
        // an automatic retry of the first attempt (every rerun so far was
        // one) stands for it; a retry of a rerun by hand does not
        let first = r.rerun_count == i64::from(r.retry);
        if r.status == RunStatus::Successful && (first || backfilled) {
            let _g = self.inner.schedule_lock.lock().map_err(|_| lock_err())?;
            for down in self.list_jobs(None, Some(&r.job))? {
                if down.spec.scheduler_type() != SchedulerType::Depend {
                    continue;
                }
                let mut s = self.load_schedule(&down.name)?;
                if !s.enabled && !backfilled {
                    continue;
                }
                s.pending.push(Trigger {
                    batch_time: r.batch_time,
                    params: r.params.clone(),
                    kind: TriggerKind::Upstream,
                    backfill: r.backfill,
                });
                self.save_schedule(&down.name, &s)?;
            }
        }
        self.tick().map(|_| ())
    }

    /// Starts the scheduler loop: a tick every second until the engine is
    /// dropped. Needs a tokio runtime.
    pub fn start_scheduler(&self) -> Result<()> {
        let weak = std::sync::Arc::downgrade(&self.inner);
        self.inner.tasks.lock().map_err(|_| lock_err())?.spawn(async move {
            loop {
                match weak.upgrade() {
                    Some(inner) => {
                        if let Err(e) = (Engine { inner }).tick() {
                            tracing::warn!(error = %e, "scheduler tick failed");
                        }
                    }
                    None => return,
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(())
    }
}
