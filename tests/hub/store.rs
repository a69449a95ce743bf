//! The [`HubStore`] contract on every central that keeps hub metadata,
//! against the real database: tokens round-trip (tenant, params, times) and
//! are revoked per node, a nonce is accepted exactly once even when several
//! hubs record it at the same moment, old nonces are purged, and the audit
//! log reads back newest first, every field intact.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use edgesync_core::central::{AuditEntry, NodeToken};
use edgesync_core::Central;

use super::harness::HubEnv;
use super::{SCOPE_DDL, SCOPE_TABLES};
use crate::common::Backend;

/// The hub's central, provisioned by `init-sync` on the hub.
async fn central(h: &HubEnv) -> Arc<dyn Central> {
    let loaded = edgesync::config::Config::load(Some(&h.hub_config())).expect("hub config");
    edgesync::centrals::connect(&loaded.config.central, loaded.dir())
        .await
        .expect("connect to the central")
}

/// A time with microseconds, as every central keeps them.
fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

async fn the_hub_store_keeps_its_contract(backend: Backend) {
    let h = HubEnv::new(backend, &["a"], &SCOPE_DDL, SCOPE_TABLES, "").await;
    let c = central(&h).await;
    let store = c.hub_store().expect("this central keeps hub metadata");

    let token = NodeToken {
        id: "00112233445566aa".into(),
        node: "store-7".into(),
        tenant: Some("acme".into()),
        params: BTreeMap::from([
            ("region".to_string(), "nörth ✓".to_string()),
            ("n".to_string(), "42".to_string()),
        ]),
        key_hash: "ab".repeat(32),
        created_at: at("2026-01-02T03:04:05.123456Z"),
        revoked_at: None,
    };
    store.insert_token(&token).await.expect("insert");
    assert!(
        store.insert_token(&token).await.is_err(),
        "a token id is unique"
    );
    assert_eq!(
        store.find_token(&token.id).await.expect("find"),
        Some(token.clone())
    );
    assert_eq!(
        store.find_token("ffffffffffffffff").await.expect("find"),
        None
    );
    let revoked = at("2026-02-03T04:05:06.654321Z");
    assert_eq!(
        store
            .revoke_tokens("store-7", revoked)
            .await
            .expect("revoke"),
        1
    );
    assert_eq!(
        store
            .revoke_tokens("store-7", revoked)
            .await
            .expect("revoke"),
        0
    );
    assert_eq!(
        store.revoke_tokens("other", revoked).await.expect("revoke"),
        0
    );
    let found = store
        .find_token(&token.id)
        .await
        .expect("find")
        .expect("kept");
    assert_eq!(found.revoked_at, Some(revoked));

    // Eight hubs record one nonce at the same moment: exactly one wins.
    let now = Utc::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let store = c.hub_store().expect("store");
            store
                .record_nonce("00112233445566aa", "0123456789abcdef0123456789abcdef", now)
                .await
                .expect("record")
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.expect("task"));
    }
    assert_eq!(accepted, 1, "a nonce is accepted exactly once");
    let old = now - Duration::hours(3);
    assert!(store
        .record_nonce("jwt-0011223344556677", "aaaaaaaabbbbbbbb", old)
        .await
        .expect("old"));
    assert_eq!(
        store
            .purge_nonces(now - Duration::hours(1))
            .await
            .expect("purge"),
        1
    );
    assert!(
        store
            .record_nonce("x", "aaaaaaaabbbbbbbb", now)
            .await
            .expect("again"),
        "a purged nonce is forgotten"
    );
    assert!(!store
        .record_nonce("x", "0123456789abcdef0123456789abcdef", now)
        .await
        .expect("kept"));

    let before = store.audit_log(1000).await.expect("audit").len();
    let first = AuditEntry {
        at: at("2026-03-04T05:06:07.000001Z"),
        node: Some("store-7".into()),
        tenant: Some("acme".into()),
        action: "push".into(),
        table: Some("notes".into()),
        batch_hi: Some(i64::MAX),
        page: Some("tok 'quoted' ü".into()),
        rows: 5000,
        status: 200,
        outcome: "ok".into(),
        remote: Some("[::1]:55555".into()),
        detail: String::new(),
    };
    let second = AuditEntry {
        at: at("2026-03-04T05:06:08Z"),
        node: None,
        tenant: None,
        action: "pull".into(),
        status: 401,
        outcome: "bad_token".into(),
        detail: "the JWT's signature does not verify".into(),
        ..AuditEntry::default()
    };
    store.append_audit(&first).await.expect("append");
    store.append_audit(&second).await.expect("append");
    let log = store.audit_log(2).await.expect("audit");
    assert_eq!(log, vec![second, first], "newest first, every field intact");
    assert_eq!(
        store.audit_log(1000).await.expect("audit").len(),
        before + 2
    );
}

hub_backends!(the_hub_store_keeps_its_contract);
