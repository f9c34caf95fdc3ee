//! The safe sgemm wrapper: identities in both layouts, odd sizes, bounds checks.

use crate::common::values;
use conv_kernels::gemm::{MatMut, MatRef, sgemm};

fn identity(n: usize) -> Vec<f32> {
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    v
}

#[test]
fn sgemm_identity_products_in_both_layouts() {
    for m in 1..13 {
        for n in 1..13 {
            let a = values((m * 13 + n) as u64, m * n);
            // A·I = A (A row-major), and Aᵀ·I via column-major strides = Aᵀ.
            let i = identity(n);
            let mut c = vec![f32::NAN; m * n];
            sgemm(
                m,
                n,
                n,
                1.0,
                MatRef::row_major(&a, n),
                MatRef::row_major(&i, n),
                0.0,
                MatMut::row_major(&mut c, n),
            )
            .unwrap();
            assert_eq!(c, a, "A·I, {m}x{n}");
            let im = identity(m);
            let mut c = vec![f32::NAN; m * n];
            sgemm(
                m,
                m,
                n,
                1.0,
                MatRef::row_major(&im, m),
                MatRef::row_major(&a, n),
                0.0,
                MatMut::row_major(&mut c, n),
            )
            .unwrap();
            assert_eq!(c, a, "I·A, {m}x{n}");
            let mut ct = vec![f32::NAN; n * m];
            sgemm(
                n,
                n,
                m,
                1.0,
                MatRef::row_major(&i, n),
                MatRef::col_major(&a, n),
                0.0,
                MatMut::row_major(&mut ct, m),
            )
            .unwrap();
            for r in 0..m {
                for col in 0..n {
                    assert_eq!(ct[col * m + r], a[r * n + col], "I·Aᵀ at ({col}, {r})");
                }
            }
        }
    }
}

#[test]
fn sgemm_beta_one_accumulates_and_k_zero_scales() {
    let a = [1.0, 2.0, 3.0, 4.0];
    let b = [1.0, 0.0, 0.0, 1.0];
    let mut c = [10.0, 10.0, 10.0, 10.0];
    sgemm(
        2,
        2,
        2,
        1.0,
        MatRef::row_major(&a, 2),
        MatRef::row_major(&b, 2),
        1.0,
        MatMut::row_major(&mut c, 2),
    )
    .unwrap();
    assert_eq!(c, [11.0, 12.0, 13.0, 14.0]);
    sgemm(
        2,
        0,
        2,
        1.0,
        MatRef::row_major(&[], 0),
        MatRef::row_major(&[], 2),
        0.0,
        MatMut::row_major(&mut c, 2),
    )
    .unwrap();
    assert_eq!(c, [0.0; 4]);
}

#[test]
fn sgemm_refuses_views_outside_their_slices() {
    let a = [0.0f32; 11];
    let b = [0.0f32; 12];
    let mut c = [0.0f32; 9];
    let e = sgemm(
        3,
        4,
        3,
        1.0,
        MatRef::row_major(&a, 4),
        MatRef::row_major(&b, 3),
        0.0,
        MatMut::row_major(&mut c, 3),
    );
    assert!(e.is_err());
    let a = [0.0f32; 12];
    let e = sgemm(
        3,
        4,
        3,
        1.0,
        MatRef::row_major(&a, 4),
        MatRef::row_major(&b, 3),
        0.0,
        MatMut::row_major(&mut c, 4),
    );
    assert!(e.is_err(), "C leading dimension 4 reaches index 10 of 9");
}
