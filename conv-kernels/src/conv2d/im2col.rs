//! im2col + GEMM: the general conv2d path.
//!
//! A chunk of `cn` images is unrolled into `col[K, cn*P]` (K = C·KH·KW rows, one column per
//! output pixel of every image, zero where a tap falls in the padding). Then
//!
//! * forward: `Y[O, cn*P] = W[O, K] · col`, scattered into NCHW with the bias + ReLU epilogue
//!   (or pooled 2x2 from the staged rows). Where the weight is packed for our GEMM
//!   ([`packs_weight`]) and [`panels_apply`], `col` is never materialised: implicit GEMM
//!   writes it straight into the GEMM's packed B panels ([`im2col_panels`]);
//! * backward input: `dcol[K, cn*P] = Wᵀ · dY`, folded back (col2im) by scatter-add;
//! * backward weight: `dW[O, K] += dY[O, cn*P] · colᵀ`, chunks in a fixed order.
//!
//! `cn` depends only on the geometry (enough columns to make a GEMM worth packing), so the
//! reduction order of the weight gradient never depends on the thread count.

use crate::dispatch::{Isa, Kernels};
use crate::error::Result;
use crate::gemm::{
    KC, MAX_NR, MatMut, MatRef, Operand, PackedPanels, PanelsRef, packed_len, sgemm, sgemm_rows_par,
};
use crate::geometry::{Conv2dGeometry, Pool2dGeometry};
use rayon::prelude::*;

/// GEMM columns a chunk aims for. Measured on conv2 (P = 64): 256 beats 64, 128, 512, 1024
/// and the whole batch; larger chunks push col out of L2, smaller ones repack W too often.
const TARGET_COLS: usize = 256;

/// Whether the im2col GEMMs whose left operand is the weight (forward `W · col`, input
/// gradient `Wᵀ · dY`) run on our GEMM with the weight packed once (per call, or per model
/// version by [`super::PackedConv`]) instead of `matrixmultiply`, which repacks it for every
/// chunk. Measured on AVX-512 only (Zen 5, kernel bench, weight packed once vs
/// `matrixmultiply`): conv2 forward 64x800x256 211 vs 174 GFLOP/s, input gradient
/// 800x64x256 234 vs 213, conv1 forward 32x25x576 171 vs 171. On AVX2 `matrixmultiply` won
/// or tied every training shape (Zen 3; BENCHMARKS.md), so it keeps them there.
pub(crate) fn packs_weight(isa: Isa) -> bool {
    isa == Isa::Avx512
}

/// The weight operand of the im2col GEMMs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Weight<'a> {
    /// Multiplied by `matrixmultiply`, which packs it per call.
    Raw(MatRef<'a>),
    /// Packed once for this tier's GEMM.
    Packed(&'a PackedPanels),
}

/// `W [O, K]` (the forward's left operand) packed for our GEMM where [`packs_weight`].
pub(crate) fn pack_forward_weight(
    k: &Kernels,
    out_channels: usize,
    kk: usize,
    w: &[f32],
) -> Result<Option<PackedPanels>> {
    pack_weight(k, out_channels, kk, MatRef::row_major(w, kk))
}

/// The weight operand `a` (`m x kk`) packed for our GEMM where [`packs_weight`].
fn pack_weight(k: &Kernels, m: usize, kk: usize, a: MatRef<'_>) -> Result<Option<PackedPanels>> {
    packs_weight(k.isa())
        .then(|| k.gemm_pack_a(m, kk, a))
        .transpose()
}

/// `C = W · B` (`m x kk` times `kk x n`) on the weight's GEMM.
fn weight_gemm(
    k: &Kernels,
    w: Weight<'_>,
    (m, kk, n): (usize, usize, usize),
    b: MatRef<'_>,
    c: MatMut<'_>,
) -> Result<()> {
    match w {
        Weight::Raw(a) => sgemm(m, kk, n, 1.0, a, b, 0.0, c),
        Weight::Packed(a) => k.gemm(m, kk, n, 1.0, Operand::Packed(a), Operand::View(b), 0.0, c),
    }
}

/// Sizes of the im2col path for one geometry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Im2colPlan {
    /// Rows of col: C·KH·KW.
    pub k: usize,
    /// Output pixels per image: OH·OW.
    pub p: usize,
    /// Images per chunk.
    pub cn: usize,
    /// Elements of col's region in a slot: `[k, cn*p]`, or the same as packed B panels
    /// (columns rounded up to whole panels of any tier) for the implicit GEMM.
    pub col_len: usize,
    /// Elements of one worker's scratch slot: col's region + staging `[O, cn*p]`.
    pub slot_len: usize,
}

