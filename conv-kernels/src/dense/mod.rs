//! Fully connected layer on GEMM: input `[N, in]`, weight `[out, in]` (PyTorch's layout).
//!
//! Every product is one call of [`crate::gemm`] with strides doing the transposes:
//! `Y = X·Wᵀ` reads W column-major, `dW = dYᵀ·X` reads dY column-major; nothing is copied.
//! Row panels of the output may run in parallel; each output element's reduction is the same
//! sequence of operations for any thread count.

pub mod reference;

use crate::conv2d::Activation;
use crate::dispatch::{Kernels, kernels};
use crate::error::{Result, check_len};
use crate::gemm::{MatRef, sgemm_rows_par};
use crate::geometry::DenseGeometry;

/// Forward: `out = act(input · weightᵀ + bias)`.
///
/// # Shapes
/// input `[N, in]`, weight `[out, in]`, bias `[out]`, out `[N, out]`.
pub fn dense_forward(
    g: &DenseGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    out: &mut [f32],
) -> Result<()> {
    kernels().dense_forward(g, input, weight, bias, activation, out)
}

/// Gradient w.r.t. the input: `grad_input = grad_out · weight` (overwrites).
///
/// # Shapes
/// grad_out `[N, out]`, weight `[out, in]`, grad_input `[N, in]`.
pub fn dense_backward_input(
    g: &DenseGeometry,
    grad_out: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) -> Result<()> {
    kernels().dense_backward_input(g, grad_out, weight, grad_input)
}

/// Gradient w.r.t. the weight: `grad_weight = grad_outᵀ · input` (overwrites).
///
/// # Shapes
/// input `[N, in]`, grad_out `[N, out]`, grad_weight `[out, in]`.
pub fn dense_backward_weight(
    g: &DenseGeometry,
    input: &[f32],
    grad_out: &[f32],
    grad_weight: &mut [f32],
) -> Result<()> {
    kernels().dense_backward_weight(g, input, grad_out, grad_weight)
}

/// Gradient w.r.t. the bias: column sums of `grad_out` (overwrites).
///
/// # Shapes
/// grad_out `[N, out]`, grad_bias `[out]`.
pub fn dense_backward_bias(
    g: &DenseGeometry,
    grad_out: &[f32],
    grad_bias: &mut [f32],
) -> Result<()> {
    kernels().dense_backward_bias(g, grad_out, grad_bias)
}

impl Kernels {
    /// [`dense_forward`] on this tier.
    pub fn dense_forward(
        &self,
        g: &DenseGeometry,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        out: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "dense_forward";
        check_len(OP, "input", input.len(), g.input_len())?;
        check_len(OP, "weight", weight.len(), g.weight_len())?;
        if let Some(b) = bias {
            check_len(OP, "bias", b.len(), g.out_features)?;
        }
        check_len(OP, "out", out.len(), g.output_len())?;
        let (n, i, o) = (g.batch, g.in_features, g.out_features);
        sgemm_rows_par(
            n,
            i,
            o,
            1.0,
            MatRef::row_major(input, i),
            MatRef::col_major(weight, i),
            0.0,
            out,
            o,
        )?;
        let relu = activation == Activation::Relu;
        match bias {
            Some(b) => {
                for row in out.chunks_exact_mut(o) {
                    (self.add_assign)(row, b);
                    if relu {
                        (self.relu_forward_inplace)(row);
                    }
                }
            }
            None if relu => (self.relu_forward_inplace)(out),
            None => {}
        }
        Ok(())
    }

    /// [`dense_backward_input`] on this tier.
    pub fn dense_backward_input(
        &self,
        g: &DenseGeometry,
        grad_out: &[f32],
        weight: &[f32],
        grad_input: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "dense_backward_input";
        check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
        check_len(OP, "weight", weight.len(), g.weight_len())?;
        check_len(OP, "grad_input", grad_input.len(), g.input_len())?;
        let (n, i, o) = (g.batch, g.in_features, g.out_features);
        sgemm_rows_par(
            n,
            o,
            i,
            1.0,
            MatRef::row_major(grad_out, o),
            MatRef::row_major(weight, i),
            0.0,
            grad_input,
            i,
        )
    }

    /// [`dense_backward_weight`] on this tier.
    pub fn dense_backward_weight(
        &self,
        g: &DenseGeometry,
        input: &[f32],
        grad_out: &[f32],
        grad_weight: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "dense_backward_weight";
        check_len(OP, "input", input.len(), g.input_len())?;
        check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
        check_len(OP, "grad_weight", grad_weight.len(), g.weight_len())?;
        let (n, i, o) = (g.batch, g.in_features, g.out_features);
        sgemm_rows_par(
            o,
            n,
            i,
            1.0,
            MatRef::col_major(grad_out, o),
            MatRef::row_major(input, i),
            0.0,
            grad_weight,
            i,
        )
    }

    /// [`dense_backward_bias`] on this tier: rows of `grad_out` added in batch order.
    pub fn dense_backward_bias(
        &self,
        g: &DenseGeometry,
        grad_out: &[f32],
        grad_bias: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "dense_backward_bias";
        check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
        check_len(OP, "grad_bias", grad_bias.len(), g.out_features)?;
        grad_bias.fill(0.0);
        for row in grad_out.chunks_exact(g.out_features) {
            (self.add_assign)(grad_bias, row);
        }
        Ok(())
    }
}
