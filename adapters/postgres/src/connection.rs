//! Connecting: one direct connection first, so a wrong password, a missing
//! database or an unreachable server is reported with its real cause and the
//! thing at fault named (a pool would only say it timed out), then a lazy pool
//! for the work.

use std::str::FromStr;
use std::time::Duration;

use edgesync_core::{Error, ErrorKind, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Row};

use crate::error::{describe, kind_of, kind_of_sqlstate};

/// How long a connection attempt may take before the server counts as
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// How long a pool checkout may wait.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Oldest supported server (`server_version_num`).
const MIN_SERVER_VERSION: i32 = 120_000;

/// Connections per central; pushes and pulls of different edges and tables
/// run concurrently.
const MAX_CONNECTIONS: u32 = 8;

/// An open pool and the address it talks to (for messages).
pub struct Connected {
    /// The pool.
    pub pool: PgPool,
    /// `host:port` or the socket path.
    pub addr: String,
}

/// Parse `url`, apply `password`, check the server answers, accepts the login
/// and is new enough, and build the pool.
pub async fn connect(url: &str, password: Option<&str>) -> Result<Connected> {
    let mut opts = PgConnectOptions::from_str(url).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("central.url is not a valid PostgreSQL URL: {e}"),
        )
    })?;
    if let Some(p) = password {
        opts = opts.password(p);
    }
    // No startup `options`: connection poolers (PgBouncer) refuse them. The
    // adapter's SQL depends on no session setting (sqlx sets TimeZone=UTC and
    // DateStyle=ISO anyway); timeouts are set per transaction.
    opts = opts.application_name("edgesync");
    let addr = format!("{}:{}", opts.get_host(), opts.get_port());
    let user = opts.get_username().to_string();
    let database = opts.get_database().unwrap_or(&user).to_string();

    let unreachable = |why: String| {
        Error::new(
            ErrorKind::Connection,
            format!("cannot reach PostgreSQL at {addr}: {why}"),
        )
    };
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )))
        }
        Ok(Err(e)) => return Err(classify_connect_error(e, &addr, &user, &database)),
        Ok(Ok(c)) => c,
    };
    let version: i32 = sqlx::query("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut conn)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| classify_connect_error(e, &addr, &user, &database))?;
    conn.close().await.ok();
    if version < MIN_SERVER_VERSION {
        return Err(Error::schema(format!(
            "PostgreSQL at {addr} is version {}.{}; edgesync needs 12 or newer",
            version / 10_000,
            version % 10_000 / 100
        )));
    }
    // Every new connection of the pool gets TCP_NODELAY (see `nodelay`);
    // not for a Unix socket, which has no Nagle.
    let port = opts.get_port();
    let tcp = opts.get_socket().is_none() && !opts.get_host().starts_with('/');
    let pool = PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |_conn, _meta| {
            Box::pin(async move {
                if tcp {
                    crate::nodelay::apply(port);
                }
                Ok(())
            })
        })
        .connect_lazy_with(opts);
    Ok(Connected { pool, addr })
}

/// Turn a failed connection attempt into an error that names the cause.
fn classify_connect_error(e: sqlx::Error, addr: &str, user: &str, database: &str) -> Error {
    let code = match &e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    let detail = describe(&e);
    let (kind, message) = match code.as_deref() {
        Some(c) if kind_of_sqlstate(c) == ErrorKind::Auth => (
            ErrorKind::Auth,
            format!("PostgreSQL refused login for user '{user}' at {addr}: {detail}"),
        ),
        Some("3D000") => (
            ErrorKind::Config,
            format!("PostgreSQL database '{database}' does not exist at {addr} (central.url)"),
        ),
        Some(c) => (
            kind_of_sqlstate(c),
            format!("PostgreSQL at {addr} refused the connection: {detail}"),
        ),
        None => match kind_of(&e) {
            ErrorKind::Connection => (
                ErrorKind::Connection,
                format!("cannot reach PostgreSQL at {addr}: {detail}"),
            ),
            kind => (
                kind,
                format!("cannot connect to PostgreSQL at {addr}: {detail}"),
            ),
        },
    };
    Error::new(kind, message).with_source(e)
}
