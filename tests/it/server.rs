//! `pbatch serve` over HTTP.
//!
//! 1. The real binary with keys, driven by `tests/api_client.py`: a stdlib
//!    Python client that signs requests on its own (written from the wire
//!    notes, not from the server's verifier): a whole life cycle, auth
//!    errors, and 50 concurrent clients.
//! 2. An in-process server without keys and raw HTTP/1.1 bytes, for what
//!    an HTTP library would not send: no or bad `Content-Length`, oversize
//!    and malformed bodies, unknown routes; plus stopping a long batch.

use crate::util::{pbatch, python, root};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `pbatch serve` from `cmd` (its environment) on a free loopback
/// port with `extra` arguments; returns it and its URL.
fn serve_cmd(mut cmd: std::process::Command, data: &std::path::Path, extra: &[&std::ffi::OsStr]) -> (Served, String) {
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("pbatch serve");
    let out = child.stdout.take().expect("stdout");
    let served = Served(child);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("first line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (served, url)
}

fn client(args: &[&str]) -> String {
    let out = std::process::Command::new(python())
        .arg(root().join("tests/api_client.py"))
        .args(args)
        .output()
        .expect("python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "api_client.py {}:\n{text}", args[0]);
    assert!(
        text.contains("ok "),
        "api_client.py {} checked nothing:\n{text}",
        args[0]
    );
    text
}

#[test]
fn an_independent_signing_client_runs_the_life_cycle_over_http() {
    let data = tempfile::tempdir().expect("tmp");
    // the key as a table, its secret in a file of its own
    let secret = data.path().join("sk.txt");
    std::fs::write(&secret, "SK_TEST\n").expect("secret");
    let config = data.path().join("pbatch.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nkeys = [{{ access_key = \"AK_TEST\", secret_key_file = \"{}\" }}]\n",
            secret.display()
        ),
    )
    .expect("config");
    let (_server, url) = serve_cmd(pbatch(), data.path(), &["--config".as_ref(), config.as_os_str()]);
    let dir = data.path().to_string_lossy().to_string();
    client(&["selftest"]);
    let common = ["--url", url.as_str(), "--ak", "AK_TEST", "--sk", "SK_TEST"];
    let text = client(&[&["lifecycle"][..], &common, &["--data-dir", &dir]].concat());
    for step in [
        "create export e1 (keyPrefix 'x/$(year)/')",
        "workflows: create, list, PUT, get, start, status, stop, delete",
        "deleted everything; job1 created again has an empty history",
    ] {
        assert!(text.contains(step), "the life cycle did not get to {step:?}:\n{text}");
    }
    client(&[&["errors"][..], &common].concat());
    client(&[&["concurrency"][..], &common, &["--clients", "50"]].concat());
}

#[test]
fn without_keys_the_server_refuses_a_non_loopback_address() {
    let data = tempfile::tempdir().expect("tmp");
    let out = pbatch()
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(data.path())
        .env_remove("PBATCH_SERVER_KEYS")
        .output()
        .expect("pbatch serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("0.0.0.0") && err.contains("server.keys"), "{err}");
}

/// Sends raw bytes, returns (status, headers lowercased, body).
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, String) {
    raw_closing(addr, request, false).await
}

/// [`raw`], closing the sending side after the bytes when `close` (so a body
/// shorter than its Content-Length ends).
async fn raw_closing(addr: std::net::SocketAddr, request: &[u8], close: bool) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    if close {
        s.shutdown().await.expect("half-close");
    }
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn req(method: &str, path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n{body}").into_bytes()
}

fn with_len(method: &str, path: &str, body: &str) -> Vec<u8> {
    req(
        method,
        path,
        &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()),
        body,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_checks_and_error_codes_over_raw_http() {
    let data = tempfile::tempdir().expect("tmp");
    let engine = pbatch::Engine::builder().data_dir(data.path()).build().expect("engine");
    let opts = pbatch::server::ServerOptions {
        max_body_bytes: 3 << 20,
        ..Default::default()
    };
    let listener = pbatch::server::bind("127.0.0.1:0".parse().expect("addr"), &opts)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::task::JoinSet::new();
    server.spawn(pbatch::server::serve_on(engine, opts, listener, async {
        let _ = rx.await;
    }));

    std::fs::create_dir_all(data.path().join("buckets/in-bkt/ev")).expect("mkdir");
    std::fs::write(data.path().join("buckets/in-bkt/ev/a.json"), "{\"id\":1}\n").expect("write");
    let ds = r#"{"region":"nb","type":"kodo","spec":{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"},"schema":[{"key":"id","valtype":"long","required":true}],"noVerifySchema":true}"#;
    let big_comment = format!(r#"{{"region":"nb","comment":"{}"}}"#, "x".repeat((1 << 20) + 1));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("create", with_len("POST", "/v2/datasources/ev", ds), 200, ""),
        ("again", with_len("POST", "/v2/datasources/ev", ds), 409, "E18601"),
        ("missing", req("GET", "/v2/datasources/nope", "", ""), 404, "E18602"),
        (
            "no length",
            req(
                "POST",
                "/v2/datasources/x1",
                "Transfer-Encoding: chunked\r\n",
                "2\r\n{}\r\n0\r\n\r\n",
            ),
            411,
            "E18003",
        ),
        (
            "too large",
            req("POST", "/v2/datasources/x1", "Content-Length: 99999999\r\n", ""),
            413,
            "E18005",
        ),
        ("empty", with_len("POST", "/v2/datasources/x1", ""), 400, "E18006"),
        (
            "not json",
            with_len("POST", "/v2/datasources/x1", "{\"region\":"),
            400,
            "E18007",
        ),
        (
            "too long",
            with_len("POST", "/v2/workflows/w1", &big_comment),
            400,
            "E18008",
        ),
        ("bad name", with_len("POST", "/v2/datasources/1bad", ds), 400, "E18600"),
        ("route", req("GET", "/v2/nothing", "", ""), 404, "no such route"),
        ("undecodable path", req("GET", "/v2/jobs/%FF", "", ""), 400, "E18638"),
        (
            "a browser page in unsigned mode",
            req("GET", "/v2/datasources", "Origin: http://evil.example\r\n", ""),
            403,
            "bad token",
        ),
        ("method", req("PATCH", "/v2/datasources", "", ""), 405, "not allowed"),
        (
            "variable without content type",
            {
                let body = r#"{"name":"v1","type":"string","value":"x","format":""}"#;
                req(
                    "POST",
                    "/v2/variables/v1",
                    &format!("Content-Length: {}\r\n", body.len()),
                    body,
                )
            },
            200,
            "",
        ),
        (
            "history query",
            req("GET", "/v2/jobs/nope/history?page=x", "", ""),
            400,
            "page",
        ),
        (
            "stop of a missing batch",
            with_len("POST", "/v2/batch/actions/stop", r#"{"jobName":"nope","runId":"3"}"#),
            404,
            "E18606",
        ),
    ];
    for (what, bytes, status, needle) in cases {
        let (got, head, body) = raw(addr, &bytes).await;
        assert_eq!(got, status, "{what}: {head}\n{body}");
        assert!(head.contains("x-reqid: "), "{what}: no X-Reqid in {head}");
        if status != 200 {
            assert!(head.contains("content-type: application/json\r\n"), "{what}: {head}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
            let msg = v["error"].as_str().unwrap_or_default();
            assert!(msg.contains(needle), "{what}: {msg}");
            if needle.starts_with('E') {
                assert!(msg.starts_with(&format!("{needle}: ")), "{what}: {msg}");
            }
        }
    }

    let (got, head, body) = raw_closing(
        addr,
        &req("POST", "/v2/datasources/x1", "Content-Length: 10\r\n", "{}"),
        true,
    )
    .await;
    assert_eq!(got, 400, "short body: {head}\n{body}");
    assert!(body.starts_with("{\"error\":\"E18004: "), "{body}");

    // a long batch over HTTP: start (manual), see it Running, stop it
    let job = r#"{"srcs":[{"name":"ev","type":"datasource","tableName":"ev"}],"computation":{"type":"sql","code":"SELECT count(*) AS n FROM generate_series(1, 100000000000) WHERE value % 7 = 3"},"scheduler":{"type":"manual"}}"#;
    assert_eq!(raw(addr, &with_len("POST", "/v2/jobs/slow", job)).await.0, 200);
    let (s, _, b) = raw(
        addr,
        &req("POST", "/v2/jobs/slow/actions/start", "Content-Length: 0\r\n", ""),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let mut running = false;
    for _ in 0..100 {
        let (_, _, b) = raw(addr, &req("GET", "/v2/jobs/slow/history", "", "")).await;
        if b.contains("\"Running\"") {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running, "the batch never ran");
    let (s, head, b) = raw(
        addr,
        &with_len("POST", "/v2/batch/actions/stop", r#"{"jobName":"slow","runId":1}"#),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(head.contains("content-type: application/json\r\n"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v, serde_json::json!({"preStatus":"Running","postStatus":"Canceled"}));
    let (_, _, b) = raw(addr, &req("GET", "/v2/jobs/slow/history", "", "")).await;
    let h: serde_json::Value = serde_json::from_str(&b).expect("json");
    assert_eq!(h["total"], 1);
    assert_eq!(h["history"][0]["status"], "Canceled");
    assert!(h["history"][0]["duration"].is_i64(), "{h}");

    let _ = tx.send(());
    server
        .join_next()
        .await
        .expect("the server task")
        .expect("join")
        .expect("served");
}
