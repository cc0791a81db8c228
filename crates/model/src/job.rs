//! Jobs: `POST /v2/jobs/<name>`, start params, lists.

use crate::de::{Keys, fields_of, null_default, parse_body};
use crate::names::{CONTAINER_TYPE, PARAM_NAME, TABLE_NAME, check_name};
use crate::vocab::{ComputationType, SchedulerType, SrcType};
use crate::{ErrorCode, Result, SchemaEntry, model_err};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Container types the seed lists, with their cores and GiB of memory.
pub const CONTAINER_TYPES: &[(&str, u32, u32)] = &[
    ("1U2G", 1, 2),
    ("1U4G", 1, 4),
    ("2U4G", 2, 4),
    ("4U8G", 4, 8),
    ("4U16G", 4, 16),
    ("8U16G", 8, 16),
    ("8U32G", 8, 32),
    ("16U32G", 16, 32),
    ("16U64G", 16, 64),
];

/// The most cores (type x count) one job may ask for.
pub const MAX_CORES: u32 = 100;

/// One input of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSrc {
    /// Datasource or upstream job name.
    pub name: String,
    /// Appended to each key prefix / path when listing (may hold variables).
    #[serde(default, deserialize_with = "null_default")]
    pub file_filter: String,
    /// `datasource` or `job`.
    #[serde(rename = "type")]
    pub ty: SrcType,
    /// The table name the SQL uses.
    pub table_name: String,
}

/// `computation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Computation {
    /// The SQL (may hold magic variables).
    pub code: String,
    /// `sql`.
    #[serde(rename = "type")]
    pub ty: ComputationType,
}

/// `container`: type x count sizes the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// e.g. `2U4G`.
    #[serde(rename = "type")]
    pub ty: String,
    /// How many.
    pub count: i64,
}

impl Container {
    /// Cores and GiB of one container, if the type is in [`CONTAINER_TYPES`].
    pub fn unit(&self) -> Option<(u32, u32)> {
        CONTAINER_TYPES
            .iter()
            .find(|(t, _, _)| t.eq_ignore_ascii_case(&self.ty))
            .map(|&(_, c, g)| (c, g))
    }

    /// Total cores and GiB (after validation).
    pub fn total(&self) -> (u32, u32) {
        let (c, g) = self.unit().unwrap_or((1, 2));
        let n = u32::try_from(self.count.max(1)).unwrap_or(1);
        (c.saturating_mul(n), g.saturating_mul(n))
    }

    fn validate(&self) -> Result<()> {
        let Some((cores, _)) = self.unit() else {
            let names: Vec<&str> = CONTAINER_TYPES.iter().map(|t| t.0).collect();
            let hint = if CONTAINER_TYPE.is_match(&self.ty) {
                "not offered"
            } else {
                "malformed"
            };
            return model_err!(
                InvalidContainerType,
                "container.type {:?} is {hint}; use one of {}",
                self.ty,
                names.join(", ")
            );
        };
        if self.count < 1 {
            return model_err!(
                InvalidContainerCount,
                "container.count {} must be at least 1",
                self.count
            );
        }
        let total = i64::from(cores) * self.count;
        if total > i64::from(MAX_CORES) {
            return model_err!(
                InvalidContainerCount,
                "container {} x {} = {total}U exceeds the limit of {MAX_CORES}U",
                self.ty,
                self.count
            );
        }
        Ok(())
    }
}

/// `scheduler.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SchedulerSpec {
    /// Seconds-first cron expression (5 or 6 fields).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub crontab: String,
    /// `Nm` / `Nh`; `0` or empty = run continuously.
    #[serde(
        default,
        rename = "loop",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub loop_: String,
}

impl SchedulerSpec {
    fn is_empty(&self) -> bool {
        self.crontab.is_empty() && self.loop_.is_empty()
    }
}

/// `scheduler`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduler {
    /// crontab | loop | manual | depend.
    #[serde(rename = "type")]
    pub ty: SchedulerType,
    /// Its spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<SchedulerSpec>,
}

/// A job param (`params[]`): a variable with a default, overridable at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// Name.
    pub name: String,
    /// Default value (0-64 characters).
    #[serde(default, deserialize_with = "null_default")]
    pub default: String,
    /// Start-time value, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A job as created / replaced (`CreateJobInput`) and returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// Inputs.
    #[serde(default, deserialize_with = "null_default")]
    pub srcs: Vec<JobSrc>,
    /// The SQL.
    pub computation: Computation,
    /// Size (absent for depend jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Schedule (absent = manual).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Scheduler>,
    /// Params with defaults.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    /// Automatic retries of a batch that failed on something a second try
    /// can pass (a pbatch addition; sent back only when set). Absent: the
    /// engine's `[engine] batch_retries` and `retry_delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
}

