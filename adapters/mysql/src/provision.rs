//! Provisioning: the statements of `schemas/mysql/*.sql`, filled with quoted
//! names and filtered down to what the catalog says is missing (or, for
//! deinit, present), so a second `init-sync` plans nothing. Each template
//! statement is preceded by a `-- step: id | purpose` line; the id says which
//! catalog object the statement is about, the purpose is shown to the DBA.
//!
//! MySQL DDL is not transactional (each statement commits on its own), so
//! the plan is ordered for completion rather than atomicity: shared tables,
//! then columns, the index and the triggers that use them. A failure midway
//! leaves a prefix applied, and running the plan again (which re-reads the
//! catalog) finishes it. Every purpose says so.

use std::collections::HashMap;

use edgesync_core::central::Statement;
use edgesync_core::{template, Error, ErrorKind, Result, TableMapping};
use mysql_async::prelude::Queryable;
use mysql_async::Pool;

use crate::error::{ctx, describe, kind_of};
use crate::schema::{
    self, check_key_collations, check_unique_key, find_table, index_exists, table_exists,
    triggers_of, ColInfo,
};
use crate::sql::{self, ident, literal, Db};

const INIT_SHARED: &str = include_str!("../../../schemas/mysql/init_shared.sql");
const INIT_TABLE: &str = include_str!("../../../schemas/mysql/init_table.sql");
const DEINIT_SHARED: &str = include_str!("../../../schemas/mysql/deinit_shared.sql");
const DEINIT_TABLE: &str = include_str!("../../../schemas/mysql/deinit_table.sql");

/// The five triggers: step id (also the object-name kind) of each.
const TRIGGERS: [&str; 5] = ["trg_bi", "trg_bu", "trg_ai", "trg_au", "trg_ad"];

/// Appended to every purpose: the DBA reading a dry run must know a failed
/// run is not rolled back.
const NOT_TRANSACTIONAL: &str =
    " (commits on its own: MySQL DDL is not transactional; re-running completes a partial run)";

/// One statement of a template, with the `-- step: id | purpose` header that
/// precedes it.
struct Step {
    id: String,
    purpose: String,
    sql: String,
}

impl Step {
    fn statement(self) -> Statement {
        Statement {
            purpose: format!("{}{NOT_TRANSACTIONAL}", self.purpose),
            sql: self.sql,
        }
    }
}

/// Render `template` and split it into its steps.
fn steps(template_text: &str, vars: &[(&str, &str)]) -> Result<Vec<Step>> {
    let rendered = template::render(template_text, vars)?;
    let mut out = Vec::new();
    for chunk in rendered.split("\n;;") {
        let mut stmts = template::statements(chunk);
        if stmts.is_empty() {
            continue;
        }
        let header = chunk
            .lines()
            .find_map(|l| l.trim().strip_prefix("-- step:"))
            .ok_or_else(|| Error::internal("SQL template statement without a step header"))?;
        let (id, purpose) = header.split_once('|').unwrap_or((header, header));
        if stmts.len() != 1 {
            return Err(Error::internal(format!(
                "SQL template step {id} holds more than one statement"
            )));
        }
        out.push(Step {
            id: id.trim().to_string(),
            purpose: purpose.trim().to_string(),
            sql: stmts.remove(0),
        });
    }
    Ok(out)
}

/// The trigger name (unquoted) of step `id` for a table.
fn trigger_name(db: &Db, table: &TableMapping, id: &str) -> String {
    db.object_name(id.trim_start_matches("trg_"), &table.central)
}

/// The template variables for one table.
fn table_vars(db: &Db, table: &TableMapping) -> Vec<(&'static str, String)> {
    let q = &table.central;
    let schema = db.schema_of(q);
    let cols = |alias: &str| -> Vec<String> {
        table
            .key_columns()
            .map(|c| format!("{alias}.{}", ident(&c.central)))
            .collect()
    };
    let mut vars = vec![
        ("table", db.table_ref(q)),
        ("table_name", db.tbl_id(q)),
        ("tbl", literal(&db.tbl_id(q))),
        ("tombstones", db.meta("es_tombstones")),
        ("nodes", db.meta("es_nodes")),
        ("key_json_old", sql::key_json(table, &cols("OLD"))),
        ("key_json_new", sql::key_json(table, &cols("NEW"))),
    ];
    for id in TRIGGERS {
        vars.push((id, sql::qualified(schema, &trigger_name(db, table, id))));
    }
    vars
}

