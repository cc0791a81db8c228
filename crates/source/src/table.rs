//! Listed files -> a DataFusion table.

use crate::error::{Error, Result};
use crate::infer::{Sample, sample_files};
use crate::rows::RowFormat;
use crate::scan::RowTable;
use crate::valtype_of;
use crate::{SourceFile, read_error};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::config::TableParquetOptions;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::context::SessionState;
use object_store::ObjectStore;
use pbatch_model::{ErrorCode, FileType, SchemaEntry, ValType};
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
        let delimiter =
            pbatch_model::parse_delimiter("spec.delimiter", delimiter)?.unwrap_or(pbatch_model::CSV_DEFAULT_DELIMITER);
        Ok(Self {
            file_type: file_type.clone(),
            delimiter,
            has_header: header.unwrap_or(false),
        })
    }
}

/// The one column of a text datasource.
pub fn text_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]))
}

fn row_format(opts: &FileOptions) -> Option<RowFormat> {
    match opts.file_type {
        FileType::Json => Some(RowFormat::Json),
        FileType::Csv => Some(RowFormat::Csv {
            delimiter: opts.delimiter,
            header: opts.has_header,
        }),
        FileType::Text => Some(RowFormat::Text),
        _ => None,
    }
}

/// Infers the schema of `files` from a sample, as the seed's schema
/// entries (text: one `text` column; parquet: its own types, mapped to
/// valtypes). [`arrow_schema`](crate::arrow_schema) turns them into Arrow's.
pub async fn infer_entries(
    state: &SessionState,
    store: &Arc<dyn ObjectStore>,
    place: &str,
    files: &[SourceFile],
    opts: &FileOptions,
    sample: Sample,
) -> Result<Vec<SchemaEntry>> {
    match row_format(opts) {
        Some(RowFormat::Text) => Ok(vec![SchemaEntry::new("text", ValType::String)]),
        Some(format) => {
            let picked: Vec<SourceFile> = files.iter().take(sample.files.max(1)).cloned().collect();
            let acc = sample_files(Arc::clone(store), place.to_string(), picked, format, sample).await?;
            Ok(acc.entries())
        }
        None => {
            let metas: Vec<_> = files.iter().take(sample.files.max(1)).map(|f| f.meta.clone()).collect();
            let schema = ParquetFormat::default()
                .infer_schema(state, store, &metas)
                .await
                .map_err(|e| read_error(&format!("{place} files to infer their schema"), e))?;
            Ok(schema
                .fields()
                .iter()
                .map(|f| SchemaEntry::new(f.name(), valtype_of(f.data_type())))
                .collect())
        }
    }
}

/// Whether data of valtype `found` reads into a field declared `declared`.
fn agrees(declared: &ValType, found: &ValType) -> bool {
    declared == found || *declared == ValType::String || (*declared == ValType::Float && *found == ValType::Long)
}

/// `noVerifySchema=false`: the declared fields must agree with what a sample
/// of the data holds (a long field of float data, a date field of strings
/// that are not RFC 3339, ...): `E18110` naming the field and both types.
/// Fields the sample lacks, or holds only nulls in, agree. csv fields are
/// compared by position (as they are read), json fields by name.
pub async fn verify_schema(
    state: &SessionState,
    store: &Arc<dyn ObjectStore>,
    place: &str,
    files: &[SourceFile],
    opts: &FileOptions,
    declared: &[SchemaEntry],
    sample: Sample,
) -> Result<()> {
    if files.is_empty() || opts.file_type == FileType::Text {
        return Ok(());
    }
    let found = infer_entries(state, store, place, files, opts, sample).await?;
    for (i, d) in declared.iter().enumerate() {
        // csv fields are read by position, json fields by name
        let f = if opts.file_type == FileType::Csv {
            found.get(i)
        } else {
            found.iter().find(|f| f.key == d.key)
        };
        if let Some(f) = f
            && !agrees(&d.valtype, &f.valtype)
        {
            return Err(Error::new(
                ErrorCode::InvalidFieldFormat,
                format!(
                    "schema field {:?} is declared {} but the data in {place} holds {} values \
                     (fix the field's valtype, or set noVerifySchema to true to read it as declared)",
                    d.key,
                    d.valtype.as_str(),
                    f.valtype.as_str()
                ),
            ));
        }
    }
    Ok(())
}

/// What decides which records of a source are valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordRules {
    /// Fields a record must carry (the schema's `required` entries).
    pub required: Vec<String>,
    /// Skip and count invalid records instead of failing the batch.
    pub omit_invalid: bool,
}

/// A table over `files` of `store` (registered as `bucket_url`) with
/// `schema`: parquet through DataFusion's listing table, the row formats
/// through [`RowTable`], which also counts what `rules` skipped. `parquet`
/// is how parquet files are read (the session's table options: filter
/// pushdown, page index, view types).
#[allow(clippy::too_many_arguments)]
pub fn table_for(
    store: &Arc<dyn ObjectStore>,
    bucket_url: &Url,
    place: &str,
    files: &[SourceFile],
    opts: &FileOptions,
    schema: SchemaRef,
    rules: &RecordRules,
    parquet: &TableParquetOptions,
) -> Result<Arc<dyn TableProvider>> {
    let Some(format) = row_format(opts) else {
        return parquet_table(bucket_url, files, schema, parquet);
    };
    let schema = if opts.file_type == FileType::Text {
        text_schema()
    } else {
        schema
    };
    Ok(Arc::new(RowTable::new(
        Arc::clone(store),
        bucket_url.clone(),
        place,
        files.to_vec(),
        format,
        schema,
        &rules.required,
        rules.omit_invalid,
    )?))
}

fn parquet_table(
    bucket_url: &Url,
    files: &[SourceFile],
    schema: SchemaRef,
    parquet: &TableParquetOptions,
) -> Result<Arc<dyn TableProvider>> {
    let mut urls = Vec::with_capacity(files.len());
    for f in files {
        // each segment percent-encoded: keys may hold '#', '?', '%' or spaces
        let mut u = bucket_url.clone();
        u.path_segments_mut()
            .map_err(|_| Error::internal(format!("bucket url {bucket_url} has no path")))?
            .pop_if_empty()
            .extend(f.key.split('/'));
        urls.push(ListingTableUrl::parse(u.as_str()).map_err(|e| read_error(&f.key, e))?);
    }
    // the format's own options are what its scans use, not the session's
    let format = ParquetFormat::default().with_options(parquet.clone());
    let options = ListingOptions::new(Arc::new(format)).with_file_extension("");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(|e| read_error(bucket_url.as_str(), e))?;
    Ok(Arc::new(table))
}
