//! The trait every central-database adapter implements.
//!
//! # The contract
//!
//! An adapter promises, for every method below:
//!
//! - **Transactions.** [`Central::push`] applies a whole batch in one database
//!   transaction, together with the node's new push high-water mark; either
//!   all of it commits or none of it does. [`Central::execute`] runs a
//!   provisioning script in one transaction where the database has
//!   transactional DDL, and is otherwise written so a re-run after a failure
//!   completes it.
//! - **Exactly-once push.** The central keeps, per node and table, the highest
//!   edge sequence number it has applied (`hi`). A change whose `version` is
//!   at or below it is a replay: it is *not* applied again, and its outcome is
//!   re-derived from the current central row (`Applied` if the row still holds
//!   that node's write at that sequence, else `Superseded` with the row). So a
//!   re-sent, duplicated or reordered batch is a no-op that answers as the
//!   original did.
//! - **Commit-safe pulls.** A pass of [`Central::pull`] calls that starts from
//!   the token a previous pass ended with returns every change committed after
//!   that previous pass began — including a transaction that took its version
//!   early and committed late. A page may repeat a change (the edge skips
//!   versions it already has); it must never miss one. How the adapter knows
//!   what is committed is its own business (PostgreSQL: transaction ids and
//!   snapshots; SQLite: one writer).
//! - **No echo.** A pull for node N leaves out rows whose last write came from
//!   N's own push (the push outcome already told N their versions), unless a
//!   later write changed them. A *full* pass (one begun without a token: an
//!   initial load or a re-snapshot) includes them: the edge builds the table
//!   from it, and skips the versions it already has.
//! - **Retention.** A pull continuing from a position older than what
//!   [`Central::purge`] removed is refused with
//!   [`ErrorKind::Resnapshot`](crate::ErrorKind::Resnapshot); a full pass
//!   never is.
//! - **Version order.** Central versions increase with every write to a row,
//!   so an edge that sees version `v` can ignore anything `<= v` for that row.
//! - **Values.** Rows travel as [`crate::Value`]s in mapping column order;
//!   conversion to native types is exact or an error naming the column.
//! - **Schema fingerprint.** [`Central::push`] refuses, with nothing applied,
//!   a batch whose fingerprint differs from its mapping's
//!   ([`crate::change::check_fingerprint`]), and every [`PullPage`] is
//!   stamped with the fingerprint of the mapping it was read with
//!   ([`PullPage::with_fingerprint`]): values never land in the wrong columns
//!   when the two sides resolved a table differently (a schema change one
//!   side has not seen yet).

use async_trait::async_trait;

use crate::change::{PullPage, PushBatch, PushResult};
use crate::conflict::{ConflictRecord, Keep};
use crate::error::{Error, Result};
use crate::schema::{QualifiedName, TableMapping, TableSchema};

/// A provisioning statement with what it is for, so `--dry-run` output can
/// be read by a DBA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// One line saying why.
    pub purpose: String,
    /// The SQL.
    pub sql: String,
}

/// Per node and table, what the central knows about a node (for `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeProgress {
    /// Node id.
    pub node: String,
    /// Central table.
    pub table: String,
    /// Highest edge sequence applied.
    pub hi: i64,
    /// When the last push committed.
    pub last_push: Option<chrono::DateTime<chrono::Utc>>,
}

/// What one [`Central::purge`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    /// Tombstones (hard deletes every active node has pulled).
    pub tombstones: u64,
    /// Push high-water marks and pull positions of nodes gone for longer
    /// than the retention.
    pub node_states: u64,
}

/// A central database.
#[async_trait]
pub trait Central: Send + Sync {
    /// Backend name for messages (`postgres`, `sqlite`, ...).
    fn backend(&self) -> &'static str;

    /// Check the connection works (used by `check-config`; writes nothing).
    async fn ping(&self) -> Result<()>;

    /// Describe a user table, without edgesync's metadata columns; `None` if
    /// the table does not exist.
    async fn describe(&self, table: &QualifiedName) -> Result<Option<TableSchema>>;

    /// The statements that would provision what is still missing for these
    /// tables (metadata tables, columns, triggers). Empty when everything is
    /// in place: that is how `init-sync` is idempotent.
    async fn plan_init(&self, tables: &[TableMapping]) -> Result<Vec<Statement>>;

    /// The statements that remove everything edgesync added for these tables,
    /// and the shared metadata when `all` is true. User data is kept.
    async fn plan_deinit(&self, tables: &[TableMapping], all: bool) -> Result<Vec<Statement>>;

    /// Run provisioning statements (see the contract above).
    async fn execute(&self, statements: &[Statement]) -> Result<()>;

    /// Apply one push batch from `node` (see the contract above): the
    /// scoped form with every row in scope.
    async fn push(
        &self,
        node: &str,
        table: &TableMapping,
        batch: &PushBatch,
    ) -> Result<PushResult> {
        self.push_scoped(node, table, None, batch).await
    }

