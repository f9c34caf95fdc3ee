//! [`PackedWeights`]: a model's conv and dense weights prepared once per model version for
//! the process's SIMD tier (Winograd-transformed and panel-packed conv filters, packed dense
//! matrices; see `conv_kernels::PackedConv` and `PackedDense`).
//!
//! [`crate::Sequential`] owns one: built when the model is created, loaded or given new
//! parameters (`fn-serve` therefore packs at load and at every hot swap), dropped by any
//! `&mut` access to the parameters (`params_mut`, `take_params`, `fit`) and rebuilt on the
//! next inference. A caller can thus never run stale packed weights: they are derived from
//! the parameters, and nothing can change the parameters without going through `&mut`.

use conv_kernels::{PackedConv, PackedDense};

use crate::error::Result;
use crate::layers::{Layer, Plan};
use crate::model::param_pair;
use crate::params::ParamSet;

/// One layer's prepared weights.
#[derive(Debug)]
pub(crate) enum PackedLayer {
    Conv(PackedConv),
    Dense(PackedDense),
}

/// Prepared weights of every conv and dense step, by parameter index.
#[derive(Debug)]
pub(crate) struct PackedWeights {
    layers: Vec<(usize, PackedLayer)>,
}

impl PackedWeights {
    /// Packs every conv and dense layer of `plan` from `params` on the process-wide tier.
    pub(crate) fn build(plan: &Plan, params: &ParamSet) -> Result<Self> {
        let mut layers = Vec::new();
        for step in &plan.steps {
            match &step.layer {
                Layer::Conv2d(c) => {
                    let (w, _) = param_pair(params, c.param)?;
                    let [ci, ..] = c.in_shape;
                    let [kh, kw] = c.kernel;
                    let p = conv_kernels::pack_conv2d([c.filters, ci, kh, kw], w)?;
                    layers.push((c.param, PackedLayer::Conv(p)));
                }
                Layer::Dense(d) => {
                    let (w, _) = param_pair(params, d.param)?;
                    let p = conv_kernels::pack_dense(d.in_features, d.units, w)?;
                    layers.push((d.param, PackedLayer::Dense(p)));
                }
                _ => {}
            }
        }
        Ok(Self { layers })
    }

    /// The packed conv weights of parameter `param`.
    pub(crate) fn conv(&self, param: usize) -> Option<&PackedConv> {
        self.layers.iter().find_map(|(p, l)| match l {
            PackedLayer::Conv(c) if *p == param => Some(c),
            _ => None,
        })
    }

    /// The packed dense weights of parameter `param`.
    pub(crate) fn dense(&self, param: usize) -> Option<&PackedDense> {
        self.layers.iter().find_map(|(p, l)| match l {
            PackedLayer::Dense(d) if *p == param => Some(d),
            _ => None,
        })
    }

    /// f32 elements held.
    pub(crate) fn len(&self) -> usize {
        self.layers
            .iter()
            .map(|(_, l)| match l {
                PackedLayer::Conv(c) => c.len(),
                PackedLayer::Dense(d) => d.len(),
            })
            .sum()
    }
}
