//! JSON Web Tokens as node credentials (`[serve.jwt]`).
//!
//! An identity provider (or an operator's script) issues a node a JWT
//! instead of `edgesync token create` doing it. The hub verifies, with
//! `jsonwebtoken` on the aws-lc-rs provider (the same crypto as TLS):
//!
//! - the signature: HS256 with `serve.jwt.hs256_secret_env`/`_file`, or
//!   RS256 with the public key in `serve.jwt.rs256_public_key`; the header's
//!   `alg` picks the key, and an algorithm without a configured key is
//!   refused (so an RSA public key can never be used as an HMAC secret);
//! - `iss` equal to `serve.jwt.issuer`, `aud` naming `serve.jwt.audience`,
//!   `exp` in the future and `nbf` (when present) in the past, both within
//!   `serve.jwt.leeway`;
//! - the claims: the node is `node`, else `sub`; `tenant` and `params` (an
//!   object of strings, numbers or booleans) bind the node's filters exactly
//!   as a stored token's `--tenant` and `--param` do.
//!
//! A verified JWT becomes a [`NodeToken`] for the rest of the request
//! pipeline: its id is `jwt-` and 16 hex digits of the JWT's SHA-256 (the
//! nonces of its requests are recorded under it), its `key_hash` the hex
//! SHA-256 of the JWT text, which is the HMAC key the request is signed
//! with, exactly as for a stored token. See the README's threat model: a
//! JWT travels with every request as a bearer credential, so it is only as
//! secret as TLS keeps it; the signature adds body integrity and replay
//! protection, not secrecy of the credential.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use chrono::{TimeZone, Utc};
use edgesync_core::central::NodeToken;
use jsonwebtoken::errors::ErrorKind as JwtError;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::auth;
use crate::config::JwtConfig;

/// Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_HS256_SECRET: usize = 32;
/// Longest JWT accepted in an `Authorization` header.
pub const MAX_JWT_LEN: usize = 8192;
/// Prefix of the id a JWT credential gets.
pub const JWT_ID_PREFIX: &str = "jwt-";
/// Longest node id, tenant or param name a JWT may claim.
const MAX_NAME: usize = 64;

/// Is `text` shaped like a compact JWS (three base64url parts)? Says
/// nothing about whether it verifies.
pub fn looks_like_jwt(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    text.len() <= MAX_JWT_LEN
        && parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The claims edgesync reads; the registered ones are checked by
/// `jsonwebtoken` itself.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    iat: Option<i64>,
}

/// Why a JWT was refused: the audit code, a message, and the node it names
/// when its signature did verify (an expired or misaddressed token of a
/// real node is worth naming in the audit log; a forged one is not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRefusal {
    /// `expired_token`, `bad_token`, `wrong_issuer`, `wrong_audience`,
    /// `immature_token`.
    pub code: &'static str,
    /// For the client and the audit detail.
    pub message: String,
    /// The node the (genuinely signed) token names.
    pub node: Option<String>,
    /// Its tenant.
    pub tenant: Option<String>,
}

impl JwtRefusal {
    fn new(code: &'static str, message: impl Into<String>) -> JwtRefusal {
        JwtRefusal {
            code,
            message: message.into(),
            node: None,
            tenant: None,
        }
    }
}

/// The hub's JWT verifier, built once from `[serve.jwt]`.
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    leeway: u64,
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("hs256", &self.hs256.is_some())
            .field("rs256", &self.rs256.is_some())
            .finish()
    }
}

/// Select aws-lc-rs for `jsonwebtoken` explicitly: with a single backend
/// feature it would anyway, but if some other crate ever turned on its
/// RustCrypto feature too, `jsonwebtoken` could no longer choose and would
/// panic at the first verification.
fn install_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

fn read_hs256_secret(cfg: &JwtConfig) -> anyhow::Result<Option<Vec<u8>>> {
    let secret = match (&cfg.hs256_secret_env, &cfg.hs256_secret_file) {
        (Some(_), Some(_)) => {
            bail!("serve.jwt.hs256_secret_file: set either hs256_secret_env or hs256_secret_file, not both")
        }
        (Some(var), None) => match std::env::var_os(var) {
            None => bail!("serve.jwt.hs256_secret_env: environment variable {var} is not set"),
            Some(v) => (
                v.into_encoded_bytes(),
                format!("serve.jwt.hs256_secret_env ({var})"),
            ),
        },
        (None, Some(path)) => {
            let mut bytes = std::fs::read(path).with_context(|| {
                format!(
                    "serve.jwt.hs256_secret_file: cannot read {}",
                    path.display()
                )
            })?;
            while matches!(bytes.last(), Some(b'\n' | b'\r')) {
                bytes.pop();
            }
            (
                bytes,
                format!("serve.jwt.hs256_secret_file ({})", path.display()),
            )
        }
        (None, None) => return Ok(None),
    };
    let (bytes, key) = secret;
    if bytes.len() < MIN_HS256_SECRET {
        bail!(
            "{key}: the HS256 secret is {} bytes; use at least {MIN_HS256_SECRET} random bytes",
            bytes.len()
        );
    }
    Ok(Some(bytes))
}

