//! The element-wise arithmetic other kernels share: the fused bias + activation epilogue,
//! `dst += src`, and sums in a fixed order (for bit-identical reductions).

use crate::simd::F32Vec;

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
