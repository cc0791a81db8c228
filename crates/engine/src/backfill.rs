//! Backfills: one batch per scheduled time of a past range (Airflow's
//! `backfill`, Dagster's partition backfills).
//!
//! [`Engine::backfill`] lists the times (a crontab job's cron times in
//! `[from, to)`, a loop job's intervals from `from`, or explicit `times`)
//! and keeps the backfill in the catalog; every tick of the scheduler then
//! advances it:
//! - a time whose batch ended is marked done / failed / canceled;
//! - while fewer than `maxActive` batches of the job are in flight, the next
//!   waiting time starts. What happens to a time that already has a batch is
//!   decided then, by `reprocess`: `none` skips it, `failed` reruns a Failed
//!   or Canceled one, `all` reruns any (a rerun keeps its runId and bumps
//!   rerunCount). A time whose batch is in flight is skipped, or with `all`
//!   waits for it.
//!
//! Batches of different times of one backfill may run at once (up to
//! `maxActive`, default 1), each with its own staging and commit, unless
//! their file exports write the same folder (`$(date)/` of hourly batches):
//! such a time waits until the batch writing there ends.
//! Scheduled batches of the job still wait until none is in flight. A backfilled batch
//! that ends Successful (a rerun too) queues its depend jobs' batches, as a
//! scheduled one does, whether or not they were started.

