//! `sync.retention`: the central purges tombstones and the state of nodes
//! long gone, never past what an active node still has to pull; a node away
//! longer re-snapshots, keeps its local writes, and ends with exactly the
//! central's rows.
//!
//! Time is not waited for: "long ago" is made by ageing the central's
//! records (a node's last pull and push, a tombstone's clock stamp), and the
//! purge is called directly with a one-hour retention.
//!
//! Every central here implements it (SQL Server and Oracle answer the
//! purge with a "not supported yet" error naming `sync.retention`).

use std::time::Duration;

use edgesync::engine::{status, Selection};
use edgesync_core::central::Purged;

use crate::common::{query_text, Backend, Env, Sql};
use crate::for_each_backend_and_hub;

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    postgres: "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);",
    mysql: "CREATE TABLE items (id bigint PRIMARY KEY, name longtext NOT NULL);",
};

const TABLES: &str = r#"
[[table]]
name = "items"
deletes = "hard"
"#;

const HOUR: Duration = Duration::from_secs(3600);

async fn setup(backend: Backend, nodes: &[&str]) -> Env {
    let mut env = Env::new(backend, nodes, DDL).await;
    // No sync.retention yet: the tests purge when they choose to (and
    // `the_sync_cycle_purges` turns it on).
    env.write_config(TABLES, "page_rows = 2");
    env.init().await;
    env.central_run(Sql::all(
        "INSERT INTO items (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three'),
                                             (4, 'four'), (5, 'five'), (6, 'six');",
    ))
    .await;
    env
}

/// Make `node` look gone since long ago, and every tombstone old.
async fn age(env: &Env, node: &str) {
    // SQLite keeps times as text, MySQL as DATETIME.
    let at = match env.backend {
        Backend::Mysql => "2000-01-01 00:00:00",
        _ => "2000-01-01 00:00:00.000Z",
    };
    env.central_run(Sql::all(&format!(
        "UPDATE es_pulls SET at = '{at}' WHERE node = '{node}';
         UPDATE es_nodes SET last_push_at = '{at}' WHERE node = '{node}';
         UPDATE es_tombstones SET es_hlc = 65536;"
    )))
    .await;
}

/// Purge as the central's administrators would (on the hub, in a hub run).
async fn purge(env: &Env) -> Purged {
    let engine = env.central_engine().await;
    engine
        .central
        .purge(&engine.central_mappings(), HOUR)
        .await
        .expect("purge")
}

fn edge_rows(env: &Env, node: &str) -> Vec<Vec<String>> {
    query_text(&env.edge(node), "SELECT id, name FROM items ORDER BY id")
}

async fn central_rows(env: &Env) -> Vec<Vec<String>> {
    env.central_query(Sql::all("SELECT id, name FROM items ORDER BY id"))
        .await
}

async fn tombstones(env: &Env) -> usize {
    env.central_query(Sql::all("SELECT es_ver FROM es_tombstones"))
        .await
        .len()
}

async fn purge_respects_the_lowest_active_watermark(backend: Backend) {
    let env = setup(backend, &["a", "b", "c"]).await;
    env.sync_all(1).await;
    env.central_run(Sql::all("DELETE FROM items WHERE id IN (1, 2);"))
        .await;
    // a pulls the deletes (twice: the central learns a pull position when
    // the edge continues from it). b, still active, has not.
    env.sync_node("a").await;
    env.sync_node("a").await;
    // c has been gone for longer than the retention.
    age(&env, "c").await;

    let purged = purge(&env).await;
    assert_eq!(purged.tombstones, 0, "b has not pulled them: {purged:?}");
    assert!(purged.node_states >= 1, "c's state goes: {purged:?}");
    assert_eq!(tombstones(&env).await, 2);

    // b, behind the purge point, still gets its deletes.
    env.sync_node("b").await;
    assert_eq!(edge_rows(&env, "b"), central_rows(&env).await);
    env.sync_node("b").await;
    // Now every active node is past them; c does not hold the purge back.

    let purged = purge(&env).await;
    assert_eq!(purged.tombstones, 2, "{purged:?}");
    assert_eq!(tombstones(&env).await, 0);

    // c comes back: its position is older than the purge, so it takes a
    // fresh snapshot and ends with exactly the central's rows.
    let stats = env.sync_node("c").await;
    assert_eq!(stats[0].resnapshots, 1, "{stats:?}");
    assert_eq!(edge_rows(&env, "c"), central_rows(&env).await);
    // a and b were not affected.
    for node in ["a", "b"] {
        let stats = env.sync_node(node).await;
        assert_eq!(stats[0].resnapshots, 0, "{node}: {stats:?}");
    }
}

