//! ReLU forward and backward over flat slices.

use crate::dispatch::{Kernels, kernels};
use crate::error::{Result, check_len};
use crate::simd::F32Vec;

/// `out = max(input, 0)`.
pub fn relu_forward(input: &[f32], out: &mut [f32]) -> Result<()> {
    kernels().relu_forward(input, out)
}

/// In-place `x = max(x, 0)`.
pub fn relu_forward_inplace(x: &mut [f32]) {
    kernels().relu_forward_inplace(x)
}

/// `grad_input = grad_out` where the forward *output* was positive, else 0.
pub fn relu_backward(output: &[f32], grad_out: &[f32], grad_input: &mut [f32]) -> Result<()> {
    kernels().relu_backward(output, grad_out, grad_input)
}

/// In-place ReLU backward: zeroes `grad` where the forward output was not positive.
pub fn relu_backward_inplace(output: &[f32], grad: &mut [f32]) -> Result<()> {
    kernels().relu_backward_inplace(output, grad)
}

impl Kernels {
    /// [`relu_forward`] on this tier.
    pub fn relu_forward(&self, input: &[f32], out: &mut [f32]) -> Result<()> {
        check_len("relu_forward", "out", out.len(), input.len())?;
        (self.relu_forward)(input, out);
        Ok(())
    }
    /// [`relu_forward_inplace`] on this tier.
    pub fn relu_forward_inplace(&self, x: &mut [f32]) {
        (self.relu_forward_inplace)(x)
    }
    /// [`relu_backward`] on this tier.
    pub fn relu_backward(
        &self,
        output: &[f32],
        grad_out: &[f32],
        grad_input: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "relu_backward";
        check_len(OP, "grad_out", grad_out.len(), output.len())?;
        check_len(OP, "grad_input", grad_input.len(), output.len())?;
        (self.relu_backward)(output, grad_out, grad_input);
        Ok(())
    }
    /// [`relu_backward_inplace`] on this tier.
    pub fn relu_backward_inplace(&self, output: &[f32], grad: &mut [f32]) -> Result<()> {
        check_len("relu_backward_inplace", "grad", grad.len(), output.len())?;
        (self.relu_backward_inplace)(output, grad);
        Ok(())
    }
}

/// `y = max(x, 0)`.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn relu_forward_simd<V: F32Vec>(x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &mut y[..n]);
    let mut xs = x.chunks_exact(V::LANES);
    let mut ys = y.chunks_exact_mut(V::LANES);
    // SAFETY: the caller guarantees `V`'s ISA.
    unsafe {
        let zero = V::splat(0.0);
        for (x, y) in (&mut xs).zip(&mut ys) {
            V::load(x).max(zero).store(y);
        }
    }
    for (y, &x) in ys.into_remainder().iter_mut().zip(xs.remainder()) {
        *y = x.max(0.0);
    }
}

/// `x = max(x, 0)` in place.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn relu_forward_inplace_simd<V: F32Vec>(x: &mut [f32]) {
    let mut xs = x.chunks_exact_mut(V::LANES);
    // SAFETY: the caller guarantees `V`'s ISA.
    unsafe {
        let zero = V::splat(0.0);
        for x in &mut xs {
            V::load(x).max(zero).store(x);
        }
    }
    for x in xs.into_remainder() {
        *x = x.max(0.0);
    }
}

/// `dx = dy` where `y > 0`, else 0.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn relu_backward_simd<V: F32Vec>(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    let n = y.len().min(dy.len()).min(dx.len());
    let (y, dy, dx) = (&y[..n], &dy[..n], &mut dx[..n]);
    let mut ys = y.chunks_exact(V::LANES);
    let mut dys = dy.chunks_exact(V::LANES);
    let mut dxs = dx.chunks_exact_mut(V::LANES);
    // SAFETY: the caller guarantees `V`'s ISA.
    unsafe {
        for ((y, dy), dx) in (&mut ys).zip(&mut dys).zip(&mut dxs) {
            V::load(dy).keep_where_positive(V::load(y)).store(dx);
        }
    }
    for ((dx, &dy), &y) in dxs
        .into_remainder()
        .iter_mut()
        .zip(dys.remainder())
        .zip(ys.remainder())
    {
        *dx = if y > 0.0 { dy } else { 0.0 };
    }
}

/// `g = 0` where `y <= 0` (or NaN).
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn relu_backward_inplace_simd<V: F32Vec>(y: &[f32], g: &mut [f32]) {
    let n = y.len().min(g.len());
    let (y, g) = (&y[..n], &mut g[..n]);
    let mut ys = y.chunks_exact(V::LANES);
    let mut gs = g.chunks_exact_mut(V::LANES);
    // SAFETY: the caller guarantees `V`'s ISA.
    unsafe {
        for (y, g) in (&mut ys).zip(&mut gs) {
            V::load(g).keep_where_positive(V::load(y)).store(g);
        }
    }
    for (g, &y) in gs.into_remainder().iter_mut().zip(ys.remainder()) {
        // Same rule as the vector body: keep only where y > 0 (NaN clears).
        if y.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            *g = 0.0;
        }
    }
}
