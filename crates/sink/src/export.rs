//! From an `ExportSpec` to where and how it writes: each naming rule
//! (manual jobs, the timestamp folder, extensions) decided once, here.

use crate::naming::{Naming, TIMESTAMP_SUFFIX_FORMAT, retention_pattern};
use crate::report::ReportTarget;
use crate::retention::{Retention, static_prefix};
use crate::service::{ServiceExport, ServiceKind, mapped_column};
use crate::writer::FormatOptions;
use crate::{FileExport, Target};
use chrono::{DateTime, FixedOffset};
use pbatch_magic::{Expander, format_java};
use pbatch_model::{
    Compression, ExportFormat, ExportSpec, HttpFormat, Result, SaveMode, TEXT_DEFAULT_DELIMITER, model_err, names,
    parse_delimiter,
};
use std::path::{Path, PathBuf};

/// Days a kept result stays (a downstream rerun of an older batch computes
/// the upstream's SQL again).
pub const RESULT_RETENTION_DAYS: i64 = 7;

/// The kept result's name among a batch's exports; never reported.
pub(crate) const RESULT_EXPORT: &str = ".result";

/// Where file exports' buckets and NameNodes are. The engine implements it
/// from its configured stores, so `sink` needs no store configuration.
pub trait Targets: Send + Sync {
    /// The target of a kodo bucket: a local folder (the embedded default)
    /// or an object store.
    fn bucket(&self, bucket: &str) -> Result<Target>;
    /// The target of an hdfs export's NameNode, `hdfs://<authority>/`;
    /// `field` names the spec field in messages.
    fn namenode(&self, field: &str, url: &str) -> Result<Target>;
}

/// The URLs of the services the http-less service exports write to
/// (`[tsdb]`, `[logdb]`, `[report]`), and how many records go per request.
#[derive(Debug, Clone)]
pub struct ServiceUrls {
    /// InfluxDB 1.x.
    pub tsdb: Option<String>,
    /// OpenSearch / Elasticsearch.
    pub logdb: Option<String>,
    /// `postgres://` or `mysql://`.
    pub report: Option<String>,
    /// Records per request.
    pub batch_records: usize,
}

impl Default for ServiceUrls {
    /// No service configured; [`DEFAULT_BATCH_RECORDS`](crate::DEFAULT_BATCH_RECORDS) per request.
    fn default() -> Self {
        Self {
            tsdb: None,
            logdb: None,
            report: None,
            batch_records: crate::DEFAULT_BATCH_RECORDS,
        }
    }
}

impl ServiceUrls {
    /// A tsdb, logdb or report export needs its service's URL: `E18339`
    /// names the key to set. Checked when the export is created and again
    /// when a batch opens it.
    pub fn check(&self, spec: &ExportSpec) -> Result<()> {
        let (section, url) = match spec {
            ExportSpec::Tsdb(_) => ("tsdb", &self.tsdb),
            ExportSpec::Logdb(_) => ("logdb", &self.logdb),
            ExportSpec::Report(_) => ("report", &self.report),
            _ => return Ok(()),
        };
        if url.as_deref().is_none_or(|u| u.trim().is_empty()) {
            return model_err!(
                ExportTypeDisabled,
                "{section} exports need the {section} service: set [{section}] url in pbatch.toml (or PBATCH_{}_URL)",
                section.to_ascii_uppercase()
            );
        }
        Ok(())
    }

    fn url(u: &Option<String>) -> String {
        u.clone().unwrap_or_default()
    }
}

