//! Buckets -> object stores.

use crate::error::{Error, Result};
use crate::store_error;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use pbatch_model::ErrorCode;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

/// An S3-compatible endpoint standing for kodo (`[kodo]` in pbatch.toml).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Endpoint {
    /// e.g. `http://127.0.0.1:9000` (path-style addressing).
    pub endpoint: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Signing region (default `us-east-1`).
    pub region: String,
}

impl std::fmt::Debug for S3Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Endpoint")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Resolves kodo buckets to object stores.
///
/// With no endpoint configured, a bucket is the folder
/// `<data_dir>/buckets/<bucket>/` (the embedded default); with one, it is
/// that endpoint's bucket of the same name. A bucket may be placed apart
/// ([`Stores::with_bucket`]): on its own endpoint, or in a local folder.
#[derive(Debug, Clone)]
pub struct Stores {
    data_dir: PathBuf,
    s3: Option<S3Endpoint>,
    /// bucket -> its own endpoint, or None for a local folder
    overrides: std::collections::HashMap<String, Option<S3Endpoint>>,
    cache: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<dyn ObjectStore>>>>,
}

impl Stores {
    /// Stores rooted at `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            s3: None,
            overrides: Default::default(),
            cache: Default::default(),
        }
    }

    /// Places `bucket` on its own endpoint, or (None) in a local folder,
    /// whatever the default is.
    pub fn with_bucket(mut self, bucket: &str, endpoint: Option<S3Endpoint>) -> Self {
        self.overrides.insert(bucket.to_string(), endpoint);
        self
    }

    /// The endpoint of `bucket`, None when it is a local folder.
    pub fn endpoint_of(&self, bucket: &str) -> Option<&S3Endpoint> {
        match self.overrides.get(bucket) {
            Some(e) => e.as_ref(),
            None => self.s3.as_ref(),
        }
    }

    /// Buckets of an S3-compatible endpoint.
    pub fn with_s3(data_dir: impl Into<PathBuf>, s3: S3Endpoint) -> Self {
        Self {
            s3: Some(s3),
            ..Self::new(data_dir)
        }
    }

    /// The default endpoint, when buckets are remote.
    pub fn s3(&self) -> Option<&S3Endpoint> {
        self.s3.as_ref()
    }

    /// Where a bucket is, for messages.
    pub fn describe(&self, bucket: &str) -> String {
        match self.endpoint_of(bucket) {
            Some(s3) => format!("bucket {bucket:?} at {}", s3.endpoint),
            None => format!("bucket {bucket:?} (folder {})", self.bucket_dir(bucket).display()),
        }
    }

    /// The local folder of a bucket, on the embedded default only.
    pub fn local_dir(&self, bucket: &str) -> Option<PathBuf> {
        self.endpoint_of(bucket).is_none().then(|| self.bucket_dir(bucket))
    }

    fn remote(&self, s3: &S3Endpoint, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| Error::internal("store cache lock poisoned"))?;
        if let Some(s) = cache.get(bucket) {
            return Ok(Arc::clone(s));
        }
        let retry = object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(30),
            ..Default::default()
        };
        let client = object_store::ClientOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(300))
            .with_allow_http(s3.endpoint.starts_with("http://"));
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(s3.endpoint.trim_end_matches('/'))
            .with_bucket_name(bucket)
            .with_access_key_id(&s3.access_key)
            .with_secret_access_key(&s3.secret_key)
            .with_region(&s3.region)
            .with_virtual_hosted_style_request(false)
            .with_retry(retry)
            .with_client_options(client)
            .build()
            .map_err(|e| Error::new(ErrorCode::InvalidRepoSpec, format!("{}: {e}", self.describe(bucket))))?;
        let store: Arc<dyn ObjectStore> = Arc::new(store);
        cache.insert(bucket.to_string(), Arc::clone(&store));
        Ok(store)
    }

    /// The same buckets with their local folders under another data dir.
    pub fn at(&self, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..self.clone()
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

    /// The store of an existing bucket (E18619 when it does not exist; on
    /// an endpoint that shows when it is first listed).
    pub fn bucket(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        if let Some(s3) = self.endpoint_of(bucket) {
            return self.remote(s3, bucket);
        }
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
        if let Some(s3) = self.endpoint_of(bucket) {
            return self.remote(s3, bucket);
        }
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
