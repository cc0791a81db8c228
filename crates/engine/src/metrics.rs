//! The engine's metrics, in Prometheus / OpenMetrics text
//! ([`Engine::metrics_text`], served at `GET /metrics`). Every name starts
//! with `pbatch_`; counters end `_total`.
//!
//! - `pbatch_batches_total{job,status}`: batch attempts that ended, by status;
//! - `pbatch_batch_duration_seconds{job}`: their wall time (histogram);
//! - `pbatch_rows_read_total{job}`, `pbatch_rows_written_total{job}`: of
//!   Successful batches;
//! - `pbatch_bytes_committed_total{job}`: bytes of the files they committed;
//! - `pbatch_invalid_records_total{job}`: records skipped as invalid
//!   (`omitInvalid`) or refused by a service;
//! - `pbatch_sink_retries_total{job}`: service requests sent again (5xx, no answer);
//! - `pbatch_batch_retries_total{job}`: automatic retries queued;
//! - `pbatch_batches_waiting`: batches waiting for a slot (`Ready`);
//! - `pbatch_batches_in_flight`: batches running or waiting in this process;
//! - `pbatch_scheduler_lag_seconds`: from a crontab / loop time, a manual
//!   start or a retry's due time to the batch's start (histogram).

use crate::RunReport;
use crate::catalog::RunRecord;
use crate::engine::Engine;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobStatus {
    job: String,
    status: String,
}

type Histograms = Family<JobLabel, Histogram, fn() -> Histogram>;

/// 0.1 s to about 55 minutes.
fn durations() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 16))
}

/// The engine's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    batches: Family<JobStatus, Counter>,
    duration: Histograms,
    rows_read: Family<JobLabel, Counter>,
    rows_written: Family<JobLabel, Counter>,
    bytes_committed: Family<JobLabel, Counter>,
    invalid: Family<JobLabel, Counter>,
    sink_retries: Family<JobLabel, Counter>,
    batch_retries: Family<JobLabel, Counter>,
    waiting: Gauge,
    in_flight: Gauge,
    lag: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pbatch");
        let m = Self {
            batches: Family::default(),
            duration: Family::new_with_constructor(durations as fn() -> Histogram),
            rows_read: Family::default(),
            rows_written: Family::default(),
            bytes_committed: Family::default(),
            invalid: Family::default(),
            sink_retries: Family::default(),
            batch_retries: Family::default(),
            waiting: Gauge::default(),
            in_flight: Gauge::default(),
            lag: Histogram::new(exponential_buckets(0.5, 2.0, 14)),
            registry: Registry::default(),
        };
        registry.register("batches", "Batch attempts that ended, by status", m.batches.clone());
        registry.register(
            "batch_duration_seconds",
            "Wall time of batch attempts",
            m.duration.clone(),
        );
        registry.register("rows_read", "Rows read by Successful batches", m.rows_read.clone());
        registry.register(
            "rows_written",
            "Rows the SQL of Successful batches produced",
            m.rows_written.clone(),
        );
        registry.register(
            "bytes_committed",
            "Bytes of the files Successful batches committed",
            m.bytes_committed.clone(),
        );
        registry.register(
            "invalid_records",
            "Records skipped as invalid or refused by a service",
            m.invalid.clone(),
        );
        registry.register(
            "sink_retries",
            "Service export requests sent again after a 5xx or no answer",
            m.sink_retries.clone(),
        );
        registry.register(
            "batch_retries",
            "Automatic batch retries queued",
            m.batch_retries.clone(),
        );
        registry.register(
            "batches_waiting",
            "Batches waiting for a slot (Ready)",
            m.waiting.clone(),
        );
        registry.register(
            "batches_in_flight",
            "Batches running or waiting in this process",
            m.in_flight.clone(),
        );
        registry.register(
            "scheduler_lag_seconds",
            "From a batch's due time to its start",
            m.lag.clone(),
        );
        Self { registry, ..m }
    }
}

/// Counts a batch waiting for a slot while it lives.
pub(crate) struct Waiting<'a>(&'a Gauge);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// The text exposition.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }

    pub(crate) fn waiting(&self) -> Waiting<'_> {
        self.waiting.inc();
        Waiting(&self.waiting)
    }

    pub(crate) fn in_flight(&self, delta: i64) {
        self.in_flight.inc_by(delta);
    }

    pub(crate) fn lag(&self, seconds: f64) {
        self.lag.observe(seconds.max(0.0));
    }

    /// An attempt of `r` ended (its outcome recorded); `report` when it
    /// succeeded; `retried` when a retry was queued.
    pub(crate) fn ended(&self, r: &RunRecord, report: Option<&RunReport>, retried: bool) {
        let job = JobLabel { job: r.job.clone() };
        self.batches
            .get_or_create(&JobStatus {
                job: r.job.clone(),
                status: r.status.to_string(),
            })
            .inc();
        if let (Some(start), Some(end)) = (r.start_time, r.end_time) {
            let secs = (end - start).num_milliseconds().max(0) as f64 / 1000.0;
            self.duration.get_or_create(&job).observe(secs);
        }
        if retried {
            self.batch_retries.get_or_create(&job).inc();
        }
        let Some(report) = report else { return };
        self.rows_read.get_or_create(&job).inc_by(report.rows_read);
        self.rows_written.get_or_create(&job).inc_by(report.rows_out);
        let bytes: u64 = report.exports.iter().map(|e| e.bytes).sum();
        self.bytes_committed.get_or_create(&job).inc_by(bytes);
        let invalid = report.invalid_skipped + report.exports.iter().map(|e| e.invalid).sum::<u64>();
        self.invalid.get_or_create(&job).inc_by(invalid);
        let retries: u64 = report.exports.iter().map(|e| e.retries).sum();
        self.sink_retries.get_or_create(&job).inc_by(retries);
    }
}

impl Engine {
    /// The engine's metrics in the Prometheus / OpenMetrics text format
    /// (what `GET /metrics` answers); see the module docs for the names.
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.encode()
    }
}
