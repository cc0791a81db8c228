//! One batch's DataFusion session, sized by the job's container, and its SQL.

use crate::error::{Error, Result};
use datafusion::dataframe::DataFrame;
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use pbatch_model::{Container, ErrorCode};
use std::sync::Arc;

/// Memory per container GiB.
const GIB: usize = 1 << 30;

/// Sizing of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// Cores the container asks for (type x count), whatever this machine has.
    pub cores: usize,
    /// DataFusion target partitions.
    pub partitions: usize,
    /// Memory pool bytes (spilling beyond).
    pub memory: usize,
}

impl Sizing {
    /// From a container (type x count); without one, the machine's cores and 2 GiB per core.
    /// Partitions are capped by the cores this machine has: more would only add overhead.
    pub fn for_container(container: Option<&Container>) -> Self {
        let machine = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let (cores, gib) = match container {
            Some(c) => {
                let (cores, gib) = c.total();
                (cores as usize, gib as usize)
            }
            None => (machine, 2 * machine),
        };
        Self {
            cores: cores.max(1),
            partitions: cores.clamp(1, machine),
            memory: gib.max(1).saturating_mul(GIB),
        }
    }
}

/// A session for one batch.
pub(crate) fn session(sizing: Sizing) -> Result<SessionContext> {
    let (config, runtime) = session_parts(sizing)?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    for f in pbatch_source::session_functions() {
        ctx.register_udf(f.as_ref().clone());
    }
    Ok(ctx)
}

/// One batch's options and runtime (the memory pool, spills).
pub(crate) fn session_parts(sizing: Sizing) -> Result<(SessionConfig, Arc<RuntimeEnv>)> {
    let mut config = SessionConfig::new()
        .with_target_partitions(sizing.partitions)
        .with_information_schema(false);
    let opts = config.options_mut();
    // Plain Utf8 rather than view types: every writer (ORC included) takes it,
    // and readers of our output see ordinary strings.
    opts.execution.parquet.schema_force_view_types = false;
    opts.sql_parser.map_string_types_to_utf8view = false;
    opts.sql_parser.enable_ident_normalization = true;
    // The memory a sort keeps back for merging its spills: DataFusion's
    // 10 MiB default, but never more than a sixteenth of the pool, so small
    // pools still spill rather than fail.
    opts.execution.sort_spill_reservation_bytes = (sizing.memory / 16).min(10 << 20);
    // Parquet filters run inside the scan, cheapest first: the other columns
    // are decoded only for rows that pass (a 0.1% filter over 12 columns
    // decodes about a tenth of the data).
    opts.execution.parquet.pushdown_filters = true;
    opts.execution.parquet.reorder_filters = true;
    // ...but not a join's build-side values: every probe row would be
    // tested in the scan, where they usually all match (a CDN join with a
    // small dimension table: 0.51 s without it, 0.78 s with it).
    opts.optimizer.enable_join_dynamic_filter_pushdown = false;
    datafusion_env(&mut config, std::env::vars())?;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(sizing.memory)))
        .with_disk_manager_builder(DiskManagerBuilder::default())
        .build_arc()
        .map_err(|e| pbatch_model::Error::internal(format!("building the runtime: {e}")))?;
    Ok((config, runtime))
}

/// DataFusion's own environment variables over pbatch's defaults, as
/// DataFusion's CLI reads them: `datafusion.execution.batch_size` from
/// `DATAFUSION_EXECUTION_BATCH_SIZE`. A bad value is refused, naming it.
fn datafusion_env(config: &mut SessionConfig, vars: impl Iterator<Item = (String, String)>) -> Result<()> {
    env_options(config, "DATAFUSION_", vars)
}

