//! The shared bookkeeping tables: writing the conflict log inside a push, and
//! reading it and `es_nodes` back for `conflicts list` and `status`.
//!
//! Metadata lives in the schema that owns the tables it serves, so the
//! readers look in every schema that has the table (found in the catalog).

use chrono::{DateTime, FixedOffset, Utc};
use edgesync_core::central::NodeProgress;
use edgesync_core::{ConflictPolicy, ConflictRecord, Error, Keep, Result, TableMapping, Value};
use oracle::sql_type::{OracleType, ToSql};
use oracle::{Connection, Row};

use crate::error::ctx;
use crate::sql::{self, ident};
use crate::types::Bind;

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

fn json(row: &Option<NamedRow>) -> Result<Option<String>> {
    row.as_ref()
        .map(|r| {
            serde_json::to_string(r)
                .map_err(|e| Error::internal(format!("cannot serialize a conflict row: {e}")))
        })
        .transpose()
}

/// The array-bound insert into a conflict log.
pub(crate) fn log_sql(log: &str) -> String {
    format!(
        "INSERT INTO {log} (tbl, key_json, node, strategy, base_ver, base_json, local_json,
                            central_json, result_json, local_hlc, central_hlc, is_open, resolved_at)
         VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9, :10, :11, :12,
                 CASE WHEN :13 = 1 THEN NULL ELSE SYSTIMESTAMP END)"
    )
}

/// Insert `entries` into the table's conflict log, with one array-bound
/// execution.
pub(crate) fn log_conflicts(
    conn: &Connection,
    table: &TableMapping,
    default_owner: &str,
    node: &str,
    entries: &[ConflictEntry],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let log = sql::meta(&table.central, default_owner, "es_conflicts");
    let sql = log_sql(&log);
    let mut batch = conn
        .batch(&sql, entries.len().min(500))
        .build()
        .map_err(ctx("preparing the conflict log insert"))?;
    let types = [
        OracleType::NVarchar2(300),
        OracleType::NCLOB,
        OracleType::NVarchar2(256),
        OracleType::Varchar2(32),
        OracleType::Int64,
        OracleType::NCLOB,
        OracleType::NCLOB,
        OracleType::NCLOB,
        OracleType::NCLOB,
        OracleType::Int64,
        OracleType::Int64,
        OracleType::Int64,
        OracleType::Int64,
    ];
    for (i, t) in types.iter().enumerate() {
        batch
            .set_type(i + 1, t)
            .map_err(ctx("preparing the conflict log insert"))?;
    }
    let tbl = sql::tbl_id(&table.central, default_owner);
    for e in entries {
        let open = i64::from(e.open);
        let row: Vec<Bind> = vec![
            Bind::Text(Some(tbl.clone())),
            Bind::Lob(json(&Some(e.key.clone()))?),
            Bind::Text(Some(node.to_string())),
            Bind::Text(Some(table.conflict.as_str().to_string())),
            Bind::Int(e.base_version),
            Bind::Lob(json(&e.base)?),
            Bind::Lob(json(&e.local)?),
            Bind::Lob(json(&e.central)?),
            Bind::Lob(json(&e.result)?),
            Bind::Int(Some(e.local_hlc)),
            Bind::Int(Some(e.central_hlc)),
            Bind::Int(Some(open)),
            Bind::Int(Some(open)),
        ];
        let refs: Vec<&dyn ToSql> = row.iter().map(|b| b as &dyn ToSql).collect();
        batch.append_row(&refs).map_err(ctx("logging conflicts"))?;
    }
    batch.execute().map_err(ctx("logging conflicts"))
}

/// Owners (schemas) holding an edgesync metadata table `name` (upper case).
pub(crate) fn owners_with(conn: &Connection, name: &str) -> Result<Vec<String>> {
    conn.query_as::<String>(
        "SELECT owner FROM all_tables WHERE table_name = :1 ORDER BY 1",
        &[&name],
    )
    .map_err(ctx(format!("looking for {name}")))?
    .collect::<oracle::Result<Vec<String>>>()
    .map_err(ctx(format!("looking for {name}")))
}

pub(crate) fn parse_row(text: Option<String>, what: &str) -> Result<Option<NamedRow>> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| Error::value(format!("conflict log {what} is not readable: {e}")))
    })
    .transpose()
}

/// The columns [`record`] reads, in its order.
pub(crate) const RECORD_COLUMNS: &str = "id, tbl, key_json, node, strategy, base_ver, \
     local_json, central_json, result_json, local_hlc, central_hlc, detected_at, is_open, \
     base_json, resolved_at, kept";

