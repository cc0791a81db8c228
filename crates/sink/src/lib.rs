/*!
Exports of pbatch: every export behind one [`Sink`] trait, and the one
[`commit`] of a batch.

- [`open`] builds the sink of an `ExportSpec` with the batch's
  [`SinkContext`] (its variables, schema, staging folder, the engine's
  [`Targets`] and [`ServiceUrls`]). What can fail before the first row fails
  there: a key prefix leaving its folder, an unset service URL, a bad
  mapping. Naming is decided once, in this crate: a manual job's `keyPrefix`
  is the file name, a variable-free one gets the batch-time folder, append
  mode adds the batch token, extensions come from
  `pbatch_model::FORMAT_COMPRESSION`.
- A sink takes the batch's record batches ([`Sink::write`]) and stages them
  in a private folder: file exports write `fileCount` files (rows spread
  evenly, Hive-style `col=value/` folders with `partitionBy`) in any format
  x compression; http, tsdb, logdb and report exports stage one record line
  per row. [`Sink::finish`] returns a [`Staged`] value, which removes its
  staged files when dropped uncommitted.
- [`commit`] takes every `Staged` value of the batch: it lists every target
  first (nothing is visible if a store is unreachable or an `errorIfExists`
  would fail), plans every move and deletion (`saveMode`, `retention`),
  sends service records (idempotently), writes the journal (the commit
  point), then moves files into place and writes each export's `_SUCCESS`
  [`Manifest`]. The protocol and its recovery ([`OpenCommit`], [`done`])
  are described in `journal.rs`; [`verify_export`] checks an export
  against its manifest. Named fault points for crash tests live behind the
  `failpoints` feature (`faults.rs`).
- A sink dropped before `finish` (a batch that failed while writing) hands
  its folder to its writer thread, which removes it once it has stopped.
- Errors are [`Error`]: a seed rule with its code, or the file system's,
  object store's, HTTP client's or database client's error kept whole as
  the cause; the engine turns them into `pbatch_model::Error`.

The conformance suite in `tests/it/conformance.rs` runs every sink (local
files, S3, http, tsdb, logdb, PostgreSQL, MariaDB) through the same checks.

Sits above `pbatch-model` and `pbatch-magic`, beside `pbatch-source` and
`pbatch-exec`; `pbatch-engine` opens the sinks, fans the plan's stream out to
them and commits.
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

mod codec;
mod commit;
mod error;
mod export;
mod faults;
mod journal;
mod naming;
mod partition;
mod preview;
mod remote;
mod report;
mod retention;
mod service;
mod sink;
mod verify;
mod writer;

pub use commit::CommitReport;
pub use error::{Error, Foreign, Result};
pub use export::{RESULT_RETENTION_DAYS, ServiceUrls, Targets, check_export, export_scope, result_dir};
pub use journal::{
    BatchInfo, InputFile, JOURNAL_FILE, MANIFEST_FILE, Manifest, ManifestExport, ManifestFile, OpenCommit, Place, done,
};
pub use partition::NULL_PARTITION;
pub use preview::{ExportPreview, preview_export};
pub use remote::{REMOTE_MANIFEST, RemotePlan, RemoteWrite, RemoteWritten, plan_remote};
pub use service::DEFAULT_BATCH_RECORDS;
pub use sink::{
    Claim, CommitContext, INCOMPLETE_COMMIT, Sink, SinkContext, Staged, StagingDir, commit, open, open_result,
};
pub use verify::{ExportCheck, verify_export};

use naming::Naming;
use retention::Retention;
use writer::FormatOptions;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use partition::Partitioner;
use pbatch_model::{ErrorCode, SaveMode};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use writer::FileWriter;

/// Where an export's files go.
#[derive(Debug, Clone)]
pub enum Target {
    /// A local folder (the embedded default's bucket, the engine's own
    /// results): committed by rename.
    Local(PathBuf),
    /// An object store (an S3 bucket): committed by upload.
    Store {
        /// The store, rooted at the bucket.
        store: Arc<dyn object_store::ObjectStore>,
        /// For messages and to tell targets apart (`bucket "b" at http://...`).
        label: String,
        /// How a commit finished after a restart finds it again.
        place: Place,
    },
}

impl Target {
    /// Names the target in messages; equal labels are the same place.
    pub fn label(&self) -> String {
        match self {
            Target::Local(p) => p.display().to_string(),
            Target::Store { label, .. } => label.clone(),
        }
    }

    /// How to find the target again (the commit journal records it).
    pub fn place(&self) -> Place {
        match self {
            Target::Local(p) => Place::Folder { path: p.clone() },
            Target::Store { place, .. } => place.clone(),
        }
    }
}

/// Where and how one file export writes.
#[derive(Debug, Clone)]
pub(crate) struct FileExport {
    /// The export's name (for messages).
    pub name: String,
    /// The target bucket.
    pub target: Target,
    /// Final file names.
    pub naming: Naming,
    /// Format and compression.
    pub options: FormatOptions,
    /// Files to write (>= 1); with `partition_by`, at most this many per partition directory.
    pub file_count: usize,
    /// Hive-style partition columns (left out of the files).
    pub partition_by: Vec<String>,
    /// What to do with existing output.
    pub save_mode: SaveMode,
    /// `retention`: older outputs deleted after each commit (`None`: kept forever).
    pub retention: Option<Retention>,
}

/// One staged file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StagedFile {
    /// Where it is now.
    pub(crate) staging: PathBuf,
    /// Its final key inside the target.
    pub(crate) key: String,
    /// Rows in it.
    pub(crate) rows: u64,
    /// Its size.
    pub(crate) bytes: u64,
}

/// An export whose files are all staged.
#[derive(Debug, Clone)]
pub(crate) struct StagedExport {
    /// The export.
    pub export: FileExport,
    /// Its files.
    pub files: Vec<StagedFile>,
}

/// A running writer: send batches, drop the sender, then await the handle.
pub(crate) struct WriterHandle<T> {
    /// Where batches go.
    pub(crate) sender: mpsc::Sender<RecordBatch>,
    /// The staged result.
    pub(crate) join: tokio::task::JoinHandle<Result<T>>,
    /// Who cleans up when the sink is dropped unfinished.
    pub(crate) state: Arc<WriterState>,
}

/// The hand-over between a writer thread and its sink: whoever comes second
/// when the sink is dropped without `finish` removes the staging folder, so
/// it is never removed while the writer still writes into it.
#[derive(Debug, Default)]
pub(crate) struct WriterState(std::sync::atomic::AtomicU8);

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

impl WriterState {
    /// Writer side, once it has stopped writing: when the sink was dropped
    /// unfinished, removes `staging_dir` and returns true.
    pub(crate) fn writer_done(&self, staging_dir: &std::path::Path) -> bool {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        if self.0.compare_exchange(RUNNING, DONE, AcqRel, Acquire).is_ok() {
            return false;
        }
        if let Err(e) = std::fs::remove_dir_all(staging_dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %staging_dir.display(), error = %e, "could not remove an abandoned export's staging");
        }
        true
    }

    /// Sink side, dropped unfinished: true when the writer still runs and
    /// will remove the folder itself; false when it is done (the caller removes it).
    pub(crate) fn abandon(&self) -> bool {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        self.0.compare_exchange(RUNNING, ABANDONED, AcqRel, Acquire).is_ok()
    }
}

/// Runs a writer's body on a blocking thread, then hands over per [`WriterState`].
pub(crate) fn spawn_writer<T: Send + 'static>(
    staging_dir: PathBuf,
    body: impl FnOnce() -> Result<T> + Send + 'static,
) -> (tokio::task::JoinHandle<Result<T>>, Arc<WriterState>) {
    let state = Arc::new(WriterState::default());
    let mine = Arc::clone(&state);
    let join = tokio::task::spawn_blocking(move || {
        let result = body();
        if mine.writer_done(&staging_dir) {
            return Err(Error::internal("export writer abandoned: its sink was dropped"));
        }
        result
    });
    (join, state)
}

fn staging_path(staging_dir: &std::path::Path, dir: &str, i: usize, ext: &str) -> PathBuf {
    staging_dir.join(format!("{dir}part-{i:05}{ext}"))
}

/// Partition folders with open files at once; past it the least recently
/// used folder's files are finished (its later rows, if any, start new part
/// numbers). The engine sorts by the partition columns when it can, so each
/// folder's rows arrive together and this is rarely reached.
const MAX_OPEN_FOLDERS: usize = 64;

/// Up to `n` files of one directory, rows spread evenly over them.
struct FileSet {
    dir: String,
    /// Part number of this set's first file.
    base: usize,
    writers: Vec<Option<FileWriter>>,
    next: usize,
    used: u64,
}

impl FileSet {
    fn new(dir: String, base: usize, n: usize) -> Self {
        Self {
            dir,
            base,
            writers: (0..n).map(|_| None).collect(),
            next: 0,
            used: 0,
        }
    }

    /// Gives every file len / n rows and the remainder to the files that have
    /// the fewest so far: counts never differ by more than one.
    fn write(
        &mut self,
        batch: &RecordBatch,
        open: &dyn Fn(&std::path::Path) -> Result<FileWriter>,
        staging: &std::path::Path,
        ext: &str,
    ) -> Result<()> {
        let n = self.writers.len();
        let len = batch.num_rows();
        let base = len / n;
        let extra = len % n;
        let mut offset = 0;
        for j in 0..n {
            let i = (self.next + j) % n;
            let take = base + usize::from(j < extra);
            if take == 0 {
                continue;
            }
            let path = staging_path(staging, &self.dir, self.base + i, ext);
            let w = match &mut self.writers[i] {
                Some(w) => w,
                slot => slot.insert(open(&path)?),
            };
            w.write(&batch.slice(offset, take))?;
            offset += take;
        }
        self.next = (self.next + extra) % n;
        Ok(())
    }

    /// Finishes the files: (part number, rows, bytes) each.
    fn finish(self) -> Result<Vec<(String, usize, u64, u64)>> {
        let mut out = Vec::new();
        for (i, w) in self.writers.into_iter().enumerate() {
            if let Some(w) = w {
                let (rows, bytes) = w.finish()?;
                out.push((self.dir.clone(), self.base + i, rows, bytes));
            }
        }
        Ok(out)
    }
}

/// Starts the blocking writer of one export. Files go to `staging_dir`.
pub(crate) fn spawn_file_writer(
    export: FileExport,
    schema: SchemaRef,
    staging_dir: PathBuf,
    token: String,
) -> WriterHandle<StagedExport> {
    let (sender, mut rx) = mpsc::channel::<RecordBatch>(4);
    let (join, state) = spawn_writer(staging_dir.clone(), move || {
        let n = export.file_count.max(1);
        let ext = export.naming.extension().to_string();
        let partitioner = if export.partition_by.is_empty() {
            None
        } else {
            Some(Partitioner::new(&schema, &export.partition_by, &export.name)?)
        };
        let file_schema = partitioner
            .as_ref()
            .map(|p| Arc::clone(&p.file_schema))
            .unwrap_or_else(|| Arc::clone(&schema));
        let open = |path: &std::path::Path| FileWriter::create(path, &file_schema, &export.options);
        let mut sets: HashMap<String, FileSet> = HashMap::new();
        let mut next_base: HashMap<String, usize> = HashMap::new();
        let mut done: Vec<(String, usize, u64, u64)> = Vec::new();
        let mut tick = 0u64;
        let mut write = |dir: String, part: &RecordBatch| -> Result<()> {
            tick += 1;
            if !sets.contains_key(&dir) && sets.len() >= MAX_OPEN_FOLDERS {
                let lru = sets.iter().min_by_key(|(_, s)| s.used).map(|(d, _)| d.clone());
                if let Some(set) = lru.and_then(|d| sets.remove(&d)) {
                    next_base.insert(set.dir.clone(), set.base + n);
                    done.extend(set.finish()?);
                }
            }
            let base = next_base.get(&dir).copied().unwrap_or(0);
            let set = sets.entry(dir.clone()).or_insert_with(|| FileSet::new(dir, base, n));
            set.used = tick;
            set.write(part, &open, &staging_dir, &ext)
        };
        while let Some(batch) = rx.blocking_recv() {
            if batch.num_rows() == 0 {
                continue;
            }
            match &partitioner {
                None => write(String::new(), &batch)?,
                Some(p) => {
                    for (dir, part) in p.split(&batch)? {
                        write(dir, &part)?;
                    }
                }
            }
        }
        if sets.is_empty() && done.is_empty() && partitioner.is_none() {
            // No rows: one empty file keeps the schema visible to readers that
            // carry one (parquet, orc, a csv header). A partitioned export with
            // no rows has no partition value, so it writes nothing.
            let mut set = FileSet::new(String::new(), 0, n);
            let mut w = open(&staging_path(&staging_dir, "", 0, &ext))?;
            // an empty batch still writes a csv header (and nothing else)
            w.write(&RecordBatch::new_empty(Arc::clone(&file_schema)))?;
            set.writers[0] = Some(w);
            sets.insert(String::new(), set);
        }
        for set in sets.into_values() {
            done.extend(set.finish()?);
        }
        done.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let append = export.save_mode == SaveMode::Append;
        let files = done
            .into_iter()
            .map(|(dir, i, rows, bytes)| StagedFile {
                staging: staging_path(&staging_dir, &dir, i, &ext),
                key: export.naming.key(&dir, i, n, &token, append),
                rows,
                bytes,
            })
            .collect();
        Ok(StagedExport { export, files })
    });
    WriterHandle { sender, join, state }
}

/// Awaits a writer (its sender dropped), turning a panic or cancellation
/// into an error.
pub(crate) async fn finish_writer<T>(join: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    join.await
        .map_err(|e| Error::new(ErrorCode::Internal, format!("export writer stopped: {e}")))?
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use pbatch_model::{Compression, ExportFormat};

    /// A csv export `e` into `root`, keys under `out/`.
    pub(crate) fn export(root: &std::path::Path, partition_by: Vec<String>, file_count: usize) -> FileExport {
        FileExport {
            name: "e".into(),
            target: Target::Local(root.to_path_buf()),
            naming: Naming::Parts {
                prefix: "out/".into(),
                ext: ".csv".into(),
            },
            options: FormatOptions {
                format: ExportFormat::Csv,
                compression: Compression::None,
                delimiter: b',',
                header: false,
            },
            file_count,
            partition_by,
            save_mode: SaveMode::Overwrite,
            retention: None,
        }
    }

    fn batch(keys: &[String], vals: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(vals.to_vec())),
            ],
        )
        .unwrap()
    }

    /// More partition folders than may be open at once, rows interleaved:
    /// every row lands in its folder, and folders that had to be closed
    /// continue with new part numbers rather than overwriting.
    #[tokio::test]
    async fn many_interleaved_partitions_lose_no_row() {
        let dir = tempfile::tempdir().unwrap();
        let folders = MAX_OPEN_FOLDERS * 3;
        let mut handle = None;
        for round in 0..3 {
            let keys: Vec<String> = (0..folders).map(|i| format!("p{i}")).collect();
            let vals: Vec<i64> = (0..folders as i64).map(|i| i + 1000 * round).collect();
            let b = batch(&keys, &vals);
            let h = handle.get_or_insert_with(|| {
                spawn_file_writer(
                    export(dir.path(), vec!["k".into()], 1),
                    b.schema(),
                    dir.path().join("st"),
                    "t".into(),
                )
            });
            h.sender.send(b).await.unwrap();
        }
        let handle = handle.unwrap();
        drop(handle.sender);
        let staged = finish_writer(handle.join).await.unwrap();
        let rows: u64 = staged.files.iter().map(|f| f.rows).sum();
        assert_eq!(rows, (folders * 3) as u64);
        let mut keys: Vec<&str> = staged.files.iter().map(|f| f.key.as_str()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), staged.files.len(), "no two files share a key");
        for f in &staged.files {
            assert!(f.staging.exists(), "{}", f.staging.display());
            assert!(f.key.starts_with("out/k=p"), "{}", f.key);
        }
        // within the open limit, one file per folder
        let small = tempfile::tempdir().unwrap();
        let keys: Vec<String> = (0..10).map(|i| format!("p{}", i % 5)).collect();
        let b = batch(&keys, &(0..10).collect::<Vec<i64>>());
        let h = spawn_file_writer(
            export(small.path(), vec!["k".into()], 1),
            b.schema(),
            small.path().join("st"),
            "t".into(),
        );
        h.sender.send(b).await.unwrap();
        drop(h.sender);
        let staged = finish_writer(h.join).await.unwrap();
        assert_eq!(staged.files.len(), 5);
    }
}
