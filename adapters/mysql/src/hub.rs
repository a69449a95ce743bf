//! Hub-mode metadata on MySQL / MariaDB ([`HubStore`]): node tokens, request
//! nonces and the audit log, in the tables of `schemas/mysql/hub_init.sql`,
//! in the database named in `central.url` with the rest of edgesync's
//! metadata, provisioned by `init-sync` (one statement at a time, each
//! planned only while its table is missing, as DDL is not transactional).
//!
//! Every hub instance in front of the database shares these tables. A nonce
//! is recorded with `INSERT IGNORE` into a table whose primary key is the
//! nonce: of two hubs recording one nonce at once, exactly one inserts a
//! row (the nonce's shape is checked by the hub first, so nothing else can
//! be ignored). Times are stored as UTC `DATETIME(6)`; every connection
//! runs with `time_zone = '+00:00'`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use edgesync_core::central::{AuditEntry, HubStore, NodeToken, Statement};
use edgesync_core::{template, Error, ErrorKind, Result, TableMapping, Value};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value as My};

use crate::error::ctx;
use crate::schema::{table_exists, text, values};
use crate::sql::{self, ident, Db};
use crate::MysqlCentral;

const HUB_INIT: &str = include_str!("../../../schemas/mysql/hub_init.sql");
const HUB_DEINIT: &str = include_str!("../../../schemas/mysql/hub_deinit.sql");

/// Said of every hub statement, as of the rest of MySQL provisioning.
const NOT_TRANSACTIONAL: &str =
    " (commits on its own: MySQL DDL is not transactional; re-running completes a partial run)";

/// The hub templates' statements with the table each is about (`tokens` is
/// `es_tokens`).
fn steps(text: &str, db: &Db) -> Result<Vec<(String, Statement)>> {
    let rendered = template::render(
        text,
        &[("db", &ident(&db.default)), ("db_name", &db.default)],
    )?;
    let mut out = Vec::new();
    for chunk in rendered.split("\n;;") {
        let mut stmts = template::statements(chunk);
        if stmts.is_empty() {
            continue;
        }
        let header = chunk
            .lines()
            .find_map(|l| l.trim().strip_prefix("-- step:"))
            .ok_or_else(|| Error::internal("hub SQL template statement without a step header"))?;
        let (id, purpose) = header.split_once('|').unwrap_or((header, header));
        if stmts.len() != 1 {
            return Err(Error::internal(format!(
                "hub SQL template step {id} holds more than one statement"
            )));
        }
        out.push((
            format!("es_{}", id.trim()),
            Statement {
                purpose: format!("{}{NOT_TRANSACTIONAL}", purpose.trim()),
                sql: stmts.remove(0),
            },
        ));
    }
    Ok(out)
}

/// Statements creating whatever hub table is missing.
pub(crate) async fn plan_init(conn: &mut Conn, db: &Db) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for (object, stmt) in steps(HUB_INIT, db)? {
        if !table_exists(conn, &db.default, &object).await? {
            out.push(stmt);
        }
    }
    Ok(out)
}

