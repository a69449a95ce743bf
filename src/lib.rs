//! edgesync: offline-first two-way replication between edge SQLite files and
//! a central database.
//!
//! The binary (`src/main.rs`) is a thin shell over this library so the
//! integration tests can drive the engine directly as well as through the
//! real executable. Database-specific code lives in the adapter crates under
//! `adapters/`; this crate holds what is the same for every backend: config,
//! command line, the sync engine and the demo.

pub mod app;
pub mod centrals;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod hub;
pub mod logging;
pub mod metrics;
