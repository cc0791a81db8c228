//! [`BatchPlan`]: one batch's physical plan and what it will read.

use crate::error::{Error, Result};
use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::provider_as_source;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::SessionContext;
use pbatch_magic::Expander;
use pbatch_model::ErrorCode;
use std::sync::Arc;

use crate::session::{Sizing, plan_sql, session, session_parts, strip_df};
use crate::srcs::{ReadPlan, ResolvedSrc, SourceEnv, register};
use pbatch_cluster::{ClusterCounts, ClusterPlan, remote_session};

/// What one batch computes.
#[derive(Debug, Clone, Copy)]
pub struct BatchInput<'a> {
    /// The job's `computation.code`, variables unexpanded.
    pub code: &'a str,
    /// The job's srcs, resolved.
    pub srcs: &'a [ResolvedSrc],
    /// Variables at the batch time, with the start's params.
    pub expander: &'a Expander,
    /// From the job's container.
    pub sizing: Sizing,
    /// Sort the result by these columns (a partitioned export's `partitionBy`)
    /// when they are all in it, so each folder's rows arrive together.
    pub sort_by: &'a [String],
    /// Names the batch where it runs (the cluster's job name).
    pub name: &'a str,
}

/// Where a batch runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// In this process.
    Local,
    /// On the Ballista cluster of this scheduler.
    Cluster {
        /// `df://host:port`.
        scheduler: String,
        /// Partitions the job's stages ran (a task runs one or more),
        /// once it finished.
        partitions: Option<u64>,
        /// Executors that ran its tasks, once it finished.
        executors: Option<u64>,
        /// An executor wrote its file exports (the result did not come to
        /// the engine).
        written_there: bool,
    },
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Placement::Local => f.write_str("local"),
            Placement::Cluster {
                scheduler,
                partitions,
                executors,
                written_there,
            } => {
                write!(f, "cluster {scheduler}")?;
                if let Some(n) = partitions {
                    write!(f, ", {n} partitions")?;
                }
                match executors {
                    Some(1) => write!(f, ", tasks on 1 executor")?,
                    Some(k) => write!(f, ", tasks on {k} executors")?,
                    None => {}
                }
                if *written_there {
                    write!(f, ", files written by an executor")?;
                }
                Ok(())
            }
        }
    }
}

/// One batch planned in DataFusion: the physical plan, its output schema,
/// and what its scans will read. [`execute`](Self::execute) runs it in this
/// process.
pub struct BatchPlan {
    ctx: SessionContext,
    logical: LogicalPlan,
    plan: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    read: ReadPlan,
    cluster: Option<ClusterPlan>,
    /// A cluster job's counts, once [`finish`](BatchPlan::finish) fetched them.
    counts: std::sync::Mutex<Option<ClusterCounts>>,
    /// On a cluster: past this many bytes read, an executor writes the exports.
    collect_max_bytes: Option<u64>,
    /// The plan writes its result on the cluster ([`write_into`](BatchPlan::write_into)).
    writes: bool,
}

