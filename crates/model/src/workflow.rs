//! Workflows: datasources, jobs and exports may name one.

use crate::de::{Keys, null_default};
use crate::names::check_name;
use crate::{ErrorCode, Result, model_err};
use serde::{Deserialize, Serialize};

/// `POST /v2/workflows/<name>` and `PUT` (which may carry nodes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowSpec {
    /// Name (the URL's name wins).
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Region.
    #[serde(default, deserialize_with = "null_default")]
    pub region: String,
    /// Free text.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// Graph nodes keyed `<name>-<type>` (kept as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<serde_json::Map<String, serde_json::Value>>,
}

impl WorkflowSpec {
    /// The keys of a workflow body, plus what a GET answer carries.
    pub const KEYS: Keys = Keys {
        code: ErrorCode::InvalidWorkflowSpec,
        nested: &[],
        sdk: &["createTime", "updateTime", "status", "canStart", "isManualWorkflow"],
    };
}

impl WorkflowSpec {
    /// Validates name and region.
    pub fn validate(&self, name: &str, regions: &[String]) -> Result<()> {
        check_name(ErrorCode::InvalidWorkflowName, "workflow name", name)?;
        if !self.region.is_empty() && !regions.iter().any(|r| r == &self.region) {
            return model_err!(
                RegionMismatch,
                "region {:?} is not served here; use one of {}",
                self.region,
                regions.join(", ")
            );
        }
        Ok(())
    }
}

/// `GET /v2/workflows/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowDesc {
    /// Name.
    pub name: String,
    /// Region.
    pub region: String,
    /// Nodes.
    pub nodes: serde_json::Map<String, serde_json::Value>,
    /// Comment.
    pub comment: String,
    /// Created at.
    pub create_time: String,
    /// Updated at.
    pub update_time: String,
    /// Ready, Starting, Started, Stopping, Stopped, Unknown.
    pub status: String,
    /// Whether start is allowed now.
    pub can_start: bool,
    /// Whether every job in it is manual.
    pub is_manual_workflow: bool,
}

/// One node of `GET /v2/workflows/<name>/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowNodeStatus {
    /// Node name.
    pub name: String,
    /// Node type (datasource, job, exportBatch ...).
    #[serde(rename = "type")]
    pub ty: String,
    /// Node status.
    pub status: String,
}

/// `GET /v2/workflows/<name>/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowStatus {
    /// Name.
    pub name: String,
    /// Region.
    pub region: String,
    /// Node statuses.
    pub nodes: Vec<WorkflowNodeStatus>,
    /// Workflow status.
    pub status: String,
}
