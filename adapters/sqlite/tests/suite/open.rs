//! Opening files: the errors name the thing at fault and change nothing.

use edgesync_core::ErrorKind;
use edgesync_sqlite::{EdgeDb, SqliteCentral};

use super::{app, Dir};

#[tokio::test]
async fn missing_directory_is_a_config_error_naming_it_and_creates_nothing() {
    let dir = Dir::new();
    let missing = dir.file("no-such-dir");
    let path = missing.join("edge.db");
    let err = EdgeDb::open(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message().contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(!missing.exists());
    let err = SqliteCentral::open(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!missing.exists());
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_corrupt_and_left_untouched() {
    let dir = Dir::new();
    let path = dir.file("notes.db");
    let bytes = b"these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &bytes).unwrap();
    let err = EdgeDb::open(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    let err = SqliteCentral::open(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(!dir.file("notes.db-wal").exists());
}

#[tokio::test]
async fn a_damaged_sqlite_file_is_corrupt_and_left_untouched() {
    let dir = Dir::new();
    let path = dir.file("damaged.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xA5u8, 8192));
    std::fs::write(&path, &bytes).unwrap();
    let err = EdgeDb::open(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[tokio::test]
async fn open_creates_a_wal_database_and_unprovisioned_files_have_no_node() {
    let dir = Dir::new();
    let path = dir.file("new.db");
    let db = EdgeDb::open(&path).await.unwrap();
    assert_eq!(db.path(), path.as_path());
    assert!(path.exists());
    assert_eq!(db.node().await.unwrap(), None);
    let mode: String = app(&path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // An empty file is an empty database, not a corrupt one.
    let empty = dir.file("empty.db");
    std::fs::write(&empty, b"").unwrap();
    EdgeDb::open(&empty).await.unwrap();
    // A clone shares the connection.
    let clone = db.clone();
    assert_eq!(clone.describe("nothing").await.unwrap(), None);
}
