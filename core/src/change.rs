//! What travels: push batches (edge to central) and pull pages (central to
//! edge).

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::schema::TableMapping;
use crate::value::Value;

/// One row change.
///
/// In a push, `version` is the edge's local change sequence number (unique and
/// increasing per edge file) and `base` is the central version the edge last
/// synced this row at. In a pull, `version` is the central version and `base`
/// is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Key values, in the mapping's key order.
    pub key: Vec<Value>,
    /// All synced column values in mapping order, or `None` when the row is
    /// gone (hard delete: the change is a tombstone).
    pub values: Option<Vec<Value>>,
    /// Deleted: a soft-delete marker set, or a tombstone.
    pub deleted: bool,
    /// Local sequence (push) or central version (pull).
    pub version: i64,
    /// Push only: the central version this change was based on.
    pub base: Option<i64>,
    /// Hybrid logical clock stamp of the write.
    pub hlc: i64,
}

impl Change {
    /// A row that left the node's scope (its table's `filter` no longer
    /// selects it): only the key travels, with `values: None` and
    /// `deleted: false` (a shape no other change has). The edge removes its
    /// copy physically, even on a soft-delete table, without a tombstone and
    /// without capturing a local change: the row was not deleted, the node
    /// just no longer holds it. Sent in pulls (move-out) and as the
    /// `Superseded` row of a push refused as outside the scope.
    pub fn moved_out(key: Vec<Value>, version: i64, hlc: i64) -> Change {
        Change {
            key,
            values: None,
            deleted: false,
            version,
            base: None,
            hlc,
        }
    }

    /// Is this a [`Change::moved_out`]?
    pub fn is_move_out(&self) -> bool {
        self.values.is_none() && !self.deleted
    }
}

/// A push batch for one table: changes in increasing `version` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushBatch {
    /// Highest local sequence number covered by this batch. The central
    /// records it per node and table in the same transaction as the data, and
    /// treats any later change with `version <= hi` as a replay.
    pub hi: i64,
    /// The changes.
    pub changes: Vec<Change>,
    /// The base values of each change, parallel to `changes`: the row as the
    /// edge last synced it (at central version `base`), in mapping order.
    /// `None` where no base is known (a new row, a row written before it was
    /// ever synced). An empty list means no bases at all. The central uses
    /// them for `field-merge` (only the columns that differ from the base are
    /// the edge's changes, see [`crate::conflict::changed_columns`]) and
    /// records them in the conflict log.
    #[serde(default)]
    pub bases: Vec<Option<Vec<Value>>>,
    /// [`schema_fingerprint`] of the mapping the edge read these rows with.
    /// The central refuses the batch when it differs from its own mapping's
    /// (see [`check_fingerprint`]); `None` (a sender older than the
    /// fingerprint) is not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl PushBatch {
    /// A batch with no base values.
    pub fn new(hi: i64, changes: Vec<Change>) -> PushBatch {
        PushBatch {
            hi,
            changes,
            bases: Vec::new(),
            fingerprint: None,
        }
    }

    /// The first `n` changes (with their bases) as a batch of their own,
    /// covering up to the last one's sequence. Used to isolate a change the
    /// central refuses: every prefix is contiguous from the watermark, so
    /// acknowledging it skips nothing.
    pub fn prefix(&self, n: usize) -> PushBatch {
        let n = n.clamp(1, self.changes.len().max(1));
        let changes: Vec<Change> = self.changes.iter().take(n).cloned().collect();
        PushBatch {
            hi: changes.last().map_or(self.hi, |c| c.version),
            changes,
            bases: self.bases.iter().take(n).cloned().collect(),
            fingerprint: self.fingerprint.clone(),
        }
    }

    /// The base values of `changes[i]`, if known.
    pub fn base_of(&self, i: usize) -> Option<&[Value]> {
        self.bases.get(i).and_then(|b| b.as_deref())
    }
}

/// What became of one pushed change, in the batch's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PushOutcome {
    /// The central now holds this write (possibly after winning a conflict);
    /// `version` is the central version it got, the edge's new conflict base.
    Applied {
        /// The row's new central version (for a hard delete, the tombstone's version; 0 if nothing was written).
        version: i64,
    },
    /// The central kept a different state (the write lost a conflict, or a
    /// replayed write was since overwritten). The edge should take `row`
    /// (`None`: the row does not exist centrally) unless it changed the row
    /// again since the push was read.
    Superseded {
        /// The central row as it now is (a pull-style change), if any.
        row: Option<Change>,
    },
}

/// The result of applying one push batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushResult {
    /// One outcome per change, in batch order.
    pub outcomes: Vec<PushOutcome>,
    /// How many conflicts were detected (each is in the conflict log).
    pub conflicts: usize,
    /// Whether the whole batch was a replay of one already applied.
    pub replayed: usize,
}

