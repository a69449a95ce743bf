//! Finding the file, layering environment overrides, deserializing with the
//! path of every error.

use std::io;
use std::path::{Path, PathBuf};

use super::{secret, Config, ConfigError, LoadedConfig, Problem};

/// Where [`Config::load`] looks when no path is given, in order.
pub const DEFAULT_PATHS: &[&str] = &["./sync.toml", "/etc/edgesync/sync.toml"];

/// Prefix of environment overrides: `EDGESYNC_<SECTION>__<KEY>`, e.g.
/// `EDGESYNC_SYNC__BATCH_ROWS=100` sets `sync.batch_rows`.
pub const ENV_PREFIX: &str = "EDGESYNC_";

/// The CLI's twin of `--config`; never an override.
const CONFIG_VAR: &str = "EDGESYNC_CONFIG";

/// Sections whose keys environment variables may set. `[[edge]]` and
/// `[[table]]` are lists and only come from the file.
const ENV_SECTIONS: &[&str] = &["central", "sync", "log", "serve", "metrics"];

/// Keys of `[central]` that would hold a secret; `<key>_env` and
/// `<key>_file` are the ways to give it.
const SECRET_KEYS: &[&str] = &["password", "token"];

/// One environment override.
struct Override {
    /// Dotted key, e.g. `sync.batch_rows`.
    key: String,
    value: String,
    /// The variable that set it.
    var: String,
}

impl Config {
    /// Load the config file: `explicit` if given, else the first of
    /// [`DEFAULT_PATHS`] that exists, with environment overrides from this
    /// process applied. Does not validate: call [`LoadedConfig::validate`].
    pub fn load(explicit: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => find_default()?,
        };
        Config::load_from(&path, process_env())
    }

    /// Load `path` with environment overrides taken from `env` (name, value)
    /// pairs; only `EDGESYNC_<SECTION>__<KEY>` names are used. Relative paths
    /// in the file resolve against its directory.
    pub fn load_from(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<LoadedConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                ConfigError::NotFound {
                    tried: vec![path.to_path_buf()],
                }
            } else {
                ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut config = Config::from_toml(&text, env).map_err(|e| e.with_file(path))?;
        if let Some(dir) = abs.parent() {
            config.resolve_paths(dir);
        }
        Ok(LoadedConfig { config, path: abs })
    }

    /// Parse TOML `text` with environment overrides from `env`. Relative
    /// paths are kept as written.
    pub fn from_toml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let overrides = env_overrides(env, &mut problems);

        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml));
        for o in &overrides {
            builder = builder
                .set_override(o.key.as_str(), o.value.as_str())
                .map_err(|e| invalid(Problem::new(o.var.as_str(), e.to_string())))?;
        }
        let built = match builder.build() {
            Ok(built) => built,
            Err(e) => {
                problems.push(Problem::new("", build_error_message(e)));
                return Err(invalid_all(problems));
            }
        };

        if let Ok(central) = built.get_table("central") {
            for key in SECRET_KEYS {
                if central.contains_key(*key) {
                    problems.push(annotate(
                        Problem::new(
                            format!("central.{key}"),
                            format!(
                                "secrets are not read from the config; set {key}_env = \
                                 \"VARIABLE\" or {key}_file = \"/path\" instead"
                            ),
                        ),
                        &overrides,
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(invalid_all(problems));
        }

        let config: Config = serde_path_to_error::deserialize(built).map_err(|e| {
            let path = e.path().to_string();
            let problem = match innermost(e.into_inner()) {
                // The `config` crate reports a missing key itself, with its
                // (not always well-formed) path: keep the last segment.
                config::ConfigError::NotFound(key) => {
                    let field = key.rsplit(['.', ']']).next().unwrap_or(&key);
                    let key = if path == "." {
                        field.to_string()
                    } else {
                        format!("{path}.{field}")
                    };
                    Problem::new(key, "required, but missing")
                }
                inner => {
                    let key = if path == "." { String::new() } else { path };
                    Problem::new(key, config_error_message(inner))
                }
            };
            invalid(annotate(problem, &overrides))
        })?;

        let url_from_env = overrides.iter().any(|o| o.key == "central.url");
        if !url_from_env && secret::url_has_password(&config.central.url) {
            return Err(invalid(Problem::new(
                "central.url",
                "contains a password; remove it and set password_env or password_file \
                 (or give the whole URL in EDGESYNC_CENTRAL__URL)",
            )));
        }
        Ok(config)
    }

    /// Make relative paths relative to `dir`.
    fn resolve_paths(&mut self, dir: &Path) {
        let resolve = |p: &mut PathBuf| {
            if !p.as_os_str().is_empty() && p.is_relative() {
                let joined = dir.join(&*p);
                *p = std::path::absolute(&joined).unwrap_or(joined);
            }
        };
        for edge in &mut self.edges {
            resolve(&mut edge.path);
        }
        let c = &mut self.central;
        for p in [&mut c.password_file, &mut c.token_file, &mut c.ca]
            .into_iter()
            .flatten()
        {
            resolve(p);
        }
        if let Some(serve) = &mut self.serve {
            resolve(&mut serve.tls_cert);
            resolve(&mut serve.tls_key);
            if let Some(jwt) = &mut serve.jwt {
                for p in [&mut jwt.hs256_secret_file, &mut jwt.rs256_public_key]
                    .into_iter()
                    .flatten()
                {
                    resolve(p);
                }
            }
        }
    }
}

/// The first default path that exists.
fn find_default() -> Result<PathBuf, ConfigError> {
    let tried: Vec<PathBuf> = DEFAULT_PATHS.iter().map(PathBuf::from).collect();
    for path in &tried {
        match std::fs::metadata(path) {
            Ok(_) => return Ok(path.clone()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.clone(),
                    source,
                })
            }
        }
    }
    Err(ConfigError::NotFound { tried })
}

