//! edgesync's integration suite: real SQLite files, a real PostgreSQL, a
//! real MariaDB, the real binary. One test binary (so the suite links once);
//! every test that involves a central runs once per central backend
//! (`for_each_backend!`).

mod common;

mod bad_input;
mod chaos;
mod cli;
mod concurrency;
mod conflicts;
mod convergence;
mod daemon;
mod demo;
mod edge_app;
mod faults;
mod filters;
mod foreign_keys;
mod hub;
mod provisioning;
mod replay;
mod retention;
mod roundtrip;
mod schema_evolution;
mod types;
