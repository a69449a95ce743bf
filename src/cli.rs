//! The command line, as typed: raw arguments only, no behaviour.
//!
//! Parsing and acting are kept apart (the raw arguments here, the resolved
//! settings in [`crate::config`]), so that the help text, the flags and their
//! environment twins can be read and tested in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Offline-first two-way replication between edge SQLite files and a central
/// database.
///
/// Edge applications keep writing to their local SQLite file while offline;
/// edgesync pushes their changes to the central database (PostgreSQL, MySQL,
/// SQL Server, Oracle or SQLite) and pulls the central's changes back,
/// resolving conflicts by each table's policy.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "edgesync", version, propagate_version = true)]
pub struct Cli {
    /// Config file [default: ./sync.toml, then /etc/edgesync/sync.toml]
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "EDGESYNC_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,

    /// Log level or filter, overriding log.level: error, warn, info, debug,
    /// trace, off, or e.g. "info,edgesync=debug"
    #[arg(long, global = true, value_name = "LEVEL", value_parser = parse_log_level)]
    pub log_level: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Provision sync metadata on the central and every edge (idempotent);
    /// creates missing edge tables from the central schema
    InitSync(ProvisionArgs),

    /// Remove all sync metadata (columns, triggers, tables); user data is kept
    DeinitSync(ProvisionArgs),

    /// Run one push-then-pull cycle for every edge, then exit (non-zero on
    /// failure)
    Sync(SyncArgs),

    /// Run the daemon: sync on changes and every sync.interval, back off on
    /// failure, reload on SIGHUP, finish the batch in flight on SIGTERM
    Run,

    /// Show, per node and table, pending changes, watermarks, last success,
    /// last error, lag and open conflicts
    Status(StatusArgs),

    /// Check the config file, connectivity, table and column mappings and
    /// type compatibility; writes nothing
    CheckConfig(CheckArgs),

    /// List or resolve recorded conflicts
    #[command(subcommand)]
    Conflicts(ConflictsCommand),

    /// List or retry local changes the central refused (poison rows)
    #[command(subcommand)]
    Quarantine(QuarantineCommand),

    /// Run the hub: an HTTPS sync endpoint in front of the central database
    Serve,

    /// Walk through offline edits on two edges, a conflict and a sync, on an
    /// embedded SQLite central
    Demo(DemoArgs),

    /// Create or revoke node tokens for hub mode (run on the hub)
    #[command(subcommand)]
    Token(TokenCommand),
}

/// Arguments of `init-sync` and `deinit-sync`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ProvisionArgs {
    /// Print every statement, per database, and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Only this table (its edge name) [default: every table]
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,
}

/// Arguments of `check-config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct CheckArgs {
    /// Validate the file only, without connecting to any database (what
    /// systemd's ExecStartPre uses, so a field site that boots while its
    /// link is down still starts syncing its edge files when the link returns)
    #[arg(long)]
    pub offline: bool,
}

/// Arguments of `sync`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct SyncArgs {
    /// Only this table (its edge name) [default: every table]
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,

    /// Only this edge node [default: every edge]
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
}

/// Arguments of `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// `conflicts` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ConflictsCommand {
    /// List open conflicts (with --all, resolved ones too)
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,

        /// Include conflicts already resolved
        #[arg(long)]
        all: bool,
    },

    /// Resolve an open conflict by keeping one side's version
    Resolve {
        /// Conflict id, as shown by `conflicts list`
        #[arg(value_name = "ID")]
        id: i64,

        /// Which version to keep
        #[arg(long, value_enum, value_name = "SIDE")]
        keep: Keep,
    },
}

/// `quarantine` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum QuarantineCommand {
    /// List the local changes the central refused, with its error
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },

    /// Queue quarantined changes again (after fixing the cause); they are
    /// pushed on the next sync
    Retry {
        /// Only this table
        #[arg(long, value_name = "TABLE")]
        table: Option<String>,

        /// Only this node
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
    },
}

/// Which side of a conflict to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Keep {
    /// The edge's version
    Local,
    /// The central's version
    Central,
}

/// Arguments of `demo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct DemoArgs {
    /// Directory for the demo's databases and config [default: a new
    /// temporary directory]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Keep the demo's files afterwards
    #[arg(long)]
    pub keep: bool,
}

