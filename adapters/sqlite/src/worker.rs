//! One OS thread per database file owns its `rusqlite::Connection`.
//!
//! rusqlite is blocking and a `Connection` is not `Sync`. Rather than wrap it
//! in a mutex and call `spawn_blocking` around every query (which ties up the
//! runtime's blocking pool and scatters locking through the code), each
//! handle starts a dedicated thread — the sqlx-sqlite worker pattern. Async
//! callers send it a closure over a channel and await the answer on a
//! `tokio::sync::oneshot`. Requests run one at a time in arrival order, which
//! is also what SQLite's single writer wants. The thread ends, closing the
//! connection, when the last handle is dropped.

use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use edgesync_core::{Error, ErrorKind, Result};
use rusqlite::{Connection, OpenFlags};

use crate::error::db_error;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&mut Connection) + Send + 'static>;

/// A handle on the connection thread.
#[derive(Debug)]
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Start the thread and open the connection on it with `open`; the open
    /// error, if any, comes back here.
    pub(crate) async fn start(
        name: String,
        open: impl FnOnce() -> Result<Connection> + Send + 'static,
    ) -> Result<Worker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
        std::thread::Builder::new()
            .name(format!("sqlite:{name}"))
            .spawn(move || {
                let mut conn = match open() {
                    Ok(conn) => {
                        let _ = ready_tx.send(Ok(()));
                        conn
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = queue.recv() {
                    job(&mut conn);
                    triggers_on(&conn);
                }
                if let Err((_, e)) = conn.close() {
                    tracing::warn!(error = %e, "closing sqlite connection");
                }
            })
            .map_err(|e| Error::internal("cannot start the sqlite worker thread").with_source(e))?;
        ready_rx
            .await
            .map_err(|_| Error::internal("the sqlite worker thread died while opening"))??;
        Ok(Worker { jobs })
    }

    /// Run `f` on the connection thread and return its result.
    ///
    /// A panic inside `f` becomes an `Internal` error instead of killing the
    /// thread; an open transaction is rolled back as its guard unwinds.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| Err(Error::internal("panic in the sqlite worker")));
            let _ = tx.send(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::internal("the sqlite worker thread has stopped"))?;
        rx.await
            .map_err(|_| Error::internal("the sqlite worker dropped a request"))?
    }
}

/// Between jobs a connection always has its triggers on: a pull apply turns
/// them off for its page only (`edge/pull.rs`) and back on itself, also on
/// its error paths; this catches any path that would not have.
fn triggers_on(conn: &Connection) {
    use rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER as TRIGGERS;
    if let Ok(false) = conn.db_config(TRIGGERS) {
        tracing::error!("triggers were left off after a job; turning them back on");
        if let Err(e) = conn.set_db_config(TRIGGERS, true) {
            tracing::error!(error = %e, "cannot turn triggers back on");
        }
    }
}

/// Open (creating if absent) the SQLite file at `path` the way every
/// edgesync connection is opened: WAL, a 5 s busy timeout, foreign keys on,
/// `synchronous = FULL` (a commit the central acknowledged must survive a
/// power cut).
///
/// Checked before SQLite touches anything: the directory must exist (SQLite
/// would otherwise fail with a bare "unable to open"), and an existing file
/// must start with the SQLite header, so a file that is not a database is
/// reported and left byte-for-byte as it was.
pub(crate) fn open_file(path: &Path) -> Result<Connection> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "directory {} does not exist (for the SQLite file {})",
                dir.display(),
                path.display()
            ),
        ));
    }
    if path.is_dir() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("{} is a directory, not a SQLite file", path.display()),
        ));
    }
    match std::fs::File::open(path) {
        Ok(mut file) => {
            let mut header = [0u8; 16];
            let mut read = 0;
            while read < header.len() {
                match file.read(&mut header[read..]) {
                    Ok(0) => break,
                    Ok(n) => read += n,
                    Err(e) => {
                        return Err(Error::new(
                            ErrorKind::Config,
                            format!("cannot read {}: {e}", path.display()),
                        )
                        .with_source(e))
                    }
                }
            }
            // An empty file is an empty database to SQLite.
            if read > 0 && &header[..read] != SQLITE_HEADER {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    format!("{} is not a SQLite database", path.display()),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("cannot open {}: {e}", path.display()),
            )
            .with_source(e))
        }
    }
    let at = |e: rusqlite::Error| {
        let err = db_error(e);
        let what = match err.kind() {
            ErrorKind::Corrupt => "is corrupt or not a SQLite database",
            _ => "cannot be opened",
        };
        Error::new(
            err.kind(),
            format!("{} {what}: {}", path.display(), err.message()),
        )
        .with_source(err)
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(at)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(at)?;
    // Reading the schema first makes a damaged file fail here, before the
    // journal mode is switched (which would write to it).
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(at)?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .map_err(at)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(at)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(at)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_closures_and_survives_panics() {
        let w = Worker::start("t".into(), || {
            Connection::open_in_memory().map_err(crate::error::db_error)
        })
        .await
        .expect("start");
        let n: i64 = w
            .run(|c| {
                c.query_row("SELECT 41 + 1", [], |r| r.get(0))
                    .map_err(crate::error::db_error)
            })
            .await
            .expect("run");
        assert_eq!(n, 42);
        let err = w
            .run(|_| -> Result<()> { panic!("boom") })
            .await
            .expect_err("panic becomes an error");
        assert_eq!(err.kind(), edgesync_core::ErrorKind::Internal);
        assert!(w.run(|_| Ok(1)).await.is_ok());
    }

    #[tokio::test]
    async fn open_errors_come_back() {
        let err = Worker::start("t".into(), || Err(Error::schema("nope")))
            .await
            .expect_err("open fails");
        assert_eq!(err.message(), "nope");
    }
}
