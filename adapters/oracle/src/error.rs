//! `oracle` crate errors to [`edgesync_core::Error`], classified by ORA-
//! and DPI- numbers so the engine's retry logic (which reads only the kind)
//! does the right thing: a deadlock is retried, a constraint violation is
//! not, a refused login is `Auth`, a missing Oracle Client `Config`.

use edgesync_core::{Error, ErrorKind};
use oracle::ErrorKind as OraKind;

/// What to tell an operator whose machine has no Oracle Client library.
pub const INSTANT_CLIENT_MISSING: &str = "Oracle Instant Client (libclntsh.so) not found: \
     install Oracle Instant Client 19c or newer (the Basic or Basic Light package) and make \
     libclntsh.so findable, e.g. set LD_LIBRARY_PATH=/opt/oracle/instantclient_19_23 in the \
     service's environment (systemd: Environment= in a drop-in) or register the directory \
     with ldconfig. Every other backend works without it";

/// The kind an ORA- error number means.
pub fn kind_of_ora(code: i32) -> ErrorKind {
    match code {
        // Invalid username/password; account locked; password expired;
        // no CREATE SESSION; null password.
        1017 | 28000 | 28001 | 1045 | 1005 | 28009 | 28040 => ErrorKind::Auth,
        // Could not resolve the connect identifier; unknown service or SID.
        12154 | 12514 | 12505 | 12162 | 12262 => ErrorKind::Config,
        // No listener; timeouts; lost or closed connection; instance down.
        12541 | 12170 | 12543 | 12545 | 12537 | 12547 | 12560 | 3113 | 3114 | 3135 | 12152
        | 1033 | 1034 | 1089 | 1090 | 1092 | 28547 | 12528 | 12516 | 12518 | 12519 | 12520 => {
            ErrorKind::Connection
        }
        // Deadlock; cannot serialize; lock wait timeouts; package state
        // discarded (retrying reinstantiates it); snapshot too old.
        60 | 8177 | 30006 | 54 | 4068 | 4061 | 4065 | 1555 => ErrorKind::Retryable,
        // Unique, foreign key, NOT NULL, check constraints.
        1 | 2291 | 2292 | 1400 | 1407 | 2290 => ErrorKind::Constraint,
        // Value too large; precision; invalid number; date conversions;
        // invalid JSON.
        12899 | 1438 | 1722 | 1861 | 1843 | 1847 | 1830 | 1841 | 1461 | 1401 | 40441 => {
            ErrorKind::Value
        }
        // Missing table/column/object; insufficient privileges.
        942 | 904 | 4043 | 4080 | 1031 | 2289 | 6550 => ErrorKind::Schema,
        _ => ErrorKind::Database,
    }
}

/// The ORA- number of a driver error, if it is one.
pub fn ora_code(e: &oracle::Error) -> Option<i32> {
    match e.kind() {
        OraKind::OciError => e.db_error().map(|d| d.code()),
        _ => None,
    }
}

/// The kind of any driver error.
pub fn kind_of(e: &oracle::Error) -> ErrorKind {
    match e.kind() {
        OraKind::OciError => ora_code(e).map_or(ErrorKind::Database, kind_of_ora),
        OraKind::DpiError => {
            let msg = e.to_string();
            if msg.contains("DPI-1047") || msg.contains("DPI-1072") {
                ErrorKind::Config
            } else if msg.contains("DPI-1010") || msg.contains("DPI-1080") {
                ErrorKind::Connection
            } else {
                ErrorKind::Database
            }
        }
        OraKind::NullValue
        | OraKind::ParseError
        | OraKind::OutOfRange
        | OraKind::InvalidTypeConversion => ErrorKind::Value,
        _ => ErrorKind::Database,
    }
}

/// Is this the "no Oracle Client library" error (ODPI-C's DPI-1047)?
pub fn is_client_missing(e: &oracle::Error) -> bool {
    e.to_string().contains("DPI-1047")
}

/// Does the session have to be thrown away after `e`?
pub fn breaks_connection(e: &oracle::Error) -> bool {
    kind_of(e) == ErrorKind::Connection || matches!(ora_code(e), Some(28 | 1012 | 2396 | 4068))
}

/// Convert, prefixing the message with what was being done.
pub fn db_error(e: oracle::Error, doing: impl std::fmt::Display) -> Error {
    if is_client_missing(&e) {
        return Error::new(ErrorKind::Config, INSTANT_CLIENT_MISSING).with_source(e);
    }
    Error::new(kind_of(&e), format!("{doing}: {e}")).with_source(e)
}

/// `.map_err(ctx("..."))` shorthand.
pub fn ctx<D: std::fmt::Display>(doing: D) -> impl FnOnce(oracle::Error) -> Error {
    move |e| db_error(e, doing)
}

/// The ORA- number behind an adapter error, if any.
pub fn code_of(e: &Error) -> Option<i32> {
    let source = std::error::Error::source(e)?;
    ora_code(source.downcast_ref::<oracle::Error>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ora_numbers_classify() {
        assert_eq!(kind_of_ora(1017), ErrorKind::Auth);
        assert_eq!(kind_of_ora(28000), ErrorKind::Auth);
        assert_eq!(kind_of_ora(12514), ErrorKind::Config);
        assert_eq!(kind_of_ora(12541), ErrorKind::Connection);
        assert_eq!(kind_of_ora(3113), ErrorKind::Connection);
        assert_eq!(kind_of_ora(60), ErrorKind::Retryable);
        assert_eq!(kind_of_ora(1), ErrorKind::Constraint);
        assert_eq!(kind_of_ora(12899), ErrorKind::Value);
        assert_eq!(kind_of_ora(942), ErrorKind::Schema);
        assert_eq!(kind_of_ora(20001), ErrorKind::Database);
        let e = oracle::Error::new(OraKind::OutOfRange, "too big");
        assert_eq!(kind_of(&e), ErrorKind::Value);
        let missing = oracle::Error::new(
            OraKind::DpiError,
            "DPI-1047: Cannot locate a 64-bit Oracle Client library",
        );
        let err = db_error(missing, "connecting");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("LD_LIBRARY_PATH"));
    }
}
