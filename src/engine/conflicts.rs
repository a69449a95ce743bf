//! The conflict log and the manual queue: what `edgesync conflicts list` and
//! `conflicts resolve` do, and the log's retention.
//!
//! Conflicts are detected and decided by the central adapter inside the push
//! transaction (`edgesync_core::conflict::decide`); every one is logged with
//! its base, local, central and result rows. Those a `manual` table parks
//! stay open until a person settles them here; the result then flows to
//! every edge on its next pull.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use edgesync_core::{
    ConflictPolicy, ConflictRecord, ErrorKind, Keep, QualifiedName, TableMapping, Value,
};
use tracing::{info, warn};

use super::{Edge, Engine};

/// How many entries `conflicts list` reads at most.
pub const LIST_LIMIT: usize = 1000;

/// How often a long-running engine purges the conflict log.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The conflict log, newest first: open conflicts only unless `all`.
pub async fn list(engine: &Engine, all: bool) -> Result<Vec<ConflictRecord>> {
    engine
        .central
        .conflicts(all, LIST_LIMIT)
        .await
        .context("reading the conflict log")
}

/// Settle open conflict `id`, keeping one side; the kept row reaches every
/// edge on its next pull.
pub async fn resolve(engine: &Engine, id: i64, keep: Keep) -> Result<ConflictRecord> {
    let record = engine.central.resolve_conflict(id, keep).await?;
    info!(id, keep = %keep, table = %record.table, "conflict resolved");
    Ok(record)
}

/// Settle the conflicts an application chose a side for in the edge's
/// `es_conflicts` (`UPDATE es_conflicts SET choice = 'local'|'central'`),
/// exactly like `conflicts resolve`. A conflict the central no longer has
/// open (settled from the CLI or another way, or purged) leaves the edge; any
/// other failure is kept on the row and the choice is tried again next sync.
pub async fn apply_edge_choices(engine: &Engine, edge: &Edge) {
    let node = edge.config.node.as_str();
    let tables: Vec<String> = edge
        .tables
        .iter()
        .filter(|t| t.conflict == ConflictPolicy::Manual)
        .map(|t| t.edge.clone())
        .collect();
    if tables.is_empty() {
        return;
    }
    let choices = match edge.db.conflict_choices(&tables).await {
        Ok(c) => c,
        Err(e) => {
            warn!(node, "cannot read conflict choices from the edge file: {e}");
            return;
        }
    };
    for (id, keep) in choices {
        let error = match engine.central.resolve_conflict(id, keep).await {
            Ok(record) => {
                info!(node, id, keep = %keep, table = %record.table, "conflict resolved from the edge");
                None
            }
            Err(e) if matches!(e.kind(), ErrorKind::Constraint | ErrorKind::Config) => {
                info!(
                    node,
                    id, "conflict chosen on the edge is no longer open: {e}"
                );
                None
            }
            Err(e) => {
                warn!(node, id, "cannot resolve conflict chosen on the edge: {e}");
                Some(format!("{e:#}"))
            }
        };
        if let Err(e) = edge.db.settle_choice(id, error.as_deref()).await {
            warn!(
                node,
                id, "cannot record the resolution in the edge file: {e}"
            );
        }
    }
}

/// Does a central conflict log entry (`ConflictRecord::table`) belong to
/// this mapping's central table?
pub fn logged_for(m: &TableMapping, logged: &str) -> bool {
    let q = QualifiedName::parse(logged);
    q.name.eq_ignore_ascii_case(&m.central.name)
        && match (&q.schema, &m.central.schema) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => true,
        }
}

/// Copy this node's open conflicts of its `manual` tables into the edge's
/// `es_conflicts`, and drop the ones the central reports settled. One read
/// of the central's log per edge sync, only for edges with manual tables.
pub async fn refresh_edge_conflicts(engine: &Engine, edge: &Edge) -> Result<()> {
    let node = edge.config.node.as_str();
    let manual: Vec<&TableMapping> = edge
        .tables
        .iter()
        .filter(|t| t.conflict == ConflictPolicy::Manual)
        .collect();
    if manual.is_empty() {
        return Ok(());
    }
    let open = engine
        .central
        .conflicts(false, LIST_LIMIT)
        .await
        .context("reading the conflict log")?;
    let complete = open.len() < LIST_LIMIT;
    for m in manual {
        let mine: Vec<ConflictRecord> = open
            .iter()
            .filter(|c| c.open && c.node == node && logged_for(m, &c.table))
            .cloned()
            .collect();
        edge.db
            .refresh_conflicts(m, &mine, complete)
            .await
            .with_context(|| format!("copying the open conflicts of {} to the edge", m.edge))?;
    }
    Ok(())
}

