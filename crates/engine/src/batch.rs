//! One batch: srcs -> SQL -> exports, committed only when all succeeded.

use crate::catalog::RunRecord;
use crate::engine::Engine;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, FixedOffset, Timelike};
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use pbatch_exec::{Sizing, plan_sql, rows_read, session, strip_df};
use pbatch_magic::{Expander, format_java};
use pbatch_model::{
    Error, ErrorCode, ExportSpec, JobSpec, Result, RunStatus, SchedulerType, SourceSpec, SrcType, model_err,
};
use pbatch_sink::{CommitReport, FileExport, FormatOptions, Naming, TIMESTAMP_SUFFIX_FORMAT};
use pbatch_source::{FileOptions, RecordRules, arrow_schema, infer_schema, list_keys, table_for, verify_schema};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

/// Folder under the data dir holding staged output.
pub(crate) const STAGING_DIR: &str = ".staging";

/// Folder under the data dir keeping the results of jobs that have
/// downstream jobs: `results/<job>/<batch time>/part-00000.parquet`.
pub(crate) const RESULTS_DIR: &str = "results";

/// The kept result's name among a batch's staged exports.
const RESULT_EXPORT: &str = ".result";

/// Days a kept result stays (a downstream rerun of an older batch computes
/// the upstream's SQL again).
const RESULT_RETENTION_DAYS: i64 = 7;

/// What one batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// Job.
    pub job: String,
    /// The batch's id in the job's history.
    pub run_id: i64,
    /// The batch time, as wall-clock time of the engine's zone.
    pub batch_time: DateTime<FixedOffset>,
    /// Files the srcs listed.
    pub files_read: usize,
    /// Rows the scans produced.
    pub rows_read: u64,
    /// Rows the SQL produced.
    pub rows_out: u64,
    /// Invalid source records skipped (`omitInvalid`).
    pub invalid_skipped: u64,
    /// The first few of them, as `file line N: why`.
    pub invalid_samples: Vec<String>,
    /// Per export.
    pub exports: Vec<CommitReport>,
    /// Wall time.
    pub seconds: f64,
}

/// Progress of a running batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A new stage began.
    Stage(String),
    /// Rows the SQL has produced so far.
    Rows(u64),
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Maps an error met while the plan ran to the code that says whose it is:
/// data that does not decode is `E18623`, a query that fails on the data
/// (division by zero, a bad cast) `E18618`, storage `E18338`, memory `E18621`.
fn exec_err(e: datafusion::error::DataFusionError) -> Error {
    use arrow::error::ArrowError as A;
    use datafusion::error::DataFusionError as D;
    if let D::External(inner) = e.find_root()
        && let Some(err) = inner.downcast_ref::<Error>()
    {
        return err.clone();
    }
    let code = match e.find_root() {
        D::ArrowError(a, _) => match a.as_ref() {
            A::DivideByZero
            | A::CastError(_)
            | A::ComputeError(_)
            | A::ArithmeticOverflow(_)
            | A::InvalidArgumentError(_) => ErrorCode::InvalidJobSql,
            _ => ErrorCode::FileFormatMismatch,
        },
        D::ParquetError(..) => ErrorCode::FileFormatMismatch,
        D::ObjectStore(..) | D::IoError(..) => ErrorCode::StatFileFailed,
        D::ResourcesExhausted(..) => ErrorCode::StartJobFailed,
        D::Plan(..) | D::SQL(..) | D::SchemaError(..) => ErrorCode::InvalidSql,
        D::Execution(..) => ErrorCode::InvalidJobSql,
        D::NotImplemented(..) => ErrorCode::NotImplemented,
        _ => ErrorCode::Internal,
    };
    Error::new(code, format!("batch failed: {}", strip_df(&e.to_string())))
}

fn canceled_error() -> Error {
    Error::new(
        ErrorCode::BatchRerunCancelError,
        "the batch was stopped; nothing was committed",
    )
}

fn check_canceled(cancel: &tokio::sync::watch::Receiver<bool>) -> Result<()> {
    if *cancel.borrow() {
        Err(canceled_error())
    } else {
        Ok(())
    }
}

/// A unique token for one batch attempt.
fn token(batch_time: &DateTime<FixedOffset>) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos:09}",
        batch_time.format("%Y%m%d%H%M%S"),
        std::process::id()
    )
}

