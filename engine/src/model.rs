//! [`Sequential`]: a [`ModelSpec`], its parameters, and the buffers that run it.
//!
//! Inference ([`Sequential::predict`], [`Sequential::predict_with`]) runs the input in
//! micro-batches through two ping-pong activation buffers held by an [`InferenceScratch`],
//! so memory stays bounded whatever the number of images; u8 pixels become f32 one
//! micro-batch at a time, f32 input is read in place. Training lives in `train.rs`.

use crate::error::{Error, Result};
use crate::init::init_params;
use crate::layers::{Layer, Plan, Step};
use crate::packed::PackedWeights;
use crate::params::ParamSet;
use crate::spec::{LayerShape, LayerSpec, ModelSpec};
use conv_kernels::{Layout, Layouts};
use std::sync::{Arc, OnceLock};

/// Images per inference micro-batch when none is given. For the Table 1 CNN on one core the
/// bench's sweep (`infer_micro_batch`, CPU time) gave 8,582 / 9,304 / 9,601 / 9,216 / 8,407
/// images/s at 8 / 16 / 32 / 64 / 128: 32 is large enough for the GEMMs and keeps the
/// working set (about 6 MiB) in cache.
pub const DEFAULT_MICRO_BATCH: usize = 32;

/// Input images for inference: `N * spec.input_len()` values, NCHW.
#[derive(Debug, Clone, Copy)]
pub enum Pixels<'a> {
    /// Already normalised values (`pixel / 255`, in `[0, 1]`); must be finite.
    F32(&'a [f32]),
    /// Raw bytes 0..=255, normalised as `f32::from(p) / 255.0`, exactly as in training.
    U8(&'a [u8]),
}

impl Pixels<'_> {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Pixels::F32(x) => x.len(),
            Pixels::U8(x) => x.len(),
        }
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reusable inference buffers, sized for one micro-batch of one architecture.
///
/// Keep one per worker thread and pass it to [`Sequential::predict_with`]: after the first
/// call nothing is allocated. A scratch made for another spec still works (it grows).
#[derive(Debug, Clone, Default)]
pub struct InferenceScratch {
    micro_batch: usize,
    input: Vec<f32>,
    ping: Vec<f32>,
    pong: Vec<f32>,
    argmax: Vec<u32>,
    conv: Vec<f32>,
}

fn grow<T: Clone + Default>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        v.resize(len, T::default());
    }
}

impl InferenceScratch {
    /// Buffers for micro-batches of [`DEFAULT_MICRO_BATCH`] images of `spec`.
    pub fn new(spec: &ModelSpec) -> Self {
        Self::with_micro_batch(spec, DEFAULT_MICRO_BATCH)
    }

    /// Buffers for micro-batches of `micro_batch` images (at least 1) of `spec`. An invalid
    /// spec gives empty buffers (prediction reports the spec's error).
    pub fn with_micro_batch(spec: &ModelSpec, micro_batch: usize) -> Self {
        let mut s = Self {
            micro_batch: micro_batch.max(1),
            ..Self::default()
        };
        if let Ok(plan) = Plan::new(spec) {
            // Sizing only fails for absurd geometries that Plan::new already refused.
            let _ = s.ensure(&plan, s.micro_batch);
        }
        s
    }

    /// Images per micro-batch.
    pub fn micro_batch(&self) -> usize {
        self.micro_batch
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        4 * (self.input.len() + self.ping.len() + self.pong.len() + self.argmax.len())
            + 4 * self.conv.len()
    }

