//! Durable metadata behind a small trait.

use chrono::{DateTime, Utc};
use pbatch_model::{Error, Result, RunStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::RwLock;

/// One batch of a job, as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Job.
    pub job: String,
    /// Increasing per job, from 1.
    pub run_id: i64,
    /// The scheduled time; never changes, reruns included.
    pub batch_time: DateTime<Utc>,
    /// When the current attempt started.
    pub start_time: Option<DateTime<Utc>>,
    /// When it ended.
    pub end_time: Option<DateTime<Utc>>,
    /// Status.
    pub status: RunStatus,
    /// Progress or error.
    pub message: String,
    /// Reruns so far.
    pub rerun_count: i64,
    /// Start params of the batch (name, value).
    pub params: Vec<(String, String)>,
    /// The process running the batch (crash recovery checks it is alive).
    #[serde(default)]
    pub owner: Option<u32>,
    /// The backfill that started (or last reran) it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<i64>,
    /// Which automatic retry the current attempt is (0: not a retry).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry: u32,
    /// What the last Successful attempt read and wrote (`None` before one,
    /// and while another attempt runs or after it failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<RunStats>,
}

/// What a Successful batch read and wrote, kept with its run record for the
/// console's run page and history table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_samples: Vec<String>,
    /// Per export.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<ExportStats>,
    /// Where the batch ran: `local`, or `cluster df://host:port` (empty in
    /// records written before it was kept).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub placement: String,
}

/// What one export committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportStats {
    /// Export name.
    pub export: String,
    /// The first [`MAX_KEPT_KEYS`] keys written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// How many keys were written in all.
    pub files: usize,
    /// Rows written.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
    /// `ignore` found output and wrote nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// Keys of an export a run record keeps (a partitioned export may write
/// thousands; the record stays small).
pub const MAX_KEPT_KEYS: usize = 100;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Kinds of resources the catalog holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Datasources, keyed by name.
    Datasource,
    /// Jobs, keyed by name.
    Job,
    /// Exports, keyed by `<job>/<export>`.
    Export,
    /// User variables.
    Variable,
    /// Workflows.
    Workflow,
    /// Job schedules (started or not, pending batches), keyed by job.
    Schedule,
    /// Backfills, keyed `<job>/<id>` (id zero-padded to 10 digits).
    Backfill,
    /// Batch logs, keyed `<job>/<runId>` (runId zero-padded to 10 digits).
    RunLog,
}

/// Where resources are kept. Values are the resources' JSON bodies, so a
/// backend stores exactly what the API returns.
///
/// `insert` must fail with `Ok(false)` when the key exists, atomically.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// Adds a resource; `Ok(false)` if `key` exists.
    fn insert(&self, kind: Kind, key: &str, value: &serde_json::Value) -> Result<bool>;
    /// Replaces a resource; `Ok(false)` if `key` does not exist.
    fn replace(&self, kind: Kind, key: &str, value: &serde_json::Value) -> Result<bool>;
    /// Reads a resource.
    fn get(&self, kind: Kind, key: &str) -> Result<Option<serde_json::Value>>;
    /// Every resource of a kind whose key starts with `prefix`, sorted by key.
    fn list(&self, kind: Kind, prefix: &str) -> Result<Vec<(String, serde_json::Value)>>;
    /// Deletes a resource; `Ok(false)` if it did not exist.
    fn delete(&self, kind: Kind, key: &str) -> Result<bool>;

    /// Adds a run with the next `run_id` of its job (the record's own
    /// `run_id` is ignored) and returns the id, atomically.
    fn insert_run(&self, run: &RunRecord) -> Result<i64>;
    /// Replaces a run (same job and id); `Ok(false)` if it does not exist.
    fn update_run(&self, run: &RunRecord) -> Result<bool>;
    /// One run.
    fn get_run(&self, job: &str, run_id: i64) -> Result<Option<RunRecord>>;
    /// Every run of a job, by `run_id`.
    fn runs(&self, job: &str) -> Result<Vec<RunRecord>>;
    /// Runs of any job in one of `statuses` (crash recovery).
    fn runs_in(&self, statuses: &[RunStatus]) -> Result<Vec<RunRecord>>;
    /// Deletes every run of a job (the job was deleted); returns how many.
    fn delete_runs(&self, job: &str) -> Result<usize>;
}

