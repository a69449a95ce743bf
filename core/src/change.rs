//! What travels: push batches (edge to central) and pull pages (central to
//! edge).

use serde::{Deserialize, Serialize};

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
}

impl PushBatch {
    /// A batch with no base values.
    pub fn new(hi: i64, changes: Vec<Change>) -> PushBatch {
        PushBatch {
            hi,
            changes,
            bases: Vec::new(),
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
}
