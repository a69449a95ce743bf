//! The wire protocol between an edge (`central.url = "https://..."`) and a
//! hub (`edgesync serve`): endpoints, headers, request and answer bodies,
//! compression, and the mapping between HTTP statuses and
//! [`edgesync_core::ErrorKind`].
//!
//! Bodies are JSON (the `Value` model's own serde form, so values cross
//! exactly as in direct mode), compressed with zstd or gzip in either
//! direction when they are worth it (`Content-Encoding` / `Accept-Encoding`;
//! zstd preferred: it is faster and tighter on row data). JSON is the only
//! body format; a binary one has not been needed yet. Everything a client
//! sends is decoded here by [`decode_body`] and the `decode_*` functions,
//! which never panic on hostile input (a fuzz pass in the test suite holds
//! them to that) and bound what they inflate.

use std::io::Read;

use edgesync_core::central::NodeProgress;
use edgesync_core::{
    ConflictPolicy, DeleteMode, Direction, ErrorKind, PushBatch, TableMapping, TableSchema,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Protocol version prefix of every path.
pub const PREFIX: &str = "/v1";
/// `GET`: is the hub up and its central reachable (no credential needed).
pub const HEALTH: &str = "/v1/health";
/// `GET`: Prometheus counters (no credential, no node names).
pub const METRICS: &str = "/v1/metrics";
/// `POST`: who the credential names, and the tables it may sync.
pub const REGISTER: &str = "/v1/register";
/// `POST`: the hub's view of one table ([`DescribeRequest`]).
pub const DESCRIBE: &str = "/v1/describe";
/// `POST`: one push batch ([`PushRequest`] → `PushResult`).
pub const PUSH: &str = "/v1/push";
/// `POST`: one pull page ([`PullRequest`] → `PullPage`).
pub const PULL: &str = "/v1/pull";
/// `POST`: this node's entries of the conflict log ([`ConflictsRequest`]).
pub const CONFLICTS: &str = "/v1/conflicts";
/// `POST`: this node's push progress (`[Progress]`).
pub const PROGRESS: &str = "/v1/progress";

/// `Authorization: EdgeSync1 <token id>`.
pub const AUTH_SCHEME: &str = "EdgeSync1";
/// `Authorization: Bearer <jwt>` (`[serve.jwt]`); signed like the rest.
pub const BEARER: &str = "Bearer";
/// Unix seconds when the request was signed.
pub const H_TIMESTAMP: &str = "x-edgesync-timestamp";
/// A random value used once (32 hex digits).
pub const H_NONCE: &str = "x-edgesync-nonce";
/// Hex HMAC-SHA256 of the signing string (see [`crate::hub::auth`]).
pub const H_SIGNATURE: &str = "x-edgesync-signature";
/// `Content-Encoding: gzip`.
pub const GZIP: &str = "gzip";
/// `Content-Encoding: zstd` (RFC 8878), preferred when both sides speak it.
pub const ZSTD: &str = "zstd";
/// The `Accept-Encoding` an edge sends.
pub const ACCEPT: &str = "zstd, gzip";
/// zstd level: fast (a hub compresses every large page it serves) and
/// still several times smaller than JSON on row data.
const ZSTD_LEVEL: i32 = 3;
/// Bodies at least this big are compressed when the peer accepts it.
pub const COMPRESS_ABOVE: usize = 1024;

/// A push: the table by its central name as the hub serves it, and a
/// batch. The node comes from the credential; `node` here must match it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The pushing node (must be the credential's).
    pub node: String,
    /// Must be the credential's tenant when given.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Central table name as served by `describe`/`register`.
    pub table: String,
    /// [`layout`] of the mapping the edge reads rows with.
    pub layout: String,
    /// The batch.
    pub batch: PushBatch,
}

/// A pull page request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// The pulling node (must be the credential's).
    pub node: String,
    /// Must be the credential's tenant when given.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Central table name as served.
    pub table: String,
    /// [`layout`] of the edge's mapping.
    pub layout: String,
    /// Resume token of the previous page (`None`: a new pass).
    #[serde(default)]
    pub token: Option<String>,
    /// Most rows wanted; the hub caps it at `serve.max_page_rows`.
    pub limit: usize,
}

