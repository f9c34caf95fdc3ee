//! The happy paths: one epoch on a small shard, binary and JSON replies, model by URL.

use base64::Engine as _;
use engine::weights;
use serde_json::Value;

use crate::common::{self, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_epoch_returns_different_weights_that_improve_held_out_accuracy() {
    let dir = common::shard_dir(600, |_, _| {});
    let server = Server::start(common::config(dir.path())).await;
    let model = common::model_bytes(common::small_spec(), 1);
    let response = server.train(&common::request(&model, 1)).await;
    assert_eq!(response.status(), 200);
    let h = response.headers();
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["x-fedge-client-id"], "node-7");
    assert_eq!(h["x-fedge-round"], "3");
    assert_eq!(h["x-fedge-num-examples"], "600");
    let update = response.bytes().await.unwrap().to_vec();
    assert_ne!(update, model);

    let loaded = weights::from_bytes(update.clone()).unwrap();
    let extra = &loaded.meta.extra;
    assert_eq!(loaded.meta.round, 3);
    assert_eq!(loaded.meta.version, 1);
    assert_eq!(loaded.meta.spec, common::small_spec());
    assert_eq!(extra["fedge.client_id"], "node-7");
    assert_eq!(extra["fedge.round"], "3");
    assert_eq!(extra["fedge.nonce"], "nonce-abc");
    assert_eq!(extra["fedge.num_examples"], "600");
    let losses: Vec<f32> = serde_json::from_str(&extra["fedge.epoch_loss"]).unwrap();
    let accs: Vec<f32> = serde_json::from_str(&extra["fedge.epoch_accuracy"]).unwrap();
    assert_eq!((losses.len(), accs.len()), (1, 1));
    assert!(losses[0].is_finite() && losses[0] > 0.0);
    assert!(extra["fedge.train_seconds"].parse::<f64>().unwrap() > 0.0);

    let test = common::held_out(500);
    let (before, after) = (
        common::accuracy(&model, &test),
        common::accuracy(&update, &test),
    );
    assert!(
        after > before + 0.2,
        "held-out accuracy {before} -> {after}"
    );
    assert_eq!(
        server.metric("fn_train_jobs_total{outcome=\"ok\"}").await,
        1.0
    );
    assert_eq!(server.metric("fn_train_examples_total").await, 600.0);
    assert_eq!(server.metric("fn_train_batches_total").await, 19.0); // ceil(600 / 32)
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_reply_with_the_table1_model_fetched_by_url() {
    let dir = common::shard_dir(128, |_, _| {});
    let server = Server::start(common::config(dir.path())).await;
    let model = common::model_bytes(engine::presets::table1_cnn(), 2);
    let url = common::model_store(model.clone()).await;
    let mut body = common::request(&model, 2);
    body["model"] = serde_json::json!({ "url": url });
    let response = server
        .http
        .post(server.url("/train"))
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(summary["client_id"], "node-7");
    assert_eq!(summary["round"], 3);
    assert_eq!(summary["nonce"], "nonce-abc");
    assert_eq!(summary["num_examples"], 128);
    assert_eq!(summary["epochs"].as_array().unwrap().len(), 2);
    assert!(summary["epochs"][1]["loss"].as_f64().unwrap() > 0.0);
    assert!(summary["train_seconds"].as_f64().unwrap() > 0.0);
    let update = base64::engine::general_purpose::STANDARD
        .decode(summary["weights_base64"].as_str().unwrap())
        .unwrap();
    let loaded = weights::from_bytes(update).unwrap();
    assert_eq!(loaded.meta.spec, engine::presets::table1_cnn());
    let original = weights::from_bytes(model).unwrap();
    let w = |l: &weights::LoadedWeights| l.params.get("fc2.weight").unwrap().data().to_vec();
    assert_ne!(w(&loaded), w(&original));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_mode_keeps_client_i_of_n_of_full_mnist() {
    let mnist_dir = engine::data::mnist::dir_from_env().unwrap_or_else(|_| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist")
    });
    let config = fn_train::Config {
        mnist_dir: Some(mnist_dir),
        partition: "dirichlet:0.5".into(),
        client_index: 2,
        num_clients: 3,
        partition_seed: 7,
        shard_limit: Some(300),
        any_architecture: true,
        ..fn_train::Config::default()
    };
    let server = Server::start(config).await;
    let status = server.status().await;
    assert_eq!(status["shard_examples"], 300);
    assert_eq!(status["ready"], true);
    assert_eq!(server.metric("fn_train_shard_examples").await, 300.0);
    let model = common::model_bytes(common::small_spec(), 1);
    assert_eq!(
        server.train(&common::request(&model, 1)).await.status(),
        200
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_file_mode_keeps_the_listed_examples() {
    let mnist_dir = engine::data::mnist::dir_from_env().unwrap_or_else(|_| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist")
    });
    let file = tempfile::NamedTempFile::new().unwrap();
    let mine: Vec<usize> = (100..137).rev().collect();
    std::fs::write(
        file.path(),
        serde_json::to_string(&serde_json::json!({"0": (0..10).collect::<Vec<_>>(), "1": mine}))
            .unwrap(),
    )
    .unwrap();
    let config = fn_train::Config {
        mnist_dir: Some(mnist_dir),
        partition: format!("file:{}", file.path().display()),
        client_index: 1,
        num_clients: 2,
        ..fn_train::Config::default()
    };
    let server = Server::start(config).await;
    let status = server.status().await;
    assert_eq!(status["shard_examples"], 37);
    assert_eq!(status["ready"], true);
    server.stop().await.unwrap();
}
