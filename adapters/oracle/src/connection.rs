//! Connecting: parsing `central.url`, logging in with the cause of any
//! failure named (a refused login is `Auth`, an unreachable listener
//! `Connection`, a bad URL, an unknown service or a missing Oracle Client
//! `Config`), and setting every session up the same way.
//!
//! The Oracle Client library (`libclntsh.so`, from Oracle Instant Client) is
//! loaded by ODPI-C when the first session is opened, not when edgesync
//! starts: a machine without it builds and runs every other backend, and an
//! Oracle central there fails with one error saying what to install and
//! where ([`crate::error::INSTANT_CLIENT_MISSING`]).

use std::sync::Arc;

use edgesync_core::{Error, ErrorKind, Result};

use crate::error::{ctx, db_error, is_client_missing, kind_of};
use crate::worker::{Connect, Workers};

/// Sessions (and worker threads) per central.
const WORKERS: usize = 4;

/// Seconds a connection attempt may take (EZConnect Plus `connect_timeout`).
const CONNECT_TIMEOUT_SECS: u32 = 8;

/// Oldest supported server.
const MIN_MAJOR_VERSION: i32 = 19;

/// What every session runs first: NLS settings that make number text,
/// string comparison and ordering independent of the client's locale
/// (`NLS_COMP`/`NLS_SORT` binary, so `ORDER BY` and `>` agree for key
/// cursors), and a bounded wait for DDL locks.
const SESSION_SETUP: [&str; 4] = [
    "ALTER SESSION SET NLS_NUMERIC_CHARACTERS = '.,'",
    "ALTER SESSION SET NLS_COMP = BINARY",
    "ALTER SESSION SET NLS_SORT = BINARY",
    "ALTER SESSION SET DDL_LOCK_TIMEOUT = 10",
];

/// `central.url` parsed: `oracle://user[:password]@host[:port]/service` or
/// `oracle://user[:password]@tns_alias`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Login name.
    pub user: String,
    /// Password from the URL (the config's `password_env` overrides it).
    pub password: Option<String>,
    /// What the Oracle Client connects to: `//host:port/service?...` (Easy
    /// Connect Plus) or a TNS alias from `tnsnames.ora`.
    pub connect_string: String,
    /// For messages: `host:port/service` or the alias.
    pub display: String,
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message)
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| config_error(format!("central.url has a bad %-escape in '{s}'")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| config_error("central.url: %-escapes are not UTF-8"))
}

/// Parse an `oracle://` URL. Errors are `Config` errors naming what is
/// wrong; the password never appears in them.
pub fn parse_url(url: &str) -> Result<Target> {
    let rest = url
        .strip_prefix("oracle://")
        .ok_or_else(|| config_error("central.url must start with oracle://"))?;
    if let Some((_, q)) = rest.split_once('?') {
        return Err(config_error(format!(
            "central.url has options ('{q}'), which the Oracle backend does not take; \
             put connection settings in tnsnames.ora and use oracle://user@alias"
        )));
    }
    let (userinfo, place) = rest.rsplit_once('@').ok_or_else(|| {
        config_error("central.url names no login: oracle://user@host:1521/service")
    })?;
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (percent_decode(u)?, Some(percent_decode(p)?)),
        None => (percent_decode(userinfo)?, None),
    };
    if user.is_empty() {
        return Err(config_error(
            "central.url names no login: oracle://user@host:1521/service",
        ));
    }
    let (connect_string, display) = match place.split_once('/') {
        Some((hostport, service)) => {
            if hostport.is_empty() || service.is_empty() {
                return Err(config_error(
                    "central.url must name a host and a service: oracle://user@host:1521/service",
                ));
            }
            let hostport = if hostport.starts_with('[') || hostport.contains(':') {
                let port = hostport.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
                if !hostport.ends_with(']') && port.parse::<u16>().is_err() {
                    return Err(config_error(format!(
                        "central.url: '{port}' is not a port number"
                    )));
                }
                hostport.to_string()
            } else {
                format!("{hostport}:1521")
            };
            let service = percent_decode(service)?;
            (
                format!("//{hostport}/{service}?connect_timeout={CONNECT_TIMEOUT_SECS}"),
                format!("{hostport}/{service}"),
            )
        }
        None if place.is_empty() => {
            return Err(config_error(
                "central.url names no database: oracle://user@host:1521/service or oracle://user@tns_alias",
            ))
        }
        None => (place.to_string(), place.to_string()),
    };
    Ok(Target {
        user,
        password,
        connect_string,
        display,
    })
}