/// The options of `config` set by environment variables starting with
/// `prefix` (`DATAFUSION_`, or `BALLISTA_` for a cluster's options): a
/// key's variable is the key in capitals with `_` for `.`.
pub(crate) fn env_options(
    config: &mut SessionConfig,
    prefix: &str,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<()> {
    let vars: Vec<(String, String)> = vars.filter(|(k, _)| k.starts_with(prefix)).collect();
    if vars.is_empty() {
        // (every batch's session comes here: no walk of the options)
        return Ok(());
    }
    let entries: Vec<(String, Option<String>)> = config
        .options()
        .entries()
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect();
    for (var, value) in vars {
        let Some((key, default)) = entries.iter().find(|(k, _)| k.to_uppercase().replace('.', "_") == var) else {
            continue;
        };
        let bad = |why: &str| {
            pbatch_model::Error::new(
                ErrorCode::InvalidRequestBody,
                format!("environment {var}={value:?} ({key}): {why}"),
            )
        };
        // Ballista stores its options as text and parses them as it reads
        // them (a bad one would panic there): a value must parse as its
        // default does
        let default = default.as_deref().unwrap_or_default();
        if default.parse::<u64>().is_ok() && value.trim().parse::<u64>().is_err() {
            return Err(bad("not a whole number").into());
        }
        if default.parse::<bool>().is_ok() && value.trim().parse::<bool>().is_err() {
            return Err(bad("not true or false").into());
        }
        config
            .options_mut()
            .set(key, value.trim())
            .map_err(|e| bad(&strip_df(&e.to_string())))?;
    }
    Ok(())
}

/// Refuses a bad `DATAFUSION_*` variable when an engine is built, rather
/// than at its first batch.
pub fn check_datafusion_env() -> Result<()> {
    datafusion_env(&mut SessionConfig::new(), std::env::vars())?;
    env_options(&mut pbatch_cluster::cluster_defaults(), "BALLISTA_", std::env::vars())
}

/// Plans a job's SQL (already expanded). Only queries are allowed: DDL, DML
/// and session statements are refused with `E18209`.
pub(crate) async fn plan_sql(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, options).await.map_err(|e| {
        let message = format!("computation.code: {}", strip_df(&e.to_string()));
        Error::DataFusion(pbatch_model::Caused::new(ErrorCode::InvalidSql, message, e))
    })
}

/// DataFusion's messages carry a context prefix the user does not need.
pub(crate) fn strip_df(msg: &str) -> String {
    let mut m = msg.trim();
    for p in [
        "Error during planning: ",
        "SQL error: ",
        "Schema error: ",
        "Execution error: ",
    ] {
        if let Some(rest) = m.strip_prefix(p) {
            m = rest;
        }
    }
    // the SQL parser's errors arrive as Rust debug text: ParserError("...")
    for p in ["ParserError(\"", "TokenizerError(\""] {
        if let Some(inner) = m.strip_prefix(p).and_then(|r| r.strip_suffix("\")")) {
            return format!("SQL syntax: {}", inner.replace("\\\"", "\""));
        }
    }
    m.to_string()
}