fn read_rs256_key(path: &Path) -> anyhow::Result<DecodingKey> {
    let pem = std::fs::read(path)
        .with_context(|| format!("serve.jwt.rs256_public_key: cannot read {}", path.display()))?;
    DecodingKey::from_rsa_pem(&pem).map_err(|e| {
        anyhow::anyhow!(
            "serve.jwt.rs256_public_key: {} is not an RSA public key in PEM ({e})",
            path.display()
        )
    })
}

impl JwtVerifier {
    /// Read the keys `[serve.jwt]` names; errors name the key at fault.
    pub fn from_config(cfg: &JwtConfig) -> anyhow::Result<JwtVerifier> {
        install_provider();
        let hs256 = read_hs256_secret(cfg)?.map(|s| DecodingKey::from_secret(&s));
        let rs256 = cfg
            .rs256_public_key
            .as_deref()
            .map(read_rs256_key)
            .transpose()?;
        if hs256.is_none() && rs256.is_none() {
            bail!("serve.jwt: no key to verify tokens with: set hs256_secret_env, hs256_secret_file or rs256_public_key");
        }
        Ok(JwtVerifier {
            issuer: cfg.issuer.trim().to_string(),
            audience: cfg.audience.trim().to_string(),
            leeway: cfg.leeway.as_secs(),
            hs256,
            rs256,
        })
    }

    fn key(&self, alg: Algorithm) -> Option<&DecodingKey> {
        match alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::RS256 => self.rs256.as_ref(),
            _ => None,
        }
    }

    /// Only the signature (and `exp`'s presence, so a token without expiry
    /// is never taken): to name the node of a token refused for its claims.
    fn signature_only(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        v
    }

    fn full(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v
    }

    /// Verify `jwt` and turn it into the credential the pipeline uses.
    pub fn verify(&self, jwt: &str) -> Result<NodeToken, JwtRefusal> {
        if !looks_like_jwt(jwt) {
            return Err(JwtRefusal::new(
                "bad_token",
                "the bearer credential is not a JWT",
            ));
        }
        let header = jsonwebtoken::decode_header(jwt)
            .map_err(|e| JwtRefusal::new("bad_token", format!("unreadable JWT header: {e}")))?;
        let Some(key) = self.key(header.alg) else {
            return Err(JwtRefusal::new(
                "bad_token",
                format!(
                    "JWT algorithm {:?} is not accepted by this hub (serve.jwt configures {})",
                    header.alg,
                    self.algorithms()
                ),
            ));
        };
        let claims = match jsonwebtoken::decode::<Claims>(jwt, key, &self.full(header.alg)) {
            Ok(data) => data.claims,
            Err(e) => return Err(self.refusal(jwt, key, header.alg, e.kind())),
        };
        credential(jwt, claims)
    }

    fn algorithms(&self) -> &'static str {
        match (self.hs256.is_some(), self.rs256.is_some()) {
            (true, true) => "HS256 and RS256",
            (true, false) => "HS256 only",
            _ => "RS256 only",
        }
    }

    fn refusal(&self, jwt: &str, key: &DecodingKey, alg: Algorithm, e: &JwtError) -> JwtRefusal {
        let (code, message) = match e {
            JwtError::ExpiredSignature => {
                ("expired_token", "the JWT has expired (exp)".to_string())
            }
            JwtError::ImmatureSignature => (
                "immature_token",
                "the JWT is not valid yet (nbf)".to_string(),
            ),
            JwtError::InvalidIssuer => (
                "wrong_issuer",
                format!("the JWT's issuer (iss) is not {:?}", self.issuer),
            ),
            JwtError::InvalidAudience => (
                "wrong_audience",
                format!("the JWT's audience (aud) does not name {:?}", self.audience),
            ),
            JwtError::MissingRequiredClaim(c) => (
                "bad_token",
                format!("the JWT has no `{c}` claim (exp, iss and aud are required)"),
            ),
            JwtError::InvalidSignature => (
                "bad_token",
                "the JWT's signature does not verify".to_string(),
            ),
            other => ("bad_token", format!("the JWT is invalid: {other:?}")),
        };
        let mut r = JwtRefusal::new(code, message);
        if code != "bad_token" {
            if let Ok(data) = jsonwebtoken::decode::<Claims>(jwt, key, &self.signature_only(alg)) {
                r.node = data.claims.node.or(data.claims.sub);
                r.tenant = data.claims.tenant;
            }
        }
        r
    }
}

fn check_name(what: &str, s: &str, allowed: impl Fn(u8) -> bool) -> Result<(), JwtRefusal> {
    if s.is_empty() || s.len() > MAX_NAME || !s.bytes().all(allowed) {
        return Err(JwtRefusal::new(
            "bad_token",
            format!("the JWT's {what} {s:?} is not a valid name (letters, digits, '.', '_', '-', at most {MAX_NAME})"),
        ));
    }
    Ok(())
}

