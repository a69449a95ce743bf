//! Foreign keys hold on both sides, in both directions, with no constraint
//! ever disabled: a parent/child pair and a self-referencing table are
//! written and then deleted in one transaction, on an edge (pushed) and on
//! the central (pulled), and each lands in one sync.
//!
//! The tables are listed children first in sync.toml, and the parent row is
//! updated after its children are written (so its change comes later in
//! the edge's sequence): neither config order nor sequence order would do;
//! the engine's foreign-key order must. Constraints are enforced on every
//! central (SQLite: `foreign_keys = ON` on edgesync's connections and the
//! test's; PostgreSQL and MariaDB always, NOT DEFERRABLE) and on the edges.

use crate::common::{query_text, Backend, Env, Sql};
use crate::for_each_backend;

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER NOT NULL REFERENCES p(id),
                             name TEXT NOT NULL);
             CREATE TABLE t (id INTEGER PRIMARY KEY, up INTEGER REFERENCES t(id),
                             name TEXT NOT NULL);",
    postgres: "CREATE TABLE p (id bigint PRIMARY KEY, name text NOT NULL);
               CREATE TABLE c (id bigint PRIMARY KEY, p_id bigint NOT NULL REFERENCES p(id),
                               name text NOT NULL);
               CREATE TABLE t (id bigint PRIMARY KEY, up bigint REFERENCES t(id),
                               name text NOT NULL);",
    mysql: "CREATE TABLE p (id bigint PRIMARY KEY, name longtext NOT NULL) ENGINE=InnoDB;
            CREATE TABLE c (id bigint PRIMARY KEY, p_id bigint NOT NULL, name longtext NOT NULL,
                            FOREIGN KEY (p_id) REFERENCES p(id)) ENGINE=InnoDB;
            CREATE TABLE t (id bigint PRIMARY KEY, up bigint, name longtext NOT NULL,
                            FOREIGN KEY (up) REFERENCES t(id)) ENGINE=InnoDB;",
};

/// The same tables on the edges, with the same constraints (created before
/// `init-sync`, which keeps them).
const EDGE_DDL: &str = "
    CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER NOT NULL REFERENCES p(id),
                    name TEXT NOT NULL);
    CREATE TABLE t (id INTEGER PRIMARY KEY, up INTEGER REFERENCES t(id), name TEXT NOT NULL);";

/// Children first, on purpose.
const TABLES: &str = r#"
[[table]]
name = "c"
deletes = "hard"

[[table]]
name = "t"
deletes = "hard"

[[table]]
name = "p"
deletes = "hard"
"#;

/// Parents, children and a three-level tree in one transaction; each
/// parent written again after its children.
const INSERTS: &str = "
    INSERT INTO p (id, name) VALUES (1, 'p1'), (2, 'p2');
    INSERT INTO c (id, p_id, name) VALUES (10, 1, 'c10'), (11, 2, 'c11'), (12, 1, 'c12');
    UPDATE p SET name = 'p1 again' WHERE id = 1;
    INSERT INTO t (id, up, name) VALUES (1, NULL, 'root');
    INSERT INTO t (id, up, name) VALUES (2, 1, 'branch');
    INSERT INTO t (id, up, name) VALUES (3, 2, 'leaf');
    UPDATE t SET name = 'root again' WHERE id = 1;";

/// Everything deleted in one transaction (children first, as the
/// constraints require), and a new parent/child pair written in the same
/// transaction.
const DELETES: &str = "
    DELETE FROM c WHERE id IN (10, 11, 12);
    DELETE FROM p WHERE id IN (1, 2);
    DELETE FROM t WHERE id = 3;
    DELETE FROM t WHERE id = 2;
    DELETE FROM t WHERE id = 1;
    INSERT INTO p (id, name) VALUES (3, 'p3');
    INSERT INTO c (id, p_id, name) VALUES (13, 3, 'c13');";

const AFTER_INSERTS: [&str; 3] = [
    "c: 10|1|c10, 11|2|c11, 12|1|c12",
    "p: 1|p1 again, 2|p2",
    "t: 1||root again, 2|1|branch, 3|2|leaf",
];
const AFTER_DELETES: [&str; 3] = ["c: 13|3|c13", "p: 3|p3", "t: "];

async fn setup(backend: Backend) -> Env {
    let mut env = Env::new(backend, &["a", "b"], DDL).await;
    env.write_config(TABLES, "");
    for node in ["a", "b"] {
        env.edge(node).execute_batch(EDGE_DDL).expect("edge tables");
    }
    env.init().await;
    env
}

/// An edge connection as an application with foreign keys on would use.
fn app(env: &Env, node: &str) -> rusqlite::Connection {
    let c = env.edge(node);
    c.execute_batch("PRAGMA foreign_keys = ON;")
        .expect("foreign keys on");
    c
}

