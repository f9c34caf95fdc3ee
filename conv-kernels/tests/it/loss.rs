//! softmax and cross-entropy against the f64 reference.

use crate::common::values;
use conv_kernels::loss::reference;
use conv_kernels::{
    softmax_cross_entropy_backward, softmax_cross_entropy_forward, softmax_forward,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn softmax_cross_entropy_matches_f64_reference(n in 1usize..9, classes in 1usize..13, seed in any::<u64>(), spread in 0.1f32..60.0) {
        let logits: Vec<f32> = values(seed, n * classes).iter().map(|v| v * spread).collect();
        let labels: Vec<u32> = values(seed ^ 9, n).iter().map(|v| ((v + 1.0) * 0.5 * classes as f32) as u32 % classes as u32).collect();
        let mut probs = vec![0.0; n * classes];
        let loss = softmax_cross_entropy_forward(&logits, &labels, classes, &mut probs).unwrap();
        let mut want = vec![0.0; n * classes];
        reference::softmax_forward(&logits, classes, &mut want);
        for (i, (&p, &w)) in probs.iter().zip(&want).enumerate() {
            prop_assert!((p - w).abs() <= 2e-6, "prob {i}: {p} vs {w}");
        }
        let want_loss = reference::cross_entropy_mean(&logits, &labels, classes);
        prop_assert!((loss - want_loss).abs() <= 1e-5 * want_loss.abs().max(1.0), "loss {loss} vs {want_loss}");
        let mut only = vec![0.0; n * classes];
        softmax_forward(&logits, classes, &mut only).unwrap();
        prop_assert_eq!(&only, &probs);
        let mut d = vec![0.0; n * classes];
        softmax_cross_entropy_backward(&probs, &labels, classes, &mut d).unwrap();
        let mut want_d = vec![0.0; n * classes];
        reference::softmax_cross_entropy_backward(&probs, &labels, classes, &mut want_d);
        prop_assert_eq!(d, want_d);
    }
}

#[test]
fn softmax_is_stable_for_huge_logits() {
    let mut p = [0.0f32; 3];
    softmax_forward(&[1e30, -1e30, 1e30], 3, &mut p).unwrap();
    assert_eq!(p, [0.5, 0.0, 0.5]);
    let loss = softmax_cross_entropy_forward(&[1000.0, 0.0], &[1], 2, &mut [0.0; 2]).unwrap();
    assert!((loss - 1000.0).abs() < 1e-3, "{loss}");
}
