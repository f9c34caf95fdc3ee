//! Helpers shared by the test binaries: tiers to run, deterministic data, float comparison.
#![allow(dead_code)]

use conv_kernels::{Isa, Kernels};

/// Every tier this host can run. AVX2 missing is a skip (printed), or a failure when
/// `FEDGE_REQUIRE_AVX2=1` (CI), so the fast path is never silently untested there.
pub fn tiers() -> Vec<&'static Kernels> {
    let mut v = vec![Kernels::for_isa(Isa::Portable).expect("portable tier always exists")];
    match Kernels::for_isa(Isa::Avx2Fma) {
        Some(k) => v.push(k),
        None => {
            if std::env::var("FEDGE_REQUIRE_AVX2").as_deref() == Ok("1") {
                panic!(
                    "FEDGE_REQUIRE_AVX2=1 but this CPU has no AVX2+FMA: the AVX2 tier cannot be tested"
                );
            }
            eprintln!("note: AVX2+FMA not available, skipping the avx2 tier");
        }
    }
    v
}

/// Deterministic values in [-1, 1) from a seed (xorshift64*).
pub fn values(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let r = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
            ((r >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Asserts `|got - want| <= rel * scale + abs` element-wise, where `scale[i]` is the sum of the
/// absolute values of the terms that produced `want[i]`.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], scale: &[f32], rel: f32, abs: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let tol = rel * s + abs;
        assert!(
            (g - w).abs() <= tol,
            "{what}: index {i}: got {g}, expected {w}, |diff| {} > tolerance {tol}",
            (g - w).abs()
        );
    }
}

/// Element-wise absolute values.
pub fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Bit patterns, for bit-identity asserts.
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
