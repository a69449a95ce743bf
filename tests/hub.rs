//! Hub mode: edges sync through `edgesync serve` (a real process, real TLS
//! with a CA made in the test) to a SQLite or PostgreSQL central, with the
//! engine's guarantees unchanged; every refusal answers the right status,
//! writes nothing and is audited; the request decoder survives a fuzz pass.

pub(crate) mod harness;

use edgesync::hub::protocol as p;
use edgesync::hub::scope::Filter;
use edgesync::hub::{auth, transport::Reply};
use edgesync_core::{Central, Change, PushBatch, Value};
use harness::{error_body, now, raw, HubEnv};

use crate::common::{query_text, Backend, Env, Sql};
use crate::roundtrip::{ITEMS, TABLES};

/// Hub mode runs on the SQLite, PostgreSQL and MySQL/MariaDB centrals (the
/// ones with a `HubStore`).
macro_rules! hub_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_central {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Sqlite).await }
            )*
        }
        mod postgres_central {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Postgres).await }
            )*
        }
        mod mysql_central {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Mysql).await }
            )*
        }
    };
}

mod compression;
mod jwt;
mod store;

const COLS: &str = "id, name, price, qty, ok, data, d, t, ts, tstz, u, j, f";

/// Values that are easy to get wrong, written by an application on edge a.
const HARD_ROWS: &str = "
INSERT INTO items (id, name, price, qty, ok, data, d, t, ts, tstz, u, j, f) VALUES
 (9223372036854775807, 'Grüße 👋🏽 e' || char(769) || ' 日本', '-9999999999999999999999999999.9999999999',
  2147483647, 1, X'00FF0A0D', '1969-07-20', '23:59:59.999999', '2038-01-19 03:14:08.123456',
  '2024-03-10 12:00:00.000001+05:30', '6f1c8f9a-2b3c-4d5e-8f90-a1b2c3d4e5f6',
  '{\"a\": [1, {\"b\": \"ü\"}], \"n\": null}', 0.1),
 (-9223372036854775808, '', '0.0000000001', -2147483648, 0, X'', '2100-12-31', '00:00:00',
  '1900-01-01 00:00:00', '1950-06-01 23:30:00-08:00', '00000000-0000-0000-0000-000000000000',
  '[]', -1.5e300),
 (3, 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
";

fn edge_items(env: &Env, node: &str) -> Vec<Vec<String>> {
    query_text(
        &env.edge(node),
        &format!("SELECT {COLS} FROM items ORDER BY id"),
    )
}

/// Equal up to what the central normalises: a zoned timestamp's offset
/// (PostgreSQL keeps the instant) and JSON formatting (jsonb).
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
            assert!(same, "column {i} differs: {x:?} vs {y:?}");
        }
    }
}

