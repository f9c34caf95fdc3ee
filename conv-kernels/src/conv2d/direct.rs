//! Direct convolution (forward only): each output row is accumulated in vector registers
//! straight from a zero-padded copy of the image, no im2col.
//!
//! Wins when K = C·KH·KW is small (conv1: one input channel, 25 taps): the GEMM would be
//! dominated by packing and by writing C for only 25 multiply-adds per element.

use crate::dispatch::Kernels;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::simd::F32Vec;
use crate::simd::portable::Portable;
use rayon::prelude::*;

/// One output plane's worth of arguments for the per-tier plane kernel.
#[derive(Debug)]
pub(crate) struct PlaneArgs<'a> {
    /// The zero-padded image, `[C, ph, pw]`.
    pub input: &'a [f32],
    /// The weights of this output channel, `[C, KH, KW]`.
    pub weight: &'a [f32],
    /// Input channels.
    pub channels: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Padded input height, `out_h + kh - 1`.
    pub ph: usize,
    /// Padded input width, `out_w + kw - 1`.
    pub pw: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Bias added to every output.
    pub bias: f32,
    /// Apply ReLU after the bias.
    pub relu: bool,
}

/// Padded plane sizes of the direct path.
pub(crate) fn padded_dims(g: &Conv2dGeometry) -> (usize, usize) {
    (g.out_h + g.kernel_h - 1, g.out_w + g.kernel_w - 1)
}

/// Scratch elements one worker needs: one padded image.
pub(crate) fn slot_len(g: &Conv2dGeometry) -> usize {
    let (ph, pw) = padded_dims(g);
    g.in_channels * ph * pw
}

/// Copies image `x` (`[C, H, W]`) into `dst` (`[C, ph, pw]`) with the geometry's zero padding.
fn pad_image(g: &Conv2dGeometry, x: &[f32], dst: &mut [f32]) {
    let (ph, pw) = padded_dims(g);
    dst.fill(0.0);
    for c in 0..g.in_channels {
        for ih in 0..g.in_h {
            let (r, col) = (ih + g.pad_top, g.pad_left);
            if r >= ph {
                continue;
            }
            let n = g.in_w.min(pw - col);
            dst[(c * ph + r) * pw + col..][..n]
                .copy_from_slice(&x[(c * g.in_h + ih) * g.in_w..][..n]);
        }
    }
}

/// Forward convolution, direct: images in parallel (one padded copy per worker slot).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    k: &Kernels,
    g: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let slot_len = slot_len(g);
    let (ph, pw) = padded_dims(g);
    let in_img = g.in_channels * g.in_h * g.in_w;
    let out_img = g.out_channels * g.out_h * g.out_w;
    let w_oc = g.in_channels * g.kernel_h * g.kernel_w;
    let image = |n: usize, out: &mut [f32], slot: &mut [f32]| {
        let padded = &mut slot[..slot_len];
        pad_image(g, &x[n * in_img..][..in_img], padded);
        for (oc, plane) in out.chunks_exact_mut(g.out_h * g.out_w).enumerate() {
            let args = PlaneArgs {
                input: padded,
                weight: &w[oc * w_oc..][..w_oc],
                channels: g.in_channels,
                kh: g.kernel_h,
                kw: g.kernel_w,
                ph,
                pw,
                out_h: g.out_h,
                out_w: g.out_w,
                bias: bias.map_or(0.0, |b| b[oc]),
                relu,
            };
            (k.conv_direct_plane)(&args, plane);
        }
    };
    let slots = scratch.len() / slot_len;
    let flops = 2 * g.output_len() * w_oc;
    let workers = crate::threads::workers_for(flops, g.batch)
        .min(slots)
        .max(1);
    if workers <= 1 {
        for (n, o) in out.chunks_exact_mut(out_img).enumerate() {
            image(n, o, scratch);
        }
        return Ok(());
    }
    let per = g.batch.div_ceil(workers);
    out.par_chunks_mut(per * out_img)
        .zip(scratch.par_chunks_mut(slot_len))
        .enumerate()
        .for_each(|(gi, (o, slot))| {
            for (i, o) in o.chunks_exact_mut(out_img).enumerate() {
                image(gi * per + i, o, slot);
            }
        });
    Ok(())
}

/// Accumulates `NV` vectors of one output row starting at column `ow0`.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn row_block<V: F32Vec, const NV: usize>(
    a: &PlaneArgs<'_>,
    oh: usize,
    ow0: usize,
    out: &mut [f32],
) {
    // SAFETY: the caller guarantees `V`'s ISA; all memory access is slice-checked.
    unsafe {
        let mut acc = [V::splat(a.bias); NV];
        for c in 0..a.channels {
            for kh in 0..a.kh {
                let row = &a.input[(c * a.ph + oh + kh) * a.pw..][..a.pw];
                let wrow = &a.weight[(c * a.kh + kh) * a.kw..][..a.kw];
                for (kw, &wv) in wrow.iter().enumerate() {
                    let wv = V::splat(wv);
                    let src = &row[ow0 + kw..][..NV * V::LANES];
                    for (i, acc) in acc.iter_mut().enumerate() {
                        *acc = V::load(&src[i * V::LANES..]).mul_add(wv, *acc);
                    }
                }
            }
        }
        let zero = V::splat(0.0);
        for (i, acc) in acc.iter().enumerate() {
            let v = if a.relu { acc.max(zero) } else { *acc };
            v.store(&mut out[ow0 + i * V::LANES..]);
        }
    }
}

/// One output plane, `out[oh, ow] = act(bias + Σ_{c,kh,kw} in[c, oh+kh, ow+kw] · w[c,kh,kw])`:
/// per row, blocks of 4, 2 and 1 `V` vectors, then one of `V::Half` and one of 4 lanes where
/// those are narrower, then scalar.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn conv_plane<V: F32Vec>(a: &PlaneArgs<'_>, out: &mut [f32]) {
    let l = V::LANES;
    for (oh, out_row) in out.chunks_exact_mut(a.out_w).enumerate().take(a.out_h) {
        let mut ow0 = 0;
        // SAFETY: the caller guarantees `V`'s ISA, which includes `V::Half`'s; `Portable`
        // needs only the target's baseline.
        unsafe {
            while ow0 + 4 * l <= a.out_w {
                row_block::<V, 4>(a, oh, ow0, out_row);
                ow0 += 4 * l;
            }
            while ow0 + 2 * l <= a.out_w {
                row_block::<V, 2>(a, oh, ow0, out_row);
                ow0 += 2 * l;
            }
            while ow0 + l <= a.out_w {
                row_block::<V, 1>(a, oh, ow0, out_row);
                ow0 += l;
            }
            let h = <V::Half as F32Vec>::LANES;
            if h < l && ow0 + h <= a.out_w {
                row_block::<V::Half, 1>(a, oh, ow0, out_row);
                ow0 += h;
            }
            let p = Portable::LANES;
            if p < h && ow0 + p <= a.out_w {
                row_block::<Portable, 1>(a, oh, ow0, out_row);
                ow0 += p;
            }
        }
        for (ow, o) in out_row.iter_mut().enumerate().skip(ow0) {
            let mut acc = a.bias;
            for c in 0..a.channels {
                for kh in 0..a.kh {
                    let row = &a.input[(c * a.ph + oh + kh) * a.pw..][..a.pw];
                    let wrow = &a.weight[(c * a.kh + kh) * a.kw..][..a.kw];
                    for (kw, &wv) in wrow.iter().enumerate() {
                        acc += row[ow + kw] * wv;
                    }
                }
            }
            *o = if a.relu { acc.max(0.0) } else { acc };
        }
    }
}
