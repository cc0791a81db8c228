//! Real servers on loopback for the sink tests and the sinks bench (shared
//! with `benches/sinks.rs` through `#[path]`): an HTTP receiver that records
//! what it got, InfluxDB 1.x, osmem-server (OpenSearch API), PostgreSQL and
//! MariaDB. Each starts in a temporary folder on a free port and stops when
//! dropped. A missing server panics naming what to install.
#![allow(dead_code)]

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The test venv's Python (PBATCH_PYTHON, else the venv scripts/test.sh makes).
fn venv_python() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("PBATCH_PYTHON") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    std::path::PathBuf::from(home).join(".cache/pbatch-venv/bin/python")
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub content_type: String,
    pub idempotency_key: String,
    pub body: String,
}

/// An HTTP receiver on `127.0.0.1:<port>`.
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Got>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// An HTTP answer body.
pub type Reply = hyper::Response<http_body_util::Full<hyper::body::Bytes>>;

/// A reply of `status` with `body`.
pub fn reply(status: u16, body: impl Into<Vec<u8>>) -> Reply {
    let mut r = hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(body.into())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
    r
}

/// Serves `answer` over HTTP/1 and 2 on `127.0.0.1:<free port>` from a
/// runtime of its own (shut it down to stop); returns the base URL.
pub fn serve<F, Fut>(answer: F) -> (String, tokio::runtime::Runtime)
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    runtime.spawn(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((sock, _)) = listener.accept().await {
            let answer = answer.clone();
            conns.spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let answer = answer.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                    .await;
            });
            while conns.try_join_next().is_some() {}
        }
    });
    (url, runtime)
}

impl Receiver {
    /// Answers `fail_first` requests with `fail_status`, then 200.
    pub fn start(fail_first: usize, fail_status: u16) -> Self {
        let got: Arc<Mutex<Vec<Got>>> = Default::default();
        let seen = Arc::clone(&got);
        let (url, runtime) = serve(move |req: hyper::Request<hyper::body::Incoming>| {
            let seen = Arc::clone(&seen);
            async move {
                let path = req.uri().to_string();
                let content_type = header(&req, "content-type");
                let idempotency_key = header(&req, "idempotency-key");
                let body = body(req).await;
                let n = {
                    let mut g = seen.lock().expect("lock");
                    g.push(Got {
                        path,
                        content_type,
                        idempotency_key,
                        body: String::from_utf8_lossy(&body).to_string(),
                    });
                    g.len()
                };
                let status = if n <= fail_first { fail_status } else { 200 };
                reply(status, format!("answer {n}: status {status}"))
            }
        });
        Self {
            url,
            got,
            runtime: Some(runtime),
        }
    }

    pub fn got(&self) -> Vec<Got> {
        self.got.lock().expect("lock").clone()
    }
}

