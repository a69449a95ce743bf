//! `init-sync` and `deinit-sync`: plan everything first, then execute.
//!
//! Every database's plan is computed before any of them is changed, so a
//! problem found on the second edge file does not leave the central half
//! provisioned. Each plan runs in one transaction on its database; plans list
//! only what is missing, so a re-run after any failure completes the job and a
//! run with nothing to do says so.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use edgesync_core::central::Statement;

use super::Engine;

/// One database's plan.
pub struct Plan {
    /// Which database (for output).
    pub target: String,
    /// The statements, possibly empty.
    pub statements: Vec<Statement>,
}

/// Which way we provision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `init-sync`.
    Init,
    /// `deinit-sync`.
    Deinit,
}

/// Compute the plans for the central and every selected edge.
pub async fn plan(engine: &Engine, action: Action, all: bool) -> Result<Vec<Plan>> {
    let mut plans = Vec::new();
    let central_maps = engine.central_mappings();
    let central_stmts = match action {
        Action::Init => engine.central.plan_init(&central_maps).await,
        Action::Deinit => engine.central.plan_deinit(&central_maps, all).await,
    }
    .with_context(|| format!("planning the {} central", engine.central.backend()))?;
    plans.push(Plan {
        target: format!("central ({})", engine.central.backend()),
        statements: central_stmts,
    });
    for edge in &engine.edges {
        if action == Action::Init {
            refuse_type_changes(edge).await?;
        }
        let stmts = match action {
            Action::Init => edge.db.plan_init(&edge.config.node, &edge.tables).await,
            Action::Deinit => edge.db.plan_deinit(&edge.tables, all).await,
        }
        .with_context(|| {
            format!(
                "planning edge {} ({})",
                edge.config.node,
                edge.db.path().display()
            )
        })?;
        plans.push(Plan {
            target: format!("edge {} ({})", edge.config.node, edge.db.path().display()),
            statements: stmts,
        });
    }
    Ok(plans)
}

/// A table whose central column changed type in a way its edge column cannot
/// hold, or lost a column the edge table cannot do without, is not
/// re-provisioned over it: the operator changes the edge table first (see
/// "Schema changes" in the README).
async fn refuse_type_changes(edge: &super::Edge) -> Result<()> {
    let mut problems = Vec::new();
    for t in &edge.tables {
        if let Some((_, p)) = super::mapping::recorded(&edge.db, t)
            .await
            .with_context(|| format!("edge {}: table {}", edge.config.node, t.edge))?
        {
            problems.extend(
                p.into_iter()
                    .map(|p| format!("edge {}: {p}", edge.config.node)),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", problems.join("\n"))
    }
}

/// Render plans as reviewable SQL, per database.
pub fn render(plans: &[Plan]) -> String {
    let mut out = String::new();
    for p in plans {
        let _ = writeln!(out, "-- ===== {} =====", p.target);
        if p.statements.is_empty() {
            let _ = writeln!(out, "-- nothing to do");
        }
        for s in &p.statements {
            let _ = writeln!(out, "-- {}", s.purpose);
            let sql = s.sql.trim_end();
            let _ = writeln!(out, "{sql}{}", if sql.ends_with(';') { "" } else { ";" });
        }
        out.push('\n');
    }
    out
}

/// Execute plans, central first. Returns one summary line per database.
pub async fn execute(engine: &Engine, plans: &[Plan]) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        if p.statements.is_empty() {
            lines.push(format!("{}: already in place, nothing changed", p.target));
            continue;
        }
        let res = if i == 0 {
            engine.central.execute(&p.statements).await
        } else {
            engine.edges[i - 1].db.execute(&p.statements).await
        };
        res.with_context(|| format!("{}: provisioning failed, rolled back", p.target))?;
        lines.push(format!(
            "{}: {} statements applied",
            p.target,
            p.statements.len()
        ));
    }
    Ok(lines)
}
