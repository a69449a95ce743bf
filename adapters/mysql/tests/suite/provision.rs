//! init-sync / deinit-sync: idempotent plans, completion after a failure
//! (MySQL DDL is not transactional), triggers that capture application
//! writes, and a deinit that leaves the table as it was.

use edgesync_core::{Central, ConflictPolicy, DeleteMode, ErrorKind, QualifiedName, Value};

use crate::common::*;

async fn show_create(db: &TestDb, table: &str) -> String {
    let rows = db.dump(&format!("SHOW CREATE TABLE {table}")).await;
    rows.join("\n")
}

const COLUMNS_OF: &str = "SELECT GROUP_CONCAT(CONCAT_WS(' ', COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE,
                                   COALESCE(COLUMN_DEFAULT, '-'), COLLATION_NAME) ORDER BY ORDINAL_POSITION)
                            FROM information_schema.COLUMNS
                           WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'items'";

const ES_OBJECTS: &str = "SELECT (SELECT COUNT(*) FROM information_schema.TABLES
                                   WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'es\\_%')
                               + (SELECT COUNT(*) FROM information_schema.TRIGGERS
                                   WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE 'es\\_%')
                               + (SELECT COUNT(*) FROM information_schema.COLUMNS
                                   WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME LIKE 'es\\_%')
                               + (SELECT COUNT(*) FROM information_schema.STATISTICS
                                   WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME LIKE 'es\\_%')";

#[tokio::test]
async fn init_is_idempotent_and_deinit_restores_the_table_exactly() {
    let db = TestDb::new().await;
    db.exec(CREATE_ITEMS).await;
    db.exec("INSERT INTO items VALUES (1, 'a', 1, 1.10), (2, 'b', NULL, 0.00)")
        .await;
    let create_before = show_create(&db, "items").await;
    let columns_before: String = db.scalar(COLUMNS_OF).await;
    let rows_before = db.dump("SELECT * FROM items ORDER BY id").await;
    let m = items_mapping(ConflictPolicy::ServerWins, DeleteMode::Soft);
    let plan = db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan");
    assert!(plan
        .iter()
        .all(|s| !s.sql.is_empty() && s.purpose.contains("not transactional")));
    assert!(plan
        .iter()
        .any(|s| s.sql.contains("CREATE TABLE IF NOT EXISTS")));
    assert_eq!(
        plan.iter()
            .filter(|s| s.sql.starts_with("CREATE TRIGGER"))
            .count(),
        4
    );
    // The plan changed nothing.
    assert_eq!(db.scalar::<String>(COLUMNS_OF).await, columns_before);
    db.central.execute(&plan).await.expect("execute");
    assert!(db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan")
        .is_empty());
    // Existing rows wait for a version; the first pull gives distinct ones.
    assert_eq!(
        db.scalar::<i64>("SELECT COUNT(*) FROM items WHERE es_ver IS NULL")
            .await,
        2
    );
    let (all, _) = pull_pass(&db.central, "e", &m, None, 10).await;
    assert_eq!(all.len(), 2);
    assert_eq!(
        db.scalar::<i64>("SELECT COUNT(DISTINCT es_ver) FROM items")
            .await,
        2
    );

    // The delete mode lives in the adapter, not in the triggers.
    let mut hard = m.clone();
    hard.deletes = DeleteMode::Hard;
    assert!(db
        .central
        .plan_init(std::slice::from_ref(&hard))
        .await
        .expect("plan")
        .is_empty());

    // A trigger that is out of date is dropped and recreated.
    db.exec(&format!(
        "DROP TRIGGER es_bi_{0}_items;
         CREATE TRIGGER es_bi_{0}_items BEFORE INSERT ON items FOR EACH ROW BEGIN END",
        db.name
    ))
    .await;
    let plan = db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan");
    assert_eq!(plan.len(), 2, "{plan:#?}");
    assert!(plan[0].sql.starts_with("DROP TRIGGER") && plan[1].sql.starts_with("CREATE TRIGGER"));
    db.central.execute(&plan).await.expect("replace trigger");

    let plan = db
        .central
        .plan_deinit(std::slice::from_ref(&m), true)
        .await
        .expect("deinit");
    db.central.execute(&plan).await.expect("execute deinit");
    assert_eq!(db.scalar::<String>(COLUMNS_OF).await, columns_before);
    assert_eq!(show_create(&db, "items").await, create_before);
    assert_eq!(
        db.dump("SELECT * FROM items ORDER BY id").await,
        rows_before
    );
    assert_eq!(db.scalar::<i64>(ES_OBJECTS).await, 0);
    assert!(db
        .central
        .plan_deinit(std::slice::from_ref(&m), true)
        .await
        .expect("deinit")
        .is_empty());
}

