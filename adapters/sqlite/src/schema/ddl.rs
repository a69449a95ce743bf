//! Rendering the reviewable SQL templates under `schemas/sqlite/`.
//!
//! The templates are embedded at build time, so the binary runs exactly
//! what a DBA reviewed in the repository; only names and key expressions are
//! filled in (`{{placeholder}}`), never logic.

use edgesync_core::central::Statement;
use edgesync_core::{names, template, Result};

use crate::sql::{self, KeyCol};

/// The SQL templates, embedded at build time so the binary runs exactly what
/// a DBA reviewed in the repository.
pub(crate) mod tpl {
    macro_rules! schema {
        ($file:literal) => {
            include_str!(concat!("../../../../schemas/sqlite/", $file))
        };
    }
    pub(crate) const EDGE_METADATA: &str = schema!("edge_metadata.sql");
    pub(crate) const EDGE_CREATE_TABLE: &str = schema!("edge_create_table.sql");
    pub(crate) const EDGE_COLUMNS: &str = schema!("edge_columns.sql");
    pub(crate) const EDGE_MARK_DIRTY: &str = schema!("edge_mark_dirty.sql");
    pub(crate) const EDGE_CAPTURE_TRIGGERS: &str = schema!("edge_capture_triggers.sql");
    pub(crate) const EDGE_SOFT_DELETE_TRIGGER: &str = schema!("edge_soft_delete_trigger.sql");
    pub(crate) const EDGE_HARD_DELETE_TRIGGER: &str = schema!("edge_hard_delete_trigger.sql");
    pub(crate) const EDGE_READONLY_TRIGGERS: &str = schema!("edge_readonly_triggers.sql");
    pub(crate) const EDGE_FORGET_TABLE: &str = schema!("edge_forget_table.sql");
    pub(crate) const EDGE_DROP_METADATA: &str = schema!("edge_drop_metadata.sql");
    pub(crate) const CENTRAL_METADATA: &str = schema!("central_metadata.sql");
    pub(crate) const CENTRAL_CONFLICT_COLUMNS: &str = schema!("central_conflict_columns.sql");
    pub(crate) const CENTRAL_COLUMNS: &str = schema!("central_columns.sql");
    pub(crate) const CENTRAL_MARK_VERSIONS: &str = schema!("central_mark_versions.sql");
    pub(crate) const CENTRAL_TRIGGERS: &str = schema!("central_triggers.sql");
    pub(crate) const CENTRAL_SOFT_DELETE_TRIGGER: &str = schema!("central_soft_delete_trigger.sql");
    pub(crate) const CENTRAL_HARD_DELETE_TRIGGER: &str = schema!("central_hard_delete_trigger.sql");
    pub(crate) const CENTRAL_FORGET_TABLE: &str = schema!("central_forget_table.sql");
    pub(crate) const CENTRAL_DROP_METADATA: &str = schema!("central_drop_metadata.sql");
    pub(crate) const VER_INDEX: &str = schema!("ver_index.sql");
    pub(crate) const DROP_TRIGGER: &str = schema!("drop_trigger.sql");
    pub(crate) const DROP_INDEX: &str = schema!("drop_index.sql");
    pub(crate) const DROP_COLUMN: &str = schema!("drop_column.sql");
}

/// SQLite has no identifier length limit worth the name; this only keeps
/// generated names readable.
pub(crate) const MAX_NAME: usize = 120;

/// Render a template and split it into statements.
pub(crate) fn render(template: &str, vars: &[(&str, String)]) -> Result<Vec<String>> {
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(template::statements(&template::render(template, &refs)?))
}

/// Statements with purposes `"<what>: <first line of the SQL>"`.
pub(crate) fn with_purpose(what: &str, statements: Vec<String>) -> Vec<Statement> {
    statements
        .into_iter()
        .map(|sql| Statement {
            purpose: format!("{what}: {}", sql.lines().next().unwrap_or_default().trim()),
            sql,
        })
        .collect()
}

/// The placeholder values every per-table template uses.
pub(crate) struct TableDdl {
    vars: Vec<(&'static str, String)>,
}

impl TableDdl {
    /// For `table` keyed by `key` (names and types in this database).
    pub(crate) fn new(table: &str, key: &[KeyCol]) -> TableDdl {
        let q = sql::ident(table);
        let name = |kind: &str| sql::ident(&names::object_name(kind, table, MAX_NAME));
        let key_columns = sql::column_list("", key.iter().map(|k| k.name.as_str()));
        let vars = vec![
            ("table", q.clone()),
            ("tbl", sql::literal(table)),
            ("key_columns", key_columns),
            (
                "key_match_r",
                sql::key_match_prefixed(&format!("{q}."), "r.", key),
            ),
            ("new_key_match", sql::key_match_prefixed("", "NEW.", key)),
            ("old_key_match", sql::key_match_prefixed("", "OLD.", key)),
            (
                "key_unchanged",
                sql::key_match_prefixed("NEW.", "OLD.", key),
            ),
            ("new_key_json", sql::key_json(Some("NEW."), 0, key)),
            ("old_key_json", sql::key_json(Some("OLD."), 0, key)),
            ("index", name("ver")),
            ("trg_stash", name("bi")),
            ("trg_insert", name("ai")),
            ("trg_update", name("au")),
            ("trg_update_key", name("auk")),
            ("trg_delete", name("del")),
            ("trg_ro_insert", name("ri")),
            ("trg_ro_update", name("ru")),
            ("trg_ro_delete", name("rd")),
            (
                "message",
                sql::literal(&format!(
                    "edgesync: table {table} is read-only on this edge (direction = pull)"
                )),
            ),
        ];
        TableDdl { vars }
    }

    /// Add or override a placeholder.
    pub(crate) fn with(mut self, name: &'static str, value: String) -> TableDdl {
        self.vars.retain(|(k, _)| *k != name);
        self.vars.push((name, value));
        self
    }

    /// Render a per-table template.
    pub(crate) fn render(&self, template: &str) -> Result<Vec<String>> {
        render(template, &self.vars)
    }
}

/// The `ADD COLUMN` statements of `template` for columns not in `present`.
pub(crate) fn missing_columns(
    ddl: &TableDdl,
    template: &str,
    present: &[String],
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for stmt in ddl.render(template)? {
        let col = stmt
            .split("ADD COLUMN ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        if !present.iter().any(|p| p.eq_ignore_ascii_case(&col)) {
            out.push((col, stmt));
        }
    }
    Ok(out)
}
