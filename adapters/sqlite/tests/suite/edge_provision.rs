//! init-sync / deinit-sync on edge files.

use edgesync_core::{ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, ErrorKind};
use edgesync_core::{QualifiedName, TableMapping};
use edgesync_sqlite::EdgeDb;

use super::{app, both_hard, both_soft, col, dec, dump, edge, items, text, Dir};

fn typed() -> TableMapping {
    TableMapping {
        edge: "typed".into(),
        central: QualifiedName::parse("sales.typed"),
        columns: vec![
            ColumnMap {
                nullable: false,
                ..col("id", ColType::Uuid)
            },
            col("price", dec(12, 2)),
            ColumnMap {
                nullable: false,
                ..col("label", ColType::Text { max_len: Some(40) })
            },
            col("at", ColType::TimestampTz),
            col("flag", ColType::Bool),
        ],
        key: vec![0],
        direction: Direction::Both,
        conflict: ConflictPolicy::ServerWins,
        deletes: DeleteMode::Hard,
    }
}

#[tokio::test]
async fn init_creates_a_missing_table_and_is_idempotent() {
    let dir = Dir::new();
    let db = EdgeDb::open(&dir.file("e.db")).await.unwrap();
    let plan = db.plan_init("n1", &[typed()]).await.unwrap();
    assert!(plan
        .iter()
        .all(|s| !s.purpose.is_empty() && !s.sql.is_empty()));
    assert!(
        plan.iter()
            .any(|s| s.sql.starts_with("CREATE TABLE \"typed\"")),
        "{plan:#?}"
    );
    db.execute(&plan).await.unwrap();
    assert_eq!(db.node().await.unwrap().as_deref(), Some("n1"));
    assert_eq!(db.plan_init("n1", &[typed()]).await.unwrap(), vec![]);

    let t = db.describe("typed").await.unwrap().unwrap();
    assert_eq!(t.primary_key, vec!["id"]);
    let tys: Vec<_> = t
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.ty.clone(), c.nullable))
        .collect();
    assert_eq!(
        tys,
        vec![
            ("id", Ok(ColType::Uuid), false),
            ("price", Ok(dec(12, 2)), true),
            ("label", Ok(ColType::Text { max_len: Some(40) }), false),
            ("at", Ok(ColType::TimestampTz), true),
            ("flag", Ok(ColType::Bool), true),
        ]
    );
    // The DDL a DBA sees uses the TEXT-affinity names.
    let sql: String = app(&dir.file("e.db"))
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'typed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        sql.contains("DECIMAL_TEXT(12,2)") && sql.contains("TIMESTAMPTZ_TEXT"),
        "{sql}"
    );
}

#[tokio::test]
async fn another_node_id_is_refused_naming_both() {
    let dir = Dir::new();
    let db = edge(&dir.file("e.db"), "store-1", &[both_soft()]).await;
    let err = db.plan_init("store-2", &[both_soft()]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message().contains("store-1") && err.message().contains("store-2"),
        "{err}"
    );
}

#[tokio::test]
async fn pre_existing_rows_become_pending_with_unique_sequences() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let a = app(&path);
    a.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);
         INSERT INTO items (id, name, qty) VALUES (3, 'c', 1), (1, 'a', 1), (2, 'b', 1);",
    )
    .unwrap();
    let t = both_soft();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let vers: Vec<i64> = a
        .prepare("SELECT es_ver FROM items ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(vers, vec![1, 2, 3]);
    let seq: i64 = a
        .query_row("SELECT seq FROM es_ctl", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seq, 3);
    assert_eq!(db.status(&t).await.unwrap().pending, 3);
    let batch = db.read_changes(&t, 2).await.unwrap().unwrap();
    assert_eq!(batch.hi, 2);
    assert_eq!(batch.changes.len(), 2);
    assert!(batch.changes.iter().all(|c| c.base.is_none() && !c.deleted));
    // The next local write continues the sequence.
    a.execute("INSERT INTO items (id, name, qty) VALUES (4, 'd', 1)", [])
        .unwrap();
    let v: i64 = a
        .query_row("SELECT es_ver FROM items WHERE id = 4", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 4);
    assert_eq!(db.plan_init("n", &[t]).await.unwrap(), vec![]);
}

#[tokio::test]
async fn deinit_leaves_the_table_exactly_as_before_init() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let a = app(&path);
    a.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT 'x', qty INTEGER,
                             note TEXT);
         CREATE INDEX items_name ON items (name);
         INSERT INTO items VALUES (1, 'a', 1, 'kept'), (2, 'b', NULL, NULL);",
    )
    .unwrap();
    let info = "SELECT * FROM pragma_table_info('items')";
    let rows = "SELECT * FROM items ORDER BY id";
    let (info_before, rows_before) = (dump(&a, info), dump(&a, rows));
    let t = both_hard();
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    a.execute("UPDATE items SET qty = 5 WHERE id = 2", [])
        .unwrap();
    a.execute("DELETE FROM items WHERE id = 2", []).unwrap();
    a.execute(
        "INSERT INTO items (id, name, qty, note) VALUES (2, 'b', NULL, NULL)",
        [],
    )
    .unwrap();

    let plan = db
        .plan_deinit(std::slice::from_ref(&t), true)
        .await
        .unwrap();
    db.execute(&plan).await.unwrap();
    assert_eq!(dump(&a, info), info_before);
    assert_eq!(dump(&a, rows), rows_before);
    let left: i64 = a
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'es\\_%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(db.node().await.unwrap(), None);
    assert_eq!(db.plan_deinit(&[t], true).await.unwrap(), vec![]);
    // The application writes as before.
    a.execute("INSERT INTO items (id) VALUES (9)", []).unwrap();
}

