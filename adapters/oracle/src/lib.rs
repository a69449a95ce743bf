//! edgesync's Oracle (19c or newer) central adapter: [`OracleCentral`]
//! implements [`edgesync_core::Central`] with the `oracle` crate (ODPI-C).
//!
//! # Design choices
//!
//! - **Oracle Client at run time only.** ODPI-C is compiled in; it loads
//!   `libclntsh.so` (Oracle Instant Client) when the first session opens. A
//!   machine without it builds and serves every other backend, and an
//!   Oracle central there fails with one `Config` error saying what to
//!   install and where ([`client_available`] tells in advance).
//! - **A blocking driver on its own threads.** Four worker threads each own
//!   one session and take closures from one command channel (`worker.rs`);
//!   nothing calls `spawn_blocking` per query.
//! - **Capture by triggers; versions from a sequence; commit-safe pulls from
//!   SCNs.** Every write gets a version from `es_version` and `es_scn`, the
//!   SCN at the time of the write, read after the writing transaction
//!   registered itself. A pull never moves its watermark past the start SCN
//!   of the oldest open transaction (`V$TRANSACTION`), so a transaction that
//!   writes early and commits late is delivered by the next pass (`pull.rs`
//!   explains; `schemas/oracle/init_shared.sql` lists the two grants this
//!   needs: `EXECUTE` on `DBMS_FLASHBACK` and `SELECT` on `V_$TRANSACTION`,
//!   to the schema owner).
//! - **Exactly-once, set-based pushes.** A batch is one transaction: the
//!   node's `es_nodes` row is locked, replays are answered from the current
//!   rows, fresh changes are decided by [`edgesync_core::conflict::decide`]
//!   against rows locked `FOR UPDATE`, staged in the table's global
//!   temporary table with one array-bound insert and written with a `MERGE`,
//!   an `INSERT ... SELECT` and a `DELETE` (`write.rs`). The session's client
//!   info `edgesync:applying` is the echo guard the triggers read.
//! - **Exact values.** `NUMBER` is read as exact text and written through
//!   `TO_NUMBER` of exact text, never `f64`; `CLOB`/`NCLOB`/`BLOB` are bound
//!   as LOBs (no 4000-byte limit); `TIMESTAMP WITH TIME ZONE` keeps its
//!   offset; `RAW(16)` holds UUIDs in RFC 4122 order; a value the column
//!   would round is an error naming table, column and key.
//! - **Empty strings.** Oracle stores `''` as NULL. An edge's empty text (or
//!   empty bytes) pushed to Oracle is refused with a `Value` error naming the
//!   row, never stored as NULL silently (`types.rs`).
//! - **Names.** Everything edgesync creates has a name of at most 30 bytes
//!   (`names::object_name`); user names are quoted exactly as the catalog
//!   spells them; metadata lives in the schema that owns the table.
//! - **DDL is not transactional** in Oracle: `init-sync` runs one statement
//!   at a time, each checked against the catalog first, so re-running it
//!   completes a partial run.
//!
//! Application `DELETE`s on soft-delete tables remove the row (an Oracle row
//! trigger cannot turn them into updates of the same table); edges of such a
//! table apply the tombstone as a soft delete. Not captured: `TRUNCATE`,
//! direct-path loads that bypass triggers.
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
mod worker;
mod write;

#[cfg(test)]
mod golden;

pub use connection::{client_available, parse_url, Target};
pub use error::INSTANT_CLIENT_MISSING;

/// An Oracle (19c or newer) central database.
#[derive(Debug, Clone)]
pub struct OracleCentral {
    pool: connection::Pool,
}

impl OracleCentral {
    /// Connect to `url` (`oracle://user@host:port/service` or
    /// `oracle://user@tns_alias`); `password`, when given, overrides one in
    /// the URL.
    ///
    /// Errors name the thing at fault: no Oracle Client library on this
    /// machine is [`edgesync_core::ErrorKind::Config`] saying what to install
    /// ([`INSTANT_CLIENT_MISSING`]); a refused login is `Auth` naming user
    /// and server; an unreachable listener is `Connection`; a bad URL or an
    /// unknown service is `Config`; a server older than 19c is `Schema`.
    pub async fn connect(url: &str, password: Option<&str>) -> Result<OracleCentral> {
        Ok(OracleCentral {
            pool: connection::Pool::connect(url, password).await?,
        })
    }

    /// The schema unqualified table names live in.
    pub fn default_owner(&self) -> &str {
        &self.pool.default_owner
    }

