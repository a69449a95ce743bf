//! Pull apply with the connection's triggers off (`edge/pull.rs`): pulled
//! rows are still never captured, application triggers still fire for
//! them, and the application's own writes are captured throughout.

use edgesync_core::{Change, ColType, ColumnMap, PullPage, QualifiedName, TableMapping, Value};
use rusqlite::Connection;

use super::{app, both_hard, both_soft, edge, row, Dir};

fn pulled(id: i64, name: &str, qty: i64, version: i64) -> Change {
    Change {
        key: vec![Value::Int(id)],
        values: Some(row(id, name, qty)),
        deleted: false,
        version,
        base: None,
        hlc: version << 16,
    }
}

fn deleted(id: i64, version: i64) -> Change {
    Change {
        key: vec![Value::Int(id)],
        values: None,
        deleted: true,
        version,
        base: None,
        hlc: version << 16,
    }
}

fn page(changes: Vec<Change>, token: &str) -> PullPage {
    PullPage {
        changes,
        token: token.into(),
        done: false,
        fingerprint: None,
    }
}

fn count(a: &Connection, sql: &str) -> i64 {
    a.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// New rows, updates and deletes (soft and hard tables) leave nothing to
/// push and no local sequence used.
#[tokio::test]
async fn pulled_rows_are_not_captured() {
    for t in [both_soft(), both_hard()] {
        let dir = Dir::new();
        let path = dir.file("e.db");
        let db = edge(&path, "n", std::slice::from_ref(&t)).await;
        let first: Vec<Change> = (1..=1200).map(|id| pulled(id, "new", id, id)).collect();
        let stats = db.apply_pull(&t, &page(first, "t1")).await.unwrap();
        assert_eq!(stats.applied, 1200);
        let mut second: Vec<Change> = (1..=600)
            .map(|id| pulled(id, "updated", -id, 2000 + id))
            .collect();
        second.extend((601..=700).map(|id| deleted(id, 3000 + id)));
        second.push(pulled(5000, "late", 1, 5000));
        let stats = db.apply_pull(&t, &page(second, "t2")).await.unwrap();
        assert_eq!(stats.applied, 701);
        assert!(db.read_changes(&t, 100).await.unwrap().is_none());
        let a = app(&path);
        assert_eq!(count(&a, "SELECT seq FROM es_ctl"), 0);
        assert_eq!(count(&a, "SELECT applying FROM es_ctl"), 0);
        assert_eq!(count(&a, "SELECT count(*) FROM items WHERE es_ver <> 0"), 0);
        assert_eq!(count(&a, "SELECT count(*) FROM es_tombstones"), 0);
        assert_eq!(
            count(
                &a,
                "SELECT count(*) FROM items WHERE name = 'updated' AND qty < 0"
            ),
            600
        );
        // The triggers are still there for the application.
        a.execute("UPDATE items SET qty = 7 WHERE id = 1", [])
            .unwrap();
        let batch = db.read_changes(&t, 100).await.unwrap().unwrap();
        assert_eq!(batch.changes.len(), 1);
        assert_eq!(batch.changes[0].key, vec![Value::Int(1)]);
    }
}

/// An application trigger on the synced table fires for every pulled row
/// (the apply keeps triggers on), and so does one on a table a foreign-key
/// action of the synced table writes.
#[tokio::test]
async fn application_triggers_fire_for_pulled_rows() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_hard();
    let a = app(&path);
    a.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);
         CREATE TABLE audit (what TEXT, id INTEGER);
         CREATE TRIGGER audit_insert AFTER INSERT ON items
           BEGIN INSERT INTO audit VALUES ('insert', NEW.id); END;
         CREATE TRIGGER audit_update AFTER UPDATE OF name, qty ON items
           BEGIN INSERT INTO audit VALUES ('update', NEW.id); END;",
    )
    .unwrap();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let first: Vec<Change> = (1..=250).map(|id| pulled(id, "new", id, id)).collect();
    db.apply_pull(&t, &page(first, "t1")).await.unwrap();
    let second: Vec<Change> = (1..=50).map(|id| pulled(id, "upd", 0, 1000 + id)).collect();
    db.apply_pull(&t, &page(second, "t2")).await.unwrap();
    assert_eq!(
        count(&a, "SELECT count(*) FROM audit WHERE what = 'insert'"),
        250
    );
    assert_eq!(
        count(&a, "SELECT count(*) FROM audit WHERE what = 'update'"),
        50
    );
    // Still not captured as local changes.
    assert!(db.read_changes(&t, 10).await.unwrap().is_none());

    // Only edgesync's triggers on items now; a child table whose rows a
    // pulled delete cascades to carries the application's trigger.
    a.execute_batch(
        "DROP TRIGGER audit_insert; DROP TRIGGER audit_update;
         CREATE TABLE notes (id INTEGER PRIMARY KEY,
                             item INTEGER REFERENCES items (id) ON DELETE CASCADE);
         INSERT INTO notes VALUES (1, 200), (2, 201);
         CREATE TRIGGER audit_notes AFTER DELETE ON notes
           BEGIN INSERT INTO audit VALUES ('cascade', OLD.id); END;",
    )
    .unwrap();
    db.apply_pull(
        &t,
        &page(vec![deleted(200, 3000), deleted(201, 3001)], "t3"),
    )
    .await
    .unwrap();
    assert_eq!(count(&a, "SELECT count(*) FROM notes"), 0);
    assert_eq!(
        count(&a, "SELECT count(*) FROM audit WHERE what = 'cascade'"),
        2
    );
}

