//! The table and scan of row-format files (json, csv, text).
//!
//! Each output partition is a blocking thread that fetches its files one
//! after another, undoes their compression ([`Codec`]) and decodes them
//! ([`read_rows`]), sending batches over a small channel: files are
//! decompressed and parsed in parallel, and a slow consumer holds the
//! readers back. Dropping the stream (a stopped batch) ends the threads at
//! their next batch.

use crate::decompress::{Codec, read_head};
use crate::rows::{ReadStats, RowFormat, RowSpec, read_rows};
use crate::{SourceFile, store_error};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Statistics;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt};
use pbatch_model::{Error, ErrorCode};
use std::io::Read;
use std::sync::Arc;
use tokio::runtime::Handle;
use url::Url;

/// The largest batch a decoded scan builds (a plan from the wire may ask
/// for any size).
const MAX_BATCH_ROWS: usize = 1 << 20;

/// The count of invalid records a row scan skipped, in its metrics.
pub const SCAN_INVALID_RECORDS: &str = "invalid_records";
/// The count of bytes (as stored) a row scan read, in its metrics.
pub const SCAN_BYTES_READ: &str = "bytes_read";
/// Starts the name of a count a row scan run by a cluster executor reports
/// (`executor:<id>`), so the engine learns which executors read.
pub const SCAN_EXECUTOR: &str = "executor:";

/// Row-format files of one datasource as a DataFusion table.
#[derive(Debug)]
pub struct RowTable {
    store: Arc<dyn ObjectStore>,
    /// What the store is known by (`kodo://<bucket>/`, `hdfs://<nn>/`,
    /// [`FUSION_URL`](crate::FUSION_URL)): a cluster's executor finds its own
    /// store by it.
    store_url: Url,
    /// Names files in messages (`bucket "b"`).
    place: String,
    files: Vec<SourceFile>,
    format: RowFormat,
    schema: SchemaRef,
    required: Vec<usize>,
    omit_invalid: bool,
    stats: Arc<ReadStats>,
    /// Plans as a file scan a cluster's scheduler can slice
    /// ([`RowFileSource`](crate::RowFileSource)).
    distributed: bool,
}

impl RowTable {
    /// A table over `files` of `store`. `required` and `omit_invalid` decide
    /// which records are invalid and what happens to them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn ObjectStore>,
        store_url: Url,
        place: impl Into<String>,
        files: Vec<SourceFile>,
        format: RowFormat,
        schema: SchemaRef,
        required: &[String],
        omit_invalid: bool,
    ) -> pbatch_model::Result<Self> {
        let mut idx = Vec::new();
        for r in required {
            match schema.index_of(r) {
                Ok(i) => idx.push(i),
                Err(_) => {
                    return Err(Error::new(
                        ErrorCode::FieldNotFound,
                        format!("required field {r:?} is not in the schema"),
                    ));
                }
            }
        }
        Ok(Self {
            store,
            store_url,
            place: place.into(),
            files,
            format,
            schema,
            required: idx,
            omit_invalid,
            stats: Arc::default(),
            distributed: false,
        })
    }

    /// The table as a cluster's scheduler plans it: its scans are file
    /// scans over a [`RowFileSource`](crate::RowFileSource), which Ballista
    /// slices per task.
    pub fn distributed(mut self) -> Self {
        self.distributed = true;
        self
    }

    /// Files the table reads.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// The files the table reads: key and size each.
    pub fn files(&self) -> impl Iterator<Item = (&str, u64)> {
        self.files.iter().map(|f| (f.key.as_str(), f.size))
    }

    /// Bytes of the files the table reads, as listed.
    pub fn file_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Invalid records the scans of this table skipped.
    pub fn stats(&self) -> Arc<ReadStats> {
        Arc::clone(&self.stats)
    }

    /// The table as plain data (its schema aside), for a cluster's codec.
    pub fn parts(&self) -> RowTableParts {
        RowTableParts {
            store_url: self.store_url.to_string(),
            place: self.place.clone(),
            files: self.files.iter().map(FilePart::of).collect(),
            format: self.format,
            required: self.required.clone(),
            omit_invalid: self.omit_invalid,
        }
    }

    /// The table [`parts`](Self::parts) described, reading from `store`
    /// (the one its `store_url` names where the table is decoded).
    pub fn from_parts(parts: RowTableParts, schema: SchemaRef, store: Arc<dyn ObjectStore>) -> DfResult<Self> {
        let store_url = parse_url(&parts.store_url)?;
        if let Some(i) = parts.required.iter().find(|i| **i >= schema.fields().len()) {
            return Err(DataFusionError::Internal(format!(
                "row table of {}: required field {i} is not in its schema",
                parts.place
            )));
        }
        Ok(Self {
            store,
            store_url,
            place: parts.place,
            files: parts
                .files
                .into_iter()
                .map(FilePart::into_file)
                .collect::<DfResult<_>>()?,
            format: parts.format,
            schema,
            required: parts.required,
            omit_invalid: parts.omit_invalid,
            stats: Arc::default(),
            distributed: false,
        })
    }

    /// What the table's store is known by.
    pub fn store_url(&self) -> &Url {
        &self.store_url
    }
}

