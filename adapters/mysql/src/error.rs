//! mysql_async errors to [`edgesync_core::Error`], classified by MySQL error
//! number (then SQLSTATE class) so the engine's retry logic, which reads only
//! the kind, does the right thing: a deadlock or lock wait timeout is
//! retried, a constraint violation is not.

use edgesync_core::{Error, ErrorKind};

/// The kind a MySQL/MariaDB error number (and SQLSTATE) means.
pub fn kind_of_code(code: u16, state: &str) -> ErrorKind {
    match code {
        // access denied (user, database, no password), auth plugin problems
        1045 | 1044 | 1698 | 1251 | 1524 | 1862 | 1820 | 3118 | 4151 => ErrorKind::Auth,
        // unknown database
        1049 => ErrorKind::Config,
        // no such table / column / key / trigger
        1146 | 1054 | 1091 | 1176 | 1360 | 1109 => ErrorKind::Schema,
        // deadlock, lock wait timeout, statement or metadata lock timeout,
        // query interrupted, too many connections, server busy
        1213 | 1205 | 1020 | 3572 | 3024 | 1969 | 1317 | 1040 | 1203 | 1226 => ErrorKind::Retryable,
        // server shutdown, connection killed, network errors
        1053 | 1077 | 1078 | 1079 | 1080 | 1152 | 1153 | 1154 | 1155 | 1156 | 1157 | 1158
        | 1159 | 1160 | 1161 | 1927 | 2002 | 2003 | 2006 | 2013 | 2055 => ErrorKind::Connection,
        // duplicate key, foreign keys, NOT NULL, CHECK constraints, no default
        1062 | 1586 | 1022 | 1169 | 1216 | 1217 | 1451 | 1452 | 1048 | 1263 | 1364 | 3819
        | 4025 => ErrorKind::Constraint,
        // out of range, truncated, wrong value, data too long, bad JSON,
        // incorrect string value (charset)
        1264 | 1265 | 1292 | 1366 | 1367 | 1406 | 1411 | 1690 | 3140 | 3156 | 4078 | 1300
        | 1301 => ErrorKind::Value,
        _ => match state {
            s if s.starts_with("08") => ErrorKind::Connection,
            s if s.starts_with("23") => ErrorKind::Constraint,
            s if s.starts_with("22") => ErrorKind::Value,
            s if s.starts_with("28") => ErrorKind::Auth,
            "40001" => ErrorKind::Retryable,
            "42S02" | "42S22" => ErrorKind::Schema,
            _ => ErrorKind::Database,
        },
    }
}

/// The kind of any mysql_async error.
pub fn kind_of(err: &mysql_async::Error) -> ErrorKind {
    match err {
        mysql_async::Error::Server(e) => kind_of_code(e.code, &e.state),
        mysql_async::Error::Io(_) => ErrorKind::Connection,
        mysql_async::Error::Url(_) => ErrorKind::Config,
        mysql_async::Error::Driver(d) => match d {
            mysql_async::DriverError::ConnectionClosed
            | mysql_async::DriverError::PoolDisconnected
            | mysql_async::DriverError::UnexpectedPacket { .. } => ErrorKind::Connection,
            mysql_async::DriverError::FromValue { .. }
            | mysql_async::DriverError::FromRow { .. } => ErrorKind::Value,
            _ => ErrorKind::Database,
        },
        mysql_async::Error::Other(_) => ErrorKind::Database,
    }
}

/// The server's message with its error number and SQLSTATE.
pub fn describe(err: &mysql_async::Error) -> String {
    match err {
        mysql_async::Error::Server(e) => {
            format!("{} (error {}, SQLSTATE {})", e.message, e.code, e.state)
        }
        other => other.to_string(),
    }
}

/// Convert, prefixing the message with what was being done.
pub fn db_error(err: mysql_async::Error, doing: impl std::fmt::Display) -> Error {
    Error::new(kind_of(&err), format!("{doing}: {}", describe(&err))).with_source(err)
}

/// `.map_err(ctx("..."))` shorthand.
pub fn ctx<D: std::fmt::Display>(doing: D) -> impl FnOnce(mysql_async::Error) -> Error {
    move |e| db_error(e, doing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_numbers_classify() {
        assert_eq!(kind_of_code(1045, "28000"), ErrorKind::Auth);
        assert_eq!(kind_of_code(1049, "42000"), ErrorKind::Config);
        assert_eq!(kind_of_code(1146, "42S02"), ErrorKind::Schema);
        assert_eq!(kind_of_code(1213, "40001"), ErrorKind::Retryable);
        assert_eq!(kind_of_code(1205, "HY000"), ErrorKind::Retryable);
        assert_eq!(kind_of_code(1062, "23000"), ErrorKind::Constraint);
        assert_eq!(kind_of_code(4025, "23000"), ErrorKind::Constraint);
        assert_eq!(kind_of_code(1406, "22001"), ErrorKind::Value);
        assert_eq!(kind_of_code(1264, "22003"), ErrorKind::Value);
        assert_eq!(kind_of_code(9999, "08S01"), ErrorKind::Connection);
        assert_eq!(kind_of_code(9999, "HY000"), ErrorKind::Database);
    }
}
