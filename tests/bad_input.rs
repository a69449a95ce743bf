//! Bad input gets one clear message naming the thing at fault, a non-zero
//! exit, and changes nothing — through the real binary.

use crate::common::{query_text, stderr, Backend, Env, Sql};
use crate::for_each_backend;
use crate::provisioning::central_schema;

const BAD: Sql = Sql {
    sqlite: "CREATE TABLE good (id INTEGER PRIMARY KEY, v TEXT);
             CREATE TABLE nokey (a INTEGER, b TEXT);",
    postgres: "CREATE TABLE good (id bigint PRIMARY KEY, v text);
               CREATE TABLE nokey (a bigint, b text);
               CREATE TABLE odd (id bigint PRIMARY KEY, span interval);",
    mysql: "CREATE TABLE good (id bigint PRIMARY KEY, v longtext);
            CREATE TABLE nokey (a bigint, b longtext);
            CREATE TABLE odd (id bigint PRIMARY KEY, span year);",
};

/// Run `init-sync` with `tables`; it must fail naming every `needles`, and
/// leave the central and the edge untouched; so must `check-config`.
pub async fn refused(env: &mut Env, tables: &str, needles: &[&str]) {
    env.write_config(tables, "");
    let before = central_schema(env).await;
    let edge_existed = env.edge_path("a").exists();
    let edge_schema = || {
        query_text(
            &env.edge("a"),
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY name",
        )
    };
    let edge_before = if edge_existed {
        edge_schema()
    } else {
        Vec::new()
    };
    let out = env.cli(&["init-sync"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "init-sync should fail for {tables}");
    for n in needles {
        assert!(err.contains(n), "error should name {n:?}: {err}");
    }
    assert_eq!(
        central_schema(env).await,
        before,
        "the central changed: {err}"
    );
    if edge_existed {
        let objs = query_text(
            &env.edge("a"),
            "SELECT name FROM sqlite_master WHERE name LIKE 'es\\_%' ESCAPE '\\'",
        );
        assert!(objs.is_empty(), "the edge was provisioned: {objs:?}");
        assert_eq!(
            edge_schema(),
            edge_before,
            "the edge's tables changed: {err}"
        );
    }
    // check-config reports the same problem and also fails
    let out = env.cli(&["check-config"]);
    assert!(!out.status.success());
    for n in needles {
        assert!(
            stderr(&out).contains(n),
            "check-config should name {n:?}: {}",
            stderr(&out)
        );
    }
}

async fn missing_central_table_is_named(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &BAD).await;
    refused(
        &mut env,
        "[[table]]\nname = \"good\"\n\n[[table]]\nname = \"orderz\"\n",
        &["orderz", "does not exist"],
    )
    .await;
}

async fn table_without_key_is_named(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &BAD).await;
    refused(
        &mut env,
        "[[table]]\nname = \"nokey\"\n",
        &["nokey", "no primary key"],
    )
    .await;
    // an explicit key must still be unique: rows are matched by it
    refused(
        &mut env,
        "[[table]]\nname = \"nokey\"\nkey = [\"a\"]\n",
        &["nokey", "unique index on (a)"],
    )
    .await;
    // with a unique index on the key it is accepted
    env.central_run(Sql::all("CREATE UNIQUE INDEX nokey_a ON nokey (a);"))
        .await;
    let out = env.cli(&["init-sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

async fn mapped_column_that_does_not_exist_is_named(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &BAD).await;
    refused(
        &mut env,
        "[[table]]\nname = \"good\"\ncolumns = { value = \"valeu\" }\n",
        &["valeu", "good"],
    )
    .await;
}

async fn unmappable_column_type_is_named(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &BAD).await;
    if let Some(native) = match backend {
        Backend::Postgres => Some("interval"),
        Backend::Mysql => Some("year"),
        Backend::Sqlite => None,
    } {
        refused(&mut env, "[[table]]\nname = \"odd\"\n", &["span", native]).await;
    } else {
        // On a SQLite edge, a DECIMAL column has NUMERIC affinity and would
        // store money as floating point: refused, naming the column.
        env.edge("a")
            .execute_batch("CREATE TABLE good (id INTEGER PRIMARY KEY, v DECIMAL(10,2));")
            .expect("edge table");
        refused(
            &mut env,
            "[[table]]\nname = \"good\"\n",
            &["v", "NUMERIC affinity"],
        )
        .await;
    }
}

