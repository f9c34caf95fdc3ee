//! Writes one folder of MNIST-format IDX files per edge node: client i's part of MNIST's
//! training set under the engine's partitioner, i.e. exactly the examples fn-train would
//! select itself with `MNIST_DIR` + `FEDGE_PARTITION` + `FEDGE_CLIENT_INDEX`. The container
//! testbed (deploy/testbed.sh) mounts each folder read-only into its own fn-train, so no
//! node ever sees another node's data.
//!
//! ```text
//! MNIST_DIR=/work/shared/data/mnist cargo run --release -p engine --example write_shards -- \
//!     --clients 3 --partition iid --seed 0 --out /tmp/shards
//! # -> /tmp/shards/node-0/{train-images-idx3-ubyte,train-labels-idx1-ubyte}, node-1/, node-2/
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use engine::data::PartitionSource;
use engine::data::idx;
use engine::data::mnist::{self, Split};

/// Split MNIST's training set into per-node shard folders.
#[derive(Debug, Parser)]
struct Args {
    /// MNIST folder (IDX files).
    #[arg(long, env = "MNIST_DIR")]
    mnist_dir: PathBuf,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    clients: usize,
    /// `iid`, `dirichlet:ALPHA`, `shards:K` or `file:PATH`, as fn-train's FEDGE_PARTITION.
    #[arg(long, default_value = "iid")]
    partition: String,
    /// Partition seed (fn-train's FEDGE_PARTITION_SEED).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep only the first N examples of each shard (quick runs and tests).
    #[arg(long)]
    limit: Option<usize>,
    /// Output folder; node i's files go to `<out>/node-<i>/`.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("write_shards: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let source: PartitionSource = args.partition.parse()?;
    let full = mnist::load(&args.mnist_dir, Split::Train)?;
    let parts = source.split(full.labels(), args.clients, args.seed)?;
    for (i, indices) in parts.iter().enumerate() {
        let mut shard = full.subset(indices)?;
        if let Some(n) = args.limit {
            shard = shard.take(n.min(shard.len()));
        }
        let dir = args.out.join(format!("node-{i}"));
        std::fs::create_dir_all(&dir)?;
        idx::write_images(
            &dir.join("train-images-idx3-ubyte"),
            shard.images(),
            shard.len(),
            shard.rows(),
            shard.cols(),
        )?;
        idx::write_labels(&dir.join("train-labels-idx1-ubyte"), shard.labels())?;
        println!("{}: {} examples", dir.display(), shard.len());
    }
    Ok(())
}
