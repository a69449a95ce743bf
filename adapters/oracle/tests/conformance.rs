//! Conformance suite against a real Oracle (19c+), with Oracle Instant Client
//! installed on this machine:
//!
//! ```sh
//! EDGESYNC_TEST_ORACLE_URL='oracle://system:secret@127.0.0.1:1521/FREEPDB1' \
//!     cargo test -p edgesync-oracle --test conformance
//! ```
//!
//! The URL names a DBA account (e.g. SYSTEM on a test database); every test
//! creates its own user/schema (`ES_T_<uuid>`, with the grants edgesync
//! documents: EXECUTE on DBMS_FLASHBACK, SELECT on V_$TRANSACTION) and drops
//! it when done, so tests run in parallel. Without the variable each test
//! prints one line saying how to run it and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use edgesync_core::{
    Central, Change, ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, ErrorKind,
    PushBatch, PushOutcome, QualifiedName, TableMapping, Value,
};
use edgesync_oracle::OracleCentral;

const VAR: &str = "EDGESYNC_TEST_ORACLE_URL";

fn base_url() -> Option<String> {
    match std::env::var(VAR) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            println!("skipped: set {VAR} to run against a real Oracle");
            None
        }
    }
}

/// A schema of its own for one test, dropped when the test ends.
struct TestDb {
    admin_url: String,
    user: String,
    password: String,
    connect_string: String,
    central: Option<OracleCentral>,
}

impl TestDb {
    async fn new() -> Option<TestDb> {
        let admin_url = base_url()?;
        let user = format!("ES_T_{}", uuid::Uuid::new_v4().simple()).to_uppercase();
        let password = format!("Pw_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let admin = OracleCentral::connect(&admin_url, None)
            .await
            .expect("admin connect");
        admin
            .execute_sql(vec![
                format!("CREATE USER {user} IDENTIFIED BY \"{password}\" QUOTA UNLIMITED ON USERS"),
                format!(
                    "GRANT CREATE SESSION, CREATE TABLE, CREATE SEQUENCE, CREATE PROCEDURE, \
                     CREATE TRIGGER TO {user}"
                ),
                format!("GRANT EXECUTE ON SYS.DBMS_FLASHBACK TO {user}"),
                format!("GRANT SELECT ON SYS.V_$TRANSACTION TO {user}"),
            ])
            .await
            .expect("create the test user");
        let place = admin_url.rsplit_once('@').unwrap().1;
        let url = format!("oracle://{user}:{password}@{place}");
        let target = edgesync_oracle::parse_url(&url).unwrap();
        let central = OracleCentral::connect(&url, None).await.expect("connect");
        assert_eq!(central.default_owner(), user);
        Some(TestDb {
            admin_url,
            user,
            password,
            connect_string: target.connect_string,
            central: Some(central),
        })
    }

    fn c(&self) -> &OracleCentral {
        self.central.as_ref().unwrap()
    }

    /// A session of the "application", on a blocking thread's terms.
    fn app(&self) -> oracle::Connection {
        oracle::Connection::connect(&self.user, &self.password, &self.connect_string)
            .expect("application session")
    }

    async fn exec(&self, sql: &str) {
        self.c()
            .execute_sql(vec![sql.to_string()])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:#}"));
    }

    async fn scalar(&self, sql: &str) -> String {
        self.c()
            .query_text(sql.to_string())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:#}"))
            .into_iter()
            .next()
            .flatten()
            .unwrap_or_default()
    }

    async fn init(&self, tables: &[TableMapping]) {
        let plan = self.c().plan_init(tables).await.expect("plan_init");
        self.c().execute(&plan).await.expect("execute init");
        let again = self.c().plan_init(tables).await.expect("plan again");
        assert!(again.is_empty(), "second plan not empty: {again:#?}");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        drop(self.central.take());
        let (user, url) = (self.user.clone(), self.admin_url.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let admin = OracleCentral::connect(&url, None).await.expect("admin");
                // The test's sessions close as their worker threads end.
                for _ in 0..20 {
                    if admin
                        .execute_sql(vec![format!("DROP USER {user} CASCADE")])
                        .await
                        .is_ok()
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                panic!("could not drop test user {user}");
            });
        })
        .join()
        .ok();
    }
}

