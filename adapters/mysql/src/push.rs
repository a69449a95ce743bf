//! Applying a push batch: one `REPEATABLE READ` transaction, a fixed number
//! of set-based statements per chunk of rows (bound rows as a derived table,
//! multi-row `INSERT`s), never a round trip per row.
//!
//! 1. `SET @es_applying = 1`: the triggers leave origin, stamp and
//!    tombstones to this transaction.
//! 2. Lock the node's `es_nodes` row; changes at or below its `hi` are
//!    replays.
//! 3. Lock the current rows of every key (`FOR UPDATE`; a key with no row
//!    gets a gap lock, so no other transaction can insert it until commit),
//!    and the tombstones of the keys with no row; decide each fresh change
//!    with [`edgesync_core::conflict::resolve`]. A row an application changed
//!    and no pull has stamped yet is judged with the version [`PENDING`],
//!    which no edge base equals: it is a conflict, as it should be.
//! 4. Write the decisions (see [`crate::write`]) with `es_ver = NULL`; log
//!    conflicts.
//! 5. Stamp: lock `es_ctl` (last, so the lock is held only for the few
//!    statements to commit) and give fresh versions to every row and
//!    tombstone this push wrote and every pending one it answers with; fill
//!    those versions into the outcomes; store `hi`; commit. Any error rolls
//!    everything back.

use std::collections::{HashMap, HashSet};

use edgesync_core::change::PushResult;
use edgesync_core::conflict::{decide, merged_hlc, CentralRow, Decision, Resolution};
use edgesync_core::filter::Scope;
use edgesync_core::fk_order::{children_first, parents_first};
use edgesync_core::{
    Change, ConflictPolicy, DeleteMode, Error, PushBatch, PushOutcome, Result, TableMapping, Value,
};
use mysql_async::prelude::Queryable;
use mysql_async::{IsolationLevel, Pool, Transaction, TxOpts};

use crate::error::ctx;
use crate::meta::{ConflictEntry, NamedRow};
use crate::sql::{self, literal, Db};
use crate::stamp::{self, PENDING};
use crate::types::{self, Native};
use crate::write::{fetch_current, write_deletes, write_inserts, write_updates};

/// Everything the statements of one push need.
pub(crate) struct Ctx<'a> {
    /// Where things live.
    pub db: &'a Db,
    /// The table.
    pub table: &'a TableMapping,
    /// Native type of each mapped column, in mapping order.
    pub natives: Vec<Native>,
    /// The pushing node.
    pub node: &'a str,
    /// The table's id in the metadata tables.
    pub tbl: String,
    /// The pushing node's row filter, if the table has one.
    pub scope: Option<&'a Scope>,
}

/// The central state of one key, as locked.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    /// The row (or tombstone) for `resolve`; version [`PENDING`] when not
    /// stamped yet.
    pub row: CentralRow,
    /// `es_oseq` of the row or tombstone.
    pub oseq: Option<i64>,
}

/// What the final stamp gives a version to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Row,
    Tomb,
}

/// Keys to stamp, in first-seen order, with what each key is now.
#[derive(Default)]
struct ToStamp {
    order: Vec<(String, Vec<Value>)>,
    target: HashMap<String, Target>,
}

impl ToStamp {
    fn add(&mut self, key: &[Value], target: Target) -> Result<()> {
        let id = key_id(key)?;
        if !self.target.contains_key(&id) {
            self.order.push((id.clone(), key.to_vec()));
        }
        self.target.insert(id, target);
        Ok(())
    }
}

fn key_id(key: &[Value]) -> Result<String> {
    serde_json::to_string(key).map_err(|e| Error::internal(format!("cannot serialize a key: {e}")))
}

