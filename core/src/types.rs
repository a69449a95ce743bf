//! Canonical column types and the rule for which mappings lose nothing.
//!
//! `check-config` and `init-sync` compare the edge column's type with the
//! central column's through [`ColType::lossless_into`]; a mapping that could
//! change a value (a decimal into a float, a zoned timestamp into a zone-less
//! one, text longer than the target) is refused there, naming the column,
//! rather than discovered as corrupted data months later.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A column's type, as edgesync understands it on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColType {
    /// Boolean.
    Bool,
    /// Signed integer of at most 64 bits.
    Int,
    /// 64-bit IEEE float.
    Float,
    /// Exact decimal with optional precision and scale.
    Decimal {
        /// Total digits, if limited.
        precision: Option<u32>,
        /// Digits after the point, if fixed.
        scale: Option<u32>,
    },
    /// Unicode text with an optional maximum length in characters.
    Text {
        /// Maximum length in characters, if limited.
        max_len: Option<u32>,
    },
    /// Binary data.
    Bytes,
    /// Calendar date.
    Date,
    /// Time of day.
    Time,
    /// Timestamp without time zone.
    Timestamp,
    /// Timestamp with time zone.
    TimestampTz,
    /// UUID.
    Uuid,
    /// JSON document.
    Json,
}

impl ColType {
    /// Can every value of `self` be stored in a column of type `target` and read
    /// back unchanged? `Err` carries the reason, for the error message.
    pub fn lossless_into(self, target: ColType) -> Result<(), String> {
        use ColType::*;
        match (self, target) {
            (a, b) if a == b => Ok(()),
            (Int, Decimal { scale, precision }) => match precision {
                Some(p) if p < 19 => Err(format!(
                    "a 64-bit integer needs 19 digits; {target} has {p}{}",
                    scale
                        .map(|s| format!(" with scale {s}"))
                        .unwrap_or_default()
                )),
                _ => Ok(()),
            },
            (
                Decimal {
                    precision: p1,
                    scale: s1,
                },
                Decimal {
                    precision: p2,
                    scale: s2,
                },
            ) => {
                let int1 = p1.map(|p| p.saturating_sub(s1.unwrap_or(0)));
                let int2 = p2.map(|p| p.saturating_sub(s2.unwrap_or(0)));
                let int_ok = match (int1, int2) {
                    (_, None) => true,
                    (Some(a), Some(b)) => a <= b,
                    (None, Some(_)) => false,
                };
                let scale_ok = match (s1, s2) {
                    (_, None) => true,
                    (Some(a), Some(b)) => a <= b,
                    (None, Some(_)) => false,
                };
                if int_ok && scale_ok {
                    Ok(())
                } else {
                    Err(format!("{self} does not fit in {target}"))
                }
            }
            (Text { max_len: a }, Text { max_len: b }) => match (a, b) {
                (_, None) => Ok(()),
                (Some(a), Some(b)) if a <= b => Ok(()),
                _ => Err(format!("text longer than {target} allows would be cut")),
            },
            (Decimal { .. }, Float) | (Float, Decimal { .. }) => Err(format!(
                "{self} and {target} are not exact for each other (money would drift)"
            )),
            (TimestampTz, Timestamp) => {
                Err("a timestamp with time zone would lose its zone in a timestamp column".into())
            }
            (Timestamp, TimestampTz) => Err(
                "a timestamp without time zone has no instant to store in a zoned column".into(),
            ),
            _ => Err(format!("{self} cannot be stored as {target}")),
        }
    }

    /// Both directions lossless (what a `both` table needs).
    pub fn compatible(self, other: ColType) -> Result<(), String> {
        self.lossless_into(other)?;
        other.lossless_into(self)
    }
}

impl fmt::Display for ColType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColType::Bool => f.write_str("boolean"),
            ColType::Int => f.write_str("integer"),
            ColType::Float => f.write_str("float"),
            ColType::Decimal { precision, scale } => match (precision, scale) {
                (Some(p), Some(s)) => write!(f, "decimal({p},{s})"),
                (Some(p), None) => write!(f, "decimal({p})"),
                _ => f.write_str("decimal"),
            },
            ColType::Text { max_len: Some(n) } => write!(f, "text({n})"),
            ColType::Text { max_len: None } => f.write_str("text"),
            ColType::Bytes => f.write_str("bytes"),
            ColType::Date => f.write_str("date"),
            ColType::Time => f.write_str("time"),
            ColType::Timestamp => f.write_str("timestamp"),
            ColType::TimestampTz => f.write_str("timestamptz"),
            ColType::Uuid => f.write_str("uuid"),
            ColType::Json => f.write_str("json"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColType::*;

    fn dec(p: u32, s: u32) -> ColType {
        Decimal {
            precision: Some(p),
            scale: Some(s),
        }
    }

    #[test]
    fn lossy_mappings_are_refused() {
        assert!(dec(12, 2).lossless_into(Float).is_err());
        assert!(Float.lossless_into(dec(12, 2)).is_err());
        assert!(TimestampTz.lossless_into(Timestamp).is_err());
        assert!(dec(12, 2).lossless_into(dec(10, 2)).is_err());
        assert!(dec(12, 4).lossless_into(dec(14, 2)).is_err());
        assert!(Text { max_len: None }
            .lossless_into(Text { max_len: Some(10) })
            .is_err());
        assert!(Int.lossless_into(dec(10, 0)).is_err());
        assert!(Text { max_len: None }.lossless_into(Int).is_err());
    }

    #[test]
    fn exact_mappings_are_accepted() {
        assert!(dec(12, 2).lossless_into(dec(14, 2)).is_ok());
        assert!(dec(12, 2).compatible(dec(12, 2)).is_ok());
        assert!(Int.lossless_into(dec(38, 0)).is_ok());
        assert!(Text { max_len: Some(5) }
            .lossless_into(Text { max_len: None })
            .is_ok());
        assert!(Uuid.compatible(Uuid).is_ok());
    }
}
