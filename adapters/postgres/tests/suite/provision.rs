//! init-sync / deinit-sync: idempotent plans, triggers that capture
//! application writes, and a deinit that leaves the table as it was.

use edgesync_core::{Central, ConflictPolicy, DeleteMode, ErrorKind, PushOutcome, Value};

use crate::common::*;

const COLUMNS_OF: &str = "SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable
                                   || ' ' || coalesce(column_default, '-'), ', ' ORDER BY ordinal_position)
                            FROM information_schema.columns WHERE table_name = 'items'";

#[tokio::test]
async fn init_is_idempotent_and_deinit_restores_the_table_exactly() {
    let db = TestDb::new().await;
    db.exec(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, qty int,
                             price numeric(12,2) CHECK (price >= 0));
         INSERT INTO items VALUES (1, 'a', 1, 1.10), (2, 'b', NULL, 0.00);",
    )
    .await;
    let columns_before: String = db.scalar(COLUMNS_OF).await;
    let rows_before = db.dump("items").await;
    let m = mapping(
        "items",
        &[
            ("id", int()),
            ("name", text()),
            ("qty", int()),
            ("price", dec(12, 2)),
        ],
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    let plan = db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan");
    assert!(plan
        .iter()
        .all(|s| !s.purpose.is_empty() && !s.sql.is_empty()));
    assert!(plan.iter().any(|s| s.sql.contains("CREATE SEQUENCE")));
    // The plan changed nothing.
    assert_eq!(db.scalar::<String>(COLUMNS_OF).await, columns_before);
    db.central.execute(&plan).await.expect("execute");
    assert!(db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan")
        .is_empty());
    // Existing rows got distinct versions.
    assert_eq!(
        db.scalar::<i64>("SELECT count(DISTINCT es_ver) FROM items")
            .await,
        2
    );

    // Switching the delete mode replaces only the trigger function.
    let mut hard = m.clone();
    hard.deletes = DeleteMode::Hard;
    let plan = db
        .central
        .plan_init(std::slice::from_ref(&hard))
        .await
        .expect("plan");
    assert_eq!(plan.len(), 1, "{plan:#?}");
    assert!(plan[0].sql.contains("CREATE OR REPLACE FUNCTION"));

    let plan = db
        .central
        .plan_deinit(std::slice::from_ref(&m), true)
        .await
        .expect("deinit");
    db.central.execute(&plan).await.expect("execute deinit");
    assert_eq!(db.scalar::<String>(COLUMNS_OF).await, columns_before);
    assert_eq!(db.dump("items").await, rows_before);
    assert_eq!(
        db.scalar::<i64>(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'es\\_%'
              UNION ALL SELECT count(*) FROM pg_proc WHERE proname LIKE 'es\\_%'
              UNION ALL SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'es\\_%'
              ORDER BY 1 DESC LIMIT 1"
        )
        .await,
        0
    );
    assert!(db
        .central
        .plan_deinit(std::slice::from_ref(&m), true)
        .await
        .expect("deinit")
        .is_empty());
}

#[tokio::test]
async fn failed_provisioning_changes_nothing() {
    let db = TestDb::new().await;
    db.exec("CREATE TABLE items (id bigint PRIMARY KEY, name text)")
        .await;
    let m = mapping(
        "items",
        &[("id", int()), ("name", text())],
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    let mut plan = db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan");
    plan.push(edgesync_core::central::Statement {
        purpose: "a broken statement".into(),
        sql: "ALTER TABLE nope ADD COLUMN x int".into(),
    });
    let err = db.central.execute(&plan).await.expect_err("must fail");
    assert!(err.message().contains("a broken statement"), "{err}");
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM pg_class WHERE relname LIKE 'es\\_%'")
            .await,
        0
    );
    assert_eq!(
        db.central
            .plan_init(std::slice::from_ref(&m))
            .await
            .expect("plan")
            .len(),
        plan.len() - 1
    );
}

#[tokio::test]
async fn missing_table_and_missing_unique_key_are_schema_errors() {
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

    db.exec("CREATE TABLE loose (id bigint, name text)").await;
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
}

