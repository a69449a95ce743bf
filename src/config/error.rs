//! The config error: every problem, each with the key it is about.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key at fault, e.g. `table[1].name` or `central.url`; for an
    /// environment override, the variable's name; empty when the problem is
    /// about the file as a whole (a TOML syntax error).
    pub key: String,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl Problem {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Why a configuration could not be loaded or used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// No config file exists at any of the paths tried.
    NotFound {
        /// Every path tried, in order.
        tried: Vec<PathBuf>,
    },
    /// The config file exists but cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The configuration is wrong; displayed one line per problem.
    Invalid {
        /// The config file, when known.
        file: Option<PathBuf>,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// A secret (`central.password_env`, `central.token_file`, ...) cannot be
    /// read.
    Secret {
        /// The key that names the secret, e.g. `central.password_env`.
        key: String,
        /// What is wrong.
        message: String,
        /// The I/O error reading a secret file.
        source: Option<io::Error>,
    },
}

impl ConfigError {
    /// `Ok(())` if there are no problems, else [`ConfigError::Invalid`].
    pub(crate) fn invalid(file: Option<&Path>, problems: Vec<Problem>) -> Result<(), ConfigError> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                file: file.map(Path::to_path_buf),
                problems,
            })
        }
    }

    /// The problems of an [`ConfigError::Invalid`] error (empty otherwise).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }

    /// This error as problems, one per line it displays.
    pub(crate) fn into_problems(self) -> Vec<Problem> {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            other => vec![Problem::new("", other.to_string())],
        }
    }

    /// Attach the config file name to an [`ConfigError::Invalid`] error that
    /// has none (e.g. from [`super::Config::validate`]).
    pub fn with_file(self, path: &Path) -> Self {
        match self {
            ConfigError::Invalid {
                file: None,
                problems,
            } => ConfigError::Invalid {
                file: Some(path.to_path_buf()),
                problems,
            },
            other => other,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotFound { tried } => {
                let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
                write!(f, "no config file found (tried {})", list.join(", "))?;
                if tried.len() > 1 {
                    f.write_str("; pass --config PATH or set EDGESYNC_CONFIG")?;
                }
                Ok(())
            }
            ConfigError::Read { path, .. } => {
                write!(f, "cannot read config file {}", path.display())
            }
            ConfigError::Invalid { file, problems } => {
                for (i, p) in problems.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    if let Some(file) = file {
                        write!(f, "{}: ", file.display())?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
            ConfigError::Secret { key, message, .. } => write!(f, "{key}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Secret {
                source: Some(source),
                ..
            } => Some(source),
            _ => None,
        }
    }
}
