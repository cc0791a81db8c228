//! Job exports: `POST /v2/jobs/<job>/exports/<export>`, and the one
//! format x compression table.

use crate::de::{Keys, empty_none, from_value, null_default, parse_body};
use crate::names::{BUCKET, NAME, check_path_text};
use crate::vocab::{Compression, ExportFormat, ExportType, HttpFormat, SaveMode};
use crate::{Error, ErrorCode, Result, model_err};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Characters a kodo export's `keyPrefix` may not hold (seed).
pub const KEY_PREFIX_FORBIDDEN: &[char] = &[':', '\\', '<', '>'];
/// Characters an hdfs export's `path` may not hold (seed).
pub const HDFS_PATH_FORBIDDEN: &[char] = &['\\', '<', '>'];
/// Most files one export writes (per partition directory).
pub const MAX_FILE_COUNT: i64 = 1000;

/// Whether a format takes a compression, and how the file is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Written; files end with `ext` after the format's own extension
    /// (`""` for the columnar formats, whose compression is inside the file).
    Supported {
        /// Extra file extension (e.g. `.gz`).
        ext: &'static str,
        /// The frame format, for docs and error messages.
        framing: &'static str,
    },
    /// Listed by the seed but refused here, with why.
    Refused(&'static str),
}

/// The format x compression table: every writer, validator, doc and test reads it.
pub const FORMAT_COMPRESSION: &[(ExportFormat, Compression, Codec)] = {
    use Codec::*;
    use Compression as C;
    use ExportFormat as F;
    const PLAIN: Codec = Supported {
        ext: "",
        framing: "none",
    };
    const GZ: Codec = Supported {
        ext: ".gz",
        framing: "gzip (RFC 1952)",
    };
    const BZ2: Codec = Supported {
        ext: ".bz2",
        framing: "bzip2 stream",
    };
    const LZ4: Codec = Supported {
        ext: ".lz4",
        framing: "LZ4 frame format (lz4 CLI)",
    };
    const SZ: Codec = Supported {
        ext: ".sz",
        framing: "snappy framing format",
    };
    const DEFLATE: Codec = Supported {
        ext: ".deflate",
        framing: "zlib (RFC 1950), as Hadoop's DefaultCodec",
    };
    const INSIDE: Codec = Supported {
        ext: "",
        framing: "inside the file's pages",
    };
    const LZO_PARQUET: Codec =
        Refused("no Rust parquet writer produces LZO pages and neither pyarrow nor DuckDB reads them");
    const LZO_ORC: Codec = Refused(
        "orc-rust cannot write LZO streams and the only LZO compressors are GPL; no reader here was found reliable",
    );
    &[
        (F::Json, C::None, PLAIN),
        (F::Json, C::Bzip2, BZ2),
        (F::Json, C::Gzip, GZ),
        (F::Json, C::Lz4, LZ4),
        (F::Json, C::Snappy, SZ),
        (F::Json, C::Deflate, DEFLATE),
        (F::Csv, C::None, PLAIN),
        (F::Csv, C::Bzip2, BZ2),
        (F::Csv, C::Gzip, GZ),
        (F::Csv, C::Lz4, LZ4),
        (F::Csv, C::Snappy, SZ),
        (F::Csv, C::Deflate, DEFLATE),
        (F::Text, C::None, PLAIN),
        (F::Text, C::Bzip2, BZ2),
        (F::Text, C::Gzip, GZ),
        (F::Text, C::Lz4, LZ4),
        (F::Text, C::Snappy, SZ),
        (F::Text, C::Deflate, DEFLATE),
        (F::Orc, C::None, PLAIN),
        (F::Orc, C::Snappy, INSIDE),
        (F::Orc, C::Zlib, INSIDE),
        (F::Orc, C::Lzo, LZO_ORC),
        (F::Parquet, C::None, PLAIN),
        (F::Parquet, C::Snappy, INSIDE),
        (F::Parquet, C::Gzip, INSIDE),
        (F::Parquet, C::Lzo, LZO_PARQUET),
    ]
};

/// The compression a format gets when none is given.
pub fn default_compression(format: &ExportFormat) -> Compression {
    match format {
        ExportFormat::Parquet => Compression::Snappy,
        _ => Compression::None,
    }
}

