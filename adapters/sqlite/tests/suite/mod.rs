//! Test modules and shared helpers.

mod central;
mod edge_apply;
mod edge_base;
mod edge_capture;
mod edge_provision;
mod edge_sync;
mod end_to_end;
mod open;

use std::path::{Path, PathBuf};

use edgesync_core::central::Central;
use edgesync_core::{
    ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, QualifiedName, TableMapping, Value,
};
use edgesync_sqlite::{EdgeDb, SqliteCentral};
use rusqlite::Connection;

/// A temporary directory that lives as long as the test.
pub struct Dir(tempfile::TempDir);

impl Dir {
    pub fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

pub fn col(name: &str, ty: ColType) -> ColumnMap {
    ColumnMap {
        edge: name.into(),
        central: name.into(),
        ty,
        edge_ty: ty,
        nullable: true,
    }
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

/// `items (id INTEGER key, name TEXT, qty INTEGER)` with the given modes.
pub fn items(direction: Direction, conflict: ConflictPolicy, deletes: DeleteMode) -> TableMapping {
    TableMapping {
        edge: "items".into(),
        central: QualifiedName::parse("items"),
        columns: vec![
            ColumnMap {
                nullable: false,
                ..col("id", ColType::Int)
            },
            col("name", text()),
            col("qty", ColType::Int),
        ],
        key: vec![0],
        direction,
        conflict,
        deletes,
    }
}

pub fn both_soft() -> TableMapping {
    items(
        Direction::Both,
        ConflictPolicy::ServerWins,
        DeleteMode::Soft,
    )
}

pub fn both_hard() -> TableMapping {
    items(
        Direction::Both,
        ConflictPolicy::ServerWins,
        DeleteMode::Hard,
    )
}

pub fn row(id: i64, name: &str, qty: i64) -> Vec<Value> {
    vec![Value::Int(id), Value::Text(name.into()), Value::Int(qty)]
}

/// Open and provision an edge file for `node`.
pub async fn edge(path: &Path, node: &str, tables: &[TableMapping]) -> EdgeDb {
    let db = EdgeDb::open(path).await.unwrap();
    let plan = db.plan_init(node, tables).await.unwrap();
    db.execute(&plan).await.unwrap();
    db
}

/// Open a SQLite central holding `items`, provisioned for `tables`.
pub async fn central(path: &Path, tables: &[TableMapping]) -> SqliteCentral {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)",
    )
    .unwrap();
    drop(conn);
    let c = SqliteCentral::open(path).await.unwrap();
    let plan = c.plan_init(tables).await.unwrap();
    c.execute(&plan).await.unwrap();
    c
}

/// The application's own connection to a file.
pub fn app(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    c
}

/// Every row of a table as text, ordered by `order`, for comparisons.
pub fn dump(conn: &Connection, sql: &str) -> Vec<Vec<String>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                let v: rusqlite::types::Value = r.get(i)?;
                Ok(format!("{v:?}"))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// One engine-style cycle for one table: push everything pending, then
/// pull until the pass is done.
pub async fn sync(db: &EdgeDb, central: &SqliteCentral, node: &str, t: &TableMapping) {
    while let Some(batch) = db.read_changes(t, 2).await.unwrap() {
        let result = central.push(node, t, &batch).await.unwrap();
        db.ack_push(t, &batch, &result).await.unwrap();
    }
    loop {
        let token = db.pull_token(t).await.unwrap();
        let page = central.pull(node, t, token.as_deref(), 2).await.unwrap();
        db.apply_pull(t, &page).await.unwrap();
        if page.done {
            break;
        }
    }
}
