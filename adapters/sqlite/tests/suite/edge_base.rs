//! Conflict bases on the edge (`es_base`): captured by the triggers on the
//! first local change of a clean row, sent with pushes, kept consistent by
//! `ack_push` and `apply_pull`, removed by deinit.

use edgesync_core::change::PushResult;
use edgesync_core::{
    Change, ColType, ConflictPolicy, DeleteMode, Direction, PullPage, PushOutcome, QualifiedName,
    TableMapping, Value,
};
use rusqlite::Connection;

use super::{app, both_hard, both_soft, col, edge, row, text, Dir};

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

fn page(changes: Vec<Change>) -> PullPage {
    PullPage {
        changes,
        token: "{\"v\":100}".into(),
        done: true,
        fingerprint: None,
    }
}

fn bases(a: &Connection) -> Vec<(String, i64, String)> {
    let mut st = a
        .prepare("SELECT key, cver, row FROM es_base ORDER BY key")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn applied(versions: &[i64]) -> PushResult {
    PushResult {
        outcomes: versions
            .iter()
            .map(|&version| PushOutcome::Applied { version })
            .collect(),
        conflicts: 0,
        replayed: 0,
    }
}

#[tokio::test]
async fn the_first_change_of_a_clean_row_keeps_its_base_and_inserts_keep_none() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_soft();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    db.apply_pull(
        &t,
        &page(vec![pulled(1, "one", 1, 7), pulled(2, "two", 2, 8)]),
    )
    .await
    .unwrap();
    let a = app(&path);
    a.execute("INSERT INTO items (id, name, qty) VALUES (3, 'new', 3)", [])
        .unwrap();
    assert!(bases(&a).is_empty(), "an insert has no base");
    a.execute_batch(
        "UPDATE items SET qty = 10 WHERE id = 1; UPDATE items SET qty = 11 WHERE id = 1;
         DELETE FROM items WHERE id = 2; UPDATE items SET qty = 30 WHERE id = 3;",
    )
    .unwrap();
    // The first change's OLD values, at the synced version; the row never
    // synced (3) has none; a soft delete keeps the row's values.
    assert_eq!(
        bases(&a),
        vec![
            ("[1]".to_string(), 7, "[1,\"one\",1]".to_string()),
            ("[2]".to_string(), 8, "[2,\"two\",2]".to_string()),
        ]
    );
    let batch = db.read_changes(&t, 10).await.unwrap().unwrap();
    let by_id = |id: i64| {
        batch
            .changes
            .iter()
            .position(|c| c.key == vec![Value::Int(id)])
            .unwrap()
    };
    assert_eq!(batch.base_of(by_id(1)), Some(&row(1, "one", 1)[..]));
    assert_eq!(batch.base_of(by_id(2)), Some(&row(2, "two", 2)[..]));
    assert_eq!(batch.base_of(by_id(3)), None);
    db.ack_push(&t, &batch, &applied(&[20, 21, 22]))
        .await
        .unwrap();
    assert!(bases(&a).is_empty(), "acknowledged rows are clean again");
    // Clean again: the next change captures a new base at the new version.
    a.execute("UPDATE items SET name = 'uno' WHERE id = 1", [])
        .unwrap();
    let b = bases(&a);
    assert_eq!(b.len(), 1);
    assert_eq!(&b[0].0, "[1]");
    assert!(b[0].1 >= 20, "{b:?}");
}

#[tokio::test]
async fn a_hard_delete_sends_its_base_with_the_tombstone() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_hard();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    db.apply_pull(&t, &page(vec![pulled(1, "one", 1, 7)]))
        .await
        .unwrap();
    let a = app(&path);
    a.execute("DELETE FROM items WHERE id = 1", []).unwrap();
    let batch = db.read_changes(&t, 10).await.unwrap().unwrap();
    assert_eq!(batch.changes.len(), 1);
    assert!(batch.changes[0].values.is_none());
    assert_eq!(batch.changes[0].base, Some(7));
    assert_eq!(batch.base_of(0), Some(&row(1, "one", 1)[..]));
    db.ack_push(&t, &batch, &applied(&[9])).await.unwrap();
    assert!(bases(&a).is_empty());
}

