//! `edge-cluster local`: the whole federated edge system on this machine.
//!
//! Starts, on 127.0.0.1 with real HTTP between them: the aggregator's model store, N
//! fn-train nodes (child processes of this binary, each with its own MNIST partition and its
//! own bearer token) and an fn-serve node polling the aggregator's latest model. Runs the
//! rounds with a live table, then sends the test set to fn-serve (KServe V2 JSON) and
//! reports served accuracy and latencies. Writes the store (versions + history), charts and
//! a summary to `--out`.
//!
//! [`run`] is the script; each step is its own function: [`prepare`] (data and store),
//! [`spawn::start`] (the processes), [`coordinator`] and [`run_rounds`] (the rounds),
//! [`report`] (printing and the summary), [`serving::serving_check`].

mod args;
pub mod report;
pub mod serving;
pub mod shards;
pub mod spawn;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use aggregator::evaluate::test_set_evaluator;
use aggregator::history::RoundRecord;
use aggregator::rounds::{Coordinator, CoordinatorConfig, TrainSettings, adam};
use aggregator::store::ModelStore;
use aggregator::strategy::{RoundSettings, Strategy, StrategyKind};
use aggregator::validate::ValidationLimits;
use anyhow::{Context as _, bail};
use engine::Dataset;
use engine::data::{PartitionSource, mnist};

pub use args::LocalArgs;
pub use report::Summary;
pub use serving::ServingReport;

/// Runs `edge-cluster local`.
pub async fn run(args: LocalArgs) -> anyhow::Result<()> {
    let t_start = Instant::now();
    service::logging::init(
        "aggregator=warn,edge_cluster=warn",
        service::logging::Sink::Stderr,
    );
    let (strategy, partition) = plan(&args)?;
    let data = prepare(&args).await?;
    println!(
        "fedge local: {} fn-train node(s), partition {}, strategy {strategy}, {} round(s) x {} local epoch(s), batch {}, Adam lr {}, seed {}",
        args.clients,
        args.partition,
        args.rounds,
        args.local_epochs,
        args.batch_size,
        args.lr,
        args.seed
    );
    let cluster = spawn::start(&args, &partition, &data.mnist_dir, Arc::clone(&data.store)).await?;
    let coordinator = coordinator(&args, strategy, &data, &cluster).await?;

    let t_rounds = Instant::now();
    let records = run_rounds(
        &coordinator,
        &data.store,
        args.rounds,
        cluster.train_nodes.len(),
    )
    .await?;
    let rounds_seconds = t_rounds.elapsed().as_secs_f64();
    let node_cpu = cluster.train_cpu_seconds();
    let own_cpu = crate::nodes::cpu_seconds_of(std::process::id()).unwrap_or(0.0);
    let history = data.store.history();
    crate::charts::write_charts(&history, &args.out.join("charts"))?;
    report::print_summary_table(&history);
    println!("rounds: {rounds_seconds:.1} s in total");
    report::print_cpu(&node_cpu, own_cpu);

    let serving = match &cluster.serve_node {
        Some(node) => match serving::serving_check(node, &data.test, &data.store, &args).await {
            Ok(r) => Some(r),
            Err(e) => {
                println!("serving check failed: {e:#}");
                None
            }
        },
        None => None,
    };
    let summary = Summary {
        rounds: records,
        rounds_seconds,
        total_seconds: t_start.elapsed().as_secs_f64(),
        node_cpu_seconds: node_cpu,
        aggregator_cpu_seconds: own_cpu,
        serving,
    };
    summary.write(&args.out)?;
    cluster.stop().await;
    Ok(())
}

/// The run's strategy and partition scheme, checked before anything starts. A partition
/// file becomes an absolute path: nodes run in their own folders.
pub fn plan(args: &LocalArgs) -> anyhow::Result<(StrategyKind, PartitionSource)> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let strategy: StrategyKind = args.strategy.parse().map_err(anyhow::Error::msg)?;
    let partition: PartitionSource = args
        .partition
        .parse()
        .with_context(|| format!("--partition {}", args.partition))?;
    let partition = match partition {
        PartitionSource::File(path) => PartitionSource::File(
            std::path::absolute(&path)
                .with_context(|| format!("--partition file {}", path.display()))?,
        ),
        scheme => scheme,
    };
    Ok((strategy, partition))
}

