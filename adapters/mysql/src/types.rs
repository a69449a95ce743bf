//! Every conversion between MySQL/MariaDB and the canonical [`Value`], in one
//! place.
//!
//! - Column types come from `information_schema.COLUMNS` ([`Native`]) and map
//!   to a [`ColType`] or to a refusal that says why ([`col_type`]): a
//!   `utf8mb3` column cannot hold emoji, `CHAR(n)` strips trailing spaces,
//!   `FLOAT` is 4 bytes, `BIGINT UNSIGNED` exceeds `i64`, `BINARY(n)` pads.
//! - Reading uses the binary protocol (prepared statements): integers and
//!   doubles arrive as numbers, decimals as exact text, dates and times as
//!   their parts. Zero dates, negative or over-24-hour `TIME` values and
//!   out-of-range integers are errors naming the column, never a panic or a
//!   silently different value.
//! - Writing binds each value as the parameter type that carries it exactly
//!   (decimals and JSON as text, never `f64`) and refuses values the column
//!   would round (more decimal places or fractional seconds than it keeps).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use edgesync_core::{value::canonical_decimal, ColType, Error, Result, Value};
use mysql_async::Value as My;

/// What `information_schema.COLUMNS` says about a column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Native {
    /// `DATA_TYPE`, lower case (`varchar`, `decimal`, ...).
    pub data_type: String,
    /// `COLUMN_TYPE`, lower case (`varchar(20)`, `bigint(20) unsigned`).
    pub column_type: String,
    /// `CHARACTER_MAXIMUM_LENGTH`.
    pub char_len: Option<u64>,
    /// `NUMERIC_PRECISION` (decimals).
    pub precision: Option<u32>,
    /// `NUMERIC_SCALE` (decimals).
    pub scale: Option<u32>,
    /// `DATETIME_PRECISION`: fractional second digits kept.
    pub frac: u32,
    /// `CHARACTER_SET_NAME`.
    pub charset: Option<String>,
    /// `COLLATION_NAME`.
    pub collation: Option<String>,
    /// MariaDB: a `LONGTEXT` column with a `json_valid()` check, which is
    /// what MariaDB's `JSON` type is.
    pub json_check: bool,
    /// `IS_NULLABLE`: the column may hold NULL (a key column can only when
    /// the key is a `UNIQUE` index, never a primary key).
    pub nullable: bool,
}

/// The canonical type of a column; `Err` carries what to tell the user (the
/// native type, and why it is refused when there is a better choice).
pub fn col_type(n: &Native) -> Result<ColType, String> {
    let ct = n.column_type.as_str();
    let unsigned = ct.contains("unsigned");
    Ok(match n.data_type.as_str() {
        "tinyint" if !unsigned && ct.starts_with("tinyint(1)") => ColType::Bool,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" => ColType::Int,
        "bigint" if unsigned => {
            return Err(format!(
                "{ct} (values above 9223372036854775807 exceed a 64-bit integer; use bigint)"
            ))
        }
        "bigint" => ColType::Int,
        "decimal" | "numeric" => ColType::Decimal {
            precision: n.precision,
            scale: n.scale,
        },
        "double" | "real" | "double precision" => ColType::Float,
        "float" => {
            return Err(format!(
                "{ct} (4-byte float cannot hold every 64-bit float exactly; use double)"
            ))
        }
        "json" => ColType::Json,
        "longtext" if n.json_check => ColType::Json,
        "uuid" => ColType::Uuid,
        "char" if n.char_len == Some(36) => {
            check_charset(n)?;
            ColType::Uuid
        }
        "char" => {
            return Err(format!(
                "{ct} strips trailing spaces from values; use varchar({})",
                n.char_len.unwrap_or(1)
            ))
        }
        "varchar" => {
            check_charset(n)?;
            ColType::Text {
                max_len: n.char_len.and_then(|l| u32::try_from(l).ok()),
            }
        }
        // Limits in bytes; utf8mb4 characters take up to four.
        "tinytext" | "text" | "mediumtext" | "longtext" => {
            check_charset(n)?;
            ColType::Text {
                max_len: match n.data_type.as_str() {
                    "tinytext" => Some(255 / 4),
                    "text" => Some(65_535 / 4),
                    "mediumtext" => Some(16_777_215 / 4),
                    _ => None,
                },
            }
        }
        "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => ColType::Bytes,
        "binary" => {
            return Err(format!(
                "{ct} pads shorter values with zero bytes; use varbinary({}) (or char(36) or uuid for a UUID)",
                n.char_len.unwrap_or(1)
            ))
        }
        "date" => ColType::Date,
        "time" => ColType::Time,
        "datetime" => ColType::Timestamp,
        "timestamp" => ColType::TimestampTz,
        _ => return Err(ct.to_string()),
    })
}

