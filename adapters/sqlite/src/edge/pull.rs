//! Applying a pull page on the edge — the hot path of an initial load.
//!
//! A page and its token commit together in one transaction, so an
//! interrupted load resumes at its last committed page. Statements are
//! prepared once per page (see `table::Writer`) and values bound straight
//! from the page, so a row costs its own lookups and write, nothing more.
//!
//! # Triggers off while a page is written
//!
//! Every trigger edgesync puts on an edge table (`schemas/sqlite/edge_*.sql`:
//! capture, hard and soft delete, read-only) starts its `WHEN` clause with
//! `(SELECT applying FROM es_ctl) = 0`, and an apply runs with
//! `applying = 1`: they do nothing. SQLite still runs each one's `WHEN`
//! subprogram for every row (a frame, cursors, a read of `es_ctl`), about a
//! third of the edge thread's CPU in an initial load. So while a page is
//! written, [`TriggersOff`] turns triggers off for edgesync's own connection
//! only (`SQLITE_DBCONFIG_ENABLE_TRIGGER`; every other connection, the
//! application's, keeps capturing), and only when that changes nothing:
//! every trigger on a table the page can write — its table, edgesync's
//! `es_*` tables, and the tables a foreign-key action (`CASCADE`, `SET
//! NULL`, `SET DEFAULT`) reaches from them — is one of edgesync's (`es_`
//! name) with that guard. An application trigger on any of them keeps
//! today's path, so it fires for pulled rows as before. Foreign keys are
//! not triggers to this switch: their checks and actions run as before
//! (`PRAGMA foreign_keys` is not touched). Switching expires the
//! connection's prepared statements (SQLite re-prepares each at its next
//! step, so no statement keeps a trigger program compiled under the other
//! setting); the guard switches back at the end of the page and on every
//! error path (its `Drop`), and the worker checks it after every job.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use edgesync_core::{Change, ColType, PullPage, Result, TableMapping, Value};
use rusqlite::config::DbConfig;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection};

use super::{begin_apply, end_apply, push_wm, ApplyStats, EdgeTable};
use crate::error::SqlResultExt;
use crate::types;

pub(super) fn apply_pull(
    conn: &mut Connection,
    m: &TableMapping,
    page: &PullPage,
) -> Result<ApplyStats> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    begin_apply(&tx)?;
    let (stats, max_hlc) = apply_page(&tx, m, page)?;
    end_apply(&tx, max_hlc)?;
    tx.commit().db()?;
    Ok(stats)
}

/// Pages of several tables, each with its token, in one transaction: the
/// foreign keys between them are checked once, at its commit. For pages
/// that only make sense together (a parent replaced while its children
/// move to the new one; see the engine's `passes.rs`).
pub(super) fn apply_pulls(
    conn: &mut Connection,
    pages: &[(TableMapping, PullPage)],
) -> Result<Vec<ApplyStats>> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    begin_apply(&tx)?;
    let mut out = Vec::with_capacity(pages.len());
    let mut max_hlc = i64::MIN;
    for (m, page) in pages {
        let (stats, hlc) = apply_page(&tx, m, page)?;
        max_hlc = max_hlc.max(hlc);
        out.push(stats);
    }
    end_apply(&tx, max_hlc)?;
    tx.commit().db()?;
    Ok(out)
}

