//! Central commits waking edge pulls: the daemon's side of a central's
//! [`ChangeFeed`] (PostgreSQL's `LISTEN/NOTIFY`; other centrals have none
//! and are pulled every `sync.interval`).
//!
//! One task per running config reads the feed and marks every edge's
//! [`CentralWake`]: the tables announced, or all of them after a
//! [`FeedEvent::Resync`] (the feed was not listening for a while). Each edge
//! scheduler takes what accumulated when it next looks, so a burst of
//! commits during a sync becomes one more pull, not one per commit.
//!
//! A feed that fails (the connection dropped, the server restarted) is
//! called again after a capped, jittered backoff; when it listens again its
//! `Resync` makes every edge pull once, so nothing committed in the gap
//! waits for the interval. The interval pulls run regardless: the feed only
//! ever makes changes arrive sooner.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgesync_core::{ChangeFeed, FeedEvent};
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

use crate::engine::sync::backoff;

/// The first retry of a failed feed waits about this long.
const RETRY_BASE: Duration = Duration::from_secs(1);
/// The longest wait between attempts to listen again.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Which tables of one edge central commits asked to pull.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Wanted {
    /// Nothing announced.
    #[default]
    Nothing,
    /// These edge tables.
    Tables(BTreeSet<String>),
    /// Every table.
    All,
}

impl Wanted {
    /// Whether edge table `table` is among them.
    pub(crate) fn includes(&self, table: &str) -> bool {
        match self {
            Wanted::Nothing => false,
            Wanted::Tables(t) => t.contains(table),
            Wanted::All => true,
        }
    }

    fn add(&mut self, event: &FeedEvent) {
        match (event, &mut *self) {
            (_, Wanted::All) => {}
            (FeedEvent::Resync, w) => *w = Wanted::All,
            (FeedEvent::Changed(tables), Wanted::Tables(set)) => {
                set.extend(tables.iter().cloned());
            }
            (FeedEvent::Changed(tables), w) => {
                *w = Wanted::Tables(tables.iter().cloned().collect());
            }
        }
    }
}

/// One edge's mailbox for central commits.
#[derive(Default)]
pub(crate) struct CentralWake {
    wanted: Mutex<Wanted>,
    notify: Notify,
}

impl CentralWake {
    fn mark(&self, event: &FeedEvent) {
        self.wanted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(event);
        self.notify.notify_one();
    }

    /// Wait until something was announced (returns at once if something
    /// was since the last [`CentralWake::take`]).
    pub(crate) async fn notified(&self) {
        self.notify.notified().await;
    }

    /// What was announced since the last call, clearing it.
    pub(crate) fn take(&self) -> Wanted {
        std::mem::take(&mut *self.wanted.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Read `feed` until `stop`, marking every edge in `edges` (see the module
/// documentation).
pub(crate) async fn run(
    mut feed: Box<dyn ChangeFeed>,
    edges: Vec<Arc<CentralWake>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    let mut listened = false;
    loop {
        let next = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            next = feed.next() => next,
        };
        match next {
            Ok(event) => {
                if event == FeedEvent::Resync {
                    if !listened || failures > 0 {
                        info!("listening for central commits; pulling every table once");
                    }
                    listened = true;
                    failures = 0;
                }
                debug!(?event, "central commit announced");
                for edge in &edges {
                    edge.mark(&event);
                }
            }
            Err(e) => {
                let wait = backoff(failures, RETRY_BASE, RETRY_MAX);
                if failures == 0 {
                    warn!(
                        retry_in = ?wait,
                        "not listening for central commits (pulls fall back to sync.interval \
                         until it listens again): {e}"
                    );
                } else {
                    debug!(retry_in = ?wait, failures, "still not listening: {e}");
                }
                failures = failures.saturating_add(1);
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(t: &[&str]) -> FeedEvent {
        FeedEvent::Changed(t.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn announcements_accumulate_until_taken() {
        let w = CentralWake::default();
        assert_eq!(w.take(), Wanted::Nothing);
        w.mark(&changed(&["a"]));
        w.mark(&changed(&["b", "a"]));
        let got = w.take();
        assert!(got.includes("a") && got.includes("b") && !got.includes("c"));
        assert_eq!(w.take(), Wanted::Nothing, "taking clears");
        w.mark(&changed(&["a"]));
        w.mark(&FeedEvent::Resync);
        w.mark(&changed(&["b"]));
        assert_eq!(w.take(), Wanted::All, "a resync covers every table");
    }

    #[tokio::test]
    async fn a_mark_made_before_waiting_is_not_lost() {
        let w = CentralWake::default();
        w.mark(&changed(&["a"]));
        tokio::time::timeout(Duration::from_secs(1), w.notified())
            .await
            .expect("the stored wake-up");
    }
}
