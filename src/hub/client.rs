//! [`HubCentral`]: the [`Central`] of an edge whose `central.url` is
//! `https://...`. Every trait method is one signed request to the hub, so
//! the engine above it runs exactly as in direct mode.
//!
//! - **Which table.** The edge names a table by the central name the hub
//!   served in `describe`, and sends its mapping's [`p::layout`]; the hub
//!   applies its own mapping, filter and conflict policy.
//! - **Retries.** A request that got no answer, or a 429/502/503/504, is
//!   re-signed (new nonce, new timestamp) and sent again, up to four times
//!   with backoff (honouring `Retry-After`); every request is idempotent —
//!   a re-sent push is recognised by its `hi` and answered as before.
//! - **Errors.** The hub answers with the [`ErrorKind`] the central raised,
//!   so the engine's decisions (retry, quarantine a refused row) are those
//!   of direct mode.
//! - **Several edges, several tokens.** `central.token_env`/`token_file` may
//!   hold one token, or several separated by whitespace (one per
//!   `[[edge]]`); each request goes with the token the hub says is that
//!   node's. A credential may be a node token or a JWT (for a hub with
//!   `[serve.jwt]`); either way requests are signed the same way, keyed by
//!   the SHA-256 of the credential's text.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use edgesync_core::central::{NodeProgress, Statement};
use edgesync_core::change::PushResult;
use edgesync_core::{
    Central, ConflictRecord, Error, ErrorKind, Keep, PullPage, PushBatch, QualifiedName, Result,
    TableMapping, TableSchema,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::auth;
use super::protocol as p;
use super::transport::{SendError, Transport};

/// Attempts per request.
const ATTEMPTS: u32 = 4;
/// Longest wait between attempts.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A hub, as a central database.
pub struct HubCentral {
    transport: Transport,
    /// Send zstd request bodies; cleared, for the life of this client, when
    /// the hub refuses zstd (an older hub that speaks gzip only).
    zstd_requests: std::sync::atomic::AtomicBool,
    tokens: Vec<String>,
    nodes: tokio::sync::Mutex<Option<HashMap<String, String>>>,
    catalog: tokio::sync::Mutex<Option<p::RegisterResponse>>,
}

#[derive(Serialize)]
struct PushBody<'a> {
    node: &'a str,
    table: String,
    layout: String,
    batch: &'a PushBatch,
}

impl HubCentral {
    /// A client for the hub at `url` with the token(s) in `tokens`
    /// (whitespace-separated), trusting `ca` besides the web PKI. Nothing is
    /// sent until the first call.
    pub fn connect(url: &str, tokens: &str, ca: Option<&Path>) -> anyhow::Result<HubCentral> {
        let tokens: Vec<String> = tokens.split_whitespace().map(str::to_string).collect();
        if tokens.is_empty() {
            anyhow::bail!("central.token: empty; set it to the token `edgesync token create` printed on the hub");
        }
        for t in &tokens {
            if auth::authorization(t).is_none() {
                anyhow::bail!(
                    "central.token: neither an edgesync node token (es1_<id>_<secret>, as printed by `edgesync token create`) nor a JWT (header.claims.signature)"
                );
            }
        }
        Ok(HubCentral {
            transport: Transport::new(url, ca)?,
            zstd_requests: std::sync::atomic::AtomicBool::new(true),
            tokens,
            nodes: tokio::sync::Mutex::new(None),
            catalog: tokio::sync::Mutex::new(None),
        })
    }