fn shared_vars(db: &Db) -> Vec<(&'static str, String)> {
    vec![("db", ident(&db.default)), ("db_name", db.default.clone())]
}

fn as_refs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The body of a rendered `CREATE TRIGGER` (what `ACTION_STATEMENT` holds).
fn trigger_body(sql: &str) -> Option<&str> {
    let start = sql.find("FOR EACH ROW")? + "FOR EACH ROW".len();
    sql.get(start..).map(str::trim)
}

/// The shared table each shared step is about.
fn shared_object(step: &str) -> &str {
    match step {
        "ctl" | "ctl_row" => "es_ctl",
        "nodes" => "es_nodes",
        "tombstones" => "es_tombstones",
        "pulls" => "es_pulls",
        "purged" => "es_purged",
        _ => "es_conflicts",
    }
}

/// `plan_init` for the trait.
pub async fn plan_init(
    pool: &Pool,
    db: &Db,
    mariadb: bool,
    tables: &[TableMapping],
) -> Result<Vec<Statement>> {
    let mut conn = pool.get_conn().await.map_err(ctx("connecting to MySQL"))?;
    let mut out = Vec::new();
    // Check every table first: a plan for a table that cannot be synced is
    // refused whole, before anything is proposed.
    let mut per_table = Vec::new();
    for table in tables {
        let q = &table.central;
        let found = find_table(&mut conn, db, q)
            .await?
            .ok_or_else(|| Error::schema(format!("central table {q} does not exist")))?;
        let cols = schema::columns(&mut conn, &found, mariadb).await?;
        let by_name: HashMap<&str, &ColInfo> = cols.iter().map(|c| (c.name.as_str(), c)).collect();
        schema::mapped(table, &by_name)?;
        check_unique_key(&mut conn, &found, table).await?;
        check_key_collations(table, &by_name)?;
        let present: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
        per_table.push((table, found, present));
    }
    for step in steps(INIT_SHARED, &as_refs(&shared_vars(db)))? {
        let object = shared_object(&step.id);
        let exists = table_exists(&mut conn, &db.default, object).await?;
        let missing = if step.id == "ctl_row" {
            !exists
                || conn
                    .query_first::<u64, _>(format!(
                        "SELECT COUNT(*) FROM {} WHERE id = 1",
                        db.meta("es_ctl")
                    ))
                    .await
                    .map_err(ctx("reading es_ctl"))?
                    .unwrap_or(0)
                    == 0
        } else {
            !exists
        };
        if missing {
            out.push(step.statement());
        }
    }
    out.extend(crate::hub::plan_init(&mut conn, db).await?);
    for (table, found, present) in per_table {
        let triggers = triggers_of(&mut conn, &found).await?;
        let vars = table_vars(db, table);
        for step in steps(INIT_TABLE, &as_refs(&vars))? {
            match step.id.as_str() {
                id if id.starts_with("col_") => {
                    let col = &id["col_".len()..];
                    if !present.iter().any(|c| c == col) {
                        out.push(step.statement());
                    }
                }
                "ver_index" => {
                    if !index_exists(&mut conn, &found, "es_ver").await? {
                        out.push(step.statement());
                    }
                }
                id => {
                    let name = trigger_name(db, table, id);
                    match triggers.iter().find(|(n, _)| *n == name) {
                        None => out.push(step.statement()),
                        Some((_, body)) if Some(body.trim()) != trigger_body(&step.sql) => {
                            out.push(Statement {
                                purpose: format!(
                                    "drop out-of-date trigger {name} of {} to recreate it (a write between this and the next statement is not captured){NOT_TRANSACTIONAL}",
                                    db.tbl_id(&table.central)
                                ),
                                sql: format!(
                                    "DROP TRIGGER {}",
                                    sql::qualified(&found.schema, &name)
                                ),
                            });
                            out.push(step.statement());
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `plan_deinit` for the trait.
pub async fn plan_deinit(
    pool: &Pool,
    db: &Db,
    mariadb: bool,
    tables: &[TableMapping],
    all: bool,
) -> Result<Vec<Statement>> {
    let mut conn = pool.get_conn().await.map_err(ctx("connecting to MySQL"))?;
    let mut out = Vec::new();
    for table in tables {
        let found = find_table(&mut conn, db, &table.central).await?;
        let (present, triggers, index) = match &found {
            Some(f) => (
                schema::columns(&mut conn, f, mariadb)
                    .await?
                    .into_iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>(),
                triggers_of(&mut conn, f).await?,
                index_exists(&mut conn, f, "es_ver").await?,
            ),
            None => (Vec::new(), Vec::new(), false),
        };
        let vars = table_vars(db, table);
        for step in steps(DEINIT_TABLE, &as_refs(&vars))? {
            let wanted = match step.id.as_str() {
                id if id.starts_with("col_") => present.iter().any(|c| c == &id["col_".len()..]),
                "ver_index" => index,
                "nodes" | "tombstones" => {
                    let object = shared_object(&step.id);
                    !all && table_exists(&mut conn, &db.default, object).await?
                        && has_rows(&mut conn, &db.meta(object), &db.tbl_id(&table.central)).await?
                }
                id => {
                    let name = trigger_name(db, table, id);
                    triggers.iter().any(|(n, _)| *n == name)
                }
            };
            if wanted {
                out.push(step.statement());
            }
        }
    }
    if all {
        out.extend(crate::hub::plan_deinit(&mut conn, db).await?);
        for step in steps(DEINIT_SHARED, &as_refs(&shared_vars(db)))? {
            if table_exists(&mut conn, &db.default, shared_object(&step.id)).await? {
                out.push(step.statement());
            }
        }
    }
    Ok(out)
}

async fn has_rows(conn: &mut mysql_async::Conn, meta_table: &str, tbl: &str) -> Result<bool> {
    let n: Option<u64> = conn
        .exec_first(
            format!("SELECT COUNT(*) FROM (SELECT 1 FROM {meta_table} WHERE tbl = ? LIMIT 1) AS x"),
            (tbl,),
        )
        .await
        .map_err(ctx(format!("reading {meta_table}")))?;
    Ok(n.unwrap_or(0) > 0)
}

/// `execute` for the trait: the statements in order, each committing on its
/// own. A failure names the statement and says what was already applied.
pub async fn execute(pool: &Pool, statements: &[Statement]) -> Result<()> {
    let mut conn = pool.get_conn().await.map_err(ctx("connecting to MySQL"))?;
    for (done, s) in statements.iter().enumerate() {
        // Text protocol: CREATE TRIGGER cannot be a prepared statement.
        if let Err(e) = conn.query_drop(s.sql.as_str()).await {
            let kind = match kind_of(&e) {
                ErrorKind::Database => ErrorKind::Schema,
                k => k,
            };
            let applied = if done == 0 {
                "nothing was changed".to_string()
            } else {
                format!(
                    "the {done} statement(s) before it were applied and stay (MySQL DDL is not transactional); \
                     fix the cause and run the command again: it plans only what is still missing"
                )
            };
            return Err(
                Error::new(kind, format!("{}: {}; {applied}", s.purpose, describe(&e)))
                    .with_source(e),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_step_has_a_header_and_one_statement() {
        let db = Db {
            default: "main".into(),
        };
        let shared = shared_vars(&db);
        assert_eq!(
            steps(INIT_SHARED, &as_refs(&shared)).expect("steps").len(),
            7
        );
        assert_eq!(
            steps(DEINIT_SHARED, &as_refs(&shared))
                .expect("steps")
                .len(),
            6
        );
        let t = TableMapping {
            edge: "t".into(),
            central: edgesync_core::QualifiedName::parse("t"),
            columns: vec![edgesync_core::ColumnMap {
                edge: "id".into(),
                central: "id".into(),
                ty: edgesync_core::ColType::Int,
                edge_ty: edgesync_core::ColType::Int,
                nullable: false,
            }],
            key: vec![0],
            direction: edgesync_core::Direction::Both,
            conflict: edgesync_core::ConflictPolicy::ServerWins,
            deletes: edgesync_core::DeleteMode::Hard,
        };
        let vars = table_vars(&db, &t);
        let init = steps(INIT_TABLE, &as_refs(&vars)).expect("steps");
        // four triggers: no AFTER INSERT trigger (see trg_ai's note in
        // deinit_table.sql and the tombstone query in pull.rs)
        assert_eq!(init.len(), 10);
        assert!(init.iter().all(|s| s.id != "trg_ai"));
        assert!(init.iter().all(|s| !s.purpose.is_empty()));
        let trg = init.iter().find(|s| s.id == "trg_ad").expect("trg_ad");
        assert!(
            trg.sql.starts_with("CREATE TRIGGER `main`.`es_ad_main_t`"),
            "{}",
            trg.sql
        );
        assert!(trigger_body(&trg.sql).expect("body").starts_with("BEGIN"));
        assert_eq!(
            steps(DEINIT_TABLE, &as_refs(&vars)).expect("steps").len(),
            13
        );
    }
}
