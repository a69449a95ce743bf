//! edgesync's SQLite adapter: every edge file ([`EdgeDb`]) and the embedded
//! central database ([`SqliteCentral`], `central.url = "sqlite://..."`).
//!
//! # Design choices
//!
//! - **Capture by triggers, sequence in the file.** Applications keep writing
//!   plain SQL. Triggers (reviewable text in `schemas/sqlite/`) stamp each
//!   written row with the next value of a counter in `es_ctl`; SQLite allows
//!   one writer at a time, so that counter is a commit-safe change sequence
//!   with no gaps to guess about. Hard deletes leave tombstones; soft deletes
//!   keep the row with a marker (`BEFORE DELETE` + `RAISE(IGNORE)`).
//! - **No echo.** edgesync's own writes run with `es_ctl.applying = 1`, set
//!   and cleared inside the same transaction, so the triggers ignore them and
//!   no other connection ever sees the flag set.
//! - **One transaction per step.** A push acknowledgement, a pull page with
//!   its token, and a provisioning script each commit whole or not at all;
//!   that is what makes every step safe to retry after a crash.
//! - **Exact values.** All conversion lives in [`types`]: decimals, dates,
//!   timestamps, UUIDs and JSON are stored as canonical TEXT in columns with
//!   TEXT affinity (SQLite's NUMERIC affinity would make `1.10` the float
//!   `1.1`), reads are strict, and a value that does not fit is an error
//!   naming the table, column and key.
//! - **A thread per file.** rusqlite blocks, so each handle owns a dedicated
//!   connection thread fed through a channel (`worker.rs`), the pattern of
//!   sqlx's SQLite driver.
//! - **Errors by kind.** SQLite result codes map onto
//!   [`edgesync_core::ErrorKind`] (`BUSY` is retryable, `NOTADB` is corrupt,
//!   `CONSTRAINT` is a constraint error) with the driver error kept as source.
//!
//! Rows are always addressed by the mapping's key (composite keys included),
//! never by rowid, so `WITHOUT ROWID` tables work like any other.
#![deny(missing_docs)]

mod central;
mod edge;
mod error;
mod schema;
mod sql;
pub mod types;
mod worker;

pub use central::SqliteCentral;
pub use edge::{ApplyStats, EdgeDb, EdgeTableStatus, Evolved, Resnapshots, SyncedColumns};
pub use edgesync_core::central::Statement;
