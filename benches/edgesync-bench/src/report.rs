//! The machine description and the results table.

use crate::central::{self, Backend};
use crate::Args;

/// What the figures were measured on.
pub struct Machine {
    lines: Vec<String>,
}

impl Machine {
    pub async fn describe(args: &Args) -> Machine {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown", |(_, m)| m.trim())
            .to_string();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|k| k.parse::<u64>().ok())
            .map_or("unknown".to_string(), |k| {
                format!("{:.1} GiB", k as f64 / 1024.0 / 1024.0)
            });
        let mut lines = vec![
            format!("date: {}", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")),
            format!("machine: {cpus} CPUs ({model}), {mem} RAM"),
            format!("load average at the start: {}", loadavg()),
        ];
        for b in &args.backends {
            let url = match b {
                Backend::Postgres => &args.pg_url,
                Backend::Mariadb => &args.mysql_url,
            };
            let v = central::server_version(*b, url)
                .await
                .unwrap_or_else(|e| format!("unreachable ({e:#})"));
            lines.push(format!("{}: {v}", b.name()));
        }
        lines.push(format!(
            "sizes: {} rows, {} changes, {} latency samples{}{}",
            args.rows,
            args.changes,
            args.latency_samples,
            if args.memory_rows > 0 {
                format!(", memory at {} rows", args.memory_rows)
            } else {
                String::new()
            },
            if args.smoke {
                " (smoke: targets not enforced)"
            } else {
                ""
            }
        ));
        Machine { lines }
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// `/proc/loadavg`'s three averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// One line of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    pub backend: &'static str,
    pub scenario: String,
    pub rows: String,
    /// The measured figure (rows/s, ms, MB, ...).
    pub value: String,
    /// What it is compared with.
    pub raw: String,
    pub ratio: String,
    pub target: String,
    /// `None`: informational, no target.
    pub pass: Option<bool>,
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The table, as Markdown (also readable as plain text).
pub fn table(rows: &[Row]) -> String {
    let header = [
        "backend", "scenario", "rows", "measured", "raw path", "ratio", "target", "result",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.backend.to_string(),
                r.scenario.clone(),
                r.rows.clone(),
                r.value.clone(),
                r.raw.clone(),
                r.ratio.clone(),
                r.target.clone(),
                match r.pass {
                    Some(true) => "PASS".into(),
                    Some(false) => "FAIL".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: &[String]| -> String {
        let parts: Vec<String> = c
            .iter()
            .zip(width)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        format!("| {} |", parts.join(" | "))
    };
    let mut out = vec![
        line(&header.map(String::from)),
        format!(
            "|{}|",
            width
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("|")
        ),
    ];
    out.extend(cells.iter().map(|c| line(c)));
    out.join("\n")
}
