//! Schema evolution (issue 10): the central is the source of truth. A
//! column added on the central reaches every edge on its next sync without
//! losing pending local changes; a new `[[table]]` is provisioned on the
//! edge by the sync; a dropped or renamed column pauses that one table with
//! an error `status` shows; and a batch or page written for another column
//! layout is refused, nothing applied.

// The daemon suite's harness (`tests/daemon.rs` keeps its module private).
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "daemon/harness.rs"]
mod harness;

use edgesync::engine::sync;
use edgesync_core::change::schema_fingerprint;
use edgesync_core::ErrorKind;

use crate::common::{query_text, stderr, Backend, Env, Sql};
use crate::for_each_backend_and_hub;

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);
             CREATE TABLE other (id INTEGER PRIMARY KEY, body TEXT);
             CREATE TABLE extra (id INTEGER PRIMARY KEY, label TEXT);
             CREATE TABLE strict (id INTEGER PRIMARY KEY, code TEXT NOT NULL, note TEXT);",
    postgres: "CREATE TABLE items (id bigint PRIMARY KEY, name text, qty bigint);
               CREATE TABLE other (id bigint PRIMARY KEY, body text);
               CREATE TABLE extra (id bigint PRIMARY KEY, label text);
               CREATE TABLE strict (id bigint PRIMARY KEY, code text NOT NULL, note text);",
    mysql: "CREATE TABLE items (id bigint PRIMARY KEY, name longtext, qty bigint);
            CREATE TABLE other (id bigint PRIMARY KEY, body longtext);
            CREATE TABLE extra (id bigint PRIMARY KEY, label longtext);
            CREATE TABLE strict (id bigint PRIMARY KEY, code longtext NOT NULL, note longtext);",
};

const TABLES: &str = "[[table]]\nname = \"items\"\n\n[[table]]\nname = \"other\"\n";

async fn setup(backend: Backend, nodes: &[&str]) -> Env {
    let mut env = Env::new(backend, nodes, &DDL).await;
    env.write_config(TABLES, "");
    env.init().await;
    env.central_run(Sql::all(
        "INSERT INTO items (id, name, qty) VALUES (1, 'x', 1), (2, 'y', 2);
         INSERT INTO other (id, body) VALUES (1, 'o1');",
    ))
    .await;
    env.sync_all(1).await;
    env
}

fn rows(env: &Env, node: &str, sql: &str) -> Vec<String> {
    query_text(&env.edge(node), sql)
        .into_iter()
        .map(|r| r.join(" "))
        .collect()
}

async fn central(env: &Env, sql: &str) -> Vec<String> {
    env.central_query(Sql::all(sql))
        .await
        .into_iter()
        .map(|r| r.join(" "))
        .collect()
}

fn errors(stats: &[sync::TableStats]) -> Vec<String> {
    stats
        .iter()
        .filter_map(|s| {
            s.error
                .as_ref()
                .map(|e| format!("{}/{}: {e}", s.node, s.table))
        })
        .collect()
}

async fn added_column_reaches_the_edge_with_its_pending_changes(backend: Backend) {
    let env = setup(backend, &["a", "b"]).await;
    // A daemon's engine, opened before the central changes.
    let engine = env.engine_ok().await;
    env.edge("a")
        .execute_batch(
            "UPDATE items SET name = 'local' WHERE id = 1;
             INSERT INTO items (id, name, qty) VALUES (3, 'new', 3);",
        )
        .expect("local writes");
    env.central_run(Sql {
        sqlite: "ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'dflt';
                 ALTER TABLE items ADD COLUMN score INTEGER;
                 UPDATE items SET score = 20 WHERE id = 2;",
        postgres: "ALTER TABLE items ADD COLUMN note text DEFAULT 'dflt';
                   ALTER TABLE items ADD COLUMN score bigint;
                   UPDATE items SET score = 20 WHERE id = 2;",
        mysql: "ALTER TABLE items ADD COLUMN note varchar(40) DEFAULT 'dflt';
                ALTER TABLE items ADD COLUMN score bigint;
                UPDATE items SET score = 20 WHERE id = 2;",
    })
    .await;

    let stats = sync::sync_all(&engine).await;
    assert_eq!(errors(&stats), Vec::<String>::new());
    // The pending changes reached the central (under the old columns, so
    // the central kept its own values of the new ones).
    assert_eq!(
        central(&env, "SELECT id, name, note FROM items ORDER BY id").await,
        ["1 local dflt", "2 y dflt", "3 new dflt"]
    );
    // The edge has the columns, with the central's values.
    let edge_rows = "SELECT id, name, COALESCE(note, 'NULL'), COALESCE(score, 'NULL') \
                     FROM items ORDER BY id";
    assert_eq!(
        rows(&env, "a", edge_rows),
        ["1 local dflt NULL", "2 y dflt 20", "3 new dflt NULL"]
    );
    assert_eq!(
        rows(
            &env,
            "a",
            "SELECT pending FROM es_status WHERE tbl = 'items'"
        ),
        ["0"]
    );

    // From now on the new columns travel: an edge write to one reaches the
    // central, through the rebuilt capture triggers.
    env.edge("a")
        .execute_batch("UPDATE items SET note = 'edge-note', score = 7 WHERE id = 2;")
        .expect("write the new columns");
    let stats = sync::sync_all(&engine).await;
    assert_eq!(errors(&stats), Vec::<String>::new());
    assert_eq!(
        central(&env, "SELECT id, note, score FROM items WHERE id = 2").await,
        ["2 edge-note 7"]
    );
    // Another edge gets everything too.
    env.sync_node("b").await;
    assert_eq!(
        rows(&env, "b", edge_rows),
        ["1 local dflt NULL", "2 y edge-note 7", "3 new dflt NULL"]
    );
    // And the other table was never disturbed.
    assert_eq!(rows(&env, "b", "SELECT id, body FROM other"), ["1 o1"]);
}

