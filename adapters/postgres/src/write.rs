//! The set-based statements of a push. Each binds one typed array per
//! column (or per key column) and `UNNEST`s it `WITH ORDINALITY`, so results
//! map back to changes by position, whatever the batch size:
//!
//! - [`fetch_current`]: lock the rows (`FOR UPDATE`, in key order), then the
//!   tombstones of the keys with no row;
//! - [`write_updates`]: `UPDATE ... FROM unnest(...)` for rows that exist;
//! - [`write_inserts`]: `INSERT ... SELECT ... ON CONFLICT (key) DO NOTHING`
//!   for rows that do not — a row inserted concurrently since it was looked
//!   up makes the batch fail as retryable instead of being overwritten
//!   without conflict detection;
//! - [`write_deletes`]: `DELETE ... USING unnest(...)` and the tombstones
//!   (origin = the node) in one statement.
//!
//! The statements stamp what the table's row triggers stamp for any other
//! write (`es_ver` from the sequence, `es_txid`) and clear the tombstone of a
//! key they insert, so the triggers skip them (`edgesync.applying` is on and
//! they run outside any trigger: see `schemas/postgres/init_table.sql`); a
//! plpgsql call per row was most of an update's server time. On a table
//! still carrying an older edgesync's triggers, which fire anyway, the
//! trigger stamps again and finds no tombstone left: the same result.

use std::collections::HashSet;

use edgesync_core::conflict::CentralRow;
use edgesync_core::{Change, Error, ErrorKind, Result, Value};
use sqlx::{PgConnection, Row};

use crate::error::ctx;
use crate::push::{Ctx, Current};
use crate::sql::{self, ident};
use crate::types::{self, ColumnArray, Params};

/// Typed arrays of the key values of `changes[idx]`, one per key column.
fn key_arrays(cx: &Ctx<'_>, changes: &[Change], idx: &[usize]) -> Result<Vec<ColumnArray>> {
    let t = cx.table;
    t.key
        .iter()
        .enumerate()
        .map(|(j, &ci)| {
            let ty = t.columns[ci].ty;
            let mut a = ColumnArray::new(ty);
            for &i in idx {
                a.push(ty, &changes[i].key[j])
                    .map_err(|e| value_error(cx, ci, &changes[i].key, e))?;
            }
            Ok(a)
        })
        .collect()
}

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

/// `unnest(<params>) WITH ORDINALITY AS u(<aliases>, es_ord)`.
fn unnest(params: &[String], aliases: &[String]) -> String {
    format!(
        "unnest({}) WITH ORDINALITY AS u({}, es_ord)",
        params.join(", "),
        aliases.join(", ")
    )
}

/// Bind the key arrays; the params and `u` aliases (`a<column index>`).
fn bind_keys(cx: &Ctx<'_>, p: &mut Params, keys: Vec<ColumnArray>) -> (Vec<String>, Vec<String>) {
    let mut params = Vec::new();
    let mut aliases = Vec::new();
    for (a, &ci) in keys.into_iter().zip(&cx.table.key) {
        params.push(p.array(a, sql::transport_type(cx.table.columns[ci].ty)));
        aliases.push(format!("a{ci}"));
    }
    (params, aliases)
}