fn check_charset(n: &Native) -> Result<(), String> {
    match n.charset.as_deref() {
        Some("utf8mb4") | None => Ok(()),
        Some(cs @ ("utf8mb3" | "utf8")) => Err(format!(
            "{} CHARACTER SET {cs}: utf8mb3 cannot store 4-byte characters (emoji); convert the column to utf8mb4",
            n.column_type
        )),
        Some(cs) => Err(format!(
            "{} CHARACTER SET {cs} cannot store all of Unicode; convert the column to utf8mb4",
            n.column_type
        )),
    }
}

/// Decode one value of a column of type `ty`. Errors name the column (`what`).
pub fn decode(v: My, ty: ColType, what: &str) -> Result<Value> {
    if v == My::NULL {
        return Ok(Value::Null);
    }
    let bad = |why: String| Error::value(format!("{what}: {why}"));
    let shown = format!("{v:?}");
    let text = |v: My| -> Result<String> {
        match v {
            My::Bytes(b) => {
                String::from_utf8(b).map_err(|_| bad("the value is not valid UTF-8".into()))
            }
            My::Int(i) => Ok(i.to_string()),
            My::UInt(u) => Ok(u.to_string()),
            other => Err(bad(format!("cannot read {other:?} as {ty}"))),
        }
    };
    Ok(match ty {
        ColType::Bool => match int(v).map_err(&bad)? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            n => return Err(bad(format!("holds {n}, which is not a boolean (0 or 1)"))),
        },
        ColType::Int => Value::Int(int(v).map_err(&bad)?),
        ColType::Float => match v {
            My::Double(f) => Value::Float(f),
            My::Float(f) => Value::Float(f64::from(f)),
            My::Bytes(b) => Value::Float(
                std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad(format!("cannot read {shown} as a float")))?,
            ),
            other => return Err(bad(format!("cannot read {other:?} as a float"))),
        },
        ColType::Decimal { .. } => {
            Value::Decimal(canonical_decimal(&text(v)?).map_err(|e| e.context(what))?)
        }
        ColType::Text { .. } => Value::Text(text(v)?),
        ColType::Json => Value::Json(text(v)?),
        ColType::Uuid => match v {
            My::Bytes(b) if b.len() == 16 => Value::Uuid(
                uuid::Uuid::from_slice(&b)
                    .map_err(|e| bad(format!("cannot read {shown} as a UUID: {e}")))?,
            ),
            v => {
                let s = text(v)?;
                Value::Uuid(
                    uuid::Uuid::parse_str(s.trim())
                        .map_err(|_| bad(format!("'{s}' is not a UUID")))?,
                )
            }
        },
        ColType::Bytes => match v {
            My::Bytes(b) => Value::Bytes(b),
            other => return Err(bad(format!("cannot read {other:?} as bytes"))),
        },
        ColType::Date => Value::Date(datetime(v).map_err(&bad)?.date()),
        ColType::Time => Value::Time(time(v).map_err(&bad)?),
        ColType::Timestamp => Value::Timestamp(datetime(v).map_err(&bad)?),
        ColType::TimestampTz => {
            Value::TimestampTz(datetime(v).map_err(&bad)?.and_utc().fixed_offset())
        }
    })
}

