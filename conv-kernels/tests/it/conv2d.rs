//! conv2d: every algorithm and tier against `reference`, over random small geometries.

use crate::common::{abs, assert_close, bits, tiers, values};
use conv_kernels::conv2d::reference;
use conv_kernels::{Activation, Conv2dGeometry, ConvAlgo, Padding, conv2d_scratch_len};
use proptest::prelude::*;

/// A random conv problem: geometry plus a data seed.
#[derive(Debug, Clone)]
struct Conv2dProblem {
    g: Conv2dGeometry,
    seed: u64,
    bias: bool,
    relu: bool,
}

fn problem() -> impl Strategy<Value = Conv2dProblem> {
    (
        (1usize..4, 1usize..5, 1usize..12, 1usize..20),
        (1usize..6, 1usize..6, 1usize..6),
        any::<bool>(),
        any::<u64>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_filter_map(
            "kernel larger than input",
            |((n, c, h, w), (o, kh, kw), same, seed, bias, relu)| {
                let padding = if same { Padding::Same } else { Padding::Valid };
                let g = Conv2dGeometry::new(n, c, h, w, o, kh, kw, padding).ok()?;
                Some(Conv2dProblem {
                    g,
                    seed,
                    bias,
                    relu,
                })
            },
        )
}

impl Conv2dProblem {
    fn check(&self) {
        let g = &self.g;
        let x = values(self.seed, g.input_len());
        let w = values(self.seed ^ 1, g.weight_len());
        let b = values(self.seed ^ 2, g.out_channels);
        let dy = values(self.seed ^ 3, g.output_len());
        let bias = self.bias.then_some(&b[..]);
        let act = if self.relu {
            Activation::Relu
        } else {
            Activation::None
        };

        // Expected values and the sum of |terms| behind each one (reference on |.|).
        let mut want = vec![0.0; g.output_len()];
        reference::conv2d_forward(g, &x, &w, bias, self.relu, &mut want);
        let mut scale = vec![0.0; g.output_len()];
        let babs = abs(&b);
        reference::conv2d_forward(
            g,
            &abs(&x),
            &abs(&w),
            self.bias.then_some(&babs[..]),
            false,
            &mut scale,
        );
        let mut want_dx = vec![0.0; g.input_len()];
        reference::conv2d_backward_input(g, &dy, &w, &mut want_dx);
        let mut scale_dx = vec![0.0; g.input_len()];
        reference::conv2d_backward_input(g, &abs(&dy), &abs(&w), &mut scale_dx);
        let mut want_dw = vec![0.0; g.weight_len()];
        reference::conv2d_backward_weight(g, &x, &dy, &mut want_dw);
        let mut scale_dw = vec![0.0; g.weight_len()];
        reference::conv2d_backward_weight(g, &abs(&x), &abs(&dy), &mut scale_dw);
        let mut want_db = vec![0.0; g.out_channels];
        reference::conv2d_backward_bias(g, &dy, &mut want_db);
        let mut scale_db = vec![0.0; g.out_channels];
        reference::conv2d_backward_bias(g, &abs(&dy), &mut scale_db);

        let mut scratch = vec![f32::NAN; conv2d_scratch_len(g)];
        for k in tiers() {
            for algo in [
                ConvAlgo::Auto,
                ConvAlgo::Im2colGemm,
                ConvAlgo::Direct,
                ConvAlgo::Winograd,
            ] {
                let mut out = vec![f32::NAN; g.output_len()];
                k.conv2d_forward(g, algo, &x, &w, bias, act, &mut out, &mut scratch)
                    .unwrap();
                // Winograd's transforms scale terms by up to 25 before the products and
                // back after: its rounding error is larger than a direct sum's.
                let rel = if algo.resolve_for(g, k.isa()) == ConvAlgo::Winograd {
                    WINOGRAD_REL
                } else {
                    1e-5
                };
                assert_close(
                    &format!("{:?} {algo:?} forward {g:?}", k.isa()),
                    &out,
                    &want,
                    &scale,
                    rel,
                    1e-6,
                );
            }
            let mut dx = vec![f32::NAN; g.input_len()];
            k.conv2d_backward_input(g, &dy, &w, &mut dx, &mut scratch)
                .unwrap();
            assert_close(
                &format!("{:?} backward_input {g:?}", k.isa()),
                &dx,
                &want_dx,
                &scale_dx,
                1e-5,
                1e-6,
            );
            let mut dw = vec![f32::NAN; g.weight_len()];
            k.conv2d_backward_weight(g, &x, &dy, &mut dw, &mut scratch)
                .unwrap();
            assert_close(
                &format!("{:?} backward_weight {g:?}", k.isa()),
                &dw,
                &want_dw,
                &scale_dw,
                1e-5,
                1e-6,
            );
            let mut db = vec![f32::NAN; g.out_channels];
            k.conv2d_backward_bias(g, &dy, &mut db).unwrap();
            assert_close(
                &format!("{:?} backward_bias {g:?}", k.isa()),
                &db,
                &want_db,
                &scale_db,
                1e-5,
                1e-6,
            );
        }
    }
}

/// Relative tolerance (of the sum of |terms|) of the Winograd path.
const WINOGRAD_REL: f32 = 1e-4;

/// Problems with a 5x5 kernel, the shape Winograd computes: any batch, channels, odd and
/// even output sizes (partial 2x2 tiles), both paddings.
fn problem_5x5() -> impl Strategy<Value = Conv2dProblem> {
    (
        (1usize..5, 1usize..12, 1usize..16, 1usize..16),
        (
            1usize..10,
            any::<bool>(),
            any::<u64>(),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_filter_map(
            "kernel larger than input",
            |((n, c, h, w), (o, same, seed, bias, relu))| {
                let padding = if same { Padding::Same } else { Padding::Valid };
                let g = Conv2dGeometry::new(n, c, h, w, o, 5, 5, padding).ok()?;
                Some(Conv2dProblem {
                    g,
                    seed,
                    bias,
                    relu,
                })
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn conv2d_fast_paths_match_reference(p in problem()) {
        p.check();
    }

    #[test]
    fn conv2d_winograd_matches_reference_on_5x5_kernels(p in problem_5x5()) {
        prop_assert_eq!(ConvAlgo::Winograd.resolve(&p.g), ConvAlgo::Winograd);
        p.check();
    }
}

#[allow(clippy::too_many_arguments)]
fn case(n: usize, c: usize, h: usize, w: usize, o: usize, kh: usize, kw: usize, padding: Padding) {
    let g = Conv2dGeometry::new(n, c, h, w, o, kh, kw, padding).unwrap();
    for (bias, relu) in [(true, true), (false, false)] {
        Conv2dProblem {
            g,
            seed: 7,
            bias,
            relu,
        }
        .check();
    }
}

#[test]
fn conv2d_matches_reference_table1_conv1_1in_32out_k5() {
    case(2, 1, 28, 28, 32, 5, 5, Padding::Valid);
}

#[test]
fn conv2d_matches_reference_table1_conv2_32in_64out_k5() {
    case(2, 32, 12, 12, 64, 5, 5, Padding::Valid);
}

#[test]
fn conv2d_matches_reference_same_padding_even_kernels() {
    case(3, 2, 7, 9, 3, 4, 2, Padding::Same);
    case(1, 3, 5, 5, 2, 2, 4, Padding::Same);
}

#[test]
fn conv2d_matches_reference_many_images_per_chunk() {
    // P = 4 output pixels: dozens of images share one GEMM, including a partial last chunk.
    case(70, 2, 3, 3, 3, 2, 2, Padding::Valid);
}

#[test]
fn conv2d_matches_reference_wide_rows_hit_every_vector_block() {
    // out_w = 45: 4-, 2- and 1-vector blocks plus a scalar tail on both tiers.
    case(1, 2, 3, 47, 2, 3, 3, Padding::Valid);
}

#[test]
fn conv2d_matches_reference_every_row_width_mod_the_widest_blocks() {
    // out_w 1..=80: every residue of the direct path's 4-vector blocks on AVX-512 (64
    // columns), hence every mix of 4-, 2-, 1-vector, half-vector, 4-lane and scalar steps on
    // every tier; and Winograd tile counts 1..=40 (every residue mod 16 lanes).
    for out_w in 1..=80 {
        case(1, 1, 5, out_w + 4, 2, 5, 5, Padding::Valid);
    }
}

#[test]
fn conv2d_matches_reference_kernel_wider_than_same_padded_input() {
    // Shrunk by proptest: 1-pixel-wide input, 'same' 5-wide kernel: some taps never land
    // inside a row, whose column range must then be empty, not out of bounds.
    case(1, 1, 3, 1, 2, 3, 5, Padding::Same);
    case(2, 2, 1, 2, 1, 4, 5, Padding::Same);
}

/// The fused conv + bias + ReLU + 2x2 max-pool gives exactly the values of the conv `Auto`
/// picks followed by the pool kernel, and so does each pinned algorithm's fused kernel, on
/// every tier: conv2's shape at batches that run
/// im2col (1, 5) and Winograd (9; 16 tiles per image, two whole vectors), 'same' 6x6 outputs
/// (9 tiles, vectors straddling images), a batch that leaves a partial last chunk, conv1's
/// shape (one channel: the direct kernel where it pays) and a 3x3 kernel.
#[test]
fn conv2d_forward_maxpool2x2_equals_conv_then_pool() {
    for (n, c, h, w, o, kernel, padding) in [
        (1, 32, 12, 12, 64, 5, Padding::Valid),
        (5, 32, 12, 12, 64, 5, Padding::Valid),
        (9, 32, 12, 12, 64, 5, Padding::Valid),
        (3, 3, 6, 6, 4, 5, Padding::Same),
        (9, 2, 10, 14, 3, 5, Padding::Valid),
        (3, 1, 28, 28, 32, 5, Padding::Valid),
        (2, 3, 10, 8, 5, 3, Padding::Same),
    ] {
        let g = Conv2dGeometry::new(n, c, h, w, o, kernel, kernel, padding).unwrap();
        assert!(conv_kernels::conv2d_pool_fusable(&g), "{g:?}");
        let x = values(1, g.input_len());
        let wt = values(2, g.weight_len());
        let b = values(3, o);
        let p = conv_kernels::Pool2dGeometry::two_by_two(n, o, g.out_h, g.out_w).unwrap();
        let mut scratch = vec![f32::NAN; conv2d_scratch_len(&g)];
        for k in tiers() {
            let mut by_algo = Vec::new();
            for algo in [ConvAlgo::Im2colGemm, ConvAlgo::Direct, ConvAlgo::Winograd] {
                let mut full = vec![f32::NAN; g.output_len()];
                k.conv2d_forward(
                    &g,
                    algo,
                    &x,
                    &wt,
                    Some(&b),
                    Activation::Relu,
                    &mut full,
                    &mut scratch,
                )
                .unwrap();
                let mut want = vec![f32::NAN; p.output_len()];
                let mut argmax = vec![0u32; p.output_len()];
                k.maxpool2d_forward(&p, &full, &mut want, &mut argmax)
                    .unwrap();
                let mut got = vec![f32::NAN; p.output_len()];
                k.conv2d_forward_maxpool2x2_with(
                    &g,
                    algo,
                    &x,
                    &wt,
                    Some(&b),
                    Activation::Relu,
                    &mut got,
                    &mut scratch,
                )
                .unwrap();
                assert_eq!(bits(&got), bits(&want), "{:?} {algo:?} {g:?}", k.isa());
                by_algo.push((algo.resolve_for(&g, k.isa()), want));
            }
            // `Auto` fused runs the direct kernel where it pays, else what `Auto` picks.
            let expect = if conv_kernels::conv2d::direct_pays(c, k.isa()) {
                ConvAlgo::Direct
            } else {
                ConvAlgo::Auto.resolve_for(&g, k.isa())
            };
            let want = &by_algo.iter().find(|(a, _)| *a == expect).unwrap().1;
            let mut got = vec![f32::NAN; p.output_len()];
            k.conv2d_forward_maxpool2x2(
                &g,
                &x,
                &wt,
                Some(&b),
                Activation::Relu,
                &mut got,
                &mut scratch,
            )
            .unwrap();
            assert_eq!(bits(&got), bits(want), "{:?} Auto {g:?}", k.isa());
        }
    }
    // Odd output sizes are refused, not computed wrongly.
    for g in [
        Conv2dGeometry::new(1, 1, 9, 9, 1, 5, 5, Padding::Valid).unwrap(),
        Conv2dGeometry::new(1, 1, 9, 8, 1, 3, 3, Padding::Valid).unwrap(),
    ] {
        assert!(!conv_kernels::conv2d_pool_fusable(&g));
        let mut scratch = vec![0.0; conv2d_scratch_len(&g)];
        let mut out = vec![0.0; g.output_len() / 4];
        let w = vec![0.0; g.weight_len()];
        let x = vec![0.0; g.input_len()];
        assert!(
            conv_kernels::conv2d_forward_maxpool2x2(
                &g,
                &x,
                &w,
                None,
                Activation::Relu,
                &mut out,
                &mut scratch
            )
            .is_err()
        );
    }
}

#[test]
fn packed_conv_forward_equals_unpacked_winograd_and_matches_reference() {
    for (n, c, h, w, o, padding) in [
        (1, 32, 12, 12, 64, Padding::Valid),
        (5, 32, 12, 12, 64, Padding::Valid),
        (3, 9, 7, 9, 5, Padding::Same),
        (2, 1, 28, 28, 32, Padding::Valid),
    ] {
        let g = Conv2dGeometry::new(n, c, h, w, o, 5, 5, padding).unwrap();
        let x = values(1, g.input_len());
        let wt = values(2, g.weight_len());
        let b = values(3, o);
        let mut want = vec![0.0; g.output_len()];
        reference::conv2d_forward(&g, &x, &wt, Some(&b), true, &mut want);
        let mut scale = vec![0.0; g.output_len()];
        reference::conv2d_forward(&g, &abs(&x), &abs(&wt), Some(&abs(&b)), false, &mut scale);
        let mut scratch = vec![f32::NAN; conv2d_scratch_len(&g)];
        for k in tiers() {
            let packed = k.pack_conv2d([o, c, 5, 5], &wt).unwrap();
            assert_eq!(
                packed.is_winograd(),
                c >= conv_kernels::conv2d::WINOGRAD_MIN_CHANNELS
                    && conv_kernels::conv2d::winograd_pays(k.isa())
            );
            let mut got = vec![f32::NAN; g.output_len()];
            k.conv2d_forward_packed(
                &g,
                &x,
                &packed,
                Some(&b),
                Activation::Relu,
                &mut got,
                &mut scratch,
            )
            .unwrap();
            let what = format!("{:?} {g:?}", k.isa());
            assert_close(&what, &got, &want, &scale, 2e-4, 1e-5);
            if packed.is_winograd() {
                let algo = if packed.runs_winograd(&g) {
                    ConvAlgo::Winograd
                } else {
                    ConvAlgo::Auto
                };
                let mut unpacked = vec![f32::NAN; g.output_len()];
                k.conv2d_forward(
                    &g,
                    algo,
                    &x,
                    &wt,
                    Some(&b),
                    Activation::Relu,
                    &mut unpacked,
                    &mut scratch,
                )
                .unwrap();
                assert_eq!(bits(&got), bits(&unpacked), "{what}");
                if conv_kernels::conv2d_pool_fusable(&g) {
                    // The packed fused kernel runs the algorithm the packed conv runs.
                    let pg =
                        conv_kernels::Pool2dGeometry::two_by_two(n, o, g.out_h, g.out_w).unwrap();
                    let mut pooled = vec![f32::NAN; g.output_len() / 4];
                    let mut argmax = vec![0u32; pooled.len()];
                    k.maxpool2d_forward(&pg, &unpacked, &mut pooled, &mut argmax)
                        .unwrap();
                    let mut pooled_packed = vec![f32::NAN; pooled.len()];
                    k.conv2d_forward_maxpool2x2_packed(
                        &g,
                        &x,
                        &packed,
                        Some(&b),
                        Activation::Relu,
                        &mut pooled_packed,
                        &mut scratch,
                    )
                    .unwrap();
                    assert_eq!(bits(&pooled), bits(&pooled_packed), "{what} pooled");
                }
            }
            // Packed for another shape: refused.
            let other = k.pack_conv2d([o, c, 5, 5], &wt).unwrap();
            let g2 = Conv2dGeometry::new(n, c, h, w, o + 1, 5, 5, padding).unwrap();
            let mut out2 = vec![0.0; g2.output_len()];
            let mut s2 = vec![0.0; conv2d_scratch_len(&g2)];
            assert!(
                k.conv2d_forward_packed(
                    &g2,
                    &x,
                    &other,
                    None,
                    Activation::None,
                    &mut out2,
                    &mut s2
                )
                .is_err()
            );
        }
    }
}

/// More input channels than one GEMM reduction block (KC = 256): the Winograd input
/// transform writes V as packed panels in two reduction blocks, and a batch whose tiles
/// leave the last panel partial.
#[test]
fn conv2d_matches_reference_more_channels_than_a_reduction_block() {
    case(3, 260, 7, 6, 3, 5, 5, Padding::Same);
}

/// Implicit GEMM (AVX-512) with a chunk whose columns (2 images x 24 pixels) leave the last
/// B panel partial: the panels, padded, live in the scratch slot's col region.
#[test]
fn conv2d_matches_reference_implicit_gemm_partial_last_panel() {
    case(2, 3, 7, 12, 5, 5, 5, Padding::Valid);
}
