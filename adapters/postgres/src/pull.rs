//! Commit-safe, resumable pulls.
//!
//! Versions come from a sequence, so they are taken in one order and
//! committed in another: a "highest version seen" watermark would skip a
//! transaction that took its version early and committed late. Instead every
//! write records its transaction id (`es_txid`), and a pass remembers the
//! snapshot (`txid_current_snapshot()`) of its first page, its target. The
//! next pass selects exactly what that snapshot did not see — rows whose
//! `es_txid` is not visible in it — whenever those transactions committed.
//!
//! A pass pages through the rows, then through the tombstones. Each page
//! runs in its own `REPEATABLE READ READ ONLY` transaction; a later page may
//! also deliver changes newer than the pass's target snapshot, which the next
//! pass repeats (the edge skips versions it already has).
//!
//! The rows are paged after a cursor, in one of two orders:
//!
//! - A full pass (the initial load, no previous snapshot) goes in key order,
//!   so an interrupted load resumes where it stopped and the edge gets its
//!   rows in the order of its own key.
//! - An incremental pass goes in `(es_txid, key)` order, the order of the
//!   pull index (`schemas/postgres/init_table.sql`): a page is one range scan
//!   of that index from the cursor, which stops after the page's rows, so a
//!   pass over `n` changed rows reads each of them once (in key order the
//!   changed rows had to be found among the unchanged ones, or all read and
//!   sorted again for every page).
//!
//! Why the `(es_txid, key)` cursor loses nothing although a row's `es_txid`
//! changes whenever it is written, possibly to a value behind the cursor:
//! let `T` be the pass's target snapshot, taken at its first page. A row the
//! pass must deliver is one whose version in `T` was written by a
//! transaction `x` visible in `T` but not in the previous pass's snapshot
//! `wm`. Until something rewrites it, the row stays at `(x, key)` and the
//! cursor, which only moves forward through that order, reaches it. If
//! another transaction `y` rewrites it during the pass, `y`'s write is not
//! in `T` (the row's version in `T` is `x`'s), so `y` is not visible in `T`:
//! the row now sits at `(y, key)`, which this pass delivers if the cursor
//! has not passed it yet, and which the next pass — whose filter is exactly
//! "`es_txid` not visible in `T`" — delivers otherwise, at its newer
//! version. A row the pass reads is therefore either delivered now or
//! carried by a transaction the next pass selects; the same holds for a row
//! first written during the pass and for a delete (its tombstone carries
//! the deleting transaction). The row filters change nothing here: an
//! incremental pass reads every changed row and flags the ones out of the
//! node's scope as move-outs.
//!
//! The tombstones follow the rows in the same two orders: key order in a full
//! pass, `(es_txid, key)` order over `es_tombstones_pull` in an incremental
//! one (a tombstone rewritten during the pass, by a delete of a re-inserted
//! key, carries a transaction the target snapshot does not see, as above).

use edgesync_core::filter::Scope;
use edgesync_core::value::is_canonical_decimal;
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
    /// Key cursor (key text values) of the last change delivered in `phase`
    /// by a full pass, in key order.
    after: Option<Vec<String>>,
    /// Cursor of the last change delivered in `phase` by an incremental
    /// pass (`wm` set), in `(es_txid, key)` order.
    ///
    /// A field of its own rather than an `es_txid` next to `after`: an older
    /// edgesync, which pages incremental rows in key order after `after`,
    /// ignores it, sees no cursor and starts the phase again, where it
    /// would take a key here as a key-order cursor and skip the changes with
    /// smaller keys not yet delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<TxCursor>,
}

/// A position in `(es_txid, key)` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TxCursor {
    txid: i64,
    /// Key text values, as in [`Token::after`].
    key: Vec<String>,
}