#[tokio::test]
async fn triggers_stamp_application_writes_and_soft_delete_keeps_the_row() {
    let db = TestDb::new().await;
    let _m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Soft).await;
    db.exec(
        "INSERT INTO items (id, name, price, es_origin, es_oseq) VALUES (1, 'a', 1, 'forged', 99)",
    )
    .await;
    let (v1, txid, hlc): (i64, i64, i64) =
        sqlx::query_as("SELECT es_ver, es_txid, es_hlc FROM items WHERE id = 1")
            .fetch_one(db.pool())
            .await
            .expect("row");
    assert!(v1 > 0 && txid > 0 && hlc > 0);
    // An application cannot claim to be a node.
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM items WHERE es_origin IS NULL AND es_oseq IS NULL")
            .await,
        1
    );
    db.exec("UPDATE items SET qty = 5 WHERE id = 1").await;
    let (v2, hlc2): (i64, i64) = sqlx::query_as("SELECT es_ver, es_hlc FROM items WHERE id = 1")
        .fetch_one(db.pool())
        .await
        .expect("row");
    assert!(v2 > v1 && hlc2 > hlc);

    db.exec("DELETE FROM items WHERE id = 1").await;
    let (v3, deleted): (i64, bool) =
        sqlx::query_as("SELECT es_ver, es_deleted FROM items WHERE id = 1")
            .fetch_one(db.pool())
            .await
            .expect("soft-deleted row is kept");
    assert!(deleted && v3 > v2);
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM es_tombstones").await,
        0
    );
}

#[tokio::test]
async fn hard_delete_writes_a_tombstone_and_reinsert_clears_it() {
    let db = TestDb::new().await;
    let _m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec("INSERT INTO items (id, name, price) VALUES (5, 'a', 1), (6, 'b', 2)")
        .await;
    db.exec("DELETE FROM items WHERE id = 5").await;
    assert_eq!(db.scalar::<i64>("SELECT count(*) FROM items").await, 1);
    let (tbl, key, origin): (String, String, Option<String>) =
        sqlx::query_as("SELECT tbl, key::text, es_origin FROM es_tombstones")
            .fetch_one(db.pool())
            .await
            .expect("tombstone");
    assert_eq!(
        (tbl.as_str(), key.as_str(), origin),
        ("public.items", "[\"5\"]", None)
    );
    // A key change is a delete of the old key.
    db.exec("UPDATE items SET id = 7 WHERE id = 6").await;
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM es_tombstones").await,
        2
    );
    db.exec("INSERT INTO items (id, name, price) VALUES (5, 'again', 1)")
        .await;
    assert_eq!(
        db.scalar::<String>("SELECT string_agg(key::text, ',') FROM es_tombstones")
            .await,
        "[\"6\"]"
    );
}