fn rows(v: &[&[&str]]) -> Vec<Vec<String>> {
    v.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

async fn central(env: &Env, sqlite: &'static str, postgres: &'static str) -> Vec<Vec<String>> {
    env.central_query(Sql {
        sqlite,
        postgres,
        mysql: sqlite,
    })
    .await
}

async fn central_run(env: &Env, sql: &'static str) {
    env.central_run(Sql::all(sql)).await
}

// ---------------------------------------------------------------------------
// The foundation's and the conflicts' scenarios, through the hub
// ---------------------------------------------------------------------------

async fn every_type_round_trips_through_the_hub(backend: Backend) {
    let h = HubEnv::new(backend, &["a", "b"], &ITEMS, TABLES, "").await;
    // init-sync on an edge whose central is https:// creates its tables
    // from the schema the hub serves; the real binary, as an operator runs it.
    let out = h.env.cli(&["init-sync"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("central (hub): already in place"), "{said}");
    // MySQL's TIMESTAMP holds 1970 to 2038 only: a zoned timestamp from 1950
    // is refused there (by the central, as in direct mode).
    let hard_rows = match backend {
        Backend::Mysql => HARD_ROWS.replace("1950-06-01", "1990-06-01"),
        _ => HARD_ROWS.to_string(),
    };
    h.env
        .edge("a")
        .execute_batch(&hard_rows)
        .expect("edge a writes");
    let written = edge_items(&h.env, "a");
    let out = h.env.cli(&["sync", "--node", "a"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    h.env.sync_all(1).await;
    let c = central(
        &h.env,
        "SELECT id, name, price, hex(data), ts, u FROM items ORDER BY items.id",
        "SELECT id::text, name, price::text, upper(encode(data, 'hex')), ts::text, u::text FROM items ORDER BY items.id",
    )
    .await;
    assert_eq!(c[0][0], "-9223372036854775808");
    assert_eq!(c[0][2], "0.0000000001");
    assert_eq!(c[1][1], "null", "the text 'null' stays text");
    assert_eq!(c[1][2], "NULL");
    assert_eq!(c[2][1], "Grüße 👋🏽 e\u{301} 日本");
    assert_eq!(c[2][2], "-9999999999999999999999999999.9999999999");
    assert_eq!(c[2][3], "00FF0A0D");
    assert_eq!(c[2][4], "2038-01-19 03:14:08.123456");
    assert_same_values(&written, &edge_items(&h.env, "b"));
    // The hub audited both nodes' pushes and pulls.
    let audit = central(
        &h.env,
        "SELECT node, action, outcome FROM es_audit WHERE action IN ('push', 'pull') GROUP BY node, action, outcome ORDER BY node, action",
        "SELECT node, action, outcome FROM es_audit WHERE action IN ('push', 'pull') GROUP BY node, action, outcome ORDER BY node, action",
    )
    .await;
    assert!(
        audit.contains(&vec!["a".into(), "push".into(), "ok".into()])
            && audit.contains(&vec!["b".into(), "pull".into(), "ok".into()]),
        "{audit:?}"
    );
    // Health and metrics need no credential (load balancers, Prometheus).
    let t = h.transport(0);
    let health = t
        .send("GET", p::HEALTH, &[], Vec::new())
        .await
        .expect("health");
    assert_eq!(health.status, 200);
    let metrics = t
        .send("GET", p::METRICS, &[], Vec::new())
        .await
        .expect("metrics");
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("edgesync_hub_requests_total{endpoint=\"push\",status=\"200\"}"),
        "{text}"
    );
    // An edge config that lists no table gets the hub's tables.
    let loaded = edgesync::config::Config::load(Some(&h.env.config_path())).expect("load");
    let tables = edgesync::hub::client::hub_table_configs(&loaded.config.central)
        .await
        .expect("hub tables");
    let names: Vec<_> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["items", "notes"]);
    assert_eq!(tables[1].deletes, edgesync_core::DeleteMode::Hard);
}

async fn offline_edits_converge_and_a_second_sync_moves_nothing(backend: Backend) {
    let h = HubEnv::new(backend, &["a", "b"], &ITEMS, TABLES, "").await;
    central_run(
        &h.env,
        "INSERT INTO items (id, name, qty) VALUES (1, 'c1', 1), (2, 'c2', 2), (3, 'c3', 3), (4, 'c4', 4);",
    )
    .await;
    h.env.init().await;
    h.env.sync_all(1).await;
    central_run(
        &h.env,
        "UPDATE items SET name = 'hq' WHERE id = 1; INSERT INTO items (id, name) VALUES (100, 'hq new'); INSERT INTO notes (id, body) VALUES (1, 'hq note');",
    )
    .await;
    h.env
        .edge("a")
        .execute_batch("UPDATE items SET qty = 20 WHERE id = 2; INSERT INTO items (id, name) VALUES (200, 'a new'); DELETE FROM items WHERE id = 4;")
        .expect("a");
    h.env
        .edge("b")
        .execute_batch("UPDATE items SET name = 'b' WHERE id = 3; INSERT INTO notes (id, body) VALUES (2, 'b note');")
        .expect("b");
    h.env.sync_all(2).await;
    let q = "SELECT id, name, qty, es_deleted FROM items ORDER BY id";
    let a = query_text(&h.env.edge("a"), q);
    assert_eq!(a, query_text(&h.env.edge("b"), q), "edges diverged");
    assert_eq!(
        a,
        rows(&[
            &["1", "hq", "1", "0"],
            &["2", "c2", "20", "0"],
            &["3", "b", "3", "0"],
            &["4", "c4", "4", "1"],
            &["100", "hq new", "NULL", "0"],
            &["200", "a new", "NULL", "0"],
        ])
    );
    let c = central(
        &h.env,
        "SELECT id, name, qty, es_deleted FROM items ORDER BY items.id",
        "SELECT id::text, name, qty::text, es_deleted::int::text FROM items ORDER BY items.id",
    )
    .await;
    assert_eq!(c, a, "the central holds what the edges hold");
    let notes = "SELECT id, body FROM notes ORDER BY id";
    assert_eq!(
        query_text(&h.env.edge("a"), notes),
        rows(&[&["1", "hq note"], &["2", "b note"]])
    );
    assert_eq!(
        query_text(&h.env.edge("b"), notes),
        query_text(&h.env.edge("a"), notes)
    );
    for node in ["a", "b"] {
        for s in h.env.sync_node(node).await {
            assert_eq!((s.pushed, s.pulled, s.conflicts), (0, 0, 0), "{s:?}");
        }
    }
}

const CLIENT_WINS_TABLES: &str = r#"
[[table]]
name = "items"
conflict = "client-wins"

[[table]]
name = "notes"
deletes = "hard"
"#;

async fn a_conflict_is_resolved_by_the_hubs_policy(backend: Backend) {
    // The hub says client-wins; the edge's own config says nothing (its
    // default would be server-wins): the hub's policy decides.
    let h = HubEnv::new(backend, &["a"], &ITEMS, CLIENT_WINS_TABLES, "").await;
    h.write_edge_config(&h.hubs[0].url, TABLES, "");
    h.env.init().await;
    h.env
        .edge("a")
        .execute_batch("INSERT INTO items (id, name, qty) VALUES (1, 'orig', 1);")
        .expect("a");
    h.env.sync_all(1).await;
    central_run(&h.env, "UPDATE items SET name = 'central' WHERE id = 1;").await;
    h.env
        .edge("a")
        .execute_batch("UPDATE items SET name = 'edge' WHERE id = 1;")
        .expect("a");
    let stats = h.env.sync_node("a").await;
    assert_eq!(stats.iter().map(|s| s.conflicts).sum::<usize>(), 1);
    let c = central(
        &h.env,
        "SELECT name FROM items WHERE id = 1",
        "SELECT name FROM items WHERE id = 1",
    )
    .await;
    assert_eq!(c, rows(&[&["edge"]]), "client-wins kept the edge's write");
    assert_eq!(
        query_text(&h.env.edge("a"), "SELECT name FROM items WHERE id = 1"),
        rows(&[&["edge"]])
    );
    // The edge sees its own conflict through the hub, with the policy.
    let hub = h.client(0, &h.tokens["a"]);
    let list = hub.conflicts(true, 10).await.expect("conflicts");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].node, "a");
    assert_eq!(list[0].strategy, edgesync_core::ConflictPolicy::ClientWins);
    // `status` on the edge talks to the hub too.
    let out = h.env.cli(&["status"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
}

async fn an_edge_alternating_between_two_hubs_converges(backend: Backend) {
    let mut h = HubEnv::new(backend, &["a", "b"], &ITEMS, TABLES, "").await;
    let second = h.start();
    h.hubs.push(second);
    h.env.init().await;
    for round in 0..4_i64 {
        let url = h.hubs[(round % 2) as usize].url.clone();
        h.write_edge_config(&url, TABLES, "");
        h.env
            .edge("a")
            .execute_batch(&format!(
                "INSERT INTO items (id, name, qty) VALUES ({}, 'a', {round}); UPDATE items SET qty = {round} WHERE id < 100;",
                100 + round
            ))
            .expect("a");
        h.env
            .edge("b")
            .execute_batch(&format!(
                "INSERT INTO items (id, name, qty) VALUES ({}, 'b', {round});",
                200 + round
            ))
            .expect("b");
        h.env
            .central_run(Sql::all(&format!(
                "INSERT INTO items (id, name, qty) VALUES ({round}, 'hq', 0);"
            )))
            .await;
        h.env.sync_all(1).await;
    }
    // The first hub goes away; the second carries on alone.
    h.hubs.remove(0);
    let url = h.hubs[0].url.clone();
    h.write_edge_config(&url, TABLES, "");
    h.env.sync_all(2).await;
    let q = "SELECT id, name, qty FROM items ORDER BY id";
    let a = query_text(&h.env.edge("a"), q);
    assert_eq!(a.len(), 12, "{a:?}");
    assert_eq!(a, query_text(&h.env.edge("b"), q), "edges diverged");
    let c = central(
        &h.env,
        "SELECT id, name, qty FROM items ORDER BY items.id",
        "SELECT id::text, name, qty::text FROM items ORDER BY items.id",
    )
    .await;
    assert_eq!(c, a, "the central diverged");
}

// ---------------------------------------------------------------------------
// Scope: tenants and filters
// ---------------------------------------------------------------------------

const SCOPE_DDL: Sql = Sql {
    sqlite: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
      CREATE TABLE secret (id INTEGER PRIMARY KEY, body TEXT);
      CREATE TABLE shared (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, body TEXT);",
    postgres: "CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL);
      CREATE TABLE secret (id bigint PRIMARY KEY, body text);
      CREATE TABLE shared (id bigint PRIMARY KEY, tenant text NOT NULL, body text);",
    mysql: "CREATE TABLE notes (id bigint PRIMARY KEY, body longtext NOT NULL);
      CREATE TABLE secret (id bigint PRIMARY KEY, body longtext);
      CREATE TABLE shared (id bigint PRIMARY KEY, tenant varchar(64) NOT NULL, body longtext);",
};

/// The hub's tables: `secret` is not among them; `shared` is filtered by
/// tenant.
const SCOPE_TABLES: &str = r#"
[[table]]
name = "notes"
deletes = "hard"

[[table]]
name = "shared"
filter = "tenant = :tenant"
"#;

/// The same tables as an edge writes them (filters are the hub's business).
const SCOPE_EDGE_TABLES: &str = r#"
[[table]]
name = "notes"
deletes = "hard"

[[table]]
name = "shared"
"#;

async fn scope_env(backend: Backend, serve_extra: &str) -> HubEnv {
    let mut h = HubEnv::new(backend, &["a", "b"], &SCOPE_DDL, SCOPE_TABLES, serve_extra).await;
    let a = h.create_token("a", &["--tenant", "acme"]);
    let b = h.create_token("b", &["--tenant", "globex"]);
    h.tokens.insert("a".into(), a);
    h.tokens.insert("b".into(), b);
    let url = h.hubs[0].url.clone();
    h.write_edge_config(&url, SCOPE_EDGE_TABLES, "");
    h
}

async fn a_node_sees_and_writes_only_its_tenants_rows(backend: Backend) {
    let h = scope_env(backend, "").await;
    central_run(
        &h.env,
        "INSERT INTO shared (id, tenant, body) VALUES (1, 'acme', 'x'), (2, 'globex', 'y');",
    )
    .await;
    h.env.init().await;
    h.env.sync_all(1).await;
    let q = "SELECT id, tenant, body FROM shared ORDER BY id";
    assert_eq!(
        query_text(&h.env.edge("a"), q),
        rows(&[&["1", "acme", "x"]])
    );
    assert_eq!(
        query_text(&h.env.edge("b"), q),
        rows(&[&["2", "globex", "y"]])
    );
    // a writes a row of another tenant, and then tries to take over b's
    // row: both are refused as out-of-scope conflicts inside the central's
    // transaction, logged, and the rest of a's changes flow.
    h.env
        .edge("a")
        .execute_batch(
            "INSERT INTO shared (id, tenant, body) VALUES (3, 'globex', 'sneaky');
             INSERT INTO shared (id, tenant, body) VALUES (2, 'acme', 'mine now');
             UPDATE shared SET body = 'fine' WHERE id = 1;",
        )
        .expect("a");
    let stats = h.env.sync_node("a").await;
    let quarantined: usize = stats.iter().map(|s| s.quarantined).sum();
    let conflicts: usize = stats.iter().map(|s| s.conflicts).sum();
    assert_eq!((quarantined, conflicts), (0, 2), "{stats:?}");
    let c = central(
        &h.env,
        "SELECT id, tenant, body FROM shared ORDER BY shared.id",
        "SELECT id::text, tenant, body FROM shared ORDER BY shared.id",
    )
    .await;
    assert_eq!(
        c,
        rows(&[&["1", "acme", "fine"], &["2", "globex", "y"]]),
        "nothing outside a's scope was written"
    );
    assert_eq!(
        query_text(&h.env.edge("a"), q),
        rows(&[&["1", "acme", "fine"]]),
        "a holds no row outside its scope"
    );
    let log = h
        .env
        .engine_ok()
        .await
        .central
        .conflicts(true, 100)
        .await
        .expect("conflict log");
    let refused = log
        .iter()
        .filter(|c| c.node == "a" && c.strategy == edgesync_core::ConflictPolicy::OutOfScope)
        .count();
    assert_eq!(refused, 2, "both refusals are logged: {log:?}");
    // b never saw a's attempts.
    h.env.sync_node("b").await;
    assert_eq!(
        query_text(&h.env.edge("b"), q),
        rows(&[&["2", "globex", "y"]])
    );
}

// ---------------------------------------------------------------------------
// Refusals: right status, nothing written, audited
// ---------------------------------------------------------------------------

fn push_body(info: &p::TableInfo, node: &str, id: i64) -> Vec<u8> {
    let batch = PushBatch::new(
        1,
        vec![Change {
            key: vec![Value::Int(id)],
            values: Some(vec![Value::Int(id), Value::Text(format!("note {id}"))]),
            deleted: false,
            version: 1,
            base: None,
            hlc: 1 << 16,
        }],
    );
    serde_json::to_vec(&serde_json::json!({
        "node": node,
        "table": info.central,
        "layout": info.layout,
        "batch": batch,
    }))
    .expect("json")
}

fn pull_body(table: &str, layout: &str, node: &str, tenant: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "node": node,
        "tenant": tenant,
        "table": table,
        "layout": layout,
        "token": null,
        "limit": 100,
    }))
    .expect("json")
}

