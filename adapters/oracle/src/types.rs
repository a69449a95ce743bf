//! Every conversion between Oracle and the canonical [`Value`], in one
//! place.
//!
//! - Reading: the driver returns `NUMBER` as exact decimal text (ODPI-C's
//!   own formatting, independent of NLS settings), never through `f64`;
//!   [`decimal_text`] pads it to the column's scale (`NUMBER(12,2)` gives
//!   `1.10`, as PostgreSQL does); `RAW(16)` is a UUID in RFC 4122 byte order;
//!   `TIMESTAMP WITH TIME ZONE` keeps its offset.
//! - Writing: [`bind`] turns a value into a typed [`Bind`], refusing what the
//!   column would round (decimal places, fractions of a second) or cannot
//!   hold.
//!
//! # Empty strings
//!
//! Oracle stores `''` as NULL in `VARCHAR2`, `NVARCHAR2` and `RAW`, so an
//! edge's empty text would come back as NULL on every other edge. edgesync
//! refuses it instead of changing it silently: pushing `''` (or empty bytes)
//! to an Oracle column is a [`edgesync_core::ErrorKind::Value`] error naming
//! table, column and key. Edge applications that sync with Oracle write
//! NULL, or a non-empty value.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Timelike};
use edgesync_core::value::{canonical_decimal, hex_bytes, parse_timestamp};
use edgesync_core::{ColType, Error, Result, Value};
use oracle::sql_type::{OracleType, ToSql};
use oracle::SqlValue;
use uuid::Uuid;

use crate::sql::Native;

/// What the catalog says about a column (`ALL_TAB_COLUMNS`), for
/// [`col_type`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnInfo {
    /// `DATA_TYPE` (`NUMBER`, `NVARCHAR2`, `TIMESTAMP(6) WITH TIME ZONE`).
    pub data_type: String,
    /// `DATA_LENGTH` in bytes.
    pub data_length: u32,
    /// `DATA_PRECISION`.
    pub precision: Option<u32>,
    /// `DATA_SCALE` (may be negative).
    pub scale: Option<i32>,
    /// `CHAR_LENGTH` in characters.
    pub char_length: u32,
    /// `CHAR_USED`: `B` (byte semantics) or `C`.
    pub char_used: Option<String>,
    /// The column has an `IS JSON` check constraint.
    pub is_json: bool,
    /// A `NUMBER(1)` with a check constraint `IN (0, 1)`.
    pub is_bool: bool,
    /// The database character set (`NLS_CHARACTERSET`) is Unicode.
    pub db_unicode: bool,
}

impl ColumnInfo {
    /// The type as a DBA would write it: `NUMBER(12,2)`, `VARCHAR2(20 CHAR)`.
    pub fn decl(&self) -> String {
        match self.data_type.as_str() {
            "NUMBER" => match (self.precision, self.scale) {
                (Some(p), Some(s)) => format!("NUMBER({p},{s})"),
                (None, Some(0)) => "NUMBER(38)".to_string(),
                _ => "NUMBER".to_string(),
            },
            "VARCHAR2" | "CHAR" => format!(
                "{}({} {})",
                self.data_type,
                self.char_length,
                if self.char_used.as_deref() == Some("B") {
                    "BYTE"
                } else {
                    "CHAR"
                }
            ),
            "NVARCHAR2" | "NCHAR" => format!("{}({})", self.data_type, self.char_length),
            "RAW" => format!("RAW({})", self.data_length),
            other => other.to_string(),
        }
    }

    /// The native type for staging and bind checks.
    pub fn native(&self) -> Native {
        let t = self.data_type.as_str();
        let fraction = if t == "DATE" {
            Some(0)
        } else if t.starts_with("TIMESTAMP") {
            self.scale.map(|s| s.max(0) as u32).or(Some(6))
        } else {
            None
        };
        Native {
            decl: self.decl(),
            fraction,
            lob: matches!(t, "CLOB" | "NCLOB" | "BLOB"),
            byte_limit: match t {
                "RAW" => Some(self.data_length),
                "VARCHAR2" if self.char_used.as_deref() == Some("B") => Some(self.data_length),
                _ => None,
            },
        }
    }
}

