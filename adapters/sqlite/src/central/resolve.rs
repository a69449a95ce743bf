//! The manual conflict queue on the SQLite central: `conflicts resolve`
//! and the conflict log's retention.
//!
//! `--keep local` writes the parked row as a central *application* would:
//! with `es_ctl.applying = 0`, so the triggers of `central_triggers.sql`
//! stamp it (new version, HLC tick past the row's stamp, `es_origin` NULL)
//! and keep the tombstones. Every node, the one whose push was parked
//! included, pulls it like any central change.

use std::time::Duration;

use edgesync_core::conflict::{ConflictRecord, Keep};
use edgesync_core::{ColType, Error, ErrorKind, Result, Value};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::error::SqlResultExt;
use crate::sql;
use crate::types;

type NamedRow = Vec<(String, Value)>;

pub(super) fn resolve_conflict(
    conn: &mut Connection,
    id: i64,
    keep: Keep,
) -> Result<ConflictRecord> {
    if !crate::schema::exists(conn, "table", "es_conflicts")? {
        return Err(Error::new(
            ErrorKind::Config,
            format!("there is no conflict #{id}: the central has no conflict log (run init-sync)"),
        ));
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    let found: Option<(String, String, Option<String>, bool)> = tx
        .query_row(
            "SELECT tbl, key_json, local_json, open FROM es_conflicts WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0)),
        )
        .optional()
        .db()?;
    let Some((table, key_json, local_json, open)) = found else {
        return Err(Error::new(
            ErrorKind::Config,
            format!("there is no conflict #{id} (see `edgesync conflicts list --all`)"),
        ));
    };
    if !open {
        return Err(Error::new(
            ErrorKind::Constraint,
            format!("conflict #{id} is already resolved (see `edgesync conflicts list --all`)"),
        ));
    }
    if keep == Keep::Local {
        let parse = |j: &str, what: &str| -> Result<NamedRow> {
            serde_json::from_str(j).map_err(|e| {
                Error::internal(format!("es_conflicts row {id}: bad {what}")).with_source(e)
            })
        };
        let key = parse(&key_json, "key")?;
        let local = local_json
            .as_deref()
            .map(|j| parse(j, "local values"))
            .transpose()?;
        write_local(&tx, &table, &key, local.as_deref())
            .map_err(|e| e.context(format!("resolving conflict #{id} on {table}")))?;
    }
    tx.execute(
        "UPDATE es_conflicts SET open = 0, resolved_at = ?2, kept = ?3, \
         result_json = CASE WHEN ?3 = 'local' THEN local_json ELSE result_json END \
         WHERE id = ?1",
        params![id, types::now_text(), keep.as_str()],
    )
    .db()?;
    let record = super::read_conflicts(&tx, "id = ?1", params![id, 1])?
        .pop()
        .ok_or_else(|| Error::internal(format!("conflict #{id} vanished")))?;
    tx.commit().db()?;
    Ok(record)
}

/// Write the parked local row (`None`: its delete) as an application write.
fn write_local(
    conn: &Connection,
    table: &str,
    key: &[(String, Value)],
    local: Option<&[(String, Value)]>,
) -> Result<()> {
    let schema = crate::schema::describe(conn, table)?
        .ok_or_else(|| Error::schema(format!("central table {table} no longer exists")))?;
    let bind = |(name, value): &(String, Value)| -> Result<(String, SqlValue)> {
        let col = schema.column(name).ok_or_else(|| {
            Error::schema(format!("central table {table} no longer has column {name}"))
        })?;
        let ty: ColType = col.ty.clone().map_err(|native| {
            Error::schema(format!("central column {table}.{name} has type {native}"))
        })?;
        let v = types::to_sql(value, ty)
            .map_err(|m| Error::value(format!("table {table}, column {name}: {m}")))?;
        Ok((col.name.clone(), v))
    };
    let key: Vec<(String, SqlValue)> = key.iter().map(bind).collect::<Result<_>>()?;
    let key_match = key
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("{} IS ?{}", sql::ident(c), i + 1))
        .collect::<Vec<_>>()
        .join(" AND ");
    let key_params: Vec<SqlValue> = key.iter().map(|(_, v)| v.clone()).collect();
    let q = sql::ident(table);
    let Some(local) = local else {
        // The delete trigger makes it a soft or a hard delete, as the table
        // is provisioned.
        conn.execute(
            &format!("DELETE FROM {q} WHERE {key_match}"),
            params_from_iter(&key_params),
        )
        .db()?;
        return Ok(());
    };
    let values: Vec<(String, SqlValue)> = local.iter().map(bind).collect::<Result<_>>()?;
    let exists: bool = conn
        .query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM {q} WHERE {key_match})"),
            params_from_iter(&key_params),
            |r| r.get(0),
        )
        .db()?;
    let is_key = |c: &str| key.iter().any(|(k, _)| k.eq_ignore_ascii_case(c));
    if exists {
        let sets: Vec<(String, SqlValue)> =
            values.into_iter().filter(|(c, _)| !is_key(c)).collect();
        let n = key_params.len();
        let mut assign: Vec<String> = sets
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{} = ?{}", sql::ident(c), n + i + 1))
            .collect();
        assign.push("es_deleted = 0".into());
        let mut params = key_params;
        params.extend(sets.into_iter().map(|(_, v)| v));
        conn.execute(
            &format!("UPDATE {q} SET {} WHERE {key_match}", assign.join(", ")),
            params_from_iter(params),
        )
        .db()?;
    } else {
        let cols = sql::column_list("", values.iter().map(|(c, _)| c.as_str()));
        conn.execute(
            &format!(
                "INSERT INTO {q} ({cols}) VALUES ({})",
                sql::placeholders(1, values.len())
            ),
            params_from_iter(values.into_iter().map(|(_, v)| v)),
        )
        .db()?;
    }
    Ok(())
}

pub(super) fn purge_conflicts(conn: &mut Connection, older_than: Duration) -> Result<u64> {
    if !crate::schema::exists(conn, "table", "es_conflicts")? {
        return Ok(0);
    }
    let age = chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
    let Some(cutoff) = chrono::Utc::now().checked_sub_signed(age) else {
        return Ok(0);
    };
    // Stored times are `types::now_text()`, which sorts as text.
    let cutoff = cutoff.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string();
    let n = conn
        .execute(
            "DELETE FROM es_conflicts WHERE open = 0 AND COALESCE(resolved_at, at) < ?1",
            [cutoff],
        )
        .db()?;
    Ok(n as u64)
}
