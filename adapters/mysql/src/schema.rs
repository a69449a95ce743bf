//! Introspection through `information_schema`: `describe`, and the catalog
//! facts provisioning, push and pull rely on (native column types, unique
//! keys, triggers, indexes).
//!
//! Table names are looked up exactly. On a server with case-sensitive names
//! (`lower_case_table_names = 0`), a name that only matches another case is
//! reported with the candidates instead of being silently taken.

use std::collections::HashMap;

use edgesync_core::{
    names, ColType, Column, Error, QualifiedName, Result, TableMapping, TableSchema,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value as My};

use crate::error::ctx;
use crate::sql::{self, Db};
use crate::types::{self, Native};

/// The metadata columns, in the order `init_table.sql` adds them.
pub const META_COLUMNS: [&str; 5] = [
    names::COL_VER,
    names::COL_DELETED,
    names::COL_HLC,
    names::COL_ORIGIN,
    names::COL_OSEQ,
];

/// A table found in the catalog, named as the catalog spells it.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub schema: String,
    pub name: String,
}

/// One column as the catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct ColInfo {
    pub name: String,
    pub native: Native,
    pub nullable: bool,
    pub has_default: bool,
    pub generated: bool,
}

pub(crate) fn text(v: My) -> Option<String> {
    match v {
        My::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        My::Int(i) => Some(i.to_string()),
        My::UInt(u) => Some(u.to_string()),
        _ => None,
    }
}

