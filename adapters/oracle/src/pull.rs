//! Commit-safe, resumable pulls.
//!
//! Versions come from a sequence, so they are taken in one order and
//! committed in another: a "highest version seen" watermark would skip a
//! transaction that took its version early and committed late. So every
//! write also stamps `es_scn`, the system change number at the time of the
//! write, read after the writing transaction registered itself in
//! `V$TRANSACTION` (`es_sync.write_scn`). A pass reads, on its first page,
//! its *target* `es_sync.pull_bound`: the current SCN, or the start SCN of
//! the oldest open transaction if that is lower. Every write with a stamp
//! below the target is committed (or rolled back) for good: an open
//! transaction started at or above the target, so its stamps are too, and a
//! transaction that starts later stamps above the SCN read. The pass selects
//! every row and tombstone stamped at or above the previous pass's target
//! (its *watermark*); when it ends, its target is the next watermark. A
//! transaction that writes early and commits late is delivered by the next
//! pass — no gap timeout, no wall clock.
//!
//! A pass pages through the rows in key order (a key cursor, so an
//! interrupted initial load resumes where it stopped), then through the
//! tombstones. A later page may also deliver changes newer than the target,
//! which the next pass repeats (the edge skips versions it already has).

use edgesync_core::filter::{Placeholder, Scope};
use edgesync_core::{Change, ColType, Error, ErrorKind, PullPage, Result, TableMapping, Value};
use oracle::sql_type::ToSql;
use oracle::Connection;
use serde::{Deserialize, Serialize};

use crate::error::ctx;
use crate::sql::{self, ident, Placeholders};
use crate::types::{self, Bind};
use crate::write::key_native;

/// The pull token: where a pass stands. Opaque to the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Token {
    /// Marks an Oracle token.
    oracle: u8,
    /// The previous pass's target SCN; `None` = initial load (everything).
    wm: Option<i64>,
    /// `es_sync.pull_bound` at this pass's first page, the next `wm`.
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
            oracle: 1,
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
                    "the stored pull token of {} is not an Oracle pull token; \
                     was the central database changed? re-run init-sync on the edge",
                    table.central
                ),
            )
        };
        let tok: Token = serde_json::from_str(t).map_err(|_| bad())?;
        if tok.oracle != 1
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

/// The commit-safe bound, from the table owner's `es_sync` package.
pub fn bound_sql(t: &TableMapping, default_owner: &str) -> String {
    format!(
        "SELECT {}.es_sync.pull_bound FROM dual",
        ident(sql::owner_of(&t.central, default_owner))
    )
}

/// The rows query: `:1` = node, then the watermark (if `with_wm`), then the
/// key cursor (if `with_after`; `order` says which key value each
/// placeholder takes), then the limit.
pub fn rows_sql(
    t: &TableMapping,
    default_owner: &str,
    with_wm: bool,
    with_after: bool,
    order: &mut Vec<usize>,
) -> String {
    build_rows_sql(t, default_owner, with_wm, with_after, order, |_| None)
}

/// [`rows_sql`] for a node with a row filter, and the filter's values to
/// bind. On the initial load (`with_wm` false) the condition restricts the
/// rows, its values bound after the key cursor's; afterwards every changed
/// row is read with a first column, 1 when it is in the node's scope and 0
/// when it is not (a move-out), its values bound first. Placeholders are
/// numbered in the order they appear, as Oracle binds them.
pub fn rows_sql_scoped(
    t: &TableMapping,
    default_owner: &str,
    with_wm: bool,
    with_after: bool,
    order: &mut Vec<usize>,
    scope: &Scope,
) -> Result<(String, Vec<(Value, ColType)>)> {
    let mut params = Vec::new();
    let mut failed = None;
    let column = |c: &str| format!("t.{}", ident(c));
    let sql = build_rows_sql(
        t,
        default_owner,
        with_wm,
        with_after,
        order,
        |first| match scope.render(Placeholder::Colon, &column, first) {
            Ok(r) => {
                let n = r.params.len();
                params.extend(r.params);
                Some((r.sql, n))
            }
            Err(e) => {
                failed = Some(e);
                None
            }
        },
    );
    match failed {
        Some(e) => Err(e.context(format!("the row filter of {}", t.central))),
        None => Ok((sql, params)),
    }
}

