//! The commit journal and the `_SUCCESS` manifests.
//!
//! A batch's commit is all-or-nothing across its file exports:
//!
//! 1. every staged file is synced and checksummed, and the whole plan (each
//!    file's final key, the keys `overwrite` and `retention` delete, the
//!    manifests) is worked out without touching any target;
//! 2. the plan is written to `<batch staging>/COMMIT.tmp`, synced, and
//!    renamed to `COMMIT`, and the folder is synced: that rename is the
//!    **commit point**;
//! 3. files move into place (renames, or uploads that leave the staged file
//!    until the end), the deletions follow, then each export's `_SUCCESS`;
//! 4. the engine records the batch Successful, then [`done`] removes the
//!    journal and the staging folder.
//!
//! A crash before the commit point leaves a staging folder without a
//! journal: it is discarded, nothing was visible. A crash after it leaves
//! the journal: [`OpenCommit::finish`] does step 3 again from the start.
//! Every step is idempotent (a moved file is found in place, a deleted key
//! is already gone, an upload is repeated), so finishing twice is harmless.

use crate::commit::{fs_err, store_err};
use crate::error::{Error, Result};
use crate::{CommitReport, Target, Targets};
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;
use pbatch_model::ErrorCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tracing::Instrument;

/// The journal's file name in a batch's staging folder.
pub const JOURNAL_FILE: &str = "COMMIT";
/// The manifest's file name in each export's output folder (Spark's name;
/// readers that skip `_` names skip it).
pub const MANIFEST_FILE: &str = "_SUCCESS";
const JOURNAL_VERSION: u32 = 1;

/// How to find an export's target again when a commit is finished after a
/// restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Place {
    /// A local folder.
    Folder {
        /// The folder.
        path: PathBuf,
    },
    /// A kodo bucket, found again through [`Targets::bucket`].
    Bucket {
        /// The bucket.
        bucket: String,
    },
    /// An HDFS NameNode, found again through [`Targets::namenode`].
    Namenode {
        /// `hdfs://<authority>/`.
        url: String,
    },
}

impl Place {
    /// The target this place names today.
    pub fn open(&self, targets: &dyn Targets) -> pbatch_model::Result<Target> {
        match self {
            Place::Folder { path } => Ok(Target::Local(path.clone())),
            Place::Bucket { bucket } => targets.bucket(bucket),
            Place::Namenode { url } => targets.namenode("export", url),
        }
    }
}

/// A file the batch read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// Where it is (`bucket/key`, `hdfs://...`, a local path).
    pub path: String,
    /// Its size.
    pub bytes: u64,
}

/// The batch a commit belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInfo {
    /// The job.
    pub job: String,
    /// The batch's id in the job's history.
    pub run_id: i64,
    /// The batch time, RFC 3339.
    pub batch_time: String,
    /// What the batch read (lineage, in every manifest).
    pub inputs: Vec<InputFile>,
    /// What the run's history says once the batch is committed.
    pub summary: String,
    /// The batch is in a history that outlives its engine: only an engine
    /// on that history finishes its commit (so the history tells the truth).
    #[serde(default)]
    pub recorded: bool,
    /// When the batch's attempt started (RFC 3339): a run of the same id
    /// that started otherwise (its job deleted and created again) is
    /// another batch, and is not told about this one.
    #[serde(default)]
    pub started: Option<String>,
}

/// One committed file, as a manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Its key in the target.
    pub key: String,
    /// Rows.
    pub rows: u64,
    /// Size.
    pub bytes: u64,
    /// CRC-32C of the bytes, 8 hex digits.
    pub crc32c: String,
}

/// One export in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestExport {
    /// The export's name.
    pub name: String,
    /// `json`, `csv`, `text`, `orc` or `parquet`.
    pub format: String,
    /// The compression's wire word (`none`, `gzip`, ...).
    pub compression: String,
    /// Its files.
    pub files: Vec<ManifestFile>,
}

/// The `_SUCCESS` file of an output folder: what the batch committed there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The job.
    pub job: String,
    /// The batch's id in the job's history.
    pub run_id: i64,
    /// The batch time, RFC 3339.
    pub batch_time: String,
    /// The pbatch that wrote it.
    pub pbatch_version: String,
    /// The exports of the batch writing into this folder (usually one).
    pub exports: Vec<ManifestExport>,
    /// The files the batch read.
    pub inputs: Vec<InputFile>,
}

