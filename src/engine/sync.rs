//! One push-then-pull cycle, and the daemon loop around it.
//!
//! Push first, so that local writes meet the central's state inside the
//! central's transaction (where conflicts are decided), then pull. Each table
//! of each edge is synced on its own: an error is recorded for that table and
//! the others carry on; the cycle as a whole reports failure at the end.

use std::time::Duration;

use anyhow::{Context, Result};
use edgesync_core::{Central, ErrorKind, PullPage, PushBatch, TableMapping};
use edgesync_sqlite::EdgeDb;
use tracing::{info, warn};

use super::{Edge, Engine};

/// What one table's sync moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableStats {
    /// Node id.
    pub node: String,
    /// Edge table.
    pub table: String,
    /// Local changes the central accepted or answered.
    pub pushed: usize,
    /// Push batches sent.
    pub push_batches: usize,
    /// Conflicts the central detected in our pushes.
    pub conflicts: usize,
    /// Central changes written to the edge.
    pub pulled: usize,
    /// Pull pages fetched.
    pub pull_pages: usize,
    /// Local changes the central refused, set aside in the edge's
    /// quarantine so the rest keep flowing.
    pub quarantined: usize,
    /// Fresh snapshots taken because the central's retention had passed
    /// this node's pull position (see `engine/resnapshot.rs`).
    pub resnapshots: usize,
    /// The error that stopped this table, if any.
    pub error: Option<String>,
}

/// Push every pending local change of one table, batch by batch.
///
/// A batch the central refuses because of its *data* (a constraint the edge
/// does not have, a value out of the central's range) does not block the
/// table: the longest prefix the central accepts is pushed, found by halving,
/// and a single refused change is quarantined on the edge with the central's
/// error (`edgesync quarantine list`), so every later change keeps flowing.
/// Connection and other failures stop the table and are retried next cycle.
pub async fn push_table(
    central: &dyn Central,
    db: &EdgeDb,
    node: &str,
    table: &TableMapping,
    batch_rows: usize,
    stats: &mut TableStats,
) -> Result<()> {
    let mut quarantine = usize::MAX;
    push_pending(central, db, node, table, batch_rows, &mut quarantine, stats)
        .await
        .map(|_| ())
}

/// [`push_table`], quarantining at most `quarantine` refused changes (the
/// count left is written back). A change refused alone once the budget is
/// spent stays pending, and `Some(error)` says the table is blocked on it:
/// a refusal may be only an ordering problem (a child's parent not pushed
/// yet, a parent delete whose children are still there), which pushing the
/// other tables first resolves (see [`super::passes`]).
pub async fn push_pending(
    central: &dyn Central,
    db: &EdgeDb,
    node: &str,
    table: &TableMapping,
    batch_rows: usize,
    quarantine: &mut usize,
    stats: &mut TableStats,
) -> Result<Option<String>> {
    while let Some(batch) = db.read_changes(table, batch_rows).await? {
        match central.push(node, table, &batch).await {
            Ok(result) => acknowledge(db, table, &batch, &result, stats).await?,
            Err(e) if refuses_data(&e) => {
                if let Some(blocked) =
                    isolate(central, db, node, table, &batch, e, quarantine, stats).await?
                {
                    return Ok(Some(blocked));
                }
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "pushing {} changes of table {}",
                        batch.changes.len(),
                        table.edge
                    )
                })
            }
        }
    }
    Ok(None)
}

/// Errors caused by the rows themselves, which quarantine can route around.
fn refuses_data(e: &edgesync_core::Error) -> bool {
    matches!(e.kind(), ErrorKind::Constraint | ErrorKind::Value)
}

async fn acknowledge(
    db: &EdgeDb,
    table: &TableMapping,
    batch: &PushBatch,
    result: &edgesync_core::change::PushResult,
    stats: &mut TableStats,
) -> Result<()> {
    db.ack_push(table, batch, result).await?;
    stats.pushed += batch.changes.len();
    stats.push_batches += 1;
    stats.conflicts += result.conflicts;
    Ok(())
}

