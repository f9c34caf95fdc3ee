//! Fully connected layer on GEMM: input `[N, in]`, weight `[out, in]` (PyTorch's layout).
//!
//! Every product is one call of [`crate::gemm`] with strides doing the transposes:
//! `Y = X·Wᵀ` reads W column-major, `dW = dYᵀ·X` reads dY column-major; nothing is copied.
//! Row panels of the output may run in parallel; each output element's reduction is the same
//! sequence of operations for any thread count.
//!
//! Small batches (`N <=` [`GEMV_MAX_BATCH`]) of [`dense_forward`] skip the GEMM: GEMM packs
//! the whole weight every call (1 MB for the Table 1 model's fc1), which dominates a
//! matrix-vector product. They run a GEMV instead: per image and output row a SIMD dot product
//! over the `[out, in]` weight row (four vector accumulators, two rows per pass sharing the
//! input loads), with bias and ReLU fused. Each output's reduction order depends only on
//! `in` and the tier, not on the batch size or the thread count.

mod packed;
pub mod reference;

pub use packed::{PackedDense, dense_forward_packed, pack_dense};

use crate::activation::Activation;
use crate::dispatch::{Kernels, kernels};
use crate::error::{Result, check_len};
use crate::gemm::{MatRef, sgemm_rows_par};
use crate::geometry::DenseGeometry;
use crate::simd::F32Vec;
use rayon::prelude::*;

/// Largest batch for which [`dense_forward`] uses the GEMV path instead of GEMM (measured on
/// the Table 1 fc1, 1024 -> 256, one thread: see BENCHMARKS.md).
pub const GEMV_MAX_BATCH: usize = 6;

/// Output rows per parallel task of the GEMV path (a multiple of 2).
const GEMV_ROWS_PER_TASK: usize = 64;

/// Forward: `out = act(input · weightᵀ + bias)`.
///
/// # Shapes
/// input `[N, in]`, weight `[out, in]`, bias `[out]`, out `[N, out]`.
pub fn dense_forward(
    g: &DenseGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    out: &mut [f32],
) -> Result<()> {
    kernels().dense_forward(g, input, weight, bias, activation, out)
}

/// Gradient w.r.t. the input: `grad_input = grad_out · weight` (overwrites).
///
/// # Shapes
/// grad_out `[N, out]`, weight `[out, in]`, grad_input `[N, in]`.
pub fn dense_backward_input(
    g: &DenseGeometry,
    grad_out: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) -> Result<()> {
    kernels().dense_backward_input(g, grad_out, weight, grad_input)
}

/// Gradient w.r.t. the weight: `grad_weight = grad_outᵀ · input` (overwrites).
///
/// # Shapes
/// input `[N, in]`, grad_out `[N, out]`, grad_weight `[out, in]`.
pub fn dense_backward_weight(
    g: &DenseGeometry,
    input: &[f32],
    grad_out: &[f32],
    grad_weight: &mut [f32],
) -> Result<()> {
    kernels().dense_backward_weight(g, input, grad_out, grad_weight)
}

/// Gradient w.r.t. the bias: column sums of `grad_out` (overwrites).
///
/// # Shapes
/// grad_out `[N, out]`, grad_bias `[out]`.
pub fn dense_backward_bias(
    g: &DenseGeometry,
    grad_out: &[f32],
    grad_bias: &mut [f32],
) -> Result<()> {
    kernels().dense_backward_bias(g, grad_out, grad_bias)
}

impl Kernels {
    /// [`dense_forward`] on this tier.
    pub fn dense_forward(
        &self,
        g: &DenseGeometry,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        out: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "dense_forward";
        check_len(OP, "input", input.len(), g.input_len())?;
        check_len(OP, "weight", weight.len(), g.weight_len())?;
        if let Some(b) = bias {
            check_len(OP, "bias", b.len(), g.out_features)?;
        }
        check_len(OP, "out", out.len(), g.output_len())?;
        let (n, i, o) = (g.batch, g.in_features, g.out_features);
        let relu = activation == Activation::Relu;
        if n <= GEMV_MAX_BATCH {
            self.dense_forward_gemv(g, input, weight, bias, relu, out);
            return Ok(());
        }
        sgemm_rows_par(
            n,
            i,
            o,
            1.0,
            MatRef::row_major(input, i),
            MatRef::col_major(weight, i),
            0.0,
            out,
            o,
        )?;
        self.dense_epilogue(o, bias, relu, out);
        Ok(())
    }

