//! Introspection: `describe`, and the catalog facts provisioning, push and
//! pull rely on (a table's columns and native types, triggers, indexes,
//! PL/SQL sources, unique keys). Every function runs on a worker's session.

use std::collections::HashMap;

use edgesync_core::{names, Column, Error, QualifiedName, Result, TableMapping, TableSchema};
use oracle::Connection;

use crate::error::ctx;
use crate::sql::{self, Native};
use crate::types::{self, ColumnInfo};

/// The metadata columns, in the order `init_table.sql` adds them.
pub const META_COLUMNS: [&str; 6] = [
    "ES_VER",
    "ES_SCN",
    "ES_DELETED",
    "ES_HLC",
    "ES_ORIGIN",
    "ES_OSEQ",
];

/// A table found in the catalog: owner and name as the catalog spells them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub owner: String,
    pub name: String,
}

/// Look a table up by owner and name: exactly, then as Oracle folds an
/// unquoted name (upper case).
pub(crate) fn find_table(
    conn: &Connection,
    table: &QualifiedName,
    default_owner: &str,
) -> Result<Option<Found>> {
    let owner = sql::owner_of(table, default_owner);
    let name = table.name.as_str();
    let rows = conn
        .query(
            "SELECT owner, table_name FROM all_tables
              WHERE (owner = :1 AND table_name = :2) OR (owner = UPPER(:3) AND table_name = UPPER(:4))
              ORDER BY CASE WHEN owner = :5 AND table_name = :6 THEN 0 ELSE 1 END",
            &[&owner, &name, &owner, &name, &owner, &name],
        )
        .map_err(ctx(format!("looking up central table {table}")))?;
    let mut rows = rows;
    match rows.next() {
        Some(r) => {
            let r = r.map_err(ctx("reading all_tables"))?;
            Ok(Some(Found {
                owner: r.get(0).map_err(ctx("reading all_tables"))?,
                name: r.get(1).map_err(ctx("reading all_tables"))?,
            }))
        }
        None => Ok(None),
    }
}

/// One column as the catalog has it.
#[derive(Debug, Clone)]
pub(crate) struct CatalogColumn {
    pub name: String,
    pub info: ColumnInfo,
    pub nullable: bool,
    pub has_default: bool,
    pub generated: bool,
}

/// Does an enabled check constraint say `col IN (0, 1)`?
pub(crate) fn is_bool_check(condition: &str, column: &str) -> bool {
    let norm: String = condition
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '"')
        .collect::<String>()
        .to_uppercase();
    let col = column.to_uppercase();
    norm == format!("{col}IN(0,1)") || norm == format!("{col}IN(1,0)")
}

/// Every visible column of a table, in table order.
pub(crate) fn columns(
    conn: &Connection,
    found: &Found,
    db_unicode: bool,
) -> Result<Vec<CatalogColumn>> {
    let owner = found.owner.as_str();
    let name = found.name.as_str();
    let json: Vec<String> = conn
        .query_as::<String>(
            "SELECT column_name FROM all_json_columns WHERE owner = :1 AND table_name = :2",
            &[&owner, &name],
        )
        .map_err(ctx("reading JSON columns"))?
        .collect::<oracle::Result<Vec<String>>>()
        .map_err(ctx("reading JSON columns"))?;
    let checks: Vec<Option<String>> = conn
        .query_as::<Option<String>>(
            "SELECT search_condition_vc FROM all_constraints
              WHERE owner = :1 AND table_name = :2 AND constraint_type = 'C' AND status = 'ENABLED'",
            &[&owner, &name],
        )
        .map_err(ctx("reading check constraints"))?
        .collect::<oracle::Result<Vec<_>>>()
        .map_err(ctx("reading check constraints"))?;
    let rows = conn
        .query(
            "SELECT column_name, data_type, data_length, data_precision, data_scale, char_length,
                    char_used, nullable, default_length, identity_column, virtual_column
               FROM all_tab_cols
              WHERE owner = :1 AND table_name = :2 AND hidden_column = 'NO'
              ORDER BY column_id",
            &[&owner, &name],
        )
        .map_err(ctx("reading column types"))?;
    let mut out = Vec::new();
    for r in rows {
        let r = r.map_err(ctx("reading column types"))?;
        let get = || ctx("reading column types");
        let col: String = r.get(0).map_err(get())?;
        let info = ColumnInfo {
            data_type: r.get(1).map_err(get())?,
            data_length: r.get::<usize, Option<u32>>(2).map_err(get())?.unwrap_or(0),
            precision: r.get(3).map_err(get())?,
            scale: r.get(4).map_err(get())?,
            char_length: r.get::<usize, Option<u32>>(5).map_err(get())?.unwrap_or(0),
            char_used: r.get(6).map_err(get())?,
            is_json: json.contains(&col),
            is_bool: checks.iter().flatten().any(|c| is_bool_check(c, &col)),
            db_unicode,
        };
        let default_length: Option<i64> = r.get(8).map_err(get())?;
        let identity: Option<String> = r.get(9).map_err(get())?;
        let generated: Option<String> = r.get(10).map_err(get())?;
        out.push(CatalogColumn {
            nullable: r.get::<usize, String>(7).map_err(get())? == "Y",
            has_default: default_length.is_some() || identity.as_deref() == Some("YES"),
            generated: generated.as_deref() == Some("YES"),
            name: col,
            info,
        });
    }
    Ok(out)
}

