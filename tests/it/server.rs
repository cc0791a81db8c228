//! `pbatch serve` over HTTP.
//!
//! 1. The real binary with keys, driven by `tests/api_client.py`: a stdlib
//!    Python client that signs requests on its own (written from the wire
//!    notes, not from the server's verifier): a whole life cycle, auth
//!    errors, and 50 concurrent clients.
//! 2. An in-process server without keys and raw HTTP/1.1 bytes, for what
//!    an HTTP library would not send: no or bad `Content-Length`, oversize
//!    and malformed bodies, unknown routes; plus stopping a long batch.

use crate::util::{apply, pbatch, python, root, write_file};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `pbatch serve` from `cmd` (its environment) on a free loopback
/// port with `extra` arguments; returns it and its URL.
pub(crate) fn serve_cmd(
    mut cmd: std::process::Command,
    data: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> (Served, String) {
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

/// A GET over a plain TCP connection: (status, lowercased head, body).
fn get(url: &str, path: &str) -> (u16, String, String) {
    let addr = url.trim_start_matches("http://").split('/').next().expect("host:port");
    get_as(url, path, addr)
}

/// [`get`] with the `Host` header `host`.
fn get_as(url: &str, path: &str, host: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").split('/').next().expect("host:port");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// The value of the sample `line` (name and labels) in a metrics text.
fn sample(text: &str, line: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// `GET /metrics` on the API's listener and on `[server] metrics_listen`:
/// the counters move when a batch runs; the batch's log keeps its events,
/// the reader threads' too (`GET .../history/<runId>/log`, `pbatch history --log`).
#[test]
fn metrics_logs_and_console_pages_show_a_batch() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (spec, data) = (tmp.path().join("spec"), tmp.path().join("data"));
    let write = |p: std::path::PathBuf, text: &str| write_file(&p, text);
    write(
        spec.join("datasources/ev.json"),
        r#"{"region":"nb","type":"kodo","spec":{"bucket":"in-bkt","keyPrefixes":["ev/"],"fileType":"json"},
            "schema":[{"key":"id","valtype":"long"},{"key":"ok","valtype":"boolean"}],"noVerifySchema":true,"omitInvalid":true}"#,
    );
    write(
        spec.join("jobs/j.json"),
        r#"{"srcs":[{"name":"ev","type":"datasource","tableName":"ev"}],
            "computation":{"type":"sql","code":"SELECT id FROM ev WHERE ok"},"scheduler":{"type":"manual"}}"#,
    );
    write(
        spec.join("jobs/j/exports/e.json"),
        r#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"j/","format":"json"}}"#,
    );
    // three rows, one of them invalid (skipped), one filtered out
    write(
        data.join("buckets/in-bkt/ev/a.json"),
        "{\"id\":1,\"ok\":true}\n{\"id\":2,\"ok\":false}\n{\"id\":\"x\"}\n",
    );
    apply(&spec, &data);

    let mut cmd = pbatch();
    cmd.env("PBATCH_SERVER_METRICS_LISTEN", "127.0.0.1:0")
        .env_remove("PBATCH_SERVER_KEYS")
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("pbatch serve");
    let out = child.stdout.take().expect("stdout");
    let _served = Served(child);
    let mut lines = BufReader::new(out).lines();
    let mut url_in = |what: &str| {
        let line = lines.next().expect("a line").expect("read");
        assert!(line.contains(what), "{line}");
        line.split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("a URL")
            .to_string()
    };
    let api = url_in("listening on");
    let scrape = url_in("metrics on");

    let (status, head, before) = get(&api, "/metrics");
    assert_eq!(status, 200, "{before}");
    assert!(head.contains("content-type: application/openmetrics-text"), "{head}");
    // a family shows once it has a sample
    assert!(before.contains("# TYPE pbatch_batches_in_flight gauge"), "{before}");
    assert_eq!(sample(&before, "pbatch_batches_in_flight"), Some(0.0), "{before}");
    assert_eq!(
        sample(&before, "pbatch_batches_total{job=\"j\",status=\"Successful\"}"),
        None
    );

    let addr = api.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    use std::io::{Read, Write};
    write!(
        s,
        "POST /v2/jobs/j/actions/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    .expect("start");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let text = loop {
        let (status, _, text) = get(&scrape, "/metrics");
        assert_eq!(status, 200);
        if sample(&text, "pbatch_batches_total{job=\"j\",status=\"Successful\"}") == Some(1.0) {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no Successful batch counted:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // a manual job's batch writes under a folder named for its time
    let mut committed = 0;
    let mut dirs = vec![data.join("buckets/out-bkt/j")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("output folder").flatten() {
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                dirs.push(e.path());
            } else if e.file_name().to_string_lossy().starts_with("part-") {
                committed += m.len();
            }
        }
    }
    assert!(committed > 0, "an output file under out-bkt/j");
    for (line, want) in [
        ("pbatch_rows_read_total{job=\"j\"}", 2.0),
        ("pbatch_rows_written_total{job=\"j\"}", 1.0),
        ("pbatch_invalid_records_total{job=\"j\"}", 1.0),
        ("pbatch_bytes_committed_total{job=\"j\"}", committed as f64),
        ("pbatch_batch_duration_seconds_count{job=\"j\"}", 1.0),
        ("pbatch_scheduler_lag_seconds_count", 1.0),
        ("pbatch_batches_waiting", 0.0),
    ] {
        assert_eq!(sample(&text, line), Some(want), "{line} in:\n{text}");
    }
    // the API's listener says the same
    let (_, _, same) = get(&api, "/metrics");
    assert_eq!(sample(&same, "pbatch_rows_read_total{job=\"j\"}"), Some(2.0));
    // the scrape listener serves nothing else
    let (status, _, _) = get(&scrape, "/v2/jobs");
    assert_eq!(status, 404);

    let (status, _, body) = get(&api, "/v2/jobs/j/history/1/log");
    assert_eq!(status, 200, "{body}");
    let log: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (log["job"].as_str(), log["runId"].as_i64()),
        (Some("j"), Some(1)),
        "{log}"
    );
    let lines: Vec<&str> = log["attempts"][0]["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    for want in [
        " WARN pbatch_source::rows: skipping an invalid record record=",
        " INFO pbatch_engine::batch: listed the srcs' files; planned the SQL files=1 bytes=",
        "committed export=e files=1 rows=1 bytes=",
        " INFO pbatch_engine: batch ended Successful: read 2 rows from 1 files",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(want)),
            "{want:?} in the log:\n{}",
            lines.join("\n")
        );
    }
    let (status, _, body) = get(&api, "/v2/jobs/j/history/9/log");
    assert!(status == 404 && body.contains("E18624"), "{status} {body}");
    let out = pbatch()
        .args(["history", "j", "--log", "1", "--data-dir"])
        .arg(&data)
        .output()
        .expect("history --log");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.starts_with("== batch 1 of job j, first attempt\n") && text.contains("batch ended Successful"),
        "{text}"
    );

    // the console's pages
    let (status, head, page) = get(&api, "/ui/");
    assert_eq!(status, 200, "{page}");
    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
    assert!(
        page.contains(r#"<a href="/ui/jobs/j">j</a>"#)
            && page.contains(r#"<a class="cell Successful" href="/ui/jobs/j/runs/1""#),
        "the job's row with a green cell linking to its run:\n{page}"
    );
    let (status, _, page) = get(&api, "/ui/jobs/j");
    assert!(
        status == 200
            && page.contains("SELECT id FROM ev WHERE ok")
            && page.contains(r#"<h4 id="export-e">e (kodo)</h4>"#)
            && page.contains(r#"<td class="num rows-in">2</td><td class="num rows-out">1</td><td class="num">1</td>"#)
            && page.contains(r#"<a href="/ui/jobs/j/runs/1">1</a>"#),
        "the job's SQL, export and history:\n{page}"
    );
    let (status, _, page) = get(&api, "/ui/jobs/j/runs/1");
    assert!(
        status == 200
            && page.contains(r#"<span class="status Successful">Successful</span>"#)
            && page.contains("read 2 rows from 1 files")
            && page.contains("committed export=e files=1 rows=1")
            && page.contains(r#"<td id="rows-in">2</td>"#)
            && page.contains(r#"<td id="invalid">1</td>"#)
            && page.contains(r#"<span class="key">j/"#)
            && page.contains(r#"/part-00000.json</span>"#),
        "the run's status, stats, committed key and log:\n{page}"
    );
    // without keys the console answers only to a loopback Host (DNS rebinding)
    let (status, _, page) = get_as(&api, "/ui/", "evil.example:7100");
    assert!(status == 403 && page.contains("evil.example"), "{status} {page}");
    let (status, _, page) = get(&api, "/ui/jobs/nope");
    assert!(status == 404 && page.contains("E18606"), "{status} {page}");
}
