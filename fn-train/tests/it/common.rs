//! Fixtures: MNIST slices, shard folders, model bytes, a server on an ephemeral port,
//! a tiny model store, and pollers (bounded in count, never asserting on wall time).

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use engine::data::{idx, mnist};
use engine::spec::{ActivationSpec, LayerSpec, ModelSpec, PaddingSpec};
use engine::weights::{self, WeightsMeta};
use engine::{Dataset, Sequential};
use fn_train::Config;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// MNIST train and test splits, loaded once per test binary.
pub fn mnist_splits() -> &'static (Dataset, Dataset) {
    static DATA: OnceLock<(Dataset, Dataset)> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = mnist::dir_from_env()
            .or_else(|_| {
                let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist");
                if p.exists() { Ok(p) } else { Err(()) }
            })
            .expect("MNIST_DIR (or ../shared/data/mnist) must hold MNIST");
        (
            mnist::load(&dir, mnist::Split::Train).expect("MNIST train"),
            mnist::load(&dir, mnist::Split::Test).expect("MNIST test"),
        )
    })
}

/// Held-out images: the first `n` of MNIST's test split.
pub fn held_out(n: usize) -> Dataset {
    mnist_splits().1.take(n)
}

/// A folder with the first `n` training images as raw IDX files, after `edit(pixels, labels)`.
pub fn shard_dir(n: usize, edit: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>)) -> tempfile::TempDir {
    let data = mnist_splits().0.take(n);
    let mut pixels = data.images().to_vec();
    let mut labels = data.labels().to_vec();
    edit(&mut pixels, &mut labels);
    let dir = tempfile::tempdir().unwrap();
    idx::write_images(
        &dir.path().join("train-images-idx3-ubyte"),
        &pixels,
        labels.len(),
        28,
        28,
    )
    .unwrap();
    idx::write_labels(&dir.path().join("train-labels-idx1-ubyte"), &labels).unwrap();
    dir
}

/// A small CNN (fast to train in tests): conv 8x5x5 + relu, pool, flatten, dense 10, softmax.
pub fn small_spec() -> ModelSpec {
    ModelSpec {
        name: "small_cnn".into(),
        input_shape: [1, 28, 28],
        layers: vec![
            LayerSpec::Conv2D {
                name: "conv1".into(),
                filters: 8,
                kernel_size: [5, 5],
                padding: PaddingSpec::Valid,
                activation: ActivationSpec::Relu,
            },
            LayerSpec::MaxPool2D {
                pool_size: [2, 2],
                strides: None,
            },
            LayerSpec::Flatten,
            LayerSpec::Dense {
                name: "fc1".into(),
                units: 10,
                activation: ActivationSpec::Linear,
            },
            LayerSpec::Softmax,
        ],
    }
}

/// safetensors bytes of a freshly initialised model of `spec`.
pub fn model_bytes(spec: ModelSpec, seed: u64) -> Vec<u8> {
    let model = Sequential::new(spec.clone(), seed).unwrap();
    let mut meta = WeightsMeta::new(spec);
    meta.version = 1;
    weights::to_bytes(model.params(), &meta).unwrap()
}

/// Accuracy of safetensors `bytes` on `data`.
pub fn accuracy(bytes: &[u8], data: &Dataset) -> f32 {
    let model = Sequential::from_weights(weights::from_bytes(bytes.to_vec()).unwrap()).unwrap();
    model.evaluate(data, 256).unwrap().accuracy
}

/// A training request with the model inline.
pub fn request(model: &[u8], epochs: usize) -> Value {
    json!({
        "round": 3,
        "nonce": "nonce-abc",
        "model": { "inline_base64": base64::engine::general_purpose::STANDARD.encode(model) },
        "epochs": epochs,
        "batch_size": 32,
        "optimizer": { "type": "adam", "lr": 0.002 },
        "seed": 42,
        "proximal_mu": null,
    })
}

/// Config for a node training on `dir`.
pub fn config(dir: &Path) -> Config {
    Config {
        client_id: "node-7".into(),
        shard_dir: Some(dir.to_path_buf()),
        max_epochs: 1000,
        retry_after_secs: 2,
        grace_period_ms: 60_000,
        // The tests train small models; production nodes pin the Table 1 CNN.
        any_architecture: true,
        ..Config::default()
    }
}

/// A running fn-train.
pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Starts `fn_train::run` on 127.0.0.1:0 and waits until /readyz answers 200.
    pub async fn start(config: Config) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(fn_train::run(config, listener, async {
            let _ = rx.await;
        }));
        let server = Server {
            base,
            http: reqwest::Client::new(),
            stop: Some(tx),
            task,
        };
        server
            .poll_until("the node is ready", || async {
                server
                    .http
                    .get(server.url("/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            })
            .await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST /train with a JSON body.
    pub async fn train(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/train"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// GET /status.
    pub async fn status(&self) -> Value {
        self.http
            .get(self.url("/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The value of one series in /metrics, e.g. `fn_train_jobs_total{outcome="ok"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{series} not in /metrics:\n{text}"))
    }

    /// Polls `cond` every 5 ms, at most 4000 times (a hang guard, not a timing assert).
    pub async fn poll_until<F, Fut>(&self, what: &str, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..4000 {
            if cond().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("gave up waiting until {what}");
    }

    /// Waits until a job is running and has trained at least one batch.
    pub async fn wait_for_training(&self) {
        self.poll_until("a job trains", || async {
            self.status().await["job"]["batch"].as_u64().unwrap_or(0) > 0
        })
        .await;
    }

    /// Waits until no job holds the slot.
    pub async fn wait_idle(&self) {
        self.poll_until("the slot is free", || async {
            self.status().await["job"].is_null()
        })
        .await;
    }

    /// Sends the shutdown signal and returns run's result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap()
    }
}

/// Serves `bytes` at /v1/models/mnist/versions/1 like the aggregator's store; returns its URL.
pub async fn model_store(bytes: Vec<u8>) -> String {
    use axum::routing::get;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/v1/models/mnist/versions/1",
        get(move || {
            let bytes = bytes.clone();
            async move { ([("content-type", "application/octet-stream")], bytes) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1/models/mnist/versions/1")
}

/// A URL on which nothing listens.
pub async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1/models/mnist/versions/1")
}
