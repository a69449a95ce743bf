//! Pull pages from the SQLite central.
//!
//! The token is the highest version delivered, `{"v": 123}`. Rows and
//! tombstones with a higher version, minus the node's own writes (its push
//! outcomes already told it their versions), are merged in version order.
//! SQLite has one writer and versions are taken inside write transactions,
//! so everything at or below `es_ctl.seq`, read in the same read
//! transaction, is committed and visible: a pass that ends may move the
//! token straight to it.

use edgesync_core::{Change, Error, PullPage, Result, TableMapping};
use rusqlite::{params, Connection};

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
    token: Option<&str>,
    limit: usize,
) -> Result<PullPage> {
    let from = token.map(parse_token).transpose()?.unwrap_or(0);
    let limit = limit.max(1);
    let t = CentralTable::new(m);
    let n = m.columns.len();
    let tx = conn.transaction().db()?;
    let mut changes: Vec<Change> = Vec::new();
    {
        let reader = t.reader();
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {}, es_ver, es_deleted, es_hlc FROM {} \
                 WHERE es_ver > ?1 AND es_origin IS NOT ?2 ORDER BY es_ver LIMIT ?3",
                t.cols, t.q
            ))
            .db_ctx(|| format!("reading central table {} (run init-sync?)", t.name))?;
        let mut rows = stmt.query(params![from, node, limit as i64]).db()?;
        while let Some(r) = rows.next().db()? {
            let values = reader.read(r, 0)?;
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
        token: serde_json::json!({ "v": last }).to_string(),
        done,
        fingerprint: None,
    })
}
