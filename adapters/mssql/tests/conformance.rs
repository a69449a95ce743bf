//! Conformance suite against a real SQL Server (2017+):
//!
//! ```sh
//! EDGESYNC_TEST_MSSQL_URL='mssql://sa:Passw0rd!@127.0.0.1:1433/master?trust_server_certificate=true' \
//!     cargo test -p edgesync-mssql --test conformance
//! ```
//!
//! The URL names a login that may create and drop databases; every test
//! creates its own database (`es_t_<uuid>`) and drops it when done, so tests
//! run in parallel. Without the variable each test prints one line saying
//! how to run it and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgesync_core::{
    Central, Change, ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, PushBatch,
    PushOutcome, QualifiedName, TableMapping, Value,
};
use edgesync_mssql::MssqlCentral;

const VAR: &str = "EDGESYNC_TEST_MSSQL_URL";

fn base_url() -> Option<String> {
    match std::env::var(VAR) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            println!("skipped: set {VAR} to run against a real SQL Server");
            None
        }
    }
}

/// `url` with another database.
fn url_for(url: &str, db: &str) -> String {
    let (main, query) = url
        .split_once('?')
        .map_or((url, None), |(m, q)| (m, Some(q)));
    let scheme_end = main.find("://").unwrap() + 3;
    let main = match main[scheme_end..].find('/') {
        Some(i) => &main[..scheme_end + i],
        None => main,
    };
    match query {
        Some(q) => format!("{main}/{db}?{q}"),
        None => format!("{main}/{db}"),
    }
}

/// A database of its own for one test, dropped when the test ends.
struct TestDb {
    name: String,
    admin_url: String,
    /// What edgesync uses.
    central: MssqlCentral,
    /// What the "application" uses (its own pool of sessions).
    app: MssqlCentral,
}

impl TestDb {
    async fn new() -> Option<TestDb> {
        let admin_url = base_url()?;
        let name = format!("es_t_{}", uuid::Uuid::new_v4().simple());
        let admin = MssqlCentral::connect(&admin_url, None)
            .await
            .expect("admin connect");
        admin
            .execute_sql(&format!("CREATE DATABASE [{name}]"))
            .await
            .expect("create database");
        let url = url_for(&admin_url, &name);
        let central = MssqlCentral::connect(&url, None).await.expect("connect");
        let app = MssqlCentral::connect(&url, None)
            .await
            .expect("connect app");
        Some(TestDb {
            name,
            admin_url,
            central,
            app,
        })
    }

    async fn exec(&self, sql: &str) {
        self.app
            .execute_sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:#}"));
    }

