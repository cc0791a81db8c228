//! saveMode and the move from staging to the final place.

use crate::StagedExport;
use pbatch_model::{Error, ErrorCode, Result, SaveMode};
use std::path::{Path, PathBuf};

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
}

fn fs_err(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorCode::ExportFailed, format!("{what} {}: {e}", p.display()))
}

/// Existing files of `root` that this export's naming owns (see [`Naming::owns`](crate::Naming::owns)).
fn existing(staged: &StagedExport) -> Result<Vec<(String, PathBuf)>> {
    let root = &staged.export.root;
    let naming = &staged.export.naming;
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
                out.push((key, p));
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
            staged.export.root.display()
        ),
    )
}

/// Checks, before anything of the batch is committed, that `errorIfExists`
/// will not fail.
pub fn precheck(staged: &StagedExport) -> Result<()> {
    if staged.export.save_mode == SaveMode::ErrorIfExists
        && let Some((key, _)) = existing(staged)?.first()
    {
        return Err(exists_error(staged, key));
    }
    Ok(())
}

/// Checks every export of a batch before any is committed: no `errorIfExists`
/// will fail, and no export would overwrite, or count as existing, what
/// another export of the same batch writes.
pub fn precheck_all(staged: &[StagedExport]) -> Result<()> {
    for s in staged {
        precheck(s)?;
    }
    for (i, a) in staged.iter().enumerate() {
        for b in &staged[i + 1..] {
            if a.export.root != b.export.root {
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

/// Applies the save mode and moves the staged files into place.
///
/// Only keys this export's naming owns count as existing output:
/// - overwrite: the new files move in first, then owned keys the batch did
///   not write are deleted;
/// - append: files carry the batch token, old files stay;
/// - errorIfExists: fails naming the first existing key;
/// - ignore: when output exists, the staged files are dropped.
///
/// Then, with `retention`, older outputs are swept; `now` is the clock
/// their age is measured against.
pub fn commit(staged: StagedExport, now: std::time::SystemTime) -> Result<CommitReport> {
    let ex = &staged.export;
    let found = existing(&staged)?;
    let mut report = CommitReport {
        export: ex.name.clone(),
        keys: Vec::new(),
        rows: 0,
        bytes: 0,
        replaced: 0,
        skipped: false,
        expired: 0,
    };
    match ex.save_mode {
        SaveMode::ErrorIfExists if !found.is_empty() => {
            discard_files(&staged);
            return Err(exists_error(&staged, &found[0].0));
        }
        SaveMode::Ignore if !found.is_empty() => {
            discard_files(&staged);
            report.skipped = true;
            return Ok(report);
        }
        _ => {}
    }
    for f in &staged.files {
        let dest = ex.root.join(&f.key);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fs_err("creating", parent, e))?;
        }
        if std::fs::rename(&f.staging, &dest).is_err() {
            // another file system: copy, then remove the staged file
            std::fs::copy(&f.staging, &dest).map_err(|e| fs_err("copying to", &dest, e))?;
            std::fs::remove_file(&f.staging).map_err(|e| fs_err("removing", &f.staging, e))?;
        }
        report.keys.push(f.key.clone());
        report.rows += f.rows;
        report.bytes += f.bytes;
    }
    if ex.save_mode == SaveMode::Overwrite {
        let written: std::collections::HashSet<&String> = report.keys.iter().collect();
        for (key, p) in &found {
            if !written.contains(key) {
                std::fs::remove_file(p).map_err(|e| fs_err("removing", p, e))?;
            }
        }
        report.replaced = found.len();
    }
    if ex.retention_days > 0
        && let Some(pattern) = &ex.retention_pattern
    {
        let keep = report.keys.iter().cloned().collect();
        report.expired = crate::sweep(&ex.root, &ex.retention_prefix, pattern, ex.retention_days, now, &keep)?.len();
    }
    Ok(report)
}

fn discard_files(staged: &StagedExport) {
    for f in &staged.files {
        let _ = std::fs::remove_file(&f.staging);
    }
}

/// Removes a staging folder (after a failure or once committed).
pub fn discard(staging_dir: &Path) {
    if staging_dir.exists()
        && let Err(e) = std::fs::remove_dir_all(staging_dir)
    {
        tracing::warn!(dir = %staging_dir.display(), error = %e, "could not remove staging");
    }
}