/// Where the rows phase resumes: after a key (a full pass), or after an
/// `(es_txid, key)` position (an incremental pass).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cursor {
    Key(Vec<String>),
    Tx(TxCursor),
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
                since: None,
            }),
            Some(t) => {
                let tok: Token = serde_json::from_str(t).map_err(|e| {
                    Error::new(
                        ErrorKind::Config,
                        format!(
                            "the stored pull token of {} is not a PostgreSQL pull token ({e}); \
                             was the central database changed? re-run init-sync on the edge",
                            table.central
                        ),
                    )
                })?;
                Ok(tok.upgraded())
            }
        }
    }

    /// The token with any cursor that does not fit its pass dropped. An
    /// older edgesync paged an incremental pass's rows and tombstones in
    /// key order: its key cursor in the middle of such a pass means nothing
    /// in `(es_txid, key)` order, so that pass's phase starts again from
    /// the beginning (same target: what it delivers again, the edge skips
    /// as versions it has).
    fn upgraded(mut self) -> Token {
        if self.wm.is_some() {
            self.after = None;
        } else {
            self.since = None;
        }
        self
    }

    /// Where the current phase resumes, in the order of this kind of pass.
    fn cursor(&self) -> Option<Cursor> {
        match self.wm {
            None => self.after.clone().map(Cursor::Key),
            Some(_) => self.since.clone().map(Cursor::Tx),
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
    copy: bool,
) -> Result<PullPage> {
    let tok = Token::parse(token, table)?;
    let doing = format!("pulling from {}", table.central);
    // sync.retention: a position the purge has passed is refused (a full
    // pass, without `wm`, never is), on every page: a node gone quiet in
    // the middle of a pass may have been purged as departed since. Where
    // the node stands is recorded at a pass's first page only (no target
    // yet): it is the pass's `wm` until the pass ends, so the later pages
    // would write the same position again, one write transaction a page.
    crate::retention::admit(pool, node, table, tok.wm.as_deref(), tok.target.is_none())
        .await
        .map_err(|e| e.context(&doing))?;
    // A full pass builds the edge's table: it includes the node's own rows
    // (the edge skips the versions it already has).
    let node = if tok.wm.is_none() { "" } else { node };
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(ctx(&doing))?;
    let page = read_page(&mut tx, node, table, scope, tok, limit.max(1), copy)
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
    copy: bool,
) -> Result<PullPage> {
    // The pass's target is the snapshot of its first page, taken as that
    // page's first statement (later pages have it in their token: one round
    // trip less a page).
    let target = match tok.target.clone() {
        Some(target) => target,
        None => sqlx::query_scalar("SELECT txid_current_snapshot()::text")
            .fetch_one(&mut *conn)
            .await
            .map_err(ctx("taking the snapshot"))?,
    };
    let natives = crate::schema::natives(conn, table).await?;
    let page = Page {
        table,
        natives: &natives,
        node,
        wm: tok.wm.as_deref(),
        scope,
        copy,
    };
    let mut changes = Vec::new();
    let mut cursor = tok.cursor();
    if tok.phase == Phase::Rows {
        let (rows, last) = page.rows(conn, cursor, limit).await?;
        let full = rows.len() == limit;
        changes = rows;
        if full {
            return page.more(changes, target, Phase::Rows, last);
        }
        cursor = None;
    }
    let remaining = limit - changes.len();
    let (tombs, last) = page.tombs(conn, cursor, remaining).await?;
    let full = tombs.len() == remaining;
    changes.extend(tombs);
    if full {
        return page.more(changes, target, Phase::Tombs, last);
    }
    let token = Token {
        wm: Some(target),
        target: None,
        phase: Phase::Rows,
        after: None,
        since: None,
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
    /// Read the rows with a binary COPY where the columns allow it.
    copy: bool,
}

impl Page<'_> {
    fn more(
        &self,
        changes: Vec<Change>,
        target: String,
        phase: Phase,
        last: Option<Cursor>,
    ) -> Result<PullPage> {
        let (after, since) = match last {
            Some(Cursor::Key(k)) => (Some(k), None),
            Some(Cursor::Tx(c)) => (None, Some(c)),
            None => (None, None),
        };
        let token = Token {
            wm: self.wm.map(str::to_string),
            target: Some(target),
            phase,
            after,
            since,
        };
        Ok(PullPage {
            changes,
            token: token.encode()?,
            done: false,
            fingerprint: None,
        })
    }

    /// `es_txid` not visible in the previous pass's snapshot, and not this
    /// node's own write. `bounded`: also `es_txid >= xmin(wm)` (everything
    /// below is visible in `wm`), which starts the index scan of a pass's
    /// first page; a later page starts at its cursor instead.
    fn filter(&self, p: &mut Params, alias: &str, bounded: bool) -> String {
        let node = p.text(self.node);
        let mut f = format!("{alias}.es_origin IS DISTINCT FROM {node}");
        if let Some(wm) = self.wm {
            let wm = p.text(wm);
            if bounded {
                f.push_str(&format!(
                    " AND {alias}.es_txid >= txid_snapshot_xmin({wm}::txid_snapshot)"
                ));
            }
            f.push_str(&format!(
                " AND NOT txid_visible_in_snapshot({alias}.es_txid, {wm}::txid_snapshot)"
            ));
        }
        f
    }

    /// The next rows after `after`, in key order (a full pass) or in
    /// `(es_txid, key)` order (an incremental pass, `wm` set; see the
    /// module doc); with the last row's cursor.
    async fn rows(
        &self,
        conn: &mut PgConnection,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<Change>, Option<Cursor>)> {
        let t = self.table;
        let by_txid = self.wm.is_some();
        // Pages are read with a binary COPY when every column can be
        // decoded from it (see `copy_out`); the values are written into the
        // statement, which COPY needs.
        let copy = self.copy
            && t.columns
                .iter()
                .zip(self.natives)
                .all(|(c, native)| types::binary_readable(c.ty, native));
        let mut p = if copy {
            Params::inline()
        } else {
            Params::default()
        };
        let mut filter = self.filter(&mut p, "t", after.is_none());
        let keys = sql::key_columns(t, Some("t"));
        let mut order = keys.clone();
        if by_txid {
            order.insert(0, "t.es_txid".to_string());
        }
        if let Some(after) = &after {
            let (txid, key) = match after {
                Cursor::Key(k) => (None, k),
                Cursor::Tx(c) => (Some(c.txid), &c.key),
            };
            if txid.is_some() != by_txid {
                return Err(Error::internal("a pull cursor of the other kind of pass"));
            }
            if key.len() != t.key.len() {
                return Err(Error::new(
                    ErrorKind::Config,
                    "the pull cursor does not match the table's key; was the key changed?",
                ));
            }
            let mut bound: Vec<String> = Vec::with_capacity(order.len());
            if let Some(txid) = txid {
                bound.push(p.int(txid));
            }
            for (&i, v) in t.key.iter().zip(key) {
                bound.push(sql::key_value(
                    &p.text(v.as_str()),
                    t.columns[i].ty,
                    &self.natives[i],
                ));
            }
            filter.push_str(&format!(
                " AND ({}) > ({})",
                order.join(", "),
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
            "SELECT {cursor}, {cols}, t.es_ver, t.es_deleted, t.es_hlc, {in_scope}, t.es_txid
               FROM {table} AS t
              WHERE {filter} ORDER BY {order} LIMIT {lim}",
            cursor = cursor.join(", "),
            cols = cols.join(", "),
            table = sql::table_ref(&t.central),
            order = order.join(", "),
        );
        let nk = t.key.len();
        let n = t.columns.len();
        // What each column is called in messages, built once per page.
        let what: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("{}.{}", t.central, c.central))
            .collect();
        if p.is_inline() {
            let (out, last) = copy_rows(conn, &query, t, &what).await?;
            let last = last.map(|(key, txid)| match by_txid {
                true => Cursor::Tx(TxCursor { txid, key }),
                false => Cursor::Key(key),
            });
            return Ok((out, last));
        }
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
        // The cursor: the last row's key text (and transaction).
        let last = match &last_row {
            Some(r) => {
                let key = (0..nk)
                    .map(|j| get(r, j))
                    .collect::<Result<Vec<String>>>()?;
                Some(if by_txid {
                    Cursor::Tx(TxCursor {
                        txid: get(r, nk + n + 4)?,
                        key,
                    })
                } else {
                    Cursor::Key(key)
                })
            }
            None => None,
        };
        Ok((out, last))
    }

    /// The next tombstones after `after`, in key order (a full pass) or in
    /// `(es_txid, key)` order (an incremental pass); with the last one's
    /// cursor.
    async fn tombs(
        &self,
        conn: &mut PgConnection,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<Change>, Option<Cursor>)> {
        let t = self.table;
        let by_txid = self.wm.is_some();
        let mut p = Params::default();
        let tbl = p.text(sql::tbl_id(&t.central));
        let mut filter = format!(
            "ts.tbl = {tbl} AND {}",
            self.filter(&mut p, "ts", after.is_none())
        );
        let encode = |key: &[String]| {
            serde_json::to_string(key)
                .map_err(|e| Error::internal(format!("cannot encode a cursor: {e}")))
        };
        match (&after, by_txid) {
            (None, _) => {}
            (Some(Cursor::Key(k)), false) => {
                filter.push_str(&format!(" AND ts.key > {}::jsonb", p.text(encode(k)?)));
            }
            (Some(Cursor::Tx(c)), true) => {
                let txid = p.int(c.txid);
                let key = p.text(encode(&c.key)?);
                filter.push_str(&format!(
                    " AND (ts.es_txid, ts.key) > ({txid}, {key}::jsonb)"
                ));
            }
            _ => return Err(Error::internal("a pull cursor of the other kind of pass")),
        }
        let order = if by_txid {
            "ts.es_txid, ts.key"
        } else {
            "ts.key"
        };
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
            "SELECT ts.key::text, {keys}, ts.es_ver, ts.es_hlc, ts.es_txid FROM {tombs} AS ts
              WHERE {filter} ORDER BY {order} LIMIT {lim}",
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
            let key: Vec<String> = serde_json::from_str(&text).map_err(|e| {
                Error::value(format!(
                    "tombstone key {text} is not a JSON array of text: {e}"
                ))
            })?;
            last = Some(if by_txid {
                Cursor::Tx(TxCursor {
                    txid: get(r, 3 + nk)?,
                    key,
                })
            } else {
                Cursor::Key(key)
            });
        }
        Ok((out, last))
    }
}

/// The rows of a page, read with a binary COPY of `query` (the page's
/// `SELECT`, parameters written in): the same changes the query path
/// decodes, and the last row's key text and `es_txid` for the cursor.
async fn copy_rows(
    conn: &mut PgConnection,
    query: &str,
    t: &TableMapping,
    what: &[String],
) -> Result<(Vec<Change>, Option<(Vec<String>, i64)>)> {
    use futures_util::TryStreamExt;
    let copy = format!("COPY ({query}) TO STDOUT (FORMAT binary)");
    let mut stream = conn
        .copy_out_raw(&copy)
        .await
        .map_err(ctx("reading changed rows"))?;
    let mut page = CopyPage {
        t,
        what,
        tuples: crate::copy_out::Tuples::default(),
        last: vec![Vec::new(); t.key.len()],
        last_txid: 0,
        out: Vec::new(),
    };
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(ctx("reading changed rows"))?
    {
        if let Err(e) = page.decode(&chunk) {
            // Read the rest of the page: a connection left in the middle of
            // a COPY cannot run the transaction's ROLLBACK, and would go
            // back to the pool unusable.
            while let Ok(Some(_)) = stream.try_next().await {}
            return Err(e);
        }
    }
    page.tuples.finish()?;
    if page.out.is_empty() {
        return Ok((page.out, None));
    }
    let cursor = page
        .last
        .into_iter()
        .map(|b| {
            String::from_utf8(b).map_err(|_| Error::internal("a pull cursor key text is not UTF-8"))
        })
        .collect::<Result<Vec<String>>>()?;
    Ok((page.out, Some((cursor, page.last_txid))))
}

/// A page as its binary COPY arrives (see [`copy_rows`]).
struct CopyPage<'a> {
    t: &'a TableMapping,
    /// What each column is called in messages.
    what: &'a [String],
    tuples: crate::copy_out::Tuples,
    /// The last row's key text, buffers reused row to row.
    last: Vec<Vec<u8>>,
    /// The last row's `es_txid`.
    last_txid: i64,
    out: Vec<Change>,
}

