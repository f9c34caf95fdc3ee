//! `aggregator local`: the whole federated edge system on this machine.
//!
//! Starts, on 127.0.0.1 with real HTTP between them: the aggregator's model store, N
//! fn-train nodes (child processes of this binary, each with its own MNIST partition and its
//! own bearer token) and an fn-serve node polling the aggregator's latest model. Runs the
//! rounds with a live table, then sends the test set to fn-serve (KServe V2 JSON) and
//! reports served accuracy and latencies. Writes the store (versions + history), charts and
//! a summary to `--out`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use engine::data::PartitionSource;
use engine::data::mnist;
use engine::{Dataset, ModelSpec, ParamSet};

use crate::clients::{ClientSpec, random_hex};
use crate::history::{ClientStatus, GlobalMetrics, RoundRecord, RoundStatus};
use crate::http::{AppState, app};
use crate::nodes::Node;
use crate::rounds::{Coordinator, CoordinatorConfig, Evaluator, TrainSettings, adam};
use crate::store::ModelStore;
use crate::strategy::{RoundSettings, Strategy, StrategyKind};
use crate::validate::ValidationLimits;

/// Flags of `aggregator local`.
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
    pub transport: crate::clients::Transport,
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
    /// Images per inference request in the serving check's accuracy pass.
    #[arg(long, default_value_t = 100)]
    pub serve_batch: usize,
    /// Single-image requests in the serving check's latency pass.
    #[arg(long, default_value_t = 200)]
    pub serve_single: usize,
}

/// What the run measured, also written as `summary.json`.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    /// Rounds run (this invocation).
    pub rounds: Vec<RoundRecord>,
    /// Wall time of all rounds, seconds.
    pub rounds_seconds: f64,
    /// Wall time from start to the end of the serving check, seconds.
    pub total_seconds: f64,
    /// CPU seconds each fn-train node used by the end of the rounds.
    pub node_cpu_seconds: Vec<f64>,
    /// CPU seconds the aggregator process used by the end of the rounds.
    pub aggregator_cpu_seconds: f64,
    /// The serving check.
    pub serving: Option<ServingReport>,
}

/// fn-serve's answers to the test set.
#[derive(Debug, serde::Serialize)]
pub struct ServingReport {
    /// Model version fn-serve had loaded.
    pub version: Option<u64>,
    /// Images classified.
    pub images: usize,
    /// Served accuracy, 0..1.
    pub accuracy: f64,
    /// Images per request in the accuracy pass.
    pub batch: usize,
    /// Latency percentiles (p50, p90, p99, max) of the batched requests, ms.
    pub batch_latency_ms: [f64; 4],
    /// Latency percentiles (p50, p90, p99, max) of single-image requests, ms.
    pub single_latency_ms: [f64; 4],
}

fn mnist_dir(args: &LocalArgs) -> anyhow::Result<PathBuf> {
    if let Some(d) = &args.mnist_dir {
        return Ok(d.clone());
    }
    if let Ok(d) = mnist::dir_from_env() {
        return Ok(d);
    }
    let cache = args.out.join("mnist");
    println!(
        "MNIST_DIR is not set: downloading MNIST into {}",
        cache.display()
    );
    Ok(mnist::download(mnist::DEFAULT_MIRROR, &cache)?)
}

