//! The `/v2` routes (research pandora-api.md §1.2): each parses its body with
//! the model's parser, calls the engine and answers its output struct.

use crate::{App, MAX_FIELD_BYTES, json_response};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use pbatch_model::{
    BackfillList, BackfillRequest, BatchActionInput, DatasourceList, DatasourceSpec, Error, ErrorCode, Exists,
    ExportDesc, ExportList, ExportSpec, HistoryQuery, JobList, JobSpec, Keys, PlanRequest, RetrieveSchemaInput,
    StartJobInput, UpdateDatasourceInput, VariableList, VariableSpec, WorkflowSpec, parse_body,
};
use serde::Serialize;
use std::collections::HashMap;

/// An engine error answered with its code's status.
pub(crate) struct ApiError(pub(crate) Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

type ApiResult = Result<Response, ApiError>;

/// Path parameters; a path that does not decode (`%FF`) is `E18638` in JSON.
pub(crate) struct Name<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S> for Name<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Name(v))
            .map_err(|e| {
                ApiError(Error::new(
                    ErrorCode::IllegalPathCharacter,
                    format!("the URL path {:?} does not decode: {e}", parts.uri.path()),
                ))
            })
    }
}

/// The request body; a body that ends before its `Content-Length` is `E18004`.
pub(crate) struct Body(Bytes);

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_string();
        Bytes::from_request(req, state).await.map(Body).map_err(|e| {
            ApiError(Error::new(
                ErrorCode::InvalidContentLength,
                format!("the body does not match its Content-Length {declared}: {e}"),
            ))
        })
    }
}

fn ok() -> ApiResult {
    Ok(Response::new(axum::body::Body::empty()))
}

fn ok_json<T: Serialize>(v: &T) -> ApiResult {
    let v = serde_json::to_value(v).map_err(|e| Error::internal(format!("serializing the answer: {e}")))?;
    Ok(json_response(StatusCode::OK, &v))
}

/// Finds the first string longer than [`MAX_FIELD_BYTES`], naming its path.
fn long_field(v: &serde_json::Value, path: &str) -> Option<(String, usize)> {
    match v {
        serde_json::Value::String(s) if s.len() > MAX_FIELD_BYTES => Some((path.to_string(), s.len())),
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| long_field(x, &format!("{path}[{i}]"))),
        serde_json::Value::Object(o) => o.iter().find_map(|(k, x)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            long_field(x, &p).or_else(|| (k.len() > MAX_FIELD_BYTES).then(|| (p.clone(), k.len())))
        }),
        _ => None,
    }
}

/// Common checks of a needed body: not empty (`E18006`), JSON (`E18007`),
/// no over-long string (`E18008`).
fn check_body(what: &str, body: &[u8]) -> Result<(), Error> {
    let v: serde_json::Value = parse_body(what, body, &Keys::only(ErrorCode::InvalidRequestBody))?;
    if let Some((path, len)) = long_field(&v, "") {
        return Err(Error::new(
            ErrorCode::FieldTooLong,
            format!("{what}: field {path} has {len} bytes; at most {MAX_FIELD_BYTES} are accepted"),
        ));
    }
    Ok(())
}

fn exists(r: pbatch_model::Result<impl Sized>, missing: ErrorCode) -> ApiResult {
    match r {
        Ok(_) => ok_json(&Exists { exist: true }),
        Err(e) if e.code() == missing => ok_json(&Exists { exist: false }),
        Err(e) => Err(e.into()),
    }
}

/// `GET /metrics`: the engine's metrics, OpenMetrics text.
pub(crate) async fn metrics(State(app): State<App>) -> Response {
    metrics_response(&app.engine)
}

