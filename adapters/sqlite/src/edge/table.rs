//! One mapped edge table: the SQL that reads and writes its rows by key,
//! and the conversions of its values (edge column names and types).
//!
//! Rows are always addressed by the mapping's key with `IS` matches, never
//! by rowid, so `WITHOUT ROWID` tables and composite keys work alike.
//!
//! The SQL of every statement is built once per [`EdgeTable`] (one per
//! transaction), and the hot loops (a pull page, a push acknowledgement) go
//! through a [`Writer`], which prepares each statement once and binds values
//! straight from the canonical [`Value`]s: no SQL text, parameter vector or
//! key description is built per row (the description only when an error
//! needs it).

use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use edgesync_core::value::is_canonical_decimal;
use edgesync_core::{Change, ColType, DeleteMode, Error, Result, TableMapping, Value};
use rusqlite::types::{Null, Value as SqlValue};
use rusqlite::{params_from_iter, CachedStatement, Connection, OptionalExtension};

use crate::error::{db_error, SqlResultExt};
use crate::sql::{self, KeyCol};
use crate::types::{self, RowReader};

/// SQL and conversions for one mapped edge table.
pub(super) struct EdgeTable<'a> {
    pub(super) m: &'a TableMapping,
    pub(super) q: String,
    pub(super) key: Vec<KeyCol>,
    sql: Sql,
}

/// The statements of one table, built once.
struct Sql {
    /// `?1..`: key → `(es_ver, es_cver)`.
    local: String,
    /// `?1` = tbl, `?2..`: key → tombstone `es_ver`.
    tombstone: String,
    /// `?1` = tbl, `?2..`: key.
    drop_base: String,
    /// `?1..?n` values, `?n+1` cver, `?n+2` hlc.
    insert: String,
    /// [`INSERT_BATCH`] rows of `insert`'s parameters, one after the other.
    insert_many: String,
    /// `?1..?n` values, `?n+1` cver, `?n+2` hlc, `?n+3` deleted, `?n+4..` key.
    update: String,
    /// `update` without the key columns (`?` of the key columns unused):
    /// for rows whose values carry the key itself, the usual case. Setting
    /// a key column, even to its own value, makes SQLite move the row (a
    /// rowid change: delete, insert and every index entry rewritten).
    update_values: String,
    /// `update_values` only where the row is clean and older than the
    /// change: `?n+4..` key, then `wm` (the push watermark) and the change's
    /// version (see [`Writer::update_if_clean`]).
    update_clean: String,
    /// `?1` cver, `?2` hlc, `?3..` key.
    mark_deleted: String,
    /// `?1..` key.
    delete: String,
    /// `?1` cver, `?2..` key → `es_ver`.
    cver: String,
    /// `?1` cver, `?2` hi, `?3..` key: a row re-inserted since the push read.
    cver_reinserted: String,
    /// `?1` cver, `?2` tbl, `?3` hi, `?4..` key: a tombstone written since.
    cver_tombstone: String,
}

/// Rows per multi-row `INSERT` of new rows (fewer for very wide tables, to
/// stay within SQLite's 32766 parameters).
const INSERT_BATCH: usize = 100;

fn insert_batch(columns: usize) -> usize {
    INSERT_BATCH.min(32_766 / (columns + 2)).max(1)
}

