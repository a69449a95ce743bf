//! [`EdgeDb`]: one edge SQLite file, as the engine sees it.
//!
//! Local writes are captured by triggers (see `schemas/sqlite/edge_*.sql` and
//! "Edge capture" in `docs/design.md`); this handle reads them for pushes,
//! records what the central answered, and applies pulled pages. Every write
//! it makes runs in one `BEGIN IMMEDIATE` transaction with
//! `es_ctl.applying = 1`, so the triggers stay silent and nothing edgesync
//! writes is captured as a local change.
//!
//! The submodules split the work: `provision` plans `init-sync` and
//! `deinit-sync`, `push` reads and acknowledges local changes, `pull` applies
//! central pages.

mod app;
mod evolve;
mod fkeys;
mod provision;
mod pull;
mod push;
mod quarantine;
mod resnapshot;
mod table;

pub use evolve::{Evolved, SyncedColumns};
pub use quarantine::QuarantinedChange;
pub use resnapshot::Resnapshots;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgesync_core::central::Statement;
use edgesync_core::{PullPage, PushBatch, Result, TableMapping, TableSchema};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::SqlResultExt;
use crate::sql;
use crate::types;
use crate::worker::{self, Worker};
use table::EdgeTable;

use edgesync_core::change::PushResult;

/// What one [`EdgeDb::apply_pull`] call did with its page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplyStats {
    /// Changes written to the edge table.
    pub applied: usize,
    /// Changes skipped because the local row has unpushed writes (the next
    /// push resolves the conflict on the central, by policy).
    pub skipped_dirty: usize,
    /// Changes skipped because the edge already has that version or a later
    /// one, and deletes of rows the edge does not have.
    pub skipped_stale: usize,
}

/// One table's sync state on an edge, for `edgesync status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeTableStatus {
    /// Local changes not yet acknowledged by the central.
    pub pending: i64,
    /// Push watermark: every local sequence at or below it is acknowledged.
    pub push_wm: i64,
    /// A pull has stored a token (the initial load has begun).
    pub pull_started: bool,
    /// A pull pass has completed at least once (the initial load is done).
    pub pull_complete: bool,
    /// When the last push was acknowledged (UTC text).
    pub last_push: Option<String>,
    /// When the last pull pass completed (UTC text).
    pub last_pull: Option<String>,
    /// The last error noted for this table.
    pub last_error: Option<String>,
    /// When it was noted (UTC text).
    pub last_error_at: Option<String>,
    /// Local changes the central refused, set aside in `es_quarantine`.
    pub quarantined: i64,
}

/// A handle on one edge SQLite file. Cheap to clone; all clones share one
/// connection thread.
#[derive(Debug, Clone)]
pub struct EdgeDb {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    worker: Worker,
}

