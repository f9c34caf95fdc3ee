//! [`MaxPool2d`]: max pooling; forward records the argmax that backward scatters through.

use conv_kernels::Pool2dGeometry;

use crate::error::Result;

/// A MaxPool2D layer's fixed description.
#[derive(Debug, Clone)]
pub(crate) struct MaxPool2d {
    /// Input `[C, H, W]` of one example.
    pub in_shape: [usize; 3],
    /// `[ph, pw]`.
    pub pool: [usize; 2],
    /// `[sh, sw]`.
    pub strides: [usize; 2],
    /// Applies the previous layer's fused ReLU mask in backward: a window's maximum is the
    /// ReLU output at its argmax, so zeroing the gradient where the pooled value is not
    /// positive equals masking the full-size gradient afterwards, at a quarter of the cost.
    pub relu_mask: bool,
}

impl MaxPool2d {
    /// The kernel geometry for a batch of `n`.
    pub fn geometry(&self, n: usize) -> Result<Pool2dGeometry> {
        let [c, h, w] = self.in_shape;
        Ok(Pool2dGeometry::new(
            n,
            c,
            h,
            w,
            self.pool[0],
            self.pool[1],
            self.strides[0],
            self.strides[1],
        )?)
    }

    /// Max over each window; `argmax` receives the in-plane index of each maximum.
    ///
    /// # Shapes
    /// input `[n, C, H, W]`, out and argmax `[n, C, OH, OW]`.
    pub fn forward(
        &self,
        g: &Pool2dGeometry,
        input: &[f32],
        out: &mut [f32],
        argmax: &mut [u32],
    ) -> Result<()> {
        conv_kernels::maxpool2d_forward(g, input, out, argmax)?;
        Ok(())
    }

    /// Scatters `grad_out` to the recorded maxima (overwrites `grad_input`); with
    /// `relu_mask`, `grad_out` is first zeroed where `output` is not positive.
    ///
    /// # Shapes
    /// output, grad_out and argmax `[n, C, OH, OW]`, grad_input `[n, C, H, W]`.
    pub fn backward(
        &self,
        g: &Pool2dGeometry,
        output: &[f32],
        grad_out: &mut [f32],
        argmax: &[u32],
        grad_input: &mut [f32],
    ) -> Result<()> {
        if self.relu_mask {
            conv_kernels::relu_backward_inplace(output, grad_out)?;
        }
        conv_kernels::maxpool2d_backward(g, grad_out, argmax, grad_input)?;
        Ok(())
    }
}
