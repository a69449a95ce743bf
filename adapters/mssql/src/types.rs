//! Every conversion between SQL Server and the canonical [`Value`], in one
//! place.
//!
//! - Reading: each column is selected with [`crate::sql::read_expr`] and its
//!   TDS value ([`ColumnData`]) converted by [`decode`]: decimals arrive as
//!   exact `Numeric`s (an `i128` and a scale) and are rendered as text, never
//!   through `f64`; GUIDs arrive as their 16 stored bytes and are reordered
//!   here ([`uuid_from_guid_bytes`]).
//! - Writing: [`param`] turns a value into a typed [`Param`] (TDS `bigint`,
//!   `decimal(p,s)`, `nvarchar`, `datetime2`, `datetimeoffset` with its offset,
//!   ...), refusing what the column would round or cut.
//!
//! # `uniqueidentifier` byte order
//!
//! SQL Server stores a GUID as Windows does: the first three groups
//! little-endian, the last two as written. RFC 4122 (and [`uuid::Uuid`]) is
//! big-endian throughout. `6F9619FF-8B86-D011-B42D-00C04FC964FF` is stored as
//! the bytes `FF19966F 868B 11D0 B42D00C04FC964FF` (what
//! `CAST(... AS binary(16))` returns). [`uuid_to_guid_bytes`] and
//! [`uuid_from_guid_bytes`] swap the first three groups, and are each
//! other's inverse.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use edgesync_core::value::{canonical_decimal, hex_bytes, parse_time, parse_timestamp};
use edgesync_core::{ColType, Error, Result, Value};
use tiberius::numeric::Numeric;
use tiberius::{ColumnData, FromSql, Row, ToSql};
use uuid::Uuid;

/// What the catalog says about a column (`sys.columns`, `sys.types`), for
/// [`col_type`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// System type name (`nvarchar`, `decimal`, ...).
    pub type_name: String,
    /// `sys.columns.max_length` in bytes (-1 = `max`).
    pub max_length: i16,
    /// Precision (numeric types, `float`, `datetime2`).
    pub precision: u8,
    /// Scale (numeric types, fractional seconds).
    pub scale: u8,
    /// Code page of the column's collation (`varchar`), 65001 for UTF-8.
    pub code_page: Option<i32>,
    /// The column has an `ISJSON(...)` check constraint.
    pub is_json: bool,
}

impl ColumnInfo {
    /// The type as a DBA would write it: `nvarchar(50)`, `decimal(12,2)`.
    pub fn decl(&self) -> String {
        let len = |unit: i16| {
            if self.max_length < 0 {
                "max".to_string()
            } else {
                (self.max_length / unit).to_string()
            }
        };
        match self.type_name.as_str() {
            "nvarchar" | "nchar" => format!("{}({})", self.type_name, len(2)),
            "varchar" | "char" | "varbinary" | "binary" => {
                format!("{}({})", self.type_name, len(1))
            }
            "decimal" | "numeric" => {
                format!("{}({},{})", self.type_name, self.precision, self.scale)
            }
            "datetime2" | "datetimeoffset" | "time" => {
                format!("{}({})", self.type_name, self.scale)
            }
            "float" => format!("float({})", self.precision),
            other => other.to_string(),
        }
    }
}

