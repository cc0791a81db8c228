//! File exports written by another process: a cluster executor writes a
//! batch's files into the batch's staging folder (a filesystem shared with
//! the engine), the engine commits them as if its own sinks had.
//!
//! The engine plans the exports ([`plan_remote`]): it resolves names and
//! targets as [`open`](crate::open) does, but starts no writer, and sends
//! the writer's part ([`RemoteWrite`], plain data) with the batch's plan.
//! The writer ([`RemoteWrite::run`]) writes every export from one stream
//! with the same writer as a local sink (same file names, `fileCount`,
//! `partitionBy`), each attempt in a folder of its own, then records what
//! it staged in the batch's [`REMOTE_MANIFEST`] (written whole, by rename).
//! The engine reads that back ([`RemotePlan::staged`]), checks it against
//! what it planned and the rows the job returned, and gets the `Staged`
//! values [`commit`](crate::commit) takes.

use crate::error::{Error, Result};
use crate::export::{file_export, result_export};
use crate::naming::Naming;
use crate::sink::{SinkContext, Staged, StagedKind, StagingDir};
use crate::writer::FormatOptions;
use crate::{FileExport, StagedExport, StagedFile, Target, finish_writer, spawn_file_writer};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures::{Stream, StreamExt};
use pbatch_model::{ErrorCode, ExportSpec, SaveMode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file, in the batch's staging folder, where a remote writer records
/// what it staged.
pub const REMOTE_MANIFEST: &str = "remote-written.json";

/// What a remote writer needs of one file export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct RemoteExport {
    name: String,
    naming: Naming,
    options: FormatOptions,
    file_count: usize,
    partition_by: Vec<String>,
    append: bool,
}

/// A batch's file exports, for a writer in another process: plain data
/// (it travels in the batch's plan).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RemoteWrite {
    /// The batch's staging folder (absolute): each export stages in
    /// `<staging>/<export>/<attempt>/`.
    staging: PathBuf,
    /// The batch attempt's token (append mode names files with it).
    token: String,
    exports: Vec<RemoteExport>,
}

/// What a remote writer staged: per export, its files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RemoteWritten {
    /// Rows the writer took (every export has them all).
    pub rows: u64,
    exports: Vec<(String, Vec<StagedFile>)>,
}

/// The engine's side of a remote write: the exports as planned (targets,
/// retention) and the part sent to the writer.
#[derive(Debug)]
pub struct RemotePlan {
    exports: Vec<FileExport>,
    write: RemoteWrite,
}

/// Plans every export of a batch for a remote writer, and the kept result
/// when `results` is given, as [`open`](crate::open) would; `None` when one
/// of them is not a file export (http, tsdb, logdb and report exports are
/// sent by the engine, so their batch streams its result to it).
pub fn plan_remote(
    exports: &[(String, ExportSpec)],
    results: Option<&Path>,
    cx: &SinkContext<'_>,
) -> Result<Option<RemotePlan>> {
    if exports.iter().any(|(_, e)| e.file_options().is_none()) {
        return Ok(None);
    }
    let mut planned = Vec::new();
    for (name, spec) in exports {
        pbatch_model::names::check_name(ErrorCode::InvalidExportName, "export name", name)?;
        planned.push(file_export(name, spec, cx.expander, cx.manual, cx.targets)?);
    }
    if let Some(results) = results {
        planned.push(result_export(results, cx.job, &cx.expander.batch_time())?);
    }
    let staging = std::path::absolute(cx.staging).map_err(|e| crate::commit::fs_err("resolving", cx.staging, e))?;
    let write = RemoteWrite {
        staging,
        token: cx.token.to_string(),
        exports: planned
            .iter()
            .map(|e| RemoteExport {
                name: e.name.clone(),
                naming: e.naming.clone(),
                options: e.options.clone(),
                file_count: e.file_count,
                partition_by: e.partition_by.clone(),
                append: e.save_mode == SaveMode::Append,
            })
            .collect(),
    };
    Ok(Some(RemotePlan {
        exports: planned,
        write,
    }))
}

