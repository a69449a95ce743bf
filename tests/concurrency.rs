//! Commit-safe watermarks: central transactions that take their version early
//! and commit late are still delivered.
//!
//! Eight writer tasks write to the central in transactions held open for a
//! random time (a few roll back) while an edge pulls through the engine in a
//! tight loop with tiny pages. Afterwards the edge must hold exactly the
//! committed rows. Next to the edge, a *naive* reader polls the same central
//! with `WHERE es_ver > max(es_ver seen)` — the design the issue warns about —
//! and on PostgreSQL it must miss rows (one writer deliberately takes its
//! version first and commits last), which shows the edge's check would fail
//! on that design.
//!
//! On MySQL/MariaDB no application transaction takes a version at all
//! ("stamp on read", adapters/mysql/DESIGN.md): writes stay pending until a
//! pull's stamping step finds them committed. There the forced long
//! transaction writes its row, then stays open until later versions have
//! been handed out and read by the naive reader, and only then commits; the
//! edge must still get it, and the naive reader — reading versions that are
//! assigned in commit order — must miss no live row either.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection as _;

use crate::common::{
    connect_mysql, connect_pg, query_text, seed_from_env, Backend, CentralConn, Env, Sql,
};
use crate::for_each_backend_and_hub;

const DDL: Sql = Sql {
    sqlite:
        "CREATE TABLE w (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, val INTEGER NOT NULL);",
    postgres:
        "CREATE TABLE w (id bigint PRIMARY KEY, writer integer NOT NULL, val bigint NOT NULL);",
    mysql: "CREATE TABLE w (id bigint PRIMARY KEY, writer int NOT NULL, val bigint NOT NULL);",
};

const TABLES: &str = "[[table]]\nname = \"w\"\n";

const WRITERS: i64 = 8;
const TXNS_PER_WRITER: usize = 12;
/// The row the forced long transaction inserts (PostgreSQL and MySQL).
const LONG_ID: i64 = -1;

/// One row as committed: (writer, val, deleted).
type RowState = (i64, i64, bool);

#[derive(Default)]
struct Model {
    committed: BTreeMap<i64, RowState>,
    rolled_back: BTreeSet<i64>,
    commits: usize,
}

#[derive(Debug, Clone)]
enum Op {
    Insert { id: i64, val: i64 },
    Update { id: i64, val: i64 },
    Delete { id: i64 },
}

impl Op {
    fn sql(&self, writer: i64) -> String {
        match self {
            Op::Insert { id, val } => {
                format!("INSERT INTO w (id, writer, val) VALUES ({id}, {writer}, {val})")
            }
            Op::Update { id, val } => format!("UPDATE w SET val = {val} WHERE id = {id}"),
            Op::Delete { id } => format!("DELETE FROM w WHERE id = {id}"),
        }
    }
}

/// The transactions of one writer, decided up front from its seed: inserts of
/// new ids, updates and deletes of its own committed rows, a hold time, and
/// whether it commits.
struct Plan {
    ops: Vec<Op>,
    hold: Duration,
    commit: bool,
}

fn next_plan(rng: &mut StdRng, w: i64, t: usize, live: &[i64], hold_max_ms: u64) -> Plan {
    let mut ops = Vec::new();
    for j in 0..rng.random_range(1..=2i64) {
        ops.push(Op::Insert {
            id: w * 1_000_000 + t as i64 * 10 + j,
            val: rng.random_range(0..1_000_000),
        });
    }
    let mut touched = BTreeSet::new();
    for _ in 0..rng.random_range(0..=2) {
        if live.is_empty() {
            break;
        }
        let id = live[rng.random_range(0..live.len())];
        if touched.insert(id) {
            ops.push(Op::Update {
                id,
                val: rng.random_range(0..1_000_000),
            });
        }
    }
    if !live.is_empty() && rng.random_bool(0.15) {
        let id = live[rng.random_range(0..live.len())];
        if touched.insert(id) {
            ops.push(Op::Delete { id });
        }
    }
    // A few roll back: some at random, and a fixed one for half the writers
    // so every run has rolled-back rows.
    let commit = !(t == 3 && w % 2 == 0) && rng.random_bool(0.9);
    Plan {
        ops,
        hold: Duration::from_millis(rng.random_range(0..=hold_max_ms)),
        commit,
    }
}