/// One page of central changes for one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullPage {
    /// Changes, in an order the adapter chose (the edge applies by version, so
    /// order within a pull does not matter for correctness).
    pub changes: Vec<Change>,
    /// The opaque token to pass to the next `pull` call. The edge stores it in
    /// the same transaction as this page's rows; that is the whole of
    /// resumability.
    pub token: String,
    /// `true` when this page ended a pass: `token` is then a watermark that
    /// covers every change committed before the pass began.
    pub done: bool,
    /// [`schema_fingerprint`] of the mapping the central read these rows
    /// with; the edge refuses the page when it differs from its own (see
    /// [`check_fingerprint`]). `None` is not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl PullPage {
    /// This page, marked as read with mapping `m` (every central adapter's
    /// `pull` answers through it).
    pub fn with_fingerprint(mut self, m: &TableMapping) -> PullPage {
        self.fingerprint = Some(schema_fingerprint(m));
        self
    }
}

/// The fingerprint of the row layout a mapping reads and writes: central
/// column names (lower-cased) and canonical types, in mapping order. Values
/// travel as bare lists in that order, so two sides whose fingerprints
/// differ would put values in the wrong columns; each batch and page carries
/// its sender's fingerprint and the receiver refuses a mismatch. The text is
/// a 64-bit FNV-1a hash (stable across builds and platforms, unlike
/// `DefaultHasher`) prefixed with the format version.
pub fn schema_fingerprint(m: &TableMapping) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for c in &m.columns {
        feed(c.central.to_ascii_lowercase().as_bytes());
        feed(b":");
        feed(c.ty.to_string().as_bytes());
        feed(b";");
    }
    format!("v1:{h:016x}")
}

/// Refuse a batch or page (`what`, e.g. "push batch") whose sender's
/// fingerprint `got` differs from this side's mapping `m`: a `Schema` error
/// naming the table and its columns here, so nothing is applied to the
/// wrong columns. `None` (an older sender) passes.
pub fn check_fingerprint(m: &TableMapping, got: Option<&str>, what: &str) -> Result<()> {
    let Some(got) = got else {
        return Ok(());
    };
    let ours = schema_fingerprint(m);
    if got == ours {
        return Ok(());
    }
    let cols: Vec<String> = m
        .columns
        .iter()
        .map(|c| format!("{} {}", c.central, c.ty))
        .collect();
    Err(Error::new(
        ErrorKind::Schema,
        format!(
            "table {}: refused a {what} written for a different column layout \
             (its schema fingerprint {got}, here {ours} for columns ({})); nothing was applied. \
             The central schema changed: let the edge pick the change up on its next sync, \
             or see \"Schema changes\" in the README",
            m.edge,
            cols.join(", ")
        ),
    ))
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;
    use crate::conflict::{ConflictPolicy, DeleteMode, Direction};
    use crate::schema::{ColumnMap, QualifiedName};
    use crate::types::ColType;

    fn mapping(cols: &[(&str, ColType)]) -> TableMapping {
        TableMapping {
            edge: "t".into(),
            central: QualifiedName::parse("t"),
            columns: cols
                .iter()
                .map(|(n, ty)| ColumnMap {
                    edge: n.to_string(),
                    central: n.to_string(),
                    ty: *ty,
                    edge_ty: *ty,
                    nullable: true,
                })
                .collect(),
            key: vec![0],
            direction: Direction::Both,
            conflict: ConflictPolicy::ServerWins,
            deletes: DeleteMode::Soft,
        }
    }

    #[test]
    fn the_fingerprint_follows_names_types_and_order_only() {
        let a = mapping(&[("id", ColType::Int), ("v", ColType::Bool)]);
        let fp = schema_fingerprint(&a);
        assert!(fp.starts_with("v1:") && fp.len() == 19, "{fp}");
        // Stable across runs and builds (the wire depends on it).
        assert_eq!(fp, schema_fingerprint(&a.clone()));
        let mut renamed_on_edge = a.clone();
        renamed_on_edge.columns[1].edge = "other".into();
        assert_eq!(schema_fingerprint(&renamed_on_edge), fp);
        let swapped = mapping(&[("v", ColType::Bool), ("id", ColType::Int)]);
        assert_ne!(schema_fingerprint(&swapped), fp);
        let retyped = mapping(&[("id", ColType::Int), ("v", ColType::Int)]);
        assert_ne!(schema_fingerprint(&retyped), fp);
        let wider = mapping(&[
            ("id", ColType::Int),
            ("v", ColType::Bool),
            ("w", ColType::Int),
        ]);
        assert_ne!(schema_fingerprint(&wider), fp);
    }

    #[test]
    fn a_mismatch_is_a_schema_error_naming_the_table() {
        let a = mapping(&[("id", ColType::Int), ("v", ColType::Bool)]);
        assert!(check_fingerprint(&a, None, "push batch").is_ok());
        assert!(check_fingerprint(&a, Some(&schema_fingerprint(&a)), "push batch").is_ok());
        let e =
            check_fingerprint(&a, Some("v1:0000000000000000"), "pull page").expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Schema);
        assert!(
            e.to_string().contains("table t") && e.to_string().contains("pull page"),
            "{e}"
        );
    }
}