impl CopyPage<'_> {
    /// Decode the complete tuples a chunk completes.
    fn decode(&mut self, chunk: &[u8]) -> Result<()> {
        let t = self.t;
        let nk = t.key.len();
        let n = t.columns.len();
        // cursor texts, columns, es_ver, es_deleted, es_hlc, in scope, es_txid
        let width = nk + n + 5;
        let tuples = &mut self.tuples;
        tuples.push(chunk)?;
        while tuples.next_tuple()? {
            if tuples.len() != width {
                return Err(Error::internal(format!(
                    "a changed row in binary COPY has {} fields, not {width}",
                    tuples.len()
                )));
            }
            let mut values = Vec::with_capacity(n);
            for (k, c) in t.columns.iter().enumerate() {
                values.push(types::decode_binary(
                    tuples.field(nk + k),
                    c.ty,
                    &self.what[k],
                )?);
            }
            let version = copy_int(tuples.field(nk + n), "es_ver")?;
            let deleted = match tuples.field(nk + n + 1) {
                Some([b]) => *b != 0,
                _ => {
                    return Err(Error::internal(
                        "es_deleted in binary COPY is not a boolean",
                    ))
                }
            };
            let hlc = copy_int(tuples.field(nk + n + 2), "es_hlc")?;
            let in_scope = copy_int(tuples.field(nk + n + 3), "the scope flag")?;
            self.last_txid = copy_int(tuples.field(nk + n + 4), "es_txid")?;
            for (j, buf) in self.last.iter_mut().enumerate() {
                buf.clear();
                buf.extend_from_slice(tuples.field(j).unwrap_or_default());
            }
            tuples.consume();
            self.out.push(if in_scope == 0 {
                Change::moved_out(t.key_of(&values), version, hlc)
            } else {
                Change {
                    key: t.key_of(&values),
                    values: Some(values),
                    version,
                    deleted,
                    base: None,
                    hlc,
                }
            });
        }
        Ok(())
    }
}

