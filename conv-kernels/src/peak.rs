//! The machine's one-core floating-point peak, per SIMD tier: a probe of independent FMA
//! chains, so kernel and model figures can be stated as a fraction of what this CPU can do
//! (not only of another library's GEMM).
//!
//! Twelve accumulators, each updated by one fused multiply-add per iteration, hide the FMA
//! latency (4-5 cycles) behind the two FMA pipes of current x86 and ARM cores. The chains
//! never touch memory, so the rate is the arithmetic ceiling of the tier.

use std::time::Instant;

use crate::dispatch::Kernels;
use crate::simd::F32Vec;

/// Independent accumulator chains of the probe.
pub const CHAINS: usize = 12;

/// `iters` rounds of `CHAINS` vector FMAs; returns a value that depends on all of them.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn fma_chains_simd<V: F32Vec>(iters: usize) -> f32 {
    // SAFETY: the caller guarantees `V`'s ISA; no memory is accessed.
    unsafe {
        let m = V::splat(std::hint::black_box(0.999_999));
        let c = V::splat(std::hint::black_box(1e-7));
        let mut acc = [V::splat(1.0); CHAINS];
        for _ in 0..iters {
            for a in &mut acc {
                *a = a.mul_add(m, c);
            }
        }
        let mut s = V::splat(0.0);
        for a in acc {
            s = s.add(a);
        }
        s.reduce_sum()
    }
}

impl Kernels {
    /// FLOPs (a multiply-add counts 2) done by [`Kernels::fma_probe`] for `iters`.
    pub fn fma_probe_flops(&self, iters: usize) -> u64 {
        (iters * CHAINS * self.lanes * 2) as u64
    }

    /// Runs the FMA probe for `iters` iterations on this tier (see [`Kernels::fma_probe_flops`]).
    pub fn fma_probe(&self, iters: usize) -> f32 {
        (self.fma_chains)(iters)
    }

    /// This tier's one-core peak in GFLOP/s: the best of `runs` probes of `iters` each
    /// (the best, not the median: interruptions only ever slow a probe down).
    pub fn peak_gflops(&self, iters: usize, runs: usize) -> f64 {
        let mut best = 0.0f64;
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            std::hint::black_box(self.fma_probe(iters));
            let s = t.elapsed().as_secs_f64();
            best = best.max(self.fma_probe_flops(iters) as f64 / s / 1e9);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use crate::dispatch::{Isa, Kernels};

    #[test]
    fn probe_computes_the_chains_on_every_tier() {
        for isa in Isa::ALL {
            let Some(k) = Kernels::for_isa(isa) else {
                continue;
            };
            // Each lane: a <- a * m + c from 1, `iters` times; CHAINS * lanes lanes summed.
            let (m, c, iters) = (0.999_999f64, 1e-7f64, 1000);
            let mut a = 1.0f64;
            for _ in 0..iters {
                a = a * m + c;
            }
            let want = a * (super::CHAINS * k.lanes) as f64;
            let got = f64::from(k.fma_probe(iters));
            assert!((got - want).abs() < 1e-3 * want, "{isa:?}: {got} vs {want}");
            assert!(k.peak_gflops(10_000, 2) > 0.0);
        }
    }
}