/// `token` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TokenCommand {
    /// Create a token for a node and print it (once)
    Create {
        /// Node id the token is for
        #[arg(long, value_name = "NODE")]
        node: String,

        /// Tenant the node belongs to
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,

        /// A filter parameter bound to the node, as KEY=VALUE (repeatable)
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },

    /// Revoke a node's token
    Revoke {
        /// Node id whose token ends
        #[arg(long, value_name = "NODE")]
        node: String,
    },
}

/// `KEY=VALUE` (the value may be empty or contain `=`).
fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn parse_log_level(s: &str) -> Result<String, String> {
    crate::config::check_log_level(s).map(|()| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("edgesync").chain(args.iter().copied()))
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_flag_has_an_environment_twin() {
        let cmd = Cli::command();
        let config = cmd
            .get_arguments()
            .find(|a| a.get_id() == "config")
            .expect("--config");
        assert_eq!(
            config.get_env(),
            Some(std::ffi::OsStr::new("EDGESYNC_CONFIG"))
        );
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let cli = parse(&["--config", "/etc/x.toml", "run"]).expect("parse");
        assert_eq!(cli.config, Some(PathBuf::from("/etc/x.toml")));
        assert_eq!(cli.command, Command::Run);
        let cli = parse(&["sync", "--log-level", "debug", "-c", "a.toml"]).expect("parse");
        assert_eq!(cli.config, Some(PathBuf::from("a.toml")));
        assert_eq!(cli.log_level.as_deref(), Some("debug"));
        assert_eq!(cli.command, Command::Sync(SyncArgs::default()));
    }

    #[test]
    fn subcommand_arguments() {
        let cli = parse(&["init-sync", "--dry-run", "--table", "orders"]).expect("parse");
        assert_eq!(
            cli.command,
            Command::InitSync(ProvisionArgs {
                dry_run: true,
                table: Some("orders".into())
            })
        );
        let cli = parse(&["sync", "--table", "orders", "--node", "store-1"]).expect("parse");
        assert_eq!(
            cli.command,
            Command::Sync(SyncArgs {
                table: Some("orders".into()),
                node: Some("store-1".into())
            })
        );
        let cli = parse(&["conflicts", "resolve", "42", "--keep", "central"]).expect("parse");
        assert_eq!(
            cli.command,
            Command::Conflicts(ConflictsCommand::Resolve {
                id: 42,
                keep: Keep::Central
            })
        );
        let cli = parse(&["conflicts", "list", "--json", "--all"]).expect("parse");
        assert_eq!(
            cli.command,
            Command::Conflicts(ConflictsCommand::List {
                json: true,
                all: true
            })
        );
        let cli = parse(&[
            "token",
            "create",
            "--node",
            "n1",
            "--tenant",
            "acme",
            "--param",
            "region=north",
            "--param",
            "q=a=b",
        ])
        .expect("parse");
        assert_eq!(
            cli.command,
            Command::Token(TokenCommand::Create {
                node: "n1".into(),
                tenant: Some("acme".into()),
                params: vec![
                    ("region".into(), "north".into()),
                    ("q".into(), "a=b".into())
                ],
            })
        );
        let cli = parse(&["demo", "--dir", "/tmp/d", "--keep"]).expect("parse");
        assert_eq!(
            cli.command,
            Command::Demo(DemoArgs {
                dir: Some("/tmp/d".into()),
                keep: true
            })
        );
        assert_eq!(
            parse(&["status", "--json"]).expect("parse").command,
            Command::Status(StatusArgs { json: true })
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(parse(&[]).is_err(), "a command is required");
        assert!(parse(&["conflicts", "resolve", "1", "--keep", "mine"]).is_err());
        assert!(parse(&["conflicts", "resolve", "x", "--keep", "local"]).is_err());
        assert!(parse(&["token", "create", "--node", "n", "--param", "noequals"]).is_err());
        assert!(parse(&["token", "revoke"]).is_err(), "--node is required");
        assert!(parse(&["--log-level", "loud", "run"]).is_err());
        assert!(parse(&["run", "--dry-run"]).is_err());
    }
}