fn int(v: My) -> Result<i64, String> {
    match v {
        My::Int(i) => Ok(i),
        My::UInt(u) => i64::try_from(u).map_err(|_| format!("{u} exceeds a 64-bit signed integer")),
        My::Bytes(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                format!(
                    "cannot read {:?} as an integer",
                    String::from_utf8_lossy(&b)
                )
            }),
        other => Err(format!("cannot read {other:?} as an integer")),
    }
}

fn datetime(v: My) -> Result<NaiveDateTime, String> {
    match v {
        My::Date(0, 0, 0, ..) => Err(
            "holds the zero date 0000-00-00, which is not a date; edgesync refuses it (fix the row or make the column NULL)"
                .into(),
        ),
        My::Date(y, m, d, h, mi, s, us) => NaiveDate::from_ymd_opt(y.into(), m.into(), d.into())
            .and_then(|date| date.and_hms_micro_opt(h.into(), mi.into(), s.into(), us))
            .ok_or_else(|| {
                format!(
                    "holds {y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}, which is not a valid date (zero month or day)"
                )
            }),
        My::Bytes(b) => {
            let s = String::from_utf8_lossy(&b).to_string();
            if s.starts_with("0000-00-00") {
                return Err("holds the zero date 0000-00-00, which is not a date; edgesync refuses it".into());
            }
            edgesync_core::value::parse_timestamp(&s)
                .ok_or_else(|| format!("cannot read '{s}' as a date or timestamp"))
        }
        other => Err(format!("cannot read {other:?} as a date or timestamp")),
    }
}

fn time(v: My) -> Result<NaiveTime, String> {
    match v {
        My::Time(neg, days, h, m, s, us) => {
            if neg || days > 0 || h >= 24 {
                let sign = if neg { "-" } else { "" };
                let hours = u64::from(days) * 24 + u64::from(h);
                return Err(format!(
                    "holds {sign}{hours:02}:{m:02}:{s:02}, outside a time of day (00:00:00 to 23:59:59.999999)"
                ));
            }
            NaiveTime::from_hms_micro_opt(h.into(), m.into(), s.into(), us)
                .ok_or_else(|| format!("holds {h:02}:{m:02}:{s:02}.{us:06}, not a time of day"))
        }
        My::Bytes(b) => {
            let s = String::from_utf8_lossy(&b).to_string();
            edgesync_core::value::parse_time(&s)
                .ok_or_else(|| format!("holds {s}, outside a time of day"))
        }
        other => Err(format!("cannot read {other:?} as a time of day")),
    }
}

/// The parameter that carries `v` into a column of type `ty`. A value of
/// another kind, or one the column would round, is an
/// [`edgesync_core::ErrorKind::Value`] error; the caller adds table, column
/// and key.
pub fn encode(v: &Value, ty: ColType, n: &Native) -> Result<My> {
    let mismatch = || Error::value(format!("a {} value cannot be stored as {ty}", kind(v)));
    Ok(match (ty, v) {
        (_, Value::Null) => My::NULL,
        (ColType::Bool, Value::Bool(b)) => My::Int(i64::from(*b)),
        (ColType::Int, Value::Int(i)) => My::Int(*i),
        (ColType::Float, Value::Float(f)) => {
            if !f.is_finite() {
                return Err(Error::value(format!(
                    "{f} cannot be stored: MySQL has no NaN or infinity"
                )));
            }
            My::Double(*f)
        }
        (ColType::Decimal { .. }, Value::Decimal(d)) => {
            My::Bytes(decimal_text(d, n.precision, n.scale)?.into_bytes())
        }
        // An edge integer column mapped onto a wide enough decimal.
        (ColType::Decimal { .. }, Value::Int(i)) => {
            My::Bytes(decimal_text(&i.to_string(), n.precision, n.scale)?.into_bytes())
        }
        (ColType::Text { .. }, Value::Text(s)) => My::Bytes(s.as_bytes().to_vec()),
        (ColType::Json, Value::Json(s)) => {
            serde_json::from_str::<serde_json::Value>(s)
                .map_err(|e| Error::value(format!("not a valid JSON document: {e}")))?;
            My::Bytes(s.as_bytes().to_vec())
        }
        (ColType::Uuid, Value::Uuid(u)) => My::Bytes(u.hyphenated().to_string().into_bytes()),
        (ColType::Bytes, Value::Bytes(b)) => My::Bytes(b.clone()),
        (ColType::Date, Value::Date(d)) => {
            let (y, m, dd) = date_parts(d)?;
            My::Date(y, m, dd, 0, 0, 0, 0)
        }
        (ColType::Time, Value::Time(t)) => {
            let us = micros(t.nanosecond(), n.frac)?;
            My::Time(
                false,
                0,
                hms(t.hour()),
                hms(t.minute()),
                hms(t.second()),
                us,
            )
        }
        (ColType::Timestamp, Value::Timestamp(t)) => datetime_param(t, n.frac)?,
        // The instant is kept whatever offset it was written with; the
        // session's time_zone is UTC.
        (ColType::TimestampTz, Value::TimestampTz(t)) => {
            datetime_param(&t.with_timezone(&Utc).naive_utc(), n.frac)?
        }
        _ => return Err(mismatch()),
    })
}

