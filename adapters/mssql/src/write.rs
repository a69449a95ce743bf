//! The set-based statements of a push. Changes are staged in a session
//! temporary table (`#es_stage`, one column per mapped column, typed and
//! collated like the user table's) by multi-row `INSERT ... VALUES`
//! statements of up to 1000 rows (SQL Server's limits: 1000 rows per
//! `VALUES`, 2100 parameters per request), then every step is one statement
//! joining the stage, whatever the batch size:
//!
//! - [`fetch_sql`]: lock the rows (`UPDLOCK, HOLDLOCK`: also the key range of
//!   a key with no row, so a concurrent insert of it waits) and the
//!   tombstones of the keys with no row;
//! - [`update_sql`]: `UPDATE ... FROM` the stage for rows that exist;
//! - [`insert_sql`]: `INSERT ... SELECT` for rows that do not;
//! - [`delete_sql`]: `DELETE ... FROM` and a `MERGE` of the tombstones
//!   (origin = the node);
//! - [`versions_sql`]: the rowversions the written rows and tombstones got.
//!
//! Every builder is a pure function of the mapping, so the golden files pin
//! the exact SQL.

use edgesync_core::conflict::CentralRow;
use edgesync_core::{Change, Error, ErrorKind, Result, TableMapping, Value};
use tiberius::Row;

use crate::connection::Conn;
use crate::push::{Ctx, Current};
use crate::sql::{self, ident, Native};
use crate::types::{self, get_bool, get_int, get_text, need_int, Param};

/// The stage table.
pub const STAGE: &str = "#es_stage";

/// Fixed stage columns before the value columns: position, action, has
/// values, deleted, origin sequence, HLC stamp.
const FIXED: usize = 6;

/// SQL Server's limit of rows in one `VALUES` list.
const MAX_VALUES_ROWS: usize = 1000;

/// Parameters per request, under SQL Server's 2100.
const MAX_PARAMS: usize = 2000;

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

/// `CREATE TABLE #es_stage (...)`, run as a plain batch (see
/// `connection.rs`: a temporary table made by a parameterized statement would
/// not outlive it).
pub fn stage_ddl(table: &TableMapping, natives: &[Native]) -> String {
    let cols: Vec<String> = table
        .columns
        .iter()
        .zip(natives)
        .enumerate()
        .map(|(k, (_, n))| format!("a{k} {} NULL", n.staging_decl()))
        .collect();
    format!(
        "IF OBJECT_ID(N'tempdb..{STAGE}') IS NOT NULL DROP TABLE {STAGE};\n\
         CREATE TABLE {STAGE} (es_ord int NOT NULL PRIMARY KEY, es_act tinyint NOT NULL, \
         es_hv bit NOT NULL, es_del bit NOT NULL, es_oseq bigint NULL, es_hlc bigint NOT NULL, {});",
        cols.join(", ")
    )
}

/// `INSERT INTO #es_stage (...) VALUES (...), ...` for `rows` rows of the
/// mapping columns `cols`.
pub fn stage_insert_sql(table: &TableMapping, cols: &[usize], rows: usize) -> String {
    let per_row = FIXED + cols.len();
    let names: Vec<String> = cols.iter().map(|k| format!("a{k}")).collect();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p = |j: usize| format!("@P{}", 1 + r * per_row + j);
            let mut v: Vec<String> = (0..FIXED).map(p).collect();
            v.extend(
                cols.iter()
                    .enumerate()
                    .map(|(j, &k)| sql::bind_expr(&p(FIXED + j), table.columns[k].ty)),
            );
            format!("({})", v.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {STAGE} (es_ord, es_act, es_hv, es_del, es_oseq, es_hlc, {}) VALUES {}",
        names.join(", "),
        values.join(", ")
    )
}

/// The stage column of mapping column `i`.
fn stage_col(i: usize) -> String {
    format!("s.a{i}")
}

fn tombs(table: &TableMapping) -> String {
    sql::meta(&table.central, "es_tombstones")
}

/// Lock and read the current row, or else tombstone, of every staged key.
/// `@P1` = table id.
pub fn fetch_sql(table: &TableMapping) -> String {
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|c| sql::read_expr(&format!("t.{}", ident(&c.central)), c.ty))
        .collect();
    format!(
        "SELECT s.es_ord, {cols}, CAST(t.es_ver AS bigint), t.es_deleted, t.es_hlc, t.es_origin, t.es_oseq,
       CAST(ts.es_ver AS bigint), ts.es_hlc, ts.es_origin, ts.es_oseq
  FROM {STAGE} AS s
  LEFT JOIN {table} AS t WITH (UPDLOCK, HOLDLOCK) ON {matches}
  LEFT JOIN {tombs} AS ts WITH (UPDLOCK, HOLDLOCK)
         ON t.es_ver IS NULL AND ts.tbl = @P1 AND ts.k = {key_json}
 ORDER BY s.es_ord",
        cols = cols.join(", "),
        table = sql::table_ref(&table.central),
        matches = sql::key_match(table, "t", stage_col),
        tombs = tombs(table),
        key_json = sql::key_json(table, stage_col),
    )
}

