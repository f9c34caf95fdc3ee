//! Direct convolution (forward only) with **one vector over output channels**: each register
//! block holds a 2 x 6 patch of output pixels for one vector of output channels (12
//! accumulators); a tap multiplies one weight vector by broadcast input values (for 5-wide
//! kernels each input value of a kernel row is broadcast once and meets all 5 weight
//! vectors). Bias, ReLU and, when asked, the 2x2 max-pool run on the accumulators, and the
//! block is stored channels-last, which is the layout conv2's Winograd transform reads.
//!
//! Meant for small reductions: conv1 (one input channel, 25 taps), where im2col + GEMM
//! spends as much time unrolling the image, packing, adding the bias and pooling the
//! full-size output as it does multiplying. The input is read in place when it is NCHW
//! without padding (or has one channel, where NCHW and NHWC coincide), else from a
//! zero-padded `[C, ph, pw]` copy. NCHW output goes through a channels-last tile that is
//! transposed in `LANES x LANES` blocks.
//!
//! Each output is the bias plus the taps in the fixed order (channel, kernel row, kernel
//! column), whatever the block and the thread count: results are bit-identical for any
//! thread count, and pooled outputs are exactly the pool of the unpooled ones.

use super::Layout;
use crate::dispatch::Kernels;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::simd::F32Vec;
use rayon::prelude::*;

/// Widest vector of any tier: output channels are padded to at most a multiple of this.
const MAX_LANES: usize = 16;
/// Output columns per register block: 2 rows x 6 columns x one vector is 12 accumulators
/// (AVX2 has 16 registers). Measured on AVX2 (Zen 3), conv1 fused with its pool at batch 32:
/// 6 columns 0.372-0.377 ms, 4 columns 0.391-0.407 ms, 8 columns 0.81-0.84 ms (spills);
/// two vectors of channels x 2 columns (8 accumulators, fewer broadcasts) lost to one x 6.
const COLS: usize = 6;

/// `n` rounded up to whole vectors of `lanes`.
fn padded(n: usize, lanes: usize) -> usize {
    n.next_multiple_of(lanes)
}

/// Padded input plane sizes (the extent the taps read).
pub(crate) fn padded_dims(g: &Conv2dGeometry) -> (usize, usize) {
    (g.out_h + g.kernel_h - 1, g.out_w + g.kernel_w - 1)
}

/// Scratch elements one worker needs on any tier: the padded input copy, the channels-last
/// output tile and the padded bias.
pub(crate) fn slot_len(g: &Conv2dGeometry) -> usize {
    let (ph, pw) = padded_dims(g);
    let op = padded(g.out_channels, MAX_LANES);
    g.in_channels * ph * pw + g.out_h * g.out_w * op + op
}

/// Whether the image can be read in place: no padding, and either NCHW or one channel.
fn reads_in_place(g: &Conv2dGeometry, layout: Layout) -> bool {
    let (ph, pw) = padded_dims(g);
    g.pad_top == 0
        && g.pad_left == 0
        && ph == g.in_h
        && pw == g.in_w
        && (layout == Layout::Nchw || g.in_channels == 1)
}

/// The weights of `shape` `[O, C, KH, KW]` as the kernel reads them: `[C·KH·KW, op]`, one
/// row per tap in the order (channel, kernel row, kernel column), output channels padded
/// with zeros to whole vectors of `lanes`.
pub(crate) fn pack_weights(shape: [usize; 4], lanes: usize, w: &[f32]) -> Vec<f32> {
    let [o_all, c, kh, kw] = shape;
    let taps = c * kh * kw;
    let op = padded(o_all, lanes);
    let mut packed = vec![0.0; taps * op];
    for (o, filter) in w.chunks_exact(taps).take(o_all).enumerate() {
        for (t, &v) in filter.iter().enumerate() {
            packed[t * op + o] = v;
        }
    }
    packed
}