/// `describe`: a table by the name in the edge's config (edge or central
/// name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribeRequest {
    /// The table.
    pub table: String,
}

/// The answer to `describe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DescribeResponse {
    /// The hub's view: the mapped columns (central names and types) and key;
    /// `None` when the hub does not sync such a table for this node.
    pub schema: Option<TableSchema>,
}

/// `conflicts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictsRequest {
    /// Settled ones too.
    pub all: bool,
    /// Most entries.
    pub limit: usize,
}

/// One table a node may sync, as the hub's own config maps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableInfo {
    /// Central name, as push and pull requests name the table.
    pub central: String,
    /// The hub config's edge name.
    pub edge: String,
    /// The served schema (see [`DescribeResponse`]).
    pub schema: TableSchema,
    /// Which way it flows.
    pub direction: Direction,
    /// Delete mode.
    pub deletes: DeleteMode,
    /// Conflict policy (the hub's; it decides conflicts).
    pub conflict: ConflictPolicy,
    /// Its [`layout`].
    pub layout: String,
    /// Whether a row filter narrows what this node sees.
    pub filtered: bool,
}

/// The answer to `register`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The node the credential names.
    pub node: String,
    /// Its tenant.
    pub tenant: Option<String>,
    /// The tables it may sync.
    pub tables: Vec<TableInfo>,
    /// Most rows the hub returns per pull page.
    pub max_page_rows: usize,
    /// Largest request body the hub accepts.
    pub max_body_bytes: usize,
}

/// One line of `progress` ([`NodeProgress`] on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Node.
    pub node: String,
    /// Central table.
    pub table: String,
    /// Highest edge sequence applied.
    pub hi: i64,
    /// Last push.
    pub last_push: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<NodeProgress> for Progress {
    fn from(p: NodeProgress) -> Self {
        Progress {
            node: p.node,
            table: p.table,
            hi: p.hi,
            last_push: p.last_push,
        }
    }
}

impl From<Progress> for NodeProgress {
    fn from(p: Progress) -> Self {
        NodeProgress {
            node: p.node,
            table: p.table,
            hi: p.hi,
            last_push: p.last_push,
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// The [`ErrorKind`] (`ErrorKind::as_str`) the client should raise.
    pub kind: String,
    /// A stable reason (`bad_signature`, `forbidden_node`, ...).
    pub code: String,
}

/// The fingerprint of a mapping's row layout: central column names and
/// types in order, the key, the delete mode. An edge whose layout differs
/// from the hub's would read or write rows column-shifted, so the hub
/// refuses it (409) instead.
pub fn layout(m: &TableMapping) -> String {
    let mut text = String::new();
    for c in &m.columns {
        text.push_str(&c.central.to_ascii_lowercase());
        text.push(':');
        text.push_str(&c.ty.to_string());
        text.push(';');
    }
    text.push_str("key=");
    for k in &m.key {
        text.push_str(&k.to_string());
        text.push(',');
    }
    text.push_str(match m.deletes {
        DeleteMode::Soft => ";soft",
        DeleteMode::Hard => ";hard",
    });
    crate::hub::auth::sha256_hex(text.as_bytes())
}

/// The schema a hub serves for a mapping: its columns under their central
/// names, in mapping order, with the key as primary key.
pub fn served_schema(m: &TableMapping) -> TableSchema {
    TableSchema {
        name: m.central.clone(),
        columns: m
            .columns
            .iter()
            .map(|c| edgesync_core::Column {
                name: c.central.clone(),
                ty: Ok(c.ty),
                nullable: c.nullable,
                has_default: false,
            })
            .collect(),
        primary_key: m.key_columns().map(|c| c.central.clone()).collect(),
    }
}

/// The status an [`ErrorKind`] from the central is answered with.
pub fn status_of_kind(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::Constraint | ErrorKind::Value => 422,
        ErrorKind::Config | ErrorKind::Schema => 409,
        ErrorKind::Connection | ErrorKind::Retryable => 503,
        ErrorKind::Auth => 403,
        _ => 500,
    }
}

/// The [`ErrorKind`] named by `name` (`ErrorKind::as_str`).
pub fn kind_from_str(name: &str) -> Option<ErrorKind> {
    [
        ErrorKind::Config,
        ErrorKind::Connection,
        ErrorKind::Auth,
        ErrorKind::Schema,
        ErrorKind::Constraint,
        ErrorKind::Value,
        ErrorKind::Retryable,
        ErrorKind::Corrupt,
        ErrorKind::Database,
        ErrorKind::Internal,
        ErrorKind::Resnapshot,
    ]
    .into_iter()
    .find(|k| k.as_str() == name)
}

/// The kind a client raises for an answer with this status and no (or an
/// unreadable) error body.
pub fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Auth,
        408 | 429 | 502..=504 => ErrorKind::Retryable,
        409 => ErrorKind::Schema,
        413 | 422 => ErrorKind::Value,
        400..=499 => ErrorKind::Config,
        _ => ErrorKind::Database,
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Larger than allowed once inflated (413).
    TooLarge,
    /// Not what the endpoint takes (400), with the reason.
    Invalid(String),
    /// A `Content-Encoding` this side does not speak (415).
    Unsupported(String),
}

