//! maxpool: the 2x2 fast path and the general path against `reference`.

use crate::common::{tiers, values};
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
