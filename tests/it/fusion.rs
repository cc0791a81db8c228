//! Fusion CDN logs through the log-list API. A loopback HTTP server started
//! here stands in for the CDN API (`POST /v2/tune/log/list`, QBox-signed,
//! verified with its own HMAC code) and serves the hourly `.gz` parts its
//! answers link to.

use crate::servers::{Reply, reply};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

const DOMAIN: &str = "cdn.example.com";

/// What the fake CDN API was asked.
#[derive(Debug, Default)]
struct Seen {
    /// `day` of each list call.
    listed: Vec<String>,
    /// Names downloaded.
    downloaded: Vec<String>,
    /// Refused list calls (bad signature).
    refused: usize,
}

struct FakeCdn {
    url: String,
    seen: Arc<Mutex<Seen>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for FakeCdn {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn line(ip: &str, hit: &str, time: &str, size: u64) -> String {
    format!("{ip} {hit} 5 [{time} +0800] \"GET http://{DOMAIN}/x.jpg HTTP/1.1\" 200 {size} \"-\" \"curl/8\"\n")
}

fn gz(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).expect("gzip");
    e.finish().expect("gzip")
}

/// One part per hour from 2026-11-24 21:00 to 2026-11-25 03:00 (Beijing),
/// each holding one line of `size` = its hour * 10.
fn parts() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (day, hours) in [("2026-11-24", 21..24), ("2026-11-25", 0..4)] {
        for h in hours {
            let (d, m, y) = (&day[8..10], "Nov", &day[0..4]);
            let text = line("1.1.1.1", "HIT", &format!("{d}/{m}/{y}:{h:02}:30:00"), h * 10);
            out.insert(format!("v2/{DOMAIN}_{day}-{h:02}_part-00000.gz"), gz(&text));
        }
    }
    out
}

fn expected_auth(sk: &str, path: &str) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(sk.as_bytes()).expect("key");
    mac.update(format!("{path}\n").as_bytes());
    format!(
        "QBox ak:{}",
        base64::engine::general_purpose::URL_SAFE.encode(mac.finalize().into_bytes())
    )
}

impl FakeCdn {
    fn start() -> Self {
        let seen: Arc<Mutex<Seen>> = Default::default();
        let files = Arc::new(parts());
        let base: Arc<Mutex<String>> = Default::default();
        let (seen2, base2) = (Arc::clone(&seen), Arc::clone(&base));
        let (url, runtime) = crate::servers::serve(move |req| {
            let (seen, files, base) = (Arc::clone(&seen2), Arc::clone(&files), Arc::clone(&base2));
            async move {
                let base = base.lock().expect("lock").clone();
                answer(req, &seen, &files, &base).await
            }
        });
        *base.lock().expect("lock") = url.clone();
        Self {
            url,
            seen,
            runtime: Some(runtime),
        }
    }
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    seen: &Mutex<Seen>,
    files: &BTreeMap<String, Vec<u8>>,
    base: &str,
) -> Reply {
    let path = req.uri().path().to_string();
    if let Some(name) = path.strip_prefix("/dl/") {
        return match files.get(name) {
            Some(bytes) => {
                seen.lock().expect("lock").downloaded.push(name.to_string());
                reply(200, bytes.clone())
            }
            None => reply(404, "no such file"),
        };
    }
    if path != "/v2/tune/log/list" || req.method() != hyper::Method::POST {
        return reply(404, "{\"error\":\"no such route\"}");
    }
    let auth = crate::servers::header(&req, "authorization");
    let json_body = crate::servers::header(&req, "content-type").starts_with("application/json");
    let body = crate::servers::body(req).await;
    if auth != expected_auth("sk", "/v2/tune/log/list") || !json_body {
        seen.lock().expect("lock").refused += 1;
        return reply(401, "{\"error\":\"bad token\"}");
    }
    let Ok(q) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return reply(400, "{\"error\":\"bad json\"}");
    };
    let day = q["day"].as_str().unwrap_or("").to_string();
    assert_eq!(q["domains"], DOMAIN, "domains is one ;-joined string");
    seen.lock().expect("lock").listed.push(day.clone());
    let listed: Vec<serde_json::Value> = files
        .iter()
        .filter(|(n, _)| n.contains(&format!("_{day}-")))
        .map(|(n, b)| serde_json::json!({"name": n, "size": b.len(), "mtime": 1764000000, "url": format!("{base}/dl/{n}")}))
        .collect();
    let answer = serde_json::json!({"code": 200, "error": "", "data": {DOMAIN: listed}});
    reply(200, answer.to_string())
}

