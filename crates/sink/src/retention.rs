//! `retention`: outputs of an export older than N days are deleted.

use crate::error::{Error, Result};
use pbatch_model::ErrorCode;
use regex::Regex;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The part of a `keyPrefix` before its first variable: everything this
/// export ever writes lies under it.
pub(crate) fn static_prefix(key_prefix: &str) -> &str {
    match key_prefix.find("$(") {
        Some(i) => &key_prefix[..i],
        None => key_prefix,
    }
}

/// An export's `retention`: which keys are its outputs, and how long they stay.
#[derive(Debug, Clone)]
pub(crate) struct Retention {
    /// Days to keep outputs (`<= 0`: forever).
    pub days: i64,
    /// Everything the export writes lies under this key prefix (the
    /// `keyPrefix` before its first variable); the sweep walks only it.
    pub prefix: String,
    /// The keys the export may have written in any batch (see
    /// [`retention_pattern`](crate::retention_pattern)); only those are deleted.
    pub owned: Regex,
}

/// Outputs modified before this are older than `days` days at `now`.
fn cutoff(days: i64, now: SystemTime) -> SystemTime {
    let age = Duration::from_secs(u64::try_from(days).unwrap_or(0).saturating_mul(86_400));
    now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The files of `root` that the rule owns (an export's
/// [`retention_pattern`](crate::retention_pattern)) and were modified more
/// than `days` days before `now`, except `keep` (what the current batch
/// writes), with the `_SUCCESS` manifests of the folders they are in. Only
/// the folder of `static_prefix` is walked. `days <= 0` keeps everything.
/// Sorted keys.
pub(crate) fn expired_local(
    root: &Path,
    rule: &Retention,
    now: SystemTime,
    keep: &HashSet<String>,
) -> Result<Vec<String>> {
    let (static_prefix, owned, days) = (rule.prefix.as_str(), &rule.owned, rule.days);
    if days <= 0 || !root.is_dir() {
        return Ok(Vec::new());
    }
    let cutoff = cutoff(days, now);
    let err = |p: &Path, e: std::io::Error| {
        Error::new(
            ErrorCode::ExportFailed,
            format!("retention sweep of {}: {e}", p.display()),
        )
    };
    let start = match static_prefix.rfind('/') {
        Some(i) => root.join(&static_prefix[..i]),
        None => root.to_path_buf(),
    };
    if !start.is_dir() {
        return Ok(Vec::new());
    }
    let mut old = Vec::new();
    let mut manifests = Vec::new();
    for entry in walk(&start) {
        let (path, is_dir) = entry.map_err(|e| err(root, e))?;
        if is_dir {
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else { continue };
        let key = rel.to_string_lossy().replace('\\', "/");
        let is_manifest = key.rsplit('/').next() == Some(crate::MANIFEST_FILE);
        if !(is_manifest || owned.is_match(&key)) || keep.contains(&key) {
            continue;
        }
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|e| err(&path, e))?;
        if modified < cutoff {
            if is_manifest {
                manifests.push(key);
            } else {
                old.push(key);
            }
        }
    }
    Ok(with_manifests(old, manifests, start_dir(static_prefix)))
}

/// The expired keys, and the old manifests of the folders those keys are
/// in (or their ancestors, below the folder of the static prefix `start`).
fn with_manifests(mut old: Vec<String>, manifests: Vec<String>, start: &str) -> Vec<String> {
    let dirs: HashSet<&str> = old
        .iter()
        .flat_map(|k| k.match_indices('/').map(move |(i, _)| &k[..=i]))
        .filter(|d| d.len() > start.len())
        .collect();
    let gone: Vec<String> = manifests
        .into_iter()
        .filter(|m| dirs.contains(&m[..m.len() - crate::MANIFEST_FILE.len()]))
        .collect();
    old.extend(gone);
    old.sort();
    old
}

/// The folder part of a static prefix, with its '/'.
fn start_dir(static_prefix: &str) -> &str {
    static_prefix.rfind('/').map(|i| &static_prefix[..=i]).unwrap_or("")
}

/// Deletes what [`expired_local`] finds, and the folders left empty.
#[cfg(test)]
pub(crate) fn sweep(root: &Path, rule: &Retention, now: SystemTime, keep: &HashSet<String>) -> Result<Vec<String>> {
    let deleted = expired_local(root, rule, now, keep)?;
    for key in &deleted {
        std::fs::remove_file(root.join(key)).map_err(|e| Error::new(ErrorCode::ExportFailed, e.to_string()))?;
    }
    crate::journal::prune_empty(root, &deleted);
    Ok(deleted)
}

/// [`expired_local`] on an object store.
pub(crate) async fn expired_store(
    store: &dyn object_store::ObjectStore,
    label: &str,
    rule: &Retention,
    now: SystemTime,
    keep: &HashSet<String>,
) -> Result<Vec<String>> {
    use futures::TryStreamExt;
    let (static_prefix, owned, days) = (rule.prefix.as_str(), &rule.owned, rule.days);
    if days <= 0 {
        return Ok(Vec::new());
    }
    let cutoff = cutoff(days, now);
    let dir = static_prefix.rfind('/').map(|i| &static_prefix[..i]).unwrap_or("");
    let prefix = (!dir.is_empty()).then(|| object_store::path::Path::from(dir));
    let err = |e: object_store::Error| Error::new(ErrorCode::ExportFailed, format!("retention sweep of {label}: {e}"));
    let listed: Vec<object_store::ObjectMeta> = match store.list(prefix.as_ref()).try_collect().await {
        Ok(v) => v,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(err(e)),
    };
    let mut old = Vec::new();
    let mut manifests = Vec::new();
    for m in listed {
        let key = m.location.to_string();
        let is_manifest = key.rsplit('/').next() == Some(crate::MANIFEST_FILE);
        if !(is_manifest || owned.is_match(&key)) || keep.contains(&key) || SystemTime::from(m.last_modified) >= cutoff
        {
            continue;
        }
        if is_manifest {
            manifests.push(key);
        } else {
            old.push(key);
        }
    }
    Ok(with_manifests(old, manifests, start_dir(static_prefix)))
}

fn walk(root: &Path) -> Vec<std::io::Result<(std::path::PathBuf, bool)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        match std::fs::read_dir(&d) {
            Ok(rd) => {
                for e in rd {
                    match e.and_then(|e| Ok((e.path(), e.file_type()?.is_dir()))) {
                        Ok((p, true)) => {
                            stack.push(p.clone());
                            out.push(Ok((p, true)));
                        }
                        other => out.push(other),
                    }
                }
            }
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(root: &Path, key: &str, age_days: u64, now: SystemTime) {
        let p = root.join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let f = std::fs::File::create(&p).unwrap();
        f.set_modified(now - Duration::from_secs(age_days * 86_400 + 60))
            .unwrap();
    }

    #[test]
    fn deletes_only_old_outputs_of_this_export() {
        let dir = tempfile::tempdir().unwrap();
        // an injected "now" ten days from the real clock
        let now = SystemTime::now() + Duration::from_secs(10 * 86_400);
        file(dir.path(), "daily/2026-11-01/part-00000.parquet", 5, now);
        file(dir.path(), "daily/2026-11-03/part-00000.parquet", 2, now);
        file(dir.path(), "daily/2026-11-04/part-00000.parquet", 0, now);
        file(dir.path(), "other/old.parquet", 30, now);
        file(dir.path(), "daily/notes.txt", 30, now);
        file(dir.path(), "daily/2026-11-02/mine.txt", 30, now);
        file(dir.path(), "daily/2026-11-02/part-00000.parquet", 30, now);
        file(dir.path(), "daily/2026-11-05/part-00000.parquet", 9, now);
        file(dir.path(), "daily/2026-11-01/_SUCCESS", 5, now);
        file(dir.path(), "daily/2026-11-03/_SUCCESS", 2, now);
        file(dir.path(), "daily/_SUCCESS", 30, now);
        let keep: HashSet<String> = ["daily/2026-11-05/part-00000.parquet".to_string()].into();
        let owned = crate::naming::retention_pattern("daily/$(date)/", false, false, ".parquet").unwrap();
        let rule = |days| Retention {
            days,
            prefix: static_prefix("daily/$(date)/").to_string(),
            owned: owned.clone(),
        };
        let deleted = sweep(dir.path(), &rule(3), now, &keep).unwrap();
        assert_eq!(
            deleted,
            vec![
                "daily/2026-11-01/_SUCCESS",
                "daily/2026-11-01/part-00000.parquet",
                "daily/2026-11-02/part-00000.parquet"
            ]
        );
        assert!(!dir.path().join("daily/2026-11-01").exists(), "emptied folder removed");
        assert!(
            dir.path().join("daily/2026-11-02/mine.txt").exists(),
            "a file it did not write stays"
        );
        assert!(dir.path().join("daily/2026-11-03/part-00000.parquet").exists());
        assert!(
            dir.path().join("daily/2026-11-03/_SUCCESS").exists(),
            "a kept folder keeps its manifest"
        );
        assert!(
            dir.path().join("daily/_SUCCESS").exists(),
            "not the manifest of an expired folder"
        );
        assert!(
            dir.path().join("daily/2026-11-05/part-00000.parquet").exists(),
            "kept: written by this batch"
        );
        assert!(
            dir.path().join("other/old.parquet").exists(),
            "another prefix is not ours"
        );
        assert!(dir.path().join("daily/notes.txt").exists(), "not a part file");
        assert!(
            sweep(dir.path(), &rule(0), now, &keep).unwrap().is_empty(),
            "0 keeps forever"
        );
        assert!(sweep(dir.path(), &rule(-1), now, &keep).unwrap().is_empty());
    }
}
