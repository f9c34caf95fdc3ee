//! Helpers shared by the test binaries: tiers to run, deterministic data, float comparison.
#![allow(dead_code)]

use conv_kernels::{Isa, Kernels};

/// Every tier this host can run, narrowest first. A missing AVX2 or AVX-512 tier is a skip
/// (printed), or a failure when `FEDGE_REQUIRE_AVX2=1` / `FEDGE_REQUIRE_AVX512=1` (CI, and
/// machines known to have it), so a fast path is never silently untested there.
pub fn tiers() -> Vec<&'static Kernels> {
    let mut v = Vec::new();
    for isa in Isa::ALL {
        match Kernels::for_isa(isa) {
            Some(k) => v.push(k),
            None => {
                let var = match isa {
                    Isa::Avx512 => "FEDGE_REQUIRE_AVX512",
                    _ => "FEDGE_REQUIRE_AVX2",
                };
                let required = std::env::var(var).as_deref() == Ok("1")
                    && (isa == Isa::Avx512 || isa == Isa::Avx2Fma);
                assert!(
                    !required,
                    "{var}=1 but this CPU lacks the {} tier: it cannot be tested",
                    isa.name()
                );
                eprintln!(
                    "note: the {} tier is not available here, skipped",
                    isa.name()
                );
            }
        }
    }
    assert_eq!(v[0].isa(), Isa::Portable, "the portable tier always exists");
    v
}

/// The widest vector of any tier: tails and offsets in the tests cover every residue mod it.
pub const MAX_LANES: usize = 16;

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