async fn new_table_in_the_config_is_synced_without_running_init_on_the_edge(backend: Backend) {
    let mut env = setup(backend, &["a"]).await;
    let with_extra = format!("{TABLES}\n[[table]]\nname = \"extra\"\n");
    env.write_config(&with_extra, "");
    env.central_run(Sql::all("INSERT INTO extra (id, label) VALUES (1, 'e1');"))
        .await;

    // The central is not provisioned for it yet: that table waits, naming
    // the command; the others sync.
    env.central_run(Sql::all("INSERT INTO other (id, body) VALUES (2, 'o2');"))
        .await;
    let engine = env.engine_ok().await;
    let stats = sync::sync_all(&engine).await;
    let errs = errors(&stats);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("a/extra") && errs[0].contains("init-sync --table extra"),
        "{errs:?}"
    );
    assert_eq!(
        rows(&env, "a", "SELECT id FROM other ORDER BY id"),
        ["1", "2"]
    );

    // The DBA provisions the central side (what `init-sync` does where the
    // central is administered); the edge provisions itself on its next sync.
    let plan = engine
        .central
        .plan_init(&engine.central_mappings())
        .await
        .expect("plan central");
    assert!(!plan.is_empty());
    engine
        .central
        .execute(&plan)
        .await
        .expect("provision central");
    let stats = sync::sync_all(&engine).await;
    assert_eq!(errors(&stats), Vec::<String>::new());
    assert_eq!(rows(&env, "a", "SELECT id, label FROM extra"), ["1 e1"]);
    assert_eq!(
        rows(
            &env,
            "a",
            "SELECT count(*) FROM es_status WHERE tbl = 'extra'"
        ),
        ["1"]
    );
    env.edge("a")
        .execute_batch("INSERT INTO extra (id, label) VALUES (2, 'e2');")
        .expect("edge write");
    env.sync_node("a").await;
    assert_eq!(
        central(&env, "SELECT id, label FROM extra ORDER BY id").await,
        ["1 e1", "2 e2"]
    );
}

