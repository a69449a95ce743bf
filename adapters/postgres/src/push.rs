//! Applying a push batch: one transaction, a fixed number of set-based
//! statements whatever the batch size (each column is bound once as an array
//! and `UNNEST`ed), never a round trip per row.
//!
//! 1. `set_config('edgesync.applying', 'on', true)`: the row triggers skip
//!    the statements below, which stamp their rows and keep the tombstones
//!    themselves (see [`crate::write`]), and keep the origin of any write
//!    nested in a trigger.
//! 2. Lock the node's `es_nodes` row; changes at or below its `hi` are replays.
//! 3. Lock the current rows of every key (`FOR UPDATE`), and the tombstones of
//!    the keys with no row; decide each fresh change with
//!    [`edgesync_core::conflict::resolve`].
//! 4. Write the decisions with one statement per kind (update, insert, hard
//!    delete with tombstones; see [`crate::write`]); log conflicts; store
//!    `hi`; commit. Any error rolls everything back.

use std::collections::HashSet;

use edgesync_core::change::PushResult;
use edgesync_core::conflict::{decide, merged_hlc, CentralRow, Decision, Resolution};
use edgesync_core::filter::Scope;
use edgesync_core::{
    Change, ConflictPolicy, DeleteMode, Error, PushBatch, PushOutcome, Result, TableMapping, Value,
};
use sqlx::{PgConnection, PgPool};

use crate::error::ctx;
use crate::meta::{ConflictEntry, NamedRow};
use crate::sql;
use crate::write::{fetch_current, write_deletes, write_inserts, write_updates};

/// Everything the statements of one push need.
pub(crate) struct Ctx<'a> {
    /// The table.
    pub table: &'a TableMapping,
    /// Native type of each mapped column (`format_type`), in mapping order.
    pub natives: Vec<String>,
    /// The pushing node.
    pub node: &'a str,
    /// The table's id in the metadata tables.
    pub tbl: String,
}

/// The central state of one key, as locked.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    /// The row (or tombstone) for `resolve`.
    pub row: CentralRow,
    /// `es_oseq` of the row or tombstone.
    pub oseq: Option<i64>,
}

/// `push` for the trait.
pub async fn push(
    pool: &PgPool,
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
    let mut tx = pool.begin().await.map_err(ctx(&doing))?;
    match apply(&mut tx, node, table, scope, batch).await {
        Ok(result) => {
            tx.commit().await.map_err(ctx(&doing))?;
            Ok(result)
        }
        Err(e) => {
            tx.rollback().await.ok();
            Err(e.context(format!("{doing} (nothing was applied)")))
        }
    }
}

async fn apply(
    conn: &mut PgConnection,
    node: &str,
    table: &TableMapping,
    scope: Option<&Scope>,
    batch: &PushBatch,
) -> Result<PushResult> {
    for c in &batch.changes {
        check_shape(table, c)?;
    }
    let natives = crate::schema::natives(conn, table).await?;
    let cx = Ctx {
        table,
        natives,
        node,
        tbl: sql::tbl_id(&table.central),
    };
    // Mark the transaction as edgesync's own apply (the row triggers skip its
    // statements, which stamp themselves), and give up on row locks held
    // by a stuck application transaction after a while: the batch is retried.
    sqlx::query(
        "SELECT set_config('edgesync.applying', 'on', true), \
                set_config('lock_timeout', '30s', true)",
    )
    .execute(&mut *conn)
    .await
    .map_err(ctx("marking the transaction as an edgesync apply"))?;
    // Foreign keys declared DEFERRABLE are checked at commit, so a batch's
    // rows (a self-referencing table's parent updated after its child, a
    // parent and child deleted together) may be written in any order; the
    // others are checked per statement and the engine orders tables for
    // them (see `src/engine/passes.rs`). Constraints are never disabled.
    sqlx::query("SET CONSTRAINTS ALL DEFERRED")
        .execute(&mut *conn)
        .await
        .map_err(ctx("deferring deferrable foreign keys"))?;
    let hi = lock_node(conn, &cx).await?;

    let n = batch.changes.len();
    let mut outcomes: Vec<Option<PushOutcome>> = vec![None; n];
    let replays: Vec<usize> = (0..n).filter(|&i| batch.changes[i].version <= hi).collect();
    let fresh: Vec<usize> = (0..n).filter(|&i| batch.changes[i].version > hi).collect();
    let mut conflicts = 0;

    // A batch holds each row once; if a key repeats anyway, later changes to
    // it are decided in a second round, against what the first one wrote.
    let mut rounds: Vec<(HashSet<String>, Vec<usize>)> = Vec::new();
    for i in fresh {
        let key = serde_json::to_string(&batch.changes[i].key)
            .map_err(|e| Error::internal(format!("cannot serialize a key: {e}")))?;
        match rounds.iter_mut().find(|(seen, _)| !seen.contains(&key)) {
            Some((seen, members)) => {
                seen.insert(key);
                members.push(i);
            }
            None => rounds.push((HashSet::from([key]), vec![i])),
        }
    }

    if !replays.is_empty() {
        let current = fetch_current(conn, &cx, &batch.changes, &replays).await?;
        for (&i, cur) in replays.iter().zip(current) {
            outcomes[i] = Some(replay_outcome(node, &batch.changes[i], cur.as_ref()));
        }
    }
    for (_, round) in rounds {
        conflicts += apply_round(conn, &cx, scope, batch, &round, &mut outcomes).await?;
    }

    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {} SET hi = greatest(hi, $3), last_push_at = now() WHERE node = $1 AND tbl = $2",
        sql::meta(&table.central, "es_nodes")
    )))
    .bind(node)
    .bind(&cx.tbl)
    .bind(batch.hi)
    .execute(&mut *conn)
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
    if let Some(scope) = scope {
        scope.restrict_all(&mut result);
    }
    Ok(result)
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
async fn lock_node(conn: &mut PgConnection, cx: &Ctx<'_>) -> Result<i64> {
    let nodes = sql::meta(&cx.table.central, "es_nodes");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {nodes} (node, tbl, hi) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING"
    )))
    .bind(cx.node)
    .bind(&cx.tbl)
    .execute(&mut *conn)
    .await
    .map_err(ctx("registering the node"))?;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT hi FROM {nodes} WHERE node = $1 AND tbl = $2 FOR UPDATE"
    )))
    .bind(cx.node)
    .bind(&cx.tbl)
    .fetch_one(&mut *conn)
    .await
    .map_err(ctx("locking the node's push high-water mark"))
}

