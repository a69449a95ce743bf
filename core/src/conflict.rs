//! Conflict policies, and the pure function every central adapter calls to
//! decide a pushed change against the central row it has locked.
//!
//! Keeping the decision here, free of I/O, means the five adapters cannot
//! disagree about what `client-wins` means, and the whole policy table can be
//! unit-tested without a database.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::change::Change;
use crate::hlc;
use crate::value::Value;

/// How a table resolves a write made on both sides since the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictPolicy {
    /// The central's state stays; the edge takes it.
    ServerWins,
    /// The edge's write replaces the central's.
    ClientWins,
    /// The write with the later hybrid-logical-clock stamp wins.
    LastWriteWins,
    /// Three-way merge per column against the last synced base.
    FieldMerge,
    /// The central's state stays and both versions are parked for a person.
    Manual,
}

impl ConflictPolicy {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictPolicy::ServerWins => "server-wins",
            ConflictPolicy::ClientWins => "client-wins",
            ConflictPolicy::LastWriteWins => "last-write-wins",
            ConflictPolicy::FieldMerge => "field-merge",
            ConflictPolicy::Manual => "manual",
        }
    }
}

impl fmt::Display for ConflictPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a table's changes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Edge to central and back.
    Both,
    /// Edge to central only (upload-only).
    Push,
    /// Central to edge only (read-only on the edge).
    Pull,
}

impl Direction {
    /// Does this table push edge changes?
    pub fn pushes(self) -> bool {
        matches!(self, Direction::Both | Direction::Push)
    }
    /// Does this table pull central changes?
    pub fn pulls(self) -> bool {
        matches!(self, Direction::Both | Direction::Pull)
    }
}

/// What a delete does to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteMode {
    /// The row stays with its `es_deleted` marker set.
    Soft,
    /// The row is removed; a tombstone carries the delete.
    Hard,
}

/// The central's current state of a row, as locked inside the push
/// transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct CentralRow {
    /// Column values in mapping order; `None` if the row is gone (a
    /// tombstone).
    pub values: Option<Vec<Value>>,
    /// Soft-delete marker, or `true` for a tombstone.
    pub deleted: bool,
    /// Central version.
    pub version: i64,
    /// HLC stamp of the last write.
    pub hlc: i64,
    /// Node that wrote it, `None` for a central application write.
    pub origin: Option<String>,
}

impl CentralRow {
    /// As a pull-style change for a `Superseded` outcome.
    pub fn to_change(&self, key: Vec<Value>) -> Change {
        Change {
            key,
            values: self.values.clone(),
            deleted: self.deleted,
            version: self.version,
            base: None,
            hlc: self.hlc,
        }
    }
}

/// What the central should do with one pushed change.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Write the incoming change (insert, update or delete).
    Apply,
    /// Keep the central state; the edge is told to take it.
    KeepCentral,
    /// Nothing to write and nothing to tell: both sides already agree (a
    /// delete of a row that is already deleted or never existed centrally).
    AlreadyThere,
}

/// A decision, and whether it settled a conflict (which must be logged).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// What to do.
    pub decision: Decision,
    /// `Some(open)` if this was a conflict; `open` is true when it waits for
    /// a person (`manual`).
    pub conflict: Option<bool>,
}

