//! The set-based statements of a push. MySQL has no `UNNEST` and no
//! `UPDATE ... FROM VALUES`, so a chunk of changes travels as a derived table
//! of bound rows (`(SELECT ? AS k0, ... UNION ALL SELECT ...) AS u`, every
//! parameter cast to its column's type) joined to the table with
//! `STRAIGHT_JOIN`, so MySQL reads the bound rows first and reaches each
//! table row through its key (one index lookup per change, never a scan):
//!
//! - [`fetch_current`]: lock the rows (`FOR UPDATE`), then the tombstones of
//!   the keys with no row; results map back to changes by an ordinal column;
//! - [`write_updates`]: `UPDATE (<rows>) u STRAIGHT_JOIN t ... SET ...`;
//! - [`write_inserts`]: one multi-row `INSERT` per chunk;
//! - [`write_deletes`]: `DELETE t FROM (<keys>) u STRAIGHT_JOIN t`, then one
//!   multi-row `INSERT` of tombstones (origin = the node).
//!
//! Every row and tombstone is written once, with its final version
//! (`versions`, aligned with the changes written, taken by the push under
//! the `es_ctl` lock, see `push.rs`). Each statement checks its
//! affected-row count, so a row that is not where it was locked can never
//! be answered as written.

use std::collections::HashMap;
use std::ops::Range;

use edgesync_core::conflict::CentralRow;
use edgesync_core::{Change, Error, ErrorKind, Result, Value};
use mysql_async::prelude::Queryable;
use mysql_async::{Row, Transaction, Value as My};

use crate::error::ctx;
use crate::push::{key_params, Ctx, Current};
use crate::schema::{number, text, values};
use crate::sql::{self, ident, literal};
use crate::stamp::{self, PENDING};
use crate::types;

pub(crate) fn value_error(cx: &Ctx<'_>, col: usize, key: &[Value], e: Error) -> Error {
    Error::new(
        ErrorKind::Value,
        format!(
            "{}.{} (key {}): {}",
            cx.table.central,
            cx.table.columns[col].central,
            cx.table.describe_key(key),
            e.message()
        ),
    )
}

fn bytes(p: &[My]) -> usize {
    p.iter()
        .map(|v| match v {
            My::Bytes(b) => b.len() + 8,
            _ => 16,
        })
        .sum()
}

/// `(expr, alias)` for the key columns: `k0`, `k1`, ...
fn key_exprs(cx: &Ctx<'_>) -> Vec<(String, String)> {
    stamp::key_binds(cx.table, &cx.natives)
        .into_iter()
        .enumerate()
        .map(|(j, e)| (e, format!("k{j}")))
        .collect()
}

fn ordinal(v: My, len: usize) -> Result<usize> {
    number(v)
        .and_then(|o| usize::try_from(o).ok())
        .filter(|&p| p < len)
        .ok_or_else(|| Error::internal("a result row's position is out of range"))
}

fn int_or_null(v: My) -> Result<Option<i64>> {
    match v {
        My::NULL => Ok(None),
        My::Int(i) => Ok(Some(i)),
        My::UInt(u) => Ok(i64::try_from(u).ok()),
        My::Bytes(b) => Ok(std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok())),
        other => Err(Error::internal(format!(
            "expected an integer, got {other:?}"
        ))),
    }
}

