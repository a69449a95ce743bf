//! Version stamping: how versions stay commit-safe without a snapshot xmin.
//!
//! MySQL and MariaDB have no primitive that says "every transaction that
//! could still commit below this point" (PostgreSQL's snapshot xmin, SQL
//! Server's `MIN_ACTIVE_ROWVERSION()`). A version taken inside an application
//! transaction could be committed after a pull already moved past it. So the
//! triggers never take a version: they mark a changed row (or tombstone)
//! *pending* with `es_ver = NULL`, and versions are handed out only here:
//!
//! 1. In its own short `READ COMMITTED` transaction, lock the one row of
//!    `es_ctl` (`FOR UPDATE`): version assignment is serialized.
//! 2. Find pending rows with `... WHERE es_ver IS NULL FOR UPDATE SKIP
//!    LOCKED`. A row written by a transaction that is still open is locked
//!    by it and skipped; it stays pending and a later step stamps it, with a
//!    later version.
//! 3. Give the rows found `seq + 1, seq + 2, ...`, store the new `seq`,
//!    commit, which releases the `es_ctl` lock.
//!
//! Every version is assigned by a transaction that holds the `es_ctl` lock
//! until it commits (a push takes the versions of the rows it writes under
//! the same lock, see `push.rs`), so versions become visible in the order
//! they are assigned:
//! when version `v` is visible, every smaller version is too. A pull that
//! reads "versions above the last one delivered" in one consistent snapshot
//! therefore never skips a change, however late its transaction commits.

use std::ops::Range;

use edgesync_core::{Error, Result, TableMapping};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, IsolationLevel, Row, Transaction, TxOpts, Value as My};

use crate::error::ctx;
use crate::schema::values;
use crate::sql::{self, ident, literal, Db};
use crate::types::Native;

/// Rows stamped per transaction (each holds the `es_ctl` lock briefly).
const CHUNK: usize = 2_000;

/// The version a pending row or tombstone is judged with inside a push:
/// higher than any base an edge can hold, so a pending central change is
/// always a conflict; replaced by a real version before the push answers.
pub const PENDING: i64 = i64::MAX;

/// A derived-table column expression for row keys: each key column bound
/// with a cast to its own type, compared in its own collation.
pub(crate) fn key_binds(table: &TableMapping, natives: &[Native]) -> Vec<String> {
    table
        .key
        .iter()
        .map(|&i| sql::bind_expr(table.columns[i].ty, &natives[i], true))
        .collect()
}

/// The tombstone key (`es_tombstones.k`) computed from the bound key values.
pub(crate) fn tomb_key_bind(table: &TableMapping, natives: &[Native]) -> String {
    sql::key_json(table, &key_binds(table, natives))
}

/// A tombstone key bound as it is stored.
pub(crate) const RAW_TOMB_KEY: &str = "CAST(? AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_bin";

fn param_bytes(p: &[My]) -> usize {
    p.iter()
        .map(|v| match v {
            My::Bytes(b) => b.len() + 8,
            _ => 16,
        })
        .sum()
}

/// Set `es_ver` of the rows (or tombstones) named by `entries`, each a list
/// of key parameters and its version, with one set-based statement per
/// chunk: `UPDATE (<bound rows>) u STRAIGHT_JOIN <target> ON <on> SET
/// <alias>.es_ver = u.es_v`. `key_exprs` are the derived-table expressions
/// (`u.k0`, `u.k1`, ...) consuming the key parameters. Returns the number of
/// rows changed.
pub(crate) async fn set_versions(
    tx: &mut Transaction<'_>,
    target: &str,
    alias: &str,
    on: &str,
    key_exprs: &[String],
    entries: &[(Vec<My>, i64)],
) -> Result<u64> {
    let per_row = 1 + entries.first().map_or(0, |e| e.0.len());
    let mut exprs = vec![("CAST(? AS SIGNED)".to_string(), "es_v".to_string())];
    exprs.extend(
        key_exprs
            .iter()
            .enumerate()
            .map(|(j, e)| (e.clone(), format!("k{j}"))),
    );
    let mut changed = 0;
    for Range { start, end } in sql::chunks(entries.len(), per_row, |i| param_bytes(&entries[i].0))
    {
        let query = format!(
            "UPDATE {derived} STRAIGHT_JOIN {target} ON {on} SET {alias}.es_ver = u.es_v",
            derived = sql::derived(&exprs, end - start),
        );
        let mut params = Vec::with_capacity((end - start) * per_row);
        for (key, version) in &entries[start..end] {
            params.push(My::Int(*version));
            params.extend(key.iter().cloned());
        }
        tx.exec_drop(query, params)
            .await
            .map_err(ctx("assigning versions"))?;
        changed += tx.affected_rows();
    }
    Ok(changed)
}