/// A value conversion refused by [`types::to_sql`], or a binding error.
enum BindError {
    Value(String),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for BindError {
    fn from(e: rusqlite::Error) -> Self {
        BindError::Sql(e)
    }
}

/// Bind `v` (a value of a `ty` column) at parameter `idx`, converted exactly
/// as [`types::to_sql`] converts it, without copying text or bytes and
/// without chrono's format parser for zoned timestamps.
fn bind(
    st: &mut rusqlite::Statement<'_>,
    idx: usize,
    v: &Value,
    ty: ColType,
    buf: &mut String,
) -> std::result::Result<(), BindError> {
    match (v, ty) {
        (Value::Null, _) => st.raw_bind_parameter(idx, Null)?,
        (Value::Int(i), ColType::Int) => st.raw_bind_parameter(idx, *i)?,
        (Value::Text(s), ColType::Text { .. } | ColType::Json)
        | (Value::Json(s), ColType::Json | ColType::Text { .. }) => {
            st.raw_bind_parameter(idx, s.as_str())?
        }
        (Value::Bytes(b), ColType::Bytes) => st.raw_bind_parameter(idx, b.as_slice())?,
        (Value::TimestampTz(t), ColType::TimestampTz) if format_timestamptz(t, buf) => {
            st.raw_bind_parameter(idx, buf.as_str())?
        }
        // Central adapters send decimals in canonical form already (the
        // general path would copy and reformat each one).
        (Value::Decimal(d), ColType::Decimal { .. }) if is_canonical_decimal(d) => {
            st.raw_bind_parameter(idx, d.as_str())?
        }
        _ => {
            let sv = types::to_sql(v, ty).map_err(BindError::Value)?;
            st.raw_bind_parameter(idx, sv)?
        }
    }
    Ok(())
}

fn push_digits(buf: &mut String, n: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut n = n;
    for d in digits[..width].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for &d in &digits[..width] {
        buf.push(char::from(d));
    }
}

/// `value::format_timestamptz` (`%Y-%m-%d %H:%M:%S%.f%:z`) for the common
/// case — years 0 to 9999, no leap second, a whole-minute offset — into
/// `buf`; `false` (and `buf` unspecified) for anything else, which then
/// takes the general path.
pub(super) fn format_timestamptz(t: &DateTime<FixedOffset>, buf: &mut String) -> bool {
    let local = t.naive_local();
    let year = local.year();
    let nanos = local.nanosecond();
    let offset = t.offset().local_minus_utc();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 || offset % 60 != 0 {
        return false;
    }
    buf.clear();
    push_digits(buf, year as u32, 4);
    buf.push('-');
    push_digits(buf, local.month(), 2);
    buf.push('-');
    push_digits(buf, local.day(), 2);
    buf.push(' ');
    push_digits(buf, local.hour(), 2);
    buf.push(':');
    push_digits(buf, local.minute(), 2);
    buf.push(':');
    push_digits(buf, local.second(), 2);
    if nanos != 0 {
        buf.push('.');
        if nanos.is_multiple_of(1_000_000) {
            push_digits(buf, nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            push_digits(buf, nanos / 1_000, 6);
        } else {
            push_digits(buf, nanos, 9);
        }
    }
    buf.push(if offset < 0 { '-' } else { '+' });
    let minutes = offset.unsigned_abs() / 60;
    push_digits(buf, minutes / 60, 2);
    buf.push(':');
    push_digits(buf, minutes % 60, 2);
    true
}

impl<'a> EdgeTable<'a> {
    pub(super) fn new(m: &'a TableMapping) -> Self {
        let q = sql::ident(&m.edge);
        let key: Vec<KeyCol> = m
            .key_columns()
            .map(|c| KeyCol {
                name: c.edge.clone(),
                ty: c.edge_ty,
            })
            .collect();
        let cols = sql::column_list("", m.columns.iter().map(|c| c.edge.as_str()));
        let n = m.columns.len();
        let set = |i: usize| format!("{} = ?{}", sql::ident(&m.columns[i].edge), i + 1);
        let sets: Vec<String> = (0..n).map(set).collect();
        let value_sets: Vec<String> = (0..n).filter(|i| !m.key.contains(i)).map(set).collect();
        let row = |first: usize| {
            format!(
                "({}, 0, ?{}, ?{}, 0)",
                sql::placeholders(first, n),
                first + n,
                first + n + 1
            )
        };
        let insert_head =
            format!("INSERT INTO {q} ({cols}, es_ver, es_cver, es_hlc, es_deleted) VALUES ");
        let update_values = format!(
            "UPDATE {q} SET {}es_cver = COALESCE(?{a}, es_cver), \
             es_hlc = COALESCE(?{b}, es_hlc), es_deleted = ?{c} WHERE {}",
            value_sets
                .iter()
                .map(|s| format!("{s}, "))
                .collect::<String>(),
            sql::key_match_params(n + 4, &key),
            a = n + 1,
            b = n + 2,
            c = n + 3,
        );
        let sql = Sql {
            local: format!(
                "SELECT es_ver, es_cver FROM {q} WHERE {}",
                sql::key_match_params(1, &key)
            ),
            tombstone: format!(
                "SELECT es_ver FROM es_tombstones WHERE tbl = ?1 AND key = {}",
                sql::key_json(None, 2, &key)
            ),
            drop_base: format!(
                "DELETE FROM es_base WHERE tbl = ?1 AND key = {}",
                sql::key_json(None, 2, &key)
            ),
            insert: format!("{insert_head}{}", row(1)),
            insert_many: format!(
                "{insert_head}{}",
                (0..insert_batch(n))
                    .map(|r| row(1 + r * (n + 2)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            update: format!(
                "UPDATE {q} SET {}, es_cver = COALESCE(?{a}, es_cver), \
                 es_hlc = COALESCE(?{b}, es_hlc), es_deleted = ?{c} WHERE {}",
                sets.join(", "),
                sql::key_match_params(n + 4, &key),
                a = n + 1,
                b = n + 2,
                c = n + 3,
            ),
            update_clean: format!(
                "{update_values} AND es_ver <= ?{w} AND (es_cver IS NULL OR es_cver < ?{v})",
                w = n + 4 + key.len(),
                v = n + 5 + key.len(),
            ),
            update_values,
            mark_deleted: format!(
                "UPDATE {q} SET es_deleted = 1, es_cver = COALESCE(?1, es_cver), \
                 es_hlc = COALESCE(?2, es_hlc) WHERE {}",
                sql::key_match_params(3, &key)
            ),
            delete: format!("DELETE FROM {q} WHERE {}", sql::key_match_params(1, &key)),
            cver: format!(
                "UPDATE {q} SET es_cver = ?1 WHERE {} RETURNING es_ver",
                sql::key_match_params(2, &key)
            ),
            cver_reinserted: format!(
                "UPDATE {q} SET es_cver = ?1 WHERE es_ver > ?2 AND {}",
                sql::key_match_params(3, &key)
            ),
            cver_tombstone: format!(
                "UPDATE es_tombstones SET es_cver = ?1 WHERE tbl = ?2 AND es_ver > ?3 AND key = {}",
                sql::key_json(None, 4, &key)
            ),
        };
        EdgeTable { m, q, key, sql }
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

    fn key_len_error(&self, key: &[Value]) -> Error {
        Error::value(format!(
            "table {}: a key of {} values for a {}-column key",
            self.m.edge,
            key.len(),
            self.key.len()
        ))
    }

    fn row_len_error(&self, values: &[Value], key: &[Value]) -> Error {
        Error::value(format!(
            "table {}, key {}: a row of {} values for {} columns",
            self.m.edge,
            self.m.describe_key(key),
            values.len(),
            self.m.columns.len()
        ))
    }

    pub(super) fn bind_key(&self, key: &[Value]) -> Result<Vec<SqlValue>> {
        if key.len() != self.key.len() {
            return Err(self.key_len_error(key));
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
            return Err(self.row_len_error(values, key));
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
        conn.prepare_cached(&self.sql.local)
            .db()?
            .query_row(params_from_iter(key), |r| Ok((r.get(0)?, r.get(1)?)))
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

    /// Does the table have any pending tombstone? (Checked once per
    /// transaction: without any, no key needs looking up.)
    pub(super) fn has_tombstones(&self, conn: &Connection) -> Result<bool> {
        conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM es_tombstones WHERE tbl = ?1)")
            .db()?
            .query_row([&self.m.edge], |r| r.get(0))
            .db()
    }

    /// Does the table have a tombstone above `seq` (written since a push
    /// read its changes)?
    pub(super) fn has_tombstones_after(&self, conn: &Connection, seq: i64) -> Result<bool> {
        conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM es_tombstones WHERE tbl = ?1 AND es_ver > ?2)",
        )
        .db()?
        .query_row(rusqlite::params![self.m.edge, seq], |r| r.get(0))
        .db()
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

    /// A writer holding this table's statements on `conn`.
    pub(super) fn writer<'t, 'c>(&'t self, conn: &'c Connection) -> Writer<'t, 'c> {
        Writer {
            t: self,
            conn,
            local: None,
            tombstone: None,
            drop_base: None,
            insert: None,
            insert_many: None,
            update: None,
            update_values: None,
            update_clean: None,
            mark_deleted: None,
            delete: None,
            cver: None,
            cver_reinserted: None,
            cver_tombstone: None,
            buf: String::with_capacity(40),
        }
    }
}

/// The statements of one [`EdgeTable`] on one connection, each prepared on
/// first use and kept for the writer's life (a page, a batch).
pub(super) struct Writer<'t, 'c> {
    t: &'t EdgeTable<'t>,
    conn: &'c Connection,
    local: Option<CachedStatement<'c>>,
    tombstone: Option<CachedStatement<'c>>,
    drop_base: Option<CachedStatement<'c>>,
    insert: Option<CachedStatement<'c>>,
    insert_many: Option<CachedStatement<'c>>,
    update: Option<CachedStatement<'c>>,
    update_values: Option<CachedStatement<'c>>,
    update_clean: Option<CachedStatement<'c>>,
    mark_deleted: Option<CachedStatement<'c>>,
    delete: Option<CachedStatement<'c>>,
    cver: Option<CachedStatement<'c>>,
    cver_reinserted: Option<CachedStatement<'c>>,
    cver_tombstone: Option<CachedStatement<'c>>,
    /// Scratch text for converted values.
    buf: String,
}

/// What an update stamps on a row besides its values.
struct Stamps {
    /// `es_cver` (NULL keeps the row's).
    version: SqlValue,
    /// `es_hlc` (NULL keeps the row's).
    hlc: SqlValue,
    /// `es_deleted`.
    deleted: i64,
}

/// The statement in `slot`, prepared from `sql` on first use.
fn prepared<'s, 'c>(
    slot: &'s mut Option<CachedStatement<'c>>,
    conn: &'c Connection,
    sql: &str,
) -> Result<&'s mut CachedStatement<'c>> {
    if slot.is_none() {
        *slot = Some(conn.prepare_cached(sql).db()?);
    }
    slot.as_mut()
        .ok_or_else(|| Error::internal("a statement was not prepared"))
}

/// Which values a statement binds, for messages.
#[derive(Clone, Copy)]
enum Part {
    Key,
    Row,
}

impl<'t> Writer<'t, '_> {
    /// The message of a failed conversion, naming the table, column and key.
    fn bind_error(&self, part: Part, i: usize, key: &[Value], e: BindError) -> Error {
        match e {
            BindError::Value(msg) => {
                let name = match part {
                    Part::Key => &self.t.key[i].name,
                    Part::Row => &self.t.m.columns[i].edge,
                };
                Error::value(format!(
                    "table {}, column {name}, key {}: {msg}",
                    self.t.m.edge,
                    self.t.m.describe_key(key)
                ))
            }
            BindError::Sql(e) => db_error(e),
        }
    }

    /// Bind the key values at `first..`.
    fn bind_key(
        t: &EdgeTable<'t>,
        st: &mut rusqlite::Statement<'_>,
        first: usize,
        key: &[Value],
        buf: &mut String,
    ) -> std::result::Result<(), (usize, BindError)> {
        for (j, (k, v)) in t.key.iter().zip(key).enumerate() {
            bind(st, first + j, v, k.ty, buf).map_err(|e| (j, e))?;
        }
        Ok(())
    }

    /// Bind the row values at `1..=n`.
    fn bind_row(
        t: &EdgeTable<'t>,
        st: &mut rusqlite::Statement<'_>,
        values: &[Value],
        buf: &mut String,
    ) -> std::result::Result<(), (usize, BindError)> {
        for (i, (c, v)) in t.m.columns.iter().zip(values).enumerate() {
            bind(st, 1 + i, v, c.edge_ty, buf).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    fn check_key(&self, key: &[Value]) -> Result<()> {
        if key.len() == self.t.key.len() {
            Ok(())
        } else {
            Err(self.t.key_len_error(key))
        }
    }

    /// The local row's `(es_ver, es_cver)`, if the row exists.
    pub(super) fn local(&mut self, key: &[Value]) -> Result<Option<(i64, Option<i64>)>> {
        self.check_key(key)?;
        let st = prepared(&mut self.local, self.conn, &self.t.sql.local)?;
        if let Err((j, e)) = Self::bind_key(self.t, st, 1, key, &mut self.buf) {
            return Err(self.bind_error(Part::Key, j, key, e));
        }
        let mut rows = st.raw_query();
        match rows.next().db()? {
            Some(r) => Ok(Some((r.get(0).db()?, r.get(1).db()?))),
            None => Ok(None),
        }
    }

    /// The sequence of a pending tombstone for the key, if any.
    pub(super) fn tombstone(&mut self, key: &[Value]) -> Result<Option<i64>> {
        self.check_key(key)?;
        let st = prepared(&mut self.tombstone, self.conn, &self.t.sql.tombstone)?;
        st.raw_bind_parameter(1, self.t.m.edge.as_str()).db()?;
        if let Err((j, e)) = Self::bind_key(self.t, st, 2, key, &mut self.buf) {
            return Err(self.bind_error(Part::Key, j, key, e));
        }
        let mut rows = st.raw_query();
        match rows.next().db()? {
            Some(r) => Ok(Some(r.get(0).db()?)),
            None => Ok(None),
        }
    }

    /// Set the row's `es_cver`; its `es_ver`, if the row exists.
    pub(super) fn set_cver(&mut self, key: &[Value], cver: Option<i64>) -> Result<Option<i64>> {
        self.check_key(key)?;
        let st = prepared(&mut self.cver, self.conn, &self.t.sql.cver)?;
        st.raw_bind_parameter(1, opt_sql(cver)).db()?;
        if let Err((j, e)) = Self::bind_key(self.t, st, 2, key, &mut self.buf) {
            return Err(self.bind_error(Part::Key, j, key, e));
        }
        let mut rows = st.raw_query();
        match rows.next().db()? {
            Some(r) => Ok(Some(r.get(0).db()?)),
            None => Ok(None),
        }
    }

    /// Set `es_cver` of a row written (re-inserted) after sequence `hi`;
    /// whether there was one.
    pub(super) fn set_cver_reinserted(
        &mut self,
        key: &[Value],
        cver: Option<i64>,
        hi: i64,
    ) -> Result<bool> {
        self.check_key(key)?;
        let st = prepared(
            &mut self.cver_reinserted,
            self.conn,
            &self.t.sql.cver_reinserted,
        )?;
        st.raw_bind_parameter(1, opt_sql(cver)).db()?;
        st.raw_bind_parameter(2, hi).db()?;
        if let Err((j, e)) = Self::bind_key(self.t, st, 3, key, &mut self.buf) {
            return Err(self.bind_error(Part::Key, j, key, e));
        }
        Ok(st.raw_execute().db()? > 0)
    }

    /// Set `es_cver` of the key's tombstone written after sequence `hi`;
    /// whether there was one.
    pub(super) fn set_tombstone_cver(
        &mut self,
        key: &[Value],
        cver: Option<i64>,
        hi: i64,
    ) -> Result<bool> {
        self.check_key(key)?;
        let st = prepared(
            &mut self.cver_tombstone,
            self.conn,
            &self.t.sql.cver_tombstone,
        )?;
        st.raw_bind_parameter(1, opt_sql(cver)).db()?;
        st.raw_bind_parameter(2, self.t.m.edge.as_str()).db()?;
        st.raw_bind_parameter(3, hi).db()?;
        if let Err((j, e)) = Self::bind_key(self.t, st, 4, key, &mut self.buf) {
            return Err(self.bind_error(Part::Key, j, key, e));
        }
        Ok(st.raw_execute().db()? > 0)
    }

    /// Forget the conflict base of a key.
    pub(super) fn drop_base(&mut self, key: &[Value]) -> Result<()> {
        self.check_key(key)?;
        let st = prepared(&mut self.drop_base, self.conn, &self.t.sql.drop_base)?;
        st.raw_bind_parameter(1, self.t.m.edge.as_str()).db()?;
        if let Err((j, e)) = Self::bind_key(self.t, st, 2, key, &mut self.buf) {
            return Err(self.bind_error(Part::Key, j, key, e));
        }
        st.raw_execute().db()?;
        Ok(())
    }

    /// Make the local row what the central says: `state` is a pull-style
    /// change (`None`, or no values and deleted: the row is gone centrally).
    /// Soft tables keep a deleted row with its marker; hard tables remove it.
    /// A row the edge does not have is inserted with `es_ver = 0` (never
    /// written locally); a deleted one is never created.
    pub(super) fn put(
        &mut self,
        key: &[Value],
        state: Option<&Change>,
        exists: bool,
    ) -> Result<()> {
        self.check_key(key)?;
        let t = self.t;
        let n = t.m.columns.len();
        // A row that left the node's filter is removed outright, even on a
        // soft-delete table: it was not deleted, this node just no longer
        // holds it (and the apply writes no tombstone for it).
        let moved_out = state.is_some_and(Change::is_move_out);
        let gone = moved_out || state.is_none_or(|c| c.deleted);
        let values = state.and_then(|c| c.values.as_deref());
        let version = state.map(|c| c.version);
        let hlc = state.map(|c| c.hlc);
        let context = || format!("table {}, key {}", t.m.edge, t.m.describe_key(key));
        if let Some(v) = values {
            if v.len() != n {
                return Err(t.row_len_error(v, key));
            }
        }
        if gone && (!exists || moved_out || t.m.deletes == DeleteMode::Hard) {
            if exists {
                let st = prepared(&mut self.delete, self.conn, &t.sql.delete)?;
                if let Err((j, e)) = Self::bind_key(t, st, 1, key, &mut self.buf) {
                    return Err(self.bind_error(Part::Key, j, key, e));
                }
                st.raw_execute().db_ctx(context)?;
            }
            return Ok(());
        }
        let deleted = i64::from(gone);
        let opt = |v: Option<i64>| v.map_or(SqlValue::Null, SqlValue::Integer);
        match (values, exists) {
            (Some(values), true) => {
                let stamps = Stamps {
                    version: opt(version),
                    hlc: opt(hlc),
                    deleted,
                };
                self.update_row(values, key, stamps, None)?;
            }
            (None, true) => {
                // Soft delete without values: set the marker only.
                let st = prepared(&mut self.mark_deleted, self.conn, &t.sql.mark_deleted)?;
                st.raw_bind_parameter(1, opt(version)).db()?;
                st.raw_bind_parameter(2, opt(hlc)).db()?;
                if let Err((j, e)) = Self::bind_key(t, st, 3, key, &mut self.buf) {
                    return Err(self.bind_error(Part::Key, j, key, e));
                }
                st.raw_execute().db_ctx(context)?;
            }
            (Some(values), false) => {
                let st = prepared(&mut self.insert, self.conn, &t.sql.insert)?;
                if let Err((i, e)) = Self::bind_row(t, st, values, &mut self.buf) {
                    return Err(self.bind_error(Part::Row, i, key, e));
                }
                st.raw_bind_parameter(n + 1, opt(version)).db()?;
                st.raw_bind_parameter(n + 2, hlc.unwrap_or(0)).db()?;
                st.raw_execute().db_ctx(context)?;
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

impl Writer<'_, '_> {
    /// A pulled change with values, written over its row in one statement
    /// when the row is there, clean (`es_ver <= wm`: no local change waiting
    /// to be pushed) and older than the change (`es_cver` below its
    /// version), exactly as [`Writer::local`] and then [`Writer::put`]
    /// would: the usual pulled update, with one B-tree search instead of
    /// two. `false` when it wrote nothing (no such row, dirty, already as
    /// new; or values that do not carry the key): the caller decides the
    /// general way.
    pub(super) fn update_if_clean(&mut self, change: &Change, wm: i64) -> Result<bool> {
        let t = self.t;
        let n = t.m.columns.len();
        let key = &change.key;
        let Some(values) = change.values.as_deref() else {
            return Ok(false);
        };
        if change.deleted || change.is_move_out() || values.len() != n {
            return Ok(false);
        }
        self.check_key(key)?;
        if !t.m.key.iter().zip(key).all(|(&i, k)| values[i] == *k) {
            return Ok(false);
        }
        let stamps = Stamps {
            version: SqlValue::Integer(change.version),
            hlc: SqlValue::Integer(change.hlc),
            deleted: 0,
        };
        Ok(self.update_row(values, key, stamps, Some((wm, change.version)))? > 0)
    }

    /// Write `values` over the row of `key` (`update_values` when they carry
    /// the key, `update` otherwise), with `stamps`; with `clean = (wm,
    /// version)`, only where the row is clean and older (`update_clean`,
    /// values carrying the key). The rows changed.
    fn update_row(
        &mut self,
        values: &[Value],
        key: &[Value],
        stamps: Stamps,
        clean: Option<(i64, i64)>,
    ) -> Result<usize> {
        let t = self.t;
        let n = t.m.columns.len();
        let st = if clean.is_some() {
            prepared(&mut self.update_clean, self.conn, &t.sql.update_clean)?
        } else if t.m.key.iter().zip(key).all(|(&i, k)| values[i] == *k) {
            prepared(&mut self.update_values, self.conn, &t.sql.update_values)?
        } else {
            prepared(&mut self.update, self.conn, &t.sql.update)?
        };
        if let Err((i, e)) = Self::bind_row(t, st, values, &mut self.buf) {
            return Err(self.bind_error(Part::Row, i, key, e));
        }
        st.raw_bind_parameter(n + 1, stamps.version).db()?;
        st.raw_bind_parameter(n + 2, stamps.hlc).db()?;
        st.raw_bind_parameter(n + 3, stamps.deleted).db()?;
        if let Err((j, e)) = Self::bind_key(t, st, n + 4, key, &mut self.buf) {
            return Err(self.bind_error(Part::Key, j, key, e));
        }
        if let Some((wm, version)) = clean {
            st.raw_bind_parameter(n + 4 + key.len(), wm).db()?;
            st.raw_bind_parameter(n + 5 + key.len(), version).db()?;
        }
        st.raw_execute()
            .db_ctx(|| format!("table {}, key {}", t.m.edge, t.m.describe_key(key)))
    }

    /// Insert rows the edge does not have (each a change with values, not
    /// deleted, keys distinct and absent locally), as [`Writer::put`] would
    /// one by one, but [`INSERT_BATCH`] rows per statement: a statement's
    /// fixed cost (its start, its statement journal, its end) is paid once
    /// per batch instead of once per row. The inserts of a failed batch are
    /// undone (SQLite rolls back the failed statement alone) and its rows
    /// inserted one by one, so an error names the row at fault.
    pub(super) fn insert_new(&mut self, rows: &[&Change]) -> Result<()> {
        let t = self.t;
        let n = t.m.columns.len();
        let per = insert_batch(n);
        let mut chunks = rows.chunks_exact(per);
        for chunk in chunks.by_ref() {
            if !self.insert_chunk(chunk)? {
                for c in chunk {
                    self.put(&c.key, Some(c), false)?;
                }
            }
        }
        for c in chunks.remainder() {
            self.put(&c.key, Some(c), false)?;
        }
        Ok(())
    }

    /// One full batch; `false` when a value or the statement failed (and
    /// nothing of it was written).
    fn insert_chunk(&mut self, chunk: &[&Change]) -> Result<bool> {
        let t = self.t;
        let n = t.m.columns.len();
        let st = prepared(&mut self.insert_many, self.conn, &t.sql.insert_many)?;
        for (r, c) in chunk.iter().enumerate() {
            let Some(values) = c.values.as_deref().filter(|v| v.len() == n) else {
                return Ok(false);
            };
            let first = r * (n + 2);
            for (i, (col, v)) in t.m.columns.iter().zip(values).enumerate() {
                if bind(st, first + 1 + i, v, col.edge_ty, &mut self.buf).is_err() {
                    return Ok(false);
                }
            }
            st.raw_bind_parameter(first + n + 1, c.version).db()?;
            st.raw_bind_parameter(first + n + 2, c.hlc).db()?;
        }
        Ok(st.raw_execute().is_ok())
    }
}

/// `Option<i64>` as an SQL value (NULL for `None`).
pub(super) fn opt_sql(v: Option<i64>) -> SqlValue {
    v.map_or(SqlValue::Null, SqlValue::Integer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    #[test]
    fn zoned_timestamps_format_as_the_general_path_does() {
        let offsets = [
            0,
            3600,
            -3600,
            5 * 3600 + 1800,
            -(9 * 3600 + 45 * 60),
            14 * 3600,
        ];
        let nanos = [
            0,
            1_000_000,
            120_000_000,
            123_456_000,
            1_000,
            123_456_789,
            999_999_999,
            7,
        ];
        let dates = [
            (1, 1, 1),
            (999, 12, 31),
            (1969, 12, 31),
            (1970, 1, 1),
            (2024, 2, 29),
            (2038, 1, 19),
            (9999, 12, 31),
        ];
        let mut buf = String::new();
        let mut checked = 0;
        for &off in &offsets {
            let tz = FixedOffset::east_opt(off).expect("offset");
            for &(y, m, d) in &dates {
                for &ns in &nanos {
                    let naive = NaiveDate::from_ymd_opt(y, m, d)
                        .and_then(|d| d.and_hms_nano_opt(23, 59, 58, ns))
                        .expect("date");
                    let Some(t) = tz.from_local_datetime(&naive).single() else {
                        continue;
                    };
                    let expected = edgesync_core::value::format_timestamptz(&t);
                    if format_timestamptz(&t, &mut buf) {
                        assert_eq!(buf, expected, "{t:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 300, "{checked}");
        // Outside the fast path: left to the general one.
        let odd = FixedOffset::east_opt(30).expect("offset");
        let t = odd
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        assert!(!format_timestamptz(&t, &mut buf));
    }
}