/// Decide `incoming` (pushed by `node`) against `current` under `policy`.
///
/// A change is *not* a conflict when the edge's base equals the central's
/// current version (nobody else wrote since the edge last synced), or when
/// both sides deleted the row.
pub fn resolve(
    policy: ConflictPolicy,
    node: &str,
    incoming: &Change,
    current: Option<&CentralRow>,
) -> Resolution {
    let no_conflict = |decision| Resolution {
        decision,
        conflict: None,
    };
    let central_gone = current.is_none_or(|c| c.deleted);
    if incoming.deleted && central_gone {
        // delete/delete, or a delete of a row the central never had.
        return no_conflict(Decision::AlreadyThere);
    }
    let current_version = current.map(|c| c.version);
    let base_matches = match (incoming.base, current) {
        (None, None) => true,
        (Some(b), Some(c)) => b == c.version,
        // The row was purged centrally after being deleted there; treat a
        // tombstone-less absence like a delete the edge has not seen.
        _ => false,
    };
    if base_matches {
        return no_conflict(Decision::Apply);
    }
    let _ = current_version;
    let winner = match policy {
        ConflictPolicy::ServerWins | ConflictPolicy::Manual => Decision::KeepCentral,
        ConflictPolicy::ClientWins => Decision::Apply,
        // Field-merge decides per column in the adapter's merge step; at row
        // level it falls back to the HLC order, which is what a column changed
        // on both sides uses.
        ConflictPolicy::LastWriteWins | ConflictPolicy::FieldMerge => {
            let (c_hlc, c_origin) = current
                .map(|c| (c.hlc, c.origin.as_deref().unwrap_or("")))
                .unwrap_or((i64::MIN, ""));
            if hlc::later((incoming.hlc, node), (c_hlc, c_origin)) {
                Decision::Apply
            } else {
                Decision::KeepCentral
            }
        }
    };
    Resolution {
        decision: winner,
        conflict: Some(policy == ConflictPolicy::Manual),
    }
}

/// The base a pushed change really had, before [`resolve`] judges it.
///
/// Two cases where the edge's recorded base is not the whole truth, which
/// every central adapter must treat the same way:
///
/// - **A lost push answer.** The central row was last written by this same
///   node, at an earlier local sequence (`current_oseq < change.version`): the
///   node built this change on top of its own write, even though the answer
///   that would have told it the new version never arrived (crash between the
///   central commit and the edge's ack). That row is the change's base; without
///   this, `server-wins` would throw the application's newer write away.
/// - **An insert after a central delete.** An insert (no base) meeting a
///   tombstone re-creates a deleted key; the edge cannot have had a base for a
///   row that is gone, so it is not a conflict (Dotmim.Sync #175's classic
///   miss is the opposite mistake: dropping the re-insert).
///
/// Returns the change to judge (with its base adjusted) and the central state
/// to judge it against (`None` when the tombstone should be ignored).
pub fn rebase<'a>(
    node: &str,
    change: &Change,
    current: Option<&'a CentralRow>,
    current_oseq: Option<i64>,
) -> (Change, Option<&'a CentralRow>) {
    let mut judged = change.clone();
    if let Some(c) = current {
        let own =
            c.origin.as_deref() == Some(node) && current_oseq.is_some_and(|s| s < change.version);
        if own {
            judged.base = Some(c.version);
        }
        if c.values.is_none() && judged.base.is_none() {
            return (judged, None);
        }
    }
    (judged, current)
}

