//! The engine: configuration, catalog, resource rules.

use crate::catalog::{Catalog, Kind, MemoryCatalog};
use crate::config::Config;
use pbatch_magic::is_system_variable;
use pbatch_model::{
    DatasourceSpec, Error, ErrorCode, ExportSpec, JobSpec, Result, SchedulerType, SrcType, VariableSpec, model_err,
};
use pbatch_source::Stores;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The batch engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) data_dir: PathBuf,
    pub(crate) catalog: Arc<dyn Catalog>,
    /// The history outlives this engine (a durable or given catalog): its
    /// batches' journals say so, and only such an engine finishes them.
    pub(crate) recorded: bool,
    /// Where srcs are read from (buckets, the fusion API and folder).
    pub(crate) sources: pbatch_exec::SourceEnv,
    /// The URLs of service exports.
    pub(crate) services: pbatch_sink::ServiceUrls,
    pub(crate) zone: pbatch_magic::Zone,
    pub(crate) clock: Arc<dyn Clock>,
    /// Cancel flags of the batches running in this process.
    pub(crate) active: std::sync::Mutex<std::collections::HashMap<(String, i64), tokio::sync::watch::Sender<bool>>>,
    /// Background batch attempts and the scheduler loop; aborted when the engine is dropped.
    pub(crate) tasks: std::sync::Mutex<tokio::task::JoinSet<()>>,
    /// Slots for batches running at once (`[engine] max_concurrent_batches`).
    pub(crate) permits: Arc<tokio::sync::Semaphore>,
    /// Run status changes, for [`Engine::subscribe`].
    pub(crate) events: tokio::sync::broadcast::Sender<crate::control::RunEvent>,
    /// Serializes read-modify-write of schedules.
    pub(crate) schedule_lock: std::sync::Mutex<()>,
    /// Serializes workflow start / stop.
    pub(crate) workflow_lock: std::sync::Mutex<()>,
    /// The HTTP client of service exports, built by the first batch that
    /// has one (it loads the system's TLS roots: most of a small job's
    /// file opens); the error, if building failed, is kept as text.
    pub(crate) http: std::sync::OnceLock<std::result::Result<reqwest::Client, String>>,
    /// Counters and histograms for `GET /metrics`.
    pub(crate) metrics: crate::metrics::Metrics,
}

/// Where the engine reads the time (retention ages, default batch times).
/// Tests inject one; the default is the system clock.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> std::time::SystemTime;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
    }
}

/// Builds an [`Engine`].
#[derive(Debug, Default)]
pub struct EngineBuilder {
    config: Config,
    data_dir: Option<PathBuf>,
    catalog: Option<Arc<dyn Catalog>>,
    clock: Option<Arc<dyn Clock>>,
    durable: bool,
}

impl EngineBuilder {
    /// Uses this configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Overrides the data dir.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Uses this catalog (default: in memory).
    pub fn catalog(mut self, catalog: Arc<dyn Catalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Uses this clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Keeps resources and runs in `<data_dir>/catalog.sqlite` (survives restarts).
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    /// Creates the data dir and the engine.
    pub fn build(self) -> Result<Engine> {
        let data_dir = self.data_dir.unwrap_or_else(|| self.config.data_dir());
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            Error::new(
                ErrorCode::Internal,
                format!("creating data dir {}: {e}", data_dir.display()),
            )
        })?;
        let zone = self.config.zone()?;
        let slots = self.config.engine.max_concurrent_batches;
        if slots == 0 {
            return model_err!(
                InvalidRequestBody,
                "engine.max_concurrent_batches must be at least 1 (got 0)"
            );
        }
        let e = &self.config.engine;
        if e.batch_retries > pbatch_model::MAX_RETRIES {
            return model_err!(
                InvalidRequestBody,
                "engine.batch_retries {} is more than {}",
                e.batch_retries,
                pbatch_model::MAX_RETRIES
            );
        }
        if e.retry_delay > pbatch_model::MAX_RETRY_DELAY_SECONDS {
            return model_err!(
                InvalidRequestBody,
                "engine.retry_delay {} s is more than a day ({} s)",
                e.retry_delay,
                pbatch_model::MAX_RETRY_DELAY_SECONDS
            );
        }
        let recorded = self.durable || self.catalog.is_some();
        let catalog: Arc<dyn Catalog> = match (self.catalog, self.durable) {
            (Some(c), _) => c,
            (None, true) => Arc::new(crate::sqlite::SqliteCatalog::open(&data_dir.join("catalog.sqlite"))?),
            (None, false) => Arc::new(MemoryCatalog::default()),
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let stores = stores_for(&self.config, &data_dir)?;
        let mut sources = source_env(&self.config, &data_dir, stores);
        sources.cluster = cluster_env(&self.config.cluster)?;
        pbatch_exec::check_datafusion_env()?;
        let services = pbatch_sink::ServiceUrls {
            tsdb: self.config.tsdb.url.clone(),
            logdb: self.config.logdb.url.clone(),
            report: self.config.report.url.clone(),
            batch_records: self.config.engine.sink_batch_records,
        };
        // commits past their commit point finish; other staging goes
        let config = &self.config;
        crate::recovery::recover_at_start(
            &data_dir,
            || stores_for(config, &data_dir),
            recorded,
            catalog.as_ref(),
            clock.as_ref(),
        )?;
        fail_orphaned_runs(catalog.as_ref(), clock.as_ref())?;
        Ok(Engine {
            inner: Arc::new(Inner {
                recorded,
                active: Default::default(),
                tasks: Default::default(),
                permits: Arc::new(tokio::sync::Semaphore::new(slots)),
                events: tokio::sync::broadcast::channel(1024).0,
                schedule_lock: Default::default(),
                workflow_lock: Default::default(),
                metrics: Default::default(),
                http: std::sync::OnceLock::new(),
                zone,
                clock,
                sources,
                services,
                config: self.config,
                data_dir,
                catalog,
            }),
        })
    }
}