/// The rows query; `cond(first)` renders a row filter with placeholders
/// from `:first` and says how many it took (`None`: no filter).
fn build_rows_sql(
    t: &TableMapping,
    default_owner: &str,
    with_wm: bool,
    with_after: bool,
    order: &mut Vec<usize>,
    mut cond: impl FnMut(usize) -> Option<(String, usize)>,
) -> String {
    let mut p = Placeholders::new();
    let mut taken = 0;
    let take_n = |p: &mut Placeholders, n: usize| {
        for _ in 0..n {
            p.take();
        }
    };
    let mut flag = String::new();
    if with_wm {
        if let Some((c, n)) = cond(1) {
            flag = format!("{}, ", edgesync_core::filter::flag(&c));
            take_n(&mut p, n);
            taken += n;
        }
    }
    let mut filter = format!("(t.es_origin IS NULL OR t.es_origin <> {})", p.take());
    taken += 1;
    if with_wm {
        filter.push_str(&format!(" AND t.es_scn >= {}", p.take()));
        taken += 1;
    }
    let keys = sql::key_columns(t, Some("t"));
    if with_after {
        let before = order.len();
        filter.push_str(&format!(" AND {}", sql::after_key(&keys, &mut p, order)));
        taken += order.len() - before;
    }
    if !with_wm {
        if let Some((c, n)) = cond(taken + 1) {
            filter.push_str(&format!(" AND {c}"));
            take_n(&mut p, n);
        }
    }
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| sql::read_expr(&format!("t.{}", ident(&c.central)), c.ty))
        .collect();
    format!(
        "SELECT {flag}{cols}, t.es_ver, t.es_deleted, t.es_hlc
  FROM {table} t
 WHERE {filter}
 ORDER BY {order_by}
 FETCH FIRST {limit} ROWS ONLY",
        cols = cols.join(", "),
        table = sql::table_ref(&t.central, default_owner),
        order_by = keys.join(", "),
        limit = p.take(),
    )
}

/// The tombstones query: `:1` = table id, `:2` = node, then the watermark
/// (if `with_wm`), then the cursor (if `with_after`), then the limit.
pub fn tombs_sql(t: &TableMapping, default_owner: &str, with_wm: bool, with_after: bool) -> String {
    let mut p = Placeholders::new();
    let mut filter = format!(
        "ts.tbl = {} AND (ts.es_origin IS NULL OR ts.es_origin <> {})",
        p.take(),
        p.take()
    );
    if with_wm {
        filter.push_str(&format!(" AND ts.es_scn >= {}", p.take()));
    }
    if with_after {
        filter.push_str(&format!(" AND ts.k > {}", p.take()));
    }
    format!(
        "SELECT ts.k, ts.es_ver, ts.es_hlc
  FROM {tombs} ts
 WHERE {filter}
 ORDER BY ts.k
 FETCH FIRST {limit} ROWS ONLY",
        tombs = sql::meta(&t.central, default_owner, "es_tombstones"),
        limit = p.take(),
    )
}

/// `pull` for the trait; runs on a worker's session.
pub fn pull(
    conn: &Connection,
    default_owner: &str,
    node: &str,
    table: &TableMapping,
    scope: Option<&Scope>,
    token: Option<&str>,
    limit: usize,
) -> Result<PullPage> {
    let tok = Token::parse(token, table)?;
    sql::check_mapping(table, default_owner)?;
    let doing = format!("pulling from {}", table.central);
    let page = read_page(conn, default_owner, node, table, scope, tok, limit.max(1))
        .map_err(|e| e.context(&doing));
    // Reads only; end the (read) transaction either way.
    conn.rollback().ok();
    page
}