/// Read at most `max` bytes out of a decompressor; more is
/// [`DecodeError::TooLarge`], whatever the compressed size was (a small
/// "zip bomb" inflates no further than `max + 1` bytes).
fn inflate(reader: impl Read, max: usize, what: &str) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Invalid(format!("bad {what} body: {e}")))?;
    if out.len() > max {
        return Err(DecodeError::TooLarge);
    }
    Ok(out)
}

/// Undo `Content-Encoding` (identity, gzip or zstd), inflating at most
/// `max` bytes.
pub fn decode_body(encoding: Option<&str>, raw: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => {
            if raw.len() > max {
                Err(DecodeError::TooLarge)
            } else {
                Ok(raw.to_vec())
            }
        }
        Some(GZIP) => inflate(flate2::read::GzDecoder::new(raw), max, GZIP),
        Some(ZSTD) => {
            let decoder = zstd::stream::read::Decoder::new(raw)
                .map_err(|e| DecodeError::Invalid(format!("bad zstd body: {e}")))?;
            inflate(decoder, max, ZSTD)
        }
        Some(other) => Err(DecodeError::Unsupported(format!(
            "unsupported Content-Encoding {other:?} (use zstd, gzip or none)"
        ))),
    }
}

/// Parse a JSON request body.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(body).map_err(|e| DecodeError::Invalid(format!("bad request body: {e}")))
}

/// Check a decoded push request's shape against the hub's mapping: the
/// number of values per change and of bases. The adapter checks types.
pub fn check_push_shape(req: &PushRequest, m: &TableMapping) -> Result<(), DecodeError> {
    let b = &req.batch;
    if !b.bases.is_empty() && b.bases.len() != b.changes.len() {
        return Err(DecodeError::Invalid(format!(
            "{} bases for {} changes",
            b.bases.len(),
            b.changes.len()
        )));
    }
    let mut last = i64::MIN;
    for (i, c) in b.changes.iter().enumerate() {
        if c.key.len() != m.key.len() {
            return Err(DecodeError::Invalid(format!(
                "change {i}: {} key values for a {}-column key",
                c.key.len(),
                m.key.len()
            )));
        }
        if let Some(v) = &c.values {
            if v.len() != m.columns.len() {
                return Err(DecodeError::Invalid(format!(
                    "change {i}: {} values for {} columns",
                    v.len(),
                    m.columns.len()
                )));
            }
            if !m.key_of(v).iter().zip(&c.key).all(|(a, b)| a.same_as(b)) {
                return Err(DecodeError::Invalid(format!(
                    "change {i}: the key does not match the row's key columns"
                )));
            }
        }
        if let Some(Some(base)) = b.bases.get(i) {
            if base.len() != m.columns.len() {
                return Err(DecodeError::Invalid(format!(
                    "change {i}: a base of {} values for {} columns",
                    base.len(),
                    m.columns.len()
                )));
            }
        }
        if c.version < last || c.version > b.hi {
            return Err(DecodeError::Invalid(format!(
                "change {i}: sequence {} out of order (batch hi {})",
                c.version, b.hi
            )));
        }
        last = c.version;
    }
    Ok(())
}

