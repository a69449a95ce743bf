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
    /// Not a table policy (`check-config` refuses it in `sync.toml`): what
    /// the conflict log records for a push refused because its row, or the
    /// central row it would change, is outside the pushing node's `filter`
    /// (see [`crate::filter`]). The central row is kept.
    OutOfScope,
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
            ConflictPolicy::OutOfScope => "out-of-scope",
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

/// Which version `edgesync conflicts resolve --keep` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    /// The edge's version: written to the central as a new version that
    /// every node (the one that pushed it included) pulls.
    Local,
    /// The central's version, which stayed: the conflict is just closed.
    Central,
}

impl Keep {
    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Keep::Local => "local",
            Keep::Central => "central",
        }
    }

    /// Parse the command-line spelling.
    pub fn parse(s: &str) -> Option<Keep> {
        match s {
            "local" => Some(Keep::Local),
            "central" => Some(Keep::Central),
            _ => None,
        }
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// `field-merge` only, with [`Decision::Apply`]: the merged row to write
    /// *instead of* the incoming values, present when it differs from both
    /// the edge's row and the central's (otherwise the decision is a plain
    /// `Apply` of the edge's row or `KeepCentral`). The adapter writes it
    /// with the pushing node as origin (so it is not echoed back to it) but
    /// with no origin sequence (`es_oseq` NULL: it is not the node's own
    /// write, see [`rebase`]), stamped [`merged_hlc`], and answers
    /// [`crate::PushOutcome::Superseded`] with it at its new version, so the
    /// edge takes the merged row too.
    pub merged: Option<Vec<Value>>,
}

impl Resolution {
    fn plain(decision: Decision, conflict: Option<bool>) -> Resolution {
        Resolution {
            decision,
            conflict,
            merged: None,
        }
    }

    /// The row the key holds once this resolution is written (`None`:
    /// deleted or absent), for the conflict log's `result`.
    pub fn result<'a>(
        &'a self,
        incoming: &'a Change,
        current: Option<&'a CentralRow>,
    ) -> Option<&'a [Value]> {
        match self.decision {
            Decision::Apply if incoming.deleted => None,
            Decision::Apply => self.merged.as_deref().or(incoming.values.as_deref()),
            Decision::KeepCentral | Decision::AlreadyThere => current
                .filter(|c| !c.deleted)
                .and_then(|c| c.values.as_deref()),
        }
    }
}

/// The HLC stamp a merged row is written with: the later of the two writes
/// it combines, so it sorts after both.
pub fn merged_hlc(incoming_hlc: i64, current: Option<&CentralRow>) -> i64 {
    current.map_or(incoming_hlc, |c| c.hlc.max(incoming_hlc))
}

/// Decide `incoming` (pushed by `node`) against `current` under `policy`,
/// without base values (so `field-merge` decides at row level, by HLC).
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
    resolve_with_base(policy, node, incoming, None, current)
}

