//! Every canonical type survives a push and a pull unchanged; columns and
//! values that would lose data are refused naming the thing.

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
        ("dm", dec(12, 2)),
        ("t", ColType::Text { max_len: None }),
        ("vc", ColType::Text { max_len: Some(10) }),
        ("bl", ColType::Bytes),
        ("da", ColType::Date),
        ("ti", ColType::Time),
        ("ts", ColType::Timestamp),
        ("tz", ColType::TimestampTz),
        ("u", ColType::Uuid),
        ("uc", ColType::Uuid),
        ("j", ColType::Json),
    ]
}

const CREATE_ALL: &str = "CREATE TABLE alltypes (
    id bigint PRIMARY KEY, b boolean, i8 bigint, i4 int, i2 smallint, f double,
    d decimal(38,10), dm decimal(12,2), t longtext, vc varchar(10), bl longblob, da date,
    ti time(6), ts datetime(6), tz timestamp(6) NULL, u uuid, uc char(36), j json)";

fn ts(s: &str) -> Value {
    Value::Timestamp(parse_timestamp(s).expect(s))
}

fn tz(s: &str) -> Value {
    Value::TimestampTz(parse_timestamptz(s).expect(s))
}

fn uuid(s: &str) -> Value {
    Value::Uuid(s.parse().expect("uuid"))
}

fn rows() -> Vec<Vec<Value>> {
    vec![
        vec![
            Value::Int(1),
            Value::Bool(true),
            Value::Int(i64::MAX),
            Value::Int(i32::MAX.into()),
            Value::Int(i16::MAX.into()),
            Value::Float(0.1),
            Value::Decimal("9999999999999999999999999999.9999999999".into()),
            Value::Decimal("1.10".into()),
            Value::Text("null".into()),
            Value::Text("e\u{301}👍🏽ok\u{1F600}x".into()),
            Value::Bytes(vec![0, 255, 0, 10, 13, 92, 39, 34]),
            Value::Date(NaiveDate::from_ymd_opt(1969, 7, 20).expect("date")),
            Value::Time(parse_time("23:59:59.999999").expect("time")),
            ts("2038-01-19 03:14:08.123456"),
            tz("2024-03-31 02:30:00.000001+05:30"),
            uuid("00000000-0000-0000-0000-000000000001"),
            uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
            Value::Json(r#"{"a": [1, 2.50, "ü\u00e9🎉"], "b": {"c": null}}"#.into()),
        ],
        vec![
            Value::Int(2),
            Value::Bool(false),
            Value::Int(i64::MIN),
            Value::Int(i32::MIN.into()),
            Value::Int(i16::MIN.into()),
            Value::Float(-1.5e300),
            Value::Decimal("-0.0000000001".into()),
            Value::Decimal("-9999999999.99".into()),
            Value::Text(String::new()),
            Value::Text("0123456789".into()),
            Value::Bytes(Vec::new()),
            Value::Date(NaiveDate::from_ymd_opt(2100, 2, 28).expect("date")),
            Value::Time(parse_time("00:00:00").expect("time")),
            ts("1900-01-01 00:00:00.000001"),
            tz("1970-01-02 12:00:00-09:30"),
            uuid("ffffffff-ffff-4fff-bfff-ffffffffffff"),
            uuid("00000000-0000-0000-0000-000000000000"),
            Value::Json("\"null\"".into()),
        ],
        std::iter::once(Value::Int(3))
            .chain(std::iter::repeat_n(Value::Null, 17))
            .collect(),
    ]
}

async fn provisioned(db: &TestDb) -> edgesync_core::TableMapping {
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

#[tokio::test]
async fn every_type_round_trips_through_push_and_pull() {
    let db = TestDb::new().await;
    let m = provisioned(&db).await;
    let cols = all_types();
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
            assert_eq!(w[k], g[k], "column {name}");
        }
    }
    // The zoned instant is kept; it comes back in UTC.
    assert_eq!(
        got[0].values.as_ref().expect("values")[14],
        Value::TimestampTz(DateTime::parse_from_rfc3339("2024-03-30T21:00:00.000001Z").expect("t"))
    );
    // NULL is NULL, "null" is text.
    assert_eq!(
        db.scalar::<i64>("SELECT COUNT(*) FROM alltypes WHERE t = 'null'")
            .await,
        1
    );
    assert_eq!(
        db.scalar::<i64>("SELECT COUNT(*) FROM alltypes WHERE t IS NULL")
            .await,
        1
    );
    // Decimals and 4-byte characters were stored exactly.
    assert_eq!(
        db.scalar::<String>("SELECT CAST(d AS CHAR) FROM alltypes WHERE id = 1")
            .await,
        "9999999999999999999999999999.9999999999"
    );
    assert_eq!(
        db.scalar::<String>("SELECT HEX(vc) FROM alltypes WHERE id = 1")
            .await,
        "65CC81F09F918DF09F8FBD6F6BF09F988078"
    );
    // An update of every column goes through the set-based update path.
    let mut second = written[0].clone();
    second[9] = Value::Text("😀😀😀😀😀😀😀😀😀😀".into());
    second[10] = Value::Bytes((0..=255).collect());
    let r = db
        .central
        .push(
            "edge-a",
            &m,
            &batch(vec![upsert(second.clone(), 0, 4, Some(got[0].version))]),
        )
        .await
        .expect("update");
    assert_eq!(r.conflicts, 0);
    // A full pass delivers rows in key order: find the row by its key.
    let (again, _) = pull_pass(&db.central, "edge-b", &m, None, 100).await;
    let row = again.iter().find(|c| c.key == vec![second[0].clone()]);
    assert_eq!(row.and_then(|c| c.values.as_ref()), Some(&second));
}