impl std::fmt::Debug for BatchPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchPlan")
            .field("schema", &self.schema)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl BatchPlan {
    /// Registers the srcs, expands and plans the SQL. Errors name the src,
    /// field or SQL at fault.
    pub async fn build(env: &SourceEnv, input: BatchInput<'_>) -> Result<Self> {
        let cluster = env.cluster.as_ref().filter(|c| input.sizing.cores > c.local_max_cores);
        let ctx = match cluster {
            None => session(input.sizing)?,
            Some(c) => {
                // the cluster's executors bring the cores: one partition each
                let sizing = Sizing {
                    partitions: input.sizing.cores,
                    ..input.sizing
                };
                let (config, runtime) = session_parts(sizing)?;
                let data_dir = env.stores.data_dir();
                // Ballista's options from BALLISTA_* variables, as DataFusion's
                let tune = |c: &mut datafusion::prelude::SessionConfig| {
                    crate::session::env_options(c, "BALLISTA_", std::env::vars()).map_err(Into::into)
                };
                remote_session(&c.scheduler, config, runtime, data_dir, input.name, tune).await?
            }
        };
        let mut read = ReadPlan::default();
        register(env, &ctx, input.srcs, input.expander, &mut read).await?;
        let sql = input.expander.expand(input.code, "computation.code")?;
        let mut df = plan_sql(&ctx, &sql).await?;
        let cols = input.sort_by;
        if !cols.is_empty() && cols.iter().all(|c| df.schema().has_column_with_unqualified_name(c)) {
            let sort = cols
                .iter()
                .map(|c| datafusion::prelude::ident(c).sort(true, true))
                .collect();
            df = df.sort(sort).map_err(exec_error)?;
        }
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let logical = df.logical_plan().clone();
        if cluster.is_some() {
            let optimized = ctx.state().optimize(&logical).map_err(exec_error)?;
            pbatch_cluster::check_sendable(&optimized)?;
        }
        let plan = df.create_physical_plan().await.map_err(exec_error)?;
        // a plan that reads nothing (`WHERE false`) is planned to run here
        let collect_max_bytes = cluster.map(|c| c.collect_max_bytes);
        let cluster = cluster.and_then(|c| ClusterPlan::of(&c.scheduler, &plan));
        Ok(Self {
            ctx,
            logical,
            plan,
            schema,
            read,
            cluster,
            counts: std::sync::Mutex::default(),
            collect_max_bytes,
            writes: false,
        })
    }

    /// Whether the batch runs on a cluster and reads more than `[cluster]
    /// collect_max_bytes`: its result is then better written by an executor
    /// ([`write_into`](Self::write_into)) than streamed to this process. The
    /// result's size is known only at its end; what the batch reads bounds
    /// it for most batches (filters, projections, aggregations).
    pub fn too_big_to_collect(&self) -> bool {
        self.cluster.is_some() && self.collect_max_bytes.is_some_and(|max| self.read.bytes > max)
    }

    /// On a cluster: the plan becomes `INSERT INTO table`, so the cluster
    /// writes the result into `table` (pbatch's export writer) and
    /// [`execute`](Self::execute) streams back only the rows it wrote (see
    /// [`rows_of`](Self::rows_of)).
    pub async fn write_into(&mut self, table: Arc<dyn TableProvider>) -> Result<()> {
        let Some(scheduler) = self.cluster.as_ref().map(|c| c.scheduler().clone()) else {
            return Err(pbatch_model::Error::internal("only a batch on a cluster writes there").into());
        };
        let dml = LogicalPlanBuilder::insert_into(
            self.logical.clone(),
            "pbatch_exports",
            provider_as_source(table),
            InsertOp::Append,
        )
        .and_then(|b| b.build())
        .map_err(exec_error)?;
        let plan = self.ctx.state().create_physical_plan(&dml).await.map_err(exec_error)?;
        self.cluster = ClusterPlan::of(&scheduler, &plan);
        if self.cluster.is_none() {
            return Err(pbatch_model::Error::internal("the write was not planned to run on the cluster").into());
        }
        self.plan = plan;
        self.writes = true;
        Ok(())
    }

    /// The result rows a record batch of [`execute`](Self::execute) stands
    /// for: its rows, or for a plan that writes on the cluster, the rows
    /// written.
    pub fn rows_of(&self, batch: &arrow::record_batch::RecordBatch) -> u64 {
        if self.writes {
            pbatch_cluster::written_rows(batch)
        } else {
            batch.num_rows() as u64
        }
    }

    fn cluster_counts(&self) -> Option<ClusterCounts> {
        self.counts.lock().ok().and_then(|c| *c)
    }

    /// After the result stream ended: a cluster job's counts (rows and
    /// bytes read, invalid records, partitions) are fetched from its scheduler.
    /// Nothing to do for a local plan, whose scans count as they run.
    pub async fn finish(&self) -> Result<()> {
        if let Some(c) = &self.cluster {
            let counts = c.counts().await?;
            tracing::info!(
                rows_read = counts.rows_read,
                invalid = counts.invalid_records,
                partitions = counts.partitions,
                "cluster job finished"
            );
            if let Ok(mut slot) = self.counts.lock() {
                *slot = Some(counts);
            }
        }
        Ok(())
    }

    /// Where the batch runs.
    pub fn placement(&self) -> Placement {
        match &self.cluster {
            None => Placement::Local,
            Some(c) => Placement::Cluster {
                scheduler: c.scheduler().to_string(),
                partitions: self.cluster_counts().map(|n| n.partitions),
                executors: self.cluster_counts().map(|n| n.executors).filter(|n| *n > 0),
                written_there: self.writes,
            },
        }
    }

    /// A cluster job learns its id once the scheduler has accepted it, and
    /// only while its stream is polled: before a stop, this polls `stream`
    /// (dropping what comes) until the id is known, for at most 2 s, so
    /// that [`cancel`](Self::cancel) can name the job.
    pub async fn until_job_known(&self, stream: &mut SendableRecordBatchStream) {
        use futures::StreamExt;
        let Some(c) = &self.cluster else {
            return;
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while c.job_id().is_none() && tokio::time::Instant::now() < deadline {
            tokio::select! {
                next = stream.next() => if next.is_none() {
                    return;
                },
                _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
            }
        }
    }

    /// Stops the batch where it runs: on a cluster, cancels its job
    /// (dropping the stream stops a local plan, not a cluster's job).
    pub async fn cancel(&self) -> Result<()> {
        if let Some(c) = &self.cluster {
            let job = c.job_id();
            let cancelled = c.cancel().await?;
            tracing::info!(job = ?job, cancelled, scheduler = %c.scheduler(), "cluster job canceled");
        }
        Ok(())
    }

    /// The result's schema.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The plan as DataFusion's `EXPLAIN` shows it: the optimized logical
    /// plan and the physical plan, each indented.
    pub fn explain(&self) -> Result<(String, String)> {
        let logical = self.ctx.state().optimize(&self.logical).map_err(exec_error)?;
        Ok((
            logical.display_indent().to_string(),
            datafusion::physical_plan::displayable(self.plan.as_ref())
                .indent(true)
                .to_string(),
        ))
    }

    /// Files and bytes the scans will read, as listed.
    pub fn read_plan(&self) -> &ReadPlan {
        &self.read
    }

    /// Runs the plan in this process. Dropping the stream stops it.
    pub fn execute(&self) -> Result<SendableRecordBatchStream> {
        execute_stream(Arc::clone(&self.plan), self.ctx.task_ctx()).map_err(exec_error)
    }

    /// Rows the scans produced (after the plan ran; a cluster job's once
    /// [`finish`](Self::finish) fetched them).
    pub fn rows_read(&self) -> u64 {
        if self.cluster.is_some() {
            return self.cluster_counts().map(|c| c.rows_read).unwrap_or(0);
        }
        crate::rows_read(&self.plan)
    }

    /// Bytes of input the scans have read so far, as stored (compressed);
    /// may be called while the plan runs. Parquet scans count the column
    /// chunks they fetched.
    pub fn bytes_read(&self) -> u64 {
        if self.cluster.is_some() {
            return self.cluster_counts().map(|c| c.bytes_read).unwrap_or(0);
        }
        pbatch_source::bytes_read(&self.plan)
    }

    /// Invalid records the scans skipped (`omitInvalid`): count and the
    /// first few, as `file line N: why`.
    pub fn skipped_records(&self) -> (u64, Vec<String>) {
        if self.cluster.is_some() {
            // the executors' samples stay in their logs
            return (
                self.cluster_counts().map(|c| c.invalid_records).unwrap_or(0),
                Vec::new(),
            );
        }
        pbatch_source::skipped_records(&self.plan)
    }
}

/// The pbatch error in a cluster job's failure, as its scheduler reports it:
/// Rust debug text (`... Error { code: FileFormatMismatch, message: "...",
/// ...`), or `Ennnnn: message`; Arrow's arithmetic errors get their code and
/// words back.
fn pbatch_error_in(text: &str) -> Option<pbatch_model::Error> {
    if let Some(at) = text.find("Error { code: ") {
        let rest = &text[at + "Error { code: ".len()..];
        let name = rest.split([',', ' ']).next().unwrap_or_default();
        if let Some(code) = ErrorCode::ALL.iter().find(|c| format!("{c:?}") == name)
            && let Some(m) = rest.find("message: \"")
        {
            let body = &rest[m + "message: \"".len()..];
            // up to the closing quote, `\"` and `\\` unescaped
            let mut message = String::new();
            let mut chars = body.chars();
            while let Some(ch) = chars.next() {
                match ch {
                    '"' => break,
                    '\\' => {
                        if let Some(next) = chars.next() {
                            message.push(next);
                        }
                    }
                    c => message.push(c),
                }
            }
            return Some(pbatch_model::Error::new(*code, message));
        }
    }
    for (arrow, words) in [
        ("ArrowError(DivideByZero", "Divide by zero error"),
        ("ArrowError(ArithmeticOverflow", "Arithmetic overflow"),
        ("ArrowError(CastError", "Cast error"),
    ] {
        if text.contains(arrow) {
            return Some(pbatch_model::Error::new(
                ErrorCode::InvalidJobSql,
                format!("batch failed: {words} (on the cluster: {})", text.trim()),
            ));
        }
    }
    pbatch_code_in(text)
}

/// The first `Ennnnn: message` of a known code in `text`.
fn pbatch_code_in(text: &str) -> Option<pbatch_model::Error> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find('E') {
        let start = i + at;
        let end = start + 6;
        if end + 2 <= bytes.len()
            && bytes[start + 1..end].iter().all(u8::is_ascii_digit)
            && &text[end..end + 2] == ": "
            && (start == 0 || !bytes[start - 1].is_ascii_alphanumeric())
            && let Some(code) = ErrorCode::ALL.iter().find(|c| c.code() == &text[start..end])
        {
            // the message runs to the end of its line (Ballista appends its
            // own context after a newline or a closing quote)
            let rest = &text[end + 2..];
            let message = rest.split(['\n', '"']).next().unwrap_or(rest).trim_end();
            return Some(pbatch_model::Error::new(*code, message.to_string()));
        }
        i = start + 1;
    }
    None
}

