//! The pure checks: no I/O, every problem reported, each with its key.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;

use edgesync_core::names::is_reserved;
use edgesync_core::{ConflictPolicy, QualifiedName};

use super::{
    secret, CentralConfig, Config, ConfigError, EdgeConfig, JwtConfig, LogConfig, MetricsConfig,
    Problem, ServeConfig, SyncConfig, TableConfig, KNOWN_SCHEMES, MAX_BODY_BYTES, MAX_CLOCK_WINDOW,
    MAX_JWT_LEEWAY, MAX_ROWS,
};

/// Longest node id.
const MAX_NODE_LEN: usize = 64;

/// Levels accepted by `log.level` and `--log-level`.
const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

impl Config {
    /// Check everything that can be checked without touching a database or
    /// the file system, and report every problem found, each naming its key
    /// (`table[1].name`, `sync.batch_rows`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut v = Vec::new();
        check_central(&self.central, self.serve.is_some(), &mut v);
        check_edges(self, &mut v);
        check_sync(&self.sync, &mut v);
        check_tables(self, &mut v);
        check_log(&self.log, &mut v);
        if let Some(serve) = &self.serve {
            check_serve(serve, &mut v);
        }
        if let Some(metrics) = &self.metrics {
            check_metrics(metrics, &mut v);
        }
        ConfigError::invalid(None, v)
    }
}

/// Checks that need the config file's directory (still no I/O).
pub(super) fn located(config: &Config, dir: &Path) -> Vec<Problem> {
    let mut v = Vec::new();
    let url = &config.central.url;
    if let Some(rest) = url
        .split_once("://")
        .filter(|(s, _)| s.eq_ignore_ascii_case("sqlite"))
        .map(|(_, rest)| rest)
        .filter(|rest| !rest.is_empty())
    {
        let central = std::path::absolute(dir.join(rest)).unwrap_or_else(|_| dir.join(rest));
        for (i, edge) in config.edges.iter().enumerate() {
            if edge.path == central {
                v.push(Problem::new(
                    format!("edge[{i}].path"),
                    format!(
                        "{} is the central database file (central.url); an edge needs its own file",
                        edge.path.display()
                    ),
                ));
            }
        }
    }
    v
}

/// Whether `level` is a valid `log.level` / `--log-level`: a level, or a
/// comma-separated filter such as `info,edgesync=debug`.
/// Shortest `sync.retention`: a purge must never outrun a node that merely
/// missed a few sync intervals.
const MIN_RETENTION: std::time::Duration = std::time::Duration::from_secs(3600);

pub fn check_log_level(level: &str) -> Result<(), String> {
    let hint =
        "use error, warn, info, debug, trace or off, or a filter like \"info,edgesync=debug\"";
    if level.trim().is_empty() {
        return Err(format!("empty; {hint}"));
    }
    for part in level.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let lvl = match part.rsplit_once('=') {
            Some((target, _)) if target.trim().is_empty() => {
                return Err(format!("{part:?} names no module; {hint}"));
            }
            Some((_, lvl)) => lvl.trim(),
            None => part,
        };
        if !LEVELS.contains(&lvl.to_ascii_lowercase().as_str()) {
            return Err(format!("{lvl:?} is not a log level; {hint}"));
        }
    }
    Ok(())
}

