//! The test harness: one environment per test — a temp directory, a fresh
//! central (a SQLite file, or a PostgreSQL or MariaDB/MySQL database with a
//! random name that is dropped afterwards), edge files, and a `sync.toml`
//! written to disk and loaded through the real config loader — so tests run
//! in parallel and the suite is parametrized over central backends instead of
//! copied.
//!
//! SQL that a test runs on the central is given once per dialect ([`Sql`]),
//! or once for all of them ([`Sql::all`]) where the text is portable. Query
//! results come back as text rendered the same way on every backend (see
//! [`Env::central_query`]), so most queries need no per-backend casts.

use std::path::{Path, PathBuf};
use std::process::Output;

use edgesync::config::Config;
use edgesync::engine::{provision, sync, Engine, Selection};
use mysql_async::prelude::Queryable as _;
use rusqlite::Connection;

/// A central backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// MySQL 8 or MariaDB 10.6+ (CI runs MariaDB).
    Mysql,
}

impl Backend {
    /// Does an application's `DELETE` on the central remove the row even on
    /// a `deletes = "soft"` table? On MySQL/MariaDB it does: a trigger cannot
    /// turn a delete into an update there, so the row goes and a tombstone
    /// tells the edges, which apply it by their own table's mode (a soft
    /// edge table keeps the row with `es_deleted = 1`). See
    /// adapters/mysql/DESIGN.md, "Deletes". Deletes pushed by edges stay
    /// soft on every backend.
    pub fn app_deletes_remove_central_rows(self) -> bool {
        self == Backend::Mysql
    }
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
        mod mysql_central {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Mysql).await }
            )*
        }
    };
}

pub mod hub;

tokio::task_local! {
    /// Set by [`for_each_backend_and_hub!`] for the hub runs of a test:
    /// [`Env::new`] then puts an `edgesync serve` between the edges and the
    /// central.
    static VIA_HUB: bool;
}

/// Whether the running test syncs through a hub (see
/// [`for_each_backend_and_hub!`]).
pub fn via_hub() -> bool {
    VIA_HUB.try_with(|v| *v).unwrap_or(false)
}

/// Run `test` with its edges syncing through `edgesync serve`.
pub async fn through_hub<F: std::future::Future<Output = ()>>(test: F) {
    VIA_HUB.scope(true, test).await
}

/// [`for_each_backend!`], and the same tests once more per hub-capable
/// central with every edge syncing through a real `edgesync serve` (TLS,
/// node tokens, signed requests): the test body is unchanged; [`Env`] writes
/// the hub's `sync.toml` next to the edges', provisions the central through
/// the hub's `init-sync`, creates a token per node and points the edges at
/// the hub. The central is still queried and written directly, as the
/// central's own applications would. Tests listed after `; direct only:`
/// run in direct mode alone (say why where they are listed).
#[macro_export]
macro_rules! for_each_backend_and_hub {
    ($($name:ident),* $(,)? $(; direct only: $($direct:ident),* $(,)?)?) => {
        $crate::for_each_backend!($($name,)* $($($direct),*)?);
        mod hub_sqlite_central {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::through_hub(super::$name($crate::common::Backend::Sqlite))
                        .await
                }
            )*
        }
        mod hub_postgres_central {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::through_hub(super::$name($crate::common::Backend::Postgres))
                        .await
                }
            )*
        }
    };
}

pub fn pg_admin_url() -> String {
    std::env::var("EDGESYNC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

pub fn mysql_admin_url() -> String {
    std::env::var("EDGESYNC_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_string())
}

fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

// ---------------------------------------------------------------------------
// SQL per dialect
// ---------------------------------------------------------------------------

/// SQL text for each central backend.
pub trait Dialects {
    fn for_backend(&self, backend: Backend) -> &str;
}

/// One statement or script in each backend's dialect. [`Sql::all`] when the
/// text is the same everywhere.
#[derive(Debug, Clone, Copy)]
pub struct Sql<'a> {
    pub sqlite: &'a str,
    pub postgres: &'a str,
    pub mysql: &'a str,
}

impl<'a> Sql<'a> {
    /// The same (portable) text for every backend.
    pub const fn all(text: &'a str) -> Sql<'a> {
        Sql {
            sqlite: text,
            postgres: text,
            mysql: text,
        }
    }
}

impl Dialects for Sql<'_> {
    fn for_backend(&self, backend: Backend) -> &str {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
            Backend::Mysql => self.mysql,
        }
    }
}

impl<D: Dialects + ?Sized> Dialects for &D {
    fn for_backend(&self, backend: Backend) -> &str {
        (**self).for_backend(backend)
    }
}

/// Legacy: SQL for SQLite and PostgreSQL only, for test files not yet given
/// a MariaDB form (tests/daemon.rs, tests/edge_app.rs, tests/hub). Used on a
/// MySQL central it fails the test, saying so; port such a test by writing
/// its SQL as a [`Sql`] (and `central_exec`/`central_rows` as
/// `central_run`/`central_query`).
#[derive(Debug, Clone, Copy)]
pub struct TwoDialects<'a> {
    pub sqlite: &'a str,
    pub postgres: &'a str,
}

