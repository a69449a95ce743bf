//! Push: set-based apply, exactly-once replays, conflict policies, and
//! all-or-nothing batches.

use edgesync_core::{Central, ConflictPolicy, DeleteMode, ErrorKind, PushOutcome, Value};

use crate::common::*;

async fn hi(db: &TestDb, node: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT hi FROM es_nodes WHERE node = $1")
        .bind(node)
        .fetch_optional(db.pool())
        .await
        .expect("hi")
}

async fn version(db: &TestDb, id: i64) -> i64 {
    sqlx::query_scalar("SELECT es_ver FROM items WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .expect("version")
}

fn applied(o: &PushOutcome) -> i64 {
    match o {
        PushOutcome::Applied { version } => *version,
        other => panic!("not applied: {other:?}"),
    }
}

#[tokio::test]
async fn batch_applies_and_a_replay_answers_the_same_without_writing() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let first = batch(
        (1..=50)
            .map(|i| upsert(item(i, &format!("n{i}"), i, "1.50"), 0, i, None))
            .collect(),
    );
    let r = db.central.push("edge-a", &m, &first).await.expect("push");
    assert_eq!(r.outcomes.len(), 50);
    assert_eq!((r.conflicts, r.replayed), (0, 0));
    for (i, o) in r.outcomes.iter().enumerate() {
        assert_eq!(applied(o), version(&db, i as i64 + 1).await);
    }
    assert_eq!(hi(&db, "edge-a").await, Some(50));
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM items WHERE es_origin = 'edge-a' AND es_oseq = id AND price = 1.50").await,
        50
    );

    // Updates and deletes, based on the versions the push gave.
    let v1 = applied(&r.outcomes[0]);
    let v2 = applied(&r.outcomes[1]);
    let second = batch(vec![
        upsert(item(1, "changed", 9, "2.00"), 0, 51, Some(v1)),
        delete(Value::Int(2), None, 52, Some(v2)),
        upsert(item(51, "new", 1, "0.01"), 0, 53, None),
    ]);
    let r2 = db
        .central
        .push("edge-a", &m, &second)
        .await
        .expect("push 2");
    assert!(applied(&r2.outcomes[0]) > v1);
    assert!(applied(&r2.outcomes[2]) > 0);
    let (tomb_origin, tomb_oseq, tomb_ver): (String, i64, i64) = sqlx::query_as(
        "SELECT es_origin, es_oseq, es_ver FROM es_tombstones WHERE key = '[\"2\"]'",
    )
    .fetch_one(db.pool())
    .await
    .expect("tombstone of the pushed delete");
    assert_eq!((tomb_origin.as_str(), tomb_oseq), ("edge-a", 52));
    // A hard delete is answered with its tombstone's version.
    assert_eq!(applied(&r2.outcomes[1]), tomb_ver);

    // Both batches again: nothing is written, and the answers are the same.
    let before = db.dump("items").await;
    let tombs_before = db.dump("es_tombstones").await;
    let again = db.central.push("edge-a", &m, &first).await.expect("replay");
    assert_eq!(again.replayed, 50);
    // Rows 1 and 2 were overwritten since: superseded now.
    assert!(
        matches!(&again.outcomes[0], PushOutcome::Superseded { row: Some(c) } if c.values.as_ref().unwrap()[1] == Value::Text("changed".into()))
    );
    assert!(matches!(&again.outcomes[1], PushOutcome::Superseded { row: Some(c) } if c.deleted));
    assert_eq!(again.outcomes[2..], r.outcomes[2..]);
    let again2 = db
        .central
        .push("edge-a", &m, &second)
        .await
        .expect("replay 2");
    assert_eq!(again2.outcomes, r2.outcomes);
    assert_eq!(again2.replayed, 3);
    assert_eq!(db.dump("items").await, before);
    assert_eq!(db.dump("es_tombstones").await, tombs_before);
    assert_eq!(hi(&db, "edge-a").await, Some(53));
}

#[tokio::test]
async fn soft_delete_push_keeps_the_row_marked() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Soft).await;
    let r = db
        .central
        .push(
            "e",
            &m,
            &batch(vec![upsert(item(1, "a", 1, "1"), 0, 1, None)]),
        )
        .await
        .expect("push");
    let v = applied(&r.outcomes[0]);
    let r = db
        .central
        .push(
            "e",
            &m,
            &batch(vec![delete(
                Value::Int(1),
                Some(item(1, "a", 1, "1")),
                2,
                Some(v),
            )]),
        )
        .await
        .expect("push delete");
    let v2 = applied(&r.outcomes[0]);
    assert!(v2 > v);
    assert!(
        db.scalar::<bool>("SELECT es_deleted FROM items WHERE id = 1")
            .await
    );
    // A delete of a row the central never had is no conflict.
    let r = db
        .central
        .push(
            "e",
            &m,
            &batch(vec![delete(Value::Int(9), None, 3, Some(4))]),
        )
        .await
        .expect("push delete of unknown row");
    assert_eq!((applied(&r.outcomes[0]), r.conflicts), (0, 0));
}

