//! Push: set-based apply, exactly-once replays, conflict policies (against
//! stamped and not-yet-stamped central writes), all-or-nothing batches and
//! the manual conflict queue.

use edgesync_core::{Central, ConflictPolicy, DeleteMode, ErrorKind, Keep, PushOutcome, Value};
use mysql_async::prelude::Queryable;

use crate::common::*;

async fn hi(db: &TestDb, node: &str) -> Option<i64> {
    let mut c = db.app().await;
    c.exec_first("SELECT hi FROM es_nodes WHERE node = ?", (node,))
        .await
        .expect("hi")
}

async fn version(db: &TestDb, id: i64) -> i64 {
    db.scalar(&format!("SELECT es_ver FROM items WHERE id = {id}"))
        .await
}

fn applied(o: &PushOutcome) -> i64 {
    match o {
        PushOutcome::Applied { version } => *version,
        other => panic!("not applied: {other:?}"),
    }
}

const ITEMS: &str = "SELECT id, name, qty, price, es_ver, es_deleted, es_hlc, es_origin, es_oseq FROM items ORDER BY id";

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
        db.scalar::<i64>(
            "SELECT COUNT(*) FROM items WHERE es_origin = 'edge-a' AND es_oseq = id AND price = 1.50"
        )
        .await,
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
    // a hard delete is answered with its tombstone's version
    assert!(applied(&r2.outcomes[1]) > 0);
    assert!(applied(&r2.outcomes[2]) > 0);
    let tomb: String = db
        .scalar("SELECT CONCAT(es_origin, ' ', es_oseq, ' ', es_ver > 0) FROM es_tombstones WHERE k = '[\"2\"]'")
        .await;
    assert_eq!(tomb, "edge-a 52 1");

    // Both batches again: nothing is written, and the answers are the same.
    let before = db.dump(ITEMS).await;
    let tombs_before = db.dump("SELECT * FROM es_tombstones ORDER BY k").await;
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
    assert_eq!(db.dump(ITEMS).await, before);
    assert_eq!(
        db.dump("SELECT * FROM es_tombstones ORDER BY k").await,
        tombs_before
    );
    assert_eq!(hi(&db, "edge-a").await, Some(53));
}

