//! Running one command: load and validate the config, open the engine, do
//! the work, and turn the outcome into an exit status.
//!
//! Exit statuses: 0 success; 1 the command ran but something failed or needs
//! attention (a table failed to sync, `status` found errors or open
//! conflicts); 2 bad input (config, arguments, schema, connectivity) — the
//! command changed nothing.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command, ConflictsCommand};
use crate::config::{Config, LoadedConfig};
use crate::engine::{conflicts, progress, provision, status, sync, Engine, Selection};

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
    crate::logging::init(cli_level, config.map(|c| &c.log), default);
}

fn load(cli: &Cli) -> Result<LoadedConfig> {
    let loaded = Config::load(cli.config.as_deref())?;
    loaded.validate()?;
    Ok(loaded)
}

async fn open(cli: &Cli, sel: Selection) -> Result<Engine> {
    let loaded = load(cli)?;
    let default_level = match cli.command {
        Command::Run => "info",
        // Progress lines of long pulls (when stderr is not a terminal; on
        // a terminal they are bars) are info events of their own target.
        Command::Sync(_) => "warn,edgesync::progress=info",
        _ => "warn",
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
            let sel = Selection {
                table: args.table.clone(),
                node: None,
            };
            let engine = open(&cli, sel).await?;
            provision_cmd(&engine, provision::Action::Init, args.dry_run, true).await
        }
        Command::DeinitSync(args) => {
            let sel = Selection {
                table: args.table.clone(),
                node: None,
            };
            let engine = open(&cli, sel).await?;
            let all = args.table.is_none();
            provision_cmd(&engine, provision::Action::Deinit, args.dry_run, all).await
        }
        Command::Sync(args) => {
            let sel = Selection {
                table: args.table.clone(),
                node: args.node.clone(),
            };
            let engine = open(&cli, sel).await?;
            sync_once(&engine).await
        }
        Command::Run => {
            let loaded = load(&cli)?;
            init_logging(cli.log_level.as_deref(), Some(&loaded.config), "info");
            crate::daemon::run(loaded).await
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
        Command::Quarantine(cmd) => quarantine_cmd(&cli, cmd).await,
        Command::Serve => {
            let loaded = load(&cli)?;
            init_logging(cli.log_level.as_deref(), Some(&loaded.config), "info");
            crate::hub::serve(loaded).await
        }
        Command::Token(cmd) => {
            let loaded = load(&cli)?;
            init_logging(cli.log_level.as_deref(), Some(&loaded.config), "warn");
            match cmd {
                crate::cli::TokenCommand::Create {
                    node,
                    tenant,
                    params,
                } => {
                    let token =
                        crate::hub::tokens::create(&loaded, node, tenant.as_deref(), params)
                            .await?;
                    println!("{token}");
                    eprintln!(
                        "token for node {node} created; it is shown only this once: store it in the edge's central.token_file or central.token_env"
                    );
                    Ok(())
                }
                crate::cli::TokenCommand::Revoke { node } => {
                    let n = crate::hub::tokens::revoke(&loaded, node).await?;
                    if n == 0 {
                        return Err(Failed(format!("node {node} has no live token")).into());
                    }
                    println!("revoked {n} token(s) of node {node}");
                    Ok(())
                }
            }
        }
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
    let stats = progress::observe(progress::for_stderr(), sync::sync_all(engine)).await;
    let mut failed = Vec::new();
    for s in &stats {
        match &s.error {
            Some(e) => {
                println!("{} {}: FAILED: {e}", s.node, s.table);
                failed.push(format!("{}/{}", s.node, s.table));
            }
            None => {
                let quarantined = if s.quarantined > 0 {
                    format!(" QUARANTINED {}", s.quarantined)
                } else {
                    String::new()
                };
                println!(
                    "{} {}: pushed {} pulled {} conflicts {}{quarantined}",
                    s.node, s.table, s.pushed, s.pulled, s.conflicts
                );
                if s.quarantined > 0 {
                    failed.push(format!(
                        "{}/{} ({} change(s) refused by the central and quarantined; see `edgesync quarantine list`)",
                        s.node, s.table, s.quarantined
                    ));
                }
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failed(format!("sync failed for {}", failed.join(", "))).into())
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
    // A hub's JWT keys are read as `serve` would read them, so a missing or
    // unreadable key is found here rather than at start-up.
    if let Some(jwt) = loaded.config.serve.as_ref().and_then(|s| s.jwt.as_ref()) {
        crate::hub::jwt::JwtVerifier::from_config(jwt)?;
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
            let list = conflicts::list(engine, *all).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", conflicts::render(&list, *all));
            }
            Ok(())
        }
        ConflictsCommand::Resolve { id, keep } => {
            let keep = match keep {
                crate::cli::Keep::Local => edgesync_core::Keep::Local,
                crate::cli::Keep::Central => edgesync_core::Keep::Central,
            };
            let record = conflicts::resolve(engine, *id, keep).await?;
            println!(
                "conflict #{} on {} resolved: kept the {} version; every edge takes it on its next sync",
                record.id, record.table, keep
            );
            Ok(())
        }
    }
}

async fn quarantine_cmd(cli: &Cli, cmd: &crate::cli::QuarantineCommand) -> Result<()> {
    use crate::cli::QuarantineCommand;
    match cmd {
        QuarantineCommand::List { json } => {
            let engine = open(cli, Selection::default()).await?;
            let mut all = Vec::new();
            for edge in &engine.edges {
                for t in &edge.tables {
                    for q in edge.db.quarantined(t).await? {
                        all.push(serde_json::json!({
                            "node": edge.config.node,
                            "table": q.table,
                            "key": q.key,
                            "seq": q.seq,
                            "deleted": q.deleted,
                            "error": q.error,
                            "at": q.at,
                        }));
                    }
                }
            }
            if *json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("no quarantined changes");
            } else {
                for q in &all {
                    println!(
                        "{} {} {}{} at {}: {}",
                        q["node"].as_str().unwrap_or_default(),
                        q["table"].as_str().unwrap_or_default(),
                        q["key"].as_str().unwrap_or_default(),
                        if q["deleted"] == true {
                            " (delete)"
                        } else {
                            ""
                        },
                        q["at"].as_str().unwrap_or_default(),
                        q["error"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        QuarantineCommand::Retry { table, node } => {
            let sel = Selection {
                table: table.clone(),
                node: node.clone(),
            };
            let engine = open(cli, sel).await?;
            let mut total = 0;
            for edge in &engine.edges {
                for t in &edge.tables {
                    let n = edge.db.requeue_quarantined(t).await?;
                    if n > 0 {
                        println!(
                            "{} {}: {n} change(s) queued again",
                            edge.config.node, t.edge
                        );
                    }
                    total += n;
                }
            }
            if total == 0 {
                println!("no quarantined changes");
            } else {
                println!("they are pushed on the next sync");
            }
            Ok(())
        }
    }
}
