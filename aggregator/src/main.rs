//! `aggregator`: the cloud side of fedge.
//!
//! - `aggregator serve`: cluster mode (config file + env), for a Kubernetes Deployment.
//!
//! The local edge cluster is another binary: `edge-cluster local`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use aggregator::{cluster, torture};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "aggregator",
    version,
    about = "fedge aggregator: federated rounds and the model store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Cluster mode: serve the model store and run rounds against configured clients.
    Serve(cluster::ServeArgs),
    /// (internal, tests) Commit versions to a store in a loop, to be killed at random.
    #[command(hide = true)]
    StoreTorture {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = u64::MAX)]
        versions: u64,
    },
}

/// The static musl images' allocator: musl's own malloc unmaps large blocks on free, which
/// made every batch fault its buffers in again (deploy/README.md, "Allocator").
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => run_async(cluster::run(args)),
        Command::StoreTorture { dir, versions } => torture::store_torture(&dir, versions),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aggregator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `fut` to completion on a multi-threaded runtime.
fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}
