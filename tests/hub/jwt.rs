//! JWT node credentials (`[serve.jwt]`): a valid HS256 or RS256 token syncs
//! end to end with the node, tenant and params its claims name; an expired,
//! forged, foreign-issuer or foreign-audience token is refused with 401,
//! writes nothing and is audited.

use edgesync::hub::protocol as p;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::harness::{now, raw};
use super::{assert_refused, central, central_run, push_body, rows, scope_env};
use crate::common::{query_text, Backend};

const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "edgesync-hub";
const SECRET: &str = "a shared HS256 secret of more than 32 bytes";

/// The keys of one test: the HS256 secret file and an RSA key pair made
/// with rcgen (aws-lc-rs), in a directory of their own (the hub config
/// names them before the hub starts).
struct Keys {
    _dir: tempfile::TempDir,
    serve_extra: String,
    rsa_private_pem: String,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().expect("key dir");
    let secret = dir.path().join("hs256.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("write secret");
    let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
    let public = dir.path().join("rs256.pem");
    std::fs::write(&public, rsa.public_key_pem()).expect("write public key");
    let serve_extra = format!(
        "\n[serve.jwt]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\n\
         hs256_secret_file = \"{}\"\nrs256_public_key = \"{}\"\nleeway = \"5s\"\n",
        secret.display(),
        public.display()
    );
    Keys {
        _dir: dir,
        serve_extra,
        rsa_private_pem: rsa.serialize_pem(),
    }
}

/// Claims for `node` of `tenant`, valid for a minute; `tweak` changes them.
fn claims(
    node: &str,
    tenant: &str,
    tweak: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> serde_json::Value {
    let mut c = serde_json::Map::new();
    c.insert("iss".into(), ISSUER.into());
    c.insert("aud".into(), AUDIENCE.into());
    c.insert("sub".into(), node.into());
    c.insert("tenant".into(), tenant.into());
    c.insert("iat".into(), now().into());
    c.insert("exp".into(), (now() + 60).into());
    tweak(&mut c);
    serde_json::Value::Object(c)
}

fn hs256(claims: &serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign HS256")
}

fn rs256(claims: &serde_json::Value, keys: &Keys) -> String {
    let key = EncodingKey::from_rsa_pem(keys.rsa_private_pem.as_bytes()).expect("rsa pem");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("sign RS256")
}

/// Both nodes get a JWT instead of their stored token; edge a's tenant is
/// acme, b's globex (the claims bind the `shared` table's filter); they
/// sync through the hub and converge, each seeing only its tenant's rows.
async fn a_valid_jwt_syncs_end_to_end(backend: Backend, alg: Algorithm) {
    let keys = keys();
    let mut h = scope_env(backend, &keys.serve_extra).await;
    for (node, tenant) in [("a", "acme"), ("b", "globex")] {
        let c = claims(node, tenant, |_| {});
        let jwt = match alg {
            Algorithm::RS256 => rs256(&c, &keys),
            _ => hs256(&c, SECRET),
        };
        h.tokens.insert(node.to_string(), jwt);
    }
    let url = h.hubs[0].url.clone();
    h.write_edge_config(&url, super::SCOPE_EDGE_TABLES, "");
    central_run(
        &h.env,
        "INSERT INTO shared (id, tenant, body) VALUES (1, 'acme', 'x'), (2, 'globex', 'y');",
    )
    .await;
    h.env.init().await;
    h.env
        .edge("a")
        .execute_batch("INSERT INTO notes (id, body) VALUES (1, 'from a');")
        .expect("a writes");
    h.env.sync_all(2).await;
    let q = "SELECT id, tenant, body FROM shared ORDER BY id";
    assert_eq!(
        query_text(&h.env.edge("a"), q),
        rows(&[&["1", "acme", "x"]])
    );
    assert_eq!(
        query_text(&h.env.edge("b"), q),
        rows(&[&["2", "globex", "y"]])
    );
    assert_eq!(
        query_text(&h.env.edge("b"), "SELECT id, body FROM notes"),
        rows(&[&["1", "from a"]]),
        "a's write reached b through the central"
    );
    let c = central(&h.env, "SELECT body FROM notes", "SELECT body FROM notes").await;
    assert_eq!(c, rows(&[&["from a"]]));
    let audit = central(
        &h.env,
        "SELECT node, tenant, outcome FROM es_audit WHERE action = 'push' AND node = 'a' GROUP BY node, tenant, outcome",
        "SELECT node, tenant, outcome FROM es_audit WHERE action = 'push' AND node = 'a' GROUP BY node, tenant, outcome",
    )
    .await;
    assert_eq!(
        audit,
        rows(&[&["a", "acme", "ok"]]),
        "the push is audited as a's"
    );
}

async fn a_valid_hs256_jwt_syncs_end_to_end(backend: Backend) {
    a_valid_jwt_syncs_end_to_end(backend, Algorithm::HS256).await
}

async fn a_valid_rs256_jwt_syncs_end_to_end(backend: Backend) {
    a_valid_jwt_syncs_end_to_end(backend, Algorithm::RS256).await
}

/// Push one note as node a with `jwt` and expect a 401 `code`, audited
/// with `node`, and nothing written.
async fn refused(
    backend: Backend,
    jwt: impl FnOnce(&Keys) -> String,
    code: &str,
    node: Option<&str>,
) {
    let keys = keys();
    let h = scope_env(backend, &keys.serve_extra).await;
    let info = h.table_info("a", "notes").await;
    let token = jwt(&keys);
    let r = raw(
        &h.transport(0),
        Some(&token),
        p::PUSH,
        &push_body(&info, "a", 1),
        now(),
        |_| {},
    )
    .await;
    assert_refused(&h, &r, 401, code, node).await;
}

async fn an_expired_jwt_is_refused(backend: Backend) {
    refused(
        backend,
        |_| {
            hs256(
                &claims("a", "acme", |c| {
                    c.insert("exp".into(), (now() - 120).into());
                }),
                SECRET,
            )
        },
        "expired_token",
        Some("a"),
    )
    .await
}

async fn a_jwt_with_a_forged_signature_is_refused(backend: Backend) {
    refused(
        backend,
        // Claims of a real node, signed with a key the hub does not hold.
        |_| {
            hs256(
                &claims("a", "acme", |_| {}),
                "not the hub's secret, but as long",
            )
        },
        "bad_token",
        None,
    )
    .await
}

async fn a_jwt_from_another_issuer_is_refused(backend: Backend) {
    refused(
        backend,
        |_| {
            hs256(
                &claims("a", "acme", |c| {
                    c.insert("iss".into(), "https://evil.example".into());
                }),
                SECRET,
            )
        },
        "wrong_issuer",
        Some("a"),
    )
    .await
}

async fn a_jwt_for_another_audience_is_refused(backend: Backend) {
    refused(
        backend,
        |_| {
            hs256(
                &claims("a", "acme", |c| {
                    c.insert("aud".into(), "another-service".into());
                }),
                SECRET,
            )
        },
        "wrong_audience",
        Some("a"),
    )
    .await
}

/// A spliced RS256 token (one node's header and signature, another's
/// claims) does not verify either.
async fn a_spliced_rs256_jwt_is_refused(backend: Backend) {
    refused(
        backend,
        |keys| {
            let genuine = rs256(&claims("b", "globex", |_| {}), keys);
            let theirs = rs256(&claims("a", "acme", |_| {}), keys);
            let g: Vec<&str> = genuine.split('.').collect();
            let t: Vec<&str> = theirs.split('.').collect();
            format!("{}.{}.{}", g[0], t[1], g[2])
        },
        "bad_token",
        None,
    )
    .await
}

/// A key `serve` cannot use is reported by `check-config` (and `serve`
/// does not start), naming the key; the backend does not matter here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_jwt_key_is_named_by_check_config_and_serve() {
    let keys = keys();
    let h = scope_env(Backend::Sqlite, &keys.serve_extra).await;
    let out = h.hub_cli(&["check-config"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let config = std::fs::read_to_string(h.hub_config()).expect("hub.toml");
    let short = keys._dir.path().join("short.secret");
    std::fs::write(&short, "too short").expect("write");
    for (from, to, key) in [
        (
            "rs256.pem",
            "missing.pem".to_string(),
            "serve.jwt.rs256_public_key",
        ),
        (
            "hs256.secret",
            short.display().to_string(),
            "serve.jwt.hs256_secret_file",
        ),
    ] {
        let bad = config.replace(
            &keys._dir.path().join(from).display().to_string(),
            &keys._dir.path().join(&to).display().to_string(),
        );
        assert_ne!(bad, config);
        std::fs::write(h.hub_config(), &bad).expect("write hub.toml");
        let out = h.hub_cli(&["check-config"]);
        let err = crate::common::stderr(&out);
        assert!(!out.status.success() && err.contains(key), "{key}: {err}");
        let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_edgesync"))
            .arg("--config")
            .arg(h.hub_config())
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(s) = serve.try_wait().expect("wait") {
                break Some(s);
            }
            if std::time::Instant::now() > deadline {
                let _ = serve.kill();
                let _ = serve.wait();
                break None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let out = serve.wait_with_output().expect("serve output");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            status.is_some_and(|s| !s.success()) && err.contains(key),
            "serve started with a bad {key}: {err}"
        );
    }
}

hub_backends!(
    a_valid_hs256_jwt_syncs_end_to_end,
    a_valid_rs256_jwt_syncs_end_to_end,
    an_expired_jwt_is_refused,
    a_jwt_with_a_forged_signature_is_refused,
    a_jwt_from_another_issuer_is_refused,
    a_jwt_for_another_audience_is_refused,
    a_spliced_rs256_jwt_is_refused,
);
