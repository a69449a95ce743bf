//! Whether every edge synced recently: the state behind `/healthz`, the lag
//! gauges and systemd's `STATUS=` line.
//!
//! Tables are scheduled on their own (a failing table backs off while the
//! others keep syncing), so health is kept per table: an edge is healthy
//! when every one of its tables has synced successfully within `window`. A
//! table that has never succeeded is given the window from when the daemon
//! started tracking it, unless an attempt has already failed (or its edge
//! file did not open): a gateway that cannot reach its edge file or its
//! central should show up at once, not a minute later.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::TableOutcome;

/// Health of every tracked edge.
#[derive(Debug)]
pub struct Health {
    window: Duration,
    pub(super) central_up: bool,
    edges: BTreeMap<String, EdgeHealth>,
}

#[derive(Debug)]
struct EdgeHealth {
    last_attempt: Option<SystemTime>,
    /// Why the edge file did not open, until a sync runs again.
    open_error: Option<String>,
    tables: BTreeMap<String, TableHealth>,
}

#[derive(Debug)]
struct TableHealth {
    since: SystemTime,
    last_success: Option<SystemTime>,
    last_error: Option<String>,
}

impl EdgeHealth {
    fn first_error(&self) -> Option<String> {
        self.open_error.clone().or_else(|| {
            self.tables
                .iter()
                .find_map(|(t, h)| h.last_error.as_ref().map(|e| format!("{t}: {e}")))
        })
    }

    fn failing(&self) -> bool {
        self.first_error().is_some()
    }

    fn stale(&self, now: SystemTime, window: Duration) -> bool {
        if self.tables.is_empty() {
            return self.open_error.is_some();
        }
        self.tables.values().any(|t| match t.last_success {
            Some(at) => age(now, at) > window,
            None => {
                t.last_error.is_some() || self.open_error.is_some() || age(now, t.since) > window
            }
        })
    }

    /// The oldest of the tables' last successes (`None` if one never
    /// succeeded).
    fn last_success(&self) -> Option<SystemTime> {
        self.tables
            .values()
            .map(|t| t.last_success)
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .min()
    }
}

/// One edge that has not synced within the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// Node id.
    pub node: String,
    /// Its last successful sync, if any.
    pub last_success: Option<SystemTime>,
    /// Its last error, if the last attempt failed.
    pub last_error: Option<String>,
}

/// Counts for a one-line status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Edges tracked.
    pub edges: usize,
    /// Edges whose last attempt succeeded.
    pub ok: usize,
    /// Edges whose last attempt failed.
    pub failing: Vec<String>,
    /// When the last sync attempt of any edge ended.
    pub last_sync: Option<SystemTime>,
    /// Whether the central answers.
    pub central_up: bool,
}

fn age(now: SystemTime, t: SystemTime) -> Duration {
    now.duration_since(t).unwrap_or_default()
}

impl Health {
    /// Nothing tracked yet.
    pub fn new(window: Duration) -> Health {
        Health {
            window,
            central_up: true,
            edges: BTreeMap::new(),
        }
    }

    /// Track exactly `edges` (node, tables) from now on; returns the
    /// (node, table) pairs and the nodes no longer tracked.
    pub fn track(
        &mut self,
        edges: &[(String, Vec<String>)],
        window: Duration,
        now: SystemTime,
    ) -> (Vec<(String, String)>, Vec<String>) {
        self.window = window;
        let mut gone_tables = Vec::new();
        let mut gone_nodes = Vec::new();
        self.edges.retain(|node, e| {
            match edges.iter().find(|(n, _)| n == node) {
                Some((_, tables)) => e.tables.retain(|t, _| {
                    let keep = tables.contains(t);
                    if !keep {
                        gone_tables.push((node.clone(), t.clone()));
                    }
                    keep
                }),
                None => {
                    gone_tables.extend(e.tables.keys().map(|t| (node.clone(), t.clone())));
                    gone_nodes.push(node.clone());
                    return false;
                }
            }
            true
        });
        for (node, tables) in edges {
            let e = self
                .edges
                .entry(node.clone())
                .or_insert_with(|| EdgeHealth {
                    last_attempt: None,
                    open_error: None,
                    tables: BTreeMap::new(),
                });
            for t in tables {
                e.tables.entry(t.clone()).or_insert(TableHealth {
                    since: now,
                    last_success: None,
                    last_error: None,
                });
            }
        }
        (gone_tables, gone_nodes)
    }

    /// Record one sync of (some of) `node`'s tables; tables cut short by a
    /// stop are left as they were. Returns whether the edge is now without
    /// errors.
    pub fn record_sync(&mut self, node: &str, tables: &[TableOutcome], now: SystemTime) -> bool {
        let Some(e) = self.edges.get_mut(node) else {
            return false;
        };
        e.last_attempt = Some(now);
        e.open_error = None;
        for t in tables.iter().filter(|t| !t.interrupted) {
            if let Some(th) = e.tables.get_mut(&t.table) {
                match &t.error {
                    None => {
                        th.last_success = Some(now);
                        th.last_error = None;
                    }
                    Some((_, message)) => th.last_error = Some(message.clone()),
                }
            }
        }
        !e.failing()
    }

    /// Record that the edge file did not open.
    pub fn record_failure(&mut self, node: &str, error: &str, now: SystemTime) {
        if let Some(e) = self.edges.get_mut(node) {
            e.last_attempt = Some(now);
            e.open_error = Some(error.to_string());
        }
    }