fn mapping(
    table: &str,
    cols: &[(&str, ColType)],
    key: &[usize],
    conflict: ConflictPolicy,
    deletes: DeleteMode,
) -> TableMapping {
    TableMapping {
        edge: table.to_lowercase(),
        central: QualifiedName::parse(table),
        columns: cols
            .iter()
            .map(|(n, t)| ColumnMap {
                edge: n.to_lowercase(),
                central: n.to_string(),
                ty: *t,
                edge_ty: *t,
                nullable: true,
            })
            .collect(),
        key: key.to_vec(),
        direction: Direction::Both,
        conflict,
        deletes,
    }
}

async fn items(db: &TestDb, conflict: ConflictPolicy, deletes: DeleteMode) -> TableMapping {
    db.exec(
        "CREATE TABLE items (id NUMBER(18) PRIMARY KEY, name NVARCHAR2(100) NOT NULL,
                             qty NUMBER(9), price NUMBER(12,2))",
    )
    .await;
    let m = mapping(
        "ITEMS",
        &[
            ("ID", ColType::Int),
            ("NAME", ColType::Text { max_len: Some(100) }),
            ("QTY", ColType::Int),
            (
                "PRICE",
                ColType::Decimal {
                    precision: Some(12),
                    scale: Some(2),
                },
            ),
        ],
        &[0],
        conflict,
        deletes,
    );
    db.init(std::slice::from_ref(&m)).await;
    m
}

fn item(id: i64, name: &str, qty: i64, price: &str) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Text(name.into()),
        Value::Int(qty),
        Value::Decimal(price.into()),
    ]
}

fn upsert(values: Vec<Value>, version: i64, base: Option<i64>) -> Change {
    Change {
        key: vec![values[0].clone()],
        values: Some(values),
        deleted: false,
        version,
        base,
        hlc: edgesync_core::hlc::pack(1_700_000_000_000, version as u16),
    }
}

fn batch(changes: Vec<Change>) -> PushBatch {
    PushBatch {
        hi: changes.iter().map(|c| c.version).max().unwrap_or(0),
        changes,
        bases: Vec::new(),
        fingerprint: None,
    }
}

fn applied(o: &PushOutcome) -> i64 {
    match o {
        PushOutcome::Applied { version } => *version,
        other => panic!("not applied: {other:?}"),
    }
}

async fn pull_pass(
    c: &OracleCentral,
    node: &str,
    t: &TableMapping,
    token: Option<String>,
    limit: usize,
) -> (Vec<Change>, String) {
    let mut token = token;
    let mut all = Vec::new();
    for _ in 0..10_000 {
        let page = c
            .pull(node, t, token.as_deref(), limit)
            .await
            .expect("pull");
        assert!(page.changes.len() <= limit);
        all.extend(page.changes);
        token = Some(page.token);
        if page.done {
            return (all, token.unwrap());
        }
    }
    panic!("pull pass did not end");
}

async fn shape(db: &TestDb, table: &str) -> String {
    db.scalar(&format!(
        "SELECT LISTAGG(x, '; ') WITHIN GROUP (ORDER BY x) FROM (
           SELECT 'col ' || column_name || ' ' || data_type || ' ' || data_length AS x
             FROM user_tab_cols WHERE table_name = '{table}'
           UNION ALL SELECT 'trg ' || trigger_name FROM user_triggers WHERE table_name = '{table}'
           UNION ALL SELECT 'idx ' || index_name FROM user_indexes WHERE table_name = '{table}'
           UNION ALL SELECT 'con ' || constraint_type FROM user_constraints WHERE table_name = '{table}')"
    ))
    .await
}

#[tokio::test]
async fn provisioning_is_idempotent_and_deinit_is_exact() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    db.exec(
        "CREATE TABLE \"Order Lines\" (order_id NUMBER(18) NOT NULL, line_no NUMBER(9) NOT NULL,
             note NVARCHAR2(50), CONSTRAINT pk_ol PRIMARY KEY (order_id, line_no))",
    )
    .await;
    let before = shape(&db, "Order Lines").await;
    let m = mapping(
        "Order Lines",
        &[
            ("ORDER_ID", ColType::Int),
            ("LINE_NO", ColType::Int),
            ("NOTE", ColType::Text { max_len: Some(50) }),
        ],
        &[0, 1],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    db.init(std::slice::from_ref(&m)).await;
    assert_ne!(shape(&db, "Order Lines").await, before);
    let plan = db
        .c()
        .plan_deinit(std::slice::from_ref(&m), true)
        .await
        .unwrap();
    db.c().execute(&plan).await.unwrap();
    assert_eq!(shape(&db, "Order Lines").await, before);
    assert_eq!(
        db.scalar("SELECT TO_CHAR(COUNT(*)) FROM user_objects WHERE object_name LIKE 'ES\\_%' ESCAPE '\\'")
            .await,
        "0"
    );
    assert!(db.c().plan_deinit(&[m], true).await.unwrap().is_empty());
}