/// `push` for the trait.
pub async fn push(
    pool: &Pool,
    db: &Db,
    mariadb: bool,
    node: &str,
    table: &TableMapping,
    scope: Option<&Scope>,
    batch: &PushBatch,
) -> Result<PushResult> {
    let doing = format!(
        "pushing {} changes to {}",
        batch.changes.len(),
        table.central
    );
    for c in &batch.changes {
        check_shape(table, c)?;
    }
    let mut conn = pool.get_conn().await.map_err(ctx(&doing))?;
    let natives = crate::schema::natives(&mut conn, db, mariadb, table)
        .await
        .map_err(|e| e.context(&doing))?;
    let cx = Ctx {
        db,
        table,
        natives,
        node,
        tbl: db.tbl_id(&table.central),
        scope,
    };
    let result = {
        let mut opts = TxOpts::default();
        opts.with_isolation_level(IsolationLevel::RepeatableRead);
        let mut tx = conn.start_transaction(opts).await.map_err(ctx(&doing))?;
        let applied = async {
            let result = apply(&mut tx, &cx, batch).await?;
            tx.query_drop("SET @es_applying = NULL")
                .await
                .map_err(ctx("ending the apply"))?;
            Ok::<_, edgesync_core::Error>(result)
        }
        .await;
        match applied {
            Ok(result) => tx.commit().await.map(|()| result).map_err(ctx(&doing)),
            Err(e) => {
                // Explicitly: a transaction left for the pool to roll back
                // would keep its locks until then.
                tx.rollback().await.ok();
                Err(e.context(format!("{doing} (nothing was applied)")))
            }
        }
    };
    conn.query_drop("SET @es_applying = NULL").await.ok();
    result
}

async fn apply(tx: &mut Transaction<'_>, cx: &Ctx<'_>, batch: &PushBatch) -> Result<PushResult> {
    // Mark the transaction as edgesync's own apply: the triggers then keep
    // origin, stamp and tombstones as written here.
    tx.query_drop("SET @es_applying = 1")
        .await
        .map_err(ctx("marking the transaction as an edgesync apply"))?;
    let hi = lock_node(tx, cx).await?;

    let changes = &batch.changes;
    let n = changes.len();
    let mut outcomes: Vec<Option<PushOutcome>> = vec![None; n];
    let replays: Vec<usize> = (0..n).filter(|&i| changes[i].version <= hi).collect();
    let fresh: Vec<usize> = (0..n).filter(|&i| changes[i].version > hi).collect();
    let mut conflicts = 0;
    let mut to_stamp = ToStamp::default();

    // A batch holds each row once; if a key repeats anyway, later changes to
    // it are decided in a second round, against what the first one wrote.
    let mut rounds: Vec<(HashSet<String>, Vec<usize>)> = Vec::new();
    for i in fresh {
        let key = key_id(&changes[i].key)?;
        match rounds.iter_mut().find(|(seen, _)| !seen.contains(&key)) {
            Some((seen, members)) => {
                seen.insert(key);
                members.push(i);
            }
            None => rounds.push((HashSet::from([key]), vec![i])),
        }
    }

    if !replays.is_empty() {
        let current = fetch_current(tx, cx, changes, &replays).await?;
        for (&i, cur) in replays.iter().zip(current) {
            let outcome = replay_outcome(cx.node, &changes[i], cur.as_ref());
            note_pending(&mut to_stamp, &changes[i], cur.as_ref(), &outcome)?;
            outcomes[i] = Some(outcome);
        }
    }
    for (_, round) in rounds {
        conflicts += apply_round(tx, cx, batch, &round, &mut outcomes, &mut to_stamp).await?;
    }

    if !to_stamp.order.is_empty() {
        let versions = stamp_written(tx, cx, &to_stamp).await?;
        for (i, o) in outcomes.iter_mut().enumerate() {
            let pending = match o {
                Some(PushOutcome::Applied { version }) => (*version == PENDING).then_some(version),
                Some(PushOutcome::Superseded { row: Some(c) }) => {
                    (c.version == PENDING).then_some(&mut c.version)
                }
                _ => None,
            };
            if let Some(v) = pending {
                let id = key_id(&changes[i].key)?;
                *v = *versions.get(&id).ok_or_else(|| {
                    Error::internal("a pending version was not stamped before the push answered")
                })?;
            }
        }
    }

    tx.exec_drop(
        format!(
            "UPDATE {} SET hi = GREATEST(hi, ?), last_push_at = UTC_TIMESTAMP(6) WHERE node = ? AND tbl = ?",
            cx.db.meta("es_nodes")
        ),
        (batch.hi, cx.node, &cx.tbl),
    )
    .await
    .map_err(ctx("storing the push high-water mark"))?;

    let outcomes = outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| Error::internal("a pushed change got no outcome")))
        .collect::<Result<Vec<_>>>()?;
    let mut result = PushResult {
        outcomes,
        conflicts,
        replayed: replays.len(),
    };
    if let Some(scope) = cx.scope {
        scope.restrict_all(&mut result);
    }
    Ok(result)
}

