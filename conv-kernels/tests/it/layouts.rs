//! Channels-last activations between packed convs (`conv2d_forward_packed_io`), and the
//! direct kernel's fused pool, against the reference on every tier.

use crate::common::{abs, assert_close, bits, tiers, values};
use conv_kernels::conv2d::reference;
use conv_kernels::pool::reference as pool_reference;
use conv_kernels::{
    Activation, Conv2dGeometry, ConvAlgo, Layout, Layouts, Padding, Pool2dGeometry,
    conv2d_scratch_len,
};
use proptest::prelude::*;

/// `[n, c, h, w]` to `[n, h, w, c]`.
fn to_nhwc(x: &[f32], c: usize, plane: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for (img_in, img_out) in x.chunks_exact(c * plane).zip(y.chunks_exact_mut(c * plane)) {
        for ch in 0..c {
            for p in 0..plane {
                img_out[p * c + ch] = img_in[ch * plane + p];
            }
        }
    }
    y
}

/// `[n, h, w, c]` back to `[n, c, h, w]`.
fn to_nchw(y: &[f32], c: usize, plane: usize) -> Vec<f32> {
    let mut x = vec![0.0; y.len()];
    for (img_in, img_out) in y.chunks_exact(c * plane).zip(x.chunks_exact_mut(c * plane)) {
        for ch in 0..c {
            for p in 0..plane {
                img_out[ch * plane + p] = img_in[p * c + ch];
            }
        }
    }
    x
}

/// The reference conv + bias + ReLU, pooled when `pool`, NCHW; and the sums of |terms|.
fn expected(g: &Conv2dGeometry, x: &[f32], w: &[f32], b: &[f32], pool: bool) -> [Vec<f32>; 2] {
    let mut want = vec![0.0; g.output_len()];
    reference::conv2d_forward(g, x, w, Some(b), true, &mut want);
    let mut scale = vec![0.0; g.output_len()];
    reference::conv2d_forward(g, &abs(x), &abs(w), Some(&abs(b)), false, &mut scale);
    if !pool {
        return [want, scale];
    }
    let p = Pool2dGeometry::two_by_two(g.batch, g.out_channels, g.out_h, g.out_w).unwrap();
    let pooled = |v: &[f32]| {
        let mut out = vec![0.0; p.output_len()];
        let mut argmax = vec![0; p.output_len()];
        pool_reference::maxpool2d_forward(&p, v, &mut out, &mut argmax);
        out
    };
    [pooled(&want), pooled(&scale)]
}

/// Every input and output layout, pooled and not, through the packed conv: supported
/// combinations give the reference's values, and the same bits as each other where they
/// run the same kernel; the others are refused.
fn check_packed_io(g: &Conv2dGeometry, seed: u64) {
    let (c, o) = (g.in_channels, g.out_channels);
    let x = values(seed, g.input_len());
    let w = values(seed ^ 1, g.weight_len());
    let b = values(seed ^ 2, o);
    let x_nhwc = to_nhwc(&x, c, g.in_h * g.in_w);
    let mut scratch = vec![f32::NAN; conv2d_scratch_len(g)];
    let pools: &[bool] = if conv_kernels::conv2d_pool_fusable(g) {
        &[false, true]
    } else {
        &[false]
    };
    for k in tiers() {
        let packed = k.pack_conv2d([o, c, g.kernel_h, g.kernel_w], &w).unwrap();
        for &pool in pools {
            let [want, scale] = expected(g, &x, &w, &b, pool);
            let plane = want.len() / (g.batch * o);
            let mut first: Option<Vec<f32>> = None;
            for input in [Layout::Nchw, Layout::Nhwc] {
                for output in [Layout::Nchw, Layout::Nhwc] {
                    let io = Layouts { input, output };
                    let src = if input == Layout::Nhwc { &x_nhwc } else { &x };
                    let mut out = vec![f32::NAN; want.len()];
                    let res = k.conv2d_forward_packed_io(
                        g,
                        src,
                        &packed,
                        Some(&b),
                        Activation::Relu,
                        pool,
                        io,
                        &mut out,
                        &mut scratch,
                    );
                    let what = format!("{:?} {io:?} pool {pool} {g:?}", k.isa());
                    let supported = (input == Layout::Nchw || packed.reads_channels_last(g))
                        && (output == Layout::Nchw || packed.writes_channels_last());
                    if !supported {
                        assert!(res.is_err(), "{what}: accepted");
                        continue;
                    }
                    res.unwrap();
                    let got = if output == Layout::Nhwc {
                        to_nchw(&out, o, plane)
                    } else {
                        out
                    };
                    assert_close(&what, &got, &want, &scale, 2e-4, 1e-5);
                    // Unpooled NCHW in and out runs im2col where the others run the direct
                    // kernel (`direct_pays`): another summation order.
                    if !pool && packed.runs_direct() && io == Layouts::default() {
                        continue;
                    }
                    match &first {
                        Some(f) => assert_eq!(bits(&got), bits(f), "{what}: bits"),
                        None => first = Some(got),
                    }
                }
            }
        }
    }
}

