//! `aggregator serve` end to end: cluster mode (`aggregator::cluster::run`, what the
//! binary runs) on a real port, configured by a JSON file and token files, runs a round
//! against two real fn-train child processes when asked with `POST /v1/rounds` (operator
//! token), then serves the new version.

use std::time::{Duration, Instant};

use crate::support::{free_port, spawn_train_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_mode_runs_a_requested_round_against_real_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut nodes = Vec::new();
    let mut clients = Vec::new();
    let mut client_tokens = Vec::new();
    for i in 0..2 {
        let id = format!("edge-{i}");
        let (node, token) = spawn_train_node(dir.path(), &id, i, 2, 300).await;
        let file = dir.path().join(format!("token-{i}"));
        std::fs::write(&file, &token).unwrap();
        client_tokens.push(token);
        clients.push(serde_json::json!({ "id": id, "url": node.url, "token_file": file }));
        nodes.push(node);
    }
    let config = serde_json::json!({
        "clients": clients,
        "settings": { "min_fit_clients": 2, "min_available_clients": 2 },
        "train": { "epochs": 1, "batch_size": 32, "optimizer": { "type": "adam", "lr": 0.001 }, "seed": 3 },
    });
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = tokio::spawn(aggregator::cluster::run(aggregator::cluster::ServeArgs {
        config: Some(config_path),
        port,
        store_dir: dir.path().join("store"),
        public_url: None,
        operator_token: Some("operator-secret".into()),
    }));
    service::probe::wait_ok(&http, &format!("{base}/healthz"), Duration::from_secs(60))
        .await
        .unwrap();
    // Version 0 (the initial model) exists before any round.
    let latest = http
        .get(format!("{base}/v1/models/mnist/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(latest.status(), 200);
    assert_eq!(latest.headers()["x-model-version"], "0");

    // The control route wants the operator token, not a client's.
    let start = |token: &str| {
        http.post(format!("{base}/v1/rounds"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "rounds": 1 }))
            .send()
    };
    assert_eq!(start(&client_tokens[0]).await.unwrap().status(), 401);
    let started = start("operator-secret").await.unwrap();
    assert_eq!(started.status(), 202, "{:?}", started.text().await);

    let deadline = Instant::now() + Duration::from_secs(120);
    let round = loop {
        let history: Vec<serde_json::Value> = http
            .get(format!("{base}/v1/rounds"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(r) = history.iter().find(|r| r["round"] == 1) {
            break r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "round 1 never recorded: {history:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(round["status"], "completed", "{round:#}");
    let accepted = round["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "accepted" || c["status"]["accepted"].is_object())
        .count();
    assert_eq!(accepted, 2, "{round:#}");

    let latest = http
        .get(format!("{base}/v1/models/mnist/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(latest.status(), 200);
    assert_eq!(latest.headers()["x-model-version"], "1");
    let weights = engine::weights::from_bytes(latest.bytes().await.unwrap().to_vec()).unwrap();
    assert_eq!(weights.meta.round, 1);

    server.abort();
    for node in nodes {
        node.stop(Duration::from_secs(5)).await;
    }
}