/// The file extension of a format (without the codec's).
pub fn format_extension(format: &ExportFormat) -> &'static str {
    match format {
        ExportFormat::Json => ".json",
        ExportFormat::Csv => ".csv",
        ExportFormat::Text => ".txt",
        ExportFormat::Orc => ".orc",
        ExportFormat::Parquet => ".parquet",
        ExportFormat::Other(_) => "",
    }
}

/// Looks a combination up; an error names it and lists what the format takes.
pub fn codec(format: &ExportFormat, compression: &Compression) -> Result<(&'static str, &'static str)> {
    if !format.is_known() {
        return model_err!(
            InvalidJobExportSpec,
            "spec.format {:?} is not supported; use one of {}",
            format.as_str(),
            ExportFormat::VALUES.join(", ")
        );
    }
    let accepted: Vec<&str> = FORMAT_COMPRESSION
        .iter()
        .filter(|(f, _, c)| f == format && matches!(c, Codec::Supported { .. }))
        .map(|(_, c, _)| c.as_str())
        .collect();
    match FORMAT_COMPRESSION
        .iter()
        .find(|(f, c, _)| f == format && c == compression)
    {
        Some((_, _, Codec::Supported { ext, framing })) => Ok((ext, framing)),
        Some((_, _, Codec::Refused(why))) => model_err!(
            InvalidJobExportSpec,
            "spec.format {format} with spec.compression {compression} is refused: {why}; use one of {} instead",
            accepted.join(", ")
        ),
        None => model_err!(
            InvalidJobExportSpec,
            "spec.format {format} does not take spec.compression {:?}; use one of {}",
            compression.as_str(),
            accepted.join(", ")
        ),
    }
}

fn check_file_options(
    format: &ExportFormat,
    compression: &Option<Compression>,
    delimiter: &Option<String>,
    file_count: i64,
) -> Result<()> {
    let c = compression.clone().unwrap_or_else(|| default_compression(format));
    codec(format, &c)?;
    if *format == ExportFormat::Csv && delimiter.as_deref().unwrap_or("").is_empty() {
        return model_err!(
            CsvWithoutDelimiter,
            "spec.delimiter is required when spec.format is csv"
        );
    }
    if let Some(d) = delimiter.as_deref().filter(|d| !d.is_empty()) {
        crate::datasource::check_delimiter("spec.delimiter", d)
            .map_err(|e| e.with_code(ErrorCode::InvalidJobExportSpec))?;
    }
    if file_count != 0 && !(1..=MAX_FILE_COUNT).contains(&file_count) {
        return model_err!(
            InvalidJobExportSpec,
            "spec.fileCount {file_count} is out of range: use 1 to {MAX_FILE_COUNT}"
        );
    }
    Ok(())
}

fn check_save_mode(mode: &Option<SaveMode>, allowed: &[SaveMode]) -> Result<()> {
    if let Some(m) = mode
        && !allowed.contains(m)
    {
        let names: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
        return model_err!(
            InvalidJobExportSpec,
            "spec.saveMode {:?} is invalid; use one of {}",
            m.as_str(),
            names.join(", ")
        );
    }
    Ok(())
}

const FILE_SAVE_MODES: &[SaveMode] = &[
    SaveMode::Overwrite,
    SaveMode::Append,
    SaveMode::ErrorIfExists,
    SaveMode::Ignore,
];

/// Options shared by the kodo and hdfs file exports.
pub trait FileExportOptions {
    /// Format.
    fn format(&self) -> &ExportFormat;
    /// Compression (format default when unset).
    fn compression(&self) -> Compression;
    /// csv delimiter (text: the column separator, TAB by default).
    fn delimiter(&self) -> Option<&str>;
    /// csv header.
    fn contains_header(&self) -> bool;
    /// Partition columns.
    fn partition_by(&self) -> &[String];
    /// File count (1 when unset).
    fn file_count(&self) -> usize;
    /// Save mode (overwrite when unset).
    fn save_mode(&self) -> SaveMode;
    /// Retention in days (<= 0: forever).
    fn retention(&self) -> i64;
}