#[tokio::test]
async fn a_big_batch_is_written_in_chunks() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let rows = batch(
        (1..=2500)
            .map(|i| upsert(item(i, "x", i, "0.01"), 0, i, None))
            .collect(),
    );
    let r = db.central.push("e", &m, &rows).await.expect("push");
    let mut versions: Vec<i64> = r.outcomes.iter().map(applied).collect();
    versions.dedup();
    assert_eq!(versions.len(), 2500);
    let updates = batch(
        (1..=2500)
            .map(|i| {
                upsert(
                    item(i, "y", i, "0.02"),
                    0,
                    2500 + i,
                    Some(versions[i as usize - 1]),
                )
            })
            .collect(),
    );
    let r = db.central.push("e", &m, &updates).await.expect("push");
    assert_eq!(r.conflicts, 0);
    assert_eq!(
        db.scalar::<i64>(
            "SELECT COUNT(*) FROM items WHERE name = 'y' AND price = 0.02 AND es_ver IS NOT NULL"
        )
        .await,
        2500
    );
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
    // Sent without values: the central row keeps its own.
    let r = db
        .central
        .push(
            "e",
            &m,
            &batch(vec![delete(Value::Int(1), None, 2, Some(v))]),
        )
        .await
        .expect("push delete");
    let v2 = applied(&r.outcomes[0]);
    assert!(v2 > v);
    assert_eq!(
        db.scalar::<String>("SELECT CONCAT(name, ' ', es_deleted) FROM items WHERE id = 1")
            .await,
        "a 1"
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
    db.exec("INSERT INTO items (id, name, qty, price) VALUES (1, 'central', 1, 1)")
        .await;
    pull_pass(&db.central, "edge-a", &m, None, 10).await;
    let base = version(&db, 1).await;
    // Central application writes no pull has stamped yet: still conflicts.
    db.exec(
        "UPDATE items SET name = 'central-new' WHERE id = 1;
         INSERT INTO items (id, name, qty, price) VALUES (2, 'central2', 1, 1)",
    )
    .await;
    let r = db
        .central
        .push(
            "edge-a",
            &m,
            &batch(vec![
                // update/update
                upsert(item(1, "edge", 2, "3.00"), 0, 1, Some(base)),
                // insert/insert
                upsert(item(2, "edge2", 2, "3.00"), 0, 2, None),
            ]),
        )
        .await
        .expect("push");
    assert_eq!(r.conflicts, 2);
    for (k, name) in [(0, "central-new"), (1, "central2")] {
        match &r.outcomes[k] {
            PushOutcome::Superseded { row: Some(c) } => {
                // The push stamped the pending row: a real version.
                assert_eq!(c.version, version(&db, k as i64 + 1).await);
                assert!(c.version > base);
                assert_eq!(c.values.as_ref().unwrap()[1], Value::Text(name.into()));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        db.scalar::<String>("SELECT GROUP_CONCAT(name ORDER BY id) FROM items")
            .await,
        "central-new,central2"
    );

    let log = db.central.conflicts(true, 10).await.expect("conflicts");
    assert_eq!(log.len(), 2);
    let c = log
        .iter()
        .find(|c| c.key[0].1 == Value::Int(1))
        .expect("conflict on id 1");
    assert_eq!(c.table, format!("{}.items", db.name));
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
    assert_eq!(
        c.local.as_ref().unwrap()[3].1,
        Value::Decimal("3.00".into())
    );
    assert!(!c.open && c.resolved_at.is_some());
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
    pull_pass(&db.central, "x", &m, None, 10).await;
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
        db.scalar::<String>(
            "SELECT GROUP_CONCAT(CONCAT_WS(',', id, name, qty, price, es_origin) ORDER BY id SEPARATOR ' ') FROM items"
        )
        .await,
        "1,edge,2,3.00,edge-a 2,edge2,2,3.00,edge-a"
    );
    let log = db.central.conflicts(true, 10).await.expect("conflicts");
    assert!(log.iter().all(|c| c.result == c.local));
}

#[tokio::test]
async fn field_merge_combines_columns_changed_on_each_side() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::FieldMerge, DeleteMode::Soft).await;
    db.exec("INSERT INTO items (id, name, qty, price) VALUES (1, 'a', 1, 1)")
        .await;
    let (got, _) = pull_pass(&db.central, "edge-a", &m, None, 10).await;
    let base_row = got[0].values.clone().unwrap();
    let base = got[0].version;
    db.exec("UPDATE items SET qty = 5 WHERE id = 1").await;
    let mut b = batch(vec![upsert(item(1, "edge", 1, "1.00"), 0, 1, Some(base))]);
    b.bases = vec![Some(base_row)];
    let r = db.central.push("edge-a", &m, &b).await.expect("push");
    assert_eq!(r.conflicts, 1);
    match &r.outcomes[0] {
        PushOutcome::Superseded { row: Some(c) } => {
            assert_eq!(c.values.as_ref().unwrap(), &item(1, "edge", 5, "1.00"));
            assert_eq!(c.version, version(&db, 1).await);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        db.scalar::<String>("SELECT CONCAT_WS(',', name, qty, es_origin) FROM items")
            .await,
        "edge,5,edge-a"
    );
}