impl Im2colPlan {
    pub(crate) fn new(g: &Conv2dGeometry) -> Self {
        let k = g.in_channels * g.kernel_h * g.kernel_w;
        let p = g.out_h * g.out_w;
        let cn = TARGET_COLS.div_ceil(p).clamp(1, g.batch);
        let col_len = k * (cn * p).next_multiple_of(MAX_NR);
        let slot_len = col_len + g.out_channels * cn * p;
        Self {
            k,
            p,
            cn,
            col_len,
            slot_len,
        }
    }
}

/// Range of output columns `ow` whose tap `kw` reads inside the input row, and the input
/// column offset (`iw = ow + kw - pad_left`).
#[inline]
fn valid_cols(g: &Conv2dGeometry, kw: usize) -> (usize, usize) {
    let lo = g.pad_left.saturating_sub(kw).min(g.out_w);
    let hi = (g.in_w + g.pad_left)
        .saturating_sub(kw)
        .min(g.out_w)
        .max(lo);
    (lo, hi)
}

/// Input row read by output row `oh` through tap `kh`, if inside the image.
#[inline]
fn input_row(g: &Conv2dGeometry, oh: usize, kh: usize) -> Option<usize> {
    (oh + kh).checked_sub(g.pad_top).filter(|&ih| ih < g.in_h)
}

/// `dst = src` for the short runs of im2col (an output row, often 8-24 floats): fixed-size
/// 8-float moves inline to a vector load/store, where `copy_from_slice` would call memmove.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut ds = dst.chunks_exact_mut(8);
    let mut ss = src.chunks_exact(8);
    for (d, s) in (&mut ds).zip(&mut ss) {
        let d: &mut [f32; 8] = d.try_into().unwrap_or_else(|_| unreachable!());
        let s: &[f32; 8] = s.try_into().unwrap_or_else(|_| unreachable!());
        *d = *s;
    }
    for (d, s) in ds.into_remainder().iter_mut().zip(ss.remainder()) {
        *d = *s;
    }
}

/// `dst += src` for the short runs of col2im, inline for the same reason as [`copy_short`].
#[inline(always)]
fn add_short(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut ds = dst.chunks_exact_mut(8);
    let mut ss = src.chunks_exact(8);
    for (d, s) in (&mut ds).zip(&mut ss) {
        let d: &mut [f32; 8] = d.try_into().unwrap_or_else(|_| unreachable!());
        let s: &[f32; 8] = s.try_into().unwrap_or_else(|_| unreachable!());
        for i in 0..8 {
            d[i] += s[i];
        }
    }
    for (d, s) in ds.into_remainder().iter_mut().zip(ss.remainder()) {
        *d += *s;
    }
}

/// Zero-fills a short run without a memset call for the common empty case.
#[inline(always)]
fn zero_short(dst: &mut [f32]) {
    for d in dst {
        *d = 0.0;
    }
}

/// [`im2col`] instantiated per tier: inlined into an AVX2 body, the 8-float moves become
/// single 256-bit loads and stores.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn im2col_simd<V: crate::simd::F32Vec>(
    g: &Conv2dGeometry,
    x: &[f32],
    nimg: usize,
    col: &mut [f32],
) {
    im2col(g, x, nimg, col)
}

