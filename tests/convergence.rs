//! Randomized convergence against a reference model (server-wins).
//!
//! Three edges and the central make random inserts, updates and deletes
//! (soft-delete and hard-delete tables, a small key space so the same keys
//! collide) while "offline", and sync in random order with random
//! interruptions: a push stopped after a few batches, a push whose answer is
//! lost (the central committed, the edge never heard), a write landing while a
//! push is in flight, a pull pass stopped after a page or two, the engine
//! dropped and reopened. Pushes and pulls are driven with the engine's own
//! building blocks (`read_changes` / `push` / `ack_push`, `pull` /
//! `apply_pull`), so the model sees exactly which changes travelled.
//!
//! The model is deliberately simple: the central keeps one state and a
//! version per key; each edge remembers the version it last saw of each key
//! (its base) and which keys it wrote since its last acknowledged push.
//! Server-wins then means: a pushed change is applied when the central's
//! state of the key is still the one the edge last saw (or was last written
//! by this same edge, whose answer may have been lost; or is a tombstone the
//! edge never saw, for an insert); otherwise the central's state stays and
//! the edge takes it. A re-sent change (at or below the node's high-water
//! mark) is answered from the current state and never applied again. Pulls
//! overwrite every key the edge has no unpushed write to.
//!
//! After every step the central and every edge must equal the model; after a
//! final round (each node twice) every edge must equal the central, and a
//! further sync through the engine must move nothing.
//!
//! `EDGESYNC_CONVERGENCE_CASES` (default 8 per backend) and
//! `EDGESYNC_CONVERGENCE_SEED` (replays: case i uses seed + i) scale and
//! replay it.

use std::collections::BTreeMap;

use edgesync::engine::Engine;
use edgesync_core::change::PushResult;
use edgesync_core::{Change, PullPage, PushBatch, PushOutcome, TableMapping, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{env_usize, query_text, seed_from_env, Backend, CentralConn, Env, Sql};
use crate::for_each_backend_and_hub;

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE s (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, s TEXT);
             CREATE TABLE h (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, s TEXT);",
    postgres: "CREATE TABLE s (id bigint PRIMARY KEY, v bigint NOT NULL, s text);
               CREATE TABLE h (id bigint PRIMARY KEY, v bigint NOT NULL, s text);",
    mysql: "CREATE TABLE s (id bigint PRIMARY KEY, v bigint NOT NULL, s longtext);
            CREATE TABLE h (id bigint PRIMARY KEY, v bigint NOT NULL, s longtext);",
};

/// Table 0 keeps deleted rows (soft), table 1 removes them (hard).
const TABLES: &str = r#"
[[table]]
name = "s"
conflict = "server-wins"

[[table]]
name = "h"
deletes = "hard"
conflict = "server-wins"
"#;
const NAMES: [&str; 2] = ["s", "h"];
const NODES: [&str; 3] = ["a", "b", "c"];
const KEYS: i64 = 12;
const STEPS: usize = 45;
const BATCH: usize = 3;
const PAGE: usize = 4;

