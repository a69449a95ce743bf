//! edgesync's PostgreSQL central adapter: [`PgCentral`] implements
//! [`edgesync_core::Central`] with sqlx.
//!
//! # Design choices
//!
//! - **Capture by triggers, stamped with transaction ids.** `init-sync` adds
//!   six `es_` columns and two row triggers to each synced table (the SQL is
//!   in `schemas/postgres/`, readable by a DBA). Every write gets a version
//!   from a sequence and the writing transaction's id (`txid_current()`), so
//!   applications need no change and nothing is polled.
//! - **Commit-safe pulls from snapshots, not from version watermarks.** A
//!   sequence is taken in one order and committed in another; a pull
//!   remembers the *snapshot* its previous pass started from and selects every
//!   row whose transaction that snapshot did not see (`pull.rs` explains). A
//!   long transaction that commits late is delivered by the next pass — no
//!   gap timeout, no wall clock.
//! - **Exactly-once, set-based pushes.** A batch is one transaction: the
//!   node's `es_nodes` row is locked, replays are answered from the current
//!   rows, fresh changes are decided by [`edgesync_core::conflict::decide`]
//!   (field-merge included) against rows locked `FOR UPDATE`, and written
//!   with one statement per kind (update, insert, delete) over `UNNEST`ed
//!   arrays, whatever the batch size. `conflicts resolve` is `resolve.rs`.
//!   The transaction sets `edgesync.applying` so the triggers keep the node's
//!   origin (the echo guard) while an application can never forge one.
//! - **Exact values.** Decimals and JSON cross as text, never `f64`; every
//!   conversion is in `types.rs`; a value that would be rounded or truncated
//!   is an error naming table, column and key.
//! - **Where metadata lives.** The shared tables (`es_nodes`,
//!   `es_tombstones`, `es_conflicts`) and the `es_version` sequence live in
//!   the schema of the table they serve; an unqualified table name means
//!   schema `public`. Tables in several schemas get one set per schema;
//!   `conflicts` and `progress` read every schema that has them.
//! - **Errors by SQLSTATE** (`error.rs`), so the engine's retry decisions,
//!   which read only [`edgesync_core::ErrorKind`], are right.
//!
//! - **Commits announced.** A statement-level trigger per table sends
//!   `NOTIFY edgesync` at commit (`notify.rs`); [`Central::watch`] listens on
//!   a connection of its own (`listen.rs`), so the daemon pulls within a
//!   second of a central commit instead of at its next interval.
//!
//! Not captured: `TRUNCATE` (row triggers do not see it) and writes made
//! with triggers disabled (`session_replication_role = replica`).
#![deny(missing_docs)]

use async_trait::async_trait;
use edgesync_core::central::{NodeProgress, Statement};
use edgesync_core::change::PushResult;
use edgesync_core::{
    Central, ConflictRecord, Keep, PullPage, PushBatch, QualifiedName, Result, TableMapping,
    TableSchema,
};
use sqlx::PgPool;

mod connection;
mod copy_out;
mod error;
mod estimate;
mod hub;
mod listen;
mod meta;
mod nodelay;
mod notify;
mod provision;
mod pull;
mod push;
mod resolve;
mod retention;
mod schema;
mod sql;
mod types;
mod write;

/// A PostgreSQL (12 or newer) central database.
#[derive(Debug, Clone)]
pub struct PgCentral {
    pool: PgPool,
    addr: String,
    /// Read pull pages with a binary COPY where the columns allow it (see
    /// `copy_out.rs`); off only for tests of the query path.
    copy_reads: bool,
}

impl PgCentral {
    /// Connect to `url` (`postgres://user@host:port/db`); `password`, when
    /// given, overrides one in the URL.
    ///
    /// Errors name the thing at fault: a refused login is
    /// [`edgesync_core::ErrorKind::Auth`] naming user and server, an
    /// unreachable server (refused, or no answer within 8 seconds) is
    /// `Connection`, a missing database is
    /// `Config` naming it, a server older than 12 is `Schema`.
    pub async fn connect(url: &str, password: Option<&str>) -> Result<PgCentral> {
        let c = connection::connect(url, password).await?;
        Ok(PgCentral {
            pool: c.pool,
            addr: c.addr,
            copy_reads: true,
        })
    }

    /// Read every pull page through sqlx's query path, never with a binary
    /// COPY: the path a page takes when one of its columns cannot be read
    /// from a COPY. For tests that hold the two paths to the same values.
    #[doc(hidden)]
    pub fn without_copy_reads(mut self) -> PgCentral {
        self.copy_reads = false;
        self
    }

    /// The connection pool (for tests and tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

#[async_trait]
impl Central for PgCentral {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(error::ctx(format!("PostgreSQL at {}", self.addr)))?;
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
        pull::pull(
            &self.pool,
            node,
            table,
            scope,
            token,
            limit,
            self.copy_reads,
        )
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

    async fn purge(
        &self,
        tables: &[TableMapping],
        older_than: std::time::Duration,
    ) -> Result<edgesync_core::central::Purged> {
        retention::purge(&self.pool, tables, older_than).await
    }

    fn hub_store(&self) -> Option<&dyn edgesync_core::central::HubStore> {
        Some(self)
    }

    fn watch(&self, tables: &[TableMapping]) -> Option<Box<dyn edgesync_core::ChangeFeed>> {
        Some(Box::new(listen::PgFeed::new(
            &self.pool, &self.addr, tables,
        )))
    }

    async fn estimate_rows(&self, table: &TableMapping) -> Result<Option<u64>> {
        estimate::estimate_rows(&self.pool, table).await
    }
}
