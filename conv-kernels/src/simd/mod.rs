//! A tiny f32-vector trait, its per-ISA implementations, and the macro with which each tier
//! builds its own [`Kernels`](crate::dispatch::Kernels) table.
//!
//! Algorithms are written once, generic over [`F32Vec`] and `#[inline(always)]`, and
//! instantiated inside a per-ISA wrapper: the portable wrapper is an ordinary fn, the AVX2
//! and AVX-512 wrappers carry `#[target_feature(enable = ...)]` so the intrinsics inline into
//! a body compiled for that ISA. Each tier's module (`portable.rs`, `x86_64/avx2.rs`,
//! `x86_64/avx512.rs`) owns its vector type and its `table()`, which instantiates the one
//! kernel list of [`crate::dispatch`] with [`tier_table!`]; a tier that wants a kernel of its
//! own overrides that entry in its `table()`. The dispatch hub only calls a `table()` whose
//! ISA was detected at runtime.

pub(crate) mod portable;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

/// Builds a tier's [`Kernels`](crate::dispatch::Kernels) table: invoked as the callback of
/// `crate::dispatch::with_kernel_list!` with `{ VecType, Isa::Variant, [attributes] }`, where
/// the attributes (e.g. `#[target_feature(enable = "avx2,fma")]`) go on every entry's body.
///
/// Expands to an expression. Each entry is a safe fn calling the generic algorithm inside an
/// `unsafe fn` compiled with the attributes; it is sound only because the expression is
/// evaluated inside the tier's `table()`, whose callers establish the ISA first.
macro_rules! tier_table {
    ({ $vec:ty, $isa:expr, $attrs:tt }
     $( $name:ident => $($generic:ident)::+ : ($($arg:ident : $ty:ty),*) $(-> $ret:ty)? ;)*) => {{
        $( $crate::simd::tier_entry!($attrs $vec; $name => $($generic)::+ : ($($arg : $ty),*) $(-> $ret)?); )*
        $crate::dispatch::Kernels {
            isa: $isa,
            lanes: <$vec as $crate::simd::F32Vec>::LANES,
            $($name,)*
        }
    }};
}
pub(crate) use tier_table;

/// One entry of [`tier_table!`] (a separate macro so the tier's attributes, matched once,
/// can be repeated per entry).
macro_rules! tier_entry {
    ([$($attr:tt)*] $vec:ty; $name:ident => $($generic:ident)::+ : ($($arg:ident : $ty:ty),*) $(-> $ret:ty)?) => {
        fn $name($($arg: $ty),*) $(-> $ret)? {
            $($attr)*
            #[inline]
            unsafe fn body($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: this body is compiled for the tier's ISA (its attributes), the
                // vector type's only precondition.
                unsafe { $($generic)::+::<$vec>($($arg),*) }
            }
            // SAFETY: this fn is only reachable through the table built by its tier's
            // `table()`, which is called only after the tier's ISA was detected (or, for the
            // portable tier, needs nothing beyond the target's baseline).
            unsafe { body($($arg),*) }
        }
    };
}
pub(crate) use tier_entry;

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
    /// The next narrower vector usable inside this tier's code (for the tails of loops that
    /// step by whole vectors): `Avx512` -> `Avx2` -> `Portable`; `Portable` is its own.
    type Half: F32Vec;
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
