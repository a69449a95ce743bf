//! Integration tests against a real MySQL 8 or MariaDB 10.6+
//! (`EDGESYNC_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`).
//! Every test creates its own database and drops it when done, so tests run
//! in parallel.
#![allow(clippy::unwrap_used)]

#[path = "suite/common.rs"]
mod common;
#[path = "suite/concurrency.rs"]
mod concurrency;
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
