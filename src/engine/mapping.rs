//! Resolving `[[table]]` entries against both databases.
//!
//! This is where a config meets reality: the central table must exist, have a
//! key, and have columns of types edgesync can carry; the edge table (if it
//! exists already) must have every synced column with a type that round-trips
//! exactly. Every problem is collected and reported with the table, column and
//! database named, before anything is written anywhere.

use std::collections::BTreeMap;

use edgesync_core::{
    names, Central, ColType, ColumnMap, Direction, QualifiedName, TableMapping, TableSchema,
};
use edgesync_sqlite::EdgeDb;

use crate::config::{Config, TableConfig};

/// The central side of a table, resolved once for every edge.
#[derive(Debug, Clone)]
pub struct CentralTable {
    /// Index of the `[[table]]` entry.
    pub index: usize,
    /// The mapping with `edge_ty` equal to the central type (what an edge
    /// created by edgesync gets).
    pub mapping: TableMapping,
}

/// Problems found while resolving, one line each.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<String>);

impl Problems {
    fn push(&mut self, p: impl Into<String>) {
        self.0.push(p.into());
    }
    /// Turn collected problems into an error (or Ok when none).
    pub fn into_result(self) -> anyhow::Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{}", self.0.join("\n"))
        }
    }
}

/// Resolve every selected `[[table]]` entry against the central database.
pub async fn resolve_central(
    config: &Config,
    central: &dyn Central,
    only: Option<&str>,
) -> anyhow::Result<Vec<CentralTable>> {
    let mut problems = Problems::default();
    let mut out = Vec::new();
    let mut matched = false;
    for (index, t) in config.tables.iter().enumerate() {
        if only.is_some_and(|o| o != t.name) {
            continue;
        }
        matched = true;
        let qname = QualifiedName::parse(t.central_name());
        let schema = match central.describe(&qname).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                problems.push(format!(
                    "table[{index}] ({}): central table {qname} does not exist in the {} central database",
                    t.name,
                    central.backend()
                ));
                continue;
            }
            Err(e) => {
                problems.push(format!(
                    "table[{index}] ({}): cannot describe central table {qname}: {e}",
                    t.name
                ));
                continue;
            }
        };
        if let Some(mapping) = central_mapping(config, index, t, &schema, &mut problems) {
            out.push(CentralTable { index, mapping });
        }
    }
    if let Some(o) = only {
        if !matched {
            problems.push(format!("--table {o}: no [[table]] entry has that name"));
        }
    }
    problems.into_result()?;
    Ok(out)
}

pub(crate) fn central_mapping(
    config: &Config,
    index: usize,
    t: &TableConfig,
    schema: &TableSchema,
    problems: &mut Problems,
) -> Option<TableMapping> {
    let at = format!("table[{index}] ({})", t.name);
    let before = problems.0.len();
    // edge name -> central name, and the reverse for lookup.
    let mut central_to_edge: BTreeMap<String, String> = BTreeMap::new();
    for (edge_col, central_col) in &t.columns {
        match schema.column(central_col) {
            Some(c) => {
                central_to_edge.insert(c.name.clone(), edge_col.clone());
            }
            None => problems.push(format!(
                "{at}: columns.{edge_col} maps to central column {central_col}, which {} does not have",
                schema.name
            )),
        }
    }
    let mut columns = Vec::new();
    for c in &schema.columns {
        if names::is_reserved(&c.name) {
            continue;
        }
        let ty = match &c.ty {
            Ok(ty) => *ty,
            Err(native) => {
                problems.push(format!(
                    "{at}: central column {}.{} has type {native}, which edgesync cannot carry without loss",
                    schema.name, c.name
                ));
                continue;
            }
        };
        let edge = central_to_edge
            .get(&c.name)
            .cloned()
            .unwrap_or_else(|| c.name.clone());
        columns.push(ColumnMap {
            edge,
            central: c.name.clone(),
            ty,
            edge_ty: ty,
            nullable: c.nullable,
        });
    }
    let key_names: Vec<String> = match &t.key {
        Some(k) => k.clone(),
        None => schema.primary_key.clone(),
    };
    if key_names.is_empty() {
        problems.push(format!(
            "{at}: central table {} has no primary key and no `key` is set; add key = [\"...\"] to the [[table]] entry",
            schema.name
        ));
    }
    let mut key = Vec::new();
    for k in &key_names {
        // a configured key may use the edge name or the central name
        let pos = columns
            .iter()
            .position(|c| &c.central == k || &c.edge == k)
            .or_else(|| {
                columns
                    .iter()
                    .position(|c| c.central.eq_ignore_ascii_case(k))
            });
        match pos {
            Some(i) => key.push(i),
            None => problems.push(format!(
                "{at}: key column {k} is not a column of central table {}",
                schema.name
            )),
        }
    }
    if problems.0.len() > before {
        return None;
    }
    Some(TableMapping {
        edge: t.name.clone(),
        central: schema.name.clone(),
        columns,
        key,
        direction: t.direction,
        conflict: config.conflict_for(t),
        deletes: t.deletes,
    })
}

