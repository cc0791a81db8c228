//! Updates, deletes and lists of resources, with the seed's rules.

use crate::catalog::Kind;
use crate::engine::{Engine, to_json};
use pbatch_model::{
    DatasourceDesc, DatasourceSpec, ExportSpec, JobDesc, JobSpec, Result, RetrieveSchemaInput, RetrieveSchemaOutput,
    SourceSpec, SrcType, UpdateDatasourceInput, model_err,
};

impl Engine {
    /// `POST /v2/schemas`: samples the files a kodo or hdfs source lists
    /// (keyPrefixes / paths expanded at the current time) and maps their
    /// inferred schema to valtypes. A text source answers its one `text`
    /// column, a fusion source the fixed access-log fields.
    pub async fn retrieve_schema(&self, input: &RetrieveSchemaInput) -> Result<RetrieveSchemaOutput> {
        if let SourceSpec::Fusion(_) = &input.source {
            return Ok(RetrieveSchemaOutput {
                schema: pbatch_source::fusion_entries(),
            });
        }
        let mut ex = pbatch_magic::Expander::in_zone(self.now_utc(), self.zone());
        for v in self.variables()? {
            ex = ex.with_variable(&v)?;
        }
        let schema = self.inner.sources.infer(&input.source, &ex).await?;
        Ok(RetrieveSchemaOutput { schema })
    }

    /// Every datasource, by name.
    pub fn list_datasources(&self) -> Result<Vec<DatasourceDesc>> {
        let mut out = Vec::new();
        for (name, v) in self.catalog().list(Kind::Datasource, "")? {
            out.push(DatasourceDesc {
                spec: DatasourceSpec::from_json(v.to_string().as_bytes())?,
                name,
            });
        }
        Ok(out)
    }

    /// `PUT /v2/datasources/<name>`: the spec (same type) may change and
    /// fields may be added; removing a field or changing its type is `E18110`.
    pub fn update_datasource(&self, name: &str, update: &UpdateDatasourceInput) -> Result<()> {
        let new = update.apply(name, &self.datasource(name)?)?;
        new.validate(name, &self.inner.config.engine.regions)?;
        if !self.catalog().replace(Kind::Datasource, name, &to_json(&new)?)? {
            return model_err!(DatasourceNotFound, "datasource {name} does not exist");
        }
        Ok(())
    }

    /// Deletes a datasource; refused (`E18603`) while a job reads it, naming the jobs.
    pub fn delete_datasource(&self, name: &str) -> Result<()> {
        self.datasource(name)?;
        let users: Vec<String> = self.list_jobs(Some(name), None)?.into_iter().map(|j| j.name).collect();
        if !users.is_empty() {
            return model_err!(
                DatasourceHasDependents,
                "datasource {name} is read by job(s) {}; delete or change them first",
                users.join(", ")
            );
        }
        if !self.catalog().delete(Kind::Datasource, name)? {
            return model_err!(DatasourceNotFound, "datasource {name} does not exist");
        }
        Ok(())
    }

    /// Jobs, all or those reading one datasource or one job (not both: `E18207`).
    pub fn list_jobs(&self, src_datasource: Option<&str>, src_job: Option<&str>) -> Result<Vec<JobDesc>> {
        if let (Some(d), Some(j)) = (src_datasource, src_job) {
            return model_err!(InvalidJobSpec, "give srcDatasource ({d}) or srcJob ({j}), not both");
        }
        let mut out = Vec::new();
        for (name, v) in self.catalog().list(Kind::Job, "")? {
            let spec: JobSpec = serde_json::from_value(v)
                .map_err(|e| pbatch_model::Error::internal(format!("stored job {name}: {e}")))?;
            let reads = |ty: SrcType, n: &str| spec.srcs.iter().any(|s| s.ty == ty && s.name == n);
            let keep = match (src_datasource, src_job) {
                (Some(d), _) => reads(SrcType::Datasource, d),
                (_, Some(j)) => reads(SrcType::Job, j),
                _ => true,
            };
            if keep {
                out.push(JobDesc {
                    name,
                    spec,
                    schema: Vec::new(),
                });
            }
        }
        Ok(out)
    }

    /// `PUT /v2/jobs/<name>`: a full replace, validated like a create.
    pub fn update_job(&self, name: &str, spec: &JobSpec) -> Result<()> {
        self.job(name)?;
        spec.validate(name)?;
        self.check_job_refs(name, spec)?;
        if !self.catalog().replace(Kind::Job, name, &to_json(spec)?)? {
            return model_err!(BatchJobNotFound, "job {name} does not exist");
        }
        self.reset_schedule(name, spec)
    }

    /// Deletes a job and its exports; refused (`E18608`) while another job reads it.
    pub fn delete_job(&self, name: &str) -> Result<()> {
        self.job(name)?;
        let downstream: Vec<String> = self.list_jobs(None, Some(name))?.into_iter().map(|j| j.name).collect();
        if !downstream.is_empty() {
            return model_err!(
                JobHasDependents,
                "job {name} is read by job(s) {}; delete them first",
                downstream.join(", ")
            );
        }
        for (export, _) in self.exports(name)? {
            self.catalog().delete(Kind::Export, &format!("{name}/{export}"))?;
        }
        if !self.catalog().delete(Kind::Job, name)? {
            return model_err!(BatchJobNotFound, "job {name} does not exist");
        }
        for run_id in self.active_runs(name)? {
            self.signal_stop(name, run_id)?;
        }
        // its history goes with it: a job created again under the name starts empty
        self.catalog().delete_runs(name)?;
        self.delete_logs(name)?;
        for (key, _) in self.catalog().list(Kind::Backfill, &format!("{name}/"))? {
            self.catalog().delete(Kind::Backfill, &key)?;
        }
        self.drop_schedule(name)
    }

    /// One export of a job (`E18611` if missing).
    pub fn export(&self, job: &str, name: &str) -> Result<ExportSpec> {
        self.job(job)?;
        match self.catalog().get(Kind::Export, &format!("{job}/{name}"))? {
            Some(v) => ExportSpec::from_json(v.to_string().as_bytes(), None),
            None => model_err!(JobExportNotFound, "export {name} of job {job} does not exist"),
        }
    }

    /// `PUT /v2/jobs/<job>/exports/<name>`: a new spec of the same type.
    pub fn update_export(&self, job: &str, name: &str, spec: &ExportSpec) -> Result<()> {
        let old = self.export(job, name)?;
        if old.kind() != spec.kind() {
            return model_err!(
                InvalidExportType,
                "export {name} is of type {}; an update cannot make it {}",
                old.kind(),
                spec.kind()
            );
        }
        spec.validate(name)?;
        self.check_against_output(job, name, spec)?;
        if !self
            .catalog()
            .replace(Kind::Export, &format!("{job}/{name}"), &to_json(spec)?)?
        {
            return model_err!(JobExportNotFound, "export {name} of job {job} does not exist");
        }
        Ok(())
    }

    /// Deletes an export (`E18611` if missing).
    pub fn delete_export(&self, job: &str, name: &str) -> Result<()> {
        self.job(job)?;
        if !self.catalog().delete(Kind::Export, &format!("{job}/{name}"))? {
            return model_err!(JobExportNotFound, "export {name} of job {job} does not exist");
        }
        Ok(())
    }
}
