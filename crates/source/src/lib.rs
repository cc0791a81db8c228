/*!
Data sources of pbatch: where a datasource's files are, which of them a
batch reads, and how DataFusion scans them.

- [`Stores`] maps a kodo bucket to an `object_store` (the embedded default:
  `<data_dir>/buckets/<bucket>/` on the local disk) and registers it with a
  DataFusion session under `kodo://<bucket>/`.
- [`list_keys`] lists the objects under a datasource's `keyPrefixes` plus a
  job src's expanded `fileFilter`.
- [`table_for`] turns the listed files into a DataFusion `TableProvider`
  for the datasource's `fileType`: json, csv and text through pbatch's own
  row reader ([`RowTable`]: every codec the exporter writes, bad records
  named by file and line, skipped with `omitInvalid`), parquet through
  DataFusion's scan.
- [`infer_entries`] samples files for a schema; [`fusion_table`] reads CDN
  access logs (synced first from the log-list API when configured).
- [`arrow_schema`] is the one valtype x Arrow type table;
  [`register_functions`] puts pbatch's SQL functions over DataFusion's.
- Errors are [`Error`]: a seed rule with its code, or the object store's,
  file system's, HTTP client's or DataFusion's error kept whole as the cause.

Sits above `pbatch-model` only (beside `pbatch-magic`); `pbatch-exec`
registers what this crate builds.
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

mod decompress;
mod distributed;
mod error;
mod flat;
mod functions;
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
pub use distributed::RowFileSource;
pub use error::{Error, Result};
pub use functions::{UtcDateTrunc, register_functions, session_functions};
pub use fusion::{
    FUSION_FIELDS, FUSION_URL, FusionClient, LogFile, LogLine, cdn_zone, check_domain, fusion_entries, fusion_schema,
    fusion_table, log_file_hour, parse_line, qbox_authorization, sync_logs,
};
pub use hdfs::{HdfsPath, hdfs_store};
pub use infer::Sample;
pub use list::{SourceFile, list_keys};
pub use rows::{ReadStats, RowFormat, RowSpec, read_rows};
pub use scan::{
    FilePart, RowScanExec, RowScanParts, RowTable, RowTableParts, SCAN_BYTES_READ, SCAN_EXECUTOR, SCAN_INVALID_RECORDS,
    bytes_read, skipped_records,
};
pub use schema::{ArrowTypeFn, DATE_TZ, VALTYPE_ARROW, arrow_schema, valtype_of};
pub use store::{S3Endpoint, Stores};
pub use table::{FileOptions, RecordRules, infer_entries, table_for, text_schema, verify_schema};

use pbatch_model::{Caused, ErrorCode};

/// Wraps a DataFusion error met while reading `what` (data that does not decode).
pub fn read_error(what: &str, e: datafusion::error::DataFusionError) -> Error {
    let message = format!("reading {what}: {e}");
    Error::DataFusion(Caused::new(ErrorCode::FileFormatMismatch, message, e))
}

/// Wraps an object store error met at `what`: a missing bucket is `E18619`;
/// refused credentials and an unreachable endpoint say which to check.
pub fn store_error(what: &str, e: object_store::Error) -> Error {
    let text = e.to_string();
    if matches!(e, object_store::Error::NotFound { .. }) || text.contains("NoSuchBucket") {
        let message = format!("{what}: the bucket does not exist");
        return Error::Store(Caused::new(ErrorCode::BucketNotFound, message, e));
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
    let message = format!("{what}: {}{hint}", text.trim());
    Error::Store(Caused::new(ErrorCode::StatFileFailed, message, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A missing bucket is E18619 and keeps object_store's error as its cause.
    #[test]
    fn store_errors_keep_their_cause() {
        let e = store_error(
            "listing bucket \"b\"",
            object_store::Error::NotFound {
                path: "b".into(),
                source: "no such bucket".into(),
            },
        );
        assert_eq!(e.code(), ErrorCode::BucketNotFound);
        assert_eq!(e.message(), "listing bucket \"b\": the bucket does not exist");
        let model: pbatch_model::Error = e.context("datasource ds").into();
        assert_eq!(
            model.message(),
            "datasource ds: listing bucket \"b\": the bucket does not exist"
        );
        assert!(
            model
                .source()
                .and_then(|c| c.downcast_ref::<object_store::Error>())
                .is_some()
        );
    }
}