/// The credential a verified JWT's claims make.
fn credential(jwt: &str, c: Claims) -> Result<NodeToken, JwtRefusal> {
    let Some(node) = c.node.or(c.sub) else {
        return Err(JwtRefusal::new(
            "bad_token",
            "the JWT names no node (a `node` or `sub` claim)",
        ));
    };
    let name = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    check_name("node", &node, name)?;
    if let Some(t) = &c.tenant {
        check_name("tenant", t, name)?;
    }
    let mut params = BTreeMap::new();
    for (k, v) in c.params {
        check_name("param name", &k, |b| b.is_ascii_alphanumeric() || b == b'_')?;
        let text = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(JwtRefusal::new(
                    "bad_token",
                    format!("the JWT's param {k} is not a string, number or boolean"),
                ))
            }
        };
        params.insert(k, text);
    }
    let hash = auth::key_hash(jwt);
    Ok(NodeToken {
        id: format!("{JWT_ID_PREFIX}{}", &hash[..16]),
        node,
        tenant: c.tenant,
        params,
        created_at: c
            .iat
            .and_then(|s| Utc.timestamp_opt(s, 0).single())
            .unwrap_or_else(Utc::now),
        key_hash: hash,
        revoked_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn verifier() -> JwtVerifier {
        install_provider();
        JwtVerifier {
            issuer: "idp".into(),
            audience: "edgesync".into(),
            leeway: 5,
            hs256: Some(DecodingKey::from_secret(SECRET)),
            rs256: None,
        }
    }

    fn sign(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .expect("encode")
    }

    fn claims(extra: serde_json::Value) -> serde_json::Value {
        let mut c = serde_json::json!({
            "iss": "idp", "aud": "edgesync", "exp": Utc::now().timestamp() + 60, "sub": "n1",
        });
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        c
    }

    #[test]
    fn a_valid_token_names_its_node_tenant_and_params() {
        let jwt = sign(claims(serde_json::json!({
            "node": "store-1", "tenant": "acme", "params": {"region": "north", "n": 3}
        })));
        assert!(looks_like_jwt(&jwt));
        let t = verifier().verify(&jwt).expect("valid");
        assert_eq!(t.node, "store-1", "`node` wins over `sub`");
        assert_eq!(t.tenant.as_deref(), Some("acme"));
        assert_eq!(t.params["region"], "north");
        assert_eq!(t.params["n"], "3");
        assert_eq!(t.key_hash, auth::key_hash(&jwt));
        assert!(t.id.starts_with(JWT_ID_PREFIX));
    }

    #[test]
    fn each_bad_claim_has_its_code() {
        let v = verifier();
        let now = Utc::now().timestamp();
        let code = |c: serde_json::Value| v.verify(&sign(c)).map(|_| ()).map_err(|r| r.code);
        assert_eq!(
            code(claims(serde_json::json!({"exp": now - 60}))),
            Err("expired_token")
        );
        assert_eq!(
            code(claims(serde_json::json!({"nbf": now + 600}))),
            Err("immature_token")
        );
        assert_eq!(
            code(claims(serde_json::json!({"iss": "evil"}))),
            Err("wrong_issuer")
        );
        assert_eq!(
            code(claims(serde_json::json!({"aud": "other"}))),
            Err("wrong_audience")
        );
        assert_eq!(
            code(claims(serde_json::json!({"sub": "a b"}))),
            Err("bad_token")
        );
        assert_eq!(
            code(claims(serde_json::json!({"params": {"x": []}}))),
            Err("bad_token")
        );
        let mut no_exp = claims(serde_json::json!({}));
        if let Some(o) = no_exp.as_object_mut() {
            o.remove("exp");
        }
        assert_eq!(code(no_exp), Err("bad_token"));
        // Within the leeway, an expired token still passes.
        assert_eq!(code(claims(serde_json::json!({"exp": now - 2}))), Ok(()));
        // Expired but genuinely signed: the audit may name the node.
        let r = v
            .verify(&sign(claims(serde_json::json!({"exp": now - 60}))))
            .expect_err("expired");
        assert_eq!(r.node.as_deref(), Some("n1"));
    }

    #[test]
    fn a_forged_or_unkeyed_token_is_refused_without_naming_a_node() {
        let v = verifier();
        let jwt = sign(claims(serde_json::json!({})));
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(serde_json::json!({})),
            &EncodingKey::from_secret(b"another secret, just as long as 32"),
        )
        .expect("encode");
        let r = v.verify(&forged).expect_err("forged");
        assert_eq!((r.code, r.node), ("bad_token", None));
        // RS256 is not configured on this verifier.
        let (_, rest) = jwt.split_once('.').expect("jwt");
        // base64url of {"alg":"RS256","typ":"JWT"}
        let rs_header = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";
        let r = v.verify(&format!("{rs_header}.{rest}")).expect_err("rs256");
        assert_eq!(r.code, "bad_token");
        assert!(!looks_like_jwt("es1_00_00"));
        assert!(!looks_like_jwt("a.b"));
        assert!(v.verify("a.b.c").is_err());
    }
}
