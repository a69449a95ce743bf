//! edgesync's SQL Server (2017 or newer, Azure SQL) central adapter:
//! [`MssqlCentral`] implements [`edgesync_core::Central`] with tiberius.
//!
//! # Design choices
//!
//! - **Capture by triggers, versions from `rowversion`.** `init-sync` adds
//!   five `es_` columns (the version `es_ver` is a `rowversion`, which SQL
//!   Server bumps on every insert and update from one database-wide counter)
//!   and two triggers to each synced table, plus an `INSTEAD OF DELETE`
//!   trigger on soft-delete tables. The triggers are written for multi-row
//!   statements (they join `inserted`/`deleted`). The SQL is in
//!   `schemas/mssql/`, readable by a DBA.
//! - **Commit-safe pulls with `MIN_ACTIVE_ROWVERSION()`.** A pass never moves
//!   its watermark past the smallest rowversion still held by an open
//!   transaction, so a transaction that took its version early and commits
//!   late is delivered by the next pass (`pull.rs` explains).
//! - **Exactly-once, set-based pushes.** A batch is one transaction: the
//!   node's `es_nodes` row is locked, replays are answered from the current
//!   rows, fresh changes are decided by [`edgesync_core::conflict::decide`]
//!   (field-merge included) against rows locked `UPDLOCK, HOLDLOCK`, and
//!   written through a session temporary table filled by multi-row
//!   `INSERT ... VALUES` (`write.rs`): a fixed number of statements per
//!   batch, never a round trip per row. `conflicts resolve` is `resolve.rs`.
//!   The transaction sets `SESSION_CONTEXT(N'edgesync.applying')` so the
//!   triggers keep the node's origin (the echo guard).
//! - **Exact values.** Decimals cross as TDS `decimal` (an `i128` and a
//!   scale), never `f64`; `datetimeoffset` keeps its offset; GUIDs are
//!   converted between SQL Server's mixed-endian storage and RFC 4122 order
//!   explicitly (`types.rs`, with the documentation's example GUID as a
//!   test); a value the column would round or cut is an error naming table,
//!   column and key; `varchar` without a UTF-8 collation, `datetime`,
//!   `money`, `real`, `char(n)` are refused by `describe` with the type to
//!   use instead.
//! - **Where metadata lives.** `es_nodes`, `es_tombstones` and
//!   `es_conflicts` live in the schema of the table they serve (`dbo` for
//!   unqualified names); `conflicts` and `progress` read every schema that
//!   has them.
//! - **Errors by error number** (`error.rs`); a refused login is `Auth`, an
//!   unreachable server `Connection`, an untrusted certificate or a missing
//!   database `Config`, each naming the server and what to change.
//!
//! Not captured: `TRUNCATE TABLE` and bulk loads without `FIRE_TRIGGERS`.
#![deny(missing_docs)]

use async_trait::async_trait;
use edgesync_core::central::{NodeProgress, Statement};
use edgesync_core::change::PushResult;
use edgesync_core::{
    Central, ConflictRecord, Keep, PullPage, PushBatch, QualifiedName, Result, TableMapping,
    TableSchema,
};

mod connection;
mod error;
mod meta;
mod provision;
mod pull;
mod push;
mod resolve;
mod schema;
mod sql;
mod types;
mod write;

#[cfg(test)]
mod golden;

pub use connection::{parse_url, Target};

/// A SQL Server (2017 or newer) central database.
#[derive(Debug, Clone)]
pub struct MssqlCentral {
    pool: connection::Pool,
}

