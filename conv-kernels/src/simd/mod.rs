//! A tiny f32-vector trait, its per-ISA implementations, and the macro with which each tier
//! builds its own [`Kernels`](crate::dispatch::Kernels) table.
//!
//! Algorithms are written once, generic over [`F32Vec`] and `#[inline(always)]`, and
//! instantiated inside a per-ISA wrapper: the portable wrapper is an ordinary fn; the NEON,
//! AVX2 and AVX-512 wrappers carry `#[target_feature(enable = ...)]` so the intrinsics
//! inline into a body compiled for that ISA. Each tier's module (`portable.rs`,
//! `aarch64.rs`, `x86_64/avx2.rs`, `x86_64/avx512.rs`) owns its vector type and its
//! `table()`, which instantiates the one kernel list of [`crate::dispatch`] with
//! [`tier_table!`]; a tier that wants a kernel of its own overrides that entry in its
//! `table()`. The dispatch hub only calls a `table()` whose ISA was detected at runtime
//! (NEON is baseline on aarch64).

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;
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
            // portable and NEON tiers, needs nothing beyond the target's baseline).
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
    /// step by whole vectors): `Avx512` -> `Avx2` -> `Portable`; 4-lane types are their own.
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
    /// Transposes one `LANES x LANES` block: `dst[j * ds + i] = src[i * ss + j]` for `i, j <
    /// LANES` (panics if a slice is too short). Scalar here; tiers with shuffles override it.
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    #[inline(always)]
    unsafe fn transpose_square(src: &[f32], ss: usize, dst: &mut [f32], ds: usize) {
        for i in 0..Self::LANES {
            let row = &src[i * ss..][..Self::LANES];
            for (j, &v) in row.iter().enumerate() {
                dst[j * ds + i] = v;
            }
        }
    }
    /// Stores lanes holding integers in `[0, 2^24]` as `u32` into the first `LANES` elements of
    /// `dst` (panics if shorter).
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn store_index(self, dst: &mut [u32]);
}

#[cfg(test)]
mod tests {
    use super::F32Vec;
    use proptest::prelude::*;

    /// `V::transpose_square` against the index formula, with strides past the block.
    fn check_transpose<V: F32Vec>(ss_pad: usize, ds_pad: usize, seed: u32) {
        let l = V::LANES;
        let (ss, ds) = (l + ss_pad, l + ds_pad);
        let src: Vec<f32> = (0..l * ss).map(|i| (i as u32 ^ seed) as f32).collect();
        let mut dst = vec![f32::NAN; l * ds];
        // SAFETY: callers only instantiate `V` with a tier whose ISA was detected.
        unsafe { V::transpose_square(&src, ss, &mut dst, ds) };
        for i in 0..l {
            for j in 0..l {
                assert_eq!(
                    dst[j * ds + i].to_bits(),
                    src[i * ss + j].to_bits(),
                    "{i} {j}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn transpose_square_matches_index_formula_on_every_tier(
            ss_pad in 0usize..20, ds_pad in 0usize..20, seed in any::<u32>(),
        ) {
            check_transpose::<super::portable::Portable>(ss_pad, ds_pad, seed);
            #[cfg(target_arch = "x86_64")]
            {
                use crate::dispatch::Isa;
                if Isa::Avx2Fma.is_available() {
                    check_transpose::<super::x86_64::Avx2>(ss_pad, ds_pad, seed);
                }
                if Isa::Avx512.is_available() {
                    check_transpose::<super::x86_64::Avx512>(ss_pad, ds_pad, seed);
                }
            }
            #[cfg(target_arch = "aarch64")]
            check_transpose::<super::aarch64::Neon>(ss_pad, ds_pad, seed);
        }
    }
}
