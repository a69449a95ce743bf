//! `sync.toml`: what an operator writes, and the checks it must pass.
//!
//! Configuration is handled in three steps, each with one job:
//!
//! 1. [`Config::load`] finds the file, layers `EDGESYNC_<SECTION>__<KEY>`
//!    environment overrides over it and deserializes it into the structs
//!    below. Errors name the file and the exact key (`table[1].conflcit`),
//!    because a daemon that says "invalid config" at 3 a.m. is no help.
//! 2. [`Config::validate`] is pure: it does no I/O and reports *every* problem
//!    at once, each with its dotted key, so one edit fixes the whole file.
//! 3. Everything that needs the outside world (connecting, reading table
//!    schemas, reading secrets with [`CentralConfig::password`]) happens
//!    later, in `check-config` and the engine.
//!
//! Secrets never live in the TOML file: the file names an environment
//! variable or a file that holds them, so `sync.toml` can be world-readable
//! and kept in version control.
//!
//! The doc comments on the fields below are the user documentation of every
//! key.

mod de;
mod error;
mod load;
mod secret;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgesync_core::{ConflictPolicy, DeleteMode, Direction};
use serde::Deserialize;

pub use error::{ConfigError, Problem};
pub use load::{DEFAULT_PATHS, ENV_PREFIX};
pub use validate::check_log_level;

/// Default `sync.interval`: how often the daemon syncs without a change
/// notification.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Default `sync.batch_rows`.
pub const DEFAULT_BATCH_ROWS: usize = 5000;
/// Default `sync.page_rows`.
pub const DEFAULT_PAGE_ROWS: usize = 5000;
/// Largest accepted `sync.batch_rows` / `sync.page_rows`.
pub const MAX_ROWS: usize = 1_000_000;
/// Default `sync.conflict`.
pub const DEFAULT_CONFLICT: ConflictPolicy = ConflictPolicy::ServerWins;
/// Default `sync.retry_max`: the longest wait between retries after a failure.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(5 * 60);
/// Default `sync.conflict_retention`: how long settled conflicts stay in the
/// conflict log.
pub const DEFAULT_CONFLICT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default `log.level`.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Default `serve.listen`.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8443";
/// Default `serve.max_body_bytes`: 16 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Largest accepted `serve.max_body_bytes`: 1 GiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024 * 1024;
/// Default `serve.max_page_rows`.
pub const DEFAULT_MAX_PAGE_ROWS: usize = 5000;
/// Default `serve.rate_per_node`: requests per second.
pub const DEFAULT_RATE_PER_NODE: u32 = 20;
/// Default `serve.rate_burst`.
pub const DEFAULT_RATE_BURST: u32 = 100;
/// Default `serve.request_timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `serve.clock_window`.
pub const DEFAULT_CLOCK_WINDOW: Duration = Duration::from_secs(300);
/// Widest accepted `serve.clock_window`.
pub const MAX_CLOCK_WINDOW: Duration = Duration::from_secs(3600);
/// Default `metrics.listen`: loopback only.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9187";
/// Shortest default `metrics.healthz_window` (the default is three
/// `sync.interval`s, but never less than this).
pub const MIN_HEALTHZ_WINDOW: Duration = Duration::from_secs(60);
/// URL schemes `central.url` may use.
pub const KNOWN_SCHEMES: &[&str] = &[
    "sqlite",
    "postgres",
    "postgresql",
    "mysql",
    "mssql",
    "oracle",
    "https",
];

/// The whole `sync.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[central]`: the central database (or hub) every edge syncs with.
    pub central: CentralConfig,
    /// `[[edge]]`: the edge SQLite files this daemon serves, one entry each.
    #[serde(rename = "edge", default)]
    pub edges: Vec<EdgeConfig>,
    /// `[sync]`: timing, batch sizes and the default conflict policy.
    #[serde(default)]
    pub sync: SyncConfig,
    /// `[[table]]`: the tables to sync, one entry each.
    #[serde(rename = "table", default)]
    pub tables: Vec<TableConfig>,
    /// `[log]`: log level and format.
    #[serde(default)]
    pub log: LogConfig,
    /// `[serve]`: hub mode (`edgesync serve`) only; absent on edge gateways.
    #[serde(default)]
    pub serve: Option<ServeConfig>,
    /// `[metrics]`: the Prometheus and `/healthz` endpoint of `run`; absent
    /// means no endpoint.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

