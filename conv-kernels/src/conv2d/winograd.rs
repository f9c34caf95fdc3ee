//! Winograd F(2x2, 5x5) forward convolution for 5x5 kernels (conv2 of the Table 1 CNN).
//!
//! Each 2x2 output tile comes from a 6x6 input tile: `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, with
//! interpolation points 0, ±1, ±2 and ∞. The 36 element-wise products over the input
//! channels become 36 small GEMMs, `M[ξ] (T x O) = V[ξ] (T x C) · U[ξ] (C x O)`, over the
//! T tiles of a chunk of images: 36 x 4 = 144 multiply-adds per tile and channel pair where
//! direct convolution needs 4 x 25 = 100 per output pixel, i.e. 2.78x fewer. The price is
//! the three transforms (weights once per model version or call, inputs once per tile and
//! channel, outputs once per tile and output channel) and a slightly larger rounding error
//! than the direct sum (the transforms' coefficients reach 5 and 1/24; tested against the
//! reference).
//!
//! The input and output transforms run on the dispatched SIMD tier with **one vector over
//! channels**: the chunk is first staged channels-last (a transposition in `LANES x LANES`
//! blocks; none at all for channels-last input that needs no zero border, which is read in
//! place), so each of a tile's 36 values for a block of channels is one contiguous load,
//! and V and M are row-major with channels contiguous. (Lanes over tiles, the earlier
//! layout, needed 36 scalar stores per tile and channel to transpose the input: 13-21 % of
//! the batched model; BENCHMARKS.md.) The GEMMs read V's rows in place (no packing) against
//! U packed once as the right operand ([`pack_weights`]: per model version through
//! [`super::PackedConv`], else per call), on our blocked GEMM on the AVX2 and AVX-512 tiers;
//! the portable tier keeps `matrixmultiply` (which loses nothing there). Each output depends
//! only on its own tile's data and the fixed reduction order over channels, so results do
//! not depend on the thread count.

use crate::dispatch::Kernels;
use crate::error::{KernelError, Result};
use crate::gemm::{MatMut, MatRef, PackedPanels, sgemm};
use crate::geometry::Conv2dGeometry;
use crate::simd::F32Vec;
use rayon::prelude::*;

/// Transform size: a 6x6 input tile per 2x2 output tile.
const ALPHA: usize = 6;
/// Positions of the transformed tile.
const XI: usize = ALPHA * ALPHA;
/// Widest vector of any tier: channels are padded to at most a multiple of this.
pub(crate) const MAX_LANES: usize = 16;
/// Tiles a chunk aims for: 48 fills whole 6-row (AVX2) and 8-row (AVX-512, NEON) panels of
/// the GEMM for conv2's 16 tiles per image; 16 measured slower on Zen 3 (BENCHMARKS.md).
const TARGET_TILES: usize = 48;

/// Distance in floats between the 36 planes (one per ξ) of V `[36, T, C]` or M `[36, T, O]`
/// holding `len` values each: the plane size rounded up to a cache line plus one line.
/// Without the extra line, planes a multiple of 4 KiB apart (conv2's M: 12 KiB with 48-tile
/// chunks; V and M were 8 and 16 KiB with the earlier 64) put the 36 values one transform
/// step reads (output) or writes (input) into the same L1 set, where they evict each other
/// (an 8-way cache holds 8 of them); a one-line skew spreads them over 36 sets.
pub(crate) fn plane_stride(len: usize) -> usize {
    const LINE: usize = 16;
    len.next_multiple_of(LINE) + LINE
}

/// Staged rows and columns per image: the extent of the 6x6 input tiles of 2x2 output tiles
/// (`2 · tiles + 4` each way).
fn stage_dims(g: &Conv2dGeometry) -> (usize, usize) {
    (2 * g.out_h.div_ceil(2) + 4, 2 * g.out_w.div_ceil(2) + 4)
}

/// Whether this path computes `g` (5x5 kernels, any padding).
pub(crate) fn applies(g: &Conv2dGeometry) -> bool {
    g.kernel_h == 5 && g.kernel_w == 5
}

