//! Talking to systemd (`Type=notify`): `READY=1`, `STATUS=`, `WATCHDOG=1`,
//! `RELOADING=1`, `STOPPING=1`. Every call is a no-op outside systemd
//! (no `NOTIFY_SOCKET`).

use std::time::{Duration, SystemTime};

use sd_notify::NotifyState;

use crate::metrics::Summary;

/// Send `states`; failures are logged at debug level only (the daemon
/// works the same without systemd).
pub(crate) fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::debug!("sd_notify: {e}");
    }
}

/// Set the `STATUS=` line `systemctl status` shows.
pub(crate) fn status(line: &str) {
    notify(&[NotifyState::Status(line)]);
}

/// `WatchdogSec` as systemd passed it (`WATCHDOG_USEC`), if the watchdog is
/// on for this process.
pub(crate) fn watchdog_period() -> Option<Duration> {
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec))
    } else {
        None
    }
}

/// The status line for a running daemon, e.g. `syncing 3 edges: 3 ok; last
/// sync 12:00:01`.
pub(crate) fn status_line(s: &Summary) -> String {
    let mut line = format!(
        "syncing {} edge{}: {} ok",
        s.edges,
        if s.edges == 1 { "" } else { "s" },
        s.ok
    );
    if !s.failing.is_empty() {
        line.push_str(&format!(
            ", {} failing ({})",
            s.failing.len(),
            s.failing.join(", ")
        ));
    }
    let pending = s.edges - s.ok - s.failing.len();
    if pending > 0 {
        line.push_str(&format!(", {pending} starting"));
    }
    if let Some(t) = s.last_sync {
        line.push_str(&format!("; last sync {}", clock(t)));
    }
    if !s.central_up {
        line.push_str("; central unreachable, retrying");
    }
    line
}

/// Local wall-clock time of day, as `systemctl status` shows times.
fn clock(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t)
        .format("%H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_say_what_is_wrong() {
        let mut s = Summary {
            edges: 3,
            ok: 3,
            failing: vec![],
            last_sync: None,
            central_up: true,
        };
        assert_eq!(status_line(&s), "syncing 3 edges: 3 ok");
        s.ok = 1;
        s.failing = vec!["store-2".into()];
        s.central_up = false;
        s.last_sync = Some(SystemTime::now());
        let line = status_line(&s);
        assert!(
            line.starts_with("syncing 3 edges: 1 ok, 1 failing (store-2), 1 starting; last sync "),
            "{line}"
        );
        assert!(line.ends_with("; central unreachable, retrying"), "{line}");
    }
}