/// What the run reads and writes on this machine.
#[derive(Debug)]
pub struct Prepared {
    /// The MNIST folder the nodes load their shards from.
    pub mnist_dir: PathBuf,
    /// The aggregator's test set (`--test-limit` applied).
    pub test: Arc<Dataset>,
    /// The model store in `--out`/store.
    pub store: Arc<ModelStore>,
}

/// Finds (or downloads) MNIST, loads the test set, and opens the store in `--out` (cleared
/// unless `--resume`), refusing versions of another architecture.
pub async fn prepare(args: &LocalArgs) -> anyhow::Result<Prepared> {
    let mnist_dir = tokio::task::spawn_blocking({
        let args = args.clone();
        move || args::mnist_dir(&args)
    })
    .await??;
    let test = {
        let dir = mnist_dir.clone();
        tokio::task::spawn_blocking(move || mnist::load(&dir, mnist::Split::Test)).await??
    };
    let test = Arc::new(match args.test_limit {
        Some(n) => test.take(n),
        None => test,
    });
    let out = &args.out;
    let store_dir = out.join("store");
    if !args.resume && store_dir.exists() {
        std::fs::remove_dir_all(&store_dir)
            .with_context(|| format!("clearing {}", store_dir.display()))?;
    }
    for d in [out, &out.join("logs"), &out.join("charts")] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let check_spec = engine::presets::table1_cnn();
    let store = Arc::new(ModelStore::open_checked(&store_dir, "mnist", &move |b| {
        let w = engine::weights::from_bytes(b.to_vec()).map_err(|e| e.to_string())?;
        if w.meta.spec == check_spec {
            Ok(())
        } else {
            Err(format!("another architecture: `{}`", w.meta.spec.name))
        }
    })?);
    Ok(Prepared {
        mnist_dir,
        test,
        store,
    })
}

/// The aggregator's coordinator over the started nodes, with version 0 (the seeded
/// initial model) in the store.
pub async fn coordinator(
    args: &LocalArgs,
    strategy: StrategyKind,
    data: &Prepared,
    cluster: &spawn::Cluster,
) -> anyhow::Result<Coordinator> {
    let spec = engine::presets::table1_cnn();
    let coordinator = Coordinator::new(CoordinatorConfig {
        store: Arc::clone(&data.store),
        spec: spec.clone(),
        clients: cluster.clients.clone(),
        settings: RoundSettings {
            fraction_fit: args.fraction_fit,
            min_fit_clients: 1,
            min_available_clients: 1,
            ..RoundSettings::default()
        },
        train: TrainSettings {
            epochs: args.local_epochs,
            batch_size: args.batch_size,
            optimizer: adam(args.lr),
            seed: args.seed,
        },
        limits: ValidationLimits {
            min_cosine_vs_median: (!args.no_direction_check)
                .then_some(ValidationLimits::default().min_cosine_vs_median)
                .flatten(),
            ..ValidationLimits::default()
        },
        strategy: Strategy::new(strategy),
        evaluator: Some(test_set_evaluator(Arc::clone(&data.test))),
        public_url: cluster.store_url.clone(),
    })?;
    let initial = engine::Sequential::new(spec, args.seed)?.take_params();
    coordinator.ensure_initial(initial).await?;
    if let Some(r) = data.store.history().last() {
        report::print_round(r);
    }
    Ok(coordinator)
}

/// Runs `rounds` rounds, printing each; returns their records.
pub async fn run_rounds(
    coordinator: &Coordinator,
    store: &ModelStore,
    rounds: u64,
    nodes: usize,
) -> anyhow::Result<Vec<RoundRecord>> {
    let mut records = Vec::new();
    for _ in 0..rounds {
        let round = store.next_round();
        println!("\nround {round}: training on {nodes} node(s)...");
        let r = coordinator.run_round().await?;
        report::print_round(&r);
        records.push(r);
    }
    Ok(records)
}