fn engine_for(data: &std::path::Path, endpoint: &str, sk: &str) -> pbatch::Engine {
    let mut config = pbatch::Config::default();
    config.set("engine.timezone", "Asia/Shanghai").expect("zone");
    config.set("fusion.endpoint", endpoint).expect("endpoint");
    config.set("fusion.access_key", "ak").expect("ak");
    config.set("fusion.secret_key", sk).expect("sk");
    let engine = pbatch::Engine::builder()
        .config(config)
        .data_dir(data)
        .build()
        .expect("engine");
    let ds = pbatch::model::DatasourceSpec::from_json(
        format!(
            r#"{{"region":"nb","type":"fusion","spec":{{"domains":["{DOMAIN}"],"fileFilter":"2026-11-24 22:00 ~ 2026-11-25 02:00"}},"schema":[],"noVerifySchema":false}}"#
        )
        .as_bytes(),
    )
    .expect("ds");
    engine.create_datasource("cdn", &ds).expect("create ds");
    let job = pbatch::model::JobSpec::from_json(
        br#"{"srcs":[{"name":"cdn","type":"datasource","tableName":"cdn"}],
             "computation":{"type":"sql","code":"SELECT COUNT(*) AS n, SUM(resp_size) AS bytes, MIN(req_time) AS first FROM cdn"},
             "scheduler":{"type":"crontab","spec":{"crontab":"0 0 3 * * *"}}}"#,
    )
    .expect("job");
    engine.create_job("traffic", &job).expect("create job");
    let export = pbatch::model::ExportSpec::from_json(
        br#"{"type":"kodo","spec":{"bucket":"out-bkt","keyPrefix":"t/$(date)/","format":"json"}}"#,
        None,
    )
    .expect("export");
    engine.create_export("traffic", "out", &export).expect("create export");
    engine
}

/// The fake CDN API, a data dir, an engine signing with `sk`, and a batch
/// time reading the hours [22:00, 02:00).
fn start(
    sk: &str,
) -> (
    FakeCdn,
    tempfile::TempDir,
    pbatch::Engine,
    chrono::DateTime<chrono::FixedOffset>,
) {
    let cdn = FakeCdn::start();
    let data = tempfile::tempdir().expect("tmp");
    let engine = engine_for(data.path(), &cdn.url, sk);
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T03:00:00+08:00").expect("time");
    (cdn, data, engine, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_listed_downloaded_once_and_read_for_the_hours_of_the_filter() {
    let (cdn, data, engine, t) = start("sk");
    let report = engine.run_once("traffic", &[], t).await.expect("batch");
    assert_eq!(report.files_read, 4, "hours 22, 23, 00 and 01 of [22:00, 02:00)");
    {
        let seen = cdn.seen.lock().expect("lock");
        assert_eq!(seen.listed, ["2026-11-24", "2026-11-25"]);
        let mut got = seen.downloaded.clone();
        got.sort();
        assert_eq!(
            got,
            [
                "v2/cdn.example.com_2026-11-24-22_part-00000.gz",
                "v2/cdn.example.com_2026-11-24-23_part-00000.gz",
                "v2/cdn.example.com_2026-11-25-00_part-00000.gz",
                "v2/cdn.example.com_2026-11-25-01_part-00000.gz",
            ]
        );
    }
    let out = std::fs::read_to_string(data.path().join("buckets/out-bkt/t/2026-11-25/part-00000.json")).expect("out");
    let row: serde_json::Value = serde_json::from_str(out.trim()).expect("row");
    assert_eq!(row["n"], 4);
    assert_eq!(row["bytes"], 460, "220 + 230 + 0 + 10");
    assert_eq!(row["first"], "2026-11-24T14:30:00Z", "22:30 +08:00 in UTC");
    // the files are kept: a second batch lists again but downloads nothing
    engine.run_once("traffic", &[], t).await.expect("batch again");
    assert_eq!(cdn.seen.lock().expect("lock").downloaded.len(), 4);
    assert_eq!(cdn.seen.lock().expect("lock").refused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_or_an_unreachable_api_fails_naming_the_endpoint() {
    let (cdn, _data, engine, t) = start("wrong-secret");
    let e = engine.run_once("traffic", &[], t).await.expect_err("refused");
    assert_eq!(e.code().code(), "E18338", "{e}");
    assert!(e.message().contains(&cdn.url), "{e}");
    assert!(e.message().contains("401") && e.message().contains("bad token"), "{e}");
    assert_eq!(cdn.seen.lock().expect("lock").refused, 1);

    let closed = format!("http://127.0.0.1:{}", crate::servers::free_port());
    let data = tempfile::tempdir().expect("tmp");
    let engine = engine_for(data.path(), &closed, "sk");
    let e = engine.run_once("traffic", &[], t).await.expect_err("unreachable");
    assert_eq!(e.code().code(), "E18338", "{e}");
    assert!(
        e.message().contains(&closed) && e.message().contains("datasource cdn"),
        "{e}"
    );
}
