//! Fake fn-train clients for tests: small axum servers that follow the wire contract (or
//! break it on purpose), a tiny model spec, and helpers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aggregator::clients::{ClientSpec, TrainRequest};
use aggregator::history::GlobalMetrics;
use aggregator::rounds::{Coordinator, CoordinatorConfig, Evaluator, TrainSettings};
use aggregator::store::ModelStore;
use aggregator::strategy::{RoundSettings, Strategy, StrategyKind};
use aggregator::validate::ValidationLimits;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use engine::weights::WeightsMeta;
use engine::{ModelSpec, ParamSet, Tensor};

/// A 2-tensor model: Flatten -> Dense(10) on 28x28 inputs (7,850 parameters).
pub fn tiny_spec() -> ModelSpec {
    ModelSpec::from_json(
        r#"{"name":"tiny","input_shape":[1,28,28],"layers":[{"type":"Flatten"},
            {"type":"Dense","name":"fc","units":10,"activation":"linear"},{"type":"Softmax"}]}"#,
    )
    .unwrap()
}

/// Another architecture (20 units), for wrong-shape updates.
pub fn other_spec() -> ModelSpec {
    ModelSpec::from_json(
        r#"{"name":"tiny","input_shape":[1,28,28],"layers":[{"type":"Flatten"},
            {"type":"Dense","name":"fc","units":20,"activation":"linear"},{"type":"Dense","name":"out","units":10,"activation":"linear"},{"type":"Softmax"}]}"#,
    )
    .unwrap()
}

/// Every parameter of `spec` set to `value`.
pub fn filled(spec: &ModelSpec, value: f32) -> ParamSet {
    let mut p = ParamSet::new();
    for (name, shape) in spec.param_shapes().unwrap() {
        let mut t = Tensor::zeros(&shape).unwrap();
        t.fill(value);
        p.push(name, t).unwrap();
    }
    p
}

/// What a fake client does with a train request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Replies with every parameter = global + `delta`, claiming `examples`.
    Honest { delta: f32, examples: u64 },
    /// Replies with every parameter = `value`, claiming `examples`.
    Constant { value: f32, examples: u64 },
    /// Replies 200 with bytes that are not safetensors.
    Garbage,
    /// Never replies within any test timeout.
    Hang,
    /// Replies 500.
    Error,
    /// Honest but with one NaN.
    Nan,
    /// Honest but the parameters scaled by 1e6.
    Huge,
    /// A valid weights file of another architecture.
    WrongShape,
    /// Honest but claims the previous round (a replay).
    Replay,
    /// Honest, but its reply names a 5 MB client id.
    BloatedId,
    /// Honest, but reports a million-entry epoch loss, NaN accuracy and infinite seconds.
    BloatedMetrics,
    /// Replies 401 with a body that must not reach the public history.
    Unauthorized,
}

#[derive(Clone)]
struct FakeState {
    id: String,
    token: String,
    behaviour: Behaviour,
    http: reqwest::Client,
}

/// Starts a fake client on a loopback port; returns its spec (with a token).
pub async fn spawn_fake(id: &str, behaviour: Behaviour) -> ClientSpec {
    let token = format!("token-{id}");
    let state = FakeState {
        id: id.into(),
        token: token.clone(),
        behaviour,
        http: reqwest::Client::new(),
    };
    let app = Router::new()
        .route("/train", post(train))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);
    let addr = serve(app).await;
    ClientSpec {
        id: id.into(),
        url: format!("http://{addr}"),
        token: Some(token),
        transport: Default::default(),
        num_examples: None,
    }
}

/// An honest fake client: replies global + `delta`, claiming `examples`.
pub async fn honest(id: &str, delta: f32, examples: u64) -> ClientSpec {
    spawn_fake(id, Behaviour::Honest { delta, examples }).await
}

/// A fake client that replies every parameter = `value`, claiming `examples`.
pub async fn constant(id: &str, value: f32, examples: u64) -> ClientSpec {
    spawn_fake(id, Behaviour::Constant { value, examples }).await
}

/// A client that accepts the connection, reads part of the request and drops the socket:
/// what the aggregator sees when a node is killed mid-round.
pub async fn spawn_dying(id: &str) -> ClientSpec {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 64];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            // Health probes get an answer; a train request dies.
            if buf[..n].starts_with(b"GET /healthz") {
                use tokio::io::AsyncWriteExt;
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            }
            drop(sock);
        }
    });
    ClientSpec {
        id: id.into(),
        url: format!("http://{addr}"),
        token: None,
        transport: Default::default(),
        num_examples: None,
    }
}

