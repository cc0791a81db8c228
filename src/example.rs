//! The CDN-logs example: a generator of access logs as newline-delimited
//! JSON `.gz`, the input of `examples/cdn-logs` and of the benches.

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bucket of the example datasource.
pub const BUCKET: &str = "cdn-logs";
/// Key prefix the generator writes under.
pub const PREFIX: &str = "logs/";
/// The last day of generated logs (fixed, so outputs are reproducible).
pub const LAST_DAY: &str = "2026-11-24";
/// Days of logs.
pub const DAYS: i64 = 3;

const DOMAINS: &[&str] = &[
    "img.example.com",
    "video.example.com",
    "static.example.com",
    "dl.example.com",
];
const METHODS: &[&str] = &["GET", "GET", "GET", "GET", "HEAD", "POST"];
const STATUS: &[i64] = &[200, 200, 200, 200, 200, 200, 206, 304, 404, 500];
const PATHS: &[&str] = &[
    "/a/logo.png",
    "/v/intro.mp4",
    "/js/app.js",
    "/css/site.css",
    "/pkg/tool.apk",
    "/img/banner.jpg",
];
const REFERERS: &[&str] = &[
    "-",
    "https://www.example.com/",
    "https://m.example.com/list?page=2",
    "-",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
    "AndroidDownloadManager/7.1.2 (Linux; U; Android 7.1.2; MI 5X)",
    "curl/8.5.0",
];
const CACHE: &[&str] = &["HIT", "HIT", "HIT", "MISS", "-"];
const REGIONS: &[&str] = &["nb", "bj", "gz", "sg"];

/// A small deterministic generator (xorshift64*), so data needs no RNG crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// One log record as a JSON line (no trailing newline).
fn record(rng: &mut Rng, day_start: i64, out: &mut String) {
    use std::fmt::Write as _;
    let ts = day_start + (rng.next() % 86_400) as i64;
    let t = chrono::DateTime::from_timestamp(ts, 0).unwrap_or_default();
    let ip = rng.next();
    let status = *rng.pick(STATUS);
    let bytes = if status == 304 {
        0
    } else {
        (rng.next() % 2_000_000) as i64
    };
    let _ = write!(
        out,
        r#"{{"ts":"{}","domain":"{}","client_ip":"{}.{}.{}.{}","method":"{}","url_path":"{}","status":{},"bytes":{},"duration_ms":{},"referer":"{}","user_agent":"{}","cache":"{}","region":"{}"}}"#,
        t.format("%Y-%m-%dT%H:%M:%SZ"),
        rng.pick(DOMAINS),
        ip & 0xff,
        (ip >> 8) & 0xff,
        (ip >> 16) & 0xff,
        (ip >> 24) & 0xff,
        rng.pick(METHODS),
        rng.pick(PATHS),
        status,
        bytes,
        rng.next() % 5_000,
        rng.pick(REFERERS),
        rng.pick(AGENTS),
        rng.pick(CACHE),
        rng.pick(REGIONS),
    );
}

/// Writes `rows` records into `files` gzip files under
/// `<data_dir>/buckets/cdn-logs/logs/<day>/part-NNNNN.json.gz`, spread over
/// [`DAYS`] days ending [`LAST_DAY`]. Existing example logs are replaced.
/// Returns the files written.
pub fn generate_cdn_logs(data_dir: &Path, rows: u64, files: usize) -> std::io::Result<Vec<PathBuf>> {
    let root = data_dir.join("buckets").join(BUCKET).join(PREFIX);
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    let last = chrono::NaiveDate::parse_from_str(LAST_DAY, "%Y-%m-%d").map_err(std::io::Error::other)?;
    let files = files.max(1);
    let per_file = rows / files as u64;
    let extra = rows % files as u64;
    let jobs: Vec<(usize, u64, chrono::NaiveDate)> = (0..files)
        .map(|i| {
            let day = last - chrono::Duration::days(DAYS - 1 - (i as i64 * DAYS / files as i64));
            (i, per_file + u64::from((i as u64) < extra), day)
        })
        .collect();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut written = Vec::new();
    for chunk in jobs.chunks(threads) {
        let results: Vec<std::io::Result<PathBuf>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&(i, n, day)| {
                    let root = root.clone();
                    s.spawn(move || write_file(&root, i, n, day))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(std::io::Error::other("generator thread panicked")))
                })
                .collect()
        });
        for r in results {
            written.push(r?);
        }
    }
    Ok(written)
}

fn write_file(root: &Path, i: usize, n: u64, day: chrono::NaiveDate) -> std::io::Result<PathBuf> {
    let dir = root.join(day.format("%Y-%m-%d").to_string());
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("part-{i:05}.json.gz"));
    let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut gz = GzEncoder::new(file, Compression::new(6));
    let day_start = day.and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp()).unwrap_or(0);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((i as u64 + 1) * 0x1000_0000_01b3));
    let mut line = String::with_capacity(512);
    for _ in 0..n {
        line.clear();
        record(&mut rng, day_start, &mut line);
        line.push('\n');
        gz.write_all(line.as_bytes())?;
    }
    gz.finish()?.flush()?;
    Ok(path)
}