/// Push the same three kinds of write, each checked the same way: an
/// update gets a new version and the transaction id, an insert over a
/// tombstone clears it, a nested write (ON DELETE SET NULL) is stamped.
async fn push_stamps(db: &TestDb, m: &edgesync_core::TableMapping, id: i64, oseq: i64) {
    let txid_of = |id: i64| {
        sqlx::query_as::<_, (i64, i64)>("SELECT es_ver, es_txid FROM items WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
    };
    // The application writes the row, its child and a tombstone for id + 1.
    db.exec(&format!(
        "INSERT INTO items (id, name, price) VALUES ({id}, 'a', 1), ({n}, 'b', 1);
         INSERT INTO kids VALUES ({id}, {id});
         DELETE FROM items WHERE id = {n};",
        n = id + 1
    ))
    .await;
    let (v0, _) = txid_of(id).await.expect("row");
    let kid_v0: i64 = db
        .scalar(&format!("SELECT es_ver FROM kids WHERE id = {id}"))
        .await;
    // Re-inserted by an edge that saw the delete (based on the tombstone).
    let tomb: i64 = db
        .scalar(&format!(
            "SELECT es_ver FROM es_tombstones WHERE key = '[\"{}\"]'",
            id + 1
        ))
        .await;
    let r = db
        .central
        .push(
            "edge-a",
            m,
            &batch(vec![
                upsert(item(id, "pushed", 2, "2.00"), 0, oseq, Some(v0)),
                upsert(item(id + 1, "back", 3, "3.00"), 0, oseq + 1, Some(tomb)),
            ]),
        )
        .await
        .expect("push");
    let (v1, txid1) = txid_of(id).await.expect("row");
    let (v2, txid2) = txid_of(id + 1).await.expect("row");
    assert!(v1 > v0 && v2 > v1, "{v0} {v1} {v2}");
    assert_eq!(txid1, txid2);
    assert!(matches!(r.outcomes[0], PushOutcome::Applied { version } if version == v1));
    assert!(matches!(r.outcomes[1], PushOutcome::Applied { version } if version == v2));
    assert_eq!(
        db.scalar::<i64>(&format!(
            "SELECT count(*) FROM es_tombstones WHERE key = '[\"{}\"]'",
            id + 1
        ))
        .await,
        0
    );
    // A pushed delete of the parent: the foreign key nulls the child's
    // reference in a nested write, which the child's triggers still stamp.
    db.central
        .push(
            "edge-a",
            m,
            &batch(vec![delete(Value::Int(id), None, oseq + 2, Some(v1))]),
        )
        .await
        .expect("push delete");
    let (kid_v1, parent): (i64, Option<i64>) =
        sqlx::query_as("SELECT es_ver, parent FROM kids WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await
            .expect("kid");
    assert!(kid_v1 > kid_v0 && parent.is_none());
}

#[tokio::test]
async fn triggers_of_an_older_edgesync_are_replaced_and_pushes_stamp_either_way() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec(
        "CREATE TABLE kids (id bigint PRIMARY KEY,
                            parent bigint REFERENCES items (id) ON DELETE SET NULL)",
    )
    .await;
    let kids = mapping(
        "kids",
        &[("id", int()), ("parent", int())],
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Hard,
    );
    db.init(std::slice::from_ref(&kids)).await;
    let guarded = "SELECT count(*) FROM pg_trigger
                    WHERE tgname IN ('es_before', 'es_after')
                      AND pg_get_triggerdef(oid) LIKE '%pg_trigger_depth()%'";
    assert_eq!(db.scalar::<i64>(guarded).await, 4);
    push_stamps(&db, &m, 10, 1).await;

    // The triggers as an older edgesync made them: no WHEN clause.
    db.exec(
        "DO $d$ DECLARE r record; BEGIN
           FOR r IN SELECT tgname, tgrelid::regclass AS tbl, tgfoid::regproc AS fn,
                           CASE WHEN tgname = 'es_before' THEN 'BEFORE' ELSE 'AFTER' END AS at
                      FROM pg_trigger WHERE tgname IN ('es_before', 'es_after') LOOP
             EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.tbl);
             EXECUTE format('CREATE TRIGGER %I %s INSERT OR UPDATE OR DELETE ON %s
                             FOR EACH ROW EXECUTE FUNCTION %s()', r.tgname, r.at, r.tbl, r.fn);
           END LOOP;
         END $d$",
    )
    .await;
    assert_eq!(db.scalar::<i64>(guarded).await, 0);
    // They still fire on a push, which comes out the same.
    push_stamps(&db, &m, 20, 4).await;

    // init-sync replaces them (dropped and re-created), and is then done.
    let both = [m.clone(), kids.clone()];
    let plan = db.central.plan_init(&both).await.expect("plan");
    assert_eq!(plan.len(), 8, "{plan:#?}");
    db.central.execute(&plan).await.expect("execute");
    assert!(db.central.plan_init(&both).await.expect("plan").is_empty());
    assert_eq!(db.scalar::<i64>(guarded).await, 4);
    push_stamps(&db, &m, 30, 7).await;
}

/// `indexdef` of the table's edgesync indexes, by name.
async fn es_indexes(db: &TestDb, table: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes
          WHERE tablename = $1 AND indexname LIKE 'es\\_%' ORDER BY 1",
    )
    .bind(table)
    .fetch_all(db.pool())
    .await
    .expect("indexes")
}

