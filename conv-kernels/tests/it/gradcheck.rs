//! Every backward kernel against central finite differences of its forward kernel.
//!
//! For a forward `y = f(x)` and a fixed random `r`, the scalar `L = Σ y·r` has gradient
//! `backward(dy = r)`; each partial derivative is checked against
//! `(L(x + h·e_i) - L(x - h·e_i)) / 2h`, evaluated in f64 from the f32 kernel outputs.

use crate::common;

use common::values;
use conv_kernels::*;

const H: f32 = 1e-2;

/// Checks `analytic` against the central difference of `loss` at every coordinate of `x`.
fn check(what: &str, x: &[f32], analytic: &[f32], loss: impl Fn(&[f32]) -> f64, tol: f64) {
    assert_eq!(x.len(), analytic.len(), "{what}: gradient length");
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        xp[i] = x[i] + H;
        let lp = loss(&xp);
        xp[i] = x[i] - H;
        let lm = loss(&xp);
        xp[i] = x[i];
        let numeric = (lp - lm) / (2.0 * H as f64);
        let a = analytic[i] as f64;
        assert!(
            (numeric - a).abs() <= tol * (1.0 + a.abs()),
            "{what}: d/dx[{i}]: analytic {a}, numeric {numeric}, tolerance {tol}"
        );
    }
}

fn dot(y: &[f32], r: &[f32]) -> f64 {
    y.iter().zip(r).map(|(&a, &b)| a as f64 * b as f64).sum()
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    for (g, relu) in [
        (
            Conv2dGeometry::new(2, 3, 6, 7, 4, 3, 2, Padding::Same).unwrap(),
            false,
        ),
        (
            Conv2dGeometry::new(2, 2, 7, 6, 3, 4, 3, Padding::Valid).unwrap(),
            false,
        ),
        (
            Conv2dGeometry::new(1, 2, 5, 5, 2, 3, 3, Padding::Valid).unwrap(),
            true,
        ),
    ] {
        let x = values(1, g.input_len());
        let w = values(2, g.weight_len());
        let b = values(3, g.out_channels);
        let r = values(4, g.output_len());
        let mut scratch = vec![0.0; conv2d_scratch_len(&g)];
        let act = if relu {
            Activation::Relu
        } else {
            Activation::None
        };
        let fwd = |x: &[f32], w: &[f32], b: &[f32]| {
            let mut y = vec![0.0; g.output_len()];
            let mut s = vec![0.0; conv2d_scratch_len(&g)];
            conv2d_forward(&g, x, w, Some(b), act, &mut y, &mut s).unwrap();
            y
        };
        // dy = r masked by the ReLU derivative at the unperturbed point.
        let y = fwd(&x, &w, &b);
        let dy: Vec<f32> = r
            .iter()
            .zip(&y)
            .map(|(&r, &y)| if !relu || y > 0.0 { r } else { 0.0 })
            .collect();
        if relu {
            // Keep finite differences away from the kink: every pre-activation clear of 0.
            let mut pre = vec![0.0; g.output_len()];
            conv2d_forward(
                &g,
                &x,
                &w,
                Some(&b),
                Activation::None,
                &mut pre,
                &mut scratch,
            )
            .unwrap();
            assert!(
                pre.iter().all(|v| v.abs() > 0.1),
                "test data too close to the ReLU kink"
            );
        }
        let mut dx = vec![0.0; g.input_len()];
        conv2d_backward_input(&g, &dy, &w, &mut dx, &mut scratch).unwrap();
        let mut dw = vec![0.0; g.weight_len()];
        conv2d_backward_weight(&g, &x, &dy, &mut dw, &mut scratch).unwrap();
        let mut db = vec![0.0; g.out_channels];
        conv2d_backward_bias(&g, &dy, &mut db).unwrap();
        check(
            &format!("conv input {g:?}"),
            &x,
            &dx,
            |x| dot(&fwd(x, &w, &b), &r),
            1e-3,
        );
        check(
            &format!("conv weight {g:?}"),
            &w,
            &dw,
            |w| dot(&fwd(&x, w, &b), &r),
            1e-3,
        );
        check(
            &format!("conv bias {g:?}"),
            &b,
            &db,
            |b| dot(&fwd(&x, &w, b), &r),
            1e-3,
        );
    }
}