/// A job's `retries` (a pbatch addition, after Airflow's `retries` and
/// `retry_delay`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retries {
    /// Retries after the first attempt (0 = none).
    pub count: u32,
    /// Wait before the first retry, in seconds; each later retry waits twice
    /// the one before. Default 60.
    #[serde(default = "default_retry_delay")]
    pub delay_seconds: u64,
}

fn default_retry_delay() -> u64 {
    60
}

/// Most retries a job may ask for.
pub const MAX_RETRIES: u32 = 100;
/// Longest first retry delay, in seconds (a day).
pub const MAX_RETRY_DELAY_SECONDS: u64 = 86_400;

impl Retries {
    /// The wait before retry `n` (from 1): `delaySeconds` doubled `n - 1`
    /// times, at most a day.
    pub fn delay(&self, n: u32) -> std::time::Duration {
        let secs = self
            .delay_seconds
            .saturating_mul(1u64 << n.saturating_sub(1).min(20))
            .min(MAX_RETRY_DELAY_SECONDS);
        std::time::Duration::from_secs(secs)
    }

    fn validate(&self) -> Result<()> {
        if self.count > MAX_RETRIES {
            return model_err!(
                InvalidBatchSpec,
                "retries.count {} is more than {MAX_RETRIES}",
                self.count
            );
        }
        if self.delay_seconds > MAX_RETRY_DELAY_SECONDS {
            return model_err!(
                InvalidBatchSpec,
                "retries.delaySeconds {} is more than a day ({MAX_RETRY_DELAY_SECONDS})",
                self.delay_seconds
            );
        }
        Ok(())
    }
}

impl JobSpec {
    /// Parses a create / update body (not yet validated).
    pub fn from_json(body: &[u8]) -> Result<Self> {
        parse_body("job", body, &Self::KEYS)
    }

    /// The keys of a job body: its own, plus what a GET answer carries
    /// (`name`, `workflow`, `schema`, `container.status`).
    pub const KEYS: Keys = Keys {
        code: ErrorCode::InvalidJobSpec,
        nested: &[
            ("srcs", fields_of::<JobSrc>),
            ("computation", fields_of::<Computation>),
            ("container", fields_of::<Container>),
            ("scheduler", fields_of::<Scheduler>),
            ("scheduler.spec", fields_of::<SchedulerSpec>),
            ("params", fields_of::<Param>),
            ("retries", fields_of::<Retries>),
        ],
        sdk: &["name", "workflow", "schema", "container.status"],
    };

    /// The scheduler type (`manual` when none was given).
    pub fn scheduler_type(&self) -> SchedulerType {
        self.scheduler
            .as_ref()
            .map(|s| s.ty.clone())
            .unwrap_or(SchedulerType::Manual)
    }

