//! A real local cluster in-test: fn-train nodes are child processes of the built
//! `edge-cluster` binary (hidden `fn-train` subcommand), each with its own small MNIST shard,
//! talking HTTP to a coordinator in this process.

use std::sync::Arc;
use std::time::Duration;

use aggregator::clients::{ClientSpec, Transport};
use aggregator::evaluate::test_set_evaluator;
use aggregator::history::{ClientStatus, RoundStatus};
use aggregator::rounds::{Coordinator, CoordinatorConfig, TrainSettings, adam};
use aggregator::store::ModelStore;
use aggregator::strategy::{RoundSettings, Strategy, StrategyKind};
use aggregator::validate::ValidationLimits;
use edge_cluster::local::spawn::start_store;
use edge_cluster::nodes::Node;
use engine::data::mnist;

use crate::support::{mnist_dir, spawn_train_node};

struct Cluster {
    nodes: Vec<Node>,
    _stop_store: tokio::sync::oneshot::Sender<()>,
    coordinator: Arc<Coordinator>,
    _dir: tempfile::TempDir,
}

async fn cluster(
    n: usize,
    shard: usize,
    test: usize,
    min_fit: usize,
    transport: Transport,
) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let test = mnist::load(&mnist_dir(), mnist::Split::Test)
        .unwrap()
        .take(test);
    let store = Arc::new(ModelStore::open(&dir.path().join("store"), "mnist").unwrap());
    let (url, stop_store, _server) = start_store(Arc::clone(&store)).await.unwrap();
    let (mut nodes, mut clients) = (Vec::new(), Vec::new());
    for i in 0..n {
        let id = format!("client-{i}");
        let (node, token) = spawn_train_node(dir.path(), &id, i, n, shard).await;
        clients.push(ClientSpec {
            id,
            url: node.url.clone(),
            token: Some(token),
            transport,
            num_examples: None,
        });
        nodes.push(node);
    }
    let spec = engine::presets::table1_cnn();
    let coordinator = Arc::new(
        Coordinator::new(CoordinatorConfig {
            store,
            spec: spec.clone(),
            clients,
            settings: RoundSettings {
                min_fit_clients: min_fit,
                ..RoundSettings::default()
            },
            train: TrainSettings {
                epochs: 1,
                batch_size: 32,
                optimizer: adam(1e-3),
                seed: 1,
            },
            limits: ValidationLimits::default(),
            strategy: Strategy::new(StrategyKind::Fedavg),
            evaluator: Some(test_set_evaluator(Arc::new(test))),
            public_url: url,
        })
        .unwrap(),
    );
    let initial = engine::Sequential::new(spec, 1).unwrap().take_params();
    coordinator.ensure_initial(initial).await.unwrap();
    Cluster {
        nodes,
        _stop_store: stop_store,
        coordinator,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_real_cluster_learns_in_two_rounds() {
    let c = cluster(3, 500, 1000, 3, Transport::Http).await;
    let before = c.coordinator.store().history()[0]
        .global
        .clone()
        .unwrap()
        .accuracy;
    let mut last = 0.0;
    for round in 1..=2 {
        let r = c.coordinator.run_round().await.unwrap();
        assert_eq!(r.status, RoundStatus::Completed, "{r:#?}");
        assert_eq!(r.accepted(), 3);
        for client in &r.clients {
            assert_eq!(client.num_examples, 500);
            assert_eq!(client.epoch_loss.len(), 1);
        }
        assert_eq!(r.version, Some(round));
        last = r.global.unwrap().accuracy;
    }
    // From chance (~10 %) to a model that has clearly learned digits.
    assert!(before < 0.25, "initial accuracy {before}");
    assert!(
        last > 0.6,
        "accuracy after 2 rounds of 3 x 500 examples: {last}"
    );
    for node in c.nodes {
        node.stop(Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_round_is_recorded_and_the_round_completes() {
    let mut c = cluster(3, 1500, 200, 2, Transport::Http).await;
    let coord = Arc::clone(&c.coordinator);
    let round = tokio::spawn(async move { coord.run_round().await });
    // Training 1,500 images takes seconds; kill one node while it trains.
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.nodes[2].kill().await;
    let r = round.await.unwrap().unwrap();
    assert_eq!(r.status, RoundStatus::Completed, "{r:#?}");
    assert_eq!(r.accepted(), 2);
    assert!(
        matches!(r.clients[2].status, ClientStatus::Failed { .. }),
        "{:?}",
        r.clients[2]
    );
    // Next round: the dead node is unreachable, so it is not sampled; the round completes.
    let r = c.coordinator.run_round().await.unwrap();
    assert_eq!(r.status, RoundStatus::Completed);
    assert_eq!(r.clients.len(), 2);
    for node in c.nodes {
        node.stop(Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_run_over_binary_mode_cloudevents() {
    let c = cluster(2, 300, 300, 2, Transport::Cloudevents).await;
    let r = c.coordinator.run_round().await.unwrap();
    assert_eq!(r.status, RoundStatus::Completed, "{r:#?}");
    assert_eq!(r.accepted(), 2);
    assert!(r.clients.iter().all(|c| c.num_examples == 300));
    for node in c.nodes {
        node.stop(Duration::from_secs(5)).await;
    }
}
