//! Pull: resumable initial loads, incremental passes, commit-safety, no echo,
//! and tombstones (also from application deletes on soft-delete tables).

use std::collections::BTreeSet;

use edgesync_core::{Central, ConflictPolicy, DeleteMode, Value};
use mysql_async::prelude::Queryable;

use crate::common::*;

#[tokio::test]
async fn initial_load_pages_and_resumes_from_a_mid_pass_token() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec(
        "INSERT INTO items (id, name, qty, price)
         SELECT seq, CONCAT('n', seq), seq, seq / 100 FROM seq_1_to_25;
         DELETE FROM items WHERE id IN (3, 4)",
    )
    .await;
    let p1 = db.central.pull("e", &m, None, 10).await.expect("page 1");
    assert!(!p1.done);
    assert_eq!(p1.changes.len(), 10);
    let first = &p1.changes[0];
    assert!(first.version > 0 && first.hlc > 0 && first.base.is_none());
    // A full pass goes in key order.
    let first_ten: Vec<i64> = (1..=12).filter(|i| *i != 3 && *i != 4).collect();
    assert_eq!(ids(&p1.changes), first_ten);

    // A restart re-reads from the stored token and gets the same pages.
    let (rest_a, end_a) = pull_pass(&db.central, "e", &m, Some(p1.token.clone()), 10).await;
    let (rest_b, end_b) = pull_pass(&db.central, "e", &m, Some(p1.token.clone()), 10).await;
    assert_eq!(rest_a, rest_b);
    assert_eq!(end_a, end_b);
    let all: Vec<_> = p1.changes.iter().chain(&rest_a).cloned().collect();
    let live: BTreeSet<i64> = ids(&all)
        .into_iter()
        .zip(&all)
        .filter(|(_, c)| !c.deleted)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(live, (1..=25).filter(|i| *i != 3 && *i != 4).collect());
    let tombs: Vec<&edgesync_core::Change> = all.iter().filter(|c| c.deleted).collect();
    assert_eq!(
        ids(&tombs.iter().map(|c| (*c).clone()).collect::<Vec<_>>()),
        vec![3, 4]
    );
    assert!(tombs.iter().all(|c| c.values.is_none() && c.version > 0));
    let row7 = all.iter().find(|c| c.key[0] == Value::Int(7)).unwrap();
    assert_eq!(
        row7.values.as_ref().unwrap()[3],
        Value::Decimal("0.07".into())
    );

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

    // A long transaction writes first (and an update of a delivered row)...
    let mut slow = db.app().await;
    slow.query_drop(
        "BEGIN; INSERT INTO items (id, name, price) VALUES (10, 'slow', 1);
         UPDATE items SET qty = 9 WHERE id = 1",
    )
    .await
    .expect("slow writes");
    // ...a quick one writes later and commits first...
    db.exec("INSERT INTO items (id, name, price) VALUES (20, 'fast', 1)")
        .await;
    // ...and a whole pass runs in between: it neither waits for the slow
    // transaction nor skips past it.
    let (between, t1) = pull_pass(&db.central, "e", &m, Some(t0), 100).await;
    assert_eq!(ids(&between), vec![20]);
    slow.query_drop("COMMIT").await.expect("commit");
    slow.disconnect().await.ok();

    // The late rows are stamped after they committed, above what was
    // delivered, so the next pass has them.
    let (after, _) = pull_pass(&db.central, "e", &m, Some(t1), 100).await;
    let got: BTreeSet<i64> = ids(&after).into_iter().collect();
    assert_eq!(got, BTreeSet::from([1, 10]));
    assert!(after.iter().all(|c| c.version > between[0].version));
    let one = after.iter().find(|c| c.key[0] == Value::Int(1)).unwrap();
    assert_eq!(one.values.as_ref().unwrap()[2], Value::Int(9));
}

