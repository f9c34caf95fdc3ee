//! Max-pooling over NCHW planes: forward records the argmax, backward scatters through it.
//!
//! Paths: a 2x2 stride-2 fast path (the Table 1 model's pools) on the dispatched SIMD tier
//! (16 outputs per step on AVX-512, then 8, then 4, then scalar: even/odd columns
//! deinterleaved, compare and blend, indices carried as exact f32), bit-identical to the reference in values and
//! argmax; and a general k/stride path. Planes run in parallel above the work threshold; each
//! plane is independent, so results do not depend on the thread count.

pub mod reference;

use crate::dispatch::{Kernels, kernels};
use crate::error::{KernelError, Result, check_len};
use crate::geometry::Pool2dGeometry;
use crate::simd::F32Vec;
use crate::simd::portable::Portable;
use rayon::prelude::*;

/// Forward max-pool. `argmax[i]` receives the in-plane index (`ih * in_w + iw`) of output `i`'s
/// maximum (the first one in row-major window order on ties; NaN never wins).
///
/// # Shapes
/// input `[N, C, H, W]`, out and argmax `[N, C, OH, OW]`.
pub fn maxpool2d_forward(
    g: &Pool2dGeometry,
    input: &[f32],
    out: &mut [f32],
    argmax: &mut [u32],
) -> Result<()> {
    kernels().maxpool2d_forward(g, input, out, argmax)
}

/// Backward max-pool (overwrites `grad_input`).
///
/// # Shapes
/// grad_out and argmax `[N, C, OH, OW]`, grad_input `[N, C, H, W]`.
pub fn maxpool2d_backward(
    g: &Pool2dGeometry,
    grad_out: &[f32],
    argmax: &[u32],
    grad_input: &mut [f32],
) -> Result<()> {
    kernels().maxpool2d_backward(g, grad_out, argmax, grad_input)
}

/// Largest input plane the SIMD 2x2 path handles: it carries indices as f32, exact below 2^24.
const SIMD_MAX_PLANE: usize = 1 << 24;

/// Outputs `ows` of row `oh` of one plane, 2x2 window, stride 2, scalar; the argmax is
/// written only when `ARGMAX` (else `argmax` may be empty).
fn row_2x2_scalar<const ARGMAX: bool>(
    g: &Pool2dGeometry,
    x: &[f32],
    oh: usize,
    ows: std::ops::Range<usize>,
    out: &mut [f32],
    argmax: &mut [u32],
) {
    let w = g.in_w;
    let r0 = &x[2 * oh * w..][..w];
    let r1 = &x[(2 * oh + 1) * w..][..w];
    let o = &mut out[oh * g.out_w..][..g.out_w];
    for ow in ows {
        let c = 2 * ow;
        let base = 2 * oh * w + c;
        // Same rule as the reference (first maximum, NaN never wins), branch-free: the
        // selects are marked unpredictable (cmov), so random data costs no mispredictions.
        let mut best = f32::NEG_INFINITY;
        let mut bi = base;
        for (v, i) in [
            (r0[c], base),
            (r0[c + 1], base + 1),
            (r1[c], base + w),
            (r1[c + 1], base + w + 1),
        ] {
            let take = v > best;
            bi = std::hint::select_unpredictable(take, i, bi);
            best = std::hint::select_unpredictable(take, v, best);
        }
        o[ow] = x[bi];
        if ARGMAX {
            argmax[oh * g.out_w + ow] = bi as u32;
        }
    }
}

/// `V::LANES` outputs of row `oh` from column `ow` on (the caller checked they exist).
///
/// The reference's rule, lane-wise: `best` starts at -inf and a candidate replaces it only
/// when strictly greater (ordered compare: NaN never wins), in row-major window order; the
/// output is the *input value* at the winning index (the window's first element when none
/// wins, NaN or -inf included), so values and argmax are bit-identical to the reference.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn vec_2x2<V: F32Vec, const ARGMAX: bool>(
    g: &Pool2dGeometry,
    x: &[f32],
    oh: usize,
    ow: usize,
    out: &mut [f32],
    argmax: &mut [u32],
) {
    const STEPS: [f32; 16] = [
        0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0, 26.0, 28.0, 30.0,
    ];
    let w = g.in_w;
    let c = 2 * ow;
    let base = 2 * oh * w + c;
    let o = oh * g.out_w + ow;
    // SAFETY: the caller guarantees `V`'s ISA; loads and stores are bounds-checked slices.
    unsafe {
        let (a0, a1) = V::load_deinterleave(&x[base..]);
        let (b0, b1) = V::load_deinterleave(&x[base + w..]);
        // Exact: every index is below SIMD_MAX_PLANE = 2^24.
        let i0 = V::splat(base as f32).add(V::load(&STEPS));
        let ninf = V::splat(f32::NEG_INFINITY);
        let mut best = a0.select_gt(ninf, a0, ninf);
        let mut val = a0;
        let mut idx = i0;
        for (v, off) in [(a1, 1.0), (b0, w as f32), (b1, (w + 1) as f32)] {
            let vi = i0.add(V::splat(off));
            val = v.select_gt(best, v, val);
            idx = v.select_gt(best, vi, idx);
            best = v.select_gt(best, v, best);
        }
        val.store(&mut out[o..]);
        if ARGMAX {
            idx.store_index(&mut argmax[o..]);
        }
    }
}

