//! Commit-safe, resumable pulls.
//!
//! Versions are rowversions: SQL Server hands them out from one
//! database-wide counter as rows are written, so they are taken in one order
//! and committed in another, and "highest version seen" alone would skip a
//! transaction that took its version early and committed late. SQL Server
//! says how far is safe: `MIN_ACTIVE_ROWVERSION()` is the smallest
//! rowversion still held by an open transaction (or the next one to be handed
//! out). Every row below it is committed (or rolled back) for good, and
//! every later write gets a version at or above it.
//!
//! So a pass reads that bound once, on its first page (its *target*), and
//! selects every row and tombstone whose version is at or above the previous
//! pass's target (its *watermark*). When the pass ends, the target becomes
//! the next watermark. A transaction that is open when a pass starts holds a
//! version at or above that pass's target, so the next pass selects it,
//! however late it commits — no gap timeout, no wall clock.
//!
//! A pass pages through the rows in key order (a key cursor, so an
//! interrupted initial load resumes where it stopped), then through the
//! tombstones. A later page may also deliver changes newer than the target,
//! which the next pass repeats (the edge skips versions it already has).

use edgesync_core::filter::Scope;
use edgesync_core::{Change, Error, ErrorKind, PullPage, Result, TableMapping, Value};
use serde::{Deserialize, Serialize};

use crate::connection::{Conn, Pool};
use crate::sql::{self, ident};
use crate::types::{self, get_bool, get_int, get_text, need_int, Param};

/// The pull token: where a pass stands. Opaque to the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Token {
    /// Marks a SQL Server token.
    mssql: u8,
    /// The previous pass's target; `None` = initial load (everything).
    wm: Option<i64>,
    /// `MIN_ACTIVE_ROWVERSION()` at this pass's first page, the next `wm`.
    target: Option<i64>,
    /// Rows first, then tombstones.
    phase: Phase,
    /// Key of the last row delivered (rows phase).
    after_key: Option<Vec<Value>>,
    /// Key text of the last tombstone delivered (tombstones phase).
    after_tomb: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Rows,
    Tombs,
}

impl Token {
    fn start(wm: Option<i64>) -> Token {
        Token {
            mssql: 1,
            wm,
            target: None,
            phase: Phase::Rows,
            after_key: None,
            after_tomb: None,
        }
    }

    fn parse(token: Option<&str>, table: &TableMapping) -> Result<Token> {
        let Some(t) = token else {
            return Ok(Token::start(None));
        };
        let bad = || {
            Error::new(
                ErrorKind::Config,
                format!(
                    "the stored pull token of {} is not a SQL Server pull token; \
                     was the central database changed? re-run init-sync on the edge",
                    table.central
                ),
            )
        };
        let tok: Token = serde_json::from_str(t).map_err(|_| bad())?;
        if tok.mssql != 1
            || tok
                .after_key
                .as_ref()
                .is_some_and(|k| k.len() != table.key.len())
        {
            return Err(bad());
        }
        Ok(tok)
    }

    fn encode(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| Error::internal(format!("cannot encode a pull token: {e}")))
    }
}

/// The rows query: `@P1` = limit, `@P2` = node, then the watermark (if
/// `with_wm`), then the key cursor (if `with_after`).
pub fn rows_sql(table: &TableMapping, with_wm: bool, with_after: bool) -> String {
    rows_sql_scoped(table, with_wm, with_after, None)
}

/// The number of parameters [`rows_sql`] binds: a row filter's are
/// numbered after them.
pub fn rows_params(table: &TableMapping, with_wm: bool, with_after: bool) -> usize {
    2 + usize::from(with_wm) + if with_after { table.key.len() } else { 0 }
}

/// A node's row filter over the rows query's alias `t`, its values bound as
/// `@P<n>` after the query's own parameters.
pub fn scope_condition(
    table: &TableMapping,
    scope: &Scope,
    with_wm: bool,
    with_after: bool,
) -> Result<edgesync_core::filter::Rendered> {
    let first = rows_params(table, with_wm, with_after) + 1;
    let mut params = Vec::new();
    let sql = scope.render_with(&|c| format!("t.{}", ident(c)), &mut |_, v, ty| {
        params.push((v.clone(), ty));
        Ok(sql::bind_expr(
            &format!("@P{}", first + params.len() - 1),
            ty,
        ))
    })?;
    Ok(edgesync_core::filter::Rendered { sql, params })
}

