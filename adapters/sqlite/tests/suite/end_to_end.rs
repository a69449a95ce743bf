//! Two edges and a SQLite central, synced the way the engine does it.

use edgesync_core::central::Central;
use edgesync_core::{
    value, ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, QualifiedName, TableMapping,
    Value,
};
use rusqlite::Connection;

use super::{app, both_hard, central, col, dec, dump, edge, sync, text, Dir};

const ITEMS: &str = "SELECT id, name, qty FROM items ORDER BY id";

#[tokio::test]
async fn two_offline_edges_converge_through_the_central() {
    let dir = Dir::new();
    let t = items_lww();
    let c = central(&dir.file("c.db"), std::slice::from_ref(&t)).await;
    let a_db = edge(&dir.file("a.db"), "a", std::slice::from_ref(&t)).await;
    let b_db = edge(&dir.file("b.db"), "b", std::slice::from_ref(&t)).await;
    let (a, b) = (app(&dir.file("a.db")), app(&dir.file("b.db")));
    let cen = app(&dir.file("c.db"));

    // Offline: both edges write, the central application too.
    a.execute_batch("INSERT INTO items (id, name, qty) VALUES (1, 'from a', 1), (2, 'shared', 2)")
        .unwrap();
    b.execute_batch("INSERT INTO items (id, name, qty) VALUES (3, 'from b', 3)")
        .unwrap();
    cen.execute_batch("INSERT INTO items (id, name, qty) VALUES (4, 'from central', 4)")
        .unwrap();
    sync(&a_db, &c, "a", &t).await;
    sync(&b_db, &c, "b", &t).await;
    sync(&a_db, &c, "a", &t).await;
    assert_eq!(dump(&a, ITEMS), dump(&cen, ITEMS));
    assert_eq!(dump(&b, ITEMS), dump(&cen, ITEMS));
    assert_eq!(dump(&cen, ITEMS).len(), 4);

    // Offline again: both edit row 2 (b later), a deletes row 3, b
    // deletes-and-reinserts row 1.
    a.execute("UPDATE items SET name = 'a edit' WHERE id = 2", [])
        .unwrap();
    a.execute("DELETE FROM items WHERE id = 3", []).unwrap();
    b.execute("UPDATE es_ctl SET clock_skew_ms = 60000", [])
        .unwrap();
    b.execute("UPDATE items SET name = 'b edit' WHERE id = 2", [])
        .unwrap();
    b.execute("DELETE FROM items WHERE id = 1", []).unwrap();
    b.execute(
        "INSERT INTO items (id, name, qty) VALUES (1, 'b re-insert', 10)",
        [],
    )
    .unwrap();
    sync(&a_db, &c, "a", &t).await;
    sync(&b_db, &c, "b", &t).await;
    sync(&a_db, &c, "a", &t).await;
    sync(&b_db, &c, "b", &t).await;
    let expect = dump(&cen, "SELECT 1, 'b re-insert', 10 UNION ALL SELECT 2, 'b edit', 2 UNION ALL SELECT 4, 'from central', 4");
    assert_eq!(dump(&cen, ITEMS), expect);
    assert_eq!(dump(&a, ITEMS), expect);
    assert_eq!(dump(&b, ITEMS), expect);
    let log = c.conflicts(true, 10).await.unwrap();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0].strategy, ConflictPolicy::LastWriteWins);
    for db in [&a_db, &b_db] {
        let st = db.status(&t).await.unwrap();
        assert_eq!(st.pending, 0);
        assert!(st.pull_complete);
    }
    // Nothing left to move: a further cycle changes nothing anywhere.
    let before = (
        dump(&a, "SELECT * FROM items"),
        dump(&cen, "SELECT * FROM items"),
    );
    sync(&a_db, &c, "a", &t).await;
    assert_eq!(
        before,
        (
            dump(&a, "SELECT * FROM items"),
            dump(&cen, "SELECT * FROM items")
        )
    );
}

fn items_lww() -> TableMapping {
    TableMapping {
        conflict: ConflictPolicy::LastWriteWins,
        ..both_hard()
    }
}

fn typed() -> TableMapping {
    let nn = |c: ColumnMap| ColumnMap {
        nullable: false,
        ..c
    };
    TableMapping {
        edge: "typed".into(),
        central: QualifiedName::parse("typed"),
        columns: vec![
            nn(col("id", ColType::Int)),
            col("price", dec(38, 10)),
            col("label", text()),
            col("data", ColType::Bytes),
            col("flag", ColType::Bool),
            col("ratio", ColType::Float),
            col("day", ColType::Date),
            col("at", ColType::Time),
            col("stamp", ColType::Timestamp),
            col("stamptz", ColType::TimestampTz),
            col("uid", ColType::Uuid),
            col("doc", ColType::Json),
        ],
        key: vec![0],
        direction: Direction::Both,
        conflict: ConflictPolicy::ServerWins,
        deletes: DeleteMode::Soft,
    }
}

