//! The console's read pages: jobs, a job, a run, datasources, variables.

use super::session::Session;
use crate::App;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{DOCTYPE, Markup, html};
use pbatch_engine::{RunRecord, RunStats};
use pbatch_model::{Error, HistoryQuery, JobHistory, RunStatus};
use std::collections::HashMap;

/// Batches a job's row shows.
const GRID: i64 = 25;
/// Rows of a job page's history table.
const PAGE: i64 = 25;

/// A whole page: header with navigation and who is signed in, `body` in
/// `main`. Without JS, a page with a live part refreshes itself every 5 s.
pub(crate) fn html_response(status: StatusCode, title: &str, session: Option<&Session>, body: Markup) -> Response {
    let live = body.0.contains("data-live=");
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " - pbatch" }
                link rel="stylesheet" href="/ui/static/app.css";
                @if session.is_some() { script src="/ui/static/app.js" defer {} }
                @if live { noscript { meta http-equiv="refresh" content="5"; } }
            }
            body {
                header {
                    a.home href="/ui/" { "pbatch" }
                    @if let Some(s) = session {
                        a href="/ui/" { "Jobs" }
                        a href="/ui/graph" { "Graph" }
                        a href="/ui/datasources" { "Datasources" }
                        a href="/ui/variables" { "Variables" }
                        span.who {
                            @if let Some(ak) = &s.ak {
                                span #who { (ak) }
                                form.inline method="post" action="/ui/logout" {
                                    input type="hidden" name="csrf" value=(s.csrf);
                                    button #signout type="submit" { "sign out" }
                                }
                            }
                        }
                    }
                }
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

/// An engine error as a page, with its code's status.
pub(crate) fn error_page(e: &Error, session: Option<&Session>) -> Response {
    let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    html_response(
        status,
        "error",
        session,
        html! { p.err #error { (e.to_string()) } p { a href="/ui/" { "back to the jobs" } } },
    )
}

pub(crate) fn status(s: RunStatus) -> Markup {
    html! { span class=(format!("status {s}")) { (s.to_string()) } }
}

pub(crate) fn run_url(job: &str, run_id: i64) -> String {
    format!("/ui/jobs/{job}/runs/{run_id}")
}

/// A POST button carrying the session's CSRF token; `back` is where the
/// action returns to.
pub(crate) fn action(s: &Session, url: &str, label: &str, id: &str, back: &str) -> Markup {
    html! {
        form.inline method="post" action=(url) {
            input type="hidden" name="csrf" value=(s.csrf);
            input type="hidden" name="back" value=(back);
            button.act type="submit" id=(id) { (label) }
        }
    }
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
        pre #sql { @for (var, text) in parts { @if var { mark { (text) } } @else { (text) } } }
    }
}

/// `1234567` -> `1.2 MB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The action buttons of one batch: stop while it is in flight, rerun once ended.
fn run_actions(s: &Session, job: &str, r: &JobHistory, back: &str) -> Markup {
    let base = run_url(job, r.run_id);
    html! {
        @if r.status.is_final() {
            (action(s, &format!("{base}/rerun"), "rerun", &format!("rerun-{}", r.run_id), back))
        } @else {
            (action(s, &format!("{base}/stop"), "stop", &format!("stop-{}", r.run_id), back))
        }
    }
}

/// `GET /ui/`: one row per job with its last batches as cells.
pub(crate) async fn jobs(State(app): State<App>, Extension(s): Extension<Session>) -> Response {
    let jobs = match app.engine.list_jobs(None, None) {
        Ok(j) => j,
        Err(e) => return error_page(&e, Some(&s)),
    };
    let mut rows = Vec::new();
    for j in &jobs {
        let q = HistoryQuery {
            size: Some(GRID),
            sort_by: Some("-runId".into()),
            ..Default::default()
        };
        let mut runs: Vec<JobHistory> = app.engine.history(&j.name, &q).map(|h| h.history).unwrap_or_default();
        runs.reverse(); // oldest left, as Airflow's grid
        let schedule = app.engine.schedule(&j.name).ok();
        rows.push((j, runs, schedule));
    }
    let body = html! {
        h2 { "Jobs" }
        div data-live="jobs" {
            @if jobs.is_empty() { p { "No jobs yet: create them with the API or " code { "pbatch apply <spec-dir>" } "." } }
            @else {
                table #jobs {
                    tr { th { "job" } th { "scheduler" } th { "next due" } th { "state" } th { "last " (GRID) " batches" } th {} }
                    @for (j, runs, schedule) in &rows {
                        @let started = schedule.as_ref().is_some_and(|s| s.enabled);
                        tr id=(format!("job-{}", j.name)) {
                            td { a href=(format!("/ui/jobs/{}", j.name)) { (j.name) } }
                            td { (j.spec.scheduler_type().to_string()) }
                            td { (schedule.as_ref().and_then(|s| s.next).map(|t| t.to_rfc3339()).unwrap_or_default()) }
                            td.state { (if started { "started" } else { "stopped" }) }
                            td {
                                div.grid {
                                    @for r in runs {
                                        a class=(format!("cell {}", r.status)) href=(run_url(&j.name, r.run_id))
                                            data-run=(r.run_id) data-status=(r.status.to_string())
                                            title=(format!("run {} {} {}", r.run_id, r.batch_time, r.status)) {}
                                    }
                                }
                            }
                            td {
                                @if started {
                                    (action(&s, &format!("/ui/jobs/{}/stop", j.name), "stop", &format!("stop-job-{}", j.name), "/ui/"))
                                } @else {
                                    (action(&s, &format!("/ui/jobs/{}/start", j.name), "start", &format!("start-job-{}", j.name), "/ui/"))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, "jobs", Some(&s), body)
}

/// `GET /ui/jobs/<job>`: the spec, the exports and the history table
/// (`?page=`, `?status=` as the API takes them).
pub(crate) async fn job(
    State(app): State<App>,
    Extension(s): Extension<Session>,
    crate::routes::Name(name): crate::routes::Name<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let spec = match app.engine.job(&name) {
        Ok(s) => s,
        Err(e) => return error_page(&e, Some(&s)),
    };
    let exports = app.engine.exports(&name).unwrap_or_default();
    let page = q.get("page").and_then(|p| p.parse::<i64>().ok()).unwrap_or(1).max(1);
    let filter = q.get("status").cloned().filter(|s| !s.is_empty());
    let hq = HistoryQuery {
        page: Some(page),
        size: Some(PAGE),
        sort_by: Some("-runId".into()),
        status: filter.clone(),
        run_id: None,
    };
    let h = match app.engine.history(&name, &hq) {
        Ok(h) => h,
        Err(e) => return error_page(&e, Some(&s)),
    };
    let stats: HashMap<i64, RunStats> = app
        .engine
        .runs(&name)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| h.history.iter().any(|x| x.run_id == r.run_id))
        .filter_map(|r| Some((r.run_id, r.stats?)))
        .collect();
    let started = app.engine.schedule(&name).is_ok_and(|s| s.enabled);
    let pages = (h.total + PAGE - 1) / PAGE;
    let here = match &filter {
        Some(f) => format!("/ui/jobs/{name}?page={page}&status={f}"),
        None => format!("/ui/jobs/{name}?page={page}"),
    };
    let pretty = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default();
    let body = html! {
        h2 {
            "Job " (name) " "
            @if started {
                (action(&s, &format!("/ui/jobs/{name}/stop"), "stop job", "stop-job", &here))
            } @else {
                (action(&s, &format!("/ui/jobs/{name}/start"), "start job", "start-job", &here))
            }
        }
        h3 { "SQL" }
        (highlight(&spec.computation.code))
        h3 { "Srcs" }
        table #srcs {
            tr { th { "table" } th { "type" } th { "name" } th { "fileFilter" } }
            @for src in &spec.srcs {
                tr {
                    td { (src.table_name) }
                    td { (src.ty.as_str()) }
                    td {
                        @if src.ty == pbatch_model::SrcType::Job { a href=(format!("/ui/jobs/{}", src.name)) { (src.name) } }
                        @else { a href=(format!("/ui/datasources#ds-{}", src.name)) { (src.name) } }
                    }
                    td { (src.file_filter) }
                }
            }
        }
        h3 { "Scheduler, container, params" }
        pre { (pretty(serde_json::json!({
            "scheduler": spec.scheduler, "container": spec.container, "params": spec.params, "retries": spec.retries,
        }))) }
        h3 { "Exports" }
        @if exports.is_empty() { p { "none" } }
        @for (e, x) in &exports {
            h4 id=(format!("export-{e}")) { (e) " (" (x.kind().as_str()) ")" }
            pre { (pretty(serde_json::to_value(x).unwrap_or_default())) }
        }
        h3 { "History" }
        form #filter method="get" action=(format!("/ui/jobs/{name}")) {
            label { "status "
                select name="status" {
                    option value="" selected[filter.is_none()] { "any" }
                    @for st in ["Ready", "Running", "Successful", "Failed", "Canceled", "Cancelling", "Restarting"] {
                        option value=(st) selected[filter.as_deref() == Some(st)] { (st) }
                    }
                }
            }
            " " button type="submit" { "filter" }
        }
        div data-live="history" {
            p { (h.total) " batches" @if let Some(f) = &filter { " with status " (f) } }
            table #history {
                tr {
                    th { "runId" } th { "batchTime" } th { "status" } th.num { "duration" } th.num { "rows in" }
                    th.num { "rows out" } th.num { "invalid" } th.num { "reruns" } th { "message" } th {}
                }
                @for r in &h.history {
                    @let st = stats.get(&r.run_id);
                    tr id=(format!("run-{}", r.run_id)) {
                        td { a href=(run_url(&name, r.run_id)) { (r.run_id) } }
                        td { (r.batch_time) }
                        td.status { (status(r.status)) }
                        td.num { (r.duration) " s" }
                        td.num.rows-in { @if let Some(st) = st { (st.rows_read) } }
                        td.num.rows-out { @if let Some(st) = st { (st.rows_out) } }
                        td.num { @if let Some(st) = st { (st.invalid_skipped) } }
                        td.num.reruns { (r.rerun_count) }
                        td { (r.message) }
                        td { (run_actions(&s, &name, r, &here)) }
                    }
                }
            }
            @if pages > 1 {
                p.pages {
                    @for p in 1..=pages {
                        @if p == page { b { (p) } " " } @else {
                            a href=(match &filter {
                                Some(f) => format!("/ui/jobs/{name}?page={p}&status={f}"),
                                None => format!("/ui/jobs/{name}?page={p}"),
                            }) { (p) } " "
                        }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, &name, Some(&s), body)
}

/// The error code a Failed batch's message starts with (`E18338: ...`).
fn error_code(message: &str) -> Option<&str> {
    let code = message.split(':').next()?;
    (code.len() == 6 && code.starts_with('E') && code[1..].bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// `GET /ui/jobs/<job>/runs/<runId>`: the batch's status timeline, what it
/// read and committed, its invalid records, its error, and its log.
pub(crate) async fn run(
    State(app): State<App>,
    Extension(s): Extension<Session>,
    crate::routes::Name((name, run)): crate::routes::Name<(String, String)>,
) -> Response {
    let run_id = match crate::routes::run_id_of(&name, &run) {
        Ok(id) => id,
        Err(e) => return error_page(&e, Some(&s)),
    };
    let record: Option<RunRecord> = match app.engine.run(&name, run_id) {
        Ok(r) => r,
        Err(e) => return error_page(&e, Some(&s)),
    };
    let Some(record) = record else {
        return error_page(
            &Error::new(
                pbatch_model::ErrorCode::RunNotFound,
                format!("job {name} has no batch with runId {run_id}"),
            ),
            Some(&s),
        );
    };
    let r = app.engine.history_item(&record);
    let log = app.engine.run_log(&name, run_id).unwrap_or_default();
    let here = run_url(&name, run_id);
    let body = html! {
        h2 { a href=(format!("/ui/jobs/{name}")) { (name) } " run " (run_id) " " (run_actions(&s, &name, &r, &here)) }
        div data-live="run" {
            div.timeline #timeline {
                span class="step Ready" { "Ready" span.at { (r.batch_time) } }
                @if r.status != RunStatus::Ready {
                    span.arrow { "→" }
                    span class="step Running" {
                        @if r.rerun_count > 0 { "Running (rerun " (r.rerun_count) ")" } @else { "Running" }
                        span.at { (r.start_time) }
                    }
                }
                @if r.status.is_final() || r.status == RunStatus::Cancelling {
                    span.arrow { "→" }
                    span class=(format!("step {}", r.status)) #final-status {
                        (r.status.to_string())
                        span.at { (r.end_time.clone().unwrap_or_default()) }
                    }
                }
            }
            table #summary {
                tr { th { "status" } td #status { (status(r.status)) } }
                tr { th { "batchTime" } td { (r.batch_time) } }
                tr { th { "duration" } td { (r.duration) " s" } }
                tr { th { "reruns" } td #reruns { (r.rerun_count) } }
                @if let Some(st) = &record.stats {
                    tr { th { "files read" } td #files-read { (st.files_read) " files, " (bytes(st.bytes_read)) } }
                    tr { th { "rows in" } td #rows-in { (st.rows_read) } }
                    tr { th { "rows out" } td #rows-out { (st.rows_out) } }
                    tr { th { "invalid records" } td #invalid { (st.invalid_skipped) } }
                    @if !st.placement.is_empty() {
                        tr { th { "ran on" } td #placement { (st.placement) } }
                    }
                }
                @if r.status == RunStatus::Failed {
                    @if let Some(code) = error_code(&r.message) { tr { th { "error code" } td.err #error-code { (code) } } }
                }
                tr { th { "message" } td #message class=(if r.status == RunStatus::Failed { "err" } else { "" }) { (r.message) } }
            }
            @if let Some(st) = &record.stats {
                @if !st.exports.is_empty() {
                    h3 { "Committed" }
                    table #exports {
                        tr { th { "export" } th.num { "files" } th.num { "rows" } th.num { "bytes" } th { "keys" } }
                        @for e in &st.exports {
                            tr {
                                td { (e.export) }
                                td.num { (e.files) }
                                td.num { (e.rows) }
                                td.num { (bytes(e.bytes)) }
                                td.keys {
                                    @if e.skipped { "ignore: output was there, nothing written" }
                                    @for k in &e.keys { span.key { (k) } br; }
                                    @if e.files > e.keys.len() { "(and " (e.files - e.keys.len()) " more)" }
                                }
                            }
                        }
                    }
                }
                @if !st.invalid_samples.is_empty() {
                    h3 { "Invalid records (first " (st.invalid_samples.len()) " of " (st.invalid_skipped) ")" }
                    ul #invalid-samples { @for x in &st.invalid_samples { li { (x) } } }
                }
            }
            h3 { "Log" }
            @if log.attempts.is_empty() { p { "No log kept for this batch." } }
            @for a in log.attempts.iter().rev() {
                h4 { @if a.rerun_count == 0 { "first attempt" } @else { "rerun " (a.rerun_count) } }
                @if a.dropped > 0 { p { "(" (a.dropped) " earlier lines left out)" } }
                div.log { @for l in &a.lines { (l) "\n" } }
            }
        }
    };
    html_response(StatusCode::OK, &format!("{name} run {run_id}"), Some(&s), body)
}

/// `GET /ui/datasources`: each datasource with its source and schema.
pub(crate) async fn datasources(State(app): State<App>, Extension(s): Extension<Session>) -> Response {
    let list = match app.engine.list_datasources() {
        Ok(l) => l,
        Err(e) => return error_page(&e, Some(&s)),
    };
    let body = html! {
        h2 { "Datasources" }
        @if list.is_empty() { p { "No datasources yet." } }
        @for d in &list {
            section.ds id=(format!("ds-{}", d.name)) {
                h3 { (d.name) " (" (d.spec.source.kind().as_str()) ")"
                    @if !d.spec.workflow.is_empty() { " in workflow " (d.spec.workflow) } }
                pre { (serde_json::to_string_pretty(&d.spec.source).unwrap_or_default()) }
                @if d.spec.schema.is_empty() { p.hint { "no schema" } } @else {
                    table.schema {
                        tr { th { "key" } th { "valtype" } th { "required" } }
                        @for f in &d.spec.schema {
                            tr {
                                td { (f.key) }
                                td { (serde_json::to_value(&f.valtype).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) }
                                td { (if f.required { "yes" } else { "" }) }
                            }
                        }
                    }
                }
                p { a href=(format!("/ui/graph#ds-{}", d.name)) { "jobs reading it" } }
            }
        }
    };
    html_response(StatusCode::OK, "datasources", Some(&s), body)
}

/// `GET /ui/variables`: system and user variables with their value now.
pub(crate) async fn variables(State(app): State<App>, Extension(s): Extension<Session>) -> Response {
    let list = match app.engine.variable_values() {
        Ok(l) => l,
        Err(e) => return error_page(&e, Some(&s)),
    };
    // system variables by name (list_variables has them first)
    let system: std::collections::HashSet<String> = app
        .engine
        .list_variables(Some("system"))
        .map(|v| v.into_iter().map(|v| v.name).collect())
        .unwrap_or_default();
    let body = html! {
        h2 { "Variables" }
        p.hint { "Values are what " code { "$(name)" } " expands to in a batch starting now." }
        table #variables {
            tr { th { "name" } th { "kind" } th { "type" } th { "value" } th { "format" } th { "now" } }
            @for (v, now) in &list {
                tr id=(format!("var-{}", v.name)) {
                    td { (v.name) }
                    td.kind { (if system.contains(&v.name) { "system" } else { "user" }) }
                    td { (v.ty.as_str()) }
                    td { code { (v.value) } }
                    td { code { (v.format) } }
                    td.now {
                        @match now { Ok(x) => code { (x) }, Err(e) => span.err { (e) } }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, "variables", Some(&s), body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn variables_are_marked_and_text_is_escaped() {
        let m = super::highlight("SELECT '<b>' FROM t WHERE d = '$(date)' AND h = $(hour)").into_string();
        assert_eq!(
            m,
            "<pre id=\"sql\">SELECT '&lt;b&gt;' FROM t WHERE d = '<mark>$(date)</mark>' AND h = <mark>$(hour)</mark></pre>"
        );
    }

    #[test]
    fn sizes_and_error_codes() {
        assert_eq!(super::bytes(999), "999 B");
        assert_eq!(super::bytes(1234567), "1.2 MB");
        assert_eq!(super::error_code("E18338: the store did not answer"), Some("E18338"));
        assert_eq!(super::error_code("read 3 rows"), None);
        assert_eq!(super::error_code("Exxxxx: no"), None);
    }
}
