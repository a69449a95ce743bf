//! Introspection (`PRAGMA table_xinfo`, `sqlite_master`) and the DDL built
//! from the reviewable templates under `schemas/sqlite/`.
//!
//! Provisioning is planned by comparing what the file has with what the
//! templates would create, object by object: a missing column gets its
//! `ALTER TABLE`, a trigger whose stored text differs from the rendered one
//! (the table's direction or delete mode changed) is dropped and recreated,
//! and a plan for a file that is fully in place is empty. That comparison is
//! what makes `init-sync` idempotent, and it works because SQLite keeps the
//! exact text of every `CREATE TRIGGER` in `sqlite_master`.

use std::collections::HashMap;

mod ddl;

use edgesync_core::central::Statement;
use edgesync_core::schema::{Column, QualifiedName, TableSchema};
use edgesync_core::{names, Result};
use rusqlite::{Connection, OptionalExtension};

use crate::error::SqlResultExt;
use crate::sql;
use crate::types;

pub(crate) use ddl::{missing_columns, render, tpl, with_purpose, TableDdl, MAX_NAME};

/// One row of `PRAGMA table_xinfo`.
#[derive(Debug, Clone)]
pub(crate) struct ColInfo {
    pub name: String,
    pub decl: String,
    pub notnull: bool,
    pub default: Option<String>,
    /// 1-based position in the primary key, 0 if not part of it.
    pub pk: i64,
}

/// The stored name of table `name` (SQLite names are case-insensitive), if
/// it exists.
pub(crate) fn table_name(conn: &Connection, name: &str) -> Result<Option<String>> {
    conn.query_row(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        [name],
        |r| r.get(0),
    )
    .optional()
    .db_ctx(|| format!("looking up table {name}"))
}

/// Does a schema object of this type and name exist?
pub(crate) fn exists(conn: &Connection, kind: &str, name: &str) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = ?1 AND name = ?2 COLLATE NOCASE)",
        [kind, name],
        |r| r.get(0),
    )
    .db()
}

/// Does the table hold any row?
pub(crate) fn has_rows(conn: &Connection, table: &str) -> Result<bool> {
    conn.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM {})", sql::ident(table)),
        [],
        |r| r.get(0),
    )
    .db()
}

/// The table's ordinary columns (generated and hidden ones left out: they
/// cannot be written), edgesync's own included.
pub(crate) fn table_columns(conn: &Connection, table: &str) -> Result<Vec<ColInfo>> {
    let mut stmt = conn
        .prepare(
            "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1)",
        )
        .db()?;
    let rows = stmt
        .query_map([table], |r| {
            Ok((
                ColInfo {
                    name: r.get(0)?,
                    decl: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    notnull: r.get::<_, i64>(2)? != 0,
                    default: r.get(3)?,
                    pk: r.get(4)?,
                },
                r.get::<_, i64>(5)?,
            ))
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (col, hidden) = row.db()?;
        if hidden == 0 {
            out.push(col);
        }
    }
    Ok(out)
}

/// Describe a user table without edgesync's columns; `None` if absent.
pub(crate) fn describe(conn: &Connection, name: &str) -> Result<Option<TableSchema>> {
    let Some(actual) = table_name(conn, name)? else {
        return Ok(None);
    };
    let cols = table_columns(conn, &actual)?;
    let mut pk: Vec<&ColInfo> = cols.iter().filter(|c| c.pk > 0).collect();
    pk.sort_by_key(|c| c.pk);
    // A lone INTEGER PRIMARY KEY is the rowid: SQLite assigns it.
    let rowid_alias = pk.len() == 1 && pk[0].decl.eq_ignore_ascii_case("INTEGER");
    let columns = cols
        .iter()
        .filter(|c| !names::is_reserved(&c.name))
        .map(|c| Column {
            name: c.name.clone(),
            ty: types::column_type(&c.decl),
            nullable: !c.notnull && c.pk == 0,
            has_default: c.default.is_some() || (rowid_alias && c.pk == 1),
        })
        .collect();
    Ok(Some(TableSchema {
        name: QualifiedName {
            schema: None,
            name: actual,
        },
        columns,
        primary_key: pk.iter().map(|c| c.name.clone()).collect(),
    }))
}

/// edgesync's objects (`es_*`) of one type on a table: name and stored SQL.
fn es_objects(conn: &Connection, kind: &str, table: &str) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare(
            "SELECT name, COALESCE(sql, '') FROM sqlite_master \
             WHERE type = ?1 AND tbl_name = ?2 COLLATE NOCASE AND name LIKE 'es\\_%' ESCAPE '\\' \
             ORDER BY name",
        )
        .db()?;
    let rows = stmt
        .query_map([kind, table], |r| Ok((r.get(0)?, r.get(1)?)))
        .db()?;
    rows.collect::<std::result::Result<_, _>>().db()
}

