//! Exactly-once in both directions, proven by replaying captured traffic.
//!
//! Push batches are built the way the engine builds them
//! (`EdgeDb::read_changes`), pushed, acknowledged, and then sent again: the
//! same batch, an older batch after a newer one, batches overlapping newer
//! ones, a batch whose answer was lost while the application kept writing.
//! The central's full state (rows with every `es_` column, tombstones,
//! `es_nodes.hi`, the conflict log, the version counter) must not move, and
//! the answers must be the ones the first push gave (or, for a row rewritten
//! since, the row as it now is). Pull pages are likewise applied twice and out
//! of order on the edge, which must not change.

use std::collections::BTreeMap;

use edgesync::engine::Engine;
use edgesync_core::{PullPage, PushBatch, PushOutcome, TableMapping, Value};

use crate::common::{query_text, series, Backend, Env, Sql};
use crate::for_each_backend_and_hub;

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE counters (id INTEGER PRIMARY KEY, name TEXT, n INTEGER NOT NULL);
             CREATE TABLE gone (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    postgres: "CREATE TABLE counters (id bigint PRIMARY KEY, name text, n bigint NOT NULL);
               CREATE TABLE gone (id bigint PRIMARY KEY, body text NOT NULL);",
    mysql: "CREATE TABLE counters (id bigint PRIMARY KEY, name longtext, n bigint NOT NULL);
            CREATE TABLE gone (id bigint PRIMARY KEY, body longtext NOT NULL);",
};

const TABLES: &str = r#"
[[table]]
name = "counters"
conflict = "server-wins"

[[table]]
name = "gone"
deletes = "hard"
conflict = "server-wins"
"#;

fn table<'a>(e: &'a Engine, node: &str, name: &str) -> &'a TableMapping {
    e.edges
        .iter()
        .find(|x| x.config.node == node)
        .expect("edge")
        .tables
        .iter()
        .find(|t| t.edge == name)
        .expect("table")
}

fn edge_db<'a>(e: &'a Engine, node: &str) -> &'a edgesync_sqlite::EdgeDb {
    &e.edges
        .iter()
        .find(|x| x.config.node == node)
        .expect("edge")
        .db
}

/// Everything on the central a re-applied change would touch.
async fn central_state(env: &Env) -> Vec<Vec<Vec<String>>> {
    let q = [
        Sql {
            postgres: "SELECT id, name, n, es_ver, es_deleted, es_hlc, es_origin, es_oseq, es_txid FROM counters ORDER BY counters.id",
            ..Sql::all("SELECT id, name, n, es_ver, es_deleted, es_hlc, es_origin, es_oseq FROM counters ORDER BY id")
        },
        Sql {
            postgres: "SELECT id, body, es_ver, es_deleted, es_hlc, es_origin, es_oseq, es_txid FROM gone ORDER BY gone.id",
            ..Sql::all("SELECT id, body, es_ver, es_deleted, es_hlc, es_origin, es_oseq FROM gone ORDER BY id")
        },
        Sql {
            sqlite: "SELECT tbl, key, es_ver, es_hlc, es_origin, es_oseq FROM es_tombstones ORDER BY tbl, key",
            postgres: "SELECT tbl, key::text, es_ver, es_hlc, es_origin, es_oseq, es_txid FROM es_tombstones ORDER BY tbl, key",
            mysql: "SELECT tbl, k, es_ver, es_hlc, es_origin, es_oseq FROM es_tombstones ORDER BY tbl, k",
        },
        Sql::all("SELECT node, tbl, hi FROM es_nodes ORDER BY node, tbl"),
        Sql {
            postgres: "SELECT id, tbl, node, key_json::text, base_ver FROM es_conflicts ORDER BY es_conflicts.id",
            ..Sql::all("SELECT id, tbl, node, key_json, base_ver FROM es_conflicts ORDER BY id")
        },
        Sql {
            postgres: "SELECT last_value FROM es_version",
            ..Sql::all("SELECT seq FROM es_ctl")
        },
    ];
    let mut out = Vec::new();
    for sql in q {
        out.push(env.central_query(sql).await);
    }
    out
}

