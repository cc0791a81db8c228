//! A job's srcs as DataFusion tables: kodo and hdfs files, fusion logs, and
//! upstream jobs (their kept result, or their SQL as a view).

use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use pbatch_magic::Expander;
use pbatch_model::{DatasourceSpec, Error, ErrorCode, FusionSourceSpec, Result, SchemaEntry, SourceSpec, model_err};
use pbatch_source::{
    FileOptions, FusionClient, HdfsPath, RecordRules, Sample, Stores, arrow_schema, hdfs_store, infer_entries,
    list_keys, table_for, verify_schema,
};
use std::path::PathBuf;
use std::sync::Arc;

use crate::session::{plan_sql, strip_df};

/// A job src, resolved against the catalog by the engine: what `exec` needs
/// to register it, and nothing it would have to look up.
#[derive(Debug, Clone)]
pub enum ResolvedSrc {
    /// A kodo, hdfs or fusion datasource.
    Datasource {
        /// The SQL table name (`tableName`, lower-cased).
        table: String,
        /// The datasource's name (for messages).
        name: String,
        /// Its spec.
        spec: Box<DatasourceSpec>,
        /// The src's `fileFilter` (variables unexpanded).
        file_filter: String,
    },
    /// An upstream job's committed result of this batch time (parquet):
    /// the files its `_SUCCESS` manifest lists.
    KeptResult {
        /// The SQL table name.
        table: String,
        /// The upstream job.
        job: String,
        /// The result's files.
        files: Vec<PathBuf>,
    },
    /// An upstream job without a kept result: its SQL, computed in the same
    /// session over its own srcs.
    Upstream {
        /// The SQL table name.
        table: String,
        /// The upstream job.
        job: String,
        /// Its `computation.code` (variables unexpanded).
        code: String,
        /// Its srcs.
        srcs: Vec<ResolvedSrc>,
    },
}

/// The fusion log-list API (`[fusion]`).
#[derive(Debug, Clone, Default)]
pub struct FusionAccess {
    /// The API's base URL; `None`: read the local folder only.
    pub endpoint: Option<String>,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

/// Where srcs are read from: the same for every batch of an engine.
#[derive(Debug, Clone)]
pub struct SourceEnv {
    /// Kodo buckets.
    pub stores: Stores,
    /// The fusion log-list API.
    pub fusion: FusionAccess,
    /// `<data_dir>/fusion`: one folder per CDN domain.
    pub fusion_root: PathBuf,
    /// How much of a source schema inference reads.
    pub sample: Sample,
    /// The Ballista cluster big batches run on (`[cluster]`); None: every
    /// batch runs in this process.
    pub cluster: Option<ClusterEnv>,
}

/// `[cluster]`: where batches bigger than this machine run.
#[derive(Debug, Clone)]
pub struct ClusterEnv {
    /// The scheduler (`df://host:port`).
    pub scheduler: pbatch_cluster::SchedulerAddr,
    /// A batch whose container asks for more cores than this runs on the
    /// cluster.
    pub local_max_cores: usize,
    /// A cluster batch reading more bytes than this has its file exports
    /// written by an executor rather than streamed to the engine.
    pub collect_max_bytes: u64,
}

/// Where a kodo or hdfs datasource's files are.
pub(crate) struct SourceLocation {
    /// Rooted at the bucket or the NameNode.
    pub store: Arc<dyn object_store::ObjectStore>,
    /// What DataFusion knows the store by.
    pub url: url::Url,
    /// For messages.
    pub place: String,
    /// Expanded key prefixes (kodo `keyPrefixes`, hdfs `paths`).
    pub prefixes: Vec<String>,
    /// File layout.
    pub options: FileOptions,
}

impl SourceEnv {
    /// The store, prefixes and layout of a kodo or hdfs source, variables
    /// expanded with `expander`. `name` names the datasource in messages
    /// (empty for a request body). The paths of an hdfs source must share
    /// one NameNode.
    pub(crate) fn location(&self, name: &str, source: &SourceSpec, expander: &Expander) -> Result<SourceLocation> {
        // names a field: `datasource <name> spec.x`, or `spec.x` for a request body
        let at = |f: String| {
            if name.is_empty() {
                f
            } else {
                format!("datasource {name} {f}")
            }
        };
        match source {
            SourceSpec::Kodo(k) => {
                let mut prefixes = Vec::new();
                for (i, p) in k.key_prefixes.iter().enumerate() {
                    prefixes.push(expander.expand(p, &at(format!("spec.keyPrefixes[{i}]")))?);
                }
                Ok(SourceLocation {
                    store: self.stores.bucket(&k.bucket)?,
                    url: Stores::bucket_url(&k.bucket)?,
                    place: self.stores.describe(&k.bucket),
                    prefixes,
                    options: FileOptions::new(&k.file_type, k.delimiter.as_deref(), k.contains_header)?,
                })
            }
            SourceSpec::Hdfs(h) => {
                let mut first: Option<HdfsPath> = None;
                let mut prefixes = Vec::new();
                for (i, p) in h.paths.iter().enumerate() {
                    let field = at(format!("spec.paths[{i}]"));
                    let path = HdfsPath::parse(&field, &expander.expand(p, &field)?)?;
                    if let Some(f) = &first
                        && f.namenode != path.namenode
                    {
                        return model_err!(
                            InvalidRepoSpec,
                            "{field} is on NameNode {} but spec.paths[0] on {}: one datasource reads one cluster",
                            path.label(),
                            f.label()
                        );
                    }
                    prefixes.push(path.path.clone());
                    first.get_or_insert(path);
                }
                let Some(nn) = first else {
                    return model_err!(InvalidRepoSpec, "{} is empty", at("spec.paths".into()));
                };
                Ok(SourceLocation {
                    store: hdfs_store(&nn.namenode)?,
                    url: nn.namenode.clone(),
                    place: nn.place(),
                    prefixes,
                    options: FileOptions::new(&h.file_type, h.delimiter.as_deref(), h.contains_header)?,
                })
            }
            SourceSpec::Fusion(_) => {
                model_err!(Internal, "{}: fusion sources have no file location", at("type".into()))
            }
        }
    }
}

impl SourceEnv {
    /// `POST /v2/schemas`: samples the files a kodo or hdfs source lists
    /// (its prefixes expanded with `expander`) and maps their inferred
    /// schema to valtypes.
    pub async fn infer(&self, source: &SourceSpec, expander: &Expander) -> crate::Result<Vec<SchemaEntry>> {
        let loc = self.location("", source, expander)?;
        let files = list_keys(loc.store.as_ref(), &loc.place, &loc.prefixes, "").await?;
        let ctx = SessionContext::new();
        ctx.register_object_store(&loc.url, Arc::clone(&loc.store));
        Ok(infer_entries(&ctx.state(), &loc.store, &loc.place, &files, &loc.options, self.sample).await?)
    }
}

/// What the registered srcs will read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    /// Files listed.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Each file (its URL, `fusion://<key>` for fusion logs) and its size:
    /// the lineage `_SUCCESS` manifests record.
    pub inputs: Vec<(String, u64)>,
    /// Per datasource table, in the order registered.
    pub tables: Vec<TableRead>,
}

