//! Data flows both ways, values arrive exactly, and nothing moves twice.

use crate::common::{query_text, series, Backend, Env, Sql};
use crate::for_each_backend_and_hub;

pub const ITEMS: Sql = Sql {
    sqlite: "CREATE TABLE items (
        id INTEGER PRIMARY KEY, name TEXT, price DECIMAL_TEXT(38,10), qty INTEGER,
        ok BOOLEAN, data BLOB, d DATE_TEXT, t TIME_TEXT, ts TIMESTAMP_TEXT,
        tstz TIMESTAMPTZ_TEXT, u UUID_TEXT, j JSON_TEXT, f REAL);
      CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    postgres: "CREATE TABLE items (
        id bigint PRIMARY KEY, name text, price numeric(38,10), qty integer,
        ok boolean, data bytea, d date, t time, ts timestamp,
        tstz timestamptz, u uuid, j jsonb, f double precision);
      CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL);",
    mysql: "CREATE TABLE items (
        id bigint PRIMARY KEY, name longtext, price decimal(38,10), qty int,
        ok tinyint(1), data longblob, d date, t time(6), ts datetime(6),
        tstz timestamp(6) NULL DEFAULT NULL, u char(36), j json, f double);
      CREATE TABLE notes (id bigint PRIMARY KEY, body longtext NOT NULL);",
};

pub const TABLES: &str = r#"
[[table]]
name = "items"

[[table]]
name = "notes"
deletes = "hard"
"#;

const COLS: &str = "id, name, price, qty, ok, data, d, t, ts, tstz, u, j, f";

/// Hard values, as an application would write them into its SQLite file.
/// `{early_tstz}` is the second row's zoned timestamp ([`early_tstz`]).
const HARD_ROWS: &str = "
INSERT INTO items (id, name, price, qty, ok, data, d, t, ts, tstz, u, j, f) VALUES
 (9223372036854775807, 'Grüße 👋🏽 e' || char(769) || ' 日本', '-9999999999999999999999999999.9999999999',
  2147483647, 1, X'00FF0A0D', '1969-07-20', '23:59:59.999999', '2038-01-19 03:14:08.123456',
  '2024-03-10 12:00:00.000001+05:30', '6f1c8f9a-2b3c-4d5e-8f90-a1b2c3d4e5f6',
  '{\"a\": [1, {\"b\": \"ü\"}], \"n\": null}', 0.1),
 (-9223372036854775808, '', '0.0000000001', -2147483648, 0, X'', '2100-12-31', '00:00:00',
  '1900-01-01 00:00:00', '{early_tstz}', '00000000-0000-0000-0000-000000000000',
  '[]', -1.5e300),
 (3, 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
";

/// A zoned timestamp before 1970 in its own offset. MySQL/MariaDB `TIMESTAMP`
/// holds only 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC (a server
/// limit; `types.rs` checks that a value outside it is refused, never
/// stored differently), so there it is the earliest instant the type holds,
/// written at -08:00, where it is still 1969.
fn early_tstz(backend: Backend) -> &'static str {
    match backend {
        Backend::Mysql => "1969-12-31 16:00:01.5-08:00",
        _ => "1950-06-01 23:30:00-08:00",
    }
}

fn hard_rows(backend: Backend) -> String {
    HARD_ROWS.replace("{early_tstz}", early_tstz(backend))
}

fn edge_items(env: &Env, node: &str) -> Vec<Vec<String>> {
    query_text(
        &env.edge(node),
        &format!("SELECT {COLS} FROM items ORDER BY id"),
    )
}

/// Values equal, allowing only what the central's type normalises: the
/// offset of a zoned timestamp (PostgreSQL keeps the instant) and JSON
/// formatting (jsonb re-serialises).
fn assert_same_values(a: &[Vec<String>], b: &[Vec<String>]) {
    assert_eq!(a.len(), b.len(), "row counts differ:\n{a:?}\n{b:?}");
    for (ra, rb) in a.iter().zip(b) {
        for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
            let same = x == y
                || (i == 9
                    && edgesync_core::value::parse_timestamptz(x)
                        == edgesync_core::value::parse_timestamptz(y))
                || (i == 11
                    && serde_json::from_str::<serde_json::Value>(x).ok()
                        == serde_json::from_str::<serde_json::Value>(y).ok());
            assert!(
                same,
                "column {i} differs: {x:?} vs {y:?} (rows {ra:?} / {rb:?})"
            );
        }
    }
}

