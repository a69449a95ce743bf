//! The set-based statements of a push. Changes are staged in the table's
//! global temporary table (one column per mapped column, typed like it) with
//! one array-bound `INSERT` (ODPI-C's `executeMany`: one round trip for the
//! whole batch), then every step is one statement joining the stage,
//! whatever the batch size:
//!
//! - [`fetch_rows_sql`], [`fetch_tombs_sql`]: lock the rows (`FOR UPDATE`)
//!   and the tombstones of the staged keys;
//! - [`update_sql`]: a `MERGE ... WHEN MATCHED THEN UPDATE` from the stage;
//! - [`insert_sql`]: `INSERT ... SELECT` for new rows;
//! - [`delete_sql`], [`tombs_merge_sql`]: hard deletes and their tombstones
//!   (origin = the node);
//! - [`versions_sql`]: the versions the written rows and tombstones got.
//!
//! Every builder is a pure function of the mapping, so the golden files pin
//! the exact SQL.

use edgesync_core::conflict::CentralRow;
use edgesync_core::{Change, Error, ErrorKind, Result, TableMapping, Value};
use oracle::sql_type::{OracleType, ToSql};
use oracle::Connection;

use crate::error::{code_of, ctx};
use crate::push::{Ctx, Current};
use crate::sql::{self, ident, Native};
use crate::types::{self, Bind};

/// Fixed stage columns before the value columns.
const FIXED: usize = 6;

/// Rows per array-bound execution.
const BATCH_ROWS: usize = 500;

/// What a staged row is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Looked up (fetch), not written.
    Look = 0,
    /// An update of an existing row.
    Update = 1,
    /// An insert of a new row.
    Insert = 2,
    /// A hard delete.
    Delete = 3,
}

/// The names a table's statements use.
pub struct Names {
    /// The table.
    pub table: String,
    /// Its staging table.
    pub stage: String,
    /// The owner's tombstones.
    pub tombs: String,
    /// The owner's `es_nodes`.
    pub nodes: String,
}

impl Names {
    /// The names for `t`.
    pub fn of(t: &TableMapping, default_owner: &str) -> Names {
        Names {
            table: sql::table_ref(&t.central, default_owner),
            stage: sql::object("stg", &t.central, default_owner),
            tombs: sql::meta(&t.central, default_owner, "es_tombstones"),
            nodes: sql::meta(&t.central, default_owner, "es_nodes"),
        }
    }
}

/// The stage column of mapping column `i`.
fn stage_col(i: usize) -> String {
    format!("s.a{i}")
}

/// The array-bound `INSERT` into the stage for the mapping columns `cols`.
pub fn stage_insert_sql(t: &TableMapping, n: &Names, cols: &[usize]) -> String {
    let names: Vec<String> = cols.iter().map(|k| format!("a{k}")).collect();
    let values: Vec<String> = (0..FIXED)
        .map(|j| format!(":{}", j + 1))
        .chain(
            cols.iter()
                .enumerate()
                .map(|(j, &k)| sql::bind_expr(&format!(":{}", FIXED + j + 1), t.columns[k].ty)),
        )
        .collect();
    format!(
        "INSERT INTO {} (es_ord, es_act, es_hv, es_del, es_oseq, es_hlc, {}) VALUES ({})",
        n.stage,
        names.join(", "),
        values.join(", ")
    )
}

/// Lock and read the current rows of the staged keys.
pub fn fetch_rows_sql(t: &TableMapping, n: &Names) -> String {
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| sql::read_expr(&format!("t.{}", ident(&c.central)), c.ty))
        .collect();
    format!(
        "SELECT s.es_ord, {cols}, t.es_ver, t.es_deleted, t.es_hlc, t.es_origin, t.es_oseq
  FROM {stage} s JOIN {table} t ON {matches}
   FOR UPDATE OF t.es_ver",
        cols = cols.join(", "),
        stage = n.stage,
        table = n.table,
        matches = sql::key_match(t, "t", stage_col),
    )
}

