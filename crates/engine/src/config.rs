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
    /// Zone magic variables are evaluated in: an IANA name (`Asia/Shanghai`),
    /// an offset (`+08:00`) or `local`. Default: the machine's zone, as cron.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Batches (of different jobs) that run at once; more wait as `Ready`.
    /// Default 4.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_batches: usize,
    /// Records per request of http / logdb / tsdb exports. Default 1000.
    #[serde(default = "default_sink_batch")]
    pub sink_batch_records: usize,
    /// Files schema inference (and `noVerifySchema=false` checks) sample,
    /// from the start of the listing. Default 8.
    #[serde(default = "default_sample_files")]
    pub infer_sample_files: usize,
    /// Records per sampled file. Default 1000.
    #[serde(default = "default_sample_rows")]
    pub infer_sample_rows: usize,
    /// Retries of a batch that failed on a storage or network error, for
    /// jobs without their own `retries`. Default 0.
    #[serde(default)]
    pub batch_retries: u32,
    /// Seconds before the first retry; each later one waits twice as long.
    /// Default 60.
    #[serde(default = "default_retry_delay")]
    pub retry_delay: u64,
}

fn default_retry_delay() -> u64 {
    60
}

fn default_sample_files() -> usize {
    8
}

fn default_sample_rows() -> usize {
    1000
}

fn default_sink_batch() -> usize {
    1000
}

fn default_max_concurrent() -> usize {
    4
}

fn default_regions() -> Vec<String> {
    vec!["nb".to_string()]
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            regions: default_regions(),
            timezone: None,
            max_concurrent_batches: default_max_concurrent(),
            sink_batch_records: default_sink_batch(),
            infer_sample_files: default_sample_files(),
            infer_sample_rows: default_sample_rows(),
            batch_retries: 0,
            retry_delay: default_retry_delay(),
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
    /// Per-bucket overrides, `[kodo.buckets.<bucket>]`: another endpoint or
    /// keys for one bucket, or `local = true` to keep it a local folder.
    #[serde(default)]
    pub buckets: std::collections::BTreeMap<String, BucketConfig>,
}

/// `[kodo.buckets.<bucket>]`: where one bucket is. Fields not given are
/// taken from `[kodo]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// The bucket is the folder `<data_dir>/buckets/<bucket>/`, even when
    /// `[kodo] endpoint` is set.
    #[serde(default)]
    pub local: bool,
    /// Its S3-compatible endpoint.
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

/// One entry of `[server] keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKey {
    /// `"AK:SK"`.
    Pair(String),
    /// `{ access_key = "...", secret_key = "..." }`, or `secret_key_file`
    /// naming a file that holds the secret (a trailing newline is dropped),
    /// so the secret need not sit in the configuration.
    Table {
        /// The access key.
        access_key: String,
        /// The secret key.
        secret_key: Option<String>,
        /// A file holding the secret key (absolute, or relative to the
        /// working directory).
        secret_key_file: Option<PathBuf>,
    },
}

impl ServerKey {
    /// The access key and its secret; entry `i` names it in errors.
    pub fn resolve(&self, i: usize) -> Result<(String, String)> {
        let bad = |what: String| Error::new(ErrorCode::InvalidRequestBody, format!("server.keys[{i}]: {what}"));
        let (ak, sk) = match self {
            ServerKey::Pair(p) => match p.split_once(':') {
                Some((ak, sk)) => (ak.to_string(), sk.to_string()),
                None => return Err(bad("must be \"AK:SK\" or { access_key, secret_key }".into())),
            },
            ServerKey::Table {
                access_key,
                secret_key,
                secret_key_file,
            } => {
                let sk = match (secret_key, secret_key_file) {
                    (Some(sk), None) => sk.clone(),
                    (None, Some(f)) => std::fs::read_to_string(f)
                        .map_err(|e| bad(format!("secret_key_file {}: {e}", f.display())))?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                    (Some(_), Some(_)) => return Err(bad("set secret_key or secret_key_file, not both".into())),
                    (None, None) => return Err(bad("needs secret_key or secret_key_file".into())),
                };
                (access_key.clone(), sk)
            }
        };
        if ak.is_empty() || sk.is_empty() {
            return Err(bad("the access key and the secret key must both be non-empty".into()));
        }
        Ok((ak, sk))
    }
}

