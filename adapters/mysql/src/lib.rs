//! edgesync's MySQL 8 / MariaDB 10.6+ central adapter: [`MysqlCentral`]
//! implements [`edgesync_core::Central`] with mysql_async.
//!
//! # Design choices
//!
//! The full write-up, for DBAs and reviewers, is `adapters/mysql/DESIGN.md`.
//!
//! - **Commit-safe versions without a snapshot xmin: "stamp on read".**
//!   MySQL has nothing like PostgreSQL's snapshot xmin, so a version taken
//!   inside an application transaction could commit after a pull already
//!   passed it. Triggers therefore never take a version: they mark the
//!   changed row pending (`es_ver = NULL`). Each pull first runs a short
//!   stamping step (`stamp.rs`) that locks the single `es_ctl` row and gives
//!   fresh, increasing versions to the pending rows whose writers have
//!   committed, found with `FOR UPDATE SKIP LOCKED` (rows of still-open
//!   transactions are locked, so skipped, and stamped later with later
//!   versions). Pushes stamp their own writes the same way, last, under the
//!   same lock. Every version is assigned by a transaction that holds the
//!   `es_ctl` lock until it commits, so versions become visible in assignment
//!   order, and a pull that reads "everything above the highest version
//!   delivered" in one consistent snapshot misses nothing. No gap timeout,
//!   no wall clock.
//! - **Deletes.** MySQL triggers cannot modify the table they fire on, so an
//!   application `DELETE` cannot become a soft delete centrally: it removes
//!   the row and its `AFTER DELETE` trigger writes a (pending) tombstone;
//!   edges apply it by their own table's mode (soft: set `es_deleted`; hard:
//!   remove the row). A soft delete pushed by an edge keeps the row and sets
//!   `es_deleted`, as on the other backends.
//! - **Echo guard.** The adapter's write transactions set the session
//!   variable `@es_applying = 1`; the triggers then leave `es_ver`,
//!   `es_origin`, `es_oseq` and `es_hlc` as the adapter wrote them, while an
//!   application write always loses any origin it tried to claim.
//! - **Exactly-once, set-based pushes.** A batch is one `REPEATABLE READ`
//!   transaction: the node's `es_nodes` row is locked, replays are answered
//!   from the current rows, fresh changes are decided by
//!   [`edgesync_core::conflict::resolve`] against rows locked `FOR UPDATE`,
//!   and written a chunk at a time: bound rows as a derived table joined with
//!   `STRAIGHT_JOIN` for updates and deletes, multi-row `INSERT`s for new
//!   rows (`write.rs`). No round trip per row.
//! - **Exact values.** A strict session (`sql_mode`, `time_zone = '+00:00'`,
//!   `utf8mb4`) on every connection; decimals and JSON as text, never `f64`;
//!   every parameter cast to its column's type so comparisons never fall
//!   back to doubles; columns that would lose data (`utf8mb3`, `FLOAT`,
//!   `BIGINT UNSIGNED`, `CHAR(n)`, `BINARY(n)`) refused by `describe`, values
//!   that would be rounded refused at push, zero dates and out-of-day `TIME`
//!   values refused at pull, each naming the column (`types.rs`).
//! - **Where metadata lives.** `es_ctl`, `es_nodes`, `es_tombstones` and
//!   `es_conflicts` live in the database named in `central.url`, also for
//!   synced tables in other databases (`db.table` in `sync.toml`).
//! - **DDL is not transactional** on MySQL: `init-sync` runs one statement
//!   at a time, each step checked against the catalog first, so re-running
//!   it completes a partial run (`provision.rs`).
//!
//! Not captured: `TRUNCATE`, and rows changed by foreign-key cascades (MySQL
//! fires no triggers for them).
#![deny(missing_docs)]

use async_trait::async_trait;
use edgesync_core::central::{NodeProgress, Statement};
use edgesync_core::change::PushResult;
use edgesync_core::{
    Central, ConflictRecord, Keep, PullPage, PushBatch, QualifiedName, Result, TableMapping,
    TableSchema,
};
use mysql_async::prelude::Queryable;
use mysql_async::Pool;

