//! `init-sync`, `--dry-run` and `deinit-sync`, through the real binary.

use crate::common::{query_text, Backend, Env, Sql};
use crate::for_each_backend;
use crate::roundtrip::{ITEMS, TABLES};

/// Everything about a database's schema that provisioning could touch, as
/// text: tables, columns, indexes, triggers, functions, sequences (MySQL:
/// also each column's position, nullability, default and collation, and
/// check constraints, since its DDL rewrites tables in place).
pub async fn central_schema(env: &Env) -> Vec<Vec<String>> {
    env.central_query(Sql {
        sqlite: "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name",
        postgres: "SELECT 'col', table_name::text, column_name::text, data_type::text FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
         UNION ALL SELECT 'trigger', event_object_table::text, trigger_name::text, action_timing::text FROM information_schema.triggers
         UNION ALL SELECT 'rel', relkind::text, relname::text, '' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
         UNION ALL SELECT 'func', proname::text, '', '' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
         ORDER BY 1, 2, 3, 4",
        mysql: "SELECT 'col', TABLE_NAME, COLUMN_NAME,
                CONCAT_WS(' ', ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COALESCE(COLUMN_DEFAULT, '-'), COALESCE(COLLATION_NAME, '-'), EXTRA)
           FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
         UNION ALL SELECT 'table', TABLE_NAME, TABLE_TYPE, COALESCE(TABLE_COLLATION, '-')
           FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()
         UNION ALL SELECT 'index', TABLE_NAME, INDEX_NAME, CONCAT_WS(' ', SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE)
           FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
         UNION ALL SELECT 'trigger', EVENT_OBJECT_TABLE, TRIGGER_NAME, CONCAT_WS(' ', ACTION_TIMING, EVENT_MANIPULATION)
           FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
         UNION ALL SELECT 'check', TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE
           FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()
         UNION ALL SELECT 'routine', ROUTINE_NAME, ROUTINE_TYPE, ''
           FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()
         ORDER BY 1, 2, 3, 4",
    })
    .await
}

fn edge_schema(env: &Env, node: &str) -> Vec<Vec<String>> {
    query_text(
        &env.edge(node),
        "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name",
    )
}

fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "edgesync failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn init_sync_is_idempotent_and_dry_run_changes_nothing(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &ITEMS).await;
    env.write_config(TABLES, "");
    // an existing edge table with data, as an application made it
    env.edge("a")
        .execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price DECIMAL_TEXT(38,10), qty INTEGER,
               ok BOOLEAN, data BLOB, d DATE_TEXT, t TIME_TEXT, ts TIMESTAMP_TEXT, tstz TIMESTAMPTZ_TEXT,
               u UUID_TEXT, j JSON_TEXT, f REAL);
             INSERT INTO items (id, name) VALUES (1, 'local before init');",
        )
        .expect("app table");
    let central_before = central_schema(&env).await;
    let edge_before = edge_schema(&env, "a");

    let out = ok(&env.cli(&["init-sync", "--dry-run"]));
    assert!(out.contains("central"), "dry run names the central: {out}");
    assert!(out.contains("edge a"), "dry run names the edge: {out}");
    assert!(
        out.contains("es_ver"),
        "dry run shows the statements: {out}"
    );
    assert!(out.to_lowercase().contains("create trigger"), "{out}");
    assert_eq!(
        central_schema(&env).await,
        central_before,
        "--dry-run changed the central"
    );
    assert_eq!(
        edge_schema(&env, "a"),
        edge_before,
        "--dry-run changed the edge"
    );
    assert!(!env.edge_path("b").exists());

    let out = ok(&env.cli(&["init-sync"]));
    assert!(out.contains("applied"), "{out}");
    let central_after = central_schema(&env).await;
    assert_ne!(central_after, central_before);
    let out = ok(&env.cli(&["init-sync"]));
    assert!(
        out.matches("nothing changed").count() == 2,
        "second init-sync must say it changed nothing on both databases: {out}"
    );
    assert_eq!(
        central_schema(&env).await,
        central_after,
        "second init-sync changed the central"
    );
    let out = ok(&env.cli(&["init-sync", "--dry-run"]));
    assert!(out.contains("nothing to do"), "{out}");

    // the pre-existing local row is pushed on the first sync
    ok(&env.cli(&["sync"]));
    let c = env.central_query(Sql::all("SELECT name FROM items")).await;
    assert_eq!(c, vec![vec!["local before init".to_string()]]);
}

async fn deinit_sync_restores_the_user_tables_exactly(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &ITEMS).await;
    env.write_config(TABLES, "");
    env.central_run(Sql::all(
        "INSERT INTO notes (id, body) VALUES (1, 'kept'), (2, 'also kept');",
    ))
    .await;
    env.edge("a")
        .execute_batch(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL); INSERT INTO notes (id, body) VALUES (1, 'kept');",
        )
        .expect("app table");
    let central_before = central_schema(&env).await;
    let central_rows_q = Sql::all("SELECT id, body FROM notes ORDER BY id");
    let rows_before = env.central_query(central_rows_q).await;
    let edge_cols_before = query_text(&env.edge("a"), "SELECT * FROM pragma_table_info('notes')");

    ok(&env.cli(&["init-sync"]));
    ok(&env.cli(&["sync"]));
    let out = ok(&env.cli(&["deinit-sync", "--dry-run"]));
    assert!(out.to_lowercase().contains("drop"), "{out}");
    ok(&env.cli(&["deinit-sync"]));

    assert_eq!(
        central_schema(&env).await,
        central_before,
        "central schema after deinit"
    );
    assert_eq!(env.central_query(central_rows_q).await, rows_before);
    let e = env.edge("a");
    assert_eq!(
        query_text(&e, "SELECT * FROM pragma_table_info('notes')"),
        edge_cols_before
    );
    assert_eq!(
        query_text(&e, "SELECT id, body FROM notes ORDER BY id"),
        vec![vec!["1", "kept"], vec!["2", "also kept"]]
            .into_iter()
            .map(|r| r.into_iter().map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        "user data stays on the edge"
    );
    let leftovers = query_text(
        &e,
        "SELECT name FROM sqlite_master WHERE name LIKE 'es\\_%' ESCAPE '\\' OR sql LIKE '%es\\_%' ESCAPE '\\'",
    );
    assert!(
        leftovers.is_empty(),
        "edgesync objects left on the edge: {leftovers:?}"
    );
    // items was created by init-sync on the edge; its data stays, metadata goes
    let items_cols = query_text(
        &e,
        "SELECT name FROM pragma_table_info('items') WHERE name LIKE 'es\\_%' ESCAPE '\\'",
    );
    assert!(items_cols.is_empty(), "{items_cols:?}");
}

for_each_backend!(
    init_sync_is_idempotent_and_dry_run_changes_nothing,
    deinit_sync_restores_the_user_tables_exactly,
);
