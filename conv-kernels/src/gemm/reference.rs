//! Naive GEMM: the oracle of the GEMM tests. `C ← α · A · B + β · C`, one dot product per
//! element in f64 (so the reference is more accurate than any tier it checks).

use super::{MatMut, MatRef};

/// `C[m x n] ← alpha · A[m x k] · B[k x n] + beta · C` (with `beta == 0`, C is overwritten).
/// Panics if a view reaches outside its slice.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for p in 0..k {
                s +=
                    f64::from(a.data[i * a.rs + p * a.cs]) * f64::from(b.data[p * b.rs + j * b.cs]);
            }
            let x = &mut c.data[i * c.rs + j * c.cs];
            let prev = if beta == 0.0 {
                0.0
            } else {
                f64::from(beta) * f64::from(*x)
            };
            *x = (f64::from(alpha) * s + prev) as f32;
        }
    }
}
