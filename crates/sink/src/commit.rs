//! saveMode and the move from staging to the final place.

use crate::error::{Error, Result};
use crate::journal::{JournalExport, JournalFile, ManifestFile, crc_hex, manifest_key, seal, sync_dir};
use crate::retention::{expired_local, expired_store};
use crate::{StagedExport, Target};
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use pbatch_model::{ErrorCode, SaveMode};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Files up to this size are uploaded in one request; larger ones in parts.
const SINGLE_PUT_MAX: u64 = 16 << 20;
/// Part size of multipart uploads.
const PART_SIZE: usize = 16 << 20;

/// What one committed export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReport {
    /// Export name.
    pub export: String,
    /// Keys written (empty when `ignore` found existing output).
    pub keys: Vec<String>,
    /// Rows written.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Keys removed by `overwrite`.
    pub replaced: usize,
    /// `ignore` found output and wrote nothing.
    pub skipped: bool,
    /// Old outputs deleted by retention after this commit.
    pub expired: usize,
    /// Rows a service export left out or the service refused (`omitInvalid`).
    pub invalid: u64,
    /// Requests of a service export sent again after a 5xx or no answer.
    pub retries: u64,
}

pub(crate) fn fs_err(what: &str, p: &Path, e: std::io::Error) -> Error {
    let message = crate::error::fs_message(what, p, &e);
    Error::Io(pbatch_model::Caused::new(ErrorCode::ExportFailed, message, e))
}

pub(crate) fn store_err(what: &str, target: &str, e: object_store::Error) -> Error {
    let message = format!("{what} {target}: {e}");
    Error::Store(pbatch_model::Caused::new(ErrorCode::ExportFailed, message, e))
}

/// Existing keys of the target that this export's naming owns (see [`Naming::owns`](crate::Naming::owns)).
async fn existing(staged: &StagedExport) -> Result<Vec<String>> {
    existing_of(&staged.export).await
}

/// [`existing`] of an export not yet staged.
pub(crate) async fn existing_of(export: &crate::FileExport) -> Result<Vec<String>> {
    match &export.target {
        Target::Local(root) => {
            let (root, naming) = (root.clone(), export.naming.clone());
            blocking(move || existing_local(&root, &naming)).await
        }
        Target::Store { store, label, .. } => {
            let scope = export.naming.scope();
            let dir = match scope.rfind('/') {
                Some(i) => &scope[..i],
                None => "",
            };
            let prefix = (!dir.is_empty()).then(|| StorePath::from(dir));
            let listed: Vec<object_store::ObjectMeta> = match store.list(prefix.as_ref()).try_collect().await {
                Ok(v) => v,
                Err(object_store::Error::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(store_err("listing", label, e)),
            };
            let mut out: Vec<String> = listed
                .into_iter()
                .map(|m| m.location.to_string())
                .filter(|k| export.naming.owns(k))
                .collect();
            out.sort();
            Ok(out)
        }
    }
}

/// Runs blocking file system work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("file system task stopped: {e}")))?
}

