//! A Ballista cluster of `pbatch` processes on loopback: one scheduler and
//! some executors, stopped when dropped.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Cluster {
    /// `df://127.0.0.1:<port>`.
    pub scheduler: String,
    procs: Mutex<Vec<Child>>,
    /// Each executor's log (PBATCH_LOG=info).
    pub executor_logs: Vec<PathBuf>,
    pub dir: tempfile::TempDir,
}

/// A port p with p + 1 free too (an executor's Flight and gRPC ports).
fn free_pair() -> u16 {
    loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let p = a.local_addr().expect("addr").port();
        if p < 65535 && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pbatch"));
    c.env(
        "PBATCH_LOG",
        // the scheduler's job events (a cancel) at info, the rest of Ballista quiet
        "info,ballista=warn,ballista_executor=warn,ballista_scheduler=warn,ballista_core=warn,\
         ballista_scheduler::scheduler_server::grpc=info,\
         ballista_scheduler::scheduler_server::query_stage_scheduler=info",
    );
    c
}

impl Cluster {
    /// Starts a scheduler and `executors` executors (2 tasks each) and waits
    /// until every executor has registered.
    pub fn start(executors: usize) -> Cluster {
        Self::start_with(executors, &[])
    }

    /// [`start`](Self::start) with `env` set for every process (their
    /// `PBATCH_*` configuration).
    pub fn start_with(executors: usize, env: &[(&str, &str)]) -> Cluster {
        let bin = || {
            let mut c = bin();
            c.envs(env.iter().copied());
            c
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).expect("log file");
        let mut sched = bin()
            .args(["scheduler", "--listen", "127.0.0.1:0", "--executor-timeout", "10"])
            .stdout(Stdio::piped())
            .stderr(log("scheduler.log"))
            .spawn()
            .expect("starting pbatch scheduler");
        let mut line = String::new();
        let stdout = sched.stdout.take().expect("scheduler stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the scheduler's first line");
        let scheduler = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|a| a.starts_with("df://"))
            .unwrap_or_else(|| panic!("the scheduler printed {line:?}"))
            .to_string();
        let mut procs = vec![sched];
        let mut executor_logs = Vec::new();
        for i in 0..executors {
            let port = free_pair();
            let name = format!("executor-{i}.log");
            let child = bin()
                .args(["executor", "--scheduler", &scheduler, "--listen"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("--id")
                .arg(format!("exec-{i}"))
                .args(["--concurrent-tasks", "2", "--work-dir"])
                .arg(dir.path().join(format!("work-{i}")))
                .stdout(Stdio::null())
                .stderr(log(&name))
                .spawn()
                .expect("starting pbatch executor");
            procs.push(child);
            executor_logs.push(dir.path().join(name));
        }
        let cluster = Cluster {
            scheduler,
            procs: Mutex::new(procs),
            executor_logs,
            dir,
        };
        // ready when the scheduler has registered every executor
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = std::fs::read_to_string(cluster.dir.path().join("scheduler.log")).unwrap_or_default();
            let registered = (0..executors)
                .filter(|i| log.contains(&format!("id: \"exec-{i}\"")))
                .count();
            if registered == executors {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "executors did not register: {}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// Tasks executor `i` started.
    pub fn tasks(&self, i: usize) -> usize {
        std::fs::read_to_string(&self.executor_logs[i])
            .map(|t| t.matches("task started").count())
            .unwrap_or(0)
    }

    /// Every process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for e in std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                let t = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(15).collect();
                s.push_str(&format!("\n== {}\n", e.path().display()));
                for l in tail.into_iter().rev() {
                    s.push_str(l);
                    s.push('\n');
                }
            }
        }
        s
    }

    /// Kills executor `i` (SIGKILL).
    #[allow(dead_code)]
    pub fn kill_executor(&self, i: usize) {
        if let Ok(mut p) = self.procs.lock()
            && let Some(c) = p.get_mut(i + 1)
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn stop(&self) {
        if let Ok(mut p) = self.procs.lock() {
            for c in p.iter_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies spec folder `spec` to `to` with every scheduled job's container
/// raised past this machine (16U64G x 4), so each batch runs on a cluster.
pub fn raised_spec(spec: &std::path::Path, to: &std::path::Path) {
    crate::util::copy_dir(spec, to);
    for e in std::fs::read_dir(to.join("jobs")).expect("jobs folder") {
        let path = e.expect("entry").path();
        if path.extension().is_none_or(|x| x != "json") {
            continue; // a job's exports folder
        }
        let text = std::fs::read_to_string(&path).expect("job");
        let mut job: serde_json::Value = serde_json::from_str(&text).expect("job json");
        let depend = job.pointer("/scheduler/type").and_then(|t| t.as_str()) == Some("depend");
        if !depend && let Some(o) = job.as_object_mut() {
            o.insert("container".into(), serde_json::json!({"type": "16U64G", "count": 4}));
        }
        std::fs::write(&path, job.to_string()).expect("write job");
    }
}
