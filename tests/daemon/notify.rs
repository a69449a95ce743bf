//! On a PostgreSQL central, a central commit wakes the pull of the edges
//! that sync the table (`LISTEN/NOTIFY`), whatever `sync.interval` says; a
//! dropped listening connection loses nothing; `init-sync` adds the
//! announcing trigger to a central provisioned before it, and `deinit-sync`
//! removes it.

use std::time::{Duration, Instant};

use super::harness::{edge_count, poll, Daemon, SOON};
use crate::common::{Backend, Env, Sql};

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);",
    postgres: "CREATE TABLE items (id bigint PRIMARY KEY, name text);",
    mysql: "CREATE TABLE items (id bigint PRIMARY KEY, name longtext);",
};
const ITEMS: &str = "[[table]]\nname = \"items\"\n";
/// The info line the daemon logs each time it (re)starts listening.
const LISTENING: &str = "listening for central commits; pulling every table once";
/// An interval no test waits for: only a notification can be this fast.
const NEVER: (&str, &str) = ("EDGESYNC_SYNC__INTERVAL", "1h");

async fn insert_central(env: &Env, id: i64) -> Instant {
    env.central_run(Sql::all(&format!(
        "INSERT INTO items (id, name) VALUES ({id}, 'from hq')"
    )))
    .await;
    Instant::now()
}

/// Wait until the edge of `node` holds item `id`; how long that took from
/// `since`.
fn wait_edge(d: &mut Daemon, env: &Env, node: &str, id: i64, since: Instant) -> Duration {
    let path = env.edge_path(node);
    let sql = format!("SELECT count(*) FROM items WHERE id = {id}");
    let arrived = poll(SOON, || {
        d.assert_running();
        edge_count(&path, &sql) == 1
    });
    assert!(
        arrived,
        "item {id} never reached edge {node}; log:\n{}",
        d.log_text()
    );
    since.elapsed()
}

fn listening_count(d: &Daemon) -> usize {
    d.log_text()
        .lines()
        .filter(|l| l.contains(LISTENING))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_central_insert_reaches_every_edge_within_two_seconds() {
    let mut env = Env::new(Backend::Postgres, &["a", "b"], &DDL).await;
    env.write_config(ITEMS, "");
    env.init().await;
    let mut d = Daemon::start(&env, &[NEVER]);
    d.wait_log(&[LISTENING], SOON);
    d.wait_synced("a", 1);
    d.wait_synced("b", 1);
    for id in 1..=3 {
        let committed = insert_central(&env, id).await;
        for node in ["a", "b"] {
            let took = wait_edge(&mut d, &env, node, id, committed);
            assert!(
                took <= Duration::from_secs(2),
                "central item {id} took {took:?} to reach edge {node}; log:\n{}",
                d.log_text()
            );
        }
    }
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_listen_connection_loses_no_change() {
    let mut env = Env::new(Backend::Postgres, &["a"], &DDL).await;
    env.write_config(ITEMS, "");
    env.init().await;
    let mut d = Daemon::start(&env, &[NEVER]);
    d.wait_log(&[LISTENING], SOON);
    d.wait_synced("a", 1);

    // Kill the listening connection, as a DBA or a failover would.
    let killed = env
        .central_query(Sql::all(
            "WITH l AS MATERIALIZED (
                 SELECT pid FROM pg_stat_activity
                  WHERE application_name = 'edgesync-listen'
                    AND datname = current_database() AND pid <> pg_backend_pid())
             SELECT count(*) FROM l WHERE pg_terminate_backend(l.pid)",
        ))
        .await;
    assert_eq!(killed[0][0], "1", "one listening connection, killed");
    // Committed while nobody listens: the pull after reconnecting finds it.
    let committed = insert_central(&env, 10).await;
    let took = wait_edge(&mut d, &env, "a", 10, committed);
    assert!(
        took <= Duration::from_secs(6),
        "a change committed while not listening took {took:?}; log:\n{}",
        d.log_text()
    );
    let relistened = poll(SOON, || listening_count(&d) >= 2);
    assert!(relistened, "never listened again; log:\n{}", d.log_text());
    // And announcements work again.
    let committed = insert_central(&env, 11).await;
    let took = wait_edge(&mut d, &env, "a", 11, committed);
    assert!(
        took <= Duration::from_secs(2),
        "a change after reconnecting took {took:?}; log:\n{}",
        d.log_text()
    );
    d.stop();
}

async fn notify_objects(env: &Env) -> (String, String) {
    let rows = env
        .central_query(Sql::all(
            "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'es_notify'),
                    (SELECT count(*) FROM pg_proc WHERE proname = 'es_notify')",
        ))
        .await;
    (rows[0][0].clone(), rows[0][1].clone())
}

fn stdout_of(env: &Env, args: &[&str]) -> String {
    let out = env.cli(args);
    assert!(
        out.status.success(),
        "edgesync {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_sync_adds_the_announcement_to_an_older_central_and_deinit_removes_it() {
    let mut env = Env::new(Backend::Postgres, &["a"], &DDL).await;
    env.write_config(ITEMS, "");
    env.init().await;
    assert_eq!(notify_objects(&env).await, ("1".into(), "1".into()));
    // A central provisioned by an edgesync from before announcements.
    env.central_run(Sql::all(
        "DROP TRIGGER es_notify ON items; DROP FUNCTION es_notify();",
    ))
    .await;
    let plan = stdout_of(&env, &["init-sync", "--dry-run"]);
    assert!(
        plan.contains(
            "CREATE TRIGGER es_notify AFTER INSERT OR UPDATE OR DELETE ON \"public\".\"items\""
        ),
        "{plan}"
    );
    assert!(plan.contains("FOR EACH STATEMENT"), "{plan}");
    assert!(plan.contains("pg_notify('edgesync', TG_ARGV[0])"), "{plan}");
    assert_eq!(
        notify_objects(&env).await,
        ("0".into(), "0".into()),
        "dry run"
    );
    stdout_of(&env, &["init-sync"]);
    assert_eq!(notify_objects(&env).await, ("1".into(), "1".into()));
    let again = stdout_of(&env, &["init-sync", "--dry-run"]);
    assert!(
        !again.contains("es_notify"),
        "init-sync is idempotent: {again}"
    );
    // The announcement works (a commit is heard on the channel).
    let mut listener = sqlx::postgres::PgListener::connect(&env.central_url)
        .await
        .expect("listen");
    listener.listen("edgesync").await.expect("LISTEN edgesync");
    insert_central(&env, 1).await;
    let heard = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification within 5 s")
        .expect("notification");
    assert_eq!(heard.payload(), "public.items");
    stdout_of(&env, &["deinit-sync"]);
    assert_eq!(notify_objects(&env).await, ("0".into(), "0".into()));
}