    /// One signed request with `token`, retried as the module docs say.
    pub async fn request<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        let json = serde_json::to_vec(body)
            .map_err(|e| Error::internal(format!("cannot encode a request: {e}")))?;
        let zstd = || {
            self.zstd_requests
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let request_encoding = |zstd: bool| if zstd { p::ZSTD } else { p::GZIP };
        let (mut bytes, mut encoding) =
            p::encode_body(json.clone(), Some(request_encoding(zstd())));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let now = chrono::Utc::now().timestamp();
            let signed = auth::sign_request(token, "POST", path, &bytes, now)
                .ok_or_else(|| Error::new(ErrorKind::Config, "central.token: malformed token"))?;
            let mut headers = vec![
                (http::header::AUTHORIZATION.as_str(), signed.authorization),
                (p::H_TIMESTAMP, signed.timestamp),
                (p::H_NONCE, signed.nonce),
                (p::H_SIGNATURE, signed.signature),
                (
                    http::header::CONTENT_TYPE.as_str(),
                    "application/json".to_string(),
                ),
            ];
            if let Some(enc) = encoding {
                headers.push((http::header::CONTENT_ENCODING.as_str(), enc.to_string()));
            }
            let last = attempt >= ATTEMPTS;
            let reply = match self
                .transport
                .send("POST", path, &headers, bytes.clone())
                .await
            {
                Ok(r) => r,
                Err(SendError::Network(m)) if !last => {
                    tracing::debug!("{m}; retrying");
                    tokio::time::sleep(backoff(attempt, None)).await;
                    continue;
                }
                Err(SendError::Network(m)) => return Err(Error::new(ErrorKind::Connection, m)),
                Err(SendError::Tls(m)) => return Err(Error::new(ErrorKind::Config, m)),
            };
            if reply.status == 200 {
                return serde_json::from_slice(&reply.body).map_err(|e| {
                    Error::internal(format!(
                        "the hub at {} answered {path} with something unreadable: {e}",
                        self.transport.url()
                    ))
                });
            }
            if encoding == Some(p::ZSTD) && refuses_encoding(reply.status, &reply.body) {
                // An older hub: gzip from now on (this retry is free).
                tracing::info!(
                    "the hub at {} does not take zstd bodies; sending gzip",
                    self.transport.url()
                );
                self.zstd_requests
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                (bytes, encoding) = p::encode_body(json.clone(), Some(request_encoding(false)));
                attempt -= 1;
                continue;
            }
            if matches!(reply.status, 429 | 502..=504) && !last {
                tokio::time::sleep(backoff(attempt, reply.retry_after)).await;
                continue;
            }
            return Err(self.error(path, reply.status, &reply.body));
        }
    }

    fn error(&self, path: &str, status: u16, body: &[u8]) -> Error {
        match serde_json::from_slice::<p::ErrorBody>(body) {
            Ok(b) => Error::new(
                p::kind_from_str(&b.kind).unwrap_or_else(|| p::kind_of_status(status)),
                format!("hub: {} (HTTP {status}, {})", b.error, b.code),
            ),
            Err(_) => Error::new(
                p::kind_of_status(status),
                format!(
                    "the hub at {} answered {path} with HTTP {status}",
                    self.transport.url()
                ),
            ),
        }
    }

    /// Who `token` is, and what the hub serves it.
    pub async fn register(&self, token: &str) -> Result<p::RegisterResponse> {
        self.request(token, p::REGISTER, &serde_json::json!({}))
            .await
    }

    /// The hub's tables (as the first token sees them), asked once.
    pub async fn catalog(&self) -> Result<p::RegisterResponse> {
        let mut cached = self.catalog.lock().await;
        if let Some(c) = cached.as_ref() {
            return Ok(c.clone());
        }
        let c = self.register(&self.tokens[0]).await?;
        *cached = Some(c.clone());
        Ok(c)
    }

    /// The token to act as `node` with.
    async fn token_for(&self, node: &str) -> Result<String> {
        if self.tokens.len() == 1 {
            return Ok(self.tokens[0].clone());
        }
        let mut nodes = self.nodes.lock().await;
        if nodes.is_none() {
            let mut map = HashMap::new();
            for t in &self.tokens {
                map.insert(self.register(t).await?.node, t.clone());
            }
            *nodes = Some(map);
        }
        nodes
            .as_ref()
            .and_then(|m| m.get(node).cloned())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Auth,
                    format!("none of the tokens in central.token_env/token_file is node {node}'s"),
                )
            })
    }

    /// Every configured token.
    fn all_tokens(&self) -> &[String] {
        &self.tokens
    }
}

