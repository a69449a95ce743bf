//! The endpoints behind the pipeline of [`super::server`]: each takes the
//! authenticated request (the credential's node, tenant and params, and the
//! decoded body) and answers with a JSON body or a [`Refusal`].
//!
//! Whatever the body says, the node, tenant and params are the
//! credential's: a body naming another node or tenant is refused, a table
//! the hub does not serve is refused, and with a filter, a pushed row or a
//! central row a push would change that is outside the node's scope is
//! refused as an `out-of-scope` conflict (the rest of the batch applies),
//! while a pull hands out only rows in it (and move-outs).

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use edgesync_core::central::{AuditEntry, NodeToken};
use serde::Serialize;

use super::protocol as p;
use super::server::{decode_refusal, Hub, HubTable, Refusal};

/// What an authenticated request carries into its endpoint.
pub(super) struct Authed {
    /// The credential.
    pub token: NodeToken,
    /// The body, inflated.
    pub body: Vec<u8>,
}

pub(super) fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, Refusal> {
    serde_json::to_vec(v).map_err(|e| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot encode the answer: {e}"),
        )
    })
}

fn decode<T: serde::de::DeserializeOwned>(a: &Authed) -> Result<T, Refusal> {
    p::decode_json(&a.body).map_err(|e| {
        decode_refusal(e, &|| {
            Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "body too large")
        })
    })
}

pub(super) fn register(hub: &Hub, a: &Authed) -> p::RegisterResponse {
    p::RegisterResponse {
        node: a.token.node.clone(),
        tenant: a.token.tenant.clone(),
        tables: hub
            .tables
            .iter()
            .map(|t| p::TableInfo {
                central: t.mapping.central.to_string(),
                edge: t.mapping.edge.clone(),
                schema: p::served_schema(&t.mapping),
                direction: t.mapping.direction,
                deletes: t.mapping.deletes,
                conflict: t.mapping.conflict,
                layout: t.layout.clone(),
                filtered: t.filter.is_some(),
            })
            .collect(),
        max_page_rows: hub.limits.max_page_rows,
        max_body_bytes: hub.limits.max_body_bytes,
    }
}

pub(super) fn describe(hub: &Hub, a: &Authed, audit: &mut AuditEntry) -> Result<Vec<u8>, Refusal> {
    let req: p::DescribeRequest = decode(a)?;
    audit.table = Some(req.table.clone());
    json(&p::DescribeResponse {
        schema: hub.table(&req.table).map(|t| p::served_schema(&t.mapping)),
    })
}

/// The checks push and pull share: the body's node and tenant are the
/// credential's, the table is served, the layout matches.
fn scope_check<'h>(
    hub: &'h Hub,
    a: &Authed,
    node: &str,
    tenant: Option<&str>,
    table: &str,
    layout: &str,
    audit: &mut AuditEntry,
) -> Result<&'h HubTable, Refusal> {
    audit.table = Some(table.to_string());
    if node != a.token.node {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "forbidden_node",
            format!(
                "this credential is node {}'s; it cannot act as node {node}",
                a.token.node
            ),
        ));
    }
    if let Some(t) = tenant {
        if Some(t) != a.token.tenant.as_deref() {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "forbidden_tenant",
                format!("node {} does not belong to tenant {t}", a.token.node),
            ));
        }
    }
    let Some(t) = hub.table(table) else {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "forbidden_table",
            format!(
                "this hub does not sync table {table} for node {}",
                a.token.node
            ),
        ));
    };
    if t.layout != layout {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "layout_mismatch",
            format!(
                "this edge maps table {table} differently from the hub (columns, key or deletes); \
                 the hub's config is authoritative: run `edgesync check-config` on the edge"
            ),
        ));
    }
    Ok(t)
}

fn bind(t: &HubTable, a: &Authed) -> Result<Option<super::scope::Bound>, Refusal> {
    t.filter
        .as_ref()
        .map(|f| f.bind(a.token.tenant.as_deref(), &a.token.params))
        .transpose()
        .map_err(|m| {
            Refusal::new(
                StatusCode::FORBIDDEN,
                "unbound_param",
                format!(
                    "table {}: the filter needs a value node {} has no credential for: {m}",
                    t.mapping.central, a.token.node
                ),
            )
        })
}