/// Lock and read the current row, or else tombstone, of each key; aligned
/// with `idx`.
pub(crate) async fn fetch_current(
    conn: &mut PgConnection,
    cx: &Ctx<'_>,
    changes: &[Change],
    idx: &[usize],
) -> Result<Vec<Option<Current>>> {
    let t = cx.table;
    let mut out: Vec<Option<Current>> = vec![None; idx.len()];

    let mut p = Params::default();
    let (params, aliases) = bind_keys(cx, &mut p, key_arrays(cx, changes, idx)?);
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| sql::read_expr(&format!("t.{}", ident(&c.central)), c.ty))
        .collect();
    let query = format!(
        "SELECT u.es_ord, {cols}, t.es_ver, t.es_deleted, t.es_hlc, t.es_origin, t.es_oseq
           FROM {unnest} JOIN {table} AS t ON {matches}
          ORDER BY {order} FOR UPDATE OF t",
        cols = cols.join(", "),
        unnest = unnest(&params, &aliases),
        table = sql::table_ref(&t.central),
        matches = sql::key_match(t, "t", |i| format!("u.a{i}")),
        order = sql::key_columns(t, Some("t")).join(", "),
    );
    let rows = p
        .query(query)
        .fetch_all(&mut *conn)
        .await
        .map_err(ctx("locking the current rows"))?;
    let n = t.columns.len();
    // What each column is called in messages, built once per batch.
    let what: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("{}.{}", t.central, c.central))
        .collect();
    for r in rows {
        let pos = ordinal(&r, idx.len())?;
        let mut values = Vec::with_capacity(n);
        for (k, c) in t.columns.iter().enumerate() {
            values.push(types::decode(&r, k + 1, c.ty, &what[k])?);
        }
        out[pos] = Some(Current {
            row: CentralRow {
                values: Some(values),
                deleted: r.try_get(n + 2).map_err(ctx("reading es_deleted"))?,
                version: r.try_get(n + 1).map_err(ctx("reading es_ver"))?,
                hlc: r.try_get(n + 3).map_err(ctx("reading es_hlc"))?,
                origin: r.try_get(n + 4).map_err(ctx("reading es_origin"))?,
            },
            oseq: r.try_get(n + 5).map_err(ctx("reading es_oseq"))?,
        });
    }

    let absent: Vec<usize> = (0..idx.len()).filter(|&k| out[k].is_none()).collect();
    if absent.is_empty() {
        return Ok(out);
    }
    let absent_idx: Vec<usize> = absent.iter().map(|&k| idx[k]).collect();
    let mut p = Params::default();
    let tbl = p.text(cx.tbl.clone());
    let (params, aliases) = bind_keys(cx, &mut p, key_arrays(cx, changes, &absent_idx)?);
    let key_json: Vec<String> = t
        .key
        .iter()
        .map(|&i| sql::key_text(&format!("u.a{i}"), t.columns[i].ty, &cx.natives[i]))
        .collect();
    let query = format!(
        "SELECT u.es_ord, ts.es_ver, ts.es_hlc, ts.es_origin, ts.es_oseq
           FROM {unnest} JOIN {tombs} AS ts
             ON ts.tbl = {tbl} AND ts.key = jsonb_build_array({key_json})
          ORDER BY ts.key FOR UPDATE OF ts",
        unnest = unnest(&params, &aliases),
        tombs = sql::meta(&t.central, "es_tombstones"),
        key_json = key_json.join(", "),
    );
    let rows = p
        .query(query)
        .fetch_all(&mut *conn)
        .await
        .map_err(ctx("locking the tombstones"))?;
    for r in rows {
        let pos = ordinal(&r, absent.len())?;
        out[absent[pos]] = Some(Current {
            row: CentralRow {
                values: None,
                deleted: true,
                version: r.try_get(1).map_err(ctx("reading a tombstone"))?,
                hlc: r.try_get(2).map_err(ctx("reading a tombstone"))?,
                origin: r.try_get(3).map_err(ctx("reading a tombstone"))?,
            },
            oseq: r.try_get(4).map_err(ctx("reading a tombstone"))?,
        });
    }
    Ok(out)
}

/// The 0-based position of a result row from its `WITH ORDINALITY` column.
fn ordinal(row: &sqlx::postgres::PgRow, len: usize) -> Result<usize> {
    let ord: i64 = row.try_get(0).map_err(ctx("reading a row position"))?;
    usize::try_from(ord - 1)
        .ok()
        .filter(|&p| p < len)
        .ok_or_else(|| Error::internal(format!("row position {ord} out of range")))
}

/// The value arrays (one per mapped column) of `changes[idx]`; rows without
/// values (a soft delete sent as a marker) get NULLs and `has_values = false`.
fn value_arrays(
    cx: &Ctx<'_>,
    changes: &[Change],
    idx: &[usize],
) -> Result<(Vec<ColumnArray>, Vec<bool>)> {
    let t = cx.table;
    let mut arrays: Vec<ColumnArray> = t.columns.iter().map(|c| ColumnArray::new(c.ty)).collect();
    let mut has = Vec::with_capacity(idx.len());
    for &i in idx {
        let c = &changes[i];
        has.push(c.values.is_some());
        for (k, col) in t.columns.iter().enumerate() {
            let v = c.values.as_ref().map_or(&Value::Null, |v| &v[k]);
            arrays[k]
                .push(col.ty, v)
                .map_err(|e| value_error(cx, k, &c.key, e))?;
        }
    }
    Ok((arrays, has))
}

