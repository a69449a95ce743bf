//! `conflicts resolve` on MySQL: settle one parked (manual) conflict in one
//! transaction.
//!
//! `--keep local` writes the parked row as a central *application* would:
//! the transaction leaves `@es_applying` unset, so the table's triggers mark
//! the row changed (it gets a new version at the next stamping step), tick
//! its HLC stamp past the row's and clear `es_origin`; a kept delete writes a
//! tombstone. Every node, the one whose push was parked included, then pulls
//! it like any central change.

use edgesync_core::{
    ColumnMap, ConflictPolicy, ConflictRecord, DeleteMode, Direction, Error, ErrorKind, Keep,
    QualifiedName, Result, TableMapping,
};
use mysql_async::prelude::Queryable;
use mysql_async::{IsolationLevel, Pool, Row, Transaction, TxOpts, Value as My};

use crate::error::ctx;
use crate::meta::{parse_row, record, NamedRow, RECORD_COLUMNS};
use crate::schema::table_exists;
use crate::sql::{self, ident, Db};
use crate::types;

/// `resolve_conflict` for the trait.
pub async fn resolve_conflict(
    pool: &Pool,
    db: &Db,
    mariadb: bool,
    id: i64,
    keep: Keep,
) -> Result<ConflictRecord> {
    let doing = format!("resolving conflict #{id}");
    let missing = || {
        Error::new(
            ErrorKind::Config,
            format!("there is no conflict #{id} (see `edgesync conflicts list --all`)"),
        )
    };
    let mut conn = pool.get_conn().await.map_err(ctx(&doing))?;
    if !table_exists(&mut conn, &db.default, "es_conflicts").await? {
        return Err(missing());
    }
    conn.query_drop("SET @es_applying = NULL")
        .await
        .map_err(ctx(&doing))?;
    let log = db.meta("es_conflicts");
    let mut opts = TxOpts::default();
    opts.with_isolation_level(IsolationLevel::RepeatableRead);
    let mut tx = conn.start_transaction(opts).await.map_err(ctx(&doing))?;
    let settled = settle(&mut tx, db, mariadb, id, keep, &log, &doing).await;
    match settled {
        Ok(record) => {
            tx.commit().await.map_err(ctx(&doing))?;
            Ok(record)
        }
        Err(e) => {
            tx.rollback().await.ok();
            Err(e)
        }
    }
}

/// Everything `resolve_conflict` does inside its transaction.
async fn settle(
    tx: &mut Transaction<'_>,
    db: &Db,
    mariadb: bool,
    id: i64,
    keep: Keep,
    log: &str,
    doing: &str,
) -> Result<ConflictRecord> {
    let missing = || {
        Error::new(
            ErrorKind::Config,
            format!("there is no conflict #{id} (see `edgesync conflicts list --all`)"),
        )
    };
    let row: Option<(String, Option<String>, Option<String>, i64)> = tx
        .exec_first(
            format!("SELECT tbl, key_json, local_json, is_open FROM {log} WHERE id = ? FOR UPDATE"),
            (id,),
        )
        .await
        .map_err(ctx(doing))?;
    let (table, key, local, open) = row.ok_or_else(missing)?;
    if open == 0 {
        return Err(Error::new(
            ErrorKind::Constraint,
            format!("conflict #{id} is already resolved (see `edgesync conflicts list --all`)"),
        ));
    }
    if keep == Keep::Local {
        let key = parse_row(key, "key")?.unwrap_or_default();
        let local = parse_row(local, "local row")?;
        let q = QualifiedName::parse(&table);
        write_local(tx, db, mariadb, &q, &key, local.as_ref())
            .await
            .map_err(|e| e.context(format!("{doing} on {table}")))?;
    }
    tx.exec_drop(
        format!(
            "UPDATE {log} SET is_open = 0, resolved_at = UTC_TIMESTAMP(6), kept = ?,
                    result_json = IF(? = 'local', local_json, result_json)
              WHERE id = ?"
        ),
        (keep.as_str(), keep.as_str(), id),
    )
    .await
    .map_err(ctx(doing))?;
    let settled: Option<Row> = tx
        .exec_first(
            format!("SELECT {RECORD_COLUMNS} FROM {log} WHERE id = ?"),
            (id,),
        )
        .await
        .map_err(ctx(doing))?;
    record(settled.ok_or_else(missing)?)
}

