//! How many rows a table holds, roughly: the planner's own estimate
//! (`pg_class.reltuples`, kept by `ANALYZE` and autovacuum), read in
//! microseconds where `count(*)` would scan the table. Used only for the
//! progress and ETA of an initial load.

use edgesync_core::{Result, TableMapping};
use sqlx::PgPool;

use crate::error::ctx;
use crate::sql;

/// `estimate_rows` for the trait: `None` when the table was never analyzed
/// (PostgreSQL 14+ says -1; older servers say 0 with no pages) or is gone.
pub(crate) async fn estimate_rows(pool: &PgPool, table: &TableMapping) -> Result<Option<u64>> {
    let name = sql::table_ref(&table.central);
    let estimate: Option<f64> =
        sqlx::query_scalar("SELECT reltuples::float8 FROM pg_class WHERE oid = to_regclass($1)")
            .bind(&name)
            .fetch_optional(pool)
            .await
            .map_err(ctx(format!("reading the planner's row estimate of {name}")))?;
    Ok(estimate
        .filter(|n| n.is_finite() && *n > 0.0)
        .map(|n| n.round() as u64))
}
