//! Row filters: which central rows a node holds and may write.
//!
//! A `[[table]] filter` is a condition on the central table's columns whose
//! `:name` parameters bind a node's values (`[[edge]] params` in direct
//! mode, the credential's params and tenant behind a hub). The same parsed
//! filter is used three ways, so that every place agrees on what "in scope"
//! means:
//!
//! - the central adapters render it to SQL ([`Scope::render`]) with every
//!   value a bind parameter, to select a node's rows and to mark the rows
//!   that left its scope (move-out) in a pull;
//! - the adapters' push decision loops evaluate it on the pushed row and on
//!   the central row it would replace ([`Scope::selects`]);
//! - the hub evaluates it as defence in depth on whatever it hands out.
//!
//! Only this subset of SQL is understood, and anything else is refused
//! rather than guessed at (a filter is never pasted into SQL as text):
//!
//! ```text
//! expr    := and (OR and)*
//! and     := unary (AND unary)*
//! unary   := NOT unary | ( expr ) | column = value | column <> value | column != value
//!          | column [NOT] IN (value, ...) | column IS [NOT] NULL
//! value   := :param | 'text' | number | TRUE | FALSE
//! ```
//!
//! NULL follows SQL: a comparison with NULL is unknown, and only rows for
//! which the whole condition is true are in scope.

use std::collections::BTreeMap;

use crate::change::{Change, PushOutcome};
use crate::conflict::CentralRow;
use crate::error::{Error, Result};
use crate::schema::TableMapping;
use crate::types::ColType;
use crate::value::{canonical_decimal, parse_time, parse_timestamp, parse_timestamptz, Value};

/// A literal or parameter in a filter.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Param(String),
    Text(String),
}

/// A column a filter tests: its place in the mapping's rows, its central
/// name (for SQL) and type (to bind values typed as the column is).
#[derive(Debug, Clone, PartialEq)]
struct Col {
    index: usize,
    name: String,
    ty: ColType,
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    /// `col = v` (true) or `col <> v` (false).
    Eq(Col, Operand, bool),
    /// `col IN (...)` (true) or `col NOT IN (...)` (false).
    In(Col, Vec<Operand>, bool),
    /// `col IS NULL` (true) or `col IS NOT NULL` (false).
    IsNull(Col, bool),
}

/// A table filter, parsed against the table's mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
    params: Vec<String>,
}

/// A filter with one node's parameter values bound: that node's scope of
/// a table. Owned, so the engine and the hub can hand it to an adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    expr: Expr,
    values: BTreeMap<String, String>,
}

/// How a backend spells bind parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// PostgreSQL: `$1`, `$2`, ...
    Dollar,
    /// MySQL / MariaDB: `?` (positional; the caller binds in order).
    Question,
    /// SQLite: `?1`, `?2`, ...
    QuestionNumbered,
    /// SQL Server: `@P1`, `@P2`, ...
    AtP,
    /// Oracle: `:1`, `:2`, ...
    Colon,
}

impl Placeholder {
    /// The text of parameter number `n` (1-based).
    pub fn text(self, n: usize) -> String {
        match self {
            Placeholder::Dollar => format!("${n}"),
            Placeholder::Question => "?".to_string(),
            Placeholder::QuestionNumbered => format!("?{n}"),
            Placeholder::AtP => format!("@P{n}"),
            Placeholder::Colon => format!(":{n}"),
        }
    }
}

