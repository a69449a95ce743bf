//! Pull: resumable initial loads, incremental passes, commit-safety and no
//! echo.

use std::collections::BTreeSet;

use edgesync_core::{Central, ConflictPolicy, DeleteMode, Value};
use sqlx::{Connection, PgConnection};

use crate::common::*;

fn ids(changes: &[edgesync_core::Change]) -> Vec<i64> {
    changes
        .iter()
        .map(|c| match c.key[0] {
            Value::Int(i) => i,
            ref other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn initial_load_pages_by_key_and_resumes_from_a_mid_pass_token() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec(
        "INSERT INTO items (id, name, qty, price)
         SELECT i, 'n' || i, i, i / 100.0 FROM generate_series(1, 25) i;
         DELETE FROM items WHERE id IN (3, 4)",
    )
    .await;
    let p1 = db.central.pull("e", &m, None, 10).await.expect("page 1");
    assert!(!p1.done);
    assert_eq!(
        ids(&p1.changes),
        (1..=12).filter(|i| *i != 3 && *i != 4).collect::<Vec<_>>()
    );
    assert_eq!(
        p1.changes[0].values.as_ref().unwrap()[3],
        Value::Decimal("0.01".into())
    );
    assert!(p1.changes[0].version > 0 && p1.changes[0].hlc > 0 && p1.changes[0].base.is_none());

    // A restart re-reads from the stored token and gets the same pages.
    let (rest_a, end_a) = pull_pass(&db.central, "e", &m, Some(p1.token.clone()), 10).await;
    let (rest_b, end_b) = pull_pass(&db.central, "e", &m, Some(p1.token.clone()), 10).await;
    assert_eq!(rest_a, rest_b);
    assert_eq!(end_a, end_b);
    let live: Vec<&edgesync_core::Change> = rest_a.iter().filter(|c| !c.deleted).collect();
    assert_eq!(live.len(), 13);
    let tombs: Vec<i64> = ids(&rest_a[13..]);
    assert_eq!(tombs, vec![3, 4]);
    assert!(rest_a[13..]
        .iter()
        .all(|c| c.deleted && c.values.is_none() && c.version > 0));

    // Nothing changed since: the next pass is empty.
    let next = db
        .central
        .pull("e", &m, Some(&end_a), 10)
        .await
        .expect("next");
    assert!(next.done && next.changes.is_empty());

    // Incremental: an update, a hard delete, a re-insert of a deleted key.
    db.exec(
        "UPDATE items SET qty = 100 WHERE id = 7;
         DELETE FROM items WHERE id = 8;
         INSERT INTO items (id, name, price) VALUES (3, 'back', 1)",
    )
    .await;
    let (changes, _) = pull_pass(&db.central, "e", &m, Some(end_a), 10).await;
    let got: BTreeSet<(i64, bool)> = changes
        .iter()
        .map(|c| (ids(std::slice::from_ref(c))[0], c.deleted))
        .collect();
    assert_eq!(got, BTreeSet::from([(3, false), (7, false), (8, true)]));
}

#[tokio::test]
async fn a_transaction_that_commits_late_is_still_delivered() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Soft).await;
    db.exec("INSERT INTO items (id, name, price) VALUES (1, 'seed', 1)")
        .await;
    let (_, t0) = pull_pass(&db.central, "e", &m, None, 100).await;

    // A long transaction writes first (taking the lower version)...
    let url = url_for(&db.name);
    let mut slow = PgConnection::connect(&url).await.expect("slow");
    sqlx::raw_sql("BEGIN; INSERT INTO items (id, name, price) VALUES (10, 'slow', 1)")
        .execute(&mut slow)
        .await
        .expect("slow insert");
    // ...a quick one writes later and commits first...
    db.exec("INSERT INTO items (id, name, price) VALUES (20, 'fast', 1)")
        .await;
    // ...and a whole pass runs in between.
    let (between, t1) = pull_pass(&db.central, "e", &m, Some(t0), 100).await;
    assert_eq!(ids(&between), vec![20]);
    sqlx::raw_sql("COMMIT")
        .execute(&mut slow)
        .await
        .expect("commit");
    slow.close().await.ok();

    let slow_ver: i64 = db.scalar("SELECT es_ver FROM items WHERE id = 10").await;
    // A "highest version delivered" watermark would now skip the slow row.
    assert!(slow_ver < between[0].version);
    let (after, _) = pull_pass(&db.central, "e", &m, Some(t1), 100).await;
    assert_eq!(ids(&after), vec![10]);
    assert_eq!(after[0].version, slow_ver);
}