impl Manifest {
    /// Parses a `_SUCCESS` file's bytes; `what` names it in the error.
    pub fn parse(bytes: &[u8], what: &str) -> pbatch_model::Result<Manifest> {
        serde_json::from_slice(bytes)
            .map_err(|e| pbatch_model::Error::new(ErrorCode::FileFormatMismatch, format!("manifest {what}: {e}")))
    }

    /// Reads a local `_SUCCESS` file; `None` when there is none.
    pub fn read_local(path: &Path) -> pbatch_model::Result<Option<Manifest>> {
        match std::fs::read(path) {
            Ok(b) => Self::parse(&b, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(pbatch_model::Error::new(
                ErrorCode::Internal,
                format!("reading manifest {}: {e}", path.display()),
            )),
        }
    }
}

/// One staged file in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JournalFile {
    /// Path relative to the batch's staging folder.
    pub staged: String,
    #[serde(flatten)]
    pub file: ManifestFile,
}

/// One file export in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JournalExport {
    pub name: String,
    pub place: Place,
    pub format: String,
    pub compression: String,
    pub files: Vec<JournalFile>,
    /// Keys `overwrite` removes (owned, not rewritten by this batch).
    pub delete: Vec<String>,
    /// Keys `retention` removes (old outputs and their manifests).
    pub expire: Vec<String>,
    /// Where this export's `_SUCCESS` goes.
    pub manifest: String,
    /// `ignore` found output: nothing is written.
    pub skipped: bool,
    /// Owned keys that existed before (reported as replaced by `overwrite`).
    pub replaced: usize,
    /// Reported to the caller (the kept result is not).
    pub reported: bool,
}

/// A batch's commit plan: written once, at the commit point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Journal {
    pub version: u32,
    pub pbatch_version: String,
    pub batch: BatchInfo,
    pub exports: Vec<JournalExport>,
}

impl Journal {
    pub(crate) fn new(batch: BatchInfo, exports: Vec<JournalExport>) -> Self {
        Self {
            version: JOURNAL_VERSION,
            pbatch_version: env!("CARGO_PKG_VERSION").to_string(),
            batch,
            exports,
        }
    }

    /// The manifest of `key` in `place`: every export of the batch writing it.
    fn manifest(&self, place: &Place, key: &str) -> Manifest {
        let exports = self
            .exports
            .iter()
            .filter(|e| !e.skipped && &e.place == place && e.manifest == key)
            .map(|e| ManifestExport {
                name: e.name.clone(),
                format: e.format.clone(),
                compression: e.compression.clone(),
                files: e.files.iter().map(|f| f.file.clone()).collect(),
            })
            .collect();
        Manifest {
            job: self.batch.job.clone(),
            run_id: self.batch.run_id,
            batch_time: self.batch.batch_time.clone(),
            pbatch_version: self.pbatch_version.clone(),
            exports,
            inputs: self.batch.inputs.clone(),
        }
    }

    /// Writes the journal durably into `dir`: the commit point. The folder
    /// must exist: a batch whose staging was removed meanwhile (its future
    /// dropped) gets no journal pointing at nothing.
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).map_err(|e| Error::internal(format!("journal: {e}")))?;
        write_file_durably(dir, JOURNAL_FILE, &body)
    }
}

/// Writes `dir/name` through `name.tmp`: synced, renamed, folder synced.
fn write_durably(dir: &Path, name: &str, body: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| fs_err("creating", dir, e))?;
    write_file_durably(dir, name, body)
}

/// [`write_durably`] into a folder that must exist.
fn write_file_durably(dir: &Path, name: &str, body: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let dest = dir.join(name);
    let mut f = std::fs::File::create(&tmp).map_err(|e| fs_err("writing", &tmp, e))?;
    f.write_all(body).map_err(|e| fs_err("writing", &tmp, e))?;
    f.sync_all().map_err(|e| fs_err("syncing", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, &dest).map_err(|e| fs_err("renaming", &tmp, e))?;
    sync_dir(dir)
}

/// Syncs a folder so the names in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    match std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        // some file systems refuse fsync on folders; the rename stands
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
        Err(e) => Err(fs_err("syncing", dir, e)),
    }
}

/// Syncs a staged file and returns its CRC-32C.
pub(crate) fn seal(path: &Path) -> Result<u32> {
    let (_, crc) = checksum(path)?;
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| fs_err("syncing", path, e))?;
    Ok(crc)
}

