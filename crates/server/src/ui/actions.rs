//! The console's actions: each a POST with the session's CSRF token, each
//! calling the engine as the API route of the same name does, then going
//! back to the page it came from (`back`) or showing the error.

use super::pages::error_page;
use super::session::{Session, local_target, refused};
use crate::App;
use crate::routes::{Name, run_id_of};
use axum::Extension;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use pbatch_model::Result;

#[derive(serde::Deserialize)]
pub(crate) struct ActionForm {
    csrf: String,
    back: Option<String>,
}

/// Checks the token, runs `f`, and goes back (or shows its error).
async fn act<F>(s: &Session, form: &ActionForm, what: &str, f: F) -> Response
where
    F: std::future::Future<Output = Result<()>>,
{
    if !s.csrf_ok(&form.csrf) {
        return refused(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is not this session's: reload the page",
        );
    }
    match f.await {
        Ok(()) => {
            tracing::info!(who = s.ak.as_deref().unwrap_or("loopback"), what, "console action");
            Redirect::to(&local_target(form.back.as_deref())).into_response()
        }
        Err(e) => error_page(&e, Some(s)),
    }
}

/// `POST /ui/jobs/<job>/start`: as `POST /v2/jobs/<job>/actions/start` with no params.
pub(crate) async fn start_job(
    State(app): State<App>,
    Extension(s): Extension<Session>,
    Name(name): Name<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    act(&s, &form, &format!("start job {name}"), async {
        app.engine.start_job(&name, &[])
    })
    .await
}

/// `POST /ui/jobs/<job>/stop`.
pub(crate) async fn stop_job(
    State(app): State<App>,
    Extension(s): Extension<Session>,
    Name(name): Name<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    act(&s, &form, &format!("stop job {name}"), async {
        app.engine.stop_job(&name)
    })
    .await
}

/// `POST /ui/jobs/<job>/runs/<runId>/stop`: as `POST /v2/batch/actions/stop`.
pub(crate) async fn stop_batch(
    State(app): State<App>,
    Extension(s): Extension<Session>,
    Name((job, run)): Name<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    act(&s, &form, &format!("stop {job} run {run}"), async {
        app.engine.stop_batch(&job, run_id_of(&job, &run)?).await.map(|_| ())
    })
    .await
}

/// `POST /ui/jobs/<job>/runs/<runId>/rerun`: as `POST /v2/batch/actions/rerun`.
pub(crate) async fn rerun_batch(
    State(app): State<App>,
    Extension(s): Extension<Session>,
    Name((job, run)): Name<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    act(&s, &form, &format!("rerun {job} run {run}"), async {
        app.engine.rerun_batch(&job, run_id_of(&job, &run)?).await.map(|_| ())
    })
    .await
}
