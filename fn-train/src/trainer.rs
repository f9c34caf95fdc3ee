//! The training run itself (on the job thread): decode the weights, check they fit the node,
//! train with a cancellable progress callback, and encode the update with its metadata.
//!
//! What leaves the node is built here and only here: the updated parameters and aggregate
//! numbers (example count, per-epoch loss and accuracy, seconds). Never pixels or labels.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use engine::Dataset;
use engine::spec::ModelSpec;
use engine::weights::{self, WeightsMeta};
use engine::{FitConfig, OptimizerConfig, Progress, Sequential};
use serde::Serialize;

use crate::error::ApiError;
use crate::job::{CancelReason, JobHandle};
use crate::memory;
use crate::metrics::Metrics;
use crate::request::TrainJob;

/// Per-epoch aggregate metrics.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct EpochSummary {
    /// Mean training loss.
    pub loss: f32,
    /// Training accuracy.
    pub accuracy: f32,
}

/// The aggregate numbers of a finished job (the JSON reply adds `weights_base64`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// This node's id.
    pub client_id: String,
    /// The round trained.
    pub round: u64,
    /// The caller's nonce.
    pub nonce: String,
    /// Examples in the shard.
    pub num_examples: usize,
    /// Per-epoch metrics.
    pub epochs: Vec<EpochSummary>,
    /// Seconds spent training.
    pub train_seconds: f64,
}

/// A finished job: the update as safetensors bytes and its summary.
#[derive(Debug)]
pub struct TrainOutput {
    /// safetensors bytes of the updated weights.
    pub weights: Vec<u8>,
    /// The numbers, also in the weights' metadata.
    pub summary: Summary,
    /// CPU seconds the job thread spent in `fit` (Linux only; logged, not sent): with
    /// `train_seconds` it shows how much CPU the pod really got.
    pub cpu_seconds: Option<f64>,
}

/// What the job thread needs besides the request.
#[derive(Debug, Clone)]
pub struct TrainContext {
    /// This node's id.
    pub client_id: String,
    /// The architecture the node insists on.
    pub expected_spec: Option<ModelSpec>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The memory the process may use, bytes, when known.
    pub memory: Option<u64>,
}

/// Largest magnitude a weight of an input model may have. Trained CNN weights are of order
/// 1; anything near this is a broken or hostile model whose update would be useless (and
/// 1e30 overflows to infinity within a step).
pub const MAX_ABS_WEIGHT: f32 = 1e6;

/// Refuses a model with a NaN, an infinity or a weight beyond [`MAX_ABS_WEIGHT`]: training
/// it would only return a non-finite or absurd update.
///
/// # Errors
/// [`ApiError::Unprocessable`] naming the tensor and index.
pub fn check_plausible(params: &engine::ParamSet) -> Result<(), ApiError> {
    for (name, t) in params.iter() {
        if let Some((index, v)) = t
            .data()
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite() || v.abs() > MAX_ABS_WEIGHT)
        {
            return Err(ApiError::Unprocessable(format!(
                "the model's `{name}` holds {v} at index {index}: weights must be finite and within +-{MAX_ABS_WEIGHT}"
            )));
        }
    }
    Ok(())
}

/// Trains `model_bytes` on `shard` as `job` asks. Blocking: call on the job thread.
///
/// # Errors
/// [`ApiError::Unprocessable`] for weights that do not decode or do not fit the node;
/// [`ApiError::DeadlineExceeded`] or [`ApiError::Unavailable`] when cancelled.
pub fn train(
    job: &TrainJob,
    model_bytes: Vec<u8>,
    shard: &Dataset,
    ctx: &TrainContext,
    handle: &JobHandle,
) -> Result<TrainOutput, ApiError> {
    // The parser's words can quote the body (lengths, bytes) of whatever a model URL
    // answered: the caller gets the class, the log the detail.
    let loaded = weights::from_bytes(model_bytes).map_err(|e| {
        tracing::warn!(error = %e, "the model is not a weights file");
        ApiError::Unprocessable("the model is not a usable safetensors weights file".into())
    })?;
    if let Some(expected) = &ctx.expected_spec
        && loaded.meta.spec != *expected
    {
        return Err(ApiError::Unprocessable(format!(
            "the model's architecture {:?} is not the one this node trains ({:?})",
            loaded.meta.spec.name, expected.name
        )));
    }
    check_fits_shard(&loaded.meta.spec, shard)?;
    check_fits_memory(&loaded.meta.spec, job.batch_size, shard, ctx.memory)?;
    check_plausible(&loaded.params)?;
    let (version, normalisation) = (loaded.meta.version, loaded.meta.normalisation.clone());
    let mut model = Sequential::from_weights(loaded).map_err(|e| {
        ApiError::Unprocessable(format!("the weights do not fit their architecture: {e}"))
    })?;
    let opt_config: OptimizerConfig = serde_json::from_value(job.optimizer.clone())
        .map_err(|e| ApiError::Unprocessable(format!("invalid optimizer: {e}")))?;
    opt_config
        .validate()
        .map_err(|e| ApiError::Unprocessable(format!("invalid optimizer: {e}")))?;
    let mut optimizer = opt_config.build();
    let fit = FitConfig {
        epochs: job.epochs,
        batch_size: job.batch_size,
        seed: job.seed,
        shuffle: true,
        proximal_mu: job.proximal_mu,
    };
    stopped(handle)?; // the deadline may have passed during the download
    let metrics = &ctx.metrics;
    let mut on_progress = |p: &Progress| {
        handle.record_progress(p.epoch, p.epochs, p.batch, p.batches);
        metrics.add_batch();
        match handle.check() {
            ControlFlow::Continue(()) => ControlFlow::Continue(()),
            ControlFlow::Break(_) => ControlFlow::Break(()),
        }
    };
    let cpu_before = thread_cpu_seconds();
    let report = match model.fit(shard, &fit, optimizer.as_mut(), &mut on_progress) {
        Ok(report) => report,
        Err(engine::Error::Cancelled) => {
            stopped(handle)?;
            return Err(ApiError::Internal(
                "training stopped without a reason".to_owned(),
            ));
        }
        Err(e) => return Err(engine_error("training", e)),
    };
    let cpu_seconds = thread_cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    metrics.add_training_time(report.seconds);
    metrics.add_examples(report.examples as u64);
    let summary = Summary {
        client_id: ctx.client_id.clone(),
        round: job.round,
        nonce: job.nonce.clone(),
        num_examples: shard.len(),
        epochs: report
            .epochs
            .iter()
            .map(|e| EpochSummary {
                loss: e.loss,
                accuracy: e.accuracy,
            })
            .collect(),
        train_seconds: report.seconds,
    };
    let meta = WeightsMeta {
        spec: model.spec().clone(),
        version,
        round: job.round,
        normalisation,
        extra: metadata(&summary),
    };
    let weights = weights::to_bytes(model.params(), &meta)
        .map_err(|e| ApiError::Internal(format!("encoding the update: {e}")))?;
    Ok(TrainOutput {
        weights,
        summary,
        cpu_seconds,
    })
}

