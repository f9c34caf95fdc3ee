//! Fully connected layer on GEMM: input `[N, in]`, weight `[out, in]` (PyTorch's layout).

pub mod reference;

use crate::conv2d::Activation;
use crate::error::{Result, check_len};
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
    const OP: &str = "dense_forward";
    check_len(OP, "input", input.len(), g.input_len())?;
    check_len(OP, "weight", weight.len(), g.weight_len())?;
    if let Some(b) = bias {
        check_len(OP, "bias", b.len(), g.out_features)?;
    }
    check_len(OP, "out", out.len(), g.output_len())?;
    reference::dense_forward(g, input, weight, bias, activation == Activation::Relu, out);
    Ok(())
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
    const OP: &str = "dense_backward_input";
    check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
    check_len(OP, "weight", weight.len(), g.weight_len())?;
    check_len(OP, "grad_input", grad_input.len(), g.input_len())?;
    reference::dense_backward_input(g, grad_out, weight, grad_input);
    Ok(())
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
    const OP: &str = "dense_backward_weight";
    check_len(OP, "input", input.len(), g.input_len())?;
    check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
    check_len(OP, "grad_weight", grad_weight.len(), g.weight_len())?;
    reference::dense_backward_weight(g, input, grad_out, grad_weight);
    Ok(())
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
    const OP: &str = "dense_backward_bias";
    check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
    check_len(OP, "grad_bias", grad_bias.len(), g.out_features)?;
    reference::dense_backward_bias(g, grad_out, grad_bias);
    Ok(())
}
