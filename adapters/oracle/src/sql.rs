//! The Oracle dialect: identifier and literal quoting, the names edgesync
//! gives its objects (within 30 bytes), and the fragments every statement is
//! built from (key matching, tombstone key text, bind expressions).
//!
//! Every user-supplied name reaches SQL through [`ident`] or [`literal`];
//! nothing else in the crate splices names into SQL text. Oracle identifiers
//! cannot contain `"` at all, so [`check_name`] refuses such names up front.
//!
//! Placeholders are positional (`:1`, `:2`, ...) and never repeated: in SQL,
//! Oracle binds each occurrence of a placeholder separately.

use edgesync_core::{names, ColType, Error, QualifiedName, Result, TableMapping};

/// The length edgesync keeps the names it makes within (bytes): Oracle's
/// limit before 12.2, so a database still on `COMPATIBLE = 12.1` works too.
pub const MAX_OBJECT: usize = 30;

/// Oracle's identifier limit since 12.2 (bytes), for user names.
pub const MAX_IDENT: usize = 128;

/// Refuse a name Oracle cannot hold quoted (it may not contain `"` or NUL,
/// nor exceed 128 bytes).
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['"', '\0']) || name.len() > MAX_IDENT {
        return Err(Error::schema(format!(
            "{what} name {name:?} cannot be an Oracle identifier (1 to 128 bytes, no double quote)"
        )));
    }
    Ok(())
}

/// Check every name of a mapping.
pub fn check_mapping(table: &TableMapping, default_owner: &str) -> Result<()> {
    check_name("schema", owner_of(&table.central, default_owner))?;
    check_name("table", &table.central.name)?;
    for c in &table.columns {
        check_name("column", &c.central)?;
    }
    Ok(())
}

/// Quote an identifier: `"x"` (exact case; see [`check_name`]).
pub fn ident(name: &str) -> String {
    format!("\"{name}\"")
}

/// Quote a national string literal: `N'x'`, with `'` doubled.
pub fn literal(text: &str) -> String {
    format!("N'{}'", text.replace('\'', "''"))
}

/// The owner (schema) of a central table: the one named in the config, or
/// the connection's current schema.
pub fn owner_of<'a>(table: &'a QualifiedName, default_owner: &'a str) -> &'a str {
    table.schema.as_deref().unwrap_or(default_owner)
}

/// The quoted, owner-qualified table reference.
pub fn table_ref(table: &QualifiedName, default_owner: &str) -> String {
    format!(
        "{}.{}",
        ident(owner_of(table, default_owner)),
        ident(&table.name)
    )
}

/// The table's id in the shared metadata tables: `OWNER.NAME`.
pub fn tbl_id(table: &QualifiedName, default_owner: &str) -> String {
    format!("{}.{}", owner_of(table, default_owner), table.name)
}

/// A shared metadata object (`es_nodes`, `es_version`, ...) of the table's
/// owner. The object name is unquoted (stored upper case).
pub fn meta(table: &QualifiedName, default_owner: &str, object: &str) -> String {
    format!("{}.{object}", ident(owner_of(table, default_owner)))
}

/// A per-table object name (`ES_<KIND>_<OWNER>_<TABLE>`), at most 30 bytes
/// (a stable hash suffix when the table name is long), upper case. Unquoted.
pub fn object_name(kind: &str, table: &QualifiedName, default_owner: &str) -> String {
    names::object_name(kind, &tbl_id(table, default_owner), MAX_OBJECT).to_ascii_uppercase()
}

/// The quoted, owner-qualified per-table object.
pub fn object(kind: &str, table: &QualifiedName, default_owner: &str) -> String {
    format!(
        "{}.{}",
        ident(owner_of(table, default_owner)),
        ident(&object_name(kind, table, default_owner))
    )
}

/// A column's native type, as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Native {
    /// The declared type: `NUMBER(12,2)`, `NVARCHAR2(50)`, `TIMESTAMP(6)`.
    pub decl: String,
    /// Fractional-second digits the column keeps (timestamps; 0 for `DATE`).
    pub fraction: Option<u32>,
    /// A LOB (`CLOB`, `NCLOB`, `BLOB`): bound as a LOB, never compared.
    pub lob: bool,
    /// The length limit is in bytes (`VARCHAR2(n BYTE)`, `RAW(n)`).
    pub byte_limit: Option<u32>,
}