/// One image's arguments for the per-tier kernel.
#[derive(Debug)]
pub(crate) struct ImageArgs<'a> {
    /// The image, `[C, ph, pw]` (zero-padded where the geometry pads).
    pub input: &'a [f32],
    /// Rows of `input`'s planes.
    pub ph: usize,
    /// Columns of `input`'s planes.
    pub pw: usize,
    /// `[C·KH·KW, op]` from [`pack_weights`].
    pub weight: &'a [f32],
    /// `op` biases (zeros past the channels, and everywhere without a bias).
    pub bias: &'a [f32],
    /// Input channels, kernel height and width.
    pub channels: usize,
    pub kh: usize,
    pub kw: usize,
    /// Output height and width before the pool.
    pub out_h: usize,
    pub out_w: usize,
    /// Output channels, and rounded up to whole vectors.
    pub o: usize,
    pub op: usize,
    /// Apply ReLU after the bias.
    pub relu: bool,
    /// Write the maximum of each 2x2 window (even `out_h` and `out_w`).
    pub pool: bool,
    /// The layout `out` is written in.
    pub layout: Layout,
}

/// `R x W` output pixels from `(oh0, ow0)` for the vector of output channels at `o0`, any
/// kernel width: bias plus every tap (one broadcast per multiply-add), then ReLU if asked.
///
/// The loops over rows, columns and kernel columns have constant trip counts and index
/// plain arrays, so they unroll and the accumulators stay in registers (iterator chains
/// over them spilled every accumulator to the stack: 2x slower).
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn block<V: F32Vec, const R: usize, const W: usize>(
    a: &ImageArgs<'_>,
    oh0: usize,
    ow0: usize,
    o0: usize,
) -> [[V; W]; R] {
    // SAFETY: the caller guarantees `V`'s ISA; every load is through a checked slice.
    unsafe {
        let mut acc = [[V::load(&a.bias[o0..]); W]; R];
        let mut tap = 0;
        for c in 0..a.channels {
            let plane = &a.input[c * a.ph * a.pw..][..a.ph * a.pw];
            for ky in 0..a.kh {
                let rows: [&[f32]; R] =
                    std::array::from_fn(|r| &plane[(oh0 + r + ky) * a.pw + ow0..][..W - 1 + a.kw]);
                for kx in 0..a.kw {
                    let w = V::load(&a.weight[tap * a.op + o0..]);
                    for r in 0..R {
                        let x = &rows[r][kx..][..W];
                        for j in 0..W {
                            acc[r][j] = V::splat(x[j]).mul_add(w, acc[r][j]);
                        }
                    }
                    tap += 1;
                }
            }
        }
        relu_if(a.relu, acc)
    }
}

/// [`block`] for a kernel `KW` wide known at compile time: each input value of a kernel row
/// is broadcast once and multiplied by the `KW` weight vectors it meets (`W + KW - 1`
/// broadcasts per row for `W · KW` multiply-adds). Same sums in the same order as
/// [`block`]: for each output, the taps by channel, kernel row, kernel column.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn block_kw<V: F32Vec, const R: usize, const W: usize, const KW: usize>(
    a: &ImageArgs<'_>,
    oh0: usize,
    ow0: usize,
    o0: usize,
) -> [[V; W]; R] {
    // SAFETY: the caller guarantees `V`'s ISA; every load is through a checked slice.
    unsafe {
        let mut acc = [[V::load(&a.bias[o0..]); W]; R];
        let mut tap = 0;
        for c in 0..a.channels {
            let plane = &a.input[c * a.ph * a.pw..][..a.ph * a.pw];
            for ky in 0..a.kh {
                let mut w = [V::splat(0.0); KW];
                for (kx, w) in w.iter_mut().enumerate() {
                    *w = V::load(&a.weight[(tap + kx) * a.op + o0..]);
                }
                for r in 0..R {
                    let row = &plane[(oh0 + r + ky) * a.pw + ow0..][..W + KW - 1];
                    for i in 0..W + KW - 1 {
                        let x = V::splat(row[i]);
                        // Output j = i - kx meets this value at kernel column kx.
                        for kx in 0..KW {
                            if i >= kx && i - kx < W {
                                acc[r][i - kx] = x.mul_add(w[kx], acc[r][i - kx]);
                            }
                        }
                    }
                }
                tap += KW;
            }
        }
        relu_if(a.relu, acc)
    }
}

/// `acc` with ReLU applied when `relu`.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn relu_if<V: F32Vec, const R: usize, const W: usize>(
    relu: bool,
    mut acc: [[V; W]; R],
) -> [[V; W]; R] {
    if relu {
        // SAFETY: forwarded precondition; no memory is accessed.
        unsafe {
            let zero = V::splat(0.0);
            for r in 0..R {
                for j in 0..W {
                    acc[r][j] = acc[r][j].max(zero);
                }
            }
        }
    }
    acc
}

