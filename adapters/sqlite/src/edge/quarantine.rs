//! Poison rows: a local change the central refuses (a constraint it has and
//! the edge lacks, a value out of its range) is set aside here, with the
//! error, so the rest of its batch and every later batch keep flowing.
//!
//! SymmetricDS halts a whole channel on one failing batch; AMPLI-SYNC logs
//! and drops the row. Neither is acceptable: a quarantined change is never
//! dropped — it stays in `es_quarantine` (shown by `status`), the local row
//! keeps its values (pulls leave a quarantined key alone, like a dirty row),
//! and `edgesync quarantine retry` queues it again once the cause is fixed.

use edgesync_core::{Change, Result, TableMapping, Value};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection};

use super::{push_wm, EdgeTable};
use crate::error::SqlResultExt;
use crate::sql;
use crate::types;

/// One quarantined change, for `status` and `quarantine list`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantinedChange {
    /// Edge table.
    pub table: String,
    /// Key values, rendered.
    pub key: String,
    /// The local sequence of the refused change.
    pub seq: i64,
    /// Whether it was a delete.
    pub deleted: bool,
    /// The central's error.
    pub error: String,
    /// When it was set aside (UTC text).
    pub at: String,
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS es_quarantine (
  tbl     TEXT    NOT NULL,
  key     TEXT    NOT NULL,
  seq     INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  cver    INTEGER,
  error   TEXT    NOT NULL,
  at      TEXT    NOT NULL,
  PRIMARY KEY (tbl, key)
)";

/// Does the file have the quarantine table (an edge provisioned by an older
/// edgesync may not)?
pub(super) fn exists(conn: &Connection) -> Result<bool> {
    crate::schema::exists(conn, "table", "es_quarantine")
}

/// Is this key quarantined? (Pulls treat it like a dirty row.)
pub(super) fn contains(conn: &Connection, t: &EdgeTable<'_>, key: &[SqlValue]) -> Result<bool> {
    let mut params = vec![SqlValue::Text(t.m.edge.clone())];
    params.extend(key.iter().cloned());
    conn.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM es_quarantine WHERE tbl = ?1 AND key = {})",
        sql::key_json(None, 2, &t.key)
    ))
    .db()?
    .query_row(params_from_iter(params), |r| r.get(0))
    .db()
}

/// Set `change` aside with `error`, in one transaction: record it, drop its
/// pending tombstone (the record carries the delete), and move the push
/// watermark past it. `change` must be the first pending change of the
/// table (the engine isolates it by splitting batches), so nothing else is
/// skipped.
pub(super) fn quarantine(
    conn: &mut Connection,
    m: &TableMapping,
    change: &Change,
    error: &str,
) -> Result<()> {
    let t = EdgeTable::new(m);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    tx.execute(CREATE, []).db()?;
    let wm = push_wm(&tx, &m.edge)?;
    if change.version <= wm {
        return Ok(()); // already acknowledged or set aside
    }
    let key = t.bind_key(&change.key)?;
    let mut p = vec![
        SqlValue::Text(m.edge.clone()),
        SqlValue::Integer(change.version),
        SqlValue::Integer(i64::from(change.deleted)),
        super::table::opt_sql(change.base),
        SqlValue::Text(error.to_string()),
        SqlValue::Text(types::now_text()),
    ];
    p.extend(key.iter().cloned());
    tx.execute(
        &format!(
            "INSERT INTO es_quarantine (tbl, seq, deleted, cver, error, at, key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, {}) \
             ON CONFLICT (tbl, key) DO UPDATE SET seq = excluded.seq, \
             deleted = excluded.deleted, error = excluded.error, at = excluded.at",
            sql::key_json(None, 7, &t.key)
        ),
        params_from_iter(p),
    )
    .db()?;
    if change.values.is_none() {
        let mut p = vec![SqlValue::Text(m.edge.clone())];
        p.extend(key.iter().cloned());
        tx.execute(
            &format!(
                "DELETE FROM es_tombstones WHERE tbl = ?1 AND key = {}",
                sql::key_json(None, 2, &t.key)
            ),
            params_from_iter(p),
        )
        .db()?;
    }
    tx.execute(
        "INSERT INTO es_state (tbl, push_wm) VALUES (?1, ?2) \
         ON CONFLICT (tbl) DO UPDATE SET push_wm = MAX(push_wm, excluded.push_wm)",
        params![m.edge, change.version],
    )
    .db()?;
    tx.commit().db()
}