#[tokio::test]
async fn server_wins_keeps_the_central_row_and_logs_the_conflict() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Soft).await;
    db.exec("INSERT INTO items (id, name, qty, price) VALUES (1, 'central', 1, 1), (2, 'central2', 1, 1)")
        .await;
    let base = version(&db, 1).await;
    db.exec("UPDATE items SET name = 'central-new' WHERE id = 1")
        .await;
    let r = db
        .central
        .push(
            "edge-a",
            &m,
            &batch(vec![
                // update/update
                upsert(item(1, "edge", 2, "3"), 0, 1, Some(base)),
                // insert/insert
                upsert(item(2, "edge2", 2, "3"), 0, 2, None),
            ]),
        )
        .await
        .expect("push");
    assert_eq!(r.conflicts, 2);
    match &r.outcomes[0] {
        PushOutcome::Superseded { row: Some(c) } => {
            assert_eq!(c.version, version(&db, 1).await);
            assert_eq!(
                c.values.as_ref().unwrap()[1],
                Value::Text("central-new".into())
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &r.outcomes[1],
        PushOutcome::Superseded { row: Some(_) }
    ));
    assert_eq!(
        db.scalar::<String>("SELECT name FROM items WHERE id = 1")
            .await,
        "central-new"
    );
    assert_eq!(
        db.scalar::<String>("SELECT name FROM items WHERE id = 2")
            .await,
        "central2"
    );

    let log = db.central.conflicts(true, 10).await.expect("conflicts");
    assert_eq!(log.len(), 2);
    let c = log
        .iter()
        .find(|c| c.key[0].1 == Value::Int(1))
        .expect("conflict on id 1");
    assert_eq!(c.table, "public.items");
    assert_eq!(c.node, "edge-a");
    assert_eq!(c.strategy, ConflictPolicy::ServerWins);
    assert_eq!(c.base_version, Some(base));
    assert_eq!(
        c.local.as_ref().unwrap()[1],
        ("name".into(), Value::Text("edge".into()))
    );
    assert_eq!(
        c.central.as_ref().unwrap()[1].1,
        Value::Text("central-new".into())
    );
    assert_eq!(c.result, c.central);
    assert_eq!(c.local.as_ref().unwrap()[3].1, Value::Decimal("3".into()));
    assert!(!c.open);
    assert!(db
        .central
        .conflicts(false, 10)
        .await
        .expect("open")
        .is_empty());
}

#[tokio::test]
async fn client_wins_overwrites_the_central_row() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ClientWins, DeleteMode::Hard).await;
    db.exec("INSERT INTO items (id, name, qty, price) VALUES (1, 'central', 1, 1), (2, 'central2', 1, 1)")
        .await;
    let base = version(&db, 1).await;
    db.exec("UPDATE items SET name = 'central-new' WHERE id = 1")
        .await;
    let r = db
        .central
        .push(
            "edge-a",
            &m,
            &batch(vec![
                upsert(item(1, "edge", 2, "3"), 0, 1, Some(base)),
                upsert(item(2, "edge2", 2, "3"), 0, 2, None),
            ]),
        )
        .await
        .expect("push");
    assert_eq!(r.conflicts, 2);
    assert_eq!(applied(&r.outcomes[0]), version(&db, 1).await);
    assert_eq!(applied(&r.outcomes[1]), version(&db, 2).await);
    assert_eq!(
        db.dump("(SELECT id, name, qty, price, es_origin FROM items)")
            .await,
        vec!["(1,edge,2,3.00,edge-a)", "(2,edge2,2,3.00,edge-a)"]
    );
    let log = db.central.conflicts(true, 10).await.expect("conflicts");
    assert!(log.iter().all(|c| c.result == c.local));
}

#[tokio::test]
async fn manual_conflicts_stay_open() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::Manual, DeleteMode::Soft).await;
    db.exec("INSERT INTO items (id, name, price) VALUES (1, 'central', 1)")
        .await;
    let r = db
        .central
        .push(
            "e",
            &m,
            &batch(vec![upsert(item(1, "edge", 2, "3"), 0, 1, None)]),
        )
        .await
        .expect("push");
    assert!(matches!(r.outcomes[0], PushOutcome::Superseded { .. }));
    let open = db.central.conflicts(false, 10).await.expect("conflicts");
    assert_eq!(open.len(), 1);
    assert!(open[0].open);
}