/// Update the rows staged with [`Act::Update`]. `@P1` = node.
pub fn update_sql(table: &TableMapping) -> String {
    let sets: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(k, _)| !table.key.contains(k))
        .map(|(k, c)| {
            let col = ident(&c.central);
            format!("{col} = CASE WHEN s.es_hv = 1 THEN s.a{k} ELSE t.{col} END")
        })
        .chain([
            "es_deleted = s.es_del".to_string(),
            "es_origin = @P1".to_string(),
            "es_oseq = s.es_oseq".to_string(),
            "es_hlc = s.es_hlc".to_string(),
        ])
        .collect();
    format!(
        "UPDATE t SET {sets}\n  FROM {table} AS t JOIN {STAGE} AS s ON {matches}\n WHERE s.es_act = 1",
        sets = sets.join(", "),
        table = sql::table_ref(&table.central),
        matches = sql::key_match(table, "t", stage_col),
    )
}

/// Insert the rows staged with [`Act::Insert`] (with `IDENTITY_INSERT` when
/// a mapped column is an identity: an edge chooses the keys of the rows it
/// creates). `@P1` = node.
pub fn insert_sql(table: &TableMapping, natives: &[Native]) -> String {
    let t = sql::table_ref(&table.central);
    let cols: Vec<String> = table.columns.iter().map(|c| ident(&c.central)).collect();
    let vals: Vec<String> = (0..table.columns.len())
        .map(|k| format!("s.a{k}"))
        .collect();
    let insert = format!(
        "INSERT INTO {t} ({cols}, es_deleted, es_origin, es_oseq, es_hlc)\n\
         SELECT {vals}, s.es_del, @P1, s.es_oseq, s.es_hlc FROM {STAGE} AS s WHERE s.es_act = 2",
        cols = cols.join(", "),
        vals = vals.join(", "),
    );
    if natives.iter().any(|n| n.identity) {
        format!("SET IDENTITY_INSERT {t} ON;\n{insert};\nSET IDENTITY_INSERT {t} OFF;")
    } else {
        insert
    }
}

/// Delete the rows staged with [`Act::Delete`] and write their tombstones
/// with the node as origin. `@P1` = node, `@P2` = table id.
pub fn delete_sql(table: &TableMapping) -> String {
    format!(
        "DELETE t FROM {table} AS t JOIN {STAGE} AS s ON {matches} WHERE s.es_act = 3;
MERGE {tombs} WITH (HOLDLOCK) AS ts
USING (SELECT {key_json} AS k, s.es_oseq, s.es_hlc FROM {STAGE} AS s WHERE s.es_act = 3) AS d
   ON ts.tbl = @P2 AND ts.k = d.k
 WHEN MATCHED THEN UPDATE SET es_hlc = d.es_hlc, es_origin = @P1, es_oseq = d.es_oseq
 WHEN NOT MATCHED THEN INSERT (tbl, k, es_hlc, es_origin, es_oseq)
      VALUES (@P2, d.k, d.es_hlc, @P1, d.es_oseq);",
        table = sql::table_ref(&table.central),
        matches = sql::key_match(table, "t", stage_col),
        tombs = tombs(table),
        key_json = sql::key_json(table, stage_col),
    )
}

