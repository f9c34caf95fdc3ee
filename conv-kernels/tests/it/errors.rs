//! Wrong shapes are typed errors, never panics or out-of-bounds access.

use conv_kernels::*;

#[test]
fn conv2d_refuses_wrong_buffers_with_kernel_errors() {
    let g = Conv2dGeometry::new(2, 3, 6, 6, 4, 3, 3, Padding::Valid).unwrap();
    let x = vec![0.0; g.input_len()];
    let w = vec![0.0; g.weight_len()];
    let mut out = vec![0.0; g.output_len()];
    let mut scratch = vec![0.0; conv2d_scratch_len(&g)];
    let short = vec![0.0; g.input_len() - 1];
    let e = conv2d_forward(
        &g,
        &short,
        &w,
        None,
        Activation::None,
        &mut out,
        &mut scratch,
    );
    assert!(
        matches!(
            e,
            Err(KernelError::BufferLen {
                buffer: "input",
                ..
            })
        ),
        "{e:?}"
    );
    let e = conv2d_forward(
        &g,
        &x,
        &w,
        Some(&[0.0; 3]),
        Activation::None,
        &mut out,
        &mut scratch,
    );
    assert!(
        matches!(e, Err(KernelError::BufferLen { buffer: "bias", .. })),
        "{e:?}"
    );
    let e = conv2d_forward(&g, &x, &w, None, Activation::None, &mut out, &mut []);
    assert!(
        matches!(
            e,
            Err(KernelError::BufferLen {
                buffer: "scratch",
                ..
            })
        ),
        "{e:?}"
    );
    let mut dx = vec![0.0; g.input_len() + 1];
    let e = conv2d_backward_input(&g, &out, &w, &mut dx, &mut scratch);
    assert!(
        matches!(
            e,
            Err(KernelError::BufferLen {
                buffer: "grad_input",
                ..
            })
        ),
        "{e:?}"
    );
    let mut dw = vec![0.0; 1];
    let e = conv2d_backward_weight(&g, &x, &out, &mut dw, &mut scratch);
    assert!(
        matches!(
            e,
            Err(KernelError::BufferLen {
                buffer: "grad_weight",
                ..
            })
        ),
        "{e:?}"
    );
    let e = conv2d_backward_bias(&g, &out, &mut [0.0; 5]);
    assert!(
        matches!(
            e,
            Err(KernelError::BufferLen {
                buffer: "grad_bias",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn geometries_refuse_zero_and_oversized_kernels() {
    assert!(matches!(
        Conv2dGeometry::new(1, 1, 4, 4, 1, 5, 3, Padding::Valid),
        Err(KernelError::Geometry { .. })
    ));
    assert!(matches!(
        Conv2dGeometry::new(0, 1, 4, 4, 1, 3, 3, Padding::Same),
        Err(KernelError::Geometry { .. })
    ));
    assert!(matches!(
        Conv2dGeometry::new(usize::MAX, 2, 4, 4, 1, 3, 3, Padding::Same),
        Err(KernelError::Overflow { .. })
    ));
    assert!(Pool2dGeometry::new(1, 1, 3, 3, 4, 4, 1, 1).is_err());
    assert!(DenseGeometry::new(1, 0, 3).is_err());
}

#[test]
fn dense_pool_and_loss_refuse_wrong_buffers() {
    let g = DenseGeometry::new(2, 3, 4).unwrap();
    let mut y = vec![0.0; 8];
    assert!(dense_forward(&g, &[0.0; 5], &[0.0; 12], None, Activation::None, &mut y).is_err());
    assert!(dense_backward_weight(&g, &[0.0; 6], &[0.0; 8], &mut [0.0; 11]).is_err());
    let p = Pool2dGeometry::two_by_two(1, 1, 4, 4).unwrap();
    let mut out = vec![0.0; 4];
    let mut arg = vec![0u32; 4];
    assert!(maxpool2d_forward(&p, &[0.0; 15], &mut out, &mut arg).is_err());
    let e = maxpool2d_backward(&p, &[0.0; 4], &[0, 1, 2, 16], &mut [0.0; 16]);
    assert!(matches!(e, Err(KernelError::Geometry { .. })), "{e:?}");
    let mut probs = vec![0.0; 6];
    let e = softmax_cross_entropy_forward(&[0.0; 6], &[0, 3], 3, &mut probs);
    assert!(
        matches!(
            e,
            Err(KernelError::Label {
                row: 1,
                label: 3,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(relu_forward(&[0.0; 3], &mut [0.0; 2]).is_err());
    assert!(dropout_forward(&[0.0; 3], &[0.0; 2], &mut [0.0; 3]).is_err());
}