#[tokio::test]
async fn push_replays_conflict_policies_and_empty_strings() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let first = batch(
        (1..=30)
            .map(|i| upsert(item(i, &format!("n{i}"), i, "1.50"), i, None))
            .collect(),
    );
    let r = db.c().push("edge-a", &m, &first).await.expect("push");
    assert_eq!((r.conflicts, r.replayed), (0, 0));
    let v1 = applied(&r.outcomes[0]);
    let again = db.c().push("edge-a", &m, &first).await.expect("replay");
    assert_eq!(
        (again.outcomes.clone(), again.replayed),
        (r.outcomes.clone(), 30)
    );

    db.exec("UPDATE items SET name = N'central' WHERE id = 1")
        .await;
    let r = db
        .c()
        .push(
            "edge-a",
            &m,
            &batch(vec![upsert(item(1, "edge", 9, "2.00"), 31, Some(v1))]),
        )
        .await
        .expect("conflict");
    assert_eq!(r.conflicts, 1);
    assert!(
        matches!(&r.outcomes[0], PushOutcome::Superseded { row: Some(c) }
        if c.values.as_ref().unwrap()[1] == Value::Text("central".into()))
    );
    assert_eq!(db.c().conflicts(true, 10).await.unwrap().len(), 1);

    db.exec("CREATE TABLE cw (id NUMBER(18) PRIMARY KEY, name NVARCHAR2(100) NOT NULL, qty NUMBER(9), price NUMBER(12,2))").await;
    let mut cw = m.clone();
    cw.central = QualifiedName::parse("CW");
    cw.conflict = ConflictPolicy::ClientWins;
    db.init(std::slice::from_ref(&cw)).await;
    let r = db
        .c()
        .push(
            "e",
            &cw,
            &batch(vec![upsert(item(1, "a", 1, "1"), 1, None)]),
        )
        .await
        .unwrap();
    let base = applied(&r.outcomes[0]);
    db.exec("UPDATE cw SET name = N'central' WHERE id = 1")
        .await;
    let r = db
        .c()
        .push(
            "e",
            &cw,
            &batch(vec![upsert(item(1, "edge", 1, "1"), 2, Some(base))]),
        )
        .await
        .unwrap();
    assert!(applied(&r.outcomes[0]) > base);
    assert_eq!(db.scalar("SELECT name FROM cw WHERE id = 1").await, "edge");

    // Oracle stores '' as NULL: refused, naming the column, nothing written.
    let e = db
        .c()
        .push("e", &cw, &batch(vec![upsert(item(5, "", 1, "1"), 3, None)]))
        .await
        .expect_err("empty text");
    assert_eq!(e.kind(), ErrorKind::Value);
    assert!(
        e.message().contains("NAME") && e.message().contains("''"),
        "{}",
        e.message()
    );
    assert_eq!(
        db.scalar("SELECT TO_CHAR(COUNT(*)) FROM cw WHERE id = 5")
            .await,
        "0"
    );
}

