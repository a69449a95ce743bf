//! Applying a pull page on the edge — the hot path of an initial load.
//!
//! A page and its token commit together in one transaction, so an
//! interrupted load resumes at its last committed page. Statements are
//! prepared once per page (see `table::Writer`) and values bound straight
//! from the page, so a row costs its own lookups and write, nothing more.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use edgesync_core::{Change, ColType, PullPage, Result, TableMapping, Value};
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
}
