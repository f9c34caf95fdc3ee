//! Portable tier: `wide::f32x4`, which is SSE2 on x86_64 and NEON on aarch64 (both baseline).
//! Always present: the fallback of every other tier and the table they start from.

use super::F32Vec;
use crate::dispatch::{Isa, Kernels, with_kernel_list};
use wide::f32x4;

/// The portable tier's table: every kernel of the list on [`Portable`].
pub(crate) fn table() -> Kernels {
    with_kernel_list!(crate::simd::tier_table! { Portable, Isa::Portable, [] })
}

/// Four f32 lanes on the baseline ISA of the target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Portable(f32x4);

// SAFETY: every method is plain safe `wide` code on baseline instructions; memory access is
// through bounds-checked slice indexing.
unsafe impl F32Vec for Portable {
    const LANES: usize = 4;
    type Half = Portable;

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Self(f32x4::splat(v))
    }
    #[inline(always)]
    unsafe fn load(src: &[f32]) -> Self {
        let a: [f32; 4] = [src[0], src[1], src[2], src[3]];
        Self(f32x4::from(a))
    }
    #[inline(always)]
    unsafe fn store(self, dst: &mut [f32]) {
        dst[..4].copy_from_slice(&self.0.to_array());
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Self(self.0 + o.0)
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Self(self.0 - o.0)
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Self(self.0 * o.0)
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        Self(self.0.mul_add(b.0, c.0))
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        // `wide`'s max returns the non-NaN operand, like `f32::max`.
        Self(self.0.max(o.0))
    }
    #[inline(always)]
    unsafe fn keep_where_positive(self, y: Self) -> Self {
        let mask = y.0.simd_gt(f32x4::ZERO);
        Self(self.0 & mask)
    }
    #[inline(always)]
    unsafe fn reduce_sum(self) -> f32 {
        let a = self.0.to_array();
        (a[0] + a[1]) + (a[2] + a[3])
    }
    #[inline(always)]
    unsafe fn load_deinterleave(src: &[f32]) -> (Self, Self) {
        let s = &src[..8];
        (
            Self(f32x4::from([s[0], s[2], s[4], s[6]])),
            Self(f32x4::from([s[1], s[3], s[5], s[7]])),
        )
    }
    #[inline(always)]
    unsafe fn select_gt(self, than: Self, a: Self, b: Self) -> Self {
        Self(self.0.simd_gt(than.0).bitselect(a.0, b.0))
    }
    #[inline(always)]
    unsafe fn store_index(self, dst: &mut [u32]) {
        let v = self.0.fast_trunc_int().to_array();
        let d = &mut dst[..4];
        for (d, v) in d.iter_mut().zip(v) {
            *d = v as u32;
        }
    }
}