#[test]
fn dense_gradients_match_finite_differences() {
    let g = DenseGeometry::new(3, 7, 5).unwrap();
    let x = values(5, g.input_len());
    let w = values(6, g.weight_len());
    let b = values(7, 5);
    let r = values(8, g.output_len());
    let fwd = |x: &[f32], w: &[f32], b: &[f32]| {
        let mut y = vec![0.0; g.output_len()];
        dense_forward(&g, x, w, Some(b), Activation::None, &mut y).unwrap();
        y
    };
    let mut dx = vec![0.0; g.input_len()];
    dense_backward_input(&g, &r, &w, &mut dx).unwrap();
    let mut dw = vec![0.0; g.weight_len()];
    dense_backward_weight(&g, &x, &r, &mut dw).unwrap();
    let mut db = vec![0.0; 5];
    dense_backward_bias(&g, &r, &mut db).unwrap();
    check("dense input", &x, &dx, |x| dot(&fwd(x, &w, &b), &r), 1e-3);
    check("dense weight", &w, &dw, |w| dot(&fwd(&x, w, &b), &r), 1e-3);
    check("dense bias", &b, &db, |b| dot(&fwd(&x, &w, b), &r), 1e-3);
}

#[test]
fn maxpool_gradient_matches_finite_differences() {
    for g in [
        Pool2dGeometry::two_by_two(2, 2, 6, 5).unwrap(),
        Pool2dGeometry::new(1, 2, 7, 7, 3, 3, 2, 2).unwrap(), // overlapping windows
    ] {
        // Distinct values spaced by more than 2H, so the argmax is stable under the probe.
        let n = g.input_len();
        let mut x: Vec<f32> = (0..n)
            .map(|i| (i as f32 * 0.037).fract() + i as f32 * 0.05)
            .collect();
        let perm = values(9, n);
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&a, &b| perm[a].total_cmp(&perm[b]));
        let sorted = x.clone();
        for (k, &i) in idx.iter().enumerate() {
            x[i] = sorted[k];
        }
        let r = values(10, g.output_len());
        let fwd = |x: &[f32]| {
            let mut y = vec![0.0; g.output_len()];
            let mut a = vec![0u32; g.output_len()];
            maxpool2d_forward(&g, x, &mut y, &mut a).unwrap();
            (y, a)
        };
        let (_, arg) = fwd(&x);
        let mut dx = vec![0.0; n];
        maxpool2d_backward(&g, &r, &arg, &mut dx).unwrap();
        check(
            &format!("maxpool {g:?}"),
            &x,
            &dx,
            |x| dot(&fwd(x).0, &r),
            1e-3,
        );
    }
}

#[test]
fn relu_gradient_matches_finite_differences() {
    // Inputs clear of the kink by more than H.
    let x: Vec<f32> = values(11, 37)
        .iter()
        .map(|v| if v.abs() < 0.05 { v + 0.1 } else { *v })
        .collect();
    let r = values(12, 37);
    let fwd = |x: &[f32]| {
        let mut y = vec![0.0; x.len()];
        relu_forward(x, &mut y).unwrap();
        y
    };
    let y = fwd(&x);
    let mut dx = vec![0.0; 37];
    relu_backward(&y, &r, &mut dx).unwrap();
    check("relu", &x, &dx, |x| dot(&fwd(x), &r), 1e-3);
    let mut inplace = r;
    relu_backward_inplace(&y, &mut inplace).unwrap();
    assert_eq!(inplace, dx);
}

#[test]
fn dropout_gradient_matches_finite_differences() {
    let x = values(13, 29);
    let mask: Vec<f32> = values(14, 29)
        .iter()
        .map(|&v| if v < -0.5 { 0.0 } else { 1.0 / 0.75 })
        .collect();
    let r = values(15, 29);
    let fwd = |x: &[f32]| {
        let mut y = vec![0.0; x.len()];
        dropout_forward(x, &mask, &mut y).unwrap();
        y
    };
    let mut dx = vec![0.0; 29];
    dropout_backward(&r, &mask, &mut dx).unwrap();
    check("dropout", &x, &dx, |x| dot(&fwd(x), &r), 1e-3);
}

#[test]
fn softmax_cross_entropy_gradient_matches_finite_differences() {
    let classes = 10;
    let logits: Vec<f32> = values(16, 4 * classes).iter().map(|v| v * 3.0).collect();
    let labels = [3u32, 0, 9, 5];
    let loss = |z: &[f32]| {
        let mut p = vec![0.0; z.len()];
        softmax_cross_entropy_forward(z, &labels, classes, &mut p).unwrap() as f64
    };
    let mut probs = vec![0.0; logits.len()];
    softmax_cross_entropy_forward(&logits, &labels, classes, &mut probs).unwrap();
    let mut d = vec![0.0; logits.len()];
    softmax_cross_entropy_backward(&probs, &labels, classes, &mut d).unwrap();
    // The loss is a mean of f32 values near 1: finite differences carry ~1e-7/H noise.
    check("softmax cross-entropy", &logits, &d, loss, 2e-3);
}