fn hms(x: u32) -> u8 {
    u8::try_from(x).unwrap_or(u8::MAX)
}

fn date_parts(d: &NaiveDate) -> Result<(u16, u8, u8)> {
    let y = u16::try_from(d.year())
        .ok()
        .filter(|y| (1..=9999).contains(y))
        .ok_or_else(|| {
            Error::value(format!(
                "{d} is outside MySQL's date range (years 1 to 9999)"
            ))
        })?;
    Ok((y, hms(d.month()), hms(d.day())))
}

fn datetime_param(t: &NaiveDateTime, frac: u32) -> Result<My> {
    let (y, m, d) = date_parts(&t.date())?;
    let us = micros(t.nanosecond(), frac)?;
    Ok(My::Date(
        y,
        m,
        d,
        hms(t.hour()),
        hms(t.minute()),
        hms(t.second()),
        us,
    ))
}

/// Microseconds of `nanos`, refusing digits a column with `frac` fractional
/// digits would round away.
fn micros(nanos: u32, frac: u32) -> Result<u32> {
    if nanos >= 1_000_000_000 {
        return Err(Error::value("a leap second cannot be stored"));
    }
    if !nanos.is_multiple_of(1000) {
        return Err(Error::value(
            "has sub-microsecond digits, which MySQL cannot store",
        ));
    }
    let us = nanos / 1000;
    let unit = 10u32.pow(6 - frac.min(6));
    if !us.is_multiple_of(unit) {
        return Err(Error::value(format!(
            "has more fractional second digits than the column keeps ({frac}); it would be rounded"
        )));
    }
    Ok(us)
}

