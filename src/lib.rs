/*!
pbatch: an embeddable batch SQL engine implementing the Pandora
batch-computation API.

This facade re-exports the [`Engine`] and the wire types of [`model`], and
holds what the `pbatch` command line shares with programs: loading a spec
folder ([`spec::load_dir`]) and the example data generator ([`example`]).

```
# #[tokio::main(flavor = "current_thread")]
# async fn main() -> anyhow::Result<()> {
let data = tempfile::tempdir()?;
// 1,000 generated access-log lines in the example's bucket
pbatch::example::generate_cdn_logs(data.path(), 1_000, 2)?;
let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cdn-logs");
let engine = pbatch::spec::engine_for_dir(&dir, Some(data.path()))?;
pbatch::spec::load_dir(&engine, &dir)?;
let report = engine.run_once("daily_traffic", &[], chrono::Utc::now().fixed_offset()).await?;
assert_eq!(report.rows_read, 1_000);
# Ok(()) }
```
*/
#![warn(missing_docs, unreachable_pub)]

pub mod example;
pub mod spec;

pub use pbatch_cluster as cluster;
pub use pbatch_engine::{
    AttemptLog, BatchPreview, ExportCheck, ExportPreview, Manifest, RunEvent, RunLog, RunLogLayer, Schedule, Trigger,
    TriggerKind, run_log_layer,
};
pub use pbatch_engine::{
    Catalog, Clock, Config, Engine, EngineBuilder, MemoryCatalog, Progress, RunReport, SystemClock, cluster_stores,
};
pub use pbatch_magic as magic;
pub use pbatch_model as model;
pub use pbatch_server as server;
