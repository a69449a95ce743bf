//! Provisioning: the statements of `schemas/mssql/*.sql`, filled with quoted
//! names and filtered down to what the catalog says is missing (or, for
//! deinit, present), so a second `init-sync` plans nothing. Each template
//! statement is preceded by a `-- step: id | purpose` line; the id says which
//! catalog object the statement is about, the purpose is shown to the DBA.
//!
//! Rendering needs no connection ([`render_init`], [`render_deinit`]): the
//! statements depend only on the mapping. That is what `init-sync --dry-run`
//! shows for a database it cannot reach, and what the golden files pin.

use edgesync_core::central::Statement;
use edgesync_core::{template, DeleteMode, Error, ErrorKind, QualifiedName, Result, TableMapping};

use crate::connection::{Conn, Pool};
use crate::schema::{self, check_unique_key, columns, find_table, indexes_of, META_COLUMNS};
use crate::sql::{self, ident, literal, qualified};

const INIT_SHARED: &str = include_str!("../../../schemas/mssql/init_shared.sql");
const INIT_TABLE: &str = include_str!("../../../schemas/mssql/init_table.sql");
const DEINIT_SHARED: &str = include_str!("../../../schemas/mssql/deinit_shared.sql");
const DEINIT_TABLE: &str = include_str!("../../../schemas/mssql/deinit_table.sql");

/// Where the fingerprint of a trigger goes while it is being computed.
const FINGERPRINT_SLOT: &str = "%%fingerprint%%";

/// The per-table triggers: step id and the `object_name` kind.
const TRIGGERS: [(&str, &str); 3] = [
    ("trg_write", "trg_w"),
    ("trg_delete", "trg_d"),
    ("trg_soft", "trg_s"),
];

/// One statement of a template, with the `-- step: id | purpose` header that
/// precedes it.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub id: String,
    pub purpose: String,
    pub sql: String,
}

impl Step {
    fn statement(self) -> Statement {
        Statement {
            purpose: self.purpose,
            sql: self.sql,
        }
    }

    /// The `edgesync <hash>` marker a trigger carries.
    fn marker(&self) -> Option<String> {
        let start = self.sql.find("/* edgesync ")? + 3;
        let end = start + self.sql[start..].find(" */")?;
        Some(self.sql[start..end].to_string())
    }
}

/// Render `template` and split it into its steps. Trigger bodies get the
/// fingerprint of their own text, so an outdated trigger is recognised.
pub(crate) fn steps(template_text: &str, vars: &[(&str, &str)]) -> Result<Vec<Step>> {
    let mut vars = vars.to_vec();
    vars.push(("fingerprint", FINGERPRINT_SLOT));
    let rendered = template::render(template_text, &vars)?;
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
        let mut sql = stmts.remove(0);
        if sql.contains(FINGERPRINT_SLOT) {
            let fp = sql::fingerprint(&sql);
            sql = sql.replace(FINGERPRINT_SLOT, &fp);
        }
        out.push(Step {
            id: id.trim().to_string(),
            purpose: purpose.trim().to_string(),
            sql,
        });
    }
    Ok(out)
}

/// The template variables for one table.
pub(crate) fn table_vars(table: &TableMapping) -> Vec<(&'static str, String)> {
    let q = &table.central;
    let schema = sql::schema_of(q);
    let col = |alias: &'static str| {
        move |i: usize| format!("{alias}.{}", ident(&table.columns[i].central))
    };
    let obj = |kind: &str| qualified(schema, &sql::object_name(kind, q));
    vec![
        ("table", sql::table_ref(q)),
        ("table_name", sql::tbl_id(q)),
        ("schema", ident(schema)),
        ("schema_name", schema.to_string()),
        ("tbl", literal(&sql::tbl_id(q))),
        ("trg_write", obj("trg_w")),
        ("trg_delete", obj("trg_d")),
        ("trg_soft", obj("trg_s")),
        ("ver_index", ident(&sql::object_name("ver", q))),
        ("df_deleted", ident(&sql::object_name("df_deleted", q))),
        ("df_hlc", ident(&sql::object_name("df_hlc", q))),
        ("key_match_t_i", sql::key_match(table, "t", col("i"))),
        ("key_match_t_d", sql::key_match(table, "t", col("d"))),
        ("key_match_d_i", sql::key_match(table, "d", col("i"))),
        ("key_json_i", sql::key_json(table, col("i"))),
        ("key_json_d", sql::key_json(table, col("d"))),
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

/// Does a step apply to this table at all? (The soft-delete trigger only to
/// soft-delete tables.)
fn applies(step: &Step, table: &TableMapping) -> bool {
    step.id != "trg_soft" || table.deletes == DeleteMode::Soft
}

/// Every statement `init-sync` runs on a database that has nothing yet: the
/// plan `--dry-run` shows when the server is out of reach. No connection.
pub fn render_init(tables: &[TableMapping]) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for schema in schemas(tables) {
        out.extend(
            steps(INIT_SHARED, &as_refs(&shared_vars(&schema)))?
                .into_iter()
                .map(Step::statement),
        );
    }
    for table in tables {
        let vars = table_vars(table);
        out.extend(
            steps(INIT_TABLE, &as_refs(&vars))?
                .into_iter()
                .filter(|s| applies(s, table))
                .map(Step::statement),
        );
    }
    Ok(out)
}

