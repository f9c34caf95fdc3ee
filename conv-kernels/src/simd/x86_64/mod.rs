//! x86_64 tiers: AVX2+FMA (8 lanes) and AVX-512 (16 lanes), each in its own module with its
//! vector type and its kernel table, and their runtime detection.

pub(crate) mod avx2;
pub(crate) mod avx512;

pub(crate) use avx2::Avx2;
pub(crate) use avx512::Avx512;

/// Whether the CPU has AVX2 and FMA.
pub(crate) fn avx2_fma_detected() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Whether the CPU has everything the AVX-512 tier is compiled for
/// (`avx512f,avx2,fma`): AVX-512F, and AVX2 + FMA for the 8-lane tails it shares with
/// the AVX2 tier.
pub(crate) fn avx512_detected() -> bool {
    std::is_x86_feature_detected!("avx512f") && avx2_fma_detected()
}