/// One entry of the conflict log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictRecord {
    /// Log id.
    pub id: i64,
    /// Central table name.
    pub table: String,
    /// Key columns and values.
    pub key: Vec<(String, Value)>,
    /// Node whose push met the conflict.
    pub node: String,
    /// Strategy that resolved it.
    pub strategy: ConflictPolicy,
    /// The central version the edge's write was based on.
    pub base_version: Option<i64>,
    /// The edge's row (`None` = deleted).
    pub local: Option<Vec<(String, Value)>>,
    /// The central's row before resolution (`None` = deleted or absent).
    pub central: Option<Vec<(String, Value)>>,
    /// The row after resolution (`None` = deleted).
    pub result: Option<Vec<(String, Value)>>,
    /// HLC stamp of the edge's write.
    pub local_hlc: i64,
    /// HLC stamp of the central's write.
    pub central_hlc: i64,
    /// When it was detected (UTC).
    pub at: chrono::DateTime<chrono::Utc>,
    /// Still waiting for `conflicts resolve` (manual only).
    pub open: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(base: Option<i64>, deleted: bool, hlc: i64) -> Change {
        Change {
            key: vec![Value::Int(1)],
            values: (!deleted).then(|| vec![Value::Int(1)]),
            deleted,
            version: 10,
            base,
            hlc,
        }
    }

    fn central(version: i64, deleted: bool, hlc: i64) -> CentralRow {
        CentralRow {
            values: Some(vec![Value::Int(1)]),
            deleted,
            version,
            hlc,
            origin: Some("b".into()),
        }
    }

    #[test]
    fn unchanged_base_is_not_a_conflict() {
        let r = resolve(
            ConflictPolicy::ServerWins,
            "a",
            &change(Some(5), false, 1),
            Some(&central(5, false, 9)),
        );
        assert_eq!(
            r,
            Resolution {
                decision: Decision::Apply,
                conflict: None
            }
        );
        let r = resolve(
            ConflictPolicy::ServerWins,
            "a",
            &change(None, false, 1),
            None,
        );
        assert_eq!(r.decision, Decision::Apply);
    }

    #[test]
    fn policies_decide_update_update() {
        let inc = change(Some(4), false, 100);
        let cur = central(5, false, 50);
        let d = |p| resolve(p, "a", &inc, Some(&cur));
        assert_eq!(
            d(ConflictPolicy::ServerWins).decision,
            Decision::KeepCentral
        );
        assert_eq!(d(ConflictPolicy::ClientWins).decision, Decision::Apply);
        assert_eq!(d(ConflictPolicy::LastWriteWins).decision, Decision::Apply);
        assert_eq!(d(ConflictPolicy::Manual).conflict, Some(true));
        let older = change(Some(4), false, 10);
        assert_eq!(
            resolve(ConflictPolicy::LastWriteWins, "a", &older, Some(&cur)).decision,
            Decision::KeepCentral
        );
    }

    #[test]
    fn insert_insert_is_a_conflict_and_delete_delete_is_not() {
        let r = resolve(
            ConflictPolicy::ServerWins,
            "a",
            &change(None, false, 1),
            Some(&central(3, false, 1)),
        );
        assert_eq!(r.conflict, Some(false));
        let r = resolve(
            ConflictPolicy::ServerWins,
            "a",
            &change(Some(2), true, 1),
            Some(&central(3, true, 1)),
        );
        assert_eq!(
            r,
            Resolution {
                decision: Decision::AlreadyThere,
                conflict: None
            }
        );
        let r = resolve(
            ConflictPolicy::ClientWins,
            "a",
            &change(Some(2), true, 1),
            None,
        );
        assert_eq!(r.decision, Decision::AlreadyThere);
    }

    #[test]
    fn a_lost_answer_makes_the_nodes_own_write_the_base() {
        let mut cur = central(7, false, 1);
        cur.origin = Some("a".into());
        let inc = change(Some(4), false, 2);
        let (judged, seen) = rebase("a", &inc, Some(&cur), Some(5));
        assert_eq!(judged.base, Some(7));
        assert_eq!(
            resolve(ConflictPolicy::ServerWins, "a", &judged, seen).decision,
            Decision::Apply
        );
        // another node's write stays a conflict
        let (judged, _) = rebase("b", &inc, Some(&cur), Some(5));
        assert_eq!(judged.base, Some(4));
        // an older sequence of ours is not a base for a replayed/stale change
        let (judged, _) = rebase("a", &inc, Some(&cur), Some(10));
        assert_eq!(judged.base, Some(4));
    }

    #[test]
    fn an_insert_after_a_central_delete_is_not_a_conflict() {
        let tomb = CentralRow {
            values: None,
            deleted: true,
            version: 9,
            hlc: 1,
            origin: None,
        };
        let inc = change(None, false, 2);
        let (judged, seen) = rebase("a", &inc, Some(&tomb), None);
        assert!(seen.is_none());
        assert_eq!(
            resolve(ConflictPolicy::ServerWins, "a", &judged, seen),
            Resolution {
                decision: Decision::Apply,
                conflict: None
            }
        );
    }

    #[test]
    fn update_against_central_delete_follows_policy() {
        let inc = change(Some(2), false, 5);
        assert_eq!(
            resolve(ConflictPolicy::ServerWins, "a", &inc, None).decision,
            Decision::KeepCentral
        );
        assert_eq!(
            resolve(ConflictPolicy::ClientWins, "a", &inc, None).decision,
            Decision::Apply
        );
        let soft = central(3, true, 1);
        assert_eq!(
            resolve(ConflictPolicy::ClientWins, "a", &inc, Some(&soft)).decision,
            Decision::Apply
        );
    }
}
