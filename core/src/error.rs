//! One error type for every adapter.
//!
//! Retry decisions in the engine read only [`ErrorKind`], so an adapter must
//! classify its driver's errors carefully: a wrong password is `Auth` (never
//! retried), a dropped connection is `Connection` (retried with backoff).

use std::fmt;

/// What went wrong, in terms that mean the same on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid (names the key at fault).
    Config,
    /// The database cannot be reached, or the connection dropped. Retryable.
    Connection,
    /// Login refused. Not retryable without a config change.
    Auth,
    /// A table or column is missing, or types cannot be mapped without loss.
    Schema,
    /// A row violated a constraint of the target database.
    Constraint,
    /// A value cannot be represented on the other side.
    Value,
    /// A transient condition (lock timeout, serialization failure). Retryable.
    Retryable,
    /// The edge file is unreadable, corrupt or not a database.
    Corrupt,
    /// Anything else the database reported.
    Database,
    /// A bug or broken invariant inside edgesync.
    Internal,
    /// A pull position older than the central's retention: tombstones the
    /// node has not seen were purged (`sync.retention`), so it must take a
    /// fresh snapshot of the table instead of continuing.
    Resnapshot,
}

impl ErrorKind {
    /// Whether the engine should retry the operation after a backoff.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Connection | ErrorKind::Retryable)
    }

    /// A short stable name for metrics and JSON status.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Connection => "connection",
            ErrorKind::Auth => "auth",
            ErrorKind::Schema => "schema",
            ErrorKind::Constraint => "constraint",
            ErrorKind::Value => "value",
            ErrorKind::Retryable => "retryable",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Database => "database",
            ErrorKind::Internal => "internal",
            ErrorKind::Resnapshot => "resnapshot",
        }
    }
}

/// An error with its kind, a message that names the thing at fault, and the
/// driver's own error kept as the source.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Result alias used across edgesync crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attach the underlying driver error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the source chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefix the message with more context (e.g. the table being synced).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Shorthand for [`ErrorKind::Schema`].
    pub fn schema(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Schema, message)
    }

    /// Shorthand for [`ErrorKind::Value`].
    pub fn value(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Value, message)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
