//! Hub-mode metadata on PostgreSQL ([`HubStore`]): node tokens, request
//! nonces and the audit log, in the tables of `schemas/postgres/hub_init.sql`
//! (unqualified: the first schema of the role's `search_path`), provisioned
//! by `init-sync` with the rest of the central metadata.
//!
//! Every hub instance in front of the database shares these tables; a nonce
//! is recorded with `INSERT ... ON CONFLICT DO NOTHING`, so of two hubs
//! seeing the same nonce at once exactly one accepts it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edgesync_core::central::{AuditEntry, HubStore, NodeToken, Statement};
use edgesync_core::{template, Change, Error, ErrorKind, Result, TableMapping, Value};
use sqlx::{PgConnection, PgPool, Row};

use crate::error::ctx;
use crate::PgCentral;

const HUB_INIT: &str = include_str!("../../../schemas/postgres/hub_init.sql");
const HUB_DEINIT: &str = include_str!("../../../schemas/postgres/hub_deinit.sql");

/// One step of a hub template: its object, purpose and statement.
struct Step {
    object: String,
    purpose: String,
    sql: String,
}

/// The `-- step: id | purpose` sections of `text`; the id names the object
/// (`tokens` is `es_tokens`).
fn steps(text: &str) -> Result<Vec<Step>> {
    let mut out = Vec::new();
    for chunk in text.split("\n;;") {
        let mut stmts = template::statements(chunk);
        if stmts.is_empty() {
            continue;
        }
        let header = chunk
            .lines()
            .find_map(|l| l.trim().strip_prefix("-- step:"))
            .ok_or_else(|| Error::internal("hub SQL template statement without a step header"))?;
        let (id, purpose) = header.split_once('|').unwrap_or((header, header));
        out.push(Step {
            object: format!("es_{}", id.trim()),
            purpose: purpose.trim().to_string(),
            sql: stmts.remove(0),
        });
    }
    Ok(out)
}

async fn exists(conn: &mut PgConnection, name: &str) -> Result<bool> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(ctx(format!("checking for {name}")))
}

/// Statements creating whatever hub object is missing.
pub(crate) async fn plan_init(conn: &mut PgConnection) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for step in steps(HUB_INIT)? {
        if !exists(conn, &step.object).await? {
            out.push(Statement {
                purpose: step.purpose,
                sql: step.sql,
            });
        }
    }
    Ok(out)
}

/// Statements dropping whatever hub table is present.
pub(crate) async fn plan_deinit(conn: &mut PgConnection) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for step in steps(HUB_DEINIT)? {
        if exists(conn, &step.object).await? {
            out.push(Statement {
                purpose: step.purpose,
                sql: step.sql,
            });
        }
    }
    Ok(out)
}

/// "run init-sync" when the hub tables are missing.
fn hint(e: Error) -> Error {
    if e.kind() == ErrorKind::Schema {
        e.context("the hub metadata tables are missing (run `edgesync init-sync` on the hub)")
    } else {
        e
    }
}

fn pool_of(c: &PgCentral) -> &PgPool {
    c.pool()
}

async fn current_rows(
    pool: &PgPool,
    table: &TableMapping,
    keys: &[Vec<Value>],
) -> Result<Vec<Option<Vec<Value>>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool
        .begin()
        .await
        .map_err(ctx("reading the current rows"))?;
    let natives = crate::schema::natives(&mut tx, table).await?;
    let cx = crate::push::Ctx {
        table,
        natives,
        node: "",
        tbl: crate::sql::tbl_id(&table.central),
    };
    let changes: Vec<Change> = keys
        .iter()
        .map(|k| Change {
            key: k.clone(),
            values: None,
            deleted: false,
            version: 0,
            base: None,
            hlc: 0,
        })
        .collect();
    let idx: Vec<usize> = (0..changes.len()).collect();
    let current = crate::write::fetch_current(&mut tx, &cx, &changes, &idx).await;
    tx.rollback().await.ok();
    Ok(current?
        .into_iter()
        .map(|c| c.and_then(|c| c.row.values))
        .collect())
}

