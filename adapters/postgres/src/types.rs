//! Every conversion between PostgreSQL and the canonical [`Value`], in one
//! place.
//!
//! - Reading: numeric and json/jsonb are selected as `::text` (see
//!   [`crate::sql::read_expr`]) and decoded from text, so a decimal never
//!   passes through `f64`; integers are widened to `bigint`; the rest uses
//!   sqlx's native chrono/uuid/bytea decoding.
//! - Writing: each column of a batch becomes one typed array ([`ColumnArray`])
//!   bound once and `UNNEST`ed on the server; decimals and JSON are bound as
//!   text and cast there.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use edgesync_core::{value::canonical_decimal, ColType, Error, Result, Value};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Postgres, Row};
use uuid::Uuid;

/// The canonical type of a PostgreSQL column, from `pg_type.typname`, the
/// column's `atttypmod` and `pg_type.typtype`; `Err` carries what to tell the
/// user (the native name, and why when there is a better choice).
pub fn col_type(
    typname: &str,
    typmod: i32,
    typtype: &str,
    display: &str,
) -> Result<ColType, String> {
    if typtype == "d" {
        return Err(format!("{display} (a domain; sync its base type instead)"));
    }
    Ok(match typname {
        "bool" => ColType::Bool,
        "int2" | "int4" | "int8" => ColType::Int,
        "float8" => ColType::Float,
        "float4" => {
            return Err("real (float4) cannot hold every SQLite REAL; use double precision".into())
        }
        "numeric" if typmod < 4 => ColType::Decimal {
            precision: None,
            scale: None,
        },
        "numeric" => {
            let m = typmod - 4;
            let precision = ((m >> 16) & 0xffff) as u32;
            let raw_scale = m & 0x7ff;
            if raw_scale & 0x400 != 0 {
                return Err(format!("{display} (negative scale rounds values)"));
            }
            ColType::Decimal {
                precision: Some(precision),
                scale: Some(raw_scale as u32),
            }
        }
        "text" => ColType::Text { max_len: None },
        "varchar" if typmod < 4 => ColType::Text { max_len: None },
        "varchar" => ColType::Text {
            max_len: Some((typmod - 4) as u32),
        },
        "bpchar" => {
            return Err(format!(
                "{display} pads values with spaces; use varchar(n) or text"
            ))
        }
        "bytea" => ColType::Bytes,
        "date" => ColType::Date,
        "time" => ColType::Time,
        "timestamp" => ColType::Timestamp,
        "timestamptz" => ColType::TimestampTz,
        "uuid" => ColType::Uuid,
        "json" | "jsonb" => ColType::Json,
        _ => return Err(display.to_string()),
    })
}

/// Decode column `idx` of `row`, selected with [`crate::sql::read_expr`] for
/// `ty`. Errors name the column (`what`).
pub fn decode(row: &PgRow, idx: usize, ty: ColType, what: &str) -> Result<Value> {
    let bad =
        |e: sqlx::Error| Error::value(format!("cannot read {what} as {ty}: {e}")).with_source(e);
    macro_rules! get {
        ($t:ty, $wrap:expr) => {
            row.try_get::<Option<$t>, _>(idx)
                .map_err(bad)?
                .map($wrap)
                .unwrap_or(Value::Null)
        };
    }
    Ok(match ty {
        ColType::Bool => get!(bool, Value::Bool),
        ColType::Int => get!(i64, Value::Int),
        ColType::Float => get!(f64, Value::Float),
        ColType::Decimal { .. } => match row.try_get::<Option<String>, _>(idx).map_err(bad)? {
            Some(s) => Value::Decimal(canonical_decimal(&s).map_err(|e| e.context(what))?),
            None => Value::Null,
        },
        ColType::Text { .. } => get!(String, Value::Text),
        ColType::Json => get!(String, Value::Json),
        ColType::Bytes => get!(Vec<u8>, Value::Bytes),
        // Dates and times are decoded from their binary form here, with
        // checked arithmetic: `infinity` or `24:00:00` become an error naming
        // the column, never a panic or a silently different value.
        ColType::Date => match raw::<i32>(row, idx).map_err(bad)? {
            None => Value::Null,
            Some(days) => Value::Date(date_from_pg(days).ok_or_else(|| out_of_range(what))?),
        },
        ColType::Time => match raw::<i64>(row, idx).map_err(bad)? {
            None => Value::Null,
            Some(us) => Value::Time(time_from_pg(us).ok_or_else(|| out_of_range(what))?),
        },
        ColType::Timestamp => match raw::<i64>(row, idx).map_err(bad)? {
            None => Value::Null,
            Some(us) => Value::Timestamp(timestamp_from_pg(us).ok_or_else(|| out_of_range(what))?),
        },
        ColType::TimestampTz => match raw::<i64>(row, idx).map_err(bad)? {
            None => Value::Null,
            Some(us) => Value::TimestampTz(
                timestamp_from_pg(us)
                    .ok_or_else(|| out_of_range(what))?
                    .and_utc()
                    .fixed_offset(),
            ),
        },
        ColType::Uuid => get!(Uuid, Value::Uuid),
    })
}

