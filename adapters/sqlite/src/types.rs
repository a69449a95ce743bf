//! Every conversion between the canonical [`Value`] and SQLite storage, and
//! between declared column types and [`ColType`], lives in this one file.
//!
//! SQLite stores five storage classes and lets any column hold any of them,
//! so reading is where exactness is won or lost. The rules here are strict on
//! purpose: a value is accepted only when it converts without loss for the
//! column's canonical type (an integer column holding `'abc'` is an error
//! naming the table, column and key, never a silent 0), and every value is
//! written in one canonical text form so two edges storing the same value
//! store the same bytes. Decimals, dates, times, timestamps, UUIDs and JSON
//! are TEXT; the declared types edgesync creates (`DECIMAL_TEXT(12,2)`,
//! `TIMESTAMPTZ_TEXT`, ...) all have TEXT affinity, because SQLite's NUMERIC
//! affinity would quietly turn the text `1.10` into the float `1.1`.

use chrono::{DateTime, NaiveDate, Utc};
use edgesync_core::value::{self, Value};
use edgesync_core::{ColType, Error, Result};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::Row;

/// The declared type edgesync uses when it creates a column of type `ty`
/// (see the type table in `docs/design.md`).
pub fn declared_type(ty: ColType) -> String {
    match ty {
        ColType::Bool => "BOOLEAN".into(),
        ColType::Int => "INTEGER".into(),
        ColType::Float => "REAL".into(),
        ColType::Decimal { precision, scale } => match (precision, scale) {
            (Some(p), Some(s)) => format!("DECIMAL_TEXT({p},{s})"),
            (Some(p), None) => format!("DECIMAL_TEXT({p})"),
            _ => "DECIMAL_TEXT".into(),
        },
        ColType::Text { max_len: Some(n) } => format!("VARCHAR({n})"),
        ColType::Text { max_len: None } => "TEXT".into(),
        ColType::Bytes => "BLOB".into(),
        ColType::Date => "DATE_TEXT".into(),
        ColType::Time => "TIME_TEXT".into(),
        ColType::Timestamp => "TIMESTAMP_TEXT".into(),
        ColType::TimestampTz => "TIMESTAMPTZ_TEXT".into(),
        ColType::Uuid => "UUID_TEXT".into(),
        ColType::Json => "JSON_TEXT".into(),
    }
}

/// The canonical type of an existing column from its declared type.
///
/// edgesync's own names are recognised first, then the usual names
/// applications write (`DATETIME`, `UUID`, `JSON`...), then SQLite's affinity
/// rules. A column whose affinity is NUMERIC (`DECIMAL(12,2)`, `MONEY`) is
/// refused: SQLite would store its decimals as floating point.
pub fn column_type(declared: &str) -> std::result::Result<ColType, String> {
    let decl = declared.trim();
    let upper = decl.to_ascii_uppercase();
    let (base, args_text) = match upper.find('(') {
        Some(i) => (&upper[..i], &upper[i..]),
        None => (upper.as_str(), ""),
    };
    let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    let args: Vec<u32> = args_text
        .trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace())
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    let ty = match base.as_str() {
        b if b.starts_with("BOOL") => ColType::Bool,
        "DECIMAL_TEXT" | "NUMERIC_TEXT" => ColType::Decimal {
            precision: args.first().copied(),
            scale: args.get(1).copied(),
        },
        "DATE_TEXT" | "DATE" => ColType::Date,
        "TIME_TEXT" | "TIME" => ColType::Time,
        "TIMESTAMPTZ_TEXT" | "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => ColType::TimestampTz,
        "TIMESTAMP_TEXT" | "TIMESTAMP" | "DATETIME" | "TIMESTAMP WITHOUT TIME ZONE" => {
            ColType::Timestamp
        }
        b if b.starts_with("UUID") => ColType::Uuid,
        b if b.starts_with("JSON") => ColType::Json,
        "DECIMAL" | "NUMERIC" => {
            let args = args_text.replace(char::is_whitespace, "");
            return Err(format!(
                "{decl} has NUMERIC affinity in SQLite, which stores decimals as floating \
                 point; declare it DECIMAL_TEXT{args} or TEXT"
            ));
        }
        // SQLite's own affinity rules, in its order.
        b if b.contains("INT") => ColType::Int,
        b if b.contains("CHAR") || b.contains("CLOB") || b.contains("TEXT") => ColType::Text {
            max_len: if b.contains("CHAR") {
                args.first().copied()
            } else {
                None
            },
        },
        b if b.is_empty() || b.contains("BLOB") => ColType::Bytes,
        b if b.contains("REAL") || b.contains("FLOA") || b.contains("DOUB") => ColType::Float,
        _ => {
            return Err(format!(
                "{decl} has NUMERIC affinity in SQLite, which may store exact values as \
                 floating point; declare it TEXT, INTEGER, REAL or DECIMAL_TEXT(p,s)"
            ))
        }
    };
    Ok(ty)
}

