//! Step 1 of `edge-cluster local`: the aggregator's HTTP model store in this process, then
//! the fn-train nodes and the fn-serve node as child processes, each on its own port.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregator::clients::ClientSpec;
use aggregator::http::{AppState, app};
use aggregator::store::ModelStore;
use engine::data::PartitionSource;

use super::LocalArgs;
use crate::nodes::Node;

/// Everything running besides the coordinator.
#[derive(Debug)]
pub struct Cluster {
    /// `http://127.0.0.1:<port>` of the aggregator's store.
    pub store_url: String,
    /// The fn-train nodes, in client order.
    pub train_nodes: Vec<Node>,
    /// How the coordinator reaches them (URL, token, transport).
    pub clients: Vec<ClientSpec>,
    /// The fn-serve node, unless `--no-serve`.
    pub serve_node: Option<Node>,
    stop_store: tokio::sync::oneshot::Sender<()>,
    store_server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `store` on a loopback port (nodes fetch the global model from it).
pub async fn start_store(
    store: Arc<ModelStore>,
) -> anyhow::Result<(
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(store, None);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let limits = aggregator::cluster::CONN_LIMITS;
    let server = tokio::spawn(async move {
        service::serve::serve(listener, app(state), limits, async {
            let _ = stop_rx.await;
        })
        .await
    });
    Ok((url, stop_tx, server))
}

/// Starts the store, the `--clients` fn-train nodes (each loads its own partition of the
/// MNIST training set in `mnist_dir`) and fn-serve, and waits until every training node
/// holds its shard.
pub async fn start(
    args: &LocalArgs,
    partition: &PartitionSource,
    mnist_dir: &Path,
    store: Arc<ModelStore>,
) -> anyhow::Result<Cluster> {
    let (store_url, stop_store, store_server) = start_store(store).await?;
    println!(
        "aggregator store: {store_url}/v1/models/mnist/latest  (out: {})",
        args.out.display()
    );
    let logs = args.out.join("logs");
    let t_nodes = Instant::now();
    let (mut train_nodes, mut clients) = (Vec::new(), Vec::new());
    for i in 0..args.clients {
        let (node, client) = start_train_node(args, i, partition, mnist_dir, &logs).await?;
        println!(
            "  {}: {} (pid {})",
            client.id,
            node.url,
            node.pid().unwrap_or(0)
        );
        train_nodes.push(node);
        clients.push(client);
    }
    let serve_node = if args.no_serve {
        None
    } else {
        let node = start_serve_node(&store_url, &args.out.join("serve-cache"), &logs).await?;
        println!("  fn-serve: {} (pid {})", node.url, node.pid().unwrap_or(0));
        Some(node)
    };
    let probe = reqwest::Client::new();
    for node in &mut train_nodes {
        node.wait_ready(&probe, Duration::from_secs(120)).await?;
    }
    // Once every node holds its shard (a node that cannot load one has said why by now).
    let sizes = tokio::task::spawn_blocking({
        let (partition, dir) = (partition.clone(), mnist_dir.to_owned());
        let (n, seed, limit) = (args.clients, args.seed, args.shard_limit);
        move || super::shards::registered_sizes(&partition, &dir, n, seed, limit)
    })
    .await??;
    for (client, size) in clients.iter_mut().zip(sizes) {
        client.num_examples = Some(size);
    }
    println!(
        "registered shard sizes: {}",
        clients
            .iter()
            .map(|c| format!("{} {}", c.id, c.num_examples.unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "nodes up and shards loaded in {:.2} s",
        t_nodes.elapsed().as_secs_f64()
    );
    Ok(Cluster {
        store_url,
        train_nodes,
        clients,
        serve_node,
        stop_store,
        store_server,
    })
}

/// fn-train node `index` with a fresh bearer token and its share of this machine's cores
/// (its shard size is registered once it is ready, in [`start`]).
async fn start_train_node(
    args: &LocalArgs,
    index: usize,
    partition: &PartitionSource,
    mnist_dir: &Path,
    logs: &Path,
) -> anyhow::Result<(Node, ClientSpec)> {
    let id = format!("client-{index}");
    let token = service::random::hex(32)?;
    let threads_per_node = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .div_ceil(args.clients)
        .max(1);
    let mut node_args = vec![
        "--client-id".to_string(),
        id.clone(),
        "--mnist-dir".into(),
        mnist_dir.display().to_string(),
        "--partition".into(),
        partition.to_string(),
        "--client-index".into(),
        index.to_string(),
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
    let log = logs.join(format!("{id}.log"));
    let node = Node::spawn(
        &id,
        "fn-train",
        &node_args,
        &envs,
        &log,
        Duration::from_secs(120),
    )
    .await?;
    let client = ClientSpec {
        id,
        url: node.url.clone(),
        token: Some(token),
        transport: args.transport,
        num_examples: None,
    };
    Ok((node, client))
}

/// fn-serve following the store's latest version (polling every second).
async fn start_serve_node(store_url: &str, cache: &Path, logs: &Path) -> anyhow::Result<Node> {
    let node_args = vec![
        "--model-uri".to_string(),
        format!("{store_url}/v1/models/mnist/latest"),
        "--poll-seconds".into(),
        "1".into(),
        "--cache-dir".into(),
        PathBuf::from(cache).display().to_string(),
    ];
    Node::spawn(
        "fn-serve",
        "fn-serve",
        &node_args,
        &[],
        &logs.join("fn-serve.log"),
        Duration::from_secs(60),
    )
    .await
}

impl Cluster {
    /// CPU seconds each fn-train node has used so far.
    pub fn train_cpu_seconds(&self) -> Vec<f64> {
        self.train_nodes
            .iter()
            .filter_map(Node::cpu_seconds)
            .collect()
    }

    /// Stops the nodes (stdin closed, then killed after 5 s) and the store server.
    pub async fn stop(self) {
        for node in self.train_nodes {
            node.stop(Duration::from_secs(5)).await;
        }
        if let Some(node) = self.serve_node {
            node.stop(Duration::from_secs(5)).await;
        }
        let _ = self.stop_store.send(());
        let _ = self.store_server.await;
    }
}