/// The native type edgesync assumes for a canonical type when it has no
/// catalog to ask (`init-sync --dry-run` without a server, golden tests).
pub fn default_native(ty: ColType) -> Native {
    let (decl, fraction, lob) = match ty {
        ColType::Bool => ("NUMBER(1)".to_string(), None, false),
        ColType::Int => ("NUMBER(18)".to_string(), None, false),
        ColType::Float => ("BINARY_DOUBLE".to_string(), None, false),
        ColType::Decimal { precision, scale } => (
            format!(
                "NUMBER({},{})",
                precision.unwrap_or(38),
                scale.unwrap_or(10)
            ),
            None,
            false,
        ),
        ColType::Text { max_len: Some(n) } if n <= 1000 => (format!("NVARCHAR2({n})"), None, false),
        ColType::Text { .. } | ColType::Json => ("NCLOB".to_string(), None, true),
        ColType::Bytes => ("BLOB".to_string(), None, true),
        ColType::Uuid => ("RAW(16)".to_string(), None, false),
        ColType::Date | ColType::Timestamp => ("TIMESTAMP(6)".to_string(), Some(6), false),
        ColType::Time => ("INTERVAL DAY(0) TO SECOND(6)".to_string(), Some(6), false),
        ColType::TimestampTz => ("TIMESTAMP(6) WITH TIME ZONE".to_string(), Some(6), false),
    };
    Native {
        decl,
        fraction,
        lob,
        byte_limit: None,
    }
}

/// A bound parameter as a value of the column's type: decimals travel as
/// exact text (never a float) and are converted by `TO_NUMBER`, which reads
/// `.` as the decimal point because every edgesync session sets
/// `NLS_NUMERIC_CHARACTERS = '.,'` (see `connection.rs`).
pub fn bind_expr(param: &str, ty: ColType) -> String {
    match ty {
        ColType::Decimal { .. } => format!("TO_NUMBER({param})"),
        _ => param.to_string(),
    }
}

/// The expression to read a column with: the driver returns `NUMBER` as
/// exact text and everything else natively.
pub fn read_expr(expr: &str, _ty: ColType) -> String {
    expr.to_string()
}

/// A key value as the text stored in tombstone keys. It depends on no
/// session setting (NLS), because the triggers that write tombstones run in
/// application sessions; `types::parse_key_text` reads it back.
pub fn key_text(expr: &str, ty: ColType) -> String {
    match ty {
        ColType::Int | ColType::Bool => format!("TO_CHAR({expr})"),
        ColType::Float | ColType::Decimal { .. } => {
            format!("TO_CHAR({expr}, 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,''')")
        }
        ColType::Text { .. } | ColType::Json => format!("TO_NCHAR({expr})"),
        ColType::Bytes | ColType::Uuid => format!("LOWER(RAWTOHEX({expr}))"),
        ColType::Date => format!("TO_CHAR({expr}, 'YYYY-MM-DD')"),
        ColType::Time => format!("TO_CHAR({expr})"),
        ColType::Timestamp => {
            format!("TO_CHAR(CAST({expr} AS TIMESTAMP(9)), 'YYYY-MM-DD HH24:MI:SS.FF9')")
        }
        ColType::TimestampTz => {
            format!("TO_CHAR(SYS_EXTRACT_UTC({expr}), 'YYYY-MM-DD HH24:MI:SS.FF9')")
        }
    }
}

/// A JSON string literal of a text expression (`"` and `\` escaped, and the
/// control characters a key plausibly holds).
fn json_string(expr: &str) -> String {
    format!(
        "'\"' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE({expr}, '\\', '\\\\'), '\"', '\\\"'), \
         CHR(10), '\\n'), CHR(13), '\\r'), CHR(9), '\\t') || '\"'"
    )
}

