//! Crash safety: the real `edgesync sync` binary, SIGKILLed at random moments
//! over and over while the applications keep writing.
//!
//! The workload is large enough for many batches on each side (20 000 central
//! rows, 10 000 rows on each of two edges, batches and pages of 200 rows), so
//! kills land in the middle of pushes, between a central commit and the edge's
//! acknowledgement, in the middle of pull passes and initial loads. Between
//! and during runs, three applications (the central's and each edge's) write
//! in multi-row transactions: inserts, updates, soft deletes, hard deletes and
//! re-inserts of deleted keys. Each writer owns its own key range, so the final
//! value of every owned row is known exactly; a shared range of "hot" rows is
//! written by everyone (resolved by server-wins, checked for convergence).
//!
//! After a final complete `sync` (twice), every row on every side is compared
//! column by column with the others and with the model: nothing lost, nothing
//! duplicated, nothing half-applied.
//!
//! `EDGESYNC_CHAOS_ITERATIONS` (default 20) sets the number of kills per
//! central backend — 60 over the three backends in a CI run, which keeps the
//! suite's run time reasonable with MariaDB added; `EDGESYNC_CHAOS_SEED`
//! replays a workload.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{env_usize, query_text, seed_from_env, series, Backend, CentralConn, Env, Sql};
use crate::for_each_backend;

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE items (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, val TEXT, n INTEGER NOT NULL, amount DECIMAL_TEXT(12,2));
             CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, n INTEGER NOT NULL);",
    postgres: "CREATE TABLE items (id bigint PRIMARY KEY, owner text NOT NULL, val text, n bigint NOT NULL, amount numeric(12,2));
               CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL, n bigint NOT NULL);",
    mysql: "CREATE TABLE items (id bigint PRIMARY KEY, owner longtext NOT NULL, val longtext, n bigint NOT NULL, amount decimal(12,2));
            CREATE TABLE notes (id bigint PRIMARY KEY, body longtext NOT NULL, n bigint NOT NULL);",
};

const TABLES: &str = r#"
[[table]]
name = "items"
conflict = "server-wins"

[[table]]
name = "notes"
deletes = "hard"
conflict = "server-wins"
"#;

const CENTRAL_ITEMS: i64 = 20_000;
const CENTRAL_NOTES: i64 = 2_000;
const EDGE_ITEMS: i64 = 10_000;
const EDGE_NOTES: i64 = 1_000;
/// Items 1..=HOT are written by every application.
const HOT: i64 = 100;
/// Writers: the central application, then one per edge. Each owns the ids
/// from its base up.
const WRITERS: [(&str, i64); 3] = [("hq", 0), ("a", 1_000_000), ("b", 2_000_000)];

#[derive(Debug, Clone, PartialEq)]
struct Item {
    owner: String,
    val: Option<String>,
    n: i64,
    amount: Option<String>,
    deleted: bool,
}

