//! Optimizers: [`Sgd`] (momentum, Nesterov) and [`Adam`], as Keras defines them, behind the
//! [`Optimizer`] trait; [`OptimizerConfig`] is their serde description.
//!
//! State (velocities, moments, step count) is created at the first step for the parameter
//! layout it sees; [`Optimizer::reset`] drops it, e.g. between federated rounds.

mod adam;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use sgd::{Sgd, SgdConfig};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::params::ParamSet;

/// Updates parameters from their gradients.
pub trait Optimizer: Send {
    /// One update of `params` from `grads` (same names, order and shapes).
    ///
    /// # Errors
    /// [`Error::Shape`] when `grads` does not match `params` or the optimizer's state.
    fn step(&mut self, params: &mut ParamSet, grads: &ParamSet) -> Result<()>;
    /// Forgets all state (as if newly built).
    fn reset(&mut self);
}

/// A serialisable optimizer choice: `{"type": "adam", "lr": 0.001}` or
/// `{"type": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": true}`; omitted fields take
/// Keras's defaults.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum OptimizerConfig {
    /// Stochastic gradient descent.
    Sgd(SgdConfig),
    /// Adam.
    Adam(AdamConfig),
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam(AdamConfig::default())
    }
}

impl OptimizerConfig {
    /// Checks every hyper-parameter is finite and in range.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the parameter and its value.
    pub fn validate(&self) -> Result<()> {
        match self {
            OptimizerConfig::Sgd(c) => c.validate(),
            OptimizerConfig::Adam(c) => c.validate(),
        }
    }

    /// The optimizer, with fresh state.
    pub fn build(&self) -> Box<dyn Optimizer> {
        match self {
            OptimizerConfig::Sgd(c) => Box::new(Sgd::new(*c)),
            OptimizerConfig::Adam(c) => Box::new(Adam::new(*c)),
        }
    }
}

pub(crate) fn check_range(name: &str, v: f32, lo: f32, hi: f32, hi_open: bool) -> Result<()> {
    let ok = v.is_finite() && v >= lo && if hi_open { v < hi } else { v <= hi };
    if ok {
        Ok(())
    } else {
        let close = if hi_open { ')' } else { ']' };
        Err(Error::InvalidArgument(format!(
            "{name} = {v} is not in [{lo}, {hi}{close}"
        )))
    }
}

/// Checks `grads` against `params` and the state's per-tensor lengths (creating the state
/// when empty), then runs `update(param, grad, state_index)` for every tensor.
pub(crate) fn for_each_tensor(
    params: &mut ParamSet,
    grads: &ParamSet,
    state: &mut Vec<Vec<f32>>,
    slots: usize,
    mut update: impl FnMut(&mut [f32], &[f32], &mut [Vec<f32>]),
) -> Result<()> {
    if params.len() != grads.len() {
        return Err(Error::Shape {
            what: "optimizer step: number of gradient tensors".into(),
            expected: vec![params.len()],
            got: vec![grads.len()],
        });
    }
    for ((name, p), (_, g)) in params.iter().zip(grads.iter()) {
        if p.shape() != g.shape() {
            return Err(Error::Shape {
                what: format!("gradient of `{name}`"),
                expected: p.shape().to_vec(),
                got: g.shape().to_vec(),
            });
        }
    }
    if slots == 0 {
        for ((_, p), (_, g)) in params.iter_mut().zip(grads.iter()) {
            update(p.data_mut(), g.data(), &mut []);
        }
        return Ok(());
    }
    if state.is_empty() {
        for (_, p) in params.iter() {
            for _ in 0..slots {
                state.push(vec![0.0; p.len()]);
            }
        }
    }
    let fits = state.len() == params.len() * slots
        && params
            .iter()
            .enumerate()
            .all(|(i, (_, p))| state[i * slots].len() == p.len());
    if !fits {
        return Err(Error::Shape {
            what: "optimizer state (call reset() before changing the model)".into(),
            expected: params.iter().map(|(_, p)| p.len()).collect(),
            got: state.iter().step_by(slots.max(1)).map(Vec::len).collect(),
        });
    }
    for (i, ((_, p), (_, g))) in params.iter_mut().zip(grads.iter()).enumerate() {
        update(
            p.data_mut(),
            g.data(),
            &mut state[i * slots..(i + 1) * slots],
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_uses_keras_defaults_and_validates() {
        let c: OptimizerConfig = serde_json::from_str(r#"{"type": "adam"}"#).unwrap();
        assert_eq!(c, OptimizerConfig::Adam(AdamConfig::default()));
        let c: OptimizerConfig = serde_json::from_str(
            r#"{"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": true}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            OptimizerConfig::Sgd(SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                nesterov: true
            })
        );
        c.validate().unwrap();
        let back: OptimizerConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<OptimizerConfig>(r#"{"type": "rmsprop"}"#).is_err());
        assert!(serde_json::from_str::<OptimizerConfig>(r#"{"type": "adam", "lrr": 1}"#).is_err());
        let bad = OptimizerConfig::Adam(AdamConfig {
            lr: f32::NAN,
            ..AdamConfig::default()
        });
        assert!(bad.validate().is_err());
        let bad = OptimizerConfig::Sgd(SgdConfig {
            momentum: 1.0,
            ..SgdConfig::default()
        });
        assert!(bad.validate().is_err());
    }
}
