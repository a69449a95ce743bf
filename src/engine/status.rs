//! `status`: what an operator needs at 3 a.m., per node and table.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use super::Engine;

/// One line of `status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableStatus {
    /// Node id.
    pub node: String,
    /// Edge table.
    pub table: String,
    /// Local changes not yet acknowledged by the central.
    pub pending: i64,
    /// Push watermark (highest local sequence the central confirmed).
    pub push_watermark: i64,
    /// Whether the initial load has completed.
    pub initial_load_complete: bool,
    /// Last successful push (UTC).
    pub last_push: Option<String>,
    /// Last completed pull pass (UTC).
    pub last_pull: Option<String>,
    /// The last sync error, if the last attempt failed.
    pub last_error: Option<String>,
    /// When that error happened.
    pub last_error_at: Option<String>,
    /// Local changes the central refused (see `edgesync quarantine list`).
    pub quarantined: i64,
    /// Fresh snapshots this table took because the node had been away
    /// longer than the central's `sync.retention`.
    pub resnapshots: i64,
    /// When the last one completed (UTC).
    pub last_resnapshot: Option<String>,
    /// A re-snapshot is under way (it resumes on the next sync).
    pub resnapshotting: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// The central backend.
    pub central: String,
    /// Per node and table.
    pub tables: Vec<TableStatus>,
    /// Conflicts waiting for `conflicts resolve`.
    pub open_conflicts: usize,
}

impl Report {
    /// Does something need a person's attention (errors, open conflicts)?
    pub fn needs_attention(&self) -> bool {
        self.open_conflicts > 0
            || self
                .tables
                .iter()
                .any(|t| t.last_error.is_some() || t.quarantined > 0)
    }
}

/// Gather the report.
pub async fn report(engine: &Engine) -> Result<Report> {
    let mut tables = Vec::new();
    for edge in &engine.edges {
        for t in &edge.tables {
            let s = edge.db.status(t).await?;
            let r = edge.db.resnapshots(&t.edge).await?;
            tables.push(TableStatus {
                node: edge.config.node.clone(),
                table: t.edge.clone(),
                pending: s.pending,
                push_watermark: s.push_wm,
                initial_load_complete: s.pull_complete || !t.direction.pulls(),
                last_push: s.last_push,
                last_pull: s.last_pull,
                last_error: s.last_error,
                last_error_at: s.last_error_at,
                quarantined: s.quarantined,
                resnapshots: r.count,
                last_resnapshot: r.last_at,
                resnapshotting: r.active,
            });
        }
    }
    let open_conflicts = engine.central.conflicts(false, 10_000).await?.len();
    Ok(Report {
        central: engine.central.backend().to_string(),
        tables,
        open_conflicts,
    })
}

/// Render the report as a fixed-width table.
pub fn render(report: &Report) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "NODE".into(),
        "TABLE".into(),
        "PENDING".into(),
        "QUARANTINED".into(),
        "LAST PUSH".into(),
        "LAST PULL".into(),
        "LAST ERROR".into(),
    ]];
    for t in &report.tables {
        rows.push([
            t.node.clone(),
            t.table.clone(),
            t.pending.to_string(),
            t.quarantined.to_string(),
            t.last_push.clone().unwrap_or_else(|| "never".into()),
            match (&t.last_pull, t.initial_load_complete) {
                (Some(p), _) => p.clone(),
                (None, false) => "initial load pending".into(),
                (None, true) => "never".into(),
            },
            t.last_error.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths.iter()).enumerate() {
            if i == 6 {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for t in report.tables.iter() {
        if t.resnapshots > 0 || t.resnapshotting {
            let _ = writeln!(
                out,
                "{}/{}: {} fresh snapshot(s) after the central's retention passed it{}{}",
                t.node,
                t.table,
                t.resnapshots,
                t.last_resnapshot
                    .as_ref()
                    .map(|at| format!(", last at {at}"))
                    .unwrap_or_default(),
                if t.resnapshotting {
                    "; one under way"
                } else {
                    ""
                }
            );
        }
    }
    let _ = writeln!(
        out,
        "central: {}   open conflicts: {}",
        report.central, report.open_conflicts
    );
    out
}
