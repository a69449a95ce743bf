//! The contract between the edgesync engine and its database adapters.
//!
//! edgesync moves rows between SQLite edge files and one central database of
//! several kinds. Everything that is true of *every* backend lives here, so
//! that each adapter crate only translates: SQL dialect, native types to the
//! canonical [`Value`], and the backend's own way of making watermarks
//! commit-safe. This crate holds no database client on purpose; it compiles in
//! seconds and can be read in one sitting.
//!
//! - [`value`]: the canonical value model every row travels in.
//! - [`types`]: canonical column types and the lossless-mapping rules.
//! - [`schema`]: table descriptions and the resolved edge/central mapping.
//! - [`change`]: what a push batch and a pull page carry.
//! - [`conflict`]: conflict policies and the pure resolution function that every
//!   central adapter calls inside its apply transaction.
//! - [`fk_order`]: a self-referencing table's rows in foreign-key order.
//! - [`filter`]: row filters (a node's scope): parsing, evaluation, SQL with bind parameters.
//! - [`hlc`]: the hybrid logical clock stamps used to order writes.
//! - [`central`]: the [`central::Central`] trait, with the guarantees an
//!   adapter must keep written on it.
//! - [`error`]: one error type whose [`error::ErrorKind`] means the same in
//!   every adapter.
//! - [`names`]: the reserved `es_` prefix and every name edgesync adds.
//! - [`watch`]: change feeds, for centrals that announce their commits.
#![deny(missing_docs)]

pub mod central;
pub mod change;
pub mod conflict;
pub mod error;
pub mod filter;
pub mod fk_order;
pub mod hlc;
pub mod names;
pub mod schema;
pub mod template;
pub mod types;
pub mod value;
pub mod watch;

pub use central::Central;
pub use change::{Change, PullPage, PushBatch, PushOutcome};
pub use conflict::{ConflictPolicy, ConflictRecord, DeleteMode, Direction, Keep};
pub use error::{Error, ErrorKind, Result};
pub use schema::{Column, ColumnMap, QualifiedName, TableMapping, TableSchema};
pub use types::ColType;
pub use value::Value;
pub use watch::{ChangeFeed, FeedEvent};