/// A listed file as plain data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FilePart {
    /// The object's path in its store.
    pub location: String,
    /// The key, as listed (for messages and codec detection).
    pub key: String,
    /// Bytes.
    pub size: u64,
}

impl FilePart {
    fn of(f: &SourceFile) -> Self {
        Self {
            location: f.meta.location.to_string(),
            key: f.key.clone(),
            size: f.size,
        }
    }

    fn into_file(self) -> DfResult<SourceFile> {
        let location = object_store::path::Path::parse(&self.location)
            .map_err(|e| DataFusionError::Internal(format!("file {:?}: {e}", self.location)))?;
        Ok(SourceFile {
            key: self.key,
            size: self.size,
            meta: object_store::ObjectMeta {
                location,
                last_modified: chrono::DateTime::UNIX_EPOCH,
                size: self.size,
                e_tag: None,
                version: None,
            },
        })
    }
}

fn parse_url(s: &str) -> DfResult<Url> {
    Url::parse(s).map_err(|e| DataFusionError::Internal(format!("store url {s:?}: {e}")))
}

/// A [`RowTable`] as plain data, its schema aside.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowTableParts {
    /// What the store is known by.
    pub store_url: String,
    /// Names the files' place in messages.
    pub place: String,
    /// The files.
    pub files: Vec<FilePart>,
    /// Layout.
    pub format: RowFormat,
    /// Required fields, as indices into the schema.
    pub required: Vec<usize>,
    /// Skip invalid records instead of failing.
    pub omit_invalid: bool,
}

/// A [`RowScanExec`] as plain data, its table's schema aside.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowScanParts {
    /// What the store is known by.
    pub store_url: String,
    /// Names the files' place in messages.
    pub place: String,
    /// The files of each output partition.
    pub groups: Vec<Vec<FilePart>>,
    /// Layout.
    pub format: RowFormat,
    /// The output columns, as indices into the schema.
    pub projection: Vec<usize>,
    /// Required fields, as indices into the schema.
    pub required: Vec<usize>,
    /// Skip invalid records instead of failing.
    pub omit_invalid: bool,
    /// Rows per output batch.
    pub batch_size: usize,
    /// Stop after this many rows.
    pub limit: Option<usize>,
}

#[async_trait]
impl TableProvider for RowTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projection = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let spec = RowSpec {
            format: self.format,
            schema: Arc::clone(&self.schema),
            projection,
            required: self.required.clone(),
            omit_invalid: self.omit_invalid,
            batch_size: state.config().batch_size().max(1),
        };
        // largest files first, each to the partition with the fewest bytes
        let n = state.config().target_partitions().clamp(1, self.files.len().max(1));
        let mut groups: Vec<(u64, Vec<SourceFile>)> = vec![(0, Vec::new()); n];
        let mut files = self.files.clone();
        files.sort_by_key(|f| std::cmp::Reverse(f.meta.size));
        for f in files {
            if let Some(g) = groups.iter_mut().min_by_key(|g| g.0) {
                g.0 += f.meta.size;
                g.1.push(f);
            }
        }
        if self.distributed {
            use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
            use datafusion::datasource::source::DataSourceExec;
            use datafusion::execution::object_store::ObjectStoreUrl;
            let url = ObjectStoreUrl::parse(self.store_url.as_str())?;
            let source = crate::RowFileSource::new(self.store_url.clone(), self.place.clone(), spec);
            let groups = groups
                .into_iter()
                .map(|(_, files)| {
                    FileGroup::new(
                        files
                            .into_iter()
                            .map(|f| datafusion::datasource::listing::PartitionedFile::from(f.meta))
                            .collect(),
                    )
                })
                .collect();
            let config = FileScanConfigBuilder::new(url, Arc::new(source))
                .with_file_groups(groups)
                .with_limit(limit)
                .build();
            return Ok(DataSourceExec::from_data_source(config));
        }
        Ok(Arc::new(RowScanExec::new(
            Arc::clone(&self.store),
            self.store_url.clone(),
            self.place.clone(),
            groups.into_iter().map(|g| g.1).collect(),
            spec,
            Arc::clone(&self.stats),
            limit,
        )))
    }
}