#[tokio::test]
async fn a_failed_provisioning_is_completed_by_running_init_again() {
    let db = TestDb::new().await;
    db.exec("CREATE TABLE items (id bigint PRIMARY KEY, name varchar(10))")
        .await;
    let m = mapping(
        "items",
        &[("id", int()), ("name", text())],
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    let full = db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan");
    // A run that stops after seven statements...
    let mut partial = full[..7].to_vec();
    partial.push(edgesync_core::central::Statement {
        purpose: "a broken statement".into(),
        sql: "ALTER TABLE nope ADD COLUMN x int".into(),
    });
    let err = db.central.execute(&partial).await.expect_err("must fail");
    assert!(err.message().contains("a broken statement"), "{err}");
    assert!(
        err.message()
            .contains("7 statement(s) before it were applied"),
        "{err}"
    );
    assert!(err.message().contains("run the command again"), "{err}");
    // ...is completed by the next init-sync, which plans only the rest.
    let rest = db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan");
    assert_eq!(rest, full[7..].to_vec());
    db.central.execute(&rest).await.expect("complete");
    assert!(db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan")
        .is_empty());
}

#[tokio::test]
async fn missing_table_keys_and_lossy_key_collations_are_schema_errors() {
    let db = TestDb::new().await;
    let m = mapping(
        "nope",
        &[("id", int())],
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    let err = db.central.plan_init(&[m]).await.expect_err("no table");
    assert_eq!(err.kind(), ErrorKind::Schema);
    assert!(err.message().contains("nope"), "{err}");

    db.exec("CREATE TABLE loose (id bigint, name varchar(10))")
        .await;
    let m = mapping(
        "loose",
        &[("id", int()), ("name", text())],
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    let err = db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect_err("no key");
    assert_eq!(err.kind(), ErrorKind::Schema);
    assert!(
        err.message().contains("loose") && err.message().contains("(id)"),
        "{err}"
    );

    // Pushing to a table that was never provisioned names the fix.
    let err = db
        .central
        .push(
            "e",
            &m,
            &batch(vec![upsert(
                vec![Value::Int(1), Value::Text("a".into())],
                0,
                1,
                None,
            )]),
        )
        .await
        .expect_err("not provisioned");
    assert_eq!(err.kind(), ErrorKind::Schema);
    assert!(err.message().contains("init-sync"), "{err}");

    // A case-insensitive key would make 'a' and 'A' one central row.
    db.exec("CREATE TABLE codes (code varchar(10) COLLATE utf8mb4_general_ci PRIMARY KEY, n int)")
        .await;
    let m = mapping(
        "codes",
        &[("code", text()), ("n", int())],
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    let err = db.central.plan_init(&[m]).await.expect_err("ci key");
    assert_eq!(err.kind(), ErrorKind::Schema);
    assert!(
        err.message().contains("codes.code") && err.message().contains("utf8mb4_bin"),
        "{err}"
    );
}

#[tokio::test]
async fn table_names_are_exact_and_case_mismatches_name_the_candidates() {
    let db = TestDb::new().await;
    db.exec("CREATE TABLE Items (id bigint PRIMARY KEY)").await;
    let folds: i64 = db.scalar("SELECT @@lower_case_table_names").await;
    let got = db.central.describe(&QualifiedName::parse("items")).await;
    if folds == 0 {
        let err = got.expect_err("case mismatch");
        assert_eq!(err.kind(), ErrorKind::Schema);
        assert!(err.message().contains("did you mean"), "{err}");
        assert!(
            err.message().contains(&format!("{}.Items", db.name)),
            "{err}"
        );
        let t = db
            .central
            .describe(&QualifiedName::parse("Items"))
            .await
            .expect("describe")
            .expect("exact name");
        assert_eq!(t.name.name, "Items");
    } else {
        assert!(got.expect("folded").is_some());
    }
    assert!(db
        .central
        .describe(&QualifiedName::parse("nothing_like_it"))
        .await
        .expect("describe")
        .is_none());
}

#[tokio::test]
async fn triggers_mark_application_writes_changed_and_clear_forged_origins() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Soft).await;
    db.exec(
        "INSERT INTO items (id, name, price, es_ver, es_origin, es_oseq) VALUES (1, 'a', 1, 99, 'forged', 99)",
    )
    .await;
    // Pending: no version yet, and no claimed origin.
    assert_eq!(
        db.scalar::<i64>(
            "SELECT COUNT(*) FROM items WHERE es_ver IS NULL AND es_origin IS NULL AND es_oseq IS NULL AND es_hlc > 0"
        )
        .await,
        1
    );
    let hlc: i64 = db.scalar("SELECT es_hlc FROM items WHERE id = 1").await;
    let (got, t1) = pull_pass(&db.central, "e", &m, None, 10).await;
    let v1 = got[0].version;
    assert!(v1 > 0 && got[0].hlc == hlc);
    assert_eq!(
        db.scalar::<i64>("SELECT es_ver FROM items WHERE id = 1")
            .await,
        v1
    );
    db.exec("UPDATE items SET qty = 5 WHERE id = 1").await;
    let hlc2: i64 = db.scalar("SELECT es_hlc FROM items WHERE id = 1").await;
    assert!(hlc2 > hlc);
    let (got, _) = pull_pass(&db.central, "e", &m, Some(t1), 10).await;
    assert!(got[0].version > v1);
    assert_eq!(got[0].values.as_ref().unwrap()[2], Value::Int(5));
}

#[tokio::test]
async fn an_application_delete_writes_a_tombstone_on_any_table_and_reinsert_clears_it() {
    for mode in [DeleteMode::Soft, DeleteMode::Hard] {
        let db = TestDb::new().await;
        let _m = items(&db, ConflictPolicy::ServerWins, mode).await;
        db.exec("INSERT INTO items (id, name, price) VALUES (5, 'a', 1), (6, 'b', 2)")
            .await;
        db.exec("DELETE FROM items WHERE id = 5").await;
        assert_eq!(db.scalar::<i64>("SELECT COUNT(*) FROM items").await, 1);
        let tomb: String = db
            .scalar(
                "SELECT CONCAT_WS(' ', tbl, k, IFNULL(es_ver, 'pending'), IFNULL(es_origin, 'app'))
                   FROM es_tombstones",
            )
            .await;
        assert_eq!(tomb, format!("{}.items [\"5\"] pending app", db.name));
        // A key change is a delete of the old key.
        db.exec("UPDATE items SET id = 7 WHERE id = 6").await;
        assert_eq!(
            db.scalar::<i64>("SELECT COUNT(*) FROM es_tombstones").await,
            2
        );
        // A re-insert leaves the old tombstone in place (no trigger touches
        // es_tombstones on INSERT: its gap locks deadlocked independent
        // application transactions); pulls skip a tombstone whose key has a
        // live row (pull.rs), which `tests/replay.rs` and the conflict suite
        // exercise end to end.
        db.exec("INSERT INTO items (id, name, price) VALUES (5, 'again', 1)")
            .await;
        assert_eq!(
            db.scalar::<String>("SELECT GROUP_CONCAT(k ORDER BY k) FROM es_tombstones")
                .await,
            "[\"5\"],[\"6\"]"
        );
    }
}