#[tokio::test]
async fn a_10_mb_blob_round_trips() {
    let db = TestDb::new().await;
    let m = provisioned(&db).await;
    let blob: Vec<u8> = (0..10 * 1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut row = rows().remove(2);
    row[10] = Value::Bytes(blob.clone());
    let mut small = rows().remove(1);
    small[0] = Value::Int(4);
    db.central
        .push(
            "e",
            &m,
            &batch(vec![upsert(small, 0, 1, None), upsert(row, 0, 2, None)]),
        )
        .await
        .expect("push");
    let (got, _) = pull_pass(&db.central, "f", &m, None, 10).await;
    let big = got
        .iter()
        .find(|c| c.key[0] == Value::Int(3))
        .expect("row 3");
    assert_eq!(big.values.as_ref().unwrap()[10], Value::Bytes(blob));
}

#[tokio::test]
async fn values_central_applications_write_read_back_exactly() {
    let db = TestDb::new().await;
    let m = provisioned(&db).await;
    db.exec(
        "SET time_zone = '-03:30';
         INSERT INTO alltypes (id, d, dm, tz, bl, j, b, uc) VALUES
           (7, -1234567890123456789.1234567890, 0, '2001-02-03 04:05:06.7', X'00ff', '{\"k\":1}', TRUE,
            '6BA7B810-9DAD-11D1-80B4-00C04FD430C8')",
    )
    .await;
    let (got, _) = pull_pass(&db.central, "edge-b", &m, None, 10).await;
    let v = got[0].values.as_ref().expect("values");
    assert_eq!(
        v[6],
        Value::Decimal("-1234567890123456789.1234567890".into())
    );
    assert_eq!(v[7], Value::Decimal("0.00".into()));
    assert_eq!(v[14], tz("2001-02-03 07:35:06.7Z"));
    assert_eq!(v[10], Value::Bytes(vec![0, 255]));
    assert_eq!(v[17], Value::Json("{\"k\":1}".into()));
    assert_eq!(v[1], Value::Bool(true));
    assert_eq!(v[16], uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8"));
}

#[tokio::test]
async fn lossy_values_are_refused_naming_table_column_and_key() {
    let db = TestDb::new().await;
    let m = provisioned(&db).await;
    let mut row = rows().remove(2);
    let push = |row: Vec<Value>| {
        let c = db.central.clone();
        let m = m.clone();
        async move { c.push("e", &m, &batch(vec![upsert(row, 0, 1, None)])).await }
    };

    // More decimal places than decimal(38,10) keeps.
    row[6] = Value::Decimal("1.12345678901".into());
    let err = push(row.clone())
        .await
        .expect_err("rounding must be refused");
    assert_eq!(err.kind(), ErrorKind::Value, "{err}");
    assert!(err.message().contains("alltypes.d (key id=3)"), "{err}");

    // More integer digits than decimal(12,2) holds.
    row[6] = Value::Null;
    row[7] = Value::Decimal("12345678901".into());
    let err = push(row.clone())
        .await
        .expect_err("overflow must be refused");
    assert_eq!(err.kind(), ErrorKind::Value, "{err}");
    assert!(err.message().contains("alltypes.dm (key id=3)"), "{err}");

    // A value of the wrong kind.
    row[7] = Value::Null;
    row[3] = Value::Text("12".into());
    let err = push(row.clone())
        .await
        .expect_err("wrong kind must be refused");
    assert_eq!(err.kind(), ErrorKind::Value, "{err}");
    assert!(err.message().contains("alltypes.i4 (key id=3)"), "{err}");

    // Too long for varchar(10): refused, never truncated.
    row[3] = Value::Null;
    row[9] = Value::Text("12345678901".into());
    let err = push(row.clone())
        .await
        .expect_err("truncation must be refused");
    assert_eq!(err.kind(), ErrorKind::Value, "{err}");
    assert!(
        err.message().contains("alltypes") && err.message().contains("vc"),
        "{err}"
    );

    // Out of range for int.
    row[9] = Value::Null;
    row[3] = Value::Int(i64::from(i32::MAX) + 1);
    let err = push(row.clone())
        .await
        .expect_err("overflow must be refused");
    assert_eq!(err.kind(), ErrorKind::Value, "{err}");

    // A TIMESTAMP cannot hold 1950: refused, not clamped.
    row[3] = Value::Null;
    row[14] = tz("1950-06-01 12:00:00Z");
    let err = push(row.clone()).await.expect_err("timestamp range");
    assert_eq!(err.kind(), ErrorKind::Value, "{err}");
    assert_eq!(db.scalar::<i64>("SELECT COUNT(*) FROM alltypes").await, 0);
}

#[tokio::test]
async fn describe_maps_types_and_refuses_lossy_ones() {
    let db = TestDb::new().await;
    let sales = db.extra_db("sales").await;
    db.exec(&format!(
        "CREATE TABLE {sales}.orders (
            region varchar(20) COLLATE utf8mb4_bin, id int AUTO_INCREMENT, total decimal(12,2) NOT NULL,
            name varchar(20), old varchar(20) CHARACTER SET utf8mb3, latin varchar(5) CHARACTER SET latin1,
            code char(5), ratio float, score double, small smallint, flag tinyint(1), tiny tinyint,
            big bigint unsigned, raw binary(16), bytes varbinary(16), doc json, uid uuid, uid36 char(36),
            at timestamp(6) NULL DEFAULT CURRENT_TIMESTAMP(6), dt datetime(3), ti time, da date,
            notes text, yr year, kind enum('a','b'), twice int AS (small * 2) VIRTUAL,
            PRIMARY KEY (region, id), KEY (id))"
    ))
    .await;
    let q = QualifiedName::parse(&format!("{sales}.orders"));
    let t = db
        .central
        .describe(&q)
        .await
        .expect("describe")
        .expect("exists");
    assert_eq!(t.primary_key, vec!["region", "id"]);
    let ty = |n: &str| t.column(n).expect(n).ty.clone();
    assert_eq!(ty("id"), Ok(ColType::Int));
    assert_eq!(ty("total"), Ok(dec(12, 2)));
    assert_eq!(ty("name"), Ok(ColType::Text { max_len: Some(20) }));
    assert!(ty("old")
        .expect_err("utf8mb3")
        .contains("utf8mb3 cannot store 4-byte characters"));
    assert!(ty("latin").expect_err("latin1").contains("utf8mb4"));
    assert!(ty("code").expect_err("char(n)").contains("char(5)"));
    assert!(ty("ratio").expect_err("float").contains("double"));
    assert_eq!(ty("score"), Ok(ColType::Float));
    assert_eq!(ty("small"), Ok(ColType::Int));
    assert_eq!(ty("flag"), Ok(ColType::Bool));
    assert_eq!(ty("tiny"), Ok(ColType::Int));
    assert!(ty("big").expect_err("unsigned").contains("64-bit"));
    assert!(ty("raw").expect_err("binary").contains("pads"));
    assert_eq!(ty("bytes"), Ok(ColType::Bytes));
    assert_eq!(ty("doc"), Ok(ColType::Json));
    assert_eq!(ty("uid"), Ok(ColType::Uuid));
    assert_eq!(ty("uid36"), Ok(ColType::Uuid));
    assert_eq!(ty("at"), Ok(ColType::TimestampTz));
    assert_eq!(ty("dt"), Ok(ColType::Timestamp));
    assert_eq!(ty("ti"), Ok(ColType::Time));
    assert_eq!(ty("da"), Ok(ColType::Date));
    assert_eq!(
        ty("notes"),
        Ok(ColType::Text {
            max_len: Some(16383)
        })
    );
    assert!(ty("yr").is_err());
    assert!(ty("kind").is_err());
    assert!(ty("twice").expect_err("generated").contains("generated"));
    assert!(t.column("id").expect("id").has_default);
    assert!(t.column("at").expect("at").has_default);
    assert!(!t.column("total").expect("total").nullable);
    assert!(t.column("name").expect("name").nullable);

    // Metadata columns are left out once provisioned.
    let m = mapping(
        &format!("{sales}.orders"),
        &[("region", text()), ("id", int()), ("total", dec(12, 2))],
        &[0, 1],
        ConflictPolicy::ServerWins,
        DeleteMode::Hard,
    );
    db.init(&[m]).await;
    let after = db
        .central
        .describe(&q)
        .await
        .expect("describe")
        .expect("exists");
    assert_eq!(after, t);
    assert!(db
        .central
        .describe(&QualifiedName::parse(&format!("{sales}.nope")))
        .await
        .expect("describe")
        .is_none());
}

#[tokio::test]
async fn values_edgesync_cannot_carry_are_errors_not_panics() {
    let db = TestDb::new().await;
    let m = provisioned(&db).await;
    for (col, value, says) in [
        ("da", "'0000-00-00'", "zero date"),
        ("ts", "'0000-00-00 00:00:00'", "zero date"),
        ("da", "'2024-00-10'", "not a valid date"),
        ("ti", "'-01:00:00'", "outside a time of day"),
        ("ti", "'25:00:00'", "outside a time of day"),
        ("b", "2", "not a boolean"),
    ] {
        // An application with a lax sql_mode wrote it.
        db.exec(&format!(
            "SET SESSION sql_mode = ''; DELETE FROM alltypes;
             INSERT INTO alltypes (id, {col}) VALUES (1, {value})"
        ))
        .await;
        let err = db
            .central
            .pull("e", &m, None, 10)
            .await
            .expect_err("must be refused");
        assert_eq!(err.kind(), ErrorKind::Value, "{col}: {err}");
        assert!(err.message().contains(&format!("alltypes.{col}")), "{err}");
        assert!(err.message().contains(says), "{err}");
    }
}