pub(super) async fn push(
    hub: &Hub,
    a: &Authed,
    audit: &mut AuditEntry,
) -> Result<Vec<u8>, Refusal> {
    let req: p::PushRequest = decode(a)?;
    audit.batch_hi = Some(req.batch.hi);
    audit.rows = i64::try_from(req.batch.changes.len()).unwrap_or(i64::MAX);
    let t = scope_check(
        hub,
        a,
        &req.node,
        req.tenant.as_deref(),
        &req.table,
        &req.layout,
        audit,
    )?;
    if !t.mapping.direction.pushes() {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "forbidden_direction",
            format!("table {} is pull-only on this hub", req.table),
        ));
    }
    p::check_push_shape(&req, &t.mapping).map_err(|e| {
        decode_refusal(e, &|| {
            Refusal::new(StatusCode::BAD_REQUEST, "bad_request", "bad batch")
        })
    })?;
    // Rows outside the node's scope are the central's to refuse, change by
    // change, inside the push's own transaction (Central::push_scoped):
    // each is answered as an `out-of-scope` conflict with the central's row
    // (or a move-out), logged, and the rest of the batch is applied. A check
    // here, before that transaction, could only refuse the whole batch, and
    // would read the central rows outside it.
    let scope = bind(t, a)?;
    let result = hub
        .central
        .push_scoped(&a.token.node, &t.mapping, scope.as_ref(), &req.batch)
        .await
        .map_err(Refusal::central)?;
    hub.metrics
        .rows_pushed
        .fetch_add(req.batch.changes.len() as u64, Ordering::Relaxed);
    json(&result)
}

pub(super) async fn pull(
    hub: &Hub,
    a: &Authed,
    audit: &mut AuditEntry,
) -> Result<Vec<u8>, Refusal> {
    let req: p::PullRequest = decode(a)?;
    audit.page = Some(req.token.clone().unwrap_or_default());
    let t = scope_check(
        hub,
        a,
        &req.node,
        req.tenant.as_deref(),
        &req.table,
        &req.layout,
        audit,
    )?;
    if !t.mapping.direction.pulls() {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "forbidden_direction",
            format!("table {} is push-only on this hub", req.table),
        ));
    }
    let scope = bind(t, a)?;
    let limit = req.limit.clamp(1, hub.limits.max_page_rows);
    // The central evaluates the filter (rows that left the scope come as
    // move-outs, keys only); checked here again all the same: a row outside
    // the scope is never handed out, it goes as a move-out.
    let mut page = hub
        .central
        .pull_scoped(
            &a.token.node,
            &t.mapping,
            scope.as_ref(),
            req.token.as_deref(),
            limit,
        )
        .await
        .map_err(Refusal::central)?;
    if let Some(scope) = &scope {
        for c in &mut page.changes {
            if c.values.as_deref().is_some_and(|v| !scope.selects(v)) {
                *c = edgesync_core::Change::moved_out(c.key.clone(), c.version, c.hlc);
            }
        }
    }
    audit.rows = i64::try_from(page.changes.len()).unwrap_or(i64::MAX);
    hub.metrics
        .rows_pulled
        .fetch_add(page.changes.len() as u64, Ordering::Relaxed);
    json(&page)
}

pub(super) async fn conflicts(hub: &Hub, a: &Authed) -> Result<Vec<u8>, Refusal> {
    let req: p::ConflictsRequest = decode(a)?;
    let limit = req.limit.min(10_000);
    let mut list = hub
        .central
        .conflicts(req.all, 10_000)
        .await
        .map_err(Refusal::central)?;
    list.retain(|c| c.node == a.token.node);
    list.truncate(limit);
    json(&list)
}

pub(super) async fn progress(hub: &Hub, a: &Authed) -> Result<Vec<u8>, Refusal> {
    let list: Vec<p::Progress> = hub
        .central
        .progress()
        .await
        .map_err(Refusal::central)?
        .into_iter()
        .filter(|p| p.node == a.token.node)
        .map(p::Progress::from)
        .collect();
    json(&list)
}
