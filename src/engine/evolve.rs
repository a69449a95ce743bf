//! Schema evolution at sync time: the central is the source of truth.
//!
//! Every sync starts by describing each central table as it is *now* and
//! comparing it with the column list the edge file recorded for the table
//! (`es_schema`, written when it was provisioned or last evolved):
//!
//! - **Unchanged:** the table syncs with its recorded columns.
//! - **Additive** (columns the central gained; a type widened so that the
//!   edge column still holds it): local changes are pushed first, under the
//!   column list they were written with; then, once none is pending, the edge
//!   table gets the new columns in one transaction (`EdgeDb::evolve`: the
//!   same plan as `init-sync`), and the pull that follows starts over so the
//!   rows the edge already has get the new values (`es_schema.refill`). A
//!   push-only table keeps its columns (pushing rows with the new column
//!   empty would overwrite the central's values); `init-sync --table T`
//!   adds them when wanted.
//! - **Breaking** (a synced column dropped or renamed, a type changed so
//!   that values would not survive, the key changed): the table is paused —
//!   its error names the table, the column and the way forward, `status`
//!   shows it — and nothing of it moves, so its pending local changes stay
//!   pending. Every other table syncs.
//! - **Not provisioned on the edge** (a `[[table]]` added to the config):
//!   the edge side is provisioned as `init-sync` would, provided the central
//!   side already is (that part is the DBA's `init-sync --table T`).
//!
//! The cost is one `describe` of each central table per sync.

use std::collections::HashSet;

use anyhow::{Context, Result};
use edgesync_core::{ColumnMap, QualifiedName, TableMapping};
use edgesync_sqlite::{Evolved, SyncedColumns};
use tracing::{info, warn};

use super::mapping::{self, Problems};
use super::sync::{pull_table, TableStats};
use super::{Edge, Engine};

/// What one table's sync does with its schema.
#[derive(Debug, Clone)]
enum Plan {
    /// Sync with this mapping.
    Ready(TableMapping),
    /// Sync with `old`; then, once nothing is pending, evolve to `new`.
    Evolve {
        old: TableMapping,
        new: TableMapping,
    },
    /// Paused: why, and what to do.
    Paused(String),
}

/// The edge as this sync sees it: the mapping each table syncs with now,
/// the tables paused by a breaking change, and the evolutions left for after
/// the push.
pub struct Evolving {
    /// The edge with the tables that sync, each with its current mapping.
    pub edge: Edge,
    /// Evolutions waiting for the push: the old and new mapping of a table.
    deferred: Vec<(TableMapping, TableMapping)>,
    /// Stats of the paused tables, each with its error.
    paused: Vec<TableStats>,
}

/// Decide each table's mapping for this sync, evolving or provisioning the
/// edge where that can be done before the push.
pub async fn prepare(engine: &Engine, edge: &Edge) -> Evolving {
    let node = edge.config.node.as_str();
    let mut tables = Vec::with_capacity(edge.tables.len());
    let mut deferred = Vec::new();
    let mut paused = Vec::new();
    for opened in &edge.tables {
        let plan = match plan(engine, edge, opened).await {
            Ok(p) => p,
            Err(e) => Plan::Paused(format!("schema: {e:#}")),
        };
        match plan {
            Plan::Ready(m) => tables.push(m),
            Plan::Evolve { old, new } => match evolve(engine, edge, &old, &new).await {
                Ok(true) => tables.push(new),
                Ok(false) => {
                    tables.push(old.clone());
                    deferred.push((old, new));
                }
                Err(e) => paused.push(TableStats {
                    node: node.to_string(),
                    table: opened.edge.clone(),
                    error: Some(format!("schema: {e:#}")),
                    ..TableStats::default()
                }),
            },
            Plan::Paused(why) => {
                warn!(node, table = %opened.edge, "table paused: {why}");
                paused.push(TableStats {
                    node: node.to_string(),
                    table: opened.edge.clone(),
                    error: Some(why),
                    ..TableStats::default()
                });
            }
        }
    }
    Evolving {
        edge: Edge {
            config: edge.config.clone(),
            db: edge.db.clone(),
            tables,
        },
        deferred,
        paused,
    }
}