/// Convert a canonical value for storage in a column of type `ty`.
///
/// Accepts exactly the values that convert without loss (an `Int` into a
/// decimal column, say); anything else is an error message for the caller
/// to prefix with the table, column and key.
pub fn to_sql(value: &Value, ty: ColType) -> std::result::Result<SqlValue, String> {
    use ColType as T;
    let refuse = || {
        Err(format!(
            "a {} value cannot be stored in a {ty} column",
            variant_name(value)
        ))
    };
    Ok(match (value, ty) {
        (Value::Null, _) => SqlValue::Null,
        (Value::Int(i), T::Int) => SqlValue::Integer(*i),
        (Value::Bool(b), T::Int | T::Bool) => SqlValue::Integer(i64::from(*b)),
        (Value::Int(i @ (0 | 1)), T::Bool) => SqlValue::Integer(*i),
        (Value::Decimal(d), T::Int) => {
            let c = value::canonical_decimal(d).map_err(|e| e.message().to_string())?;
            SqlValue::Integer(
                c.parse()
                    .map_err(|_| format!("the decimal {d} is not a 64-bit integer"))?,
            )
        }
        (Value::Float(f), T::Float) => {
            if f.is_nan() {
                // SQLite turns a NaN into NULL, which would lose it.
                return Err("NaN cannot be stored in SQLite (it would become NULL)".into());
            }
            // SQLite keeps no negative zero (it stores an integral REAL as
            // an integer); say so here rather than leave it to chance. It
            // still compares equal to 0.0 everywhere but in its bit pattern.
            SqlValue::Real(if *f == 0.0 { 0.0 } else { *f })
        }
        (Value::Int(i), T::Float) if (*i as f64) as i64 == *i && i.unsigned_abs() < 1 << 53 => {
            SqlValue::Real(*i as f64)
        }
        (Value::Decimal(d), T::Decimal { .. }) => {
            SqlValue::Text(value::canonical_decimal(d).map_err(|e| e.message().to_string())?)
        }
        (Value::Int(i), T::Decimal { .. }) => SqlValue::Text(i.to_string()),
        (Value::Float(f), T::Decimal { .. }) => SqlValue::Text(float_decimal(*f)?),
        (Value::Text(s), T::Text { .. } | T::Json) => SqlValue::Text(s.clone()),
        (Value::Json(s), T::Json | T::Text { .. }) => SqlValue::Text(s.clone()),
        (Value::Bytes(b), T::Bytes) => SqlValue::Blob(b.clone()),
        (Value::Date(d), T::Date) => SqlValue::Text(d.format("%Y-%m-%d").to_string()),
        (Value::Time(t), T::Time) => SqlValue::Text(t.format("%H:%M:%S%.f").to_string()),
        (Value::Timestamp(t), T::Timestamp) => SqlValue::Text(value::format_timestamp(t)),
        (Value::TimestampTz(t), T::TimestampTz) => SqlValue::Text(value::format_timestamptz(t)),
        (Value::Uuid(u), T::Uuid) => SqlValue::Text(u.hyphenated().to_string()),
        _ => return refuse(),
    })
}

