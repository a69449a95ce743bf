//! Provisioning: the statements of `schemas/oracle/*.sql`, filled with
//! quoted names and filtered down to what the catalog says is missing (or, for
//! deinit, present), so a second `init-sync` plans nothing. Each template
//! statement is preceded by a `-- step: id | purpose` line.
//!
//! Oracle DDL commits by itself, so [`execute`] runs one statement at a time;
//! every plan is computed from the catalog, so re-running `init-sync` after a
//! failure completes it. PL/SQL that compiles with errors (a missing grant,
//! typically) stops the run with the compiler's messages.
//!
//! Rendering needs no connection ([`render_init`], [`render_deinit`]); with
//! no catalog, column types are assumed from the mapping
//! ([`crate::sql::default_native`]).

use edgesync_core::central::Statement;
use edgesync_core::{template, Error, ErrorKind, Result, TableMapping};
use oracle::Connection;

use crate::error::ctx;
use crate::schema::{
    self, check_unique_key, columns, find_table, object_exists, source_has, table_comment, Found,
    META_COLUMNS,
};
use crate::sql::{self, ident, literal, Native};

const INIT_SHARED: &str = include_str!("../../../schemas/oracle/init_shared.sql");
const INIT_TABLE: &str = include_str!("../../../schemas/oracle/init_table.sql");
const DEINIT_SHARED: &str = include_str!("../../../schemas/oracle/deinit_shared.sql");
const DEINIT_TABLE: &str = include_str!("../../../schemas/oracle/deinit_table.sql");

/// Where the fingerprint of a PL/SQL object goes while it is computed.
const FINGERPRINT_SLOT: &str = "%%fingerprint%%";

/// One statement of a template, with its step header.
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

    /// The `edgesync <hash>` marker a PL/SQL object carries.
    fn marker(&self) -> Option<String> {
        let start = self.sql.find("/* edgesync ")? + 3;
        let end = start + self.sql[start..].find(" */")?;
        Some(self.sql[start..end].to_string())
    }
}

/// Render `template` and split it into its steps.
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

/// The staging table's columns, one per mapped column, typed like it.
pub(crate) fn stage_columns(natives: &[Native]) -> String {
    natives
        .iter()
        .enumerate()
        .map(|(k, n)| format!("    a{k} {}", n.decl))
        .collect::<Vec<_>>()
        .join(",\n")
}

/// The fingerprint the staging table's comment carries.
pub(crate) fn stage_fingerprint(natives: &[Native]) -> String {
    sql::fingerprint(&stage_columns(natives))
}

/// The template variables for one table.
pub(crate) fn table_vars(
    table: &TableMapping,
    natives: &[Native],
    default_owner: &str,
) -> Vec<(&'static str, String)> {
    let q = &table.central;
    let owner = sql::owner_of(q, default_owner);
    let col = |prefix: &'static str| {
        move |i: usize| format!("{prefix}.{}", ident(&table.columns[i].central))
    };
    let key_changed = table
        .key_columns()
        .map(|c| format!(":old.{0} <> :new.{0}", ident(&c.central)))
        .collect::<Vec<_>>()
        .join(" OR ");
    vec![
        ("table", sql::table_ref(q, default_owner)),
        ("table_name", sql::tbl_id(q, default_owner)),
        ("owner", ident(owner)),
        ("owner_name", owner.to_string()),
        ("tbl", literal(&sql::tbl_id(q, default_owner))),
        ("trg_stamp", sql::object("trg_s", q, default_owner)),
        ("trg_tomb", sql::object("trg_t", q, default_owner)),
        ("scn_index", sql::object("scn", q, default_owner)),
        ("stage", sql::object("stg", q, default_owner)),
        ("stage_columns", stage_columns(natives)),
        ("stage_fingerprint", stage_fingerprint(natives)),
        ("key_changed", key_changed),
        ("key_json_new", sql::key_json(table, col(":new"))),
        ("key_json_old", sql::key_json(table, col(":old"))),
    ]
}

fn shared_vars(owner: &str) -> Vec<(&'static str, String)> {
    vec![("owner", ident(owner)), ("owner_name", owner.to_string())]
}

