//! read_changes / ack_push / apply_pull against hand-made central answers.

use edgesync_core::change::PushResult;
use edgesync_core::{Change, ErrorKind, PullPage, PushOutcome, Value};
use rusqlite::Connection;

use super::{app, both_hard, both_soft, edge, row, Dir};

fn pulled(id: i64, name: &str, qty: i64, version: i64) -> Change {
    Change {
        key: vec![Value::Int(id)],
        values: Some(row(id, name, qty)),
        deleted: false,
        version,
        base: None,
        hlc: 1 << 40,
    }
}

fn page(changes: Vec<Change>, token: &str, done: bool) -> PullPage {
    PullPage {
        changes,
        token: token.into(),
        done,
        fingerprint: None,
    }
}

fn get(a: &Connection, id: i64) -> Option<(String, i64, i64, Option<i64>, i64)> {
    a.query_row(
        "SELECT name, qty, es_ver, es_cver, es_deleted FROM items WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .ok()
}

#[tokio::test]
async fn ack_records_versions_moves_the_watermark_and_drops_tombstones() {
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
    a.execute("DELETE FROM items WHERE id = 2", []).unwrap();
    let batch = db.read_changes(&t, 10).await.unwrap().unwrap();
    assert_eq!(batch.changes.len(), 2);
    assert_eq!(batch.hi, 3);
    let result = PushResult {
        outcomes: vec![
            PushOutcome::Applied { version: 11 },
            PushOutcome::Applied { version: 12 },
        ],
        conflicts: 0,
        replayed: 0,
    };
    db.ack_push(&t, &batch, &result).await.unwrap();
    assert_eq!(get(&a, 1), Some(("a".into(), 1, 1, Some(11), 0)));
    let tombs: i64 = a
        .query_row("SELECT count(*) FROM es_tombstones", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tombs, 0);
    let st = db.status(&t).await.unwrap();
    assert_eq!((st.pending, st.push_wm), (0, 3));
    assert!(st.last_push.is_some());
    assert_eq!(db.read_changes(&t, 10).await.unwrap(), None);
    // The received versions are not echoed: acking wrote nothing pending.
    let seq: i64 = a
        .query_row("SELECT seq FROM es_ctl", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seq, 3);
}

#[tokio::test]
async fn superseded_rows_are_taken_unless_they_changed_in_flight() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_soft();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let a = app(&path);
    a.execute(
        "INSERT INTO items (id, name, qty) VALUES (1, 'mine', 1), (2, 'mine', 2), (3, 'x', 3)",
        [],
    )
    .unwrap();
    let batch = db.read_changes(&t, 10).await.unwrap().unwrap();
    // Row 2 is written again while the push is in flight.
    a.execute("UPDATE items SET qty = 20 WHERE id = 2", [])
        .unwrap();
    let central = |id, name: &str, qty, version| PushOutcome::Superseded {
        row: Some(Change {
            hlc: 5 << 40,
            ..pulled(id, name, qty, version)
        }),
    };
    let result = PushResult {
        outcomes: vec![
            central(1, "theirs", 100, 50),
            central(2, "theirs", 200, 51),
            PushOutcome::Superseded { row: None },
        ],
        conflicts: 2,
        replayed: 0,
    };
    db.ack_push(&t, &batch, &result).await.unwrap();
    assert_eq!(get(&a, 1), Some(("theirs".into(), 100, 1, Some(50), 0)));
    assert_eq!(
        get(&a, 2),
        Some(("mine".into(), 20, 4, None, 0)),
        "left for the next push"
    );
    assert_eq!(
        get(&a, 3).map(|r| r.4),
        Some(1),
        "soft table: gone centrally = marker"
    );
    let st = db.status(&t).await.unwrap();
    assert_eq!((st.pending, st.push_wm), (1, 3));
    // HLC receive: the next local stamp sorts after the central's.
    a.execute("UPDATE items SET qty = 21 WHERE id = 2", [])
        .unwrap();
    let hlc: i64 = a
        .query_row("SELECT es_hlc FROM items WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    assert!(hlc > 5 << 40);
}

#[tokio::test]
async fn a_lost_hard_delete_restores_the_central_row() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_hard();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let a = app(&path);
    a.execute("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", [])
        .unwrap();
    a.execute("DELETE FROM items", []).unwrap();
    let batch = db.read_changes(&t, 10).await.unwrap().unwrap();
    assert_eq!(batch.changes.len(), 1);
    let result = PushResult {
        outcomes: vec![PushOutcome::Superseded {
            row: Some(pulled(1, "central", 9, 30)),
        }],
        conflicts: 1,
        replayed: 0,
    };
    db.ack_push(&t, &batch, &result).await.unwrap();
    assert_eq!(get(&a, 1), Some(("central".into(), 9, 0, Some(30), 0)));
    assert_eq!(db.status(&t).await.unwrap().pending, 0);
}