/// `[central]`: where the central database is and how to log in.
///
/// Passwords and tokens are never written here: name an environment variable
/// (`password_env`, `token_env`) or a file (`password_file`, `token_file`)
/// that holds them.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentralConfig {
    /// Central database URL: `sqlite://PATH` (an embedded SQLite file;
    /// a relative path is relative to this config file's directory),
    /// `postgres://user@host:5432/db`, `mysql://…`, `mssql://…`, `oracle://…`,
    /// or `https://hub:8443` for a hub (`edgesync serve`). Must not contain a
    /// password.
    pub url: String,
    /// Name of the environment variable that holds the database password,
    /// e.g. `EDGESYNC_CENTRAL_PASSWORD` (set it in `/etc/default/edgesync`).
    #[serde(default)]
    pub password_env: Option<String>,
    /// File whose content is the database password (a trailing newline is
    /// ignored), e.g. a systemd credential. Relative to this config file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Hub mode: name of the environment variable that holds this node's
    /// token (from `edgesync token create` on the hub).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Hub mode: file whose content is this node's token. Relative to this
    /// config file.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// An extra trusted CA certificate (PEM) for the central's or the hub's
    /// TLS certificate. Relative to this config file.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

/// `[[edge]]`: one edge SQLite file and its node identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Node id, unique across every edge of the central database: letters,
    /// digits, `.`, `_` and `-`, at most 64 characters (e.g. `store-042`).
    pub node: String,
    /// Path of the edge SQLite file. Relative to this config file's directory.
    pub path: PathBuf,
    /// Values that table filters bind by name: with
    /// `params = { region = "north" }`, a filter `region = :region` selects
    /// the rows of region `north` for this edge.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// `[sync]`: when and how much to sync.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// How often `run` syncs even without a change notification, e.g. `"10s"`,
    /// `"1m 30s"`. Default `"10s"`.
    #[serde(deserialize_with = "de::duration")]
    pub interval: Duration,
    /// Most changes pushed to the central in one transaction. 1 to 1000000,
    /// default 5000.
    pub batch_rows: usize,
    /// Most rows pulled to an edge in one transaction (a page). 1 to 1000000,
    /// default 5000.
    pub page_rows: usize,
    /// Conflict policy for tables that do not set their own: `server-wins`
    /// (default), `client-wins`, `last-write-wins` (by hybrid logical
    /// clock), `field-merge` (three-way merge per column) or `manual`
    /// (central value kept, conflict parked for `edgesync conflicts
    /// resolve`).
    #[serde(deserialize_with = "de::via_str")]
    pub conflict: ConflictPolicy,
    /// Longest wait between retries after a failure (the wait grows after
    /// each failure, up to this). Default `"5m"`.
    #[serde(deserialize_with = "de::duration")]
    pub retry_max: Duration,
    /// How long a settled conflict stays in the conflict log (`conflicts
    /// list --all`), counted from when it was settled; older ones are
    /// purged during sync. Open (manual) conflicts are never purged.
    /// Default `"30d"`.
    #[serde(deserialize_with = "de::duration")]
    pub conflict_retention: Duration,
    /// How long the central keeps tombstones (hard deletes) and the sync
    /// state of nodes that stopped syncing, e.g. `"90d"`; unset (the
    /// default) keeps them forever. A tombstone is purged only once every
    /// node still active (synced within this period) has pulled it; a node
    /// away longer re-snapshots its tables when it comes back (its pending
    /// local changes are pushed first and kept).
    #[serde(deserialize_with = "de::duration_opt")]
    pub retention: Option<Duration>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            interval: DEFAULT_INTERVAL,
            batch_rows: DEFAULT_BATCH_ROWS,
            page_rows: DEFAULT_PAGE_ROWS,
            conflict: DEFAULT_CONFLICT,
            retry_max: DEFAULT_RETRY_MAX,
            conflict_retention: DEFAULT_CONFLICT_RETENTION,
            retention: None,
        }
    }
}