async fn a_node_beyond_retention_resnapshots_keeping_local_writes(backend: Backend) {
    let env = setup(backend, &["a", "c"]).await;
    env.sync_all(1).await;
    // c goes offline and keeps writing.
    env.edge("c")
        .execute_batch(
            "INSERT INTO items (id, name) VALUES (100, 'c new');
             UPDATE items SET name = 'three, edited on c' WHERE id = 3;
             DELETE FROM items WHERE id = 4;",
        )
        .expect("c writes");
    // Meanwhile the central deletes and writes; a keeps up.
    env.central_run(Sql::all(
        "DELETE FROM items WHERE id IN (5, 6);
         INSERT INTO items (id, name) VALUES (7, 'seven');
         UPDATE items SET name = 'two, edited centrally' WHERE id = 2;",
    ))
    .await;
    env.sync_node("a").await;
    env.sync_node("a").await;
    age(&env, "c").await;
    assert_eq!(purge(&env).await.tombstones, 2);

    // c's first sync: its writes are pushed, then the refused pull turns
    // into a fresh snapshot.
    let stats = env.sync_node("c").await;
    assert_eq!(stats[0].resnapshots, 1, "{stats:?}");
    assert_eq!(stats[0].pushed, 3, "{stats:?}");
    let central = central_rows(&env).await;
    let expected: Vec<Vec<String>> = [
        ("1", "one"),
        ("2", "two, edited centrally"),
        ("3", "three, edited on c"),
        ("7", "seven"),
        ("100", "c new"),
    ]
    .iter()
    .map(|(i, n)| vec![i.to_string(), n.to_string()])
    .collect();
    assert_eq!(central, expected);
    assert_eq!(edge_rows(&env, "c"), central);

    // status says so, in text and JSON.
    let engine = env.engine_ok().await;
    let report = status::report(&engine).await.expect("status");
    let c = report
        .tables
        .iter()
        .find(|t| t.node == "c")
        .expect("c in status");
    assert_eq!(c.resnapshots, 1);
    assert!(c.last_resnapshot.is_some());
    let json = serde_json::to_value(&report).expect("json");
    assert!(json.to_string().contains("\"resnapshots\":1"), "{json}");
    assert!(status::render(&report).contains("c/items: 1 fresh snapshot"));
}

/// A re-snapshot interrupted after its first page resumes on the next sync
/// (it is recorded in the edge file, not in memory), and a local write made
/// in between is kept and pushed.
async fn an_interrupted_resnapshot_resumes(backend: Backend) {
    let env = setup(backend, &["a", "c"]).await;
    env.sync_all(1).await;
    env.central_run(Sql::all("DELETE FROM items WHERE id IN (5, 6);"))
        .await;
    env.sync_node("a").await;
    env.sync_node("a").await;
    age(&env, "c").await;
    assert_eq!(purge(&env).await.tombstones, 2);
    {
        let engine = env
            .engine(Selection {
                node: Some("c".into()),
                table: None,
            })
            .await
            .expect("engine");
        let edge = &engine.edges[0];
        let table = &edge.tables[0];
        let token = edge.db.pull_token(table).await.expect("token");
        let refused = engine
            .central
            .pull("c", table, token.as_deref(), 2)
            .await
            .expect_err("position older than the purge");
        assert_eq!(refused.kind(), edgesync_core::ErrorKind::Resnapshot);
        edge.db.begin_resnapshot(table).await.expect("begin");
        let page = engine
            .central
            .pull("c", table, None, 2)
            .await
            .expect("page");
        assert!(!page.done);
        edge.db.apply_resnapshot(table, &page).await.expect("apply");
        // ... and the process dies here.
    }
    // Written on the edge mid-snapshot and pushed before the pass ends: one
    // key ahead of the pass's cursor, one behind it (a central pass need
    // not deliver either, and the node's own writes do not come back to
    // it): the end of the re-snapshot must keep both.
    env.edge("c")
        .execute_batch(
            "INSERT INTO items (id, name) VALUES (200, 'written mid-snapshot');
             INSERT INTO items (id, name) VALUES (0, 'behind the cursor');",
        )
        .expect("c write");
    let stats = env.sync_node("c").await;
    assert_eq!(stats[0].resnapshots, 1, "{stats:?}");
    let central = central_rows(&env).await;
    assert!(central.contains(&vec!["200".to_string(), "written mid-snapshot".to_string()]));
    assert!(central.contains(&vec!["0".to_string(), "behind the cursor".to_string()]));
    assert!(!central.iter().any(|r| r[0] == "5" || r[0] == "6"));
    assert_eq!(edge_rows(&env, "c"), central);
}

