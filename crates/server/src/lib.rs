/*!
`pbatch serve`: the Pandora batch-computation REST API (`/v2/...`) over a
[`pbatch_engine::Engine`].

This crate stays thin: routing, request checks, signatures and error
mapping. Every rule lives in the engine and the model.

- Success is status 200 exactly; JSON bodies carry `Content-Type:
  application/json` exactly (Go SDKs compare the string).
- Errors are `{"error":"E18xxx: message"}` with the status of the one
  [`ErrorCode`] table; a refused signature is 401 `{"error":"bad token"}`.
- Every response has an `X-Reqid` header.
- POST / PUT need `Content-Length` (`E18003`, 411), a number (`E18004`), at
  most `[server] max_body_bytes` (`E18005`, 413); a needed body may not be
  empty (`E18006`), must parse (`E18007`, with the position) and may not hold
  a string longer than [`MAX_FIELD_BYTES`] (`E18008`).

Sits on top, beside the CLI: it depends on `pbatch-engine` and
`pbatch-model` only.
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

pub mod auth;
mod routes;
mod ui;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pbatch_engine::Engine;
use pbatch_model::{Error, ErrorCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use auth::Keys;

/// The longest string value a request body may hold (`E18008`).
pub const MAX_FIELD_BYTES: usize = 1 << 20;

/// Default `[server] max_body_bytes`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Accepted AK/SK pairs; empty = no signatures checked (loopback only).
    pub keys: Keys,
    /// Largest request body (`E18005` above).
    pub max_body_bytes: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            keys: Keys::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl ServerOptions {
    /// From the engine's `[server]` section.
    pub fn from_config(c: &pbatch_engine::ServerConfig) -> pbatch_model::Result<Self> {
        let keys = Keys::parse(&c.keys)?;
        Ok(Self {
            keys,
            max_body_bytes: c.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        })
    }
}

#[derive(Clone)]
pub(crate) struct App {
    pub(crate) engine: Engine,
    keys: Arc<Keys>,
    max_body: usize,
    reqids: Arc<AtomicU64>,
    boot: u64,
    /// Drawn at start: the console's CSRF secret without keys.
    ui_secret: Arc<[u8; 32]>,
}

/// A JSON response with `Content-Type: application/json` exactly.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An engine error as the API answers it.
pub(crate) fn error_response(e: &Error) -> Response {
    let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &serde_json::json!({ "error": e.to_string() }))
}

/// The router with every `/v2` route, the request checks and signatures.
pub fn router(engine: Engine, opts: ServerOptions) -> Router {
    let boot = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut ui_secret = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut ui_secret) {
        // without OS randomness the token is the boot time's; the console's
        // other checks (loopback host, Origin, SameSite) still hold
        tracing::warn!("no OS randomness for the console's CSRF secret: {e}");
        ui_secret[..8].copy_from_slice(&boot.to_le_bytes());
    }
    let app = App {
        engine,
        keys: Arc::new(opts.keys),
        max_body: opts.max_body_bytes,
        reqids: Arc::new(AtomicU64::new(0)),
        boot,
        ui_secret: Arc::new(ui_secret),
    };
    routes::routes()
        .merge(ui::routes(app.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(app)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({ "error": format!("no such route: {method} {}", uri.path()) }),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &serde_json::json!({ "error": format!("method {method} is not allowed on {}", uri.path()) }),
    )
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Routes whose POST carries no body (the SDK sends `Content-Length: 0`, but
/// a client that sends nothing at all is fine too).
fn bodyless(path: &str) -> bool {
    path.starts_with("/v2/jobs/") && path.ends_with("/actions/stop")
}

/// Signature and size checks before any route (`Some` = refused); adds `X-Reqid` to every answer.
async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let n = app.reqids.fetch_add(1, Ordering::Relaxed);
    let reqid = format!("{:08x}{:08x}", app.boot & 0xffff_ffff, n);
    let mut resp = match check(&app, &req) {
        None => next.run(req).await,
        Some(refused) => refused,
    };
    if let Ok(v) = HeaderValue::from_str(&reqid) {
        resp.headers_mut().insert("X-Reqid", v);
    }
    resp
}

/// The console's paths: they take a session instead of signatures
/// (`ui::session::guard`).
fn console(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

fn check(app: &App, req: &Request) -> Option<Response> {
    let h = req.headers();
    let api = !console(req.uri().path());
    if api && !app.keys.is_empty() {
        // the first value of each X-Qiniu-* header, as the SDKs sign them
        let mut qiniu: Vec<(&str, &str)> = Vec::new();
        for name in h.keys().filter(|n| n.as_str().starts_with("x-qiniu-")) {
            if let Some(v) = h.get(name).and_then(|v| v.to_str().ok()) {
                qiniu.push((name.as_str(), v));
            }
        }
        let r = auth::Request {
            method: req.method().as_str(),
            path: req.uri().path(),
            authorization: header_str(h, "authorization"),
            content_md5: header_str(h, "content-md5"),
            content_type: header_str(h, "content-type"),
            date: header_str(h, "date"),
            qiniu_headers: qiniu,
        };
        if let Err(why) = auth::verify(&app.keys, &r, chrono::Utc::now()) {
            tracing::info!(path = r.path, reason = why.0, "refused a request");
            return Some(json_response(
                StatusCode::UNAUTHORIZED,
                &serde_json::json!({ "error": "bad token" }),
            ));
        }
    }
    if api && app.keys.is_empty() && h.contains_key(header::ORIGIN) {
        // unsigned mode trusts the machine's own programs, not web pages a
        // browser on it opens (which send Origin)
        return Some(json_response(
            StatusCode::FORBIDDEN,
            &serde_json::json!({ "error": "bad token" }),
        ));
    }
    if matches!(*req.method(), Method::POST | Method::PUT) {
        match h.get(header::CONTENT_LENGTH) {
            None if bodyless(req.uri().path()) => {}
            None => {
                return Some(error_response(&Error::new(
                    ErrorCode::MissingContentLength,
                    format!("{} {} needs a Content-Length header", req.method(), req.uri().path()),
                )));
            }
            Some(v) => {
                let text = v.to_str().unwrap_or("");
                let Ok(len) = text.trim().parse::<usize>() else {
                    return Some(error_response(&Error::new(
                        ErrorCode::InvalidContentLength,
                        format!("Content-Length {text:?} is not a number"),
                    )));
                };
                if len > app.max_body {
                    return Some(error_response(&Error::new(
                        ErrorCode::RequestEntityTooLarge,
                        format!("the body has {len} bytes; at most {} are accepted", app.max_body),
                    )));
                }
            }
        }
    }
    None
}

/// Serves until the future `shutdown` completes. Refuses a non-loopback
/// address when no keys are configured.
pub async fn serve(
    engine: Engine,
    opts: ServerOptions,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> pbatch_model::Result<()> {
    let listener = bind(addr, &opts).await?;
    serve_on(engine, opts, listener, shutdown).await
}

/// Binds `addr` (refusing a non-loopback address without keys).
pub async fn bind(addr: SocketAddr, opts: &ServerOptions) -> pbatch_model::Result<tokio::net::TcpListener> {
    if opts.keys.is_empty() && !addr.ip().is_loopback() {
        return Err(Error::new(
            ErrorCode::InvalidRequestBody,
            format!(
                "server.listen {addr} is not a loopback address and server.keys is empty: \
                 set keys (AK:SK) before listening beyond this machine"
            ),
        ));
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::internal(format!("listening on {addr}: {e}")))
}

/// Serves on a bound listener until `shutdown` completes.
pub async fn serve_on(
    engine: Engine,
    opts: ServerOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> pbatch_model::Result<()> {
    engine.start_scheduler()?;
    let app = router(engine, opts);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::internal(format!("serving: {e}")))
}

/// Serves only `GET /metrics`, unsigned, on `listener` until `shutdown`
/// completes (`[server] metrics_listen`, for a Prometheus scraper).
pub async fn serve_metrics_on(
    engine: Engine,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> pbatch_model::Result<()> {
    let app = Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let engine = engine.clone();
                async move { routes::metrics_response(&engine) }
            }),
        )
        .fallback(not_found);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::internal(format!("serving metrics: {e}")))
}

impl IntoResponse for routes::ApiError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}