macro_rules! file_options {
    ($t:ty) => {
        impl FileExportOptions for $t {
            fn format(&self) -> &ExportFormat {
                &self.format
            }
            fn compression(&self) -> Compression {
                self.compression
                    .clone()
                    .unwrap_or_else(|| default_compression(&self.format))
            }
            fn delimiter(&self) -> Option<&str> {
                self.delimiter.as_deref().filter(|d| !d.is_empty())
            }
            fn contains_header(&self) -> bool {
                self.contains_header
            }
            fn partition_by(&self) -> &[String] {
                &self.partition_by
            }
            fn file_count(&self) -> usize {
                usize::try_from(self.file_count.max(1)).unwrap_or(1)
            }
            fn save_mode(&self) -> SaveMode {
                self.save_mode.clone().unwrap_or(SaveMode::Overwrite)
            }
            fn retention(&self) -> i64 {
                self.retention
            }
        }
    };
}

/// `spec` of a kodo export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KodoExportSpec {
    /// Bucket.
    pub bucket: String,
    /// Prefix of the written keys (the file name for manual jobs); variables allowed.
    #[serde(default, deserialize_with = "null_default")]
    pub key_prefix: String,
    /// Format.
    pub format: ExportFormat,
    /// csv delimiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// csv header.
    #[serde(default, deserialize_with = "null_default")]
    pub contains_header: bool,
    /// Compression (`""` = the format's default).
    #[serde(default, deserialize_with = "empty_none", skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Days to keep outputs (<= 0: forever).
    #[serde(default, deserialize_with = "null_default")]
    pub retention: i64,
    /// Partition columns.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub partition_by: Vec<String>,
    /// Files to write (0 = 1).
    #[serde(default, deserialize_with = "null_default")]
    pub file_count: i64,
    /// Save mode (`""` = overwrite).
    #[serde(default, deserialize_with = "empty_none", skip_serializing_if = "Option::is_none")]
    pub save_mode: Option<SaveMode>,
}
file_options!(KodoExportSpec);

/// `spec` of an hdfs export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HdfsExportSpec {
    /// `hdfs://host:port/path` prefix of the written files; variables allowed.
    pub path: String,
    /// Format.
    pub format: ExportFormat,
    /// csv delimiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// csv header.
    #[serde(default, deserialize_with = "null_default")]
    pub contains_header: bool,
    /// Compression.
    #[serde(default, deserialize_with = "empty_none", skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Days to keep outputs.
    #[serde(default, deserialize_with = "null_default")]
    pub retention: i64,
    /// Partition columns (the Go SDK sends `null`).
    #[serde(default, deserialize_with = "null_default")]
    pub partition_by: Vec<String>,
    /// Files to write.
    #[serde(default, deserialize_with = "null_default")]
    pub file_count: i64,
    /// Save mode.
    #[serde(default, deserialize_with = "empty_none", skip_serializing_if = "Option::is_none")]
    pub save_mode: Option<SaveMode>,
}
file_options!(HdfsExportSpec);

/// `spec` of an http export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpExportSpec {
    /// `ip:port` or a URL with scheme.
    pub host: String,
    /// Path starting with `/`.
    pub uri: String,
    /// text (default) or json.
    #[serde(default, deserialize_with = "empty_none", skip_serializing_if = "Option::is_none")]
    pub format: Option<HttpFormat>,
}

/// `spec` of a logdb export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogdbExportSpec {
    /// Target index.
    pub dest_repo_name: String,
    /// Skip invalid documents instead of failing.
    #[serde(default, deserialize_with = "null_default")]
    pub omit_invalid: bool,
    /// Log field -> `#jobField` (nested objects allowed).
    #[serde(default, deserialize_with = "null_default")]
    pub doc: serde_json::Map<String, serde_json::Value>,
}

/// `spec` of a tsdb export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TsdbExportSpec {
    /// Target database.
    pub dest_repo_name: String,
    /// Skip invalid points instead of failing.
    #[serde(default, deserialize_with = "null_default")]
    pub omit_invalid: bool,
    /// Measurement.
    pub series: String,
    /// Tag -> `#jobField`.
    #[serde(default, deserialize_with = "null_default")]
    pub tags: BTreeMap<String, String>,
    /// Field -> `#jobField`.
    #[serde(default, deserialize_with = "null_default")]
    pub fields: BTreeMap<String, String>,
    /// `#jobField` holding the time (absent: the batch time).
    #[serde(default, deserialize_with = "empty_none", skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// `spec` of a report export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportExportSpec {
    /// Database.
    pub db_name: String,
    /// Table.
    pub table_name: String,
    /// Column -> `#jobField`.
    #[serde(default, deserialize_with = "null_default")]
    pub columns: BTreeMap<String, String>,
    /// append (default) or overwrite.
    #[serde(default, deserialize_with = "empty_none", skip_serializing_if = "Option::is_none")]
    pub save_mode: Option<SaveMode>,
}

