//! dense on GEMM against `reference`.

use crate::common::{abs, assert_close, bits, tiers, values};
use conv_kernels::dense::{GEMV_MAX_BATCH, reference};
use conv_kernels::{Activation, DenseGeometry};
use proptest::prelude::*;

fn check(n: usize, i: usize, o: usize, seed: u64, relu: bool) {
    let g = DenseGeometry::new(n, i, o).unwrap();
    let x = values(seed, g.input_len());
    let w = values(seed ^ 1, g.weight_len());
    let b = values(seed ^ 2, o);
    let dy = values(seed ^ 3, g.output_len());
    let mut want = vec![0.0; g.output_len()];
    reference::dense_forward(&g, &x, &w, Some(&b), relu, &mut want);
    let mut scale = vec![0.0; g.output_len()];
    reference::dense_forward(&g, &abs(&x), &abs(&w), Some(&abs(&b)), false, &mut scale);
    let mut want_dx = vec![0.0; g.input_len()];
    reference::dense_backward_input(&g, &dy, &w, &mut want_dx);
    let mut scale_dx = vec![0.0; g.input_len()];
    reference::dense_backward_input(&g, &abs(&dy), &abs(&w), &mut scale_dx);
    let mut want_dw = vec![0.0; g.weight_len()];
    reference::dense_backward_weight(&g, &x, &dy, &mut want_dw);
    let mut scale_dw = vec![0.0; g.weight_len()];
    reference::dense_backward_weight(&g, &abs(&x), &abs(&dy), &mut scale_dw);
    let mut want_db = vec![0.0; o];
    reference::dense_backward_bias(&g, &dy, &mut want_db);
    let mut scale_db = vec![0.0; o];
    reference::dense_backward_bias(&g, &abs(&dy), &mut scale_db);
    let act = if relu {
        Activation::Relu
    } else {
        Activation::None
    };
    for k in tiers() {
        let t = format!("{:?} dense {n}x{i}->{o}", k.isa());
        let mut y = vec![f32::NAN; g.output_len()];
        k.dense_forward(&g, &x, &w, Some(&b), act, &mut y).unwrap();
        assert_close(&format!("{t} forward"), &y, &want, &scale, 1e-5, 1e-6);
        let mut dx = vec![f32::NAN; g.input_len()];
        k.dense_backward_input(&g, &dy, &w, &mut dx).unwrap();
        assert_close(
            &format!("{t} backward_input"),
            &dx,
            &want_dx,
            &scale_dx,
            1e-5,
            1e-6,
        );
        let mut dw = vec![f32::NAN; g.weight_len()];
        k.dense_backward_weight(&g, &x, &dy, &mut dw).unwrap();
        assert_close(
            &format!("{t} backward_weight"),
            &dw,
            &want_dw,
            &scale_dw,
            1e-5,
            1e-6,
        );
        let mut db = vec![f32::NAN; o];
        k.dense_backward_bias(&g, &dy, &mut db).unwrap();
        assert_close(
            &format!("{t} backward_bias"),
            &db,
            &want_db,
            &scale_db,
            1e-5,
            1e-6,
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn dense_matches_reference(n in 1usize..20, i in 1usize..40, o in 1usize..30, seed in any::<u64>(), relu in any::<bool>()) {
        check(n, i, o, seed, relu);
    }
}

#[test]
fn dense_matches_reference_table1_fc1_1024_to_256() {
    check(8, 1024, 256, 11, true);
}

#[test]
fn dense_matches_reference_table1_fc2_256_to_10() {
    check(64, 256, 10, 12, false);
}

/// The small-batch GEMV path against the reference (odd sizes, vector and scalar tails), and
/// each image's output bit-identical to the same image run alone (batch-independent order).
fn check_gemv(n: usize, i: usize, o: usize, seed: u64, relu: bool, bias: bool) {
    let g = DenseGeometry::new(n, i, o).unwrap();
    let x = values(seed, g.input_len());
    let w = values(seed ^ 1, g.weight_len());
    let b = values(seed ^ 2, o);
    let b = bias.then_some(&b[..]);
    let mut want = vec![0.0; g.output_len()];
    reference::dense_forward(&g, &x, &w, b, relu, &mut want);
    let mut scale = vec![0.0; g.output_len()];
    let ab = b.map(abs);
    reference::dense_forward(&g, &abs(&x), &abs(&w), ab.as_deref(), false, &mut scale);
    let act = if relu {
        Activation::Relu
    } else {
        Activation::None
    };
    let one = DenseGeometry::new(1, i, o).unwrap();
    for k in tiers() {
        let t = format!("{:?} gemv {n}x{i}->{o} bias {bias}", k.isa());
        let mut y = vec![f32::NAN; g.output_len()];
        k.dense_forward(&g, &x, &w, b, act, &mut y).unwrap();
        assert_close(&t, &y, &want, &scale, 1e-5, 1e-6);
        for (img, row) in y.chunks_exact(o).enumerate() {
            let mut alone = vec![f32::NAN; o];
            k.dense_forward(&one, &x[img * i..][..i], &w, b, act, &mut alone)
                .unwrap();
            assert_eq!(bits(row), bits(&alone), "{t}: image {img} alone differs");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn dense_gemv_matches_reference(n in 1usize..=GEMV_MAX_BATCH, i in 1usize..140, o in 1usize..20,
                                    seed in any::<u64>(), relu in any::<bool>(), bias in any::<bool>()) {
        check_gemv(n, i, o, seed, relu, bias);
    }
}

#[test]
fn dense_gemv_matches_reference_every_length_mod_the_widest_blocks() {
    // in 1..=144: every residue of the 4-accumulator blocks on AVX-512 (64 floats) and every
    // vector/scalar tail; 3 rows exercise both the two-row and the one-row dot products.
    for i in 1..=144 {
        check_gemv(2, i, 3, i as u64, true, true);
    }
}

#[test]
fn dense_gemv_matches_reference_table1_shapes() {
    check_gemv(1, 1024, 256, 21, true, true);
    check_gemv(GEMV_MAX_BATCH, 1024, 256, 22, true, true);
    check_gemv(1, 256, 10, 23, false, true);
}

#[test]
fn packed_dense_forward_matches_reference_and_refuses_other_shapes() {
    for (n, i, o) in [
        (1, 1024, 256),
        (7, 1024, 256),
        (64, 1024, 256),
        (33, 17, 10),
        (9, 300, 5),
    ] {
        let g = DenseGeometry::new(n, i, o).unwrap();
        let x = values(11, g.input_len());
        let w = values(12, g.weight_len());
        let b = values(13, o);
        let mut want = vec![0.0; g.output_len()];
        reference::dense_forward(&g, &x, &w, Some(&b), true, &mut want);
        let mut scale = vec![0.0; g.output_len()];
        reference::dense_forward(&g, &abs(&x), &abs(&w), Some(&abs(&b)), false, &mut scale);
        for k in tiers() {
            let p = k.pack_dense(i, o, &w).unwrap();
            let mut got = vec![f32::NAN; g.output_len()];
            k.dense_forward_packed(&g, &x, &p, Some(&b), Activation::Relu, &mut got)
                .unwrap();
            assert_close(
                &format!("{:?} {n}x{i}->{o}", k.isa()),
                &got,
                &want,
                &scale,
                1e-5,
                1e-6,
            );
            let g2 = DenseGeometry::new(n, i, o + 1).unwrap();
            let mut out2 = vec![0.0; g2.output_len()];
            assert!(
                k.dense_forward_packed(&g2, &x, &p, None, Activation::None, &mut out2)
                    .is_err()
            );
        }
    }
}