/// Sizes of the Winograd path for one geometry and vector width.
///
/// The transforms run with one vector over channels: the chunk's input is first staged
/// channels-last (`[img, H, W, Cp]`, zero borders where the tiles overhang), so every tile
/// value of a block of channels is one contiguous vector load, and V `[36, T, Cp]` and M
/// `[36, T, Op]` are row-major with channels contiguous. The GEMMs `M[ξ] = V[ξ] · U[ξ]`
/// read V in place (no packing) against U packed once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WinogradPlan {
    tiles_h: usize,
    tiles_w: usize,
    /// Staged rows and columns per image (the tiles' extent: `2 · tiles + 4`).
    stage_h: usize,
    stage_w: usize,
    /// Input and output channels rounded up to whole vectors.
    cp: usize,
    op: usize,
    /// Images per chunk.
    cn: usize,
    /// Elements of one worker's staging, V, M and padded bias.
    work_len: usize,
}

/// `n` rounded up to whole vectors of `lanes`.
fn padded(n: usize, lanes: usize) -> usize {
    n.next_multiple_of(lanes)
}

impl WinogradPlan {
    /// The plan for vectors of `lanes` floats; with [`MAX_LANES`] its slot fits every tier.
    pub(crate) fn new(g: &Conv2dGeometry, lanes: usize) -> Self {
        let (tiles_h, tiles_w) = (g.out_h.div_ceil(2), g.out_w.div_ceil(2));
        let per_img = tiles_h * tiles_w;
        let cn = TARGET_TILES.div_ceil(per_img).clamp(1, g.batch);
        let t = cn * per_img;
        let (stage_h, stage_w) = stage_dims(g);
        let (cp, op) = (padded(g.in_channels, lanes), padded(g.out_channels, lanes));
        Self {
            tiles_h,
            tiles_w,
            stage_h,
            stage_w,
            cp,
            op,
            cn,
            work_len: cn * stage_h * stage_w * cp
                + XI * (plane_stride(t * cp) + plane_stride(t * op))
                + op,
        }
    }

    /// Scratch one worker slot must hold: its staging, V, M and bias (U lives outside).
    pub(crate) fn slot_len(&self) -> usize {
        self.work_len
    }
}

/// `Bᵀ d` for one column of six values (also used on rows).
#[inline(always)]
unsafe fn bt<V: F32Vec>(d: [V; 6]) -> [V; 6] {
    // SAFETY: the caller guarantees `V`'s ISA; no memory is accessed.
    unsafe {
        let (four, five, two) = (V::splat(4.0), V::splat(5.0), V::splat(2.0));
        let a = d[4].sub(four.mul(d[2])); // d4 - 4 d2
        let b = d[3].sub(four.mul(d[1])); // d3 - 4 d1
        let c = d[4].sub(d[2]); // d4 - d2
        let e = two.mul(d[3].sub(d[1])); // 2 (d3 - d1)
        [
            four.mul_add(d[0], d[4].sub(five.mul(d[2]))),
            a.add(b),
            a.sub(b),
            c.add(e),
            c.sub(e),
            four.mul_add(d[1], d[5].sub(five.mul(d[3]))),
        ]
    }
}

/// `Aᵀ m` for six values: two outputs.
#[inline(always)]
unsafe fn at<V: F32Vec>(m: [V; 6]) -> [V; 2] {
    // SAFETY: the caller guarantees `V`'s ISA; no memory is accessed.
    unsafe {
        let two = V::splat(2.0);
        [
            m[0].add(m[1]).add(m[2]).add(m[3]).add(m[4]),
            two.mul_add(m[3].sub(m[4]), m[1].sub(m[2])).add(m[5]),
        ]
    }
}

/// `G g` for five values: six outputs (G's rows: 1/4 g0; -1/6 Σg; -1/6 (g0 - g1 + g2 - g3
/// + g4); 1/24 g0 + 1/12 g1 + 1/6 g2 + 1/3 g3 + 2/3 g4; the same with odd signs flipped; g4).
#[inline(always)]
unsafe fn gk<V: F32Vec>(g: [V; 5]) -> [V; 6] {
    // SAFETY: the caller guarantees `V`'s ISA; no memory is accessed.
    unsafe {
        let even = g[0].add(g[2]).add(g[4]);
        let odd = g[1].add(g[3]);
        let e2 = V::splat(1.0 / 24.0)
            .mul(g[0])
            .add(V::splat(1.0 / 6.0).mul(g[2]))
            .add(V::splat(2.0 / 3.0).mul(g[4]));
        let o2 = V::splat(1.0 / 12.0)
            .mul(g[1])
            .add(V::splat(1.0 / 3.0).mul(g[3]));
        let m6 = V::splat(-1.0 / 6.0);
        [
            V::splat(0.25).mul(g[0]),
            m6.mul(even.add(odd)),
            m6.mul(even.sub(odd)),
            e2.add(o2),
            e2.sub(o2),
            g[4],
        ]
    }
}