/// With `sync.retention` set, the sync cycle purges by itself — and still
/// not past a node that is behind.
async fn the_sync_cycle_purges(backend: Backend) {
    let mut env = setup(backend, &["a", "b"]).await;
    env.sync_all(1).await;
    env.write_config(TABLES, "retention = \"90d\"\npage_rows = 2");
    env.central_run(Sql::all("DELETE FROM items WHERE id = 3;"))
        .await;
    // The delete is older than the retention, as far as its stamp says.
    env.central_run(Sql::all("UPDATE es_tombstones SET es_hlc = 65536;"))
        .await;
    env.sync_node("a").await;
    env.sync_node("a").await;
    assert_eq!(tombstones(&env).await, 1, "b has not pulled it yet");
    env.sync_node("b").await;
    assert_eq!(edge_rows(&env, "b"), central_rows(&env).await);
    env.sync_node("b").await;
    assert_eq!(tombstones(&env).await, 0, "every active node has it");
}

#[tokio::test]
async fn retention_must_be_at_least_an_hour() {
    let mut env = Env::new(Backend::Sqlite, &["a"], DDL).await;
    env.write_config(TABLES, "retention = \"5m\"");
    let e = env
        .engine(Selection::default())
        .await
        .err()
        .expect("refused");
    assert!(format!("{e:#}").contains("sync.retention"), "{e:#}");
    env.write_config(TABLES, "retention = \"soon\"");
    let e = env
        .engine(Selection::default())
        .await
        .err()
        .expect("refused");
    assert!(format!("{e:#}").contains("retention"), "{e:#}");
}

/// Behind a hub the edges cannot purge; the hub does, when it starts and
/// every hour after (src/hub/mod.rs `housekeeping`).
async fn the_hub_purges_by_itself(backend: Backend) {
    let mut env = setup(backend, &["a", "b"]).await;
    env.sync_all(1).await;
    env.central_run(Sql::all("DELETE FROM items WHERE id = 3;"))
        .await;
    env.central_run(Sql::all("UPDATE es_tombstones SET es_hlc = 65536;"))
        .await;
    for node in ["a", "b", "a", "b"] {
        env.sync_node(node).await;
    }
    assert_eq!(tombstones(&env).await, 1, "no retention yet");
    // The hub restarts on the new config and purges at once.
    env.write_config(TABLES, "retention = \"90d\"\npage_rows = 2");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tombstones(&env).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the hub did not purge the tombstone every node has pulled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing lost: both edges still match the central.
    for node in ["a", "b"] {
        env.sync_node(node).await;
        assert_eq!(edge_rows(&env, node), central_rows(&env).await, "{node}");
    }
}

mod hub_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_hub_purges_by_itself_sqlite() {
        crate::common::through_hub(super::the_hub_purges_by_itself(
            crate::common::Backend::Sqlite,
        ))
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_hub_purges_by_itself_postgres() {
        crate::common::through_hub(super::the_hub_purges_by_itself(
            crate::common::Backend::Postgres,
        ))
        .await
    }
}

for_each_backend_and_hub!(
    purge_respects_the_lowest_active_watermark,
    a_node_beyond_retention_resnapshots_keeping_local_writes,
    an_interrupted_resnapshot_resumes;
    // In a hub run the purge is the hub's (the_hub_purges_by_itself).
    direct only: the_sync_cycle_purges,
);
