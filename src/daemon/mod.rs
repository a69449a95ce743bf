//! `edgesync run`: the daemon.
//!
//! The supervisor here owns the process-level concerns — signals, systemd
//! notifications, the metrics endpoint, config reloads — and one
//! [`Generation`] at a time: the running config, with one scheduler task
//! per edge ([`scheduler`]). The schedulers are independent, so a broken
//! edge only ever delays itself; each is woken by commits to its file
//! ([`wake`]), by commits at the central where the central announces them
//! ([`feed`]: PostgreSQL `LISTEN/NOTIFY`), by its interval, by its backoff
//! timer, and by the central answering again.
//!
//! Signals:
//! - **SIGTERM / SIGINT**: no new batch starts; batches in flight finish
//!   (each is atomic on both sides), then the process exits 0. Whatever is
//!   still running after [`SHUTDOWN_GRACE`] is abandoned and rolls back, as
//!   after a crash; a second signal abandons at once.
//! - **SIGHUP**: reload `sync.toml`: load, validate, connect and resolve the
//!   central tables; only if all of that works does the new config replace
//!   the running one (what changed is logged). Otherwise the error is logged
//!   and the old config keeps syncing.
//!
//! systemd (`Type=notify`): `READY=1` once the engine is open (or, when the
//! central cannot be reached at boot, once the daemon is up and retrying,
//! so a field gateway that boots offline still starts), `STATUS=` with a
//! one-line summary, `WATCHDOG=1` from a task of its own only while no
//! scheduler has been stuck for [`STALL_LIMIT`], `RELOADING=1` and
//! `STOPPING=1`.

mod feed;
mod gate;
mod generation;
mod reload;
mod scheduler;
mod shared;
mod systemd;
mod wake;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use sd_notify::NotifyState;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::{Config, LoadedConfig};
use crate::engine::sync::backoff;
use crate::metrics::{self, Metrics};
use generation::{is_transient, Generation};
use shared::Shared;

/// How long a stop or reload waits for batches in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// A scheduler busy this long without completing a batch is stuck; the
/// watchdog is then no longer fed, and systemd restarts the daemon.
pub const STALL_LIMIT: Duration = Duration::from_secs(300);
/// The supervisor's tick (the status line).
const TICK: Duration = Duration::from_secs(1);

/// Run the daemon on `loaded` (already validated) until SIGTERM or SIGINT.
///
/// Errors (exit status 2) only for what a person must fix before the daemon
/// can do anything: the metrics address cannot be bound, or the central
/// rejects the config (a missing table, bad credentials). An unreachable
/// central is waited for.
pub async fn run(loaded: LoadedConfig) -> Result<()> {
    let (mut terminate, mut hangup) = install_signals()?;
    let metrics = Arc::new(Metrics::new());
    let shared = Shared::new(metrics.clone());
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = match &loaded.config.metrics {
        Some(m) => {
            let endpoint = metrics::bind(&m.listen).await?;
            info!(address = %endpoint.addr, "serving /metrics and /healthz");
            let served = metrics::serve(endpoint, metrics.clone(), async move {
                let _ = http_stopped.await;
            });
            Some(tokio::spawn(async move {
                if let Err(e) = served.await {
                    error!("{e:#}");
                }
            }))
        }
        None => None,
    };

    let mut sup = Supervisor {
        shared,
        loaded,
        current: None,
        attempts: 0,
        retry_at: Instant::now(),
        ready: false,
        status: String::new(),
    };
    spawn_watchdog(sup.shared.clone());
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let signal = loop {
        if sup.current.is_none() && Instant::now() >= sup.retry_at {
            tokio::select! {
                r = sup.open() => r?,
                s = terminate.recv() => break s,
            }
        }
        let waiting = sup.current.is_none();
        tokio::select! {
            s = terminate.recv() => break s,
            _ = hangup.recv() => sup.reload().await,
            _ = tick.tick() => sup.tick(),
            _ = tokio::time::sleep_until(sup.retry_at), if waiting => {}
        }
    };

    info!(signal, "stopping: letting the batches in flight finish");
    systemd::notify(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: finishing the batches in flight"),
    ]);
    if let Some(generation) = sup.current.take() {
        tokio::select! {
            _ = generation.stop(SHUTDOWN_GRACE) => {}
            s = terminate.recv() => warn!(signal = s, "second signal: stopping now"),
        }
    }
    let _ = http_stop.send(());
    if let Some(h) = http {
        let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
    }
    info!("stopped");
    Ok(())
}

/// The supervisor's state (see the module documentation).
struct Supervisor {
    shared: Arc<Shared>,
    loaded: LoadedConfig,
    current: Option<Generation>,
    /// Failed attempts to open the current config (central unreachable).
    attempts: u32,
    retry_at: Instant,
    ready: bool,
    status: String,
}