#[tokio::test]
async fn manual_conflicts_stay_open_until_resolved() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::Manual, DeleteMode::Soft).await;
    db.exec("INSERT INTO items (id, name, price) VALUES (1, 'central', 1), (2, 'central2', 1)")
        .await;
    let r = db
        .central
        .push(
            "e",
            &m,
            &batch(vec![
                upsert(item(1, "edge", 2, "3"), 0, 1, None),
                upsert(item(2, "edge2", 2, "3"), 0, 2, None),
            ]),
        )
        .await
        .expect("push");
    assert!(matches!(r.outcomes[0], PushOutcome::Superseded { .. }));
    let open = db.central.conflicts(false, 10).await.expect("conflicts");
    assert_eq!(open.len(), 2);
    assert!(open.iter().all(|c| c.open && c.resolved_at.is_none()));
    let one = open.iter().find(|c| c.key[0].1 == Value::Int(1)).unwrap();
    let two = open.iter().find(|c| c.key[0].1 == Value::Int(2)).unwrap();

    let (_, token) = pull_pass(&db.central, "e", &m, None, 10).await;
    // Keep the edge's version: written as a central application write, so
    // the node that pushed it pulls it too.
    let done = db
        .central
        .resolve_conflict(one.id, Keep::Local)
        .await
        .expect("resolve");
    assert!(!done.open && done.kept == Some(Keep::Local) && done.result == done.local);
    assert_eq!(
        db.scalar::<String>(
            "SELECT CONCAT_WS(',', name, qty, IFNULL(es_origin, 'app')) FROM items WHERE id = 1"
        )
        .await,
        "edge,2,app"
    );
    let (got, _) = pull_pass(&db.central, "e", &m, Some(token), 10).await;
    assert_eq!(ids(&got), vec![1]);
    // Keep the central's: nothing written.
    let done = db
        .central
        .resolve_conflict(two.id, Keep::Central)
        .await
        .expect("resolve");
    assert_eq!(done.kept, Some(Keep::Central));
    assert_eq!(
        db.scalar::<String>("SELECT name FROM items WHERE id = 2")
            .await,
        "central2"
    );
    let err = db
        .central
        .resolve_conflict(two.id, Keep::Local)
        .await
        .expect_err("twice");
    assert_eq!(err.kind(), ErrorKind::Constraint, "{err}");
    let err = db
        .central
        .resolve_conflict(9999, Keep::Local)
        .await
        .expect_err("unknown");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("#9999"), "{err}");
    // Settled entries are purged once old enough; open ones never.
    assert_eq!(
        db.central
            .purge_conflicts(std::time::Duration::from_secs(3600))
            .await
            .expect("purge"),
        0
    );
    db.exec("UPDATE es_conflicts SET resolved_at = resolved_at - INTERVAL 2 HOUR")
        .await;
    assert_eq!(
        db.central
            .purge_conflicts(std::time::Duration::from_secs(3600))
            .await
            .expect("purge"),
        2
    );
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
    let before = db.dump(ITEMS).await;
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
    assert_eq!(db.dump(ITEMS).await, before);
    assert_eq!(
        db.scalar::<i64>("SELECT COUNT(*) FROM es_tombstones").await,
        0
    );
    assert_eq!(hi(&db, "edge-a").await, Some(1));
    let seq: i64 = db.scalar("SELECT seq FROM es_ctl").await;

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
    assert_eq!(db.scalar::<i64>("SELECT seq FROM es_ctl").await, seq);
    // The connection that failed is clean for the next push.
    db.central
        .push(
            "edge-a",
            &m,
            &batch(vec![upsert(item(4, "ok", 1, "1"), 0, 7, None)]),
        )
        .await
        .expect("push after a failure");
    assert_eq!(hi(&db, "edge-a").await, Some(7));
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
                upsert(item(2, "gone", 1, "1"), 0, 3, None),
                delete(Value::Int(2), None, 4, None),
            ]),
        )
        .await
        .expect("push");
    // The second write comes from the same node at a later sequence, so it
    // builds on the first (`conflict::rebase`): applied in order, no
    // conflict, even under server-wins.
    assert!(matches!(r.outcomes[0], PushOutcome::Applied { .. }));
    assert_eq!(applied(&r.outcomes[1]), version(&db, 1).await);
    assert_eq!(r.conflicts, 0);
    assert_eq!(
        db.scalar::<String>("SELECT name FROM items").await,
        "second"
    );
    assert_eq!(
        db.scalar::<i64>("SELECT COUNT(*) FROM es_tombstones WHERE k = '[\"2\"]' AND es_ver > 0")
            .await,
        1
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
    let t = format!("{}.items", db.name);
    assert_eq!(
        got,
        vec![("a".into(), t.clone(), 3, true), ("b".into(), t, 7, true)]
    );
}

#[tokio::test]
async fn a_key_inserted_concurrently_is_waited_for_and_resolved_by_policy() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ClientWins, DeleteMode::Hard).await;
    let mut other = db.app().await;
    other
        .query_drop("BEGIN; INSERT INTO items (id, name, price) VALUES (1, 'app', 1)")
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
    // Wait until the push waits for the uncommitted row, then commit it.
    for _ in 0..1000 {
        let waiting: i64 = db
            .scalar(&format!(
                // (MariaDB waits for this lock while optimizing, before the
                // transaction shows in INNODB_TRX.)
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST
                  WHERE DB = '{}' AND COMMAND = 'Execute' AND INFO LIKE '%FOR UPDATE%'",
                db.name
            ))
            .await;
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    other.query_drop("COMMIT").await.expect("commit");
    let r = push
        .await
        .expect("join")
        .expect("push waited, then decided");
    assert_eq!(r.conflicts, 1);
    assert_eq!(db.scalar::<String>("SELECT name FROM items").await, "edge");
    assert_eq!(hi(&db, "e").await, Some(1));
}