/// One plane, 2x2 window, stride 2, values and argmax: `V`-wide blocks of each output row,
/// then blocks of `V::Half` and of 4 lanes (where narrower than `V`), then scalar.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn plane_2x2_simd<V: F32Vec>(
    g: &Pool2dGeometry,
    x: &[f32],
    out: &mut [f32],
    argmax: &mut [u32],
) {
    // SAFETY: forwarded precondition (the CPU supports `V`'s ISA), the only one.
    unsafe { plane_2x2::<V, true>(g, x, out, argmax) }
}

/// [`plane_2x2_simd`] without the argmax (inference, and the conv kernels' fused pool):
/// the same values, bit for bit.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn plane_2x2_values_simd<V: F32Vec>(
    g: &Pool2dGeometry,
    x: &[f32],
    out: &mut [f32],
) {
    // SAFETY: forwarded precondition (the CPU supports `V`'s ISA); no argmax is written.
    unsafe { plane_2x2::<V, false>(g, x, out, &mut []) }
}

/// One plane, 2x2 window, stride 2, shared by [`plane_2x2_simd`] and
/// [`plane_2x2_values_simd`]: the argmax is written only when `ARGMAX` (else `argmax` may be
/// empty; its stores are compiled out). Slices are bounds-checked, so a short `argmax`
/// panics rather than writing out of bounds.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn plane_2x2<V: F32Vec, const ARGMAX: bool>(
    g: &Pool2dGeometry,
    x: &[f32],
    out: &mut [f32],
    argmax: &mut [u32],
) {
    if g.in_h * g.in_w > SIMD_MAX_PLANE {
        for oh in 0..g.out_h {
            row_2x2_scalar::<ARGMAX>(g, x, oh, 0..g.out_w, out, argmax);
        }
        return;
    }
    for oh in 0..g.out_h {
        // SAFETY: the caller guarantees `V`'s ISA, which includes `V::Half`'s; `Portable`
        // needs only the target's baseline.
        let ow = unsafe {
            let ow = row_blocks_2x2::<V, ARGMAX>(g, x, oh, 0, out, argmax);
            let ow = row_blocks_2x2::<V::Half, ARGMAX>(g, x, oh, ow, out, argmax);
            row_blocks_2x2::<Portable, ARGMAX>(g, x, oh, ow, out, argmax)
        };
        row_2x2_scalar::<ARGMAX>(g, x, oh, ow..g.out_w, out, argmax);
    }
}

/// As many whole `V`-wide blocks of output row `oh` as fit from column `ow`; returns the
/// first column left.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn row_blocks_2x2<V: F32Vec, const ARGMAX: bool>(
    g: &Pool2dGeometry,
    x: &[f32],
    oh: usize,
    mut ow: usize,
    out: &mut [f32],
    argmax: &mut [u32],
) -> usize {
    while ow + V::LANES <= g.out_w {
        // SAFETY: the caller guarantees `V`'s ISA.
        unsafe { vec_2x2::<V, ARGMAX>(g, x, oh, ow, out, argmax) };
        ow += V::LANES;
    }
    ow
}

/// One plane, general window and stride.
fn plane_general(g: &Pool2dGeometry, x: &[f32], out: &mut [f32], argmax: &mut [u32]) {
    for oh in 0..g.out_h {
        for ow in 0..g.out_w {
            let (ih0, iw0) = (oh * g.stride_h, ow * g.stride_w);
            let mut best = f32::NEG_INFINITY;
            let mut bi = ih0 * g.in_w + iw0;
            for kh in 0..g.kernel_h {
                let row = &x[(ih0 + kh) * g.in_w + iw0..][..g.kernel_w];
                for (kw, &v) in row.iter().enumerate() {
                    if v > best {
                        best = v;
                        bi = (ih0 + kh) * g.in_w + iw0 + kw;
                    }
                }
            }
            out[oh * g.out_w + ow] = x[bi];
            argmax[oh * g.out_w + ow] = bi as u32;
        }
    }
}

