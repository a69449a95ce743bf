//! Progress as log lines, for when nobody watches a terminal: one `info`
//! event per table every interval while a pull runs, and one when it ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::format::{line, Snapshot};
use super::{Begin, Observer};

/// See the module documentation.
pub struct Lines {
    every: Duration,
    passes: Mutex<HashMap<u64, Pass>>,
}

struct Pass {
    begin: Begin,
    rows: u64,
    pages: u64,
    started: Instant,
    last_line: Instant,
    /// Whether any line was logged for it (then its end is logged too).
    shown: bool,
}

impl Lines {
    /// Log each table's progress every `every`.
    pub fn new(every: Duration) -> Lines {
        Lines {
            every,
            passes: Mutex::new(HashMap::new()),
        }
    }

    fn passes(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pass>> {
        self.passes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn log(p: &Pass, done: bool) {
    let snap = Snapshot {
        node: &p.begin.node,
        table: &p.begin.table,
        initial: p.begin.initial,
        rows: p.rows,
        elapsed: p.started.elapsed(),
        total: p.begin.total,
        done,
    };
    tracing::info!(
        target: "edgesync::progress",
        node = %p.begin.node,
        table = %p.begin.table,
        initial = p.begin.initial,
        rows = p.rows,
        rows_per_sec = snap.rate(),
        total = p.begin.total,
        done,
        "{}",
        line(&snap)
    );
}

impl Observer for Lines {
    fn begin(&self, id: u64, begin: Begin) {
        let now = Instant::now();
        self.passes().insert(
            id,
            Pass {
                begin,
                rows: 0,
                pages: 0,
                started: now,
                last_line: now,
                shown: false,
            },
        );
    }

    fn advance(&self, id: u64, rows: u64) {
        let mut passes = self.passes();
        let Some(p) = passes.get_mut(&id) else {
            return;
        };
        p.rows += rows;
        p.pages += 1;
        // Incremental pulls are usually one short page: only one of several
        // pages that runs for a whole interval is worth a line.
        let long = p.begin.initial || (p.pages > 1 && p.started.elapsed() >= self.every);
        if long && p.last_line.elapsed() >= self.every {
            p.last_line = Instant::now();
            p.shown = true;
            log(p, false);
        }
    }

    fn end(&self, id: u64) {
        if let Some(p) = self.passes().remove(&id) {
            if p.shown || p.begin.initial {
                log(&p, true);
            }
        }
    }
}
