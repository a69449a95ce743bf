//! The raw paths every figure is compared with, measured in the same run:
//!
//! - load: the central's own bulk read (PostgreSQL `COPY ... TO STDOUT`,
//!   MariaDB a streamed `SELECT`) feeding a rusqlite prepared `INSERT` of the
//!   same rows in one transaction;
//! - push: the same rows read from the edge file and bulk-loaded into a table
//!   of the same shape and key (PostgreSQL `COPY ... FROM STDIN`, MariaDB
//!   `LOAD DATA LOCAL INFILE`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{StreamExt, TryStreamExt};
use mysql_async::prelude::Queryable;
use rusqlite::types::Null;

use crate::central::Conn;

/// The columns of the benchmark table, in order.
pub const COLUMNS: &str = "id, name, note, qty, price, updated_at, payload";

/// The unsynced SQLite table the raw load writes to: the user columns of the
/// edge table, declared as edgesync declares them.
pub const SQLITE_TABLE: &str = "CREATE TABLE items (
    id INTEGER NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    note TEXT,
    qty INTEGER NOT NULL,
    price DECIMAL_TEXT(12,2) NOT NULL,
    updated_at TIMESTAMPTZ_TEXT NOT NULL,
    payload BLOB)";

/// Open a SQLite file the way edgesync opens edge files (WAL,
/// `synchronous = FULL`).
pub fn open_sqlite(path: &Path) -> Result<rusqlite::Connection> {
    let c =
        rusqlite::Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.busy_timeout(Duration::from_secs(30))?;
    Ok(c)
}

/// One row on its way into SQLite.
struct Sink<'c> {
    stmt: rusqlite::Statement<'c>,
    rows: u64,
}

impl Sink<'_> {
    /// Insert one COPY text line (tab-separated, `\N` = NULL, backslash
    /// escapes, bytea as `\\x<hex>`).
    fn copy_line(&mut self, line: &[u8], scratch: &mut Vec<u8>) -> Result<()> {
        let mut fields = line.split(|&b| b == b'\t');
        for i in 1..=7 {
            let f = fields.next().context("a COPY line with too few fields")?;
            if f == b"\\N" {
                self.stmt.raw_bind_parameter(i, Null)?;
                continue;
            }
            match i {
                1 | 4 => {
                    let n: i64 = std::str::from_utf8(f)?.parse()?;
                    self.stmt.raw_bind_parameter(i, n)?;
                }
                7 => {
                    unescape(f, scratch);
                    let hex = scratch
                        .strip_prefix(b"\\x")
                        .context("bytea not in hex format")?;
                    let bytes = unhex(hex)?;
                    self.stmt.raw_bind_parameter(i, bytes.as_slice())?;
                }
                _ => {
                    unescape(f, scratch);
                    self.stmt
                        .raw_bind_parameter(i, std::str::from_utf8(scratch)?)?;
                }
            }
        }
        self.stmt.raw_execute()?;
        self.rows += 1;
        Ok(())
    }

    /// Insert one text-protocol MySQL row.
    fn my_row(&mut self, row: &mysql_async::Row) -> Result<()> {
        use mysql_async::Value as My;
        for i in 1..=7 {
            match row.as_ref(i - 1) {
                None | Some(My::NULL) => self.stmt.raw_bind_parameter(i, Null)?,
                Some(My::Bytes(b)) => match i {
                    1 | 4 => {
                        let n: i64 = std::str::from_utf8(b)?.parse()?;
                        self.stmt.raw_bind_parameter(i, n)?;
                    }
                    7 => self.stmt.raw_bind_parameter(i, b.as_slice())?,
                    _ => self.stmt.raw_bind_parameter(i, std::str::from_utf8(b)?)?,
                },
                Some(My::Int(n)) => self.stmt.raw_bind_parameter(i, *n)?,
                Some(other) => bail!("unexpected value {other:?} in column {i}"),
            }
        }
        self.stmt.raw_execute()?;
        self.rows += 1;
        Ok(())
    }
}

/// COPY text unescaping of one field into `out`.
fn unescape(f: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < f.len() {
        let b = f[i];
        if b == b'\\' && i + 1 < f.len() {
            i += 1;
            out.push(match f[i] {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'b' => 8,
                b'f' => 12,
                b'v' => 11,
                other => other,
            });
        } else {
            out.push(b);
        }
        i += 1;
    }
}

fn unhex(hex: &[u8]) -> Result<Vec<u8>> {
    fn nibble(b: u8) -> Result<u8> {
        Ok(match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => bail!("bad hex digit {b}"),
        })
    }
    hex.chunks(2)
        .map(|p| match p {
            [h, l] => Ok(nibble(*h)? << 4 | nibble(*l)?),
            _ => bail!("odd hex length"),
        })
        .collect()
}

