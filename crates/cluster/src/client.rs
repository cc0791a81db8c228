//! The engine's side: a session whose plans run on the cluster, and the
//! stop of a running job.

use crate::codec::{LogicalCodec, PhysicalCodec};
use crate::stores::JobOptions;
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::serde::protobuf::CancelJobParams;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::LogicalPlanNode;
use pbatch_model::{Error, ErrorCode, Result};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long reaching the scheduler may take before a batch fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A scheduler's address, `df://host:port` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerAddr {
    /// Host name or IP.
    pub host: String,
    /// gRPC port.
    pub port: u16,
}

impl std::fmt::Display for SchedulerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "df://{}:{}", self.host, self.port)
    }
}

impl SchedulerAddr {
    /// Parses `df://host:port` (or `host:port`); `field` names the setting in
    /// errors.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::new(
                ErrorCode::InvalidRequestBody,
                format!("{field}: {value:?} {why}; write df://host:port, e.g. df://127.0.0.1:50050"),
            )
        };
        let rest = value.trim().strip_prefix("df://").unwrap_or(value.trim());
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') {
            return Err(bad("has no host"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("has no valid port"))?;
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }

    fn http(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }

    async fn client(&self) -> Result<SchedulerGrpcClient<tonic::transport::Channel>> {
        let connect = SchedulerGrpcClient::connect(self.http());
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(self.unreachable(&format_chain(&e))),
            Err(_) => Err(self.unreachable(&format!("no answer in {} s", CONNECT_TIMEOUT.as_secs()))),
        }
    }

    /// `E18338` naming the scheduler: a batch that cannot reach its cluster
    /// failed on the way to its data, and is retried like a storage error.
    fn unreachable(&self, why: &str) -> Error {
        Error::new(
            ErrorCode::StatFileFailed,
            format!("the cluster scheduler at {self} cannot be reached: {why}"),
        )
    }

    /// Connects once: `E18338` naming the address when nothing answers.
    pub async fn check_reachable(&self) -> Result<()> {
        self.client().await.map(|_| ())
    }
}

fn format_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A cluster job's session options before pbatch sets them: Ballista's,
/// and pbatch's own (`pbatch.data_dir`).
pub fn cluster_defaults() -> SessionConfig {
    SessionConfig::new_with_ballista().with_option_extension(JobOptions::default())
}

/// A session whose queries run on the cluster at `scheduler`: `config` is
/// the batch's (options and target partitions), `runtime` serves what the
/// engine plans itself (schema inference), `data_dir` goes with each job,
/// and `tune` sets what else it will (Ballista's options).
pub async fn remote_session(
    scheduler: &SchedulerAddr,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    data_dir: &Path,
    job_name: &str,
    tune: impl FnOnce(&mut SessionConfig) -> Result<()>,
) -> Result<SessionContext> {
    scheduler.check_reachable().await?;
    let partitions = config.target_partitions();
    let mut cluster = cluster_defaults()
        .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(PhysicalCodec::default()))
        .with_ballista_job_name(job_name)
        .with_information_schema(false)
        .with_target_partitions(partitions);
    // the options the batch's session changed from DataFusion's defaults
    // (plain strings, spill reservation, ...); the rest stay as Ballista
    // set them (it turns off what executors cannot run)
    let defaults: std::collections::HashMap<String, Option<String>> = SessionConfig::new()
        .options()
        .entries()
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect();
    for entry in config.options().entries() {
        let changed = defaults.get(&entry.key).is_none_or(|d| *d != entry.value);
        if changed
            && entry.key.starts_with("datafusion.")
            && entry.key != "datafusion.execution.target_partitions"
            && let Some(v) = entry.value
        {
            cluster
                .options_mut()
                .set(&entry.key, &v)
                .map_err(|e| Error::internal(format!("cluster session option {}: {e}", entry.key)))?;
        }
    }
    // Pull mode: the client learns the job's id as soon as the scheduler
    // accepts it (push mode only with the first status change), so a stop
    // can cancel it at once; it polls every 50 ms.
    cluster
        .options_mut()
        .set(ballista_core::config::BALLISTA_CLIENT_PULL, "true")
        .map_err(|e| Error::internal(format!("{}: {e}", ballista_core::config::BALLISTA_CLIENT_PULL)))?;
    tune(&mut cluster)?;
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    cluster
        .options_mut()
        .set("pbatch.data_dir", &dir.to_string_lossy())
        .map_err(|e| Error::internal(format!("pbatch.data_dir: {e}")))?;
    let mut state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(cluster)
        .with_runtime_env(runtime)
        .build();
    pbatch_source::register_functions(&mut state)
        .map_err(|e| Error::internal(format!("registering pbatch's functions: {e}")))?;
    SessionContext::remote_with_state(&scheduler.to_string(), state)
        .await
        .map_err(|e| scheduler.unreachable(&e.to_string()))
}