/// A catalog in memory (used by `pbatch run`, and in tests).
#[derive(Debug, Default)]
pub struct MemoryCatalog {
    map: RwLock<BTreeMap<(Kind, String), serde_json::Value>>,
    runs: RwLock<BTreeMap<(String, i64), RunRecord>>,
}

fn poisoned() -> Error {
    Error::internal("catalog lock poisoned by an earlier panic")
}

impl Catalog for MemoryCatalog {
    fn insert(&self, kind: Kind, key: &str, value: &serde_json::Value) -> Result<bool> {
        let mut m = self.map.write().map_err(|_| poisoned())?;
        let k = (kind, key.to_string());
        if m.contains_key(&k) {
            return Ok(false);
        }
        m.insert(k, value.clone());
        Ok(true)
    }

    fn replace(&self, kind: Kind, key: &str, value: &serde_json::Value) -> Result<bool> {
        let mut m = self.map.write().map_err(|_| poisoned())?;
        match m.get_mut(&(kind, key.to_string())) {
            Some(v) => {
                *v = value.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn get(&self, kind: Kind, key: &str) -> Result<Option<serde_json::Value>> {
        let m = self.map.read().map_err(|_| poisoned())?;
        Ok(m.get(&(kind, key.to_string())).cloned())
    }

    fn list(&self, kind: Kind, prefix: &str) -> Result<Vec<(String, serde_json::Value)>> {
        let m = self.map.read().map_err(|_| poisoned())?;
        Ok(m.iter()
            .filter(|((k, key), _)| *k == kind && key.starts_with(prefix))
            .map(|((_, key), v)| (key.clone(), v.clone()))
            .collect())
    }

    fn delete(&self, kind: Kind, key: &str) -> Result<bool> {
        let mut m = self.map.write().map_err(|_| poisoned())?;
        Ok(m.remove(&(kind, key.to_string())).is_some())
    }

    fn insert_run(&self, run: &RunRecord) -> Result<i64> {
        let mut m = self.runs.write().map_err(|_| poisoned())?;
        let last = m
            .range((run.job.clone(), i64::MIN)..=(run.job.clone(), i64::MAX))
            .next_back()
            .map(|((_, id), _)| *id)
            .unwrap_or(0);
        let mut r = run.clone();
        r.run_id = last + 1;
        m.insert((r.job.clone(), r.run_id), r);
        Ok(last + 1)
    }

    fn update_run(&self, run: &RunRecord) -> Result<bool> {
        let mut m = self.runs.write().map_err(|_| poisoned())?;
        match m.get_mut(&(run.job.clone(), run.run_id)) {
            Some(r) => {
                *r = run.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn get_run(&self, job: &str, run_id: i64) -> Result<Option<RunRecord>> {
        let m = self.runs.read().map_err(|_| poisoned())?;
        Ok(m.get(&(job.to_string(), run_id)).cloned())
    }

    fn runs(&self, job: &str) -> Result<Vec<RunRecord>> {
        let m = self.runs.read().map_err(|_| poisoned())?;
        Ok(m.range((job.to_string(), i64::MIN)..=(job.to_string(), i64::MAX))
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn runs_in(&self, statuses: &[RunStatus]) -> Result<Vec<RunRecord>> {
        let m = self.runs.read().map_err(|_| poisoned())?;
        Ok(m.values().filter(|r| statuses.contains(&r.status)).cloned().collect())
    }

    fn delete_runs(&self, job: &str) -> Result<usize> {
        let mut m = self.runs.write().map_err(|_| poisoned())?;
        let before = m.len();
        m.retain(|(j, _), _| j != job);
        Ok(before - m.len())
    }
}