/// Bind every column's array plus the per-change metadata arrays; returns
/// the `unnest(...)` clause.
fn bind_rows(
    cx: &Ctx<'_>,
    p: &mut Params,
    changes: &[Change],
    idx: &[usize],
    with_has_values: bool,
    merged: &[usize],
) -> Result<String> {
    let (arrays, has) = value_arrays(cx, changes, idx)?;
    let mut params = Vec::new();
    let mut aliases = Vec::new();
    for (k, a) in arrays.into_iter().enumerate() {
        params.push(p.array(a, sql::transport_type(cx.table.columns[k].ty)));
        aliases.push(format!("a{k}"));
    }
    let bools = |v: Vec<bool>| ColumnArray::Bool(v.into_iter().map(Some).collect());
    let ints = |v: Vec<i64>| ColumnArray::Int(v.into_iter().map(Some).collect());
    if with_has_values {
        params.push(p.array(bools(has), "boolean"));
        aliases.push("es_hv".into());
    }
    params.push(p.array(
        bools(idx.iter().map(|&i| changes[i].deleted).collect()),
        "boolean",
    ));
    aliases.push("es_del".into());
    // A field-merge result is no write of the node's own: no sequence (see
    // `conflict::rebase`; a replay must not answer it `Applied` either).
    params.push(
        p.array(
            ColumnArray::Int(
                idx.iter()
                    .map(|&i| (!merged.contains(&i)).then_some(changes[i].version))
                    .collect(),
            ),
            "bigint",
        ),
    );
    aliases.push("es_oseq".into());
    params.push(p.array(
        ints(idx.iter().map(|&i| changes[i].hlc).collect()),
        "bigint",
    ));
    aliases.push("es_hlc".into());
    Ok(unnest(&params, &aliases))
}

/// `UPDATE ... FROM unnest(...)` for rows that exist; `(change, es_ver)`.
/// `merged`: the changes that carry a field-merge result.
pub(crate) async fn write_updates(
    conn: &mut PgConnection,
    cx: &Ctx<'_>,
    changes: &[Change],
    idx: &[usize],
    merged: &[usize],
) -> Result<Vec<(usize, i64)>> {
    if idx.is_empty() {
        return Ok(Vec::new());
    }
    let t = cx.table;
    let mut p = Params::default();
    let node = p.text(cx.node);
    let from = bind_rows(cx, &mut p, changes, idx, true, merged)?;
    let sets: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .filter(|(k, _)| !t.key.contains(k))
        .map(|(k, c)| {
            let col = ident(&c.central);
            let v = sql::write_expr(&format!("u.a{k}"), c.ty, &cx.natives[k]);
            format!("{col} = CASE WHEN u.es_hv THEN {v} ELSE t.{col} END")
        })
        .chain([
            "es_deleted = u.es_del".to_string(),
            format!("es_origin = {node}"),
            "es_oseq = u.es_oseq".to_string(),
            "es_hlc = u.es_hlc".to_string(),
            format!("es_ver = nextval({})", version_seq(cx)),
            "es_txid = txid_current()".to_string(),
        ])
        .collect();
    let query = format!(
        "UPDATE {table} AS t SET {sets} FROM {from} WHERE {matches} RETURNING u.es_ord, t.es_ver",
        table = sql::table_ref(&t.central),
        sets = sets.join(", "),
        matches = sql::key_match(t, "t", |i| format!("u.a{i}")),
    );
    let rows = p
        .query(query)
        .fetch_all(&mut *conn)
        .await
        .map_err(ctx("updating rows"))?;
    positions_and_versions(rows, idx, "updated")
}

/// The table's version sequence, as a `regclass` literal for `nextval`.
fn version_seq(cx: &Ctx<'_>) -> String {
    sql::literal(&sql::meta(&cx.table.central, "es_version"))
}

fn positions_and_versions(
    rows: Vec<sqlx::postgres::PgRow>,
    idx: &[usize],
    what: &str,
) -> Result<Vec<(usize, i64)>> {
    if rows.len() != idx.len() {
        return Err(Error::internal(format!(
            "{} of {} locked rows were {what}",
            rows.len(),
            idx.len()
        )));
    }
    rows.iter()
        .map(|r| {
            let pos = ordinal(r, idx.len())?;
            let ver: i64 = r.try_get(1).map_err(ctx("reading es_ver"))?;
            Ok((idx[pos], ver))
        })
        .collect()
}

