//! A row scan as the scheduler of a cluster plans it.
//!
//! Ballista hands each task its slice of a scan's partitions by rewriting
//! the scans it knows: DataFusion's file scans (`DataSourceExec` over a
//! `FileScanConfig`), whose file groups it cuts to the task's slice. A scan
//! it does not know runs whole in every task, reading some files twice and
//! others never. So on a cluster a [`RowTable`](crate::RowTable) plans as a
//! file scan whose source is [`RowFileSource`]: the scheduler slices its
//! groups, the codec sends each task its groups as a
//! [`RowScanExec`](crate::RowScanExec), and that is what the executor runs.
//! A `RowFileSource` itself never reads: opening it is an error.

use crate::rows::RowSpec;
use crate::scan::{FilePart, RowScanParts};
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::physical_plan::{FileOpener, FileScanConfig, FileSource};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use object_store::ObjectStore;
use std::sync::Arc;
use url::Url;

/// The source of a row scan's file scan on a cluster's scheduler.
#[derive(Debug, Clone)]
pub struct RowFileSource {
    store_url: Url,
    place: String,
    spec: Arc<RowSpec>,
    /// The scan's output (the spec's projection): what the file scan yields.
    output: TableSchema,
    metrics: ExecutionPlanMetricsSet,
}

impl RowFileSource {
    pub(crate) fn new(store_url: Url, place: String, spec: RowSpec) -> Self {
        let output = TableSchema::from(spec.output_schema());
        Self {
            store_url,
            place,
            spec: Arc::new(spec),
            output,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The row scan of `config`'s file groups (as the scheduler sliced
    /// them) as plain data, with its table's schema.
    pub fn scan_parts(&self, config: &FileScanConfig) -> (RowScanParts, SchemaRef) {
        let groups = config
            .file_groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|f| {
                        let location = f.object_meta.location.to_string();
                        FilePart {
                            key: location.clone(),
                            location,
                            size: f.object_meta.size,
                        }
                    })
                    .collect()
            })
            .collect();
        let parts = RowScanParts {
            store_url: self.store_url.to_string(),
            place: self.place.clone(),
            groups,
            format: self.spec.format,
            projection: self.spec.projection.clone(),
            required: self.spec.required.clone(),
            omit_invalid: self.spec.omit_invalid,
            batch_size: self.spec.batch_size,
            limit: config.limit,
        };
        (parts, Arc::clone(&self.spec.schema))
    }
}

impl FileSource for RowFileSource {
    fn create_file_opener(
        &self,
        _object_store: Arc<dyn ObjectStore>,
        _base_config: &FileScanConfig,
        _partition: usize,
    ) -> DfResult<Arc<dyn FileOpener>> {
        Err(DataFusionError::Internal(format!(
            "the row scan of {} is read by a cluster's executors, not where it is planned",
            self.place
        )))
    }

    fn table_schema(&self) -> &TableSchema {
        &self.output
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        let mut spec = (*self.spec).clone();
        spec.batch_size = batch_size.max(1);
        Arc::new(Self {
            spec: Arc::new(spec),
            ..self.clone()
        })
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        "pbatch-rows"
    }

    /// Files are read whole (a compressed file cannot be split): never cut
    /// into byte ranges.
    fn supports_repartitioning(&self) -> bool {
        false
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
}