/// The `[[table]]` entries of an edge whose config lists none: the hub's
/// tables, as `register` serves them to this edge's (first) token, each
/// with the hub's central name, direction and delete mode. For the engine,
/// so that an edge config may name only its central URL, credential and
/// edge files (the spec's hub-mode edge config).
pub async fn hub_table_configs(
    central: &crate::config::CentralConfig,
) -> anyhow::Result<Vec<crate::config::TableConfig>> {
    let Some(token) = central.token()? else {
        anyhow::bail!("central.token_env: a hub URL (https://) needs this node's token");
    };
    let hub = HubCentral::connect(&central.url, &token, central.ca.as_deref())?;
    let catalog = hub.catalog().await?;
    Ok(catalog
        .tables
        .into_iter()
        .map(|t| crate::config::TableConfig {
            name: t.edge,
            central: Some(t.central),
            key: None,
            direction: t.direction,
            conflict: None,
            deletes: t.deletes,
            columns: Default::default(),
            filter: None,
        })
        .collect())
}

/// Did the hub refuse the request's `Content-Encoding`? 415 from this
/// version, 400 naming the header from hubs before zstd.
fn refuses_encoding(status: u16, body: &[u8]) -> bool {
    status == 415
        || (status == 400
            && serde_json::from_slice::<p::ErrorBody>(body)
                .is_ok_and(|b| b.error.contains("Content-Encoding")))
}

fn backoff(attempt: u32, retry_after: Option<u64>) -> Duration {
    match retry_after {
        Some(s) => Duration::from_secs(s).min(MAX_WAIT),
        None => crate::engine::sync::backoff(attempt, Duration::from_millis(300), MAX_WAIT),
    }
}

