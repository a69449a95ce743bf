//! Commit-safe, resumable pulls.
//!
//! Every pull call first runs the stamping step (`stamp.rs`), which gives
//! versions to committed changes in commit order. Then, in one `REPEATABLE
//! READ` consistent snapshot, it reads the rows and the tombstones whose
//! version is above the token's, ordered by version, merges them and keeps
//! the first `limit`. The token is the highest version delivered: because a
//! version becomes visible only after every smaller one is, "above the
//! highest version delivered" misses nothing — a transaction that commits
//! late is stamped late, with a later version, and delivered by a later page.
//!
//! Paging by version makes every page a resume point: an interrupted initial
//! load restarts from its last stored token. Result sets are streamed and
//! converted row by row; a page holds at most `limit` changes.

use edgesync_core::filter::Scope;
use edgesync_core::value::is_canonical_decimal;
use edgesync_core::{Change, ColType, Error, ErrorKind, PullPage, Result, TableMapping, Value};
use mysql_async::prelude::Queryable;
use mysql_async::{IsolationLevel, Pool, Row, Transaction, TxOpts, Value as My};

use crate::error::ctx;
use crate::schema::{self, values};
use crate::sql::{self, ident, Db};
use crate::stamp;
use crate::types::{self, Native};

/// How many changed rows one pull call stamps at most before answering
/// (a pass with a larger backlog continues over more calls).
const STAMP_BUDGET: usize = 20_000;

/// The pull token: the highest version delivered. Opaque to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token {
    after: i64,
    /// Part of a full pass (the initial load): a row filter then restricts
    /// the rows instead of sending the keys of those outside it.
    full: bool,
}

impl Token {
    fn parse(token: Option<&str>, table: &TableMapping) -> Result<Token> {
        let Some(t) = token else {
            return Ok(Token {
                after: 0,
                full: true,
            });
        };
        let bad = || {
            Error::new(
                ErrorKind::Config,
                format!(
                    "the stored pull token of {} is not a MySQL pull token; \
                     was the central database changed? re-run init-sync on the edge",
                    table.central
                ),
            )
        };
        let v: serde_json::Value = serde_json::from_str(t).map_err(|_| bad())?;
        match (
            v.get("mysql").and_then(|m| m.as_i64()),
            v.get("after").and_then(|a| a.as_i64()),
        ) {
            (Some(1), Some(after)) if after >= 0 => Ok(Token {
                after,
                full: v.get("full").and_then(|f| f.as_bool()).unwrap_or(false),
            }),
            _ => Err(bad()),
        }
    }

    fn encode(self) -> String {
        if self.full {
            serde_json::json!({ "mysql": 1, "after": self.after, "full": true }).to_string()
        } else {
            serde_json::json!({ "mysql": 1, "after": self.after }).to_string()
        }
    }
}

/// `pull` for the trait.
#[allow(clippy::too_many_arguments)]
pub async fn pull(
    pool: &Pool,
    db: &Db,
    mariadb: bool,
    node: &str,
    table: &TableMapping,
    scope: Option<&Scope>,
    token: Option<&str>,
    limit: usize,
) -> Result<PullPage> {
    let tok = Token::parse(token, table)?;
    let limit = limit.max(1);
    let doing = format!("pulling from {}", table.central);
    let mut conn = pool.get_conn().await.map_err(ctx(&doing))?;
    // sync.retention: a position the purge has passed is refused (a full
    // pass never is); where the node stands is recorded.
    crate::retention::admit(
        &mut conn,
        db,
        node,
        &db.tbl_id(&table.central),
        tok.after,
        tok.full,
    )
    .await
    .map_err(|e| e.context(&doing))?;
    let natives = schema::natives(&mut conn, db, mariadb, table)
        .await
        .map_err(|e| e.context(&doing))?;
    let more_pending = stamp::stamp(&mut conn, db, table, &natives, STAMP_BUDGET.max(limit))
        .await
        .map_err(|e| e.context(&doing))?;
    let mut opts = TxOpts::default();
    opts.with_isolation_level(IsolationLevel::RepeatableRead)
        .with_consistent_snapshot(true)
        .with_readonly(true);
    let mut tx = conn.start_transaction(opts).await.map_err(ctx(&doing))?;
    let page = Page {
        db,
        table,
        natives: &natives,
        // A full pass builds the edge's table: it includes the node's own
        // rows (the edge skips the versions it already has).
        node: if tok.full { "" } else { node },
        after: tok.after,
        limit,
        scope,
        full: tok.full,
    };
    // Roll back explicitly on failure: a transaction left for the pool to
    // clean up would hold its metadata locks until then.
    let read = async {
        let rows = page.rows(&mut tx).await?;
        let tombs = page.tombs(&mut tx).await?;
        Ok::<_, edgesync_core::Error>((rows, tombs))
    }
    .await;
    let (rows, tombs) = match read {
        Ok(r) => {
            tx.commit().await.map_err(ctx(&doing))?;
            r
        }
        Err(e) => {
            tx.rollback().await.ok();
            return Err(e.context(&doing));
        }
    };
    let (n_rows, n_tombs) = (rows.len(), tombs.len());
    let mut changes: Vec<Change> = rows.into_iter().chain(tombs).collect();
    changes.sort_by_key(|c| c.version);
    changes.truncate(limit);
    let done = !more_pending && n_rows < limit && n_tombs < limit && n_rows + n_tombs <= limit;
    let after = changes.last().map_or(tok.after, |c| c.version);
    Ok(PullPage {
        changes,
        token: Token {
            after,
            full: tok.full && !done,
        }
        .encode(),
        done,
        fingerprint: None,
    })
}