#[tokio::test]
async fn pull_pages_resume_skip_echoes_and_carry_tombstones() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    db.exec(
        "BEGIN FOR i IN 1 .. 25 LOOP
             INSERT INTO items (id, name, qty, price) VALUES (i, 'c' || i, i, 1.10);
         END LOOP; END;",
    )
    .await;
    let p1 = db.c().pull("e1", &m, None, 7).await.unwrap();
    let p2 = db.c().pull("e1", &m, Some(&p1.token), 7).await.unwrap();
    let (rest, token) = pull_pass(db.c(), "e1", &m, Some(p2.token.clone()), 7).await;
    let keys: BTreeSet<i64> = p1
        .changes
        .iter()
        .chain(&p2.changes)
        .chain(&rest)
        .map(|c| match c.key[0] {
            Value::Int(i) => i,
            _ => panic!(),
        })
        .collect();
    assert_eq!(keys, (1..=25).collect());
    assert_eq!(
        rest.last().unwrap().values.as_ref().unwrap()[3],
        Value::Decimal("1.10".into())
    );
    let (none, token) = pull_pass(db.c(), "e1", &m, Some(token), 7).await;
    assert!(none.is_empty(), "{none:?}");
    db.c()
        .push(
            "e1",
            &m,
            &batch(vec![upsert(item(100, "mine", 1, "1"), 1, None)]),
        )
        .await
        .unwrap();
    db.exec("DELETE FROM items WHERE id = 3").await;
    let (e1, _) = pull_pass(db.c(), "e1", &m, Some(token.clone()), 7).await;
    assert!(e1.iter().all(|c| c.key[0] != Value::Int(100)), "{e1:?}");
    assert!(e1.iter().any(|c| c.key[0] == Value::Int(3) && c.deleted));
    let (e2, _) = pull_pass(db.c(), "e2", &m, Some(token), 7).await;
    assert!(e2.iter().any(|c| c.key[0] == Value::Int(100)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_commits_late_is_delivered() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let (_, token) = pull_pass(db.c(), "e", &m, None, 10).await;
    let (wrote_tx, wrote) = mpsc::channel::<()>();
    let (go_tx, go) = mpsc::channel::<()>();
    let early = db.app();
    let writer = std::thread::spawn(move || {
        early
            .execute("INSERT INTO items (id, name) VALUES (1, N'early')", &[])
            .unwrap();
        wrote_tx.send(()).unwrap();
        go.recv().unwrap();
        early.commit().unwrap();
    });
    wrote.recv().unwrap();
    db.exec("INSERT INTO items (id, name) VALUES (2, N'late')")
        .await;
    let (first, token) = pull_pass(db.c(), "e", &m, Some(token), 10).await;
    assert!(first.iter().any(|c| c.key[0] == Value::Int(2)));
    assert!(first.iter().all(|c| c.key[0] != Value::Int(1)));
    go_tx.send(()).unwrap();
    writer.join().unwrap();
    let (second, _) = pull_pass(db.c(), "e", &m, Some(token), 10).await;
    assert!(
        second.iter().any(|c| c.key[0] == Value::Int(1)),
        "{second:?}"
    );
}

fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_writers_and_a_tight_pull_loop_lose_nothing() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let committed: Arc<Mutex<BTreeMap<i64, i64>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8i64 {
        let conn = db.app();
        let committed = committed.clone();
        writers.push(std::thread::spawn(move || {
            let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ (w as u64 + 1);
            for r in 0..12i64 {
                let id = w * 1000 + r;
                conn.execute(
                    "INSERT INTO items (id, name, qty) VALUES (:1, N'w', :2)",
                    &[&id, &r],
                )
                .unwrap();
                if r > 0 {
                    conn.execute(
                        "UPDATE items SET qty = :1 WHERE id = :2",
                        &[&(100 + r), &(id - 1)],
                    )
                    .unwrap();
                }
                std::thread::sleep(Duration::from_millis(next_rand(&mut seed) % 201));
                if w < 2 && r % 3 == 1 {
                    conn.rollback().unwrap();
                } else {
                    conn.commit().unwrap();
                    let mut c = committed.lock().unwrap();
                    c.insert(id, r);
                    if r > 0 && c.contains_key(&(id - 1)) {
                        c.insert(id - 1, 100 + r);
                    }
                }
            }
        }));
    }
    let mut edge: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut apply = |changes: Vec<Change>| {
        for c in changes {
            let Value::Int(id) = c.key[0] else { panic!() };
            let Some(Value::Int(qty)) = c.values.as_ref().map(|v| v[2].clone()) else {
                panic!("{c:?}")
            };
            if edge.get(&id).is_none_or(|(v, _)| *v < c.version) {
                edge.insert(id, (c.version, qty));
            }
        }
    };
    let mut token: Option<String> = None;
    let mut pages = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        let page = db
            .c()
            .pull("reader", &m, token.as_deref(), 3)
            .await
            .unwrap();
        pages += 1;
        apply(page.changes);
        token = Some(page.token);
    }
    for w in writers {
        w.join().unwrap();
    }
    let (rest, _) = pull_pass(db.c(), "reader", &m, token, 3).await;
    apply(rest);
    assert!(pages > 10, "only {pages} pages");
    let pulled: BTreeMap<i64, i64> = edge.iter().map(|(k, (_, q))| (*k, *q)).collect();
    assert_eq!(pulled, committed.lock().unwrap().clone());
}

