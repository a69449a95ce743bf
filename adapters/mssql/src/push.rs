//! Applying a push batch: one transaction, a fixed number of set-based
//! statements per round whatever the batch size (the changes are staged in
//! `#es_stage` and every step joins it; see [`crate::write`]), never a round
//! trip per row.
//!
//! 1. `BEGIN TRANSACTION` with `SESSION_CONTEXT(N'edgesync.applying') = 1`:
//!    the triggers keep the origin, stamp and tombstones this transaction
//!    writes.
//! 2. Lock the node's `es_nodes` row (`UPDLOCK, HOLDLOCK`); changes at or
//!    below its `hi` are replays.
//! 3. Lock the current rows of every key, and the tombstones of the keys with
//!    no row; decide each fresh change with
//!    [`edgesync_core::conflict::decide`].
//! 4. Write the decisions (update, insert, hard delete with tombstones), read
//!    the rowversions they got; log conflicts; store `hi`; commit. Any error
//!    rolls everything back (`XACT_ABORT` is on for every session).

use std::collections::HashSet;

use edgesync_core::change::PushResult;
use edgesync_core::conflict::{decide, merged_hlc, CentralRow, Decision, Resolution};
use edgesync_core::filter::Scope;
use edgesync_core::{
    Change, ConflictPolicy, DeleteMode, Error, PushBatch, PushOutcome, Result, TableMapping, Value,
};

use crate::connection::{Conn, Pool};
use crate::meta::{ConflictEntry, NamedRow};
use crate::sql::{self, Native};
use crate::types::{need_int, Param};
use crate::write::{self, fetch_current, Act};

/// Everything the statements of one push need.
pub(crate) struct Ctx<'a> {
    /// The table.
    pub table: &'a TableMapping,
    /// Native type of each mapped column, in mapping order.
    pub natives: Vec<Native>,
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
    pool: &Pool,
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
    let mut conn = pool.get().await?;
    conn.begin(true).await.map_err(|e| e.context(&doing))?;
    match apply(&mut conn, node, table, scope, batch).await {
        Ok(result) => match conn.commit(&doing).await {
            Ok(()) => Ok(result),
            Err(e) => {
                conn.rollback().await;
                Err(e)
            }
        },
        Err(e) => {
            conn.rollback().await;
            Err(e.context(format!("{doing} (nothing was applied)")))
        }
    }
}

async fn apply(
    conn: &mut Conn,
    node: &str,
    table: &TableMapping,
    scope: Option<&Scope>,
    batch: &PushBatch,
) -> Result<PushResult> {
    for c in &batch.changes {
        check_shape(table, c)?;
    }
    let natives = crate::schema::natives(conn, table).await?;
    conn.batch(
        &write::stage_ddl(table, &natives),
        "creating the staging table",
    )
    .await?;
    let cx = Ctx {
        table,
        natives,
        node,
        tbl: sql::tbl_id(&table.central),
    };
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

    conn.exec(
        &format!(
            "UPDATE {} SET hi = CASE WHEN hi < @P3 THEN @P3 ELSE hi END, \
             last_push_at = SYSUTCDATETIME() WHERE node = @P1 AND tbl = @P2",
            sql::meta(&table.central, "es_nodes")
        ),
        &[
            Param::Text(Some(node.to_string())),
            Param::Text(Some(cx.tbl.clone())),
            Param::Int(Some(batch.hi)),
        ],
        "storing the push high-water mark",
    )
    .await?;
    conn.batch(
        &format!("DROP TABLE {};", write::STAGE),
        "dropping the staging table",
    )
    .await?;

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
async fn lock_node(conn: &mut Conn, cx: &Ctx<'_>) -> Result<i64> {
    let nodes = sql::meta(&cx.table.central, "es_nodes");
    let rows = conn
        .query(
            &format!(
                "IF NOT EXISTS (SELECT 1 FROM {nodes} WITH (UPDLOCK, HOLDLOCK)
                                 WHERE node = @P1 AND tbl = @P2)
                     INSERT INTO {nodes} (node, tbl, hi) VALUES (@P1, @P2, 0);
                 SELECT hi FROM {nodes} WITH (UPDLOCK, HOLDLOCK) WHERE node = @P1 AND tbl = @P2;"
            ),
            &[
                Param::Text(Some(cx.node.to_string())),
                Param::Text(Some(cx.tbl.clone())),
            ],
            "locking the node's push high-water mark",
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| Error::internal("es_nodes has no row for the node after inserting it"))?;
    need_int(row, 0)
}

/// Do a pushed change's values and the central row's agree (by
/// `Value::same_as`: a decimal padded to the column's scale still agrees)?
/// A tombstone agrees with anything.
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
    conn: &mut Conn,
    cx: &Ctx<'_>,
    scope: Option<&Scope>,
    batch: &PushBatch,
    round: &[usize],
    outcomes: &mut [Option<PushOutcome>],
) -> Result<usize> {
    let changes = &batch.changes;
    let current = fetch_current(conn, cx, changes, round).await?;
    let hard = cx.table.deletes == DeleteMode::Hard;
    let mut plan: Vec<(usize, Act)> = Vec::new();
    let mut logged = Vec::new();
    let mut refused = Vec::new();
    let mut merged_rows: Option<Vec<Change>> = None;
    let mut merged_at: Vec<usize> = Vec::new();
    for (&i, cur) in round.iter().zip(&current) {
        let change = &changes[i];
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
                    (true, true) => plan.push((i, Act::Delete)),
                    (true, false) => plan.push((i, Act::Update)),
                    (false, false) => plan.push((i, Act::Insert)),
                    (false, true) => outcomes[i] = Some(PushOutcome::Applied { version: 0 }),
                }
            }
        }
    }
    let writes: &[Change] = merged_rows.as_deref().unwrap_or(changes);
    for (i, version) in write::write(conn, cx, writes, &plan, &merged_at).await? {
        let deleted = plan.iter().any(|&(j, a)| j == i && a == Act::Delete);
        outcomes[i] = Some(if merged_at.contains(&i) && !deleted {
            // The edge takes the merged row (written under its name, so it
            // is not pulled back as an echo, but without a sequence: it is
            // not the node's own write).
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
