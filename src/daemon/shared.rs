//! State shared by the supervisor, the edge schedulers and the [`Gate`]:
//! metrics, whether the central answers, and each edge's progress (what the
//! systemd watchdog is fed from).
//!
//! [`Gate`]: super::gate::Gate

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use crate::metrics::Metrics;

/// See the module documentation.
pub(crate) struct Shared {
    pub(crate) metrics: Arc<Metrics>,
    central_up: watch::Sender<bool>,
    progress: Mutex<HashMap<String, Arc<Progress>>>,
}

/// Whether an edge's scheduler is working, and when it last got anything
/// done.
#[derive(Debug)]
pub(crate) struct Progress {
    state: Mutex<ProgressState>,
}

#[derive(Debug, Clone, Copy)]
struct ProgressState {
    busy_since: Option<Instant>,
    last_beat: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            state: Mutex::new(ProgressState {
                busy_since: None,
                last_beat: Instant::now(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, ProgressState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A sync (or an open) starts.
    pub(crate) fn start(&self) {
        let now = Instant::now();
        let mut s = self.state();
        s.busy_since = Some(now);
        s.last_beat = now;
    }

    /// Something completed (a batch, a page).
    pub(crate) fn beat(&self) {
        self.state().last_beat = Instant::now();
    }

    /// The scheduler is idle again (waiting for a change, the interval or a
    /// backoff).
    pub(crate) fn finish(&self) {
        let mut s = self.state();
        s.busy_since = None;
        s.last_beat = Instant::now();
    }

    /// How long the scheduler has been busy without completing anything,
    /// if it is busy.
    pub(crate) fn stuck_for(&self, now: Instant) -> Option<Duration> {
        let s = *self.state();
        s.busy_since
            .map(|since| now.saturating_duration_since(since.max(s.last_beat)))
    }
}

impl Shared {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Arc<Shared> {
        Arc::new(Shared {
            metrics,
            central_up: watch::Sender::new(true),
            progress: Mutex::new(HashMap::new()),
        })
    }

    fn progress_map(&self) -> MutexGuard<'_, HashMap<String, Arc<Progress>>> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record whether the central answers; on a change, log it and tell
    /// every scheduler (see [`Shared::watch_central`]).
    pub(crate) fn set_central_up(&self, up: bool) {
        let changed = self.central_up.send_if_modified(|v| {
            let changed = *v != up;
            *v = up;
            changed
        });
        if changed {
            self.metrics.set_central_up(up);
            if up {
                info!("the central answers again; resuming every edge");
            } else {
                warn!("the central does not answer; edges back off while a probe retries it");
            }
        }
    }

    /// Whether the central answered last time.
    pub(crate) fn central_is_up(&self) -> bool {
        *self.central_up.borrow()
    }

    /// Follow the central's up/down state.
    pub(crate) fn watch_central(&self) -> watch::Receiver<bool> {
        self.central_up.subscribe()
    }

    /// The progress record of `node`'s scheduler.
    pub(crate) fn progress(&self, node: &str) -> Arc<Progress> {
        self.progress_map()
            .entry(node.to_string())
            .or_insert_with(|| Arc::new(Progress::new()))
            .clone()
    }

    /// `node` completed a batch.
    pub(crate) fn beat(&self, node: &str) {
        if let Some(p) = self.progress_map().get(node) {
            p.beat();
        }
    }

    /// Forget the progress of nodes not in `nodes` (after a reload).
    pub(crate) fn retain_progress(&self, nodes: &[String]) {
        self.progress_map().retain(|n, _| nodes.contains(n));
    }

    /// Schedulers busy for longer than `limit` without completing a batch.
    pub(crate) fn stalled(&self, limit: Duration) -> Vec<(String, Duration)> {
        let now = Instant::now();
        let mut out: Vec<(String, Duration)> = self
            .progress_map()
            .iter()
            .filter_map(|(n, p)| p.stuck_for(now).map(|d| (n.clone(), d)))
            .filter(|(_, d)| *d > limit)
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_busy_scheduler_can_be_stuck() {
        let shared = Shared::new(Arc::new(Metrics::new()));
        let p = shared.progress("a");
        assert!(p.stuck_for(Instant::now()).is_none());
        p.start();
        let later = Instant::now() + Duration::from_secs(100);
        assert!(p
            .stuck_for(later)
            .is_some_and(|d| d >= Duration::from_secs(99)));
        assert!(shared.stalled(Duration::from_secs(1000)).is_empty());
        p.finish();
        assert!(p.stuck_for(later).is_none());
    }

    #[test]
    fn central_state_changes_are_broadcast_once() {
        let shared = Shared::new(Arc::new(Metrics::new()));
        let mut rx = shared.watch_central();
        shared.set_central_up(true);
        assert!(!rx.has_changed().expect("sender alive"));
        shared.set_central_up(false);
        assert!(rx.has_changed().expect("sender alive"));
        assert!(!*rx.borrow_and_update());
        assert!(!shared.central_is_up());
    }
}