/// Can a column of canonical type `ty` and native type `native`
/// (`format_type`), selected with [`crate::sql::read_expr`], be read by
/// [`decode_binary`] from a binary `COPY`? Exactly the combinations whose
/// binary form is fixed by the cast `read_expr` adds (integers as `bigint`,
/// decimals and JSON as `text`) or by the native type itself; anything else
/// is read through sqlx's query path, which checks the types.
pub fn binary_readable(ty: ColType, native: &str) -> bool {
    let (base, zone) = match native.split_once('(') {
        // `timestamp(3) with time zone`, `character varying(20)`
        Some((base, rest)) => (base, rest.split_once(')').map_or("", |(_, z)| z)),
        None => (native, ""),
    };
    let plain = |t: &str| native == t;
    match ty {
        ColType::Int | ColType::Decimal { .. } | ColType::Json => true,
        ColType::Text { .. } => plain("text") || base == "character varying",
        ColType::Bool => plain("boolean"),
        ColType::Float => plain("double precision"),
        ColType::Bytes => plain("bytea"),
        ColType::Date => plain("date"),
        ColType::Uuid => plain("uuid"),
        ColType::Time => {
            plain("time without time zone") || (base == "time" && zone == " without time zone")
        }
        ColType::Timestamp => {
            plain("timestamp without time zone")
                || (base == "timestamp" && zone == " without time zone")
        }
        ColType::TimestampTz => {
            plain("timestamp with time zone") || (base == "timestamp" && zone == " with time zone")
        }
    }
}

/// [`decode`] for a value in PostgreSQL's binary format, as a binary `COPY`
/// sends it (`None` = NULL), for the columns [`binary_readable`] accepts.
/// The same values and the same errors as [`decode`]; a value whose length
/// does not fit its type is refused, never read past.
pub fn decode_binary(raw: Option<&[u8]>, ty: ColType, what: &str) -> Result<Value> {
    let Some(b) = raw else {
        return Ok(Value::Null);
    };
    let bad_len = || {
        Error::value(format!(
            "cannot read {what} as {ty}: {} bytes in binary COPY",
            b.len()
        ))
    };
    let text = || {
        String::from_utf8(b.to_vec())
            .map_err(|e| Error::value(format!("cannot read {what} as {ty}: {e}")))
    };
    let i64_be = || b.try_into().map(i64::from_be_bytes).map_err(|_| bad_len());
    Ok(match ty {
        ColType::Bool => match b {
            [v] => Value::Bool(*v != 0),
            _ => return Err(bad_len()),
        },
        ColType::Int => Value::Int(i64_be()?),
        ColType::Float => Value::Float(f64::from_bits(
            b.try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| bad_len())?,
        )),
        ColType::Decimal { .. } => {
            let s = text()?;
            if edgesync_core::value::is_canonical_decimal(&s) {
                Value::Decimal(s)
            } else {
                Value::Decimal(canonical_decimal(&s).map_err(|e| e.context(what))?)
            }
        }
        ColType::Text { .. } => Value::Text(text()?),
        ColType::Json => Value::Json(text()?),
        ColType::Bytes => Value::Bytes(b.to_vec()),
        ColType::Date => {
            let days = b
                .try_into()
                .map(i32::from_be_bytes)
                .map_err(|_| bad_len())?;
            Value::Date(date_from_pg(days).ok_or_else(|| out_of_range(what))?)
        }
        ColType::Time => Value::Time(time_from_pg(i64_be()?).ok_or_else(|| out_of_range(what))?),
        ColType::Timestamp => {
            Value::Timestamp(timestamp_from_pg(i64_be()?).ok_or_else(|| out_of_range(what))?)
        }
        ColType::TimestampTz => Value::TimestampTz(
            timestamp_from_pg(i64_be()?)
                .ok_or_else(|| out_of_range(what))?
                .and_utc()
                .fixed_offset(),
        ),
        ColType::Uuid => Value::Uuid(Uuid::from_slice(b).map_err(|_| bad_len())?),
    })
}

