//! Provisioning: the statements of `schemas/postgres/*.sql`, filled with
//! quoted names and filtered down to what the catalog says is missing (or, for
//! deinit, present), so a second `init-sync` plans nothing. Each template
//! statement is preceded by a `-- step: id | purpose` line; the id says which
//! catalog object the statement is about, the purpose is shown to the DBA.

use std::collections::HashMap;

use edgesync_core::central::Statement;
use edgesync_core::{template, DeleteMode, Error, QualifiedName, Result, TableMapping};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use crate::error::ctx;
use crate::schema::{
    check_unique_key, column_types, find_table, function_source, mapped_types, relation_exists,
    triggers_of, META_COLUMNS,
};
use crate::sql::{self, ident, literal};

const INIT_SHARED: &str = include_str!("../../../schemas/postgres/init_shared.sql");
const INIT_TABLE: &str = include_str!("../../../schemas/postgres/init_table.sql");
const DEINIT_SHARED: &str = include_str!("../../../schemas/postgres/deinit_shared.sql");
const DEINIT_TABLE: &str = include_str!("../../../schemas/postgres/deinit_table.sql");

/// The triggers edgesync puts on every synced table (trigger names are per
/// table in PostgreSQL, so they need no table suffix).
const TRIGGERS: [(&str, &str); 2] = [
    ("before_trigger", "es_before"),
    ("after_trigger", "es_after"),
];

/// What the current row triggers' `WHEN` clause holds: a trigger without it
/// (made by an older edgesync, which had none) is dropped and re-created.
const TRIGGER_GUARD: &str = "pg_trigger_depth()";

/// The kind (`es_<kind>_<schema>_<table>`) of the `(es_txid, <key>)` index
/// pulls page through (`pull.rs`).
const PULL_INDEX: &str = "pull";

/// The kind of the `(es_txid)`-only index an older edgesync made; the pull
/// index replaces it (its leading column serves every query the old one did).
const OLD_TXID_INDEX: &str = "txid";

/// The conflict-log columns added after the first release (the
/// `conflicts_columns` step adds them to an older log).
const CONFLICT_COLUMNS: [&str; 3] = ["base_json", "resolved_at", "kept"];

/// One statement of a template, with the `-- step: id | purpose` header that
/// precedes it.
pub(crate) struct Step {
    pub(crate) id: String,
    pub(crate) purpose: String,
    pub(crate) sql: String,
}

impl Step {
    pub(crate) fn statement(self) -> Statement {
        Statement {
            purpose: self.purpose,
            sql: self.sql,
        }
    }
}