/// Read a stored value as a canonical value of type `ty`, strictly.
pub fn from_sql(stored: ValueRef<'_>, ty: ColType) -> std::result::Result<Value, String> {
    use ColType as T;
    let text = |v: ValueRef<'_>| -> std::result::Result<String, String> {
        match v {
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(str::to_string)
                .map_err(|_| "holds text that is not valid UTF-8".to_string()),
            other => Err(format!("holds {}, expected text", describe(other))),
        }
    };
    let bad = |what: &str| Err(format!("holds {}, which is not {what}", describe(stored)));
    if let ValueRef::Null = stored {
        return Ok(Value::Null);
    }
    Ok(match ty {
        T::Int => match stored {
            ValueRef::Integer(i) => Value::Int(i),
            ValueRef::Real(f) if is_exact_i64(f) => Value::Int(f as i64),
            ValueRef::Text(_) => match text(stored)?.trim().parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => return bad("a 64-bit integer"),
            },
            _ => return bad("a 64-bit integer"),
        },
        T::Bool => match stored {
            ValueRef::Integer(0) => Value::Bool(false),
            ValueRef::Integer(1) => Value::Bool(true),
            ValueRef::Real(f) if f == 0.0 || f == 1.0 => Value::Bool(f == 1.0),
            ValueRef::Text(_) => match text(stored)?.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => return bad("a boolean (0/1, true/false)"),
            },
            _ => return bad("a boolean (0/1, true/false)"),
        },
        T::Float => match stored {
            ValueRef::Real(f) => Value::Float(f),
            ValueRef::Integer(i) if (i as f64) as i64 == i && i.unsigned_abs() < 1 << 53 => {
                Value::Float(i as f64)
            }
            ValueRef::Text(_) => match text(stored)?.trim().parse::<f64>() {
                Ok(f) if !f.is_nan() => Value::Float(f),
                _ => return bad("a floating-point number"),
            },
            _ => return bad("a floating-point number"),
        },
        T::Decimal { .. } => match stored {
            ValueRef::Integer(i) => Value::Decimal(i.to_string()),
            ValueRef::Real(f) => Value::Decimal(float_decimal(f)?),
            ValueRef::Text(_) => match value::canonical_decimal(&text(stored)?) {
                Ok(d) => Value::Decimal(d),
                Err(_) => return bad("an exact decimal number"),
            },
            _ => return bad("an exact decimal number"),
        },
        T::Text { .. } => match stored {
            ValueRef::Text(_) => Value::Text(text(stored)?),
            ValueRef::Integer(i) => Value::Text(i.to_string()),
            _ => return bad("text"),
        },
        T::Bytes => match stored {
            ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
            // What SQLite's own CAST(text AS BLOB) gives.
            ValueRef::Text(t) => Value::Bytes(t.to_vec()),
            _ => return bad("bytes"),
        },
        T::Date => match NaiveDate::parse_from_str(text(stored)?.trim(), "%Y-%m-%d") {
            Ok(d) => Value::Date(d),
            Err(_) => return bad("a date (YYYY-MM-DD)"),
        },
        T::Time => match value::parse_time(&text(stored)?) {
            Some(t) => Value::Time(t),
            None => return bad("a time of day (HH:MM:SS[.ffffff])"),
        },
        T::Timestamp => match value::parse_timestamp(&text(stored)?) {
            Some(t) => Value::Timestamp(t),
            None => return bad("a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])"),
        },
        T::TimestampTz => match value::parse_timestamptz(&text(stored)?) {
            Some(t) => Value::TimestampTz(t),
            None => return bad("a timestamp with time zone (YYYY-MM-DD HH:MM:SS+HH:MM)"),
        },
        T::Uuid => match stored {
            ValueRef::Blob(b) => match uuid::Uuid::from_slice(b) {
                Ok(u) => Value::Uuid(u),
                Err(_) => return bad("a UUID (16 bytes)"),
            },
            _ => match uuid::Uuid::parse_str(text(stored)?.trim()) {
                Ok(u) => Value::Uuid(u),
                Err(_) => return bad("a UUID"),
            },
        },
        T::Json => {
            let doc = match stored {
                // NUMERIC-affinity JSON columns turn a bare number into one.
                ValueRef::Integer(i) => i.to_string(),
                ValueRef::Real(f) => f.to_string(),
                _ => text(stored)?,
            };
            if serde_json::from_str::<serde_json::Value>(&doc).is_err() {
                return bad("a JSON document");
            }
            Value::Json(doc)
        }
    })
}

/// Read a tombstone's JSON key back into canonical values, by key type.
/// Byte keys were stored as hex (see `sql::key_json`).
pub(crate) fn key_from_json(
    json: &str,
    types: &[ColType],
) -> std::result::Result<Vec<Value>, String> {
    values_from_json(json, types, "tombstone key")
}

/// Read a JSON array of stored values (a tombstone key, an `es_base` row)
/// back into canonical values, by column type: bytes were written as hex,
/// floats possibly as text (see `sql::row_json`).
pub(crate) fn values_from_json(
    json: &str,
    types: &[ColType],
    what: &str,
) -> std::result::Result<Vec<Value>, String> {
    let items: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("{what} {json} is not JSON: {e}"))?;
    if items.len() != types.len() {
        return Err(format!(
            "{what} {json} has {} parts, expected {}",
            items.len(),
            types.len()
        ));
    }
    items
        .iter()
        .zip(types)
        .map(|(item, &ty)| {
            let stored = match item {
                serde_json::Value::Null => SqlValue::Null,
                serde_json::Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => SqlValue::Integer(i),
                    None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
                },
                serde_json::Value::String(s) if ty == ColType::Bytes => SqlValue::Blob(
                    value::hex_bytes::decode(s)
                        .ok_or_else(|| format!("{what} {json}: {s} is not hex"))?,
                ),
                serde_json::Value::String(s) => SqlValue::Text(s.clone()),
                other => return Err(format!("{what} part {other} is not a scalar")),
            };
            from_sql(ValueRef::from(&stored), ty)
        })
        .collect()
}

