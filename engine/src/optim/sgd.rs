//! [`Sgd`]: stochastic gradient descent with optional (Nesterov) momentum, as Keras 3's
//! `SGD` updates: `v = m·v - lr·g`, then `w += v`, or with Nesterov `w += m·v - lr·g`;
//! without momentum simply `w -= lr·g`.

use serde::{Deserialize, Serialize};

use super::{Optimizer, check_range, for_each_tensor};
use crate::error::Result;
use crate::params::ParamSet;

/// SGD hyper-parameters (Keras defaults: lr 0.01, no momentum).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// Learning rate, > 0.
    pub lr: f32,
    /// Momentum in `[0, 1)`.
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 0.01,
            momentum: 0.0,
            nesterov: false,
        }
    }
}

impl SgdConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] for a non-positive or non-finite lr, or momentum
    /// outside `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        check_range("sgd lr", self.lr, f32::MIN_POSITIVE, 1e3, false)?;
        check_range("sgd momentum", self.momentum, 0.0, 1.0, true)
    }
}

/// SGD with its velocity state.
#[derive(Debug, Clone)]
pub struct Sgd {
    cfg: SgdConfig,
    velocity: Vec<Vec<f32>>,
}

impl Sgd {
    /// A fresh optimizer.
    pub fn new(cfg: SgdConfig) -> Self {
        Self {
            cfg,
            velocity: Vec::new(),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut ParamSet, grads: &ParamSet) -> Result<()> {
        let SgdConfig {
            lr,
            momentum,
            nesterov,
        } = self.cfg;
        if momentum == 0.0 {
            let mut none = Vec::new();
            return for_each_tensor(params, grads, &mut none, 0, |w, g, _| {
                for (w, &g) in w.iter_mut().zip(g) {
                    *w -= lr * g;
                }
            });
        }
        for_each_tensor(params, grads, &mut self.velocity, 1, |w, g, state| {
            let v = &mut state[0];
            for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
                *v = momentum * *v - lr * g;
                if nesterov {
                    *w += momentum * *v - lr * g;
                } else {
                    *w += *v;
                }
            }
        })
    }

    fn reset(&mut self) {
        self.velocity.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn one(v: f32) -> ParamSet {
        let mut p = ParamSet::new();
        p.push("w", Tensor::from_slice(&[1], &[v]).unwrap())
            .unwrap();
        p
    }

    #[test]
    fn momentum_and_nesterov_follow_keras() {
        // Keras: v1 = -lr*g = -0.1; w1 = 1 - 0.1 = 0.9; v2 = 0.9*-0.1 - 0.1 = -0.19; w2 = 0.71.
        let mut p = one(1.0);
        let g = one(1.0);
        let mut o = Sgd::new(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
        });
        o.step(&mut p, &g).unwrap();
        o.step(&mut p, &g).unwrap();
        assert!((p.get("w").unwrap().data()[0] - 0.71).abs() < 1e-6);
        // Nesterov: w1 = 1 + 0.9*-0.1 - 0.1 = 0.81; v2 = -0.19; w2 = 0.81 + 0.9*-0.19 - 0.1 = 0.539.
        let mut p = one(1.0);
        let mut o = Sgd::new(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
        });
        o.step(&mut p, &g).unwrap();
        o.step(&mut p, &g).unwrap();
        assert!((p.get("w").unwrap().data()[0] - 0.539).abs() < 1e-6);
        o.reset();
        let mut other = ParamSet::new();
        other.push("w", Tensor::zeros(&[2]).unwrap()).unwrap();
        assert!(o.step(&mut p, &other).is_err(), "shape mismatch refused");
    }
}