/// A scope rendered as a SQL condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The condition, with placeholders numbered from the `first` given to
    /// [`Scope::render`].
    pub sql: String,
    /// The values to bind, in placeholder order, each typed as the column
    /// it is compared with (so a backend binds it as it binds that column).
    pub params: Vec<(Value, ColType)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Param(String),
    Num(String),
    Sym(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let ident = |i: &mut usize| {
            let start = *i;
            while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
                *i += 1;
            }
            chars[start..*i].iter().collect::<String>()
        };
        match c {
            '(' | ')' | ',' | '=' => {
                out.push(Tok::Sym(match c {
                    '(' => "(",
                    ')' => ")",
                    ',' => ",",
                    _ => "=",
                }));
                i += 1;
            }
            '<' | '!' if chars.get(i + 1) == Some(&'>') || chars.get(i + 1) == Some(&'=') => {
                if c == '<' && chars[i + 1] == '=' {
                    return Err("only =, <>, !=, IN and IS NULL are supported".into());
                }
                out.push(Tok::Sym("<>"));
                i += 2;
            }
            '\'' | '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated {c} quote")),
                        Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                            s.push(c);
                            i += 2;
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            s.push(other);
                            i += 1;
                        }
                    }
                }
                out.push(if c == '\'' {
                    Tok::Str(s)
                } else {
                    Tok::Quoted(s)
                });
            }
            ':' => {
                i += 1;
                let name = ident(&mut i);
                if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                    return Err("a ':' must start a parameter name".into());
                }
                out.push(Tok::Param(name));
            }
            '-' | '0'..='9' | '.' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                out.push(Tok::Num(chars[start..i].iter().collect()));
            }
            c if c.is_alphabetic() || c == '_' => out.push(Tok::Word(ident(&mut i))),
            other => {
                return Err(format!(
                    "unexpected {other:?}; a filter may use =, <>, !=, [NOT] IN (...), \
                     IS [NOT] NULL, AND, OR, NOT and parentheses"
                ))
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    m: &'a TableMapping,
    params: Vec<String>,
}

impl Parser<'_> {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let hit = self.peek_word(w);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        let hit = matches!(self.toks.get(self.pos), Some(Tok::Sym(x)) if *x == s);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), String> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(format!("expected {s:?}"))
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.and()?];
        while self.eat_word("OR") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.unary()?];
        while self.eat_word("AND") {
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_word("NOT") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat_sym("(") {
            let e = self.or()?;
            self.expect_sym(")")?;
            return Ok(e);
        }
        let col = self.column()?;
        if self.eat_sym("=") {
            return Ok(Expr::Eq(col, self.operand()?, true));
        }
        if self.eat_sym("<>") {
            return Ok(Expr::Eq(col, self.operand()?, false));
        }
        if self.eat_word("IS") {
            let not = self.eat_word("NOT");
            if !self.eat_word("NULL") {
                return Err("expected NULL after IS".into());
            }
            return Ok(Expr::IsNull(col, !not));
        }
        let not = self.eat_word("NOT");
        if self.eat_word("IN") {
            self.expect_sym("(")?;
            let mut list = vec![self.operand()?];
            while self.eat_sym(",") {
                list.push(self.operand()?);
            }
            self.expect_sym(")")?;
            return Ok(Expr::In(col, list, !not));
        }
        Err("expected =, <>, IN or IS after a column".into())
    }

    fn column(&mut self) -> Result<Col, String> {
        let name = match self.toks.get(self.pos) {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => w.clone(),
            _ => return Err("expected a column name".into()),
        };
        self.pos += 1;
        self.m
            .columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.central.eq_ignore_ascii_case(&name))
            .map(|(index, c)| Col {
                index,
                name: c.central.clone(),
                ty: c.ty,
            })
            .ok_or_else(|| {
                format!(
                    "{name} is not a synced column of central table {}",
                    self.m.central
                )
            })
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Param(p)) => {
                if !self.params.contains(&p) {
                    self.params.push(p.clone());
                }
                Ok(Operand::Param(p))
            }
            Some(Tok::Str(s)) | Some(Tok::Num(s)) => Ok(Operand::Text(s)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => {
                Ok(Operand::Text("true".into()))
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => {
                Ok(Operand::Text("false".into()))
            }
            _ => Err("expected a value: :param, 'text', a number, TRUE or FALSE".into()),
        }
    }
}

impl Filter {
    /// Parse `text` against the mapping of its table (columns are central
    /// column names).
    pub fn parse(text: &str, m: &TableMapping) -> std::result::Result<Filter, String> {
        let mut p = Parser {
            toks: tokenize(text)?,
            pos: 0,
            m,
            params: Vec::new(),
        };
        let expr = p.or()?;
        if p.pos != p.toks.len() {
            return Err("unexpected text after the condition".into());
        }
        Ok(Filter {
            expr,
            params: p.params,
        })
    }

