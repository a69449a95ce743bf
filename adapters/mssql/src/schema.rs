//! Introspection: `describe`, and the catalog facts provisioning, push and
//! pull rely on (a table's object id and native column types, triggers,
//! indexes, unique keys).

use std::collections::HashMap;

use edgesync_core::{names, Column, Error, QualifiedName, Result, TableMapping, TableSchema};

use crate::connection::{Conn, Pool};
use crate::sql::{self, Native};
use crate::types::{self, get_bool, get_int, get_text, need_int, ColumnInfo, Param};

/// The metadata columns, in the order `init_table.sql` adds them.
pub const META_COLUMNS: [&str; 5] = [
    names::COL_VER,
    names::COL_DELETED,
    names::COL_HLC,
    names::COL_ORIGIN,
    names::COL_OSEQ,
];

/// A table found in the catalog.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// `sys.objects.object_id`.
    pub object_id: i64,
    /// The schema it was found in.
    pub schema: String,
    /// Its name as the catalog spells it.
    pub name: String,
}

/// One column as the catalog has it.
#[derive(Debug, Clone)]
pub(crate) struct CatalogColumn {
    pub name: String,
    pub info: ColumnInfo,
    pub nullable: bool,
    pub has_default: bool,
    pub computed: bool,
    pub identity: bool,
    pub collation: Option<String>,
}

impl CatalogColumn {
    pub fn native(&self) -> Native {
        Native {
            decl: self.info.decl(),
            collation: self.collation.clone(),
            identity: self.identity,
        }
    }
}

/// Look a table up by schema and name (the catalog's collation decides
/// whether case matters, as it does for every query).
pub(crate) async fn find_table(conn: &mut Conn, table: &QualifiedName) -> Result<Option<Found>> {
    let rows = conn
        .query(
            "SELECT CAST(o.object_id AS bigint), s.name, o.name
               FROM sys.objects o JOIN sys.schemas s ON s.schema_id = o.schema_id
              WHERE o.type = 'U' AND s.name = @P1 AND o.name = @P2",
            &[
                Param::Text(Some(sql::schema_of(table).to_string())),
                Param::Text(Some(table.name.clone())),
            ],
            &format!("looking up central table {table}"),
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(Found {
                object_id: need_int(r, 0)?,
                schema: get_text(r, 1)?.unwrap_or_default(),
                name: get_text(r, 2)?.unwrap_or_default(),
            })
        })
        .transpose()
}

/// Every column of a table, in table order.
pub(crate) async fn columns(conn: &mut Conn, object_id: i64) -> Result<Vec<CatalogColumn>> {
    let rows = conn
        .query(
            "SELECT c.name, TYPE_NAME(c.system_type_id), CAST(c.max_length AS int),
                    CAST(c.precision AS int), CAST(c.scale AS int), c.is_nullable,
                    CAST(CASE WHEN c.default_object_id <> 0 OR c.is_identity = 1
                              OR c.is_computed = 1 THEN 1 ELSE 0 END AS bit),
                    c.is_computed, c.collation_name, c.is_identity,
                    CAST(CASE WHEN EXISTS (
                        SELECT 1 FROM sys.check_constraints k
                         WHERE k.parent_object_id = c.object_id
                           AND k.parent_column_id = c.column_id AND k.is_disabled = 0
                           AND k.definition LIKE N'%isjson(%') THEN 1 ELSE 0 END AS bit),
                    CAST(COLLATIONPROPERTY(c.collation_name, 'CodePage') AS int)
               FROM sys.columns c
              WHERE c.object_id = @P1
              ORDER BY c.column_id",
            &[Param::Int(Some(object_id))],
            "reading column types",
        )
        .await?;
    rows.iter()
        .map(|r| {
            let small = |i| -> Result<i64> { Ok(get_int(r, i)?.unwrap_or(0)) };
            Ok(CatalogColumn {
                name: get_text(r, 0)?.unwrap_or_default(),
                info: ColumnInfo {
                    type_name: get_text(r, 1)?.unwrap_or_default(),
                    max_length: small(2)? as i16,
                    precision: small(3)? as u8,
                    scale: small(4)? as u8,
                    code_page: get_int(r, 11)?.map(|c| c as i32),
                    is_json: get_bool(r, 10)?.unwrap_or(false),
                },
                nullable: get_bool(r, 5)?.unwrap_or(true),
                has_default: get_bool(r, 6)?.unwrap_or(false),
                computed: get_bool(r, 7)?.unwrap_or(false),
                collation: get_text(r, 8)?,
                identity: get_bool(r, 9)?.unwrap_or(false),
            })
        })
        .collect()
}

