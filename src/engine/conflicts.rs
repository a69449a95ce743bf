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
use edgesync_core::{ConflictRecord, Keep, Value};
use tracing::{info, warn};

use super::Engine;

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