fn as_refs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The distinct owners of `tables`, in order.
fn owners(tables: &[TableMapping], default_owner: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tables {
        let s = sql::owner_of(&t.central, default_owner).to_string();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Every statement `init-sync` runs on a database that has nothing yet,
/// with column types assumed from the mappings. No connection.
pub fn render_init(tables: &[TableMapping], default_owner: &str) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for owner in owners(tables, default_owner) {
        out.extend(
            steps(INIT_SHARED, &as_refs(&shared_vars(&owner)))?
                .into_iter()
                .map(Step::statement),
        );
    }
    for table in tables {
        sql::check_mapping(table, default_owner)?;
        let natives: Vec<Native> = table
            .columns
            .iter()
            .map(|c| sql::default_native(c.ty))
            .collect();
        let vars = table_vars(table, &natives, default_owner);
        out.extend(
            steps(INIT_TABLE, &as_refs(&vars))?
                .into_iter()
                .map(Step::statement),
        );
    }
    Ok(out)
}

/// Every statement `deinit-sync` runs on a fully provisioned database. No
/// connection.
pub fn render_deinit(
    tables: &[TableMapping],
    all: bool,
    default_owner: &str,
) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for table in tables {
        let natives: Vec<Native> = table
            .columns
            .iter()
            .map(|c| sql::default_native(c.ty))
            .collect();
        let vars = table_vars(table, &natives, default_owner);
        out.extend(
            steps(DEINIT_TABLE, &as_refs(&vars))?
                .into_iter()
                .filter(|s| !(all && matches!(s.id.as_str(), "nodes" | "tombstones")))
                .map(Step::statement),
        );
    }
    if all {
        for owner in owners(tables, default_owner) {
            out.extend(
                steps(DEINIT_SHARED, &as_refs(&shared_vars(&owner)))?
                    .into_iter()
                    .map(Step::statement),
            );
        }
    }
    Ok(out)
}

/// Is the shared object of a step there (and up to date)?
fn shared_present(conn: &Connection, owner: &str, step: &Step) -> Result<bool> {
    let marker = step.marker().unwrap_or_default();
    match step.id.as_str() {
        "sequence" => object_exists(conn, owner, "ES_VERSION", "SEQUENCE"),
        "package" => source_has(conn, owner, "ES_SYNC", "PACKAGE", &marker),
        "package_body" => source_has(conn, owner, "ES_SYNC", "PACKAGE BODY", &marker),
        "nodes" => object_exists(conn, owner, "ES_NODES", "TABLE"),
        "tombstones" => object_exists(conn, owner, "ES_TOMBSTONES", "TABLE"),
        "tombstones_scn" => object_exists(conn, owner, "ES_TOMBSTONES_SCN", "INDEX"),
        "tombstones_trigger" => source_has(conn, owner, "ES_TOMBSTONES_STAMP", "TRIGGER", &marker),
        "conflicts" => object_exists(conn, owner, "ES_CONFLICTS", "TABLE"),
        other => Err(Error::internal(format!("unknown shared step {other}"))),
    }
}

/// `plan_init` for the trait.
pub fn plan_init(
    conn: &Connection,
    tables: &[TableMapping],
    default_owner: &str,
    db_unicode: bool,
) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for owner in owners(tables, default_owner) {
        for step in steps(INIT_SHARED, &as_refs(&shared_vars(&owner)))? {
            if !shared_present(conn, &owner, &step)? {
                out.push(step.statement());
            }
        }
    }
    for table in tables {
        sql::check_mapping(table, default_owner)?;
        out.extend(plan_table(conn, table, default_owner, db_unicode)?);
    }
    Ok(out)
}

fn plan_table(
    conn: &Connection,
    table: &TableMapping,
    default_owner: &str,
    db_unicode: bool,
) -> Result<Vec<Statement>> {
    let q = &table.central;
    let found: Found = find_table(conn, q, default_owner)?
        .ok_or_else(|| Error::schema(format!("central table {q} does not exist")))?;
    let cols = columns(conn, &found, db_unicode)?;
    let natives: Vec<Native> = schema::mapped(table, &cols)?
        .into_iter()
        .map(|c| c.info.native())
        .collect();
    check_unique_key(conn, table, &found)?;
    let present: Vec<&str> = META_COLUMNS
        .iter()
        .copied()
        .filter(|m| cols.iter().any(|c| c.name == *m))
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
    let owner = sql::owner_of(q, default_owner);
    let vars = table_vars(table, &natives, default_owner);
    let stage = sql::object_name("stg", q, default_owner);
    let stage_exists = object_exists(conn, owner, &stage, "TABLE")?;
    let stage_current = stage_exists
        && table_comment(conn, owner, &stage)?.as_deref()
            == Some(format!("edgesync {}", stage_fingerprint(&natives)).as_str());
    let mut out = Vec::new();
    for step in steps(INIT_TABLE, &as_refs(&vars))? {
        let marker = step.marker().unwrap_or_default();
        let needed = match step.id.as_str() {
            "columns" => present.is_empty(),
            "scn_index" => !object_exists(
                conn,
                owner,
                &sql::object_name("scn", q, default_owner),
                "INDEX",
            )?,
            "trg_stamp" => !source_has(
                conn,
                owner,
                &sql::object_name("trg_s", q, default_owner),
                "TRIGGER",
                &marker,
            )?,
            "trg_tomb" => !source_has(
                conn,
                owner,
                &sql::object_name("trg_t", q, default_owner),
                "TRIGGER",
                &marker,
            )?,
            "stage" => {
                if stage_exists && !stage_current {
                    // Made for other column types: recreate it.
                    let drop = steps(DEINIT_TABLE, &as_refs(&vars))?
                        .into_iter()
                        .find(|s| s.id == "stage")
                        .ok_or_else(|| Error::internal("no drop step for the stage"))?;
                    out.push(drop.statement());
                }
                !stage_current
            }
            "stage_comment" => !stage_current,
            other => return Err(Error::internal(format!("unknown table step {other}"))),
        };
        if needed {
            out.push(step.statement());
        }
    }
    Ok(out)
}

