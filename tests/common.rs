//! The test harness: one environment per test — a temp directory, a fresh
//! central (a SQLite file, or a PostgreSQL database with a random name that is
//! dropped afterwards), edge files, and a `sync.toml` written to disk and loaded
//! through the real config loader — so tests run in parallel and the suite is
//! parametrized over central backends instead of copied.

use std::path::{Path, PathBuf};
use std::process::Output;

use edgesync::config::Config;
use edgesync::engine::{provision, sync, Engine, Selection};
use rusqlite::Connection;

/// A central backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generate one `#[tokio::test]` per backend for each named async test fn
/// taking a `Backend`.
#[macro_export]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite_central {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Sqlite).await }
            )*
        }
        mod postgres_central {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Postgres).await }
            )*
        }
    };
}

pub fn pg_admin_url() -> String {
    std::env::var("EDGESYNC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// One test's world.
pub struct Env {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub pg_db: Option<String>,
    pub central_url: String,
    pub nodes: Vec<String>,
    pub tables_toml: String,
    pub extra_toml: String,
}

impl Env {
    /// A fresh central with `central_ddl` (per backend) run on it, and
    /// `nodes` edges (files not created yet).
    pub async fn new(backend: Backend, nodes: &[&str], ddl: &Ddl) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("es-test-")
            .tempdir()
            .expect("tempdir");
        let (pg_db, central_url) = match backend {
            Backend::Sqlite => {
                let path = dir.path().join("central.db");
                let c = Connection::open(&path).expect("central sqlite");
                c.execute_batch(ddl.sqlite).expect("central ddl (sqlite)");
                (None, format!("sqlite://{}", path.display()))
            }
            Backend::Postgres => {
                let name = format!("es_t_{}", random_suffix());
                let admin = pg_admin_url();
                let mut conn = connect_pg(&admin).await;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let url = replace_db(&admin, &name);
                let mut c = connect_pg(&url).await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(ddl.postgres))
                    .execute(&mut c)
                    .await
                    .expect("central ddl (postgres)");
                (Some(name), url)
            }
        };
        Env {
            backend,
            dir,
            pg_db,
            central_url,
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            tables_toml: String::new(),
            extra_toml: String::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn edge_path(&self, node: &str) -> PathBuf {
        self.dir.path().join(format!("{node}.db"))
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("sync.toml")
    }

    /// Write sync.toml with `tables` (TOML `[[table]]` entries) and `sync`
    /// section extras.
    pub fn write_config(&mut self, tables: &str, sync_extra: &str) {
        self.tables_toml = tables.to_string();
        self.extra_toml = sync_extra.to_string();
        let mut s = format!("[central]\nurl = \"{}\"\n\n", self.central_url);
        for n in &self.nodes {
            s.push_str(&format!(
                "[[edge]]\nnode = \"{n}\"\npath = \"{}\"\n\n",
                self.edge_path(n).display()
            ));
        }
        s.push_str(&format!(
            "[sync]\ninterval = \"1s\"\n{sync_extra}\n\n{tables}\n"
        ));
        std::fs::write(self.config_path(), s).expect("write sync.toml");
    }

    pub async fn engine(&self, sel: Selection) -> anyhow::Result<Engine> {
        let loaded = Config::load(Some(&self.config_path()))?;
        loaded.config.validate()?;
        Engine::open(loaded.config, &loaded.path, &sel).await
    }

    pub async fn engine_ok(&self) -> Engine {
        self.engine(Selection::default())
            .await
            .expect("open engine")
    }

    /// init-sync for everything.
    pub async fn init(&self) {
        let e = self.engine_ok().await;
        let plans = provision::plan(&e, provision::Action::Init, false)
            .await
            .expect("plan init");
        provision::execute(&e, &plans).await.expect("init-sync");
    }

    /// One sync of one node; panics on any table error.
    pub async fn sync_node(&self, node: &str) -> Vec<sync::TableStats> {
        let e = self
            .engine(Selection {
                node: Some(node.to_string()),
                table: None,
            })
            .await
            .expect("open engine");
        let stats = sync::sync_all(&e).await;
        for s in &stats {
            assert!(
                s.error.is_none(),
                "sync of {node}/{} failed: {:?}",
                s.table,
                s.error
            );
        }
        stats
    }

    /// Sync every node in order, `rounds` times.
    pub async fn sync_all(&self, rounds: usize) {
        for _ in 0..rounds {
            for n in self.nodes.clone() {
                self.sync_node(&n).await;
            }
        }
    }

    pub fn edge(&self, node: &str) -> Connection {
        Connection::open(self.edge_path(node)).expect("open edge")
    }

    /// Run SQL on the central (per backend).
    pub async fn central_exec(&self, sqlite: &str, postgres: &str) {
        match self.backend {
            Backend::Sqlite => {
                let c = Connection::open(self.central_sqlite_path()).expect("central");
                c.execute_batch(sqlite).expect("central sql");
            }
            Backend::Postgres => {
                let mut c = connect_pg(&self.central_url).await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(postgres.to_string()))
                    .execute(&mut c)
                    .await
                    .expect("central sql");
            }
        }
    }

    pub fn central_sqlite_path(&self) -> PathBuf {
        self.dir.path().join("central.db")
    }

    /// Query the central, every column rendered as text by the database
    /// (`NULL` for null), rows in the query's order.
    pub async fn central_rows(&self, sqlite: &str, postgres: &str) -> Vec<Vec<String>> {
        match self.backend {
            Backend::Sqlite => {
                let c = Connection::open(self.central_sqlite_path()).expect("central");
                query_text(&c, sqlite)
            }
            Backend::Postgres => {
                use sqlx::Row;
                let mut c = connect_pg(&self.central_url).await;
                let rows = sqlx::query(sqlx::AssertSqlSafe(postgres.to_string()))
                    .fetch_all(&mut c)
                    .await
                    .expect("central query");
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| {
                                r.try_get::<Option<String>, _>(i)
                                    .expect("postgres test queries must cast columns to text")
                                    .unwrap_or_else(|| "NULL".into())
                            })
                            .collect()
                    })
                    .collect()
            }
        }
    }

    /// Run the real binary with this env's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_edgesync"))
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .output()
            .expect("run edgesync")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(name) = self.pg_db.take() {
            // Drop the database from a separate thread with its own runtime:
            // Drop cannot await, and the test's runtime may be shutting down.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let mut c = connect_pg(&pg_admin_url()).await;
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                });
            })
            .join();
        }
    }
}