/// This process's environment (variables that are not UTF-8 are skipped).
fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// The `EDGESYNC_<SECTION>__<KEY>` variables of `env`, sorted by name.
fn env_overrides(
    env: impl IntoIterator<Item = (String, String)>,
    problems: &mut Vec<Problem>,
) -> Vec<Override> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != CONFIG_VAR)
        .collect();
    vars.sort();
    let mut out = Vec::new();
    for (var, value) in vars {
        let Some((section, key)) = var[ENV_PREFIX.len()..].split_once("__") else {
            // EDGESYNC_CENTRAL_PASSWORD and the like: not an override.
            continue;
        };
        let section = section.to_ascii_lowercase();
        let key = key.to_ascii_lowercase();
        if !ENV_SECTIONS.contains(&section.as_str()) {
            problems.push(Problem::new(
                var,
                format!(
                    "[{section}] cannot be set from the environment; only keys of [central], \
                     [sync], [log], [serve] and [metrics] can (EDGESYNC_<SECTION>__<KEY>)"
                ),
            ));
            continue;
        }
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            problems.push(Problem::new(
                var,
                format!("\"{key}\" is not a key of [{section}]"),
            ));
            continue;
        }
        out.push(Override {
            key: format!("{section}.{key}"),
            value,
            var,
        });
    }
    out
}

/// Mention the environment variable when a problem is about a key it set.
fn annotate(mut problem: Problem, overrides: &[Override]) -> Problem {
    let from = overrides.iter().find(|o| {
        problem.key == o.key
            || problem
                .key
                .strip_prefix(o.key.as_str())
                .is_some_and(|rest| rest.starts_with(['.', '[']))
    });
    if let Some(o) = from {
        problem.message = format!("{} (from environment variable {})", problem.message, o.var);
    }
    problem
}

fn invalid(problem: Problem) -> ConfigError {
    invalid_all(vec![problem])
}

fn invalid_all(problems: Vec<Problem>) -> ConfigError {
    ConfigError::Invalid {
        file: None,
        problems,
    }
}

/// A `config` crate error without the key wrappers it adds (the path is
/// reported separately).
fn innermost(e: config::ConfigError) -> config::ConfigError {
    match e {
        config::ConfigError::At { error, .. } => innermost(*error),
        other => other,
    }
}

/// The message of a `config` crate error, in TOML words rather than Rust's.
fn config_error_message(e: config::ConfigError) -> String {
    let message = match innermost(e) {
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => format!("invalid type: {unexpected}, expected {expected}"),
        other => other.to_string(),
    };
    let message = message.replace("expected a sequence", "expected a list");
    match message.find("expected struct ") {
        Some(i) => format!("{}expected a table", &message[..i]),
        None => message,
    }
}

/// A TOML syntax error on one line: `line 3, column 7: invalid string`.
fn build_error_message(e: config::ConfigError) -> String {
    let config::ConfigError::FileParse { cause, .. } = e else {
        return config_error_message(e);
    };
    let text = cause.to_string();
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let location = lines
        .first()
        .and_then(|l| l.strip_prefix("TOML parse error at "));
    let caret = lines
        .iter()
        .position(|l| l.trim_start().starts_with('|') && l.contains('^'));
    match (location, caret) {
        (Some(location), Some(caret)) => {
            let what: Vec<&str> = lines[caret + 1..]
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect();
            format!("invalid TOML at {location}: {}", what.join("; "))
        }
        _ => format!(
            "invalid TOML: {}",
            lines
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}
