//! Round trips through real SQLite columns declared the way edgesync
//! declares them, and the declared-type mapping.

use super::*;
use chrono::{FixedOffset, NaiveDateTime, NaiveTime, TimeZone};
use rusqlite::Connection;

fn dec(p: u32, s: u32) -> ColType {
    ColType::Decimal {
        precision: Some(p),
        scale: Some(s),
    }
}

/// Store `v` in a fresh column of `ty`'s declared type, read it back.
fn round_trip(conn: &Connection, ty: ColType, v: &Value) -> Value {
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS t; CREATE TABLE t (v {})",
        declared_type(ty)
    ))
    .expect("create");
    let stored = to_sql(v, ty).expect("to_sql");
    conn.execute("INSERT INTO t (v) VALUES (?1)", [stored])
        .expect("insert");
    conn.query_row("SELECT v FROM t", [], |r| {
        Ok(from_sql(r.get_ref(0)?, ty).expect("from_sql"))
    })
    .expect("select")
}

fn ts(s: &str) -> NaiveDateTime {
    value::parse_timestamp(s).expect(s)
}

#[test]
fn every_type_round_trips_exactly() {
    let conn = Connection::open_in_memory().expect("open");
    let tz = |s: &str| Value::TimestampTz(value::parse_timestamptz(s).expect(s));
    let cases: Vec<(ColType, Vec<Value>)> = vec![
        (
            ColType::Int,
            vec![Value::Int(i64::MIN), Value::Int(i64::MAX), Value::Int(0)],
        ),
        (ColType::Bool, vec![Value::Bool(true), Value::Bool(false)]),
        (
            ColType::Float,
            vec![
                Value::Float(0.1),
                Value::Float(-1e300),
                Value::Float(f64::INFINITY),
                Value::Float(5e-324),
            ],
        ),
        (
            ColType::Decimal {
                precision: None,
                scale: None,
            },
            vec![
                Value::Decimal("-12345678901234567890.1234567890".into()),
                Value::Decimal("1.10".into()),
                Value::Decimal("0.00".into()),
                Value::Decimal("99999999999999999999999999999999999999".into()),
            ],
        ),
        (dec(12, 2), vec![Value::Decimal("12.30".into())]),
        (
            ColType::Text { max_len: None },
            vec![
                Value::Text(String::new()),
                Value::Text("null".into()),
                Value::Text("NULL".into()),
                Value::Text("héllo 🦀 👩‍👩‍👧 \u{10FFFF}".into()),
                Value::Text("0012".into()),
                Value::Text("1.10".into()),
            ],
        ),
        (
            ColType::Text { max_len: Some(3) },
            vec![Value::Text("abc".into())],
        ),
        (
            ColType::Bytes,
            vec![
                Value::Bytes(vec![]),
                Value::Bytes(vec![0, 255, 10, 0]),
                Value::Bytes(b"null".to_vec()),
            ],
        ),
        (
            ColType::Date,
            vec![
                Value::Date(NaiveDate::from_ymd_opt(1899, 12, 31).expect("d")),
                Value::Date(NaiveDate::from_ymd_opt(2100, 2, 28).expect("d")),
                Value::Date(NaiveDate::from_ymd_opt(1, 1, 1).expect("d")),
            ],
        ),
        (
            ColType::Time,
            vec![
                Value::Time(NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).expect("t")),
                Value::Time(NaiveTime::from_hms_opt(0, 0, 0).expect("t")),
                Value::Time(NaiveTime::from_hms_milli_opt(12, 0, 1, 5).expect("t")),
            ],
        ),
        (
            ColType::Timestamp,
            vec![
                Value::Timestamp(ts("1969-12-31 23:59:59.000001")),
                Value::Timestamp(ts("2038-01-19 03:14:08.123456")),
                Value::Timestamp(ts("2262-04-12 00:00:00")),
            ],
        ),
        (
            ColType::TimestampTz,
            vec![
                tz("2024-01-01 05:30:00.000123+05:30"),
                tz("1900-06-01 00:00:00-09:30"),
                tz("2100-12-31 23:59:59.999999Z"),
            ],
        ),
        (
            ColType::Uuid,
            vec![Value::Uuid(
                uuid::Uuid::parse_str("67E55044-10B1-426F-9247-BB680E5FE0C8").expect("u"),
            )],
        ),
        (
            ColType::Json,
            vec![
                Value::Json(r#"{"a": [1, 2.50, null, "null"], "b": "🦀"}"#.into()),
                Value::Json("null".into()),
                Value::Json("\"text\"".into()),
            ],
        ),
    ];
    for (ty, values) in cases {
        for v in values.into_iter().chain([Value::Null]) {
            assert_eq!(round_trip(&conn, ty, &v), v, "{ty}: {v:?}");
        }
    }
}

