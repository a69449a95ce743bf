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
        CentralTarget::Hub(url) => bail!(
            "central.url {url}: hub mode (edgesync serve) is not available in this version yet; connect to the central database directly"
        ),
        CentralTarget::Unsupported(scheme) => bail!(
            "central.url: the {scheme}:// backend is not built into this edgesync (supported here: sqlite://, postgres://)"
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
        assert!(parse_target("central.db", base).is_err());
        assert!(matches!(
            parse_target("oracle://x", base).expect("ora"),
            CentralTarget::Unsupported(s) if s == "oracle"
        ));
    }
}