#[tokio::test]
async fn a_rolled_back_transaction_is_never_delivered() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec("INSERT INTO items (id, name, price) VALUES (1, 'kept', 1)")
        .await;
    let (_, t0) = pull_pass(&db.central, "e", &m, None, 100).await;
    let mut app = db.app().await;
    app.query_drop(
        "BEGIN; INSERT INTO items (id, name, price) VALUES (2, 'no', 1);
         UPDATE items SET name = 'no' WHERE id = 1; DELETE FROM items WHERE id = 1",
    )
    .await
    .expect("writes");
    let (during, t1) = pull_pass(&db.central, "e", &m, Some(t0), 100).await;
    assert!(during.is_empty(), "{during:?}");
    app.query_drop("ROLLBACK").await.expect("rollback");
    let (after, _) = pull_pass(&db.central, "e", &m, Some(t1), 100).await;
    assert!(after.is_empty(), "{after:?}");
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
async fn an_application_delete_on_a_soft_table_reaches_edges_as_a_delete() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Soft).await;
    db.exec("INSERT INTO items (id, name, price) VALUES (1, 'a', 1), (2, 'b', 1)")
        .await;
    let (_, t0) = pull_pass(&db.central, "e", &m, None, 100).await;
    db.exec("DELETE FROM items WHERE id = 1").await;
    let (got, _) = pull_pass(&db.central, "e", &m, Some(t0), 100).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].deleted && got[0].values.is_none());
    assert_eq!(got[0].key, vec![Value::Int(1)]);
    // An edge's soft delete of the same key is no conflict.
    let r = db
        .central
        .push(
            "e2",
            &m,
            &batch(vec![delete(
                Value::Int(1),
                None,
                1,
                Some(got[0].version - 1),
            )]),
        )
        .await
        .expect("push");
    assert_eq!(r.conflicts, 0);
    assert_eq!(
        r.outcomes[0],
        edgesync_core::PushOutcome::Applied {
            version: got[0].version
        }
    );
}

#[tokio::test]
async fn composite_and_typed_keys_page_and_tombstone_exactly() {
    let db = TestDb::new().await;
    let s = db.extra_db("s").await;
    db.exec(&format!(
        "CREATE TABLE {s}.k (region varchar(10) COLLATE utf8mb4_bin, at timestamp(6),
                            amount decimal(10,2), data varbinary(10), d date,
                            PRIMARY KEY (region, at, amount, d))"
    ))
    .await;
    let m = mapping(
        &format!("{s}.k"),
        &[
            ("region", text()),
            ("at", edgesync_core::ColType::TimestampTz),
            ("amount", dec(10, 2)),
            ("data", edgesync_core::ColType::Bytes),
            ("d", edgesync_core::ColType::Date),
        ],
        &[0, 1, 2, 4],
        ConflictPolicy::ServerWins,
        DeleteMode::Hard,
    );
    db.init(std::slice::from_ref(&m)).await;
    // The application's session is in another time zone.
    db.exec(&format!(
        "SET time_zone = '+05:30';
         INSERT INTO {s}.k (region, at, amount, data, d) SELECT r.v, TIMESTAMP'2024-01-01 05:30:00.5' + INTERVAL i.seq HOUR, i.seq / 4, X'01', '1960-02-29'
           FROM (SELECT 'n' AS v UNION ALL SELECT 'sü' UNION ALL SELECT 'x''y') r, seq_1_to_5 i;
         DELETE FROM {s}.k WHERE region = 'x''y' AND amount = 0.25;"
    ))
    .await;
    let (all, _) = pull_pass(&db.central, "e", &m, None, 4).await;
    let live = all.iter().filter(|c| !c.deleted).count();
    assert_eq!(live, 14);
    let tomb = all.iter().find(|c| c.deleted).expect("tombstone");
    assert_eq!(tomb.key[0], Value::Text("x'y".into()));
    assert_eq!(tomb.key[2], Value::Decimal("0.25".into()));
    assert_eq!(
        tomb.key[1],
        Value::TimestampTz(
            edgesync_core::value::parse_timestamptz("2024-01-01 01:00:00.5Z").expect("t")
        )
    );
    assert_eq!(
        tomb.key[3],
        Value::Date(chrono::NaiveDate::from_ymd_opt(1960, 2, 29).unwrap())
    );
    // The tombstone's key matches the row a push names, so an edge delete of
    // it is recognised (no conflict: both sides deleted).
    let r = db
        .central
        .push(
            "e",
            &m,
            &edgesync_core::PushBatch::new(
                1,
                vec![edgesync_core::Change {
                    key: tomb.key.clone(),
                    values: None,
                    deleted: true,
                    version: 1,
                    base: Some(1),
                    hlc: 1,
                }],
            ),
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
    // A live row found by its typed key: an update without conflict.
    let row = all.iter().find(|c| !c.deleted).unwrap();
    let mut values = row.values.clone().unwrap();
    values[3] = Value::Bytes(vec![0xff, 0]);
    let r = db
        .central
        .push(
            "e",
            &m,
            &edgesync_core::PushBatch::new(
                2,
                vec![edgesync_core::Change {
                    key: row.key.clone(),
                    values: Some(values),
                    deleted: false,
                    version: 2,
                    base: Some(row.version),
                    hlc: 2,
                }],
            ),
        )
        .await
        .expect("push");
    assert_eq!(r.conflicts, 0);
    assert_eq!(
        db.scalar::<i64>(&format!("SELECT COUNT(*) FROM {s}.k WHERE data = X'ff00'"))
            .await,
        1
    );
}