/// One page's fixed inputs.
struct Page<'a> {
    db: &'a Db,
    table: &'a TableMapping,
    natives: &'a [Native],
    node: &'a str,
    after: i64,
    limit: usize,
    /// The node's row filter, if the table has one.
    scope: Option<&'a Scope>,
    /// Part of the initial load: the filter restricts the rows.
    full: bool,
}

impl Page<'_> {
    /// Rows above the watermark that are not this node's own writes, in
    /// version order.
    async fn rows(&self, tx: &mut Transaction<'_>) -> Result<Vec<Change>> {
        let t = self.table;
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("t.{}", ident(&c.central)))
            .collect();
        // With a row filter, the initial load reads only the node's rows;
        // afterwards each row says whether it is in the node's scope
        // (evaluated here, values bound), and one outside it travels as a
        // move-out, just its key.
        let mut cond_binds: Vec<My> = Vec::new();
        let binds = &mut cond_binds;
        let cond = match self.scope {
            Some(scope) => {
                Some(
                    scope.render_with(&|c| format!("t.{}", ident(c)), &mut |col, v, ty| {
                        let native = t
                            .columns
                            .iter()
                            .position(|c| c.central == col)
                            .and_then(|i| self.natives.get(i))
                            .ok_or_else(|| {
                                Error::internal(format!("filter column {col} has no native type"))
                            })?;
                        binds.push(types::encode(v, ty, native).map_err(|e| {
                            e.context(format!("filter value for {}.{col}", t.central))
                        })?);
                        Ok(sql::bind_expr(ty, native, true))
                    })?,
                )
            }
            None => None,
        };
        let mut binds: Vec<My> = Vec::new();
        let (in_scope, restrict) = match cond {
            Some(c) if self.full => ("1".to_string(), format!(" AND {c}")),
            Some(c) => {
                binds.append(&mut cond_binds);
                (edgesync_core::filter::flag(&c), String::new())
            }
            None => ("1".to_string(), String::new()),
        };
        binds.extend([
            My::Int(self.after),
            My::Bytes(self.node.as_bytes().to_vec()),
        ]);
        binds.append(&mut cond_binds);
        binds.push(My::UInt(self.limit as u64));
        let query = format!(
            "SELECT {cols}, t.es_ver, t.es_deleted, t.es_hlc, {in_scope} FROM {table} AS t
              WHERE t.es_ver > ? AND NOT (t.es_origin <=> ?){restrict}
              ORDER BY t.es_ver LIMIT ?",
            cols = cols.join(", "),
            table = self.db.table_ref(&t.central),
        );
        let mut result = tx
            .exec_iter(query, mysql_async::Params::Positional(binds))
            .await
            .map_err(ctx("reading changed rows"))?;
        let n = t.columns.len();
        // What each column is called in messages, built once per page.
        let what: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("{}.{}", t.central, c.central))
            .collect();
        let decoded: Vec<Result<Change>> = result
            .map(|r: Row| -> Result<Change> {
                let mut v = values(r).into_iter();
                let mut next = || v.next().unwrap_or(My::NULL);
                let mut vals = Vec::with_capacity(n);
                for (c, what) in t.columns.iter().zip(&what) {
                    vals.push(decode(next(), c.ty, what)?);
                }
                let version = int(next())?;
                let deleted = int(next())? != 0;
                let hlc = int(next())?;
                if int(next())? == 0 {
                    return Ok(Change::moved_out(t.key_of(&vals), version, hlc));
                }
                Ok(Change {
                    key: t.key_of(&vals),
                    values: Some(vals),
                    deleted,
                    version,
                    base: None,
                    hlc,
                })
            })
            .await
            .map_err(ctx("reading changed rows"))?;
        decoded.into_iter().collect()
    }

    /// Tombstones above the watermark, in version order, keys decoded to the
    /// key columns' types.
    async fn tombs(&self, tx: &mut Transaction<'_>) -> Result<Vec<Change>> {
        let t = self.table;
        let keys: Vec<String> = t
            .key
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                sql::key_value(
                    &format!("JSON_UNQUOTE(JSON_EXTRACT(ts.k, '$[{j}]'))"),
                    t.columns[i].ty,
                    &self.natives[i],
                )
            })
            .collect();
        // A tombstone whose key has a live row again (re-inserted after the
        // delete) is stale: the row supersedes it. Triggers do not clear it
        // on insert, because any statement on es_tombstones inside an
        // application's INSERT takes InnoDB gap locks that made independent
        // application transactions deadlock; this plain snapshot read skips
        // it instead, by the table's own key index.
        let live = t
            .key_columns()
            .zip(&keys)
            .map(|(c, k)| format!("r.{} = {k}", sql::ident(&c.central)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let query = format!(
            "SELECT {keys}, ts.es_ver, ts.es_hlc FROM {tombs} AS ts
              WHERE ts.tbl = ? AND ts.es_ver > ? AND NOT (ts.es_origin <=> ?)
                AND NOT EXISTS (SELECT 1 FROM {table} AS r WHERE {live})
              ORDER BY ts.es_ver LIMIT ?",
            keys = keys.join(", "),
            tombs = self.db.meta("es_tombstones"),
            table = self.db.table_ref(&t.central),
        );
        let mut result = tx
            .exec_iter(
                query,
                (
                    self.db.tbl_id(&t.central),
                    self.after,
                    self.node,
                    self.limit as u64,
                ),
            )
            .await
            .map_err(ctx("reading tombstones"))?;
        let decoded: Vec<Result<Change>> = result
            .map(|r: Row| -> Result<Change> {
                let mut v = values(r).into_iter();
                let mut next = || v.next().unwrap_or(My::NULL);
                let mut key = Vec::with_capacity(t.key.len());
                for &i in &t.key {
                    let c = &t.columns[i];
                    let what = format!("{} tombstone key {}", t.central, c.central);
                    key.push(types::decode(next(), c.ty, &what)?);
                }
                Ok(Change {
                    key,
                    values: None,
                    deleted: true,
                    version: int(next())?,
                    base: None,
                    hlc: int(next())?,
                })
            })
            .await
            .map_err(ctx("reading tombstones"))?;
        decoded.into_iter().collect()
    }
}

