//! Shared by the tests that run real processes: where MNIST is, how a node starts, a
//! port.

use std::path::{Path, PathBuf};
use std::time::Duration;

use edge_cluster::nodes::Node;

/// Serves `app` on a loopback port until the test ends (the services' own listener).
pub async fn serve_router(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = service::serve::ConnLimits::new(64);
    tokio::spawn(service::serve::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    addr
}

/// A loopback port that was free a moment ago (for a child process that takes `--port`).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `$MNIST_DIR`, else the shared copy beside the repository.
pub fn mnist_dir() -> PathBuf {
    std::env::var_os("MNIST_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist"),
        PathBuf::from,
    )
}

/// Starts client `index` of `clients` as an fn-train child process of the built
/// `edge-cluster` binary, with a `shard`-image IID partition, one compute thread and a fresh
/// bearer token; returns once its shard is loaded.
pub async fn spawn_train_node(
    logs: &Path,
    id: &str,
    index: usize,
    clients: usize,
    shard: usize,
) -> (Node, String) {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_edge-cluster"));
    let token = service::random::hex(16).unwrap();
    let args: Vec<String> = [
        "--client-id",
        id,
        "--mnist-dir",
        &mnist_dir().display().to_string(),
        "--client-index",
        &index.to_string(),
        "--num-clients",
        &clients.to_string(),
        "--shard-limit",
        &shard.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let envs = [
        ("FEDGE_TRAIN_TOKEN", token.clone()),
        ("FEDGE_THREADS", "1".to_string()),
    ];
    let log = logs.join(format!("{id}.log"));
    let mut node = Node::spawn_exe(
        &exe,
        id,
        "fn-train",
        &args,
        &envs,
        &log,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    node.wait_ready(&reqwest::Client::new(), Duration::from_secs(60))
        .await
        .unwrap();
    (node, token)
}
