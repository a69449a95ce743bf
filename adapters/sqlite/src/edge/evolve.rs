//! Schema evolution on an edge file: the central is the source of truth.
//!
//! Each synced table's column list is recorded in `es_schema`
//! (`schemas/sqlite/edge_schema.sql`) when it is provisioned, so the engine
//! can tell, at every sync, what changed on the central since: a column
//! added there is added here by the same planning as `init-sync` (the
//! `ALTER TABLE ... ADD COLUMN`, the capture triggers regenerated because
//! they list the columns, the views), in one transaction, together with a
//! new record naming the added columns in `refill` and a reset pull token.
//! The re-pull that follows fetches every row again; [`refill`] (run by
//! `EdgeDb::apply_pull` while `refill` is set) writes the added columns into
//! the rows the edge already holds at that central version, which the
//! ordinary apply skips as "already there".

use std::path::Path;

use edgesync_core::central::Statement;
use edgesync_core::change::schema_fingerprint;
use edgesync_core::{names, ColumnMap, Error, ErrorKind, PullPage, Result, TableMapping};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::{begin_apply, end_apply, push_wm, EdgeDb, EdgeTable};
use crate::error::SqlResultExt;
use crate::schema::{self, with_purpose};
use crate::{sql, types};

/// `es_schema`, reviewable under `schemas/sqlite/`.
const EDGE_SCHEMA: &str = include_str!("../../../../schemas/sqlite/edge_schema.sql");
/// Adding a column the central gained.
const EDGE_ADD_COLUMN: &str = include_str!("../../../../schemas/sqlite/edge_add_column.sql");
/// Recording a table's column list (and restarting its pull).
const EDGE_RECORD_COLUMNS: &str =
    include_str!("../../../../schemas/sqlite/edge_record_columns.sql");

/// What an edge file records about one table's synced columns.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedColumns {
    /// The synced columns, in the order rows travel.
    pub columns: Vec<ColumnMap>,
    /// The key's central column names, in key order.
    pub key: Vec<String>,
    /// Central names of added columns still being fetched by a re-pull.
    pub refill: Vec<String>,
}

/// What [`EdgeDb::evolve`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Evolved {
    /// The table has local changes not pushed yet: nothing was changed (they
    /// must reach the central under the column list they were written with).
    Pending(i64),
    /// The statements that ran, in one transaction.
    Done(Vec<Statement>),
}

