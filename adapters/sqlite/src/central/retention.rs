//! Retention on a SQLite central (`sync.retention`): what a pull records
//! about the node, and the purge that relies on it.
//!
//! Every pull notes, in `es_pulls`, where the node's position stands (the
//! token's version: everything at or below it is on the edge) and when.
//! The purge then removes tombstones older than the retention, but never
//! one above the lowest position of the nodes still active (pulled or
//! pushed within the retention), so an active node that is behind keeps
//! getting its deletes; nodes gone longer do not hold the purge back. The
//! highest version purged is kept per table in `es_purged`: a pull
//! continuing from below it may have missed a delete, and is answered with
//! an `ErrorKind::Resnapshot` error so the edge loads the table afresh.

use std::time::Duration;

use edgesync_core::central::Purged;
use edgesync_core::{hlc, Error, ErrorKind, Result, TableMapping};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::SqlResultExt;
use crate::types;

/// A pull token: the version delivered up to, and whether the pass is a
/// full one (begun without a token: an initial load or a re-snapshot) that
/// has not ended yet.
pub(super) fn token(ver: i64, full: bool) -> String {
    if full {
        serde_json::json!({ "v": ver, "full": true }).to_string()
    } else {
        serde_json::json!({ "v": ver }).to_string()
    }
}

/// Does `token` continue a full pass (or start one)?
pub(super) fn full_pass(token: Option<&str>) -> bool {
    token.is_none_or(|t| {
        serde_json::from_str::<serde_json::Value>(t)
            .ok()
            .and_then(|v| v.get("full").and_then(serde_json::Value::as_bool))
            .unwrap_or(false)
    })
}

/// Before a pull of `tbl` by `node` from version `from`: refuse a position
/// the purge has passed — unless the pull is part of a full pass, which
/// needs no tombstones — and record where the node stands (a full pass
/// stands at 0: it has not seen the deletes of rows it has not reached).
/// A central provisioned before retention existed has no `es_pulls`: then
/// there is nothing to check or record (re-run init-sync to add it).
pub(super) fn admit(conn: &Connection, node: &str, tbl: &str, from: i64, full: bool) -> Result<()> {
    if !crate::schema::exists(conn, "table", "es_pulls")? {
        return Ok(());
    }
    if !full {
        let purged: Option<i64> = conn
            .prepare_cached("SELECT ver FROM es_purged WHERE tbl = ?1")
            .db()?
            .query_row([tbl], |r| r.get(0))
            .optional()
            .db()?;
        if let Some(purged) = purged.filter(|&p| from < p) {
            return Err(Error::new(
                ErrorKind::Resnapshot,
                format!(
                    "node {node}, table {tbl}: the pull position (version {from}) is older than \
                     the central's retention (tombstones up to version {purged} were purged); \
                     the table must be loaded afresh"
                ),
            ));
        }
    }
    conn.prepare_cached(
        "INSERT INTO es_pulls (node, tbl, ver, at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (node, tbl) DO UPDATE SET ver = excluded.ver, at = excluded.at",
    )
    .db()?
    .execute(params![
        node,
        tbl,
        if full { 0 } else { from },
        types::now_text()
    ])
    .db_ctx(|| format!("recording the pull position of node {node}, table {tbl}"))?;
    Ok(())
}

/// The purge (see the module doc and `Central::purge`), in one transaction.
pub(super) fn purge(
    conn: &mut Connection,
    tables: &[TableMapping],
    older_than: Duration,
) -> Result<Purged> {
    if !crate::schema::exists(conn, "table", "es_pulls")? {
        return Err(Error::schema(
            "sync.retention: the central has no es_pulls table yet (run `edgesync init-sync`)",
        ));
    }
    let age = chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
    let Some(cutoff) = chrono::Utc::now().checked_sub_signed(age) else {
        return Ok(Purged::default());
    };
    // Stored times are `types::now_text()`, which sorts as text; tombstone
    // ages come from their HLC stamps.
    let cutoff_text = cutoff.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string();
    let cutoff_hlc = hlc::pack(cutoff.timestamp_millis(), 0);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    tx.execute_batch(
        "DROP TABLE IF EXISTS temp.es_active;
         CREATE TEMP TABLE es_active (node TEXT PRIMARY KEY);",
    )
    .db()?;
    tx.execute(
        "INSERT OR IGNORE INTO temp.es_active (node) \
         SELECT node FROM es_pulls WHERE at >= ?1 \
         UNION SELECT node FROM es_nodes WHERE last_push_at >= ?1",
        [&cutoff_text],
    )
    .db_ctx(|| "finding the active nodes")?;
    let mut out = Purged::default();
    for m in tables {
        let tbl = m.central.name.as_str();
        let low: Option<i64> = tx
            .query_row(
                "SELECT min(ver) FROM es_pulls WHERE tbl = ?1 \
                 AND node IN (SELECT node FROM temp.es_active)",
                [tbl],
                |r| r.get(0),
            )
            .db()?;
        let low = low.unwrap_or(i64::MAX);
        let top: Option<i64> = tx
            .query_row(
                "SELECT max(es_ver) FROM es_tombstones WHERE tbl = ?1 AND es_ver <= ?2 \
                 AND es_hlc < ?3",
                params![tbl, low, cutoff_hlc],
                |r| r.get(0),
            )
            .db()?;
        let Some(top) = top else { continue };
        let n = tx
            .execute(
                "DELETE FROM es_tombstones WHERE tbl = ?1 AND es_ver <= ?2 AND es_hlc < ?3",
                params![tbl, low, cutoff_hlc],
            )
            .db_ctx(|| format!("purging the tombstones of {tbl}"))?;
        tx.execute(
            "INSERT INTO es_purged (tbl, ver, at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (tbl) DO UPDATE SET ver = MAX(ver, excluded.ver), at = excluded.at",
            params![tbl, top, types::now_text()],
        )
        .db()?;
        out.tombstones += n as u64;
    }
    let gone = "node NOT IN (SELECT node FROM temp.es_active)";
    out.node_states += tx
        .execute(&format!("DELETE FROM es_pulls WHERE {gone}"), [])
        .db()? as u64;
    out.node_states += tx
        .execute(&format!("DELETE FROM es_nodes WHERE {gone}"), [])
        .db()? as u64;
    tx.execute_batch("DROP TABLE temp.es_active;").db()?;
    tx.commit().db()?;
    Ok(out)
}
