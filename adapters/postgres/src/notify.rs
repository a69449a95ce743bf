//! Provisioning the commit announcements (`schemas/postgres/init_notify.sql`):
//! one statement-level trigger per synced table, calling one shared function
//! per schema that sends `NOTIFY edgesync, '<schema>.<table>'`. The daemon's
//! feed (`listen.rs`) turns those into pulls.
//!
//! Kept out of `provision.rs` and `init_table.sql` on purpose: the stamping
//! triggers change with the metadata columns, the announcement does not, and
//! a central provisioned before announcements existed gets them from a plain
//! re-run of `init-sync` (only the missing objects are planned).

use edgesync_core::central::Statement;
use edgesync_core::{Error, QualifiedName, Result, TableMapping};
use sqlx::PgConnection;

use crate::provision::{function_body, steps};
use crate::schema::{find_table, function_source, triggers_of};
use crate::sql::{self, ident, literal};

const INIT_NOTIFY: &str = include_str!("../../../schemas/postgres/init_notify.sql");
const DEINIT_NOTIFY: &str = include_str!("../../../schemas/postgres/deinit_notify.sql");

/// The channel every announcement goes to; the payload names the table.
pub(crate) const CHANNEL: &str = "edgesync";
/// The trigger's name on each table.
const TRIGGER: &str = "es_notify";
/// The shared function's name in each schema.
const FUNCTION: &str = "es_notify";

/// The payload announcing a commit to `table` (what the trigger passes).
pub(crate) fn payload(table: &QualifiedName) -> String {
    sql::tbl_id(table)
}

fn vars(q: &QualifiedName) -> Vec<(&'static str, String)> {
    vec![
        ("table", sql::table_ref(q)),
        ("table_name", sql::tbl_id(q)),
        ("schema", ident(sql::schema_of(q))),
        ("schema_name", sql::schema_of(q).to_string()),
        ("tbl", literal(&payload(q))),
    ]
}

fn render(template: &str, table: &QualifiedName) -> Result<Vec<crate::provision::Step>> {
    let vars = vars(table);
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    steps(template, &refs)
}

/// The announcement objects still missing for `tables`: the shared function
/// (once per schema, when absent or out of date) before the triggers.
pub(crate) async fn plan_init(
    conn: &mut PgConnection,
    tables: &[TableMapping],
) -> Result<Vec<Statement>> {
    let mut functions: Vec<Statement> = Vec::new();
    let mut checked: Vec<String> = Vec::new();
    let mut triggers = Vec::new();
    for table in tables {
        let q = &table.central;
        let schema = sql::schema_of(q).to_string();
        let found = find_table(conn, q)
            .await?
            .ok_or_else(|| Error::schema(format!("central table {q} does not exist")))?;
        let present = triggers_of(conn, found.oid).await?;
        for step in render(INIT_NOTIFY, q)? {
            match step.id.as_str() {
                "notify_fn" => {
                    if checked.contains(&schema) {
                        continue;
                    }
                    checked.push(schema.clone());
                    let current = function_source(conn, &schema, FUNCTION).await?;
                    if current.as_deref() != function_body(&step.sql) {
                        functions.push(step.statement());
                    }
                }
                _ => {
                    if !present.iter().any(|t| t == TRIGGER) {
                        triggers.push(step.statement());
                    }
                }
            }
        }
    }
    functions.extend(triggers);
    Ok(functions)
}

/// The announcement objects present for `tables`: their triggers, and the
/// shared functions too when `all`.
pub(crate) async fn plan_deinit(
    conn: &mut PgConnection,
    tables: &[TableMapping],
    all: bool,
) -> Result<Vec<Statement>> {
    let mut triggers = Vec::new();
    let mut functions: Vec<Statement> = Vec::new();
    let mut checked: Vec<String> = Vec::new();
    for table in tables {
        let q = &table.central;
        let schema = sql::schema_of(q).to_string();
        let present = match find_table(conn, q).await? {
            Some(found) => triggers_of(conn, found.oid).await?,
            None => Vec::new(),
        };
        for step in render(DEINIT_NOTIFY, q)? {
            match step.id.as_str() {
                "notify_fn" => {
                    if !all || checked.contains(&schema) {
                        continue;
                    }
                    checked.push(schema.clone());
                    if function_source(conn, &schema, FUNCTION).await?.is_some() {
                        functions.push(step.statement());
                    }
                }
                _ => {
                    if present.iter().any(|t| t == TRIGGER) {
                        triggers.push(step.statement());
                    }
                }
            }
        }
    }
    triggers.extend(functions);
    Ok(triggers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(schema: Option<&str>, name: &str) -> QualifiedName {
        QualifiedName {
            schema: schema.map(str::to_string),
            name: name.to_string(),
        }
    }

    #[test]
    fn the_trigger_announces_the_table_on_the_edgesync_channel() {
        let t = mapping(Some("sales"), "Orders");
        let steps = render(INIT_NOTIFY, &t).expect("render");
        let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["notify_fn", "notify_trigger"]);
        assert!(steps[0]
            .sql
            .contains(&format!("pg_notify('{CHANNEL}', TG_ARGV[0])")));
        assert!(steps[0]
            .sql
            .starts_with("CREATE OR REPLACE FUNCTION \"sales\".es_notify()"));
        let trigger = &steps[1].sql;
        assert!(trigger.contains("FOR EACH STATEMENT"), "{trigger}");
        assert!(
            trigger.contains("\"sales\".es_notify('sales.Orders')"),
            "{trigger}"
        );
        assert_eq!(payload(&t), "sales.Orders");
        assert_eq!(payload(&mapping(None, "items")), "public.items");
        let drop = render(DEINIT_NOTIFY, &t).expect("render");
        assert!(drop[0]
            .sql
            .starts_with("DROP TRIGGER IF EXISTS es_notify ON"));
    }
}