async fn every_type_round_trips_edge_to_edge(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &ITEMS).await;
    env.write_config(TABLES, "");
    env.init().await;
    env.edge("a")
        .execute_batch(&hard_rows(backend))
        .expect("insert on edge a");
    let written = edge_items(&env, "a");
    env.sync_all(1).await;

    // The central holds exactly what the edge wrote.
    let central = env
        .central_query(Sql {
            sqlite: "SELECT id, name, price, ok, hex(data), ts, u FROM items ORDER BY id",
            postgres: "SELECT id, name, price, ok, upper(encode(data, 'hex')), ts, u FROM items ORDER BY id",
            mysql: "SELECT id, name, price, ok, hex(data), ts, u FROM items ORDER BY id",
        })
        .await;
    let n = |s: &str| s.to_string();
    assert_eq!(central[0][0], "-9223372036854775808");
    assert_eq!(central[0][2], "0.0000000001");
    assert_eq!(central[0][4], "");
    assert_eq!(central[1][1], "null", "the text 'null' must stay text");
    assert_eq!(central[1][2], "NULL");
    assert_eq!(central[2][1], n("Grüße 👋🏽 e\u{301} 日本"));
    assert_eq!(central[2][2], "-9999999999999999999999999999.9999999999");
    assert_eq!(central[2][3], "1");
    assert_eq!(central[2][4], "00FF0A0D");
    assert_eq!(central[2][5], "2038-01-19 03:14:08.123456");
    assert_eq!(central[2][6], "6f1c8f9a-2b3c-4d5e-8f90-a1b2c3d4e5f6");
    if backend != Backend::Sqlite {
        // The instant, in UTC (MySQL test sessions run in UTC).
        let tz = env
            .central_query(Sql {
                sqlite: "",
                postgres: "SELECT (tstz AT TIME ZONE 'UTC')::text, f FROM items WHERE id > 3",
                mysql: "SELECT tstz, f FROM items WHERE id > 3",
            })
            .await;
        assert_eq!(tz[0][0], "2024-03-10 06:30:00.000001");
        assert_eq!(tz[0][1], "0.1");
    }

    // And the other edge receives the same values.
    assert_same_values(&written, &edge_items(&env, "b"));
    // Empty string and NULL stay distinct.
    let b_name = query_text(
        &env.edge("b"),
        "SELECT name IS NULL, name FROM items WHERE id < 0",
    );
    assert_eq!(b_name, vec![vec!["0".to_string(), "".to_string()]]);
}

