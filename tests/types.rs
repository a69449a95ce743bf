//! The type-fidelity matrix: every supported type, with the values that break
//! careless conversions, round-trips edge -> central -> another edge and
//! central -> every edge, for each central backend; and the mappings that
//! would lose data are refused before anything is written.
//!
//! Values are compared exactly, as canonical [`Value`]s: the edges' stored
//! values are decoded by their declared types (`edgesync_sqlite::types`),
//! the central's are read back as text by the test's own client and parsed
//! by the column's type here (not by the adapter under test). The only
//! normalisations allowed are the documented ones: a zoned timestamp keeps
//! its instant, not its offset (`Value`'s equality already compares
//! instants), and JSON compares as a document (PostgreSQL's `jsonb`
//! re-serialises it).
//!
//! MySQL/MariaDB: `TIMESTAMP` holds 1970-01-01 00:00:01 to 2038-01-19
//! 03:14:07 UTC only, so there the zoned timestamps are the extremes of that
//! range (in offsets where the local date is still 1969), and a value
//! outside it must be refused — quarantined with the column named — never
//! stored as something else.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use edgesync_core::{ColType, Value};

use crate::bad_input::refused;
use crate::common::{query_text, Backend, Env, Sql};
use crate::for_each_backend;

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE types (
        id INTEGER PRIMARY KEY, i INTEGER, amount DECIMAL_TEXT(38,10), txt TEXT, vc VARCHAR(50),
        b BOOLEAN, data BLOB, d DATE_TEXT, t TIME_TEXT, ts TIMESTAMP_TEXT, tstz TIMESTAMPTZ_TEXT,
        u UUID_TEXT, u2 UUID_TEXT, j JSON_TEXT, f REAL);",
    postgres: "CREATE TABLE types (
        id bigint PRIMARY KEY, i bigint, amount numeric(38,10), txt text, vc varchar(50),
        b boolean, data bytea, d date, t time(6), ts timestamp(6), tstz timestamptz(6),
        u uuid, u2 uuid, j jsonb, f double precision);",
    // u: char(36) (MySQL and MariaDB); u2: MariaDB's own uuid type.
    mysql: "CREATE TABLE types (
        id bigint PRIMARY KEY, i bigint, amount decimal(38,10), txt longtext, vc varchar(50),
        b tinyint(1), data longblob, d date, t time(6), ts datetime(6),
        tstz timestamp(6) NULL DEFAULT NULL, u char(36), u2 uuid, j json, f double);",
};

const TABLES: &str = "[[table]]\nname = \"types\"\n";

const DEC: ColType = ColType::Decimal {
    precision: Some(38),
    scale: Some(10),
};

/// The columns after `id`, with their canonical types.
const COLUMNS: [(&str, ColType); 14] = [
    ("i", ColType::Int),
    ("amount", DEC),
    ("txt", ColType::Text { max_len: None }),
    ("vc", ColType::Text { max_len: Some(50) }),
    ("b", ColType::Bool),
    ("data", ColType::Bytes),
    ("d", ColType::Date),
    ("t", ColType::Time),
    ("ts", ColType::Timestamp),
    ("tstz", ColType::TimestampTz),
    ("u", ColType::Uuid),
    ("u2", ColType::Uuid),
    ("j", ColType::Json),
    ("f", ColType::Float),
];

/// The size of the large blob.
const BLOB_BYTES: usize = 10 * 1024 * 1024;