/// The quarantined changes of a table.
pub(super) fn list(conn: &Connection, m: &TableMapping) -> Result<Vec<QuarantinedChange>> {
    if !exists(conn)? {
        return Ok(Vec::new());
    }
    let t = EdgeTable::new(m);
    let mut st = conn
        .prepare_cached(
            "SELECT key, seq, deleted, error, at FROM es_quarantine WHERE tbl = ?1 ORDER BY seq",
        )
        .db()?;
    let rows = st
        .query_map([&m.edge], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (key_json, seq, deleted, error, at) = row.db()?;
        let key = types::key_from_json(&key_json, &t.key_types())
            .map(|k| m.describe_key(&k))
            .unwrap_or(key_json);
        out.push(QuarantinedChange {
            table: m.edge.clone(),
            key,
            seq,
            deleted,
            error,
            at,
        });
    }
    Ok(out)
}

/// How many changes of the table are quarantined.
pub(super) fn count(conn: &Connection, table: &str) -> Result<i64> {
    if !exists(conn)? {
        return Ok(0);
    }
    conn.prepare_cached("SELECT count(*) FROM es_quarantine WHERE tbl = ?1")
        .db()?
        .query_row([table], |r| r.get(0))
        .db()
}

/// Queue every quarantined change of the table again, in one transaction:
/// a row that still exists gets a fresh local sequence (with its original
/// conflict base, so the central judges it as it would have); a delete gets
/// its tombstone back. Returns how many were queued.
pub(super) fn requeue(conn: &mut Connection, m: &TableMapping) -> Result<usize> {
    let t = EdgeTable::new(m);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    if !exists(&tx)? {
        return Ok(0);
    }
    let parked: Vec<(String, bool, Option<i64>)> = {
        let mut st = tx
            .prepare("SELECT key, deleted, cver FROM es_quarantine WHERE tbl = ?1 ORDER BY seq")
            .db()?;
        let rows = st
            .query_map([&m.edge], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .db()?;
        rows.collect::<std::result::Result<_, _>>().db()?
    };
    super::begin_apply(&tx)?;
    for (key_json, _deleted, cver) in &parked {
        let key: Vec<Value> = types::key_from_json(key_json, &t.key_types()).map_err(|e| {
            edgesync_core::Error::new(
                edgesync_core::ErrorKind::Corrupt,
                format!("table {}: quarantined key {key_json}: {e}", m.edge),
            )
        })?;
        let bound = t.bind_key(&key)?;
        let seq: i64 = tx
            .query_row(
                "UPDATE es_ctl SET seq = seq + 1, \
                 hlc = MAX(((CAST(unixepoch('subsec') * 1000 AS INTEGER) + clock_skew_ms) << 16), hlc + 1) \
                 RETURNING seq",
                [],
                |r| r.get(0),
            )
            .db()?;
        let exists = t.local(&tx, &bound)?.is_some();
        if exists {
            let mut p = vec![SqlValue::Integer(seq)];
            p.extend(bound.iter().cloned());
            tx.execute(
                &format!(
                    "UPDATE {} SET es_ver = ?1, es_hlc = (SELECT hlc FROM es_ctl) WHERE {}",
                    t.q,
                    sql::key_match_params(2, &t.key)
                ),
                params_from_iter(p),
            )
            .db()?;
        } else {
            let mut p = vec![
                SqlValue::Text(m.edge.clone()),
                SqlValue::Integer(seq),
                super::table::opt_sql(*cver),
            ];
            p.extend(bound.iter().cloned());
            tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO es_tombstones (tbl, es_ver, es_hlc, es_cver, key) \
                     VALUES (?1, ?2, (SELECT hlc FROM es_ctl), ?3, {})",
                    sql::key_json(None, 4, &t.key)
                ),
                params_from_iter(p),
            )
            .db()?;
        }
    }
    tx.execute("DELETE FROM es_quarantine WHERE tbl = ?1", [&m.edge])
        .db()?;
    tx.execute("UPDATE es_ctl SET applying = 0", []).db()?;
    tx.commit().db()?;
    Ok(parked.len())
}