/// Purge settled conflicts older than `sync.conflict_retention`, at most
/// once per [`PURGE_EVERY`] for this engine (the first sync cycle of a
/// process always purges). Failures are logged, never fatal: the log only
/// grows until the next attempt.
pub async fn purge_if_due(engine: &Engine) {
    {
        let Ok(mut last) = engine.last_purge.lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < PURGE_EVERY) {
            return;
        }
        *last = Some(Instant::now());
    }
    let retention = engine.config.sync.conflict_retention;
    match engine.central.purge_conflicts(retention).await {
        Ok(0) => {}
        Ok(n) => info!(purged = n, ?retention, "purged settled conflicts"),
        Err(e) => warn!("could not purge the conflict log: {e}"),
    }
}

fn row_text(row: &Option<Vec<(String, Value)>>) -> String {
    match row {
        None => "(deleted or absent)".into(),
        Some(cols) => cols
            .iter()
            .map(|(k, v)| format!("{k}={}", v.display()))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The human-readable listing: one header line per conflict, then its base,
/// local, central and result rows.
pub fn render(list: &[ConflictRecord], all: bool) -> String {
    let mut out = String::new();
    if list.is_empty() {
        let _ = writeln!(out, "no {}conflicts", if all { "" } else { "open " });
        return out;
    }
    for c in list {
        let key: Vec<String> = c
            .key
            .iter()
            .map(|(k, v)| format!("{k}={}", v.display()))
            .collect();
        let state = match (c.open, c.kept) {
            (true, _) => "open".to_string(),
            (false, Some(k)) => format!("resolved, kept {k}"),
            (false, None) => "resolved".to_string(),
        };
        let _ = writeln!(
            out,
            "#{} {} {} [{state}] node {} strategy {} at {}",
            c.id,
            c.table,
            key.join(","),
            c.node,
            c.strategy,
            c.at.format("%Y-%m-%d %H:%M:%SZ"),
        );
        let _ = writeln!(out, "    base:    {}", row_text(&c.base));
        let _ = writeln!(
            out,
            "    local:   {}  (hlc {})",
            row_text(&c.local),
            edgesync_core::hlc::display(c.local_hlc)
        );
        let _ = writeln!(
            out,
            "    central: {}  (hlc {})",
            row_text(&c.central),
            edgesync_core::hlc::display(c.central_hlc)
        );
        let _ = writeln!(out, "    result:  {}", row_text(&c.result));
    }
    if list.iter().any(|c| c.open) {
        let _ = writeln!(
            out,
            "settle one with `edgesync conflicts resolve ID --keep local|central`"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgesync_core::ConflictPolicy;

    #[test]
    fn render_shows_every_version() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let c = ConflictRecord {
            id: 7,
            table: "items".into(),
            key: vec![("id".into(), Value::Int(1))],
            node: "a".into(),
            strategy: ConflictPolicy::Manual,
            base_version: Some(3),
            base: Some(vec![("qty".into(), Value::Int(1))]),
            local: Some(vec![("qty".into(), Value::Int(5))]),
            central: None,
            result: None,
            local_hlc: edgesync_core::hlc::pack(1_700_000_000_000, 0),
            central_hlc: 0,
            at,
            open: true,
            resolved_at: None,
            kept: None,
        };
        let text = render(&[c], false);
        assert!(
            text.contains("#7 items id=1 [open] node a strategy manual"),
            "{text}"
        );
        assert!(text.contains("base:    qty=1"), "{text}");
        assert!(text.contains("local:   qty=5"), "{text}");
        assert!(text.contains("central: (deleted or absent)"), "{text}");
        assert!(text.contains("conflicts resolve"), "{text}");
        assert_eq!(render(&[], true), "no conflicts\n");
    }
}
