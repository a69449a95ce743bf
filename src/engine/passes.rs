//! Pushing and pulling an edge's tables so foreign keys hold on both sides,
//! without ever disabling a constraint.
//!
//! Tables go parents first ([`super::order::parents_first`]). Within a
//! table, each batch or page is one transaction on the receiving side, with
//! the constraints deferred to its commit where the database can (SQLite
//! edges and central: `defer_foreign_keys`; PostgreSQL: `SET CONSTRAINTS
//! ALL DEFERRED` for DEFERRABLE constraints), so a self-referencing table's
//! rows may come in any order within it.
//!
//! What the order cannot settle — a parent delete pushed before its
//! children's deletes, a child whose parent row was updated (so sent later)
//! after the child was written — is refused by the receiver as a constraint
//! error. A refusal is first taken for what it usually is, an ordering
//! problem: the table waits (its refused change stays pending; for a push,
//! the longest accepted prefix of the batch still goes through) and the
//! other tables go on; then the waiting tables are tried again, for as long
//! as any table moves. Only when a whole round moves nothing is a refusal
//! real: on push, the first waiting table's refused change is quarantined
//! (as a poison row always was) and the rounds go on; on pull, the waiting
//! tables record the error and are retried next cycle.

use anyhow::{Context, Result};
use edgesync_core::{ErrorKind, TableMapping};
use tracing::debug;

use super::sync::{push_pending, TableStats};
use super::{Edge, Engine};

/// How many rounds at most, whatever happens (each round moves a batch or
/// quarantines a change, so this is only a backstop against a bug).
const MAX_ROUNDS: usize = 10_000;

/// The edge's tables in sync order (indices into `edge.tables`): parents
/// first by the foreign keys the edge file declares; config order if they
/// cannot be read.
pub async fn table_order(edge: &Edge) -> Vec<usize> {
    let names: Vec<String> = edge.tables.iter().map(|t| t.edge.clone()).collect();
    let refs = match edge.db.references(&names).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(
                node = %edge.config.node,
                "cannot read foreign keys from the edge file, syncing tables in config order: {e}"
            );
            Vec::new()
        }
    };
    super::order::parents_first(&names, &refs)
}

/// Push every table of `edge` that pushes, in `order` (see the module doc).
/// Errors are recorded in `stats` (parallel to `edge.tables`).
pub async fn push_all(engine: &Engine, edge: &Edge, order: &[usize], stats: &mut [TableStats]) {
    let node = edge.config.node.as_str();
    let mut pending: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| edge.tables[i].direction.pushes())
        .collect();
    for _ in 0..MAX_ROUNDS {
        let mut waiting = Vec::new();
        let mut moved = false;
        for &i in &pending {
            let before = progress(&stats[i]);
            let mut quarantine = 0;
            match push_one(
                engine,
                edge,
                &edge.tables[i],
                &mut quarantine,
                &mut stats[i],
            )
            .await
            {
                Ok(None) => {}
                Ok(Some(why)) => {
                    debug!(node, table = %edge.tables[i].edge, "push waits for other tables: {why}");
                    waiting.push(i);
                }
                Err(e) => stats[i].error = Some(format!("push: {e:#}")),
            }
            moved |= progress(&stats[i]) != before;
        }
        let Some(&first) = waiting.first() else {
            return;
        };
        if !moved {
            // Nothing moved: not an ordering problem. The first waiting
            // table quarantines its refused change, as a poison row.
            let mut quarantine = 1;
            if let Err(e) = push_one(
                engine,
                edge,
                &edge.tables[first],
                &mut quarantine,
                &mut stats[first],
            )
            .await
            {
                stats[first].error = Some(format!("push: {e:#}"));
                waiting.remove(0);
            }
        }
        pending = waiting;
    }
}

async fn push_one(
    engine: &Engine,
    edge: &Edge,
    table: &TableMapping,
    quarantine: &mut usize,
    stats: &mut TableStats,
) -> Result<Option<String>> {
    push_pending(
        engine.central.as_ref(),
        &edge.db,
        &edge.config.node,
        table,
        engine.config.sync.batch_rows,
        quarantine,
        stats,
    )
    .await
}

/// Pull every table of `edge` that pulls and has no error yet, in `order`
/// (see the module doc). Errors are recorded in `stats`.
pub async fn pull_all(engine: &Engine, edge: &Edge, order: &[usize], stats: &mut [TableStats]) {
    let node = edge.config.node.as_str();
    let mut pending: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| edge.tables[i].direction.pulls() && stats[i].error.is_none())
        .collect();
    for _ in 0..MAX_ROUNDS {
        let mut waiting = Vec::new();
        let mut moved = false;
        for &i in &pending {
            let before = stats[i].pull_pages;
            let pulled = super::resnapshot::pull(
                engine.central.as_ref(),
                &edge.db,
                node,
                &edge.tables[i],
                engine.config.sync.page_rows,
                &mut stats[i],
            )
            .await;
            moved |= stats[i].pull_pages != before;
            match pulled {
                Ok(()) => {}
                Err(e) if is_constraint(&e) => {
                    debug!(node, table = %edge.tables[i].edge, "pull waits for other tables: {e:#}");
                    waiting.push((i, e));
                }
                Err(e) => stats[i].error = Some(format!("pull: {e:#}")),
            }
        }
        if waiting.is_empty() {
            return;
        }
        if !moved {
            // Each waiting page needs another's (a parent replaced while its
            // children move over): apply the next page of every waiting
            // table together, in one edge transaction.
            let tables: Vec<usize> = waiting.iter().map(|(i, _)| *i).collect();
            match pull_together(engine, edge, &tables, stats).await {
                Ok(()) if tables.len() > 1 => {
                    pending = tables;
                    continue;
                }
                Ok(()) => {}
                Err(e) => debug!(node, "pulling the waiting tables together failed: {e:#}"),
            }
            for (i, e) in waiting {
                stats[i].error = Some(format!("pull: {e:#}"));
            }
            return;
        }
        pending = waiting.into_iter().map(|(i, _)| i).collect();
    }
}

/// The next page of each of `tables`, applied in one edge transaction.
/// Nothing is done for a single table (its page alone was just refused).
async fn pull_together(
    engine: &Engine,
    edge: &Edge,
    tables: &[usize],
    stats: &mut [TableStats],
) -> Result<()> {
    if tables.len() < 2 {
        return Ok(());
    }
    let node = edge.config.node.as_str();
    let mut pages = Vec::with_capacity(tables.len());
    for &i in tables {
        let table = &edge.tables[i];
        let token = edge.db.pull_token(table).await?;
        let page = engine
            .central
            .pull(node, table, token.as_deref(), engine.config.sync.page_rows)
            .await
            .with_context(|| format!("pulling table {}", table.edge))?;
        pages.push((table.clone(), page));
    }
    let applied = edge.db.apply_pulls(&pages).await?;
    for (&i, a) in tables.iter().zip(&applied) {
        stats[i].pulled += a.applied;
        stats[i].pull_pages += 1;
    }
    Ok(())
}

/// What a push has done so far (moved or set aside).
fn progress(s: &TableStats) -> (usize, usize) {
    (s.push_batches, s.quarantined)
}

/// Was this refused for a constraint (possibly only the order)?
fn is_constraint(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<edgesync_core::Error>())
        .any(|c| c.kind() == ErrorKind::Constraint)
}
