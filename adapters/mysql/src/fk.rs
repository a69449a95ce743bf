//! A table's foreign keys onto itself (`parent_id REFERENCES same(id)`).
//!
//! InnoDB checks a foreign key row by row, even inside one multi-row
//! `INSERT`, and has no deferred constraints: a batch that inserts a child
//! before its parent, or deletes a parent before its child, is refused
//! although the batch as a whole is consistent. The push orders such rows
//! (`edgesync_core::fk_order`) with the references read here. Foreign keys
//! onto *other* tables are the engine's business (it pushes parent tables
//! first); constraints are never disabled.

use edgesync_core::fk_order::SelfReference;
use edgesync_core::Result;
use mysql_async::prelude::Queryable;
use mysql_async::Transaction;

use crate::error::ctx;
use crate::push::Ctx;

/// The table's foreign keys onto its own key columns, as positions in the
/// mapping (see [`SelfReference`]). A key whose columns are not all mapped,
/// or that references columns other than the mapping's key, is left out.
pub(crate) async fn self_references(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
) -> Result<Vec<SelfReference>> {
    let schema = cx.db.schema_of(&cx.table.central);
    let rows: Vec<(String, String, String)> = tx
        .exec(
            "SELECT CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_COLUMN_NAME
               FROM information_schema.KEY_COLUMN_USAGE
              WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
                AND REFERENCED_TABLE_SCHEMA = TABLE_SCHEMA
                AND REFERENCED_TABLE_NAME = TABLE_NAME
              ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION",
            (schema, &cx.table.central.name),
        )
        .await
        .map_err(ctx(format!(
            "reading the foreign keys of {} onto itself",
            cx.table.central
        )))?;
    let columns: Vec<&str> = cx
        .table
        .columns
        .iter()
        .map(|c| c.central.as_str())
        .collect();
    Ok(references(&columns, &cx.table.key, &rows))
}

/// Group `(constraint, column, referenced column)` rows into references
/// the mapping can follow (`columns`: mapped central columns in mapping
/// order; `key`: the key's positions in it).
fn references(
    columns: &[&str],
    key: &[usize],
    rows: &[(String, String, String)],
) -> Vec<SelfReference> {
    let mut out = Vec::new();
    let mut names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    names.dedup();
    for name in names {
        let pairs: Vec<(&str, &str)> = rows
            .iter()
            .filter(|r| r.0 == name)
            .map(|r| (r.1.as_str(), r.2.as_str()))
            .collect();
        if pairs.len() != key.len() {
            continue;
        }
        let col = |n: &str| columns.iter().position(|c| c.eq_ignore_ascii_case(n));
        // For each key column in key order, the referencing column.
        let refs: Option<SelfReference> = key
            .iter()
            .map(|&k| {
                let key_name = columns.get(k)?;
                let (from, _) = pairs
                    .iter()
                    .find(|(_, to)| to.eq_ignore_ascii_case(key_name))?;
                col(from)
            })
            .collect();
        if let Some(r) = refs {
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_follow_the_mapping() {
        let row = |c: &str, f: &str, t: &str| (c.to_string(), f.to_string(), t.to_string());
        let rows = vec![
            row("t_up", "up", "id"),
            // Onto a column that is not the key: not followed.
            row("t_name", "name", "name"),
            // An unmapped column: not followed.
            row("t_other", "other", "id"),
        ];
        assert_eq!(
            references(&["name", "id", "UP"], &[1], &rows),
            vec![vec![2]]
        );
    }
}
