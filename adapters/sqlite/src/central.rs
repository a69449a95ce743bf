//! [`SqliteCentral`]: a SQLite file as the central database
//! (`central.url = "sqlite://central.db"`), so edgesync runs on a machine
//! with no database server at all.
//!
//! Commit-safety is simple here, which is why this backend is a good
//! reference: SQLite has one writer, every write takes its version from the
//! `es_ctl.seq` counter inside its own write transaction, so versions are
//! assigned in commit order and "every version above the token" is exactly
//! what a pull must deliver. A pull token is just `{"v": <version>}`.
//!
//! Central application writes are stamped by triggers
//! (`schemas/sqlite/central_*.sql`); an edge's push is applied by `push.rs`
//! with `applying = 1`, writing every `es_` column itself.
//!
//! Conflicts are decided by `edgesync_core::conflict::decide`, with two
//! refinements of what the edge is taken to have seen: a central state last
//! written by the pushing node itself (at an earlier sequence) is that
//! change's base even if the answer carrying its version was lost, and an
//! insert (no base) meeting a tombstone is an insert after a delete. Without
//! them a lost acknowledgement, or re-creating a deleted key, would be
//! reported as a conflict and `server-wins` would discard the edge's write.
//! `field-merge` results are written under the node's name with no sequence
//! and handed back to the edge (`push.rs`); the manual queue and the log's
//! retention are in `resolve.rs`.

mod hub;
mod provision;
mod pull;
mod push;
mod resolve;
mod retention;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use edgesync_core::central::{NodeProgress, Statement};
use edgesync_core::change::PushResult;
use edgesync_core::conflict::{ConflictPolicy, ConflictRecord, Keep};
use edgesync_core::{
    Central, Error, PullPage, PushBatch, QualifiedName, Result, TableMapping, TableSchema, Value,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection};

use crate::error::SqlResultExt;
use crate::sql::{self, KeyCol};
use crate::types::{self, RowReader};
use crate::worker::{self, Worker};
use edgesync_core::filter::Scope;

/// A SQLite file used as the central database. Cheap to clone; clones
/// share one connection thread.
#[derive(Debug, Clone)]
pub struct SqliteCentral {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    worker: Worker,
}

impl SqliteCentral {
    /// Opens (creating if absent) the central file, with the same checks and
    /// errors as [`crate::EdgeDb::open`].
    pub async fn open(path: &Path) -> Result<SqliteCentral> {
        let owned = path.to_path_buf();
        let worker = Worker::start(path.display().to_string(), move || {
            worker::open_file(&owned)
        })
        .await?;
        Ok(SqliteCentral {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                worker,
            }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.inner.worker.run(f).await
    }
}

#[async_trait]
impl Central for SqliteCentral {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        self.run(|c| c.query_row("SELECT 1", [], |_| Ok(())).db())
            .await
    }

    /// SQLite has one schema per file: a schema qualifier in the config is
    /// ignored.
    async fn describe(&self, table: &QualifiedName) -> Result<Option<TableSchema>> {
        let name = table.name.clone();
        self.run(move |c| crate::schema::describe(c, &name)).await
    }

    async fn plan_init(&self, tables: &[TableMapping]) -> Result<Vec<Statement>> {
        let tables = tables.to_vec();
        self.run(move |c| provision::plan_init(c, &tables)).await
    }

    async fn plan_deinit(&self, tables: &[TableMapping], all: bool) -> Result<Vec<Statement>> {
        let tables = tables.to_vec();
        self.run(move |c| provision::plan_deinit(c, &tables, all))
            .await
    }

    async fn execute(&self, statements: &[Statement]) -> Result<()> {
        let statements = statements.to_vec();
        self.run(move |c| crate::schema::execute(c, &statements))
            .await
    }

