//! The shared bookkeeping tables: writing the conflict log inside a push, and
//! reading it and `es_nodes` back for `conflicts list` and `status`.
//!
//! Metadata lives in the schema of the tables it serves, so the readers look
//! in every schema that has the table (found in the catalog).

use chrono::{DateTime, Utc};
use edgesync_core::central::NodeProgress;
use edgesync_core::{ConflictPolicy, ConflictRecord, Error, Keep, Result, TableMapping, Value};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};

use crate::error::ctx;
use crate::sql::{self, ident};
use crate::types::{ColumnArray, Params};

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

/// Insert `entries` into the table's conflict log, in one statement.
pub async fn log_conflicts(
    conn: &mut PgConnection,
    table: &TableMapping,
    node: &str,
    entries: &[ConflictEntry],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::new();
    let (mut bases, mut locals, mut centrals, mut results) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in entries {
        keys.push(json(&Some(e.key.clone()))?);
        bases.push(json(&e.base)?);
        locals.push(json(&e.local)?);
        centrals.push(json(&e.central)?);
        results.push(json(&e.result)?);
    }
    let ints = |f: &dyn Fn(&ConflictEntry) -> Option<i64>| {
        ColumnArray::Int(entries.iter().map(f).collect())
    };
    let mut p = Params::default();
    let tbl = p.text(sql::tbl_id(&table.central));
    let node = p.text(node);
    let strategy = p.text(table.conflict.as_str());
    let arrays = [
        p.array(ColumnArray::Text(keys), "text"),
        p.array(ints(&|e| e.base_version), "bigint"),
        p.array(ColumnArray::Text(bases), "text"),
        p.array(ColumnArray::Text(locals), "text"),
        p.array(ColumnArray::Text(centrals), "text"),
        p.array(ColumnArray::Text(results), "text"),
        p.array(ints(&|e| Some(e.local_hlc)), "bigint"),
        p.array(ints(&|e| Some(e.central_hlc)), "bigint"),
        p.array(
            ColumnArray::Bool(entries.iter().map(|e| Some(e.open)).collect()),
            "boolean",
        ),
    ];
    let query = format!(
        "INSERT INTO {log} (tbl, key_json, node, strategy, base_ver, base_json, local_json,
                            central_json, result_json, local_hlc, central_hlc, open, resolved_at)
         SELECT {tbl}, u.k::jsonb, {node}, {strategy}, u.b, u.bj::jsonb, u.l::jsonb, u.c::jsonb,
                u.r::jsonb, u.lh, u.ch, u.o, CASE WHEN u.o THEN NULL ELSE now() END
           FROM unnest({arrays}) AS u(k, b, bj, l, c, r, lh, ch, o)",
        log = sql::meta(&table.central, "es_conflicts"),
        arrays = arrays.join(", "),
    );
    p.query(query)
        .execute(&mut *conn)
        .await
        .map_err(ctx("logging conflicts"))?;
    Ok(())
}

/// Schemas holding an edgesync metadata table `name`.
pub(crate) async fn schemas_with(pool: &PgPool, name: &str) -> Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relname = $1 AND c.relkind = 'r' ORDER BY 1",
    )
    .bind(name)
    .fetch_all(pool)
    .await
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
pub(crate) const RECORD_COLUMNS: &str = "id, tbl, key_json::text, node, strategy, base_ver, \
     local_json::text, central_json::text, result_json::text, local_hlc, central_hlc, at, open, \
     base_json::text, resolved_at, kept";

/// One conflict log row, selected as [`RECORD_COLUMNS`].
pub(crate) fn record(r: &sqlx::postgres::PgRow) -> Result<ConflictRecord> {
    let get = || ctx("reading the conflict log");
    let strategy: String = r.try_get(4).map_err(get())?;
    let strategy: ConflictPolicy =
        serde_json::from_value(serde_json::Value::String(strategy.clone()))
            .map_err(|_| Error::value(format!("conflict log has unknown strategy '{strategy}'")))?;
    let text = |i: usize| -> Result<Option<String>> { r.try_get(i).map_err(get()) };
    let int = |i: usize| -> Result<i64> { r.try_get(i).map_err(get()) };
    let kept = text(15)?
        .map(|k| {
            Keep::parse(&k)
                .ok_or_else(|| Error::value(format!("conflict log has unknown kept side '{k}'")))
        })
        .transpose()?;
    Ok(ConflictRecord {
        id: int(0)?,
        table: text(1)?.unwrap_or_default(),
        key: parse_row(text(2)?, "key")?.unwrap_or_default(),
        node: text(3)?.unwrap_or_default(),
        strategy,
        base_version: r.try_get(5).map_err(get())?,
        base: parse_row(text(13)?, "base row")?,
        local: parse_row(text(6)?, "local row")?,
        central: parse_row(text(7)?, "central row")?,
        result: parse_row(text(8)?, "result row")?,
        local_hlc: int(9)?,
        central_hlc: int(10)?,
        at: r.try_get::<DateTime<Utc>, _>(11).map_err(get())?,
        open: r.try_get(12).map_err(get())?,
        resolved_at: r.try_get::<Option<DateTime<Utc>>, _>(14).map_err(get())?,
        kept,
    })
}

/// `conflicts` for the trait.
pub async fn conflicts(pool: &PgPool, all: bool, limit: usize) -> Result<Vec<ConflictRecord>> {
    let schemas = schemas_with(pool, "es_conflicts").await?;
    if schemas.is_empty() {
        return Ok(Vec::new());
    }
    let filter = if all { "" } else { "WHERE open" };
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
        "{} ORDER BY at DESC, id DESC LIMIT $1",
        parts.join(" UNION ALL ")
    );
    let rows = sqlx::query(AssertSqlSafe(query))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await
        .map_err(ctx("reading the conflict log (run init-sync?)"))?;
    rows.iter().map(record).collect()
}

/// `purge_conflicts` for the trait: every schema's log.
pub async fn purge_conflicts(pool: &PgPool, older_than: std::time::Duration) -> Result<u64> {
    let secs = i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX);
    let mut n = 0;
    for s in schemas_with(pool, "es_conflicts").await? {
        let done = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {}.es_conflicts
              WHERE NOT open AND coalesce(resolved_at, at) < now() - $1::bigint * interval '1 second'",
            ident(&s)
        )))
        .bind(secs)
        .execute(pool)
        .await
        .map_err(ctx(format!("purging the conflict log of schema {s}")))?;
        n += done.rows_affected();
    }
    Ok(n)
}

/// `progress` for the trait.
pub async fn progress(pool: &PgPool) -> Result<Vec<NodeProgress>> {
    let schemas = schemas_with(pool, "es_nodes").await?;
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
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{} ORDER BY 1, 2",
        parts.join(" UNION ALL ")
    )))
    .fetch_all(pool)
    .await
    .map_err(ctx("reading es_nodes"))?;
    rows.into_iter()
        .map(|r| {
            Ok(NodeProgress {
                node: r.try_get(0).map_err(ctx("reading es_nodes"))?,
                table: r.try_get(1).map_err(ctx("reading es_nodes"))?,
                hi: r.try_get(2).map_err(ctx("reading es_nodes"))?,
                last_push: r.try_get(3).map_err(ctx("reading es_nodes"))?,
            })
        })
        .collect()
}