/// A push writes each row once, with its final version: no second
/// `UPDATE` to stamp it (counted by triggers of the test's own), and no
/// pushed row or tombstone is ever left without a version.
#[tokio::test]
async fn a_push_writes_each_row_once_with_its_version() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec(
        "CREATE TABLE row_writes (id BIGINT NOT NULL, what VARCHAR(8) NOT NULL, ver BIGINT NULL);
         CREATE TRIGGER count_ins AFTER INSERT ON items FOR EACH ROW
           INSERT INTO row_writes VALUES (NEW.id, 'insert', NEW.es_ver);
         CREATE TRIGGER count_upd AFTER UPDATE ON items FOR EACH ROW
           INSERT INTO row_writes VALUES (NEW.id, 'update', NEW.es_ver)",
    )
    .await;
    let r = db
        .central
        .push(
            "e",
            &m,
            &batch(
                (1..=20)
                    .map(|i| upsert(item(i, "a", i, "1"), 0, i, None))
                    .collect(),
            ),
        )
        .await
        .expect("push inserts");
    let mut changes: Vec<_> = (1..=10)
        .map(|i| {
            upsert(
                item(i, "b", i, "1"),
                0,
                20 + i,
                Some(applied(&r.outcomes[i as usize - 1])),
            )
        })
        .collect();
    changes.push(delete(
        Value::Int(11),
        None,
        31,
        Some(applied(&r.outcomes[10])),
    ));
    let r2 = db
        .central
        .push("e", &m, &batch(changes))
        .await
        .expect("push updates");
    let writes: Vec<(String, i64)> = {
        let mut c = db.app().await;
        let w = c
            .query("SELECT what, COUNT(*) FROM row_writes GROUP BY what ORDER BY what")
            .await
            .expect("writes");
        c.disconnect().await.ok();
        w
    };
    assert_eq!(writes, vec![("insert".into(), 20), ("update".into(), 10)]);
    assert_eq!(
        db.scalar::<i64>("SELECT COUNT(*) FROM row_writes WHERE ver IS NULL")
            .await,
        0
    );
    for (i, o) in r2.outcomes.iter().take(10).enumerate() {
        assert_eq!(applied(o), version(&db, i as i64 + 1).await);
    }
    assert_eq!(
        applied(&r2.outcomes[10]),
        db.scalar::<i64>("SELECT es_ver FROM es_tombstones WHERE k = '[\"11\"]'")
            .await
    );
    // The counter stands at the highest version handed out.
    assert_eq!(
        db.scalar::<i64>("SELECT seq FROM es_ctl").await,
        db.scalar::<i64>(
            "SELECT GREATEST((SELECT MAX(es_ver) FROM items), (SELECT MAX(es_ver) FROM es_tombstones))"
        )
        .await
    );
}

/// The version counter is locked only once the push has read and locked
/// its rows and decided: a push waiting for an application's row lock does
/// not hold up other nodes' pulls (their stamping step needs the counter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_waiting_for_a_row_lock_does_not_block_pulls() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ClientWins, DeleteMode::Hard).await;
    let (_, t0) = pull_pass(&db.central, "reader", &m, None, 100).await;
    let mut other = db.app().await;
    other
        .query_drop("BEGIN; INSERT INTO items (id, name, price) VALUES (1, 'app', 1)")
        .await
        .expect("insert");
    let central = db.central.clone();
    let m2 = m.clone();
    let push = tokio::spawn(async move {
        central
            .push(
                "e",
                &m2,
                &batch(vec![
                    upsert(item(1, "edge", 1, "1"), 0, 1, None),
                    upsert(item(2, "edge", 1, "1"), 0, 2, None),
                ]),
            )
            .await
    });
    for _ in 0..1000 {
        let waiting: i64 = db
            .scalar(&format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST
                  WHERE DB = '{}' AND COMMAND = 'Execute' AND INFO LIKE '%FOR UPDATE%'",
                db.name
            ))
            .await;
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // An application change committed meanwhile is stamped and delivered
    // while the push still waits.
    db.exec("INSERT INTO items (id, name, price) VALUES (50, 'other', 1)")
        .await;
    let (during, _) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        pull_pass(&db.central, "reader", &m, Some(t0), 100),
    )
    .await
    .expect("a pull waited for a push that waits for a row lock");
    assert_eq!(ids(&during), vec![50]);
    assert!(!push.is_finished());
    other.query_drop("COMMIT").await.expect("commit");
    let r = push.await.expect("join").expect("push");
    assert_eq!(r.conflicts, 1);
    assert_eq!(
        db.scalar::<i64>("SELECT COUNT(*) FROM items WHERE name = 'edge' AND es_ver IS NOT NULL")
            .await,
        2
    );
}
