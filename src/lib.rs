/*!
pbatch: an embeddable batch SQL engine implementing the Pandora
batch-computation API.

This facade re-exports the [`Engine`] and the wire types of [`model`], and
holds what the `pbatch` command line shares with programs: loading a spec
folder ([`spec::load_dir`]) and the example data generator ([`example`]).

```no_run
# async fn demo() -> anyhow::Result<()> {
let dir = std::path::Path::new("examples/cdn-logs");
let engine = pbatch::spec::engine_for_dir(dir, None)?;
pbatch::spec::load_dir(&engine, dir)?;
let report = engine.run_once("daily_traffic", &[], chrono::Utc::now().fixed_offset()).await?;
println!("{} rows", report.rows_out);
# Ok(()) }
```
*/
#![warn(missing_docs, unreachable_pub)]

pub mod example;
pub mod spec;

pub use pbatch_engine::{
    Catalog, Clock, Config, Engine, EngineBuilder, MemoryCatalog, Progress, RunReport, SystemClock,
};
pub use pbatch_engine::{RunEvent, Schedule, Trigger, TriggerKind};
pub use pbatch_magic as magic;
pub use pbatch_model as model;
pub use pbatch_server as server;
