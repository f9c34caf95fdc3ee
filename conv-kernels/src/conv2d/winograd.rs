//! Winograd F(2x2, 5x5) forward convolution for 5x5 kernels (conv2 of the Table 1 CNN).
//!
//! Each 2x2 output tile comes from a 6x6 input tile: `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, with
//! interpolation points 0, ±1, ±2 and ∞. The 36 element-wise products over the input
//! channels become 36 small GEMMs, `M[ξ] (O x T) = U[ξ] (O x C) · V[ξ] (C x T)`, over the
//! T tiles of a chunk of images: 36 x 4 = 144 multiply-adds per tile and channel pair where
//! direct convolution needs 4 x 25 = 100 per output pixel, i.e. 2.78x fewer. The price is
//! the three transforms (weights once per model version or call, inputs once per tile and channel, outputs
//! once per tile and output channel) and a slightly larger rounding error than the direct
//! sum (the transforms' coefficients reach 5 and 1/24; tested against the reference).
//!
//! The transforms run on the dispatched SIMD tier, one tile (or filter) per lane; the GEMMs
//! on our blocked GEMM with the transformed filters packed once ([`pack_weights`]: per model
//! version through [`super::PackedConv`], else per call), which beats `matrixmultiply` on
//! these small products (`O x C x T` = 64 x 32 x 64 for conv2; BENCHMARKS.md) on the AVX2
//! and AVX-512 tiers; the portable tier keeps `matrixmultiply` (which loses nothing there). Each output depends only on its own tile's data and the fixed
//! reduction order over channels, so results do not depend on the thread count.

use crate::dispatch::Kernels;
use crate::error::{KernelError, Result};
use crate::gemm::{
    KC, MAX_NR, MatMut, MatRef, Operand, PackedPanels, PanelsRef, packed_len, sgemm,
};
use crate::geometry::Conv2dGeometry;
use crate::simd::F32Vec;
use rayon::prelude::*;

/// Transform size: a 6x6 input tile per 2x2 output tile.
const ALPHA: usize = 6;
/// Positions of the transformed tile.
const XI: usize = ALPHA * ALPHA;
/// Widest vector of any tier: transforms process this many tiles at most per step.
const MAX_LANES: usize = 16;
/// Tiles a chunk aims for: V (36·C·T) and M (36·O·T) of conv2 stay within L2 (measured,
/// see BENCHMARKS.md).
const TARGET_TILES: usize = 64;

/// Distance in floats between the 36 planes (one per ξ) of V `[36, C, T]` or M `[36, O, T]`
/// with `rows` rows of `t` tiles: the plane size rounded up to a cache line plus one line.
/// Without the extra line, conv2's planes are 8 or 16 KiB apart, so the 36 values one
/// transform step reads (output) or writes (input) all fall into the same L1 set and evict
/// each other (an 8-way cache holds 8 of them); a one-line skew spreads them over 36 sets.
pub(crate) fn plane_stride(rows: usize, t: usize) -> usize {
    const LINE: usize = 16;
    (rows * t).next_multiple_of(LINE) + LINE
}

/// Whether this path computes `g` (5x5 kernels, any padding).
pub(crate) fn applies(g: &Conv2dGeometry) -> bool {
    g.kernel_h == 5 && g.kernel_w == 5
}

/// Sizes of the Winograd path for one geometry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WinogradPlan {
    tiles_h: usize,
    tiles_w: usize,
    /// Images per chunk.
    cn: usize,
    /// Elements of one worker's V `[36, C, T]` plus M `[36, O, T]` (planes
    /// [`plane_stride`] apart).
    work_len: usize,
}

impl WinogradPlan {
    pub(crate) fn new(g: &Conv2dGeometry) -> Self {
        let (tiles_h, tiles_w) = (g.out_h.div_ceil(2), g.out_w.div_ceil(2));
        let per_img = tiles_h * tiles_w;
        let cn = TARGET_TILES.div_ceil(per_img).clamp(1, g.batch);
        let t = cn * per_img;
        Self {
            tiles_h,
            tiles_w,
            cn,
            work_len: XI
                * (plane_stride(g.in_channels, t.next_multiple_of(MAX_NR))
                    + plane_stride(g.out_channels, t)),
        }
    }

