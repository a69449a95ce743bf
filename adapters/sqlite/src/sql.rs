//! SQLite dialect: identifier and literal quoting, and the small SQL
//! fragments generated from a table's key (key matches, key JSON, placeholder
//! lists).
//!
//! Everything here is pure string building. Identifiers are always quoted
//! with double quotes, so a user table called `order` or a column called
//! `key` needs nothing special. Keys are matched with `IS` rather than `=`:
//! SQLite lets primary-key columns of rowid tables hold NULL, and `IS`
//! compares NULLs as equal while still using the key's index.

use edgesync_core::ColType;

/// A double-quoted identifier (`"order"`, `"a""b"`).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A single-quoted SQL string literal.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `?1, ?2, ...` starting at `first`.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A comma-separated list of quoted column names, optionally prefixed
/// (`NEW."a", NEW."b"`).
pub(crate) fn column_list<'a>(prefix: &str, cols: impl IntoIterator<Item = &'a str>) -> String {
    cols.into_iter()
        .map(|c| format!("{prefix}{}", ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One key column: its name and type (the type decides how it is written
/// into a tombstone's JSON key).
#[derive(Debug, Clone)]
pub(crate) struct KeyCol {
    /// Column name in this database.
    pub name: String,
    /// Column type in this database.
    pub ty: ColType,
}

/// `"a" IS <lhs>"a" AND "b" IS <lhs>"b"` for trigger bodies, where `lhs` is
/// `NEW.` or `OLD.`; or, for a table alias, `<alias>."a" IS ...`.
pub(crate) fn key_match_prefixed(target: &str, source: &str, key: &[KeyCol]) -> String {
    key.iter()
        .map(|k| {
            let c = ident(&k.name);
            format!("{target}{c} IS {source}{c}")
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `"a" IS ?n AND "b" IS ?n+1` with parameters starting at `first`.
pub(crate) fn key_match_params(first: usize, key: &[KeyCol]) -> String {
    key.iter()
        .enumerate()
        .map(|(i, k)| format!("{} IS ?{}", ident(&k.name), first + i))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The JSON array that identifies a key in `es_tombstones`, built from
/// expressions `source."col"` (`NEW.`/`OLD.`) or, with `source = None`,
/// from parameters `?first...`.
///
/// SQLite's `json_array` refuses BLOBs, so byte keys go in as hex text; the
/// reader decodes them by the column's type (see `types::key_from_json`).
/// Triggers and the adapter's lookups both build keys through this one
/// function, so the text always matches.
pub(crate) fn key_json(source: Option<&str>, first: usize, key: &[KeyCol]) -> String {
    let parts: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let expr = match source {
                Some(prefix) => format!("{prefix}{}", ident(&k.name)),
                None => format!("?{}", first + i),
            };
            if k.ty == ColType::Bytes {
                format!("hex({expr})")
            } else {
                expr
            }
        })
        .collect();
    format!("json_array({})", parts.join(", "))
}

/// The JSON array of a row's values, as `es_base.row` keeps it, built from
/// expressions `<source>"col"` (`OLD.`, or a table alias with its dot).
///
/// Bytes go in as hex (SQLite's `json_array` refuses BLOBs) and floats as
/// 17-significant-digit text (its JSON keeps only 15 digits, which would
/// make an unchanged float look changed); NULL stays `null`. The reader
/// (`types::values_from_json`) decodes each part by its column type.
pub(crate) fn row_json(source: &str, cols: &[KeyCol]) -> String {
    let parts: Vec<String> = cols
        .iter()
        .map(|c| {
            let expr = format!("{source}{}", ident(&c.name));
            match c.ty {
                ColType::Bytes => format!("CASE WHEN {expr} IS NULL THEN NULL ELSE hex({expr}) END"),
                ColType::Float => format!(
                    "CASE WHEN typeof({expr}) = 'real' THEN printf('%!.17g', {expr}) ELSE {expr} END"
                ),
                _ => expr,
            }
        })
        .collect();
    format!("json_array({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Vec<KeyCol> {
        vec![
            KeyCol {
                name: "a".into(),
                ty: ColType::Int,
            },
            KeyCol {
                name: "b\"x".into(),
                ty: ColType::Bytes,
            },
        ]
    }

    #[test]
    fn quoting_escapes_quotes() {
        assert_eq!(ident("order"), "\"order\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(placeholders(3, 2), "?3, ?4");
    }

    #[test]
    fn key_fragments() {
        assert_eq!(
            key_match_prefixed("", "NEW.", &key()),
            "\"a\" IS NEW.\"a\" AND \"b\"\"x\" IS NEW.\"b\"\"x\""
        );
        assert_eq!(
            key_match_params(2, &key()),
            "\"a\" IS ?2 AND \"b\"\"x\" IS ?3"
        );
        assert_eq!(
            key_json(Some("OLD."), 1, &key()),
            "json_array(OLD.\"a\", hex(OLD.\"b\"\"x\"))"
        );
        assert_eq!(key_json(None, 4, &key()), "json_array(?4, hex(?5))");
    }

    #[test]
    fn row_json_keeps_nulls_and_float_precision() {
        let cols = vec![
            KeyCol {
                name: "b".into(),
                ty: ColType::Bytes,
            },
            KeyCol {
                name: "f".into(),
                ty: ColType::Float,
            },
            KeyCol {
                name: "t".into(),
                ty: ColType::Text { max_len: None },
            },
        ];
        let expr = row_json("OLD.", &cols);
        let c = rusqlite::Connection::open_in_memory().expect("db");
        let sql = expr.replace("OLD.", "");
        let json: String = c
            .query_row(
                &format!("SELECT {sql} FROM (SELECT NULL AS b, 0.1 + 0.2 AS f, 'x' AS t)"),
                [],
                |r| r.get(0),
            )
            .expect("json");
        assert_eq!(json, "[null,\"0.30000000000000004\",\"x\"]");
    }
}
