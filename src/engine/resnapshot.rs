//! Pulling a table whose node has been away longer than the central's
//! retention (`sync.retention`).
//!
//! The central answers such a pull with an `ErrorKind::Resnapshot` error:
//! deletes the node never saw were purged, so continuing from its position
//! could leave rows on the edge that the central no longer has. The table
//! is then loaded afresh ([`EdgeDb::begin_resnapshot`]): a full pull pass,
//! page by page, each committed with its token, and the rows the central
//! did not deliver removed when the pass ends. Local writes are not lost:
//! the push before the pull has already sent them (the cycle pulls a table
//! only after its push succeeded), and any written since stay dirty and are
//! neither overwritten nor removed. The re-snapshot is recorded in the edge
//! file, so one interrupted by a crash or a network cut resumes on the next
//! sync, and `status` shows how many there were and when.

use anyhow::{Context, Result};
use edgesync_core::{Central, ErrorKind, TableMapping};
use edgesync_sqlite::EdgeDb;
use tracing::{info, warn};

use super::sync::{pull_table, TableStats};

/// Pull one table: a normal pass, or a re-snapshot when the central asks
/// for one or one is under way.
pub async fn pull(
    central: &dyn Central,
    db: &EdgeDb,
    node: &str,
    table: &TableMapping,
    page_rows: usize,
    stats: &mut TableStats,
) -> Result<()> {
    if !db.resnapshots(&table.edge).await?.active {
        match pull_table(central, db, node, table, page_rows, stats).await {
            Err(e) if asks_resnapshot(&e) => {
                warn!(
                    node,
                    table = %table.edge,
                    "the central's retention has passed this node's pull position; \
                     taking a fresh snapshot of the table: {e:#}"
                );
                db.begin_resnapshot(table).await?;
            }
            done => return done,
        }
    }
    let mut token = db.pull_token(table).await?;
    loop {
        let page = central
            .pull(node, table, token.as_deref(), page_rows)
            .await
            .with_context(|| format!("re-snapshotting table {}", table.edge))?;
        let applied = db.apply_resnapshot(table, &page).await?;
        stats.pulled += applied.applied;
        stats.pull_pages += 1;
        if page.done {
            stats.resnapshots += 1;
            info!(node, table = %table.edge, "fresh snapshot of the table taken");
            return Ok(());
        }
        token = Some(page.token);
    }
}

/// Did the central refuse the pull position as older than its retention?
fn asks_resnapshot(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<edgesync_core::Error>())
        .any(|c| c.kind() == ErrorKind::Resnapshot)
}
