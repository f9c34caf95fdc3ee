//! Numerically stable softmax and sparse softmax cross-entropy, forward and backward.

pub mod reference;

use crate::error::{KernelError, Result, check_len};

fn check_labels(op: &'static str, labels: &[u32], classes: usize) -> Result<()> {
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(row) => Err(KernelError::Label {
            op,
            row,
            label: labels[row],
            classes,
        }),
        None => Ok(()),
    }
}

/// Row-wise softmax of `[batch, classes]` logits into `probs` (max-subtracted, stable).
pub fn softmax_forward(logits: &[f32], classes: usize, probs: &mut [f32]) -> Result<()> {
    const OP: &str = "softmax_forward";
    if classes == 0 || !logits.len().is_multiple_of(classes) {
        return Err(KernelError::Geometry {
            op: OP,
            reason: format!("{} logits are not rows of {classes} classes", logits.len()),
        });
    }
    check_len(OP, "probs", probs.len(), logits.len())?;
    for (row, p) in logits
        .chunks_exact(classes)
        .zip(probs.chunks_exact_mut(classes))
    {
        let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut s = 0.0f32;
        for (p, &v) in p.iter_mut().zip(row) {
            *p = (v - m).exp();
            s += *p;
        }
        let inv = 1.0 / s;
        for p in p.iter_mut() {
            *p *= inv;
        }
    }
    Ok(())
}

/// Softmax of the logits into `probs` and the mean cross-entropy against `labels`.
///
/// # Shapes
/// logits and probs `[N, classes]`, labels `[N]`.
pub fn softmax_cross_entropy_forward(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    probs: &mut [f32],
) -> Result<f32> {
    const OP: &str = "softmax_cross_entropy_forward";
    check_len(
        OP,
        "logits",
        logits.len(),
        labels.len().saturating_mul(classes),
    )?;
    check_labels(OP, labels, classes)?;
    softmax_forward(logits, classes, probs)?;
    let mut total = 0.0f64;
    for (row, &l) in logits.chunks_exact(classes).zip(labels) {
        let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let s: f32 = row.iter().map(|&v| (v - m).exp()).sum();
        total += (m + s.ln() - row[l as usize]) as f64;
    }
    Ok((total / labels.len().max(1) as f64) as f32)
}

/// Gradient of the mean cross-entropy w.r.t. the logits: `(probs - onehot) / N` (overwrites).
pub fn softmax_cross_entropy_backward(
    probs: &[f32],
    labels: &[u32],
    classes: usize,
    grad_logits: &mut [f32],
) -> Result<()> {
    const OP: &str = "softmax_cross_entropy_backward";
    check_len(
        OP,
        "probs",
        probs.len(),
        labels.len().saturating_mul(classes),
    )?;
    check_len(OP, "grad_logits", grad_logits.len(), probs.len())?;
    check_labels(OP, labels, classes)?;
    reference::softmax_cross_entropy_backward(probs, labels, classes, grad_logits);
    Ok(())
}
