//! [`Layer`] and [`Plan`]: a validated spec turned into steps over numbered buffers.
//!
//! Buffer 0 is the input batch. Conv2D, MaxPool2D and Dense write a new buffer; Dropout,
//! Flatten and ReLU work in place on the current one (Flatten does nothing at all: NCHW is
//! already channel-major). A ReLU right after a linear Conv2D or Dense is folded into that
//! layer's fused epilogue. The final Softmax is not a step: training fuses it into the
//! cross-entropy, inference applies it straight into the caller's output.

use conv_kernels::Padding;

use super::{Conv2d, Dense, Dropout, Flatten, MaxPool2d, Relu};
use crate::error::{Error, Result};
use crate::spec::{ActivationSpec, LayerShape, LayerSpec, ModelSpec, PaddingSpec};

/// One executable layer.
#[derive(Debug, Clone)]
pub(crate) enum Layer {
    /// Convolution (+ bias, + optional ReLU).
    Conv2d(Conv2d),
    /// Max pooling.
    MaxPool2d(MaxPool2d),
    /// Dropout (training only), in place.
    Dropout(Dropout),
    /// Reshape; no data moves.
    #[allow(dead_code)]
    Flatten(Flatten),
    /// Fully connected (+ bias, + optional ReLU).
    Dense(Dense),
    /// Standalone ReLU, in place.
    Relu(Relu),
}

/// A layer with the buffers it reads (`src`) and writes (`dst`; equal when in place).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// The layer.
    pub layer: Layer,
    /// Buffer read.
    pub src: usize,
    /// Buffer written.
    pub dst: usize,
}

/// The executable form of a [`ModelSpec`].
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Steps in forward order.
    pub steps: Vec<Step>,
    /// Elements per example of each buffer (buffer 0: the input).
    pub buf_len: Vec<usize>,
    /// The buffer holding the logits after the last step.
    pub logits: usize,
    /// Number of classes.
    pub classes: usize,
    /// Elements of one input example.
    pub input_len: usize,
    /// Expected parameter names and shapes, in order.
    pub params: Vec<(String, Vec<usize>)>,
}

fn padding(p: PaddingSpec) -> Padding {
    match p {
        PaddingSpec::Valid => Padding::Valid,
        PaddingSpec::Same => Padding::Same,
    }
}

impl Plan {
    /// Validates `spec` and builds its plan.
    pub fn new(spec: &ModelSpec) -> Result<Self> {
        let shapes = spec.layer_shapes()?;
        let params = spec.param_shapes()?;
        let mut steps: Vec<Step> = Vec::new();
        let mut buf_len = vec![spec.input_len()];
        let mut cur = 0usize;
        let mut input = LayerShape::Chw(spec.input_shape);
        let mut param = 0usize;
        for (layer, &out) in spec.layers.iter().zip(&shapes) {
            let new_buf = |buf_len: &mut Vec<usize>| {
                buf_len.push(out.len());
                buf_len.len() - 1
            };
            let (l, dst) = match (layer, input) {
                (
                    LayerSpec::Conv2D {
                        filters,
                        kernel_size,
                        padding: p,
                        activation,
                        ..
                    },
                    LayerShape::Chw(in_shape),
                ) => {
                    let l = Layer::Conv2d(Conv2d {
                        in_shape,
                        filters: *filters,
                        kernel: *kernel_size,
                        padding: padding(*p),
                        relu: *activation == ActivationSpec::Relu,
                        relu_masked_by_pool: false,
                        param,
                    });
                    param += 2;
                    (l, new_buf(&mut buf_len))
                }
                (LayerSpec::MaxPool2D { pool_size, strides }, LayerShape::Chw(in_shape)) => {
                    let l = Layer::MaxPool2d(MaxPool2d {
                        in_shape,
                        pool: *pool_size,
                        strides: strides.unwrap_or(*pool_size),
                        relu_mask: false,
                    });
                    (l, new_buf(&mut buf_len))
                }
                (
                    LayerSpec::Dense {
                        units, activation, ..
                    },
                    s,
                ) => {
                    let l = Layer::Dense(Dense {
                        in_features: s.len(),
                        units: *units,
                        relu: *activation == ActivationSpec::Relu,
                        param,
                    });
                    param += 2;
                    (l, new_buf(&mut buf_len))
                }
                (LayerSpec::Dropout { rate }, _) => (Layer::Dropout(Dropout { rate: *rate }), cur),
                (LayerSpec::Flatten, _) => {
                    input = out;
                    continue;
                }
                (LayerSpec::ReLU, _) => {
                    if let Some(Step {
                        layer: Layer::Conv2d(Conv2d { relu, .. }) | Layer::Dense(Dense { relu, .. }),
                        ..
                    }) = steps.last_mut()
                    {
                        // Folded into the previous layer's epilogue (max(max(x,0),0) = max(x,0)).
                        *relu = true;
                        input = out;
                        continue;
                    }
                    (Layer::Relu(Relu), cur)
                }
                (LayerSpec::Softmax, _) => break,
                (other, shape) => {
                    return Err(Error::Spec(format!(
                        "{} cannot take input {shape:?}",
                        other.type_name()
                    )));
                }
            };
            steps.push(Step {
                layer: l,
                src: cur,
                dst,
            });
            cur = dst;
            input = out;
        }
        // A max-pool right after a ReLU conv applies the ReLU's gradient mask (see MaxPool2d).
        for i in 1..steps.len() {
            let (before, after) = steps.split_at_mut(i);
            if let (
                Step {
                    layer: Layer::Conv2d(c),
                    dst,
                    ..
                },
                Step {
                    layer: Layer::MaxPool2d(p),
                    src,
                    ..
                },
            ) = (&mut before[i - 1], &mut after[0])
                && c.relu
                && dst == src
            {
                c.relu_masked_by_pool = true;
                p.relu_mask = true;
            }
        }
        Ok(Self {
            steps,
            buf_len,
            logits: cur,
            classes: spec.num_classes(),
            input_len: spec.input_len(),
            params,
        })
    }
}