impl Engine {
    /// The HTTP client of service exports (built on first use).
    pub(crate) fn http_client(&self) -> Result<reqwest::Client> {
        self.inner
            .http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .connect_timeout(std::time::Duration::from_secs(5))
                    .timeout(std::time::Duration::from_secs(120))
                    .build()
                    .map_err(|e| format!("building the HTTP client: {e}"))
            })
            .clone()
            .map_err(Error::internal)
    }
}

/// The stores a cluster process (`pbatch scheduler`, `pbatch executor`)
/// reads, from its own configuration: endpoints and keys of `[kodo]`, its
/// data dir for jobs that do not name theirs.
pub fn cluster_stores(config: &Config) -> Result<pbatch_cluster::StoresConfig> {
    let data_dir = std::path::absolute(config.data_dir()).unwrap_or_else(|_| config.data_dir());
    Ok(pbatch_cluster::StoresConfig {
        stores: stores_for(config, &data_dir)?,
    })
}

/// `[cluster]`, checked: None without a scheduler.
fn cluster_env(c: &crate::config::ClusterConfig) -> Result<Option<pbatch_exec::ClusterEnv>> {
    let Some(addr) = c.scheduler.as_deref().filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let scheduler = pbatch_cluster::SchedulerAddr::parse("cluster.scheduler", addr)?;
    let machine = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    Ok(Some(pbatch_exec::ClusterEnv {
        scheduler,
        local_max_cores: c.local_max_cores.unwrap_or(machine),
        collect_max_bytes: c.collect_max_bytes.unwrap_or(crate::config::COLLECT_MAX_BYTES),
    }))
}

/// Where batches read: the buckets, the fusion API and its local folder.
fn source_env(config: &Config, data_dir: &Path, stores: Stores) -> pbatch_exec::SourceEnv {
    let f = &config.fusion;
    pbatch_exec::SourceEnv {
        stores,
        fusion: pbatch_exec::FusionAccess {
            endpoint: f.endpoint.clone().filter(|e| !e.trim().is_empty()),
            access_key: f.access_key.clone().unwrap_or_default(),
            secret_key: f.secret_key.clone().unwrap_or_default(),
        },
        fusion_root: data_dir.join("fusion"),
        sample: pbatch_source::Sample {
            files: config.engine.infer_sample_files,
            rows: config.engine.infer_sample_rows,
        },
        cluster: None,
    }
}