/// Lock and read the current row, or else tombstone, of each key; aligned
/// with `idx`.
pub(crate) async fn fetch_current(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    changes: &[Change],
    idx: &[usize],
) -> Result<Vec<Option<Current>>> {
    let t = cx.table;
    let nk = t.key.len();
    let mut out: Vec<Option<Current>> = vec![None; idx.len()];
    let keys: Vec<Vec<My>> = idx
        .iter()
        .map(|&i| key_params(cx, &changes[i].key))
        .collect::<Result<_>>()?;
    let mut exprs = vec![("CAST(? AS SIGNED)".to_string(), "es_ord".to_string())];
    exprs.extend(key_exprs(cx));
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("t.{}", ident(&c.central)))
        .collect();
    let n = t.columns.len();
    // What each column is called in messages, built once per batch.
    let what: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("{}.{}", t.central, c.central))
        .collect();
    for Range { start, end } in sql::chunks(idx.len(), 1 + nk, |k| bytes(&keys[k])) {
        let query = format!(
            "SELECT u.es_ord, {cols}, t.es_ver, t.es_deleted, t.es_hlc, t.es_origin, t.es_oseq
               FROM {derived} STRAIGHT_JOIN {table} AS t ON {matches} FOR UPDATE",
            cols = cols.join(", "),
            derived = sql::derived(&exprs, end - start),
            table = cx.db.table_ref(&t.central),
            matches = sql::key_match(t, "t"),
        );
        let mut params = Vec::new();
        for (k, key) in keys.iter().enumerate().take(end).skip(start) {
            params.push(My::Int(k as i64));
            params.extend(key.iter().cloned());
        }
        let rows: Vec<Row> = tx
            .exec(query, params)
            .await
            .map_err(ctx("locking the current rows"))?;
        for r in rows {
            let mut v = values(r).into_iter();
            let mut next = || v.next().unwrap_or(My::NULL);
            let pos = ordinal(next(), idx.len())?;
            let mut vals = Vec::with_capacity(n);
            for (c, what) in t.columns.iter().zip(&what) {
                vals.push(crate::pull::decode(next(), c.ty, what)?);
            }
            let version = int_or_null(next())?.unwrap_or(PENDING);
            let deleted = int_or_null(next())?.unwrap_or(0) != 0;
            let hlc = int_or_null(next())?.unwrap_or(0);
            let origin = text(next());
            let oseq = int_or_null(next())?;
            out[pos] = Some(Current {
                row: CentralRow {
                    values: Some(vals),
                    deleted,
                    version,
                    hlc,
                    origin,
                },
                oseq,
            });
        }
    }

    let absent: Vec<usize> = (0..idx.len()).filter(|&k| out[k].is_none()).collect();
    if absent.is_empty() {
        return Ok(out);
    }
    let exprs = vec![
        ("CAST(? AS SIGNED)".to_string(), "es_ord".to_string()),
        (stamp::tomb_key_bind(t, &cx.natives), "k0".to_string()),
    ];
    for Range { start, end } in sql::chunks(absent.len(), 1 + nk, |k| bytes(&keys[absent[k]])) {
        let query = format!(
            "SELECT u.es_ord, ts.es_ver, ts.es_hlc, ts.es_origin, ts.es_oseq
               FROM {derived} STRAIGHT_JOIN {tombs} AS ts
                 ON ts.tbl = {tbl} AND ts.k = u.k0 FOR UPDATE",
            derived = sql::derived(&exprs, end - start),
            tombs = cx.db.meta("es_tombstones"),
            tbl = literal(&cx.tbl),
        );
        let mut params = Vec::new();
        for (k, &a) in absent.iter().enumerate().take(end).skip(start) {
            params.push(My::Int(k as i64));
            params.extend(keys[a].iter().cloned());
        }
        let rows: Vec<Row> = tx
            .exec(query, params)
            .await
            .map_err(ctx("locking the tombstones"))?;
        for r in rows {
            let mut v = values(r).into_iter();
            let mut next = || v.next().unwrap_or(My::NULL);
            let pos = ordinal(next(), absent.len())?;
            out[absent[pos]] = Some(Current {
                row: CentralRow {
                    values: None,
                    deleted: true,
                    version: int_or_null(next())?.unwrap_or(PENDING),
                    hlc: int_or_null(next())?.unwrap_or(0),
                    origin: text(next()),
                },
                oseq: int_or_null(next())?,
            });
        }
    }
    Ok(out)
}

/// The parameters of one written row: every mapped column's value.
fn row_params(cx: &Ctx<'_>, change: &Change, values: &[Value]) -> Result<Vec<My>> {
    cx.table
        .columns
        .iter()
        .enumerate()
        .map(|(k, col)| {
            types::encode(&values[k], col.ty, &cx.natives[k])
                .map_err(|e| value_error(cx, k, &change.key, e))
        })
        .collect()
}

fn aligned(idx: &[usize], versions: &[i64]) -> Result<()> {
    if idx.len() == versions.len() {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "{} rows to write with {} versions",
            idx.len(),
            versions.len()
        )))
    }
}

fn check_count(done: u64, expected: usize, what: &str) -> Result<()> {
    if done == expected as u64 {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "{done} of {expected} locked rows were {what}"
        )))
    }
}