#[tokio::test]
async fn a_node_does_not_get_its_own_pushes_back() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let (_, ta) = pull_pass(&db.central, "edge-a", &m, None, 100).await;
    let (_, tb) = pull_pass(&db.central, "edge-b", &m, None, 100).await;
    let r = db
        .central
        .push(
            "edge-a",
            &m,
            &batch(vec![
                upsert(item(1, "from a", 1, "1"), 0, 1, None),
                upsert(item(2, "from a", 1, "1"), 0, 2, None),
            ]),
        )
        .await
        .expect("push");
    let edgesync_core::PushOutcome::Applied { version: v2 } = r.outcomes[1] else {
        panic!("{r:?}")
    };
    let r = db
        .central
        .push(
            "edge-a",
            &m,
            &batch(vec![delete(Value::Int(2), None, 3, Some(v2))]),
        )
        .await
        .expect("push delete");
    assert_eq!(r.conflicts, 0);
    let (for_a, ta) = pull_pass(&db.central, "edge-a", &m, Some(ta), 100).await;
    assert!(for_a.is_empty(), "{for_a:?}");
    // edge-b gets the row and the tombstone of the one edge-a deleted.
    let (for_b, _) = pull_pass(&db.central, "edge-b", &m, Some(tb), 100).await;
    let got: BTreeSet<(i64, bool)> = for_b
        .iter()
        .map(|c| (ids(std::slice::from_ref(c))[0], c.deleted))
        .collect();
    assert_eq!(got, BTreeSet::from([(1, false), (2, true)]));

    // A later central write to the row is delivered to edge-a again.
    db.exec("UPDATE items SET qty = 2 WHERE id = 1").await;
    let (for_a, _) = pull_pass(&db.central, "edge-a", &m, Some(ta), 100).await;
    assert_eq!(ids(&for_a), vec![1]);
}

#[tokio::test]
async fn composite_and_typed_keys_page_and_tombstone_exactly() {
    let db = TestDb::new().await;
    db.exec(
        "CREATE SCHEMA s;
         CREATE TABLE s.k (region text, at timestamptz, amount numeric(10,2), data bytea,
                           PRIMARY KEY (region, at, amount))",
    )
    .await;
    let m = mapping(
        "s.k",
        &[
            ("region", text()),
            ("at", edgesync_core::ColType::TimestampTz),
            ("amount", dec(10, 2)),
            ("data", edgesync_core::ColType::Bytes),
        ],
        &[0, 1, 2],
        ConflictPolicy::ServerWins,
        DeleteMode::Hard,
    );
    db.init(std::slice::from_ref(&m)).await;
    db.exec(
        "SET TIME ZONE 'Asia/Kolkata';
         INSERT INTO s.k SELECT r, '2024-01-01 00:00:00.5+00'::timestamptz + i * interval '1 hour', i / 4.0, '\\x01'
           FROM unnest(ARRAY['n', 'sü', 'x''y', 'b\\']) r, generate_series(1, 5) i;
         DELETE FROM s.k WHERE region = 'x''y' AND amount = 0.25;",
    )
    .await;
    // Pages of 4 (a full pass reads them with a binary COPY, its cursor
    // written into the statement): pages resume after `b\` and after
    // `x'y`, and each row comes exactly once.
    let (all, _) = pull_pass(&db.central, "e", &m, None, 4).await;
    let live: Vec<&edgesync_core::Change> = all.iter().filter(|c| !c.deleted).collect();
    assert_eq!(live.len(), 19);
    let distinct: std::collections::HashSet<String> =
        live.iter().map(|c| format!("{:?}", c.key)).collect();
    assert_eq!(distinct.len(), 19);
    assert_eq!(live[0].key[0], Value::Text("b\\".into()));
    let tomb = all.iter().find(|c| c.deleted).expect("tombstone");
    assert_eq!(tomb.key[0], Value::Text("x'y".into()));
    assert_eq!(tomb.key[2], Value::Decimal("0.25".into()));
    assert_eq!(
        tomb.key[1],
        Value::TimestampTz(
            edgesync_core::value::parse_timestamptz("2024-01-01 01:00:00.5Z").expect("t")
        )
    );
    // The tombstone's key matches the row a push names, so an edge delete of
    // it is recognised (no conflict: both sides deleted).
    let r = db
        .central
        .push(
            "e",
            &m,
            &edgesync_core::PushBatch {
                hi: 1,
                changes: vec![edgesync_core::Change {
                    key: tomb.key.clone(),
                    values: None,
                    deleted: true,
                    version: 1,
                    base: Some(1),
                    hlc: 1,
                }],
                bases: Vec::new(),
                fingerprint: None,
            },
        )
        .await
        .expect("push");
    assert_eq!(r.conflicts, 0);
    assert_eq!(
        r.outcomes[0],
        edgesync_core::PushOutcome::Applied {
            version: tomb.version
        }
    );
}