/// [`types::decode`] for the values a page is made of, without its cost
/// per value (it renders every value for a message it rarely needs): the
/// common shapes of integers, text, bytes, canonical decimals and
/// timestamps are taken here, exactly as `types::decode` takes them;
/// everything else, and every value it would refuse, goes to it.
pub(crate) fn decode(v: My, ty: ColType, what: &str) -> Result<Value> {
    let v = match (v, ty) {
        (My::NULL, _) => return Ok(Value::Null),
        (My::Int(i), ColType::Int) => return Ok(Value::Int(i)),
        (My::Bytes(b), ColType::Bytes) => return Ok(Value::Bytes(b)),
        (My::Bytes(b), ColType::Text { .. } | ColType::Decimal { .. }) => {
            match String::from_utf8(b) {
                Ok(s) if matches!(ty, ColType::Text { .. }) => return Ok(Value::Text(s)),
                Ok(s) if is_canonical_decimal(&s) => return Ok(Value::Decimal(s)),
                Ok(s) => My::Bytes(s.into_bytes()),
                Err(e) => My::Bytes(e.into_bytes()),
            }
        }
        (My::Date(y, m, d, h, mi, sec, us), ColType::TimestampTz | ColType::Timestamp)
            if (y, m, d) != (0, 0, 0) =>
        {
            let t = chrono::NaiveDate::from_ymd_opt(y.into(), m.into(), d.into())
                .and_then(|date| date.and_hms_micro_opt(h.into(), mi.into(), sec.into(), us));
            match t {
                Some(t) if ty == ColType::TimestampTz => {
                    return Ok(Value::TimestampTz(t.and_utc().fixed_offset()))
                }
                Some(t) => return Ok(Value::Timestamp(t)),
                None => My::Date(y, m, d, h, mi, sec, us),
            }
        }
        (v, _) => v,
    };
    types::decode(v, ty, what)
}

