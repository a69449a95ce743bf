//! Hub-mode metadata on a SQLite central ([`HubStore`]): node tokens,
//! request nonces and the audit log, in the tables of
//! `schemas/sqlite/hub_metadata.sql`, provisioned by `init-sync` with the
//! rest of the central metadata.
//!
//! Every method is one short statement (or transaction) on the central's
//! connection thread, so several `edgesync serve` processes in front of one
//! central file share tokens and nonces through SQLite's own locking.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edgesync_core::central::{AuditEntry, HubStore, NodeToken, Statement};
use edgesync_core::{template, Error, Result, TableMapping, Value};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::{CentralTable, SqliteCentral};
use crate::error::SqlResultExt;
use crate::schema;
use crate::sql;

const HUB_METADATA: &str = include_str!("../../../../schemas/sqlite/hub_metadata.sql");
const HUB_DROP_METADATA: &str = include_str!("../../../../schemas/sqlite/hub_drop_metadata.sql");

/// The objects `hub_metadata.sql` creates, with their kinds.
const OBJECTS: [(&str, &str); 5] = [
    ("table", "es_tokens"),
    ("index", "es_tokens_node"),
    ("table", "es_nonces"),
    ("index", "es_nonces_at"),
    ("table", "es_audit"),
];

/// Statements creating the hub tables, when any is missing.
pub(super) fn plan_init(conn: &Connection) -> Result<Vec<Statement>> {
    let mut in_place = true;
    for (kind, name) in OBJECTS {
        in_place &= schema::exists(conn, kind, name)?;
    }
    if in_place {
        return Ok(Vec::new());
    }
    Ok(schema::with_purpose(
        "hub metadata",
        template::statements(HUB_METADATA),
    ))
}

/// Statements dropping the hub tables, when any is present.
pub(super) fn plan_deinit(conn: &Connection) -> Result<Vec<Statement>> {
    let mut any = false;
    for (kind, name) in OBJECTS {
        any |= kind == "table" && schema::exists(conn, kind, name)?;
    }
    if !any {
        return Ok(Vec::new());
    }
    Ok(schema::with_purpose(
        "drop hub metadata",
        template::statements(HUB_DROP_METADATA),
    ))
}

fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::internal(format!("hub metadata: bad time {text:?}: {e}")))
}

/// "run init-sync" when the hub tables are missing.
fn hint(e: Error) -> Error {
    if e.kind() == edgesync_core::ErrorKind::Schema {
        e.context("the hub metadata tables are missing (run `edgesync init-sync` on the hub)")
    } else {
        e
    }
}

fn read_token(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(NodeToken, String, String, Option<String>)> {
    Ok((
        NodeToken {
            id: r.get(0)?,
            node: r.get(1)?,
            tenant: r.get(2)?,
            params: BTreeMap::new(),
            key_hash: r.get(4)?,
            created_at: DateTime::<Utc>::default(),
            revoked_at: None,
        },
        r.get(3)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn find_token(conn: &Connection, id: &str) -> Result<Option<NodeToken>> {
    let found = conn
        .query_row(
            "SELECT id, node, tenant, params_json, key_hash, created_at, revoked_at \
             FROM es_tokens WHERE id = ?1",
            [id],
            read_token,
        )
        .optional()
        .db_ctx(|| "reading es_tokens")
        .map_err(hint)?;
    let Some((mut token, params, created, revoked)) = found else {
        return Ok(None);
    };
    token.params = serde_json::from_str(&params)
        .map_err(|e| Error::internal(format!("es_tokens {id}: bad params_json: {e}")))?;
    token.created_at = parse_time(&created)?;
    token.revoked_at = revoked.as_deref().map(parse_time).transpose()?;
    Ok(Some(token))
}

fn audit_log(conn: &Connection, limit: usize) -> Result<Vec<AuditEntry>> {
    let mut stmt = conn
        .prepare(
            "SELECT at, node, tenant, action, tbl, batch_hi, page, rows, status, outcome, \
             remote, detail FROM es_audit ORDER BY id DESC LIMIT ?1",
        )
        .db_ctx(|| "reading es_audit")
        .map_err(hint)?;
    let rows = stmt
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                AuditEntry {
                    at: DateTime::<Utc>::default(),
                    node: r.get(1)?,
                    tenant: r.get(2)?,
                    action: r.get(3)?,
                    table: r.get(4)?,
                    batch_hi: r.get(5)?,
                    page: r.get(6)?,
                    rows: r.get(7)?,
                    status: r.get(8)?,
                    outcome: r.get(9)?,
                    remote: r.get(10)?,
                    detail: r.get(11)?,
                },
            ))
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (at, mut entry) = row.db()?;
        entry.at = parse_time(&at)?;
        out.push(entry);
    }
    Ok(out)
}

fn current_rows(
    conn: &Connection,
    m: &TableMapping,
    keys: &[Vec<Value>],
) -> Result<Vec<Option<Vec<Value>>>> {
    let t = CentralTable::new(m);
    let reader = t.reader();
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {} FROM {} WHERE {}",
            t.cols,
            t.q,
            sql::key_match_params(1, &t.key)
        ))
        .db_ctx(|| format!("reading central table {}", t.name))?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let bound = t.bind_key(key)?;
        let mut rows = stmt.query(params_from_iter(bound)).db()?;
        out.push(match rows.next().db()? {
            Some(r) => Some(reader.read(r, 0)?),
            None => None,
        });
    }
    Ok(out)
}