/// Lock `es_ctl` and read the last version handed out.
pub(crate) async fn lock_counter(tx: &mut Transaction<'_>, db: &Db) -> Result<i64> {
    let seq: Option<i64> = tx
        .query_first(format!(
            "SELECT seq FROM {} WHERE id = 1 FOR UPDATE",
            db.meta("es_ctl")
        ))
        .await
        .map_err(ctx("locking the version counter es_ctl"))?;
    seq.ok_or_else(|| {
        Error::schema(format!(
            "the version counter {}.es_ctl has no row; run init-sync",
            db.default
        ))
    })
}

/// Store the last version handed out.
pub(crate) async fn store_counter(tx: &mut Transaction<'_>, db: &Db, seq: i64) -> Result<()> {
    tx.exec_drop(
        format!("UPDATE {} SET seq = ? WHERE id = 1", db.meta("es_ctl")),
        (seq,),
    )
    .await
    .map_err(ctx("storing the version counter"))
}

/// The version counter as a push holds it: `es_ctl` is locked on first use
/// ([`Counter::lock`], a no-op once locked) and stays locked until the
/// push's transaction ends; versions are taken one by one and the last one
/// is stored ([`Counter::store`]) before the commit.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    /// `(seq when locked, last version taken)`; `None`: not locked.
    held: Option<(i64, i64)>,
}

impl Counter {
    /// Lock `es_ctl` unless this transaction already holds it.
    pub(crate) async fn lock(&mut self, tx: &mut Transaction<'_>, db: &Db) -> Result<()> {
        if self.held.is_none() {
            let seq = lock_counter(tx, db).await?;
            self.held = Some((seq, seq));
        }
        Ok(())
    }

    /// The next version; the counter must be locked.
    pub(crate) fn take(&mut self) -> Result<i64> {
        let (_, last) = self.held.as_mut().ok_or_else(|| {
            Error::internal("a version was taken without holding the es_ctl lock")
        })?;
        *last += 1;
        Ok(*last)
    }

    /// Store the last version taken, if any was.
    pub(crate) async fn store(&self, tx: &mut Transaction<'_>, db: &Db) -> Result<()> {
        match self.held {
            Some((seq, last)) if last != seq => store_counter(tx, db, last).await,
            _ => Ok(()),
        }
    }
}

