//! Applying an edge's push batch on the SQLite central: the algorithm of
//! "Push" in `docs/design.md`, in one `BEGIN IMMEDIATE` transaction.
//!
//! The node's `hi` (highest edge sequence applied) is read and rewritten in
//! the same transaction as the rows, so a batch re-sent after a lost answer
//! is recognised change by change and answered as before, never applied
//! twice. `BEGIN IMMEDIATE` takes SQLite's write lock up front, which is
//! what `SELECT ... FOR UPDATE` does on a server database.

use edgesync_core::change::PushResult;
use edgesync_core::conflict::{self, CentralRow, Decision, Resolution};
use edgesync_core::filter::Scope;
use edgesync_core::{
    Change, ConflictPolicy, DeleteMode, Error, PushBatch, PushOutcome, Result, TableMapping,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::CentralTable;
use crate::error::SqlResultExt;
use crate::sql;
use crate::types;

/// The central's state of a key: a row (possibly soft-deleted) or a
/// tombstone.
struct Current {
    row: CentralRow,
    oseq: Option<i64>,
    tombstone: bool,
}

pub(super) fn push(
    conn: &mut Connection,
    node: &str,
    m: &TableMapping,
    scope: Option<&Scope>,
    batch: &PushBatch,
) -> Result<PushResult> {
    let t = CentralTable::new(m);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    tx.execute_batch("PRAGMA defer_foreign_keys = ON; UPDATE es_ctl SET applying = 1;")
        .db_ctx(|| "starting a push (is the central provisioned?)")?;
    let hi: i64 = tx
        .query_row(
            "SELECT hi FROM es_nodes WHERE node = ?1 AND tbl = ?2",
            params![node, t.name],
            |r| r.get(0),
        )
        .optional()
        .db()?
        .unwrap_or(0);
    let mut result = PushResult {
        outcomes: Vec::with_capacity(batch.changes.len()),
        conflicts: 0,
        replayed: 0,
    };
    let mut max_hlc = i64::MIN;
    for (i, change) in batch.changes.iter().enumerate() {
        max_hlc = max_hlc.max(change.hlc);
        let key = t.bind_key(&change.key)?;
        let current = load(&tx, &t, &key)?;
        if change.version <= hi {
            // A replay: answer from what the central holds now. The row is
            // still this write only if it holds its values too: a merged
            // row (field-merge) carries the node's stamps but was answered
            // `Superseded` with the merge.
            result.replayed += 1;
            let ours = current.as_ref().is_some_and(|c| {
                c.row.origin.as_deref() == Some(node)
                    && c.oseq == Some(change.version)
                    && same_values(change.values.as_deref(), c.row.values.as_deref())
            });
            // A delete the central already agrees with was answered
            // `Applied` the first time (nothing to write); answer so again.
            let agreed = change.deleted && current.as_ref().is_none_or(|c| c.row.deleted);
            result.outcomes.push(match current {
                Some(c) if ours || agreed => PushOutcome::Applied {
                    version: c.row.version,
                },
                None if agreed => PushOutcome::Applied { version: 0 },
                other => superseded(other, &change.key),
            });
            continue;
        }
        // A lost push answer, an insert after a central delete and the
        // field-merge of a row are judged the same way on every backend
        // (see `conflict::decide`).
        let base = batch.base_of(i).filter(|b| b.len() == m.columns.len());
        let current_row = current.as_ref().map(|c| &c.row);
        // Outside the node's filter: refused as a conflict, the central row
        // kept, the rest of the batch applied.
        if let Some(scope) = scope.filter(|s| s.refuses(change, current_row).is_some()) {
            let res = Resolution {
                decision: Decision::KeepCentral,
                conflict: Some(false),
                merged: None,
            };
            result.conflicts += 1;
            log_conflict(
                &tx,
                &t,
                node,
                ConflictPolicy::OutOfScope,
                change,
                base,
                current.as_ref(),
                &res,
                false,
            )?;
            result
                .outcomes
                .push(scope.refused_outcome(&change.key, current_row));
            continue;
        }
        let res = conflict::decide(
            m.conflict,
            node,
            change,
            base,
            current_row,
            current.as_ref().and_then(|c| c.oseq),
        );
        let outcome = match (&res.decision, &res.merged) {
            (Decision::Apply, Some(merged)) => {
                // The merged row, under the node's name (no echo to it) but
                // with no sequence of its (it is not the node's write), and
                // handed back so the edge takes it too.
                let hlc = conflict::merged_hlc(change.hlc, current_row);
                let write_change = Change {
                    values: Some(merged.clone()),
                    hlc,
                    ..change.clone()
                };
                max_hlc = max_hlc.max(hlc);
                let version = write(&tx, &t, node, &write_change, true, current.as_ref(), &key)?;
                PushOutcome::Superseded {
                    row: Some(Change {
                        key: change.key.clone(),
                        values: Some(merged.clone()),
                        deleted: false,
                        version,
                        base: None,
                        hlc,
                    }),
                }
            }
            (Decision::Apply, None) => PushOutcome::Applied {
                version: write(&tx, &t, node, change, false, current.as_ref(), &key)?,
            },
            (Decision::KeepCentral, _) => {
                superseded(current.as_ref().map(clone_current), &change.key)
            }
            (Decision::AlreadyThere, _) => PushOutcome::Applied {
                version: current.as_ref().map_or(0, |c| c.row.version),
            },
        };
        if let Some(open) = res.conflict {
            result.conflicts += 1;
            log_conflict(
                &tx,
                &t,
                node,
                m.conflict,
                change,
                base,
                current.as_ref(),
                &res,
                open,
            )?;
        }
        result.outcomes.push(outcome);
    }
    tx.execute(
        "INSERT INTO es_nodes (node, tbl, hi, last_push_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (node, tbl) DO UPDATE SET hi = MAX(hi, excluded.hi), \
         last_push_at = excluded.last_push_at",
        params![node, t.name, batch.hi, types::now_text()],
    )
    .db()?;
    tx.execute(
        "UPDATE es_ctl SET applying = 0, hlc = MAX(hlc, ?1)",
        [max_hlc],
    )
    .db()?;
    tx.commit().db()?;
    if let Some(scope) = scope {
        scope.restrict_all(&mut result);
    }
    Ok(result)
}

/// Do a pushed change's values and the central row's agree (by
/// `Value::same_as`, so a decimal the central padded still agrees)? A
/// change without values (a tombstone) agrees with anything.
fn same_values(
    change: Option<&[edgesync_core::Value]>,
    central: Option<&[edgesync_core::Value]>,
) -> bool {
    match (change, central) {
        (Some(a), Some(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y)),
        _ => true,
    }
}

fn clone_current(c: &Current) -> Current {
    Current {
        row: c.row.clone(),
        oseq: c.oseq,
        tombstone: c.tombstone,
    }
}

fn superseded(current: Option<Current>, key: &[edgesync_core::Value]) -> PushOutcome {
    PushOutcome::Superseded {
        row: current.map(|c| c.row.to_change(key.to_vec())),
    }
}

/// The row, else the tombstone, of a key.
fn load(conn: &Connection, t: &CentralTable<'_>, key: &[SqlValue]) -> Result<Option<Current>> {
    let n = t.m.columns.len();
    let reader = t.reader();
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {}, es_ver, es_deleted, es_hlc, es_origin, es_oseq FROM {} WHERE {}",
            t.cols,
            t.q,
            sql::key_match_params(1, &t.key)
        ))
        .db_ctx(|| format!("reading central table {}", t.name))?;
    let mut rows = stmt.query(params_from_iter(key)).db()?;
    if let Some(r) = rows.next().db()? {
        return Ok(Some(Current {
            row: CentralRow {
                values: Some(reader.read(r, 0)?),
                version: r.get(n).db()?,
                deleted: r.get::<_, i64>(n + 1).db()? != 0,
                hlc: r.get(n + 2).db()?,
                origin: r.get(n + 3).db()?,
            },
            oseq: r.get(n + 4).db()?,
            tombstone: false,
        }));
    }
    let mut params = vec![SqlValue::Text(t.name.to_string())];
    params.extend(key.iter().cloned());
    conn.prepare_cached(&format!(
        "SELECT es_ver, es_hlc, es_origin, es_oseq FROM es_tombstones WHERE tbl = ?1 AND key = {}",
        sql::key_json(None, 2, &t.key)
    ))
    .db()?
    .query_row(params_from_iter(params), |r| {
        Ok(Current {
            row: CentralRow {
                values: None,
                deleted: true,
                version: r.get(0)?,
                hlc: r.get(1)?,
                origin: r.get(2)?,
            },
            oseq: r.get(3)?,
            tombstone: true,
        })
    })
    .optional()
    .db()
}