/// `describe` for the trait.
pub fn describe(
    conn: &Connection,
    table: &QualifiedName,
    default_owner: &str,
    db_unicode: bool,
) -> Result<Option<TableSchema>> {
    let Some(found) = find_table(conn, table, default_owner)? else {
        return Ok(None);
    };
    let cols = columns(conn, &found, db_unicode)?;
    let columns = cols
        .iter()
        .filter(|c| !names::is_reserved(&c.name))
        .map(|c| Column {
            name: c.name.clone(),
            ty: if c.generated {
                Err(format!(
                    "{} (a virtual column cannot be written)",
                    c.info.decl()
                ))
            } else {
                types::col_type(&c.info)
            },
            nullable: c.nullable,
            has_default: c.has_default,
        })
        .collect();
    let primary_key = conn
        .query_as::<String>(
            "SELECT cc.column_name FROM all_constraints c
               JOIN all_cons_columns cc ON cc.owner = c.owner AND cc.constraint_name = c.constraint_name
              WHERE c.owner = :1 AND c.table_name = :2 AND c.constraint_type = 'P'
              ORDER BY cc.position",
            &[&found.owner, &found.name],
        )
        .map_err(ctx(format!("reading the primary key of {table}")))?
        .collect::<oracle::Result<Vec<String>>>()
        .map_err(ctx(format!("reading the primary key of {table}")))?;
    Ok(Some(TableSchema {
        name: QualifiedName {
            schema: table.schema.as_ref().map(|_| found.owner.clone()),
            name: found.name,
        },
        columns,
        primary_key,
    }))
}

/// The catalog column of each mapped column, in mapping order.
pub(crate) fn mapped<'a>(
    table: &TableMapping,
    cols: &'a [CatalogColumn],
) -> Result<Vec<&'a CatalogColumn>> {
    table
        .columns
        .iter()
        .map(|c| {
            cols.iter()
                .find(|k| k.name == c.central)
                .or_else(|| {
                    cols.iter()
                        .find(|k| k.name.eq_ignore_ascii_case(&c.central))
                })
                .ok_or_else(|| {
                    Error::schema(format!(
                        "central table {} has no column {}",
                        table.central, c.central
                    ))
                })
        })
        .collect()
}

/// The native types of the mapping's columns, in mapping order, checking the
/// table is there and provisioned.
pub fn natives(
    conn: &Connection,
    table: &TableMapping,
    default_owner: &str,
    db_unicode: bool,
) -> Result<Vec<Native>> {
    let found = find_table(conn, &table.central, default_owner)?
        .ok_or_else(|| Error::schema(format!("central table {} does not exist", table.central)))?;
    let cols = columns(conn, &found, db_unicode)?;
    if let Some(missing) = META_COLUMNS
        .iter()
        .find(|m| !cols.iter().any(|c| c.name == **m))
    {
        return Err(Error::schema(format!(
            "central table {} is not provisioned for sync (column {missing} is missing); run init-sync",
            table.central
        )));
    }
    Ok(mapped(table, &cols)?
        .into_iter()
        .map(|c| c.info.native())
        .collect())
}

