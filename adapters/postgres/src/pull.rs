//! Commit-safe, resumable pulls.
//!
//! Versions come from a sequence, so they are taken in one order and
//! committed in another: a "highest version seen" watermark would skip a
//! transaction that took its version early and committed late. Instead every
//! write records its transaction id (`es_txid`), and a pass remembers the
//! snapshot (`txid_current_snapshot()`) of its first page. The next pass
//! selects exactly what that snapshot did not see — rows whose `es_txid` is
//! not visible in it — whenever those transactions committed.
//!
//! A pass pages through the rows in key order (a key cursor, so an
//! interrupted initial load resumes where it stopped), then through the
//! tombstones. Each page runs in its own `REPEATABLE READ READ ONLY`
//! transaction; a later page may also deliver changes newer than the pass's
//! target snapshot, which the next pass repeats (the edge skips versions it
//! already has).

use edgesync_core::filter::Scope;
use edgesync_core::{Change, ColType, Error, ErrorKind, PullPage, Result, TableMapping, Value};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::error::ctx;
use crate::sql::{self, ident};
use crate::types::{self, Params};

/// The pull token: where a pass stands. Opaque to the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Token {
    /// Snapshot (text) of the previous pass's first page; `None` = initial
    /// load (everything).
    wm: Option<String>,
    /// Snapshot of this pass's first page, the next `wm`; `None` before the
    /// first page.
    target: Option<String>,
    /// Rows first, then tombstones.
    phase: Phase,
    /// Key cursor (key text values) of the last change delivered in `phase`.
    after: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Rows,
    Tombs,
}

impl Token {
    fn parse(token: Option<&str>, table: &TableMapping) -> Result<Token> {
        match token {
            None => Ok(Token {
                wm: None,
                target: None,
                phase: Phase::Rows,
                after: None,
            }),
            Some(t) => serde_json::from_str(t).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "the stored pull token of {} is not a PostgreSQL pull token ({e}); \
                         was the central database changed? re-run init-sync on the edge",
                        table.central
                    ),
                )
            }),
        }
    }

    fn encode(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| Error::internal(format!("cannot encode a pull token: {e}")))
    }
}

/// `pull` for the trait.
pub async fn pull(
    pool: &PgPool,
    node: &str,
    table: &TableMapping,
    scope: Option<&Scope>,
    token: Option<&str>,
    limit: usize,
) -> Result<PullPage> {
    let tok = Token::parse(token, table)?;
    let doing = format!("pulling from {}", table.central);
    // sync.retention: a position the purge has passed is refused (a full
    // pass, without `wm`, never is); where the node stands is recorded.
    crate::retention::admit(pool, node, table, tok.wm.as_deref())
        .await
        .map_err(|e| e.context(&doing))?;
    // A full pass builds the edge's table: it includes the node's own rows
    // (the edge skips the versions it already has).
    let node = if tok.wm.is_none() { "" } else { node };
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(ctx(&doing))?;
    let page = read_page(&mut tx, node, table, scope, tok, limit.max(1))
        .await
        .map_err(|e| e.context(&doing))?;
    tx.commit().await.map_err(ctx(&doing))?;
    Ok(page)
}