fn int(v: My) -> Result<i64> {
    match v {
        My::Int(i) => Ok(i),
        My::UInt(u) => i64::try_from(u).map_err(|_| Error::internal("a version exceeds i64")),
        other => Err(Error::internal(format!(
            "expected an integer, got {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgesync_core::{ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, QualifiedName};

    #[test]
    fn the_fast_decode_agrees_with_the_general_one() {
        use edgesync_core::ColType as T;
        let text = T::Text { max_len: None };
        let dec = T::Decimal {
            precision: Some(12),
            scale: Some(2),
        };
        let cases: Vec<(My, ColType)> = vec![
            (My::NULL, T::Int),
            (My::Int(-5), T::Int),
            (My::UInt(7), T::Int),
            (My::Bytes(b"42".to_vec()), T::Int),
            (My::Bytes("héllo".as_bytes().to_vec()), text),
            (My::Bytes(vec![0xff, 0xfe]), text),
            (My::Bytes(vec![0, 1, 2]), T::Bytes),
            (My::Bytes(b"12.30".to_vec()), dec),
            (My::Bytes(b"-0.00".to_vec()), dec),
            (My::Bytes(b"007.5".to_vec()), dec),
            (My::Bytes(b"x".to_vec()), dec),
            (My::Date(2024, 2, 29, 23, 59, 58, 123_456), T::TimestampTz),
            (My::Date(2024, 2, 29, 23, 59, 58, 0), T::Timestamp),
            (My::Date(2023, 2, 29, 0, 0, 0, 0), T::TimestampTz),
            (My::Date(0, 0, 0, 0, 0, 0, 0), T::TimestampTz),
            (My::Bytes(b"2024-01-01 10:00:00".to_vec()), T::TimestampTz),
        ];
        for (v, ty) in cases {
            let fast = decode(v.clone(), ty, "t.c").map_err(|e| e.to_string());
            let general = types::decode(v.clone(), ty, "t.c").map_err(|e| e.to_string());
            assert_eq!(fast, general, "{v:?} as {ty:?}");
        }
        for s in [
            "0", "1", "-1", "0.00", "-0.00", "00", "01.5", "1.", ".5", "+1", "1e3", "-0",
        ] {
            if is_canonical_decimal(s) {
                assert_eq!(
                    edgesync_core::value::canonical_decimal(s).ok().as_deref(),
                    Some(s)
                );
            }
        }
    }

    #[test]
    fn tokens_round_trip_and_foreign_ones_are_refused() {
        let m = TableMapping {
            edge: "t".into(),
            central: QualifiedName::parse("t"),
            columns: vec![ColumnMap {
                edge: "id".into(),
                central: "id".into(),
                ty: ColType::Int,
                edge_ty: ColType::Int,
                nullable: false,
            }],
            key: vec![0],
            direction: Direction::Both,
            conflict: ConflictPolicy::ServerWins,
            deletes: DeleteMode::Hard,
        };
        for full in [false, true] {
            let t = Token { after: 42, full };
            assert_eq!(Token::parse(Some(&t.encode()), &m).expect("parse"), t);
        }
        assert_eq!(
            Token::parse(None, &m).expect("none"),
            Token {
                after: 0,
                full: true
            }
        );
        let pg = r#"{"wm":"10:12:","target":null,"phase":"rows","after":null}"#;
        assert_eq!(
            Token::parse(Some(pg), &m).expect_err("foreign").kind(),
            ErrorKind::Config
        );
    }
}
