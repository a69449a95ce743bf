//! Choosing the central adapter from `central.url`.
//!
//! The backend is picked at run time from the URL scheme, so the engine holds
//! an `Arc<dyn Central>`; each adapter is compiled in only when its cargo
//! feature is on, and a URL for a backend left out of this build gets an error
//! saying which feature to enable instead of a confusing connect failure.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use edgesync_core::Central;

use crate::config::CentralConfig;

/// The backend a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CentralTarget {
    /// An embedded SQLite central file.
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres(String),
    /// A MySQL or MariaDB server.
    Mysql(String),
    /// A SQL Server (2017+, Azure SQL).
    Mssql(String),
    /// An Oracle database (19c+; needs Oracle Instant Client at run time).
    Oracle(String),
    /// A hub (`edgesync serve`) over HTTPS.
    Hub(String),
    /// A backend this build does not include.
    Unsupported(String),
}

/// Work out what `url` points at; relative SQLite paths resolve against
/// `base_dir` (the directory of the config file).
pub fn parse_target(url: &str, base_dir: &Path) -> Result<CentralTarget> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("central.url {url:?} has no scheme (expected sqlite://, postgres://, mysql://, mssql://, oracle:// or https://)");
    };
    Ok(match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            if rest.is_empty() {
                bail!("central.url {url:?} names no SQLite file");
            }
            let p = PathBuf::from(rest);
            CentralTarget::Sqlite(if p.is_absolute() { p } else { base_dir.join(p) })
        }
        "postgres" | "postgresql" => CentralTarget::Postgres(url.to_string()),
        "mysql" | "mariadb" => CentralTarget::Mysql(url.to_string()),
        "mssql" | "sqlserver" => CentralTarget::Mssql(url.to_string()),
        "oracle" => CentralTarget::Oracle(url.to_string()),
        "https" => CentralTarget::Hub(url.to_string()),
        other => CentralTarget::Unsupported(other.to_string()),
    })
}

/// Connect to the central database the config names.
pub async fn connect(cfg: &CentralConfig, base_dir: &Path) -> Result<Arc<dyn Central>> {
    match parse_target(&cfg.url, base_dir)? {
        CentralTarget::Sqlite(path) => {
            let central = edgesync_sqlite::SqliteCentral::open(&path)
                .await
                .with_context(|| format!("central SQLite file {}", path.display()))?;
            Ok(Arc::new(central))
        }
        CentralTarget::Postgres(url) => connect_postgres(&url, cfg).await,
        CentralTarget::Mysql(url) => connect_mysql(&url, cfg).await,
        CentralTarget::Mssql(url) => connect_mssql(&url, cfg).await,
        CentralTarget::Oracle(url) => connect_oracle(&url, cfg).await,
        CentralTarget::Hub(url) => {
            let Some(token) = cfg.token()? else {
                bail!("central.token_env: a hub URL (https://) needs this node's token: set token_env or token_file");
            };
            let hub = crate::hub::client::HubCentral::connect(&url, &token, cfg.ca.as_deref())?;
            Ok(Arc::new(hub))
        }
        CentralTarget::Unsupported(scheme) => bail!(
            "central.url: edgesync has no {scheme}:// backend (known: sqlite://, postgres://, mysql://, mssql://, oracle://, https://)"
        ),
    }
}