/// Maps an error met while the plan ran to the code that says whose it is:
/// data that does not decode is `E18623`, a query that fails on the data
/// (division by zero, a bad cast) `E18618`, storage `E18338`, memory
/// `E18621`. A pbatch error raised inside a scan comes out as it was.
pub fn exec_error(e: DataFusionError) -> Error {
    use arrow::error::ArrowError as A;
    use datafusion::error::DataFusionError as D;
    if let D::External(inner) = e.find_root()
        && let Some(err) = inner.downcast_ref::<pbatch_model::Error>()
    {
        return Error::Spec(err.clone());
    }
    // a cluster job's failure arrives as text: the code an executor's scan
    // raised is in it (`... E18623: file ... line 3: ...`)
    if let D::Execution(msg) = e.find_root()
        && let Some(err) = pbatch_error_in(msg)
    {
        return Error::Spec(err);
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
    let message = format!("batch failed: {}", strip_df(&e.to_string()));
    Error::DataFusion(pbatch_model::Caused::new(code, message, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_failure_keeps_its_code() {
        let e = pbatch_error_in(
            "Job 038HW failed: Error in task [0/1/0]: External error: E18623: bucket \"b\" key \"a.json\" line 3: not json\nat stage 1",
        )
        .expect("a code");
        assert_eq!(e.code(), ErrorCode::FileFormatMismatch);
        assert_eq!(e.message(), "bucket");
        let e = pbatch_error_in(
            r#"Task failed: DataFusionError(Shared(External(DataFusionError(External(Error { code: FileFormatMismatch, message: "key \"a.json\" line 3: field \"qty\" is not a long", source: None, transient: false })))))"#,
        )
        .expect("a code");
        assert_eq!(e.code(), ErrorCode::FileFormatMismatch);
        assert_eq!(e.message(), r#"key "a.json" line 3: field "qty" is not a long"#);
        let e =
            pbatch_error_in("Task failed: DataFusionError(Shared(External(ArrowError(DivideByZero))))").expect("arrow");
        assert_eq!(e.code(), ErrorCode::InvalidJobSql);
        assert!(e.message().contains("Divide by zero"), "{e}");
        assert!(pbatch_error_in("XE18623: no").is_none());
        assert!(pbatch_error_in("E99999: not a code").is_none());
        assert!(pbatch_error_in("nothing here").is_none());
    }
}