/// After the sync: evolve the tables whose local changes had to be pushed
/// first (and were), pull them with their new columns, and report the
/// paused tables (their error recorded in the edge file for `status`).
pub async fn finish(engine: &Engine, evolving: &Evolving, all: &mut Vec<TableStats>) {
    let edge = &evolving.edge;
    let node = edge.config.node.as_str();
    for (old, new) in &evolving.deferred {
        let Some(stats) = all.iter_mut().find(|s| s.table == new.edge) else {
            continue;
        };
        if stats.error.is_some() {
            continue;
        }
        let outcome = match evolve(engine, edge, old, new).await {
            Ok(true) if new.direction.pulls() => pull_table(
                engine.central.as_ref(),
                &edge.db,
                node,
                new,
                engine.config.sync.page_rows,
                stats,
            )
            .await
            .map_err(|e| e.context("pull")),
            Ok(_) => Ok(()),
            Err(e) => Err(e.context("schema")),
        };
        if let Err(e) = outcome {
            stats.error = Some(format!("{e:#}"));
        }
        if let Err(e) = edge.db.finish_sync(&new.edge, stats.error.as_deref()).await {
            warn!(node, table = %new.edge, "could not record sync status in the edge file: {e}");
        }
    }
    for p in &evolving.paused {
        if let Err(e) = edge.db.finish_sync(&p.table, p.error.as_deref()).await {
            warn!(node, table = %p.table, "could not record sync status in the edge file: {e}");
        }
        all.push(p.clone());
    }
}

/// Evolve the edge table from `old` to `new`; `false` when local changes
/// are still pending (nothing changed). Added columns are then filled from
/// the central's current rows where the central can say (direct mode): the
/// re-pull that follows leaves out rows whose last write was this node's own
/// push, and a column added with a default has a value there too.
async fn evolve(
    engine: &Engine,
    edge: &Edge,
    old: &TableMapping,
    new: &TableMapping,
) -> Result<bool> {
    let node = edge.config.node.as_str();
    match edge
        .db
        .evolve(node, new)
        .await
        .with_context(|| format!("evolving edge table {} to the central schema", new.edge))?
    {
        Evolved::Pending(n) => {
            info!(
                node,
                table = %new.edge,
                pending = n,
                "the central table changed; pushing local changes before adding its new columns"
            );
            Ok(false)
        }
        Evolved::Done(statements) => {
            for s in &statements {
                info!(node, table = %new.edge, sql = %s.sql.trim(), "schema change: {}", s.purpose);
            }
            let added: Vec<String> = new
                .columns
                .iter()
                .filter(|c| {
                    !old.columns
                        .iter()
                        .any(|o| o.central.eq_ignore_ascii_case(&c.central))
                })
                .map(|c| c.central.clone())
                .collect();
            if !added.is_empty() && new.direction.pulls() {
                let filled = backfill(engine, edge, new, &added)
                    .await
                    .with_context(|| format!("filling the new columns of {}", new.edge))?;
                info!(node, table = %new.edge, rows = filled, "new columns filled from the central");
            }
            Ok(true)
        }
    }
}

/// Keys asked of the central per round trip while filling new columns.
const FILL_KEYS: usize = 500;

/// Fill columns `added` of the edge's clean rows that lack them from the
/// central's current rows ([`edgesync_core::central::HubStore::current_rows`],
/// only keys the edge already holds, so no filter is widened). A central
/// that cannot answer (a hub) leaves it to the re-pull.
async fn backfill(
    engine: &Engine,
    edge: &Edge,
    m: &TableMapping,
    added: &[String],
) -> Result<usize> {
    let Some(store) = engine.central.hub_store() else {
        return Ok(0);
    };
    let keys = edge.db.unfilled_keys(m, added).await?;
    let mut filled = 0;
    for chunk in keys.chunks(FILL_KEYS) {
        let current = store
            .current_rows(m, chunk)
            .await
            .with_context(|| format!("reading central table {}", m.central))?;
        let rows: Vec<_> = chunk
            .iter()
            .cloned()
            .zip(current)
            .filter_map(|(k, row)| row.map(|v| (k, v)))
            .collect();
        filled += edge.db.fill_columns(m, added, &rows).await?;
    }
    Ok(filled)
}