impl<'de> Deserialize<'de> for ServerKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ServerKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"AK:SK\" or a table { access_key, secret_key | secret_key_file }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<ServerKey, E> {
                Ok(ServerKey::Pair(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<ServerKey, A::Error> {
                use serde::de::Error as _;
                let (mut ak, mut sk, mut file) = (None, None, None);
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "access_key" => ak = Some(map.next_value::<String>()?),
                        "secret_key" => sk = Some(map.next_value::<String>()?),
                        "secret_key_file" => file = Some(map.next_value::<PathBuf>()?),
                        other => {
                            return Err(A::Error::unknown_field(
                                other,
                                &["access_key", "secret_key", "secret_key_file"],
                            ));
                        }
                    }
                }
                Ok(ServerKey::Table {
                    access_key: ak.ok_or_else(|| A::Error::missing_field("access_key"))?,
                    secret_key: sk,
                    secret_key_file: file,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `[server]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address, default `127.0.0.1:7100`.
    pub listen: Option<String>,
    /// Access keys: `"AK:SK"` strings or `{ access_key, secret_key }` /
    /// `{ access_key, secret_key_file }` tables. Empty: requests are not
    /// signed, and the server only listens on a loopback address.
    #[serde(default)]
    pub keys: Vec<ServerKey>,
    /// Largest request body in bytes (default 8 MiB).
    pub max_body_bytes: Option<usize>,
    /// A second address serving only `GET /metrics`, unsigned (for a
    /// Prometheus scraper); `/metrics` on `listen` takes the API's auth.
    pub metrics_listen: Option<String>,
}

/// `[cluster]`: a Ballista cluster for batches bigger than this machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The scheduler `pbatch scheduler` started, `df://host:port`. Unset:
    /// every batch runs in this process.
    pub scheduler: Option<String>,
    /// A batch whose container asks for more cores than this runs on the
    /// cluster (default: this machine's cores).
    pub local_max_cores: Option<usize>,
    /// A cluster batch that reads more bytes than this has its file exports
    /// written by an executor into the shared staging folder, rather than
    /// its result streamed to the engine (default: [`COLLECT_MAX_BYTES`]).
    pub collect_max_bytes: Option<u64>,
}

/// `[cluster] collect_max_bytes` unless set: 1 GiB read.
pub(crate) const COLLECT_MAX_BYTES: u64 = 1 << 30;

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
    /// `[cluster]`.
    #[serde(default)]
    pub cluster: ClusterConfig,
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// A key's setter: every key is declared once, here.
type Setter = fn(&mut Config, &str) -> std::result::Result<(), String>;

fn positive(v: &str) -> std::result::Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{v:?} is not a positive integer")),
    }
}

/// A whole number of `what` (0 allowed).
fn whole<T: std::str::FromStr>(v: &str, what: &str) -> std::result::Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{v:?} is not a whole number of {what}"))
}

/// `section.key` -> setter, for `PBATCH_*` variables and [`Config::set`].
const SETTERS: &[(&str, Setter)] = &[
    ("engine.data_dir", |c, v| {
        c.engine.data_dir = Some(PathBuf::from(v));
        Ok(())
    }),
    ("engine.regions", |c, v| {
        c.engine.regions = list(v);
        Ok(())
    }),
    ("engine.max_concurrent_batches", |c, v| {
        c.engine.max_concurrent_batches = positive(v)?;
        Ok(())
    }),
    ("engine.sink_batch_records", |c, v| {
        c.engine.sink_batch_records = positive(v)?;
        Ok(())
    }),
    ("engine.infer_sample_files", |c, v| {
        c.engine.infer_sample_files = positive(v)?;
        Ok(())
    }),
    ("engine.infer_sample_rows", |c, v| {
        c.engine.infer_sample_rows = positive(v)?;
        Ok(())
    }),
    ("engine.batch_retries", |c, v| {
        c.engine.batch_retries = whole(v, "retries")?;
        Ok(())
    }),
    ("engine.retry_delay", |c, v| {
        c.engine.retry_delay = whole(v, "seconds")?;
        Ok(())
    }),
    ("engine.timezone", |c, v| {
        c.engine.timezone = Some(v.to_string());
        Ok(())
    }),
    ("kodo.endpoint", |c, v| {
        c.kodo.endpoint = Some(v.to_string());
        Ok(())
    }),
    ("kodo.access_key", |c, v| {
        c.kodo.access_key = Some(v.to_string());
        Ok(())
    }),
    ("kodo.secret_key", |c, v| {
        c.kodo.secret_key = Some(v.to_string());
        Ok(())
    }),
    ("kodo.region", |c, v| {
        c.kodo.region = Some(v.to_string());
        Ok(())
    }),
    ("fusion.endpoint", |c, v| {
        c.fusion.endpoint = Some(v.to_string());
        Ok(())
    }),
    ("fusion.access_key", |c, v| {
        c.fusion.access_key = Some(v.to_string());
        Ok(())
    }),
    ("fusion.secret_key", |c, v| {
        c.fusion.secret_key = Some(v.to_string());
        Ok(())
    }),
    ("logdb.url", |c, v| {
        c.logdb.url = Some(v.to_string());
        Ok(())
    }),
    ("tsdb.url", |c, v| {
        c.tsdb.url = Some(v.to_string());
        Ok(())
    }),
    ("report.url", |c, v| {
        c.report.url = Some(v.to_string());
        Ok(())
    }),
    ("server.listen", |c, v| {
        c.server.listen = Some(v.to_string());
        Ok(())
    }),
    ("server.metrics_listen", |c, v| {
        c.server.metrics_listen = Some(v.to_string());
        Ok(())
    }),
    ("server.max_body_bytes", |c, v| {
        c.server.max_body_bytes = Some(positive(v)?);
        Ok(())
    }),
    ("cluster.scheduler", |c, v| {
        c.cluster.scheduler = Some(v.to_string());
        Ok(())
    }),
    ("cluster.local_max_cores", |c, v| {
        c.cluster.local_max_cores = Some(positive(v)?);
        Ok(())
    }),
    ("cluster.collect_max_bytes", |c, v| {
        c.cluster.collect_max_bytes = Some(whole(v, "bytes")?);
        Ok(())
    }),
    ("server.keys", |c, v| {
        c.server.keys = list(v).into_iter().map(ServerKey::Pair).collect();
        Ok(())
    }),
];

