//! Conflict resolution, end to end: every strategy against every case, on a
//! soft-delete and a hard-delete table, with a SQLite, a PostgreSQL and a
//! MariaDB central; the hybrid logical clock under skew and across restarts;
//! field-merge per column; the manual queue through the real binary; the
//! conflict log's retention.
//!
//! Scenario of the strategy table: two edges, `a` and `b`. Both start from
//! the same synced rows. `b` writes first and syncs (the central takes its
//! writes without conflict); then `a`, whose clock is 60 s ahead (so its
//! writes are the HLC-later ones), writes the same rows and syncs, meeting
//! `b`'s writes as conflicts. One row of `a` is written again while its push
//! is in flight. Then everybody syncs until quiet, and the central and both
//! edges must hold exactly the expected rows.

use edgesync::engine::{sync, Selection};
use edgesync_core::{hlc, ConflictRecord, Value};

use crate::common::{query_text, Backend, Env, Sql};
use crate::for_each_backend_and_hub;

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE soft_items (id INTEGER PRIMARY KEY, name TEXT, price DECIMAL_TEXT(10,2), qty INTEGER);
             CREATE TABLE hard_items (id INTEGER PRIMARY KEY, name TEXT, price DECIMAL_TEXT(10,2), qty INTEGER);",
    postgres: "CREATE TABLE soft_items (id bigint PRIMARY KEY, name text, price numeric(10,2), qty integer);
               CREATE TABLE hard_items (id bigint PRIMARY KEY, name text, price numeric(10,2), qty integer);",
    mysql: "CREATE TABLE soft_items (id bigint PRIMARY KEY, name longtext, price decimal(10,2), qty int);
            CREATE TABLE hard_items (id bigint PRIMARY KEY, name longtext, price decimal(10,2), qty int);",
};

const TABLES: [&str; 2] = ["soft_items", "hard_items"];

fn tables_toml(policy: &str) -> String {
    format!(
        "[[table]]\nname = \"soft_items\"\nconflict = \"{policy}\"\n\n\
         [[table]]\nname = \"hard_items\"\ndeletes = \"hard\"\nconflict = \"{policy}\"\n"
    )
}

/// The cases, one row key each.
const CASES: [(i64, &str); 7] = [
    (1, "update/update same column"),
    (2, "update/update different columns"),
    (3, "update/delete (edge updates, central deleted)"),
    (4, "delete/update (edge deletes, central updated)"),
    (5, "delete/delete"),
    (6, "insert/insert of the same key"),
    (7, "changed again while its push was in flight"),
];

/// What `b` writes (and syncs first), per table.
fn b_writes(t: &str) -> String {
    format!(
        "UPDATE {t} SET qty = 2 WHERE id = 1;
         UPDATE {t} SET price = '2.00' WHERE id = 2;
         DELETE FROM {t} WHERE id = 3;
         UPDATE {t} SET qty = 2 WHERE id = 4;
         DELETE FROM {t} WHERE id = 5;
         INSERT INTO {t} (id, name, price, qty) VALUES (6, 'b', '2.00', 2);
         UPDATE {t} SET price = '2.00' WHERE id = 7;"
    )
}

/// What `a` writes before its push is read, per table.
fn a_writes(t: &str) -> String {
    format!(
        "UPDATE {t} SET qty = 3 WHERE id = 1;
         UPDATE {t} SET qty = 3 WHERE id = 2;
         UPDATE {t} SET qty = 3 WHERE id = 3;
         DELETE FROM {t} WHERE id = 4;
         DELETE FROM {t} WHERE id = 5;
         INSERT INTO {t} (id, name, price, qty) VALUES (6, 'a', '3.00', 3);
         UPDATE {t} SET qty = 3 WHERE id = 7;"
    )
}

/// What `a` writes while its push is in flight.
fn a_in_flight(t: &str) -> String {
    format!("UPDATE {t} SET name = 'a2' WHERE id = 7;")
}

/// The end state of one key: a live row (name, price, qty), or a deleted one
/// (a soft-delete table keeps it with these values and `es_deleted = 1`; a
/// hard-delete table has no row).
#[derive(Debug, Clone, Copy)]
enum End {
    Row(&'static str, &'static str, i64),
    Deleted(&'static str, &'static str, i64),
}
use End::{Deleted as D, Row as R};

/// One strategy's expectations for the seven cases, on the soft-delete and
/// the hard-delete table, and how many conflicts each case logs.
struct Expect {
    policy: &'static str,
    soft: [End; 7],
    hard: [End; 7],
    conflicts: [usize; 7],
}

