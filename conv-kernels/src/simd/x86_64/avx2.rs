//! AVX2+FMA tier: 8 lanes of `core::arch::x86_64` intrinsics, and the tier's table.
//!
//! The methods are only sound to call from code compiled with (or inlined into a fn carrying)
//! `#[target_feature(enable = "avx2,fma")]` on a CPU where both were detected.

use crate::dispatch::{Isa, Kernels, with_kernel_list};
use crate::simd::F32Vec;
use crate::simd::portable::Portable;
use core::arch::x86_64::*;

/// The AVX2+FMA tier's table: every kernel of the list on [`Avx2`].
///
/// # Safety
/// The CPU supports AVX2 and FMA ([`Isa::Avx2Fma`]`.is_available()`).
pub(crate) unsafe fn table() -> Kernels {
    with_kernel_list!(crate::simd::tier_table! {
        Avx2,
        Isa::Avx2Fma,
        [#[target_feature(enable = "avx2,fma")]]
    })
}

/// Eight f32 lanes in a `__m256`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(__m256);

impl Avx2 {
    /// Wraps a raw vector (for the AVX-512 tier's halves).
    #[inline(always)]
    pub(crate) fn from_raw(v: __m256) -> Self {
        Self(v)
    }
}

// SAFETY: loads and stores go through slices whose length is checked first; the only other
// precondition, AVX2+FMA support, is the trait's documented `unsafe` contract.
unsafe impl F32Vec for Avx2 {
    const LANES: usize = 8;
    type Half = Portable;

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        // SAFETY: the caller guarantees AVX (part of AVX2) is available.
        Self(unsafe { _mm256_set1_ps(v) })
    }
    #[inline(always)]
    unsafe fn load(src: &[f32]) -> Self {
        let s = &src[..8];
        // SAFETY: `s` holds 8 readable f32 (checked by the slice above); unaligned load; AVX
        // availability is the caller's precondition.
        Self(unsafe { _mm256_loadu_ps(s.as_ptr()) })
    }
    #[inline(always)]
    unsafe fn store(self, dst: &mut [f32]) {
        let d = &mut dst[..8];
        // SAFETY: `d` holds 8 writable f32 (checked by the slice above); unaligned store.
        unsafe { _mm256_storeu_ps(d.as_mut_ptr(), self.0) }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: AVX availability is the caller's precondition.
        Self(unsafe { _mm256_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        // SAFETY: AVX availability is the caller's precondition.
        Self(unsafe { _mm256_sub_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        // SAFETY: AVX availability is the caller's precondition.
        Self(unsafe { _mm256_mul_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: FMA availability is the caller's precondition.
        Self(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        // `maxps(a, b)` returns `b` when either is NaN: with `self` first, a NaN `self`
        // yields `o`, matching `f32::max(self, o)` for a non-NaN `o`.
        // SAFETY: AVX availability is the caller's precondition.
        Self(unsafe { _mm256_max_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn keep_where_positive(self, y: Self) -> Self {
        // SAFETY: AVX availability is the caller's precondition.
        unsafe {
            let mask = _mm256_cmp_ps::<_CMP_GT_OQ>(y.0, _mm256_setzero_ps());
            Self(_mm256_and_ps(self.0, mask))
        }
    }
    #[inline(always)]
    unsafe fn reduce_sum(self) -> f32 {
        // SAFETY: AVX availability is the caller's precondition.
        unsafe {
            let lo = _mm256_castps256_ps128(self.0);
            let hi = _mm256_extractf128_ps::<1>(self.0);
            let s = _mm_add_ps(lo, hi);
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
            _mm_cvtss_f32(s)
        }
    }
    #[inline(always)]
    unsafe fn load_deinterleave(src: &[f32]) -> (Self, Self) {
        let s = &src[..16];
        // SAFETY: `s` holds 16 readable f32 (checked above), read as two unaligned 8-lane
        // loads; AVX2 availability is the caller's precondition.
        unsafe {
            let lo = _mm256_loadu_ps(s.as_ptr());
            let hi = _mm256_loadu_ps(s[8..].as_ptr());
            // Per 128-bit half: [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6]; then 64-bit blocks
            // reordered 0, 2, 1, 3 gives x0 x2 .. x14 in order (likewise the odd ones).
            let even = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
            let odd = _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi);
            let fix = |v: __m256| {
                _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
            };
            (Self(fix(even)), Self(fix(odd)))
        }
    }
    #[inline(always)]
    unsafe fn transpose_square(src: &[f32], ss: usize, dst: &mut [f32], ds: usize) {
        // Bounds first: the last row of each side must hold 8 values.
        let (_, _) = (&src[7 * ss..][..8], &dst[7 * ds..][..8]);
        // SAFETY: rows 0..8 of both sides lie within the slices (the last one was checked
        // above and strides are non-negative); AVX availability is the caller's precondition.
        unsafe {
            // Plain statements, no closure: a closure would not inherit the target features.
            let mut r = [_mm256_setzero_ps(); 8];
            for (i, row) in r.iter_mut().enumerate() {
                *row = _mm256_loadu_ps(src.as_ptr().add(i * ss));
            }
            // Pairs of rows interleaved, then pairs of pairs, then the 128-bit halves.
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0b01_00_01_00>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0b11_10_11_10>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0b01_00_01_00>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0b11_10_11_10>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0b01_00_01_00>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0b11_10_11_10>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0b01_00_01_00>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0b11_10_11_10>(t5, t7);
            let out = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (j, v) in out.iter().enumerate() {
                _mm256_storeu_ps(dst.as_mut_ptr().add(j * ds), *v);
            }
        }
    }
    #[inline(always)]
    unsafe fn select_gt(self, than: Self, a: Self, b: Self) -> Self {
        // SAFETY: AVX availability is the caller's precondition.
        unsafe {
            let mask = _mm256_cmp_ps::<_CMP_GT_OQ>(self.0, than.0);
            Self(_mm256_blendv_ps(b.0, a.0, mask))
        }
    }
    #[inline(always)]
    unsafe fn store_index(self, dst: &mut [u32]) {
        let d = &mut dst[..8];
        // SAFETY: `d` holds 8 writable u32 (checked above), written by one unaligned 256-bit
        // store; AVX availability is the caller's precondition.
        unsafe {
            let i = _mm256_cvttps_epi32(self.0);
            _mm256_storeu_si256(d.as_mut_ptr().cast::<__m256i>(), i)
        }
    }
}