/// An outcome that answers with a pending (not yet stamped) row or
/// tombstone must be stamped before the push answers.
fn note_pending(
    to_stamp: &mut ToStamp,
    change: &Change,
    cur: Option<&Current>,
    outcome: &PushOutcome,
) -> Result<()> {
    let pending = match outcome {
        PushOutcome::Applied { version } => *version == PENDING,
        PushOutcome::Superseded { row: Some(c) } => c.version == PENDING,
        PushOutcome::Superseded { row: None } => false,
    };
    if !pending {
        return Ok(());
    }
    let target = match cur.and_then(|c| c.row.values.as_ref()) {
        Some(_) => Target::Row,
        None => Target::Tomb,
    };
    to_stamp.add(&change.key, target)
}

/// Lock `es_ctl`, give versions to everything in `to_stamp`, store the
/// counter; the version of each key.
async fn stamp_written(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    to_stamp: &ToStamp,
) -> Result<HashMap<String, i64>> {
    let t = cx.table;
    let seq = stamp::lock_counter(tx, cx.db).await?;
    let mut next = seq;
    let mut versions = HashMap::new();
    let (mut rows, mut tombs) = (Vec::new(), Vec::new());
    for (id, key) in &to_stamp.order {
        next += 1;
        versions.insert(id.clone(), next);
        let params = key_params(cx, key)?;
        match to_stamp.target.get(id) {
            Some(Target::Row) => rows.push((params, next)),
            _ => tombs.push((params, next)),
        }
    }
    let binds = stamp::key_binds(t, &cx.natives);
    let done = stamp::set_versions(
        tx,
        &format!("{} AS t", cx.db.table_ref(&t.central)),
        "t",
        &sql::key_match(t, "t"),
        &binds,
        &rows,
    )
    .await?;
    let done_tombs = stamp::set_versions(
        tx,
        &format!("{} AS ts", cx.db.meta("es_tombstones")),
        "ts",
        &format!("ts.tbl = {} AND ts.k = u.k0", literal(&cx.tbl)),
        &[stamp::tomb_key_bind(t, &cx.natives)],
        &tombs,
    )
    .await?;
    if done != rows.len() as u64 || done_tombs != tombs.len() as u64 {
        return Err(Error::internal(format!(
            "stamped {done} of {} rows and {done_tombs} of {} tombstones",
            rows.len(),
            tombs.len()
        )));
    }
    stamp::store_counter(tx, cx.db, next).await?;
    Ok(versions)
}

/// The key values of a change as parameters.
pub(crate) fn key_params(cx: &Ctx<'_>, key: &[Value]) -> Result<Vec<mysql_async::Value>> {
    cx.table
        .key
        .iter()
        .zip(key)
        .map(|(&ci, v)| {
            types::encode(v, cx.table.columns[ci].ty, &cx.natives[ci])
                .map_err(|e| crate::write::value_error(cx, ci, key, e))
        })
        .collect()
}

/// A change must carry one value per key column and, when present, one per
/// mapped column.
fn check_shape(table: &TableMapping, c: &Change) -> Result<()> {
    let bad = |what: String| Err(Error::value(format!("{}: {what}", table.central)));
    if c.key.len() != table.key.len() {
        return bad(format!(
            "a change has {} key values, the key has {}",
            c.key.len(),
            table.key.len()
        ));
    }
    match &c.values {
        Some(v) if v.len() != table.columns.len() => bad(format!(
            "change for key {} has {} values for {} columns",
            table.describe_key(&c.key),
            v.len(),
            table.columns.len()
        )),
        None if !c.deleted => bad(format!(
            "change for key {} has no values and is not a delete",
            table.describe_key(&c.key)
        )),
        _ => Ok(()),
    }
}

/// Create and lock the node's `es_nodes` row; its `hi`.
async fn lock_node(tx: &mut Transaction<'_>, cx: &Ctx<'_>) -> Result<i64> {
    let nodes = cx.db.meta("es_nodes");
    tx.exec_drop(
        format!(
            "INSERT INTO {nodes} (node, tbl, hi) VALUES (?, ?, 0) ON DUPLICATE KEY UPDATE hi = hi"
        ),
        (cx.node, &cx.tbl),
    )
    .await
    .map_err(ctx("registering the node"))?;
    let hi: Option<i64> = tx
        .exec_first(
            format!("SELECT hi FROM {nodes} WHERE node = ? AND tbl = ? FOR UPDATE"),
            (cx.node, &cx.tbl),
        )
        .await
        .map_err(ctx("locking the node's push high-water mark"))?;
    hi.ok_or_else(|| Error::internal("the node's es_nodes row vanished"))
}

