//! `repro`: the paper's evaluation on fedge, one command, one report.
//!
//! `cargo run --release -p repro -- [--paper] [--out DIR] [--only rounds,train,serve,load]`
//! writes `DIR/REPORT.md`, `results.json` and SVG charts. The hidden `fn-train` and
//! `fn-serve` subcommands are the local cluster's nodes: the rounds start them as child
//! processes of this binary, as `edge-cluster local` does.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use edge_cluster::nodes;

#[derive(Debug, Parser)]
#[command(
    name = "repro",
    version,
    about = "The paper's evaluation (Figures 4-7, load test) reproduced on fedge: REPORT.md + SVG charts",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    args: repro::ReproArgs,
    #[command(subcommand)]
    node: Option<Node>,
}

#[derive(Debug, Subcommand)]
enum Node {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = format!(
        "cargo run{} -p repro --{}",
        if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        },
        std::env::args()
            .skip(1)
            .map(|a| format!(" {a}"))
            .collect::<String>()
    );
    let result = match cli.node {
        Some(Node::FnTrain { args }) => run_async(nodes::fn_train(args)),
        Some(Node::FnServe { args }) => run_async(nodes::fn_serve(args)),
        None => run_async(repro::run(cli.args, command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("repro: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `fut` on a multi-threaded runtime, then shuts it down without waiting on a node's
/// blocked stdin reader (as `edge-cluster`'s main does).
fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(fut);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