#[tokio::test]
async fn apply_pull_skips_dirty_and_stale_rows_and_stores_the_token() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_hard();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let a = app(&path);
    assert_eq!(db.pull_token(&t).await.unwrap(), None);
    let stats = db
        .apply_pull(
            &t,
            &page(
                vec![pulled(1, "a", 1, 10), pulled(2, "b", 2, 11)],
                "tok1",
                false,
            ),
        )
        .await
        .unwrap();
    assert_eq!(stats.applied, 2);
    assert_eq!(get(&a, 1), Some(("a".into(), 1, 0, Some(10), 0)));
    let st = db.status(&t).await.unwrap();
    assert!(st.pull_started && !st.pull_complete && st.last_pull.is_none());
    assert_eq!(st.pending, 0, "pulled rows are not local changes");
    assert_eq!(db.pull_token(&t).await.unwrap().as_deref(), Some("tok1"));

    a.execute("UPDATE items SET qty = 5 WHERE id = 2", [])
        .unwrap();
    let deleted = Change {
        values: None,
        deleted: true,
        ..pulled(3, "", 0, 14)
    };
    let stats = db
        .apply_pull(
            &t,
            &page(
                vec![
                    pulled(1, "stale", 0, 9),
                    pulled(2, "dirty", 0, 12),
                    pulled(4, "new", 4, 13),
                    deleted,
                ],
                "tok2",
                true,
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        stats,
        edgesync_sqlite::ApplyStats {
            applied: 1,
            skipped_dirty: 1,
            skipped_stale: 2
        }
    );
    assert_eq!(get(&a, 1).unwrap().0, "a");
    assert_eq!(get(&a, 2).unwrap().1, 5);
    assert_eq!(get(&a, 3), None, "deleted rows are never created");
    assert_eq!(get(&a, 4).unwrap().0, "new");
    let st = db.status(&t).await.unwrap();
    assert!(st.pull_complete && st.last_pull.is_some());
    assert_eq!(db.pull_token(&t).await.unwrap().as_deref(), Some("tok2"));

    // A hard delete from the central removes the row.
    let del = Change {
        values: None,
        deleted: true,
        ..pulled(4, "", 0, 20)
    };
    db.apply_pull(&t, &page(vec![del], "tok3", true))
        .await
        .unwrap();
    assert_eq!(get(&a, 4), None);
    assert_eq!(
        db.status(&t).await.unwrap().pending,
        1,
        "only the local update"
    );
}

#[tokio::test]
async fn soft_deletes_from_the_central_set_the_marker() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_soft();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let a = app(&path);
    db.apply_pull(&t, &page(vec![pulled(1, "a", 1, 10)], "t", true))
        .await
        .unwrap();
    let del = Change {
        deleted: true,
        ..pulled(1, "a", 1, 11)
    };
    db.apply_pull(&t, &page(vec![del], "t2", true))
        .await
        .unwrap();
    assert_eq!(get(&a, 1), Some(("a".into(), 1, 0, Some(11), 1)));
}

#[tokio::test]
async fn a_failed_page_changes_nothing() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_hard();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let a = app(&path);
    let bad = Change {
        values: Some(vec![Value::Int(2), Value::Int(7), Value::Int(1)]),
        ..pulled(2, "", 0, 11)
    };
    let err = db
        .apply_pull(&t, &page(vec![pulled(1, "a", 1, 10), bad], "tok", true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Value);
    assert!(
        err.message().contains("name") && err.message().contains("id=2"),
        "{err}"
    );
    assert_eq!(get(&a, 1), None);
    assert_eq!(db.pull_token(&t).await.unwrap(), None);
    let applying: i64 = a
        .query_row("SELECT applying FROM es_ctl", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applying, 0);
}

#[tokio::test]
async fn a_bad_stored_value_is_an_error_naming_table_column_and_key() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_hard();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    app(&path)
        .execute(
            "INSERT INTO items (id, name, qty) VALUES (7, 'a', 'twelve')",
            [],
        )
        .unwrap();
    let err = db.read_changes(&t, 10).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Value);
    let msg = err.message();
    assert!(
        msg.contains("items")
            && msg.contains("qty")
            && msg.contains("id=7")
            && msg.contains("twelve"),
        "{msg}"
    );
}

#[tokio::test]
async fn errors_are_noted_and_cleared() {
    let dir = Dir::new();
    let t = both_soft();
    let db = edge(&dir.file("e.db"), "n", std::slice::from_ref(&t)).await;
    db.note_error("items", Some("central unreachable"))
        .await
        .unwrap();
    let st = db.status(&t).await.unwrap();
    assert_eq!(st.last_error.as_deref(), Some("central unreachable"));
    assert!(st.last_error_at.is_some());
    db.note_error("items", None).await.unwrap();
    let st = db.status(&t).await.unwrap();
    assert_eq!((st.last_error, st.last_error_at), (None, None));
    // Not provisioned yet: nowhere to keep it, and no error either.
    let fresh = edgesync_sqlite::EdgeDb::open(&dir.file("f.db"))
        .await
        .unwrap();
    fresh.note_error("items", Some("x")).await.unwrap();
}