async fn dropped_or_renamed_column_pauses_only_that_table(backend: Backend) {
    let mut env = setup(backend, &["a"]).await;
    env.edge("a")
        .execute_batch("UPDATE items SET name = 'pending' WHERE id = 1;")
        .expect("local write");
    env.central_run(Sql::all(
        "ALTER TABLE items DROP COLUMN qty;
         INSERT INTO other (id, body) VALUES (2, 'o2');",
    ))
    .await;
    let engine = env.engine_ok().await;
    let stats = sync::sync_all(&engine).await;
    let errs = errors(&stats);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("a/items")
            && errs[0].contains("qty")
            && errs[0].contains("dropped or renamed")
            && errs[0].contains("init-sync --table items"),
        "{errs:?}"
    );
    // The other table synced; the paused one kept its pending change.
    assert_eq!(
        rows(&env, "a", "SELECT id FROM other ORDER BY id"),
        ["1", "2"]
    );
    assert_eq!(
        rows(
            &env,
            "a",
            "SELECT pending FROM es_status WHERE tbl = 'items'"
        ),
        ["1"]
    );
    assert_eq!(
        central(&env, "SELECT name FROM items WHERE id = 1").await,
        ["x"]
    );
    // `status` shows it and exits non-zero.
    let out = env.cli(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("qty"), "{text}");

    // The way forward: accept the change; the pending change then flows and
    // the edge keeps its column, no longer synced.
    let out = env.cli(&["init-sync", "--table", "items"]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.sync_node("a").await;
    assert_eq!(
        central(&env, "SELECT id, name FROM items ORDER BY id").await,
        ["1 pending", "2 y"]
    );
    assert_eq!(
        rows(
            &env,
            "a",
            "SELECT pending FROM es_status WHERE tbl = 'items'"
        ),
        ["0"]
    );

    // A rename pauses it too; mapping the new name in the config and
    // init-sync carry on without touching the edge table.
    env.central_run(Sql::all("ALTER TABLE items RENAME COLUMN name TO title;"))
        .await;
    let stats = sync::sync_all(&env.engine_ok().await).await;
    let errs = errors(&stats);
    assert!(
        errs.len() == 1 && errs[0].starts_with("a/items") && errs[0].contains("column name"),
        "{errs:?}"
    );
    env.write_config(
        "[[table]]\nname = \"items\"\ncolumns = { name = \"title\" }\n\n\
         [[table]]\nname = \"other\"\n",
        "",
    );
    let out = env.cli(&["init-sync", "--table", "items"]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.edge("a")
        .execute_batch("UPDATE items SET name = 'renamed' WHERE id = 2;")
        .expect("local write");
    env.sync_node("a").await;
    assert_eq!(
        central(&env, "SELECT id, title FROM items ORDER BY id").await,
        ["1 pending", "2 renamed"]
    );
}

async fn a_batch_or_page_for_another_layout_is_refused(backend: Backend) {
    let env = setup(backend, &["a"]).await;
    let engine = env.engine_ok().await;
    let edge = &engine.edges[0];
    let m = edge.tables[0].clone();
    assert_eq!(m.edge, "items");
    env.edge("a")
        .execute_batch("UPDATE items SET name = 'local' WHERE id = 1;")
        .expect("local write");
    let mut batch = edge
        .db
        .read_changes(&m, 100)
        .await
        .expect("read")
        .expect("a pending change");
    assert_eq!(batch.fingerprint, Some(schema_fingerprint(&m)));

    // Pushed as if read with another column list: refused, nothing applied.
    batch.fingerprint = Some("v1:0000000000000000".into());
    let e = engine
        .central
        .push("a", &m, &batch)
        .await
        .expect_err("a foreign layout is refused");
    assert_eq!(e.kind(), ErrorKind::Schema, "{e}");
    assert!(e.to_string().contains("items"), "{e}");
    assert_eq!(
        central(&env, "SELECT name FROM items WHERE id = 1").await,
        ["x"]
    );

    // A page read with one layout is not applied by an edge with another
    // (two columns swapped: values would land in the wrong columns).
    let page = engine.central.pull("a", &m, None, 100).await.expect("pull");
    assert_eq!(page.fingerprint, Some(schema_fingerprint(&m)));
    let mut shifted = m.clone();
    shifted.columns.swap(1, 2);
    let e = edge
        .db
        .apply_pull(&shifted, &page)
        .await
        .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Schema, "{e}");
    assert_eq!(
        rows(&env, "a", "SELECT id, name, qty FROM items ORDER BY id"),
        ["1 local 1", "2 y 2"]
    );

    // With its own fingerprint the same batch goes through.
    batch.fingerprint = Some(schema_fingerprint(&m));
    engine.central.push("a", &m, &batch).await.expect("push");
    assert_eq!(
        central(&env, "SELECT name FROM items WHERE id = 1").await,
        ["local"]
    );
}

/// Accepting a dropped column with `init-sync` is refused while the edge
/// table could not take rows without it (NOT NULL, no default), saying so.
async fn accepting_a_drop_the_edge_table_cannot_live_with_is_refused(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &DDL).await;
    env.write_config("[[table]]\nname = \"strict\"\n", "");
    env.init().await;
    env.central_run(Sql::all(
        "INSERT INTO strict (id, code, note) VALUES (1, 'c', 'n');",
    ))
    .await;
    env.sync_all(1).await;
    env.central_run(Sql::all("ALTER TABLE strict DROP COLUMN code;"))
        .await;
    let stats = sync::sync_all(&env.engine_ok().await).await;
    let errs = errors(&stats);
    assert!(
        errs.len() == 1 && errs[0].contains("column code") && errs[0].contains("dropped"),
        "{errs:?}"
    );
    let out = env.cli(&["init-sync", "--table", "strict"]);
    assert!(!out.status.success(), "accepted");
    let err = stderr(&out);
    assert!(
        err.contains("strict") && err.contains("code") && err.contains("NOT NULL"),
        "{err}"
    );
}

