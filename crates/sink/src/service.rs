//! Service exports: HTTP, logdb (OpenSearch / Elasticsearch `_bulk`) and
//! tsdb (InfluxDB 1.x line protocol).
//!
//! While the batch runs, each row becomes one record line in a staging file
//! (no network I/O next to the query). When every export of the batch has
//! staged, the records are sent in requests of `batch_records` records, with
//! bounded retries on connection errors and 5xx answers. A send that fails
//! fails the batch before any file export is committed; what a failed send
//! delivered before it failed stays delivered (a rerun sends everything again).

use crate::error::{Error, Result};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use pbatch_model::{ErrorCode, HttpFormat};
use serde_json::{Map, Value};
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// Records per request unless configured.
pub const DEFAULT_BATCH_RECORDS: usize = 1000;

/// Attempts per request (connection errors and 5xx are retried).
const ATTEMPTS: u32 = 4;

/// What a service export sends, and where.
#[derive(Debug, Clone)]
pub(crate) enum ServiceKind {
    /// `POST <url>`: text (`k=v` TAB-joined) or json (one object per line).
    Http {
        /// Full URL (scheme, host, uri).
        url: String,
        /// Body format.
        format: HttpFormat,
    },
    /// InfluxDB 1.x `POST <base>/write?db=<db>&precision=ns`.
    Tsdb {
        /// Server URL.
        base: String,
        /// Database (`destRepoName`).
        db: String,
        /// Measurement.
        series: String,
        /// Tag -> column.
        tags: Vec<(String, String)>,
        /// Field -> column.
        fields: Vec<(String, String)>,
        /// Column holding the time; `None`: the batch time.
        timestamp: Option<String>,
        /// The batch time in nanoseconds.
        batch_time_ns: i64,
        /// Skip and count points that cannot be made instead of failing.
        omit_invalid: bool,
    },
    /// `POST <base>/_bulk` into index `index`.
    Logdb {
        /// Server URL.
        base: String,
        /// Index (`destRepoName`).
        index: String,
        /// Document template: field -> `#column` or a nested object.
        doc: Map<String, Value>,
        /// Skip and count documents the store refuses instead of failing.
        omit_invalid: bool,
    },
    /// Rows into a PostgreSQL / MySQL table (see [`crate::report`]).
    Report(crate::report::ReportTarget),
}

/// One service export of a batch.
#[derive(Debug, Clone)]
pub(crate) struct ServiceExport {
    /// Export name (for messages).
    pub name: String,
    /// `<job>/<batch time, RFC 3339>/<export>`: what makes the sends of one
    /// batch idempotent (http `Idempotency-Key`s, logdb `_id`s, the report
    /// table's `pbatch_batch` column).
    pub batch_key: String,
    /// What and where.
    pub kind: ServiceKind,
    /// Records per request.
    pub batch_records: usize,
}

/// A service export whose records are staged.
#[derive(Debug)]
pub(crate) struct StagedService {
    /// The export.
    pub export: ServiceExport,
    /// One record per line.
    pub payload: PathBuf,
    /// Records staged.
    pub records: u64,
    /// Rows left out as invalid (`omitInvalid`).
    pub invalid: u64,
    /// A report export's columns with their SQL types.
    pub report_types: Vec<(String, crate::report::SqlType)>,
}

/// What a send delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendReport {
    /// Export name.
    pub export: String,
    /// Records the service accepted.
    pub records: u64,
    /// Records left out or refused as invalid (`omitInvalid`).
    pub invalid: u64,
    /// Requests made (retries included).
    pub requests: u64,
    /// Of them, retries of a request that failed (5xx, no answer).
    pub retries: u64,
}

/// The `#column` a mapping value names (`E18324` without `#`, `E18313` empty).
pub(crate) fn mapped_column<'a>(export: &str, field: &str, value: &'a str) -> Result<&'a str> {
    match value.strip_prefix('#') {
        Some("") => Err(Error::new(
            ErrorCode::EmptySourceField,
            format!("export {export}: {field} maps to an empty column name \"#\""),
        )),
        Some(col) => Ok(col),
        None => Err(Error::new(
            ErrorCode::SourceFieldLacksPrefix,
            format!("export {export}: {field} = {value:?} must name a job column as \"#column\""),
        )),
    }
}