/// How many rows a counting query returns as its single number.
fn count(conn: &Connection, sql: &str, params: &[&dyn oracle::sql_type::ToSql]) -> Result<i64> {
    conn.query_row_as::<i64>(sql, params)
        .map_err(ctx("reading the catalog"))
}

/// Does an object of `kind` (`TABLE`, `INDEX`, `SEQUENCE`, `PACKAGE`,
/// `PACKAGE BODY`, `TRIGGER`) exist?
pub(crate) fn object_exists(
    conn: &Connection,
    owner: &str,
    name: &str,
    kind: &str,
) -> Result<bool> {
    Ok(count(
        conn,
        "SELECT COUNT(*) FROM all_objects WHERE owner = :1 AND object_name = :2 AND object_type = :3",
        &[&owner, &name, &kind],
    )? > 0)
}

/// Does the PL/SQL source of an object carry `marker` (its fingerprint)?
pub(crate) fn source_has(
    conn: &Connection,
    owner: &str,
    name: &str,
    kind: &str,
    marker: &str,
) -> Result<bool> {
    Ok(count(
        conn,
        "SELECT COUNT(*) FROM all_source
          WHERE owner = :1 AND name = :2 AND type = :3 AND INSTR(text, :4) > 0",
        &[&owner, &name, &kind, &marker],
    )? > 0)
}

/// A table's comment.
pub(crate) fn table_comment(conn: &Connection, owner: &str, name: &str) -> Result<Option<String>> {
    let rows = conn
        .query_as::<Option<String>>(
            "SELECT comments FROM all_tab_comments WHERE owner = :1 AND table_name = :2",
            &[&owner, &name],
        )
        .map_err(ctx("reading table comments"))?;
    let mut rows = rows;
    match rows.next() {
        Some(r) => r.map_err(ctx("reading table comments")),
        None => Ok(None),
    }
}

/// The push matches rows by the key; without a unique constraint or index
/// on exactly the key columns two edges could insert the same key twice.
pub(crate) fn check_unique_key(
    conn: &Connection,
    table: &TableMapping,
    found: &Found,
) -> Result<()> {
    let rows = conn
        .query(
            "SELECT i.index_name, c.column_name FROM all_indexes i
               JOIN all_ind_columns c ON c.index_owner = i.owner AND c.index_name = i.index_name
              WHERE i.table_owner = :1 AND i.table_name = :2 AND i.uniqueness = 'UNIQUE'",
            &[&found.owner, &found.name],
        )
        .map_err(ctx("reading unique indexes"))?;
    let mut indexes: HashMap<String, Vec<String>> = HashMap::new();
    for r in rows {
        let r = r.map_err(ctx("reading unique indexes"))?;
        let index: String = r.get(0).map_err(ctx("reading unique indexes"))?;
        let col: Option<String> = r.get(1).map_err(ctx("reading unique indexes"))?;
        indexes
            .entry(index)
            .or_default()
            .push(col.unwrap_or_default());
    }
    let mut key: Vec<String> = table.key_columns().map(|c| c.central.clone()).collect();
    key.sort_unstable();
    if indexes.into_values().any(|mut cols| {
        cols.sort_unstable();
        cols == key
    }) {
        Ok(())
    } else {
        Err(Error::schema(format!(
            "central table {} has no primary key or unique index on ({}); edgesync matches rows by it",
            table.central,
            key.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boolean_check_constraints_are_recognised() {
        assert!(is_bool_check("\"ACTIVE\" IN (0, 1)", "ACTIVE"));
        assert!(is_bool_check("active in (1,0)", "ACTIVE"));
        assert!(!is_bool_check("active IN (0, 1, 2)", "ACTIVE"));
        assert!(!is_bool_check("other IN (0, 1)", "ACTIVE"));
    }
}
