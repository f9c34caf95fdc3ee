//! Shared by the tests that run real processes: where MNIST is, how `aggregator serve`
//! starts, a port.

use std::path::Path;
use std::time::Duration;

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
    let healthz = format!("{base}/healthz");
    service::probe::wait_ok(&reqwest::Client::new(), &healthz, Duration::from_secs(60))
        .await
        .expect("aggregator serve never became healthy");
    (server, base)
}

/// A loopback port that was free a moment ago (for a child process that takes `--port`).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