/// The canonical type of an Oracle column; `Err` carries what to tell the
/// user (the native type, and the better choice where there is one).
pub fn col_type(c: &ColumnInfo) -> Result<ColType, String> {
    let decl = c.decl();
    let t = c.data_type.as_str();
    let text = |json: bool, max_len: Option<u32>| {
        if json {
            ColType::Json
        } else {
            ColType::Text { max_len }
        }
    };
    Ok(match t {
        "NUMBER" => match (c.precision, c.scale) {
            (_, Some(s)) if s < 0 => {
                return Err(format!("{decl} (a negative scale rounds values)"))
            }
            (Some(1), Some(0)) if c.is_bool => ColType::Bool,
            (Some(p), Some(0)) if p <= 18 => ColType::Int,
            (Some(p), Some(s)) => ColType::Decimal {
                precision: Some(p),
                scale: Some(s as u32),
            },
            (None, Some(0)) => ColType::Decimal {
                precision: Some(38),
                scale: Some(0),
            },
            _ => ColType::Decimal {
                precision: None,
                scale: None,
            },
        },
        "BOOLEAN" => ColType::Bool,
        "FLOAT" => {
            return Err(format!(
                "{decl} (binary precision, rounds decimals); use NUMBER(p,s) or BINARY_DOUBLE"
            ))
        }
        "BINARY_DOUBLE" => ColType::Float,
        "BINARY_FLOAT" => {
            return Err("BINARY_FLOAT cannot hold every SQLite REAL; use BINARY_DOUBLE".into())
        }
        "VARCHAR2" | "CLOB" if !c.db_unicode => {
            return Err(format!(
                "{decl} in a database whose character set is not Unicode loses characters; use NVARCHAR2 or NCLOB"
            ))
        }
        "VARCHAR2" | "NVARCHAR2" => text(c.is_json, Some(c.char_length)),
        "CLOB" | "NCLOB" => text(c.is_json, None),
        "CHAR" | "NCHAR" => {
            return Err(format!("{decl} pads values with spaces; use NVARCHAR2(n)"))
        }
        "RAW" if c.data_length == 16 => ColType::Uuid,
        "RAW" | "BLOB" => ColType::Bytes,
        "DATE" => ColType::Timestamp,
        t if t.starts_with("TIMESTAMP") && t.ends_with("WITH LOCAL TIME ZONE") => {
            return Err(format!(
                "{decl} depends on the session's time zone; use TIMESTAMP WITH TIME ZONE"
            ))
        }
        t if t.starts_with("TIMESTAMP") && t.ends_with("WITH TIME ZONE") => ColType::TimestampTz,
        t if t.starts_with("TIMESTAMP") => ColType::Timestamp,
        "LONG" | "LONG RAW" => return Err(format!("{decl} is deprecated; use CLOB or BLOB")),
        _ => return Err(decl),
    })
}

/// A value bound as a typed Oracle parameter. NULLs keep their type.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    /// `NUMBER` from a 64-bit integer (integers, booleans as 0/1).
    Int(Option<i64>),
    /// `BINARY_DOUBLE`
    Float(Option<f64>),
    /// `NVARCHAR2` (text, and decimals as exact text for `TO_NUMBER`)
    Text(Option<String>),
    /// `NCLOB`: text beyond the 4000-byte limit of `VARCHAR2`.
    Lob(Option<String>),
    /// `RAW`
    Bytes(Option<Vec<u8>>),
    /// `BLOB`
    Blob(Option<Vec<u8>>),
    /// `TIMESTAMP(9)`
    Timestamp(Option<NaiveDateTime>),
    /// `TIMESTAMP(9) WITH TIME ZONE`, offset kept.
    TimestampTz(Option<DateTime<FixedOffset>>),
}

