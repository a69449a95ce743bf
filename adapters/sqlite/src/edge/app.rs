//! What edge applications see: status views, sync requests and the parked
//! conflicts of `manual` tables, all readable and writable with plain SQL
//! (see `schemas/sqlite/edge_app.sql`, `edge_views.sql`,
//! `edge_views_rows.sql`).
//!
//! Provisioning: `init-sync` creates `es_sync_requests`, `es_conflicts`, the
//! `es_state` columns `syncing_since` / `last_sync_at`, one `es_rows_<table>`
//! view per synced table and the `es_status` view over every synced table of
//! the file; `deinit-sync` drops them (the views first: SQLite refuses to
//! drop a column a view uses).
//!
//! At run time the engine marks the tables it syncs (`syncing_since`),
//! serves pending requests, applies the choices applications wrote into
//! `es_conflicts`, and refreshes that table from the central's log.

use edgesync_core::central::Statement;
use edgesync_core::{names, ConflictRecord, Keep, Result, TableMapping, Value};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};

use crate::error::SqlResultExt;
use crate::schema::{self, MAX_NAME};
use crate::sql::{self, KeyCol};
use crate::types;

const EDGE_APP: &str = include_str!("../../../../schemas/sqlite/edge_app.sql");
const EDGE_STATE_COLUMNS: &str = include_str!("../../../../schemas/sqlite/edge_state_columns.sql");
const EDGE_VIEWS: &str = include_str!("../../../../schemas/sqlite/edge_views.sql");
const EDGE_VIEWS_ROWS: &str = include_str!("../../../../schemas/sqlite/edge_views_rows.sql");

/// The `es_state` columns the status views need.
const STATE_COLUMNS: [&str; 2] = ["syncing_since", "last_sync_at"];

/// Served sync requests older than this are deleted.
const KEEP_SERVED: &str = "-7 days";

/// Does `table` have column `col`?
fn has_column(conn: &Connection, table: &str, col: &str) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2 COLLATE NOCASE)",
        [table, col],
        |r| r.get(0),
    )
    .db()
}

fn same_sql(a: &str, b: &str) -> bool {
    let n = |s: &str| s.trim().trim_end_matches(';').trim_end().to_string();
    n(a) == n(b)
}

fn view_sql(conn: &Connection, name: &str) -> Result<Option<String>> {
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?1 COLLATE NOCASE",
        [name],
        |r| r.get(0),
    )
    .optional()
    .db()
}

fn drop_view(name: &str) -> Vec<Statement> {
    schema::with_purpose(
        &format!("drop view {name}"),
        vec![format!("DROP VIEW IF EXISTS {};", sql::ident(name))],
    )
}

/// The name of a table's per-row view.
pub(super) fn rows_view(table: &str) -> String {
    names::object_name("rows", table, MAX_NAME)
}

/// `init-sync`, before the tables: the application tables and the
/// `es_state` columns, where missing.
pub(super) fn plan_init_tables(conn: &Connection, out: &mut Vec<Statement>) -> Result<()> {
    let in_place = schema::exists(conn, "table", "es_sync_requests")?
        && schema::exists(conn, "index", "es_sync_requests_open")?
        && schema::exists(conn, "table", "es_conflicts")?
        && schema::exists(conn, "index", "es_conflicts_row")?
        && schema::exists(conn, "table", "es_quarantine")?;
    if !in_place {
        out.extend(schema::with_purpose(
            "edge application tables",
            schema::render(EDGE_APP, &[])?,
        ));
    }
    let state = schema::exists(conn, "table", "es_state")?;
    for stmt in schema::render(EDGE_STATE_COLUMNS, &[])? {
        let col = STATE_COLUMNS
            .iter()
            .find(|c| stmt.contains(&format!("COLUMN {c} ")))
            .copied()
            .unwrap_or_default();
        if !state || !has_column(conn, "es_state", col)? {
            out.extend(schema::with_purpose(
                &format!("add column es_state.{col}"),
                vec![stmt],
            ));
        }
    }
    Ok(())
}

/// The `CREATE VIEW` of a table's per-row view.
fn rows_view_sql(m: &TableMapping) -> Result<String> {
    let key: Vec<KeyCol> = m
        .key_columns()
        .map(|c| KeyCol {
            name: c.edge.clone(),
            ty: c.edge_ty,
        })
        .collect();
    let key_select = key
        .iter()
        .map(|k| format!("r.{0} AS {0}", sql::ident(&k.name)))
        .collect::<Vec<_>>()
        .join(", ");
    let stmts = schema::render(
        EDGE_VIEWS_ROWS,
        &[
            ("view", sql::ident(&rows_view(&m.edge))),
            ("table", sql::ident(&m.edge)),
            ("tbl", sql::literal(&m.edge)),
            ("key_select", key_select),
            ("key_json", sql::key_json(Some("r."), 0, &key)),
        ],
    )?;
    Ok(stmts.concat())
}

