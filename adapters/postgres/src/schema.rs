//! Introspection: `describe`, and the catalog facts provisioning, push and
//! pull rely on (a table's oid and native column types, functions, triggers,
//! unique keys).

use std::collections::HashMap;

use edgesync_core::{names, Column, Error, QualifiedName, Result, TableMapping, TableSchema};
use sqlx::{PgConnection, PgPool, Row};

use crate::error::ctx;
use crate::sql;
use crate::types;

/// The metadata columns, in the order `init_table.sql` adds them.
pub const META_COLUMNS: [&str; 6] = [
    names::COL_VER,
    names::COL_TXID,
    names::COL_DELETED,
    names::COL_HLC,
    names::COL_ORIGIN,
    names::COL_OSEQ,
];

/// A table found in the catalog.
pub(crate) struct Found {
    /// `pg_class.oid`.
    pub oid: i64,
    /// The schema it was found in.
    pub schema: String,
    /// Its name as the catalog spells it.
    pub name: String,
}

/// Look a table up by schema and name (exact, then as PostgreSQL would fold
/// an unquoted name).
pub(crate) async fn find_table(
    conn: &mut PgConnection,
    table: &QualifiedName,
) -> Result<Option<Found>> {
    let row = sqlx::query(
        "SELECT c.oid::bigint, n.nspname::text, c.relname::text
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p')
            AND ((n.nspname = $1 AND c.relname = $2) OR (n.nspname = lower($1) AND c.relname = lower($2)))
          ORDER BY (n.nspname = $1 AND c.relname = $2) DESC
          LIMIT 1",
    )
    .bind(sql::schema_of(table))
    .bind(&table.name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(ctx(format!("looking up central table {table}")))?;
    Ok(row.map(|r| Found {
        oid: r.get(0),
        schema: r.get(1),
        name: r.get(2),
    }))
}

/// `describe` for the trait.
pub async fn describe(pool: &PgPool, table: &QualifiedName) -> Result<Option<TableSchema>> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(ctx("connecting to PostgreSQL"))?;
    let Some(found) = find_table(&mut conn, table).await? else {
        return Ok(None);
    };
    let rows = sqlx::query(
        "SELECT a.attname::text, t.typname::text, a.atttypmod, t.typtype::text,
                format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
                a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '', a.attgenerated <> ''
           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
          WHERE a.attrelid = $1::bigint::oid AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum",
    )
    .bind(found.oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(ctx(format!("describing central table {table}")))?;
    let mut columns = Vec::new();
    for r in rows {
        let name: String = r.get(0);
        if names::is_reserved(&name) {
            continue;
        }
        let display: String = r.get(4);
        let generated: bool = r.get(7);
        let ty = if generated {
            Err(format!("{display} (a generated column cannot be written)"))
        } else {
            types::col_type(
                r.get::<String, _>(1).as_str(),
                r.get(2),
                r.get::<String, _>(3).as_str(),
                &display,
            )
        };
        columns.push(Column {
            name,
            ty,
            nullable: r.get(5),
            has_default: r.get(6),
        });
    }
    let primary_key: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text
           FROM pg_index i
           CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = $1::bigint::oid AND i.indisprimary
          ORDER BY k.n",
    )
    .bind(found.oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(ctx(format!("reading the primary key of {table}")))?;
    Ok(Some(TableSchema {
        name: QualifiedName {
            schema: table.schema.as_ref().map(|_| found.schema.clone()),
            name: found.name,
        },
        columns,
        primary_key,
    }))
}

/// Native type (`format_type`) of every column of a table, by name.
pub(crate) async fn column_types(
    conn: &mut PgConnection,
    oid: i64,
) -> Result<HashMap<String, String>> {
    let rows = sqlx::query(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
          WHERE attrelid = $1::bigint::oid AND attnum > 0 AND NOT attisdropped",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(ctx("reading column types"))?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The native types of the mapping's columns, in mapping order, checking the
/// table is there and provisioned. The push and pull SQL casts to them.
pub async fn natives(conn: &mut PgConnection, table: &TableMapping) -> Result<Vec<String>> {
    let found = find_table(conn, &table.central)
        .await?
        .ok_or_else(|| Error::schema(format!("central table {} does not exist", table.central)))?;
    let types = column_types(conn, found.oid).await?;
    if let Some(missing) = META_COLUMNS.iter().find(|c| !types.contains_key(**c)) {
        return Err(Error::schema(format!(
            "central table {} is not provisioned for sync (column {missing} is missing); run init-sync",
            table.central
        )));
    }
    mapped_types(table, &types)
}

pub(crate) fn mapped_types(
    table: &TableMapping,
    types: &HashMap<String, String>,
) -> Result<Vec<String>> {
    table
        .columns
        .iter()
        .map(|c| {
            types.get(&c.central).cloned().ok_or_else(|| {
                Error::schema(format!(
                    "central table {} has no column {}",
                    table.central, c.central
                ))
            })
        })
        .collect()
}

/// Does `schema.name` exist as a relation (table, index, sequence)?
pub(crate) async fn relation_exists(
    conn: &mut PgConnection,
    schema: &str,
    name: &str,
) -> Result<bool> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(sql::qualified(schema, name))
        .fetch_one(&mut *conn)
        .await
        .map_err(ctx(format!("checking for {schema}.{name}")))
}

/// The source of a function (what `CREATE FUNCTION` gave), if it exists.
pub(crate) async fn function_source(
    conn: &mut PgConnection,
    schema: &str,
    name: &str,
) -> Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = $1 AND p.proname = $2 AND p.pronargs = 0",
    )
    .bind(schema)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(ctx(format!("checking for function {schema}.{name}")))
}

pub(crate) async fn triggers_of(conn: &mut PgConnection, oid: i64) -> Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT tgname::text FROM pg_trigger WHERE tgrelid = $1::bigint::oid AND NOT tgisinternal",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(ctx("reading triggers"))
}

/// The push writes new rows with `INSERT ... ON CONFLICT (key)`, which needs a
/// unique index on exactly the key columns.
pub(crate) async fn check_unique_key(
    conn: &mut PgConnection,
    table: &TableMapping,
    oid: i64,
) -> Result<()> {
    let indexes: Vec<Vec<String>> = sqlx::query_scalar(
        "SELECT array_agg(a.attname::text)
           FROM pg_index i
           CROSS JOIN LATERAL unnest(i.indkey::int2[]) AS k(attnum)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = $1::bigint::oid AND i.indisunique AND i.indpred IS NULL
            AND i.indexprs IS NULL
          GROUP BY i.indexrelid",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(ctx("reading unique indexes"))?;
    let mut key: Vec<&str> = table.key_columns().map(|c| c.central.as_str()).collect();
    key.sort_unstable();
    let found = indexes.into_iter().any(|mut cols| {
        cols.sort_unstable();
        cols == key
    });
    if found {
        Ok(())
    } else {
        Err(Error::schema(format!(
            "central table {} has no primary key or unique index on ({}); edgesync matches rows by it",
            table.central,
            key.join(", ")
        )))
    }
}
