//! `conflicts resolve` on SQL Server: settle one parked (manual) conflict in
//! one transaction.
//!
//! `--keep local` writes the parked row as a central *application* would:
//! the transaction leaves `SESSION_CONTEXT(N'edgesync.applying')` at 0, so
//! the table's triggers stamp it (new rowversion, HLC tick past the row's
//! stamp, `es_origin` NULL) and keep the tombstones (or, on a soft-delete
//! table, turn a delete into the marker). Every node, the one whose push was
//! parked included, then pulls it like any central change.
//!
//! Conflict ids are per schema (each schema has its own log); an id found in
//! two schemas' logs is refused as ambiguous rather than guessed.

use edgesync_core::{ConflictRecord, Error, ErrorKind, Keep, QualifiedName, Result};

use crate::connection::{Conn, Pool};
use crate::meta::{parse_row, record, schemas_with, NamedRow, RECORD_COLUMNS};
use crate::schema::{columns, find_table};
use crate::sql::{self, ident};
use crate::types::{self, get_bool, get_text, need_int, Param};

/// `resolve_conflict` for the trait.
pub async fn resolve_conflict(pool: &Pool, id: i64, keep: Keep) -> Result<ConflictRecord> {
    let mut conn = pool.get().await?;
    let mut found = Vec::new();
    for s in schemas_with(&mut conn, "es_conflicts").await? {
        let rows = conn
            .query(
                &format!(
                    "SELECT COUNT(*) FROM {}.es_conflicts WHERE id = @P1",
                    ident(&s)
                ),
                &[Param::Int(Some(id))],
                "reading the conflict log",
            )
            .await?;
        if rows.first().map(|r| need_int(r, 0)).transpose()? == Some(1) {
            found.push(s);
        }
    }
    let schema = match found.as_slice() {
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
    let doing = format!("resolving conflict #{id}");
    conn.begin(false).await?;
    match settle(&mut conn, &schema, id, keep).await {
        Ok(r) => match conn.commit(&doing).await {
            Ok(()) => Ok(r),
            Err(e) => {
                conn.rollback().await;
                Err(e)
            }
        },
        Err(e) => {
            conn.rollback().await;
            Err(e.context(doing))
        }
    }
}

async fn settle(conn: &mut Conn, schema: &str, id: i64, keep: Keep) -> Result<ConflictRecord> {
    let log = format!("{}.es_conflicts", ident(schema));
    let rows = conn
        .query(
            &format!(
                "SELECT tbl, key_json, local_json, [open] FROM {log} WITH (UPDLOCK, HOLDLOCK) WHERE id = @P1"
            ),
            &[Param::Int(Some(id))],
            "reading the conflict log",
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| Error::new(ErrorKind::Config, format!("there is no conflict #{id}")))?;
    let table = get_text(row, 0)?.unwrap_or_default();
    if !get_bool(row, 3)?.unwrap_or(false) {
        return Err(Error::new(
            ErrorKind::Constraint,
            format!("conflict #{id} is already resolved (see `edgesync conflicts list --all`)"),
        ));
    }
    if keep == Keep::Local {
        let key = parse_row(get_text(row, 1)?, "key")?.unwrap_or_default();
        let local = parse_row(get_text(row, 2)?, "local row")?;
        let q = QualifiedName::parse(&table);
        write_local(conn, &q, &key, local.as_ref())
            .await
            .map_err(|e| e.context(format!("writing the kept row to {table}")))?;
    }
    let keep_p = Param::Text(Some(keep.as_str().to_string()));
    conn.exec(
        &format!(
            "UPDATE {log} SET [open] = 0, resolved_at = SYSUTCDATETIME(), kept = @P2,
                    result_json = CASE WHEN @P2 = N'local' THEN local_json ELSE result_json END
              WHERE id = @P1"
        ),
        &[Param::Int(Some(id)), keep_p],
        "closing the conflict",
    )
    .await?;
    let rows = conn
        .query(
            &format!("SELECT {RECORD_COLUMNS} FROM {log} WHERE id = @P1"),
            &[Param::Int(Some(id))],
            "reading the conflict back",
        )
        .await?;
    record(
        rows.first()
            .ok_or_else(|| Error::internal(format!("conflict #{id} vanished")))?,
    )
}

/// The statement writing a kept row: update it, or insert it when it is
/// gone. Parameters `@P1..` are the named values in order; `key` are the
/// positions of the key columns among them.
pub(crate) fn upsert_sql(
    table: &str,
    cols: &[(String, edgesync_core::ColType)],
    key: &[usize],
    identity: bool,
) -> String {
    let p = |k: usize| sql::bind_expr(&format!("@P{}", k + 1), cols[k].1);
    let sets: Vec<String> = (0..cols.len())
        .filter(|k| !key.contains(k))
        .map(|k| format!("{} = {}", ident(&cols[k].0), p(k)))
        .chain(["es_deleted = 0".to_string()])
        .collect();
    let matches: Vec<String> = key
        .iter()
        .map(|&k| format!("{} = {}", ident(&cols[k].0), p(k)))
        .collect();
    let names: Vec<String> = cols.iter().map(|(n, _)| ident(n)).collect();
    let values: Vec<String> = (0..cols.len()).map(p).collect();
    let body = format!(
        "UPDATE {table} SET {} WHERE {};\nIF @@ROWCOUNT = 0\n    INSERT INTO {table} ({}) VALUES ({});",
        sets.join(", "),
        matches.join(" AND "),
        names.join(", "),
        values.join(", ")
    );
    if identity {
        format!("SET IDENTITY_INSERT {table} ON;\n{body}\nSET IDENTITY_INSERT {table} OFF;")
    } else {
        body
    }
}

/// Write the parked local row (`None`: its delete) as an application write.
async fn write_local(
    conn: &mut Conn,
    table: &QualifiedName,
    key: &NamedRow,
    local: Option<&NamedRow>,
) -> Result<()> {
    let found = find_table(conn, table)
        .await?
        .ok_or_else(|| Error::schema(format!("central table {table} no longer exists")))?;
    let catalog = columns(conn, found.object_id).await?;
    let named: &NamedRow = local.unwrap_or(key);
    let mut cols = Vec::new();
    let mut params = Vec::new();
    let mut identity = false;
    for (name, value) in named {
        let col = catalog
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::schema(format!("central table {table} no longer has column {name}"))
            })?;
        let ty = types::col_type(&col.info).map_err(|native| {
            Error::schema(format!("central column {table}.{name} has type {native}"))
        })?;
        identity |= col.identity;
        params.push(
            types::param(ty, value)
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
    let t = sql::table_ref(table);
    let query = if local.is_some() {
        upsert_sql(&t, &cols, &key_idx, identity)
    } else {
        let matches: Vec<String> = key_idx
            .iter()
            .map(|&k| {
                format!(
                    "{} = {}",
                    ident(&cols[k].0),
                    sql::bind_expr(&format!("@P{}", k + 1), cols[k].1)
                )
            })
            .collect();
        format!("DELETE FROM {t} WHERE {}", matches.join(" AND "))
    };
    conn.exec(&query, &params, "writing the kept local row")
        .await?;
    Ok(())
}