/// The `CREATE VIEW es_status` over `tables`.
fn status_view_sql(tables: &[String]) -> Result<String> {
    let parts: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "  SELECT {lit}, (SELECT count(*) FROM {q} WHERE es_ver > \
                 COALESCE((SELECT push_wm FROM es_state WHERE tbl = {lit}), 0))",
                lit = sql::literal(t),
                q = sql::ident(t)
            )
        })
        .collect();
    let stmts = schema::render(EDGE_VIEWS, &[("tables", parts.join("\n  UNION ALL\n"))])?;
    Ok(stmts.concat())
}

/// Every table of the file that carries `es_ver`, by its stored name.
fn synced_tables(conn: &Connection) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for t in schema::provisioned_tables(conn, &super::provision::ES_COLUMNS)? {
        if has_column(conn, &t, names::COL_VER)? {
            out.push(t);
        }
    }
    Ok(out)
}

/// The tables `es_status` should cover after a plan: the file's synced
/// tables plus `adding`, minus `removing`, config spelling first, sorted.
fn status_tables(
    conn: &Connection,
    adding: &[TableMapping],
    removing: &[TableMapping],
) -> Result<Vec<String>> {
    let mut all: Vec<String> = adding.iter().map(|m| m.edge.clone()).collect();
    for t in synced_tables(conn)? {
        if !all.iter().any(|a| a.eq_ignore_ascii_case(&t)) {
            all.push(t);
        }
    }
    all.retain(|t| !removing.iter().any(|m| m.edge.eq_ignore_ascii_case(t)));
    all.sort_by_key(|t| t.to_lowercase());
    Ok(all)
}

/// `init-sync`, after the tables: each table's row view and `es_status`,
/// (re)created where missing or different.
pub(super) fn plan_init_views(
    conn: &Connection,
    tables: &[TableMapping],
    out: &mut Vec<Statement>,
) -> Result<()> {
    for m in tables {
        let name = rows_view(&m.edge);
        let want = rows_view_sql(m)?;
        let have = view_sql(conn, &name)?;
        if have.as_deref().is_some_and(|h| same_sql(h, &want)) {
            continue;
        }
        if have.is_some() {
            out.extend(drop_view(&name));
        }
        out.extend(schema::with_purpose(
            &format!("create view {name} (row status of {})", m.edge),
            vec![want],
        ));
    }
    let all = status_tables(conn, tables, &[])?;
    let want = status_view_sql(&all)?;
    let have = view_sql(conn, "es_status")?;
    if !have.as_deref().is_some_and(|h| same_sql(h, &want)) {
        if have.is_some() {
            out.extend(drop_view("es_status"));
        }
        out.extend(schema::with_purpose(
            "create view es_status (per-table sync status)",
            vec![want],
        ));
    }
    Ok(())
}

/// `deinit-sync`: the statements to run first (before any column goes:
/// SQLite refuses to drop a column a view uses) and last. With `all`, every
/// `es_` view is dropped; otherwise `tables`' row views, and `es_status`
/// is recreated over the tables still synced (dropped when none is left)
/// unless it already covers exactly those.
pub(super) fn plan_deinit_views(
    conn: &Connection,
    tables: &[TableMapping],
    all: bool,
) -> Result<(Vec<Statement>, Vec<Statement>)> {
    let mut first = Vec::new();
    let mut last = Vec::new();
    if all {
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'view' \
                 AND name LIKE 'es\\_%' ESCAPE '\\' ORDER BY name",
            )
            .db()?;
        let views: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .db()?
            .collect::<std::result::Result<_, _>>()
            .db()?;
        for v in views {
            first.extend(drop_view(&v));
        }
        return Ok((first, last));
    }
    for m in tables {
        let name = rows_view(&m.edge);
        if view_sql(conn, &name)?.is_some() {
            first.extend(drop_view(&name));
        }
    }
    if let Some(have) = view_sql(conn, "es_status")? {
        let rest = status_tables(conn, &[], tables)?;
        let want = if rest.is_empty() {
            None
        } else {
            Some(status_view_sql(&rest)?)
        };
        if !want.as_deref().is_some_and(|w| same_sql(&have, w)) {
            first.extend(drop_view("es_status"));
            if let Some(w) = want {
                last.extend(schema::with_purpose(
                    "create view es_status (per-table sync status)",
                    vec![w],
                ));
            }
        }
    }
    Ok((first, last))
}

// ---------------------------------------------------------------------------
// Run time.
// ---------------------------------------------------------------------------