fn read_page(
    conn: &Connection,
    owner: &str,
    node: &str,
    table: &TableMapping,
    scope: Option<&Scope>,
    mut tok: Token,
    limit: usize,
) -> Result<PullPage> {
    let target = match tok.target {
        Some(t) => t,
        None => conn
            .query_row_as::<i64>(&bound_sql(table, owner), &[])
            .map_err(ctx(
                "reading the pull bound (es_sync.pull_bound; run init-sync, and see the grants in schemas/oracle/init_shared.sql)",
            ))?,
    };
    tok.target = Some(target);
    let mut changes = Vec::new();
    if tok.phase == Phase::Rows {
        let rows = read_rows(conn, owner, node, table, scope, &tok, limit)?;
        let full = rows.len() == limit;
        let last = rows.last().map(|c| c.key.clone());
        changes = rows;
        if full {
            tok.after_key = last;
            return more(changes, tok);
        }
        tok.phase = Phase::Tombs;
        tok.after_key = None;
    }
    let remaining = limit - changes.len();
    let (tombs, last) = read_tombs(conn, owner, node, table, &tok, remaining)?;
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

fn read_rows(
    conn: &Connection,
    owner: &str,
    node: &str,
    t: &TableMapping,
    scope: Option<&Scope>,
    tok: &Token,
    limit: usize,
) -> Result<Vec<Change>> {
    let mut order = Vec::new();
    let (with_wm, with_after) = (tok.wm.is_some(), tok.after_key.is_some());
    let (sql, filter_values) = match scope {
        Some(s) => rows_sql_scoped(t, owner, with_wm, with_after, &mut order, s)?,
        None => (
            rows_sql(t, owner, with_wm, with_after, &mut order),
            Vec::new(),
        ),
    };
    let bind_filter = |binds: &mut Vec<Bind>| -> Result<()> {
        for (v, ty) in &filter_values {
            binds.push(types::bind(*ty, &key_native(), v)?);
        }
        Ok(())
    };
    // A flag column comes first (values bound first); an initial load's
    // condition after the key cursor.
    let flagged = scope.is_some() && with_wm;
    let mut binds: Vec<Bind> = Vec::new();
    if flagged {
        bind_filter(&mut binds)?;
    }
    binds.push(Bind::Text(Some(node.to_string())));
    if let Some(wm) = tok.wm {
        binds.push(Bind::Int(Some(wm)));
    }
    if let Some(after) = &tok.after_key {
        for &j in &order {
            let ty = t.columns[t.key[j]].ty;
            binds.push(types::bind(ty, &key_native(), &after[j])?);
        }
    }
    if scope.is_some() && !flagged {
        bind_filter(&mut binds)?;
    }
    binds.push(Bind::Int(Some(i64::try_from(limit).unwrap_or(i64::MAX))));
    let refs: Vec<&dyn ToSql> = binds.iter().map(|b| b as &dyn ToSql).collect();
    let rows = conn
        .query(&sql, &refs)
        .map_err(ctx("reading changed rows (run init-sync?)"))?;
    let n = t.columns.len();
    let mut out = Vec::new();
    for r in rows {
        let r = r.map_err(ctx("reading changed rows"))?;
        let get = || ctx("reading changed rows");
        // With a flag column, every column is one further on.
        let o = usize::from(flagged);
        let mut values = Vec::with_capacity(n);
        for (k, c) in t.columns.iter().enumerate() {
            let what = format!("{}.{}", t.central, c.central);
            values.push(types::decode(&r, k + o, c.ty, &what)?);
        }
        let n = n + o;
        if flagged && r.get::<usize, i64>(0).map_err(get())? == 0 {
            out.push(Change::moved_out(
                t.key_of(&values),
                r.get(n).map_err(get())?,
                r.get(n + 2).map_err(get())?,
            ));
            continue;
        }
        out.push(Change {
            key: t.key_of(&values),
            values: Some(values),
            version: r.get(n).map_err(get())?,
            deleted: r.get::<usize, i64>(n + 1).map_err(get())? != 0,
            base: None,
            hlc: r.get(n + 2).map_err(get())?,
        });
    }
    Ok(out)
}

fn read_tombs(
    conn: &Connection,
    owner: &str,
    node: &str,
    t: &TableMapping,
    tok: &Token,
    limit: usize,
) -> Result<(Vec<Change>, Option<String>)> {
    let sql = tombs_sql(t, owner, tok.wm.is_some(), tok.after_tomb.is_some());
    let mut binds: Vec<Bind> = vec![
        Bind::Text(Some(sql::tbl_id(&t.central, owner))),
        Bind::Text(Some(node.to_string())),
    ];
    if let Some(wm) = tok.wm {
        binds.push(Bind::Int(Some(wm)));
    }
    if let Some(after) = &tok.after_tomb {
        binds.push(Bind::Text(Some(after.clone())));
    }
    binds.push(Bind::Int(Some(i64::try_from(limit).unwrap_or(i64::MAX))));
    let refs: Vec<&dyn ToSql> = binds.iter().map(|b| b as &dyn ToSql).collect();
    let rows = conn.query(&sql, &refs).map_err(ctx("reading tombstones"))?;
    let mut out = Vec::new();
    let mut last = None;
    for r in rows {
        let r = r.map_err(ctx("reading tombstones"))?;
        let get = || ctx("reading tombstones");
        let k: String = r.get(0).map_err(get())?;
        out.push(Change {
            key: parse_tomb_key(t, &k)?,
            values: None,
            deleted: true,
            version: r.get(1).map_err(get())?,
            base: None,
            hlc: r.get(2).map_err(get())?,
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
    use edgesync_core::{ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, QualifiedName};

    /// A filtered table's rows query: the initial load restricts the rows
    /// (values bound after the key cursor's), later passes flag each row in
    /// a first column (values bound first); placeholders numbered in the
    /// order they appear, and a value with a quote in it only ever bound.
    #[test]
    fn a_row_filter_is_rendered_with_bound_parameters() {
        let mut m = mapping();
        m.columns.push(ColumnMap {
            edge: "region".into(),
            central: "REGION".into(),
            ty: ColType::Text { max_len: None },
            edge_ty: ColType::Text { max_len: None },
            nullable: true,
        });
        let params =
            std::collections::BTreeMap::from([("region".to_string(), "o'hare".to_string())]);
        let scope = Scope::new("REGION IN (:region, 'all')", &m, None, &params).expect("scope");
        let mut order = Vec::new();
        let (sql, values) =
            rows_sql_scoped(&m, "APP", false, true, &mut order, &scope).expect("render");
        assert!(
            sql.contains(r#"AND ((t."ID" > :2)) AND t."REGION" IN (:3, :4)"#),
            "{sql}"
        );
        assert!(sql.ends_with("FETCH FIRST :5 ROWS ONLY"), "{sql}");
        assert!(!sql.contains("hare") && !sql.contains("'all'"), "{sql}");
        assert_eq!(
            values.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
            [Value::Text("o'hare".into()), Value::Text("all".into())]
        );
        let mut order = Vec::new();
        let (sql, _) = rows_sql_scoped(&m, "APP", true, false, &mut order, &scope).expect("render");
        assert!(
            sql.starts_with(r#"SELECT CASE WHEN t."REGION" IN (:1, :2) THEN 1 ELSE 0 END, t."ID""#),
            "{sql}"
        );
        assert!(
            sql.contains("t.es_origin <> :3) AND t.es_scn >= :4"),
            "{sql}"
        );
        assert!(sql.ends_with("FETCH FIRST :5 ROWS ONLY"), "{sql}");
        let mut a = Vec::new();
        let mut b = Vec::new();
        assert_eq!(
            rows_sql(&m, "APP", true, true, &mut a),
            build_rows_sql(&m, "APP", true, true, &mut b, |_| None)
        );
    }

    fn mapping() -> TableMapping {
        TableMapping {
            edge: "x".into(),
            central: QualifiedName::parse("X"),
            columns: vec![ColumnMap {
                edge: "id".into(),
                central: "ID".into(),
                ty: ColType::Int,
                edge_ty: ColType::Int,
                nullable: false,
            }],
            key: vec![0],
            direction: Direction::Both,
            conflict: ConflictPolicy::ServerWins,
            deletes: DeleteMode::Hard,
        }
    }

    #[test]
    fn tokens_round_trip_and_foreign_ones_are_refused() {
        let mut t = Token::start(Some(7_000_000_000));
        t.target = Some(7_000_000_100);
        t.after_key = Some(vec![Value::Int(5)]);
        let s = t.encode().expect("encode");
        assert_eq!(Token::parse(Some(&s), &mapping()).expect("parse"), t);
        for foreign in [
            "{\"mssql\":1,\"wm\":1,\"target\":null,\"phase\":\"rows\",\"after_key\":null,\"after_tomb\":null}",
            "{\"after\":3,\"mysql\":1}",
            "nonsense",
        ] {
            let e = Token::parse(Some(foreign), &mapping()).expect_err(foreign);
            assert_eq!(e.kind(), ErrorKind::Config);
        }
        assert_eq!(
            parse_tomb_key(&mapping(), "[\"12\"]").expect("key"),
            vec![Value::Int(12)]
        );
    }

    #[test]
    fn the_cursor_binds_every_occurrence() {
        let mut m = mapping();
        m.columns.push(ColumnMap {
            edge: "b".into(),
            central: "B".into(),
            ty: ColType::Text { max_len: Some(5) },
            edge_ty: ColType::Text { max_len: Some(5) },
            nullable: false,
        });
        m.key = vec![0, 1];
        let mut order = Vec::new();
        let sql = rows_sql(&m, "APP", true, true, &mut order);
        assert!(sql.contains("t.es_scn >= :2"), "{sql}");
        assert!(
            sql.contains("((t.\"ID\" > :3) OR (t.\"ID\" = :4 AND t.\"B\" > :5))"),
            "{sql}"
        );
        assert!(sql.contains("FETCH FIRST :6 ROWS ONLY"), "{sql}");
        assert_eq!(order, vec![0, 0, 1]);
    }
}