/// Legacy central DDL (see [`TwoDialects`]); new tests use [`Sql`].
pub type Ddl = TwoDialects<'static>;

impl Dialects for TwoDialects<'_> {
    fn for_backend(&self, backend: Backend) -> &str {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
            Backend::Mysql => panic!(
                "this test gives its central SQL for SQLite and PostgreSQL only (common::Ddl / \
                 central_exec / central_rows); give it a MySQL form with common::Sql to run it on \
                 MariaDB: {self:?}"
            ),
        }
    }
}

/// `(...) AS s`: the integers 1..=n (n < 1 000 000) as column `i` of `s`,
/// for `INSERT ... SELECT ... FROM {series(n)}` on every backend. Built from
/// a recursive CTE of 1000 digits joined with itself: MariaDB and MySQL stop
/// a recursion after 1000 rounds by default.
pub fn series(n: i64) -> String {
    format!(
        "(WITH RECURSIVE d(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < 999)
          SELECT hi.i * 1000 + lo.i + 1 AS i FROM d hi, d lo
           WHERE hi.i <= {top} AND hi.i * 1000 + lo.i < {n}) AS s",
        top = (n - 1).max(0) / 1000
    )
}

// ---------------------------------------------------------------------------
// The environment
// ---------------------------------------------------------------------------

/// One test's world.
pub struct Env {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    /// The per-test PostgreSQL or MySQL database (`es_t_<random>`), dropped
    /// with the `Env`.
    pub test_db: Option<String>,
    pub central_url: String,
    pub nodes: Vec<String>,
    pub tables_toml: String,
    pub extra_toml: String,
    /// In a hub run ([`for_each_backend_and_hub!`]): the hub in front of
    /// the central.
    pub hub: Option<hub::HubSide>,
}

