//! The MySQL dialect: identifier and literal quoting, the names edgesync gives
//! its objects, and the small SQL fragments every statement is built from
//! (typed parameters, key text for tombstones, derived tables of bound rows).
//!
//! Every user-supplied name reaches SQL through [`ident`] or [`literal`];
//! nothing else in the crate splices names into SQL text. Values always travel
//! as bound parameters, each wrapped in a cast to the column's own type
//! ([`bind_expr`]), so a comparison never falls back to MySQL's
//! "compare as double" rule and a string never meets a column in an
//! unexpected collation.

use edgesync_core::{names, ColType, QualifiedName, TableMapping};

use crate::types::Native;

/// MySQL's identifier limit (trigger, index and table names).
pub const MAX_IDENT: usize = 64;

/// Quote an identifier: `` `x` ``, with `` ` `` doubled.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Quote a string literal: `'x'`, with `'` doubled and `\` escaped (the
/// session's `sql_mode` leaves backslash escapes on, and triggers keep the
/// `sql_mode` they were created with).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Where a table and edgesync's shared metadata live.
#[derive(Debug, Clone)]
pub struct Db {
    /// The database named in `central.url`: unqualified table names live
    /// there, and so does all of edgesync's shared metadata.
    pub default: String,
}

impl Db {
    /// The database of a central table.
    pub fn schema_of<'a>(&'a self, table: &'a QualifiedName) -> &'a str {
        table.schema.as_deref().unwrap_or(&self.default)
    }

    /// `` `db`.`name` `` of a central table.
    pub fn table_ref(&self, table: &QualifiedName) -> String {
        qualified(self.schema_of(table), &table.name)
    }

    /// The table's id in the shared metadata tables (`es_nodes.tbl`,
    /// `es_tombstones.tbl`, `es_conflicts.tbl`): `db.name`, database always
    /// spelled out so `orders` and `main.orders` are one table.
    pub fn tbl_id(&self, table: &QualifiedName) -> String {
        format!("{}.{}", self.schema_of(table), table.name)
    }

    /// A shared metadata table (`es_ctl`, `es_nodes`, ...), quoted.
    pub fn meta(&self, object: &str) -> String {
        qualified(&self.default, object)
    }

    /// A per-table trigger name (`es_<kind>_<db>_<table>`; triggers are named
    /// per database in MySQL), cut to 64 characters with a stable hash suffix.
    /// Unquoted.
    pub fn object_name(&self, kind: &str, table: &QualifiedName) -> String {
        names::object_name(kind, &self.tbl_id(table), MAX_IDENT)
    }
}

/// `` `schema`.`name` ``.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A bound parameter (`?`) as a value of the column's type. Every value and
/// key travels through one of these casts:
///
/// - integers and booleans as `SIGNED`, doubles as `DOUBLE`;
/// - decimals as `DECIMAL(p,s)` of the column, from exact text;
/// - text and JSON as `utf8mb4` text; for comparisons (`compare = true`) in
///   the column's own collation, so the comparison is the column's;
/// - bytes as `BINARY`; dates, times and datetimes with the column's
///   fractional digits.
pub fn bind_expr(ty: ColType, native: &Native, compare: bool) -> String {
    cast_expr("?", ty, native, compare)
}

/// [`bind_expr`] for any expression.
pub fn cast_expr(expr: &str, ty: ColType, native: &Native, compare: bool) -> String {
    match ty {
        ColType::Bool | ColType::Int => format!("CAST({expr} AS SIGNED)"),
        ColType::Float => format!("CAST({expr} AS DOUBLE)"),
        ColType::Decimal { .. } => format!(
            "CAST({expr} AS DECIMAL({}, {}))",
            native.precision.unwrap_or(65),
            native.scale.unwrap_or(0)
        ),
        ColType::Text { .. } | ColType::Json | ColType::Uuid => {
            let text = format!("CAST({expr} AS CHAR CHARACTER SET utf8mb4)");
            match (&native.collation, compare) {
                (Some(c), true) if c.starts_with("utf8mb4") => {
                    format!("{text} COLLATE {}", collation_name(c))
                }
                _ => text,
            }
        }
        ColType::Bytes => format!("CAST({expr} AS BINARY)"),
        ColType::Date => format!("CAST({expr} AS DATE)"),
        ColType::Time => format!("CAST({expr} AS TIME({}))", native.frac),
        ColType::Timestamp | ColType::TimestampTz => {
            format!("CAST({expr} AS DATETIME({}))", native.frac)
        }
    }
}

/// A collation name as SQL (they are plain identifiers; anything else is
/// refused by falling back to the binary collation).
fn collation_name(c: &str) -> &str {
    if c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        c
    } else {
        "utf8mb4_bin"
    }
}