/// The stamping step over more than one chunk (2,000) of rows and of
/// tombstones, with a row an open transaction holds in the middle: every
/// committed change gets its own version, contiguous from the counter, the
/// held row none until its transaction commits, and a pass delivers
/// exactly the committed changes.
#[tokio::test]
async fn stamping_many_rows_and_tombstones_skips_only_what_is_held() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    // 1..=10000 without a sequence engine or recursion limits (MySQL too).
    const N: &str = "(SELECT a.n * 1000 + b.n * 100 + c.n * 10 + d.n + 1 AS n
                        FROM digits a, digits b, digits c, digits d) AS s";
    db.exec(&format!(
        "CREATE TABLE digits (n INT PRIMARY KEY);
         INSERT INTO digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9);
         INSERT INTO items (id, name, price) SELECT n, 'a', 1 FROM {N} WHERE n <= 8000"
    ))
    .await;
    let (_, t0) = pull_pass(&db.central, "e", &m, None, 10_000).await;
    let seq0: i64 = db.scalar("SELECT seq FROM es_ctl").await;
    db.exec(&format!(
        "UPDATE items SET name = 'b' WHERE id <= 2600;
         DELETE FROM items WHERE id > 5000 AND id <= 7500;
         INSERT INTO items (id, name, price) SELECT n, 'c', 1 FROM {N} WHERE n > 8000 AND n <= 8500"
    ))
    .await;
    // A committed change an open transaction holds (and changes again).
    let mut held = db.app().await;
    held.query_drop("BEGIN; UPDATE items SET name = 'held' WHERE id = 1200")
        .await
        .expect("held update");
    let (during, t1) = pull_pass(&db.central, "e", &m, Some(t0), 700).await;
    let rows = during.iter().filter(|c| !c.deleted).count();
    let tombs = during.iter().filter(|c| c.deleted).count();
    assert_eq!((rows, tombs), (2599 + 500, 2500));
    let mut versions: Vec<i64> = during.iter().map(|c| c.version).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), during.len(), "a version was given twice");
    // One version per stamped row or tombstone, contiguous from the counter.
    let seq1: i64 = db.scalar("SELECT seq FROM es_ctl").await;
    assert_eq!(seq1 - seq0, (rows + tombs) as i64);
    assert_eq!(versions.first(), Some(&(seq0 + 1)));
    assert_eq!(versions.last(), Some(&seq1));
    assert!(!ids(&during).contains(&1200));
    held.query_drop("COMMIT").await.expect("commit");
    let (after, _) = pull_pass(&db.central, "e", &m, Some(t1), 700).await;
    assert_eq!(ids(&after), vec![1200]);
    assert_eq!(after[0].version, seq1 + 1);
    assert_eq!(
        after[0].values.as_ref().unwrap()[1],
        Value::Text("held".into())
    );
}

/// Is `token` a full-pass token (the initial load still under way)?
fn is_full(token: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(token).expect("token is JSON");
    v.get("full").and_then(|f| f.as_bool()) == Some(true)
}