/// An edge, as far as pulls go: per key, the newest version delivered and
/// whether it was a delete (older versions are skipped, as the edge does).
#[derive(Default)]
struct Edge(std::collections::BTreeMap<i64, (i64, bool)>);

impl Edge {
    fn apply(&mut self, changes: &[edgesync_core::Change]) {
        for c in changes {
            let id = ids(std::slice::from_ref(c))[0];
            let e = self.0.entry(id).or_insert((0, false));
            if c.version > e.0 {
                *e = (c.version, c.deleted);
            }
        }
    }

    /// The edge holds exactly the central's rows, each at its version.
    async fn check(&self, db: &TestDb) {
        let central: Vec<(i64, i64)> = sqlx::query_as("SELECT id, es_ver FROM items ORDER BY id")
            .fetch_all(db.pool())
            .await
            .expect("rows");
        let live: Vec<(i64, i64)> = self
            .0
            .iter()
            .filter(|(_, (_, deleted))| !deleted)
            .map(|(id, (v, _))| (*id, *v))
            .collect();
        assert_eq!(live, central);
    }
}

/// The transaction that last wrote row `id`.
async fn txid(db: &TestDb, id: i64) -> i64 {
    db.scalar(&format!("SELECT es_txid FROM items WHERE id = {id}"))
        .await
}