/// The name a `CREATE TRIGGER "name" ...` statement creates.
fn trigger_name(stmt: &str) -> String {
    let s = stmt.trim_start();
    let rest = s.strip_prefix("CREATE TRIGGER").unwrap_or(s).trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                } else {
                    break;
                }
            }
            name.push(c);
        }
        name
    } else {
        rest.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

fn normalise(sql: &str) -> &str {
    sql.trim().trim_end_matches(';').trim_end()
}

/// Drop/create statements that turn the table's `es_*` triggers into exactly
/// `desired` (rendered `CREATE TRIGGER` statements). `table` is `None` when
/// the table does not exist yet.
pub(crate) fn plan_triggers(
    conn: &Connection,
    table: Option<&str>,
    desired: Vec<String>,
) -> Result<Vec<Statement>> {
    let existing: HashMap<String, String> = match table {
        Some(t) => es_objects(conn, "trigger", t)?
            .into_iter()
            .map(|(n, s)| (n.to_lowercase(), s))
            .collect(),
        None => HashMap::new(),
    };
    let wanted: HashMap<String, &String> = desired
        .iter()
        .map(|s| (trigger_name(s).to_lowercase(), s))
        .collect();
    let mut drops = Vec::new();
    let mut names_sorted: Vec<&String> = existing.keys().collect();
    names_sorted.sort();
    for name in names_sorted {
        let keep = wanted
            .get(name)
            .is_some_and(|w| normalise(w) == normalise(&existing[name]));
        if !keep {
            drops.extend(drop_trigger(name)?);
        }
    }
    let creates = desired
        .iter()
        .filter(|s| {
            existing
                .get(&trigger_name(s).to_lowercase())
                .is_none_or(|e| normalise(e) != normalise(s))
        })
        .map(|s| Statement {
            purpose: format!(
                "create trigger {}",
                s.lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("CREATE TRIGGER ")
            ),
            sql: s.clone(),
        });
    drops.extend(creates);
    Ok(drops)
}

fn drop_trigger(name: &str) -> Result<Vec<Statement>> {
    Ok(with_purpose(
        &format!("drop trigger {name}"),
        render(tpl::DROP_TRIGGER, &[("trigger", sql::ident(name))])?,
    ))
}

/// Everything edgesync added to one existing table: its `es_*` triggers,
/// then its `es_*` indexes, then those of `es_columns` the table has (in
/// that order: SQLite refuses to drop a column a trigger or index uses).
pub(crate) fn deprovision_table(
    conn: &Connection,
    table: &str,
    es_columns: &[&str],
) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for (name, _) in es_objects(conn, "trigger", table)? {
        out.extend(drop_trigger(&name)?);
    }
    for (name, _) in es_objects(conn, "index", table)? {
        out.extend(with_purpose(
            &format!("drop index {name}"),
            render(tpl::DROP_INDEX, &[("index", sql::ident(&name))])?,
        ));
    }
    let present = table_columns(conn, table)?;
    for col in es_columns {
        if present.iter().any(|c| c.name.eq_ignore_ascii_case(col)) {
            out.extend(with_purpose(
                &format!("drop column {table}.{col}"),
                render(
                    tpl::DROP_COLUMN,
                    &[("table", sql::ident(table)), ("column", sql::ident(col))],
                )?,
            ));
        }
    }
    Ok(out)
}

