/*!
Wire types, validation and the error-code table of pbatch.

This crate sits at the bottom of the workspace: every request and response
body of the batch-computation API is a serde type here ([`DatasourceSpec`],
[`JobSpec`], [`ExportSpec`], [`VariableSpec`], [`WorkflowSpec`], history and
batch actions), each with a `validate` that applies the seed's rules and
returns an [`Error`] whose [`ErrorCode`] carries the HTTP status. Nothing
here knows about Arrow or DataFusion.

What the SDKs really send is accepted: lowercase or capitalised vocabulary,
`""`/`null`/`0` meaning "unset", `runId` as an integer or numeric string.

```
use pbatch_model::{JobSpec, ErrorCode};
let job = JobSpec::from_json(br#"{"srcs":[{"name":"ds","type":"datasource","tableName":"t"}],
  "computation":{"code":"select 1","type":"sql"},"container":{"type":"16U64G","count":7}}"#).unwrap();
let err = job.validate("daily").unwrap_err();
assert_eq!(err.code(), ErrorCode::InvalidContainerCount);
assert_eq!(err.code().http_status(), 400);
```
*/
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::unwrap_used)]

mod backfill;
pub mod cron;
mod datasource;
mod de;
mod error;
mod export;
mod job;
pub mod names;
mod run;
mod variable;
pub mod vocab;
mod workflow;

pub use backfill::{BackfillItem, BackfillItemState, BackfillList, BackfillRequest, BackfillStatus, Reprocess};
pub use datasource::{
    CSV_DEFAULT_DELIMITER, DatasourceDesc, DatasourceList, DatasourceSpec, FusionSourceSpec, HdfsSourceSpec,
    KodoSourceSpec, PATH_FORBIDDEN, RetrieveSchemaInput, RetrieveSchemaOutput, SchemaEntry, SourceSpec,
    TEXT_DEFAULT_DELIMITER, UpdateDatasourceInput, check_delimiter, check_schema_only_grows, parse_delimiter,
    validate_schema,
};
pub use de::{Fields, Keys, fields_of, parse_body};
pub use error::{Caused, Coded, Error, ErrorCode, Result};
pub use export::{
    Codec, ExportDesc, ExportList, ExportSpec, FORMAT_COMPRESSION, FileExportOptions, HDFS_PATH_FORBIDDEN,
    HdfsExportSpec, HttpExportSpec, KEY_PREFIX_FORBIDDEN, KodoExportSpec, LogdbExportSpec, MAX_FILE_COUNT,
    ReportExportSpec, TsdbExportSpec, codec, default_compression, format_extension,
};
pub use job::{
    CONTAINER_TYPES, Computation, Container, JobDesc, JobList, JobSpec, JobSrc, MAX_CORES, MAX_RETRIES,
    MAX_RETRY_DELAY_SECONDS, Param, PlanRequest, Retries, Scheduler, SchedulerSpec, StartJobInput,
};
pub use run::{
    BatchActionInput, Exists, GetJobHistoryOutput, HistoryQuery, JobHistory, RerunBatchOutput, RunId, RunStatus,
    StopBatchOutput,
};
pub use variable::{VariableList, VariableSpec};
pub use vocab::{
    Compression, ComputationType, DatasourceType, ExportFormat, ExportType, FileType, HttpFormat, SaveMode,
    SchedulerType, SrcType, ValType, VarType,
};
pub use workflow::{WorkflowDesc, WorkflowNodeStatus, WorkflowSpec, WorkflowStatus};