#[tokio::test]
async fn deinit_of_one_table_keeps_the_metadata_and_other_tables() {
    let dir = Dir::new();
    let mut other = both_soft();
    other.edge = "other".into();
    let t = both_hard();
    let db = edge(&dir.file("e.db"), "n", &[t.clone(), other.clone()]).await;
    let a = app(&dir.file("e.db"));
    a.execute("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", [])
        .unwrap();
    a.execute("DELETE FROM items", []).unwrap();
    let plan = db
        .plan_deinit(std::slice::from_ref(&t), false)
        .await
        .unwrap();
    assert!(
        plan.iter()
            .any(|s| s.sql.contains("DELETE FROM es_tombstones")),
        "{plan:#?}"
    );
    db.execute(&plan).await.unwrap();
    assert_eq!(
        db.plan_deinit(std::slice::from_ref(&t), false)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(db.node().await.unwrap().as_deref(), Some("n"));
    // The other table is still captured.
    a.execute("INSERT INTO other (id, name, qty) VALUES (1, 'a', 1)", [])
        .unwrap();
    assert_eq!(db.status(&other).await.unwrap().pending, 1);
    // And init puts the first one back.
    let plan = db.plan_init("n", std::slice::from_ref(&t)).await.unwrap();
    assert!(!plan.is_empty());
    db.execute(&plan).await.unwrap();
    assert_eq!(db.plan_init("n", &[t, other]).await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_changed_delete_mode_replaces_only_the_delete_trigger() {
    let dir = Dir::new();
    let db = edge(&dir.file("e.db"), "n", &[both_soft()]).await;
    let plan = db.plan_init("n", &[both_hard()]).await.unwrap();
    assert_eq!(plan.len(), 2, "{plan:#?}");
    assert!(plan[0].sql.starts_with("DROP TRIGGER"));
    assert!(plan[1].sql.contains("AFTER DELETE"));
    db.execute(&plan).await.unwrap();
    assert_eq!(db.plan_init("n", &[both_hard()]).await.unwrap(), vec![]);
    let pull = items(
        Direction::Pull,
        ConflictPolicy::ServerWins,
        DeleteMode::Hard,
    );
    let plan = db
        .plan_init("n", std::slice::from_ref(&pull))
        .await
        .unwrap();
    db.execute(&plan).await.unwrap();
    let n: i64 = app(&dir.file("e.db"))
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'items'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn a_pull_only_table_refuses_application_writes_naming_the_table() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let t = items(
        Direction::Pull,
        ConflictPolicy::ServerWins,
        DeleteMode::Hard,
    );
    let db = edge(&path, "n", std::slice::from_ref(&t)).await;
    let a = app(&path);
    // edgesync's own writes pass.
    let page = edgesync_core::PullPage {
        changes: vec![edgesync_core::Change {
            key: vec![edgesync_core::Value::Int(1)],
            values: Some(super::row(1, "a", 1)),
            deleted: false,
            version: 7,
            base: None,
            hlc: 1,
        }],
        token: "{\"v\":7}".into(),
        done: true,
        fingerprint: None,
    };
    assert_eq!(db.apply_pull(&t, &page).await.unwrap().applied, 1);
    for sql in [
        "INSERT INTO items (id, name, qty) VALUES (2, 'b', 1)",
        "UPDATE items SET qty = 2",
        "DELETE FROM items",
    ] {
        let err = a.execute(sql, []).unwrap_err();
        assert!(
            err.to_string()
                .contains("edgesync: table items is read-only on this edge (direction = pull)"),
            "{sql}: {err}"
        );
    }
    assert_eq!(
        dump(&a, "SELECT id, name, qty FROM items"),
        dump(&a, "SELECT 1, 'a', 1")
    );
    assert_eq!(db.status(&t).await.unwrap().pending, 0);
}

#[tokio::test]
async fn a_missing_mapped_column_is_a_schema_error() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    app(&path)
        .execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        .unwrap();
    let db = EdgeDb::open(&path).await.unwrap();
    let err = db.plan_init("n", &[both_soft()]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Schema);
    assert!(err.message().contains("qty"), "{err}");
    let _ = text();
}

#[tokio::test]
async fn describe_refuses_numeric_affinity_decimals() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    app(&path)
        .execute_batch("CREATE TABLE money (id INTEGER PRIMARY KEY, amount DECIMAL(12,2))")
        .unwrap();
    let db = EdgeDb::open(&path).await.unwrap();
    let t = db.describe("MONEY").await.unwrap().unwrap();
    let err = t.column("amount").unwrap().ty.clone().unwrap_err();
    assert!(err.contains("DECIMAL_TEXT(12,2)"), "{err}");
}

#[tokio::test]
async fn a_failing_script_changes_nothing() {
    let dir = Dir::new();
    let path = dir.file("e.db");
    let db = EdgeDb::open(&path).await.unwrap();
    let mut plan = db.plan_init("n", &[both_soft()]).await.unwrap();
    plan.insert(
        plan.len() / 2,
        edgesync_core::central::Statement {
            purpose: "a broken statement".into(),
            sql: "CREATE TABLE oops (".into(),
        },
    );
    let err = db.execute(&plan).await.unwrap_err();
    assert!(err.message().contains("a broken statement"), "{err}");
    let objects: i64 = app(&path)
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(objects, 0);
    assert_eq!(db.node().await.unwrap(), None);
}
