//! Table descriptions (what a database has) and table mappings (what the
//! config asks for, resolved against both databases).

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::conflict::{ConflictPolicy, DeleteMode, Direction};
use crate::types::ColType;

/// A possibly schema-qualified table name, as written in `sync.toml`
/// (`sales.orders` or `orders`). Adapters quote each part themselves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QualifiedName {
    /// Schema (PostgreSQL schema, MySQL database, SQL Server schema, Oracle
    /// owner); `None` means the connection's default.
    pub schema: Option<String>,
    /// Table name.
    pub name: String,
}

impl QualifiedName {
    /// Parse `schema.table` or `table`.
    pub fn parse(s: &str) -> Self {
        match s.split_once('.') {
            Some((schema, name)) => QualifiedName {
                schema: Some(schema.to_string()),
                name: name.to_string(),
            },
            None => QualifiedName {
                schema: None,
                name: s.to_string(),
            },
        }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One column as a database describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// The canonical type, or `Err(native type name)` when the column's type
    /// has no canonical equivalent (reported only if the column is synced).
    pub ty: Result<ColType, String>,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Whether the column has a default (a column the edge lacks must have one).
    pub has_default: bool,
}

/// A table as a database describes it. Metadata columns (`es_*`) are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    /// The table's name.
    pub name: QualifiedName,
    /// User columns in table order.
    pub columns: Vec<Column>,
    /// Primary key column names, in key order (empty if none).
    pub primary_key: Vec<String>,
}

impl TableSchema {
    /// Find a column by name (case-insensitive, as most backends fold).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name).or_else(|| {
            self.columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
        })
    }
}

/// One synced column: its name on each side and its types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnMap {
    /// Column name in the edge table.
    pub edge: String,
    /// Column name in the central table.
    pub central: String,
    /// The central column's type (the source of truth for creating edges).
    pub ty: ColType,
    /// The edge column's type.
    pub edge_ty: ColType,
    /// Whether the central column accepts NULL.
    pub nullable: bool,
}

/// A `[[table]]` entry resolved against both databases: everything an adapter
/// needs to read, write and provision the table, with no further lookups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMapping {
    /// Edge table name.
    pub edge: String,
    /// Central table name.
    pub central: QualifiedName,
    /// Synced columns. Every row travels as values in exactly this order.
    pub columns: Vec<ColumnMap>,
    /// Indices into `columns` of the key columns, in key order.
    pub key: Vec<usize>,
    /// Which way changes flow.
    pub direction: Direction,
    /// How conflicts are resolved.
    pub conflict: ConflictPolicy,
    /// What a delete does.
    pub deletes: DeleteMode,
}

impl TableMapping {
    /// The key columns.
    pub fn key_columns(&self) -> impl Iterator<Item = &ColumnMap> {
        self.key.iter().map(|&i| &self.columns[i])
    }

    /// Pick the key values out of a full row.
    pub fn key_of(&self, values: &[crate::Value]) -> Vec<crate::Value> {
        self.key.iter().map(|&i| values[i].clone()).collect()
    }

    /// Render a key for messages: `id=42` or `(a=1, b=x)`.
    pub fn describe_key(&self, key: &[crate::Value]) -> String {
        let parts: Vec<String> = self
            .key_columns()
            .zip(key)
            .map(|(c, v)| format!("{}={}", c.edge, v.display()))
            .collect();
        if parts.len() == 1 {
            parts.into_iter().next().unwrap_or_default()
        } else {
            format!("({})", parts.join(", "))
        }
    }
}
