//! `pbatch scheduler` and `pbatch executor`: Ballista's processes with
//! pbatch's codecs, stores and job options.

use crate::client::SchedulerAddr;
use crate::codec::{LogicalCodec, PhysicalCodec};
use crate::stores::{JobOptions, StoresConfig};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::{ConfigProducer, JobId, RuntimeProducer};
use ballista_executor::execution_engine::{DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{SchedulerConfig, TaskDistributionPolicy};
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use pbatch_model::{Error, ErrorCode, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// How `pbatch scheduler` runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to listen on (gRPC; port 0 picks one).
    pub listen: SocketAddr,
    /// The host executors reach this scheduler at (default: the listen IP).
    pub external_host: Option<String>,
    /// The scheduler plans scans, so it lists files: its stores.
    pub stores: StoresConfig,
    /// Seconds without a heartbeat before an executor is dead and its tasks
    /// run elsewhere.
    pub executor_timeout_secs: u64,
}

/// How `pbatch executor` runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler to register with.
    pub scheduler: SchedulerAddr,
    /// Address of the Flight service (results and shuffles); its gRPC
    /// service listens on the next port.
    pub listen: SocketAddr,
    /// The host the scheduler and other executors reach this one at
    /// (default: the address the scheduler sees).
    pub external_host: Option<String>,
    /// Shuffle files and spills.
    pub work_dir: PathBuf,
    /// Tasks run at once (default: the machine's cores).
    pub concurrent_tasks: usize,
    /// Its stores.
    pub stores: StoresConfig,
    /// Names the executor in logs and the scheduler (default: a UUID).
    pub id: Option<String>,
    /// Seconds between heartbeats.
    pub heartbeat_secs: u64,
}

fn ballista_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Internal, format!("{what}: {e}"))
}

/// Session options every cluster process knows (the job's `pbatch.*` among
/// them: unknown keys would be dropped).
fn config_producer() -> ConfigProducer {
    Arc::new(|| SessionConfig::new_with_ballista().with_option_extension(JobOptions::default()))
}

use ballista::prelude::SessionConfigExt;

/// Runs a scheduler until the process ends; `ready` gets the bound address.
pub async fn run_scheduler(opts: SchedulerOptions, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| Error::new(ErrorCode::Internal, format!("listening on {}: {e}", opts.listen)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ballista_err("the scheduler's address", e))?;
    let stores = opts.stores.clone();
    let session_builder = Arc::new(move |config: SessionConfig| {
        let registry = Arc::new(stores.registry_for(&config));
        let state = ballista_core::utils::default_session_builder(config)?;
        let runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(registry)
            .build_arc()?;
        let mut state = SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime)
            .build();
        pbatch_source::register_functions(&mut state)?;
        Ok(state)
    });
    let config = SchedulerConfig {
        bind_host: bound.ip().to_string(),
        bind_port: bound.port(),
        external_host: opts.external_host.clone().unwrap_or_else(|| bound.ip().to_string()),
        // spread tasks over the executors rather than filling the first
        task_distribution: TaskDistributionPolicy::RoundRobin,
        executor_timeout_seconds: opts.executor_timeout_secs,
        expire_dead_executor_interval_seconds: (opts.executor_timeout_secs / 2).clamp(1, 15),
        // a finished job's results stay an hour: the engine fetches them
        // while its exports write, which may take longer than Ballista's 5 min
        finished_job_data_clean_up_interval_seconds: 3600,
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
        override_session_builder: Some(session_builder),
        override_config_producer: Some(config_producer()),
        ..Default::default()
    };
    config
        .validate()
        .map_err(|e| ballista_err("scheduler configuration", e))?;
    let config = Arc::new(config);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| ballista_err("starting the scheduler", e))?;
    let server = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, config)
        .await
        .map_err(|e| ballista_err("starting the scheduler", e))?;
    tracing::info!(%bound, "scheduler listening");
    ready(bound);
    start_grpc_service_with_listener(listener, server)
        .await
        .map_err(|e| ballista_err("the scheduler stopped", e))
}

/// Logs each task an executor starts: which job, stage and partitions.
struct LoggedEngine {
    id: String,
    inner: DefaultExecutionEngine,
}

impl ExecutionEngine for LoggedEngine {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> datafusion::error::Result<Arc<dyn QueryStageExecutor>> {
        tracing::info!(
            executor = %self.id,
            job = %job_id,
            stage_id,
            task_id,
            partitions = ?global_output_partition_ids,
            "task started"
        );
        let inner = self.inner.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )?;
        Ok(Arc::new(TaggedStage {
            inner,
            executor: self.id.clone(),
        }))
    }
}

