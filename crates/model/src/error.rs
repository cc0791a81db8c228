//! The one table of error codes.
//!
//! Every code of the seed document, the batch-specific `E186xx` family the
//! Go SDK maps, the export-side `E183xx` codes and the internal `E9000` /
//! `E9001` live in [`ErrorCode`], each with its HTTP status and default
//! message. The server maps an error to a response by its code alone; the
//! CLI prints `E18xxx: message`.

use std::fmt;

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal, $msg:literal), )*) => {
        /// A documented error code with its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* #[doc = $msg] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The code as the wire shows it, e.g. `E18602`.
            pub const fn code(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The HTTP status a server answers with.
            pub const fn http_status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status, )* }
            }

            /// The default message (English rendering of the seed's text).
            pub const fn default_message(self) -> &'static str {
                match self { $( ErrorCode::$variant => $msg, )* }
            }
        }
    };
}

error_codes! {
    // ---- internal ----
    Internal = ("E9000", 500, "internal error, please report a bug"),
    NotImplemented = ("E9001", 501, "not implemented"),
    // ---- request checks (seed) ----
    MissingContentLength = ("E18003", 411, "missing content length"),
    InvalidContentLength = ("E18004", 400, "invalid content length"),
    RequestEntityTooLarge = ("E18005", 413, "request entity too large"),
    EmptyRequestBody = ("E18006", 400, "request body is empty"),
    InvalidRequestBody = ("E18007", 400, "request body is malformed"),
    FieldTooLong = ("E18008", 400, "field length exceeds the limit"),
    // ---- variables (SDK) ----
    InvalidVariableType = ("E18016", 400, "invalid variable type"),
    InvalidVariableName = ("E18017", 400, "invalid variable name"),
    InvalidVariableValue = ("E18018", 400, "invalid variable value"),
    PathFilterError = ("E18019", 400, "path filter error"),
    // ---- repos / datasources (seed) ----
    RepoExists = ("E18101", 409, "repo already exists"),
    RepoNotFound = ("E18102", 404, "repo does not exist"),
    InvalidRepoName = ("E18103", 400, "invalid repo name"),
    InvalidDateFormat = ("E18104", 400, "invalid date format"),
    EmptySchema = ("E18105", 400, "schema is empty"),
    InvalidFieldName = ("E18106", 400, "invalid field name"),
    UnsupportedFieldType = ("E18107", 400, "unsupported field type"),
    TooManySourceRepos = ("E18108", 400, "too many source repos"),
    InvalidRepoSpec = ("E18109", 400, "invalid repo mode"),
    InvalidFieldFormat = ("E18110", 400, "invalid field format"),
    FieldNotFound = ("E18111", 404, "field does not exist"),
    RepoHasDependents = ("E18112", 400, "repo has cascading transforms or exports"),
    RepoDeleting = ("E18113", 409, "repo is being deleted"),
    InvalidPluginName = ("E18117", 400, "invalid plugin name"),
    PoolNotFound = ("E18120", 404, "shared resource pool does not exist"),
    ExportRepoNotInLogdb = ("E18122", 404, "exported repo does not exist in logdb"),
    RepoCreating = ("E18124", 202, "repo is being created"),
    GzipBodyError = ("E18125", 400, "error reading gzip body"),
    // ---- transforms / jobs (seed) ----
    JobExists = ("E18201", 409, "job already exists"),
    JobNotFound = ("E18202", 404, "job does not exist"),
    UnsupportedJobType = ("E18203", 415, "job type not supported"),
    JobSourceIsDestination = ("E18204", 409, "job source and destination are the same"),
    DestinationInUse = ("E18205", 409, "destination is used by another transform"),
    DestinationDeleteViaJob = ("E18206", 400, "destination must be deleted by deleting its job"),
    InvalidJobSpec = ("E18207", 400, "invalid job description"),
    InvalidJobInterval = ("E18208", 400, "invalid job interval"),
    InvalidSql = ("E18209", 400, "invalid SQL in job"),
    InvalidPluginOutputType = ("E18211", 400, "invalid plugin output field type"),
    RegionMismatch = ("E18212", 400, "region does not match the data center"),
    InvalidContainerType = ("E18213", 400, "invalid container type"),
    InvalidContainerCount = ("E18214", 400, "invalid container count"),
    PoolInUse = ("E18215", 409, "shared resource pool is in use"),
    PluginNotFound = ("E18216", 404, "plugin does not exist"),
    PluginExists = ("E18217", 409, "plugin already exists"),
    PoolExists = ("E18218", 409, "shared resource pool already exists"),
    PluginLengthMismatch = ("E18219", 400, "plugin upload length mismatch"),
    PluginMd5Mismatch = ("E18220", 400, "plugin upload MD5 mismatch"),
    InvalidPoolName = ("E18221", 400, "invalid shared resource pool name"),
    PoolRegionMismatch = ("E18222", 400, "shared resource pool region mismatch"),
    CannotPostToJobDestination = ("E18223", 400, "cannot post data to a job's destination repo"),
    // ---- exports (seed + SDK) ----
    ExportExists = ("E18301", 409, "export already exists"),
    ExportNotFound = ("E18302", 404, "export does not exist"),
    ExportSubmitFailed = ("E18303", 400, "submitting the export failed"),
    ExportDeleteFailed = ("E18304", 400, "deleting the export failed"),
    ExportFailed = ("E18305", 400, "export failed"),
    ExportStartFailed = ("E18306", 400, "starting the export failed"),
    ExportStopFailed = ("E18307", 400, "stopping the export failed"),
    InvalidSchemaKey = ("E18308", 400, "invalid schema key"),
    InvalidTimestamp = ("E18309", 400, "invalid timestamp"),
    InvalidUrl = ("E18310", 400, "invalid url"),
    InvalidDestinationField = ("E18311", 400, "invalid destination field"),
    RepoFieldNotFound = ("E18312", 400, "repo field does not exist"),
    EmptySourceField = ("E18313", 400, "source field is empty"),
    ExportFieldNotFound = ("E18314", 400, "field does not exist in the job's output"),
    IncompatibleFieldTypes = ("E18315", 400, "incompatible field types"),
    InvalidExportFieldName = ("E18316", 400, "invalid field name"),
    FieldMissed = ("E18317", 400, "field missed"),
    InvalidExportFieldType = ("E18318", 400, "invalid field type"),
    EmptyField = ("E18319", 400, "empty field"),
    InvalidPrefix = ("E18320", 400, "invalid prefix"),
    InvalidFieldValue = ("E18321", 400, "invalid field value"),
    InvalidExportType = ("E18322", 400, "invalid export type"),
    NoSuchBucket = ("E18323", 404, "no such bucket"),
    SourceFieldLacksPrefix = ("E18324", 400, "source field must start with #"),
    FieldTypeError = ("E18325", 400, "field type error"),
    ExportRepoNotFound = ("E18326", 404, "repo does not exist"),
    NoSuchSeries = ("E18327", 404, "no such series"),
    InvalidTagName = ("E18328", 400, "invalid tag name"),
    DuplicatedKey = ("E18329", 400, "duplicated key"),
    CsvWithoutDelimiter = ("E18330", 400, "csv needs a delimiter"),
    RotateSizeExceeded = ("E18331", 400, "rotate size exceeded"),
    NoSuchDatabase = ("E18332", 404, "no such database"),
    NoSuchTable = ("E18333", 404, "no such table"),
    EmptyDestination = ("E18334", 400, "destination is empty"),
    InvalidSourceField = ("E18335", 400, "invalid source field"),
    EmptySourceFieldValue = ("E18336", 400, "source field is empty"),
    HdfsConnectFailed = ("E18337", 502, "cannot connect to HDFS"),
    StatFileFailed = ("E18338", 500, "stat file failed"),
    ExportTypeDisabled = ("E18339", 400, "export type is not configured"),
    // ---- batch (SDK E186xx) ----
    InvalidDatasourceName = ("E18600", 400, "invalid datasource name"),
    DatasourceExists = ("E18601", 409, "datasource already exists"),
    DatasourceNotFound = ("E18602", 404, "datasource does not exist"),
    DatasourceHasDependents = ("E18603", 400, "datasource has dependent jobs"),
    InvalidJobName = ("E18604", 400, "invalid job name"),
    BatchJobExists = ("E18605", 409, "job already exists"),
    BatchJobNotFound = ("E18606", 404, "job does not exist"),
    WrongJobArgumentCount = ("E18607", 400, "wrong job argument count"),
    JobHasDependents = ("E18608", 400, "job has dependent jobs"),
    InvalidExportName = ("E18609", 400, "invalid job export name"),
    JobExportExists = ("E18610", 409, "job export already exists"),
    JobExportNotFound = ("E18611", 404, "job export does not exist"),
    JobSourceNotFound = ("E18612", 404, "job source does not exist"),
    DuplicateTableName = ("E18613", 400, "duplicate tableName"),
    InvalidBatchSpec = ("E18614", 400, "invalid batch scheduler spec"),
    IncompatibleSourceSchema = ("E18615", 400, "incompatible source schema"),
    InvalidTransformPlugin = ("E18617", 400, "invalid transform plugin"),
    InvalidJobSql = ("E18618", 400, "invalid job SQL"),
    BucketNotFound = ("E18619", 404, "bucket does not exist"),
    NoFilesMatched = ("E18620", 400, "datasource matched no files"),
    StartJobFailed = ("E18621", 400, "start job failed"),
    StopJobFailed = ("E18622", 400, "stop job failed"),
    FileFormatMismatch = ("E18623", 400, "file format mismatch"),
    RunNotFound = ("E18624", 404, "runId does not exist"),
    BatchCannotRerun = ("E18625", 400, "batch cannot be rerun"),
    BatchCannotStop = ("E18626", 400, "batch status does not allow stop"),
    IllegalPathCharacter = ("E18638", 400, "illegal character in path"),
    InvalidWorkflowName = ("E18639", 400, "invalid workflow name"),
    WorkflowExists = ("E18640", 409, "workflow already exists"),
    WorkflowNotFound = ("E18641", 404, "workflow does not exist"),
    InvalidWorkflowSpec = ("E18642", 400, "invalid workflow format"),
    WorkflowCannotStart = ("E18644", 400, "workflow cannot be started now"),
    WorkflowCannotStop = ("E18645", 400, "workflow cannot be stopped now"),
    BatchStatusCannotRerun = ("E18649", 400, "batch status does not allow rerun"),
    NoExecutableJob = ("E18650", 400, "no executable job"),
    InvalidJobExportSpec = ("E18651", 400, "invalid job export spec"),
    WorkflowJobsCoexist = ("E18653", 400, "workflow jobs coexist"),
    VariableNotFound = ("E18654", 404, "variable does not exist"),
    VariableExists = ("E18655", 409, "variable already exists"),
    VariableShadowsSystem = ("E18656", 400, "variable name clashes with a system variable"),
    UndefinedVariable = ("E18657", 400, "undefined variable"),
    InvalidTimeFormat = ("E18658", 400, "invalid time format"),
    WorkflowNameClash = ("E18661", 400, "workflow name equals a datasource name"),
    BatchRerunCancelError = ("E18662", 400, "job rerun/cancel error"),
    BatchStartStopError = ("E18663", 400, "start/stop batch job error"),
    NoSuchResourceOwner = ("E18664", 400, "no such resource owner"),
    AccessDenied = ("E18665", 403, "access denied"),
    AccountInArrears = ("E18669", 403, "account in arrears"),
    AccountFrozen = ("E18670", 403, "account frozen"),
    FusionFilterStringVariable = ("E18704", 400, "fusion fileFilter may only use time variables"),
    FusionFilterUndefinedVariable = ("E18705", 400, "fusion fileFilter uses an undefined variable"),
    // ---- pbatch additions ----
    InvalidBackfill = ("E18690", 400, "invalid backfill"),
    BackfillNotFound = ("E18691", 404, "backfill does not exist"),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An error with its code and a message that names the field and value.
///
/// Renders as `E18xxx: message`, the shape the SDKs parse.
///
/// The message is what users see; the foreign error it came from (a
/// DataFusion, object_store, io or HTTP error), when there is one, stays as
/// its [`source`](std::error::Error::source) for logs and callers.
#[derive(Debug, Clone)]
pub struct Error {
    code: ErrorCode,
    message: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
    transient: bool,
}

impl PartialEq for Error {
    /// Errors are equal when code and message are: the cause is context.
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.message == other.message
    }
}