/// A configured text, trimmed; empty counts as not given.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// One S3 endpoint from a config section's fields (each already falling
/// back to `[kodo]`'s); errors name the key to set.
fn s3_endpoint(
    section: &str,
    endpoint: Option<String>,
    ak: Option<String>,
    sk: Option<String>,
    region: Option<String>,
) -> Result<pbatch_source::S3Endpoint> {
    let Some(endpoint) = endpoint else {
        return model_err!(
            InvalidRepoSpec,
            "{section}: no endpoint (set {section}.endpoint or kodo.endpoint)"
        );
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return model_err!(
            InvalidRepoSpec,
            "{section}.endpoint {endpoint:?} must be an http:// or https:// URL"
        );
    }
    let key = |v: Option<String>, name: &str| match v {
        Some(v) => Ok(v),
        None if section == "kodo" => model_err!(
            InvalidRepoSpec,
            "kodo.endpoint is set ({endpoint}) but {name} is not: set it in [kodo] or PBATCH_{}",
            name.replace('.', "_").to_ascii_uppercase()
        ),
        None => model_err!(
            InvalidRepoSpec,
            "{section}.endpoint is set ({endpoint}) but {name} is not: set it in [{section}] or [kodo]"
        ),
    };
    Ok(pbatch_source::S3Endpoint {
        access_key: key(ak, &format!("{section}.access_key"))?,
        secret_key: key(sk, &format!("{section}.secret_key"))?,
        region: region.unwrap_or_else(|| "us-east-1".to_string()),
        endpoint,
    })
}

/// Buckets: the `[kodo]` endpoint's when one is set, else local folders.
fn stores_for(config: &Config, data_dir: &Path) -> Result<Stores> {
    let k = &config.kodo;
    let mut stores = match given(&k.endpoint) {
        None => Stores::new(data_dir),
        Some(e) => Stores::with_s3(
            data_dir,
            s3_endpoint(
                "kodo",
                Some(e),
                given(&k.access_key),
                given(&k.secret_key),
                given(&k.region),
            )?,
        ),
    };
    for (bucket, b) in &k.buckets {
        if !pbatch_model::names::BUCKET.is_match(bucket) {
            return model_err!(
                InvalidRepoSpec,
                "[kodo.buckets.{bucket:?}]: {bucket:?} is not a bucket name (4-63 letters, digits or '-')"
            );
        }
        let place = if b.local {
            if b.endpoint.is_some() {
                return model_err!(
                    InvalidRepoSpec,
                    "kodo.buckets.{bucket}: local = true and an endpoint are both set; keep one"
                );
            }
            None
        } else {
            let pick = |own: &Option<String>, top: &Option<String>| given(own).or_else(|| given(top));
            Some(s3_endpoint(
                &format!("kodo.buckets.{bucket}"),
                pick(&b.endpoint, &k.endpoint),
                pick(&b.access_key, &k.access_key),
                pick(&b.secret_key, &k.secret_key),
                pick(&b.region, &k.region),
            )?)
        };
        stores = stores.with_bucket(bucket, place);
    }
    Ok(stores)
}

/// Whether a process is alive (Linux: `/proc/<pid>`; elsewhere assumed alive,
/// which only leaves staging and runs for a later start to clean).
pub(crate) fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Marks runs left Running (or mid-transition) by a process that is gone as
/// Failed: the engine stopped during the run before its commit point (runs
/// past it were finished by recovery), so nothing was committed.
fn fail_orphaned_runs(catalog: &dyn Catalog, clock: &dyn Clock) -> Result<()> {
    use pbatch_model::RunStatus;
    let active = [
        RunStatus::Running,
        RunStatus::Cancelling,
        RunStatus::Restarting,
        RunStatus::Ready,
    ];
    for mut r in catalog.runs_in(&active)? {
        if r.owner.is_some_and(process_alive) {
            continue;
        }
        r.status = RunStatus::Failed;
        r.end_time = Some(chrono::DateTime::<chrono::Utc>::from(clock.now()));
        r.message = "engine stopped during the run; nothing was committed".to_string();
        catalog.update_run(&r)?;
        tracing::warn!(job = %r.job, run_id = r.run_id, "marked a run left by a stopped engine as Failed");
    }
    Ok(())
}

/// A resource as the catalog stores it.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::internal(format!("serializing: {e}")))
}

impl Engine {
    /// A builder.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The zone magic variables are evaluated in.
    pub fn zone(&self) -> pbatch_magic::Zone {
        self.inner.zone
    }

    pub(crate) fn catalog(&self) -> &dyn Catalog {
        self.inner.catalog.as_ref()
    }

    // ---- datasources ----

