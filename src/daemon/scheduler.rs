//! One edge's scheduler: when to sync which of its tables, and what to make
//! of the result.
//!
//! Every `[[edge]]` gets its own task, so an edge whose file is locked,
//! missing or corrupt only ever delays itself; inside it, every table keeps
//! its own backoff, so a failing table only ever delays itself too. A task
//! syncs its healthy tables:
//!
//! - at once when it starts (after opening the edge file; a file that does
//!   not open is retried with backoff);
//! - when the [watcher](super::wake) sees a commit and one of them has
//!   pending local changes (after a short pause that lets a burst of commits
//!   land);
//! - every table, backing off or not, when the watcher sees a commit and an
//!   application asked for a sync in the edge file (an unserved row of
//!   `es_sync_requests`, or a conflict choice in `es_conflicts`);
//! - when the central announces a commit to one of them (PostgreSQL
//!   `LISTEN/NOTIFY`, see [`super::feed`]): those tables, after the same
//!   short pause;
//! - every `sync.interval` (the only time central changes are pulled from
//!   centrals that announce nothing, and the safety net for those that do);
//!
//! and a failed table again on its own capped exponential backoff with
//! jitter (`sync.retry_max`), during which local commits do not cut in, or
//! at once when the central answers again after an outage.
//!
//! A sync is the engine's `sync_edge` over the tables due (push each, then
//! pull each); the [`Gate`] around the central lets a stop take effect
//! between batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use edgesync_core::TableMapping;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::feed::CentralWake;
use super::gate::{Gate, INTERRUPTED};
use super::generation::{error_kind, open_edge};
use super::shared::Shared;
use super::wake;
use crate::config::EdgeConfig;
use crate::engine::sync::{self, TableStats};
use crate::engine::{progress, Edge, Engine};
use crate::metrics::TableOutcome;

/// Pause after a commit wakes an edge, so a burst of commits goes in one
/// batch.
const COALESCE: Duration = Duration::from_millis(20);
/// The first retry after a failure waits about this long.
const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// What woke the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Due,
    LocalChange,
    CentralBack,
    /// The central announced commits (see [`super::feed`]).
    CentralChange,
}

/// A failing table's (or the edge file's) retry state.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    retry_at: Instant,
}

/// One edge's scheduler (see the module documentation).
pub(crate) struct EdgeTask {
    pub(crate) engine: Arc<Engine>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: EdgeConfig,
    pub(crate) stop: watch::Receiver<bool>,
    /// Commits the central announced for this edge's tables.
    pub(crate) central_wake: Arc<CentralWake>,
}

/// An open edge and the watcher of its file.
struct Open {
    edge: Edge,
    _watcher: wake::Watcher,
}

/// The scheduler's state between wake-ups.
struct State {
    interval: Duration,
    base: Duration,
    cap: Duration,
    open: Option<Open>,
    /// Set while the edge file does not open.
    open_backoff: Option<Backoff>,
    /// When the healthy tables are next due.
    next_interval: Instant,
    /// Failing tables, by edge table name.
    tables: HashMap<String, Backoff>,
}

impl State {
    fn backoff(&self, previous: Option<Backoff>, now: Instant) -> Backoff {
        let failures = previous.map_or(0, |b| b.failures).saturating_add(1);
        Backoff {
            failures,
            retry_at: now + sync::backoff(failures - 1, self.base, self.cap),
        }
    }

    /// When a table is next due.
    fn due_at(&self, table: &str) -> Instant {
        self.tables
            .get(table)
            .map_or(self.next_interval, |b| b.retry_at)
    }

    /// When anything is next due.
    fn next_due(&self) -> Instant {
        let Some(open) = &self.open else {
            // Not open: at once, unless the last attempt failed.
            return self.open_backoff.map_or_else(Instant::now, |b| b.retry_at);
        };
        open.edge
            .tables
            .iter()
            .map(|t| self.due_at(&t.edge))
            .min()
            .unwrap_or(self.next_interval)
    }

    fn failing(&self) -> bool {
        self.open_backoff.is_some() || !self.tables.is_empty()
    }

