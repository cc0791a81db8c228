//! `exec`'s error: a seed rule broken by a src or the SQL's variables (with
//! its code), or a DataFusion error kept whole as the cause.

use datafusion::error::DataFusionError;
use pbatch_model::{Caused, ErrorCode};

/// What can go wrong planning or running a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A src, datasource, variable or store failed a rule of the seed
    /// (from `pbatch-source`, `pbatch-magic` or this crate's checks).
    #[error(transparent)]
    Spec(#[from] pbatch_model::Error),
    /// Listing, inferring or reading a src failed (its store, its files).
    #[error(transparent)]
    Source(#[from] pbatch_source::Error),
    /// DataFusion refused the SQL or failed while running the plan; the
    /// code says whose fault ([`exec_error`](crate::exec_error) decides).
    #[error(transparent)]
    DataFusion(#[from] Caused<DataFusionError>),
}

impl Error {
    /// The seed's code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Spec(e) => e.code(),
            Error::Source(e) => e.code(),
            Error::DataFusion(c) => c.code,
        }
    }
}

/// At the `ErrorCode` boundary the message stays and the cause goes along.
impl From<Error> for pbatch_model::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Spec(e) => e,
            Error::Source(e) => e.into(),
            Error::DataFusion(c) => c.into(),
        }
    }
}

/// `exec`'s result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
