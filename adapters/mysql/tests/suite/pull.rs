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
    assert!(p1.changes.windows(2).all(|w| w[0].version < w[1].version));

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