/// Run `sql` on `conn` (an open transaction of its own).
async fn on(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn an_incremental_pass_pages_by_transaction_and_loses_no_row_rewritten_mid_pass() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec(
        "INSERT INTO items (id, name, price) SELECT i, 'n' || i, 1 FROM generate_series(1, 60) i",
    )
    .await;
    let mut edge = Edge::default();
    let (all, t0) = pull_pass(&db.central, "e", &m, None, 100).await;
    edge.apply(&all);
    edge.check(&db).await;

    // Two long transactions take their transaction ids first and stay open.
    let url = url_for(&db.name);
    let mut slow = PgConnection::connect(&url).await.expect("slow");
    on(
        &mut slow,
        "BEGIN; UPDATE items SET qty = -1 WHERE id = 60;
         INSERT INTO items (id, name, price) VALUES (100, 'slow', 1)",
    )
    .await;
    let mut slow2 = PgConnection::connect(&url).await.expect("slow2");
    on(
        &mut slow2,
        "BEGIN; INSERT INTO items (id, name, price) VALUES (200, 'slow2', 1)",
    )
    .await;
    // Then three transactions, one after the other, keys in reverse order
    // of their transactions.
    db.exec("UPDATE items SET qty = 3 WHERE id BETWEEN 41 AND 59")
        .await;
    db.exec("UPDATE items SET qty = 2 WHERE id BETWEEN 21 AND 40")
        .await;
    db.exec("UPDATE items SET qty = 1 WHERE id BETWEEN 1 AND 20")
        .await;
    let (c, b, a) = (txid(&db, 41).await, txid(&db, 21).await, txid(&db, 1).await);
    assert!(c < b && b < a);

    // The pass's first two pages: the rows of the first transaction, in
    // key order.
    let p1 = db.central.pull("e", &m, Some(&t0), 7).await.expect("p1");
    let p2 = db
        .central
        .pull("e", &m, Some(&p1.token), 7)
        .await
        .expect("p2");
    assert!(!p1.done && !p2.done);
    assert_eq!(ids(&p1.changes), (41..=47).collect::<Vec<_>>());
    assert_eq!(ids(&p2.changes), (48..=54).collect::<Vec<_>>());
    edge.apply(&p1.changes);
    edge.apply(&p2.changes);

    // Mid-pass: the long transactions commit, one of them after rewriting
    // a row the pass has not reached (it moves behind the cursor, to
    // slow2's older transaction id); a new transaction rewrites a row the
    // pass has delivered and one it has not, and deletes one it has not.
    on(
        &mut slow2,
        "UPDATE items SET qty = 22 WHERE id = 25; COMMIT",
    )
    .await;
    on(&mut slow, "COMMIT").await;
    db.exec(
        "UPDATE items SET qty = 44 WHERE id IN (42, 30);
         DELETE FROM items WHERE id = 10",
    )
    .await;
    assert!(txid(&db, 25).await < c);

    let (rest, t1) = pull_pass(&db.central, "e", &m, Some(p2.token), 7).await;
    edge.apply(&rest);
    let rest_ids = ids(&rest);
    // The rest of the pass in (transaction, key) order: the second and the
    // third transaction (without the rows rewritten since), then the new
    // transaction's rows, then the tombstone.
    let mut expected: Vec<i64> = (55..=59).collect();
    expected.extend((21..=40).filter(|i| *i != 25 && *i != 30));
    expected.extend((1..=20).filter(|i| *i != 10));
    expected.extend([30, 42, 10]);
    assert_eq!(rest_ids, expected);
    assert!(rest.last().is_some_and(|c| c.deleted));
    // The rows slow and slow2 wrote sit behind the cursor: this pass missed
    // them, the next one delivers them (with what the new transaction
    // wrote again: it committed after the pass's target snapshot).
    let (next, t2) = pull_pass(&db.central, "e", &m, Some(t1), 7).await;
    let got: BTreeSet<i64> = ids(&next).into_iter().collect();
    assert_eq!(got, BTreeSet::from([10, 25, 30, 42, 60, 100, 200]));
    edge.apply(&next);
    edge.check(&db).await;
    let (last, _) = pull_pass(&db.central, "e", &m, Some(t2), 7).await;
    assert!(last.is_empty(), "{last:?}");
}

#[tokio::test]
async fn a_mid_pass_token_of_an_older_edgesync_restarts_the_rows_of_its_pass() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec(
        "INSERT INTO items (id, name, price) SELECT i, 'n' || i, 1 FROM generate_series(1, 30) i",
    )
    .await;
    let (_, t0) = pull_pass(&db.central, "e", &m, None, 100).await;
    db.exec("UPDATE items SET qty = 1 WHERE id > 15").await;
    db.exec("UPDATE items SET qty = 2 WHERE id <= 15").await;
    db.exec("DELETE FROM items WHERE id = 1").await;
    let p1 = db.central.pull("e", &m, Some(&t0), 10).await.expect("p1");
    assert_eq!(ids(&p1.changes), (16..=25).collect::<Vec<_>>());
    let mut tok: serde_json::Value = serde_json::from_str(&p1.token).expect("json");
    assert_eq!(tok["since"]["key"], serde_json::json!(["25"]), "{tok}");
    assert!(tok["since"]["txid"].is_i64(), "{tok}");

    // The same position as an older edgesync wrote it: a key-order cursor
    // (the rows up to key 12 delivered), no transaction id.
    tok.as_object_mut().expect("object").remove("since");
    tok["after"] = serde_json::json!(["12"]);
    let old = tok.to_string();
    let (changes, end) = pull_pass(&db.central, "e", &m, Some(old.clone()), 10).await;
    // The pass's rows start again from the beginning: every changed row,
    // whatever its key, then the tombstone.
    let mut expected: Vec<i64> = (16..=30).collect();
    expected.extend(2..=15);
    expected.push(1);
    assert_eq!(ids(&changes), expected);
    // ... and the pass ends at its own target, as the token said.
    let target = tok["target"].as_str().expect("target").to_string();
    let end: serde_json::Value = serde_json::from_str(&end).expect("json");
    assert_eq!(end["wm"].as_str(), Some(target.as_str()));
    let (next, _) = pull_pass(&db.central, "e", &m, Some(end.to_string()), 10).await;
    assert!(next.is_empty(), "{next:?}");

    // Without any cursor (the first page's token of an older edgesync), the
    // same.
    tok["after"] = serde_json::Value::Null;
    let (again, _) = pull_pass(&db.central, "e", &m, Some(tok.to_string()), 10).await;
    assert_eq!(ids(&again), expected);
}