#[tokio::test]
async fn the_es_txid_index_of_an_older_edgesync_is_replaced_by_the_pull_index() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let current = vec![(
        "es_pull_public_items".to_string(),
        "CREATE INDEX es_pull_public_items ON public.items USING btree (es_txid, id)".to_string(),
    )];
    assert_eq!(es_indexes(&db, "items").await, current);

    // The table as an older edgesync provisioned it: (es_txid) only.
    db.exec(
        "DROP INDEX es_pull_public_items;
         CREATE INDEX es_txid_public_items ON items (es_txid);
         INSERT INTO items (id, name, price) VALUES (1, 'a', 1)",
    )
    .await;
    let plan = db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan");
    assert_eq!(plan.len(), 2, "{plan:#?}");
    // The new index first: the table is never without one.
    assert!(
        plan[0]
            .sql
            .starts_with("CREATE INDEX IF NOT EXISTS \"es_pull_public_items\"")
            && plan[0].sql.contains("(es_txid, \"id\")"),
        "{plan:#?}"
    );
    assert_eq!(
        plan[1].sql,
        "DROP INDEX IF EXISTS \"public\".\"es_txid_public_items\";"
    );
    assert!(plan.iter().all(|s| !s.purpose.is_empty()));
    db.central.execute(&plan).await.expect("execute");
    assert_eq!(es_indexes(&db, "items").await, current);
    assert!(db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan")
        .is_empty());

    // deinit drops whichever of the two it finds.
    db.exec("CREATE INDEX es_txid_public_items ON items (es_txid)")
        .await;
    let plan = db
        .central
        .plan_deinit(std::slice::from_ref(&m), true)
        .await
        .expect("deinit");
    let drops: Vec<&str> = plan
        .iter()
        .filter(|s| s.sql.starts_with("DROP INDEX"))
        .map(|s| s.sql.as_str())
        .collect();
    assert_eq!(drops.len(), 2, "{plan:#?}");
    db.central.execute(&plan).await.expect("execute deinit");
    assert!(es_indexes(&db, "items").await.is_empty());
    assert!(db
        .central
        .plan_deinit(std::slice::from_ref(&m), true)
        .await
        .expect("deinit")
        .is_empty());
}

#[tokio::test]
async fn the_pull_index_follows_a_composite_key_in_its_order() {
    let db = TestDb::new().await;
    db.exec("CREATE TABLE k (a text, b bigint, \"C d\" date, v text, PRIMARY KEY (b, a, \"C d\"))")
        .await;
    // The mapping's key order, not the constraint's, is the pull order.
    let m = mapping(
        "k",
        &[
            ("a", text()),
            ("b", int()),
            ("C d", edgesync_core::ColType::Date),
            ("v", text()),
        ],
        &[2, 0, 1],
        ConflictPolicy::ServerWins,
        DeleteMode::Hard,
    );
    db.init(std::slice::from_ref(&m)).await;
    assert_eq!(
        es_indexes(&db, "k").await,
        vec![(
            "es_pull_public_k".to_string(),
            "CREATE INDEX es_pull_public_k ON public.k USING btree (es_txid, \"C d\", a, b)"
                .to_string()
        )]
    );
}

/// The shared tombstone index of an older edgesync, `(tbl, es_txid)`, gives
/// way to `es_tombstones_pull` on `(tbl, es_txid, key)` (pulls page
/// tombstones in that order); a second init-sync plans nothing.
#[tokio::test]
async fn the_tombstone_index_of_an_older_edgesync_is_replaced_by_the_pull_index() {
    let db = TestDb::new().await;
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let tomb_indexes = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'es_tombstones'
              AND indexname <> 'es_tombstones_pkey' ORDER BY indexname",
        )
        .fetch_all(db.pool())
        .await
        .expect("indexes")
    };
    let current = vec![
        "CREATE INDEX es_tombstones_pull ON public.es_tombstones USING btree (tbl, es_txid, key)"
            .to_string(),
    ];
    assert_eq!(tomb_indexes().await, current);

    db.exec(
        "DROP INDEX es_tombstones_pull;
         CREATE INDEX es_tombstones_txid ON es_tombstones (tbl, es_txid)",
    )
    .await;
    let plan = db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan");
    let sql: Vec<&str> = plan.iter().map(|s| s.sql.as_str()).collect();
    assert_eq!(plan.len(), 2, "{plan:#?}");
    assert!(
        sql[0].contains("CREATE INDEX IF NOT EXISTS es_tombstones_pull"),
        "{sql:#?}"
    );
    assert_eq!(
        sql[1],
        "DROP INDEX IF EXISTS \"public\".es_tombstones_txid;"
    );
    db.central.execute(&plan).await.expect("execute");
    assert_eq!(tomb_indexes().await, current);
    assert!(db
        .central
        .plan_init(std::slice::from_ref(&m))
        .await
        .expect("plan")
        .is_empty());
}