// `a` is the HLC-later writer in every case. The hard table differs from the
// soft one only where a delete is kept: the row is then gone.
#[rustfmt::skip]
const SERVER_WINS: Expect = Expect {
    policy: "server-wins",
    soft: [R("base", "1.00", 2), R("base", "2.00", 1), D("base", "1.00", 1), R("base", "1.00", 2), D("base", "1.00", 1), R("b", "2.00", 2), R("base", "2.00", 1)],
    hard: [R("base", "1.00", 2), R("base", "2.00", 1), D("base", "1.00", 1), R("base", "1.00", 2), D("base", "1.00", 1), R("b", "2.00", 2), R("base", "2.00", 1)],
    // in flight: the first push loses but the row was written again, so
    // the next push meets the conflict once more (and loses again)
    conflicts: [1, 1, 1, 1, 0, 1, 2],
};
#[rustfmt::skip]
const CLIENT_WINS: Expect = Expect {
    policy: "client-wins",
    // row level: update/update of different columns takes a's whole row
    soft: [R("base", "1.00", 3), R("base", "1.00", 3), R("base", "1.00", 3), D("base", "1.00", 1), D("base", "1.00", 1), R("a", "3.00", 3), R("a2", "1.00", 3)],
    hard: [R("base", "1.00", 3), R("base", "1.00", 3), R("base", "1.00", 3), D("base", "1.00", 1), D("base", "1.00", 1), R("a", "3.00", 3), R("a2", "1.00", 3)],
    conflicts: [1, 1, 1, 1, 0, 1, 1],
};
#[rustfmt::skip]
const LAST_WRITE_WINS: Expect = Expect {
    policy: "last-write-wins",
    soft: CLIENT_WINS.soft,
    hard: CLIENT_WINS.hard,
    conflicts: [1, 1, 1, 1, 0, 1, 1],
};
#[rustfmt::skip]
const FIELD_MERGE: Expect = Expect {
    policy: "field-merge",
    // per column: b's price and a's qty both survive; a delete on either
    // side, or no base (insert/insert), falls back to last-write-wins
    soft: [R("base", "1.00", 3), R("base", "2.00", 3), R("base", "1.00", 3), D("base", "1.00", 1), D("base", "1.00", 1), R("a", "3.00", 3), R("a2", "2.00", 3)],
    hard: [R("base", "1.00", 3), R("base", "2.00", 3), R("base", "1.00", 3), D("base", "1.00", 1), D("base", "1.00", 1), R("a", "3.00", 3), R("a2", "2.00", 3)],
    // in flight: merged once with the pushed row, then again with the
    // later write against the same base
    conflicts: [1, 1, 1, 1, 0, 1, 2],
};
#[rustfmt::skip]
const MANUAL: Expect = Expect {
    policy: "manual",
    soft: SERVER_WINS.soft,
    hard: SERVER_WINS.hard,
    conflicts: [1, 1, 1, 1, 0, 1, 2],
};

fn expected_rows(ends: &[End; 7], hard: bool) -> Vec<Vec<String>> {
    CASES
        .iter()
        .zip(ends)
        .filter_map(|(&(id, _), end)| {
            let (name, price, qty, deleted) = match *end {
                R(n, p, q) => (n, p, q, "0"),
                D(_, _, _) if hard => return None,
                D(n, p, q) => (n, p, q, "1"),
            };
            Some(vec![
                id.to_string(),
                name.to_string(),
                price.to_string(),
                qty.to_string(),
                deleted.to_string(),
            ])
        })
        .collect()
}

async fn central_table(env: &Env, t: &str) -> Vec<Vec<String>> {
    env.central_query(Sql::all(&format!(
        "SELECT id, name, price, qty, es_deleted FROM {t} ORDER BY id"
    )))
    .await
}

fn edge_table(env: &Env, node: &str, t: &str) -> Vec<Vec<String>> {
    query_text(
        &env.edge(node),
        &format!("SELECT id, name, price, qty, es_deleted FROM {t} ORDER BY id"),
    )
}

fn set_skew(env: &Env, node: &str, ms: i64) {
    env.edge(node)
        .execute("UPDATE es_ctl SET clock_skew_ms = ?1", [ms])
        .expect("clock skew");
}

async fn all_conflicts(env: &Env) -> Vec<ConflictRecord> {
    env.engine_ok()
        .await
        .central
        .conflicts(true, 10_000)
        .await
        .expect("conflict log")
}

fn key_id(c: &ConflictRecord) -> i64 {
    match c.key.first() {
        Some((_, Value::Int(i))) => *i,
        other => panic!("unexpected key {other:?}"),
    }
}