#[test]
fn stored_forms_are_canonical_text() {
    let conn = Connection::open_in_memory().expect("open");
    let stored = |ty, v: &Value| {
        round_trip(&conn, ty, v);
        conn.query_row("SELECT typeof(v) || ':' || v FROM t", [], |r| {
            r.get::<_, String>(0)
        })
        .expect("q")
    };
    assert_eq!(
        stored(dec(12, 2), &Value::Decimal("+001.10".into())),
        "text:1.10"
    );
    let u = Value::Uuid(uuid::Uuid::parse_str("67E55044-10B1-426F-9247-BB680E5FE0C8").expect("u"));
    assert_eq!(
        stored(ColType::Uuid, &u),
        "text:67e55044-10b1-426f-9247-bb680e5fe0c8"
    );
    let off = FixedOffset::east_opt(-(9 * 3600 + 1800)).expect("off");
    let t = off
        .with_ymd_and_hms(1900, 6, 1, 0, 0, 0)
        .single()
        .expect("t");
    assert_eq!(
        stored(ColType::TimestampTz, &Value::TimestampTz(t)),
        "text:1900-06-01 00:00:00-09:30"
    );
    assert_eq!(stored(ColType::Bool, &Value::Bool(true)), "integer:1");
    round_trip(&conn, ColType::Text { max_len: None }, &Value::Null);
    let kind: String = conn
        .query_row("SELECT typeof(v) FROM t", [], |r| r.get(0))
        .expect("q");
    assert_eq!(
        kind, "null",
        "NULL is stored as NULL, never as the text 'null'"
    );
}

#[test]
fn lenient_reads_accept_only_exact_forms() {
    let r = |v: SqlValue, ty| from_sql(ValueRef::from(&v), ty);
    let d = ColType::Decimal {
        precision: None,
        scale: None,
    };
    assert_eq!(r(SqlValue::Integer(42), d), Ok(Value::Decimal("42".into())));
    assert_eq!(r(SqlValue::Real(0.1), d), Ok(Value::Decimal("0.1".into())));
    assert_eq!(
        r(SqlValue::Real(1e21), d),
        Ok(Value::Decimal("1000000000000000000000".into()))
    );
    assert_eq!(
        r(SqlValue::Text("true".into()), ColType::Bool),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        r(SqlValue::Text("FALSE".into()), ColType::Bool),
        Ok(Value::Bool(false))
    );
    assert!(r(SqlValue::Integer(2), ColType::Bool).is_err());
    let raw = uuid::Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8").expect("u");
    assert_eq!(
        r(SqlValue::Blob(raw.as_bytes().to_vec()), ColType::Uuid),
        Ok(Value::Uuid(raw))
    );
    assert!(r(SqlValue::Blob(vec![1, 2]), ColType::Uuid).is_err());
    assert_eq!(
        r(
            SqlValue::Text("2024-02-29T23:59:59.5".into()),
            ColType::Timestamp
        ),
        Ok(Value::Timestamp(ts("2024-02-29 23:59:59.5")))
    );
    let err = r(SqlValue::Text("abc".into()), ColType::Int).expect_err("not an int");
    assert!(err.contains("'abc'"), "{err}");
    assert!(r(SqlValue::Real(1.5), ColType::Int).is_err());
    assert!(r(SqlValue::Text("1.2.3".into()), d).is_err());
    assert!(r(SqlValue::Text("{oops".into()), ColType::Json).is_err());
    assert!(r(SqlValue::Text("2024-13-01".into()), ColType::Date).is_err());
    assert!(r(
        SqlValue::Text("2024-01-01 00:00:00".into()),
        ColType::TimestampTz
    )
    .is_err());
    assert!(r(SqlValue::Blob(vec![0]), ColType::Text { max_len: None }).is_err());
}

#[test]
fn negative_zero_is_stored_as_zero() {
    // SQLite cannot keep the sign of a zero REAL.
    let conn = Connection::open_in_memory().expect("open");
    assert_eq!(
        round_trip(&conn, ColType::Float, &Value::Float(-0.0)),
        Value::Float(0.0)
    );
}

#[test]
fn writes_refuse_lossy_values() {
    assert!(to_sql(&Value::Float(f64::NAN), ColType::Float).is_err());
    assert!(to_sql(&Value::Text("1".into()), ColType::Int).is_err());
    assert!(to_sql(&Value::Decimal("1.5".into()), ColType::Int).is_err());
    assert!(to_sql(&Value::Int(2), ColType::Bool).is_err());
    assert_eq!(
        to_sql(&Value::Decimal("12".into()), ColType::Int),
        Ok(SqlValue::Integer(12))
    );
    assert_eq!(
        to_sql(&Value::Int(7), dec(10, 0)),
        Ok(SqlValue::Text("7".into()))
    );
    assert!(to_sql(&Value::Decimal("abc".into()), dec(10, 2)).is_err());
}