/// Computes one block of `R x W` pixels for every vector of output channels and stores it
/// into `out`, channels-last `[OH', OW', op]`: pooled (the 2x2 windows of the block, `R` =
/// 2 and `W` even) or as is.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn columns<V: F32Vec, const R: usize, const W: usize>(
    a: &ImageArgs<'_>,
    oh0: usize,
    ow0: usize,
    out: &mut [f32],
) {
    let mut o0 = 0;
    while o0 < a.op {
        // SAFETY: forwarded precondition; stores are through checked slices.
        unsafe {
            let acc = if a.kw == 5 {
                block_kw::<V, R, W, 5>(a, oh0, ow0, o0)
            } else {
                block::<V, R, W>(a, oh0, ow0, o0)
            };
            if a.pool {
                // The pool kernel's window order: (0,0), (0,1), (1,0), (1,1).
                let (t, b) = (&acc[0], &acc[R - 1]);
                let pw = a.out_w / 2;
                for p in 0..W / 2 {
                    let m = t[2 * p + 1].max(t[2 * p]).max(b[2 * p]).max(b[2 * p + 1]);
                    m.store(&mut out[((oh0 / 2) * pw + ow0 / 2 + p) * a.op + o0..]);
                }
            } else {
                for r in 0..R {
                    for j in 0..W {
                        let at = ((oh0 + r) * a.out_w + ow0 + j) * a.op + o0;
                        acc[r][j].store(&mut out[at..]);
                    }
                }
            }
        }
        o0 += V::LANES;
    }
}

/// One row band of `R` output rows: blocks of 6, 4, 2 and 1 columns.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn band<V: F32Vec, const R: usize>(a: &ImageArgs<'_>, oh0: usize, out: &mut [f32]) {
    let mut ow0 = 0;
    // SAFETY: forwarded precondition.
    unsafe {
        while ow0 + COLS <= a.out_w {
            columns::<V, R, COLS>(a, oh0, ow0, out);
            ow0 += COLS;
        }
        if ow0 + 4 <= a.out_w {
            columns::<V, R, 4>(a, oh0, ow0, out);
            ow0 += 4;
        }
        if ow0 + 2 <= a.out_w {
            columns::<V, R, 2>(a, oh0, ow0, out);
            ow0 += 2;
        }
        if ow0 < a.out_w {
            columns::<V, R, 1>(a, oh0, ow0, out);
        }
    }
}

/// One image: `out` gets `act(bias + conv)` (pooled when `a.pool`) in `a.layout`; `tile`
/// (`[OH', OW', op]`) holds it channels-last first unless `out` can take it as it is
/// (channels-last with whole vectors of channels).
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn image_simd<V: F32Vec>(a: &ImageArgs<'_>, tile: &mut [f32], out: &mut [f32]) {
    let direct = a.layout == Layout::Nhwc && a.op == a.o;
    let dst = if direct { &mut *out } else { &mut *tile };
    let mut oh0 = 0;
    // SAFETY: forwarded precondition.
    unsafe {
        while oh0 + 2 <= a.out_h {
            band::<V, 2>(a, oh0, dst);
            oh0 += 2;
        }
        if oh0 < a.out_h {
            band::<V, 1>(a, oh0, dst);
        }
    }
    if direct {
        return;
    }
    let pixels = if a.pool {
        (a.out_h / 2) * (a.out_w / 2)
    } else {
        a.out_h * a.out_w
    };
    let tile = &*tile;
    if a.layout == Layout::Nhwc {
        for (d, s) in out.chunks_exact_mut(a.o).zip(tile.chunks_exact(a.op)) {
            d.copy_from_slice(&s[..a.o]);
        }
        return;
    }
    // NCHW: transpose the `pixels x op` tile into `o x pixels`, in blocks where whole.
    let l = V::LANES;
    let (whole_p, whole_o) = (pixels / l * l, a.o / l * l);
    for o0 in (0..whole_o).step_by(l) {
        for p0 in (0..whole_p).step_by(l) {
            // SAFETY: forwarded precondition; the callee checks the slices.
            unsafe {
                V::transpose_square(
                    &tile[p0 * a.op + o0..],
                    a.op,
                    &mut out[o0 * pixels + p0..],
                    pixels,
                )
            };
        }
    }
    for o in 0..a.o {
        let from = if o < whole_o { whole_p } else { 0 };
        for p in from..pixels {
            out[o * pixels + p] = tile[p * a.op + o];
        }
    }
}

