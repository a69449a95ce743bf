//! What edge applications see (issue 11): the status views, sync requests
//! served by the running daemon, manual conflicts settled from the edge file
//! (by `examples/edge_app.py`, plain SQLite), read-only and upload-only
//! tables, and `deinit-sync` removing it all.

// The daemon suite's harness (`tests/daemon.rs` keeps its module private).
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "daemon/harness.rs"]
mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::common::{query_text, Backend, Ddl, Env};
use harness::{poll, Daemon, SOON};

const DDL: Ddl = Ddl {
    sqlite: "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);
      CREATE TABLE prices (id INTEGER PRIMARY KEY, price TEXT);
      CREATE TABLE uploads (id INTEGER PRIMARY KEY, body TEXT);",
    postgres: "CREATE TABLE items (id bigint PRIMARY KEY, name text, qty bigint);
      CREATE TABLE prices (id bigint PRIMARY KEY, price text);
      CREATE TABLE uploads (id bigint PRIMARY KEY, body text);",
};

const TABLES: &str = "[[table]]\nname = \"items\"\nconflict = \"manual\"\n\n\
    [[table]]\nname = \"prices\"\ndirection = \"pull\"\n\n\
    [[table]]\nname = \"uploads\"\ndirection = \"push\"\n";

async fn setup(backend: Backend, nodes: &[&str]) -> Env {
    let mut env = Env::new(backend, nodes, &DDL).await;
    env.write_config(TABLES, "");
    env.init().await;
    env.central_exec(
        "INSERT INTO items (id, name, qty) VALUES (1, 'x', 1), (2, 'y', 1), (3, 'z', 1);
         INSERT INTO prices (id, price) VALUES (1, '9.99');",
        "INSERT INTO items (id, name, qty) VALUES (1, 'x', 1), (2, 'y', 1), (3, 'z', 1);
         INSERT INTO prices (id, price) VALUES (1, '9.99');",
    )
    .await;
    env.sync_all(1).await;
    env
}

fn rows(c: &Connection, sql: &str) -> Vec<Vec<String>> {
    query_text(c, sql)
}

/// `[pending, conflicts, quarantined, syncing, last_error IS NULL,
/// last_sync_at IS NOT NULL]` of one table in es_status.
fn status_of(c: &Connection, table: &str) -> Vec<String> {
    let r = rows(
        c,
        &format!(
            "SELECT pending, conflicts, quarantined, syncing, last_error IS NULL, \
             last_sync_at IS NOT NULL FROM es_status WHERE tbl = '{table}'"
        ),
    );
    assert_eq!(r.len(), 1, "es_status has one row for {table}: {r:?}");
    r[0].clone()
}

/// `id: pending in_conflict quarantined synced` of every row of items.
fn item_rows(c: &Connection) -> Vec<String> {
    rows(
        c,
        "SELECT id, pending, in_conflict, quarantined, synced FROM es_rows_items ORDER BY id",
    )
    .into_iter()
    .map(|r| format!("{}: {} {} {} {}", r[0], r[1], r[2], r[3], r[4]))
    .collect()
}