/// The column's binary value as the integer PostgreSQL sends for dates
/// (days) and times/timestamps (microseconds), bypassing sqlx's conversion,
/// whose unchecked arithmetic panics on `infinity`.
fn raw<'r, T: sqlx::Decode<'r, Postgres>>(row: &'r PgRow, idx: usize) -> sqlx::Result<Option<T>> {
    row.try_get_unchecked::<Option<T>, _>(idx)
}

fn out_of_range(what: &str) -> Error {
    Error::value(format!(
        "{what} holds a date or time outside what edgesync can carry (infinity, 24:00:00 or beyond year 262143)"
    ))
}

/// PostgreSQL's epoch for dates and timestamps.
fn pg_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

fn date_from_pg(days: i32) -> Option<NaiveDate> {
    if days == i32::MAX || days == i32::MIN {
        return None;
    }
    pg_epoch()
        .date()
        .checked_add_signed(TimeDelta::try_days(days.into())?)
}

fn time_from_pg(us: i64) -> Option<NaiveTime> {
    let secs = u32::try_from(us.div_euclid(1_000_000)).ok()?;
    let nanos = u32::try_from(us.rem_euclid(1_000_000) * 1000).ok()?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
}

fn timestamp_from_pg(us: i64) -> Option<NaiveDateTime> {
    if us == i64::MAX || us == i64::MIN {
        return None;
    }
    pg_epoch().checked_add_signed(TimeDelta::microseconds(us))
}

/// One column of a batch, as the typed array it is bound as.
#[derive(Debug)]
pub enum ColumnArray {
    /// `boolean[]`
    Bool(Vec<Option<bool>>),
    /// `bigint[]`
    Int(Vec<Option<i64>>),
    /// `double precision[]`
    Float(Vec<Option<f64>>),
    /// `text[]` (text, decimals, JSON)
    Text(Vec<Option<String>>),
    /// `bytea[]`
    Bytes(Vec<Option<Vec<u8>>>),
    /// `date[]`
    Date(Vec<Option<NaiveDate>>),
    /// `time[]`
    Time(Vec<Option<NaiveTime>>),
    /// `timestamp[]`
    Timestamp(Vec<Option<NaiveDateTime>>),
    /// `timestamptz[]`
    TimestampTz(Vec<Option<DateTime<Utc>>>),
    /// `uuid[]`
    Uuid(Vec<Option<Uuid>>),
}

impl ColumnArray {
    /// An empty array for a column of type `ty`.
    pub fn new(ty: ColType) -> Self {
        match ty {
            ColType::Bool => ColumnArray::Bool(Vec::new()),
            ColType::Int => ColumnArray::Int(Vec::new()),
            ColType::Float => ColumnArray::Float(Vec::new()),
            ColType::Decimal { .. } | ColType::Text { .. } | ColType::Json => {
                ColumnArray::Text(Vec::new())
            }
            ColType::Bytes => ColumnArray::Bytes(Vec::new()),
            ColType::Date => ColumnArray::Date(Vec::new()),
            ColType::Time => ColumnArray::Time(Vec::new()),
            ColType::Timestamp => ColumnArray::Timestamp(Vec::new()),
            ColType::TimestampTz => ColumnArray::TimestampTz(Vec::new()),
            ColType::Uuid => ColumnArray::Uuid(Vec::new()),
        }
    }