fn typed_rows() -> Vec<Vec<Value>> {
    let ts = |s| Value::Timestamp(value::parse_timestamp(s).unwrap());
    let tz = |s| Value::TimestampTz(value::parse_timestamptz(s).unwrap());
    vec![
        vec![
            Value::Int(i64::MIN),
            Value::Decimal("-1234567890123456789012345678.1234567890".into()),
            Value::Text("emoji 🦀👩‍👩‍👧 and 'quotes'".into()),
            Value::Bytes(vec![0, 1, 254, 255]),
            Value::Bool(true),
            Value::Float(0.1),
            Value::Date(chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap()),
            Value::Time(chrono::NaiveTime::from_hms_micro_opt(23, 59, 59, 123_456).unwrap()),
            ts("1969-12-31 23:59:59.999999"),
            tz("2099-06-30 12:00:00.000001-03:30"),
            Value::Uuid(uuid::Uuid::from_u128(
                0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
            )),
            Value::Json(r#"{"n": 1.50, "s": "null", "z": null}"#.into()),
        ],
        vec![
            Value::Int(i64::MAX),
            Value::Decimal("0.0000000000".into()),
            Value::Text(String::new()),
            Value::Bytes(vec![]),
            Value::Bool(false),
            Value::Float(-1.5e-300),
            Value::Date(chrono::NaiveDate::from_ymd_opt(2100, 12, 31).unwrap()),
            Value::Time(chrono::NaiveTime::from_hms_opt(0, 0, 0).unwrap()),
            ts("2038-01-19 03:14:08"),
            tz("1970-01-01 00:00:00Z"),
            Value::Null,
            Value::Json("[]".into()),
        ],
        vec![
            Value::Int(0),
            Value::Null,
            Value::Text("null".into()),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ],
    ]
}

#[tokio::test]
async fn every_type_survives_edge_to_central_to_edge() {
    let dir = Dir::new();
    let t = typed();
    // The central table, created by its "DBA" with the same TEXT-affinity types.
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c.central,
                edgesync_sqlite::types::declared_type(c.ty)
            )
        })
        .collect();
    Connection::open(dir.file("c.db"))
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE typed ({}, PRIMARY KEY (id))",
            cols.join(", ")
        ))
        .unwrap();
    let c = edgesync_sqlite::SqliteCentral::open(&dir.file("c.db"))
        .await
        .unwrap();
    c.execute(&c.plan_init(std::slice::from_ref(&t)).await.unwrap())
        .await
        .unwrap();
    let a_db = edge(&dir.file("a.db"), "a", std::slice::from_ref(&t)).await;
    let b_db = edge(&dir.file("b.db"), "b", std::slice::from_ref(&t)).await;

    // Edge a writes through edgesync's own conversion, as an app would.
    let a = app(&dir.file("a.db"));
    for r in typed_rows() {
        let params: Vec<rusqlite::types::Value> = r
            .iter()
            .zip(&t.columns)
            .map(|(v, c)| edgesync_sqlite::types::to_sql(v, c.edge_ty).unwrap())
            .collect();
        a.execute(
            &format!(
                "INSERT INTO typed ({}) VALUES ({})",
                t.columns
                    .iter()
                    .map(|c| c.edge.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                vec!["?"; t.columns.len()].join(", ")
            ),
            rusqlite::params_from_iter(params),
        )
        .unwrap();
    }
    sync(&a_db, &c, "a", &t).await;
    sync(&b_db, &c, "b", &t).await;

    // What b received equals what a wrote, value for value.
    let page = c.pull("b", &t, None, 100).await.unwrap();
    let got: Vec<Vec<Value>> = page
        .changes
        .iter()
        .map(|ch| ch.values.clone().unwrap())
        .collect();
    assert_eq!(got, typed_rows());
    let a_raw = dump(&a, "SELECT * FROM typed ORDER BY id");
    let b_raw = dump(&app(&dir.file("b.db")), "SELECT * FROM typed ORDER BY id");
    let strip = |rows: Vec<Vec<String>>| -> Vec<Vec<String>> {
        rows.into_iter().map(|r| r[..12].to_vec()).collect()
    };
    assert_eq!(
        strip(a_raw),
        strip(b_raw),
        "byte-identical storage on both edges"
    );
    let b_batch = b_db.read_changes(&t, 100).await.unwrap();
    assert_eq!(b_batch, None, "pulled rows are not pushed back");
}

#[tokio::test]
async fn a_lost_push_answer_is_resent_and_applied_once() {
    let dir = Dir::new();
    let t = both_hard();
    let c = central(&dir.file("c.db"), std::slice::from_ref(&t)).await;
    let db = edge(&dir.file("e.db"), "e", std::slice::from_ref(&t)).await;
    let (e, cen) = (app(&dir.file("e.db")), app(&dir.file("c.db")));
    e.execute_batch(
        "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1), (2, 'b', 2);
         DELETE FROM items WHERE id = 2;",
    )
    .unwrap();
    // The push commits centrally but its answer is lost (crash, cut link).
    let batch = db.read_changes(&t, 100).await.unwrap().unwrap();
    c.push("e", &t, &batch).await.unwrap();
    let central_after_first = dump(&cen, "SELECT * FROM items");
    // Meanwhile the application writes again.
    e.execute("UPDATE items SET qty = 5 WHERE id = 1", [])
        .unwrap();
    sync(&db, &c, "e", &t).await;
    assert_eq!(dump(&cen, ITEMS), dump(&e, ITEMS));
    assert_eq!(dump(&cen, ITEMS), dump(&cen, "SELECT 1, 'a', 5"));
    assert_ne!(central_after_first, dump(&cen, "SELECT * FROM items"));
    assert_eq!(db.status(&t).await.unwrap().pending, 0);
    assert!(
        c.conflicts(true, 10).await.unwrap().is_empty(),
        "a replay is not a conflict"
    );
    let seq: i64 = cen
        .query_row("SELECT seq FROM es_ctl", [], |r| r.get(0))
        .unwrap();
    // Row 1's insert and its update; the delete of a row the central never
    // had writes nothing. Nothing was applied twice.
    assert_eq!(seq, 2);
}
