//! Retention on a MySQL/MariaDB central (`sync.retention`): what a pull
//! records about the node, and the purge that relies on it — the same rules
//! as every central (see `Central::purge`).
//!
//! Every pull notes, in `es_pulls`, the version the node has everything up
//! to (the token's `after`; 0 during a full pass) and when. The purge removes
//! stamped tombstones older than the retention (by their HLC stamp), but
//! never one above the lowest position of the nodes still active (pulled or
//! pushed within the retention). The highest version purged is kept per
//! table in `es_purged`; a pull continuing from below it, outside a full
//! pass, is refused with `ErrorKind::Resnapshot`.

use std::time::Duration;

use edgesync_core::central::Purged;
use edgesync_core::{hlc, Error, ErrorKind, Result, TableMapping};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, TxOpts};

use crate::error::ctx;
use crate::sql::Db;

/// MySQL's "table doesn't exist": a central provisioned before retention.
const NO_SUCH_TABLE: u16 = 1146;

/// Before a pull of `tbl` by `node` continuing after version `after`
/// (`full`: part of a full pass): refuse a position the purge has passed,
/// and, when `record`, record where the node stands. Without `es_pulls`
/// (provisioned by an older edgesync; re-run init-sync) there is nothing to
/// check or record.
pub(crate) async fn admit(
    conn: &mut Conn,
    db: &Db,
    node: &str,
    tbl: &str,
    after: i64,
    full: bool,
    record: bool,
) -> Result<()> {
    let purged: std::result::Result<Option<i64>, mysql_async::Error> = conn
        .exec_first(
            format!("SELECT ver FROM {} WHERE tbl = ?", db.meta("es_purged")),
            (tbl,),
        )
        .await;
    let purged = match purged {
        Ok(p) => p,
        Err(mysql_async::Error::Server(e)) if e.code == NO_SUCH_TABLE => return Ok(()),
        Err(e) => return Err(ctx("reading the retention purge mark")(e)),
    };
    if let Some(purged) = purged.filter(|&p| !full && after < p) {
        return Err(Error::new(
            ErrorKind::Resnapshot,
            format!(
                "node {node}, table {tbl}: the pull position (version {after}) is older than \
                 the central's retention (tombstones up to version {purged} were purged); \
                 the table must be loaded afresh"
            ),
        ));
    }
    if !record {
        return Ok(());
    }
    conn.exec_drop(
        format!(
            "INSERT INTO {} (node, tbl, ver, at) VALUES (?, ?, ?, UTC_TIMESTAMP(6)) \
             ON DUPLICATE KEY UPDATE ver = VALUES(ver), at = VALUES(at)",
            db.meta("es_pulls")
        ),
        (node, tbl, if full { 0 } else { after }),
    )
    .await
    .map_err(ctx(format!(
        "recording the pull position of node {node}, table {tbl}"
    )))
}

/// The purge, in one transaction (see the module doc).
pub(crate) async fn purge(
    pool: &Pool,
    db: &Db,
    tables: &[TableMapping],
    older_than: Duration,
) -> Result<Purged> {
    let mut conn = pool.get_conn().await.map_err(ctx("connecting to MySQL"))?;
    if !crate::schema::table_exists(&mut conn, &db.default, "es_pulls").await? {
        return Err(Error::schema(
            "sync.retention: the central has no es_pulls table yet (run `edgesync init-sync`)",
        ));
    }
    let secs = older_than.as_secs().min(i64::MAX as u64 / 1000) as i64;
    let cutoff_ms = chrono::Utc::now()
        .timestamp_millis()
        .saturating_sub(secs * 1000);
    let cutoff_hlc = hlc::pack(cutoff_ms.max(0), 0);
    let (pulls, nodes, tombs, purged_t) = (
        db.meta("es_pulls"),
        db.meta("es_nodes"),
        db.meta("es_tombstones"),
        db.meta("es_purged"),
    );
    let active = format!(
        "SELECT node FROM {pulls} WHERE at >= UTC_TIMESTAMP(6) - INTERVAL {secs} SECOND \
         UNION SELECT node FROM {nodes} WHERE last_push_at >= UTC_TIMESTAMP(6) - INTERVAL {secs} SECOND"
    );
    let mut tx = conn
        .start_transaction(TxOpts::default())
        .await
        .map_err(ctx("starting the retention purge"))?;
    let mut out = Purged::default();
    let work = async {
        let active_nodes: Vec<String> = tx
            .query(active.as_str())
            .await
            .map_err(ctx("finding the active nodes"))?;
        for m in tables {
            let tbl = db.tbl_id(&m.central);
            let mut low = i64::MAX;
            let positions: Vec<(String, i64)> = tx
                .exec(
                    format!("SELECT node, ver FROM {pulls} WHERE tbl = ?"),
                    (&tbl,),
                )
                .await
                .map_err(ctx("reading the pull positions"))?;
            for (node, ver) in positions {
                if active_nodes.contains(&node) {
                    low = low.min(ver);
                }
            }
            let top: Option<Option<i64>> = tx
                .exec_first(
                    format!(
                        "SELECT MAX(es_ver) FROM {tombs} WHERE tbl = ? AND es_ver <= ? AND es_hlc < ?"
                    ),
                    (&tbl, low, cutoff_hlc),
                )
                .await
                .map_err(ctx(format!("reading the tombstones of {tbl}")))?;
            let Some(top) = top.flatten() else { continue };
            tx.exec_drop(
                format!("DELETE FROM {tombs} WHERE tbl = ? AND es_ver <= ? AND es_hlc < ?"),
                (&tbl, low, cutoff_hlc),
            )
            .await
            .map_err(ctx(format!("purging the tombstones of {tbl}")))?;
            out.tombstones += tx.affected_rows();
            tx.exec_drop(
                format!(
                    "INSERT INTO {purged_t} (tbl, ver, at) VALUES (?, ?, UTC_TIMESTAMP(6)) \
                     ON DUPLICATE KEY UPDATE ver = GREATEST(ver, VALUES(ver)), at = VALUES(at)"
                ),
                (&tbl, top),
            )
            .await
            .map_err(ctx("recording the purge mark"))?;
        }
        for meta in [&pulls, &nodes] {
            let all: Vec<String> = tx
                .query(format!("SELECT DISTINCT node FROM {meta}"))
                .await
                .map_err(ctx("reading node states"))?;
            for node in all.iter().filter(|n| !active_nodes.contains(n)) {
                tx.exec_drop(format!("DELETE FROM {meta} WHERE node = ?"), (node,))
                    .await
                    .map_err(ctx("purging a departed node's state"))?;
                out.node_states += tx.affected_rows();
            }
        }
        Ok::<_, Error>(())
    }
    .await;
    match work {
        Ok(()) => {
            tx.commit()
                .await
                .map_err(ctx("committing the retention purge"))?;
            Ok(out)
        }
        Err(e) => {
            tx.rollback().await.ok();
            Err(e)
        }
    }
}
