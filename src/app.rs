//! Running one command: load and validate the config, open the engine, do
//! the work, and turn the outcome into an exit status.
//!
//! Exit statuses: 0 success; 1 the command ran but something failed or needs
//! attention (a table failed to sync, `status` found errors or open
//! conflicts); 2 bad input (config, arguments, schema, connectivity) — the
//! command changed nothing.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use tracing::{error, info};

use crate::cli::{Cli, Command, ConflictsCommand};
use crate::config::{Config, LoadedConfig};
use crate::engine::{provision, status, sync, Engine, Selection};

/// Failures that should exit 1 rather than 2.
#[derive(Debug)]
struct Failed(String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Failed {}

/// Run the parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    init_rustls();
    match dispatch(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.downcast_ref::<Failed>().is_some() {
                1
            } else {
                2
            };
            eprintln!("edgesync: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// Install the process-wide rustls crypto provider once (aws-lc-rs: the one
/// provider every driver in the build uses).
fn init_rustls() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn init_logging(cli_level: Option<&str>, config: Option<&Config>, default: &str) {
    use tracing_subscriber::EnvFilter;
    let level = cli_level
        .map(str::to_string)
        .or_else(|| config.map(|c| c.log.level.clone()))
        .unwrap_or_else(|| default.to_string());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn load(cli: &Cli) -> Result<LoadedConfig> {
    let loaded = Config::load(cli.config.as_deref())?;
    loaded.validate()?;
    Ok(loaded)
}

async fn open(cli: &Cli, sel: Selection) -> Result<Engine> {
    let loaded = load(cli)?;
    let default_level = if matches!(cli.command, Command::Run) {
        "info"
    } else {
        "warn"
    };
    init_logging(
        cli.log_level.as_deref(),
        Some(&loaded.config),
        default_level,
    );
    Engine::open(loaded.config, &loaded.path, &sel).await
}

async fn dispatch(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Demo(args) => {
            init_logging(cli.log_level.as_deref(), None, "warn");
            crate::demo::run(args.dir.clone(), args.keep).await
        }
        Command::CheckConfig(args) => check_config(&cli, args.offline).await,
        Command::InitSync(args) => {
            let sel = Selection { table: args.table.clone(), node: None };
            let engine = open(&cli, sel).await?;
            provision_cmd(&engine, provision::Action::Init, args.dry_run, true).await
        }
        Command::DeinitSync(args) => {
            let sel = Selection { table: args.table.clone(), node: None };
            let engine = open(&cli, sel).await?;
            let all = args.table.is_none();
            provision_cmd(&engine, provision::Action::Deinit, args.dry_run, all).await
        }
        Command::Sync(args) => {
            let sel = Selection { table: args.table.clone(), node: args.node.clone() };
            let engine = open(&cli, sel).await?;
            sync_once(&engine).await
        }
        Command::Run => {
            let engine = open(&cli, Selection::default()).await?;
            run_daemon(&engine).await
        }
        Command::Status(args) => {
            let engine = open(&cli, Selection::default()).await?;
            let report = status::report(&engine).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", status::render(&report));
            }
            if report.needs_attention() {
                return Err(Failed("some tables need attention (see above)".into()).into());
            }
            Ok(())
        }
        Command::Conflicts(cmd) => {
            let engine = open(&cli, Selection::default()).await?;
            conflicts_cmd(&engine, cmd).await
        }
        Command::Serve => anyhow::bail!(
            "`serve` (hub mode) is not available in this version yet; edges connect to the central database directly"
        ),
        Command::Token(_) => anyhow::bail!(
            "`token` manages hub-mode node credentials, which are not available in this version yet"
        ),
    }
}

async fn provision_cmd(
    engine: &Engine,
    action: provision::Action,
    dry_run: bool,
    all: bool,
) -> Result<()> {
    let plans = provision::plan(engine, action, all).await?;
    if dry_run {
        print!("{}", provision::render(&plans));
        println!("-- dry run: nothing was changed");
        return Ok(());
    }
    for line in provision::execute(engine, &plans).await? {
        println!("{line}");
    }
    Ok(())
}

async fn sync_once(engine: &Engine) -> Result<()> {
    let stats = sync::sync_all(engine).await;
    let mut failed = Vec::new();
    for s in &stats {
        match &s.error {
            Some(e) => {
                println!("{} {}: FAILED: {e}", s.node, s.table);
                failed.push(format!("{}/{}", s.node, s.table));
            }
            None => println!(
                "{} {}: pushed {} pulled {} conflicts {}",
                s.node, s.table, s.pushed, s.pulled, s.conflicts
            ),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failed(format!("sync failed for {}", failed.join(", "))).into())
    }
}

/// The daemon loop: sync every edge, sleep `interval` (or back off after a
/// failure), until SIGTERM/SIGINT. A cycle in flight is allowed to finish;
/// every batch is atomic on both sides, so even an abrupt stop loses nothing.
async fn run_daemon(engine: &Engine) -> Result<()> {
    let interval = engine.config.sync.interval;
    let cap = engine.config.sync.retry_max.max(interval);
    let mut failures: u32 = 0;
    let mut shutdown = std::pin::pin!(shutdown_signal());
    info!(edges = engine.edges.len(), ?interval, "edgesync running");
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    spawn_watchdog();
    loop {
        let stats = sync::sync_all(engine).await;
        let failed = stats.iter().filter(|s| s.error.is_some()).count();
        let wait = if failed > 0 {
            failures = failures.saturating_add(1);
            let d = sync::backoff(failures - 1, Duration::from_secs(1), cap);
            error!(failed, retry_in = ?d, "sync cycle had failures");
            d.min(interval.max(Duration::from_secs(1)) * 64)
        } else {
            failures = 0;
            interval
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => {
                info!("shutting down");
                notify_systemd(&[sd_notify::NotifyState::Stopping]);
                return Ok(());
            }
        }
    }
}

/// Tell systemd (`Type=notify`) about our state; a no-op outside systemd.
fn notify_systemd(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::debug!("sd_notify: {e}");
    }
}

/// Ping the systemd watchdog at half its period when `WatchdogSec` is set.
fn spawn_watchdog() {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let period = Duration::from_micros(usec / 2);
    tokio::spawn(async move {
        loop {
            notify_systemd(&[sd_notify::NotifyState::Watchdog]);
            tokio::time::sleep(period).await;
        }
    });
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn check_config(cli: &Cli, offline: bool) -> Result<()> {
    let loaded = load(cli)?;
    init_logging(cli.log_level.as_deref(), Some(&loaded.config), "warn");
    if offline {
        println!(
            "{}: ok (file only; databases not contacted)",
            loaded.path.display()
        );
        return Ok(());
    }
    let engine = Engine::open_read_only(loaded.config, &loaded.path).await?;
    // Planning is read-only and runs every check init-sync would (unique
    // keys, node ids recorded in edge files, ...), so check-config finds
    // them too.
    let plans = provision::plan(&engine, provision::Action::Init, false).await?;
    let pending: usize = plans.iter().map(|p| p.statements.len()).sum();
    println!(
        "{}: ok — central {} reachable, {} table(s) mapped on {} edge(s); {}",
        loaded.path.display(),
        engine.central.backend(),
        engine.central_tables.len(),
        engine.config.edges.len(),
        if pending == 0 {
            "fully provisioned".to_string()
        } else {
            format!("init-sync would apply {pending} statement(s)")
        }
    );
    Ok(())
}

async fn conflicts_cmd(engine: &Engine, cmd: &ConflictsCommand) -> Result<()> {
    match cmd {
        ConflictsCommand::List { json, all } => {
            let list = engine.central.conflicts(*all, 1000).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            if list.is_empty() {
                println!("no {}conflicts", if *all { "" } else { "open " });
            }
            for c in &list {
                let key: Vec<String> = c
                    .key
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.display()))
                    .collect();
                println!(
                    "#{} {} {} [{}] node {} strategy {} at {}",
                    c.id,
                    c.table,
                    key.join(","),
                    if c.open { "open" } else { "resolved" },
                    c.node,
                    c.strategy,
                    c.at.format("%Y-%m-%d %H:%M:%SZ"),
                );
            }
            Ok(())
        }
        ConflictsCommand::Resolve { id, .. } => {
            let open = engine.central.conflicts(false, 100_000).await?;
            if !open.iter().any(|c| c.id == *id) {
                anyhow::bail!("there is no open conflict #{id} (see `edgesync conflicts list`)");
            }
            anyhow::bail!(
                "conflict #{id} is open, but resolving manual conflicts needs the `manual` strategy, which this version does not support yet"
            )
        }
    }
}
