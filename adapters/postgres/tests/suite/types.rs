//! Every canonical type survives a push and a pull unchanged; lossy columns
//! and values are refused naming the thing.

use chrono::{DateTime, NaiveDate};
use edgesync_core::value::{parse_time, parse_timestamp, parse_timestamptz};
use edgesync_core::{
    Central, ColType, ConflictPolicy, DeleteMode, ErrorKind, PushOutcome, QualifiedName, Value,
};

use crate::common::*;

fn all_types() -> Vec<(&'static str, ColType)> {
    vec![
        ("id", int()),
        ("b", ColType::Bool),
        ("i8", int()),
        ("i4", int()),
        ("i2", int()),
        ("f", ColType::Float),
        ("d", dec(38, 10)),
        (
            "dn",
            ColType::Decimal {
                precision: None,
                scale: None,
            },
        ),
        ("t", text()),
        ("vc", ColType::Text { max_len: Some(10) }),
        ("by", ColType::Bytes),
        ("da", ColType::Date),
        ("ti", ColType::Time),
        ("ts", ColType::Timestamp),
        ("tz", ColType::TimestampTz),
        ("u", ColType::Uuid),
        ("j", ColType::Json),
        ("jb", ColType::Json),
    ]
}

const CREATE_ALL: &str = "CREATE TABLE alltypes (
    id bigint PRIMARY KEY, b boolean, i8 bigint, i4 integer, i2 smallint, f double precision,
    d numeric(38,10), dn numeric, t text, vc varchar(10), by bytea, da date, ti time,
    ts timestamp, tz timestamptz, u uuid, j json, jb jsonb)";

/// What a pulled change says: key, values, deleted, version.
type Decoded = (Vec<Value>, Option<Vec<Value>>, bool, i64);