impl Env {
    /// A fresh central with `ddl` (per backend) run on it, and `nodes` edges
    /// (files not created yet).
    pub async fn new(backend: Backend, nodes: &[&str], ddl: impl Dialects) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("es-test-")
            .tempdir()
            .expect("tempdir");
        let ddl = ddl.for_backend(backend);
        let (test_db, central_url) = match backend {
            Backend::Sqlite => {
                let path = dir.path().join("central.db");
                let c = Connection::open(&path).expect("central sqlite");
                c.execute_batch(ddl).expect("central ddl (sqlite)");
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
                sqlx::raw_sql(sqlx::AssertSqlSafe(ddl.to_string()))
                    .execute(&mut c)
                    .await
                    .expect("central ddl (postgres)");
                (Some(name), url)
            }
            Backend::Mysql => {
                let name = format!("es_t_{}", random_suffix());
                let admin = mysql_admin_url();
                let mut conn = connect_mysql(&admin).await;
                conn.query_drop(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
                    .await
                    .expect("create test database");
                conn.disconnect().await.ok();
                let url = replace_db(&admin, &name);
                let mut c = connect_mysql(&url).await;
                c.query_drop(ddl).await.expect("central ddl (mysql)");
                c.disconnect().await.ok();
                (Some(name), url)
            }
        };
        let nodes: Vec<String> = nodes.iter().map(|s| s.to_string()).collect();
        let hub = via_hub().then(|| hub::HubSide::new(dir.path(), &nodes, &central_url));
        Env {
            backend,
            dir,
            test_db,
            central_url,
            nodes,
            tables_toml: String::new(),
            extra_toml: String::new(),
            hub,
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
    ///
    /// In a hub run the same tables and extras also go into the hub's
    /// `hub.toml` and the edges' `[central]` is the hub (see
    /// [`hub::HubSide`]).
    pub fn write_config(&mut self, tables: &str, sync_extra: &str) {
        self.tables_toml = tables.to_string();
        self.extra_toml = sync_extra.to_string();
        let central = match &self.hub {
            Some(h) => h.configure(tables, sync_extra),
            None => format!("[central]\nurl = \"{}\"\n\n", self.central_url),
        };
        let mut s = central;
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

    /// In a hub run, make sure the hub runs on the current config (see
    /// [`hub::HubSide::ensure`]); nothing otherwise.
    pub fn ensure_hub(&self) {
        if let Some(h) = &self.hub {
            h.ensure();
        }
    }

    /// Run the real binary where the central is administered: with the
    /// hub's config in a hub run (`conflicts resolve`, `token`), else with
    /// the edges' config.
    pub fn central_cli(&self, args: &[&str]) -> Output {
        match &self.hub {
            Some(h) => {
                h.ensure();
                hub::cli(h.config_path(), args)
            }
            None => self.cli(args),
        }
    }

    /// An engine on the central as its administrators reach it: on the
    /// hub's config in a hub run (the hub's own central), else on the
    /// edges' config.
    pub async fn central_engine(&self) -> Engine {
        let path = match &self.hub {
            Some(h) => {
                h.ensure();
                h.config_path().to_path_buf()
            }
            None => self.config_path(),
        };
        let loaded = Config::load(Some(&path)).expect("load config");
        loaded.config.validate().expect("valid config");
        Engine::open(loaded.config, &loaded.path, &Selection::default())
            .await
            .expect("open the central's engine")
    }

    pub async fn engine(&self, sel: Selection) -> anyhow::Result<Engine> {
        self.ensure_hub();
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

    pub fn central_sqlite_path(&self) -> PathBuf {
        self.dir.path().join("central.db")
    }

    /// Run SQL (a script of one or more statements) on the central, as an
    /// application would, on a fresh connection; panics on error.
    pub async fn central_run(&self, sql: impl Dialects) {
        let mut c = self.central_conn().await;
        if let Err(e) = c.run(&sql).await {
            panic!("central sql failed: {e}\n{}", sql.for_backend(self.backend));
        }
        c.close().await;
    }

    /// Query the central on a fresh connection, every column rendered as
    /// text the same way on every backend (see [`CentralConn::query`]).
    pub async fn central_query(&self, sql: impl Dialects) -> Vec<Vec<String>> {
        let mut c = self.central_conn().await;
        let rows = c.query(&sql).await;
        c.close().await;
        rows
    }

    /// [`Env::central_query`] with SQL NULL as `None`, for values where the
    /// text `NULL` may occur.
    pub async fn central_query_nullable(&self, sql: impl Dialects) -> Vec<Vec<Option<String>>> {
        let mut c = self.central_conn().await;
        let rows = c.query_nullable(&sql).await;
        c.close().await;
        rows
    }

    /// Legacy form of [`Env::central_run`] (SQLite and PostgreSQL only).
    pub async fn central_exec(&self, sqlite: &str, postgres: &str) {
        self.central_run(TwoDialects { sqlite, postgres }).await
    }

    /// Legacy form of [`Env::central_query`] (SQLite and PostgreSQL only).
    pub async fn central_rows(&self, sqlite: &str, postgres: &str) -> Vec<Vec<String>> {
        self.central_query(TwoDialects { sqlite, postgres }).await
    }

    /// Run the real binary with this env's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.ensure_hub();
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
        // The hub goes first: it holds connections to the central.
        drop(self.hub.take());
        let Some(name) = self.test_db.take() else {
            return;
        };
        let backend = self.backend;
        // Drop the database from a separate thread with its own runtime:
        // Drop cannot await, and the test's runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                match backend {
                    Backend::Postgres => {
                        let mut c = connect_pg(&pg_admin_url()).await;
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut c)
                        .await;
                    }
                    Backend::Mysql => drop_mysql_database(&name).await,
                    Backend::Sqlite => {}
                }
            });
        })
        .join();
    }
}

/// `DROP DATABASE`, after killing every connection still using it (what
/// PostgreSQL's `WITH (FORCE)` does): an engine's pooled connections or a
/// killed child's half-open transaction would otherwise hold metadata locks
/// the drop waits for.
async fn drop_mysql_database(name: &str) {
    let mut c = connect_mysql(&mysql_admin_url()).await;
    let _ = c.query_drop("SET SESSION lock_wait_timeout = 30").await;
    let ids: Vec<u64> = c
        .exec(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
            (name,),
        )
        .await
        .unwrap_or_default();
    for id in ids {
        // Gone already is fine.
        let _ = c.query_drop(format!("KILL CONNECTION {id}")).await;
    }
    let _ = c
        .query_drop(format!("DROP DATABASE IF EXISTS {name}"))
        .await;
    c.disconnect().await.ok();
}