impl Eq for Error {}

impl Error {
    /// An error with `code` and a specific message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
            transient: false,
        }
    }

    /// An error with `code` and a message, keeping the foreign error that
    /// caused it as its source.
    pub fn with_source(
        code: ErrorCode,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            source: Some(std::sync::Arc::new(source)),
            transient: false,
        }
    }

    /// Marks the error as one a second try can pass: a service that answered
    /// 5xx or did not answer.
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }

    /// Whether a batch that failed with it may pass on a second try (and
    /// so is retried): storage and network errors (`E18338`, `E18337`) and
    /// errors marked [`transient`](Self::transient). Data and SQL errors
    /// are not.
    pub fn is_transient(&self) -> bool {
        self.transient || matches!(self.code, ErrorCode::StatFileFailed | ErrorCode::HdfsConnectFailed)
    }

    /// An internal error (a bug in pbatch).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message without the code.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same message under another code (a rule shared by two resources
    /// whose seed codes differ, such as a datasource's and an export's
    /// delimiter).
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code;
        self
    }

    /// Prefixes the message with context, e.g. the resource it came from.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.message = format!("{ctx}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.code(), self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A foreign error (DataFusion, object_store, io, HTTP, a database client)
/// kept whole, with the seed's code and the message users see. The crates
/// that meet foreign errors build their own error enums from it; at the
/// `ErrorCode` boundary it becomes an [`Error`] whose source is the cause.
#[derive(Debug)]
pub struct Caused<E> {
    /// The seed's code (whose fault it is).
    pub code: ErrorCode,
    /// What users see: the field, file, key or URL, and the cause's words.
    pub message: String,
    /// The foreign error.
    pub source: E,
}

