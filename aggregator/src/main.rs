//! `aggregator`: the cloud side of fedge, and the one-command local edge cluster.
//!
//! - `aggregator local`: N fn-train nodes, an fn-serve and the aggregator on 127.0.0.1, each
//!   node a child process of this binary, real HTTP between them; runs the rounds and writes
//!   everything to `--out`.
//! - `aggregator serve`: cluster mode (config file + env), for a Kubernetes Deployment.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use aggregator::{cluster, local, nodes};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "aggregator",
    version,
    about = "fedge aggregator: federated rounds, model store, local edge cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole edge system on this machine: fn-train nodes, fn-serve, aggregator.
    Local(local::LocalArgs),
    /// Cluster mode: serve the model store and run rounds against configured clients.
    Serve(cluster::ServeArgs),
    /// (internal) Run an fn-train node; arguments are fn-train's own flags.
    #[command(hide = true)]
    FnTrain {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// (internal) Run an fn-serve node; arguments are fn-serve's own flags.
    #[command(hide = true)]
    FnServe {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
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
        Command::Local(args) => run_async(local::run(args)),
        Command::Serve(args) => run_async(cluster::run(args)),
        Command::FnTrain { args } => run_async(nodes::fn_train(args)),
        Command::FnServe { args } => run_async(nodes::fn_serve(args)),
        Command::StoreTorture { dir, versions } => nodes::store_torture(&dir, versions),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aggregator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `fut` to completion on a multi-threaded runtime, then shuts the runtime down
/// without waiting on the thread blocked reading stdin (nodes watch it for EOF): dropping
/// the runtime would wait for that read, so a node that failed would linger until its
/// parent closed the pipe.
fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(fut);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