/// `[[table]]`: one synced table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The table's name in the edge files.
    pub name: String,
    /// The central table, possibly schema-qualified (`sales.orders`).
    /// Default: the same as `name`.
    #[serde(default)]
    pub central: Option<String>,
    /// Key columns (edge names) that identify a row. Default: the table's
    /// primary key.
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// Which way changes flow: `both` (default), `push` (edge to central
    /// only) or `pull` (central to edge only; the table is read-only on
    /// edges).
    #[serde(default = "default_direction", deserialize_with = "de::via_str")]
    pub direction: Direction,
    /// Conflict policy for this table: `server-wins`, `client-wins`,
    /// `last-write-wins`, `field-merge` or `manual`. Default:
    /// `sync.conflict`.
    #[serde(default, deserialize_with = "de::via_str_opt")]
    pub conflict: Option<ConflictPolicy>,
    /// What a delete does: `soft` (default; the row stays with its
    /// `es_deleted` marker set) or `hard` (the row is removed and a tombstone
    /// carries the delete).
    #[serde(default = "default_deletes", deserialize_with = "de::via_str")]
    pub deletes: DeleteMode,
    /// Column renames, edge column = central column, for columns whose names
    /// differ: `columns = { cust = "customer_id" }`. Other columns map by
    /// name.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// SQL condition on the central table selecting the rows edges receive;
    /// `:name` binds the edge's `params.name`, e.g. `"region = :region"`.
    /// Default: every row.
    #[serde(default)]
    pub filter: Option<String>,
}

fn default_direction() -> Direction {
    Direction::Both
}

fn default_deletes() -> DeleteMode {
    DeleteMode::Soft
}

/// `[log]`: what the daemon logs and how.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info` (default), `debug`, `trace` or `off`, or a
    /// per-module filter such as `"info,edgesync=debug"`. `--log-level`
    /// overrides it.
    pub level: String,
    /// `auto` (default: text adapted to a terminal or to journald), `text`
    /// or `json` (one object per line).
    #[serde(deserialize_with = "de::via_str")]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: DEFAULT_LOG_LEVEL.to_string(),
            format: LogFormat::Auto,
        }
    }
}

/// `log.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text, adapted to where the output goes (terminal or journald).
    #[default]
    Auto,
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[serve]`: the hub's HTTPS endpoint (`edgesync serve`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address and port to listen on. Default `"0.0.0.0:8443"`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// TLS certificate chain (PEM). Relative to this config file.
    pub tls_cert: PathBuf,
    /// TLS private key (PEM). Relative to this config file.
    pub tls_key: PathBuf,
    /// Largest request body the hub accepts, in bytes, compressed or
    /// inflated (larger: 413). 1024 to 1073741824, default 16777216 (16 MiB).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Most rows per pull page, whatever an edge's `sync.page_rows` asks
    /// for. 1 to 1000000, default 5000.
    #[serde(default = "default_max_page_rows")]
    pub max_page_rows: usize,
    /// Requests per second one node may make, sustained, to this hub
    /// instance (more: 429 with `Retry-After`); 0 turns the limit off.
    /// Default 20.
    #[serde(default = "default_rate_per_node")]
    pub rate_per_node: u32,
    /// Requests a node may make at once before `rate_per_node` applies.
    /// Default 100.
    #[serde(default = "default_rate_burst")]
    pub rate_burst: u32,
    /// Longest one request may take, reading its body included; then the
    /// hub answers 503 and the edge retries. Default `"60s"`.
    #[serde(default = "default_request_timeout", deserialize_with = "de::duration")]
    pub request_timeout: Duration,
    /// How far a request's signing time may be from the hub's clock; older
    /// or newer requests are refused (401), and request nonces are kept
    /// this long to refuse replays. 1s to 1h, default `"5m"`.
    #[serde(default = "default_clock_window", deserialize_with = "de::duration")]
    pub clock_window: Duration,
    /// `[serve.jwt]`: accept JWTs (HS256 and/or RS256) as node credentials,
    /// besides the tokens of `edgesync token create`.
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
}

/// `[serve.jwt]`: JSON Web Tokens as node credentials. A JWT names its node
/// (`node`, else `sub`), tenant (`tenant`) and filter params (`params`, an
/// object); the hub checks its signature, `iss`, `aud`, `exp` and `nbf`.
/// Secrets come from the environment or a file, never from the TOML.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The one `iss` accepted.
    pub issuer: String,
    /// The `aud` a token must name (among others, if it names several).
    pub audience: String,
    /// Environment variable holding the HS256 shared secret (at least 32
    /// bytes).
    #[serde(default)]
    pub hs256_secret_env: Option<String>,
    /// File holding the HS256 shared secret (relative to this config file).
    #[serde(default)]
    pub hs256_secret_file: Option<PathBuf>,
    /// PEM file with the RSA public key RS256 tokens are verified with
    /// (relative to this config file).
    #[serde(default)]
    pub rs256_public_key: Option<PathBuf>,
    /// Clock skew allowed on `exp` and `nbf`. 0s to 5m, default `"30s"`.
    #[serde(default = "default_jwt_leeway", deserialize_with = "de::duration")]
    pub leeway: Duration,
}

/// Default `serve.jwt.leeway`.
pub const DEFAULT_JWT_LEEWAY: Duration = Duration::from_secs(30);
/// Widest accepted `serve.jwt.leeway`.
pub const MAX_JWT_LEEWAY: Duration = Duration::from_secs(300);

fn default_jwt_leeway() -> Duration {
    DEFAULT_JWT_LEEWAY
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_max_page_rows() -> usize {
    DEFAULT_MAX_PAGE_ROWS
}

fn default_rate_per_node() -> u32 {
    DEFAULT_RATE_PER_NODE
}

fn default_rate_burst() -> u32 {
    DEFAULT_RATE_BURST
}

fn default_request_timeout() -> Duration {
    DEFAULT_REQUEST_TIMEOUT
}

fn default_clock_window() -> Duration {
    DEFAULT_CLOCK_WINDOW
}

/// `[metrics]`: what `edgesync run` serves over plain HTTP for monitoring:
/// `/metrics` (Prometheus text format) and `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address and port to listen on, e.g. `"127.0.0.1:9187"` (the
    /// default). The endpoint has no authentication: keep it on loopback or
    /// a management network.
    #[serde(default = "default_metrics_listen")]
    pub listen: String,
    /// How long an edge may go without a successful sync before `/healthz`
    /// answers 503 and names it, e.g. `"5m"`. Default: three
    /// `sync.interval`s, but at least 60 s.
    #[serde(default, deserialize_with = "de::duration_opt")]
    pub healthz_window: Option<Duration>,
}