/// Every statement `deinit-sync` runs on a fully provisioned database. No
/// connection.
pub fn render_deinit(tables: &[TableMapping], all: bool) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for table in tables {
        let vars = table_vars(table);
        out.extend(
            steps(DEINIT_TABLE, &as_refs(&vars))?
                .into_iter()
                .filter(|s| {
                    applies(s, table) && !(all && matches!(s.id.as_str(), "nodes" | "tombstones"))
                })
                .map(Step::statement),
        );
    }
    if all {
        for schema in schemas(tables) {
            out.extend(
                steps(DEINIT_SHARED, &as_refs(&shared_vars(&schema)))?
                    .into_iter()
                    .map(Step::statement),
            );
        }
    }
    Ok(out)
}

/// The shared table each step of the shared templates is about.
fn shared_object(step: &str) -> &str {
    match step {
        "nodes" => "es_nodes",
        "tombstones" | "tombstones_ver" => "es_tombstones",
        _ => "es_conflicts",
    }
}

/// `plan_init` for the trait.
pub async fn plan_init(pool: &Pool, tables: &[TableMapping]) -> Result<Vec<Statement>> {
    let mut conn = pool.get().await?;
    let mut out = Vec::new();
    for schema in schemas(tables) {
        for step in steps(INIT_SHARED, &as_refs(&shared_vars(&schema)))? {
            let object = shared_object(&step.id);
            let missing = match find_table(&mut conn, &meta_name(&schema, object)).await? {
                None => true,
                Some(found) if step.id == "tombstones_ver" => {
                    !indexes_of(&mut conn, found.object_id)
                        .await?
                        .iter()
                        .any(|i| i.eq_ignore_ascii_case("es_tombstones_ver"))
                }
                Some(_) => false,
            };
            if missing {
                out.push(step.statement());
            }
        }
    }
    for table in tables {
        out.extend(plan_table(&mut conn, table).await?);
    }
    Ok(out)
}

fn meta_name(schema: &str, object: &str) -> QualifiedName {
    QualifiedName {
        schema: Some(schema.to_string()),
        name: object.to_string(),
    }
}

async fn plan_table(conn: &mut Conn, table: &TableMapping) -> Result<Vec<Statement>> {
    let q = &table.central;
    let found = find_table(conn, q)
        .await?
        .ok_or_else(|| Error::schema(format!("central table {q} does not exist")))?;
    let cols = columns(conn, found.object_id).await?;
    schema::mapped(table, &cols)?;
    check_unique_key(conn, table, found.object_id).await?;
    if let Some(rv) = cols
        .iter()
        .find(|c| c.info.type_name == "timestamp" && !c.name.eq_ignore_ascii_case("es_ver"))
    {
        return Err(Error::schema(format!(
            "central table {q} already has a rowversion column ({}); SQL Server allows one per table and edgesync needs its own (es_ver)",
            rv.name
        )));
    }
    let present: Vec<&str> = META_COLUMNS
        .iter()
        .copied()
        .filter(|m| cols.iter().any(|c| c.name.eq_ignore_ascii_case(m)))
        .collect();
    if !present.is_empty() && present.len() < META_COLUMNS.len() {
        return Err(Error::new(
            ErrorKind::Schema,
            format!(
                "central table {q} has only some edgesync columns ({}); run deinit-sync for it, then init-sync",
                present.join(", ")
            ),
        ));
    }
    let triggers = schema::triggers_of(conn, found.object_id).await?;
    let indexes = indexes_of(conn, found.object_id).await?;
    let mut out = Vec::new();
    for step in steps(INIT_TABLE, &as_refs(&table_vars(table)))? {
        let trigger = TRIGGERS
            .iter()
            .find(|(id, _)| *id == step.id)
            .map(|(_, kind)| sql::object_name(kind, q));
        let needed = match (step.id.as_str(), &trigger) {
            ("columns", _) => present.is_empty(),
            ("ver_index", _) => {
                let name = sql::object_name("ver", q);
                !indexes.iter().any(|i| i.eq_ignore_ascii_case(&name))
            }
            (_, Some(name)) if applies(&step, table) => {
                let current = triggers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, d)| d.as_str());
                match (current, step.marker()) {
                    (Some(def), Some(marker)) => !def.contains(&marker),
                    _ => true,
                }
            }
            (_, Some(name)) => {
                // A hard-delete table must not keep the soft-delete trigger
                // from an earlier configuration.
                if triggers.keys().any(|n| n.eq_ignore_ascii_case(name)) {
                    let drop = steps(DEINIT_TABLE, &as_refs(&table_vars(table)))?
                        .into_iter()
                        .find(|s| s.id == step.id)
                        .ok_or_else(|| Error::internal("no drop step for a trigger"))?;
                    out.push(drop.statement());
                }
                false
            }
            _ => true,
        };
        if needed {
            out.push(step.statement());
        }
    }
    Ok(out)
}

