//! The hub's request handling: every `/v1/...` endpoint as an axum route,
//! each signed request taken through one pipeline —
//!
//! 1. credential: `Authorization` names a token id the central knows and has
//!    not revoked, or carries a JWT that `[serve.jwt]` verifies (401
//!    otherwise);
//! 2. body: at most `serve.max_body_bytes` (413);
//! 3. signature over method, path, timestamp, nonce and body hash (401);
//! 4. timestamp within `serve.clock_window` (401);
//! 5. the node's rate (429 with `Retry-After`), then the nonce, recorded in
//!    the central, never seen before (401); then the body is inflated
//!    (zstd or gzip; 415 for another encoding), again at most
//!    `serve.max_body_bytes` (413);
//! 6. the endpoint itself, with the node, tenant and params taken from the
//!    credential, never from the body: a body naming another node or tenant
//!    is 403, a table the hub does not sync or a direction it does not allow
//!    is 403, a row outside the node's filter is 403;
//!
//! and one audit entry (`es_audit`) per request, whatever the outcome. A
//! refused request writes nothing but its audit entry (and, past step 4,
//! its nonce). The hub holds no other state: every table it serves is the
//! hub config's mapping, resolved at start-up.
//!
//! Compression is done here rather than by tower-http's layers on purpose:
//! the signature covers the body as sent (compressed), so it must be
//! verified before inflating, and a body is inflated only for a request
//! that authenticated, never past the size limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use edgesync_core::central::{AuditEntry, HubStore, NodeToken};
use edgesync_core::{Central, Error, ErrorKind, TableMapping};
use http_body_util::BodyExt;
use serde::Serialize;
use tracing::warn;

use super::jwt::JwtVerifier;
use super::limits::{retry_after_secs, Limits, RateLimiter};
use super::protocol::{self as p, DecodeError};
use super::scope::Filter;
use super::{auth, endpoints};

/// One table the hub serves.
#[derive(Debug, Clone)]
pub struct HubTable {
    /// The hub config's mapping (the only one ever used for this table).
    pub mapping: TableMapping,
    /// Its row filter, if any.
    pub filter: Option<Filter>,
    /// [`p::layout`] of the mapping.
    pub layout: String,
}

/// Everything a request may use; shared by all connections.
pub struct Hub {
    /// The central database.
    pub central: Arc<dyn Central>,
    /// The tables, in config order.
    pub tables: Vec<HubTable>,
    /// Limits from `[serve]`.
    pub limits: Limits,
    /// `[serve.jwt]`: JWTs accepted as credentials, when configured.
    pub jwt: Option<JwtVerifier>,
    rate: RateLimiter,
    pub(super) metrics: Counters,
}

#[derive(Default)]
pub(super) struct Counters {
    requests: Mutex<std::collections::BTreeMap<(&'static str, u16), u64>>,
    pub(super) rows_pushed: AtomicU64,
    pub(super) rows_pulled: AtomicU64,
}

impl Hub {
    /// A hub over `central` serving `tables`; the central must keep hub
    /// metadata.
    pub fn new(
        central: Arc<dyn Central>,
        tables: Vec<HubTable>,
        limits: Limits,
    ) -> anyhow::Result<Hub> {
        if central.hub_store().is_none() {
            return Err(edgesync_core::central::hub_unsupported(central.backend()).into());
        }
        Ok(Hub {
            central,
            tables,
            rate: RateLimiter::new(limits.rate_per_node, limits.rate_burst),
            limits,
            jwt: None,
            metrics: Counters::default(),
        })
    }

    /// Accept JWTs verified by `jwt` besides stored node tokens.
    pub fn with_jwt(mut self, jwt: Option<JwtVerifier>) -> Hub {
        self.jwt = jwt;
        self
    }

    pub(super) fn store(&self) -> Result<&dyn HubStore, Error> {
        self.central
            .hub_store()
            .ok_or_else(|| edgesync_core::central::hub_unsupported(self.central.backend()))
    }

