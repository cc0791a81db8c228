/*!
One batch as a DataFusion plan.

The engine resolves a job's srcs against its catalog ([`ResolvedSrc`]: a
datasource spec, an upstream job's kept result, or an upstream job's SQL)
and hands them to [`BatchPlan::build`] with the job's SQL, an
[`Expander`](pbatch_magic::Expander) holding the batch's variables, and the
[`Sizing`] of its container. `exec` then:

1. opens a session sized by the container ([`Sizing`]: target partitions
   from the cores, a spilling memory pool from the memory);
2. registers every src as a `TableProvider`: kodo and hdfs files through
   `pbatch-source`'s row reader or DataFusion's parquet scan (schema
   inferred or verified), fusion CDN logs (synced from the log-list API
   first when `[fusion] endpoint` is set), an upstream's kept parquet
   result, or an upstream's SQL as a view;
3. expands `$(var)`s in the SQL and plans it; only queries are allowed
   (`E18209` for DDL, DML, or SQL that does not plan).

The [`BatchPlan`] knows what it will read (files, bytes) and runs in this
process, or on a Ballista cluster when the container asks for more cores
than `[cluster] local_max_cores` and a cluster is configured
([`BatchPlan::execute`], [`Placement`]); errors met while it runs map to the
seed's codes in [`exec_error`]. Errors are [`Error`]: a seed rule with its
code, or DataFusion's error kept whole as the cause; both turn into
`pbatch_model::Error` (code and message, cause kept) at the engine.
This is the one place that builds plans.

Sits above `pbatch-model`, `pbatch-magic` and `pbatch-source`;
`pbatch-engine` drives it and fans its stream out to `pbatch-sink`.

```
# #[tokio::main(flavor = "current_thread")]
# async fn main() -> Result<(), Box<dyn std::error::Error>> {
use pbatch_exec::{BatchInput, BatchPlan, FusionAccess, Sizing, SourceEnv};
use futures::TryStreamExt;
let dir = tempfile::tempdir()?;
let env = SourceEnv {
    stores: pbatch_source::Stores::new(dir.path()),
    fusion: FusionAccess::default(),
    fusion_root: dir.path().join("fusion"),
    sample: pbatch_source::Sample::default(),
    cluster: None,
};
let expander = pbatch_magic::Expander::new(chrono::Utc::now().fixed_offset());
let plan = BatchPlan::build(&env, BatchInput {
    code: "SELECT 6 * 7 AS answer",
    srcs: &[],
    expander: &expander,
    sizing: Sizing::for_container(None),
    sort_by: &[],
    name: "answer",
}).await?;
let batches: Vec<_> = plan.execute()?.try_collect().await.map_err(pbatch_exec::exec_error)?;
assert_eq!(batches[0].num_rows(), 1);
# Ok(()) }
```
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

mod error;
mod plan;
mod session;
mod shape;
mod srcs;

pub use arrow::datatypes::SchemaRef;
pub use error::{Error, Result};
pub use plan::{BatchInput, BatchPlan, Placement, exec_error};
pub use session::{Sizing, check_datafusion_env};
pub use shape::{DeclaredTable, declared_output};
pub use srcs::{ClusterEnv, FusionAccess, ReadPlan, ResolvedSrc, SourceEnv, TableRead};

use session::rows_read;