    /// Read one page of changes for `node`, continuing from `token` (`None`
    /// starts a full pass: the initial load): the scoped form with every
    /// row in scope.
    async fn pull(
        &self,
        node: &str,
        table: &TableMapping,
        token: Option<&str>,
        limit: usize,
    ) -> Result<PullPage> {
        self.pull_scoped(node, table, None, token, limit).await
    }

    /// [`Central::push`] for a node whose view of the table is limited by
    /// the table's `filter` (`scope`; `None`: every row). Inside the push
    /// transaction, a change whose new values, or whose current central row,
    /// the scope does not select is not applied: it is recorded in the
    /// conflict log (strategy [`crate::ConflictPolicy::OutOfScope`]) and
    /// answered with [`crate::filter::Scope::refused_outcome`]; the rest of
    /// the batch is applied as usual. No answer hands the node a row outside
    /// its scope ([`crate::filter::Scope::restrict`]).
    ///
    /// A backend that cannot enforce a scope must refuse one
    /// ([`filters_unsupported`]), never silently apply every row.
    async fn push_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&crate::filter::Scope>,
        batch: &PushBatch,
    ) -> Result<PushResult>;

    /// [`Central::pull`] for a node whose view of the table is limited by
    /// `scope`. The central evaluates the filter in SQL with its values
    /// bound: a changed row the scope selects travels as usual, a changed
    /// row it does not select travels as [`crate::Change::moved_out`] (just
    /// its key), so an edge holding it removes it (move-out) and a row
    /// updated into the scope arrives as a plain upsert (move-in). The
    /// initial load may leave out-of-scope rows out altogether.
    ///
    /// A backend that cannot enforce a scope must refuse one (see
    /// [`Central::push_scoped`]).
    async fn pull_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&crate::filter::Scope>,
        token: Option<&str>,
        limit: usize,
    ) -> Result<PullPage>;

    /// The conflict log, newest first; open (manual) ones only unless `all`.
    async fn conflicts(&self, all: bool, limit: usize) -> Result<Vec<ConflictRecord>>;

    /// Settle open conflict `id` (`edgesync conflicts resolve`), in one
    /// transaction, and return it as now recorded.
    ///
    /// - [`Keep::Local`]: the parked local row (or its delete) is written to
    ///   the central table as a *central application write* would be — a new
    ///   version, a fresh HLC tick, `es_origin` NULL — so that every node,
    ///   the one whose push parked it included, pulls it.
    /// - [`Keep::Central`]: nothing is written; the central's version stayed.
    ///
    /// Either way the conflict is closed (`open = false`) with its result
    /// (the kept row) and the time of resolution. An unknown id is a
    /// `Config` error, a conflict no longer open a `Constraint` error, both
    /// naming the id.
    async fn resolve_conflict(&self, id: i64, keep: Keep) -> Result<ConflictRecord> {
        let _ = keep;
        Err(Error::internal(format!(
            "resolving conflict #{id}: not supported by the {} backend",
            self.backend()
        )))
    }

    /// Delete conflict log entries settled more than `older_than` ago
    /// (`sync.conflict_retention`); open ones are kept whatever their age.
    /// Returns how many were deleted. The engine calls it from its sync
    /// cycle.
    async fn purge_conflicts(&self, older_than: std::time::Duration) -> Result<u64> {
        let _ = older_than;
        Err(Error::internal(format!(
            "purging the conflict log: not supported by the {} backend",
            self.backend()
        )))
    }

    /// What the central knows about each node's pushes.
    async fn progress(&self) -> Result<Vec<NodeProgress>>;

    /// Forget sync metadata older than `older_than` (`sync.retention`), in
    /// one transaction per table, and return what went:
    ///
    /// - tombstones of `tables` whose delete is older than that, but never
    ///   one that an *active* node (one that pulled or pushed within
    ///   `older_than`) has not pulled yet: the purge stops at the lowest
    ///   pull position of the active nodes. A node that has been away
    ///   longer is not waited for: its next pull of the table is answered
    ///   with an [`ErrorKind::Resnapshot`](crate::ErrorKind::Resnapshot)
    ///   error, and it takes a fresh snapshot;
    /// - the push high-water marks and pull positions of nodes inactive
    ///   for longer than that.
    ///
    /// The conflict log has its own retention ([`Central::purge_conflicts`]).
    async fn purge(
        &self,
        tables: &[TableMapping],
        older_than: std::time::Duration,
    ) -> Result<Purged> {
        let _ = (tables, older_than);
        Err(Error::new(
            crate::error::ErrorKind::Config,
            format!(
                "sync.retention: purging sync metadata is not supported by the {} central yet",
                self.backend()
            ),
        ))
    }

    /// The hub metadata store of this central (node tokens, request nonces,
    /// the audit log), for `edgesync serve` and `edgesync token`; `None`
    /// when this backend does not keep hub metadata yet. See [`HubStore`].
    fn hub_store(&self) -> Option<&dyn HubStore> {
        None
    }

    /// A feed announcing commits to these tables (see [`crate::watch`] for
    /// its contract), so the daemon pulls them at once instead of at the
    /// next `sync.interval`; `None` (the default) when this backend cannot
    /// announce commits, and the interval alone decides. Connecting is left
    /// to the feed's first [`crate::ChangeFeed::next`], so this never blocks.
    fn watch(&self, tables: &[TableMapping]) -> Option<Box<dyn crate::ChangeFeed>> {
        let _ = tables;
        None
    }

    /// A cheap guess at how many rows `table` holds, for the progress and
    /// ETA of an initial load; `None` (the default) when the backend has no
    /// estimate it can read without scanning the table. Never exact and
    /// never relied on: a pull ends when its last page says so.
    async fn estimate_rows(&self, table: &TableMapping) -> Result<Option<u64>> {
        let _ = table;
        Ok(None)
    }
}

