//! [`Adam`]: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015), in the
//! form Keras applies it, epsilon outside the bias correction:
//!
//! `α_t = lr·sqrt(1-β2^t)/(1-β1^t)`, `m += (g-m)(1-β1)`, `v += (g²-v)(1-β2)`,
//! `w -= α_t·m / (sqrt(v) + ε)`.

use serde::{Deserialize, Serialize};

use super::{Optimizer, check_range, for_each_tensor};
use crate::error::Result;
use crate::params::ParamSet;

/// Adam hyper-parameters (Keras defaults: lr 1e-3, β1 0.9, β2 0.999, ε 1e-7).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    /// Learning rate, > 0.
    pub lr: f32,
    /// First-moment decay in `[0, 1)`.
    pub beta1: f32,
    /// Second-moment decay in `[0, 1)`.
    pub beta2: f32,
    /// Added to `sqrt(v)`, > 0.
    pub epsilon: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl AdamConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] naming the first value out of range.
    pub fn validate(&self) -> Result<()> {
        check_range("adam lr", self.lr, f32::MIN_POSITIVE, 1e3, false)?;
        check_range("adam beta1", self.beta1, 0.0, 1.0, true)?;
        check_range("adam beta2", self.beta2, 0.0, 1.0, true)?;
        check_range("adam epsilon", self.epsilon, f32::MIN_POSITIVE, 1.0, false)
    }
}

/// Adam with its moment estimates and step count.
#[derive(Debug, Clone)]
pub struct Adam {
    cfg: AdamConfig,
    t: u64,
    moments: Vec<Vec<f32>>,
}

impl Adam {
    /// A fresh optimizer.
    pub fn new(cfg: AdamConfig) -> Self {
        Self {
            cfg,
            t: 0,
            moments: Vec::new(),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.cfg
    }

    /// Steps taken since creation or the last reset.
    pub fn steps(&self) -> u64 {
        self.t
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut ParamSet, grads: &ParamSet) -> Result<()> {
        let AdamConfig {
            lr,
            beta1,
            beta2,
            epsilon,
        } = self.cfg;
        let t = self.t + 1;
        let exp = i32::try_from(t).unwrap_or(i32::MAX);
        let alpha = (f64::from(lr) * (1.0 - f64::from(beta2).powi(exp)).sqrt()
            / (1.0 - f64::from(beta1).powi(exp))) as f32;
        let (c1, c2) = (1.0 - beta1, 1.0 - beta2);
        for_each_tensor(params, grads, &mut self.moments, 2, |w, g, state| {
            let [m, v] = state else { return };
            for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m += (g - *m) * c1;
                *v += (g * g - *v) * c2;
                *w -= alpha * *m / (v.sqrt() + epsilon);
            }
        })?;
        self.t = t;
        Ok(())
    }

    fn reset(&mut self) {
        self.t = 0;
        self.moments.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    #[test]
    fn first_steps_match_keras_arithmetic() {
        // Keras 3 Adam(learning_rate=0.1), w=1, g=0.5 twice:
        // t1: m=0.05, v=0.00025, alpha=0.1*sqrt(0.001)/0.1=0.0316228 → w=1-0.0316228*0.05/(0.0158114+1e-7)
        let mut p = ParamSet::new();
        p.push("w", Tensor::from_slice(&[1], &[1.0]).unwrap())
            .unwrap();
        let mut g = ParamSet::new();
        g.push("w", Tensor::from_slice(&[1], &[0.5]).unwrap())
            .unwrap();
        let mut o = Adam::new(AdamConfig {
            lr: 0.1,
            ..AdamConfig::default()
        });
        o.step(&mut p, &g).unwrap();
        let alpha = 0.1 * (1.0f64 - 0.999).sqrt() / (1.0 - 0.9);
        let expected = 1.0 - alpha * 0.05 / (0.00025f64.sqrt() + 1e-7);
        let got = p.get("w").unwrap().data()[0];
        assert!(
            (f64::from(got) - expected).abs() < 1e-6,
            "{got} vs {expected}"
        );
        assert_eq!(o.steps(), 1);
        o.reset();
        assert_eq!(o.steps(), 0);
    }
}