/// A task's stage, whose metrics say which executor ran it (a
/// [`TASK_EXECUTOR`](crate::client::TASK_EXECUTOR) count on its first
/// operator): the engine counts the executors a job ran on from them.
#[derive(Debug)]
struct TaggedStage {
    inner: Arc<dyn QueryStageExecutor>,
    executor: String,
}

impl std::fmt::Display for TaggedStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (on {})", self.inner, self.executor)
    }
}

#[async_trait::async_trait]
impl QueryStageExecutor for TaggedStage {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<datafusion::execution::TaskContext>,
    ) -> datafusion::error::Result<Vec<ballista_core::serde::protobuf::ShuffleWritePartition>> {
        self.inner.execute_query_stage(task_id, context).await
    }

    fn collect_plan_metrics(&self) -> Vec<datafusion::physical_plan::metrics::MetricsSet> {
        use datafusion::physical_plan::metrics::{Count, Metric, MetricValue};
        let mut sets = self.inner.collect_plan_metrics();
        if let Some(first) = sets.first_mut() {
            let count = Count::new();
            count.add(1);
            let name = format!("{}{}", crate::client::TASK_EXECUTOR, self.executor);
            // partition 0 of the task: the scheduler files it under the
            // task's first partition, replaced if the task runs again
            first.push(Arc::new(Metric::new(
                MetricValue::Count {
                    name: name.into(),
                    count,
                },
                Some(0),
            )));
        }
        sets
    }

    fn collect_runtime_stats_reports(&self) -> Vec<ballista_core::serde::protobuf::RuntimeStatsReport> {
        self.inner.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(
        &self,
    ) -> datafusion::error::Result<Vec<ballista_core::serde::protobuf::WindowStateReport>> {
        self.inner.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<ballista_core::serde::protobuf::TaskColumnStats> {
        self.inner.collect_column_stats()
    }
}

/// DataFusion's functions, with pbatch's over them (as the engine and the
/// scheduler have them).
fn function_registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for f in pbatch_source::session_functions() {
        for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
            registry.scalar_functions.insert(name.to_string(), Arc::clone(&f));
        }
    }
    registry
}

/// Runs an executor until the process ends (or the scheduler stops it).
/// A scheduler that cannot be reached is an error naming it.
pub async fn run_executor(opts: ExecutorOptions) -> Result<()> {
    opts.scheduler.check_reachable().await?;
    std::fs::create_dir_all(&opts.work_dir).map_err(|e| {
        Error::new(
            ErrorCode::Internal,
            format!("creating the work dir {}: {e}", opts.work_dir.display()),
        )
    })?;
    let work_dir = opts.work_dir.to_string_lossy().into_owned();
    let defaults = ExecutorProcessConfig::default();
    // Ballista's default id is a UUID: unique on every host
    let id = opts.id.clone().unwrap_or_else(|| defaults.executor_id.clone());
    let stores = opts.stores.clone();
    let temp = work_dir.clone();
    let runtime: RuntimeProducer = Arc::new(move |config: &SessionConfig| {
        let registry = Arc::new(stores.registry_for(config));
        RuntimeEnvBuilder::new()
            .with_temp_file_path(temp.clone())
            .with_object_store_registry(registry)
            .build_arc()
    });
    let grpc_port = opts.listen.port().checked_add(1).ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidRequestBody,
            "--listen: the port must be below 65535 (the next one is the executor's gRPC port)",
        )
    })?;
    let config = ExecutorProcessConfig {
        executor_id: id.clone(),
        bind_host: opts.listen.ip().to_string(),
        external_host: opts.external_host.clone(),
        port: opts.listen.port(),
        grpc_port,
        scheduler_host: opts.scheduler.host.clone(),
        scheduler_port: opts.scheduler.port,
        scheduler_connect_timeout_seconds: 0,
        vcores: opts.concurrent_tasks.max(1),
        work_dir: Some(work_dir),
        executor_heartbeat_interval_seconds: opts.heartbeat_secs.max(1),
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::for_executor(&id))),
        override_runtime_producer: Some(runtime),
        override_function_registry: Some(Arc::new(function_registry())),
        override_config_producer: Some(config_producer()),
        override_execution_engine: Some(Arc::new(LoggedEngine {
            id: id.clone(),
            inner: DefaultExecutionEngine::new(),
        })),
        ..defaults
    };
    tracing::info!(executor = %id, listen = %opts.listen, scheduler = %opts.scheduler, "executor starting");
    start_executor_process(Arc::new(config)).await.map_err(|e| {
        Error::new(
            ErrorCode::StatFileFailed,
            format!("executor {id} (scheduler {}): {e}", opts.scheduler),
        )
    })
}