/// A local file's size and CRC-32C, read in 1 MiB pieces.
pub(crate) fn checksum(path: &Path) -> Result<(u64, u32)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| fs_err("reading", path, e))?;
    let (mut len, mut crc) = (0u64, 0u32);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| fs_err("reading", path, e))?;
        if n == 0 {
            return Ok((len, crc));
        }
        len += n as u64;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

/// The CRC-32C of a file as manifests write it.
pub(crate) fn crc_hex(crc: u32) -> String {
    format!("{crc:08x}")
}

/// A batch whose commit point was passed and whose commit may not be done:
/// its staging folder still holds the journal.
#[derive(Debug)]
pub struct OpenCommit {
    dir: PathBuf,
    journal: Journal,
}

impl OpenCommit {
    /// Reads the journal of a batch's staging folder; `None` when there is
    /// none (the batch never reached its commit point).
    pub fn read(dir: &Path) -> pbatch_model::Result<Option<OpenCommit>> {
        let path = dir.join(JOURNAL_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(pbatch_model::Error::new(
                    ErrorCode::Internal,
                    format!("reading commit journal {}: {e}", path.display()),
                ));
            }
        };
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| {
            pbatch_model::Error::new(
                ErrorCode::Internal,
                format!("commit journal {} cannot be read: {e}", path.display()),
            )
        })?;
        Ok(Some(OpenCommit {
            dir: dir.to_path_buf(),
            journal,
        }))
    }

    /// The batch.
    pub fn batch(&self) -> &BatchInfo {
        &self.journal.batch
    }

    /// The staging folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Does the commit again from its first move: files into place,
    /// deletions, manifests. Targets are found again through `targets`.
    pub async fn finish(&self, targets: &dyn Targets) -> Result<Vec<CommitReport>> {
        let mut opened = Vec::new();
        for e in &self.journal.exports {
            opened.push(e.place.open(targets)?);
        }
        apply(&self.journal, &self.dir, &opened).await
    }
}

/// Marks a batch's commit done: removes its journal (synced), then its
/// staging folder.
pub async fn done(dir: crate::StagingDir) {
    let path = dir.path().to_path_buf();
    let journal = path.join(JOURNAL_FILE);
    let removed = tokio::task::spawn_blocking(move || match std::fs::remove_file(&journal) {
        Ok(()) => sync_dir(&path).is_ok(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    })
    .await
    .unwrap_or(false);
    if removed {
        dir.remove().await;
    } else {
        tracing::warn!(dir = %dir.path().display(), "could not remove a done commit's journal; it is finished again at the next start");
        std::mem::forget(dir);
    }
}

/// Step 3 of the protocol: every export of the journal into place, in
/// order. `targets[i]` is where export `i` goes.
pub(crate) async fn apply(journal: &Journal, staging: &Path, targets: &[Target]) -> Result<Vec<CommitReport>> {
    let mut reports = Vec::new();
    let count = journal.exports.len();
    for (i, (e, target)) in journal.exports.iter().zip(targets).enumerate() {
        let mut report = CommitReport {
            export: e.name.clone(),
            keys: Vec::new(),
            rows: 0,
            bytes: 0,
            replaced: 0,
            skipped: e.skipped,
            expired: e.expire.len(),
            invalid: 0,
            retries: 0,
        };
        if !e.skipped {
            let span = tracing::info_span!("export", name = %e.name);
            apply_export(journal, e, staging, target).instrument(span).await?;
            report.keys = e.files.iter().map(|f| f.file.key.clone()).collect();
            report.rows = e.files.iter().map(|f| f.file.rows).sum();
            report.bytes = e.files.iter().map(|f| f.file.bytes).sum();
            report.replaced = e.replaced;
            tracing::info!(
                keys = report.keys.len(),
                rows = report.rows,
                bytes = report.bytes,
                "export committed"
            );
        }
        if e.reported {
            reports.push(report);
        }
        if i + 1 < count {
            crate::faults::point("commit.between_exports", i + 1);
        }
    }
    Ok(reports)
}

async fn apply_export(journal: &Journal, e: &JournalExport, staging: &Path, target: &Target) -> Result<()> {
    let manifest = serde_json::to_vec_pretty(&journal.manifest(&e.place, &e.manifest))
        .map_err(|err| Error::internal(format!("manifest: {err}")))?;
    match target {
        Target::Local(root) => {
            let (e, root, staging) = (e.clone(), root.clone(), staging.to_path_buf());
            crate::commit::blocking(move || apply_local(&e, &root, &staging, &manifest)).await
        }
        Target::Store { store, label, .. } => {
            for (n, f) in e.files.iter().enumerate() {
                let from = staging.join(&f.staged);
                crate::commit::upload(store.as_ref(), label, &from, &f.file.key).await?;
                crate::faults::point("commit.after_file", n + 1);
            }
            for key in e.delete.iter().chain(&e.expire) {
                match store.delete(&StorePath::from(key.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(err) => return Err(store_err(&format!("deleting {key} from"), label, err)),
                }
            }
            crate::faults::point("commit.before_manifest", 1);
            let what = format!("writing {} to", e.manifest);
            store
                .put(&StorePath::from(e.manifest.as_str()), manifest.into())
                .await
                .map_err(|err| store_err(&what, label, err))?;
            Ok(())
        }
    }
}

fn apply_local(e: &JournalExport, root: &Path, staging: &Path, manifest: &[u8]) -> Result<()> {
    let mut parents = BTreeSet::new();
    for (n, f) in e.files.iter().enumerate() {
        let dest = move_into(root, &staging.join(&f.staged), &f.file.key, f.file.bytes)?;
        if let Some(p) = dest.parent() {
            parents.insert(p.to_path_buf());
        }
        crate::faults::point("commit.after_file", n + 1);
    }
    for p in &parents {
        sync_dir(p)?;
    }
    for key in e.delete.iter().chain(&e.expire) {
        let p = root.join(key);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(fs_err("removing", &p, err)),
        }
    }
    prune_empty(root, e.delete.iter().chain(&e.expire));
    crate::faults::point("commit.before_manifest", 1);
    let key = Path::new(&e.manifest);
    let dir = root.join(key.parent().unwrap_or(Path::new("")));
    write_durably(&dir, MANIFEST_FILE, manifest)
}

/// Removes the folders that deleting `keys` emptied, deepest first, never `root`.
pub(crate) fn prune_empty<'a>(root: &Path, keys: impl IntoIterator<Item = &'a String>) {
    let emptied: BTreeSet<PathBuf> = keys
        .into_iter()
        .filter_map(|k| root.join(k).parent().map(Path::to_path_buf))
        .collect();
    let mut candidates: Vec<PathBuf> = emptied.into_iter().collect();
    candidates.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for mut cur in candidates {
        while cur.starts_with(root) && cur != root && std::fs::remove_dir(&cur).is_ok() {
            match cur.parent() {
                Some(p) => cur = p.to_path_buf(),
                None => break,
            }
        }
    }
}