impl RemotePlan {
    /// The writer's part.
    pub fn write(&self) -> &RemoteWrite {
        &self.write
    }

    /// Reads what the remote writer staged and returns the `Staged` value
    /// of every planned export. `rows` is what the job says the writer
    /// took: a manifest that is missing, from another batch, or short of
    /// an export, a file or a row is an error, and nothing is committed.
    pub fn staged(self, rows: u64) -> Result<Vec<Staged>> {
        let path = self.write.manifest();
        let bad = |why: String| {
            Error::Spec(pbatch_model::Error::new(
                ErrorCode::ExportFailed,
                format!(
                    "the files the cluster wrote cannot be committed: {why} (the engine's data dir {} must be \
                     the same shared folder on the engine and every executor)",
                    self.write.staging.display()
                ),
            ))
        };
        let text = std::fs::read(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let written: RemoteWritten =
            serde_json::from_slice(&text).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        if written.rows != rows {
            return Err(bad(format!(
                "{} records {} rows, the job returned {rows}",
                path.display(),
                written.rows
            )));
        }
        let mut staged = Vec::new();
        let mut files_of = written.exports;
        for export in self.exports {
            let at = files_of.iter().position(|(n, _)| *n == export.name);
            let Some(files) = at.map(|i| files_of.swap_remove(i).1) else {
                return Err(bad(format!(
                    "{} has no files of export {}",
                    path.display(),
                    export.name
                )));
            };
            let dir = self.write.staging.join(&export.name);
            let mut sum = 0;
            for f in &files {
                sum += f.rows;
                let inside = f.staging.starts_with(&dir) && !f.staging.components().any(|c| c.as_os_str() == "..");
                if !inside || !export.naming.owns(&f.key) {
                    return Err(bad(format!(
                        "export {}: a staged file {} (key {}) is not the export's",
                        export.name,
                        f.staging.display(),
                        f.key
                    )));
                }
                match std::fs::metadata(&f.staging) {
                    Ok(m) if m.len() == f.bytes => {}
                    Ok(m) => {
                        return Err(bad(format!(
                            "{} has {} bytes, its writer wrote {}",
                            f.staging.display(),
                            m.len(),
                            f.bytes
                        )));
                    }
                    Err(e) => return Err(bad(format!("{}: {e}", f.staging.display()))),
                }
            }
            if sum != rows {
                return Err(bad(format!(
                    "export {}: its files hold {sum} rows, the job returned {rows}",
                    export.name
                )));
            }
            staged.push(Staged {
                kind: StagedKind::Files(StagedExport { export, files }),
                dir: StagingDir::new(dir),
            });
        }
        Ok(staged)
    }
}

/// Unique per writer attempt: a task run again writes beside, never into,
/// the files of an attempt that may still be running.
fn attempt_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("attempt-{}-{nanos}", std::process::id())
}