#[test]
fn declared_types_map_to_canonical_types() {
    let ok = |d: &str| column_type(d).expect(d);
    assert_eq!(ok("INTEGER"), ColType::Int);
    assert_eq!(ok("bigint"), ColType::Int);
    assert_eq!(ok("BOOLEAN"), ColType::Bool);
    assert_eq!(ok("bool"), ColType::Bool);
    assert_eq!(ok("REAL"), ColType::Float);
    assert_eq!(ok("double precision"), ColType::Float);
    assert_eq!(ok("DECIMAL_TEXT(12,2)"), dec(12, 2));
    assert_eq!(ok("decimal_text( 38 , 10 )"), dec(38, 10));
    assert_eq!(
        ok("DECIMAL_TEXT"),
        ColType::Decimal {
            precision: None,
            scale: None
        }
    );
    assert_eq!(ok("VARCHAR(50)"), ColType::Text { max_len: Some(50) });
    assert_eq!(ok("nvarchar(7)"), ColType::Text { max_len: Some(7) });
    assert_eq!(ok("TEXT"), ColType::Text { max_len: None });
    assert_eq!(ok("CLOB"), ColType::Text { max_len: None });
    assert_eq!(ok("BLOB"), ColType::Bytes);
    assert_eq!(ok(""), ColType::Bytes);
    assert_eq!(ok("DATE_TEXT"), ColType::Date);
    assert_eq!(ok("DATE"), ColType::Date);
    assert_eq!(ok("TIME_TEXT"), ColType::Time);
    assert_eq!(ok("TIMESTAMP_TEXT"), ColType::Timestamp);
    assert_eq!(ok("DATETIME"), ColType::Timestamp);
    assert_eq!(ok("timestamp"), ColType::Timestamp);
    assert_eq!(ok("TIMESTAMPTZ_TEXT"), ColType::TimestampTz);
    assert_eq!(ok("TIMESTAMPTZ"), ColType::TimestampTz);
    assert_eq!(ok("timestamp with time zone"), ColType::TimestampTz);
    assert_eq!(ok("UUID_TEXT"), ColType::Uuid);
    assert_eq!(ok("uuid"), ColType::Uuid);
    assert_eq!(ok("JSON_TEXT"), ColType::Json);
    assert_eq!(ok("JSONB"), ColType::Json);

    assert_eq!(
        column_type("DECIMAL(12,2)"),
        Err(
            "DECIMAL(12,2) has NUMERIC affinity in SQLite, which stores decimals as floating \
             point; declare it DECIMAL_TEXT(12,2) or TEXT"
                .to_string()
        )
    );
    assert!(column_type("numeric")
        .expect_err("numeric")
        .contains("DECIMAL_TEXT or TEXT"));
    assert!(column_type("MONEY")
        .expect_err("money")
        .contains("NUMERIC affinity"));
}

#[test]
fn created_types_read_back_as_themselves() {
    let types = [
        ColType::Bool,
        ColType::Int,
        ColType::Float,
        dec(12, 2),
        ColType::Decimal {
            precision: Some(9),
            scale: None,
        },
        ColType::Text { max_len: Some(20) },
        ColType::Text { max_len: None },
        ColType::Bytes,
        ColType::Date,
        ColType::Time,
        ColType::Timestamp,
        ColType::TimestampTz,
        ColType::Uuid,
        ColType::Json,
    ];
    let conn = Connection::open_in_memory().expect("open");
    for ty in types {
        let decl = declared_type(ty);
        assert_eq!(column_type(&decl), Ok(ty), "{decl}");
        // Everything edgesync stores as text must get TEXT affinity.
        conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS a; CREATE TABLE a (v {decl})"
        ))
        .expect("create");
        conn.execute("INSERT INTO a VALUES ('1.10')", [])
            .expect("insert");
        let kind: String = conn
            .query_row("SELECT typeof(v) FROM a", [], |r| r.get(0))
            .expect("q");
        let numeric = matches!(ty, ColType::Bool | ColType::Int | ColType::Float);
        assert_eq!(kind == "text", !numeric, "{decl} stored '1.10' as {kind}");
    }
}

#[test]
fn tombstone_keys_decode_by_type() {
    let types = [
        ColType::Int,
        ColType::Bytes,
        ColType::Text { max_len: None },
        dec(5, 2),
    ];
    assert_eq!(
        key_from_json(r#"[-9223372036854775808, "00ff", "null", "1.10"]"#, &types),
        Ok(vec![
            Value::Int(i64::MIN),
            Value::Bytes(vec![0, 255]),
            Value::Text("null".into()),
            Value::Decimal("1.10".into()),
        ])
    );
    assert!(key_from_json("[1]", &types).is_err());
    assert!(key_from_json("[\"x\"]", &[ColType::Int]).is_err());
}

#[test]
fn stored_times_parse_back() {
    let now = now_text();
    assert!(now.ends_with('Z') && now.len() == 24, "{now}");
    assert!(parse_stored_time(&now).is_some());
}