/// The scan of a [`RowTable`]: one partition per file group.
#[derive(Debug)]
pub struct RowScanExec {
    store: Arc<dyn ObjectStore>,
    store_url: Url,
    place: String,
    groups: Vec<Vec<SourceFile>>,
    spec: Arc<RowSpec>,
    stats: Arc<ReadStats>,
    /// Each partition's share of `stats`.
    partition_stats: Vec<Arc<ReadStats>>,
    /// The cluster executor running the scan (reported in its metrics).
    executor: Option<String>,
    limit: Option<usize>,
    metrics: ExecutionPlanMetricsSet,
    props: Arc<PlanProperties>,
    /// The span planning ran in (a batch's): the reader threads log in it.
    span: tracing::Span,
}

impl RowScanExec {
    fn new(
        store: Arc<dyn ObjectStore>,
        store_url: Url,
        place: String,
        groups: Vec<Vec<SourceFile>>,
        spec: RowSpec,
        stats: Arc<ReadStats>,
        limit: Option<usize>,
    ) -> Self {
        let props = PlanProperties::new(
            EquivalenceProperties::new(spec.output_schema()),
            Partitioning::UnknownPartitioning(groups.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        let partition_stats = groups.iter().map(|_| Arc::new(ReadStats::child_of(&stats))).collect();
        Self {
            store,
            store_url,
            place,
            groups,
            spec: Arc::new(spec),
            stats,
            partition_stats,
            executor: None,
            limit,
            metrics: ExecutionPlanMetricsSet::new(),
            props: Arc::new(props),
            span: tracing::Span::current(),
        }
    }

    /// Invalid records this scan's table skipped.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// The scan as cluster executor `id` runs it: its metrics name the
    /// executor (a [`SCAN_EXECUTOR`] count per partition).
    pub fn ran_by(mut self, id: &str) -> Self {
        self.executor = Some(id.to_string());
        self
    }

    /// Output partitions (file groups).
    pub fn partitions(&self) -> usize {
        self.groups.len()
    }

    /// The scan as plain data, its table's schema aside (see
    /// [`schema`](Self::table_schema)), for a cluster's codec.
    pub fn parts(&self) -> RowScanParts {
        RowScanParts {
            store_url: self.store_url.to_string(),
            place: self.place.clone(),
            groups: self
                .groups
                .iter()
                .map(|g| g.iter().map(FilePart::of).collect())
                .collect(),
            format: self.spec.format,
            projection: self.spec.projection.clone(),
            required: self.spec.required.clone(),
            omit_invalid: self.spec.omit_invalid,
            batch_size: self.spec.batch_size,
            limit: self.limit,
        }
    }

    /// The schema of the table scanned (the output is its projection).
    pub fn table_schema(&self) -> SchemaRef {
        Arc::clone(&self.spec.schema)
    }

    /// What the scan's store is known by.
    pub fn store_url(&self) -> &Url {
        &self.store_url
    }

    /// The scan [`parts`](Self::parts) described, reading from `store`.
    pub fn from_parts(parts: RowScanParts, schema: SchemaRef, store: Arc<dyn ObjectStore>) -> DfResult<Self> {
        let n = schema.fields().len();
        if let Some(i) = parts.projection.iter().chain(&parts.required).find(|i| **i >= n) {
            return Err(DataFusionError::Internal(format!(
                "row scan of {}: column {i} is not in its schema of {n}",
                parts.place
            )));
        }
        let store_url = parse_url(&parts.store_url)?;
        let groups = parts
            .groups
            .into_iter()
            .map(|g| g.into_iter().map(FilePart::into_file).collect::<DfResult<Vec<_>>>())
            .collect::<DfResult<Vec<_>>>()?;
        let spec = RowSpec {
            format: parts.format,
            schema,
            projection: parts.projection,
            required: parts.required,
            omit_invalid: parts.omit_invalid,
            batch_size: parts.batch_size.clamp(1, MAX_BATCH_ROWS),
        };
        Ok(Self::new(
            store,
            store_url,
            parts.place,
            groups,
            spec,
            Arc::default(),
            parts.limit,
        ))
    }
}

impl DisplayAs for RowScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let files: usize = self.groups.iter().map(Vec::len).sum();
        write!(
            f,
            "RowScanExec: {:?} {files} files of {}, {} partitions",
            self.spec.format,
            self.place,
            self.groups.len()
        )
    }
}

