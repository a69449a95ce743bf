//! Which synced edge tables reference which (`PRAGMA foreign_key_list`), so
//! the engine can push and pull parents before children and delete children
//! before parents. The edge file is the source: it is where the application
//! declares the constraints it relies on, and where they are enforced
//! (every edgesync connection runs with `foreign_keys = ON`).

use edgesync_core::Result;
use rusqlite::Connection;

use crate::error::SqlResultExt;

/// `(child, parent)` pairs among `tables` (edge names, as given): `child`
/// has a foreign key referencing `parent`. A self-referencing table appears
/// as `(t, t)`. References to tables outside `tables` are left out: edgesync
/// does not order what it does not sync. A table that does not exist has no
/// references.
pub(super) fn references(conn: &Connection, tables: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for child in tables {
        let mut stmt = conn
            .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")
            .db_ctx(|| format!("reading the foreign keys of edge table {child}"))?;
        let parents = stmt
            .query_map([child], |r| r.get::<_, String>(0))
            .db_ctx(|| format!("reading the foreign keys of edge table {child}"))?;
        for parent in parents {
            let parent = parent.db()?;
            let Some(known) = tables.iter().find(|t| t.eq_ignore_ascii_case(&parent)) else {
                continue;
            };
            let pair = (child.clone(), known.clone());
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_references_among_synced_tables_only() {
        let c = Connection::open_in_memory().expect("memory db");
        c.execute_batch(
            "CREATE TABLE other (id INTEGER PRIMARY KEY);
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (id INTEGER PRIMARY KEY,
               p INTEGER REFERENCES Parent(id), o INTEGER REFERENCES other(id));
             CREATE TABLE tree (id INTEGER PRIMARY KEY, up INTEGER REFERENCES tree(id));",
        )
        .expect("schema");
        let tables: Vec<String> = ["parent", "child", "tree", "missing"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let refs = references(&c, &tables).expect("references");
        assert_eq!(
            refs,
            vec![
                ("child".to_string(), "parent".to_string()),
                ("tree".to_string(), "tree".to_string())
            ]
        );
    }
}
