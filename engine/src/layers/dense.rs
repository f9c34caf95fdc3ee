//! [`Dense`]: fully connected layer on GEMM with the bias and optional ReLU fused.

use conv_kernels::{Activation, DenseGeometry, PackedDense};

use crate::error::Result;

/// A Dense layer's fixed description; parameters live in the model's `ParamSet`.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub units: usize,
    /// ReLU fused into the forward epilogue.
    pub relu: bool,
    /// Index of `<name>.weight` in the parameter set (`<name>.bias` follows it).
    pub param: usize,
}

impl Dense {
    /// The kernel geometry for a batch of `n`.
    pub fn geometry(&self, n: usize) -> Result<DenseGeometry> {
        Ok(DenseGeometry::new(n, self.in_features, self.units)?)
    }

    /// `out = act(input · weightᵀ + bias)`.
    ///
    /// # Shapes
    /// input `[n, in]`, weight `[units, in]`, bias `[units]`, out `[n, units]`.
    pub fn forward(
        &self,
        g: &DenseGeometry,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        out: &mut [f32],
    ) -> Result<()> {
        conv_kernels::dense_forward(g, input, weight, Some(bias), self.activation(), out)?;
        Ok(())
    }

    /// [`Dense::forward`] with the weights prepared once per model version (inference).
    pub fn forward_packed(
        &self,
        g: &DenseGeometry,
        input: &[f32],
        weight: &PackedDense,
        bias: &[f32],
        out: &mut [f32],
    ) -> Result<()> {
        conv_kernels::dense_forward_packed(g, input, weight, Some(bias), self.activation(), out)?;
        Ok(())
    }

    fn activation(&self) -> Activation {
        if self.relu {
            Activation::Relu
        } else {
            Activation::None
        }
    }

    /// Gradients of weight and bias (overwritten) and, when asked, of the input.
    /// `grad_out` is first masked by the fused ReLU, in place.
    ///
    /// # Shapes
    /// As [`Dense::forward`]; `output` is the forward output, `grad_out` its gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        g: &DenseGeometry,
        input: &[f32],
        output: &[f32],
        grad_out: &mut [f32],
        weight: &[f32],
        grad_weight: &mut [f32],
        grad_bias: &mut [f32],
        grad_input: Option<&mut [f32]>,
    ) -> Result<()> {
        if self.relu {
            conv_kernels::relu_backward_inplace(output, grad_out)?;
        }
        conv_kernels::dense_backward_bias(g, grad_out, grad_bias)?;
        conv_kernels::dense_backward_weight(g, input, grad_out, grad_weight)?;
        if let Some(grad_input) = grad_input {
            conv_kernels::dense_backward_input(g, grad_out, weight, grad_input)?;
        }
        Ok(())
    }
}
