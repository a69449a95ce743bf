//! Row filters (spec guarantee 3: every edge holds exactly the central rows
//! its filter selects), with a SQLite, a PostgreSQL and a MariaDB central:
//! what each node receives on its initial load; a central update moving a
//! row from one node's scope to another's (move-out, move-in) on a
//! hard-delete and a soft-delete table; pushes outside a node's filter
//! refused as conflicts while the rest of the batch is applied; a parameter
//! value with a quote in it bound, not pasted into SQL.

use edgesync_core::{ConflictPolicy, Value};

use crate::common::{query_text, Backend, Env, Sql};
use crate::for_each_backend;
use crate::hub::harness::HubEnv;

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE shops_h (id INTEGER PRIMARY KEY, region TEXT, name TEXT);
             CREATE TABLE shops_s (id INTEGER PRIMARY KEY, region TEXT, name TEXT);",
    postgres: "CREATE TABLE shops_h (id bigint PRIMARY KEY, region text, name text);
               CREATE TABLE shops_s (id bigint PRIMARY KEY, region text, name text);",
    mysql: "CREATE TABLE shops_h (id bigint PRIMARY KEY, region varchar(40), name varchar(100));
            CREATE TABLE shops_s (id bigint PRIMARY KEY, region varchar(40), name varchar(100));",
};

const TABLES: [&str; 2] = ["shops_h", "shops_s"];

/// The nodes and the region each one's params bind; `quote`'s value has a
/// single quote in it, which only a bound parameter survives.
const NODES: [(&str, &str); 3] = [("north", "north"), ("south", "south"), ("quote", "o'hare")];

/// A central with both tables, provisioned, three edges each filtered by
/// its own region, and rows 1-3 in the north, 4-5 in the south and 6 at
/// o'hare, each node synced once.
async fn setup(backend: Backend) -> Env {
    let names: Vec<&str> = NODES.iter().map(|(n, _)| *n).collect();
    let env = Env::new(backend, &names, DDL).await;
    let mut toml = format!("[central]\nurl = \"{}\"\n\n", env.central_url);
    for (node, region) in NODES {
        toml.push_str(&format!(
            "[[edge]]\nnode = \"{node}\"\npath = \"{}\"\nparams = {{ region = \"{region}\" }}\n\n",
            env.edge_path(node).display()
        ));
    }
    toml.push_str(
        "[sync]\ninterval = \"1s\"\n\n\
         [[table]]\nname = \"shops_h\"\ndeletes = \"hard\"\nfilter = \"region = :region\"\n\n\
         [[table]]\nname = \"shops_s\"\ndeletes = \"soft\"\nfilter = \"region = :region\"\n",
    );
    std::fs::write(env.config_path(), toml).expect("write sync.toml");
    env.init().await;
    for t in TABLES {
        env.central_run(Sql::all(&format!(
            "INSERT INTO {t} (id, region, name) VALUES
               (1, 'north', 'n1'), (2, 'north', 'n2'), (3, 'north', 'n3'),
               (4, 'south', 's4'), (5, 'south', 's5'), (6, 'o''hare', 'q6')"
        )))
        .await;
    }
    env.sync_all(1).await;
    env
}

/// Every row of an edge table, deleted or not: `id:region:name`.
fn edge_rows(env: &Env, node: &str, table: &str) -> Vec<String> {
    query_text(
        &env.edge(node),
        &format!("SELECT id, region, name FROM {table} ORDER BY id"),
    )
    .into_iter()
    .map(|r| r.join(":"))
    .collect()
}

/// Every central row with its soft-delete marker: `id:region:name:deleted`.
async fn central_rows(env: &Env, table: &str) -> Vec<String> {
    env.central_query(Sql::all(&format!(
        "SELECT id, region, name, CASE WHEN es_deleted THEN 1 ELSE 0 END FROM {table} ORDER BY id"
    )))
    .await
    .into_iter()
    .map(|r| r.join(":"))
    .collect()
}

async fn initial_load_selects_each_nodes_rows(backend: Backend) {
    let env = setup(backend).await;
    for t in TABLES {
        assert_eq!(
            edge_rows(&env, "north", t),
            ["1:north:n1", "2:north:n2", "3:north:n3"],
            "{t}"
        );
        assert_eq!(
            edge_rows(&env, "south", t),
            ["4:south:s4", "5:south:s5"],
            "{t}"
        );
        assert_eq!(edge_rows(&env, "quote", t), ["6:o'hare:q6"], "{t}");
    }
}

