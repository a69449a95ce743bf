//! Secrets: read from an environment variable or a file, never from the TOML.

use std::path::Path;

use super::{CentralConfig, ConfigError};

impl CentralConfig {
    /// The central database password, from `password_env` or
    /// `password_file`; `None` when neither is set (e.g. trust or peer
    /// authentication, or a password given in the URL from the environment).
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        read_secret(
            "password",
            self.password_env.as_deref(),
            self.password_file.as_deref(),
        )
    }

    /// The node token for a hub, from `token_env` or `token_file`; `None`
    /// when neither is set.
    pub fn token(&self) -> Result<Option<String>, ConfigError> {
        read_secret(
            "token",
            self.token_env.as_deref(),
            self.token_file.as_deref(),
        )
    }
}

fn read_secret(
    what: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<String>, ConfigError> {
    let err = |key: &str, message: String, source| ConfigError::Secret {
        key: format!("central.{key}"),
        message,
        source,
    };
    match (env, file) {
        (Some(_), Some(_)) => Err(err(
            &format!("{what}_file"),
            format!("set either {what}_env or {what}_file, not both"),
            None,
        )),
        (Some(var), None) => match std::env::var_os(var) {
            None => Err(err(
                &format!("{what}_env"),
                format!("environment variable {var} is not set"),
                None,
            )),
            Some(value) => match value.into_string() {
                Ok(value) if value.is_empty() => Err(err(
                    &format!("{what}_env"),
                    format!("environment variable {var} is empty"),
                    None,
                )),
                Ok(value) => Ok(Some(value)),
                Err(_) => Err(err(
                    &format!("{what}_env"),
                    format!("environment variable {var} is not valid UTF-8"),
                    None,
                )),
            },
        },
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                err(
                    &format!("{what}_file"),
                    format!("cannot read {what} file {}", path.display()),
                    Some(e),
                )
            })?;
            let value = text.strip_suffix('\n').unwrap_or(&text);
            let value = value.strip_suffix('\r').unwrap_or(value);
            if value.is_empty() {
                return Err(err(
                    &format!("{what}_file"),
                    format!("{what} file {} is empty", path.display()),
                    None,
                ));
            }
            Ok(Some(value.to_string()))
        }
        (None, None) => Ok(None),
    }
}

/// The scheme of `scheme://rest`, as written.
pub(super) fn scheme(url: &str) -> Option<&str> {
    url.split_once("://")
        .map(|(s, _)| s)
        .filter(|s| !s.is_empty())
}

/// Byte range of the password in a URL's user info or its `password=` query
/// parameter. SQLite URLs are paths and are never inspected.
fn password_range(url: &str) -> Option<(usize, usize)> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.eq_ignore_ascii_case("sqlite") {
        return None;
    }
    let start = scheme.len() + 3;
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    if let Some(at) = authority.rfind('@') {
        if let Some(colon) = authority[..at].find(':') {
            return Some((start + colon + 1, start + at));
        }
    }
    let query_start = url.find('?')? + 1;
    let query_end = url.find('#').unwrap_or(url.len());
    let mut pos = query_start;
    for pair in url.get(query_start..query_end)?.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k.eq_ignore_ascii_case("password") && !v.is_empty() {
            let v_start = pos + k.len() + 1;
            return Some((v_start, v_start + v.len()));
        }
        pos += pair.len() + 1;
    }
    None
}

/// Whether `url` carries a password.
pub(super) fn url_has_password(url: &str) -> bool {
    password_range(url).is_some()
}

/// `url` with its password replaced by `***`.
pub(super) fn redact_url(url: &str) -> String {
    match password_range(url) {
        Some((a, b)) => format!("{}***{}", &url[..a], &url[b..]),
        None => url.to_string(),
    }
}