/// The outcome of a change already applied by an earlier push: re-derived
/// from the current state, as the original push answered.
/// A row that holds the node's stamps but other values is a field-merge
/// result, which was answered `Superseded` with the merged row.
fn replay_outcome(node: &str, change: &Change, current: Option<&Current>) -> PushOutcome {
    match current {
        Some(c)
            if c.row.origin.as_deref() == Some(node)
                && c.oseq == Some(change.version)
                && same_values(change.values.as_deref(), c.row.values.as_deref()) =>
        {
            // A row, or our own tombstone: answered with its version.
            PushOutcome::Applied {
                version: c.row.version,
            }
        }
        c if change.deleted && c.is_none_or(|c| c.row.deleted) => PushOutcome::Applied {
            version: c.map_or(0, |c| c.row.version),
        },
        c => superseded(change, c),
    }
}

/// Do a pushed change's values and the central row's agree (by
/// `Value::same_as`)? A tombstone agrees with anything.
fn same_values(change: Option<&[Value]>, central: Option<&[Value]>) -> bool {
    match (change, central) {
        (Some(a), Some(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y)),
        _ => true,
    }
}

fn superseded(change: &Change, current: Option<&Current>) -> PushOutcome {
    PushOutcome::Superseded {
        row: current.map(|c| c.row.to_change(change.key.clone())),
    }
}