#[tokio::test]
async fn a_scoped_incremental_pass_over_several_pages_moves_rows_out_and_in() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let scope = edgesync_core::filter::Scope::new("name = 'in'", &m, None, &Default::default())
        .expect("scope");
    db.exec(
        "INSERT INTO items (id, name, qty, price)
         SELECT i, CASE WHEN i >= 10 THEN 'in' ELSE 'out' END, i, 1 FROM generate_series(1, 30) i",
    )
    .await;
    let pass = |token: Option<String>| {
        let (db, m, scope) = (&db, &m, &scope);
        async move {
            let mut token = token;
            let mut all = Vec::new();
            loop {
                let page = db
                    .central
                    .pull_scoped("e", m, Some(scope), token.as_deref(), 4)
                    .await
                    .expect("pull");
                all.extend(page.changes);
                token = Some(page.token);
                if page.done {
                    return (all, token.unwrap());
                }
            }
        }
    };
    let (all, t0) = pass(None).await;
    assert_eq!(ids(&all), (10..=30).collect::<Vec<_>>());

    // Out of scope, into scope, and changed within it, in three
    // transactions whose keys run against their order.
    db.exec("UPDATE items SET qty = qty + 1 WHERE id BETWEEN 25 AND 30")
        .await;
    db.exec("UPDATE items SET name = 'out' WHERE id BETWEEN 12 AND 15")
        .await;
    db.exec("UPDATE items SET name = 'in' WHERE id BETWEEN 1 AND 5")
        .await;
    let (changes, t1) = pass(Some(t0)).await;
    let mut expected: Vec<i64> = (25..=30).collect();
    expected.extend(12..=15);
    expected.extend(1..=5);
    assert_eq!(ids(&changes), expected);
    for c in &changes {
        let id = ids(std::slice::from_ref(c))[0];
        assert_eq!(c.is_move_out(), (12..=15).contains(&id), "{c:?}");
    }
    let (next, _) = pass(Some(t1)).await;
    assert!(next.is_empty(), "{next:?}");
}

