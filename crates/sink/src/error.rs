//! `sink`'s error: a seed rule with its code, or a foreign error (file
//! system, object store, HTTP, a report database, a file encoder) kept whole
//! as the cause.

use pbatch_model::{Caused, Coded, ErrorCode};

/// What can go wrong staging or committing an export. Every variant has the
/// seed's code; the message names the export, file, key or URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule of the seed (a bad mapping, an existing key under
    /// `errorIfExists`, a refused request) or an error from below.
    #[error(transparent)]
    Spec(#[from] pbatch_model::Error),
    /// Reading or writing a local file.
    #[error(transparent)]
    Io(#[from] Caused<std::io::Error>),
    /// Listing, uploading or deleting in an object store.
    #[error(transparent)]
    Store(#[from] Caused<object_store::Error>),
    /// Sending to an HTTP service (http, tsdb, logdb exports).
    #[error(transparent)]
    Http(#[from] Caused<reqwest::Error>),
    /// Another library's error: a report database client (PostgreSQL,
    /// MySQL) or a file encoder (parquet, ORC, arrow).
    #[error(transparent)]
    Foreign(#[from] Caused<Foreign>),
}

/// Another library's error, boxed.
#[derive(Debug)]
pub struct Foreign(pub Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Foreign {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
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

    /// Another library's error while doing what `message` says.
    pub(crate) fn foreign(
        code: ErrorCode,
        message: String,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Foreign(Caused::new(code, message, Foreign(Box::new(source))))
    }

    /// The code and message, whichever the variant.
    fn coded(&self) -> &dyn Coded {
        match self {
            Error::Spec(e) => e,
            Error::Io(c) => c,
            Error::Store(c) => c,
            Error::Http(c) => c,
            Error::Foreign(c) => c,
        }
    }

    /// Says what was being done: `ctx: message`; the code and cause stay.
    pub fn context(self, ctx: impl std::fmt::Display) -> Self {
        match self {
            Error::Spec(e) => Error::Spec(e.context(ctx)),
            Error::Io(c) => Error::Io(c.context(ctx)),
            Error::Store(c) => Error::Store(c.context(ctx)),
            Error::Http(c) => Error::Http(c.context(ctx)),
            Error::Foreign(c) => Error::Foreign(c.context(ctx)),
        }
    }

    /// The same error, marked as one a second try can pass (a service that
    /// answered 5xx or did not answer): a batch that fails with it is
    /// retried when the job has retries.
    pub fn transient(self) -> Self {
        Error::Spec(pbatch_model::Error::from(self).transient())
    }

    /// The seed's code.
    pub fn code(&self) -> ErrorCode {
        self.coded().code()
    }

    /// The message without the code.
    pub fn message(&self) -> &str {
        self.coded().message()
    }
}

/// At the `ErrorCode` boundary the message stays and the cause goes along.
impl From<Error> for pbatch_model::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Spec(e) => e,
            Error::Io(c) => c.into(),
            Error::Store(c) => c.into(),
            Error::Http(c) => c.into(),
            Error::Foreign(c) => c.into(),
        }
    }
}

/// Whether `e` (or one of its causes) is a full disk.
fn disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28))
        {
            return true;
        }
        cur = err.source();
    }
    // encoders that keep only the text of their io error
    e.to_string().contains("No space left on device")
}

/// `<what> <path>: <e>`, saying so plainly when the disk is full (naming
/// the folder that filled up).
pub(crate) fn fs_message(what: &str, path: &std::path::Path, e: &(dyn std::error::Error + 'static)) -> String {
    if disk_full(e) {
        let folder = path.parent().unwrap_or(path);
        format!(
            "{what} {}: the disk is full (no space left in {}): {e}",
            path.display(),
            folder.display()
        )
    } else {
        format!("{what} {}: {e}", path.display())
    }
}

/// `sink`'s result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A foreign cause survives the crossing into the engine's error, with
    /// the code and the message users see unchanged.
    #[test]
    fn the_cause_crosses_the_code_boundary() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device");
        let e = Error::Io(Caused::new(
            ErrorCode::ExportFailed,
            "moving out/a.csv: no space left on device",
            io,
        ));
        assert_eq!(e.code(), ErrorCode::ExportFailed);
        let model: pbatch_model::Error = e.into();
        assert_eq!(model.to_string(), "E18305: moving out/a.csv: no space left on device");
        let cause = model.source().expect("a cause");
        assert_eq!(
            cause.downcast_ref::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::StorageFull)
        );
        // a foreign library's error keeps its own chain below the wrapper
        let parquet = std::io::Error::other("disk gone");
        let e: pbatch_model::Error = Error::foreign(ErrorCode::ExportFailed, "writing p".into(), parquet).into();
        assert_eq!(e.source().map(|c| c.to_string()).as_deref(), Some("disk gone"));
    }
}
