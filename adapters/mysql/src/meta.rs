//! The shared bookkeeping tables: writing the conflict log inside a push, and
//! reading it and `es_nodes` back for `conflicts list` and `status`.
//!
//! All of edgesync's shared metadata lives in the database named in
//! `central.url`, whatever database the synced tables are in, so the readers
//! look in one place (and a server shared with other applications' databases
//! never mixes their logs in).

use chrono::{DateTime, NaiveDateTime, Utc};
use edgesync_core::central::NodeProgress;
use edgesync_core::{ConflictPolicy, ConflictRecord, Error, Keep, Result, TableMapping, Value};
use mysql_async::prelude::Queryable;
use mysql_async::{Pool, Row, Transaction, Value as My};

use crate::error::ctx;
use crate::schema::{number, table_exists, text, values};
use crate::sql::{self, Db};

/// Column names with values, as the conflict log stores rows.
pub type NamedRow = Vec<(String, Value)>;

/// One conflict met by a push, to be logged.
#[derive(Debug, Clone)]
pub struct ConflictEntry {
    /// Key columns and values.
    pub key: NamedRow,
    /// The edge's base version.
    pub base_version: Option<i64>,
    /// The edge's base row (`None` = unknown, e.g. insert/insert).
    pub base: Option<NamedRow>,
    /// The edge's row (`None` = deleted).
    pub local: Option<NamedRow>,
    /// The central row before resolution (`None` = deleted or absent).
    pub central: Option<NamedRow>,
    /// The row after resolution.
    pub result: Option<NamedRow>,
    /// HLC stamp of the edge's write.
    pub local_hlc: i64,
    /// HLC stamp of the central's write (0 if none).
    pub central_hlc: i64,
    /// Waiting for a person (manual policy).
    pub open: bool,
}

fn json(row: &Option<NamedRow>) -> Result<My> {
    Ok(match row {
        None => My::NULL,
        Some(r) => My::Bytes(
            serde_json::to_string(r)
                .map_err(|e| Error::internal(format!("cannot serialize a conflict row: {e}")))?
                .into_bytes(),
        ),
    })
}

/// Insert `entries` into the conflict log, with multi-row inserts.
pub async fn log_conflicts(
    tx: &mut Transaction<'_>,
    db: &Db,
    table: &TableMapping,
    node: &str,
    entries: &[ConflictEntry],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let tbl = db.tbl_id(&table.central);
    let mut rows = Vec::with_capacity(entries.len());
    for e in entries {
        rows.push(vec![
            My::Bytes(tbl.clone().into_bytes()),
            json(&Some(e.key.clone()))?,
            My::Bytes(node.as_bytes().to_vec()),
            My::Bytes(table.conflict.as_str().as_bytes().to_vec()),
            e.base_version.map_or(My::NULL, My::Int),
            json(&e.base)?,
            json(&e.local)?,
            json(&e.central)?,
            json(&e.result)?,
            My::Int(e.local_hlc),
            My::Int(e.central_hlc),
            My::Int(i64::from(e.open)),
            My::Int(i64::from(e.open)),
        ]);
    }
    let row: Vec<String> = std::iter::repeat_n("?".to_string(), 11)
        .chain([
            "UTC_TIMESTAMP(6)".to_string(),
            "?".to_string(),
            "IF(?, NULL, UTC_TIMESTAMP(6))".to_string(),
        ])
        .collect();
    let size = |k: usize| -> usize {
        rows[k]
            .iter()
            .map(|v| match v {
                My::Bytes(b) => b.len(),
                _ => 8,
            })
            .sum()
    };
    for r in sql::chunks(rows.len(), 13, size) {
        let query = format!(
            "INSERT INTO {log} (tbl, key_json, node, strategy, base_ver, base_json, local_json,
                                central_json, result_json, local_hlc, central_hlc, at, is_open,
                                resolved_at) VALUES {values}",
            log = db.meta("es_conflicts"),
            values = sql::values_rows(&row, r.len()),
        );
        let params: Vec<My> = rows[r].iter().flatten().cloned().collect();
        tx.exec_drop(query, params)
            .await
            .map_err(ctx("logging conflicts"))?;
    }
    Ok(())
}

pub(crate) fn parse_row(text: Option<String>, what: &str) -> Result<Option<NamedRow>> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| Error::value(format!("conflict log {what} is not readable: {e}")))
    })
    .transpose()
}

fn utc(v: My) -> Option<DateTime<Utc>> {
    match v {
        My::Date(y, m, d, h, mi, s, us) => {
            chrono::NaiveDate::from_ymd_opt(y.into(), m.into(), d.into())
                .and_then(|date| date.and_hms_micro_opt(h.into(), mi.into(), s.into(), us))
                .map(|t: NaiveDateTime| t.and_utc())
        }
        _ => None,
    }
}

