//! `conflicts resolve` on Oracle: settle one parked (manual) conflict in one
//! transaction.
//!
//! `--keep local` writes the parked row as a central *application* would:
//! the session is not marked as an apply, so the table's triggers stamp it
//! (new version and SCN, HLC tick past the row's stamp, `es_origin` NULL) and
//! keep the tombstones. Every node, the one whose push was parked included,
//! then pulls it like any central change.
//!
//! Conflict ids are per schema (each schema has its own log); an id found in
//! two schemas' logs is refused as ambiguous rather than guessed.

use edgesync_core::{ColType, ConflictRecord, Error, ErrorKind, Keep, QualifiedName, Result};
use oracle::sql_type::ToSql;
use oracle::Connection;

use crate::error::ctx;
use crate::meta::{owners_with, parse_row, record, NamedRow, RECORD_COLUMNS};
use crate::push::set_applying;
use crate::schema::{columns, find_table};
use crate::sql::{self, ident};
use crate::types::{self, Bind};

/// `resolve_conflict` for the trait; runs on a worker's session.
pub fn resolve_conflict(
    conn: &Connection,
    default_owner: &str,
    db_unicode: bool,
    id: i64,
    keep: Keep,
) -> Result<ConflictRecord> {
    let mut found = Vec::new();
    for o in owners_with(conn, "ES_CONFLICTS")? {
        let n = conn
            .query_row_as::<i64>(
                &format!(
                    "SELECT COUNT(*) FROM {}.es_conflicts WHERE id = :1",
                    ident(&o)
                ),
                &[&id],
            )
            .map_err(ctx("reading the conflict log"))?;
        if n > 0 {
            found.push(o);
        }
    }
    let owner = match found.as_slice() {
        [] => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("there is no conflict #{id} (see `edgesync conflicts list --all`)"),
            ))
        }
        [one] => one.clone(),
        many => {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "conflict #{id} is ambiguous: the conflict logs of schemas {} each have one; \
                     resolve it in the database",
                    many.join(", ")
                ),
            ))
        }
    };
    set_applying(conn, false)?;
    let doing = format!("resolving conflict #{id}");
    match settle(conn, &owner, default_owner, db_unicode, id, keep) {
        Ok(r) => {
            conn.commit().map_err(ctx(&doing))?;
            Ok(r)
        }
        Err(e) => {
            conn.rollback().ok();
            Err(e.context(doing))
        }
    }
}

fn settle(
    conn: &Connection,
    owner: &str,
    default_owner: &str,
    db_unicode: bool,
    id: i64,
    keep: Keep,
) -> Result<ConflictRecord> {
    let log = format!("{}.es_conflicts", ident(owner));
    let row = conn
        .query_row(
            &format!(
                "SELECT tbl, key_json, local_json, is_open FROM {log} WHERE id = :1 FOR UPDATE"
            ),
            &[&id],
        )
        .map_err(ctx("reading the conflict log"))?;
    let get = || ctx("reading the conflict log");
    let table: String = row.get(0).map_err(get())?;
    if row.get::<usize, i64>(3).map_err(get())? == 0 {
        return Err(Error::new(
            ErrorKind::Constraint,
            format!("conflict #{id} is already resolved (see `edgesync conflicts list --all`)"),
        ));
    }
    if keep == Keep::Local {
        let key = parse_row(row.get(1).map_err(get())?, "key")?.unwrap_or_default();
        let local = parse_row(row.get(2).map_err(get())?, "local row")?;
        let q = QualifiedName::parse(&table);
        write_local(conn, &q, default_owner, db_unicode, &key, local.as_ref())
            .map_err(|e| e.context(format!("writing the kept row to {table}")))?;
    }
    let kept = keep.as_str();
    conn.execute(
        &format!(
            "UPDATE {log} SET is_open = 0, resolved_at = SYSTIMESTAMP, kept = :1,
                    result_json = CASE WHEN :2 = 'local' THEN local_json ELSE result_json END
              WHERE id = :3"
        ),
        &[&kept, &kept, &id],
    )
    .map_err(ctx("closing the conflict"))?;
    let r = conn
        .query_row(
            &format!("SELECT {RECORD_COLUMNS} FROM {log} WHERE id = :1"),
            &[&id],
        )
        .map_err(ctx("reading the conflict back"))?;
    record(&r)
}

