//! Durable metadata behind a small trait.

use pbatch_model::{Error, Result};
use std::collections::BTreeMap;
use std::sync::RwLock;

/// Kinds of resources the catalog holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Datasources, keyed by name.
    Datasource,
    /// Jobs, keyed by name.
    Job,
    /// Exports, keyed by `<job>/<export>`.
    Export,
    /// User variables.
    Variable,
    /// Workflows.
    Workflow,
}

/// Where resources are kept. Values are the resources' JSON bodies, so a
/// backend stores exactly what the API returns.
///
/// `insert` must fail with `Ok(false)` when the key exists, atomically.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// Adds a resource; `Ok(false)` if `key` exists.
    fn insert(&self, kind: Kind, key: &str, value: &serde_json::Value) -> Result<bool>;
    /// Replaces a resource; `Ok(false)` if `key` does not exist.
    fn replace(&self, kind: Kind, key: &str, value: &serde_json::Value) -> Result<bool>;
    /// Reads a resource.
    fn get(&self, kind: Kind, key: &str) -> Result<Option<serde_json::Value>>;
    /// Every resource of a kind whose key starts with `prefix`, sorted by key.
    fn list(&self, kind: Kind, prefix: &str) -> Result<Vec<(String, serde_json::Value)>>;
    /// Deletes a resource; `Ok(false)` if it did not exist.
    fn delete(&self, kind: Kind, key: &str) -> Result<bool>;
}

/// A catalog in memory (used by `pbatch run`, and in tests).
#[derive(Debug, Default)]
pub struct MemoryCatalog {
    map: RwLock<BTreeMap<(Kind, String), serde_json::Value>>,
}

fn poisoned() -> Error {
    Error::internal("catalog lock poisoned by an earlier panic")
}

impl Catalog for MemoryCatalog {
    fn insert(&self, kind: Kind, key: &str, value: &serde_json::Value) -> Result<bool> {
        let mut m = self.map.write().map_err(|_| poisoned())?;
        let k = (kind, key.to_string());
        if m.contains_key(&k) {
            return Ok(false);
        }
        m.insert(k, value.clone());
        Ok(true)
    }

    fn replace(&self, kind: Kind, key: &str, value: &serde_json::Value) -> Result<bool> {
        let mut m = self.map.write().map_err(|_| poisoned())?;
        match m.get_mut(&(kind, key.to_string())) {
            Some(v) => {
                *v = value.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn get(&self, kind: Kind, key: &str) -> Result<Option<serde_json::Value>> {
        let m = self.map.read().map_err(|_| poisoned())?;
        Ok(m.get(&(kind, key.to_string())).cloned())
    }

    fn list(&self, kind: Kind, prefix: &str) -> Result<Vec<(String, serde_json::Value)>> {
        let m = self.map.read().map_err(|_| poisoned())?;
        Ok(m.iter()
            .filter(|((k, key), _)| *k == kind && key.starts_with(prefix))
            .map(|((_, key), v)| (key.clone(), v.clone()))
            .collect())
    }

    fn delete(&self, kind: Kind, key: &str) -> Result<bool> {
        let mut m = self.map.write().map_err(|_| poisoned())?;
        Ok(m.remove(&(kind, key.to_string())).is_some())
    }
}