impl Engine {
    /// Runs one batch of `job` at `batch_time` with start `params`, then
    /// commits every export. On any error nothing is committed.
    pub async fn run_once(
        &self,
        job: &str,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
    ) -> Result<RunReport> {
        self.run_once_with(job, params, batch_time, Arc::new(|_| {})).await
    }

    /// [`run_once`](Self::run_once) reporting progress. The batch is
    /// recorded in the job's history: Running, then Successful, Failed with
    /// the error's message, or Canceled when [`stop_batch`](Self::stop_batch)
    /// stopped it.
    pub async fn run_once_with(
        &self,
        job: &str,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
        progress: ProgressFn,
    ) -> Result<RunReport> {
        let record = self.new_run(job, params, batch_time)?;
        let cancel = self.register_active(&record)?;
        self.execute_attempt(record, progress, cancel).await
    }

    /// Checks a start and records a Running batch. Refused starts (unknown
    /// job, undeclared or bad params) make no batch.
    pub(crate) fn new_run(
        &self,
        job: &str,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
    ) -> Result<RunRecord> {
        let spec = self.job(job)?;
        let root = self.root_of(job, &spec)?;
        self.expander(&root.1, params, batch_time)?;
        let mut record = RunRecord {
            job: job.to_string(),
            run_id: 0,
            batch_time: batch_time.to_utc(),
            start_time: None,
            end_time: None,
            status: RunStatus::Ready,
            message: String::new(),
            rerun_count: 0,
            params: params.to_vec(),
            owner: Some(std::process::id()),
        };
        self.add_run(&mut record)?;
        Ok(record)
    }

