//! The `edgesync` binary: parse arguments, run the command, map the outcome
//! to an exit status with a one-line cause on stderr.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = edgesync::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgesync: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(edgesync::app::run(cli))
}
