//! Exports written by an executor: a batch whose result is too big to
//! stream to the engine is sent as `INSERT INTO` a [`WriteTable`], which
//! the scheduler plans as a [`WriteExec`] over the batch's plan. That node
//! runs on an executor, writes every file export into the batch's staging
//! folder with pbatch's own writers ([`pbatch_sink::RemoteWrite`]) and
//! returns the rows it wrote; the engine then commits the staged files.

use arrow::array::{RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use pbatch_sink::RemoteWrite;
use std::sync::{Arc, Mutex};

/// The table a batch's result is inserted into to be written on the
/// cluster: it cannot be read.
#[derive(Debug, Clone)]
pub struct WriteTable {
    schema: SchemaRef,
    write: RemoteWrite,
}

impl WriteTable {
    /// Writes rows of `schema` as `write` says.
    pub fn new(schema: SchemaRef, write: RemoteWrite) -> Self {
        Self { schema, write }
    }

    /// What its writer does.
    pub fn write(&self) -> &RemoteWrite {
        &self.write
    }
}

#[async_trait]
impl TableProvider for WriteTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Plan(
            "a batch's export table is written, never read".to_string(),
        ))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        _insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(WriteExec::new(input, self.write.clone())))
    }
}

/// The schema of what a [`WriteExec`] returns: the rows it wrote.
fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("count", DataType::UInt64, false)]))
}

/// Writes its input (one partition: every row of the batch, in order) with
/// pbatch's writers into the batch's staging folder; returns one row, the
/// rows written.
#[derive(Debug)]
pub struct WriteExec {
    input: Arc<dyn ExecutionPlan>,
    write: RemoteWrite,
    props: Arc<PlanProperties>,
}

impl WriteExec {
    /// Writes `input` as `write` says.
    pub fn new(input: Arc<dyn ExecutionPlan>, write: RemoteWrite) -> Self {
        let props = PlanProperties::new(
            EquivalenceProperties::new(count_schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            input,
            write,
            props: Arc::new(props),
        }
    }

    /// What its writer does.
    pub fn write(&self) -> &RemoteWrite {
        &self.write
    }
}

impl DisplayAs for WriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "WriteExec: staging {}", self.write.staging().display())
    }
}

impl ExecutionPlan for WriteExec {
    fn name(&self) -> &str {
        "WriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    /// One writer sees every row, so `fileCount` and the file names are
    /// what a local batch gives.
    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|c| DataFusionError::Internal(format!("WriteExec takes one input, not {}", c.len())))?;
        Ok(Arc::new(Self::new(input, self.write.clone())))
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "WriteExec has no partition {partition}"
            )));
        }
        let input = read_in_turn(&self.input, ctx)?;
        let schema = self.input.schema();
        let write = self.write.clone();
        // the input's own error (a bad record, say) is the write's
        let failed: Arc<Mutex<Option<DataFusionError>>> = Arc::default();
        let slot = Arc::clone(&failed);
        let input = input.map(move |r| {
            r.map_err(|e| {
                let text = e.to_string();
                if let Ok(mut s) = slot.lock() {
                    s.get_or_insert(e);
                }
                text
            })
        });
        let done = async move {
            let result = write.run(schema, input).await;
            if let Some(e) = failed.lock().ok().and_then(|mut s| s.take()) {
                return Err(e);
            }
            let rows = result.map_err(|e| DataFusionError::External(Box::new(pbatch_model::Error::from(e))))?;
            tracing::info!(rows, staging = %write.staging().display(), "wrote the batch's exports");
            Ok(RecordBatch::try_new(
                count_schema(),
                vec![Arc::new(UInt64Array::from(vec![rows]))],
            )?)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            count_schema(),
            futures::stream::once(done),
        )))
    }
}

/// How many of the input's partitions are fetched at once.
const PARTITIONS_AHEAD: usize = 2;

/// The input's rows. On a cluster it is the previous stage's partitions
/// gathered into one: DataFusion's `CoalescePartitionsExec` would fetch
/// them all at once (64 partitions of a 64-core job, each fetched whole
/// from its executor: half the result in memory at once), so they are
/// read a few at a time instead (order does not matter to it either).
fn read_in_turn(input: &Arc<dyn ExecutionPlan>, ctx: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
    use futures::TryStreamExt;
    let Some(inner) = input
        .downcast_ref::<CoalescePartitionsExec>()
        .filter(|c| c.fetch().is_none())
        .map(|c| Arc::clone(c.input()))
    else {
        return input.execute(0, ctx);
    };
    let n = inner.properties().partitioning.partition_count();
    let schema = inner.schema();
    let streams = futures::stream::iter(0..n)
        .map(move |p| {
            let (inner, ctx) = (Arc::clone(&inner), Arc::clone(&ctx));
            async move { inner.execute(p, ctx) }
        })
        .buffered(PARTITIONS_AHEAD)
        .try_flatten();
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, streams)))
}

/// The rows a write on the cluster returned: the sum of its `count` column.
pub fn written_rows(batch: &RecordBatch) -> u64 {
    batch
        .column(0)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .map(|a| a.iter().flatten().sum())
        .unwrap_or(0)
}
