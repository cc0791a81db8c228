/*!
File exports of pbatch: writers for every format x compression of
`pbatch_model::FORMAT_COMPRESSION`, file naming, staging and commit.

An export is written in two steps, so that a failed or canceled batch
leaves nothing visible:

1. [`spawn_file_writer`] starts a blocking writer that takes record batches
   from a channel and writes `fileCount` files into a private staging folder,
   spreading rows evenly (no two files differ by more than one row).
2. When every export of the batch has been staged, [`commit`] applies the
   `saveMode` at the final location and moves the staged files into place;
   [`discard`] removes staging after a failure.

Sits beside `pbatch-source`, above `pbatch-model` and `pbatch-magic`.
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

mod codec;
mod commit;
mod naming;
mod writer;

pub use commit::{CommitReport, commit, discard, precheck};
pub use naming::{Naming, TIMESTAMP_SUFFIX_FORMAT};
pub use writer::FormatOptions;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use pbatch_model::{Error, ErrorCode, Result, SaveMode};
use std::path::PathBuf;
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
    /// Files to write (>= 1).
    pub file_count: usize,
    /// What to do with existing output.
    pub save_mode: SaveMode,
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

/// Starts the blocking writer of one export. Files go to `staging_dir`.
pub fn spawn_file_writer(
    export: FileExport,
    schema: SchemaRef,
    staging_dir: PathBuf,
    token: String,
) -> WriterHandle {
    let (sender, mut rx) = mpsc::channel::<RecordBatch>(4);
    let join = tokio::task::spawn_blocking(move || {
        let n = export.file_count.max(1);
        let ext = export.naming.extension().to_string();
        let mut writers: Vec<Option<FileWriter>> = (0..n).map(|_| None).collect();
        let mut next = 0usize;
        let open = |i: usize| -> Result<FileWriter> {
            FileWriter::create(
                &staging_dir.join(format!("part-{i:05}{ext}")),
                &schema,
                &export.options,
            )
        };
        while let Some(batch) = rx.blocking_recv() {
            let len = batch.num_rows();
            if len == 0 {
                continue;
            }
            // Give every file len / n rows and the remainder to the files
            // that have the fewest so far: counts never differ by more than one.
            let base = len / n;
            let extra = len % n;
            let mut offset = 0;
            for j in 0..n {
                let i = (next + j) % n;
                let take = base + usize::from(j < extra);
                if take == 0 {
                    continue;
                }
                let w = match &mut writers[i] {
                    Some(w) => w,
                    slot => slot.insert(open(i)?),
                };
                w.write(&batch.slice(offset, take))?;
                offset += take;
            }
            next = (next + extra) % n;
        }
        if writers.iter().all(Option::is_none) {
            // No rows: one empty file keeps the schema visible to readers.
            writers[0] = Some(open(0)?);
        }
        let mut files = Vec::new();
        for (i, w) in writers.into_iter().enumerate() {
            let Some(w) = w else { continue };
            let (rows, bytes) = w.finish()?;
            files.push(StagedFile {
                staging: staging_dir.join(format!("part-{i:05}{ext}")),
                key: export
                    .naming
                    .key(i, n, &token, export.save_mode == SaveMode::Append),
                rows,
                bytes,
            });
        }
        Ok(StagedExport {
            export,
            files,
            token,
        })
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
