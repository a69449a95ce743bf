//! The `oracle` crate is blocking (ODPI-C calls into the Oracle Client
//! library). Rather than call `spawn_blocking` around every query, a few
//! dedicated OS threads each own one session and take work from one command
//! channel (the sqlx-sqlite worker pattern, as `adapters/sqlite/src/
//! worker.rs`, with several threads so pushes and pulls of different edges
//! run concurrently). Async callers send a closure and await its answer on a
//! `tokio::sync::oneshot`.
//!
//! Each thread connects lazily, on its first job, and reconnects after an
//! error that lost the session. A job's open transaction is rolled back if
//! the job fails (or panics), so no lock outlives the job that took it. The
//! threads end, closing their sessions, when the last handle is dropped.

use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex};

use edgesync_core::{Error, Result};
use tokio::sync::oneshot;

use crate::error::{breaks_connection, code_of};

/// Opens one session (connect and set it up).
pub(crate) type Connect = Arc<dyn Fn() -> Result<oracle::Connection> + Send + Sync>;

type Job = Box<dyn FnOnce(&mut Slot) + Send + 'static>;

/// A worker thread's session.
pub(crate) struct Slot {
    conn: Option<oracle::Connection>,
    connect: Connect,
}

impl Slot {
    fn conn(&mut self) -> Result<&oracle::Connection> {
        if self.conn.is_none() {
            self.conn = Some((self.connect)()?);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| Error::internal("an Oracle session vanished"))
    }
}

/// Handles on the worker threads.
pub(crate) struct Workers {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Workers")
    }
}

impl Workers {
    /// Start `n` threads sharing one queue; none connects yet.
    pub(crate) fn start(n: usize, name: &str, connect: Connect) -> Result<Workers> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..n.max(1) {
            let queue = queue.clone();
            let connect = connect.clone();
            std::thread::Builder::new()
                .name(format!("oracle:{name}:{i}"))
                .spawn(move || {
                    let mut slot = Slot {
                        conn: None,
                        connect,
                    };
                    loop {
                        // The lock is held only while waiting for the next
                        // job, never while running one.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => break,
                        };
                        match job {
                            Ok(job) => job(&mut slot),
                            Err(_) => break,
                        }
                    }
                    if let Some(c) = slot.conn.take() {
                        if let Err(e) = c.close() {
                            tracing::debug!(error = %e, "closing an Oracle session");
                        }
                    }
                })
                .map_err(|e| {
                    Error::internal("cannot start an Oracle worker thread").with_source(e)
                })?;
        }
        Ok(Workers {
            jobs: Mutex::new(jobs),
        })
    }

    /// Run `f` on a worker's session and return its result.
    ///
    /// On error (or panic) the job's transaction is rolled back; a session
    /// the error lost is dropped, and the next job reconnects.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&oracle::Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |slot: &mut Slot| {
            let result = match slot.conn() {
                Err(e) => Err(e),
                Ok(conn) => std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
                    .unwrap_or_else(|_| Err(Error::internal("panic in an Oracle worker"))),
            };
            if let Err(e) = &result {
                let lost = std::error::Error::source(e)
                    .and_then(|s| s.downcast_ref::<oracle::Error>())
                    .is_some_and(breaks_connection)
                    || code_of(e).is_some_and(|c| matches!(c, 3113 | 3114 | 3135));
                if let Some(c) = slot.conn.as_ref() {
                    if lost || c.rollback().is_err() {
                        slot.conn = None;
                    }
                }
            }
            let _ = tx.send(result);
        });
        self.jobs
            .lock()
            .map_err(|_| Error::internal("the Oracle worker queue is poisoned"))?
            .send(job)
            .map_err(|_| Error::internal("the Oracle worker threads have stopped"))?;
        rx.await
            .map_err(|_| Error::internal("an Oracle worker dropped a request"))?
    }
}