    /// The table a request names: by central name as served, else by the
    /// hub config's edge name (both case-insensitive).
    pub(super) fn table(&self, name: &str) -> Option<&HubTable> {
        let name = name.trim();
        self.tables
            .iter()
            .find(|t| t.mapping.central.to_string().eq_ignore_ascii_case(name))
            .or_else(|| {
                self.tables
                    .iter()
                    .find(|t| t.mapping.edge.eq_ignore_ascii_case(name))
            })
            .or_else(|| {
                self.tables
                    .iter()
                    .find(|t| t.mapping.central.name.eq_ignore_ascii_case(name))
            })
    }

    fn count(&self, endpoint: &'static str, status: u16) {
        let mut m = self
            .metrics
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *m.entry((endpoint, status)).or_default() += 1;
    }

    /// The Prometheus text of the hub's counters.
    pub fn metrics_text(&self) -> String {
        let mut out = String::from(
            "# HELP edgesync_hub_requests_total Requests answered, by endpoint and status.\n\
             # TYPE edgesync_hub_requests_total counter\n",
        );
        let m = self
            .metrics
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for ((endpoint, status), n) in m.iter() {
            out.push_str(&format!(
                "edgesync_hub_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP edgesync_hub_rows_total Rows pushed and pulled through this hub.\n\
             # TYPE edgesync_hub_rows_total counter\n",
        );
        for (dir, n) in [
            ("push", &self.metrics.rows_pushed),
            ("pull", &self.metrics.rows_pulled),
        ] {
            out.push_str(&format!(
                "edgesync_hub_rows_total{{direction=\"{dir}\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// The axum router of a hub.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route(p::HEALTH, get(health))
        .route(p::METRICS, get(metrics))
        .route(p::REGISTER, post(signed))
        .route(p::DESCRIBE, post(signed))
        .route(p::PUSH, post(signed))
        .route(p::PULL, post(signed))
        .route(p::CONFLICTS, post(signed))
        .route(p::PROGRESS, post(signed))
        .fallback(not_found)
        .with_state(hub)
}

async fn health(State(hub): State<Arc<Hub>>) -> Response {
    let (status, body) = match hub.central.ping().await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(e) => {
            warn!("health: the central does not answer: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "central unreachable")
        }
    };
    hub.count("health", status.as_u16());
    let json = serde_json::json!({ "status": body, "central": hub.central.backend() });
    json_response(status, &json)
}

async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    hub.count("metrics", 200);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        hub.metrics_text(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        ErrorKind::Config,
        "not_found",
        "no such endpoint (this hub speaks /v1/...)",
        None,
    )
}

/// A refusal or failure: status, kind for the client, code for the audit.
#[derive(Debug)]
pub(super) struct Refusal {
    pub status: StatusCode,
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl Refusal {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Refusal {
        Refusal {
            status,
            kind: p::kind_of_status(status.as_u16()),
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(super) fn central(e: Error) -> Refusal {
        let status = StatusCode::from_u16(p::status_of_kind(e.kind()))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Refusal {
            status,
            kind: e.kind(),
            code: "central_error",
            message: format!("{e:#}"),
            retry_after: None,
        }
    }
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn error_response(
    status: StatusCode,
    kind: ErrorKind,
    code: &str,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    let body = p::ErrorBody {
        error: message.to_string(),
        kind: kind.as_str().to_string(),
        code: code.to_string(),
    };
    let mut r = json_response(status, &body);
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(p::AUTH_SCHEME),
        );
    }
    if let Some(s) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

fn endpoint_name(path: &str) -> &'static str {
    match path {
        p::REGISTER => "register",
        p::DESCRIBE => "describe",
        p::PUSH => "push",
        p::PULL => "pull",
        p::CONFLICTS => "conflicts",
        p::PROGRESS => "progress",
        _ => "other",
    }
}

async fn signed(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    req: axum::extract::Request,
) -> Response {
    let endpoint = endpoint_name(req.uri().path());
    let accept = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut audit = AuditEntry {
        action: endpoint.to_string(),
        remote: Some(peer.to_string()),
        ..AuditEntry::default()
    };
    let limit = hub.limits.request_timeout;
    let result = tokio::time::timeout(limit, pipeline(&hub, req, &mut audit)).await;
    let (status, response) = match result {
        Ok(Ok(body)) => {
            let (bytes, enc) = p::encode_body(body, accept.as_deref());
            let mut r = Response::new(Body::from(bytes));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some(enc) = enc {
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
            }
            audit.outcome = "ok".into();
            (StatusCode::OK, r)
        }
        Ok(Err(refusal)) => {
            audit.outcome = refusal.code.to_string();
            audit.detail = refusal.message.clone();
            let r = error_response(
                refusal.status,
                refusal.kind,
                refusal.code,
                &refusal.message,
                refusal.retry_after,
            );
            (refusal.status, r)
        }
        Err(_) => {
            let message = format!("the request took longer than {limit:?} (serve.request_timeout)");
            audit.outcome = "timeout".into();
            audit.detail = message.clone();
            let status = StatusCode::SERVICE_UNAVAILABLE;
            (
                status,
                error_response(status, ErrorKind::Retryable, "timeout", &message, Some(1)),
            )
        }
    };
    hub.count(endpoint, status.as_u16());
    audit.status = status.as_u16();
    audit.at = Utc::now();
    if let Ok(store) = hub.store() {
        if let Err(e) = store.append_audit(&audit).await {
            warn!("cannot write the audit log: {e:#}");
        }
    }
    response
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Step 1: the credential `Authorization` names — a stored node token
/// (`EdgeSync1 <id>`, looked up in the central, not revoked) or, with
/// `[serve.jwt]`, a JWT (`Bearer <jwt>`, verified by [`JwtVerifier`]). The
/// audit entry gets the node as soon as it is known.
async fn credential(
    hub: &Hub,
    store: &dyn HubStore,
    headers: &HeaderMap,
    audit: &mut AuditEntry,
) -> Result<NodeToken, Refusal> {
    let unauthorized = |code, msg: &str| Refusal::new(StatusCode::UNAUTHORIZED, code, msg);
    let Some(auth_header) = header_str(headers, header::AUTHORIZATION.as_str()) else {
        return Err(unauthorized(
            "no_token",
            "no credential: sign the request with a node token (Authorization: EdgeSync1 <id>)",
        ));
    };
    let (scheme, value) = auth_header.split_once(' ').unwrap_or((auth_header, ""));
    let value = value.trim();
    if scheme.eq_ignore_ascii_case(p::BEARER) {
        let Some(jwt) = hub.jwt.as_ref() else {
            return Err(unauthorized(
                "bad_credential",
                "this hub does not accept JWTs ([serve.jwt] is not configured)",
            ));
        };
        return match jwt.verify(value) {
            Ok(token) => {
                audit.node = Some(token.node.clone());
                audit.tenant = token.tenant.clone();
                Ok(token)
            }
            Err(r) => {
                audit.node = r.node;
                audit.tenant = r.tenant;
                Err(unauthorized(r.code, &r.message))
            }
        };
    }
    if !scheme.eq_ignore_ascii_case(p::AUTH_SCHEME) {
        return Err(unauthorized(
            "bad_credential",
            "unknown Authorization scheme",
        ));
    }
    if !auth::is_token_id(value) {
        return Err(unauthorized("unknown_token", "unknown token"));
    }
    let token = store
        .find_token(value)
        .await
        .map_err(Refusal::central)?
        .ok_or_else(|| unauthorized("unknown_token", "unknown token"))?;
    audit.node = Some(token.node.clone());
    audit.tenant = token.tenant.clone();
    if token.revoked_at.is_some() {
        return Err(unauthorized("revoked_token", "this token was revoked"));
    }
    Ok(token)
}

/// Steps 1 to 5 of the module docs, then the endpoint.
async fn pipeline(
    hub: &Hub,
    req: axum::extract::Request,
    audit: &mut AuditEntry,
) -> Result<Vec<u8>, Refusal> {
    let (parts, body) = req.into_parts();
    let unauthorized = |code, msg: &str| Refusal::new(StatusCode::UNAUTHORIZED, code, msg);
    let store = hub.store().map_err(Refusal::central)?;
    let token = credential(hub, store, &parts.headers, audit).await?;
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the request body is larger than this hub accepts ({} bytes, serve.max_body_bytes)",
                hub.limits.max_body_bytes
            ),
        )
    };
    let max = hub.limits.max_body_bytes;
    if header_str(&parts.headers, header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
    {
        return Err(too_large());
    }
    let raw = http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("reading the body: {e}"),
                )
            }
        })?
        .to_bytes();
    let (Some(ts), Some(nonce), Some(sig)) = (
        header_str(&parts.headers, p::H_TIMESTAMP),
        header_str(&parts.headers, p::H_NONCE),
        header_str(&parts.headers, p::H_SIGNATURE),
    ) else {
        return Err(unauthorized(
            "bad_signature",
            "unsigned request (x-edgesync-timestamp, -nonce and -signature are required)",
        ));
    };
    let ts_num = ts.parse::<i64>().ok();
    let text = auth::signing_string(
        parts.method.as_str(),
        parts.uri.path(),
        ts_num.unwrap_or(0),
        nonce,
        &raw,
    );
    if ts_num.is_none() || !auth::is_nonce(nonce) || !auth::verify(&token.key_hash, &text, sig) {
        return Err(unauthorized(
            "bad_signature",
            "the request signature does not verify",
        ));
    }
    let now = Utc::now();
    if !auth::in_window(
        ts_num.unwrap_or(0),
        now.timestamp(),
        hub.limits.clock_window.as_secs(),
    ) {
        return Err(unauthorized(
            "stale_timestamp",
            format!(
                "the request was signed at {ts}, more than {:?} from the hub's clock ({}); check the edge's clock",
                hub.limits.clock_window,
                now.timestamp()
            )
            .as_str(),
        ));
    }
    if let Err(wait) = hub.rate.check(&token.node, Instant::now()) {
        let mut r = Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "node {} is over its request rate (serve.rate_per_node)",
                token.node
            ),
        );
        r.retry_after = Some(retry_after_secs(wait));
        return Err(r);
    }
    if !store
        .record_nonce(&token.id, nonce, now)
        .await
        .map_err(Refusal::central)?
    {
        return Err(unauthorized(
            "replayed_nonce",
            "this request nonce was already used",
        ));
    }
    let encoding = header_str(&parts.headers, header::CONTENT_ENCODING.as_str());
    let body = p::decode_body(encoding, &raw, max).map_err(|e| decode_refusal(e, &too_large))?;
    let authed = endpoints::Authed { token, body };
    match parts.uri.path() {
        p::REGISTER => endpoints::json(&endpoints::register(hub, &authed)),
        p::DESCRIBE => endpoints::describe(hub, &authed, audit),
        p::PUSH => endpoints::push(hub, &authed, audit).await,
        p::PULL => endpoints::pull(hub, &authed, audit).await,
        p::CONFLICTS => endpoints::conflicts(hub, &authed).await,
        p::PROGRESS => endpoints::progress(hub, &authed).await,
        _ if parts.method != Method::POST => Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "bad_request",
            "use POST",
        )),
        other => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no endpoint {other}"),
        )),
    }
}

pub(super) fn decode_refusal(e: DecodeError, too_large: &dyn Fn() -> Refusal) -> Refusal {
    match e {
        DecodeError::TooLarge => too_large(),
        DecodeError::Invalid(m) => Refusal::new(StatusCode::BAD_REQUEST, "bad_request", m),
        DecodeError::Unsupported(m) => Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            m,
        ),
    }
}
