//! The PostgreSQL dialect: identifier and literal quoting, the names edgesync
//! gives its objects, and the small SQL fragments every statement is built
//! from (key matching, key text for tombstones and cursors, value casts).
//!
//! Every user-supplied name reaches SQL through [`ident`] or [`literal`];
//! nothing else in the crate splices names into SQL text.

use edgesync_core::{names, ColType, QualifiedName, TableMapping};

/// PostgreSQL's identifier limit (NAMEDATALEN - 1).
pub const MAX_IDENT: usize = 63;

/// The schema an unqualified central table name lives in.
pub const DEFAULT_SCHEMA: &str = "public";

/// Quote an identifier: `"x"`, with `"` doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quote a string literal: `'x'`, with `'` doubled.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The schema of a central table (`public` when the config leaves it out).
/// edgesync's shared metadata for the table lives in the same schema.
pub fn schema_of(table: &QualifiedName) -> &str {
    table.schema.as_deref().unwrap_or(DEFAULT_SCHEMA)
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// The quoted, schema-qualified table reference.
pub fn table_ref(table: &QualifiedName) -> String {
    qualified(schema_of(table), &table.name)
}

/// The table's id in the shared metadata tables (`es_nodes.tbl`,
/// `es_tombstones.tbl`, `es_conflicts.tbl`): `schema.name`, schema always
/// spelled out so `orders` and `public.orders` are one table.
pub fn tbl_id(table: &QualifiedName) -> String {
    format!("{}.{}", schema_of(table), table.name)
}

/// A shared metadata object (`es_nodes`, `es_version`, ...) in the table's
/// schema, quoted.
pub fn meta(table: &QualifiedName, object: &str) -> String {
    qualified(schema_of(table), object)
}

/// A per-table object name (`es_<kind>_<schema>_<table>`), cut to PostgreSQL's
/// identifier limit with a stable hash suffix when needed. Unquoted.
pub fn object_name(kind: &str, table: &QualifiedName) -> String {
    names::object_name(kind, &tbl_id(table), MAX_IDENT)
}

/// The PostgreSQL array type a column's values are bound as in `UNNEST`.
/// Decimals and JSON travel as text and are cast on the server, so no value
/// ever passes through a float.
pub fn transport_type(ty: ColType) -> &'static str {
    match ty {
        ColType::Bool => "boolean",
        ColType::Int => "bigint",
        ColType::Float => "double precision",
        ColType::Decimal { .. } | ColType::Text { .. } | ColType::Json => "text",
        ColType::Bytes => "bytea",
        ColType::Date => "date",
        ColType::Time => "time",
        ColType::Timestamp => "timestamp",
        ColType::TimestampTz => "timestamptz",
        ColType::Uuid => "uuid",
    }
}

/// The expression to read a column with: decimals and JSON as text (decoded
/// exactly in `types.rs`), integers widened to `bigint`, the rest as is.
pub fn read_expr(expr: &str, ty: ColType) -> String {
    match ty {
        ColType::Decimal { .. } | ColType::Json => format!("({expr})::text"),
        ColType::Int => format!("({expr})::bigint"),
        _ => expr.to_string(),
    }
}

/// A bound transport value as something assignable to the column. Text is
/// left uncast on purpose: an explicit cast to `varchar(n)` would silently
/// truncate, assignment raises an error instead.
pub fn write_expr(expr: &str, ty: ColType, native: &str) -> String {
    match ty {
        ColType::Decimal { .. } => format!("({expr})::numeric"),
        ColType::Json => format!("({expr})::{native}"),
        _ => expr.to_string(),
    }
}

/// A bound transport value as something comparable with the key column.
pub fn compare_expr(expr: &str, ty: ColType) -> String {
    match ty {
        ColType::Decimal { .. } => format!("({expr})::numeric"),
        ColType::Json => format!("({expr})::jsonb"),
        _ => expr.to_string(),
    }
}

/// A key value as the text stored in tombstone keys and pull cursors. It does
/// not depend on session settings (`TimeZone`, `DateStyle`, `bytea_output`),
/// because the triggers that write tombstones run in application sessions.
/// Decimals are cast to the column's own type first so the scale is the
/// column's (`1.10`, never `1.1`).
pub fn key_text(expr: &str, ty: ColType, native: &str) -> String {
    match ty {
        ColType::TimestampTz => {
            format!("to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
        }
        ColType::Timestamp => format!("to_char({expr}, 'YYYY-MM-DD HH24:MI:SS.US')"),
        ColType::Date => format!("to_char({expr}, 'YYYY-MM-DD')"),
        ColType::Bytes => format!("encode({expr}, 'hex')"),
        ColType::Decimal { .. } => format!("(({expr})::{native})::text"),
        _ => format!("({expr})::text"),
    }
}

/// The inverse of [`key_text`]: key text back to a value comparable with the
/// column.
pub fn key_value(text: &str, ty: ColType, native: &str) -> String {
    match ty {
        ColType::TimestampTz => format!("((({text})::timestamp) AT TIME ZONE 'UTC')"),
        ColType::Timestamp => format!("({text})::timestamp"),
        ColType::Date => format!("({text})::date"),
        ColType::Bytes => format!("decode({text}, 'hex')"),
        ColType::Decimal { .. } => format!("({text})::numeric"),
        ColType::Text { .. } => format!("({text})"),
        ColType::Int => format!("({text})::bigint"),
        ColType::Json => format!("({text})::jsonb"),
        _ => format!("({text})::{native}"),
    }
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

/// `jsonb_build_array(<key text of each key column of row alias>)`: a row's
/// key as stored in `es_tombstones.key`.
pub fn key_json(table: &TableMapping, natives: &[String], alias: &str) -> String {
    let parts: Vec<String> = table
        .key
        .iter()
        .map(|&i| {
            let c = &table.columns[i];
            key_text(&format!("{alias}.{}", ident(&c.central)), c.ty, &natives[i])
        })
        .collect();
    format!("jsonb_build_array({})", parts.join(", "))
}

/// `t.k1 = <u.a1> AND ...`: match rows of `alias` against unnested bound key
/// values, where `arg(i)` names the bound value of mapping column `i`.
pub fn key_match(table: &TableMapping, alias: &str, arg: impl Fn(usize) -> String) -> String {
    table
        .key
        .iter()
        .map(|&i| {
            let c = &table.columns[i];
            format!(
                "{alias}.{} = {}",
                ident(&c.central),
                compare_expr(&arg(i), c.ty)
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
        let q = QualifiedName::parse("orders");
        assert_eq!(table_ref(&q), "\"public\".\"orders\"");
        assert_eq!(tbl_id(&q), "public.orders");
        assert_eq!(object_name("trg", &q), "es_trg_public_orders");
    }
}