async fn edge_type_that_would_lose_data_is_refused(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &BAD).await;
    env.edge("a")
        .execute_batch("CREATE TABLE good (id INTEGER PRIMARY KEY, v REAL);")
        .expect("edge table");
    refused(
        &mut env,
        "[[table]]\nname = \"good\"\n",
        &["column v", "good"],
    )
    .await;
}

async fn missing_edge_directory_is_named_and_nothing_created(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &BAD).await;
    env.write_config("[[table]]\nname = \"good\"\n", "");
    let cfg = std::fs::read_to_string(env.config_path()).expect("cfg");
    let missing = env.path().join("no-such-dir").join("a.db");
    std::fs::write(
        env.config_path(),
        cfg.replace(
            &env.edge_path("a").display().to_string(),
            &missing.display().to_string(),
        ),
    )
    .expect("cfg");
    let before = central_schema(&env).await;
    let out = env.cli(&["init-sync"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no-such-dir"), "{err}");
    assert!(
        !missing.parent().expect("parent").exists(),
        "directory must not be created"
    );
    assert_eq!(central_schema(&env).await, before);
}

async fn corrupt_edge_file_is_named_and_left_alone(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &BAD).await;
    env.write_config("[[table]]\nname = \"good\"\n", "");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(env.edge_path("a"), &junk).expect("junk");
    let before = central_schema(&env).await;
    let out = env.cli(&["init-sync"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("a.db"), "{err}");
    assert!(
        err.to_lowercase().contains("not a sqlite database")
            || err.to_lowercase().contains("corrupt"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(env.edge_path("a")).expect("read"),
        junk,
        "the file was modified"
    );
    assert_eq!(central_schema(&env).await, before);
}

for_each_backend!(
    missing_central_table_is_named,
    table_without_key_is_named,
    mapped_column_that_does_not_exist_is_named,
    unmappable_column_type_is_named,
    edge_type_that_would_lose_data_is_refused,
    missing_edge_directory_is_named_and_nothing_created,
    corrupt_edge_file_is_named_and_left_alone,
);

/// MySQL/MariaDB: a text key under a case-insensitive collation would make
/// `'a'` and `'A'` one central row but two edge rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_text_key_with_a_case_insensitive_collation_is_refused() {
    let mut env = Env::new(
        Backend::Mysql,
        &["a"],
        Sql::all(
            "CREATE TABLE tags (name varchar(20) COLLATE utf8mb4_general_ci PRIMARY KEY, n bigint);",
        ),
    )
    .await;
    refused(
        &mut env,
        "[[table]]\nname = \"tags\"\n",
        &["tags.name", "utf8mb4_general_ci", "COLLATE utf8mb4_bin"],
    )
    .await;
}

// Server-level failures, for each server backend.

async fn unreachable_central_host_is_named(url: &str) {
    let mut env = Env::new(Backend::Sqlite, &["a"], &BAD).await;
    env.central_url = url.into();
    env.write_config("[[table]]\nname = \"good\"\n", "");
    let out = env.cli(&["check-config"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(
        !env.edge_path("a").exists(),
        "nothing is created when the central is unreachable"
    );
}

/// The test servers let their admin user in without a password, so a wrong
/// password cannot be refused here; an unknown user is the login failure we
/// can provoke.
async fn refused_login_is_named(url: String) {
    let mut env = Env::new(Backend::Sqlite, &["a"], &BAD).await;
    env.central_url = url;
    env.write_config("[[table]]\nname = \"good\"\n", "");
    let out = env.cli(&["init-sync"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no_such_role_x"), "{err}");
}

#[tokio::test]
async fn unreachable_postgres_host_is_named() {
    unreachable_central_host_is_named("postgres://postgres@127.0.0.1:1/test").await;
}

#[tokio::test]
async fn unreachable_mysql_host_is_named() {
    unreachable_central_host_is_named("mysql://root@127.0.0.1:1/test").await;
}

#[tokio::test]
async fn refused_postgres_login_is_named() {
    let url = crate::common::pg_admin_url().replace("postgres@", "no_such_role_x@");
    refused_login_is_named(url).await;
}

#[tokio::test]
async fn refused_mysql_login_is_named() {
    let url = crate::common::mysql_admin_url().replace("root@", "no_such_role_x@");
    refused_login_is_named(url).await;
}