/// Mark `tables` as syncing (`es_state.syncing_since = now`), in one
/// transaction. A file without the column (provisioned by an older
/// edgesync) is left alone.
pub(super) fn mark_syncing(conn: &mut Connection, tables: &[String]) -> Result<()> {
    if !schema::exists(conn, "table", "es_state")?
        || !has_column(conn, "es_state", STATE_COLUMNS[0])?
    {
        return Ok(());
    }
    let now = types::now_text();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    for t in tables {
        tx.execute(
            "INSERT INTO es_state (tbl, syncing_since) VALUES (?1, ?2) \
             ON CONFLICT (tbl) DO UPDATE SET syncing_since = excluded.syncing_since",
            params![t, now],
        )
        .db_ctx(|| format!("marking {t} as syncing"))?;
    }
    tx.commit().db()
}

/// The end of a table's sync: its error (`None` clears it), the syncing
/// marker cleared and, on success, `last_sync_at`.
pub(super) fn finish_sync(conn: &mut Connection, table: &str, error: Option<&str>) -> Result<()> {
    if !schema::exists(conn, "table", "es_state")? {
        return Ok(());
    }
    let now = types::now_text();
    let at = error.map(|_| now.clone());
    if !has_column(conn, "es_state", STATE_COLUMNS[1])? {
        conn.execute(
            "INSERT INTO es_state (tbl, last_error, last_error_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (tbl) DO UPDATE SET last_error = excluded.last_error, \
             last_error_at = excluded.last_error_at",
            params![table, error, at],
        )
        .db()?;
        return Ok(());
    }
    let ok_at = error.is_none().then_some(now);
    conn.execute(
        "INSERT INTO es_state (tbl, last_error, last_error_at, last_sync_at) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (tbl) DO UPDATE SET last_error = excluded.last_error, \
         last_error_at = excluded.last_error_at, syncing_since = NULL, \
         last_sync_at = COALESCE(excluded.last_sync_at, es_state.last_sync_at)",
        params![table, error, at, ok_at],
    )
    .db()?;
    Ok(())
}

/// Unserved sync requests, oldest first (none when the file has no request
/// table).
pub(super) fn open_requests(conn: &Connection) -> Result<Vec<(i64, Option<String>)>> {
    if !schema::exists(conn, "table", "es_sync_requests")? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT id, tbl FROM es_sync_requests WHERE served_at IS NULL ORDER BY id")
        .db()?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).db()?;
    rows.collect::<std::result::Result<_, _>>().db()
}

/// Record requests as served with their outcomes, and forget old ones.
pub(super) fn serve_requests(conn: &mut Connection, served: &[(i64, String)]) -> Result<()> {
    if served.is_empty() {
        return Ok(());
    }
    let now = types::now_text();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    for (id, outcome) in served {
        tx.execute(
            "UPDATE es_sync_requests SET served_at = ?2, outcome = ?3 \
             WHERE id = ?1 AND served_at IS NULL",
            params![id, now, outcome],
        )
        .db_ctx(|| format!("recording sync request {id} as served"))?;
    }
    tx.execute(
        "DELETE FROM es_sync_requests WHERE served_at < strftime('%Y-%m-%d %H:%M:%fZ', 'now', ?1)",
        [KEEP_SERVED],
    )
    .db()?;
    tx.commit().db()
}

/// Is a sync wanted by an application: an unserved request, or a conflict
/// choice not yet tried? (A choice the central refused waits for the next
/// regular sync, so it cannot turn every commit into a sync.)
pub(super) fn wants_sync(conn: &Connection) -> Result<bool> {
    let mut any = false;
    if schema::exists(conn, "table", "es_sync_requests")? {
        any |= conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM es_sync_requests WHERE served_at IS NULL)",
                [],
                |r| r.get::<_, bool>(0),
            )
            .db()?;
    }
    if !any && schema::exists(conn, "table", "es_conflicts")? {
        any |= conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM es_conflicts \
                 WHERE choice IS NOT NULL AND error IS NULL)",
                [],
                |r| r.get::<_, bool>(0),
            )
            .db()?;
    }
    Ok(any)
}

/// The choices applications made in `es_conflicts` for `tables`.
pub(super) fn conflict_choices(conn: &Connection, tables: &[String]) -> Result<Vec<(i64, Keep)>> {
    if !schema::exists(conn, "table", "es_conflicts")? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT id, tbl, choice FROM es_conflicts WHERE choice IS NOT NULL ORDER BY id")
        .db()?;
    let rows: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .db()?
        .collect::<std::result::Result<_, _>>()
        .db()?;
    Ok(rows
        .into_iter()
        .filter(|(_, t, _)| tables.iter().any(|x| x.eq_ignore_ascii_case(t)))
        .filter_map(|(id, _, c)| Keep::parse(&c).map(|keep| (id, keep)))
        .collect())
}

