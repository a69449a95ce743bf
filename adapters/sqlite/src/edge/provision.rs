//! `init-sync` / `deinit-sync` planning for an edge file.
//!
//! Plans are computed from what the file has now and contain only what is
//! missing, in an order that works in one transaction: metadata tables, the
//! user table (created from the central schema if absent), `es_` columns,
//! the `es_ver` index, marking pre-existing rows for upload, and last the
//! triggers (so the marking is not itself captured).

use std::path::Path;

use edgesync_core::central::Statement;
use edgesync_core::{names, DeleteMode, Direction, Error, ErrorKind, Result, TableMapping};
use rusqlite::{Connection, OptionalExtension};

use crate::error::SqlResultExt;
use crate::schema::{self, tpl, TableDdl};
use crate::sql::{self, KeyCol};
use crate::types;

/// The columns edgesync adds to edge tables.
pub(super) const ES_COLUMNS: [&str; 4] = [
    names::COL_VER,
    names::COL_CVER,
    names::COL_DELETED,
    names::COL_HLC,
];

/// The node id in `es_ctl`, if the file is provisioned.
pub(super) fn node(conn: &Connection) -> Result<Option<String>> {
    if !schema::exists(conn, "table", "es_ctl")? {
        return Ok(None);
    }
    conn.query_row("SELECT node FROM es_ctl WHERE id = 1", [], |r| r.get(0))
        .optional()
        .db_ctx(|| "reading the node id from es_ctl")
}

pub(super) fn plan_init(
    conn: &Connection,
    path: &Path,
    node_id: &str,
    tables: &[TableMapping],
) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    let current = node(conn)?;
    if let Some(existing) = &current {
        if existing != node_id {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "edge file {} is provisioned for node '{existing}', not '{node_id}' \
                     (each edge file belongs to one node; deinit-sync it first to reuse it)",
                    path.display()
                ),
            ));
        }
    }
    let meta_in_place = current.is_some()
        && schema::exists(conn, "table", "es_state")?
        && schema::exists(conn, "table", "es_tombstones")?
        && schema::exists(conn, "index", "es_tombstones_ver")?
        && schema::exists(conn, "table", "es_base")?;
    if !meta_in_place {
        let stmts = schema::render(tpl::EDGE_METADATA, &[("node", sql::literal(node_id))])?;
        out.extend(schema::with_purpose("edge metadata", stmts));
    }
    super::app::plan_init_tables(conn, &mut out)?;
    super::evolve::plan_schema_table(conn, &mut out)?;
    for m in tables {
        plan_table(conn, m, &mut out)?;
    }
    super::app::plan_init_views(conn, tables, &mut out)?;
    Ok(out)
}

fn key_cols(m: &TableMapping) -> Vec<KeyCol> {
    m.key_columns()
        .map(|c| KeyCol {
            name: c.edge.clone(),
            ty: c.edge_ty,
        })
        .collect()
}