impl EdgeDb {
    /// Opens (creating if absent) an edge file: WAL, 5 s busy timeout,
    /// foreign keys on. A missing parent directory is a `Config` error
    /// naming it (nothing is created); a file that is not SQLite, or is
    /// corrupt, is a `Corrupt` error naming it (and is left untouched).
    pub async fn open(path: &Path) -> Result<EdgeDb> {
        let owned = path.to_path_buf();
        let worker = Worker::start(path.display().to_string(), move || {
            worker::open_file(&owned)
        })
        .await?;
        Ok(EdgeDb {
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
        let path = self.inner.path.clone();
        self.inner.worker.run(f).await.map_err(|e| {
            // Name the file where the failure is the file's (corrupt, locked
            // by an application, full disk, ...): a gateway serving many edge
            // files needs to know which. Value, schema and constraint errors
            // already name the table, column and key.
            use edgesync_core::ErrorKind as K;
            if matches!(e.kind(), K::Corrupt | K::Retryable | K::Database) {
                e.context(format!("edge file {}", path.display()))
            } else {
                e
            }
        })
    }

    /// The node id recorded by `init-sync`; `None` if not provisioned.
    pub async fn node(&self) -> Result<Option<String>> {
        self.run(|c| provision::node(c)).await
    }

    /// Describe a user table (edgesync's `es_*` columns left out); `None`
    /// if absent.
    pub async fn describe(&self, table: &str) -> Result<Option<TableSchema>> {
        let table = table.to_string();
        self.run(move |c| crate::schema::describe(c, &table)).await
    }

    /// The statements provisioning whatever is missing for `tables` (see
    /// `edge/provision.rs`); empty when everything is in place.
    pub async fn plan_init(&self, node: &str, tables: &[TableMapping]) -> Result<Vec<Statement>> {
        let (node, tables, path) = (node.to_string(), tables.to_vec(), self.inner.path.clone());
        self.run(move |c| provision::plan_init(c, &path, &node, &tables))
            .await
    }

    /// The statements removing everything edgesync added for `tables`, and
    /// the metadata tables when `all`. User columns and rows are kept.
    pub async fn plan_deinit(&self, tables: &[TableMapping], all: bool) -> Result<Vec<Statement>> {
        let tables = tables.to_vec();
        self.run(move |c| provision::plan_deinit(c, &tables, all))
            .await
    }

    /// Runs statements in one `BEGIN IMMEDIATE` transaction; on any error
    /// nothing is changed.
    pub async fn execute(&self, statements: &[Statement]) -> Result<()> {
        let statements = statements.to_vec();
        self.run(move |c| crate::schema::execute(c, &statements))
            .await
    }

    /// Up to `limit` local changes above the push watermark, rows and
    /// tombstones merged in sequence order; `None` when nothing is pending.
    pub async fn read_changes(
        &self,
        table: &TableMapping,
        limit: usize,
    ) -> Result<Option<PushBatch>> {
        let table = table.clone();
        self.run(move |c| push::read_changes(c, &table, limit))
            .await
    }

    /// Records the central's answer to a push in one transaction.
    pub async fn ack_push(
        &self,
        table: &TableMapping,
        batch: &PushBatch,
        result: &PushResult,
    ) -> Result<()> {
        let (table, batch, result) = (table.clone(), batch.clone(), result.clone());
        self.run(move |c| push::ack_push(c, &table, &batch, &result))
            .await
    }

    /// The stored pull token (`None`: never pulled, the next pull is the
    /// initial load).
    pub async fn pull_token(&self, table: &TableMapping) -> Result<Option<String>> {
        let name = table.edge.clone();
        self.run(move |c| {
            c.query_row(
                "SELECT pull_token FROM es_state WHERE tbl = ?1",
                [&name],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .db_ctx(|| format!("reading the pull token of {name}"))
            .map(Option::flatten)
        })
        .await
    }

    /// Applies one pull page, with its token, in one transaction.
    /// A page read with another column layout than `table`'s (its schema
    /// fingerprint differs) is refused with a `Schema` error, unapplied.
    pub async fn apply_pull(&self, table: &TableMapping, page: &PullPage) -> Result<ApplyStats> {
        self.apply_pull_owned(table, page.clone()).await
    }

    /// [`EdgeDb::apply_pull`], taking the page: it moves to the connection
    /// thread as it is, instead of being copied there (the copy, and freeing
    /// it, ran on the task that reads the central, which an initial load
    /// waits on once the edge side is fast).
    pub async fn apply_pull_owned(
        &self,
        table: &TableMapping,
        page: PullPage,
    ) -> Result<ApplyStats> {
        edgesync_core::change::check_fingerprint(table, page.fingerprint.as_deref(), "pull page")?;
        let table = table.clone();
        self.run(move |c| {
            // A re-pull fetching columns the central gained (`edge/evolve.rs`).
            let refilled = evolve::refill(c, &table, &page)?;
            let mut stats = pull::apply_pull(c, &table, &page)?;
            if let Some(n) = refilled {
                stats.applied += n;
                if page.done {
                    evolve::end_refill(c, &table.edge)?;
                }
            }
            Ok((stats, page))
        })
        .await
        // The page is dropped here, on the thread that decoded it: its
        // values were allocated there, and freeing them on the SQLite
        // thread took the allocator's cross-thread path (an arena lock per
        // value), about a tenth of that thread's time in an initial load.
        .map(|(stats, _page)| stats)
    }

    /// Set a local change the central refused aside, with its error, and move
    /// the table's push watermark past it (see `edge/quarantine.rs`). The
    /// change must be the table's first pending change.
    pub async fn quarantine(
        &self,
        table: &TableMapping,
        change: &edgesync_core::Change,
        error: &str,
    ) -> Result<()> {
        let (m, c, e) = (table.clone(), change.clone(), error.to_string());
        self.run(move |conn| quarantine::quarantine(conn, &m, &c, &e))
            .await
    }

    /// Applies pages of several tables, each with its token, in one
    /// transaction (foreign keys checked once, at its commit); all or none.
    pub async fn apply_pulls(&self, pages: &[(TableMapping, PullPage)]) -> Result<Vec<ApplyStats>> {
        for (table, page) in pages {
            edgesync_core::change::check_fingerprint(
                table,
                page.fingerprint.as_deref(),
                "pull page",
            )?;
        }
        let pages = pages.to_vec();
        self.run(move |c| {
            // Re-pulls fetching columns the central gained (`edge/evolve.rs`).
            let mut refilled = Vec::with_capacity(pages.len());
            for (table, page) in &pages {
                refilled.push(evolve::refill(c, table, page)?);
            }
            let mut stats = pull::apply_pulls(c, &pages)?;
            for (((table, page), n), s) in pages.iter().zip(refilled).zip(stats.iter_mut()) {
                if let Some(n) = n {
                    s.applied += n;
                    if page.done {
                        evolve::end_refill(c, &table.edge)?;
                    }
                }
            }
            Ok(stats)
        })
        .await
    }

    /// Start a re-snapshot of `table` (its pull position is older than the
    /// central's retention): the next pull pass is a full load, applied
    /// with [`EdgeDb::apply_resnapshot`] (see `edge/resnapshot.rs`).
    pub async fn begin_resnapshot(&self, table: &TableMapping) -> Result<()> {
        let m = table.clone();
        self.run(move |c| resnapshot::begin(c, &m)).await
    }

    /// Apply one page of a re-snapshot pass with its token; the page that
    /// ends the pass removes the rows the central no longer has (local
    /// writes still pending and quarantined rows stay).
    pub async fn apply_resnapshot(
        &self,
        table: &TableMapping,
        page: &PullPage,
    ) -> Result<ApplyStats> {
        let (m, page) = (table.clone(), page.clone());
        self.run(move |c| resnapshot::apply(c, &m, &page)).await
    }

    /// The table's re-snapshots: how many, when the last one ended, and
    /// whether one is under way.
    pub async fn resnapshots(&self, table: &str) -> Result<Resnapshots> {
        let t = table.to_string();
        self.run(move |c| resnapshot::status(c, &t)).await
    }

    /// `(child, parent)` foreign-key references among `tables` (edge
    /// names), self-references included (see `edge/fkeys.rs`).
    pub async fn references(&self, tables: &[String]) -> Result<Vec<(String, String)>> {
        let tables = tables.to_vec();
        self.run(move |c| fkeys::references(c, &tables)).await
    }

    /// The table's quarantined changes.
    pub async fn quarantined(&self, table: &TableMapping) -> Result<Vec<QuarantinedChange>> {
        let m = table.clone();
        self.run(move |conn| quarantine::list(conn, &m)).await
    }

    /// Queue the table's quarantined changes again (after the cause is
    /// fixed); returns how many.
    pub async fn requeue_quarantined(&self, table: &TableMapping) -> Result<usize> {
        let m = table.clone();
        self.run(move |conn| quarantine::requeue(conn, &m)).await
    }

    /// Remember the last error for a table (`None` clears it). A file not
    /// provisioned yet has nowhere to keep it; that is not an error.
    pub async fn note_error(&self, table: &str, error: Option<&str>) -> Result<()> {
        let (table, error) = (table.to_string(), error.map(str::to_string));
        self.run(move |c| {
            if !crate::schema::exists(c, "table", "es_state")? {
                tracing::debug!(table, "es_state missing; error not recorded");
                return Ok(());
            }
            let at = error.as_ref().map(|_| types::now_text());
            c.execute(
                "INSERT INTO es_state (tbl, last_error, last_error_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tbl) DO UPDATE SET last_error = excluded.last_error, \
                 last_error_at = excluded.last_error_at",
                params![table, error, at],
            )
            .db()?;
            Ok(())
        })
        .await
    }

    /// Mark `tables` as being synced (`es_state.syncing_since`, shown by the
    /// `es_status` view) until [`EdgeDb::finish_sync`].
    pub async fn mark_syncing(&self, tables: &[String]) -> Result<()> {
        let tables = tables.to_vec();
        self.run(move |c| app::mark_syncing(c, &tables)).await
    }

    /// The end of a table's sync: remember its error (`None` clears it),
    /// clear the syncing marker and, on success, stamp `last_sync_at`.
    pub async fn finish_sync(&self, table: &str, error: Option<&str>) -> Result<()> {
        let (table, error) = (table.to_string(), error.map(str::to_string));
        self.run(move |c| app::finish_sync(c, &table, error.as_deref()))
            .await
    }

    /// Unserved rows of `es_sync_requests`: `(id, table)`, `None` = every
    /// table.
    pub async fn open_requests(&self) -> Result<Vec<(i64, Option<String>)>> {
        self.run(|c| app::open_requests(c)).await
    }

    /// Record sync requests as served, each with its outcome.
    pub async fn serve_requests(&self, served: &[(i64, String)]) -> Result<()> {
        let served = served.to_vec();
        self.run(move |c| app::serve_requests(c, &served)).await
    }

    /// Does an application want a sync now (an unserved request, or a
    /// conflict choice not yet tried)?
    pub async fn wants_sync(&self) -> Result<bool> {
        self.run(|c| app::wants_sync(c)).await
    }

    /// The conflict choices applications wrote into `es_conflicts` for
    /// `tables`: `(central conflict id, version to keep)`.
    pub async fn conflict_choices(
        &self,
        tables: &[String],
    ) -> Result<Vec<(i64, edgesync_core::Keep)>> {
        let tables = tables.to_vec();
        self.run(move |c| app::conflict_choices(c, &tables)).await
    }

    /// After trying a choice: `None` (settled) removes the conflict from
    /// the edge, an error is kept on it.
    pub async fn settle_choice(&self, id: i64, error: Option<&str>) -> Result<()> {
        let error = error.map(str::to_string);
        self.run(move |c| app::settle_choice(c, id, error.as_deref()))
            .await
    }

    /// Make the edge's `es_conflicts` rows of `table` the open conflicts in
    /// `records` (this node's, this table's); with `complete`, rows the
    /// central no longer lists are removed.
    pub async fn refresh_conflicts(
        &self,
        table: &TableMapping,
        records: &[edgesync_core::ConflictRecord],
        complete: bool,
    ) -> Result<()> {
        let (m, records) = (table.clone(), records.to_vec());
        self.run(move |c| app::refresh_conflicts(c, &m, &records, complete))
            .await
    }

    /// Pending changes, watermarks and last results of one table.
    pub async fn status(&self, table: &TableMapping) -> Result<EdgeTableStatus> {
        let table = table.clone();
        self.run(move |c| status(c, &table)).await
    }
}

fn status(conn: &mut Connection, m: &TableMapping) -> Result<EdgeTableStatus> {
    let tx = conn.transaction().db()?;
    let mut st = tx
        .query_row(
            "SELECT push_wm, pull_token IS NOT NULL, pull_done, last_push_at, last_pull_at, \
             last_error, last_error_at FROM es_state WHERE tbl = ?1",
            [&m.edge],
            |r| {
                Ok(EdgeTableStatus {
                    pending: 0,
                    push_wm: r.get(0)?,
                    pull_started: r.get(1)?,
                    pull_complete: r.get::<_, i64>(2)? != 0,
                    last_push: r.get(3)?,
                    last_pull: r.get(4)?,
                    last_error: r.get(5)?,
                    last_error_at: r.get(6)?,
                    quarantined: 0,
                })
            },
        )
        .optional()
        .db_ctx(|| format!("reading the sync state of {}", m.edge))?
        .unwrap_or_default();
    st.pending = tx
        .query_row(
            &format!(
                "SELECT (SELECT count(*) FROM {} WHERE es_ver > ?1) + \
                 (SELECT count(*) FROM es_tombstones WHERE tbl = ?2 AND es_ver > ?1)",
                sql::ident(&m.edge)
            ),
            params![st.push_wm, m.edge],
            |r| r.get(0),
        )
        .db_ctx(|| format!("counting pending changes of {}", m.edge))?;
    st.quarantined = quarantine::count(&tx, &m.edge)?;
    Ok(st)
}

/// The push watermark of a table (0 before the first acknowledged push).
fn push_wm(conn: &Connection, table: &str) -> Result<i64> {
    Ok(conn
        .query_row(
            "SELECT push_wm FROM es_state WHERE tbl = ?1",
            [table],
            |r| r.get(0),
        )
        .optional()
        .db_ctx(|| format!("reading the push watermark of {table} (run init-sync?)"))?
        .unwrap_or(0))
}

/// Start an apply transaction's body: silence the triggers, and check
/// foreign keys at commit so a page's rows may arrive in any order.
fn begin_apply(conn: &Connection) -> Result<()> {
    conn.execute_batch("PRAGMA defer_foreign_keys = ON; UPDATE es_ctl SET applying = 1;")
        .db_ctx(|| "starting an apply transaction (is the edge file provisioned?)")
}

/// End it: HLC receive (the next local stamp sorts after everything seen)
/// and triggers back on, before commit, so no other connection ever sees
/// `applying = 1`.
fn end_apply(conn: &Connection, max_hlc: i64) -> Result<()> {
    conn.execute(
        "UPDATE es_ctl SET applying = 0, hlc = MAX(hlc, ?1)",
        [max_hlc],
    )
    .db()?;
    Ok(())
}
