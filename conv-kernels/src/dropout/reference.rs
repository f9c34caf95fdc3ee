//! Naive dropout: the oracle.

/// `y = x * mask` (the mask already holds 0 or `1 / (1 - rate)`).
pub fn dropout_forward(x: &[f32], mask: &[f32], y: &mut [f32]) {
    for ((y, &x), &m) in y.iter_mut().zip(x).zip(mask) {
        *y = x * m;
    }
}