fn config_err(msg: String) -> Error {
    Error::new(ErrorCode::InvalidRequestBody, msg)
}

impl Config {
    /// Parses `pbatch.toml` text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| config_err(format!("{origin}: {}", e.to_string().trim())))
    }

    /// Sets one key by its `section.key` name (the parser shared by env and
    /// CLI); `kodo.buckets.<bucket>.<field>` sets a per-bucket override.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if let Some(rest) = key.strip_prefix("kodo.buckets.") {
            let Some((bucket, field)) = rest.rsplit_once('.').filter(|(b, _)| !b.is_empty()) else {
                return Err(config_err(format!(
                    "{key:?}: write kodo.buckets.<bucket>.<endpoint|access_key|secret_key|region|local>"
                )));
            };
            let b = self.kodo.buckets.entry(bucket.to_string()).or_default();
            let v = Some(value.to_string());
            match field {
                "endpoint" => b.endpoint = v,
                "access_key" => b.access_key = v,
                "secret_key" => b.secret_key = v,
                "region" => b.region = v,
                "local" => {
                    b.local = value
                        .trim()
                        .parse()
                        .map_err(|_| config_err(format!("{key}: {value:?} is not true or false")))?
                }
                _ => {
                    return Err(config_err(format!(
                        "{key:?}: unknown field {field:?}; use endpoint, access_key, secret_key, region or local"
                    )));
                }
            }
            return Ok(());
        }
        match SETTERS.iter().find(|(k, _)| *k == key) {
            Some((_, set)) => set(self, value).map_err(|e| config_err(format!("{key}: {e}"))),
            None => Err(config_err(format!(
                "unknown configuration key {key:?}; known keys: {}",
                Self::keys().join(", ")
            ))),
        }
    }

    /// Every settable key.
    pub fn keys() -> Vec<&'static str> {
        SETTERS.iter().map(|(k, _)| *k).collect()
    }

    /// Applies `PBATCH_<SECTION>_<KEY>` variables from `vars`.
    pub fn apply_env<I: IntoIterator<Item = (String, String)>>(&mut self, vars: I) -> Result<()> {
        for (k, v) in vars {
            let Some(rest) = k.strip_prefix("PBATCH_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            if let Some((key, set)) = SETTERS.iter().find(|(key, _)| key.replacen('.', "_", 1) == lower) {
                set(self, &v).map_err(|e| config_err(format!("{k} ({key}): {e}")))?;
            }
        }
        Ok(())
    }

    /// The zone of `engine.timezone` (the machine's when unset).
    pub fn zone(&self) -> Result<pbatch_magic::Zone> {
        match &self.engine.timezone {
            None => Ok(pbatch_magic::Zone::Local),
            Some(z) => z.parse().map_err(|e: Error| e.context("engine.timezone")),
        }
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
        let mut c = Config::from_toml("[engine]\ndata_dir = \"/tmp/x\"\n[tsdb]\nurl = \"http://a\"\n", "t").unwrap();
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
        assert_eq!(c.engine.max_concurrent_batches, 4);
        c.set("engine.max_concurrent_batches", "2").unwrap();
        assert_eq!(c.engine.max_concurrent_batches, 2);
        let e = c
            .apply_env([("PBATCH_ENGINE_MAX_CONCURRENT_BATCHES".to_string(), "0".to_string())])
            .unwrap_err();
        assert!(
            e.message().contains("PBATCH_ENGINE_MAX_CONCURRENT_BATCHES") && e.message().contains("\"0\""),
            "{e}"
        );
        c.apply_env([("PBATCH_ENGINE_TIMEZONE".to_string(), "Asia/Shanghai".to_string())])
            .unwrap();
        assert_eq!(c.zone().unwrap().to_string(), "Asia/Shanghai");
        c.set("engine.timezone", "Mars/Base").unwrap();
        let e = c.zone().unwrap_err();
        assert!(
            e.message().contains("engine.timezone") && e.message().contains("Mars/Base"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    #[test]
    fn per_bucket_overrides_parse_from_toml_and_keys() {
        let c = Config::from_toml(
            "[kodo]\nendpoint = \"http://a:9000\"\n[kodo.buckets.archive-bkt]\nendpoint = \"http://b:9000\"\n[kodo.buckets.scratch]\nlocal = true\n",
            "pbatch.toml",
        )
        .unwrap();
        assert_eq!(c.kodo.buckets["archive-bkt"].endpoint.as_deref(), Some("http://b:9000"));
        assert!(c.kodo.buckets["scratch"].local);
        let mut c = Config::default();
        c.set("kodo.buckets.my-bkt.region", "cn-east-1").unwrap();
        c.set("kodo.buckets.my-bkt.local", "false").unwrap();
        assert_eq!(c.kodo.buckets["my-bkt"].region.as_deref(), Some("cn-east-1"));
        assert!(
            c.set("kodo.buckets.my-bkt.colour", "red")
                .unwrap_err()
                .message()
                .contains("colour")
        );
        assert!(
            c.set("kodo.buckets.my-bkt.local", "yes")
                .unwrap_err()
                .message()
                .contains("\"yes\"")
        );
        assert!(c.set("kodo.buckets.endpoint", "x").is_err());
        assert!(Config::from_toml("[kodo.buckets.b]\ncolour = 1\n", "f").is_err());
    }

    /// `[server] keys` takes "AK:SK" strings and tables, with the secret
    /// inline or in a file; mistakes name the entry.
    #[test]
    fn server_keys_take_pairs_tables_and_secret_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let secret = dir.path().join("sk.txt");
        std::fs::write(&secret, "SK_FROM_FILE\n").expect("write");
        let text = format!(
            r#"[server]
keys = ["AK1:SK1", {{ access_key = "AK2", secret_key = "SK2" }}, {{ access_key = "AK3", secret_key_file = "{}" }}]
"#,
            secret.display()
        );
        let c = Config::from_toml(&text, "pbatch.toml").expect("parses");
        let resolved: Vec<(String, String)> = c
            .server
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| k.resolve(i).expect("resolves"))
            .collect();
        assert_eq!(
            resolved,
            [("AK1", "SK1"), ("AK2", "SK2"), ("AK3", "SK_FROM_FILE")].map(|(a, s)| (a.to_string(), s.to_string()))
        );
        let e = Config::from_toml(
            "[server]\nkeys = [{ access_key = \"A\", secrt_key = \"S\" }]",
            "pbatch.toml",
        )
        .expect_err("typo");
        assert!(
            e.message().contains("secrt_key") && e.message().contains("secret_key_file"),
            "{e}"
        );
        let both = ServerKey::Table {
            access_key: "A".into(),
            secret_key: Some("S".into()),
            secret_key_file: Some(secret.clone()),
        };
        assert!(both.resolve(4).expect_err("both").message().contains("server.keys[4]"));
        let missing = ServerKey::Table {
            access_key: "A".into(),
            secret_key: None,
            secret_key_file: Some(dir.path().join("nope")),
        };
        let e = missing.resolve(0).expect_err("no file");
        assert!(
            e.message().contains("secret_key_file") && e.message().contains("nope"),
            "{e}"
        );
    }
}
