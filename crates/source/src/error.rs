//! `source`'s error: a seed rule with its code (a missing bucket, a bad
//! record, no files), or a foreign error (object store, file system, the CDN
//! API, DataFusion) kept whole as the cause.

use datafusion::error::DataFusionError;
use pbatch_model::{Caused, ErrorCode};

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

    /// The seed's code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Spec(e) => e.code(),
            Error::Store(c) => c.code,
            Error::Io(c) => c.code,
            Error::Http(c) => c.code,
            Error::DataFusion(c) => c.code,
        }
    }

    /// The message without the code.
    pub fn message(&self) -> &str {
        match self {
            Error::Spec(e) => e.message(),
            Error::Store(c) => &c.message,
            Error::Io(c) => &c.message,
            Error::Http(c) => &c.message,
            Error::DataFusion(c) => &c.message,
        }
    }

    /// Prefixes the message with context (the datasource it came from).
    pub fn context(self, ctx: impl std::fmt::Display) -> Self {
        let prefix = |m: &mut String| *m = format!("{ctx}: {m}");
        match self {
            Error::Spec(e) => Error::Spec(e.context(ctx)),
            Error::Store(mut c) => {
                prefix(&mut c.message);
                Error::Store(c)
            }
            Error::Io(mut c) => {
                prefix(&mut c.message);
                Error::Io(c)
            }
            Error::Http(mut c) => {
                prefix(&mut c.message);
                Error::Http(c)
            }
            Error::DataFusion(mut c) => {
                prefix(&mut c.message);
                Error::DataFusion(c)
            }
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
