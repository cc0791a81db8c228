/*!
Data sources of pbatch: where a datasource's files are, which of them a
batch reads, and how DataFusion scans them.

- [`Stores`] maps a kodo bucket to an `object_store` (the embedded default:
  `<data_dir>/buckets/<bucket>/` on the local disk) and registers it with a
  DataFusion session under `kodo://<bucket>/`.
- [`list_keys`] lists the objects under a datasource's `keyPrefixes` plus a
  job src's expanded `fileFilter`.
- [`table_for`] turns the listed files into a DataFusion `TableProvider`
  for the datasource's `fileType` (json, csv, text, parquet), grouping files
  by compression (`.gz`, `.bz2`, `.xz`, `.zst`, or none).
- [`arrow_schema`] is the one valtype x Arrow type table.

Sits above `pbatch-model` only (beside `pbatch-magic`); `pbatch-exec` registers what
this crate builds.
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

mod decompress;
mod fusion;
mod hdfs;
mod infer;
mod list;
mod rows;
mod scan;
mod schema;
mod store;
mod table;

pub use decompress::Codec;
pub use fusion::{
    FUSION_FIELDS, FusionClient, LogFile, LogLine, cdn_zone, check_domain, fusion_entries, fusion_schema, fusion_table,
    log_file_hour, parse_line, qbox_authorization, sync_logs,
};
pub use hdfs::{HdfsPath, hdfs_store};
pub use infer::Sample;
pub use list::{SourceFile, list_keys};
pub use rows::{ReadStats, RowFormat, RowSpec, read_rows};
pub use scan::{RowScanExec, RowTable, skipped_records};
pub use schema::{ArrowTypeFn, DATE_TZ, VALTYPE_ARROW, arrow_schema, valtype_of};
pub use store::{S3Endpoint, Stores};
pub use table::{FileOptions, RecordRules, infer_entries, table_for, text_schema, verify_schema};

use pbatch_model::{Error, ErrorCode};

/// Wraps a DataFusion error met while reading `what` (data that does not decode).
pub fn read_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::FileFormatMismatch, format!("reading {what}: {e}"))
}

/// Wraps an object store error met at `what`: a missing bucket is `E18619`;
/// refused credentials and an unreachable endpoint say which to check.
pub fn store_error(what: &str, e: object_store::Error) -> Error {
    let text = e.to_string();
    if matches!(e, object_store::Error::NotFound { .. }) || text.contains("NoSuchBucket") {
        return Error::with_source(
            ErrorCode::BucketNotFound,
            format!("{what}: the bucket does not exist"),
            e,
        );
    }
    let hint = if [
        "AccessDenied",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "403 Forbidden",
    ]
    .iter()
    .any(|k| text.contains(k))
    {
        " (the endpoint refused the credentials: check kodo.access_key and kodo.secret_key)"
    } else if what.contains("hdfs NameNode") {
        " (check the hdfs:// NameNode address and that it is up)"
    } else if text.contains("error sending request") || text.contains("Connection refused") || text.contains("connect")
    {
        " (the endpoint cannot be reached: check kodo.endpoint)"
    } else {
        ""
    };
    Error::with_source(ErrorCode::StatFileFailed, format!("{what}: {}{hint}", text.trim()), e)
}
