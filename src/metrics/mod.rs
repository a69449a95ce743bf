//! What `edgesync run` tells a monitoring system: Prometheus metrics labelled
//! by node and table, and a `/healthz` verdict.
//!
//! The scheduler records what each sync moved ([`Metrics::record_sync`]) and
//! the central wrapper records every batch ([`Metrics::record_batch`]);
//! nothing here touches a database, so a scrape never waits behind a sync or
//! a locked edge file. Values that depend on the clock (lag) are computed
//! when scraped.
//!
//! Names follow Prometheus conventions (`_total` counters, `_seconds`
//! units); all carry the `edgesync_` prefix:
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `rows_pushed_total` | node, table | local changes the central accepted or answered |
//! | `rows_pulled_total` | node, table | central changes written to the edge |
//! | `push_batches_total`, `pull_pages_total` | node, table | central transactions / pages |
//! | `conflicts_total` | node, table, strategy | conflicts the central resolved |
//! | `sync_errors_total` | node, table, kind | failed table syncs, by error kind |
//! | `edge_open_errors_total` | node, kind | failures to open an edge file |
//! | `pending_changes` | node, table | local changes not yet pushed |
//! | `lag_seconds` | node, table | time since the last successful sync |
//! | `last_success_timestamp_seconds` | node, table | Unix time of that sync |
//! | `sync_duration_seconds` | node | one push-then-pull cycle of an edge |
//! | `batch_duration_seconds` | node, table, op | one central push or pull call |
//! | `edge_up` | node | 1 while no table of the edge is failing |
//! | `central_up` | | 0 while the central does not answer |
//! | `config_reloads_total` | result | SIGHUP reloads, `ok` or `failed` |

mod health;
mod server;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

pub use health::{Health, Stale, Summary};
pub use server::{bind, serve, Endpoint};

/// `node`, `table`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    node: String,
    table: String,
}

/// `node`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

/// `node`, `table`, `strategy`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConflictLabels {
    node: String,
    table: String,
    strategy: String,
}

/// `node`, `table`, `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    node: String,
    table: String,
    kind: String,
}

/// `node`, `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpenErrorLabels {
    node: String,
    kind: String,
}

/// `node`, `table`, `op`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BatchLabels {
    node: String,
    table: String,
    op: String,
}

/// `result`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// What one table's sync did, as the scheduler saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableOutcome {
    /// Edge table.
    pub table: String,
    /// The table's conflict policy (`server-wins`, ...).
    pub strategy: String,
    /// Changes pushed.
    pub pushed: u64,
    /// Push batches.
    pub push_batches: u64,
    /// Conflicts.
    pub conflicts: u64,
    /// Changes pulled.
    pub pulled: u64,
    /// Pull pages.
    pub pull_pages: u64,
    /// Cut short by a stop or reload between batches: neither a success
    /// nor a failure.
    pub interrupted: bool,
    /// `(kind, message)` when the table failed.
    pub error: Option<(String, String)>,
}

