//! What a batch reads and where it writes, resolved against the catalog:
//! the root job's params, the srcs `exec` registers, export targets.

use crate::batch::RESULTS_DIR;
use crate::engine::Engine;
use chrono::{DateTime, FixedOffset};
use pbatch_exec::ResolvedSrc;
use pbatch_magic::Expander;
use pbatch_model::{ExportSpec, JobSpec, Result, SchedulerType, SrcType, model_err};
use pbatch_sink::{Place, Target, Targets};
use pbatch_source::{HdfsPath, Stores, hdfs_store};
use std::collections::HashSet;

impl Engine {
    /// The job whose params and container a (depend) job runs with.
    pub(crate) fn root_of(&self, name: &str, spec: &JobSpec) -> Result<(String, JobSpec)> {
        let mut cur = (name.to_string(), spec.clone());
        let mut seen = HashSet::new();
        while cur.1.scheduler_type() == SchedulerType::Depend {
            if !seen.insert(cur.0.clone()) {
                return model_err!(InvalidJobSpec, "depend chain of job {name} loops at {}", cur.0);
            }
            let Some(up) = cur.1.srcs.iter().find(|s| s.ty == SrcType::Job) else {
                return model_err!(InvalidBatchSpec, "depend job {} has no job src", cur.0);
            };
            let up_name = up.name.clone();
            cur = (up_name.clone(), self.job(&up_name)?);
        }
        Ok(cur)
    }

    /// System variables, user variables, then the job's params (defaults,
    /// overridden by start params).
    pub(crate) fn expander(
        &self,
        root: &JobSpec,
        params: &[(String, String)],
        batch_time: DateTime<FixedOffset>,
    ) -> Result<Expander> {
        let mut ex = Expander::in_zone(batch_time.to_utc(), self.zone());
        for v in self.variables()? {
            ex = ex.with_variable(&v)?;
        }
        for p in &root.params {
            ex = ex.with_param(&p.name, &p.default);
        }
        for (k, v) in params {
            if !root.params.iter().any(|p| &p.name == k) {
                let declared: Vec<&str> = root.params.iter().map(|p| p.name.as_str()).collect();
                return model_err!(
                    WrongJobArgumentCount,
                    "param {k:?} is not declared by the job (declared: {})",
                    if declared.is_empty() {
                        "none".to_string()
                    } else {
                        declared.join(", ")
                    }
                );
            }
            if v.chars().count() > 64 {
                return model_err!(InvalidVariableValue, "param {k} value is longer than 64 characters");
            }
            ex = ex.with_param(k, v);
        }
        Ok(ex)
    }

    /// Where a job's kept result of one batch lies (read by its downstreams).
    pub(crate) fn result_dir(&self, job: &str, batch_time: &DateTime<FixedOffset>) -> std::path::PathBuf {
        pbatch_sink::result_dir(&self.data_dir().join(RESULTS_DIR), job, batch_time)
    }

    /// A job's srcs as `exec` takes them: datasource specs, an upstream's
    /// kept result of this batch time, or (without one) the upstream's SQL
    /// over its own srcs.
    pub(crate) fn resolve_srcs(
        &self,
        spec: &JobSpec,
        expander: &Expander,
        seen: &mut HashSet<String>,
    ) -> Result<Vec<ResolvedSrc>> {
        let mut out = Vec::new();
        for src in &spec.srcs {
            let table = src.table_name.to_ascii_lowercase();
            if src.ty != SrcType::Job {
                out.push(ResolvedSrc::Datasource {
                    table,
                    name: src.name.clone(),
                    spec: Box::new(self.datasource(&src.name)?),
                    file_filter: src.file_filter.clone(),
                });
                continue;
            }
            if !seen.insert(src.name.clone()) {
                return model_err!(InvalidJobSpec, "src job {} appears twice in the chain", src.name);
            }
            let up = self.job(&src.name)?;
            let kept = self.result_dir(&src.name, &expander.batch_time());
            let manifest = pbatch_sink::Manifest::read_local(&kept.join(pbatch_sink::MANIFEST_FILE))?;
            // a result is there once its manifest is: read what it lists
            out.push(if let Some(m) = manifest {
                let root = kept.parent().unwrap_or(&kept);
                ResolvedSrc::KeptResult {
                    table,
                    job: src.name.clone(),
                    files: m
                        .exports
                        .iter()
                        .flat_map(|e| &e.files)
                        .map(|f| root.join(&f.key))
                        .collect(),
                }
            } else {
                ResolvedSrc::Upstream {
                    table,
                    job: src.name.clone(),
                    srcs: self.resolve_srcs(&up, expander, seen)?,
                    code: up.computation.code,
                }
            });
        }
        Ok(out)
    }
}