/// `plan_deinit` for the trait.
pub fn plan_deinit(
    conn: &Connection,
    tables: &[TableMapping],
    all: bool,
    default_owner: &str,
    db_unicode: bool,
) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    for table in tables {
        let q = &table.central;
        let owner = sql::owner_of(q, default_owner).to_string();
        let found = find_table(conn, q, default_owner)?;
        let cols = match &found {
            Some(f) => columns(conn, f, db_unicode)?,
            None => Vec::new(),
        };
        let natives: Vec<Native> = table
            .columns
            .iter()
            .map(|c| sql::default_native(c.ty))
            .collect();
        let vars = table_vars(table, &natives, default_owner);
        for step in steps(DEINIT_TABLE, &as_refs(&vars))? {
            let object = |kind: &str| sql::object_name(kind, q, default_owner);
            let present = match step.id.as_str() {
                "columns" => META_COLUMNS
                    .iter()
                    .any(|m| cols.iter().any(|c| c.name == *m)),
                "trg_tomb" => object_exists(conn, &owner, &object("trg_t"), "TRIGGER")?,
                "trg_stamp" => object_exists(conn, &owner, &object("trg_s"), "TRIGGER")?,
                "scn_index" => object_exists(conn, &owner, &object("scn"), "INDEX")?,
                "stage" => object_exists(conn, &owner, &object("stg"), "TABLE")?,
                "nodes" | "tombstones" => {
                    let meta = if step.id == "nodes" {
                        "ES_NODES"
                    } else {
                        "ES_TOMBSTONES"
                    };
                    !all && object_exists(conn, &owner, meta, "TABLE")?
                        && conn
                            .query_row_as::<i64>(
                                &format!(
                                    "SELECT COUNT(*) FROM {}.{meta} WHERE tbl = :1",
                                    ident(&owner)
                                ),
                                &[&sql::tbl_id(q, default_owner)],
                            )
                            .map_err(ctx(format!("reading {meta}")))?
                            > 0
                }
                other => return Err(Error::internal(format!("unknown deinit step {other}"))),
            };
            if present {
                out.push(step.statement());
            }
        }
    }
    if all {
        for owner in owners(tables, default_owner) {
            for step in steps(DEINIT_SHARED, &as_refs(&shared_vars(&owner)))? {
                let present = match step.id.as_str() {
                    "conflicts" => object_exists(conn, &owner, "ES_CONFLICTS", "TABLE")?,
                    "tombstones" => object_exists(conn, &owner, "ES_TOMBSTONES", "TABLE")?,
                    "nodes" => object_exists(conn, &owner, "ES_NODES", "TABLE")?,
                    "package" => object_exists(conn, &owner, "ES_SYNC", "PACKAGE")?,
                    "sequence" => object_exists(conn, &owner, "ES_VERSION", "SEQUENCE")?,
                    other => return Err(Error::internal(format!("unknown shared step {other}"))),
                };
                if present {
                    out.push(step.statement());
                }
            }
        }
    }
    Ok(out)
}

/// `execute` for the trait: one statement at a time (Oracle DDL commits by
/// itself), stopping at the first failure or PL/SQL compilation error.
pub fn execute(conn: &Connection, statements: &[Statement]) -> Result<()> {
    for s in statements {
        conn.execute(&s.sql, &[]).map_err(ctx(format!(
            "{} (statements before it were applied; re-run init-sync after fixing the cause)",
            s.purpose
        )))?;
        if let Some(warning) = conn.last_warning() {
            let errors: Vec<String> = conn
                .query_as::<(String, String, i64, String)>(
                    "SELECT type, name, line, text FROM user_errors
                      WHERE name LIKE 'ES\\_%' ESCAPE '\\' ORDER BY name, sequence",
                    &[],
                )
                .map(|rows| {
                    rows.filter_map(|r| r.ok())
                        .map(|(t, n, l, x)| format!("{t} {n} line {l}: {}", x.trim()))
                        .collect()
                })
                .unwrap_or_default();
            return Err(Error::schema(format!(
                "{}: compiled with errors ({warning}){}; the owner needs EXECUTE on SYS.DBMS_FLASHBACK \
                 and SELECT on SYS.V_$TRANSACTION granted directly (see schemas/oracle/init_shared.sql)",
                s.purpose,
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(": {}", errors.join("; "))
                }
            )));
        }
    }
    conn.commit()
        .map_err(ctx("committing the provisioning statements"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_step_has_a_header_and_one_statement() {
        let shared = shared_vars("APP");
        for (t, n) in [(INIT_SHARED, 8), (DEINIT_SHARED, 5)] {
            let s = steps(t, &as_refs(&shared)).expect("steps");
            assert!(s.iter().all(|s| !s.purpose.is_empty()));
            assert_eq!(s.len(), n);
        }
    }
}
