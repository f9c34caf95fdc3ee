//! The register-blocked microkernel, written once over [`F32Vec`] with a const `MR x NV`
//! tile (`NR = NV · LANES` columns), and the per-tier choice of tile.
//!
//! One call computes a whole cache block `C[m x n] (+)= α · Ap · Bp` from packed operands
//! (see [`super::pack`]): for every `MR x NR` tile, `MR · NV` accumulators stay in registers
//! while the reduction walks `kc` steps of one A panel (MR values, broadcast) and one B
//! panel (NV vectors). Each output element is the sum over `p` in increasing order, fused
//! per step where the tier has FMA, whatever the tile's position: results depend only on the
//! tier and on `kc` blocking, never on how rows are split over threads.

use crate::simd::F32Vec;

/// A tier's microkernel tile: `mr` rows by `nr` columns of C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tile {
    /// Rows of the tile (the A panel height).
    pub mr: usize,
    /// Columns of the tile (the B panel width, a whole number of vectors).
    pub nr: usize,
}

/// One cache block of the blocked GEMM, on packed panels.
#[derive(Debug)]
pub(crate) struct BlockArgs<'a> {
    /// Reduction length of the block.
    pub kc: usize,
    /// Rows of the C block (the last A panel may be partial).
    pub m: usize,
    /// Columns of the C block (the last B panel may be partial).
    pub n: usize,
    /// `ceil(m / MR)` panels of `kc · MR` values (zero-padded rows) when `a_rs` is 0;
    /// otherwise A itself, row-major with row stride `a_rs` (row 0, column 0 of the block
    /// first), read in place: no packing.
    pub a: &'a [f32],
    /// Row stride of an A read in place, or 0 for packed panels.
    pub a_rs: usize,
    /// `ceil(n / NR)` panels of `kc · NR` values (zero-padded columns).
    pub b: &'a [f32],
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of C's previous contents; 0 overwrites C (NaNs in it do not propagate).
    pub beta: f32,
    /// C's row stride.
    pub rs: usize,
    /// C's column stride.
    pub cs: usize,
}

/// The widest B panel (NR) of any tier; every tier's NR divides it. Scratch sized for
/// panels of this width fits every tier's.
pub(crate) const MAX_NR: usize = 32;

/// Per-tier tile choice: each vector type names its tile and instantiates [`block`] with it.
pub(crate) trait GemmTier: F32Vec {
    /// The tile of this tier.
    const TILE: Tile;
    /// [`block`] with this tier's tile.
    ///
    /// # Safety
    /// The CPU supports the implementation's ISA.
    unsafe fn block(args: &BlockArgs<'_>, c: &mut [f32]);
}

impl GemmTier for crate::simd::portable::Portable {
    // 12 accumulators + 2 B vectors + 1 broadcast: the 16 SSE2 registers.
    const TILE: Tile = Tile { mr: 6, nr: 8 };
    #[inline(always)]
    unsafe fn block(args: &BlockArgs<'_>, c: &mut [f32]) {
        // SAFETY: forwarded precondition (the baseline ISA, always present).
        unsafe { block::<Self, 6, 2>(args, c) }
    }
}

#[cfg(target_arch = "x86_64")]
impl GemmTier for crate::simd::x86_64::Avx2 {
    // 12 accumulators + 2 B vectors + 1 broadcast of the 16 ymm registers.
    const TILE: Tile = Tile { mr: 6, nr: 16 };
    #[inline(always)]
    unsafe fn block(args: &BlockArgs<'_>, c: &mut [f32]) {
        // SAFETY: forwarded precondition (AVX2+FMA).
        unsafe { block::<Self, 6, 2>(args, c) }
    }
}

#[cfg(target_arch = "x86_64")]
impl GemmTier for crate::simd::x86_64::Avx512 {
    // 16 accumulators + 2 B vectors + 1 broadcast of the 32 zmm registers: 8 rows divide the
    // CNN's 32 and 64 output channels exactly (BENCHMARKS.md compares 8x32, 12x32, 14x32).
    const TILE: Tile = Tile { mr: 8, nr: 32 };
    #[inline(always)]
    unsafe fn block(args: &BlockArgs<'_>, c: &mut [f32]) {
        // SAFETY: forwarded precondition (AVX-512F).
        unsafe { block::<Self, 8, 2>(args, c) }
    }
}

#[cfg(target_arch = "aarch64")]
impl GemmTier for crate::simd::aarch64::Neon {
    // 16 accumulators + 2 B vectors + 1 broadcast of the 32 NEON registers (tested under
    // qemu only: not timed, so the portable tier's choice of matrixmultiply is kept where
    // the dispatch list says so).
    const TILE: Tile = Tile { mr: 8, nr: 8 };
    #[inline(always)]
    unsafe fn block(args: &BlockArgs<'_>, c: &mut [f32]) {
        // SAFETY: forwarded precondition (NEON, part of the aarch64 baseline).
        unsafe { block::<Self, 8, 2>(args, c) }
    }
}

/// The tile of `V`'s tier (a dispatch entry).
///
/// # Safety
/// None beyond the entry convention (no ISA instruction runs).
#[inline(always)]
pub(crate) unsafe fn tile_simd<V: GemmTier>() -> Tile {
    V::TILE
}

/// [`GemmTier::block`] as a dispatch entry.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn block_simd<V: GemmTier>(args: &BlockArgs<'_>, c: &mut [f32]) {
    // SAFETY: forwarded precondition.
    unsafe { V::block(args, c) }
}

