//! Node tokens and request signing.
//!
//! A token is `es1_<id>_<secret>`: 8 random bytes of public id and 32 of
//! secret, in hex. `edgesync token create` prints it once; the central keeps
//! only `key_hash` = hex SHA-256 of the token text (`es_tokens`).
//!
//! Every request is signed with HMAC-SHA256 keyed by those 32 hash bytes,
//! over the [`signing_string`]:
//!
//! ```text
//! EDGESYNC1-HMAC-SHA256\n<METHOD>\n<path>\n<unix seconds>\n<nonce>\n<hex SHA-256 of the body as sent>
//! ```
//!
//! and carries `Authorization: EdgeSync1 <id>`, `x-edgesync-timestamp`,
//! `x-edgesync-nonce` and `x-edgesync-signature`. The token never travels,
//! so a logged request gives nothing away; the hub refuses a timestamp
//! outside its clock window and a nonce it has seen (nonces live in the
//! central, so a replay to another hub instance is refused too).
//!
//! The property to know: `es_tokens.key_hash` verifies signatures, so it is
//! as sensitive as the tokens themselves (as with any HMAC scheme). Grant
//! access to that table to the hub's role only; revoke and re-issue after a
//! leak.

use aws_lc_rs::{digest, hmac};
use edgesync_core::value::hex_bytes;

/// Version tag of every token.
const TOKEN_PREFIX: &str = "es1_";
/// Hex digits of a token id.
const ID_HEX: usize = 16;
/// Hex digits of a token secret.
const SECRET_HEX: usize = 64;
/// First line of every signing string.
const ALGORITHM: &str = "EDGESYNC1-HMAC-SHA256";

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_bytes::encode(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// `n` random bytes in hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::fill(&mut bytes[..]);
    hex_bytes::encode(&bytes)
}

/// A fresh token text.
pub fn generate_token() -> String {
    format!(
        "{TOKEN_PREFIX}{}_{}",
        random_hex(ID_HEX / 2),
        random_hex(SECRET_HEX / 2)
    )
}

/// The public id of a well-formed token text.
pub fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, ID_HEX) && hex(secret, SECRET_HEX)).then_some(id)
}

/// Is `id` shaped like a token id (before looking it up)?
pub fn is_token_id(id: &str) -> bool {
    id.len() == ID_HEX && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What the central stores for a token, and signs with: hex SHA-256 of its
/// text.
pub fn key_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// The text a request's signature covers.
pub fn signing_string(
    method: &str,
    path: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    format!(
        "{ALGORITHM}\n{}\n{path}\n{timestamp}\n{nonce}\n{}",
        method.to_ascii_uppercase(),
        sha256_hex(body)
    )
}

fn hmac_key(key_hash_hex: &str) -> Option<hmac::Key> {
    let raw = hex_bytes::decode(key_hash_hex)?;
    (raw.len() == 32).then(|| hmac::Key::new(hmac::HMAC_SHA256, &raw))
}

/// Hex HMAC-SHA256 of `text` keyed by a token's `key_hash`.
pub fn sign(key_hash_hex: &str, text: &str) -> Option<String> {
    let key = hmac_key(key_hash_hex)?;
    Some(hex_bytes::encode(
        hmac::sign(&key, text.as_bytes()).as_ref(),
    ))
}

/// Does `signature` (hex) sign `text` under `key_hash_hex`? Constant time.
pub fn verify(key_hash_hex: &str, text: &str, signature: &str) -> bool {
    let (Some(key), Some(sig)) = (hmac_key(key_hash_hex), hex_bytes::decode(signature)) else {
        return false;
    };
    hmac::verify(&key, text.as_bytes(), &sig).is_ok()
}

/// Is `timestamp` within `window_secs` of `now` (both unix seconds)?
pub fn in_window(timestamp: i64, now: i64, window_secs: u64) -> bool {
    let window = i64::try_from(window_secs).unwrap_or(i64::MAX);
    timestamp.abs_diff(now) <= window.unsigned_abs()
}

/// The headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `Authorization` value.
    pub authorization: String,
    /// `x-edgesync-timestamp`.
    pub timestamp: String,
    /// `x-edgesync-nonce`.
    pub nonce: String,
    /// `x-edgesync-signature`.
    pub signature: String,
}

/// The `Authorization` value of a credential: `EdgeSync1 <id>` for a
/// node token (the token itself never travels), `Bearer <jwt>` for a JWT
/// (the hub must see it to verify it); `None` if it is neither.
pub fn authorization(token: &str) -> Option<String> {
    if let Some(id) = token_id(token) {
        Some(format!("{} {id}", crate::hub::protocol::AUTH_SCHEME))
    } else if crate::hub::jwt::looks_like_jwt(token) {
        Some(format!("{} {token}", crate::hub::protocol::BEARER))
    } else {
        None
    }
}

/// Sign a request with `token` (a node token or a JWT: either way the HMAC
/// key is the SHA-256 of its text) at `now` (unix seconds) and a fresh
/// nonce; `None` if the credential is malformed.
pub fn sign_request(
    token: &str,
    method: &str,
    path: &str,
    body: &[u8],
    now: i64,
) -> Option<SignedHeaders> {
    let authorization = authorization(token)?;
    let nonce = random_hex(16);
    let text = signing_string(method, path, now, &nonce, body);
    Some(SignedHeaders {
        authorization,
        timestamp: now.to_string(),
        signature: sign(&key_hash(token), &text)?,
        nonce,
    })
}

/// Is `nonce` shaped like one (8 to 64 hex digits)?
pub fn is_nonce(nonce: &str) -> bool {
    (8..=64).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_and_distinct() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        let id = token_id(&a).expect("id");
        assert!(is_token_id(id));
        assert_eq!(token_id("es1_zz_00"), None);
        assert_eq!(token_id(&a.replace("es1_", "es2_")), None);
        assert_eq!(key_hash(&a).len(), 64);
    }

    #[test]
    fn a_signature_covers_every_part() {
        let t = generate_token();
        let h = sign_request(&t, "post", "/v1/push", b"{}", 1000).expect("sign");
        let key = key_hash(&t);
        let text = signing_string("POST", "/v1/push", 1000, &h.nonce, b"{}");
        assert!(verify(&key, &text, &h.signature));
        for other in [
            signing_string("GET", "/v1/push", 1000, &h.nonce, b"{}"),
            signing_string("POST", "/v1/pull", 1000, &h.nonce, b"{}"),
            signing_string("POST", "/v1/push", 1001, &h.nonce, b"{}"),
            signing_string("POST", "/v1/push", 1000, "00", b"{}"),
            signing_string("POST", "/v1/push", 1000, &h.nonce, b"{ }"),
        ] {
            assert!(!verify(&key, &other, &h.signature));
        }
        assert!(!verify(&key_hash(&generate_token()), &text, &h.signature));
        assert!(!verify(&key, &text, "zz"));
        assert!(!verify("nothex", &text, &h.signature));
    }

    #[test]
    fn the_clock_window_is_symmetric() {
        assert!(in_window(1000, 1300, 300));
        assert!(in_window(1300, 1000, 300));
        assert!(!in_window(1000, 1301, 300));
        assert!(!in_window(i64::MIN, i64::MAX, 300));
    }
}