/// Resolves a tsdb / logdb / report / http export.
pub(crate) fn service_export(
    job: &str,
    name: &str,
    export: &ExportSpec,
    expander: &Expander,
    urls: &ServiceUrls,
) -> Result<ServiceExport> {
    let batch_key = format!("{job}/{}/{name}", expander.batch_time().to_rfc3339());
    urls.check(export)?;
    let kind = match export {
        ExportSpec::Http(h) => {
            let host = h.host.trim().trim_end_matches('/');
            let base = if host.contains("://") {
                host.to_string()
            } else {
                format!("http://{host}")
            };
            ServiceKind::Http {
                url: format!("{base}{}", h.uri),
                format: h.format.clone().unwrap_or(HttpFormat::Text),
            }
        }
        ExportSpec::Tsdb(t) => {
            let col = |field: String, v: &str| mapped_column(name, &field, v).map(str::to_string);
            ServiceKind::Tsdb {
                base: ServiceUrls::url(&urls.tsdb),
                db: t.dest_repo_name.clone(),
                series: t.series.clone(),
                tags: t
                    .tags
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), col(format!("tags.{k}"), v)?)))
                    .collect::<Result<_>>()?,
                fields: t
                    .fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), col(format!("fields.{k}"), v)?)))
                    .collect::<Result<_>>()?,
                timestamp: t.timestamp.as_deref().map(|v| col("timestamp".into(), v)).transpose()?,
                batch_time_ns: expander.batch_time().timestamp_nanos_opt().unwrap_or(0),
                omit_invalid: t.omit_invalid,
            }
        }
        ExportSpec::Logdb(l) => ServiceKind::Logdb {
            base: ServiceUrls::url(&urls.logdb),
            index: l.dest_repo_name.clone(),
            doc: l.doc.clone(),
            omit_invalid: l.omit_invalid,
        },
        ExportSpec::Report(r) => ServiceKind::Report(ReportTarget {
            url: ServiceUrls::url(&urls.report),
            db: r.db_name.clone(),
            table: r.table_name.clone(),
            columns: r
                .columns
                .iter()
                .map(|(k, v)| Ok((k.clone(), mapped_column(name, &format!("columns.{k}"), v)?.to_string())))
                .collect::<Result<_>>()?,
            overwrite: r.save_mode == Some(SaveMode::Overwrite),
            batch: batch_key.clone(),
        }),
        ExportSpec::Kodo(_) | ExportSpec::Hdfs(_) => {
            return model_err!(Internal, "export {name}: {} exports write files", export.kind());
        }
    };
    Ok(ServiceExport {
        name: name.to_string(),
        batch_key,
        kind,
        batch_records: urls.batch_records.max(1),
    })
}

/// The batch-time folder name (`yyyy-MM-dd-HH-mm-ss`): the suffix of a
/// variable-free `keyPrefix`, a manual job's default file name, and a kept
/// result's folder.
pub(crate) fn batch_time_name(batch_time: &DateTime<FixedOffset>) -> String {
    format_java(batch_time, TIMESTAMP_SUFFIX_FORMAT)
}

/// Where a job's kept result of one batch lies, under the engine's results
/// folder: `<results>/<job>/<batch time>/`. Downstream batches read it.
pub fn result_dir(results: &Path, job: &str, batch_time: &DateTime<FixedOffset>) -> PathBuf {
    results.join(job).join(batch_time_name(batch_time))
}

/// The kept result of a job with downstream jobs: snappy parquet in
/// `<results>/<job>/<batch time>/`, replaced by a rerun, kept
/// [`RESULT_RETENTION_DAYS`].
pub(crate) fn result_export(results: &Path, job: &str, batch_time: &DateTime<FixedOffset>) -> Result<FileExport> {
    let compression = Compression::Snappy;
    let format = ExportFormat::Parquet;
    let ext = Naming::extension_of(&format, &compression);
    Ok(FileExport {
        name: RESULT_EXPORT.to_string(),
        target: Target::Local(results.join(job)),
        naming: Naming::Parts {
            prefix: format!("{}/", batch_time_name(batch_time)),
            ext: ext.clone(),
        },
        options: FormatOptions {
            format,
            compression,
            delimiter: TEXT_DEFAULT_DELIMITER,
            header: false,
        },
        file_count: 1,
        partition_by: Vec::new(),
        save_mode: SaveMode::Overwrite,
        retention: Some(Retention {
            days: RESULT_RETENTION_DAYS,
            prefix: String::new(),
            owned: retention_pattern("", false, true, &ext)?,
        }),
    })
}

/// What a file export of the batch `expander` describes may write or
/// delete: its target and the key prefix (a manual job's file name) under
/// it, as one string; `None` for a service export. Two batches whose scopes
/// overlap (one starts with the other) must not commit at once.
pub fn export_scope(
    name: &str,
    export: &ExportSpec,
    expander: &Expander,
    manual: bool,
    targets: &dyn Targets,
) -> Result<Option<String>> {
    if export.file_options().is_none() {
        return Ok(None);
    }
    let e = file_export(name, export, expander, manual, targets)?;
    Ok(Some(format!("{}/{}", e.target.label(), e.naming.scope())))
}

