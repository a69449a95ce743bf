//! Commit-safe, resumable pulls.
//!
//! Every pull call first runs the stamping step (`stamp.rs`), which gives
//! versions to committed changes in commit order, so a version becomes
//! visible only after every smaller one is. Each page is then read in one
//! `REPEATABLE READ` consistent snapshot.
//!
//! An incremental pass reads the rows and the tombstones whose version is
//! above the token's, ordered by version, merges them and keeps the first
//! `limit`. The token is the highest version delivered: because versions
//! become visible in order, "above the highest version delivered" misses
//! nothing — a transaction that commits late is stamped late, with a later
//! version, and delivered by a later page.
//!
//! A full pass (the initial load) pages its rows in key order instead, which
//! reads the table along its primary key (the version order walks the
//! `es_ver` index and looks up every row in the clustered index):
//!
//! 1. Its first page, inside its snapshot, takes the pass's top version
//!    `V0`: the version counter (`es_ctl.seq`) as that snapshot sees it,
//!    the last version handed out by a committed transaction. Every version
//!    `<= V0` is committed and visible in that snapshot (versions are handed
//!    out under the `es_ctl` lock, held to commit, so they become visible in
//!    order), hence in every later page's snapshot too; and every version
//!    handed out from then on is above `V0`. (The counter rather than the
//!    table's highest version: it is never below a retention purge mark,
//!    so the incremental pass that follows is never refused as purged past.)
//! 2. The rows: `es_ver <= V0 AND key > <cursor>`, in key order, `limit` at a
//!    time; the cursor is the last row's key values, bound typed and compared
//!    in each column's collation, as `ORDER BY` sorts. The cursor only moves
//!    forward, so every row whose version is still `<= V0` when the cursor
//!    reaches its key is delivered, once. A row the pass has not reached
//!    keeps its version `<= V0` until it is changed; then it is pending
//!    (`es_ver IS NULL`) or re-stamped above `V0`, like
//!    a row inserted during the pass, a row changed after the cursor passed
//!    it, and a row still unstamped at the first page. None of those is lost:
//!    each has, or will get, a version above `V0`, which the incremental
//!    passes after `V0` deliver at its newest version (a delete, as its
//!    tombstone, also stamped above `V0`).
//! 3. The tombstones `<= V0`, in version order, after a version cursor (all
//!    of them visible in every page; one whose key has a live row again is
//!    skipped, as in every pass: the row supersedes it).
//! 4. The pass ends with the incremental token `after = V0`. If the stamping
//!    step left work pending (its budget ran out), that page still says
//!    `done: false`, so the pull goes on incrementally at once.
//!
//! A key that may hold NULL (a `UNIQUE` index with a nullable column, never
//! a primary key) has no cursor that resumes after a NULL exactly; such a
//! table's full pass pages by version as the incremental passes do, with
//! the row filter restricting rows.
//!
//! Every page is a resume point: an interrupted initial load restarts from
//! its last stored token. Result sets are streamed and converted row by row;
//! a page holds at most `limit` changes.

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

/// The pull token. Opaque to the engine; stored in edge files, so every
/// form an earlier edgesync wrote is still read:
///
/// - `{"mysql":1,"after":N}`: an incremental pass after version `N`;
/// - `{"mysql":1,"after":0,"full":true,"top":V0,"key":[...]}` (or
///   `"tombs":V` in place of `"key"`): a key-ordered full pass, its top
///   version and where it stands;
/// - `{"mysql":1,"after":N,"full":true}` without `"top"`: a full pass
///   written by an edgesync that paged full passes by version, possibly in
///   the middle. Its `N` is no position in key order, so that pass starts
///   again from the beginning, in key order (the edge skips the versions it
///   already has). `after` stays 0 in the newer full tokens, so an older
///   edgesync reading one starts its full pass again too, rather than take
///   a position that means nothing to it.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    after: i64,
    /// Part of a full pass (the initial load): a row filter then restricts
    /// the rows instead of sending the keys of those outside it.
    full: bool,
    /// A key-ordered full pass under way (`full` only).
    pass: Option<Pass>,
}

/// Where a key-ordered full pass stands.
#[derive(Debug, Clone, PartialEq)]
struct Pass {
    /// `V0`: the version counter as the pass's first page saw it.
    top: i64,
    at: At,
}

