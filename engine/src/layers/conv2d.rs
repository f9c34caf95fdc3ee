//! [`Conv2d`]: stride-1 convolution with the bias and optional ReLU fused into the kernel.

use conv_kernels::{Activation, Conv2dGeometry, Layouts, PackedConv, Padding};

use crate::error::Result;

/// A Conv2D layer's fixed description; parameters live in the model's `ParamSet`.
#[derive(Debug, Clone)]
pub(crate) struct Conv2d {
    /// Input `[C, H, W]` of one example.
    pub in_shape: [usize; 3],
    /// Output channels.
    pub filters: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Padding.
    pub padding: Padding,
    /// ReLU fused into the forward epilogue.
    pub relu: bool,
    /// The next layer is a max-pool that applies this ReLU's mask to its (4x smaller)
    /// gradient before scattering it, so backward need not mask the full output.
    pub relu_masked_by_pool: bool,
    /// Index of `<name>.weight` in the parameter set (`<name>.bias` follows it).
    pub param: usize,
}

impl Conv2d {
    /// The kernel geometry for a batch of `n`.
    pub fn geometry(&self, n: usize) -> Result<Conv2dGeometry> {
        let [c, h, w] = self.in_shape;
        let [kh, kw] = self.kernel;
        Ok(Conv2dGeometry::new(
            n,
            c,
            h,
            w,
            self.filters,
            kh,
            kw,
            self.padding,
        )?)
    }

    fn activation(&self) -> Activation {
        if self.relu {
            Activation::Relu
        } else {
            Activation::None
        }
    }

    /// `out = act(conv(input, weight) + bias)`.
    ///
    /// # Shapes
    /// input `[n, C, H, W]`, weight `[O, C, KH, KW]`, bias `[O]`, out `[n, O, OH, OW]`.
    pub fn forward(
        &self,
        g: &Conv2dGeometry,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        conv_kernels::conv2d_forward(
            g,
            input,
            weight,
            Some(bias),
            self.activation(),
            out,
            scratch,
        )?;
        Ok(())
    }

    /// [`Conv2d::forward`] with the weights prepared once per model version (inference),
    /// fused with the following 2x2 max-pool when `pool`, reading and writing the layouts
    /// `io` names (see [`conv_kernels::conv2d_forward_packed_io`]).
    ///
    /// # Shapes
    /// As [`Conv2d::forward`] (NCHW, or NHWC where `io` says so), out `[n, O, OH/2, OW/2]`
    /// when pooled.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_packed(
        &self,
        g: &Conv2dGeometry,
        input: &[f32],
        weight: &PackedConv,
        bias: &[f32],
        pool: bool,
        io: Layouts,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        conv_kernels::conv2d_forward_packed_io(
            g,
            input,
            weight,
            Some(bias),
            self.activation(),
            pool,
            io,
            out,
            scratch,
        )?;
        Ok(())
    }

    /// Gradients of weight and bias (overwritten) and, when asked, of the input.
    /// `grad_out` is first masked by the fused ReLU, in place (unless the following
    /// max-pool did it).
    ///
    /// # Shapes
    /// As [`Conv2d::forward`]; `output` is the forward output, `grad_out` its gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        g: &Conv2dGeometry,
        input: &[f32],
        output: &[f32],
        grad_out: &mut [f32],
        weight: &[f32],
        grad_weight: &mut [f32],
        grad_bias: &mut [f32],
        grad_input: Option<&mut [f32]>,
        scratch: &mut [f32],
    ) -> Result<()> {
        if self.relu && !self.relu_masked_by_pool {
            conv_kernels::relu_backward_inplace(output, grad_out)?;
        }
        conv_kernels::conv2d_backward_bias(g, grad_out, grad_bias)?;
        conv_kernels::conv2d_backward_weight(g, input, grad_out, grad_weight, scratch)?;
        if let Some(grad_input) = grad_input {
            conv_kernels::conv2d_backward_input(g, grad_out, weight, grad_input, scratch)?;
        }
        Ok(())
    }
}
