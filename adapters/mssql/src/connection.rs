//! Connecting: parsing `central.url`, logging in with the cause of any
//! failure named (a refused login is `Auth`, an unreachable server
//! `Connection`, a bad URL, an untrusted certificate or a missing database
//! `Config`), and a small pool of sessions.
//!
//! tiberius has no pool of its own; this one is a semaphore and a stack of
//! idle clients. A session whose connection broke is dropped instead of
//! being returned. Every session is set up the same way (`XACT_ABORT`, ANSI
//! settings, a lock timeout), so no statement depends on server defaults.
//!
//! Temporary tables live as long as the session that created them *in a
//! plain batch*; a `#table` created inside a parameterized statement
//! (`sp_executesql`) would vanish when the statement ends. [`Conn::batch`]
//! is therefore used for `CREATE TABLE #...` and session settings.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgesync_core::{Error, ErrorKind, Result};
use tiberius::error::Error as TdsError;
use tiberius::{AuthMethod, Config, EncryptionLevel, Row, ToSql};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::error::{breaks_connection, describe, kind_of, kind_of_code};
use crate::types::Param;

/// How long a connection attempt may take before the server counts as
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// Sessions per central; pushes and pulls of different edges and tables run
/// concurrently.
const MAX_CONNECTIONS: usize = 8;

/// Oldest supported server (`SERVERPROPERTY('ProductMajorVersion')`): 2017.
const MIN_MAJOR_VERSION: i32 = 14;

/// What every session runs first. `XACT_ABORT` makes any error roll the
/// whole transaction back; the ANSI settings are those indexed views and
/// filtered indexes need, and make truncation and overflow errors rather than
/// silent; writes wait at most 30 s for a row lock held by an application.
const SESSION_SETUP: &str = "SET XACT_ABORT ON; SET ANSI_NULLS ON; SET ANSI_PADDING ON; \
     SET ANSI_WARNINGS ON; SET ARITHABORT ON; SET CONCAT_NULL_YIELDS_NULL ON; \
     SET QUOTED_IDENTIFIER ON; SET NUMERIC_ROUNDABORT OFF; SET IMPLICIT_TRANSACTIONS OFF; \
     SET DATEFORMAT ymd; SET LOCK_TIMEOUT 30000;";

/// A tiberius client over a tokio TCP stream.
pub type Client = tiberius::Client<Compat<TcpStream>>;

/// How to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// SQL Server authentication (user and password).
    Sql,
    /// An Azure AD / Entra access token, given as the password.
    AadToken,
}

/// `central.url` parsed: `mssql://user[:password]@host[:port][/database][?options]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// TCP port (default 1433).
    pub port: u16,
    /// Login name.
    pub user: String,
    /// Password from the URL (the config's `password_env` overrides it).
    pub password: Option<String>,
    /// Database (default: the login's default database).
    pub database: Option<String>,
    /// `encrypt=`: `required` (default), `strict` (TDS 8), `login-only`, `off`.
    pub encryption: EncryptionLevel,
    /// `trust_server_certificate=true`: accept any certificate (test servers).
    pub trust_server_certificate: bool,
    /// `ca=PATH`: an extra PEM trust root.
    pub ca: Option<String>,
    /// `hostname_in_certificate=NAME`.
    pub hostname_in_certificate: Option<String>,
    /// `auth=`: `sql` (default) or `aad-token`.
    pub login: Login,
    /// `application_name=` (default `edgesync`).
    pub application_name: String,
}

