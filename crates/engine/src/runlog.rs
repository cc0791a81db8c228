//! Per-run logs: the tracing events of a batch attempt, kept with the run
//! (`GET /v2/jobs/<job>/history/<runId>/log`, `pbatch history --log`).
//!
//! Each attempt runs in a `batch` span carrying a process-unique `attempt`
//! number. [`RunLogLayer`], added to the application's subscriber (`pbatch`
//! adds it; library users add [`run_log_layer`]), appends every event under
//! such a span to that attempt's buffer, capped at [`MAX_LINES`] (the last
//! ones are kept). When the attempt ends the engine stores the buffer in the
//! catalog beside the run; the last [`MAX_ATTEMPTS`] attempts are kept.
//! Without the layer, runs have empty logs.

use crate::catalog::{Kind, RunRecord};
use crate::engine::{Engine, to_json};
use pbatch_model::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Lines kept per attempt (the last ones).
pub const MAX_LINES: usize = 1000;
/// Attempts kept per run (the last ones).
pub const MAX_ATTEMPTS: usize = 5;
/// Characters kept per line.
const MAX_LINE_CHARS: usize = 2000;

/// The log of one attempt of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptLog {
    /// The attempt's rerunCount (0: the first attempt).
    pub rerun_count: i64,
    /// Its lines, oldest first: `time LEVEL target: message fields`.
    pub lines: Vec<String>,
    /// Earlier lines left out (over [`MAX_LINES`]).
    pub dropped: u64,
}

/// A batch's log (`GET /v2/jobs/<job>/history/<runId>/log`, a pbatch addition).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunLog {
    /// The job.
    pub job: String,
    /// The batch.
    pub run_id: i64,
    /// Its attempts' logs, oldest first (the last [`MAX_ATTEMPTS`]).
    pub attempts: Vec<AttemptLog>,
}

#[derive(Default)]
struct Buffer {
    lines: VecDeque<String>,
    dropped: u64,
}

/// The buffers of the attempts running in this process, by attempt number.
static BUFFERS: LazyLock<Mutex<HashMap<u64, Buffer>>> = LazyLock::new(Default::default);
static NEXT_ATTEMPT: AtomicU64 = AtomicU64::new(1);

/// An attempt's buffer while it lives; [`Capture::take`] ends it.
pub(crate) struct Capture(u64);

impl Capture {
    /// A new attempt number with an empty buffer.
    pub(crate) fn start() -> Self {
        let n = NEXT_ATTEMPT.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut b) = BUFFERS.lock() {
            b.insert(n, Buffer::default());
        }
        Self(n)
    }

    /// The number the attempt's `batch` span carries.
    pub(crate) fn attempt(&self) -> u64 {
        self.0
    }

    /// Adds a line of the engine's own (the attempt's outcome).
    pub(crate) fn note(&self, message: &str) {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        append(self.0, format!("{now}  INFO pbatch_engine: {message}"));
    }

    /// The lines captured so far, and how many were dropped.
    fn take(&self) -> (Vec<String>, u64) {
        BUFFERS
            .lock()
            .ok()
            .and_then(|mut b| b.remove(&self.0))
            .map(|b| (b.lines.into(), b.dropped))
            .unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Ok(mut b) = BUFFERS.lock() {
            b.remove(&self.0);
        }
    }
}

fn append(attempt: u64, line: String) {
    let Ok(mut all) = BUFFERS.lock() else { return };
    let Some(b) = all.get_mut(&attempt) else { return };
    if b.lines.len() == MAX_LINES {
        b.lines.pop_front();
        b.dropped += 1;
    }
    b.lines.push_back(line);
}

/// The tracing layer that keeps each batch attempt's events for its run's
/// log. Add it to the subscriber, with a filter of its own so the console's
/// level does not limit it:
///
/// ```ignore
/// use tracing_subscriber::prelude::*;
/// tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::EnvFilter::new("warn")))
///     .with(pbatch::run_log_layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO))
///     .init();
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct RunLogLayer;

/// [`RunLogLayer`].
pub fn run_log_layer() -> RunLogLayer {
    RunLogLayer
}

/// The attempt number a `batch` span carries (its extension).
struct Attempt(u64);

struct AttemptField(Option<u64>);

impl Visit for AttemptField {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "attempt" {
            self.0 = Some(value);
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// An event as one line: the message, then `field=value`s.
struct Line(String, String);

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.1, " {}={value}", field.name());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.1, " {}={value:?}", field.name());
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for RunLogLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "batch" {
            return;
        }
        let mut f = AttemptField(None);
        attrs.record(&mut f);
        if let (Some(n), Some(span)) = (f.0, ctx.span(id)) {
            span.extensions_mut().insert(Attempt(n));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else { return };
        let Some(n) = scope
            .from_root()
            .find_map(|span| span.extensions().get::<Attempt>().map(|a| a.0))
        else {
            return;
        };
        let mut l = Line(String::new(), String::new());
        event.record(&mut l);
        let m = event.metadata();
        let mut line = format!(
            "{} {:>5} {}: {}{}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            m.level(),
            m.target(),
            l.0,
            l.1
        );
        if line.chars().count() > MAX_LINE_CHARS {
            line = line.chars().take(MAX_LINE_CHARS).collect::<String>() + "...";
        }
        append(n, line);
    }
}

fn key(job: &str, run_id: i64) -> String {
    format!("{job}/{run_id:010}")
}

impl Engine {
    /// Stores what `capture` caught for the attempt of `r` that ended.
    pub(crate) fn keep_log(&self, r: &RunRecord, capture: &Capture) -> Result<()> {
        let (lines, dropped) = capture.take();
        let k = key(&r.job, r.run_id);
        let mut log: RunLog = match self.catalog().get(Kind::RunLog, &k)? {
            Some(v) => serde_json::from_value(v).unwrap_or_default(),
            None => RunLog::default(),
        };
        log.job = r.job.clone();
        log.run_id = r.run_id;
        log.attempts.push(AttemptLog {
            rerun_count: r.rerun_count,
            lines,
            dropped,
        });
        if log.attempts.len() > MAX_ATTEMPTS {
            let extra = log.attempts.len() - MAX_ATTEMPTS;
            log.attempts.drain(..extra);
        }
        let v = to_json(&log)?;
        if !self.catalog().replace(Kind::RunLog, &k, &v)? {
            self.catalog().insert(Kind::RunLog, &k, &v)?;
        }
        Ok(())
    }

    /// The log of batch `run_id` of `job` (`E18606` for a missing job,
    /// `E18624` for a missing batch); empty for a batch still in its first
    /// attempt or run without [`RunLogLayer`].
    pub fn run_log(&self, job: &str, run_id: i64) -> Result<RunLog> {
        self.job(job)?;
        if self.catalog().get_run(job, run_id)?.is_none() {
            return Err(Error::new(
                ErrorCode::RunNotFound,
                format!("job {job} has no batch with runId {run_id}"),
            ));
        }
        Ok(match self.catalog().get(Kind::RunLog, &key(job, run_id))? {
            Some(v) => serde_json::from_value(v).map_err(|e| Error::internal(format!("log of batch {run_id}: {e}")))?,
            None => RunLog {
                job: job.to_string(),
                run_id,
                attempts: Vec::new(),
            },
        })
    }

    /// Deletes the logs of a job's batches (the job was deleted).
    pub(crate) fn delete_logs(&self, job: &str) -> Result<()> {
        for (k, _) in self.catalog().list(Kind::RunLog, &format!("{job}/"))? {
            self.catalog().delete(Kind::RunLog, &k)?;
        }
        Ok(())
    }
}