async fn central_changes_reach_every_edge(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &ITEMS).await;
    env.write_config(TABLES, "");
    env.init().await;
    env.sync_all(1).await;
    env.central_run(Sql {
        sqlite: "INSERT INTO items (id, name, price, ts, tstz, d, u, j, data, ok)
           VALUES (10, 'from hq', '12.5000000000', '2024-02-29 10:11:12.5', '2024-02-29 10:11:12.5+00:00', '1999-12-31', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"k\": \"v\"}', X'DEADBEEF', 1);
         INSERT INTO notes (id, body) VALUES (1, 'first'), (2, 'second');",
        postgres: "INSERT INTO items (id, name, price, ts, tstz, d, u, j, data, ok)
           VALUES (10, 'from hq', 12.5, '2024-02-29 10:11:12.5', '2024-02-29 10:11:12.5+00', '1999-12-31', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"k\": \"v\"}', '\\xdeadbeef', true);
         INSERT INTO notes (id, body) VALUES (1, 'first'), (2, 'second');",
        // MariaDB reads no offset in a literal: the session is UTC.
        mysql: "INSERT INTO items (id, name, price, ts, tstz, d, u, j, data, ok)
           VALUES (10, 'from hq', 12.5, '2024-02-29 10:11:12.5', '2024-02-29 10:11:12.5', '1999-12-31', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"k\": \"v\"}', X'DEADBEEF', true);
         INSERT INTO notes (id, body) VALUES (1, 'first'), (2, 'second');",
    })
    .await;
    env.sync_all(1).await;
    for node in ["a", "b"] {
        let rows = query_text(
            &env.edge(node),
            "SELECT id, name, price, ts, d, u, hex(data), ok, es_deleted FROM items",
        );
        assert_eq!(
            rows,
            vec![vec![
                "10",
                "from hq",
                "12.5000000000",
                "2024-02-29 10:11:12.500",
                "1999-12-31",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                "DEADBEEF",
                "1",
                "0"
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()],
            "edge {node}"
        );
        let tstz = query_text(&env.edge(node), "SELECT tstz, j FROM items");
        assert_eq!(
            edgesync_core::value::parse_timestamptz(&tstz[0][0]),
            edgesync_core::value::parse_timestamptz("2024-02-29 10:11:12.5Z")
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&tstz[0][1]).expect("json"),
            serde_json::json!({"k": "v"})
        );
    }
    // Central update and delete reach the edges.
    env.central_run(Sql::all(
        "UPDATE items SET name = 'renamed' WHERE id = 10; DELETE FROM notes WHERE id = 1; DELETE FROM items WHERE id = 10;",
    ))
    .await;
    env.sync_all(1).await;
    // On MySQL the application's DELETE removes the central row, so the
    // edges learn of the delete from its tombstone and keep the values they
    // last received (the rename happened in the same sync interval).
    let last_name = if backend.app_deletes_remove_central_rows() {
        "from hq"
    } else {
        "renamed"
    };
    for node in ["a", "b"] {
        let e = env.edge(node);
        assert_eq!(
            query_text(&e, "SELECT name, es_deleted FROM items"),
            vec![vec![last_name.to_string(), "1".to_string()]],
            "soft delete keeps the row with its marker on {node}"
        );
        assert_eq!(
            query_text(&e, "SELECT id, body FROM notes"),
            vec![vec!["2".to_string(), "second".to_string()]]
        );
    }
}

async fn edge_update_and_delete_reach_central_and_other_edges(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &ITEMS).await;
    env.write_config(TABLES, "");
    env.init().await;
    env.edge("a")
        .execute_batch("INSERT INTO items (id, name, qty) VALUES (1, 'one', 1), (2, 'two', 2); INSERT INTO notes (id, body) VALUES (1, 'n1'), (2, 'n2');")
        .expect("edge a writes");
    env.sync_all(1).await;
    env.edge("b")
        .execute_batch("UPDATE items SET qty = 20 WHERE id = 2; DELETE FROM items WHERE id = 1; DELETE FROM notes WHERE id = 2;")
        .expect("edge b writes");
    env.sync_all(2).await;
    let central = env
        .central_query(Sql::all(
            "SELECT id, qty, es_deleted FROM items ORDER BY id",
        ))
        .await;
    assert_eq!(
        central,
        vec![vec!["1", "1", "1"], vec!["2", "20", "0"]]
            .into_iter()
            .map(|r| r.into_iter().map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    let notes = env.central_query(Sql::all("SELECT id FROM notes")).await;
    assert_eq!(
        notes,
        vec![vec!["1".to_string()]],
        "hard delete removes the central row"
    );
    for node in ["a", "b"] {
        let e = env.edge(node);
        assert_eq!(
            query_text(&e, "SELECT id, qty, es_deleted FROM items ORDER BY id"),
            query_text(
                &env.edge("b"),
                "SELECT id, qty, es_deleted FROM items ORDER BY id"
            )
        );
        assert_eq!(
            query_text(&e, "SELECT id FROM notes"),
            vec![vec!["1".to_string()]],
            "edge {node}"
        );
    }
}

async fn offline_edits_on_both_sides_converge_and_a_second_sync_moves_nothing(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &ITEMS).await;
    env.write_config(TABLES, "batch_rows = 7\npage_rows = 5");
    env.central_run(Sql::all(&format!(
        "INSERT INTO items (id, name, qty) SELECT i, concat('c', i), i FROM {};",
        series(40)
    )))
    .await;
    env.init().await;
    env.sync_all(1).await;
    // offline: the central and both edges all write
    env.central_run(Sql::all(
        "UPDATE items SET name = 'hq' WHERE id <= 5; INSERT INTO items (id, name) VALUES (100, 'hq new');",
    ))
    .await;
    env.edge("a")
        .execute_batch("UPDATE items SET qty = qty * 10 WHERE id BETWEEN 10 AND 29; INSERT INTO items (id, name) VALUES (200, 'a new'); DELETE FROM items WHERE id = 40;")
        .expect("a");
    env.edge("b")
        .execute_batch("UPDATE items SET name = 'b' WHERE id BETWEEN 30 AND 35; INSERT INTO items (id, name) VALUES (300, 'b new');")
        .expect("b");
    env.sync_all(2).await;
    let a = edge_items(&env, "a");
    let b = edge_items(&env, "b");
    assert_eq!(a, b, "edges diverged");
    assert_eq!(a.len(), 43);
    let central = env
        .central_query(Sql {
            postgres: "SELECT count(*), sum(qty), sum(es_deleted::int) FROM items",
            ..Sql::all("SELECT count(*), sum(qty), sum(es_deleted) FROM items")
        })
        .await;
    let expected_qty: i64 = (1..=40)
        .map(|i| if (10..=29).contains(&i) { i * 10 } else { i })
        .sum();
    assert_eq!(
        central[0],
        vec!["43".to_string(), expected_qty.to_string(), "1".to_string()]
    );
    // nothing new: a further sync moves no rows
    for node in ["a", "b"] {
        let stats = env.sync_node(node).await;
        for s in stats {
            assert_eq!(
                (s.pushed, s.pulled),
                (0, 0),
                "{node}/{} moved rows on an idle sync",
                s.table
            );
        }
    }
}

async fn a_failing_push_changes_nothing_and_succeeds_once_fixed(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &ITEMS).await;
    env.write_config(TABLES, "batch_rows = 1000");
    env.init().await;
    env.sync_all(1).await;
    // A central constraint the edge does not know about rejects one row.
    env.central_run(Sql {
        sqlite: "CREATE TRIGGER no_bad BEFORE INSERT ON notes WHEN NEW.body = 'bad' BEGIN SELECT RAISE(ABORT, 'bad body'); END;",
        ..Sql::all("ALTER TABLE notes ADD CONSTRAINT no_bad CHECK (body <> 'bad');")
    })
    .await;
    env.edge("a")
        .execute_batch(
            "INSERT INTO notes (id, body) VALUES (1, 'good'), (2, 'bad'), (3, 'also good');",
        )
        .expect("edge writes");
    let e = env.engine_ok().await;
    let edge = &e.edges[0];
    let notes = edge
        .tables
        .iter()
        .find(|t| t.edge == "notes")
        .expect("notes");
    let central_count = || env.central_query(Sql::all("SELECT count(*) FROM notes"));

    // 1. The central transaction is atomic: the whole batch fails, nothing
    //    of it is written, and the edge's watermark does not move.
    let batch = edge
        .db
        .read_changes(notes, 1000)
        .await
        .expect("read")
        .expect("batch");
    assert_eq!(batch.changes.len(), 3);
    let err = e
        .central
        .push("a", notes, &batch)
        .await
        .expect_err("the batch must fail");
    assert_eq!(err.kind(), edgesync_core::ErrorKind::Constraint, "{err}");
    assert_eq!(
        central_count().await,
        vec![vec!["0".to_string()]],
        "central unchanged"
    );
    let wm = || {
        query_text(
            &env.edge("a"),
            "SELECT push_wm FROM es_state WHERE tbl = 'notes'",
        )
    };
    assert_eq!(
        wm(),
        vec![vec!["0".to_string()]],
        "the push watermark must not move"
    );

    // 2. The engine routes around the poison row: the others flow, the bad
    //    one is quarantined with the central's error, not dropped.
    let stats = edgesync::engine::sync::sync_all(&e).await;
    let s = stats
        .iter()
        .find(|s| s.table == "notes")
        .expect("notes stats");
    assert!(s.error.is_none(), "{stats:?}");
    assert_eq!((s.pushed, s.quarantined), (2, 1), "{stats:?}");
    let bodies = || env.central_query(Sql::all("SELECT body FROM notes ORDER BY id"));
    assert_eq!(
        bodies().await,
        vec![vec!["good".to_string()], vec!["also good".to_string()]]
    );
    let parked = edge.db.quarantined(notes).await.expect("list");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].key, "id=2");
    assert!(
        parked[0].error.contains("no_bad") || parked[0].error.contains("bad body"),
        "{}",
        parked[0].error
    );
    // later changes keep flowing past it
    env.edge("a")
        .execute_batch("INSERT INTO notes (id, body) VALUES (4, 'later');")
        .expect("write");
    env.sync_node("a").await;
    assert_eq!(bodies().await.len(), 3);
    // a central change to the quarantined key does not overwrite the local row
    env.central_run(Sql::all(
        "INSERT INTO notes (id, body) VALUES (2, 'central two');",
    ))
    .await;
    env.sync_node("a").await;
    assert_eq!(
        query_text(&env.edge("a"), "SELECT body FROM notes WHERE id = 2"),
        vec![vec!["bad".to_string()]],
        "a quarantined row keeps its local values until it is retried"
    );

    // 3. Once the cause is fixed, a retry on request pushes it, judged by the
    //    table's policy against the central row written meanwhile.
    env.central_run(Sql {
        sqlite: "DROP TRIGGER no_bad;",
        ..Sql::all("ALTER TABLE notes DROP CONSTRAINT no_bad;")
    })
    .await;
    assert_eq!(edge.db.requeue_quarantined(notes).await.expect("retry"), 1);
    assert!(edge.db.quarantined(notes).await.expect("list").is_empty());
    env.sync_all(1).await;
    let central = env
        .central_query(Sql::all("SELECT id, body FROM notes ORDER BY id"))
        .await;
    let edge_rows = query_text(&env.edge("a"), "SELECT id, body FROM notes ORDER BY id");
    assert_eq!(central, edge_rows, "converged after the retry");
    assert_eq!(central.len(), 4);
}