mod connection;
mod error;
mod fk;
mod hub;
mod meta;
mod provision;
mod pull;
mod push;
mod resolve;
mod retention;
mod schema;
mod sql;
mod stamp;
mod types;
mod write;

/// A MySQL 8 or MariaDB 10.6+ central database.
#[derive(Debug, Clone)]
pub struct MysqlCentral {
    pool: Pool,
    addr: String,
    db: sql::Db,
    mariadb: bool,
}

impl MysqlCentral {
    /// Connect to `url` (`mysql://user@host:port/database`); `password`, when
    /// given, overrides one in the URL.
    ///
    /// Errors name the thing at fault: a refused login is
    /// [`edgesync_core::ErrorKind::Auth`] naming `user@host:port`, an
    /// unreachable server (refused, or no answer within 8 seconds) is
    /// `Connection` naming `host:port`, a missing database (or a URL without
    /// one) is `Config` naming it, a server without `SKIP LOCKED` (MySQL
    /// before 8.0, MariaDB before 10.6) is `Schema`.
    pub async fn connect(url: &str, password: Option<&str>) -> Result<MysqlCentral> {
        let c = connection::connect(url, password).await?;
        Ok(MysqlCentral {
            pool: c.pool,
            addr: c.addr,
            db: sql::Db {
                default: c.database,
            },
            mariadb: c.mariadb,
        })
    }

    /// The connection pool (for tests and tools).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The database named in the URL (where edgesync's metadata lives).
    pub fn database(&self) -> &str {
        &self.db.default
    }

    /// Whether the server is MariaDB (rather than MySQL).
    pub fn is_mariadb(&self) -> bool {
        self.mariadb
    }
}

#[async_trait]
impl Central for MysqlCentral {
    fn backend(&self) -> &'static str {
        "mysql"
    }

    async fn ping(&self) -> Result<()> {
        let doing = format!("MySQL at {}", self.addr);
        let mut conn = self.pool.get_conn().await.map_err(error::ctx(&doing))?;
        conn.query_drop("SELECT 1")
            .await
            .map_err(error::ctx(&doing))
    }

    async fn describe(&self, table: &QualifiedName) -> Result<Option<TableSchema>> {
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(error::ctx("connecting to MySQL"))?;
        schema::describe(&mut conn, &self.db, self.mariadb, table).await
    }

    async fn plan_init(&self, tables: &[TableMapping]) -> Result<Vec<Statement>> {
        provision::plan_init(&self.pool, &self.db, self.mariadb, tables).await
    }

    async fn plan_deinit(&self, tables: &[TableMapping], all: bool) -> Result<Vec<Statement>> {
        provision::plan_deinit(&self.pool, &self.db, self.mariadb, tables, all).await
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
        push::push(
            &self.pool,
            &self.db,
            self.mariadb,
            node,
            table,
            scope,
            batch,
        )
        .await
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
            &self.db,
            self.mariadb,
            node,
            table,
            scope,
            token,
            limit,
        )
        .await
        .map(|p| p.with_fingerprint(table))
    }

    async fn conflicts(&self, all: bool, limit: usize) -> Result<Vec<ConflictRecord>> {
        meta::conflicts(&self.pool, &self.db, all, limit).await
    }

    async fn resolve_conflict(&self, id: i64, keep: Keep) -> Result<ConflictRecord> {
        resolve::resolve_conflict(&self.pool, &self.db, self.mariadb, id, keep).await
    }

    async fn purge_conflicts(&self, older_than: std::time::Duration) -> Result<u64> {
        meta::purge_conflicts(&self.pool, &self.db, older_than).await
    }

    async fn progress(&self) -> Result<Vec<NodeProgress>> {
        meta::progress(&self.pool, &self.db).await
    }

    async fn purge(
        &self,
        tables: &[TableMapping],
        older_than: std::time::Duration,
    ) -> Result<edgesync_core::central::Purged> {
        retention::purge(&self.pool, &self.db, tables, older_than).await
    }

    /// Tokens, nonces and the audit log in the metadata database (`hub.rs`).
    fn hub_store(&self) -> Option<&dyn edgesync_core::central::HubStore> {
        Some(self)
    }
}