/// Make progress past a refused batch: push ever shorter prefixes until one
/// is accepted (and acknowledged), or quarantine the first change when it is
/// refused alone (while `quarantine` allows; the count is spent). Either way
/// the watermark moves, so the caller's loop goes on with the rest;
/// otherwise the change stays pending and its error is returned.
#[allow(clippy::too_many_arguments)]
async fn isolate(
    central: &dyn Central,
    db: &EdgeDb,
    node: &str,
    table: &TableMapping,
    batch: &PushBatch,
    mut error: edgesync_core::Error,
    quarantine: &mut usize,
    stats: &mut TableStats,
) -> Result<Option<String>> {
    let mut n = batch.changes.len();
    while n > 1 {
        n = n.div_ceil(2);
        let prefix = batch.prefix(n);
        match central.push(node, table, &prefix).await {
            Ok(result) => {
                acknowledge(db, table, &prefix, &result, stats).await?;
                return Ok(None);
            }
            Err(e) if refuses_data(&e) => error = e,
            Err(e) => {
                return Err(e).with_context(|| format!("pushing table {}", table.edge));
            }
        }
    }
    let Some(change) = batch.changes.first() else {
        return Ok(None);
    };
    let message = format!("{error:#}");
    if *quarantine == 0 {
        return Ok(Some(message));
    }
    *quarantine -= 1;
    warn!(
        table = %table.edge,
        key = %table.describe_key(&change.key),
        "the central refused a change; quarantined so the rest can flow: {message}"
    );
    db.quarantine(table, change, &message).await?;
    stats.quarantined += 1;
    Ok(None)
}

/// How many pages the central may be read ahead of the edge's apply.
///
/// One is not enough: while the edge commits a page (an fsync), the reader
/// has usually finished the next one and both the reader and the central
/// would sit idle (a quarter of both cores in an initial load, measured with
/// `perf record -a`); with two, the reader keeps going through the commit.
const READ_AHEAD: usize = 2;

/// Pull one complete pass of central changes for one table, page by page;
/// each page commits on the edge with its resume token.
///
/// The central is read ahead of the edge's apply, by up to [`READ_AHEAD`]
/// pages: the next page's token is known as soon as a page arrives, and the
/// two sides run on different databases (and threads), so a large pull
/// takes about as long as the slower side rather than the sum of both. At
/// most `READ_AHEAD + 2` pages are in memory (one applied, the read-ahead,
/// one being read). Every page still commits with its own token, in order;
/// if an apply fails, the pages read ahead are dropped and the next pass
/// resumes from the last committed token. If a read fails, the pages read
/// before it are applied first, so their progress is kept.
pub async fn pull_table(
    central: &dyn Central,
    db: &EdgeDb,
    node: &str,
    table: &TableMapping,
    page_rows: usize,
    stats: &mut TableStats,
) -> Result<()> {
    let token = db.pull_token(table).await?;
    let progress = super::progress::Pull::start(central, node, table, token.is_none()).await;
    let (pages, mut arrived) = tokio::sync::mpsc::channel::<Result<PullPage>>(READ_AHEAD);
    let read = async move {
        let mut token = token;
        loop {
            let page = central
                .pull(node, table, token.as_deref(), page_rows)
                .await
                .with_context(|| format!("pulling table {}", table.edge));
            let last = match &page {
                Ok(p) => {
                    token = Some(p.token.clone());
                    p.done
                }
                Err(_) => true,
            };
            // A closed channel: the apply stopped on an error.
            if pages.send(page).await.is_err() || last {
                return;
            }
        }
    };
    let apply = async move {
        while let Some(page) = arrived.recv().await {
            let applied = db.apply_pull_owned(table, page?).await?;
            stats.pulled += applied.applied;
            stats.pull_pages += 1;
            progress.advance(applied.applied);
        }
        // Dropping `arrived` on an error, above, ends the reader at its
        // next page.
        Ok(())
    };
    let ((), applied) = tokio::join!(read, apply);
    applied
}