fn int(v: My, what: &str) -> Result<i64> {
    match v {
        My::Int(i) => Ok(i),
        My::UInt(u) => i64::try_from(u).map_err(|_| Error::value(format!("{what} exceeds i64"))),
        other => Err(Error::value(format!(
            "{what}: expected an integer, got {other:?}"
        ))),
    }
}

/// The columns [`record`] reads, in its order.
pub(crate) const RECORD_COLUMNS: &str = "id, tbl, key_json, node, strategy, base_ver, local_json, \
     central_json, result_json, local_hlc, central_hlc, at, is_open, base_json, resolved_at, kept";

/// One conflict-log row, selected as [`RECORD_COLUMNS`].
pub(crate) fn record(r: Row) -> Result<ConflictRecord> {
    let mut v = values(r).into_iter();
    let mut next = || v.next().unwrap_or(My::NULL);
    let id = int(next(), "conflict id")?;
    let table = text(next()).unwrap_or_default();
    let key = parse_row(text(next()), "key")?.unwrap_or_default();
    let node = text(next()).unwrap_or_default();
    let strategy_text = text(next()).unwrap_or_default();
    let strategy: ConflictPolicy =
        serde_json::from_value(serde_json::Value::String(strategy_text.clone())).map_err(|_| {
            Error::value(format!(
                "conflict log has unknown strategy '{strategy_text}'"
            ))
        })?;
    let base_version = match next() {
        My::NULL => None,
        b => Some(int(b, "base version")?),
    };
    let local = parse_row(text(next()), "local row")?;
    let central = parse_row(text(next()), "central row")?;
    let result = parse_row(text(next()), "result row")?;
    let local_hlc = int(next(), "local hlc")?;
    let central_hlc = int(next(), "central hlc")?;
    let at = utc(next()).ok_or_else(|| Error::value("conflict log time is not readable"))?;
    let open = number(next()).unwrap_or(0) != 0;
    let base = parse_row(text(next()), "base row")?;
    let resolved_at = utc(next());
    let kept = match text(next()) {
        None => None,
        Some(k) => Some(
            Keep::parse(&k)
                .ok_or_else(|| Error::value(format!("conflict log has unknown kept side '{k}'")))?,
        ),
    };
    Ok(ConflictRecord {
        id,
        table,
        key,
        node,
        strategy,
        base_version,
        base,
        local,
        central,
        result,
        local_hlc,
        central_hlc,
        at,
        open,
        resolved_at,
        kept,
    })
}

/// `conflicts` for the trait.
pub async fn conflicts(
    pool: &Pool,
    db: &Db,
    all: bool,
    limit: usize,
) -> Result<Vec<ConflictRecord>> {
    let mut conn = pool.get_conn().await.map_err(ctx("connecting to MySQL"))?;
    if !table_exists(&mut conn, &db.default, "es_conflicts").await? {
        return Ok(Vec::new());
    }
    let filter = if all { "" } else { "WHERE is_open = 1" };
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT {RECORD_COLUMNS} FROM {} {filter} ORDER BY at DESC, id DESC LIMIT ?",
                db.meta("es_conflicts")
            ),
            (limit as u64,),
        )
        .await
        .map_err(ctx("reading the conflict log"))?;
    rows.into_iter().map(record).collect()
}

/// `purge_conflicts` for the trait: settled entries older than `older_than`.
pub async fn purge_conflicts(pool: &Pool, db: &Db, older_than: std::time::Duration) -> Result<u64> {
    let mut conn = pool.get_conn().await.map_err(ctx("connecting to MySQL"))?;
    if !table_exists(&mut conn, &db.default, "es_conflicts").await? {
        return Ok(0);
    }
    let secs = i64::try_from(older_than.as_secs())
        .unwrap_or(i64::MAX)
        .min(1_000_000_000_000);
    conn.exec_drop(
        format!(
            "DELETE FROM {} WHERE is_open = 0
               AND COALESCE(resolved_at, at) < UTC_TIMESTAMP(6) - INTERVAL ? SECOND",
            db.meta("es_conflicts")
        ),
        (secs,),
    )
    .await
    .map_err(ctx("purging the conflict log"))?;
    Ok(conn.affected_rows())
}

/// `progress` for the trait.
pub async fn progress(pool: &Pool, db: &Db) -> Result<Vec<NodeProgress>> {
    let mut conn = pool.get_conn().await.map_err(ctx("connecting to MySQL"))?;
    if !table_exists(&mut conn, &db.default, "es_nodes").await? {
        return Ok(Vec::new());
    }
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT node, tbl, hi, last_push_at FROM {} ORDER BY node, tbl",
                db.meta("es_nodes")
            ),
            (),
        )
        .await
        .map_err(ctx("reading es_nodes"))?;
    rows.into_iter()
        .map(|r| {
            let mut v = values(r).into_iter();
            let mut next = || v.next().unwrap_or(My::NULL);
            Ok(NodeProgress {
                node: text(next()).unwrap_or_default(),
                table: text(next()).unwrap_or_default(),
                hi: int(next(), "es_nodes.hi")?,
                last_push: utc(next()),
            })
        })
        .collect()
}
