//! One progress line, as the log shows it (and as a test can check).

use std::time::Duration;

/// Where one pull pass stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<'a> {
    /// Node id.
    pub node: &'a str,
    /// Edge table.
    pub table: &'a str,
    /// Whether this is the initial load (the edge had nothing of the table).
    pub initial: bool,
    /// Rows written to the edge so far.
    pub rows: u64,
    /// Since the pass began.
    pub elapsed: Duration,
    /// The central's estimate of the table's rows (PostgreSQL: the
    /// planner's), when it has one.
    pub total: Option<u64>,
    /// Whether the pass has ended.
    pub done: bool,
}

impl Snapshot<'_> {
    /// Rows per second so far (0 before any time has passed).
    pub fn rate(&self) -> u64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            return 0;
        }
        (self.rows as f64 / secs).round() as u64
    }

    /// Time left at the current rate, when the total is known and rows are
    /// flowing.
    pub fn eta(&self) -> Option<Duration> {
        let total = self.total?;
        let secs = self.elapsed.as_secs_f64();
        if self.rows == 0 || secs <= 0.0 {
            return None;
        }
        let left = total.saturating_sub(self.rows) as f64;
        Some(Duration::from_secs_f64(left * secs / self.rows as f64))
    }
}

/// `initial load of items (node a): 1500 rows, 3000 rows/s, ~30% of ~5000
/// (planner estimate), ETA 2s`; when done, `...: done, 5000 rows in 1.7s,
/// 2941 rows/s`.
pub fn line(s: &Snapshot<'_>) -> String {
    let what = if s.initial {
        "initial load of"
    } else {
        "pulling"
    };
    let head = format!("{what} {} (node {})", s.table, s.node);
    if s.done {
        return format!(
            "{head}: done, {} rows in {}, {} rows/s",
            s.rows,
            short(s.elapsed),
            s.rate()
        );
    }
    let mut out = format!("{head}: {} rows, {} rows/s", s.rows, s.rate());
    if let Some(total) = s.total {
        if s.rows <= total {
            let pct = s.rows.saturating_mul(100) / total.max(1);
            out.push_str(&format!(", ~{pct}% of ~{total} (planner estimate)"));
            if let Some(eta) = s.eta() {
                out.push_str(&format!(", ETA {}", short(eta)));
            }
        } else {
            out.push_str(&format!(", past the estimate of ~{total}"));
        }
    }
    out
}

/// `850ms`, `4.2s`, `42s`, `3m05s`, `2h07m`.
pub fn short(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{}ms", d.as_millis()),
        1..=9 => format!("{:.1}s", d.as_secs_f64()),
        10..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(rows: u64, millis: u64, total: Option<u64>) -> Snapshot<'static> {
        Snapshot {
            node: "a",
            table: "items",
            initial: true,
            rows,
            elapsed: Duration::from_millis(millis),
            total,
            done: false,
        }
    }

    #[test]
    fn a_line_has_table_rows_rate_share_and_eta() {
        assert_eq!(
            line(&snap(1500, 500, Some(5000))),
            "initial load of items (node a): 1500 rows, 3000 rows/s, ~30% of ~5000 \
             (planner estimate), ETA 1.2s"
        );
        assert_eq!(
            line(&snap(1500, 500, None)),
            "initial load of items (node a): 1500 rows, 3000 rows/s"
        );
        assert_eq!(
            line(&snap(6000, 2000, Some(5000))),
            "initial load of items (node a): 6000 rows, 3000 rows/s, past the estimate of ~5000"
        );
        let mut s = snap(100, 0, Some(5000));
        assert_eq!(s.rate(), 0, "no time, no rate");
        assert_eq!(s.eta(), None);
        s.initial = false;
        s.done = true;
        s.rows = 5000;
        s.elapsed = Duration::from_millis(1700);
        assert_eq!(
            line(&s),
            "pulling items (node a): done, 5000 rows in 1.7s, 2941 rows/s"
        );
    }

    #[test]
    fn eta_follows_the_rate() {
        let s = snap(1000, 10_000, Some(61_000));
        assert_eq!(s.eta(), Some(Duration::from_secs(600)));
        assert_eq!(short(Duration::from_secs(600)), "10m00s");
        assert_eq!(short(Duration::from_secs(7620)), "2h07m");
        assert_eq!(short(Duration::from_millis(850)), "850ms");
    }
}