async fn read_page(
    conn: &mut PgConnection,
    node: &str,
    table: &TableMapping,
    scope: Option<&Scope>,
    tok: Token,
    limit: usize,
) -> Result<PullPage> {
    // First statement of the transaction: this is the page's snapshot.
    let snapshot: String = sqlx::query_scalar("SELECT txid_current_snapshot()::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(ctx("taking the snapshot"))?;
    let natives = crate::schema::natives(conn, table).await?;
    let target = tok.target.clone().unwrap_or(snapshot);
    let page = Page {
        table,
        natives: &natives,
        node,
        wm: tok.wm.as_deref(),
        scope,
    };
    let mut changes = Vec::new();
    let mut phase = tok.phase;
    let mut after = tok.after.clone();
    if phase == Phase::Rows {
        let (rows, last) = page.rows(conn, after.as_deref(), limit).await?;
        let full = rows.len() == limit;
        changes = rows;
        if full {
            return page.more(changes, target, Phase::Rows, last);
        }
        phase = Phase::Tombs;
        after = None;
    }
    let remaining = limit - changes.len();
    let (tombs, last) = page.tombs(conn, after.as_deref(), remaining).await?;
    let full = tombs.len() == remaining;
    changes.extend(tombs);
    if full {
        return page.more(changes, target, phase, last);
    }
    let token = Token {
        wm: Some(target),
        target: None,
        phase: Phase::Rows,
        after: None,
    };
    Ok(PullPage {
        changes,
        token: token.encode()?,
        done: true,
        fingerprint: None,
    })
}

/// One page's fixed inputs.
struct Page<'a> {
    table: &'a TableMapping,
    natives: &'a [String],
    node: &'a str,
    wm: Option<&'a str>,
    /// The node's row filter, if the table has one.
    scope: Option<&'a Scope>,
}