/// The table's record, if the file has one.
pub(super) fn read_record(conn: &Connection, table: &str) -> Result<Option<SyncedColumns>> {
    if !schema::exists(conn, "table", "es_schema")? {
        return Ok(None);
    }
    let row: Option<(String, String, Option<String>)> = conn
        .query_row(
            "SELECT columns, key, refill FROM es_schema WHERE tbl = ?1 COLLATE NOCASE",
            [table],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .db_ctx(|| format!("reading the synced columns of {table} from es_schema"))?;
    let Some((columns, key, refill)) = row else {
        return Ok(None);
    };
    let corrupt = |what: &str, e: serde_json::Error| {
        Error::new(
            ErrorKind::Corrupt,
            format!("es_schema.{what} of table {table} is not what edgesync wrote: {e}"),
        )
    };
    Ok(Some(SyncedColumns {
        columns: serde_json::from_str(&columns).map_err(|e| corrupt("columns", e))?,
        key: serde_json::from_str(&key).map_err(|e| corrupt("key", e))?,
        refill: match refill {
            None => Vec::new(),
            Some(r) => serde_json::from_str(&r).map_err(|e| corrupt("refill", e))?,
        },
    }))
}

/// `CREATE TABLE es_schema` when the file lacks it.
pub(super) fn plan_schema_table(conn: &Connection, out: &mut Vec<Statement>) -> Result<()> {
    if !schema::exists(conn, "table", "es_schema")? {
        out.extend(with_purpose(
            "edge metadata (synced column lists)",
            schema::render(EDGE_SCHEMA, &[])?,
        ));
    }
    Ok(())
}

/// `ALTER TABLE ... ADD COLUMN` for a synced column the edge table lacks.
pub(super) fn plan_add_column(table: &str, c: &ColumnMap) -> Result<Vec<Statement>> {
    let stmts = schema::render(
        EDGE_ADD_COLUMN,
        &[
            ("table", sql::ident(table)),
            ("column", sql::ident(&c.edge)),
            ("decl", types::declared_type(c.edge_ty)),
        ],
    )?;
    Ok(with_purpose(
        &format!("add column {table}.{} (new in the central table)", c.edge),
        stmts,
    ))
}

/// Record `m`'s column list when the file's record differs; `added` are
/// central names of columns this plan adds to the table (fetched again by a
/// re-pull when the table pulls).
pub(super) fn plan_record(
    conn: &Connection,
    m: &TableMapping,
    added: &[String],
    out: &mut Vec<Statement>,
) -> Result<()> {
    let key: Vec<String> = m.key_columns().map(|c| c.central.clone()).collect();
    let current = read_record(conn, &m.edge)?;
    let mut refill: Vec<String> = current
        .as_ref()
        .map(|r| r.refill.clone())
        .unwrap_or_default();
    let restart = m.direction.pulls() && !added.is_empty();
    if restart {
        for a in added {
            if !refill.iter().any(|r| r.eq_ignore_ascii_case(a)) {
                refill.push(a.clone());
            }
        }
    }
    refill.retain(|r| m.columns.iter().any(|c| c.central.eq_ignore_ascii_case(r)));
    if current
        .as_ref()
        .is_some_and(|r| r.columns == m.columns && r.key == key && r.refill == refill)
    {
        return Ok(());
    }
    let vars = [
        ("tbl", sql::literal(&m.edge)),
        ("columns", json(serde_json::to_string(&m.columns))),
        ("key", json(serde_json::to_string(&key))),
        ("fingerprint", sql::literal(&schema_fingerprint(m))),
        (
            "refill",
            if refill.is_empty() {
                "NULL".to_string()
            } else {
                json(serde_json::to_string(&refill))
            },
        ),
        ("restart_pull", if restart { "1" } else { "0" }.to_string()),
    ];
    let mut stmts = schema::render(EDGE_RECORD_COLUMNS, &vars)?;
    if !restart {
        stmts.truncate(1);
    }
    out.extend(with_purpose(
        &format!("record the columns {} syncs", m.edge),
        stmts,
    ));
    Ok(())
}

/// A record part as a JSON string literal (these types always serialise).
fn json(text: serde_json::Result<String>) -> String {
    sql::literal(&text.unwrap_or_else(|_| "null".to_string()))
}

/// Local changes of `table` not acknowledged by the central.
pub(super) fn pending(conn: &Connection, table: &str) -> Result<i64> {
    let wm = push_wm(conn, table)?;
    let Some(actual) = schema::table_name(conn, table)? else {
        return Ok(0);
    };
    let has_ver = schema::table_columns(conn, &actual)?
        .iter()
        .any(|c| c.name.eq_ignore_ascii_case(names::COL_VER));
    let rows: i64 = if has_ver {
        conn.query_row(
            &format!(
                "SELECT count(*) FROM {} WHERE es_ver > ?1",
                sql::ident(&actual)
            ),
            [wm],
            |r| r.get(0),
        )
        .db_ctx(|| format!("counting pending changes of {table}"))?
    } else {
        0
    };
    let tombs: i64 = if schema::exists(conn, "table", "es_tombstones")? {
        conn.query_row(
            "SELECT count(*) FROM es_tombstones WHERE tbl = ?1 AND es_ver > ?2",
            params![table, wm],
            |r| r.get(0),
        )
        .db()?
    } else {
        0
    };
    Ok(rows + tombs)
}

fn evolve(conn: &mut Connection, path: &Path, node: &str, m: &TableMapping) -> Result<Evolved> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    let n = pending(&tx, &m.edge)?;
    if n > 0 {
        return Ok(Evolved::Pending(n));
    }
    let plan = super::provision::plan_init(&tx, path, node, std::slice::from_ref(m))?;
    for s in &plan {
        tx.execute_batch(&s.sql)
            .db_ctx(|| format!("table {}: {}", m.edge, s.purpose))?;
    }
    tx.commit().db()?;
    Ok(Evolved::Done(plan))
}

