//! Sparse categorical cross-entropy. Training fuses the softmax into the loss
//! (`conv-kernels`' stable softmax + cross-entropy on logits, gradient `(p - onehot) / N`);
//! evaluation works from probabilities clipped to `[1e-7, 1 - 1e-7]`, as Keras does.

use crate::error::Result;

/// Keras's clipping epsilon for cross-entropy on probabilities.
pub const PROB_EPSILON: f32 = 1e-7;

/// Mean cross-entropy of `logits` against `labels`; writes the softmax into `probs` and
/// the gradient of the mean loss w.r.t. the logits into `grad_logits`.
///
/// # Shapes
/// logits, probs, grad_logits `[N, classes]`, labels `[N]`.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    probs: &mut [f32],
    grad_logits: &mut [f32],
) -> Result<f32> {
    let loss = conv_kernels::softmax_cross_entropy_forward(logits, labels, classes, probs)?;
    conv_kernels::softmax_cross_entropy_backward(probs, labels, classes, grad_logits)?;
    Ok(loss)
}

/// Cross-entropy of one probability row against `label`, `-ln(clip(p[label]))`.
/// A label outside the row counts as probability 0.
pub fn crossentropy_from_probs(row: &[f32], label: usize) -> f32 {
    let p = row.get(label).copied().unwrap_or(0.0);
    -p.clamp(PROB_EPSILON, 1.0 - PROB_EPSILON).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_logits_give_ln_classes_and_the_textbook_gradient() {
        let logits = [0.0f32; 8];
        let labels = [1u32, 3];
        let (mut p, mut g) = ([0.0f32; 8], [0.0f32; 8]);
        let loss = softmax_cross_entropy(&logits, &labels, 4, &mut p, &mut g).unwrap();
        assert!((loss - 4f32.ln()).abs() < 1e-6);
        // d/dz mean CE = (softmax - onehot) / N = (0.25 - [l == j]) / 2
        assert!((g[1] - (0.25 - 1.0) / 2.0).abs() < 1e-7);
        assert!((g[0] - 0.25 / 2.0).abs() < 1e-7);
        assert!((crossentropy_from_probs(&p[..4], 1) - 4f32.ln()).abs() < 1e-6);
        assert!(crossentropy_from_probs(&[1.0, 0.0], 1) > 16.0);
    }
}
