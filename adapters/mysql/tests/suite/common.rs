//! Test databases and small builders.

use edgesync_core::{
    Central, Change, ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, PushBatch,
    QualifiedName, TableMapping, Value,
};
use edgesync_mysql::MysqlCentral;
use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{Conn, Row};

/// The server the tests use.
pub fn base_url() -> String {
    std::env::var("EDGESYNC_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// `base_url` with another database.
pub fn url_for(db: &str) -> String {
    let base = base_url();
    let (head, _) = base.rsplit_once('/').expect("url has a database");
    format!("{head}/{db}")
}

/// A database of its own for one test (plus any extra ones it asks for),
/// dropped when the test ends, also when it fails.
pub struct TestDb {
    pub name: String,
    pub central: MysqlCentral,
    extra: std::sync::Mutex<Vec<String>>,
}

async fn admin() -> Conn {
    Conn::from_url(base_url()).await.expect("admin connect")
}

impl TestDb {
    pub async fn new() -> TestDb {
        let name = format!("es_t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let mut a = admin().await;
        a.query_drop(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            .await
            .expect("create database");
        a.disconnect().await.ok();
        let central = MysqlCentral::connect(&url_for(&name), None)
            .await
            .expect("connect to test database");
        TestDb {
            name,
            central,
            extra: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Another database, dropped with this one: `<name>_<suffix>`.
    pub async fn extra_db(&self, suffix: &str) -> String {
        let name = format!("{}_{suffix}", self.name);
        self.exec(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            .await;
        self.extra.lock().unwrap().push(name.clone());
        name
    }

    /// A plain connection, as an application has (the server's own session
    /// defaults, no edgesync session variables).
    pub async fn app(&self) -> Conn {
        Conn::from_url(url_for(&self.name))
            .await
            .expect("app connect")
    }

    /// Run SQL (several statements allowed) as an application would.
    pub async fn exec(&self, sql: &str) {
        let mut c = self.app().await;
        c.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        c.disconnect().await.ok();
    }

    /// One scalar.
    pub async fn scalar<T: FromValue + Send + 'static>(&self, sql: &str) -> T {
        let mut c = self.app().await;
        let v: Option<T> = c
            .query_first(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        c.disconnect().await.ok();
        v.unwrap_or_else(|| panic!("{sql}: no row"))
    }

    /// The table's content, rendered, for before/after comparisons.
    pub async fn dump(&self, query: &str) -> Vec<String> {
        let mut c = self.app().await;
        let rows: Vec<Row> = c.query(query).await.expect("dump");
        c.disconnect().await.ok();
        rows.into_iter()
            .map(|r| format!("{:?}", r.unwrap()))
            .collect()
    }

    /// Provision `tables` and check a second plan is empty.
    pub async fn init(&self, tables: &[TableMapping]) {
        let plan = self.central.plan_init(tables).await.expect("plan_init");
        self.central.execute(&plan).await.expect("execute init");
        let again = self
            .central
            .plan_init(tables)
            .await
            .expect("plan_init again");
        assert!(again.is_empty(), "second plan not empty: {again:#?}");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let mut names = vec![self.name.clone()];
        names.extend(self.extra.lock().map(|e| e.clone()).unwrap_or_default());
        // Drop needs a runtime of its own: the test's may be shutting down.
        let dropper = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut a = admin().await;
                for n in names {
                    a.query_drop(format!("DROP DATABASE IF EXISTS {n}"))
                        .await
                        .expect("drop database");
                }
                a.disconnect().await.ok();
            });
        });
        dropper.join().ok();
    }
}

pub fn int() -> ColType {
    ColType::Int
}

pub fn text() -> ColType {
    ColType::Text { max_len: None }
}

pub fn dec(p: u32, s: u32) -> ColType {
    ColType::Decimal {
        precision: Some(p),
        scale: Some(s),
    }
}

/// A mapping with the same names on both sides.
pub fn mapping(
    table: &str,
    cols: &[(&str, ColType)],
    key: &[usize],
    conflict: ConflictPolicy,
    deletes: DeleteMode,
) -> TableMapping {
    TableMapping {
        edge: table.rsplit('.').next().unwrap_or(table).to_string(),
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

pub const CREATE_ITEMS: &str =
    "CREATE TABLE items (id bigint PRIMARY KEY, name varchar(100) NOT NULL,
                             qty int, price decimal(12,2) CHECK (price >= 0))";

pub fn items_mapping(conflict: ConflictPolicy, deletes: DeleteMode) -> TableMapping {
    mapping(
        "items",
        &[
            ("id", int()),
            ("name", ColType::Text { max_len: Some(100) }),
            ("qty", int()),
            ("price", dec(12, 2)),
        ],
        &[0],
        conflict,
        deletes,
    )
}

/// The `items(id bigint primary key, name varchar(100), qty int, price
/// decimal(12,2))` table most tests use, provisioned.
pub async fn items(db: &TestDb, conflict: ConflictPolicy, deletes: DeleteMode) -> TableMapping {
    db.exec(CREATE_ITEMS).await;
    let m = items_mapping(conflict, deletes);
    db.init(std::slice::from_ref(&m)).await;
    m
}

/// An `items` row.
pub fn item(id: i64, name: &str, qty: i64, price: &str) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Text(name.into()),
        Value::Int(qty),
        Value::Decimal(price.into()),
    ]
}

/// A pushed upsert.
pub fn upsert(values: Vec<Value>, key: usize, version: i64, base: Option<i64>) -> Change {
    Change {
        key: vec![values[key].clone()],
        values: Some(values),
        deleted: false,
        version,
        base,
        hlc: edgesync_core::hlc::pack(1_700_000_000_000, version as u16),
    }
}

/// A pushed delete.
pub fn delete(key: Value, values: Option<Vec<Value>>, version: i64, base: Option<i64>) -> Change {
    Change {
        key: vec![key],
        values,
        deleted: true,
        version,
        base,
        hlc: edgesync_core::hlc::pack(1_700_000_000_000, version as u16),
    }
}

pub fn batch(changes: Vec<Change>) -> PushBatch {
    PushBatch {
        hi: changes.iter().map(|c| c.version).max().unwrap_or(0),
        changes,
        bases: Vec::new(),
        fingerprint: None,
    }
}

/// Pull a whole pass for `node`; all changes and the final token.
pub async fn pull_pass(
    c: &MysqlCentral,
    node: &str,
    table: &TableMapping,
    token: Option<String>,
    limit: usize,
) -> (Vec<Change>, String) {
    let mut token = token;
    let mut all = Vec::new();
    for _ in 0..10_000 {
        let page = c
            .pull(node, table, token.as_deref(), limit)
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

/// The integer keys of `changes`.
pub fn ids(changes: &[Change]) -> Vec<i64> {
    changes
        .iter()
        .map(|c| match c.key[0] {
            Value::Int(i) => i,
            ref other => panic!("{other:?}"),
        })
        .collect()
}