/// The raw initial load: every central row into an empty SQLite table in one
/// transaction. Returns the rows loaded and the time taken.
pub async fn load(central: &mut Conn, sqlite: &Path) -> Result<(u64, Duration)> {
    let mut db = open_sqlite(sqlite)?;
    db.execute_batch(SQLITE_TABLE)?;
    let started = Instant::now();
    let tx = db.transaction()?;
    let rows = {
        let mut sink = Sink {
            stmt: tx.prepare(&format!(
                "INSERT INTO items ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))?,
            rows: 0,
        };
        match central {
            Conn::Pg(c) => {
                let mut stream = c
                    .copy_out_raw(&format!("COPY items ({COLUMNS}) TO STDOUT"))
                    .await?;
                let mut pending: Vec<u8> = Vec::with_capacity(1 << 16);
                let mut scratch = Vec::with_capacity(256);
                while let Some(chunk) = stream.try_next().await? {
                    pending.extend_from_slice(&chunk);
                    let mut start = 0;
                    while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
                        sink.copy_line(&pending[start..start + end], &mut scratch)?;
                        start += end + 1;
                    }
                    pending.drain(..start);
                }
                if !pending.is_empty() {
                    bail!("COPY ended inside a line");
                }
            }
            Conn::My(c) => {
                let mut result = c.query_iter(format!("SELECT {COLUMNS} FROM items")).await?;
                let mut failed: Option<anyhow::Error> = None;
                result
                    .for_each(|row| {
                        if failed.is_none() {
                            if let Err(e) = sink.my_row(&row) {
                                failed = Some(e);
                            }
                        }
                    })
                    .await?;
                if let Some(e) = failed {
                    return Err(e);
                }
            }
        }
        sink.rows
    };
    tx.commit()?;
    Ok((rows, started.elapsed()))
}

/// Append `s` to a tab-separated text line with COPY / LOAD DATA escapes.
fn escaped(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
}

/// The raw push: rows `from..=to` read from the edge file and bulk-loaded
/// into the empty `items_raw` (same shape and key). Returns the rows loaded
/// and the time taken.
pub async fn push(central: &mut Conn, edge: &Path, from: u64, to: u64) -> Result<(u64, Duration)> {
    use rusqlite::types::ValueRef;
    central.exec("TRUNCATE TABLE items_raw").await?;
    let db = open_sqlite(edge)?;
    let mysql = matches!(central, Conn::My(_));
    let started = Instant::now();
    // Read and format (the same work an engine push does on the edge side).
    let mut chunks: Vec<bytes::Bytes> = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut rows = 0u64;
    {
        let mut stmt = db.prepare(&format!(
            "SELECT {COLUMNS} FROM items WHERE id BETWEEN ?1 AND ?2"
        ))?;
        let mut q = stmt.query([from as i64, to as i64])?;
        while let Some(r) = q.next()? {
            for i in 0..7 {
                if i > 0 {
                    buf.push(b'\t');
                }
                match r.get_ref(i)? {
                    ValueRef::Null => buf.extend_from_slice(b"\\N"),
                    ValueRef::Integer(n) => buf.extend_from_slice(n.to_string().as_bytes()),
                    ValueRef::Real(f) => buf.extend_from_slice(f.to_string().as_bytes()),
                    ValueRef::Text(t) if mysql && i == 5 => {
                        // MariaDB takes the UTC instant without its offset.
                        let t = match t.len().checked_sub(6) {
                            Some(cut) if matches!(t[cut], b'+' | b'-') => &t[..cut],
                            _ => t,
                        };
                        escaped(&mut buf, t)
                    }
                    ValueRef::Text(t) => escaped(&mut buf, t),
                    ValueRef::Blob(b) => {
                        if !mysql {
                            buf.extend_from_slice(b"\\\\x");
                        }
                        hex(&mut buf, b)
                    }
                }
            }
            buf.push(b'\n');
            rows += 1;
            if buf.len() >= 1 << 20 {
                chunks.push(bytes::Bytes::from(std::mem::take(&mut buf)));
                buf.reserve(1 << 20);
            }
        }
    }
    if !buf.is_empty() {
        chunks.push(bytes::Bytes::from(buf));
    }
    let loaded = match central {
        Conn::Pg(c) => {
            let mut copy = c
                .copy_in_raw(&format!("COPY items_raw ({COLUMNS}) FROM STDIN"))
                .await?;
            for chunk in chunks {
                copy.send(chunk).await?;
            }
            copy.finish().await?
        }
        Conn::My(c) => {
            c.set_infile_handler(async move {
                Ok(futures_util::stream::iter(chunks.into_iter().map(Ok)).boxed())
            });
            let mut tx = c.start_transaction(Default::default()).await?;
            tx.query_drop(
                "LOAD DATA LOCAL INFILE 'edge-rows' INTO TABLE items_raw CHARACTER SET utf8mb4 \
                 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' \
                 (id, name, note, qty, price, updated_at, @payload) \
                 SET payload = UNHEX(@payload)",
            )
            .await?;
            let n = tx.affected_rows();
            tx.commit().await?;
            n
        }
    };
    let elapsed = started.elapsed();
    if loaded != rows {
        bail!("the raw push loaded {loaded} of {rows} rows");
    }
    Ok((rows, elapsed))
}
