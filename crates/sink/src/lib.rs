/*!
File exports of pbatch: writers for every format x compression of
`pbatch_model::FORMAT_COMPRESSION`, file naming, staging and commit.

An export is written in two steps, so that a failed or canceled batch
leaves nothing visible:

1. [`spawn_file_writer`] starts a blocking writer that takes record batches
   from a channel and writes `fileCount` files into a private staging folder,
   spreading rows evenly (no two files differ by more than one row); with
   `partitionBy`, rows go to Hive-style `col=value/` directories (values
   escaped, nulls as `__HIVE_DEFAULT_PARTITION__`, partition columns left out
   of the files) and each directory gets at most `fileCount` files.
2. When every export of the batch has been staged, [`precheck`] makes sure
   no `saveMode` will fail, then [`commit`] applies it at the final location
   and moves the staged files into place; [`discard`] removes staging after
   a failure.
3. [`sweep`] deletes outputs older than the export's `retention` days.

Sits beside `pbatch-source`, above `pbatch-model` and `pbatch-magic`.
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

mod codec;
mod commit;
mod naming;
mod partition;
mod retention;
mod writer;

pub use commit::{CommitReport, commit, discard, precheck, precheck_all};
pub use naming::{Naming, TIMESTAMP_SUFFIX_FORMAT, retention_pattern};
pub use partition::{NULL_PARTITION, escape_value};
pub use retention::{static_prefix, sweep};
pub use writer::FormatOptions;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use partition::Partitioner;
use pbatch_model::{Error, ErrorCode, Result, SaveMode};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use writer::FileWriter;

/// Where and how one file export writes.
#[derive(Debug, Clone)]
pub struct FileExport {
    /// The export's name (for messages).
    pub name: String,
    /// The local folder of the target bucket (embedded default).
    pub root: PathBuf,
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
    /// Days to keep this export's outputs (<= 0: forever).
    pub retention_days: i64,
    /// Everything this export writes lies under this key prefix (the
    /// `keyPrefix` before its first variable); retention walks it.
    pub retention_prefix: String,
    /// The keys this export may have written in any batch (see
    /// [`retention_pattern`]); retention deletes only those.
    pub retention_pattern: Option<regex::Regex>,
}

/// One staged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    /// Where it is now.
    pub staging: PathBuf,
    /// Its final key inside the target.
    pub key: String,
    /// Rows in it.
    pub rows: u64,
    /// Its size.
    pub bytes: u64,
}

/// An export whose files are all staged.
#[derive(Debug, Clone)]
pub struct StagedExport {
    /// The export.
    pub export: FileExport,
    /// Its files.
    pub files: Vec<StagedFile>,
    /// Unique token of this batch attempt (append mode names files with it).
    pub token: String,
}

/// A running writer: send batches, drop the sender, then await the handle.
pub struct WriterHandle {
    /// Where batches go.
    pub sender: mpsc::Sender<RecordBatch>,
    /// The staged result.
    pub join: tokio::task::JoinHandle<Result<StagedExport>>,
}

fn staging_path(staging_dir: &std::path::Path, dir: &str, i: usize, ext: &str) -> PathBuf {
    staging_dir.join(format!("{dir}part-{i:05}{ext}"))
}

/// Up to `n` files of one directory, rows spread evenly over them.
struct FileSet {
    dir: String,
    writers: Vec<Option<FileWriter>>,
    next: usize,
}

impl FileSet {
    fn new(dir: String, n: usize) -> Self {
        Self {
            dir,
            writers: (0..n).map(|_| None).collect(),
            next: 0,
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
            let path = staging_path(staging, &self.dir, i, ext);
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
}

/// Starts the blocking writer of one export. Files go to `staging_dir`.
pub fn spawn_file_writer(export: FileExport, schema: SchemaRef, staging_dir: PathBuf, token: String) -> WriterHandle {
    let (sender, mut rx) = mpsc::channel::<RecordBatch>(4);
    let join = tokio::task::spawn_blocking(move || {
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
        let mut sets: BTreeMap<String, FileSet> = BTreeMap::new();
        while let Some(batch) = rx.blocking_recv() {
            if batch.num_rows() == 0 {
                continue;
            }
            match &partitioner {
                None => sets
                    .entry(String::new())
                    .or_insert_with(|| FileSet::new(String::new(), n))
                    .write(&batch, &open, &staging_dir, &ext)?,
                Some(p) => {
                    for (dir, part) in p.split(&batch)? {
                        sets.entry(dir.clone()).or_insert_with(|| FileSet::new(dir, n)).write(
                            &part,
                            &open,
                            &staging_dir,
                            &ext,
                        )?;
                    }
                }
            }
        }
        if sets.is_empty() && partitioner.is_none() {
            // No rows: one empty file keeps the schema visible to readers that
            // carry one (parquet, orc, a csv header). A partitioned export with
            // no rows has no partition value, so it writes nothing.
            let mut set = FileSet::new(String::new(), n);
            let mut w = open(&staging_path(&staging_dir, "", 0, &ext))?;
            // an empty batch still writes a csv header (and nothing else)
            w.write(&RecordBatch::new_empty(Arc::clone(&file_schema)))?;
            set.writers[0] = Some(w);
            sets.insert(String::new(), set);
        }
        let append = export.save_mode == SaveMode::Append;
        let mut files = Vec::new();
        for set in sets.into_values() {
            for (i, w) in set.writers.into_iter().enumerate() {
                let Some(w) = w else { continue };
                let (rows, bytes) = w.finish()?;
                files.push(StagedFile {
                    staging: staging_path(&staging_dir, &set.dir, i, &ext),
                    key: export.naming.key(&set.dir, i, n, &token, append),
                    rows,
                    bytes,
                });
            }
        }
        Ok(StagedExport { export, files, token })
    });
    WriterHandle { sender, join }
}

/// Awaits a writer, turning a panic or cancellation into an error.
pub async fn finish_writer(handle: WriterHandle) -> Result<StagedExport> {
    drop(handle.sender);
    handle
        .join
        .await
        .map_err(|e| Error::new(ErrorCode::Internal, format!("export writer stopped: {e}")))?
}
