//! Who may use the console, and the checks every console request passes.
//!
//! - With `[server] keys`, the sign-in form takes an AK/SK pair and sets a
//!   session cookie: `<ak>.<expiry>.<HMAC-SHA1(sk, ...)>`, HttpOnly,
//!   SameSite=Strict, Path=/ui. Nothing is kept on the server: the cookie
//!   verifies against the key it names, so removing a key from the config
//!   ends its sessions at the next restart.
//! - Without keys the console answers as the API does, on loopback only,
//!   and also only to a loopback `Host` (a page that rebinds its own name
//!   to 127.0.0.1 gets 403).
//! - Every action is a POST carrying a CSRF token derived from the session
//!   (or, without keys, from a secret drawn at start), and a POST whose
//!   `Origin` is not this server's is refused.

use crate::App;
use crate::auth::{hmac_sha1, sig_matches};
use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::html;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "pbatch_ui";
/// How long a sign-in lasts.
const SESSION_SECS: i64 = 12 * 3600;

/// The signed-in user of a console request (an extension the guard sets).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The access key signed in with; `None` without `[server] keys`.
    pub(crate) ak: Option<String>,
    /// The token each of this session's forms carries.
    pub(crate) csrf: String,
}

impl Session {
    /// Whether a form's token is this session's.
    pub(crate) fn csrf_ok(&self, token: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(&self.csrf) {
            Ok(raw) => sig_matches(token, &raw),
            Err(_) => false,
        }
    }
}

fn mac(key: &[u8], msg: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha1(key, msg.as_bytes()))
}

fn session_msg(ak: &str, expiry: i64) -> String {
    format!("pbatch-ui-session\n{ak}\n{expiry}")
}

/// A cookie value for `ak` signed with `sk`, valid until `expiry` (unix s).
pub(crate) fn cookie_value(ak: &str, sk: &[u8], expiry: i64) -> String {
    format!("{ak}.{expiry}.{}", mac(sk, &session_msg(ak, expiry)))
}

/// The session a cookie value stands for, if its signature and expiry hold.
pub(crate) fn verify_cookie(keys: &crate::Keys, value: &str, now: i64) -> Option<Session> {
    let mut parts = value.rsplitn(3, '.');
    let sig = parts.next()?;
    let expiry: i64 = parts.next()?.parse().ok()?;
    let ak = parts.next()?;
    let sk = keys.secret(ak)?;
    if expiry < now || !sig_matches(sig, &hmac_sha1(sk, session_msg(ak, expiry).as_bytes())) {
        return None;
    }
    Some(Session {
        ak: Some(ak.to_string()),
        csrf: mac(sk, &format!("pbatch-ui-csrf\n{value}")),
    })
}