    /// The open edge's tables not backing off.
    fn healthy(&self) -> Vec<TableMapping> {
        self.open
            .as_ref()
            .map(|o| {
                o.edge
                    .tables
                    .iter()
                    .filter(|t| !self.tables.contains_key(&t.edge))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl EdgeTask {
    /// Run until the generation stops.
    pub(crate) async fn run(self) {
        let EdgeTask {
            engine,
            gate,
            shared,
            config,
            mut stop,
            central_wake,
        } = self;
        let node = config.node.clone();
        let progress = shared.progress(&node);
        let wake = Arc::new(Notify::new());
        // Long pulls (a new edge's initial load) log their progress.
        let lines: Arc<dyn progress::Observer> =
            Arc::new(progress::lines::Lines::new(progress::interval()));
        let mut central = shared.watch_central();
        let interval = engine.config.sync.interval;
        let base = BACKOFF_BASE.min(interval);
        let mut st = State {
            interval,
            base,
            cap: engine.config.sync.retry_max.max(base),
            open: None,
            open_backoff: None,
            next_interval: Instant::now(),
            tables: HashMap::new(),
        };
        loop {
            let reason = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep_until(st.next_due()) => Reason::Due,
                Ok(()) = central.changed() => {
                    let up = *central.borrow_and_update();
                    if !(up && st.failing()) {
                        continue;
                    }
                    Reason::CentralBack
                }
                _ = wake.notified() => Reason::LocalChange,
                _ = central_wake.notified() => Reason::CentralChange,
            };
            if *stop.borrow() {
                break;
            }

            if st.open.is_none() {
                if matches!(reason, Reason::LocalChange | Reason::CentralChange) {
                    // Opening syncs every table anyway.
                    central_wake.take();
                    continue;
                }
                progress.start();
                let opened = open_edge(&engine, &config).await;
                progress.finish();
                match opened {
                    Ok(edge) => {
                        let path = edge.config.path.clone();
                        let watcher = wake::watch(&node, path, wake::POLL, wake.clone());
                        st.open = Some(Open {
                            edge,
                            _watcher: watcher,
                        });
                        st.open_backoff = None;
                    }
                    Err(e) => {
                        let kind = error_kind(&e).map_or("edge", |k| k.as_str());
                        let message = format!("{e:#}");
                        shared.metrics.record_open_failure(&node, kind, &message);
                        let b = st.backoff(st.open_backoff, Instant::now());
                        st.open_backoff = Some(b);
                        let retry_in = b.retry_at - Instant::now();
                        warn!(node, kind, ?retry_in, "cannot open the edge: {message}");
                        continue;
                    }
                }
            }
            let Some(open) = st.open.as_ref() else {
                continue;
            };

            let now = Instant::now();
            let healthy = st.healthy();
            let selected: Vec<TableMapping> = match reason {
                Reason::LocalChange => {
                    // An application asked for a sync (a row in
                    // es_sync_requests, or a conflict choice): every table,
                    // backing off or not.
                    let requested = open.edge.db.wants_sync().await.unwrap_or(false);
                    // Tables backing off are not cut short by a commit: their
                    // retry timer (or the central coming back) decides.
                    if !requested && !has_pending(&shared, &open.edge, &healthy).await {
                        continue;
                    }
                    tokio::time::sleep(COALESCE).await;
                    if requested {
                        open.edge.tables.clone()
                    } else {
                        healthy.clone()
                    }
                }
                Reason::CentralBack => {
                    st.tables.clear();
                    open.edge.tables.clone()
                }
                Reason::CentralChange => {
                    // A burst of commits becomes one pull.
                    tokio::time::sleep(COALESCE).await;
                    let wanted = central_wake.take();
                    // Tables backing off wait for their retry timer.
                    healthy
                        .iter()
                        .filter(|t| t.direction.pulls() && wanted.includes(&t.edge))
                        .cloned()
                        .collect()
                }
                Reason::Due => open
                    .edge
                    .tables
                    .iter()
                    .filter(|t| st.due_at(&t.edge) <= now)
                    .cloned()
                    .collect(),
            };
            if selected.is_empty() {
                if reason == Reason::Due {
                    // Nothing was due after all: never spin on a past time.
                    st.next_interval = st.next_interval.max(now + st.interval);
                }
                continue;
            }
            let all_healthy = healthy
                .iter()
                .all(|h| selected.iter().any(|t| t.edge == h.edge));
            let edge = Edge {
                config: open.edge.config.clone(),
                db: open.edge.db.clone(),
                tables: selected,
            };

            gate.clear_kinds(&node);
            progress.start();
            let started = Instant::now();
            let stats = progress::observe(lines.clone(), sync::sync_edge(&engine, &edge)).await;
            // `sync.retention`, at most hourly (a no-op when unset).
            crate::engine::retention::purge_if_due(&engine).await;
            let took = started.elapsed();
            progress.finish();

            let outcomes = outcomes(&engine, &gate, &node, &stats);
            clear_interruptions(&edge, &stats).await;
            shared.metrics.record_sync(&node, &outcomes, took);
            has_pending(&shared, &edge, &edge.tables).await;

            let now = Instant::now();
            if all_healthy {
                st.next_interval = now + st.interval;
            }
            debug!(
                node,
                ?reason,
                tables = outcomes.len(),
                failed = outcomes.iter().filter(|t| t.error.is_some()).count(),
                ?took,
                "edge synced"
            );
            let mut reopen = false;
            for t in &outcomes {
                match &t.error {
                    _ if t.interrupted => {}
                    None => {
                        if let Some(b) = st.tables.remove(&t.table) {
                            info!(
                                node,
                                table = %t.table,
                                failures = b.failures,
                                "table syncs again"
                            );
                        }
                    }
                    Some((kind, _)) => {
                        let b = st.backoff(st.tables.get(&t.table).copied(), now);
                        st.tables.insert(t.table.clone(), b);
                        warn!(
                            node,
                            table = %t.table,
                            kind = %kind,
                            failures = b.failures,
                            retry_in = ?(b.retry_at - now),
                            "table sync failed; backing off"
                        );
                        // A failure on the edge's side (not at the central)
                        // may mean the file was replaced or is damaged.
                        reopen |= kind == "edge";
                    }
                }
            }
            if reopen {
                st.open = None;
            }
        }
    }
}

/// Whether any pushing table among `tables` of `edge` has local changes not
/// yet pushed; updates the pending gauges on the way. An error counts as
/// "yes": the sync will report it properly.
async fn has_pending(shared: &Shared, edge: &Edge, tables: &[TableMapping]) -> bool {
    let mut any = false;
    for t in tables.iter().filter(|t| t.direction.pushes()) {
        match edge.db.status(t).await {
            Ok(s) => {
                shared
                    .metrics
                    .set_pending(&edge.config.node, &t.edge, s.pending);
                any |= s.pending > 0;
            }
            Err(_) => any = true,
        }
    }
    any
}

/// Whether a table's sync was cut short by the gate closing.
fn interrupted(stats: &TableStats) -> bool {
    stats
        .error
        .as_deref()
        .is_some_and(|e| e.contains(INTERRUPTED))
}

/// Turn the engine's per-table stats into metric outcomes, with error
/// kinds from the gate (`edge` when the failure was on the edge side).
fn outcomes(engine: &Engine, gate: &Gate, node: &str, stats: &[TableStats]) -> Vec<TableOutcome> {
    stats
        .iter()
        .map(|s| {
            let strategy = engine
                .config
                .table(&s.table)
                .map(|t| engine.config.conflict_for(t).to_string())
                .unwrap_or_default();
            let error = match &s.error {
                Some(_) if interrupted(s) => None,
                Some(e) => {
                    // A table paused by a schema change on the central
                    // (`engine::evolve`) is no fault of the edge file.
                    let local = if e.starts_with("schema:") {
                        "schema"
                    } else {
                        "edge"
                    };
                    let kind = gate
                        .kind(node, &s.table)
                        .map_or(local, |k| k.as_str())
                        .to_string();
                    Some((kind, e.clone()))
                }
                None => None,
            };
            TableOutcome {
                table: s.table.clone(),
                strategy,
                pushed: s.pushed as u64,
                push_batches: s.push_batches as u64,
                conflicts: s.conflicts as u64,
                pulled: s.pulled as u64,
                pull_pages: s.pull_pages as u64,
                interrupted: interrupted(s),
                error,
            }
        })
        .collect()
}

/// `sync_edge` noted the interruption as the table's last error; a stop is
/// not a failure, so clear it (otherwise `status` would flag every table
/// cut short by a restart).
async fn clear_interruptions(edge: &Edge, stats: &[TableStats]) {
    for s in stats.iter().filter(|s| interrupted(s)) {
        if let Err(e) = edge.db.note_error(&s.table, None).await {
            warn!(node = %edge.config.node, table = %s.table, "cannot clear the interruption note: {e}");
        }
    }
}
