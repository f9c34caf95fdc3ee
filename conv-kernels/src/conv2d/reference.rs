//! Naive conv2d: straight loops, no SIMD, no threads. The oracle for tests and benches.

use crate::geometry::Conv2dGeometry;

/// Input element at padded coordinates, or zero in the padding.
fn at(g: &Conv2dGeometry, x: &[f32], n: usize, c: usize, ih: isize, iw: isize) -> f32 {
    if ih < 0 || iw < 0 || ih as usize >= g.in_h || iw as usize >= g.in_w {
        return 0.0;
    }
    x[((n * g.in_channels + c) * g.in_h + ih as usize) * g.in_w + iw as usize]
}

/// `out[n,oc,oh,ow] = bias[oc] + sum_{c,kh,kw} x[n,c,oh+kh-pt,ow+kw-pl] * w[oc,c,kh,kw]`, then ReLU if asked.
pub fn conv2d_forward(
    g: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    out: &mut [f32],
) {
    for n in 0..g.batch {
        for oc in 0..g.out_channels {
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    let mut acc = bias.map_or(0.0, |b| b[oc]);
                    for c in 0..g.in_channels {
                        for kh in 0..g.kernel_h {
                            for kw in 0..g.kernel_w {
                                let ih = (oh + kh) as isize - g.pad_top as isize;
                                let iw = (ow + kw) as isize - g.pad_left as isize;
                                let wv = w[((oc * g.in_channels + c) * g.kernel_h + kh)
                                    * g.kernel_w
                                    + kw];
                                acc += at(g, x, n, c, ih, iw) * wv;
                            }
                        }
                    }
                    if relu {
                        acc = acc.max(0.0);
                    }
                    out[((n * g.out_channels + oc) * g.out_h + oh) * g.out_w + ow] = acc;
                }
            }
        }
    }
}

/// `dx[n,c,ih,iw] = sum dy[n,oc,oh,ow] * w[oc,c,kh,kw]` over the taps that read `x[n,c,ih,iw]`.
pub fn conv2d_backward_input(g: &Conv2dGeometry, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    dx.fill(0.0);
    for n in 0..g.batch {
        for oc in 0..g.out_channels {
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    let d = dy[((n * g.out_channels + oc) * g.out_h + oh) * g.out_w + ow];
                    for c in 0..g.in_channels {
                        for kh in 0..g.kernel_h {
                            for kw in 0..g.kernel_w {
                                let ih = (oh + kh) as isize - g.pad_top as isize;
                                let iw = (ow + kw) as isize - g.pad_left as isize;
                                if ih < 0
                                    || iw < 0
                                    || ih as usize >= g.in_h
                                    || iw as usize >= g.in_w
                                {
                                    continue;
                                }
                                let wv = w[((oc * g.in_channels + c) * g.kernel_h + kh)
                                    * g.kernel_w
                                    + kw];
                                dx[((n * g.in_channels + c) * g.in_h + ih as usize) * g.in_w
                                    + iw as usize] += d * wv;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dw[oc,c,kh,kw] = sum_{n,oh,ow} dy[n,oc,oh,ow] * x[n,c,oh+kh-pt,ow+kw-pl]` (overwrites `dw`).
pub fn conv2d_backward_weight(g: &Conv2dGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    for oc in 0..g.out_channels {
        for c in 0..g.in_channels {
            for kh in 0..g.kernel_h {
                for kw in 0..g.kernel_w {
                    let mut acc = 0.0;
                    for n in 0..g.batch {
                        for oh in 0..g.out_h {
                            for ow in 0..g.out_w {
                                let ih = (oh + kh) as isize - g.pad_top as isize;
                                let iw = (ow + kw) as isize - g.pad_left as isize;
                                acc += dy
                                    [((n * g.out_channels + oc) * g.out_h + oh) * g.out_w + ow]
                                    * at(g, x, n, c, ih, iw);
                            }
                        }
                    }
                    dw[((oc * g.in_channels + c) * g.kernel_h + kh) * g.kernel_w + kw] = acc;
                }
            }
        }
    }
}

/// `db[oc] = sum_{n,oh,ow} dy[n,oc,oh,ow]` (overwrites `db`).
pub fn conv2d_backward_bias(g: &Conv2dGeometry, dy: &[f32], db: &mut [f32]) {
    let plane = g.out_h * g.out_w;
    for (oc, b) in db.iter_mut().enumerate() {
        let mut acc = 0.0;
        for n in 0..g.batch {
            let start = (n * g.out_channels + oc) * plane;
            acc += dy[start..start + plane].iter().sum::<f32>();
        }
        *b = acc;
    }
}
