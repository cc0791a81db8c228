//! Fusion CDN access logs: the log-list API client, the files' names, and
//! the access-log line parser with its fixed schema.
//!
//! Logs are hourly gzip parts named `<domain>_<yyyy-MM-dd-HH>_part-<NNNNN>.gz`,
//! hours in Beijing time (`+08:00`). With `[fusion] endpoint` configured,
//! the parts of the hours a batch reads are listed through
//! `POST <endpoint>/v2/tune/log/list` (QBox-signed) and downloaded into
//! `<data_dir>/fusion/<domain>/`, which is then read like a bucket folder;
//! without it, that folder is the embedded default and holds the files.

use crate::error::{Error, Result};
use crate::list_keys;
use crate::rows::{ReadStats, RowSpec};
use crate::scan::RowTable;
use arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, RecordBatchOptions, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use base64::Engine as _;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use hmac::{Hmac, KeyInit, Mac};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use pbatch_model::{ErrorCode, SchemaEntry, ValType};
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

/// The zone of log file hours and of the CDN's `day` parameter.
pub fn cdn_zone() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC offset"))
}

/// The fields of an access-log line, in line order: name and valtype.
pub const FUSION_FIELDS: &[(&str, ValType)] = &[
    ("client_ip", ValType::String),
    ("hit", ValType::String),
    ("resp_time", ValType::Long),
    ("req_time", ValType::Date),
    ("method", ValType::String),
    ("url", ValType::String),
    ("protocol", ValType::String),
    ("resp_code", ValType::Long),
    ("resp_size", ValType::Long),
    ("referer", ValType::String),
    ("user_agent", ValType::String),
];

/// The fixed schema of a fusion datasource, as schema entries.
pub fn fusion_entries() -> Vec<SchemaEntry> {
    FUSION_FIELDS
        .iter()
        .map(|(k, t)| SchemaEntry::new(*k, t.clone()))
        .collect()
}

/// The fixed schema of a fusion datasource.
pub fn fusion_schema() -> SchemaRef {
    crate::arrow_schema(&fusion_entries())
}

/// One access-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// Client address.
    pub client_ip: &'a str,
    /// `HIT`, `MISS` or `-`.
    pub hit: &'a str,
    /// Milliseconds.
    pub resp_time: i64,
    /// Request time, microseconds since the epoch (its zone applied).
    pub req_time_us: i64,
    /// `GET`...
    pub method: &'a str,
    /// Full URL.
    pub url: &'a str,
    /// `HTTP/1.1`...
    pub protocol: &'a str,
    /// Status code.
    pub resp_code: i64,
    /// Bytes.
    pub resp_size: i64,
    /// None for `-`.
    pub referer: Option<&'a str>,
    /// None for `-`; spaces appear as `+` in the logs and are kept so.
    pub user_agent: Option<&'a str>,
}

/// Splits the next space-separated token: a bare word, `[...]` or `"..."`
/// (with `\"` escapes kept as written).
fn token<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let s = rest.trim_start_matches(' ');
    let (tok, after) = match s.as_bytes().first()? {
        b'[' => {
            let end = s.find(']')?;
            (&s[1..end], &s[end + 1..])
        }
        b'"' => {
            let bytes = s.as_bytes();
            let mut i = 1;
            loop {
                match bytes.get(i)? {
                    b'\\' => i += 2,
                    b'"' => break,
                    _ => i += 1,
                }
            }
            (&s[1..i], &s[i + 1..])
        }
        _ => match s.find(' ') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        },
    };
    *rest = after;
    Some(tok)
}