impl Supervisor {
    /// Open and start the loaded config; a central that does not answer is
    /// retried with backoff, anything else is fatal.
    async fn open(&mut self) -> Result<()> {
        match Generation::open(&self.loaded, &self.shared).await {
            Ok(mut generation) => {
                generation.start(&self.shared);
                let sync = &self.loaded.config.sync;
                info!(
                    config = %self.loaded.path.display(),
                    edges = generation.edge_count(),
                    interval = ?sync.interval,
                    "edgesync running"
                );
                self.current = Some(generation);
                self.attempts = 0;
                self.shared.set_central_up(true);
                self.set_status(format!(
                    "syncing {} edges: starting",
                    self.loaded.config.edges.len()
                ));
                self.ready();
                Ok(())
            }
            Err(e) if is_transient(&e) => {
                let cap = self.loaded.config.sync.retry_max;
                let wait = backoff(self.attempts, Duration::from_secs(1), cap);
                self.attempts = self.attempts.saturating_add(1);
                self.retry_at = Instant::now() + wait;
                warn!(retry_in = ?wait, "cannot reach the central yet: {e:#}");
                self.shared.set_central_up(false);
                // /healthz names every edge as not syncing, with the reason.
                let config = &self.loaded.config;
                let tables: Vec<String> = config.tables.iter().map(|t| t.name.clone()).collect();
                let edges: Vec<(String, Vec<String>)> = config
                    .edges
                    .iter()
                    .map(|e| (e.node.clone(), tables.clone()))
                    .collect();
                let metrics = &self.shared.metrics;
                metrics.track(&edges, generation::healthz_window(config));
                for (node, _) in &edges {
                    metrics.mark_unavailable(node, &format!("waiting for the central: {e:#}"));
                }
                self.set_status(format!("waiting for the central: {e:#}"));
                self.ready();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `READY=1`, once.
    fn ready(&mut self) {
        if !self.ready {
            self.ready = true;
            systemd::notify(&[NotifyState::Ready]);
        }
    }

    fn set_status(&mut self, line: String) {
        if line != self.status {
            systemd::status(&line);
            self.status = line;
        }
    }

    /// SIGHUP: swap in the new config only if it loads, validates and opens.
    async fn reload(&mut self) {
        let path = self.loaded.path.clone();
        info!(config = %path.display(), "SIGHUP: reloading the config");
        let mut states = vec![NotifyState::Reloading];
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            states.push(now);
        }
        systemd::notify(&states);
        let result = self.try_reload(&path).await;
        self.shared.metrics.record_reload(result.is_ok());
        if let Err(e) = result {
            let running = if self.current.is_some() {
                "still running the previous config"
            } else {
                "still waiting for the central with the previous config"
            };
            error!(config = %path.display(), "reload failed, {running}: {e:#}");
        }
        systemd::notify(&[NotifyState::Ready]);
    }

    async fn try_reload(&mut self, path: &std::path::Path) -> Result<()> {
        let new = Config::load(Some(path))?;
        new.validate()?;
        let changes = reload::changes(&self.loaded.config, &new.config);
        if self.current.is_none() {
            // Not running yet (the central did not answer): try the new
            // config at once.
            self.loaded = new;
            self.attempts = 0;
            self.retry_at = Instant::now();
            return Ok(());
        }
        let mut generation = Generation::open(&new, &self.shared).await?;
        if let Some(old) = self.current.take() {
            old.stop(SHUTDOWN_GRACE).await;
        }
        generation.start(&self.shared);
        self.current = Some(generation);
        if new.config.metrics.as_ref().map(|m| &m.listen)
            != self.loaded.config.metrics.as_ref().map(|m| &m.listen)
        {
            warn!("metrics.listen changed; the endpoint moves at the next restart");
        }
        if new.config.log.level != self.loaded.config.log.level {
            match crate::logging::reload_level(&new.config.log.level) {
                Ok(true) => {}
                Ok(false) => info!("log.level changed, but --log-level or RUST_LOG overrides it"),
                Err(e) => warn!("{e}"),
            }
        }
        if new.config.log.format != self.loaded.config.log.format {
            warn!("log.format changed; it takes effect at the next restart");
        }
        self.loaded = new;
        if changes.is_empty() {
            info!("config reloaded: no changes in the file; tables re-resolved");
        } else {
            info!(changes = %changes.join("; "), "config reloaded");
        }
        Ok(())
    }

    /// Once a second: the status line.
    fn tick(&mut self) {
        if let Some(generation) = &self.current {
            let mut summary = self.shared.metrics.summary();
            summary.edges = generation.edge_count();
            self.set_status(systemd::status_line(&summary));
        }
    }
}

/// Feed systemd's watchdog (`WatchdogSec`) at a quarter of its period while
/// no scheduler is stuck. A task of its own, so that a long reload in the
/// supervisor does not starve it; if the runtime itself hangs, it stops too.
fn spawn_watchdog(shared: Arc<Shared>) {
    let Some(period) = systemd::watchdog_period() else {
        return;
    };
    tokio::spawn(async move {
        let mut warned = false;
        loop {
            let stalled = shared.stalled(STALL_LIMIT);
            if stalled.is_empty() {
                warned = false;
                systemd::notify(&[NotifyState::Watchdog]);
            } else if !warned {
                warned = true;
                let names: Vec<String> = stalled
                    .iter()
                    .map(|(n, d)| format!("{n} ({}s)", d.as_secs()))
                    .collect();
                error!(
                    stalled = %names.join(", "),
                    "no progress within {STALL_LIMIT:?}; no longer feeding the systemd watchdog"
                );
            }
            tokio::time::sleep(period / 4).await;
        }
    });
}

/// SIGTERM and SIGINT, installed before anything else.
struct Terminate {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

/// SIGHUP, installed before anything else so that a SIGHUP during startup
/// does not kill the daemon (its default action).
struct Hangup {
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

fn install_signals() -> Result<(Terminate, Hangup)> {
    #[cfg(unix)]
    {
        use anyhow::Context;
        use tokio::signal::unix::{signal, SignalKind};
        let on = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("cannot handle {name}"))
        };
        Ok((
            Terminate {
                term: on(SignalKind::terminate(), "SIGTERM")?,
                int: on(SignalKind::interrupt(), "SIGINT")?,
            },
            Hangup {
                hup: on(SignalKind::hangup(), "SIGHUP")?,
            },
        ))
    }
    #[cfg(not(unix))]
    Ok((Terminate {}, Hangup {}))
}

impl Terminate {
    /// The next SIGTERM or SIGINT; returns its name.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

impl Hangup {
    /// The next SIGHUP (never, where there is none).
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            self.hup.recv().await;
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    }
}