/// Transforms the filters `w` `[O, C, 5, 5]` into `u` `[36, O, C]` (`u[ξ]` row-major `O x
/// C`; [`pack_weights`] turns each into the right GEMM operand). One filter per lane.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn weights_simd<V: F32Vec>(w: &[f32], u: &mut [f32]) {
    let filters = w.len() / 25;
    let mut buf = [0.0f32; 25 * MAX_LANES];
    let mut res = [0.0f32; XI * MAX_LANES];
    let mut f0 = 0;
    while f0 < filters {
        let n = V::LANES.min(filters - f0);
        for q in 0..V::LANES {
            for k in 0..25 {
                buf[k * MAX_LANES + q] = if q < n { w[(f0 + q) * 25 + k] } else { 0.0 };
            }
        }
        // SAFETY: the caller guarantees `V`'s ISA; loads and stores are through slices.
        unsafe {
            let mut rows = [[V::splat(0.0); 6]; 5]; // (G g) per filter row, transposed
            for (r, row) in rows.iter_mut().enumerate() {
                let gr: [V; 5] = std::array::from_fn(|c| V::load(&buf[(r * 5 + c) * MAX_LANES..]));
                *row = gk(gr);
            }
            for j in 0..6 {
                let col: [V; 5] = std::array::from_fn(|r| rows[r][j]);
                let t = gk(col);
                for (i, v) in t.iter().enumerate() {
                    v.store(&mut res[(i * 6 + j) * MAX_LANES..]);
                }
            }
        }
        let per = u.len() / XI;
        for xi in 0..XI {
            u[xi * per + f0..][..n].copy_from_slice(&res[xi * MAX_LANES..][..n]);
        }
        f0 += n;
    }
}

/// Whether the staged chunk is the input itself: no padding, no overhang, whole vectors of
/// channels (then NHWC input needs no staging at all, and NCHW only a transposition).
fn stages_as_is(g: &Conv2dGeometry, cp: usize) -> bool {
    let (sh, sw) = stage_dims(g);
    g.pad_top == 0 && g.pad_left == 0 && sh == g.in_h && sw == g.in_w && cp == g.in_channels
}

/// Copies `nimg` images of `x` (NCHW, or NHWC when `channels_last`) into `stage`,
/// channels-last `[img, sh, sw, cp]`: staged position `(i, j)` holds input row `i -
/// pad_top`, column `j - pad_left`, and zeros where that lies outside the image or the
/// channel is padding. Where the staging is an NCHW image itself ([`stages_as_is`]) it is a
/// transposition of each image's `C x HW` matrix, done in `LANES x LANES` blocks.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn stage_simd<V: F32Vec>(
    g: &Conv2dGeometry,
    x: &[f32],
    channels_last: bool,
    nimg: usize,
    cp: usize,
    stage: &mut [f32],
) {
    let (sh, sw) = stage_dims(g);
    let stage = &mut stage[..nimg * sh * sw * cp];
    let (plane, c_all, l) = (g.in_h * g.in_w, g.in_channels, V::LANES);
    let same = stages_as_is(g, cp) && !channels_last;
    if !same {
        stage.fill(0.0);
    }
    let (rows, cols) = (
        g.in_h.min(sh.saturating_sub(g.pad_top)),
        g.in_w.min(sw.saturating_sub(g.pad_left)),
    );
    let whole = plane / l * l;
    for (dst, src) in stage
        .chunks_exact_mut(sh * sw * cp)
        .zip(x.chunks_exact(c_all * plane))
    {
        if same {
            for c0 in (0..c_all).step_by(l) {
                for p0 in (0..whole).step_by(l) {
                    // SAFETY: forwarded precondition; the callee checks the slices.
                    unsafe {
                        V::transpose_square(
                            &src[c0 * plane + p0..],
                            plane,
                            &mut dst[p0 * cp + c0..],
                            cp,
                        )
                    };
                }
                for p in whole..plane {
                    for c in c0..c0 + l {
                        dst[p * cp + c] = src[c * plane + p];
                    }
                }
            }
            continue;
        }
        if channels_last {
            for h in 0..rows {
                for w in 0..cols {
                    let at = ((h + g.pad_top) * sw + g.pad_left + w) * cp;
                    dst[at..][..c_all].copy_from_slice(&src[(h * g.in_w + w) * c_all..][..c_all]);
                }
            }
            continue;
        }
        for (c, chan) in src.chunks_exact(plane).enumerate() {
            for h in 0..rows {
                let row = &chan[h * g.in_w..][..cols];
                let at = ((h + g.pad_top) * sw + g.pad_left) * cp + c;
                for (w, &val) in row.iter().enumerate() {
                    dst[at + w * cp] = val;
                }
            }
        }
    }
}