/// One pass, page by page (with a row filter if given): the changes, and
/// the token after every page.
async fn pages(
    db: &TestDb,
    m: &edgesync_core::TableMapping,
    scope: Option<&edgesync_core::filter::Scope>,
    token: Option<String>,
    limit: usize,
) -> (Vec<edgesync_core::Change>, Vec<String>) {
    let mut token = token;
    let (mut all, mut tokens) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        let page = db
            .central
            .pull_scoped("e", m, scope, token.as_deref(), limit)
            .await
            .expect("pull");
        assert!(page.changes.len() <= limit);
        all.extend(page.changes);
        tokens.push(page.token.clone());
        token = Some(page.token);
        if page.done {
            return (all, tokens);
        }
    }
    panic!("pull pass did not end");
}

/// A full pass pages rows in key order, whatever order their versions are
/// in: every row exactly once, keys ascending across page boundaries, then
/// an incremental token from which the next pass has only later changes.
#[tokio::test]
async fn a_full_pass_over_an_integer_key_goes_in_key_order() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    // Versions out of key order: 21..=40 are stamped (by another node's
    // pull) before 1..=20 are written, and 30 is updated again after.
    db.exec("INSERT INTO items (id, name, price) SELECT seq, 'late', 1 FROM seq_21_to_40")
        .await;
    pull_pass(&db.central, "other", &m, None, 100).await;
    db.exec(
        "INSERT INTO items (id, name, price) SELECT seq, 'early', 1 FROM seq_1_to_20;
         UPDATE items SET qty = 7 WHERE id = 30",
    )
    .await;
    let (got, tokens) = pages(&db, &m, None, None, 3).await;
    assert_eq!(ids(&got), (1..=40).collect::<Vec<_>>());
    assert!(got.iter().all(|c| !c.deleted && c.values.is_some()));
    // Versions were not in key order, so the order is the key's.
    assert!(got.windows(2).any(|w| w[0].version > w[1].version));
    let (last, mid) = tokens.split_last().expect("pages");
    assert!(mid.iter().all(|t| is_full(t)), "{tokens:?}");
    assert!(!is_full(last), "{last}");
    let v30 = got.iter().find(|c| c.key[0] == Value::Int(30)).unwrap();
    assert_eq!(v30.values.as_ref().unwrap()[2], Value::Int(7));
    assert_eq!(
        v30.version,
        db.scalar::<i64>("SELECT es_ver FROM items WHERE id = 30")
            .await
    );

    // Nothing new: the next pass is empty; then exactly the later changes.
    let (next, t) = pull_pass(&db.central, "e", &m, Some(last.clone()), 3).await;
    assert!(next.is_empty(), "{next:?}");
    db.exec(
        "UPDATE items SET qty = 1 WHERE id = 2;
         INSERT INTO items (id, name, price) VALUES (41, 'new', 1);
         DELETE FROM items WHERE id = 40",
    )
    .await;
    let (next, _) = pull_pass(&db.central, "e", &m, Some(t), 3).await;
    let got: BTreeSet<(i64, bool)> = next
        .iter()
        .map(|c| (ids(std::slice::from_ref(c))[0], c.deleted))
        .collect();
    assert_eq!(got, BTreeSet::from([(2, false), (41, false), (40, true)]));
}