    fn ensure(&mut self, plan: &Plan, n: usize) -> Result<()> {
        let max_act = plan.buf_len[1..].iter().copied().max().unwrap_or(0);
        grow(&mut self.input, n * plan.input_len);
        grow(&mut self.ping, n * max_act);
        grow(&mut self.pong, n * max_act);
        for step in &plan.steps {
            match &step.layer {
                Layer::Conv2d(c) => {
                    let g = c.geometry(n)?;
                    grow(&mut self.conv, conv_kernels::conv2d_scratch_len(&g));
                }
                Layer::MaxPool2d(_) => grow(&mut self.argmax, n * plan.buf_len[step.dst]),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether inference runs `conv` and the `next` step as one fused conv + 2x2 max-pool
/// kernel: the pool reads exactly the conv's output, is 2x2 with stride 2, and the kernel
/// supports the geometry (the fused kernel runs the algorithm the packed conv would, so
/// fusing changes no value, only the memory traffic).
fn fuses_with_pool(
    conv: &crate::layers::Conv2d,
    g: &conv_kernels::Conv2dGeometry,
    next: &Step,
    conv_dst: usize,
) -> bool {
    matches!(&next.layer, Layer::MaxPool2d(p) if p.pool == [2, 2] && p.strides == [2, 2])
        && next.src == conv_dst
        && conv.relu
        && conv_kernels::conv2d_pool_fusable(g)
}

/// Whether the activation in buffer `buf` goes, through element-wise in-place steps only
/// (Dropout, the identity at inference; ReLU), to a conv whose packed path reads it
/// channels-last. Then the conv writing it may write it so, and neither side transposes.
fn next_conv_reads_channels_last<'a>(
    rest: impl Iterator<Item = &'a Step>,
    buf: usize,
    m: usize,
    packed: &PackedWeights,
) -> Result<bool> {
    for step in rest {
        match &step.layer {
            Layer::Dropout(_) | Layer::Relu(_) if step.src == buf && step.dst == buf => {}
            Layer::Conv2d(c) if step.src == buf => {
                let Some(w) = packed.conv(c.param) else {
                    return Ok(false);
                };
                return Ok(w.reads_channels_last(&c.geometry(m)?));
            }
            _ => return Ok(false),
        }
    }
    Ok(false)
}

/// Where the current activation lives during inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    External,
    Input,
    Ping,
    Pong,
}

/// A Sequential model: architecture, parameters, and reusable training buffers.
///
/// Parameters are in PyTorch layouts and named after the spec's layers (`conv1.weight`,
/// `conv1.bias`, ...), so a [`ParamSet`] moves unchanged between models, weights files and
/// federated averaging.
#[derive(Debug)]
pub struct Sequential {
    pub(crate) spec: ModelSpec,
    pub(crate) plan: Plan,
    pub(crate) params: ParamSet,
    pub(crate) train: Option<Box<crate::train::TrainState>>,
    /// The weights prepared for inference, derived from `params` (see `packed.rs`): set
    /// when parameters are installed, emptied by every `&mut` path to them.
    pub(crate) packed: OnceLock<Arc<PackedWeights>>,
}

impl Clone for Sequential {
    /// Clones architecture and parameters; training buffers are not copied.
    fn clone(&self) -> Self {
        Self {
            spec: self.spec.clone(),
            plan: self.plan.clone(),
            params: self.params.clone(),
            train: None,
            packed: self.packed.clone(),
        }
    }
}

/// The parameter slices `(weight, bias)` at `index`, `index + 1`.
pub(crate) fn param_pair(params: &ParamSet, index: usize) -> Result<(&[f32], &[f32])> {
    let mut it = params.iter().skip(index);
    match (it.next(), it.next()) {
        (Some((_, w)), Some((_, b))) => Ok((w.data(), b.data())),
        _ => Err(Error::InvalidArgument(format!(
            "parameter set has no tensors {index} and {}",
            index + 1
        ))),
    }
}

/// Builds a parameter set in the plan's order from `params` (any order), checking names
/// and shapes.
fn arrange(plan: &Plan, params: ParamSet) -> Result<ParamSet> {
    if let Some((extra, _)) = params
        .iter()
        .find(|(n, _)| !plan.params.iter().any(|(p, _)| p == n))
    {
        return Err(Error::Weights(format!(
            "unexpected tensor `{extra}` for this architecture"
        )));
    }
    for (name, shape) in &plan.params {
        match params.get(name) {
            None => {
                return Err(Error::Weights(format!(
                    "missing tensor `{name}` (expected shape {shape:?})"
                )));
            }
            Some(t) if t.shape() != shape.as_slice() => {
                return Err(Error::Shape {
                    what: format!("tensor `{name}`"),
                    expected: shape.clone(),
                    got: t.shape().to_vec(),
                });
            }
            Some(_) => {}
        }
    }
    let in_order = params
        .iter()
        .zip(&plan.params)
        .all(|((n, _), (p, _))| n == p);
    if in_order {
        return Ok(params);
    }
    let mut out = ParamSet::new();
    for (name, _) in &plan.params {
        if let Some(t) = params.get(name) {
            // Cheap for mapped tensors (an Arc); a one-off copy for owned ones.
            out.push(name.clone(), t.clone())?;
        }
    }
    Ok(out)
}

fn group_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl Sequential {
    /// A model of `spec` with Glorot-uniform weights and zero biases drawn from `seed`.
    ///
    /// # Errors
    /// [`Error::Spec`] when the spec is invalid.
    pub fn new(spec: ModelSpec, seed: u64) -> Result<Self> {
        let plan = Plan::new(&spec)?;
        let params = init_params(&plan.params, seed)?;
        Ok(Self::assemble(spec, plan, params))
    }

    /// A model of `spec` with the given parameters (any order; names and shapes checked).
    ///
    /// # Errors
    /// [`Error::Spec`] for an invalid spec; [`Error::Weights`] or [`Error::Shape`] naming
    /// the first missing, unexpected or mis-shaped tensor.
    pub fn from_params(spec: ModelSpec, params: ParamSet) -> Result<Self> {
        let plan = Plan::new(&spec)?;
        let params = arrange(&plan, params)?;
        Ok(Self::assemble(spec, plan, params))
    }

    /// A model from a loaded weights file: its recorded spec and its tensors (which stay
    /// memory-mapped until first written).
    ///
    /// # Errors
    /// As [`Sequential::from_params`].
    pub fn from_weights(w: crate::weights::LoadedWeights) -> Result<Self> {
        Self::from_params(w.meta.spec, w.params)
    }

    /// The architecture.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The parameters, in layer order.
    pub fn params(&self) -> &ParamSet {
        &self.params
    }

    /// The parameters, mutable (values only: a changed layout is refused at the next use).
    ///
    /// The weights packed for inference are dropped (they may no longer match) and rebuilt
    /// at the next inference.
    pub fn params_mut(&mut self) -> &mut ParamSet {
        self.packed = OnceLock::new();
        &mut self.params
    }

    /// Replaces the parameters (any order; names and shapes checked).
    ///
    /// # Errors
    /// As [`Sequential::from_params`]; the model is unchanged on error.
    ///
    /// The weights are packed for inference right away (a hot swap pays it here, not on
    /// the next request).
    pub fn set_params(&mut self, params: ParamSet) -> Result<()> {
        self.params = arrange(&self.plan, params)?;
        self.packed = OnceLock::new();
        self.prepack();
        Ok(())
    }

    /// A model of validated parts, its weights packed for inference.
    fn assemble(spec: ModelSpec, plan: Plan, params: ParamSet) -> Self {
        let model = Self {
            spec,
            plan,
            params,
            train: None,
            packed: OnceLock::new(),
        };
        model.prepack();
        model
    }

    /// Packs the weights now if they are not; a failure (parameters that do not fit the
    /// plan) is left for the next inference to report.
    fn prepack(&self) {
        let _ = self.packed_weights();
    }

    /// The weights packed for inference, built from the current parameters if needed.
    pub(crate) fn packed_weights(&self) -> Result<&PackedWeights> {
        if let Some(p) = self.packed.get() {
            return Ok(p);
        }
        self.check_params()?;
        let built = Arc::new(PackedWeights::build(&self.plan, &self.params)?);
        // Another thread may have won the race with the same parameters: either is right.
        let _ = self.packed.set(built);
        match self.packed.get() {
            Some(p) => Ok(p),
            None => Err(Error::InvalidArgument(
                "internal: packed weights not set".into(),
            )),
        }
    }

    /// f32 elements of the weights currently packed for inference (0 when not packed).
    pub fn packed_len(&self) -> usize {
        self.packed.get().map_or(0, |p| p.len())
    }

    /// Takes the parameters out, leaving an empty set (call [`Sequential::set_params`] before
    /// using the model again).
    pub fn take_params(&mut self) -> ParamSet {
        self.packed = OnceLock::new();
        std::mem::take(&mut self.params)
    }

    /// Number of trainable scalars.
    pub fn num_params(&self) -> usize {
        self.params.num_params()
    }

    /// Number of classes of the output.
    pub fn num_classes(&self) -> usize {
        self.plan.classes
    }

    /// Checks the current parameters still have the plan's layout (cheap: names and shapes).
    pub(crate) fn check_params(&self) -> Result<()> {
        if self.params.len() != self.plan.params.len() {
            return Err(Error::Weights(format!(
                "the model holds {} tensors, its architecture needs {}",
                self.params.len(),
                self.plan.params.len()
            )));
        }
        for ((name, t), (pname, shape)) in self.params.iter().zip(&self.plan.params) {
            if name != pname || t.shape() != shape.as_slice() {
                return Err(Error::Shape {
                    what: format!("tensor `{name}` (expected `{pname}`)"),
                    expected: shape.clone(),
                    got: t.shape().to_vec(),
                });
            }
        }
        Ok(())
    }

    /// A Keras-like table of layers, output shapes (batch first, channels first) and
    /// parameter counts.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let shapes = self.spec.layer_shapes().unwrap_or_default();
        let mut counts: std::collections::HashMap<&str, usize> = Default::default();
        let mut rows = Vec::new();
        let mut input = LayerShape::Chw(self.spec.input_shape);
        for (layer, out) in self.spec.layers.iter().zip(&shapes) {
            let name = match layer.name() {
                Some(n) => n.to_string(),
                None => {
                    let base = match layer {
                        LayerSpec::MaxPool2D { .. } => "max_pooling2d",
                        LayerSpec::Dropout { .. } => "dropout",
                        LayerSpec::Flatten => "flatten",
                        LayerSpec::ReLU => "re_lu",
                        _ => "softmax",
                    };
                    let k = counts.entry(base).or_insert(0);
                    let n = if *k == 0 {
                        base.to_string()
                    } else {
                        format!("{base}_{k}")
                    };
                    *k += 1;
                    n
                }
            };
            let params: usize = match (layer, input) {
                (
                    LayerSpec::Conv2D {
                        filters,
                        kernel_size: [kh, kw],
                        ..
                    },
                    LayerShape::Chw([c, _, _]),
                ) => filters * c * kh * kw + filters,
                (LayerSpec::Dense { units, .. }, s) => units * s.len() + units,
                _ => 0,
            };
            rows.push((
                format!("{name} ({})", layer.type_name()),
                out.display_batched(),
                params,
            ));
            input = *out;
        }
        let total = self.spec.num_params();
        let (w1, w2, w3) = (30, 25, 12);
        let width = w1 + w2 + w3;
        let mut s = String::new();
        let _ = writeln!(s, "Model: \"{}\"", self.spec.name);
        let _ = writeln!(s, "{}", "_".repeat(width));
        let _ = writeln!(
            s,
            "{:<w1$}{:<w2$}{:>w3$}",
            " Layer (type)", "Output Shape", "Param #"
        );
        let _ = writeln!(s, "{}", "=".repeat(width));
        for (i, (name, shape, params)) in rows.iter().enumerate() {
            let _ = writeln!(
                s,
                "{:<w1$}{:<w2$}{:>w3$}",
                format!(" {name}"),
                shape,
                group_thousands(*params)
            );
            if i + 1 < rows.len() {
                let _ = writeln!(s);
            }
        }
        let _ = writeln!(s, "{}", "=".repeat(width));
        let _ = writeln!(s, "Total params: {}", group_thousands(total));
        let _ = writeln!(s, "Trainable params: {}", group_thousands(total));
        let _ = writeln!(s, "Non-trainable params: 0");
        let _ = write!(s, "{}", "_".repeat(width));
        s
    }

    /// Class probabilities `[N, classes]` into `out` for the `N` images of `input`,
    /// micro-batched through a fresh [`InferenceScratch`].
    ///
    /// # Errors
    /// [`Error::Shape`] when `input` is not a whole number of images or `out` is not
    /// `N * classes`; [`Error::InvalidArgument`] for a non-finite f32 pixel.
    pub fn predict(&self, input: Pixels<'_>, out: &mut [f32]) -> Result<()> {
        let mut scratch = InferenceScratch::new(&self.spec);
        self.predict_with(input, out, &mut scratch)
    }

    /// As [`Sequential::predict`], reusing `scratch` (no allocation once it is sized).
    ///
    /// # Errors
    /// As [`Sequential::predict`].
    pub fn predict_with(
        &self,
        input: Pixels<'_>,
        out: &mut [f32],
        scratch: &mut InferenceScratch,
    ) -> Result<()> {
        self.check_params()?;
        let in_len = self.plan.input_len;
        let classes = self.plan.classes;
        if !input.len().is_multiple_of(in_len) {
            return Err(Error::Shape {
                what: format!(
                    "predict input ({} values, not a whole number of {in_len}-value images)",
                    input.len()
                ),
                expected: vec![input.len() / in_len * in_len],
                got: vec![input.len()],
            });
        }
        let n = input.len() / in_len;
        if out.len() != n * classes {
            return Err(Error::Shape {
                what: "predict output".into(),
                expected: vec![n, classes],
                got: vec![out.len()],
            });
        }
        if n == 0 {
            return Ok(());
        }
        let micro = scratch.micro_batch.max(1);
        scratch.micro_batch = micro;
        scratch.ensure(&self.plan, micro.min(n))?;
        for (start, out_chunk) in (0..n).step_by(micro).zip(out.chunks_mut(micro * classes)) {
            let m = micro.min(n - start);
            let range = start * in_len..(start + m) * in_len;
            match input {
                Pixels::F32(x) => {
                    let chunk = &x[range];
                    if let Some(i) = chunk.iter().position(|v| !v.is_finite()) {
                        let at = start * in_len + i;
                        return Err(Error::InvalidArgument(format!(
                            "pixel {} of image {} is {}",
                            at % in_len,
                            at / in_len,
                            chunk[i]
                        )));
                    }
                    self.forward_eval(Some(chunk), m, scratch, out_chunk)?;
                }
                Pixels::U8(x) => {
                    for (d, &p) in scratch.input.iter_mut().zip(&x[range]) {
                        *d = f32::from(p) / 255.0;
                    }
                    self.forward_eval(None, m, scratch, out_chunk)?;
                }
            }
        }
        Ok(())
    }

    /// Runs `m` images (in `ext`, or in `s.input` when `ext` is `None`) through every step
    /// in inference mode and writes their probabilities into `out`.
    fn forward_eval(
        &self,
        ext: Option<&[f32]>,
        m: usize,
        s: &mut InferenceScratch,
        out: &mut [f32],
    ) -> Result<()> {
        let ext = ext.unwrap_or(&[]);
        let mut loc = if ext.is_empty() {
            Loc::Input
        } else {
            Loc::External
        };
        let mut len = m * self.plan.input_len;
        // The current activation's layout: channels-last only between two convs that both
        // work that way (see `next_conv_reads_channels_last`).
        let mut layout = Layout::Nchw;
        let InferenceScratch {
            input,
            ping,
            pong,
            argmax,
            conv,
            ..
        } = s;
        let packed = self.packed_weights()?;
        let missing = || Error::InvalidArgument("internal: layer weights not packed".into());
        let mut steps = self.plan.steps.iter().peekable();
        while let Some(step) = steps.next() {
            let mut out_len = m * self.plan.buf_len[step.dst];
            if step.src == step.dst {
                // In place: Dropout is the identity at inference, ReLU works on our copy.
                if let Layer::Relu(r) = &step.layer {
                    let buf = match loc {
                        Loc::External => {
                            input[..len].copy_from_slice(&ext[..len]);
                            loc = Loc::Input;
                            &mut input[..len]
                        }
                        Loc::Input => &mut input[..len],
                        Loc::Ping => &mut ping[..len],
                        Loc::Pong => &mut pong[..len],
                    };
                    r.forward(buf);
                }
                continue;
            }
            let (src, dst, next): (&[f32], &mut [f32], Loc) = match loc {
                Loc::External => (ext, &mut ping[..], Loc::Ping),
                Loc::Input => (&input[..], &mut ping[..], Loc::Ping),
                Loc::Ping => (&ping[..], &mut pong[..], Loc::Pong),
                Loc::Pong => (&pong[..], &mut ping[..], Loc::Ping),
            };
            let src = &src[..len];
            if layout != Layout::Nchw && !matches!(step.layer, Layer::Conv2d(_)) {
                return Err(Error::InvalidArgument(
                    "internal: a channels-last activation reached a layer that reads NCHW".into(),
                ));
            }
            match &step.layer {
                Layer::Conv2d(c) => {
                    let (_, b) = param_pair(&self.params, c.param)?;
                    let w = packed.conv(c.param).ok_or_else(missing)?;
                    let g = c.geometry(m)?;
                    // Conv + bias + ReLU + 2x2 max-pool in one kernel: the full-size
                    // activation is never written (inference needs no argmax).
                    let pool = steps.next_if(|next| fuses_with_pool(c, &g, next, step.dst));
                    let written = pool.map_or(step.dst, |p| p.dst);
                    out_len = m * self.plan.buf_len[written];
                    let output = if w.writes_channels_last()
                        && next_conv_reads_channels_last(steps.clone(), written, m, packed)?
                    {
                        Layout::Nhwc
                    } else {
                        Layout::Nchw
                    };
                    let io = Layouts {
                        input: layout,
                        output,
                    };
                    let out = &mut dst[..out_len];
                    c.forward_packed(&g, src, w, b, pool.is_some(), io, out, conv)?;
                    layout = output;
                }
                Layer::Dense(d) => {
                    let (_, b) = param_pair(&self.params, d.param)?;
                    let w = packed.dense(d.param).ok_or_else(missing)?;
                    d.forward_packed(&d.geometry(m)?, src, w, b, &mut dst[..out_len])?;
                }
                Layer::MaxPool2d(p) => p.forward(
                    &p.geometry(m)?,
                    src,
                    &mut dst[..out_len],
                    &mut argmax[..out_len],
                )?,
                Layer::Dropout(_) | Layer::Flatten(_) | Layer::Relu(_) => {
                    return Err(Error::InvalidArgument(
                        "internal: in-place layer planned out of place".into(),
                    ));
                }
            }
            loc = next;
            len = out_len;
        }
        let logits = match loc {
            Loc::External => ext,
            Loc::Input => &input[..],
            Loc::Ping => &ping[..],
            Loc::Pong => &pong[..],
        };
        conv_kernels::softmax_forward(&logits[..len], self.plan.classes, out)?;
        Ok(())
    }
}