/// Nothing reached the user tables or the push high-water marks.
async fn assert_nothing_written(h: &HubEnv) {
    let c = central(
        &h.env,
        "SELECT (SELECT count(*) FROM notes) + (SELECT count(*) FROM es_nodes) + (SELECT count(*) FROM shared)",
        "SELECT ((SELECT count(*) FROM notes) + (SELECT count(*) FROM es_nodes) + (SELECT count(*) FROM shared))::text",
    )
    .await;
    assert_eq!(c, rows(&[&["0"]]), "the refused request wrote something");
}

/// Status, error code, and the newest audit entry (node, outcome, status).
async fn assert_refused(h: &HubEnv, r: &Reply, status: u16, code: &str, node: Option<&str>) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(error_body(r).code, code);
    let audit = h.last_audit().await;
    assert_eq!(
        audit[..3],
        [
            node.unwrap_or("NULL").to_string(),
            code.to_string(),
            status.to_string()
        ],
        "audit entry {audit:?}"
    );
    assert_nothing_written(h).await;
}

async fn no_token_is_refused(backend: Backend) {
    let h = scope_env(backend, "").await;
    let info = h.table_info("a", "notes").await;
    let r = raw(
        &h.transport(0),
        None,
        p::PUSH,
        &push_body(&info, "a", 1),
        now(),
        |_| {},
    )
    .await;
    assert_refused(&h, &r, 401, "no_token", None).await;
}

