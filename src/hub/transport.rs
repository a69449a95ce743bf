//! The edge's HTTPS connections to a hub: rustls (aws-lc-rs provider) with
//! the web PKI roots plus `central.ca`, HTTP/1.1 over hyper, a few idle
//! connections kept for reuse, zstd or gzip answers inflated (bounded). Certificate
//! verification is always on; there is no switch to turn it off.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::protocol as p;

/// Time to connect and finish the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a whole request and its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer accepted, inflated.
const MAX_ANSWER: usize = 1 << 30;
/// Idle connections kept.
const MAX_IDLE: usize = 4;

/// An answer from the hub.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
    /// The `Content-Encoding` the answer travelled with (`zstd`, `gzip`).
    pub encoding: Option<String>,
    /// The body, inflated.
    pub body: Vec<u8>,
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The hub could not be reached, or the connection broke (the request
    /// may or may not have been processed; every request is idempotent).
    Network(String),
    /// The hub's certificate is not trusted, or TLS failed otherwise.
    Tls(String),
}

/// Connections to one hub.
pub struct Transport {
    url: String,
    host: String,
    port: u16,
    base: String,
    server_name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

/// The client TLS config: web PKI roots plus the PEM certificates in `ca`.
pub fn client_tls(ca: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = ca {
        let mut n = 0;
        for cert in CertificateDer::pem_file_iter(ca)
            .with_context(|| format!("central.ca: cannot read {}", ca.display()))?
        {
            let cert = cert.with_context(|| format!("central.ca: {} is not PEM", ca.display()))?;
            roots.add(cert).with_context(|| {
                format!("central.ca: a certificate in {} is invalid", ca.display())
            })?;
            n += 1;
        }
        if n == 0 {
            bail!("central.ca: {} holds no certificate", ca.display());
        }
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(super::listener::provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

impl Transport {
    /// For `https://host[:port][/prefix]`, trusting `ca` besides the web PKI.
    pub fn new(url: &str, ca: Option<&Path>) -> anyhow::Result<Transport> {
        let uri: http::Uri = url
            .trim()
            .parse()
            .with_context(|| format!("central.url {url:?} is not a URL"))?;
        if uri.scheme_str() != Some("https") {
            bail!("central.url {url:?}: a hub is reached over https:// only");
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .with_context(|| format!("central.url {url:?} names no host"))?
            .to_string();
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let server_name = ServerName::try_from(bare.clone())
            .with_context(|| format!("central.url {url:?}: {host} is not a host name"))?;
        let base = uri.path().trim_end_matches('/').to_string();
        Ok(Transport {
            url: url.trim().to_string(),
            port: uri.port_u16().unwrap_or(443),
            host: bare,
            base,
            server_name,
            connector: tokio_rustls::TlsConnector::from(client_tls(ca)?),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        let net =
            |e: String| SendError::Network(format!("cannot reach the hub at {}: {e}", self.url));
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| net("connection timed out".into()))?
        .map_err(|e| net(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.connector.connect(self.server_name.clone(), tcp),
        )
        .await
        .map_err(|_| net("TLS handshake timed out".into()))?
        .map_err(|e| {
            let tls_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .map(ToString::to_string);
            match tls_error {
                Some(why) => SendError::Tls(format!(
                    "TLS with the hub at {} failed: {why} (is its certificate signed by a CA in central.ca?)",
                    self.url
                )),
                None => net(e.to_string()),
            }
        })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| net(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn sender(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut s) = idle else { break };
            if s.ready().await.is_ok() {
                return Ok(s);
            }
        }
        self.connect().await
    }

    /// Send one request (`path` relative to the URL's prefix) with `headers`
    /// and `body`, and read the whole answer.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Reply, SendError> {
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.send_inner(method, path, headers, body),
        )
        .await
        .unwrap_or_else(|_| {
            Err(SendError::Network(format!(
                "the hub at {} did not answer within {REQUEST_TIMEOUT:?}",
                self.url
            )))
        })
    }

    async fn send_inner(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Reply, SendError> {
        let net = |e: String| SendError::Network(format!("the hub at {}: {e}", self.url));
        let mut sender = self.sender().await?;
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::HOST, host)
            .header(header::ACCEPT_ENCODING, p::ACCEPT)
            .header(header::CONTENT_LENGTH, body.len().to_string());
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| net(format!("bad request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| net(e.to_string()))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let encoding = resp
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let raw = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| net(format!("reading the answer: {e}")))?
            .to_bytes();
        let body = p::decode_body(encoding.as_deref(), &raw, MAX_ANSWER)
            .map_err(|e| net(format!("undecodable answer: {e:?}")))?;
        if !sender.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(sender);
            }
        }
        Ok(Reply {
            status,
            retry_after,
            encoding,
            body,
        })
    }
}
