//! Connecting: one direct connection first, so a wrong password, a missing
//! database or an unreachable server is reported with its real cause and the
//! thing at fault named, then a pool for the work.
//!
//! Every connection gets the same session, set explicitly rather than
//! inherited from the server's configuration ([`SESSION`]): strict
//! `sql_mode` (an out-of-range or too-long value is an error, never a
//! truncation; zero dates refused; an edge's key 0 stays 0 in an
//! `AUTO_INCREMENT` column), `time_zone = '+00:00'` (so `TIMESTAMP`
//! columns read and write UTC instants), `utf8mb4` (4-byte characters
//! survive) and bounded lock waits.

use std::time::Duration;

use edgesync_core::{Error, ErrorKind, Result};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::error::{describe, kind_of};

/// How long a connection attempt may take before the server counts as
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// Connections per central; pushes and pulls of different edges and tables
/// run concurrently.
const MAX_CONNECTIONS: usize = 8;

/// How long an idle pooled connection stays open.
const IDLE_CONNECTION_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The session every connection runs with (also after a pool reset).
pub const SESSION: &str = "SET NAMES utf8mb4, \
     SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO', \
     SESSION time_zone = '+00:00', \
     SESSION innodb_lock_wait_timeout = 30, \
     SESSION lock_wait_timeout = 30";

/// An open pool and what it talks to.
pub struct Connected {
    /// The pool.
    pub pool: Pool,
    /// `host:port` (for messages).
    pub addr: String,
    /// The database named in the URL.
    pub database: String,
    /// MariaDB rather than MySQL.
    pub mariadb: bool,
}

/// Parse `url`, apply `password`, check the server answers, accepts the login,
/// has the database and is new enough, and build the pool.
pub async fn connect(url: &str, password: Option<&str>) -> Result<Connected> {
    let opts = Opts::from_url(url).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("central.url is not a valid MySQL URL: {e}"),
        )
    })?;
    let database = opts
        .db_name()
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "central.url names no database; write it as mysql://user@host:3306/DATABASE",
            )
        })?;
    let addr = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
    let user = opts.user().unwrap_or("").to_string();
    let constraints = PoolConstraints::new(0, MAX_CONNECTIONS)
        .ok_or_else(|| Error::internal("invalid pool constraints"))?;
    // No reset on checkout: it would drop the prepared-statement cache; the
    // adapter sets and clears its only session variable (@es_applying)
    // itself, and transactions are rolled back by the pool when dropped.
    //
    // Idle connections are kept: with mysql_async's default inactive TTL of
    // zero, the pool keeps at most `min` (here 0) idle connections and
    // closes every other one as it is returned, so each call opened a new
    // connection (TCP, login, the session statement, a settings query): 205
    // connections for a 200-page initial load, in MariaDB's slow log. With
    // a TTL, up to `max` stay open and the pool trims idle ones back to
    // `min` once they have idled that long.
    let mut builder = OptsBuilder::from_opts(opts)
        .setup(vec![SESSION.to_string()])
        .stmt_cache_size(256)
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                .with_inactive_connection_ttl(IDLE_CONNECTION_TTL)
                .with_reset_connection(false),
        );
    if let Some(p) = password {
        builder = builder.pass(Some(p));
    }
    let opts: Opts = builder.into();

    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts.clone())).await {
        Err(_) => {
            return Err(Error::new(
                ErrorKind::Connection,
                format!(
                    "cannot reach MySQL at {addr}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            ))
        }
        Ok(Err(e)) => return Err(classify_connect_error(e, &addr, &user, &database)),
        Ok(Ok(c)) => c,
    };
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| classify_connect_error(e, &addr, &user, &database))?;
    conn.disconnect().await.ok();
    let version = version.unwrap_or_default();
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    check_version(&version, mariadb, &addr)?;
    Ok(Connected {
        pool: Pool::new(opts),
        addr,
        database,
        mariadb,
    })
}

/// MariaDB 10.6+ or MySQL 8.0.1+: both have `SKIP LOCKED`, which the commit-safe
/// stamping step needs.
fn check_version(version: &str, mariadb: bool, addr: &str) -> Result<()> {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let ok = if mariadb {
        (major, minor) >= (10, 6)
    } else {
        major >= 8
    };
    if ok {
        Ok(())
    } else {
        Err(Error::schema(format!(
            "{} at {addr} is version {version}; edgesync needs MySQL 8.0 or MariaDB 10.6 or newer (for SKIP LOCKED)",
            if mariadb { "MariaDB" } else { "MySQL" }
        )))
    }
}

/// Turn a failed connection attempt into an error that names the cause.
fn classify_connect_error(e: mysql_async::Error, addr: &str, user: &str, database: &str) -> Error {
    let detail = describe(&e);
    let (kind, message) = match &e {
        mysql_async::Error::Server(s) if s.code == 1049 => (
            ErrorKind::Config,
            format!("MySQL database '{database}' does not exist at {addr} (central.url)"),
        ),
        mysql_async::Error::Server(s) if s.code == 1044 => (
            ErrorKind::Auth,
            format!(
                "MySQL refused user '{user}' access to database '{database}' at {addr}: {detail}"
            ),
        ),
        _ => match kind_of(&e) {
            ErrorKind::Auth => (
                ErrorKind::Auth,
                format!("MySQL refused login for user '{user}'@{addr}: {detail}"),
            ),
            ErrorKind::Connection => (
                ErrorKind::Connection,
                format!("cannot reach MySQL at {addr}: {detail}"),
            ),
            kind => (kind, format!("cannot connect to MySQL at {addr}: {detail}")),
        },
    };
    Error::new(kind, message).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked() {
        assert!(check_version("10.11.19-MariaDB-0+deb12u1", true, "h:1").is_ok());
        assert!(check_version("10.5.2-MariaDB", true, "h:1").is_err());
        assert!(check_version("8.0.36", false, "h:1").is_ok());
        assert!(check_version("5.7.44-log", false, "h:1")
            .expect_err("old")
            .message()
            .contains("SKIP LOCKED"));
    }
}
