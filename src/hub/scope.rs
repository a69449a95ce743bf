//! Row filters, evaluated by the hub: what a node may see and write.
//!
//! A `[[table]] filter` on the hub is a condition on the central table's
//! columns whose `:name` parameters bind the values a node's credential
//! carries (`token create --tenant T --param k=v`; `:tenant` is the tenant).
//! The hub evaluates it on every row it hands out and every row a node
//! pushes (the pushed values and the central row they replace), so a node
//! neither reads nor overwrites rows outside its scope, whatever backend is
//! behind the hub.
//!
//! The hub understands this subset of SQL, and refuses to start on anything
//! else rather than guess:
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

use edgesync_core::{TableMapping, Value};

/// A literal or parameter in a filter.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Param(String),
    Text(String),
}

/// A parsed filter over a mapping's columns (by index).
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Eq(usize, Operand, bool),
    In(usize, Vec<Operand>, bool),
    IsNull(usize, bool),
}

/// A table filter, parsed against the hub's mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
    params: Vec<String>,
}

/// A filter with a node's parameter values bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound<'a> {
    filter: &'a Filter,
    values: BTreeMap<String, String>,
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
            other => return Err(format!("unexpected {other:?}")),
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

    fn column(&mut self) -> Result<usize, String> {
        let name = match self.toks.get(self.pos) {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => w.clone(),
            _ => return Err("expected a column name".into()),
        };
        self.pos += 1;
        self.m
            .columns
            .iter()
            .position(|c| c.central.eq_ignore_ascii_case(&name))
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
    /// Parse `text` against the hub's mapping of its table.
    pub fn parse(text: &str, m: &TableMapping) -> Result<Filter, String> {
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

    /// Bind a node's values (`tenant` binds `:tenant` unless a param of that
    /// name is given); the first parameter left unbound is an error.
    pub fn bind(
        &self,
        tenant: Option<&str>,
        params: &BTreeMap<String, String>,
    ) -> Result<Bound<'_>, String> {
        let mut values = BTreeMap::new();
        for p in &self.params {
            let v = params
                .get(p)
                .map(String::as_str)
                .or_else(|| (p == "tenant").then_some(tenant).flatten())
                .ok_or_else(|| format!(":{p} has no value for this node"))?;
            values.insert(p.clone(), v.to_string());
        }
        Ok(Bound {
            filter: self,
            values,
        })
    }
}

impl Bound<'_> {
    /// Is the row (values in mapping order) in scope?
    pub fn selects(&self, row: &[Value]) -> bool {
        self.eval(&self.filter.expr, row) == Some(true)
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
                equals(row.get(*col)?, self.operand(o)).map(|b| b == *positive)
            }
            Expr::In(col, list, positive) => {
                let v = row.get(*col)?;
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
            Expr::IsNull(col, positive) => Some(row.get(*col)?.is_null() == *positive),
        }
    }
}

/// Does a column value equal a filter's text operand? `None` for NULL.
fn equals(v: &Value, text: &str) -> Option<bool> {
    let t = text.trim();
    Some(match v {
        Value::Null => return None,
        Value::Text(s) | Value::Json(s) => s == text,
        Value::Int(_) | Value::Decimal(_) => {
            edgesync_core::value::canonical_decimal(t).is_ok_and(|d| v.same_as(&Value::Decimal(d)))
        }
        Value::Float(f) => t.parse::<f64>().is_ok_and(|x| x == *f),
        Value::Bool(b) => match t.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" => *b,
            "false" | "f" | "0" | "no" => !*b,
            _ => false,
        },
        Value::Uuid(u) => uuid::Uuid::parse_str(t).is_ok_and(|x| x == *u),
        other => other.display() == text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgesync_core::{ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, QualifiedName};

    fn mapping() -> TableMapping {
        let col = |name: &str, ty| ColumnMap {
            edge: name.into(),
            central: name.into(),
            ty,
            edge_ty: ty,
            nullable: true,
        };
        TableMapping {
            edge: "t".into(),
            central: QualifiedName::parse("t"),
            columns: vec![
                col("id", ColType::Int),
                col("tenant", ColType::Text { max_len: None }),
                col("region", ColType::Text { max_len: None }),
                col("qty", ColType::Int),
            ],
            key: vec![0],
            direction: Direction::Both,
            conflict: ConflictPolicy::ServerWins,
            deletes: DeleteMode::Soft,
        }
    }

    fn row(tenant: Option<&str>, region: &str, qty: i64) -> Vec<Value> {
        vec![
            Value::Int(1),
            tenant.map_or(Value::Null, |t| Value::Text(t.into())),
            Value::Text(region.into()),
            Value::Int(qty),
        ]
    }

    #[test]
    fn filters_bind_the_nodes_values() {
        let m = mapping();
        let f = Filter::parse(
            "tenant = :tenant AND (region IN (:region, 'all') OR qty <> 0)",
            &m,
        )
        .expect("parse");
        let params = BTreeMap::from([("region".to_string(), "north".to_string())]);
        let b = f.bind(Some("acme"), &params).expect("bind");
        assert!(b.selects(&row(Some("acme"), "north", 0)));
        assert!(b.selects(&row(Some("acme"), "all", 0)));
        assert!(b.selects(&row(Some("acme"), "south", 5)));
        assert!(!b.selects(&row(Some("acme"), "south", 0)));
        assert!(!b.selects(&row(Some("other"), "north", 0)));
        assert!(!b.selects(&row(None, "north", 0)), "NULL is never in scope");
        assert!(f.bind(None, &params).is_err(), ":tenant unbound");
        let f = Filter::parse("NOT tenant IS NULL AND qty != -1.0", &m).expect("parse");
        let b = f.bind(None, &BTreeMap::new()).expect("bind");
        assert!(b.selects(&row(Some("x"), "", 3)));
        assert!(!b.selects(&row(Some("x"), "", -1)));
        assert!(!b.selects(&row(None, "", 3)));
        let f = Filter::parse("region NOT IN ('a', 'b')", &m).expect("parse");
        let b = f.bind(None, &BTreeMap::new()).expect("bind");
        assert!(b.selects(&row(None, "c", 0)));
        assert!(!b.selects(&row(None, "a", 0)));
    }

    #[test]
    fn unsupported_filters_are_refused() {
        let m = mapping();
        for bad in [
            "",
            "qty > 1",
            "nope = 1",
            "tenant = :tenant OR",
            "tenant = lower(:tenant)",
            "tenant = 'x",
            "region IN ()",
            "tenant = :tenant; DROP TABLE t",
        ] {
            assert!(Filter::parse(bad, &m).is_err(), "{bad:?} accepted");
        }
        assert!(Filter::parse("\"Region\" = 'it''s'", &m).is_ok());
    }
}
