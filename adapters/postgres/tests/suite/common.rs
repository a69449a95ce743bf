//! Test databases and small builders.

use edgesync_core::{
    Central, Change, ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, PushBatch,
    QualifiedName, TableMapping, Value,
};
use edgesync_postgres::PgCentral;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

/// The server the tests use.
pub fn base_url() -> String {
    std::env::var("EDGESYNC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `base_url` with another database.
pub fn url_for(db: &str) -> String {
    let base = base_url();
    let (head, _) = base.rsplit_once('/').expect("url has a database");
    format!("{head}/{db}")
}

/// A database of its own for one test, dropped when the test ends (also when
/// it fails).
pub struct TestDb {
    pub name: String,
    pub central: PgCentral,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let name = format!("es_t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&base_url())
            .await
            .expect("admin connect");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.ok();
        let central = PgCentral::connect(&url_for(&name), None)
            .await
            .expect("connect to test database");
        TestDb { name, central }
    }

    pub fn pool(&self) -> &PgPool {
        self.central.pool()
    }

    /// Run SQL (several statements allowed).
    pub async fn exec(&self, sql: &str) {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// One scalar.
    pub async fn scalar<T>(&self, sql: &str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    {
        sqlx::query_scalar(AssertSqlSafe(sql.to_string()))
            .fetch_one(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The table's content as text, for before/after comparisons.
    pub async fn dump(&self, table: &str) -> Vec<String> {
        sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT t::text FROM {table} t ORDER BY 1"
        )))
        .fetch_all(self.pool())
        .await
        .expect("dump")
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
        let name = self.name.clone();
        // Drop needs a runtime of its own: the test's may be shutting down.
        let dropper = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut admin = PgConnection::connect(&base_url()).await.expect("admin");
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .expect("drop database");
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

/// The `items(id bigint primary key, name text, qty int, price numeric(12,2))`
/// table most tests use.
pub async fn items(db: &TestDb, conflict: ConflictPolicy, deletes: DeleteMode) -> TableMapping {
    db.exec(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, qty int,
                             price numeric(12,2) CHECK (price >= 0))",
    )
    .await;
    let m = mapping(
        "items",
        &[
            ("id", int()),
            ("name", text()),
            ("qty", int()),
            ("price", dec(12, 2)),
        ],
        &[0],
        conflict,
        deletes,
    );
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
    c: &PgCentral,
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