fn record(model: &Mutex<Model>, w: i64, plan: &Plan, live: &mut Vec<i64>) {
    let mut m = model.lock().expect("model");
    for op in &plan.ops {
        match (op, plan.commit) {
            (Op::Insert { id, val }, true) => {
                m.committed.insert(*id, (w, *val, false));
                live.push(*id);
            }
            (Op::Insert { id, .. }, false) => {
                m.rolled_back.insert(*id);
            }
            (Op::Update { id, val }, true) => {
                m.committed.get_mut(id).expect("own row").1 = *val;
            }
            (Op::Delete { id }, true) => {
                m.committed.get_mut(id).expect("own row").2 = true;
                live.retain(|x| x != id);
            }
            _ => {}
        }
    }
    if plan.commit {
        m.commits += 1;
    }
}

/// A PostgreSQL writer. Writer 0 first runs the forced long transaction: it
/// inserts a row (taking its version from the sequence), then stays open
/// until the naive reader's watermark has moved past that version, then
/// commits.
async fn pg_writer(
    url: String,
    w: i64,
    seed: u64,
    model: Arc<Mutex<Model>>,
    naive_wm: Arc<AtomicI64>,
) {
    let mut conn = connect_pg(&url).await;
    let mut rng = StdRng::seed_from_u64(seed ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    if w == 0 {
        let mut tx = conn.begin().await.expect("begin");
        let ver: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "INSERT INTO w (id, writer, val) VALUES ({LONG_ID}, 0, 42) RETURNING es_ver"
        )))
        .fetch_one(&mut *tx)
        .await
        .expect("long insert");
        let started = Instant::now();
        while naive_wm.load(Ordering::SeqCst) <= ver {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the other writers never committed past version {ver}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tx.commit().await.expect("long commit");
        model
            .lock()
            .expect("model")
            .committed
            .insert(LONG_ID, (0, 42, false));
    }
    let mut live = Vec::new();
    for t in 0..TXNS_PER_WRITER {
        let plan = next_plan(&mut rng, w, t, &live, 300);
        let mut tx = conn.begin().await.expect("begin");
        for op in &plan.ops {
            sqlx::raw_sql(sqlx::AssertSqlSafe(op.sql(w)))
                .execute(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("writer {w}: {op:?}: {e}"));
        }
        tokio::time::sleep(plan.hold).await;
        if plan.commit {
            tx.commit().await.expect("commit");
        } else {
            tx.rollback().await.expect("rollback");
        }
        record(&model, w, &plan, &mut live);
    }
}