/// Stages `nimg` images of `x` (NCHW, or NHWC when `channels_last`) channels-last into
/// `stage` ([`stage_simd`]; an NHWC chunk that [`stages_as_is`] is read in place) and
/// transforms every tile into `v` `[36, T, cp]` (T = nimg · tiles per image, planes [`plane_stride`]`(T · cp)`
/// apart): `v[ξ]` is the `T x cp` left GEMM operand, row-major. One vector of channels per
/// step, `cp` a multiple of `V::LANES`.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn input_simd<V: F32Vec>(
    g: &Conv2dGeometry,
    x: &[f32],
    channels_last: bool,
    nimg: usize,
    cp: usize,
    stage: &mut [f32],
    v: &mut [f32],
) {
    let stage = if channels_last && stages_as_is(g, cp) {
        x
    } else {
        // SAFETY: forwarded precondition.
        unsafe { stage_simd::<V>(g, x, channels_last, nimg, cp, stage) };
        &*stage
    };
    let (tiles_h, tiles_w) = (g.out_h.div_ceil(2), g.out_w.div_ceil(2));
    let (sh, sw) = stage_dims(g);
    let t_all = nimg * tiles_h * tiles_w;
    let vs = plane_stride(t_all * cp);
    let mut t = 0;
    for img in 0..nimg {
        for th in 0..tiles_h {
            for tw in 0..tiles_w {
                let base = ((img * sh + 2 * th) * sw + 2 * tw) * cp;
                let mut c0 = 0;
                while c0 < cp {
                    // SAFETY: the caller guarantees `V`'s ISA; loads and stores are through
                    // slices. Plain loops, no closures (see `output_simd`).
                    unsafe {
                        let zero = V::splat(0.0);
                        let mut cols = [[zero; 6]; 6]; // cols[j] = Bᵀ d[:, j]
                        for (j, col) in cols.iter_mut().enumerate() {
                            let mut dj = [zero; 6];
                            for (a, d) in dj.iter_mut().enumerate() {
                                *d = V::load(&stage[base + (a * sw + j) * cp + c0..]);
                            }
                            *col = bt(dj);
                        }
                        for i in 0..6 {
                            let mut row = [zero; 6];
                            for (j, r) in row.iter_mut().enumerate() {
                                *r = cols[j][i];
                            }
                            for (l, val) in bt(row).iter().enumerate() {
                                val.store(&mut v[(i * ALPHA + l) * vs + t * cp + c0..]);
                            }
                        }
                    }
                    c0 += V::LANES;
                }
                t += 1;
            }
        }
    }
}

/// Arguments of the output transform.
#[derive(Debug)]
pub(crate) struct OutputArgs<'a> {
    /// The transformed products `[36, T, op]`.
    pub m: &'a [f32],
    /// Images of the chunk.
    pub nimg: usize,
    /// Output channels rounded up to whole vectors (M's row length).
    pub op: usize,
    /// Per-output-channel bias, `op` long (zeros past the channels, and everywhere without
    /// a bias).
    pub bias: &'a [f32],
    /// Apply ReLU after the bias.
    pub relu: bool,
    /// Write the maximum of each 2x2 output tile (a fused 2x2 stride-2 max-pool: `out` is
    /// then `[nimg, O, OH/2, OW/2]`) instead of the tile.
    pub pool: bool,
}