#[derive(Debug, Clone, PartialEq)]
enum At {
    /// In the rows, after this key (empty: from the first row).
    Rows(Vec<Value>),
    /// In the tombstones, after this version.
    Tombs(i64),
}

impl Token {
    fn parse(token: Option<&str>, table: &TableMapping) -> Result<Token> {
        let Some(t) = token else {
            return Ok(Token {
                after: 0,
                full: true,
                pass: None,
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
        let after = match (
            v.get("mysql").and_then(|m| m.as_i64()),
            v.get("after").and_then(|a| a.as_i64()),
        ) {
            (Some(1), Some(after)) if after >= 0 => after,
            _ => return Err(bad()),
        };
        let full = v.get("full").and_then(|f| f.as_bool()).unwrap_or(false);
        let pass = match v.get("top") {
            Some(top) if full => {
                let top = top.as_i64().filter(|t| *t >= 0).ok_or_else(bad)?;
                let at = match (v.get("key"), v.get("tombs")) {
                    (Some(key), None) => {
                        let key: Vec<Value> =
                            serde_json::from_value(key.clone()).map_err(|_| bad())?;
                        if key.len() != table.key.len() {
                            return Err(Error::new(
                                ErrorKind::Config,
                                format!(
                                    "the pull cursor of {} does not match the table's key; \
                                     was the key changed? re-run init-sync on the edge",
                                    table.central
                                ),
                            ));
                        }
                        At::Rows(key)
                    }
                    (None, Some(tombs)) => {
                        At::Tombs(tombs.as_i64().filter(|t| *t >= 0).ok_or_else(bad)?)
                    }
                    (None, None) => At::Rows(Vec::new()),
                    (Some(_), Some(_)) => return Err(bad()),
                };
                Some(Pass { top, at })
            }
            _ => None,
        };
        Ok(Token { after, full, pass })
    }

    fn encode(&self) -> Result<String> {
        let mut j = serde_json::json!({ "mysql": 1, "after": self.after });
        if self.full {
            j["full"] = true.into();
            if let Some(p) = &self.pass {
                j["top"] = p.top.into();
                match &p.at {
                    At::Rows(key) => {
                        j["key"] = serde_json::to_value(key).map_err(|e| {
                            Error::internal(format!("cannot encode a pull cursor: {e}"))
                        })?;
                    }
                    At::Tombs(v) => j["tombs"] = (*v).into(),
                }
            }
        }
        Ok(j.to_string())
    }
}

/// What a page read.
enum Read {
    /// Rows and tombstones above the token's version, each in version order
    /// (to be merged).
    Versions(Vec<Change>, Vec<Change>),
    /// One page of a key-ordered full pass, in delivery order.
    Keys(Vec<Change>, Next),
}

/// How a page of a key-ordered full pass ended.
enum Next {
    /// A key-ordered full pass goes on from here.
    More(Pass),
    /// A key-ordered full pass ended: the incremental passes go on after
    /// its top version.
    End(i64),
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
    // pass never is); where the node stands is recorded: at every page of
    // an incremental pass (each moves it), at the first page of a full pass
    // (its position stays 0 until the pass ends, so the later pages would
    // write the same row again, one write a page).
    crate::retention::admit(
        &mut conn,
        db,
        node,
        &db.tbl_id(&table.central),
        tok.after,
        tok.full,
        !tok.full || tok.pass.is_none(),
    )
    .await
    .map_err(|e| e.context(&doing))?;
    let natives = schema::natives(&mut conn, db, mariadb, table)
        .await
        .map_err(|e| e.context(&doing))?;
    let more_pending = stamp::stamp(&mut conn, db, table, &natives, STAMP_BUDGET.max(limit))
        .await
        .map_err(|e| e.context(&doing))?;
    // See the module doc: a key that may hold NULL is paged by version.
    let by_key = tok.full && table.key.iter().all(|&i| !natives[i].nullable);
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
        if by_key {
            let (changes, next) = page.full_by_key(&mut tx, tok.pass.clone()).await?;
            Ok::<_, edgesync_core::Error>(Read::Keys(changes, next))
        } else {
            let rows = page.rows(&mut tx, Order::Versions).await?;
            let tombs = page.tombs(&mut tx, tok.after, None, limit).await?;
            Ok(Read::Versions(rows, tombs))
        }
    }
    .await;
    let read = match read {
        Ok(r) => {
            tx.commit().await.map_err(ctx(&doing))?;
            r
        }
        Err(e) => {
            tx.rollback().await.ok();
            return Err(e.context(&doing));
        }
    };
    let (rows, tombs) = match read {
        Read::Versions(rows, tombs) => (rows, tombs),
        Read::Keys(changes, next) => {
            let (token, done) = match next {
                Next::More(pass) => (
                    Token {
                        after: 0,
                        full: true,
                        pass: Some(pass),
                    },
                    false,
                ),
                // The stamping step's budget ran out: more is pending, and
                // the pull goes on (incrementally) before it is done.
                Next::End(top) => (
                    Token {
                        after: top,
                        full: false,
                        pass: None,
                    },
                    !more_pending,
                ),
            };
            return Ok(PullPage {
                changes,
                token: token.encode()?,
                done,
                fingerprint: None,
            });
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
            pass: None,
        }
        .encode()?,
        done,
        fingerprint: None,
    })
}

/// Which rows a page reads, in which order.
enum Order<'a> {
    /// Versions above the page's `after`, in version order.
    Versions,
    /// Versions up to `top`, keys after `after` (empty: from the first
    /// key), in key order: a key-ordered full pass.
    Keys { top: i64, after: &'a [Value] },
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
    /// One page of a key-ordered full pass (see the module doc): its
    /// changes, and where the pass goes on.
    async fn full_by_key(
        &self,
        tx: &mut Transaction<'_>,
        pass: Option<Pass>,
    ) -> Result<(Vec<Change>, Next)> {
        let (top, at) = match pass {
            Some(p) => (p.top, p.at),
            None => (self.top(tx).await?, At::Rows(Vec::new())),
        };
        let mut changes = Vec::new();
        let tombs_after = match at {
            At::Rows(after) => {
                changes = self.rows(tx, Order::Keys { top, after: &after }).await?;
                if changes.len() >= self.limit {
                    let key = changes.last().map(|c| c.key.clone()).unwrap_or(after);
                    let at = At::Rows(key);
                    return Ok((changes, Next::More(Pass { top, at })));
                }
                0
            }
            At::Tombs(v) => v,
        };
        let room = self.limit - changes.len();
        let tombs = self.tombs(tx, tombs_after, Some(top), room).await?;
        let next = match tombs.last() {
            Some(last) if tombs.len() >= room => Next::More(Pass {
                top,
                at: At::Tombs(last.version),
            }),
            _ => Next::End(top),
        };
        changes.extend(tombs);
        Ok((changes, next))
    }

    /// The last version handed out, as this page's snapshot sees the
    /// version counter (a consistent read: no lock, see the module doc).
    async fn top(&self, tx: &mut Transaction<'_>) -> Result<i64> {
        let top: Option<i64> = tx
            .query_first(format!(
                "SELECT seq FROM {} WHERE id = 1",
                self.db.meta("es_ctl")
            ))
            .await
            .map_err(ctx("reading the version counter es_ctl"))?;
        top.ok_or_else(|| {
            Error::schema(format!(
                "the version counter {} has no row; run init-sync",
                self.db.meta("es_ctl")
            ))
        })
    }

    /// The condition "the row's key comes after `key`" in key order, its
    /// values bound typed into `binds`. Written as `a > ? OR (a = ? AND b >
    /// ?) OR ...` rather than `(a, b) > (?, ?)`: MariaDB 10.11 turns the
    /// former into a range on the PRIMARY KEY (EXPLAIN: `type: range, key:
    /// PRIMARY, used_key_parts: [a, b]`) but scans the whole index from its
    /// start for the latter (`type: index`), every page. Each value is cast
    /// to its column's type, text in the column's collation, so the
    /// comparison is the one `ORDER BY` sorts by.
    fn key_after(&self, key: &[Value], binds: &mut Vec<My>) -> Result<String> {
        let t = self.table;
        let mut cols = Vec::with_capacity(key.len());
        for (&i, v) in t.key.iter().zip(key) {
            let c = &t.columns[i];
            let native = &self.natives[i];
            let value = types::encode(v, c.ty, native).map_err(|e| {
                e.context(format!("the pull cursor of {} ({})", t.central, c.central))
            })?;
            cols.push((
                format!("t.{}", ident(&c.central)),
                sql::bind_expr(c.ty, native, true),
                value,
            ));
        }
        let mut terms = Vec::with_capacity(cols.len());
        for j in 0..cols.len() {
            let mut parts = Vec::with_capacity(j + 1);
            for (col, bind, value) in &cols[..j] {
                parts.push(format!("{col} = {bind}"));
                binds.push(value.clone());
            }
            let (col, bind, value) = &cols[j];
            parts.push(format!("{col} > {bind}"));
            binds.push(value.clone());
            terms.push(parts.join(" AND "));
        }
        Ok(format!("({})", terms.join(" OR ")))
    }

    /// Rows that are not this node's own writes, in the `order` asked.
    async fn rows(&self, tx: &mut Transaction<'_>, order: Order<'_>) -> Result<Vec<Change>> {
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
        let (range, order_by) = match order {
            Order::Versions => {
                binds.push(My::Int(self.after));
                ("t.es_ver > ?".to_string(), "t.es_ver".to_string())
            }
            Order::Keys { top, after } => {
                binds.push(My::Int(top));
                let mut range = "t.es_ver <= ?".to_string();
                if !after.is_empty() {
                    range.push_str(" AND ");
                    range.push_str(&self.key_after(after, &mut binds)?);
                }
                let keys: Vec<String> = t
                    .key_columns()
                    .map(|c| format!("t.{}", ident(&c.central)))
                    .collect();
                (range, keys.join(", "))
            }
        };
        binds.push(My::Bytes(self.node.as_bytes().to_vec()));
        binds.append(&mut cond_binds);
        binds.push(My::UInt(self.limit as u64));
        let query = format!(
            "SELECT {cols}, t.es_ver, t.es_deleted, t.es_hlc, {in_scope} FROM {table} AS t
              WHERE {range} AND NOT (t.es_origin <=> ?){restrict}
              ORDER BY {order_by} LIMIT ?",
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

    /// Tombstones above version `after` (and at most `upto`, if given), in
    /// version order, at most `limit`, keys decoded to the key columns'
    /// types.
    async fn tombs(
        &self,
        tx: &mut Transaction<'_>,
        after: i64,
        upto: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Change>> {
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
              WHERE ts.tbl = ? AND ts.es_ver > ? AND ts.es_ver <= ? AND NOT (ts.es_origin <=> ?)
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
                    after,
                    upto.unwrap_or(i64::MAX),
                    self.node,
                    limit as u64,
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
        let passes = [
            None,
            Some(Pass {
                top: 42,
                at: At::Rows(vec![Value::Int(-7)]),
            }),
            Some(Pass {
                top: 42,
                at: At::Tombs(40),
            }),
        ];
        for full in [false, true] {
            for pass in passes.iter().filter(|p| full || p.is_none()) {
                let t = Token {
                    after: if pass.is_some() { 0 } else { 42 },
                    full,
                    pass: pass.clone(),
                };
                let text = t.encode().expect("encode");
                assert_eq!(Token::parse(Some(&text), &m).expect("parse"), t, "{text}");
            }
        }
        assert_eq!(
            Token::parse(None, &m).expect("none"),
            Token {
                after: 0,
                full: true,
                pass: None,
            }
        );
        // An incremental token is unchanged; a full one written when full
        // passes went by version has no key-order position (it restarts).
        assert_eq!(
            Token {
                after: 42,
                full: false,
                pass: None
            }
            .encode()
            .expect("encode"),
            r#"{"after":42,"mysql":1}"#
        );
        assert_eq!(
            Token::parse(Some(r#"{"mysql":1,"after":17,"full":true}"#), &m).expect("old"),
            Token {
                after: 17,
                full: true,
                pass: None,
            }
        );
        // A cursor that does not fit the key is refused, not misread.
        let two = r#"{"mysql":1,"after":0,"full":true,"top":5,"key":[{"t":"int","v":1},{"t":"int","v":2}]}"#;
        assert_eq!(
            Token::parse(Some(two), &m).expect_err("arity").kind(),
            ErrorKind::Config
        );
        assert!(Token::parse(Some(r#"{"mysql":2,"after":1}"#), &m).is_err());
        let pg = r#"{"wm":"10:12:","target":null,"phase":"rows","after":null}"#;
        assert_eq!(
            Token::parse(Some(pg), &m).expect_err("foreign").kind(),
            ErrorKind::Config
        );
    }
}