async fn status_views_reflect_pending_synced_and_conflicted_rows(backend: Backend) {
    let env = setup(backend, &["a", "b"]).await;
    let a = env.edge_app("a");
    assert_eq!(status_of(&a, "items"), ["0", "0", "0", "0", "1", "1"]);
    assert_eq!(status_of(&a, "prices"), ["0", "0", "0", "0", "1", "1"]);
    assert_eq!(status_of(&a, "uploads"), ["0", "0", "0", "0", "1", "1"]);
    assert_eq!(
        item_rows(&a),
        ["1: 0 0 0 1", "2: 0 0 0 1", "3: 0 0 0 1"],
        "all synced"
    );

    env.edge("b")
        .execute("UPDATE items SET qty = 2 WHERE id = 2", [])
        .expect("b");
    env.sync_node("b").await;
    a.execute_batch(
        "UPDATE items SET qty = 5 WHERE id = 2; UPDATE items SET qty = 7 WHERE id = 3;
         INSERT INTO items (id, name, qty) VALUES (4, 'new', 1);
         INSERT INTO uploads (id, body) VALUES (1, 'log');",
    )
    .expect("a");
    assert_eq!(status_of(&a, "items")[0], "3", "three rows pending");
    assert_eq!(status_of(&a, "uploads")[0], "1");
    assert_eq!(
        item_rows(&a),
        ["1: 0 0 0 1", "2: 1 0 0 0", "3: 1 0 0 0", "4: 1 0 0 0"]
    );

    env.sync_node("a").await;
    // Row 2 met b's write: manual parks it and a shows the central row.
    assert_eq!(status_of(&a, "items"), ["0", "1", "0", "0", "1", "1"]);
    assert_eq!(status_of(&a, "uploads"), ["0", "0", "0", "0", "1", "1"]);
    assert_eq!(
        item_rows(&a),
        ["1: 0 0 0 1", "2: 0 1 0 0", "3: 0 0 0 1", "4: 0 0 0 1"]
    );
    let c = rows(
        &a,
        "SELECT id, tbl, key, local_json, central_json, base_json, choice IS NULL \
         FROM es_conflicts",
    );
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        &c[0][1..],
        [
            "items",
            r#"{"id":2}"#,
            r#"{"id":2,"name":"y","qty":5}"#,
            r#"{"id":2,"name":"y","qty":2}"#,
            r#"{"id":2,"name":"y","qty":1}"#,
            "1"
        ]
    );
    let open = env.cli(&["conflicts", "list", "--json"]);
    let open: Vec<edgesync_core::ConflictRecord> =
        serde_json::from_slice(&open.stdout).expect("conflicts json");
    assert_eq!(open.len(), 1);
    assert_eq!(c[0][0], open[0].id.to_string(), "the central conflict id");
    // b never met a conflict.
    let b = env.edge_app("b");
    assert_eq!(status_of(&b, "items")[1], "0");

    // Settled from the CLI: the next sync removes it from the edge.
    let out = env.cli(&["conflicts", "resolve", &c[0][0], "--keep", "central"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    env.sync_node("a").await;
    assert_eq!(status_of(&a, "items"), ["0", "0", "0", "0", "1", "1"]);
    assert_eq!(
        item_rows(&a),
        ["1: 0 0 0 1", "2: 0 0 0 1", "3: 0 0 0 1", "4: 0 0 0 1"]
    );
}

async fn a_sync_request_is_served_within_two_seconds_by_run(backend: Backend) {
    let env = setup(backend, &["a"]).await;
    let mut d = Daemon::start(&env, &[("EDGESYNC_SYNC__INTERVAL", "60s")]);
    d.wait_synced("a", 1);
    env.central_exec(
        "INSERT INTO items (id, name, qty) VALUES (10, 'central', 1);",
        "INSERT INTO items (id, name, qty) VALUES (10, 'central', 1);",
    )
    .await;
    let a = env.edge_app("a");
    for table in [None, Some("prices")] {
        let started = Instant::now();
        a.execute("INSERT INTO es_sync_requests (tbl) VALUES (?1)", [table])
            .expect("request");
        let id = a.last_insert_rowid();
        let served = poll(SOON, || {
            a.query_row(
                "SELECT served_at IS NOT NULL FROM es_sync_requests WHERE id = ?1",
                [id],
                |r| r.get::<_, bool>(0),
            )
            .expect("request row")
        });
        let took = started.elapsed();
        assert!(served, "request {id} not served; log:\n{}", d.log_text());
        assert!(
            took <= Duration::from_secs(2),
            "request {id} took {took:?}; log:\n{}",
            d.log_text()
        );
        let outcome: String = a
            .query_row(
                "SELECT outcome FROM es_sync_requests WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .expect("outcome");
        assert_eq!(outcome, "ok");
    }
    let n: i64 = a
        .query_row("SELECT count(*) FROM items WHERE id = 10", [], |r| r.get(0))
        .expect("count");
    assert_eq!(
        n, 1,
        "the request pulled the central's row (interval is 60 s)"
    );
    // A request naming no synced table is answered, not left to loop on.
    a.execute("INSERT INTO es_sync_requests (tbl) VALUES ('nope')", [])
        .expect("request");
    let id = a.last_insert_rowid();
    assert!(poll(SOON, || {
        a.query_row(
            "SELECT outcome FROM es_sync_requests WHERE id = ?1",
            [id],
            |r| r.get::<_, Option<String>>(0),
        )
        .expect("row")
        .is_some_and(|o| o.contains("no synced table named nope"))
    }));
    d.stop();
}

async fn a_manual_conflict_is_resolved_from_the_edge_file_and_converges(backend: Backend) {
    let env = setup(backend, &["a", "b"]).await;
    env.edge("b")
        .execute("UPDATE items SET qty = 2 WHERE id = 1", [])
        .expect("b");
    env.sync_node("b").await;
    env.edge("a")
        .execute("UPDATE items SET name = 'mine', qty = 3 WHERE id = 1", [])
        .expect("a");
    env.sync_node("a").await;
    let mut d = Daemon::start(&env, &[("EDGESYNC_SYNC__INTERVAL", "60s")]);
    d.wait_synced("a", 1);
    d.wait_synced("b", 1);

    // The example application, with plain SQLite only, against the daemon.
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/edge_app.py"))
        .arg(env.edge_path("a"))
        .args(["--resolve", "local", "--timeout", "10"])
        .output()
        .expect("run python3 examples/edge_app.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "edge_app.py failed:\n{stdout}\n{}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log_text()
    );
    assert!(stdout.contains("open conflicts: 1"), "{stdout}");
    assert!(stdout.contains("chose local"), "{stdout}");
    assert!(stdout.contains("'qty': 3"), "local version shown: {stdout}");

    // The central has a's version and no open conflict; a has it already.
    let central = env
        .central_rows(
            "SELECT name, qty FROM items WHERE id = 1",
            "SELECT name, qty::text FROM items WHERE id = 1",
        )
        .await;
    assert_eq!(central, [["mine", "3"]]);
    let open = env.cli(&["conflicts", "list", "--json"]);
    let open: Vec<edgesync_core::ConflictRecord> =
        serde_json::from_slice(&open.stdout).expect("conflicts json");
    assert!(open.is_empty(), "{open:?}");
    let a = env.edge_app("a");
    assert_eq!(
        rows(&a, "SELECT name, qty FROM items WHERE id = 1"),
        [["mine", "3"]]
    );
    assert_eq!(item_rows(&a)[0], "1: 0 0 0 1");
    // b gets it on its next sync (asked for here, the interval is 60 s).
    let b = env.edge_app("b");
    b.execute("INSERT INTO es_sync_requests (tbl) VALUES (NULL)", [])
        .expect("request");
    let ok = poll(SOON, || {
        rows(&b, "SELECT name, qty FROM items WHERE id = 1") == [["mine", "3"]]
    });
    assert!(ok, "b did not converge; log:\n{}", d.log_text());
    d.stop();
}

async fn pull_only_writes_fail_in_the_apps_transaction_and_push_only_never_pulls(backend: Backend) {
    let env = setup(backend, &["a"]).await;
    let a = env.edge_app("a");
    // The app's transaction: the refused statement fails, and the app rolls
    // the whole transaction back.
    a.execute_batch("BEGIN; INSERT INTO items (id, name, qty) VALUES (50, 'in tx', 1);")
        .expect("begin");
    let err = a
        .execute("UPDATE prices SET price = '0' WHERE id = 1", [])
        .expect_err("prices is read-only");
    assert!(
        err.to_string()
            .contains("edgesync: table prices is read-only on this edge (direction = pull)"),
        "{err}"
    );
    for sql in [
        "INSERT INTO prices (id, price) VALUES (2, '1')",
        "DELETE FROM prices WHERE id = 1",
    ] {
        let err = a.execute(sql, []).expect_err(sql);
        assert!(
            err.to_string().contains("table prices is read-only"),
            "{err}"
        );
    }
    a.execute_batch("ROLLBACK").expect("rollback");
    assert_eq!(
        rows(&a, "SELECT count(*) FROM items WHERE id = 50"),
        [["0"]]
    );
    assert_eq!(rows(&a, "SELECT price FROM prices"), [["9.99"]]);
    // Or it keeps the rest: only the refused statement was undone.
    a.execute_batch("BEGIN; INSERT INTO items (id, name, qty) VALUES (51, 'kept', 1);")
        .expect("begin");
    assert!(a.execute("DELETE FROM prices", []).is_err());
    a.execute_batch("COMMIT").expect("commit");
    assert_eq!(
        rows(&a, "SELECT count(*) FROM items WHERE id = 51"),
        [["1"]]
    );
    assert_eq!(rows(&a, "SELECT count(*) FROM prices"), [["1"]]);

    // Upload-only: the edge's writes reach the central; the central's never
    // arrive on the edge.
    a.execute("INSERT INTO uploads (id, body) VALUES (1, 'edge')", [])
        .expect("upload");
    env.central_exec(
        "INSERT INTO uploads (id, body) VALUES (2, 'central');",
        "INSERT INTO uploads (id, body) VALUES (2, 'central');",
    )
    .await;
    env.sync_node("a").await;
    let central = env
        .central_rows(
            "SELECT id, body FROM uploads ORDER BY id",
            "SELECT id::text, body FROM uploads ORDER BY id",
        )
        .await;
    assert_eq!(central, [["1", "edge"], ["2", "central"]]);
    assert_eq!(rows(&a, "SELECT id, body FROM uploads"), [["1", "edge"]]);
    assert_eq!(status_of(&a, "uploads")[0], "0");
}

fn es_objects(path: &std::path::Path) -> Vec<String> {
    let c = Connection::open(path).expect("edge");
    rows(
        &c,
        "SELECT type || ' ' || name FROM sqlite_master \
         WHERE name LIKE 'es\\_%' ESCAPE '\\' ORDER BY type, name",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

async fn deinit_sync_removes_the_views_requests_and_conflicts(backend: Backend) {
    let env = setup(backend, &["a"]).await;
    let objects = es_objects(&env.edge_path("a"));
    for o in [
        "table es_sync_requests",
        "table es_conflicts",
        "view es_status",
        "view es_rows_items",
        "view es_rows_prices",
        "view es_rows_uploads",
    ] {
        assert!(objects.iter().any(|x| x == o), "{o} missing: {objects:?}");
    }
    let again = env.cli(&["init-sync"]);
    assert!(again.status.success(), "{}", crate::common::stderr(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing changed"),
        "init-sync is idempotent: {}",
        String::from_utf8_lossy(&again.stdout)
    );

    // One table: its view goes, es_status covers the others.
    let one = env.cli(&["deinit-sync", "--table", "uploads"]);
    assert!(one.status.success(), "{}", crate::common::stderr(&one));
    let objects = es_objects(&env.edge_path("a"));
    assert!(
        !objects.iter().any(|x| x == "view es_rows_uploads"),
        "{objects:?}"
    );
    let a = env.edge_app("a");
    assert_eq!(
        rows(&a, "SELECT tbl FROM es_status ORDER BY tbl"),
        [["items"], ["prices"]]
    );
    drop(a);

    let all = env.cli(&["deinit-sync"]);
    assert!(all.status.success(), "{}", crate::common::stderr(&all));
    assert_eq!(es_objects(&env.edge_path("a")), Vec::<String>::new());
}

/// One test per central backend this suite gives SQL for (SQLite and
/// PostgreSQL; the views and requests live in the edge file, so the central
/// backend only matters for the conflict log).
macro_rules! sqlite_and_postgres {
    ($($name:ident),* $(,)?) => {
        mod sqlite_central {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(crate::common::Backend::Sqlite).await }
            )*
        }
        mod postgres_central {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(crate::common::Backend::Postgres).await }
            )*
        }
    };
}

sqlite_and_postgres!(
    status_views_reflect_pending_synced_and_conflicted_rows,
    a_sync_request_is_served_within_two_seconds_by_run,
    a_manual_conflict_is_resolved_from_the_edge_file_and_converges,
    pull_only_writes_fail_in_the_apps_transaction_and_push_only_never_pulls,
    deinit_sync_removes_the_views_requests_and_conflicts,
);
