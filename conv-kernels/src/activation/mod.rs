//! ReLU forward and backward over flat slices, plus the small element-wise helpers the other
//! kernels share (fused bias + ReLU epilogue, `dst += src`, fixed-order sums).
//!
//! Each body is written once, generic over the crate-private `F32Vec` trait, and instantiated per tier by
//! [`crate::dispatch`].

pub mod reference;

/// Epilogue fused into a forward kernel (conv2d, dense).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
}

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

// ---- generic bodies (instantiated per tier in dispatch.rs) ----
//
// # Safety (all of them)
// The CPU supports `V`'s ISA. Lengths are the caller's (checked) business; bodies only zip
// slices, so a mismatch shortens the loop instead of reading out of bounds.

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

/// `x = act(x + b)`: the fused epilogue of conv2d and dense.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn bias_act_simd<V: F32Vec>(x: &mut [f32], b: f32, relu: bool) {
    let mut xs = x.chunks_exact_mut(V::LANES);
    // SAFETY: the caller guarantees `V`'s ISA.
    unsafe {
        let bv = V::splat(b);
        let zero = V::splat(0.0);
        if relu {
            for x in &mut xs {
                V::load(x).add(bv).max(zero).store(x);
            }
        } else {
            for x in &mut xs {
                V::load(x).add(bv).store(x);
            }
        }
    }
    for x in xs.into_remainder() {
        let v = *x + b;
        *x = if relu { v.max(0.0) } else { v };
    }
}

/// `dst += src` (lengths zipped).
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn add_assign_simd<V: F32Vec>(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut ds = dst.chunks_exact_mut(V::LANES);
    let mut ss = src.chunks_exact(V::LANES);
    // SAFETY: the caller guarantees `V`'s ISA.
    unsafe {
        for (d, s) in (&mut ds).zip(&mut ss) {
            V::load(d).add(V::load(s)).store(d);
        }
    }
    for (d, &s) in ds.into_remainder().iter_mut().zip(ss.remainder()) {
        *d += s;
    }
}

/// Sum of `x` in a fixed order (lane-wise partial sums, then lanes, then the tail).
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn sum_simd<V: F32Vec>(x: &[f32]) -> f32 {
    let mut xs = x.chunks_exact(V::LANES);
    // SAFETY: the caller guarantees `V`'s ISA.
    let mut total = unsafe {
        let mut acc = V::splat(0.0);
        for x in &mut xs {
            acc = acc.add(V::load(x));
        }
        acc.reduce_sum()
    };
    for &v in xs.remainder() {
        total += v;
    }
    total
}
