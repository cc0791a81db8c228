//! Run records and the history query.

use crate::catalog::RunRecord;
use crate::engine::Engine;
use chrono::{DateTime, Utc};
use pbatch_model::{GetJobHistoryOutput, HistoryQuery, JobHistory, Result, RunStatus, model_err};

/// The wire format of history times (as `$(now)`), in the engine's zone.
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Default and largest history page.
const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1000;

impl Engine {
    pub(crate) fn now_utc(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from(self.inner.clock.now())
    }

    pub(crate) fn fmt_time(&self, t: DateTime<Utc>) -> String {
        self.zone().local(t).format(TIME_FORMAT).to_string()
    }

    /// One history item of a run: while it runs, `endTime` is now and
    /// `duration` counts up (the seed's rule).
    pub fn history_item(&self, r: &RunRecord) -> JobHistory {
        let start = r.start_time.unwrap_or(r.batch_time);
        // endTime stays empty until the run ends; a running batch's duration
        // counts up to now, a waiting one's is 0
        let until = match r.end_time {
            Some(e) => Some(e),
            None if r.status == RunStatus::Ready => None,
            None => Some(self.now_utc()),
        };
        JobHistory {
            run_id: r.run_id,
            batch_time: self.fmt_time(r.batch_time),
            start_time: self.fmt_time(start),
            end_time: r.end_time.map(|e| self.fmt_time(e)),
            duration: until.map(|e| (e - start).num_seconds().max(0)).unwrap_or(0),
            status: r.status,
            message: r.message.clone(),
            rerun_count: r.rerun_count,
        }
    }

    /// Every run record of a job, by runId (the console reads their stats).
    pub fn runs(&self, job: &str) -> Result<Vec<RunRecord>> {
        self.job(job)?;
        let mut runs = self.catalog().runs(job)?;
        runs.sort_by_key(|r| r.run_id);
        Ok(runs)
    }

    /// One run record of a job (`None`: the job has no such batch).
    pub fn run(&self, job: &str, run_id: i64) -> Result<Option<RunRecord>> {
        self.job(job)?;
        self.catalog().get_run(job, run_id)
    }

    /// `GET /v2/jobs/<name>/history`.
    pub fn history(&self, job: &str, q: &HistoryQuery) -> Result<GetJobHistoryOutput> {
        self.job(job)?;
        let mut runs = self.catalog().runs(job)?;
        if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
            let status = RunStatus::parse(s)?;
            runs.retain(|r| r.status == status);
        }
        match q.run_id {
            Some(-1) => {
                let last = runs.iter().map(|r| r.run_id).max();
                runs.retain(|r| Some(r.run_id) == last);
            }
            Some(id) if id < -1 || id == 0 => {
                return model_err!(
                    RunNotFound,
                    "runId {id} is invalid: use a batch id or -1 for the latest"
                );
            }
            Some(id) => runs.retain(|r| r.run_id == id),
            None => {}
        }
        let sort = q.sort_by.as_deref().filter(|s| !s.is_empty()).unwrap_or("-runId");
        let (desc, key) = match sort.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, sort),
        };
        match key {
            "runId" => runs.sort_by_key(|r| r.run_id),
            "startTime" => runs.sort_by_key(|r| (r.start_time, r.run_id)),
            "endTime" => runs.sort_by_key(|r| (r.end_time.is_none(), r.end_time, r.run_id)),
            "batchTime" => runs.sort_by_key(|r| (r.batch_time, r.run_id)),
            other => {
                return model_err!(
                    InvalidRequestBody,
                    "sortBy {other:?} is invalid; use runId, startTime, endTime or batchTime, with - for descending"
                );
            }
        }
        if desc {
            runs.reverse();
        }
        let size = q
            .size
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_PAGE_SIZE)
            .min(MAX_PAGE_SIZE);
        let page = q.page.filter(|p| *p > 0).unwrap_or(1);
        let total = runs.len() as i64;
        let skip = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
        let history = runs
            .iter()
            .skip(skip)
            .take(usize::try_from(size).unwrap_or(0))
            .map(|r| self.history_item(r))
            .collect();
        Ok(GetJobHistoryOutput { total, history })
    }
}
