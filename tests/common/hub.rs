//! What every hub-mode test needs, whether it drives the hub itself
//! (`tests/hub.rs`) or runs a direct-mode test through a hub
//! ([`crate::for_each_backend_and_hub!`]): a test CA and a hub certificate
//! made with rcgen, and `edgesync serve` as a child process on a loopback
//! port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `edgesync serve`; killed when dropped.
pub struct Serve {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The certificate files of one test.
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA, and a certificate it signed for 127.0.0.1 and localhost, written
/// to `dir`.
pub fn make_tls(dir: &Path) -> Tls {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "edgesync test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
        .expect("ca cert");
    let key = KeyPair::generate().expect("hub key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("hub params");
    params
        .distinguished_name
        .push(DnType::CommonName, "edgesync test hub");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca).expect("hub cert");
    let tls = Tls {
        ca: dir.join("ca.pem"),
        cert: dir.join("hub.pem"),
        key: dir.join("hub.key"),
    };
    std::fs::write(&tls.ca, ca.pem()).expect("write ca");
    std::fs::write(&tls.cert, cert.pem()).expect("write cert");
    std::fs::write(&tls.key, key.serialize_pem()).expect("write key");
    tls
}

/// The `[central]` and `[serve]` part of a hub's `sync.toml`: `central_url`
/// behind a hub on a free loopback port with `tls`'s certificate, plus
/// `serve_extra` (more `[serve]` keys).
pub fn hub_config_head(central_url: &str, tls: &Tls, serve_extra: &str) -> String {
    format!(
        "[central]\nurl = \"{central_url}\"\n\n[serve]\nlisten = \"127.0.0.1:0\"\n\
         tls_cert = \"{}\"\ntls_key = \"{}\"\n{serve_extra}\n\n",
        tls.cert.display(),
        tls.key.display(),
    )
}

/// Run the binary with `config`.
pub fn cli(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edgesync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run edgesync")
}

/// `token create --node N [extra...]` with the hub's `config`; the printed
/// token.
pub fn create_token(config: &Path, node: &str, extra: &[&str]) -> String {
    let mut args = vec!["token", "create", "--node", node];
    args.extend_from_slice(extra);
    let out = cli(config, &args);
    assert!(
        out.status.success(),
        "token create: {}",
        crate::common::stderr(&out)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        edgesync::hub::auth::token_id(&token).is_some(),
        "printed {token:?}"
    );
    token
}

/// Start `edgesync serve` with the hub's `config`, its log in a
/// `serve-*.log` file of `dir`; returns once it listens.
pub fn start_serve(config: &Path, dir: &Path) -> Serve {
    let log =
        std::fs::File::create(dir.join(format!("serve-{}.log", uuid::Uuid::new_v4().simple())))
            .expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgesync"))
        .arg("--config")
        .arg(config)
        .args(["--log-level", "info", "serve"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    let Some(url) = line.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "serve did not start: {line:?} (see serve-*.log in {})",
            dir.display()
        );
    };
    Serve {
        url: url.to_string(),
        child,
    }
}

/// The hub of an [`crate::common::Env`] in a hub run
/// ([`crate::for_each_backend_and_hub!`]): the hub's `sync.toml` carries
/// the tables and `[sync]` keys the test wrote for its edges, and the hub
/// is provisioned, given node tokens and (re)started lazily, the first time
/// the test provisions or syncs after a config change, so a test runs the
/// same steps in both modes (rows it writes on the central before its
/// `init` are there before provisioning in both).
pub struct HubSide {
    pub tls: Tls,
    /// The hub's fixed loopback port, so the edges' config can name it
    /// before the hub first starts.
    port: u16,
    config: PathBuf,
    dir: PathBuf,
    nodes: Vec<String>,
    central_url: String,
    state: std::sync::Mutex<HubState>,
}

#[derive(Default)]
struct HubState {
    /// Node id to token.
    tokens: std::collections::BTreeMap<String, String>,
    serve: Option<Serve>,
    /// The `hub.toml` text the running hub was started with.
    started_with: String,
}

impl HubSide {
    /// A hub for the central at `central_url` and edges `nodes`, its files
    /// in `dir`; nothing runs yet.
    pub fn new(dir: &Path, nodes: &[String], central_url: &str) -> HubSide {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        HubSide {
            tls: make_tls(dir),
            port,
            config: dir.join("hub.toml"),
            dir: dir.to_path_buf(),
            nodes: nodes.to_vec(),
            central_url: central_url.to_string(),
            state: Default::default(),
        }
    }

    /// The hub's `sync.toml`.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Write the hub's `sync.toml` with the edges' `tables` and `[sync]`
    /// extras, and return the `[central]` section of the edges' config. A
    /// running hub is restarted on the new config at once.
    pub fn configure(&self, tables: &str, sync_extra: &str) -> String {
        let head = hub_config_head(&self.central_url, &self.tls, "")
            .replace("127.0.0.1:0", &format!("127.0.0.1:{}", self.port));
        let text = format!("{head}[sync]\ninterval = \"1s\"\n{sync_extra}\n\n{tables}\n");
        std::fs::write(&self.config, text).expect("write hub.toml");
        if self.lock().serve.is_some() {
            self.ensure();
        }
        format!(
            "[central]\nurl = \"https://127.0.0.1:{}\"\ntoken_file = \"{}\"\nca = \"{}\"\n\n",
            self.port,
            self.tokens_path().display(),
            self.tls.ca.display()
        )
    }

    /// Make sure the hub runs on its current config: provision the central
    /// through the hub's `init-sync` (idempotent), create missing node
    /// tokens and (re)start `edgesync serve`.
    pub fn ensure(&self) {
        let text = std::fs::read_to_string(&self.config).expect("read hub.toml");
        let mut state = self.lock();
        if state.serve.is_some() && state.started_with == text {
            return;
        }
        state.serve = None;
        let out = cli(&self.config, &["init-sync"]);
        assert!(
            out.status.success(),
            "hub init-sync: {}",
            crate::common::stderr(&out)
        );
        for n in &self.nodes {
            if !state.tokens.contains_key(n) {
                let token = create_token(&self.config, n, &[]);
                state.tokens.insert(n.clone(), token);
            }
        }
        let all: Vec<&str> = state.tokens.values().map(String::as_str).collect();
        std::fs::write(self.tokens_path(), all.join("\n")).expect("write tokens");
        state.serve = Some(start_serve(&self.config, &self.dir));
        state.started_with = text;
    }

    fn tokens_path(&self) -> PathBuf {
        self.dir.join("tokens.txt")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
