//! The `pbatch` command line.

use anyhow::Context;
use chrono::{DateTime, FixedOffset};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pbatch::{Progress, RunReport};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Sets glibc's malloc thresholds for pbatch's workload, unless the user set
/// malloc tunables of their own (`GLIBC_TUNABLES=glibc.malloc...`).
///
/// Why: a parquet scan decompresses each page into a fresh buffer of about
/// 1 MiB. With glibc's defaults such a block is an mmap of its own or sits at
/// the top of a thread's heap, which is trimmed when it is freed, so the next
/// page's buffer comes back as new zeroed pages: page faults and memset were
/// 15% of a top-k over 10M parquet rows. Keeping blocks up to 8 MiB in the
/// heaps and up to 32 MiB of free heap top reuses them: that top-k went from
/// 0.42 to 0.33 s with 2-5 MiB more heap at its peak; csv and json jobs were unchanged
/// (mimalloc, tried too, doubled peak RSS).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    let user_set = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc."));
    if user_set {
        return;
    }
    // SAFETY: mallopt only sets two of malloc's parameters (values in range
    // for a c_int); it runs first thing in main, before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

#[derive(Parser)]
#[command(
    name = "pbatch",
    version,
    about = "An embeddable batch SQL engine (Pandora batch API)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One batch of a job from a spec folder (`run`, `verify`).