    /// Append `v`, to be written to a column of type `ty`. A value of another
    /// kind is an [`edgesync_core::ErrorKind::Value`] error; the caller adds
    /// table, column and key.
    pub fn push(&mut self, ty: ColType, v: &Value) -> Result<()> {
        let mismatch = || Error::value(format!("a {} value cannot be stored as {ty}", kind(v)));
        match (self, v) {
            (ColumnArray::Bool(a), Value::Null) => a.push(None),
            (ColumnArray::Int(a), Value::Null) => a.push(None),
            (ColumnArray::Float(a), Value::Null) => a.push(None),
            (ColumnArray::Text(a), Value::Null) => a.push(None),
            (ColumnArray::Bytes(a), Value::Null) => a.push(None),
            (ColumnArray::Date(a), Value::Null) => a.push(None),
            (ColumnArray::Time(a), Value::Null) => a.push(None),
            (ColumnArray::Timestamp(a), Value::Null) => a.push(None),
            (ColumnArray::TimestampTz(a), Value::Null) => a.push(None),
            (ColumnArray::Uuid(a), Value::Null) => a.push(None),
            (ColumnArray::Bool(a), Value::Bool(b)) => a.push(Some(*b)),
            (ColumnArray::Int(a), Value::Int(i)) => a.push(Some(*i)),
            (ColumnArray::Float(a), Value::Float(f)) => a.push(Some(*f)),
            (ColumnArray::Text(a), v) => a.push(Some(text_for(ty, v).ok_or_else(mismatch)??)),
            (ColumnArray::Bytes(a), Value::Bytes(b)) => a.push(Some(b.clone())),
            (ColumnArray::Date(a), Value::Date(d)) => a.push(Some(*d)),
            (ColumnArray::Time(a), Value::Time(t)) => a.push(Some(*t)),
            (ColumnArray::Timestamp(a), Value::Timestamp(t)) => a.push(Some(*t)),
            // The instant is kept whatever offset it was written with.
            (ColumnArray::TimestampTz(a), Value::TimestampTz(t)) => {
                a.push(Some(t.with_timezone(&Utc)))
            }
            (ColumnArray::Uuid(a), Value::Uuid(u)) => a.push(Some(*u)),
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    /// Bind this array as the next parameter of `q`.
    pub fn bind<'q>(self, q: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        match self {
            ColumnArray::Bool(a) => q.bind(a),
            ColumnArray::Int(a) => q.bind(a),
            ColumnArray::Float(a) => q.bind(a),
            ColumnArray::Text(a) => q.bind(a),
            ColumnArray::Bytes(a) => q.bind(a),
            ColumnArray::Date(a) => q.bind(a),
            ColumnArray::Time(a) => q.bind(a),
            ColumnArray::Timestamp(a) => q.bind(a),
            ColumnArray::TimestampTz(a) => q.bind(a),
            ColumnArray::Uuid(a) => q.bind(a),
        }
    }
}

/// Positional parameters for generated SQL: each call returns the
/// placeholder to splice in (`$3::bigint[]`), and [`Params::query`] binds them
/// all in order.
#[derive(Debug, Default)]
pub struct Params {
    args: Vec<Arg>,
    /// Render values as literals in the text instead of binding them: for a
    /// statement that takes no parameters (`COPY`, see
    /// [`Params::inline`]).
    inline: bool,
}

#[derive(Debug)]
enum Arg {
    Array(ColumnArray),
    Text(String),
    Int(i64),
}

impl Params {
    /// Parameters written into the statement as literals, for `COPY`, which
    /// takes none: text as an escape string literal (`E'...'`, whose
    /// backslash and quote escaping means the same whatever
    /// `standard_conforming_strings` says, as libpq's `PQescapeLiteral`
    /// does), integers as numbers. Arrays are not supported.
    pub fn inline() -> Self {
        Params {
            args: Vec::new(),
            inline: true,
        }
    }

    /// A typed array parameter, as `$n::<ty>[]`.
    pub fn array(&mut self, a: ColumnArray, ty: &str) -> String {
        debug_assert!(!self.inline, "arrays are never written as literals");
        self.args.push(Arg::Array(a));
        format!("${}::{ty}[]", self.args.len())
    }