impl Kernels {
    /// [`maxpool2d_forward`] on this tier.
    pub fn maxpool2d_forward(
        &self,
        g: &Pool2dGeometry,
        input: &[f32],
        out: &mut [f32],
        argmax: &mut [u32],
    ) -> Result<()> {
        const OP: &str = "maxpool2d_forward";
        check_len(OP, "input", input.len(), g.input_len())?;
        check_len(OP, "out", out.len(), g.output_len())?;
        check_len(OP, "argmax", argmax.len(), g.output_len())?;
        let (ip, op) = (g.in_h * g.in_w, g.out_h * g.out_w);
        let fast = (g.kernel_h, g.kernel_w, g.stride_h, g.stride_w) == (2, 2, 2, 2);
        let plane = |x: &[f32], o: &mut [f32], a: &mut [u32]| {
            if fast {
                (self.maxpool_2x2_plane)(g, x, o, a)
            } else {
                plane_general(g, x, o, a)
            }
        };
        let planes = g.batch * g.channels;
        let work = g.output_len() * g.kernel_h * g.kernel_w;
        if crate::threads::workers_for(work, planes) <= 1 {
            for ((x, o), a) in input
                .chunks_exact(ip)
                .zip(out.chunks_exact_mut(op))
                .zip(argmax.chunks_exact_mut(op))
            {
                plane(x, o, a);
            }
        } else {
            input
                .par_chunks_exact(ip)
                .zip(out.par_chunks_exact_mut(op))
                .zip(argmax.par_chunks_exact_mut(op))
                .for_each(|((x, o), a)| plane(x, o, a));
        }
        Ok(())
    }

    /// [`maxpool2d_backward`] on this tier.
    pub fn maxpool2d_backward(
        &self,
        g: &Pool2dGeometry,
        grad_out: &[f32],
        argmax: &[u32],
        grad_input: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "maxpool2d_backward";
        check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
        check_len(OP, "argmax", argmax.len(), g.output_len())?;
        check_len(OP, "grad_input", grad_input.len(), g.input_len())?;
        let (ip, op) = (g.in_h * g.in_w, g.out_h * g.out_w);
        if let Some(&bad) = argmax.iter().find(|&&a| a as usize >= ip) {
            return Err(KernelError::Geometry {
                op: OP,
                reason: format!("argmax index {bad} outside the {ip}-element input plane"),
            });
        }
        // Each plane scatters in output order: overlapping windows accumulate in a fixed order.
        for ((dx, dy), a) in grad_input
            .chunks_exact_mut(ip)
            .zip(grad_out.chunks_exact(op))
            .zip(argmax.chunks_exact(op))
        {
            dx.fill(0.0);
            for (&d, &i) in dy.iter().zip(a) {
                dx[i as usize] += d;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Kernels;
    use proptest::prelude::*;

    /// Values that stress the rule: ties, signed zeros, infinities, NaN.
    fn special() -> impl Strategy<Value = f32> {
        prop_oneof![
            Just(0.0f32),
            Just(-0.0),
            Just(1.0),
            Just(f32::INFINITY),
            Just(f32::NEG_INFINITY),
            Just(f32::NAN),
            -4.0f32..4.0,
        ]
    }

    proptest! {
        /// The values-only kernel gives the bits the argmax kernel gives, on every tier,
        /// whatever the values, for rows that use every block width and the scalar tail.
        #[test]
        fn values_kernel_equals_argmax_kernel(
            (oh, ow) in (1usize..12, 1usize..40),
            x in prop::collection::vec(special(), 4 * 12 * 40),
        ) {
            let g = Pool2dGeometry::two_by_two(1, 1, 2 * oh, 2 * ow).unwrap();
            let x: Vec<f32> = x.iter().cycle().take(g.input_len()).copied().collect();
            for k in Kernels::available() {
                let mut want = vec![0.0f32; g.output_len()];
                let mut argmax = vec![0u32; g.output_len()];
                (k.maxpool_2x2_plane)(&g, &x, &mut want, &mut argmax);
                let mut got = vec![1.5f32; g.output_len()];
                (k.maxpool_2x2_values)(&g, &x, &mut got);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                prop_assert_eq!(bits(&got), bits(&want), "{:?} {:?}", k.isa(), g);
            }
        }
    }
}