    async fn scalar(&self, sql: &str) -> String {
        self.app
            .query_text(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:#}"))
            .into_iter()
            .next()
            .flatten()
            .unwrap_or_default()
    }

    async fn init(&self, tables: &[TableMapping]) {
        let plan = self.central.plan_init(tables).await.expect("plan_init");
        self.central.execute(&plan).await.expect("execute init");
        let again = self.central.plan_init(tables).await.expect("plan again");
        assert!(again.is_empty(), "second plan not empty: {again:#?}");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (name, url) = (self.name.clone(), self.admin_url.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let admin = MssqlCentral::connect(&url, None).await.expect("admin");
                admin
                    .execute_sql(&format!(
                        "ALTER DATABASE [{name}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; \
                         DROP DATABASE [{name}];"
                    ))
                    .await
                    .expect("drop database");
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
        edge: table.rsplit('.').next().unwrap().to_string(),
        central: QualifiedName::parse(table),
        columns: cols
            .iter()
            .map(|(n, t)| ColumnMap {
                edge: n.to_string(),
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

fn dec(p: u32, s: u32) -> ColType {
    ColType::Decimal {
        precision: Some(p),
        scale: Some(s),
    }
}

/// `dbo.items(id bigint primary key, name nvarchar(100), qty int, price decimal(12,2))`.
async fn items(db: &TestDb, conflict: ConflictPolicy, deletes: DeleteMode) -> TableMapping {
    db.exec(
        "CREATE TABLE dbo.items (id bigint PRIMARY KEY, name nvarchar(100) NOT NULL, qty int NULL,
                                 price decimal(12,2) NULL)",
    )
    .await;
    let m = mapping(
        "dbo.items",
        &[
            ("id", ColType::Int),
            ("name", ColType::Text { max_len: Some(100) }),
            ("qty", ColType::Int),
            ("price", dec(12, 2)),
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

fn delete(key: Value, version: i64, base: Option<i64>) -> Change {
    Change {
        key: vec![key],
        values: None,
        deleted: true,
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
    c: &MssqlCentral,
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

/// The catalog's view of a table: columns, constraints, indexes, triggers.
async fn shape(db: &TestDb, table: &str) -> String {
    db.scalar(&format!(
        "SELECT STRING_AGG(x, '; ') WITHIN GROUP (ORDER BY x) FROM (
           SELECT CONCAT('col ', name, ' ', TYPE_NAME(system_type_id), ' ', max_length) AS x
             FROM sys.columns WHERE object_id = OBJECT_ID(N'{table}')
           UNION ALL SELECT CONCAT('obj ', type, ' ', name) FROM sys.objects
             WHERE parent_object_id = OBJECT_ID(N'{table}')
           UNION ALL SELECT CONCAT('idx ', name) FROM sys.indexes
             WHERE object_id = OBJECT_ID(N'{table}') AND name IS NOT NULL) s"
    ))
    .await
}

#[tokio::test]
async fn provisioning_is_idempotent_and_deinit_is_exact() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    db.exec("CREATE SCHEMA sales").await;
    db.exec(
        "CREATE TABLE sales.[order lines] (order_id bigint NOT NULL, line_no int NOT NULL,
             note nvarchar(50) NULL, CONSTRAINT pk_ol PRIMARY KEY (order_id, line_no))",
    )
    .await;
    let before = shape(&db, "sales.[order lines]").await;
    let soft = mapping(
        "sales.order lines",
        &[
            ("order_id", ColType::Int),
            ("line_no", ColType::Int),
            ("note", ColType::Text { max_len: Some(50) }),
        ],
        &[0, 1],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    db.init(std::slice::from_ref(&soft)).await;
    assert_ne!(shape(&db, "sales.[order lines]").await, before);
    // Switching to hard deletes drops the INSTEAD OF trigger, nothing else.
    let mut hard = soft.clone();
    hard.deletes = DeleteMode::Hard;
    let plan = db
        .central
        .plan_init(std::slice::from_ref(&hard))
        .await
        .unwrap();
    assert_eq!(plan.len(), 1, "{plan:#?}");
    db.central.execute(&plan).await.unwrap();
    assert!(db
        .central
        .plan_init(&[hard.clone()])
        .await
        .unwrap()
        .is_empty());
    // An application DELETE on a hard table removes the row.
    db.exec("INSERT INTO sales.[order lines] (order_id, line_no, note) VALUES (1, 1, N'x')")
        .await;
    db.exec("DELETE FROM sales.[order lines]").await;
    assert_eq!(
        db.scalar("SELECT CAST(COUNT(*) AS nvarchar) FROM sales.[order lines]")
            .await,
        "0"
    );
    // Deinit leaves the table exactly as it was, and nothing of edgesync.
    let plan = db.central.plan_deinit(&[hard.clone()], true).await.unwrap();
    db.central.execute(&plan).await.unwrap();
    assert_eq!(shape(&db, "sales.[order lines]").await, before);
    assert_eq!(
        db.scalar("SELECT CAST(COUNT(*) AS nvarchar) FROM sys.objects WHERE name LIKE 'es[_]%'")
            .await,
        "0"
    );
    assert!(db
        .central
        .plan_deinit(&[hard], true)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn push_replays_and_conflict_policies() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let first = batch(
        (1..=30)
            .map(|i| upsert(item(i, &format!("n{i}"), i, "1.50"), i, None))
            .collect(),
    );
    let r = db.central.push("edge-a", &m, &first).await.expect("push");
    assert_eq!((r.conflicts, r.replayed, r.outcomes.len()), (0, 0, 30));
    let v1 = applied(&r.outcomes[0]);
    // A replay answers the same and writes nothing.
    let dump = db.scalar("SELECT STRING_AGG(CONCAT(id, ':', name, ':', price, ':', CAST(es_ver AS bigint)), ',') WITHIN GROUP (ORDER BY id) FROM dbo.items").await;
    let again = db.central.push("edge-a", &m, &first).await.expect("replay");
    assert_eq!(
        (again.outcomes.clone(), again.replayed),
        (r.outcomes.clone(), 30)
    );
    assert_eq!(db.scalar("SELECT STRING_AGG(CONCAT(id, ':', name, ':', price, ':', CAST(es_ver AS bigint)), ',') WITHIN GROUP (ORDER BY id) FROM dbo.items").await, dump);

    // server-wins: a central write since the edge's base wins, logged.
    db.exec("UPDATE dbo.items SET name = N'central' WHERE id = 1")
        .await;
    let r = db
        .central
        .push(
            "edge-a",
            &m,
            &batch(vec![upsert(item(1, "edge", 9, "2.00"), 31, Some(v1))]),
        )
        .await
        .expect("push conflict");
    assert_eq!(r.conflicts, 1);
    match &r.outcomes[0] {
        PushOutcome::Superseded { row: Some(c) } => {
            assert_eq!(c.values.as_ref().unwrap()[1], Value::Text("central".into()))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(db.central.conflicts(true, 10).await.unwrap().len(), 1);

    // client-wins on another table: the edge's write is applied.
    db.exec("CREATE TABLE dbo.cw (id bigint PRIMARY KEY, name nvarchar(100) NOT NULL, qty int NULL, price decimal(12,2) NULL)").await;
    let mut cw = m.clone();
    cw.central = QualifiedName::parse("dbo.cw");
    cw.conflict = ConflictPolicy::ClientWins;
    db.init(std::slice::from_ref(&cw)).await;
    let r = db
        .central
        .push(
            "edge-a",
            &cw,
            &batch(vec![upsert(item(1, "a", 1, "1"), 40, None)]),
        )
        .await
        .unwrap();
    let base = applied(&r.outcomes[0]);
    db.exec("UPDATE dbo.cw SET name = N'central' WHERE id = 1")
        .await;
    let r = db
        .central
        .push(
            "edge-a",
            &cw,
            &batch(vec![upsert(item(1, "edge", 1, "1"), 41, Some(base))]),
        )
        .await
        .unwrap();
    assert!(applied(&r.outcomes[0]) > base);
    assert_eq!(
        db.scalar("SELECT name FROM dbo.cw WHERE id = 1").await,
        "edge"
    );

    // A hard delete is answered with its tombstone's version, origin kept.
    let v2 = db
        .scalar("SELECT CAST(CAST(es_ver AS bigint) AS nvarchar) FROM dbo.items WHERE id = 2")
        .await;
    let r = db
        .central
        .push(
            "edge-a",
            &m,
            &batch(vec![delete(Value::Int(2), 50, Some(v2.parse().unwrap()))]),
        )
        .await
        .unwrap();
    let tomb = db.scalar("SELECT CONCAT(CAST(es_ver AS bigint), ':', es_origin, ':', es_oseq) FROM dbo.es_tombstones WHERE k = N'[\"2\"]'").await;
    assert_eq!(tomb, format!("{}:edge-a:50", applied(&r.outcomes[0])));
}

#[tokio::test]
async fn pull_pages_resume_skip_echoes_and_carry_tombstones() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    for i in 1..=25 {
        db.exec(&format!(
            "INSERT INTO dbo.items (id, name, qty, price) VALUES ({i}, N'c{i}', {i}, 1.10)"
        ))
        .await;
    }
    // Initial load in pages of 7, interrupted after the second page.
    let p1 = db.central.pull("e1", &m, None, 7).await.unwrap();
    let p2 = db.central.pull("e1", &m, Some(&p1.token), 7).await.unwrap();
    assert!(!p1.done && !p2.done);
    let (rest, token) = pull_pass(&db.central, "e1", &m, Some(p2.token.clone()), 7).await;
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
    // Nothing new: an empty pass.
    let (none, token) = pull_pass(&db.central, "e1", &m, Some(token), 7).await;
    assert!(none.is_empty(), "{none:?}");
    // e1's own push is not echoed to e1, but reaches e2.
    db.central
        .push(
            "e1",
            &m,
            &batch(vec![upsert(item(100, "mine", 1, "1"), 1, None)]),
        )
        .await
        .unwrap();
    db.exec("DELETE FROM dbo.items WHERE id = 3").await;
    let (e1, _) = pull_pass(&db.central, "e1", &m, Some(token.clone()), 7).await;
    assert!(e1.iter().all(|c| c.key[0] != Value::Int(100)), "{e1:?}");
    assert!(e1
        .iter()
        .any(|c| c.key[0] == Value::Int(3) && c.deleted && c.values.is_none()));
    let (e2, _) = pull_pass(&db.central, "e2", &m, Some(token), 7).await;
    assert!(e2.iter().any(|c| c.key[0] == Value::Int(100)));
}

#[tokio::test]
async fn a_transaction_that_commits_late_is_delivered() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let (_, token) = pull_pass(&db.central, "e", &m, None, 10).await;
    // Takes its rowversion now, commits after a later transaction.
    let mut early = db.app.session().await.unwrap();
    early
        .run("BEGIN TRANSACTION; INSERT INTO dbo.items (id, name) VALUES (1, N'early');")
        .await
        .unwrap();
    db.exec("INSERT INTO dbo.items (id, name) VALUES (2, N'late')")
        .await;
    let (first, token) = pull_pass(&db.central, "e", &m, Some(token), 10).await;
    assert!(first.iter().any(|c| c.key[0] == Value::Int(2)));
    assert!(first.iter().all(|c| c.key[0] != Value::Int(1)));
    early.run("COMMIT TRANSACTION;").await.unwrap();
    let (second, _) = pull_pass(&db.central, "e", &m, Some(token), 10).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_writers_and_a_tight_pull_loop_lose_nothing() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let db = Arc::new(db);
    let m = items(&db, ConflictPolicy::ServerWins, DeleteMode::Hard).await;
    let committed: Arc<Mutex<BTreeMap<i64, i64>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8i64 {
        let (db, committed) = (db.clone(), committed.clone());
        writers.push(tokio::spawn(async move {
            let mut s = db.app.session().await.unwrap();
            let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ (w as u64 + 1);
            for r in 0..12i64 {
                let id = w * 1000 + r;
                s.run(&format!("BEGIN TRANSACTION; INSERT INTO dbo.items (id, name, qty) VALUES ({id}, N'w', {r});")).await.unwrap();
                if r > 0 {
                    s.run(&format!("UPDATE dbo.items SET qty = {} WHERE id = {};", 100 + r, id - 1)).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(next_rand(&mut seed) % 201)).await;
                if w < 2 && r % 3 == 1 {
                    s.run("ROLLBACK TRANSACTION;").await.unwrap();
                } else {
                    s.run("COMMIT TRANSACTION;").await.unwrap();
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
            .central
            .pull("reader", &m, token.as_deref(), 3)
            .await
            .unwrap();
        pages += 1;
        apply(page.changes);
        token = Some(page.token);
    }
    for w in writers {
        w.await.unwrap();
    }
    let (rest, _) = pull_pass(&db.central, "reader", &m, token, 3).await;
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
        "CREATE TABLE dbo.types (id uniqueidentifier PRIMARY KEY, b bit, i bigint, f float,
             d decimal(38,10), t nvarchar(max), tn nvarchar(20), j nvarchar(max) CHECK (ISJSON(j) = 1),
             bin varbinary(max), dt date, tm time(7), ts datetime2(7), tz datetimeoffset(7))",
    )
    .await;
    let described = db
        .central
        .describe(&QualifiedName::parse("dbo.types"))
        .await
        .unwrap()
        .unwrap();
    let cols: Vec<(&str, ColType)> = described
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.ty.clone().unwrap()))
        .collect();
    assert_eq!(cols[7].1, ColType::Json);
    let m = mapping(
        "dbo.types",
        &cols,
        &[0],
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    );
    db.init(std::slice::from_ref(&m)).await;
    let id = uuid::Uuid::parse_str("6F9619FF-8B86-D011-B42D-00C04FC964FF").unwrap();
    let ts = edgesync_core::value::parse_timestamp("1901-02-03 04:05:06.123456").unwrap();
    let tz = edgesync_core::value::parse_timestamptz("1969-07-20 20:17:40.5-05:30").unwrap();
    let rows = vec![
        vec![
            Value::Uuid(id),
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::Float(0.1),
            Value::Decimal("-9999999999999999999999999999.9999999999".into()),
            Value::Text("añ😀\u{0}'\"".into()),
            Value::Text("short".into()),
            Value::Json("{\"a\":[1,2]}".into()),
            Value::Bytes(vec![0, 255, 10]),
            Value::Date(ts.date()),
            Value::Time(ts.time()),
            Value::Timestamp(ts),
            Value::TimestampTz(tz),
        ],
        vec![
            Value::Uuid(uuid::Uuid::new_v4()),
            Value::Bool(false),
            Value::Int(i64::MAX),
            Value::Float(-1e300),
            Value::Decimal("9999999999999999999999999999.9999999999".into()),
            Value::Text("x".repeat(100_000)),
            Value::Null,
            Value::Null,
            Value::Bytes(vec![7; 70_000]),
            Value::Null,
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
    let r = db.central.push("edge", &m, &b).await.expect("push");
    assert_eq!(r.conflicts, 0);
    // The GUID is stored in SQL Server's byte order, shown in its text form.
    assert_eq!(
        db.scalar("SELECT CONVERT(nvarchar(36), id) FROM dbo.types WHERE b = 1")
            .await,
        "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    );
    assert_eq!(
        db.scalar("SELECT CONCAT(DATEPART(TZOFFSET, tz), ' ', CONVERT(nvarchar(30), CAST(tz AS datetime2(7)), 121)) FROM dbo.types WHERE b = 1")
            .await,
        "-330 1969-07-20 20:17:40.5000000"
    );
    let (pulled, _) = pull_pass(&db.central, "other", &m, None, 10).await;
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
        if let (Value::TimestampTz(a), Value::TimestampTz(b)) = (&row[12], &values[12]) {
            assert_eq!(a.offset(), b.offset(), "offset kept");
        }
    }
    // A value the column would round is refused, naming the column.
    let mut bad = rows[0].clone();
    bad[4] = Value::Decimal("1.00000000001".into());
    let e = db
        .central
        .push("edge", &m, &batch(vec![upsert(bad, 10, None)]))
        .await
        .expect_err("rounded");
    assert!(e.message().contains("dbo.types.d"), "{}", e.message());
}