/// One page and its token, inside the caller's apply transaction; what it
/// did and the highest HLC it saw.
pub(super) fn apply_page(
    tx: &Connection,
    m: &TableMapping,
    page: &PullPage,
) -> Result<(ApplyStats, i64)> {
    let t = EdgeTable::new(m);
    let off = TriggersOff::begin(tx, &[m.edge.as_str()])?;
    let wm = push_wm(tx, &m.edge)?;
    // A row this page overwrites is clean: it has no conflict base left to
    // keep (checked once per page, so a table without bases pays nothing).
    let bases = t.has_bases(tx)?;
    // A quarantined key keeps its local values until it is retried (checked
    // per row only when the table has any).
    let quarantined = super::quarantine::count(tx, &m.edge)? > 0;
    // Without a pending tombstone in the table (the usual case), no key
    // needs looking up in es_tombstones.
    let tombstones = t.has_tombstones(tx)?;
    let mut stats = ApplyStats::default();
    let mut max_hlc = i64::MIN;
    {
        let key_types = t.key_types();
        let mut w = t.writer(tx);
        // New rows are inserted in batches (see `Writer::insert_new`); a
        // change to a key already waiting in the batch writes the batch
        // first, so every change still sees the ones before it.
        let mut new_rows: Vec<&Change> = Vec::new();
        let mut waiting: HashSet<u64> = HashSet::new();
        // Keys above the table's highest integer key when the page began,
        // and not seen earlier in the page, cannot have a row: an initial
        // load (pages in key order onto an empty or shorter table) skips
        // the lookup of every row.
        let above = highest_int_key(tx, &t)?;
        let mut seen: HashSet<u64> = HashSet::with_capacity(page.changes.len());
        for change in &page.changes {
            max_hlc = max_hlc.max(change.hlc);
            let key = &change.key;
            let hash = key_hash(key, &key_types);
            if !waiting.is_empty() && waiting.contains(&hash) {
                w.insert_new(&new_rows)?;
                new_rows.clear();
                waiting.clear();
            }
            let first = seen.insert(hash);
            let absent = first
                && match (above, key.as_slice()) {
                    (Some(top), [Value::Int(k)]) => top.is_none_or(|top| *k > top),
                    _ => false,
                };
            // The usual pulled update (a clean row, an older version) in
            // one statement; anything else is decided below.
            if !absent && !quarantined && w.update_if_clean(change, wm)? {
                if bases {
                    w.drop_base(key)?;
                }
                stats.applied += 1;
                continue;
            }
            let local = if absent { None } else { w.local(key)? };
            match local {
                // Written locally and not yet pushed: the push will meet this
                // central version as a conflict and the policy decides.
                Some((ver, _)) if ver > wm => stats.skipped_dirty += 1,
                _ if quarantined && super::quarantine::contains(tx, &t, &t.bind_key(key)?)? => {
                    stats.skipped_dirty += 1
                }
                // Already at this version or a later one.
                Some((_, Some(cver))) if cver >= change.version => stats.skipped_stale += 1,
                // Deleted locally, delete not pushed yet: same as dirty.
                None if tombstones && w.tombstone(key)?.is_some() => stats.skipped_dirty += 1,
                // Never create a deleted row.
                None if change.deleted => stats.skipped_stale += 1,
                // A row outside this node's filter that it does not hold.
                None if change.is_move_out() => stats.skipped_stale += 1,
                None if change.values.is_some() => {
                    new_rows.push(change);
                    waiting.insert(hash);
                    if bases {
                        w.drop_base(key)?;
                    }
                    stats.applied += 1;
                }
                _ => {
                    w.put(key, Some(change), local.is_some())?;
                    if bases {
                        w.drop_base(key)?;
                    }
                    stats.applied += 1;
                }
            }
        }
        w.insert_new(&new_rows)?;
    }
    if let Some(off) = off {
        off.end()?;
    }
    let now = types::now_text();
    tx.prepare_cached(
        "INSERT INTO es_state (tbl, pull_token, pull_done, last_pull_at) \
         VALUES (?1, ?2, ?3, CASE WHEN ?3 THEN ?4 END) \
         ON CONFLICT (tbl) DO UPDATE SET pull_token = excluded.pull_token, \
         pull_done = MAX(pull_done, excluded.pull_done), \
         last_pull_at = COALESCE(excluded.last_pull_at, last_pull_at)",
    )
    .db()?
    .execute(params![m.edge, page.token, page.done, now])
    .db()?;
    Ok((stats, max_hlc))
}

/// The connection's triggers, off for the life of a page (see the module
/// doc); back on at [`TriggersOff::end`], or when dropped on an error path.
pub(super) struct TriggersOff<'c> {
    conn: &'c Connection,
    off: bool,
}

impl<'c> TriggersOff<'c> {
    /// Turn triggers off on `conn` for a page writing `tables`, when every
    /// trigger it could fire is edgesync's and silent during an apply;
    /// `None` (nothing changed) otherwise, or when they are off already.
    pub(super) fn begin(conn: &'c Connection, tables: &[&str]) -> Result<Option<TriggersOff<'c>>> {
        let on = conn
            .db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER)
            .db()?;
        if !on || !only_silent_triggers(conn, tables)? {
            return Ok(None);
        }
        set_triggers(conn, false)?;
        Ok(Some(TriggersOff { conn, off: true }))
    }

