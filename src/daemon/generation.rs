//! A [`Generation`]: one loaded config, opened and running.
//!
//! Opening connects to the central and resolves the central tables, which
//! is what a config must get right before it may replace a running one. The
//! edge files are *not* opened here: each edge's scheduler opens its own,
//! so one missing, locked or corrupt file neither blocks startup nor fails
//! a reload, and is retried with backoff while the others sync.
//!
//! A SIGHUP builds a new generation next to the running one and swaps only
//! when it opened; stopping the old one closes its [`Gate`], so its syncs
//! end at the next batch boundary.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use edgesync_core::ErrorKind;
use edgesync_sqlite::EdgeDb;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::feed::{self, CentralWake};
use super::gate::Gate;
use super::scheduler::EdgeTask;
use super::shared::Shared;
use crate::config::{EdgeConfig, LoadedConfig};
use crate::engine::{mapping, sync, Edge, Engine, Selection};

/// Longest wait between probes of a central that does not answer: how soon
/// after the central is back every edge resumes, however long its own
/// backoff had grown. (Jitter spreads many gateways' probes.)
const PROBE_MAX: Duration = Duration::from_secs(5);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// See the module documentation.
pub(crate) struct Generation {
    engine: Arc<Engine>,
    gate: Arc<Gate>,
    stop: watch::Sender<bool>,
    tasks: Vec<(String, JoinHandle<()>)>,
    prober: Option<JoinHandle<()>>,
    /// Reads the central's change feed, when it has one.
    feed: Option<JoinHandle<()>>,
}

/// The [`ErrorKind`] in an error's chain, if an adapter produced it.
pub(crate) fn error_kind(e: &anyhow::Error) -> Option<ErrorKind> {
    e.chain()
        .find_map(|c| c.downcast_ref::<edgesync_core::Error>())
        .map(|e| e.kind())
}

/// Whether waiting may fix `e` (the central is unreachable or busy), as
/// opposed to a config or schema problem a person must fix.
pub(crate) fn is_transient(e: &anyhow::Error) -> bool {
    error_kind(e).is_some_and(ErrorKind::is_retryable)
}

impl Generation {
    /// Connect to the central and resolve the tables of `loaded` (already
    /// validated). Nothing runs until [`Generation::start`].
    pub(crate) async fn open(loaded: &LoadedConfig, shared: &Arc<Shared>) -> Result<Generation> {
        let mut config = loaded.config.clone();
        // The engine opens no edge here (see the module documentation).
        let edges = std::mem::take(&mut config.edges);
        let mut engine = Engine::open(config, &loaded.path, &Selection::default()).await?;
        engine.config.edges = edges;
        let gate = Arc::new(Gate::new(engine.central.clone(), shared.clone()));
        engine.central = gate.clone();
        Ok(Generation {
            engine: Arc::new(engine),
            gate,
            stop: watch::Sender::new(false),
            tasks: Vec::new(),
            prober: None,
            feed: None,
        })
    }

    /// Start one scheduler per edge, and the central prober.
    pub(crate) fn start(&mut self, shared: &Arc<Shared>) {
        let config = &self.engine.config;
        let tracked: Vec<(String, Vec<String>)> = config
            .edges
            .iter()
            .map(|e| {
                let tables = self
                    .engine
                    .central_tables
                    .iter()
                    .map(|t| t.mapping.edge.clone())
                    .collect();
                (e.node.clone(), tables)
            })
            .collect();
        let window = healthz_window(config);
        shared.metrics.track(&tracked, window);
        let nodes: Vec<String> = tracked.into_iter().map(|(n, _)| n).collect();
        shared.retain_progress(&nodes);
        let mut wakes = Vec::new();
        for ec in &config.edges {
            let central_wake = Arc::new(CentralWake::default());
            wakes.push(central_wake.clone());
            let task = EdgeTask {
                engine: self.engine.clone(),
                gate: self.gate.clone(),
                shared: shared.clone(),
                config: ec.clone(),
                stop: self.stop.subscribe(),
                central_wake,
            };
            self.tasks.push((ec.node.clone(), tokio::spawn(task.run())));
        }
        // Central commits wake the pulls where the central can announce
        // them (PostgreSQL); elsewhere the interval alone decides.
        let watched: Vec<_> = self
            .engine
            .central_tables
            .iter()
            .map(|t| t.mapping.clone())
            .collect();
        match self.gate.inner().watch(&watched) {
            Some(f) => {
                let stop = self.stop.subscribe();
                self.feed = Some(tokio::spawn(feed::run(f, wakes, stop)));
            }
            None => debug!(
                backend = self.engine.central.backend(),
                "this central does not announce commits; pulling every sync.interval"
            ),
        }
        self.prober = Some(tokio::spawn(probe(
            self.gate.inner().clone(),
            shared.clone(),
            config.sync.retry_max.min(PROBE_MAX),
            self.stop.subscribe(),
        )));
    }

    /// The edges and tables, for the status line.
    pub(crate) fn edge_count(&self) -> usize {
        self.engine.config.edges.len()
    }

    /// Stop: no new batch starts, schedulers end after the batch in flight;
    /// those still busy after `grace` are abandoned (a batch cut off mid-way
    /// rolls back, as after a crash).
    pub(crate) async fn stop(self, grace: Duration) {
        self.gate.close();
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        for (node, mut task) in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                warn!(
                    node,
                    ?grace,
                    "still busy after the grace period; abandoning its batch in flight \
                     (it rolls back and is sent again next time)"
                );
                task.abort();
            }
        }
        if let Some(p) = self.prober {
            p.abort();
        }
        if let Some(f) = self.feed {
            f.abort();
        }
    }
}

/// `/healthz`'s window for `config`.
pub(crate) fn healthz_window(config: &crate::config::Config) -> Duration {
    let interval = config.sync.interval;
    match &config.metrics {
        Some(m) => m.healthz_window(interval),
        None => interval
            .saturating_mul(3)
            .max(crate::config::MIN_HEALTHZ_WINDOW),
    }
}

/// Open one edge file and resolve its tables against the central's.
pub(crate) async fn open_edge(engine: &Engine, ec: &EdgeConfig) -> Result<Edge> {
    let path = if ec.path.is_absolute() {
        ec.path.clone()
    } else {
        engine.base_dir.join(&ec.path)
    };
    let db = EdgeDb::open(&path)
        .await
        .with_context(|| format!("edge {} ({})", ec.node, path.display()))?;
    let tables = mapping::resolve_edge(&db, &ec.node, &engine.central_tables).await?;
    let mut config = ec.clone();
    config.path = path;
    Ok(Edge { config, db, tables })
}

/// While the central is marked down, ping it with backoff; when it answers,
/// mark it up, which wakes every edge.
async fn probe(
    central: Arc<dyn edgesync_core::Central>,
    shared: Arc<Shared>,
    cap: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut state = shared.watch_central();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            down = state.wait_for(|up| !*up) => if down.is_err() { return },
        }
        let mut attempt = 0;
        while !shared.central_is_up() {
            let wait = sync::backoff(attempt, Duration::from_secs(1), cap);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(wait) => {}
            }
            match tokio::time::timeout(PROBE_TIMEOUT, central.ping()).await {
                Ok(Ok(())) => shared.set_central_up(true),
                Ok(Err(e)) => debug!("the central still does not answer: {e}"),
                Err(_) => debug!("the central still does not answer (ping timed out)"),
            }
        }
    }
}
