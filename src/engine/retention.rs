//! `sync.retention`: the central forgets tombstones and the state of nodes
//! long gone, from the sync cycle, at most once per [`PURGE_EVERY`].
//!
//! What may go is the adapter's to decide inside one transaction (see
//! `Central::purge`): never a tombstone an active node has not pulled yet.
//! A node away longer than the retention re-snapshots its tables when it
//! comes back (see [`super::resnapshot`]).

use std::time::Instant;

use anyhow::{Context, Result};
use edgesync_core::central::Purged;
use tracing::{info, warn};

use super::Engine;

/// How often a long-running engine purges.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Purge now (`sync.retention` must be set): every synced table.
pub async fn purge(engine: &Engine) -> Result<Purged> {
    let Some(retention) = engine.config.sync.retention else {
        anyhow::bail!("sync.retention is not set: nothing is ever purged");
    };
    let tables = engine.central_mappings();
    let purged = engine
        .central
        .purge(&tables, retention)
        .await
        .context("purging sync metadata older than sync.retention")?;
    if purged != Purged::default() {
        info!(
            tombstones = purged.tombstones,
            node_states = purged.node_states,
            "purged sync metadata older than sync.retention"
        );
    }
    Ok(purged)
}

/// Purge when `sync.retention` is set and the last purge by this engine is
/// older than [`PURGE_EVERY`] (or there was none). A failure is logged and
/// retried next time; it never fails the sync.
pub async fn purge_if_due(engine: &Engine) {
    if engine.config.sync.retention.is_none() {
        return;
    }
    {
        let Ok(mut last) = engine.last_retention_purge.lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < PURGE_EVERY) {
            return;
        }
        *last = Some(Instant::now());
    }
    if let Err(e) = purge(engine).await {
        warn!("{e:#}");
    }
}