/// An export: `type` + `spec` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "spec", rename_all = "lowercase")]
pub enum ExportSpec {
    /// Files in a bucket.
    Kodo(KodoExportSpec),
    /// Files on HDFS.
    Hdfs(HdfsExportSpec),
    /// POSTs to an HTTP receiver.
    Http(HttpExportSpec),
    /// A log store index.
    Logdb(LogdbExportSpec),
    /// A time-series database.
    Tsdb(TsdbExportSpec),
    /// A relational table.
    Report(ReportExportSpec),
}

fn check_mapping_value(field: &str, v: &str) -> Result<()> {
    if !v.starts_with('#') {
        return model_err!(
            SourceFieldLacksPrefix,
            "{field} {v:?} must name a job field as \"#field\""
        );
    }
    if v.len() == 1 {
        return model_err!(EmptySourceField, "{field} is \"#\" without a field name");
    }
    Ok(())
}

fn check_doc(prefix: &str, doc: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    for (k, v) in doc {
        let field = format!("{prefix}.{k}");
        match v {
            serde_json::Value::String(s) => check_mapping_value(&field, s)?,
            serde_json::Value::Object(m) => check_doc(&field, m)?,
            other => {
                return model_err!(
                    InvalidSourceField,
                    "{field} is {other}; use \"#field\" or a nested object"
                );
            }
        }
    }
    Ok(())
}

