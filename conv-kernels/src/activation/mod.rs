//! ReLU forward and backward over flat slices.

pub mod reference;

use crate::error::{Result, check_len};

/// `out = max(input, 0)`.
pub fn relu_forward(input: &[f32], out: &mut [f32]) -> Result<()> {
    check_len("relu_forward", "out", out.len(), input.len())?;
    reference::relu_forward(input, out);
    Ok(())
}

/// In-place `x = max(x, 0)`.
pub fn relu_forward_inplace(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// `grad_input = grad_out` where the forward *output* was positive, else 0.
pub fn relu_backward(output: &[f32], grad_out: &[f32], grad_input: &mut [f32]) -> Result<()> {
    const OP: &str = "relu_backward";
    check_len(OP, "grad_out", grad_out.len(), output.len())?;
    check_len(OP, "grad_input", grad_input.len(), output.len())?;
    reference::relu_backward(output, grad_out, grad_input);
    Ok(())
}

/// In-place ReLU backward: zeroes `grad` where the forward output was not positive.
pub fn relu_backward_inplace(output: &[f32], grad: &mut [f32]) -> Result<()> {
    check_len("relu_backward_inplace", "grad", grad.len(), output.len())?;
    for (g, &y) in grad.iter_mut().zip(output) {
        if y <= 0.0 {
            *g = 0.0;
        }
    }
    Ok(())
}
