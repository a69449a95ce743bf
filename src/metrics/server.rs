//! The HTTP side: `GET /metrics` and `GET /healthz` on `metrics.listen`.
//!
//! Plain HTTP/1.1 with no authentication, meant for loopback or a
//! management network. Both handlers only read in-memory state, so they
//! answer at once even while every edge is busy or locked.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Metrics;

/// A bound listener, so a port conflict is reported before the daemon says
/// it is ready.
pub struct Endpoint {
    listener: tokio::net::TcpListener,
    /// The address actually bound.
    pub addr: SocketAddr,
}

/// Bind `listen` (`metrics.listen`).
pub async fn bind(listen: &str) -> Result<Endpoint> {
    let listener = tokio::net::TcpListener::bind(listen.trim())
        .await
        .with_context(|| format!("metrics.listen: cannot listen on {listen}"))?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("metrics.listen: {listen}"))?;
    Ok(Endpoint { listener, addr })
}

/// Serve until `shutdown` completes.
pub async fn serve(
    endpoint: Endpoint,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .with_state(metrics);
    axum::serve(endpoint.listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("metrics endpoint")
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

async fn healthz(State(metrics): State<Arc<Metrics>>) -> Response {
    let (status, body) = match metrics.healthz() {
        Ok(body) => (StatusCode::OK, body),
        Err(body) => (StatusCode::SERVICE_UNAVAILABLE, body),
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}