/// What one datasource table of a batch reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableRead {
    /// The SQL's table name.
    pub table: String,
    /// The datasource.
    pub datasource: String,
    /// Files listed.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The first few files' URLs.
    pub first: Vec<String>,
}

/// Files [`TableRead::first`] names.
const FIRST_FILES: usize = 5;

fn registering(table: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("registering {table}: {e}"))
}

/// A table of the parquet files a kept result's manifest lists.
async fn kept_result(ctx: &SessionContext, files: &[PathBuf]) -> datafusion::error::Result<Arc<dyn TableProvider>> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
    let urls = files
        .iter()
        .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await?;
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// Registers `srcs` in `ctx`; upstream jobs become views of their SQL.
pub(crate) fn register<'a>(
    env: &'a SourceEnv,
    ctx: &'a SessionContext,
    srcs: &'a [ResolvedSrc],
    expander: &'a Expander,
    read: &'a mut ReadPlan,
) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        for src in srcs {
            match src {
                ResolvedSrc::KeptResult { table, job, files } => {
                    let kept = kept_result(ctx, files).await.map_err(|e| {
                        Error::new(
                            ErrorCode::FileFormatMismatch,
                            format!("kept result of job {job}: {}", strip_df(&e.to_string())),
                        )
                    })?;
                    ctx.register_table(table.as_str(), kept)
                        .map_err(|e| registering(table, e))?;
                    tracing::debug!(job, files = files.len(), "reading the upstream's kept result");
                }
                ResolvedSrc::Upstream { table, job, code, srcs } => {
                    register(env, ctx, srcs, expander, read).await?;
                    let sql = expander.expand(code, &format!("job {job} computation.code"))?;
                    let df = plan_sql(ctx, &sql)
                        .await
                        .map_err(|e| Error::from(e).context(format!("upstream job {job}")))?;
                    ctx.register_table(table.as_str(), df.into_view())
                        .map_err(|e| registering(table, e))?;
                }
                ResolvedSrc::Datasource {
                    table,
                    name,
                    spec,
                    file_filter,
                } => {
                    let before = read.inputs.len();
                    let provider = match &spec.source {
                        SourceSpec::Fusion(fu) => {
                            let filter = if file_filter.trim().is_empty() {
                                &fu.file_filter
                            } else {
                                file_filter
                            };
                            fusion_table(env, name, fu, filter, expander, spec.omit_invalid, read).await?
                        }
                        _ => file_table(env, ctx, name, spec, file_filter, expander, read).await?,
                    };
                    let listed = &read.inputs[before.min(read.inputs.len())..];
                    let entry = TableRead {
                        table: table.clone(),
                        datasource: name.clone(),
                        files: listed.len(),
                        bytes: listed.iter().map(|(_, b)| b).sum(),
                        first: listed.iter().take(FIRST_FILES).map(|(u, _)| u.clone()).collect(),
                    };
                    read.tables.push(entry);
                    ctx.register_table(table.as_str(), provider)
                        .map_err(|e| registering(table, e))?;
                }
            }
        }
        Ok(())
    })
}