impl Target {
    /// `host:port`, for messages.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The tiberius configuration; `password` overrides one in the URL.
    pub fn config(&self, password: Option<&str>) -> Result<Config> {
        let mut c = Config::new();
        c.host(&self.host);
        c.port(self.port);
        if let Some(db) = &self.database {
            c.database(db);
        }
        c.application_name(&self.application_name);
        c.encryption(self.encryption);
        if self.trust_server_certificate {
            c.trust_cert();
        } else if let Some(ca) = &self.ca {
            c.trust_cert_ca(ca);
        }
        if let Some(h) = &self.hostname_in_certificate {
            c.hostname_in_certificate(h);
        }
        let secret = password
            .map(str::to_string)
            .or_else(|| self.password.clone());
        match self.login {
            Login::Sql => {
                let secret = secret.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Config,
                        format!(
                            "no password for SQL Server login '{}': set central.password_env or put it in central.url",
                            self.user
                        ),
                    )
                })?;
                c.authentication(AuthMethod::sql_server(&self.user, secret));
            }
            Login::AadToken => {
                let token = secret.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Config,
                        "auth=aad-token needs the access token as the password (central.password_env)",
                    )
                })?;
                c.authentication(AuthMethod::AADToken(token.into()));
            }
        }
        c.handshake_timeout(Some(CONNECT_TIMEOUT));
        Ok(c)
    }
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// Decode `%XX` escapes (user names and passwords with `@`, `:` or `/`).
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

fn truthy(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(config_error(format!(
            "central.url option {key}={v}: expected true or false"
        ))),
    }
}

/// Parse a `mssql://` (or `sqlserver://`) URL. Errors are `Config` errors
/// naming what is wrong; the password never appears in them.
pub fn parse_url(url: &str) -> Result<Target> {
    let rest = url
        .strip_prefix("mssql://")
        .or_else(|| url.strip_prefix("sqlserver://"))
        .ok_or_else(|| config_error("central.url must start with mssql://"))?;
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = main.split_once('/').unwrap_or((main, ""));
    let (userinfo, hostport) = authority
        .rsplit_once('@')
        .ok_or_else(|| config_error("central.url names no login: mssql://user@host/database"))?;
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (percent_decode(u)?, Some(percent_decode(p)?)),
        None => (percent_decode(userinfo)?, None),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| config_error("central.url: unclosed [ in the host"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(config_error("central.url names no host"));
    }
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| config_error(format!("central.url: '{p}' is not a port number")))?,
        None => 1433,
    };
    let database = (!path.is_empty())
        .then(|| percent_decode(path))
        .transpose()?;
    let mut t = Target {
        host,
        port,
        user,
        password,
        database,
        encryption: EncryptionLevel::Required,
        trust_server_certificate: false,
        ca: None,
        hostname_in_certificate: None,
        login: Login::Sql,
        application_name: "edgesync".into(),
    };
    let mut seen = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v)?;
        if seen.insert(k.to_string(), ()).is_some() {
            return Err(config_error(format!(
                "central.url option {k} is given twice"
            )));
        }
        match k {
            "encrypt" => {
                t.encryption = match v.as_str() {
                    "required" | "true" | "yes" => EncryptionLevel::Required,
                    "strict" => EncryptionLevel::Strict,
                    "login-only" => EncryptionLevel::Off,
                    "off" | "false" | "no" => EncryptionLevel::NotSupported,
                    other => {
                        return Err(config_error(format!(
                            "central.url option encrypt={other}: expected required, strict, login-only or off"
                        )))
                    }
                }
            }
            "trust_server_certificate" | "trustservercertificate" => {
                t.trust_server_certificate = truthy(k, &v)?
            }
            "ca" => t.ca = Some(v),
            "hostname_in_certificate" => t.hostname_in_certificate = Some(v),
            "application_name" => t.application_name = v,
            "auth" => {
                t.login = match v.as_str() {
                    "sql" => Login::Sql,
                    "aad-token" => Login::AadToken,
                    "integrated" | "windows" | "kerberos" => {
                        return Err(config_error(
                            "central.url option auth=integrated: integrated (Kerberos/Windows) login is not built into this edgesync; use a SQL Server login or auth=aad-token",
                        ))
                    }
                    other => {
                        return Err(config_error(format!(
                            "central.url option auth={other}: expected sql or aad-token"
                        )))
                    }
                }
            }
            "instance" => {
                return Err(config_error(
                    "central.url option instance=: named instances need the SQL Browser service, which this edgesync does not query; give the instance's TCP port instead (mssql://user@host:PORT/db)",
                ))
            }
            other => {
                return Err(config_error(format!(
                    "central.url has an unknown option '{other}' (known: encrypt, trust_server_certificate, ca, hostname_in_certificate, application_name, auth)"
                )))
            }
        }
    }
    if t.user.is_empty() && t.login == Login::Sql {
        return Err(config_error(
            "central.url names no login: mssql://user@host/database",
        ));
    }
    Ok(t)
}

