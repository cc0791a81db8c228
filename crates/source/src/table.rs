//! Listed files -> a DataFusion table.

use crate::{SourceFile, read_error};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::provider_as_source;
use datafusion::datasource::view::ViewTable;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlanBuilder;
use object_store::ObjectStore;
use pbatch_model::{Error, ErrorCode, FileType, Result};
use std::collections::BTreeMap;
use std::sync::Arc;
use url::Url;

/// How a datasource's files are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOptions {
    /// json, csv, text or parquet.
    pub file_type: FileType,
    /// csv delimiter (one byte).
    pub delimiter: u8,
    /// csv header line.
    pub has_header: bool,
}

impl FileOptions {
    /// From a datasource spec's fields; validates the delimiter is one byte.
    pub fn new(file_type: &FileType, delimiter: Option<&str>, header: Option<bool>) -> Result<Self> {
        let delimiter = match delimiter {
            None | Some("") => b',',
            Some("\\t") => b'\t',
            Some(d) if d.len() == 1 => d.as_bytes()[0],
            Some(d) => {
                return Err(Error::new(
                    ErrorCode::InvalidRepoSpec,
                    format!("spec.delimiter {d:?} must be a single ASCII character"),
                ));
            }
        };
        Ok(Self {
            file_type: file_type.clone(),
            delimiter,
            has_header: header.unwrap_or(false),
        })
    }
}

/// The compression a file's name says it has.
fn compression_of(key: &str) -> FileCompressionType {
    let k = key.to_ascii_lowercase();
    if k.ends_with(".gz") || k.ends_with(".gzip") {
        FileCompressionType::GZIP
    } else if k.ends_with(".bz2") {
        FileCompressionType::BZIP2
    } else if k.ends_with(".xz") {
        FileCompressionType::XZ
    } else if k.ends_with(".zst") || k.ends_with(".zstd") {
        FileCompressionType::ZSTD
    } else {
        FileCompressionType::UNCOMPRESSED
    }
}

/// The one column of a text datasource.
pub fn text_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]))
}

fn format_for(opts: &FileOptions, compression: FileCompressionType) -> Arc<dyn FileFormat> {
    match opts.file_type {
        FileType::Json => Arc::new(JsonFormat::default().with_file_compression_type(compression)),
        FileType::Csv => Arc::new(
            CsvFormat::default()
                .with_delimiter(opts.delimiter)
                .with_has_header(opts.has_header)
                .with_file_compression_type(compression),
        ),
        // A text line is one field: split on a byte that text does not hold
        // (unit separator) and never treat quotes specially.
        FileType::Text => Arc::new(
            CsvFormat::default()
                .with_delimiter(0x1f)
                .with_quote(0x1e)
                .with_escape(None)
                .with_has_header(false)
                .with_file_compression_type(compression),
        ),
        _ => Arc::new(ParquetFormat::default()),
    }
}

fn groups(files: &[SourceFile], opts: &FileOptions) -> BTreeMap<String, (FileCompressionType, Vec<SourceFile>)> {
    let mut out: BTreeMap<String, (FileCompressionType, Vec<SourceFile>)> = BTreeMap::new();
    for f in files {
        let c = if opts.file_type == FileType::Parquet {
            FileCompressionType::UNCOMPRESSED
        } else {
            compression_of(&f.key)
        };
        out.entry(format!("{c:?}"))
            .or_insert_with(|| (c, Vec::new()))
            .1
            .push(f.clone());
    }
    out
}

/// Infers the schema of the first `sample` files (text: one `text` column).
pub async fn infer_schema(
    state: &SessionState,
    store: &Arc<dyn ObjectStore>,
    files: &[SourceFile],
    opts: &FileOptions,
    sample: usize,
) -> Result<SchemaRef> {
    if opts.file_type == FileType::Text {
        return Ok(text_schema());
    }
    let mut fields: Vec<Field> = Vec::new();
    for (_, (c, group)) in groups(files, opts) {
        let metas: Vec<_> = group.iter().take(sample.max(1)).map(|f| f.meta.clone()).collect();
        let schema = format_for(opts, c)
            .infer_schema(state, store, &metas)
            .await
            .map_err(|e| read_error("files to infer their schema", e))?;
        for f in schema.fields() {
            if !fields.iter().any(|g| g.name() == f.name()) {
                fields.push(f.as_ref().clone());
            }
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// A table over `files` of bucket `bucket_url` with `schema`.
pub fn table_for(
    bucket_url: &Url,
    files: &[SourceFile],
    opts: &FileOptions,
    schema: SchemaRef,
) -> Result<Arc<dyn TableProvider>> {
    let schema = if opts.file_type == FileType::Text {
        text_schema()
    } else {
        schema
    };
    let mut tables: Vec<Arc<dyn TableProvider>> = Vec::new();
    for (_, (c, group)) in groups(files, opts) {
        let mut urls = Vec::with_capacity(group.len());
        for f in &group {
            // each segment percent-encoded: keys may hold '#', '?', '%' or spaces
            let mut u = bucket_url.clone();
            u.path_segments_mut()
                .map_err(|_| Error::internal(format!("bucket url {bucket_url} has no path")))?
                .pop_if_empty()
                .extend(f.key.split('/'));
            urls.push(ListingTableUrl::parse(u.as_str()).map_err(|e| read_error(&f.key, e))?);
        }
        let options = ListingOptions::new(format_for(opts, c)).with_file_extension("");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(Arc::clone(&schema));
        let table = ListingTable::try_new(config).map_err(|e| read_error(bucket_url.as_str(), e))?;
        tables.push(Arc::new(table));
    }
    if tables.len() == 1
        && let Some(t) = tables.pop()
    {
        return Ok(t);
    }
    // Files with different compressions: one listing table each, unioned.
    let mut builder: Option<LogicalPlanBuilder> = None;
    for (i, t) in tables.into_iter().enumerate() {
        let scan = LogicalPlanBuilder::scan(format!("part{i}"), provider_as_source(t), None)
            .map_err(|e| Error::internal(format!("planning union scan: {e}")))?;
        builder = Some(match builder {
            None => scan,
            Some(b) => b
                .union(scan.build().map_err(|e| Error::internal(e.to_string()))?)
                .map_err(|e| Error::internal(format!("planning union: {e}")))?,
        });
    }
    let plan = builder
        .ok_or_else(|| Error::internal("no file groups"))?
        .build()
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