impl Page<'_> {
    fn more(
        &self,
        changes: Vec<Change>,
        target: String,
        phase: Phase,
        after: Option<Vec<String>>,
    ) -> Result<PullPage> {
        let token = Token {
            wm: self.wm.map(str::to_string),
            target: Some(target),
            phase,
            after,
        };
        Ok(PullPage {
            changes,
            token: token.encode()?,
            done: false,
            fingerprint: None,
        })
    }

    /// `es_txid` not visible in the previous pass's snapshot, and not this
    /// node's own write.
    fn filter(&self, p: &mut Params, alias: &str) -> String {
        let node = p.text(self.node);
        let mut f = format!("{alias}.es_origin IS DISTINCT FROM {node}");
        if let Some(wm) = self.wm {
            let wm = p.text(wm);
            f.push_str(&format!(
                " AND {alias}.es_txid >= txid_snapshot_xmin({wm}::txid_snapshot) \
                 AND NOT txid_visible_in_snapshot({alias}.es_txid, {wm}::txid_snapshot)"
            ));
        }
        f
    }

    /// The next rows in key order after `after`; with the last row's cursor.
    async fn rows(
        &self,
        conn: &mut PgConnection,
        after: Option<&[String]>,
        limit: usize,
    ) -> Result<(Vec<Change>, Option<Vec<String>>)> {
        let t = self.table;
        let mut p = Params::default();
        let mut filter = self.filter(&mut p, "t");
        if let Some(after) = after {
            if after.len() != t.key.len() {
                return Err(Error::new(
                    ErrorKind::Config,
                    "the pull cursor does not match the table's key; was the key changed?",
                ));
            }
            let bound: Vec<String> = t
                .key
                .iter()
                .zip(after)
                .map(|(&i, v)| {
                    sql::key_value(&p.text(v.as_str()), t.columns[i].ty, &self.natives[i])
                })
                .collect();
            filter.push_str(&format!(
                " AND ({}) > ({})",
                sql::key_columns(t, Some("t")).join(", "),
                bound.join(", ")
            ));
        }
        let cursor: Vec<String> = t
            .key
            .iter()
            .map(|&i| {
                let c = &t.columns[i];
                sql::key_text(&format!("t.{}", ident(&c.central)), c.ty, &self.natives[i])
            })
            .collect();
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| sql::read_expr(&format!("t.{}", ident(&c.central)), c.ty))
            .collect();
        // With a row filter, the initial load reads only the node's rows;
        // a later pass reads every changed row with a flag saying whether
        // it is in the node's scope, and one that is not travels as a
        // move-out (its key only).
        let mut in_scope = "1".to_string();
        if let Some(scope) = self.scope {
            let cond = scope.render_with(&|c| format!("t.{}", ident(c)), &mut |_, v, ty| {
                Ok(scope_value(&mut p, v, ty))
            })?;
            match self.wm {
                None => filter.push_str(&format!(" AND {cond}")),
                Some(_) => in_scope = edgesync_core::filter::flag(&cond),
            }
        }
        let lim = p.int(i64::try_from(limit).unwrap_or(i64::MAX));
        let query = format!(
            "SELECT {cursor}, {cols}, t.es_ver, t.es_deleted, t.es_hlc, {in_scope} FROM {table} AS t
              WHERE {filter} ORDER BY {order} LIMIT {lim}",
            cursor = cursor.join(", "),
            cols = cols.join(", "),
            table = sql::table_ref(&t.central),
            order = sql::key_columns(t, Some("t")).join(", "),
        );
        let nk = t.key.len();
        let n = t.columns.len();
        // What each column is called in messages, built once per page.
        let what: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("{}.{}", t.central, c.central))
            .collect();
        // Rows are decoded as they arrive, while the server is still
        // sending the rest of the page; the last one is kept for the cursor.
        let mut last_row: Option<PgRow> = None;
        let decoded = p
            .query(query)
            .try_map(|r: PgRow| {
                let change = (|| {
                    let mut values = Vec::with_capacity(n);
                    for (k, c) in t.columns.iter().enumerate() {
                        values.push(decode(&r, nk + k, c.ty, &what[k])?);
                    }
                    if get::<i32>(&r, nk + n + 3)? == 0 {
                        return Ok::<_, Error>(Change::moved_out(
                            t.key_of(&values),
                            get(&r, nk + n)?,
                            get(&r, nk + n + 2)?,
                        ));
                    }
                    Ok::<_, Error>(Change {
                        key: t.key_of(&values),
                        values: Some(values),
                        version: get(&r, nk + n)?,
                        deleted: get(&r, nk + n + 1)?,
                        base: None,
                        hlc: get(&r, nk + n + 2)?,
                    })
                })()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                last_row = Some(r);
                Ok(change)
            })
            .fetch_all(&mut *conn)
            .await;
        let out = match decoded {
            Ok(out) => out,
            // A value of ours that did not convert: its own error.
            Err(sqlx::Error::Decode(e)) if e.is::<Error>() => {
                return Err(*e
                    .downcast::<Error>()
                    .map_err(|_| Error::internal("a decode error changed type"))?)
            }
            Err(e) => return Err(ctx("reading changed rows")(e)),
        };
        // The cursor: the last row's key text.
        let last = match &last_row {
            Some(r) => Some(
                (0..nk)
                    .map(|j| get(r, j))
                    .collect::<Result<Vec<String>>>()?,
            ),
            None => None,
        };
        Ok((out, last))
    }

    /// The next tombstones in key order after `after`.
    async fn tombs(
        &self,
        conn: &mut PgConnection,
        after: Option<&[String]>,
        limit: usize,
    ) -> Result<(Vec<Change>, Option<Vec<String>>)> {
        let t = self.table;
        let mut p = Params::default();
        let tbl = p.text(sql::tbl_id(&t.central));
        let mut filter = format!("ts.tbl = {tbl} AND {}", self.filter(&mut p, "ts"));
        if let Some(after) = after {
            let json = serde_json::to_string(after)
                .map_err(|e| Error::internal(format!("cannot encode a cursor: {e}")))?;
            filter.push_str(&format!(" AND ts.key > {}::jsonb", p.text(json)));
        }
        let keys: Vec<String> = t
            .key
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                let c = &t.columns[i];
                let v = sql::key_value(&format!("ts.key->>{j}"), c.ty, &self.natives[i]);
                sql::read_expr(&v, c.ty)
            })
            .collect();
        let lim = p.int(i64::try_from(limit).unwrap_or(i64::MAX));
        let query = format!(
            "SELECT ts.key::text, {keys}, ts.es_ver, ts.es_hlc FROM {tombs} AS ts
              WHERE {filter} ORDER BY ts.key LIMIT {lim}",
            keys = keys.join(", "),
            tombs = sql::meta(&t.central, "es_tombstones"),
        );
        let rows = p
            .query(query)
            .fetch_all(&mut *conn)
            .await
            .map_err(ctx("reading tombstones"))?;
        let nk = t.key.len();
        let what: Vec<String> = t
            .key
            .iter()
            .map(|&i| format!("{} tombstone key {}", t.central, t.columns[i].central))
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        let mut last = None;
        for r in &rows {
            let mut key = Vec::with_capacity(nk);
            for (j, &i) in t.key.iter().enumerate() {
                key.push(types::decode(r, 1 + j, t.columns[i].ty, &what[j])?);
            }
            out.push(Change {
                key,
                values: None,
                deleted: true,
                version: get(r, 1 + nk)?,
                base: None,
                hlc: get(r, 2 + nk)?,
            });
            let text: String = get(r, 0)?;
            last = Some(serde_json::from_str(&text).map_err(|e| {
                Error::value(format!(
                    "tombstone key {text} is not a JSON array of text: {e}"
                ))
            })?);
        }
        Ok((out, last))
    }
}

