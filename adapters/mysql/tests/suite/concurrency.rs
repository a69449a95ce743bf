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
