//! Naive element-wise kernels: the oracle of the tests and benches.

/// `y = max(x, 0)`.
pub fn relu_forward(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x.max(0.0);
    }
}

/// `dx = dy` where the forward output was positive, else 0.
pub fn relu_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((dx, &dy), &y) in dx.iter_mut().zip(dy).zip(y) {
        *dx = if y > 0.0 { dy } else { 0.0 };
    }
}

/// `y = x * mask` (the mask already holds 0 or `1 / (1 - rate)`).
pub fn dropout_forward(x: &[f32], mask: &[f32], y: &mut [f32]) {
    for ((y, &x), &m) in y.iter_mut().zip(x).zip(mask) {
        *y = x * m;
    }
}
