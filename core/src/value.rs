//! The canonical value model.
//!
//! Every row crosses between databases as a list of [`Value`]s. The variants
//! are chosen so that no conversion passes through a lossy type: decimals are
//! exact text (never `f64`), integers are 64-bit, timestamps keep microseconds
//! and, for zoned ones, the instant. Each adapter converts its native types to
//! and from these, in its own `types.rs`, and nowhere else.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

/// One column value.
///
/// Equality is exact, with two deliberate exceptions: `TimestampTz` compares
/// instants (PostgreSQL, like most databases, keeps the instant, not the
/// offset), and `Float` compares bit patterns so that `NaN == NaN` and the
/// value model stays an equivalence relation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "lowercase")]
pub enum Value {
    /// SQL NULL — never the string "null".
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// An IEEE double. Only for columns that are floating point on both sides.
    Float(f64),
    /// An exact decimal in canonical text: optional `-`, digits, optional `.`
    /// and digits. Scale is kept as written (`1.10` stays `1.10`).
    Decimal(String),
    /// Unicode text.
    Text(String),
    /// Raw bytes.
    #[serde(with = "hex_bytes")]
    Bytes(Vec<u8>),
    /// A calendar date.
    Date(NaiveDate),
    /// A time of day, microseconds kept.
    Time(NaiveTime),
    /// A timestamp without time zone, microseconds kept.
    Timestamp(NaiveDateTime),
    /// A timestamp with time zone: an instant, with the offset it was written in
    /// where the backend keeps one.
    TimestampTz(DateTime<FixedOffset>),
    /// A UUID, in RFC 4122 byte order.
    Uuid(Uuid),
    /// JSON document text, as the database returned it.
    Json(String),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Decimal(a), Decimal(b)) => a == b,
            (Text(a), Text(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Date(a), Date(b)) => a == b,
            (Time(a), Time(b)) => a == b,
            (Timestamp(a), Timestamp(b)) => a == b,
            (TimestampTz(a), TimestampTz(b)) => a == b,
            (Uuid(a), Uuid(b)) => a == b,
            (Json(a), Json(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    /// Is this SQL NULL?
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Do two values mean the same thing, as far as a conflict or a merge is
    /// concerned? Stricter than nothing, looser than `==` only where the
    /// databases normalise what they store:
    ///
    /// - decimals compare by number (`1.5` = `1.50`; the central's scale may
    ///   pad what an edge wrote), also against an integer (an edge integer
    ///   column mapped onto a central decimal);
    /// - JSON compares as documents (`jsonb` re-serialises text);
    /// - everything else as `==` (zoned timestamps by instant, floats by bit
    ///   pattern).
    pub fn same_as(&self, other: &Value) -> bool {
        fn number(v: &Value) -> Option<String> {
            let text = match v {
                Value::Decimal(d) => canonical_decimal(d).ok()?,
                Value::Int(i) => i.to_string(),
                _ => return None,
            };
            // Canonical text has no redundant leading zeros and no "-0";
            // dropping trailing fraction zeros leaves one spelling per number
            // (except "-0.50" vs "-0.5", which both become "-0.5").
            Some(match text.split_once('.') {
                Some((int, frac)) => match frac.trim_end_matches('0') {
                    "" if int == "-0" => "0".to_string(),
                    "" => int.to_string(),
                    frac => format!("{int}.{frac}"),
                },
                None => text,
            })
        }
        fn document(v: &Value) -> Option<serde_json::Value> {
            match v {
                Value::Json(s) | Value::Text(s) => serde_json::from_str(s).ok(),
                _ => None,
            }
        }
        if self == other {
            return true;
        }
        match (self, other) {
            (Value::Decimal(_) | Value::Int(_), Value::Decimal(_) | Value::Int(_)) => {
                number(self).is_some_and(|a| number(other) == Some(a))
            }
            (Value::Json(_), Value::Json(_) | Value::Text(_))
            | (Value::Text(_), Value::Json(_)) => {
                document(self).is_some_and(|a| document(other) == Some(a))
            }
            _ => false,
        }
    }

    /// A human-readable rendering for status output, conflict listings and
    /// error messages (not a wire format).
    pub fn display(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Decimal(d) => d.clone(),
            Value::Text(s) => s.clone(),
            Value::Bytes(b) => format!("\\x{}", hex_bytes::encode(b)),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            Value::Time(t) => t.format("%H:%M:%S%.f").to_string(),
            Value::Timestamp(t) => format_timestamp(t),
            Value::TimestampTz(t) => format_timestamptz(t),
            Value::Uuid(u) => u.hyphenated().to_string(),
            Value::Json(j) => j.clone(),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` — the text form SQLite's date functions read.
pub fn format_timestamp(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.f").to_string()
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]+HH:MM`.
pub fn format_timestamptz(t: &DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.f%:z").to_string()
}

/// Parse a timestamp without zone from the text forms SQLite applications
/// write (`T` or space separator, optional fraction).
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// Parse a zoned timestamp: RFC 3339 with `T` or space, `Z` or `±HH:MM`.
pub fn parse_timestamptz(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    let replaced = s.replacen(' ', "T", 1);
    if let Ok(t) = DateTime::parse_from_rfc3339(&replaced) {
        return Some(t);
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(&replaced, fmt) {
            return Some(t);
        }
    }
    None
}

/// Parse a time of day `HH:MM[:SS[.ffffff]]`.
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
}

/// Is `s` exactly what [`canonical_decimal`] makes of it: an optional `-`
/// (not on a zero), an integer part without redundant leading zeros, and an
/// optional non-empty fraction? The adapters' fast paths take such text as
/// it is instead of rebuilding it.
pub fn is_canonical_decimal(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return false;
    }
    if int.len() > 1 && int.starts_with('0') {
        return false;
    }
    let zero = int == "0" && frac.is_none_or(|f| f.bytes().all(|b| b == b'0'));
    !(zero && body.len() != s.len())
}

/// Check and canonicalise decimal text: optional sign, digits, optional
/// fraction; exponents are expanded. Leading `+` and redundant leading zeros
/// are removed; the scale (trailing zeros) is kept.
pub fn canonical_decimal(s: &str) -> Result<String> {
    let t = s.trim();
    let bad = || Error::value(format!("'{s}' is not an exact decimal number"));
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (body, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let mut digits: String = format!("{int_part}{frac_part}");
    let mut scale = frac_part.len() as i64 - i64::from(exp);
    if scale < 0 {
        digits.extend(std::iter::repeat_n('0', (-scale) as usize));
        scale = 0;
    }
    let scale = scale as usize;
    if digits.len() <= scale {
        let pad = scale + 1 - digits.len();
        digits = format!("{}{digits}", "0".repeat(pad));
    }
    let split = digits.len() - scale;
    let int_digits = digits[..split].trim_start_matches('0');
    let int_digits = if int_digits.is_empty() {
        "0"
    } else {
        int_digits
    };
    let frac_digits = &digits[split..];
    let is_zero = int_digits == "0" && frac_digits.bytes().all(|b| b == b'0');
    let sign = if neg && !is_zero { "-" } else { "" };
    Ok(if frac_digits.is_empty() {
        format!("{sign}{int_digits}")
    } else {
        format!("{sign}{int_digits}.{frac_digits}")
    })
}

/// Hex encoding for bytes in JSON (conflict log, wire format).
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Lower-case hex of `bytes`.
    pub fn encode(bytes: &[u8]) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    /// Decode lower- or upper-case hex.
    pub fn decode(s: &str) -> Option<Vec<u8>> {
        if !s.len().is_multiple_of(2) {
            return None;
        }
        let nib = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        s.as_bytes()
            .chunks(2)
            .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
            .collect()
    }

    /// serde: serialize as hex.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(bytes))
    }

    /// serde: deserialize from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        decode(&s).ok_or_else(|| serde::de::Error::custom("invalid hex"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn canonical_decimals_are_recognised_exactly() {
        let mut cases: Vec<String> = [
            "0",
            "1",
            "-1",
            "0.00",
            "-0.00",
            "00",
            "01.5",
            "1.",
            ".5",
            "+1",
            "1e3",
            "12.30",
            "-12.30",
            "0.001",
            "-0.001",
            "-0",
            "1.2.3",
            "",
            "-",
            "1a",
            " 1",
            "1 ",
            "100",
            "10.0",
            "-.5",
            "0.",
            "-00.1",
            "1234567890123456789012345678.9012345678",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        cases.extend((-1200i64..1200).map(|i| format!("{}.{:02}", i / 100, (i % 100).abs())));
        let mut fast = 0;
        for s in &cases {
            let canonical = canonical_decimal(s).ok();
            if is_canonical_decimal(s) {
                assert_eq!(
                    canonical.as_deref(),
                    Some(s.as_str()),
                    "{s:?} taken as canonical"
                );
                fast += 1;
            } else {
                assert_ne!(canonical.as_deref(), Some(s.as_str()), "{s:?} is canonical");
            }
        }
        assert!(fast > 2000, "{fast}");
    }

    use super::*;

    #[test]
    fn decimals_are_canonical_and_exact() {
        let ok = |s: &str| canonical_decimal(s).expect(s);
        assert_eq!(ok("1.10"), "1.10");
        assert_eq!(ok("+001.10"), "1.10");
        assert_eq!(ok("-0.00"), "0.00");
        assert_eq!(ok(".5"), "0.5");
        assert_eq!(ok("1e3"), "1000");
        assert_eq!(ok("1.5E-3"), "0.0015");
        assert_eq!(
            ok("-9999999999999999999999999999.9999999999"),
            "-9999999999999999999999999999.9999999999"
        );
        for bad in ["", "-", "1.2.3", "abc", "1e", "NaN", "1,5"] {
            assert!(canonical_decimal(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn values_round_trip_through_json_without_loss() {
        let vals = vec![
            Value::Null,
            Value::Text("null".into()),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Decimal("-12345678901234567890.0000000001".into()),
            Value::Bytes(vec![0, 255, 10]),
            Value::Float(0.1),
            Value::TimestampTz(parse_timestamptz("2038-01-19 03:14:08.123456+05:30").expect("ts")),
        ];
        let json = serde_json::to_string(&vals).expect("ser");
        let back: Vec<Value> = serde_json::from_str(&json).expect("de");
        assert_eq!(vals, back);
        assert_ne!(Value::Null, Value::Text("null".into()));
    }

    #[test]
    fn same_as_follows_what_databases_normalise() {
        let d = |s: &str| Value::Decimal(s.into());
        assert!(d("1.5").same_as(&d("1.5000000000")));
        assert!(d("2.00").same_as(&Value::Int(2)));
        assert!(Value::Int(2).same_as(&d("2")));
        assert!(d("-0.00").same_as(&d("0")));
        assert!(!d("1.5").same_as(&d("1.05")));
        assert!(!d("10").same_as(&d("1")));
        assert!(!d("100").same_as(&Value::Int(1)));
        let j = |s: &str| Value::Json(s.into());
        assert!(j("{\"a\": 1, \"b\": [1, 2]}").same_as(&j("{\"b\":[1,2],\"a\":1}")));
        assert!(!j("{\"a\": 1}").same_as(&j("{\"a\": 2}")));
        assert!(!Value::Text("1".into()).same_as(&Value::Int(1)));
        assert!(!Value::Null.same_as(&Value::Text("".into())));
        assert!(Value::Null.same_as(&Value::Null));
        assert!(!Value::Null.same_as(&d("0")));
    }

    #[test]
    fn timestamps_parse_the_forms_applications_write() {
        let t = parse_timestamp("2024-02-29T23:59:59.999999").expect("t");
        assert_eq!(format_timestamp(&t), "2024-02-29 23:59:59.999999");
        let z = parse_timestamptz("1969-07-20 20:17:40Z").expect("z");
        assert_eq!(format_timestamptz(&z), "1969-07-20 20:17:40+00:00");
        let a = parse_timestamptz("2024-01-01 05:30:00+05:30").expect("a");
        let b = parse_timestamptz("2024-01-01T00:00:00Z").expect("b");
        assert_eq!(Value::TimestampTz(a), Value::TimestampTz(b));
        assert!(parse_timestamptz("2024-01-01 00:00:00").is_none());
    }
}
