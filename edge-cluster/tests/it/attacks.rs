//! One lying client among honest ones: real fn-train nodes on real MNIST shards, and an
//! attacker that is a real node behind a proxy rewriting its reply. Whatever shape the
//! attack takes, the global model's test accuracy stays within [`MARGIN`] of the run
//! without the attacker.

use std::collections::BTreeMap;
use std::sync::Arc;

use aggregator::clients::{ClientSpec, TrainRequest};
use aggregator::evaluate::test_set_evaluator;
use aggregator::history::{ClientStatus, RoundStatus};
use aggregator::rounds::{Coordinator, CoordinatorConfig, TrainSettings, adam};
use aggregator::store::ModelStore;
use aggregator::strategy::{RoundSettings, Strategy, StrategyKind};
use aggregator::validate::{ValidationLimits, update_norm};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use engine::data::mnist;
use engine::{Dataset, ParamSet};

use edge_cluster::local::spawn::start_store;

use crate::support::{mnist_dir, serve_router, spawn_train_node};

/// Largest accuracy loss (absolute, on 1,000 test images after two rounds) one attacker
/// may cause.
const MARGIN: f32 = 0.03;

/// How the attacker rewrites its honest reply.
#[derive(Debug, Clone, Copy)]
enum Attack {
    /// The reported attack: 10,000,000 examples, a random change of norm 99 (just under
    /// the fixed bound of 100).
    BoostedCount,
    /// An honest count, the honest change reversed and stretched to norm 99.
    BoostedNorm,
    /// An honest count, the honest change reversed.
    SignFlip,
    /// 10,000,000 examples and norm 99 along noise camouflaged with a fifth of the honest
    /// change, so its direction passes the agreement check: only the weight cap and the
    /// norm clip stand in its way.
    Camouflaged,
}

#[derive(Clone)]
struct Proxy {
    inner: ClientSpec,
    attack: Attack,
    http: reqwest::Client,
}

/// A client `id` that forwards to `inner` (a real node with the same id) and rewrites its
/// reply with `attack`.
async fn spawn_attacker(inner: ClientSpec, attack: Attack) -> ClientSpec {
    let id = inner.id.clone();
    let state = Proxy {
        inner,
        attack,
        http: reqwest::Client::new(),
    };
    let router = Router::new()
        .route("/train", post(attack_reply))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);
    let addr = serve_router(router).await;
    ClientSpec {
        id,
        url: format!("http://{addr}"),
        token: None,
        transport: Default::default(),
        num_examples: None,
    }
}

async fn attack_reply(
    State(p): State<Proxy>,
    axum::Json(req): axum::Json<TrainRequest>,
) -> axum::response::Response {
    let reply = p
        .http
        .post(format!("{}/train", p.inner.url))
        .bearer_auth(p.inner.token.clone().unwrap())
        .json(&req)
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success(), "{}", reply.status());
    let honest = engine::weights::from_bytes(reply.bytes().await.unwrap().to_vec()).unwrap();
    let global_bytes = p
        .http
        .get(req.model.url.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let global = engine::weights::from_bytes(global_bytes.bytes().await.unwrap().to_vec())
        .unwrap()
        .params;
    let mut meta = honest.meta.clone();
    let (params, examples) = match p.attack {
        Attack::BoostedCount => (along(&global, &noise(&global, req.round), 99.0), 10_000_000),
        Attack::BoostedNorm => (
            along(&global, &reversed(&global, &honest.params), 99.0),
            500,
        ),
        Attack::SignFlip => (reversed(&global, &honest.params), 500),
        Attack::Camouflaged => {
            let noise = along(&global, &noise(&global, req.round), 1.0);
            let honest_unit = along(&global, &honest.params, 0.2);
            let mut mixed = noise;
            for (name, t) in mixed.iter_mut() {
                let (g, h) = (global.get(name).unwrap(), honest_unit.get(name).unwrap());
                for ((m, &gv), &hv) in t.data_mut().iter_mut().zip(g.data()).zip(h.data()) {
                    *m += hv - gv;
                }
            }
            (along(&global, &mixed, 99.0), 10_000_000)
        }
    };
    let mut extra: BTreeMap<String, String> = meta.extra.clone();
    extra.insert("fedge.num_examples".into(), examples.to_string());
    meta.extra = extra;
    let bytes = engine::weights::to_bytes(&params, &meta).unwrap();
    (StatusCode::OK, bytes).into_response()
}

/// `global` plus uniform noise in [-1, 1], seeded by `seed`.
fn noise(global: &ParamSet, seed: u64) -> ParamSet {
    let mut rng = engine::Rng::new(seed);
    let mut out = global.clone();
    for (_, t) in out.iter_mut() {
        for v in t.data_mut() {
            *v += rng.uniform(-1.0, 1.0);
        }
    }
    out
}