    /// The `:name` parameters it uses, in order of first use.
    pub fn params(&self) -> &[String] {
        &self.params
    }

    /// Bind a node's values (`tenant` binds `:tenant` unless a param of that
    /// name is given); the first parameter left unbound is an error. Every
    /// value must also convert to the type of the column it is compared
    /// with, so the SQL the central runs and [`Scope::selects`] agree.
    pub fn bind(
        &self,
        tenant: Option<&str>,
        params: &BTreeMap<String, String>,
    ) -> std::result::Result<Scope, String> {
        let mut values = BTreeMap::new();
        for p in &self.params {
            let v = params
                .get(p)
                .map(String::as_str)
                .or_else(|| (p == "tenant").then_some(tenant).flatten())
                .ok_or_else(|| format!(":{p} has no value for this node"))?;
            values.insert(p.clone(), v.to_string());
        }
        let scope = Scope {
            expr: self.expr.clone(),
            values,
        };
        // Render once to check every value types against its column.
        scope
            .render(Placeholder::Dollar, &|c| c.to_string(), 1)
            .map_err(|e| e.to_string())?;
        Ok(scope)
    }
}

impl Scope {
    /// Parse `filter` for table `m` and bind a node's values, with an error
    /// naming the table and the filter.
    pub fn new(
        filter: &str,
        m: &TableMapping,
        tenant: Option<&str>,
        params: &BTreeMap<String, String>,
    ) -> Result<Scope> {
        Filter::parse(filter, m)
            .and_then(|f| f.bind(tenant, params))
            .map_err(|e| {
                Error::new(
                    crate::error::ErrorKind::Config,
                    format!("table {}: filter {filter:?}: {e}", m.central),
                )
            })
    }

    /// Is the row (values in mapping order) in scope?
    pub fn selects(&self, row: &[Value]) -> bool {
        self.eval(&self.expr, row) == Some(true)
    }

    /// The condition as SQL for one backend: `column` renders a (central)
    /// column reference, quoted as the backend quotes and qualified as the
    /// query needs; placeholders are numbered from `first`. No value is
    /// ever part of the text.
    pub fn render(
        &self,
        ph: Placeholder,
        column: &dyn Fn(&str) -> String,
        first: usize,
    ) -> Result<Rendered> {
        let mut params: Vec<(Value, ColType)> = Vec::new();
        let sql = self.render_with(column, &mut |_, v, ty| {
            params.push((v.clone(), ty));
            Ok(ph.text(first + params.len() - 1))
        })?;
        Ok(Rendered { sql, params })
    }

    /// `CASE WHEN <condition> THEN 1 ELSE 0 END`: 1 for a row in scope, 0
    /// for one outside it (NULL, unknown, counts as outside), for a pull's
    /// select list.
    pub fn render_flag(
        &self,
        ph: Placeholder,
        column: &dyn Fn(&str) -> String,
        first: usize,
    ) -> Result<Rendered> {
        let mut r = self.render(ph, column, first)?;
        r.sql = flag(&r.sql);
        Ok(r)
    }

    /// The condition as SQL, for a backend that allocates its own
    /// parameters: `bind` is called once per value, in the order the
    /// values appear in the text, with the (central) column it is compared
    /// with and the value typed as that column, and
    /// returns the placeholder expression to put in its place (e.g.
    /// PostgreSQL's `$4::text` with a cast to the column's type).
    pub fn render_with(
        &self,
        column: &dyn Fn(&str) -> String,
        bind: &mut dyn FnMut(&str, &Value, ColType) -> Result<String>,
    ) -> Result<String> {
        self.render_expr(&self.expr, column, bind)
    }

