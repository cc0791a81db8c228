//! Backfills (a pbatch addition): one batch per scheduled time of a past
//! range, `POST /v2/jobs/<job>/actions/backfill`.

use crate::de::{Keys, fields_of};
use crate::{ErrorCode, Param, model_err};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a backfill does with a time that already has a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reprocess {
    /// Skip it (the default).
    #[default]
    None,
    /// Rerun it when it is Failed or Canceled.
    Failed,
    /// Rerun it whatever its status.
    All,
}

impl Reprocess {
    /// The accepted words.
    pub const VALUES: &'static [&'static str] = &["none", "failed", "all"];

    /// Parses `none`, `failed` or `all` (any case).
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "failed" => Ok(Self::Failed),
            "all" => Ok(Self::All),
            _ => model_err!(
                InvalidBackfill,
                "reprocess {s:?} is not one of {}",
                Self::VALUES.join(", ")
            ),
        }
    }
}

impl fmt::Display for Reprocess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Failed => "failed",
            Self::All => "all",
        })
    }
}

/// The body of `POST /v2/jobs/<job>/actions/backfill`.
///
/// Times are RFC 3339, or `yyyy-MM-dd HH:mm:ss` / `yyyy-MM-dd` in the
/// engine's zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillRequest {
    /// First time of the range (included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// End of the range (excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Explicit batch times, instead of a range (a manual job needs them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<Vec<String>>,
    /// What happens to a time that already has a batch.
    #[serde(default)]
    pub reprocess: Reprocess,
    /// Batches of the backfill running at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active: Option<u32>,
    /// Param values for every batch (as a start takes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<Param>>,
    /// Allow more than [`BackfillRequest::MAX_TIMES`] times.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

impl BackfillRequest {
    /// Times a backfill may hold without `force`.
    pub const MAX_TIMES: usize = 10_000;
    /// Times a backfill may hold at all.
    pub const MAX_TIMES_FORCED: usize = 1_000_000;

    /// The keys of a backfill body.
    pub const KEYS: Keys = Keys {
        code: ErrorCode::InvalidBackfill,
        nested: &[("params", fields_of::<Param>)],
        sdk: &[],
    };
}

/// Where one time of a backfill is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackfillItemState {
    /// Not started yet.
    Waiting,
    /// Its batch is in flight.
    Running,
    /// Its batch ended Successful.
    Done,
    /// Its batch ended Failed.
    Failed,
    /// Its batch ended Canceled, or the backfill was stopped before it started.
    Canceled,
    /// It had a batch, which `reprocess` left alone.
    Skipped,
}

impl BackfillItemState {
    /// Whether nothing more happens to it.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Waiting | Self::Running)
    }
}

/// One time of a backfill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillItem {
    /// The batch time (as history shows batch times).
    pub batch_time: String,
    /// Where it is.
    pub state: BackfillItemState,
    /// Its batch, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
}

/// A backfill and its progress (`GET /v2/jobs/<job>/backfills[/<id>]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillStatus {
    /// Increasing per job, from 1.
    pub id: i64,
    /// The job.
    pub job: String,
    /// `Running`; `Stopped` once stopped; `Done` when every time has ended.
    pub status: String,
    /// The range, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The range's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// What happens to times that have a batch.
    pub reprocess: Reprocess,
    /// Batches running at once, at most.
    pub max_active: u32,
    /// When it was created.
    pub create_time: String,
    /// Times in all.
    pub total: usize,
    /// Ended Successful.
    pub done: usize,
    /// Ended Failed (or could not start).
    pub failed: usize,
    /// Ended Canceled, or never started because the backfill was stopped.
    pub canceled: usize,
    /// Left alone (`reprocess`).
    pub skipped: usize,
    /// In flight.
    pub running: usize,
    /// Not started yet.
    pub waiting: usize,
    /// Every time, in order (only for one backfill's own GET).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<BackfillItem>,
}

/// `GET /v2/jobs/<job>/backfills`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillList {
    /// Newest first.
    pub backfills: Vec<BackfillStatus>,
}
