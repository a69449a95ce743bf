//! The triggers: what an application's plain SQL leaves for the next push.

use edgesync_core::{ConflictPolicy, DeleteMode, Direction, Value};
use rusqlite::Connection;

use super::{app, both_hard, both_soft, edge, items, row, Dir};

/// `(es_ver, es_cver, es_deleted)` of a row.
fn meta(a: &Connection, id: i64) -> Option<(i64, Option<i64>, i64)> {
    a.query_row(
        "SELECT es_ver, es_cver, es_deleted FROM items WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .ok()
}

fn tombstones(a: &Connection) -> Vec<(String, i64, Option<i64>)> {
    a.prepare("SELECT key, es_ver, es_cver FROM es_tombstones ORDER BY es_ver")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn insert_update_and_soft_delete_are_stamped_and_the_row_stays() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_soft();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let a = app(&path);
    a.execute("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", [])
        .unwrap();
    assert_eq!(meta(&a, 1), Some((1, None, 0)));
    let hlc1: i64 = a
        .query_row("SELECT es_hlc FROM items", [], |r| r.get(0))
        .unwrap();
    a.execute("UPDATE items SET qty = 2 WHERE id = 1", [])
        .unwrap();
    assert_eq!(meta(&a, 1), Some((2, None, 0)));
    let hlc2: i64 = a
        .query_row("SELECT es_hlc FROM items", [], |r| r.get(0))
        .unwrap();
    assert!(hlc2 > hlc1);
    let deleted = a.execute("DELETE FROM items WHERE id = 1", []).unwrap();
    assert_eq!(deleted, 0, "RAISE(IGNORE) skips the delete");
    assert_eq!(
        meta(&a, 1),
        Some((3, None, 1)),
        "row kept, marker set, stamped"
    );
    assert!(tombstones(&a).is_empty());

    let batch = db.read_changes(&t, 10).await.unwrap().unwrap();
    assert_eq!(batch.hi, 3);
    assert_eq!(batch.changes.len(), 1);
    let c = &batch.changes[0];
    assert!(c.deleted);
    assert_eq!(c.values, Some(row(1, "a", 2)));
    assert_eq!(c.version, 3);
}

#[tokio::test]
async fn hard_delete_leaves_a_tombstone_with_the_base() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_hard();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let a = app(&path);
    a.execute(
        "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1), (2, 'b', 2)",
        [],
    )
    .unwrap();
    // Stands in for a sync: edgesync's own columns (es_cver) are not watched
    // by the capture triggers, so this is not captured.
    a.execute("UPDATE items SET es_cver = 40 WHERE id = 1", [])
        .unwrap();
    a.execute("DELETE FROM items WHERE id = 1", []).unwrap();
    assert_eq!(meta(&a, 1), None);
    assert_eq!(tombstones(&a), vec![("[1]".to_string(), 3, Some(40))]);
    let batch = db.read_changes(&t, 10).await.unwrap().unwrap();
    let versions: Vec<i64> = batch.changes.iter().map(|c| c.version).collect();
    assert_eq!(
        versions,
        vec![2, 3],
        "rows and tombstones merged by sequence"
    );
    let tomb = &batch.changes[1];
    assert_eq!(tomb.key, vec![Value::Int(1)]);
    assert_eq!(
        (tomb.values.clone(), tomb.deleted, tomb.base),
        (None, true, Some(40))
    );
}

#[tokio::test]
async fn writes_made_while_applying_are_not_captured() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_hard();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let a = app(&path);
    a.execute_batch(
        "BEGIN; UPDATE es_ctl SET applying = 1;
         INSERT INTO items (id, name, qty) VALUES (1, 'a', 1);
         UPDATE items SET qty = 3;
         INSERT INTO items (id, name, qty) VALUES (2, 'b', 1);
         DELETE FROM items WHERE id = 2;
         UPDATE es_ctl SET applying = 0; COMMIT;",
    )
    .unwrap();
    assert_eq!(meta(&a, 1), Some((0, None, 0)));
    assert!(tombstones(&a).is_empty());
    assert_eq!(db.read_changes(&t, 10).await.unwrap(), None);
    let seq: i64 = a
        .query_row("SELECT seq FROM es_ctl", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seq, 0);
}