/// All `MR x NR` tiles of one cache block. `c` starts at the block's element (0, 0); every
/// index is bounds-checked through slices (outside the reduction loop).
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn block<V: F32Vec, const MR: usize, const NV: usize>(
    args: &BlockArgs<'_>,
    c: &mut [f32],
) {
    let nr = NV * V::LANES;
    let kc = args.kc;
    if kc == 0 {
        return;
    }
    for pi in 0..args.m.div_ceil(MR) {
        let r0 = pi * MR;
        let rows = MR.min(args.m - r0);
        let b_panels = args.b.chunks_exact(kc * nr).take(args.n.div_ceil(nr));
        for (pj, bp) in b_panels.enumerate() {
            let c0 = pj * nr;
            let cols = nr.min(args.n - c0);
            let acc = if args.a_rs == 0 {
                let ap = &args.a[pi * kc * MR..][..kc * MR];
                // SAFETY: forwarded precondition.
                unsafe { tile::<V, MR, NV>(ap, bp) }
            } else {
                // Rows past the block's last repeat its last row; their sums are not stored.
                let rows_a: [&[f32]; MR] =
                    std::array::from_fn(|i| &args.a[(r0 + i.min(rows - 1)) * args.a_rs..][..kc]);
                // SAFETY: forwarded precondition.
                unsafe { tile_rows::<V, MR, NV>(rows_a, bp) }
            };
            // SAFETY: forwarded precondition.
            unsafe { store::<V, MR, NV>(args, &acc, r0, c0, rows, cols, c) };
        }
    }
}

/// [`tile`] with A's `MR` rows read in place (`kc` values each) instead of from a packed
/// panel: the same products summed in the same order, so the same bits.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn tile_rows<V: F32Vec, const MR: usize, const NV: usize>(
    a: [&[f32]; MR],
    bp: &[f32],
) -> [[V; NV]; MR] {
    let nr = NV * V::LANES;
    let kc = bp.len() / nr;
    for row in &a {
        assert!(row.len() >= kc, "A row shorter than the reduction");
    }
    // SAFETY: the caller guarantees `V`'s ISA; every row is at least `kc` long (asserted
    // above) and `p < kc`, so the unchecked reads are in bounds; B loads go through
    // bounds-checked slices of constant length.
    unsafe {
        let mut acc = [[V::splat(0.0); NV]; MR];
        for (p, b) in bp.chunks_exact(nr).enumerate() {
            let bv: [V; NV] = std::array::from_fn(|j| V::load(&b[j * V::LANES..]));
            for (i, row) in acc.iter_mut().enumerate() {
                let av = V::splat(*a[i].get_unchecked(p));
                for (x, b) in row.iter_mut().zip(&bv) {
                    *x = av.mul_add(*b, *x);
                }
            }
        }
        acc
    }
}