/// The edge's rows with every `es_` column, its pending tombstones and push
/// watermarks (not timestamps).
fn edge_state(env: &Env, node: &str) -> Vec<Vec<Vec<String>>> {
    let c = env.edge(node);
    [
        "SELECT * FROM counters ORDER BY id",
        "SELECT * FROM gone ORDER BY id",
        "SELECT tbl, key, es_ver, es_cver FROM es_tombstones ORDER BY tbl, key",
        "SELECT tbl, push_wm FROM es_state ORDER BY tbl",
    ]
    .iter()
    .map(|q| query_text(&c, q))
    .collect()
}

fn conflicts_logged(state: &[Vec<Vec<String>>]) -> usize {
    state[4].len()
}

fn hi_of(state: &[Vec<Vec<String>>], node: &str, tbl: &str) -> i64 {
    state[3]
        .iter()
        .find(|r| r[0] == node && (r[1] == tbl || r[1].ends_with(&format!(".{tbl}"))))
        .map(|r| r[2].parse().expect("hi"))
        .unwrap_or_else(|| panic!("no es_nodes row for {node}/{tbl}: {:?}", state[3]))
}

/// A batch made of slices of captured batches, as an edge that lost track of
/// its watermark might send: `hi` is the highest sequence in it.
fn splice(parts: &[(&PushBatch, std::ops::Range<usize>)]) -> PushBatch {
    let mut out = parts[0].0.clone();
    out.changes.clear();
    out.bases.clear();
    let with_bases = parts.iter().all(|(b, _)| b.bases.len() == b.changes.len());
    for (b, r) in parts {
        for i in r.clone() {
            out.changes.push(b.changes[i].clone());
            if with_bases {
                out.bases.push(b.bases[i].clone());
            }
        }
    }
    out.hi = out
        .changes
        .iter()
        .map(|c| c.version)
        .max()
        .expect("non-empty");
    out
}

fn key_id(key: &[Value]) -> i64 {
    match key {
        [Value::Int(i)] => *i,
        other => panic!("unexpected key {other:?}"),
    }
}

/// The central state each key now has, from the answers of the latest push
/// of it: `Some(version)` of the row, or `None` for a hard delete (a
/// tombstone; its version is checked by
/// `a_hard_delete_is_answered_with_its_tombstone_version`).
fn versions_from(
    batch: &PushBatch,
    result: &edgesync_core::change::PushResult,
) -> BTreeMap<i64, Option<i64>> {
    batch
        .changes
        .iter()
        .zip(&result.outcomes)
        .map(|(c, o)| {
            let v = match o {
                PushOutcome::Applied { .. } if c.values.is_none() => None,
                PushOutcome::Applied { version } => Some(*version),
                PushOutcome::Superseded { row } => row.as_ref().map(|r| r.version),
            };
            (key_id(&c.key), v)
        })
        .collect()
}

/// The answer a replay must give: the original one, unless the key was
/// written again by a later push (`rewritten`, key -> current version): then
/// the row as it now is.
fn assert_replay_answer(
    what: &str,
    batch: &PushBatch,
    original: &edgesync_core::change::PushResult,
    replay: &edgesync_core::change::PushResult,
    rewritten: &BTreeMap<i64, Option<i64>>,
) {
    assert_eq!(
        replay.replayed,
        batch.changes.len(),
        "{what}: every change is a replay"
    );
    assert_eq!(replay.conflicts, 0, "{what}: a replay logs no conflict");
    for (i, c) in batch.changes.iter().enumerate() {
        let id = key_id(&c.key);
        match rewritten.get(&id) {
            Some(&now) => match &replay.outcomes[i] {
                PushOutcome::Superseded { row: Some(r) } if now.is_none() => assert!(
                    r.deleted && r.values.is_none() && r.version > 0,
                    "{what}: id {id} was deleted since; the answer carries its tombstone: {r:?}"
                ),
                PushOutcome::Superseded { row: Some(r) } => assert_eq!(
                    Some(r.version),
                    now,
                    "{what}: id {id} was rewritten since; the answer carries the current row"
                ),
                // A delete of a key whose current state is gone again.
                PushOutcome::Applied { .. } if c.deleted => {}
                other => panic!("{what}: id {id} was rewritten since, got {other:?}"),
            },
            None => assert_eq!(
                replay.outcomes[i], original.outcomes[i],
                "{what}: id {id} must be answered as the first time"
            ),
        }
    }
}