/// Runs `aggregator local`.
pub async fn run(args: LocalArgs) -> anyhow::Result<()> {
    let t_start = Instant::now();
    init_tracing();
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let strategy: StrategyKind = args.strategy.parse().map_err(anyhow::Error::msg)?;
    let partition: PartitionSource = args
        .partition
        .parse()
        .with_context(|| format!("--partition {}", args.partition))?;
    // Nodes run in their own folders: they get an absolute path to a partition file.
    let partition = match partition {
        PartitionSource::File(path) => PartitionSource::File(
            std::path::absolute(&path)
                .with_context(|| format!("--partition file {}", path.display()))?,
        ),
        scheme => scheme,
    };
    let mnist_dir = tokio::task::spawn_blocking({
        let args = args.clone();
        move || mnist_dir(&args)
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

    let out = args.out.clone();
    let store_dir = out.join("store");
    if !args.resume && store_dir.exists() {
        std::fs::remove_dir_all(&store_dir)
            .with_context(|| format!("clearing {}", store_dir.display()))?;
    }
    for d in [&out, &out.join("logs"), &out.join("charts")] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let spec = engine::presets::table1_cnn();
    let check_spec = spec.clone();
    let store = Arc::new(ModelStore::open_checked(&store_dir, "mnist", &move |b| {
        let w = engine::weights::from_bytes(b.to_vec()).map_err(|e| e.to_string())?;
        if w.meta.spec == check_spec {
            Ok(())
        } else {
            Err(format!("another architecture: `{}`", w.meta.spec.name))
        }
    })?);

    // The aggregator's HTTP store first: nodes fetch from it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let agg_url = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(Arc::clone(&store), None);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app(state))
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });

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
    println!(
        "aggregator store: {agg_url}/v1/models/mnist/latest  (out: {})",
        out.display()
    );

    let threads_per_node = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .div_ceil(args.clients)
        .max(1);
    let mut train_nodes = Vec::new();
    let mut clients = Vec::new();
    let t_nodes = Instant::now();
    for i in 0..args.clients {
        let id = format!("client-{i}");
        let token = random_hex(32);
        let mut node_args = vec![
            "--client-id".to_string(),
            id.clone(),
            "--mnist-dir".into(),
            mnist_dir.display().to_string(),
            "--partition".into(),
            partition.to_string(),
            "--client-index".into(),
            i.to_string(),
            "--num-clients".into(),
            args.clients.to_string(),
            "--partition-seed".into(),
            args.seed.to_string(),
        ];
        if let Some(n) = args.shard_limit {
            node_args.extend(["--shard-limit".to_string(), n.to_string()]);
        }
        let envs = [
            ("FEDGE_TRAIN_TOKEN", token.clone()),
            ("FEDGE_THREADS", threads_per_node.to_string()),
        ];
        let log = out.join("logs").join(format!("{id}.log"));
        let node = Node::spawn(
            &id,
            "fn-train",
            &node_args,
            &envs,
            &log,
            Duration::from_secs(120),
        )
        .await?;
        clients.push(ClientSpec {
            id: id.clone(),
            url: node.url.clone(),
            token: Some(token),
            transport: args.transport,
            num_examples: None,
        });
        println!("  {id}: {} (pid {})", node.url, node.pid().unwrap_or(0));
        train_nodes.push(node);
    }
    let serve_node = if args.no_serve {
        None
    } else {
        let node_args = vec![
            "--model-uri".to_string(),
            format!("{agg_url}/v1/models/mnist/latest"),
            "--poll-seconds".into(),
            "1".into(),
            "--cache-dir".into(),
            out.join("serve-cache").display().to_string(),
        ];
        let log = out.join("logs").join("fn-serve.log");
        let node = Node::spawn(
            "fn-serve",
            "fn-serve",
            &node_args,
            &[],
            &log,
            Duration::from_secs(60),
        )
        .await?;
        println!("  fn-serve: {} (pid {})", node.url, node.pid().unwrap_or(0));
        Some(node)
    };
    let probe = reqwest::Client::new();
    for node in &mut train_nodes {
        node.wait_ready(&probe, Duration::from_secs(120)).await?;
    }
    println!(
        "nodes up and shards loaded in {:.2} s",
        t_nodes.elapsed().as_secs_f64()
    );

    let cfg = CoordinatorConfig {
        store: Arc::clone(&store),
        spec: spec.clone(),
        clients,
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
        limits: ValidationLimits::default(),
        strategy: Strategy::new(strategy),
        evaluator: Some(test_set_evaluator(Arc::clone(&test))),
        public_url: agg_url.clone(),
    };
    let coordinator = Coordinator::new(cfg)?;
    let initial = engine::Sequential::new(spec.clone(), args.seed)?.take_params();
    coordinator.ensure_initial(initial).await?;
    if let Some(r) = store.history().last() {
        print_round(r);
    }

    let t_rounds = Instant::now();
    let mut records = Vec::new();
    for _ in 0..args.rounds {
        let round = store.next_round();
        println!(
            "\nround {round}: training on {} node(s)...",
            train_nodes.len()
        );
        let r = coordinator.run_round().await?;
        print_round(&r);
        records.push(r);
    }
    let rounds_seconds = t_rounds.elapsed().as_secs_f64();
    let node_cpu: Vec<f64> = train_nodes.iter().filter_map(Node::cpu_seconds).collect();
    let own_cpu = crate::nodes::cpu_seconds_of(std::process::id()).unwrap_or(0.0);
    let history = store.history();
    crate::charts::write_charts(&history, &out.join("charts"))?;
    print_summary_table(&history);
    println!("rounds: {rounds_seconds:.1} s in total");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let total_cpu: f64 = node_cpu.iter().sum::<f64>() + own_cpu;
    println!(
        "CPU time: fn-train nodes {} s (incl. shard loading), aggregator {own_cpu:.1} s (evaluation, aggregation, store); {total_cpu:.1} CPU-s in all = {:.1} s of wall time on {cores} idle core(s)",
        node_cpu
            .iter()
            .map(|c| format!("{c:.1}"))
            .collect::<Vec<_>>()
            .join(" + "),
        total_cpu / cores as f64
    );

    let serving = match &serve_node {
        Some(node) => match serving_check(node, &test, &store, &args).await {
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
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    println!(
        "\nwrote {0}/store/history.jsonl, {0}/store/versions/, {0}/charts/accuracy.svg, {0}/charts/loss.svg, {0}/summary.json, {0}/logs/",
        out.display()
    );
    println!("total: {:.1} s", summary.total_seconds);

    for node in train_nodes {
        node.stop(Duration::from_secs(5)).await;
    }
    if let Some(node) = serve_node {
        node.stop(Duration::from_secs(5)).await;
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(())
}

/// Evaluates a candidate model on `test` with the engine.
pub fn test_set_evaluator(test: Arc<Dataset>) -> Arc<Evaluator> {
    Arc::new(move |spec: &ModelSpec, params: &ParamSet| {
        let model = engine::Sequential::from_params(spec.clone(), params.clone())?;
        let r = model.evaluate(&test, 500)?;
        Ok(GlobalMetrics {
            loss: r.loss,
            accuracy: r.accuracy,
            per_class_accuracy: r.per_class_accuracy,
            examples: r.examples,
        })
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("aggregator=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn pct(v: f32) -> String {
    format!("{:.2}%", v * 100.0)
}

/// Prints one round's table.
pub fn print_round(r: &RoundRecord) {
    let status = match r.status {
        RoundStatus::Initial => "initial model".to_string(),
        RoundStatus::Completed => format!("completed -> v{}", r.version.unwrap_or(0)),
        RoundStatus::Failed => format!("FAILED: {}", r.failure.as_deref().unwrap_or("")),
    };
    println!("round {} [{}] {status}", r.round, r.strategy);
    if !r.clients.is_empty() {
        println!(
            "  {:<10} {:>8} {:>9} {:>9} {:>8} {:>8} {:>7}  status",
            "client", "examples", "loss", "accuracy", "train s", "rtt s", "norm"
        );
    }
    for c in &r.clients {
        let status = match &c.status {
            ClientStatus::Accepted => "accepted".to_string(),
            ClientStatus::Rejected { reason } => format!("REJECTED: {reason}"),
            ClientStatus::Failed { reason } => format!("FAILED: {reason}"),
            ClientStatus::Timeout { after_seconds } => {
                format!("TIMEOUT after {after_seconds:.0} s")
            }
        };
        println!(
            "  {:<10} {:>8} {:>9.4} {:>9} {:>8.2} {:>8.2} {:>7}  {status}",
            c.client_id,
            c.num_examples,
            c.epoch_loss.last().copied().unwrap_or(f32::NAN),
            c.epoch_accuracy.last().map_or("-".into(), |a| pct(*a)),
            c.train_seconds,
            c.round_trip_seconds,
            c.update_norm.map_or("-".into(), |n| format!("{n:.2}")),
        );
    }
    if let Some(g) = &r.global {
        println!(
            "  global test: accuracy {}  loss {:.4}  ({} images)",
            pct(g.accuracy),
            g.loss,
            g.examples
        );
    }
    let t = &r.timings;
    println!(
        "  round time {:.2} s = clients {:.2} (training {:.2}, transfer/other {:.2}) + validation {:.3} + aggregation {:.3} + evaluation {:.2} + store {:.3}",
        t.total,
        t.clients,
        t.training,
        t.transfer,
        t.validation,
        t.aggregation,
        t.evaluation,
        t.store
    );
}

fn print_summary_table(history: &[RoundRecord]) {
    println!(
        "\n round | status    | global acc | global loss | round s | train s | transfer s | aggr s | eval s"
    );
    println!(
        "-------+-----------+------------+-------------+---------+---------+------------+--------+-------"
    );
    for r in history {
        let (acc, loss) = r.global.as_ref().map_or(("-".into(), "-".into()), |g| {
            (pct(g.accuracy), format!("{:.4}", g.loss))
        });
        let t = &r.timings;
        println!(
            " {:>5} | {:<9} | {:>10} | {:>11} | {:>7.2} | {:>7.2} | {:>10.2} | {:>6.3} | {:>6.2}",
            r.round,
            format!("{:?}", r.status).to_lowercase(),
            acc,
            loss,
            t.total,
            t.training,
            t.transfer,
            t.aggregation,
            t.evaluation
        );
    }
}

/// Waits until fn-serve serves the store's latest version, then classifies the test set
/// through it (V2 JSON, UINT8) and times single-image requests.
async fn serving_check(
    node: &Node,
    test: &Dataset,
    store: &ModelStore,
    args: &LocalArgs,
) -> anyhow::Result<ServingReport> {
    let http = reqwest::Client::new();
    let want = store.latest_version();
    let version = wait_for_version(&http, &node.url, want).await;
    println!(
        "\nserving check: fn-serve at {} has version {}",
        node.url,
        version.map_or("?".into(), |v| v.to_string())
    );
    let url = format!("{}/v2/models/mnist/infer", node.url);
    let (rows, cols) = (test.rows(), test.cols());
    let batch = args.serve_batch.max(1);
    let mut correct = 0usize;
    let mut lat = Vec::new();
    let n = test.len();
    let mut start = 0;
    while start < n {
        let end = (start + batch).min(n);
        let images = &test.images()[start * rows * cols..end * rows * cols];
        let t = Instant::now();
        let classes = infer(&http, &url, images, end - start, rows, cols).await?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        correct += classes
            .iter()
            .zip(&test.labels()[start..end])
            .filter(|(c, l)| **c == i64::from(**l))
            .count();
        start = end;
    }
    let mut single = Vec::new();
    for i in 0..args.serve_single.min(n) {
        let t = Instant::now();
        infer(&http, &url, test.image(i), 1, rows, cols).await?;
        single.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let report = ServingReport {
        version,
        images: n,
        accuracy: correct as f64 / n.max(1) as f64,
        batch,
        batch_latency_ms: percentiles(&mut lat),
        single_latency_ms: percentiles(&mut single),
    };
    println!(
        "  served accuracy {:.2}% on {} images ({} per request)",
        report.accuracy * 100.0,
        n,
        batch
    );
    let p = report.batch_latency_ms;
    println!(
        "  latency, {batch}-image requests: p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        p[0], p[1], p[2], p[3]
    );
    let p = report.single_latency_ms;
    println!(
        "  latency, 1-image requests (x{}): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        single.len(),
        p[0],
        p[1],
        p[2],
        p[3]
    );
    Ok(report)
}

async fn wait_for_version(http: &reqwest::Client, base: &str, want: Option<u64>) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = None;
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/v2/models/mnist")).send().await
            && let Ok(v) = r.json::<serde_json::Value>().await
        {
            seen = v["versions"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(|s| s.as_str())
                .and_then(|s| s.trim_start_matches('v').parse().ok());
            if seen.is_some() && (want.is_none() || seen >= want) {
                return seen;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen
}

async fn infer(
    http: &reqwest::Client,
    url: &str,
    images: &[u8],
    n: usize,
    rows: usize,
    cols: usize,
) -> anyhow::Result<Vec<i64>> {
    let body = serde_json::json!({
        "inputs": [{"name": "input", "shape": [n, 1, rows, cols], "datatype": "UINT8", "data": images}],
        "outputs": [{"name": "class"}],
    });
    let resp = http.post(url).json(&body).send().await?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        bail!("fn-serve answered {status}: {v}");
    }
    let outputs = v["outputs"].as_array().context("no outputs")?;
    let class = outputs
        .iter()
        .find(|o| o["name"] == "class")
        .context("no `class` output")?;
    let data = class["data"]
        .as_array()
        .context("class output has no data")?;
    Ok(data.iter().filter_map(serde_json::Value::as_i64).collect())
}

fn percentiles(v: &mut [f64]) -> [f64; 4] {
    if v.is_empty() {
        return [0.0; 4];
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    [at(0.5), at(0.9), at(0.99), v[v.len() - 1]]
}