impl MssqlCentral {
    /// Connect to `url` (`mssql://user@host:port/database?options`);
    /// `password`, when given, overrides one in the URL. Options: `encrypt`
    /// (`required`, the default; `strict`; `login-only`; `off`),
    /// `trust_server_certificate`, `ca`, `hostname_in_certificate`,
    /// `application_name`, `auth` (`sql`, the default, or `aad-token`).
    ///
    /// Errors name the thing at fault: a refused login is
    /// [`edgesync_core::ErrorKind::Auth`] naming user and server, an
    /// unreachable server (refused, or no answer within 8 seconds) is
    /// `Connection`, a bad URL, a missing database or a TLS certificate the
    /// client does not trust is `Config`, a server older than 2017 is
    /// `Schema`.
    pub async fn connect(url: &str, password: Option<&str>) -> Result<MssqlCentral> {
        Ok(MssqlCentral {
            pool: connection::Pool::connect(url, password).await?,
        })
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> String {
        self.pool.addr()
    }

    /// A session of its own, held until dropped: for tests and tools that
    /// keep a transaction open across calls (it takes one of the pool's
    /// eight sessions).
    pub async fn session(&self) -> Result<Session> {
        Ok(Session {
            conn: self.pool.get().await?,
        })
    }

    /// Run T-SQL (several statements allowed) on a session of the pool, for
    /// tests and tools.
    pub async fn execute_sql(&self, sql: &str) -> Result<()> {
        self.pool.get().await?.batch(sql, "running SQL").await
    }

    /// The first column of every row `sql` returns, as text (`NULL` as
    /// `None`), for tests and tools.
    pub async fn query_text(&self, sql: &str) -> Result<Vec<Option<String>>> {
        let rows = self
            .pool
            .get()
            .await?
            .query(sql, &[], "running a query")
            .await?;
        rows.iter().map(|r| types::get_text(r, 0)).collect()
    }
}

/// One session of a [`MssqlCentral`]'s pool, for tests and tools.
pub struct Session {
    conn: connection::Conn,
}

impl Session {
    /// Run a T-SQL batch (`BEGIN TRANSACTION` stays open until a later
    /// batch commits it).
    pub async fn run(&mut self, sql: &str) -> Result<()> {
        self.conn.batch(sql, "running SQL").await
    }

    /// The first column of every row `sql` returns, as text.
    pub async fn query_text(&mut self, sql: &str) -> Result<Vec<Option<String>>> {
        let rows = self.conn.query(sql, &[], "running a query").await?;
        rows.iter().map(|r| types::get_text(r, 0)).collect()
    }
}

/// Every statement `init-sync` would run for `tables` on a SQL Server that
/// has nothing provisioned yet, without connecting (`init-sync --dry-run`
/// for a server out of reach; the golden files).
pub fn render_init_plan(tables: &[TableMapping]) -> Result<Vec<Statement>> {
    provision::render_init(tables)
}

/// Every statement `deinit-sync` would run for `tables` on a fully
/// provisioned SQL Server, without connecting.
pub fn render_deinit_plan(tables: &[TableMapping], all: bool) -> Result<Vec<Statement>> {
    provision::render_deinit(tables, all)
}

#[async_trait]
impl Central for MssqlCentral {
    fn backend(&self) -> &'static str {
        "mssql"
    }

    async fn ping(&self) -> Result<()> {
        let addr = self.pool.addr();
        self.pool
            .get()
            .await?
            .query("SELECT 1", &[], &format!("SQL Server at {addr}"))
            .await?;
        Ok(())
    }

    async fn describe(&self, table: &QualifiedName) -> Result<Option<TableSchema>> {
        schema::describe(&self.pool, table).await
    }

    async fn plan_init(&self, tables: &[TableMapping]) -> Result<Vec<Statement>> {
        provision::plan_init(&self.pool, tables).await
    }

    async fn plan_deinit(&self, tables: &[TableMapping], all: bool) -> Result<Vec<Statement>> {
        provision::plan_deinit(&self.pool, tables, all).await
    }

    async fn execute(&self, statements: &[Statement]) -> Result<()> {
        provision::execute(&self.pool, statements).await
    }

    async fn push_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&edgesync_core::filter::Scope>,
        batch: &PushBatch,
    ) -> Result<PushResult> {
        edgesync_core::change::check_fingerprint(
            table,
            batch.fingerprint.as_deref(),
            "push batch",
        )?;
        push::push(&self.pool, node, table, scope, batch).await
    }

    async fn pull_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&edgesync_core::filter::Scope>,
        token: Option<&str>,
        limit: usize,
    ) -> Result<PullPage> {
        pull::pull(&self.pool, node, table, scope, token, limit)
            .await
            .map(|p| p.with_fingerprint(table))
    }

    async fn conflicts(&self, all: bool, limit: usize) -> Result<Vec<ConflictRecord>> {
        meta::conflicts(&self.pool, all, limit).await
    }

    async fn resolve_conflict(&self, id: i64, keep: Keep) -> Result<ConflictRecord> {
        resolve::resolve_conflict(&self.pool, id, keep).await
    }

    async fn purge_conflicts(&self, older_than: std::time::Duration) -> Result<u64> {
        meta::purge_conflicts(&self.pool, older_than).await
    }

    async fn progress(&self) -> Result<Vec<NodeProgress>> {
        meta::progress(&self.pool).await
    }
}
