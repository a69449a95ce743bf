//! The T-SQL dialect: identifier and literal quoting, the names edgesync
//! gives its objects, and the fragments every statement is built from (key
//! matching, tombstone key text, read and bind expressions).
//!
//! Every user-supplied name reaches SQL through [`ident`] or [`literal`];
//! nothing else in the crate splices names into SQL text.

use edgesync_core::{names, ColType, QualifiedName, TableMapping};

/// SQL Server's identifier limit (`sysname` = `nvarchar(128)`).
pub const MAX_IDENT: usize = 128;

/// The schema an unqualified central table name lives in.
pub const DEFAULT_SCHEMA: &str = "dbo";

/// The binary collation of the text columns edgesync adds: node ids and
/// tombstone keys compare byte for byte, whatever the database's default
/// (usually case-insensitive) collation is.
pub const BIN_COLLATION: &str = "Latin1_General_100_BIN2";

/// Quote an identifier: `[x]`, with `]` doubled.
pub fn ident(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

/// Quote a Unicode string literal: `N'x'`, with `'` doubled.
pub fn literal(text: &str) -> String {
    format!("N'{}'", text.replace('\'', "''"))
}

/// The schema of a central table (`dbo` when the config leaves it out).
/// edgesync's shared metadata for the table lives in the same schema.
pub fn schema_of(table: &QualifiedName) -> &str {
    table.schema.as_deref().unwrap_or(DEFAULT_SCHEMA)
}

/// `[schema].[name]`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// The quoted, schema-qualified table reference.
pub fn table_ref(table: &QualifiedName) -> String {
    qualified(schema_of(table), &table.name)
}

/// The table's id in the shared metadata tables: `schema.name`, the schema
/// always spelled out so `orders` and `dbo.orders` are one table.
pub fn tbl_id(table: &QualifiedName) -> String {
    format!("{}.{}", schema_of(table), table.name)
}

/// A shared metadata object (`es_nodes`, ...) in the table's schema, quoted.
pub fn meta(table: &QualifiedName, object: &str) -> String {
    qualified(schema_of(table), object)
}

/// A per-table object name (`es_<kind>_<schema>_<table>`), cut to the
/// identifier limit with a stable hash suffix when needed. Unquoted.
pub fn object_name(kind: &str, table: &QualifiedName) -> String {
    names::object_name(kind, &tbl_id(table), MAX_IDENT)
}

/// A column's native type, as the catalog describes it, for staging tables
/// and casts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Native {
    /// The declared type: `decimal(12,2)`, `nvarchar(50)`, `datetime2(7)`.
    pub decl: String,
    /// The column's collation (text columns only).
    pub collation: Option<String>,
    /// An identity column (inserting explicit values needs
    /// `SET IDENTITY_INSERT`).
    pub identity: bool,
}

impl Native {
    /// The declaration for a staging column of this type: same type, same
    /// collation, so joins with the user table never meet a collation
    /// conflict and comparisons mean what they mean in the table.
    pub fn staging_decl(&self) -> String {
        match &self.collation {
            Some(c) => format!("{} COLLATE {c}", self.decl),
            None => self.decl.clone(),
        }
    }
}

/// The native type edgesync assumes for a canonical type when it has no
/// catalog to ask (`init-sync --dry-run` without a server, golden tests).
#[cfg(test)]
pub fn default_native(ty: ColType) -> Native {
    let decl = match ty {
        ColType::Bool => "bit".to_string(),
        ColType::Int => "bigint".to_string(),
        ColType::Float => "float".to_string(),
        ColType::Decimal { precision, scale } => format!(
            "decimal({},{})",
            precision.unwrap_or(38),
            scale.unwrap_or(10)
        ),
        ColType::Text { max_len: Some(n) } if n <= 4000 => format!("nvarchar({n})"),
        ColType::Text { .. } | ColType::Json => "nvarchar(max)".to_string(),
        ColType::Bytes => "varbinary(max)".to_string(),
        ColType::Date => "date".to_string(),
        ColType::Time => "time(7)".to_string(),
        ColType::Timestamp => "datetime2(7)".to_string(),
        ColType::TimestampTz => "datetimeoffset(7)".to_string(),
        ColType::Uuid => "uniqueidentifier".to_string(),
    };
    let collation = matches!(ty, ColType::Text { .. } | ColType::Json)
        .then(|| "SQL_Latin1_General_CP1_CI_AS".to_string());
    Native {
        decl,
        collation,
        identity: false,
    }
}

/// The expression to read a column with: integers widened to `bigint`,
/// GUIDs as their 16 stored bytes (converted in `types.rs`, see
/// [`crate::types::uuid_from_guid_bytes`]), the rest as is (decimals arrive
/// as exact `Numeric`s).
pub fn read_expr(expr: &str, ty: ColType) -> String {
    match ty {
        ColType::Int => format!("CAST({expr} AS bigint)"),
        ColType::Uuid => format!("CAST({expr} AS binary(16))"),
        _ => expr.to_string(),
    }
}

/// A bound parameter as a value of the column's type. GUIDs travel as their
/// 16 stored bytes; everything else is bound with its own TDS type.
pub fn bind_expr(param: &str, ty: ColType) -> String {
    match ty {
        ColType::Uuid => format!("CAST({param} AS uniqueidentifier)"),
        _ => param.to_string(),
    }
}

/// A rowversion bound as a `bigint` parameter, comparable with `es_ver`
/// (rowversions compare as 8 big-endian bytes).
pub fn rowversion(param: &str) -> String {
    format!("CAST(CAST({param} AS bigint) AS binary(8))")
}

