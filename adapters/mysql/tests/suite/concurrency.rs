//! Commit-safety under load: eight application writers, each holding its
//! transaction open a random 0-200 ms before committing (two of them roll
//! some back), while a reader pulls in a tight loop with small pages. When
//! everyone is done, the pulled state must be exactly the committed state:
//! every committed row at its last committed value, nothing rolled back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgesync_core::{Central, ConflictPolicy, DeleteMode, Value};
use mysql_async::prelude::Queryable;

use crate::common::*;

const WRITERS: i64 = 8;
const ROUNDS: i64 = 12;

/// A small deterministic generator (no extra dependency), seeded per writer.
fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_writers_and_a_tight_pull_loop_lose_nothing() {
    let db = Arc::new(TestDb::new().await);
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    // Committed state as the writers know it: id -> qty.
    let committed: Arc<Mutex<BTreeMap<i64, i64>>> = Arc::default();
    let rolled_back: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let db = db.clone();
        let committed = committed.clone();
        let rolled_back = rolled_back.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = db.app().await;
            let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ (w as u64 + 1).wrapping_mul(0x2545_F491);
            for r in 0..ROUNDS {
                let id = w * 1000 + r;
                let prev = w * 1000 + r - 1;
                conn.query_drop("BEGIN").await.expect("begin");
                conn.exec_drop(
                    "INSERT INTO items (id, name, qty, price) VALUES (?, 'w', ?, 1)",
                    (id, r),
                )
                .await
                .expect("insert");
                // Also update the previous row (re-stamping a delivered row).
                if r > 0 {
                    conn.exec_drop("UPDATE items SET qty = ? WHERE id = ?", (100 + r, prev))
                        .await
                        .expect("update");
                }
                let wait = next_rand(&mut seed) % 201;
                tokio::time::sleep(Duration::from_millis(wait)).await;
                let roll_back = w < 2 && r % 3 == 1;
                if roll_back {
                    conn.query_drop("ROLLBACK").await.expect("rollback");
                    rolled_back.lock().unwrap().insert(id);
                } else {
                    conn.query_drop("COMMIT").await.expect("commit");
                    let mut c = committed.lock().unwrap();
                    c.insert(id, r);
                    if r > 0 && c.contains_key(&prev) {
                        c.insert(prev, 100 + r);
                    }
                }
            }
            conn.disconnect().await.ok();
        }));
    }

    // The edge's view: key -> (version, qty), applying the edge's rule (skip
    // versions it already has).
    let mut edge: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut apply = |changes: Vec<edgesync_core::Change>| {
        for c in changes {
            let Value::Int(id) = c.key[0] else { panic!() };
            let Some(Value::Int(qty)) = c.values.as_ref().map(|v| v[2].clone()) else {
                panic!("{c:?}")
            };
            match edge.get(&id) {
                Some((v, _)) if *v >= c.version => {}
                _ => {
                    edge.insert(id, (c.version, qty));
                }
            }
        }
    };
    let mut token: Option<String> = None;
    let mut pages = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        let page = db
            .central
            .pull("reader", &m, token.as_deref(), 3)
            .await
            .expect("pull");
        pages += 1;
        apply(page.changes);
        token = Some(page.token);
    }
    for w in writers {
        w.await.expect("writer");
    }
    // Everyone is done: one more full pass.
    let (rest, _) = pull_pass(&db.central, "reader", &m, token, 3).await;
    apply(rest);

    let committed = committed.lock().unwrap().clone();
    let rolled_back = rolled_back.lock().unwrap().clone();
    assert!(pages > 10, "the reader only managed {pages} pages");
    assert_eq!(
        committed.len() as i64,
        WRITERS * ROUNDS - rolled_back.len() as i64
    );
    let pulled: BTreeMap<i64, i64> = edge.iter().map(|(k, (_, q))| (*k, *q)).collect();
    for id in &rolled_back {
        assert!(
            !pulled.contains_key(id),
            "rolled-back row {id} was delivered"
        );
    }
    assert_eq!(pulled, committed);
    // And the central agrees.
    let central: i64 = db.scalar("SELECT COUNT(*) FROM items").await;
    assert_eq!(central as usize, committed.len());
}