/// Update rows that exist: `UPDATE (<bound rows>) u STRAIGHT_JOIN t ON <key>
/// SET ...`, each with its version (`versions[k]` for `idx[k]`). A soft
/// delete sent without values keeps the row's values (`fill`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_updates(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    changes: &[Change],
    idx: &[usize],
    versions: &[i64],
    fill: &HashMap<usize, &Vec<Value>>,
    merged: &[usize],
) -> Result<()> {
    if idx.is_empty() {
        return Ok(());
    }
    aligned(idx, versions)?;
    let t = cx.table;
    let non_key: Vec<usize> = (0..t.columns.len())
        .filter(|k| !t.key.contains(k))
        .collect();
    let mut exprs = key_exprs(cx);
    for &k in &non_key {
        exprs.push((
            sql::bind_expr(t.columns[k].ty, &cx.natives[k], false),
            format!("a{k}"),
        ));
    }
    for (e, a) in [
        ("CAST(? AS SIGNED)", "es_v"),
        ("CAST(? AS SIGNED)", "es_del"),
        ("CAST(? AS CHAR CHARACTER SET utf8mb4)", "es_origin"),
        ("CAST(? AS SIGNED)", "es_oseq"),
        ("CAST(? AS SIGNED)", "es_hlc"),
    ] {
        exprs.push((e.to_string(), a.to_string()));
    }
    let sets: Vec<String> = non_key
        .iter()
        .map(|&k| format!("t.{} = u.a{k}", ident(&t.columns[k].central)))
        .chain(
            [
                "t.es_ver = u.es_v",
                "t.es_deleted = u.es_del",
                "t.es_origin = u.es_origin",
                "t.es_oseq = u.es_oseq",
                "t.es_hlc = u.es_hlc",
            ]
            .map(String::from),
        )
        .collect();
    let mut rows: Vec<Vec<My>> = Vec::with_capacity(idx.len());
    for (&i, &version) in idx.iter().zip(versions) {
        let c = &changes[i];
        let vals = match (&c.values, fill.get(&i)) {
            (Some(v), _) => v,
            (None, Some(v)) => *v,
            (None, None) => {
                return Err(Error::internal(
                    "a change without values has no central row to keep",
                ))
            }
        };
        let all = row_params(cx, c, vals)?;
        let mut p = key_params(cx, &c.key)?;
        p.extend(non_key.iter().map(|&k| all[k].clone()));
        p.push(My::Int(version));
        p.push(My::Int(i64::from(c.deleted)));
        p.push(My::Bytes(cx.node.as_bytes().to_vec()));
        // A field-merge result is not the node's own write: with es_oseq
        // set, the node's next push would take it as its own base
        // (`conflict::rebase`) and silently revert the other side's columns.
        p.push(if merged.contains(&i) {
            My::NULL
        } else {
            My::Int(c.version)
        });
        p.push(My::Int(c.hlc));
        rows.push(p);
    }
    let per_row = exprs.len();
    for Range { start, end } in sql::chunks(rows.len(), per_row, |k| bytes(&rows[k])) {
        let query = format!(
            "UPDATE {derived} STRAIGHT_JOIN {table} AS t ON {matches} SET {sets}",
            derived = sql::derived(&exprs, end - start),
            table = cx.db.table_ref(&t.central),
            matches = sql::key_match(t, "t"),
            sets = sets.join(", "),
        );
        let params: Vec<My> = rows[start..end].iter().flatten().cloned().collect();
        tx.exec_drop(query, params)
            .await
            .map_err(ctx("updating rows"))?;
        check_count(tx.affected_rows(), end - start, "updated")?;
    }
    Ok(())
}