    /// Scratch one worker slot must hold: its V and M (the packed U lives outside).
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

/// Transforms the filters `w` `[O, C, 5, 5]` into `u` `[36, O, C]` (`u[ξ]` is row-major
/// `O x C`, the left GEMM operand). One filter per lane.
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

/// Tiles of a V plane with its columns rounded up to whole panels of `nr` (`nr` = 0:
/// row-major, no rounding).
pub(crate) fn padded_tiles(t: usize, nr: usize) -> usize {
    if nr == 0 { t } else { t.next_multiple_of(nr) }
}

/// Transforms the input tiles of `nimg` images of `x` into `v` `[36, C, T]` (T = nimg ·
/// tiles per image; `v[ξ]` is the `C x T` right GEMM operand), planes
/// [`plane_stride`]`(C, `[`padded_tiles`]`(T, nr))` apart. With `nr` = 0 each plane is
/// row-major (for `matrixmultiply`); else it is already in our GEMM's packed-B layout
/// (panels of `nr` columns, reduction blocks of `KC`, zeros past column T), so the GEMM
/// packs nothing. One tile per lane; `nr` must be a multiple of `V::LANES`.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // i, j index the 6x6 tile on both sides
pub(crate) unsafe fn input_simd<V: F32Vec>(
    g: &Conv2dGeometry,
    x: &[f32],
    nimg: usize,
    nr: usize,
    v: &mut [f32],
) {
    let (tiles_h, tiles_w) = (g.out_h.div_ceil(2), g.out_w.div_ceil(2));
    let per_img = tiles_h * tiles_w;
    let t_all = nimg * per_img;
    let c_all = g.in_channels;
    let padded = padded_tiles(t_all, nr);
    let vs = plane_stride(c_all, padded);
    // The offset in a plane of (row c, tile t) is `row_at(c) + col_at(c, t)`; t is a
    // multiple of V::LANES, so a vector of tiles from t stays within one panel.
    let row_at = |c: usize| -> usize {
        if nr == 0 {
            c * t_all
        } else {
            let pc = c / KC * KC;
            pc * padded + (c - pc) * nr
        }
    };
    let col_at = |c: usize, t: usize| -> usize {
        match t.checked_div(nr) {
            None => t,
            Some(q) => {
                let pc = c / KC * KC;
                q * KC.min(c_all - pc) * nr + t % nr
            }
        }
    };
    let plane = g.in_h * g.in_w;
    let mut d = [0.0f32; XI * MAX_LANES];
    let mut res = [0.0f32; XI * MAX_LANES];
    let mut t0 = 0;
    while t0 < t_all {
        let n = V::LANES.min(t_all - t0);
        // Each lane's tile, once per group of tiles (not per channel): the offset of its
        // top-left input in channel 0 of its image, and its origin for the padded case.
        let mut start = [0usize; MAX_LANES];
        let mut origin = [(0isize, 0isize); MAX_LANES];
        let mut inside = true;
        for q in 0..V::LANES {
            let t = t0 + q.min(n - 1);
            let (img, tile) = (t / per_img, t % per_img);
            let (th, tw) = (tile / tiles_w, tile % tiles_w);
            let (r0, c0) = (
                2 * th as isize - g.pad_top as isize,
                2 * tw as isize - g.pad_left as isize,
            );
            inside &= r0 >= 0
                && c0 >= 0
                && r0 as usize + ALPHA <= g.in_h
                && c0 as usize + ALPHA <= g.in_w;
            origin[q] = (r0, c0);
            start[q] = img * c_all * plane + (r0.max(0) as usize) * g.in_w + c0.max(0) as usize;
        }
        for c in 0..c_all {
            let at = row_at(c) + col_at(c, t0);
            if inside {
                for (q, &s0) in start[..V::LANES].iter().enumerate() {
                    let base = s0 + c * plane;
                    for a in 0..ALPHA {
                        let row = &x[base + a * g.in_w..][..ALPHA];
                        for (b, &val) in row.iter().enumerate() {
                            d[(a * ALPHA + b) * MAX_LANES + q] = val;
                        }
                    }
                }
            } else {
                for q in 0..V::LANES {
                    let t = t0 + q.min(n - 1);
                    let src = &x[((t / per_img) * c_all + c) * plane..][..plane];
                    let (r0, c0) = origin[q];
                    for a in 0..ALPHA {
                        for b in 0..ALPHA {
                            let (ih, iw) = (r0 + a as isize, c0 + b as isize);
                            let ok = ih >= 0
                                && iw >= 0
                                && (ih as usize) < g.in_h
                                && (iw as usize) < g.in_w;
                            d[(a * ALPHA + b) * MAX_LANES + q] = if ok {
                                src[ih as usize * g.in_w + iw as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            // SAFETY: the caller guarantees `V`'s ISA; loads and stores are through slices.
            unsafe {
                // Plain loops, no closures (see `output_simd`).
                let zero = V::splat(0.0);
                let mut cols = [[zero; 6]; 6]; // cols[j] = Bᵀ d[:, j]
                for (j, col) in cols.iter_mut().enumerate() {
                    let mut dj = [zero; 6];
                    for (a, v) in dj.iter_mut().enumerate() {
                        *v = V::load(&d[(a * ALPHA + j) * MAX_LANES..]);
                    }
                    *col = bt(dj);
                }
                for i in 0..6 {
                    let mut row = [zero; 6];
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = cols[j][i];
                    }
                    for (l, val) in bt(row).iter().enumerate() {
                        let xi = i * ALPHA + l;
                        if n == V::LANES {
                            // A whole vector of tiles: straight into V (no staging copy).
                            val.store(&mut v[xi * vs + at..]);
                        } else {
                            val.store(&mut res[xi * MAX_LANES..]);
                        }
                    }
                }
            }
            if n < V::LANES {
                for xi in 0..XI {
                    let dst = &mut v[xi * vs + at..][..n];
                    for (d, s) in dst.iter_mut().zip(&res[xi * MAX_LANES..]) {
                        *d = *s;
                    }
                }
            }
        }
        t0 += n;
    }
    if padded > t_all {
        // The last panel's columns past T: zeros, as the GEMM's own packing writes.
        for xi in 0..XI {
            for c in 0..c_all {
                let at = xi * vs + row_at(c) + col_at(c, t_all);
                v[at..][..padded - t_all].fill(0.0);
            }
        }
    }
}

/// Arguments of the output transform.
#[derive(Debug)]
pub(crate) struct OutputArgs<'a> {
    /// The transformed products `[36, O, T]`.
    pub m: &'a [f32],
    /// Images of the chunk.
    pub nimg: usize,
    /// Per-output-channel bias.
    pub bias: Option<&'a [f32]>,
    /// Apply ReLU after the bias.
    pub relu: bool,
    /// Write the maximum of each 2x2 output tile (a fused 2x2 stride-2 max-pool: `out` is
    /// then `[nimg, O, OH/2, OW/2]`) instead of the tile.
    pub pool: bool,
}

/// Transforms `m` back into 2x2 output tiles, adds the bias, applies ReLU and writes the
/// chunk's NCHW output `out` (`nimg` images). One tile per lane.
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
    let o_all = g.out_channels;
    let ms = plane_stride(o_all, t_all);
    let p = g.out_h * g.out_w;
    let mut mbuf = [0.0f32; XI * MAX_LANES];
    let mut y = [0.0f32; 4 * MAX_LANES];
    for o in 0..o_all {
        let bias = a.bias.map_or(0.0, |b| b[o]);
        let mut t0 = 0;
        while t0 < t_all {
            let n = V::LANES.min(t_all - t0);
            let full = n == V::LANES;
            if !full {
                for xi in 0..XI {
                    mbuf[xi * MAX_LANES..][..n]
                        .copy_from_slice(&a.m[xi * ms + o * t_all + t0..][..n]);
                }
            }
            // SAFETY: the caller guarantees `V`'s ISA; loads and stores are through slices.
            unsafe {
                // Plain loops, no closures: a closure does not inherit the tier's target
                // features, so its vector loads would become calls (they did: 36 per step).
                let (src, base, step): (&[f32], usize, usize) = if full {
                    (a.m, o * t_all + t0, ms)
                } else {
                    (&mbuf, 0, MAX_LANES)
                };
                let (bv, zero) = (V::splat(bias), V::splat(0.0));
                let mut cols = [[zero; 2]; 6]; // cols[j] = Aᵀ m[:, j]
                for (j, col) in cols.iter_mut().enumerate() {
                    let mut mj = [zero; 6];
                    for (i, m) in mj.iter_mut().enumerate() {
                        *m = V::load(&src[base + (i * ALPHA + j) * step..]);
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
                    if full {
                        let at = (t0 / per_img * o_all + o) * per_img + t0 % per_img;
                        if t0 % per_img + n <= per_img {
                            // The lanes are consecutive tiles of one image: one store.
                            m.store(&mut out[at..]);
                            t0 += n;
                            continue;
                        }
                    }
                    m.store(&mut y);
                    for (q, &val) in y[..n].iter().enumerate() {
                        let t = t0 + q;
                        out[(t / per_img * o_all + o) * per_img + t % per_img] = val;
                    }
                    t0 += n;
                    continue;
                }
                for (i, v) in tile.iter().enumerate() {
                    v.store(&mut y[i * MAX_LANES..]);
                }
            }
            for q in 0..n {
                let t = t0 + q;
                let (img, tile) = (t / per_img, t % per_img);
                let (th, tw) = (tile / tiles_w, tile % tiles_w);
                let plane = &mut out[(img * o_all + o) * p..][..p];
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
            t0 += n;
        }
    }
}

/// The transformed filters `U[ξ]` (`O x C`) as the tier's GEMM wants them.
#[derive(Debug, Clone)]
pub(crate) enum Filters {
    /// Packed into our GEMM's panels, one per ξ.
    Packed(Vec<PackedPanels>),
    /// Row-major `[36, O, C]` for `matrixmultiply`, on tiers where our GEMM loses to it.
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
    if !k.gemm_beats_matrixmultiply() {
        return Ok(Filters::Plain(u));
    }
    u.chunks_exact(per)
        .map(|uxi| {
            k.gemm_pack_a(
                out_channels,
                in_channels,
                MatRef::row_major(uxi, in_channels),
            )
        })
        .collect::<Result<_>>()
        .map(Filters::Packed)
}

/// Forward convolution by Winograd F(2x2, 5x5) with the packed transformed filters `u` (36
/// of them, from [`pack_weights`] on the same tier), the bias + ReLU epilogue and, when
/// `pool`, the 2x2 max-pool (`out` then holds the pooled `[N, O, OH/2, OW/2]`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    k: &Kernels,
    g: &Conv2dGeometry,
    x: &[f32],
    u: &Filters,
    bias: Option<&[f32]>,
    relu: bool,
    pool: bool,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let plan = WinogradPlan::new(g);
    let work = scratch;
    let (c_all, o_all) = (g.in_channels, g.out_channels);
    let per_img = plan.tiles_h * plan.tiles_w;
    let in_img = c_all * g.in_h * g.in_w;
    let out_img = if pool {
        o_all * per_img
    } else {
        o_all * g.out_h * g.out_w
    };
    // Our GEMM reads V as packed panels written by the input transform; matrixmultiply
    // reads it row-major.
    let nr = match u {
        Filters::Packed(_) => k.gemm_tile().nr,
        Filters::Plain(_) => 0,
    };
    let chunk = |n0: usize, out: &mut [f32], slot: &mut [f32]| -> Result<()> {
        let nimg = out.len() / out_img;
        let t = nimg * per_img;
        let vs = plane_stride(c_all, padded_tiles(t, nr));
        let ms = plane_stride(o_all, t);
        let (v, rest) = slot.split_at_mut(XI * vs);
        let m = &mut rest[..XI * ms];
        (k.winograd_input)(g, &x[n0 * in_img..][..nimg * in_img], nimg, nr, v);
        for xi in 0..XI {
            let c = MatMut::row_major(&mut m[xi * ms..][..o_all * t], t);
            match u {
                Filters::Packed(u) => {
                    let a = u.get(xi).ok_or(KernelError::Overflow { op: "winograd" })?;
                    let b = &v[xi * vs..][..packed_len(t, c_all, nr)];
                    let b = PanelsRef::b(c_all, t, nr, KC, b);
                    k.gemm_b_panels(o_all, c_all, t, Operand::Packed(a), b, c)?
                }
                Filters::Plain(u) => {
                    let a = &u[xi * o_all * c_all..][..o_all * c_all];
                    let b = MatRef::row_major(&v[xi * vs..][..c_all * t], t);
                    sgemm(o_all, c_all, t, 1.0, MatRef::row_major(a, c_all), b, 0.0, c)?
                }
            }
        }
        let args = OutputArgs {
            m,
            nimg,
            bias,
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
