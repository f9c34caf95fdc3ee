//! Training and evaluation: [`Sequential::fit`] and [`Sequential::evaluate`].
//!
//! A training step converts one batch of u8 images to f32, runs every layer forward in
//! training mode (dropout masks from a seeded [`Rng`]), the fused softmax cross-entropy,
//! every layer backward into a gradient [`ParamSet`], the optional FedProx term, and the
//! optimizer. All buffers live in a `TrainState` kept by the model and sized for the batch:
//! after the first step nothing is allocated. Every reduction runs in a fixed order and the
//! kernels split work only over disjoint outputs, so the same seed and data give
//! bit-identical weights at any thread count.

use std::ops::ControlFlow;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::layers::{Layer, Plan};
use crate::loss::{crossentropy_from_probs, softmax_cross_entropy};
use crate::metrics::Accumulator;
use crate::model::{InferenceScratch, Pixels, Sequential, param_pair};
use crate::optim::Optimizer;
use crate::params::ParamSet;
use crate::rng::{Purpose, Rng};
use crate::tensor::Tensor;

/// Settings of [`Sequential::fit`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FitConfig {
    /// Passes over the data (0 trains nothing).
    pub epochs: usize,
    /// Examples per step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Seeds the per-epoch shuffles and the dropout masks.
    pub seed: u64,
    /// Shuffle the examples at every epoch.
    pub shuffle: bool,
    /// FedProx: adds `mu * (w - w_start)` to every gradient, `w_start` being the weights at
    /// the start of `fit`. `None` (or 0) is plain training.
    pub proximal_mu: Option<f32>,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 64,
            seed: 0,
            shuffle: true,
            proximal_mu: None,
        }
    }
}

/// Reported to the progress callback after every batch.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Progress {
    /// Current epoch, 1-based.
    pub epoch: usize,
    /// Total epochs.
    pub epochs: usize,
    /// Batches done in this epoch, 1-based.
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// Mean training loss over this epoch so far.
    pub loss: f32,
    /// Training accuracy over this epoch so far (with dropout active, as Keras reports it).
    pub accuracy: f32,
}

/// Training loss and accuracy of one epoch.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    /// Mean training loss.
    pub loss: f32,
    /// Training accuracy.
    pub accuracy: f32,
}

/// What [`Sequential::fit`] did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FitReport {
    /// One entry per epoch.
    pub epochs: Vec<EpochMetrics>,
    /// Examples processed (data size × epochs).
    pub examples: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Result of [`Sequential::evaluate`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EvalReport {
    /// Mean cross-entropy (probabilities clipped to `[1e-7, 1-1e-7]`, as Keras).
    pub loss: f32,
    /// Fraction of examples whose most probable class is the label.
    pub accuracy: f32,
    /// Accuracy of each class (0 for a class without examples).
    pub per_class_accuracy: Vec<f32>,
    /// Examples evaluated.
    pub examples: usize,
}

/// Largest training working set [`Sequential::fit`] allocates (activations, gradients, masks
/// for one batch): a batch size that would need more is refused rather than risking an
/// out-of-memory abort.
pub const MAX_TRAIN_BUFFER_BYTES: usize = 2 << 30;

/// Bytes of training buffers per example (activations + gradients + pool indices + masks).
fn train_bytes_per_example(plan: &Plan) -> usize {
    let acts: usize = plan.buf_len.iter().sum();
    let aux: usize = plan
        .steps
        .iter()
        .map(|s| match s.layer {
            Layer::MaxPool2d(_) | Layer::Dropout(_) => plan.buf_len[s.dst],
            _ => 0,
        })
        .sum();
    4 * (2 * acts + aux + plan.classes)
}

/// Training buffers for batches of up to `capacity` examples.
#[derive(Debug)]
pub(crate) struct TrainState {
    capacity: usize,
    acts: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    argmax: Vec<Vec<u32>>,
    masks: Vec<Vec<f32>>,
    conv: Vec<f32>,
    labels_u8: Vec<u8>,
    labels: Vec<u32>,
    probs: Vec<f32>,
    grad_params: ParamSet,
}

impl TrainState {
    fn new(plan: &Plan, capacity: usize) -> Result<Self> {
        let acts: Vec<Vec<f32>> = plan
            .buf_len
            .iter()
            .map(|&l| vec![0.0; l * capacity])
            .collect();
        let grads = plan
            .buf_len
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                if i == 0 {
                    Vec::new()
                } else {
                    vec![0.0; l * capacity]
                }
            })
            .collect();
        let mut argmax = Vec::new();
        let mut masks = Vec::new();
        let mut conv = 0usize;
        for step in &plan.steps {
            let len = plan.buf_len[step.dst] * capacity;
            argmax.push(match step.layer {
                Layer::MaxPool2d(_) => vec![0u32; len],
                _ => Vec::new(),
            });
            masks.push(match &step.layer {
                Layer::Dropout(d) if d.active() => vec![0.0f32; len],
                _ => Vec::new(),
            });
            if let Layer::Conv2d(c) = &step.layer {
                conv = conv.max(conv_kernels::conv2d_scratch_len(&c.geometry(capacity)?));
            }
        }
        let mut grad_params = ParamSet::new();
        for (name, shape) in &plan.params {
            grad_params.push(name.clone(), Tensor::zeros(shape)?)?;
        }
        Ok(Self {
            capacity,
            acts,
            grads,
            argmax,
            masks,
            conv: vec![0.0; conv],
            labels_u8: vec![0; capacity],
            labels: vec![0; capacity],
            probs: vec![0.0; capacity * plan.classes],
            grad_params,
        })
    }
}

