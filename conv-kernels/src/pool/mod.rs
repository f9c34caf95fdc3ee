//! Max-pooling over NCHW planes: forward records the argmax, backward scatters through it.

pub mod reference;

use crate::error::{KernelError, Result, check_len};
use crate::geometry::Pool2dGeometry;

/// Forward max-pool. `argmax[i]` receives the in-plane index (`ih * in_w + iw`) of output `i`'s maximum.
///
/// # Shapes
/// input `[N, C, H, W]`, out and argmax `[N, C, OH, OW]`.
pub fn maxpool2d_forward(
    g: &Pool2dGeometry,
    input: &[f32],
    out: &mut [f32],
    argmax: &mut [u32],
) -> Result<()> {
    const OP: &str = "maxpool2d_forward";
    check_len(OP, "input", input.len(), g.input_len())?;
    check_len(OP, "out", out.len(), g.output_len())?;
    check_len(OP, "argmax", argmax.len(), g.output_len())?;
    reference::maxpool2d_forward(g, input, out, argmax);
    Ok(())
}

/// Backward max-pool (overwrites `grad_input`).
///
/// # Shapes
/// grad_out and argmax `[N, C, OH, OW]`, grad_input `[N, C, H, W]`.
pub fn maxpool2d_backward(
    g: &Pool2dGeometry,
    grad_out: &[f32],
    argmax: &[u32],
    grad_input: &mut [f32],
) -> Result<()> {
    const OP: &str = "maxpool2d_backward";
    check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
    check_len(OP, "argmax", argmax.len(), g.output_len())?;
    check_len(OP, "grad_input", grad_input.len(), g.input_len())?;
    let plane = g.in_h * g.in_w;
    if let Some(&bad) = argmax.iter().find(|&&a| a as usize >= plane) {
        return Err(KernelError::Geometry {
            op: OP,
            reason: format!("argmax index {bad} outside the {plane}-element input plane"),
        });
    }
    reference::maxpool2d_backward(g, grad_out, argmax, grad_input);
    Ok(())
}