/// Statements dropping whatever hub table is present.
pub(crate) async fn plan_deinit(conn: &mut Conn, db: &Db) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for (object, stmt) in steps(HUB_DEINIT, db)? {
        if table_exists(conn, &db.default, &object).await? {
            out.push(stmt);
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

/// A UTC time as a `DATETIME(6)` parameter.
fn datetime(t: DateTime<Utc>) -> My {
    let n = t.naive_utc();
    My::Date(
        u16::try_from(n.year()).unwrap_or(0),
        n.month() as u8,
        n.day() as u8,
        n.hour() as u8,
        n.minute() as u8,
        n.second() as u8,
        n.nanosecond() / 1000 % 1_000_000,
    )
}

/// A `DATETIME(6)` value read back as UTC.
fn utc(v: My, what: &str) -> Result<Option<DateTime<Utc>>> {
    match v {
        My::NULL => Ok(None),
        My::Date(y, m, d, h, mi, s, us) => {
            chrono::NaiveDate::from_ymd_opt(y.into(), m.into(), d.into())
                .and_then(|date| date.and_hms_micro_opt(h.into(), mi.into(), s.into(), us))
                .map(|t: NaiveDateTime| Some(t.and_utc()))
                .ok_or_else(|| Error::value(format!("{what}: not a valid time")))
        }
        My::Bytes(b) => {
            let s = String::from_utf8_lossy(&b);
            NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f")
                .map(|t| Some(t.and_utc()))
                .map_err(|e| Error::value(format!("{what}: {s:?} is not a time: {e}")))
        }
        other => Err(Error::value(format!("{what}: not a time: {other:?}"))),
    }
}

fn int(v: My, what: &str) -> Result<Option<i64>> {
    match v {
        My::NULL => Ok(None),
        My::Int(i) => Ok(Some(i)),
        My::UInt(u) => i64::try_from(u)
            .map(Some)
            .map_err(|_| Error::value(format!("{what} exceeds i64"))),
        My::Bytes(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| Error::value(format!("{what} is not an integer"))),
        other => Err(Error::value(format!("{what} is not an integer: {other:?}"))),
    }
}

fn opt_text(v: My) -> Option<String> {
    match v {
        My::NULL => None,
        v => text(v),
    }
}

impl MysqlCentral {
    async fn hub_conn(&self) -> Result<Conn> {
        self.pool
            .get_conn()
            .await
            .map_err(ctx(format!("connecting to MySQL at {}", self.addr)))
    }
}

/// The live central rows of `keys` (not deleted), aligned with `keys`.
async fn current_rows(
    c: &MysqlCentral,
    table: &TableMapping,
    keys: &[Vec<Value>],
) -> Result<Vec<Option<Vec<Value>>>> {
    let mut out: Vec<Option<Vec<Value>>> = vec![None; keys.len()];
    if keys.is_empty() {
        return Ok(out);
    }
    let mut conn = c.hub_conn().await?;
    let natives = crate::schema::natives(&mut conn, &c.db, c.mariadb, table).await?;
    let params: Vec<Vec<My>> = keys
        .iter()
        .map(|key| {
            table
                .key
                .iter()
                .zip(key)
                .map(|(&ci, v)| {
                    crate::types::encode(v, table.columns[ci].ty, &natives[ci]).map_err(|e| {
                        e.context(format!(
                            "{}, key {}",
                            table.central,
                            table.describe_key(key)
                        ))
                    })
                })
                .collect::<Result<Vec<My>>>()
        })
        .collect::<Result<_>>()?;
    let mut exprs = vec![("CAST(? AS SIGNED)".to_string(), "es_ord".to_string())];
    exprs.extend(
        crate::stamp::key_binds(table, &natives)
            .into_iter()
            .enumerate()
            .map(|(j, e)| (e, format!("k{j}"))),
    );
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|col| format!("t.{}", ident(&col.central)))
        .collect();
    let what: Vec<String> = table
        .columns
        .iter()
        .map(|col| format!("{}.{}", table.central, col.central))
        .collect();
    let size = |k: usize| {
        params[k]
            .iter()
            .map(|v| match v {
                My::Bytes(b) => b.len() + 8,
                _ => 16,
            })
            .sum()
    };
    for r in sql::chunks(keys.len(), 1 + table.key.len(), size) {
        let query = format!(
            "SELECT u.es_ord, {cols} FROM {derived} STRAIGHT_JOIN {tbl} AS t ON {matches}
              WHERE t.es_deleted = 0",
            cols = cols.join(", "),
            derived = sql::derived(&exprs, r.len()),
            tbl = c.db.table_ref(&table.central),
            matches = sql::key_match(table, "t"),
        );
        let mut bound = Vec::new();
        for k in r.clone() {
            bound.push(My::Int(k as i64));
            bound.extend(params[k].iter().cloned());
        }
        let rows: Vec<Row> = conn.exec(query, bound).await.map_err(ctx(format!(
            "reading the current rows of {}",
            table.central
        )))?;
        for row in rows {
            let mut v = values(row).into_iter();
            let pos = int(v.next().unwrap_or(My::NULL), "es_ord")?
                .and_then(|p| usize::try_from(p).ok())
                .filter(|&p| p < keys.len())
                .ok_or_else(|| Error::internal("a result row's position is out of range"))?;
            let vals = table
                .columns
                .iter()
                .zip(&what)
                .map(|(col, what)| crate::pull::decode(v.next().unwrap_or(My::NULL), col.ty, what))
                .collect::<Result<Vec<Value>>>()?;
            out[pos] = Some(vals);
        }
    }
    Ok(out)
}

#[async_trait]
impl HubStore for MysqlCentral {
    async fn insert_token(&self, token: &NodeToken) -> Result<()> {
        let params = serde_json::to_string(&token.params)
            .map_err(|e| Error::internal(format!("cannot encode token params: {e}")))?;
        let mut conn = self.hub_conn().await?;
        conn.exec_drop(
            format!(
                "INSERT INTO {} (id, node, tenant, params, key_hash, created_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
                self.db.meta("es_tokens")
            ),
            (
                &token.id,
                &token.node,
                &token.tenant,
                params,
                &token.key_hash,
                datetime(token.created_at),
            ),
        )
        .await
        .map_err(ctx("storing the token"))
        .map_err(hint)
    }

    async fn revoke_tokens(&self, node: &str, at: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.hub_conn().await?;
        conn.exec_drop(
            format!(
                "UPDATE {} SET revoked_at = ? WHERE node = ? AND revoked_at IS NULL",
                self.db.meta("es_tokens")
            ),
            (datetime(at), node),
        )
        .await
        .map_err(ctx("revoking tokens"))
        .map_err(hint)?;
        Ok(conn.affected_rows())
    }

    async fn find_token(&self, id: &str) -> Result<Option<NodeToken>> {
        let mut conn = self.hub_conn().await?;
        let row: Option<Row> = conn
            .exec_first(
                format!(
                    "SELECT id, node, tenant, params, key_hash, created_at, revoked_at
                       FROM {} WHERE id = ?",
                    self.db.meta("es_tokens")
                ),
                (id,),
            )
            .await
            .map_err(ctx("reading es_tokens"))
            .map_err(hint)?;
        let Some(row) = row else { return Ok(None) };
        let what = format!("es_tokens {id}");
        let mut v = values(row).into_iter();
        let mut next = || v.next().unwrap_or(My::NULL);
        let id = opt_text(next()).unwrap_or_default();
        let node = opt_text(next()).unwrap_or_default();
        let tenant = opt_text(next());
        let params: BTreeMap<String, String> =
            serde_json::from_str(&opt_text(next()).unwrap_or_else(|| "{}".into()))
                .map_err(|e| Error::value(format!("{what}: bad params: {e}")))?;
        let key_hash = opt_text(next()).unwrap_or_default();
        let created_at = utc(next(), &format!("{what}.created_at"))?
            .ok_or_else(|| Error::value(format!("{what}: no created_at")))?;
        let revoked_at = utc(next(), &format!("{what}.revoked_at"))?;
        Ok(Some(NodeToken {
            id,
            node,
            tenant,
            params,
            key_hash,
            created_at,
            revoked_at,
        }))
    }

    async fn record_nonce(&self, token_id: &str, nonce: &str, at: DateTime<Utc>) -> Result<bool> {
        let mut conn = self.hub_conn().await?;
        conn.exec_drop(
            format!(
                "INSERT IGNORE INTO {} (nonce, token_id, at) VALUES (?, ?, ?)",
                self.db.meta("es_nonces")
            ),
            (nonce, token_id, at.timestamp()),
        )
        .await
        .map_err(ctx("recording a request nonce"))
        .map_err(hint)?;
        Ok(conn.affected_rows() == 1)
    }

    async fn purge_nonces(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.hub_conn().await?;
        conn.exec_drop(
            format!("DELETE FROM {} WHERE at < ?", self.db.meta("es_nonces")),
            (before.timestamp(),),
        )
        .await
        .map_err(ctx("purging request nonces"))
        .map_err(hint)?;
        Ok(conn.affected_rows())
    }

    async fn append_audit(&self, e: &AuditEntry) -> Result<()> {
        let mut conn = self.hub_conn().await?;
        let params: Vec<My> = vec![
            datetime(e.at),
            e.node.clone().into(),
            e.tenant.clone().into(),
            e.action.clone().into(),
            e.table.clone().into(),
            e.batch_hi.into(),
            e.page.clone().into(),
            e.rows.into(),
            i64::from(e.status).into(),
            e.outcome.clone().into(),
            e.remote.clone().into(),
            e.detail.clone().into(),
        ];
        conn.exec_drop(
            format!(
                "INSERT INTO {} (at, node, tenant, action, tbl, batch_hi, page, `rows`, status,
                                 outcome, remote, detail)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.db.meta("es_audit")
            ),
            params,
        )
        .await
        .map_err(ctx("writing the audit log"))
        .map_err(hint)
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut conn = self.hub_conn().await?;
        let rows: Vec<Row> = conn
            .exec(
                format!(
                    "SELECT at, node, tenant, action, tbl, batch_hi, page, `rows`, status,
                            outcome, remote, detail
                       FROM {} ORDER BY id DESC LIMIT ?",
                    self.db.meta("es_audit")
                ),
                (u64::try_from(limit).unwrap_or(u64::MAX),),
            )
            .await
            .map_err(ctx("reading es_audit"))
            .map_err(hint)?;
        rows.into_iter()
            .map(|r| {
                let mut v = values(r).into_iter();
                let mut next = || v.next().unwrap_or(My::NULL);
                Ok(AuditEntry {
                    at: utc(next(), "es_audit.at")?.unwrap_or_default(),
                    node: opt_text(next()),
                    tenant: opt_text(next()),
                    action: opt_text(next()).unwrap_or_default(),
                    table: opt_text(next()),
                    batch_hi: int(next(), "es_audit.batch_hi")?,
                    page: opt_text(next()),
                    rows: int(next(), "es_audit.rows")?.unwrap_or(0),
                    status: int(next(), "es_audit.status")?
                        .and_then(|s| u16::try_from(s).ok())
                        .unwrap_or(0),
                    outcome: opt_text(next()).unwrap_or_default(),
                    remote: opt_text(next()),
                    detail: opt_text(next()).unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn current_rows(
        &self,
        table: &TableMapping,
        keys: &[Vec<Value>],
    ) -> Result<Vec<Option<Vec<Value>>>> {
        current_rows(self, table, keys).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_templates_have_one_statement_per_step_in_the_metadata_database() {
        let db = Db {
            default: "erp".into(),
        };
        let init = steps(HUB_INIT, &db).expect("init steps");
        let objects: Vec<&str> = init.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(objects, ["es_tokens", "es_nonces", "es_audit"]);
        for (object, s) in &init {
            assert!(
                s.sql
                    .starts_with(&format!("CREATE TABLE IF NOT EXISTS `erp`.{object}")),
                "{}",
                s.sql
            );
            assert!(s.purpose.ends_with(NOT_TRANSACTIONAL));
        }
        // `rows` is a reserved word from MySQL 8.0.2 on: always quoted.
        assert!(init[2].1.sql.contains("`rows`"));
        let deinit = steps(HUB_DEINIT, &db).expect("deinit steps");
        let objects: Vec<&str> = deinit.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(objects, ["es_audit", "es_nonces", "es_tokens"]);
    }

    #[test]
    fn times_round_trip_through_datetime6() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T01:02:03.456789Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(utc(datetime(t), "t").expect("utc"), Some(t));
        assert_eq!(
            utc(My::Bytes(b"2026-11-22 01:02:03.456789".to_vec()), "t").expect("text"),
            Some(t)
        );
        assert!(utc(My::Int(3), "t").is_err());
        assert_eq!(utc(My::NULL, "t").expect("null"), None);
    }
}