/// The application writes on its own connection while edgesync applies
/// pages: every one of its writes is captured, no pulled row is.
#[tokio::test]
async fn application_writes_during_an_apply_are_captured() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_soft();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    // Rows 1..=100 are the application's.
    let mine: Vec<Change> = (1..=100).map(|id| pulled(id, "synced", 0, id)).collect();
    db.apply_pull(&t, &page(mine, "t0")).await.unwrap();
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            let a = app(&path);
            for round in 0..3 {
                for id in 1..=100 {
                    a.execute(
                        "UPDATE items SET qty = ?2, name = 'local' WHERE id = ?1",
                        [id, round + 1],
                    )
                    .unwrap();
                }
            }
            a.execute(
                "INSERT INTO items (id, name, qty) VALUES (1000000, 'mine', 1)",
                [],
            )
            .unwrap();
        })
    };
    // Meanwhile: pages of new rows, and updates of rows the app does not touch.
    for p in 0..20i64 {
        let base = 1000 + p * 1000;
        let mut changes: Vec<Change> = (base..base + 1000)
            .map(|id| pulled(id, "pulled", 1, id))
            .collect();
        if p > 0 {
            changes
                .extend((base - 1000..base - 900).map(|id| pulled(id, "again", 2, 100_000 + id)));
        }
        db.apply_pull(&t, &page(changes, &format!("t{}", p + 1)))
            .await
            .unwrap();
    }
    writer.join().unwrap();
    let a = app(&path);
    // 300 updates and one insert, each its own local sequence.
    assert_eq!(count(&a, "SELECT seq FROM es_ctl"), 301);
    assert_eq!(
        count(&a, "SELECT count(*) FROM items WHERE es_ver > 0"),
        101
    );
    assert_eq!(
        count(
            &a,
            "SELECT count(*) FROM items WHERE es_ver > 0 AND (id <= 100 OR id = 1000000)"
        ),
        101
    );
    let batch = db.read_changes(&t, 1000).await.unwrap().unwrap();
    let pending = batch.changes;
    assert_eq!(pending.len(), 101);
    assert_eq!(
        count(
            &a,
            "SELECT count(*) FROM items WHERE id <= 100 AND qty = 3 AND name = 'local'"
        ),
        100
    );
}

/// A page that fails halfway (a CHECK constraint of the edge table) leaves
/// the connection's triggers on: the next page, on a table with an
/// application trigger, still fires it.
#[tokio::test]
async fn a_failed_apply_leaves_triggers_on() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_soft();
    let notes = TableMapping {
        edge: "notes".into(),
        central: QualifiedName::parse("notes"),
        columns: vec![
            ColumnMap {
                edge: "id".into(),
                central: "id".into(),
                ty: ColType::Int,
                edge_ty: ColType::Int,
                nullable: false,
            },
            ColumnMap {
                edge: "body".into(),
                central: "body".into(),
                ty: ColType::Text { max_len: None },
                edge_ty: ColType::Text { max_len: None },
                nullable: true,
            },
        ],
        key: vec![0],
        ..both_soft()
    };
    let a = app(&path);
    a.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER CHECK (qty >= 0));
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
         CREATE TABLE audit (id INTEGER);
         CREATE TRIGGER audit_notes AFTER INSERT ON notes
           BEGIN INSERT INTO audit VALUES (NEW.id); END;",
    )
    .unwrap();
    let db = edge(&path, "n", &[t.clone(), notes.clone()]).await;
    let mut changes: Vec<Change> = (1..=500).map(|id| pulled(id, "x", 1, id)).collect();
    changes[321] = pulled(322, "bad", -5, 322);
    let e = db
        .apply_pull(&t, &page(changes, "t1"))
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("id=322"), "{e}");
    assert_eq!(count(&a, "SELECT count(*) FROM items"), 0);
    let note = Change {
        key: vec![Value::Int(1)],
        values: Some(vec![Value::Int(1), Value::Text("hello".into())]),
        deleted: false,
        version: 1,
        base: None,
        hlc: 1 << 16,
    };
    db.apply_pull(&notes, &page(vec![note], "n1"))
        .await
        .unwrap();
    assert_eq!(count(&a, "SELECT count(*) FROM audit"), 1);
    // The failed table's next page applies, uncaptured.
    let changes: Vec<Change> = (1..=500).map(|id| pulled(id, "x", 1, id)).collect();
    db.apply_pull(&t, &page(changes, "t1")).await.unwrap();
    assert_eq!(
        count(&a, "SELECT count(*) FROM items WHERE es_ver = 0"),
        500
    );
    assert!(db.read_changes(&t, 10).await.unwrap().is_none());
}
