//! Naive max-pooling: the oracle for tests and benches.

use crate::geometry::Pool2dGeometry;

/// `out[n,c,oh,ow] = max over the window`; `argmax` gets the winning in-plane index
/// `ih * in_w + iw` (first maximum in row-major window order).
pub fn maxpool2d_forward(g: &Pool2dGeometry, x: &[f32], out: &mut [f32], argmax: &mut [u32]) {
    for nc in 0..g.batch * g.channels {
        let plane = &x[nc * g.in_h * g.in_w..(nc + 1) * g.in_h * g.in_w];
        for oh in 0..g.out_h {
            for ow in 0..g.out_w {
                let mut best = f32::NEG_INFINITY;
                let mut best_i = (oh * g.stride_h) * g.in_w + ow * g.stride_w;
                for kh in 0..g.kernel_h {
                    for kw in 0..g.kernel_w {
                        let i = (oh * g.stride_h + kh) * g.in_w + ow * g.stride_w + kw;
                        if plane[i] > best {
                            best = plane[i];
                            best_i = i;
                        }
                    }
                }
                let o = (nc * g.out_h + oh) * g.out_w + ow;
                out[o] = plane[best_i];
                argmax[o] = best_i as u32;
            }
        }
    }
}

/// Scatters each output gradient to its argmax (overwrites `dx`, accumulating where windows overlap).
pub fn maxpool2d_backward(g: &Pool2dGeometry, dy: &[f32], argmax: &[u32], dx: &mut [f32]) {
    dx.fill(0.0);
    let in_plane = g.in_h * g.in_w;
    let out_plane = g.out_h * g.out_w;
    for nc in 0..g.batch * g.channels {
        for o in 0..out_plane {
            dx[nc * in_plane + argmax[nc * out_plane + o] as usize] += dy[nc * out_plane + o];
        }
    }
}