/// `(&v[lo], &mut v[hi])` for `lo < hi`.
fn split_pair<T>(v: &mut [Vec<T>], lo: usize, hi: usize) -> (&mut Vec<T>, &mut Vec<T>) {
    let (a, b) = v.split_at_mut(hi);
    (&mut a[lo], &mut b[0])
}

fn grad_pair(grads: &mut ParamSet, index: usize) -> Result<(&mut [f32], &mut [f32])> {
    let mut it = grads.iter_mut().skip(index);
    match (it.next(), it.next()) {
        (Some((_, w)), Some((_, b))) => Ok((w.data_mut(), b.data_mut())),
        _ => Err(Error::InvalidArgument(format!(
            "gradient set has no tensors {index} and {}",
            index + 1
        ))),
    }
}

/// One forward + backward pass over the batch `idx`; gradients land in `st.grad_params`.
/// Returns the batch's mean loss.
fn forward_backward(
    plan: &Plan,
    params: &ParamSet,
    st: &mut TrainState,
    data: &Dataset,
    idx: &[usize],
    rng: &mut Rng,
) -> Result<f32> {
    let n = idx.len();
    data.write_batch_f32(
        idx,
        &mut st.acts[0][..n * plan.input_len],
        &mut st.labels_u8[..n],
    )?;
    for (l, &b) in st.labels[..n].iter_mut().zip(&st.labels_u8[..n]) {
        *l = u32::from(b);
    }
    for (i, step) in plan.steps.iter().enumerate() {
        let in_len = n * plan.buf_len[step.src];
        let out_len = n * plan.buf_len[step.dst];
        match &step.layer {
            Layer::Dropout(d) => {
                if d.active() {
                    let x = &mut st.acts[step.dst][..out_len];
                    d.forward_train(x, &mut st.masks[i][..out_len], rng)?;
                }
            }
            Layer::Relu(r) => r.forward(&mut st.acts[step.dst][..out_len]),
            Layer::Flatten(_) => {}
            layer => {
                let (src, dst) = split_pair(&mut st.acts, step.src, step.dst);
                let (src, dst) = (&src[..in_len], &mut dst[..out_len]);
                match layer {
                    Layer::Conv2d(c) => {
                        let (w, b) = param_pair(params, c.param)?;
                        c.forward(&c.geometry(n)?, src, w, b, dst, &mut st.conv)?;
                    }
                    Layer::Dense(d) => {
                        let (w, b) = param_pair(params, d.param)?;
                        d.forward(&d.geometry(n)?, src, w, b, dst)?;
                    }
                    Layer::MaxPool2d(p) => {
                        p.forward(&p.geometry(n)?, src, dst, &mut st.argmax[i][..out_len])?;
                    }
                    _ => {}
                }
            }
        }
    }
    let classes = plan.classes;
    let nc = n * classes;
    let loss = {
        let (logits, grad) = (
            &st.acts[plan.logits][..nc],
            &mut st.grads[plan.logits][..nc],
        );
        softmax_cross_entropy(logits, &st.labels[..n], classes, &mut st.probs[..nc], grad)?
    };
    for (i, step) in plan.steps.iter().enumerate().rev() {
        if step.dst == 0 {
            continue; // in place on the input: nothing upstream needs a gradient
        }
        let in_len = n * plan.buf_len[step.src];
        let out_len = n * plan.buf_len[step.dst];
        match &step.layer {
            Layer::Dropout(d) => {
                if d.active() {
                    d.backward(&mut st.grads[step.dst][..out_len], &st.masks[i][..out_len])?;
                }
            }
            Layer::Relu(r) => r.backward(
                &st.acts[step.dst][..out_len],
                &mut st.grads[step.dst][..out_len],
            )?,
            Layer::Flatten(_) => {}
            layer => {
                let want_input = step.src != 0;
                let (gsrc, gdst) = split_pair(&mut st.grads, step.src, step.dst);
                let grad_in = if want_input {
                    Some(&mut gsrc[..in_len])
                } else {
                    None
                };
                let gdst = &mut gdst[..out_len];
                let input = &st.acts[step.src][..in_len];
                let output = &st.acts[step.dst][..out_len];
                match layer {
                    Layer::Conv2d(c) => {
                        let (w, _) = param_pair(params, c.param)?;
                        let (gw, gb) = grad_pair(&mut st.grad_params, c.param)?;
                        let g = c.geometry(n)?;
                        c.backward(&g, input, output, gdst, w, gw, gb, grad_in, &mut st.conv)?;
                    }
                    Layer::Dense(d) => {
                        let (w, _) = param_pair(params, d.param)?;
                        let (gw, gb) = grad_pair(&mut st.grad_params, d.param)?;
                        let g = d.geometry(n)?;
                        d.backward(&g, input, output, gdst, w, gw, gb, grad_in)?;
                    }
                    Layer::MaxPool2d(p) => {
                        if let Some(gi) = grad_in {
                            let g = p.geometry(n)?;
                            p.backward(&g, output, gdst, &st.argmax[i][..out_len], gi)?;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(loss)
}

/// Adds `mu * (w - w0)` to every gradient.
fn add_proximal(grads: &mut ParamSet, params: &ParamSet, start: &ParamSet, mu: f32) {
    for (((_, g), (_, w)), (_, w0)) in grads.iter_mut().zip(params.iter()).zip(start.iter()) {
        for ((g, &w), &w0) in g.data_mut().iter_mut().zip(w.data()).zip(w0.data()) {
            *g += mu * (w - w0);
        }
    }
}

fn check_data(model: &Sequential, data: &Dataset) -> Result<()> {
    if data.image_len() != model.plan.input_len {
        return Err(Error::Shape {
            what: format!("images of the data set (model `{}`)", model.spec.name),
            expected: model.spec.input_shape.to_vec(),
            got: vec![1, data.rows(), data.cols()],
        });
    }
    let classes = model.plan.classes;
    if let Some(i) = data
        .labels()
        .iter()
        .position(|&l| usize::from(l) >= classes)
    {
        return Err(Error::Data(format!(
            "label {} of example {i} is not below the model's {classes} classes",
            data.labels()[i]
        )));
    }
    Ok(())
}

impl Sequential {
    /// Trains on `data` for `cfg.epochs` epochs with `opt`, calling `on_progress` after
    /// every batch. Training buffers are kept for the next call.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a zero batch size, a batch whose buffers would exceed
    /// [`MAX_TRAIN_BUFFER_BYTES`], an empty data set or a bad `proximal_mu`; [`Error::Shape`] / [`Error::Data`] when images or labels do not fit
    /// the model; [`Error::Cancelled`] as soon as `on_progress` returns `Break` (the
    /// parameters then hold the updates made so far).
    pub fn fit(
        &mut self,
        data: &Dataset,
        cfg: &FitConfig,
        opt: &mut dyn Optimizer,
        on_progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<FitReport> {
        let started = Instant::now();
        self.check_params()?;
        if cfg.batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be positive".into()));
        }
        let mu = match cfg.proximal_mu {
            Some(mu) if !(mu.is_finite() && mu >= 0.0) => {
                return Err(Error::InvalidArgument(format!(
                    "proximal_mu = {mu} must be finite and >= 0"
                )));
            }
            Some(mu) if mu > 0.0 => Some(mu),
            _ => None,
        };
        if data.is_empty() {
            return Err(Error::InvalidArgument(
                "cannot fit on an empty data set".into(),
            ));
        }
        check_data(self, data)?;
        let batch = cfg.batch_size.min(data.len());
        let need = batch.saturating_mul(train_bytes_per_example(&self.plan));
        if need > MAX_TRAIN_BUFFER_BYTES {
            return Err(Error::InvalidArgument(format!(
                "batch_size {batch} needs {need} bytes of training buffers, more than the \
                 {MAX_TRAIN_BUFFER_BYTES}-byte limit"
            )));
        }
        if self.train.as_ref().is_none_or(|t| t.capacity < batch) {
            self.train = None; // free the old buffers before allocating the new ones
            self.train = Some(Box::new(TrainState::new(&self.plan, batch)?));
        }
        let start = mu.map(|_| self.params.clone());
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut dropout_rng = Rng::derive(cfg.seed, Purpose::DROPOUT, 0);
        let batches = data.len().div_ceil(batch);
        let mut report = FitReport {
            epochs: Vec::with_capacity(cfg.epochs),
            examples: 0,
            seconds: 0.0,
        };
        // The parameters change with every step: the inference packing is dropped here and
        // rebuilt at the next inference (training packs per step inside its kernels).
        self.packed = std::sync::OnceLock::new();
        let Self {
            plan,
            params,
            train,
            ..
        } = self;
        let Some(st) = train.as_deref_mut() else {
            return Err(Error::InvalidArgument("internal: no training state".into()));
        };
        for epoch in 0..cfg.epochs {
            if cfg.shuffle {
                for (i, o) in order.iter_mut().enumerate() {
                    *o = i;
                }
                Rng::derive(cfg.seed, Purpose::SHUFFLE, epoch as u64).shuffle(&mut order);
            }
            let mut acc = Accumulator::new(plan.classes);
            for (b, idx) in order.chunks(batch).enumerate() {
                let loss = forward_backward(plan, params, st, data, idx, &mut dropout_rng)?;
                let n = idx.len();
                acc.add_batch(loss, &st.probs[..n * plan.classes], &st.labels[..n]);
                if let (Some(mu), Some(start)) = (mu, start.as_ref()) {
                    add_proximal(&mut st.grad_params, params, start, mu);
                }
                opt.step(params, &st.grad_params)?;
                report.examples += n;
                let progress = Progress {
                    epoch: epoch + 1,
                    epochs: cfg.epochs,
                    batch: b + 1,
                    batches,
                    loss: acc.loss(),
                    accuracy: acc.accuracy(),
                };
                if on_progress(&progress).is_break() {
                    return Err(Error::Cancelled);
                }
            }
            report.epochs.push(EpochMetrics {
                loss: acc.loss(),
                accuracy: acc.accuracy(),
            });
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Loss, accuracy and per-class accuracy on `data`, in inference mode (no dropout),
    /// `batch_size` images at a time (micro-batched further inside).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a zero batch size; [`Error::Shape`] / [`Error::Data`]
    /// when images or labels do not fit the model.
    pub fn evaluate(&self, data: &Dataset, batch_size: usize) -> Result<EvalReport> {
        if batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be positive".into()));
        }
        check_data(self, data)?;
        let classes = self.plan.classes;
        let in_len = self.plan.input_len;
        let batch = batch_size.min(data.len()).max(1);
        let mut scratch = InferenceScratch::new(&self.spec);
        let mut probs = vec![0.0f32; batch * classes];
        let mut labels = vec![0u32; batch];
        let mut acc = Accumulator::new(classes);
        for (images, lab) in data
            .images()
            .chunks(batch * in_len)
            .zip(data.labels().chunks(batch))
        {
            let n = lab.len();
            let p = &mut probs[..n * classes];
            self.predict_with(Pixels::U8(images), p, &mut scratch)?;
            let mut loss = 0.0f64;
            for ((row, &l), out) in p.chunks_exact(classes).zip(lab).zip(labels.iter_mut()) {
                loss += f64::from(crossentropy_from_probs(row, usize::from(l)));
                *out = u32::from(l);
            }
            acc.add_batch((loss / n as f64) as f32, p, &labels[..n]);
        }
        Ok(EvalReport {
            loss: acc.loss(),
            accuracy: acc.accuracy(),
            per_class_accuracy: acc.per_class_accuracy(),
            examples: acc.count(),
        })
    }
}