/// An incremental pass pages the tombstones in `(es_txid, key)` order too:
/// three deleting transactions come out in their own order, each by key; a
/// tombstone rewritten mid-pass (its key re-inserted and deleted again),
/// before or behind the cursor, is delivered at its new version, in this
/// pass or the next (a change newer than the pass's target may come in both,
/// which the edge skips as a version it has).
#[tokio::test]
async fn an_incremental_pass_pages_tombstones_by_transaction_and_loses_none_rewritten_mid_pass() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let values: Vec<String> = (1..=30).map(|i| format!("({i}, 'n{i}', 1)")).collect();
    db.exec(&format!(
        "INSERT INTO items (id, name, price) VALUES {}",
        values.join(", ")
    ))
    .await;
    let (_, wm) = pull_pass(&db.central, "e", &m, None, 100).await;

    // Deleted by three transactions, in an order unlike the keys'.
    db.exec("DELETE FROM items WHERE id BETWEEN 15 AND 20")
        .await;
    db.exec("DELETE FROM items WHERE id BETWEEN 1 AND 7").await;
    db.exec("DELETE FROM items WHERE id BETWEEN 8 AND 14").await;

    // First page of 4: by transaction, then key.
    let first = db.central.pull("e", &m, Some(&wm), 4).await.expect("page");
    assert!(!first.done);
    assert_eq!(ids(&first.changes), vec![15, 16, 17, 18]);
    assert!(first
        .changes
        .iter()
        .all(|c| c.deleted && c.values.is_none()));
    // Mid-pass: 16 (delivered) and 3 (not yet) are re-inserted and deleted
    // again; their tombstones move to a newer transaction.
    db.exec("INSERT INTO items (id, name, price) VALUES (16, 'again', 1), (3, 'again', 1)")
        .await;
    db.exec("DELETE FROM items WHERE id IN (3, 16)").await;

    let (rest, next) = pull_pass(&db.central, "e", &m, Some(first.token), 4).await;
    let mut got = first.changes.clone();
    got.extend(rest);
    let (next_pass, _) = pull_pass(&db.central, "e", &m, Some(next), 4).await;
    got.extend(next_pass);
    // Every deleted key, at its latest tombstone version.
    let mut latest = std::collections::BTreeMap::new();
    for c in &got {
        assert!(c.deleted, "{c:?}");
        let id = ids(std::slice::from_ref(c))[0];
        let v = latest.entry(id).or_insert(c.version);
        *v = (*v).max(c.version);
    }
    assert_eq!(
        latest.keys().copied().collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    for (id, v) in &latest {
        let tomb: i64 = sqlx::query_scalar(
            "SELECT es_ver FROM es_tombstones WHERE key = jsonb_build_array($1::text)",
        )
        .bind(id.to_string())
        .fetch_one(db.pool())
        .await
        .expect("tombstone");
        assert_eq!(*v, tomb, "key {id}");
    }
    // The order within the first pass's remaining deletes: 19, 20, then
    // 1..=7 without 3 or with it (the cursor had not reached it), 8..=14.
    let order = ids(&got);
    let pos = |id: i64| order.iter().position(|&x| x == id).expect("delivered");
    assert!(pos(20) < pos(1) && pos(7) < pos(8) && pos(14) < order.len());
}

/// sync.retention bookkeeping in a pass: the node's position is recorded at
/// the pass's first page (later pages leave it), and every page, not only
/// the first, refuses a position a purge has passed since.
#[tokio::test]
async fn a_pass_records_its_position_once_and_every_page_checks_the_purge() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let values: Vec<String> = (1..=10).map(|i| format!("({i}, 'n{i}', 1)")).collect();
    db.exec(&format!(
        "INSERT INTO items (id, name, price) VALUES {}",
        values.join(", ")
    ))
    .await;
    let (_, wm) = pull_pass(&db.central, "e", &m, None, 100).await;
    db.exec("UPDATE items SET name = name || '!'").await;

    let first = db
        .central
        .pull("e", &m, Some(&wm), 3)
        .await
        .expect("page 1");
    assert!(!first.done);
    let recorded = || async {
        sqlx::query_as::<_, (Option<String>, chrono::DateTime<chrono::Utc>)>(
            "SELECT snap, at FROM es_pulls WHERE node = 'e'",
        )
        .fetch_one(db.pool())
        .await
        .expect("es_pulls row")
    };
    let (snap, at) = recorded().await;
    let wm_snap: String = serde_json::from_str::<serde_json::Value>(&wm).expect("token")["wm"]
        .as_str()
        .expect("wm")
        .to_string();
    assert_eq!(snap.as_deref(), Some(wm_snap.as_str()));
    let second = db
        .central
        .pull("e", &m, Some(&first.token), 3)
        .await
        .expect("page 2");
    assert_eq!(recorded().await, (snap, at), "a later page wrote again");

    // A purge past the node's position (as if it had been dropped as
    // departed mid-pass): the next page is refused with Resnapshot.
    db.exec("INSERT INTO es_purged (tbl, txid, at) VALUES ('public.items', txid_current(), now())")
        .await;
    let err = db
        .central
        .pull("e", &m, Some(&second.token), 3)
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), edgesync_core::ErrorKind::Resnapshot, "{err}");
}