/// Resolves a kodo or hdfs export into where and how its files go.
///
/// Naming (seed note 2 and the manual-job rule):
/// - a manual job's `keyPrefix` is the file name, unless it is empty or
///   ends with `/`: that names a folder, as for the other schedulers;
/// - otherwise files are `<prefix>part-NNNNN<ext>`, and a `keyPrefix`
///   without variables gets the batch-time folder, so batches do not
///   overwrite each other.
pub(crate) fn file_export(
    name: &str,
    export: &ExportSpec,
    expander: &Expander,
    manual: bool,
    targets: &dyn Targets,
) -> Result<FileExport> {
    // the key prefix template (variables unexpanded), where it goes, and the field naming it
    let (template, target, field) = match export {
        ExportSpec::Kodo(k) => (
            k.key_prefix.clone(),
            targets.bucket(&k.bucket)?,
            format!("export {name} spec.keyPrefix"),
        ),
        ExportSpec::Hdfs(h) => {
            let field = format!("export {name} spec.path");
            // hdfs://<authority>/<path>: the authority is expanded alone,
            // the path is the key prefix inside the cluster
            let rest = h.path.trim().strip_prefix("hdfs://").unwrap_or(h.path.trim());
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let authority = expander.expand(authority, &field)?;
            let target = targets.namenode(&field, &format!("hdfs://{authority}/"))?;
            (names::percent_decode(path), target, field)
        }
        _ => {
            return model_err!(Internal, "export {name}: {} exports write no files", export.kind());
        }
    };
    let Some(k) = export.file_options() else {
        return model_err!(Internal, "export {name} has no file options");
    };
    let compression = k.compression();
    let ext = Naming::extension_of(k.format(), &compression);
    let (prefix, vars) = expander.expand_counting(&template, &field)?;
    // a variable (a param, say) must not lead the output out of its prefix
    names::check_relative_key(&field, &prefix)?;
    // a manual job's keyPrefix names its file; one that is empty or ends
    // with '/' names a folder, filled as for the other schedulers
    let exact = manual && !prefix.is_empty() && !prefix.ends_with('/');
    let retention = if k.retention() > 0 {
        Some(Retention {
            days: k.retention(),
            prefix: static_prefix(&template).to_string(),
            owned: retention_pattern(&template, exact, !exact && vars == 0, &ext)?,
        })
    } else {
        None
    };
    let stamp = batch_time_name(&expander.batch_time());
    let naming = if exact {
        Naming::Exact { name: prefix, ext }
    } else if vars == 0 {
        // seed note 2: an empty or variable-free keyPrefix gets the batch time
        Naming::Parts {
            prefix: format!("{prefix}{stamp}/"),
            ext,
        }
    } else {
        Naming::Parts { prefix, ext }
    };
    let delimiter = parse_delimiter(&format!("export {name} spec.delimiter"), k.delimiter())
        .map_err(|e| e.with_code(pbatch_model::ErrorCode::InvalidJobExportSpec))?
        .unwrap_or(TEXT_DEFAULT_DELIMITER);
    Ok(FileExport {
        name: name.to_string(),
        target,
        naming,
        options: FormatOptions {
            format: k.format().clone(),
            compression,
            delimiter,
            header: k.contains_header(),
        },
        file_count: k.file_count(),
        partition_by: k.partition_by().to_vec(),
        save_mode: k.save_mode(),
        retention,
    })
}

/// Checks an export against the job's output columns, when they are known
/// before a run (see `pbatch_exec::declared_output`): a `partitionBy`
/// column or a service mapping's `#column` the job does not output is
/// refused with `E18314`, as the first run would fail with it.
pub fn check_export(
    job: &str,
    name: &str,
    spec: &ExportSpec,
    expander: &Expander,
    urls: &ServiceUrls,
    output: &arrow::datatypes::Schema,
) -> crate::Result<()> {
    match spec.file_options() {
        Some(o) if !o.partition_by().is_empty() => {
            crate::partition::Partitioner::new(output, o.partition_by(), name)?;
        }
        Some(_) => {}
        None => {
            let export = service_export(job, name, spec, expander, urls)?;
            crate::service::check_columns(&export, &std::sync::Arc::new(output.clone()))?;
        }
    }
    Ok(())
}