#[tokio::test]
async fn a_row_written_again_in_flight_takes_the_pushed_values_as_its_base() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_soft();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    db.apply_pull(
        &t,
        &page(vec![pulled(1, "one", 1, 7), pulled(2, "two", 2, 8)]),
    )
    .await
    .unwrap();
    let a = app(&path);
    a.execute_batch("UPDATE items SET qty = 10 WHERE id IN (1, 2)")
        .unwrap();
    let batch = db.read_changes(&t, 10).await.unwrap().unwrap();
    a.execute_batch("UPDATE items SET qty = 20 WHERE id IN (1, 2)")
        .unwrap();
    // Row 1 applied at 30; row 2 lost to a central row at 31.
    let result = PushResult {
        outcomes: vec![
            PushOutcome::Applied { version: 30 },
            PushOutcome::Superseded {
                row: Some(pulled(2, "central", 5, 31)),
            },
        ],
        conflicts: 1,
        replayed: 0,
    };
    db.ack_push(&t, &batch, &result).await.unwrap();
    // 1: the central holds the pushed row at 30, the next push builds on it;
    // 2: still dirty, with the base it started from (the conflict stands).
    assert_eq!(
        bases(&a),
        vec![
            ("[1]".to_string(), 30, "[1,\"one\",10]".to_string()),
            ("[2]".to_string(), 8, "[2,\"two\",2]".to_string()),
        ]
    );
    let next = db.read_changes(&t, 10).await.unwrap().unwrap();
    assert_eq!(next.changes[0].base, Some(30));
    assert_eq!(next.base_of(0), Some(&row(1, "one", 10)[..]));
    assert_eq!(next.changes[1].base, Some(8));
    assert_eq!(next.base_of(1), Some(&row(2, "two", 2)[..]));
}

#[tokio::test]
async fn a_pulled_row_drops_a_stale_base() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_soft();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    db.apply_pull(&t, &page(vec![pulled(1, "one", 1, 7)]))
        .await
        .unwrap();
    let a = app(&path);
    a.execute(
        "INSERT INTO es_base (tbl, key, cver, row) VALUES ('items', '[1]', 3, '[1,\"old\",0]')",
        [],
    )
    .unwrap();
    db.apply_pull(&t, &page(vec![pulled(1, "uno", 1, 9)]))
        .await
        .unwrap();
    assert!(bases(&a).is_empty());
}

#[tokio::test]
async fn bases_of_every_type_read_back_exactly() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = TableMapping {
        edge: "things".into(),
        central: QualifiedName::parse("things"),
        columns: vec![
            col("id", ColType::Int),
            col("f", ColType::Float),
            col("b", ColType::Bytes),
            col(
                "d",
                ColType::Decimal {
                    precision: Some(20),
                    scale: Some(10),
                },
            ),
            col("j", ColType::Json),
            col("s", text()),
            col("ok", ColType::Bool),
        ],
        key: vec![0],
        direction: Direction::Both,
        conflict: ConflictPolicy::FieldMerge,
        deletes: DeleteMode::Soft,
    };
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let values = vec![
        Value::Int(1),
        Value::Float(0.1 + 0.2),
        Value::Bytes(vec![0, 255, 10]),
        Value::Decimal("-12.3400000000".into()),
        Value::Json("{\"a\": [1, null]}".into()),
        Value::Text("null".into()),
        Value::Bool(true),
    ];
    let nulls = vec![
        Value::Int(2),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
    ];
    let mk = |v: &Vec<Value>, version| Change {
        key: vec![v[0].clone()],
        values: Some(v.clone()),
        deleted: false,
        version,
        base: None,
        hlc: 1,
    };
    db.apply_pull(&t, &page(vec![mk(&values, 5), mk(&nulls, 6)]))
        .await
        .unwrap();
    let a = app(&path);
    a.execute_batch("UPDATE things SET s = 'changed'").unwrap();
    let batch = db.read_changes(&t, 10).await.unwrap().unwrap();
    assert_eq!(batch.base_of(0), Some(&values[..]));
    assert_eq!(batch.base_of(1), Some(&nulls[..]));
    // The same through the path ack_push writes (Rust-side encoding).
    a.execute_batch("UPDATE things SET s = 'again'").unwrap();
    db.ack_push(&t, &batch, &applied(&[40, 41])).await.unwrap();
    let next = db.read_changes(&t, 10).await.unwrap().unwrap();
    let mut changed = values.clone();
    changed[5] = Value::Text("changed".into());
    assert_eq!(next.base_of(0), Some(&changed[..]));
}

#[tokio::test]
async fn deinit_removes_the_bases() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = both_soft();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    db.apply_pull(&t, &page(vec![pulled(1, "one", 1, 7)]))
        .await
        .unwrap();
    let a = app(&path);
    a.execute("UPDATE items SET qty = 2", []).unwrap();
    assert_eq!(bases(&a).len(), 1);
    // one table: its rows go
    let plan = db
        .plan_deinit(std::slice::from_ref(&t), false)
        .await
        .unwrap();
    assert!(
        plan.iter().any(|s| s.sql.contains("DELETE FROM es_base")),
        "{plan:?}"
    );
    db.execute(&plan).await.unwrap();
    assert!(bases(&a).is_empty());
    // everything: the table goes
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let plan = db
        .plan_deinit(std::slice::from_ref(&t), true)
        .await
        .unwrap();
    db.execute(&plan).await.unwrap();
    let left: i64 = a
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'es_base'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}