/// Compare the central table now with what the edge recorded.
async fn plan(engine: &Engine, edge: &Edge, opened: &TableMapping) -> Result<Plan> {
    let Some(ct) = engine
        .central_tables
        .iter()
        .find(|c| c.mapping.edge == opened.edge)
    else {
        return Ok(Plan::Ready(opened.clone()));
    };
    let config = &engine.config;
    let t = &config.tables[ct.index];
    let qname = QualifiedName::parse(t.central_name());
    let record = mapping::synced_columns(&edge.db, opened)
        .await
        .with_context(|| format!("edge table {}", opened.edge))?;
    let schema = match engine.central.describe(&qname).await {
        Ok(s) => s,
        Err(e) => {
            // Unreachable or failing central: sync with what the edge has
            // (the push or pull then reports the central's error as usual).
            tracing::debug!(table = %opened.edge, "cannot describe central table {qname}: {e}");
            return Ok(Plan::Ready(match &record {
                Some(r) => with_columns(opened, r.columns.clone()),
                None => opened.clone(),
            }));
        }
    };
    let Some(schema) = schema else {
        return Ok(Plan::Paused(format!(
            "schema: central table {qname} (synced as {}) no longer exists in the {} central; \
             restore it, or remove its [[table]] entry and run `edgesync deinit-sync --table {}`",
            opened.edge,
            engine.central.backend(),
            opened.edge
        )));
    };
    let mut problems = Problems::default();
    let Some(mut fresh) = mapping::central_mapping(config, ct.index, t, &schema, &mut problems)
    else {
        return Ok(Plan::Paused(format!(
            "schema: {}; fix the central table or the [[table]] entry, then run \
             `edgesync init-sync --table {}`",
            problems.0.join("; "),
            opened.edge
        )));
    };
    // Carry over what this process resolved (edge types, anything else the
    // engine attached to the mapping).
    let keep = fresh.columns.clone();
    fresh = TableMapping {
        columns: keep,
        key: fresh.key,
        ..opened.clone()
    };
    let Some(record) = record else {
        provision(engine, edge, opened).await?;
        return Ok(Plan::Ready(opened.clone()));
    };
    Ok(classify(&qname, opened, &fresh, &record))
}

/// Provision a table the edge does not sync yet (a `[[table]]` added to the
/// config), if the central side is in place.
async fn provision(engine: &Engine, edge: &Edge, m: &TableMapping) -> Result<()> {
    let node = edge.config.node.as_str();
    let missing = engine
        .central
        .plan_init(std::slice::from_ref(m))
        .await
        .with_context(|| format!("checking the central provisioning of {}", m.central))?;
    if let Some(first) = missing.first() {
        anyhow::bail!(
            "table {} is new in the config and the {} central is not provisioned for it yet \
             ({} statement(s) pending, first: {}); run `edgesync init-sync --table {}` where the \
             central is administered, then the edge provisions itself on its next sync",
            m.edge,
            engine.central.backend(),
            missing.len(),
            first.purpose,
            m.edge
        );
    }
    let plan = edge
        .db
        .plan_init(node, std::slice::from_ref(m))
        .await
        .with_context(|| format!("planning the edge side of new table {}", m.edge))?;
    edge.db
        .execute(&plan)
        .await
        .with_context(|| format!("provisioning new table {} on the edge", m.edge))?;
    for s in &plan {
        info!(node, table = %m.edge, sql = %s.sql.trim(), "new table: {}", s.purpose);
    }
    Ok(())
}