/// Transforms `m` back into 2x2 output tiles, adds the bias, applies ReLU and writes the
/// chunk's NCHW output `out` (`nimg` images). One vector of output channels per step.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn output_simd<V: F32Vec>(
    g: &Conv2dGeometry,
    a: &OutputArgs<'_>,
    out: &mut [f32],
) {
    let (tiles_h, tiles_w) = (g.out_h.div_ceil(2), g.out_w.div_ceil(2));
    let per_img = tiles_h * tiles_w;
    let t_all = a.nimg * per_img;
    let (o_all, op) = (g.out_channels, a.op);
    let ms = plane_stride(t_all * op);
    let p = g.out_h * g.out_w;
    let mut y = [0.0f32; 4 * MAX_LANES];
    for t in 0..t_all {
        let (img, at_tile) = (t / per_img, t % per_img);
        let (th, tw) = (at_tile / tiles_w, at_tile % tiles_w);
        let mut o0 = 0;
        while o0 < op {
            let lanes = V::LANES.min(o_all - o0);
            // SAFETY: the caller guarantees `V`'s ISA; loads and stores are through slices.
            unsafe {
                // Plain loops, no closures: a closure does not inherit the tier's target
                // features, so its vector loads would become calls (they did: 36 per step).
                let base = t * op + o0;
                let (bv, zero) = (V::load(&a.bias[o0..]), V::splat(0.0));
                let mut cols = [[zero; 2]; 6]; // cols[j] = Aᵀ m[:, j]
                for (j, col) in cols.iter_mut().enumerate() {
                    let mut mj = [zero; 6];
                    for (i, m) in mj.iter_mut().enumerate() {
                        *m = V::load(&a.m[(i * ALPHA + j) * ms + base..]);
                    }
                    *col = at(mj);
                }
                let mut tile = [zero; 4];
                for r in 0..2 {
                    let mut row = [zero; 6];
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = cols[j][r];
                    }
                    for (s, val) in at(row).iter().enumerate() {
                        let mut val = val.add(bv);
                        if a.relu {
                            val = val.max(zero);
                        }
                        tile[r * 2 + s] = val;
                    }
                }
                if a.pool {
                    // Same order as the 2x2 pool kernel's window: (0,0), (0,1), (1,0), (1,1).
                    let m = tile[1].max(tile[0]).max(tile[2]).max(tile[3]);
                    m.store(&mut y);
                    let dst = &mut out[(img * o_all + o0) * per_img + at_tile..];
                    for (q, &val) in y[..lanes].iter().enumerate() {
                        dst[q * per_img] = val;
                    }
                    o0 += V::LANES;
                    continue;
                }
                for (i, v) in tile.iter().enumerate() {
                    v.store(&mut y[i * MAX_LANES..]);
                }
            }
            for q in 0..lanes {
                let plane = &mut out[(img * o_all + o0 + q) * p..][..p];
                for r in 0..2 {
                    let oh = 2 * th + r;
                    if oh >= g.out_h {
                        continue;
                    }
                    for s in 0..2 {
                        let ow = 2 * tw + s;
                        if ow < g.out_w {
                            plane[oh * g.out_w + ow] = y[(r * 2 + s) * MAX_LANES + q];
                        }
                    }
                }
            }
            o0 += V::LANES;
        }
    }
}

/// The transformed filters `U[ξ]` (`Cp x Op`, zero rows and columns past the channels) as
/// the tier's GEMM wants them.
#[derive(Debug, Clone)]
pub(crate) enum Filters {
    /// Packed into our GEMM's B panels, one per ξ.
    Packed(Vec<PackedPanels>),
    /// Row-major `[36, Cp, Op]` for `matrixmultiply`, on tiers where our GEMM loses to it.
    Plain(Vec<f32>),
}

impl Filters {
    /// f32 elements held.
    pub(crate) fn len(&self) -> usize {
        match self {
            Filters::Packed(u) => u.iter().map(PackedPanels::len).sum(),
            Filters::Plain(u) => u.len(),
        }
    }
}

/// The transformed filters of `w`: computed once per model version by
/// [`super::PackedConv`], or once per call by the unpacked API.
pub(crate) fn pack_weights(
    k: &Kernels,
    out_channels: usize,
    in_channels: usize,
    w: &[f32],
) -> Result<Filters> {
    let per = out_channels * in_channels;
    let mut u = vec![0.0; XI * per];
    (k.winograd_weights)(w, &mut u);
    let (cp, op) = (padded(in_channels, k.lanes), padded(out_channels, k.lanes));
    // U[ξ] as the right operand: row c, column o holds filter o's channel c.
    let mut plain = vec![0.0; XI * cp * op];
    for (uxi, dst) in u.chunks_exact(per).zip(plain.chunks_exact_mut(cp * op)) {
        for (o, filter) in uxi.chunks_exact(in_channels).enumerate() {
            for (c, &val) in filter.iter().enumerate() {
                dst[c * op + o] = val;
            }
        }
    }
    if !k.gemm_beats_matrixmultiply() {
        return Ok(Filters::Plain(plain));
    }
    plain
        .chunks_exact(cp * op)
        .map(|uxi| k.gemm_pack_b(cp, op, MatRef::row_major(uxi, op)))
        .collect::<Result<_>>()
        .map(Filters::Packed)
}