/// A kodo or hdfs datasource's files as a table: listed, schema inferred or
/// verified, bad-record rules applied.
async fn file_table(
    env: &SourceEnv,
    ctx: &SessionContext,
    name: &str,
    ds: &DatasourceSpec,
    file_filter: &str,
    expander: &Expander,
    read: &mut ReadPlan,
) -> Result<Arc<dyn TableProvider>> {
    let in_ds = |e: pbatch_source::Error| Error::from(e.context(format!("datasource {name}")));
    let filter = expander.expand(file_filter, &format!("src {name} fileFilter"))?;
    let loc = env.location(name, &ds.source, expander)?;
    ctx.register_object_store(&loc.url, Arc::clone(&loc.store));
    let files = list_keys(loc.store.as_ref(), &loc.place, &loc.prefixes, &filter)
        .await
        .map_err(in_ds)?;
    read.files += files.len();
    read.bytes += files.iter().map(|f| f.size).sum::<u64>();
    read.inputs
        .extend(files.iter().map(|f| (format!("{}{}", loc.url, f.key), f.size)));
    let (store, opts) = (&loc.store, &loc.options);
    let schema = if ds.schema.is_empty() {
        let entries = infer_entries(&ctx.state(), store, &loc.place, &files, opts, env.sample)
            .await
            .map_err(in_ds)?;
        arrow_schema(&entries)
    } else {
        if !ds.no_verify_schema {
            verify_schema(&ctx.state(), store, &loc.place, &files, opts, &ds.schema, env.sample)
                .await
                .map_err(in_ds)?;
        }
        arrow_schema(&ds.schema)
    };
    let rules = RecordRules {
        required: ds.schema.iter().filter(|f| f.required).map(|f| f.key.clone()).collect(),
        omit_invalid: ds.omit_invalid,
    };
    let state = ctx.state();
    let parquet = &state.table_options().parquet;
    table_for(store, &loc.url, &loc.place, &files, opts, schema, &rules, parquet).map_err(in_ds)
}

/// A fusion datasource's table: the log files of its domain for the hours
/// of `filter` (empty: the 24 hours before the batch time), downloaded
/// first when `[fusion] endpoint` is set.
async fn fusion_table(
    env: &SourceEnv,
    name: &str,
    fu: &FusionSourceSpec,
    filter: &str,
    expander: &Expander,
    omit_invalid: bool,
    read: &mut ReadPlan,
) -> Result<Arc<dyn TableProvider>> {
    use chrono::Timelike;
    let in_ds = |e: Error| e.context(format!("datasource {name}"));
    let Some(domain) = fu.domains.first() else {
        return model_err!(InvalidRepoSpec, "datasource {name}: spec.domains is empty");
    };
    let (start, end) = if filter.trim().is_empty() {
        let t = expander.batch_time();
        let hour = t
            .with_minute(0)
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(t);
        (hour - chrono::Duration::hours(24), hour)
    } else {
        expander.hour_range(filter).map_err(in_ds)?
    };
    let client = match env.fusion.endpoint.as_deref().filter(|e| !e.is_empty()) {
        Some(endpoint) => Some(FusionClient::new(
            endpoint,
            &env.fusion.access_key,
            &env.fusion.secret_key,
        )?),
        None => None,
    };
    let table = pbatch_source::fusion_table(&env.fusion_root, client.as_ref(), domain, start, end, omit_invalid)
        .await
        .map_err(|e| Error::from(e.context(format!("datasource {name}"))))?;
    read.files += table.file_count();
    read.bytes += table.file_bytes();
    read.inputs
        .extend(table.files().map(|(key, size)| (format!("fusion://{key}"), size)));
    Ok(Arc::new(table))
}