/// A `bigint` or `integer` field of a binary COPY.
fn copy_int(b: Option<&[u8]>, name: &str) -> Result<i64> {
    if let Some(b) = b {
        if let Ok(b8) = <[u8; 8]>::try_from(b) {
            return Ok(i64::from_be_bytes(b8));
        }
        if let Ok(b4) = <[u8; 4]>::try_from(b) {
            return Ok(i32::from_be_bytes(b4).into());
        }
    }
    Err(Error::internal(format!(
        "{name} of a changed row in binary COPY is not an integer"
    )))
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
    fn tokens_round_trip() {
        let t = Token {
            wm: Some("10:12:11".into()),
            target: None,
            phase: Phase::Tombs,
            after: Some(vec!["1.10".into()]),
            since: None,
        };
        let s = t.encode().expect("encode");
        assert!(s.contains("\"phase\":\"tombs\""), "{s}");
        assert!(!s.contains("since"), "{s}");
        assert_eq!(serde_json::from_str::<Token>(&s).expect("decode"), t);
        let t = Token {
            phase: Phase::Rows,
            after: None,
            since: Some(TxCursor {
                txid: 5000,
                key: vec!["7".into()],
            }),
            ..t
        };
        let s = t.encode().expect("encode");
        assert!(
            s.contains("\"since\":{\"txid\":5000,\"key\":[\"7\"]}"),
            "{s}"
        );
        assert_eq!(serde_json::from_str::<Token>(&s).expect("decode"), t);
    }

    fn upgraded(json: &str) -> Token {
        serde_json::from_str::<Token>(json)
            .expect("decode")
            .upgraded()
    }

    #[test]
    fn an_older_token_in_an_incremental_pass_restarts_its_phase() {
        // Written by an older edgesync mid-pass: a key-order cursor.
        let t = upgraded(r#"{"wm":"10:12:11","target":"20:20:","phase":"rows","after":["7"]}"#);
        assert_eq!(t.after, None);
        assert_eq!(t.cursor(), None);
        assert_eq!(t.target.as_deref(), Some("20:20:"));
        assert_eq!(t.wm.as_deref(), Some("10:12:11"));
        // Its initial load and tombstone cursors are still key cursors.
        let t = upgraded(r#"{"wm":null,"target":"20:20:","phase":"rows","after":["7"]}"#);
        assert_eq!(t.cursor(), Some(Cursor::Key(vec!["7".into()])));
        // An incremental pass's tombstones went in key order too: that phase
        // starts again.
        let t = upgraded(r#"{"wm":"10:12:11","target":"20:20:","phase":"tombs","after":["7"]}"#);
        assert_eq!(t.after, None);
        assert_eq!(t.cursor(), None);
        assert_eq!(t.phase, Phase::Tombs);
        let t = upgraded(r#"{"wm":null,"target":"20:20:","phase":"tombs","after":["7"]}"#);
        assert_eq!(t.cursor(), Some(Cursor::Key(vec!["7".into()])));
        let t = upgraded(
            r#"{"wm":"10:12:11","target":"20:20:","phase":"tombs","after":null,
                "since":{"txid":15,"key":["7"]}}"#,
        );
        assert_eq!(
            t.cursor(),
            Some(Cursor::Tx(TxCursor {
                txid: 15,
                key: vec!["7".into()]
            }))
        );
        // A current one keeps its (es_txid, key) cursor.
        let t = upgraded(
            r#"{"wm":"10:12:11","target":"20:20:","phase":"rows","after":null,
                "since":{"txid":15,"key":["7"]}}"#,
        );
        assert_eq!(
            t.cursor(),
            Some(Cursor::Tx(TxCursor {
                txid: 15,
                key: vec!["7".into()]
            }))
        );
    }
}