/// Render `template` and split it into its steps.
pub(crate) fn steps(template_text: &str, vars: &[(&str, &str)]) -> Result<Vec<Step>> {
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

/// The template variables for one table.
fn table_vars(table: &TableMapping, natives: &[String]) -> Vec<(&'static str, String)> {
    let q = &table.central;
    let key_old: Vec<String> = sql::key_columns(table, Some("OLD"));
    let key_new: Vec<String> = sql::key_columns(table, Some("NEW"));
    let key_plain = sql::key_columns(table, None);
    let key_match_old = key_plain
        .iter()
        .zip(&key_old)
        .map(|(c, o)| format!("{c} = {o}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    vec![
        ("table", sql::table_ref(q)),
        ("table_name", sql::tbl_id(q)),
        ("schema", ident(sql::schema_of(q))),
        ("schema_name", sql::schema_of(q).to_string()),
        ("seq", literal(&sql::meta(q, "es_version"))),
        ("tbl", literal(&sql::tbl_id(q))),
        (
            "before_fn",
            sql::qualified(sql::schema_of(q), &sql::object_name("before", q)),
        ),
        (
            "after_fn",
            sql::qualified(sql::schema_of(q), &sql::object_name("after", q)),
        ),
        ("pull_index", ident(&sql::object_name(PULL_INDEX, q))),
        ("txid_index", ident(&sql::object_name(OLD_TXID_INDEX, q))),
        ("key_columns", key_plain.join(", ")),
        ("key_match_old", key_match_old),
        ("key_json_old", sql::key_json(table, natives, "OLD")),
        ("key_json_new", sql::key_json(table, natives, "NEW")),
        (
            "key_changed",
            format!(
                "({}) IS DISTINCT FROM ({})",
                key_old.join(", "),
                key_new.join(", ")
            ),
        ),
        ("soft", (table.deletes == DeleteMode::Soft).to_string()),
    ]
}

fn shared_vars(schema: &str) -> Vec<(&'static str, String)> {
    vec![
        ("schema", ident(schema)),
        ("schema_name", schema.to_string()),
    ]
}

fn as_refs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The body between the `$es$` quotes of a rendered function statement.
pub(crate) fn function_body(sql: &str) -> Option<&str> {
    let start = sql.find("$es$")? + 4;
    let end = sql.rfind("$es$")?;
    sql.get(start..end)
}

/// The distinct schemas of `tables`, in order.
fn schemas(tables: &[TableMapping]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tables {
        let s = sql::schema_of(&t.central).to_string();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The shared object each step of the shared templates is about.
fn shared_object(step: &str) -> &str {
    match step {
        "sequence" => "es_version",
        "nodes" => "es_nodes",
        "tombstones" => "es_tombstones",
        "tombstones_pull" => "es_tombstones_pull",
        "pulls" => "es_pulls",
        "purged" => "es_purged",
        _ => "es_conflicts",
    }
}

/// `plan_init` for the trait.
pub async fn plan_init(pool: &PgPool, tables: &[TableMapping]) -> Result<Vec<Statement>> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(ctx("connecting to PostgreSQL"))?;
    let mut out = Vec::new();
    for schema in schemas(tables) {
        for step in steps(INIT_SHARED, &as_refs(&shared_vars(&schema)))? {
            let missing = if step.id == "conflicts_columns" {
                // Only for a conflict log an older edgesync created.
                let log = QualifiedName {
                    schema: Some(schema.clone()),
                    name: "es_conflicts".into(),
                };
                match find_table(&mut conn, &log).await? {
                    Some(found) => {
                        let cols = column_types(&mut conn, found.oid).await?;
                        CONFLICT_COLUMNS.iter().any(|c| !cols.contains_key(*c))
                    }
                    None => false,
                }
            } else if step.id == "tombstones_txid_old" {
                // Dropped where an older edgesync left it.
                relation_exists(&mut conn, &schema, "es_tombstones_txid").await?
            } else {
                !relation_exists(&mut conn, &schema, shared_object(&step.id)).await?
            };
            if missing {
                out.push(step.statement());
            }
        }
    }
    for table in tables {
        let q = &table.central;
        let found = find_table(&mut conn, q)
            .await?
            .ok_or_else(|| Error::schema(format!("central table {q} does not exist")))?;
        let types = column_types(&mut conn, found.oid).await?;
        let natives = mapped_types(table, &types)?;
        check_unique_key(&mut conn, table, found.oid).await?;
        let schema = sql::schema_of(q);
        let triggers = trigger_defs(&mut conn, found.oid).await?;
        // A trigger is up to date when it exists with the current guard.
        let current = |name: &str| {
            triggers
                .iter()
                .any(|(n, def)| n == name && def.contains(TRIGGER_GUARD))
        };
        let vars = table_vars(table, &natives);
        for step in steps(INIT_TABLE, &as_refs(&vars))? {
            let missing = match step.id.as_str() {
                "columns" => META_COLUMNS.iter().any(|c| !types.contains_key(*c)),
                "pull_index" => {
                    !relation_exists(&mut conn, schema, &sql::object_name(PULL_INDEX, q)).await?
                }
                // Dropped once the pull index exists (both are in one
                // transaction, so the table is never without either).
                "txid_index_old" => {
                    relation_exists(&mut conn, schema, &sql::object_name(OLD_TXID_INDEX, q)).await?
                }
                "before_fn" | "after_fn" => {
                    let kind = step.id.trim_end_matches("_fn");
                    let current =
                        function_source(&mut conn, schema, &sql::object_name(kind, q)).await?;
                    current.as_deref() != function_body(&step.sql)
                }
                // An older version of the trigger is dropped first.
                id if id.ends_with("_old") => {
                    let step = id.trim_end_matches("_old");
                    TRIGGERS.iter().any(|&(s, n)| {
                        s == step && triggers.iter().any(|(t, _)| t == n) && !current(n)
                    })
                }
                id => {
                    let name = TRIGGERS.iter().find(|(s, _)| *s == id).map(|(_, n)| *n);
                    !name.is_some_and(current)
                }
            };
            if missing {
                out.push(step.statement());
            }
        }
    }
    out.extend(crate::notify::plan_init(&mut conn, tables).await?);
    out.extend(crate::hub::plan_init(&mut conn).await?);
    Ok(out)
}

/// `plan_deinit` for the trait.
pub async fn plan_deinit(
    pool: &PgPool,
    tables: &[TableMapping],
    all: bool,
) -> Result<Vec<Statement>> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(ctx("connecting to PostgreSQL"))?;
    let mut out = Vec::new();
    for table in tables {
        let q = &table.central;
        let schema = sql::schema_of(q);
        let found = find_table(&mut conn, q).await?;
        let (types, triggers) = match &found {
            Some(f) => (
                column_types(&mut conn, f.oid).await?,
                triggers_of(&mut conn, f.oid).await?,
            ),
            None => (HashMap::new(), Vec::new()),
        };
        // Natives only matter for trigger bodies, which are not rendered here.
        let natives = vec![String::from("text"); table.columns.len()];
        let vars = table_vars(table, &natives);
        for step in steps(DEINIT_TABLE, &as_refs(&vars))? {
            let present = match step.id.as_str() {
                "columns" => META_COLUMNS.iter().any(|c| types.contains_key(*c)),
                "pull_index" => {
                    relation_exists(&mut conn, schema, &sql::object_name(PULL_INDEX, q)).await?
                }
                "txid_index" => {
                    relation_exists(&mut conn, schema, &sql::object_name(OLD_TXID_INDEX, q)).await?
                }
                "before_fn" | "after_fn" => {
                    let kind = step.id.trim_end_matches("_fn");
                    function_source(&mut conn, schema, &sql::object_name(kind, q))
                        .await?
                        .is_some()
                }
                "nodes" | "tombstones" => {
                    let object = shared_object(&step.id);
                    !all && relation_exists(&mut conn, schema, object).await?
                        && has_rows(&mut conn, &sql::meta(q, object), &sql::tbl_id(q)).await?
                }
                id => {
                    let name = TRIGGERS.iter().find(|(s, _)| *s == id).map(|(_, n)| *n);
                    name.is_some_and(|n| triggers.iter().any(|t| t == n))
                }
            };
            if present {
                out.push(step.statement());
            }
        }
    }
    out.extend(crate::notify::plan_deinit(&mut conn, tables, all).await?);
    if all {
        for schema in schemas(tables) {
            for step in steps(DEINIT_SHARED, &as_refs(&shared_vars(&schema)))? {
                if relation_exists(&mut conn, &schema, shared_object(&step.id)).await? {
                    out.push(step.statement());
                }
            }
        }
        out.extend(crate::hub::plan_deinit(&mut conn).await?);
    }
    Ok(out)
}

/// `(name, pg_get_triggerdef)` of the table's own triggers.
async fn trigger_defs(conn: &mut PgConnection, oid: i64) -> Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT tgname::text, pg_get_triggerdef(oid) FROM pg_trigger
          WHERE tgrelid = $1::bigint::oid AND NOT tgisinternal",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(ctx("reading triggers"))
}

async fn has_rows(conn: &mut PgConnection, meta_table: &str, tbl: &str) -> Result<bool> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM {meta_table} WHERE tbl = $1)"
    )))
    .bind(tbl)
    .fetch_one(&mut *conn)
    .await
    .map_err(ctx(format!("reading {meta_table}")))
}

/// `execute` for the trait: every statement in one transaction.
pub async fn execute(pool: &PgPool, statements: &[Statement]) -> Result<()> {
    let mut tx = pool
        .begin()
        .await
        .map_err(ctx("starting the provisioning transaction"))?;
    // DDL waiting for a lock blocks every later query on the table: rather
    // fail (retryably) than stall the application.
    sqlx::query("SELECT set_config('lock_timeout', '10s', true)")
        .execute(&mut *tx)
        .await
        .map_err(ctx("setting the lock timeout"))?;
    for s in statements {
        sqlx::raw_sql(AssertSqlSafe(s.sql.clone()))
            .execute(&mut *tx)
            .await
            .map_err(ctx(format!("{} (nothing was changed)", s.purpose)))?;
    }
    tx.commit()
        .await
        .map_err(ctx("committing the provisioning transaction"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_step_has_a_header_and_one_statement() {
        let shared = shared_vars("public");
        for t in [INIT_SHARED, DEINIT_SHARED] {
            let s = steps(t, &as_refs(&shared)).expect("steps");
            assert!(s.iter().all(|s| !s.purpose.is_empty()));
            assert_eq!(s.len(), if t == INIT_SHARED { 9 } else { 6 });
        }
    }
}