/// During a re-pull after columns were added (`es_schema.refill`): write
/// the added columns of `page`'s rows into the local rows still at the same
/// central version, which the ordinary apply skips as already there. `None`
/// when no re-pull is under way.
pub(super) fn refill(
    conn: &mut Connection,
    m: &TableMapping,
    page: &PullPage,
) -> Result<Option<usize>> {
    let Some(record) = read_record(conn, &m.edge)? else {
        return Ok(None);
    };
    let cols = positions(m, &record.refill);
    if cols.is_empty() {
        return Ok(None);
    }
    let rows: Vec<(
        &[edgesync_core::Value],
        &[edgesync_core::Value],
        Option<i64>,
    )> = page
        .changes
        .iter()
        .filter_map(|c| {
            c.values
                .as_deref()
                .map(|v| (c.key.as_slice(), v, Some(c.version)))
        })
        .collect();
    write_columns(conn, m, &cols, &rows).map(Some)
}

/// Indices in `m` of the columns with these central names.
fn positions(m: &TableMapping, names: &[String]) -> Vec<usize> {
    names
        .iter()
        .filter_map(|r| {
            m.columns
                .iter()
                .position(|c| c.central.eq_ignore_ascii_case(r))
        })
        .collect()
}

/// Write columns `cols` of full rows (`key`, values in mapping order) into
/// the clean local rows of those keys — with a version, only where the row
/// is still at that central version — in one apply transaction (nothing is
/// captured as a local change). How many rows were written.
fn write_columns(
    conn: &mut Connection,
    m: &TableMapping,
    cols: &[usize],
    rows: &[(
        &[edgesync_core::Value],
        &[edgesync_core::Value],
        Option<i64>,
    )],
) -> Result<usize> {
    let t = EdgeTable::new(m);
    let sets: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, &c)| format!("{} = ?{}", sql::ident(&m.columns[c].edge), i + 1))
        .collect();
    let n = cols.len();
    let k = t.key.len();
    // Only clean rows: a pending local change is the push's business.
    let update = format!(
        "UPDATE {} SET {} WHERE {} AND es_ver <= ?{} AND (?{} IS NULL OR es_cver = ?{})",
        t.q,
        sets.join(", "),
        sql::key_match_params(n + 1, &t.key),
        n + k + 1,
        n + k + 2,
        n + k + 2,
    );
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    begin_apply(&tx)?;
    let wm = push_wm(&tx, &m.edge)?;
    let mut written = 0;
    {
        let mut stmt = tx
            .prepare(&update)
            .db_ctx(|| format!("filling the new columns of {}", m.edge))?;
        for (key, values, version) in rows {
            if values.len() != m.columns.len() {
                return Err(Error::new(
                    ErrorKind::Schema,
                    format!(
                        "table {}: a central row has {} values, the mapping {} columns",
                        m.edge,
                        values.len(),
                        m.columns.len()
                    ),
                ));
            }
            let described = m.describe_key(key);
            let picked: Vec<edgesync_core::Value> =
                cols.iter().map(|&c| values[c].clone()).collect();
            let mut binds = types::bind_values(
                &m.edge,
                cols.iter()
                    .map(|&c| (m.columns[c].edge.as_str(), m.columns[c].edge_ty)),
                &picked,
                &described,
            )?;
            binds.extend(t.bind_key(key)?);
            binds.push(rusqlite::types::Value::Integer(wm));
            binds.push(version.map_or(
                rusqlite::types::Value::Null,
                rusqlite::types::Value::Integer,
            ));
            written += stmt
                .execute(params_from_iter(binds))
                .db_ctx(|| format!("table {}, key {described}: filling new columns", m.edge))?;
        }
    }
    end_apply(&tx, i64::MIN)?;
    tx.commit().db()?;
    Ok(written)
}

/// Keys of the clean rows of `m` whose columns `names` (central names) are
/// all NULL: the rows a column added on the central has no value for yet.
fn unfilled_keys(
    conn: &Connection,
    m: &TableMapping,
    names: &[String],
) -> Result<Vec<Vec<edgesync_core::Value>>> {
    let cols = positions(m, names);
    if cols.is_empty() {
        return Ok(Vec::new());
    }
    let t = EdgeTable::new(m);
    let wm = push_wm(conn, &m.edge)?;
    let nulls: Vec<String> = cols
        .iter()
        .map(|&c| format!("{} IS NULL", sql::ident(&m.columns[c].edge)))
        .collect();
    let keys = sql::column_list("", t.key.iter().map(|k| k.name.as_str()));
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {keys} FROM {} WHERE es_ver <= ?1 AND {}",
            t.q,
            nulls.join(" AND ")
        ))
        .db_ctx(|| format!("listing the rows of {} the new columns lack", m.edge))?;
    let mut rows = stmt.query([wm]).db()?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().db()? {
        let mut key = Vec::with_capacity(t.key.len());
        for (i, k) in t.key.iter().enumerate() {
            let v = r.get_ref(i).db()?;
            key.push(types::from_sql(v, k.ty).map_err(|why| {
                Error::value(format!("table {}, key column {}: {why}", m.edge, k.name))
            })?);
        }
        out.push(key);
    }
    Ok(out)
}