impl Bind {
    /// The Oracle type this bind has (for array binds).
    pub fn oratype(&self) -> OracleType {
        match self {
            Bind::Int(_) => OracleType::Int64,
            Bind::Float(_) => OracleType::BinaryDouble,
            Bind::Text(_) => OracleType::NVarchar2(64),
            Bind::Lob(_) => OracleType::NCLOB,
            Bind::Bytes(_) => OracleType::Raw(64),
            Bind::Blob(_) => OracleType::BLOB,
            Bind::Timestamp(_) => OracleType::Timestamp(9),
            Bind::TimestampTz(_) => OracleType::TimestampTZ(9),
        }
    }
}

impl ToSql for Bind {
    /// Sized by the value for single statements (array binds fix the type
    /// with [`Bind::oratype`] and grow it as rows are appended).
    fn oratype(&self, conn: &oracle::Connection) -> oracle::Result<OracleType> {
        match self {
            Bind::Text(Some(s)) => s.oratype(conn),
            Bind::Bytes(Some(b)) => b.oratype(conn),
            _ => Ok(Bind::oratype(self)),
        }
    }

    fn to_sql(&self, val: &mut SqlValue) -> oracle::Result<()> {
        match self {
            Bind::Int(Some(v)) => val.set(v),
            Bind::Float(Some(v)) => val.set(v),
            Bind::Text(Some(v)) | Bind::Lob(Some(v)) => val.set(v),
            Bind::Bytes(Some(v)) | Bind::Blob(Some(v)) => val.set(v),
            Bind::Timestamp(Some(v)) => val.set(v),
            Bind::TimestampTz(Some(v)) => val.set(v),
            _ => val.set_null(),
        }
    }
}

/// The typed NULL for a column.
pub fn null(ty: ColType, native: &Native) -> Bind {
    match ty {
        ColType::Bool | ColType::Int => Bind::Int(None),
        ColType::Float => Bind::Float(None),
        ColType::Text { .. } | ColType::Json if native.lob => Bind::Lob(None),
        ColType::Decimal { .. } | ColType::Text { .. } | ColType::Json => Bind::Text(None),
        ColType::Bytes if native.lob => Bind::Blob(None),
        ColType::Bytes | ColType::Uuid => Bind::Bytes(None),
        ColType::TimestampTz => Bind::TimestampTz(None),
        ColType::Date | ColType::Time | ColType::Timestamp => Bind::Timestamp(None),
    }
}

fn empty_refused(ty: ColType) -> Error {
    Error::value(format!(
        "an empty {} cannot be stored: Oracle stores '' as NULL, and edgesync refuses to \
         change a value silently (write NULL on the edge, or a non-empty value)",
        if matches!(ty, ColType::Bytes) {
            "byte string"
        } else {
            "text"
        }
    ))
}

