//! Reading local changes for a push, and recording the central's answer.
//!
//! Exactly-once hinges on the order of things here: the batch's `hi` is the
//! highest sequence *read*, the central stores it with the data, and only
//! after the central's answer is recorded (in one transaction) does the push
//! watermark move to `hi`. A crash anywhere in between re-sends the batch,
//! which the central recognises as a replay.

use edgesync_core::change::PushResult;
use edgesync_core::{Change, Error, PushBatch, PushOutcome, Result, TableMapping};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection};

use super::{begin_apply, end_apply, push_wm, EdgeTable};
use crate::error::SqlResultExt;
use crate::sql;
use crate::types;

pub(super) fn read_changes(
    conn: &mut Connection,
    m: &TableMapping,
    limit: usize,
) -> Result<Option<PushBatch>> {
    let limit = limit.max(1);
    let t = EdgeTable::new(m);
    // One read transaction: the watermark, rows and tombstones come from the
    // same snapshot.
    let tx = conn.transaction().db()?;
    let wm = push_wm(&tx, &m.edge)?;
    let n = m.columns.len();
    let mut changes: Vec<Change> = Vec::new();
    {
        let reader = t.reader();
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {}, es_ver, es_cver, es_deleted, es_hlc FROM {} \
                 WHERE es_ver > ?1 ORDER BY es_ver LIMIT ?2",
                t.cols, t.q
            ))
            .db_ctx(|| format!("reading changes of {}", m.edge))?;
        let mut rows = stmt.query(params![wm, limit as i64]).db()?;
        while let Some(r) = rows.next().db()? {
            let values = reader.read(r, 0)?;
            changes.push(Change {
                key: m.key_of(&values),
                values: Some(values),
                version: r.get(n).db()?,
                base: r.get(n + 1).db()?,
                deleted: r.get::<_, i64>(n + 2).db()? != 0,
                hlc: r.get(n + 3).db()?,
            });
        }
    }
    {
        let key_types = t.key_types();
        let mut stmt = tx
            .prepare_cached(
                "SELECT key, es_ver, es_cver, es_hlc FROM es_tombstones \
                 WHERE tbl = ?1 AND es_ver > ?2 ORDER BY es_ver LIMIT ?3",
            )
            .db()?;
        let mut rows = stmt.query(params![m.edge, wm, limit as i64]).db()?;
        while let Some(r) = rows.next().db()? {
            let json: String = r.get(0).db()?;
            let key = types::key_from_json(&json, &key_types)
                .map_err(|e| Error::value(format!("table {}: {e}", m.edge)))?;
            changes.push(Change {
                key,
                values: None,
                deleted: true,
                version: r.get(1).db()?,
                base: r.get(2).db()?,
                hlc: r.get(3).db()?,
            });
        }
    }
    tx.commit().db()?;
    changes.sort_by_key(|c| c.version);
    changes.truncate(limit);
    Ok(changes
        .last()
        .map(|last| last.version)
        .map(|hi| PushBatch { hi, changes }))
}

pub(super) fn ack_push(
    conn: &mut Connection,
    m: &TableMapping,
    batch: &PushBatch,
    result: &PushResult,
) -> Result<()> {
    if result.outcomes.len() != batch.changes.len() {
        return Err(Error::internal(format!(
            "table {}: {} push outcomes for {} changes",
            m.edge,
            result.outcomes.len(),
            batch.changes.len()
        )));
    }
    let t = EdgeTable::new(m);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    begin_apply(&tx)?;
    let mut max_hlc = i64::MIN;
    for (change, outcome) in batch.changes.iter().zip(&result.outcomes) {
        let key = t.bind_key(&change.key)?;
        match outcome {
            PushOutcome::Applied { version } => applied(&tx, &t, change, &key, *version, batch.hi)?,
            PushOutcome::Superseded { row } => {
                if let Some(r) = row {
                    max_hlc = max_hlc.max(r.hlc);
                }
                // Only if nothing wrote the row (or re-created the deleted
                // key) since the push read it; otherwise the newer local
                // write is pushed next and the policy decides again.
                let local = t.local(&tx, &key)?;
                let untouched = if change.values.is_some() {
                    local.is_some_and(|(ver, _)| ver == change.version)
                } else {
                    t.tombstone(&tx, &key)? == Some(change.version)
                };
                if untouched {
                    t.put(&tx, &change.key, row.as_ref(), local.is_some())?;
                }
            }
        }
    }
    tx.execute(
        "INSERT INTO es_state (tbl, push_wm, last_push_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (tbl) DO UPDATE SET push_wm = MAX(push_wm, excluded.push_wm), \
         last_push_at = excluded.last_push_at",
        params![m.edge, batch.hi, types::now_text()],
    )
    .db()?;
    tx.execute(
        "DELETE FROM es_tombstones WHERE tbl = ?1 AND es_ver <= ?2",
        params![m.edge, batch.hi],
    )
    .db()?;
    end_apply(&tx, max_hlc)?;
    tx.commit().db()
}

/// The central holds this write at `version`: that is the key's new
/// conflict base, for the row, and for a delete or key change of it made
/// while the push was in flight (its tombstone is still pending).
fn applied(
    conn: &Connection,
    t: &EdgeTable<'_>,
    change: &Change,
    key: &[SqlValue],
    version: i64,
    hi: i64,
) -> Result<()> {
    let base = (version != 0).then_some(version);
    let mut params = vec![super::table::opt_sql(base), SqlValue::Integer(hi)];
    params.extend(key.iter().cloned());
    if change.values.is_some() {
        conn.prepare_cached(&format!(
            "UPDATE {} SET es_cver = ?1 WHERE {}",
            t.q,
            sql::key_match_params(3, &t.key)
        ))
        .db()?
        .execute(params_from_iter(&params))
        .db()?;
    } else {
        // A hard delete: only a row re-inserted under this key since the
        // push was read is left to update.
        conn.prepare_cached(&format!(
            "UPDATE {} SET es_cver = ?1 WHERE es_ver > ?2 AND {}",
            t.q,
            sql::key_match_params(3, &t.key)
        ))
        .db()?
        .execute(params_from_iter(&params))
        .db()?;
    }
    params.push(SqlValue::Text(t.m.edge.clone()));
    let tbl = params.len();
    conn.prepare_cached(&format!(
        "UPDATE es_tombstones SET es_cver = ?1 WHERE tbl = ?{tbl} AND es_ver > ?2 AND key = {}",
        sql::key_json(None, 3, &t.key)
    ))
    .db()?
    .execute(params_from_iter(&params))
    .db()?;
    Ok(())
}
