//! Reading local changes for a push, and recording the central's answer.
//!
//! Exactly-once hinges on the order of things here: the batch's `hi` is the
//! highest sequence *read*, the central stores it with the data, and only
//! after the central's answer is recorded (in one transaction) does the push
//! watermark move to `hi`. A crash anywhere in between re-sends the batch,
//! which the central recognises as a replay.

use edgesync_core::change::PushResult;
use edgesync_core::{Change, ColType, Error, PushBatch, PushOutcome, Result, TableMapping, Value};
use rusqlite::{params, Connection};

use super::table::Writer;
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
    // One read transaction: the watermark, rows, tombstones and bases come
    // from the same snapshot.
    let tx = conn.transaction().db()?;
    let wm = push_wm(&tx, &m.edge)?;
    let n = m.columns.len();
    let col_types: Vec<ColType> = m.columns.iter().map(|c| c.edge_ty).collect();
    // Each change comes with its conflict base (es_base), when the row was
    // clean and synced before this local change. A file provisioned before
    // es_base existed has none.
    let with_bases = crate::schema::exists(&tx, "table", "es_base")?;
    let (base_cols, base_join, ts_base_join) = if with_bases {
        (
            "b.cver, b.row",
            format!(
                "LEFT JOIN es_base AS b ON b.tbl = ?3 AND b.key = {}",
                sql::key_json(Some("t."), 0, &t.key)
            ),
            "LEFT JOIN es_base AS b ON b.tbl = ts.tbl AND b.key = ts.key",
        )
    } else {
        ("NULL, NULL", String::new(), "")
    };
    let base_of = |cver: Option<i64>, row: Option<String>, change: &Change| {
        let (Some(cver), Some(row)) = (cver, row) else {
            return None;
        };
        if change.base != Some(cver) {
            return None;
        }
        match types::values_from_json(&row, &col_types, "conflict base") {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(table = %m.edge, "ignoring an unreadable conflict base: {e}");
                None
            }
        }
    };
    let mut changes: Vec<(Change, Option<Vec<Value>>)> = Vec::new();
    {
        let reader = t.reader();
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {}, t.es_ver, t.es_cver, t.es_deleted, t.es_hlc, {base_cols} \
                 FROM {} AS t {base_join} \
                 WHERE t.es_ver > ?1 ORDER BY t.es_ver LIMIT ?2",
                sql::column_list("t.", m.columns.iter().map(|c| c.edge.as_str())),
                t.q
            ))
            .db_ctx(|| format!("reading changes of {}", m.edge))?;
        let mut rows = if with_bases {
            stmt.query(params![wm, limit as i64, m.edge]).db()?
        } else {
            stmt.query(params![wm, limit as i64]).db()?
        };
        while let Some(r) = rows.next().db()? {
            let values = reader.read(r, 0)?;
            let change = Change {
                key: m.key_of(&values),
                values: Some(values),
                version: r.get(n).db()?,
                base: r.get(n + 1).db()?,
                deleted: r.get::<_, i64>(n + 2).db()? != 0,
                hlc: r.get(n + 3).db()?,
            };
            let base = base_of(r.get(n + 4).db()?, r.get(n + 5).db()?, &change);
            changes.push((change, base));
        }
    }
    {
        let key_types = t.key_types();
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT ts.key, ts.es_ver, ts.es_cver, ts.es_hlc, {base_cols} \
                 FROM es_tombstones AS ts {ts_base_join} \
                 WHERE ts.tbl = ?1 AND ts.es_ver > ?2 ORDER BY ts.es_ver LIMIT ?3"
            ))
            .db()?;
        let mut rows = stmt.query(params![m.edge, wm, limit as i64]).db()?;
        while let Some(r) = rows.next().db()? {
            let json: String = r.get(0).db()?;
            let key = types::key_from_json(&json, &key_types)
                .map_err(|e| Error::value(format!("table {}: {e}", m.edge)))?;
            let change = Change {
                key,
                values: None,
                deleted: true,
                version: r.get(1).db()?,
                base: r.get(2).db()?,
                hlc: r.get(3).db()?,
            };
            let base = base_of(r.get(4).db()?, r.get(5).db()?, &change);
            changes.push((change, base));
        }
    }
    tx.commit().db()?;
    changes.sort_by_key(|(c, _)| c.version);
    changes.truncate(limit);
    let Some(hi) = changes.last().map(|(c, _)| c.version) else {
        return Ok(None);
    };
    let (changes, bases): (Vec<Change>, Vec<Option<Vec<Value>>>) = changes.into_iter().unzip();
    // No base at all (e.g. a batch of inserts): an empty list says so.
    let bases = if bases.iter().all(Option::is_none) {
        Vec::new()
    } else {
        bases
    };
    Ok(Some(PushBatch {
        hi,
        changes,
        bases,
        fingerprint: Some(edgesync_core::change::schema_fingerprint(m)),
    }))
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
    let base_table = crate::schema::exists(&tx, "table", "es_base")?;
    let mut bases = t.has_bases(&tx)?;
    // Only a tombstone written while the push was in flight (above `hi`)
    // takes a new base; without any, no key needs looking up.
    let late_tombstones = t.has_tombstones_after(&tx, batch.hi)?;
    let mut max_hlc = i64::MIN;
    {
        let mut w = t.writer(&tx);
        for (change, outcome) in batch.changes.iter().zip(&result.outcomes) {
            let key = &change.key;
            match outcome {
                PushOutcome::Applied { version } => {
                    let again = applied(&mut w, change, *version, batch.hi, late_tombstones)?;
                    // The central holds the pushed row at `version`. Written
                    // again while the push was in flight, the row is still
                    // dirty, and those values are its new conflict base;
                    // otherwise it is clean and needs none.
                    match &change.values {
                        Some(values) if again && *version != 0 && base_table => {
                            let key_sql = t.bind_key(key)?;
                            t.set_base(&tx, key, &key_sql, *version, values)?;
                            bases = true;
                        }
                        _ if bases => w.drop_base(key)?,
                        _ => {}
                    }
                }
                PushOutcome::Superseded { row } => {
                    if let Some(r) = row {
                        max_hlc = max_hlc.max(r.hlc);
                    }
                    // Only if nothing wrote the row (or re-created the deleted
                    // key) since the push read it; otherwise the newer local
                    // write is pushed next and the policy decides again,
                    // against the base (es_cver and es_base) it still has.
                    let local = w.local(key)?;
                    let untouched = if change.values.is_some() {
                        local.is_some_and(|(ver, _)| ver == change.version)
                    } else {
                        w.tombstone(key)? == Some(change.version)
                    };
                    if untouched {
                        w.put(key, row.as_ref(), local.is_some())?;
                        if bases {
                            w.drop_base(key)?;
                        }
                    }
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
/// while the push was in flight (its tombstone is still pending; looked for
/// only when the table has such a tombstone). Returns whether the key was
/// written again since the push read it.
fn applied(
    w: &mut Writer<'_, '_>,
    change: &Change,
    version: i64,
    hi: i64,
    late_tombstones: bool,
) -> Result<bool> {
    let base = (version != 0).then_some(version);
    let mut again = if change.values.is_some() {
        w.set_cver(&change.key, base)?
            .is_some_and(|v| v != change.version)
    } else {
        // A hard delete: only a row re-inserted under this key since the
        // push was read is left to update.
        w.set_cver_reinserted(&change.key, base, hi)?
    };
    if late_tombstones {
        again |= w.set_tombstone_cver(&change.key, base, hi)?;
    }
    Ok(again)
}