/// Every user table (not `es_*`, not `sqlite_*`) that still carries an
/// edgesync trigger, index or one of `es_columns`.
pub(crate) fn provisioned_tables(conn: &Connection, es_columns: &[&str]) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'es\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             ORDER BY name",
        )
        .db()?;
    let all: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .db()?
        .collect::<std::result::Result<_, _>>()
        .db()?;
    let mut out = Vec::new();
    for t in all {
        let touched = !es_objects(conn, "trigger", &t)?.is_empty()
            || !es_objects(conn, "index", &t)?.is_empty()
            || table_columns(conn, &t)?
                .iter()
                .any(|c| es_columns.iter().any(|e| c.name.eq_ignore_ascii_case(e)));
        if touched {
            out.push(t);
        }
    }
    Ok(out)
}

/// Run statements in one `BEGIN IMMEDIATE` transaction; any error rolls the
/// whole script back.
pub(crate) fn execute(conn: &mut Connection, statements: &[Statement]) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    for s in statements {
        tx.execute_batch(&s.sql).db_ctx(|| s.purpose.clone())?;
    }
    tx.commit().db()
}

/// Does `table` have a primary key or a unique index on exactly `key`
/// (in any order)? Rows are matched by the key, so it must be unique.
pub(crate) fn has_unique_key(conn: &Connection, table: &str, key: &[&str]) -> Result<bool> {
    let same = |cols: &[String]| {
        cols.len() == key.len()
            && key
                .iter()
                .all(|k| cols.iter().any(|c| c.eq_ignore_ascii_case(k)))
    };
    let pk: Vec<String> = {
        let mut st = conn
            .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
            .db()?;
        let rows = st.query_map([table], |r| r.get::<_, String>(0)).db()?;
        rows.collect::<std::result::Result<_, _>>().db()?
    };
    if !pk.is_empty() && same(&pk) {
        return Ok(true);
    }
    let indexes: Vec<String> = {
        let mut st = conn
            .prepare("SELECT name FROM pragma_index_list(?1) WHERE \"unique\" = 1 AND partial = 0")
            .db()?;
        let rows = st.query_map([table], |r| r.get::<_, String>(0)).db()?;
        rows.collect::<std::result::Result<_, _>>().db()?
    };
    for ix in indexes {
        let cols: Vec<String> = {
            let mut st = conn
                .prepare("SELECT name FROM pragma_index_info(?1)")
                .db()?;
            let rows = st.query_map([&ix], |r| r.get::<_, String>(0)).db()?;
            rows.collect::<std::result::Result<_, _>>().db()?
        };
        if same(&cols) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_names_are_parsed() {
        assert_eq!(
            trigger_name("CREATE TRIGGER \"es_ai_a\"\"b\" AFTER"),
            "es_ai_a\"b"
        );
        assert_eq!(trigger_name("CREATE TRIGGER es_x AFTER"), "es_x");
    }

    #[test]
    fn describe_reports_keys_types_and_defaults() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(
            "CREATE TABLE Items (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL DEFAULT '', \
             price DECIMAL(12,2), es_ver INTEGER, g INTEGER GENERATED ALWAYS AS (id * 2))",
        )
        .expect("create");
        let t = describe(&conn, "items").expect("describe").expect("exists");
        assert_eq!(t.name.name, "Items");
        assert_eq!(t.primary_key, vec!["id"]);
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "name", "price"]);
        assert!(t.columns[0].has_default && !t.columns[0].nullable);
        assert_eq!(
            t.columns[1].ty,
            Ok(edgesync_core::ColType::Text { max_len: Some(20) })
        );
        assert!(t.columns[2].ty.is_err());
        assert!(describe(&conn, "nope").expect("describe").is_none());
    }
}