/// Refuses, before anything runs, a plan the cluster could not be sent:
/// `E18209` naming what it holds (a table function such as
/// `generate_series` has no wire form).
pub fn check_sendable(plan: &datafusion::logical_expr::LogicalPlan) -> Result<()> {
    match datafusion_proto::bytes::logical_plan_to_bytes_with_extension_codec(plan, &LogicalCodec::default()) {
        Ok(_) => Ok(()),
        Err(e) => {
            let what = e.to_string();
            let what = what.lines().next().unwrap_or_default();
            Err(Error::new(
                ErrorCode::InvalidSql,
                format!(
                    "computation.code cannot run on a cluster: its plan reads a table that cannot be sent to one \
                     (a table function such as generate_series?): {what}; a container of at most \
                     [cluster] local_max_cores cores runs it in this process"
                ),
            ))
        }
    }
}

/// Names the count an executor adds to each task it ran, with its id after.
pub(crate) const TASK_EXECUTOR: &str = "pbatch_task_on:";

/// The plan nodes that read a batch's inputs (as the scheduler names them).
const SCANS: &[&str] = &["DataSourceExec", "RowScanExec"];

/// What a cluster job's scans counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterCounts {
    /// Rows the scans produced.
    pub rows_read: u64,
    /// Bytes they read (as stored).
    pub bytes_read: u64,
    /// Invalid records they skipped.
    pub invalid_records: u64,
    /// Partitions the job's stages ran (a task runs one or more).
    pub partitions: u64,
    /// Executors that ran its tasks.
    pub executors: u64,
}

/// What the engine keeps of a plan sent to the cluster: its job, once the
/// scheduler has accepted it, for a stop.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    scheduler: SchedulerAddr,
    exec: DistributedQueryExec<LogicalPlanNode>,
}

impl ClusterPlan {
    /// The cluster part of `plan`, when it runs on a cluster.
    pub fn of(scheduler: &SchedulerAddr, plan: &Arc<dyn ExecutionPlan>) -> Option<Self> {
        let exec = plan.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>()?;
        Some(Self {
            scheduler: scheduler.clone(),
            exec: exec.clone(),
        })
    }

    /// The scheduler's id of the job, once it has accepted it.
    pub fn job_id(&self) -> Option<String> {
        self.exec.job_id().map(|j| j.to_string())
    }

    /// Where the plan runs, for messages.
    pub fn scheduler(&self) -> &SchedulerAddr {
        &self.scheduler
    }

