//! The web console at `/ui/` (issue 18), on the API's listener.
//!
//! HTML is rendered on the server with maud: the templates are Rust, so a
//! field that does not exist or a value left unescaped fails to compile,
//! and there are no template files to ship and no JS build step. One small
//! stylesheet and one small script are embedded and served from
//! `/ui/static/`; pages work without the script (a `noscript` refresh),
//! and with it their live part is fetched again every 2 s and swapped in
//! place, without a reload.
//!
//! - [`session`]: sign-in, the cookie, CSRF, and the host/origin checks;
//! - [`pages`]: jobs, a job, a run, datasources, variables;
//! - [`actions`]: start/stop a job, stop/rerun a batch (POST + CSRF);
//! - [`graph`]: datasources -> jobs -> depend jobs -> exports as SVG.

mod actions;
mod graph;
pub(crate) mod pages;
pub(crate) mod session;

use crate::App;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

const CSS: &str = include_str!("app.css");
const JS: &str = include_str!("app.js");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r
}

/// The console's routes, behind [`session::guard`].
pub(crate) fn routes(app: App) -> Router<App> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(pages::jobs))
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route(
            "/ui/static/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/ui/static/app.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .route("/ui/jobs/{name}", get(pages::job))
        .route("/ui/jobs/{job}/runs/{run_id}", get(pages::run))
        .route("/ui/jobs/{name}/start", post(actions::start_job))
        .route("/ui/jobs/{name}/stop", post(actions::stop_job))
        .route("/ui/jobs/{job}/runs/{run_id}/stop", post(actions::stop_batch))
        .route("/ui/jobs/{job}/runs/{run_id}/rerun", post(actions::rerun_batch))
        .route("/ui/graph", get(graph::page))
        .route("/ui/datasources", get(pages::datasources))
        .route("/ui/variables", get(pages::variables))
        .route_layer(axum::middleware::from_fn_with_state(app, session::guard))
}