/// Parses one access-log line; the error says what is wrong with it.
pub fn parse_line<'a>(line: &'a str) -> std::result::Result<LogLine<'a>, String> {
    let mut rest = line.trim_end_matches(['\r', '\n']);
    let mut next = |what: &str| token(&mut rest).ok_or_else(|| format!("the line ends before its {what}"));
    let client_ip = next("client ip")?;
    let hit = next("cache flag")?;
    let resp_time = next("response time")?;
    let req_time = next("request time")?;
    let request = next("request")?;
    let resp_code = next("status")?;
    let resp_size = next("size")?;
    let referer = next("referer")?;
    let user_agent = next("user agent")?;
    let int = |what: &str, v: &str| v.parse::<i64>().map_err(|_| format!("{what} {v:?} is not an integer"));
    let t = DateTime::parse_from_str(req_time, "%d/%b/%Y:%H:%M:%S %z")
        .map_err(|_| format!("request time {req_time:?} is not like 03/Jan/2017:23:30:14 +0800"))?;
    let (method, rest_req) = request
        .split_once(' ')
        .ok_or_else(|| format!("request {request:?} is not METHOD URL PROTOCOL"))?;
    let (url, protocol) = match rest_req.rsplit_once(' ') {
        Some((u, p)) if p.starts_with("HTTP") => (u, p),
        _ => (rest_req, ""),
    };
    let dash = |v: &'a str| -> Option<&'a str> { (v != "-" && !v.is_empty()).then_some(v) };
    Ok(LogLine {
        client_ip,
        hit,
        resp_time: int("response time", resp_time)?,
        req_time_us: t.timestamp_micros(),
        method,
        url,
        protocol,
        resp_code: int("status", resp_code)?,
        resp_size: int("size", resp_size)?,
        referer: dash(referer),
        user_agent: dash(user_agent),
    })
}

/// Reads access-log lines (decompressed) into batches of the fusion schema
/// projected by `spec`; a line that does not parse is an invalid record.
pub(crate) fn read_cdn_log(
    name: &str,
    input: &mut dyn BufRead,
    spec: &RowSpec,
    stats: &ReadStats,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> pbatch_model::Result<()> {
    let out = spec.output_schema();
    let n = spec.batch_size;
    let mut b = Builders::new(n);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::new(ErrorCode::FileFormatMismatch, format!("reading {name}: {e}")))?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = std::str::from_utf8(&line)
            .map_err(|_| "the line is not valid UTF-8".to_string())
            .and_then(parse_line);
        match parsed {
            Ok(l) => b.push(&l),
            Err(why) => crate::rows::invalid(name, "line", number, why, spec, stats)?,
        }
        if b.rows == n && !emit(b.finish(&out, &spec.projection)?) {
            return Ok(());
        }
    }
    if b.rows > 0 {
        emit(b.finish(&out, &spec.projection)?);
    }
    Ok(())
}

struct Builders {
    rows: usize,
    strings: [StringBuilder; 8],
    ints: [Int64Builder; 3],
    time: TimestampMicrosecondBuilder,
}

impl Builders {
    fn new(n: usize) -> Self {
        Self {
            rows: 0,
            strings: std::array::from_fn(|_| StringBuilder::with_capacity(n, n * 16)),
            ints: std::array::from_fn(|_| Int64Builder::with_capacity(n)),
            time: TimestampMicrosecondBuilder::with_capacity(n).with_timezone(crate::DATE_TZ),
        }
    }

    fn push(&mut self, l: &LogLine<'_>) {
        let [ip, hit, method, url, protocol, referer, ua, _] = &mut self.strings;
        ip.append_value(l.client_ip);
        hit.append_value(l.hit);
        method.append_value(l.method);
        url.append_value(l.url);
        protocol.append_value(l.protocol);
        referer.append_option(l.referer);
        ua.append_option(l.user_agent);
        let [rt, code, size] = &mut self.ints;
        rt.append_value(l.resp_time);
        code.append_value(l.resp_code);
        size.append_value(l.resp_size);
        self.time.append_value(l.req_time_us);
        self.rows += 1;
    }

    /// The batch in FUSION_FIELDS order, projected.
    fn finish(&mut self, out: &SchemaRef, projection: &[usize]) -> Result<RecordBatch> {
        let [ip, hit, method, url, protocol, referer, ua, _] = &mut self.strings;
        let [rt, code, size] = &mut self.ints;
        let all: [ArrayRef; 11] = [
            Arc::new(ip.finish()),
            Arc::new(hit.finish()),
            Arc::new(rt.finish()),
            Arc::new(self.time.finish()),
            Arc::new(method.finish()),
            Arc::new(url.finish()),
            Arc::new(protocol.finish()),
            Arc::new(code.finish()),
            Arc::new(size.finish()),
            Arc::new(referer.finish()),
            Arc::new(ua.finish()),
        ];
        let rows = std::mem::take(&mut self.rows);
        let cols = projection.iter().map(|i| Arc::clone(&all[*i])).collect();
        RecordBatch::try_new_with_options(
            Arc::clone(out),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| Error::internal(format!("building a log batch: {e}")))
    }
}