/// [`forward`] on raw `[O, C, 5, 5]` weights (transformed and packed here, per call), NCHW
/// in and out: the unpacked entry points' form.
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
    let u = pack_weights(k, g.out_channels, g.in_channels, w)?;
    let x = Input {
        data: x,
        channels_last: false,
    };
    forward(k, g, x, &u, bias, relu, pool, out, scratch)
}

/// The input of [`forward`]: the batch, NCHW or (`channels_last`) NHWC.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Input<'a> {
    pub data: &'a [f32],
    pub channels_last: bool,
}

/// Forward convolution by Winograd F(2x2, 5x5) with the packed transformed filters `u` (36
/// of them, from [`pack_weights`] on the same tier), the bias + ReLU epilogue and, when
/// `pool`, the 2x2 max-pool (`out` then holds the pooled `[N, O, OH/2, OW/2]`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    k: &Kernels,
    g: &Conv2dGeometry,
    x: Input<'_>,
    u: &Filters,
    bias: Option<&[f32]>,
    relu: bool,
    pool: bool,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let plan = WinogradPlan::new(g, k.lanes);
    let work = scratch;
    let (c_all, o_all, cp, op) = (g.in_channels, g.out_channels, plan.cp, plan.op);
    let per_img = plan.tiles_h * plan.tiles_w;
    let in_img = c_all * g.in_h * g.in_w;
    let out_img = if pool {
        o_all * per_img
    } else {
        o_all * g.out_h * g.out_w
    };
    let chunk = |n0: usize, out: &mut [f32], slot: &mut [f32]| -> Result<()> {
        let nimg = out.len() / out_img;
        let t = nimg * per_img;
        let (vs, ms) = (plane_stride(t * cp), plane_stride(t * op));
        let (stage, rest) = slot.split_at_mut(plan.cn * plan.stage_h * plan.stage_w * cp);
        let (v, rest) = rest.split_at_mut(XI * vs);
        let (m, rest) = rest.split_at_mut(XI * ms);
        let bias_padded = &mut rest[..op];
        bias_padded.fill(0.0);
        if let Some(b) = bias {
            bias_padded[..o_all].copy_from_slice(&b[..o_all]);
        }
        let xs = &x.data[n0 * in_img..][..nimg * in_img];
        (k.winograd_input)(g, xs, x.channels_last, nimg, cp, stage, v);
        for xi in 0..XI {
            let a = MatRef::row_major(&v[xi * vs..][..t * cp], cp);
            let c = MatMut::row_major(&mut m[xi * ms..][..t * op], op);
            match u {
                Filters::Packed(u) => {
                    let b = u.get(xi).ok_or(KernelError::Overflow { op: "winograd" })?;
                    k.gemm_a_in_place(t, cp, op, a, b, c)?
                }
                Filters::Plain(u) => {
                    let b = MatRef::row_major(&u[xi * cp * op..][..cp * op], op);
                    sgemm(t, cp, op, 1.0, a, b, 0.0, c)?
                }
            }
        }
        let args = OutputArgs {
            m,
            nimg,
            op,
            bias: bias_padded,
            relu,
            pool,
        };
        (k.winograd_output)(g, &args, out);
        Ok(())
    };
    let chunks = g.batch.div_ceil(plan.cn);
    let slots = work.len() / plan.work_len;
    let flops = 2 * g.output_len() * c_all * 25;
    let workers = crate::threads::workers_for(flops, chunks).min(slots).max(1);
    let per_group = chunks.div_ceil(workers);
    let run_group = |gi: usize, out: &mut [f32], slot: &mut [f32]| -> Result<()> {
        for (ci, o) in out.chunks_mut(plan.cn * out_img).enumerate() {
            chunk(
                (gi * per_group + ci) * plan.cn,
                o,
                &mut slot[..plan.work_len],
            )?;
        }
        Ok(())
    };
    if workers <= 1 {
        return run_group(0, out, work);
    }
    out.par_chunks_mut(per_group * plan.cn * out_img)
        .zip(work.par_chunks_mut(plan.work_len))
        .enumerate()
        .try_for_each(|(gi, (o, slot))| run_group(gi, o, slot))
}