    /// Runs one attempt of a recorded batch to its end and records the outcome.
    pub(crate) async fn execute_attempt(
        &self,
        mut record: RunRecord,
        progress: ProgressFn,
        mut cancel: tokio::sync::watch::Receiver<bool>,
    ) -> Result<RunReport> {
        // whatever happens below (an error, a panic), the batch leaves the active map
        struct Unregister<'a>(&'a Engine, String, i64);
        impl Drop for Unregister<'_> {
            fn drop(&mut self) {
                self.0.unregister_active(&self.1, self.2);
            }
        }
        let guard = Unregister(self, record.job.clone(), record.run_id);
        let batch_time = self.zone().local(record.batch_time);
        // a slot among [engine] max_concurrent_batches; the batch is Ready until then
        let permit = tokio::select! {
            p = self.inner.permits.clone().acquire_owned() => p.ok(),
            _ = cancel.wait_for(|c| *c) => None,
        };
        let result = match permit {
            Some(_) if !*cancel.borrow() => {
                if record.status == RunStatus::Ready {
                    record.status = RunStatus::Running;
                    record.start_time = Some(self.now_utc());
                    self.save_run(&record)?;
                }
                self.run_batch(
                    &record.job,
                    record.run_id,
                    &record.params,
                    batch_time,
                    progress,
                    &mut cancel,
                )
                .await
            }
            _ => Err(canceled_error()),
        };
        drop(permit);
        drop(guard);
        // re-read: a stop may have moved the record to Cancelling meanwhile
        if let Some(current) = self.catalog().get_run(&record.job, record.run_id)? {
            record.status = current.status;
        }
        record.end_time = Some(self.now_utc());
        let canceled = *cancel.borrow();
        match &result {
            Ok(r) => {
                record.status = RunStatus::Successful;
                record.message = format!(
                    "read {} rows from {} files, wrote {} rows into {} files",
                    r.rows_read,
                    r.files_read,
                    r.rows_out,
                    r.exports.iter().map(|e| e.keys.len()).sum::<usize>()
                );
                if r.invalid_skipped > 0 {
                    record.message += &format!(
                        "; skipped {} invalid records (omitInvalid), first: {}",
                        r.invalid_skipped,
                        r.invalid_samples.join("; ")
                    );
                }
            }
            Err(_) if canceled => {
                record.status = RunStatus::Canceled;
                record.message = "stopped by request; nothing was committed".to_string();
            }
            Err(e) => {
                record.status = RunStatus::Failed;
                record.message = e.to_string();
            }
        }
        if record.start_time.is_none() {
            record.start_time = record.end_time;
        }
        self.save_run(&record)?;
        tracing::info!(job = %record.job, run_id = record.run_id, status = %record.status, "batch ended");
        if let Err(e) = self.after_batch(&record) {
            tracing::warn!(job = %record.job, error = %e, "scheduling after the batch failed");
        }
        result
    }

    async fn run_batch(
        &self,
        job: &str,
        run_id: i64,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
        progress: ProgressFn,
        cancel: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<RunReport> {
        let started = Instant::now();
        let spec = self.job(job)?;
        let root = self.root_of(job, &spec)?;
        let expander = self.expander(&root.1, params, batch_time)?;
        let ctx = session(Sizing::for_container(root.1.container.as_ref()))?;

        progress(Progress::Stage("listing files".into()));
        let mut files_read = 0;
        self.register_srcs(&ctx, &spec, &expander, &mut files_read, &mut HashSet::new())
            .await?;

        check_canceled(cancel)?;
        progress(Progress::Stage("planning".into()));
        let sql = expander.expand(&spec.computation.code, "computation.code")?;
        let mut df = plan_sql(&ctx, &sql).await?;
        // One partitioned export: sort by its partition columns (spilling if
        // need be) so each folder's rows arrive together and its files can be
        // finished before the next folder's open.
        let partitioned: Vec<Vec<String>> = self
            .exports(job)?
            .iter()
            .filter_map(|(_, e)| e.file_options().map(|o| o.partition_by().to_vec()))
            .filter(|p| !p.is_empty())
            .collect();
        if let [cols] = partitioned.as_slice()
            && cols.iter().all(|c| df.schema().has_column_with_unqualified_name(c))
        {
            let sort = cols
                .iter()
                .map(|c| datafusion::prelude::ident(c).sort(true, true))
                .collect();
            df = df.sort(sort).map_err(exec_err)?;
        }
        let schema: arrow::datatypes::SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let plan = df.create_physical_plan().await.map_err(exec_err)?;

        let token = token(&batch_time);
        let staging = self.data_dir().join(STAGING_DIR).join(&token);
        let result = self
            .compute_and_stage(
                &ctx,
                job,
                &spec,
                &expander,
                plan.clone(),
                schema,
                &staging,
                &token,
                &progress,
                cancel,
            )
            .await;
        let (rows_out, mut staged, services) = match result {
            Ok(v) => v,
            Err(e) => {
                pbatch_sink::discard(&staging);
                return Err(e);
            }
        };

        if let Err(e) = check_canceled(cancel) {
            pbatch_sink::discard(&staging);
            return Err(e);
        }
        progress(Progress::Stage("committing".into()));
        // remote targets (uploads that can fail) commit before local folders (renames)
        staged.sort_by_key(|s| matches!(s.export.target, pbatch_sink::Target::Local(_)));
        if let Err(e) = pbatch_sink::precheck_all(&staged).await {
            pbatch_sink::discard(&staging);
            return Err(e);
        }
        let mut exports = Vec::new();
        // services first: a send that fails leaves every file export uncommitted
        for svc in services {
            if let Err(e) = check_canceled(cancel) {
                pbatch_sink::discard(&staging);
                return Err(e);
            }
            match pbatch_sink::send(svc, &self.inner.http).await {
                Ok(r) => exports.push(CommitReport {
                    export: r.export,
                    keys: Vec::new(),
                    rows: r.records,
                    bytes: 0,
                    replaced: 0,
                    skipped: false,
                    expired: 0,
                    invalid: r.invalid,
                }),
                Err(e) => {
                    pbatch_sink::discard(&staging);
                    return Err(e);
                }
            }
        }
        for s in staged {
            match pbatch_sink::commit(s, self.inner.clock.now()).await {
                Ok(r) if r.export == RESULT_EXPORT => {}
                Ok(r) => exports.push(r),
                Err(e) => {
                    pbatch_sink::discard(&staging);
                    return Err(e);
                }
            }
        }
        pbatch_sink::discard(&staging);
        let (invalid_skipped, invalid_samples) = pbatch_source::skipped_records(&plan);
        let report = RunReport {
            job: job.to_string(),
            run_id,
            batch_time: expander.batch_time(),
            files_read,
            rows_read: rows_read(&plan),
            rows_out,
            invalid_skipped,
            invalid_samples,
            exports,
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::info!(
            job,
            rows_read = report.rows_read,
            rows_out,
            seconds = report.seconds,
            "batch committed"
        );
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn compute_and_stage(
        &self,
        ctx: &SessionContext,
        job: &str,
        spec: &JobSpec,
        expander: &Expander,
        plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        schema: arrow::datatypes::SchemaRef,
        staging: &std::path::Path,
        token: &str,
        progress: &ProgressFn,
        cancel: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(u64, Vec<pbatch_sink::StagedExport>, Vec<pbatch_sink::StagedService>)> {
        let manual = spec.scheduler_type() == SchedulerType::Manual;
        let mut files = Vec::new();
        let mut services = Vec::new();
        for (name, export) in self.exports(job)? {
            match self.service_export(&name, &export, expander)? {
                Some(se) => services.push(pbatch_sink::spawn_service_writer(
                    se,
                    Arc::clone(&schema),
                    staging.join(&name),
                )),
                None => files.push((name.clone(), self.file_export(&name, &export, expander, manual)?)),
            }
        }
        if !self.list_jobs(None, Some(job))?.is_empty() {
            files.push((RESULT_EXPORT.to_string(), self.result_export(job, expander)?));
        }
        let mut writers = Vec::new();
        for (name, fe) in files {
            writers.push(pbatch_sink::spawn_file_writer(
                fe,
                Arc::clone(&schema),
                staging.join(&name),
                token.to_string(),
            ));
        }
        let senders: Vec<tokio::sync::mpsc::Sender<RecordBatch>> = writers
            .iter()
            .map(|w| w.sender.clone())
            .chain(services.iter().map(|w| w.sender.clone()))
            .collect();
        progress(Progress::Stage("running".into()));
        let mut stream = execute_stream(plan, ctx.task_ctx()).map_err(exec_err)?;
        let mut rows: u64 = 0;
        let mut failed: Option<Error> = None;
        loop {
            // a stop drops the stream, which stops DataFusion's tasks
            let next = tokio::select! {
                next = stream.next() => next,
                _ = cancel.wait_for(|c| *c) => {
                    failed = Some(canceled_error());
                    break;
                }
            };
            let Some(batch) = next else { break };
            let batch: RecordBatch = match batch {
                Ok(b) => b,
                Err(e) => {
                    failed = Some(exec_err(e));
                    break;
                }
            };
            rows += batch.num_rows() as u64;
            progress(Progress::Rows(rows));
            let mut closed = false;
            for w in &senders {
                if w.send(batch.clone()).await.is_err() {
                    closed = true;
                }
            }
            if closed {
                break; // a writer failed: its error comes out of finish_writer
            }
        }
        drop(stream);
        drop(senders);
        let mut staged = Vec::new();
        for w in writers {
            match pbatch_sink::finish_writer(w).await {
                Ok(s) => staged.push(s),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        let mut staged_services = Vec::new();
        for w in services {
            match pbatch_sink::finish_service_writer(w).await {
                Ok(s) => staged_services.push(s),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok((rows, staged, staged_services)),
        }
    }

    /// Resolves an http / tsdb / logdb export; `None` for file exports.
    fn service_export(
        &self,
        name: &str,
        export: &ExportSpec,
        expander: &Expander,
    ) -> Result<Option<pbatch_sink::ServiceExport>> {
        use pbatch_sink::{ServiceKind, mapped_column};
        self.check_export_configured(export)?;
        let c = &self.inner.config;
        let url_of = |u: &Option<String>| u.clone().unwrap_or_default();
        let kind = match export {
            ExportSpec::Http(h) => {
                let host = h.host.trim().trim_end_matches('/');
                let base = if host.contains("://") {
                    host.to_string()
                } else {
                    format!("http://{host}")
                };
                ServiceKind::Http {
                    url: format!("{base}{}", h.uri),
                    format: h.format.clone().unwrap_or(pbatch_model::HttpFormat::Text),
                }
            }
            ExportSpec::Tsdb(t) => {
                let col = |field: String, v: &str| mapped_column(name, &field, v).map(str::to_string);
                ServiceKind::Tsdb {
                    base: url_of(&c.tsdb.url),
                    db: t.dest_repo_name.clone(),
                    series: t.series.clone(),
                    tags: t
                        .tags
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), col(format!("tags.{k}"), v)?)))
                        .collect::<Result<_>>()?,
                    fields: t
                        .fields
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), col(format!("fields.{k}"), v)?)))
                        .collect::<Result<_>>()?,
                    timestamp: t.timestamp.as_deref().map(|v| col("timestamp".into(), v)).transpose()?,
                    batch_time_ns: expander.batch_time().timestamp_nanos_opt().unwrap_or(0),
                    omit_invalid: t.omit_invalid,
                }
            }
            ExportSpec::Logdb(l) => ServiceKind::Logdb {
                base: url_of(&c.logdb.url),
                index: l.dest_repo_name.clone(),
                doc: l.doc.clone(),
                omit_invalid: l.omit_invalid,
            },
            ExportSpec::Report(r) => ServiceKind::Report(pbatch_sink::ReportTarget {
                url: url_of(&c.report.url),
                db: r.db_name.clone(),
                table: r.table_name.clone(),
                columns: r
                    .columns
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), mapped_column(name, &format!("columns.{k}"), v)?.to_string())))
                    .collect::<Result<_>>()?,
                overwrite: r.save_mode == Some(pbatch_model::SaveMode::Overwrite),
            }),
            _ => return Ok(None),
        };
        Ok(Some(pbatch_sink::ServiceExport {
            name: name.to_string(),
            kind,
            batch_records: c.engine.sink_batch_records,
        }))
    }

    /// Where a job's kept result of one batch lies (read by its downstreams).
    pub(crate) fn result_dir(&self, job: &str, batch_time: &DateTime<FixedOffset>) -> std::path::PathBuf {
        self.data_dir()
            .join(RESULTS_DIR)
            .join(job)
            .join(format_java(batch_time, TIMESTAMP_SUFFIX_FORMAT))
    }

    /// The kept result of a job with downstream jobs: parquet (snappy) in
    /// the data dir, one folder per batch time, replaced by a rerun.
    fn result_export(&self, job: &str, expander: &Expander) -> Result<FileExport> {
        let compression = pbatch_model::Compression::Snappy;
        let format = pbatch_model::ExportFormat::Parquet;
        let ext = Naming::extension_of(&format, &compression);
        let folder = format_java(&expander.batch_time(), TIMESTAMP_SUFFIX_FORMAT);
        Ok(FileExport {
            name: RESULT_EXPORT.to_string(),
            target: pbatch_sink::Target::Local(self.data_dir().join(RESULTS_DIR).join(job)),
            naming: Naming::Parts {
                prefix: format!("{folder}/"),
                ext: ext.clone(),
            },
            options: FormatOptions {
                format,
                compression,
                delimiter: b',',
                header: false,
            },
            file_count: 1,
            partition_by: Vec::new(),
            save_mode: pbatch_model::SaveMode::Overwrite,
            retention_days: RESULT_RETENTION_DAYS,
            retention_prefix: String::new(),
            retention_pattern: Some(pbatch_sink::retention_pattern("", false, true, &ext)?),
        })
    }

    /// Resolves an export into where and how its files go.
    fn file_export(&self, name: &str, export: &ExportSpec, expander: &Expander, manual: bool) -> Result<FileExport> {
        // the key prefix template (variables unexpanded), where it goes, and the field naming it
        let (template, target, field) = match export {
            ExportSpec::Kodo(k) => {
                let target = match self.inner.stores.local_dir(&k.bucket) {
                    Some(dir) => pbatch_sink::Target::Local(dir),
                    None => pbatch_sink::Target::Store {
                        store: self.inner.stores.bucket_for_write(&k.bucket)?,
                        label: self.inner.stores.describe(&k.bucket),
                    },
                };
                (k.key_prefix.clone(), target, format!("export {name} spec.keyPrefix"))
            }
            ExportSpec::Hdfs(h) => {
                let field = format!("export {name} spec.path");
                // hdfs://<authority>/<path>: the authority is expanded alone,
                // the path is the key prefix inside the cluster
                let rest = h.path.trim().strip_prefix("hdfs://").unwrap_or(h.path.trim());
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let authority = expander.expand(authority, &field)?;
                let nn = pbatch_source::HdfsPath::parse(&field, &format!("hdfs://{authority}/"))?;
                let target = pbatch_sink::Target::Store {
                    store: pbatch_source::hdfs_store(&nn.namenode)?,
                    label: format!("hdfs NameNode {}", nn.label()),
                };
                (pbatch_source::percent_decode(path), target, field)
            }
            _ => {
                return model_err!(Internal, "export {name}: {} exports write no files", export.kind());
            }
        };
        let Some(k) = export.file_options() else {
            return model_err!(Internal, "export {name} has no file options");
        };
        let compression = k.compression();
        let ext = Naming::extension_of(k.format(), &compression);
        let (prefix, vars) = expander.expand_counting(&template, &field)?;
        // a variable (a param, say) must not lead the output out of its prefix
        pbatch_model::names::check_relative_key(&field, &prefix)?;
        if manual && prefix.ends_with('/') {
            return model_err!(
                InvalidJobExportSpec,
                "{field} {prefix:?} ends with '/': for a manual job the keyPrefix is the file name"
            );
        }
        let retention_pattern = if k.retention() > 0 {
            Some(pbatch_sink::retention_pattern(
                &template,
                manual,
                !manual && vars == 0,
                &ext,
            )?)
        } else {
            None
        };
        let naming = if manual {
            let name = if prefix.is_empty() {
                format!("{}{ext}", format_java(&expander.batch_time(), TIMESTAMP_SUFFIX_FORMAT))
            } else {
                prefix
            };
            Naming::Exact { name, ext }
        } else if vars == 0 {
            // seed note 2: an empty or variable-free keyPrefix gets the batch time
            let ts = format_java(&expander.batch_time(), TIMESTAMP_SUFFIX_FORMAT);
            Naming::Parts {
                prefix: format!("{prefix}{ts}/"),
                ext,
            }
        } else {
            Naming::Parts { prefix, ext }
        };
        let delimiter = match k.delimiter() {
            Some("\\t") => b'\t',
            Some(d) if d.len() == 1 => d.as_bytes()[0],
            Some(d) => {
                return model_err!(
                    InvalidJobExportSpec,
                    "export {name}: spec.delimiter {d:?} must be one ASCII character"
                );
            }
            None => b'\t',
        };
        Ok(FileExport {
            name: name.to_string(),
            target,
            naming,
            options: FormatOptions {
                format: k.format().clone(),
                compression,
                delimiter,
                header: k.contains_header(),
            },
            file_count: k.file_count(),
            partition_by: k.partition_by().to_vec(),
            save_mode: k.save_mode(),
            retention_days: k.retention(),
            retention_prefix: pbatch_sink::static_prefix(&template).to_string(),
            retention_pattern,
        })
    }

    /// The job whose params and container a (depend) job runs with.
    pub(crate) fn root_of(&self, name: &str, spec: &JobSpec) -> Result<(String, JobSpec)> {
        let mut cur = (name.to_string(), spec.clone());
        let mut seen = HashSet::new();
        while cur.1.scheduler_type() == SchedulerType::Depend {
            if !seen.insert(cur.0.clone()) {
                return model_err!(InvalidJobSpec, "depend chain of job {name} loops at {}", cur.0);
            }
            let Some(up) = cur.1.srcs.iter().find(|s| s.ty == SrcType::Job) else {
                return model_err!(InvalidBatchSpec, "depend job {} has no job src", cur.0);
            };
            let up_name = up.name.clone();
            cur = (up_name.clone(), self.job(&up_name)?);
        }
        Ok(cur)
    }

    /// System variables, user variables, then the job's params (defaults,
    /// overridden by start params).
    pub(crate) fn expander(
        &self,
        root: &JobSpec,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
    ) -> Result<Expander> {
        let mut ex = Expander::in_zone(batch_time.to_utc(), self.zone());
        for v in self.variables()? {
            ex = ex.with_variable(&v)?;
        }
        for p in &root.params {
            ex = ex.with_param(&p.name, &p.default);
        }
        for (k, v) in params {
            if !root.params.iter().any(|p| &p.name == k) {
                let declared: Vec<&str> = root.params.iter().map(|p| p.name.as_str()).collect();
                return model_err!(
                    WrongJobArgumentCount,
                    "param {k:?} is not declared by the job (declared: {})",
                    if declared.is_empty() {
                        "none".to_string()
                    } else {
                        declared.join(", ")
                    }
                );
            }
            if v.chars().count() > 64 {
                return model_err!(InvalidVariableValue, "param {k} value is longer than 64 characters");
            }
            ex = ex.with_param(k, v);
        }
        Ok(ex)
    }

    /// Registers a job's srcs as tables; job srcs become views of their SQL.
    fn register_srcs<'a>(
        &'a self,
        ctx: &'a SessionContext,
        spec: &'a JobSpec,
        expander: &'a Expander,
        files_read: &'a mut usize,
        seen: &'a mut HashSet<String>,
    ) -> futures::future::BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for src in &spec.srcs {
                let table = src.table_name.to_ascii_lowercase();
                match src.ty {
                    SrcType::Job => {
                        if !seen.insert(src.name.clone()) {
                            return model_err!(InvalidJobSpec, "src job {} appears twice in the chain", src.name);
                        }
                        let up = self.job(&src.name)?;
                        let kept = self.result_dir(&src.name, &expander.batch_time());
                        if kept.is_dir() {
                            // the upstream's committed result of this batch time
                            let path = format!("{}/", kept.display());
                            ctx.register_parquet(table.as_str(), &path, Default::default())
                                .await
                                .map_err(|e| {
                                    Error::new(
                                        ErrorCode::FileFormatMismatch,
                                        format!(
                                            "kept result of job {} at {path}: {}",
                                            src.name,
                                            strip_df(&e.to_string())
                                        ),
                                    )
                                })?;
                            tracing::debug!(job = %src.name, path, "reading the upstream's kept result");
                            continue;
                        }
                        self.register_srcs(ctx, &up, expander, files_read, seen).await?;
                        let sql =
                            expander.expand(&up.computation.code, &format!("job {} computation.code", src.name))?;
                        let df = plan_sql(ctx, &sql)
                            .await
                            .map_err(|e| e.context(format!("upstream job {}", src.name)))?;
                        ctx.register_table(table.as_str(), df.into_view())
                            .map_err(|e| Error::internal(format!("registering {table}: {e}")))?;
                    }
                    _ => {
                        let ds = self.datasource(&src.name)?;
                        if let SourceSpec::Fusion(fu) = &ds.source {
                            let filter = if src.file_filter.trim().is_empty() {
                                &fu.file_filter
                            } else {
                                &src.file_filter
                            };
                            let provider = self
                                .fusion_table(&src.name, fu, filter, expander, ds.omit_invalid, files_read)
                                .await?;
                            ctx.register_table(table.as_str(), provider)
                                .map_err(|e| Error::internal(format!("registering {table}: {e}")))?;
                            continue;
                        }
                        let place = format!("src {} fileFilter", src.name);
                        let filter = expander.expand(&src.file_filter, &place)?;
                        let loc = self.source_location(&src.name, &ds.source, expander)?;
                        ctx.register_object_store(&loc.url, Arc::clone(&loc.store));
                        let (store, url, place) = (loc.store, loc.url, loc.place);
                        let files = list_keys(store.as_ref(), &place, &loc.prefixes, &filter)
                            .await
                            .map_err(|e| e.context(format!("datasource {}", src.name)))?;
                        *files_read += files.len();
                        let opts = loc.options;
                        let sample = self.sample();
                        let in_ds = |e: Error| e.context(format!("datasource {}", src.name));
                        let schema = if ds.schema.is_empty() {
                            infer_schema(&ctx.state(), &store, &place, &files, &opts, sample)
                                .await
                                .map_err(in_ds)?
                        } else {
                            if !ds.no_verify_schema {
                                verify_schema(&ctx.state(), &store, &place, &files, &opts, &ds.schema, sample)
                                    .await
                                    .map_err(in_ds)?;
                            }
                            arrow_schema(&ds.schema)
                        };
                        let rules = RecordRules {
                            required: ds.schema.iter().filter(|f| f.required).map(|f| f.key.clone()).collect(),
                            omit_invalid: ds.omit_invalid,
                        };
                        let provider = table_for(&store, &url, &place, &files, &opts, schema, &rules).map_err(in_ds)?;
                        ctx.register_table(table.as_str(), provider)
                            .map_err(|e| Error::internal(format!("registering {table}: {e}")))?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// Where a kodo or hdfs datasource's files are.
pub(crate) struct SourceLocation {
    /// Rooted at the bucket or the NameNode.
    pub(crate) store: Arc<dyn object_store::ObjectStore>,
    /// What DataFusion knows the store by.
    pub(crate) url: url::Url,
    /// For messages.
    pub(crate) place: String,
    /// Expanded key prefixes (kodo `keyPrefixes`, hdfs `paths`).
    pub(crate) prefixes: Vec<String>,
    /// File layout.
    pub(crate) options: FileOptions,
}

impl Engine {
    /// The store, prefixes and layout of a kodo or hdfs source, variables
    /// expanded with `expander`. The paths of an hdfs source must share one
    /// NameNode.
    pub(crate) fn source_location(
        &self,
        name: &str,
        source: &SourceSpec,
        expander: &Expander,
    ) -> Result<SourceLocation> {
        // names a field: `datasource <name> spec.x`, or `spec.x` for a request body
        let at = |f: String| {
            if name.is_empty() {
                f
            } else {
                format!("datasource {name} {f}")
            }
        };
        match source {
            SourceSpec::Kodo(k) => {
                let mut prefixes = Vec::new();
                for (i, p) in k.key_prefixes.iter().enumerate() {
                    prefixes.push(expander.expand(p, &at(format!("spec.keyPrefixes[{i}]")))?);
                }
                Ok(SourceLocation {
                    store: self.inner.stores.bucket(&k.bucket)?,
                    url: pbatch_source::Stores::bucket_url(&k.bucket)?,
                    place: self.inner.stores.describe(&k.bucket),
                    prefixes,
                    options: FileOptions::new(&k.file_type, k.delimiter.as_deref(), k.contains_header)?,
                })
            }
            SourceSpec::Hdfs(h) => {
                let mut first: Option<pbatch_source::HdfsPath> = None;
                let mut prefixes = Vec::new();
                for (i, p) in h.paths.iter().enumerate() {
                    let field = at(format!("spec.paths[{i}]"));
                    let path = pbatch_source::HdfsPath::parse(&field, &expander.expand(p, &field)?)?;
                    if let Some(f) = &first
                        && f.namenode != path.namenode
                    {
                        return model_err!(
                            InvalidRepoSpec,
                            "{field} is on NameNode {} but spec.paths[0] on {}: one datasource reads one cluster",
                            path.label(),
                            f.label()
                        );
                    }
                    prefixes.push(path.path.clone());
                    first.get_or_insert(path);
                }
                let Some(nn) = first else {
                    return model_err!(InvalidRepoSpec, "{} is empty", at("spec.paths".into()));
                };
                Ok(SourceLocation {
                    store: pbatch_source::hdfs_store(&nn.namenode)?,
                    url: nn.namenode.clone(),
                    place: format!("hdfs NameNode {}", nn.label()),
                    prefixes,
                    options: FileOptions::new(&h.file_type, h.delimiter.as_deref(), h.contains_header)?,
                })
            }
            SourceSpec::Fusion(_) => {
                model_err!(Internal, "{}: fusion sources have no file location", at("type".into()))
            }
        }
    }

    /// A fusion datasource's table: the log files of its domain for the hours
    /// of `filter` (empty: the 24 hours before the batch time), downloaded
    /// first when `[fusion] endpoint` is set.
    async fn fusion_table(
        &self,
        name: &str,
        fu: &pbatch_model::FusionSourceSpec,
        filter: &str,
        expander: &Expander,
        omit_invalid: bool,
        files_read: &mut usize,
    ) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
        let in_ds = |e: Error| e.context(format!("datasource {name}"));
        let Some(domain) = fu.domains.first() else {
            return model_err!(InvalidRepoSpec, "datasource {name}: spec.domains is empty");
        };
        let (start, end) = if filter.trim().is_empty() {
            let t = expander.batch_time();
            let hour = t
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(t);
            (hour - chrono::Duration::hours(24), hour)
        } else {
            expander.hour_range(filter).map_err(in_ds)?
        };
        let cfg = &self.inner.config.fusion;
        let client = match cfg.endpoint.as_deref().filter(|e| !e.is_empty()) {
            Some(endpoint) => Some(pbatch_source::FusionClient::new(
                endpoint,
                cfg.access_key.as_deref().unwrap_or(""),
                cfg.secret_key.as_deref().unwrap_or(""),
            )?),
            None => None,
        };
        let root = self.inner.data_dir.join("fusion");
        let table = pbatch_source::fusion_table(&root, client.as_ref(), domain, start, end, omit_invalid)
            .await
            .map_err(in_ds)?;
        *files_read += table.file_count();
        Ok(Arc::new(table))
    }
}