type Key = (usize, i64);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Vals {
    v: i64,
    s: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum CState {
    Live(Vals),
    SoftDel(Vals),
    Tomb,
}

#[derive(Debug, Clone)]
struct CRow {
    st: CState,
    ver: u64,
    origin: Option<usize>,
    oseq: i64,
}

/// A row on an edge: (values, deleted).
type LRow = (Vals, bool);

#[derive(Debug, Default)]
struct EdgeModel {
    local: BTreeMap<Key, LRow>,
    /// The central version the edge last saw the key at.
    base: BTreeMap<Key, u64>,
    last_write: BTreeMap<Key, u64>,
    clean_at: BTreeMap<Key, u64>,
    /// The central's push high-water mark for this node, per table.
    hi: [i64; 2],
}

impl EdgeModel {
    fn dirty(&self, k: &Key) -> bool {
        self.last_write.get(k).copied().unwrap_or(0) > self.clean_at.get(k).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
enum Pred {
    Applied(u64),
    Superseded(Option<CRow>),
}

#[derive(Debug, Default)]
struct Model {
    central: BTreeMap<Key, CRow>,
    next_ver: u64,
    edges: Vec<EdgeModel>,
    tick: u64,
}

impl Model {
    fn tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn version(&mut self) -> u64 {
        self.next_ver += 1;
        self.next_ver
    }

    /// The central decides one pushed change from node `e`.
    fn push_change(&mut self, e: usize, t: usize, c: &Change) -> Pred {
        let k = (t, key_id(&c.key));
        let cur = self.central.get(&k).cloned();
        let cur_ver = cur.as_ref().map_or(0, |c| c.ver);
        let cur_gone = cur
            .as_ref()
            .is_none_or(|c| !matches!(c.st, CState::Live(_)));
        let is_delete = c.deleted;
        if c.version <= self.edges[e].hi[t] {
            // A re-sent change: answered from what the central holds now.
            let ours = cur
                .as_ref()
                .is_some_and(|r| r.origin == Some(e) && r.oseq == c.version);
            return if ours || (is_delete && cur_gone) {
                Pred::Applied(cur_ver)
            } else {
                Pred::Superseded(cur)
            };
        }
        // What the edge last saw of this key: its base, or the central's
        // state if that was written by this very node (its answer may have
        // been lost). An insert meeting a tombstone it never saw is an insert
        // after a delete.
        let mut base = self.edges[e].base.get(&k).copied();
        let mut seen = cur.clone();
        if let Some(r) = &cur {
            if r.origin == Some(e) && r.oseq < c.version {
                base = Some(r.ver);
            }
            if r.st == CState::Tomb && base.is_none() {
                seen = None;
            }
        }
        let seen_gone = seen
            .as_ref()
            .is_none_or(|c| !matches!(c.st, CState::Live(_)));
        if is_delete && seen_gone {
            return Pred::Applied(cur_ver);
        }
        let unchanged = match (&seen, base) {
            (None, None) => true,
            (Some(r), Some(b)) => r.ver == b,
            _ => false,
        };
        if !unchanged {
            // server-wins
            return Pred::Superseded(cur);
        }
        let st = match (&c.values, is_delete, t) {
            (_, true, 1) => CState::Tomb,
            (Some(v), true, _) => CState::SoftDel(vals_of(v)),
            (Some(v), false, _) => CState::Live(vals_of(v)),
            (None, _, _) => panic!("a change without values that is not a hard delete: {c:?}"),
        };
        let ver = self.version();
        self.central.insert(
            k,
            CRow {
                st,
                ver,
                origin: Some(e),
                oseq: c.version,
            },
        );
        Pred::Applied(ver)
    }

    /// The edge records the answers to a batch read at `read_tick`.
    fn ack(&mut self, e: usize, t: usize, batch: &PushBatch, preds: &[Pred], read_tick: u64) {
        self.edges[e].hi[t] = self.edges[e].hi[t].max(batch.hi);
        let em = &mut self.edges[e];
        for (c, p) in batch.changes.iter().zip(preds) {
            let k = (t, key_id(&c.key));
            let untouched = em.last_write.get(&k).copied().unwrap_or(0) <= read_tick;
            match p {
                Pred::Applied(v) => {
                    if em.local.contains_key(&k) && *v != 0 {
                        em.base.insert(k, *v);
                    } else {
                        em.base.remove(&k);
                    }
                }
                Pred::Superseded(cur) if untouched => take_central(em, k, cur.as_ref()),
                Pred::Superseded(_) => {}
            }
            let c = em.clean_at.entry(k).or_insert(0);
            *c = (*c).max(read_tick);
        }
    }

    /// A pulled change for key `k` reaches edge `e`.
    fn pull_change(&mut self, e: usize, k: Key) {
        let cur = self.central.get(&k).cloned();
        let em = &mut self.edges[e];
        // Skipped when the edge has unpushed writes to the key (its next push
        // meets the central's state), or already has this version.
        let stale = cur
            .as_ref()
            .is_some_and(|c| em.base.get(&k) == Some(&c.ver));
        if !em.dirty(&k) && !stale {
            take_central(em, k, cur.as_ref());
        }
    }
}

/// The edge makes its row what the central holds (a deleted row it does not
/// have is not created; a tombstone removes the row).
fn take_central(em: &mut EdgeModel, k: Key, cur: Option<&CRow>) {
    let exists = em.local.contains_key(&k);
    match cur.map(|c| (&c.st, c.ver)) {
        Some((CState::Live(v), ver)) => {
            em.local.insert(k, (v.clone(), false));
            em.base.insert(k, ver);
        }
        Some((CState::SoftDel(v), ver)) if exists => {
            em.local.insert(k, (v.clone(), true));
            em.base.insert(k, ver);
        }
        Some((CState::Tomb, _)) if exists && k.0 == 1 => {
            em.local.remove(&k);
            em.base.remove(&k);
        }
        // A central application's delete on MySQL: a tombstone, which a
        // soft-delete edge table applies as the marker.
        Some((CState::Tomb, ver)) if exists => {
            em.local.get_mut(&k).expect("row").1 = true;
            em.base.insert(k, ver);
        }
        None if exists && k.0 == 0 => {
            // a soft row the central does not have: the marker is set
            em.local.get_mut(&k).expect("row").1 = true;
        }
        None if exists => {
            em.local.remove(&k);
            em.base.remove(&k);
        }
        _ => {}
    }
}

fn key_id(key: &[Value]) -> i64 {
    match key {
        [Value::Int(i)] => *i,
        other => panic!("unexpected key {other:?}"),
    }
}

/// Values in mapping order: id, v, s.
fn vals_of(values: &[Value]) -> Vals {
    let v = match &values[1] {
        Value::Int(i) => *i,
        other => panic!("unexpected v {other:?}"),
    };
    let s = match &values[2] {
        Value::Text(t) => Some(t.clone()),
        Value::Null => None,
        other => panic!("unexpected s {other:?}"),
    };
    Vals { v, s }
}

fn lit(s: &Option<String>) -> String {
    s.as_ref()
        .map_or_else(|| "NULL".to_string(), |s| format!("'{s}'"))
}

struct Case {
    backend: Backend,
    seed: u64,
    env: Env,
    engine: Option<Engine>,
    central: CentralConn,
    edges: Vec<rusqlite::Connection>,
    model: Model,
    rng: StdRng,
    log: Vec<String>,
}

impl Case {
    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine")
    }

    fn mapping(&self, e: usize, t: usize) -> (TableMapping, edgesync_sqlite::EdgeDb) {
        let edge = &self.engine().edges[e];
        assert_eq!(edge.config.node, NODES[e]);
        let m = edge
            .tables
            .iter()
            .find(|m| m.edge == NAMES[t])
            .expect("table")
            .clone();
        assert_eq!(
            m.columns
                .iter()
                .map(|c| c.edge.as_str())
                .collect::<Vec<_>>(),
            ["id", "v", "s"]
        );
        (m, edge.db.clone())
    }

    fn fail(&self, msg: String) -> ! {
        let tail: Vec<&String> = self.log.iter().rev().take(30).rev().collect();
        panic!(
            "convergence({:?}) seed {}: {msg}\nlast steps:\n{}\nreplay with EDGESYNC_CONVERGENCE_SEED={} EDGESYNC_CONVERGENCE_CASES=1",
            self.backend,
            self.seed,
            tail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
            self.seed
        )
    }

    fn random_vals(&mut self) -> Vals {
        Vals {
            v: self.rng.random_range(0..1000),
            s: self
                .rng
                .random_bool(0.85)
                .then(|| format!("s{}", self.rng.random_range(0..100))),
        }
    }

    /// One central application transaction of 1-3 writes.
    async fn central_writes(&mut self) {
        let mut sql = Vec::new();
        for _ in 0..self.rng.random_range(1..=3) {
            let t = self.rng.random_range(0..2);
            let k = (t, self.rng.random_range(1..=KEYS));
            let cur = self.model.central.get(&k).map(|r| r.st.clone());
            let vals = self.random_vals();
            let (stmt, st) = match cur {
                None | Some(CState::Tomb) => (
                    format!(
                        "INSERT INTO {} (id, v, s) VALUES ({}, {}, {})",
                        NAMES[t],
                        k.1,
                        vals.v,
                        lit(&vals.s)
                    ),
                    CState::Live(vals),
                ),
                Some(CState::Live(old)) => {
                    if self.rng.random_bool(0.25) {
                        (
                            format!("DELETE FROM {} WHERE id = {}", NAMES[t], k.1),
                            if t == 0 && !self.backend.app_deletes_remove_central_rows() {
                                CState::SoftDel(old)
                            } else {
                                CState::Tomb
                            },
                        )
                    } else {
                        (
                            format!(
                                "UPDATE {} SET v = {}, s = {} WHERE id = {}",
                                NAMES[t],
                                vals.v,
                                lit(&vals.s),
                                k.1
                            ),
                            CState::Live(vals),
                        )
                    }
                }
                Some(CState::SoftDel(_)) => continue,
            };
            let ver = self.model.version();
            self.model.central.insert(
                k,
                CRow {
                    st,
                    ver,
                    origin: None,
                    oseq: 0,
                },
            );
            sql.push(stmt);
        }
        if sql.is_empty() {
            return;
        }
        let sql = sql.join("; ");
        self.log.push(format!("central writes: {sql}"));
        let (immediate, begin) = (
            format!("BEGIN IMMEDIATE; {sql}; COMMIT;"),
            format!("BEGIN; {sql}; COMMIT;"),
        );
        let script = Sql {
            sqlite: &immediate,
            ..Sql::all(&begin)
        };
        if let Err(err) = self.central.run(script).await {
            self.fail(format!("central write failed: {err}"));
        }
    }

    /// One application transaction of 1-`max` writes on edge `e`.
    fn edge_writes(&mut self, e: usize, max: usize) {
        let mut sql = Vec::new();
        for _ in 0..self.rng.random_range(1..=max) {
            let t = self.rng.random_range(0..2);
            let k = (t, self.rng.random_range(1..=KEYS));
            let cur = self.model.edges[e].local.get(&k).cloned();
            let vals = self.random_vals();
            let (stmt, row) = match cur {
                None => (
                    format!(
                        "INSERT INTO {} (id, v, s) VALUES ({}, {}, {})",
                        NAMES[t],
                        k.1,
                        vals.v,
                        lit(&vals.s)
                    ),
                    Some((vals, false)),
                ),
                Some((old, false)) => {
                    if self.rng.random_bool(0.25) {
                        (
                            format!("DELETE FROM {} WHERE id = {}", NAMES[t], k.1),
                            (t == 0).then_some((old, true)),
                        )
                    } else {
                        (
                            format!(
                                "UPDATE {} SET v = {}, s = {} WHERE id = {}",
                                NAMES[t],
                                vals.v,
                                lit(&vals.s),
                                k.1
                            ),
                            Some((vals, false)),
                        )
                    }
                }
                Some((_, true)) => continue,
            };
            let tick = self.model.tick();
            let em = &mut self.model.edges[e];
            match row {
                Some(r) => em.local.insert(k, r),
                None => em.local.remove(&k),
            };
            em.last_write.insert(k, tick);
            sql.push(stmt);
        }
        if sql.is_empty() {
            return;
        }
        let sql = sql.join("; ");
        self.log.push(format!("edge {} writes: {sql}", NODES[e]));
        if let Err(err) = self.edges[e].execute_batch(&format!("BEGIN IMMEDIATE; {sql}; COMMIT;")) {
            self.fail(format!("edge {} write failed: {err}", NODES[e]));
        }
    }

    /// Push one batch of table `t` from edge `e`: `ack` false loses the
    /// answer; `in_flight` writes on the edge between push and ack. Returns
    /// whether there was anything to push.
    async fn push_batch(&mut self, e: usize, t: usize, ack: bool, in_flight: bool) -> bool {
        let (m, db) = self.mapping(e, t);
        let read_tick = self.model.tick();
        let batch = match db.read_changes(&m, BATCH).await {
            Ok(Some(b)) => b,
            Ok(None) => return false,
            Err(err) => self.fail(format!("read_changes: {err}")),
        };
        // The batch carries each key's latest local state.
        for c in &batch.changes {
            let k = (t, key_id(&c.key));
            let local = self.model.edges[e].local.get(&k);
            let ok = match (&c.values, local) {
                (Some(v), Some((lv, ld))) => vals_of(v) == *lv && c.deleted == *ld,
                (None, None) => c.deleted,
                _ => false,
            };
            if !ok || !self.model.edges[e].dirty(&k) {
                self.fail(format!(
                    "edge {} sent {c:?} for {k:?}; the model has {local:?} (dirty: {})",
                    NODES[e],
                    self.model.edges[e].dirty(&k)
                ));
            }
        }
        let preds: Vec<Pred> = batch
            .changes
            .iter()
            .map(|c| self.model.push_change(e, t, c))
            .collect();
        let result = match self.engine().central.push(NODES[e], &m, &batch).await {
            Ok(r) => r,
            Err(err) => self.fail(format!("push: {err}")),
        };
        self.log.push(format!(
            "push {} {} hi {} keys {:?}{}{} -> {}",
            NODES[e],
            NAMES[t],
            batch.hi,
            batch
                .changes
                .iter()
                .map(|c| (key_id(&c.key), c.version, c.base))
                .collect::<Vec<_>>(),
            if ack { "" } else { " (answer lost)" },
            if in_flight { " (write in flight)" } else { "" },
            describe(&result)
        ));
        self.check_answers(&batch, &preds, &result);
        if !ack {
            self.model.edges[e].hi[t] = self.model.edges[e].hi[t].max(batch.hi);
            return true;
        }
        if in_flight {
            self.edge_writes(e, 2);
        }
        if let Err(err) = db.ack_push(&m, &batch, &result).await {
            self.fail(format!("ack_push: {err}"));
        }
        self.model.ack(e, t, &batch, &preds, read_tick);
        true
    }

    fn check_answers(&self, batch: &PushBatch, preds: &[Pred], result: &PushResult) {
        for ((c, p), o) in batch.changes.iter().zip(preds).zip(&result.outcomes) {
            let ok = match (p, o) {
                (Pred::Applied(_), PushOutcome::Applied { .. }) => true,
                (Pred::Superseded(cur), PushOutcome::Superseded { row }) => {
                    match (cur.as_ref().map(|r| &r.st), row) {
                        (None, None) => true,
                        (Some(CState::Tomb), Some(r)) => r.values.is_none() && r.deleted,
                        (Some(CState::Live(v)), Some(r)) => {
                            !r.deleted && r.values.as_deref().map(vals_of).as_ref() == Some(v)
                        }
                        (Some(CState::SoftDel(v)), Some(r)) => {
                            r.deleted && r.values.as_deref().map(vals_of).as_ref() == Some(v)
                        }
                        _ => false,
                    }
                }
                _ => false,
            };
            if !ok {
                self.fail(format!(
                    "key {} (local seq {}, base {:?}): the model expected {p:?}, the central answered {o:?}",
                    key_id(&c.key),
                    c.version,
                    c.base
                ));
            }
        }
    }

    /// Pull up to `max_pages` pages of table `t` to edge `e` (a whole pass
    /// when `None`).
    async fn pull(&mut self, e: usize, t: usize, max_pages: Option<usize>) {
        let (m, db) = self.mapping(e, t);
        let mut pages = 0;
        loop {
            let token = match db.pull_token(&m).await {
                Ok(t) => t,
                Err(err) => self.fail(format!("pull_token: {err}")),
            };
            let page: PullPage = match self
                .engine()
                .central
                .pull(NODES[e], &m, token.as_deref(), PAGE)
                .await
            {
                Ok(p) => p,
                Err(err) => self.fail(format!("pull: {err}")),
            };
            for c in &page.changes {
                let k = (t, key_id(&c.key));
                let cur = self.model.central.get(&k);
                let ok = match (cur.map(|r| &r.st), &c.values) {
                    (Some(CState::Tomb), None) => c.deleted,
                    (Some(CState::Live(v)), Some(x)) => !c.deleted && vals_of(x) == *v,
                    (Some(CState::SoftDel(v)), Some(x)) => c.deleted && vals_of(x) == *v,
                    _ => false,
                };
                if !ok {
                    self.fail(format!(
                        "pull to {} delivered {c:?}; the central's state in the model is {cur:?}",
                        NODES[e]
                    ));
                }
                self.model.pull_change(e, k);
            }
            self.log.push(format!(
                "pull {} {} page keys {:?} done {}",
                NODES[e],
                NAMES[t],
                page.changes
                    .iter()
                    .map(|c| key_id(&c.key))
                    .collect::<Vec<_>>(),
                page.done
            ));
            if let Err(err) = db.apply_pull(&m, &page).await {
                self.fail(format!("apply_pull: {err}"));
            }
            pages += 1;
            if page.done || max_pages.is_some_and(|n| pages >= n) {
                return;
            }
        }
    }

    /// A complete sync of one edge: every push batch of both tables, then a
    /// whole pull pass of both.
    async fn full_sync(&mut self, e: usize) {
        for t in 0..2 {
            while self.push_batch(e, t, true, false).await {}
        }
        for t in 0..2 {
            self.pull(e, t, None).await;
        }
    }

    /// The central and every edge equal the model.
    async fn check(&mut self, when: &str) {
        let mut want: BTreeMap<Key, LRow> = BTreeMap::new();
        for (k, r) in &self.model.central {
            match &r.st {
                CState::Live(v) => want.insert(*k, (v.clone(), false)),
                CState::SoftDel(v) => want.insert(*k, (v.clone(), true)),
                CState::Tomb => None,
            };
        }
        let mut have = BTreeMap::new();
        for (t, name) in NAMES.iter().enumerate() {
            let sql = format!("SELECT id, v, s, es_deleted FROM {name}");
            for r in self.central.query(Sql::all(&sql)).await {
                have.insert((t, r[0].parse().expect("id")), row_of(&r));
            }
        }
        if have != want {
            self.fail(format!(
                "{when}: the central differs from the model\n{}",
                diff(&want, &have)
            ));
        }
        for (e, node) in NODES.iter().enumerate() {
            let have = edge_rows(&self.edges[e]);
            if have != self.model.edges[e].local {
                self.fail(format!(
                    "{when}: edge {node} differs from the model\n{}",
                    diff(&self.model.edges[e].local, &have)
                ));
            }
        }
    }
}

fn row_of(r: &[String]) -> LRow {
    (
        Vals {
            v: r[1].parse().expect("v"),
            s: (r[2] != "NULL").then(|| r[2].clone()),
        },
        r[3] == "1",
    )
}

fn edge_rows(c: &rusqlite::Connection) -> BTreeMap<Key, LRow> {
    let mut out = BTreeMap::new();
    for (t, name) in NAMES.iter().enumerate() {
        for r in query_text(c, &format!("SELECT id, v, s, es_deleted FROM {name}")) {
            out.insert((t, r[0].parse().expect("id")), row_of(&r));
        }
    }
    out
}

fn diff(want: &BTreeMap<Key, LRow>, have: &BTreeMap<Key, LRow>) -> String {
    let mut out = Vec::new();
    for k in want.keys().chain(have.keys()) {
        if want.get(k) != have.get(k) && !out.iter().any(|(x, _)| x == k) {
            out.push((
                *k,
                format!(
                    "  {}#{}: model {:?}, database {:?}",
                    NAMES[k.0],
                    k.1,
                    want.get(k),
                    have.get(k)
                ),
            ));
        }
    }
    out.into_iter()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe(r: &PushResult) -> String {
    r.outcomes
        .iter()
        .map(|o| match o {
            PushOutcome::Applied { version } => format!("applied@{version}"),
            PushOutcome::Superseded { row: None } => "superseded(absent)".into(),
            PushOutcome::Superseded { row: Some(r) } => format!(
                "superseded({}@{})",
                if r.values.is_none() {
                    "tombstone"
                } else if r.deleted {
                    "deleted"
                } else {
                    "row"
                },
                r.version
            ),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn run_case(backend: Backend, seed: u64) {
    let mut env = Env::new(backend, &NODES, &DDL).await;
    env.write_config(TABLES, &format!("batch_rows = {BATCH}\npage_rows = {PAGE}"));
    env.init().await;
    let engine = env.engine_ok().await;
    let central = env.central_conn().await;
    let edges = NODES.iter().map(|n| env.edge_app(n)).collect();
    let mut case = Case {
        backend,
        seed,
        env,
        engine: Some(engine),
        central,
        edges,
        model: Model {
            edges: (0..NODES.len()).map(|_| EdgeModel::default()).collect(),
            ..Model::default()
        },
        rng: StdRng::seed_from_u64(seed),
        log: Vec::new(),
    };
    for step in 0..STEPS {
        let e = case.rng.random_range(0..NODES.len());
        let t = case.rng.random_range(0..2);
        match case.rng.random_range(0..100) {
            0..=24 => case.central_writes().await,
            25..=54 => case.edge_writes(e, 3),
            55..=69 => case.full_sync(e).await,
            70..=77 => {
                // a push stopped after a few batches
                for _ in 0..case.rng.random_range(0..=2) {
                    case.push_batch(e, t, true, false).await;
                }
            }
            78..=84 => {
                case.push_batch(e, t, false, false).await;
            }
            85..=91 => {
                case.push_batch(e, t, true, true).await;
            }
            92..=97 => {
                let pages = case.rng.random_range(1..=2);
                case.pull(e, t, Some(pages)).await;
            }
            _ => {
                // the process goes away mid-way and a new one starts
                case.log.push("engine dropped and reopened".into());
                case.engine = None;
                case.engine = Some(case.env.engine_ok().await);
            }
        }
        case.check(&format!("after step {step}")).await;
    }
    // The final round: every node syncs completely, twice.
    for round in 0..2 {
        for (e, node) in NODES.iter().enumerate() {
            case.full_sync(e).await;
            case.check(&format!("final round {round}, after {node}"))
                .await;
        }
    }
    // Every edge equals the central: the same live rows with the same values;
    // a deleted row may be missing on a side that never saw it live.
    let central = {
        let mut m = BTreeMap::new();
        for (t, name) in NAMES.iter().enumerate() {
            let sql = format!("SELECT id, v, s, es_deleted FROM {name}");
            for r in case.central.query(Sql::all(&sql)).await {
                m.insert((t, r[0].parse::<i64>().expect("id")), row_of(&r));
            }
        }
        m
    };
    for (e, node) in NODES.iter().enumerate() {
        let edge = edge_rows(&case.edges[e]);
        for k in central.keys().chain(edge.keys()) {
            let (c, x) = (central.get(k), edge.get(k));
            let same = match (c, x) {
                (Some(a), Some(b)) => a == b || (a.1 && b.1),
                (Some(r), None) | (None, Some(r)) => r.1,
                (None, None) => true,
            };
            if !same {
                case.fail(format!(
                    "edge {node} did not converge on {}#{}: central {c:?}, edge {x:?}",
                    NAMES[k.0], k.1
                ));
            }
        }
    }
    // And the engine itself finds nothing left to move.
    case.engine = None;
    for node in NODES {
        for s in case.env.sync_node(node).await {
            if (s.pushed, s.pulled) != (0, 0) {
                case.fail(format!("an idle sync of {node} moved rows: {s:?}"));
            }
        }
    }
}

async fn random_offline_edits_and_interrupted_syncs_converge(backend: Backend) {
    let cases = env_usize("EDGESYNC_CONVERGENCE_CASES", 8);
    let base = seed_from_env(
        "EDGESYNC_CONVERGENCE_SEED",
        &format!("convergence({backend:?})"),
    );
    for i in 0..cases {
        let seed = base.wrapping_add(i as u64);
        run_case(backend, seed).await;
    }
    eprintln!("convergence({backend:?}): {cases} cases from seed {base} passed");
}

for_each_backend_and_hub!(random_offline_edits_and_interrupted_syncs_converge);