/// A composite `(int, text)` key, paged one and three rows at a time: the
/// cursor compares as the server sorts (the column's binary collation, in
/// which `'a\t'` sorts before `'a'`: it pads with spaces), so every row
/// arrives exactly once, in the server's `ORDER BY` order.
#[tokio::test]
async fn a_full_pass_over_a_composite_key_goes_in_key_order() {
    let db = TestDb::new().await;
    db.exec(
        "CREATE TABLE pairs (a int NOT NULL, b varchar(20) COLLATE utf8mb4_bin NOT NULL,
                             v int, PRIMARY KEY (a, b))",
    )
    .await;
    let m = mapping(
        "pairs",
        &[("a", int()), ("b", text()), ("v", int())],
        &[0, 1],
        ConflictPolicy::ServerWins,
        DeleteMode::Hard,
    );
    db.init(std::slice::from_ref(&m)).await;
    db.exec(
        "INSERT INTO pairs (a, b, v) SELECT n.seq, s.b, n.seq FROM seq_1_to_3 n,
           (SELECT 'a' AS b UNION ALL SELECT 'a\\t' UNION ALL SELECT 'B' UNION ALL SELECT 'aa'
            UNION ALL SELECT 'ü' UNION ALL SELECT 'z' UNION ALL SELECT '😀' UNION ALL SELECT '') s;
         INSERT INTO pairs (a, b, v) VALUES (-1, 'x', 0), (10, 'x', 0)",
    )
    .await;
    let expected: Vec<(i64, String)> = {
        let mut c = db.app().await;
        let rows: Vec<(i64, String)> = c
            .query("SELECT a, b FROM pairs ORDER BY a, b")
            .await
            .expect("order");
        c.disconnect().await.ok();
        rows
    };
    assert_eq!(expected.len(), 26);
    for limit in [1, 3] {
        let (got, tokens) = pages(&db, &m, None, None, limit).await;
        let keys: Vec<(i64, String)> = got
            .iter()
            .map(|c| match (&c.key[0], &c.key[1]) {
                (Value::Int(a), Value::Text(b)) => (*a, b.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(keys, expected, "limit {limit}");
        assert!(!is_full(tokens.last().unwrap()));
        // The next pass has only what changed since.
        db.exec("UPDATE pairs SET v = v + 1 WHERE a = 2 AND b = 'a\\t'")
            .await;
        let (next, _) = pull_pass(&db.central, "e", &m, tokens.last().cloned(), limit).await;
        assert_eq!(next.len(), 1, "{next:?}");
        assert_eq!(next[0].key, vec![Value::Int(2), Value::Text("a\t".into())]);
    }
}

/// An edge applying pulled changes: keeps a change only if its version is
/// newer than what it holds for the key (it skips versions it has).
#[derive(Default)]
struct Edge {
    rows: std::collections::BTreeMap<i64, (Option<Vec<Value>>, i64)>,
}

impl Edge {
    fn apply(&mut self, changes: &[edgesync_core::Change]) {
        for c in changes {
            let id = ids(std::slice::from_ref(c))[0];
            let held = self.rows.get(&id).map_or(0, |r| r.1);
            if c.version > held {
                let values = if c.deleted { None } else { c.values.clone() };
                self.rows.insert(id, (values, c.version));
            }
        }
    }

    /// Live rows: id, values, version.
    fn live(&self) -> Vec<(i64, Vec<Value>, i64)> {
        self.rows
            .iter()
            .filter_map(|(id, (v, ver))| v.clone().map(|v| (*id, v, *ver)))
            .collect()
    }
}

/// The central `items` as an edge should hold it: id, values, version.
async fn central_items(db: &TestDb) -> Vec<(i64, Vec<Value>, i64)> {
    let mut c = db.app().await;
    let rows: Vec<(i64, String, Option<i64>, String, i64)> = c
        .query("SELECT id, name, qty, CAST(price AS CHAR), es_ver FROM items ORDER BY id")
        .await
        .expect("items");
    c.disconnect().await.ok();
    rows.into_iter()
        .map(|(id, name, qty, price, ver)| {
            let qty = qty.map_or(Value::Null, Value::Int);
            (
                id,
                vec![
                    Value::Int(id),
                    Value::Text(name),
                    qty,
                    Value::Decimal(price),
                ],
                ver,
            )
        })
        .collect()
}

/// Rows updated, inserted and deleted behind and ahead of the cursor
/// between the pages of a full pass (and one written by a transaction open
/// across the pass's end) all reach the edge by the end of the following
/// incremental pass, at their final versions; deletes as tombstones.
#[tokio::test]
async fn changes_during_a_full_pass_reach_the_edge_by_the_next_pass() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec(
        "INSERT INTO items (id, name, qty, price) SELECT seq * 10, 'a', seq, 1 FROM seq_1_to_30;
         DELETE FROM items WHERE id = 150",
    )
    .await;
    let mut edge = Edge::default();
    let mut token = None;
    for _ in 0..2 {
        let p = db
            .central
            .pull("e", &m, token.as_deref(), 5)
            .await
            .expect("page");
        assert!(!p.done && is_full(&p.token));
        edge.apply(&p.changes);
        token = Some(p.token);
    }
    // The cursor is at key 100. Behind it and ahead of it: updates,
    // inserts, deletes, a delete and re-insert, an update of a row twice.
    db.exec(
        "UPDATE items SET name = 'behind' WHERE id IN (20, 90, 100);
         UPDATE items SET name = 'ahead' WHERE id IN (110, 300);
         INSERT INTO items (id, name, price) VALUES (5, 'new behind', 2), (95, 'new behind', 2),
                                                    (105, 'new ahead', 2), (999, 'new ahead', 2);
         DELETE FROM items WHERE id IN (30, 100, 120, 290);
         DELETE FROM items WHERE id = 200; INSERT INTO items (id, name, price) VALUES (200, 'again', 3);
         INSERT INTO items (id, name, price) VALUES (150, 'back', 4)",
    )
    .await;
    // Stamped now by another node's pull, and changed again after.
    pull_pass(&db.central, "other", &m, None, 1000).await;
    db.exec("UPDATE items SET qty = 99 WHERE id IN (10, 250)")
        .await;
    let p = db
        .central
        .pull("e", &m, token.as_deref(), 5)
        .await
        .expect("page");
    edge.apply(&p.changes);
    // A transaction open across the rest of the pass.
    let mut open = db.app().await;
    open.query_drop("BEGIN; UPDATE items SET name = 'open' WHERE id = 260")
        .await
        .expect("open");
    let (rest, end) = pull_pass(&db.central, "e", &m, Some(p.token), 5).await;
    assert!(!is_full(&end), "{end}");
    edge.apply(&rest);
    open.query_drop("COMMIT").await.expect("commit");
    open.disconnect().await.ok();
    let (after, _) = pull_pass(&db.central, "e", &m, Some(end), 5).await;
    edge.apply(&after);

    assert_eq!(edge.live(), central_items(&db).await);
    // Deletes arrived as tombstones at their own versions.
    for id in [30, 120, 290] {
        let tomb: i64 = db
            .scalar(&format!(
                r#"SELECT es_ver FROM es_tombstones WHERE k = '["{id}"]'"#
            ))
            .await;
        assert_eq!(edge.rows.get(&id), Some(&(None, tomb)), "key {id}");
    }
    // 100 (delivered, then deleted) too: the edge must not keep it.
    assert!(matches!(edge.rows.get(&100), Some((None, _))));
}

/// A full pass whose first pages leave rows unstamped (the stamping step's
/// budget ran out): the page that ends it says `done: false`, and the pull
/// goes on incrementally to every row.
#[tokio::test]
async fn a_full_pass_that_leaves_work_pending_is_not_done() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec("INSERT INTO items (id, name, price) SELECT seq, 'a', 1 FROM seq_1_to_45000")
        .await;
    let mut token = None;
    let mut all = Vec::new();
    let mut ended_not_done = false;
    for _ in 0..100 {
        let p = db
            .central
            .pull("e", &m, token.as_deref(), 20_000)
            .await
            .expect("page");
        let was_full = token.as_deref().is_none_or(is_full);
        if was_full && !is_full(&p.token) && !p.done {
            ended_not_done = true;
        }
        all.extend(p.changes);
        token = Some(p.token);
        if p.done {
            break;
        }
    }
    assert!(
        ended_not_done,
        "the full pass ended as done with rows pending"
    );
    let mut got = ids(&all);
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), 45_000);
    assert_eq!(all.len(), 45_000, "a row was delivered twice");
}

