//! Shared helpers: a weights file, MNIST images, a real server on an ephemeral port.

use std::path::{Path, PathBuf};

use engine::weights::{self, WeightsMeta};
use engine::{Pixels, Sequential, presets};
use fn_serve::Config;
use tokio::sync::oneshot;

/// The first `n` MNIST test images (u8, 784 each); generated ones if MNIST is absent.
pub fn mnist_images(n: usize) -> Vec<u8> {
    let dir = std::env::var("MNIST_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/mnist").into());
    let path = Path::new(&dir).join("t10k-images-idx3-ubyte.gz");
    if let Ok((images, count, rows, cols)) = engine::data::idx::read_images(&path) {
        assert_eq!(rows * cols, 784);
        if count >= n {
            return images[..n * 784].to_vec();
        }
    }
    // A deterministic stand-in: strokes of varying brightness.
    (0..n * 784)
        .map(|i| ((i * 37 + i / 784 * 11) % 256) as u8)
        .collect()
}

/// Pixels / 255, as the engine normalises u8.
pub fn to_f32(images: &[u8]) -> Vec<f32> {
    images.iter().map(|&p| f32::from(p) / 255.0).collect()
}

/// Writes a Table 1 CNN with `seed` weights as `version` to `path`; returns the model.
pub fn write_model(path: &Path, seed: u64, version: u64) -> Sequential {
    let model = Sequential::new(presets::table1_cnn(), seed).unwrap();
    let mut meta = WeightsMeta::new(presets::table1_cnn());
    meta.version = version;
    meta.round = version;
    weights::save(path, model.params(), &meta).unwrap();
    model
}

/// Engine reference probabilities.
pub fn reference(model: &Sequential, images: &[u8]) -> Vec<f32> {
    let mut out = vec![0f32; images.len() / 784 * 10];
    model.predict(Pixels::U8(images), &mut out).unwrap();
    out
}

/// A running server.
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub model_path: PathBuf,
    pub model: Sequential,
    pub _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// A server over a fresh model file (version 1, seed 7), configured by `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let model_path = dir.path().join("model.safetensors");
        let model = write_model(&model_path, 7, 1);
        let mut cfg = Config::for_model(model_path.to_str().unwrap());
        cfg.cache_dir = dir.path().join("cache");
        cfg.threads = 2;
        tweak(&mut cfg);
        Self::start_with(cfg, dir, model_path, model).await
    }

    /// A server for `cfg`.
    pub async fn start_with(
        cfg: Config,
        dir: tempfile::TempDir,
        model_path: PathBuf,
        model: Sequential,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(fn_serve::run(cfg, listener, async move {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            model_path,
            model,
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:.200}"));
        (status, v)
    }

    /// Waits until `/v2/health/ready` answers 200.
    pub async fn wait_ready(&self) {
        for _ in 0..500 {
            if self.get("/v2/health/ready").await.0 == 200 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("server never became ready");
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// A V2 JSON request body for f32 pixels with the given shape (flat data).
pub fn v2_f32_body(pixels: &[f32], shape: &[usize]) -> String {
    let data: Vec<String> = pixels.iter().map(|v| v.to_string()).collect();
    format!(
        r#"{{"id":"t-1","inputs":[{{"name":"input","shape":{shape:?},"datatype":"FP32","data":[{}]}}]}}"#,
        data.join(",")
    )
}

/// Probabilities from a V2 JSON response.
pub fn v2_probs(v: &serde_json::Value) -> Vec<f32> {
    let outs = v["outputs"].as_array().unwrap();
    let p = outs.iter().find(|o| o["name"] == "probabilities").unwrap();
    p["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Asserts the served probabilities equal the engine's to within float rounding
/// (1e-5 relative, 1e-7 absolute),
/// naming the first difference. Not bit-for-bit: the server batches concurrent requests
/// and cuts large ones into micro-batches, and conv-kernels' dense layer takes a GEMV path
/// at batch <= 6 whose summation order differs from the GEMM path's, so the same image can
/// round differently in its last bits depending on the batch it was computed in.
pub fn assert_same(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tolerance = 1e-5 * w.abs() + 1e-7;
        assert!(
            (g - w).abs() <= tolerance,
            "index {i}: got {g}, expected {w} (tolerance {tolerance})"
        );
    }
}

pub fn argmax(row: &[f32]) -> i64 {
    let mut best = 0;
    for (i, &p) in row.iter().enumerate() {
        if p > row[best] {
            best = i;
        }
    }
    best as i64
}

/// `fn_serve_model_load_failures_total` as rendered by `m`.
pub fn load_failures(m: &fn_serve::metrics::Metrics) -> String {
    m.render(true, 0)
        .lines()
        .find_map(|l| l.strip_prefix("fn_serve_model_load_failures_total "))
        .unwrap()
        .trim()
        .to_owned()
}