impl ExecutionPlan for RowScanExec {
    fn name(&self) -> &str {
        "RowScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    /// Rows out per partition, and the table's invalid records and bytes
    /// read as `invalid_records` and `bytes_read` counts: on a cluster these
    /// travel back to the scheduler with the task's metrics.
    fn metrics(&self) -> Option<MetricsSet> {
        use datafusion::physical_plan::metrics::{Count, Metric, MetricValue};
        let mut set = self.metrics.clone_inner();
        // per partition: Ballista replaces a rerun task's partitions' metrics
        // (untagged ones would be counted again)
        for (partition, stats) in self.partition_stats.iter().enumerate() {
            let mut counts = vec![
                (SCAN_INVALID_RECORDS.to_string(), stats.invalid()),
                (SCAN_BYTES_READ.to_string(), stats.bytes_read()),
            ];
            if let Some(id) = &self.executor {
                counts.push((format!("{SCAN_EXECUTOR}{id}"), 1));
            }
            for (name, n) in counts {
                let count = Count::new();
                count.add(usize::try_from(n).unwrap_or(usize::MAX));
                set.push(Arc::new(Metric::new(
                    MetricValue::Count {
                        name: name.into(),
                        count,
                    },
                    Some(partition),
                )));
            }
        }
        Some(set)
    }

    /// What the listing knows: the files' bytes as stored (inexact: rows
    /// and decompressed sizes are unknown until read). DataFusion's join
    /// selection builds its hash table on the side with fewer bytes, so a
    /// small dimension table is the build side whichever way the SQL joins.
    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        let bytes: u64 = match args.partition() {
            Some(p) => self.groups.get(p).map(|g| g.iter().map(|f| f.size).sum()).unwrap_or(0),
            None => self.groups.iter().flatten().map(|f| f.size).sum(),
        };
        let mut s = Statistics::new_unknown(&self.spec.output_schema());
        s.total_byte_size = Precision::Inexact(usize::try_from(bytes).unwrap_or(usize::MAX));
        Ok(Arc::new(s))
    }

    fn execute(&self, partition: usize, _ctx: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let files = self
            .groups
            .get(partition)
            .cloned()
            .ok_or_else(|| DataFusionError::Internal(format!("RowScanExec has no partition {partition}")))?;
        let handle = Handle::try_current().map_err(|e| DataFusionError::External(Box::new(e)))?;
        let output_rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<DfResult<RecordBatch>>(2);
        let stats = self
            .partition_stats
            .get(partition)
            .map(Arc::clone)
            .unwrap_or_else(|| Arc::clone(&self.stats));
        let (store, place, spec, limit) = (
            Arc::clone(&self.store),
            self.place.clone(),
            Arc::clone(&self.spec),
            self.limit,
        );
        let rt = handle.clone();
        let place_for_panic = place.clone();
        let span = self.span.clone();
        handle.spawn_blocking(move || {
            let _in_batch = span.enter();
            let panic_tx = tx.clone();
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut sent = 0usize;
                for f in files {
                    let name = format!("{place} key {:?}", f.key);
                    let mut emit = |b: RecordBatch| {
                        // never past the limit: a plan may trust the scan
                        // to stop at it (a file scan's fetch, on a cluster)
                        let b = match limit {
                            Some(l) if sent + b.num_rows() > l => b.slice(0, l.saturating_sub(sent)),
                            _ => b,
                        };
                        sent += b.num_rows();
                        output_rows.add(b.num_rows());
                        tx.blocking_send(Ok(b)).is_ok() && limit.is_none_or(|l| sent < l)
                    };
                    if let Err(e) = read_file(&rt, store.as_ref(), &f, &name, &spec, &stats, &mut emit) {
                        let _ = tx.blocking_send(Err(DataFusionError::External(Box::new(e))));
                        return;
                    }
                    if tx.is_closed() || limit.is_some_and(|l| sent >= l) {
                        return;
                    }
                }
            }));
            // a reader that panicked must fail the query, not end it early
            if let Err(p) = read {
                let why = p
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                let _ = panic_tx.blocking_send(Err(DataFusionError::Execution(format!(
                    "reading files of {place_for_panic} failed: {why}"
                ))));
            }
        });
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.spec.output_schema(),
            stream,
        )))
    }
}

