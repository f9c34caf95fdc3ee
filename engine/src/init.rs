//! Keras's default initialisation: Glorot (Xavier) uniform weights, zero biases.
//!
//! Glorot & Bengio (2010): `W ~ U(-l, l)` with `l = sqrt(6 / (fan_in + fan_out))`; for a
//! convolution `fan_in = C·KH·KW` and `fan_out = O·KH·KW`, for a dense layer `[out, in]`
//! `fan_in = in`, `fan_out = out`. Each tensor draws from its own stream
//! `Rng::derive(seed, Purpose::INIT, index)`, so adding a layer does not reshuffle the others.

use crate::error::Result;
use crate::params::ParamSet;
use crate::rng::{Purpose, Rng};
use crate::tensor::Tensor;

/// `(fan_in, fan_out)` of a weight of shape `[out, in, k...]` (PyTorch layout).
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, inp, rest @ ..] => {
            let receptive: usize = rest.iter().product();
            (inp * receptive, out * receptive)
        }
    }
}

/// Fills `out` from `U(-l, l)`, `l = sqrt(6 / (fan_in + fan_out))`.
pub fn glorot_uniform(out: &mut [f32], fan_in: usize, fan_out: usize, rng: &mut Rng) {
    let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32;
    for v in out {
        *v = rng.uniform(-limit, limit);
    }
}

/// Parameters for `shapes` (from `ModelSpec::param_shapes`): tensors named `*.bias` are
/// zero, the others Glorot uniform from `Rng::derive(seed, Purpose::INIT, tensor index)`.
pub fn init_params(shapes: &[(String, Vec<usize>)], seed: u64) -> Result<ParamSet> {
    let mut set = ParamSet::new();
    for (i, (name, shape)) in shapes.iter().enumerate() {
        let mut t = Tensor::zeros(shape)?;
        if !name.ends_with(".bias") {
            let (fan_in, fan_out) = fans(shape);
            glorot_uniform(
                t.data_mut(),
                fan_in,
                fan_out,
                &mut Rng::derive(seed, Purpose::INIT, i as u64),
            );
        }
        set.push(name.clone(), t)?;
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_fans_count_the_receptive_field() {
        assert_eq!(fans(&[32, 1, 5, 5]), (25, 800));
        assert_eq!(fans(&[256, 1024]), (1024, 256));
    }

    #[test]
    fn weights_stay_within_the_glorot_limit_and_biases_are_zero() {
        let shapes = vec![
            ("conv1.weight".to_string(), vec![32, 1, 5, 5]),
            ("conv1.bias".to_string(), vec![32]),
        ];
        let p = init_params(&shapes, 7).unwrap();
        let limit = (6.0f32 / (25.0 + 800.0)).sqrt();
        let w = p.get("conv1.weight").unwrap().data();
        assert!(w.iter().all(|v| v.abs() <= limit));
        let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(max > 0.9 * limit, "{max} vs {limit}");
        assert!(
            p.get("conv1.bias")
                .unwrap()
                .data()
                .iter()
                .all(|&v| v == 0.0)
        );
        let again = init_params(&shapes, 7).unwrap();
        assert_eq!(again.get("conv1.weight").unwrap().data(), w);
    }
}
