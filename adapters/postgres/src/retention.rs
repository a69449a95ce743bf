//! Retention on a PostgreSQL central (`sync.retention`): what a pull
//! records about the node, and the purge that relies on it — the same rules
//! as every central (see `Central::purge`), in PostgreSQL's terms.
//!
//! A pull position here is a snapshot (the token's `wm`): the node has
//! every change whose transaction that snapshot sees. Each pull records it
//! in `es_pulls` (NULL during a full pass, which has none). The purge
//! removes tombstones older than the retention (by their HLC stamp) whose
//! deleting transaction every node still active (pulled or pushed within
//! the retention) sees in its snapshot — visibility, not `xmin`, because
//! `xmin` is cluster-wide and any long transaction in another database
//! holds it back — and keeps the highest such transaction per table in
//! `es_purged`. A pull whose snapshot does not see it may have missed a
//! delete: it is refused with `ErrorKind::Resnapshot` (a full pass never
//! is).

use std::time::Duration;

use edgesync_core::central::Purged;
use edgesync_core::{hlc, Error, ErrorKind, Result, TableMapping};
use sqlx::PgPool;

use crate::error::ctx;
use crate::sql;

/// PostgreSQL's "undefined table": a central provisioned before retention.
const UNDEFINED_TABLE: &str = "42P01";

/// Before a pull of `table` by `node` from the previous pass's snapshot
/// `wm` (`None`: a full pass): refuse a position the purge has passed, and
/// record where the node stands (`record`: the pull already recorded this
/// position at its pass's first page, and a write transaction a page is not
/// free). Without `es_pulls` (provisioned by an older edgesync; re-run
/// init-sync) there is nothing to check or record.
pub(crate) async fn admit(
    pool: &PgPool,
    node: &str,
    table: &TableMapping,
    wm: Option<&str>,
    record: bool,
) -> Result<()> {
    // A full pass (no snapshot yet) is never refused; past its first page
    // there is nothing to record either, so no statement at all.
    if wm.is_none() && !record {
        return Ok(());
    }
    let q = &table.central;
    let tbl = sql::tbl_id(q);
    // The last purged delete, if the node's snapshot does not see it.
    let missed: std::result::Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT txid FROM {} WHERE tbl = $1 AND $2::text IS NOT NULL \
             AND NOT txid_visible_in_snapshot(txid, $2::txid_snapshot)",
            sql::meta(q, "es_purged")
        )))
        .bind(&tbl)
        .bind(wm)
        .fetch_optional(pool)
        .await;
    let missed = match missed {
        Ok(m) => m,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNDEFINED_TABLE) => {
            return Ok(())
        }
        Err(e) => return Err(ctx("reading the retention purge mark")(e)),
    };
    if let Some(purged) = missed {
        return Err(Error::new(
            ErrorKind::Resnapshot,
            format!(
                "node {node}, table {tbl}: the pull position is older than the central's \
                 retention (tombstones up to transaction {purged} were purged); the table must \
                 be loaded afresh"
            ),
        ));
    }
    if !record {
        return Ok(());
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {} (node, tbl, snap, at) VALUES ($1, $2, $3, now()) \
         ON CONFLICT (node, tbl) DO UPDATE SET snap = excluded.snap, at = excluded.at",
        sql::meta(q, "es_pulls")
    )))
    .bind(node)
    .bind(&tbl)
    .bind(wm)
    .execute(pool)
    .await
    .map_err(ctx(format!(
        "recording the pull position of node {node}, table {tbl}"
    )))?;
    Ok(())
}

/// The purge, in one transaction (see the module doc).
pub(crate) async fn purge(
    pool: &PgPool,
    tables: &[TableMapping],
    older_than: Duration,
) -> Result<Purged> {
    let secs = older_than.as_secs().min(i64::MAX as u64 / 1000) as i64;
    let cutoff_ms = chrono::Utc::now()
        .timestamp_millis()
        .saturating_sub(secs * 1000);
    let cutoff_hlc = hlc::pack(cutoff_ms.max(0), 0);
    let mut tx = pool
        .begin()
        .await
        .map_err(ctx("starting the retention purge"))?;
    let mut out = Purged::default();
    let mut schemas_done: Vec<String> = Vec::new();
    for m in tables {
        let q = &m.central;
        let tbl = sql::tbl_id(q);
        let (pulls, nodes, tombs, purged) = (
            sql::meta(q, "es_pulls"),
            sql::meta(q, "es_nodes"),
            sql::meta(q, "es_tombstones"),
            sql::meta(q, "es_purged"),
        );
        let active = format!(
            "SELECT node FROM {pulls} WHERE at >= now() - make_interval(secs => $1) \
             UNION SELECT node FROM {nodes} WHERE last_push_at >= now() - make_interval(secs => $1)"
        );
        // Tombstones every active node's snapshot sees (none while an
        // active node is in a full pass: its snapshot is NULL).
        let (n, top): (i64, Option<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH gone AS (DELETE FROM {tombs} t WHERE t.tbl = $2 AND t.es_hlc < $3 \
             AND NOT EXISTS (SELECT 1 FROM {pulls} p WHERE p.tbl = t.tbl \
               AND p.node IN ({active}) \
               AND (p.snap IS NULL \
                    OR NOT txid_visible_in_snapshot(t.es_txid, p.snap::txid_snapshot))) \
             RETURNING t.es_txid) SELECT count(*), max(es_txid) FROM gone"
        )))
        .bind(secs as f64)
        .bind(&tbl)
        .bind(cutoff_hlc)
        .fetch_one(&mut *tx)
        .await
        .map_err(ctx(format!(
            "purging the tombstones of {tbl} (run init-sync to add es_pulls)"
        )))?;
        out.tombstones += n as u64;
        if let Some(top) = top {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {purged} (tbl, txid, at) VALUES ($1, $2, now()) \
                 ON CONFLICT (tbl) DO UPDATE SET txid = greatest({purged}.txid, excluded.txid), \
                 at = excluded.at"
            )))
            .bind(&tbl)
            .bind(top)
            .execute(&mut *tx)
            .await
            .map_err(ctx("recording the purge mark"))?;
        }
        // Node states are per schema (the metadata lives next to the tables).
        if schemas_done.contains(&pulls) {
            continue;
        }
        schemas_done.push(pulls.clone());
        for meta in [&pulls, &nodes] {
            let gone = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {meta} WHERE node NOT IN ({active})"
            )))
            .bind(secs as f64)
            .execute(&mut *tx)
            .await
            .map_err(ctx("purging departed nodes' state"))?;
            out.node_states += gone.rows_affected();
        }
    }
    tx.commit()
        .await
        .map_err(ctx("committing the retention purge"))?;
    Ok(out)
}