/// `global - (update - global)`.
fn reversed(global: &ParamSet, update: &ParamSet) -> ParamSet {
    let mut out = global.clone();
    for (name, t) in out.iter_mut() {
        let u = update.get(name).unwrap();
        for (o, &uv) in t.data_mut().iter_mut().zip(u.data()) {
            *o = 2.0 * *o - uv;
        }
    }
    out
}

/// `global` moved along `towards - global` by exactly `norm`.
fn along(global: &ParamSet, towards: &ParamSet, norm: f32) -> ParamSet {
    let scale = norm / update_norm(global, towards);
    let mut out = global.clone();
    for (name, t) in out.iter_mut() {
        let d = towards.get(name).unwrap();
        for (o, &dv) in t.data_mut().iter_mut().zip(d.data()) {
            *o += (dv - *o) * scale;
        }
    }
    out
}

/// Runs two rounds of FedAvg over `clients` from the seeded initial model; the accuracy of
/// the last version, and the attacker's record in each round.
async fn run(clients: Vec<ClientSpec>, test: Arc<Dataset>) -> (f32, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ModelStore::open(dir.path(), "mnist").unwrap());
    let (url, stop_store, server) = start_store(Arc::clone(&store)).await.unwrap();
    let spec = engine::presets::table1_cnn();
    let coordinator = Coordinator::new(CoordinatorConfig {
        store,
        spec: spec.clone(),
        clients,
        settings: RoundSettings::default(),
        train: TrainSettings {
            epochs: 1,
            batch_size: 32,
            optimizer: adam(1e-3),
            seed: 1,
        },
        limits: ValidationLimits::default(),
        strategy: Strategy::new(StrategyKind::Fedavg),
        evaluator: Some(test_set_evaluator(test)),
        public_url: url,
    })
    .unwrap();
    let initial = engine::Sequential::new(spec, 1).unwrap().take_params();
    coordinator.ensure_initial(initial).await.unwrap();
    let mut accuracy = 0.0;
    let mut attacker = Vec::new();
    for _ in 0..2 {
        let r = coordinator.run_round().await.unwrap();
        assert_eq!(r.status, RoundStatus::Completed, "{r:#?}");
        accuracy = r.global.unwrap().accuracy;
        if let Some(c) = r.clients.iter().find(|c| c.client_id == "attacker") {
            let status = match &c.status {
                ClientStatus::Rejected { reason } => format!("rejected: {reason}"),
                other => format!("{other:?}"),
            };
            attacker.push(format!(
                "{status}, weight {:?}, clipped to {:?}",
                c.weight, c.clipped_to
            ));
        }
    }
    let _ = stop_store.send(());
    let _ = server.await;
    (accuracy, attacker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lying_client_cannot_take_over_the_global_model() {
    let logs = tempfile::tempdir().unwrap();
    let test = Arc::new(
        mnist::load(&mnist_dir(), mnist::Split::Test)
            .unwrap()
            .take(1000),
    );
    let mut nodes = Vec::new();
    let mut honest = Vec::new();
    for i in 0..3 {
        let id = format!("client-{i}");
        let (node, token) = spawn_train_node(logs.path(), &id, i, 4, 500).await;
        honest.push(ClientSpec {
            id,
            url: node.url.clone(),
            token: Some(token),
            transport: Default::default(),
            num_examples: None,
        });
        nodes.push(node);
    }
    let (node, token) = spawn_train_node(logs.path(), "attacker", 3, 4, 500).await;
    let inner = ClientSpec {
        id: "attacker".into(),
        url: node.url.clone(),
        token: Some(token),
        transport: Default::default(),
        num_examples: None,
    };
    nodes.push(node);

    let (baseline, _) = run(honest.clone(), Arc::clone(&test)).await;
    eprintln!("honest only (3 x 500): accuracy {baseline:.4}");
    let mut failures = Vec::new();
    for attack in [
        Attack::BoostedCount,
        Attack::BoostedNorm,
        Attack::SignFlip,
        Attack::Camouflaged,
    ] {
        let mut clients = honest.clone();
        clients.push(spawn_attacker(inner.clone(), attack).await);
        let (accuracy, attacker) = run(clients, Arc::clone(&test)).await;
        eprintln!("{attack:?}: accuracy {accuracy:.4}; attacker per round: {attacker:?}");
        if accuracy < baseline - MARGIN {
            failures.push(format!("{attack:?}: {accuracy} vs {baseline}"));
        }
    }
    for node in nodes {
        node.stop(std::time::Duration::from_secs(5)).await;
    }
    assert!(failures.is_empty(), "{failures:?}");
}