fn edge_tables(env: &Env, node: &str) -> Vec<String> {
    let c = app(env, node);
    let violations = query_text(&c, "SELECT * FROM pragma_foreign_key_check");
    assert!(violations.is_empty(), "{node}: {violations:?}");
    [
        ("c", "SELECT id, p_id, name FROM c ORDER BY id"),
        ("p", "SELECT id, name FROM p ORDER BY id"),
        ("t", "SELECT id, coalesce(up, ''), name FROM t ORDER BY id"),
    ]
    .iter()
    .map(|(t, q)| render(t, query_text(&c, q)))
    .collect()
}

async fn central_tables(env: &Env) -> Vec<String> {
    let mut out = Vec::new();
    for (t, q) in [
        ("c", "SELECT id, p_id, name FROM c ORDER BY id"),
        ("p", "SELECT id, name FROM p ORDER BY id"),
        ("t", "SELECT id, coalesce(up, 0), name FROM t ORDER BY id"),
    ] {
        let rows = env.central_query(Sql::all(q)).await;
        // The root's NULL parent, rendered as on the edge.
        let rows = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        if t == "t" && i == 1 && v == "0" {
                            String::new()
                        } else {
                            v
                        }
                    })
                    .collect()
            })
            .collect();
        out.push(render(t, rows));
    }
    out
}

fn render(table: &str, rows: Vec<Vec<String>>) -> String {
    let rows: Vec<String> = rows.iter().map(|r| r.join("|")).collect();
    format!("{table}: {}", rows.join(", "))
}

/// One sync of `node`: no error (checked by `sync_node`), nothing set aside
/// as a poison row.
async fn sync_once(env: &Env, node: &str) {
    let stats = env.sync_node(node).await;
    for s in &stats {
        assert_eq!(s.quarantined, 0, "{node}/{}: {s:?}", s.table);
    }
}

async fn edge_to_central_in_one_batch(backend: Backend) {
    let env = setup(backend).await;
    app(&env, "a")
        .execute_batch(&format!("BEGIN; {INSERTS} COMMIT;"))
        .expect("edge inserts");
    sync_once(&env, "a").await;
    assert_eq!(central_tables(&env).await, AFTER_INSERTS);

    app(&env, "a")
        .execute_batch(&format!("BEGIN; {DELETES} COMMIT;"))
        .expect("edge deletes");
    sync_once(&env, "a").await;
    assert_eq!(central_tables(&env).await, AFTER_DELETES);
    assert_eq!(edge_tables(&env, "a"), AFTER_DELETES);

    // The other edge, FKs enforced too, gets the final state in one sync.
    sync_once(&env, "b").await;
    assert_eq!(edge_tables(&env, "b"), AFTER_DELETES);
}

/// A SQLite central's application connection enforces foreign keys only
/// when asked to.
fn central_sql(backend: Backend, sql: &str) -> String {
    match backend {
        Backend::Sqlite => format!("PRAGMA foreign_keys = ON; BEGIN; {sql} COMMIT;"),
        Backend::Postgres => format!("BEGIN; {sql} COMMIT;"),
        Backend::Mysql => format!("START TRANSACTION; {sql} COMMIT;"),
    }
}

async fn central_to_edge_in_one_page(backend: Backend) {
    let env = setup(backend).await;
    env.central_run(Sql::all(&central_sql(backend, INSERTS)))
        .await;
    sync_once(&env, "a").await;
    assert_eq!(edge_tables(&env, "a"), AFTER_INSERTS);

    env.central_run(Sql::all(&central_sql(backend, DELETES)))
        .await;
    sync_once(&env, "a").await;
    assert_eq!(edge_tables(&env, "a"), AFTER_DELETES);
    assert_eq!(central_tables(&env).await, AFTER_DELETES);
}

/// A change the central refuses for a foreign key that no order can
/// satisfy (its parent exists nowhere) is still set aside as a poison row,
/// and the rest flows.
async fn a_child_without_parent_is_still_quarantined(backend: Backend) {
    let env = setup(backend).await;
    {
        let c = env.edge("a");
        // Written with the edge's foreign keys off, as a careless app might.
        c.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO c (id, p_id, name) VALUES (20, 99, 'orphan');
             INSERT INTO p (id, name) VALUES (5, 'p5');
             INSERT INTO c (id, p_id, name) VALUES (21, 5, 'c21');",
        )
        .expect("edge writes");
    }
    let stats = env.sync_node("a").await;
    let quarantined: usize = stats.iter().map(|s| s.quarantined).sum();
    assert_eq!(quarantined, 1, "{stats:?}");
    assert_eq!(
        env.central_query(Sql::all("SELECT id FROM c ORDER BY id"))
            .await,
        vec![vec!["21".to_string()]]
    );
}

for_each_backend!(
    edge_to_central_in_one_batch,
    central_to_edge_in_one_page,
    a_child_without_parent_is_still_quarantined
);