    /// What the job's scans counted, from the scheduler's metrics of its
    /// finished stages: rows and bytes read, invalid records skipped, and
    /// the partitions its stages ran.
    pub async fn counts(&self) -> Result<ClusterCounts> {
        use ballista_core::serde::protobuf::GetJobMetricsParams;
        use ballista_core::serde::protobuf::operator_metric::Metric;
        let Some(job_id) = self.job_id() else {
            return Ok(ClusterCounts::default());
        };
        let mut client = self.scheduler.client().await?;
        let call = client.get_job_metrics(GetJobMetricsParams { job_id: job_id.clone() });
        let stages = match tokio::time::timeout(CONNECT_TIMEOUT, call).await {
            Ok(Ok(r)) => r.into_inner().stages,
            Ok(Err(e)) => {
                return Err(Error::new(
                    ErrorCode::StatFileFailed,
                    format!("the metrics of job {job_id} on {}: {}", self.scheduler, e.message()),
                ));
            }
            Err(_) => return Err(self.scheduler.unreachable("the metrics request got no answer")),
        };
        let mut counts = ClusterCounts::default();
        let mut executors = std::collections::BTreeSet::new();
        for stage in stages {
            counts.partitions += u64::from(stage.partitions);
            for op in stage.operators {
                for m in &op.metrics {
                    if let Some(Metric::Count(c)) = &m.metric
                        && let Some(id) = c.name.strip_prefix(TASK_EXECUTOR)
                    {
                        executors.insert(id.to_string());
                    }
                }
                if !SCANS.contains(&op.operator_type.as_str()) {
                    continue;
                }
                for m in op.metrics {
                    match m.metric {
                        Some(Metric::OutputRows(n)) => counts.rows_read += n,
                        Some(Metric::Count(c)) if c.name == pbatch_source::SCAN_INVALID_RECORDS => {
                            counts.invalid_records += c.value
                        }
                        Some(Metric::Count(c))
                            if c.name == pbatch_source::SCAN_BYTES_READ || c.name == "bytes_scanned" =>
                        {
                            counts.bytes_read += c.value
                        }
                        Some(Metric::Count(c)) if c.name.starts_with(pbatch_source::SCAN_EXECUTOR) => {
                            let id = c.name.trim_start_matches(pbatch_source::SCAN_EXECUTOR);
                            executors.insert(id.to_string());
                        }
                        _ => {}
                    }
                }
            }
        }
        counts.executors = executors.len() as u64;
        Ok(counts)
    }

    /// Cancels the job on the cluster (dropping the result stream does not).
    /// Returns whether there was a job to cancel.
    pub async fn cancel(&self) -> Result<bool> {
        let Some(job_id) = self.job_id() else {
            return Ok(false);
        };
        let mut client = self.scheduler.client().await?;
        let call = client.cancel_job(CancelJobParams { job_id: job_id.clone() });
        match tokio::time::timeout(CONNECT_TIMEOUT, call).await {
            Ok(Ok(r)) => Ok(r.into_inner().cancelled),
            Ok(Err(e)) => Err(Error::new(
                ErrorCode::StatFileFailed,
                format!("canceling job {job_id} on {}: {}", self.scheduler, e.message()),
            )),
            Err(_) => Err(self.scheduler.unreachable("the cancel got no answer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_addresses() {
        let a = SchedulerAddr::parse("cluster.scheduler", "df://10.0.0.1:50050").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("10.0.0.1", 50050));
        assert_eq!(a.to_string(), "df://10.0.0.1:50050");
        let a = SchedulerAddr::parse("x", "sched.local:7").unwrap();
        assert_eq!(a.http(), "http://sched.local:7");
        for bad in ["df://host", "df://:50", "df://h:0", "df://h:99999", ""] {
            let e = SchedulerAddr::parse("cluster.scheduler", bad).unwrap_err();
            assert!(e.to_string().contains("cluster.scheduler"), "{e}");
        }
    }

    #[tokio::test]
    async fn an_absent_scheduler_is_e18338_naming_it() {
        // a port nothing listens on
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let a = SchedulerAddr::parse("x", &format!("df://127.0.0.1:{port}")).unwrap();
        let e = a.check_reachable().await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::StatFileFailed);
        assert!(e.to_string().contains(&format!("df://127.0.0.1:{port}")), "{e}");
    }
}