    async fn push_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&Scope>,
        batch: &PushBatch,
    ) -> Result<PushResult> {
        edgesync_core::change::check_fingerprint(
            table,
            batch.fingerprint.as_deref(),
            "push batch",
        )?;
        let scope = scope.cloned();
        let (node, table, batch) = (node.to_string(), table.clone(), batch.clone());
        self.run(move |c| push::push(c, &node, &table, scope.as_ref(), &batch))
            .await
    }

    async fn pull_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&Scope>,
        token: Option<&str>,
        limit: usize,
    ) -> Result<PullPage> {
        let scope = scope.cloned();
        let (node, t, token) = (node.to_string(), table.clone(), token.map(str::to_string));
        let page = self
            .run(move |c| pull::pull(c, &node, &t, scope.as_ref(), token.as_deref(), limit))
            .await?;
        Ok(page.with_fingerprint(table))
    }

    async fn conflicts(&self, all: bool, limit: usize) -> Result<Vec<ConflictRecord>> {
        self.run(move |c| conflicts(c, all, limit)).await
    }

    async fn resolve_conflict(&self, id: i64, keep: Keep) -> Result<ConflictRecord> {
        self.run(move |c| resolve::resolve_conflict(c, id, keep))
            .await
    }

    async fn purge_conflicts(&self, older_than: std::time::Duration) -> Result<u64> {
        self.run(move |c| resolve::purge_conflicts(c, older_than))
            .await
    }

    async fn progress(&self) -> Result<Vec<NodeProgress>> {
        self.run(progress).await
    }

    async fn purge(
        &self,
        tables: &[TableMapping],
        older_than: std::time::Duration,
    ) -> Result<edgesync_core::central::Purged> {
        let tables = tables.to_vec();
        self.run(move |c| retention::purge(c, &tables, older_than))
            .await
    }

    fn hub_store(&self) -> Option<&dyn edgesync_core::central::HubStore> {
        Some(self)
    }
}

fn conflicts(conn: &mut Connection, all: bool, limit: usize) -> Result<Vec<ConflictRecord>> {
    if !crate::schema::exists(conn, "table", "es_conflicts")? {
        return Ok(Vec::new());
    }
    read_conflicts(
        conn,
        "?1 OR open = 1",
        params![all, i64::try_from(limit).unwrap_or(i64::MAX)],
    )
}

/// Conflict log entries matching `filter` (SQL over `es_conflicts`, with
/// `?1`), newest first, at most `?2`.
fn read_conflicts(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<ConflictRecord>> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT id, tbl, key_json, node, strategy, base_ver, local_json, central_json, \
             result_json, local_hlc, central_hlc, at, open, base_json, resolved_at, kept \
             FROM es_conflicts WHERE {filter} ORDER BY id DESC LIMIT ?2"
        ))
        .db_ctx(|| "reading the conflict log (run init-sync?)")?;
    let mut rows = stmt.query(args).db()?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().db()? {
        let id: i64 = r.get(0).db()?;
        let bad = |what: &str| Error::internal(format!("es_conflicts row {id}: bad {what}"));
        let named = |i: usize, what: &str| -> Result<Option<Vec<(String, Value)>>> {
            r.get::<_, Option<String>>(i)
                .db()?
                .map(|j| serde_json::from_str(&j).map_err(|e| bad(what).with_source(e)))
                .transpose()
        };
        let strategy: String = r.get(4).db()?;
        let at: String = r.get(11).db()?;
        let resolved_at: Option<String> = r.get(14).db()?;
        let kept: Option<String> = r.get(15).db()?;
        out.push(ConflictRecord {
            id,
            table: r.get(1).db()?,
            key: named(2, "key")?.ok_or_else(|| bad("key"))?,
            node: r.get(3).db()?,
            strategy: parse_policy(&strategy).ok_or_else(|| bad("strategy"))?,
            base_version: r.get(5).db()?,
            base: named(13, "base values")?,
            local: named(6, "local values")?,
            central: named(7, "central values")?,
            result: named(8, "result values")?,
            local_hlc: r.get(9).db()?,
            central_hlc: r.get(10).db()?,
            at: types::parse_stored_time(&at).ok_or_else(|| bad("time"))?,
            open: r.get::<_, i64>(12).db()? != 0,
            resolved_at: resolved_at
                .map(|t| types::parse_stored_time(&t).ok_or_else(|| bad("resolution time")))
                .transpose()?,
            kept: kept
                .map(|k| Keep::parse(&k).ok_or_else(|| bad("kept side")))
                .transpose()?,
        });
    }
    Ok(out)
}