#[tokio::test]
async fn insert_or_replace_and_delete_then_reinsert_keep_the_base() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let db = edge(&path, "n", &[both_hard()]).await;
    let a = app(&path);
    a.execute("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", [])
        .unwrap();
    // Stands in for a sync (es_cver is not watched, so not captured).
    a.execute("UPDATE items SET es_cver = 7", []).unwrap();
    a.execute(
        "INSERT OR REPLACE INTO items (id, name, qty) VALUES (1, 'b', 2)",
        [],
    )
    .unwrap();
    assert_eq!(meta(&a, 1), Some((2, Some(7), 0)));
    a.execute("DELETE FROM items WHERE id = 1", []).unwrap();
    assert_eq!(tombstones(&a).len(), 1);
    a.execute("INSERT INTO items (id, name, qty) VALUES (1, 'c', 3)", [])
        .unwrap();
    assert!(tombstones(&a).is_empty(), "re-insert supersedes the delete");
    assert_eq!(meta(&a, 1), Some((4, Some(7), 0)));
    // An upsert goes through the update trigger.
    a.execute(
        "INSERT INTO items (id, name, qty) VALUES (1, 'd', 4) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
        [],
    )
    .unwrap();
    assert_eq!(meta(&a, 1), Some((5, Some(7), 0)));
    drop(db);
}

#[tokio::test]
async fn a_key_change_tombstones_the_old_key_first() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_hard();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let a = app(&path);
    a.execute("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", [])
        .unwrap();
    // Stands in for a sync (es_cver is not watched, so not captured).
    a.execute("UPDATE items SET es_cver = 9", []).unwrap();
    a.execute("UPDATE items SET id = 5 WHERE id = 1", [])
        .unwrap();
    assert_eq!(tombstones(&a), vec![("[1]".to_string(), 2, Some(9))]);
    assert_eq!(
        meta(&a, 5),
        Some((3, None, 0)),
        "the new key was never synced"
    );
    let batch = db.read_changes(&t, 10).await.unwrap().unwrap();
    let keys: Vec<(Vec<Value>, bool)> = batch
        .changes
        .iter()
        .map(|c| (c.key.clone(), c.deleted))
        .collect();
    assert_eq!(
        keys,
        vec![(vec![Value::Int(1)], true), (vec![Value::Int(5)], false)]
    );
}

#[tokio::test]
async fn without_rowid_tables_with_composite_keys_are_captured_and_applied() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let a = app(&path);
    a.execute_batch(
        "CREATE TABLE stock (site TEXT NOT NULL, sku BLOB NOT NULL, qty INTEGER,
                             PRIMARY KEY (site, sku)) WITHOUT ROWID",
    )
    .unwrap();
    let mut t = items(
        Direction::Both,
        ConflictPolicy::ClientWins,
        DeleteMode::Hard,
    );
    t.edge = "stock".into();
    t.central = edgesync_core::QualifiedName::parse("stock");
    t.columns = vec![
        super::col("site", super::text()),
        super::col("sku", edgesync_core::ColType::Bytes),
        super::col("qty", edgesync_core::ColType::Int),
    ];
    t.key = vec![0, 1];
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    a.execute(
        "INSERT INTO stock (site, sku, qty) VALUES ('north', x'00ff', 1)",
        [],
    )
    .unwrap();
    a.execute("DELETE FROM stock", []).unwrap();
    let batch = db.read_changes(&t, 10).await.unwrap().unwrap();
    assert_eq!(
        batch.changes[0].key,
        vec![Value::Text("north".into()), Value::Bytes(vec![0, 255])]
    );
    assert!(batch.changes[0].values.is_none());
    // A pulled row for a key with a pending delete is skipped; others apply.
    let key2 = vec![Value::Text("south".into()), Value::Bytes(vec![1])];
    let page = edgesync_core::PullPage {
        changes: vec![
            edgesync_core::Change {
                key: batch.changes[0].key.clone(),
                values: Some(vec![
                    Value::Text("north".into()),
                    Value::Bytes(vec![0, 255]),
                    Value::Int(8),
                ]),
                deleted: false,
                version: 3,
                base: None,
                hlc: 1,
            },
            edgesync_core::Change {
                key: key2.clone(),
                values: Some(vec![key2[0].clone(), key2[1].clone(), Value::Int(2)]),
                deleted: false,
                version: 4,
                base: None,
                hlc: 1,
            },
        ],
        token: "t".into(),
        done: true,
        fingerprint: None,
    };
    let stats = db.apply_pull(&t, &page).await.unwrap();
    assert_eq!((stats.applied, stats.skipped_dirty), (1, 1));
    let qty: i64 = a
        .query_row(
            "SELECT qty FROM stock WHERE site = 'south' AND sku = x'01'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(qty, 2);
}
