//! `pbatch.toml`: every key declared once, overridable by `PBATCH_<SECTION>_<KEY>`.

use pbatch_model::{Error, ErrorCode, Result};
use serde::Deserialize;
use std::path::PathBuf;

/// `[engine]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Where buckets (embedded default), staging and metadata live. Default `./pbatch-data`.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Regions accepted in datasources and workflows. Default `["nb"]`.
    #[serde(default = "default_regions")]
    pub regions: Vec<String>,
}

fn default_regions() -> Vec<String> {
    vec!["nb".to_string()]
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            regions: default_regions(),
        }
    }
}

/// `[kodo]`: an S3-compatible endpoint; absent = buckets are local folders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KodoConfig {
    /// e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// Access key.
    pub access_key: Option<String>,
    /// Secret key.
    pub secret_key: Option<String>,
    /// Signing region.
    pub region: Option<String>,
}

/// A section holding one service URL (`[logdb]`, `[tsdb]`, `[report]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlConfig {
    /// The service URL.
    pub url: Option<String>,
}

/// `[fusion]`: the CDN log-list API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionConfig {
    /// Log-list API endpoint.
    pub endpoint: Option<String>,
    /// Access key.
    pub access_key: Option<String>,
    /// Secret key.
    pub secret_key: Option<String>,
}

/// `[server]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address, default `127.0.0.1:7100`.
    pub listen: Option<String>,
    /// `AK:SK` pairs.
    #[serde(default)]
    pub keys: Vec<String>,
}

/// The whole configuration. Nothing is required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[engine]`.
    #[serde(default)]
    pub engine: EngineConfig,
    /// `[kodo]`.
    #[serde(default)]
    pub kodo: KodoConfig,
    /// `[fusion]`.
    #[serde(default)]
    pub fusion: FusionConfig,
    /// `[logdb]`.
    #[serde(default)]
    pub logdb: UrlConfig,
    /// `[tsdb]`.
    #[serde(default)]
    pub tsdb: UrlConfig,
    /// `[report]`.
    #[serde(default)]
    pub report: UrlConfig,
    /// `[server]`.
    #[serde(default)]
    pub server: ServerConfig,
}

fn config_err(msg: String) -> Error {
    Error::new(ErrorCode::InvalidRequestBody, msg)
}

impl Config {
    /// Parses `pbatch.toml` text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| config_err(format!("{origin}: {}", e.to_string().trim())))
    }

    /// Sets one key by its `section.key` name (the parser shared by env and CLI).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let s = || Some(value.to_string());
        match key {
            "engine.data_dir" => self.engine.data_dir = Some(PathBuf::from(value)),
            "engine.regions" => {
                self.engine.regions = value.split(',').map(|r| r.trim().to_string()).collect()
            }
            "kodo.endpoint" => self.kodo.endpoint = s(),
            "kodo.access_key" => self.kodo.access_key = s(),
            "kodo.secret_key" => self.kodo.secret_key = s(),
            "kodo.region" => self.kodo.region = s(),
            "fusion.endpoint" => self.fusion.endpoint = s(),
            "fusion.access_key" => self.fusion.access_key = s(),
            "fusion.secret_key" => self.fusion.secret_key = s(),
            "logdb.url" => self.logdb.url = s(),
            "tsdb.url" => self.tsdb.url = s(),
            "report.url" => self.report.url = s(),
            "server.listen" => self.server.listen = s(),
            "server.keys" => {
                self.server.keys = value.split(',').map(|k| k.trim().to_string()).collect()
            }
            other => {
                return Err(config_err(format!(
                    "unknown configuration key {other:?}; known keys: {}",
                    Self::KEYS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Every settable key.
    pub const KEYS: &'static [&'static str] = &[
        "engine.data_dir",
        "engine.regions",
        "kodo.endpoint",
        "kodo.access_key",
        "kodo.secret_key",
        "kodo.region",
        "fusion.endpoint",
        "fusion.access_key",
        "fusion.secret_key",
        "logdb.url",
        "tsdb.url",
        "report.url",
        "server.listen",
        "server.keys",
    ];

    /// Applies `PBATCH_<SECTION>_<KEY>` variables from `vars`.
    pub fn apply_env<I: IntoIterator<Item = (String, String)>>(&mut self, vars: I) -> Result<()> {
        for (k, v) in vars {
            let Some(rest) = k.strip_prefix("PBATCH_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            if let Some(key) = Self::KEYS
                .iter()
                .find(|key| key.replacen('.', "_", 1) == lower)
            {
                self.set(key, &v)?;
            }
        }
        Ok(())
    }

    /// The data dir (default `./pbatch-data`).
    pub fn data_dir(&self) -> PathBuf {
        self.engine
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("pbatch-data"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_env_and_errors() {
        let mut c = Config::from_toml(
            "[engine]\ndata_dir = \"/tmp/x\"\n[tsdb]\nurl = \"http://a\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.data_dir(), PathBuf::from("/tmp/x"));
        assert_eq!(c.engine.regions, vec!["nb"]);
        c.apply_env([
            ("PBATCH_ENGINE_REGIONS".to_string(), "nb, sh".to_string()),
            ("PATH".into(), "x".into()),
        ])
        .unwrap();
        assert_eq!(c.engine.regions, vec!["nb", "sh"]);
        let e = Config::from_toml("[engine]\ndatadir = 1\n", "pbatch.toml").unwrap_err();
        assert!(
            e.message().contains("pbatch.toml") && e.message().contains("datadir"),
            "{e}"
        );
        assert!(c.set("engine.nope", "1").is_err());
    }
}
