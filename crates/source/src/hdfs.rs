//! HDFS: `hdfs://host:port/path` URLs and their stores (the pure-Rust
//! `hdfs-native` client behind `object_store`, so listing, reading and the
//! exporter's commits share the code local folders and S3 use).

use crate::error::{Error, Result};
use crate::store_error;
use hdfs_native_object_store::HdfsObjectStoreBuilder;
use object_store::ObjectStore;
use pbatch_model::ErrorCode;
use std::sync::Arc;
use url::Url;

/// An `hdfs://` URL split into its NameNode and its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdfsPath {
    /// `hdfs://host:port/`: what DataFusion and the client know the cluster by.
    pub namenode: Url,
    /// The path inside the cluster, without the leading `/` (an object
    /// store key prefix); empty for the root.
    pub path: String,
}

impl HdfsPath {
    /// Parses `text` (already expanded), naming `field` in errors.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::new(
                ErrorCode::InvalidRepoSpec,
                format!("{field} {text:?} {why}: write hdfs://namenode:port/path"),
            )
        };
        // the URL parser resolves `..`: look at the text as written first
        if text.split(['/', '?', '#']).any(|s| s == "." || s == "..") {
            return Err(bad("holds a '.' or '..' segment"));
        }
        let url = Url::parse(text.trim()).map_err(|_| bad("is not a URL"))?;
        if url.scheme() != "hdfs" {
            return Err(bad("is not an hdfs:// URL"));
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(bad("names no NameNode"));
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("holds a query or fragment"));
        }
        let namenode = match url.port() {
            Some(p) => format!("hdfs://{host}:{p}/"),
            None => format!("hdfs://{host}/"),
        };
        let namenode = Url::parse(&namenode).map_err(|_| bad("names no NameNode"))?;
        let path = pbatch_model::names::percent_decode(url.path())
            .trim_start_matches('/')
            .to_string();
        if path.split('/').any(|s| s == "." || s == "..") {
            return Err(bad("holds a '.' or '..' segment"));
        }
        Ok(Self { namenode, path })
    }

    /// `hdfs://host:port` for messages.
    pub fn label(&self) -> String {
        self.namenode.as_str().trim_end_matches('/').to_string()
    }

    /// The NameNode as sources, exports and store errors name it
    /// (`hdfs NameNode hdfs://host:port`).
    pub fn place(&self) -> String {
        namenode_place(&self.label())
    }
}

fn namenode_place(label: &str) -> String {
    format!("hdfs NameNode {label}")
}

/// The store of a NameNode. Nothing is contacted until the first call;
/// an unreachable NameNode then fails naming its URL.
pub fn hdfs_store(namenode: &Url) -> Result<Arc<dyn ObjectStore>> {
    let label = namenode.as_str().trim_end_matches('/');
    let store = HdfsObjectStoreBuilder::new()
        .with_url(label)
        .build()
        .map_err(|e| store_error(&namenode_place(label), e))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_namenode_and_path() {
        let p = HdfsPath::parse("spec.paths[0]", "hdfs://nn.example:8020/logs/2026/a%20b/").unwrap();
        assert_eq!(p.namenode.as_str(), "hdfs://nn.example:8020/");
        assert_eq!(p.path, "logs/2026/a b/");
        assert_eq!(p.label(), "hdfs://nn.example:8020");
        let p = HdfsPath::parse("f", "hdfs://ns1").unwrap();
        assert_eq!((p.namenode.as_str(), p.path.as_str()), ("hdfs://ns1/", ""));
        for bad in [
            "/logs",
            "s3://b/x",
            "hdfs:///x",
            "hdfs://nn:1/a/../b",
            "hdfs://nn:1/a?x=1",
            "not a url",
        ] {
            let e = HdfsPath::parse("spec.paths[0]", bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidRepoSpec);
            assert!(
                e.message().contains("spec.paths[0]") && e.message().contains(bad),
                "{e}"
            );
        }
    }
}