async fn central_updates_move_rows_out_and_in(backend: Backend) {
    let env = setup(backend).await;
    for t in TABLES {
        env.central_run(Sql::all(&format!(
            "UPDATE {t} SET region = 'south' WHERE id = 1;
             UPDATE {t} SET name = 'n2b' WHERE id = 2;
             UPDATE {t} SET region = 'north', name = 'q6b' WHERE id = 6"
        )))
        .await;
    }
    env.sync_all(1).await;
    for t in TABLES {
        // Gone from north physically (no soft-deleted copy), arrived in the
        // south; an in-scope update still flows.
        assert_eq!(
            edge_rows(&env, "north", t),
            ["2:north:n2b", "3:north:n3", "6:north:q6b"],
            "{t}"
        );
        assert_eq!(
            edge_rows(&env, "south", t),
            ["1:south:n1", "4:south:s4", "5:south:s5"],
            "{t}"
        );
        assert!(edge_rows(&env, "quote", t).is_empty(), "{t}");
    }
    // Removing a row that left the scope is no local delete: nothing flows
    // back, the central rows are as the central wrote them.
    env.sync_all(2).await;
    for t in TABLES {
        assert_eq!(
            central_rows(&env, t).await,
            [
                "1:south:n1:0",
                "2:north:n2b:0",
                "3:north:n3:0",
                "4:south:s4:0",
                "5:south:s5:0",
                "6:north:q6b:0"
            ],
            "{t}"
        );
        assert_eq!(
            edge_rows(&env, "south", t),
            ["1:south:n1", "4:south:s4", "5:south:s5"],
            "{t}"
        );
    }
    // And back: a row moved into north again arrives as a plain upsert.
    for t in TABLES {
        env.central_run(Sql::all(&format!(
            "UPDATE {t} SET region = 'north' WHERE id = 1"
        )))
        .await;
    }
    env.sync_all(1).await;
    for t in TABLES {
        assert_eq!(
            edge_rows(&env, "north", t),
            ["1:north:n1", "2:north:n2b", "3:north:n3", "6:north:q6b"],
            "{t}"
        );
        assert_eq!(
            edge_rows(&env, "south", t),
            ["4:south:s4", "5:south:s5"],
            "{t}"
        );
    }
}

async fn pushes_outside_the_filter_are_refused_as_conflicts(backend: Backend) {
    let env = setup(backend).await;
    for t in TABLES {
        env.edge("north")
            .execute_batch(&format!(
                "INSERT INTO {t} (id, region, name) VALUES (10, 'south', 'sneaky');
                 UPDATE {t} SET region = 'south' WHERE id = 2;
                 INSERT INTO {t} (id, region, name) VALUES (4, 'north', 'takeover');
                 INSERT INTO {t} (id, region, name) VALUES (11, 'north', 'fine');
                 UPDATE {t} SET name = 'n3b' WHERE id = 3;"
            ))
            .expect("north writes");
    }
    let stats = env.sync_node("north").await;
    for s in &stats {
        assert_eq!(
            s.quarantined, 0,
            "{}: refused as conflicts, not quarantined",
            s.table
        );
        assert!(s.conflicts >= 3, "{}: {s:?}", s.table);
    }
    for t in TABLES {
        // The central kept its rows; the in-scope changes of the same batch
        // were applied.
        assert_eq!(
            central_rows(&env, t).await,
            [
                "1:north:n1:0",
                "2:north:n2:0",
                "3:north:n3b:0",
                "4:south:s4:0",
                "5:south:s5:0",
                "6:o'hare:q6:0",
                "11:north:fine:0"
            ],
            "{t}"
        );
        // North took the central's row back where it may hold it and
        // dropped the rows it may not.
        assert_eq!(
            edge_rows(&env, "north", t),
            ["1:north:n1", "2:north:n2", "3:north:n3b", "11:north:fine"],
            "{t}"
        );
    }
    let e = env.engine_ok().await;
    let log = e.central.conflicts(true, 100).await.expect("conflict log");
    for t in TABLES {
        let mut refused: Vec<i64> = log
            .iter()
            .filter(|c| c.table.ends_with(t) && c.strategy == ConflictPolicy::OutOfScope)
            .map(|c| {
                assert_eq!(c.node, "north");
                assert!(!c.open, "a refusal waits for nobody");
                match c.key.first().map(|(_, v)| v) {
                    Some(Value::Int(k)) => *k,
                    other => panic!("{t}: key {other:?}"),
                }
            })
            .collect();
        refused.sort_unstable();
        assert_eq!(refused, [2, 4, 10], "{t}: {log:?}");
    }
    // Quiet afterwards: nothing left to push, nothing changes.
    env.sync_all(1).await;
    for t in TABLES {
        assert_eq!(
            edge_rows(&env, "south", t),
            ["4:south:s4", "5:south:s5"],
            "{t}"
        );
    }
}