    /// Triggers back on.
    pub(super) fn end(mut self) -> Result<()> {
        self.off = false;
        set_triggers(self.conn, true)
    }
}

impl Drop for TriggersOff<'_> {
    fn drop(&mut self) {
        if self.off {
            if let Err(e) = set_triggers(self.conn, true) {
                tracing::error!(error = %e, "cannot turn triggers back on after a failed apply");
            }
        }
    }
}

fn set_triggers(conn: &Connection, on: bool) -> Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, on)
        .db_ctx(|| format!("turning triggers {}", if on { "on" } else { "off" }))?;
    Ok(())
}

/// The guard every edgesync trigger on an edge table starts its `WHEN`
/// clause with (`schemas/sqlite/edge_*.sql`).
const APPLY_GUARD: &str = "(SELECT applying FROM es_ctl) = 0";

/// Is every trigger on a table a page of `tables` can write (see the
/// module doc) one of edgesync's that does nothing while `applying = 1`?
fn only_silent_triggers(conn: &Connection, tables: &[&str]) -> Result<bool> {
    // The tables written: the pages' own, then whatever a foreign-key
    // action on a written table writes, transitively. (edgesync's `es_*`
    // tables are checked by name below.)
    let mut written: Vec<String> = tables.iter().map(|t| t.to_lowercase()).collect();
    let mut actions: Vec<(String, String)> = Vec::new();
    {
        let mut st = conn
            .prepare_cached(
                "SELECT m.name, f.\"table\", f.on_update, f.on_delete \
                 FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f \
                 WHERE m.type = 'table'",
            )
            .db()?;
        let mut rows = st.query([]).db()?;
        while let Some(r) = rows.next().db()? {
            let writes = |a: String| matches!(a.as_str(), "CASCADE" | "SET NULL" | "SET DEFAULT");
            if writes(r.get(2).db()?) || writes(r.get(3).db()?) {
                let (child, parent): (String, String) = (r.get(0).db()?, r.get(1).db()?);
                actions.push((child.to_lowercase(), parent.to_lowercase()));
            }
        }
    }
    let mut grew = true;
    while grew {
        grew = false;
        for (child, parent) in &actions {
            if written.contains(parent) && !written.contains(child) {
                written.push(child.clone());
                grew = true;
            }
        }
    }
    let mut st = conn
        .prepare_cached(
            "SELECT name, tbl_name, COALESCE(sql, '') FROM sqlite_master WHERE type = 'trigger'",
        )
        .db()?;
    let mut rows = st.query([]).db()?;
    while let Some(r) = rows.next().db()? {
        let (name, table, sql): (String, String, String) =
            (r.get(0).db()?, r.get(1).db()?, r.get(2).db()?);
        let concerned =
            edgesync_core::names::is_reserved(&table) || written.contains(&table.to_lowercase());
        if concerned && !(edgesync_core::names::is_reserved(&name) && silent_when_applying(&sql)) {
            tracing::debug!(trigger = %name, table = %table, "triggers stay on for the apply");
            return Ok(false);
        }
    }
    Ok(true)
}

/// Does this `CREATE TRIGGER` text's `WHEN` clause start with
/// [`APPLY_GUARD`], followed by nothing or by further `AND` terms (no `OR`
/// anywhere after it), so the trigger does nothing while `applying = 1`?
fn silent_when_applying(sql: &str) -> bool {
    let Some(at) = sql.find("\nWHEN ") else {
        return false;
    };
    let rest = &sql[at + "\nWHEN ".len()..];
    let Some(end) = rest.find("\nBEGIN") else {
        return false;
    };
    let Some(more) = rest[..end].strip_prefix(APPLY_GUARD) else {
        return false;
    };
    let more = more.trim_end();
    let or = more
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .any(|w| w.eq_ignore_ascii_case("OR"));
    more.is_empty() || (more.starts_with(" AND ") && !or)
}