/// All metrics of the process, and the health state behind `/healthz` and
/// systemd's `STATUS=`.
pub struct Metrics {
    registry: Registry,
    rows_pushed: Family<TableLabels, Counter>,
    rows_pulled: Family<TableLabels, Counter>,
    push_batches: Family<TableLabels, Counter>,
    pull_pages: Family<TableLabels, Counter>,
    conflicts: Family<ConflictLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    open_errors: Family<OpenErrorLabels, Counter>,
    pending: Family<TableLabels, Gauge>,
    lag: Family<TableLabels, FloatGauge>,
    last_success: Family<TableLabels, FloatGauge>,
    sync_duration: Family<NodeLabels, Histogram>,
    batch_duration: Family<BatchLabels, Histogram>,
    edge_up: Family<NodeLabels, Gauge>,
    central_up: Gauge,
    reloads: Family<ResultLabels, Counter>,
    health: Mutex<Health>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn duration_buckets() -> Histogram {
    // 5 ms to ~5.5 min.
    Histogram::new(exponential_buckets(0.005, 2.0, 17))
}

impl Metrics {
    /// Every metric registered, none with a series yet.
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("edgesync");
        let m = Metrics {
            rows_pushed: Family::default(),
            rows_pulled: Family::default(),
            push_batches: Family::default(),
            pull_pages: Family::default(),
            conflicts: Family::default(),
            errors: Family::default(),
            open_errors: Family::default(),
            pending: Family::default(),
            lag: Family::default(),
            last_success: Family::default(),
            sync_duration: Family::new_with_constructor(duration_buckets),
            batch_duration: Family::new_with_constructor(duration_buckets),
            edge_up: Family::default(),
            central_up: Gauge::default(),
            reloads: Family::default(),
            health: Mutex::new(Health::new(crate::config::MIN_HEALTHZ_WINDOW)),
            registry: Registry::default(),
        };
        let rows = "Local changes the central accepted or answered";
        r.register("rows_pushed", rows, m.rows_pushed.clone());
        r.register(
            "rows_pulled",
            "Central changes written to the edge",
            m.rows_pulled.clone(),
        );
        r.register(
            "push_batches",
            "Push batches (one central transaction each)",
            m.push_batches.clone(),
        );
        r.register(
            "pull_pages",
            "Pull pages (one edge transaction each)",
            m.pull_pages.clone(),
        );
        r.register(
            "conflicts",
            "Conflicts the central resolved, by the table's strategy",
            m.conflicts.clone(),
        );
        r.register(
            "sync_errors",
            "Failed table syncs, by error kind (connection, auth, schema, constraint, value, \
             retryable, corrupt, database, internal; edge: the edge file failed)",
            m.errors.clone(),
        );
        r.register(
            "edge_open_errors",
            "Failures to open or resolve an edge file",
            m.open_errors.clone(),
        );
        r.register(
            "pending_changes",
            "Local changes not yet acknowledged by the central",
            m.pending.clone(),
        );
        r.register_with_unit(
            "lag",
            "Time since the last successful sync of the table (since the daemon started \
             tracking it, if never)",
            Unit::Seconds,
            m.lag.clone(),
        );
        r.register_with_unit(
            "last_success_timestamp",
            "Unix time of the last successful sync of the table",
            Unit::Seconds,
            m.last_success.clone(),
        );
        r.register_with_unit(
            "sync_duration",
            "Duration of one push-then-pull cycle of an edge",
            Unit::Seconds,
            m.sync_duration.clone(),
        );
        r.register_with_unit(
            "batch_duration",
            "Duration of one central push (a batch) or pull (a page) call",
            Unit::Seconds,
            m.batch_duration.clone(),
        );
        r.register(
            "edge_up",
            "1 while the edge file opens and no table of it is failing, else 0",
            m.edge_up.clone(),
        );
        r.register(
            "central_up",
            "0 while the central database does not answer, else 1",
            m.central_up.clone(),
        );
        r.register(
            "config_reloads",
            "Config reloads (SIGHUP), by result",
            m.reloads.clone(),
        );
        m.central_up.set(1);
        Metrics { registry: r, ..m }
    }

    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Track exactly these edges and tables (at startup and after a reload):
    /// new ones start their health window now, and the per-table gauges of
    /// edges and tables no longer configured are removed.
    pub fn track(&self, edges: &[(String, Vec<String>)], window: Duration) {
        let (tables, nodes) = self.health().track(edges, window, SystemTime::now());
        for (node, table) in tables {
            let l = TableLabels { node, table };
            self.pending.remove(&l);
            self.lag.remove(&l);
            self.last_success.remove(&l);
        }
        for node in nodes {
            self.edge_up.remove(&NodeLabels { node });
        }
    }

    /// Record one sync of (some of) `node`'s tables, which took `took`.
    pub fn record_sync(&self, node: &str, tables: &[TableOutcome], took: Duration) {
        let now = SystemTime::now();
        for t in tables {
            let l = TableLabels {
                node: node.to_string(),
                table: t.table.clone(),
            };
            self.rows_pushed.get_or_create(&l).inc_by(t.pushed);
            self.rows_pulled.get_or_create(&l).inc_by(t.pulled);
            self.push_batches.get_or_create(&l).inc_by(t.push_batches);
            self.pull_pages.get_or_create(&l).inc_by(t.pull_pages);
            let cl = ConflictLabels {
                node: node.to_string(),
                table: t.table.clone(),
                strategy: t.strategy.clone(),
            };
            self.conflicts.get_or_create(&cl).inc_by(t.conflicts);
            match &t.error {
                _ if t.interrupted => {}
                Some((kind, _)) => {
                    self.errors
                        .get_or_create(&ErrorLabels {
                            node: node.to_string(),
                            table: t.table.clone(),
                            kind: kind.clone(),
                        })
                        .inc();
                }
                None => {
                    self.last_success.get_or_create(&l).set(unix_seconds(now));
                    self.lag.get_or_create(&l).set(0.0);
                }
            }
        }
        self.sync_duration
            .get_or_create(&NodeLabels {
                node: node.to_string(),
            })
            .observe(took.as_secs_f64());
        let ok = self.health().record_sync(node, tables, now);
        self.edge_up
            .get_or_create(&NodeLabels {
                node: node.to_string(),
            })
            .set(i64::from(ok));
    }

    /// Record a failure to open (or resolve the tables of) an edge file.
    pub fn record_open_failure(&self, node: &str, kind: &str, error: &str) {
        self.open_errors
            .get_or_create(&OpenErrorLabels {
                node: node.to_string(),
                kind: kind.to_string(),
            })
            .inc();
        self.edge_up
            .get_or_create(&NodeLabels {
                node: node.to_string(),
            })
            .set(0);
        self.health().record_failure(node, error, SystemTime::now());
    }