/// `v` as a parameter for a column of type `ty` (native `native`). A value
/// of another kind, or one the column would round, cut or turn into NULL,
/// is a [`edgesync_core::ErrorKind::Value`] error; the caller adds table,
/// column and key.
pub fn bind(ty: ColType, native: &Native, v: &Value) -> Result<Bind> {
    let mismatch = || Error::value(format!("a {} value cannot be stored as {ty}", kind(v)));
    Ok(match (ty, v) {
        (_, Value::Null) => null(ty, native),
        (ColType::Bool, Value::Bool(b)) => Bind::Int(Some(i64::from(*b))),
        (ColType::Int, Value::Int(i)) => Bind::Int(Some(*i)),
        (ColType::Float, Value::Float(f)) => Bind::Float(Some(*f)),
        (ColType::Decimal { precision, scale }, Value::Decimal(d)) => {
            Bind::Text(Some(decimal_for(d, precision, scale)?))
        }
        (ColType::Decimal { precision, scale }, Value::Int(i)) => {
            Bind::Text(Some(decimal_for(&i.to_string(), precision, scale)?))
        }
        (ColType::Text { .. } | ColType::Json, Value::Text(s) | Value::Json(s))
            if matches!(
                (ty, v),
                (ColType::Text { .. }, Value::Text(_)) | (ColType::Json, Value::Json(_))
            ) =>
        {
            if s.is_empty() {
                return Err(empty_refused(ty));
            }
            if let ColType::Text { max_len: Some(max) } = ty {
                let n = s.chars().count();
                if n > max as usize {
                    return Err(Error::value(format!(
                        "a text of {n} characters does not fit in {ty}"
                    )));
                }
            }
            if let Some(limit) = native.byte_limit {
                if s.len() > limit as usize {
                    return Err(Error::value(format!(
                        "a text of {} bytes does not fit in {} ({limit} bytes)",
                        s.len(),
                        native.decl
                    )));
                }
            }
            if native.lob {
                Bind::Lob(Some(s.clone()))
            } else {
                Bind::Text(Some(s.clone()))
            }
        }
        (ColType::Bytes, Value::Bytes(b)) => {
            if b.is_empty() {
                return Err(empty_refused(ty));
            }
            if let Some(limit) = native.byte_limit {
                if b.len() > limit as usize {
                    return Err(Error::value(format!(
                        "{} bytes do not fit in {}",
                        b.len(),
                        native.decl
                    )));
                }
            }
            if native.lob {
                Bind::Blob(Some(b.clone()))
            } else {
                Bind::Bytes(Some(b.clone()))
            }
        }
        (ColType::Uuid, Value::Uuid(u)) => Bind::Bytes(Some(u.as_bytes().to_vec())),
        (ColType::Timestamp, Value::Timestamp(t)) => {
            check_time(t, native)?;
            Bind::Timestamp(Some(*t))
        }
        (ColType::TimestampTz, Value::TimestampTz(t)) => {
            check_time(&t.naive_utc(), native)?;
            check_time(&t.naive_local(), native)?;
            Bind::TimestampTz(Some(*t))
        }
        _ => return Err(mismatch()),
    })
}

/// Years Oracle stores (-4712 to 9999, no year 0), and fractions of a second
/// the column keeps (Oracle rounds the rest silently).
fn check_time(t: &NaiveDateTime, native: &Native) -> Result<()> {
    let y = t.year();
    if !(-4712..=9999).contains(&y) || y == 0 {
        return Err(Error::value(format!(
            "{t} is outside the years Oracle can store (-4712 to 9999, no year 0)"
        )));
    }
    if let Some(digits) = native.fraction {
        let unit = 10u32.pow(9 - digits.min(9));
        if !t.nanosecond().is_multiple_of(unit) {
            return Err(Error::value(format!(
                "{t} has more fractional-second digits than {} keeps ({digits}); the column would round it",
                native.decl
            )));
        }
    }
    Ok(())
}

/// Exact decimal text for `TO_NUMBER`, refusing digits the column's scale
/// would round away and more digits than its precision holds.
pub fn decimal_for(d: &str, precision: Option<u32>, scale: Option<u32>) -> Result<String> {
    let canon = canonical_decimal(d)?;
    let body = canon.trim_start_matches('-');
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if let Some(s) = scale {
        let cut = frac.get(s as usize..).unwrap_or("");
        if cut.bytes().any(|b| b != b'0') {
            return Err(Error::value(format!(
                "{d} has more than {s} decimal places; the column would round it"
            )));
        }
        if let Some(p) = precision {
            let int_digits = int.trim_start_matches('0').len() as u32;
            if int_digits > p.saturating_sub(s) {
                return Err(Error::value(format!(
                    "{d} has more than the {} integer digits NUMBER({p},{s}) holds",
                    p.saturating_sub(s)
                )));
            }
        }
    }
    let significant = format!("{int}{frac}")
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len();
    if significant > 38 {
        return Err(Error::value(format!(
            "{d} has more than the 38 significant digits Oracle NUMBER holds"
        )));
    }
    Ok(canon)
}