/// For a table keyed by one integer column: `Some(highest key)` (`Some(None)`
/// when the table is empty); `None` for any other key, or a key column
/// holding something other than integers.
fn highest_int_key(conn: &Connection, t: &EdgeTable<'_>) -> Result<Option<Option<i64>>> {
    let [k] = t.key.as_slice() else {
        return Ok(None);
    };
    if k.ty != ColType::Int {
        return Ok(None);
    }
    let top: SqlValue = conn
        .prepare_cached(&format!(
            "SELECT max({}) FROM {}",
            crate::sql::ident(&k.name),
            t.q
        ))
        .db()?
        .query_row([], |r| r.get(0))
        .db()?;
    Ok(match top {
        SqlValue::Null => Some(None),
        SqlValue::Integer(i) => Some(Some(i)),
        _ => None,
    })
}

/// A hash of a key as SQLite stores it (each value converted for its
/// column as it is bound), so two changes to the same stored key always
/// collide. A value that does not convert hashes alike with every other:
/// it fails when it is written anyway.
fn key_hash(key: &[Value], types: &[ColType]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (v, &ty) in key.iter().zip(types) {
        match (v, ty) {
            (Value::Int(i), ColType::Int) => (0u8, i).hash(&mut h),
            (Value::Text(s), ColType::Text { .. } | ColType::Json)
            | (Value::Json(s), ColType::Json | ColType::Text { .. }) => {
                (1u8, s.as_bytes()).hash(&mut h)
            }
            (Value::Bytes(b), ColType::Bytes) => (2u8, b.as_slice()).hash(&mut h),
            _ => match types::to_sql(v, ty) {
                Ok(SqlValue::Integer(i)) => (0u8, i).hash(&mut h),
                Ok(SqlValue::Text(s)) => (1u8, s.as_bytes()).hash(&mut h),
                Ok(SqlValue::Blob(b)) => (2u8, b.as_slice()).hash(&mut h),
                Ok(SqlValue::Real(f)) => (3u8, f.to_bits()).hash(&mut h),
                Ok(SqlValue::Null) | Err(_) => 4u8.hash(&mut h),
            },
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use edgesync_core::{ColumnMap, ConflictPolicy, DeleteMode, Direction, QualifiedName};

    use super::*;

    fn col(name: &str, ty: ColType, nullable: bool) -> ColumnMap {
        ColumnMap {
            edge: name.into(),
            central: name.into(),
            ty,
            edge_ty: ty,
            nullable,
        }
    }

    fn items(deletes: DeleteMode) -> TableMapping {
        TableMapping {
            edge: "items".into(),
            central: QualifiedName::parse("items"),
            columns: vec![
                col("id", ColType::Int, false),
                col("name", ColType::Text { max_len: None }, false),
                col("qty", ColType::Int, true),
            ],
            key: vec![0],
            direction: Direction::Both,
            conflict: ConflictPolicy::ServerWins,
            deletes,
        }
    }

    fn change(id: i64, name: Option<&str>, version: i64, deleted: bool) -> Change {
        Change {
            key: vec![Value::Int(id)],
            values: (!deleted || name.is_some()).then(|| {
                vec![
                    Value::Int(id),
                    name.map_or(Value::Null, |n| Value::Text(n.into())),
                    Value::Int(version),
                ]
            }),
            deleted,
            version,
            base: None,
            hlc: version << 16,
        }
    }

    fn edge(m: &TableMapping) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.db");
        let mut conn = crate::worker::open_file(&path).expect("open");
        let plan = super::super::provision::plan_init(&conn, &path, "n", std::slice::from_ref(m))
            .expect("plan");
        crate::schema::execute(&mut conn, &plan).expect("provision");
        (dir, conn)
    }

    fn rows(conn: &Connection) -> Vec<(i64, String, i64, Option<i64>, i64)> {
        let mut st = conn
            .prepare("SELECT id, name, qty, es_cver, es_deleted FROM items ORDER BY id")
            .expect("prepare");
        st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
    }

    /// New rows go in batches; later changes to a key of the batch (in the
    /// same page) still apply after it, as one by one.
    #[test]
    fn batched_new_rows_keep_the_order_of_the_page() {
        for deletes in [DeleteMode::Soft, DeleteMode::Hard] {
            let m = items(deletes);
            let (_dir, mut conn) = edge(&m);
            let mut changes: Vec<Change> = (1..=250)
                .map(|id| change(id, Some(&format!("r{id}")), id, false))
                .collect();
            changes.push(change(7, Some("again"), 1000, false));
            changes.push(change(8, None, 1001, true));
            changes.push(change(7, Some("third"), 1002, false));
            changes.push(change(9, Some("stale"), 2, false));
            let page = PullPage {
                changes,
                token: "t".into(),
                done: true,
                fingerprint: None,
            };
            let stats = apply_pull(&mut conn, &m, &page).expect("apply");
            assert_eq!(stats.applied, 253, "{deletes:?}");
            assert_eq!(stats.skipped_stale, 1, "{deletes:?}");
            let got = rows(&conn);
            let hard = deletes == DeleteMode::Hard;
            assert_eq!(got.len(), if hard { 249 } else { 250 });
            let find = |id: i64| got.iter().find(|r| r.0 == id).cloned();
            assert_eq!(find(7), Some((7, "third".into(), 1002, Some(1002), 0)));
            assert_eq!(find(9), Some((9, "r9".into(), 9, Some(9), 0)));
            assert_eq!(find(250), Some((250, "r250".into(), 250, Some(250), 0)));
            if hard {
                assert_eq!(find(8), None);
            } else {
                assert_eq!(find(8), Some((8, "r8".into(), 8, Some(1001), 1)));
            }
            // Nothing was captured as a local change.
            let seq: i64 = conn
                .query_row("SELECT seq FROM es_ctl", [], |r| r.get(0))
                .expect("seq");
            assert_eq!(seq, 0);
        }
    }

    /// A row the edge refuses inside a batch fails the page with an error
    /// naming that row, and writes nothing.
    #[test]
    fn a_refused_row_in_a_batch_is_named_and_nothing_is_written() {
        let m = items(DeleteMode::Soft);
        let (_dir, mut conn) = edge(&m);
        // Refused by the edge table itself (the mapping lets NULL through).
        conn.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON items WHEN NEW.name = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'bad row'); END;",
        )
        .expect("trigger");
        let changes: Vec<Change> = (1..=150)
            .map(|id| change(id, Some(if id == 57 { "bad" } else { "ok" }), id, false))
            .collect();
        let page = PullPage {
            changes,
            token: "t".into(),
            done: false,
            fingerprint: None,
        };
        let e = apply_pull(&mut conn, &m, &page).expect_err("refused");
        assert!(e.to_string().contains("id=57"), "{e}");
        assert!(rows(&conn).is_empty());
    }

    fn triggers_on(conn: &Connection) -> bool {
        conn.db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER)
            .expect("db_config")
    }

    fn seq(conn: &Connection) -> i64 {
        conn.query_row("SELECT seq FROM es_ctl", [], |r| r.get(0))
            .expect("seq")
    }

    /// Every trigger edgesync puts on an edge table, in every mode, starts
    /// its WHEN clause with the apply guard (so turning triggers off during
    /// an apply changes nothing it does), and the check sees that.
    #[test]
    fn every_edgesync_trigger_is_silent_while_applying() {
        let modes = [
            (Direction::Both, DeleteMode::Soft),
            (Direction::Both, DeleteMode::Hard),
            (Direction::Push, DeleteMode::Soft),
            (Direction::Push, DeleteMode::Hard),
            (Direction::Pull, DeleteMode::Soft),
        ];
        for (direction, deletes) in modes {
            let m = TableMapping {
                direction,
                ..items(deletes)
            };
            let (_dir, conn) = edge(&m);
            let mut st = conn
                .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
                .expect("prepare");
            let triggers: Vec<(String, String)> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            let want = if direction == Direction::Pull { 3 } else { 5 };
            assert_eq!(
                triggers.len(),
                want,
                "{direction:?} {deletes:?}: {triggers:?}"
            );
            for (name, sql) in &triggers {
                assert!(name.starts_with("es_"), "{name}");
                assert!(
                    silent_when_applying(sql),
                    "{direction:?} {deletes:?}: {sql}"
                );
            }
            assert!(only_silent_triggers(&conn, &["items"]).expect("check"));
        }
    }

    #[test]
    fn guard_parsing_is_strict() {
        let t = |when: &str| {
            format!("CREATE TRIGGER es_x AFTER INSERT ON t\nWHEN {when}\nBEGIN\n  SELECT 1;\nEND")
        };
        assert!(silent_when_applying(&t(APPLY_GUARD)));
        assert!(silent_when_applying(&t(&format!(
            "{APPLY_GUARD} AND NEW.a IS OLD.a"
        ))));
        assert!(silent_when_applying(&t(&format!(
            "{APPLY_GUARD} AND NEW.\"or\" IS OLD.\"or\" AND NOT (NEW.a IS OLD.a)"
        ))));
        assert!(!silent_when_applying(&t(&format!(
            "{APPLY_GUARD} OR NEW.a = 1"
        ))));
        assert!(!silent_when_applying(&t(&format!(
            "{APPLY_GUARD} AND (NEW.a = 1 or 1)"
        ))));
        assert!(!silent_when_applying(&t("NEW.a = 1")));
        assert!(!silent_when_applying(&t(&format!("{APPLY_GUARD}1"))));
        assert!(!silent_when_applying(
            "CREATE TRIGGER es_x AFTER INSERT ON t BEGIN SELECT 1; END"
        ));
    }

    /// An application trigger on the table, on an edgesync table, or on a
    /// table a foreign-key action of the table writes keeps triggers on.
    #[test]
    fn application_triggers_keep_triggers_on() {
        let m = items(DeleteMode::Hard);
        let (_dir, mut conn) = edge(&m);
        let check = || only_silent_triggers(&conn, &["items"]).expect("check");
        assert!(check());
        let cases = [
            // On the table itself (any case of its name).
            "CREATE TRIGGER app_t AFTER INSERT ON ITEMS BEGIN SELECT 1; END;",
            // Named like edgesync's, without the guard.
            "CREATE TRIGGER es_fake AFTER INSERT ON items BEGIN SELECT 1; END;",
            // On an edgesync table the apply writes.
            "CREATE TRIGGER app_s AFTER UPDATE ON es_state BEGIN SELECT 1; END;",
        ];
        for sql in cases {
            conn.execute_batch(sql).expect("trigger");
            assert!(!check(), "{sql}");
            let name = sql.split_whitespace().nth(2).expect("name");
            conn.execute_batch(&format!("DROP TRIGGER {name}"))
                .expect("drop");
            assert!(check());
        }
        // A child whose rows a delete of items cascades to, two levels down.
        conn.execute_batch(
            "CREATE TABLE child (id INTEGER PRIMARY KEY, item INTEGER REFERENCES items (id) ON DELETE CASCADE);
             CREATE TABLE grandchild (id INTEGER PRIMARY KEY, c INTEGER REFERENCES child (id) ON UPDATE SET NULL);
             CREATE TABLE plain (id INTEGER PRIMARY KEY, item INTEGER REFERENCES items (id));
             CREATE TABLE other (id INTEGER PRIMARY KEY);
             CREATE TRIGGER app_plain AFTER INSERT ON plain BEGIN SELECT 1; END;
             CREATE TRIGGER app_other AFTER INSERT ON other BEGIN SELECT 1; END;",
        )
        .expect("tables");
        // Triggers on tables the apply cannot write do not matter.
        assert!(check());
        conn.execute_batch("CREATE TRIGGER app_g AFTER DELETE ON grandchild BEGIN SELECT 1; END;")
            .expect("trigger");
        assert!(!check());
        // And the apply then leaves them on.
        let page = PullPage {
            changes: vec![change(1, Some("a"), 1, false)],
            token: "t".into(),
            done: false,
            fingerprint: None,
        };
        apply_pull(&mut conn, &m, &page).expect("apply");
        assert!(triggers_on(&conn));
    }

    /// A page that fails in the middle (a CHECK constraint of the edge
    /// table) leaves the connection's triggers on: the connection's next
    /// local write is captured.
    #[test]
    fn a_failed_apply_leaves_triggers_on() {
        let m = items(DeleteMode::Soft);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.db");
        let mut conn = crate::worker::open_file(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER CHECK (qty >= 0))",
        )
        .expect("table");
        let plan = super::super::provision::plan_init(&conn, &path, "n", std::slice::from_ref(&m))
            .expect("plan");
        crate::schema::execute(&mut conn, &plan).expect("provision");
        assert!(only_silent_triggers(&conn, &["items"]).expect("check"));
        let mut changes: Vec<Change> = (1..=300)
            .map(|id| change(id, Some("ok"), id, false))
            .collect();
        if let Some(vals) = changes[150].values.as_mut() {
            vals[2] = Value::Int(-1);
        }
        let page = PullPage {
            changes,
            token: "t".into(),
            done: false,
            fingerprint: None,
        };
        let e = apply_pull(&mut conn, &m, &page).expect_err("refused");
        assert!(e.to_string().contains("id=151"), "{e}");
        assert!(triggers_on(&conn));
        assert!(rows(&conn).is_empty());
        conn.execute(
            "INSERT INTO items (id, name, qty) VALUES (1000, 'local', 1)",
            [],
        )
        .expect("local write");
        assert_eq!(seq(&conn), 1);
        // And the next page applies, not captured.
        let page = PullPage {
            changes: vec![change(1, Some("ok"), 1, false)],
            token: "t2".into(),
            done: false,
            fingerprint: None,
        };
        apply_pull(&mut conn, &m, &page).expect("apply");
        assert!(triggers_on(&conn));
        assert_eq!(seq(&conn), 1);
    }

    /// Switching triggers expires the connection's prepared statements:
    /// a cached statement prepared with triggers off fires them once they
    /// are on again, and one prepared before an apply still does after it.
    #[test]
    fn cached_statements_follow_the_switch() {
        let m = items(DeleteMode::Soft);
        let (_dir, mut conn) = edge(&m);
        let insert = "INSERT INTO items (id, name, qty) VALUES (?1, 'x', 0)";
        conn.prepare_cached(insert)
            .expect("prepare")
            .execute([1])
            .expect("insert");
        assert_eq!(seq(&conn), 1);
        let page = PullPage {
            changes: vec![change(5, Some("p"), 5, false)],
            token: "t".into(),
            done: false,
            fingerprint: None,
        };
        apply_pull(&mut conn, &m, &page).expect("apply");
        assert_eq!(seq(&conn), 1);
        conn.prepare_cached(insert)
            .expect("prepare")
            .execute([2])
            .expect("insert");
        assert_eq!(seq(&conn), 2);
        {
            let off = TriggersOff::begin(&conn, &["items"])
                .expect("off")
                .expect("switched");
            assert!(!triggers_on(&conn));
            conn.prepare_cached(insert)
                .expect("prepare")
                .execute([3])
                .expect("insert");
            assert_eq!(seq(&conn), 2, "off: not captured");
            off.end().expect("on");
        }
        conn.prepare_cached(insert)
            .expect("prepare")
            .execute([4])
            .expect("insert");
        assert_eq!(seq(&conn), 3, "on again: captured");
        // Dropped without end (an error path): on again as well.
        drop(TriggersOff::begin(&conn, &["items"]).expect("off"));
        assert!(triggers_on(&conn));
    }

    /// Foreign keys are still enforced on the pages written with triggers
    /// off (checked at commit).
    #[test]
    fn foreign_keys_are_still_checked() {
        let parent = items(DeleteMode::Hard);
        let child = TableMapping {
            edge: "child".into(),
            central: QualifiedName::parse("child"),
            columns: vec![
                col("id", ColType::Int, false),
                col("item", ColType::Int, true),
            ],
            key: vec![0],
            direction: Direction::Both,
            conflict: ConflictPolicy::ServerWins,
            deletes: DeleteMode::Hard,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.db");
        let mut conn = crate::worker::open_file(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);
             CREATE TABLE child (id INTEGER PRIMARY KEY, item INTEGER REFERENCES items (id));",
        )
        .expect("tables");
        let plan = super::super::provision::plan_init(&conn, &path, "n", &[parent, child.clone()])
            .expect("plan");
        crate::schema::execute(&mut conn, &plan).expect("provision");
        assert!(only_silent_triggers(&conn, &["child"]).expect("check"));
        let orphan = Change {
            key: vec![Value::Int(1)],
            values: Some(vec![Value::Int(1), Value::Int(99)]),
            deleted: false,
            version: 1,
            base: None,
            hlc: 1 << 16,
        };
        let page = PullPage {
            changes: vec![orphan],
            token: "t".into(),
            done: false,
            fingerprint: None,
        };
        let e = apply_pull(&mut conn, &child, &page).expect_err("orphan refused");
        assert!(e.to_string().to_lowercase().contains("foreign key"), "{e}");
        assert!(triggers_on(&conn));
        let n: i64 = conn
            .query_row("SELECT count(*) FROM child", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 0);
    }
}