/// Serves `app` on a loopback port.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn train(
    State(s): State<FakeState>,
    headers: HeaderMap,
    axum::Json(req): axum::Json<TrainRequest>,
) -> axum::response::Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {}", s.token) {
        return (StatusCode::UNAUTHORIZED, "bad token").into_response();
    }
    let global = s
        .http
        .get(req.model.url.as_deref().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let global = engine::weights::from_bytes(global.to_vec()).unwrap();
    let spec = global.meta.spec.clone();
    let shifted = |delta: f32| {
        let mut p = global.params.clone();
        for (_, t) in p.iter_mut() {
            for v in t.data_mut() {
                *v += delta;
            }
        }
        p
    };
    let mut round = req.round;
    let (params, examples, spec) = match s.behaviour {
        Behaviour::Honest { delta, examples } => (shifted(delta), examples, spec),
        Behaviour::Constant { value, examples } => (filled(&spec, value), examples, spec),
        Behaviour::Garbage => return (StatusCode::OK, "not safetensors at all").into_response(),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return StatusCode::OK.into_response();
        }
        Behaviour::Error => {
            return (StatusCode::INTERNAL_SERVER_ERROR, r#"{"error":"boom"}"#).into_response();
        }
        Behaviour::Nan => {
            let mut p = shifted(0.01);
            if let Some((_, t)) = p.iter_mut().next() {
                t.data_mut()[3] = f32::NAN;
            }
            (p, 100, spec)
        }
        Behaviour::Huge => {
            let mut p = shifted(0.01);
            for (_, t) in p.iter_mut() {
                for v in t.data_mut() {
                    *v = *v * 1e6 + 1e3;
                }
            }
            (p, 100, spec)
        }
        Behaviour::WrongShape => (filled(&other_spec(), 0.5), 100, other_spec()),
        Behaviour::Replay => {
            round -= 1;
            (shifted(0.01), 100, spec)
        }
        Behaviour::BloatedId | Behaviour::BloatedMetrics => (shifted(0.01), 100, spec),
        Behaviour::Unauthorized => {
            return (StatusCode::UNAUTHORIZED, "SECRET-DETAIL of the node").into_response();
        }
    };
    let mut meta = WeightsMeta::new(spec);
    let extra: BTreeMap<String, String> = [
        ("fedge.client_id", s.id.clone()),
        ("fedge.round", round.to_string()),
        ("fedge.nonce", req.nonce.clone()),
        ("fedge.num_examples", examples.to_string()),
        ("fedge.epoch_loss", "[0.5]".into()),
        ("fedge.epoch_accuracy", "[0.9]".into()),
        ("fedge.train_seconds", "0.01".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    meta.extra = extra;
    match s.behaviour {
        Behaviour::BloatedId => {
            meta.extra
                .insert("fedge.client_id".into(), "x".repeat(5 << 20));
        }
        Behaviour::BloatedMetrics => {
            let losses = serde_json::to_string(&vec![0.5f32; 1_000_000]).unwrap();
            meta.extra.insert("fedge.epoch_loss".into(), losses);
            meta.extra
                .insert("fedge.epoch_accuracy".into(), "[NaN]".into());
            meta.extra
                .insert("fedge.train_seconds".into(), "inf".into());
        }
        _ => {}
    }
    let bytes = engine::weights::to_bytes(&params, &meta).unwrap();
    (StatusCode::OK, bytes).into_response()
}

/// Mean of all parameters, reported as "accuracy": lets tests see what the global model is.
pub fn mean_evaluator() -> Arc<Evaluator> {
    Arc::new(|_spec: &ModelSpec, params: &ParamSet| {
        let (mut sum, mut n) = (0.0f64, 0usize);
        for (_, t) in params.iter() {
            sum += t.data().iter().map(|&v| f64::from(v)).sum::<f64>();
            n += t.len();
        }
        Ok(GlobalMetrics {
            loss: 0.0,
            accuracy: (sum / n as f64) as f32,
            per_class_accuracy: vec![],
            examples: n,
        })
    })
}

/// A coordinator over `clients` with a store in `dir`, serving the store on a loopback port,
/// with version 0 = all parameters 0.
pub async fn coordinator(
    dir: &std::path::Path,
    clients: Vec<ClientSpec>,
    settings: RoundSettings,
    strategy: StrategyKind,
) -> Arc<Coordinator> {
    let store = Arc::new(ModelStore::open(dir, "tiny").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = CoordinatorConfig {
        store: Arc::clone(&store),
        spec: tiny_spec(),
        clients,
        settings,
        train: TrainSettings::default(),
        limits: ValidationLimits::default(),
        strategy: Strategy::new(strategy),
        evaluator: Some(mean_evaluator()),
        public_url: format!("http://{addr}"),
    };
    let coord = Arc::new(Coordinator::new(cfg).unwrap());
    let app = aggregator::http::app(aggregator::http::AppState::new(
        store,
        Some(Arc::clone(&coord)),
    ));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    coord
        .ensure_initial(filled(&tiny_spec(), 0.0))
        .await
        .unwrap();
    coord
}

/// The single value every parameter of the latest version holds (panics if they differ).
pub fn latest_value(coord: &Coordinator) -> f32 {
    let (_, bytes) = coord.store().latest().unwrap();
    let w = engine::weights::from_bytes(bytes.to_vec()).unwrap();
    let first = w.params.iter().next().unwrap().1.data()[0];
    for (_, t) in w.params.iter() {
        for &v in t.data() {
            assert!((v - first).abs() < 1e-5, "{v} vs {first}");
        }
    }
    first
}
