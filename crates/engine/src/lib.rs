/*!
The pbatch engine: configuration, the catalog of resources, and batches.

[`Engine`] holds the [`Config`], a [`Catalog`] (in memory for `pbatch run`;
durable in SQLite for `pbatch serve`) and the stores. Resources are created
with the seed's cross-resource rules (srcs must exist, table names unique
along a depend chain, variables may not shadow system ones), and
[`Engine::run_once`] runs one batch: list the srcs' files, register them in a
DataFusion session sized by the job's container, run the SQL with magic
variables expanded at the batch time, stage every export, and commit them
only when all succeeded.

```no_run
# async fn demo() -> pbatch_model::Result<()> {
use pbatch_engine::Engine;
let engine = Engine::builder().data_dir("pbatch-data").build()?;
let report = engine.run_once("daily_traffic", &[], chrono::Utc::now().fixed_offset()).await?;
println!("{} rows out", report.rows_out);
# Ok(()) }
```
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

mod batch;
mod catalog;
mod config;
mod control;
mod engine;
mod resources;
mod runs;
mod schedule;
mod sqlite;
mod workflow;

pub use batch::{Progress, ProgressFn, RunReport};
pub use catalog::{Catalog, Kind, MemoryCatalog, RunRecord};
pub use config::{BucketConfig, Config, EngineConfig, FusionConfig, KodoConfig, ServerConfig, UrlConfig};
pub use control::RunEvent;
pub use engine::{Clock, Engine, EngineBuilder, SystemClock};
pub use schedule::{Schedule, Trigger, TriggerKind};
pub use sqlite::SqliteCatalog;
