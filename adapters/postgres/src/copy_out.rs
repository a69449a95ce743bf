//! Reading a binary `COPY (SELECT ...) TO STDOUT (FORMAT binary)` stream,
//! tuple by tuple.
//!
//! Why a full pull pass reads this way: on the query path sqlx builds a row
//! object per row (its own allocation, its metadata, a type check per
//! column) before a value is decoded, about half of the reading thread's
//! time in an initial load (perf, `benches/README.md`). A binary `COPY`
//! delivers the same values in the same binary format, which are decoded
//! straight from the received bytes ([`crate::types::decode_binary`]).
//!
//! The format (PostgreSQL's `COPY` documentation, "Binary Format"): an
//! 11-byte signature, a 32-bit flags word, a 32-bit header extension length
//! and that many bytes; then per tuple a 16-bit field count followed by, per
//! field, a 32-bit length (`-1` = NULL) and that many bytes; then a 16-bit
//! `-1` trailer. All integers are big-endian. The server cuts the stream
//! into messages as it likes (the header shares the first row's), so bytes
//! are buffered until a tuple is complete.

use edgesync_core::{Error, Result};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Tuples from the chunks of a binary `COPY` stream.
#[derive(Debug, Default)]
pub(crate) struct Tuples {
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    header_done: bool,
    trailer_seen: bool,
    /// The current tuple's fields, as ranges of `buf` (`None` = NULL).
    fields: Vec<Option<(usize, usize)>>,
    /// Length of the current tuple, consumed by [`Tuples::consume`].
    current: usize,
}

impl Tuples {
    /// Append a received chunk.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<()> {
        if self.trailer_seen && !chunk.is_empty() {
            return Err(Error::internal("binary COPY data after its trailer"));
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// Parse the next complete tuple: `Ok(true)` when one is ready (read it
    /// with [`Tuples::field`], then [`Tuples::consume`] it), `Ok(false)`
    /// when more bytes are needed or the trailer was reached.
    pub(crate) fn next_tuple(&mut self) -> Result<bool> {
        if !self.header_done && !self.header()? {
            return Ok(false);
        }
        if self.trailer_seen {
            return Ok(false);
        }
        let data = &self.buf[self.pos..];
        let Some(count) = data.get(..2) else {
            return Ok(false);
        };
        let count = i16::from_be_bytes([count[0], count[1]]);
        if count == -1 {
            self.trailer_seen = true;
            self.pos += 2;
            return Ok(false);
        }
        let count = usize::try_from(count)
            .map_err(|_| Error::internal(format!("binary COPY tuple with {count} fields")))?;
        self.fields.clear();
        let mut at = 2;
        for _ in 0..count {
            let Some(len) = data.get(at..at + 4) else {
                return Ok(false);
            };
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            at += 4;
            if len == -1 {
                self.fields.push(None);
                continue;
            }
            let len = usize::try_from(len)
                .map_err(|_| Error::internal(format!("binary COPY field of length {len}")))?;
            if data.len() < at + len {
                return Ok(false);
            }
            self.fields.push(Some((self.pos + at, self.pos + at + len)));
            at += len;
        }
        self.current = at;
        Ok(true)
    }

    /// The current tuple's field count.
    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    /// Field `i` of the current tuple (`None` = NULL, or no such field).
    pub(crate) fn field(&self, i: usize) -> Option<&[u8]> {
        self.fields
            .get(i)
            .copied()
            .flatten()
            .map(|(a, b)| &self.buf[a..b])
    }

    /// Done with the current tuple.
    pub(crate) fn consume(&mut self) {
        self.pos += self.current;
        self.current = 0;
        self.fields.clear();
    }

    /// The stream ended: it must have ended with its trailer, nothing after.
    pub(crate) fn finish(&self) -> Result<()> {
        if !self.trailer_seen || self.pos != self.buf.len() {
            return Err(Error::internal(
                "a binary COPY stream ended in the middle of its data",
            ));
        }
        Ok(())
    }

    fn header(&mut self) -> Result<bool> {
        let data = &self.buf[self.pos..];
        let fixed = SIGNATURE.len() + 8;
        if data.len() < fixed {
            return Ok(false);
        }
        if &data[..SIGNATURE.len()] != SIGNATURE {
            return Err(Error::internal(
                "a binary COPY stream without its signature",
            ));
        }
        let ext = &data[SIGNATURE.len() + 4..fixed];
        let ext = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]) as usize;
        if data.len() < fixed + ext {
            return Ok(false);
        }
        self.pos += fixed + ext;
        self.header_done = true;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(tuples: &[Vec<Option<&[u8]>>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&3u32.to_be_bytes());
        out.extend_from_slice(b"ext");
        for t in tuples {
            out.extend_from_slice(&(t.len() as i16).to_be_bytes());
            for f in t {
                match f {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(b) => {
                        out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        out.extend_from_slice(b);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    fn read_all(data: &[u8], chunk: usize) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
        let mut t = Tuples::default();
        let mut out = Vec::new();
        for c in data.chunks(chunk) {
            t.push(c)?;
            while t.next_tuple()? {
                out.push(
                    (0..t.len())
                        .map(|i| t.field(i).map(<[u8]>::to_vec))
                        .collect(),
                );
                t.consume();
            }
        }
        t.finish()?;
        Ok(out)
    }

    #[test]
    fn tuples_survive_any_cut_of_the_stream() {
        let tuples: Vec<Vec<Option<&[u8]>>> = vec![
            vec![Some(b"1"), None, Some(b"")],
            vec![Some(b"a longer field"), Some(&[0, 0xff, 1]), None],
            vec![],
        ];
        let data = stream(&tuples);
        let want: Vec<Vec<Option<Vec<u8>>>> = tuples
            .iter()
            .map(|t| t.iter().map(|f| f.map(<[u8]>::to_vec)).collect())
            .collect();
        for chunk in 1..=data.len() {
            assert_eq!(
                read_all(&data, chunk).expect("read"),
                want,
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn a_cut_short_or_foreign_stream_is_an_error() {
        let data = stream(&[vec![Some(b"x")]]);
        for end in 0..data.len() {
            assert!(read_all(&data[..end], 4).is_err(), "cut at {end}");
        }
        let mut bad = data.clone();
        bad[0] = b'X';
        assert!(read_all(&bad, 64).is_err());
        let mut extra = data;
        extra.push(0);
        assert!(read_all(&extra, 64).is_err());
        let mut neg = stream(&[]);
        let at = neg.len() - 2;
        neg.splice(at.., [0x00, 0x01, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff]);
        assert!(read_all(&neg, 64).is_err(), "a negative field length");
    }
}