/// The hour (Beijing time) a log file `name` of `domain` holds, from
/// `[v2/]<domain>_<yyyy-MM-dd-HH>_part-<NNNNN>.gz`.
pub fn log_file_hour(domain: &str, name: &str) -> Option<DateTime<FixedOffset>> {
    let base = name.rsplit('/').next()?;
    let rest = base.strip_prefix(domain)?.strip_prefix('_')?;
    let (hour, part) = rest.split_once("_part-")?;
    let digits = part.strip_suffix(".gz")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(&format!("{hour}:00"), "%Y-%m-%d-%H:%M").ok()?;
    cdn_zone().from_local_datetime(&naive).single()
}

/// Whether the hour file starting at `hour` holds times of `[start, end)`.
fn overlaps(hour: DateTime<FixedOffset>, start: DateTime<FixedOffset>, end: DateTime<FixedOffset>) -> bool {
    hour + chrono::Duration::hours(1) > start && hour < end
}

/// A domain is a host name: it names a folder, so nothing else may pass.
pub fn check_domain(field: &str, domain: &str) -> Result<()> {
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && !domain.starts_with('.')
        && !domain.contains("..")
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidRepoSpec,
            format!("{field} {domain:?} is not a domain name (letters, digits, '.' and '-')"),
        ))
    }
}

/// One log file the log-list API names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct LogFile {
    /// `v2/<domain>_<yyyy-MM-dd-HH>_part-<NNNNN>.gz`.
    pub name: String,
    /// Bytes.
    #[serde(default)]
    pub size: u64,
    /// Unix seconds.
    #[serde(default)]
    pub mtime: i64,
    /// Where to download it.
    pub url: String,
}

#[derive(serde::Deserialize)]
struct ListAnswer {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    error: String,
    #[serde(default)]
    data: std::collections::HashMap<String, Vec<LogFile>>,
}

/// A client of the CDN log-list API.
#[derive(Debug, Clone)]
pub struct FusionClient {
    endpoint: url::Url,
    access_key: String,
    secret_key: String,
    http: reqwest::Client,
}

/// `QBox <AK>:<sig>` for a request to `url` whose body is not a form:
/// sig = URL-safe base64 of HMAC-SHA1(SK, path[?query] + "\n").
pub fn qbox_authorization(access_key: &str, secret_key: &str, url: &url::Url) -> String {
    let mut signed = url.path().to_string();
    if let Some(q) = url.query() {
        signed.push('?');
        signed.push_str(q);
    }
    signed.push('\n');
    let mut mac = match Hmac::<sha1::Sha1>::new_from_slice(secret_key.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(signed.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE.encode(mac.finalize().into_bytes());
    format!("QBox {access_key}:{sig}")
}

impl FusionClient {
    /// A client of the API at `endpoint` (`http://fusion.qiniuapi.com`).
    pub fn new(endpoint: &str, access_key: &str, secret_key: &str) -> Result<Self> {
        let endpoint = url::Url::parse(endpoint).map_err(|e| {
            Error::new(
                ErrorCode::InvalidRepoSpec,
                format!("fusion.endpoint {endpoint:?} is not a URL: {e}"),
            )
        })?;
        if access_key.is_empty() || secret_key.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidRepoSpec,
                "fusion.endpoint is set but fusion.access_key or fusion.secret_key is empty",
            ));
        }
        Ok(Self {
            endpoint,
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                .timeout(std::time::Duration::from_secs(600))
                .build()
                .map_err(|e| Error::internal(format!("http client: {e}")))?,
        })
    }

    /// The API failed: a reqwest error kept as the cause.
    fn http_fail(&self, what: &str, e: reqwest::Error) -> Error {
        let message = format!("fusion log list at {}: {what}: {e}", self.endpoint);
        Error::Http(pbatch_model::Caused::new(ErrorCode::StatFileFailed, message, e))
    }

    fn fail(&self, what: &str, why: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorCode::StatFileFailed,
            format!("fusion log list at {}: {what}: {why}", self.endpoint),
        )
    }

    /// The log files of `domain` on `day` (Beijing time).
    pub async fn list(&self, domain: &str, day: NaiveDate) -> Result<Vec<LogFile>> {
        let mut url = self.endpoint.clone();
        url.path_segments_mut()
            .map_err(|_| self.fail("endpoint", "cannot hold a path"))?
            .pop_if_empty()
            .extend(["v2", "tune", "log", "list"]);
        let body = serde_json::json!({"day": day.format("%Y-%m-%d").to_string(), "domains": domain});
        let answer = self
            .http
            .post(url.clone())
            .header(
                "Authorization",
                qbox_authorization(&self.access_key, &self.secret_key, &url),
            )
            .json(&body)
            .send()
            .await
            .map_err(|e| self.http_fail(&format!("listing {domain} {day}"), e))?;
        let status = answer.status();
        let text = answer
            .text()
            .await
            .map_err(|e| self.http_fail(&format!("listing {domain} {day}"), e))?;
        if !status.is_success() {
            let head: String = text.chars().take(200).collect();
            return Err(self.fail(&format!("listing {domain} {day}"), format!("status {status}: {head}")));
        }
        let parsed: ListAnswer = serde_json::from_str(&text).map_err(|e| {
            self.fail(
                &format!("listing {domain} {day}"),
                format!("answer is not the log-list JSON: {e}"),
            )
        })?;
        if !parsed.error.is_empty() || !(parsed.code == 0 || parsed.code == 200) {
            return Err(self.fail(
                &format!("listing {domain} {day}"),
                format!("code {}: {}", parsed.code, parsed.error),
            ));
        }
        Ok(parsed.data.get(domain).cloned().unwrap_or_default())
    }

    /// Downloads `file` to `dest` (through a temporary name: a cut-off
    /// download never looks complete).
    pub async fn download(&self, file: &LogFile, dest: &Path) -> Result<()> {
        let fail = |why: String| Error::new(ErrorCode::StatFileFailed, format!("downloading {}: {why}", file.name));
        let http = |e: reqwest::Error| {
            let message = format!("downloading {}: {e}", file.name);
            Error::Http(pbatch_model::Caused::new(ErrorCode::StatFileFailed, message, e))
        };
        let answer = self.http.get(&file.url).send().await.map_err(http)?;
        if !answer.status().is_success() {
            return Err(fail(format!("status {}", answer.status())));
        }
        let bytes = answer.bytes().await.map_err(http)?;
        if file.size > 0 && bytes.len() as u64 != file.size {
            return Err(fail(format!(
                "got {} bytes where the list says {}",
                bytes.len(),
                file.size
            )));
        }
        let io = |e: std::io::Error| fail(format!("writing {}: {e}", dest.display()));
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // a name of its own: two batches may fetch the same hour at once
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dest.with_extension(format!("gz.{}-{seq}.part", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, dest).map_err(io)
    }
}