/// `describe` for the trait.
pub async fn describe(pool: &Pool, table: &QualifiedName) -> Result<Option<TableSchema>> {
    let mut conn = pool.get().await?;
    let Some(found) = find_table(&mut conn, table).await? else {
        return Ok(None);
    };
    let cols = columns(&mut conn, found.object_id).await?;
    let columns = cols
        .iter()
        .filter(|c| !names::is_reserved(&c.name))
        .map(|c| Column {
            name: c.name.clone(),
            ty: if c.computed {
                Err(format!(
                    "{} (a computed column cannot be written)",
                    c.info.decl()
                ))
            } else {
                types::col_type(&c.info)
            },
            nullable: c.nullable,
            has_default: c.has_default,
        })
        .collect();
    let rows = conn
        .query(
            "SELECT c.name
               FROM sys.indexes i
               JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
               JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
              WHERE i.object_id = @P1 AND i.is_primary_key = 1 AND ic.key_ordinal > 0
              ORDER BY ic.key_ordinal",
            &[Param::Int(Some(found.object_id))],
            &format!("reading the primary key of {table}"),
        )
        .await?;
    let primary_key = rows
        .iter()
        .map(|r| Ok(get_text(r, 0)?.unwrap_or_default()))
        .collect::<Result<Vec<String>>>()?;
    Ok(Some(TableSchema {
        name: QualifiedName {
            schema: table.schema.as_ref().map(|_| found.schema.clone()),
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
/// table is there and provisioned. Staging tables are declared with them.
pub async fn natives(conn: &mut Conn, table: &TableMapping) -> Result<Vec<Native>> {
    let found = find_table(conn, &table.central)
        .await?
        .ok_or_else(|| Error::schema(format!("central table {} does not exist", table.central)))?;
    let cols = columns(conn, found.object_id).await?;
    if let Some(missing) = META_COLUMNS
        .iter()
        .find(|m| !cols.iter().any(|c| c.name.eq_ignore_ascii_case(m)))
    {
        return Err(Error::schema(format!(
            "central table {} is not provisioned for sync (column {missing} is missing); run init-sync",
            table.central
        )));
    }
    Ok(mapped(table, &cols)?
        .into_iter()
        .map(|c| c.native())
        .collect())
}

/// Trigger names of a table, with their definitions.
pub(crate) async fn triggers_of(
    conn: &mut Conn,
    object_id: i64,
) -> Result<HashMap<String, String>> {
    let rows = conn
        .query(
            "SELECT t.name, m.definition FROM sys.triggers t
               JOIN sys.sql_modules m ON m.object_id = t.object_id
              WHERE t.parent_id = @P1",
            &[Param::Int(Some(object_id))],
            "reading triggers",
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                get_text(r, 0)?.unwrap_or_default(),
                get_text(r, 1)?.unwrap_or_default(),
            ))
        })
        .collect()
}

/// Index names of a table.
pub(crate) async fn indexes_of(conn: &mut Conn, object_id: i64) -> Result<Vec<String>> {
    let rows = conn
        .query(
            "SELECT name FROM sys.indexes WHERE object_id = @P1 AND name IS NOT NULL",
            &[Param::Int(Some(object_id))],
            "reading indexes",
        )
        .await?;
    rows.iter()
        .map(|r| Ok(get_text(r, 0)?.unwrap_or_default()))
        .collect()
}

/// The push matches rows by the key; without a unique index on exactly the
/// key columns two edges could insert the same key twice.
pub(crate) async fn check_unique_key(
    conn: &mut Conn,
    table: &TableMapping,
    object_id: i64,
) -> Result<()> {
    let rows = conn
        .query(
            "SELECT i.index_id, c.name
               FROM sys.indexes i
               JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
               JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
              WHERE i.object_id = @P1 AND i.is_unique = 1 AND i.has_filter = 0
                AND ic.key_ordinal > 0",
            &[Param::Int(Some(object_id))],
            "reading unique indexes",
        )
        .await?;
    let mut indexes: HashMap<i64, Vec<String>> = HashMap::new();
    for r in &rows {
        indexes
            .entry(need_int(r, 0)?)
            .or_default()
            .push(get_text(r, 1)?.unwrap_or_default().to_lowercase());
    }
    let mut key: Vec<String> = table
        .key_columns()
        .map(|c| c.central.to_lowercase())
        .collect();
    key.sort_unstable();
    let found = indexes.into_values().any(|mut cols| {
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