async fn an_interrupted_initial_load_resumes_from_its_last_page(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &ITEMS).await;
    env.write_config(TABLES, "page_rows = 10");
    env.central_run(Sql::all(&format!(
        "INSERT INTO items (id, name) SELECT i, concat('r', i) FROM {};",
        series(95)
    )))
    .await;
    env.init().await;
    let e = env.engine_ok().await;
    let edge = &e.edges[0];
    let table = edge
        .tables
        .iter()
        .find(|t| t.edge == "items")
        .expect("items");
    // Apply three pages, then "crash" (stop without finishing the pass).
    let mut token = edge.db.pull_token(table).await.expect("token");
    for _ in 0..3 {
        let page = e
            .central
            .pull("a", table, token.as_deref(), 10)
            .await
            .expect("pull");
        assert!(!page.done);
        edge.db.apply_pull(table, &page).await.expect("apply");
        token = Some(page.token);
    }
    let have = query_text(&env.edge("a"), "SELECT count(*) FROM items");
    assert_eq!(have, vec![vec!["30".to_string()]]);
    drop(e);
    // A new process resumes: the next sync fetches the remaining 65 rows only.
    let stats = env.sync_node("a").await;
    let items = stats.iter().find(|s| s.table == "items").expect("items");
    assert_eq!(
        items.pulled, 65,
        "resumed load should fetch only what is missing"
    );
    let have = query_text(
        &env.edge("a"),
        "SELECT count(*), min(id), max(id) FROM items",
    );
    assert_eq!(
        have,
        vec![vec!["95".to_string(), "1".to_string(), "95".to_string()]]
    );
}

for_each_backend_and_hub!(
    every_type_round_trips_edge_to_edge,
    central_changes_reach_every_edge,
    edge_update_and_delete_reach_central_and_other_edges,
    offline_edits_on_both_sides_converge_and_a_second_sync_moves_nothing,
    a_failing_push_changes_nothing_and_succeeds_once_fixed,
    an_interrupted_initial_load_resumes_from_its_last_page,
);