/// Sync one edge: push all its tables, then pull all of them.
pub async fn sync_edge(engine: &Engine, edge: &Edge) -> Vec<TableStats> {
    let node = edge.config.node.as_str();
    // Schema evolution: each table syncs with the mapping the central's
    // table calls for now; tables paused by a breaking change sit out.
    let evolving = super::evolve::prepare(engine, edge).await;
    let edge = &evolving.edge;
    let mut all: Vec<TableStats> = edge
        .tables
        .iter()
        .map(|t| TableStats {
            node: node.to_string(),
            table: t.edge.clone(),
            ..TableStats::default()
        })
        .collect();
    // What applications asked for in the edge file: sync requests pending
    // now are served by this sync; conflict choices are settled before the
    // push, so a kept local version is pulled back below.
    let requests = edge.db.open_requests().await.unwrap_or_else(|e| {
        warn!(node, "cannot read sync requests from the edge file: {e}");
        Vec::new()
    });
    let names: Vec<String> = edge.tables.iter().map(|t| t.edge.clone()).collect();
    if let Err(e) = edge.db.mark_syncing(&names).await {
        warn!(node, "could not mark the sync in the edge file: {e}");
    }
    super::conflicts::apply_edge_choices(engine, edge).await;
    // Parents before children, both ways (see `passes`).
    let order = super::passes::table_order(edge).await;
    super::passes::push_all(engine, edge, &order, &mut all).await;
    super::passes::pull_all(engine, edge, &order, &mut all).await;
    if let Err(e) = super::conflicts::refresh_edge_conflicts(engine, edge).await {
        warn!(
            node,
            "could not copy open conflicts to the edge file: {e:#}"
        );
    }
    for (table, stats) in edge.tables.iter().zip(all.iter()) {
        let note = edge
            .db
            .finish_sync(&table.edge, stats.error.as_deref())
            .await;
        if let Err(e) = note {
            warn!(node, table = %table.edge, "could not record sync status in the edge file: {e}");
        }
        match &stats.error {
            Some(err) => warn!(node, table = %table.edge, "sync failed: {err}"),
            // An idle table is the common case every `interval`; keep the
            // journal for syncs that moved something.
            None if moved(stats) => info!(
                node,
                table = %table.edge,
                pushed = stats.pushed,
                pulled = stats.pulled,
                conflicts = stats.conflicts,
                quarantined = stats.quarantined,
                "synced"
            ),
            None => tracing::debug!(node, table = %table.edge, "synced, nothing to move"),
        }
    }
    super::evolve::finish(engine, &evolving, &mut all).await;
    let served = request_outcomes(engine, &requests, &all);
    if let Err(e) = edge.db.serve_requests(&served).await {
        warn!(
            node,
            "could not record served sync requests in the edge file: {e}"
        );
    }
    all
}

/// The outcome of each pending sync request this sync serves: `ok`, or
/// `error: T: ...` for each failed table it asked for. A request for a
/// table this sync did not include stays pending; one naming no synced
/// table is answered with that error.
fn request_outcomes(
    engine: &Engine,
    requests: &[(i64, Option<String>)],
    stats: &[TableStats],
) -> Vec<(i64, String)> {
    requests
        .iter()
        .filter_map(|(id, table)| {
            let relevant: Vec<&TableStats> = match table {
                None => stats.iter().collect(),
                Some(t) => {
                    let r: Vec<&TableStats> = stats
                        .iter()
                        .filter(|s| s.table.eq_ignore_ascii_case(t))
                        .collect();
                    if r.is_empty() {
                        if engine.config.table(t).is_none() {
                            return Some((*id, format!("error: no synced table named {t}")));
                        }
                        return None;
                    }
                    r
                }
            };
            let errors: Vec<String> = relevant
                .iter()
                .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.table)))
                .collect();
            let outcome = if errors.is_empty() {
                "ok".to_string()
            } else {
                format!("error: {}", errors.join("; "))
            };
            Some((*id, outcome))
        })
        .collect()
}

/// One cycle over every selected edge, then the conflict log's retention
/// (see [`super::conflicts::purge_if_due`]).
pub async fn sync_all(engine: &Engine) -> Vec<TableStats> {
    let mut out = Vec::new();
    for edge in &engine.edges {
        out.extend(sync_edge(engine, edge).await);
    }
    super::conflicts::purge_if_due(engine).await;
    super::retention::purge_if_due(engine).await;
    out
}

/// Did this table's sync move anything worth a log line?
fn moved(s: &TableStats) -> bool {
    s.pushed + s.pulled + s.conflicts + s.quarantined > 0
}

/// Capped exponential backoff with full jitter: attempt 0 waits about
/// `base`, doubling up to `cap`; jitter spreads many gateways reconnecting at
/// once after a central outage.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16));
    let ceiling = exp.min(cap);
    let jitter: f64 = rand::random::<f64>();
    ceiling.mul_f64(0.5 + jitter / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        for attempt in 0..40 {
            let d = backoff(attempt, base, cap);
            assert!(d <= cap, "attempt {attempt}: {d:?}");
            assert!(d >= base.mul_f64(0.5), "attempt {attempt}: {d:?}");
        }
        assert!(backoff(10, base, cap) >= Duration::from_secs(30));
    }
}
