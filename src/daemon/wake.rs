//! Noticing commits to an edge file without reading its tables.
//!
//! SQLite's `PRAGMA data_version` changes, for a given connection, whenever
//! *another* connection has committed to the file. One dedicated connection
//! per edge file, which never writes, polls it every [`POLL`]: a change
//! wakes that edge's scheduler, which then asks the edge whether anything is
//! pending before syncing. The pragma reads the WAL index in shared memory,
//! so a poll costs microseconds and never blocks the application.
//!
//! The watcher also wakes the scheduler once when it has read its first
//! version, so commits made while no watcher ran (before the edge opened,
//! or while it was being reopened) are found by the same check.
//!
//! The daemon's own writes (acknowledging pushes, applying pulls, noting
//! errors) also change the version; the scheduler's pending check is what
//! keeps those wakes from turning into a sync loop.
//!
//! rusqlite is blocking, so the poller is its own thread (as every SQLite
//! connection in edgesync is); it stops when the [`Watcher`] is dropped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Notify;

/// How often the version is polled. Together with the scheduler's
/// coalescing delay and one push, this bounds how long a local commit waits
/// before it is at the central.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// Stops its polling thread when dropped.
pub(crate) struct Watcher {
    stop: Arc<AtomicBool>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Poll `path`'s data version every `every` and call `wake.notify_one()`
/// when it changes. A file that cannot be opened or read (missing, locked)
/// is retried on the next poll; the scheduler finds out what is wrong on its
/// own schedule.
pub(crate) fn watch(node: &str, path: PathBuf, every: Duration, wake: Arc<Notify>) -> Watcher {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("watch:{node}"))
        .spawn(move || {
            let mut conn: Option<Connection> = None;
            let mut last: Option<i64> = None;
            while !flag.load(Ordering::Relaxed) {
                if conn.is_none() {
                    conn = open(&path);
                    last = None;
                }
                if let Some(c) = &conn {
                    match c.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0)) {
                        Ok(v) => {
                            // Also once the baseline is read: a commit made
                            // before it (while no watcher ran) is found by
                            // the scheduler's pending check.
                            if last.is_none_or(|l| l != v) {
                                wake.notify_one();
                            }
                            last = Some(v);
                        }
                        Err(rusqlite::Error::SqliteFailure(e, _))
                            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
                        {
                            // Locked: keep the connection and try again.
                        }
                        Err(_) => conn = None,
                    }
                }
                std::thread::sleep(every);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(
            node,
            "cannot start the change watcher; syncing on interval only: {e}"
        );
    }
    Watcher { stop }
}

/// Open an existing file for reading the version (never created here).
fn open(path: &std::path::Path) -> Option<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).ok()?;
    // Never wait: a locked file is simply polled again later.
    conn.busy_timeout(Duration::ZERO).ok()?;
    Some(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_commit_from_another_connection_wakes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.db");
        let app = Connection::open(&path).expect("open");
        app.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x);")
            .expect("setup");
        let wake = Arc::new(Notify::new());
        let _w = watch("e", path, Duration::from_millis(10), wake.clone());
        // One wake once the baseline is read, then none without a commit.
        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .expect("a wake once the watcher runs");
        let quiet = tokio::time::timeout(Duration::from_millis(200), wake.notified()).await;
        assert!(quiet.is_err(), "woke without a commit");
        app.execute("INSERT INTO t VALUES (1)", []).expect("insert");
        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .expect("a commit wakes the edge");
    }
}
