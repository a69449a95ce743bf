//! `edgesync sync` with stderr not a terminal (CI, cron, systemd) logs
//! progress lines for an initial load: table, rows so far, rows/s, and on
//! PostgreSQL the planner's estimate of the total.

use std::process::Command;

use crate::common::{series, Backend, Env, Sql};

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);",
    postgres: "CREATE TABLE items (id bigint PRIMARY KEY, name text);",
    mysql: "CREATE TABLE items (id bigint PRIMARY KEY, name longtext);",
};
const ROWS: u64 = 3000;

async fn an_initial_load_logs_progress_lines(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &DDL).await;
    env.central_run(Sql::all(&format!(
        "INSERT INTO items (id, name) SELECT i, 'n' FROM {}",
        series(ROWS as i64)
    )))
    .await;
    if backend == Backend::Postgres {
        // Planner statistics: what the total is estimated from.
        env.central_run(Sql::all("ANALYZE items")).await;
    }
    env.write_config("[[table]]\nname = \"items\"\n", "page_rows = 250");
    env.init().await;
    let out = Command::new(env!("CARGO_BIN_EXE_edgesync"))
        .arg("--config")
        .arg(env.config_path())
        .arg("sync")
        .env("EDGESYNC_PROGRESS_INTERVAL", "0s")
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM")
        .output()
        .expect("run edgesync sync");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sync failed: {stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["target"] == "edgesync::progress")
        .collect();
    let running: Vec<&serde_json::Value> = lines.iter().filter(|e| e["done"] == false).collect();
    assert!(
        running.len() >= 3,
        "expected a progress line per page of 250 rows; stderr:\n{stderr}"
    );
    let rows: Vec<u64> = running
        .iter()
        .map(|e| e["rows"].as_u64().expect("rows"))
        .collect();
    // (The last page may bring nothing new: it only says "done".)
    assert!(rows.windows(2).all(|w| w[0] <= w[1]), "rows grow: {rows:?}");
    assert!(rows[0] < rows[rows.len() - 1], "rows grow: {rows:?}");
    assert!(rows.iter().all(|r| *r <= ROWS), "{rows:?}");
    for e in &running {
        assert_eq!(e["table"], "items", "{e}");
        assert_eq!(e["node"], "a", "{e}");
        assert!(e["rows_per_sec"].as_u64().is_some(), "{e}");
        let message = e["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("initial load of items (node a): "),
            "{message}"
        );
        assert!(message.contains(" rows/s"), "{message}");
        if backend == Backend::Postgres {
            assert!(message.contains("planner estimate"), "{message}");
            assert!(message.contains("ETA"), "{message}");
            assert_eq!(e["total"].as_u64(), Some(ROWS), "{e}");
        }
    }
    let done: Vec<&serde_json::Value> = lines.iter().filter(|e| e["done"] == true).collect();
    assert_eq!(done.len(), 1, "one closing line; stderr:\n{stderr}");
    assert_eq!(done[0]["rows"].as_u64(), Some(ROWS), "{}", done[0]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("pulled {ROWS}")), "{stdout}");

    // A second sync pulls nothing new: no initial load, no lines.
    let again = Command::new(env!("CARGO_BIN_EXE_edgesync"))
        .arg("--config")
        .arg(env.config_path())
        .arg("sync")
        .env("EDGESYNC_PROGRESS_INTERVAL", "0s")
        .env_remove("RUST_LOG")
        .output()
        .expect("run edgesync sync");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(!stderr.contains("edgesync::progress"), "{stderr}");
}

mod sqlite_central {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_initial_load_logs_progress_lines() {
        super::an_initial_load_logs_progress_lines(crate::common::Backend::Sqlite).await
    }
}

mod postgres_central {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_initial_load_logs_progress_lines() {
        super::an_initial_load_logs_progress_lines(crate::common::Backend::Postgres).await
    }
}
