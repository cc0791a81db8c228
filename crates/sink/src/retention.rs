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

/// Deletes the files of `root` that the rule owns (an export's
/// [`retention_pattern`](crate::retention_pattern)) and were modified more
/// than `days` days before `now`, except `keep` (what the current batch just
/// wrote). Only the folder of `static_prefix` is walked. `days <= 0` keeps
/// everything. Folders left empty are removed. Returns the deleted keys, sorted.
pub(crate) fn sweep(root: &Path, rule: &Retention, now: SystemTime, keep: &HashSet<String>) -> Result<Vec<String>> {
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
    let mut deleted = Vec::new();
    let mut dirs = Vec::new();
    for entry in walk(&start) {
        let (path, is_dir) = entry.map_err(|e| err(root, e))?;
        if is_dir {
            dirs.push(path);
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else { continue };
        let key = rel.to_string_lossy().replace('\\', "/");
        if !owned.is_match(&key) || keep.contains(&key) {
            continue;
        }
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|e| err(&path, e))?;
        if modified < cutoff {
            std::fs::remove_file(&path).map_err(|e| err(&path, e))?;
            if let Some(parent) = path.parent() {
                dirs.push(parent.to_path_buf());
            }
            deleted.push(key);
        }
    }
    // Only folders that held a deleted file may be removed, deepest first;
    // remove_dir fails (and the folder stays) when it is not empty.
    let emptied: HashSet<std::path::PathBuf> = deleted
        .iter()
        .filter_map(|k| root.join(k).parent().map(Path::to_path_buf))
        .collect();
    let mut candidates: Vec<std::path::PathBuf> = emptied.into_iter().collect();
    candidates.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in candidates {
        let mut cur = d;
        while cur.starts_with(&start) && cur != start && std::fs::remove_dir(&cur).is_ok() {
            match cur.parent() {
                Some(p) => cur = p.to_path_buf(),
                None => break,
            }
        }
    }
    drop(dirs);
    deleted.sort();
    if !deleted.is_empty() {
        tracing::info!(root = %root.display(), static_prefix, count = deleted.len(), "retention deleted old outputs");
    }
    Ok(deleted)
}

/// [`sweep`] on an object store: owned keys under the static prefix whose
/// last modification is older than `days` days are deleted.
pub(crate) async fn sweep_store(
    store: &dyn object_store::ObjectStore,
    label: &str,
    rule: &Retention,
    now: SystemTime,
    keep: &HashSet<String>,
) -> Result<Vec<String>> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
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
    let mut deleted = Vec::new();
    for m in listed {
        let key = m.location.to_string();
        if !owned.is_match(&key) || keep.contains(&key) || SystemTime::from(m.last_modified) >= cutoff {
            continue;
        }
        store.delete(&m.location).await.map_err(err)?;
        deleted.push(key);
    }
    deleted.sort();
    if !deleted.is_empty() {
        tracing::info!(
            target = label,
            static_prefix,
            count = deleted.len(),
            "retention deleted old outputs"
        );
    }
    Ok(deleted)
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