/// A key value as the text stored in tombstone keys. It depends on no
/// session setting (`DATEFORMAT`, language), because the triggers that write
/// tombstones run in application sessions; `types::parse_key_text` reads it
/// back.
pub fn key_text(expr: &str, ty: ColType) -> String {
    match ty {
        ColType::Int => format!("CONVERT(nvarchar(20), {expr})"),
        ColType::Bool => format!("CONVERT(nvarchar(1), {expr})"),
        ColType::Float => format!("CONVERT(nvarchar(30), {expr}, 3)"),
        ColType::Decimal { .. } => format!("CONVERT(nvarchar(50), {expr})"),
        ColType::Text { .. } | ColType::Json => expr.to_string(),
        ColType::Bytes => format!("LOWER(CONVERT(nvarchar(max), {expr}, 2))"),
        ColType::Date => format!("CONVERT(nvarchar(10), {expr}, 23)"),
        ColType::Time => format!("CONVERT(nvarchar(16), CAST({expr} AS time(7)))"),
        ColType::Timestamp => {
            format!("CONVERT(nvarchar(27), CAST({expr} AS datetime2(7)), 121)")
        }
        ColType::TimestampTz => format!(
            "CONVERT(nvarchar(27), CAST(SWITCHOFFSET({expr}, '+00:00') AS datetime2(7)), 121)"
        ),
        ColType::Uuid => format!("LOWER(CONVERT(nvarchar(36), {expr}))"),
    }
}

/// `N'["' + STRING_ESCAPE(<key text>, 'json') + N'","' + ... + N'"]'`: the
/// key of row alias `alias` as stored in `es_tombstones.k` (a JSON array of
/// text; SQL Server 2017 has no `JSON_ARRAY`). `col(i)` names the column of
/// mapping column `i` under the alias.
pub fn key_json(table: &TableMapping, col: impl Fn(usize) -> String) -> String {
    let parts: Vec<String> = table
        .key
        .iter()
        .map(|&i| {
            format!(
                "STRING_ESCAPE({}, 'json')",
                key_text(&col(i), table.columns[i].ty)
            )
        })
        .collect();
    // An explicit collation: a text key carries its column's collation, the
    // tombstone column is binary, and two implicit collations would clash.
    format!(
        "(N'[\"' + {} + N'\"]') COLLATE {BIN_COLLATION}",
        parts.join(" + N'\",\"' + ")
    )
}

/// The quoted key column names of `table`, prefixed with `alias.` if given.
pub fn key_columns(table: &TableMapping, alias: Option<&str>) -> Vec<String> {
    table
        .key_columns()
        .map(|c| match alias {
            Some(a) => format!("{a}.{}", ident(&c.central)),
            None => ident(&c.central),
        })
        .collect()
}

/// `a.[k1] = <b(k1)> AND ...`: match rows of `alias` against other values,
/// where `other(i)` is the value of mapping column `i`.
pub fn key_match(table: &TableMapping, alias: &str, other: impl Fn(usize) -> String) -> String {
    table
        .key
        .iter()
        .map(|&i| {
            format!(
                "{alias}.{} = {}",
                ident(&table.columns[i].central),
                other(i)
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `(k1 > @a) OR (k1 = @a AND k2 > @b)`: rows after a key cursor, in the
/// order `ORDER BY k1, k2` gives (T-SQL has no row-value comparison).
pub fn after_key(cols: &[String], params: &[String]) -> String {
    let mut ors = Vec::new();
    for i in 0..cols.len() {
        let mut ands: Vec<String> = (0..i)
            .map(|j| format!("{} = {}", cols[j], params[j]))
            .collect();
        ands.push(format!("{} > {}", cols[i], params[i]));
        ors.push(format!("({})", ands.join(" AND ")));
    }
    format!("({})", ors.join(" OR "))
}

/// A stable short hash of rendered SQL, embedded in trigger bodies so
/// `init-sync` can tell an up-to-date trigger from an outdated one.
pub fn fingerprint(sql: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_the_closing_bracket_and_the_quote() {
        assert_eq!(ident("a]b"), "[a]]b]");
        assert_eq!(ident("we[ird"), "[we[ird]");
        assert_eq!(literal("it's"), "N'it''s'");
        let q = QualifiedName::parse("orders");
        assert_eq!(table_ref(&q), "[dbo].[orders]");
        assert_eq!(tbl_id(&q), "dbo.orders");
        let s = QualifiedName::parse("sales.order lines");
        assert_eq!(table_ref(&s), "[sales].[order lines]");
        assert_eq!(object_name("trg_w", &s), "es_trg_w_sales_order_lines");
    }

    #[test]
    fn long_names_are_cut_to_the_identifier_limit() {
        let long = QualifiedName::parse(&format!("s.{}", "t".repeat(200)));
        let name = object_name("trg_w", &long);
        assert_eq!(name.len(), MAX_IDENT);
        assert_ne!(
            name,
            object_name(
                "trg_w",
                &QualifiedName::parse(&format!("s.{}", "t".repeat(199)))
            )
        );
    }

    #[test]
    fn key_cursor_expands_row_comparison() {
        let cols = vec!["t.[a]".to_string(), "t.[b]".to_string()];
        let params = vec!["@P1".to_string(), "@P2".to_string()];
        assert_eq!(
            after_key(&cols, &params),
            "((t.[a] > @P1) OR (t.[a] = @P1 AND t.[b] > @P2))"
        );
    }
}
