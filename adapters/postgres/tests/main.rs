//! Integration tests against a real PostgreSQL (`EDGESYNC_TEST_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`). Every test creates its
//! own database and drops it when done, so tests run in parallel.
#![allow(clippy::unwrap_used)]

#[path = "suite/common.rs"]
mod common;
#[path = "suite/connect.rs"]
mod connect;
#[path = "suite/provision.rs"]
mod provision;
#[path = "suite/pull.rs"]
mod pull;
#[path = "suite/push.rs"]
mod push;
#[path = "suite/types.rs"]
mod types;
