//! A tiny f32-vector trait and its per-ISA implementations.
//!
//! Algorithms are written once, generic over [`F32Vec`] and `#[inline(always)]`, and
//! instantiated inside a per-ISA wrapper: the portable wrapper is an ordinary fn, the AVX2
//! wrapper carries `#[target_feature(enable = "avx2,fma")]` so the intrinsics inline into a
//! body compiled for that ISA. The dispatch table ([`crate::dispatch`]) only ever installs a
//! wrapper whose ISA was detected at runtime.

pub(crate) mod portable;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

/// A vector of `LANES` f32 lanes.
///
/// Every method is `unsafe` for one reason only: an implementation may be compiled for an
/// ISA extension (AVX2+FMA) that the CPU must support. Memory accesses are through slices
/// and bounds-checked, so they cannot go out of bounds.
///
/// # Safety
/// Implementors must keep every method memory-safe given only that CPU-support precondition.
pub(crate) unsafe trait F32Vec: Copy {
    /// Lanes per vector.
    const LANES: usize;
    /// All lanes `v`.
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn splat(v: f32) -> Self;
    /// Loads the first `LANES` elements of `src` (panics if shorter).
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn load(src: &[f32]) -> Self;
    /// Stores into the first `LANES` elements of `dst` (panics if shorter).
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn store(self, dst: &mut [f32]);
    /// Lane-wise `self + o`.
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn add(self, o: Self) -> Self;
    /// Lane-wise `self - o`.
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn sub(self, o: Self) -> Self;
    /// Lane-wise `self * o`.
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn mul(self, o: Self) -> Self;
    /// Lane-wise `self * b + c` (fused where the ISA has FMA).
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// Lane-wise maximum; a NaN in `self` yields `o` (as `f32::max(self, o)` does for `o` = 0).
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn max(self, o: Self) -> Self;
    /// Lane-wise `if y > 0 { self } else { 0 }`.
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn keep_where_positive(self, y: Self) -> Self;
    /// Sum of the lanes, in a fixed order.
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn reduce_sum(self) -> f32;
    /// Loads `2 * LANES` elements of `src` (panics if shorter) split into the even-indexed
    /// and the odd-indexed ones, each in order.
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn load_deinterleave(src: &[f32]) -> (Self, Self);
    /// Lane-wise `if self > than { a } else { b }` (ordered: false when either is NaN).
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn select_gt(self, than: Self, a: Self, b: Self) -> Self;
    /// Stores lanes holding integers in `[0, 2^24]` as `u32` into the first `LANES` elements of
    /// `dst` (panics if shorter).
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn store_index(self, dst: &mut [u32]);
}