/// The canonical type of a SQL Server column; `Err` carries what to tell the
/// user (the native type, and the better choice where there is one).
pub fn col_type(c: &ColumnInfo) -> Result<ColType, String> {
    let decl = c.decl();
    let chars = |unit: i16| (c.max_length >= 0).then(|| (c.max_length / unit) as u32);
    Ok(match c.type_name.as_str() {
        "bit" => ColType::Bool,
        "tinyint" | "smallint" | "int" | "bigint" => ColType::Int,
        "float" if c.precision == 53 => ColType::Float,
        "float" | "real" => {
            return Err(format!(
                "{decl} cannot hold every SQLite REAL; use float (float(53))"
            ))
        }
        "decimal" | "numeric" => ColType::Decimal {
            precision: Some(u32::from(c.precision)),
            scale: Some(u32::from(c.scale)),
        },
        "money" | "smallmoney" => {
            return Err(format!(
                "{decl} (the driver reads money as a float); use decimal(19,4)"
            ))
        }
        "nvarchar" if c.is_json => ColType::Json,
        "nvarchar" => ColType::Text { max_len: chars(2) },
        "varchar" if c.code_page == Some(65001) => {
            // UTF-8 collation: the limit is in bytes, up to 4 per character.
            let max_len = chars(1).map(|b| b / 4);
            if c.is_json {
                ColType::Json
            } else {
                ColType::Text { max_len }
            }
        }
        "varchar" => {
            return Err(format!(
            "{decl} with a non-UTF-8 collation cannot hold every Unicode character; use nvarchar"
        ))
        }
        "nchar" | "char" => return Err(format!("{decl} pads values with spaces; use nvarchar(n)")),
        "ntext" | "text" | "image" => {
            return Err(format!(
                "{decl} is deprecated; use nvarchar(max) or varbinary(max)"
            ))
        }
        "varbinary" => ColType::Bytes,
        "binary" => return Err(format!("{decl} pads values with zeros; use varbinary(n)")),
        "date" => ColType::Date,
        "time" => ColType::Time,
        "datetime2" => ColType::Timestamp,
        "datetimeoffset" => ColType::TimestampTz,
        "datetime" | "smalldatetime" => {
            return Err(format!(
                "{decl} rounds fractions of a second; use datetime2(7)"
            ))
        }
        "uniqueidentifier" => ColType::Uuid,
        _ => return Err(decl),
    })
}

/// RFC 4122 byte order to SQL Server's stored GUID byte order.
pub fn uuid_to_guid_bytes(u: &Uuid) -> [u8; 16] {
    let mut b = *u.as_bytes();
    swap_guid_groups(&mut b);
    b
}

/// SQL Server's stored GUID bytes (`CAST(g AS binary(16))`) to an RFC 4122
/// UUID.
pub fn uuid_from_guid_bytes(bytes: &[u8]) -> Result<Uuid> {
    let mut b: [u8; 16] = bytes.try_into().map_err(|_| {
        Error::value(format!(
            "a uniqueidentifier must be 16 bytes, got {}",
            bytes.len()
        ))
    })?;
    swap_guid_groups(&mut b);
    Ok(Uuid::from_bytes(b))
}

fn swap_guid_groups(b: &mut [u8; 16]) {
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
}

/// A value bound as a typed TDS parameter. NULLs keep their type: SQL Server
/// refuses, e.g., a `varbinary` NULL where a `datetime2` is expected.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// `bit`
    Bool(Option<bool>),
    /// `bigint`
    Int(Option<i64>),
    /// `float`
    Float(Option<f64>),
    /// `decimal(p,s)`, exact.
    Decimal(Option<Numeric>),
    /// `nvarchar`
    Text(Option<String>),
    /// `varbinary` (bytes, and GUIDs in stored byte order)
    Bytes(Option<Vec<u8>>),
    /// `date`
    Date(Option<NaiveDate>),
    /// `time(7)`
    Time(Option<NaiveTime>),
    /// `datetime2(7)`
    Timestamp(Option<NaiveDateTime>),
    /// `datetimeoffset(7)`, offset kept.
    TimestampTz(Option<DateTime<FixedOffset>>),
}