fn cols() -> String {
    COLUMNS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn dec(s: &str) -> Value {
    Value::Decimal(s.into())
}
fn text(s: &str) -> Value {
    Value::Text(s.into())
}
fn date(s: &str) -> Value {
    Value::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date"))
}
fn time(s: &str) -> Value {
    Value::Time(NaiveTime::parse_from_str(s, "%H:%M:%S%.f").expect("time"))
}
fn ts(s: &str) -> Value {
    Value::Timestamp(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").expect("ts"))
}
fn tstz(s: &str) -> Value {
    Value::TimestampTz(DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z").expect("tstz"))
}
fn uuid(s: &str) -> Value {
    Value::Uuid(uuid::Uuid::parse_str(s).expect("uuid"))
}
fn json(s: &str) -> Value {
    Value::Json(s.into())
}

/// 10 MiB that are not a pattern (xorshift), so a chunk lost, repeated or
/// moved cannot go unnoticed.
fn big_blob() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..BLOB_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The hard rows, as canonical values (id first, then [`COLUMNS`]); `base`
/// is added to every id.
fn hard_rows(backend: Backend, base: i64) -> Vec<Vec<Value>> {
    let mysql = backend == Backend::Mysql;
    let row = |id: i64, vals: Vec<Value>| {
        assert_eq!(vals.len(), COLUMNS.len());
        let mut r = vec![Value::Int(base + id)];
        r.extend(vals);
        r
    };
    vec![
        // Upper limits, 4-byte characters, a zoned timestamp east of UTC.
        row(
            1,
            vec![
                Value::Int(i64::MAX),
                dec("9999999999999999999999999999.9999999999"),
                text("Grüße 👋🏽 e\u{301} 日本 𝄞"),
                text(&"😀".repeat(50)),
                Value::Bool(true),
                Value::Bytes((0..=255u8).collect()),
                date("1969-07-20"),
                time("23:59:59.999999"),
                ts("2038-01-19 03:14:08.123456"),
                tstz("2024-03-10 12:00:00.000001+05:30"),
                uuid("6f1c8f9a-2b3c-4d5e-8f90-a1b2c3d4e5f6"),
                uuid("ffffffff-ffff-ffff-ffff-ffffffffffff"),
                json(
                    r#"{"a": [1, {"b": "ü 👋"}], "n": null, "deep": {"x": {"y": [true, false, 1.5, -0.25e-3]}}, "esc": "quote \" backslash \\ newline \n tab \t \u00e9"}"#,
                ),
                Value::Float(0.1),
            ],
        ),
        // Lower limits, empty values, dates before 1970 and far after 2038.
        row(
            2,
            vec![
                Value::Int(i64::MIN),
                dec("-9999999999999999999999999999.9999999999"),
                text(""),
                text(""),
                Value::Bool(false),
                Value::Bytes(Vec::new()),
                date("9999-12-31"),
                time("00:00:00"),
                ts("1900-01-01 00:00:00"),
                if mysql {
                    // 1970-01-01 00:00:01.5 UTC, the type's lower end.
                    tstz("1969-12-31 16:00:01.5-08:00")
                } else {
                    tstz("1950-06-01 23:30:00-08:00")
                },
                uuid("00000000-0000-0000-0000-000000000000"),
                uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                json("[]"),
                Value::Float(-1.5e300),
            ],
        ),
        // The text "null" and the JSON document null: neither is NULL.
        row(
            3,
            vec![
                Value::Int(0),
                dec("0.0000000001"),
                text("null"),
                text("NULL"),
                Value::Bool(true),
                Value::Bytes(vec![0]),
                date("1900-02-28"),
                time("12:34:56.000001"),
                ts("9999-12-31 23:59:59.999999"),
                if mysql {
                    // 2038-01-19 03:14:07.999999 UTC, the type's upper end.
                    tstz("2038-01-19 08:44:07.999999+05:30")
                } else {
                    tstz("2100-02-28 23:59:59.999999+14:00")
                },
                uuid("ffffffff-ffff-ffff-ffff-ffffffffffff"),
                uuid("00000000-0000-0000-0000-000000000000"),
                json("null"),
                Value::Float(1e-300),
            ],
        ),
        // SQL NULL everywhere.
        row(4, vec![Value::Null; COLUMNS.len()]),
        // Combining characters, quotes and backslashes, the large blob.
        row(
            5,
            vec![
                Value::Int(-1),
                dec("-0.0000000001"),
                text(
                    "a\u{301}\u{302}\u{323} 👨\u{200d}👩\u{200d}👧\u{200d}👦 O'Brien C:\\temp\\new\n\ttab \u{feff}\u{200b}",
                ),
                text(&"e\u{301}".repeat(25)),
                Value::Bool(false),
                Value::Bytes(big_blob()),
                date("2038-01-20"),
                time("00:00:00.5"),
                ts("1969-12-31 23:59:59.999999"),
                tstz("2000-01-01 00:00:00-09:30"),
                uuid("123e4567-e89b-42d3-a456-426614174000"),
                uuid("6f1c8f9a-2b3c-4d5e-8f90-a1b2c3d4e5f6"),
                json(r#""just a string 👋""#),
                Value::Float(f64::MAX),
            ],
        ),
    ]
}

/// How an application writes a value into its SQLite edge file (the forms
/// of docs/design.md's type table).
fn edge_storage(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Null => S::Null,
        Value::Bool(b) => S::Integer(i64::from(*b)),
        Value::Int(i) => S::Integer(*i),
        Value::Float(f) => S::Real(*f),
        Value::Decimal(s) | Value::Text(s) | Value::Json(s) => S::Text(s.clone()),
        Value::Bytes(b) => S::Blob(b.clone()),
        Value::Date(d) => S::Text(d.format("%Y-%m-%d").to_string()),
        Value::Time(t) => S::Text(t.format("%H:%M:%S%.f").to_string()),
        Value::Timestamp(t) => S::Text(edgesync_core::value::format_timestamp(t)),
        Value::TimestampTz(t) => S::Text(edgesync_core::value::format_timestamptz(t)),
        Value::Uuid(u) => S::Text(u.hyphenated().to_string()),
    }
}

fn write_on_edge(env: &Env, node: &str, rows: &[Vec<Value>]) {
    insert_bound(&env.edge(node), &format!("edge {node}"), rows);
}

/// Insert `rows` into a SQLite file with bound values.
fn insert_bound(c: &rusqlite::Connection, what: &str, rows: &[Vec<Value>]) {
    let marks: Vec<String> = (1..=COLUMNS.len() + 1).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO types (id, {}) VALUES ({})",
        cols(),
        marks.join(", ")
    );
    for r in rows {
        let params: Vec<rusqlite::types::Value> = r.iter().map(edge_storage).collect();
        c.execute(&sql, rusqlite::params_from_iter(params))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

/// The edge's rows with `ids`, decoded by the declared types.
fn read_edge(env: &Env, node: &str, ids: &[i64]) -> Vec<Vec<Value>> {
    let c = env.edge(node);
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let mut st = c
        .prepare(&format!(
            "SELECT id, {} FROM types WHERE id IN ({}) ORDER BY id",
            cols(),
            list.join(", ")
        ))
        .expect("prepare");
    let mut q = st.query([]).expect("query");
    let mut out = Vec::new();
    while let Some(r) = q.next().expect("row") {
        let mut row = vec![Value::Int(r.get(0).expect("id"))];
        for (k, (name, ty)) in COLUMNS.iter().enumerate() {
            let raw = r.get_ref(k + 1).expect("value");
            row.push(
                edgesync_sqlite::types::from_sql(raw, *ty)
                    .unwrap_or_else(|e| panic!("edge {node} column {name}: {e}")),
            );
        }
        out.push(row);
    }
    out
}

/// The central's rows with `ids`, read as text by the test's own client and
/// parsed by each column's type.
async fn read_central(env: &Env, ids: &[i64]) -> Vec<Vec<Value>> {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let sql = format!(
        "SELECT id, {} FROM types WHERE id IN ({}) ORDER BY id",
        cols(),
        list.join(", ")
    );
    env.central_query_nullable(Sql::all(&sql))
        .await
        .into_iter()
        .map(|r| {
            let id = r[0].as_deref().expect("id").parse().expect("id");
            let mut row = vec![Value::Int(id)];
            for (k, (name, ty)) in COLUMNS.iter().enumerate() {
                let v = match r[k + 1].as_deref() {
                    None => Some(Value::Null),
                    Some(s) => parse_central(env.backend, *ty, s),
                };
                row.push(v.unwrap_or_else(|| {
                    panic!("central column {name}: cannot read {:?} as {ty}", r[k + 1])
                }));
            }
            row
        })
        .collect()
}

/// A central value as `CentralConn::query` renders it, by column type.
fn parse_central(backend: Backend, ty: ColType, s: &str) -> Option<Value> {
    use edgesync_core::value::{parse_time, parse_timestamp, parse_timestamptz};
    Some(match ty {
        ColType::Int => Value::Int(s.parse().ok()?),
        ColType::Bool => match s {
            "1" => Value::Bool(true),
            "0" => Value::Bool(false),
            _ => return None,
        },
        ColType::Float => Value::Float(s.parse().ok()?),
        ColType::Decimal { .. } => Value::Decimal(s.to_string()),
        ColType::Text { .. } => Value::Text(s.to_string()),
        ColType::Json => Value::Json(s.to_string()),
        ColType::Bytes => Value::Bytes(edgesync_core::value::hex_bytes::decode(
            s.strip_prefix("\\x")?,
        )?),
        ColType::Date => Value::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?),
        ColType::Time => Value::Time(parse_time(s)?),
        ColType::Timestamp => Value::Timestamp(parse_timestamp(s)?),
        // MySQL shows the instant in the session's time zone, which the
        // test client sets to UTC.
        ColType::TimestampTz if backend == Backend::Mysql => {
            Value::TimestampTz(parse_timestamp(s)?.and_utc().fixed_offset())
        }
        ColType::TimestampTz => Value::TimestampTz(parse_timestamptz(s)?),
        ColType::Uuid => Value::Uuid(uuid::Uuid::parse_str(s).ok()?),
    })
}

/// Exact equality, except JSON as a document (`Value`'s own equality
/// already compares zoned timestamps by instant).
fn same(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Json(a), Value::Json(b)) => {
            serde_json::from_str::<serde_json::Value>(a).ok()
                == serde_json::from_str::<serde_json::Value>(b).ok()
        }
        _ => want == have,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Bytes(b) if b.len() > 64 => format!(
            "Bytes(len {}, starts {:02x?})",
            b.len(),
            &b[..16.min(b.len())]
        ),
        other => format!("{other:?}"),
    }
}

/// Every difference between `want` and `have`, naming row and column.
fn differences(where_: &str, want: &[Vec<Value>], have: &[Vec<Value>]) -> Vec<String> {
    let id = |r: &Vec<Value>| match r.first() {
        Some(Value::Int(i)) => *i,
        _ => i64::MIN,
    };
    let mut out = Vec::new();
    for w in want {
        let Some(h) = have.iter().find(|h| id(h) == id(w)) else {
            out.push(format!("{where_}: row {} is missing", id(w)));
            continue;
        };
        for (k, (name, _)) in COLUMNS.iter().enumerate() {
            if !same(&w[k + 1], &h[k + 1]) {
                out.push(format!(
                    "{where_}: row {} column {name}: want {}, have {}",
                    id(w),
                    show(&w[k + 1]),
                    show(&h[k + 1])
                ));
            }
        }
    }
    for h in have {
        if !want.iter().any(|w| id(w) == id(h)) {
            out.push(format!("{where_}: unexpected row {}", id(h)));
        }
    }
    out
}

/// A value as a SQL literal of `backend`, the way an application on the
/// central writes it. MySQL writes zoned timestamps in the session's time
/// zone, which the script sets to +05:30 (see [`central_insert`]).
fn literal(backend: Backend, v: &Value) -> String {
    let quote = |s: &str| match backend {
        // MySQL's default sql_mode treats backslashes as escapes.
        Backend::Mysql => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
        _ => format!("'{}'", s.replace('\'', "''")),
    };
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => match backend {
            Backend::Postgres => b.to_string(),
            _ => i64::from(*b).to_string(),
        },
        Value::Int(i) => i.to_string(),
        // `{:e}` is the shortest mantissa that reads back exactly; every
        // backend reads it as a double.
        Value::Float(f) => format!("{f:e}"),
        Value::Decimal(d) => match backend {
            Backend::Sqlite => quote(d),
            _ => d.clone(),
        },
        Value::Text(s) | Value::Json(s) => quote(s),
        Value::Bytes(b) => {
            let hex = edgesync_core::value::hex_bytes::encode(b);
            match backend {
                Backend::Postgres => format!("'\\x{hex}'::bytea"),
                _ => format!("X'{hex}'"),
            }
        }
        Value::Date(_) | Value::Time(_) | Value::Timestamp(_) | Value::Uuid(_) => {
            match edge_storage(v) {
                rusqlite::types::Value::Text(s) => quote(&s),
                other => unreachable!("{other:?}"),
            }
        }
        Value::TimestampTz(t) => match backend {
            Backend::Mysql => {
                let local = t.with_timezone(&session_zone()).naive_local();
                quote(&edgesync_core::value::format_timestamp(&local))
            }
            _ => quote(&edgesync_core::value::format_timestamptz(t)),
        },
    }
}

