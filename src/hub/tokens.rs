//! `edgesync token create` and `token revoke`, run on the hub against its
//! central database.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use edgesync_core::central::{HubStore, NodeToken};
use edgesync_core::Central;

use super::auth;
use crate::config::LoadedConfig;

/// Longest node id or tenant.
const MAX_NAME: usize = 64;

fn check_name(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!(
            "--{what} {s:?}: use letters, digits, '.', '_' and '-', at most {MAX_NAME} characters"
        );
    }
    Ok(())
}

fn check_param(key: &str) -> Result<()> {
    let mut b = key.bytes();
    let ok = b
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if !ok {
        bail!("--param {key}=...: names are letters, digits and '_', not starting with a digit (filters bind them as :{key})");
    }
    Ok(())
}

async fn central(loaded: &LoadedConfig) -> Result<std::sync::Arc<dyn Central>> {
    if loaded.config.central.is_hub() {
        bail!(
            "`token` runs on the hub, against the central database; {} names a hub (https://)",
            loaded.path.display()
        );
    }
    crate::centrals::connect(&loaded.config.central, loaded.dir()).await
}

fn store(central: &dyn Central) -> Result<&dyn HubStore> {
    central
        .hub_store()
        .ok_or_else(|| edgesync_core::central::hub_unsupported(central.backend()).into())
}

/// Create a token for `node` and return its text (shown once, never
/// stored).
pub async fn create(
    loaded: &LoadedConfig,
    node: &str,
    tenant: Option<&str>,
    params: &[(String, String)],
) -> Result<String> {
    check_name("node", node)?;
    if let Some(t) = tenant {
        check_name("tenant", t)?;
    }
    let mut map = BTreeMap::new();
    for (k, v) in params {
        check_param(k)?;
        if map.insert(k.clone(), v.clone()).is_some() {
            bail!("--param {k} is given twice");
        }
    }
    let central = central(loaded).await?;
    let text = auth::generate_token();
    let id = auth::token_id(&text)
        .context("internal error: a generated token is malformed")?
        .to_string();
    let token = NodeToken {
        id,
        node: node.to_string(),
        tenant: tenant.map(str::to_string),
        params: map,
        key_hash: auth::key_hash(&text),
        created_at: Utc::now(),
        revoked_at: None,
    };
    store(central.as_ref())?
        .insert_token(&token)
        .await
        .with_context(|| format!("creating a token for node {node}"))?;
    Ok(text)
}

/// Revoke every live token of `node`; how many.
pub async fn revoke(loaded: &LoadedConfig, node: &str) -> Result<u64> {
    check_name("node", node)?;
    let central = central(loaded).await?;
    let n = store(central.as_ref())?
        .revoke_tokens(node, Utc::now())
        .await
        .with_context(|| format!("revoking the tokens of node {node}"))?;
    Ok(n)
}
