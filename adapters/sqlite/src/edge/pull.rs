//! Applying a pull page on the edge — the hot path of an initial load.
//!
//! A page and its token commit together in one transaction, so an
//! interrupted load resumes at its last committed page. Statements are
//! prepared once per page (see `table::Writer`) and values bound straight
//! from the page, so a row costs its own lookups and write, nothing more.

use edgesync_core::{PullPage, Result, TableMapping};
use rusqlite::{params, Connection};

use super::{begin_apply, end_apply, push_wm, ApplyStats, EdgeTable};
use crate::error::SqlResultExt;
use crate::types;

pub(super) fn apply_pull(
    conn: &mut Connection,
    m: &TableMapping,
    page: &PullPage,
) -> Result<ApplyStats> {
    let t = EdgeTable::new(m);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    begin_apply(&tx)?;
    let wm = push_wm(&tx, &m.edge)?;
    // A row this page overwrites is clean: it has no conflict base left to
    // keep (checked once per page, so a table without bases pays nothing).
    let bases = t.has_bases(&tx)?;
    // A quarantined key keeps its local values until it is retried (checked
    // per row only when the table has any).
    let quarantined = super::quarantine::count(&tx, &m.edge)? > 0;
    // Without a pending tombstone in the table (the usual case), no key
    // needs looking up in es_tombstones.
    let tombstones = t.has_tombstones(&tx)?;
    let mut stats = ApplyStats::default();
    let mut max_hlc = i64::MIN;
    {
        let mut w = t.writer(&tx);
        for change in &page.changes {
            max_hlc = max_hlc.max(change.hlc);
            let key = &change.key;
            let local = w.local(key)?;
            match local {
                // Written locally and not yet pushed: the push will meet this
                // central version as a conflict and the policy decides.
                Some((ver, _)) if ver > wm => stats.skipped_dirty += 1,
                _ if quarantined && super::quarantine::contains(&tx, &t, &t.bind_key(key)?)? => {
                    stats.skipped_dirty += 1
                }
                // Already at this version or a later one.
                Some((_, Some(cver))) if cver >= change.version => stats.skipped_stale += 1,
                // Deleted locally, delete not pushed yet: same as dirty.
                None if tombstones && w.tombstone(key)?.is_some() => stats.skipped_dirty += 1,
                // Never create a deleted row.
                None if change.deleted => stats.skipped_stale += 1,
                _ => {
                    w.put(key, Some(change), local.is_some())?;
                    if bases {
                        w.drop_base(key)?;
                    }
                    stats.applied += 1;
                }
            }
        }
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
    end_apply(&tx, max_hlc)?;
    tx.commit().db()?;
    Ok(stats)
}