/// Copies image `x` (`[C, H, W]` or `[H, W, C]`) into `dst` (`[C, ph, pw]`) with the
/// geometry's zero padding.
fn pad_image(g: &Conv2dGeometry, x: &[f32], layout: Layout, dst: &mut [f32]) {
    let (ph, pw) = padded_dims(g);
    dst.fill(0.0);
    let rows = g.in_h.min(ph.saturating_sub(g.pad_top));
    let cols = g.in_w.min(pw.saturating_sub(g.pad_left));
    let c_all = g.in_channels;
    for c in 0..c_all {
        for ih in 0..rows {
            let d = &mut dst[(c * ph + ih + g.pad_top) * pw + g.pad_left..][..cols];
            match layout {
                Layout::Nchw => d.copy_from_slice(&x[(c * g.in_h + ih) * g.in_w..][..cols]),
                Layout::Nhwc => {
                    for (iw, v) in d.iter_mut().enumerate() {
                        *v = x[(ih * g.in_w + iw) * c_all + c];
                    }
                }
            }
        }
    }
}

/// The direct path's arguments beyond the geometry.
#[derive(Debug)]
pub(crate) struct Direct<'a> {
    /// `[C·KH·KW, op]` from [`pack_weights`] for this tier's lanes.
    pub weight: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
    pub pool: bool,
    /// Layouts of the input and of the output.
    pub input: Layout,
    pub output: Layout,
}

/// Forward convolution, direct, on raw `[O, C, KH, KW]` weights (packed here, per call),
/// NCHW in and out: the unpacked entry points' form.
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
    let shape = [g.out_channels, g.in_channels, g.kernel_h, g.kernel_w];
    let weight = pack_weights(shape, k.lanes, w);
    let d = Direct {
        weight: &weight,
        bias,
        relu,
        pool,
        input: Layout::Nchw,
        output: Layout::Nchw,
    };
    forward(k, g, x, &d, out, scratch)
}

/// Forward convolution, direct: images in parallel, one slot of scratch per worker.
pub(crate) fn forward(
    k: &Kernels,
    g: &Conv2dGeometry,
    x: &[f32],
    d: &Direct<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let slot_len = slot_len(g);
    let (ph, pw) = padded_dims(g);
    let (o, op) = (g.out_channels, padded(g.out_channels, k.lanes));
    let in_img = g.in_channels * g.in_h * g.in_w;
    let out_img = if d.pool {
        o * (g.out_h / 2) * (g.out_w / 2)
    } else {
        o * g.out_h * g.out_w
    };
    let in_place = reads_in_place(g, d.input);
    let image = |n: usize, out: &mut [f32], slot: &mut [f32]| {
        let (staged, rest) = slot.split_at_mut(g.in_channels * ph * pw);
        let (bias, tile) = rest.split_at_mut(op);
        bias.fill(0.0);
        if let Some(b) = d.bias {
            bias[..o].copy_from_slice(b);
        }
        let x = &x[n * in_img..][..in_img];
        let input = if in_place {
            x
        } else {
            pad_image(g, x, d.input, staged);
            &*staged
        };
        let args = ImageArgs {
            input,
            ph,
            pw,
            weight: d.weight,
            bias,
            channels: g.in_channels,
            kh: g.kernel_h,
            kw: g.kernel_w,
            out_h: g.out_h,
            out_w: g.out_w,
            o,
            op,
            relu: d.relu,
            pool: d.pool,
            layout: d.output,
        };
        (k.conv_direct_image)(&args, tile, out);
    };
    let slots = scratch.len() / slot_len;
    let flops = 2 * g.output_len() * g.in_channels * g.kernel_h * g.kernel_w;
    let workers = crate::threads::workers_for(flops, g.batch)
        .min(slots)
        .max(1);
    if workers <= 1 {
        for (n, o) in out.chunks_exact_mut(out_img).enumerate() {
            image(n, o, &mut scratch[..slot_len]);
        }
        return Ok(());
    }
    let per = g.batch.div_ceil(workers);
    out.par_chunks_mut(per * out_img)
        .zip(scratch.par_chunks_mut(slot_len))
        .enumerate()
        .for_each(|(gi, (o, slot))| {
            for (i, o) in o.chunks_exact_mut(out_img).enumerate() {
                image(gi * per + i, o, &mut slot[..slot_len]);
            }
        });
    Ok(())
}