pub(crate) fn metrics_response(engine: &pbatch_engine::Engine) -> Response {
    let mut r = Response::new(axum::body::Body::from(engine.metrics_text()));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v2/datasources", get(list_datasources))
        .route(
            "/v2/datasources/{name}",
            post(create_datasource)
                .get(get_datasource)
                .put(update_datasource)
                .delete(delete_datasource),
        )
        .route("/v2/datasources/{name}/exists", get(datasource_exists))
        .route("/v2/schemas", post(retrieve_schema))
        .route("/v2/jobs", get(list_jobs))
        .route(
            "/v2/jobs/{name}",
            post(create_job).get(get_job).put(update_job).delete(delete_job),
        )
        .route("/v2/jobs/{name}/exists", get(job_exists))
        .route("/v2/jobs/{name}/actions/start", post(start_job))
        .route("/v2/jobs/{name}/actions/stop", post(stop_job))
        .route("/v2/jobs/{name}/history", get(history))
        .route("/v2/jobs/{job}/history/{run_id}/log", get(run_log))
        .route("/v2/jobs/{name}/actions/backfill", post(create_backfill))
        .route("/v2/jobs/{name}/actions/plan", post(plan_job))
        .route("/v2/jobs/{name}/backfills", get(list_backfills))
        .route("/v2/jobs/{job}/backfills/{id}", get(get_backfill))
        .route("/v2/jobs/{job}/backfills/{id}/stop", post(stop_backfill))
        .route("/v2/jobs/{job}/exports", get(list_exports))
        .route(
            "/v2/jobs/{job}/exports/{name}",
            post(create_export)
                .get(get_export)
                .put(update_export)
                .delete(delete_export),
        )
        .route("/v2/jobs/{job}/exports/{name}/exists", get(export_exists))
        .route("/v2/batch/actions/stop", post(stop_batch))
        .route("/v2/batch/actions/rerun", post(rerun_batch))
        .route("/v2/variables", get(list_variables))
        .route(
            "/v2/variables/{name}",
            post(create_variable)
                .get(get_variable)
                .put(update_variable)
                .delete(delete_variable),
        )
        .route("/v2/workflows", get(list_workflows))
        .route(
            "/v2/workflows/{name}",
            post(create_workflow)
                .get(get_workflow)
                .put(update_workflow)
                .delete(delete_workflow),
        )
        .route("/v2/workflows/{name}/status", get(workflow_status))
        .route("/v2/workflows/{name}/start", post(start_workflow))
        .route("/v2/workflows/{name}/stop", post(stop_workflow))
}

// ---- datasources ----

async fn list_datasources(State(app): State<App>) -> ApiResult {
    ok_json(&DatasourceList {
        datasources: app.engine.list_datasources()?,
    })
}

async fn create_datasource(State(app): State<App>, Name(name): Name<String>, body: Body) -> ApiResult {
    check_body("datasource", &body)?;
    let spec = DatasourceSpec::from_json(&body)?;
    app.engine.create_datasource(&name, &spec)?;
    ok()
}

async fn get_datasource(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    ok_json(&app.engine.datasource(&name)?)
}

async fn update_datasource(State(app): State<App>, Name(name): Name<String>, body: Body) -> ApiResult {
    check_body("datasource update", &body)?;
    let update: UpdateDatasourceInput = parse_body("datasource update", &body, &UpdateDatasourceInput::KEYS)?;
    app.engine.update_datasource(&name, &update)?;
    ok()
}

async fn delete_datasource(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    app.engine.delete_datasource(&name)?;
    ok()
}

async fn datasource_exists(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    exists(app.engine.datasource(&name), ErrorCode::DatasourceNotFound)
}

async fn retrieve_schema(State(app): State<App>, body: Body) -> ApiResult {
    check_body("schema retrieval", &body)?;
    let input = RetrieveSchemaInput::from_json(&body)?;
    ok_json(&app.engine.retrieve_schema(&input).await?)
}

// ---- jobs ----

async fn list_jobs(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let jobs = app.engine.list_jobs(
        q.get("srcDatasource").map(String::as_str),
        q.get("srcJob").map(String::as_str),
    )?;
    ok_json(&JobList { jobs })
}

async fn create_job(State(app): State<App>, Name(name): Name<String>, body: Body) -> ApiResult {
    check_body("job", &body)?;
    app.engine.create_job(&name, &JobSpec::from_json(&body)?)?;
    ok()
}

async fn get_job(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    let mut v = serde_json::to_value(app.engine.job(&name)?)
        .map_err(|e| Error::internal(format!("serializing job {name}: {e}")))?;
    v["workflow"] = serde_json::Value::String(String::new());
    Ok(json_response(StatusCode::OK, &v))
}

async fn update_job(State(app): State<App>, Name(name): Name<String>, body: Body) -> ApiResult {
    check_body("job", &body)?;
    app.engine.update_job(&name, &JobSpec::from_json(&body)?)?;
    ok()
}

async fn delete_job(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    app.engine.delete_job(&name)?;
    ok()
}

async fn job_exists(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    exists(app.engine.job(&name), ErrorCode::BatchJobNotFound)
}