fn columns_of(kind: &ServiceKind, export: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    match kind {
        ServiceKind::Http { .. } => {}
        ServiceKind::Report(t) => {
            for (k, c) in &t.columns {
                out.push((format!("columns.{k}"), c.clone()));
            }
        }
        ServiceKind::Tsdb {
            tags,
            fields,
            timestamp,
            ..
        } => {
            for (k, c) in tags {
                out.push((format!("tags.{k}"), c.clone()));
            }
            for (k, c) in fields {
                out.push((format!("fields.{k}"), c.clone()));
            }
            if let Some(c) = timestamp {
                out.push(("timestamp".into(), c.clone()));
            }
        }
        ServiceKind::Logdb { doc, .. } => {
            fn walk(m: &Map<String, Value>, path: &str, export: &str, out: &mut Vec<(String, String)>) -> Result<()> {
                for (k, v) in m {
                    let p = format!("{path}.{k}");
                    match v {
                        Value::String(s) => out.push((p.clone(), mapped_column(export, &p, s)?.to_string())),
                        Value::Object(o) => walk(o, &p, export, out)?,
                        other => {
                            return Err(Error::new(
                                ErrorCode::InvalidFieldValue,
                                format!("export {export}: {p} = {other} must be \"#column\" or an object"),
                            ));
                        }
                    }
                }
                Ok(())
            }
            walk(doc, "doc", export, &mut out)?;
        }
    }
    Ok(out)
}