struct Inner {
    target: Target,
    config: Config,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
}

/// A pool of SQL Server sessions.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("addr", &self.inner.target.addr())
            .finish()
    }
}

impl Pool {
    /// Parse `url`, log in once (so a wrong password or an unreachable server
    /// is reported with its cause), check the server version, and keep that
    /// session as the first idle one.
    pub async fn connect(url: &str, password: Option<&str>) -> Result<Pool> {
        let target = parse_url(url)?;
        let config = target.config(password)?;
        let client = open(&target, &config).await?;
        let pool = Pool {
            inner: Arc::new(Inner {
                target,
                config,
                idle: Mutex::new(vec![client]),
                permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            }),
        };
        let mut conn = pool.get().await?;
        check_version(&mut conn, &pool.addr()).await?;
        Ok(pool)
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> String {
        self.inner.target.addr()
    }

    /// A session (an idle one, or a new one).
    pub async fn get(&self) -> Result<Conn> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("the SQL Server pool is closed"))?;
        let client = self.inner.idle.lock().ok().and_then(|mut v| v.pop());
        let mut conn = Conn {
            client,
            pool: self.inner.clone(),
            broken: false,
            _permit: permit,
        };
        if conn.client.is_none() {
            let c = open(&self.inner.target, &self.inner.config).await?;
            conn.client = Some(c);
        }
        Ok(conn)
    }
}

/// One session, returned to the pool when dropped (unless it broke).
pub struct Conn {
    client: Option<Client>,
    pool: Arc<Inner>,
    broken: bool,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if !self.broken {
                if let Ok(mut idle) = self.pool.idle.lock() {
                    idle.push(c);
                }
            }
        }
    }
}

impl Conn {
    fn client(&mut self) -> Result<&mut Client> {
        self.client
            .as_mut()
            .ok_or_else(|| Error::internal("a SQL Server session was used after it broke"))
    }

    fn fail(&mut self, e: TdsError, doing: &str) -> Error {
        if breaks_connection(&e) {
            self.broken = true;
        }
        Error::new(kind_of(&e), format!("{doing}: {}", describe(&e))).with_source(e)
    }

    /// Run a plain batch (no parameters), draining every result.
    pub async fn batch(&mut self, sql: &str, doing: &str) -> Result<()> {
        let client = self.client()?;
        let r = match client.simple_query(sql).await {
            Ok(stream) => stream.into_results().await.map(|_| ()),
            Err(e) => Err(e),
        };
        r.map_err(|e| self.fail(e, doing))
    }

    /// Run a parameterized statement (or several); rows affected in total.
    pub async fn exec(&mut self, sql: &str, params: &[Param], doing: &str) -> Result<u64> {
        let refs: Vec<&dyn ToSql> = params.iter().map(|p| p as &dyn ToSql).collect();
        let r = self.client()?.execute(sql, &refs).await;
        match r {
            Ok(done) => Ok(done.total()),
            Err(e) => Err(self.fail(e, doing)),
        }
    }

    /// Run a parameterized query; the rows of its first result set.
    pub async fn query(&mut self, sql: &str, params: &[Param], doing: &str) -> Result<Vec<Row>> {
        let refs: Vec<&dyn ToSql> = params.iter().map(|p| p as &dyn ToSql).collect();
        let client = self.client()?;
        let r = match client.query(sql, &refs).await {
            Ok(stream) => stream.into_first_result().await,
            Err(e) => Err(e),
        };
        r.map_err(|e| self.fail(e, doing))
    }

