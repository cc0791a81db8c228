//! Buckets -> object stores.

use crate::store_error;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use pbatch_model::{Error, ErrorCode, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

/// Resolves kodo buckets to object stores.
///
/// With no endpoint configured, a bucket is the folder
/// `<data_dir>/buckets/<bucket>/` (the embedded default).
#[derive(Debug, Clone)]
pub struct Stores {
    data_dir: PathBuf,
}

impl Stores {
    /// Stores rooted at `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
        }
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The local folder of a bucket on the embedded default.
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.data_dir.join("buckets").join(bucket)
    }

    /// The URL DataFusion knows the bucket by.
    pub fn bucket_url(bucket: &str) -> Result<Url> {
        Url::parse(&format!("kodo://{bucket}/"))
            .map_err(|e| Error::new(ErrorCode::InvalidRepoSpec, format!("bucket {bucket:?}: {e}")))
    }

    /// The store of an existing bucket (E18619 when it does not exist).
    pub fn bucket(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let dir = self.bucket_dir(bucket);
        if !dir.is_dir() {
            return Err(Error::new(
                ErrorCode::BucketNotFound,
                format!(
                    "bucket {bucket:?} does not exist (embedded default: no folder {})",
                    dir.display()
                ),
            ));
        }
        let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| store_error(&format!("bucket {bucket:?}"), e))?;
        Ok(Arc::new(fs))
    }

    /// The store of a bucket an export writes to, created when missing.
    pub fn bucket_for_write(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let dir = self.bucket_dir(bucket);
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::new(
                ErrorCode::ExportFailed,
                format!("creating bucket folder {}: {e}", dir.display()),
            )
        })?;
        self.bucket(bucket)
    }

    /// Registers a bucket's store with a session; returns its URL.
    pub fn register(&self, ctx: &SessionContext, bucket: &str) -> Result<Url> {
        let url = Self::bucket_url(bucket)?;
        ctx.register_object_store(&url, self.bucket(bucket)?);
        Ok(url)
    }
}