/// Pushes from two nodes (batches of inserts, updates of their own rows
/// and deletes, plus writes of keys applications also change, which
/// conflict) run while application transactions hold their writes open a
/// random 0-150 ms and commit out of order, and a reader pulls in a tight
/// loop with pages of three. Pushes take their versions while the reader's
/// stamping steps hand out versions to the application writes: when
/// everyone is done, the reader holds exactly the central table (no row
/// skipped, none stale), every version was handed out once, and none is
/// above the counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_and_late_application_commits_reach_a_puller_exactly() {
    const APPS: i64 = 3;
    const PUSHERS: i64 = 2;
    const PUSH_ROUNDS: i64 = 10;
    let db = Arc::new(TestDb::new().await);
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    // Keys 1..=5 are written by everyone.
    db.exec(
        "INSERT INTO items (id, name, qty, price) VALUES
         (1, 's', 0, 1), (2, 's', 0, 1), (3, 's', 0, 1), (4, 's', 0, 1), (5, 's', 0, 1)",
    )
    .await;

    let mut tasks = Vec::new();
    for w in 0..APPS {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = db.app().await;
            let mut seed = 0x5851_F42D_4C95_7F2D_u64 ^ (w as u64 + 7).wrapping_mul(0x2545_F491);
            for r in 0..ROUNDS {
                let id = 10_000 + w * 1000 + r;
                let shared = 1 + (next_rand(&mut seed) % 5) as i64;
                let wait = next_rand(&mut seed) % 151;
                // A deadlock with a push rolls the transaction back: that
                // is an outcome like any other (the central state is what
                // the reader is compared with).
                let ok = async {
                    conn.query_drop("BEGIN").await?;
                    conn.exec_drop(
                        "INSERT INTO items (id, name, qty, price) VALUES (?, 'app', ?, 1)",
                        (id, r),
                    )
                    .await?;
                    conn.exec_drop(
                        "UPDATE items SET qty = ?, name = 'app' WHERE id = ?",
                        (w * 100 + r, shared),
                    )
                    .await?;
                    if r > 1 && r % 4 == 0 {
                        conn.exec_drop("DELETE FROM items WHERE id = ?", (id - 2,))
                            .await?;
                    }
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    conn.query_drop("COMMIT").await
                }
                .await;
                if ok.is_err() {
                    conn.query_drop("ROLLBACK").await.ok();
                }
            }
            conn.disconnect().await.ok();
        }));
    }
    for p in 0..PUSHERS {
        let db = db.clone();
        let m = m.clone();
        let node = format!("pusher-{p}");
        tasks.push(tokio::spawn(async move {
            // What the node believes each of its rows' version is.
            let mut base: BTreeMap<i64, i64> = BTreeMap::new();
            let mut seq = 0;
            for r in 0..PUSH_ROUNDS {
                let mut changes = Vec::new();
                for j in 0..8 {
                    let id = 50_000 + p * 10_000 + r * 10 + j;
                    seq += 1;
                    changes.push(upsert(item(id, "new", r, "2.00"), 0, seq, None));
                }
                // Update the previous round's rows, delete two of them.
                for j in 0..8 {
                    let id = 50_000 + p * 10_000 + (r - 1) * 10 + j;
                    let Some(&b) = base.get(&id) else { continue };
                    seq += 1;
                    changes.push(if j < 2 {
                        delete(Value::Int(id), None, seq, Some(b))
                    } else {
                        upsert(item(id, "upd", 100 + r, "3.00"), 0, seq, Some(b))
                    });
                }
                // A key applications write too: a conflict (server wins).
                seq += 1;
                changes.push(upsert(item(1 + r % 5, "edge", -1, "4.00"), 0, seq, None));
                let b = batch(changes);
                let result = loop {
                    match db.central.push(&node, &m, &b).await {
                        Ok(result) => break result,
                        Err(e) if e.kind() == edgesync_core::ErrorKind::Retryable => {
                            tokio::time::sleep(Duration::from_millis(10)).await
                        }
                        Err(e) => panic!("{node}: {e}"),
                    }
                };
                for (c, o) in b.changes.iter().zip(&result.outcomes) {
                    let Value::Int(id) = c.key[0] else { panic!() };
                    if let edgesync_core::PushOutcome::Applied { version } = o {
                        assert!(*version > 0, "{node}: {c:?} answered {o:?}");
                        base.insert(id, *version);
                    }
                }
            }
        }));
    }

    // The reader: key -> (version, row or None for a delete).
    let mut edge: BTreeMap<i64, (i64, Option<(String, i64)>)> = BTreeMap::new();
    let mut apply = |changes: Vec<edgesync_core::Change>| {
        for c in changes {
            let Value::Int(id) = c.key[0] else { panic!() };
            let row = c.values.as_ref().map(|v| {
                let (Value::Text(name), qty) = (&v[1], &v[2]) else {
                    panic!("{c:?}")
                };
                let qty = match qty {
                    Value::Int(q) => *q,
                    other => panic!("{other:?}"),
                };
                (name.clone(), qty)
            });
            match edge.get(&id) {
                Some((v, _)) if *v >= c.version => {}
                _ => {
                    edge.insert(id, (c.version, if c.deleted { None } else { row }));
                }
            }
        }
    };
    let mut token: Option<String> = None;
    let mut pages = 0;
    while !tasks.iter().all(|t| t.is_finished()) {
        let page = db
            .central
            .pull("reader", &m, token.as_deref(), 3)
            .await
            .expect("pull");
        pages += 1;
        apply(page.changes);
        token = Some(page.token);
    }
    for t in tasks {
        t.await.expect("writer or pusher");
    }
    let (rest, _) = pull_pass(&db.central, "reader", &m, token, 3).await;
    apply(rest);
    assert!(pages > 10, "the reader only managed {pages} pages");

    let pulled: Vec<String> = edge
        .iter()
        .filter_map(|(id, (_, row))| row.as_ref().map(|(n, q)| format!("{id} {n} {q}")))
        .collect();
    let central: Vec<String> = {
        let mut c = db.app().await;
        let rows: Vec<(i64, String, Option<i64>)> = c
            .query("SELECT id, name, qty FROM items ORDER BY id")
            .await
            .expect("central rows");
        c.disconnect().await.ok();
        rows.into_iter()
            .map(|(id, n, q)| format!("{id} {n} {}", q.unwrap_or(0)))
            .collect()
    };
    assert_eq!(pulled, central);
    // Every version handed out once, none pending, none above the counter.
    let versions: Vec<Option<i64>> = {
        let mut c = db.app().await;
        let v = c
            .query("SELECT es_ver FROM items UNION ALL SELECT es_ver FROM es_tombstones ORDER BY 1")
            .await
            .expect("versions");
        c.disconnect().await.ok();
        v
    };
    assert!(versions.iter().all(Option::is_some), "{versions:?}");
    let distinct: BTreeSet<Option<i64>> = versions.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        versions.len(),
        "a version was handed out twice"
    );
    let seq: i64 = db.scalar("SELECT seq FROM es_ctl").await;
    assert!(versions.iter().all(|v| v.unwrap_or(0) <= seq));
}