    /// Creates a datasource (E18601 if it exists).
    pub fn create_datasource(&self, name: &str, spec: &DatasourceSpec) -> Result<()> {
        spec.validate(name, &self.inner.config.engine.regions)?;
        if !spec.workflow.is_empty() && self.catalog().get(Kind::Workflow, &spec.workflow)?.is_none() {
            return model_err!(
                WorkflowNotFound,
                "workflow {:?} of datasource {name} does not exist; create it first",
                spec.workflow
            );
        }
        if !self.catalog().insert(Kind::Datasource, name, &to_json(spec)?)? {
            return model_err!(DatasourceExists, "datasource {name} already exists");
        }
        Ok(())
    }

    /// Reads a datasource (E18602 if missing).
    pub fn datasource(&self, name: &str) -> Result<DatasourceSpec> {
        match self.catalog().get(Kind::Datasource, name)? {
            Some(v) => DatasourceSpec::from_json(v.to_string().as_bytes()),
            None => model_err!(DatasourceNotFound, "datasource {name} does not exist"),
        }
    }

    // ---- jobs ----

    /// Creates a job after checking its srcs exist and its table names are
    /// unique along its depend chain.
    pub fn create_job(&self, name: &str, spec: &JobSpec) -> Result<()> {
        spec.validate(name)?;
        self.check_job_refs(name, spec)?;
        if !self.catalog().insert(Kind::Job, name, &to_json(spec)?)? {
            return model_err!(BatchJobExists, "job {name} already exists");
        }
        Ok(())
    }

    /// Reads a job (E18606 if missing).
    pub fn job(&self, name: &str) -> Result<JobSpec> {
        match self.catalog().get(Kind::Job, name)? {
            Some(v) => serde_json::from_value(v).map_err(|e| Error::internal(format!("stored job {name}: {e}"))),
            None => model_err!(BatchJobNotFound, "job {name} does not exist"),
        }
    }

    pub(crate) fn check_job_refs(&self, name: &str, spec: &JobSpec) -> Result<()> {
        let mut tables: HashSet<String> = HashSet::new();
        let mut chain = vec![name.to_string()];
        self.collect_tables(spec, &mut tables, &mut chain)?;
        Ok(())
    }

    /// Walks srcs up the depend chain: each must exist, table names must not repeat.
    fn collect_tables(&self, spec: &JobSpec, tables: &mut HashSet<String>, chain: &mut Vec<String>) -> Result<()> {
        for s in &spec.srcs {
            let t = s.table_name.to_ascii_lowercase();
            if !tables.insert(t) {
                return model_err!(
                    DuplicateTableName,
                    "tableName {:?} is used twice along the chain {}",
                    s.table_name,
                    chain.join(" <- ")
                );
            }
            match s.ty {
                SrcType::Datasource => {
                    if self.catalog().get(Kind::Datasource, &s.name)?.is_none() {
                        return model_err!(JobSourceNotFound, "src datasource {} does not exist", s.name);
                    }
                }
                SrcType::Job => {
                    if chain.contains(&s.name) {
                        return model_err!(
                            InvalidJobSpec,
                            "src job {} would make a cycle: {}",
                            s.name,
                            chain.join(" <- ")
                        );
                    }
                    let Some(up) = self.catalog().get(Kind::Job, &s.name)? else {
                        return model_err!(JobSourceNotFound, "src job {} does not exist", s.name);
                    };
                    let up: JobSpec = serde_json::from_value(up)
                        .map_err(|e| Error::internal(format!("stored job {}: {e}", s.name)))?;
                    chain.push(s.name.clone());
                    self.collect_tables(&up, tables, chain)?;
                    chain.pop();
                }
                SrcType::Other(_) => {}
            }
        }
        Ok(())
    }

    // ---- exports ----

    /// Creates an export of a job (E18606 if the job is missing, E18610 if the export exists).
    pub fn create_export(&self, job: &str, name: &str, spec: &ExportSpec) -> Result<()> {
        spec.validate(name)?;
        self.job(job)?;
        self.inner.services.check(spec)?;
        self.check_against_output(job, name, spec)?;
        if !self
            .catalog()
            .insert(Kind::Export, &format!("{job}/{name}"), &to_json(spec)?)?
        {
            return model_err!(JobExportExists, "export {name} of job {job} already exists");
        }
        Ok(())
    }

    /// The exports of a job, by name.
    pub fn exports(&self, job: &str) -> Result<Vec<(String, ExportSpec)>> {
        let mut out = Vec::new();
        for (key, v) in self.catalog().list(Kind::Export, &format!("{job}/"))? {
            let name = key.rsplit('/').next().unwrap_or(&key).to_string();
            out.push((name, ExportSpec::from_json(v.to_string().as_bytes(), None)?));
        }
        Ok(out)
    }

