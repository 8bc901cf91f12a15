//! `domain-api`: the server and its admin CLI.

use std::process::ExitCode;

mod app;
mod cli;
mod config;
mod durations;
mod janitor;
mod logging;
mod verifier;
mod webhook_sender;

use clap::Parser as _;

use crate::cli::Cli;
use crate::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("domain-api: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    logging::init(config.log_format);
    // Multi-threaded: diesel's migration harness blocks in place, and key
    // generation runs on the blocking pool. actix-web runs its own workers.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("domain-api: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(cli::run(cli, config));
    // Don't wait for a key-pool refill in flight on the blocking pool.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("domain-api: {error:#}");
            if error.downcast_ref::<app::StartRefused>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
