//! The harness of the hub tests: a test CA and hub certificate made with
//! rcgen, the hub's own `sync.toml`, `edgesync serve` as child processes on
//! loopback ports, node tokens from `edgesync token create`, and an edge
//! `sync.toml` (the [`Env`]'s, so its helpers work unchanged) whose central
//! is `https://` one of the hubs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use edgesync::hub::auth;
use edgesync::hub::client::HubCentral;
use edgesync::hub::protocol as p;
use edgesync::hub::transport::{Reply, Transport};

use crate::common::{Backend, Dialects, Env};

pub use crate::common::hub::{make_tls, Serve, Tls};

/// One hub test's world: the [`Env`] (central, edges, edge `sync.toml`),
/// the hub's config, its certificate, the nodes' tokens and the running
/// hubs.
pub struct HubEnv {
    /// Declared first so the hubs stop before the central is dropped.
    pub hubs: Vec<Serve>,
    pub env: Env,
    pub tls: Tls,
    pub tokens: BTreeMap<String, String>,
    pub tables: String,
}

impl HubEnv {
    /// A central with `ddl`, provisioned by `init-sync` on a hub whose
    /// config has `tables` and `serve_extra` (more `[serve]` keys); a token
    /// for each node; one hub running; the edge config pointing at it.
    pub async fn new(
        backend: Backend,
        nodes: &[&str],
        ddl: impl Dialects,
        tables: &str,
        serve_extra: &str,
    ) -> HubEnv {
        let env = Env::new(backend, nodes, ddl).await;
        let tls = make_tls(env.path());
        let mut h = HubEnv {
            env,
            tls,
            tokens: BTreeMap::new(),
            hubs: Vec::new(),
            tables: tables.to_string(),
        };
        h.write_hub_config(serve_extra);
        let out = h.hub_cli(&["init-sync"]);
        assert!(
            out.status.success(),
            "hub init-sync: {}",
            crate::common::stderr(&out)
        );
        for n in nodes {
            let t = h.create_token(n, &[]);
            h.tokens.insert(n.to_string(), t);
        }
        let serve = h.start();
        h.write_edge_config(&serve.url, tables, "");
        h.hubs.push(serve);
        h
    }

    pub fn hub_config(&self) -> PathBuf {
        self.env.path().join("hub.toml")
    }

    fn write_hub_config(&self, serve_extra: &str) {
        let s = format!(
            "{}{}\n",
            crate::common::hub::hub_config_head(&self.env.central_url, &self.tls, serve_extra),
            self.tables
        );
        std::fs::write(self.hub_config(), s).expect("write hub.toml");
    }

    /// Write the edge `sync.toml`: every node of the env, the hub at `url`,
    /// all tokens in one file, the test CA.
    pub fn write_edge_config(&self, url: &str, tables: &str, sync_extra: &str) {
        let tokens = self.env.path().join("tokens.txt");
        let all: Vec<&str> = self.tokens.values().map(String::as_str).collect();
        std::fs::write(&tokens, all.join("\n")).expect("write tokens");
        let mut s = format!(
            "[central]\nurl = \"{url}\"\ntoken_file = \"{}\"\nca = \"{}\"\n\n",
            tokens.display(),
            self.tls.ca.display()
        );
        for n in &self.env.nodes {
            s.push_str(&format!(
                "[[edge]]\nnode = \"{n}\"\npath = \"{}\"\n\n",
                self.env.edge_path(n).display()
            ));
        }
        s.push_str(&format!(
            "[sync]\ninterval = \"1s\"\n{sync_extra}\n\n{tables}\n"
        ));
        std::fs::write(self.env.config_path(), s).expect("write sync.toml");
    }

    /// Run the binary with the hub's config.
    pub fn hub_cli(&self, args: &[&str]) -> std::process::Output {
        crate::common::hub::cli(&self.hub_config(), args)
    }

    /// `token create --node N [--param ...]`; the printed token.
    pub fn create_token(&self, node: &str, extra: &[&str]) -> String {
        crate::common::hub::create_token(&self.hub_config(), node, extra)
    }

    /// Start another `edgesync serve` on the hub config.
    pub fn start(&self) -> Serve {
        crate::common::hub::start_serve(&self.hub_config(), self.env.path())
    }

    /// A client for hub `i` with `token`.
    pub fn client(&self, i: usize, token: &str) -> HubCentral {
        HubCentral::connect(&self.hubs[i].url, token, Some(&self.tls.ca)).expect("hub client")
    }

    /// A raw connection to hub `i`.
    pub fn transport(&self, i: usize) -> Transport {
        Transport::new(&self.hubs[i].url, Some(&self.tls.ca)).expect("transport")
    }

    /// The hub's layout and central name of `table`, as `node` sees them.
    pub async fn table_info(&self, node: &str, table: &str) -> p::TableInfo {
        let reg = self
            .client(0, &self.tokens[node])
            .register(&self.tokens[node])
            .await
            .expect("register");
        reg.tables
            .into_iter()
            .find(|t| t.edge == table)
            .unwrap_or_else(|| panic!("the hub serves no {table}"))
    }

    /// The newest audit entry: node, outcome, status, table (`NULL` for
    /// null).
    pub async fn last_audit(&self) -> Vec<String> {
        let q = "SELECT node, outcome, status, tbl FROM es_audit ORDER BY id DESC LIMIT 1";
        let rows = self
            .env
            .central_query(crate::common::Sql {
                sqlite: q,
                postgres: "SELECT node, outcome, status::text, tbl FROM es_audit ORDER BY id DESC LIMIT 1",
                mysql: q,
            })
            .await;
        rows.into_iter().next().expect("an audit entry")
    }
}

/// Send a raw request: `token` signs it unless `None`; `tweak` may change
/// the headers after signing.
pub async fn raw(
    t: &Transport,
    token: Option<&str>,
    path: &str,
    body: &[u8],
    now: i64,
    tweak: impl FnOnce(&mut Vec<(&'static str, String)>),
) -> Reply {
    let mut headers: Vec<(&'static str, String)> =
        vec![("content-type", "application/json".to_string())];
    if let Some(token) = token {
        let s = auth::sign_request(token, "POST", path, body, now).expect("sign");
        headers.push(("authorization", s.authorization));
        headers.push((p::H_TIMESTAMP, s.timestamp));
        headers.push((p::H_NONCE, s.nonce));
        headers.push((p::H_SIGNATURE, s.signature));
    }
    tweak(&mut headers);
    t.send("POST", path, &headers, body.to_vec())
        .await
        .expect("an answer from the hub")
}

/// Now, in unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The error body of a refusal.
pub fn error_body(r: &Reply) -> p::ErrorBody {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "not an error body ({e}): {}",
            String::from_utf8_lossy(&r.body)
        )
    })
}