/// The re-pull that fetched the added columns of `table` is complete.
pub(super) fn end_refill(conn: &Connection, table: &str) -> Result<()> {
    conn.execute(
        "UPDATE es_schema SET refill = NULL WHERE tbl = ?1 COLLATE NOCASE",
        [table],
    )
    .db_ctx(|| format!("ending the re-pull of {table}"))?;
    Ok(())
}

impl EdgeDb {
    /// The column list recorded for `table` (`None`: provisioned before
    /// edgesync recorded it, or not provisioned).
    pub async fn synced_columns(&self, table: &str) -> Result<Option<SyncedColumns>> {
        let table = table.to_string();
        self.run(move |c| read_record(c, &table)).await
    }

    /// Is `table` provisioned in this file (the table exists with
    /// edgesync's columns, and the metadata is there)?
    pub async fn is_provisioned(&self, table: &str) -> Result<bool> {
        let table = table.to_string();
        self.run(move |c| {
            if !schema::exists(c, "table", "es_state")? {
                return Ok(false);
            }
            let Some(actual) = schema::table_name(c, &table)? else {
                return Ok(false);
            };
            Ok(schema::table_columns(c, &actual)?
                .iter()
                .any(|col| col.name.eq_ignore_ascii_case(names::COL_VER)))
        })
        .await
    }

    /// Keys of the clean rows of `m` whose columns `added` (central names)
    /// are all NULL (see [`EdgeDb::fill_columns`]).
    pub async fn unfilled_keys(
        &self,
        m: &TableMapping,
        added: &[String],
    ) -> Result<Vec<Vec<edgesync_core::Value>>> {
        let (m, added) = (m.clone(), added.to_vec());
        self.run(move |c| unfilled_keys(c, &m, &added)).await
    }

    /// Write columns `added` (central names) of the central's current rows
    /// (`(key, values in mapping order)`) into the clean local rows of those
    /// keys. For rows a re-pull does not deliver: those whose last write was
    /// this node's own push. Returns how many rows were written.
    pub async fn fill_columns(
        &self,
        m: &TableMapping,
        added: &[String],
        rows: &[(Vec<edgesync_core::Value>, Vec<edgesync_core::Value>)],
    ) -> Result<usize> {
        let (m, added, rows) = (m.clone(), added.to_vec(), rows.to_vec());
        self.run(move |c| {
            let cols = positions(&m, &added);
            let rows: Vec<_> = rows
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice(), None))
                .collect();
            write_columns(c, &m, &cols, &rows)
        })
        .await
    }

    /// Bring `m`'s table to `m`'s column list, as `init-sync` would (added
    /// columns, triggers, views, the record, a restarted pull), in one
    /// transaction — unless the table has local changes not pushed yet, in
    /// which case nothing changes.
    pub async fn evolve(&self, node: &str, m: &TableMapping) -> Result<Evolved> {
        let (node, m, path) = (node.to_string(), m.clone(), self.path().to_path_buf());
        self.run(move |c| evolve(c, &path, &node, &m)).await
    }
}

#[cfg(test)]
mod tests {
    use edgesync_core::{
        Change, ColType, ConflictPolicy, DeleteMode, Direction, QualifiedName, Value,
    };

    use super::*;

    fn col(name: &str, ty: ColType) -> ColumnMap {
        ColumnMap {
            edge: name.into(),
            central: name.into(),
            ty,
            edge_ty: ty,
            nullable: true,
        }
    }

    fn items(extra: bool) -> TableMapping {
        let mut columns = vec![
            col("id", ColType::Int),
            col("name", ColType::Text { max_len: None }),
        ];
        if extra {
            columns.push(col("note", ColType::Text { max_len: None }));
        }
        TableMapping {
            edge: "items".into(),
            central: QualifiedName::parse("items"),
            columns,
            key: vec![0],
            direction: Direction::Both,
            conflict: ConflictPolicy::ServerWins,
            deletes: DeleteMode::Soft,
        }
    }