/// The versions of everything written: rows (updates, inserts) and
/// tombstones (hard deletes). `@P1` = table id.
pub fn versions_sql(table: &TableMapping) -> String {
    format!(
        "SELECT s.es_ord, CAST(t.es_ver AS bigint) FROM {STAGE} AS s
  JOIN {table} AS t ON {matches} WHERE s.es_act IN (1, 2)
UNION ALL
SELECT s.es_ord, CAST(ts.es_ver AS bigint) FROM {STAGE} AS s
  JOIN {tombs} AS ts ON ts.tbl = @P1 AND ts.k = {key_json} WHERE s.es_act = 3",
        table = sql::table_ref(&table.central),
        matches = sql::key_match(table, "t", stage_col),
        tombs = tombs(table),
        key_json = sql::key_json(table, stage_col),
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

/// Empty the stage and fill it with `rows`: all mapped columns, or only the
/// key columns when `keys_only`.
pub(crate) async fn stage(
    conn: &mut Conn,
    cx: &Ctx<'_>,
    rows: &[StageRow<'_>],
    keys_only: bool,
) -> Result<()> {
    conn.exec(&format!("DELETE FROM {STAGE}"), &[], "emptying the stage")
        .await?;
    let t = cx.table;
    let cols: Vec<usize> = if keys_only {
        t.key.clone()
    } else {
        (0..t.columns.len()).collect()
    };
    let per_row = FIXED + cols.len();
    let chunk = (MAX_PARAMS / per_row).clamp(1, MAX_VALUES_ROWS);
    for part in rows.chunks(chunk) {
        let mut params = Vec::with_capacity(part.len() * per_row);
        for r in part {
            let c = r.change;
            params.extend([
                Param::Int(Some(r.ord as i64)),
                Param::Int(Some(r.act as i64)),
                Param::Bool(Some(c.values.is_some())),
                Param::Bool(Some(c.deleted)),
                Param::Int((!r.no_oseq).then_some(c.version)),
                Param::Int(Some(c.hlc)),
            ]);
            for &k in &cols {
                let v = match (&c.values, t.key.iter().position(|&i| i == k)) {
                    (Some(vals), _) => &vals[k],
                    (None, Some(j)) => &c.key[j],
                    (None, None) => &Value::Null,
                };
                params.push(
                    types::param(t.columns[k].ty, v).map_err(|e| value_error(cx, k, &c.key, e))?,
                );
            }
        }
        conn.exec(
            &stage_insert_sql(t, &cols, part.len()),
            &params,
            "staging the batch",
        )
        .await?;
    }
    Ok(())
}

/// Lock and read the current row, or else tombstone, of each change in
/// `idx`; aligned with `idx`.
pub(crate) async fn fetch_current(
    conn: &mut Conn,
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
    stage(conn, cx, &rows, true).await?;
    let found = conn
        .query(
            &fetch_sql(cx.table),
            &[Param::Text(Some(cx.tbl.clone()))],
            "locking the current rows",
        )
        .await?;
    let mut out: Vec<Option<Current>> = vec![None; idx.len()];
    for r in &found {
        let pos = ordinal(r, idx.len())?;
        out[pos] = current(cx, r)?;
    }
    Ok(out)
}

fn current(cx: &Ctx<'_>, r: &Row) -> Result<Option<Current>> {
    let t = cx.table;
    let n = t.columns.len();
    let cells: Vec<_> = r.cells().map(|(_, d)| d).collect();
    if let Some(version) = get_int(r, n + 1)? {
        let mut values = Vec::with_capacity(n);
        for (k, c) in t.columns.iter().enumerate() {
            let what = format!("{}.{}", t.central, c.central);
            values.push(types::decode(cells[k + 1], c.ty, &what)?);
        }
        return Ok(Some(Current {
            row: CentralRow {
                values: Some(values),
                deleted: get_bool(r, n + 2)?.unwrap_or(false),
                version,
                hlc: get_int(r, n + 3)?.unwrap_or(0),
                origin: get_text(r, n + 4)?,
            },
            oseq: get_int(r, n + 5)?,
        }));
    }
    if let Some(version) = get_int(r, n + 6)? {
        return Ok(Some(Current {
            row: CentralRow {
                values: None,
                deleted: true,
                version,
                hlc: get_int(r, n + 7)?.unwrap_or(0),
                origin: get_text(r, n + 8)?,
            },
            oseq: get_int(r, n + 9)?,
        }));
    }
    Ok(None)
}

/// The 0-based stage position of a result row.
fn ordinal(row: &Row, len: usize) -> Result<usize> {
    let ord = need_int(row, 0)?;
    usize::try_from(ord)
        .ok()
        .filter(|&p| p < len)
        .ok_or_else(|| Error::internal(format!("row position {ord} out of range")))
}

/// Stage and write the decided changes; `(change index, version)` for each
/// write (for a hard delete, its tombstone's version).
pub(crate) async fn write(
    conn: &mut Conn,
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
    stage(conn, cx, &rows, false).await?;
    let node = Param::Text(Some(cx.node.to_string()));
    let tbl = Param::Text(Some(cx.tbl.clone()));
    let has = |a: Act| plan.iter().any(|(_, x)| *x == a);
    if has(Act::Update) {
        conn.exec(
            &update_sql(cx.table),
            std::slice::from_ref(&node),
            "updating rows",
        )
        .await?;
    }
    if has(Act::Insert) {
        conn.exec(
            &insert_sql(cx.table, &cx.natives),
            std::slice::from_ref(&node),
            "inserting rows",
        )
        .await
        .map_err(|e| {
            if matches!(crate::error::code_of(&e), Some(2627 | 2601)) {
                Error::new(
                    ErrorKind::Retryable,
                    format!(
                        "a key of {} was inserted by a concurrent transaction; the batch will be retried",
                        cx.table.central
                    ),
                )
                .with_source(e)
            } else {
                e
            }
        })?;
    }
    if has(Act::Delete) {
        conn.exec(&delete_sql(cx.table), &[node, tbl.clone()], "deleting rows")
            .await?;
    }
    let found = conn
        .query(&versions_sql(cx.table), &[tbl], "reading the new versions")
        .await?;
    if found.len() != plan.len() {
        return Err(Error::internal(format!(
            "{} of {} written rows of {} have a version",
            found.len(),
            plan.len(),
            cx.table.central
        )));
    }
    found
        .iter()
        .map(|r| {
            let pos = ordinal(r, plan.len())?;
            Ok((plan[pos].0, need_int(r, 1)?))
        })
        .collect()
}