fn plan_table(conn: &Connection, m: &TableMapping, out: &mut Vec<Statement>) -> Result<()> {
    let table = &m.edge;
    if m.key.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("table {table}: no key columns (set key = [...] or give it a primary key)"),
        ));
    }
    let key = key_cols(m);
    let ddl = TableDdl::new(table, &key);
    let actual = schema::table_name(conn, table)?;
    // Columns the central gained since this table was provisioned (schema
    // evolution): added here, nullable, and fetched again by a re-pull.
    let mut added = Vec::new();
    let present: Vec<String> = match &actual {
        None => {
            let columns: Vec<String> = m
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let not_null = !c.nullable || m.key.contains(&i);
                    format!(
                        "  {} {}{}",
                        sql::ident(&c.edge),
                        types::declared_type(c.ty),
                        if not_null { " NOT NULL" } else { "" }
                    )
                })
                .collect();
            let ddl_create = TableDdl::new(table, &key).with("columns", columns.join(",\n"));
            out.extend(schema::with_purpose(
                &format!("create edge table {table} from the central schema"),
                ddl_create.render(tpl::EDGE_CREATE_TABLE)?,
            ));
            Vec::new()
        }
        Some(actual) => {
            let cols = schema::table_columns(conn, actual)?;
            let provisioned = cols
                .iter()
                .any(|x| x.name.eq_ignore_ascii_case(names::COL_VER));
            for c in &m.columns {
                if !cols.iter().any(|x| x.name.eq_ignore_ascii_case(&c.edge)) {
                    if provisioned && !m.key_columns().any(|k| k.central == c.central) {
                        added.push(c);
                        continue;
                    }
                    return Err(Error::schema(format!(
                        "edge table {table} has no column {} (mapped to central column {})",
                        c.edge, c.central
                    )));
                }
            }
            cols.into_iter().map(|c| c.name).collect()
        }
    };
    let missing = schema::missing_columns(&ddl, tpl::EDGE_COLUMNS, &present)?;
    let adds_ver = missing.iter().any(|(c, _)| c == names::COL_VER);
    for (col, stmt) in missing {
        out.extend(schema::with_purpose(
            &format!("add column {table}.{col}"),
            vec![stmt],
        ));
    }
    if !added.is_empty() {
        let n = super::evolve::pending(conn, table)?;
        if n > 0 {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "table {table}: the central table has new columns, and {n} local change(s) \
                     are not pushed yet; run `edgesync sync --table {table}` first so they reach \
                     the central under the columns they were written with (the daemon does \
                     both steps by itself)"
                ),
            ));
        }
    }
    for c in &added {
        out.extend(super::evolve::plan_add_column(
            actual.as_deref().unwrap_or(table),
            c,
        )?);
    }
    let index = names::object_name("ver", table, schema::MAX_NAME);
    if actual.is_none() || !schema::exists(conn, "index", &index)? {
        out.extend(schema::with_purpose(
            &format!("index {table}.es_ver"),
            ddl.render(tpl::VER_INDEX)?,
        ));
    }
    if let Some(actual) = &actual {
        if adds_ver && m.direction.pushes() && schema::has_rows(conn, actual)? {
            out.extend(schema::with_purpose(
                &format!("mark the existing rows of {table} for upload"),
                ddl.render(tpl::EDGE_MARK_DIRTY)?,
            ));
        }
    }
    // The capture triggers also keep a clean row's values as its conflict
    // base (es_base), in mapping order.
    let cols: Vec<KeyCol> = m
        .columns
        .iter()
        .map(|c| KeyCol {
            name: c.edge.clone(),
            ty: c.edge_ty,
        })
        .collect();
    let ddl = ddl.with("old_row_json", sql::row_json("OLD.", &cols));
    // The update trigger watches every column but edgesync's stamps, so the
    // triggers' own stamping UPDATEs do not run it (see the template).
    let mut watched: Vec<&str> = present.iter().map(String::as_str).collect();
    watched.extend(m.columns.iter().map(|c| c.edge.as_str()));
    watched.push(names::COL_DELETED);
    let mut update_columns: Vec<&str> = Vec::new();
    for c in watched {
        let stamp = [names::COL_VER, names::COL_HLC, names::COL_CVER]
            .iter()
            .any(|s| c.eq_ignore_ascii_case(s));
        if !stamp && !update_columns.iter().any(|u| u.eq_ignore_ascii_case(c)) {
            update_columns.push(c);
        }
    }
    let ddl = ddl.with("update_columns", sql::column_list("", update_columns));
    let mut desired = Vec::new();
    if m.direction == Direction::Pull {
        desired.extend(ddl.render(tpl::EDGE_READONLY_TRIGGERS)?);
    } else {
        desired.extend(ddl.render(tpl::EDGE_CAPTURE_TRIGGERS)?);
        desired.extend(ddl.render(match m.deletes {
            DeleteMode::Soft => tpl::EDGE_SOFT_DELETE_TRIGGER,
            DeleteMode::Hard => tpl::EDGE_HARD_DELETE_TRIGGER,
        })?);
    }
    out.extend(schema::plan_triggers(conn, actual.as_deref(), desired)?);
    let added: Vec<String> = added.iter().map(|c| c.central.clone()).collect();
    super::evolve::plan_record(conn, m, &added, out)?;
    Ok(())
}

pub(super) fn plan_deinit(
    conn: &Connection,
    tables: &[TableMapping],
    all: bool,
) -> Result<Vec<Statement>> {
    // Views first: SQLite refuses to drop a column a view uses.
    let (mut out, views_last) = super::app::plan_deinit_views(conn, tables, all)?;
    let mut done: Vec<String> = Vec::new();
    for m in tables {
        if let Some(actual) = schema::table_name(conn, &m.edge)? {
            out.extend(schema::deprovision_table(conn, &actual, &ES_COLUMNS)?);
            done.push(actual.to_lowercase());
        }
        if !all {
            out.extend(forget_table(conn, &m.edge)?);
        }
    }
    if all {
        // Triggers left on any other table would make the application's
        // writes fail once es_ctl is gone, so sweep them too.
        for t in schema::provisioned_tables(conn, &ES_COLUMNS)? {
            if !done.contains(&t.to_lowercase()) {
                out.extend(schema::deprovision_table(conn, &t, &ES_COLUMNS)?);
            }
        }
        let any_meta = [
            "es_ctl",
            "es_state",
            "es_tombstones",
            "es_base",
            "es_quarantine",
            "es_conflicts",
            "es_sync_requests",
            "es_schema",
        ]
        .into_iter()
        .map(|t| schema::exists(conn, "table", t))
        .collect::<Result<Vec<bool>>>()?
        .contains(&true);
        if any_meta {
            out.extend(schema::with_purpose(
                "drop edge metadata",
                schema::render(tpl::EDGE_DROP_METADATA, &[])?,
            ));
        }
    } else {
        out.extend(views_last);
    }
    Ok(out)
}

/// Delete the table's tombstones, conflict bases and state row, where there
/// are any.
fn forget_table(conn: &Connection, table: &str) -> Result<Vec<Statement>> {
    let mut any = false;
    let mut present = Vec::new();
    for meta in [
        "es_tombstones",
        "es_state",
        "es_base",
        "es_quarantine",
        "es_conflicts",
        "es_schema",
    ] {
        if schema::exists(conn, "table", meta)? {
            present.push(meta);
            any |= conn
                .query_row(
                    &format!("SELECT EXISTS (SELECT 1 FROM {meta} WHERE tbl = ?1)"),
                    [table],
                    |r| r.get::<_, bool>(0),
                )
                .db()?;
        }
    }
    if !any {
        return Ok(Vec::new());
    }
    // (A file provisioned by an older edgesync may lack es_base.)
    let stmts: Vec<String> =
        schema::render(tpl::EDGE_FORGET_TABLE, &[("tbl", sql::literal(table))])?
            .into_iter()
            .filter(|s| present.iter().any(|m| s.contains(&format!("FROM {m} "))))
            .collect();
    Ok(schema::with_purpose(
        &format!("forget the sync state of {table}"),
        stmts,
    ))
}
