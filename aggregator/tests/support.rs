//! Shared by the tests that run real processes: where MNIST is, how a node and
//! `aggregator serve` start, a port.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aggregator::clients::random_hex;
use aggregator::nodes::Node;

/// Starts `aggregator serve` with the config file `config`, the store in `store`, `envs`
/// (client tokens) and, when `mnist` is given, centralised evaluation on it; returns the
/// child (killed on drop) and its base URL once `/healthz` answers (the store is open and
/// version 0 exists).
pub async fn start_serve(
    config: &Path,
    store: &Path,
    envs: &[(String, String)],
    mnist: Option<&Path>,
) -> (tokio::process::Child, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aggregator"));
    cmd.arg("serve")
        .arg("--config")
        .arg(config)
        .arg("--port")
        .arg(port.to_string())
        .arg("--store-dir")
        .arg(store)
        .env_remove("MNIST_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(dir) = mnist {
        cmd.env("MNIST_DIR", dir);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let server = cmd.spawn().unwrap();
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "aggregator serve never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (server, base)
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
/// `aggregator` binary, with a `shard`-image IID partition, one compute thread and a fresh
/// bearer token; returns once its shard is loaded.
pub async fn spawn_train_node(
    logs: &Path,
    id: &str,
    index: usize,
    clients: usize,
    shard: usize,
) -> (Node, String) {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_aggregator"));
    let token = random_hex(16);
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