/// Resolve the central mappings against one edge file: fill in `edge_ty` from
/// the edge table when it exists, and check that every synced column is there
/// with a type that round-trips in the table's direction.
pub async fn resolve_edge(
    edge: &EdgeDb,
    node: &str,
    tables: &[CentralTable],
) -> anyhow::Result<Vec<TableMapping>> {
    let mut problems = Problems::default();
    let mut out = Vec::new();
    for ct in tables {
        let mut m = ct.mapping.clone();
        let at = format!("edge {node} ({}): table {}", edge.path().display(), m.edge);
        // A table whose column list the edge recorded is compared with the
        // central at every sync instead (see `evolve`): a change there pauses
        // that one table, or is applied, and never keeps the others from
        // opening.
        match recorded(edge, &m).await {
            Ok(Some((aligned, _))) => {
                out.push(aligned);
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                problems.push(format!("{at}: {e}"));
                continue;
            }
        }
        match edge.describe(&m.edge).await {
            Ok(None) => {} // created by init-sync with the central types
            Ok(Some(schema)) => {
                let before = problems.0.len();
                for col in &mut m.columns {
                    let Some(ec) = schema.column(&col.edge) else {
                        problems.push(format!(
                            "{at}: has no column {} (central {}.{})",
                            col.edge, m.central, col.central
                        ));
                        continue;
                    };
                    let ety = match &ec.ty {
                        Ok(t) => *t,
                        Err(why) => {
                            problems.push(format!("{at}: column {}: {why}", col.edge));
                            continue;
                        }
                    };
                    if let Err(why) = check_direction(ety, col.ty, m.direction) {
                        problems.push(format!(
                            "{at}: column {} ({ety}) cannot sync with central {}.{} ({}): {why}",
                            col.edge, m.central, col.central, col.ty
                        ));
                    }
                    col.edge_ty = ety;
                }
                for ec in &schema.columns {
                    let synced = m
                        .columns
                        .iter()
                        .any(|c| c.edge.eq_ignore_ascii_case(&ec.name));
                    if !synced && !ec.nullable && !ec.has_default {
                        problems.push(format!(
                            "{at}: column {} is not in the central table and is NOT NULL without a default, so rows pulled from the central could not be inserted",
                            ec.name
                        ));
                    }
                }
                if problems.0.len() > before {
                    continue;
                }
            }
            Err(e) => {
                problems.push(format!("{at}: {e}"));
                continue;
            }
        }
        out.push(m);
    }
    problems.into_result()?;
    Ok(out)
}

/// Edge type `edge` against central type `central` for a table flowing `dir`.
pub(crate) fn check_direction(
    edge: ColType,
    central: ColType,
    dir: Direction,
) -> Result<(), String> {
    if dir.pushes() {
        edge.lossless_into(central)?;
    }
    if dir.pulls() {
        central.lossless_into(edge)?;
    }
    Ok(())
}