#[derive(clap::Args)]
struct BatchArgs {
    /// Folder with datasources/, jobs/, variables/ and an optional pbatch.toml.
    spec_dir: PathBuf,
    /// The job.
    job: String,
    /// A param value, `name=value` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// The batch time (RFC 3339; for `run` default now, local zone).
    #[arg(long)]
    batch_time: Option<String>,
    /// Data dir (default: pbatch.toml's engine.data_dir, else ./pbatch-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one batch of a job from a spec folder.
    Run {
        #[command(flatten)]
        batch: BatchArgs,
        /// Apply the folder to the data dir's durable catalog and record the
        /// batch in the job's history (see `pbatch history`).
        #[arg(long)]
        record: bool,
        /// Print nothing but the summary.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check that a batch's file exports match their `_SUCCESS` manifests
    /// (every listed file there, with its size and CRC-32C); exits 1 if not.
    /// Without --batch-time, the folders a batch would write now are
    /// checked, whichever batch committed there.
    Verify {
        #[command(flatten)]
        batch: BatchArgs,
    },
    /// A dry run: what one batch would read (files, bytes), the SQL with its
    /// variables expanded, DataFusion's plan, and what each export would
    /// write or replace. Writes no output and records nothing; exits 1 when
    /// the batch would fail.
    Plan {
        #[command(flatten)]
        batch: BatchArgs,
        /// Print the API's JSON body (as POST /v2/jobs/<job>/actions/plan).
        #[arg(long)]
        json: bool,
    },
    /// Run a job for each scheduled time of a past range, recorded in the
    /// data dir's durable catalog (like `run --record`); depend jobs run
    /// after each. Ctrl-C stops it. Exits 1 when a batch failed.
    Backfill {
        /// Folder with datasources/, jobs/, variables/ and an optional pbatch.toml.
        spec_dir: PathBuf,
        /// The job.
        job: String,
        /// First batch time (included): RFC 3339, "yyyy-MM-dd HH:mm:ss" or yyyy-MM-dd (engine zone).
        #[arg(long, required_unless_present = "times")]
        from: Option<String>,
        /// End of the range (excluded).
        #[arg(long, required_unless_present = "times")]
        to: Option<String>,
        /// Explicit batch times instead of a range (a manual job needs them).
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["from", "to"])]
        times: Vec<String>,
        /// A time that already has a batch: none (skip it), failed (rerun Failed / Canceled ones) or all.
        #[arg(long, default_value = "none")]
        reprocess: String,
        /// Batches running at once.
        #[arg(long, default_value_t = 1)]
        max_active: u32,
        /// A param value, `name=value` (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Allow more than 10,000 batch times.
        #[arg(long)]
        force: bool,
        /// Print nothing but the summary.
        #[arg(long, short)]
        quiet: bool,
        /// Data dir (default: pbatch.toml's engine.data_dir, else ./pbatch-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Load a spec folder into the data dir's durable catalog (create or update).
    Apply {
        /// Folder with datasources/, jobs/, variables/ and an optional pbatch.toml.
        spec_dir: PathBuf,
        /// Data dir (default: pbatch.toml's engine.data_dir, else ./pbatch-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Show a job's batches from the durable catalog.
    History {
        /// The job.
        job: String,
        /// Data dir (default ./pbatch-data, or PBATCH_ENGINE_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Only batches in this status (Successful, Failed, Running, ...).
        #[arg(long)]
        status: Option<String>,
        /// runId, startTime, endTime or batchTime; prefix - for descending (default -runId).
        #[arg(long)]
        sort_by: Option<String>,
        /// Page size.
        #[arg(long)]
        size: Option<i64>,
        /// Page, from 1.
        #[arg(long)]
        page: Option<i64>,
        /// Only this batch (-1 = the latest).
        #[arg(long, allow_hyphen_values = true)]
        run_id: Option<i64>,
        /// Print the API's JSON body instead of a table.
        #[arg(long)]
        json: bool,
        /// Print the log of batch N instead (each attempt's, oldest first).
        #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["status", "sort_by", "size", "page", "run_id"])]
        log: Option<i64>,
    },
    /// Serve the REST API (`/v2/...`) over a durable catalog, with the scheduler running.
    Serve {
        /// pbatch.toml to read (default: ./pbatch.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data dir (default: the config's engine.data_dir, else ./pbatch-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Listen address (default: server.listen, else 127.0.0.1:7100; port 0 picks one).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Start a Ballista scheduler that runs pbatch batches on executors
    /// (see README, "Running on a cluster"). Runs until stopped.
    Scheduler {
        /// pbatch.toml to read (default: ./pbatch.toml when present): the
        /// scheduler lists files, so it reads the engine's stores.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address (port 0 picks one).
        #[arg(long, default_value = "127.0.0.1:50050")]
        listen: String,
        /// The host executors reach this scheduler at (default: the listen IP).
        #[arg(long)]
        external_host: Option<String>,
        /// Seconds without a heartbeat before an executor is lost and its
        /// tasks run on the others.
        #[arg(long, default_value_t = 30)]
        executor_timeout: u64,
    },
    /// Start a Ballista executor with pbatch's scans and stores, registered
    /// with a scheduler. Runs until stopped.
    Executor {
        /// The scheduler, df://host:port.
        #[arg(long)]
        scheduler: String,
        /// pbatch.toml to read (default: ./pbatch.toml when present): the
        /// executor reads the engine's stores through it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address of the Flight service (results, shuffles); the
        /// executor's gRPC service takes the next port.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: String,
        /// The host the scheduler and other executors reach this one at
        /// (default: the address the scheduler sees).
        #[arg(long)]
        external_host: Option<String>,
        /// Shuffle files and spills (default: a folder in the temp dir).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Tasks run at once (default: this machine's cores).
        #[arg(long)]
        concurrent_tasks: Option<usize>,
        /// Names the executor in logs and in the scheduler (default: host-port).
        #[arg(long)]
        id: Option<String>,
    },
    /// Generate example data.
    Example {
        #[command(subcommand)]
        which: Example,
    },
}

#[derive(Subcommand)]
enum Example {
    /// CDN access logs (newline-delimited JSON .gz) for examples/cdn-logs.
    CdnLogs {
        /// Rows to generate.
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Files to spread them over.
        #[arg(long, default_value_t = 8)]
        files: usize,
        /// Data dir to fill (default ./pbatch-data).
        #[arg(long, default_value = "pbatch-data")]
        data_dir: PathBuf,
    },
}

/// `--config`, else ./pbatch.toml when present, then `PBATCH_*`.
fn load_config(config: Option<PathBuf>) -> anyhow::Result<pbatch::Config> {
    let file = config.or_else(|| Some(PathBuf::from("pbatch.toml")).filter(|p| p.is_file()));
    let mut c = match &file {
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            pbatch::Config::from_toml(&text, &f.display().to_string())?
        }
        None => pbatch::Config::default(),
    };
    c.apply_env(std::env::vars())?;
    Ok(c)
}

fn socket_addr(flag: &str, v: &str) -> anyhow::Result<std::net::SocketAddr> {
    v.parse()
        .map_err(|e| anyhow::anyhow!("{flag} {v:?} is not ip:port (e.g. 127.0.0.1:50050): {e}"))
}

fn scheduler(config: Option<PathBuf>, listen: &str, external_host: Option<String>, timeout: u64) -> anyhow::Result<()> {
    let c = load_config(config)?;
    let opts = pbatch::cluster::SchedulerOptions {
        listen: socket_addr("--listen", listen)?,
        external_host,
        stores: pbatch::cluster_stores(&c)?,
        executor_timeout_secs: timeout.max(1),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(pbatch::cluster::run_scheduler(opts, |addr| {
        println!("pbatch scheduler: listening on df://{addr}");
    }))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn executor(
    scheduler: &str,
    config: Option<PathBuf>,
    listen: &str,
    external_host: Option<String>,
    work_dir: Option<PathBuf>,
    concurrent_tasks: Option<usize>,
    id: Option<String>,
) -> anyhow::Result<()> {
    let c = load_config(config)?;
    let listen = socket_addr("--listen", listen)?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let opts = pbatch::cluster::ExecutorOptions {
        scheduler: pbatch::cluster::SchedulerAddr::parse("--scheduler", scheduler)?,
        listen,
        external_host,
        work_dir: work_dir.unwrap_or_else(|| std::env::temp_dir().join(format!("pbatch-executor-{}", listen.port()))),
        concurrent_tasks: concurrent_tasks.unwrap_or(cores),
        stores: pbatch::cluster_stores(&c)?,
        id,
        heartbeat_secs: 5,
    };
    println!(
        "pbatch executor: serving on {listen}, registering with {}",
        opts.scheduler
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(pbatch::cluster::run_executor(opts))?;
    Ok(())
}

fn serve(config: Option<PathBuf>, data_dir: Option<PathBuf>, listen: Option<String>) -> anyhow::Result<()> {
    let c = load_config(config)?;
    let listen = listen
        .or_else(|| c.server.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:7100".to_string());
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| anyhow::anyhow!("listen address {listen:?} is not ip:port (e.g. 127.0.0.1:7100): {e}"))?;
    let metrics_addr: Option<std::net::SocketAddr> = c
        .server
        .metrics_listen
        .as_deref()
        .map(|m| {
            m.parse()
                .map_err(|e| anyhow::anyhow!("server.metrics_listen {m:?} is not ip:port (e.g. 127.0.0.1:9464): {e}"))
        })
        .transpose()?;
    let opts = pbatch::server::ServerOptions::from_config(&c.server)?;
    let mut b = pbatch::Engine::builder().config(c).durable();
    if let Some(d) = data_dir {
        b = b.data_dir(d);
    }
    let engine = b.build()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = pbatch::server::bind(addr, &opts).await?;
        let local = listener.local_addr().context("reading the bound address")?;
        println!(
            "pbatch serve: listening on http://{local} (data dir {}, {})",
            engine.data_dir().display(),
            if opts.keys.is_empty() {
                "no keys: requests are not signed"
            } else {
                "signed requests only"
            }
        );
        // the metrics listener lives as long as this block (dropping the set aborts it)
        let mut side = tokio::task::JoinSet::new();
        if let Some(m) = metrics_addr {
            let metrics = tokio::net::TcpListener::bind(m)
                .await
                .with_context(|| format!("listening on server.metrics_listen {m}"))?;
            let at = metrics.local_addr().context("reading the bound address")?;
            println!("pbatch serve: metrics on http://{at}/metrics (unsigned)");
            let engine = engine.clone();
            side.spawn(async move {
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                if let Err(e) = pbatch::server::serve_metrics_on(engine, metrics, shutdown).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        use std::io::Write;
        std::io::stdout().flush().ok();
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        pbatch::server::serve_on(engine, opts, listener, shutdown).await?;
        anyhow::Ok(())
    })
}

fn main() -> ExitCode {
    use tracing_subscriber::prelude::*;
    tune_malloc();
    // the console at PBATCH_LOG's level; each batch's own log at info
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(tracing_subscriber::EnvFilter::try_from_env("PBATCH_LOG").unwrap_or_else(|_| "warn".into()));
    tracing_subscriber::registry()
        .with(console)
        .with(pbatch::run_log_layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO))
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<pbatch::model::Error>() {
                Some(pe) => eprintln!("{pe}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run {
            batch:
                BatchArgs {
                    spec_dir,
                    job,
                    params,
                    batch_time,
                    data_dir,
                },
            record,
            quiet,
        } => {
            let params = parse_params(&params)?;
            let batch_time = parse_batch_time(batch_time.as_deref())?;
            spec_folder(&spec_dir)?;
            let engine = if record {
                let engine = pbatch::spec::builder_for_dir(&spec_dir, data_dir.as_deref())?
                    .durable()
                    .build()?;
                pbatch::spec::apply_dir(&engine, &spec_dir)?;
                engine
            } else {
                loaded_engine(&spec_dir, data_dir.as_deref())?
            };
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let shown = Arc::new(RunProgress::new(&job, quiet));
            let p = Arc::clone(&shown);
            let progress = Arc::new(move |e: Progress| p.on(e));
            let result = runtime.block_on(engine.run_once_with(&job, &params, batch_time, progress));
            shown.finish();
            // SQL that does not parse: name the job's file
            let report = result.map_err(|e| {
                if e.code() == pbatch::model::ErrorCode::InvalidSql {
                    e.context(spec_dir.join("jobs").join(format!("{job}.json")).display())
                } else {
                    e
                }
            })?;
            print_summary(&report, &engine);
            Ok(())
        }
        Command::Verify {
            batch:
                BatchArgs {
                    spec_dir,
                    job,
                    params,
                    batch_time,
                    data_dir,
                },
        } => {
            let params = parse_params(&params)?;
            // without --batch-time: the folders a batch now writes, whichever batch committed there
            let batch_time = batch_time.as_deref().map(|t| parse_batch_time(Some(t))).transpose()?;
            let engine = loaded_engine(&spec_dir, data_dir.as_deref())?;
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let checks = runtime.block_on(engine.verify(&job, &params, batch_time))?;
            let mut bad = 0;
            for c in &checks {
                if c.ok() {
                    let batch = c
                        .batch
                        .as_ref()
                        .map(|(run, t)| format!(" (run {run}, batch time {t})"))
                        .unwrap_or_default();
                    println!(
                        "ok   {}: {} files, {} rows match {}{batch}",
                        c.export, c.files, c.rows, c.manifest
                    );
                } else {
                    bad += 1;
                    for p in &c.problems {
                        println!("FAIL {}: {p}", c.export);
                    }
                }
            }
            if checks.is_empty() {
                println!("job {job} has no file exports");
            }
            if bad > 0 {
                anyhow::bail!("{bad} of {} exports do not match their manifest", checks.len());
            }
            Ok(())
        }
        Command::Plan {
            batch:
                BatchArgs {
                    spec_dir,
                    job,
                    params,
                    batch_time,
                    data_dir,
                },
            json,
        } => {
            let params = parse_params(&params)?;
            let batch_time = parse_batch_time(batch_time.as_deref())?;
            let engine = loaded_engine(&spec_dir, data_dir.as_deref())?;
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let preview = runtime.block_on(engine.dry_run(&job, &params, batch_time))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&preview)?);
            } else {
                print_preview(&preview);
            }
            if let Some(e) = preview.error() {
                anyhow::bail!("the batch would fail: {e}");
            }
            Ok(())
        }
        Command::Serve {
            config,
            data_dir,
            listen,
        } => serve(config, data_dir, listen),
        Command::Scheduler {
            config,
            listen,
            external_host,
            executor_timeout,
        } => scheduler(config, &listen, external_host, executor_timeout),
        Command::Executor {
            scheduler,
            config,
            listen,
            external_host,
            work_dir,
            concurrent_tasks,
            id,
        } => executor(
            &scheduler,
            config,
            &listen,
            external_host,
            work_dir,
            concurrent_tasks,
            id,
        ),
        Command::Backfill {
            spec_dir,
            job,
            from,
            to,
            times,
            reprocess,
            max_active,
            params,
            force,
            quiet,
            data_dir,
        } => {
            let req = pbatch::model::BackfillRequest {
                from,
                to,
                times: (!times.is_empty()).then_some(times),
                reprocess: pbatch::model::Reprocess::parse(&reprocess)?,
                max_active: Some(max_active),
                params: Some(
                    parse_params(&params)?
                        .into_iter()
                        .map(|(name, value)| pbatch::model::Param {
                            name,
                            default: String::new(),
                            value: Some(value),
                        })
                        .collect(),
                ),
                force,
            };
            spec_folder(&spec_dir)?;
            let engine = pbatch::spec::builder_for_dir(&spec_dir, data_dir.as_deref())?
                .durable()
                .build()?;
            pbatch::spec::apply_dir(&engine, &spec_dir)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let s = runtime.block_on(backfill(&engine, &job, &req, quiet))?;
            println!(
                "backfill {} of job {}: {} batch times: {} done, {} failed, {} canceled, {} skipped",
                s.id, s.job, s.total, s.done, s.failed, s.canceled, s.skipped
            );
            let failed: Vec<&pbatch::model::BackfillItem> = s
                .batches
                .iter()
                .filter(|b| {
                    matches!(
                        b.state,
                        pbatch::model::BackfillItemState::Failed | pbatch::model::BackfillItemState::Canceled
                    )
                })
                .collect();
            if !failed.is_empty() {
                let rows: Vec<Vec<String>> = failed
                    .iter()
                    .map(|b| {
                        let message = b
                            .run_id
                            .and_then(|id| {
                                let q = pbatch::model::HistoryQuery {
                                    run_id: Some(id),
                                    ..Default::default()
                                };
                                engine.history(&job, &q).ok()?.history.into_iter().next()
                            })
                            .map(|h| h.message)
                            .unwrap_or_default();
                        vec![
                            b.run_id.map(|i| i.to_string()).unwrap_or_default(),
                            b.batch_time.clone(),
                            format!("{:?}", b.state).to_lowercase(),
                            message_start(&message),
                        ]
                    })
                    .collect();
                print_table(&["runId", "batchTime", "state", "message"], &rows);
                anyhow::bail!("{} of {} batches did not succeed", failed.len(), s.total);
            }
            Ok(())
        }
        Command::Apply { spec_dir, data_dir } => {
            spec_folder(&spec_dir)?;
            let engine = pbatch::spec::builder_for_dir(&spec_dir, data_dir.as_deref())?
                .durable()
                .build()?;
            let applied = pbatch::spec::apply_dir(&engine, &spec_dir)?;
            println!(
                "applied {}: {} created, {} updated, catalog {}",
                spec_dir.display(),
                applied.created,
                applied.updated,
                engine.data_dir().join("catalog.sqlite").display()
            );
            Ok(())
        }
        Command::History {
            job,
            data_dir,
            status,
            sort_by,
            size,
            page,
            run_id,
            json,
            log,
        } => {
            let mut config = pbatch::Config::default();
            config.apply_env(std::env::vars())?;
            // a read-only command: it opens a catalog, never creates one
            let dir = data_dir.unwrap_or_else(|| config.data_dir());
            let catalog = dir.join("catalog.sqlite");
            if !catalog.is_file() {
                anyhow::bail!(
                    "no catalog at {}: `pbatch apply <spec-dir>` or `pbatch run --record` makes one (or pass --data-dir)",
                    catalog.display()
                );
            }
            let engine = pbatch::Engine::builder()
                .config(config)
                .durable()
                .data_dir(dir)
                .build()?;
            if let Some(id) = log {
                let l = engine.run_log(&job, id)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&l)?);
                    return Ok(());
                }
                if l.attempts.is_empty() {
                    println!("batch {id} of job {job} has no log yet");
                }
                for a in &l.attempts {
                    let which = match a.rerun_count {
                        0 => "first attempt".to_string(),
                        n => format!("rerun {n}"),
                    };
                    println!("== batch {id} of job {job}, {which}");
                    if a.dropped > 0 {
                        println!("({} earlier lines left out)", a.dropped);
                    }
                    for line in &a.lines {
                        println!("{line}");
                    }
                }
                return Ok(());
            }
            let q = pbatch::model::HistoryQuery {
                page,
                size,
                sort_by,
                status,
                run_id,
            };
            let h = engine.history(&job, &q)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&h)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = h
                .history
                .iter()
                .map(|r| {
                    vec![
                        r.run_id.to_string(),
                        r.batch_time.clone(),
                        r.status.to_string(),
                        format!("{}s", r.duration),
                        r.rerun_count.to_string(),
                        rows_of(&r.message),
                        // one batch asked for: its whole message
                        if run_id.is_some() {
                            r.message.clone()
                        } else {
                            message_start(&r.message)
                        },
                    ]
                })
                .collect();
            print_table(
                &[
                    "runId",
                    "batchTime",
                    "status",
                    "duration",
                    "reruns",
                    "rows in/out",
                    "message",
                ],
                &rows,
            );
            println!("{} batches in all", h.total);
            Ok(())
        }
        Command::Example {
            which: Example::CdnLogs { rows, files, data_dir },
        } => {
            let started = std::time::Instant::now();
            let written = pbatch::example::generate_cdn_logs(&data_dir, rows, files)
                .with_context(|| format!("writing example logs under {}", data_dir.display()))?;
            let bytes: u64 = written
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            println!(
                "wrote {rows} rows into {} files ({:.1} MiB) under {} in {:.1} s",
                written.len(),
                bytes as f64 / (1024.0 * 1024.0),
                data_dir.join("buckets").join(pbatch::example::BUCKET).display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// An in-memory engine with the spec folder loaded (`run` without
/// `--record`, `verify`, `plan`).
fn loaded_engine(spec_dir: &std::path::Path, data_dir: Option<&std::path::Path>) -> anyhow::Result<pbatch::Engine> {
    spec_folder(spec_dir)?;
    let engine = pbatch::spec::engine_for_dir(spec_dir, data_dir)?;
    pbatch::spec::load_dir(&engine, spec_dir)?;
    Ok(engine)
}

/// A spec folder that does not exist is a usage error, said plainly.
fn spec_folder(dir: &std::path::Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!(
            "spec folder {} does not exist (it holds datasources/, jobs/, variables/ and an optional pbatch.toml)",
            dir.display()
        );
    }
    Ok(())
}

/// `--param name=value` values.
fn parse_params(params: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let parsed = params
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(pbatch::model::Error::new(
                pbatch::model::ErrorCode::InvalidVariableValue,
                format!("--param {p:?}: write name=value"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parsed)
}

/// `--batch-time`, RFC 3339; now in the local zone when absent.
fn parse_batch_time(t: Option<&str>) -> anyhow::Result<DateTime<FixedOffset>> {
    Ok(match t {
        Some(t) => DateTime::parse_from_rfc3339(t).map_err(|e| {
            pbatch::model::Error::new(
                pbatch::model::ErrorCode::InvalidDateFormat,
                format!("--batch-time {t:?} is not RFC 3339 (e.g. 2026-11-25T08:00:00+08:00): {e}"),
            )
        })?,
        None => chrono::Local::now().fixed_offset(),
    })
}

fn print_summary(r: &RunReport, engine: &pbatch::Engine) {
    println!(
        "job {}  run {}  batch time {}  {:.2} s  ({})",
        r.job,
        r.run_id,
        r.batch_time.format("%Y-%m-%d %H:%M:%S %:z"),
        r.seconds,
        r.placement
    );
    println!(
        "read {} rows from {} files; the SQL produced {} rows",
        r.rows_read, r.files_read, r.rows_out
    );
    if r.invalid_skipped > 0 {
        println!("skipped {} invalid records (omitInvalid)", r.invalid_skipped);
    }
    if r.exports.is_empty() {
        println!("no exports");
        return;
    }
    let rows: Vec<Vec<String>> = r
        .exports
        .iter()
        .map(|e| {
            let keys = if e.skipped {
                "(ignored: output exists)".to_string()
            } else if e.keys.len() == 1 {
                e.keys[0].clone()
            } else {
                format!(
                    "{} .. ({} files)",
                    e.keys.first().cloned().unwrap_or_default(),
                    e.keys.len()
                )
            };
            vec![
                e.export.clone(),
                e.keys.len().to_string(),
                e.rows.to_string(),
                e.bytes.to_string(),
                keys,
            ]
        })
        .collect();
    print_table(&["export", "files", "rows", "bytes", "keys"], &rows);
    println!("outputs are under {}", engine.data_dir().join("buckets").display());
}

/// A dry run, section by section.
fn print_preview(p: &pbatch::BatchPreview) {
    println!(
        "job {}  batch time {}  (dry run: nothing is written)",
        p.job, p.batch_time
    );
    println!("\nvariables:");
    let rows: Vec<Vec<String>> = p
        .variables
        .iter()
        .map(|v| vec![format!("  {}", v.name), v.value.clone()])
        .collect();
    print_table(&["  name", "value"], &rows);
    println!("\nsql:");
    for line in p.sql.trim().lines() {
        println!("  {line}");
    }
    println!("\nreads:");
    for s in &p.srcs {
        println!(
            "  {} (datasource {}): {} files, {} bytes",
            s.table, s.datasource, s.files, s.bytes
        );
        for f in &s.first {
            println!("    {f}");
        }
        if s.files > s.first.len() {
            println!("    ... and {} more", s.files - s.first.len());
        }
    }
    println!("\nresult columns:");
    for c in &p.schema {
        println!("  {}: {}", c.name, c.ty);
    }
    println!("\nlogical plan:");
    for line in p.logical_plan.lines() {
        println!("  {line}");
    }
    println!("\nphysical plan:");
    for line in p.physical_plan.lines() {
        println!("  {line}");
    }
    println!("\nexports:");
    if p.exports.is_empty() {
        println!("  none");
    }
    for e in &p.exports {
        println!("  {} ({}) -> {}", e.export, e.kind, e.target);
        for w in &e.writes {
            println!("    {w}");
        }
        if !e.existing.is_empty() {
            println!("    there now: {}", e.existing.join(", "));
        }
        println!("    {}", e.effect);
    }
}

/// The first line of a message, cut at 60 characters.
fn message_start(m: &str) -> String {
    let line = m.lines().next().unwrap_or_default();
    if line.chars().count() > 60 {
        format!("{}...", line.chars().take(57).collect::<String>())
    } else {
        line.to_string()
    }
}

/// Rows read and written, from a Successful batch's message ("read 20 rows
/// from 2 files, wrote 3 rows into 1 files"), as `20/3`.
fn rows_of(m: &str) -> String {
    let words: Vec<&str> = m.split_whitespace().collect();
    let after = |verb: &str| {
        words
            .windows(3)
            .find(|w| w[0] == verb && w[2].starts_with("rows"))
            .and_then(|w| w[1].parse::<u64>().ok())
    };
    match (after("read"), after("wrote")) {
        (Some(i), Some(o)) => format!("{i}/{o}"),
        _ => String::new(),
    }
}

/// Creates a backfill and drives it to its end, showing progress on
/// stderr: a bar on a terminal, else a line every 5 s; nothing with `quiet`.
/// Ctrl-C stops it (its batches in flight end Canceled).
async fn backfill(
    engine: &pbatch::Engine,
    job: &str,
    req: &pbatch::model::BackfillRequest,
    quiet: bool,
) -> anyhow::Result<pbatch::model::BackfillStatus> {
    use std::io::IsTerminal;
    let created = engine.backfill(job, req)?;
    let id = created.id;
    let terminal = std::io::stderr().is_terminal();
    let bar = if quiet || !terminal {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(created.total as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} batches  {elapsed} (eta {eta})  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    };
    let mut last_line: Option<std::time::Instant> = None;
    let mut printed_end = false;
    let mut report = |s: &pbatch::model::BackfillStatus| {
        if quiet {
            return;
        }
        let ended = (s.done + s.failed + s.canceled + s.skipped) as u64;
        let msg = format!(
            "{} done, {} failed, {} canceled, {} skipped, {} running",
            s.done, s.failed, s.canceled, s.skipped, s.running
        );
        if terminal {
            bar.set_position(ended);
            bar.set_message(msg);
            return;
        }
        let over = s.status != "Running" && s.running == 0;
        let due = last_line.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
        if !printed_end && (due || over) {
            eprintln!("backfill {id} of job {job}: {ended}/{} batches: {msg}", s.total);
            last_line = Some(std::time::Instant::now());
            printed_end = over;
        }
    };
    let drive = engine.drive_backfill(job, id, &mut report);
    tokio::pin!(drive);
    let s = tokio::select! {
        s = &mut drive => s?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("stopping backfill {id} of job {job}");
            engine.stop_backfill(job, id)?;
            drive.await?
        }
    };
    bar.finish_and_clear();
    Ok(s)
}

/// `pbatch run`'s progress on stderr: on a terminal a bar of input bytes
/// read out of the listed total, with rate and ETA, then rows out, and a line
/// per committed export; without one, the same as a line every
/// `PBATCH_PROGRESS_SECONDS` (default 5) and at each step; nothing when quiet.
struct RunProgress {
    job: String,
    quiet: bool,
    bar: Option<ProgressBar>,
    every: Duration,
    state: std::sync::Mutex<Shown>,
}

#[derive(Default)]
struct Shown {
    total: u64,
    read: u64,
    rows: u64,
    started: Option<std::time::Instant>,
    last_line: Option<std::time::Instant>,
    /// The last read line printed.
    printed: String,
}

impl RunProgress {
    fn new(job: &str, quiet: bool) -> Self {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar.set_message(format!("{job}: starting"));
            bar
        });
        let every = std::env::var("PBATCH_PROGRESS_SECONDS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(5));
        Self {
            job: job.to_string(),
            quiet,
            bar,
            every,
            state: std::sync::Mutex::new(Shown::default()),
        }
    }

    /// "read 1.2 MiB of 4.0 MiB (30%), 2.0 MiB/s, eta 1s"
    fn read_line(s: &Shown) -> String {
        // a table scanned twice (a self-join) reads its bytes twice
        let read = s.read.min(s.total);
        let secs = s.started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
        let rate = if secs > 0.0 { read as f64 / secs } else { 0.0 };
        let pct = (read * 100).checked_div(s.total).unwrap_or(100);
        let eta = if rate > 0.0 && s.total > read {
            format!(
                ", eta {}",
                indicatif::HumanDuration(Duration::from_secs_f64((s.total - read) as f64 / rate))
            )
        } else {
            String::new()
        };
        format!(
            "read {} of {} ({pct}%), {}/s{eta}; {} rows out",
            indicatif::HumanBytes(read),
            indicatif::HumanBytes(s.total),
            indicatif::HumanBytes(rate as u64),
            s.rows
        )
    }

    fn on(&self, p: Progress) {
        if self.quiet {
            return;
        }
        let Ok(mut s) = self.state.lock() else { return };
        let job = &self.job;
        match (&self.bar, p) {
            (Some(bar), Progress::Stage(stage)) => bar.set_message(format!("{job}: {stage}")),
            (Some(bar), Progress::Listed { files, bytes }) => {
                s.total = bytes;
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {elapsed} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}  {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_length(bytes);
                bar.set_message(format!("{job}: reading {files} files"));
            }
            (Some(bar), Progress::Read(bytes)) => bar.set_position(bytes.min(s.total)),
            (Some(bar), Progress::Rows(rows)) => bar.set_message(format!("{job}: {rows} rows out")),
            (Some(bar), Progress::Committed { export, files, bytes }) => bar.println(format!(
                "export {export}: committed {}, {}",
                plural(files, "file"),
                indicatif::HumanBytes(bytes)
            )),
            (None, Progress::Listed { files, bytes }) => {
                s.total = bytes;
                s.started = Some(std::time::Instant::now());
                s.last_line = s.started;
                eprintln!("{job}: reading {files} files, {}", indicatif::HumanBytes(bytes));
            }
            (None, Progress::Read(bytes)) => {
                s.read = bytes;
                if s.last_line.is_some_and(|t| t.elapsed() >= self.every) {
                    s.printed = Self::read_line(&s);
                    eprintln!("{job}: {}", s.printed);
                    s.last_line = Some(std::time::Instant::now());
                }
            }
            (None, Progress::Rows(rows)) => s.rows = rows,
            (None, Progress::Stage(stage)) => {
                // the read's end, unless the last line said it
                let line = Self::read_line(&s);
                if stage == "committing" && s.printed.split(',').next() != line.split(',').next() {
                    eprintln!("{job}: {line}");
                    s.printed = line;
                }
            }
            (
                Some(bar),
                Progress::Retry {
                    attempt,
                    of,
                    delay,
                    error,
                },
            ) => {
                bar.println(format!("{job}: {error}"));
                bar.set_message(format!(
                    "{job}: retry {attempt} of {of} in {}",
                    indicatif::HumanDuration(delay)
                ));
            }
            (
                None,
                Progress::Retry {
                    attempt,
                    of,
                    delay,
                    error,
                },
            ) => {
                eprintln!(
                    "{job}: {error}; retry {attempt} of {of} in {}",
                    indicatif::HumanDuration(delay)
                );
                s.printed.clear();
            }
            (None, Progress::Committed { export, files, bytes }) => eprintln!(
                "{job}: export {export}: committed {}, {}",
                plural(files, "file"),
                indicatif::HumanBytes(bytes)
            ),
            _ => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// "1 file", "3 files".
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Prints left-aligned columns.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