/// [`types::decode`], except that a decimal PostgreSQL already sends in
/// canonical form (the usual case: `numeric::text` has no exponent, no `+`
/// and no redundant zeros) is taken as is instead of being rebuilt.
fn decode(r: &PgRow, idx: usize, ty: ColType, what: &str) -> Result<Value> {
    if let ColType::Decimal { .. } = ty {
        if let Ok(Some(s)) = r.try_get::<Option<String>, _>(idx) {
            if is_canonical_decimal(&s) {
                return Ok(Value::Decimal(s));
            }
        }
    }
    types::decode(r, idx, ty, what)
}

/// Is `s` exactly what `canonical_decimal` makes of it: an optional `-`
/// (not on a zero), an integer part without redundant leading zeros, and
/// an optional non-empty fraction?
fn is_canonical_decimal(s: &str) -> bool {
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

/// A filter value as a parameter comparable with its column: integers as
/// `bigint`, everything else as its text cast to the column's kind of type.
fn scope_value(p: &mut Params, v: &Value, ty: ColType) -> String {
    if let Value::Int(i) = v {
        return p.int(*i);
    }
    let text = p.text(v.display());
    match ty {
        ColType::Text { .. } => text,
        ColType::Bool => format!("({text})::boolean"),
        ColType::Int => format!("({text})::bigint"),
        ColType::Float => format!("({text})::double precision"),
        ColType::Decimal { .. } => format!("({text})::numeric"),
        ColType::Bytes => format!("decode({text}, 'hex')"),
        ColType::Date => format!("({text})::date"),
        ColType::Time => format!("({text})::time"),
        ColType::Timestamp => format!("({text})::timestamp"),
        ColType::TimestampTz => format!("({text})::timestamptz"),
        ColType::Uuid => format!("({text})::uuid"),
        ColType::Json => format!("({text})::jsonb"),
    }
}

fn get<'r, T>(r: &'r PgRow, i: usize) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    r.try_get(i).map_err(ctx("reading a changed row"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_decimals_are_recognised_exactly() {
        for s in [
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
            "1234567890123456789012345678.9012345678",
            "-0",
            "1.2.3",
            "",
            "-",
            "1a",
            " 1",
            "1 ",
            "100",
            "10.0",
        ] {
            let canonical = edgesync_core::value::canonical_decimal(s).ok();
            if is_canonical_decimal(s) {
                assert_eq!(canonical.as_deref(), Some(s), "{s:?} taken as canonical");
            } else if s
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
                && canonical.as_deref() == Some(s)
            {
                panic!("{s:?} is canonical but not recognised");
            }
        }
    }

    #[test]
    fn tokens_round_trip() {
        let t = Token {
            wm: Some("10:12:11".into()),
            target: None,
            phase: Phase::Tombs,
            after: Some(vec!["1.10".into()]),
        };
        let s = t.encode().expect("encode");
        assert!(s.contains("\"phase\":\"tombs\""), "{s}");
        assert_eq!(serde_json::from_str::<Token>(&s).expect("decode"), t);
    }
}
