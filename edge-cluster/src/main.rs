//! `edge-cluster`: fedge on one machine, in one command.
//!
//! - `edge-cluster local`: N fn-train nodes, an fn-serve and the aggregator on 127.0.0.1,
//!   each node a child process of this binary, real HTTP between them; runs the rounds and
//!   writes everything to `--out`.
//! - hidden roles the parent starts as its nodes: `fn-train`, `fn-serve`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use edge_cluster::{local, nodes};

#[derive(Debug, Parser)]
#[command(
    name = "edge-cluster",
    version,
    about = "fedge's federated edge cluster on this machine: fn-train nodes, the aggregator, fn-serve"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole edge system on this machine: fn-train nodes, fn-serve, aggregator.
    Local(local::LocalArgs),
    #[command(flatten)]
    Node(nodes::NodeCommand),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Local(args) => nodes::run_async(local::run(args)),
        Command::Node(node) => node.run(),
    };
    nodes::exit_code("edge-cluster", result)
}
