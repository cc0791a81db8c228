/*!
The pbatch engine: what lives between the REST API (or the CLI) and the
batch's plan: configuration, the catalog of resources, run records and the
status machine, the scheduler, stop and rerun.

[`Engine`] holds the [`Config`], a [`Catalog`] (in memory for `pbatch run`;
durable in SQLite for `pbatch serve`) and the stores. Resources are created
with the seed's cross-resource rules (srcs must exist, table names unique
along a depend chain, variables may not shadow system ones).

A batch ([`Engine::run_once`], or a trigger of the scheduler) is:

1. a run record (Ready, then Running once a slot of
   `[engine] max_concurrent_batches` is free);
2. its srcs resolved against the catalog and handed to `pbatch-exec`,
   which builds the `BatchPlan`;
3. one `pbatch-sink` sink per export (plus the kept result when the job
   has downstream jobs), the plan's stream fanned out to all of them;
4. `pbatch_sink::commit` of everything staged, and the outcome recorded
   (Successful, Failed with the error's code and message, or Canceled).

`Engine`'s public surface, in one place:

| area | methods |
| --- | --- |
| build | [`Engine::builder`], [`EngineBuilder`], [`Engine::config`], [`Engine::data_dir`], [`Engine::zone`] |
| datasources | `create_datasource`, `datasource`, `list_datasources`, `update_datasource`, `delete_datasource`, `retrieve_schema` |
| jobs | `create_job`, `job`, `list_jobs`, `update_job`, `delete_job`, `scheduler_type` |
| exports | `create_export`, `export`, `exports`, `update_export`, `delete_export` |
| variables | `create_variable`, `variable`, `list_variables`, `variables`, `update_variable`, `delete_variable` |
| workflows | `create_workflow`, `workflow`, `list_workflows`, `update_workflow`, `delete_workflow`, `start_workflow`, `stop_workflow`, `workflow_status` |
| batches | [`Engine::run_once`], [`Engine::run_once_with`] (progress), `start_batch`, `wait_batch`, `stop_batch`, `rerun_batch`, `history`, `history_item`, [`Engine::subscribe`] |
| scheduling | `schedule`, `start_job`, `stop_job`, `tick`, `start_scheduler` |
| dry runs | [`Engine::dry_run`] |
| backfills | `backfill`, `backfills`, `backfill_status`, `stop_backfill`, `drive_backfill`, `parse_time` |

Sits above `pbatch-exec` and `pbatch-sink` (and `pbatch-source`,
`pbatch-magic`, `pbatch-model` below them); `pbatch-server` and the CLI sit
on top.

```
# #[tokio::main(flavor = "current_thread")]
# async fn main() -> pbatch_model::Result<()> {
use pbatch_engine::Engine;
use pbatch_model::{DatasourceSpec, ExportSpec, JobSpec};
# let tmp = tempfile::tempdir().map_err(|e| pbatch_model::Error::internal(e.to_string()))?;
# let dir = tmp.path();
# std::fs::create_dir_all(dir.join("buckets/logs/ev")).map_err(|e| pbatch_model::Error::internal(e.to_string()))?;
# std::fs::write(dir.join("buckets/logs/ev/a.json"), "{\"n\": 1}\n{\"n\": 2}\n").map_err(|e| pbatch_model::Error::internal(e.to_string()))?;
let engine = Engine::builder().data_dir(dir).build()?;
engine.create_datasource("ev", &DatasourceSpec::from_json(br#"{"region": "nb", "type": "kodo",
    "spec": {"bucket": "logs", "keyPrefixes": ["ev/"], "fileType": "json"},
    "schema": [{"key": "n", "valtype": "long"}]}"#)?)?;
engine.create_job("total", &JobSpec::from_json(br#"{
    "srcs": [{"name": "ev", "type": "datasource", "tableName": "ev"}],
    "computation": {"type": "sql", "code": "SELECT SUM(n) AS total FROM ev"},
    "scheduler": {"type": "manual"}}"#)?)?;
engine.create_export("total", "out", &ExportSpec::from_json(br#"{"type": "kodo",
    "spec": {"bucket": "outputs", "keyPrefix": "total.json", "format": "json"}}"#, None)?)?;
let report = engine.run_once("total", &[], chrono::Utc::now().fixed_offset()).await?;
assert_eq!((report.rows_read, report.rows_out), (2, 1));
# Ok(()) }
```
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

mod backfill;
mod batch;
mod catalog;
mod config;
mod control;
mod dryrun;
mod engine;
mod fanout;
mod inputs;
mod metrics;
mod recovery;
mod resources;
mod retry;
mod runlog;
mod runs;
mod schedule;
mod sqlite;
mod workflow;

pub use batch::{Progress, ProgressFn, RunReport};
pub use catalog::{Catalog, ExportStats, Kind, MAX_KEPT_KEYS, MemoryCatalog, RunRecord, RunStats};
pub use config::{
    BucketConfig, ClusterConfig, Config, EngineConfig, FusionConfig, KodoConfig, ServerConfig, ServerKey, UrlConfig,
};
pub use control::RunEvent;
pub use dryrun::{BatchPreview, ColumnPreview, SrcPreview, VariableValue};
pub use engine::{Clock, Engine, EngineBuilder, SystemClock, cluster_stores};
pub use pbatch_sink::{ExportCheck, ExportPreview, Manifest};
pub use runlog::{AttemptLog, MAX_ATTEMPTS, MAX_LINES, RunLog, RunLogLayer, run_log_layer};
pub use schedule::{PendingRetry, Schedule, Trigger, TriggerKind};
pub use sqlite::SqliteCatalog;