/// The JSON array `values_from_json` reads, from values bound for storage
/// (`bind_values`): bytes as hex, floats as their shortest exact text (read
/// back with Rust's exact float parser, not a JSON number's).
pub(crate) fn values_to_json(values: &[SqlValue]) -> String {
    let items: Vec<serde_json::Value> = values
        .iter()
        .map(|v| match v {
            SqlValue::Null => serde_json::Value::Null,
            SqlValue::Integer(i) => serde_json::Value::from(*i),
            SqlValue::Real(f) => serde_json::Value::String(format!("{f:?}")),
            SqlValue::Text(s) => serde_json::Value::String(s.clone()),
            SqlValue::Blob(b) => serde_json::Value::String(value::hex_bytes::encode(b)),
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

/// Reads rows of one table into canonical values, naming the table, column
/// and key in every conversion error.
pub(crate) struct RowReader<'a> {
    /// Table name for messages.
    pub table: &'a str,
    /// Column names and types, in the order the query selects them.
    pub columns: Vec<(&'a str, ColType)>,
    /// Positions of the key columns within `columns`.
    pub key: &'a [usize],
}

impl RowReader<'_> {
    /// Convert the `columns.len()` values starting at index `first`.
    pub(crate) fn read(&self, row: &Row<'_>, first: usize) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(self.columns.len());
        for (i, (name, ty)) in self.columns.iter().enumerate() {
            let stored = row.get_ref(first + i).map_err(crate::error::db_error)?;
            match from_sql(stored, *ty) {
                Ok(v) => out.push(v),
                Err(msg) => {
                    let key: Vec<String> = self
                        .key
                        .iter()
                        .map(|&k| {
                            let raw = row
                                .get_ref(first + k)
                                .map(describe_raw)
                                .unwrap_or_else(|_| "?".into());
                            format!("{}={raw}", self.columns[k].0)
                        })
                        .collect();
                    return Err(Error::value(format!(
                        "table {}, column {name}, key {}: {msg}",
                        self.table,
                        key.join(", ")
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// Convert values for binding, naming the table, column and key on error.
pub(crate) fn bind_values<'a>(
    table: &str,
    columns: impl IntoIterator<Item = (&'a str, ColType)>,
    values: &[Value],
    key: &str,
) -> Result<Vec<SqlValue>> {
    columns
        .into_iter()
        .zip(values)
        .map(|((name, ty), v)| {
            to_sql(v, ty).map_err(|msg| {
                Error::value(format!("table {table}, column {name}, key {key}: {msg}"))
            })
        })
        .collect()
}

/// Now as the UTC text edgesync stores in its state tables
/// (`2024-05-01 10:00:00.123Z`).
pub(crate) fn now_text() -> String {
    Utc::now().format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}

/// Parse a time written by [`now_text`].
pub(crate) fn parse_stored_time(text: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// Shortest text that reads back as the same double, as an exact decimal.
fn float_decimal(f: f64) -> std::result::Result<String, String> {
    if !f.is_finite() {
        return Err(format!("{f} is not a decimal number"));
    }
    // Rust's Display for f64 is the shortest round-trip form, without exponent.
    value::canonical_decimal(&f.to_string()).map_err(|e| e.message().to_string())
}

fn is_exact_i64(f: f64) -> bool {
    f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
}

fn variant_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Bool(_) => "boolean",
        Value::Int(_) => "integer",
        Value::Float(_) => "float",
        Value::Decimal(_) => "decimal",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytes",
        Value::Date(_) => "date",
        Value::Time(_) => "time",
        Value::Timestamp(_) => "timestamp",
        Value::TimestampTz(_) => "timestamptz",
        Value::Uuid(_) => "uuid",
        Value::Json(_) => "json",
    }
}

/// "the text 'abc'", "the integer 5", for messages.
fn describe(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => format!("the integer {i}"),
        ValueRef::Real(f) => format!("the real {f}"),
        ValueRef::Text(t) => format!("the text '{}'", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("a {}-byte BLOB", b.len()),
    }
}

/// A raw stored value as it would be typed in SQL, for naming keys.
pub(crate) fn describe_raw(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => format!("x'{}'", value::hex_bytes::encode(b)),
    }
}

#[cfg(test)]
mod tests;