/// `NUMBER` text from the driver as canonical decimal text, padded to the
/// column's scale (Oracle keeps no trailing zeros: `1.10` comes back `1.1`).
pub fn decimal_text(text: &str, scale: Option<u32>) -> Result<String> {
    let canon = canonical_decimal(text)?;
    let Some(s) = scale.filter(|&s| s > 0) else {
        return Ok(canon);
    };
    let (int, frac) = canon.split_once('.').unwrap_or((&canon, ""));
    if frac.len() >= s as usize {
        return Ok(canon);
    }
    Ok(format!("{int}.{frac:0<width$}", width = s as usize))
}

/// A `RAW(16)` as a UUID (stored in RFC 4122 byte order).
pub fn uuid_from_raw(bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|_| {
        Error::value(format!(
            "a RAW(16) UUID must be 16 bytes, got {}",
            bytes.len()
        ))
    })
}

/// What the driver hands back for one column, before conversion.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// NULL
    Null,
    /// `NUMBER` (exact text), text, CLOB.
    Text(String),
    /// `NUMBER(p,0)` as an integer.
    Int(i64),
    /// `BINARY_DOUBLE`
    Float(f64),
    /// `RAW`, `BLOB`
    Bytes(Vec<u8>),
    /// `DATE`, `TIMESTAMP`
    Timestamp(NaiveDateTime),
    /// `TIMESTAMP WITH TIME ZONE`
    TimestampTz(DateTime<FixedOffset>),
}

/// Read column `idx` of `row` as the driver type for `ty`.
pub fn raw(row: &oracle::Row, idx: usize, ty: ColType, what: &str) -> Result<Raw> {
    let bad =
        |e: oracle::Error| Error::value(format!("cannot read {what} as {ty}: {e}")).with_source(e);
    macro_rules! get {
        ($t:ty, $wrap:expr) => {
            row.get::<usize, Option<$t>>(idx)
                .map_err(bad)?
                .map($wrap)
                .unwrap_or(Raw::Null)
        };
    }
    Ok(match ty {
        ColType::Bool | ColType::Int => get!(i64, Raw::Int),
        ColType::Float => get!(f64, Raw::Float),
        ColType::Decimal { .. } | ColType::Text { .. } | ColType::Json => get!(String, Raw::Text),
        ColType::Bytes | ColType::Uuid => get!(Vec<u8>, Raw::Bytes),
        ColType::TimestampTz => get!(DateTime<FixedOffset>, Raw::TimestampTz),
        ColType::Date | ColType::Time | ColType::Timestamp => {
            get!(NaiveDateTime, Raw::Timestamp)
        }
    })
}

/// Convert what the driver returned to a value of type `ty`.
pub fn from_raw(raw: Raw, ty: ColType, what: &str) -> Result<Value> {
    let unexpected = |r: &Raw| Error::value(format!("cannot read {what} as {ty}: got {r:?}"));
    Ok(match (ty, raw) {
        (_, Raw::Null) => Value::Null,
        (ColType::Bool, Raw::Int(0)) => Value::Bool(false),
        (ColType::Bool, Raw::Int(1)) => Value::Bool(true),
        (ColType::Int, Raw::Int(i)) => Value::Int(i),
        (ColType::Float, Raw::Float(f)) => Value::Float(f),
        (ColType::Decimal { scale, .. }, Raw::Text(t)) => {
            Value::Decimal(decimal_text(&t, scale).map_err(|e| e.context(what))?)
        }
        (ColType::Text { .. }, Raw::Text(t)) => Value::Text(t),
        (ColType::Json, Raw::Text(t)) => Value::Json(t),
        (ColType::Bytes, Raw::Bytes(b)) => Value::Bytes(b),
        (ColType::Uuid, Raw::Bytes(b)) => {
            Value::Uuid(uuid_from_raw(&b).map_err(|e| e.context(what))?)
        }
        (ColType::Timestamp, Raw::Timestamp(t)) => Value::Timestamp(t),
        (ColType::TimestampTz, Raw::TimestampTz(t)) => Value::TimestampTz(t),
        (_, r) => return Err(unexpected(&r)),
    })
}

/// Read and convert column `idx` of `row`.
pub fn decode(row: &oracle::Row, idx: usize, ty: ColType, what: &str) -> Result<Value> {
    from_raw(raw(row, idx, ty, what)?, ty, what)
}

