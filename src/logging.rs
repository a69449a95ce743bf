//! Logging: `tracing` events to stderr, as text for a person at a terminal
//! and as one JSON object per line for journald and log shippers.
//!
//! Where the level comes from, strongest first: `--log-level`, `RUST_LOG`,
//! `log.level` in `sync.toml`, then the command's default (`info` for `run`,
//! `warn` for one-shot commands). The filter sits behind a reload handle so
//! that a SIGHUP which changes `log.level` takes effect without a restart
//! (unless the flag or `RUST_LOG` pinned it).
//!
//! `log.format = "auto"` picks JSON when stderr is not a terminal or when
//! systemd connected stderr to the journal (`JOURNAL_STREAM`), and text
//! otherwise: `journalctl -o cat` then shows one object per event, with
//! `node`, `table` and counts as fields a log shipper can index.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::config::{LogConfig, LogFormat};

/// The output format actually used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// Resolve `log.format`: `auto` is JSON unless stderr is a terminal outside
/// the journal.
pub fn resolve_format(format: LogFormat, stderr_is_terminal: bool, journal: bool) -> Output {
    match format {
        LogFormat::Text => Output::Text,
        LogFormat::Json => Output::Json,
        LogFormat::Auto if stderr_is_terminal && !journal => Output::Text,
        LogFormat::Auto => Output::Json,
    }
}

/// Which filter wins: the flag, then `RUST_LOG`, then the config, then the
/// default. Returns the filter text and whether it came from the config (or
/// the default), i.e. whether a reload may change it.
pub fn resolve_level(
    cli: Option<&str>,
    rust_log: Option<&str>,
    config: Option<&str>,
    default: &str,
) -> (String, bool) {
    if let Some(l) = cli {
        return (l.to_string(), false);
    }
    if let Some(l) = rust_log.filter(|l| !l.trim().is_empty()) {
        return (l.to_string(), false);
    }
    (config.unwrap_or(default).to_string(), true)
}

/// What a later [`reload_level`] needs.
struct Control {
    handle: reload::Handle<EnvFilter, Registry>,
    from_config: bool,
}

static CONTROL: OnceLock<Control> = OnceLock::new();

/// Install the process-wide subscriber (once; later calls do nothing).
///
/// `cli_level` is `--log-level`, `config` the `[log]` section if a config
/// was loaded, `default` the level when neither says.
pub fn init(cli_level: Option<&str>, config: Option<&LogConfig>, default: &str) {
    if CONTROL.get().is_some() {
        return;
    }
    let rust_log = std::env::var("RUST_LOG").ok();
    let (level, from_config) = resolve_level(
        cli_level,
        rust_log.as_deref(),
        config.map(|c| c.level.as_str()),
        default,
    );
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new(default));
    let (filter, handle) = reload::Layer::new(filter);
    let terminal = std::io::stderr().is_terminal();
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let format = config.map(|c| c.format).unwrap_or_default();
    let fmt = match resolve_format(format, terminal, journal) {
        Output::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(terminal)
            .boxed(),
        Output::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    if tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .is_ok()
    {
        let _ = CONTROL.set(Control {
            handle,
            from_config,
        });
    }
}

/// Apply a new `log.level` after a config reload. Returns `Ok(false)` when
/// `--log-level` or `RUST_LOG` set the level (they keep winning), and an
/// error when no subscriber was installed or the filter does not parse.
pub fn reload_level(level: &str) -> Result<bool, String> {
    let control = CONTROL.get().ok_or("logging is not initialised")?;
    if !control.from_config {
        return Ok(false);
    }
    let filter = EnvFilter::try_new(level).map_err(|e| format!("log.level {level:?}: {e}"))?;
    control
        .handle
        .reload(filter)
        .map_err(|e| format!("cannot change the log level: {e}"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_format_is_text_only_on_a_terminal_outside_the_journal() {
        assert_eq!(resolve_format(LogFormat::Auto, true, false), Output::Text);
        assert_eq!(resolve_format(LogFormat::Auto, false, false), Output::Json);
        assert_eq!(resolve_format(LogFormat::Auto, true, true), Output::Json);
        assert_eq!(resolve_format(LogFormat::Text, false, true), Output::Text);
        assert_eq!(resolve_format(LogFormat::Json, true, false), Output::Json);
    }

    #[test]
    fn the_flag_beats_rust_log_which_beats_the_config() {
        assert_eq!(
            resolve_level(Some("debug"), Some("trace"), Some("warn"), "info"),
            ("debug".to_string(), false)
        );
        assert_eq!(
            resolve_level(None, Some("trace"), Some("warn"), "info"),
            ("trace".to_string(), false)
        );
        assert_eq!(
            resolve_level(None, Some(" "), Some("warn"), "info"),
            ("warn".to_string(), true)
        );
        assert_eq!(
            resolve_level(None, None, None, "info"),
            ("info".to_string(), true)
        );
    }
}
