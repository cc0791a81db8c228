//! Runs: history, batch stop and rerun.

use crate::de::Keys;
use crate::{ErrorCode, Result, model_err};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// A batch's status (the seed's state table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunStatus {
    /// Created, not started.
    Ready,
    /// Computing and exporting.
    Running,
    /// Every export committed.
    Successful,
    /// Failed; see the message.
    Failed,
    /// Stop requested, not yet stopped.
    Cancelling,
    /// Stopped.
    Canceled,
    /// Rerun requested, not yet running.
    Restarting,
}

impl RunStatus {
    /// All statuses.
    pub const ALL: &'static [RunStatus] = &[
        RunStatus::Ready,
        RunStatus::Running,
        RunStatus::Successful,
        RunStatus::Failed,
        RunStatus::Cancelling,
        RunStatus::Canceled,
        RunStatus::Restarting,
    ];

    /// The wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ready => "Ready",
            RunStatus::Running => "Running",
            RunStatus::Successful => "Successful",
            RunStatus::Failed => "Failed",
            RunStatus::Cancelling => "Cancelling",
            RunStatus::Canceled => "Canceled",
            RunStatus::Restarting => "Restarting",
        }
    }

    /// Parses a status case-insensitively.
    pub fn parse(s: &str) -> Result<Self> {
        match RunStatus::ALL.iter().find(|st| st.as_str().eq_ignore_ascii_case(s)) {
            Some(st) => Ok(*st),
            None => {
                let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
                model_err!(
                    InvalidRequestBody,
                    "status {s:?} is invalid; use one of {}",
                    all.join(", ")
                )
            }
        }
    }

    /// Whether the batch has ended.
    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Successful | RunStatus::Failed | RunStatus::Canceled)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One history item. Types are binding: Go clients fail on a mismatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobHistory {
    /// Batch id, increasing per job.
    pub run_id: i64,
    /// The batch's scheduled time (`yyyy-MM-dd HH:mm:ss`).
    pub batch_time: String,
    /// When it started.
    pub start_time: String,
    /// When it ended (now while running).
    pub end_time: Option<String>,
    /// Whole seconds.
    pub duration: i64,
    /// Status.
    pub status: RunStatus,
    /// Progress or error message.
    pub message: String,
    /// Reruns so far.
    pub rerun_count: i64,
}

/// `GET /v2/jobs/<name>/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetJobHistoryOutput {
    /// Batches in all (matching the filter).
    pub total: i64,
    /// This page.
    pub history: Vec<JobHistory>,
}

/// A `runId` sent as a JSON integer (Go SDK) or a numeric string (seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunId(pub i64);

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Int(i64),
            Str(String),
        }
        match Either::deserialize(d)? {
            Either::Int(i) => Ok(RunId(i)),
            Either::Str(s) => s
                .trim()
                .parse()
                .map(RunId)
                .map_err(|_| serde::de::Error::custom(format!("runId {s:?} is not a number"))),
        }
    }
}

/// `POST /v2/batch/actions/stop|rerun`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchActionInput {
    /// Job.
    pub job_name: String,
    /// Batch.
    pub run_id: RunId,
}

impl BatchActionInput {
    /// The keys of a stop or rerun body.
    pub const KEYS: Keys = Keys::only(ErrorCode::InvalidRequestBody);
}

/// Answer of a batch stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopBatchOutput {
    /// Status before.
    pub pre_status: RunStatus,
    /// Status after.
    pub post_status: RunStatus,
}

/// Answer of a batch rerun.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RerunBatchOutput {
    /// Status before.
    pub pre_status: RunStatus,
    /// Status after.
    pub post_status: RunStatus,
    /// Reruns so far, this one included.
    pub rerun_count: i64,
}

/// The query of `GET /v2/jobs/<name>/history`. Everything is optional: the
/// Go SDK sends no query at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryQuery {
    /// Page, from 1 (default 1).
    #[serde(default)]
    pub page: Option<i64>,
    /// Page size (default 100, at most 1000).
    #[serde(default)]
    pub size: Option<i64>,
    /// `runId`, `startTime`, `endTime` (ascending) or with `-` (descending);
    /// default `-runId`, newest first.
    #[serde(default)]
    pub sort_by: Option<String>,
    /// Only batches in this status.
    #[serde(default)]
    pub status: Option<String>,
    /// Only this batch; `-1` = the latest.
    #[serde(default)]
    pub run_id: Option<i64>,
}

/// `{"exist": bool}` of the `/exists` routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exists {
    /// Whether the resource exists.
    pub exist: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_int_or_string() {
        let a: BatchActionInput = serde_json::from_str(r#"{"jobName":"j","runId":3}"#).unwrap();
        let b: BatchActionInput = serde_json::from_str(r#"{"jobName":"j","runId":"3"}"#).unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_str::<BatchActionInput>(r#"{"jobName":"j","runId":"x"}"#).is_err());
    }

    #[test]
    fn history_wire_types() {
        let h = JobHistory {
            run_id: 1,
            batch_time: "2026-11-25 00:00:00".into(),
            start_time: "2026-11-25 00:00:01".into(),
            end_time: None,
            duration: 3,
            status: RunStatus::Running,
            message: String::new(),
            rerun_count: 0,
        };
        let v = serde_json::to_value(&h).unwrap();
        assert!(v["runId"].is_i64() && v["duration"].is_i64());
        assert_eq!(v["status"], "Running");
        assert_eq!(RunStatus::parse("successful").unwrap(), RunStatus::Successful);
    }
}