    /// Validates every rule of the seed that needs no other resource.
    pub fn validate(&self, name: &str) -> Result<()> {
        check_name(ErrorCode::InvalidJobName, "job name", name)?;
        if self.srcs.is_empty() {
            return model_err!(
                InvalidJobSpec,
                "srcs is empty: a job reads at least one datasource or job"
            );
        }
        let mut tables = HashSet::new();
        for (i, s) in self.srcs.iter().enumerate() {
            if !s.ty.is_known() {
                return model_err!(
                    InvalidJobSpec,
                    "srcs[{i}].type {:?} is invalid; use one of {}",
                    s.ty.as_str(),
                    SrcType::VALUES.join(", ")
                );
            }
            let code = match s.ty {
                SrcType::Job => ErrorCode::InvalidJobName,
                _ => ErrorCode::InvalidDatasourceName,
            };
            check_name(code, &format!("srcs[{i}].name"), &s.name)?;
            if !TABLE_NAME.is_match(&s.table_name) {
                return model_err!(
                    InvalidJobSpec,
                    "srcs[{i}].tableName {:?} is invalid: use 1-128 letters, digits or '_', starting with a letter",
                    s.table_name
                );
            }
            if !tables.insert(s.table_name.to_ascii_lowercase()) {
                return model_err!(
                    DuplicateTableName,
                    "srcs[{i}].tableName {:?} is used twice",
                    s.table_name
                );
            }
            if s.file_filter.chars().count() > 128 {
                return model_err!(FieldTooLong, "srcs[{i}].fileFilter is longer than 128 characters");
            }
        }
        if !self.computation.ty.is_known() {
            return model_err!(
                UnsupportedJobType,
                "computation.type {:?} is not supported; use sql",
                self.computation.ty.as_str()
            );
        }
        if self.computation.code.trim().is_empty() {
            return model_err!(InvalidSql, "computation.code is empty");
        }
        if let Some(r) = &self.retries {
            r.validate()?;
        }
        let sched = self.scheduler_type();
        let spec = self.scheduler.as_ref().and_then(|s| s.spec.clone()).unwrap_or_default();
        match &sched {
            SchedulerType::Depend => {
                let jobs = self.srcs.iter().filter(|s| s.ty == SrcType::Job).count();
                if jobs != 1 || self.srcs.len() != 1 {
                    return model_err!(
                        InvalidBatchSpec,
                        "a depend job has exactly one src of type job; this one has {} srcs, {jobs} of them jobs",
                        self.srcs.len()
                    );
                }
                if self.container.is_some() {
                    return model_err!(
                        InvalidBatchSpec,
                        "a depend job may not set container: it runs with its upstream's"
                    );
                }
                if !self.params.is_empty() {
                    return model_err!(
                        InvalidBatchSpec,
                        "a depend job may not set params: it inherits its upstream's"
                    );
                }
                if !spec.is_empty() {
                    return model_err!(
                        InvalidBatchSpec,
                        "a depend job may not set scheduler.spec: it runs after its upstream"
                    );
                }
            }
            SchedulerType::Crontab => {
                if spec.crontab.trim().is_empty() {
                    return model_err!(InvalidBatchSpec, "scheduler.spec.crontab is required for a crontab job");
                }
                crate::cron::Cron::parse(&spec.crontab)?;
            }
            SchedulerType::Loop => {
                if !spec.loop_.is_empty() && crate::names::loop_minutes(&spec.loop_).is_none() {
                    return model_err!(
                        InvalidBatchSpec,
                        "scheduler.spec.loop {:?} is invalid: use a number and m or h up to one year (e.g. 5m, 1h), or 0",
                        spec.loop_
                    );
                }
            }
            SchedulerType::Manual => {}
            SchedulerType::Other(t) => {
                return model_err!(
                    InvalidBatchSpec,
                    "scheduler.type {t:?} is invalid; use one of {}",
                    SchedulerType::VALUES.join(", ")
                );
            }
        }
        if sched != SchedulerType::Depend
            && let Some(c) = &self.container
        {
            c.validate()?;
        }
        let mut names = HashSet::new();
        for (i, p) in self.params.iter().enumerate() {
            if !PARAM_NAME.is_match(&p.name) {
                return model_err!(
                    InvalidVariableName,
                    "params[{i}].name {:?} is invalid: use 1-64 letters, digits or '_', starting with a letter or '_'",
                    p.name
                );
            }
            if p.default.chars().count() > 64 {
                return model_err!(
                    InvalidVariableValue,
                    "params[{i}].default of {:?} is longer than 64 characters",
                    p.name
                );
            }
            if !names.insert(p.name.as_str()) {
                return model_err!(InvalidJobSpec, "params[{i}].name {:?} is declared twice", p.name);
            }
        }
        Ok(())
    }
}

/// `POST /v2/jobs/<name>/actions/start`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartJobInput {
    /// Param values for this start.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
}

impl StartJobInput {
    /// The keys of a start body.
    pub const KEYS: Keys = Keys {
        code: ErrorCode::InvalidRequestBody,
        nested: &[("params", fields_of::<Param>)],
        sdk: &[],
    };
}

/// The body of `POST /v2/jobs/<job>/actions/plan` (a pbatch addition): a
/// dry run of one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanRequest {
    /// The batch time (RFC 3339, or `yyyy-MM-dd HH:mm:ss` in the engine's
    /// zone); default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_time: Option<String>,
    /// Param values, as a start takes them.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
}

impl PlanRequest {
    /// The keys of a plan body.
    pub const KEYS: Keys = Keys {
        code: ErrorCode::InvalidRequestBody,
        nested: &[("params", fields_of::<Param>)],
        sdk: &[],
    };
}

/// One item of `GET /v2/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobDesc {
    /// Name.
    pub name: String,
    /// The job.
    #[serde(flatten)]
    pub spec: JobSpec,
    /// The job's output schema, when known.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema: Vec<SchemaEntry>,
}