fn read_file(
    rt: &Handle,
    store: &dyn ObjectStore,
    f: &SourceFile,
    name: &str,
    spec: &RowSpec,
    stats: &Arc<ReadStats>,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> pbatch_model::Result<()> {
    let mut input = open_file(rt, store, f, name, Some(Arc::clone(stats)))?;
    read_rows(name, &mut input, spec, stats, emit)
}

/// The decompressed bytes of `f`, from a blocking thread of runtime `rt`;
/// the bytes read as stored are added to `counted`'s.
pub(crate) fn open_file(
    rt: &Handle,
    store: &dyn ObjectStore,
    f: &SourceFile,
    name: &str,
    counted: Option<Arc<ReadStats>>,
) -> pbatch_model::Result<Box<dyn Read + Send>> {
    let got = rt.block_on(store.get(&f.meta.location)).map_err(|e| match e {
        object_store::Error::NotFound { .. } => Error::new(
            ErrorCode::StatFileFailed,
            format!("{name} was listed but is gone (deleted while the batch ran?)"),
        ),
        e => store_error(name, e).into(),
    })?;
    let mut raw: Box<dyn Read + Send> = match got.payload {
        GetResultPayload::File(file, _) => Box::new(file),
        GetResultPayload::Stream(s) => Box::new(StreamReader {
            rt: rt.clone(),
            stream: s,
            current: Bytes::new(),
        }),
    };
    if let Some(stats) = counted {
        raw = Box::new(Counted { inner: raw, stats });
    }
    let io = |e: std::io::Error| Error::new(ErrorCode::FileFormatMismatch, format!("reading {name}: {e}"));
    let head = read_head(&mut raw, 16).map_err(io)?;
    let codec = Codec::detect(&f.key, &head);
    tracing::debug!(file = name, codec = codec.name(), "reading");
    let input = codec.open(head, raw).map_err(io)?;
    Ok(match codec {
        Codec::None => input,
        codec => Box::new(CodecErrors { inner: input, codec }),
    })
}

/// Counts the bytes read through it into a table's [`ReadStats`].
struct Counted {
    inner: Box<dyn Read + Send>,
    stats: Arc<ReadStats>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.stats.add_bytes(n as u64);
        Ok(n)
    }
}

/// Names the codec in a decompression error, with what pbatch reads.
struct CodecErrors {
    inner: Box<dyn Read + Send>,
    codec: Codec,
}

impl Read for CodecErrors {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let hint = match self.codec {
                Codec::Snappy => " (pbatch reads the snappy framing format; Hadoop's block snappy is not read)",
                Codec::Lz4 => " (pbatch reads the LZ4 frame format; Hadoop's block lz4 is not read)",
                _ => "",
            };
            std::io::Error::new(
                e.kind(),
                format!("{} data does not decompress: {e}{hint}", self.codec.name()),
            )
        })
    }
}

/// A blocking reader of an object store's byte stream.
struct StreamReader {
    rt: Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    current: Bytes,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Bytes of input the scans in `plan` have read so far, as stored: the row
/// scans' count (each table once) plus what DataFusion's parquet scans
/// report as `bytes_scanned` (column chunks read, so a projection reads less
/// than the files hold).
pub fn bytes_read(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    fn walk(plan: &Arc<dyn ExecutionPlan>, seen: &mut Vec<Arc<ReadStats>>, other: &mut u64) {
        if let Some(scan) = plan.downcast_ref::<RowScanExec>() {
            if !seen.iter().any(|s| Arc::ptr_eq(s, &scan.stats)) {
                seen.push(Arc::clone(&scan.stats));
            }
            return;
        }
        if plan.children().is_empty() {
            *other += plan
                .metrics()
                .and_then(|m| m.sum_by_name("bytes_scanned"))
                .map(|v| v.as_usize() as u64)
                .unwrap_or(0);
        }
        for c in plan.children() {
            walk(c, seen, other);
        }
    }
    let (mut seen, mut other) = (Vec::new(), 0);
    walk(plan, &mut seen, &mut other);
    seen.iter().map(|s| s.bytes_read()).sum::<u64>() + other
}

/// Invalid records skipped by the row scans in `plan` (each table once,
/// however often the plan scans it) and the first few of them.
pub fn skipped_records(plan: &Arc<dyn ExecutionPlan>) -> (u64, Vec<String>) {
    fn walk(plan: &Arc<dyn ExecutionPlan>, seen: &mut Vec<Arc<ReadStats>>) {
        if let Some(scan) = plan.downcast_ref::<RowScanExec>()
            && !seen.iter().any(|s| Arc::ptr_eq(s, &scan.stats))
        {
            seen.push(Arc::clone(&scan.stats));
        }
        for c in plan.children() {
            walk(c, seen);
        }
    }
    let mut seen = Vec::new();
    walk(plan, &mut seen);
    let count = seen.iter().map(|s| s.invalid()).sum();
    let samples = seen.iter().flat_map(|s| s.samples()).take(3).collect();
    (count, samples)
}
