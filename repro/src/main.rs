//! `repro`: the paper's evaluation on fedge, one command, one report.
//!
//! `cargo run --release -p repro -- [--paper] [--out DIR] [--only rounds,train,serve,load]`
//! writes `DIR/REPORT.md`, `results.json` and SVG charts. The hidden `fn-train` and
//! `fn-serve` subcommands are the local cluster's nodes: the rounds start them as child
//! processes of this binary, as `edge-cluster local` does.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
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
    node: Option<nodes::NodeCommand>,
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
        Some(node) => node.run(),
        None => nodes::run_async(repro::run(cli.args, command)),
    };
    nodes::exit_code("repro", result)
}