/// An edge that stored a full-pass token of the version-ordered scheme, in
/// the middle of its pass, still completes it: the pass starts again from
/// the first key, and every row and tombstone arrives.
#[tokio::test]
async fn an_old_version_ordered_full_token_restarts_the_pass_in_key_order() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec(
        "INSERT INTO items (id, name, price) SELECT seq, 'a', 1 FROM seq_1_to_20;
         DELETE FROM items WHERE id IN (4, 17)",
    )
    .await;
    pull_pass(&db.central, "other", &m, None, 100).await;
    let mid: i64 = db.scalar("SELECT es_ver FROM items WHERE id = 8").await;
    let old = format!(r#"{{"mysql":1,"after":{mid},"full":true}}"#);
    let (got, tokens) = pages(&db, &m, None, Some(old), 4).await;
    let live: Vec<i64> = ids(&got)
        .into_iter()
        .zip(&got)
        .filter(|(_, c)| !c.deleted)
        .map(|(i, _)| i)
        .collect();
    let want: Vec<i64> = (1..=20).filter(|i| *i != 4 && *i != 17).collect();
    assert_eq!(live, want);
    let tombs: Vec<i64> = ids(&got)
        .into_iter()
        .zip(&got)
        .filter(|(_, c)| c.deleted)
        .map(|(i, _)| i)
        .collect();
    // Tombstones come after the rows, in version order.
    assert_eq!(
        tombs.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([4, 17])
    );
    assert_eq!(&ids(&got)[live.len()..], &tombs[..]);
    assert!(!is_full(tokens.last().unwrap()));
}