/// Lock and read the tombstones of the staged keys. `:1` = table id.
pub fn fetch_tombs_sql(t: &TableMapping, n: &Names) -> String {
    format!(
        "SELECT s.es_ord, ts.es_ver, ts.es_hlc, ts.es_origin, ts.es_oseq
  FROM {stage} s JOIN {tombs} ts ON ts.tbl = :1 AND ts.k = {key_json}
   FOR UPDATE OF ts.es_ver",
        stage = n.stage,
        tombs = n.tombs,
        key_json = sql::key_json(t, stage_col),
    )
}

/// Update the rows staged with [`Act::Update`]. `:1` = node.
pub fn update_sql(t: &TableMapping, n: &Names) -> String {
    let sets: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .filter(|(k, _)| !t.key.contains(k))
        .map(|(k, c)| {
            let col = ident(&c.central);
            format!("t.{col} = CASE WHEN s.es_hv = 1 THEN s.a{k} ELSE t.{col} END")
        })
        .chain([
            "t.es_deleted = s.es_del".to_string(),
            "t.es_origin = :1".to_string(),
            "t.es_oseq = s.es_oseq".to_string(),
            "t.es_hlc = s.es_hlc".to_string(),
        ])
        .collect();
    format!(
        "MERGE INTO {table} t
USING (SELECT * FROM {stage} WHERE es_act = 1) s
   ON ({matches})
 WHEN MATCHED THEN UPDATE SET {sets}",
        table = n.table,
        stage = n.stage,
        matches = sql::key_match(t, "t", stage_col),
        sets = sets.join(", "),
    )
}

/// Insert the rows staged with [`Act::Insert`]. `:1` = node.
pub fn insert_sql(t: &TableMapping, n: &Names) -> String {
    let cols: Vec<String> = t.columns.iter().map(|c| ident(&c.central)).collect();
    let vals: Vec<String> = (0..t.columns.len()).map(|k| format!("s.a{k}")).collect();
    format!(
        "INSERT INTO {table} ({cols}, es_deleted, es_origin, es_oseq, es_hlc)
SELECT {vals}, s.es_del, :1, s.es_oseq, s.es_hlc FROM {stage} s WHERE s.es_act = 2",
        table = n.table,
        cols = cols.join(", "),
        vals = vals.join(", "),
        stage = n.stage,
    )
}

/// Delete the rows staged with [`Act::Delete`].
pub fn delete_sql(t: &TableMapping, n: &Names) -> String {
    format!(
        "DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM {stage} s WHERE s.es_act = 3 AND {matches})",
        table = n.table,
        stage = n.stage,
        matches = sql::key_match(t, "t", stage_col),
    )
}

/// Write the tombstones of the rows staged with [`Act::Delete`], with the
/// node as origin. `:1` = table id, `:2` = node, `:3` = table id, `:4` =
/// node.
pub fn tombs_merge_sql(t: &TableMapping, n: &Names) -> String {
    format!(
        "MERGE INTO {tombs} ts
USING (SELECT {key_json} AS k, s.es_oseq, s.es_hlc FROM {stage} s WHERE s.es_act = 3) d
   ON (ts.tbl = :1 AND ts.k = d.k)
 WHEN MATCHED THEN UPDATE SET ts.es_hlc = d.es_hlc, ts.es_origin = :2, ts.es_oseq = d.es_oseq
 WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc, es_origin, es_oseq)
      VALUES (:3, d.k, d.es_hlc, :4, d.es_oseq)",
        tombs = n.tombs,
        stage = n.stage,
        key_json = sql::key_json(t, stage_col),
    )
}

/// The versions of everything written. `:1` = table id.
pub fn versions_sql(t: &TableMapping, n: &Names) -> String {
    format!(
        "SELECT s.es_ord, t.es_ver FROM {stage} s JOIN {table} t ON {matches} WHERE s.es_act IN (1, 2)
UNION ALL
SELECT s.es_ord, ts.es_ver FROM {stage} s JOIN {tombs} ts ON ts.tbl = :1 AND ts.k = {key_json} WHERE s.es_act = 3",
        stage = n.stage,
        table = n.table,
        tombs = n.tombs,
        matches = sql::key_match(t, "t", stage_col),
        key_json = sql::key_json(t, stage_col),
    )
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

/// One row to stage.
pub(crate) struct StageRow<'a> {
    pub ord: usize,
    pub act: Act,
    pub change: &'a Change,
    /// Whether to give the row no origin sequence (a field-merge result).
    pub no_oseq: bool,
}