/// Through `edgesync serve`: the hub binds each node's filter from its
/// credential (`token create --param region=...`) and hands it to the
/// central, so move-out and move-in work as in direct mode.
async fn rows_move_out_and_in_through_the_hub(backend: Backend) {
    let tables = "[[table]]\nname = \"shops_h\"\ndeletes = \"hard\"\nfilter = \"region = :region\"\n\n\
                  [[table]]\nname = \"shops_s\"\ndeletes = \"soft\"\nfilter = \"region = :region\"\n";
    let mut h = HubEnv::new(backend, &["north", "south"], DDL, tables, "").await;
    for node in ["north", "south"] {
        let token = h.create_token(node, &["--param", &format!("region={node}")]);
        h.tokens.insert(node.to_string(), token);
    }
    // The edges' own config names the tables only (filters are the hub's).
    let url = h.hubs[0].url.clone();
    h.write_edge_config(
        &url,
        "[[table]]\nname = \"shops_h\"\ndeletes = \"hard\"\n\n\
         [[table]]\nname = \"shops_s\"\ndeletes = \"soft\"\n",
        "",
    );
    for t in TABLES {
        h.env
            .central_run(Sql::all(&format!(
                "INSERT INTO {t} (id, region, name) VALUES
                   (1, 'north', 'n1'), (2, 'north', 'n2'), (4, 'south', 's4')"
            )))
            .await;
    }
    h.env.init().await;
    h.env.sync_all(1).await;
    for t in TABLES {
        assert_eq!(
            edge_rows(&h.env, "north", t),
            ["1:north:n1", "2:north:n2"],
            "{t}"
        );
        assert_eq!(edge_rows(&h.env, "south", t), ["4:south:s4"], "{t}");
        h.env
            .central_run(Sql::all(&format!(
                "UPDATE {t} SET region = 'south' WHERE id = 1"
            )))
            .await;
    }
    h.env.sync_all(1).await;
    for t in TABLES {
        assert_eq!(edge_rows(&h.env, "north", t), ["2:north:n2"], "{t}");
        assert_eq!(
            edge_rows(&h.env, "south", t),
            ["1:south:n1", "4:south:s4"],
            "{t}"
        );
    }
}

/// A filter the central could not evaluate as written is refused when the
/// engine opens (so by `check-config` too), naming the table and the
/// reason, before anything is synced.
async fn a_filter_that_does_not_fit_its_table_is_refused(backend: Backend) {
    let env = Env::new(backend, &["north"], DDL).await;
    for (filter, says) in [
        ("id = :region", "not an integer"),
        ("town = :region", "town is not a synced column"),
        ("region > :region", "may use =, <>"),
    ] {
        let toml = format!(
            "[central]\nurl = \"{}\"\n\n[[edge]]\nnode = \"north\"\npath = \"{}\"\n\
             params = {{ region = \"north\" }}\n\n[[table]]\nname = \"shops_h\"\n\
             filter = \"{filter}\"\n",
            env.central_url,
            env.edge_path("north").display()
        );
        std::fs::write(env.config_path(), toml).expect("write sync.toml");
        let err = match env.engine(Default::default()).await {
            Ok(_) => panic!("{filter}: accepted"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("shops_h") && err.contains(says),
            "{filter}: {err}"
        );
    }
}

for_each_backend!(
    initial_load_selects_each_nodes_rows,
    central_updates_move_rows_out_and_in,
    pushes_outside_the_filter_are_refused_as_conflicts,
    rows_move_out_and_in_through_the_hub,
    a_filter_that_does_not_fit_its_table_is_refused,
);