impl<E> Caused<E> {
    /// `message` with `code`, caused by `source`.
    pub fn new(code: ErrorCode, message: impl Into<String>, source: E) -> Self {
        Self {
            code,
            message: message.into(),
            source,
        }
    }
}

impl<E> Caused<E> {
    /// Prefixes the message with context (the resource it came from).
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.message = format!("{ctx}: {}", self.message);
        self
    }
}

/// What every error of pbatch tells: the seed's code and the message users
/// see. The crates' error enums answer through it.
pub trait Coded {
    /// The seed's code.
    fn code(&self) -> ErrorCode;
    /// The message without the code.
    fn message(&self) -> &str;
}

impl Coded for Error {
    fn code(&self) -> ErrorCode {
        self.code
    }
    fn message(&self) -> &str {
        &self.message
    }
}

impl<E> Coded for Caused<E> {
    fn code(&self) -> ErrorCode {
        self.code
    }
    fn message(&self) -> &str {
        &self.message
    }
}

impl<E> fmt::Display for Caused<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Caused<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<Caused<E>> for Error {
    fn from(c: Caused<E>) -> Self {
        Error::with_source(c.code, c.message, c.source)
    }
}

/// Result with the model [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds an `Err(Error)` with a formatted message.
#[macro_export]
macro_rules! model_err {
    ($code:ident, $($arg:tt)*) => {
        Err($crate::Error::new($crate::ErrorCode::$code, format!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.code()), "duplicate code {}", c.code());
            assert!(c.code().starts_with('E'), "{}", c.code());
            assert!(c.code()[1..].chars().all(|ch| ch.is_ascii_digit()));
            assert!((200..600).contains(&c.http_status()));
        }
    }

    #[test]
    fn every_seed_code_is_present_with_its_status() {
        // (code, status) pairs exactly as the seed's error table lists them.
        let seed: &[(&str, u16)] = &[
            ("E18003", 411),
            ("E18004", 400),
            ("E18005", 413),
            ("E18006", 400),
            ("E18007", 400),
            ("E18008", 400),
            ("E18101", 409),
            ("E18102", 404),
            ("E18103", 400),
            ("E18104", 400),
            ("E18105", 400),
            ("E18106", 400),
            ("E18107", 400),
            ("E18108", 400),
            ("E18109", 400),
            ("E18110", 400),
            ("E18111", 404),
            ("E18112", 400),
            ("E18113", 409),
            ("E18117", 400),
            ("E18120", 404),
            ("E18122", 404),
            ("E18124", 202),
            ("E18125", 400),
            ("E18201", 409),
            ("E18202", 404),
            ("E18203", 415),
            ("E18204", 409),
            ("E18205", 409),
            ("E18206", 400),
            ("E18207", 400),
            ("E18208", 400),
            ("E18209", 400),
            ("E18211", 400),
            ("E18212", 400),
            ("E18213", 400),
            ("E18214", 400),
            ("E18215", 409),
            ("E18216", 404),
            ("E18217", 409),
            ("E18218", 409),
            ("E18219", 400),
            ("E18220", 400),
            ("E18221", 400),
            ("E18222", 400),
            ("E18223", 400),
            ("E18301", 409),
            ("E18302", 404),
            ("E18303", 400),
            ("E18304", 400),
            ("E18305", 400),
            ("E18639", 400),
            ("E18640", 409),
            ("E18641", 404),
            ("E18642", 400),
            ("E18644", 400),
            ("E18645", 400),
        ];
        for (code, status) in seed {
            let c = ErrorCode::ALL
                .iter()
                .find(|c| c.code() == *code)
                .unwrap_or_else(|| panic!("seed code {code} missing"));
            assert_eq!(c.http_status(), *status, "{code}");
        }
    }

    #[test]
    fn renders_code_colon_message() {
        let e = Error::new(ErrorCode::DatasourceNotFound, "datasource ds1 does not exist");
        assert_eq!(e.to_string(), "E18602: datasource ds1 does not exist");
        assert_eq!(e.code().http_status(), 404);
    }

    #[test]
    fn error_stays_small() {
        // code, message, and the cause behind one Arc
        assert_eq!(std::mem::size_of::<Error>(), 48);
    }

    #[test]
    fn the_cause_survives_as_source() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no write access");
        let e = Error::with_source(ErrorCode::ExportFailed, "writing out/a.csv: no write access", io);
        let cause = e.source().expect("a source");
        assert_eq!(cause.to_string(), "no write access");
        assert!(cause.downcast_ref::<std::io::Error>().is_some());
        // context keeps the cause; equality ignores it
        let e = e.context("export daily");
        assert!(e.source().is_some());
        assert_eq!(
            e,
            Error::new(
                ErrorCode::ExportFailed,
                "export daily: writing out/a.csv: no write access"
            )
        );
    }
}