/// A request header as text (empty when missing or not text).
pub fn header<B>(req: &hyper::Request<B>, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A request's whole body (empty when it cannot be read).
pub async fn body(req: hyper::Request<hyper::body::Incoming>) -> hyper::body::Bytes {
    use http_body_util::BodyExt;
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// A server process stopped when dropped.
pub struct Proc(std::process::Child, #[allow(dead_code)] Option<tempfile::TempDir>);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

pub async fn wait_up(url: &str) {
    let c = reqwest::Client::new();
    for _ in 0..500 {
        if c.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{url} did not come up");
}

pub async fn start_influx() -> (Proc, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let (http, rpc) = (free_port(), free_port());
    let d = dir.path().display();
    let conf = format!(
        "reporting-enabled = false\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n  dir = \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n[monitor]\n  store-enabled = false\n[http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n[logging]\n  level = \"warn\"\n"
    );
    std::fs::write(dir.path().join("influxdb.conf"), conf).expect("conf");
    let child = Command::new("influxd")
        .args(["run", "-config"])
        .arg(dir.path().join("influxdb.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("influxd is not installed: .ci/run installs it (apt-get install influxdb)");
    let url = format!("http://127.0.0.1:{http}");
    let p = Proc(child, Some(dir));
    wait_up(&format!("{url}/ping")).await;
    (p, url)
}

pub async fn start_osmem() -> (Proc, String) {
    let out = Command::new(venv_python())
        .args(["-c", "import osmem_server; print(osmem_server.resolve_binary())"])
        .output()
        .expect("python");
    let bin = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && !bin.is_empty(),
        "osmem-server is not in the test venv: scripts/test.sh installs it (pip install osmem-server): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = Command::new(bin)
        .args(["-addr", "127.0.0.1:0", "-no-ja"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("osmem-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let v: serde_json::Value = serde_json::from_str(&line).expect("osmem's first line is JSON");
    let url = v["url"].as_str().expect("url").to_string();
    let p = Proc(child, None);
    wait_up(&url).await;
    (p, url)
}

pub fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (is it installed? .ci/run installs it)"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL cluster run as user `postgres` (the tests run as root).
pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
}

/// PostgreSQL's binaries: `PBATCH_PG_BIN` (scripts/test.sh sets it), else
/// `pg_config --bindir`, else the newest `/usr/lib/postgresql/<v>/bin`.
fn pg_bin() -> String {
    if let Ok(d) = std::env::var("PBATCH_PG_BIN")
        && !d.is_empty()
    {
        return d;
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|d| std::path::Path::new(d).join("initdb").exists());
    if let Some(d) = from_pg_config {
        return d;
    }
    let mut versions: Vec<(u32, String)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let v: u32 = e.file_name().to_string_lossy().parse().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").exists().then(|| (v, bin.display().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("PostgreSQL's initdb was not found (Debian package postgresql)"))
}

impl Postgres {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        run(
            Command::new("chown").args(["postgres:postgres"]).arg(dir.path()),
            "chown the cluster folder to postgres",
        );
        let data = dir.path().join("data");
        let bin = pg_bin();
        run(
            Command::new("runuser")
                .args(["-u", "postgres", "--", &format!("{bin}/initdb"), "-D"])
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
                .stdout(Stdio::null()),
            "initdb (Debian package postgresql)",
        );
        let port = free_port();
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            dir.path().display()
        );
        run(
            Command::new("runuser")
                .args(["-u", "postgres", "--", &format!("{bin}/pg_ctl"), "-D"])
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("log"))
                .args(["-w", "-o", &opts, "start"]),
            "pg_ctl start",
        );
        let pg = Self { dir, port };
        pg.psql("postgres", "CREATE DATABASE reports");
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
            ])
            .args(["-At", "-F", "|", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{}/pg_ctl", pg_bin()), "-D"])
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A MariaDB server (mariadbd drops to user `mysql` itself).
pub struct Maria {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Maria {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        run(
            Command::new("chown").args(["mysql:mysql"]).arg(dir.path()),
            "chown the data folder to mysql",
        );
        let data = dir.path().join("data");
        run(
            Command::new("mariadb-install-db")
                .args([
                    "--user=mysql",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ])
                .arg(format!("--datadir={}", data.display()))
                .stdout(Stdio::null()),
            "mariadb-install-db (Debian package mariadb-server)",
        );
        let port = free_port();
        let child = Command::new("mariadbd")
            .args([
                "--no-defaults",
                "--user=mysql",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--port={port}"))
            .arg("--innodb-flush-log-at-trx-commit=0")
            .arg(format!("--log-error={}", dir.path().join("err").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd (Debian package mariadb-server)");
        let m = Self { child, _dir: dir, port };
        for _ in 0..500 {
            let ok = Command::new("mariadb-admin")
                .args(["--no-defaults", "-h127.0.0.1", &format!("-P{port}"), "-uroot", "ping"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                m.sql("CREATE DATABASE reports");
                return m;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mariadbd did not come up");
    }

    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/mysql", self.port)
    }

    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h127.0.0.1",
                &format!("-P{}", self.port),
                "-uroot",
                "-N",
                "-B",
                "-e",
                sql,
            ])
            .output()
            .expect("mariadb client");
        assert!(
            out.status.success(),
            "mariadb {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Maria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