/// The difference between the recorded columns and the central's now.
fn classify(
    qname: &QualifiedName,
    opened: &TableMapping,
    fresh: &TableMapping,
    record: &SyncedColumns,
) -> Plan {
    let table = &opened.edge;
    let find = |name: &str| {
        fresh
            .columns
            .iter()
            .find(|c| c.central.eq_ignore_ascii_case(name))
    };
    let mut breaking = Vec::new();
    let mut columns: Vec<ColumnMap> = Vec::new();
    let mut widened = false;
    for rc in &record.columns {
        let Some(fc) = find(&rc.central) else {
            breaking.push(format!(
                "column {} of central table {qname} (edge column {table}.{}) was dropped or renamed",
                rc.central, rc.edge
            ));
            continue;
        };
        if !fc.edge.eq_ignore_ascii_case(&rc.edge) {
            breaking.push(format!(
                "central column {qname}.{} is now mapped to edge column {} instead of {} \
                 (the [[table]] entry's `columns` changed)",
                rc.central, fc.edge, rc.edge
            ));
            continue;
        }
        let mut col = rc.clone();
        if fc.ty != rc.ty {
            if let Err(why) = mapping::check_direction(rc.edge_ty, fc.ty, opened.direction) {
                breaking.push(format!(
                    "column {qname}.{} changed type from {} to {}, which edge column {table}.{} \
                     ({}) cannot sync without loss: {why}",
                    rc.central, rc.ty, fc.ty, rc.edge, rc.edge_ty
                ));
                continue;
            }
            col.ty = fc.ty;
            widened = true;
        }
        col.nullable = fc.nullable;
        columns.push(col);
    }
    let fresh_key: Vec<String> = fresh.key_columns().map(|c| c.central.clone()).collect();
    let same_key = fresh_key.len() == record.key.len()
        && fresh_key
            .iter()
            .zip(&record.key)
            .all(|(a, b)| a.eq_ignore_ascii_case(b));
    if !same_key {
        breaking.push(format!(
            "the key of central table {qname} changed from ({}) to ({})",
            record.key.join(", "),
            fresh_key.join(", ")
        ));
    }
    if !breaking.is_empty() {
        return Plan::Paused(format!(
            "schema: table {table} is paused: {}. Its pending local changes stay pending. \
             Way forward: restore the column on the central; or map a renamed column with \
             `columns = {{ edge_name = \"central_name\" }}` in the [[table]] entry; or accept \
             the change and run `edgesync init-sync --table {table}` (a dropped column stays \
             on the edge, no longer synced; a new or renamed one is added and fetched). \
             See \"Schema changes\" in the README",
            breaking.join("; ")
        ));
    }
    let known: HashSet<String> = record
        .columns
        .iter()
        .map(|c| c.central.to_ascii_lowercase())
        .collect();
    let added: Vec<ColumnMap> = fresh
        .columns
        .iter()
        .filter(|c| !known.contains(&c.central.to_ascii_lowercase()))
        .map(|c| ColumnMap {
            edge_ty: c.ty,
            ..c.clone()
        })
        .collect();
    let old = with_columns(fresh, record.columns.clone());
    let adds = !added.is_empty() && opened.direction.pulls();
    if !adds && !widened {
        return Plan::Ready(with_columns(fresh, record.columns.clone()));
    }
    if adds {
        columns.extend(added);
    }
    Plan::Evolve {
        old,
        new: with_columns(fresh, columns),
    }
}

/// `fresh` with these columns (in this order) and its key re-indexed.
fn with_columns(fresh: &TableMapping, columns: Vec<ColumnMap>) -> TableMapping {
    let key = fresh
        .key_columns()
        .filter_map(|k| {
            columns
                .iter()
                .position(|c| c.central.eq_ignore_ascii_case(&k.central))
        })
        .collect();
    TableMapping {
        columns,
        key,
        ..fresh.clone()
    }
}

#[cfg(test)]
mod tests {
    use edgesync_core::{ColType, ConflictPolicy, DeleteMode, Direction};

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

    fn text(n: u32) -> ColType {
        ColType::Text { max_len: Some(n) }
    }

    fn mapping(columns: Vec<ColumnMap>, direction: Direction) -> TableMapping {
        TableMapping {
            edge: "items".into(),
            central: QualifiedName::parse("items"),
            columns,
            key: vec![0],
            direction,
            conflict: ConflictPolicy::ServerWins,
            deletes: DeleteMode::Soft,
        }
    }