async fn replayed_push_batches_are_answered_and_never_reapplied(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &DDL).await;
    env.write_config(TABLES, "");
    env.init().await;
    env.edge("a")
        .execute_batch(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 10)
               INSERT INTO counters (id, name, n) SELECT i, 'r' || i, 1 FROM s;
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 6)
               INSERT INTO gone (id, body) SELECT i, 'g' || i FROM s;",
        )
        .expect("edge writes");
    let e = env.engine_ok().await;
    let (db, central) = (edge_db(&e, "a"), e.central.as_ref());
    let (tc, tg) = (table(&e, "a", "counters"), table(&e, "a", "gone"));

    // Push the inserts in batches of 4, acknowledging each, as push_table does.
    let mut sent = Vec::new();
    while let Some(b) = db.read_changes(tc, 4).await.expect("read") {
        let r = central.push("a", tc, &b).await.expect("push");
        db.ack_push(tc, &b, &r).await.expect("ack");
        sent.push((b, r));
    }
    assert_eq!(sent.len(), 3, "10 changes in batches of 4");
    // Newer writes: the application updates rows of the first batches; the
    // central updates row 5 too (a conflict, server-wins keeps the central's).
    env.edge("a")
        .execute_batch("UPDATE counters SET n = n + 1, name = 'a2' WHERE id IN (1, 2, 5, 9);")
        .expect("edge updates");
    env.central_run(Sql::all("UPDATE counters SET name = 'hq' WHERE id = 5;"))
        .await;
    let b4 = db.read_changes(tc, 100).await.expect("read").expect("b4");
    let r4 = central.push("a", tc, &b4).await.expect("push b4");
    db.ack_push(tc, &b4, &r4).await.expect("ack b4");
    assert_eq!(r4.conflicts, 1, "row 5 conflicts: {r4:?}");
    let rewritten = versions_from(&b4, &r4);
    // Hard deletes: insert 6 rows, then delete two of them.
    let bg1 = db.read_changes(tg, 100).await.expect("read").expect("bg1");
    let rg1 = central.push("a", tg, &bg1).await.expect("push bg1");
    db.ack_push(tg, &bg1, &rg1).await.expect("ack bg1");
    env.edge("a")
        .execute_batch("DELETE FROM gone WHERE id IN (2, 3);")
        .expect("edge deletes");
    let bg2 = db.read_changes(tg, 100).await.expect("read").expect("bg2");
    let rg2 = central.push("a", tg, &bg2).await.expect("push bg2");
    db.ack_push(tg, &bg2, &rg2).await.expect("ack bg2");
    let deleted = versions_from(&bg2, &rg2);

    let s = central_state(&env).await;
    let edge_before = edge_state(&env, "a");
    assert_eq!(conflicts_logged(&s), 1);
    assert_eq!(hi_of(&s, "a", "counters"), b4.hi);
    assert_eq!(hi_of(&s, "a", "gone"), bg2.hi);

    let none = BTreeMap::new();
    // 1. The newest batches again, twice each.
    for (what, t, b, r) in [
        ("latest counters batch again", tc, &b4, &r4),
        ("latest gone batch again", tg, &bg2, &rg2),
    ] {
        for _ in 0..2 {
            let again = central.push("a", t, b).await.expect(what);
            assert_replay_answer(what, b, r, &again, &none);
            assert_eq!(central_state(&env).await, s, "{what}: the central moved");
            db.ack_push(t, b, &again).await.expect("ack");
            assert_eq!(edge_state(&env, "a"), edge_before, "{what}: the edge moved");
        }
    }
    // 2. Older batches after newer ones, newest first.
    for (i, (b, r)) in sent.iter().enumerate().rev() {
        let what = format!("counters batch {} after batch 4", i + 1);
        let again = central.push("a", tc, b).await.expect("replay");
        assert_replay_answer(&what, b, r, &again, &rewritten);
        assert_eq!(central_state(&env).await, s, "{what}: the central moved");
        db.ack_push(tc, b, &again).await.expect("ack");
        assert_eq!(edge_state(&env, "a"), edge_before, "{what}: the edge moved");
    }
    let again = central.push("a", tg, &bg1).await.expect("replay");
    assert_replay_answer(
        "gone inserts after their deletes",
        &bg1,
        &rg1,
        &again,
        &deleted,
    );
    assert_eq!(
        central_state(&env).await,
        s,
        "old gone batch: the central moved"
    );
    db.ack_push(tg, &bg1, &again).await.expect("ack");
    assert_eq!(
        edge_state(&env, "a"),
        edge_before,
        "old gone batch: the edge moved"
    );
    // 3. Batches overlapping newer ones.
    let (b1, b2, b3) = (&sent[0].0, &sent[1].0, &sent[2].0);
    for (what, b) in [
        (
            "tail of 2 + all of 3 + head of 4",
            splice(&[(b2, 2..4), (b3, 0..b3.changes.len()), (&b4, 0..2)]),
        ),
        ("1 and 2 merged", splice(&[(b1, 0..4), (b2, 0..4)])),
    ] {
        let again = central.push("a", tc, &b).await.expect(what);
        assert_eq!(again.replayed, b.changes.len(), "{what}");
        assert_eq!(again.conflicts, 0, "{what}");
        assert_eq!(central_state(&env).await, s, "{what}: the central moved");
        db.ack_push(tc, &b, &again).await.expect("ack");
        assert_eq!(edge_state(&env, "a"), edge_before, "{what}: the edge moved");
    }
    // 4. An overlapping batch carrying fresh changes: only those apply, once.
    env.edge("a")
        .execute_batch(
            "UPDATE counters SET n = n + 1, name = 'a3' WHERE id IN (3, 10);
             INSERT INTO counters (id, name, n) VALUES (11, 'new', 1);",
        )
        .expect("edge writes");
    let b5 = db.read_changes(tc, 100).await.expect("read").expect("b5");
    assert_eq!(b5.changes.len(), 3);
    let overlap = splice(&[(&b4, 0..b4.changes.len()), (&b5, 0..3)]);
    let ro = central.push("a", tc, &overlap).await.expect("overlap");
    assert_eq!(ro.replayed, b4.changes.len(), "the old part is a replay");
    assert_eq!(ro.conflicts, 0);
    for o in &ro.outcomes[b4.changes.len()..] {
        assert!(
            matches!(o, PushOutcome::Applied { version } if *version > 0),
            "fresh change not applied: {o:?}"
        );
    }
    let s2 = central_state(&env).await;
    assert_eq!(hi_of(&s2, "a", "counters"), b5.hi);
    let r5 = central
        .push("a", tc, &b5)
        .await
        .expect("b5 after the overlap");
    assert_eq!(r5.replayed, 3);
    assert_eq!(r5.outcomes[..], ro.outcomes[b4.changes.len()..]);
    assert_eq!(
        central_state(&env).await,
        s2,
        "b5 replay: the central moved"
    );
    db.ack_push(tc, &b5, &r5).await.expect("ack b5");
    let edge_after = edge_state(&env, "a");
    db.ack_push(tc, &overlap, &ro).await.expect("ack overlap");
    assert_eq!(
        edge_state(&env, "a"),
        edge_after,
        "acking the overlap again moved the edge"
    );
    drop(e);

    // The engine finds nothing left to send, and both sides agree.
    let stats = env.sync_node("a").await;
    for st in &stats {
        assert_eq!(st.pushed, 0, "{}: everything was acknowledged", st.table);
    }
    assert_eq!(central_state(&env).await[..2], s2[..2]);
    let central = env
        .central_query(Sql::all(
            "SELECT id, name, n, es_deleted FROM counters ORDER BY id",
        ))
        .await;
    let edge = query_text(
        &env.edge("a"),
        "SELECT id, name, n, es_deleted FROM counters ORDER BY id",
    );
    assert_eq!(central, edge);
    let n: BTreeMap<i64, i64> = central
        .iter()
        .map(|r| (r[0].parse().expect("id"), r[2].parse().expect("n")))
        .collect();
    let want: BTreeMap<i64, i64> = (1..=11)
        .map(|i| (i, if [1, 2, 3, 9, 10].contains(&i) { 2 } else { 1 }))
        .collect();
    assert_eq!(n, want, "every write counted exactly once");
    assert_eq!(
        central[4][1], "hq",
        "server-wins kept the central's row 5 through every replay"
    );
    let gone = env
        .central_query(Sql::all("SELECT id FROM gone ORDER BY id"))
        .await;
    assert_eq!(
        gone,
        [1, 4, 5, 6]
            .iter()
            .map(|i| vec![i.to_string()])
            .collect::<Vec<_>>(),
        "replayed inserts did not resurrect hard-deleted rows"
    );
}