#[tokio::test]
async fn every_type_survives_a_round_trip() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    db.exec(
        "CREATE TABLE types (id RAW(16) PRIMARY KEY, b NUMBER(1) CHECK (b IN (0, 1)),
             i NUMBER(18), f BINARY_DOUBLE, d NUMBER(38,10), t NCLOB, tn NVARCHAR2(20),
             j NCLOB CHECK (j IS JSON), bin BLOB, ts TIMESTAMP(6),
             tz TIMESTAMP(6) WITH TIME ZONE, dt DATE)",
    )
    .await;
    let described = db
        .c()
        .describe(&QualifiedName::parse("types"))
        .await
        .unwrap()
        .unwrap();
    let cols: Vec<(&str, ColType)> = described
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.ty.clone().unwrap()))
        .collect();
    assert_eq!(cols[0].1, ColType::Uuid);
    assert_eq!(cols[1].1, ColType::Bool);
    assert_eq!(cols[7].1, ColType::Json);
    let m = mapping(
        "TYPES",
        &cols,
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    db.init(std::slice::from_ref(&m)).await;
    let ts = edgesync_core::value::parse_timestamp("1901-02-03 04:05:06.123456").unwrap();
    let tz = edgesync_core::value::parse_timestamptz("1969-07-20 20:17:40.5-05:30").unwrap();
    let day = edgesync_core::value::parse_timestamp("1960-01-01 12:00:00").unwrap();
    let rows = vec![
        vec![
            Value::Uuid(uuid::Uuid::parse_str("6F9619FF-8B86-D011-B42D-00C04FC964FF").unwrap()),
            Value::Bool(true),
            Value::Int(-999_999_999_999_999_999),
            Value::Float(0.1),
            Value::Decimal("-9999999999999999999999999999.9999999999".into()),
            Value::Text("añ😀'\"".into()),
            Value::Text("short".into()),
            Value::Json("{\"a\":[1,2]}".into()),
            Value::Bytes(vec![0, 255, 10]),
            Value::Timestamp(ts),
            Value::TimestampTz(tz),
            Value::Timestamp(day),
        ],
        vec![
            Value::Uuid(uuid::Uuid::new_v4()),
            Value::Bool(false),
            Value::Int(999_999_999_999_999_999),
            Value::Float(-1e300),
            Value::Decimal("9999999999999999999999999999.9999999999".into()),
            Value::Text("x".repeat(100_000)),
            Value::Null,
            Value::Null,
            Value::Bytes(vec![7; 70_000]),
            Value::Null,
            Value::Null,
            Value::Null,
        ],
    ];
    let b = batch(
        rows.iter()
            .enumerate()
            .map(|(i, r)| upsert(r.clone(), i as i64 + 1, None))
            .collect(),
    );
    db.c().push("edge", &m, &b).await.expect("push");
    assert_eq!(
        db.scalar("SELECT LOWER(RAWTOHEX(id)) FROM types WHERE b = 1")
            .await,
        "6f9619ff8b86d011b42d00c04fc964ff"
    );
    let (pulled, _) = pull_pass(db.c(), "other", &m, None, 10).await;
    for row in &rows {
        let got = pulled
            .iter()
            .find(|c| c.key[0] == row[0])
            .expect("row pulled");
        let values = got.values.as_ref().unwrap();
        for (k, (want, have)) in row.iter().zip(values).enumerate() {
            assert!(
                want.same_as(have),
                "column {}: {want:?} != {have:?}",
                m.columns[k].central
            );
        }
        if let (Value::TimestampTz(a), Value::TimestampTz(b)) = (&row[10], &values[10]) {
            assert_eq!(a.offset(), b.offset(), "offset kept");
        }
    }
    // A DATE keeps no fraction of a second: refused rather than rounded.
    let mut bad = rows[0].clone();
    bad[11] = Value::Timestamp(ts);
    let e = db
        .c()
        .push("edge", &m, &batch(vec![upsert(bad, 10, None)]))
        .await
        .expect_err("rounded");
    assert!(e.message().contains("DT"), "{}", e.message());
}