/// `alltypes` created, mapped with every type and provisioned.
async fn alltypes(db: &TestDb) -> edgesync_core::TableMapping {
    db.exec(CREATE_ALL).await;
    let m = mapping(
        "alltypes",
        &all_types(),
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    db.init(std::slice::from_ref(&m)).await;
    m
}

/// A second central on the test database that reads every pull page
/// through sqlx's query path, never with a binary COPY.
async fn query_reader(db: &TestDb) -> edgesync_postgres::PgCentral {
    edgesync_postgres::PgCentral::connect(&url_for(&db.name), None)
        .await
        .expect("connect")
        .without_copy_reads()
}

fn ts(s: &str) -> Value {
    Value::Timestamp(parse_timestamp(s).expect(s))
}

fn tz(s: &str) -> Value {
    Value::TimestampTz(parse_timestamptz(s).expect(s))
}

fn rows() -> Vec<Vec<Value>> {
    let uuid = |s: &str| Value::Uuid(s.parse().expect("uuid"));
    vec![
        vec![
            Value::Int(1),
            Value::Bool(true),
            Value::Int(i64::MAX),
            Value::Int(i32::MAX.into()),
            Value::Int(i16::MAX.into()),
            Value::Float(0.1),
            Value::Decimal("9999999999999999999999999999.9999999999".into()),
            Value::Decimal("123456789012345678901234567890.000000000000000000001".into()),
            Value::Text("null".into()),
            Value::Text("e\u{301}👍🏽ok\u{1F600}x".into()),
            Value::Bytes(vec![0, 255, 0, 10, 13, 92]),
            Value::Date(NaiveDate::from_ymd_opt(1969, 7, 20).expect("date")),
            Value::Time(parse_time("23:59:59.999999").expect("time")),
            ts("2038-01-19 03:14:08.123456"),
            tz("2024-03-31 02:30:00.000001+05:30"),
            uuid("00000000-0000-0000-0000-000000000001"),
            Value::Json(r#"{"a": [1, 2.50, "ü\u00e9🎉"], "b": {"c": null}}"#.into()),
            Value::Json(r#"{"name": "Zoë 🐧", "n": [1, {"x": "\"q\""}]}"#.into()),
        ],
        vec![
            Value::Int(2),
            Value::Bool(false),
            Value::Int(i64::MIN),
            Value::Int(i32::MIN.into()),
            Value::Int(i16::MIN.into()),
            Value::Float(-1.5e300),
            Value::Decimal("-0.0000000001".into()),
            Value::Decimal("1.10".into()),
            Value::Text(String::new()),
            Value::Text("0123456789".into()),
            Value::Bytes(Vec::new()),
            Value::Date(NaiveDate::from_ymd_opt(2100, 2, 28).expect("date")),
            Value::Time(parse_time("00:00:00").expect("time")),
            ts("1900-01-01 00:00:00.000001"),
            tz("1950-06-01 12:00:00-09:30"),
            uuid("ffffffff-ffff-4fff-bfff-ffffffffffff"),
            Value::Json("[]".into()),
            Value::Json("\"null\"".into()),
        ],
        std::iter::once(Value::Int(3))
            .chain(std::iter::repeat_n(Value::Null, 17))
            .collect(),
    ]
}

#[tokio::test]
async fn every_type_round_trips_through_push_and_pull() {
    let db = TestDb::new().await;
    db.exec(CREATE_ALL).await;
    let cols = all_types();
    let m = mapping(
        "alltypes",
        &cols,
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    db.init(std::slice::from_ref(&m)).await;

    let written = rows();
    let changes = written
        .iter()
        .enumerate()
        .map(|(i, r)| upsert(r.clone(), 0, i as i64 + 1, None))
        .collect();
    let res = db
        .central
        .push("edge-a", &m, &batch(changes))
        .await
        .expect("push");
    assert!(res
        .outcomes
        .iter()
        .all(|o| matches!(o, PushOutcome::Applied { version } if *version > 0)));

    let (got, _) = pull_pass(&db.central, "edge-b", &m, None, 100).await;
    assert_eq!(got.len(), 3);
    for (w, g) in written.iter().zip(&got) {
        let g = g.values.as_ref().expect("values");
        for (k, (name, _)) in cols.iter().enumerate() {
            if *name == "jb" {
                // jsonb keeps the document, not the text.
                let parse = |v: &Value| match v {
                    Value::Json(s) => serde_json::from_str::<serde_json::Value>(s).expect("json"),
                    Value::Null => serde_json::Value::Null,
                    other => panic!("{other:?}"),
                };
                assert_eq!(parse(&w[k]), parse(&g[k]), "column {name}");
            } else {
                assert_eq!(w[k], g[k], "column {name}");
            }
        }
    }
    // The zoned instant is kept; it comes back in UTC.
    assert_eq!(
        got[0].values.as_ref().expect("values")[14],
        Value::TimestampTz(DateTime::parse_from_rfc3339("2024-03-30T21:00:00.000001Z").expect("t"))
    );
    // NULL is NULL, "null" is text.
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM alltypes WHERE t = 'null'")
            .await,
        1
    );
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM alltypes WHERE t IS NULL")
            .await,
        1
    );
    // Decimals were stored exactly, not through a float.
    assert_eq!(
        db.scalar::<String>("SELECT d::text FROM alltypes WHERE id = 1")
            .await,
        "9999999999999999999999999999.9999999999"
    );
}

/// Pages are read with a binary COPY where the columns allow it, through
/// sqlx's query path otherwise: both must decode every type to the same
/// values, in full and incremental passes, whatever the page size cuts.
#[tokio::test]
async fn the_copy_and_query_paths_read_every_type_alike() {
    let db = TestDb::new().await;
    let m = alltypes(&db).await;
    let changes = rows()
        .into_iter()
        .enumerate()
        .map(|(i, r)| upsert(r, 0, i as i64 + 1, None))
        .collect();
    db.central
        .push("edge-a", &m, &batch(changes))
        .await
        .expect("push");
    let query = query_reader(&db).await;
    let values = |cs: &[edgesync_core::Change]| {
        let mut v: Vec<Decoded> = cs
            .iter()
            .map(|c| (c.key.clone(), c.values.clone(), c.deleted, c.version))
            .collect();
        v.sort_by_key(|(k, _, _, _)| format!("{k:?}"));
        v
    };
    // Pages of two rows: the second page resumes after the first's cursor.
    let (copied, token) = pull_pass(&db.central, "edge-b", &m, None, 2).await;
    let (queried, token_q) = pull_pass(&query, "edge-b", &m, None, 2).await;
    assert_eq!(copied.len(), 3);
    assert_eq!(values(&copied), values(&queried));
    assert!(copied.iter().all(|c| c.version > 0 && c.values.is_some()));
    db.exec("UPDATE alltypes SET id = id").await;
    let (copied, _) = pull_pass(&db.central, "edge-b", &m, Some(token), 2).await;
    let (queried, _) = pull_pass(&query, "edge-b", &m, Some(token_q), 2).await;
    assert_eq!(copied.len(), 3);
    assert_eq!(values(&copied), values(&queried));
}

#[tokio::test]
async fn values_central_applications_write_read_back_exactly() {
    let db = TestDb::new().await;
    let m = alltypes(&db).await;
    db.exec(
        "SET TIME ZONE 'America/St_Johns';
         INSERT INTO alltypes (id, d, dn, tz, by, j) VALUES
           (7, -12345678901234567890.1234567890, 0.000, '2001-02-03 04:05:06.7+01', '\\x00ff', '{\"k\":1}')",
    )
    .await;
    let (got, _) = pull_pass(&db.central, "edge-b", &m, None, 10).await;
    let v = got[0].values.as_ref().expect("values");
    assert_eq!(
        v[6],
        Value::Decimal("-12345678901234567890.1234567890".into())
    );
    assert_eq!(v[7], Value::Decimal("0.000".into()));
    assert_eq!(v[14], tz("2001-02-03 03:05:06.7Z"));
    assert_eq!(v[10], Value::Bytes(vec![0, 255]));
    assert_eq!(v[16], Value::Json("{\"k\":1}".into()));
}

#[tokio::test]
async fn lossy_values_are_refused_naming_table_column_and_key() {
    let db = TestDb::new().await;
    db.exec(CREATE_ALL).await;
    let cols = all_types();
    let m = mapping(
        "alltypes",
        &cols,
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    db.init(std::slice::from_ref(&m)).await;
    let mut row = rows().remove(2);

    // More decimal places than numeric(38,10) keeps.
    row[6] = Value::Decimal("1.12345678901".into());
    let err = db
        .central
        .push("e", &m, &batch(vec![upsert(row.clone(), 0, 1, None)]))
        .await
        .expect_err("rounding must be refused");
    assert_eq!(err.kind(), ErrorKind::Value, "{err}");
    assert!(err.message().contains("alltypes.d (key id=3)"), "{err}");

    // A value of the wrong kind.
    row[6] = Value::Null;
    row[3] = Value::Text("12".into());
    let err = db
        .central
        .push("e", &m, &batch(vec![upsert(row.clone(), 0, 1, None)]))
        .await
        .expect_err("wrong kind must be refused");
    assert_eq!(err.kind(), ErrorKind::Value, "{err}");
    assert!(err.message().contains("alltypes.i4 (key id=3)"), "{err}");

    // Too long for varchar(10): refused, never truncated.
    row[3] = Value::Null;
    row[9] = Value::Text("12345678901".into());
    let err = db
        .central
        .push("e", &m, &batch(vec![upsert(row.clone(), 0, 1, None)]))
        .await
        .expect_err("truncation must be refused");
    assert_eq!(err.kind(), ErrorKind::Value, "{err}");
    assert!(err.message().contains("alltypes"), "{err}");

    // Out of range for integer.
    row[9] = Value::Null;
    row[3] = Value::Int(i64::from(i32::MAX) + 1);
    let err = db
        .central
        .push("e", &m, &batch(vec![upsert(row, 0, 1, None)]))
        .await
        .expect_err("overflow must be refused");
    assert_eq!(err.kind(), ErrorKind::Value, "{err}");
    assert_eq!(db.scalar::<i64>("SELECT count(*) FROM alltypes").await, 0);
}

#[tokio::test]
async fn describe_maps_types_and_refuses_lossy_ones() {
    let db = TestDb::new().await;
    db.exec(
        "CREATE SCHEMA sales;
         CREATE TABLE sales.orders (
            region text, id serial, total numeric(12,2) NOT NULL, amount numeric,
            name varchar(20), code char(5), ratio real, score double precision,
            small smallint, flag boolean, ip inet, doc jsonb, at timestamptz DEFAULT now(),
            PRIMARY KEY (region, id))",
    )
    .await;
    let t = db
        .central
        .describe(&QualifiedName::parse("sales.orders"))
        .await
        .expect("describe")
        .expect("exists");
    assert_eq!(t.primary_key, vec!["region", "id"]);
    let ty = |n: &str| t.column(n).expect(n).ty.clone();
    assert_eq!(ty("id"), Ok(ColType::Int));
    assert_eq!(ty("total"), Ok(dec(12, 2)));
    assert_eq!(
        ty("amount"),
        Ok(ColType::Decimal {
            precision: None,
            scale: None
        })
    );
    assert_eq!(ty("name"), Ok(ColType::Text { max_len: Some(20) }));
    assert_eq!(ty("region"), Ok(text()));
    assert!(ty("code").expect_err("char(n)").contains("character(5)"));
    assert!(ty("ratio").expect_err("real").contains("double precision"));
    assert_eq!(ty("score"), Ok(ColType::Float));
    assert_eq!(ty("small"), Ok(ColType::Int));
    assert_eq!(ty("ip"), Err("inet".into()));
    assert_eq!(ty("doc"), Ok(ColType::Json));
    assert_eq!(ty("at"), Ok(ColType::TimestampTz));
    assert!(t.column("id").expect("id").has_default);
    assert!(!t.column("total").expect("total").nullable);
    assert!(t.column("name").expect("name").nullable);

    // Metadata columns are left out once provisioned.
    let m = mapping(
        "sales.orders",
        &[("region", text()), ("id", int()), ("total", dec(12, 2))],
        &[0, 1],
        ConflictPolicy::ServerWins,
        DeleteMode::Hard,
    );
    db.init(&[m]).await;
    let after = db
        .central
        .describe(&QualifiedName::parse("sales.orders"))
        .await
        .expect("describe")
        .expect("exists");
    assert_eq!(after, t);
    assert!(db
        .central
        .describe(&QualifiedName::parse("sales.nope"))
        .await
        .expect("describe")
        .is_none());
}

#[tokio::test]
async fn values_edgesync_cannot_carry_are_errors_not_panics() {
    let db = TestDb::new().await;
    let m = alltypes(&db).await;
    let query = query_reader(&db).await;
    for ((col, value), central) in [
        ("ts", "'infinity'"),
        ("tz", "'-infinity'"),
        ("da", "'infinity'"),
        ("ti", "'24:00:00'"),
        ("dn", "'NaN'"),
    ]
    .into_iter()
    .flat_map(|cv| [(cv, &db.central), (cv, &query)])
    {
        // A full pass and an incremental one refuse it, on the COPY and on
        // the query path alike.
        db.exec(&format!(
            "TRUNCATE alltypes; INSERT INTO alltypes (id, {col}) VALUES (1, {value})"
        ))
        .await;
        let err = central
            .pull("e", &m, None, 10)
            .await
            .expect_err("must be refused");
        assert_eq!(err.kind(), ErrorKind::Value, "{col}: {err}");
        assert!(err.message().contains(&format!("alltypes.{col}")), "{err}");
        db.exec("TRUNCATE alltypes; INSERT INTO alltypes (id) VALUES (1)")
            .await;
        let (_, token) = pull_pass(central, "e", &m, None, 10).await;
        db.exec(&format!("UPDATE alltypes SET {col} = {value}"))
            .await;
        let err = central
            .pull("e", &m, Some(&token), 10)
            .await
            .expect_err("must be refused");
        assert_eq!(err.kind(), ErrorKind::Value, "{col}: {err}");
        assert!(err.message().contains(&format!("alltypes.{col}")), "{err}");
    }
}
