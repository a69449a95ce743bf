//! One mapped edge table: the SQL that reads and writes its rows by key,
//! and the conversions of its values (edge column names and types).
//!
//! Rows are always addressed by the mapping's key with `IS` matches, never
//! by rowid, so `WITHOUT ROWID` tables and composite keys work alike.

use edgesync_core::{Change, DeleteMode, Error, Result, TableMapping, Value};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension};

use crate::error::SqlResultExt;
use crate::sql::{self, KeyCol};
use crate::types::{self, RowReader};

/// SQL and conversions for one mapped edge table.
pub(super) struct EdgeTable<'a> {
    pub(super) m: &'a TableMapping,
    pub(super) q: String,
    pub(super) key: Vec<KeyCol>,
    pub(super) cols: String,
}

impl<'a> EdgeTable<'a> {
    pub(super) fn new(m: &'a TableMapping) -> Self {
        EdgeTable {
            m,
            q: sql::ident(&m.edge),
            key: m
                .key_columns()
                .map(|c| KeyCol {
                    name: c.edge.clone(),
                    ty: c.edge_ty,
                })
                .collect(),
            cols: sql::column_list("", m.columns.iter().map(|c| c.edge.as_str())),
        }
    }

    pub(super) fn reader(&self) -> RowReader<'_> {
        RowReader {
            table: &self.m.edge,
            columns: self
                .m
                .columns
                .iter()
                .map(|c| (c.edge.as_str(), c.edge_ty))
                .collect(),
            key: &self.m.key,
        }
    }

    pub(super) fn key_types(&self) -> Vec<edgesync_core::ColType> {
        self.key.iter().map(|k| k.ty).collect()
    }

    pub(super) fn bind_key(&self, key: &[Value]) -> Result<Vec<SqlValue>> {
        if key.len() != self.key.len() {
            return Err(Error::value(format!(
                "table {}: a key of {} values for a {}-column key",
                self.m.edge,
                key.len(),
                self.key.len()
            )));
        }
        types::bind_values(
            &self.m.edge,
            self.key.iter().map(|k| (k.name.as_str(), k.ty)),
            key,
            &self.m.describe_key(key),
        )
    }

    pub(super) fn bind_row(&self, values: &[Value], key: &[Value]) -> Result<Vec<SqlValue>> {
        if values.len() != self.m.columns.len() {
            return Err(Error::value(format!(
                "table {}, key {}: a row of {} values for {} columns",
                self.m.edge,
                self.m.describe_key(key),
                values.len(),
                self.m.columns.len()
            )));
        }
        types::bind_values(
            &self.m.edge,
            self.m.columns.iter().map(|c| (c.edge.as_str(), c.edge_ty)),
            values,
            &self.m.describe_key(key),
        )
    }

    /// The local row's `(es_ver, es_cver)`, if the row exists.
    pub(super) fn local(
        &self,
        conn: &Connection,
        key: &[SqlValue],
    ) -> Result<Option<(i64, Option<i64>)>> {
        conn.prepare_cached(&format!(
            "SELECT es_ver, es_cver FROM {} WHERE {}",
            self.q,
            sql::key_match_params(1, &self.key)
        ))
        .db()?
        .query_row(params_from_iter(key), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()
    }

    /// The sequence of a pending tombstone for the key, if any.
    pub(super) fn tombstone(&self, conn: &Connection, key: &[SqlValue]) -> Result<Option<i64>> {
        let mut params = vec![SqlValue::Text(self.m.edge.clone())];
        params.extend(key.iter().cloned());
        conn.prepare_cached(&format!(
            "SELECT es_ver FROM es_tombstones WHERE tbl = ?1 AND key = {}",
            sql::key_json(None, 2, &self.key)
        ))
        .db()?
        .query_row(params_from_iter(params), |r| r.get(0))
        .optional()
        .db()
    }

    /// Does the table have any conflict base in `es_base`? (Checked once per
    /// transaction, so the common case, no bases at all, costs nothing per
    /// row.) `false` too for a file provisioned before `es_base` existed.
    pub(super) fn has_bases(&self, conn: &Connection) -> Result<bool> {
        if !crate::schema::exists(conn, "table", "es_base")? {
            return Ok(false);
        }
        conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM es_base WHERE tbl = ?1)")
            .db()?
            .query_row([&self.m.edge], |r| r.get(0))
            .db()
    }

    /// Forget the conflict base of a key (the row is clean again, or gone).
    pub(super) fn drop_base(&self, conn: &Connection, key: &[SqlValue]) -> Result<()> {
        let mut params = vec![SqlValue::Text(self.m.edge.clone())];
        params.extend(key.iter().cloned());
        conn.prepare_cached(&format!(
            "DELETE FROM es_base WHERE tbl = ?1 AND key = {}",
            sql::key_json(None, 2, &self.key)
        ))
        .db()?
        .execute(params_from_iter(params))
        .db()?;
        Ok(())
    }

    /// Make `values`, as the central holds them at `cver`, the key's conflict
    /// base (replacing any other).
    pub(super) fn set_base(
        &self,
        conn: &Connection,
        key: &[Value],
        key_sql: &[SqlValue],
        cver: i64,
        values: &[Value],
    ) -> Result<()> {
        let row = types::values_to_json(&self.bind_row(values, key)?);
        let mut params = vec![
            SqlValue::Text(self.m.edge.clone()),
            SqlValue::Integer(cver),
            SqlValue::Text(row),
        ];
        params.extend(key_sql.iter().cloned());
        conn.prepare_cached(&format!(
            "INSERT OR REPLACE INTO es_base (tbl, key, cver, row) VALUES (?1, {}, ?2, ?3)",
            sql::key_json(None, 4, &self.key)
        ))
        .db()?
        .execute(params_from_iter(params))
        .db()?;
        Ok(())
    }

    /// Make the local row what the central says: `state` is a pull-style
    /// change (`None`, or no values and deleted: the row is gone centrally).
    /// Soft tables keep a deleted row with its marker; hard tables remove it.
    /// A row the edge does not have is inserted with `es_ver = 0` (never
    /// written locally); a deleted one is never created.
    pub(super) fn put(
        &self,
        conn: &Connection,
        key: &[Value],
        state: Option<&Change>,
        exists: bool,
    ) -> Result<()> {
        let key_sql = self.bind_key(key)?;
        let n = self.m.columns.len();
        let gone = state.is_none_or(|c| c.deleted);
        let values = state.and_then(|c| c.values.as_deref());
        let version = state.map(|c| c.version);
        let hlc = state.map(|c| c.hlc);
        let context = || format!("table {}, key {}", self.m.edge, self.m.describe_key(key));
        if gone && (!exists || self.m.deletes == DeleteMode::Hard) {
            if exists {
                let sql = format!(
                    "DELETE FROM {} WHERE {}",
                    self.q,
                    sql::key_match_params(1, &self.key)
                );
                conn.prepare_cached(&sql)
                    .db()?
                    .execute(params_from_iter(&key_sql))
                    .db_ctx(context)?;
            }
            return Ok(());
        }
        let deleted = i64::from(gone);
        match (values, exists) {
            (Some(values), true) => {
                let sets: Vec<String> = self
                    .m
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{} = ?{}", sql::ident(&c.edge), i + 1))
                    .collect();
                let sql = format!(
                    "UPDATE {} SET {}, es_cver = COALESCE(?{a}, es_cver), es_hlc = COALESCE(?{b}, es_hlc), \
                     es_deleted = ?{c} WHERE {}",
                    self.q,
                    sets.join(", "),
                    sql::key_match_params(n + 4, &self.key),
                    a = n + 1,
                    b = n + 2,
                    c = n + 3,
                );
                let mut params = self.bind_row(values, key)?;
                params.extend([opt_sql(version), opt_sql(hlc), SqlValue::Integer(deleted)]);
                params.extend(key_sql);
                conn.prepare_cached(&sql)
                    .db()?
                    .execute(params_from_iter(params))
                    .db_ctx(context)?;
            }
            (None, true) => {
                // Soft delete without values: set the marker only.
                let sql = format!(
                    "UPDATE {} SET es_deleted = 1, es_cver = COALESCE(?1, es_cver), \
                     es_hlc = COALESCE(?2, es_hlc) WHERE {}",
                    self.q,
                    sql::key_match_params(3, &self.key)
                );
                let mut params = vec![opt_sql(version), opt_sql(hlc)];
                params.extend(key_sql);
                conn.prepare_cached(&sql)
                    .db()?
                    .execute(params_from_iter(params))
                    .db_ctx(context)?;
            }
            (Some(values), false) => {
                let sql = format!(
                    "INSERT INTO {} ({}, es_ver, es_cver, es_hlc, es_deleted) VALUES ({}, 0, ?{}, ?{}, 0)",
                    self.q,
                    self.cols,
                    sql::placeholders(1, n),
                    n + 1,
                    n + 2
                );
                let mut params = self.bind_row(values, key)?;
                params.push(opt_sql(version));
                params.push(SqlValue::Integer(hlc.unwrap_or(0)));
                conn.prepare_cached(&sql)
                    .db()?
                    .execute(params_from_iter(params))
                    .db_ctx(context)?;
            }
            (None, false) => {
                return Err(Error::value(format!(
                    "{}: a change without values that is not a delete",
                    context()
                )))
            }
        }
        Ok(())
    }
}

/// `Option<i64>` as an SQL value (NULL for `None`).
pub(super) fn opt_sql(v: Option<i64>) -> SqlValue {
    v.map_or(SqlValue::Null, SqlValue::Integer)
}
