//! `edgesync-bench`: edgesync against the databases' own bulk paths.
//!
//! On real PostgreSQL and MariaDB servers (a database of its own per run,
//! dropped at the end) and a table of realistic width, it measures the
//! initial load, push, pull, capture overhead, commit-to-central latency and
//! peak memory, each next to the raw path measured in the same run, and
//! prints one table with the targets and PASS/FAIL. See `benches/README.md`.

mod central;
mod child;
mod raw;
mod report;
mod scenarios;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

use central::Backend;

/// edgesync benchmark (see benches/README.md).
#[derive(Debug, Parser)]
#[command(name = "edgesync-bench")]
pub struct Args {
    /// Central backends to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "postgres,mariadb")]
    pub backends: Vec<Backend>,
    /// Rows in the central table for the initial load (and the 1M memory
    /// figure).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Rows changed for the push, pull and capture scenarios.
    #[arg(long, default_value_t = 100_000)]
    pub changes: u64,
    /// Single-row commits timed edge -> central with `edgesync run` going.
    #[arg(long, default_value_t = 1000)]
    pub latency_samples: usize,
    /// Central -> edge latency samples (PostgreSQL; bound by sync.interval).
    #[arg(long, default_value_t = 30)]
    pub pull_latency_samples: usize,
    /// Rows of the second memory run (0 = skip it).
    #[arg(long, default_value_t = 5_000_000)]
    pub memory_rows: u64,
    /// Tiny sizes (2k rows, 1k changes, 50 latency samples, no second
    /// memory run): checks that everything runs; targets are printed but
    /// the exit status does not depend on them.
    #[arg(long)]
    pub smoke: bool,
    /// Admin URL of the PostgreSQL server (a database per run is created
    /// there).
    #[arg(
        long,
        env = "EDGESYNC_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub pg_url: String,
    /// Admin URL of the MariaDB / MySQL server.
    #[arg(
        long,
        env = "EDGESYNC_TEST_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306/test"
    )]
    pub mysql_url: String,
    /// The edgesync binary to run as a child (default: built next to this
    /// benchmark, same profile).
    #[arg(long)]
    pub edgesync: Option<PathBuf>,
    /// Only these scenarios, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<scenarios::Scenario>,
    /// Also write the results table (Markdown) to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Keep the temporary directory (edge files, configs, daemon logs) and
    /// print where it is.
    #[arg(long)]
    pub keep: bool,
    /// Exit 1 when a target is missed (ignored with --smoke).
    #[arg(long)]
    pub strict: bool,
    /// Profiling helper: run SQL on a SQLite file with edgesync's own
    /// (bundled) SQLite, as an application would, and exit. Takes the file
    /// and the SQL.
    #[arg(long, num_args = 2, value_names = ["FILE", "SQL"], hide = true)]
    pub sqlite_exec: Vec<String>,
}

impl Args {
    fn apply_smoke(&mut self) {
        if self.smoke {
            self.rows = 2_000;
            self.changes = 1_000;
            self.latency_samples = 50;
            self.pull_latency_samples = 3;
            self.memory_rows = 0;
        }
    }
}

fn main() -> std::process::ExitCode {
    let mut args = Args::parse();
    if let [file, sql] = args.sqlite_exec.as_slice() {
        return match raw::open_sqlite(std::path::Path::new(file))
            .and_then(|c| Ok(c.execute_batch(sql)?))
        {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("edgesync-bench: {e:#}");
                std::process::ExitCode::from(2)
            }
        };
    }
    args.apply_smoke();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgesync-bench: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edgesync-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<std::process::ExitCode> {
    let machine = report::Machine::describe(&args).await;
    eprintln!("{}", machine.text());
    let bin = child::edgesync_binary(args.edgesync.clone())?;
    eprintln!("edgesync binary: {}", bin.display());
    let mut rows = Vec::new();
    let mut backends = args.backends.clone();
    backends.sort();
    backends.dedup();
    let dir = tempfile::Builder::new().prefix("es-bench-").tempdir()?;
    for (i, &backend) in backends.iter().enumerate() {
        // The capture overhead is SQLite only: measured once.
        let capture = i == 0;
        scenarios::run_backend(&args, backend, &bin, dir.path(), capture, &mut rows).await?;
    }
    let end_load = report::loadavg();
    let table = report::table(&rows);
    println!();
    println!("{}", machine.text());
    println!("load average at the end: {end_load}");
    println!();
    println!("{table}");
    if let Some(path) = &args.markdown {
        std::fs::write(
            path,
            format!(
                "{}\nload average at the end: {end_load}\n\n{table}\n",
                machine.text()
            ),
        )?;
    }
    if args.keep {
        let kept = dir.keep();
        eprintln!("kept {}", kept.display());
    }
    let failed = rows.iter().filter(|r| r.pass == Some(false)).count();
    if failed > 0 {
        eprintln!("{failed} target(s) missed");
    }
    Ok(if failed > 0 && args.strict && !args.smoke {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}