/// The statement writing a kept row: `MERGE` it in by key. The binds are
/// the named values in order, once for the source row.
pub(crate) fn upsert_sql(table: &str, cols: &[(String, ColType)], key: &[usize]) -> String {
    let source: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(k, (_, ty))| format!("{} AS a{k}", sql::bind_expr(&format!(":{}", k + 1), *ty)))
        .collect();
    let matches: Vec<String> = key
        .iter()
        .map(|&k| format!("t.{} = s.a{k}", ident(&cols[k].0)))
        .collect();
    let sets: Vec<String> = (0..cols.len())
        .filter(|k| !key.contains(k))
        .map(|k| format!("t.{} = s.a{k}", ident(&cols[k].0)))
        .chain(["t.es_deleted = 0".to_string()])
        .collect();
    let names: Vec<String> = cols.iter().map(|(n, _)| ident(n)).collect();
    let values: Vec<String> = (0..cols.len()).map(|k| format!("s.a{k}")).collect();
    format!(
        "MERGE INTO {table} t
USING (SELECT {} FROM dual) s
   ON ({})
 WHEN MATCHED THEN UPDATE SET {}
 WHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
        source.join(", "),
        matches.join(" AND "),
        sets.join(", "),
        names.join(", "),
        values.join(", ")
    )
}

/// Write the parked local row (`None`: its delete) as an application write.
fn write_local(
    conn: &Connection,
    table: &QualifiedName,
    default_owner: &str,
    db_unicode: bool,
    key: &NamedRow,
    local: Option<&NamedRow>,
) -> Result<()> {
    let found = find_table(conn, table, default_owner)?
        .ok_or_else(|| Error::schema(format!("central table {table} no longer exists")))?;
    let catalog = columns(conn, &found, db_unicode)?;
    let named: &NamedRow = local.unwrap_or(key);
    let mut cols = Vec::new();
    let mut binds = Vec::new();
    for (name, value) in named {
        let col = catalog
            .iter()
            .find(|c| c.name == *name)
            .or_else(|| catalog.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
            .ok_or_else(|| {
                Error::schema(format!("central table {table} no longer has column {name}"))
            })?;
        let ty = types::col_type(&col.info).map_err(|native| {
            Error::schema(format!("central column {table}.{name} has type {native}"))
        })?;
        binds.push(
            types::bind(ty, &col.info.native(), value)
                .map_err(|e| Error::value(format!("{table}.{name}: {}", e.message())))?,
        );
        cols.push((col.name.clone(), ty));
    }
    let key_idx = key
        .iter()
        .map(|(k, _)| {
            cols.iter()
                .position(|(c, _)| c.eq_ignore_ascii_case(k))
                .ok_or_else(|| Error::internal(format!("key column {k} has no value")))
        })
        .collect::<Result<Vec<usize>>>()?;
    let t = sql::table_ref(
        &QualifiedName {
            schema: Some(found.owner.clone()),
            name: found.name.clone(),
        },
        default_owner,
    );
    let (query, binds): (String, Vec<Bind>) = if local.is_some() {
        (upsert_sql(&t, &cols, &key_idx), binds)
    } else {
        let matches: Vec<String> = key_idx
            .iter()
            .enumerate()
            .map(|(j, &k)| {
                format!(
                    "{} = {}",
                    ident(&cols[k].0),
                    sql::bind_expr(&format!(":{}", j + 1), cols[k].1)
                )
            })
            .collect();
        let key_binds = key_idx.iter().map(|&k| binds[k].clone()).collect();
        (
            format!("DELETE FROM {t} WHERE {}", matches.join(" AND ")),
            key_binds,
        )
    };
    let refs: Vec<&dyn ToSql> = binds.iter().map(|b| b as &dyn ToSql).collect();
    conn.execute(&query, &refs)
        .map_err(ctx("writing the kept local row"))?;
    Ok(())
}
