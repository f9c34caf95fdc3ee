//! Figure 6: the training function's response time against local epochs 1..=10, cold and
//! warm, beside the training time fn-train itself reports.
//!
//! Warm is `POST /train` to a running fn-train container that has already answered one
//! request; cold is `docker run` of the fn-train image (present locally, as on a node that
//! has pulled it) timed to the reply of its first `POST /train`. Both under fn-train's pod
//! limits (1 CPU / 200 MiB), the shard mounted read-only, the model inline in the request.
//! Without a usable Docker engine, processes stand in for the containers ([`Launcher`]).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use engine::data::{idx, mnist};
use engine::weights::{self, WeightsMeta};
use protocol::{ModelRef, TrainRequest};

use crate::docker::{RunSpec, TRAIN_POD};
use crate::instance::{Instance, Launcher};
use crate::results::{TrainResult, TrainRow};

/// Writes the first `n` MNIST training images as an fn-train shard folder.
pub fn write_shard(mnist_dir: &Path, n: usize, out: &Path) -> anyhow::Result<()> {
    let train = mnist::load(mnist_dir, mnist::Split::Train)?.take(n);
    std::fs::create_dir_all(out)?;
    idx::write_images(
        &out.join("train-images-idx3-ubyte"),
        train.images(),
        train.len(),
        train.rows(),
        train.cols(),
    )?;
    idx::write_labels(&out.join("train-labels-idx1-ubyte"), train.labels())?;
    Ok(())
}

/// A `POST /train` request: the Table 1 CNN (seed 0) inline, batch 64, Adam 1e-3, as the
/// aggregator writes it (the `protocol` crate's type, with the engine's optimizer).
pub fn request(epochs: usize) -> anyhow::Result<TrainRequest<engine::OptimizerConfig>> {
    let spec = engine::presets::table1_cnn();
    let model = engine::Sequential::new(spec.clone(), 0)?;
    let bytes = weights::to_bytes(model.params(), &WeightsMeta::new(spec))?;
    Ok(TrainRequest {
        round: 1,
        nonce: "repro".into(),
        model: ModelRef {
            url: None,
            inline_base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        },
        epochs,
        batch_size: 64,
        optimizer: aggregator::rounds::adam(1e-3),
        seed: 0,
        proximal_mu: None,
        deadline_ms: None,
    })
}

/// The JSON body of [`request`].
pub fn request_body(epochs: usize) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&request(epochs)?)?)
}

/// One `POST /train`: (response seconds, training seconds fn-train reported).
async fn train(http: &reqwest::Client, url: &str, body: &[u8]) -> anyhow::Result<(f64, f64)> {
    let t0 = Instant::now();
    let resp = http
        .post(format!("{url}/train"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body.to_vec())
        .send()
        .await?;
    let status = resp.status();
    let reply = resp.bytes().await?;
    let seconds = t0.elapsed().as_secs_f64();
    if !status.is_success() {
        bail!(
            "POST /train answered {status}: {}",
            String::from_utf8_lossy(&reply[..reply.len().min(300)])
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&reply).context("fn-train's reply")?;
    let trained = v["train_seconds"]
        .as_f64()
        .context("no train_seconds in the reply")?;
    Ok((seconds, trained))
}

/// Runs Figure 6 with `image` (or processes, per `launcher`) on a shard folder.
pub async fn run(
    launcher: &Launcher,
    image: &str,
    shard_dir: &Path,
    shard: usize,
    max_epochs: usize,
) -> anyhow::Result<TrainResult> {
    let http = reqwest::Client::new();
    let spec = RunSpec {
        image,
        service: "fn-train",
        limits: TRAIN_POD,
        mounts: vec![(shard_dir, "/data/shard")],
        env: vec![
            ("FEDGE_SHARD_DIR", "/data/shard".into()),
            ("FEDGE_CLIENT_ID", "repro".into()),
            ("RUST_LOG", "warn".into()),
        ],
    };
    let ready = Duration::from_secs(60);
    let warm = Instance::start(launcher, &spec).await?;
    let result = async {
        warm.wait_ready(&http, "/readyz", ready).await?;
        train(&http, &warm.url, &request_body(1)?).await?; // first request warms buffers
        let mut rows = Vec::new();
        for epochs in 1..=max_epochs {
            let body = request_body(epochs)?;
            let (warm_seconds, warm_train_seconds) = train(&http, &warm.url, &body).await?;
            let t0 = Instant::now();
            let cold = Instance::start(launcher, &spec).await?;
            let cold_run = async {
                cold.wait_ready(&http, "/readyz", ready).await?;
                let cold_ready_seconds = t0.elapsed().as_secs_f64();
                let (_, cold_train_seconds) = train(&http, &cold.url, &body).await?;
                anyhow::Ok((cold_ready_seconds, cold_train_seconds))
            }
            .await;
            let cold_seconds = t0.elapsed().as_secs_f64();
            cold.remove().await;
            let (cold_ready_seconds, cold_train_seconds) = cold_run?;
            println!(
                "  {epochs:>2} epoch(s): warm {warm_seconds:.2} s (training {warm_train_seconds:.2} s), cold {cold_seconds:.2} s (ready after {cold_ready_seconds:.2} s)"
            );
            rows.push(TrainRow {
                epochs,
                warm_seconds,
                warm_train_seconds,
                cold_seconds,
                cold_ready_seconds,
                cold_train_seconds,
            });
        }
        anyhow::Ok(rows)
    }
    .await;
    warm.remove().await;
    Ok(TrainResult {
        shard,
        rows: result?,
        image: crate::instance::describe(launcher, image).await,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_request_is_the_protocol_type_fn_train_reads() {
        let body = super::request_body(3).unwrap();
        let back: protocol::TrainRequest = serde_json::from_slice(&body).unwrap();
        assert_eq!(back.epochs, 3);
        assert_eq!(back.batch_size, 64);
        assert!(back.model.url.is_none() && back.model.inline_base64.is_some());
        assert_eq!(back.optimizer["type"], "adam");
    }
}