/// CPU time of the calling thread from `/proc/thread-self/schedstat` (nanoseconds on CPU,
/// first field), `None` where that file does not exist.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(nanos as f64 / 1e9)
}

/// The `fedge.*` metadata of a reply (the contract is `protocol::ReplyMeta`): aggregate
/// numbers only.
fn metadata(s: &Summary) -> BTreeMap<String, String> {
    protocol::ReplyMeta {
        client_id: s.client_id.clone(),
        round: s.round,
        nonce: s.nonce.clone(),
        num_examples: s.num_examples as u64,
        epoch_loss: s.epochs.iter().map(|e| e.loss).collect(),
        epoch_accuracy: s.epochs.iter().map(|e| e.accuracy).collect(),
        train_seconds: s.train_seconds,
    }
    .to_metadata()
}

/// The model must take this shard's images and have a class for every label.
fn check_fits_shard(spec: &ModelSpec, shard: &Dataset) -> Result<(), ApiError> {
    let want = [1, shard.rows(), shard.cols()];
    if spec.input_shape != want {
        return Err(ApiError::Unprocessable(format!(
            "the model's input shape {:?} does not match this node's images {want:?}",
            spec.input_shape
        )));
    }
    let labels = shard.label_counts().len();
    if spec.num_classes() < labels {
        return Err(ApiError::Unprocessable(format!(
            "the model has {} classes but this node's labels go up to {}",
            spec.num_classes(),
            labels.saturating_sub(1)
        )));
    }
    Ok(())
}

/// Refuses a job whose training buffers (estimated by [`memory::training_bytes`]) would
/// not fit beside the shard in the memory the process has.
fn check_fits_memory(
    spec: &ModelSpec,
    batch: usize,
    shard: &Dataset,
    memory: Option<u64>,
) -> Result<(), ApiError> {
    let Some(memory) = memory else {
        return Ok(());
    };
    let shard_bytes = (shard.len() * shard.rows() * shard.cols()) as u64;
    let need = memory::training_bytes(spec, batch)
        .unwrap_or(u64::MAX)
        .saturating_add(memory::TRAINING_OVERHEAD + shard_bytes);
    if need > memory {
        return Err(ApiError::Unprocessable(format!(
            "training this model with batches of {batch} needs about {} MiB; the process has {} MiB",
            need >> 20,
            memory >> 20
        )));
    }
    Ok(())
}

/// `Err` with the right status when the job was told to stop.
fn stopped(handle: &JobHandle) -> Result<(), ApiError> {
    let status = handle.status();
    let at = format!(
        "epoch {}/{}, batch {}/{}",
        status.epoch, status.epochs, status.batch, status.batches
    );
    match handle.check() {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(CancelReason::Deadline) => Err(ApiError::DeadlineExceeded(format!(
            "the request's deadline passed after {:.3} s ({at}); training stopped",
            status.elapsed_seconds
        ))),
        ControlFlow::Break(CancelReason::Shutdown) => Err(ApiError::Unavailable {
            message: format!("the node is shutting down; training was cancelled at {at}"),
            retry_after: 1,
        }),
        ControlFlow::Break(CancelReason::ClientDisconnected) => Err(ApiError::Unavailable {
            message: format!("the caller disconnected; training was cancelled at {at}"),
            retry_after: 1,
        }),
    }
}

fn engine_error(what: &str, e: engine::Error) -> ApiError {
    use engine::Error as E;
    match e {
        E::Shape { .. }
        | E::Spec(_)
        | E::Weights(_)
        | E::Data(_)
        | E::InvalidArgument(_)
        | E::Kernel(_) => ApiError::Unprocessable(format!("{what}: {e}")),
        other => ApiError::Internal(format!("{what}: {other}")),
    }
}
