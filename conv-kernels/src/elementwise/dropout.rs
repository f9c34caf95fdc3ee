//! Inverted dropout given a mask: an element-wise product. The mask (0 or `1/(1-rate)` per
//! element) is drawn by the caller from its seeded RNG, so the kernels stay pure.

use crate::dispatch::{Kernels, kernels};
use crate::error::{Result, check_len};
use crate::simd::F32Vec;

/// `out = input * mask`.
pub fn dropout_forward(input: &[f32], mask: &[f32], out: &mut [f32]) -> Result<()> {
    kernels().dropout_forward(input, mask, out)
}

/// In place `x *= mask`.
pub fn dropout_forward_inplace(x: &mut [f32], mask: &[f32]) -> Result<()> {
    kernels().dropout_forward_inplace(x, mask)
}

/// `grad_input = grad_out * mask` (the same mask as the forward pass).
pub fn dropout_backward(grad_out: &[f32], mask: &[f32], grad_input: &mut [f32]) -> Result<()> {
    kernels().dropout_backward(grad_out, mask, grad_input)
}

impl Kernels {
    /// [`dropout_forward`] on this tier.
    pub fn dropout_forward(&self, input: &[f32], mask: &[f32], out: &mut [f32]) -> Result<()> {
        const OP: &str = "dropout_forward";
        check_len(OP, "mask", mask.len(), input.len())?;
        check_len(OP, "out", out.len(), input.len())?;
        (self.mul)(input, mask, out);
        Ok(())
    }
    /// [`dropout_forward_inplace`] on this tier.
    pub fn dropout_forward_inplace(&self, x: &mut [f32], mask: &[f32]) -> Result<()> {
        check_len("dropout_forward_inplace", "mask", mask.len(), x.len())?;
        (self.mul_inplace)(x, mask);
        Ok(())
    }
    /// [`dropout_backward`] on this tier.
    pub fn dropout_backward(
        &self,
        grad_out: &[f32],
        mask: &[f32],
        grad_input: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "dropout_backward";
        check_len(OP, "mask", mask.len(), grad_out.len())?;
        check_len(OP, "grad_input", grad_input.len(), grad_out.len())?;
        (self.mul)(grad_out, mask, grad_input);
        Ok(())
    }
}

/// `out = a * b` (lengths zipped).
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn mul_simd<V: F32Vec>(a: &[f32], b: &[f32], out: &mut [f32]) {
    let n = a.len().min(b.len()).min(out.len());
    let (a, b, out) = (&a[..n], &b[..n], &mut out[..n]);
    let mut as_ = a.chunks_exact(V::LANES);
    let mut bs = b.chunks_exact(V::LANES);
    let mut os = out.chunks_exact_mut(V::LANES);
    // SAFETY: the caller guarantees `V`'s ISA.
    unsafe {
        for ((a, b), o) in (&mut as_).zip(&mut bs).zip(&mut os) {
            V::load(a).mul(V::load(b)).store(o);
        }
    }
    for ((o, &a), &b) in os
        .into_remainder()
        .iter_mut()
        .zip(as_.remainder())
        .zip(bs.remainder())
    {
        *o = a * b;
    }
}

/// `x *= m` (lengths zipped).
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn mul_inplace_simd<V: F32Vec>(x: &mut [f32], m: &[f32]) {
    let n = x.len().min(m.len());
    let (x, m) = (&mut x[..n], &m[..n]);
    let mut xs = x.chunks_exact_mut(V::LANES);
    let mut ms = m.chunks_exact(V::LANES);
    // SAFETY: the caller guarantees `V`'s ISA.
    unsafe {
        for (x, m) in (&mut xs).zip(&mut ms) {
            V::load(x).mul(V::load(m)).store(x);
        }
    }
    for (x, &m) in xs.into_remainder().iter_mut().zip(ms.remainder()) {
        *x *= m;
    }
}