/// Decide and write one round of fresh changes (distinct keys); the number of
/// conflicts.
async fn apply_round(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    batch: &PushBatch,
    round: &[usize],
    outcomes: &mut [Option<PushOutcome>],
    to_stamp: &mut ToStamp,
) -> Result<usize> {
    let changes = &batch.changes;
    let current = fetch_current(tx, cx, changes, round).await?;
    let hard = cx.table.deletes == DeleteMode::Hard;
    let (mut updates, mut inserts, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    let mut logged = Vec::new();
    let mut refused = Vec::new();
    // What is written: the changes as pushed, except field-merge results,
    // which replace a change's values (and stamp) with the merged row (the
    // batch is copied only when there is one).
    let mut merged_rows: Option<Vec<Change>> = None;
    let mut merged_at: Vec<usize> = Vec::new();
    for (&i, cur) in round.iter().zip(&current) {
        let change = &changes[i];
        // A lost push answer, an insert after a central delete and the
        // field-merge of a row are judged the same way on every backend
        // (see `conflict::decide`).
        let base = batch
            .base_of(i)
            .filter(|b| b.len() == cx.table.columns.len());
        let row = cur.as_ref().map(|c| &c.row);
        // Outside the node's filter: refused as a conflict, the central row
        // kept, the rest of the batch applied.
        if let Some(scope) = cx.scope.filter(|s| s.refuses(change, row).is_some()) {
            let keep = Resolution {
                decision: Decision::KeepCentral,
                conflict: Some(false),
                merged: None,
            };
            refused.push(conflict_entry(
                cx.table,
                change,
                base,
                cur.as_ref(),
                &keep,
                false,
            ));
            let outcome = scope.refused_outcome(&change.key, row);
            note_pending(to_stamp, change, cur.as_ref(), &outcome)?;
            outcomes[i] = Some(outcome);
            continue;
        }
        let res = decide(
            cx.table.conflict,
            cx.node,
            change,
            base,
            row,
            cur.as_ref().and_then(|c| c.oseq),
        );
        if let Some(open) = res.conflict {
            logged.push(conflict_entry(
                cx.table,
                change,
                base,
                cur.as_ref(),
                &res,
                open,
            ));
        }
        if let Some(merged) = &res.merged {
            let w = &mut merged_rows.get_or_insert_with(|| changes.to_vec())[i];
            w.values = Some(merged.clone());
            w.hlc = merged_hlc(change.hlc, row);
            merged_at.push(i);
        }
        match res.decision {
            Decision::KeepCentral => {
                let outcome = superseded(change, cur.as_ref());
                note_pending(to_stamp, change, cur.as_ref(), &outcome)?;
                outcomes[i] = Some(outcome);
            }
            Decision::AlreadyThere => {
                let outcome = PushOutcome::Applied {
                    version: cur.as_ref().map_or(0, |c| c.row.version),
                };
                note_pending(to_stamp, change, cur.as_ref(), &outcome)?;
                outcomes[i] = Some(outcome);
            }
            Decision::Apply => {
                let row_exists = cur.as_ref().is_some_and(|c| c.row.values.is_some());
                match (row_exists, hard && change.deleted) {
                    (true, true) => deletes.push(i),
                    (true, false) => updates.push(i),
                    (false, false) => inserts.push(i),
                    // resolve() answers AlreadyThere for a delete of a row
                    // the central does not have.
                    (false, true) => outcomes[i] = Some(PushOutcome::Applied { version: 0 }),
                }
            }
        }
    }
    let writes: &[Change] = merged_rows.as_deref().unwrap_or(changes);
    // A soft delete sent without values keeps the central row's values.
    let fill: HashMap<usize, &Vec<Value>> = round
        .iter()
        .zip(&current)
        .filter_map(|(&i, c)| Some((i, c.as_ref()?.row.values.as_ref()?)))
        .collect();
    // InnoDB checks foreign keys row by row: a self-referencing table's
    // new parents go before their children, deleted children before their
    // parents (see `fk.rs`).
    if inserts.len() > 1 || deletes.len() > 1 {
        let refs = crate::fk::self_references(tx, cx).await?;
        if !refs.is_empty() {
            let key = |i: usize| writes[i].key.as_slice();
            inserts = parents_first(&inserts, &refs, key, |i| writes[i].values.as_deref());
            deletes = children_first(&deletes, &refs, key, |i| fill.get(&i).map(|v| v.as_slice()));
        }
    }
    write_updates(tx, cx, writes, &updates, &fill, &merged_at).await?;
    write_inserts(tx, cx, writes, &inserts).await?;
    write_deletes(tx, cx, writes, &deletes).await?;
    for &i in updates.iter().chain(&inserts) {
        to_stamp.add(&writes[i].key, Target::Row)?;
        outcomes[i] = Some(if merged_at.contains(&i) {
            // The edge takes the merged row (it was written under its name,
            // so it is not pulled back as an echo); its version is filled in
            // by the final stamp.
            PushOutcome::Superseded {
                row: Some(Change {
                    key: writes[i].key.clone(),
                    values: writes[i].values.clone(),
                    deleted: false,
                    version: PENDING,
                    base: None,
                    hlc: writes[i].hlc,
                }),
            }
        } else {
            PushOutcome::Applied { version: PENDING }
        });
    }
    for &i in &deletes {
        to_stamp.add(&writes[i].key, Target::Tomb)?;
        // Answered with the tombstone's version (filled in by the final
        // stamp), as on every backend: it is the edge's conflict base if it
        // re-inserts the key while this push is in flight.
        outcomes[i] = Some(PushOutcome::Applied { version: PENDING });
    }
    crate::meta::log_conflicts(tx, cx.db, cx.table, cx.node, &logged).await?;
    if !refused.is_empty() {
        // Logged under their own strategy, which says why.
        let mut out_of_scope = cx.table.clone();
        out_of_scope.conflict = ConflictPolicy::OutOfScope;
        crate::meta::log_conflicts(tx, cx.db, &out_of_scope, cx.node, &refused).await?;
    }
    Ok(logged.len() + refused.len())
}

/// What the conflict log records about one conflict.
fn conflict_entry(
    t: &TableMapping,
    change: &Change,
    base: Option<&[Value]>,
    cur: Option<&Current>,
    res: &Resolution,
    open: bool,
) -> ConflictEntry {
    let named = |vals: &[Value]| -> NamedRow {
        t.columns
            .iter()
            .zip(vals)
            .map(|(c, v)| (c.central.clone(), v.clone()))
            .collect()
    };
    let local = if change.deleted {
        None
    } else {
        change.values.as_deref().map(named)
    };
    let central = cur
        .filter(|c| !c.row.deleted)
        .and_then(|c| c.row.values.as_deref().map(named));
    let result = res.result(change, cur.map(|c| &c.row)).map(named);
    ConflictEntry {
        key: t
            .key_columns()
            .zip(&change.key)
            .map(|(c, v)| (c.central.clone(), v.clone()))
            .collect(),
        base_version: change.base,
        base: base.map(named),
        local,
        central,
        result,
        local_hlc: change.hlc,
        central_hlc: cur.map_or(0, |c| c.row.hlc),
        open,
    }
}