pub async fn connect_pg(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// A MySQL/MariaDB connection as an application has one: the server's
/// defaults (`sql_mode` and all), except `utf8mb4` and a UTC session time
/// zone, so `TIMESTAMP` literals a test writes and values it reads are UTC.
pub async fn connect_mysql(url: &str) -> mysql_async::Conn {
    let opts = mysql_async::Opts::from_url(url).unwrap_or_else(|e| panic!("url {url}: {e}"));
    let opts = mysql_async::OptsBuilder::from_opts(opts).setup(vec![
        "SET NAMES utf8mb4, SESSION time_zone = '+00:00'".to_string(),
    ]);
    mysql_async::Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

fn replace_db(url: &str, db: &str) -> String {
    match url.rfind('/') {
        Some(i) => format!("{}/{db}", &url[..i]),
        None => format!("{url}/{db}"),
    }
}

/// Every column as text, as SQLite renders it (`NULL` for null, blobs as
/// `\x` and lower-case hex).
pub fn query_text(c: &Connection, sql: &str) -> Vec<Vec<String>> {
    null_as_text(query_nullable_text(c, sql))
}

/// [`query_text`] with SQL NULL as `None`.
pub fn query_nullable_text(c: &Connection, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut st = c.prepare(sql).expect("prepare");
    let n = st.column_count();
    let mut q = st.query([]).expect("query");
    let mut out = Vec::new();
    while let Some(r) = q.next().expect("row") {
        let mut row = Vec::new();
        for i in 0..n {
            let v: rusqlite::types::Value = r.get(i).expect("value");
            row.push(match v {
                rusqlite::types::Value::Null => None,
                rusqlite::types::Value::Integer(i) => Some(i.to_string()),
                rusqlite::types::Value::Real(f) => Some(format!("{f:?}")),
                rusqlite::types::Value::Text(s) => Some(s),
                rusqlite::types::Value::Blob(b) => Some(hex(&b)),
            });
        }
        out.push(row);
    }
    out
}

fn null_as_text(rows: Vec<Vec<Option<String>>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    format!("\\x{}", edgesync_core::value::hex_bytes::encode(b))
}

/// The stderr of a finished command, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---------------------------------------------------------------------------
// A connection to the central, as an application has one.
// ---------------------------------------------------------------------------

/// A long-lived connection to the central database, for tests that write and
/// read it many times (an "application" on the central).
pub enum CentralConn {
    Sqlite(Connection),
    Postgres(sqlx::PgConnection),
    Mysql(mysql_async::Conn),
}

impl Env {
    /// A connection to the central (SQLite: 30 s busy timeout, so an
    /// application write waits for edgesync's short transactions; MySQL: see
    /// [`connect_mysql`]).
    pub async fn central_conn(&self) -> CentralConn {
        match self.backend {
            Backend::Sqlite => {
                let c = Connection::open(self.central_sqlite_path()).expect("central");
                c.busy_timeout(std::time::Duration::from_secs(30))
                    .expect("busy timeout");
                CentralConn::Sqlite(c)
            }
            Backend::Postgres => CentralConn::Postgres(connect_pg(&self.central_url).await),
            Backend::Mysql => CentralConn::Mysql(connect_mysql(&self.central_url).await),
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
    pub fn backend(&self) -> Backend {
        match self {
            CentralConn::Sqlite(_) => Backend::Sqlite,
            CentralConn::Postgres(_) => Backend::Postgres,
            CentralConn::Mysql(_) => Backend::Mysql,
        }
    }

    /// Run a script (one or more statements) in the connection's current
    /// transaction state; the error text on failure.
    pub async fn run(&mut self, sql: impl Dialects) -> Result<(), String> {
        let text = sql.for_backend(self.backend()).to_string();
        match self {
            CentralConn::Sqlite(c) => c.execute_batch(&text).map_err(|e| e.to_string()),
            CentralConn::Postgres(c) => sqlx::raw_sql(sqlx::AssertSqlSafe(text))
                .execute(&mut *c)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            CentralConn::Mysql(c) => c.query_drop(text).await.map_err(|e| e.to_string()),
        }
    }

    /// Query rows (one `SELECT`), every column as text, the same on every
    /// backend: `NULL` for null, integers and decimals as the database
    /// writes them (decimals keep their scale), booleans as `0`/`1`, bytes
    /// as `\x` and lower-case hex, everything else as the database's text
    /// form (PostgreSQL and MySQL: the text protocol; MySQL sessions use UTC,
    /// see [`connect_mysql`]).
    pub async fn query(&mut self, sql: impl Dialects) -> Vec<Vec<String>> {
        null_as_text(self.query_nullable(sql).await)
    }

    /// [`CentralConn::query`] with SQL NULL as `None`.
    pub async fn query_nullable(&mut self, sql: impl Dialects) -> Vec<Vec<Option<String>>> {
        let text = sql.for_backend(self.backend()).to_string();
        match self {
            CentralConn::Sqlite(c) => query_nullable_text(c, &text),
            CentralConn::Postgres(c) => {
                let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(text.clone()))
                    .fetch_all(&mut *c)
                    .await
                    .unwrap_or_else(|e| panic!("central query failed: {e}\n{text}"));
                pg_text_rows(&rows)
            }
            CentralConn::Mysql(c) => {
                let rows: Vec<mysql_async::Row> = c
                    .query(&text)
                    .await
                    .unwrap_or_else(|e| panic!("central query failed: {e}\n{text}"));
                mysql_text_rows(rows)
            }
        }
    }

    /// Run one statement with one bytes parameter (`?` on SQLite and MySQL,
    /// `$1` on PostgreSQL), for values too large to write as SQL text (a
    /// MySQL statement must fit in `max_allowed_packet`).
    pub async fn run_with_bytes(&mut self, sql: impl Dialects, bytes: &[u8]) -> Result<(), String> {
        let text = sql.for_backend(self.backend()).to_string();
        match self {
            CentralConn::Sqlite(c) => c
                .execute(&text, [bytes])
                .map(|_| ())
                .map_err(|e| e.to_string()),
            CentralConn::Postgres(c) => sqlx::query(sqlx::AssertSqlSafe(text))
                .bind(bytes)
                .execute(&mut *c)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            CentralConn::Mysql(c) => c
                .exec_drop(text, (bytes.to_vec(),))
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Close the connection (MySQL: say goodbye instead of leaving the
    /// server to notice).
    pub async fn close(self) {
        if let CentralConn::Mysql(c) = self {
            c.disconnect().await.ok();
        }
    }
}

/// PostgreSQL rows in the text format (`raw_sql`, the simple query
/// protocol), rendered as [`CentralConn::query`] documents.
fn pg_text_rows(rows: &[sqlx::postgres::PgRow]) -> Vec<Vec<Option<String>>> {
    use sqlx::{Column as _, Row as _, TypeInfo as _, ValueRef as _};
    rows.iter()
        .map(|r| {
            r.columns()
                .iter()
                .enumerate()
                .map(|(i, col)| {
                    let v = r.try_get_raw(i).expect("column");
                    if v.is_null() {
                        return None;
                    }
                    let s = v.as_str().expect("text-format value").to_string();
                    Some(match (col.type_info().name(), s.as_str()) {
                        ("BOOL", "t") => "1".into(),
                        ("BOOL", "f") => "0".into(),
                        _ => s,
                    })
                })
                .collect()
        })
        .collect()
}

/// MySQL text-protocol rows, rendered as [`CentralConn::query`] documents.
fn mysql_text_rows(rows: Vec<mysql_async::Row>) -> Vec<Vec<Option<String>>> {
    use mysql_async::consts::ColumnType as T;
    rows.into_iter()
        .map(|r| {
            let binary: Vec<bool> = r
                .columns_ref()
                .iter()
                .map(|c| {
                    c.character_set() == 63
                        && matches!(
                            c.column_type(),
                            T::MYSQL_TYPE_TINY_BLOB
                                | T::MYSQL_TYPE_BLOB
                                | T::MYSQL_TYPE_MEDIUM_BLOB
                                | T::MYSQL_TYPE_LONG_BLOB
                                | T::MYSQL_TYPE_VAR_STRING
                                | T::MYSQL_TYPE_VARCHAR
                                | T::MYSQL_TYPE_STRING
                        )
                })
                .collect();
            r.unwrap()
                .into_iter()
                .zip(binary)
                .map(|(v, binary)| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) if binary => Some(hex(&b)),
                    mysql_async::Value::Bytes(b) => {
                        Some(String::from_utf8(b).expect("a text column that is not UTF-8"))
                    }
                    other => panic!("unexpected text-protocol value {other:?}"),
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