/// The error a backend without row filter support answers a scope with.
pub fn filters_unsupported(backend: &str, table: &TableMapping) -> Error {
    Error::new(
        crate::error::ErrorKind::Config,
        format!(
            "table {}: row filters (`filter`) are not supported by the {backend} central yet",
            table.central
        ),
    )
}

/// The error a backend without hub metadata answers with.
pub fn hub_unsupported(backend: &str) -> Error {
    Error::new(
        crate::error::ErrorKind::Config,
        format!("hub metadata is not supported by the {backend} central"),
    )
}

/// A node credential as the central stores it (`es_tokens`).
///
/// The token itself is never stored: `key_hash` is the hex SHA-256 of the
/// token text, which is also the key requests are signed with (HMAC-SHA256),
/// so the token never travels either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeToken {
    /// Public token id (the part of the token the hub looks it up by).
    pub id: String,
    /// The node the token speaks for.
    pub node: String,
    /// The node's tenant, bound as `:tenant` in table filters.
    pub tenant: Option<String>,
    /// Filter parameters bound to the node (`:name` in table filters).
    pub params: std::collections::BTreeMap<String, String>,
    /// Hex SHA-256 of the token text.
    pub key_hash: String,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was revoked; a revoked token is refused.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One line of the hub's audit log (`es_audit`): who asked for what, and
/// what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditEntry {
    /// When the request was answered.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The node the credential names (`None`: no valid credential).
    pub node: Option<String>,
    /// The credential's tenant.
    pub tenant: Option<String>,
    /// The endpoint (`push`, `pull`, ...).
    pub action: String,
    /// The table named by the request, if any.
    pub table: Option<String>,
    /// A push's batch id (its `hi`).
    pub batch_hi: Option<i64>,
    /// A pull's page: the token it continued from (`None`: a new pass).
    pub page: Option<String>,
    /// Rows pushed or delivered.
    pub rows: i64,
    /// The HTTP status answered.
    pub status: u16,
    /// `ok`, or why the request was refused (`no_token`, `bad_signature`,
    /// `replayed_nonce`, `forbidden_node`, ...).
    pub outcome: String,
    /// The client's address.
    pub remote: Option<String>,
    /// A human-readable detail.
    pub detail: String,
}

/// Hub metadata kept in the central database, so that every `edgesync
/// serve` instance in front of it sees the same tokens and nonces (the hub
/// keeps no state of its own between requests).
///
/// Contract: every method is one short transaction; `record_nonce` is
/// atomic (two hubs recording the same nonce at once: exactly one gets
/// `true`). The tables are provisioned by `init-sync` on the hub together
/// with the rest of the central metadata.
#[async_trait]
pub trait HubStore: Send + Sync {
    /// Store a new token.
    async fn insert_token(&self, token: &NodeToken) -> Result<()>;

    /// Revoke every live token of `node`; how many were revoked.
    async fn revoke_tokens(&self, node: &str, at: chrono::DateTime<chrono::Utc>) -> Result<u64>;

    /// The token with this id, revoked or not.
    async fn find_token(&self, id: &str) -> Result<Option<NodeToken>>;

    /// Record a request nonce seen at `at`; `false` if it was seen before
    /// (a replay).
    async fn record_nonce(
        &self,
        token_id: &str,
        nonce: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool>;

    /// Forget nonces recorded before `before` (the clock window refuses
    /// such old requests anyway); how many.
    async fn purge_nonces(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64>;

    /// Append to the audit log.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;

    /// The newest `limit` audit entries, newest first.
    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>>;

    /// The current central rows of `keys` in `table` (values in mapping
    /// order), aligned with `keys`; `None` where there is no live row (absent
    /// or hard-deleted). Used by the hub to check that a push stays inside
    /// the node's scope.
    async fn current_rows(
        &self,
        table: &TableMapping,
        keys: &[Vec<crate::Value>],
    ) -> Result<Vec<Option<Vec<crate::Value>>>>;
}
