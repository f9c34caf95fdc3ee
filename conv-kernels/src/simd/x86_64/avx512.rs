//! AVX-512 tier: 16 lanes of `core::arch::x86_64` intrinsics (`__m512`, FMA), and the tier's
//! table.
//!
//! Only AVX-512F instructions are used (masks from compares, `vpermt2ps` for the
//! deinterleave); the tier is compiled with AVX2 and FMA as well, so the 8-lane [`Avx2`]
//! vector serves as its `Half` in loop tails. The methods are only sound to call from code
//! compiled with (or inlined into a fn carrying) `#[target_feature(enable = "avx512f,avx2,fma")]` on a
//! CPU where all of them were detected.

use super::Avx2;
use crate::dispatch::{Isa, Kernels, with_kernel_list};
use crate::simd::F32Vec;
use core::arch::x86_64::*;

/// The AVX-512 tier's table: every kernel of the list on [`Avx512`].
///
/// # Safety
/// The CPU supports AVX-512F, AVX2 and FMA ([`Isa::Avx512`]`.is_available()`).
pub(crate) unsafe fn table() -> Kernels {
    with_kernel_list!(crate::simd::tier_table! {
        Avx512,
        Isa::Avx512,
        [#[target_feature(enable = "avx512f,avx2,fma")]]
    })
}

/// Sixteen f32 lanes in a `__m512`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(__m512);

// SAFETY: loads and stores go through slices whose length is checked first; the only other
// precondition, support for AVX-512F/AVX2/FMA, is the trait's documented `unsafe` contract.
unsafe impl F32Vec for Avx512 {
    const LANES: usize = 16;
    type Half = Avx2;

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        // SAFETY: AVX-512F availability is the caller's precondition.
        Self(unsafe { _mm512_set1_ps(v) })
    }
    #[inline(always)]
    unsafe fn load(src: &[f32]) -> Self {
        let s = &src[..16];
        // SAFETY: `s` holds 16 readable f32 (checked by the slice above); unaligned load;
        // AVX-512F availability is the caller's precondition.
        Self(unsafe { _mm512_loadu_ps(s.as_ptr()) })
    }
    #[inline(always)]
    unsafe fn store(self, dst: &mut [f32]) {
        let d = &mut dst[..16];
        // SAFETY: `d` holds 16 writable f32 (checked by the slice above); unaligned store.
        unsafe { _mm512_storeu_ps(d.as_mut_ptr(), self.0) }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: AVX-512F availability is the caller's precondition.
        Self(unsafe { _mm512_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        // SAFETY: AVX-512F availability is the caller's precondition.
        Self(unsafe { _mm512_sub_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        // SAFETY: AVX-512F availability is the caller's precondition.
        Self(unsafe { _mm512_mul_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: AVX-512F availability is the caller's precondition.
        Self(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        // `vmaxps` returns the second operand when either is NaN: with `self` first, a NaN
        // `self` yields `o`, as on the AVX2 tier.
        // SAFETY: AVX-512F availability is the caller's precondition.
        Self(unsafe { _mm512_max_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn keep_where_positive(self, y: Self) -> Self {
        // SAFETY: AVX-512F availability is the caller's precondition.
        unsafe {
            let mask = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(y.0, _mm512_setzero_ps());
            Self(_mm512_maskz_mov_ps(mask, self.0))
        }
    }
    #[inline(always)]
    unsafe fn reduce_sum(self) -> f32 {
        // Fixed order: the two 256-bit halves added, then the AVX2 tier's order.
        // SAFETY: AVX-512F (and AVX, for the 256-bit half) availability is the caller's
        // precondition.
        unsafe {
            let lo = _mm512_castps512_ps256(self.0);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self.0)));
            Avx2::from_raw(_mm256_add_ps(lo, hi)).reduce_sum()
        }
    }
    #[inline(always)]
    unsafe fn load_deinterleave(src: &[f32]) -> (Self, Self) {
        let s = &src[..32];
        // SAFETY: `s` holds 32 readable f32 (checked above), read as two unaligned 16-lane
        // loads; AVX-512F availability is the caller's precondition.
        unsafe {
            let lo = _mm512_loadu_ps(s.as_ptr());
            let hi = _mm512_loadu_ps(s[16..].as_ptr());
            // Index i < 16 picks lane i of `lo`, 16 + i lane i of `hi`.
            let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            (
                Self(_mm512_permutex2var_ps(lo, even, hi)),
                Self(_mm512_permutex2var_ps(lo, odd, hi)),
            )
        }
    }
    #[inline(always)]
    unsafe fn transpose_square(src: &[f32], ss: usize, dst: &mut [f32], ds: usize) {
        // Four 8x8 blocks: block (i, j) of the source is block (j, i) of the destination.
        for (bi, bj) in [(0, 0), (0, 8), (8, 0), (8, 8)] {
            // SAFETY: the tier's ISA includes AVX2 (the caller's precondition); the slices
            // are bounds-checked by the callee.
            unsafe {
                Avx2::transpose_square(&src[bi * ss + bj..], ss, &mut dst[bj * ds + bi..], ds)
            };
        }
    }
    #[inline(always)]
    unsafe fn select_gt(self, than: Self, a: Self, b: Self) -> Self {
        // SAFETY: AVX-512F availability is the caller's precondition.
        unsafe {
            let mask = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, than.0);
            // Lanes whose mask bit is set take the second operand.
            Self(_mm512_mask_blend_ps(mask, b.0, a.0))
        }
    }
    #[inline(always)]
    unsafe fn store_index(self, dst: &mut [u32]) {
        let d = &mut dst[..16];
        // SAFETY: `d` holds 16 writable u32 (checked above), written by one unaligned 512-bit
        // store; AVX-512F availability is the caller's precondition.
        unsafe {
            let i = _mm512_cvttps_epi32(self.0);
            _mm512_storeu_epi32(d.as_mut_ptr().cast::<i32>(), i)
        }
    }
}