fn named(row: &[(&str, Value)]) -> Option<Vec<(String, Value)>> {
    Some(
        row.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn item(id: i64, name: &str, price: &str, qty: i64) -> Option<Vec<(String, Value)>> {
    named(&[
        ("id", Value::Int(id)),
        ("name", Value::Text(name.into())),
        ("price", Value::Decimal(price.into())),
        ("qty", Value::Int(qty)),
    ])
}

/// Run the scenario for one strategy and check every row, everywhere, and
/// the conflict log.
async fn strategy_table(backend: Backend, expect: &Expect) {
    let mut env = Env::new(backend, &["a", "b"], &DDL).await;
    env.write_config(&tables_toml(expect.policy), "batch_rows = 1000");
    for t in TABLES {
        env.central_run(Sql::all(&format!(
            "INSERT INTO {t} (id, name, price, qty) VALUES (1, 'base', '1.00', 1), (2, 'base', '1.00', 1), (3, 'base', '1.00', 1), (4, 'base', '1.00', 1), (5, 'base', '1.00', 1), (7, 'base', '1.00', 1);"
        )))
        .await;
    }
    env.init().await;
    env.sync_all(1).await;
    set_skew(&env, "a", 60_000);

    for t in TABLES {
        env.edge("b").execute_batch(&b_writes(t)).expect("b writes");
    }
    env.sync_node("b").await;
    for t in TABLES {
        env.edge("a").execute_batch(&a_writes(t)).expect("a writes");
    }
    // a's push, with a row written again between reading the batch and
    // recording the central's answer.
    {
        let engine = env
            .engine(Selection {
                node: Some("a".into()),
                table: None,
            })
            .await
            .expect("engine");
        let edge = &engine.edges[0];
        for table in &edge.tables {
            let batch = edge
                .db
                .read_changes(table, 1000)
                .await
                .expect("read")
                .expect("a has changes");
            env.edge("a")
                .execute_batch(&a_in_flight(&table.edge))
                .expect("in-flight write");
            let result = engine
                .central
                .push("a", table, &batch)
                .await
                .expect("push never fails on a conflict");
            edge.db.ack_push(table, &batch, &result).await.expect("ack");
        }
    }
    for node in ["a", "b", "a", "b"] {
        env.sync_node(node).await;
    }

    for t in TABLES {
        let hard = t == "hard_items";
        let ends = if hard { &expect.hard } else { &expect.soft };
        let want = expected_rows(ends, hard);
        let central = central_table(&env, t).await;
        for (i, &(id, case)) in CASES.iter().enumerate() {
            let pick = |rows: &[Vec<String>]| rows.iter().find(|r| r[0] == id.to_string()).cloned();
            let w = pick(&want);
            assert_eq!(
                pick(&central),
                w,
                "{}: {t}, case {case}: central (expected {:?})",
                expect.policy,
                ends[i]
            );
            for node in ["a", "b"] {
                assert_eq!(
                    pick(&edge_table(&env, node, t)),
                    w,
                    "{}: {t}, case {case}: edge {node}",
                    expect.policy
                );
            }
        }
        // nothing else anywhere
        assert_eq!(central, want, "{}: {t}: central", expect.policy);
        for node in ["a", "b"] {
            assert_eq!(
                edge_table(&env, node, t),
                want,
                "{}: {t}: edge {node}",
                expect.policy
            );
        }
    }

    // The conflict log: the expected number per case, all from a, each with
    // its base (none for insert/insert), open only under manual.
    let log = all_conflicts(&env).await;
    for t in TABLES {
        for (i, &(id, case)) in CASES.iter().enumerate() {
            let of_case: Vec<&ConflictRecord> = log
                .iter()
                .filter(|c| c.table.ends_with(t) && key_id(c) == id)
                .collect();
            assert_eq!(
                of_case.len(),
                expect.conflicts[i],
                "{}: {t}, case {case}: conflicts logged: {of_case:#?}",
                expect.policy
            );
            for c in of_case {
                assert_eq!(c.node, "a");
                assert_eq!(c.strategy.as_str(), expect.policy);
                assert_eq!(c.open, expect.policy == "manual", "{c:?}");
                assert_eq!(c.resolved_at.is_some(), !c.open, "{c:?}");
                assert!(
                    c.local_hlc > c.central_hlc,
                    "a's write is the later one: {c:?}"
                );
                if id == 6 {
                    assert_eq!(c.base, None, "insert/insert has no base: {c:?}");
                    assert_eq!(c.base_version, None);
                } else if id != 7 || c.base.is_some() {
                    assert_eq!(c.base, item(id, "base", "1.00", 1), "{case}: base: {c:?}");
                }
            }
        }
    }
    if expect.policy == "field-merge" {
        let c = log
            .iter()
            .find(|c| c.table.ends_with("soft_items") && key_id(c) == 2)
            .expect("update/update different columns");
        assert_eq!(c.local, item(2, "base", "1.00", 3));
        assert_eq!(c.central, item(2, "base", "2.00", 1));
        assert_eq!(c.result, item(2, "base", "2.00", 3));
    }
}

async fn server_wins_cases(backend: Backend) {
    strategy_table(backend, &SERVER_WINS).await;
}
async fn client_wins_cases(backend: Backend) {
    strategy_table(backend, &CLIENT_WINS).await;
}
async fn last_write_wins_cases(backend: Backend) {
    strategy_table(backend, &LAST_WRITE_WINS).await;
}
async fn field_merge_cases(backend: Backend) {
    strategy_table(backend, &FIELD_MERGE).await;
}
async fn manual_cases(backend: Backend) {
    strategy_table(backend, &MANUAL).await;
}

// ---------------------------------------------------------------------------

const ITEMS: Sql = Sql {
    sqlite: "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price DECIMAL_TEXT(10,2), qty INTEGER);
             INSERT INTO items VALUES (1, 'base', '1.00', 1), (2, 'base', '1.00', 1), (3, 'base', '1.00', 1);",
    postgres: "CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(10,2), qty integer);
               INSERT INTO items VALUES (1, 'base', 1.00, 1), (2, 'base', 1.00, 1), (3, 'base', 1.00, 1);",
    mysql: "CREATE TABLE items (id bigint PRIMARY KEY, name longtext, price decimal(10,2), qty int);
            INSERT INTO items VALUES (1, 'base', 1.00, 1), (2, 'base', 1.00, 1), (3, 'base', 1.00, 1);",
};

fn items_toml(policy: &str) -> String {
    format!("[[table]]\nname = \"items\"\nconflict = \"{policy}\"\n")
}

async fn central_item(env: &Env, id: i64) -> Vec<String> {
    env.central_query(Sql::all(&format!(
        "SELECT name, price, qty, es_deleted, es_hlc FROM items WHERE id = {id}"
    )))
    .await
    .pop()
    .expect("central row")
}

fn edge_item(env: &Env, node: &str, id: i64) -> Vec<String> {
    query_text(
        &env.edge(node),
        &format!("SELECT name, price, qty, es_deleted, es_hlc FROM items WHERE id = {id}"),
    )
    .pop()
    .expect("edge row")
}

/// name, price, qty, deleted (without the stamp).
fn values(row: &[String]) -> Vec<&str> {
    row[..4].iter().map(String::as_str).collect()
}

fn stamp(row: &[String]) -> i64 {
    row[4].parse().expect("es_hlc")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Edge `a`'s wall clock runs three hours ahead. `b` receives `a`'s write
/// and edits the row after that, with its correct clock: by HLC its write is
/// the later one and wins, where wall clocks would have let `a` win. A
/// central application write made after seeing it sorts after it too.
async fn last_write_wins_follows_the_hlc_under_clock_skew(backend: Backend) {
    const THREE_HOURS: i64 = 3 * 3600 * 1000;
    let mut env = Env::new(backend, &["a", "b"], &ITEMS).await;
    env.write_config(&items_toml("last-write-wins"), "");
    env.init().await;
    env.sync_all(1).await;
    set_skew(&env, "a", THREE_HOURS);
    // b has an unpushed change of the row (so its pull will not overwrite
    // it, and its next push conflicts with a's write).
    env.edge("b")
        .execute_batch("UPDATE items SET name = 'b-early' WHERE id = 1;")
        .expect("b");
    env.edge("a")
        .execute_batch("UPDATE items SET qty = 5 WHERE id = 1;")
        .expect("a");
    let a_stamp = stamp(&edge_item(&env, "a", 1));
    assert!(
        hlc::millis(a_stamp) > now_ms() + THREE_HOURS - 60_000,
        "a's clock is ahead"
    );
    env.sync_node("a").await;
    assert_eq!(stamp(&central_item(&env, 1).await), a_stamp);

    // b pulls (only): its clock learns a's stamp; then it edits the row.
    {
        let engine = env
            .engine(Selection {
                node: Some("b".into()),
                table: None,
            })
            .await
            .expect("engine");
        let edge = &engine.edges[0];
        let mut stats = sync::TableStats::default();
        sync::pull_table(
            engine.central.as_ref(),
            &edge.db,
            "b",
            &edge.tables[0],
            100,
            &mut stats,
        )
        .await
        .expect("pull");
    }
    env.edge("b")
        .execute_batch("UPDATE items SET qty = 6 WHERE id = 1;")
        .expect("b edits after seeing a's write");
    let b_stamp = stamp(&edge_item(&env, "b", 1));
    assert!(
        b_stamp > a_stamp,
        "b's write follows a's: {} vs {}",
        hlc::display(b_stamp),
        hlc::display(a_stamp)
    );
    assert!(
        hlc::millis(b_stamp) > now_ms() + 60_000,
        "b's wall clock alone would have lost"
    );
    env.sync_node("b").await;
    env.sync_node("a").await;
    for row in [
        central_item(&env, 1).await,
        edge_item(&env, "a", 1),
        edge_item(&env, "b", 1),
    ] {
        assert_eq!(
            values(&row),
            ["b-early", "1.00", "6", "0"],
            "b's write wins everywhere"
        );
        assert_eq!(stamp(&row), b_stamp);
    }
    let log = all_conflicts(&env).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(
        (log[0].node.as_str(), log[0].local_hlc, log[0].central_hlc),
        ("b", b_stamp, a_stamp)
    );
    assert_eq!(log[0].result, item(1, "b-early", "1.00", 6));

    // A central application write after that: its stamp follows the row's,
    // though the central's wall clock is three hours behind it.
    env.central_run(Sql::all("UPDATE items SET name = 'hq' WHERE id = 1;"))
        .await;
    let hq = central_item(&env, 1).await;
    assert!(
        stamp(&hq) > b_stamp,
        "central write {} after {}",
        hlc::display(stamp(&hq)),
        hlc::display(b_stamp)
    );
    // and so does a delete's tombstone on a hard table... and the edges
    // take the central write
    env.sync_all(1).await;
    assert_eq!(values(&edge_item(&env, "a", 1)), ["hq", "1.00", "6", "0"]);
}

/// The stamps an edge hands out never go backwards, across a restart of
/// everything (a new process) and a wall clock set back an hour.
async fn the_hlc_survives_a_restart(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &ITEMS).await;
    env.write_config(&items_toml("last-write-wins"), "");
    env.init().await;
    env.sync_all(1).await;
    env.edge("a")
        .execute_batch("UPDATE items SET qty = 2 WHERE id = 1;")
        .expect("first write");
    let first = stamp(&edge_item(&env, "a", 1));
    // a new process syncs it
    let out = env.cli(&["sync"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    assert_eq!(stamp(&central_item(&env, 1).await), first);
    // "reboot" with the clock an hour slow, write again
    set_skew(&env, "a", -3_600_000);
    env.edge("a")
        .execute_batch("UPDATE items SET qty = 3 WHERE id = 1;")
        .expect("second write");
    let second = stamp(&edge_item(&env, "a", 1));
    assert!(
        second > first,
        "{} must follow {}",
        hlc::display(second),
        hlc::display(first)
    );
    // a write to another row too
    env.edge("a")
        .execute_batch("UPDATE items SET qty = 3 WHERE id = 2;")
        .expect("third write");
    assert!(stamp(&edge_item(&env, "a", 2)) > second);
    let out = env.cli(&["sync"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let central = central_item(&env, 1).await;
    assert_eq!(
        (values(&central), stamp(&central)),
        (vec!["base", "1.00", "3", "0"], second)
    );
}

/// field-merge: the central changes `price` while an edge changes `qty`
/// offline: both survive. Then both change `qty`: the HLC-later write wins
/// that column, in either order, and each conflict is logged with base,
/// local, central and result rows.
async fn field_merge_keeps_both_sides_changes(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &ITEMS).await;
    env.write_config(&items_toml("field-merge"), "");
    env.init().await;
    env.sync_all(1).await;

    env.central_run(Sql::all("UPDATE items SET price = '2.50' WHERE id = 1;"))
        .await;
    env.edge("a")
        .execute_batch("UPDATE items SET qty = 5 WHERE id = 1;")
        .expect("a");
    env.sync_all(1).await;
    assert_eq!(
        values(&central_item(&env, 1).await),
        ["base", "2.50", "5", "0"]
    );
    for node in ["a", "b"] {
        assert_eq!(
            values(&edge_item(&env, node, 1)),
            ["base", "2.50", "5", "0"],
            "edge {node}"
        );
    }
    let log = all_conflicts(&env).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    let c = &log[0];
    assert_eq!(c.strategy.as_str(), "field-merge");
    assert_eq!(c.base, item(1, "base", "1.00", 1));
    assert_eq!(c.local, item(1, "base", "1.00", 5));
    assert_eq!(c.central, item(1, "base", "2.50", 1));
    assert_eq!(c.result, item(1, "base", "2.50", 5));

    // Both change qty; the central's write is the later one (a's clock is a
    // minute slow, and the central writes afterwards).
    set_skew(&env, "a", -60_000);
    env.edge("a")
        .execute_batch("UPDATE items SET qty = 7, name = 'a-name' WHERE id = 1;")
        .expect("a");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    env.central_run(Sql::all("UPDATE items SET qty = 9 WHERE id = 1;"))
        .await;
    env.sync_all(1).await;
    for row in [
        central_item(&env, 1).await,
        edge_item(&env, "a", 1),
        edge_item(&env, "b", 1),
    ] {
        assert_eq!(
            values(&row),
            ["a-name", "2.50", "9", "0"],
            "the central's later qty wins; a's name stays"
        );
    }
    let log = all_conflicts(&env).await;
    assert_eq!(log.len(), 2);
    let c = &log[0];
    assert!(c.central_hlc > c.local_hlc, "{c:?}");
    assert_eq!(c.base, item(1, "base", "2.50", 5));
    assert_eq!(c.local, item(1, "a-name", "2.50", 7));
    assert_eq!(c.central, item(1, "base", "2.50", 9));
    assert_eq!(c.result, item(1, "a-name", "2.50", 9));

    // And the other way round: a's clock an hour ahead makes its qty later.
    env.central_run(Sql::all("UPDATE items SET qty = 13 WHERE id = 1;"))
        .await;
    set_skew(&env, "a", 3_600_000);
    env.edge("a")
        .execute_batch("UPDATE items SET qty = 11 WHERE id = 1;")
        .expect("a");
    env.sync_all(1).await;
    for row in [
        central_item(&env, 1).await,
        edge_item(&env, "a", 1),
        edge_item(&env, "b", 1),
    ] {
        assert_eq!(
            values(&row),
            ["a-name", "2.50", "11", "0"],
            "a's later qty wins"
        );
    }
    let log = all_conflicts(&env).await;
    assert_eq!(log.len(), 3);
    let c = &log[0];
    assert!(c.local_hlc > c.central_hlc, "{c:?}");
    assert_eq!(c.base, item(1, "a-name", "2.50", 9));
    assert_eq!(c.local, item(1, "a-name", "2.50", 11));
    assert_eq!(c.central, item(1, "a-name", "2.50", 13));
    assert_eq!(c.result, item(1, "a-name", "2.50", 11));
    // a field-merge push moves only a's changes: a second sync moves nothing
    for node in ["a", "b"] {
        for s in env.sync_node(node).await {
            assert_eq!(
                (s.pushed, s.pulled, s.conflicts),
                (0, 0, 0),
                "{node}: {s:?}"
            );
        }
    }
}

/// A field-merge push whose answer is lost: the re-sent batch is a replay,
/// answered with the merged row (not `Applied`: the central does not hold
/// what the edge sent), which the edge then takes. Logged once.
async fn a_lost_answer_to_a_merged_push_is_answered_with_the_merge(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &ITEMS).await;
    env.write_config(&items_toml("field-merge"), "");
    env.init().await;
    env.sync_all(1).await;
    env.central_run(Sql::all("UPDATE items SET price = '2.50' WHERE id = 1;"))
        .await;
    env.edge("a")
        .execute_batch("UPDATE items SET qty = 5 WHERE id = 1;")
        .expect("a");
    {
        let engine = env
            .engine(Selection {
                node: Some("a".into()),
                table: None,
            })
            .await
            .expect("engine");
        let edge = &engine.edges[0];
        let batch = edge
            .db
            .read_changes(&edge.tables[0], 100)
            .await
            .expect("read")
            .expect("changes");
        let lost = engine
            .central
            .push("a", &edge.tables[0], &batch)
            .await
            .expect("push");
        assert!(matches!(
            lost.outcomes[0],
            edgesync_core::PushOutcome::Superseded { row: Some(_) }
        ));
        // the answer never reaches the edge
    }
    assert_eq!(values(&edge_item(&env, "a", 1)), ["base", "1.00", "5", "0"]);
    let stats = env.sync_node("a").await;
    assert_eq!(stats[0].conflicts, 0, "a replay is not judged again");
    env.sync_node("b").await;
    for row in [
        central_item(&env, 1).await,
        edge_item(&env, "a", 1),
        edge_item(&env, "b", 1),
    ] {
        assert_eq!(values(&row), ["base", "2.50", "5", "0"]);
    }
    assert_eq!(all_conflicts(&env).await.len(), 1);
    for node in ["a", "b"] {
        for s in env.sync_node(node).await {
            assert_eq!((s.pushed, s.pulled), (0, 0), "{node}: {s:?}");
        }
    }
}

fn cli_json(env: &Env, args: &[&str]) -> Vec<ConflictRecord> {
    let out = env.cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        crate::common::stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("conflicts list --json")
}

/// manual: conflicts are parked and listed by the real binary; `resolve
/// --keep local` and `--keep central` each bring every edge to the kept
/// version on its next sync.
async fn manual_conflicts_are_listed_and_resolved_from_the_cli(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &ITEMS).await;
    env.write_config(&items_toml("manual"), "");
    env.init().await;
    env.sync_all(1).await;
    env.edge("b")
        .execute_batch("UPDATE items SET qty = 2 WHERE id IN (1, 2, 3);")
        .expect("b");
    env.sync_node("b").await;
    env.edge("a")
        .execute_batch(
            "UPDATE items SET qty = 3 WHERE id = 1; UPDATE items SET name = 'mine' WHERE id = 2;
             DELETE FROM items WHERE id = 3;",
        )
        .expect("a");
    env.sync_node("a").await;
    // The central value stays, and a shows it until someone decides.
    for id in 1..=3 {
        assert_eq!(
            values(&central_item(&env, id).await),
            ["base", "1.00", "2", "0"]
        );
        assert_eq!(
            values(&edge_item(&env, "a", id)),
            ["base", "1.00", "2", "0"],
            "a shows the central row {id}"
        );
    }
    let open = cli_json(&env, &["conflicts", "list", "--json"]);
    assert_eq!(open.len(), 3, "{open:#?}");
    let by_id = |id: i64| {
        open.iter()
            .find(|c| key_id(c) == id)
            .expect("conflict")
            .clone()
    };
    let (c1, c2, c3) = (by_id(1), by_id(2), by_id(3));
    for c in [&c1, &c2, &c3] {
        assert!(
            c.open && c.node == "a" && c.strategy.as_str() == "manual",
            "{c:?}"
        );
        assert_eq!(c.base, item(key_id(c), "base", "1.00", 1));
        assert_eq!(c.central, item(key_id(c), "base", "1.00", 2));
    }
    assert_eq!(c1.local, item(1, "base", "1.00", 3));
    assert_eq!(c3.local, None, "a deleted row 3");
    let text = env.cli(&["conflicts", "list"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("#{} ", c1.id)) && text.contains("[open]"),
        "{text}"
    );
    // status flags them
    let status = env.cli(&["status"]);
    assert_eq!(
        status.status.code(),
        Some(1),
        "open conflicts need attention"
    );

    for (c, keep) in [(&c1, "local"), (&c2, "central"), (&c3, "local")] {
        let id = c.id.to_string();
        // Where the central is administered: the hub, in a hub run.
        let out = env.central_cli(&["conflicts", "resolve", &id, "--keep", keep]);
        assert!(
            out.status.success(),
            "resolve {id}: {}",
            crate::common::stderr(&out)
        );
    }
    let again = env.central_cli(&[
        "conflicts",
        "resolve",
        &c2.id.to_string(),
        "--keep",
        "local",
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        crate::common::stderr(&again).contains("already resolved"),
        "{}",
        crate::common::stderr(&again)
    );
    let missing = env.central_cli(&["conflicts", "resolve", "999999", "--keep", "local"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(crate::common::stderr(&missing).contains("#999999"));

    env.sync_all(1).await;
    let want = [
        (1, ["base", "1.00", "3", "0"]), // a's version kept
        (2, ["base", "1.00", "2", "0"]), // the central's kept
        (3, ["base", "1.00", "2", "1"]), // a's delete kept (soft)
    ];
    for (id, row) in want {
        // A kept delete is written as a central application's delete
        // (adapters/mysql/src/resolve.rs), which on MySQL removes the row:
        // the edges mark it deleted from its tombstone.
        if id == 3 && backend.app_deletes_remove_central_rows() {
            assert_eq!(
                env.central_query(Sql::all("SELECT id FROM items WHERE id = 3"))
                    .await,
                Vec::<Vec<String>>::new(),
                "central row 3"
            );
        } else {
            assert_eq!(
                values(&central_item(&env, id).await),
                row,
                "central row {id}"
            );
        }
        for node in ["a", "b"] {
            assert_eq!(
                values(&edge_item(&env, node, id)),
                row,
                "edge {node} row {id}"
            );
        }
    }
    assert!(cli_json(&env, &["conflicts", "list", "--json"]).is_empty());
    let all = cli_json(&env, &["conflicts", "list", "--json", "--all"]);
    assert_eq!(all.len(), 3);
    for c in &all {
        assert!(!c.open && c.resolved_at.is_some(), "{c:?}");
    }
    let r1 = all.iter().find(|c| c.id == c1.id).expect("c1");
    assert_eq!(r1.kept.map(|k| k.as_str()), Some("local"));
    assert_eq!(r1.result, c1.local);
    let r2 = all.iter().find(|c| c.id == c2.id).expect("c2");
    assert_eq!(r2.kept.map(|k| k.as_str()), Some("central"));
    assert_eq!(r2.result, c2.central);
    assert!(
        env.cli(&["status"]).status.success(),
        "nothing needs attention any more"
    );
}

/// Settled conflicts older than `sync.conflict_retention` are purged by a
/// sync; open ones and recent ones stay.
async fn settled_conflicts_are_purged_after_the_retention(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &DDL).await;
    env.write_config(
        "[[table]]\nname = \"soft_items\"\nconflict = \"server-wins\"\n\n\
         [[table]]\nname = \"hard_items\"\ndeletes = \"hard\"\nconflict = \"manual\"\n",
        "conflict_retention = \"30d\"",
    );
    for t in TABLES {
        env.central_run(Sql::all(&format!(
            "INSERT INTO {t} VALUES (1, 'base', '1.00', 1), (2, 'base', '1.00', 1);"
        )))
        .await;
    }
    env.init().await;
    env.sync_all(1).await;
    let clash = |id: i64| {
        let (b, a) = (
            format!("UPDATE soft_items SET qty = 2 WHERE id = {id}; UPDATE hard_items SET qty = 2 WHERE id = {id};"),
            format!("UPDATE soft_items SET qty = 3 WHERE id = {id}; UPDATE hard_items SET qty = 3 WHERE id = {id};"),
        );
        (b, a)
    };
    let (b, a) = clash(1);
    env.edge("b").execute_batch(&b).expect("b");
    env.sync_node("b").await;
    env.edge("a").execute_batch(&a).expect("a");
    env.sync_node("a").await;
    assert_eq!(all_conflicts(&env).await.len(), 2);
    // Both are 40 days old now.
    env.central_run(Sql {
        sqlite: "UPDATE es_conflicts SET at = strftime('%Y-%m-%d %H:%M:%f', 'now', '-40 days') || 'Z',
                                 resolved_at = CASE WHEN open THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f', 'now', '-40 days') || 'Z' END;",
        postgres: "UPDATE es_conflicts SET at = now() - interval '40 days',
                                 resolved_at = CASE WHEN open THEN NULL ELSE now() - interval '40 days' END;",
        mysql: "UPDATE es_conflicts SET at = UTC_TIMESTAMP(6) - INTERVAL 40 DAY,
                                 resolved_at = CASE WHEN is_open THEN NULL ELSE UTC_TIMESTAMP(6) - INTERVAL 40 DAY END;",
    })
    .await;
    // A fresh one on row 2.
    let (b, a) = clash(2);
    env.edge("b").execute_batch(&b).expect("b");
    env.sync_node("b").await;
    env.edge("a").execute_batch(&a).expect("a");
    env.sync_node("a").await;
    let log = all_conflicts(&env).await;
    let mut left: Vec<(String, i64, bool)> = log
        .iter()
        .map(|c| {
            (
                c.table.rsplit('.').next().unwrap_or_default().to_string(),
                key_id(c),
                c.open,
            )
        })
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![
            ("hard_items".to_string(), 1, true),
            ("hard_items".to_string(), 2, true),
            ("soft_items".to_string(), 2, false),
        ],
        "the old settled conflict is purged; the open one stays however old"
    );
    // Resolving the old open one settles it now: it is kept for 30 more days.
    let old_open = log.iter().find(|c| c.open && key_id(c) == 1).expect("open");
    let engine = env.engine_ok().await;
    let done = engine
        .central
        .resolve_conflict(old_open.id, edgesync_core::Keep::Central)
        .await
        .expect("resolve");
    assert!(!done.open && done.resolved_at.is_some());
    assert_eq!(
        engine
            .central
            .purge_conflicts(std::time::Duration::from_secs(30 * 86_400))
            .await
            .expect("purge"),
        0
    );
    // (stored times have millisecond precision)
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        engine
            .central
            .purge_conflicts(std::time::Duration::from_secs(0))
            .await
            .expect("purge"),
        2
    );
    assert_eq!(
        all_conflicts(&env).await.len(),
        1,
        "only the open one is left"
    );
}

for_each_backend_and_hub!(
    server_wins_cases,
    client_wins_cases,
    last_write_wins_cases,
    field_merge_cases,
    manual_cases,
    last_write_wins_follows_the_hlc_under_clock_skew,
    the_hlc_survives_a_restart,
    field_merge_keeps_both_sides_changes,
    a_lost_answer_to_a_merged_push_is_answered_with_the_merge,
    manual_conflicts_are_listed_and_resolved_from_the_cli;
    // Purging is the central's own job: through a hub it runs on the hub's
    // schedule, not in an edge's sync (src/hub/mod.rs).
    direct only: settled_conflicts_are_purged_after_the_retention,
);