fn default_metrics_listen() -> String {
    DEFAULT_METRICS_LISTEN.to_string()
}

impl MetricsConfig {
    /// `healthz_window`, or its default for `interval`.
    pub fn healthz_window(&self, interval: Duration) -> Duration {
        self.healthz_window
            .unwrap_or_else(|| interval.saturating_mul(3).max(MIN_HEALTHZ_WINDOW))
    }
}

/// A config as loaded: the settings and the file they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The settings, with environment overrides applied and relative paths
    /// resolved against the file's directory.
    pub config: Config,
    /// The config file (absolute).
    pub path: PathBuf,
}

impl LoadedConfig {
    /// The directory of the config file, against which relative paths
    /// (edge files, the SQLite central) resolve.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// [`Config::validate`], plus the checks that need the file's location;
    /// problems are reported with the file name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = match self.config.validate() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_problems(),
        };
        problems.extend(validate::located(&self.config, self.dir()));
        ConfigError::invalid(Some(&self.path), problems)
    }
}

impl Config {
    /// The conflict policy `table` uses: its own, else `sync.conflict`.
    pub fn conflict_for(&self, table: &TableConfig) -> ConflictPolicy {
        table.conflict.unwrap_or(self.sync.conflict)
    }

    /// The `[[table]]` entry for edge table `name` (case-insensitive).
    pub fn table(&self, name: &str) -> Option<&TableConfig> {
        self.tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// The `[[edge]]` entry for node `node`.
    pub fn edge(&self, node: &str) -> Option<&EdgeConfig> {
        self.edges.iter().find(|e| e.node == node)
    }
}

impl TableConfig {
    /// The central table name: `central`, else `name`.
    pub fn central_name(&self) -> &str {
        self.central.as_deref().unwrap_or(&self.name)
    }

    /// The central column an edge column maps to (`columns`, else the same
    /// name).
    pub fn central_column<'a>(&'a self, edge_column: &'a str) -> &'a str {
        self.columns
            .get(edge_column)
            .map(String::as_str)
            .unwrap_or(edge_column)
    }
}

impl CentralConfig {
    /// The URL scheme, lower-cased (`postgres`), if the URL has one.
    pub fn scheme(&self) -> Option<String> {
        secret::scheme(&self.url).map(|s| s.to_ascii_lowercase())
    }

    /// Whether the central is a hub (`https://`), reached with a node token.
    pub fn is_hub(&self) -> bool {
        self.scheme().as_deref() == Some("https")
    }

    /// The URL with any password replaced by `***`, for logs and messages.
    pub fn redacted_url(&self) -> String {
        secret::redact_url(&self.url)
    }
}

/// Shows the URL without its password, so a config can be logged safely.
impl fmt::Debug for CentralConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CentralConfig")
            .field("url", &self.redacted_url())
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field("token_env", &self.token_env)
            .field("token_file", &self.token_file)
            .field("ca", &self.ca)
            .finish()
    }
}
