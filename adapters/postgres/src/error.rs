//! sqlx errors to [`edgesync_core::Error`], classified by SQLSTATE so the
//! engine's retry logic (which reads only the kind) does the right thing: a
//! serialization failure is retried, a constraint violation is not.

use edgesync_core::{Error, ErrorKind};
use sqlx::postgres::PgDatabaseError;

/// The kind a PostgreSQL SQLSTATE means.
pub fn kind_of_sqlstate(code: &str) -> ErrorKind {
    match code {
        "28P01" | "28000" => ErrorKind::Auth,
        "3D000" => ErrorKind::Config,
        "42P01" | "42703" | "42704" | "42883" | "42P10" | "3F000" => ErrorKind::Schema,
        "40001" | "40P01" | "55P03" | "53300" | "57014" => ErrorKind::Retryable,
        // admin_shutdown, crash_shutdown, cannot_connect_now
        "57P01" | "57P02" | "57P03" => ErrorKind::Connection,
        c if c.starts_with("08") => ErrorKind::Connection,
        c if c.starts_with("23") => ErrorKind::Constraint,
        c if c.starts_with("22") => ErrorKind::Value,
        _ => ErrorKind::Database,
    }
}

/// The kind of any sqlx error.
pub fn kind_of(err: &sqlx::Error) -> ErrorKind {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .map(|c| kind_of_sqlstate(&c))
            .unwrap_or(ErrorKind::Database),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorKind::Connection,
        sqlx::Error::Configuration(_) => ErrorKind::Config,
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::Encode(_) => {
            ErrorKind::Value
        }
        _ => ErrorKind::Database,
    }
}

/// The server's message with its detail (`Key (id)=(5) already exists.`),
/// which is what names the row at fault.
pub fn describe(err: &sqlx::Error) -> String {
    if let sqlx::Error::Database(db) = err {
        if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
            let mut s = format!("{} (SQLSTATE {})", pg.message(), pg.code());
            if let Some(detail) = pg.detail() {
                s.push_str(": ");
                s.push_str(detail);
            }
            return s;
        }
        return db.message().to_string();
    }
    err.to_string()
}

/// Convert, prefixing the message with what was being done.
pub fn db_error(err: sqlx::Error, doing: impl std::fmt::Display) -> Error {
    Error::new(kind_of(&err), format!("{doing}: {}", describe(&err))).with_source(err)
}

/// `.map_err(ctx("..."))` shorthand.
pub fn ctx<D: std::fmt::Display>(doing: D) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| db_error(e, doing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_classify() {
        assert_eq!(kind_of_sqlstate("28P01"), ErrorKind::Auth);
        assert_eq!(kind_of_sqlstate("08006"), ErrorKind::Connection);
        assert_eq!(kind_of_sqlstate("3D000"), ErrorKind::Config);
        assert_eq!(kind_of_sqlstate("42P01"), ErrorKind::Schema);
        assert_eq!(kind_of_sqlstate("23505"), ErrorKind::Constraint);
        assert_eq!(kind_of_sqlstate("40P01"), ErrorKind::Retryable);
        assert_eq!(kind_of_sqlstate("22003"), ErrorKind::Value);
        assert_eq!(kind_of_sqlstate("XX000"), ErrorKind::Database);
        assert_eq!(kind_of(&sqlx::Error::PoolTimedOut), ErrorKind::Connection);
    }
}