/// [`rows_sql`] for a node with a row filter (`scope`: its condition from
/// [`scope_condition`]). On the initial load (`with_wm` false) only rows
/// in scope are read; afterwards every changed row is read with a last
/// column, 1 when it is in scope and 0 when it is not (a move-out).
pub fn rows_sql_scoped(
    table: &TableMapping,
    with_wm: bool,
    with_after: bool,
    scope: Option<&str>,
) -> String {
    let mut filter = "(t.es_origin IS NULL OR t.es_origin <> @P2)".to_string();
    let mut next = 3;
    if with_wm {
        filter.push_str(&format!(
            " AND t.es_ver >= {}",
            sql::rowversion(&format!("@P{next}"))
        ));
        next += 1;
    }
    let keys = sql::key_columns(table, Some("t"));
    if with_after {
        let params: Vec<String> = table
            .key
            .iter()
            .enumerate()
            .map(|(j, &i)| sql::bind_expr(&format!("@P{}", next + j), table.columns[i].ty))
            .collect();
        filter.push_str(&format!(" AND {}", sql::after_key(&keys, &params)));
    }
    let mut cols: Vec<String> = table
        .columns
        .iter()
        .map(|c| sql::read_expr(&format!("t.{}", ident(&c.central)), c.ty))
        .collect();
    let mut stamps = "CAST(t.es_ver AS bigint), t.es_deleted, t.es_hlc".to_string();
    match (scope, with_wm) {
        (Some(cond), false) => filter.push_str(&format!(" AND {cond}")),
        (Some(cond), true) => stamps.push_str(&format!(", {}", edgesync_core::filter::flag(cond))),
        (None, _) => {}
    }
    cols.push(stamps);
    format!(
        "SELECT TOP (@P1) {cols}
  FROM {table} AS t
 WHERE {filter}
 ORDER BY {order}",
        cols = cols.join(", "),
        table = sql::table_ref(&table.central),
        order = keys.join(", "),
    )
}

/// The tombstones query: `@P1` = limit, `@P2` = table id, `@P3` = node,
/// then the watermark (if `with_wm`), then the key cursor (if `with_after`).
pub fn tombs_sql(table: &TableMapping, with_wm: bool, with_after: bool) -> String {
    let mut filter = "ts.tbl = @P2 AND (ts.es_origin IS NULL OR ts.es_origin <> @P3)".to_string();
    let mut next = 4;
    if with_wm {
        filter.push_str(&format!(
            " AND ts.es_ver >= {}",
            sql::rowversion(&format!("@P{next}"))
        ));
        next += 1;
    }
    if with_after {
        filter.push_str(&format!(" AND ts.k > @P{next}"));
    }
    format!(
        "SELECT TOP (@P1) ts.k, CAST(ts.es_ver AS bigint), ts.es_hlc
  FROM {tombs} AS ts
 WHERE {filter}
 ORDER BY ts.k",
        tombs = sql::meta(&table.central, "es_tombstones"),
    )
}

/// The commit-safe bound.
pub const BOUND_SQL: &str = "SELECT CAST(MIN_ACTIVE_ROWVERSION() AS bigint)";

/// `pull` for the trait.
pub async fn pull(
    pool: &Pool,
    node: &str,
    table: &TableMapping,
    scope: Option<&Scope>,
    token: Option<&str>,
    limit: usize,
) -> Result<PullPage> {
    let tok = Token::parse(token, table)?;
    let doing = format!("pulling from {}", table.central);
    let mut conn = pool.get().await?;
    read_page(&mut conn, node, table, scope, tok, limit.max(1))
        .await
        .map_err(|e| e.context(&doing))
}

async fn read_page(
    conn: &mut Conn,
    node: &str,
    table: &TableMapping,
    scope: Option<&Scope>,
    mut tok: Token,
    limit: usize,
) -> Result<PullPage> {
    let target = match tok.target {
        Some(t) => t,
        None => {
            let rows = conn
                .query(BOUND_SQL, &[], "reading MIN_ACTIVE_ROWVERSION()")
                .await?;
            need_int(
                rows.first()
                    .ok_or_else(|| Error::internal("MIN_ACTIVE_ROWVERSION() returned no row"))?,
                0,
            )?
        }
    };
    tok.target = Some(target);
    let mut changes = Vec::new();
    if tok.phase == Phase::Rows {
        let (rows, last) = read_rows(conn, node, table, scope, &tok, limit).await?;
        let full = rows.len() == limit;
        changes = rows;
        if full {
            tok.after_key = last;
            return more(changes, tok);
        }
        tok.phase = Phase::Tombs;
        tok.after_key = None;
    }
    let remaining = limit - changes.len();
    let (tombs, last) = read_tombs(conn, node, table, &tok, remaining).await?;
    let full = tombs.len() == remaining;
    changes.extend(tombs);
    if full {
        tok.after_tomb = last;
        return more(changes, tok);
    }
    Ok(PullPage {
        changes,
        token: Token::start(Some(target)).encode()?,
        done: true,
        fingerprint: None,
    })
}