/// `Σ_p ap[p] ⊗ bp[p]` for one A panel (`kc · MR`) and one B panel (`kc · NR`).
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn tile<V: F32Vec, const MR: usize, const NV: usize>(
    ap: &[f32],
    bp: &[f32],
) -> [[V; NV]; MR] {
    let nr = NV * V::LANES;
    // SAFETY: the caller guarantees `V`'s ISA; loads are through bounds-checked slices whose
    // lengths (MR, NV · LANES) are constants of the instantiation, so the checks fold away.
    unsafe {
        let mut acc = [[V::splat(0.0); NV]; MR];
        for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(nr)) {
            let bv: [V; NV] = std::array::from_fn(|j| V::load(&b[j * V::LANES..]));
            for (i, row) in acc.iter_mut().enumerate() {
                let av = V::splat(a[i]);
                for (x, b) in row.iter_mut().zip(&bv) {
                    *x = av.mul_add(*b, *x);
                }
            }
        }
        acc
    }
}

/// Writes one tile: `C ← α · acc + β · C` on its `rows x cols` valid part.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn store<V: F32Vec, const MR: usize, const NV: usize>(
    args: &BlockArgs<'_>,
    acc: &[[V; NV]; MR],
    r0: usize,
    c0: usize,
    rows: usize,
    cols: usize,
    c: &mut [f32],
) {
    let nr = NV * V::LANES;
    let (alpha, beta) = (args.alpha, args.beta);
    // SAFETY: the caller guarantees `V`'s ISA; loads and stores go through slices.
    unsafe {
        let (va, vb) = (V::splat(alpha), V::splat(beta));
        if rows == MR && cols == nr && args.cs == 1 {
            for (i, row) in acc.iter().enumerate() {
                let crow = &mut c[(r0 + i) * args.rs + c0..][..nr];
                for (j, x) in row.iter().enumerate() {
                    let dst = &mut crow[j * V::LANES..];
                    let mut v = if alpha == 1.0 { *x } else { x.mul(va) };
                    if beta != 0.0 {
                        // Unfused, like the edge path below: a value never depends on
                        // whether its tile is whole.
                        v = V::load(dst).mul(vb).add(v);
                    }
                    v.store(dst);
                }
            }
            return;
        }
        if cols == nr && args.cs == 1 && alpha == 1.0 && beta == 0.0 {
            // The first `rows` rows of the last row panel, whole: by vectors. The loop runs
            // over every row with a test, not `0..rows`: with a runtime bound the rows are
            // indexed at run time and the accumulators are kept in memory (measured: a
            // spill after every FMA).
            for (i, row) in acc.iter().enumerate() {
                if i < rows {
                    let crow = &mut c[(r0 + i) * args.rs + c0..][..nr];
                    for (j, x) in row.iter().enumerate() {
                        x.store(&mut crow[j * V::LANES..]);
                    }
                }
            }
            return;
        }
        // Large enough for every tier's tile (AVX-512's is at most 16 x 32).
        let mut buf = [0.0f32; 16 * 32];
        for (i, row) in acc.iter().enumerate() {
            for (j, x) in row.iter().enumerate() {
                x.store(&mut buf[i * nr + j * V::LANES..]);
            }
        }
        for i in 0..rows {
            for j in 0..cols {
                let dst = &mut c[(r0 + i) * args.rs + (c0 + j) * args.cs];
                let v = alpha * buf[i * nr + j];
                *dst = if beta == 0.0 { v } else { *dst * beta + v };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MAX_NR;
    use crate::dispatch::Kernels;

    /// Scratch sized with [`MAX_NR`] (the implicit GEMM's panels) fits every tier's panels.
    #[test]
    fn every_tier_panel_width_divides_max_nr() {
        for k in Kernels::available() {
            let nr = k.gemm_tile().nr;
            assert!(MAX_NR.is_multiple_of(nr), "{:?}: NR {nr}", k.isa());
        }
    }
}