/// Compress `body` when it is worth it, with zstd if the peer accepts it,
/// else gzip if it accepts that; the bytes and the `Content-Encoding` to
/// send.
pub fn encode_body(body: Vec<u8>, accept: Option<&str>) -> (Vec<u8>, Option<&'static str>) {
    if body.len() < COMPRESS_ABOVE {
        return (body, None);
    }
    if accepts(accept, ZSTD) {
        if let Ok(z) = zstd::stream::encode_all(&body[..], ZSTD_LEVEL) {
            return (z, Some(ZSTD));
        }
    }
    if !accepts(accept, GZIP) {
        return (body, None);
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let ok = std::io::Write::write_all(&mut enc, &body).is_ok();
    match enc.finish() {
        Ok(z) if ok => (z, Some(GZIP)),
        _ => (body, None),
    }
}

/// Does an `Accept-Encoding` value accept gzip (and not with `q=0`)?
pub fn accepts_gzip(accept: Option<&str>) -> bool {
    accepts(accept, GZIP)
}

/// Does an `Accept-Encoding` value accept `encoding` (by name or `*`, and
/// not with `q=0`)?
pub fn accepts(accept: Option<&str>, encoding: &str) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut it = part.split(';');
            let name = it.next().unwrap_or("").trim();
            let q_zero = it.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case(encoding) || name == "*") && !q_zero
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips_and_is_bounded() {
        let body = vec![b'a'; 10_000];
        let (z, enc) = encode_body(body.clone(), Some("br, gzip;q=0.5"));
        assert_eq!(enc, Some(GZIP));
        assert!(z.len() < body.len());
        assert_eq!(decode_body(Some("gzip"), &z, 10_000), Ok(body.clone()));
        assert_eq!(
            decode_body(Some("gzip"), &z, 9_999),
            Err(DecodeError::TooLarge)
        );
        assert_eq!(decode_body(None, &body, 9_999), Err(DecodeError::TooLarge));
        assert!(matches!(
            decode_body(Some("br"), &z, 10_000),
            Err(DecodeError::Unsupported(_))
        ));
        assert!(matches!(
            decode_body(Some("gzip"), b"not gzip", 10_000),
            Err(DecodeError::Invalid(_))
        ));
        let (same, enc) = encode_body(body.clone(), Some("gzip;q=0"));
        assert_eq!((same, enc), (body, None));
    }

    #[test]
    fn zstd_is_preferred_round_trips_and_is_bounded() {
        let body = vec![b'a'; 10_000];
        let (z, enc) = encode_body(body.clone(), Some(ACCEPT));
        assert_eq!(enc, Some(ZSTD));
        assert!(z.len() < body.len() / 10);
        assert_eq!(decode_body(Some("zstd"), &z, 10_000), Ok(body.clone()));
        assert_eq!(decode_body(Some(" ZSTD "), &z, 10_000), Ok(body.clone()));
        assert_eq!(
            decode_body(Some("zstd"), &z, 9_999),
            Err(DecodeError::TooLarge)
        );
        assert!(matches!(
            decode_body(Some("zstd"), b"not zstd at all", 10_000),
            Err(DecodeError::Invalid(_))
        ));
        let (_, enc) = encode_body(body.clone(), Some("zstd;q=0, gzip"));
        assert_eq!(enc, Some(GZIP));
        let (_, enc) = encode_body(body.clone(), Some("*"));
        assert_eq!(enc, Some(ZSTD));
        let (small, enc) = encode_body(b"{}".to_vec(), Some(ACCEPT));
        assert_eq!((small, enc), (b"{}".to_vec(), None));
    }

    #[test]
    fn statuses_and_kinds_agree() {
        for kind in [
            ErrorKind::Constraint,
            ErrorKind::Value,
            ErrorKind::Schema,
            ErrorKind::Retryable,
            ErrorKind::Auth,
        ] {
            assert_eq!(kind_from_str(kind.as_str()), Some(kind));
            let back = kind_of_status(status_of_kind(kind));
            assert_eq!(back.is_retryable(), kind.is_retryable(), "{kind:?}");
        }
        assert_eq!(kind_from_str("nope"), None);
    }
}