fn more(changes: Vec<Change>, tok: Token) -> Result<PullPage> {
    Ok(PullPage {
        changes,
        token: tok.encode()?,
        done: false,
        fingerprint: None,
    })
}

fn limit_param(limit: usize) -> Param {
    Param::Int(Some(i64::try_from(limit).unwrap_or(i64::MAX)))
}

/// The next rows in key order after the cursor; with the last row's key.
async fn read_rows(
    conn: &mut Conn,
    node: &str,
    t: &TableMapping,
    scope: Option<&Scope>,
    tok: &Token,
    limit: usize,
) -> Result<(Vec<Change>, Option<Vec<Value>>)> {
    let mut params = vec![limit_param(limit), Param::Text(Some(node.to_string()))];
    if let Some(wm) = tok.wm {
        params.push(Param::Int(Some(wm)));
    }
    if let Some(after) = &tok.after_key {
        for (&i, v) in t.key.iter().zip(after) {
            params.push(types::param(t.columns[i].ty, v)?);
        }
    }
    let (with_wm, with_after) = (tok.wm.is_some(), tok.after_key.is_some());
    let cond = match scope {
        Some(s) => {
            let r = scope_condition(t, s, with_wm, with_after)?;
            for (v, ty) in &r.params {
                params.push(types::param(*ty, v)?);
            }
            Some(r.sql)
        }
        None => None,
    };
    let flagged = cond.is_some() && with_wm;
    let rows = conn
        .query(
            &match &cond {
                Some(c) => rows_sql_scoped(t, with_wm, with_after, Some(c)),
                None => rows_sql(t, with_wm, with_after),
            },
            &params,
            "reading changed rows (run init-sync?)",
        )
        .await?;
    let n = t.columns.len();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let cells: Vec<_> = r.cells().map(|(_, d)| d).collect();
        let mut values = Vec::with_capacity(n);
        for (k, c) in t.columns.iter().enumerate() {
            let what = format!("{}.{}", t.central, c.central);
            values.push(types::decode(cells[k], c.ty, &what)?);
        }
        if flagged && get_int(r, n + 3)? == Some(0) {
            out.push(Change::moved_out(
                t.key_of(&values),
                need_int(r, n)?,
                get_int(r, n + 2)?.unwrap_or(0),
            ));
            continue;
        }
        out.push(Change {
            key: t.key_of(&values),
            values: Some(values),
            version: need_int(r, n)?,
            deleted: get_bool(r, n + 1)?.unwrap_or(false),
            base: None,
            hlc: get_int(r, n + 2)?.unwrap_or(0),
        });
    }
    let last = out.last().map(|c| c.key.clone());
    Ok((out, last))
}

