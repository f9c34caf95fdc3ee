//! Inverted dropout given a mask. The mask (0 or `1/(1-rate)` per element) is drawn by
//! the caller from its seeded RNG, so the kernels stay pure.

pub mod reference;

use crate::error::{Result, check_len};

/// `out = input * mask`.
pub fn dropout_forward(input: &[f32], mask: &[f32], out: &mut [f32]) -> Result<()> {
    const OP: &str = "dropout_forward";
    check_len(OP, "mask", mask.len(), input.len())?;
    check_len(OP, "out", out.len(), input.len())?;
    reference::dropout_forward(input, mask, out);
    Ok(())
}

/// In place `x *= mask`.
pub fn dropout_forward_inplace(x: &mut [f32], mask: &[f32]) -> Result<()> {
    check_len("dropout_forward_inplace", "mask", mask.len(), x.len())?;
    for (x, &m) in x.iter_mut().zip(mask) {
        *x *= m;
    }
    Ok(())
}

/// `grad_input = grad_out * mask` (the same mask as the forward pass).
pub fn dropout_backward(grad_out: &[f32], mask: &[f32], grad_input: &mut [f32]) -> Result<()> {
    const OP: &str = "dropout_backward";
    check_len(OP, "mask", mask.len(), grad_out.len())?;
    check_len(OP, "grad_input", grad_input.len(), grad_out.len())?;
    reference::dropout_forward(grad_out, mask, grad_input);
    Ok(())
}