/// [`resolve`], knowing the values the edge's write started from (`base`,
/// in mapping order), which `field-merge` needs for its three-way merge.
///
/// `field-merge`, for an update meeting a live central row with the base
/// known: columns are merged by [`merge`]. The result is a plain `Apply`
/// when the merge equals the edge's row, `KeepCentral` when it equals the
/// central's, else `Apply` with [`Resolution::merged`]. Without a base
/// (insert/insert), or when either side deleted the row, `field-merge`
/// falls back to last-write-wins for the whole row.
pub fn resolve_with_base(
    policy: ConflictPolicy,
    node: &str,
    incoming: &Change,
    base: Option<&[Value]>,
    current: Option<&CentralRow>,
) -> Resolution {
    let central_gone = current.is_none_or(|c| c.deleted);
    if incoming.deleted && central_gone {
        // delete/delete, or a delete of a row the central never had.
        return Resolution::plain(Decision::AlreadyThere, None);
    }
    let base_matches = match (incoming.base, current) {
        (None, None) => true,
        (Some(b), Some(c)) => b == c.version,
        // The row was purged centrally after being deleted there; treat a
        // tombstone-less absence like a delete the edge has not seen.
        _ => false,
    };
    let conflict = (!base_matches).then_some(policy == ConflictPolicy::Manual);
    if policy == ConflictPolicy::FieldMerge && !incoming.deleted {
        let live = current.filter(|c| !c.deleted);
        if let (Some(inc), Some(base), Some(c)) = (incoming.values.as_deref(), base, live) {
            if let Some(cen) = c.values.as_deref() {
                if inc.len() == base.len() && inc.len() == cen.len() {
                    let (merged, _) = merge(
                        inc,
                        base,
                        cen,
                        incoming.hlc,
                        node,
                        c.hlc,
                        c.origin.as_deref().unwrap_or(""),
                    );
                    let same = |row: &[Value]| merged.iter().zip(row).all(|(a, b)| a.same_as(b));
                    return if same(inc) {
                        Resolution::plain(Decision::Apply, conflict)
                    } else if same(cen) && !base_matches {
                        Resolution::plain(Decision::KeepCentral, conflict)
                    } else {
                        Resolution {
                            decision: Decision::Apply,
                            conflict,
                            merged: Some(merged),
                        }
                    };
                }
            }
        }
    }
    if base_matches {
        return Resolution::plain(Decision::Apply, None);
    }
    let winner = match policy {
        ConflictPolicy::ServerWins | ConflictPolicy::Manual | ConflictPolicy::OutOfScope => {
            Decision::KeepCentral
        }
        ConflictPolicy::ClientWins => Decision::Apply,
        // Field-merge gets here only without a base or against a delete:
        // the whole row goes by the HLC order, which is also what a column
        // changed on both sides uses.
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
    Resolution::plain(winner, conflict)
}

/// The whole decision for one fresh pushed change, as every central adapter
/// makes it: [`rebase`], then [`resolve_with_base`]. `base` is the change's
/// base values from the batch ([`crate::PushBatch::base_of`]). When `rebase`
/// finds that the node's own earlier write is the real base (a lost push
/// answer), that row's values are the base values too.
pub fn decide(
    policy: ConflictPolicy,
    node: &str,
    change: &Change,
    base: Option<&[Value]>,
    current: Option<&CentralRow>,
    current_oseq: Option<i64>,
) -> Resolution {
    let (judged, seen) = rebase(node, change, current, current_oseq);
    let base = if judged.base != change.base {
        seen.and_then(|c| c.values.as_deref())
    } else {
        base
    };
    resolve_with_base(policy, node, &judged, base, seen)
}

/// The columns of `values` that differ from `base` (by [`Value::same_as`]):
/// what an edge's write changed, the delta a `field-merge` push applies.
pub fn changed_columns(values: &[Value], base: &[Value]) -> Vec<usize> {
    values
        .iter()
        .zip(base)
        .enumerate()
        .filter(|(_, (v, b))| !v.same_as(b))
        .map(|(i, _)| i)
        .collect()
}

/// The three-way merge of `field-merge`, column by column, against the
/// `base` both sides started from: a column changed on one side only takes
/// that side's value; a column changed on both sides to different values
/// takes the value of the write with the later HLC stamp (ties broken by
/// node id, the central application's being `""`, as in [`hlc::later`]).
///
/// Returns the merged row and the columns that were changed on both sides
/// to different values (the real clashes). All three rows must have the same
/// length (the mapping's columns); extra values are ignored.
pub fn merge(
    incoming: &[Value],
    base: &[Value],
    central: &[Value],
    incoming_hlc: i64,
    incoming_node: &str,
    central_hlc: i64,
    central_origin: &str,
) -> (Vec<Value>, Vec<usize>) {
    let incoming_later = hlc::later((incoming_hlc, incoming_node), (central_hlc, central_origin));
    let mut clashes = Vec::new();
    let merged = incoming
        .iter()
        .zip(base)
        .zip(central)
        .enumerate()
        .map(|(i, ((inc, b), cen))| {
            let edge_changed = !inc.same_as(b);
            let central_changed = !cen.same_as(b);
            match (edge_changed, central_changed) {
                (true, false) => inc.clone(),
                (true, true) if !inc.same_as(cen) => {
                    clashes.push(i);
                    if incoming_later {
                        inc.clone()
                    } else {
                        cen.clone()
                    }
                }
                _ => cen.clone(),
            }
        })
        .collect();
    (merged, clashes)
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
///   A `field-merge` result is written under the node's name (so the node is
///   not sent it back as an echo) but with no sequence (`current_oseq` is
///   `None`): it is not the node's own write, and the node may not have taken
///   it (it wrote the row again while the push was in flight), so it is never
///   taken as a base here.
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
    /// The row as the edge last synced it, at `base_version` (`None` = not
    /// known: a row new on the edge, e.g. insert/insert).
    #[serde(default)]
    pub base: Option<Vec<(String, Value)>>,
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
    /// When it was settled: `at` for a conflict the policy decided, the time
    /// of `conflicts resolve` for a manual one; `None` while open. Retention
    /// (`sync.conflict_retention`) counts from here.
    #[serde(default)]
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Which version `conflicts resolve` kept (manual conflicts only).
    #[serde(default)]
    pub kept: Option<Keep>,
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
                conflict: None,
                merged: None,
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
                conflict: None,
                merged: None,
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
                conflict: None,
                merged: None,
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

    // ---- field-merge and the full policy table ----

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    /// Every combination of (edge changed?, central changed?, same new
    /// value?) for one column, in both HLC orders and on a tie.
    #[test]
    fn merge_is_exhaustive_per_column() {
        let base = [t("b")];
        // (incoming, central, expected when incoming later, expected when central later, clash)
        let cases = [
            ("b", "b", "b", "b", false), // neither changed
            ("e", "b", "e", "e", false), // edge only
            ("b", "c", "c", "c", false), // central only
            ("x", "x", "x", "x", false), // both, to the same value
            ("e", "c", "e", "c", true),  // both, differently: HLC decides
        ];
        for (inc, cen, if_inc_later, if_cen_later, clash) in cases {
            let (m, c) = merge(&[t(inc)], &base, &[t(cen)], 20, "a", 10, "b");
            assert_eq!(m, vec![t(if_inc_later)], "{inc}/{cen} incoming later");
            assert_eq!(c.is_empty(), !clash);
            let (m, _) = merge(&[t(inc)], &base, &[t(cen)], 10, "a", 20, "b");
            assert_eq!(m, vec![t(if_cen_later)], "{inc}/{cen} central later");
            // equal stamps: the node id decides ("b" > "a"; a central
            // application write, "", loses to any node)
            let (m, _) = merge(&[t(inc)], &base, &[t(cen)], 10, "a", 10, "b");
            assert_eq!(m, vec![t(if_cen_later)], "{inc}/{cen} tie, b wins");
            let (m, _) = merge(&[t(inc)], &base, &[t(cen)], 10, "a", 10, "");
            assert_eq!(m, vec![t(if_inc_later)], "{inc}/{cen} tie vs central app");
        }
    }

    #[test]
    fn merge_combines_columns_and_reports_clashes() {
        let base = [
            Value::Int(1),
            t("n"),
            Value::Decimal("1.00".into()),
            Value::Int(1),
        ];
        let edge = [
            Value::Int(1),
            t("n"),
            Value::Decimal("1.00".into()),
            Value::Int(5),
        ];
        let cen = [
            Value::Int(1),
            t("n"),
            Value::Decimal("2.00".into()),
            Value::Int(7),
        ];
        let (m, clashes) = merge(&edge, &base, &cen, 100, "a", 50, "");
        assert_eq!(
            m,
            vec![
                Value::Int(1),
                t("n"),
                Value::Decimal("2.00".into()),
                Value::Int(5)
            ]
        );
        assert_eq!(clashes, vec![3]);
        // a normalised value is not a change: 1.00 stored as 1.0000 centrally
        let cen = [
            Value::Int(1),
            t("n"),
            Value::Decimal("1.0000".into()),
            Value::Int(1),
        ];
        let (m, clashes) = merge(&edge, &base, &cen, 1, "a", 50, "");
        assert_eq!(m[3], Value::Int(5));
        assert!(clashes.is_empty());
        assert_eq!(changed_columns(&edge, &base), vec![3]);
        assert_eq!(changed_columns(&base, &base), Vec::<usize>::new());
        // NULL is a value like any other
        let (m, _) = merge(&[Value::Null], &[t("x")], &[t("x")], 1, "a", 2, "b");
        assert_eq!(m, vec![Value::Null]);
    }

    /// The row the test table starts from: (id, name, price, qty).
    fn row(name: &str, price: &str, qty: i64) -> Vec<Value> {
        vec![
            Value::Int(1),
            t(name),
            Value::Decimal(price.into()),
            Value::Int(qty),
        ]
    }

    fn push(values: Option<Vec<Value>>, deleted: bool, base: Option<i64>, hlc: i64) -> Change {
        Change {
            key: vec![Value::Int(1)],
            values,
            deleted,
            version: 10,
            base,
            hlc,
        }
    }

    fn cen(values: Option<Vec<Value>>, deleted: bool, hlc: i64) -> CentralRow {
        CentralRow {
            values,
            deleted,
            version: 5,
            hlc,
            origin: Some("b".into()),
        }
    }

    #[derive(Debug, PartialEq)]
    enum Want {
        Edge,
        Central,
        Nothing,
        Merged(Vec<Value>),
    }

    /// Every strategy x every case, decided in core, the edge's write being
    /// the HLC-later one (stamp 200 against 100). This is the table the
    /// README documents; tests/conflicts.rs proves it end to end.
    #[test]
    fn the_policy_table() {
        use ConflictPolicy::*;
        let base = row("base", "1.00", 1);
        let base_v = Some(4); // the central has moved on to version 5
        type Case = (&'static str, Change, Option<Vec<Value>>, Option<CentralRow>);
        let cases: Vec<Case> = vec![
            (
                "update/update same column",
                push(Some(row("base", "1.00", 3)), false, base_v, 200),
                Some(base.clone()),
                Some(cen(Some(row("base", "1.00", 2)), false, 100)),
            ),
            (
                "update/update different columns",
                push(Some(row("base", "1.00", 3)), false, base_v, 200),
                Some(base.clone()),
                Some(cen(Some(row("base", "2.00", 1)), false, 100)),
            ),
            (
                "update/delete (soft)",
                push(Some(row("base", "1.00", 3)), false, base_v, 200),
                Some(base.clone()),
                Some(cen(Some(base.clone()), true, 100)),
            ),
            (
                "update/delete (hard)",
                push(Some(row("base", "1.00", 3)), false, base_v, 200),
                Some(base.clone()),
                Some(cen(None, true, 100)),
            ),
            (
                "delete/update",
                push(None, true, base_v, 200),
                Some(base.clone()),
                Some(cen(Some(row("base", "1.00", 2)), false, 100)),
            ),
            (
                "delete/delete",
                push(None, true, base_v, 200),
                Some(base.clone()),
                Some(cen(None, true, 100)),
            ),
            (
                "insert/insert",
                push(Some(row("a", "3.00", 3)), false, None, 200),
                None,
                Some(cen(Some(row("b", "2.00", 2)), false, 100)),
            ),
        ];
        let merged_diff = Want::Merged(row("base", "2.00", 3));
        #[rustfmt::skip]
        let table: Vec<(ConflictPolicy, [Want; 7])> = vec![
            (ServerWins,    [Want::Central, Want::Central, Want::Central, Want::Central, Want::Central, Want::Nothing, Want::Central]),
            (ClientWins,    [Want::Edge,    Want::Edge,    Want::Edge,    Want::Edge,    Want::Edge,    Want::Nothing, Want::Edge]),
            (LastWriteWins, [Want::Edge,    Want::Edge,    Want::Edge,    Want::Edge,    Want::Edge,    Want::Nothing, Want::Edge]),
            (FieldMerge,    [Want::Edge,    merged_diff,   Want::Edge,    Want::Edge,    Want::Edge,    Want::Nothing, Want::Edge]),
            (Manual,        [Want::Central, Want::Central, Want::Central, Want::Central, Want::Central, Want::Nothing, Want::Central]),
        ];
        for (policy, wants) in table {
            for ((name, change, base, current), want) in cases.iter().zip(wants) {
                let r = decide(
                    policy,
                    "a",
                    change,
                    base.as_deref(),
                    current.as_ref(),
                    Some(3),
                );
                let got = match (&r.decision, &r.merged) {
                    (Decision::Apply, Some(m)) => Want::Merged(m.clone()),
                    (Decision::Apply, None) => Want::Edge,
                    (Decision::KeepCentral, _) => Want::Central,
                    (Decision::AlreadyThere, _) => Want::Nothing,
                };
                assert_eq!(got, want, "{policy} / {name}");
                let expect_conflict = (*name != "delete/delete").then_some(policy == Manual);
                assert_eq!(r.conflict, expect_conflict, "{policy} / {name}: conflict");
            }
        }
    }

    #[test]
    fn last_write_wins_and_field_merge_follow_the_clock_both_ways() {
        let base = row("base", "1.00", 1);
        let inc = push(Some(row("base", "1.00", 3)), false, Some(4), 100);
        let c = cen(Some(row("base", "1.00", 7)), false, 200);
        for p in [ConflictPolicy::LastWriteWins, ConflictPolicy::FieldMerge] {
            let r = decide(p, "a", &inc, Some(&base), Some(&c), None);
            assert_eq!(r.decision, Decision::KeepCentral, "{p}");
            assert_eq!(r.result(&inc, Some(&c)), c.values.as_deref());
        }
        // field-merge: the central's later write wins qty, the edge keeps its
        // own change of another column
        let inc = push(Some(row("mine", "1.00", 3)), false, Some(4), 100);
        let r = decide(
            ConflictPolicy::FieldMerge,
            "a",
            &inc,
            Some(&base),
            Some(&c),
            None,
        );
        assert_eq!(r.merged, Some(row("mine", "1.00", 7)));
        assert_eq!(r.result(&inc, Some(&c)), Some(&row("mine", "1.00", 7)[..]));
        assert_eq!(merged_hlc(inc.hlc, Some(&c)), 200);
    }

    #[test]
    fn field_merge_without_a_conflict_applies_only_the_edges_changes() {
        let base = row("base", "1.00", 1);
        let inc = push(Some(row("base", "1.00", 3)), false, Some(5), 100);
        let c = cen(Some(base.clone()), false, 200);
        let r = decide(
            ConflictPolicy::FieldMerge,
            "a",
            &inc,
            Some(&base),
            Some(&c),
            None,
        );
        assert_eq!(r, Resolution::plain(Decision::Apply, None));
        // a lost answer: the node's own write is the base, values included
        let mut own = cen(Some(row("base", "1.00", 2)), false, 50);
        own.origin = Some("a".into());
        let r = decide(
            ConflictPolicy::FieldMerge,
            "a",
            &inc,
            Some(&base),
            Some(&own),
            Some(9),
        );
        assert_eq!(r, Resolution::plain(Decision::Apply, None));
    }

    #[test]
    fn a_merged_row_is_never_the_nodes_own_base() {
        // written under the node's name by a field-merge, with no sequence
        let mut merged = cen(Some(row("base", "2.00", 3)), false, 300);
        merged.origin = Some("a".into());
        let base = row("base", "1.00", 1);
        let inc = push(Some(row("a2", "1.00", 3)), false, Some(4), 400);
        let (judged, _) = rebase("a", &inc, Some(&merged), None);
        assert_eq!(judged.base, Some(4), "still a conflict");
        let r = decide(
            ConflictPolicy::FieldMerge,
            "a",
            &inc,
            Some(&base),
            Some(&merged),
            None,
        );
        assert_eq!(r.merged, Some(row("a2", "2.00", 3)));
        assert_eq!(r.conflict, Some(false));
    }

    #[test]
    fn results_for_the_log() {
        let inc = push(None, true, Some(4), 1);
        let c = cen(Some(row("base", "1.00", 2)), false, 2);
        let apply = Resolution::plain(Decision::Apply, Some(false));
        assert_eq!(apply.result(&inc, Some(&c)), None);
        let keep = Resolution::plain(Decision::KeepCentral, Some(true));
        assert_eq!(keep.result(&inc, Some(&c)), c.values.as_deref());
        assert_eq!(keep.result(&inc, None), None);
        assert_eq!(Keep::parse("local"), Some(Keep::Local));
        assert_eq!(Keep::Central.to_string(), "central");
        assert_eq!(Keep::parse("remote"), None);
    }
}
