//! Listing the objects a batch reads.

use crate::error::{Error, Result};
use crate::store_error;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use pbatch_model::ErrorCode;
use std::collections::BTreeMap;

/// One object to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Key inside the bucket.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Its metadata, for DataFusion.
    pub meta: ObjectMeta,
}

/// Lists the objects whose key starts with one of `prefixes` followed by
/// `file_filter` (already expanded). No prefix means the whole bucket.
/// `bucket` names the bucket in messages (see [`Stores::describe`](crate::Stores::describe)).
/// Keys are returned sorted and without duplicates; folders' marker files
/// and names starting with `.` or `_` (such as `_SUCCESS`) are skipped.
pub async fn list_keys(
    store: &dyn ObjectStore,
    bucket: &str,
    prefixes: &[String],
    file_filter: &str,
) -> Result<Vec<SourceFile>> {
    let mut all_prefixes: Vec<String> = prefixes.iter().map(|p| format!("{p}{file_filter}")).collect();
    if all_prefixes.is_empty() {
        all_prefixes.push(file_filter.to_string());
    }
    let mut found = BTreeMap::new();
    for full in &all_prefixes {
        let full = full.trim_start_matches('/');
        let dir = match full.rfind('/') {
            Some(i) => &full[..i],
            None => "",
        };
        let dir_path = if dir.is_empty() { None } else { Some(Path::from(dir)) };
        let listed: Vec<ObjectMeta> = match store.list(dir_path.as_ref()).try_collect().await {
            Ok(v) => v,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => {
                return Err(store_error(&format!("listing {bucket} prefix {full:?}"), e));
            }
        };
        for meta in listed {
            let key = meta.location.as_ref();
            let name = meta.location.filename().unwrap_or("");
            if !key.starts_with(full) || name.starts_with('.') || name.starts_with('_') || meta.size == 0 {
                continue;
            }
            found.insert(
                key.to_string(),
                SourceFile {
                    key: key.to_string(),
                    size: meta.size,
                    meta,
                },
            );
        }
    }
    if found.is_empty() {
        return Err(Error::new(
            ErrorCode::NoFilesMatched,
            format!("{bucket}: no files under {all_prefixes:?}"),
        ));
    }
    Ok(found.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;

    #[tokio::test]
    async fn prefixes_and_filter() {
        let dir = tempfile::tempdir().unwrap();
        for k in [
            "logs/a-2017-06-01.json",
            "logs/a-2017-06-02.json",
            "logs/sub/b.json",
            "other/c.json",
            "logs/_SUCCESS",
        ] {
            let p = dir.path().join(k);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"{}\n").unwrap();
        }
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let keys = |v: Vec<SourceFile>| v.into_iter().map(|f| f.key).collect::<Vec<_>>();
        let got = list_keys(&store, "b", &["logs/a-".into()], "2017-06-01").await.unwrap();
        assert_eq!(keys(got), vec!["logs/a-2017-06-01.json"]);
        let got = list_keys(&store, "b", &["logs/".into(), "other/".into()], "")
            .await
            .unwrap();
        assert_eq!(keys(got).len(), 4);
        let got = list_keys(&store, "b", &[], "").await.unwrap();
        assert_eq!(keys(got).len(), 4);
        let e = list_keys(&store, "b", &["nope/".into()], "").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::NoFilesMatched);
        assert!(e.message().contains("nope/"));
    }
}
