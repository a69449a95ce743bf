//! The shared bookkeeping tables: writing the conflict log inside a push, and
//! reading it and `es_nodes` back for `conflicts list` and `status`.
//!
//! Metadata lives in the schema of the tables it serves, so the readers look
//! in every schema that has the table (found in the catalog).

use edgesync_core::central::NodeProgress;
use edgesync_core::{ConflictPolicy, ConflictRecord, Error, Keep, Result, TableMapping, Value};
use tiberius::Row;

use crate::connection::{Conn, Pool};
use crate::sql::{self, ident};
use crate::types::{get_bool, get_int, get_text, get_utc, need_int, Param};

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

/// Parameters per logged conflict.
const PARAMS_PER_CONFLICT: usize = 10;

/// `INSERT INTO <log> (...) VALUES (...), ...` for `rows` conflicts, the
/// first parameter being `@P1` = table id and `@P2` = node.
pub(crate) fn log_sql(log: &str, rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p = |k: usize| format!("@P{}", 3 + r * PARAMS_PER_CONFLICT + k);
            format!(
                "(@P1, {}, @P2, {}, {}, {}, {}, {}, {}, {}, {}, {}, CASE WHEN {} = 1 THEN NULL ELSE SYSUTCDATETIME() END)",
                p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8), p(9), p(9)
            )
        })
        .collect();
    format!(
        "INSERT INTO {log} (tbl, key_json, node, strategy, base_ver, base_json, local_json, \
         central_json, result_json, local_hlc, central_hlc, [open], resolved_at) VALUES {}",
        values.join(", ")
    )
}

/// Insert `entries` into the table's conflict log, a few hundred per
/// statement.
pub async fn log_conflicts(
    conn: &mut Conn,
    table: &TableMapping,
    node: &str,
    entries: &[ConflictEntry],
) -> Result<()> {
    let log = sql::meta(&table.central, "es_conflicts");
    for chunk in entries.chunks(200) {
        let mut params = vec![
            Param::Text(Some(sql::tbl_id(&table.central))),
            Param::Text(Some(node.to_string())),
        ];
        for e in chunk {
            params.extend([
                Param::Text(json(&Some(e.key.clone()))?),
                Param::Text(Some(table.conflict.as_str().to_string())),
                Param::Int(e.base_version),
                Param::Text(json(&e.base)?),
                Param::Text(json(&e.local)?),
                Param::Text(json(&e.central)?),
                Param::Text(json(&e.result)?),
                Param::Int(Some(e.local_hlc)),
                Param::Int(Some(e.central_hlc)),
                Param::Bool(Some(e.open)),
            ]);
        }
        conn.exec(&log_sql(&log, chunk.len()), &params, "logging conflicts")
            .await?;
    }
    Ok(())
}