/// Empty the stage and fill it with `rows` in one array-bound execution:
/// all mapped columns, or only the key columns when `keys_only`.
pub(crate) fn stage(
    conn: &Connection,
    cx: &Ctx<'_>,
    rows: &[StageRow<'_>],
    keys_only: bool,
) -> Result<()> {
    conn.execute(&format!("DELETE FROM {}", cx.names.stage), &[])
        .map_err(ctx("emptying the stage"))?;
    if rows.is_empty() {
        return Ok(());
    }
    let t = cx.table;
    let cols: Vec<usize> = if keys_only {
        t.key.clone()
    } else {
        (0..t.columns.len()).collect()
    };
    let sql = stage_insert_sql(t, &cx.names, &cols);
    let mut batch = conn
        .batch(&sql, rows.len().min(BATCH_ROWS))
        .build()
        .map_err(ctx("preparing the stage"))?;
    for j in 1..=FIXED {
        batch
            .set_type(j, &OracleType::Int64)
            .map_err(ctx("preparing the stage"))?;
    }
    for (j, &k) in cols.iter().enumerate() {
        let native = if keys_only {
            key_native()
        } else {
            cx.natives[k].clone()
        };
        batch
            .set_type(
                FIXED + j + 1,
                &types::null(t.columns[k].ty, &native).oratype(),
            )
            .map_err(ctx("preparing the stage"))?;
    }
    for r in rows {
        let c = r.change;
        let mut binds: Vec<Bind> = vec![
            Bind::Int(Some(r.ord as i64)),
            Bind::Int(Some(r.act as i64)),
            Bind::Int(Some(i64::from(c.values.is_some()))),
            Bind::Int(Some(i64::from(c.deleted))),
            Bind::Int((!r.no_oseq).then_some(c.version)),
            Bind::Int(Some(c.hlc)),
        ];
        for &k in &cols {
            let v = match (&c.values, t.key.iter().position(|&i| i == k)) {
                (Some(vals), _) => &vals[k],
                (None, Some(j)) => &c.key[j],
                (None, None) => &Value::Null,
            };
            let native = if keys_only {
                key_native()
            } else {
                cx.natives[k].clone()
            };
            binds.push(
                types::bind(t.columns[k].ty, &native, v)
                    .map_err(|e| value_error(cx, k, &c.key, e))?,
            );
        }
        let refs: Vec<&dyn ToSql> = binds.iter().map(|b| b as &dyn ToSql).collect();
        batch.append_row(&refs).map_err(ctx("staging the batch"))?;
    }
    batch.execute().map_err(ctx("staging the batch"))
}

/// Key columns are never LOBs and always compare exactly.
pub(crate) fn key_native() -> Native {
    Native {
        decl: String::new(),
        fraction: None,
        lob: false,
        byte_limit: None,
    }
}

/// Lock and read the current row, or else tombstone, of each change in
/// `idx`; aligned with `idx`.
pub(crate) fn fetch_current(
    conn: &Connection,
    cx: &Ctx<'_>,
    changes: &[Change],
    idx: &[usize],
) -> Result<Vec<Option<Current>>> {
    let rows: Vec<StageRow<'_>> = idx
        .iter()
        .enumerate()
        .map(|(pos, &i)| StageRow {
            ord: pos,
            act: Act::Look,
            change: &changes[i],
            no_oseq: false,
        })
        .collect();
    stage(conn, cx, &rows, true)?;
    let t = cx.table;
    let n = t.columns.len();
    let mut out: Vec<Option<Current>> = vec![None; idx.len()];
    let found = conn
        .query(&fetch_rows_sql(t, &cx.names), &[])
        .map_err(ctx("locking the current rows"))?;
    for r in found {
        let r = r.map_err(ctx("reading the current rows"))?;
        let get = || ctx("reading the current rows");
        let pos = ordinal(r.get(0).map_err(get())?, idx.len())?;
        let mut values = Vec::with_capacity(n);
        for (k, c) in t.columns.iter().enumerate() {
            let what = format!("{}.{}", t.central, c.central);
            values.push(types::decode(&r, k + 1, c.ty, &what)?);
        }
        out[pos] = Some(Current {
            row: CentralRow {
                values: Some(values),
                version: r.get(n + 1).map_err(get())?,
                deleted: r.get::<usize, i64>(n + 2).map_err(get())? != 0,
                hlc: r.get(n + 3).map_err(get())?,
                origin: r.get(n + 4).map_err(get())?,
            },
            oseq: r.get(n + 5).map_err(get())?,
        });
    }
    let tombs = conn
        .query(&fetch_tombs_sql(t, &cx.names), &[&cx.tbl])
        .map_err(ctx("locking the tombstones"))?;
    for r in tombs {
        let r = r.map_err(ctx("reading the tombstones"))?;
        let get = || ctx("reading the tombstones");
        let pos = ordinal(r.get(0).map_err(get())?, idx.len())?;
        if out[pos].is_none() {
            out[pos] = Some(Current {
                row: CentralRow {
                    values: None,
                    deleted: true,
                    version: r.get(1).map_err(get())?,
                    hlc: r.get(2).map_err(get())?,
                    origin: r.get(3).map_err(get())?,
                },
                oseq: r.get(4).map_err(get())?,
            });
        }
    }
    Ok(out)
}

fn ordinal(ord: i64, len: usize) -> Result<usize> {
    usize::try_from(ord)
        .ok()
        .filter(|&p| p < len)
        .ok_or_else(|| Error::internal(format!("row position {ord} out of range")))
}

/// Stage and write the decided changes; `(change index, version)` for each
/// write (for a hard delete, its tombstone's version).
pub(crate) fn write(
    conn: &Connection,
    cx: &Ctx<'_>,
    writes: &[Change],
    plan: &[(usize, Act)],
    merged: &[usize],
) -> Result<Vec<(usize, i64)>> {
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<StageRow<'_>> = plan
        .iter()
        .enumerate()
        .map(|(pos, &(i, act))| StageRow {
            ord: pos,
            act,
            change: &writes[i],
            no_oseq: merged.contains(&i),
        })
        .collect();
    stage(conn, cx, &rows, false)?;
    let t = cx.table;
    let node = cx.node.to_string();
    let has = |a: Act| plan.iter().any(|(_, x)| *x == a);
    if has(Act::Update) {
        conn.execute(&update_sql(t, &cx.names), &[&node])
            .map_err(ctx("updating rows"))?;
    }
    if has(Act::Insert) {
        conn.execute(&insert_sql(t, &cx.names), &[&node])
            .map_err(ctx("inserting rows"))
            .map_err(|e| {
                if code_of(&e) == Some(1) {
                    Error::new(
                        ErrorKind::Retryable,
                        format!(
                            "a key of {} was inserted by a concurrent transaction; the batch will be retried",
                            t.central
                        ),
                    )
                    .with_source(e)
                } else {
                    e
                }
            })?;
    }
    if has(Act::Delete) {
        conn.execute(&delete_sql(t, &cx.names), &[])
            .map_err(ctx("deleting rows"))?;
        conn.execute(
            &tombs_merge_sql(t, &cx.names),
            &[&cx.tbl, &node, &cx.tbl, &node],
        )
        .map_err(ctx("writing tombstones"))?;
    }
    let mut out = Vec::with_capacity(plan.len());
    let rows = conn
        .query(&versions_sql(t, &cx.names), &[&cx.tbl])
        .map_err(ctx("reading the new versions"))?;
    for r in rows {
        let r = r.map_err(ctx("reading the new versions"))?;
        let pos = ordinal(
            r.get(0).map_err(ctx("reading the new versions"))?,
            plan.len(),
        )?;
        out.push((
            plan[pos].0,
            r.get(1).map_err(ctx("reading the new versions"))?,
        ));
    }
    if out.len() != plan.len() {
        return Err(Error::internal(format!(
            "{} of {} written rows of {} have a version",
            out.len(),
            plan.len(),
            t.central
        )));
    }
    Ok(out)
}