/// Canonical decimal text, refusing digits the column's scale would round
/// away (MySQL rounds silently on assignment, even in strict mode) and
/// integer digits its precision cannot hold.
pub fn decimal_text(d: &str, precision: Option<u32>, scale: Option<u32>) -> Result<String> {
    let canon = canonical_decimal(d)?;
    let (int_part, frac) = canon
        .trim_start_matches('-')
        .split_once('.')
        .unwrap_or((canon.trim_start_matches('-'), ""));
    if let Some(scale) = scale {
        let cut = frac.get(scale as usize..).unwrap_or("");
        if cut.bytes().any(|b| b != b'0') {
            return Err(Error::value(format!(
                "{d} has more than {scale} decimal places; the column would round it"
            )));
        }
    }
    if let Some(p) = precision {
        let room = p.saturating_sub(scale.unwrap_or(0)) as usize;
        let digits = int_part.trim_start_matches('0').len();
        if digits > room {
            return Err(Error::value(format!(
                "{d} has {digits} digits before the point; the column holds {room}"
            )));
        }
    }
    Ok(canon)
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

    fn native(data_type: &str, column_type: &str) -> Native {
        Native {
            data_type: data_type.into(),
            column_type: column_type.into(),
            charset: Some("utf8mb4".into()),
            ..Native::default()
        }
    }

    #[test]
    fn native_types_map_or_are_refused_with_a_reason() {
        assert_eq!(
            col_type(&native("tinyint", "tinyint(1)")),
            Ok(ColType::Bool)
        );
        assert_eq!(col_type(&native("tinyint", "tinyint(4)")), Ok(ColType::Int));
        assert_eq!(
            col_type(&native("int", "int(10) unsigned")),
            Ok(ColType::Int)
        );
        assert!(col_type(&native("bigint", "bigint(20) unsigned"))
            .expect_err("refused")
            .contains("exceed"));
        assert!(col_type(&native("float", "float"))
            .expect_err("refused")
            .contains("double"));
        let mut v = native("varchar", "varchar(20)");
        v.char_len = Some(20);
        assert_eq!(col_type(&v), Ok(ColType::Text { max_len: Some(20) }));
        v.charset = Some("utf8mb3".into());
        assert!(col_type(&v)
            .expect_err("refused")
            .contains("utf8mb3 cannot store 4-byte characters"));
        let mut c = native("char", "char(5)");
        c.char_len = Some(5);
        assert!(col_type(&c)
            .expect_err("refused")
            .contains("trailing spaces"));
        c.char_len = Some(36);
        assert_eq!(col_type(&c), Ok(ColType::Uuid));
        let mut j = native("longtext", "longtext");
        assert_eq!(col_type(&j), Ok(ColType::Text { max_len: None }));
        j.json_check = true;
        assert_eq!(col_type(&j), Ok(ColType::Json));
        assert_eq!(
            col_type(&native("timestamp", "timestamp(6)")),
            Ok(ColType::TimestampTz)
        );
        assert_eq!(col_type(&native("set", "set('a')")), Err("set('a')".into()));
    }

    #[test]
    fn odd_values_are_errors_naming_the_column() {
        let e = decode(My::Date(0, 0, 0, 0, 0, 0, 0), ColType::Date, "t.d").expect_err("zero");
        assert!(
            e.message().contains("t.d") && e.message().contains("zero date"),
            "{e}"
        );
        let e = decode(My::Time(true, 0, 1, 0, 0, 0), ColType::Time, "t.ti").expect_err("neg");
        assert!(e.message().contains("-01:00:00"), "{e}");
        let e = decode(My::Time(false, 1, 1, 0, 0, 0), ColType::Time, "t.ti").expect_err("25h");
        assert!(e.message().contains("25:00:00"), "{e}");
        let e = decode(My::Int(2), ColType::Bool, "t.b").expect_err("2");
        assert!(e.message().contains("not a boolean"), "{e}");
        assert!(decode(My::UInt(u64::MAX), ColType::Int, "t.i").is_err());
        assert_eq!(
            decode(
                My::Bytes(b"-0.50".to_vec()),
                ColType::Decimal {
                    precision: None,
                    scale: None
                },
                "x"
            )
            .expect("ok"),
            Value::Decimal("-0.50".into())
        );
    }

    #[test]
    fn values_the_column_would_round_are_refused() {
        assert_eq!(decimal_text("1.10", Some(12), Some(2)).expect("ok"), "1.10");
        assert!(decimal_text("1.105", Some(12), Some(2)).is_err());
        assert!(decimal_text("12345678901", Some(12), Some(2)).is_err());
        assert_eq!(
            decimal_text("-0001234567890.5", Some(12), Some(2)).expect("ok"),
            "-1234567890.5"
        );
        assert!(micros(1_500_000, 6).is_ok());
        assert!(micros(1_500_000, 0).is_err());
        assert!(micros(500_000_000, 1).is_ok());
        assert!(micros(1, 6).is_err());
        let n = native("double", "double");
        assert!(encode(&Value::Float(f64::NAN), ColType::Float, &n).is_err());
        assert!(encode(&Value::Text("1".into()), ColType::Int, &n).is_err());
        assert!(encode(&Value::Json("{".into()), ColType::Json, &n).is_err());
    }
}
