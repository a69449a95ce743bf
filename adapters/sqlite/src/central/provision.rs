//! `init-sync` / `deinit-sync` planning for a SQLite central. Unlike an
//! edge, the central never gets tables created for it: its tables are the
//! source of truth and must exist.

use edgesync_core::central::Statement;
use edgesync_core::{names, DeleteMode, Error, Result, TableMapping};
use rusqlite::Connection;

use crate::error::SqlResultExt;
use crate::schema::{self, tpl, TableDdl};
use crate::sql;

/// The columns edgesync adds to central tables.
const ES_COLUMNS: [&str; 5] = [
    names::COL_VER,
    names::COL_DELETED,
    names::COL_HLC,
    names::COL_ORIGIN,
    names::COL_OSEQ,
];

const META_TABLES: [&str; 6] = [
    "es_ctl",
    "es_nodes",
    "es_tombstones",
    "es_conflicts",
    "es_pulls",
    "es_purged",
];

pub(super) fn plan_init(conn: &Connection, tables: &[TableMapping]) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    let mut meta_in_place = schema::exists(conn, "index", "es_tombstones_ver")?;
    for t in META_TABLES {
        meta_in_place &= schema::exists(conn, "table", t)?;
    }
    if meta_in_place {
        meta_in_place = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM es_ctl WHERE id = 1)",
                [],
                |r| r.get(0),
            )
            .db()?;
    }
    if !meta_in_place {
        out.extend(schema::with_purpose(
            "central metadata",
            schema::render(tpl::CENTRAL_METADATA, &[])?,
        ));
    }
    // A conflict log created by an older edgesync lacks the newer columns.
    if schema::exists(conn, "table", "es_conflicts")? {
        let present: Vec<String> = schema::table_columns(conn, "es_conflicts")?
            .into_iter()
            .map(|c| c.name)
            .collect();
        let ddl = TableDdl::new("es_conflicts", &[]);
        for (col, stmt) in schema::missing_columns(&ddl, tpl::CENTRAL_CONFLICT_COLUMNS, &present)? {
            out.extend(schema::with_purpose(
                &format!("add column es_conflicts.{col}"),
                vec![stmt],
            ));
        }
    }
    for m in tables {
        plan_table(conn, m, &mut out)?;
    }
    out.extend(super::hub::plan_init(conn)?);
    Ok(out)
}

fn plan_table(conn: &Connection, m: &TableMapping, out: &mut Vec<Statement>) -> Result<()> {
    let table = &m.central.name;
    if m.key.is_empty() {
        return Err(Error::new(
            edgesync_core::ErrorKind::Config,
            format!("table {table}: no key columns"),
        ));
    }
    let Some(actual) = schema::table_name(conn, table)? else {
        return Err(Error::schema(format!(
            "central table {table} does not exist in the SQLite central"
        )));
    };
    let key: Vec<&str> = m.key_columns().map(|c| c.central.as_str()).collect();
    if !schema::has_unique_key(conn, &actual, &key)? {
        return Err(Error::schema(format!(
            "central table {table} has no primary key or unique index on ({}); edgesync matches rows by it",
            key.join(", ")
        )));
    }
    let cols = schema::table_columns(conn, &actual)?;
    for c in &m.columns {
        if !cols.iter().any(|x| x.name.eq_ignore_ascii_case(&c.central)) {
            return Err(Error::schema(format!(
                "central table {table} has no column {}",
                c.central
            )));
        }
    }
    let present: Vec<String> = cols.into_iter().map(|c| c.name).collect();
    let key: Vec<sql::KeyCol> = super::CentralTable::new(m).key;
    let ddl = TableDdl::new(table, &key);
    let missing = schema::missing_columns(&ddl, tpl::CENTRAL_COLUMNS, &present)?;
    let adds_ver = missing.iter().any(|(c, _)| c == names::COL_VER);
    for (col, stmt) in missing {
        out.extend(schema::with_purpose(
            &format!("add column {table}.{col}"),
            vec![stmt],
        ));
    }
    if !schema::exists(
        conn,
        "index",
        &names::object_name("ver", table, schema::MAX_NAME),
    )? {
        out.extend(schema::with_purpose(
            &format!("index {table}.es_ver"),
            ddl.render(tpl::VER_INDEX)?,
        ));
    }
    if adds_ver && schema::has_rows(conn, &actual)? {
        out.extend(schema::with_purpose(
            &format!("give the existing rows of {table} central versions"),
            ddl.render(tpl::CENTRAL_MARK_VERSIONS)?,
        ));
    }
    let mut desired = ddl.render(tpl::CENTRAL_TRIGGERS)?;
    desired.extend(ddl.render(match m.deletes {
        DeleteMode::Soft => tpl::CENTRAL_SOFT_DELETE_TRIGGER,
        DeleteMode::Hard => tpl::CENTRAL_HARD_DELETE_TRIGGER,
    })?);
    out.extend(schema::plan_triggers(conn, Some(&actual), desired)?);
    Ok(())
}

pub(super) fn plan_deinit(
    conn: &Connection,
    tables: &[TableMapping],
    all: bool,
) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    let mut done: Vec<String> = Vec::new();
    for m in tables {
        let table = &m.central.name;
        if let Some(actual) = schema::table_name(conn, table)? {
            out.extend(schema::deprovision_table(conn, &actual, &ES_COLUMNS)?);
            done.push(actual.to_lowercase());
        }
        if !all && has_metadata_rows(conn, table)? {
            out.extend(schema::with_purpose(
                &format!("forget the sync state of {table}"),
                schema::render(tpl::CENTRAL_FORGET_TABLE, &[("tbl", sql::literal(table))])?,
            ));
        }
    }
    if all {
        for t in schema::provisioned_tables(conn, &ES_COLUMNS)? {
            if !done.contains(&t.to_lowercase()) {
                out.extend(schema::deprovision_table(conn, &t, &ES_COLUMNS)?);
            }
        }
        let mut any = false;
        for t in META_TABLES {
            any |= schema::exists(conn, "table", t)?;
        }
        if any {
            out.extend(schema::with_purpose(
                "drop central metadata",
                schema::render(tpl::CENTRAL_DROP_METADATA, &[])?,
            ));
        }
        out.extend(super::hub::plan_deinit(conn)?);
    }
    Ok(out)
}

fn has_metadata_rows(conn: &Connection, table: &str) -> Result<bool> {
    let mut any = false;
    for meta in ["es_tombstones", "es_nodes"] {
        if schema::exists(conn, "table", meta)? {
            any |= conn
                .query_row(
                    &format!("SELECT EXISTS (SELECT 1 FROM {meta} WHERE tbl = ?1)"),
                    [table],
                    |r| r.get::<_, bool>(0),
                )
                .db()?;
        }
    }
    Ok(any)
}