/// Insert rows the central does not have: multi-row `INSERT`s, each row
/// with its version (`versions[k]` for `idx[k]`).
pub(crate) async fn write_inserts(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    changes: &[Change],
    idx: &[usize],
    versions: &[i64],
) -> Result<()> {
    if idx.is_empty() {
        return Ok(());
    }
    aligned(idx, versions)?;
    let t = cx.table;
    let cols: Vec<String> = t.columns.iter().map(|c| ident(&c.central)).collect();
    let mut exprs: Vec<String> = t
        .columns
        .iter()
        .zip(&cx.natives)
        .map(|(c, n)| sql::bind_expr(c.ty, n, false))
        .collect();
    exprs.extend(
        [
            "CAST(? AS SIGNED)",
            "CAST(? AS SIGNED)",
            "CAST(? AS CHAR CHARACTER SET utf8mb4)",
            "CAST(? AS SIGNED)",
            "CAST(? AS SIGNED)",
        ]
        .map(String::from),
    );
    let mut rows: Vec<Vec<My>> = Vec::with_capacity(idx.len());
    for (&i, &version) in idx.iter().zip(versions) {
        let c = &changes[i];
        let vals = c
            .values
            .as_ref()
            .ok_or_else(|| Error::internal("an insert without values"))?;
        let mut p = row_params(cx, c, vals)?;
        p.push(My::Int(version));
        p.push(My::Int(i64::from(c.deleted)));
        p.push(My::Bytes(cx.node.as_bytes().to_vec()));
        p.push(My::Int(c.version));
        p.push(My::Int(c.hlc));
        rows.push(p);
    }
    let per_row = t.columns.len() + 5;
    for Range { start, end } in sql::chunks(rows.len(), per_row, |k| bytes(&rows[k])) {
        let query = format!(
            "INSERT INTO {table} ({cols}, es_ver, es_deleted, es_origin, es_oseq, es_hlc) VALUES {values}",
            table = cx.db.table_ref(&t.central),
            cols = cols.join(", "),
            values = sql::values_rows(&exprs, end - start),
        );
        let params: Vec<My> = rows[start..end].iter().flatten().cloned().collect();
        tx.exec_drop(query, params)
            .await
            .map_err(ctx("inserting rows"))?;
        check_count(tx.affected_rows(), end - start, "inserted")?;
    }
    Ok(())
}

/// Hard deletes: `DELETE t FROM (<keys>) u STRAIGHT_JOIN t`, then the
/// tombstones with this node as origin, each with its version
/// (`versions[k]` for `idx[k]`).
pub(crate) async fn write_deletes(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    changes: &[Change],
    idx: &[usize],
    versions: &[i64],
) -> Result<()> {
    if idx.is_empty() {
        return Ok(());
    }
    aligned(idx, versions)?;
    let t = cx.table;
    let keys: Vec<Vec<My>> = idx
        .iter()
        .map(|&i| key_params(cx, &changes[i].key))
        .collect::<Result<_>>()?;
    let exprs = key_exprs(cx);
    let nk = t.key.len();
    for Range { start, end } in sql::chunks(keys.len(), nk, |k| bytes(&keys[k])) {
        let query = format!(
            "DELETE t FROM {derived} STRAIGHT_JOIN {table} AS t ON {matches}",
            derived = sql::derived(&exprs, end - start),
            table = cx.db.table_ref(&t.central),
            matches = sql::key_match(t, "t"),
        );
        let params: Vec<My> = keys[start..end].iter().flatten().cloned().collect();
        tx.exec_drop(query, params)
            .await
            .map_err(ctx("deleting rows"))?;
        check_count(tx.affected_rows(), end - start, "deleted")?;
    }
    let row = vec![
        literal(&cx.tbl),
        stamp::tomb_key_bind(t, &cx.natives),
        "CAST(? AS SIGNED)".to_string(),
        "CAST(? AS SIGNED)".to_string(),
        "CAST(? AS CHAR CHARACTER SET utf8mb4)".to_string(),
        "CAST(? AS SIGNED)".to_string(),
    ];
    for Range { start, end } in sql::chunks(keys.len(), nk + 4, |k| bytes(&keys[k])) {
        let query = format!(
            "INSERT INTO {tombs} (tbl, k, es_ver, es_hlc, es_origin, es_oseq) VALUES {values}
             ON DUPLICATE KEY UPDATE es_ver = VALUES(es_ver), es_hlc = VALUES(es_hlc),
                                     es_origin = VALUES(es_origin), es_oseq = VALUES(es_oseq)",
            tombs = cx.db.meta("es_tombstones"),
            values = sql::values_rows(&row, end - start),
        );
        let mut params = Vec::new();
        for (k, key) in keys.iter().enumerate().take(end).skip(start) {
            let c = &changes[idx[k]];
            params.extend(key.iter().cloned());
            params.push(My::Int(versions[k]));
            params.push(My::Int(c.hlc));
            params.push(My::Bytes(cx.node.as_bytes().to_vec()));
            params.push(My::Int(c.version));
        }
        tx.exec_drop(query, params)
            .await
            .map_err(ctx("writing tombstones"))?;
    }
    Ok(())
}
