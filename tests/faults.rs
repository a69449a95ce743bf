//! Network and database faults: central connections killed mid-sync
//! (PostgreSQL and MariaDB), and an edge file locked by its application past
//! the busy timeout (every backend).
//!
//! Whatever fails, a later sync converges with nothing lost and nothing
//! applied twice; a locked edge fails alone (with an error saying why) while
//! the other edges of the same run keep syncing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgesync::engine::sync;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use mysql_async::prelude::Queryable as _;

use crate::common::{
    connect_mysql, connect_pg, query_text, seed_from_env, series, Backend, Env, Sql,
};
use crate::for_each_backend;

const CENTRAL_ROWS: i64 = 15_000;
const EDGE_ROWS: i64 = 15_000;
const EDGE_BASE: i64 = 1_000_000;

const BIG: Sql = Sql {
    sqlite: "CREATE TABLE big (id INTEGER PRIMARY KEY, val TEXT NOT NULL, n INTEGER NOT NULL);",
    postgres: "CREATE TABLE big (id bigint PRIMARY KEY, val text NOT NULL, n bigint NOT NULL);",
    mysql: "CREATE TABLE big (id bigint PRIMARY KEY, val longtext NOT NULL, n bigint NOT NULL);",
};

const BIG_TABLE: &str = "[[table]]\nname = \"big\"\nconflict = \"server-wins\"\n";

/// (val, n, deleted) by id.
type Rows = BTreeMap<i64, (String, i64, bool)>;

fn to_rows(rows: &[Vec<String>]) -> Rows {
    rows.iter()
        .map(|r| {
            (
                r[0].parse().expect("id"),
                (r[1].clone(), r[2].parse().expect("n"), r[3] == "1"),
            )
        })
        .collect()
}

async fn central_big(env: &Env) -> Rows {
    to_rows(
        &env.central_query(Sql::all("SELECT id, val, n, es_deleted FROM big"))
            .await,
    )
}

fn edge_big(env: &Env, node: &str) -> Rows {
    to_rows(&query_text(
        &env.edge(node),
        "SELECT id, val, n, es_deleted FROM big",
    ))
}

fn diff(what: &str, want: &Rows, have: &Rows) -> Vec<String> {
    let mut out = Vec::new();
    for (id, w) in want {
        match have.get(id) {
            Some(h) if h == w => {}
            other => out.push(format!("{what}: id {id}: want {w:?}, have {other:?}")),
        }
    }
    for id in have.keys() {
        if !want.contains_key(id) {
            out.push(format!("{what}: id {id} should not exist"));
        }
    }
    out
}