    fn record(m: &TableMapping) -> SyncedColumns {
        SyncedColumns {
            columns: m.columns.clone(),
            key: vec!["id".into()],
            refill: Vec::new(),
        }
    }

    fn plan_for(old: &TableMapping, central: Vec<ColumnMap>) -> Plan {
        let fresh = mapping(central, old.direction);
        classify(&old.central, old, &fresh, &record(old))
    }

    fn paused(plan: Plan) -> String {
        match plan {
            Plan::Paused(why) => why,
            other => panic!("not paused: {other:?}"),
        }
    }

    #[test]
    fn an_unchanged_table_syncs_with_its_recorded_columns() {
        let old = mapping(
            vec![col("id", ColType::Int), col("name", text(20))],
            Direction::Both,
        );
        match plan_for(&old, old.columns.clone()) {
            Plan::Ready(m) => assert_eq!(m.columns, old.columns),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_added_column_is_appended_after_the_recorded_ones() {
        let old = mapping(
            vec![col("id", ColType::Int), col("name", text(20))],
            Direction::Both,
        );
        // Added in the middle on the central: the recorded order is kept,
        // so rows and conflict bases already written keep their layout.
        let central = vec![
            col("id", ColType::Int),
            col("note", text(40)),
            col("name", text(20)),
        ];
        match plan_for(&old, central) {
            Plan::Evolve { old: o, new } => {
                assert_eq!(o.columns, old.columns);
                let names: Vec<&str> = new.columns.iter().map(|c| c.edge.as_str()).collect();
                assert_eq!(names, ["id", "name", "note"]);
                assert_eq!(new.key, vec![0]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_push_only_table_keeps_its_columns() {
        let old = mapping(
            vec![col("id", ColType::Int), col("name", text(20))],
            Direction::Push,
        );
        let central = vec![
            col("id", ColType::Int),
            col("name", text(20)),
            col("note", text(40)),
        ];
        match plan_for(&old, central) {
            Plan::Ready(m) => assert_eq!(m.columns, old.columns),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_type_the_edge_column_still_holds_is_recorded_and_a_lossy_one_pauses() {
        // A read-only table whose edge column is plain TEXT: a central
        // varchar(20) widened to varchar(50) still fits.
        let mut wide = col("name", text(20));
        wide.edge_ty = ColType::Text { max_len: None };
        let old = mapping(vec![col("id", ColType::Int), wide], Direction::Pull);
        match plan_for(&old, vec![col("id", ColType::Int), col("name", text(50))]) {
            Plan::Evolve { new, .. } => {
                assert_eq!(new.columns[1].ty, text(50));
                assert_eq!(new.columns[1].edge_ty, ColType::Text { max_len: None });
            }
            other => panic!("{other:?}"),
        }
        // Values that would not survive the edge column: paused.
        let old = mapping(
            vec![col("id", ColType::Int), col("name", text(20))],
            Direction::Both,
        );
        let why = paused(plan_for(
            &old,
            vec![col("id", ColType::Int), col("name", text(50))],
        ));
        assert!(
            why.contains("name") && why.contains("changed type"),
            "{why}"
        );
        let why = paused(plan_for(
            &old,
            vec![col("id", ColType::Int), col("name", ColType::Bool)],
        ));
        assert!(why.contains("text(20) to bool"), "{why}");
    }

    #[test]
    fn a_dropped_column_or_a_new_key_pauses_naming_it_and_the_way_forward() {
        let old = mapping(
            vec![col("id", ColType::Int), col("name", text(20))],
            Direction::Both,
        );
        let why = paused(plan_for(&old, vec![col("id", ColType::Int)]));
        assert!(
            why.starts_with("schema:")
                && why.contains("column name")
                && why.contains("dropped or renamed")
                && why.contains("init-sync --table items"),
            "{why}"
        );
        let mut central = mapping(
            vec![col("id", ColType::Int), col("name", text(20))],
            Direction::Both,
        );
        central.key = vec![1];
        let why = paused(classify(&old.central, &old, &central, &record(&old)));
        assert!(why.contains("key"), "{why}");
    }
}