#[async_trait]
impl HubStore for PgCentral {
    async fn insert_token(&self, token: &NodeToken) -> Result<()> {
        let params = serde_json::to_value(&token.params)
            .map_err(|e| Error::internal(format!("cannot encode token params: {e}")))?;
        sqlx::query(
            "INSERT INTO es_tokens (id, node, tenant, params, key_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.id)
        .bind(&token.node)
        .bind(&token.tenant)
        .bind(sqlx::types::Json(params))
        .bind(&token.key_hash)
        .bind(token.created_at)
        .execute(pool_of(self))
        .await
        .map_err(ctx("storing the token"))
        .map_err(hint)?;
        Ok(())
    }

    async fn revoke_tokens(&self, node: &str, at: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE es_tokens SET revoked_at = $2 WHERE node = $1 AND revoked_at IS NULL",
        )
        .bind(node)
        .bind(at)
        .execute(pool_of(self))
        .await
        .map_err(ctx("revoking tokens"))
        .map_err(hint)?;
        Ok(done.rows_affected())
    }

    async fn find_token(&self, id: &str) -> Result<Option<NodeToken>> {
        let row = sqlx::query(
            "SELECT id, node, tenant, params::text, key_hash, created_at, revoked_at
               FROM es_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool_of(self))
        .await
        .map_err(ctx("reading es_tokens"))
        .map_err(hint)?;
        let Some(r) = row else { return Ok(None) };
        let get = |e: sqlx::Error| Error::internal(format!("es_tokens {id}: {e}"));
        let params: String = r.try_get(3).map_err(get)?;
        let params: BTreeMap<String, String> = serde_json::from_str(&params)
            .map_err(|e| Error::internal(format!("es_tokens {id}: bad params: {e}")))?;
        Ok(Some(NodeToken {
            id: r.try_get(0).map_err(get)?,
            node: r.try_get(1).map_err(get)?,
            tenant: r.try_get(2).map_err(get)?,
            params,
            key_hash: r.try_get(4).map_err(get)?,
            created_at: r.try_get(5).map_err(get)?,
            revoked_at: r.try_get(6).map_err(get)?,
        }))
    }

    async fn record_nonce(&self, token_id: &str, nonce: &str, at: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO es_nonces (nonce, token_id, at) VALUES ($1, $2, $3)
             ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(token_id)
        .bind(at.timestamp())
        .execute(pool_of(self))
        .await
        .map_err(ctx("recording a request nonce"))
        .map_err(hint)?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_nonces(&self, before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM es_nonces WHERE at < $1")
            .bind(before.timestamp())
            .execute(pool_of(self))
            .await
            .map_err(ctx("purging request nonces"))
            .map_err(hint)?;
        Ok(done.rows_affected())
    }

    async fn append_audit(&self, e: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO es_audit (at, node, tenant, action, tbl, batch_hi, page, rows, status,
                                   outcome, remote, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(e.at)
        .bind(&e.node)
        .bind(&e.tenant)
        .bind(&e.action)
        .bind(&e.table)
        .bind(e.batch_hi)
        .bind(&e.page)
        .bind(e.rows)
        .bind(i32::from(e.status))
        .bind(&e.outcome)
        .bind(&e.remote)
        .bind(&e.detail)
        .execute(pool_of(self))
        .await
        .map_err(ctx("writing the audit log"))
        .map_err(hint)?;
        Ok(())
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, node, tenant, action, tbl, batch_hi, page, rows, status, outcome,
                    remote, detail
               FROM es_audit ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool_of(self))
        .await
        .map_err(ctx("reading es_audit"))
        .map_err(hint)?;
        let get = |e: sqlx::Error| Error::internal(format!("es_audit: {e}"));
        rows.iter()
            .map(|r| {
                let status: i32 = r.try_get(8).map_err(get)?;
                Ok(AuditEntry {
                    at: r.try_get(0).map_err(get)?,
                    node: r.try_get(1).map_err(get)?,
                    tenant: r.try_get(2).map_err(get)?,
                    action: r.try_get(3).map_err(get)?,
                    table: r.try_get(4).map_err(get)?,
                    batch_hi: r.try_get(5).map_err(get)?,
                    page: r.try_get(6).map_err(get)?,
                    rows: r.try_get(7).map_err(get)?,
                    status: u16::try_from(status).unwrap_or(0),
                    outcome: r.try_get(9).map_err(get)?,
                    remote: r.try_get(10).map_err(get)?,
                    detail: r.try_get(11).map_err(get)?,
                })
            })
            .collect()
    }

    async fn current_rows(
        &self,
        table: &TableMapping,
        keys: &[Vec<Value>],
    ) -> Result<Vec<Option<Vec<Value>>>> {
        current_rows(pool_of(self), table, keys).await
    }
}