use crate::catalog::{Kind, RunRecord};
use crate::engine::{Engine, to_json};
use crate::inputs::StoreTargets;
use crate::schedule::{cron_of, lock_err, loop_interval};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use pbatch_model::{
    BackfillItem, BackfillItemState, BackfillRequest, BackfillStatus, Error, Reprocess, Result, RunStatus,
    SchedulerType, model_err,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// A backfill as the catalog keeps it, keyed `<job>/<id, 10 digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Backfill {
    id: i64,
    job: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    reprocess: Reprocess,
    max_active: u32,
    params: Vec<(String, String)>,
    created: DateTime<Utc>,
    stopped: bool,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Item {
    t: DateTime<Utc>,
    state: BackfillItemState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run: Option<i64>,
}

fn key(job: &str, id: i64) -> String {
    format!("{job}/{id:010}")
}

impl Backfill {
    fn is_over(&self) -> bool {
        self.items.iter().all(|i| i.state.is_final())
    }

    fn count(&self, state: BackfillItemState) -> usize {
        self.items.iter().filter(|i| i.state == state).count()
    }
}

impl Engine {
    /// Parses a backfill time: RFC 3339, or `yyyy-MM-dd HH:mm:ss` /
    /// `yyyy-MM-dd'T'HH:mm:ss` / `yyyy-MM-dd` in the engine's zone.
    pub fn parse_time(&self, field: &str, s: &str) -> Result<DateTime<Utc>> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(t.to_utc());
        }
        let naive = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .or_else(|| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            });
        match naive {
            Some(n) => Ok(self.zone().from_local(n).to_utc()),
            None => model_err!(
                InvalidBackfill,
                "{field} {s:?} is not a time: use RFC 3339 (2026-11-25T08:00:00+08:00), \"2026-11-25 08:00:00\" or \"2026-11-25\" (engine zone)"
            ),
        }
    }

    /// The batch times a backfill of `job` covers, in order.
    fn backfill_times(&self, job: &str, req: &BackfillRequest) -> Result<Vec<DateTime<Utc>>> {
        let spec = self.job(job)?;
        let limit = if req.force {
            BackfillRequest::MAX_TIMES_FORCED
        } else {
            BackfillRequest::MAX_TIMES
        };
        let too_many = |n: &dyn std::fmt::Display| {
            let hint = if req.force {
                "narrow the range".to_string()
            } else {
                format!(
                    "narrow the range, or pass force (--force) to allow up to {}",
                    BackfillRequest::MAX_TIMES_FORCED
                )
            };
            model_err!(
                InvalidBackfill,
                "the backfill of job {job} spans {n} batch times, over the limit of {limit}: {hint}"
            )
        };
        if let Some(times) = &req.times {
            if req.from.is_some() || req.to.is_some() {
                return model_err!(InvalidBackfill, "give times, or from and to, not both");
            }
            if times.is_empty() {
                return model_err!(InvalidBackfill, "times is empty");
            }
            if times.len() > limit {
                return too_many(&times.len());
            }
            let mut out = BTreeSet::new();
            for (i, t) in times.iter().enumerate() {
                out.insert(self.parse_time(&format!("times[{i}]"), t)?);
            }
            return Ok(out.into_iter().collect());
        }
        let (Some(from), Some(to)) = (&req.from, &req.to) else {
            return model_err!(
                InvalidBackfill,
                "give from and to (the range [from, to)), or times; from {:?}, to {:?}",
                req.from.as_deref().unwrap_or(""),
                req.to.as_deref().unwrap_or("")
            );
        };
        let (from, to) = (self.parse_time("from", from)?, self.parse_time("to", to)?);
        if from >= to {
            return model_err!(InvalidBackfill, "from {from} is not before to {to}");
        }
        let mut out = Vec::new();
        match spec.scheduler_type() {
            SchedulerType::Crontab => {
                let cron = cron_of(&spec)?;
                let mut t = self.cron_next(&cron, from - chrono::Duration::nanoseconds(1));
                while let Some(at) = t.filter(|at| *at < to) {
                    if out.len() == limit {
                        return too_many(&format!("more than {limit}"));
                    }
                    out.push(at);
                    t = self.cron_next(&cron, at);
                }
            }
            SchedulerType::Loop => {
                let every = chrono::Duration::from_std(loop_interval(&spec)).unwrap_or_default();
                if every.is_zero() {
                    return model_err!(
                        InvalidBackfill,
                        "job {job} loops without an interval, so it has no batch times in a range: give times"
                    );
                }
                let mut at = from;
                while at < to {
                    if out.len() == limit {
                        return too_many(&format!("more than {limit}"));
                    }
                    out.push(at);
                    at += every;
                }
            }
            SchedulerType::Depend => {
                return model_err!(
                    InvalidBackfill,
                    "job {job} is a depend job: backfill its upstream, and it runs after each of those batches"
                );
            }
            _ => {
                return model_err!(
                    InvalidBackfill,
                    "job {job} is a manual job, which has no schedule: give its batch times as times"
                );
            }
        }
        if out.is_empty() {
            return model_err!(
                InvalidBackfill,
                "job {job} has no scheduled time in [{}, {})",
                self.fmt_time(from),
                self.fmt_time(to)
            );
        }
        Ok(out)
    }

    /// `POST /v2/jobs/<job>/actions/backfill` (a pbatch addition): records a
    /// backfill of `job` and starts its first batches. Refused (`E18690`)
    /// when it has no times or more than 10,000 without `force`; params are
    /// checked as a start checks them. Needs a tokio runtime.
    pub fn backfill(&self, job: &str, req: &BackfillRequest) -> Result<BackfillStatus> {
        let times = self.backfill_times(job, req)?;
        let params: Vec<(String, String)> = req
            .params
            .iter()
            .flatten()
            .filter_map(|p| p.value.clone().map(|v| (p.name.clone(), v)))
            .collect();
        let spec = self.job(job)?;
        if spec.scheduler_type() == SchedulerType::Depend && !params.is_empty() {
            return model_err!(WrongJobArgumentCount, "job {job} is a depend job; it takes no params");
        }
        let root = self.root_of(job, &spec)?;
        self.expander(&root.1, &params, self.zone().local(times[0]))?;
        let max_active = req.max_active.unwrap_or(1);
        if max_active == 0 {
            return model_err!(InvalidBackfill, "maxActive 0: at least one batch must run at a time");
        }
        let (from, to) = match (&req.from, &req.to) {
            (Some(f), Some(t)) => (Some(self.parse_time("from", f)?), Some(self.parse_time("to", t)?)),
            _ => (None, None),
        };
        let b = {
            let _g = self.inner.schedule_lock.lock().map_err(|_| lock_err())?;
            let id = self
                .catalog()
                .list(Kind::Backfill, &format!("{job}/"))?
                .last()
                .and_then(|(k, _)| k.rsplit('/').next()?.parse::<i64>().ok())
                .unwrap_or(0)
                + 1;
            let b = Backfill {
                id,
                job: job.to_string(),
                from,
                to,
                reprocess: req.reprocess,
                max_active,
                params,
                created: self.now_utc(),
                stopped: false,
                items: times
                    .into_iter()
                    .map(|t| Item {
                        t,
                        state: BackfillItemState::Waiting,
                        run: None,
                    })
                    .collect(),
            };
            if !self.catalog().insert(Kind::Backfill, &key(job, id), &to_json(&b)?)? {
                return Err(Error::internal(format!("backfill {id} of job {job} exists already")));
            }
            b
        };
        tracing::info!(job, id = b.id, times = b.items.len(), reprocess = %b.reprocess, max_active, "backfill created");
        self.tick()?;
        self.backfill_status(job, b.id)
    }

    fn load_backfill(&self, job: &str, id: i64) -> Result<Backfill> {
        self.job(job)?;
        match self.catalog().get(Kind::Backfill, &key(job, id))? {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| Error::internal(format!("backfill {id} of job {job} in the catalog: {e}"))),
            None => model_err!(BackfillNotFound, "job {job} has no backfill {id}"),
        }
    }

    fn status_of(&self, b: &Backfill, with_items: bool) -> BackfillStatus {
        let status = if b.stopped {
            "Stopped"
        } else if b.is_over() {
            "Done"
        } else {
            "Running"
        };
        BackfillStatus {
            id: b.id,
            job: b.job.clone(),
            status: status.to_string(),
            from: b.from.map(|t| self.fmt_time(t)),
            to: b.to.map(|t| self.fmt_time(t)),
            reprocess: b.reprocess,
            max_active: b.max_active,
            create_time: self.fmt_time(b.created),
            total: b.items.len(),
            done: b.count(BackfillItemState::Done),
            failed: b.count(BackfillItemState::Failed),
            canceled: b.count(BackfillItemState::Canceled),
            skipped: b.count(BackfillItemState::Skipped),
            running: b.count(BackfillItemState::Running),
            waiting: b.count(BackfillItemState::Waiting),
            batches: if with_items {
                b.items
                    .iter()
                    .map(|i| BackfillItem {
                        batch_time: self.fmt_time(i.t),
                        state: i.state,
                        run_id: i.run,
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// One backfill with every time's state.
    pub fn backfill_status(&self, job: &str, id: i64) -> Result<BackfillStatus> {
        Ok(self.status_of(&self.load_backfill(job, id)?, true))
    }

    /// `GET /v2/jobs/<job>/backfills`: the job's backfills with their
    /// progress, newest first.
    pub fn backfills(&self, job: &str) -> Result<Vec<BackfillStatus>> {
        self.job(job)?;
        let mut out = Vec::new();
        for (k, v) in self
            .catalog()
            .list(Kind::Backfill, &format!("{job}/"))?
            .into_iter()
            .rev()
        {
            let b: Backfill =
                serde_json::from_value(v).map_err(|e| Error::internal(format!("backfill {k} in the catalog: {e}")))?;
            out.push(self.status_of(&b, false));
        }
        Ok(out)
    }

    /// `POST /v2/jobs/<job>/backfills/<id>/stop`: no more of its batches
    /// start (waiting times become canceled), and those in flight are
    /// stopped (they end Canceled; nothing of theirs is committed).
    pub fn stop_backfill(&self, job: &str, id: i64) -> Result<BackfillStatus> {
        let runs: Vec<i64> = {
            let _g = self.inner.schedule_lock.lock().map_err(|_| lock_err())?;
            let mut b = self.load_backfill(job, id)?;
            b.stopped = true;
            for i in &mut b.items {
                if i.state == BackfillItemState::Waiting {
                    i.state = BackfillItemState::Canceled;
                }
            }
            self.catalog().replace(Kind::Backfill, &key(job, id), &to_json(&b)?)?;
            b.items
                .iter()
                .filter(|i| i.state == BackfillItemState::Running)
                .filter_map(|i| i.run)
                .collect()
        };
        self.cancel_retries(job, |p| runs.contains(&p.run_id), "the backfill was stopped")?;
        for run in runs {
            self.signal_stop(job, run)?;
        }
        tracing::info!(job, id, "backfill stopped");
        self.backfill_status(job, id)
    }

    /// Advances every unfinished backfill (called by `tick`, which holds
    /// the schedule lock).
    pub(crate) fn advance_backfills(&self) -> Result<()> {
        let mut runs_of: HashMap<String, HashMap<i64, RunRecord>> = HashMap::new();
        for (k, v) in self.catalog().list(Kind::Backfill, "")? {
            let mut b: Backfill =
                serde_json::from_value(v).map_err(|e| Error::internal(format!("backfill {k} in the catalog: {e}")))?;
            if b.is_over() {
                continue;
            }
            let before = b.clone();
            let runs = match runs_of.entry(b.job.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    self.catalog()
                        .runs(&b.job)?
                        .into_iter()
                        .map(|r| (r.run_id, r))
                        .collect(),
                ),
            };
            if let Err(e) = self.advance(&mut b, runs) {
                tracing::warn!(job = %b.job, id = b.id, error = %e, "backfill could not advance");
            }
            if b != before {
                self.catalog().replace(Kind::Backfill, &k, &to_json(&b)?)?;
                if b.is_over() {
                    let s = self.status_of(&b, false);
                    tracing::info!(job = %b.job, id = b.id, done = s.done, failed = s.failed, canceled = s.canceled, skipped = s.skipped, "backfill ended");
                }
            }
        }
        Ok(())
    }

    /// What a batch of `job` at `t` with `params` may write: its file
    /// exports' scopes ([`pbatch_sink::export_scope`]).
    fn scopes(&self, job: &str, params: &[(String, String)], t: DateTime<Utc>) -> Result<Vec<String>> {
        let spec = self.job(job)?;
        let root = self.root_of(job, &spec)?;
        let expander = self.expander(&root.1, params, self.zone().local(t))?;
        let manual = spec.scheduler_type() == SchedulerType::Manual;
        let targets = StoreTargets(&self.inner.sources.stores);
        let mut out = Vec::new();
        for (name, export) in self.exports(job)? {
            out.extend(pbatch_sink::export_scope(&name, &export, &expander, manual, &targets)?);
        }
        Ok(out)
    }

    fn advance(&self, b: &mut Backfill, runs: &mut HashMap<i64, RunRecord>) -> Result<()> {
        // batches that ended (a Failed one waiting for its retry has not)
        let retrying = self.retrying(&b.job)?;
        for i in b.items.iter_mut().filter(|i| i.state == BackfillItemState::Running) {
            let status = i.run.and_then(|id| runs.get(&id)).map(|r| r.status);
            i.state = match status {
                Some(RunStatus::Failed) if i.run.is_some_and(|id| retrying.contains(&id)) => continue,
                Some(RunStatus::Successful) => BackfillItemState::Done,
                Some(RunStatus::Failed) | None => BackfillItemState::Failed,
                Some(RunStatus::Canceled) => BackfillItemState::Canceled,
                Some(_) => continue,
            };
        }
        if b.stopped {
            return Ok(());
        }
        let active = self.active_runs(&b.job)?;
        let mut in_flight = active.len();
        // what the job's batches in flight write: a batch that would write
        // there too waits (two batches must not commit into one folder at once)
        let mut busy: Vec<String> = Vec::new();
        if b.max_active > 1 {
            for id in &active {
                if let Some(r) = self.catalog().get_run(&b.job, *id)? {
                    busy.extend(self.scopes(&b.job, &r.params, r.batch_time).unwrap_or_default());
                }
            }
        }
        let overlaps = |busy: &[String], mine: &[String]| {
            mine.iter().any(|m| {
                busy.iter()
                    .any(|o| m.starts_with(o.as_str()) || o.starts_with(m.as_str()))
            })
        };
        // the latest batch of each batch time
        let mut latest: HashMap<DateTime<Utc>, &RunRecord> = HashMap::new();
        for r in runs.values() {
            let e = latest.entry(r.batch_time).or_insert(r);
            if r.run_id > e.run_id {
                *e = r;
            }
        }
        let mut started: Vec<(usize, i64)> = Vec::new();
        let mut skipped: Vec<usize> = Vec::new();
        let mut failed: Vec<usize> = Vec::new();
        for (n, i) in b.items.iter().enumerate() {
            if in_flight >= b.max_active as usize {
                break;
            }
            if i.state != BackfillItemState::Waiting {
                continue;
            }
            let mine = if b.max_active > 1 {
                self.scopes(&b.job, &b.params, i.t).unwrap_or_default()
            } else {
                Vec::new()
            };
            if overlaps(&busy, &mine) {
                continue;
            }
            let start = match latest.get(&i.t) {
                None => self.start_batch_for(&b.job, &b.params, self.zone().local(i.t), b.id),
                Some(r) if !r.status.is_final() => {
                    if b.reprocess == Reprocess::All {
                        // rerun once its batch has ended
                        continue;
                    }
                    skipped.push(n);
                    continue;
                }
                Some(r) => {
                    let rerun = match b.reprocess {
                        Reprocess::None => false,
                        Reprocess::Failed => r.status != RunStatus::Successful,
                        Reprocess::All => true,
                    };
                    if !rerun {
                        skipped.push(n);
                        continue;
                    }
                    // the rerun replaces a queued automatic retry (the
                    // caller, tick, holds the schedule lock)
                    let mut s = self.load_schedule(&b.job)?;
                    if s.retries.iter().any(|p| p.run_id == r.run_id) {
                        s.retries.retain(|p| p.run_id != r.run_id);
                        self.save_schedule(&b.job, &s)?;
                    }
                    self.restart((*r).clone(), Some(b.id), 0)
                }
            };
            match start {
                Ok(id) => {
                    started.push((n, id));
                    in_flight += 1;
                    busy.extend(mine);
                }
                Err(e) => {
                    tracing::warn!(job = %b.job, id = b.id, batch_time = %i.t, error = %e, "a backfill batch could not start");
                    failed.push(n);
                }
            }
        }
        for n in failed {
            b.items[n].state = BackfillItemState::Failed;
        }
        for n in skipped {
            b.items[n].state = BackfillItemState::Skipped;
            b.items[n].run = latest.get(&b.items[n].t).map(|r| r.run_id);
        }
        for (n, id) in started {
            b.items[n].state = BackfillItemState::Running;
            b.items[n].run = Some(id);
            if let Some(r) = self.catalog().get_run(&b.job, id)? {
                runs.insert(id, r);
            }
        }
        Ok(())
    }

    /// Drives a backfill to its end in this process (the CLI's `pbatch
    /// backfill`): ticks the job and its depend jobs, reporting progress,
    /// until the backfill is over and the depend batches it queued have run.
    /// Needs a tokio runtime.
    pub async fn drive_backfill(
        &self,
        job: &str,
        id: i64,
        mut on_progress: impl FnMut(&BackfillStatus),
    ) -> Result<BackfillStatus> {
        let downstream = self.depend_descendants(job)?;
        loop {
            self.tick()?;
            let s = self.backfill_status(job, id)?;
            on_progress(&s);
            if s.status != "Running" && s.running == 0 {
                let mut idle = self.active_runs(job)?.is_empty();
                for d in &downstream {
                    let s = self.schedule(d)?;
                    idle = idle && self.active_runs(d)?.is_empty() && s.pending.is_empty() && s.retries.is_empty();
                }
                if idle {
                    return Ok(s);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Depend jobs below `job`, transitively.
    fn depend_descendants(&self, job: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let mut todo = vec![job.to_string()];
        while let Some(j) = todo.pop() {
            for d in self.list_jobs(None, Some(&j))? {
                if d.spec.scheduler_type() == SchedulerType::Depend && !out.contains(&d.name) {
                    todo.push(d.name.clone());
                    out.push(d.name);
                }
            }
        }
        Ok(out)
    }
}