/// Stamp the committed pending rows and tombstones of `table`, at most about
/// `budget` of them. Returns `true` when the budget ran out and more may be
/// pending (the pull then does not end its pass).
pub async fn stamp(
    conn: &mut Conn,
    db: &Db,
    table: &TableMapping,
    natives: &[Native],
    budget: usize,
) -> Result<bool> {
    let t = db.table_ref(&table.central);
    let tombs = db.meta("es_tombstones");
    let tbl = db.tbl_id(&table.central);
    let keys: Vec<String> = table
        .key_columns()
        .map(|c| ident(&c.central))
        .collect::<Vec<_>>();
    let mut stamped = 0;
    loop {
        // Cheap, unlocked look first: most pulls find nothing pending and
        // never touch the es_ctl lock.
        let pending: Option<(i64, i64)> = conn
            .exec_first(
                format!(
                    "SELECT EXISTS (SELECT 1 FROM {t} WHERE es_ver IS NULL),
                            EXISTS (SELECT 1 FROM {tombs} WHERE tbl = ? AND es_ver IS NULL)"
                ),
                (&tbl,),
            )
            .await
            .map_err(ctx("looking for changed rows"))?;
        let (rows_pending, tombs_pending) = pending.unwrap_or((0, 0));
        if rows_pending == 0 && tombs_pending == 0 {
            return Ok(false);
        }
        if stamped >= budget {
            return Ok(true);
        }
        let mut opts = TxOpts::default();
        opts.with_isolation_level(IsolationLevel::ReadCommitted);
        let mut tx = conn
            .start_transaction(opts)
            .await
            .map_err(ctx("starting the stamping transaction"))?;
        let result = async {
            let n = stamp_chunk(
                &mut tx,
                db,
                table,
                natives,
                &t,
                &tombs,
                &tbl,
                &keys,
                (rows_pending != 0, tombs_pending != 0),
            )
            .await?;
            tx.query_drop("SET @es_applying = NULL")
                .await
                .map_err(ctx("ending the stamping step"))?;
            Ok::<_, edgesync_core::Error>(n)
        }
        .await;
        let n = match result {
            Ok(n) => {
                tx.commit()
                    .await
                    .map_err(ctx("committing the stamping step"))?;
                n
            }
            Err(e) => {
                // Explicitly: a transaction left for the pool to roll back
                // would keep es_ctl locked until then.
                tx.rollback().await.ok();
                conn.query_drop("SET @es_applying = NULL").await.ok();
                return Err(e.context(format!("stamping changed rows of {}", table.central)));
            }
        };
        stamped += n.0 + n.1;
        tracing::debug!(table = %table.central, rows = n.0, tombstones = n.1, "stamped");
        if n.0 < CHUNK && n.1 < CHUNK {
            return Ok(false);
        }
    }
}

/// One stamping transaction; `(rows, tombstones)` stamped.
#[allow(clippy::too_many_arguments)]
async fn stamp_chunk(
    tx: &mut Transaction<'_>,
    db: &Db,
    table: &TableMapping,
    natives: &[Native],
    t: &str,
    tombs: &str,
    tbl: &str,
    keys: &[String],
    (rows_pending, tombs_pending): (bool, bool),
) -> Result<(usize, usize)> {
    tx.query_drop("SET @es_applying = 1")
        .await
        .map_err(ctx("marking the stamping step"))?;
    let seq = lock_counter(tx, db).await?;
    let rows: Vec<Row> = if rows_pending {
        tx.exec(
            format!(
                "SELECT {} FROM {t} WHERE es_ver IS NULL LIMIT {CHUNK} FOR UPDATE SKIP LOCKED",
                keys.join(", ")
            ),
            (),
        )
        .await
        .map_err(ctx("locking changed rows"))?
    } else {
        Vec::new()
    };
    let tomb_keys: Vec<String> = if tombs_pending {
        tx.exec(
            format!(
                "SELECT k FROM {tombs} WHERE tbl = ? AND es_ver IS NULL LIMIT {CHUNK} FOR UPDATE SKIP LOCKED"
            ),
            (tbl,),
        )
        .await
        .map_err(ctx("locking changed tombstones"))?
    } else {
        Vec::new()
    };
    if rows.is_empty() && tomb_keys.is_empty() {
        return Ok((0, 0));
    }
    let mut next = seq;
    let mut version = || {
        next += 1;
        next
    };
    let row_entries: Vec<(Vec<My>, i64)> =
        rows.into_iter().map(|r| (values(r), version())).collect();
    let tomb_entries: Vec<(Vec<My>, i64)> = tomb_keys
        .into_iter()
        .map(|k| (vec![My::Bytes(k.into_bytes())], version()))
        .collect();
    if !row_entries.is_empty() {
        set_versions(
            tx,
            &format!("{t} AS t"),
            "t",
            &sql::key_match(table, "t"),
            &key_binds(table, natives),
            &row_entries,
        )
        .await?;
    }
    if !tomb_entries.is_empty() {
        set_versions(
            tx,
            &format!("{tombs} AS ts"),
            "ts",
            &format!("ts.tbl = {} AND ts.k = u.k0", literal(tbl)),
            &[RAW_TOMB_KEY.to_string()],
            &tomb_entries,
        )
        .await?;
    }
    store_counter(tx, db, next).await?;
    Ok((row_entries.len(), tomb_entries.len()))
}
