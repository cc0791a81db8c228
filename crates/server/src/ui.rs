//! The web console at `/ui/`, first slice: read-only pages for jobs, a
//! job and a run (issue 18; sign-in and the action buttons come next).
//!
//! HTML is rendered on the server with maud: the templates are Rust, so a
//! field that does not exist or a value not escaped fails to compile, and
//! there are no template files to ship and no JS build step. The stylesheet
//! is embedded; a page refreshes itself every 5 s (a meta refresh, no JS)
//! while any of its batches is in flight. The console answers on the API's
//! listener under the API's rules, so without `[server] keys` it serves
//! loopback only.

use crate::App;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use pbatch_model::{Error, HistoryQuery, JobHistory, RunStatus};
use std::collections::HashMap;

/// Batches a job's row shows.
const GRID: i64 = 25;
/// Rows of a job page's history table.
const PAGE: i64 = 25;

const CSS: &str = r#"
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}
header{background:#223;color:#fff;padding:8px 16px}header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:16px}table{border-collapse:collapse}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.grid{display:flex;gap:2px}.cell{display:inline-block;width:12px;height:12px;border-radius:2px;background:#ccc}
.Successful{background:#3a3}.Failed{background:#c33}.Canceled{background:#999}.Running,.Restarting{background:#39f}
.Ready{background:#dd3}.Cancelling{background:#f93}
span.status{padding:1px 6px;border-radius:3px;color:#fff}pre{background:#f6f6f6;padding:8px;overflow:auto}
mark{background:#fe9}.log{font:12px/1.3 monospace;white-space:pre-wrap}.err{color:#c33}
"#;

fn html_response(status: StatusCode, title: &str, refresh: bool, body: Markup) -> Response {
    let page = html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                @if refresh { meta http-equiv="refresh" content="5"; }
                title { (title) " - pbatch" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header { a href="/ui/" { "pbatch" } " / " (title) }
                main { (body) }
            }
        }
    };
    let mut r = Response::new(axum::body::Body::from(page.into_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn error_page(e: &Error) -> Response {
    let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    html_response(status, "error", false, html! { p.err { (e.to_string()) } })
}

fn in_flight(s: RunStatus) -> bool {
    !s.is_final()
}

fn status(s: RunStatus) -> Markup {
    html! { span class=(format!("status {s}")) { (s.to_string()) } }
}

fn run_url(job: &str, run_id: i64) -> String {
    format!("/ui/jobs/{job}/runs/{run_id}")
}

/// The SQL with each `$(variable)` marked.
fn highlight(sql: &str) -> Markup {
    let mut parts = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find("$(") {
        let Some(len) = rest[start..].find(')') else { break };
        parts.push((false, &rest[..start]));
        parts.push((true, &rest[start..start + len + 1]));
        rest = &rest[start + len + 1..];
    }
    parts.push((false, rest));
    html! {
        pre { @for (var, text) in parts { @if var { mark { (text) } } @else { (text) } } }
    }
}

/// `GET /ui/`: one row per job with its last batches as cells.
pub(crate) async fn jobs(State(app): State<App>) -> Response {
    let jobs = match app.engine.list_jobs(None, None) {
        Ok(j) => j,
        Err(e) => return error_page(&e),
    };
    let mut refresh = false;
    let mut rows = Vec::new();
    for j in &jobs {
        let q = HistoryQuery {
            size: Some(GRID),
            sort_by: Some("-runId".into()),
            ..Default::default()
        };
        let mut runs: Vec<JobHistory> = app.engine.history(&j.name, &q).map(|h| h.history).unwrap_or_default();
        runs.reverse(); // oldest left, as Airflow's grid
        refresh |= runs.iter().any(|r| in_flight(r.status));
        let schedule = app.engine.schedule(&j.name).ok();
        rows.push((j, runs, schedule));
    }
    let body = html! {
        h2 { "Jobs" }
        @if jobs.is_empty() { p { "No jobs yet: create them with the API or " code { "pbatch apply <spec-dir>" } "." } }
        @else {
            table {
                tr { th { "job" } th { "scheduler" } th { "next due" } th { "state" } th { "last " (GRID) " batches" } }
                @for (j, runs, schedule) in &rows {
                    tr {
                        td { a href=(format!("/ui/jobs/{}", j.name)) { (j.name) } }
                        td { (j.spec.scheduler_type().to_string()) }
                        td { (schedule.as_ref().and_then(|s| s.next).map(|t| t.to_rfc3339()).unwrap_or_default()) }
                        td { (if schedule.as_ref().is_some_and(|s| s.enabled) { "started" } else { "stopped" }) }
                        td {
                            div.grid {
                                @for r in runs {
                                    a class=(format!("cell {}", r.status)) href=(run_url(&j.name, r.run_id))
                                        title=(format!("run {} {} {}", r.run_id, r.batch_time, r.status)) {}
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, "jobs", refresh, body)
}

/// `GET /ui/jobs/<job>`: the spec, the exports and the history table
/// (`?page=`, `?status=` as the API takes them).
pub(crate) async fn job(
    State(app): State<App>,
    crate::routes::Name(name): crate::routes::Name<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let spec = match app.engine.job(&name) {
        Ok(s) => s,
        Err(e) => return error_page(&e),
    };
    let exports = app.engine.exports(&name).unwrap_or_default();
    let page = q.get("page").and_then(|p| p.parse::<i64>().ok()).unwrap_or(1).max(1);
    let hq = HistoryQuery {
        page: Some(page),
        size: Some(PAGE),
        sort_by: Some("-runId".into()),
        status: q.get("status").cloned().filter(|s| !s.is_empty()),
        run_id: None,
    };
    let h = match app.engine.history(&name, &hq) {
        Ok(h) => h,
        Err(e) => return error_page(&e),
    };
    let refresh = h.history.iter().any(|r| in_flight(r.status));
    let pages = (h.total + PAGE - 1) / PAGE;
    let pretty = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default();
    let body = html! {
        h2 { "Job " (name) }
        h3 { "SQL" }
        (highlight(&spec.computation.code))
        h3 { "Srcs" }
        table {
            tr { th { "table" } th { "type" } th { "name" } th { "fileFilter" } }
            @for s in &spec.srcs { tr { td { (s.table_name) } td { (s.ty.as_str()) } td { (s.name) } td { (s.file_filter) } } }
        }
        h3 { "Scheduler, container, params" }
        pre { (pretty(serde_json::json!({
            "scheduler": spec.scheduler, "container": spec.container, "params": spec.params, "retries": spec.retries,
        }))) }
        h3 { "Exports" }
        @if exports.is_empty() { p { "none" } }
        @for (e, x) in &exports {
            h4 { (e) " (" (x.kind().as_str()) ")" }
            pre { (pretty(serde_json::to_value(x).unwrap_or_default())) }
        }
        h3 { "History (" (h.total) " batches)" }
        table {
            tr { th { "runId" } th { "batchTime" } th { "status" } th { "duration" } th { "reruns" } th { "message" } }
            @for r in &h.history {
                tr {
                    td { a href=(run_url(&name, r.run_id)) { (r.run_id) } }
                    td { (r.batch_time) }
                    td { (status(r.status)) }
                    td { (r.duration) " s" }
                    td { (r.rerun_count) }
                    td { (r.message) }
                }
            }
        }
        @if pages > 1 {
            p {
                @for p in 1..=pages {
                    @if p == page { b { (p) } " " } @else { a href=(format!("/ui/jobs/{name}?page={p}")) { (p) } " " }
                }
            }
        }
    };
    html_response(StatusCode::OK, &name, refresh, body)
}

/// `GET /ui/jobs/<job>/runs/<runId>`: the batch's status, times, message
/// (rows, files, invalid records, error with its code) and its log.
pub(crate) async fn run(
    State(app): State<App>,
    crate::routes::Name((name, run)): crate::routes::Name<(String, String)>,
) -> Response {
    let run_id = match crate::routes::run_id_of(&name, &run) {
        Ok(id) => id,
        Err(e) => return error_page(&e),
    };
    let q = HistoryQuery {
        run_id: Some(run_id),
        ..Default::default()
    };
    let r = match app.engine.history(&name, &q).map(|h| h.history.into_iter().next()) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error_page(&Error::new(
                pbatch_model::ErrorCode::RunNotFound,
                format!("job {name} has no batch with runId {run_id}"),
            ));
        }
        Err(e) => return error_page(&e),
    };
    let log = app.engine.run_log(&name, run_id).unwrap_or_default();
    let body = html! {
        h2 { a href=(format!("/ui/jobs/{name}")) { (name) } " run " (run_id) " " (status(r.status)) }
        table {
            tr { th { "batchTime" } td { (r.batch_time) } }
            tr { th { "started" } td { (r.start_time) } }
            tr { th { "ended" } td { (r.end_time.clone().unwrap_or_default()) } }
            tr { th { "duration" } td { (r.duration) " s" } }
            tr { th { "reruns" } td { (r.rerun_count) } }
            tr { th { "message" } td class=(if r.status == RunStatus::Failed { "err" } else { "" }) { (r.message) } }
        }
        h3 { "Log" }
        @if log.attempts.is_empty() { p { "No log kept for this batch." } }
        @for a in log.attempts.iter().rev() {
            h4 { @if a.rerun_count == 0 { "first attempt" } @else { "rerun " (a.rerun_count) } }
            @if a.dropped > 0 { p { "(" (a.dropped) " earlier lines left out)" } }
            div.log { @for l in &a.lines { (l) "\n" } }
        }
    };
    html_response(
        StatusCode::OK,
        &format!("{name} run {run_id}"),
        in_flight(r.status),
        body,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn variables_are_marked_and_text_is_escaped() {
        let m = super::highlight("SELECT '<b>' FROM t WHERE d = '$(date)' AND h = $(hour)").into_string();
        assert_eq!(
            m,
            "<pre>SELECT '&lt;b&gt;' FROM t WHERE d = '<mark>$(date)</mark>' AND h = <mark>$(hour)</mark></pre>"
        );
    }
}
