//! `conflicts resolve` on PostgreSQL: settle one parked (manual) conflict in
//! one transaction.
//!
//! `--keep local` writes the parked row as a central *application* would:
//! the transaction does not set `edgesync.applying`, so the table's triggers
//! stamp it (new version, transaction id, HLC tick past the row's stamp,
//! `es_origin` NULL) and keep the tombstones. Every node, the one whose push
//! was parked included, then pulls it like any central change.
//!
//! Conflict ids are per schema (each schema has its own log); an id found in
//! two schemas' logs is refused as ambiguous rather than guessed.

use edgesync_core::{
    ColumnMap, ConflictPolicy, ConflictRecord, DeleteMode, Direction, Error, ErrorKind, Keep,
    QualifiedName, Result, TableMapping,
};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};

use crate::error::ctx;
use crate::meta::{parse_row, record, schemas_with, NamedRow, RECORD_COLUMNS};
use crate::sql::{self, ident};
use crate::types::{ColumnArray, Params};

/// `resolve_conflict` for the trait.
pub async fn resolve_conflict(pool: &PgPool, id: i64, keep: Keep) -> Result<ConflictRecord> {
    let mut found = Vec::new();
    for s in schemas_with(pool, "es_conflicts").await? {
        let here: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {}.es_conflicts WHERE id = $1)",
            ident(&s)
        )))
        .bind(id)
        .fetch_one(pool)
        .await
        .map_err(ctx("reading the conflict log"))?;
        if here {
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
    let log = format!("{}.es_conflicts", ident(&schema));
    let doing = format!("resolving conflict #{id}");
    let mut tx = pool.begin().await.map_err(ctx(&doing))?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT tbl, key_json::text, local_json::text, open FROM {log} WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .map_err(ctx(&doing))?;
    let get = || ctx("reading the conflict log");
    let table: String = row.try_get(0).map_err(get())?;
    let open: bool = row.try_get(3).map_err(get())?;
    if !open {
        return Err(Error::new(
            ErrorKind::Constraint,
            format!("conflict #{id} is already resolved (see `edgesync conflicts list --all`)"),
        ));
    }
    if keep == Keep::Local {
        let key = parse_row(row.try_get(1).map_err(get())?, "key")?.unwrap_or_default();
        let local = parse_row(row.try_get(2).map_err(get())?, "local row")?;
        let q = QualifiedName::parse(&table);
        write_local(pool, &mut tx, &q, &key, local.as_ref())
            .await
            .map_err(|e| e.context(format!("{doing} on {table}")))?;
    }
    let settled = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {log} SET open = false, resolved_at = now(), kept = $2,
                result_json = CASE WHEN $2 = 'local' THEN local_json ELSE result_json END
          WHERE id = $1
         RETURNING {RECORD_COLUMNS}"
    )))
    .bind(id)
    .bind(keep.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(ctx(&doing))?;
    let record = record(&settled)?;
    tx.commit().await.map_err(ctx(&doing))?;
    Ok(record)
}

/// Write the parked local row (`None`: its delete) to `table` as an
/// application write: the triggers stamp it, soft or hard delete included.
async fn write_local(
    pool: &PgPool,
    conn: &mut PgConnection,
    table: &QualifiedName,
    key: &NamedRow,
    local: Option<&NamedRow>,
) -> Result<()> {
    let schema = crate::schema::describe(pool, table)
        .await?
        .ok_or_else(|| Error::schema(format!("central table {table} no longer exists")))?;
    let named: &NamedRow = local.unwrap_or(key);
    let mut columns = Vec::new();
    for (name, _) in named {
        let col = schema.column(name).ok_or_else(|| {
            Error::schema(format!("central table {table} no longer has column {name}"))
        })?;
        let ty = col.ty.clone().map_err(|native| {
            Error::schema(format!("central column {table}.{name} has type {native}"))
        })?;
        columns.push(ColumnMap {
            edge: col.name.clone(),
            central: col.name.clone(),
            ty,
            edge_ty: ty,
            nullable: col.nullable,
        });
    }
    let key_idx = key
        .iter()
        .map(|(k, _)| {
            columns
                .iter()
                .position(|c| c.central.eq_ignore_ascii_case(k))
                .ok_or_else(|| Error::internal(format!("key column {k} has no value")))
        })
        .collect::<Result<Vec<usize>>>()?;
    let mapping = TableMapping {
        edge: table.name.clone(),
        central: table.clone(),
        columns,
        key: key_idx,
        direction: Direction::Both,
        conflict: ConflictPolicy::Manual,
        deletes: DeleteMode::Soft,
    };
    let natives = crate::schema::natives(conn, &mapping).await?;
    let t = &mapping;
    let mut p = Params::default();
    let mut params = Vec::new();
    let mut aliases = Vec::new();
    for (k, (c, (_, v))) in t.columns.iter().zip(named).enumerate() {
        let mut a = ColumnArray::new(c.ty);
        a.push(c.ty, v)
            .map_err(|e| Error::value(format!("{table}.{}: {}", c.central, e.message())))?;
        params.push(p.array(a, sql::transport_type(c.ty)));
        aliases.push(format!("a{k}"));
    }
    let from = format!("unnest({}) AS u({})", params.join(", "), aliases.join(", "));
    let query = if local.is_some() {
        let cols: Vec<String> = t.columns.iter().map(|c| ident(&c.central)).collect();
        let vals: Vec<String> = t
            .columns
            .iter()
            .enumerate()
            .map(|(k, c)| sql::write_expr(&format!("u.a{k}"), c.ty, &natives[k]))
            .collect();
        let sets: Vec<String> = t
            .columns
            .iter()
            .enumerate()
            .filter(|(k, _)| !t.key.contains(k))
            .map(|(_, c)| format!("{0} = excluded.{0}", ident(&c.central)))
            .chain(["es_deleted = false".to_string()])
            .collect();
        format!(
            "INSERT INTO {table} AS t ({cols}) OVERRIDING SYSTEM VALUE
             SELECT {vals} FROM {from}
             ON CONFLICT ({keys}) DO UPDATE SET {sets}",
            table = sql::table_ref(&t.central),
            cols = cols.join(", "),
            vals = vals.join(", "),
            keys = sql::key_columns(t, None).join(", "),
            sets = sets.join(", "),
        )
    } else {
        format!(
            "DELETE FROM {table} AS t USING {from} WHERE {matches}",
            table = sql::table_ref(&t.central),
            matches = sql::key_match(t, "t", |i| format!("u.a{i}")),
        )
    };
    p.query(query)
        .execute(&mut *conn)
        .await
        .map_err(ctx("writing the kept local row"))?;
    Ok(())
}