    // ---- variables ----

    /// A user variable as stored: validated, not shadowing a system one
    /// (E18656), its time expression and format checked now rather than at
    /// the first run, and named as the URL names it.
    fn checked_variable(name: &str, spec: &VariableSpec) -> Result<serde_json::Value> {
        spec.validate(name)?;
        if is_system_variable(name) {
            return model_err!(
                VariableShadowsSystem,
                "variable {name} is a system variable and cannot be redefined"
            );
        }
        let mut spec = spec.clone();
        spec.name = name.to_string();
        pbatch_magic::Expander::new(chrono::DateTime::UNIX_EPOCH.fixed_offset()).with_variable(&spec)?;
        to_json(&spec)
    }

    /// Creates a user variable (E18656 if it shadows a system one, E18655 if it exists).
    pub fn create_variable(&self, name: &str, spec: &VariableSpec) -> Result<()> {
        let v = Self::checked_variable(name, spec)?;
        if !self.catalog().insert(Kind::Variable, name, &v)? {
            return model_err!(VariableExists, "variable {name} already exists");
        }
        Ok(())
    }

    /// Replaces a user variable (E18654 if missing).
    pub fn update_variable(&self, name: &str, spec: &VariableSpec) -> Result<()> {
        let v = Self::checked_variable(name, spec)?;
        if !self.catalog().replace(Kind::Variable, name, &v)? {
            return model_err!(VariableNotFound, "variable {name} does not exist");
        }
        Ok(())
    }

    /// Reads a variable, system or user (E18654 if missing).
    pub fn variable(&self, name: &str) -> Result<VariableSpec> {
        if let Some(v) = pbatch_magic::system_variables().into_iter().find(|v| v.name == name) {
            return Ok(v);
        }
        match self.catalog().get(Kind::Variable, name)? {
            Some(v) => serde_json::from_value(v).map_err(|e| Error::internal(format!("stored variable {name}: {e}"))),
            None => model_err!(VariableNotFound, "variable {name} does not exist"),
        }
    }

    /// Deletes a user variable (E18654 if missing; system variables cannot be deleted).
    pub fn delete_variable(&self, name: &str) -> Result<()> {
        if is_system_variable(name) {
            return model_err!(
                VariableShadowsSystem,
                "variable {name} is a system variable and cannot be deleted"
            );
        }
        if !self.catalog().delete(Kind::Variable, name)? {
            return model_err!(VariableNotFound, "variable {name} does not exist");
        }
        Ok(())
    }

    /// Variables by the API's `type` query: `system`, `user`, or both when absent.
    pub fn list_variables(&self, kind: Option<&str>) -> Result<Vec<VariableSpec>> {
        match kind.map(str::to_ascii_lowercase).as_deref() {
            Some("system") => Ok(pbatch_magic::system_variables()),
            Some("user") => self.variables(),
            None | Some("") => {
                let mut all = pbatch_magic::system_variables();
                all.extend(self.variables()?);
                Ok(all)
            }
            Some(other) => model_err!(InvalidVariableType, "type {other:?} is invalid; use system or user"),
        }
    }

    /// Every variable (system, then user) with its value now, in the
    /// engine's zone: what `$(name)` would expand to in a batch starting
    /// now. A variable whose value cannot be computed has the error instead.
    pub fn variable_values(&self) -> Result<Vec<(VariableSpec, std::result::Result<String, String>)>> {
        let now = self.now_utc();
        let mut out = Vec::new();
        for v in self.list_variables(None)? {
            let value = pbatch_magic::Expander::in_zone(now, self.zone())
                .with_variable(&v)
                .map_err(|e| e.to_string())
                .and_then(|ex| ex.value(&v.name).ok_or_else(|| format!("{} has no value", v.name)));
            out.push((v, value));
        }
        Ok(out)
    }

    /// Every user variable.
    pub fn variables(&self) -> Result<Vec<VariableSpec>> {
        self.catalog()
            .list(Kind::Variable, "")?
            .into_iter()
            .map(|(k, v)| serde_json::from_value(v).map_err(|e| Error::internal(format!("stored variable {k}: {e}"))))
            .collect()
    }

    /// The scheduler type of a job.
    pub fn scheduler_type(&self, job: &str) -> Result<SchedulerType> {
        Ok(self.job(job)?.scheduler_type())
    }
}