    /// Note why `node` cannot sync at all right now (the daemon could not
    /// open its config yet), for `/healthz`; counts nothing.
    pub fn mark_unavailable(&self, node: &str, why: &str) {
        self.health().record_failure(node, why, SystemTime::now());
    }

    /// Record one central call (`op` = `push` or `pull`).
    pub fn record_batch(&self, node: &str, table: &str, op: &str, took: Duration) {
        self.batch_duration
            .get_or_create(&BatchLabels {
                node: node.to_string(),
                table: table.to_string(),
                op: op.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Set a table's pending local changes.
    pub fn set_pending(&self, node: &str, table: &str, pending: i64) {
        self.pending
            .get_or_create(&TableLabels {
                node: node.to_string(),
                table: table.to_string(),
            })
            .set(pending);
    }

    /// Whether the central answers.
    pub fn set_central_up(&self, up: bool) {
        self.central_up.set(i64::from(up));
        self.health().central_up = up;
    }

    /// Count a config reload.
    pub fn record_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }

    /// The Prometheus/OpenMetrics text of every metric, lag brought up to
    /// date first.
    pub fn encode(&self) -> String {
        let now = SystemTime::now();
        let lags: BTreeMap<(String, String), f64> = self.health().lags(now);
        for ((node, table), lag) in lags {
            self.lag
                .get_or_create(&TableLabels { node, table })
                .set(lag);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out = "# encoding failed\n".to_string();
        }
        out
    }

    /// The `/healthz` verdict: `Ok` with a one-line summary, or `Err` with
    /// the stale edges, one per line.
    pub fn healthz(&self) -> Result<String, String> {
        self.health().verdict(SystemTime::now())
    }

    /// Counts for systemd's `STATUS=` line.
    pub fn summary(&self) -> Summary {
        self.health().summary()
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(table: &str, pushed: u64, error: Option<&str>) -> TableOutcome {
        TableOutcome {
            table: table.into(),
            strategy: "server-wins".into(),
            pushed,
            push_batches: u64::from(pushed > 0),
            conflicts: 1,
            pulled: 2,
            pull_pages: 1,
            interrupted: false,
            error: error.map(|e| ("connection".to_string(), e.to_string())),
        }
    }

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix}:\n{text}"))
    }

    #[test]
    fn counters_and_gauges_carry_node_and_table() {
        let m = Metrics::new();
        m.track(
            &[("a".into(), vec!["items".into(), "notes".into()])],
            Duration::from_secs(60),
        );
        m.record_sync(
            "a",
            &[outcome("items", 7, None), outcome("notes", 0, Some("down"))],
            Duration::from_millis(30),
        );
        m.record_sync("a", &[outcome("items", 3, None)], Duration::from_millis(10));
        m.set_pending("a", "items", 4);
        m.record_batch("a", "items", "push", Duration::from_millis(3));
        let text = m.encode();
        let v = |prefix: &str| {
            line(&text, prefix)
                .rsplit(' ')
                .next()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(
            v("edgesync_rows_pushed_total{node=\"a\",table=\"items\"}"),
            "10"
        );
        assert_eq!(
            v("edgesync_conflicts_total{node=\"a\",table=\"items\",strategy=\"server-wins\"}"),
            "2"
        );
        assert_eq!(
            v("edgesync_sync_errors_total{node=\"a\",table=\"notes\",kind=\"connection\"}"),
            "1"
        );
        assert_eq!(
            v("edgesync_pending_changes{node=\"a\",table=\"items\"}"),
            "4"
        );
        // notes failed, and no later sync of it succeeded.
        assert_eq!(v("edgesync_edge_up{node=\"a\"}"), "0");
        assert_eq!(v("edgesync_sync_duration_seconds_count{node=\"a\"}"), "2");
        line(
            &text,
            "edgesync_batch_duration_seconds_count{node=\"a\",table=\"items\",op=\"push\"}",
        );
        line(
            &text,
            "edgesync_last_success_timestamp_seconds{node=\"a\",table=\"items\"}",
        );
        line(&text, "edgesync_lag_seconds{node=\"a\",table=\"notes\"}");
        assert!(
            !text.contains("last_success_timestamp_seconds{node=\"a\",table=\"notes\"}"),
            "notes never succeeded:\n{text}"
        );

        // A reload that drops the table drops its gauges.
        m.track(
            &[("a".into(), vec!["items".into()])],
            Duration::from_secs(60),
        );
        assert!(!m
            .encode()
            .contains("lag_seconds{node=\"a\",table=\"notes\"}"));
    }
}