/// Unrolls `nimg` images of `x` into `col[K, nimg*P]`.
#[inline(always)]
pub(crate) fn im2col(g: &Conv2dGeometry, x: &[f32], nimg: usize, col: &mut [f32]) {
    let (p, cols) = (g.out_h * g.out_w, nimg * g.out_h * g.out_w);
    let plane = g.in_h * g.in_w;
    let mut rows = col.chunks_exact_mut(cols);
    for c in 0..g.in_channels {
        for kh in 0..g.kernel_h {
            for kw in 0..g.kernel_w {
                let Some(row) = rows.next() else { return };
                let (lo, hi) = valid_cols(g, kw);
                // 'valid' geometry: no padding on any side (an even 'same' kernel pads only
                // bottom/right, so zero pad_top/pad_left is not enough).
                let interior = g.pad_top == 0
                    && g.pad_left == 0
                    && g.out_h + g.kernel_h - 1 == g.in_h
                    && g.out_w + g.kernel_w - 1 == g.in_w;
                for (n, dst) in row.chunks_exact_mut(p).enumerate() {
                    let src_plane = &x[(n * g.in_channels + c) * plane..][..plane];
                    if interior {
                        // Valid padding: every tap is inside; row oh reads input row oh + kh
                        // from column kw on. No bounds logic per row.
                        let src = &src_plane[kh * g.in_w + kw..];
                        if g.out_w.is_multiple_of(8) {
                            // Whole 8-float moves only (conv2: one per row, conv1: three):
                            // no length arithmetic or tail loop per row.
                            for (oh, d) in dst.chunks_exact_mut(g.out_w).enumerate() {
                                let s = &src[oh * g.in_w..][..g.out_w];
                                for (d, s) in d.chunks_exact_mut(8).zip(s.chunks_exact(8)) {
                                    let d: &mut [f32; 8] =
                                        d.try_into().unwrap_or_else(|_| unreachable!());
                                    *d = s.try_into().unwrap_or_else(|_| unreachable!());
                                }
                            }
                            continue;
                        }
                        for (d, s) in dst.chunks_exact_mut(g.out_w).zip(src.chunks(g.in_w)) {
                            copy_short(d, s);
                        }
                        continue;
                    }
                    for (oh, d) in dst.chunks_exact_mut(g.out_w).enumerate() {
                        match input_row(g, oh, kh) {
                            None => zero_short(d),
                            Some(_) if lo == hi => zero_short(d),
                            Some(ih) => {
                                let src = &src_plane[ih * g.in_w..][..g.in_w];
                                zero_short(&mut d[..lo]);
                                copy_short(
                                    &mut d[lo..hi],
                                    &src[lo + kw - g.pad_left..hi + kw - g.pad_left],
                                );
                                zero_short(&mut d[hi..]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Folds `dcol[K, nimg*P]` back into `dx` (`nimg` images, overwritten), the adjoint of
/// [`im2col`]. Each `dx` element sums its taps in the fixed (c, kh, kw) order.
pub(crate) fn col2im(g: &Conv2dGeometry, dcol: &[f32], nimg: usize, dx: &mut [f32]) {
    let (p, cols) = (g.out_h * g.out_w, nimg * g.out_h * g.out_w);
    let plane = g.in_h * g.in_w;
    dx.fill(0.0);
    let mut rows = dcol.chunks_exact(cols);
    for c in 0..g.in_channels {
        for kh in 0..g.kernel_h {
            for kw in 0..g.kernel_w {
                let Some(row) = rows.next() else { return };
                let (lo, hi) = valid_cols(g, kw);
                for (n, src) in row.chunks_exact(p).enumerate() {
                    let dst_plane = &mut dx[(n * g.in_channels + c) * plane..][..plane];
                    for (oh, s) in src.chunks_exact(g.out_w).enumerate() {
                        if lo == hi {
                            // No tap of this column offset lands inside the row (a kernel
                            // wider than the padded-out input): the range would not exist.
                            continue;
                        }
                        if let Some(ih) = input_row(g, oh, kh) {
                            let d = &mut dst_plane[ih * g.in_w..][..g.in_w];
                            add_short(
                                &mut d[lo + kw - g.pad_left..hi + kw - g.pad_left],
                                &s[lo..hi],
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Whether [`im2col_panels`] handles `g` for panels of `nr` columns: 'valid' padding
/// (every tap inside) and output rows of whole 8-float moves, which never straddle two
/// panels of a multiple of 8 columns (both Table 1 convs: rows of 24 and 8; panels of 32 on
/// AVX-512). A general writer (padding, any row width) measured slower than im2col plus
/// the GEMM's own packing (infer b1 on Zen 5: 84 vs 65 us), so other shapes keep those.
pub(crate) fn panels_apply(g: &Conv2dGeometry, nr: usize) -> bool {
    g.pad_top == 0
        && g.pad_left == 0
        && g.out_h + g.kernel_h - 1 == g.in_h
        && g.out_w + g.kernel_w - 1 == g.in_w
        && g.out_w.is_multiple_of(8)
        && nr.is_multiple_of(8)
}

/// [`im2col_panels`] instantiated per tier (for the same inlined moves as [`im2col_simd`]).
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn im2col_panels_simd<V: crate::simd::F32Vec>(
    g: &Conv2dGeometry,
    x: &[f32],
    nimg: usize,
    nr: usize,
    kc: usize,
    dst: &mut [f32],
) {
    im2col_panels(g, x, nimg, nr, kc, dst)
}

/// Implicit GEMM's B, where [`panels_apply`] (else it writes nothing): `col[K, nimg*P]` of
/// `nimg` images of `x` written straight into the packed-B layout of our GEMM (panels of
/// `nr` columns, reduction blocks of `kc`; see `gemm::pack`), zeros past the last column
/// included, so the unrolled matrix is never materialised and the GEMM packs nothing.
#[inline(always)]
pub(crate) fn im2col_panels(
    g: &Conv2dGeometry,
    x: &[f32],
    nimg: usize,
    nr: usize,
    kc: usize,
    dst: &mut [f32],
) {
    if !panels_apply(g, nr) {
        return;
    }
    let kk = g.in_channels * g.kernel_h * g.kernel_w;
    let cols = nimg * g.out_h * g.out_w;
    let padded = cols.div_ceil(nr) * nr;
    let plane = g.in_h * g.in_w;
    let mut r = 0;
    for c in 0..g.in_channels {
        for kh in 0..g.kernel_h {
            for kw in 0..g.kernel_w {
                let pc = r / kc * kc;
                let kcb = kc.min(kk - pc);
                let blk = &mut dst[pc * padded..][..kcb * padded];
                // This step's run in each panel, `kcb · nr` apart; an 8-float move never
                // straddles two panels.
                let (mut at, mut j, stride) = ((r - pc) * nr, 0, kcb * nr);
                for n in 0..nimg {
                    let src = &x[(n * g.in_channels + c) * plane + kh * g.in_w + kw..];
                    for oh in 0..g.out_h {
                        for s in src[oh * g.in_w..][..g.out_w].chunks_exact(8) {
                            let d: &mut [f32; 8] = (&mut blk[at + j..][..8])
                                .try_into()
                                .unwrap_or_else(|_| unreachable!());
                            *d = s.try_into().unwrap_or_else(|_| unreachable!());
                            j += 8;
                            if j == nr {
                                (at, j) = (at + stride, 0);
                            }
                        }
                    }
                }
                if j > 0 {
                    zero_short(&mut blk[at + j..][..nr - j]);
                }
                r += 1;
            }
        }
    }
}

/// Copies `nimg` images of `dy` (`[n, O, P]`) into `dyt[O, nimg*P]`.
fn gather_channels(g: &Conv2dGeometry, dy: &[f32], nimg: usize, dyt: &mut [f32]) {
    let p = g.out_h * g.out_w;
    for (o, row) in dyt.chunks_exact_mut(nimg * p).enumerate() {
        for (n, d) in row.chunks_exact_mut(p).enumerate() {
            d.copy_from_slice(&dy[(n * g.out_channels + o) * p..][..p]);
        }
    }
}

/// Runs `f(first_image, images, slot)` over the chunks of the batch, in parallel when there
/// are several workers and slots; each worker handles a contiguous run of chunks with its own
/// slot. `out_per_image` elements of `out` belong to each image.
fn for_chunks<F>(
    g: &Conv2dGeometry,
    plan: &Im2colPlan,
    flops: usize,
    out: &mut [f32],
    out_per_image: usize,
    scratch: &mut [f32],
    f: F,
) -> Result<()>
where
    F: Fn(usize, usize, &mut [f32], &mut [f32]) -> Result<()> + Sync,
{
    let chunks = g.batch.div_ceil(plan.cn);
    let slots = scratch.len() / plan.slot_len;
    let workers = crate::threads::workers_for(flops, chunks).min(slots).max(1);
    let run_group =
        |gi: usize, out: &mut [f32], slot: &mut [f32], per_group: usize| -> Result<()> {
            let first_chunk = gi * per_group;
            for (ci, o) in out.chunks_mut(plan.cn * out_per_image).enumerate() {
                let n0 = (first_chunk + ci) * plan.cn;
                let nimg = o.len() / out_per_image;
                f(n0, nimg, o, &mut slot[..plan.slot_len])?;
            }
            Ok(())
        };
    if workers <= 1 {
        return run_group(0, out, scratch, chunks);
    }
    let per_group = chunks.div_ceil(workers);
    out.par_chunks_mut(per_group * plan.cn * out_per_image)
        .zip(scratch.par_chunks_mut(plan.slot_len))
        .enumerate()
        .try_for_each(|(gi, (o, slot))| run_group(gi, o, slot, per_group))
}

/// Forward convolution by im2col + GEMM, with the bias + ReLU epilogue and, when `pool`,
/// the 2x2 stride-2 max-pool (`out` then holds the pooled `[N, O, OH/2, OW/2]`: each plane
/// is pooled from the GEMM's staging rows, so the full-size activation is never written).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    k: &Kernels,
    g: &Conv2dGeometry,
    x: &[f32],
    w: Weight<'_>,
    bias: Option<&[f32]>,
    relu: bool,
    pool: bool,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let plan = Im2colPlan::new(g);
    let (kk, p, o_ch) = (plan.k, plan.p, g.out_channels);
    let in_img = g.in_channels * g.in_h * g.in_w;
    let flops = 2 * g.output_len() * kk;
    let out_per_image = if pool { o_ch * p / 4 } else { o_ch * p };
    let pool_g = if pool {
        Some(Pool2dGeometry::two_by_two(1, 1, g.out_h, g.out_w)?)
    } else {
        None
    };
    let nr = k.gemm_tile().nr;
    for_chunks(
        g,
        &plan,
        flops,
        out,
        out_per_image,
        scratch,
        |n0, nimg, out, slot| {
            let cols = nimg * p;
            let xs = &x[n0 * in_img..][..nimg * in_img];
            let (col, rest) = slot.split_at_mut(plan.col_len);
            // `C = W · col`: implicit GEMM (col written straight into packed B panels in
            // col's region) where the weight is packed and the rows allow it, else col
            // unrolled and multiplied on the weight's GEMM.
            let product = |c: MatMut<'_>, col: &mut [f32]| -> Result<()> {
                match w {
                    Weight::Packed(a) if panels_apply(g, nr) => {
                        let panels = &mut col[..packed_len(cols, kk, nr)];
                        (k.im2col_panels)(g, xs, nimg, nr, KC, panels);
                        let b = PanelsRef::b(kk, cols, nr, KC, panels);
                        k.gemm_b_panels(o_ch, kk, cols, Operand::Packed(a), b, c)
                    }
                    _ => {
                        (k.im2col)(g, xs, nimg, col);
                        weight_gemm(k, w, (o_ch, kk, cols), MatRef::row_major(col, cols), c)
                    }
                }
            };
            if nimg == 1 && !pool {
                product(MatMut::row_major(out, p), col)?;
                epilogue(k, g, bias, relu, out);
                return Ok(());
            }
            let stage = &mut rest[..o_ch * cols];
            product(MatMut::row_major(stage, cols), col)?;
            for (o, row) in stage.chunks_exact_mut(cols).enumerate() {
                for (n, plane) in row.chunks_exact_mut(p).enumerate() {
                    let dst = &mut out[(n * o_ch + o) * out_per_image / o_ch..];
                    if let Some(pool_g) = &pool_g {
                        // Same steps as unfused: the epilogue, then the pool kernel.
                        if bias.is_some() || relu {
                            (k.bias_act)(plane, bias.map_or(0.0, |b| b[o]), relu);
                        }
                        (k.maxpool_2x2_values)(pool_g, plane, &mut dst[..p / 4]);
                    } else {
                        dst[..p].copy_from_slice(plane);
                    }
                }
            }
            if !pool {
                epilogue(k, g, bias, relu, out);
            }
            Ok(())
        },
    )
}

/// [`forward`] on raw weights `[O, C, KH, KW]`, packed once for the call where
/// [`packs_weight`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_raw(
    k: &Kernels,
    g: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    pool: bool,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let kk = g.in_channels * g.kernel_h * g.kernel_w;
    let packed = pack_forward_weight(k, g.out_channels, kk, w)?;
    let w = packed
        .as_ref()
        .map_or(Weight::Raw(MatRef::row_major(w, kk)), Weight::Packed);
    forward(k, g, x, w, bias, relu, pool, out, scratch)
}

/// Applies `act(y + bias)` to every output plane of `out` (whole images).
pub(crate) fn epilogue(
    k: &Kernels,
    g: &Conv2dGeometry,
    bias: Option<&[f32]>,
    relu: bool,
    out: &mut [f32],
) {
    if bias.is_none() && !relu {
        return;
    }
    let p = g.out_h * g.out_w;
    for (i, plane) in out.chunks_exact_mut(p).enumerate() {
        let b = bias.map_or(0.0, |b| b[i % g.out_channels]);
        (k.bias_act)(plane, b, relu);
    }
}

/// Gradient w.r.t. the input: `dcol = Wᵀ · dY` per chunk, then col2im.
pub(crate) fn backward_input(
    k: &Kernels,
    g: &Conv2dGeometry,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let plan = Im2colPlan::new(g);
    let (kk, p, o_ch) = (plan.k, plan.p, g.out_channels);
    let wt = MatRef::col_major(w, kk);
    let packed = pack_weight(k, kk, o_ch, wt)?;
    let wt = packed.as_ref().map_or(Weight::Raw(wt), Weight::Packed);
    let in_img = g.in_channels * g.in_h * g.in_w;
    let flops = 2 * g.output_len() * kk;
    for_chunks(
        g,
        &plan,
        flops,
        dx,
        in_img,
        scratch,
        |n0, nimg, dx, slot| {
            let cols = nimg * p;
            let (dcol, rest) = slot.split_at_mut(kk * cols);
            let dy_chunk = &dy[n0 * o_ch * p..][..nimg * o_ch * p];
            let b = if nimg == 1 {
                MatRef::row_major(dy_chunk, p)
            } else {
                let dyt = &mut rest[..o_ch * cols];
                gather_channels(g, dy_chunk, nimg, dyt);
                MatRef::row_major(dyt, cols)
            };
            weight_gemm(k, wt, (kk, o_ch, cols), b, MatMut::row_major(dcol, cols))?;
            col2im(g, dcol, nimg, dx);
            Ok(())
        },
    )
}

/// Gradient w.r.t. the weight: `dW = Σ_chunks dY_chunk · col_chunkᵀ`, chunks in batch order,
/// the GEMM split over row panels of dW only.
pub(crate) fn backward_weight(
    k: &Kernels,
    g: &Conv2dGeometry,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let plan = Im2colPlan::new(g);
    let (kk, p, o_ch) = (plan.k, plan.p, g.out_channels);
    let in_img = g.in_channels * g.in_h * g.in_w;
    let slot = &mut scratch[..plan.slot_len];
    let mut n0 = 0;
    while n0 < g.batch {
        let nimg = plan.cn.min(g.batch - n0);
        let cols = nimg * p;
        let (col, rest) = slot.split_at_mut(kk * cols);
        (k.im2col)(g, &x[n0 * in_img..][..nimg * in_img], nimg, col);
        let dy_chunk = &dy[n0 * o_ch * p..][..nimg * o_ch * p];
        let a = if nimg == 1 {
            MatRef::row_major(dy_chunk, p)
        } else {
            let dyt = &mut rest[..o_ch * cols];
            gather_channels(g, dy_chunk, nimg, dyt);
            MatRef::row_major(dyt, cols)
        };
        let beta = if n0 == 0 { 0.0 } else { 1.0 };
        sgemm_rows_par(
            o_ch,
            cols,
            kk,
            1.0,
            a,
            MatRef::col_major(col, cols),
            beta,
            dw,
            kk,
        )?;
        n0 += nimg;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::pack::{Side, pack_all};
    use crate::geometry::Padding;
    use proptest::prelude::*;

    fn x_of(g: &Conv2dGeometry, seed: u32) -> Vec<f32> {
        (0..g.input_len())
            .map(|i| (i as u32 ^ seed) as f32)
            .collect()
    }

    proptest! {
        /// Implicit GEMM's B equals im2col's matrix packed by the GEMM's own packer, for
        /// rows of 8 and 16 floats, panel widths they do and do not divide (rows straddling
        /// panels), batches that leave the last panel partial, and reduction blocks that
        /// split the rows (kc below K) or not; 'same' padding and panels not a multiple of
        /// 8 wide are refused (nothing written).
        #[test]
        fn panels_equal_packed_im2col(
            (n, c, h, w, kh, kw) in (1usize..4, 1usize..4, 1usize..9, 1usize..3, 1usize..6, 1usize..6),
            same in any::<bool>(),
            nr in prop::sample::select(vec![8usize, 12, 16, 24, 32, 48]),
            kc in prop::sample::select(vec![3usize, 7, 256]),
            seed in 0u32..1000,
        ) {
            let padding = if same { Padding::Same } else { Padding::Valid };
            let Ok(g) = Conv2dGeometry::new(n, c, h, w * 8 + kw - 1, 1, kh, kw, padding) else {
                return Ok(()); // kernel larger than a 'valid' input: refused, nothing to test
            };
            if !panels_apply(&g, nr) {
                // Writes nothing where it does not apply (the caller unrolls instead).
                let mut d = vec![f32::NAN; 4];
                im2col_panels(&g, &x_of(&g, seed), n, nr, kc, &mut d);
                prop_assert!(d.iter().all(|v| v.is_nan()));
                return Ok(());
            }
            let x = x_of(&g, seed);
            let (kk, cols) = (c * kh * kw, n * g.out_h * g.out_w);
            let mut col = vec![f32::NAN; kk * cols];
            im2col(&g, &x, n, &mut col);
            // B = col (kk x cols, row-major) seen as its transpose, as gemm_pack_b does.
            let bt = MatRef { data: &col, rs: 1, cs: cols };
            let want = pack_all(Side::B, &bt, cols, kk, nr, kc);
            let mut got = vec![f32::NAN; packed_len(cols, kk, nr)];
            im2col_panels(&g, &x, n, nr, kc, &mut got);
            prop_assert_eq!(&got, &want.data, "{:?}", g);
        }
    }
}