    /// Edges with a table that has not synced within the window.
    pub fn stale(&self, now: SystemTime) -> Vec<Stale> {
        self.edges
            .iter()
            .filter(|(_, e)| e.stale(now, self.window))
            .map(|(node, e)| Stale {
                node: node.clone(),
                last_success: e.last_success(),
                last_error: e.first_error(),
            })
            .collect()
    }

    /// `Ok(summary)` when no edge is stale, else `Err(one line per stale
    /// edge)`.
    pub fn verdict(&self, now: SystemTime) -> Result<String, String> {
        let window = humantime::format_duration(self.window);
        let stale = self.stale(now);
        if stale.is_empty() {
            return Ok(format!(
                "ok: {} edge(s) synced within {window}\n",
                self.edges.len()
            ));
        }
        let mut out = format!(
            "unhealthy: {} of {} edge(s) have not synced within {window}\n",
            stale.len(),
            self.edges.len()
        );
        for s in &stale {
            let last = match s.last_success {
                Some(t) => format!(
                    "{} ago",
                    humantime::format_duration(Duration::from_secs(age(now, t).as_secs()))
                ),
                None => "never".to_string(),
            };
            let _ = write!(out, "{}: last success {last}", s.node);
            if let Some(e) = &s.last_error {
                let _ = write!(out, "; last error: {e}");
            }
            out.push('\n');
        }
        Err(out)
    }

    /// Seconds since each table's last success (or since it was tracked).
    pub fn lags(&self, now: SystemTime) -> BTreeMap<(String, String), f64> {
        let mut out = BTreeMap::new();
        for (node, e) in &self.edges {
            for (table, t) in &e.tables {
                let from = t.last_success.unwrap_or(t.since);
                out.insert((node.clone(), table.clone()), age(now, from).as_secs_f64());
            }
        }
        out
    }

    /// Counts for a status line.
    pub fn summary(&self) -> Summary {
        Summary {
            edges: self.edges.len(),
            ok: self
                .edges
                .values()
                .filter(|e| e.last_attempt.is_some() && !e.failing())
                .count(),
            failing: self
                .edges
                .iter()
                .filter(|(_, e)| e.failing())
                .map(|(n, _)| n.clone())
                .collect(),
            last_sync: self.edges.values().filter_map(|e| e.last_attempt).max(),
            central_up: self.central_up,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(table: &str) -> TableOutcome {
        TableOutcome {
            table: table.into(),
            ..TableOutcome::default()
        }
    }

    fn failed(table: &str) -> TableOutcome {
        TableOutcome {
            table: table.into(),
            error: Some(("edge".into(), "database is locked".into())),
            ..TableOutcome::default()
        }
    }

    #[test]
    fn an_edge_is_stale_after_the_window_or_when_it_failed_before_any_success() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut h = Health::new(Duration::from_secs(60));
        let tables = vec!["items".to_string()];
        h.track(
            &[
                ("a".into(), tables.clone()),
                ("b".into(), tables.clone()),
                ("c".into(), tables.clone()),
            ],
            Duration::from_secs(60),
            t0,
        );
        assert!(h.verdict(at(1)).is_ok(), "nothing attempted yet");
        h.record_sync("a", &[ok("items")], at(2));
        h.record_sync("b", &[ok("items")], at(2));
        h.record_failure("c", "locked", at(2));
        let err = h.verdict(at(3)).expect_err("c failed");
        assert!(
            err.contains("c: last success never; last error: locked"),
            "{err}"
        );
        assert!(!err.contains("a:") && !err.contains("b:"), "{err}");

        // A failure after a success within the window is tolerated ...
        h.record_sync("b", &[failed("items")], at(30));
        let stale: Vec<String> = h.stale(at(40)).into_iter().map(|s| s.node).collect();
        assert_eq!(stale, ["c"]);
        // ... until the window has passed.
        h.record_sync("a", &[ok("items")], at(70));
        let stale: Vec<String> = h.stale(at(70)).into_iter().map(|s| s.node).collect();
        assert_eq!(stale, ["b", "c"]);
        assert_eq!(
            h.lags(at(70))[&("b".to_string(), "items".to_string())],
            68.0
        );

        let s = h.summary();
        assert_eq!((s.edges, s.ok), (3, 1));
        assert_eq!(s.failing, ["b", "c"]);
        assert_eq!(s.last_sync, Some(at(70)));

        // One table failing past the window makes its edge stale, however
        // well the others sync.
        h.record_sync("a", &[ok("items")], at(100));
        h.track(
            &[
                ("a".into(), vec!["items".into(), "notes".into()]),
                ("b".into(), tables.clone()),
                ("c".into(), tables.clone()),
            ],
            Duration::from_secs(60),
            at(100),
        );
        h.record_sync("a", &[ok("items"), failed("notes")], at(101));
        h.record_sync("a", &[ok("items")], at(170));
        let err = h.verdict(at(170)).expect_err("notes never synced");
        assert!(
            err.contains("a: last success never; last error: notes: database is locked"),
            "{err}"
        );
        let tables = vec!["items".to_string()];

        // Untracked edges drop out.
        let (gone, nodes) = h.track(&[("a".into(), tables)], Duration::from_secs(60), at(171));
        assert_eq!(nodes, ["b", "c"]);
        assert_eq!(gone.len(), 3, "{gone:?}");
        assert!(h.verdict(at(172)).is_ok());
    }
}
