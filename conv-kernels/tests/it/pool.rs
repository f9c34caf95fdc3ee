//! maxpool: the 2x2 fast path and the general path against `reference`.

use crate::common::{bits, tiers, values};
use conv_kernels::Pool2dGeometry;
use conv_kernels::pool::reference;
use proptest::prelude::*;

fn check(g: &Pool2dGeometry, seed: u64) {
    // Quantised values make ties common, exercising the first-maximum rule.
    let x: Vec<f32> = values(seed, g.input_len())
        .iter()
        .map(|v| (v * 4.0).round())
        .collect();
    let dy = values(seed ^ 5, g.output_len());
    let mut want = vec![0.0; g.output_len()];
    let mut want_arg = vec![0u32; g.output_len()];
    reference::maxpool2d_forward(g, &x, &mut want, &mut want_arg);
    let mut want_dx = vec![0.0; g.input_len()];
    reference::maxpool2d_backward(g, &dy, &want_arg, &mut want_dx);
    for k in tiers() {
        let mut out = vec![f32::NAN; g.output_len()];
        let mut arg = vec![u32::MAX; g.output_len()];
        k.maxpool2d_forward(g, &x, &mut out, &mut arg).unwrap();
        assert_eq!(out, want, "{:?} maxpool forward {g:?}", k.isa());
        assert_eq!(arg, want_arg, "{:?} maxpool argmax {g:?}", k.isa());
        let mut dx = vec![f32::NAN; g.input_len()];
        k.maxpool2d_backward(g, &dy, &arg, &mut dx).unwrap();
        assert_eq!(dx, want_dx, "{:?} maxpool backward {g:?}", k.isa());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn maxpool_matches_reference(n in 1usize..3, c in 1usize..4, h in 1usize..11, w in 1usize..11,
                                 kh in 1usize..4, kw in 1usize..4, sh in 1usize..4, sw in 1usize..4, seed in any::<u64>()) {
        if let Ok(g) = Pool2dGeometry::new(n, c, h, w, kh, kw, sh, sw) {
            check(&g, seed);
        }
        if let Ok(g) = Pool2dGeometry::two_by_two(n, c, h.max(2), w.max(2)) {
            check(&g, seed ^ 77);
        }
    }
}

#[test]
fn maxpool_2x2_matches_reference_table1_shapes() {
    check(&Pool2dGeometry::two_by_two(3, 32, 24, 24).unwrap(), 1);
    check(&Pool2dGeometry::two_by_two(3, 64, 8, 8).unwrap(), 2);
    check(&Pool2dGeometry::two_by_two(2, 3, 7, 9).unwrap(), 3);
}

/// The 2x2 stride-2 path on rows wide enough for every SIMD width and tail (8-lane, 4-lane,
/// scalar), with NaN, infinities, signed zeros and ties: values bit-identical and argmax
/// identical to the reference (first maximum in row-major window order, NaN never wins,
/// the window's first element when nothing beats -inf).
fn check_2x2_special(g: &Pool2dGeometry, picks: &[u8]) {
    const SPECIAL: [f32; 8] = [
        f32::NAN,
        f32::NEG_INFINITY,
        f32::INFINITY,
        -0.0,
        0.0,
        1.0,
        -1.0,
        1.0,
    ];
    let x: Vec<f32> = (0..g.input_len())
        .map(|i| SPECIAL[usize::from(picks[i % picks.len()]) % SPECIAL.len()])
        .collect();
    let mut want = vec![0.0; g.output_len()];
    let mut want_arg = vec![0u32; g.output_len()];
    reference::maxpool2d_forward(g, &x, &mut want, &mut want_arg);
    for k in tiers() {
        let mut out = vec![123.0; g.output_len()];
        let mut arg = vec![u32::MAX; g.output_len()];
        k.maxpool2d_forward(g, &x, &mut out, &mut arg).unwrap();
        assert_eq!(
            bits(&out),
            bits(&want),
            "{:?} maxpool values {g:?}",
            k.isa()
        );
        assert_eq!(arg, want_arg, "{:?} maxpool argmax {g:?}", k.isa());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn maxpool_2x2_simd_matches_reference_bitwise(n in 1usize..3, c in 1usize..3, h in 2usize..9,
                                                  w in 2usize..60,
                                                  picks in proptest::collection::vec(any::<u8>(), 1..97)) {
        let g = Pool2dGeometry::two_by_two(n, c, h, w).unwrap();
        check_2x2_special(&g, &picks);
    }
}

#[test]
fn maxpool_2x2_simd_matches_reference_every_row_width_mod_16() {
    // out_w 1..=40: every mix of 16-, 8-, 4-lane and scalar steps, on every tier.
    for w in 2..=81 {
        let g = Pool2dGeometry::two_by_two(1, 2, 4, w).unwrap();
        check_2x2_special(&g, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13]);
        check(&g, w as u64);
    }
}

#[test]
fn maxpool_2x2_all_nan_and_all_neg_inf_windows_pick_the_first_element() {
    let g = Pool2dGeometry::two_by_two(1, 2, 4, 34).unwrap();
    check_2x2_special(&g, &[0]);
    check_2x2_special(&g, &[1]);
    check_2x2_special(&g, &[0, 1]);
    check_2x2_special(&g, &[1, 0, 0]);
    check_2x2_special(&g, &[3, 4, 4, 3, 0]);
}