fn assert_no_diff(problems: Vec<String>, seed: u64) {
    assert!(
        problems.is_empty(),
        "{} differences (seed {seed}), first ones:\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Kill every other connection to the test database, every 100-400 ms,
/// until told to stop: PostgreSQL `pg_terminate_backend`, MySQL `KILL
/// CONNECTION` of each id in the process list. Returns how many it killed.
fn spawn_killer(env: &Env, stop: Arc<AtomicBool>, seed: u64) -> tokio::task::JoinHandle<usize> {
    let url = env.central_url.clone();
    let backend = env.backend;
    tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut killed = 0usize;
        match backend {
            Backend::Postgres => {
                let mut conn = connect_pg(&url).await;
                while !stop.load(Ordering::SeqCst) {
                    let n: i64 = sqlx::query_scalar(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    )
                    .fetch_one(&mut conn)
                    .await
                    .expect("terminate backends");
                    killed += usize::try_from(n).unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
                }
            }
            Backend::Mysql => {
                let mut conn = connect_mysql(&url).await;
                while !stop.load(Ordering::SeqCst) {
                    let ids: Vec<u64> = conn
                        .query(
                            "SELECT ID FROM information_schema.PROCESSLIST \
                             WHERE DB = DATABASE() AND ID <> CONNECTION_ID()",
                        )
                        .await
                        .expect("process list");
                    for id in ids {
                        // A connection that ended meanwhile is "unknown thread".
                        if conn
                            .query_drop(format!("KILL CONNECTION {id}"))
                            .await
                            .is_ok()
                        {
                            killed += 1;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
                }
                conn.disconnect().await.ok();
            }
            Backend::Sqlite => unreachable!("a SQLite central has no connections to kill"),
        }
        killed
    })
}

/// A server central whose connections are killed mid-sync (SQLite has no
/// server connections; its faults are the locked files below).
async fn central_connections_killed_mid_sync_lose_nothing(backend: Backend) {
    let seed = seed_from_env(
        "EDGESYNC_FAULTS_SEED",
        &format!("central_connections_killed_mid_sync_lose_nothing({backend:?})"),
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut env = Env::new(backend, &["a"], &BIG).await;
    env.write_config(BIG_TABLE, "batch_rows = 200\npage_rows = 200");
    env.central_run(Sql::all(&format!(
        "INSERT INTO big (id, val, n) SELECT i, concat('c', i), 0 FROM {};",
        series(CENTRAL_ROWS)
    )))
    .await;
    env.init().await;
    // Central changes after provisioning, and a large offline edit on the edge.
    env.central_run(Sql::all(
        "UPDATE big SET n = 1 WHERE id % 5 = 0; DELETE FROM big WHERE id % 97 = 0;",
    ))
    .await;
    env.edge("a")
        .execute_batch(&format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {EDGE_ROWS})
               INSERT INTO big (id, val, n) SELECT {EDGE_BASE} + i, 'e' || i, 0 FROM s;"
        ))
        .expect("edge writes");
    let mut model: Rows = (1..=CENTRAL_ROWS)
        .map(|i| (i, (format!("c{i}"), i64::from(i % 5 == 0), i % 97 == 0)))
        .collect();
    for i in 1..=EDGE_ROWS {
        model.insert(EDGE_BASE + i, (format!("e{i}"), 0, false));
    }

    // The daemon's view: one engine (one connection pool) for the whole test.
    let engine = env.engine_ok().await;
    let stop = Arc::new(AtomicBool::new(false));
    let killer = spawn_killer(&env, stop.clone(), seed);
    let started = Instant::now();
    let (mut rounds, mut failures, mut errors) = (0usize, 0usize, Vec::new());
    let (mut pages_under_fire, mut batches_under_fire, mut pull_failures) = (0, 0, 0);
    let edge = env.edge_app("a");
    loop {
        let stats = sync::sync_all(&engine).await;
        rounds += 1;
        for s in &stats {
            pages_under_fire += s.pull_pages;
            batches_under_fire += s.push_batches;
            if let Some(e) = &s.error {
                failures += 1;
                pull_failures += usize::from(e.starts_with("pull"));
                if errors.len() < 5 {
                    errors.push(e.clone());
                }
            }
        }
        // The application keeps writing between attempts.
        let mut sql = String::from("BEGIN IMMEDIATE;");
        for _ in 0..20 {
            let i = rng.random_range(1..=EDGE_ROWS) + EDGE_BASE;
            let row = model.get_mut(&i).expect("edge row");
            row.1 += 1;
            sql.push_str(&format!("UPDATE big SET n = {} WHERE id = {i};", row.1));
        }
        sql.push_str("COMMIT;");
        edge.execute_batch(&sql).expect("edge app writes");
        let elapsed = started.elapsed();
        let enough = failures >= 3 && pull_failures >= 1 && pages_under_fire > 0;
        if (elapsed > Duration::from_secs(6) && enough) || elapsed > Duration::from_secs(45) {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let killed = killer.await.expect("killer");
    eprintln!(
        "{rounds} sync attempts under fire ({batches_under_fire} push batches and {pages_under_fire} pull pages committed), \
         {failures} failed ({pull_failures} while pulling), {killed} backends terminated; errors seen: {errors:#?}"
    );
    assert!(killed > 0, "the test terminated no connection");
    assert!(
        failures > 0,
        "no sync failed: the faults were not exercised"
    );

    // The same engine recovers on its own (as the daemon must), and a fresh
    // process agrees there is nothing left to do.
    for i in 0..2 {
        let stats = sync::sync_all(&engine).await;
        for s in &stats {
            assert!(
                s.error.is_none(),
                "sync {i} after the faults stopped failed: {:?}",
                s.error
            );
        }
    }
    drop(engine);
    let idle = env.sync_node("a").await;
    assert_eq!((idle[0].pushed, idle[0].pulled), (0, 0), "{idle:?}");

    // (On MySQL the application's deletes removed the central rows.)
    let central_model: Rows = model
        .iter()
        .filter(|(_, r)| !(r.2 && backend.app_deletes_remove_central_rows()))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let mut problems = diff("central", &central_model, &central_big(&env).await);
    // A row deleted before the edge ever saw it is not created there.
    let edge_rows = edge_big(&env, "a");
    let edge_model: Rows = model
        .iter()
        .filter(|(id, r)| !r.2 || edge_rows.contains_key(id))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    problems.extend(diff("edge a", &edge_model, &edge_rows));
    assert_no_diff(problems, seed);
    let e = env.engine_ok().await;
    let conflicts = e.central.conflicts(true, 100_000).await.expect("conflicts");
    assert!(
        conflicts.is_empty(),
        "an interrupted push was judged a conflict (applied twice or answer mishandled): {:?}",
        &conflicts[..conflicts.len().min(5)]
    );
}

const T: Sql = Sql {
    sqlite: "CREATE TABLE t (id INTEGER PRIMARY KEY, val TEXT NOT NULL, n INTEGER NOT NULL);",
    postgres: "CREATE TABLE t (id bigint PRIMARY KEY, val text NOT NULL, n bigint NOT NULL);",
    mysql: "CREATE TABLE t (id bigint PRIMARY KEY, val longtext NOT NULL, n bigint NOT NULL);",
};

async fn a_locked_edge_file_fails_alone_and_converges_after_release(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &T).await;
    env.write_config("[[table]]\nname = \"t\"\n", "");
    env.central_run(Sql::all(&format!(
        "INSERT INTO t (id, val, n) SELECT i, concat('c', i), 0 FROM {};",
        series(50)
    )))
    .await;
    env.init().await;
    env.sync_all(1).await;
    env.edge("a")
        .execute_batch(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20)
               INSERT INTO t (id, val, n) SELECT 1000 + i, 'a' || i, 0 FROM s;
             UPDATE t SET n = 1 WHERE id <= 5;",
        )
        .expect("edge a");
    env.edge("b")
        .execute_batch(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20)
               INSERT INTO t (id, val, n) SELECT 2000 + i, 'b' || i, 0 FROM s;
             UPDATE t SET n = 2 WHERE id BETWEEN 6 AND 10;",
        )
        .expect("edge b");
    env.central_run(Sql::all(
        "UPDATE t SET val = 'hq' WHERE id BETWEEN 11 AND 15;",
    ))
    .await;

    // The application on edge a holds its file's write lock (its own open
    // transaction) for longer than edgesync's busy timeout.
    let locker = env.edge("a");
    locker
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO t (id, val, n) VALUES (1999, 'app', 7);")
        .expect("lock edge a");
    let engine = env.engine_ok().await;
    let started = Instant::now();
    let stats = sync::sync_all(&engine).await;
    let took = started.elapsed();
    eprintln!("sync with edge a locked took {took:?}: {stats:#?}");
    let a = stats.iter().find(|s| s.node == "a").expect("a");
    let b = stats.iter().find(|s| s.node == "b").expect("b");
    let err = a
        .error
        .as_deref()
        .unwrap_or_else(|| panic!("edge a is locked, its sync must fail: {a:?}"));
    let lower = err.to_lowercase();
    assert!(
        lower.contains("locked") || lower.contains("busy"),
        "the error must say the edge file is locked/busy: {err}"
    );
    assert!(
        b.error.is_none(),
        "edge b must sync while a is locked: {b:?}"
    );
    assert_eq!(b.pushed, 25, "b pushed its 25 changes: {b:?}");
    // b received the central's edits (and a's rows if a's push reached the
    // central before its acknowledgement hit the lock).
    let b_rows = edge_big_t(&env, "b");
    for id in 11..=15 {
        assert_eq!(b_rows[&id].0, "hq", "b did not receive the central's edits");
    }
    assert!(
        took < Duration::from_secs(60),
        "a locked edge held up the run for {took:?}"
    );

    // The application releases the lock; the next syncs converge.
    locker.execute_batch("COMMIT;").expect("unlock");
    drop(locker);
    for i in 0..2 {
        for s in sync::sync_all(&engine).await {
            assert!(s.error.is_none(), "sync {i} after release: {s:?}");
        }
    }
    let mut model: Rows = (1..=50).map(|i| (i, (format!("c{i}"), 0, false))).collect();
    for i in 1..=5 {
        model.get_mut(&i).expect("row").1 = 1;
    }
    for i in 6..=10 {
        model.get_mut(&i).expect("row").1 = 2;
    }
    for i in 11..=15 {
        model.get_mut(&i).expect("row").0 = "hq".into();
    }
    for i in 1..=20 {
        model.insert(1000 + i, (format!("a{i}"), 0, false));
        model.insert(2000 + i, (format!("b{i}"), 0, false));
    }
    model.insert(1999, ("app".into(), 7, false));
    let central = to_rows(
        &env.central_query(Sql::all("SELECT id, val, n, es_deleted FROM t"))
            .await,
    );
    let mut problems = diff("central", &model, &central);
    problems.extend(diff("edge a", &model, &edge_big_t(&env, "a")));
    problems.extend(diff("edge b", &model, &edge_big_t(&env, "b")));
    assert_no_diff(problems, 0);
    assert!(
        engine
            .central
            .conflicts(true, 1000)
            .await
            .expect("conflicts")
            .is_empty(),
        "the re-sent push of edge a must not be judged a conflict"
    );
    let last_error = query_text(
        &env.edge("a"),
        "SELECT last_error IS NULL FROM es_state WHERE tbl = 't'",
    );
    assert_eq!(
        last_error,
        vec![vec!["1".to_string()]],
        "the error is cleared"
    );
    // Checked last, so everything above is proven whatever the wording: the
    // error must name the file that is locked (README: errors "name the file,
    // key, table or column at fault"); an operator with many edge files on a
    // gateway cannot act on a bare "database is locked".
    let path = env.edge_path("a").display().to_string();
    assert!(
        err.contains(&path),
        "the locked-edge error does not name the edge file {path}: {err:?}"
    );
}

fn edge_big_t(env: &Env, node: &str) -> Rows {
    to_rows(&query_text(
        &env.edge(node),
        "SELECT id, val, n, es_deleted FROM t",
    ))
}

for_each_backend!(a_locked_edge_file_fails_alone_and_converges_after_release);

mod postgres_connections {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn central_connections_killed_mid_sync_lose_nothing() {
        super::central_connections_killed_mid_sync_lose_nothing(crate::common::Backend::Postgres)
            .await
    }
}

mod mysql_connections {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn central_connections_killed_mid_sync_lose_nothing() {
        super::central_connections_killed_mid_sync_lose_nothing(crate::common::Backend::Mysql).await
    }
}
