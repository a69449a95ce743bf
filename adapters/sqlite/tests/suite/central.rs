//! The embedded SQLite central.

use edgesync_core::central::Central;
use edgesync_core::{
    Change, ConflictPolicy, DeleteMode, Direction, ErrorKind, PushBatch, PushOutcome, Value,
};
use rusqlite::Connection;

use super::{app, both_hard, both_soft, central, dump, items, row, Dir};

fn change(id: i64, name: &str, qty: i64, version: i64, base: Option<i64>) -> Change {
    Change {
        key: vec![Value::Int(id)],
        values: Some(row(id, name, qty)),
        deleted: false,
        version,
        base,
        hlc: 1000 << 16,
    }
}

fn batch(changes: Vec<Change>) -> PushBatch {
    PushBatch {
        hi: changes.iter().map(|c| c.version).max().unwrap_or(0),
        changes,
        bases: Vec::new(),
        fingerprint: None,
    }
}

fn state(c: &Connection) -> Vec<Vec<String>> {
    let mut s = dump(c, "SELECT * FROM items ORDER BY id");
    s.extend(dump(c, "SELECT * FROM es_tombstones ORDER BY key"));
    s.extend(dump(c, "SELECT seq FROM es_ctl"));
    s
}

#[tokio::test]
async fn init_is_idempotent_and_versions_existing_rows() {
    let dir = Dir::new();
    let path = dir.file("c.db");
    let a = app(&path);
    a.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);
         INSERT INTO items (id, name, qty) VALUES (1, 'a', 1), (2, 'b', 2);",
    )
    .unwrap();
    let t = both_soft();
    let c = central(&path, std::slice::from_ref(&t)).await;
    assert_eq!(c.backend(), "sqlite");
    c.ping().await.unwrap();
    assert_eq!(c.plan_init(std::slice::from_ref(&t)).await.unwrap(), vec![]);
    let page = c.pull("n", &t, None, 10).await.unwrap();
    assert!(page.done);
    let versions: Vec<i64> = page.changes.iter().map(|c| c.version).collect();
    assert_eq!(versions, vec![1, 2]);
    assert_eq!(page.changes[1].values, Some(row(2, "b", 2)));
    let d = c
        .describe(&edgesync_core::QualifiedName::parse("main.items"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.columns.len(), 3, "es_ columns left out");

    let mut missing = both_soft();
    missing.central = edgesync_core::QualifiedName::parse("nope");
    let err = c.plan_init(&[missing]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Schema);
    assert!(err.message().contains("nope"));

    let plan = c.plan_deinit(std::slice::from_ref(&t), true).await.unwrap();
    c.execute(&plan).await.unwrap();
    assert_eq!(
        dump(&a, "SELECT * FROM items ORDER BY id"),
        dump(&a, "SELECT 1, 'a', 1 UNION ALL SELECT 2, 'b', 2")
    );
    assert_eq!(c.plan_deinit(&[t], true).await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_batch_pushed_twice_is_applied_once() {
    let dir = Dir::new();
    let path = dir.file("c.db");
    let t = both_hard();
    let c = central(&path, std::slice::from_ref(&t)).await;
    app(&path)
        .execute("INSERT INTO items (id, name, qty) VALUES (3, 'c', 3)", [])
        .unwrap();
    let b = batch(vec![
        change(1, "a", 1, 1, None),
        change(2, "b", 2, 2, None),
        Change {
            values: None,
            deleted: true,
            ..change(3, "", 0, 3, Some(1))
        },
        // A delete of a row the central never had.
        Change {
            values: None,
            deleted: true,
            ..change(4, "", 0, 4, None)
        },
    ]);
    let first = c.push("n1", &t, &b).await.unwrap();
    assert_eq!((first.replayed, first.conflicts), (0, 0));
    assert_eq!(
        first.outcomes,
        vec![
            PushOutcome::Applied { version: 2 },
            PushOutcome::Applied { version: 3 },
            PushOutcome::Applied { version: 4 },
            PushOutcome::Applied { version: 0 },
        ]
    );
    let a = app(&path);
    let before = state(&a);
    let second = c.push("n1", &t, &b).await.unwrap();
    assert_eq!(second.replayed, 4);
    assert_eq!(second.outcomes, first.outcomes);
    assert_eq!(state(&a), before, "nothing applied twice");
    let p = c.progress().await.unwrap();
    assert_eq!(
        (p[0].node.as_str(), p[0].table.as_str(), p[0].hi),
        ("n1", "items", 4)
    );
    assert!(p[0].last_push.is_some());
    // A later write by someone else makes the replay answer Superseded.
    a.execute("UPDATE items SET qty = 9 WHERE id = 1", [])
        .unwrap();
    let third = c.push("n1", &t, &b).await.unwrap();
    match &third.outcomes[0] {
        PushOutcome::Superseded { row: Some(r) } => {
            assert_eq!(r.values, Some(row(1, "a", 9)));
            assert_eq!(r.version, 5);
        }
        other => panic!("{other:?}"),
    }
}

async fn conflict_case(
    policy: ConflictPolicy,
) -> (
    PushOutcome,
    Vec<Vec<String>>,
    Connection,
    edgesync_sqlite::SqliteCentral,
    Dir,
) {
    let dir = Dir::new();
    let path = dir.file("c.db");
    let t = items(Direction::Both, policy, DeleteMode::Soft);
    let c = central(&path, std::slice::from_ref(&t)).await;
    let r = c
        .push("n1", &t, &batch(vec![change(1, "base", 1, 1, None)]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0], PushOutcome::Applied { version: 1 });
    let a = app(&path);
    a.execute("UPDATE items SET name = 'central' WHERE id = 1", [])
        .unwrap();
    let r = c
        .push("n1", &t, &batch(vec![change(1, "edge", 2, 2, Some(1))]))
        .await
        .unwrap();
    assert_eq!(r.conflicts, 1);
    let rows = dump(&a, "SELECT name, qty, es_origin FROM items");
    (r.outcomes[0].clone(), rows, a, c, dir)
}

#[tokio::test]
async fn conflicts_follow_the_policy_and_are_logged() {
    let (outcome, rows, _a, c, _d) = conflict_case(ConflictPolicy::ServerWins).await;
    match outcome {
        PushOutcome::Superseded { row: Some(r) } => {
            assert_eq!(r.values, Some(row(1, "central", 1)));
            assert_eq!(r.version, 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rows, dump(&_a, "SELECT 'central', 1, NULL"));
    let log = c.conflicts(true, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    let rec = &log[0];
    assert_eq!(rec.strategy, ConflictPolicy::ServerWins);
    assert_eq!(rec.key, vec![("id".to_string(), Value::Int(1))]);
    assert_eq!(rec.base_version, Some(1));
    assert_eq!(rec.local.as_ref().unwrap()[1].1, Value::Text("edge".into()));
    assert_eq!(
        rec.central.as_ref().unwrap()[1].1,
        Value::Text("central".into())
    );
    assert_eq!(rec.result, rec.central);
    assert!(!rec.open);
    assert!(
        c.conflicts(false, 10).await.unwrap().is_empty(),
        "only manual ones are open"
    );

    let (outcome, rows, a, c, _d) = conflict_case(ConflictPolicy::ClientWins).await;
    assert_eq!(outcome, PushOutcome::Applied { version: 3 });
    assert_eq!(rows, dump(&a, "SELECT 'edge', 2, 'n1'"));
    let rec = &c.conflicts(true, 10).await.unwrap()[0];
    assert_eq!(rec.result, rec.local);

    let (outcome, _, _a, c, _d) = conflict_case(ConflictPolicy::Manual).await;
    assert!(matches!(outcome, PushOutcome::Superseded { .. }));
    let open = c.conflicts(false, 10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert!(open[0].open);
}

#[tokio::test]
async fn pulls_page_resume_from_the_token_and_skip_the_nodes_own_writes() {
    let dir = Dir::new();
    let path = dir.file("c.db");
    let t = both_hard();
    let c = central(&path, std::slice::from_ref(&t)).await;
    let a = app(&path);
    for i in 1..=5 {
        a.execute(
            "INSERT INTO items (id, name, qty) VALUES (?1, 'c', ?1)",
            [i],
        )
        .unwrap();
    }
    a.execute("DELETE FROM items WHERE id = 2", []).unwrap();

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = c.pull("n1", &t, token.as_deref(), 2).await.unwrap();
        pages += 1;
        assert!(page.changes.len() <= 2);
        seen.extend(
            page.changes
                .iter()
                .map(|ch| (ch.key[0].clone(), ch.deleted, ch.version)),
        );
        token = Some(page.token.clone());
        if page.done {
            break;
        }
    }
    assert_eq!(pages, 3);
    let ids: Vec<(Value, bool)> = seen.iter().map(|(k, d, _)| (k.clone(), *d)).collect();
    assert_eq!(
        ids,
        vec![
            (Value::Int(1), false),
            (Value::Int(3), false),
            (Value::Int(4), false),
            (Value::Int(5), false),
            (Value::Int(2), true),
        ],
    );
    assert!(seen.windows(2).all(|w| w[0].2 < w[1].2));
    c.push("n1", &t, &batch(vec![change(10, "from n1", 1, 1, None)]))
        .await
        .unwrap();
    // A pass that continues from a token leaves n1's own row out (its push
    // answer already told it the version)...
    let echo = c.pull("n1", &t, token.as_deref(), 100).await.unwrap();
    assert!(
        echo.changes.is_empty(),
        "n1's own row 10 is not echoed: {:?}",
        echo.changes
    );
    // ...but a full pass (an initial load or a re-snapshot builds the table
    // from it) includes it.
    let full = c.pull("n1", &t, None, 100).await.unwrap();
    assert!(full.changes.iter().any(|ch| ch.key == vec![Value::Int(10)]));
    // Another node does get it.
    let other = c.pull("n2", &t, None, 100).await.unwrap();
    assert!(other
        .changes
        .iter()
        .any(|ch| ch.key == vec![Value::Int(10)]));
    // Nothing new: an empty, finished page with a token at least as far.
    let again = c.pull("n1", &t, token.as_deref(), 2).await.unwrap();
    assert!(again.changes.is_empty() && again.done);
    let token = Some(again.token.clone());
    // A later write resumes from there.
    a.execute("UPDATE items SET qty = 42 WHERE id = 1", [])
        .unwrap();
    let next = c.pull("n1", &t, token.as_deref(), 2).await.unwrap();
    assert_eq!(next.changes.len(), 1);
    assert_eq!(next.changes[0].values, Some(row(1, "c", 42)));
    assert!(c.pull("n1", &t, Some("garbage"), 2).await.is_err());
}

#[tokio::test]
async fn a_constraint_violation_rolls_back_the_whole_batch() {
    let dir = Dir::new();
    let path = dir.file("c.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER CHECK (qty >= 0))",
    )
    .unwrap();
    drop(conn);
    let t = both_hard();
    let c = central(&path, std::slice::from_ref(&t)).await;
    let b = batch(vec![
        change(1, "ok", 1, 1, None),
        change(2, "bad", -5, 2, None),
    ]);
    let err = c.push("n1", &t, &b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Constraint);
    assert!(
        err.message().contains("items") && err.message().contains("id=2"),
        "{err}"
    );
    let a = app(&path);
    assert!(dump(&a, "SELECT * FROM items").is_empty());
    assert!(c.progress().await.unwrap().is_empty(), "hi not stored");
    let applying: i64 = a
        .query_row("SELECT applying FROM es_ctl", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applying, 0);
}

#[tokio::test]
async fn central_application_writes_are_versioned_and_deletes_tombstoned() {
    let dir = Dir::new();
    let path = dir.file("c.db");
    let t = both_hard();
    let c = central(&path, std::slice::from_ref(&t)).await;
    let a = app(&path);
    a.execute("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", [])
        .unwrap();
    a.execute("UPDATE items SET id = 2", []).unwrap();
    a.execute("DELETE FROM items", []).unwrap();
    let page = c.pull("n", &t, None, 10).await.unwrap();
    let got: Vec<(Value, bool, i64)> = page
        .changes
        .iter()
        .map(|ch| (ch.key[0].clone(), ch.deleted, ch.version))
        .collect();
    assert_eq!(
        got,
        vec![(Value::Int(1), true, 2), (Value::Int(2), true, 4)]
    );
    // An edge inserting a key the central deleted is an insert after a
    // delete, not a conflict.
    let r = c
        .push("n", &t, &batch(vec![change(1, "again", 1, 1, None)]))
        .await
        .unwrap();
    assert_eq!(
        (r.conflicts, r.outcomes[0].clone()),
        (0, PushOutcome::Applied { version: 5 })
    );
    let tombs = dump(&a, "SELECT key FROM es_tombstones");
    assert_eq!(
        tombs.len(),
        1,
        "the re-inserted key's tombstone is gone: {tombs:?}"
    );
}

#[tokio::test]
async fn a_central_soft_delete_keeps_the_row_and_is_pulled() {
    let dir = Dir::new();
    let path = dir.file("c.db");
    let t = both_soft();
    let c = central(&path, std::slice::from_ref(&t)).await;
    let a = app(&path);
    a.execute("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", [])
        .unwrap();
    assert_eq!(a.execute("DELETE FROM items", []).unwrap(), 0);
    assert_eq!(
        dump(&a, "SELECT id, es_deleted, es_ver FROM items"),
        dump(&a, "SELECT 1, 1, 2")
    );
    let page = c.pull("n", &t, None, 10).await.unwrap();
    assert_eq!(page.changes.len(), 1);
    assert!(page.changes[0].deleted && page.changes[0].values.is_some());
}
