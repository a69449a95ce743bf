//! edgesync's integration suite: real SQLite files, a real PostgreSQL, the
//! real binary. One test binary (so the suite links once); every test that
//! involves a central runs once per central backend (`for_each_backend!`).

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
mod provisioning;
mod replay;
mod roundtrip;