async fn start_job(State(app): State<App>, Name(name): Name<String>, body: Body) -> ApiResult {
    // the SDK sends `{}` when there are no params; an empty body means the same
    let input: StartJobInput = if body.iter().all(u8::is_ascii_whitespace) {
        StartJobInput::default()
    } else {
        check_body("job start", &body)?;
        parse_body("job start", &body, &StartJobInput::KEYS)?
    };
    let params: Vec<(String, String)> = input
        .params
        .into_iter()
        .filter_map(|p| p.value.map(|v| (p.name, v)))
        .collect();
    app.engine.start_job(&name, &params)?;
    ok()
}

async fn stop_job(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    app.engine.stop_job(&name)?;
    ok()
}

fn query_int(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>, Error> {
    match q.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            Error::new(
                ErrorCode::InvalidRequestBody,
                format!("query parameter {key}={v:?} is not an integer"),
            )
        }),
    }
}

async fn history(
    State(app): State<App>,
    Name(name): Name<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let query = HistoryQuery {
        page: query_int(&q, "page")?,
        size: query_int(&q, "size")?,
        sort_by: q.get("sortBy").cloned().filter(|s| !s.is_empty()),
        status: q.get("status").cloned().filter(|s| !s.is_empty()),
        run_id: query_int(&q, "runId")?,
    };
    ok_json(&app.engine.history(&name, &query)?)
}

/// `GET /v2/jobs/<job>/history/<runId>/log` (a pbatch addition).
async fn run_log(State(app): State<App>, Name((job, run)): Name<(String, String)>) -> ApiResult {
    ok_json(&app.engine.run_log(&job, run_id_of(&job, &run)?)?)
}

/// A runId in a path (`E18624` when it is not a number).
pub(crate) fn run_id_of(job: &str, run: &str) -> Result<i64, Error> {
    run.parse().map_err(|_| {
        Error::new(
            ErrorCode::RunNotFound,
            format!("job {job} has no batch with runId {run:?} (runIds are numbers)"),
        )
    })
}

// ---- exports ----

async fn list_exports(State(app): State<App>, Name(job): Name<String>) -> ApiResult {
    let exports = app
        .engine
        .exports(&job)?
        .into_iter()
        .map(|(name, spec)| ExportDesc { name: Some(name), spec })
        .collect();
    ok_json(&ExportList { exports })
}

async fn create_export(State(app): State<App>, Name((job, name)): Name<(String, String)>, body: Body) -> ApiResult {
    check_body("export", &body)?;
    app.engine
        .create_export(&job, &name, &ExportSpec::from_json(&body, None)?)?;
    ok()
}

async fn get_export(State(app): State<App>, Name((job, name)): Name<(String, String)>) -> ApiResult {
    let desc = ExportDesc {
        name: None,
        spec: app.engine.export(&job, &name)?,
    };
    let mut v = serde_json::to_value(&desc).map_err(|e| Error::internal(format!("serializing export {name}: {e}")))?;
    v["workflow"] = serde_json::Value::String(String::new());
    Ok(json_response(StatusCode::OK, &v))
}

async fn update_export(State(app): State<App>, Name((job, name)): Name<(String, String)>, body: Body) -> ApiResult {
    check_body("export", &body)?;
    let existing = app.engine.export(&job, &name)?.kind();
    app.engine
        .update_export(&job, &name, &ExportSpec::from_json(&body, Some(&existing))?)?;
    ok()
}

async fn delete_export(State(app): State<App>, Name((job, name)): Name<(String, String)>) -> ApiResult {
    app.engine.delete_export(&job, &name)?;
    ok()
}

async fn export_exists(State(app): State<App>, Name((job, name)): Name<(String, String)>) -> ApiResult {
    app.engine.job(&job)?;
    exists(app.engine.export(&job, &name), ErrorCode::ExportNotFound)
}

// ---- dry runs (a pbatch addition) ----

async fn plan_job(State(app): State<App>, Name(name): Name<String>, body: Body) -> ApiResult {
    let req: PlanRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PlanRequest::default()
    } else {
        check_body("plan", &body)?;
        parse_body("plan", &body, &PlanRequest::KEYS)?
    };
    let at = match &req.batch_time {
        Some(t) => app.engine.parse_time("batchTime", t)?,
        None => chrono::Utc::now(),
    };
    let params: Vec<(String, String)> = req
        .params
        .into_iter()
        .filter_map(|p| p.value.map(|v| (p.name, v)))
        .collect();
    let preview = app.engine.dry_run(&name, &params, app.engine.zone().local(at)).await?;
    ok_json(&preview)
}