fn existing_local(root: &Path, naming: &crate::Naming) -> Result<Vec<String>> {
    let scope = naming.scope();
    let dir_part = match scope.rfind('/') {
        Some(i) => &scope[..i],
        None => "",
    };
    let start = root.join(dir_part);
    let mut out = Vec::new();
    if !start.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![start];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| fs_err("listing", &d, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| fs_err("listing", &d, e))?;
            let p = entry.path();
            let ft = entry.file_type().map_err(|e| fs_err("listing", &p, e))?;
            let Ok(rel) = p.strip_prefix(root) else { continue };
            let key = rel.to_string_lossy().replace('\\', "/");
            if ft.is_dir() {
                if key.starts_with(scope) || scope.starts_with(&format!("{key}/")) {
                    stack.push(p);
                }
            } else if naming.owns(&key) {
                out.push(key);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn exists_error(staged: &StagedExport, key: &str) -> Error {
    Error::new(
        ErrorCode::ExportFailed,
        format!(
            "export {}: saveMode errorIfExists and {key} already exists in {}",
            staged.export.name,
            staged.export.target.label()
        ),
    )
}

/// Checks, before anything of the batch is committed, that the target can
/// be listed and that `errorIfExists` will not fail.
pub(crate) async fn precheck(staged: &StagedExport) -> Result<()> {
    // listing every target (not only errorIfExists ones) also finds a store
    // that cannot be reached or refuses the credentials before any commit
    let found = existing(staged).await?;
    if staged.export.save_mode == SaveMode::ErrorIfExists
        && let Some(key) = found.first()
    {
        return Err(exists_error(staged, key));
    }
    Ok(())
}

/// Checks every export of a batch before any is committed: no `errorIfExists`
/// will fail, and no export would overwrite, or count as existing, what
/// another export of the same batch writes.
pub(crate) async fn precheck_all(staged: &[&StagedExport]) -> Result<()> {
    for s in staged {
        precheck(s).await?;
    }
    for (i, a) in staged.iter().enumerate() {
        for b in &staged[i + 1..] {
            if a.export.target.label() != b.export.target.label() {
                continue;
            }
            let clash = b
                .files
                .iter()
                .find(|f| a.export.naming.owns(&f.key))
                .map(|f| &f.key)
                .or_else(|| a.files.iter().find(|f| b.export.naming.owns(&f.key)).map(|f| &f.key));
            if let Some(key) = clash {
                return Err(Error::new(
                    ErrorCode::InvalidJobExportSpec,
                    format!(
                        "exports {} and {} of one job both write {key}: give them different keyPrefixes or formats",
                        a.export.name, b.export.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Works out what committing one export will do, touching nothing: the
/// journal entry of step 1 (see [`crate::journal`]). `found` keys decide
/// the save mode:
/// - overwrite: the new files move in, then owned keys the batch did not
///   write are deleted;
/// - append: files carry the batch token, old files stay;
/// - errorIfExists: fails naming the first existing key;
/// - ignore: when output exists, the staged files are dropped.
///
/// With `retention`, the outputs older than it at `now` are deleted too.
/// Staged files are synced and checksummed here.
pub(crate) async fn plan_export(
    staged: &StagedExport,
    staging_root: &Path,
    now: std::time::SystemTime,
    reported: bool,
) -> Result<JournalExport> {
    let ex = &staged.export;
    let found = existing(staged).await?;
    if ex.save_mode == SaveMode::ErrorIfExists
        && let Some(key) = found.first()
    {
        return Err(exists_error(staged, key));
    }
    let skipped = ex.save_mode == SaveMode::Ignore && !found.is_empty();
    let mut entry = JournalExport {
        name: ex.name.clone(),
        place: ex.target.place(),
        format: ex.options.format.as_str().to_string(),
        compression: ex.options.compression.as_str().to_string(),
        files: Vec::new(),
        delete: Vec::new(),
        expire: Vec::new(),
        manifest: manifest_key(ex.naming.scope()),
        skipped,
        replaced: 0,
        reported,
    };
    if skipped {
        return Ok(entry);
    }
    let files: Vec<(PathBuf, String, u64, u64)> = staged
        .files
        .iter()
        .map(|f| (f.staging.clone(), f.key.clone(), f.rows, f.bytes))
        .collect();
    let root = staging_root.to_path_buf();
    entry.files = blocking(move || {
        let mut dirs = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for (path, key, rows, bytes) in files {
            let crc = seal(&path)?;
            let rel = path
                .strip_prefix(&root)
                .map_err(|_| Error::internal(format!("{} is not under {}", path.display(), root.display())))?;
            if let Some(d) = path.parent() {
                dirs.insert(d.to_path_buf());
            }
            out.push(JournalFile {
                staged: rel.to_string_lossy().replace('\\', "/"),
                file: ManifestFile {
                    key,
                    rows,
                    bytes,
                    crc32c: crc_hex(crc),
                },
            });
        }
        dirs.iter().try_for_each(|d| sync_dir(d))?;
        Ok(out)
    })
    .await?;
    let written: HashSet<String> = entry.files.iter().map(|f| f.file.key.clone()).collect();
    if ex.save_mode == SaveMode::Overwrite {
        entry.delete = found.iter().filter(|k| !written.contains(*k)).cloned().collect();
        entry.replaced = found.len();
    }
    if let Some(rule) = &ex.retention {
        entry.expire = match &ex.target {
            Target::Local(root) => {
                let (root, rule) = (root.clone(), rule.clone());
                blocking(move || expired_local(&root, &rule, now, &written)).await?
            }
            Target::Store { store, label, .. } => expired_store(store.as_ref(), label, rule, now, &written).await?,
        };
        // a key both stale and expired is deleted once
        let stale: HashSet<&String> = entry.delete.iter().collect();
        entry.expire.retain(|k| !stale.contains(k));
    }
    Ok(entry)
}

/// Uploads a staged file as `key`: one PUT when small, else a multipart
/// upload of 16 MiB parts read from disk (never the whole file in memory).
pub(crate) async fn upload(store: &dyn ObjectStore, label: &str, staging: &Path, key: &str) -> Result<()> {
    let path = StorePath::from(key);
    let what = format!("uploading {key} to");
    let size = tokio::fs::metadata(staging)
        .await
        .map_err(|e| fs_err("reading", staging, e))?
        .len();
    if size <= SINGLE_PUT_MAX {
        let bytes = tokio::fs::read(staging)
            .await
            .map_err(|e| fs_err("reading", staging, e))?;
        store
            .put(&path, bytes.into())
            .await
            .map_err(|e| store_err(&what, label, e))?;
        return Ok(());
    }
    let upload = store
        .put_multipart(&path)
        .await
        .map_err(|e| store_err(&what, label, e))?;
    let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let sent = send_parts(&mut w, staging, &what, label).await;
    match sent {
        Ok(()) => w.finish().await.map(drop).map_err(|e| store_err(&what, label, e)),
        Err(e) => {
            // no half-written upload left behind to be billed
            if let Err(abort) = w.abort().await {
                tracing::warn!(key, error = %abort, "could not abort a multipart upload");
            }
            Err(e)
        }
    }
}

async fn send_parts(w: &mut object_store::WriteMultipart, staging: &Path, what: &str, label: &str) -> Result<()> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(staging)
        .await
        .map_err(|e| fs_err("reading", staging, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await.map_err(|e| fs_err("reading", staging, e))?;
        if n == 0 {
            return Ok(());
        }
        w.wait_for_capacity(4).await.map_err(|e| store_err(what, label, e))?;
        w.write(&buf[..n]);
    }
}
