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
        Some(Node::FnTrain { args }) => nodes::run_async(nodes::fn_train(args)),
        Some(Node::FnServe { args }) => nodes::run_async(nodes::fn_serve(args)),
        None => nodes::run_async(repro::run(cli.args, command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("repro: {e:#}");
            ExitCode::FAILURE
        }
    }
}