    /// A text parameter, as `$n::text`.
    pub fn text(&mut self, s: impl Into<String>) -> String {
        if self.inline {
            return format!("{}::text", text_literal(&s.into()));
        }
        self.args.push(Arg::Text(s.into()));
        format!("${}::text", self.args.len())
    }

    /// A bigint parameter, as `$n::bigint`.
    pub fn int(&mut self, i: i64) -> String {
        if self.inline {
            return format!("({i})::bigint");
        }
        self.args.push(Arg::Int(i));
        format!("${}::bigint", self.args.len())
    }

    /// Whether values are written as literals ([`Params::inline`]).
    pub fn is_inline(&self) -> bool {
        self.inline
    }

    /// The query `sql` with every parameter bound.
    pub fn query<'q>(self, sql: String) -> Query<'q, Postgres, PgArguments> {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for a in self.args {
            q = match a {
                Arg::Array(a) => a.bind(q),
                Arg::Text(s) => q.bind(s),
                Arg::Int(i) => q.bind(i),
            };
        }
        q
    }
}

/// `s` as an escape string literal: `E'...'` with every backslash and quote
/// doubled. Text holds no NUL (PostgreSQL refuses it in text), so nothing
/// else needs escaping.
fn text_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 3);
    out.push_str("E'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The text a value is bound as for a text-transported column (text, decimal,
/// JSON); `None` when the value is of another kind.
fn text_for(ty: ColType, v: &Value) -> Option<Result<String>> {
    Some(match (ty, v) {
        (ColType::Text { .. }, Value::Text(s)) => Ok(s.clone()),
        (ColType::Json, Value::Json(s)) => Ok(s.clone()),
        (ColType::Decimal { scale, .. }, Value::Decimal(d)) => decimal_text(d, scale),
        // An edge integer column mapped onto a wide enough decimal.
        (ColType::Decimal { .. }, Value::Int(i)) => Ok(i.to_string()),
        _ => return None,
    })
}

/// Canonical decimal text, refusing digits the column's scale would round
/// away (PostgreSQL rounds silently on assignment to `numeric(p,s)`).
fn decimal_text(d: &str, scale: Option<u32>) -> Result<String> {
    let canon = canonical_decimal(d)?;
    if let (Some(scale), Some((_, frac))) = (scale, canon.split_once('.')) {
        let cut = frac.get(scale as usize..).unwrap_or("");
        if cut.bytes().any(|b| b != b'0') {
            return Err(Error::value(format!(
                "{d} has more than {scale} decimal places; the column would round it"
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

    #[test]
    fn literals_escape_quotes_and_backslashes_whatever_the_setting() {
        assert_eq!(text_literal("plain"), "E'plain'");
        assert_eq!(text_literal("O'Brien"), "E'O''Brien'");
        assert_eq!(text_literal("a\\b"), "E'a\\\\b'");
        assert_eq!(
            text_literal("\\'; DROP TABLE t; --"),
            "E'\\\\''; DROP TABLE t; --'"
        );
        let mut p = Params::inline();
        assert_eq!(p.text("x'y"), "E'x''y'::text");
        assert_eq!(p.int(-7), "(-7)::bigint");
        assert!(p.args.is_empty());
        let mut q = Params::default();
        assert_eq!(q.text("x"), "$1::text");
        assert_eq!(q.int(1), "$2::bigint");
    }

    #[test]
    fn binary_reading_covers_exactly_the_forms_read_expr_fixes() {
        let dec = ColType::Decimal {
            precision: Some(12),
            scale: Some(2),
        };
        let text = ColType::Text { max_len: None };
        for (ty, native, ok) in [
            (ColType::Int, "integer", true),
            (dec, "numeric(12,2)", true),
            (ColType::Json, "jsonb", true),
            (text, "text", true),
            (text, "character varying(20)", true),
            (text, "character(3)", false),
            (text, "citext", false),
            (ColType::Bool, "boolean", true),
            (ColType::Float, "double precision", true),
            (ColType::Float, "real", false),
            (ColType::Bytes, "bytea", true),
            (ColType::Date, "date", true),
            (ColType::Time, "time without time zone", true),
            (ColType::Time, "time(3) without time zone", true),
            (ColType::Time, "time with time zone", false),
            (ColType::Timestamp, "timestamp(6) without time zone", true),
            (ColType::Timestamp, "timestamp with time zone", false),
            (ColType::TimestampTz, "timestamp with time zone", true),
            (ColType::TimestampTz, "timestamp(0) with time zone", true),
            (ColType::TimestampTz, "timestamp without time zone", false),
            (ColType::Uuid, "uuid", true),
            (ColType::Uuid, "text", false),
        ] {
            assert_eq!(binary_readable(ty, native), ok, "{ty:?} as {native}");
        }
    }

    #[test]
    fn binary_values_of_the_wrong_length_are_refused() {
        let e = decode_binary(Some(&[0, 1]), ColType::Int, "t.c").expect_err("short");
        assert!(e.message().contains("t.c"), "{e}");
        assert!(decode_binary(Some(&[1, 2]), ColType::Bool, "t.c").is_err());
        assert!(decode_binary(Some(&[0; 15]), ColType::Uuid, "t.c").is_err());
        assert!(decode_binary(Some(&[0xff]), ColType::Text { max_len: None }, "t.c").is_err());
        assert_eq!(
            decode_binary(None, ColType::Date, "t.c").expect("null"),
            Value::Null
        );
        assert_eq!(
            decode_binary(Some(&[0, 0, 0, 0]), ColType::Date, "t.c").expect("epoch"),
            Value::Date(NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"))
        );
        assert!(decode_binary(Some(&i32::MAX.to_be_bytes()), ColType::Date, "t.c").is_err());
    }

    #[test]
    fn native_types_map_or_are_refused_with_a_reason() {
        assert_eq!(
            col_type("numeric", (12 << 16 | 2) + 4, "b", "numeric(12,2)"),
            Ok(ColType::Decimal {
                precision: Some(12),
                scale: Some(2)
            })
        );
        assert_eq!(
            col_type("varchar", 24, "b", "character varying(20)"),
            Ok(ColType::Text { max_len: Some(20) })
        );
        assert!(col_type("float4", -1, "b", "real")
            .expect_err("refused")
            .contains("double precision"));
        assert!(col_type("bpchar", 9, "b", "character(5)")
            .expect_err("refused")
            .contains("character(5)"));
        assert_eq!(col_type("inet", -1, "b", "inet"), Err("inet".into()));
    }

    #[test]
    fn binary_dates_and_times_are_checked() {
        assert_eq!(date_from_pg(0), NaiveDate::from_ymd_opt(2000, 1, 1));
        assert_eq!(date_from_pg(-1), NaiveDate::from_ymd_opt(1999, 12, 31));
        assert_eq!(date_from_pg(i32::MAX), None);
        assert_eq!(time_from_pg(86_400_000_000), None);
        assert_eq!(time_from_pg(1), NaiveTime::from_hms_micro_opt(0, 0, 0, 1));
        assert_eq!(timestamp_from_pg(i64::MIN), None);
        assert_eq!(
            timestamp_from_pg(-1).map(|t| t.to_string()),
            Some("1999-12-31 23:59:59.999999".into())
        );
    }

    #[test]
    fn decimals_are_never_rounded_silently() {
        assert_eq!(decimal_text("1.10", Some(2)).expect("ok"), "1.10");
        assert_eq!(decimal_text("1.100", Some(2)).expect("ok"), "1.100");
        assert!(decimal_text("1.105", Some(2)).is_err());
        assert_eq!(decimal_text("-1e-3", None).expect("ok"), "-0.001");
    }

    #[test]
    fn mismatched_values_are_refused() {
        let mut a = ColumnArray::new(ColType::Int);
        assert!(a.push(ColType::Int, &Value::Text("1".into())).is_err());
        a.push(ColType::Int, &Value::Null).expect("ok");
        let dec = ColType::Decimal {
            precision: Some(38),
            scale: Some(0),
        };
        let mut d = ColumnArray::new(dec);
        d.push(dec, &Value::Int(i64::MIN)).expect("ok");
        assert!(d.push(dec, &Value::Float(1.0)).is_err());
    }
}
