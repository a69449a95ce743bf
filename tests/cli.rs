//! The read-only commands ops use — `status`, `check-config` — and the
//! selection flags, through the real binary.

use crate::common::{query_text, stderr, Backend, Env, Sql};
use crate::for_each_backend;
use crate::roundtrip::{ITEMS, TABLES};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn status_reports_pending_changes_and_errors(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &ITEMS).await;
    env.write_config(TABLES, "");
    let out = env.cli(&["check-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("init-sync would apply"),
        "{}",
        stdout(&out)
    );
    let out = env.cli(&["init-sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.cli(&["check-config"]);
    assert!(
        stdout(&out).contains("fully provisioned"),
        "{}",
        stdout(&out)
    );

    env.edge("a")
        .execute_batch("INSERT INTO items (id, name) VALUES (1, 'x'), (2, 'y'), (3, 'z');")
        .expect("writes");
    let out = env.cli(&["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    let row = |node: &str, table: &str| {
        report["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .find(|t| t["node"] == node && t["table"] == table)
            .cloned()
            .expect("status row")
    };
    assert_eq!(row("a", "items")["pending"], 3);
    assert_eq!(row("b", "items")["pending"], 0);
    assert_eq!(row("a", "items")["initial_load_complete"], false);

    // sync only node a: b stays untouched
    let out = env.cli(&["sync", "--node", "a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("a items: pushed 3"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("b items"), "{}", stdout(&out));
    let out = env.cli(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("NODE") && text.contains("PENDING"), "{text}");
    let a_line = text
        .lines()
        .find(|l| l.starts_with("a ") && l.contains("items"))
        .expect("a line");
    assert!(a_line.split_whitespace().nth(2) == Some("0"), "{a_line}");
    assert_eq!(
        query_text(&env.edge("b"), "SELECT count(*) FROM items"),
        vec![vec!["0".to_string()]]
    );

    // a change the central refuses is quarantined: sync and status exit 1
    env.central_run(Sql {
        sqlite: "CREATE TRIGGER no_notes BEFORE INSERT ON notes BEGIN SELECT RAISE(ABORT, 'notes are closed'); END;",
        ..Sql::all("ALTER TABLE notes ADD CONSTRAINT notes_closed CHECK (body = 'never');")
    })
    .await;
    env.edge("a")
        .execute_batch("INSERT INTO notes (id, body) VALUES (1, 'hello');")
        .expect("note");
    let out = env.cli(&["sync"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a quarantined change exits 1: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("quarantined"), "{}", stderr(&out));
    assert!(stderr(&out).contains("a/notes"), "{}", stderr(&out));
    let out = env.cli(&["status"]);
    assert_eq!(out.status.code(), Some(1), "status must flag the failure");
    let text = stdout(&out);
    let notes_line = text
        .lines()
        .find(|l| l.starts_with("a ") && l.contains("notes"))
        .expect("notes line");
    assert_eq!(
        notes_line.split_whitespace().nth(3),
        Some("1"),
        "the quarantined count is shown: {notes_line}"
    );
    let out = env.cli(&["quarantine", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("notes id=1"), "{}", stdout(&out));
}

for_each_backend!(status_reports_pending_changes_and_errors);

#[tokio::test]
async fn bad_config_names_the_key_and_exits_2() {
    let mut env = Env::new(Backend::Sqlite, &["a", "a"], &ITEMS).await;
    env.write_config(
        "[[table]]\nname = \"items\"\nconflcit = \"server-wins\"\n",
        "batch_rows = 0",
    );
    let out = env.cli(&["check-config"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("sync.toml"), "names the file: {err}");
    assert!(
        err.contains("conflcit") || err.contains("batch_rows"),
        "names the key at fault: {err}"
    );
    assert!(!env.edge_path("a").exists(), "nothing created");
}