impl Engine {
    /// A job's output columns from declared schemas alone (no listing, no
    /// reading), or `None` when they cannot be known before a run: a src
    /// without a declared schema (inferred at each batch), SQL that needs a
    /// param without a default, or SQL that does not plan.
    pub(crate) fn declared_output(&self, job: &str, depth: usize) -> Option<pbatch_exec::SchemaRef> {
        if depth > 16 {
            return None;
        }
        let spec = self.job(job).ok()?;
        let root = self.root_of(job, &spec).ok()?;
        let expander = self.expander(&root.1, &[], self.zone().local(self.now_utc())).ok()?;
        let mut tables = Vec::new();
        for src in &spec.srcs {
            let schema = if src.ty == SrcType::Job {
                self.declared_output(&src.name, depth + 1)?
            } else {
                let ds = self.datasource(&src.name).ok()?;
                match &ds.source {
                    pbatch_model::SourceSpec::Fusion(_) => pbatch_source::fusion_schema(),
                    _ if ds.schema.is_empty() => return None,
                    _ => pbatch_source::arrow_schema(&ds.schema),
                }
            };
            tables.push(pbatch_exec::DeclaredTable {
                table: src.table_name.clone(),
                schema,
            });
        }
        pbatch_exec::declared_output(&spec.computation.code, &tables, &expander)
    }

    /// Refuses an export that would fail every run of `job` against the
    /// job's output columns, when those are known now.
    pub(crate) fn check_against_output(&self, job: &str, name: &str, spec: &ExportSpec) -> Result<()> {
        let Some(output) = self.declared_output(job, 0) else {
            return Ok(());
        };
        let now = self.zone().local(self.now_utc());
        let spec_job = self.job(job)?;
        let root = self.root_of(job, &spec_job)?;
        let Ok(expander) = self.expander(&root.1, &[], now) else {
            return Ok(());
        };
        Ok(pbatch_sink::check_export(
            job,
            name,
            spec,
            &expander,
            &self.inner.services,
            &output,
        )?)
    }
}

/// Export targets from the engine's stores: a kodo bucket is a local folder
/// (the embedded default) or its S3 endpoint's bucket; an hdfs export's
/// NameNode is a store of its own.
pub(crate) struct StoreTargets<'a>(pub(crate) &'a Stores);

impl Targets for StoreTargets<'_> {
    fn bucket(&self, bucket: &str) -> Result<Target> {
        Ok(match self.0.local_dir(bucket) {
            Some(dir) => Target::Local(dir),
            None => Target::Store {
                store: self.0.bucket_for_write(bucket)?,
                label: self.0.describe(bucket),
                place: Place::Bucket {
                    bucket: bucket.to_string(),
                },
            },
        })
    }

    fn namenode(&self, field: &str, url: &str) -> Result<Target> {
        let nn = HdfsPath::parse(field, url)?;
        Ok(Target::Store {
            store: hdfs_store(&nn.namenode)?,
            label: nn.place(),
            place: Place::Namenode { url: url.to_string() },
        })
    }
}