/// A MySQL writer. Writer 0 first runs the forced long transaction: it
/// inserts a row (pending: no version yet), notes the last version handed
/// out, then stays open until the naive reader has read a version above
/// that one (the stamping step ran, skipped the locked row and stamped
/// others), then commits.
///
/// A transaction the server aborts as a deadlock victim (or after a lock
/// wait timeout) is rolled back as a whole, and recorded so: an application
/// would retry it. Counted in `aborted`; that independent writers deadlock
/// at all is the subject of
/// `independent_application_transactions_do_not_block_each_other`.
async fn mysql_writer(
    url: String,
    w: i64,
    seed: u64,
    model: Arc<Mutex<Model>>,
    naive_wm: Arc<AtomicI64>,
    aborted: Arc<AtomicUsize>,
) {
    use mysql_async::TxOpts;
    let mut conn = connect_mysql(&url).await;
    let mut rng = StdRng::seed_from_u64(seed ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    if w == 0 {
        let mut tx = conn
            .start_transaction(TxOpts::default())
            .await
            .expect("begin");
        tx.query_drop(format!(
            "INSERT INTO w (id, writer, val) VALUES ({LONG_ID}, 0, 42)"
        ))
        .await
        .expect("long insert");
        let seq: Option<i64> = tx
            .query_first("SELECT seq FROM es_ctl")
            .await
            .expect("version counter");
        let seq = seq.expect("es_ctl row");
        let started = Instant::now();
        while naive_wm.load(Ordering::SeqCst) <= seq {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no version above {seq} was handed out while the long transaction was open"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tx.commit().await.expect("long commit");
        model
            .lock()
            .expect("model")
            .committed
            .insert(LONG_ID, (0, 42, false));
    }
    let mut live = Vec::new();
    for t in 0..TXNS_PER_WRITER {
        let mut plan = next_plan(&mut rng, w, t, &live, 300);
        let mut tx = conn
            .start_transaction(TxOpts::default())
            .await
            .expect("begin");
        for op in &plan.ops {
            match tx.query_drop(op.sql(w)).await {
                Ok(()) => {}
                Err(mysql_async::Error::Server(e)) if e.code == 1213 || e.code == 1205 => {
                    aborted.fetch_add(1, Ordering::SeqCst);
                    plan.commit = false;
                    break;
                }
                Err(e) => panic!("writer {w}: {op:?}: {e}"),
            }
        }
        if plan.commit {
            tokio::time::sleep(plan.hold).await;
            tx.commit().await.expect("commit");
        } else {
            tx.rollback().await.expect("rollback");
        }
        record(&model, w, &plan, &mut live);
    }
    conn.disconnect().await.ok();
}

/// A SQLite writer (blocking; runs on its own thread). SQLite has one writer
/// at a time, so holds are short: each held transaction blocks the others.
fn sqlite_writer(path: std::path::PathBuf, w: i64, seed: u64, model: Arc<Mutex<Model>>) {
    let mut conn = rusqlite::Connection::open(path).expect("central");
    conn.busy_timeout(Duration::from_secs(60)).expect("busy");
    let mut rng = StdRng::seed_from_u64(seed ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut live = Vec::new();
    for t in 0..TXNS_PER_WRITER {
        let plan = next_plan(&mut rng, w, t, &live, 25);
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("begin");
        for op in &plan.ops {
            tx.execute_batch(&op.sql(w))
                .unwrap_or_else(|e| panic!("writer {w}: {op:?}: {e}"));
        }
        std::thread::sleep(plan.hold);
        if plan.commit {
            tx.commit().expect("commit");
        } else {
            tx.rollback().expect("rollback");
        }
        record(&model, w, &plan, &mut live);
        // let the others in
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The naive design: remember the highest `es_ver` seen, next time ask for
/// everything above it.
struct NaiveReader {
    wm: i64,
    replica: BTreeMap<i64, RowState>,
    polls: usize,
}

impl NaiveReader {
    async fn poll(&mut self, central: &mut CentralConn) {
        let wm = self.wm;
        let rows = central
            .query(Sql::all(&format!(
                "SELECT id, writer, val, es_deleted, es_ver FROM w WHERE es_ver > {wm} ORDER BY es_ver"
            )))
            .await;
        for r in rows {
            let n = |i: usize| r[i].parse::<i64>().expect("int");
            self.replica.insert(n(0), (n(1), n(2), n(3) != 0));
            self.wm = self.wm.max(n(4));
        }
        self.polls += 1;
    }
}

async fn concurrent_late_commits_all_reach_the_edge(backend: Backend) {
    let mut env = Env::new(backend, &["e"], &DDL).await;
    env.write_config(TABLES, "page_rows = 5\nbatch_rows = 5");
    env.init().await;
    let seed = seed_from_env(
        "EDGESYNC_WATERMARK_SEED",
        &format!("concurrent_late_commits_all_reach_the_edge({backend:?})"),
    );
    let env = Arc::new(env);
    let model = Arc::new(Mutex::new(Model::default()));
    let naive_wm = Arc::new(AtomicI64::new(0));
    let writers_done = Arc::new(AtomicBool::new(false));
    let aborted = Arc::new(AtomicUsize::new(0));

    // The writers.
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let model = model.clone();
        match backend {
            Backend::Postgres => handles.push(tokio::spawn(pg_writer(
                env.central_url.clone(),
                w,
                seed,
                model,
                naive_wm.clone(),
            ))),
            Backend::Mysql => handles.push(tokio::spawn(mysql_writer(
                env.central_url.clone(),
                w,
                seed,
                model,
                naive_wm.clone(),
                aborted.clone(),
            ))),
            Backend::Sqlite => {
                let path = env.central_sqlite_path();
                handles.push(tokio::task::spawn_blocking(move || {
                    sqlite_writer(path, w, seed, model)
                }));
            }
        }
    }
    let done = writers_done.clone();
    let writers = tokio::spawn(async move {
        let mut result = Ok(());
        for h in handles {
            if let Err(e) = h.await {
                result = Err(e);
            }
        }
        done.store(true, Ordering::SeqCst);
        result
    });

    // The naive reader, polling as fast as it can.
    let naive_env = env.clone();
    let naive_done = writers_done.clone();
    let naive_wm_pub = naive_wm.clone();
    let naive = tokio::spawn(async move {
        let mut reader = NaiveReader {
            wm: 0,
            replica: BTreeMap::new(),
            polls: 0,
        };
        let mut central = naive_env.central_conn().await;
        while !naive_done.load(Ordering::SeqCst) {
            reader.poll(&mut central).await;
            naive_wm_pub.store(reader.wm, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (reader, central)
    });

    // The edge pulls through the engine in a tight loop, tiny pages.
    let engine = env.engine_ok().await;
    let edge = &engine.edges[0];
    let table = &edge.tables[0];
    let mut stats = edgesync::engine::sync::TableStats::default();
    let mut passes = 0;
    while !writers_done.load(Ordering::SeqCst) {
        edgesync::engine::sync::pull_table(
            engine.central.as_ref(),
            &edge.db,
            "e",
            table,
            5,
            &mut stats,
        )
        .await
        .expect("pull while the writers write");
        passes += 1;
    }
    if let Err(e) = writers.await.expect("join") {
        std::panic::resume_unwind(e.into_panic());
    }
    drop(engine);
    let (mut naive, mut naive_conn) = naive.await.expect("naive reader");
    // One final sync; then the naive reader's last poll (on MySQL the last
    // commits have versions only once a pull's stamping step ran).
    env.sync_node("e").await;
    naive.poll(&mut naive_conn).await;
    naive_conn.close().await;

    let model = std::mem::take(&mut *model.lock().expect("model"));
    let central: BTreeMap<i64, RowState> = rows_to_map(
        &env.central_query(Sql::all("SELECT id, writer, val, es_deleted FROM w"))
            .await,
    );
    let edge_rows = rows_to_map(&query_text(
        &env.edge("e"),
        "SELECT id, writer, val, es_deleted FROM w",
    ));
    eprintln!(
        "{backend:?}: {} commits, {} rows committed, {} rolled-back inserts ({} transactions aborted by the server), {} pull passes ({} pages) during the writes, naive reader polled {} times",
        model.commits,
        model.committed.len(),
        model.rolled_back.len(),
        aborted.load(Ordering::SeqCst),
        passes,
        stats.pull_pages,
        naive.polls
    );
    assert!(!model.rolled_back.is_empty(), "the history has rollbacks");
    // (On MySQL an application's delete removes the central row.)
    let central_model: BTreeMap<i64, RowState> = model
        .committed
        .iter()
        .filter(|(_, r)| !(r.2 && backend.app_deletes_remove_central_rows()))
        .map(|(k, v)| (*k, *v))
        .collect();
    assert_eq!(
        central, central_model,
        "the central holds exactly the committed writes"
    );
    // The edge holds every committed row with its final values. A row deleted
    // before the edge ever saw it is not created there (design: "a deleted
    // row the edge does not have is not created"); every other row must match.
    let mut problems = Vec::new();
    for (id, want) in &model.committed {
        match edge_rows.get(id) {
            Some(have) if have == want => {}
            None if want.2 => {}
            // On MySQL an application's delete reaches the edge as a
            // tombstone, without the values the row had when deleted: the
            // edge marks the values it last received.
            Some(have)
                if want.2
                    && have.2
                    && have.0 == want.0
                    && backend.app_deletes_remove_central_rows() => {}
            other => problems.push(format!("id {id}: central {want:?}, edge {other:?}")),
        }
    }
    for id in edge_rows.keys() {
        if !model.committed.contains_key(id) {
            problems.push(format!(
                "id {id} is on the edge but was never committed (rolled back: {})",
                model.rolled_back.contains(id)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the edge missed or mangled committed rows (seed {seed}):\n{}",
        problems.join("\n")
    );

    // What the naive max-version reader missed.
    let missed: Vec<i64> = model
        .committed
        .iter()
        .filter(|(id, want)| naive.replica.get(id) != Some(want))
        .map(|(id, _)| *id)
        .collect();
    eprintln!(
        "{backend:?}: a plain max(es_ver) watermark missed {} of {} committed rows: {missed:?}",
        missed.len(),
        model.committed.len()
    );
    match backend {
        Backend::Postgres => {
            assert!(
                missed.contains(&LONG_ID),
                "the naive reader should have missed the long transaction's row (it took its \
                 version first and committed last); missed: {missed:?}"
            );
        }
        Backend::Sqlite => {
            // One writer: versions are handed out in commit order, which is
            // exactly why the SQLite central may use the highest version as
            // its token. A miss here would mean that premise is broken.
            assert!(
                missed.is_empty(),
                "on SQLite versions must follow commit order; missed {missed:?}"
            );
        }
        Backend::Mysql => {
            // Versions are handed out in commit order by the stamping step,
            // so even the naive reader misses no row that still exists; it
            // cannot see deletes, which remove the row (the adapter delivers
            // them from its tombstones).
            let missed_live: Vec<String> = missed
                .iter()
                .filter(|id| !model.committed[id].2)
                .map(|id| {
                    format!(
                        "id {id}: committed {:?}, the naive reader has {:?}",
                        model.committed[id],
                        naive.replica.get(id)
                    )
                })
                .collect();
            assert!(
                missed_live.is_empty(),
                "on MySQL versions must follow commit order, but a reader of \
                 `es_ver > highest version seen` (last {}) missed live rows (seed {seed}):\n{}",
                naive.wm,
                missed_live.join("\n")
            );
        }
    }
}

fn rows_to_map(rows: &[Vec<String>]) -> BTreeMap<i64, RowState> {
    rows.iter()
        .map(|r| {
            let n = |i: usize| r[i].parse::<i64>().expect("int");
            (n(0), (n(1), n(2), n(3) != 0))
        })
        .collect()
}

for_each_backend_and_hub!(concurrent_late_commits_all_reach_the_edge);

/// Two application transactions on the central that touch different rows
/// of a synced table must not wait for each other, let alone deadlock:
/// edgesync's triggers must not add locks that couple them. Each inserts a
/// new row, then deletes an existing one, both open at once. (SQLite has one
/// writer by design, so it has nothing to show here.)
async fn independent_application_transactions_do_not_block_each_other(backend: Backend) {
    let mut env = Env::new(backend, &["e"], &DDL).await;
    env.write_config(TABLES, "");
    env.central_run(Sql::all(
        "INSERT INTO w (id, writer, val) VALUES (10, 1, 0), (20, 2, 0);",
    ))
    .await;
    env.init().await;
    env.sync_all(1).await;
    let (mut a, mut b) = (env.central_conn().await, env.central_conn().await);
    let mut problems = Vec::new();
    for (c, sql) in [
        (
            &mut a,
            "BEGIN; INSERT INTO w (id, writer, val) VALUES (1, 1, 1);",
        ),
        (
            &mut b,
            "BEGIN; INSERT INTO w (id, writer, val) VALUES (2, 2, 2);",
        ),
    ] {
        if let Err(e) = step(c, sql).await {
            problems.push(e);
        }
    }
    // a's delete runs while b's transaction is open, and b's while a's is.
    let a_delete = tokio::spawn(async move {
        let r = step(&mut a, "DELETE FROM w WHERE id = 10;").await;
        (a, r)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b_delete = step(&mut b, "DELETE FROM w WHERE id = 20;").await;
    let (mut a, a_delete) = a_delete.await.expect("join");
    for (who, r) in [("a", a_delete), ("b", b_delete)] {
        if let Err(e) = r {
            problems.push(format!("{who}'s DELETE: {e}"));
        }
    }
    for (who, c) in [("a", &mut a), ("b", &mut b)] {
        if let Err(e) = step(c, "COMMIT;").await {
            problems.push(format!("{who}'s COMMIT: {e}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{backend:?}: two application transactions on different rows of a synced table \
         blocked each other (each inserted a row, then deleted another):\n{}",
        problems.join("\n")
    );
    let live = env
        .central_query(Sql::all(
            "SELECT id FROM w WHERE es_deleted = false ORDER BY id",
        ))
        .await;
    assert_eq!(live, vec![vec!["1".to_string()], vec!["2".to_string()]]);
}

/// Run `sql` on `c`, giving up after 10 s.
async fn step(c: &mut CentralConn, sql: &str) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(10), c.run(Sql::all(sql)))
        .await
        .unwrap_or_else(|_| Err(format!("still waiting after 10 s: {sql}")))
}

mod postgres_writers {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn independent_application_transactions_do_not_block_each_other() {
        super::independent_application_transactions_do_not_block_each_other(
            crate::common::Backend::Postgres,
        )
        .await
    }
}

mod mysql_writers {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn independent_application_transactions_do_not_block_each_other() {
        super::independent_application_transactions_do_not_block_each_other(
            crate::common::Backend::Mysql,
        )
        .await
    }
}
