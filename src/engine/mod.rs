//! The sync engine: what `init-sync`, `sync`, `run` and `status` do, on top of
//! the adapters.
//!
//! The engine owns no SQL. It resolves the config against the databases
//! ([`mapping`]), asks adapters for provisioning plans ([`provision`]),
//! drives push and pull batches ([`sync`]) and serves the conflict log and
//! manual queue ([`conflicts`]), relying on the adapter contract in
//! `edgesync_core::central` for atomicity and exactly-once delivery.

pub mod conflicts;
pub mod evolve;
pub mod mapping;
pub mod order;
pub mod passes;
pub mod progress;
pub mod provision;
pub mod resnapshot;
pub mod retention;
pub mod scoped;
pub mod status;
pub mod sync;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use edgesync_core::{Central, TableMapping};
use edgesync_sqlite::EdgeDb;

use crate::config::{Config, EdgeConfig};

/// One `[[edge]]` entry, opened, with its tables resolved.
pub struct Edge {
    /// The config entry.
    pub config: EdgeConfig,
    /// The open edge file.
    pub db: EdgeDb,
    /// Resolved mappings for this edge, in config order.
    pub tables: Vec<TableMapping>,
}

/// Everything a command needs: the central connection and the edges.
pub struct Engine {
    /// The loaded configuration.
    pub config: Config,
    /// Directory of the config file (relative paths resolve against it).
    pub base_dir: PathBuf,
    /// The central database.
    pub central: Arc<dyn Central>,
    /// Central-side mappings.
    pub central_tables: Vec<mapping::CentralTable>,
    /// The selected edges.
    pub edges: Vec<Edge>,
    /// When this engine last purged the conflict log (see
    /// [`conflicts::purge_if_due`]).
    pub last_purge: std::sync::Mutex<Option<std::time::Instant>>,
    /// When this engine last ran the `sync.retention` purge (see
    /// [`retention::purge_if_due`]).
    pub last_retention_purge: std::sync::Mutex<Option<std::time::Instant>>,
}

/// Which edges and tables a command works on.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this `[[table]]` name.
    pub table: Option<String>,
    /// Only this node id.
    pub node: Option<String>,
}

impl Engine {
    /// Connect to the central, open every selected edge file and resolve the
    /// tables. Nothing is written anywhere.
    pub async fn open(config: Config, config_path: &Path, sel: &Selection) -> Result<Engine> {
        Self::open_inner(config, config_path, sel, true).await
    }

    /// Like [`Engine::open`] for `check-config`: edge files that do not exist
    /// yet are not created (their tables are checked when `init-sync` creates
    /// them), so nothing at all is written.
    pub async fn open_read_only(config: Config, config_path: &Path) -> Result<Engine> {
        Self::open_inner(config, config_path, &Selection::default(), false).await
    }

    async fn open_inner(
        config: Config,
        config_path: &Path,
        sel: &Selection,
        create_edges: bool,
    ) -> Result<Engine> {
        let base_dir = config_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        // Every edge directory must exist before anything is opened, so a
        // typo in the last [[edge]] does not leave the first one half set up.
        for (i, ec) in config.edges.iter().enumerate() {
            let path = edge_path(&base_dir, &ec.path);
            let dir = path.parent().unwrap_or(Path::new("."));
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if !dir.is_dir() {
                anyhow::bail!(
                    "edge[{i}] ({}): directory {} of edge file {} does not exist",
                    ec.node,
                    dir.display(),
                    path.display()
                );
            }
        }
        let central = crate::centrals::connect(&config.central, &base_dir).await?;
        // Spec: behind a hub, the hub's sync.toml is authoritative for the
        // tables; an edge config that lists none takes the hub's list.
        let mut config = config;
        if config.tables.is_empty() && config.central.is_hub() {
            config.tables = crate::hub::client::hub_table_configs(&config.central)
                .await
                .context("asking the hub which tables this node syncs")?;
        }
        let central_tables =
            mapping::resolve_central(&config, central.as_ref(), sel.table.as_deref()).await?;
        let mut edges = Vec::new();
        let mut matched = false;
        for ec in &config.edges {
            if sel.node.as_ref().is_some_and(|n| n != &ec.node) {
                continue;
            }
            matched = true;
            let path = edge_path(&base_dir, &ec.path);
            if !create_edges && !path.exists() {
                continue;
            }
            let db = EdgeDb::open(&path)
                .await
                .with_context(|| format!("edge {} ({})", ec.node, path.display()))?;
            let tables = mapping::resolve_edge(&db, &ec.node, &central_tables).await?;
            let mut cfg = ec.clone();
            cfg.path = path;
            edges.push(Edge {
                config: cfg,
                db,
                tables,
            });
        }
        if let Some(n) = &sel.node {
            if !matched {
                anyhow::bail!("--node {n}: no [[edge]] entry has that node id");
            }
        }
        // Each node's `filter` scope applies to every push and pull made
        // for it (see `scoped`).
        let central = scoped::wrap(central, &config, &edges)?;
        Ok(Engine {
            config,
            base_dir,
            central,
            central_tables,
            edges,
            last_purge: std::sync::Mutex::new(None),
            last_retention_purge: std::sync::Mutex::new(None),
        })
    }

    /// The central-side mappings (edge types as created by edgesync).
    pub fn central_mappings(&self) -> Vec<TableMapping> {
        self.central_tables
            .iter()
            .map(|t| t.mapping.clone())
            .collect()
    }
}

fn edge_path(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}