    /// Run SQL statements (one per element, no trailing `;` except for
    /// PL/SQL blocks) and commit, for tests and tools.
    pub async fn execute_sql(&self, statements: Vec<String>) -> Result<()> {
        self.pool
            .run(move |conn| {
                for s in &statements {
                    conn.execute(s, &[])
                        .map_err(error::ctx(format!("running {s}")))?;
                }
                conn.commit().map_err(error::ctx("committing"))
            })
            .await
    }

    /// The first column of every row `sql` returns, as text, for tests and
    /// tools.
    pub async fn query_text(&self, sql: String) -> Result<Vec<Option<String>>> {
        self.pool
            .run(move |conn| {
                let rows = conn
                    .query_as::<Option<String>>(&sql, &[])
                    .map_err(error::ctx(format!("running {sql}")))?;
                rows.map(|r| r.map_err(error::ctx("reading a row")))
                    .collect()
            })
            .await
    }
}

/// Every statement `init-sync` would run for `tables` on an Oracle schema
/// that has nothing provisioned yet, without connecting (column types
/// assumed from the mappings; `default_owner` for unqualified names).
pub fn render_init_plan(tables: &[TableMapping], default_owner: &str) -> Result<Vec<Statement>> {
    provision::render_init(tables, default_owner)
}

/// Every statement `deinit-sync` would run for `tables` on a fully
/// provisioned Oracle schema, without connecting.
pub fn render_deinit_plan(
    tables: &[TableMapping],
    all: bool,
    default_owner: &str,
) -> Result<Vec<Statement>> {
    provision::render_deinit(tables, all, default_owner)
}

#[async_trait]
impl Central for OracleCentral {
    fn backend(&self) -> &'static str {
        "oracle"
    }

    async fn ping(&self) -> Result<()> {
        let display = self.pool.display.clone();
        self.pool
            .run(move |conn| {
                conn.ping()
                    .map_err(error::ctx(format!("Oracle at {display}")))
            })
            .await
    }

    async fn describe(&self, table: &QualifiedName) -> Result<Option<TableSchema>> {
        let (owner, unicode) = (self.pool.default_owner.clone(), self.pool.db_unicode);
        let table = table.clone();
        self.pool
            .run(move |conn| schema::describe(conn, &table, &owner, unicode))
            .await
    }

    async fn plan_init(&self, tables: &[TableMapping]) -> Result<Vec<Statement>> {
        let (owner, unicode) = (self.pool.default_owner.clone(), self.pool.db_unicode);
        let tables = tables.to_vec();
        self.pool
            .run(move |conn| provision::plan_init(conn, &tables, &owner, unicode))
            .await
    }

    async fn plan_deinit(&self, tables: &[TableMapping], all: bool) -> Result<Vec<Statement>> {
        let (owner, unicode) = (self.pool.default_owner.clone(), self.pool.db_unicode);
        let tables = tables.to_vec();
        self.pool
            .run(move |conn| provision::plan_deinit(conn, &tables, all, &owner, unicode))
            .await
    }

    async fn execute(&self, statements: &[Statement]) -> Result<()> {
        let statements = statements.to_vec();
        self.pool
            .run(move |conn| provision::execute(conn, &statements))
            .await
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
        let scope = scope.cloned();
        let (owner, unicode) = (self.pool.default_owner.clone(), self.pool.db_unicode);
        let (node, table, batch) = (node.to_string(), table.clone(), batch.clone());
        self.pool
            .run(move |conn| {
                push::push(conn, &owner, unicode, &node, &table, scope.as_ref(), &batch)
            })
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
        let scope = scope.cloned();
        let owner = self.pool.default_owner.clone();
        let (node, t) = (node.to_string(), table.clone());
        let token = token.map(str::to_string);
        let page = self
            .pool
            .run(move |conn| {
                pull::pull(
                    conn,
                    &owner,
                    &node,
                    &t,
                    scope.as_ref(),
                    token.as_deref(),
                    limit,
                )
            })
            .await?;
        Ok(page.with_fingerprint(table))
    }

    async fn conflicts(&self, all: bool, limit: usize) -> Result<Vec<ConflictRecord>> {
        self.pool
            .run(move |conn| meta::conflicts(conn, all, limit))
            .await
    }

    async fn resolve_conflict(&self, id: i64, keep: Keep) -> Result<ConflictRecord> {
        let (owner, unicode) = (self.pool.default_owner.clone(), self.pool.db_unicode);
        self.pool
            .run(move |conn| resolve::resolve_conflict(conn, &owner, unicode, id, keep))
            .await
    }

    async fn purge_conflicts(&self, older_than: std::time::Duration) -> Result<u64> {
        self.pool
            .run(move |conn| meta::purge_conflicts(conn, older_than))
            .await
    }

    async fn progress(&self) -> Result<Vec<NodeProgress>> {
        self.pool.run(meta::progress).await
    }
}