/// `plan_deinit` for the trait.
pub async fn plan_deinit(
    pool: &Pool,
    tables: &[TableMapping],
    all: bool,
) -> Result<Vec<Statement>> {
    let mut conn = pool.get().await?;
    let mut out = Vec::new();
    for table in tables {
        let q = &table.central;
        let schema_name = sql::schema_of(q).to_string();
        let found = find_table(&mut conn, q).await?;
        let (cols, triggers, indexes) = match &found {
            Some(f) => (
                columns(&mut conn, f.object_id).await?,
                schema::triggers_of(&mut conn, f.object_id).await?,
                indexes_of(&mut conn, f.object_id).await?,
            ),
            None => Default::default(),
        };
        for step in steps(DEINIT_TABLE, &as_refs(&table_vars(table)))? {
            let present = match step.id.as_str() {
                "columns" => META_COLUMNS
                    .iter()
                    .any(|m| cols.iter().any(|c| c.name.eq_ignore_ascii_case(m))),
                "ver_index" => {
                    let name = sql::object_name("ver", q);
                    indexes.iter().any(|i| i.eq_ignore_ascii_case(&name))
                }
                "nodes" | "tombstones" => {
                    let object = shared_object(&step.id);
                    !all && find_table(&mut conn, &meta_name(&schema_name, object))
                        .await?
                        .is_some()
                        && has_rows(&mut conn, &sql::meta(q, object), &sql::tbl_id(q)).await?
                }
                id => {
                    let kind = TRIGGERS.iter().find(|(s, _)| *s == id).map(|(_, k)| *k);
                    kind.is_some_and(|k| {
                        let name = sql::object_name(k, q);
                        triggers.keys().any(|n| n.eq_ignore_ascii_case(&name))
                    })
                }
            };
            if present {
                out.push(step.statement());
            }
        }
    }
    if all {
        for schema in schemas(tables) {
            for step in steps(DEINIT_SHARED, &as_refs(&shared_vars(&schema)))? {
                if find_table(&mut conn, &meta_name(&schema, shared_object(&step.id)))
                    .await?
                    .is_some()
                {
                    out.push(step.statement());
                }
            }
        }
    }
    Ok(out)
}

async fn has_rows(conn: &mut Conn, meta_table: &str, tbl: &str) -> Result<bool> {
    let rows = conn
        .query(
            &format!("SELECT CASE WHEN EXISTS (SELECT 1 FROM {meta_table} WHERE tbl = @P1) THEN 1 ELSE 0 END"),
            &[crate::types::Param::Text(Some(tbl.to_string()))],
            &format!("reading {meta_table}"),
        )
        .await?;
    Ok(rows
        .first()
        .map(|r| crate::types::get_int(r, 0))
        .transpose()?
        .flatten()
        == Some(1))
}

/// `execute` for the trait: every statement in one transaction (SQL Server
/// DDL is transactional), each statement its own batch (`CREATE TRIGGER`
/// must start one).
pub async fn execute(pool: &Pool, statements: &[Statement]) -> Result<()> {
    let mut conn = pool.get().await?;
    // DDL waiting for a lock blocks every later query on the table: rather
    // fail (retryably) than stall the application.
    conn.batch("SET LOCK_TIMEOUT 10000;", "setting the lock timeout")
        .await?;
    conn.begin(false).await?;
    for s in statements {
        if let Err(e) = conn
            .batch(&s.sql, &format!("{} (nothing was changed)", s.purpose))
            .await
        {
            conn.rollback().await;
            conn.batch("SET LOCK_TIMEOUT 30000;", "resetting the lock timeout")
                .await
                .ok();
            return Err(e);
        }
    }
    let done = conn.commit("committing the provisioning transaction").await;
    if done.is_err() {
        conn.rollback().await;
    }
    conn.batch("SET LOCK_TIMEOUT 30000;", "resetting the lock timeout")
        .await
        .ok();
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_step_has_a_header_and_one_statement() {
        let shared = shared_vars("dbo");
        for (t, n) in [(INIT_SHARED, 4), (DEINIT_SHARED, 3)] {
            let s = steps(t, &as_refs(&shared)).expect("steps");
            assert!(s.iter().all(|s| !s.purpose.is_empty()));
            assert_eq!(s.len(), n);
        }
    }
}