// ---- backfills (a pbatch addition) ----

async fn create_backfill(State(app): State<App>, Name(name): Name<String>, body: Body) -> ApiResult {
    check_body("backfill", &body)?;
    let req: BackfillRequest = parse_body("backfill", &body, &BackfillRequest::KEYS)?;
    ok_json(&app.engine.backfill(&name, &req)?)
}

async fn list_backfills(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    ok_json(&BackfillList {
        backfills: app.engine.backfills(&name)?,
    })
}

fn backfill_id(job: &str, id: &str) -> Result<i64, Error> {
    id.parse().map_err(|_| {
        Error::new(
            ErrorCode::BackfillNotFound,
            format!("job {job} has no backfill {id:?} (ids are numbers)"),
        )
    })
}

async fn get_backfill(State(app): State<App>, Name((job, id)): Name<(String, String)>) -> ApiResult {
    ok_json(&app.engine.backfill_status(&job, backfill_id(&job, &id)?)?)
}

async fn stop_backfill(State(app): State<App>, Name((job, id)): Name<(String, String)>) -> ApiResult {
    ok_json(&app.engine.stop_backfill(&job, backfill_id(&job, &id)?)?)
}

// ---- batches ----

async fn stop_batch(State(app): State<App>, body: Body) -> ApiResult {
    check_body("batch stop", &body)?;
    let input: BatchActionInput = parse_body("batch stop", &body, &BatchActionInput::KEYS)?;
    ok_json(&app.engine.stop_batch(&input.job_name, input.run_id.0).await?)
}

async fn rerun_batch(State(app): State<App>, body: Body) -> ApiResult {
    check_body("batch rerun", &body)?;
    let input: BatchActionInput = parse_body("batch rerun", &body, &BatchActionInput::KEYS)?;
    ok_json(&app.engine.rerun_batch(&input.job_name, input.run_id.0).await?)
}

// ---- variables (the SDK sends these without Content-Type) ----

async fn list_variables(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let kind = q.get("type").map(String::as_str).filter(|t| !t.is_empty());
    ok_json(&VariableList {
        variables: app.engine.list_variables(kind)?,
    })
}

fn variable_body(name: &str, body: &[u8]) -> Result<VariableSpec, Error> {
    check_body("variable", body)?;
    let mut spec: VariableSpec = parse_body("variable", body, &VariableSpec::KEYS)?;
    spec.name = name.to_string();
    Ok(spec)
}

async fn create_variable(State(app): State<App>, Name(name): Name<String>, body: Body) -> ApiResult {
    app.engine.create_variable(&name, &variable_body(&name, &body)?)?;
    ok()
}

async fn update_variable(State(app): State<App>, Name(name): Name<String>, body: Body) -> ApiResult {
    app.engine.update_variable(&name, &variable_body(&name, &body)?)?;
    ok()
}

async fn get_variable(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    ok_json(&app.engine.variable(&name)?)
}

async fn delete_variable(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    app.engine.delete_variable(&name)?;
    ok()
}

// ---- workflows ----

async fn list_workflows(State(app): State<App>) -> ApiResult {
    ok_json(&app.engine.list_workflows()?)
}

async fn create_workflow(State(app): State<App>, Name(name): Name<String>, body: Body) -> ApiResult {
    check_body("workflow", &body)?;
    let spec: WorkflowSpec = parse_body("workflow", &body, &WorkflowSpec::KEYS)?;
    app.engine.create_workflow(&name, &spec)?;
    ok()
}

async fn update_workflow(State(app): State<App>, Name(name): Name<String>, body: Body) -> ApiResult {
    check_body("workflow", &body)?;
    let spec: WorkflowSpec = parse_body("workflow", &body, &WorkflowSpec::KEYS)?;
    app.engine.update_workflow(&name, &spec)?;
    ok()
}

async fn get_workflow(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    ok_json(&app.engine.workflow(&name)?)
}

async fn delete_workflow(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    app.engine.delete_workflow(&name)?;
    ok()
}

async fn workflow_status(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    ok_json(&app.engine.workflow_status(&name)?)
}

async fn start_workflow(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    app.engine.start_workflow(&name)?;
    ok()
}

async fn stop_workflow(State(app): State<App>, Name(name): Name<String>) -> ApiResult {
    app.engine.stop_workflow(&name)?;
    ok()
}