    /// Start a transaction; `applying` marks it as edgesync's own apply
    /// (`SESSION_CONTEXT(N'edgesync.applying') = 1`), which the triggers
    /// read to keep the origin and stamps the apply writes.
    pub async fn begin(&mut self, applying: bool) -> Result<()> {
        let flag = i32::from(applying);
        self.batch(
            &format!(
                "BEGIN TRANSACTION; \
                 EXEC sp_set_session_context @key = N'edgesync.applying', @value = {flag};"
            ),
            "starting a transaction",
        )
        .await
    }

    /// Commit, clearing the apply flag first.
    pub async fn commit(&mut self, doing: &str) -> Result<()> {
        self.batch(
            "EXEC sp_set_session_context @key = N'edgesync.applying', @value = 0; \
             COMMIT TRANSACTION;",
            doing,
        )
        .await
    }

    /// Roll back whatever is open and clear the apply flag; a session that
    /// cannot do even that is thrown away.
    pub async fn rollback(&mut self) {
        let r = self
            .batch(
                "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION; \
                 EXEC sp_set_session_context @key = N'edgesync.applying', @value = 0;",
                "rolling back",
            )
            .await;
        if r.is_err() {
            self.broken = true;
        }
    }
}

/// Open and set up one session.
async fn open(target: &Target, config: &Config) -> Result<Client> {
    let mut config = config.clone();
    let mut addr = target.addr();
    // Azure SQL may redirect the login to another node once.
    for _ in 0..2 {
        let unreachable = |why: String| {
            Error::new(
                ErrorKind::Connection,
                format!("cannot reach SQL Server at {addr}: {why}"),
            )
        };
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(config.get_addr()))
            .await
        {
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
            Ok(Err(e)) => return Err(unreachable(e.to_string()).with_source(e)),
            Ok(Ok(s)) => s,
        };
        tcp.set_nodelay(true).ok();
        let login = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            Client::connect(config.clone(), tcp.compat_write()),
        )
        .await;
        match login {
            Err(_) => return Err(unreachable("the login did not finish in time".into())),
            Ok(Err(TdsError::Routing { host, port })) => {
                addr = format!("{host}:{port}");
                config.host(&host);
                config.port(port);
            }
            Ok(Err(e)) => return Err(classify_connect_error(e, target, &addr)),
            Ok(Ok(mut client)) => {
                let setup = match client.simple_query(SESSION_SETUP).await {
                    Ok(s) => s.into_results().await.map(|_| ()),
                    Err(e) => Err(e),
                };
                setup.map_err(|e| classify_connect_error(e, target, &addr))?;
                return Ok(client);
            }
        }
    }
    Err(Error::new(
        ErrorKind::Connection,
        format!(
            "SQL Server at {} redirected the login more than once",
            target.addr()
        ),
    ))
}

/// Turn a failed login into an error that names the cause.
pub fn classify_connect_error(e: TdsError, target: &Target, addr: &str) -> Error {
    let user = &target.user;
    let detail = describe(&e);
    let (kind, message) = match &e {
        TdsError::Server(s) if kind_of_code(s.code()) == ErrorKind::Auth => (
            ErrorKind::Auth,
            format!("SQL Server refused login for user '{user}' at {addr}: {detail}"),
        ),
        TdsError::Server(s) if s.code() == 4060 => (
            ErrorKind::Config,
            format!(
                "SQL Server database '{}' does not exist at {addr}, or login '{user}' may not open it (central.url): {detail}",
                target.database.as_deref().unwrap_or("(default)")
            ),
        ),
        TdsError::Tls(msg) => (
            ErrorKind::Config,
            format!(
                "TLS with SQL Server at {addr} failed: {msg}; trust the server's certificate authority with ca=/path/to/ca.pem in central.url (or, for a test server with a self-signed certificate, trust_server_certificate=true)"
            ),
        ),
        TdsError::Io { .. } => (
            ErrorKind::Connection,
            format!("cannot reach SQL Server at {addr}: {detail}"),
        ),
        _ => (
            kind_of(&e),
            format!("cannot log in to SQL Server at {addr}: {detail}"),
        ),
    };
    Error::new(kind, message).with_source(e)
}