    fn render_expr(
        &self,
        e: &Expr,
        column: &dyn Fn(&str) -> String,
        bind: &mut dyn FnMut(&str, &Value, ColType) -> Result<String>,
    ) -> Result<String> {
        let value =
            |col: &Col,
             o: &Operand,
             bind: &mut dyn FnMut(&str, &Value, ColType) -> Result<String>| {
                let v = typed(self.operand(o), col.ty).map_err(|e| {
                    Error::new(
                        crate::error::ErrorKind::Config,
                        format!("filter column {}: {e}", col.name),
                    )
                })?;
                bind(&col.name, &v, col.ty)
            };
        Ok(match e {
            Expr::Or(parts) | Expr::And(parts) => {
                let op = if matches!(e, Expr::Or(_)) {
                    " OR "
                } else {
                    " AND "
                };
                let mut sqls = Vec::with_capacity(parts.len());
                for p in parts {
                    sqls.push(self.render_expr(p, column, bind)?);
                }
                format!("({})", sqls.join(op))
            }
            Expr::Not(inner) => format!("(NOT {})", self.render_expr(inner, column, bind)?),
            Expr::Eq(col, o, positive) => {
                let op = if *positive { "=" } else { "<>" };
                format!("{} {op} {}", column(&col.name), value(col, o, bind)?)
            }
            Expr::In(col, list, positive) => {
                let mut phs = Vec::with_capacity(list.len());
                for o in list {
                    phs.push(value(col, o, bind)?);
                }
                let not = if *positive { "" } else { "NOT " };
                format!("{} {not}IN ({})", column(&col.name), phs.join(", "))
            }
            Expr::IsNull(col, positive) => {
                let not = if *positive { "" } else { "NOT " };
                format!("{} IS {not}NULL", column(&col.name))
            }
        })
    }