/// Brings the log files of `domain` for hours in `[start, end)` into `dir`
/// (files already there with the listed size are kept). Returns how many
/// were downloaded.
pub async fn sync_logs(
    client: &FusionClient,
    dir: &Path,
    domain: &str,
    start: DateTime<FixedOffset>,
    end: DateTime<FixedOffset>,
) -> Result<usize> {
    let zone = cdn_zone();
    let mut day = start.with_timezone(&zone).date_naive();
    let last = (end - chrono::Duration::seconds(1)).with_timezone(&zone).date_naive();
    let mut fetched = 0;
    while day <= last {
        for f in client.list(domain, day).await? {
            let Some(hour) = log_file_hour(domain, &f.name) else {
                tracing::debug!(name = f.name, "skipping a listed file not named as an hourly log part");
                continue;
            };
            if !overlaps(hour, start, end) {
                continue;
            }
            let Some(base) = f.name.rsplit('/').next() else {
                continue;
            };
            let dest = dir.join(base);
            let have = std::fs::metadata(&dest).map(|m| m.len()).ok();
            if have.is_some() && (f.size == 0 || have == Some(f.size)) {
                continue;
            }
            client.download(&f, &dest).await?;
            fetched += 1;
        }
        day = match day.succ_opt() {
            Some(d) => d,
            None => break,
        };
    }
    tracing::info!(domain, fetched, %start, %end, "fusion logs synced");
    Ok(fetched)
}

/// What the fusion folder (`<data_dir>/fusion`, one folder per domain) is
/// known by as an object store.
pub const FUSION_URL: &str = "fusion://logs/";

fn fusion_url() -> Result<url::Url> {
    url::Url::parse(FUSION_URL).map_err(|e| Error::internal(format!("{FUSION_URL}: {e}")))
}