    /// `out[row] = act(out[row] + bias)` for every row of `o` outputs.
    pub(crate) fn dense_epilogue(
        &self,
        o: usize,
        bias: Option<&[f32]>,
        relu: bool,
        out: &mut [f32],
    ) {
        match bias {
            Some(b) => {
                for row in out.chunks_exact_mut(o) {
                    (self.add_assign)(row, b);
                    if relu {
                        (self.relu_forward_inplace)(row);
                    }
                }
            }
            None if relu => (self.relu_forward_inplace)(out),
            None => {}
        }
    }

    /// The GEMV path of [`Kernels::dense_forward`] (lengths already checked): one image at a
    /// time, output rows in blocks of [`GEMV_ROWS_PER_TASK`] (parallel above the threshold).
    pub(crate) fn dense_forward_gemv(
        &self,
        g: &DenseGeometry,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        out: &mut [f32],
    ) {
        let (i, o) = (g.in_features, g.out_features);
        let rows = self.dense_rows;
        let tasks = o.div_ceil(GEMV_ROWS_PER_TASK);
        let workers = crate::threads::workers_for(2 * i * o, tasks);
        for (x, y) in input.chunks_exact(i).zip(out.chunks_exact_mut(o)) {
            if workers <= 1 {
                rows(x, weight, bias, relu, y);
            } else {
                y.par_chunks_mut(GEMV_ROWS_PER_TASK)
                    .zip(weight.par_chunks(GEMV_ROWS_PER_TASK * i))
                    .enumerate()
                    .for_each(|(t, (y, w))| {
                        let b = bias.map(|b| &b[t * GEMV_ROWS_PER_TASK..][..y.len()]);
                        rows(x, w, b, relu, y)
                    });
            }
        }
    }

    /// [`dense_backward_input`] on this tier.
    pub fn dense_backward_input(
        &self,
        g: &DenseGeometry,
        grad_out: &[f32],
        weight: &[f32],
        grad_input: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "dense_backward_input";
        check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
        check_len(OP, "weight", weight.len(), g.weight_len())?;
        check_len(OP, "grad_input", grad_input.len(), g.input_len())?;
        let (n, i, o) = (g.batch, g.in_features, g.out_features);
        sgemm_rows_par(
            n,
            o,
            i,
            1.0,
            MatRef::row_major(grad_out, o),
            MatRef::row_major(weight, i),
            0.0,
            grad_input,
            i,
        )
    }

    /// [`dense_backward_weight`] on this tier.
    pub fn dense_backward_weight(
        &self,
        g: &DenseGeometry,
        input: &[f32],
        grad_out: &[f32],
        grad_weight: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "dense_backward_weight";
        check_len(OP, "input", input.len(), g.input_len())?;
        check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
        check_len(OP, "grad_weight", grad_weight.len(), g.weight_len())?;
        let (n, i, o) = (g.batch, g.in_features, g.out_features);
        sgemm_rows_par(
            o,
            n,
            i,
            1.0,
            MatRef::col_major(grad_out, o),
            MatRef::row_major(input, i),
            0.0,
            grad_weight,
            i,
        )
    }

    /// [`dense_backward_bias`] on this tier: rows of `grad_out` added in batch order.
    pub fn dense_backward_bias(
        &self,
        g: &DenseGeometry,
        grad_out: &[f32],
        grad_bias: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "dense_backward_bias";
        check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
        check_len(OP, "grad_bias", grad_bias.len(), g.out_features)?;
        grad_bias.fill(0.0);
        for row in grad_out.chunks_exact(g.out_features) {
            (self.add_assign)(grad_bias, row);
        }
        Ok(())
    }
}

