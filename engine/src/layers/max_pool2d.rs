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

    /// Scatters `grad_out` to the recorded maxima (overwrites `grad_input`).
    ///
    /// # Shapes
    /// grad_out and argmax `[n, C, OH, OW]`, grad_input `[n, C, H, W]`.
    pub fn backward(
        &self,
        g: &Pool2dGeometry,
        grad_out: &[f32],
        argmax: &[u32],
        grad_input: &mut [f32],
    ) -> Result<()> {
        conv_kernels::maxpool2d_backward(g, grad_out, argmax, grad_input)?;
        Ok(())
    }
}