/// Moves a staged file to `root/key` (rename; copy across file systems). A
/// staged file already gone was moved by an earlier attempt: its key must
/// be in place with the staged size.
fn move_into(root: &Path, staged: &Path, key: &str, bytes: u64) -> Result<PathBuf> {
    let dest = root.join(key);
    match staged.try_exists() {
        Ok(true) => {}
        Ok(false) if std::fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == bytes) => return Ok(dest),
        Ok(false) => {
            return Err(Error::new(
                ErrorCode::ExportFailed,
                format!(
                    "staged file {} is gone and {} is not in place",
                    staged.display(),
                    dest.display()
                ),
            ));
        }
        Err(e) => return Err(fs_err("reading", staged, e)),
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fs_err("creating", parent, e))?;
    }
    if std::fs::rename(staged, &dest).is_err() {
        // another file system: copy beside the key and sync, rename over the
        // key (readers never see a half-copied file), then remove the staged file
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = dest.with_file_name(format!(".{name}.pbatch-tmp"));
        std::fs::copy(staged, &tmp).map_err(|e| fs_err("copying to", &tmp, e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| fs_err("syncing", &tmp, e))?;
        std::fs::rename(&tmp, &dest).map_err(|e| fs_err("renaming", &tmp, e))?;
        std::fs::remove_file(staged).map_err(|e| fs_err("removing", staged, e))?;
    }
    Ok(dest)
}

/// The `_SUCCESS` key of an output whose files start with `scope` (a
/// prefix or a manual job's file name): in the folder `scope` is in.
pub(crate) fn manifest_key(scope: &str) -> String {
    match scope.rfind('/') {
        Some(i) => format!("{}{MANIFEST_FILE}", &scope[..=i]),
        None => MANIFEST_FILE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_keys() {
        assert_eq!(manifest_key("out/2026/12/02/"), "out/2026/12/02/_SUCCESS");
        assert_eq!(manifest_key("out/data-"), "out/_SUCCESS");
        assert_eq!(manifest_key("report.csv"), "_SUCCESS");
        assert_eq!(manifest_key(""), "_SUCCESS");
    }
}