/// A key value back from its tombstone text ([`crate::sql::key_text`]).
pub fn parse_key_text(text: &str, ty: ColType) -> Result<Value> {
    let bad = || Error::value(format!("tombstone key '{text}' is not a valid {ty}"));
    Ok(match ty {
        ColType::Int => Value::Int(text.parse().map_err(|_| bad())?),
        ColType::Bool => match text {
            "1" => Value::Bool(true),
            "0" => Value::Bool(false),
            _ => return Err(bad()),
        },
        ColType::Float => Value::Float(text.parse().map_err(|_| bad())?),
        ColType::Decimal { scale, .. } => Value::Decimal(decimal_text(text, scale)?),
        ColType::Text { .. } => Value::Text(text.to_string()),
        ColType::Json => Value::Json(text.to_string()),
        ColType::Bytes => Value::Bytes(hex_bytes::decode(text).ok_or_else(bad)?),
        ColType::Uuid => Value::Uuid(uuid_from_raw(&hex_bytes::decode(text).ok_or_else(bad)?)?),
        ColType::Timestamp => Value::Timestamp(parse_timestamp(text).ok_or_else(bad)?),
        ColType::TimestampTz => Value::TimestampTz(
            parse_timestamp(text)
                .ok_or_else(bad)?
                .and_utc()
                .fixed_offset(),
        ),
        ColType::Date | ColType::Time => return Err(bad()),
    })
}

