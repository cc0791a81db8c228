//! What an export would do in a batch, found without writing anything
//! (`pbatch plan`, `POST /v2/jobs/<job>/actions/plan`).

use crate::commit::existing_of;
use crate::export::{ServiceUrls, Targets, file_export, service_export};
use crate::service::ServiceKind;
use crate::{Error, Result};
use pbatch_magic::Expander;
use pbatch_model::{ErrorCode, ExportSpec, SaveMode};
use serde::Serialize;

/// What one export of a batch would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportPreview {
    /// The export's name.
    pub export: String,
    /// `kodo`, `hdfs`, `http`, `logdb`, `tsdb` or `report`.
    pub kind: String,
    /// Where: the bucket (or NameNode) and the key prefix, or the service's URL.
    pub target: String,
    /// File exports: the keys it would write (`<col>=<value>/` stands for a
    /// partition folder); service exports: the mapping, one line each.
    pub writes: Vec<String>,
    /// Keys there now that its saveMode acts on.
    pub existing: Vec<String>,
    /// In words: "writes 1 file", "would replace 4 files", ...
    pub effect: String,
    /// The error the batch would fail with, if it would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Keys of [`ExportPreview::existing`] shown at most.
const SHOWN: usize = 20;

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A password in a URL, hidden.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// What export `name` of a batch of `job` (variables at `expander`) would
/// do: file exports list their target, so a bucket that cannot be reached
/// fails here as the batch would.
pub async fn preview_export(
    job: &str,
    name: &str,
    spec: &ExportSpec,
    expander: &Expander,
    manual: bool,
    targets: &dyn Targets,
    urls: &ServiceUrls,
) -> Result<ExportPreview> {
    let kind = spec.kind().as_str().to_string();
    if spec.file_options().is_none() {
        let service = service_export(job, name, spec, expander, urls)?;
        let (target, writes) = describe(&service.kind);
        return Ok(ExportPreview {
            export: name.to_string(),
            kind,
            target,
            writes,
            existing: Vec::new(),
            effect: "sends every result row".to_string(),
            error: None,
        });
    }
    let export = file_export(name, spec, expander, manual, targets)?;
    let append = export.save_mode == SaveMode::Append;
    let n = export.file_count;
    let dir = export
        .partition_by
        .iter()
        .map(|c| format!("{c}=<value>/"))
        .collect::<String>();
    let writes: Vec<String> = (0..n)
        .map(|i| export.naming.key(&dir, i, n, "<batch token>", append))
        .collect();
    let found = existing_of(&export).await?;
    let files = if export.partition_by.is_empty() {
        plural(n, "file")
    } else {
        format!("{} per partition folder", plural(n, "file"))
    };
    let mut error = None;
    let effect = match &export.save_mode {
        _ if found.is_empty() => format!("writes {files}"),
        SaveMode::Overwrite | SaveMode::Other(_) => format!(
            "writes {files}, and would replace {} there now",
            plural(found.len(), "file")
        ),
        SaveMode::Append => format!("writes {files} beside {} there now", plural(found.len(), "file")),
        SaveMode::Ignore => format!(
            "would write nothing: saveMode ignore and {} exist",
            plural(found.len(), "file")
        ),
        SaveMode::ErrorIfExists => {
            let e = Error::new(
                ErrorCode::ExportFailed,
                format!(
                    "export {name}: saveMode errorIfExists and {} already exists in {}",
                    found[0],
                    export.target.label()
                ),
            );
            error = Some(e.to_string());
            format!("would fail: errorIfExists found {}", found[0])
        }
    };
    let effect = match &export.retention {
        Some(r) => format!("{effect}; retention deletes outputs older than {} days", r.days),
        None => effect,
    };
    Ok(ExportPreview {
        export: name.to_string(),
        kind,
        target: format!("{}/{}", export.target.label(), export.naming.scope()),
        writes,
        existing: found.into_iter().take(SHOWN).collect(),
        effect,
        error,
    })
}

/// A service export's URL and its mapping, one line per field.
fn describe(kind: &ServiceKind) -> (String, Vec<String>) {
    let pairs = |p: &[(String, String)]| {
        p.iter()
            .map(|(k, c)| format!("{k} <- {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        ServiceKind::Http { url, format } => (redact(url), vec![format!("POST, format {}", format.as_str())]),
        ServiceKind::Tsdb {
            base,
            db,
            series,
            tags,
            fields,
            timestamp,
            ..
        } => (
            format!("{}/write?db={db}", redact(base.trim_end_matches('/'))),
            vec![
                format!("measurement {series}"),
                format!("tags: {}", pairs(tags)),
                format!("fields: {}", pairs(fields)),
                format!("time: {}", timestamp.as_deref().unwrap_or("the batch time")),
            ],
        ),
        ServiceKind::Logdb { base, index, doc, .. } => (
            format!("{}/{index}/_bulk", redact(base.trim_end_matches('/'))),
            vec![format!("document: {}", serde_json::Value::Object(doc.clone()))],
        ),
        ServiceKind::Report(r) => (
            format!("{} database {} table {}", redact(&r.url), r.db, r.table),
            vec![
                format!("columns: {}", pairs(&r.columns)),
                format!("saveMode {}", if r.overwrite { "overwrite" } else { "append" }),
            ],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("http://h:8086"), "http://h:8086");
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
    }
}