#[async_trait]
impl HubStore for SqliteCentral {
    async fn insert_token(&self, token: &NodeToken) -> Result<()> {
        let token = token.clone();
        let params = serde_json::to_string(&token.params)
            .map_err(|e| Error::internal(format!("cannot encode token params: {e}")))?;
        self.run(move |c| {
            c.execute(
                "INSERT INTO es_tokens (id, node, tenant, params_json, key_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    token.id,
                    token.node,
                    token.tenant,
                    params,
                    token.key_hash,
                    time_text(token.created_at)
                ],
            )
            .db_ctx(|| "storing the token")
            .map_err(hint)?;
            Ok(())
        })
        .await
    }

    async fn revoke_tokens(&self, node: &str, at: DateTime<Utc>) -> Result<u64> {
        let node = node.to_string();
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE es_tokens SET revoked_at = ?2 WHERE node = ?1 AND revoked_at IS NULL",
                    params![node, time_text(at)],
                )
                .db_ctx(|| "revoking tokens")
                .map_err(hint)?;
            Ok(n as u64)
        })
        .await
    }

    async fn find_token(&self, id: &str) -> Result<Option<NodeToken>> {
        let id = id.to_string();
        self.run(move |c| find_token(c, &id)).await
    }

    async fn record_nonce(&self, token_id: &str, nonce: &str, at: DateTime<Utc>) -> Result<bool> {
        let (token_id, nonce) = (token_id.to_string(), nonce.to_string());
        self.run(move |c| {
            let n = c
                .execute(
                    "INSERT INTO es_nonces (nonce, token_id, at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (nonce) DO NOTHING",
                    params![nonce, token_id, at.timestamp()],
                )
                .db_ctx(|| "recording a request nonce")
                .map_err(hint)?;
            Ok(n == 1)
        })
        .await
    }

    async fn purge_nonces(&self, before: DateTime<Utc>) -> Result<u64> {
        self.run(move |c| {
            let n = c
                .execute("DELETE FROM es_nonces WHERE at < ?1", [before.timestamp()])
                .db_ctx(|| "purging request nonces")
                .map_err(hint)?;
            Ok(n as u64)
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let e = entry.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO es_audit (at, node, tenant, action, tbl, batch_hi, page, rows, \
                 status, outcome, remote, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    time_text(e.at),
                    e.node,
                    e.tenant,
                    e.action,
                    e.table,
                    e.batch_hi,
                    e.page,
                    e.rows,
                    e.status,
                    e.outcome,
                    e.remote,
                    e.detail
                ],
            )
            .db_ctx(|| "writing the audit log")
            .map_err(hint)?;
            Ok(())
        })
        .await
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        self.run(move |c| audit_log(c, limit)).await
    }

    async fn current_rows(
        &self,
        table: &TableMapping,
        keys: &[Vec<Value>],
    ) -> Result<Vec<Option<Vec<Value>>>> {
        let (table, keys) = (table.clone(), keys.to_vec());
        self.run(move |c| current_rows(c, &table, &keys)).await
    }
}