/// `GET /v2/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobList {
    /// Jobs.
    pub jobs: Vec<JobDesc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(body: &str) -> crate::Result<JobSpec> {
        let j = JobSpec::from_json(body.as_bytes())?;
        j.validate("job1")?;
        Ok(j)
    }

    #[test]
    fn sdk_bodies() {
        job(
            r#"{"srcs":[{"name":"ds1","fileFilter":"","type":"datasource","tableName":"t1"}],
 "computation":{"code":"select * from t1","type":"sql"},
 "container":{"type":"1U2G","count":1},
 "scheduler":{"type":"crontab","spec":{"crontab":"0 0 0/1 * *"}},
 "params":[{"name":"p1","default":"x"}]}"#,
        )
        .unwrap();
        job(
            r#"{"srcs":[{"name":"job1","fileFilter":"","type":"job","tableName":"t2"}],
 "computation":{"code":"select * from t2","type":"sql"},"scheduler":{"type":"depend"}}"#,
        )
        .unwrap();
        job(r#"{"srcs":[{"name":"ds","type":"DataSource","tableName":"t"}],
 "computation":{"code":"select 1","type":"SQL"},"scheduler":{"type":"loop","spec":{"loop":"10m"}}}"#)
        .unwrap();
    }

    #[test]
    fn retries_are_sent_back_only_when_set_and_double_each_time() {
        let body = r#"{"srcs":[{"name":"ds","type":"datasource","tableName":"t"}],
 "computation":{"code":"select 1","type":"sql"}}"#;
        let plain = serde_json::to_value(job(body).unwrap()).unwrap();
        assert!(plain.get("retries").is_none(), "{plain}");
        let with = body.replace(r#""computation""#, r#""retries":{"count":3},"computation""#);
        let j = job(&with).unwrap();
        assert_eq!(
            serde_json::to_value(&j).unwrap()["retries"],
            serde_json::json!({"count": 3, "delaySeconds": 60})
        );
        let r = j.retries.unwrap();
        let secs: Vec<u64> = (1..=3).map(|n| r.delay(n).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240]);
        let long = Retries {
            count: 100,
            delay_seconds: 86_400,
        };
        assert_eq!(long.delay(100).as_secs(), MAX_RETRY_DELAY_SECONDS, "capped at a day");
        let e = job(&body.replace(
            r#""computation""#,
            r#""retries":{"count":1,"delaySeconds":90000},"computation""#,
        ))
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidBatchSpec);
        assert!(e.message().contains("retries.delaySeconds 90000"), "{e}");
    }

    #[test]
    fn rules() {
        let base = r#""computation":{"code":"select 1","type":"sql"}"#;
        let src = r#""srcs":[{"name":"ds","type":"datasource","tableName":"t"}]"#;
        let e = job(&format!(
            r#"{{{src},{base},"container":{{"type":"16U64G","count":7}}}}"#
        ))
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidContainerCount);
        assert!(e.message().contains("112U"), "{e}");
        let e = job(&format!(r#"{{{src},{base},"container":{{"type":"3U3G","count":1}}}}"#)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidContainerType);
        let e = job(&format!(r#"{{{src},{base},"scheduler":{{"type":"crontab"}}}}"#)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidBatchSpec);
        let e = job(&format!(
            r#"{{{src},{base},"scheduler":{{"type":"loop","spec":{{"loop":"5s"}}}}}}"#
        ))
        .unwrap_err();
        assert!(e.message().contains("5s"), "{e}");
        let e = job(&format!(
            r#"{{"srcs":[{{"name":"j0","type":"job","tableName":"t"}}],{base},"scheduler":{{"type":"depend"}},"container":{{"type":"1U2G","count":1}}}}"#
        ))
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidBatchSpec);
        assert!(e.message().contains("container"), "{e}");
        let e = job(&format!(r#"{{{src},{base},"scheduler":{{"type":"depend"}}}}"#)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidBatchSpec);
        let e = job(&format!(
            r#"{{"srcs":[{{"name":"a","type":"datasource","tableName":"t"}},{{"name":"b","type":"datasource","tableName":"T"}}],{base}}}"#
        ))
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::DuplicateTableName);
        let e = job(&format!(r#"{{{src},"computation":{{"code":"x","type":"python"}}}}"#)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnsupportedJobType);
        let e = job(&format!(r#"{{{src},{base},"params":[{{"name":"1p","default":""}}]}}"#)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidVariableName);
        let e = job(&format!(
            r#"{{{src},{base},"params":[{{"name":"p","default":"{}"}}]}}"#,
            "v".repeat(65)
        ))
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidVariableValue);
        let e = job(r#"{"srcs":[],"computation":{"code":"select 1","type":"sql"}}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidJobSpec);
        let e = job(r#"{"srcs": 3}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequestBody);
        assert!(e.message().contains("line 1"), "{e}");
    }
}
