//! Naive softmax and cross-entropy in f64: the oracle.

/// Row-wise softmax of `[batch, classes]` logits.
pub fn softmax_forward(logits: &[f32], classes: usize, probs: &mut [f32]) {
    for (row, p) in logits.chunks(classes).zip(probs.chunks_mut(classes)) {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
        for (p, &v) in p.iter_mut().zip(row) {
            *p = ((v as f64 - m).exp() / s) as f32;
        }
    }
}

/// Mean cross-entropy `-(1/N) sum_n log softmax(logits_n)[label_n]`.
pub fn cross_entropy_mean(logits: &[f32], labels: &[u32], classes: usize) -> f32 {
    let mut total = 0.0f64;
    for (row, &l) in logits.chunks(classes).zip(labels) {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        total += lse - row[l as usize] as f64;
    }
    (total / labels.len() as f64) as f32
}

/// `dlogits = (softmax - onehot(label)) / N`.
pub fn softmax_cross_entropy_backward(
    probs: &[f32],
    labels: &[u32],
    classes: usize,
    dlogits: &mut [f32],
) {
    let inv_n = 1.0 / labels.len() as f32;
    for ((d, p), &l) in dlogits
        .chunks_mut(classes)
        .zip(probs.chunks(classes))
        .zip(labels)
    {
        for (k, (d, &p)) in d.iter_mut().zip(p).enumerate() {
            let t = if k == l as usize { 1.0 } else { 0.0 };
            *d = (p - t) * inv_n;
        }
    }
}