    fn provisioned() -> (tempfile::TempDir, Connection, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.db");
        let mut conn = crate::worker::open_file(&path).expect("open");
        let plan =
            super::super::provision::plan_init(&conn, &path, "n", &[items(false)]).expect("plan");
        crate::schema::execute(&mut conn, &plan).expect("provision");
        // Two rows synced at central versions 5 and 6.
        conn.execute_batch(
            "UPDATE es_ctl SET applying = 1;
             INSERT INTO items (id, name, es_ver, es_cver) VALUES (1, 'a', 0, 5), (2, 'b', 0, 6);
             UPDATE es_ctl SET applying = 0;
             INSERT INTO es_state (tbl, pull_token, pull_done) VALUES ('items', '{\"v\": 6}', 1);",
        )
        .expect("rows");
        (dir, conn, path)
    }

    fn row(id: i64, note: &str, version: i64) -> Change {
        Change {
            key: vec![Value::Int(id)],
            values: Some(vec![
                Value::Int(id),
                Value::Text("x".into()),
                Value::Text(note.into()),
            ]),
            deleted: false,
            version,
            base: None,
            hlc: 1,
        }
    }

    #[test]
    fn init_records_the_columns_and_a_second_plan_is_empty() {
        let (_dir, conn, path) = provisioned();
        let record = read_record(&conn, "items")
            .expect("read")
            .expect("recorded");
        assert_eq!(record.columns, items(false).columns);
        assert_eq!(record.key, ["id"]);
        let again =
            super::super::provision::plan_init(&conn, &path, "n", &[items(false)]).expect("plan");
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn an_added_column_is_added_with_new_triggers_a_record_and_a_restarted_pull() {
        let (_dir, mut conn, path) = provisioned();
        let m = items(true);
        match evolve(&mut conn, &path, "n", &m).expect("evolve") {
            Evolved::Done(stmts) => {
                let sql: Vec<&str> = stmts.iter().map(|s| s.sql.as_str()).collect();
                assert!(
                    sql.iter()
                        .any(|s| s.contains("ALTER TABLE \"items\" ADD COLUMN \"note\" TEXT")),
                    "{sql:?}"
                );
                assert!(sql.iter().any(|s| s.contains("DROP TRIGGER")), "{sql:?}");
            }
            other => panic!("{other:?}"),
        }
        let record = read_record(&conn, "items")
            .expect("read")
            .expect("recorded");
        assert_eq!(record.columns, m.columns);
        assert_eq!(record.refill, ["note"]);
        let token: Option<String> = conn
            .query_row(
                "SELECT pull_token FROM es_state WHERE tbl = 'items'",
                [],
                |r| r.get(0),
            )
            .expect("token");
        assert_eq!(token, None);
        // The rebuilt triggers capture a write to the new column.
        conn.execute_batch("UPDATE items SET note = 'local' WHERE id = 2;")
            .expect("write");
        assert_eq!(pending(&conn, "items").expect("pending"), 1);
        // Refill: only the clean row still at the page's version.
        let page = PullPage {
            changes: vec![row(1, "n1", 5), row(2, "n2", 6)],
            token: "t".into(),
            done: true,
            fingerprint: None,
        };
        assert_eq!(refill(&mut conn, &m, &page).expect("refill"), Some(1));
        let notes: Vec<(i64, Option<String>)> = conn
            .prepare("SELECT id, note FROM items ORDER BY id")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(
            notes,
            [(1, Some("n1".to_string())), (2, Some("local".to_string()))]
        );
        // Refilling captured nothing.
        assert_eq!(pending(&conn, "items").expect("pending"), 1);
    }

    #[test]
    fn nothing_is_altered_while_local_changes_are_pending() {
        let (_dir, mut conn, path) = provisioned();
        conn.execute_batch("UPDATE items SET name = 'mine' WHERE id = 1;")
            .expect("write");
        assert_eq!(
            evolve(&mut conn, &path, "n", &items(true)).expect("evolve"),
            Evolved::Pending(1)
        );
        assert!(schema::table_columns(&conn, "items")
            .expect("columns")
            .iter()
            .all(|c| c.name != "note"));
        // init-sync says why instead of adding the column under them.
        let e = super::super::provision::plan_init(&conn, &path, "n", &[items(true)])
            .expect_err("refused");
        assert!(e.to_string().contains("not pushed yet"), "{e}");
    }
}
