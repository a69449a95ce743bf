//! rusqlite errors to [`edgesync_core::Error`], classified by SQLite's result
//! code so the engine's retry logic (which reads only the kind) does the
//! right thing: a busy or locked database is retried, a corrupt file is not.

use edgesync_core::{Error, ErrorKind, Result};
use rusqlite::ffi::ErrorCode;

/// The kind an SQLite failure belongs to.
pub(crate) fn kind_of(err: &rusqlite::Error) -> ErrorKind {
    match err {
        rusqlite::Error::SqliteFailure(e, msg) => match e.code {
            // Another connection holds the lock past busy_timeout, or a
            // schema change raced us: try again later.
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SchemaChanged
            | ErrorCode::OperationInterrupted
            | ErrorCode::FileLockingProtocolFailed => ErrorKind::Retryable,
            // A full disk or an I/O hiccup heals without a config change; the
            // daemon must survive both without babysitting.
            ErrorCode::DiskFull | ErrorCode::SystemIoFailure => ErrorKind::Retryable,
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => ErrorKind::Corrupt,
            // Includes RAISE(ABORT, ...) from our read-only triggers.
            ErrorCode::ConstraintViolation => ErrorKind::Constraint,
            ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly => {
                ErrorKind::Config
            }
            ErrorCode::TooBig | ErrorCode::TypeMismatch => ErrorKind::Value,
            _ => {
                let m = msg.as_deref().unwrap_or("");
                if m.starts_with("no such table") || m.starts_with("no such column") {
                    ErrorKind::Schema
                } else {
                    ErrorKind::Database
                }
            }
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::ToSqlConversionFailure(..) => ErrorKind::Value,
        _ => ErrorKind::Internal,
    }
}

/// Convert, keeping the driver error as the source.
pub(crate) fn db_error(err: rusqlite::Error) -> Error {
    let message = match &err {
        rusqlite::Error::SqliteFailure(e, Some(msg)) => format!("sqlite: {msg} ({e})"),
        other => format!("sqlite: {other}"),
    };
    Error::new(kind_of(&err), message).with_source(err)
}

/// `?`-friendly conversion of rusqlite results.
pub(crate) trait SqlResultExt<T> {
    /// Convert the error.
    fn db(self) -> Result<T>;
    /// Convert the error and prefix it with what was being done.
    fn db_ctx<C: std::fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> SqlResultExt<T> for std::result::Result<T, rusqlite::Error> {
    fn db(self) -> Result<T> {
        self.map_err(db_error)
    }

    fn db_ctx<C: std::fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| db_error(e).context(context()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    #[test]
    fn result_codes_map_to_kinds() {
        assert_eq!(kind_of(&failure(ffi::SQLITE_BUSY)), ErrorKind::Retryable);
        assert_eq!(kind_of(&failure(ffi::SQLITE_LOCKED)), ErrorKind::Retryable);
        assert_eq!(kind_of(&failure(ffi::SQLITE_NOTADB)), ErrorKind::Corrupt);
        assert_eq!(kind_of(&failure(ffi::SQLITE_CORRUPT)), ErrorKind::Corrupt);
        assert_eq!(
            kind_of(&failure(ffi::SQLITE_CONSTRAINT)),
            ErrorKind::Constraint
        );
        assert_eq!(kind_of(&failure(ffi::SQLITE_CANTOPEN)), ErrorKind::Config);
        assert_eq!(kind_of(&failure(ffi::SQLITE_FULL)), ErrorKind::Retryable);
        assert_eq!(kind_of(&failure(ffi::SQLITE_ERROR)), ErrorKind::Database);
    }

    #[test]
    fn real_errors_keep_their_source() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        let err = conn
            .execute("SELECT * FROM missing_table", [])
            .db()
            .expect_err("must fail");
        assert_eq!(err.kind(), ErrorKind::Schema);
        assert!(err.message().contains("missing_table"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