/// A row filter restricts the rows of a key-ordered full pass (no
/// move-outs), across pages; the next pass sends a row leaving the scope
/// as a move-out.
#[tokio::test]
async fn a_scoped_full_pass_goes_in_key_order_over_the_nodes_rows_only() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let params = [("want".to_string(), "in".to_string())]
        .into_iter()
        .collect();
    let scope =
        edgesync_core::filter::Scope::new("name = :want", &m, None, &params).expect("scope");
    db.exec(
        "INSERT INTO items (id, name, price)
         SELECT seq, IF(seq % 3 = 0, 'in', 'out'), 1 FROM seq_1_to_40",
    )
    .await;
    let (got, tokens) = pages(&db, &m, Some(&scope), None, 4).await;
    assert_eq!(
        ids(&got),
        (1..=40).filter(|i| i % 3 == 0).collect::<Vec<_>>()
    );
    assert!(got.iter().all(|c| c.values.is_some() && !c.deleted));
    assert!(tokens.len() > 2);
    let end = tokens.last().cloned().unwrap();
    assert!(!is_full(&end));
    db.exec(
        "UPDATE items SET name = 'out' WHERE id = 9; UPDATE items SET name = 'in' WHERE id = 10",
    )
    .await;
    let (next, _) = pages(&db, &m, Some(&scope), Some(end), 4).await;
    let mut next: Vec<(i64, bool)> = next
        .iter()
        .map(|c| (ids(std::slice::from_ref(c))[0], c.values.is_some()))
        .collect();
    next.sort_unstable();
    assert_eq!(next, vec![(9, false), (10, true)]);
}

/// Where a node stands (`es_pulls`) is written at the first page of a full
/// pass, not again at its later pages (its position stays 0 until the pass
/// ends); then at every incremental page, each of which moves it.
#[tokio::test]
async fn a_full_pass_records_the_node_once_and_incremental_pages_each_time() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec("INSERT INTO items (id, name, price) SELECT seq, 'x', 1 FROM seq_1_to_9")
        .await;
    let recorded = || async {
        db.scalar::<String>("SELECT CONCAT(ver, ' ', at) FROM es_pulls WHERE node = 'e'")
            .await
    };
    let first = db.central.pull("e", &m, None, 3).await.expect("page 1");
    assert!(!first.done);
    let at_first = recorded().await;
    assert!(at_first.starts_with("0 "), "{at_first}");
    db.exec("UPDATE es_pulls SET at = '2000-01-01 00:00:00' WHERE node = 'e'")
        .await;
    let second = db
        .central
        .pull("e", &m, Some(&first.token), 3)
        .await
        .expect("page 2");
    assert!(!second.done);
    assert_eq!(
        recorded().await,
        "0 2000-01-01 00:00:00.000000",
        "a later page of the full pass wrote again"
    );
    let (_, end) = pull_pass(&db.central, "e", &m, Some(second.token), 3).await;
    db.exec("UPDATE items SET qty = qty + 1").await;
    let page = db
        .central
        .pull("e", &m, Some(&end), 3)
        .await
        .expect("incremental page");
    assert!(!page.done);
    let after: i64 = serde_json::from_str::<serde_json::Value>(&end).expect("token")["after"]
        .as_i64()
        .expect("after");
    let now = recorded().await;
    assert!(now.starts_with(&format!("{after} ")), "{now} after {after}");
    assert!(!now.contains("2000-01-01"), "{now}");
}
