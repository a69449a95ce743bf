//! Progress of long pulls (initial loads above all), for a person at a
//! terminal or for the log.
//!
//! The engine does not know who is watching: [`pull_table`] reports each
//! pass to a [`Pull`], which hands the reports to the [`Observer`] the
//! command installed around its work with [`observe`] (a task-local, so
//! nothing is threaded through the engine's signatures and a library user
//! or test that installs none pays nothing):
//!
//! - `sync` on a terminal: [`bars::Bars`], indicatif bars with rows, rows/s
//!   and, when the central estimates the table's size, an ETA;
//! - `sync` with stderr not a terminal (CI, cron, systemd) and the daemon:
//!   [`lines::Lines`], an `info` log line per table every
//!   [`interval()`] (target `edgesync::progress`, fields `node`, `table`,
//!   `rows`, `rows_per_sec`, `total`).
//!
//! The total is the central's *estimate* ([`Central::estimate_rows`]:
//! PostgreSQL's planner statistics; other centrals give none, and then
//! there is no ETA). It is never used for anything but the display.
//!
//! [`pull_table`]: super::sync::pull_table

pub mod bars;
pub mod format;
pub mod lines;

use std::future::Future;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use edgesync_core::{Central, TableMapping};

/// How often [`lines::Lines`] logs a table's progress, unless
/// `EDGESYNC_PROGRESS_INTERVAL` says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// The environment variable overriding [`DEFAULT_INTERVAL`] (`500ms`,
/// `10s`, ...; `0s` logs every page).
pub const INTERVAL_ENV: &str = "EDGESYNC_PROGRESS_INTERVAL";

/// What a pull pass is, when it begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    /// Node id.
    pub node: String,
    /// Edge table.
    pub table: String,
    /// The edge had nothing of the table yet (no resume token).
    pub initial: bool,
    /// The central's row estimate (initial loads only).
    pub total: Option<u64>,
}

/// Someone watching pulls. Calls for one pass come in order from one task;
/// several passes (edges) may be under way at once, told apart by `id`.
pub trait Observer: Send + Sync {
    /// A pass began.
    fn begin(&self, id: u64, pass: Begin);
    /// `rows` more rows were written to the edge.
    fn advance(&self, id: u64, rows: u64);
    /// The pass ended (completed or failed).
    fn end(&self, id: u64);
}

tokio::task_local! {
    static OBSERVER: Arc<dyn Observer>;
}

/// Run `work` with `observer` watching every pull it makes.
pub async fn observe<F: Future>(observer: Arc<dyn Observer>, work: F) -> F::Output {
    OBSERVER.scope(observer, work).await
}

/// The observer for a one-shot command: bars on a terminal, log lines
/// otherwise.
pub fn for_stderr() -> Arc<dyn Observer> {
    if std::io::stderr().is_terminal() {
        Arc::new(bars::Bars::new())
    } else {
        Arc::new(lines::Lines::new(interval()))
    }
}

/// [`DEFAULT_INTERVAL`], or what [`INTERVAL_ENV`] says (an unreadable value
/// is reported once and ignored).
pub fn interval() -> Duration {
    match std::env::var(INTERVAL_ENV) {
        Ok(v) => humantime::parse_duration(v.trim()).unwrap_or_else(|e| {
            tracing::warn!("{INTERVAL_ENV}={v:?} is not a duration ({e}); using 5s");
            DEFAULT_INTERVAL
        }),
        Err(_) => DEFAULT_INTERVAL,
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One pull pass as the engine reports it; ends the pass when dropped, so
/// a pass that fails half-way is closed too.
pub struct Pull {
    watched: Option<(Arc<dyn Observer>, u64)>,
}

impl Pull {
    /// A pass of `table` for `node` begins; `initial` when the edge has no
    /// resume token. Asks the central for a row estimate only for initial
    /// loads and only when someone is watching.
    pub async fn start(
        central: &dyn Central,
        node: &str,
        table: &TableMapping,
        initial: bool,
    ) -> Pull {
        let Ok(observer) = OBSERVER.try_with(Arc::clone) else {
            return Pull { watched: None };
        };
        let total = if initial {
            central.estimate_rows(table).await.unwrap_or_else(|e| {
                tracing::debug!(table = %table.edge, "no row estimate: {e}");
                None
            })
        } else {
            None
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        observer.begin(
            id,
            Begin {
                node: node.to_string(),
                table: table.edge.clone(),
                initial,
                total,
            },
        );
        Pull {
            watched: Some((observer, id)),
        }
    }

    /// A page of `rows` rows was written to the edge.
    pub fn advance(&self, rows: usize) {
        if let Some((o, id)) = &self.watched {
            o.advance(*id, rows as u64);
        }
    }
}

impl Drop for Pull {
    fn drop(&mut self) {
        if let Some((o, id)) = self.watched.take() {
            o.end(id);
        }
    }
}