/// The time zone of the MySQL application session that writes the central
/// rows: not UTC, so that a wrong session zone in the adapter would show.
fn session_zone() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 1800).expect("offset")
}

/// Insert `rows` on the central as an application: one `INSERT` of SQL
/// literals per row; a blob over 1 MB is bound as a parameter instead (a
/// MySQL statement must fit in `max_allowed_packet`). A SQLite central is
/// written with bound values, as an SQLite application does: SQLite's own
/// reading of float literals is not exact (`-1.5e300` becomes
/// `-1.4999999999999998e300`).
async fn central_insert(env: &Env, rows: &[Vec<Value>]) {
    let b = env.backend;
    if b == Backend::Sqlite {
        let c = rusqlite::Connection::open(env.central_sqlite_path()).expect("central");
        return insert_bound(&c, "central", rows);
    }
    let mut c = env.central_conn().await;
    if b == Backend::Mysql {
        c.run(Sql::all("SET time_zone = '+05:30'"))
            .await
            .expect("session time zone");
    }
    let data_col = 1 + COLUMNS
        .iter()
        .position(|(n, _)| *n == "data")
        .expect("data");
    for r in rows {
        let big = match &r[data_col] {
            Value::Bytes(bytes) if bytes.len() > 1_000_000 => Some(bytes),
            _ => None,
        };
        let values: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(k, v)| {
                if k == data_col && big.is_some() {
                    "NULL".to_string()
                } else {
                    literal(b, v)
                }
            })
            .collect();
        let sql = format!(
            "INSERT INTO types (id, {}) VALUES ({})",
            cols(),
            values.join(", ")
        );
        if let Err(e) = c.run(Sql::all(&sql)).await {
            panic!("central insert: {e}\n{}", &sql[..sql.len().min(2000)]);
        }
        if let Some(bytes) = big {
            let id = match &r[0] {
                Value::Int(i) => *i,
                other => panic!("id {other:?}"),
            };
            let update = format!("UPDATE types SET data = ? WHERE id = {id}");
            c.run_with_bytes(
                Sql {
                    postgres: &format!("UPDATE types SET data = $1 WHERE id = {id}"),
                    ..Sql::all(&update)
                },
                bytes,
            )
            .await
            .expect("central blob");
        }
    }
    c.close().await;
}