async fn a_lost_push_answer_is_resent_and_recognised(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &DDL).await;
    env.write_config(TABLES, "batch_rows = 3");
    env.init().await;
    env.edge("a")
        .execute_batch(
            "INSERT INTO counters (id, name, n) VALUES (1, 'x', 1), (2, 'x', 1), (3, 'x', 1), (4, 'x', 1);
             INSERT INTO gone (id, body) VALUES (1, 'g'), (2, 'g'), (3, 'g');",
        )
        .expect("edge writes");
    env.sync_all(2).await;
    // The application writes; a push reaches the central, but the edge never
    // hears the answer (killed between the central's commit and its ack).
    env.edge("a")
        .execute_batch(
            "UPDATE counters SET n = n + 1 WHERE id IN (1, 2, 3);
             DELETE FROM gone WHERE id = 1; UPDATE gone SET body = 'g2' WHERE id = 2;",
        )
        .expect("edge writes");
    {
        let e = env.engine_ok().await;
        let db = edge_db(&e, "a");
        for t in ["counters", "gone"] {
            let t = table(&e, "a", t);
            let b = db.read_changes(t, 100).await.expect("read").expect("batch");
            e.central.push("a", t, &b).await.expect("push");
        }
    }
    let lost = central_state(&env).await;
    // The application keeps writing to rows of the lost batch.
    env.edge("a")
        .execute_batch(
            "UPDATE counters SET n = n + 1 WHERE id = 2; DELETE FROM counters WHERE id = 3;
             UPDATE gone SET body = 'g3' WHERE id = 2; INSERT INTO gone (id, body) VALUES (1, 'again');",
        )
        .expect("edge writes");
    let stats = env.sync_node("a").await;
    for st in &stats {
        assert_eq!(
            st.conflicts, 0,
            "{}: the node's own earlier write is not a conflict",
            st.table
        );
    }
    env.sync_all(1).await;
    let after = central_state(&env).await;
    assert_eq!(
        conflicts_logged(&after),
        0,
        "no conflict may be logged for a lost answer"
    );
    // Row 1 was in the lost batch and not written since: the resend is a
    // replay, so its central version did not move.
    assert_eq!(
        lost[0][0], after[0][0],
        "row 1 was applied twice (its central stamps moved)"
    );
    let central = env
        .central_query(Sql::all(
            "SELECT id, name, n, es_deleted FROM counters ORDER BY id",
        ))
        .await;
    let want: Vec<Vec<String>> = [
        ["1", "x", "2", "0"],
        ["2", "x", "3", "0"],
        ["3", "x", "2", "1"],
        ["4", "x", "1", "0"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(central, want, "the newest application writes win");
    let gone = env
        .central_query(Sql::all("SELECT id, body FROM gone ORDER BY id"))
        .await;
    let want_gone: Vec<Vec<String>> = [["1", "again"], ["2", "g3"], ["3", "g"]]
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(gone, want_gone);
    for node in ["a", "b"] {
        let c = env.edge(node);
        assert_eq!(
            query_text(
                &c,
                "SELECT id, name, n, es_deleted FROM counters ORDER BY id"
            ),
            want,
            "edge {node}"
        );
        assert_eq!(
            query_text(&c, "SELECT id, body FROM gone ORDER BY id"),
            want_gone,
            "edge {node}"
        );
    }
}

/// Pull a whole pass page by page, applying each page as the engine does;
/// the pages, for replaying.
async fn pull_pass(e: &Engine, node: &str, t: &TableMapping, limit: usize) -> Vec<PullPage> {
    let db = edge_db(e, node);
    let mut token = db.pull_token(t).await.expect("token");
    let mut pages = Vec::new();
    loop {
        let page = e
            .central
            .pull(node, t, token.as_deref(), limit)
            .await
            .expect("pull");
        db.apply_pull(t, &page).await.expect("apply");
        let done = page.done;
        token = Some(page.token.clone());
        pages.push(page);
        if done {
            return pages;
        }
    }
}

async fn old_and_repeated_pull_pages_leave_the_edge_unchanged(backend: Backend) {
    let mut env = Env::new(backend, &["b"], &DDL).await;
    env.write_config(TABLES, "");
    env.central_run(Sql::all(&format!(
        "INSERT INTO counters (id, name, n) SELECT i, concat('c', i), 1 FROM {};
         INSERT INTO gone (id, body) SELECT i, concat('g', i) FROM {};",
        series(12),
        series(6)
    )))
    .await;
    env.init().await;
    let e = env.engine_ok().await;
    let (tc, tg) = (table(&e, "b", "counters"), table(&e, "b", "gone"));
    let db = edge_db(&e, "b");
    // The initial load, captured.
    let load_c = pull_pass(&e, "b", tc, 5).await;
    let load_g = pull_pass(&e, "b", tg, 4).await;
    let sql = "UPDATE counters SET name = 'p1', n = n + 1 WHERE id IN (1, 2, 7);
               DELETE FROM gone WHERE id = 4; DELETE FROM counters WHERE id = 12;";
    env.central_run(Sql::all(sql)).await;
    let one_c = pull_pass(&e, "b", tc, 3).await;
    let one_g = pull_pass(&e, "b", tg, 3).await;
    let sql = "UPDATE counters SET name = 'p2', n = n + 1 WHERE id IN (1, 7);
               INSERT INTO gone (id, body) VALUES (4, 'back'); UPDATE gone SET body = 'g5b' WHERE id = 5;
               INSERT INTO counters (id, name, n) VALUES (13, 'c13', 1);";
    env.central_run(Sql::all(sql)).await;
    let two_c = pull_pass(&e, "b", tc, 3).await;
    let two_g = pull_pass(&e, "b", tg, 3).await;
    let settled = edge_state(&env, "b");
    assert_eq!(
        query_text(&env.edge("b"), "SELECT body FROM gone WHERE id = 4"),
        vec![vec!["back".to_string()]]
    );

    // Replays: the newest pages again, older pages after newer ones, in
    // reverse order, the initial load once more.
    let replays: Vec<(&str, &TableMapping, Vec<&PullPage>)> = vec![
        ("newest pages again", tc, two_c.iter().collect()),
        ("newest gone pages again", tg, two_g.iter().collect()),
        ("older pages after newer", tc, one_c.iter().collect()),
        (
            "older gone pages (a tombstone) after the re-insert",
            tg,
            one_g.iter().collect(),
        ),
        ("older pages in reverse", tc, one_c.iter().rev().collect()),
        ("the initial load again", tc, load_c.iter().collect()),
        ("the initial gone load again", tg, load_g.iter().collect()),
    ];
    for (what, t, pages) in replays {
        for p in pages {
            let st = db.apply_pull(t, p).await.expect(what);
            assert_eq!(st.applied, 0, "{what}: a stale change was applied: {st:?}");
        }
        let mut now = edge_state(&env, "b");
        let mut want = settled.clone();
        // The stored pull token may go back (a page commits with its token);
        // that only makes the next pass repeat changes. The rows must not move.
        now.truncate(3);
        want.truncate(3);
        assert_eq!(now, want, "{what}: the edge's rows moved");
    }
    drop(e);
    // A normal sync after the token went back re-reads changes the edge
    // already has, applies none of them, and the edge equals the central.
    let stats = env.sync_node("b").await;
    for st in &stats {
        assert_eq!(
            st.pulled, 0,
            "{}: re-delivered changes must be skipped",
            st.table
        );
    }
    let central = env
        .central_query(Sql::all(
            "SELECT id, name, n, es_deleted FROM counters ORDER BY id",
        ))
        .await;
    // Row 12 was deleted by the central's application: on MySQL that removes
    // the central row, and the (soft-delete) edge keeps it marked deleted.
    let edge_sql = if backend.app_deletes_remove_central_rows() {
        "SELECT id, name, n, es_deleted FROM counters WHERE id <> 12 ORDER BY id"
    } else {
        "SELECT id, name, n, es_deleted FROM counters ORDER BY id"
    };
    assert_eq!(central, query_text(&env.edge("b"), edge_sql));
    if backend.app_deletes_remove_central_rows() {
        assert_eq!(
            query_text(
                &env.edge("b"),
                "SELECT id, name, n, es_deleted FROM counters WHERE id = 12"
            ),
            vec![vec!["12", "c12", "1", "1"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()]
        );
    }
    let central = env
        .central_query(Sql::all("SELECT id, body FROM gone ORDER BY id"))
        .await;
    assert_eq!(
        central,
        query_text(&env.edge("b"), "SELECT id, body FROM gone ORDER BY id")
    );
}

/// The contract (`core/src/change.rs`, `PushOutcome::Applied`): the version
/// answered for a hard delete is the tombstone's version, the key's new
/// conflict base on the edge.
async fn a_hard_delete_is_answered_with_its_tombstone_version(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &DDL).await;
    env.write_config(TABLES, "");
    env.init().await;
    env.edge("a")
        .execute_batch("INSERT INTO gone (id, body) VALUES (1, 'x'), (2, 'y');")
        .expect("edge writes");
    env.sync_all(1).await;
    env.edge("a")
        .execute_batch("DELETE FROM gone WHERE id = 1;")
        .expect("edge delete");
    let e = env.engine_ok().await;
    let t = table(&e, "a", "gone");
    let db = edge_db(&e, "a");
    let b = db.read_changes(t, 10).await.expect("read").expect("batch");
    let r = e.central.push("a", t, &b).await.expect("push");
    db.ack_push(t, &b, &r).await.expect("ack");
    let answered = match &r.outcomes[..] {
        [PushOutcome::Applied { version }] => *version,
        other => panic!("unexpected answer {other:?}"),
    };
    let tb = table(&e, "b", "gone");
    let mut token = edge_db(&e, "b").pull_token(tb).await.expect("token");
    let mut tomb = None;
    loop {
        let page = e
            .central
            .pull("b", tb, token.as_deref(), 10)
            .await
            .expect("pull");
        for c in &page.changes {
            if c.values.is_none() && key_id(&c.key) == 1 {
                tomb = Some(c.version);
            }
        }
        if page.done {
            break;
        }
        token = Some(page.token);
    }
    let tomb = tomb.expect("node b is sent the tombstone of id 1");
    assert_eq!(
        answered, tomb,
        "{backend:?} central: a hard delete was answered Applied {{ version: {answered} }}, but the \
         tombstone it wrote has version {tomb} (PushOutcome::Applied documents: for a hard delete, \
         the tombstone's version)"
    );
}

for_each_backend_and_hub!(
    a_hard_delete_is_answered_with_its_tombstone_version,
    replayed_push_batches_are_answered_and_never_reapplied,
    a_lost_push_answer_is_resent_and_recognised,
    old_and_repeated_pull_pages_leave_the_edge_unchanged,
);
