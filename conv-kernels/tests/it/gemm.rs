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

// ---- our blocked GEMM (`Kernels::gemm`) against the naive reference, on every tier ----

use crate::common::{assert_close, bits, tiers};
use conv_kernels::gemm::{Operand, reference};
use proptest::prelude::*;

/// A random GEMM problem: sizes, layouts (transposes, padded leading dimensions), scalars.
#[derive(Debug, Clone)]
struct Problem {
    m: usize,
    k: usize,
    n: usize,
    a_t: bool,
    b_t: bool,
    pad: usize,
    alpha: f32,
    beta: f32,
    pack_a: bool,
    pack_b: bool,
    seed: u64,
}

/// A `rows x cols` matrix stored row-major (or, when `t`, column-major) with `pad` extra
/// elements per leading dimension.
fn view(data: &[f32], rows: usize, cols: usize, t: bool, pad: usize) -> MatRef<'_> {
    if t {
        MatRef::col_major(data, rows + pad)
    } else {
        MatRef::row_major(data, cols + pad)
    }
}

fn storage(rows: usize, cols: usize, t: bool, pad: usize) -> usize {
    if t {
        (rows + pad) * cols
    } else {
        rows * (cols + pad)
    }
}

fn check(p: &Problem) {
    let a = values(p.seed, storage(p.m, p.k, p.a_t, p.pad));
    let b = values(p.seed ^ 1, storage(p.k, p.n, p.b_t, p.pad));
    let c0 = values(p.seed ^ 2, p.m * (p.n + p.pad));
    let (av, bv) = (
        view(&a, p.m, p.k, p.a_t, p.pad),
        view(&b, p.k, p.n, p.b_t, p.pad),
    );
    let ld = p.n + p.pad;
    let mut want = c0.clone();
    reference::sgemm(
        p.m,
        p.k,
        p.n,
        p.alpha,
        av,
        bv,
        p.beta,
        MatMut::row_major(&mut want, ld),
    );
    let (aa, ba) = (
        a.iter().map(|x| x.abs()).collect::<Vec<_>>(),
        b.iter().map(|x| x.abs()).collect::<Vec<_>>(),
    );
    let mut scale = c0.iter().map(|x| x.abs()).collect::<Vec<_>>();
    reference::sgemm(
        p.m,
        p.k,
        p.n,
        p.alpha.abs(),
        view(&aa, p.m, p.k, p.a_t, p.pad),
        view(&ba, p.k, p.n, p.b_t, p.pad),
        p.beta.abs(),
        MatMut::row_major(&mut scale, ld),
    );
    for k in tiers() {
        let pa = k.gemm_pack_a(p.m, p.k, av).unwrap();
        let pb = k.gemm_pack_b(p.k, p.n, bv).unwrap();
        let a_op = if p.pack_a {
            Operand::Packed(&pa)
        } else {
            Operand::View(av)
        };
        let b_op = if p.pack_b {
            Operand::Packed(&pb)
        } else {
            Operand::View(bv)
        };
        let mut got = c0.clone();
        k.gemm(
            p.m,
            p.k,
            p.n,
            p.alpha,
            a_op,
            b_op,
            p.beta,
            MatMut::row_major(&mut got, ld),
        )
        .unwrap();
        let what = format!("{:?} {p:?}", k.isa());
        assert_close(&what, &got, &want, &scale, 1e-5, 1e-6);
        // The padding columns of C are never written.
        for (i, row) in got.chunks(ld).enumerate() {
            assert_eq!(
                bits(&row[p.n..]),
                bits(&c0[i * ld + p.n..(i + 1) * ld]),
                "{what}: padding"
            );
        }
        // The row-split variant is bit-identical to the one-call product.
        let mut par = c0.clone();
        k.gemm_par(p.m, p.k, p.n, p.alpha, a_op, b_op, p.beta, &mut par, ld)
            .unwrap();
        assert_eq!(bits(&par), bits(&got), "{what}: gemm_par");
    }
}

fn problem(max: usize) -> impl Strategy<Value = Problem> {
    (
        (1usize..max, 0usize..max, 1usize..max),
        (any::<bool>(), any::<bool>(), 0usize..3),
        (
            prop_oneof![Just(1.0f32), -2.0f32..2.0],
            prop_oneof![Just(0.0f32), Just(1.0), -1.0f32..1.0],
        ),
        (any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_map(
            |((m, k, n), (a_t, b_t, pad), (alpha, beta), (pack_a, pack_b, seed))| Problem {
                m,
                k,
                n,
                a_t,
                b_t,
                pad,
                alpha,
                beta,
                pack_a,
                pack_b,
                seed,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn gemm_matches_reference_on_every_tier(p in problem(48)) {
        check(&p);
    }
}

#[test]
fn gemm_crosses_every_cache_block_boundary() {
    // m > MC (144), k > KC (256), n > NC (2048): every loop of the blocked nest runs twice.
    for (pack_a, pack_b) in [(false, false), (true, true)] {
        check(&Problem {
            m: 150,
            k: 300,
            n: 2070,
            a_t: false,
            b_t: true,
            pad: 1,
            alpha: 1.0,
            beta: 0.5,
            pack_a,
            pack_b,
            seed: 7,
        });
    }
}

#[test]
fn gemm_beta_zero_ignores_nan_in_c_and_k_zero_scales() {
    for k in tiers() {
        let a = values(1, 7 * 5);
        let b = values(2, 5 * 9);
        let mut c = vec![f32::NAN; 7 * 9];
        k.gemm(
            7,
            5,
            9,
            1.0,
            Operand::View(MatRef::row_major(&a, 5)),
            Operand::View(MatRef::row_major(&b, 9)),
            0.0,
            MatMut::row_major(&mut c, 9),
        )
        .unwrap();
        assert!(c.iter().all(|x| x.is_finite()), "{:?}", k.isa());
        let mut c = vec![2.0f32; 6];
        k.gemm(
            2,
            0,
            3,
            1.0,
            Operand::View(MatRef::row_major(&[], 0)),
            Operand::View(MatRef::row_major(&[], 3)),
            0.5,
            MatMut::row_major(&mut c, 3),
        )
        .unwrap();
        assert_eq!(c, [1.0; 6]);
    }
}

#[test]
fn gemm_refuses_mismatched_packing_and_out_of_bounds_views() {
    for k in tiers() {
        let a = values(1, 12);
        let b = values(2, 12);
        let mut c = [0.0f32; 9];
        let pa = k.gemm_pack_a(3, 4, MatRef::row_major(&a, 4)).unwrap();
        // Packed as 3x4, used as 3x3.
        let e = k.gemm(
            3,
            3,
            3,
            1.0,
            Operand::Packed(&pa),
            Operand::View(MatRef::row_major(&b, 3)),
            0.0,
            MatMut::row_major(&mut c, 3),
        );
        assert!(e.is_err());
        // A packed operand used on the other side (panel widths differ by tier shape).
        let pb = k.gemm_pack_b(4, 3, MatRef::row_major(&b, 3)).unwrap();
        let e = k.gemm(
            3,
            4,
            3,
            1.0,
            Operand::Packed(&pb),
            Operand::Packed(&pb),
            0.0,
            MatMut::row_major(&mut c, 3),
        );
        assert!(e.is_err());
        let e = k.gemm(
            3,
            4,
            3,
            1.0,
            Operand::View(MatRef::row_major(&a[..11], 4)),
            Operand::View(MatRef::row_major(&b, 3)),
            0.0,
            MatMut::row_major(&mut c, 3),
        );
        assert!(e.is_err());
    }
}