    /// Why a pushed change must be refused as outside this scope, if it
    /// must: its new values are outside it, or the central row it would
    /// change (`central`, as the push loop locked it) is. A tombstone
    /// carries no values and is judged by the central row alone.
    pub fn refuses(&self, change: &Change, central: Option<&CentralRow>) -> Option<&'static str> {
        if change.values.as_deref().is_some_and(|v| !self.selects(v)) {
            return Some("the pushed row is outside the node's filter");
        }
        if central
            .and_then(|c| c.values.as_deref())
            .is_some_and(|v| !self.selects(v))
        {
            return Some("the central row it would change is outside the node's filter");
        }
        None
    }

    /// The answer to a change [`Scope::refuses`]: the central row when the
    /// node may hold it (or its tombstone), else a [`Change::moved_out`] so
    /// the edge drops its copy.
    pub fn refused_outcome(&self, key: &[Value], central: Option<&CentralRow>) -> PushOutcome {
        let row = match central {
            Some(c) if c.values.as_deref().is_none_or(|v| self.selects(v)) => {
                c.to_change(key.to_vec())
            }
            Some(c) => Change::moved_out(key.to_vec(), c.version, c.hlc),
            None => Change::moved_out(key.to_vec(), 0, 0),
        };
        PushOutcome::Superseded { row: Some(row) }
    }

    /// Never hand a node a row outside its scope in a push answer (a
    /// replayed push answered from the current central row): such a row
    /// becomes a [`Change::moved_out`].
    pub fn restrict(&self, outcome: &mut PushOutcome) {
        if let PushOutcome::Superseded { row: Some(r) } = outcome {
            if r.values.as_deref().is_some_and(|v| !self.selects(v)) {
                *r = Change::moved_out(r.key.clone(), r.version, r.hlc);
            }
        }
    }

    /// [`Scope::restrict`] every outcome of a push.
    pub fn restrict_all(&self, result: &mut crate::change::PushResult) {
        for o in &mut result.outcomes {
            self.restrict(o);
        }
    }

    fn operand<'b>(&'b self, o: &'b Operand) -> &'b str {
        match o {
            Operand::Text(t) => t,
            Operand::Param(p) => self.values.get(p).map(String::as_str).unwrap_or(""),
        }
    }

    fn eval(&self, e: &Expr, row: &[Value]) -> Option<bool> {
        match e {
            Expr::Or(parts) => {
                let mut unknown = false;
                for p in parts {
                    match self.eval(p, row) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                (!unknown).then_some(false)
            }
            Expr::And(parts) => {
                let mut unknown = false;
                for p in parts {
                    match self.eval(p, row) {
                        Some(false) => return Some(false),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                (!unknown).then_some(true)
            }
            Expr::Not(inner) => self.eval(inner, row).map(|b| !b),
            Expr::Eq(col, o, positive) => {
                equals(row.get(col.index)?, self.operand(o)).map(|b| b == *positive)
            }
            Expr::In(col, list, positive) => {
                let v = row.get(col.index)?;
                let mut unknown = false;
                for o in list {
                    match equals(v, self.operand(o)) {
                        Some(true) => return Some(*positive),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                (!unknown).then_some(!*positive)
            }
            Expr::IsNull(col, positive) => Some(row.get(col.index)?.is_null() == *positive),
        }
    }
}

/// A filter's text operand as a value of its column's type, to bind.
fn typed(text: &str, ty: ColType) -> std::result::Result<Value, String> {
    let t = text.trim();
    let bad = |what: &str| format!("{text:?} is not {what}");
    Ok(match ty {
        ColType::Text { .. } => Value::Text(text.to_string()),
        ColType::Json => Value::Json(text.to_string()),
        ColType::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" => Value::Bool(true),
            "false" | "f" | "0" | "no" => Value::Bool(false),
            _ => return Err(bad("a boolean")),
        },
        ColType::Int => match t.parse::<i64>() {
            Ok(i) => Value::Int(i),
            // `-1.0` is an integer too.
            Err(_) => canonical_decimal(t)
                .ok()
                .and_then(|d| d.parse::<i64>().ok().or_else(|| whole(&d)))
                .map(Value::Int)
                .ok_or_else(|| bad("an integer"))?,
        },
        ColType::Float => Value::Float(t.parse::<f64>().map_err(|_| bad("a number"))?),
        ColType::Decimal { .. } => {
            Value::Decimal(canonical_decimal(t).map_err(|_| bad("a decimal number"))?)
        }
        ColType::Uuid => Value::Uuid(uuid::Uuid::parse_str(t).map_err(|_| bad("a UUID"))?),
        ColType::Date => Value::Date(
            chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| bad("a date"))?,
        ),
        ColType::Time => Value::Time(parse_time(t).ok_or_else(|| bad("a time of day"))?),
        ColType::Timestamp => {
            Value::Timestamp(parse_timestamp(t).ok_or_else(|| bad("a timestamp"))?)
        }
        ColType::TimestampTz => {
            Value::TimestampTz(parse_timestamptz(t).ok_or_else(|| bad("a timestamp"))?)
        }
        ColType::Bytes => return Err("filters on byte columns are not supported".into()),
    })
}

/// `CASE WHEN <condition> THEN 1 ELSE 0 END`.
pub fn flag(condition: &str) -> String {
    format!("CASE WHEN {condition} THEN 1 ELSE 0 END")
}

/// `12.000` as 12; `None` for a fraction.
fn whole(d: &str) -> Option<i64> {
    let (int, frac) = d.split_once('.')?;
    frac.bytes().all(|b| b == b'0').then(|| int.parse().ok())?
}

/// Does a column value equal a filter's text operand? `None` for NULL.
fn equals(v: &Value, text: &str) -> Option<bool> {
    let t = text.trim();
    Some(match v {
        Value::Null => return None,
        Value::Text(s) | Value::Json(s) => s == text,
        Value::Int(_) | Value::Decimal(_) => {
            canonical_decimal(t).is_ok_and(|d| v.same_as(&Value::Decimal(d)))
        }
        Value::Float(f) => t.parse::<f64>().is_ok_and(|x| x == *f),
        Value::Bool(b) => match t.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" => *b,
            "false" | "f" | "0" | "no" => !*b,
            _ => false,
        },
        Value::Uuid(u) => uuid::Uuid::parse_str(t).is_ok_and(|x| x == *u),
        other => typed(text, ty_of(other)).is_ok_and(|x| x.same_as(other)),
    })
}

/// The column type a (non-NULL) value of these kinds belongs to.
fn ty_of(v: &Value) -> ColType {
    match v {
        Value::Date(_) => ColType::Date,
        Value::Time(_) => ColType::Time,
        Value::Timestamp(_) => ColType::Timestamp,
        Value::TimestampTz(_) => ColType::TimestampTz,
        Value::Bytes(_) => ColType::Bytes,
        _ => ColType::Text { max_len: None },
    }
}

#[cfg(test)]
mod tests;