/// Schemas holding an edgesync metadata table `name`.
pub(crate) async fn schemas_with(conn: &mut Conn, name: &str) -> Result<Vec<String>> {
    let rows = conn
        .query(
            "SELECT s.name FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id
              WHERE t.name = @P1 ORDER BY 1",
            &[Param::Text(Some(name.to_string()))],
            &format!("looking for {name}"),
        )
        .await?;
    rows.iter()
        .map(|r| Ok(get_text(r, 0)?.unwrap_or_default()))
        .collect()
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
     local_json, central_json, result_json, local_hlc, central_hlc, [at], [open], base_json, \
     resolved_at, kept";

/// One conflict log row, selected as [`RECORD_COLUMNS`].
pub(crate) fn record(r: &Row) -> Result<ConflictRecord> {
    let strategy = get_text(r, 4)?.unwrap_or_default();
    let strategy: ConflictPolicy =
        serde_json::from_value(serde_json::Value::String(strategy.clone()))
            .map_err(|_| Error::value(format!("conflict log has unknown strategy '{strategy}'")))?;
    let kept = get_text(r, 15)?
        .map(|k| {
            Keep::parse(&k)
                .ok_or_else(|| Error::value(format!("conflict log has unknown kept side '{k}'")))
        })
        .transpose()?;
    Ok(ConflictRecord {
        id: need_int(r, 0)?,
        table: get_text(r, 1)?.unwrap_or_default(),
        key: parse_row(get_text(r, 2)?, "key")?.unwrap_or_default(),
        node: get_text(r, 3)?.unwrap_or_default(),
        strategy,
        base_version: get_int(r, 5)?,
        base: parse_row(get_text(r, 13)?, "base row")?,
        local: parse_row(get_text(r, 6)?, "local row")?,
        central: parse_row(get_text(r, 7)?, "central row")?,
        result: parse_row(get_text(r, 8)?, "result row")?,
        local_hlc: need_int(r, 9)?,
        central_hlc: need_int(r, 10)?,
        at: get_utc(r, 11)?.unwrap_or_default(),
        open: get_bool(r, 12)?.unwrap_or(false),
        resolved_at: get_utc(r, 14)?,
        kept,
    })
}

/// `conflicts` for the trait.
pub async fn conflicts(pool: &Pool, all: bool, limit: usize) -> Result<Vec<ConflictRecord>> {
    let mut conn = pool.get().await?;
    let schemas = schemas_with(&mut conn, "es_conflicts").await?;
    if schemas.is_empty() {
        return Ok(Vec::new());
    }
    let filter = if all { "" } else { "WHERE [open] = 1" };
    let parts: Vec<String> = schemas
        .iter()
        .map(|s| {
            format!(
                "SELECT {RECORD_COLUMNS} FROM {}.es_conflicts {filter}",
                ident(s)
            )
        })
        .collect();
    let query = format!(
        "SELECT TOP (@P1) * FROM ({}) AS c ORDER BY [at] DESC, id DESC",
        parts.join(" UNION ALL ")
    );
    let rows = conn
        .query(
            &query,
            &[Param::Int(Some(i64::try_from(limit).unwrap_or(i64::MAX)))],
            "reading the conflict log (run init-sync?)",
        )
        .await?;
    rows.iter().map(record).collect()
}

/// `purge_conflicts` for the trait: every schema's log.
pub async fn purge_conflicts(pool: &Pool, older_than: std::time::Duration) -> Result<u64> {
    let mut conn = pool.get().await?;
    // DATEADD takes an int: cap at about 68 years.
    let secs = i64::try_from(older_than.as_secs())
        .unwrap_or(i64::MAX)
        .min(i64::from(i32::MAX));
    let mut n = 0;
    for s in schemas_with(&mut conn, "es_conflicts").await? {
        n += conn
            .exec(
                &format!(
                    "DELETE FROM {}.es_conflicts
                      WHERE [open] = 0
                        AND COALESCE(resolved_at, [at]) < DATEADD(second, -CAST(@P1 AS int), SYSUTCDATETIME())",
                    ident(&s)
                ),
                &[Param::Int(Some(secs))],
                &format!("purging the conflict log of schema {s}"),
            )
            .await?;
    }
    Ok(n)
}

/// `progress` for the trait.
pub async fn progress(pool: &Pool) -> Result<Vec<NodeProgress>> {
    let mut conn = pool.get().await?;
    let schemas = schemas_with(&mut conn, "es_nodes").await?;
    if schemas.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<String> = schemas
        .iter()
        .map(|s| {
            format!(
                "SELECT node, tbl, hi, last_push_at FROM {}.es_nodes",
                ident(s)
            )
        })
        .collect();
    let rows = conn
        .query(
            &format!("{} ORDER BY 1, 2", parts.join(" UNION ALL ")),
            &[],
            "reading es_nodes",
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(NodeProgress {
                node: get_text(r, 0)?.unwrap_or_default(),
                table: get_text(r, 1)?.unwrap_or_default(),
                hi: need_int(r, 2)?,
                last_push: get_utc(r, 3)?,
            })
        })
        .collect()
}
