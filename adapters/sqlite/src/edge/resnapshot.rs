//! Re-snapshot: a table whose pull position the central no longer honours
//! (it purged tombstones the edge never saw, `sync.retention`) is loaded
//! again from scratch — resumably, and without losing local writes.
//!
//! [`begin`] drops the table's pull token (the next pass is a full load)
//! and marks the table as re-snapshotting in `es_resnapshot`; that mark,
//! not the engine's memory, is what makes an interrupted re-snapshot go on
//! where it stopped. Each page is applied like any pull page ([`apply`]:
//! local writes not pushed yet are skipped as dirty, exactly as in a normal
//! pull) and the keys it delivered are remembered in `es_resnapshot_keys`,
//! in the same transaction as the page and its token. The page that ends
//! the pass also removes the rows the central did not deliver — rows it
//! deleted while the edge was away, whose tombstones are gone — except rows
//! with local writes still pending, rows written on the edge since the
//! re-snapshot began (pushed during it or not: a pass need not deliver
//! them, and the node's own writes do not come back by later pulls), and
//! quarantined ones; then it forgets the keys and counts the re-snapshot
//! (`status`).

use edgesync_core::{PullPage, Result, TableMapping};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::{begin_apply, end_apply, push_wm, ApplyStats, EdgeTable};
use crate::error::SqlResultExt;
use crate::sql;
use crate::types;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS es_resnapshot (
  tbl     TEXT    PRIMARY KEY,
  active  INTEGER NOT NULL DEFAULT 0,
  count   INTEGER NOT NULL DEFAULT 0,
  last_at TEXT
);
CREATE TABLE IF NOT EXISTS es_resnapshot_keys (
  tbl TEXT NOT NULL,
  key TEXT NOT NULL,
  PRIMARY KEY (tbl, key)
) WITHOUT ROWID;";

/// A table's re-snapshot record, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resnapshots {
    /// Re-snapshots completed.
    pub count: i64,
    /// When the last one completed (UTC text).
    pub last_at: Option<String>,
    /// One is under way (it resumes on the next sync).
    pub active: bool,
}

/// The table's record (all zero when it never re-snapshotted).
pub(super) fn status(conn: &Connection, table: &str) -> Result<Resnapshots> {
    if !crate::schema::exists(conn, "table", "es_resnapshot")? {
        return Ok(Resnapshots::default());
    }
    Ok(conn
        .query_row(
            "SELECT count, last_at, active FROM es_resnapshot WHERE tbl = ?1",
            [table],
            |r| {
                Ok(Resnapshots {
                    count: r.get(0)?,
                    last_at: r.get(1)?,
                    active: r.get::<_, i64>(2)? != 0,
                })
            },
        )
        .optional()
        .db_ctx(|| format!("reading the re-snapshot state of {table}"))?
        .unwrap_or_default())
}

/// Start (or restart) a re-snapshot of `m`: full load from the next pull.
pub(super) fn begin(conn: &mut Connection, m: &TableMapping) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    tx.execute_batch(CREATE)
        .db_ctx(|| format!("creating the re-snapshot state of {}", m.edge))?;
    if !has_since(&tx)? {
        tx.execute_batch("ALTER TABLE es_resnapshot ADD COLUMN since INTEGER")
            .db_ctx(|| format!("upgrading the re-snapshot state of {}", m.edge))?;
    }
    tx.execute("DELETE FROM es_resnapshot_keys WHERE tbl = ?1", [&m.edge])
        .db()?;
    // `since`: the local write sequence now. A row written on the edge from
    // here on (pushed during the pass or not) is newer than anything the
    // pass must confirm, and the pass may not deliver it: a central pass
    // leaves out a row behind its cursor or above its top version, and the
    // node's own writes never come back to it by the incremental pull
    // after. `finish` keeps such rows.
    tx.execute(
        "INSERT INTO es_resnapshot (tbl, active, since) VALUES (?1, 1, (SELECT seq FROM es_ctl)) \
         ON CONFLICT (tbl) DO UPDATE SET active = 1, since = excluded.since",
        [&m.edge],
    )
    .db()?;
    tx.execute(
        "UPDATE es_state SET pull_token = NULL WHERE tbl = ?1",
        [&m.edge],
    )
    .db_ctx(|| format!("resetting the pull position of {}", m.edge))?;
    tx.commit().db()
}

/// Apply one page of a re-snapshot pass (see the module doc), in one
/// transaction with its token.
pub(super) fn apply(
    conn: &mut Connection,
    m: &TableMapping,
    page: &PullPage,
) -> Result<ApplyStats> {
    let t = EdgeTable::new(m);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    begin_apply(&tx)?;
    let (stats, max_hlc) = super::pull::apply_page(&tx, m, page)?;
    {
        let mut seen = tx
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO es_resnapshot_keys (tbl, key) VALUES (?1, {})",
                sql::key_json(None, 2, &t.key)
            ))
            .db_ctx(|| format!("recording the re-snapshot of {} (run init-sync?)", m.edge))?;
        for change in &page.changes {
            let mut p = vec![SqlValue::Text(m.edge.clone())];
            p.extend(t.bind_key(&change.key)?);
            seen.execute(params_from_iter(p)).db()?;
        }
    }
    if page.done {
        finish(&tx, &t)?;
    }
    end_apply(&tx, max_hlc)?;
    tx.commit().db()?;
    Ok(stats)
}

/// Does `es_resnapshot` have its `since` column (added after it first
/// shipped)?
fn has_since(conn: &Connection) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('es_resnapshot') WHERE name = 'since')",
        [],
        |r| r.get(0),
    )
    .db()
}

/// End of the pass: drop the rows the central no longer has (clean, not
/// quarantined, and not written on the edge since the re-snapshot began),
/// forget the keys, count the re-snapshot.
fn finish(tx: &Connection, t: &EdgeTable<'_>) -> Result<()> {
    let m = t.m;
    let mut wm = push_wm(tx, &m.edge)?;
    // A re-snapshot begun by an older edgesync has no `since`.
    if has_since(tx)? {
        let since: Option<i64> = tx
            .query_row(
                "SELECT since FROM es_resnapshot WHERE tbl = ?1",
                [&m.edge],
                |r| r.get(0),
            )
            .optional()
            .db()?
            .flatten();
        if let Some(since) = since {
            wm = wm.min(since);
        }
    }
    let row_key = sql::key_json(Some("r."), 0, &t.key);
    let quarantined = if super::quarantine::exists(tx)? {
        format!(
            " AND NOT EXISTS (SELECT 1 FROM es_quarantine q WHERE q.tbl = ?1 AND q.key = {row_key})"
        )
    } else {
        String::new()
    };
    tx.execute(
        &format!(
            "DELETE FROM {q} AS r WHERE r.es_ver <= ?2 \
             AND NOT EXISTS (SELECT 1 FROM es_resnapshot_keys k WHERE k.tbl = ?1 AND k.key = {row_key})\
             {quarantined}",
            q = t.q
        ),
        params![m.edge, wm],
    )
    .db_ctx(|| format!("removing rows the central no longer has from {}", m.edge))?;
    tx.execute("DELETE FROM es_resnapshot_keys WHERE tbl = ?1", [&m.edge])
        .db()?;
    tx.execute(
        "UPDATE es_resnapshot SET active = 0, count = count + 1, last_at = ?2 WHERE tbl = ?1",
        params![m.edge, types::now_text()],
    )
    .db()?;
    Ok(())
}
