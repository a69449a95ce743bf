//! tiberius errors to [`edgesync_core::Error`], classified by SQL Server
//! error number so the engine's retry logic (which reads only the kind) does
//! the right thing: a deadlock victim is retried, a constraint violation is
//! not, a refused login is `Auth`, an untrusted certificate `Config`.

use edgesync_core::{Error, ErrorKind};
use tiberius::error::Error as TdsError;

/// The kind a SQL Server error number means.
pub fn kind_of_code(code: u32) -> ErrorKind {
    match code {
        // Login failed; account locked / disabled; password expired or must
        // be changed; untrusted domain.
        18456 | 18452 | 18470 | 18486 | 18487 | 18488 => ErrorKind::Auth,
        // Cannot open the database named in the login.
        4060 => ErrorKind::Config,
        // Invalid object / column / schema; cannot find procedure; trigger
        // or index missing.
        208 | 207 | 2812 | 4902 | 3701 | 1088 | 15151 => ErrorKind::Schema,
        // Deadlock victim; lock request timeout; snapshot update conflict;
        // resource limits reached; transaction aborted by a failover.
        1205 | 1222 | 3960 | 10928 | 10929 | 40501 | 40197 | 49918 | 49919 | 49920 => {
            ErrorKind::Retryable
        }
        // Duplicate key; FK/CHECK violation; NULL into NOT NULL.
        2627 | 2601 | 547 | 515 => ErrorKind::Constraint,
        // Truncation; arithmetic overflow; conversion failures; invalid
        // JSON; out-of-range dates.
        8152 | 2628 | 8115 | 8114 | 245 | 241 | 242 | 220 | 232 | 8169 | 13609 | 517 => {
            ErrorKind::Value
        }
        _ => ErrorKind::Database,
    }
}

/// The kind of any tiberius error.
pub fn kind_of(err: &TdsError) -> ErrorKind {
    match err {
        TdsError::Server(e) => {
            // Severity 20 and above ends the connection.
            if e.class() >= 20 && kind_of_code(e.code()) == ErrorKind::Database {
                ErrorKind::Connection
            } else {
                kind_of_code(e.code())
            }
        }
        TdsError::Io { .. } | TdsError::Routing { .. } => ErrorKind::Connection,
        // A certificate the client does not trust, or TLS the server does not
        // offer: retrying will not help, the configuration must change.
        TdsError::Tls(_) => ErrorKind::Config,
        TdsError::Conversion(_) | TdsError::Utf8 | TdsError::Utf16 => ErrorKind::Value,
        TdsError::Protocol(_) => ErrorKind::Connection,
        _ => ErrorKind::Database,
    }
}

/// Does the connection have to be thrown away after `err`?
pub fn breaks_connection(err: &TdsError) -> bool {
    match err {
        TdsError::Server(e) => e.class() >= 20,
        TdsError::Io { .. } | TdsError::Protocol(_) | TdsError::Tls(_) => true,
        _ => false,
    }
}

/// The server's message with its number, which is what names the row at
/// fault (`Violation of PRIMARY KEY constraint ... The duplicate key value is
/// (5).`).
pub fn describe(err: &TdsError) -> String {
    match err {
        TdsError::Server(e) => format!("{} (error {})", e.message(), e.code()),
        other => other.to_string(),
    }
}

/// The SQL Server error number behind an adapter error, if any.
pub fn code_of(e: &Error) -> Option<u32> {
    let source = std::error::Error::source(e)?;
    match source.downcast_ref::<TdsError>()? {
        TdsError::Server(t) => Some(t.code()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_numbers_classify() {
        assert_eq!(kind_of_code(18456), ErrorKind::Auth);
        assert_eq!(kind_of_code(4060), ErrorKind::Config);
        assert_eq!(kind_of_code(208), ErrorKind::Schema);
        assert_eq!(kind_of_code(2627), ErrorKind::Constraint);
        assert_eq!(kind_of_code(1205), ErrorKind::Retryable);
        assert_eq!(kind_of_code(8152), ErrorKind::Value);
        assert_eq!(kind_of_code(50000), ErrorKind::Database);
        let io = TdsError::Io {
            kind: std::io::ErrorKind::ConnectionRefused,
            message: "refused".into(),
        };
        assert_eq!(kind_of(&io), ErrorKind::Connection);
        assert!(breaks_connection(&io));
        assert_eq!(
            kind_of(&TdsError::Tls("bad cert".into())),
            ErrorKind::Config
        );
    }
}