/// Write the parked local row (`None`: its delete) to `table` as an
/// application write: update the row, or insert it when it is gone.
async fn write_local(
    tx: &mut Transaction<'_>,
    db: &Db,
    mariadb: bool,
    table: &QualifiedName,
    key: &NamedRow,
    local: Option<&NamedRow>,
) -> Result<()> {
    let schema = crate::schema::describe(&mut *tx, db, mariadb, table)
        .await?
        .ok_or_else(|| Error::schema(format!("central table {table} no longer exists")))?;
    let named: &NamedRow = local.unwrap_or(key);
    let mut columns = Vec::new();
    for (name, _) in named {
        let col = schema.column(name).ok_or_else(|| {
            Error::schema(format!("central table {table} no longer has column {name}"))
        })?;
        let ty = col.ty.clone().map_err(|native| {
            Error::schema(format!("central column {table}.{name} has type {native}"))
        })?;
        columns.push(ColumnMap {
            edge: col.name.clone(),
            central: col.name.clone(),
            ty,
            edge_ty: ty,
            nullable: col.nullable,
        });
    }
    let key_idx = key
        .iter()
        .map(|(k, _)| {
            columns
                .iter()
                .position(|c| c.central.eq_ignore_ascii_case(k))
                .ok_or_else(|| Error::internal(format!("key column {k} has no value")))
        })
        .collect::<Result<Vec<usize>>>()?;
    let t = TableMapping {
        edge: table.name.clone(),
        central: table.clone(),
        columns,
        key: key_idx,
        direction: Direction::Both,
        conflict: ConflictPolicy::Manual,
        deletes: DeleteMode::Soft,
    };
    let natives = crate::schema::natives(&mut *tx, db, mariadb, &t).await?;
    let mut params = Vec::new();
    for (k, (c, (_, v))) in t.columns.iter().zip(named).enumerate() {
        params.push(
            types::encode(v, c.ty, &natives[k])
                .map_err(|e| Error::value(format!("{table}.{}: {}", c.central, e.message())))?,
        );
    }
    let key_params: Vec<My> = t.key.iter().map(|&i| params[i].clone()).collect();
    let matches: Vec<String> = t
        .key
        .iter()
        .map(|&i| {
            let c = &t.columns[i];
            format!(
                "{} = {}",
                ident(&c.central),
                sql::bind_expr(c.ty, &natives[i], true)
            )
        })
        .collect();
    let table_ref = db.table_ref(table);
    if local.is_none() {
        tx.exec_drop(
            format!("DELETE FROM {table_ref} WHERE {}", matches.join(" AND ")),
            key_params,
        )
        .await
        .map_err(ctx("deleting the row (kept local delete)"))?;
        return Ok(());
    }
    let non_key: Vec<usize> = (0..t.columns.len())
        .filter(|k| !t.key.contains(k))
        .collect();
    let sets: Vec<String> = non_key
        .iter()
        .map(|&k| {
            let c = &t.columns[k];
            format!(
                "{} = {}",
                ident(&c.central),
                sql::bind_expr(c.ty, &natives[k], false)
            )
        })
        .chain(["es_deleted = 0".to_string()])
        .collect();
    let mut update_params: Vec<My> = non_key.iter().map(|&k| params[k].clone()).collect();
    update_params.extend(key_params);
    tx.exec_drop(
        format!(
            "UPDATE {table_ref} SET {} WHERE {}",
            sets.join(", "),
            matches.join(" AND ")
        ),
        update_params,
    )
    .await
    .map_err(ctx("writing the kept local row"))?;
    // The update trigger always changes the stamp, so 0 rows means no row.
    if tx.affected_rows() == 0 {
        let cols: Vec<String> = t.columns.iter().map(|c| ident(&c.central)).collect();
        let binds: Vec<String> = t
            .columns
            .iter()
            .zip(&natives)
            .map(|(c, n)| sql::bind_expr(c.ty, n, false))
            .collect();
        tx.exec_drop(
            format!(
                "INSERT INTO {table_ref} ({}) VALUES ({})",
                cols.join(", "),
                binds.join(", ")
            ),
            params,
        )
        .await
        .map_err(ctx("writing the kept local row"))?;
    }
    Ok(())
}