#[test]
fn packed_conv_reads_and_writes_every_layout_it_claims() {
    for (n, c, h, w, o, kernel, padding) in [
        // conv1: the direct kernel (where it pays) reads in place, writes channels-last.
        (2, 1, 28, 28, 32, 5, Padding::Valid),
        // Odd channel counts (padded vectors), odd and 'same'-padded outputs, a 3x3 kernel.
        (3, 1, 9, 11, 5, 5, Padding::Same),
        (2, 1, 8, 7, 20, 3, Padding::Valid),
        (1, 1, 6, 10, 17, 5, Padding::Same),
        // conv2: Winograd reads channels-last in place; with padding and 9 channels it
        // stages them into whole vectors.
        (2, 32, 12, 12, 64, 5, Padding::Valid),
        (3, 9, 7, 9, 5, 5, Padding::Same),
        // im2col: NCHW only.
        (1, 3, 6, 6, 4, 3, Padding::Same),
    ] {
        let g = Conv2dGeometry::new(n, c, h, w, o, kernel, kernel, padding).unwrap();
        check_packed_io(&g, (n * 131 + c * 17 + o) as u64);
    }
}

/// The direct kernel's fused pool (bias, ReLU and the 2x2 maximum on its registers) over
/// random geometries with even outputs, on every tier, against the reference conv + pool.
fn check_direct_pooled(g: &Conv2dGeometry, seed: u64) {
    let x = values(seed, g.input_len());
    let w = values(seed ^ 1, g.weight_len());
    let b = values(seed ^ 2, g.out_channels);
    let [want, scale] = expected(g, &x, &w, &b, true);
    let mut scratch = vec![f32::NAN; conv2d_scratch_len(g)];
    for k in tiers() {
        let mut got = vec![f32::NAN; want.len()];
        k.conv2d_forward_maxpool2x2_with(
            g,
            ConvAlgo::Direct,
            &x,
            &w,
            Some(&b),
            Activation::Relu,
            &mut got,
            &mut scratch,
        )
        .unwrap();
        let what = format!("{:?} {g:?}", k.isa());
        assert_close(&what, &got, &want, &scale, 1e-5, 1e-6);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn direct_pooled_matches_reference(
        n in 1usize..3, c in 1usize..4, oh in 1usize..7, ow in 1usize..12, o in 1usize..40,
        kh in 1usize..6, kw in 1usize..6, seed in any::<u64>(),
    ) {
        let (h, w) = (2 * oh + kh - 1, 2 * ow + kw - 1);
        let g = Conv2dGeometry::new(n, c, h, w, o, kh, kw, Padding::Valid).unwrap();
        check_direct_pooled(&g, seed);
    }

    #[test]
    fn packed_io_matches_reference_on_one_channel_layers(
        n in 1usize..3, h in 1usize..14, w in 1usize..14, o in 1usize..40,
        k in 1usize..6, same in any::<bool>(), seed in any::<u64>(),
    ) {
        let padding = if same { Padding::Same } else { Padding::Valid };
        if let Ok(g) = Conv2dGeometry::new(n, 1, h, w, o, k, k, padding) {
            check_packed_io(&g, seed);
        }
    }
}
