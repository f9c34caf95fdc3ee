//! Naive dense layer: the oracle for tests and benches.

use crate::geometry::DenseGeometry;

/// `y[n,o] = bias[o] + sum_i x[n,i] * w[o,i]`, then ReLU if asked.
pub fn dense_forward(
    g: &DenseGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    for n in 0..g.batch {
        for o in 0..g.out_features {
            let mut acc = bias.map_or(0.0, |b| b[o]);
            for i in 0..g.in_features {
                acc += x[n * g.in_features + i] * w[o * g.in_features + i];
            }
            y[n * g.out_features + o] = if relu { acc.max(0.0) } else { acc };
        }
    }
}

/// `dx[n,i] = sum_o dy[n,o] * w[o,i]`.
pub fn dense_backward_input(g: &DenseGeometry, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    for n in 0..g.batch {
        for i in 0..g.in_features {
            let mut acc = 0.0;
            for o in 0..g.out_features {
                acc += dy[n * g.out_features + o] * w[o * g.in_features + i];
            }
            dx[n * g.in_features + i] = acc;
        }
    }
}

/// `dw[o,i] = sum_n dy[n,o] * x[n,i]`.
pub fn dense_backward_weight(g: &DenseGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    for o in 0..g.out_features {
        for i in 0..g.in_features {
            let mut acc = 0.0;
            for n in 0..g.batch {
                acc += dy[n * g.out_features + o] * x[n * g.in_features + i];
            }
            dw[o * g.in_features + i] = acc;
        }
    }
}

/// `db[o] = sum_n dy[n,o]`.
pub fn dense_backward_bias(g: &DenseGeometry, dy: &[f32], db: &mut [f32]) {
    for (o, b) in db.iter_mut().enumerate() {
        *b = (0..g.batch).map(|n| dy[n * g.out_features + o]).sum();
    }
}
