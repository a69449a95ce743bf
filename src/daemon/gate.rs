//! [`Gate`]: the daemon's wrapper around the central adapter.
//!
//! The engine drives a table's sync as a loop of central calls (one push
//! batch, one pull page at a time) inside `sync_edge`. Wrapping the central
//! gives the daemon a hook at exactly those batch boundaries without
//! changing the engine:
//!
//! - **Stopping between batches.** Once [`Gate::close`] is called, the next
//!   `push` or `pull` fails at once with [`INTERRUPTED`]. The batch already
//!   in flight completes (and its acknowledgement is written to the edge),
//!   so SIGTERM and reloads never leave a half-applied batch behind and
//!   never wait for a whole initial load.
//! - **Observing.** Each call is timed (the batch duration histogram), and
//!   the error kind of a failed call is kept per node and table, so metrics
//!   can count errors by kind (`TableStats` only carries the message).
//! - **Central health.** A connection error marks the central down; the
//!   next successful call, or the prober's ping, marks it up again, which
//!   wakes every edge that was backing off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use edgesync_core::central::{NodeProgress, Statement};
use edgesync_core::change::{PullPage, PushBatch, PushResult};
use edgesync_core::conflict::ConflictRecord;
use edgesync_core::{Central, Error, ErrorKind, QualifiedName, Result, TableMapping, TableSchema};

use super::Shared;

/// The message of the error a closed gate answers with; the scheduler
/// recognises it in `TableStats::error` and does not count it as a failure.
pub(crate) const INTERRUPTED: &str =
    "interrupted: edgesync is stopping or reloading; the table resumes after its last committed batch";

/// See the module documentation.
pub(crate) struct Gate {
    inner: Arc<dyn Central>,
    closed: AtomicBool,
    shared: Arc<Shared>,
    /// Error kind of the last failed central call, per (node, edge table).
    kinds: Mutex<HashMap<(String, String), ErrorKind>>,
}

impl Gate {
    pub(crate) fn new(inner: Arc<dyn Central>, shared: Arc<Shared>) -> Gate {
        Gate {
            inner,
            closed: AtomicBool::new(false),
            shared,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// The adapter itself (for the prober's ping, which must not be gated).
    pub(crate) fn inner(&self) -> &Arc<dyn Central> {
        &self.inner
    }

    /// Refuse every further push and pull.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn kinds(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), ErrorKind>> {
        self.kinds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forget the error kinds recorded for `node` (before one of its syncs).
    pub(crate) fn clear_kinds(&self, node: &str) {
        self.kinds().retain(|(n, _), _| n != node);
    }

    /// The kind of the central error `table` of `node` failed with, if it
    /// failed at the central.
    pub(crate) fn kind(&self, node: &str, table: &str) -> Option<ErrorKind> {
        self.kinds()
            .get(&(node.to_string(), table.to_string()))
            .copied()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Retryable, INTERRUPTED));
        }
        Ok(())
    }

    fn observe<T>(&self, node: &str, table: &str, op: &str, started: Instant, result: &Result<T>) {
        match result {
            Ok(_) => {
                self.shared
                    .metrics
                    .record_batch(node, table, op, started.elapsed());
                self.shared.beat(node);
                self.shared.set_central_up(true);
            }
            Err(e) => {
                self.kinds()
                    .insert((node.to_string(), table.to_string()), e.kind());
                if e.kind() == ErrorKind::Connection {
                    self.shared.set_central_up(false);
                }
            }
        }
    }
}

#[async_trait]
impl Central for Gate {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn describe(&self, table: &QualifiedName) -> Result<Option<TableSchema>> {
        self.inner.describe(table).await
    }

    async fn plan_init(&self, tables: &[TableMapping]) -> Result<Vec<Statement>> {
        self.inner.plan_init(tables).await
    }

    async fn plan_deinit(&self, tables: &[TableMapping], all: bool) -> Result<Vec<Statement>> {
        self.inner.plan_deinit(tables, all).await
    }

    async fn execute(&self, statements: &[Statement]) -> Result<()> {
        self.inner.execute(statements).await
    }

    async fn push_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&edgesync_core::filter::Scope>,
        batch: &PushBatch,
    ) -> Result<PushResult> {
        self.check_open()?;
        let started = Instant::now();
        let result = self.inner.push_scoped(node, table, scope, batch).await;
        self.observe(node, &table.edge, "push", started, &result);
        result
    }

    async fn pull_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&edgesync_core::filter::Scope>,
        token: Option<&str>,
        limit: usize,
    ) -> Result<PullPage> {
        self.check_open()?;
        let started = Instant::now();
        let result = self
            .inner
            .pull_scoped(node, table, scope, token, limit)
            .await;
        self.observe(node, &table.edge, "pull", started, &result);
        result
    }

    async fn conflicts(&self, all: bool, limit: usize) -> Result<Vec<ConflictRecord>> {
        self.inner.conflicts(all, limit).await
    }

    async fn resolve_conflict(&self, id: i64, keep: edgesync_core::Keep) -> Result<ConflictRecord> {
        self.check_open()?;
        self.inner.resolve_conflict(id, keep).await
    }

    async fn purge_conflicts(&self, older_than: std::time::Duration) -> Result<u64> {
        self.inner.purge_conflicts(older_than).await
    }

    async fn purge(
        &self,
        tables: &[edgesync_core::TableMapping],
        older_than: std::time::Duration,
    ) -> Result<edgesync_core::central::Purged> {
        self.inner.purge(tables, older_than).await
    }

    async fn progress(&self) -> Result<Vec<NodeProgress>> {
        self.inner.progress().await
    }

    async fn estimate_rows(&self, table: &TableMapping) -> Result<Option<u64>> {
        self.inner.estimate_rows(table).await
    }

    fn watch(&self, tables: &[TableMapping]) -> Option<Box<dyn edgesync_core::ChangeFeed>> {
        self.inner.watch(tables)
    }

    /// Schema evolution reads current central rows through it (see
    /// `engine::evolve`).
    fn hub_store(&self) -> Option<&dyn edgesync_core::central::HubStore> {
        self.inner.hub_store()
    }
}