/// For a table whose synced columns the edge file recorded (`es_schema`):
/// the central mapping `m` with the recorded columns first, in their order
/// (rows and conflict bases already written keep their layout), then the
/// columns the central gained; edge types from the edge table where it has
/// the column. With it, the type problems `init-sync` must refuse (columns
/// the edge lacks are not problems: `init-sync` adds them). `None` when
/// nothing is recorded.
pub async fn recorded(
    edge: &EdgeDb,
    m: &TableMapping,
) -> edgesync_core::Result<Option<(TableMapping, Vec<String>)>> {
    let Some(record) = synced_columns(edge, m).await? else {
        return Ok(None);
    };
    let schema = edge.describe(&m.edge).await?;
    let mut problems = Vec::new();
    let mut columns: Vec<ColumnMap> = Vec::with_capacity(m.columns.len());
    let position = |name: &str| {
        m.columns
            .iter()
            .position(|c| c.central.eq_ignore_ascii_case(name))
    };
    let mut order: Vec<usize> = record
        .columns
        .iter()
        .filter_map(|r| position(&r.central))
        .collect();
    for i in 0..m.columns.len() {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    for i in order {
        let mut col = m.columns[i].clone();
        if let Some(ec) = schema.as_ref().and_then(|s| s.column(&col.edge)) {
            match &ec.ty {
                Ok(ety) => {
                    if let Err(why) = check_direction(*ety, col.ty, m.direction) {
                        problems.push(format!(
                            "table {}: edge column {} ({ety}) cannot sync with central {}.{} ({}): {why}; \
                             change the edge column's type (or recreate the table) first",
                            m.edge, col.edge, m.central, col.central, col.ty
                        ));
                    }
                    col.edge_ty = *ety;
                }
                Err(why) => problems.push(format!("table {}: column {}: {why}", m.edge, col.edge)),
            }
        }
        columns.push(col);
    }
    // A column the central dropped stays on the edge, no longer synced:
    // rows pulled from the central must still be insertable without it.
    for ec in schema.iter().flat_map(|s| &s.columns) {
        let synced = columns
            .iter()
            .any(|c| c.edge.eq_ignore_ascii_case(&ec.name));
        if !synced && !ec.nullable && !ec.has_default {
            problems.push(format!(
                "table {}: edge column {} is no longer in the central table and is NOT NULL \
                 without a default, so rows pulled from the central could not be inserted; \
                 make it nullable or give it a default (on SQLite: recreate the table) first",
                m.edge, ec.name
            ));
        }
    }
    let key = m
        .key_columns()
        .filter_map(|k| {
            columns
                .iter()
                .position(|c| c.central.eq_ignore_ascii_case(&k.central))
        })
        .collect();
    Ok(Some((
        TableMapping {
            columns,
            key,
            ..m.clone()
        },
        problems,
    )))
}

/// The columns `m`'s edge table syncs: as recorded in the edge file, or,
/// for a table provisioned before edgesync recorded them, the mapping's
/// columns the edge table has (with its types). `None` for a table not
/// provisioned on the edge.
pub async fn synced_columns(
    edge: &EdgeDb,
    m: &TableMapping,
) -> edgesync_core::Result<Option<edgesync_sqlite::SyncedColumns>> {
    if let Some(record) = edge.synced_columns(&m.edge).await? {
        return Ok(Some(record));
    }
    if !edge.is_provisioned(&m.edge).await? {
        return Ok(None);
    }
    let Some(schema) = edge.describe(&m.edge).await? else {
        return Ok(None);
    };
    let columns = m
        .columns
        .iter()
        .filter_map(|c| {
            let ec = schema.column(&c.edge)?;
            Some(ColumnMap {
                edge_ty: ec.ty.clone().unwrap_or(c.edge_ty),
                ..c.clone()
            })
        })
        .collect();
    Ok(Some(edgesync_sqlite::SyncedColumns {
        columns,
        key: m.key_columns().map(|c| c.central.clone()).collect(),
        refill: Vec::new(),
    }))
}
