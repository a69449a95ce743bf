//! Hub mode: `edgesync serve` in front of a central database, and the
//! `https://` central that edges use to reach it.
//!
//! The hub is a [`edgesync_core::Central`] in front of a `Central`: the
//! server ([`server`]) exposes the trait's operations over HTTPS, and an
//! edge whose `central.url` is `https://...` gets a [`client::HubCentral`]
//! that implements the trait by calling the hub. The engine, conflict
//! handling, exactly-once pushes and commit-safe pulls are therefore the
//! very code paths of direct mode; the hub adds authentication, scope,
//! limits and an audit log around them.
//!
//! - [`protocol`]: endpoints, headers, bodies, compression, status codes;
//! - [`auth`]: node tokens and request signing (HMAC-SHA256);
//! - [`jwt`]: JWTs (HS256, RS256) as node credentials (`[serve.jwt]`);
//! - [`scope`]: the row filters that bound what a node sees and writes;
//! - [`limits`]: body size, page size, rate, timeouts;
//! - [`server`]: the router and the request pipeline; `endpoints`: what
//!   each endpoint does once a request is authenticated;
//! - [`listener`]: TLS, connections, graceful stop;
//! - [`transport`]: the client's HTTPS connections;
//! - [`client`]: the edge's `Central`, [`client::HubCentral`];
//! - [`tokens`]: `edgesync token create` / `revoke`.
//!
//! The hub's own `sync.toml` is authoritative: it resolves every table's
//! mapping, filter and conflict policy itself; an edge only names a table
//! and proves, with a layout fingerprint, that it reads rows the same way.
//! A hub keeps nothing between requests but per-instance rate counters:
//! tokens, nonces and the audit log live in the central database, so any
//! number of `serve` processes against one central are interchangeable.

pub mod auth;
pub mod client;
mod endpoints;
pub mod jwt;
pub mod limits;
pub mod listener;
pub mod protocol;
pub mod scope;
pub mod server;
pub mod tokens;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tracing::{info, warn};

use crate::config::LoadedConfig;
use crate::engine::{Engine, Selection};
use server::{Hub, HubTable};

/// How often a hub purges expired nonces.
const NONCE_PURGE_EVERY: Duration = Duration::from_secs(60);
/// How often a hub purges the settled conflicts past `sync.conflict_retention`.
const CONFLICT_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Resolve the hub's tables and filters, check the central is provisioned
/// for hub mode, and build the [`Hub`].
pub async fn open(loaded: &LoadedConfig) -> Result<Hub> {
    let config = loaded.config.clone();
    let Some(serve) = config.serve.clone() else {
        bail!(
            "`serve` needs a [serve] section (listen, tls_cert, tls_key) in {}",
            loaded.path.display()
        );
    };
    if config.central.is_hub() {
        bail!("central.url: a hub must connect to the central database itself, not to another hub");
    }
    let engine = Engine::open(config.clone(), &loaded.path, &Selection::default()).await?;
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    for ct in &engine.central_tables {
        let filter = match config.tables[ct.index].filter.as_deref() {
            None => None,
            Some(text) => match scope::Filter::parse(text, &ct.mapping) {
                Ok(f) => Some(f),
                Err(why) => {
                    problems.push(format!(
                        "table[{}].filter ({}): {why} (the hub evaluates filters itself and \
                         supports =, <>, IN, IS [NOT] NULL, AND, OR, NOT and parentheses over \
                         :params and literals)",
                        ct.index, ct.mapping.edge
                    ));
                    continue;
                }
            },
        };
        tables.push(HubTable {
            layout: protocol::layout(&ct.mapping),
            mapping: ct.mapping.clone(),
            filter,
        });
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    let central = engine.central.clone();
    let pending = central
        .plan_init(&engine.central_mappings())
        .await
        .context("checking the central's provisioning")?;
    if !pending.is_empty() {
        bail!(
            "the {} central is not fully provisioned for these tables and hub mode ({} statement(s) \
             pending: {}); run `edgesync init-sync` on the hub first",
            central.backend(),
            pending.len(),
            pending[0].purpose
        );
    }
    let jwt = serve
        .jwt
        .as_ref()
        .map(jwt::JwtVerifier::from_config)
        .transpose()?;
    Ok(Hub::new(central, tables, limits::Limits::from_config(&serve))?.with_jwt(jwt))
}

/// `edgesync serve`: run the hub until SIGTERM or SIGINT. Prints
/// `listening on https://ADDR` on stdout once it accepts connections.
pub async fn serve(loaded: LoadedConfig) -> Result<()> {
    let hub = Arc::new(open(&loaded).await?);
    let Some(serve) = loaded.config.serve.clone() else {
        bail!("no [serve] section");
    };
    let tls = listener::server_tls(&serve.tls_cert, &serve.tls_key)?;
    let tcp = tokio::net::TcpListener::bind(serve.listen.trim())
        .await
        .with_context(|| format!("serve.listen: cannot listen on {}", serve.listen))?;
    let addr = tcp.local_addr().context("serve.listen")?;
    info!(%addr, tables = hub.tables.len(), central = hub.central.backend(), "hub listening");
    println!("listening on https://{addr}");
    let housekeeping = tokio::spawn(housekeeping(
        hub.clone(),
        loaded.config.sync.conflict_retention,
        loaded.config.sync.retention,
    ));
    let router = server::router(hub);
    let result = listener::run(tcp, tls, router, stop_signal()).await;
    housekeeping.abort();
    result
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Purge expired nonces every minute, and every hour (and at start) the
/// settled conflicts past `sync.conflict_retention` and, when
/// `sync.retention` is set, the tombstones and departed nodes' state past
/// it. Behind a hub the edges cannot purge (they do not reach the central),
/// so the hub does it for them. Several hubs doing it at once is harmless:
/// each purge is one transaction that never passes an active node.
async fn housekeeping(hub: Arc<Hub>, conflict_retention: Duration, retention: Option<Duration>) {
    let mut nonces = tokio::time::interval(NONCE_PURGE_EVERY);
    let mut conflicts = tokio::time::interval(CONFLICT_PURGE_EVERY);
    loop {
        tokio::select! {
            _ = nonces.tick() => {
                let window = chrono::Duration::from_std(hub.limits.clock_window * 2)
                    .unwrap_or(chrono::Duration::hours(2));
                if let Some(store) = hub.central.hub_store() {
                    if let Err(e) = store.purge_nonces(chrono::Utc::now() - window).await {
                        warn!("purging request nonces: {e:#}");
                    }
                }
            }
            _ = conflicts.tick() => {
                if let Err(e) = hub.central.purge_conflicts(conflict_retention).await {
                    warn!("purging the conflict log: {e:#}");
                }
                if let Some(retention) = retention {
                    let tables: Vec<_> = hub.tables.iter().map(|t| t.mapping.clone()).collect();
                    match hub.central.purge(&tables, retention).await {
                        Ok(purged) => info!(
                            tombstones = purged.tombstones,
                            node_states = purged.node_states,
                            "purged sync metadata older than sync.retention"
                        ),
                        Err(e) => warn!("purging sync metadata (sync.retention): {e:#}"),
                    }
                }
            }
        }
    }
}