/// Write an accepted change with the node's stamps; returns its version.
/// `merged`: a field-merge result, which is no write the node made itself,
/// so it gets no `es_oseq` (see `conflict::rebase`: only the node's own
/// writes may become a later change's base without a conflict, and a replay
/// must not answer it `Applied`).
fn write(
    conn: &Connection,
    t: &CentralTable<'_>,
    node: &str,
    change: &Change,
    merged: bool,
    current: Option<&Current>,
    key: &[SqlValue],
) -> Result<i64> {
    let context = || format!("table {}, key {}", t.name, t.describe_key(&change.key));
    let version: i64 = conn
        .query_row("UPDATE es_ctl SET seq = seq + 1 RETURNING seq", [], |r| {
            r.get(0)
        })
        .db()?;
    let row_exists = current.is_some_and(|c| !c.tombstone);
    let n = t.m.columns.len();
    let stamps = [
        SqlValue::Integer(version),
        SqlValue::Integer(change.hlc),
        SqlValue::Text(node.to_string()),
        if merged {
            SqlValue::Null
        } else {
            SqlValue::Integer(change.version)
        },
    ];
    let hard_delete = change.deleted && t.m.deletes == DeleteMode::Hard;
    if hard_delete {
        if row_exists {
            let sql = format!(
                "DELETE FROM {} WHERE {}",
                t.q,
                sql::key_match_params(1, &t.key)
            );
            conn.prepare_cached(&sql)
                .db()?
                .execute(params_from_iter(key))
                .db_ctx(context)?;
        }
        let mut params = stamps.to_vec();
        params.push(SqlValue::Text(t.name.to_string()));
        params.extend(key.iter().cloned());
        let sql = format!(
            "INSERT OR REPLACE INTO es_tombstones (tbl, key, es_ver, es_hlc, es_origin, es_oseq) \
             VALUES (?5, {}, ?1, ?2, ?3, ?4)",
            sql::key_json(None, 6, &t.key)
        );
        conn.prepare_cached(&sql)
            .db()?
            .execute(params_from_iter(params))
            .db_ctx(context)?;
        return Ok(version);
    }
    let deleted = SqlValue::Integer(i64::from(change.deleted));
    match (&change.values, row_exists) {
        (Some(values), true) => {
            let sets: Vec<String> =
                t.m.columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{} = ?{}", sql::ident(&c.central), i + 1))
                    .collect();
            let sql = format!(
                "UPDATE {} SET {}, es_ver = ?{}, es_hlc = ?{}, es_origin = ?{}, es_oseq = ?{}, \
                 es_deleted = ?{} WHERE {}",
                t.q,
                sets.join(", "),
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                sql::key_match_params(n + 6, &t.key)
            );
            let mut params = t.bind_row(values, &change.key)?;
            params.extend(stamps);
            params.push(deleted);
            params.extend(key.iter().cloned());
            conn.prepare_cached(&sql)
                .db()?
                .execute(params_from_iter(params))
                .db_ctx(context)?;
        }
        (None, true) => {
            // A soft delete that carries no values (the old key of a key
            // change): set the marker.
            let sql = format!(
                "UPDATE {} SET es_ver = ?1, es_hlc = ?2, es_origin = ?3, es_oseq = ?4, \
                 es_deleted = 1 WHERE {}",
                t.q,
                sql::key_match_params(5, &t.key)
            );
            let mut params = stamps.to_vec();
            params.extend(key.iter().cloned());
            conn.prepare_cached(&sql)
                .db()?
                .execute(params_from_iter(params))
                .db_ctx(context)?;
        }
        (Some(values), false) => {
            let sql = format!(
                "INSERT INTO {} ({}, es_ver, es_hlc, es_origin, es_oseq, es_deleted) VALUES ({})",
                t.q,
                t.cols,
                sql::placeholders(1, n + 5)
            );
            let mut params = t.bind_row(values, &change.key)?;
            params.extend(stamps);
            params.push(deleted);
            conn.prepare_cached(&sql)
                .db()?
                .execute(params_from_iter(params))
                .db_ctx(context)?;
            if current.is_some() {
                let mut params = vec![SqlValue::Text(t.name.to_string())];
                params.extend(key.iter().cloned());
                conn.prepare_cached(&format!(
                    "DELETE FROM es_tombstones WHERE tbl = ?1 AND key = {}",
                    sql::key_json(None, 2, &t.key)
                ))
                .db()?
                .execute(params_from_iter(params))
                .db()?;
            }
        }
        (None, false) => {
            if !change.deleted {
                return Err(Error::value(format!(
                    "{}: a pushed change without values that is not a delete",
                    context()
                )));
            }
            // A soft delete of a row the central does not have: nothing to
            // mark (resolve answers AlreadyThere before we get here).
        }
    }
    Ok(version)
}