impl ExportSpec {
    /// Parses a create body `{"type", "spec"}`; an update body carries only
    /// `spec`, so `existing` gives the type then.
    pub fn from_json(body: &[u8], existing: Option<&ExportType>) -> Result<Self> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type", default)]
            ty: Option<ExportType>,
            #[serde(default)]
            spec: serde_json::Value,
        }
        // `name` and `workflow` are what a GET answer carries besides these
        const KEYS: Keys = Keys {
            code: ErrorCode::InvalidJobExportSpec,
            nested: &[],
            sdk: &["name", "workflow"],
        };
        const SPEC_KEYS: Keys = Keys::only(ErrorCode::InvalidJobExportSpec);
        let raw: Raw = parse_body("export", body, &KEYS)?;
        let ty = match (raw.ty, existing) {
            (Some(t), _) => t,
            (None, Some(t)) => t.clone(),
            (None, None) => {
                return model_err!(
                    InvalidExportType,
                    "type is missing; use one of {}",
                    ExportType::VALUES.join(", ")
                );
            }
        };
        if raw.spec.is_null() {
            return model_err!(InvalidJobExportSpec, "spec is missing");
        }
        Ok(match ty {
            ExportType::Kodo => ExportSpec::Kodo(from_value("spec", raw.spec, &SPEC_KEYS)?),
            ExportType::Hdfs => ExportSpec::Hdfs(from_value("spec", raw.spec, &SPEC_KEYS)?),
            ExportType::Http => ExportSpec::Http(from_value("spec", raw.spec, &SPEC_KEYS)?),
            ExportType::Logdb => ExportSpec::Logdb(from_value("spec", raw.spec, &SPEC_KEYS)?),
            ExportType::Tsdb => ExportSpec::Tsdb(from_value("spec", raw.spec, &SPEC_KEYS)?),
            ExportType::Report => ExportSpec::Report(from_value("spec", raw.spec, &SPEC_KEYS)?),
            ExportType::Other(t) => {
                return model_err!(
                    InvalidExportType,
                    "type {t:?} is not an export type; use one of {}",
                    ExportType::VALUES.join(", ")
                );
            }
        })
    }

    /// The export type.
    pub fn kind(&self) -> ExportType {
        match self {
            ExportSpec::Kodo(_) => ExportType::Kodo,
            ExportSpec::Hdfs(_) => ExportType::Hdfs,
            ExportSpec::Http(_) => ExportType::Http,
            ExportSpec::Logdb(_) => ExportType::Logdb,
            ExportSpec::Tsdb(_) => ExportType::Tsdb,
            ExportSpec::Report(_) => ExportType::Report,
        }
    }

    /// The file options, for kodo and hdfs exports.
    pub fn file_options(&self) -> Option<&dyn FileExportOptions> {
        match self {
            ExportSpec::Kodo(k) => Some(k),
            ExportSpec::Hdfs(h) => Some(h),
            _ => None,
        }
    }

    /// Validates every rule of the seed that needs no other resource.
    pub fn validate(&self, name: &str) -> Result<()> {
        crate::names::check_name(ErrorCode::InvalidExportName, "export name", name)?;
        match self {
            ExportSpec::Kodo(k) => {
                if !BUCKET.is_match(&k.bucket) {
                    return model_err!(
                        InvalidJobExportSpec,
                        "spec.bucket {:?} is invalid: use 4-63 letters, digits or '-'",
                        k.bucket
                    );
                }
                check_path_text("spec.keyPrefix", &k.key_prefix, 128, KEY_PREFIX_FORBIDDEN)?;
                crate::names::check_relative_key("spec.keyPrefix", &k.key_prefix)?;
                check_file_options(&k.format, &k.compression, &k.delimiter, k.file_count)?;
                check_save_mode(&k.save_mode, FILE_SAVE_MODES)?;
                check_partition_by(&k.partition_by)?;
            }
            ExportSpec::Hdfs(h) => {
                if !h.path.starts_with("hdfs://") {
                    return model_err!(
                        InvalidJobExportSpec,
                        "spec.path {:?} is not an hdfs:// URL (e.g. hdfs://192.168.1.1:9000/usr/local)",
                        h.path
                    );
                }
                check_path_text("spec.path", &h.path, 128, HDFS_PATH_FORBIDDEN)?;
                check_file_options(&h.format, &h.compression, &h.delimiter, h.file_count)?;
                check_save_mode(&h.save_mode, FILE_SAVE_MODES)?;
                check_partition_by(&h.partition_by)?;
            }
            ExportSpec::Http(h) => {
                if h.host.trim().is_empty() {
                    return model_err!(InvalidUrl, "spec.host is empty: give ip:port or a URL");
                }
                if !h.uri.starts_with('/') {
                    return model_err!(InvalidUrl, "spec.uri {:?} must start with '/'", h.uri);
                }
                if let Some(f) = &h.format
                    && !f.is_known()
                {
                    return model_err!(
                        InvalidJobExportSpec,
                        "spec.format {:?} is invalid; use text or json",
                        f.as_str()
                    );
                }
            }
            ExportSpec::Logdb(l) => {
                check_repo_name(&l.dest_repo_name)?;
                if l.doc.is_empty() {
                    return model_err!(EmptyDestination, "spec.doc is empty: map at least one field");
                }
                check_doc("spec.doc", &l.doc)?;
            }
            ExportSpec::Tsdb(t) => {
                check_repo_name(&t.dest_repo_name)?;
                if t.series.trim().is_empty() {
                    return model_err!(NoSuchSeries, "spec.series is empty");
                }
                if t.fields.is_empty() {
                    return model_err!(FieldMissed, "spec.fields is empty: a point needs at least one field");
                }
                for (k, v) in &t.tags {
                    check_mapping_value(&format!("spec.tags.{k}"), v)?;
                }
                for (k, v) in &t.fields {
                    check_mapping_value(&format!("spec.fields.{k}"), v)?;
                }
                if let Some(ts) = &t.timestamp {
                    check_mapping_value("spec.timestamp", ts)?;
                }
            }
            ExportSpec::Report(r) => {
                if !NAME.is_match(&r.db_name) {
                    return model_err!(NoSuchDatabase, "spec.dbName {:?} is invalid", r.db_name);
                }
                if !NAME.is_match(&r.table_name) {
                    return model_err!(NoSuchTable, "spec.tableName {:?} is invalid", r.table_name);
                }
                if r.columns.is_empty() {
                    return model_err!(EmptyDestination, "spec.columns is empty: map at least one column");
                }
                for (k, v) in &r.columns {
                    check_mapping_value(&format!("spec.columns.{k}"), v)?;
                }
                check_save_mode(&r.save_mode, &[SaveMode::Overwrite, SaveMode::Append])?;
            }
        }
        Ok(())
    }
}

