//! Workflows: a named group of datasources (which name it), the jobs that
//! read them (transitively) and those jobs' exports. Starting a workflow
//! starts its jobs; stopping it stops them.

use crate::catalog::Kind;
use crate::engine::{Engine, to_json};
use pbatch_model::{
    Error, Result, RunStatus, SchedulerType, SrcType, WorkflowDesc, WorkflowNodeStatus, WorkflowSpec, WorkflowStatus,
    model_err,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A workflow as the catalog keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    spec: WorkflowSpec,
    create_time: String,
    update_time: String,
    status: String,
}

/// The resources of a workflow.
#[derive(Debug, Default)]
struct Members {
    datasources: Vec<String>,
    jobs: Vec<(String, SchedulerType)>,
    exports: Vec<String>,
}

impl Engine {
    fn now_text(&self) -> String {
        self.fmt_time(self.now_utc())
    }

    fn workflow_guard(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.inner
            .workflow_lock
            .lock()
            .map_err(|_| Error::internal("workflow lock poisoned"))
    }

    fn stored_workflow(&self, name: &str) -> Result<Stored> {
        match self.catalog().get(Kind::Workflow, name)? {
            Some(v) => serde_json::from_value(v).map_err(|e| Error::internal(format!("workflow {name}: {e}"))),
            None => model_err!(WorkflowNotFound, "workflow {name} does not exist"),
        }
    }

    /// `POST /v2/workflows/<name>` (`E18640` if it exists; `E18661` if a
    /// datasource has the name).
    pub fn create_workflow(&self, name: &str, spec: &WorkflowSpec) -> Result<()> {
        spec.validate(name, &self.inner.config.engine.regions)?;
        if self.catalog().get(Kind::Datasource, name)?.is_some() {
            return model_err!(WorkflowNameClash, "workflow name {name} is the name of a datasource");
        }
        let now = self.now_text();
        let mut spec = spec.clone();
        spec.name = name.to_string();
        let stored = Stored {
            spec,
            create_time: now.clone(),
            update_time: now,
            status: "Ready".into(),
        };
        if !self.catalog().insert(Kind::Workflow, name, &to_json(&stored)?)? {
            return model_err!(WorkflowExists, "workflow {name} already exists");
        }
        Ok(())
    }

    /// `PUT /v2/workflows/<name>`: replaces comment and nodes.
    pub fn update_workflow(&self, name: &str, spec: &WorkflowSpec) -> Result<()> {
        spec.validate(name, &self.inner.config.engine.regions)?;
        let mut s = self.stored_workflow(name)?;
        s.spec.comment = spec.comment.clone();
        if spec.nodes.is_some() {
            s.spec.nodes = spec.nodes.clone();
        }
        if !spec.region.is_empty() {
            s.spec.region = spec.region.clone();
        }
        s.update_time = self.now_text();
        self.catalog().replace(Kind::Workflow, name, &to_json(&s)?)?;
        Ok(())
    }

    fn members(&self, name: &str) -> Result<Members> {
        let mut m = Members::default();
        for d in self.list_datasources()? {
            if d.spec.workflow == name {
                m.datasources.push(d.name);
            }
        }
        let mut inside: BTreeSet<String> = m.datasources.iter().cloned().collect();
        let jobs = self.list_jobs(None, None)?;
        // jobs reading a member, until nothing new joins (depend chains)
        loop {
            let before = m.jobs.len();
            for j in &jobs {
                if m.jobs.iter().any(|(n, _)| n == &j.name) {
                    continue;
                }
                let reads_member = j
                    .spec
                    .srcs
                    .iter()
                    .any(|s| inside.contains(&s.name) && (s.ty == SrcType::Job || s.ty == SrcType::Datasource));
                if reads_member {
                    m.jobs.push((j.name.clone(), j.spec.scheduler_type()));
                    inside.insert(j.name.clone());
                }
            }
            if m.jobs.len() == before {
                break;
            }
        }
        for (j, _) in &m.jobs {
            for (e, _) in self.exports(j)? {
                m.exports.push(format!("{j}_{e}"));
            }
        }
        Ok(m)
    }

    fn describe_workflow(&self, name: &str, s: Stored) -> Result<WorkflowDesc> {
        let m = self.members(name)?;
        let mut nodes = s.spec.nodes.clone().unwrap_or_default();
        let mut add = |n: &str, ty: &str| {
            nodes
                .entry(format!("{n}-{ty}"))
                .or_insert_with(|| serde_json::json!({"name": n, "type": ty}));
        };
        for d in &m.datasources {
            add(d, "datasource");
        }
        for (j, _) in &m.jobs {
            add(j, "job");
        }
        for e in &m.exports {
            add(e, "exportBatch");
        }
        Ok(WorkflowDesc {
            name: name.to_string(),
            region: s.spec.region.clone(),
            nodes,
            comment: s.spec.comment.clone(),
            create_time: s.create_time,
            update_time: s.update_time,
            can_start: s.status != "Started" && !m.jobs.is_empty(),
            is_manual_workflow: !m.jobs.is_empty()
                && m.jobs
                    .iter()
                    .all(|(_, t)| matches!(t, SchedulerType::Manual | SchedulerType::Depend)),
            status: s.status,
        })
    }

