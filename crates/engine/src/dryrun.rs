//! Dry runs: what a batch would read, compute and write, found without
//! writing anything (`pbatch plan`, `POST /v2/jobs/<job>/actions/plan`).

use crate::engine::Engine;
use crate::inputs::StoreTargets;
use chrono::{DateTime, FixedOffset};
use pbatch_model::{Result, SchedulerType};
use pbatch_sink::ExportPreview;
use serde::Serialize;

/// One variable's value at the batch time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariableValue {
    /// Its name (`date`, a user variable, a param).
    pub name: String,
    /// Its value.
    pub value: String,
}

/// What one datasource table of the batch would read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SrcPreview {
    /// The SQL's table name.
    pub table: String,
    /// The datasource.
    pub datasource: String,
    /// Files listed.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The first few files.
    pub first: Vec<String>,
}

/// One column of the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnPreview {
    /// Name.
    pub name: String,
    /// Arrow type.
    #[serde(rename = "type")]
    pub ty: String,
}

/// What a batch would do ([`Engine::dry_run`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchPreview {
    /// The job.
    pub job: String,
    /// The batch time, as history shows it.
    pub batch_time: String,
    /// Every variable's value, by name.
    pub variables: Vec<VariableValue>,
    /// The SQL with its variables expanded.
    pub sql: String,
    /// What each datasource table would read.
    pub srcs: Vec<SrcPreview>,
    /// The result's columns.
    pub schema: Vec<ColumnPreview>,
    /// DataFusion's optimized logical plan.
    pub logical_plan: String,
    /// DataFusion's physical plan.
    pub physical_plan: String,
    /// What each export would do.
    pub exports: Vec<ExportPreview>,
}

impl BatchPreview {
    /// The first error an export would fail the batch with.
    pub fn error(&self) -> Option<&str> {
        self.exports.iter().find_map(|e| e.error.as_deref())
    }
}

impl Engine {
    /// A dry run of one batch of `job` at `batch_time` with `params`: the
    /// srcs are listed and the SQL planned as the batch would, and each
    /// export's target is listed, but nothing is run, written or recorded.
    /// What would fail a real run before it writes (a missing bucket, an
    /// undefined variable, a SQL error, a partitionBy column the result
    /// lacks) fails here with the same code.
    pub async fn dry_run(
        &self,
        job: &str,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
    ) -> Result<BatchPreview> {
        let spec = self.job(job)?;
        let root = self.root_of(job, &spec)?;
        let expander = self.expander(&root.1, params, batch_time)?;
        let exports = self.exports(job)?;
        let name = format!("{job} dry run");
        let plan = self.plan_batch(&name, &spec, &root.1, &expander, &exports).await?;
        let schema = plan.schema();
        for (name, e) in &exports {
            pbatch_sink::check_export(job, name, e, &expander, &self.inner.services, &schema)?;
        }
        let (logical_plan, physical_plan) = plan.explain()?;
        let manual = spec.scheduler_type() == SchedulerType::Manual;
        let targets = StoreTargets(&self.inner.sources.stores);
        let mut previews = Vec::new();
        for (name, e) in &exports {
            previews.push(
                pbatch_sink::preview_export(job, name, e, &expander, manual, &targets, &self.inner.services).await?,
            );
        }
        Ok(BatchPreview {
            job: job.to_string(),
            batch_time: self.fmt_time(batch_time.to_utc()),
            variables: expander
                .names()
                .into_iter()
                .filter_map(|name| expander.value(&name).map(|value| VariableValue { name, value }))
                .collect(),
            sql: expander.expand(&spec.computation.code, "computation.code")?,
            srcs: plan
                .read_plan()
                .tables
                .iter()
                .map(|t| SrcPreview {
                    table: t.table.clone(),
                    datasource: t.datasource.clone(),
                    files: t.files,
                    bytes: t.bytes,
                    first: t.first.clone(),
                })
                .collect(),
            schema: schema
                .fields()
                .iter()
                .map(|f| ColumnPreview {
                    name: f.name().clone(),
                    ty: f.data_type().to_string(),
                })
                .collect(),
            logical_plan,
            physical_plan,
            exports: previews,
        })
    }
}