fn check_repo_name(name: &str) -> Result<()> {
    if NAME.is_match(name) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::ExportRepoNotFound,
            format!("spec.destRepoName {name:?} is invalid: use 1-128 letters, digits or '_'"),
        ))
    }
}

fn check_partition_by(cols: &[String]) -> Result<()> {
    for (i, c) in cols.iter().enumerate() {
        if c.trim().is_empty() {
            return model_err!(InvalidJobExportSpec, "spec.partitionBy[{i}] is empty");
        }
        if cols[..i].contains(c) {
            return model_err!(DuplicatedKey, "spec.partitionBy[{i}] {c:?} is listed twice");
        }
    }
    Ok(())
}

/// `GET /v2/jobs/<job>/exports/<export>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportDesc {
    /// Name (list items only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Type and spec.
    #[serde(flatten)]
    pub spec: ExportSpec,
}

/// `GET /v2/jobs/<job>/exports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportList {
    /// Exports.
    pub exports: Vec<ExportDesc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(body: &str) -> Result<ExportSpec> {
        let e = ExportSpec::from_json(body.as_bytes(), None)?;
        e.validate("e1")?;
        Ok(e)
    }

    #[test]
    fn sdk_bodies() {
        export(
            r#"{"type":"kodo","spec":{"bucket":"bkt1","keyPrefix":"out/$(year)","format":"csv","retention":0,
 "fileCount":1,"saveMode":"","delimiter":",","containsHeader":false}}"#,
        )
        .unwrap();
        let e = export(
            r#"{"type":"hdfs","spec":{"path":"hdfs://127.0.0.1:9000/out","format":"parquet","partitionBy":null,
 "fileCount":2,"saveMode":""}}"#,
        )
        .unwrap();
        let o = e.file_options().unwrap();
        assert_eq!(o.compression(), Compression::Snappy);
        assert_eq!(o.save_mode(), SaveMode::Overwrite);
        assert_eq!(o.file_count(), 2);
        export(
            r##"{"type":"report","spec":{"columns":{"c":"#a"},"dbName":"db","saveMode":"append","tableName":"t"}}"##,
        )
        .unwrap();
        export(r#"{"type":"http","spec":{"host":"127.0.0.1:7758","uri":"/x"}}"#).unwrap();
    }

    #[test]
    fn table_drives_validation() {
        for (f, c, codec) in FORMAT_COMPRESSION {
            let r = super::codec(f, c);
            assert_eq!(r.is_ok(), matches!(codec, Codec::Supported { .. }), "{f} {c}");
        }
        let e =
            export(r#"{"type":"kodo","spec":{"bucket":"bkt1","format":"parquet","compression":"lzo"}}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidJobExportSpec);
        assert!(e.message().contains("parquet") && e.message().contains("snappy"), "{e}");
        let e = export(r#"{"type":"kodo","spec":{"bucket":"bkt1","format":"orc","compression":"gzip"}}"#).unwrap_err();
        assert!(e.message().contains("zlib"), "{e}");
        let e = export(r#"{"type":"kodo","spec":{"bucket":"bkt1","format":"csv"}}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::CsvWithoutDelimiter);
        let e = export(r#"{"type":"kodo","spec":{"bucket":"bkt1","format":"json","fileCount":1001}}"#).unwrap_err();
        assert!(e.message().contains("1001"), "{e}");
        let e = export(r#"{"type":"kodo","spec":{"bucket":"bkt1","format":"json","saveMode":"replace"}}"#).unwrap_err();
        assert!(e.message().contains("replace"), "{e}");
        let e = export(r#"{"type":"kodo","spec":{"bucket":"bkt1","format":"json","keyPrefix":"a:b"}}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::IllegalPathCharacter);
        let e = export(r#"{"type":"logdb","spec":{"destRepoName":"r","doc":{"a":"b"}}}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::SourceFieldLacksPrefix);
        let e = export(r#"{"type":"ftp","spec":{}}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidExportType);
    }
}