impl ToSql for Param {
    fn to_sql(&self) -> ColumnData<'_> {
        match self {
            Param::Bool(v) => ColumnData::Bit(*v),
            Param::Int(v) => ColumnData::I64(*v),
            Param::Float(v) => ColumnData::F64(*v),
            Param::Decimal(v) => ColumnData::Numeric(*v),
            Param::Text(v) => ColumnData::String(v.as_deref().map(Cow::Borrowed)),
            Param::Bytes(v) => ColumnData::Binary(v.as_deref().map(Cow::Borrowed)),
            Param::Date(Some(d)) => d.to_sql(),
            Param::Date(None) => ColumnData::Date(None),
            Param::Time(Some(t)) => t.to_sql(),
            Param::Time(None) => ColumnData::Time(None),
            Param::Timestamp(Some(t)) => t.to_sql(),
            Param::Timestamp(None) => ColumnData::DateTime2(None),
            Param::TimestampTz(Some(t)) => t.to_sql(),
            Param::TimestampTz(None) => ColumnData::DateTimeOffset(None),
        }
    }
}

/// The typed NULL for a column of type `ty`.
pub fn null(ty: ColType) -> Param {
    match ty {
        ColType::Bool => Param::Bool(None),
        ColType::Int => Param::Int(None),
        ColType::Float => Param::Float(None),
        ColType::Decimal { .. } => Param::Decimal(None),
        ColType::Text { .. } | ColType::Json => Param::Text(None),
        ColType::Bytes | ColType::Uuid => Param::Bytes(None),
        ColType::Date => Param::Date(None),
        ColType::Time => Param::Time(None),
        ColType::Timestamp => Param::Timestamp(None),
        ColType::TimestampTz => Param::TimestampTz(None),
    }
}

/// `v` as a parameter for a column of type `ty`. A value of another kind, or
/// one the column would round or cut, is a [`edgesync_core::ErrorKind::Value`]
/// error; the caller adds table, column and key.
pub fn param(ty: ColType, v: &Value) -> Result<Param> {
    let mismatch = || Error::value(format!("a {} value cannot be stored as {ty}", kind(v)));
    Ok(match (ty, v) {
        (_, Value::Null) => null(ty),
        (ColType::Bool, Value::Bool(b)) => Param::Bool(Some(*b)),
        (ColType::Int, Value::Int(i)) => Param::Int(Some(*i)),
        (ColType::Float, Value::Float(f)) if f.is_finite() => Param::Float(Some(*f)),
        (ColType::Float, Value::Float(f)) => {
            return Err(Error::value(format!(
                "{f} cannot be stored: SQL Server float has no NaN or infinity"
            )))
        }
        (ColType::Decimal { scale, .. }, Value::Decimal(d)) => {
            Param::Decimal(Some(numeric(d, scale)?))
        }
        (ColType::Decimal { scale, .. }, Value::Int(i)) => {
            Param::Decimal(Some(numeric(&i.to_string(), scale)?))
        }
        (ColType::Text { max_len }, Value::Text(s)) => {
            if let Some(max) = max_len {
                let n = s.chars().count();
                if n > max as usize {
                    return Err(Error::value(format!(
                        "a text of {n} characters does not fit in {ty}"
                    )));
                }
            }
            Param::Text(Some(s.clone()))
        }
        (ColType::Json, Value::Json(s)) => Param::Text(Some(s.clone())),
        (ColType::Bytes, Value::Bytes(b)) => Param::Bytes(Some(b.clone())),
        (ColType::Uuid, Value::Uuid(u)) => Param::Bytes(Some(uuid_to_guid_bytes(u).to_vec())),
        (ColType::Date, Value::Date(d)) => Param::Date(Some(in_range(*d, *d)?)),
        (ColType::Time, Value::Time(t)) => Param::Time(Some(*t)),
        (ColType::Timestamp, Value::Timestamp(t)) => {
            in_range(t.date(), t.date())?;
            Param::Timestamp(Some(*t))
        }
        (ColType::TimestampTz, Value::TimestampTz(t)) => {
            in_range(t.naive_utc().date(), t.naive_local().date())?;
            Param::TimestampTz(Some(*t))
        }
        _ => return Err(mismatch()),
    })
}