impl Item {
    fn row(&self, id: i64) -> Vec<String> {
        vec![
            id.to_string(),
            self.owner.clone(),
            self.val.clone().unwrap_or_else(|| "NULL".into()),
            self.n.to_string(),
            self.amount.clone().unwrap_or_else(|| "NULL".into()),
            if self.deleted { "1" } else { "0" }.into(),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Note {
    body: String,
    n: i64,
}

fn amount(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn lit(s: &Option<String>) -> String {
    match s {
        None => "NULL".into(),
        Some(s) => format!("'{}'", s.replace('\'', "''")),
    }
}

/// What the applications committed (owned rows only; hot rows are checked
/// for convergence, not against the model).
#[derive(Default)]
struct Model {
    items: BTreeMap<i64, Item>,
    notes: BTreeMap<i64, Note>,
}

/// One application's bookkeeping.
struct Writer {
    name: &'static str,
    next_item: i64,
    next_note: i64,
    live_items: Vec<i64>,
    live_notes: Vec<i64>,
    dead_notes: Vec<i64>,
}

enum Effect {
    Item(i64, Item),
    NoteSet(i64, Note),
    NoteDel(i64),
}

impl Writer {
    /// One application transaction: SQL (the same text for every backend)
    /// and what it does to the model once committed.
    fn txn(&mut self, rng: &mut StdRng, model: &Model) -> (String, Vec<Effect>) {
        let mut sql = Vec::new();
        let mut fx = Vec::new();
        // At most one shared row per transaction: a central transaction
        // locking two of them in random order could deadlock with a push.
        let mut hot_done = false;
        for _ in 0..rng.random_range(1..=8) {
            match rng.random_range(0..100) {
                0..=39 if !self.live_items.is_empty() => {
                    let id = self.live_items[rng.random_range(0..self.live_items.len())];
                    let mut it = current_item(model, &fx, id);
                    it.n += 1;
                    it.val = word(rng);
                    it.amount = rng
                        .random_bool(0.9)
                        .then(|| amount(rng.random_range(0..10_000_000)));
                    sql.push(format!(
                        "UPDATE items SET val = {}, n = {}, amount = {} WHERE id = {id}",
                        lit(&it.val),
                        it.n,
                        lit(&it.amount)
                    ));
                    fx.push(Effect::Item(id, it));
                }
                40..=59 => {
                    let id = self.next_item;
                    self.next_item += 1;
                    let it = Item {
                        owner: self.name.into(),
                        val: word(rng),
                        n: 0,
                        amount: Some(amount(rng.random_range(0..100_000))),
                        deleted: false,
                    };
                    sql.push(format!(
                        "INSERT INTO items (id, owner, val, n, amount) VALUES ({id}, '{}', {}, 0, {})",
                        it.owner,
                        lit(&it.val),
                        lit(&it.amount)
                    ));
                    self.live_items.push(id);
                    fx.push(Effect::Item(id, it));
                }
                60..=64 if self.live_items.len() > 1 => {
                    let i = rng.random_range(0..self.live_items.len());
                    let id = self.live_items.swap_remove(i);
                    let mut it = current_item(model, &fx, id);
                    it.deleted = true;
                    sql.push(format!("DELETE FROM items WHERE id = {id}"));
                    fx.push(Effect::Item(id, it));
                }
                65..=72 if !hot_done => {
                    hot_done = true;
                    let id = rng.random_range(1..=HOT);
                    sql.push(format!(
                        "UPDATE items SET val = 'hot {} {}', n = n + 1 WHERE id = {id}",
                        self.name,
                        rng.random_range(0..1000)
                    ));
                }
                73..=84 if !self.live_notes.is_empty() => {
                    let id = self.live_notes[rng.random_range(0..self.live_notes.len())];
                    let prev = fx
                        .iter()
                        .rev()
                        .find_map(|f| match f {
                            Effect::NoteSet(i, n) if *i == id => Some(n.n),
                            _ => None,
                        })
                        .unwrap_or_else(|| model.notes[&id].n);
                    let note = Note {
                        body: word(rng).unwrap_or_else(|| "-".into()),
                        n: prev + 1,
                    };
                    sql.push(format!(
                        "UPDATE notes SET body = {}, n = {} WHERE id = {id}",
                        lit(&Some(note.body.clone())),
                        note.n
                    ));
                    fx.push(Effect::NoteSet(id, note));
                }
                85..=89 => {
                    // a new note, or the re-insert of a deleted key
                    let id = if !self.dead_notes.is_empty() && rng.random_bool(0.5) {
                        let i = rng.random_range(0..self.dead_notes.len());
                        self.dead_notes.swap_remove(i)
                    } else {
                        self.next_note += 1;
                        self.next_note - 1
                    };
                    let note = Note {
                        body: format!("note {id} {}", rng.random_range(0..1000)),
                        n: 0,
                    };
                    sql.push(format!(
                        "INSERT INTO notes (id, body, n) VALUES ({id}, '{}', 0)",
                        note.body
                    ));
                    self.live_notes.push(id);
                    fx.push(Effect::NoteSet(id, note));
                }
                90..=94 if self.live_notes.len() > 1 => {
                    let i = rng.random_range(0..self.live_notes.len());
                    let id = self.live_notes.swap_remove(i);
                    sql.push(format!("DELETE FROM notes WHERE id = {id}"));
                    self.dead_notes.push(id);
                    fx.push(Effect::NoteDel(id));
                }
                _ => {}
            }
        }
        (sql.join(";\n"), fx)
    }
}

impl Writer {
    /// A large application transaction: one statement bumping the counter
    /// of hundreds of owned rows (several push batches / pull pages).
    fn bulk(&mut self, rng: &mut StdRng, model: &Model) -> (String, Vec<Effect>) {
        let mut ids: Vec<i64> = (0..rng.random_range(200..=1500))
            .map(|_| self.live_items[rng.random_range(0..self.live_items.len())])
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let fx = ids
            .iter()
            .map(|id| {
                let mut it = model.items[id].clone();
                it.n += 1;
                Effect::Item(*id, it)
            })
            .collect();
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        (
            format!(
                "UPDATE items SET n = n + 1 WHERE id IN ({})",
                list.join(", ")
            ),
            fx,
        )
    }
}

/// An owned item as this transaction has left it so far.
fn current_item(model: &Model, fx: &[Effect], id: i64) -> Item {
    fx.iter()
        .rev()
        .find_map(|f| match f {
            Effect::Item(i, it) if *i == id => Some(it.clone()),
            _ => None,
        })
        .unwrap_or_else(|| model.items[&id].clone())
}

fn word(rng: &mut StdRng) -> Option<String> {
    const WORDS: [&str; 8] = [
        "α",
        "ß",
        "O'Brien",
        "日本",
        "emoji 👍",
        "",
        "plain",
        "tab\tx",
    ];
    rng.random_bool(0.95).then(|| {
        format!(
            "{} {}",
            WORDS[rng.random_range(0..WORDS.len())],
            rng.random_range(0..1_000_000)
        )
    })
}

fn apply(model: &mut Model, fx: Vec<Effect>) {
    for f in fx {
        match f {
            Effect::Item(id, it) => {
                model.items.insert(id, it);
            }
            Effect::NoteSet(id, n) => {
                model.notes.insert(id, n);
            }
            Effect::NoteDel(id) => {
                model.notes.remove(&id);
            }
        }
    }
}

/// Run one application transaction of writer `w` (0 = the central).
async fn app_txn(w: usize, sql: &str, central: &mut CentralConn, edges: &[rusqlite::Connection]) {
    if sql.is_empty() {
        return;
    }
    match w {
        0 => central
            .run(Sql {
                sqlite: &format!("BEGIN IMMEDIATE; {sql}; COMMIT;"),
                ..Sql::all(&format!("BEGIN; {sql}; COMMIT;"))
            })
            .await
            .unwrap_or_else(|e| panic!("central application write failed: {e}\n{sql}")),
        w => edges[w - 1]
            .execute_batch(&format!("BEGIN IMMEDIATE; {sql}; COMMIT;"))
            .unwrap_or_else(|e| panic!("edge application write failed: {e}\n{sql}")),
    }
}

fn spawn_sync(env: &Env, log: &std::path::Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_edgesync"))
        .arg("--config")
        .arg(env.config_path())
        .arg("sync")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn edgesync sync")
}

async fn items_rows(env: &Env) -> Vec<Vec<String>> {
    env.central_query(Sql::all(
        "SELECT id, owner, val, n, amount, es_deleted FROM items ORDER BY id",
    ))
    .await
}

async fn notes_rows(env: &Env) -> Vec<Vec<String>> {
    env.central_query(Sql::all("SELECT id, body, n FROM notes ORDER BY id"))
        .await
}

fn by_id(rows: Vec<Vec<String>>) -> BTreeMap<i64, Vec<String>> {
    rows.into_iter()
        .map(|r| (r[0].parse().expect("id"), r))
        .collect()
}

async fn the_real_binary_killed_at_random_loses_and_duplicates_nothing(backend: Backend) {
    let seed = seed_from_env("EDGESYNC_CHAOS_SEED", &format!("chaos({backend:?})"));
    let target_kills = env_usize("EDGESYNC_CHAOS_ITERATIONS", 20);
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut env = Env::new(backend, &["a", "b"], &DDL).await;
    env.write_config(TABLES, "batch_rows = 200\npage_rows = 200");

    // The central's rows exist before provisioning (init-sync versions them).
    // amount = i / 100, exactly: SQLite has no decimal type, so it is built
    // as text there.
    let fill = |amount: &str| {
        format!(
            "INSERT INTO items (id, owner, val, n, amount) SELECT i, 'hq', concat('c', i), 0, {amount} FROM {};
             INSERT INTO notes (id, body, n) SELECT i, concat('n', i), 0 FROM {};",
            series(CENTRAL_ITEMS),
            series(CENTRAL_NOTES)
        )
    };
    env.central_run(Sql {
        sqlite: &fill("printf('%d.%02d', i / 100, i % 100)"),
        ..Sql::all(&fill("i / 100.0"))
    })
    .await;
    env.init().await;
    let mut model = Model::default();
    let mut writers: Vec<Writer> = Vec::new();
    for (name, base) in WRITERS {
        let (items, notes) = if base == 0 {
            (CENTRAL_ITEMS, CENTRAL_NOTES)
        } else {
            (EDGE_ITEMS, EDGE_NOTES)
        };
        writers.push(Writer {
            name,
            next_item: base + items + 1,
            next_note: base + notes + 1,
            live_items: ((base + 1).max(HOT + 1)..=base + items).collect(),
            live_notes: (base + 1..=base + notes).collect(),
            dead_notes: Vec::new(),
        });
        for i in 1..=items {
            model.items.insert(
                base + i,
                Item {
                    owner: name.into(),
                    val: Some(format!("{}{i}", if base == 0 { "c" } else { name })),
                    n: 0,
                    amount: Some(amount(i)),
                    deleted: false,
                },
            );
        }
        for i in 1..=notes {
            model.notes.insert(
                base + i,
                Note {
                    body: format!("{}{i}", if base == 0 { "n" } else { name }),
                    n: 0,
                },
            );
        }
    }
    // The edges' large offline edits.
    let edges: Vec<rusqlite::Connection> = ["a", "b"].iter().map(|n| env.edge_app(n)).collect();
    for (k, node) in ["a", "b"].iter().enumerate() {
        let base = WRITERS[k + 1].1;
        edges[k]
            .execute_batch(&format!(
                "BEGIN;
                 WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {EDGE_ITEMS})
                   INSERT INTO items (id, owner, val, n, amount)
                   SELECT {base} + i, '{node}', '{node}' || i, 0, printf('%d.%02d', i / 100, i % 100) FROM s;
                 WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {EDGE_NOTES})
                   INSERT INTO notes (id, body, n) SELECT {base} + i, '{node}' || i, 0 FROM s;
                 COMMIT;"
            ))
            .expect("edge bulk insert");
    }
    let mut central = env.central_conn().await;
    let setup = started.elapsed();

    // Kill, restart, repeat, while the applications write. The kill moment
    // is uniform over the expected length of a run, learned from the runs
    // that finish (and stretched while none does), so kills land in every
    // phase: start-up, pushes, acknowledgements, pull pages.
    let log = env.path().join("sync-run.log");
    let (mut kills, mut completed, mut runs) = (0usize, 0usize, 0usize);
    let mut app_txns = 0usize;
    let mut expected_ms = 800.0f64;
    while kills < target_kills {
        runs += 1;
        assert!(
            runs <= target_kills * 4,
            "{runs} runs but only {kills} were still running when killed"
        );
        let kill_at = Duration::from_millis(rng.random_range(0..=(expected_ms * 1.1) as u64 + 20));
        let write_at = kill_at.mul_f64(rng.random_range(0.0..1.0));
        let mut child = spawn_sync(&env, &log);
        let t0 = Instant::now();
        tokio::time::sleep(write_at).await;
        for (w, writer) in writers.iter_mut().enumerate() {
            if rng.random_bool(0.5) {
                let (sql, fx) = writer.bulk(&mut rng, &model);
                app_txn(w, &sql, &mut central, &edges).await;
                apply(&mut model, fx);
                app_txns += 1;
            }
            if rng.random_bool(0.7) {
                for _ in 0..rng.random_range(1..=2) {
                    let (sql, fx) = writer.txn(&mut rng, &model);
                    app_txn(w, &sql, &mut central, &edges).await;
                    apply(&mut model, fx);
                    app_txns += 1;
                }
            }
        }
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                completed += 1;
                expected_ms = 0.7 * expected_ms + 0.3 * t0.elapsed().as_millis() as f64;
                assert!(
                    status.success(),
                    "an uninterrupted sync run failed ({status}) after {kills} kills (seed {seed}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                break;
            }
            if t0.elapsed() >= kill_at {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                kills += 1;
                expected_ms *= 1.03;
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let chaos = started.elapsed() - setup;

    // The final complete sync, twice, through the real binary.
    for round in 0..2 {
        let out = env.cli(&["sync"]);
        assert!(
            out.status.success(),
            "final sync {round} failed (seed {seed}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            crate::common::stderr(&out)
        );
    }
    // Settled: a further sync moves nothing.
    for node in ["a", "b"] {
        for s in env.sync_node(node).await {
            assert_eq!(
                (s.pushed, s.pulled),
                (0, 0),
                "{node}/{}: an idle sync moved rows (seed {seed})",
                s.table
            );
        }
    }

    // Column by column, every side against the others and the model.
    let mut problems = Vec::new();
    let c_items = by_id(items_rows(&env).await);
    let c_notes = by_id(notes_rows(&env).await);
    for (id, it) in &model.items {
        if *id <= HOT {
            continue;
        }
        match c_items.get(id) {
            Some(r) if *r == it.row(*id) => {}
            // Inserted and deleted on an edge before any push: a delete of
            // a row the central never had is "already there" (design.md),
            // so the central never gets it.
            None if it.deleted && it.owner != "hq" => {}
            // Deleted by the central's application, which removes the row
            // on MySQL.
            None if it.deleted && backend.app_deletes_remove_central_rows() => {}
            other => problems.push(format!(
                "central items {id}: want {:?}, have {other:?}",
                it.row(*id)
            )),
        }
    }
    for id in c_items.keys() {
        if *id > HOT && !model.items.contains_key(id) {
            problems.push(format!(
                "central items {id}: never written by any application"
            ));
        }
    }
    let want_notes: BTreeMap<i64, Vec<String>> = model
        .notes
        .iter()
        .map(|(id, n)| (*id, vec![id.to_string(), n.body.clone(), n.n.to_string()]))
        .collect();
    if c_notes != want_notes {
        for (id, w) in &want_notes {
            if c_notes.get(id) != Some(w) {
                problems.push(format!(
                    "central notes {id}: want {w:?}, have {:?}",
                    c_notes.get(id)
                ));
            }
        }
        for id in c_notes.keys() {
            if !want_notes.contains_key(id) {
                problems.push(format!("central notes {id}: should be deleted"));
            }
        }
    }
    for node in ["a", "b"] {
        let e = env.edge(node);
        let e_items = by_id(query_text(
            &e,
            "SELECT id, owner, val, n, amount, es_deleted FROM items ORDER BY id",
        ));
        let e_notes = by_id(query_text(&e, "SELECT id, body, n FROM notes ORDER BY id"));
        for (id, c) in &c_items {
            match e_items.get(id) {
                Some(r) if r == c => {}
                // a row deleted before this edge ever saw it is not created
                None if c[5] == "1" => {}
                other => problems.push(format!(
                    "edge {node} items {id}: central {c:?}, edge {other:?}"
                )),
            }
        }
        for (id, r) in &e_items {
            if !c_items.contains_key(id) && r[5] != "1" {
                problems.push(format!(
                    "edge {node} items {id}: live here, not on the central: {r:?}"
                ));
            }
        }
        for (id, c) in &c_notes {
            if e_notes.get(id) != Some(c) {
                problems.push(format!(
                    "edge {node} notes {id}: central {c:?}, edge {:?}",
                    e_notes.get(id)
                ));
            }
        }
        for id in e_notes.keys() {
            if !c_notes.contains_key(id) {
                problems.push(format!(
                    "edge {node} notes {id}: deleted on the central, kept here"
                ));
            }
        }
        let pending = query_text(&e, "SELECT count(*) FROM es_tombstones");
        if pending != vec![vec!["0".to_string()]] {
            problems.push(format!("edge {node}: tombstones left unsent: {pending:?}"));
        }
    }
    // Owned rows are written by one application only: any conflict on them
    // means an interrupted push was mistaken for someone else's write.
    let engine = env.engine_ok().await;
    let conflicts = engine
        .central
        .conflicts(true, 1_000_000)
        .await
        .expect("conflicts");
    let hot_conflicts = conflicts.len();
    for c in &conflicts {
        let id = match c.key.first().map(|(_, v)| v) {
            Some(edgesync_core::Value::Int(i)) => *i,
            other => panic!("unexpected conflict key {other:?}"),
        };
        if !(c.table.ends_with("items") && id <= HOT) {
            problems.push(format!(
                "conflict logged on {} id {id}, which only one application writes: {c:?}",
                c.table
            ));
        }
    }
    eprintln!(
        "chaos({backend:?}) seed {seed}: {kills} kills in {runs} runs ({completed} ran to completion), \
         {app_txns} application transactions; {} items / {} notes on the central, {hot_conflicts} conflicts \
         on hot rows; learned run length {expected_ms:.0} ms; setup {setup:?}, chaos {chaos:?}, total {:?}",
        c_items.len(),
        c_notes.len(),
        started.elapsed()
    );
    assert!(
        problems.is_empty(),
        "{} differences after the chaos run (replay with EDGESYNC_CHAOS_SEED={seed}); first ones:\n{}",
        problems.len(),
        problems.iter().take(25).cloned().collect::<Vec<_>>().join("\n")
    );
}

for_each_backend!(the_real_binary_killed_at_random_loses_and_duplicates_nothing);