/// One conflict log row, selected as [`RECORD_COLUMNS`].
pub(crate) fn record(r: &Row) -> Result<ConflictRecord> {
    let get = || ctx("reading the conflict log");
    let text = |i: usize| -> Result<Option<String>> { r.get(i).map_err(get()) };
    let strategy = text(4)?.unwrap_or_default();
    let strategy: ConflictPolicy =
        serde_json::from_value(serde_json::Value::String(strategy.clone()))
            .map_err(|_| Error::value(format!("conflict log has unknown strategy '{strategy}'")))?;
    let kept = text(15)?
        .map(|k| {
            Keep::parse(&k)
                .ok_or_else(|| Error::value(format!("conflict log has unknown kept side '{k}'")))
        })
        .transpose()?;
    let time = |i: usize| -> Result<Option<DateTime<Utc>>> {
        Ok(r.get::<usize, Option<DateTime<FixedOffset>>>(i)
            .map_err(get())?
            .map(|t| t.with_timezone(&Utc)))
    };
    Ok(ConflictRecord {
        id: r.get(0).map_err(get())?,
        table: text(1)?.unwrap_or_default(),
        key: parse_row(text(2)?, "key")?.unwrap_or_default(),
        node: text(3)?.unwrap_or_default(),
        strategy,
        base_version: r.get(5).map_err(get())?,
        base: parse_row(text(13)?, "base row")?,
        local: parse_row(text(6)?, "local row")?,
        central: parse_row(text(7)?, "central row")?,
        result: parse_row(text(8)?, "result row")?,
        local_hlc: r.get(9).map_err(get())?,
        central_hlc: r.get(10).map_err(get())?,
        at: time(11)?.unwrap_or_default(),
        open: r.get::<usize, i64>(12).map_err(get())? != 0,
        resolved_at: time(14)?,
        kept,
    })
}

/// `conflicts` for the trait.
pub fn conflicts(conn: &Connection, all: bool, limit: usize) -> Result<Vec<ConflictRecord>> {
    let owners = owners_with(conn, "ES_CONFLICTS")?;
    if owners.is_empty() {
        return Ok(Vec::new());
    }
    let filter = if all { "" } else { "WHERE is_open = 1" };
    let parts: Vec<String> = owners
        .iter()
        .map(|o| {
            format!(
                "SELECT {RECORD_COLUMNS} FROM {}.es_conflicts {filter}",
                ident(o)
            )
        })
        .collect();
    let query = format!(
        "SELECT * FROM ({}) ORDER BY detected_at DESC, id DESC FETCH FIRST :1 ROWS ONLY",
        parts.join(" UNION ALL ")
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = conn
        .query(&query, &[&limit])
        .map_err(ctx("reading the conflict log (run init-sync?)"))?;
    rows.map(|r| record(&r.map_err(ctx("reading the conflict log"))?))
        .collect()
}

/// `purge_conflicts` for the trait: every schema's log.
pub fn purge_conflicts(conn: &Connection, older_than: std::time::Duration) -> Result<u64> {
    let secs = i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX);
    let mut n = 0;
    for o in owners_with(conn, "ES_CONFLICTS")? {
        let stmt = conn
            .execute(
                &format!(
                    "DELETE FROM {}.es_conflicts
                      WHERE is_open = 0
                        AND COALESCE(resolved_at, detected_at) < SYSTIMESTAMP - NUMTODSINTERVAL(:1, 'SECOND')",
                    ident(&o)
                ),
                &[&secs],
            )
            .map_err(ctx(format!("purging the conflict log of schema {o}")))?;
        n += stmt.row_count().map_err(ctx("counting purged conflicts"))?;
    }
    conn.commit().map_err(ctx("committing the purge"))?;
    Ok(n)
}

/// `progress` for the trait.
pub fn progress(conn: &Connection) -> Result<Vec<NodeProgress>> {
    let owners = owners_with(conn, "ES_NODES")?;
    if owners.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<String> = owners
        .iter()
        .map(|o| {
            format!(
                "SELECT node, tbl, hi, last_push_at FROM {}.es_nodes",
                ident(o)
            )
        })
        .collect();
    let rows = conn
        .query(&format!("{} ORDER BY 1, 2", parts.join(" UNION ALL ")), &[])
        .map_err(ctx("reading es_nodes"))?;
    rows.map(|r| {
        let r = r.map_err(ctx("reading es_nodes"))?;
        let get = || ctx("reading es_nodes");
        Ok(NodeProgress {
            node: r.get(0).map_err(get())?,
            table: r.get(1).map_err(get())?,
            hi: r.get(2).map_err(get())?,
            last_push: r
                .get::<usize, Option<DateTime<FixedOffset>>>(3)
                .map_err(get())?
                .map(|t| t.with_timezone(&Utc)),
        })
    })
    .collect()
}
