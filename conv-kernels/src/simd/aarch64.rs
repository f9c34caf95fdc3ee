//! NEON tier (aarch64): 4 lanes of `core::arch::aarch64` intrinsics in a `float32x4_t`, with
//! fused multiply-add (`vfmaq_f32`), native deinterleaving loads (`vld2q_f32`) and bit
//! selects; and the tier's table.
//!
//! NEON is part of the aarch64 baseline (every aarch64 Rust target enables it), so the tier
//! needs no runtime detection: it is available wherever this module is compiled (its
//! entries still carry `target_feature(enable = "neon")`, which Rust asks of intrinsic
//! callers). It replaces the portable tier (`wide::f32x4`, which rounds a
//! multiply-add twice) as the best tier on ARM edge boards; the portable tier stays as the
//! forced fallback (`FEDGE_SIMD=portable`).

use crate::dispatch::{Isa, Kernels, with_kernel_list};
use crate::simd::F32Vec;
use core::arch::aarch64::*;

/// The NEON tier's table: every kernel of the list on [`Neon`].
pub(crate) fn table() -> Kernels {
    with_kernel_list!(crate::simd::tier_table! {
        Neon,
        Isa::Neon,
        [#[target_feature(enable = "neon")]]
    })
}

/// Four f32 lanes in a NEON `float32x4_t`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon(float32x4_t);

// SAFETY: loads and stores go through slices whose length is checked first; NEON is part of
// the aarch64 baseline, so there is no further precondition.
unsafe impl F32Vec for Neon {
    const LANES: usize = 4;
    type Half = Neon;

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        // SAFETY: NEON is part of the aarch64 baseline.
        Self(unsafe { vdupq_n_f32(v) })
    }
    #[inline(always)]
    unsafe fn load(src: &[f32]) -> Self {
        let s = &src[..4];
        // SAFETY: `s` holds 4 readable f32 (checked by the slice above); `vld1q_f32` has no
        // alignment requirement beyond f32's.
        Self(unsafe { vld1q_f32(s.as_ptr()) })
    }
    #[inline(always)]
    unsafe fn store(self, dst: &mut [f32]) {
        let d = &mut dst[..4];
        // SAFETY: `d` holds 4 writable f32 (checked by the slice above).
        unsafe { vst1q_f32(d.as_mut_ptr(), self.0) }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: NEON is part of the aarch64 baseline.
        Self(unsafe { vaddq_f32(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        // SAFETY: NEON is part of the aarch64 baseline.
        Self(unsafe { vsubq_f32(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        // SAFETY: NEON is part of the aarch64 baseline.
        Self(unsafe { vmulq_f32(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // `vfmaq_f32(a, b, c)` is `a + b * c`, rounded once.
        // SAFETY: NEON is part of the aarch64 baseline.
        Self(unsafe { vfmaq_f32(c.0, self.0, b.0) })
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        // `fmaxnm`: a NaN operand yields the other one, so a NaN `self` yields `o` (plain
        // `fmax` would propagate the NaN).
        // SAFETY: NEON is part of the aarch64 baseline.
        Self(unsafe { vmaxnmq_f32(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn keep_where_positive(self, y: Self) -> Self {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe {
            let mask = vcgtq_f32(y.0, vdupq_n_f32(0.0));
            Self(vreinterpretq_f32_u32(vandq_u32(
                vreinterpretq_u32_f32(self.0),
                mask,
            )))
        }
    }
    #[inline(always)]
    unsafe fn reduce_sum(self) -> f32 {
        // Fixed order: (a0 + a1) + (a2 + a3), as the portable tier.
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe {
            let p = vpaddq_f32(self.0, self.0);
            vgetq_lane_f32::<0>(p) + vgetq_lane_f32::<1>(p)
        }
    }
    #[inline(always)]
    unsafe fn load_deinterleave(src: &[f32]) -> (Self, Self) {
        let s = &src[..8];
        // SAFETY: `s` holds 8 readable f32 (checked above), which `vld2q_f32` reads and
        // splits into the even- and the odd-indexed ones.
        let v = unsafe { vld2q_f32(s.as_ptr()) };
        (Self(v.0), Self(v.1))
    }
    #[inline(always)]
    unsafe fn select_gt(self, than: Self, a: Self, b: Self) -> Self {
        // Ordered compare: false when either is NaN, as the other tiers.
        // SAFETY: NEON is part of the aarch64 baseline.
        Self(unsafe { vbslq_f32(vcgtq_f32(self.0, than.0), a.0, b.0) })
    }
    #[inline(always)]
    unsafe fn store_index(self, dst: &mut [u32]) {
        let d = &mut dst[..4];
        // SAFETY: `d` holds 4 writable u32 (checked above); NEON is part of the aarch64
        // baseline.
        unsafe { vst1q_u32(d.as_mut_ptr(), vcvtq_u32_f32(self.0)) }
    }
}