/// Rows the plan's leaves (the scans) produced, after it ran.
pub(crate) fn rows_read(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    if plan.children().is_empty() {
        return plan
            .metrics()
            .and_then(|m| m.output_rows())
            .map(|n| n as u64)
            .unwrap_or(0);
    }
    plan.children().into_iter().map(rows_read).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datafusion_variables_override_the_defaults_and_bad_ones_are_named() {
        let vars = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
                .into_iter()
        };
        let (mut config, _) = session_parts(Sizing::for_container(None)).unwrap();
        assert!(config.options().execution.parquet.pushdown_filters, "pbatch's default");
        datafusion_env(
            &mut config,
            vars(&[
                ("DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS", "false"),
                ("DATAFUSION_EXECUTION_BATCH_SIZE", "1024"),
                ("DATAFUSION_NOT_AN_OPTION", "1"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert!(!config.options().execution.parquet.pushdown_filters);
        assert_eq!(config.batch_size(), 1024);
        let e = datafusion_env(&mut config, vars(&[("DATAFUSION_EXECUTION_BATCH_SIZE", "many")])).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("DATAFUSION_EXECUTION_BATCH_SIZE=\"many\"") && msg.contains("datafusion.execution.batch_size"),
            "{msg}"
        );
    }

    /// A cluster job's Ballista options come from `BALLISTA_*` the same way.
    #[test]
    fn ballista_variables_set_a_cluster_jobs_options() {
        let mut config = pbatch_cluster::cluster_defaults();
        let key = "ballista.shuffle.max_concurrent_read_requests";
        let var = "BALLISTA_SHUFFLE_MAX_CONCURRENT_READ_REQUESTS";
        let value = |c: &SessionConfig| {
            c.options()
                .entries()
                .into_iter()
                .find(|e| e.key == key)
                .and_then(|e| e.value)
        };
        assert_eq!(value(&config).as_deref(), Some("64"), "Ballista's default");
        env_options(
            &mut config,
            "BALLISTA_",
            [(var.to_string(), "4".to_string())].into_iter(),
        )
        .unwrap();
        assert_eq!(value(&config).as_deref(), Some("4"));
        let e = env_options(
            &mut config,
            "BALLISTA_",
            [(var.to_string(), "x".to_string())].into_iter(),
        )
        .unwrap_err();
        assert!(e.to_string().contains(var) && e.to_string().contains(key), "{e}");
    }

    #[tokio::test]
    async fn sql_errors_name_the_problem() {
        let ctx = session(Sizing::for_container(None)).unwrap();
        let e = plan_sql(&ctx, "selec 1").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidSql);
        // the parser's error stays as the cause
        let cause = std::error::Error::source(&e).expect("a cause");
        assert!(
            cause.downcast_ref::<datafusion::error::DataFusionError>().is_some(),
            "{cause}"
        );
        let e = plan_sql(&ctx, "select x from nowhere").await.unwrap_err();
        assert!(e.to_string().contains("nowhere"), "{e}");
        let e = plan_sql(&ctx, "create table t as select 1").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidSql);
        let df = plan_sql(&ctx, "select 1 as a").await.unwrap();
        assert_eq!(df.count().await.unwrap(), 1);
    }

    /// `date_trunc` in a batch is pbatch's (UTC `date` columns truncated
    /// as plain timestamps), under both its names, with DataFusion's answer.
    #[tokio::test]
    async fn date_trunc_is_pbatchs_and_answers_as_datafusions() {
        use datafusion::execution::FunctionRegistry;
        let ctx = session(Sizing::for_container(None)).unwrap();
        for name in ["date_trunc", "datetrunc"] {
            let f = ctx.udf(name).unwrap();
            assert!(f.inner().is::<pbatch_source::UtcDateTrunc>(), "{name}");
        }
        let sql = "SELECT CAST(date_trunc('day', arrow_cast(t, 'Timestamp(Microsecond, Some(\"UTC\"))')) AS VARCHAR) \
                   AS d FROM (VALUES (TIMESTAMP '2026-12-03T21:22:40'), (NULL)) v(t)";
        let batches = plan_sql(&ctx, sql).await.unwrap().collect().await.unwrap();
        let d = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(d.contains("| 2026-12-03T00:00:00Z |"), "{d}");
    }

    /// A sort and a GROUP BY bigger than the memory pool finish by spilling
    /// to disk instead of failing or growing past the pool.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sort_and_group_by_spill_past_the_pool() {
        use datafusion::physical_plan::collect;
        let ctx = session(Sizing {
            cores: 2,
            partitions: 2,
            memory: 32 << 20,
        })
        .unwrap();
        // ~ 1.5M rows with distinct keys: far more than 32 MiB of sort/group state
        let sql = "SELECT v, count(*) AS n FROM (SELECT (value * 7919) % 1500000 AS v FROM generate_series(1, 1500000)) GROUP BY v ORDER BY v DESC";
        let df = plan_sql(&ctx, sql).await.unwrap();
        let plan = df.create_physical_plan().await.unwrap();
        let batches = collect(plan.clone(), ctx.task_ctx()).await.unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 1_500_000);
        let first = batches.iter().find(|b| b.num_rows() > 0).unwrap();
        let v = first
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        assert_eq!(v.value(0), 1_499_999, "sorted descending");
        fn spills(p: &Arc<dyn ExecutionPlan>) -> usize {
            p.metrics().and_then(|m| m.spill_count()).unwrap_or(0) + p.children().into_iter().map(spills).sum::<usize>()
        }
        assert!(
            spills(&plan) > 0,
            "the plan finished without spilling: the pool did not bind"
        );
    }

    #[test]
    fn sizing() {
        let c = Container {
            ty: "2U4G".into(),
            count: 3,
        };
        let s = Sizing::for_container(Some(&c));
        assert_eq!(s.memory, 12 * GIB);
        assert!(s.partitions >= 1 && s.partitions <= 6);
    }
}