/// Do a pushed change's values and the central row's agree (by
/// `Value::same_as`: a decimal padded to the column's scale, or JSON that
/// jsonb re-serialised, still agrees)? A tombstone agrees with anything.
fn same_values(change: Option<&[Value]>, central: Option<&[Value]>) -> bool {
    match (change, central) {
        (Some(a), Some(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y)),
        _ => true,
    }
}

/// The outcome of a change already applied by an earlier push: re-derived
/// from the current state, as the original push answered. A row that holds
/// the node's stamps but other values is a field-merge result, which was
/// answered `Superseded` with the merged row.
fn replay_outcome(node: &str, change: &Change, current: Option<&Current>) -> PushOutcome {
    match current {
        Some(c)
            if c.row.origin.as_deref() == Some(node)
                && c.oseq == Some(change.version)
                && same_values(change.values.as_deref(), c.row.values.as_deref()) =>
        {
            // (For a hard delete, the tombstone's version.)
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

fn superseded(change: &Change, current: Option<&Current>) -> PushOutcome {
    PushOutcome::Superseded {
        row: current.map(|c| c.row.to_change(change.key.clone())),
    }
}

/// Decide and write one round of fresh changes (distinct keys); the number of
/// conflicts.
async fn apply_round(
    conn: &mut PgConnection,
    cx: &Ctx<'_>,
    scope: Option<&Scope>,
    batch: &PushBatch,
    round: &[usize],
    outcomes: &mut [Option<PushOutcome>],
) -> Result<usize> {
    let changes = &batch.changes;
    let current = fetch_current(conn, cx, changes, round).await?;
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
        if let Some(scope) = scope.filter(|s| s.refuses(change, row).is_some()) {
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
            outcomes[i] = Some(scope.refused_outcome(&change.key, row));
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
            Decision::KeepCentral => outcomes[i] = Some(superseded(change, cur.as_ref())),
            Decision::AlreadyThere => {
                outcomes[i] = Some(PushOutcome::Applied {
                    version: cur.as_ref().map_or(0, |c| c.row.version),
                })
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
    let mut written = write_updates(conn, cx, writes, &updates, &merged_at).await?;
    written.extend(write_inserts(conn, cx, writes, &inserts).await?);
    for (i, version) in written {
        outcomes[i] = Some(if merged_at.contains(&i) {
            // The edge takes the merged row (it was written under its name,
            // so it is not pulled back as an echo, but without a sequence:
            // it is not the node's own write).
            PushOutcome::Superseded {
                row: Some(Change {
                    key: writes[i].key.clone(),
                    values: writes[i].values.clone(),
                    deleted: false,
                    version,
                    base: None,
                    hlc: writes[i].hlc,
                }),
            }
        } else {
            PushOutcome::Applied { version }
        });
    }
    // A hard delete is answered with its tombstone's version.
    for (i, version) in write_deletes(conn, cx, writes, &deletes).await? {
        outcomes[i] = Some(PushOutcome::Applied { version });
    }
    crate::meta::log_conflicts(conn, cx.table, cx.node, &logged).await?;
    if !refused.is_empty() {
        // Logged under their own strategy, which says why.
        let mut out_of_scope = cx.table.clone();
        out_of_scope.conflict = ConflictPolicy::OutOfScope;
        crate::meta::log_conflicts(conn, &out_of_scope, cx.node, &refused).await?;
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