/// Checks every mapped column exists in the job's output (`E18314`).
pub(crate) fn check_columns(export: &ServiceExport, schema: &SchemaRef) -> Result<()> {
    for (field, col) in columns_of(&export.kind, &export.name)? {
        if schema.field_with_name(&col).is_err() {
            let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(Error::new(
                ErrorCode::ExportFieldNotFound,
                format!(
                    "export {}: {field} maps #{col}, which the job does not output (it outputs {})",
                    export.name,
                    have.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// `key=value` text of the push format: TAB, LF, CR and `\` escaped.
fn text_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => {
            let mut out = String::with_capacity(s.len());
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
            Some(out)
        }
        other => Some(other.to_string()),
    }
}

/// Line-protocol escaping: a backslash before each of `chars`; a line break
/// (which no line-protocol token may hold) becomes the two characters `\n`.
fn escape(s: &str, chars: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => {
                if chars.contains(&c) {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    out
}

/// Nanoseconds since the epoch of a timestamp value: an integer by its
/// magnitude (seconds, milliseconds, microseconds or nanoseconds), or an
/// RFC 3339 string (a zone-less one is UTC).
pub(crate) fn timestamp_ns(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            let i = n.as_i64()?;
            let a = i.unsigned_abs();
            if a < 100_000_000_000 {
                i.checked_mul(1_000_000_000)
            } else if a < 100_000_000_000_000 {
                i.checked_mul(1_000_000)
            } else if a < 100_000_000_000_000_000 {
                i.checked_mul(1_000)
            } else {
                Some(i)
            }
        }
        Value::String(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.to_utc())
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
                .ok()?;
            t.timestamp_nanos_opt()
        }
        _ => None,
    }
}

/// One row as a record line; `Ok(None)` = invalid (skipped with omitInvalid).
fn record(kind: &ServiceKind, row: &Map<String, Value>) -> std::result::Result<Option<String>, String> {
    match kind {
        ServiceKind::Http {
            format: HttpFormat::Json,
            ..
        } => Ok(Some(Value::Object(row.clone()).to_string())),
        ServiceKind::Http { .. } => Ok(Some(
            row.iter()
                .filter_map(|(k, v)| text_value(v).map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join("\t"),
        )),
        ServiceKind::Tsdb {
            series,
            tags,
            fields,
            timestamp,
            batch_time_ns,
            ..
        } => {
            let mut line = escape(series, &[',', ' ']);
            let mut tag_list: Vec<(&String, String)> = tags
                .iter()
                .filter_map(|(k, c)| match row.get(c) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s.is_empty() => None,
                    Some(Value::String(s)) => Some((k, s.clone())),
                    Some(v) => Some((k, v.to_string())),
                })
                .collect();
            tag_list.sort();
            for (k, v) in tag_list {
                line.push_str(&format!(
                    ",{}={}",
                    escape(k, &[',', ' ', '=']),
                    escape(&v, &[',', ' ', '='])
                ));
            }
            let mut field_list: Vec<String> = Vec::new();
            let mut sorted: Vec<&(String, String)> = fields.iter().collect();
            sorted.sort();
            for (k, c) in sorted {
                let v = match row.get(c) {
                    None | Some(Value::Null) => continue, // null fields are left out
                    Some(Value::Number(n)) if n.is_i64() || n.is_u64() => format!("{n}i"),
                    Some(Value::Number(n)) => n.to_string(),
                    Some(Value::Bool(b)) => b.to_string(),
                    Some(Value::String(s)) => format!(
                        "\"{}\"",
                        s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
                    ),
                    Some(other) => format!("\"{}\"", other.to_string().replace('\\', "\\\\").replace('"', "\\\"")),
                };
                field_list.push(format!("{}={v}", escape(k, &[',', '"', ' ', '='])));
            }
            if field_list.is_empty() {
                return Err("every field is null: a point needs at least one".into());
            }
            let ts = match timestamp {
                None => *batch_time_ns,
                Some(c) => match row.get(c).and_then(timestamp_ns) {
                    Some(t) => t,
                    None => {
                        return Err(format!(
                            "timestamp #{c} = {} is not a time",
                            row.get(c).cloned().unwrap_or(Value::Null)
                        ));
                    }
                },
            };
            line.push(' ');
            line.push_str(&field_list.join(","));
            line.push_str(&format!(" {ts}"));
            Ok(Some(line))
        }
        ServiceKind::Report(t) => {
            let mut out = Map::new();
            for (k, c) in &t.columns {
                out.insert(k.clone(), row.get(c).cloned().unwrap_or(Value::Null));
            }
            Ok(Some(Value::Object(out).to_string()))
        }
        ServiceKind::Logdb { doc, .. } => {
            fn fill(m: &Map<String, Value>, row: &Map<String, Value>) -> Map<String, Value> {
                let mut out = Map::new();
                for (k, v) in m {
                    match v {
                        Value::String(s) => {
                            let col = s.strip_prefix('#').unwrap_or(s);
                            if let Some(x) = row.get(col).filter(|x| !x.is_null()) {
                                out.insert(k.clone(), x.clone());
                            }
                        }
                        Value::Object(o) => {
                            out.insert(k.clone(), Value::Object(fill(o, row)));
                        }
                        _ => {}
                    }
                }
                out
            }
            Ok(Some(Value::Object(fill(doc, row)).to_string()))
        }
    }
}

/// Starts the writer of one service export: rows become record lines in
/// `staging_dir/payload`.
pub(crate) fn spawn_service_writer(
    export: ServiceExport,
    schema: SchemaRef,
    staging_dir: PathBuf,
) -> crate::WriterHandle<StagedService> {
    let (sender, mut rx) = mpsc::channel::<RecordBatch>(4);
    let (join, state) = crate::spawn_writer(staging_dir.clone(), move || {
        check_columns(&export, &schema)?;
        let io = |e: std::io::Error| {
            let message = crate::error::fs_message("staging", &staging_dir.join("payload"), &e);
            Error::Io(pbatch_model::Caused::new(
                ErrorCode::ExportFailed,
                format!("export {}: {message}", export.name),
                e,
            ))
        };
        std::fs::create_dir_all(&staging_dir).map_err(io)?;
        let payload = staging_dir.join("payload");
        let mut out = BufWriter::new(std::fs::File::create(&payload).map_err(io)?);
        let omit = match &export.kind {
            ServiceKind::Tsdb { omit_invalid, .. } | ServiceKind::Logdb { omit_invalid, .. } => *omit_invalid,
            ServiceKind::Http { .. } | ServiceKind::Report(_) => false,
        };
        let report_types = match &export.kind {
            ServiceKind::Report(t) => t
                .columns
                .iter()
                .map(|(k, c)| {
                    let ty = schema
                        .field_with_name(c)
                        .map(|f| crate::report::SqlType::of(f.data_type()))
                        .unwrap_or(crate::report::SqlType::Text);
                    (k.clone(), ty)
                })
                .collect(),
            _ => Vec::new(),
        };
        let (mut records, mut invalid, mut row_no) = (0u64, 0u64, 0u64);
        while let Some(batch) = rx.blocking_recv() {
            let mut buf = Vec::new();
            {
                let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
                w.write(&batch)
                    .map_err(|e| Error::new(ErrorCode::ExportFailed, format!("export {}: {e}", export.name)))?;
                w.finish()
                    .map_err(|e| Error::new(ErrorCode::ExportFailed, format!("export {}: {e}", export.name)))?;
            }
            for line in buf.lines() {
                let line = line.map_err(io)?;
                row_no += 1;
                let row: Map<String, Value> = serde_json::from_str(&line).unwrap_or_default();
                match record(&export.kind, &row) {
                    Ok(Some(r)) => {
                        out.write_all(r.as_bytes()).map_err(io)?;
                        out.write_all(b"\n").map_err(io)?;
                        records += 1;
                    }
                    Ok(None) => {}
                    Err(_) if omit => invalid += 1,
                    Err(why) => {
                        return Err(Error::new(
                            ErrorCode::FieldTypeError,
                            format!(
                                "export {}: result row {row_no}: {why} (set omitInvalid to skip such rows)",
                                export.name
                            ),
                        ));
                    }
                }
            }
        }
        out.flush().map_err(io)?;
        Ok(StagedService {
            export,
            payload,
            records,
            invalid,
            report_types,
        })
    });
    crate::WriterHandle { sender, join, state }
}

fn send_err(export: &str, url: &str, what: String) -> Error {
    Error::new(ErrorCode::ExportFailed, format!("export {export}: POST {url}: {what}"))
}

/// A service URL: `base` plus path segments (each percent-encoded, as the
/// source side builds object URLs) and query pairs.
fn service_url(export: &str, base: &str, segments: &[&str], query: &[(&str, &str)]) -> Result<String> {
    let bad = |why: String| {
        Error::new(
            ErrorCode::InvalidUrl,
            format!("export {export}: service url {base:?}: {why}"),
        )
    };
    let mut u = reqwest::Url::parse(base.trim()).map_err(|e| bad(e.to_string()))?;
    u.path_segments_mut()
        .map_err(|_| bad("it cannot hold a path".into()))?
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        u.query_pairs_mut().extend_pairs(query);
    }
    Ok(u.to_string())
}

/// A POST that failed: the HTTP status, when there was an answer.
struct PostFail {
    status: Option<u16>,
    error: Error,
}

impl From<PostFail> for Error {
    fn from(f: PostFail) -> Self {
        f.error
    }
}

/// POSTs one body with retries; returns the answer's body.
async fn post(
    client: &reqwest::Client,
    export: &str,
    url: &str,
    content_type: &str,
    body: String,
    idempotency_key: Option<&str>,
    counts: &mut SendReport,
) -> std::result::Result<String, PostFail> {
    let mut delay = Duration::from_millis(200);
    let mut last = String::new();
    // the connection error of the last attempt, kept as the cause
    let mut cause: Option<reqwest::Error> = None;
    for attempt in 1..=ATTEMPTS {
        counts.requests += 1;
        if attempt > 1 {
            counts.retries += 1;
        }
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.clone());
        if let Some(key) = idempotency_key {
            // the same key on every retry: a receiver drops what it has seen
            request = request.header("Idempotency-Key", key);
        }
        let r = request.send().await;
        match r {
            Ok(resp) if resp.status().is_success() => return Ok(resp.text().await.unwrap_or_default()),
            Ok(resp) => {
                let status = resp.status();
                let text: String = resp.text().await.unwrap_or_default().chars().take(300).collect();
                last = format!("HTTP {status}: {}", text.trim());
                if !status.is_server_error() {
                    return Err(PostFail {
                        status: Some(status.as_u16()),
                        error: send_err(export, url, last),
                    });
                }
            }
            Err(e) => {
                last = format!("{e}");
                cause = Some(e);
            }
        }
        if attempt < ATTEMPTS {
            tracing::info!(export, url, attempt, error = %last, "retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    let error = send_err(export, url, format!("{last} (after {ATTEMPTS} attempts)"));
    // 5xx or no answer: a later batch attempt may pass
    let error = match cause {
        Some(source) => Error::Http(pbatch_model::Caused::new(error.code(), error.message(), source)),
        None => error,
    };
    Err(PostFail {
        status: None,
        error: error.transient(),
    })
}

/// The logdb `_id` of row `row` of a batch's export: SHA-1 of the batch key
/// and the row number, hex.
fn document_id(batch_key: &str, row: usize) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(format!("{batch_key}/{row}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends a staged service export's records.
pub(crate) async fn send(staged: StagedService, client: &reqwest::Client) -> Result<SendReport> {
    let ex = &staged.export;
    let text = tokio::fs::read_to_string(&staged.payload).await.map_err(|e| {
        let message = format!("export {}: reading {}: {e}", ex.name, staged.payload.display());
        Error::Io(pbatch_model::Caused::new(ErrorCode::ExportFailed, message, e))
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let mut report = SendReport {
        export: ex.name.clone(),
        records: 0,
        invalid: staged.invalid,
        requests: 0,
        retries: 0,
    };
    if let ServiceKind::Report(target) = &ex.kind {
        // one transaction for the whole batch (reports are small results)
        let rows: Vec<Map<String, Value>> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        report.records = crate::report::write(&ex.name, target, &staged.report_types, &rows, ex.batch_records).await?;
        report.requests = 1;
        return Ok(report);
    }
    let per = ex.batch_records.max(1);
    for (n, chunk) in lines.chunks(per).enumerate() {
        match &ex.kind {
            ServiceKind::Http { url, format } => {
                let ct = match format {
                    HttpFormat::Json => "application/json",
                    _ => "text/plain",
                };
                let key = format!("{}/{}", ex.batch_key, n + 1);
                post(client, &ex.name, url, ct, chunk.join("\n"), Some(&key), &mut report).await?;
                report.records += chunk.len() as u64;
            }
            ServiceKind::Tsdb { base, db, .. } => {
                let url = service_url(&ex.name, base, &["write"], &[("db", db), ("precision", "ns")])?;
                post(
                    client,
                    &ex.name,
                    &url,
                    "text/plain",
                    chunk.join("\n"),
                    None,
                    &mut report,
                )
                .await
                .map_err(|f| match f.status {
                    Some(404) => Error::new(
                        ErrorCode::ExportRepoNotFound,
                        format!(
                            "export {}: tsdb database {db:?} does not exist at {base}: {}",
                            ex.name,
                            f.error.message()
                        ),
                    ),
                    _ => f.error,
                })?;
                report.records += chunk.len() as u64;
            }
            ServiceKind::Report(_) => {}
            ServiceKind::Logdb {
                base,
                index,
                omit_invalid,
                ..
            } => {
                let url = service_url(&ex.name, base, &["_bulk"], &[])?;
                let mut body = String::new();
                for (i, doc) in chunk.iter().enumerate() {
                    // a retried _bulk or a rerun overwrites the same documents
                    let id = document_id(&ex.batch_key, n * per + i);
                    body.push_str(&serde_json::json!({"index": {"_index": index, "_id": id}}).to_string());
                    body.push('\n');
                    body.push_str(doc);
                    body.push('\n');
                }
                let answer = post(client, &ex.name, &url, "application/x-ndjson", body, None, &mut report).await?;
                let v: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
                let items = v.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
                let mut refused = 0u64;
                let mut first: Option<String> = None;
                for item in &items {
                    let op = item.as_object().and_then(|o| o.values().next());
                    if let Some(err) = op.and_then(|o| o.get("error")).filter(|e| !e.is_null()) {
                        refused += 1;
                        first.get_or_insert_with(|| err.to_string());
                    }
                }
                if refused > 0 && !omit_invalid {
                    return Err(Error::new(
                        ErrorCode::FieldTypeError,
                        format!(
                            "export {}: logdb refused {refused} of {} documents; the first: {} (set omitInvalid to skip them)",
                            ex.name,
                            chunk.len(),
                            first.unwrap_or_default()
                        ),
                    ));
                }
                report.invalid += refused;
                report.records += chunk.len() as u64 - refused;
            }
        }
    }
    if let ServiceKind::Logdb { base, index, .. } = &ex.kind
        && !lines.is_empty()
    {
        // one refresh at the end (not one per request): the batch's documents
        // are searchable when the batch ends
        let url = service_url(&ex.name, base, &[index, "_refresh"], &[])?;
        post(
            client,
            &ex.name,
            &url,
            "application/json",
            String::new(),
            None,
            &mut report,
        )
        .await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn text_push_format_escapes_and_leaves_out_nulls() {
        let k = ServiceKind::Http {
            url: String::new(),
            format: HttpFormat::Text,
        };
        let r = record(&k, &row(serde_json::json!({"a":1,"b":"x\ty\nz\\","c":null,"d":true}))).unwrap();
        assert_eq!(r.as_deref(), Some("a=1\tb=x\\ty\\nz\\\\\td=true"));
    }

    /// The line of research §4.2, from a row.
    #[test]
    fn line_protocol_matches_the_sdk_example() {
        let k = ServiceKind::Tsdb {
            base: String::new(),
            db: "d".into(),
            series: "cpu".into(),
            tags: vec![("zone".into(), "z".into()), ("region".into(), "r".into())],
            fields: vec![
                ("hits".into(), "h".into()),
                ("flow".into(), "f".into()),
                ("host".into(), "n".into()),
                ("gone".into(), "missing".into()),
            ],
            timestamp: Some("t".into()),
            batch_time_ns: 0,
            omit_invalid: false,
        };
        let r = record(
            &k,
            &row(serde_json::json!({"z":"z 1","r":"nb","h":12,"f":3.5,"n":"a \"b\"","missing":null,"t":"2016-06-21T12:00:00Z"})),
        )
        .unwrap();
        assert_eq!(
            r.as_deref(),
            Some("cpu,region=nb,zone=z\\ 1 flow=3.5,hits=12i,host=\"a \\\"b\\\"\" 1466510400000000000")
        );
        let e = record(&k, &row(serde_json::json!({"h":1,"t":"yesterday"}))).unwrap_err();
        assert!(e.contains("yesterday"), "{e}");
        assert_eq!(
            timestamp_ns(&serde_json::json!(1466510400)),
            Some(1_466_510_400_000_000_000)
        );
        assert_eq!(
            timestamp_ns(&serde_json::json!(1466510400000i64)),
            Some(1_466_510_400_000_000_000)
        );
    }

    #[test]
    fn mappings_need_a_hash() {
        assert_eq!(mapped_column("e", "f", "#a").unwrap(), "a");
        assert_eq!(mapped_column("e", "f", "a").unwrap_err().code().code(), "E18324");
        assert_eq!(mapped_column("e", "f", "#").unwrap_err().code().code(), "E18313");
    }
}