/// After trying a choice: settled (`None`) removes the row; an error is
/// kept on it (the choice is tried again on the next sync).
pub(super) fn settle_choice(conn: &mut Connection, id: i64, error: Option<&str>) -> Result<()> {
    match error {
        None => conn.execute("DELETE FROM es_conflicts WHERE id = ?1", [id]),
        Some(e) => conn.execute(
            "UPDATE es_conflicts SET error = ?2 WHERE id = ?1",
            params![id, e],
        ),
    }
    .db_ctx(|| format!("recording the resolution of conflict {id}"))?;
    Ok(())
}

fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        other => serde_json::Value::String(other.display()),
    }
}

/// The edge name of a column the central log names.
fn edge_name(m: &TableMapping, central: &str) -> String {
    m.columns
        .iter()
        .find(|c| c.central.eq_ignore_ascii_case(central))
        .map_or_else(|| central.to_string(), |c| c.edge.clone())
}

fn row_json(m: &TableMapping, row: &Option<Vec<(String, Value)>>) -> Option<String> {
    let cols = row.as_ref()?;
    let mut obj = serde_json::Map::new();
    for (name, v) in cols {
        obj.insert(edge_name(m, name), json_value(v));
    }
    Some(serde_json::Value::Object(obj).to_string())
}

/// Make the edge's `es_conflicts` rows of table `m` the open conflicts in
/// `records` (already this node's and this table's): add the new ones and,
/// when `complete` (the central listed every open conflict), drop the ones
/// the central no longer lists. Writes nothing when nothing changed.
pub(super) fn refresh_conflicts(
    conn: &mut Connection,
    m: &TableMapping,
    records: &[ConflictRecord],
    complete: bool,
) -> Result<()> {
    if !schema::exists(conn, "table", "es_conflicts")? {
        return Ok(());
    }
    let have: Vec<i64> = {
        let mut stmt = conn
            .prepare("SELECT id FROM es_conflicts WHERE tbl = ?1")
            .db()?;
        let rows = stmt.query_map([&m.edge], |r| r.get(0)).db()?;
        rows.collect::<std::result::Result<_, _>>().db()?
    };
    let new: Vec<&ConflictRecord> = records.iter().filter(|r| !have.contains(&r.id)).collect();
    let gone: Vec<i64> = if complete {
        have.iter()
            .copied()
            .filter(|id| !records.iter().any(|r| r.id == *id))
            .collect()
    } else {
        Vec::new()
    };
    if new.is_empty() && gone.is_empty() {
        return Ok(());
    }
    let key: Vec<(KeyCol, &str)> = m
        .key_columns()
        .map(|c| {
            (
                KeyCol {
                    name: c.edge.clone(),
                    ty: c.edge_ty,
                },
                c.central.as_str(),
            )
        })
        .collect();
    let keycols: Vec<KeyCol> = key.iter().map(|(k, _)| k.clone()).collect();
    let insert = format!(
        "INSERT INTO es_conflicts (id, tbl, key, local_json, central_json, base_json, \
         created_at, row_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {}) \
         ON CONFLICT (id) DO NOTHING",
        sql::key_json(None, 8, &keycols)
    );
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    for rec in new {
        let mut bound: Vec<SqlValue> = Vec::new();
        let mut shown = serde_json::Map::new();
        for (k, central) in &key {
            let v = rec
                .key
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(central) || n.eq_ignore_ascii_case(&k.name))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
            shown.insert(k.name.clone(), json_value(&v));
            bound.push(types::to_sql(&v, k.ty).map_err(|e| {
                edgesync_core::Error::value(format!(
                    "conflict {} on {}: key column {}: {e}",
                    rec.id, m.edge, k.name
                ))
            })?);
        }
        let mut p: Vec<SqlValue> = vec![
            SqlValue::Integer(rec.id),
            SqlValue::Text(m.edge.clone()),
            SqlValue::Text(serde_json::Value::Object(shown).to_string()),
            row_json(m, &rec.local).map_or(SqlValue::Null, SqlValue::Text),
            row_json(m, &rec.central).map_or(SqlValue::Null, SqlValue::Text),
            row_json(m, &rec.base).map_or(SqlValue::Null, SqlValue::Text),
            SqlValue::Text(rec.at.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()),
        ];
        p.extend(bound);
        tx.execute(&insert, params_from_iter(p))
            .db_ctx(|| format!("recording conflict {} of {}", rec.id, m.edge))?;
    }
    for id in gone {
        tx.execute("DELETE FROM es_conflicts WHERE id = ?1", [id])
            .db()?;
    }
    tx.commit().db()
}