fn ids(rows: &[Vec<Value>]) -> Vec<i64> {
    rows.iter()
        .map(|r| match &r[0] {
            Value::Int(i) => *i,
            other => panic!("id {other:?}"),
        })
        .collect()
}

/// Every type, every hard value: edge a -> central -> edge b, and central ->
/// edges a and b.
async fn every_type_and_hard_value_survives_every_path(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &DDL).await;
    env.write_config(TABLES, "");
    env.init().await;
    let mut problems = Vec::new();

    // 1. edge a -> central -> edge b
    let from_edge = hard_rows(backend, 0);
    write_on_edge(&env, "a", &from_edge);
    problems.extend(differences(
        "edge a as written",
        &from_edge,
        &read_edge(&env, "a", &ids(&from_edge)),
    ));
    env.sync_node("a").await;
    env.sync_node("b").await;
    problems.extend(differences(
        "central, pushed from edge a",
        &from_edge,
        &read_central(&env, &ids(&from_edge)).await,
    ));
    problems.extend(differences(
        "edge b, pulled after edge a's push",
        &from_edge,
        &read_edge(&env, "b", &ids(&from_edge)),
    ));

    // 2. central -> edges a and b
    let from_central = hard_rows(backend, 100);
    central_insert(&env, &from_central).await;
    problems.extend(differences(
        "central as written",
        &from_central,
        &read_central(&env, &ids(&from_central)).await,
    ));
    env.sync_all(1).await;
    for node in ["a", "b"] {
        problems.extend(differences(
            &format!("edge {node}, pulled from the central"),
            &from_central,
            &read_edge(&env, node, &ids(&from_central)),
        ));
    }

    // 3. Nothing moves again: the values read back are the values written.
    for node in ["a", "b"] {
        for s in env.sync_node(node).await {
            if (s.pushed, s.pulled, s.conflicts) != (0, 0, 0) {
                problems.push(format!("an idle sync of {node} moved rows: {s:?}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{backend:?} central: {} values differ:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// MySQL/MariaDB: a zoned timestamp outside `TIMESTAMP`'s range cannot be
/// stored. The push must refuse it — the row quarantined on the edge with an
/// error naming the column — and not store another instant. (The other
/// backends hold these values: there they must arrive exactly.)
async fn a_zoned_timestamp_outside_the_central_range_is_refused_not_changed(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &DDL).await;
    env.write_config(TABLES, "");
    env.init().await;
    let row = |id: i64, at: &str| {
        let mut r = vec![Value::Int(id)];
        r.extend(COLUMNS.iter().map(|(name, _)| match *name {
            "tstz" => tstz(at),
            _ => Value::Null,
        }));
        r
    };
    let rows = [
        row(1, "1950-06-01 23:30:00-08:00"),
        row(2, "2100-02-28 23:59:59.999999+14:00"),
        row(3, "2024-03-10 12:00:00.000001+05:30"),
    ];
    write_on_edge(&env, "a", &rows);
    let stats = env.sync_node("a").await;
    let central = read_central(&env, &[1, 2, 3]).await;
    let want_quarantined = if backend == Backend::Mysql { 2 } else { 0 };
    assert_eq!(
        (stats[0].pushed, stats[0].quarantined),
        (3 - want_quarantined, want_quarantined),
        "{stats:?}"
    );
    if want_quarantined == 0 {
        assert!(differences("central", &rows, &central).is_empty());
        return;
    }
    assert_eq!(ids(&central), vec![3], "only the storable row arrives");
    assert!(differences("central", &rows[2..], &central).is_empty());
    let parked = query_text(
        &env.edge("a"),
        "SELECT key, error FROM es_quarantine ORDER BY key",
    );
    assert_eq!(parked.len(), 2, "{parked:?}");
    for p in &parked {
        assert!(
            p[1].contains("tstz"),
            "the refusal must name the column: {p:?}"
        );
    }
    // The edge keeps what the application wrote.
    assert!(differences("edge a", &rows, &read_edge(&env, "a", &[1, 2, 3])).is_empty());
}

// ---------------------------------------------------------------------------
// Mappings that would lose data: refused by check-config and init-sync,
// naming the column, with nothing changed anywhere.
// ---------------------------------------------------------------------------

const LOSSY: Sql = Sql {
    sqlite: "CREATE TABLE money (id INTEGER PRIMARY KEY, amount DECIMAL_TEXT(12,2));
             CREATE TABLE ratio (id INTEGER PRIMARY KEY, r REAL);
             CREATE TABLE events (id INTEGER PRIMARY KEY, at TIMESTAMP_TEXT);
             CREATE TABLE codes (id INTEGER PRIMARY KEY, code VARCHAR(10));",
    postgres: "CREATE TABLE money (id bigint PRIMARY KEY, amount numeric(12,2));
               CREATE TABLE ratio (id bigint PRIMARY KEY, r double precision);
               CREATE TABLE events (id bigint PRIMARY KEY, at timestamp(6));
               CREATE TABLE codes (id bigint PRIMARY KEY, code varchar(10));",
    mysql: "CREATE TABLE money (id bigint PRIMARY KEY, amount decimal(12,2));
            CREATE TABLE ratio (id bigint PRIMARY KEY, r double);
            CREATE TABLE events (id bigint PRIMARY KEY, at datetime(6));
            CREATE TABLE codes (id bigint PRIMARY KEY, code varchar(10));",
};

/// An edge table as the application made it, then `init-sync` with it must
/// be refused naming `column`.
async fn lossy_edge_column_is_refused(backend: Backend, table: &str, edge_ddl: &str, column: &str) {
    let mut env = Env::new(backend, &["a"], &LOSSY).await;
    env.edge("a").execute_batch(edge_ddl).expect("edge table");
    refused(
        &mut env,
        &format!("[[table]]\nname = \"{table}\"\n"),
        &[&format!("column {column}"), table],
    )
    .await;
}

async fn a_decimal_is_never_mapped_onto_a_float(backend: Backend) {
    // The edge's decimal would be pushed into the central's double ...
    lossy_edge_column_is_refused(
        backend,
        "ratio",
        "CREATE TABLE ratio (id INTEGER PRIMARY KEY, r DECIMAL_TEXT(12,2));",
        "r",
    )
    .await;
    // ... and the central's decimal pulled into the edge's REAL.
    lossy_edge_column_is_refused(
        backend,
        "money",
        "CREATE TABLE money (id INTEGER PRIMARY KEY, amount REAL);",
        "amount",
    )
    .await;
}

async fn a_zoned_timestamp_is_never_mapped_onto_a_zoneless_one(backend: Backend) {
    lossy_edge_column_is_refused(
        backend,
        "events",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, at TIMESTAMPTZ_TEXT);",
        "at",
    )
    .await;
}

async fn text_longer_than_the_central_column_is_refused(backend: Backend) {
    for declared in ["VARCHAR(50)", "TEXT"] {
        lossy_edge_column_is_refused(
            backend,
            "codes",
            &format!("CREATE TABLE codes (id INTEGER PRIMARY KEY, code {declared});"),
            "code",
        )
        .await;
    }
}

for_each_backend!(
    every_type_and_hard_value_survives_every_path,
    a_zoned_timestamp_outside_the_central_range_is_refused_not_changed,
    a_decimal_is_never_mapped_onto_a_float,
    a_zoned_timestamp_is_never_mapped_onto_a_zoneless_one,
    text_longer_than_the_central_column_is_refused,
);
