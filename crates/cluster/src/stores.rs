//! The stores a cluster process reads: found by the URL the engine knows
//! each by, built from this process's configuration.

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::prelude::SessionConfig;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use pbatch_source::Stores;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

/// What a job tells the cluster about the engine that sent it
/// (`pbatch.*` session options).
///
/// Written out rather than through `extensions_options!`: Ballista sends a
/// session's options as `entries()`, and the macro's entries leave out the
/// `pbatch.` prefix, so the scheduler and executors could not set them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOptions {
    /// The engine's data dir (absolute): bucket folders of the embedded
    /// default and the fusion folder are under it.
    pub data_dir: String,
}

const DATA_DIR: &str = "data_dir";

impl ConfigExtension for JobOptions {
    const PREFIX: &'static str = "pbatch";
}

impl ExtensionOptions for JobOptions {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> DfResult<()> {
        match key {
            DATA_DIR => {
                self.data_dir = value.to_string();
                Ok(())
            }
            _ => Err(DataFusionError::Configuration(format!(
                "unknown option pbatch.{key}; known: pbatch.{DATA_DIR}"
            ))),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![ConfigEntry {
            key: format!("{}.{DATA_DIR}", Self::PREFIX),
            value: Some(self.data_dir.clone()),
            description: "the engine's data dir: bucket folders and the fusion folder are under it",
        }]
    }
}

impl JobOptions {
    /// The options of `config`, when it carries them.
    pub fn of(config: &SessionConfig) -> Option<&JobOptions> {
        config.options().extensions.get::<JobOptions>()
    }
}

/// A process's store configuration: endpoints and keys from its own
/// `pbatch.toml` / `PBATCH_*`, its data dir the default for jobs that do
/// not name one.
#[derive(Debug, Clone)]
pub struct StoresConfig {
    /// Buckets (endpoints, keys, local folders) as configured.
    pub stores: Stores,
}

impl StoresConfig {
    /// The registry for a job: the job's data dir when it names one.
    pub fn registry_for(&self, config: &SessionConfig) -> StoreRegistry {
        // an engine sends its data dir absolute; anything else is ignored
        let stores = match JobOptions::of(config)
            .map(|o| PathBuf::from(&o.data_dir))
            .filter(|d| d.is_absolute())
        {
            Some(dir) => self.stores.at(dir),
            None => self.stores.clone(),
        };
        StoreRegistry::new(stores)
    }
}

/// Finds a store by URL: `kodo://<bucket>/` through [`Stores`],
/// `hdfs://` and `viewfs://` through the NameNode, `fusion://logs/` as the
/// data dir's fusion folder, anything else (`file://`) as DataFusion does.
#[derive(Debug)]
pub struct StoreRegistry {
    stores: Stores,
    inner: DefaultObjectStoreRegistry,
}

impl StoreRegistry {
    /// A registry over `stores`.
    pub fn new(stores: Stores) -> Self {
        Self {
            stores,
            inner: DefaultObjectStoreRegistry::new(),
        }
    }

    fn fusion_root(&self) -> PathBuf {
        self.stores.data_dir().join("fusion")
    }
}

fn store_err(url: &Url, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("store {url}: {e}"))
}

fn local(root: &Path, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
    let fs = LocalFileSystem::new_with_prefix(root).map_err(|e| store_err(url, e))?;
    Ok(Arc::new(fs))
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        // a store registered by the session itself wins
        if let Ok(s) = self.inner.get_store(url)
            && url.scheme() != "file"
        {
            return Ok(s);
        }
        match url.scheme() {
            "kodo" => {
                let bucket = url.host_str().unwrap_or_default();
                self.stores
                    .bucket(bucket)
                    .map_err(|e| DataFusionError::External(Box::new(e)))
            }
            "hdfs" | "viewfs" => pbatch_source::hdfs_store(url).map_err(|e| DataFusionError::External(Box::new(e))),
            "fusion" => {
                let root = self.fusion_root();
                std::fs::create_dir_all(&root).map_err(|e| store_err(url, e))?;
                local(&root, url)
            }
            _ => self.inner.get_store(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionConfig;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn a_job_names_its_data_dir() {
        let own = tempfile::tempdir().unwrap();
        let job = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(job.path().join("buckets/logs")).unwrap();
        std::fs::write(job.path().join("buckets/logs/a.json"), b"{}").unwrap();
        std::fs::create_dir_all(job.path().join("fusion/x.com")).unwrap();
        std::fs::write(job.path().join("fusion/x.com/h.gz"), b"zz").unwrap();
        let cfg = StoresConfig {
            stores: Stores::new(own.path()),
        };
        // without the option: this process's own data dir, which lacks the bucket
        let reg = cfg.registry_for(&SessionConfig::new());
        let e = reg.get_store(&Url::parse("kodo://logs/").unwrap()).unwrap_err();
        assert!(e.to_string().contains("\"logs\" does not exist"), "{e}");
        let mut config = SessionConfig::new().with_option_extension(JobOptions::default());
        config
            .options_mut()
            .set("pbatch.data_dir", &job.path().to_string_lossy())
            .unwrap();
        // as Ballista sends it: every entry, set again on the other side
        let sent = config.options().entries();
        let mut config = SessionConfig::new().with_option_extension(JobOptions::default());
        for e in sent {
            if let Some(v) = e.value {
                let _ = config.options_mut().set(&e.key, &v);
            }
        }
        let reg = cfg.registry_for(&config);
        let s = reg.get_store(&Url::parse("kodo://logs/").unwrap()).unwrap();
        let got = s.get(&"a.json".into()).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"{}");
        let f = reg.get_store(&Url::parse(pbatch_source::FUSION_URL).unwrap()).unwrap();
        let got = f.get(&"x.com/h.gz".into()).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"zz");
    }
}
