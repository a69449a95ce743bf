//! Pull pages from the SQLite central.
//!
//! The token is the highest version delivered, `{"v": 123}`. Rows and
//! tombstones with a higher version, minus the node's own writes (its push
//! outcomes already told it their versions), are merged in version order.
//! SQLite has one writer and versions are taken inside write transactions,
//! so everything at or below `es_ctl.seq`, read in the same read
//! transaction, is committed and visible: a pass that ends may move the
//! token straight to it.

use edgesync_core::filter::Scope;
use edgesync_core::{Change, Error, PullPage, Result, TableMapping};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection};

use super::CentralTable;
use crate::error::SqlResultExt;
use crate::types;

/// Parse a token from a previous page.
fn parse_token(token: &str) -> Result<i64> {
    serde_json::from_str::<serde_json::Value>(token)
        .ok()
        .and_then(|v| v.get("v").and_then(serde_json::Value::as_i64))
        .ok_or_else(|| Error::value(format!("invalid pull token {token:?} for a SQLite central")))
}

pub(super) fn pull(
    conn: &mut Connection,
    node: &str,
    m: &TableMapping,
    scope: Option<&Scope>,
    token: Option<&str>,
    limit: usize,
) -> Result<PullPage> {
    let from = token.map(parse_token).transpose()?.unwrap_or(0);
    // A full pass (initial load or re-snapshot) is never refused, and
    // delivers the node's own rows too: the edge builds the table from it.
    let full = super::retention::full_pass(token);
    super::retention::admit(conn, node, &m.central.name, from, full)?;
    let node = if full { "" } else { node };
    let limit = limit.max(1);
    let t = CentralTable::new(m);
    let n = m.columns.len();
    let tx = conn.transaction().db()?;
    let mut changes: Vec<Change> = Vec::new();
    {
        let reader = t.reader();
        let mut binds = vec![
            SqlValue::Integer(from),
            SqlValue::Text(node.to_string()),
            SqlValue::Integer(limit as i64),
        ];
        // With a filter, a full pass reads only the node's rows; otherwise
        // each row says whether it is in the node's scope (evaluated here,
        // values bound), and one outside it travels as a move-out, just its
        // key.
        let (in_scope, restrict) = match scope {
            Some(s) if full => (
                "1".to_string(),
                format!(" AND {}", scope_cond(s, &mut binds)?),
            ),
            Some(s) => (
                edgesync_core::filter::flag(&scope_cond(s, &mut binds)?),
                String::new(),
            ),
            None => ("1".to_string(), String::new()),
        };
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {}, es_ver, es_deleted, es_hlc, {in_scope} FROM {} \
                 WHERE es_ver > ?1 AND es_origin IS NOT ?2{restrict} ORDER BY es_ver LIMIT ?3",
                t.cols, t.q
            ))
            .db_ctx(|| format!("reading central table {} (run init-sync?)", t.name))?;
        let mut rows = stmt.query(params_from_iter(binds)).db()?;
        while let Some(r) = rows.next().db()? {
            let values = reader.read(r, 0)?;
            if r.get::<_, i64>(n + 3).db()? == 0 {
                changes.push(Change::moved_out(
                    m.key_of(&values),
                    r.get(n).db()?,
                    r.get(n + 2).db()?,
                ));
                continue;
            }
            changes.push(Change {
                key: m.key_of(&values),
                values: Some(values),
                version: r.get(n).db()?,
                deleted: r.get::<_, i64>(n + 1).db()? != 0,
                hlc: r.get(n + 2).db()?,
                base: None,
            });
        }
    }
    {
        let key_types = t.key_types();
        let mut stmt = tx
            .prepare_cached(
                "SELECT key, es_ver, es_hlc FROM es_tombstones \
                 WHERE tbl = ?1 AND es_ver > ?2 AND es_origin IS NOT ?3 ORDER BY es_ver LIMIT ?4",
            )
            .db()?;
        let mut rows = stmt.query(params![t.name, from, node, limit as i64]).db()?;
        while let Some(r) = rows.next().db()? {
            let json: String = r.get(0).db()?;
            changes.push(Change {
                key: types::key_from_json(&json, &key_types)
                    .map_err(|e| Error::value(format!("table {}: {e}", t.name)))?,
                values: None,
                deleted: true,
                version: r.get(1).db()?,
                hlc: r.get(2).db()?,
                base: None,
            });
        }
    }
    changes.sort_by_key(|c| c.version);
    let done = changes.len() < limit;
    changes.truncate(limit);
    let mut last = changes.last().map_or(from, |c| c.version);
    if done {
        let seq: i64 = tx
            .query_row("SELECT seq FROM es_ctl", [], |r| r.get(0))
            .db()?;
        last = last.max(seq);
    }
    tx.commit().db()?;
    Ok(PullPage {
        changes,
        token: super::retention::token(last, full && !done),
        done,
        fingerprint: None,
    })
}

/// The filter over the central table's columns, its values appended to
/// `binds` as numbered parameters.
fn scope_cond(scope: &Scope, binds: &mut Vec<SqlValue>) -> Result<String> {
    scope.render_with(&crate::sql::ident, &mut |_, v, ty| {
        binds.push(crate::types::to_sql(v, ty).map_err(Error::value)?);
        Ok(format!("?{}", binds.len()))
    })
}
