//! Change feeds: a central that can *tell* the daemon about its commits.
//!
//! Without a feed, central changes reach an edge at the next `sync.interval`
//! pull. A backend that can announce commits (PostgreSQL's `LISTEN/NOTIFY`)
//! offers a [`ChangeFeed`] through [`crate::Central::watch`], and the daemon
//! pulls the announced tables at once.
//!
//! # The contract
//!
//! A feed is a *hint*, never the source of truth: the pull that follows it
//! is an ordinary commit-safe pull, so a duplicate or spurious event only
//! costs one idle pull. What a feed must not do is stay silent about a
//! change without saying so:
//!
//! - an event is announced only once the transaction that wrote it has
//!   committed (so the pull it triggers can see it);
//! - whenever the feed was not listening for a while — before its first
//!   connection, after a lost connection, after its queue overflowed — the
//!   next successful [`ChangeFeed::next`] answers [`FeedEvent::Resync`]
//!   before anything else, so the daemon pulls every watched table once;
//! - a feed that cannot listen answers an error from [`ChangeFeed::next`];
//!   the caller waits (with backoff) and calls again, which retries.
//!
//! The daemon keeps its interval pulls regardless, so even a connection that
//! dies silently (a half-open TCP link) delays changes by at most
//! `sync.interval`.

use async_trait::async_trait;

use crate::error::Result;

/// What a [`ChangeFeed`] announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// Transactions writing to these tables committed (edge table names of
    /// the mappings being watched; no duplicates).
    Changed(Vec<String>),
    /// The feed (re)started listening and may have missed commits: pull
    /// every watched table once.
    Resync,
}

/// A stream of commit announcements from one central (see the module
/// documentation for the contract).
#[async_trait]
pub trait ChangeFeed: Send {
    /// Wait for the next announcement. An error means the feed is not
    /// listening (the message says why); call again later to reconnect.
    async fn next(&mut self) -> Result<FeedEvent>;
}