#[async_trait]
impl Central for HubCentral {
    fn backend(&self) -> &'static str {
        "hub"
    }

    async fn ping(&self) -> Result<()> {
        for t in self.all_tokens() {
            self.register(t).await?;
        }
        Ok(())
    }

    async fn describe(&self, table: &QualifiedName) -> Result<Option<TableSchema>> {
        let answer: p::DescribeResponse = self
            .request(
                &self.tokens[0],
                p::DESCRIBE,
                &p::DescribeRequest {
                    table: table.to_string(),
                },
            )
            .await?;
        Ok(answer.schema)
    }

    /// Nothing to provision on the central from an edge (`init-sync` on the
    /// hub does that); this checks that each mapping reads rows as the hub
    /// does and flows no way the hub does not allow.
    async fn plan_init(&self, tables: &[TableMapping]) -> Result<Vec<Statement>> {
        let catalog = self.catalog().await?;
        let mut problems = Vec::new();
        for t in tables {
            let central = t.central.to_string();
            let Some(info) = catalog
                .tables
                .iter()
                .find(|i| i.central.eq_ignore_ascii_case(&central))
            else {
                problems.push(format!("table {}: the hub does not sync {central}", t.edge));
                continue;
            };
            if info.deletes != t.deletes {
                problems.push(format!(
                    "table {}: the hub syncs it with deletes = \"{}\"; set the same in this edge's [[table]] entry (the hub's config is authoritative)",
                    t.edge,
                    delete_mode(info.deletes)
                ));
            } else if info.layout != p::layout(t) {
                problems.push(format!(
                    "table {}: this edge maps its columns or key differently from the hub; remove `key` from this edge's [[table]] entry or copy the hub's",
                    t.edge
                ));
            }
            if (t.direction.pushes() && !info.direction.pushes())
                || (t.direction.pulls() && !info.direction.pulls())
            {
                problems.push(format!(
                    "table {}: the hub syncs it with direction = \"{}\"; set the same in this edge's [[table]] entry",
                    t.edge,
                    direction(info.direction)
                ));
            }
        }
        if problems.is_empty() {
            Ok(Vec::new())
        } else {
            Err(Error::new(ErrorKind::Config, problems.join("\n")))
        }
    }

    async fn plan_deinit(&self, _tables: &[TableMapping], _all: bool) -> Result<Vec<Statement>> {
        Ok(Vec::new())
    }

    async fn execute(&self, statements: &[Statement]) -> Result<()> {
        if statements.is_empty() {
            Ok(())
        } else {
            Err(Error::internal(
                "the central behind a hub is provisioned on the hub (`edgesync init-sync` there)",
            ))
        }
    }

    /// The hub binds a node's scope from its credential; an edge cannot
    /// ask for one of its own.
    async fn push_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&edgesync_core::filter::Scope>,
        batch: &PushBatch,
    ) -> Result<PushResult> {
        if scope.is_some() {
            return Err(edgesync_core::central::filters_unsupported(
                self.backend(),
                table,
            ));
        }
        let token = self.token_for(node).await?;
        let body = PushBody {
            node,
            table: table.central.to_string(),
            layout: p::layout(table),
            batch,
        };
        self.request(&token, p::PUSH, &body).await
    }

    /// See [`HubCentral::push_scoped`].
    async fn pull_scoped(
        &self,
        node: &str,
        table: &TableMapping,
        scope: Option<&edgesync_core::filter::Scope>,
        token: Option<&str>,
        limit: usize,
    ) -> Result<PullPage> {
        if scope.is_some() {
            return Err(edgesync_core::central::filters_unsupported(
                self.backend(),
                table,
            ));
        }
        let credential = self.token_for(node).await?;
        let body = p::PullRequest {
            node: node.to_string(),
            tenant: None,
            table: table.central.to_string(),
            layout: p::layout(table),
            token: token.map(str::to_string),
            limit,
        };
        self.request(&credential, p::PULL, &body).await
    }

    /// This daemon's nodes' entries of the conflict log.
    async fn conflicts(&self, all: bool, limit: usize) -> Result<Vec<ConflictRecord>> {
        let mut out: Vec<ConflictRecord> = Vec::new();
        for t in self.all_tokens() {
            let list: Vec<ConflictRecord> = self
                .request(t, p::CONFLICTS, &p::ConflictsRequest { all, limit })
                .await?;
            for c in list {
                if !out.iter().any(|o| o.id == c.id && o.table == c.table) {
                    out.push(c);
                }
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.at));
        out.truncate(limit);
        Ok(out)
    }

    async fn resolve_conflict(&self, id: i64, _keep: Keep) -> Result<ConflictRecord> {
        Err(Error::new(
            ErrorKind::Config,
            format!("conflict #{id}: conflicts are resolved on the hub; run `edgesync conflicts resolve {id}` there"),
        ))
    }

    /// The hub purges the conflict log itself.
    async fn purge_conflicts(&self, _older_than: Duration) -> Result<u64> {
        Ok(0)
    }

    async fn progress(&self) -> Result<Vec<NodeProgress>> {
        let mut out = Vec::new();
        for t in self.all_tokens() {
            let list: Vec<p::Progress> =
                self.request(t, p::PROGRESS, &serde_json::json!({})).await?;
            out.extend(list.into_iter().map(NodeProgress::from));
        }
        Ok(out)
    }
}

fn delete_mode(d: edgesync_core::DeleteMode) -> &'static str {
    match d {
        edgesync_core::DeleteMode::Soft => "soft",
        edgesync_core::DeleteMode::Hard => "hard",
    }
}

fn direction(d: edgesync_core::Direction) -> &'static str {
    match d {
        edgesync_core::Direction::Both => "both",
        edgesync_core::Direction::Push => "push",
        edgesync_core::Direction::Pull => "pull",
    }
}