/// An edge file provisioned before edgesync recorded column lists (no
/// `es_schema`): its synced columns are taken to be the central's that the
/// edge table has, so a column added on the central still just arrives.
async fn an_edge_provisioned_before_column_records_still_evolves(backend: Backend) {
    let env = setup(backend, &["a"]).await;
    env.edge("a")
        .execute_batch(
            "DROP TABLE es_schema;
             UPDATE items SET name = 'local' WHERE id = 1;",
        )
        .expect("an older edge file");
    env.central_run(Sql {
        sqlite: "ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'dflt';",
        postgres: "ALTER TABLE items ADD COLUMN note text DEFAULT 'dflt';",
        mysql: "ALTER TABLE items ADD COLUMN note varchar(40) DEFAULT 'dflt';",
    })
    .await;
    env.sync_node("a").await;
    assert_eq!(
        rows(&env, "a", "SELECT id, name, note FROM items ORDER BY id"),
        ["1 local dflt", "2 y dflt"]
    );
    assert_eq!(
        central(&env, "SELECT id, name FROM items ORDER BY id").await,
        ["1 local", "2 y"]
    );
    assert_eq!(
        rows(
            &env,
            "a",
            "SELECT count(*) FROM es_schema WHERE tbl = 'items'"
        ),
        ["1"]
    );
}

/// `edgesync run`, left running while the central changes under it: the
/// added column arrives, then a dropped one pauses that table while the
/// other keeps syncing. Metrics say `kind="schema"` (not `edge`, which
/// would make the daemon reopen a healthy edge file).
async fn a_running_daemon_follows_the_central_schema(backend: Backend) {
    let port = harness::free_port();
    let mut env = setup(backend, &["a"]).await;
    env.write_config(
        TABLES,
        &format!("retry_max = \"2s\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let mut d = harness::Daemon::start(&env, &[]);
    d.wait_synced("a", 1);
    env.central_run(Sql {
        sqlite: "ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'dflt';
                 UPDATE items SET note = 'n2' WHERE id = 2;",
        postgres: "ALTER TABLE items ADD COLUMN note text DEFAULT 'dflt';
                   UPDATE items SET note = 'n2' WHERE id = 2;",
        mysql: "ALTER TABLE items ADD COLUMN note varchar(40) DEFAULT 'dflt';
                UPDATE items SET note = 'n2' WHERE id = 2;",
    })
    .await;
    let notes = || -> Vec<String> {
        let c = env.edge("a");
        let Ok(mut st) = c.prepare("SELECT id, note FROM items ORDER BY id") else {
            return Vec::new();
        };
        st.query_map([], |r| {
            Ok(format!(
                "{} {}",
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?.unwrap_or_default()
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .unwrap_or_default()
    };
    let arrived = harness::poll(harness::SOON, || {
        d.assert_running();
        notes() == ["1 dflt", "2 n2"]
    });
    assert!(arrived, "{:?}; log:\n{}", notes(), d.log_text());

    env.central_run(Sql::all(
        "ALTER TABLE items DROP COLUMN qty;
         INSERT INTO other (id, body) VALUES (2, 'o2');",
    ))
    .await;
    let series = "edgesync_sync_errors_total{node=\"a\",table=\"items\",kind=\"schema\"}";
    let mut text = String::new();
    let paused = harness::poll(harness::SOON, || {
        d.assert_running();
        text = harness::http_get(port, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default();
        harness::sample(&text, series).is_some_and(|v| v >= 1.0)
            && rows(&env, "a", "SELECT count(*) FROM other") == ["2"]
    });
    assert!(paused, "{series} in:\n{text}\nlog:\n{}", d.log_text());
    d.stop();
}

// Through a hub too: the hub hands the batch to the central adapter, which
// checks it against the hub's own mapping. The evolution tests are direct
// only: a hub resolves its tables when it starts (README, "Schema changes").
for_each_backend_and_hub!(
    a_batch_or_page_for_another_layout_is_refused;
    direct only:
    added_column_reaches_the_edge_with_its_pending_changes,
    new_table_in_the_config_is_synced_without_running_init_on_the_edge,
    dropped_or_renamed_column_pauses_only_that_table,
    an_edge_provisioned_before_column_records_still_evolves,
    accepting_a_drop_the_edge_table_cannot_live_with_is_refused,
    a_running_daemon_follows_the_central_schema,
);