/// SQL Server dates run from 0001-01-01 to 9999-12-31.
fn in_range(utc: NaiveDate, local: NaiveDate) -> Result<NaiveDate> {
    for d in [utc, local] {
        if !(1..=9999).contains(&d.year()) {
            return Err(Error::value(format!(
                "{d} is outside the years 1 to 9999 SQL Server can store"
            )));
        }
    }
    Ok(local)
}

/// Exact decimal text as a TDS `Numeric`, refusing digits the column's scale
/// would round away (SQL Server rounds silently on assignment) and more than
/// 38 significant digits.
pub fn numeric(d: &str, scale: Option<u32>) -> Result<Numeric> {
    let canon = canonical_decimal(d)?;
    let (neg, body) = match canon.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, canon.as_str()),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    // Fraction digits beyond the column's scale must be zeros; trailing
    // zeros beyond it are dropped so the value fits the column exactly.
    let mut frac = frac.to_string();
    if let Some(s) = scale {
        let s = s as usize;
        if frac.len() > s {
            if frac[s..].bytes().any(|b| b != b'0') {
                return Err(Error::value(format!(
                    "{d} has more than {s} decimal places; the column would round it"
                )));
            }
            frac.truncate(s);
        }
    }
    let int = int.trim_start_matches('0');
    let digits = format!("{int}{frac}");
    if digits.len() > 38 {
        return Err(Error::value(format!(
            "{d} has more than the 38 digits SQL Server decimals hold"
        )));
    }
    let magnitude: i128 = if digits.is_empty() {
        0
    } else {
        digits
            .parse()
            .map_err(|_| Error::value(format!("'{d}' is not an exact decimal number")))?
    };
    let value = if neg { -magnitude } else { magnitude };
    Ok(Numeric::new_with_scale(value, frac.len() as u8))
}

