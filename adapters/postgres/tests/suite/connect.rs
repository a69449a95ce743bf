//! Connection errors name what is wrong, with the right kind.
//!
//! The test server uses trust authentication, so a wrong password cannot be
//! refused; a role that does not exist is (SQLSTATE 28000), which exercises
//! the same Auth path.

use edgesync_core::{Central, ErrorKind};
use edgesync_postgres::PgCentral;

use crate::common::{base_url, url_for, TestDb};

#[tokio::test]
async fn missing_database_is_a_config_error_naming_it() {
    let err = PgCentral::connect(&url_for("es_no_such_db_x"), None)
        .await
        .expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("'es_no_such_db_x'"), "{err}");
    assert!(err.message().contains("127.0.0.1:5432"), "{err}");
}

#[tokio::test]
async fn unreachable_server_is_a_connection_error() {
    let url = "postgres://postgres@127.0.0.1:1/test";
    let err = PgCentral::connect(url, None).await.expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(err.kind().is_retryable());
    assert!(
        err.message()
            .starts_with("cannot reach PostgreSQL at 127.0.0.1:1"),
        "{err}"
    );
}

#[tokio::test]
async fn refused_login_is_an_auth_error_naming_the_user() {
    let base = base_url();
    let url = base.replacen("postgres@", "es_nobody@", 1);
    let err = PgCentral::connect(&url, Some("wrong"))
        .await
        .expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(!err.kind().is_retryable());
    assert!(
        err.message()
            .starts_with("PostgreSQL refused login for user 'es_nobody' at 127.0.0.1:5432"),
        "{err}"
    );
}

#[tokio::test]
async fn role_without_login_is_refused_as_auth() {
    let db = TestDb::new().await;
    let role = format!("es_r_{}", &db.name[5..15]);
    db.exec(&format!("CREATE ROLE {role} NOLOGIN PASSWORD 'right'"))
        .await;
    let url = url_for(&db.name).replacen("postgres@", &format!("{role}@"), 1);
    let err = PgCentral::connect(&url, Some("right"))
        .await
        .expect_err("must fail");
    db.exec(&format!("DROP ROLE {role}")).await;
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.message().contains(&role), "{err}");
}

#[tokio::test]
async fn bad_url_is_a_config_error() {
    let err = PgCentral::connect("postgres://[::1", None)
        .await
        .expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn ping_and_backend() {
    let db = TestDb::new().await;
    db.central.ping().await.expect("ping");
    assert_eq!(db.central.backend(), "postgres");
}

/// The pool's connections go out with TCP_NODELAY (`src/nodelay.rs`): the
/// socket whose local port the server reports for a pool connection has it.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn pool_connections_have_tcp_nodelay() {
    use rustix::net::sockopt;
    use rustix::process::{getpid, pidfd_getfd, pidfd_open, PidfdFlags, PidfdGetfdFlags};

    let db = TestDb::new().await;
    let port: i32 = db.scalar("SELECT inet_client_port()").await;
    let pidfd = pidfd_open(getpid(), PidfdFlags::empty()).expect("pidfd_open");
    let mut found = None;
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let Some(fd) = entry
            .expect("entry")
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(dup) = pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()) else {
            continue;
        };
        let local = rustix::net::getsockname(&dup)
            .ok()
            .and_then(|a| std::net::SocketAddr::try_from(a).ok());
        if local.is_some_and(|a| i32::from(a.port()) == port) {
            found = Some(sockopt::tcp_nodelay(&dup).expect("TCP_NODELAY"));
        }
    }
    assert_eq!(found, Some(true), "socket with local port {port}");
}