/// The name of a value's kind, for messages.
pub fn kind(v: &Value) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::default_native;
    use edgesync_core::value::parse_timestamptz;

    fn info(t: &str, len: u32, p: Option<u32>, s: Option<i32>) -> ColumnInfo {
        ColumnInfo {
            data_type: t.into(),
            data_length: len,
            precision: p,
            scale: s,
            char_length: len,
            char_used: Some("C".into()),
            is_json: false,
            is_bool: false,
            db_unicode: true,
        }
    }

    #[test]
    fn native_types_map_or_are_refused_with_a_reason() {
        assert_eq!(
            col_type(&info("NUMBER", 22, Some(38), Some(10))),
            Ok(ColType::Decimal {
                precision: Some(38),
                scale: Some(10)
            })
        );
        assert_eq!(
            col_type(&info("NUMBER", 22, Some(18), Some(0))),
            Ok(ColType::Int)
        );
        assert_eq!(
            col_type(&info("NUMBER", 22, Some(19), Some(0))),
            Ok(ColType::Decimal {
                precision: Some(19),
                scale: Some(0)
            })
        );
        let mut flag = info("NUMBER", 22, Some(1), Some(0));
        assert_eq!(col_type(&flag), Ok(ColType::Int));
        flag.is_bool = true;
        assert_eq!(col_type(&flag), Ok(ColType::Bool));
        assert!(col_type(&info("NUMBER", 22, Some(5), Some(-2)))
            .expect_err("refused")
            .contains("negative scale"));
        assert_eq!(
            col_type(&info("NVARCHAR2", 100, None, None)),
            Ok(ColType::Text { max_len: Some(100) })
        );
        let mut latin = info("VARCHAR2", 100, None, None);
        latin.db_unicode = false;
        assert!(col_type(&latin).expect_err("refused").contains("NVARCHAR2"));
        let mut doc = info("NCLOB", 4000, None, None);
        doc.is_json = true;
        assert_eq!(col_type(&doc), Ok(ColType::Json));
        assert_eq!(col_type(&info("RAW", 16, None, None)), Ok(ColType::Uuid));
        assert_eq!(col_type(&info("RAW", 32, None, None)), Ok(ColType::Bytes));
        assert_eq!(
            col_type(&info("BLOB", 4000, None, None)),
            Ok(ColType::Bytes)
        );
        assert_eq!(
            col_type(&info("DATE", 7, None, None)),
            Ok(ColType::Timestamp)
        );
        assert_eq!(
            col_type(&info("TIMESTAMP(6) WITH TIME ZONE", 13, None, Some(6))),
            Ok(ColType::TimestampTz)
        );
        assert!(col_type(&info(
            "TIMESTAMP(6) WITH LOCAL TIME ZONE",
            11,
            None,
            Some(6)
        ))
        .expect_err("refused")
        .contains("WITH TIME ZONE"));
        assert!(col_type(&info("FLOAT", 22, Some(126), None)).is_err());
        assert!(col_type(&info("CHAR", 5, None, None))
            .expect_err("refused")
            .contains("CHAR(5 CHAR)"));
        assert_eq!(
            col_type(&info("XMLTYPE", 0, None, None)),
            Err("XMLTYPE".into())
        );
    }

    #[test]
    fn empty_text_and_bytes_are_refused_not_turned_into_null() {
        let text = ColType::Text { max_len: None };
        for native in [
            default_native(text),
            default_native(ColType::Text { max_len: Some(5) }),
        ] {
            let e = bind(text, &native, &Value::Text(String::new())).expect_err("refused");
            assert_eq!(e.kind(), edgesync_core::ErrorKind::Value);
            assert!(
                e.message().contains("Oracle stores '' as NULL"),
                "{}",
                e.message()
            );
        }
        assert!(bind(
            ColType::Json,
            &default_native(ColType::Json),
            &Value::Json(String::new())
        )
        .is_err());
        assert!(bind(
            ColType::Bytes,
            &default_native(ColType::Bytes),
            &Value::Bytes(Vec::new())
        )
        .is_err());
        // NULL stays NULL, a space stays a space.
        assert_eq!(
            bind(text, &default_native(text), &Value::Null).expect("null"),
            Bind::Lob(None)
        );
        assert_eq!(
            bind(text, &default_native(text), &Value::Text(" ".into())).expect("space"),
            Bind::Lob(Some(" ".into()))
        );
    }

    #[test]
    fn decimals_cross_exactly_and_are_padded_to_the_scale() {
        let p = Some(38);
        let s = Some(10);
        for d in [
            "9999999999999999999999999999.9999999999",
            "-9999999999999999999999999999.9999999999",
            "0.0000000001",
        ] {
            assert_eq!(decimal_for(d, p, s).expect(d), d);
            assert_eq!(decimal_text(d, s).expect(d), d);
        }
        assert!(decimal_for("1.00000000001", p, s).is_err());
        assert!(decimal_for("99999999999999999999999999999", p, s).is_err());
        assert_eq!(decimal_text("1.1", Some(2)).expect("pad"), "1.10");
        assert_eq!(decimal_text(".5", Some(2)).expect("pad"), "0.50");
        assert_eq!(decimal_text("-5", Some(3)).expect("pad"), "-5.000");
        assert_eq!(decimal_text("12", None).expect("none"), "12");
        assert_eq!(
            decimal_for(&i64::MIN.to_string(), Some(38), Some(0)).expect("i64"),
            i64::MIN.to_string()
        );
        assert!(decimal_for(&i64::MAX.to_string(), Some(18), Some(0)).is_err());
    }

    #[test]
    fn every_type_converts_both_ways() {
        let ts = parse_timestamp("1901-02-03 04:05:06.123456").expect("ts");
        let tz = parse_timestamptz("1969-07-20 20:17:40.5-05:30").expect("tz");
        let u = Uuid::parse_str("6F9619FF-8B86-D011-B42D-00C04FC964FF").expect("uuid");
        let cases: Vec<(ColType, Value, Raw)> = vec![
            (ColType::Bool, Value::Bool(true), Raw::Int(1)),
            (ColType::Int, Value::Int(i64::MIN), Raw::Int(i64::MIN)),
            (ColType::Int, Value::Int(i64::MAX), Raw::Int(i64::MAX)),
            (ColType::Float, Value::Float(0.1), Raw::Float(0.1)),
            (
                ColType::Text { max_len: Some(4) },
                Value::Text("añ😀b".into()),
                Raw::Text("añ😀b".into()),
            ),
            (
                ColType::Json,
                Value::Json("{\"a\":1}".into()),
                Raw::Text("{\"a\":1}".into()),
            ),
            (
                ColType::Bytes,
                Value::Bytes(vec![0, 255]),
                Raw::Bytes(vec![0, 255]),
            ),
            (
                ColType::Uuid,
                Value::Uuid(u),
                Raw::Bytes(u.as_bytes().to_vec()),
            ),
            (ColType::Timestamp, Value::Timestamp(ts), Raw::Timestamp(ts)),
            (
                ColType::TimestampTz,
                Value::TimestampTz(tz),
                Raw::TimestampTz(tz),
            ),
        ];
        for (ty, v, raw) in cases {
            let native = default_native(ty);
            assert!(bind(ty, &native, &v).is_ok(), "{ty}");
            let back = from_raw(raw, ty, "c").expect("decode");
            assert_eq!(back, v, "{ty}");
            assert_eq!(from_raw(Raw::Null, ty, "c").expect("null"), Value::Null);
        }
        // UUIDs are RAW(16) in RFC 4122 order: no byte swapping.
        assert_eq!(
            bind(
                ColType::Uuid,
                &default_native(ColType::Uuid),
                &Value::Uuid(u)
            )
            .expect("uuid"),
            Bind::Bytes(Some(
                hex_bytes::decode("6f9619ff8b86d011b42d00c04fc964ff").expect("hex")
            ))
        );
        // The offset is kept.
        let Value::TimestampTz(back) =
            from_raw(Raw::TimestampTz(tz), ColType::TimestampTz, "c").expect("tz")
        else {
            panic!()
        };
        assert_eq!(back.offset().local_minus_utc(), -(5 * 3600 + 1800));
        // Fractions the column would round, and years Oracle has not.
        let date = Native {
            decl: "DATE".into(),
            fraction: Some(0),
            lob: false,
            byte_limit: None,
        };
        assert!(bind(ColType::Timestamp, &date, &Value::Timestamp(ts)).is_err());
        let whole = parse_timestamp("1969-12-31 23:59:59").expect("ts");
        assert!(bind(ColType::Timestamp, &date, &Value::Timestamp(whole)).is_ok());
        let year0 = parse_timestamp("0000-06-01 00:00:00").expect("ts");
        assert!(bind(
            ColType::Timestamp,
            &default_native(ColType::Timestamp),
            &Value::Timestamp(year0)
        )
        .is_err());
        // Byte limits of VARCHAR2(n BYTE).
        let bytes4 = Native {
            decl: "VARCHAR2(4 BYTE)".into(),
            fraction: None,
            lob: false,
            byte_limit: Some(4),
        };
        assert!(bind(
            ColType::Text { max_len: Some(4) },
            &bytes4,
            &Value::Text("😀b".into())
        )
        .is_err());
        assert!(bind(
            ColType::Int,
            &default_native(ColType::Int),
            &Value::Text("1".into())
        )
        .is_err());
        assert!(from_raw(Raw::Int(2), ColType::Bool, "c").is_err());
    }

    #[test]
    fn tombstone_key_text_parses_back() {
        let dec = ColType::Decimal {
            precision: Some(12),
            scale: Some(2),
        };
        assert_eq!(
            parse_key_text(".5", dec).expect("dec"),
            Value::Decimal("0.50".into())
        );
        assert_eq!(
            parse_key_text("-3", ColType::Int).expect("int"),
            Value::Int(-3)
        );
        assert_eq!(
            parse_key_text("2024-01-01 00:00:00.000000000", ColType::TimestampTz).expect("tz"),
            Value::TimestampTz(parse_timestamptz("2024-01-01 05:30:00+05:30").expect("tz"))
        );
        assert_eq!(
            parse_key_text("6f9619ff8b86d011b42d00c04fc964ff", ColType::Uuid).expect("uuid"),
            Value::Uuid(Uuid::parse_str("6F9619FF-8B86-D011-B42D-00C04FC964FF").expect("u"))
        );
        assert!(parse_key_text("zz", ColType::Bytes).is_err());
    }
}