/// `INSERT ... SELECT FROM unnest(...) ON CONFLICT (key) DO NOTHING` for rows
/// the central does not have; `(change, es_ver)`.
pub(crate) async fn write_inserts(
    conn: &mut PgConnection,
    cx: &Ctx<'_>,
    changes: &[Change],
    idx: &[usize],
) -> Result<Vec<(usize, i64)>> {
    if idx.is_empty() {
        return Ok(Vec::new());
    }
    let t = cx.table;
    let mut p = Params::default();
    let node = p.text(cx.node);
    let tbl = p.text(cx.tbl.clone());
    let from = bind_rows(cx, &mut p, changes, idx, false, &[])?;
    let cols: Vec<String> = t.columns.iter().map(|c| ident(&c.central)).collect();
    let vals: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .map(|(k, c)| sql::write_expr(&format!("u.a{k}"), c.ty, &cx.natives[k]))
        .collect();
    let keys = sql::key_columns(t, None).join(", ");
    // OVERRIDING SYSTEM VALUE: an edge chooses the keys of the rows it
    // creates, also where the central column is GENERATED ALWAYS AS IDENTITY.
    // A (re)inserted key loses its tombstone (`cleared`).
    let query = format!(
        "WITH u AS (SELECT * FROM {from}),
              ins AS (INSERT INTO {table} ({cols}, es_deleted, es_origin, es_oseq, es_hlc,
                                           es_ver, es_txid)
                      OVERRIDING SYSTEM VALUE
                      SELECT {vals}, u.es_del, {node}, u.es_oseq, u.es_hlc,
                             nextval({seq}), txid_current()
                        FROM u ORDER BY {order}
                      ON CONFLICT ({keys}) DO NOTHING
                      RETURNING {keys}, es_ver),
              cleared AS (DELETE FROM {tombs} AS ts USING ins
                           WHERE ts.tbl = {tbl} AND ts.key = {key_json})
         SELECT u.es_ord, ins.es_ver FROM ins JOIN u ON {matches}",
        table = sql::table_ref(&t.central),
        cols = cols.join(", "),
        vals = vals.join(", "),
        seq = version_seq(cx),
        tombs = sql::meta(&t.central, "es_tombstones"),
        key_json = sql::key_json(t, &cx.natives, "ins"),
        matches = sql::key_match(t, "ins", |i| format!("u.a{i}")),
        // Key order, so two pushes inserting the same new keys cannot deadlock.
        order = t
            .key
            .iter()
            .map(|&i| sql::compare_expr(&format!("u.a{i}"), t.columns[i].ty))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let rows = p
        .query(query)
        .fetch_all(&mut *conn)
        .await
        .map_err(ctx("inserting rows"))?;
    if rows.len() != idx.len() {
        let done: HashSet<usize> = rows
            .iter()
            .filter_map(|r| ordinal(r, idx.len()).ok())
            .collect();
        let lost = (0..idx.len()).find(|k| !done.contains(k)).unwrap_or(0);
        return Err(Error::new(
            ErrorKind::Retryable,
            format!(
                "key {} was inserted by a concurrent transaction; the batch will be retried",
                t.describe_key(&changes[idx[lost]].key)
            ),
        ));
    }
    positions_and_versions(rows, idx, "inserted")
}

/// Hard deletes: `DELETE ... USING unnest(...)` and the tombstones, with this
/// node as origin, in one statement; `(change, tombstone es_ver)`.
pub(crate) async fn write_deletes(
    conn: &mut PgConnection,
    cx: &Ctx<'_>,
    changes: &[Change],
    idx: &[usize],
) -> Result<Vec<(usize, i64)>> {
    if idx.is_empty() {
        return Ok(Vec::new());
    }
    let t = cx.table;
    let mut p = Params::default();
    let node = p.text(cx.node);
    let tbl = p.text(cx.tbl.clone());
    let (mut params, mut aliases) = bind_keys(cx, &mut p, key_arrays(cx, changes, idx)?);
    let ints = |v: Vec<i64>| ColumnArray::Int(v.into_iter().map(Some).collect());
    params.push(p.array(
        ints(idx.iter().map(|&i| changes[i].version).collect()),
        "bigint",
    ));
    aliases.push("es_oseq".into());
    params.push(p.array(
        ints(idx.iter().map(|&i| changes[i].hlc).collect()),
        "bigint",
    ));
    aliases.push("es_hlc".into());
    let query = format!(
        "WITH d AS (DELETE FROM {table} AS t USING {unnest} WHERE {matches}
                    RETURNING u.es_ord, {key_json} AS es_key, u.es_oseq, u.es_hlc),
              ts AS (INSERT INTO {tombs} AS ts (tbl, key, es_ver, es_txid, es_hlc, es_origin, es_oseq)
                     SELECT {tbl}, d.es_key, nextval({seq}), txid_current(), d.es_hlc, {node}, d.es_oseq
                       FROM d
                     ON CONFLICT (tbl, key) DO UPDATE
                        SET es_ver = excluded.es_ver, es_txid = excluded.es_txid,
                            es_hlc = excluded.es_hlc, es_origin = excluded.es_origin,
                            es_oseq = excluded.es_oseq
                     RETURNING ts.key, ts.es_ver)
         SELECT d.es_ord, ts.es_ver FROM d JOIN ts ON ts.key = d.es_key",
        table = sql::table_ref(&t.central),
        unnest = unnest(&params, &aliases),
        matches = sql::key_match(t, "t", |i| format!("u.a{i}")),
        key_json = sql::key_json(t, &cx.natives, "t"),
        tombs = sql::meta(&t.central, "es_tombstones"),
        seq = version_seq(cx),
    );
    let rows = p
        .query(query)
        .fetch_all(&mut *conn)
        .await
        .map_err(ctx("deleting rows"))?;
    positions_and_versions(rows, idx, "deleted")
}
