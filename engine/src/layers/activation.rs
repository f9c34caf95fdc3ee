//! [`Relu`] as a layer of its own, in place. A ReLU directly after a linear Conv2D or Dense
//! is folded into that layer's epilogue when the plan is built, so this runs only elsewhere.

use crate::error::Result;

/// A standalone ReLU layer.
#[derive(Debug, Clone)]
pub(crate) struct Relu;

impl Relu {
    /// `x = max(x, 0)` in place.
    pub fn forward(&self, x: &mut [f32]) {
        conv_kernels::relu_forward_inplace(x);
    }

    /// Zeroes `grad` where the forward output was not positive.
    pub fn backward(&self, output: &[f32], grad: &mut [f32]) -> Result<()> {
        conv_kernels::relu_backward_inplace(output, grad)?;
        Ok(())
    }
}