/// A key value (an expression of the column's type) as the text stored in
/// tombstone keys. It must not depend on the session: the triggers that write
/// tombstones run in application sessions with their own `time_zone`, so a
/// `TIMESTAMP` key is stored as Unix seconds with six decimals.
pub fn key_text(expr: &str, ty: ColType) -> String {
    let text = match ty {
        ColType::Bytes => format!("LOWER(HEX({expr}))"),
        ColType::Date => format!("DATE_FORMAT({expr}, '%Y-%m-%d')"),
        ColType::Time => format!("TIME_FORMAT({expr}, '%H:%i:%s.%f')"),
        ColType::Timestamp => format!("DATE_FORMAT({expr}, '%Y-%m-%d %H:%i:%s.%f')"),
        ColType::TimestampTz => format!("CAST(UNIX_TIMESTAMP({expr}) AS DECIMAL(20, 6))"),
        ColType::Uuid => format!("LOWER({expr})"),
        _ => expr.to_string(),
    };
    format!("CAST({text} AS CHAR CHARACTER SET utf8mb4)")
}

/// The inverse of [`key_text`]: key text back to a value of the column's
/// type (compared in adapter sessions, whose `time_zone` is UTC).
pub fn key_value(text: &str, ty: ColType, native: &Native) -> String {
    match ty {
        ColType::Bytes => format!("UNHEX({text})"),
        ColType::TimestampTz => format!("FROM_UNIXTIME({text})"),
        _ => cast_expr(text, ty, native, false),
    }
}

/// `CAST(JSON_ARRAY(<key text>, ...) AS CHAR) COLLATE utf8mb4_bin`: a row's
/// key as stored in `es_tombstones.k`, from one expression per key column
/// (`exprs[j]` for key column `j`).
pub fn key_json(table: &TableMapping, exprs: &[String]) -> String {
    let parts: Vec<String> = table
        .key
        .iter()
        .zip(exprs)
        .map(|(&i, e)| key_text(e, table.columns[i].ty))
        .collect();
    format!(
        "CAST(JSON_ARRAY({}) AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_bin",
        parts.join(", ")
    )
}

/// `alias.k1 = u.k1 AND ...` for the key columns, where the derived table
/// `u` names key column `j` `kj`.
pub fn key_match(table: &TableMapping, alias: &str) -> String {
    table
        .key_columns()
        .enumerate()
        .map(|(j, c)| format!("{alias}.{} = u.k{j}", ident(&c.central)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A derived table of bound rows: `(SELECT <row 0 exprs> UNION ALL SELECT
/// ...) AS u`, with the column aliases on the first row. `rows` rows of
/// `exprs` each (already holding their `?`s).
pub fn derived(exprs: &[(String, String)], rows: usize) -> String {
    let first: Vec<String> = exprs.iter().map(|(e, a)| format!("{e} AS {a}")).collect();
    let rest: Vec<&str> = exprs.iter().map(|(e, _)| e.as_str()).collect();
    let rest = rest.join(", ");
    let mut s = format!("(SELECT {}", first.join(", "));
    for _ in 1..rows {
        s.push_str(" UNION ALL SELECT ");
        s.push_str(&rest);
    }
    s.push_str(") AS u");
    s
}

/// `(?, ?, ...), (?, ...)`: `rows` rows of the same value expressions.
pub fn values_rows(exprs: &[String], rows: usize) -> String {
    let row = format!("({})", exprs.join(", "));
    vec![row; rows].join(", ")
}

/// How many parameters one statement may carry (MySQL's limit is 65535).
pub const MAX_PARAMS: usize = 60_000;
/// How many rows one set-based statement carries at most.
pub const MAX_ROWS: usize = 1_000;
/// Roughly how many bytes of values one statement carries at most (a single
/// larger row still goes alone).
pub const MAX_BYTES: usize = 4 << 20;

/// Split `n` rows into chunks for set-based statements of `per_row`
/// parameters, rows of `bytes(i)` bytes.
pub fn chunks(
    n: usize,
    per_row: usize,
    bytes: impl Fn(usize) -> usize,
) -> Vec<std::ops::Range<usize>> {
    let max_rows = (MAX_PARAMS / per_row.max(1)).clamp(1, MAX_ROWS);
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let mut end = start;
        let mut size = 0;
        while end < n && end - start < max_rows {
            let b = bytes(end);
            if end > start && size + b > MAX_BYTES {
                break;
            }
            size += b;
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(literal("it's a \\"), "'it''s a \\\\'");
        let db = Db {
            default: "main".into(),
        };
        let q = QualifiedName::parse("orders");
        assert_eq!(db.table_ref(&q), "`main`.`orders`");
        assert_eq!(db.tbl_id(&q), "main.orders");
        assert_eq!(db.object_name("bi", &q), "es_bi_main_orders");
        assert_eq!(db.meta("es_ctl"), "`main`.`es_ctl`");
    }

    #[test]
    fn chunks_respect_rows_params_and_bytes() {
        assert_eq!(chunks(0, 3, |_| 1), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(
            chunks(2500, 3, |_| 1),
            vec![0..1000, 1000..2000, 2000..2500]
        );
        assert_eq!(chunks(5, 30_000, |_| 1), vec![0..2, 2..4, 4..5]);
        assert_eq!(
            chunks(3, 1, |i| if i == 1 { 10 << 20 } else { 10 }),
            vec![0..1, 1..2, 2..3]
        );
    }

    #[test]
    fn derived_tables_name_the_first_row() {
        let d = derived(&[("?".into(), "a".into()), ("1".into(), "b".into())], 2);
        assert_eq!(d, "(SELECT ? AS a, 1 AS b UNION ALL SELECT ?, 1) AS u");
    }
}
