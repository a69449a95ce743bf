//! The PostgreSQL change feed: `LISTEN edgesync` on a connection of its own.
//!
//! The triggers of `notify.rs` send one notification per committed
//! transaction and table. [`PgFeed`] listens on a dedicated one-connection
//! pool — never a connection of the work pool, which it would hold forever —
//! named `edgesync-listen` in `pg_stat_activity`, so a DBA can tell it apart
//! (and a test can find it).
//!
//! Reconnecting is the caller's call: a lost connection is answered with a
//! `Connection` error, the next [`ChangeFeed::next`] connects again and, once
//! listening, answers [`FeedEvent::Resync`] first — whatever committed while
//! nobody listened is found by that one full pull (the feed's contract in
//! `edgesync_core::watch`).

use std::collections::HashMap;

use async_trait::async_trait;
use edgesync_core::{ChangeFeed, Error, ErrorKind, FeedEvent, Result, TableMapping};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};

use crate::connection::CONNECT_TIMEOUT;
use crate::error::describe;
use crate::notify::{payload, CHANNEL};

/// `application_name` of the listening connection.
pub(crate) const APPLICATION_NAME: &str = "edgesync-listen";

/// See the module documentation.
pub(crate) struct PgFeed {
    pool: PgPool,
    addr: String,
    /// Notification payload (`schema.table`) to the edge tables it wakes.
    tables: HashMap<String, Vec<String>>,
    listener: Option<PgListener>,
}

impl PgFeed {
    /// A feed for `tables`, connecting like `work` does (same server,
    /// credentials and TLS) on first use.
    pub(crate) fn new(work: &PgPool, addr: &str, tables: &[TableMapping]) -> PgFeed {
        let opts = (*work.connect_options())
            .clone()
            .application_name(APPLICATION_NAME);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(opts);
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for t in tables {
            let edges = map.entry(payload(&t.central)).or_default();
            if !edges.contains(&t.edge) {
                edges.push(t.edge.clone());
            }
        }
        PgFeed {
            pool,
            addr: addr.to_string(),
            tables: map,
            listener: None,
        }
    }

    fn error(&self, doing: &str, e: &sqlx::Error) -> Error {
        // Whatever went wrong, the feed is not listening: the daemon waits
        // and retries, so every failure is a connection problem to it.
        Error::new(
            ErrorKind::Connection,
            format!(
                "{doing} (LISTEN {CHANNEL} at PostgreSQL {}): {}",
                self.addr,
                describe(e)
            ),
        )
    }
}

#[async_trait]
impl ChangeFeed for PgFeed {
    async fn next(&mut self) -> Result<FeedEvent> {
        let Some(listener) = self.listener.as_mut() else {
            let mut listener = PgListener::connect_with(&self.pool)
                .await
                .map_err(|e| self.error("connecting for change notifications", &e))?;
            // Reconnecting (and announcing the gap) is ours to do.
            listener.eager_reconnect(false);
            listener
                .listen(CHANNEL)
                .await
                .map_err(|e| self.error("starting to listen", &e))?;
            self.listener = Some(listener);
            return Ok(FeedEvent::Resync);
        };
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Some(edges) = self.tables.get(n.payload()) {
                        return Ok(FeedEvent::Changed(edges.clone()));
                    }
                    // A table this daemon does not sync.
                }
                Ok(None) => {
                    self.listener = None;
                    return Err(Error::new(
                        ErrorKind::Connection,
                        format!(
                            "lost the change-notification connection to PostgreSQL at {}",
                            self.addr
                        ),
                    ));
                }
                Err(e) => {
                    let err = self.error("waiting for change notifications", &e);
                    self.listener = None;
                    return Err(err);
                }
            }
        }
    }
}