#[cfg(feature = "postgres")]
async fn connect_postgres(url: &str, cfg: &CentralConfig) -> Result<Arc<dyn Central>> {
    let password = cfg.password()?;
    let central = edgesync_postgres::PgCentral::connect(url, password.as_deref()).await?;
    Ok(Arc::new(central))
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(_url: &str, _cfg: &CentralConfig) -> Result<Arc<dyn Central>> {
    bail!("central.url: this edgesync was built without the `postgres` feature")
}

#[cfg(feature = "mysql")]
async fn connect_mysql(url: &str, cfg: &CentralConfig) -> Result<Arc<dyn Central>> {
    let password = cfg.password()?;
    // mysql_async only knows the mysql:// scheme; mariadb:// is an alias.
    let url = match url.split_once("://") {
        Some((_, rest)) => format!("mysql://{rest}"),
        None => url.to_string(),
    };
    let central = edgesync_mysql::MysqlCentral::connect(&url, password.as_deref()).await?;
    Ok(Arc::new(central))
}

#[cfg(not(feature = "mysql"))]
async fn connect_mysql(_url: &str, _cfg: &CentralConfig) -> Result<Arc<dyn Central>> {
    bail!("central.url: this edgesync was built without the `mysql` feature")
}

#[cfg(feature = "mssql")]
async fn connect_mssql(url: &str, cfg: &CentralConfig) -> Result<Arc<dyn Central>> {
    let password = cfg.password()?;
    let central = edgesync_mssql::MssqlCentral::connect(url, password.as_deref()).await?;
    Ok(Arc::new(central))
}

#[cfg(not(feature = "mssql"))]
async fn connect_mssql(_url: &str, _cfg: &CentralConfig) -> Result<Arc<dyn Central>> {
    bail!("central.url: this edgesync was built without the `mssql` feature")
}

/// Oracle needs Oracle Instant Client (`libclntsh.so`) on this machine at
/// run time; without it the adapter answers with one error saying what to
/// install and where, and every other backend keeps working.
#[cfg(feature = "oracle")]
async fn connect_oracle(url: &str, cfg: &CentralConfig) -> Result<Arc<dyn Central>> {
    let password = cfg.password()?;
    let central = edgesync_oracle::OracleCentral::connect(url, password.as_deref()).await?;
    Ok(Arc::new(central))
}

#[cfg(not(feature = "oracle"))]
async fn connect_oracle(_url: &str, _cfg: &CentralConfig) -> Result<Arc<dyn Central>> {
    bail!("central.url: this edgesync was built without the `oracle` feature")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_the_scheme() {
        let base = Path::new("/etc/edgesync");
        assert_eq!(
            parse_target("sqlite://central.db", base).expect("sqlite"),
            CentralTarget::Sqlite(PathBuf::from("/etc/edgesync/central.db"))
        );
        assert_eq!(
            parse_target("sqlite:///var/lib/c.db", base).expect("abs"),
            CentralTarget::Sqlite(PathBuf::from("/var/lib/c.db"))
        );
        assert!(matches!(
            parse_target("postgresql://u@h/db", base).expect("pg"),
            CentralTarget::Postgres(_)
        ));
        assert!(matches!(
            parse_target("mysql://root@127.0.0.1:3306/test", base).expect("mysql"),
            CentralTarget::Mysql(_)
        ));
        assert!(parse_target("central.db", base).is_err());
        assert!(matches!(
            parse_target("oracle://x", base).expect("ora"),
            CentralTarget::Oracle(_)
        ));
        assert!(matches!(
            parse_target("mssql://sa@h/db", base).expect("mssql"),
            CentralTarget::Mssql(_)
        ));
        assert!(matches!(
            parse_target("sqlserver://sa@h/db", base).expect("sqlserver"),
            CentralTarget::Mssql(_)
        ));
        assert!(matches!(
            parse_target("db2://x", base).expect("db2"),
            CentralTarget::Unsupported(s) if s == "db2"
        ));
    }

    #[cfg(any(feature = "oracle", feature = "mssql"))]
    fn central(url: &str) -> CentralConfig {
        CentralConfig {
            url: url.into(),
            password_env: None,
            password_file: None,
            token_env: None,
            token_file: None,
            ca: None,
        }
    }

    /// On a machine without Oracle Instant Client (this one, CI), an Oracle
    /// central fails with one error saying what to install and where, and
    /// the other backends keep working in the same process.
    #[cfg(feature = "oracle")]
    #[tokio::test]
    async fn oracle_without_instant_client_says_what_to_install() {
        let base = Path::new("/tmp");
        let mut cfg = central("oracle://sync:secret@127.0.0.1:1/FREEPDB1");
        let err = match connect(&cfg, base).await {
            Ok(_) => panic!("connected to an Oracle on port 1"),
            Err(e) => format!("{e:#}"),
        };
        println!("{err}");
        if edgesync_oracle::client_available() {
            // A machine with Instant Client: nothing listens on port 1.
            assert!(err.contains("cannot reach Oracle"), "{err}");
        } else {
            assert!(
                err.contains("Oracle Instant Client (libclntsh.so) not found"),
                "{err}"
            );
            assert!(err.contains("LD_LIBRARY_PATH"), "{err}");
            assert_eq!(
                err.matches("Instant Client (libclntsh.so)").count(),
                1,
                "{err}"
            );
        }
        assert!(!err.contains("secret"), "{err}");
        // Every other backend still works.
        let dir = tempfile::tempdir().expect("tempdir");
        cfg.url = format!("sqlite://{}", dir.path().join("central.db").display());
        let sqlite = connect(&cfg, base).await.expect("sqlite central");
        sqlite.ping().await.expect("ping sqlite");
    }

    #[cfg(feature = "mssql")]
    #[tokio::test]
    async fn mssql_urls_are_checked_before_connecting() {
        let base = Path::new("/tmp");
        let err = match connect(&central("mssql://sa@h/db?encrypt=maybe"), base).await {
            Ok(_) => panic!("accepted a bad URL"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("encrypt=maybe"), "{err}");
    }
}