fn check_central(c: &CentralConfig, is_hub_server: bool, v: &mut Vec<Problem>) {
    let url = c.url.trim();
    let shown = secret::redact_url(url);
    if url.is_empty() {
        v.push(Problem::new(
            "central.url",
            "empty; set the central database URL, e.g. \"sqlite://central.db\" or \
             \"postgres://edgesync@db.example/erp\"",
        ));
    } else {
        match url.split_once("://") {
            None | Some(("", _)) => v.push(Problem::new(
                "central.url",
                format!(
                    "{shown:?} has no scheme; expected {}",
                    KNOWN_SCHEMES
                        .iter()
                        .map(|s| format!("{s}://"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            Some((scheme, rest)) => {
                let lower = scheme.to_ascii_lowercase();
                if !KNOWN_SCHEMES.contains(&lower.as_str()) {
                    v.push(Problem::new(
                        "central.url",
                        format!(
                            "unknown scheme \"{scheme}\" in {shown:?}; known: {}",
                            KNOWN_SCHEMES.join(", ")
                        ),
                    ));
                } else if rest.is_empty() || rest.starts_with(['?', '#']) {
                    let what = if lower == "sqlite" {
                        "SQLite file"
                    } else {
                        "host"
                    };
                    v.push(Problem::new(
                        "central.url",
                        format!("{shown:?} names no {what}"),
                    ));
                }
            }
        }
    }
    for (what, env, file) in [
        ("password", &c.password_env, c.password_file.is_some()),
        ("token", &c.token_env, c.token_file.is_some()),
    ] {
        if env.is_some() && file {
            v.push(Problem::new(
                format!("central.{what}_file"),
                format!("set either {what}_env or {what}_file, not both"),
            ));
        }
        if let Some(var) = env {
            if var.is_empty() || var.contains(['=', '\0']) {
                v.push(Problem::new(
                    format!("central.{what}_env"),
                    format!("{var:?} is not an environment variable name"),
                ));
            }
        }
    }
    for (key, path) in [
        ("password_file", &c.password_file),
        ("token_file", &c.token_file),
        ("ca", &c.ca),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            v.push(Problem::new(
                format!("central.{key}"),
                "empty path; remove the key or name a file",
            ));
        }
    }
    if c.is_hub() {
        if is_hub_server {
            v.push(Problem::new(
                "central.url",
                "a hub ([serve]) must connect to the central database itself, not to another \
                 hub (https://)",
            ));
        } else if c.token_env.is_none() && c.token_file.is_none() {
            v.push(Problem::new(
                "central.token_env",
                "a hub URL (https://) needs this node's token: set token_env or token_file",
            ));
        }
    }
}

fn check_edges(config: &Config, v: &mut Vec<Problem>) {
    if config.edges.is_empty() && config.serve.is_none() {
        v.push(Problem::new(
            "edge",
            "none defined; add an [[edge]] with node and path for each edge SQLite file",
        ));
    }
    let mut nodes: HashMap<&str, usize> = HashMap::new();
    let mut paths: HashMap<&Path, usize> = HashMap::new();
    for (i, edge) in config.edges.iter().enumerate() {
        check_node_id(i, edge, &mut nodes, v);
        if edge.path.as_os_str().is_empty() {
            v.push(Problem::new(
                format!("edge[{i}].path"),
                "empty; name the edge SQLite file",
            ));
        } else if let Some(first) = paths.get(edge.path.as_path()) {
            v.push(Problem::new(
                format!("edge[{i}].path"),
                format!(
                    "duplicate edge file {} (also given by edge[{first}])",
                    edge.path.display()
                ),
            ));
        } else {
            paths.insert(&edge.path, i);
        }
        for name in edge.params.keys() {
            if !is_ident(name) {
                v.push(Problem::new(
                    format!("edge[{i}].params.{name}"),
                    "parameter names must be letters, digits and '_', not starting with a \
                     digit, so filters can bind them as :name",
                ));
            }
        }
    }
}

fn check_node_id<'a>(
    i: usize,
    edge: &'a EdgeConfig,
    seen: &mut HashMap<&'a str, usize>,
    v: &mut Vec<Problem>,
) {
    let key = format!("edge[{i}].node");
    let node = edge.node.as_str();
    if node.is_empty() {
        v.push(Problem::new(key, "empty node id"));
        return;
    }
    let valid_chars = node
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid_chars || node.len() > MAX_NODE_LEN {
        v.push(Problem::new(
            &key,
            format!(
                "invalid node id {node:?}: use letters, digits, '.', '_' and '-', at most \
                 {MAX_NODE_LEN} characters"
            ),
        ));
    }
    match seen.get(node) {
        Some(first) => v.push(Problem::new(
            key,
            format!("duplicate node id {node:?} (also given by edge[{first}])"),
        )),
        None => {
            seen.insert(node, i);
        }
    }
}

fn check_sync(s: &SyncConfig, v: &mut Vec<Problem>) {
    for (key, value) in [("batch_rows", s.batch_rows), ("page_rows", s.page_rows)] {
        if !(1..=MAX_ROWS).contains(&value) {
            v.push(Problem::new(
                format!("sync.{key}"),
                format!("{value} is out of range; use 1 to {MAX_ROWS}"),
            ));
        }
    }
    if s.interval.is_zero() {
        v.push(Problem::new(
            "sync.interval",
            "must be longer than zero, e.g. \"10s\"",
        ));
    }
    if s.retry_max.is_zero() {
        v.push(Problem::new(
            "sync.retry_max",
            "must be longer than zero, e.g. \"5m\"",
        ));
    }
    if s.conflict == ConflictPolicy::OutOfScope {
        v.push(Problem::new("sync.conflict", OUT_OF_SCOPE_POLICY));
    }
    if s.retention.is_some_and(|r| r < MIN_RETENTION) {
        v.push(Problem::new(
            "sync.retention",
            "must be at least one hour, e.g. \"90d\" (tombstones and the state of departed nodes are kept this long)",
        ));
    }
    if s.conflict_retention.is_zero() {
        v.push(Problem::new(
            "sync.conflict_retention",
            "must be longer than zero, e.g. \"30d\" (settled conflicts are kept this long)",
        ));
    }
}

fn check_tables(config: &Config, v: &mut Vec<Problem>) {
    if config.tables.is_empty() && !config.central.is_hub() {
        v.push(Problem::new(
            "table",
            "none defined; add a [[table]] with the name of each table to sync",
        ));
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut centrals: HashMap<String, usize> = HashMap::new();
    for (i, t) in config.tables.iter().enumerate() {
        let key = |field: &str| format!("table[{i}].{field}");
        if t.name.trim().is_empty() {
            v.push(Problem::new(key("name"), "empty table name"));
        } else {
            check_reserved(key("name"), "table", &t.name, v);
            let folded = t.name.to_ascii_lowercase();
            match names.get(&folded) {
                Some(first) => v.push(Problem::new(
                    key("name"),
                    format!(
                        "duplicate table {:?} (also given by table[{first}])",
                        t.name
                    ),
                )),
                None => {
                    names.insert(folded, i);
                }
            }
        }
        if t.central.is_some() || names.get(&t.name.to_ascii_lowercase()) == Some(&i) {
            // (A duplicate name is reported once, above.)
            check_central_name(i, t, &mut centrals, v);
        }
        check_key(i, t, v);
        check_columns(i, t, v);
        if let Some(filter) = &t.filter {
            check_filter(i, filter, &config.edges, v);
        }
        if t.conflict == Some(ConflictPolicy::OutOfScope) {
            v.push(Problem::new(key("conflict"), OUT_OF_SCOPE_POLICY));
        }
    }
}

/// `out-of-scope` names refused pushes in the conflict log; it decides
/// nothing, so no table may choose it.
const OUT_OF_SCOPE_POLICY: &str = "\"out-of-scope\" is what the conflict log records for a push \
     outside a node's filter, not a policy; use server-wins, client-wins, last-write-wins, \
     field-merge or manual";

fn check_central_name(
    i: usize,
    t: &TableConfig,
    seen: &mut HashMap<String, usize>,
    v: &mut Vec<Problem>,
) {
    let key = format!("table[{i}].central");
    let Some(central) = &t.central else {
        // Defaults to `name`, checked above; still must be unique centrally.
        if !t.name.trim().is_empty() {
            note_central(i, &key, t.central_name(), seen, v);
        }
        return;
    };
    let q = QualifiedName::parse(central);
    if central.trim().is_empty()
        || q.name.trim().is_empty()
        || q.schema.as_deref().is_some_and(|s| s.trim().is_empty())
    {
        v.push(Problem::new(
            key,
            format!("{central:?} is not a table name; write \"table\" or \"schema.table\""),
        ));
        return;
    }
    check_reserved(key.clone(), "table", &q.name, v);
    note_central(i, &key, central, seen, v);
}

fn note_central(
    i: usize,
    key: &str,
    central: &str,
    seen: &mut HashMap<String, usize>,
    v: &mut Vec<Problem>,
) {
    let folded = central.to_ascii_lowercase();
    match seen.get(&folded) {
        Some(first) => v.push(Problem::new(
            key,
            format!("central table {central:?} is also synced by table[{first}]"),
        )),
        None => {
            seen.insert(folded, i);
        }
    }
}

fn check_key(i: usize, t: &TableConfig, v: &mut Vec<Problem>) {
    let Some(cols) = &t.key else { return };
    let key = format!("table[{i}].key");
    if cols.is_empty() {
        v.push(Problem::new(
            key,
            "empty list; name the key columns or remove the key to use the primary key",
        ));
        return;
    }
    let mut seen = BTreeSet::new();
    for col in cols {
        if col.trim().is_empty() {
            v.push(Problem::new(&key, "empty column name"));
        } else if !seen.insert(col.to_ascii_lowercase()) {
            v.push(Problem::new(
                &key,
                format!("column {col:?} is listed twice"),
            ));
        } else {
            check_reserved(key.clone(), "column", col, v);
        }
    }
}

fn check_columns(i: usize, t: &TableConfig, v: &mut Vec<Problem>) {
    let mut targets: HashMap<String, &str> = HashMap::new();
    for (edge_col, central_col) in &t.columns {
        let key = format!("table[{i}].columns.{edge_col}");
        if edge_col.trim().is_empty() || central_col.trim().is_empty() {
            v.push(Problem::new(key, "empty column name"));
            continue;
        }
        check_reserved(key.clone(), "column", edge_col, v);
        check_reserved(key.clone(), "column", central_col, v);
        match targets.get(&central_col.to_ascii_lowercase()) {
            Some(other) => v.push(Problem::new(
                key,
                format!("central column {central_col:?} is also mapped from {other:?}"),
            )),
            None => {
                targets.insert(central_col.to_ascii_lowercase(), edge_col);
            }
        }
    }
}

fn check_reserved(key: String, what: &str, name: &str, v: &mut Vec<Problem>) {
    if is_reserved(name) {
        v.push(Problem::new(
            key,
            format!(
                "{what} name {name:?} starts with \"{}\", which is reserved for edgesync's \
                 metadata; rename it",
                edgesync_core::names::PREFIX
            ),
        ));
    }
}

fn check_filter(i: usize, filter: &str, edges: &[EdgeConfig], v: &mut Vec<Problem>) {
    let key = format!("table[{i}].filter");
    if filter.trim().is_empty() {
        v.push(Problem::new(key, "empty; remove the key to sync every row"));
        return;
    }
    for name in filter_params(filter) {
        for (e, edge) in edges.iter().enumerate() {
            if !edge.params.contains_key(&name) {
                v.push(Problem::new(
                    &key,
                    format!(
                        ":{name} has no value for edge[{e}] (node {:?}); add {name} to its params",
                        edge.node
                    ),
                ));
            }
        }
    }
}

/// The `:name` parameters of a filter, in order of first use. Quoted strings
/// and identifiers are skipped, and so are `::` casts.
pub(super) fn filter_params(filter: &str) -> Vec<String> {
    let b = filter.as_bytes();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b':') => i += 2,
            b':' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len()
                    && (b[end].is_ascii_alphanumeric() || b[end] == b'_')
                    && !(end == start && b[end].is_ascii_digit())
                {
                    end += 1;
                }
                if end > start {
                    let name = filter[start..end].to_string();
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
                i = end.max(i + 1);
            }
            _ => i += 1,
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_log(l: &LogConfig, v: &mut Vec<Problem>) {
    if let Err(message) = check_log_level(&l.level) {
        v.push(Problem::new("log.level", message));
    }
}

fn check_serve(s: &ServeConfig, v: &mut Vec<Problem>) {
    let listen = s.listen.trim();
    let ok = listen.parse::<SocketAddr>().is_ok()
        || listen
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !ok {
        v.push(Problem::new(
            "serve.listen",
            format!("{listen:?} is not an address; write host:port, e.g. \"0.0.0.0:8443\""),
        ));
    }
    for (key, path) in [("tls_cert", &s.tls_cert), ("tls_key", &s.tls_key)] {
        if path.as_os_str().is_empty() {
            v.push(Problem::new(
                format!("serve.{key}"),
                "empty path; name the PEM file",
            ));
        }
    }
    if !(1024..=MAX_BODY_BYTES).contains(&s.max_body_bytes) {
        v.push(Problem::new(
            "serve.max_body_bytes",
            format!(
                "{} is out of range; use 1024 to {MAX_BODY_BYTES}",
                s.max_body_bytes
            ),
        ));
    }
    if !(1..=MAX_ROWS).contains(&s.max_page_rows) {
        v.push(Problem::new(
            "serve.max_page_rows",
            format!("{} is out of range; use 1 to {MAX_ROWS}", s.max_page_rows),
        ));
    }
    if s.rate_per_node > 0 && s.rate_burst == 0 {
        v.push(Problem::new(
            "serve.rate_burst",
            "must be at least 1 while rate_per_node limits requests",
        ));
    }
    if s.request_timeout.is_zero() {
        v.push(Problem::new(
            "serve.request_timeout",
            "must be longer than zero, e.g. \"60s\"",
        ));
    }
    if s.clock_window < std::time::Duration::from_secs(1) || s.clock_window > MAX_CLOCK_WINDOW {
        v.push(Problem::new(
            "serve.clock_window",
            "out of range; use 1s to 1h, e.g. \"5m\"",
        ));
    }
    if let Some(jwt) = &s.jwt {
        check_jwt(jwt, v);
    }
}

/// `[serve.jwt]`: an issuer, an audience, at least one key, each secret
/// from one place only.
fn check_jwt(j: &JwtConfig, v: &mut Vec<Problem>) {
    for (key, value) in [("issuer", &j.issuer), ("audience", &j.audience)] {
        if value.trim().is_empty() {
            v.push(Problem::new(
                format!("serve.jwt.{key}"),
                format!(
                    "empty; the hub accepts only tokens whose `{}` claim is this value",
                    &key[..3]
                ),
            ));
        }
    }
    if j.hs256_secret_env.is_some() && j.hs256_secret_file.is_some() {
        v.push(Problem::new(
            "serve.jwt.hs256_secret_file",
            "set either hs256_secret_env or hs256_secret_file, not both",
        ));
    }
    if j.hs256_secret_env
        .as_deref()
        .is_some_and(|e| e.trim().is_empty())
    {
        v.push(Problem::new(
            "serve.jwt.hs256_secret_env",
            "empty; name the environment variable holding the HS256 secret",
        ));
    }
    for (key, path) in [
        ("hs256_secret_file", &j.hs256_secret_file),
        ("rs256_public_key", &j.rs256_public_key),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            v.push(Problem::new(format!("serve.jwt.{key}"), "empty path"));
        }
    }
    if j.hs256_secret_env.is_none() && j.hs256_secret_file.is_none() && j.rs256_public_key.is_none()
    {
        v.push(Problem::new(
            "serve.jwt",
            "no key to verify tokens with: set hs256_secret_env, hs256_secret_file or \
             rs256_public_key",
        ));
    }
    if j.leeway > MAX_JWT_LEEWAY {
        v.push(Problem::new(
            "serve.jwt.leeway",
            "out of range; use 0s to 5m, e.g. \"30s\"",
        ));
    }
}

fn check_metrics(m: &MetricsConfig, v: &mut Vec<Problem>) {
    // The daemon binds it itself, so it must be a literal address (no
    // host name lookups at startup, when DNS may be down).
    if m.listen.trim().parse::<SocketAddr>().is_err() {
        v.push(Problem::new(
            "metrics.listen",
            format!(
                "{:?} is not an address; write ip:port, e.g. \"127.0.0.1:9187\"",
                m.listen
            ),
        ));
    }
    if m.healthz_window.is_some_and(|w| w.is_zero()) {
        v.push(Problem::new(
            "metrics.healthz_window",
            "must be longer than zero, e.g. \"5m\"; remove it for the default \
             (3 × sync.interval, at least 60s)",
        ));
    }
}
