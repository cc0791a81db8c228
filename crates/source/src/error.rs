//! `source`'s error: a seed rule with its code (a missing bucket, a bad
//! record, no files), or a foreign error (object store, file system, the CDN
//! API, DataFusion) kept whole as the cause.

use datafusion::error::DataFusionError;
use pbatch_model::{Caused, Coded, ErrorCode};

/// What can go wrong listing, inferring or reading a source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule of the seed, with its code.
    #[error(transparent)]
    Spec(#[from] pbatch_model::Error),
    /// The object store (a bucket, a NameNode, a local folder).
    #[error(transparent)]
    Store(#[from] Caused<object_store::Error>),
    /// The local file system.
    #[error(transparent)]
    Io(#[from] Caused<std::io::Error>),
    /// The CDN log-list API.
    #[error(transparent)]
    Http(#[from] Caused<reqwest::Error>),
    /// DataFusion, building a table or reading through it.
    #[error(transparent)]
    DataFusion(#[from] Caused<DataFusionError>),
}

impl Error {
    /// A seed rule broken, with its code and a message naming the field or value.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Spec(pbatch_model::Error::new(code, message))
    }

    /// A bug in pbatch.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Spec(pbatch_model::Error::internal(message))
    }

    /// The code and message, whichever the variant.
    fn coded(&self) -> &dyn Coded {
        match self {
            Error::Spec(e) => e,
            Error::Store(c) => c,
            Error::Io(c) => c,
            Error::Http(c) => c,
            Error::DataFusion(c) => c,
        }
    }

    /// The seed's code.
    pub fn code(&self) -> ErrorCode {
        self.coded().code()
    }

    /// The message without the code.
    pub fn message(&self) -> &str {
        self.coded().message()
    }

    /// Prefixes the message with context (the datasource it came from).
    pub fn context(self, ctx: impl std::fmt::Display) -> Self {
        match self {
            Error::Spec(e) => Error::Spec(e.context(ctx)),
            Error::Store(c) => Error::Store(c.context(ctx)),
            Error::Io(c) => Error::Io(c.context(ctx)),
            Error::Http(c) => Error::Http(c.context(ctx)),
            Error::DataFusion(c) => Error::DataFusion(c.context(ctx)),
        }
    }
}

/// At the `ErrorCode` boundary the message stays and the cause goes along.
impl From<Error> for pbatch_model::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Spec(e) => e,
            Error::Store(c) => c.into(),
            Error::Io(c) => c.into(),
            Error::Http(c) => c.into(),
            Error::DataFusion(c) => c.into(),
        }
    }
}

/// `source`'s result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