/// A TDS `Numeric` as exact decimal text, with its scale (`1.10`).
pub fn numeric_text(n: Numeric) -> String {
    let scale = n.scale() as usize;
    let value = n.value();
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// Decode one TDS value, selected with [`crate::sql::read_expr`] for `ty`.
/// Errors name the column (`what`).
pub fn decode(data: &ColumnData<'static>, ty: ColType, what: &str) -> Result<Value> {
    let bad = |e: tiberius::error::Error| {
        Error::value(format!("cannot read {what} as {ty}: {e}")).with_source(e)
    };
    let unexpected = || {
        Error::value(format!(
            "cannot read {what} as {ty}: the server sent {}",
            data_kind(data)
        ))
    };
    macro_rules! chrono_value {
        ($t:ty, $wrap:expr) => {
            <$t>::from_sql(data)
                .map_err(bad)?
                .map($wrap)
                .unwrap_or(Value::Null)
        };
    }
    Ok(match (ty, data) {
        (_, ColumnData::Binary(None) | ColumnData::String(None) | ColumnData::I64(None)) => {
            Value::Null
        }
        (ColType::Bool, ColumnData::Bit(b)) => b.map_or(Value::Null, Value::Bool),
        (ColType::Int, ColumnData::I64(i)) => i.map_or(Value::Null, Value::Int),
        (ColType::Int, ColumnData::I32(i)) => i.map_or(Value::Null, |i| Value::Int(i.into())),
        (ColType::Int, ColumnData::I16(i)) => i.map_or(Value::Null, |i| Value::Int(i.into())),
        (ColType::Int, ColumnData::U8(i)) => i.map_or(Value::Null, |i| Value::Int(i.into())),
        (ColType::Float, ColumnData::F64(f)) => f.map_or(Value::Null, Value::Float),
        (ColType::Decimal { .. }, ColumnData::Numeric(n)) => {
            n.map_or(Value::Null, |n| Value::Decimal(numeric_text(n)))
        }
        (ColType::Text { .. }, ColumnData::String(Some(s))) => Value::Text(s.to_string()),
        (ColType::Json, ColumnData::String(Some(s))) => Value::Json(s.to_string()),
        (ColType::Bytes, ColumnData::Binary(Some(b))) => Value::Bytes(b.to_vec()),
        (ColType::Uuid, ColumnData::Binary(Some(b))) => {
            Value::Uuid(uuid_from_guid_bytes(b).map_err(|e| e.context(what))?)
        }
        (ColType::Uuid, ColumnData::Guid(g)) => g.map_or(Value::Null, Value::Uuid),
        (ColType::Date, ColumnData::Date(_)) => chrono_value!(NaiveDate, Value::Date),
        (ColType::Time, ColumnData::Time(_)) => chrono_value!(NaiveTime, Value::Time),
        (ColType::Timestamp, ColumnData::DateTime2(_)) => {
            chrono_value!(NaiveDateTime, Value::Timestamp)
        }
        (ColType::TimestampTz, ColumnData::DateTimeOffset(_)) => {
            chrono_value!(DateTime<FixedOffset>, Value::TimestampTz)
        }
        _ => return Err(unexpected()),
    })
}

/// The TDS type of a value, for messages.
fn data_kind(data: &ColumnData<'_>) -> &'static str {
    match data {
        ColumnData::U8(_) => "tinyint",
        ColumnData::I16(_) => "smallint",
        ColumnData::I32(_) => "int",
        ColumnData::I64(_) => "bigint",
        ColumnData::F32(_) => "real",
        ColumnData::F64(_) => "float",
        ColumnData::Bit(_) => "bit",
        ColumnData::String(_) => "nvarchar",
        ColumnData::Guid(_) => "uniqueidentifier",
        ColumnData::Binary(_) => "varbinary",
        ColumnData::Numeric(_) => "decimal",
        ColumnData::Xml(_) => "xml",
        ColumnData::DateTime(_) => "datetime",
        ColumnData::SmallDateTime(_) => "smalldatetime",
        ColumnData::Time(_) => "time",
        ColumnData::Date(_) => "date",
        ColumnData::DateTime2(_) => "datetime2",
        ColumnData::DateTimeOffset(_) => "datetimeoffset",
    }
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
        ColType::Decimal { .. } => Value::Decimal(canonical_decimal(text)?),
        ColType::Text { .. } => Value::Text(text.to_string()),
        ColType::Json => Value::Json(text.to_string()),
        ColType::Bytes => Value::Bytes(hex_bytes::decode(text).ok_or_else(bad)?),
        ColType::Date => {
            Value::Date(NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?)
        }
        ColType::Time => Value::Time(parse_time(text).ok_or_else(bad)?),
        ColType::Timestamp => Value::Timestamp(parse_timestamp(text).ok_or_else(bad)?),
        ColType::TimestampTz => Value::TimestampTz(
            parse_timestamp(text)
                .ok_or_else(bad)?
                .and_utc()
                .fixed_offset(),
        ),
        ColType::Uuid => Value::Uuid(Uuid::parse_str(text).map_err(|_| bad())?),
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

/// Cell `i` of a result row.
fn cell(r: &Row, i: usize) -> Result<&ColumnData<'static>> {
    r.cells()
        .nth(i)
        .map(|(_, d)| d)
        .ok_or_else(|| Error::internal(format!("result row has no column {i}")))
}

/// Text cell `i` (`nvarchar`).
pub fn get_text(r: &Row, i: usize) -> Result<Option<String>> {
    match cell(r, i)? {
        ColumnData::String(s) => Ok(s.as_ref().map(|s| s.to_string())),
        other => Err(Error::internal(format!(
            "column {i} is {}, expected text",
            data_kind(other)
        ))),
    }
}

/// Integer cell `i` (any integer type).
pub fn get_int(r: &Row, i: usize) -> Result<Option<i64>> {
    match cell(r, i)? {
        ColumnData::I64(v) => Ok(*v),
        ColumnData::I32(v) => Ok(v.map(i64::from)),
        ColumnData::I16(v) => Ok(v.map(i64::from)),
        ColumnData::U8(v) => Ok(v.map(i64::from)),
        other => Err(Error::internal(format!(
            "column {i} is {}, expected an integer",
            data_kind(other)
        ))),
    }
}

/// Integer cell `i` that must not be NULL.
pub fn need_int(r: &Row, i: usize) -> Result<i64> {
    get_int(r, i)?.ok_or_else(|| Error::internal(format!("column {i} is NULL")))
}

/// `bit` cell `i`.
pub fn get_bool(r: &Row, i: usize) -> Result<Option<bool>> {
    match cell(r, i)? {
        ColumnData::Bit(v) => Ok(*v),
        other => get_int(r, i).map(|v| v.map(|v| v != 0)).map_err(|_| {
            Error::internal(format!("column {i} is {}, expected bit", data_kind(other)))
        }),
    }
}

/// `datetime2` cell `i`, stored in UTC.
pub fn get_utc(r: &Row, i: usize) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let d = cell(r, i)?;
    let t = NaiveDateTime::from_sql(d)
        .map_err(|e| Error::internal(format!("column {i} is not a datetime2: {e}")))?;
    Ok(t.map(|t| t.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgesync_core::value::parse_timestamptz;

    /// A parameter's TDS value as the driver would hand it back.
    fn owned(data: ColumnData<'_>) -> ColumnData<'static> {
        match data {
            ColumnData::String(s) => ColumnData::String(s.map(|s| Cow::Owned(s.into_owned()))),
            ColumnData::Binary(b) => ColumnData::Binary(b.map(|b| Cow::Owned(b.into_owned()))),
            ColumnData::U8(v) => ColumnData::U8(v),
            ColumnData::I16(v) => ColumnData::I16(v),
            ColumnData::I32(v) => ColumnData::I32(v),
            ColumnData::I64(v) => ColumnData::I64(v),
            ColumnData::F32(v) => ColumnData::F32(v),
            ColumnData::F64(v) => ColumnData::F64(v),
            ColumnData::Bit(v) => ColumnData::Bit(v),
            ColumnData::Guid(v) => ColumnData::Guid(v),
            ColumnData::Numeric(v) => ColumnData::Numeric(v),
            ColumnData::DateTime(v) => ColumnData::DateTime(v),
            ColumnData::SmallDateTime(v) => ColumnData::SmallDateTime(v),
            ColumnData::Time(v) => ColumnData::Time(v),
            ColumnData::Date(v) => ColumnData::Date(v),
            ColumnData::DateTime2(v) => ColumnData::DateTime2(v),
            ColumnData::DateTimeOffset(v) => ColumnData::DateTimeOffset(v),
            ColumnData::Xml(_) => panic!("no xml here"),
        }
    }

    fn info(name: &str, max_length: i16, precision: u8, scale: u8) -> ColumnInfo {
        ColumnInfo {
            type_name: name.into(),
            max_length,
            precision,
            scale,
            code_page: None,
            is_json: false,
        }
    }

    /// The example GUID of SQL Server's documentation and the bytes
    /// `CAST(CAST('6F9619FF-8B86-D011-B42D-00C04FC964FF' AS uniqueidentifier)
    /// AS binary(16))` returns.
    #[test]
    fn guid_byte_order_matches_sql_server() {
        let u = Uuid::parse_str("6F9619FF-8B86-D011-B42D-00C04FC964FF").expect("uuid");
        let stored = hex_bytes::decode("ff19966f868b11d0b42d00c04fc964ff").expect("hex");
        assert_eq!(uuid_to_guid_bytes(&u).to_vec(), stored);
        assert_eq!(uuid_from_guid_bytes(&stored).expect("guid"), u);
        assert_eq!(
            uuid_from_guid_bytes(&stored)
                .expect("guid")
                .hyphenated()
                .to_string(),
            "6f9619ff-8b86-d011-b42d-00c04fc964ff"
        );
        // Inverse of each other on any value.
        let r = Uuid::new_v4();
        assert_eq!(
            uuid_from_guid_bytes(&uuid_to_guid_bytes(&r)).expect("guid"),
            r
        );
        assert!(uuid_from_guid_bytes(&[0; 15]).is_err());
        // And the bound parameter is those bytes, cast in SQL.
        assert_eq!(
            param(ColType::Uuid, &Value::Uuid(u)).expect("param"),
            Param::Bytes(Some(stored.clone()))
        );
        assert_eq!(
            decode(&ColumnData::Binary(Some(stored.into())), ColType::Uuid, "c").expect("decode"),
            Value::Uuid(u)
        );
    }

    #[test]
    fn native_types_map_or_are_refused_with_a_reason() {
        assert_eq!(
            col_type(&info("decimal", 17, 38, 10)),
            Ok(ColType::Decimal {
                precision: Some(38),
                scale: Some(10)
            })
        );
        assert_eq!(
            col_type(&info("nvarchar", 100, 0, 0)),
            Ok(ColType::Text { max_len: Some(50) })
        );
        assert_eq!(
            col_type(&info("nvarchar", -1, 0, 0)),
            Ok(ColType::Text { max_len: None })
        );
        let mut json = info("nvarchar", -1, 0, 0);
        json.is_json = true;
        assert_eq!(col_type(&json), Ok(ColType::Json));
        assert_eq!(col_type(&info("float", 8, 53, 0)), Ok(ColType::Float));
        assert!(col_type(&info("real", 4, 24, 0))
            .expect_err("refused")
            .contains("float(53)"));
        assert!(col_type(&info("datetime", 8, 23, 3))
            .expect_err("refused")
            .contains("datetime2"));
        assert!(col_type(&info("money", 8, 19, 4))
            .expect_err("refused")
            .contains("decimal(19,4)"));
        assert!(col_type(&info("nchar", 10, 0, 0))
            .expect_err("refused")
            .contains("nchar(5)"));
        let mut latin = info("varchar", 50, 0, 0);
        latin.code_page = Some(1252);
        assert!(col_type(&latin).expect_err("refused").contains("nvarchar"));
        latin.code_page = Some(65001);
        assert_eq!(col_type(&latin), Ok(ColType::Text { max_len: Some(12) }));
        assert_eq!(
            col_type(&info("datetimeoffset", 10, 34, 7)),
            Ok(ColType::TimestampTz)
        );
        assert_eq!(
            col_type(&info("uniqueidentifier", 16, 0, 0)),
            Ok(ColType::Uuid)
        );
        assert_eq!(col_type(&info("xml", -1, 0, 0)), Err("xml".into()));
        assert_eq!(
            col_type(&info("timestamp", 8, 0, 0)),
            Err("timestamp".into())
        );
    }

    #[test]
    fn decimals_cross_exactly_at_the_limits() {
        let dec = ColType::Decimal {
            precision: Some(38),
            scale: Some(10),
        };
        for text in [
            "9999999999999999999999999999.9999999999",
            "-9999999999999999999999999999.9999999999",
            "0.0000000001",
            "-0.0000000001",
            "0",
            "1.10",
        ] {
            let Param::Decimal(Some(n)) = param(dec, &Value::Decimal(text.into())).expect(text)
            else {
                panic!("{text}")
            };
            let back = decode(&ColumnData::Numeric(Some(n)), dec, "c").expect("decode");
            assert_eq!(back, Value::Decimal(text.into()), "{text}");
        }
        // Rounding and overflow are refused, trailing zeros are not.
        assert!(numeric("1.00000000001", Some(10)).is_err());
        assert_eq!(
            numeric("1.500", Some(2)).expect("ok"),
            Numeric::new_with_scale(150, 2)
        );
        assert!(numeric("123456789012345678901234567890123456789", None).is_err());
        // 64-bit integers into a decimal column.
        let Param::Decimal(Some(n)) = param(dec, &Value::Int(i64::MIN)).expect("i64::MIN") else {
            panic!()
        };
        assert_eq!(numeric_text(n), i64::MIN.to_string());
        assert_eq!(numeric_text(Numeric::new_with_scale(-5, 3)), "-0.005");
        assert_eq!(numeric_text(Numeric::new_with_scale(5, 0)), "5");
    }

    #[test]
    fn every_type_round_trips_through_tds_values() {
        let ts = parse_timestamp("1901-02-03 04:05:06.123456").expect("ts");
        let tz = parse_timestamptz("1969-07-20 20:17:40.5-05:30").expect("tz");
        let cases: Vec<(ColType, Value)> = vec![
            (ColType::Bool, Value::Bool(true)),
            (ColType::Int, Value::Int(i64::MIN)),
            (ColType::Int, Value::Int(i64::MAX)),
            (ColType::Float, Value::Float(0.1)),
            (
                ColType::Text { max_len: Some(4) },
                Value::Text("añ😀b".into()),
            ),
            (ColType::Json, Value::Json("{\"a\":[1,2]}".into())),
            (ColType::Bytes, Value::Bytes(vec![0, 255, 10, 13])),
            (ColType::Date, Value::Date(ts.date())),
            (ColType::Time, Value::Time(ts.time())),
            (ColType::Timestamp, Value::Timestamp(ts)),
            (ColType::TimestampTz, Value::TimestampTz(tz)),
        ];
        for (ty, v) in cases {
            let p = param(ty, &v).expect("param");
            let data = owned(p.to_sql());
            let back = decode(&data, ty, "c").expect("decode");
            assert_eq!(back, v, "{ty}");
            if let (Value::TimestampTz(a), Value::TimestampTz(b)) = (&back, &v) {
                assert_eq!(a.offset(), b.offset(), "the offset is kept");
            }
            // NULL of every type is a typed NULL and reads back as NULL.
            let n = param(ty, &Value::Null).expect("null");
            assert_eq!(n, null(ty));
            assert_eq!(
                decode(&owned(n.to_sql()), ty, "c").expect("null"),
                Value::Null
            );
        }
        assert!(param(
            ColType::Text { max_len: Some(3) },
            &Value::Text("añ😀b".into())
        )
        .is_err());
        assert!(param(ColType::Int, &Value::Text("1".into())).is_err());
        assert!(param(ColType::Float, &Value::Float(f64::NAN)).is_err());
        let year0 = NaiveDate::from_ymd_opt(0, 12, 31).expect("date");
        assert!(param(ColType::Date, &Value::Date(year0)).is_err());
    }

    #[test]
    fn tombstone_key_text_parses_back() {
        assert_eq!(
            parse_key_text("-42", ColType::Int).expect("int"),
            Value::Int(-42)
        );
        assert_eq!(
            parse_key_text(
                "1.10",
                ColType::Decimal {
                    precision: Some(5),
                    scale: Some(2)
                }
            )
            .expect("dec"),
            Value::Decimal("1.10".into())
        );
        assert_eq!(
            parse_key_text("2024-02-29 23:59:59.1234560", ColType::Timestamp).expect("ts"),
            Value::Timestamp(parse_timestamp("2024-02-29 23:59:59.123456").expect("ts"))
        );
        assert_eq!(
            parse_key_text("2024-01-01 00:00:00.0000000", ColType::TimestampTz).expect("tz"),
            Value::TimestampTz(parse_timestamptz("2024-01-01 05:30:00+05:30").expect("tz"))
        );
        assert_eq!(
            parse_key_text("00ff", ColType::Bytes).expect("bytes"),
            Value::Bytes(vec![0, 255])
        );
        assert_eq!(
            parse_key_text("6f9619ff-8b86-d011-b42d-00c04fc964ff", ColType::Uuid).expect("uuid"),
            Value::Uuid(Uuid::parse_str("6F9619FF-8B86-D011-B42D-00C04FC964FF").expect("u"))
        );
        assert!(parse_key_text("x", ColType::Int).is_err());
    }
}
