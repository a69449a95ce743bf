//! Applying a push batch: one `REPEATABLE READ` transaction, a fixed number
//! of set-based statements per chunk of rows (bound rows as a derived table,
//! multi-row `INSERT`s), never a round trip per row, and every pushed row
//! written once, with its final version.
//!
//! 1. `SET @es_applying = 1`: the triggers leave version, origin, stamp and
//!    tombstones to this transaction.
//! 2. Lock the node's `es_nodes` row; changes at or below its `hi` are
//!    replays.
//! 3. Lock the current rows of every key (`FOR UPDATE`; a key with no row
//!    gets a gap lock, so no other transaction can insert it until commit),
//!    and the tombstones of the keys with no row; decide each fresh change
//!    with [`edgesync_core::conflict::resolve`]. A row an application changed
//!    and no pull has stamped yet is judged with the version [`PENDING`],
//!    which no edge base equals: it is a conflict, as it should be.
//! 4. Lock `es_ctl` (the version counter, see `stamp.rs`), then write the
//!    decisions (see [`crate::write`]), each row and tombstone with a fresh
//!    version taken from the counter; log conflicts.
//! 5. Give fresh versions to the pending rows and tombstones the push
//!    answers with (conflicts against unstamped application writes, rare);
//!    fill the versions into the outcomes; store the counter and `hi`;
//!    commit, which releases `es_ctl`. Any error rolls everything back.
//!
//! Commit-safety is the stamping step's: every version is taken by a
//! transaction that holds `es_ctl` locked until it commits, so versions
//! become visible in the order they are taken and a pull watermark never
//! passes a version that commits later.
//!
//! What holding `es_ctl` from the first write to the commit costs: version
//! assignment is serialized per central database, so while one push writes
//! its batch, another push's writes (not its locking reads and conflict
//! decisions, which come before the lock) and every pull's stamping step
//! wait for it. Before, a push wrote its rows with `es_ver = NULL` and locked
//! `es_ctl` only to stamp them, with a second `UPDATE` of every row: the lock
//! was held about as long (that `UPDATE` was most of a push's server time),
//! and the push did twice the row writes. What is new is that a write that
//! itself has to wait (an `INSERT` into a gap another transaction holds a gap
//! lock on, a foreign-key check on a parent row an application holds
//! locked) now waits while holding `es_ctl`. Such a wait either ends when
//! the application commits or is a deadlock with another push, which InnoDB
//! detects at once and answers with a retryable error (1213) for one of
//! them; the engine retries that push. Two pushes inserting into the same
//! gap (new keys above the largest one, from two nodes) deadlocked the same
//! way before (each waiting for the other's gap lock).

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

/// Pending rows and tombstones the push answers with, to stamp before it
/// answers: keys in first-seen order, with what each key is now.
#[derive(Default)]
struct ToStamp {
    order: Vec<(String, Vec<Value>)>,
    target: HashMap<String, Target>,
}

/// The versions of one push: the counter it holds and the version each
/// key it wrote (or stamped) has now.
#[derive(Default)]
struct Versions {
    counter: stamp::Counter,
    of_key: HashMap<String, i64>,
}

impl Versions {
    /// Fresh versions for the changes `idx` of `writes` about to be written
    /// (the counter is locked first), recorded as their keys' versions.
    async fn take(
        &mut self,
        tx: &mut Transaction<'_>,
        db: &Db,
        writes: &[Change],
        idx: &[usize],
    ) -> Result<Vec<i64>> {
        if idx.is_empty() {
            return Ok(Vec::new());
        }
        self.counter.lock(tx, db).await?;
        let mut out = Vec::with_capacity(idx.len());
        for &i in idx {
            let v = self.counter.take()?;
            self.of_key.insert(key_id(&writes[i].key)?, v);
            out.push(v);
        }
        Ok(out)
    }
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
    let mut versions = Versions::default();

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
        conflicts += apply_round(
            tx,
            cx,
            batch,
            &round,
            &mut outcomes,
            &mut to_stamp,
            &mut versions,
        )
        .await?;
    }

    stamp_pending(tx, cx, &to_stamp, &mut versions).await?;
    if !versions.of_key.is_empty() {
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
                *v = *versions.of_key.get(&id).ok_or_else(|| {
                    Error::internal("a pending version was not stamped before the push answered")
                })?;
            }
        }
    }
    versions.counter.store(tx, cx.db).await?;

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

/// Give versions to the pending rows and tombstones in `to_stamp` that
/// this push did not write (those have their version already): one
/// set-based `UPDATE` each, under the push's `es_ctl` lock.
async fn stamp_pending(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    to_stamp: &ToStamp,
    versions: &mut Versions,
) -> Result<()> {
    let t = cx.table;
    let left: Vec<&(String, Vec<Value>)> = to_stamp
        .order
        .iter()
        .filter(|(id, _)| !versions.of_key.contains_key(id))
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    versions.counter.lock(tx, cx.db).await?;
    let (mut rows, mut tombs) = (Vec::new(), Vec::new());
    for (id, key) in left {
        let v = versions.counter.take()?;
        versions.of_key.insert(id.clone(), v);
        let params = key_params(cx, key)?;
        match to_stamp.target.get(id) {
            Some(Target::Row) => rows.push((params, v)),
            _ => tombs.push((params, v)),
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
    Ok(())
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
    versions: &mut Versions,
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
    // The versions are taken (and es_ctl locked) only now, after every
    // locking read and decision of the first round.
    let v = versions.take(tx, cx.db, writes, &updates).await?;
    write_updates(tx, cx, writes, &updates, &v, &fill, &merged_at).await?;
    let v = versions.take(tx, cx.db, writes, &inserts).await?;
    write_inserts(tx, cx, writes, &inserts, &v).await?;
    let v = versions.take(tx, cx.db, writes, &deletes).await?;
    write_deletes(tx, cx, writes, &deletes, &v).await?;
    for &i in updates.iter().chain(&inserts) {
        outcomes[i] = Some(if merged_at.contains(&i) {
            // The edge takes the merged row (it was written under its name,
            // so it is not pulled back as an echo); its version (the key's
            // last) is filled in before the push answers.
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
        // Answered with the tombstone's version (the key's last, filled in
        // before the push answers), as on every backend: it is the edge's
        // conflict base if it re-inserts the key while this push is in
        // flight.
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
