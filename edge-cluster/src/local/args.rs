//! The flags of `edge-cluster local`, and where MNIST comes from.

use std::path::PathBuf;

use engine::data::mnist;

/// Flags of `edge-cluster local`.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    /// Number of fn-train nodes.
    #[arg(long, default_value_t = 3)]
    pub clients: usize,
    /// Federated rounds.
    #[arg(long, default_value_t = 5)]
    pub rounds: u64,
    /// Local epochs per round.
    #[arg(long, default_value_t = 1)]
    pub local_epochs: usize,
    /// Client batch size.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Client learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    /// How MNIST's training set is split: `iid`, `dirichlet:ALPHA`, `shards:K`, or
    /// `file:PATH` (a JSON file of index lists, e.g. the split another framework made).
    #[arg(long, default_value = "iid")]
    pub partition: String,
    /// Seed of the initial model, the partition and the clients' shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// `fedavg`, `fedavgm[:momentum[:lr]]`, `fedprox[:mu]`, `median`, `trimmed-mean[:beta]`.
    #[arg(long, default_value = "fedavg")]
    pub strategy: String,
    /// How training requests reach the nodes: HTTP `POST /train`, or binary-mode CloudEvents.
    #[arg(long, value_enum, default_value = "http")]
    pub transport: aggregator::clients::Transport,
    /// Fraction of clients sampled per round.
    #[arg(long, default_value_t = 1.0)]
    pub fraction_fit: f64,
    /// Output folder: store (versions, history), charts, logs, summary.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// MNIST folder (IDX files); else `$MNIST_DIR`; else downloaded into `--out`/mnist.
    #[arg(long)]
    pub mnist_dir: Option<PathBuf>,
    /// Limit each client's shard to this many examples (quick runs).
    #[arg(long)]
    pub shard_limit: Option<usize>,
    /// Limit the aggregator's test set to this many examples (quick runs).
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Keep an existing store in `--out` and continue its rounds.
    #[arg(long)]
    pub resume: bool,
    /// Skip the serving check at the end.
    #[arg(long)]
    pub no_serve: bool,
    /// Turn off the aggregator's direction check (an update whose change points away from
    /// the round's median change is rejected; docs/ROBUSTNESS.md). The paper's FedAvg has
    /// no such defence, and a skewed client's honest update can fail it; `repro` turns it
    /// off so Figures 4 and 5 average every client. The norm, finiteness and example-count
    /// checks stay on.
    #[arg(long)]
    pub no_direction_check: bool,
    /// Images per inference request in the serving check's accuracy pass.
    #[arg(long, default_value_t = 100)]
    pub serve_batch: usize,
    /// Single-image requests in the serving check's latency pass.
    #[arg(long, default_value_t = 200)]
    pub serve_single: usize,
}

/// `--mnist-dir`, else `$MNIST_DIR`, else a download into `--out`/mnist (with the
/// `download` feature; without it, the error says how to get the files).
pub(crate) fn mnist_dir(args: &LocalArgs) -> anyhow::Result<PathBuf> {
    if let Some(d) = &args.mnist_dir {
        return Ok(d.clone());
    }
    if let Ok(d) = mnist::dir_from_env() {
        return Ok(d);
    }
    download(args)
}

#[cfg(feature = "download")]
fn download(args: &LocalArgs) -> anyhow::Result<PathBuf> {
    let cache = args.out.join("mnist");
    println!(
        "MNIST_DIR is not set: downloading MNIST into {}",
        cache.display()
    );
    Ok(mnist::download(mnist::DEFAULT_MIRROR, &cache)?)
}

#[cfg(not(feature = "download"))]
fn download(_: &LocalArgs) -> anyhow::Result<PathBuf> {
    anyhow::bail!(
        "MNIST_DIR is not set and this build has no downloader: set MNIST_DIR (or \
         --mnist-dir) to a folder holding the four MNIST IDX files, or build with \
         `--features download`"
    )
}