/// Turn a failed login into an error that names the cause.
pub fn classify_connect_error(e: oracle::Error, target: &Target) -> Error {
    if is_client_missing(&e) {
        return db_error(e, "");
    }
    let kind = kind_of(&e);
    let message = match kind {
        ErrorKind::Auth => format!(
            "Oracle refused login for user '{}' at {}: {e}",
            target.user, target.display
        ),
        ErrorKind::Config => format!(
            "Oracle at {} does not know that service or alias (central.url): {e}",
            target.display
        ),
        ErrorKind::Connection => format!("cannot reach Oracle at {}: {e}", target.display),
        _ => format!("cannot log in to Oracle at {}: {e}", target.display),
    };
    Error::new(kind, message).with_source(e)
}

/// Open and set up one session.
fn open(target: &Target, password: &str) -> Result<oracle::Connection> {
    let mut connector = oracle::Connector::new(&target.user, password, &target.connect_string);
    connector.driver_name("edgesync");
    let conn = connector
        .connect()
        .map_err(|e| classify_connect_error(e, target))?;
    for s in SESSION_SETUP {
        conn.execute(s, &[])
            .map_err(ctx("setting up the Oracle session"))?;
    }
    Ok(conn)
}

/// Workers with sessions to one Oracle database.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The worker threads.
    pub(crate) workers: Arc<Workers>,
    /// The schema unqualified table names live in (the session's current
    /// schema).
    pub default_owner: String,
    /// For messages.
    pub display: String,
    /// The database character set is Unicode (`AL32UTF8`, `UTF8`).
    pub db_unicode: bool,
}

impl Pool {
    /// Parse `url`, log in once (so a wrong password, an unreachable
    /// listener or a missing Oracle Client is reported with its cause),
    /// check the server version, and read the current schema and character
    /// set.
    pub async fn connect(url: &str, password: Option<&str>) -> Result<Pool> {
        let target = parse_url(url)?;
        let secret = password
            .map(str::to_string)
            .or_else(|| target.password.clone())
            .ok_or_else(|| {
                config_error(format!(
                    "no password for Oracle user '{}': set central.password_env or put it in central.url",
                    target.user
                ))
            })?;
        let display = target.display.clone();
        let open_target = target.clone();
        let connect: Connect = Arc::new(move || open(&open_target, &secret));
        let workers = Arc::new(Workers::start(WORKERS, &target.user, connect)?);
        let shown = display.clone();
        let (owner, charset) = workers
            .run(move |conn| {
                let (version, _) = conn
                    .server_version()
                    .map_err(ctx("reading the Oracle server version"))?;
                if version.major() < MIN_MAJOR_VERSION {
                    return Err(Error::schema(format!(
                        "Oracle at {shown} is version {version}; edgesync needs 19c or newer"
                    )));
                }
                let row = conn
                    .query_row(
                        "SELECT SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'),
                                (SELECT value FROM nls_database_parameters
                                  WHERE parameter = 'NLS_CHARACTERSET')
                           FROM dual",
                        &[],
                    )
                    .map_err(ctx("reading the current schema"))?;
                let owner: String = row.get(0).map_err(ctx("reading the current schema"))?;
                let charset: Option<String> =
                    row.get(1).map_err(ctx("reading the character set"))?;
                Ok((owner, charset.unwrap_or_default()))
            })
            .await?;
        Ok(Pool {
            workers,
            default_owner: owner,
            display,
            db_unicode: matches!(charset.as_str(), "AL32UTF8" | "UTF8"),
        })
    }

    /// Run `f` on a session (see [`Workers::run`]).
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&oracle::Connection) -> Result<T> + Send + 'static,
    {
        self.workers.run(f).await
    }
}

/// Is the Oracle Client library loadable on this machine?
pub fn client_available() -> bool {
    oracle::Version::client().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_connect_strings() {
        let t = parse_url("oracle://sync:p%40ss@db.example:1522/ERP.example").expect("url");
        assert_eq!(t.user, "sync");
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert_eq!(
            t.connect_string,
            "//db.example:1522/ERP.example?connect_timeout=8"
        );
        assert_eq!(t.display, "db.example:1522/ERP.example");
        let d = parse_url("oracle://sync@db/FREEPDB1").expect("default port");
        assert_eq!(d.connect_string, "//db:1521/FREEPDB1?connect_timeout=8");
        assert_eq!(d.password, None);
        let alias = parse_url("oracle://sync@ERP_PROD").expect("alias");
        assert_eq!(alias.connect_string, "ERP_PROD");
    }

    #[test]
    fn bad_urls_are_config_errors_naming_the_fault() {
        for (url, says) in [
            ("mssql://u@h/x", "oracle://"),
            ("oracle://db:1521/x", "no login"),
            ("oracle://u@", "no database"),
            ("oracle://u@h:port/x", "port"),
            ("oracle://u@h/", "service"),
            ("oracle://u@h/x?ssl=1", "options"),
        ] {
            let e = parse_url(url).expect_err(url);
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(e.message().contains(says), "{url}: {}", e.message());
        }
    }
}
