//! Row filters in direct mode: each node's scope of each table, applied to
//! every push and pull the engine makes.
//!
//! A `[[table]] filter` binds the `[[edge]] params` of the node syncing, so
//! a node's scope depends on who asks. [`Scoped`] wraps the central adapter
//! and turns every `push`/`pull` for a node into `push_scoped`/
//! `pull_scoped` with that node's scope, so nothing that drives the central
//! (the sync cycle, the conflict settling, the daemon's gate around it) can
//! forget the filter. Behind a hub the hub binds the node's credential
//! instead, and the central is not wrapped.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use edgesync_core::central::{HubStore, NodeProgress, Statement};
use edgesync_core::change::{PullPage, PushBatch, PushResult};
use edgesync_core::conflict::{ConflictRecord, Keep};
use edgesync_core::filter::Scope;
use edgesync_core::{Central, QualifiedName, TableMapping, TableSchema};

use super::Edge;
use crate::config::Config;

/// The central adapter, with each node's scope of each filtered table.
pub struct Scoped {
    inner: Arc<dyn Central>,
    /// (node, central table) to the node's scope.
    scopes: HashMap<(String, String), Scope>,
}

/// Wrap `central` so the edges' filters apply; `central` itself when no
/// table has a filter, or when the central is a hub (which applies the
/// filters bound to each node's credential). A filter that does not parse
/// against its table, or whose parameter value does not fit its column, is
/// an error naming the table and the node.
pub fn wrap(
    central: Arc<dyn Central>,
    config: &Config,
    edges: &[Edge],
) -> Result<Arc<dyn Central>> {
    if config.central.is_hub() {
        return Ok(central);
    }
    let mut scopes = HashMap::new();
    for edge in edges {
        for m in &edge.tables {
            let Some(filter) = config.table(&m.edge).and_then(|t| t.filter.as_deref()) else {
                continue;
            };
            let scope = Scope::new(filter, m, None, &edge.config.params).map_err(|e| {
                anyhow::anyhow!(
                    "edge {} (node {}): {e}",
                    edge.config.path.display(),
                    edge.config.node
                )
            })?;
            scopes.insert(key(&edge.config.node, m), scope);
        }
    }
    if scopes.is_empty() {
        return Ok(central);
    }
    Ok(Arc::new(Scoped {
        inner: central,
        scopes,
    }))
}

fn key(node: &str, m: &TableMapping) -> (String, String) {
    (node.to_string(), m.central.to_string().to_lowercase())
}

impl Scoped {
    fn scope(&self, node: &str, m: &TableMapping) -> Option<&Scope> {
        self.scopes.get(&key(node, m))
    }
}

/// Everything but push and pull goes straight to the adapter.
#[async_trait]
impl Central for Scoped {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ping(&self) -> edgesync_core::Result<()> {
        self.inner.ping().await
    }

    async fn describe(&self, table: &QualifiedName) -> edgesync_core::Result<Option<TableSchema>> {
        self.inner.describe(table).await
    }

    async fn plan_init(&self, tables: &[TableMapping]) -> edgesync_core::Result<Vec<Statement>> {
        self.inner.plan_init(tables).await
    }

    async fn plan_deinit(
        &self,
        tables: &[TableMapping],
        all: bool,
    ) -> edgesync_core::Result<Vec<Statement>> {
        self.inner.plan_deinit(tables, all).await
    }

    async fn execute(&self, statements: &[Statement]) -> edgesync_core::Result<()> {
        self.inner.execute(statements).await
    }

    async fn push_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&Scope>,
        batch: &PushBatch,
    ) -> edgesync_core::Result<PushResult> {
        let scope = scope.or_else(|| self.scope(node, table));
        self.inner.push_scoped(node, table, scope, batch).await
    }

    async fn pull_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&Scope>,
        token: Option<&str>,
        limit: usize,
    ) -> edgesync_core::Result<PullPage> {
        let scope = scope.or_else(|| self.scope(node, table));
        self.inner
            .pull_scoped(node, table, scope, token, limit)
            .await
    }

    async fn conflicts(
        &self,
        all: bool,
        limit: usize,
    ) -> edgesync_core::Result<Vec<ConflictRecord>> {
        self.inner.conflicts(all, limit).await
    }

    async fn resolve_conflict(&self, id: i64, keep: Keep) -> edgesync_core::Result<ConflictRecord> {
        self.inner.resolve_conflict(id, keep).await
    }

    async fn purge_conflicts(&self, older_than: std::time::Duration) -> edgesync_core::Result<u64> {
        self.inner.purge_conflicts(older_than).await
    }

    async fn purge(
        &self,
        tables: &[TableMapping],
        older_than: std::time::Duration,
    ) -> edgesync_core::Result<edgesync_core::central::Purged> {
        self.inner.purge(tables, older_than).await
    }

    async fn progress(&self) -> edgesync_core::Result<Vec<NodeProgress>> {
        self.inner.progress().await
    }

    fn hub_store(&self) -> Option<&dyn HubStore> {
        self.inner.hub_store()
    }

    fn watch(&self, tables: &[TableMapping]) -> Option<Box<dyn edgesync_core::ChangeFeed>> {
        self.inner.watch(tables)
    }

    async fn estimate_rows(&self, table: &TableMapping) -> edgesync_core::Result<Option<u64>> {
        self.inner.estimate_rows(table).await
    }
}