/// `x · w` for two weight rows at once (sharing the loads of `x`), each reduced in the order
/// of [`dot_simd`]: four lane-wise accumulators over blocks of `4 * LANES`, leftover whole
/// vectors into the first ones, `(a0 + a1) + (a2 + a3)`, lanes, then the scalar tail.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn dot2_simd<V: F32Vec>(x: &[f32], w0: &[f32], w1: &[f32]) -> (f32, f32) {
    let n = x.len();
    let (w0, w1) = (&w0[..n], &w1[..n]);
    let l = V::LANES;
    let blocks = n / (4 * l);
    let vecs = n / l;
    // SAFETY: the caller guarantees `V`'s ISA; all loads are bounds-checked slices.
    let (mut s0, mut s1) = unsafe {
        let z = V::splat(0.0);
        let (mut a, mut b) = ([z; 4], [z; 4]);
        for k in 0..blocks {
            let base = 4 * l * k;
            for j in 0..4 {
                let off = base + j * l;
                let xv = V::load(&x[off..]);
                a[j] = xv.mul_add(V::load(&w0[off..]), a[j]);
                b[j] = xv.mul_add(V::load(&w1[off..]), b[j]);
            }
        }
        for (j, v) in (4 * blocks..vecs).enumerate() {
            let off = v * l;
            let xv = V::load(&x[off..]);
            a[j] = xv.mul_add(V::load(&w0[off..]), a[j]);
            b[j] = xv.mul_add(V::load(&w1[off..]), b[j]);
        }
        (
            a[0].add(a[1]).add(a[2].add(a[3])).reduce_sum(),
            b[0].add(b[1]).add(b[2].add(b[3])).reduce_sum(),
        )
    };
    for k in vecs * l..n {
        s0 += x[k] * w0[k];
        s1 += x[k] * w1[k];
    }
    (s0, s1)
}

/// `x · w` for one weight row, in exactly [`dot2_simd`]'s order.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn dot_simd<V: F32Vec>(x: &[f32], w: &[f32]) -> f32 {
    let n = x.len();
    let w = &w[..n];
    let l = V::LANES;
    let blocks = n / (4 * l);
    let vecs = n / l;
    // SAFETY: the caller guarantees `V`'s ISA; all loads are bounds-checked slices.
    let mut s = unsafe {
        let z = V::splat(0.0);
        let mut a = [z; 4];
        for k in 0..blocks {
            let base = 4 * l * k;
            for (j, acc) in a.iter_mut().enumerate() {
                let off = base + j * l;
                *acc = V::load(&x[off..]).mul_add(V::load(&w[off..]), *acc);
            }
        }
        for (j, v) in (4 * blocks..vecs).enumerate() {
            let off = v * l;
            a[j] = V::load(&x[off..]).mul_add(V::load(&w[off..]), a[j]);
        }
        a[0].add(a[1]).add(a[2].add(a[3])).reduce_sum()
    };
    for k in vecs * l..n {
        s += x[k] * w[k];
    }
    s
}

/// One image through a block of rows: `y[r] = act(bias[r] + x · w[r, ..])` for
/// `r < y.len()`, `w` being `[y.len(), x.len()]` row-major (shorter slices are a bug: panics).
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn dense_rows_simd<V: F32Vec>(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    let n = x.len();
    let finish = |r: usize, s: f32| {
        let v = s + bias.map_or(0.0, |b| b[r]);
        if relu { v.max(0.0) } else { v }
    };
    let rows = y.len();
    let mut r = 0;
    while r + 2 <= rows {
        // SAFETY: the caller guarantees `V`'s ISA.
        let (s0, s1) = unsafe { dot2_simd::<V>(x, &w[r * n..][..n], &w[(r + 1) * n..][..n]) };
        y[r] = finish(r, s0);
        y[r + 1] = finish(r + 1, s1);
        r += 2;
    }
    if r < rows {
        // SAFETY: the caller guarantees `V`'s ISA.
        let s = unsafe { dot_simd::<V>(x, &w[r * n..][..n]) };
        y[r] = finish(r, s);
    }
}
