//! Connection errors name what is wrong, with the right kind; every
//! connection runs the session edgesync sets.

use edgesync_core::{Central, ErrorKind};
use edgesync_mysql::MysqlCentral;
use mysql_async::prelude::Queryable;

use crate::common::{base_url, url_for, TestDb};

#[tokio::test]
async fn missing_database_is_a_config_error_naming_it() {
    let err = MysqlCentral::connect(&url_for("es_no_such_db_x"), None)
        .await
        .expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("'es_no_such_db_x'"), "{err}");
    assert!(err.message().contains("127.0.0.1:3306"), "{err}");
}

#[tokio::test]
async fn a_url_without_a_database_is_a_config_error() {
    let base = base_url();
    let (head, _) = base.rsplit_once('/').expect("db");
    let err = MysqlCentral::connect(head, None)
        .await
        .expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("names no database"), "{err}");
}

#[tokio::test]
async fn unreachable_server_is_a_connection_error() {
    let err = MysqlCentral::connect("mysql://root@127.0.0.1:1/test", None)
        .await
        .expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(err.kind().is_retryable());
    assert!(
        err.message()
            .starts_with("cannot reach MySQL at 127.0.0.1:1"),
        "{err}"
    );
}

#[tokio::test]
async fn refused_login_is_an_auth_error_naming_user_and_server() {
    let url = base_url().replacen("root@", "es_nobody@", 1);
    let err = MysqlCentral::connect(&url, Some("wrong"))
        .await
        .expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(!err.kind().is_retryable());
    assert!(
        err.message()
            .starts_with("MySQL refused login for user 'es_nobody'@127.0.0.1:3306"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_url_is_a_config_error() {
    let err = MysqlCentral::connect("postgres://x@y/z", None)
        .await
        .expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn ping_backend_and_the_session_every_connection_gets() {
    let db = TestDb::new().await;
    db.central.ping().await.expect("ping");
    assert_eq!(db.central.backend(), "mysql");
    assert_eq!(db.central.database(), db.name);
    let mut conn = db.central.pool().get_conn().await.expect("conn");
    let (mode, tz, cs): (String, String, String) = conn
        .query_first("SELECT @@SESSION.sql_mode, @@SESSION.time_zone, @@character_set_connection")
        .await
        .expect("session")
        .expect("row");
    for flag in [
        "STRICT_ALL_TABLES",
        "NO_ZERO_DATE",
        "NO_ZERO_IN_DATE",
        "ERROR_FOR_DIVISION_BY_ZERO",
        "NO_ENGINE_SUBSTITUTION",
    ] {
        assert!(mode.contains(flag), "{mode}");
    }
    assert_eq!((tz.as_str(), cs.as_str()), ("+00:00", "utf8mb4"));
}

/// Pooled connections are reused, not opened per call: twenty pulls run on
/// connections the pool already had (the server's connection ids repeat),
/// and an idle one stays open afterwards.
#[tokio::test]
async fn pooled_connections_are_reused_between_calls() {
    let db = TestDb::new().await;
    let m = crate::common::items(
        &db,
        edgesync_core::ConflictPolicy::ServerWins,
        edgesync_core::DeleteMode::Hard,
    )
    .await;
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..20 {
        db.central.pull("e", &m, None, 10).await.expect("pull");
        let mut conn = db.central.pool().get_conn().await.expect("conn");
        let id: u64 = conn
            .query_first("SELECT CONNECTION_ID()")
            .await
            .expect("id")
            .expect("row");
        ids.insert(id);
    }
    assert!(
        ids.len() <= 2,
        "20 checkouts after pulls used {} connections: {ids:?}",
        ids.len()
    );
    let idle: i64 = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{}' AND COMMAND = 'Sleep'",
            db.name
        ))
        .await;
    assert!(idle >= 1, "no idle pooled connection left open");
}