pub(crate) fn number(v: My) -> Option<u64> {
    match v {
        My::Int(i) => u64::try_from(i).ok(),
        My::UInt(u) => Some(u),
        My::Bytes(b) => std::str::from_utf8(&b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// All values of a row, in order.
pub(crate) fn values(row: Row) -> Vec<My> {
    row.unwrap()
}

/// Look a table up: exactly, then (to explain a miss) by case-insensitive
/// name. `Ok(None)` when no table of any case exists.
pub(crate) async fn find_table<Q: Queryable>(
    q: &mut Q,
    db: &Db,
    table: &QualifiedName,
) -> Result<Option<Found>> {
    let schema = db.schema_of(table);
    let rows: Vec<(String, String)> = q
        .exec(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
              WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND TABLE_TYPE = 'BASE TABLE'",
            (schema, &table.name),
        )
        .await
        .map_err(ctx(format!("looking up central table {table}")))?;
    if let Some((s, n)) = rows
        .iter()
        .find(|(s, n)| s == schema && n == &table.name)
        .cloned()
    {
        return Ok(Some(Found { schema: s, name: n }));
    }
    let folds: Option<u64> = q
        .query_first("SELECT @@lower_case_table_names")
        .await
        .map_err(ctx("reading lower_case_table_names"))?;
    let candidates: Vec<(String, String)> = if rows.is_empty() {
        q.exec(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
              WHERE LOWER(TABLE_SCHEMA) = LOWER(?) AND LOWER(TABLE_NAME) = LOWER(?)
                AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1, 2",
            (schema, &table.name),
        )
        .await
        .map_err(ctx(format!("looking up central table {table}")))?
    } else {
        rows
    };
    match (candidates.as_slice(), folds.unwrap_or(0)) {
        ([], _) => Ok(None),
        // The server folds names itself: it is the same table.
        ([(s, n)], f) if f != 0 => Ok(Some(Found {
            schema: s.clone(),
            name: n.clone(),
        })),
        (c, _) => Err(Error::schema(format!(
            "central table {schema}.{} does not exist; table names are case-sensitive on this server (lower_case_table_names = {}); did you mean {}?",
            table.name,
            folds.unwrap_or(0),
            c.iter()
                .map(|(s, n)| format!("{s}.{n}"))
                .collect::<Vec<_>>()
                .join(" or ")
        ))),
    }
}

/// The columns of a found table, in table order, metadata columns included.
pub(crate) async fn columns<Q: Queryable>(
    q: &mut Q,
    found: &Found,
    mariadb: bool,
) -> Result<Vec<ColInfo>> {
    let rows: Vec<Row> = q
        .exec(
            "SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), CHARACTER_MAXIMUM_LENGTH,
                    NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME,
                    COLLATION_NAME, IS_NULLABLE, COLUMN_DEFAULT, LOWER(EXTRA), GENERATION_EXPRESSION
               FROM information_schema.COLUMNS
              WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&found.schema, &found.name),
        )
        .await
        .map_err(ctx(format!(
            "describing central table {}.{}",
            found.schema, found.name
        )))?;
    let json_checked = if mariadb {
        json_columns(q, found).await?
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut v = values(row).into_iter();
        let mut next = || v.next().unwrap_or(My::NULL);
        let name = text(next()).unwrap_or_default();
        let data_type = text(next()).unwrap_or_default();
        let column_type = text(next()).unwrap_or_default();
        let char_len = number(next());
        let precision = number(next()).and_then(|p| u32::try_from(p).ok());
        let scale = number(next()).and_then(|p| u32::try_from(p).ok());
        let frac = number(next())
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0);
        let charset = text(next());
        let collation = text(next());
        let nullable = text(next()).as_deref() == Some("YES");
        // MariaDB shows an implicit `DEFAULT NULL` as the word NULL.
        let default = text(next()).filter(|d| d != "NULL");
        let extra = text(next()).unwrap_or_default();
        let generated = text(next()).is_some_and(|g| !g.is_empty())
            || extra.contains("generated")
            || extra.contains("virtual")
            || extra.contains("persistent");
        let is_decimal = matches!(data_type.as_str(), "decimal" | "numeric");
        let json_check = json_checked.contains(&name);
        out.push(ColInfo {
            native: Native {
                data_type,
                column_type,
                char_len,
                precision: precision.filter(|_| is_decimal),
                scale: scale.filter(|_| is_decimal),
                frac,
                charset,
                collation,
                json_check,
                nullable,
            },
            has_default: default.is_some() || extra.contains("auto_increment") || generated,
            nullable,
            generated,
            name,
        });
    }
    Ok(out)
}

/// MariaDB: the columns guarded by `CHECK (json_valid(col))`, which is what
/// MariaDB's `JSON` type creates (it is `LONGTEXT` underneath).
async fn json_columns<Q: Queryable>(q: &mut Q, found: &Found) -> Result<Vec<String>> {
    let clauses: Vec<(String, String)> = q
        .exec(
            "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
              WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (&found.schema, &found.name),
        )
        .await
        .map_err(ctx("reading check constraints"))?;
    Ok(clauses
        .into_iter()
        .filter_map(|(_, clause)| {
            let c: String = clause
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>();
            let lower = c.to_ascii_lowercase();
            let inner = lower.strip_prefix("json_valid(`")?.strip_suffix("`)")?;
            // Keep the column name's own case.
            let start = "json_valid(`".len();
            Some(c[start..start + inner.len()].replace("``", "`"))
        })
        .collect())
}

/// `describe` for the trait.
pub async fn describe<Q: Queryable>(
    q: &mut Q,
    db: &Db,
    mariadb: bool,
    table: &QualifiedName,
) -> Result<Option<TableSchema>> {
    let Some(found) = find_table(q, db, table).await? else {
        return Ok(None);
    };
    let cols = columns(q, &found, mariadb).await?;
    let columns = cols
        .into_iter()
        .filter(|c| !names::is_reserved(&c.name))
        .map(|c| Column {
            ty: if c.generated {
                Err(format!(
                    "{} (a generated column cannot be written)",
                    c.native.column_type
                ))
            } else {
                types::col_type(&c.native)
            },
            name: c.name,
            nullable: c.nullable,
            has_default: c.has_default,
        })
        .collect();
    let primary_key = primary_key(q, &found).await?;
    Ok(Some(TableSchema {
        name: QualifiedName {
            schema: table.schema.as_ref().map(|_| found.schema.clone()),
            name: found.name,
        },
        columns,
        primary_key,
    }))
}

async fn primary_key<Q: Queryable>(q: &mut Q, found: &Found) -> Result<Vec<String>> {
    q.exec(
        "SELECT COLUMN_NAME FROM information_schema.STATISTICS
          WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY'
          ORDER BY SEQ_IN_INDEX",
        (&found.schema, &found.name),
    )
    .await
    .map_err(ctx(format!(
        "reading the primary key of {}.{}",
        found.schema, found.name
    )))
}

/// The native types of the mapping's columns, in mapping order, checking the
/// table is there and provisioned. Push and pull cast to them.
pub async fn natives<Q: Queryable>(
    q: &mut Q,
    db: &Db,
    mariadb: bool,
    table: &TableMapping,
) -> Result<Vec<Native>> {
    let found = find_table(q, db, &table.central)
        .await?
        .ok_or_else(|| Error::schema(format!("central table {} does not exist", table.central)))?;
    let cols = columns(q, &found, mariadb).await?;
    let by_name: HashMap<&str, &ColInfo> = cols.iter().map(|c| (c.name.as_str(), c)).collect();
    if let Some(missing) = META_COLUMNS.iter().find(|c| !by_name.contains_key(**c)) {
        return Err(Error::schema(format!(
            "central table {} is not provisioned for sync (column {missing} is missing); run init-sync",
            table.central
        )));
    }
    mapped(table, &by_name)
}

pub(crate) fn mapped(
    table: &TableMapping,
    by_name: &HashMap<&str, &ColInfo>,
) -> Result<Vec<Native>> {
    table
        .columns
        .iter()
        .map(|c| {
            by_name
                .get(c.central.as_str())
                .map(|i| i.native.clone())
                .ok_or_else(|| {
                    Error::schema(format!(
                        "central table {} has no column {}",
                        table.central, c.central
                    ))
                })
        })
        .collect()
}

/// The push matches rows by the mapping's key, which needs a primary key or
/// unique index on exactly those columns (no prefix index).
pub(crate) async fn check_unique_key<Q: Queryable>(
    q: &mut Q,
    found: &Found,
    table: &TableMapping,
) -> Result<()> {
    let rows: Vec<(String, String, Option<u64>)> = q
        .exec(
            "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS
              WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0
              ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (&found.schema, &found.name),
        )
        .await
        .map_err(ctx("reading unique indexes"))?;
    let mut indexes: HashMap<String, Vec<String>> = HashMap::new();
    let mut prefixed: Vec<String> = Vec::new();
    for (index, column, sub_part) in rows {
        if sub_part.is_some() {
            prefixed.push(index.clone());
        }
        indexes.entry(index).or_default().push(column);
    }
    let mut key: Vec<&str> = table.key_columns().map(|c| c.central.as_str()).collect();
    key.sort_unstable();
    let found_key = indexes.into_iter().any(|(name, mut cols)| {
        cols.sort_unstable();
        !prefixed.contains(&name) && cols == key
    });
    if found_key {
        Ok(())
    } else {
        Err(Error::schema(format!(
            "central table {} has no primary key or unique index on ({}); edgesync matches rows by it",
            table.central,
            key.join(", ")
        )))
    }
}

/// Text key columns must compare byte for byte: under a case- or
/// accent-insensitive collation `'a'` and `'A'` (or `'u'` and `'ü'`) are one
/// central row but two edge rows, and one edge's write would overwrite the
/// other's.
pub(crate) fn check_key_collations(
    table: &TableMapping,
    by_name: &HashMap<&str, &ColInfo>,
) -> Result<()> {
    for c in table.key_columns() {
        let Some(info) = by_name.get(c.central.as_str()) else {
            continue;
        };
        if !matches!(c.ty, ColType::Text { .. }) {
            continue;
        }
        if let Some(coll) = &info.native.collation {
            if !coll.ends_with("_bin") {
                return Err(Error::schema(format!(
                    "key column {}.{} uses collation {coll}, which compares some different strings as equal \
                     ('a' and 'A', or 'u' and 'ü'), so two edge keys could be one central row; \
                     give it a binary collation: ALTER TABLE {} MODIFY {} {} COLLATE utf8mb4_bin",
                    table.central,
                    c.central,
                    table.central,
                    sql::ident(&c.central),
                    info.native.column_type
                )));
            }
        }
    }
    Ok(())
}

/// `(name, body)` of every trigger on a table.
pub(crate) async fn triggers_of<Q: Queryable>(
    q: &mut Q,
    found: &Found,
) -> Result<Vec<(String, String)>> {
    q.exec(
        "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS
          WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?",
        (&found.schema, &found.name),
    )
    .await
    .map_err(ctx("reading triggers"))
}

/// Does the table have an index of this name?
pub(crate) async fn index_exists<Q: Queryable>(
    q: &mut Q,
    found: &Found,
    index: &str,
) -> Result<bool> {
    let n: Option<u64> = q
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.STATISTICS
              WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = ?",
            (&found.schema, &found.name, index),
        )
        .await
        .map_err(ctx("reading indexes"))?;
    Ok(n.unwrap_or(0) > 0)
}

/// Does `schema.name` exist as a table?
pub(crate) async fn table_exists<Q: Queryable>(
    q: &mut Q,
    schema: &str,
    name: &str,
) -> Result<bool> {
    let n: Option<u64> = q
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (schema, name),
        )
        .await
        .map_err(ctx(format!("checking for {schema}.{name}")))?;
    Ok(n.unwrap_or(0) > 0)
}
