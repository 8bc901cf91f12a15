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

use crate::config::{Config, Refused};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().collect();
    let (cli, origins) = match cli::parse(&args, &|name| std::env::var(name).ok()) {
        Ok(parsed) => parsed,
        Err(Refused::Clap(error)) => error.exit(),
        Err(Refused::Config(error)) => {
            eprintln!("domain-api: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_settings(&cli.settings, &origins) {
        Ok(config) => config,
        Err(error) => {
            eprintln!(
                "domain-api: invalid configuration: {}",
                origins.explain(&error)
            );
            return ExitCode::from(2);
        }
    };
    logging::init(config.log_format);
    if let Some(file) = origins.file() {
        tracing::info!(file = %config::absolute(file).display(), "read the configuration file");
    }
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