    /// `GET /v2/workflows/<name>`.
    pub fn workflow(&self, name: &str) -> Result<WorkflowDesc> {
        let s = self.stored_workflow(name)?;
        self.describe_workflow(name, s)
    }

    /// `GET /v2/workflows`.
    pub fn list_workflows(&self) -> Result<Vec<WorkflowDesc>> {
        let mut out = Vec::new();
        for (name, _) in self.catalog().list(Kind::Workflow, "")? {
            out.push(self.workflow(&name)?);
        }
        Ok(out)
    }

    /// `DELETE /v2/workflows/<name>`: refused (`E18642`) while datasources name it.
    pub fn delete_workflow(&self, name: &str) -> Result<()> {
        self.stored_workflow(name)?;
        let m = self.members(name)?;
        if !m.datasources.is_empty() {
            return model_err!(
                InvalidWorkflowSpec,
                "workflow {name} still holds datasource(s) {}; delete them first",
                m.datasources.join(", ")
            );
        }
        self.catalog().delete(Kind::Workflow, name)?;
        Ok(())
    }

    /// `POST /v2/workflows/<name>/start`: starts every job of the workflow
    /// (`E18644` when it is already started or holds no job).
    pub fn start_workflow(&self, name: &str) -> Result<()> {
        let _g = self.workflow_guard()?;
        let mut s = self.stored_workflow(name)?;
        let m = self.members(name)?;
        if s.status == "Started" {
            return model_err!(WorkflowCannotStart, "workflow {name} is already Started");
        }
        if m.jobs.is_empty() {
            return model_err!(WorkflowCannotStart, "workflow {name} holds no job to start");
        }
        // downstreams first, so they are listening when an upstream ends;
        // all or nothing: a job that cannot start stops the ones started
        let mut started: Vec<String> = Vec::new();
        for (j, _) in m.jobs.iter().rev() {
            if let Err(e) = self.start_job(j, &[]) {
                for done in &started {
                    let _ = self.stop_job(done);
                }
                return Err(e.context(format!("starting workflow {name}, job {j}")));
            }
            started.push(j.clone());
        }
        s.status = "Started".into();
        s.update_time = self.now_text();
        self.catalog().replace(Kind::Workflow, name, &to_json(&s)?)?;
        Ok(())
    }

    /// `POST /v2/workflows/<name>/stop` (`E18645` unless it is Started).
    pub fn stop_workflow(&self, name: &str) -> Result<()> {
        let _g = self.workflow_guard()?;
        let mut s = self.stored_workflow(name)?;
        if s.status != "Started" {
            return model_err!(
                WorkflowCannotStop,
                "workflow {name} is {}; only a Started one stops",
                s.status
            );
        }
        for (j, _) in self.members(name)?.jobs {
            self.stop_job(&j)?;
        }
        s.status = "Stopped".into();
        s.update_time = self.now_text();
        self.catalog().replace(Kind::Workflow, name, &to_json(&s)?)?;
        Ok(())
    }

    /// `GET /v2/workflows/<name>/status`: each job's latest batch status
    /// (`Ready` before its first), datasources and exports `Ready`.
    pub fn workflow_status(&self, name: &str) -> Result<WorkflowStatus> {
        let s = self.stored_workflow(name)?;
        let m = self.members(name)?;
        let mut nodes = Vec::new();
        for d in m.datasources {
            nodes.push(WorkflowNodeStatus {
                name: d,
                ty: "datasource".into(),
                status: "Ready".into(),
            });
        }
        for (j, _) in m.jobs {
            let status = self
                .catalog()
                .runs(&j)?
                .last()
                .map(|r| r.status)
                .unwrap_or(RunStatus::Ready);
            nodes.push(WorkflowNodeStatus {
                name: j,
                ty: "job".into(),
                status: status.to_string(),
            });
        }
        for e in m.exports {
            nodes.push(WorkflowNodeStatus {
                name: e,
                ty: "exportBatch".into(),
                status: "Ready".into(),
            });
        }
        Ok(WorkflowStatus {
            name: name.to_string(),
            region: s.spec.region,
            nodes,
            status: s.status,
        })
    }
}
