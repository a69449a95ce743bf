//! The adapter's integration tests: real SQLite files in temporary
//! directories, no mocks. One test binary (modules under `suite/`) so the
//! suite links once.
#![allow(clippy::unwrap_used)]

mod suite;
