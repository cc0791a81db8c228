/*!
pbatch on an Apache DataFusion Ballista cluster.

A batch whose container asks for more cores than one machine gives
(`[cluster] local_max_cores`) runs on a Ballista cluster when `[cluster]
scheduler` is set. Three processes make a cluster:

- `pbatch scheduler` ([`run_scheduler`]) plans each job's stages;
- `pbatch executor` ([`run_executor`]) runs their tasks, several per machine;
- the engine ([`remote_session`]) plans the batch's SQL as usual, sends its
  logical plan to the scheduler and streams the result back, then writes and
  commits the exports itself.

What this crate adds to Ballista:

- **codecs** ([`LogicalCodec`], [`PhysicalCodec`]) for pbatch's own tables and
  scans (the json / csv / text row reader with its bad-record rules, and fusion
  CDN logs), wrapping Ballista's codecs for everything else; DataFusion's
  parquet scans are Ballista's own;
- **stores** ([`StoreRegistry`]): every process finds a store by the URL the
  engine knows it by (`kodo://<bucket>/`, `hdfs://<namenode>/`,
  `fusion://logs/`), through its own configuration (`pbatch.toml`,
  `PBATCH_*`) for endpoints and keys. Bucket folders of the embedded default
  and the fusion folder are under the engine's data dir, which each job
  carries ([`JobOptions`]): on a cluster that dir is a shared filesystem,
  mounted at the same path everywhere.
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

mod client;
mod codec;
mod process;
mod stores;
mod write;

pub use client::{ClusterCounts, ClusterPlan, SchedulerAddr, check_sendable, cluster_defaults, remote_session};
pub use codec::{LogicalCodec, PhysicalCodec};
pub use process::{ExecutorOptions, SchedulerOptions, run_executor, run_scheduler};
pub use stores::{JobOptions, StoreRegistry, StoresConfig};
pub use write::{WriteExec, WriteTable, written_rows};