/// Central DDL for each backend.
pub struct Ddl {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub async fn connect_pg(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

fn replace_db(url: &str, db: &str) -> String {
    match url.rfind('/') {
        Some(i) => format!("{}/{db}", &url[..i]),
        None => format!("{url}/{db}"),
    }
}

/// Every column as text, as SQLite renders it (`NULL` for null, blobs as hex).
pub fn query_text(c: &Connection, sql: &str) -> Vec<Vec<String>> {
    let mut st = c.prepare(sql).expect("prepare");
    let n = st.column_count();
    let mut q = st.query([]).expect("query");
    let mut out = Vec::new();
    while let Some(r) = q.next().expect("row") {
        let mut row = Vec::new();
        for i in 0..n {
            let v: rusqlite::types::Value = r.get(i).expect("value");
            row.push(match v {
                rusqlite::types::Value::Null => "NULL".into(),
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Real(f) => format!("{f:?}"),
                rusqlite::types::Value::Text(s) => s,
                rusqlite::types::Value::Blob(b) => {
                    format!("\\x{}", edgesync_core::value::hex_bytes::encode(&b))
                }
            });
        }
        out.push(row);
    }
    out
}

/// The stderr of a finished command, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---------------------------------------------------------------------------
// Helpers for the fault, replay, chaos and convergence suites.
// ---------------------------------------------------------------------------

/// A long-lived connection to the central database, for tests that write and
/// read it many times (an "application" on the central).
pub enum CentralConn {
    Sqlite(Connection),
    Postgres(sqlx::PgConnection),
}

impl Env {
    /// A connection to the central (SQLite: 30 s busy timeout, so an
    /// application write waits for edgesync's short transactions).
    pub async fn central_conn(&self) -> CentralConn {
        match self.backend {
            Backend::Sqlite => {
                let c = Connection::open(self.central_sqlite_path()).expect("central");
                c.busy_timeout(std::time::Duration::from_secs(30))
                    .expect("busy timeout");
                CentralConn::Sqlite(c)
            }
            Backend::Postgres => CentralConn::Postgres(connect_pg(&self.central_url).await),
        }
    }

    /// An edge file opened the way an application would (30 s busy timeout).
    pub fn edge_app(&self, node: &str) -> Connection {
        let c = self.edge(node);
        c.busy_timeout(std::time::Duration::from_secs(30))
            .expect("busy timeout");
        c
    }
}

impl CentralConn {
    /// Run a script (per backend) in the connection's current transaction
    /// state; the error text on failure.
    pub async fn exec(&mut self, sqlite: &str, postgres: &str) -> Result<(), String> {
        match self {
            CentralConn::Sqlite(c) => c.execute_batch(sqlite).map_err(|e| e.to_string()),
            CentralConn::Postgres(c) => sqlx::raw_sql(sqlx::AssertSqlSafe(postgres.to_string()))
                .execute(&mut *c)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// Query rows, every column as text (`NULL` for null). PostgreSQL
    /// queries must cast their columns to text.
    pub async fn rows(&mut self, sqlite: &str, postgres: &str) -> Vec<Vec<String>> {
        match self {
            CentralConn::Sqlite(c) => query_text(c, sqlite),
            CentralConn::Postgres(c) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(postgres.to_string()))
                    .fetch_all(&mut *c)
                    .await
                    .expect("central query");
                pg_text_rows(&rows)
            }
        }
    }
}

/// PostgreSQL rows whose columns are all text, as strings (`NULL` for null).
pub fn pg_text_rows(rows: &[sqlx::postgres::PgRow]) -> Vec<Vec<String>> {
    use sqlx::Row;
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    r.try_get::<Option<String>, _>(i)
                        .expect("postgres test queries must cast columns to text")
                        .unwrap_or_else(|| "NULL".into())
                })
                .collect()
        })
        .collect()
}

/// A seed for a randomized test: `var` from the environment if set (to
/// replay a failure), else a fresh one. Always printed.
pub fn seed_from_env(var: &str, test: &str) -> u64 {
    let seed = match std::env::var(var) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={s:?} is not an unsigned integer")),
        Err(_) => rand::random::<u64>(),
    };
    eprintln!("{test}: seed {seed} (replay with {var}={seed})");
    seed
}

/// A count from the environment, or `default`.
pub fn env_usize(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={s:?} is not a count")),
        Err(_) => default,
    }
}