/// The table of `domain`'s log files for hours in `[start, end)` under
/// `root/<domain>/`, synced first through `client` when given. No file in
/// the range is `E18620`.
pub async fn fusion_table(
    root: &Path,
    client: Option<&FusionClient>,
    domain: &str,
    start: DateTime<FixedOffset>,
    end: DateTime<FixedOffset>,
    omit_invalid: bool,
) -> Result<RowTable> {
    check_domain("spec.domains[0]", domain)?;
    let dir = root.join(domain);
    if let Some(client) = client {
        sync_logs(client, &dir, domain, start, end).await?;
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::new(ErrorCode::StatFileFailed, format!("creating {}: {e}", dir.display())))?;
    let store: Arc<dyn ObjectStore> = Arc::new(
        LocalFileSystem::new_with_prefix(root)
            .map_err(|e| Error::new(ErrorCode::StatFileFailed, format!("{}: {e}", root.display())))?,
    );
    let place = format!("fusion domain {domain:?} (folder {})", dir.display());
    let listed = match list_keys(store.as_ref(), &place, &[format!("{domain}/")], "").await {
        Ok(f) => f,
        Err(e) if e.code() == ErrorCode::NoFilesMatched => Vec::new(),
        Err(e) => return Err(e),
    };
    let files: Vec<_> = listed
        .into_iter()
        .filter(|f| log_file_hour(domain, &f.key).is_some_and(|h| overlaps(h, start, end)))
        .collect();
    if files.is_empty() {
        let cdn = cdn_zone();
        return Err(Error::new(
            ErrorCode::NoFilesMatched,
            format!(
                "no log files of {domain} for the hours from {} to {} (file hours {} to {}, Beijing time) in {}",
                start.format("%Y-%m-%d %H:%M"),
                end.format("%Y-%m-%d %H:%M"),
                start.with_timezone(&cdn).format("%Y-%m-%d-%H"),
                end.with_timezone(&cdn).format("%Y-%m-%d-%H"),
                dir.display()
            ),
        ));
    }
    Ok(RowTable::new(
        store,
        fusion_url()?,
        place,
        files,
        crate::RowFormat::CdnLog,
        fusion_schema(),
        &[],
        omit_invalid,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, TimeUnit};

    const LINES: &str = concat!(
        "106.18.21.156 - 282 [03/Jan/2017:23:30:14 +0800] \"GET http://7xna64.com2.z0.glb.qiniucdn.com/Fjm.jpg?imageView2/2/w/1080 HTTP/1.1\" 200 478114 \"-\" \"AndroidDownloadManager/5.1+(Linux;+U;+Android+5.1;+OPPO+R9m+Build/LMY47I)\"\n",
        "112.20.202.37 HIT 0 [01/Jul/2018:00:05:50 +0800] \"GET https://pro-app-qn.fir.im/a46a.apk?attname=x HTTP/1.1\" 206 66716 \"https://fir.im/qiansho\" \"AndroidDownloadManager/7.1.2+(Linux;+U;+Android+7.1.2;+MI+5X+Build/N2G47H)\"\n",
        "1.2.3.4 MISS 12 [01/Jul/2018:00:05:51 +0800] \"POST http://a.com/say?q=\\\"hi\\\" HTTP/2.0\" 404 0 \"-\" \"curl/7.1\"\n",
        "1.2.3.4 MISS 12 [01/Jul/2018:00:05:51 +0800] \"GET http://a.com/\n",
        "\n",
        "5.6.7.8 HIT twelve [01/Jul/2018:00:05:51 +0800] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"\n",
    );

    #[test]
    fn real_format_lines_parse() {
        let l = parse_line(LINES.lines().next().unwrap()).unwrap();
        assert_eq!(l.client_ip, "106.18.21.156");
        assert_eq!(l.hit, "-");
        assert_eq!(l.resp_time, 282);
        // 23:30:14 +08:00 is 15:30:14 UTC
        assert_eq!(l.req_time_us, 1_483_457_414_000_000);
        assert_eq!(l.method, "GET");
        assert_eq!(
            l.url,
            "http://7xna64.com2.z0.glb.qiniucdn.com/Fjm.jpg?imageView2/2/w/1080"
        );
        assert_eq!(l.protocol, "HTTP/1.1");
        assert_eq!((l.resp_code, l.resp_size), (200, 478114));
        assert_eq!(l.referer, None);
        assert_eq!(
            l.user_agent,
            Some("AndroidDownloadManager/5.1+(Linux;+U;+Android+5.1;+OPPO+R9m+Build/LMY47I)")
        );
        let l = parse_line(LINES.lines().nth(1).unwrap()).unwrap();
        assert_eq!(
            (l.hit, l.resp_code, l.referer),
            ("HIT", 206, Some("https://fir.im/qiansho"))
        );
        let l = parse_line(LINES.lines().nth(2).unwrap()).unwrap();
        assert_eq!(
            (l.method, l.url, l.protocol),
            ("POST", "http://a.com/say?q=\\\"hi\\\"", "HTTP/2.0")
        );
        assert_eq!(
            parse_line(LINES.lines().nth(3).unwrap()).unwrap_err(),
            "the line ends before its request"
        );
        assert_eq!(
            parse_line(LINES.lines().nth(5).unwrap()).unwrap_err(),
            "response time \"twelve\" is not an integer"
        );
    }

    #[test]
    fn a_file_of_lines_reads_with_bad_lines_counted() {
        let spec = RowSpec {
            format: crate::RowFormat::CdnLog,
            schema: fusion_schema(),
            projection: vec![0, 3, 7, 10],
            required: vec![],
            omit_invalid: true,
            batch_size: 2,
        };
        let stats = ReadStats::default();
        let mut rows = 0;
        read_cdn_log("x.gz", &mut LINES.as_bytes(), &spec, &stats, &mut |b| {
            assert_eq!(b.num_columns(), 4);
            rows += b.num_rows();
            true
        })
        .unwrap();
        assert_eq!(rows, 3);
        assert_eq!(stats.invalid(), 2);
        assert_eq!(stats.samples()[0], "x.gz line 4: the line ends before its request");
        let want = [
            ("client_ip", DataType::Utf8),
            ("hit", DataType::Utf8),
            ("resp_time", DataType::Int64),
            (
                "req_time",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ),
            ("method", DataType::Utf8),
            ("url", DataType::Utf8),
            ("protocol", DataType::Utf8),
            ("resp_code", DataType::Int64),
            ("resp_size", DataType::Int64),
            ("referer", DataType::Utf8),
            ("user_agent", DataType::Utf8),
        ];
        let got: Vec<_> = fusion_schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        assert_eq!(got, want.map(|(n, t)| (n.to_string(), t)).to_vec());
    }

    #[test]
    fn hours_overlap_ranges_in_any_zone_and_domains_are_host_names() {
        let ist = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap();
        // 05:00 +05:30 is 07:30 Beijing: the 07 hour file holds part of the range
        let (start, end) = (t("2017-06-01T05:00:00+05:30"), t("2017-06-01T06:00:00+05:30"));
        assert_eq!(start.offset(), &ist);
        assert!(overlaps(t("2017-06-01T07:00:00+08:00"), start, end));
        assert!(overlaps(t("2017-06-01T08:00:00+08:00"), start, end));
        assert!(!overlaps(
            t("2017-06-01T08:30:00+08:00") + chrono::Duration::minutes(30),
            start,
            end
        ));
        assert!(!overlaps(t("2017-06-01T06:00:00+08:00"), start, end));
        check_domain("d", "cdn.example-1.com").unwrap();
        for bad in ["", "../x", "/abs", "a/b", "a..b", ".a"] {
            assert!(
                check_domain("spec.domains[0]", bad)
                    .unwrap_err()
                    .message()
                    .contains("spec.domains[0]")
            );
        }
    }

    #[test]
    fn file_names_give_their_hour() {
        let h = log_file_hour("a.com", "v2/a.com_2017-06-01-05_part-00001.gz").unwrap();
        assert_eq!(h.to_rfc3339(), "2017-06-01T05:00:00+08:00");
        assert!(log_file_hour("a.com", "b.com_2017-06-01-05_part-00001.gz").is_none());
        assert!(log_file_hour("a.com", "a.com_2017-06-01-25_part-00001.gz").is_none());
        assert!(log_file_hour("a.com", "a.com_2017-06-01-05_part-.gz").is_none());
        assert!(log_file_hour("a.com", "a.com_2017-06-01-05_part-00001.gz.part").is_none());
    }

    #[test]
    fn qbox_signs_path_and_query_with_a_newline() {
        // HMAC-SHA1("sk", "/v2/tune/log/list\n"), computed with Python's hmac module
        let url = url::Url::parse("http://fusion.qiniuapi.com/v2/tune/log/list").unwrap();
        let auth = qbox_authorization("ak", "sk", &url);
        assert_eq!(auth, "QBox ak:Z2zF1Rpw83eVqui_98D4GITVIOI=");
    }
}