/// Every `pbatch_ui` value the request carries (a sibling host may plant
/// one of its own beside ours; the guard takes the first that verifies).
fn cookies_of(h: &HeaderMap) -> impl Iterator<Item = &str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The host part of a `Host` header (`127.0.0.1:7100` -> `127.0.0.1`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn loopback_host(host: &str) -> bool {
    let h = host_name(host);
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A page saying why a request was refused.
pub(crate) fn refused(status: StatusCode, why: &str) -> Response {
    super::pages::html_response(status, "refused", None, html! { p.err { (why) } })
}

/// Paths that need no session: the sign-in form and the stylesheet/script.
fn open_path(path: &str) -> bool {
    path == "/ui/login" || path.starts_with("/ui/static/")
}

/// Runs before every `/ui` route: host and origin checks, the session.
pub(crate) async fn guard(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let h = req.headers();
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if app.keys.is_empty() && !loopback_host(host) {
        return refused(
            StatusCode::FORBIDDEN,
            &format!(
                "host {host:?} is not a loopback name: without [server] keys the console answers only \
                 to 127.0.0.1, [::1] or localhost"
            ),
        );
    }
    if req.method() == Method::POST {
        let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let same = origin.is_none_or(|o| {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host))
        });
        let cross_site = h.get("sec-fetch-site").is_some_and(|v| v == "cross-site");
        if !same || cross_site {
            return refused(
                StatusCode::FORBIDDEN,
                &format!("a form posted from {} is refused", origin.unwrap_or("another site")),
            );
        }
    }
    let path = req.uri().path().to_string();
    let session = if app.keys.is_empty() {
        Some(Session {
            ak: None,
            csrf: mac(&app.ui_secret[..], "pbatch-ui-csrf"),
        })
    } else {
        cookies_of(h).find_map(|c| verify_cookie(&app.keys, c, now()))
    };
    let mut resp = match session {
        Some(s) => {
            req.extensions_mut().insert(s);
            next.run(req).await
        }
        None if open_path(&path) => next.run(req).await,
        None if req.method() == Method::GET => {
            let target = req.uri().path_and_query().map_or("/ui/", |p| p.as_str());
            Redirect::to(&format!("/ui/login?next={}", encode_component(target))).into_response()
        }
        None => refused(
            StatusCode::FORBIDDEN,
            "sign in first: the session is missing or has expired",
        ),
    };
    let headers = resp.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// Percent-encodes everything but unreserved characters and `/`.
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after a form: `next` when it is a console path on this
/// server, else `/ui/`.
pub(crate) fn local_target(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui/")
                && !n.contains("//")
                && !n.contains('\\')
                && n.bytes().all(|b| (0x21..0x7f).contains(&b)) =>
        {
            n.to_string()
        }
        _ => "/ui/".to_string(),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// `GET /ui/login`: the sign-in form (without keys: straight to the jobs).
pub(crate) async fn login_form(
    State(app): State<App>,
    axum::extract::Query(q): axum::extract::Query<NextQuery>,
) -> Response {
    if app.keys.is_empty() {
        return Redirect::to(&local_target(q.next.as_deref())).into_response();
    }
    login_page(StatusCode::OK, &local_target(q.next.as_deref()), None)
}

fn login_page(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let body = html! {
        h2 { "Sign in" }
        @if let Some(e) = error { p.err #login-error { (e) } }
        form.login method="post" action="/ui/login" {
            input type="hidden" name="next" value=(next);
            label { "Access key " input #ak name="ak" autocomplete="username" required; }
            label { "Secret key " input #sk name="sk" type="password" autocomplete="current-password" required; }
            button #signin type="submit" { "Sign in" }
        }
        p.hint { "The access and secret keys of " code { "[server] keys" } ", as the API's clients sign with." }
    };
    super::pages::html_response(status, "sign in", None, body)
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    ak: String,
    sk: String,
    next: Option<String>,
}

/// `POST /ui/login`: checks the pair, sets the cookie, goes to `next`.
pub(crate) async fn login(State(app): State<App>, Form(f): Form<LoginForm>) -> Response {
    let next = local_target(f.next.as_deref());
    if app.keys.is_empty() {
        return Redirect::to(&next).into_response();
    }
    if !app.keys.pair_matches(&f.ak, f.sk.as_bytes()) {
        // what was typed may be a pasted secret or hold newlines: log its size only
        tracing::info!(ak_bytes = f.ak.len(), "console sign-in refused");
        return login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("Unknown access key, or the secret key does not match it."),
        );
    }
    let Some(sk) = app.keys.secret(&f.ak) else {
        return login_page(StatusCode::UNAUTHORIZED, &next, Some("Unknown access key."));
    };
    let value = cookie_value(&f.ak, sk, now() + SESSION_SECS);
    let cookie = format!("{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}");
    let mut resp = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(serde::Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// `POST /ui/logout`: clears the cookie.
pub(crate) async fn logout(axum::Extension(s): axum::Extension<Session>, Form(f): Form<CsrfForm>) -> Response {
    if !s.csrf_ok(&f.csrf) {
        return refused(StatusCode::FORBIDDEN, "the form's CSRF token is not this session's");
    }
    let mut resp = Redirect::to("/ui/login").into_response();
    let clear = format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_and_loopback() {
        assert_eq!(host_name("127.0.0.1:7100"), "127.0.0.1");
        assert_eq!(host_name("[::1]:7100"), "::1");
        assert_eq!(host_name("localhost"), "localhost");
        assert!(loopback_host("127.0.0.1:7100") && loopback_host("[::1]:1") && loopback_host("LOCALHOST:80"));
        assert!(!loopback_host("evil.example:7100") && !loopback_host("10.0.0.1:7100") && !loopback_host(""));
    }

    #[test]
    fn next_targets_stay_on_the_console() {
        assert_eq!(local_target(Some("/ui/jobs/a?page=2")), "/ui/jobs/a?page=2");
        for bad in [
            "https://evil.example/",
            "//evil.example/ui/",
            "/ui//evil",
            "/v2/jobs",
            "/ui\\x",
        ] {
            assert_eq!(local_target(Some(bad)), "/ui/", "{bad}");
        }
        assert_eq!(encode_component("/ui/jobs/a?page=2&x"), "/ui/jobs/a%3Fpage%3D2%26x");
    }

    #[test]
    fn cookies_verify_with_their_key_until_they_expire() {
        let keys = crate::Keys::from_pairs(&[("AK.1", "SK1"), ("AK2", "SK2")]);
        let c = cookie_value("AK.1", b"SK1", 1000);
        let s = verify_cookie(&keys, &c, 999).expect("valid");
        assert_eq!(s.ak.as_deref(), Some("AK.1"));
        assert!(s.csrf_ok(&s.csrf) && !s.csrf_ok("x") && !s.csrf_ok(""));
        assert!(verify_cookie(&keys, &c, 1001).is_none(), "expired");
        assert!(
            verify_cookie(&keys, &c.replace(".1000.", ".9999."), 999).is_none(),
            "expiry changed"
        );
        assert!(
            verify_cookie(&keys, &cookie_value("AK2", b"SK1", 1000), 999).is_none(),
            "other key's secret"
        );
        assert!(
            verify_cookie(&keys, &cookie_value("AK3", b"SK1", 1000), 999).is_none(),
            "unknown key"
        );
        for junk in ["", "a", "a.b", "AK2.x.y", "..", "AK2.1000."] {
            assert!(verify_cookie(&keys, junk, 0).is_none(), "{junk:?}");
        }
        // another session's token does not pass
        let other = verify_cookie(&keys, &cookie_value("AK2", b"SK2", 1000), 999).expect("valid");
        assert!(!s.csrf_ok(&other.csrf));
    }

    #[test]
    fn cookie_header_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pbatch_ui=AK.9.sig; b=2; pbatch_ui=AK.8.x"),
        );
        assert_eq!(cookies_of(&h).collect::<Vec<_>>(), ["AK.9.sig", "AK.8.x"]);
        h.insert(header::COOKIE, HeaderValue::from_static("pbatch_uix=1"));
        assert_eq!(cookies_of(&h).next(), None);
    }
}