/// `TO_NCHAR('[' || "k1" || ',' || ... || ']')`: the key, as stored in
/// `es_tombstones.k` (a JSON array of text), of the row whose mapping column
/// `i` is `col(i)`. Usable in SQL and in PL/SQL.
pub fn key_json(table: &TableMapping, col: impl Fn(usize) -> String) -> String {
    let parts: Vec<String> = table
        .key
        .iter()
        .map(|&i| json_string(&key_text(&col(i), table.columns[i].ty)))
        .collect();
    format!("TO_NCHAR('[' || {} || ']')", parts.join(" || ',' || "))
}

/// `a."k1" = <other(k1)> AND ...`.
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

/// The quoted key column names, prefixed with `alias.` if given.
pub fn key_columns(table: &TableMapping, alias: Option<&str>) -> Vec<String> {
    table
        .key_columns()
        .map(|c| match alias {
            Some(a) => format!("{a}.{}", ident(&c.central)),
            None => ident(&c.central),
        })
        .collect()
}

/// Positional placeholders handed out in order, never repeated.
#[derive(Debug, Default)]
pub struct Placeholders {
    next: usize,
}

impl Placeholders {
    /// Start at `:1`.
    pub fn new() -> Self {
        Placeholders { next: 0 }
    }

    /// The next placeholder.
    pub fn take(&mut self) -> String {
        self.next += 1;
        format!(":{}", self.next)
    }
}

/// `(k1 > :a) OR (k1 = :b AND k2 > :c)`: rows after a key cursor, in the
/// order `ORDER BY k1, k2` gives. Each value is bound once per occurrence;
/// `order` lists, for each placeholder taken, which key position it holds.
pub fn after_key(cols: &[String], p: &mut Placeholders, order: &mut Vec<usize>) -> String {
    let mut ors = Vec::new();
    for i in 0..cols.len() {
        let mut ands = Vec::new();
        for (j, col) in cols.iter().enumerate().take(i) {
            ands.push(format!("{col} = {}", p.take()));
            order.push(j);
        }
        ands.push(format!("{} > {}", cols[i], p.take()));
        order.push(i);
        ors.push(format!("({})", ands.join(" AND ")));
    }
    format!("({})", ors.join(" OR "))
}

/// A stable short hash of rendered SQL, embedded in trigger bodies and
/// table comments so `init-sync` can tell an up-to-date object from an
/// outdated one.
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
    fn names_are_quoted_and_object_names_fit_30_bytes() {
        assert_eq!(ident("Order Lines"), "\"Order Lines\"");
        assert_eq!(literal("it's"), "N'it''s'");
        let q = QualifiedName::parse("orders");
        assert_eq!(table_ref(&q, "APP"), "\"APP\".\"orders\"");
        assert_eq!(tbl_id(&q, "APP"), "APP.orders");
        assert_eq!(object_name("trg", &q, "APP"), "ES_TRG_APP_ORDERS");
        let long = QualifiedName::parse("SALES.A_VERY_LONG_TABLE_NAME_FOR_ORACLE_LIMITS");
        let a = object_name("trg_t", &long, "X");
        assert!(a.len() <= MAX_OBJECT, "{a}");
        let b = object_name(
            "trg_t",
            &QualifiedName::parse("SALES.A_VERY_LONG_TABLE_NAME_FOR_ORACLE_LIMITS2"),
            "X",
        );
        assert_ne!(a, b);
        assert!(check_name("table", "a\"b").is_err());
        assert!(check_name("table", &"x".repeat(129)).is_err());
        assert!(check_name("table", "Straße").is_ok());
    }

    #[test]
    fn key_cursor_binds_each_occurrence() {
        let cols = vec!["t.\"A\"".to_string(), "t.\"B\"".to_string()];
        let mut p = Placeholders::new();
        p.take();
        let mut order = Vec::new();
        assert_eq!(
            after_key(&cols, &mut p, &mut order),
            "((t.\"A\" > :2) OR (t.\"A\" = :3 AND t.\"B\" > :4))"
        );
        assert_eq!(order, vec![0, 0, 1]);
    }
}