async fn a_wrong_token_is_refused(backend: Backend) {
    let h = scope_env(backend, "").await;
    let info = h.table_info("a", "notes").await;
    let forged = auth::generate_token();
    let r = raw(
        &h.transport(0),
        Some(&forged),
        p::PUSH,
        &push_body(&info, "a", 1),
        now(),
        |_| {},
    )
    .await;
    assert_refused(&h, &r, 401, "unknown_token", None).await;
}

async fn a_revoked_token_is_refused(backend: Backend) {
    let h = scope_env(backend, "").await;
    let info = h.table_info("a", "notes").await;
    let token = h.create_token("c", &[]);
    let out = h.hub_cli(&["token", "revoke", "--node", "c"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let out = h.hub_cli(&["token", "revoke", "--node", "c"]);
    assert_eq!(out.status.code(), Some(1), "nothing left to revoke");
    let r = raw(
        &h.transport(0),
        Some(&token),
        p::PUSH,
        &push_body(&info, "c", 1),
        now(),
        |_| {},
    )
    .await;
    assert_refused(&h, &r, 401, "revoked_token", Some("c")).await;
}

async fn a_bad_signature_is_refused(backend: Backend) {
    let h = scope_env(backend, "").await;
    let info = h.table_info("a", "notes").await;
    let token = h.tokens["a"].clone();
    let body = push_body(&info, "a", 1);
    // Signed for one body, sent with another.
    let r = raw(&h.transport(0), Some(&token), p::PUSH, &body, now(), |_| {}).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    central_run(&h.env, "DELETE FROM notes; DELETE FROM es_nodes;").await;
    let other = push_body(&info, "a", 2);
    let signed = auth::sign_request(&token, "POST", p::PUSH, &body, now()).expect("sign");
    let t = h.transport(0);
    let headers = vec![
        ("authorization", signed.authorization),
        (p::H_TIMESTAMP, signed.timestamp),
        (p::H_NONCE, signed.nonce),
        (p::H_SIGNATURE, signed.signature),
    ];
    let r = t
        .send("POST", p::PUSH, &headers, other)
        .await
        .expect("answer");
    assert_refused(&h, &r, 401, "bad_signature", Some("a")).await;
}

async fn a_replayed_nonce_is_refused(backend: Backend) {
    let h = scope_env(backend, "").await;
    let info = h.table_info("a", "notes").await;
    let token = h.tokens["a"].clone();
    let body = push_body(&info, "a", 1);
    let signed = auth::sign_request(&token, "POST", p::PUSH, &body, now()).expect("sign");
    let headers = vec![
        ("authorization", signed.authorization),
        (p::H_TIMESTAMP, signed.timestamp),
        (p::H_NONCE, signed.nonce),
        (p::H_SIGNATURE, signed.signature),
    ];
    let t = h.transport(0);
    let first = t
        .send("POST", p::PUSH, &headers, body.clone())
        .await
        .expect("answer");
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    central_run(&h.env, "DELETE FROM notes; DELETE FROM es_nodes;").await;
    // The same request again, byte for byte, to a second hub instance.
    let mut h = h;
    let second = h.start();
    h.hubs.push(second);
    let r = h
        .transport(1)
        .send("POST", p::PUSH, &headers, body)
        .await
        .expect("answer");
    assert_refused(&h, &r, 401, "replayed_nonce", Some("a")).await;
}

async fn a_stale_timestamp_is_refused(backend: Backend) {
    let h = scope_env(backend, "").await;
    let info = h.table_info("a", "notes").await;
    let body = push_body(&info, "a", 1);
    let r = raw(
        &h.transport(0),
        Some(&h.tokens["a"]),
        p::PUSH,
        &body,
        now() - 1000,
        |_| {},
    )
    .await;
    assert_refused(&h, &r, 401, "stale_timestamp", Some("a")).await;
}

async fn an_oversized_body_is_refused(backend: Backend) {
    let h = scope_env(backend, "max_body_bytes = 4096").await;
    let info = h.table_info("a", "notes").await;
    let mut body = push_body(&info, "a", 1);
    body.truncate(body.len() - 1);
    body.extend(format!(", \"padding\": \"{}\"}}", "x".repeat(8000)).into_bytes());
    let r = raw(
        &h.transport(0),
        Some(&h.tokens["a"]),
        p::PUSH,
        &body,
        now(),
        |_| {},
    )
    .await;
    assert_refused(&h, &r, 413, "too_large", Some("a")).await;
}

async fn pushing_as_another_node_is_refused(backend: Backend) {
    let h = scope_env(backend, "").await;
    let info = h.table_info("a", "notes").await;
    let body = push_body(&info, "b", 1);
    let r = raw(
        &h.transport(0),
        Some(&h.tokens["a"]),
        p::PUSH,
        &body,
        now(),
        |_| {},
    )
    .await;
    assert_refused(&h, &r, 403, "forbidden_node", Some("a")).await;
}

async fn pulling_a_table_outside_the_scope_is_refused(backend: Backend) {
    let h = scope_env(backend, "").await;
    central_run(
        &h.env,
        "INSERT INTO secret (id, body) VALUES (1, 'hidden');",
    )
    .await;
    let body = pull_body("secret", "", "a", None);
    let r = raw(
        &h.transport(0),
        Some(&h.tokens["a"]),
        p::PULL,
        &body,
        now(),
        |_| {},
    )
    .await;
    assert_refused(&h, &r, 403, "forbidden_table", Some("a")).await;
    assert!(!String::from_utf8_lossy(&r.body).contains("hidden"));
    // And the hub does not describe it either.
    let hub = h.client(0, &h.tokens["a"]);
    let schema = hub
        .describe(&edgesync_core::QualifiedName::parse("secret"))
        .await
        .expect("describe");
    assert_eq!(schema, None);
}

async fn pulling_another_tenants_rows_is_refused(backend: Backend) {
    let h = scope_env(backend, "").await;
    let info = h.table_info("a", "shared").await;
    let body = pull_body(&info.central, &info.layout, "a", Some("globex"));
    let r = raw(
        &h.transport(0),
        Some(&h.tokens["a"]),
        p::PULL,
        &body,
        now(),
        |_| {},
    )
    .await;
    assert_refused(&h, &r, 403, "forbidden_tenant", Some("a")).await;
}

async fn an_edge_mapping_that_differs_from_the_hubs_is_refused(backend: Backend) {
    let h = scope_env(backend, "").await;
    // The edge says soft deletes where the hub says hard: check-config
    // names the table and the hub's setting, and changes nothing.
    h.write_edge_config(
        &h.hubs[0].url,
        "[[table]]\nname = \"notes\"\ndeletes = \"soft\"\n",
        "",
    );
    let out = h.env.cli(&["check-config"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        crate::common::stderr(&out)
    );
    let err = crate::common::stderr(&out);
    assert!(
        err.contains("notes") && err.contains("deletes = \"hard\""),
        "{err}"
    );
    // A push with another layout is refused by the hub itself.
    let mut info = h.table_info("a", "notes").await;
    info.layout = "0".repeat(64);
    let body = push_body(&info, "a", 1);
    let r = raw(
        &h.transport(0),
        Some(&h.tokens["a"]),
        p::PUSH,
        &body,
        now(),
        |_| {},
    )
    .await;
    assert_refused(&h, &r, 409, "layout_mismatch", Some("a")).await;
}

async fn a_node_over_its_rate_is_told_when_to_retry(backend: Backend) {
    let h = scope_env(backend, "rate_per_node = 1\nrate_burst = 2").await;
    let info = h.table_info("a", "shared").await;
    let body = pull_body(&info.central, &info.layout, "a", None);
    let t = h.transport(0);
    // table_info's register used one request of the burst.
    let first = raw(&t, Some(&h.tokens["a"]), p::PULL, &body, now(), |_| {}).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let r = raw(&t, Some(&h.tokens["a"]), p::PULL, &body, now(), |_| {}).await;
    assert_eq!(r.retry_after, Some(1));
    assert_refused(&h, &r, 429, "rate_limited", Some("a")).await;
    // Another node has its own budget.
    let b = raw(
        &t,
        Some(&h.tokens["b"]),
        p::PULL,
        &pull_body(&info.central, &info.layout, "b", None),
        now(),
        |_| {},
    )
    .await;
    assert_eq!(b.status, 200, "{}", String::from_utf8_lossy(&b.body));
}

/// `edgesync run` (the daemon) syncs through the hub as it does directly:
/// a local commit reaches the central, a central write reaches the edge.
async fn the_daemon_syncs_through_the_hub(backend: Backend) {
    let h = HubEnv::new(backend, &["a"], &ITEMS, TABLES, "").await;
    h.env.init().await;
    let log = std::fs::File::create(h.env.path().join("run.log")).expect("log");
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_edgesync"))
        .arg("--config")
        .arg(h.env.config_path())
        .arg("run")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn run");
    h.env
        .edge_app("a")
        .execute_batch("INSERT INTO items (id, name) VALUES (1, 'from the edge');")
        .expect("a");
    central_run(
        &h.env,
        "INSERT INTO notes (id, body) VALUES (7, 'from hq');",
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let done = loop {
        let c = central(
            &h.env,
            "SELECT count(*) FROM items",
            "SELECT count(*)::text FROM items",
        )
        .await;
        let e = query_text(&h.env.edge_app("a"), "SELECT count(*) FROM notes");
        if c == rows(&[&["1"]]) && e == rows(&[&["1"]]) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        done,
        "the daemon did not sync through the hub: {}",
        std::fs::read_to_string(h.env.path().join("run.log")).unwrap_or_default()
    );
}

/// Spec: the hub's sync.toml is authoritative for tables; an edge config
/// that names only its hub, credential and edge files syncs every table
/// the hub serves it.
async fn an_edge_config_without_tables_takes_them_from_the_hub(backend: Backend) {
    let h = HubEnv::new(backend, &["a"], &ITEMS, TABLES, "").await;
    let url = h.hubs[0].url.clone();
    h.write_edge_config(&url, "", "");
    let cfg = std::fs::read_to_string(h.env.config_path()).expect("edge config");
    assert!(!cfg.contains("[[table]]"), "{cfg}");
    central_run(
        &h.env,
        "INSERT INTO items (id, name, qty) VALUES (1, 'from hq', 1);",
    )
    .await;
    let out = h.env.cli(&["init-sync"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let out = h.env.cli(&["sync"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("a items") && stdout.contains("a notes"),
        "{stdout}"
    );
    assert_eq!(
        query_text(&h.env.edge("a"), "SELECT id, name FROM items"),
        rows(&[&["1", "from hq"]])
    );
}

hub_backends!(
    an_edge_config_without_tables_takes_them_from_the_hub,
    the_daemon_syncs_through_the_hub,
    an_edge_mapping_that_differs_from_the_hubs_is_refused,
    a_node_over_its_rate_is_told_when_to_retry,
    every_type_round_trips_through_the_hub,
    offline_edits_converge_and_a_second_sync_moves_nothing,
    a_conflict_is_resolved_by_the_hubs_policy,
    an_edge_alternating_between_two_hubs_converges,
    a_node_sees_and_writes_only_its_tenants_rows,
    no_token_is_refused,
    a_wrong_token_is_refused,
    a_revoked_token_is_refused,
    a_bad_signature_is_refused,
    a_replayed_nonce_is_refused,
    a_stale_timestamp_is_refused,
    an_oversized_body_is_refused,
    pushing_as_another_node_is_refused,
    pulling_a_table_outside_the_scope_is_refused,
    pulling_another_tenants_rows_is_refused,
);

// ---------------------------------------------------------------------------
// The decoder under fuzzing
// ---------------------------------------------------------------------------

fn fuzz_mapping() -> edgesync_core::TableMapping {
    use edgesync_core::{ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction};
    let col = |name: &str, ty| ColumnMap {
        edge: name.into(),
        central: name.into(),
        ty,
        edge_ty: ty,
        nullable: true,
    };
    edgesync_core::TableMapping {
        edge: "notes".into(),
        central: edgesync_core::QualifiedName::parse("notes"),
        columns: vec![
            col("id", ColType::Int),
            col("body", ColType::Text { max_len: None }),
        ],
        key: vec![0],
        direction: Direction::Both,
        conflict: ConflictPolicy::ServerWins,
        deletes: DeleteMode::Hard,
    }
}

fn mutate(rng: &mut impl rand::Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.random_range(1..5) {
        let len = v.len().max(1);
        let at = rng.random_range(0..len).min(v.len());
        match rng.random_range(0..5) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 => v.insert(at, rng.random()),
            2 if at < v.len() => {
                let end = (at + rng.random_range(1..16)).min(v.len());
                v.drain(at..end);
            }
            3 => {
                let end = (at + rng.random_range(1..32)).min(v.len());
                let chunk = v[at..end].to_vec();
                v.splice(at..at, chunk);
            }
            _ => {
                let tokens: [&[u8]; 8] = [
                    b"null",
                    b"{}",
                    b"[]",
                    b"\"t\"",
                    b"-1",
                    b"1e999",
                    b"\"\\u0000\"",
                    b"9223372036854775808",
                ];
                let t = tokens[rng.random_range(0..tokens.len())];
                v.splice(at..at, t.iter().copied());
            }
        }
    }
    v
}

/// Random bytes and mutated valid requests through every decoding function
/// the hub applies to what a client sends: nothing may panic. Bounded (a few
/// thousand cases, well under a second); `EDGESYNC_FUZZ_CASES` scales it and
/// `EDGESYNC_FUZZ_SEED` replays a run.
#[test]
fn the_request_decoder_survives_random_and_mutated_input() {
    use rand::{Rng, SeedableRng};
    let seed = crate::common::seed_from_env("EDGESYNC_FUZZ_SEED", "hub fuzz");
    let cases = crate::common::env_usize("EDGESYNC_FUZZ_CASES", 4000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let m = fuzz_mapping();
    let info = p::TableInfo {
        central: "notes".into(),
        edge: "notes".into(),
        schema: p::served_schema(&m),
        direction: m.direction,
        deletes: m.deletes,
        conflict: m.conflict,
        layout: p::layout(&m),
        filtered: false,
    };
    let valid = [
        push_body(&info, "a", 7),
        pull_body("notes", &info.layout, "a", Some("acme")),
        br#"{"table": "notes"}"#.to_vec(),
        br#"{"all": true, "limit": 10}"#.to_vec(),
    ];
    let filters = [
        "id = :tenant AND (body IN ('a', :b) OR body IS NULL)",
        "NOT id <> 1",
    ];
    let key = auth::key_hash(&auth::generate_token());
    for i in 0..cases {
        let input = if i % 3 == 0 {
            let n = rng.random_range(0..256);
            (0..n).map(|_| rng.random::<u8>()).collect::<Vec<u8>>()
        } else {
            mutate(&mut rng, &valid[i % valid.len()])
        };
        for enc in [None, Some("gzip"), Some("identity"), Some("br")] {
            let _ = p::decode_body(enc, &input, 1 << 16);
        }
        let (z, _) = p::encode_body(input.clone(), Some("gzip"));
        let _ = p::decode_body(Some("gzip"), &mutate(&mut rng, &z), 1 << 16);
        if let Ok(req) = p::decode_json::<p::PushRequest>(&input) {
            let _ = p::check_push_shape(&req, &m);
        }
        let _ = p::decode_json::<p::PullRequest>(&input);
        let _ = p::decode_json::<p::DescribeRequest>(&input);
        let _ = p::decode_json::<p::ConflictsRequest>(&input);
        let text = String::from_utf8_lossy(&input);
        let _ = Filter::parse(&text, &m);
        let f = filters[i % filters.len()];
        let mutated = String::from_utf8_lossy(&mutate(&mut rng, f.as_bytes())).into_owned();
        if let Ok(filter) = Filter::parse(&mutated, &m) {
            let params = std::collections::BTreeMap::from([("b".to_string(), text.to_string())]);
            if let Ok(b) = filter.bind(Some("1"), &params) {
                let _ = b.selects(&[Value::Int(1), Value::Text(text.to_string())]);
                let _ = b.selects(&[Value::Null]);
            }
        }
        let _ = auth::token_id(&text);
        let _ = auth::verify(&key, &text, &text);
        let _ = p::accepts_gzip(Some(&text));
    }
}