/// Refuse servers older than 2017 (Azure SQL Database and Managed Instance
/// report their own versioning and are always new enough).
async fn check_version(conn: &mut Conn, addr: &str) -> Result<()> {
    let rows = conn
        .query(
            "SELECT CAST(SERVERPROPERTY('ProductMajorVersion') AS int), \
                    CAST(SERVERPROPERTY('EngineEdition') AS int)",
            &[],
            "reading the server version",
        )
        .await?;
    let (major, edition) = rows
        .first()
        .map(|r| {
            (
                r.try_get::<i32, _>(0).ok().flatten().unwrap_or(0),
                r.try_get::<i32, _>(1).ok().flatten().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    if major < MIN_MAJOR_VERSION && !matches!(edition, 5 | 8) {
        return Err(Error::schema(format!(
            "SQL Server at {addr} is version {major}; edgesync needs SQL Server 2017 (14) or newer"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_options() {
        let t = parse_url(
            "mssql://sync:p%40ss%3Aword@db.example:14330/erp?encrypt=strict&ca=/etc/ca.pem&application_name=edge",
        )
        .expect("url");
        assert_eq!(t.host, "db.example");
        assert_eq!(t.port, 14330);
        assert_eq!(t.user, "sync");
        assert_eq!(t.password.as_deref(), Some("p@ss:word"));
        assert_eq!(t.database.as_deref(), Some("erp"));
        assert_eq!(t.encryption, EncryptionLevel::Strict);
        assert_eq!(t.ca.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(t.application_name, "edge");
        assert_eq!(t.addr(), "db.example:14330");

        let d = parse_url("sqlserver://sa@[::1]").expect("v6");
        assert_eq!((d.host.as_str(), d.port), ("::1", 1433));
        assert_eq!(d.database, None);
        assert_eq!(d.encryption, EncryptionLevel::Required);
        assert!(!d.trust_server_certificate);
        let trust =
            parse_url("mssql://sa@h/db?trust_server_certificate=true&encrypt=off").expect("trust");
        assert!(trust.trust_server_certificate);
        assert_eq!(trust.encryption, EncryptionLevel::NotSupported);
    }

    #[test]
    fn bad_urls_are_config_errors_naming_the_fault() {
        for (url, says) in [
            ("postgres://u@h/db", "mssql://"),
            ("mssql://h/db", "no login"),
            ("mssql://u@h:99999/db", "port"),
            ("mssql://u@h/db?encrypt=maybe", "encrypt=maybe"),
            ("mssql://u@h/db?colour=blue", "unknown option 'colour'"),
            ("mssql://u@h/db?auth=integrated", "integrated"),
            ("mssql://u@h/db?instance=SQLEXPRESS", "port"),
            ("mssql://u@h/db?ca=a&ca=b", "twice"),
        ] {
            let e = parse_url(url).expect_err(url);
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(e.message().contains(says), "{url}: {}", e.message());
        }
    }

    #[test]
    fn a_login_needs_a_password_and_keeps_it_out_of_messages() {
        let t = parse_url("mssql://sync@h/db").expect("url");
        let e = t.config(None).expect_err("no password");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("password_env"));
        assert!(t.config(Some("secret")).is_ok());
        let t = parse_url("mssql://sync:hunter2@h/db").expect("url");
        assert!(!format!("{:?}", t.config(None).expect("config")).contains("hunter2"));
    }

    #[test]
    fn login_failures_are_classified() {
        let t = parse_url("mssql://sync@h/db").expect("url");
        let tls = classify_connect_error(TdsError::Tls("UnknownIssuer".into()), &t, "h:1433");
        assert_eq!(tls.kind(), ErrorKind::Config);
        assert!(tls.message().contains("ca="));
        let io = classify_connect_error(
            TdsError::Io {
                kind: std::io::ErrorKind::ConnectionReset,
                message: "reset".into(),
            },
            &t,
            "h:1433",
        );
        assert_eq!(io.kind(), ErrorKind::Connection);
    }
}