impl RemoteWrite {
    /// The batch's staging folder.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    fn manifest(&self) -> PathBuf {
        self.staging.join(REMOTE_MANIFEST)
    }

    /// Writes every export from `input` (record batches of `schema`) into
    /// the batch's staging folder, then records what it staged. Returns the
    /// rows it took. On an error the files written so far stay, for the
    /// engine to remove with the batch's staging folder.
    pub async fn run<E>(
        &self,
        schema: SchemaRef,
        mut input: impl Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
    ) -> Result<u64>
    where
        E: std::fmt::Display,
    {
        // the engine's staging folder, created and locked by the batch
        // (on a filesystem shared with this process): never one of our own
        if !self.staging.join(crate::sink::LOCK_FILE).is_file() {
            return Err(Error::Spec(pbatch_model::Error::new(
                ErrorCode::ExportFailed,
                format!(
                    "the batch's staging folder {} is not on this executor: the engine's data dir must be \
                     the same shared folder on the engine and every executor (or the batch was stopped)",
                    self.staging.display()
                ),
            )));
        }
        for e in &self.exports {
            let mut parts = Path::new(&e.name).components();
            let plain = matches!(parts.next(), Some(std::path::Component::Normal(_))) && parts.next().is_none();
            if !plain {
                return Err(Error::internal(format!(
                    "export name {:?} is not a folder name",
                    e.name
                )));
            }
        }
        let attempt = attempt_name();
        let mut writers = Vec::new();
        // dropped before the writers are finished (the task was canceled):
        // each writer removes its files once it has stopped
        struct Abandon(Vec<(std::sync::Arc<crate::WriterState>, PathBuf)>);
        impl Drop for Abandon {
            fn drop(&mut self) {
                for (state, dir) in self.0.drain(..) {
                    if !state.abandon() {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                }
            }
        }
        let mut abandon = Abandon(Vec::new());
        for e in &self.exports {
            let export = FileExport {
                name: e.name.clone(),
                // a writer never commits: the engine does, to its own targets
                target: Target::Local(self.staging.clone()),
                naming: e.naming.clone(),
                options: e.options.clone(),
                file_count: e.file_count,
                partition_by: e.partition_by.clone(),
                save_mode: if e.append {
                    SaveMode::Append
                } else {
                    SaveMode::Overwrite
                },
                retention: None,
            };
            let dir = self.staging.join(&e.name).join(&attempt);
            let w = spawn_file_writer(export, schema.clone(), dir.clone(), self.token.clone());
            abandon.0.push((std::sync::Arc::clone(&w.state), dir));
            writers.push(w);
        }
        let mut rows = 0u64;
        let mut failed = None;
        while let Some(next) = input.next().await {
            let batch = match next {
                Ok(b) => b,
                Err(e) => {
                    failed = Some(Error::internal(format!("the result stream failed: {e}")));
                    break;
                }
            };
            rows += batch.num_rows() as u64;
            let mut closed = false;
            for w in &writers {
                closed |= w.sender.send(batch.clone()).await.is_err();
            }
            if closed {
                break; // a writer failed: its error comes out of its join
            }
        }
        // from here every writer is awaited to its end
        abandon.0.clear();
        let mut exports = Vec::new();
        for (e, w) in self.exports.iter().zip(writers) {
            drop(w.sender);
            match finish_writer(w.join).await {
                Ok(staged) => exports.push((e.name.clone(), staged.files)),
                Err(err) => {
                    failed.get_or_insert(err);
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let written = RemoteWritten { rows, exports };
        let json =
            serde_json::to_vec(&written).map_err(|e| Error::internal(format!("the staged files' manifest: {e}")))?;
        let path = self.manifest();
        let tmp = self.staging.join(format!("{REMOTE_MANIFEST}.{attempt}"));
        std::fs::write(&tmp, json).map_err(|e| crate::commit::fs_err("writing", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| crate::commit::fs_err("renaming", &tmp, e))?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn plan(root: &Path, staging: &Path, file_count: usize) -> RemotePlan {
        std::fs::create_dir_all(staging).unwrap();
        std::fs::write(staging.join(crate::sink::LOCK_FILE), "").unwrap();
        let export = crate::tests::export(root, vec![], file_count);
        let write = RemoteWrite {
            staging: staging.to_path_buf(),
            token: "t".into(),
            exports: vec![RemoteExport {
                name: "e".into(),
                naming: export.naming.clone(),
                options: export.options.clone(),
                file_count,
                partition_by: vec![],
                append: false,
            }],
        };
        RemotePlan {
            exports: vec![export],
            write,
        }
    }

    fn batches(n: i64) -> (SchemaRef, Vec<std::result::Result<RecordBatch, String>>) {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let b = |lo: i64, hi: i64| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from((lo..hi).collect::<Vec<_>>()))],
            )
            .map_err(|e| e.to_string())
        };
        (schema.clone(), vec![b(0, n / 2), b(n / 2, n)])
    }

    /// The writer's part goes over the wire as JSON and back unchanged; what
    /// it staged comes back as the engine's `Staged` values, with the keys
    /// a local sink gives.
    #[tokio::test]
    async fn a_remote_write_stages_what_a_local_sink_would() {
        let root = tempfile::tempdir().unwrap();
        let staging = root.path().join("st");
        let plan = plan(root.path(), &staging, 3);
        let wire = serde_json::to_string(plan.write()).unwrap();
        let there: RemoteWrite = serde_json::from_str(&wire).unwrap();
        assert_eq!(&there, plan.write());
        let (schema, input) = batches(10);
        let rows = there.run(schema, futures::stream::iter(input)).await.unwrap();
        assert_eq!(rows, 10);
        let staged = plan.staged(10).unwrap();
        assert_eq!(staged.len(), 1);
        let StagedKind::Files(f) = &staged[0].kind else {
            panic!("files")
        };
        let keys: Vec<&str> = f.files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["out/part-00000.csv", "out/part-00001.csv", "out/part-00002.csv"]);
        let rows: Vec<u64> = f.files.iter().map(|f| f.rows).collect();
        assert_eq!(rows, [4, 3, 3]);
        let text = std::fs::read_to_string(&f.files[0].staging).unwrap();
        assert_eq!(text.lines().count(), 4);
    }

    /// A manifest short of rows (the job returned more), a file that lost
    /// bytes, or no manifest at all: the batch commits nothing and says why.
    #[tokio::test]
    async fn a_short_or_missing_manifest_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let staging = root.path().join("st");
        let e = plan(root.path(), &staging, 1).staged(0).unwrap_err();
        assert!(e.to_string().contains(REMOTE_MANIFEST), "{e}");
        assert!(e.to_string().contains("shared folder"), "{e}");

        let p = plan(root.path(), &staging, 1);
        let (schema, input) = batches(6);
        p.write().run(schema, futures::stream::iter(input)).await.unwrap();
        let e = p.staged(7).unwrap_err();
        assert!(e.to_string().contains("records 6 rows, the job returned 7"), "{e}");

        let p = plan(root.path(), &staging, 1);
        let (schema, input) = batches(6);
        p.write().run(schema, futures::stream::iter(input)).await.unwrap();
        let written: RemoteWritten = serde_json::from_slice(&std::fs::read(p.write().manifest()).unwrap()).unwrap();
        let file = &written.exports[0].1[0].staging;
        std::fs::write(file, "0\n").unwrap();
        let e = p.staged(6).unwrap_err();
        assert!(e.to_string().contains("bytes, its writer wrote"), "{e}");
    }

    /// A staging folder the engine did not make (a data dir that is not
    /// shared) is refused before anything is written.
    #[tokio::test]
    async fn a_staging_folder_without_the_batchs_lock_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let staging = root.path().join("st");
        let p = plan(root.path(), &staging, 1);
        std::fs::remove_file(staging.join(crate::sink::LOCK_FILE)).unwrap();
        let (schema, input) = batches(6);
        let e = p.write().run(schema, futures::stream::iter(input)).await.unwrap_err();
        assert!(e.to_string().contains("not on this executor"), "{e}");
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0, "nothing written");
    }

    /// A failing input stream fails the write and leaves no manifest.
    #[tokio::test]
    async fn a_failed_stream_writes_no_manifest() {
        let root = tempfile::tempdir().unwrap();
        let staging = root.path().join("st");
        let p = plan(root.path(), &staging, 1);
        let (schema, mut input) = batches(6);
        input.push(Err("executor lost".into()));
        let e = p.write().run(schema, futures::stream::iter(input)).await.unwrap_err();
        assert!(e.to_string().contains("executor lost"), "{e}");
        assert!(!p.write().manifest().exists());
    }
}