fn parse_policy(s: &str) -> Option<ConflictPolicy> {
    [
        ConflictPolicy::ServerWins,
        ConflictPolicy::ClientWins,
        ConflictPolicy::LastWriteWins,
        ConflictPolicy::FieldMerge,
        ConflictPolicy::Manual,
        ConflictPolicy::OutOfScope,
    ]
    .into_iter()
    .find(|p| p.as_str() == s)
}

fn progress(conn: &mut Connection) -> Result<Vec<NodeProgress>> {
    if !crate::schema::exists(conn, "table", "es_nodes")? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT node, tbl, hi, last_push_at FROM es_nodes ORDER BY node, tbl")
        .db()?;
    let rows = stmt
        .query_map([], |r| {
            Ok(NodeProgress {
                node: r.get(0)?,
                table: r.get(1)?,
                hi: r.get(2)?,
                last_push: r
                    .get::<_, Option<String>>(3)?
                    .and_then(|t| types::parse_stored_time(&t)),
            })
        })
        .db()?;
    rows.collect::<std::result::Result<_, _>>().db()
}

/// SQL and conversions for one mapped central table (central names and
/// types throughout).
struct CentralTable<'a> {
    m: &'a TableMapping,
    /// Unqualified central table name (also the `tbl` of its metadata rows).
    name: &'a str,
    q: String,
    key: Vec<KeyCol>,
    cols: String,
}

impl<'a> CentralTable<'a> {
    fn new(m: &'a TableMapping) -> Self {
        CentralTable {
            m,
            name: &m.central.name,
            q: sql::ident(&m.central.name),
            key: m
                .key_columns()
                .map(|c| KeyCol {
                    name: c.central.clone(),
                    ty: c.ty,
                })
                .collect(),
            cols: sql::column_list("", m.columns.iter().map(|c| c.central.as_str())),
        }
    }

    fn reader(&self) -> RowReader<'_> {
        RowReader {
            table: self.name,
            columns: self
                .m
                .columns
                .iter()
                .map(|c| (c.central.as_str(), c.ty))
                .collect(),
            key: &self.m.key,
        }
    }

    fn key_types(&self) -> Vec<edgesync_core::ColType> {
        self.key.iter().map(|k| k.ty).collect()
    }

    /// `id=42` or `(a=1, b=x)` with central column names.
    fn describe_key(&self, key: &[Value]) -> String {
        let parts: Vec<String> = self
            .key
            .iter()
            .zip(key)
            .map(|(k, v)| format!("{}={}", k.name, v.display()))
            .collect();
        if parts.len() == 1 {
            parts.concat()
        } else {
            format!("({})", parts.join(", "))
        }
    }

    fn bind_key(&self, key: &[Value]) -> Result<Vec<SqlValue>> {
        if key.len() != self.key.len() {
            return Err(Error::value(format!(
                "table {}: a key of {} values for a {}-column key",
                self.name,
                key.len(),
                self.key.len()
            )));
        }
        types::bind_values(
            self.name,
            self.key.iter().map(|k| (k.name.as_str(), k.ty)),
            key,
            &self.describe_key(key),
        )
    }

    fn bind_row(&self, values: &[Value], key: &[Value]) -> Result<Vec<SqlValue>> {
        if values.len() != self.m.columns.len() {
            return Err(Error::value(format!(
                "table {}, key {}: a row of {} values for {} columns",
                self.name,
                self.describe_key(key),
                values.len(),
                self.m.columns.len()
            )));
        }
        types::bind_values(
            self.name,
            self.m.columns.iter().map(|c| (c.central.as_str(), c.ty)),
            values,
            &self.describe_key(key),
        )
    }

    /// Values paired with central column names, for the conflict log.
    fn named(&self, values: &[Value]) -> Vec<(String, Value)> {
        self.m
            .columns
            .iter()
            .map(|c| c.central.clone())
            .zip(values.iter().cloned())
            .collect()
    }

    fn named_key(&self, key: &[Value]) -> Vec<(String, Value)> {
        self.key
            .iter()
            .map(|k| k.name.clone())
            .zip(key.iter().cloned())
            .collect()
    }
}