#[tokio::test]
async fn a_failing_row_rolls_back_the_whole_batch() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.central
        .push(
            "edge-a",
            &m,
            &batch(vec![upsert(item(1, "a", 1, "1"), 0, 1, None)]),
        )
        .await
        .expect("push");
    let before = db.dump("items").await;
    let v1 = version(&db, 1).await;
    let bad = batch(vec![
        upsert(item(1, "updated", 1, "1"), 0, 2, Some(v1)),
        upsert(item(2, "fine", 1, "1"), 0, 3, None),
        upsert(item(3, "negative", 1, "-1"), 0, 4, None),
        delete(Value::Int(1), None, 5, Some(v1)),
    ]);
    let err = db
        .central
        .push("edge-a", &m, &bad)
        .await
        .expect_err("check violation");
    assert_eq!(err.kind(), ErrorKind::Constraint, "{err}");
    assert!(err.message().contains("items"), "{err}");
    assert!(err.message().contains("nothing was applied"), "{err}");
    assert_eq!(db.dump("items").await, before);
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM es_tombstones").await,
        0
    );
    assert_eq!(hi(&db, "edge-a").await, Some(1));

    // NOT NULL violations name the column.
    let mut null_name = item(4, "x", 1, "1");
    null_name[1] = Value::Null;
    let err = db
        .central
        .push("edge-a", &m, &batch(vec![upsert(null_name, 0, 6, None)]))
        .await
        .expect_err("not null");
    assert_eq!(err.kind(), ErrorKind::Constraint, "{err}");
    assert!(err.message().contains("name"), "{err}");
    assert_eq!(hi(&db, "edge-a").await, Some(1));
}

#[tokio::test]
async fn a_key_repeated_in_one_batch_is_applied_in_order() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let r = db
        .central
        .push(
            "e",
            &m,
            &batch(vec![
                upsert(item(1, "first", 1, "1"), 0, 1, None),
                upsert(item(1, "second", 1, "1"), 0, 2, None),
            ]),
        )
        .await
        .expect("push");
    // The second write comes from the same node at a later sequence, so it
    // builds on the first (`conflict::rebase`): applied in order, no
    // conflict, even under server-wins.
    assert!(matches!(r.outcomes[0], PushOutcome::Applied { .. }));
    assert!(matches!(r.outcomes[1], PushOutcome::Applied { .. }));
    assert_eq!(r.conflicts, 0);
    assert_eq!(
        db.scalar::<String>("SELECT name FROM items").await,
        "second"
    );
}

#[tokio::test]
async fn progress_reports_each_node() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    for (node, v) in [("a", 3), ("b", 7)] {
        db.central
            .push(
                node,
                &m,
                &batch(vec![upsert(item(v, "x", 1, "1"), 0, v, None)]),
            )
            .await
            .expect("push");
    }
    let p = db.central.progress().await.expect("progress");
    let got: Vec<(String, String, i64, bool)> = p
        .into_iter()
        .map(|p| (p.node, p.table, p.hi, p.last_push.is_some()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a".into(), "public.items".into(), 3, true),
            ("b".into(), "public.items".into(), 7, true)
        ]
    );
}

#[tokio::test]
async fn a_key_inserted_concurrently_makes_the_batch_retryable() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ClientWins, DeleteMode::Hard).await;
    let mut other = <sqlx::PgConnection as sqlx::Connection>::connect(&url_for(&db.name))
        .await
        .expect("connect");
    sqlx::raw_sql("BEGIN; INSERT INTO items (id, name, price) VALUES (1, 'app', 1)")
        .execute(&mut other)
        .await
        .expect("insert");
    let central = db.central.clone();
    let m2 = m.clone();
    let push = tokio::spawn(async move {
        central
            .push(
                "e",
                &m2,
                &batch(vec![upsert(item(1, "edge", 1, "1"), 0, 1, None)]),
            )
            .await
    });
    // Wait until the push is blocked on the uncommitted row, then commit it.
    loop {
        let waiting: i64 = db
            .scalar(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .await;
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sqlx::raw_sql("COMMIT")
        .execute(&mut other)
        .await
        .expect("commit");
    let err = push.await.expect("join").expect_err("lost the race");
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    assert!(err.message().contains("id=1"), "{err}");
    assert_eq!(db.scalar::<String>("SELECT name FROM items").await, "app");
    assert_eq!(hi(&db, "e").await, None);

    // The retry sees the row and resolves it by policy.
    let r = db
        .central
        .push(
            "e",
            &m,
            &batch(vec![upsert(item(1, "edge", 1, "1"), 0, 1, None)]),
        )
        .await
        .expect("retry");
    assert_eq!(r.conflicts, 1);
    assert_eq!(db.scalar::<String>("SELECT name FROM items").await, "edge");
}
