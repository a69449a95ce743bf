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
           FROM unnest(ARRAY['n', 'sü', 'x''y']) r, generate_series(1, 5) i;
         DELETE FROM s.k WHERE region = 'x''y' AND amount = 0.25;",
    )
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