#[allow(clippy::too_many_arguments)]
fn log_conflict(
    conn: &Connection,
    t: &CentralTable<'_>,
    node: &str,
    strategy: ConflictPolicy,
    change: &Change,
    base: Option<&[edgesync_core::Value]>,
    current: Option<&Current>,
    res: &Resolution,
    open: bool,
) -> Result<()> {
    let json = |v: Option<Vec<(String, edgesync_core::Value)>>| -> Result<Option<String>> {
        v.map(|v| {
            serde_json::to_string(&v)
                .map_err(|e| Error::internal("encoding a conflict").with_source(e))
        })
        .transpose()
    };
    let local = if change.deleted {
        None
    } else {
        change.values.as_deref().map(|v| t.named(v))
    };
    let central = current
        .filter(|c| !c.row.deleted)
        .and_then(|c| c.row.values.as_deref())
        .map(|v| t.named(v));
    let result = res
        .result(change, current.map(|c| &c.row))
        .map(|v| t.named(v));
    let now = types::now_text();
    conn.prepare_cached(
        "INSERT INTO es_conflicts (tbl, key_json, node, strategy, base_ver, base_json, local_json, \
         central_json, result_json, local_hlc, central_hlc, at, open, resolved_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .db()?
    .execute(params![
        t.name,
        json(Some(t.named_key(&change.key)))?,
        node,
        strategy.as_str(),
        change.base,
        json(base.map(|b| t.named(b)))?,
        json(local)?,
        json(central)?,
        json(result)?,
        change.hlc,
        current.map_or(0, |c| c.row.hlc),
        now,
        open,
        (!open).then_some(&now),
    ])
    .db()?;
    Ok(())
}