/// The next tombstones in key-text order after the cursor.
async fn read_tombs(
    conn: &mut Conn,
    node: &str,
    t: &TableMapping,
    tok: &Token,
    limit: usize,
) -> Result<(Vec<Change>, Option<String>)> {
    let mut params = vec![
        limit_param(limit),
        Param::Text(Some(sql::tbl_id(&t.central))),
        Param::Text(Some(node.to_string())),
    ];
    if let Some(wm) = tok.wm {
        params.push(Param::Int(Some(wm)));
    }
    if let Some(after) = &tok.after_tomb {
        params.push(Param::Text(Some(after.clone())));
    }
    let rows = conn
        .query(
            &tombs_sql(t, tok.wm.is_some(), tok.after_tomb.is_some()),
            &params,
            "reading tombstones",
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut last = None;
    for r in &rows {
        let k = get_text(r, 0)?.unwrap_or_default();
        out.push(Change {
            key: parse_tomb_key(t, &k)?,
            values: None,
            deleted: true,
            version: need_int(r, 1)?,
            base: None,
            hlc: get_int(r, 2)?.unwrap_or(0),
        });
        last = Some(k);
    }
    Ok((out, last))
}

/// A tombstone key (JSON array of key texts) back to key values.
pub(crate) fn parse_tomb_key(t: &TableMapping, k: &str) -> Result<Vec<Value>> {
    let texts: Vec<String> = serde_json::from_str(k).map_err(|e| {
        Error::value(format!(
            "{} tombstone key {k} is not a JSON array of text: {e}",
            t.central
        ))
    })?;
    if texts.len() != t.key.len() {
        return Err(Error::value(format!(
            "{} tombstone key {k} has {} values, the key has {}",
            t.central,
            texts.len(),
            t.key.len()
        )));
    }
    t.key
        .iter()
        .zip(&texts)
        .map(|(&i, text)| {
            types::parse_key_text(text, t.columns[i].ty)
                .map_err(|e| e.context(format!("{} tombstone key", t.central)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A filtered table's rows query: on the initial load the condition
    /// restricts the rows; later passes flag each row instead (0 = moved
    /// out). Every filter value is a parameter after the query's own, typed
    /// as its column (the UUID cast as the other UUID binds are), and a
    /// value with a quote in it never reaches the text.
    #[test]
    fn a_row_filter_is_rendered_with_bound_parameters() {
        use edgesync_core::{ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction};
        let col = |name: &str, ty| ColumnMap {
            edge: name.into(),
            central: name.into(),
            ty,
            edge_ty: ty,
            nullable: true,
        };
        let m = TableMapping {
            edge: "shops".into(),
            central: edgesync_core::QualifiedName::parse("dbo.shops"),
            columns: vec![
                col("id", ColType::Int),
                col("region", ColType::Text { max_len: None }),
                col("owner", ColType::Uuid),
            ],
            key: vec![0],
            direction: Direction::Both,
            conflict: ConflictPolicy::ServerWins,
            deletes: DeleteMode::Soft,
        };
        let params = std::collections::BTreeMap::from([
            ("region".to_string(), "o'hare".to_string()),
            (
                "owner".to_string(),
                "67e55044-10b1-426f-9247-bb680e5fe0c8".to_string(),
            ),
        ]);
        let scope =
            Scope::new("region = :region OR owner IN (:owner)", &m, None, &params).expect("scope");
        let initial = scope_condition(&m, &scope, false, true).expect("render");
        assert_eq!(
            initial.sql,
            "(t.[region] = @P4 OR t.[owner] IN (CAST(@P5 AS uniqueidentifier)))"
        );
        assert_eq!(initial.params[0].0, Value::Text("o'hare".into()));
        let q = rows_sql_scoped(&m, false, true, Some(&initial.sql));
        assert!(q.contains(&format!("AND {}", initial.sql)), "{q}");
        assert!(!q.contains("CASE WHEN") && !q.contains("hare"), "{q}");
        let later = scope_condition(&m, &scope, true, false).expect("render");
        assert!(later.sql.starts_with("(t.[region] = @P4 "), "{}", later.sql);
        let q = rows_sql_scoped(&m, true, false, Some(&later.sql));
        assert!(
            q.contains(&format!(
                "t.es_hlc, CASE WHEN {} THEN 1 ELSE 0 END\n  FROM",
                later.sql
            )),
            "{q}"
        );
        assert!(!q.contains(&format!("AND {}", later.sql)), "{q}");
        assert_eq!(
            rows_sql_scoped(&m, true, false, None),
            rows_sql(&m, true, false)
        );
    }

    #[test]
    fn tokens_round_trip_and_foreign_ones_are_refused() {
        let mut t = Token::start(Some(42));
        t.target = Some(99);
        t.phase = Phase::Tombs;
        t.after_tomb = Some("[\"1.10\"]".into());
        let s = t.encode().expect("encode");
        assert_eq!(serde_json::from_str::<Token>(&s).expect("decode"), t);
        let mapping = edgesync_core::TableMapping {
            edge: "x".into(),
            central: edgesync_core::QualifiedName::parse("x"),
            columns: vec![edgesync_core::ColumnMap {
                edge: "id".into(),
                central: "id".into(),
                ty: edgesync_core::ColType::Int,
                edge_ty: edgesync_core::ColType::Int,
                nullable: false,
            }],
            key: vec![0],
            direction: edgesync_core::Direction::Both,
            conflict: edgesync_core::ConflictPolicy::ServerWins,
            deletes: edgesync_core::DeleteMode::Hard,
        };
        assert_eq!(Token::parse(Some(&s), &mapping).expect("parse"), t);
        for foreign in ["{\"after\":3,\"mysql\":1}", "{\"wm\":\"1:2:\"}", "x"] {
            let e = Token::parse(Some(foreign), &mapping).expect_err(foreign);
            assert_eq!(e.kind(), ErrorKind::Config);
        }
        assert_eq!(
            parse_tomb_key(&mapping, "[\"-7\"]").expect("key"),
            vec![Value::Int(-7)]
        );
        assert!(parse_tomb_key(&mapping, "[\"1\",\"2\"]").is_err());
    }
}
